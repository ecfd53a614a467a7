//! Host-driven sign-in: begin, then complete / poll / wait, or abort.

use std::ffi::c_char;

use mailconnect_core::BeginOptions;

use crate::cancel::mc_cancel;
use crate::client::{client_arg, mc_client};
use crate::guard::{
    call, give_json, give_optional, id_arg, opt_json_arg, opt_out_arg, out_arg, str_arg,
};

/// Begin a sign-in for an account and get what to show, for hosts that show the sign-in
/// themselves (an embedded web view, their own device-code dialog).
///
/// `options_json` (may be NULL): `{"flow": "browser"|"device", "redirect_uri": URI}`. Without a
/// flow the account's is used. For the browser flow the redirect URI defaults to the
/// registration's, else `http://localhost`: a loopback URI makes mailconnect listen (finish with
/// `mc_authorization_wait`, or `mc_authorization_complete` if your web view intercepts the
/// redirect); any other registered URI, such as
/// `https://login.microsoftonline.com/common/oauth2/nativeclient`, must be intercepted by the host's
/// web view and passed to `mc_authorization_complete`.
///
/// `*out_json`: `{"handle", "account_id", "flow", "expires_at", "expires_in_secs"}` plus, for the
/// browser flow, `"url"` (show it), `"redirect_uri"`, `"loopback"`; for the device flow
/// `"user_code"`, `"verification_uri"`, `"verification_uri_complete"` (when offered), `"message"`,
/// `"interval_secs"`. The handle is single-use and expires at `expires_at`; nothing is stored
/// until the sign-in completes.
///
/// # Ownership
/// `*out_json` is a new string; free it with `mc_string_free`.
///
/// # Threads
/// any thread except a mailconnect callback thread.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_INVALID_UTF8`, `MC_E_NOT_FOUND` (account), `MC_E_INVALID_ARGUMENT`
/// (bad options; an app-only account), `MC_E_PROVIDER_CONFIGURATION` (no device endpoint),
/// `MC_E_NETWORK`, `MC_E_PROVIDER_UNAVAILABLE`, `MC_E_AUTHORIZATION_DENIED`, `MC_E_CANCELLED`.
///
/// # Safety
/// `client` from `mc_client_open`; strings NUL-terminated (`options_json` may be NULL);
/// `cancel` NULL or from `mc_cancel_new`; `out_json` writable.
#[no_mangle]
pub unsafe extern "C" fn mc_authorization_begin(
    client: *mut mc_client,
    account_id: *const c_char,
    options_json: *const c_char,
    cancel: *mut mc_cancel,
    out_json: *mut *mut c_char,
) -> i32 {
    call(|| {
        out_arg(out_json, "out_json")?;
        // SAFETY: contract of this export.
        let (cl, id) = unsafe { (client_arg(client)?, id_arg(account_id, "account_id")?) };
        // SAFETY: NULL or NUL-terminated per the contract.
        let opts = unsafe { opt_json_arg(options_json, "options_json", BeginOptions::from_json)? };
        let a = cl.run(cancel, async |t| {
            cl.client.begin_authorization(id, &opts, t).await
        })?;
        // SAFETY: checked writable above.
        unsafe { give_json(out_json, &a) }
    })
}

/// Complete a browser sign-in with the redirect the host captured: the full URL the web view was
/// sent to (preferred: its `state` is checked), its query string, or the bare code. Redeems the
/// code, checks the signed-in identity and stores the tokens.
///
/// A URL for another redirect URI, another sign-in (`state` mismatch) or another flow is refused
/// and the sign-in stays pending (the right URL may still come). An error redirect
/// (`error=access_denied`, `error=consent_required`, ...) ends it with the provider's error and
/// its diagnostic. A completed, aborted or expired handle is refused (`MC_E_STATE` / `MC_E_TIMEOUT`).
///
/// # Ownership
/// `*out_status_json` (if `out_status_json` is not NULL) is the account's status; free it with
/// `mc_string_free`.
///
/// # Threads
/// any thread except a mailconnect callback thread. One call per handle at a time.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_INVALID_UTF8`, `MC_E_INVALID_ARGUMENT` (unreadable redirect),
/// `MC_E_STATE` (unknown/finished handle, state mismatch, wrong redirect or flow),
/// `MC_E_TIMEOUT` (expired), `MC_E_AUTHORIZATION_DENIED` (declined; another account signed in),
/// `MC_E_PROVIDER_CONFIGURATION`, `MC_E_NETWORK`, `MC_E_PROVIDER_UNAVAILABLE`, `MC_E_STORE`,
/// `MC_E_CANCELLED`.
///
/// # Safety
/// `client` from `mc_client_open`; strings NUL-terminated; `cancel` NULL or from
/// `mc_cancel_new`; `out_status_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mc_authorization_complete(
    client: *mut mc_client,
    handle: *const c_char,
    redirect: *const c_char,
    cancel: *mut mc_cancel,
    out_status_json: *mut *mut c_char,
) -> i32 {
    call(|| {
        opt_out_arg(out_status_json);
        // SAFETY: contract of this export.
        let (cl, h) = unsafe { (client_arg(client)?, id_arg(handle, "handle")?) };
        // SAFETY: contract of this export.
        let r = unsafe { str_arg(redirect, "redirect")? };
        let status = cl.run(cancel, async |t| {
            cl.client.complete_authorization(h, r, t).await
        })?;
        // SAFETY: NULL or writable per the contract.
        unsafe { give_optional(out_status_json, &status) }
    })
}

