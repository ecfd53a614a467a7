//! Connect, Disconnect and Test.

use std::ffi::{c_char, c_void};

use mailconnect_core::check::TestOptions;
use mailconnect_core::oauth::DeviceCodeInfo;
use mailconnect_core::setup::{CheckOptions, RegisterOptions};
use mailconnect_core::{ConnectObserver, ConnectOptions, ConnectStage, Protocol};

use crate::cancel::mc_cancel;
use crate::client::{client_arg, mc_client};
use crate::guard::{c_string, call, give_json, id_arg, out_arg, str_arg};
use crate::status::{FfiError, MC_E_INVALID_ARGUMENT};

/// The version of `mc_connect_callbacks` this header describes.
pub const MC_CONNECT_CALLBACKS_VERSION: u32 = 1;
/// Protocol bit: IMAP.
pub const MC_PROTO_IMAP: u32 = 1;
/// Protocol bit: POP3.
pub const MC_PROTO_POP3: u32 = 2;
/// Protocol bit: SMTP.
pub const MC_PROTO_SMTP: u32 = 4;
/// Test option: send one message to the mailbox itself and confirm it arrives.
pub const MC_TEST_SEND_PROBE: u32 = 0x100;

/// Callbacks for `mc_account_connect`. Every member may be NULL. Callbacks run on a mailconnect thread:
/// do not call blocking mailconnect functions from them, and marshal to your UI thread yourself.
/// Strings passed to callbacks are valid only during the call.
#[repr(C)]
pub struct mc_connect_callbacks {
    /// Must be `MC_CONNECT_CALLBACKS_VERSION`.
    pub version: u32,
    /// Passed to every callback.
    pub user_data: *mut c_void,
    /// Show the sign-in page `url`. Return nonzero when the host opened it (e.g. in its own web
    /// view), zero to let mailconnect open the system browser.
    pub on_open_url:
        Option<unsafe extern "C" fn(user_data: *mut c_void, url: *const c_char) -> i32>,
    /// Show the device code: what to type (`user_code`), where (`verification_uri`) and the
    /// provider's ready sentence (`message`).
    pub on_device_code: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            user_code: *const c_char,
            verification_uri: *const c_char,
            message: *const c_char,
        ),
    >,
    /// A connect stage was reached (`starting`, `opening_browser`, `waiting_for_browser`,
    /// `waiting_for_device_code`, `requesting_tokens`, `checking_identity`, `storing`, `connected`).
    pub on_progress: Option<unsafe extern "C" fn(user_data: *mut c_void, stage: *const c_char)>,
}

struct HostObserver {
    user_data: usize,
    on_open_url: Option<unsafe extern "C" fn(*mut c_void, *const c_char) -> i32>,
    on_device_code:
        Option<unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char, *const c_char)>,
    on_progress: Option<unsafe extern "C" fn(*mut c_void, *const c_char)>,
}

impl HostObserver {
    /// The host's callbacks (none for NULL), after checking their version.
    ///
    /// # Safety
    /// `callbacks` NULL or valid for the call.
    unsafe fn new(callbacks: *const mc_connect_callbacks) -> Result<HostObserver, FfiError> {
        if callbacks.is_null() {
            return Ok(HostObserver {
                user_data: 0,
                on_open_url: None,
                on_device_code: None,
                on_progress: None,
            });
        }
        // SAFETY: non-null, valid for the call (contract).
        let cb = unsafe { &*callbacks };
        if cb.version != MC_CONNECT_CALLBACKS_VERSION {
            return Err(FfiError::new(
                MC_E_INVALID_ARGUMENT,
                format!(
                    "mc_connect_callbacks.version is {}, expected {MC_CONNECT_CALLBACKS_VERSION}",
                    cb.version
                ),
            ));
        }
        Ok(HostObserver {
            user_data: cb.user_data as usize,
            on_open_url: cb.on_open_url,
            on_device_code: cb.on_device_code,
            on_progress: cb.on_progress,
        })
    }
}

impl ConnectObserver for HostObserver {
    fn open_url(&self, url: &str) -> bool {
        match self.on_open_url {
            // SAFETY: the host promised a valid callback and user_data (mc_account_connect contract).
            Some(f) => unsafe { f(self.user_data as *mut c_void, c_string(url).as_ptr()) != 0 },
            None => false,
        }
    }
    fn device_code(&self, info: &DeviceCodeInfo) {
        match self.on_device_code {
            // SAFETY: as above.
            Some(f) => unsafe {
                f(
                    self.user_data as *mut c_void,
                    c_string(&info.user_code).as_ptr(),
                    c_string(&info.verification_uri).as_ptr(),
                    c_string(&info.message).as_ptr(),
                )
            },
            None => tracing::info!(target: "mailconnect", "{}", info.message),
        }
    }
    fn progress(&self, stage: ConnectStage) {
        if let Some(f) = self.on_progress {
            // SAFETY: as above.
            unsafe {
                f(
                    self.user_data as *mut c_void,
                    c_string(stage.as_str()).as_ptr(),
                )
            }
        }
    }
}

/// Authorize an account: the browser sign-in (or device code, or app-only, per the account's
/// `flow`), the identity check, and storing the tokens. Blocks until done, failed, timed out
/// (`options.interactive_timeout_secs`, default 300 s) or cancelled.
///
/// # Ownership
/// `callbacks` is read during the call only; it may be NULL (system browser; the device
/// code goes to the log).
///
/// # Threads
/// any thread except a mailconnect callback thread. Callbacks run on mailconnect threads.
///
/// # Errors
/// `MC_E_NOT_FOUND`, `MC_E_AUTHORIZATION_DENIED` (declined, or another account signed in:
/// nothing is stored), `MC_E_PROVIDER_CONFIGURATION` (app registration or tenant problem),
/// `MC_E_TIMEOUT`, `MC_E_CANCELLED`, `MC_E_NETWORK`, `MC_E_TLS`, `MC_E_PROVIDER_UNAVAILABLE`,
/// `MC_E_STORE`, `MC_E_INVALID_ARGUMENT` (unknown callbacks version).
///
/// # Safety
/// `client` from `mc_client_open`; `account_id` NUL-terminated; `callbacks` NULL or valid
/// with callbacks callable from any thread until the call returns; `cancel` NULL or from `mc_cancel_new`.
#[no_mangle]
pub unsafe extern "C" fn mc_account_connect(
    client: *mut mc_client,
    account_id: *const c_char,
    callbacks: *const mc_connect_callbacks,
    cancel: *mut mc_cancel,
) -> i32 {
    call(|| {
        // SAFETY: contract of this export.
        let (cl, id) = unsafe { (client_arg(client)?, id_arg(account_id, "account_id")?) };
        // SAFETY: NULL or valid for the call (contract).
        let observer = unsafe { HostObserver::new(callbacks)? };
        let options = ConnectOptions::default();
        cl.run(cancel, async |t| {
            cl.client.connect(id, options, &observer, t).await
        })?;
        Ok(())
    })
}

/// Forget the account's tokens (revoking them where the provider offers revocation; Microsoft does
/// not). Idempotent: disconnecting a disconnected account succeeds. `cancel` fired before the
/// tokens are deleted gives `MC_E_CANCELLED` and changes nothing; fired while the revocation is
/// under way, the call stops waiting for the provider and succeeds (revocation is best effort).
///
/// # Threads
/// any thread except a mailconnect callback thread.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_INVALID_UTF8`, `MC_E_NOT_FOUND`, `MC_E_STORE`, `MC_E_CANCELLED`.
///
/// # Safety
/// `client` from `mc_client_open`; `account_id` NUL-terminated; `cancel` NULL or from
/// `mc_cancel_new`.
#[no_mangle]
pub unsafe extern "C" fn mc_account_disconnect(
    client: *mut mc_client,
    account_id: *const c_char,
    cancel: *mut mc_cancel,
) -> i32 {
    call(|| {
        // SAFETY: contract of this export.
        let (cl, id) = unsafe { (client_arg(client)?, id_arg(account_id, "account_id")?) };
        cl.run(cancel, async |t| cl.client.disconnect(id, t).await)
    })
}

pub(crate) fn protocols_of(bits: u32) -> Result<Vec<Protocol>, FfiError> {
    if bits & !(MC_PROTO_IMAP | MC_PROTO_POP3 | MC_PROTO_SMTP) != 0 {
        return Err(FfiError::new(
            MC_E_INVALID_ARGUMENT,
            format!(
                "unknown protocol bits 0x{bits:x}; use MC_PROTO_IMAP, MC_PROTO_POP3, MC_PROTO_SMTP"
            ),
        ));
    }
    let mut v = Vec::new();
    for (bit, p) in [
        (MC_PROTO_IMAP, Protocol::Imap),
        (MC_PROTO_POP3, Protocol::Pop3),
        (MC_PROTO_SMTP, Protocol::Smtp),
    ] {
        if bits & bit != 0 {
            v.push(p);
        }
    }
    Ok(v)
}