/// Check a device-code sign-in once. Returns at once when the provider's polling interval has not
/// passed yet; otherwise makes one request to the provider.
///
/// `*out_json`: `{"state": "pending", "retry_after_ms": N}` (call again after N ms) or
/// `{"state": "connected", "status": {...}}` (done; the handle is finished).
///
/// # Ownership
/// `*out_json` is a new string; free it with `mc_string_free`.
///
/// # Threads
/// any thread except a mailconnect callback thread.
///
/// # Errors
/// `MC_E_STATE` (unknown/finished handle; a browser sign-in), `MC_E_TIMEOUT` (the code expired),
/// `MC_E_AUTHORIZATION_DENIED` (declined), `MC_E_PROVIDER_CONFIGURATION`, `MC_E_STORE`,
/// `MC_E_CANCELLED`, `MC_E_NULL_POINTER`, `MC_E_INVALID_UTF8`.
///
/// # Safety
/// `client` from `mc_client_open`; `handle` NUL-terminated; `cancel` NULL or from
/// `mc_cancel_new`; `out_json` writable.
#[no_mangle]
pub unsafe extern "C" fn mc_authorization_poll(
    client: *mut mc_client,
    handle: *const c_char,
    cancel: *mut mc_cancel,
    out_json: *mut *mut c_char,
) -> i32 {
    call(|| {
        out_arg(out_json, "out_json")?;
        // SAFETY: contract of this export.
        let (cl, h) = unsafe { (client_arg(client)?, id_arg(handle, "handle")?) };
        let r = cl.run(cancel, async |t| cl.client.poll_authorization(h, t).await)?;
        // SAFETY: checked writable above.
        unsafe { give_json(out_json, &r) }
    })
}

/// Wait until a sign-in finishes: the browser coming back to mailconnect's loopback listener, or
/// the user entering the device code. Ends with the account connected, the provider's error, the
/// sign-in's expiry, or `cancel` (then the sign-in stays pending and can be waited for again).
///
/// # Ownership
/// `*out_status_json` (if not NULL) is the account's status; free it with `mc_string_free`.
///
/// # Threads
/// any thread except a mailconnect callback thread.
///
/// # Errors
/// as `mc_authorization_complete`, plus `MC_E_STATE` for a sign-in whose redirect URI
/// mailconnect cannot listen on (complete it with the captured URL instead).
///
/// # Safety
/// `client` from `mc_client_open`; `handle` NUL-terminated; `cancel` NULL or from
/// `mc_cancel_new`; `out_status_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mc_authorization_wait(
    client: *mut mc_client,
    handle: *const c_char,
    cancel: *mut mc_cancel,
    out_status_json: *mut *mut c_char,
) -> i32 {
    call(|| {
        opt_out_arg(out_status_json);
        // SAFETY: contract of this export.
        let (cl, h) = unsafe { (client_arg(client)?, id_arg(handle, "handle")?) };
        let status = cl.run(cancel, async |t| cl.client.wait_authorization(h, t).await)?;
        // SAFETY: NULL or writable per the contract.
        unsafe { give_optional(out_status_json, &status) }
    })
}

/// Abandon a pending sign-in (the user closed the window): its loopback listener closes and the
/// handle is refused afterwards.
///
/// # Threads
/// any thread.
///
/// # Errors
/// `MC_E_STATE` (unknown or finished handle), `MC_E_NULL_POINTER`, `MC_E_INVALID_UTF8`.
///
/// # Safety
/// `client` from `mc_client_open`; `handle` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mc_authorization_abort(
    client: *mut mc_client,
    handle: *const c_char,
) -> i32 {
    call(|| {
        // SAFETY: contract of this export.
        let (cl, h) = unsafe { (client_arg(client)?, id_arg(handle, "handle")?) };
        let _enter = cl.enter();
        cl.client.abort_authorization(h)?;
        Ok(())
    })
}