/// Test the account: the token, then IMAP, POP3 and SMTP concurrently (`protocols` bits; 0 = all
/// configured), each with connect/TLS/auth/check timings, the mechanism used and, on failure, the
/// server's reply and the diagnostic. Add `MC_TEST_SEND_PROBE` to send one message to the mailbox
/// itself and confirm it arrives. The report JSON (schema 1, README "Test report") is returned even
/// when a protocol fails; check its `ok`.
///
/// # Ownership
/// `*out_report_json` is a new string; free it with `mc_string_free`.
///
/// # Threads
/// any thread except a mailconnect callback thread.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_INVALID_UTF8`, `MC_E_NOT_FOUND`, `MC_E_INVALID_ARGUMENT`
/// (unknown bits), `MC_E_CANCELLED`. Failures of the servers are in the report, not the status.
///
/// # Safety
/// `client` from `mc_client_open`; `account_id` NUL-terminated; `cancel` NULL or from
/// `mc_cancel_new`; `out_report_json` writable.
#[no_mangle]
pub unsafe extern "C" fn mc_account_test(
    client: *mut mc_client,
    account_id: *const c_char,
    protocols: u32,
    cancel: *mut mc_cancel,
    out_report_json: *mut *mut c_char,
) -> i32 {
    call(|| {
        out_arg(out_report_json, "out_report_json")?;
        // SAFETY: contract of this export.
        let (cl, id) = unsafe { (client_arg(client)?, id_arg(account_id, "account_id")?) };
        let opts = TestOptions {
            send_probe: protocols & MC_TEST_SEND_PROBE != 0,
        };
        let protos = protocols_of(protocols & !MC_TEST_SEND_PROBE)?;
        let report = cl.run(cancel, async |t| cl.client.test(id, &protos, opts, t).await)?;
        // SAFETY: checked writable above.
        unsafe { give_json(out_report_json, &report) }
    })
}

/// The arguments both tenant setup exports share: the client, the parsed options, the host's
/// callbacks; `out` checked writable.
///
/// # Safety
/// As the exports: `client` from `mc_client_open`, `options_json` NUL-terminated, `callbacks`
/// NULL or valid for the call.
unsafe fn admin_args<'a, T: serde::de::DeserializeOwned>(
    client: *mut mc_client,
    options_json: *const c_char,
    callbacks: *const mc_connect_callbacks,
    out: *mut *mut c_char,
) -> Result<(&'a mc_client, T, HostObserver), FfiError> {
    out_arg(out, "out_report_json")?;
    // SAFETY: the caller's contract.
    let (cl, json) = unsafe { (client_arg(client)?, str_arg(options_json, "options_json")?) };
    let opts = options(json)?;
    // SAFETY: NULL or valid for the call (the caller's contract).
    let observer = unsafe { HostObserver::new(callbacks)? };
    Ok((cl, opts, observer))
}

/// Parse an options JSON string into `T` (`MC_E_INVALID_ARGUMENT` with serde's reason).
fn options<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, FfiError> {
    serde_json::from_str(json).map_err(|e| {
        FfiError::from(mailconnect_core::Error::invalid(
            "options_json",
            format!("the options are not valid: {e}"),
        ))
    })
}

/// Tenant setup for a vendor's setup wizard: an administrator signs in once (browser or device
/// code, through `callbacks` as with `mc_account_connect`) to the vendor's setup registration,
/// and mailconnect creates through Microsoft Graph the app registration it needs (public client,
/// `http://localhost` under "Mobile and desktop applications", public client flows on, the
/// IMAP/POP/SMTP permissions, admin consent for the organisation; optionally Graph's mail
/// permissions and app-only access with a client secret), stores it, and reads it back.
///
/// `options_json`: `{"setup_registration": "...", "registration_id": "...", "display_name":
/// "...", "flow": "browser" | "device_code", "login_hint": "...", "graph": bool, "app_only":
/// bool, "secret_days": 1..730, "replace": bool}` (only the first two are required). The report
/// JSON has `tenant_id`, `tenant_name`, `client_id`, `registration_id`, `app_registration_id`,
/// `secret_expires`, `steps` (each `request`, `en`, `de`), `exchange_steps` (PowerShell for
/// app-only access) and `findings` (each `code`, `severity`, `detail_en`, `detail_de`; empty when
/// everything is as needed). The client secret is stored sealed and appears in no output.
///
/// # Ownership
/// `*out_report_json` is a new string; free it with `mc_string_free`. `callbacks` is read during
/// the call only; NULL = system browser, device code to the log.
///
/// # Threads
/// any thread except a mailconnect callback thread. Callbacks run on mailconnect threads.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_INVALID_UTF8`, `MC_E_INVALID_ARGUMENT` (options, an existing
/// registration id without `replace`), `MC_E_NOT_FOUND` (the setup registration),
/// `MC_E_AUTHORIZATION_DENIED` (the administrator declined, or lacks the rights:
/// `MC-SETUP-INSUFFICIENT-PRIVILEGES` in the diagnostic), `MC_E_PROVIDER_CONFIGURATION`,
/// `MC_E_TIMEOUT`, `MC_E_CANCELLED`, `MC_E_NETWORK`, `MC_E_TLS`, `MC_E_PROVIDER_UNAVAILABLE`,
/// `MC_E_STORE`.
///
/// # Safety
/// `client` from `mc_client_open`; `options_json` NUL-terminated; `callbacks` NULL or valid
/// with callbacks callable from any thread until the call returns; `cancel` NULL or from
/// `mc_cancel_new`; `out_report_json` writable.
#[no_mangle]
pub unsafe extern "C" fn mc_admin_register(
    client: *mut mc_client,
    options_json: *const c_char,
    callbacks: *const mc_connect_callbacks,
    cancel: *mut mc_cancel,
    out_report_json: *mut *mut c_char,
) -> i32 {
    call(|| {
        // SAFETY: contract of this export.
        let (cl, opts, observer) = unsafe {
            admin_args::<RegisterOptions>(client, options_json, callbacks, out_report_json)?
        };
        let report = cl.run(cancel, async |t| {
            cl.client.admin_register(&opts, &observer, t).await
        })?;
        // SAFETY: checked writable by admin_args.
        unsafe { give_json(out_report_json, &report) }
    })
}

/// Read the stored registration `registration_id` back through Microsoft Graph (an
/// administrator signs in to the setup registration) and report every deviation from what
/// mailconnect needs, each with the catalog code the sign-in would fail with: redirect URI not
/// under "Mobile and desktop applications" (or under Web), public client flows off, a missing
/// permission, admin consent missing for the organisation, a client secret or certificate expired
/// or expiring within 30 days, a single-tenant app signed in at `common`.
///
/// `options_json`: `{"setup_registration": "...", "flow", "login_hint", "graph": bool,
/// "app_only": bool}` (`graph` defaults to whether an account of the registration uses Graph,
/// `app_only` to whether it has a client secret). The report JSON has `registration_id`,
/// `client_id`, `tenant_id`, `display_name`, `graph`, `app_only`, `findings` (as for
/// `mc_admin_register`, errors first) and `ok` (no error among them). Deviations are in the
/// report, not the status.
///
/// # Ownership
/// `*out_report_json` is a new string; free it with `mc_string_free`.
///
/// # Threads
/// any thread except a mailconnect callback thread. Callbacks run on mailconnect threads.
///
/// # Errors
/// as `mc_admin_register`; `MC_E_NOT_FOUND` also for an unknown `registration_id`.
///
/// # Safety
/// `client` from `mc_client_open`; `registration_id` and `options_json` NUL-terminated;
/// `callbacks` NULL or valid until the call returns; `cancel` NULL or from `mc_cancel_new`;
/// `out_report_json` writable.
#[no_mangle]
pub unsafe extern "C" fn mc_admin_check(
    client: *mut mc_client,
    registration_id: *const c_char,
    options_json: *const c_char,
    callbacks: *const mc_connect_callbacks,
    cancel: *mut mc_cancel,
    out_report_json: *mut *mut c_char,
) -> i32 {
    call(|| {
        // SAFETY: contract of this export.
        let (cl, opts, observer) = unsafe {
            admin_args::<CheckOptions>(client, options_json, callbacks, out_report_json)?
        };
        // SAFETY: contract of this export.
        let id = unsafe { id_arg(registration_id, "registration_id")? };
        let report = cl.run(cancel, async |t| {
            cl.client.admin_check(id, &opts, &observer, t).await
        })?;
        // SAFETY: checked writable by admin_args.
        unsafe { give_json(out_report_json, &report) }
    })
}
