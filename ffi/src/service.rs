//! The background refresher for service processes: `mc_refresher_start`, `mc_refresher_stop`,
//! `mc_refresher_run`.

use std::ffi::c_char;

use std::sync::MutexGuard;

use mailconnect_core::{CancellationToken, Refresher, RefresherOptions};

use crate::cancel::mc_cancel;
use crate::client::{client_arg, mc_client};
use crate::guard::{call, give_json, opt_json_arg, out_arg};
use crate::status::{FfiError, MC_E_INTERNAL, MC_E_STATE};

impl mc_client {
    /// Start the background refresher on the client's runtime, unless it is running.
    fn start_refresher(&self, opts: RefresherOptions) -> Result<(), FfiError> {
        let mut slot = self.refresher_slot()?;
        if slot.as_ref().is_some_and(|t| !t.is_cancelled()) {
            return Err(FfiError::new(
                MC_E_STATE,
                "the refresher is already running; stop it first to change its options",
            ));
        }
        let token = self.shutdown.child_token();
        let r = Refresher::new(self.client.clone(), opts);
        let t = token.clone();
        self.spawn(async move { r.run(&t).await });
        *slot = Some(token);
        Ok(())
    }

    fn refresher_slot(&self) -> Result<MutexGuard<'_, Option<CancellationToken>>, FfiError> {
        self.refresher
            .lock()
            .map_err(|_| FfiError::new(MC_E_INTERNAL, "refresher lock poisoned"))
    }
}

/// Start keeping every connected account's access token fresh in the background, on the client's
/// own threads, until `mc_refresher_stop` or `mc_client_free`. For a vendor's mail service: tokens
/// are ready when mail is due, and an account that needs re-authorization is reported at once as a
/// `needs_reauthorization` event (`mc_events_next`).
///
/// `options_json` (may be NULL): `{"interval_secs": 30, "ahead_secs": 600, "jitter_secs": 120,
/// "concurrency": 8, "backoff_min_secs": 30, "backoff_max_secs": 900}` — refresh tokens expiring
/// within `ahead_secs` (+ a per-account jitter), at most `concurrency` at once, checking every
/// `interval_secs`; a 429 from the provider backs off that tenant (Retry-After honoured). Several
/// processes on one store never refresh an account twice (the store's refresh lease).
///
/// # Threads
/// any thread. Returns at once.
///
/// # Errors
/// `MC_E_STATE` (already running), `MC_E_INVALID_ARGUMENT` (bad options), `MC_E_NULL_POINTER`,
/// `MC_E_INVALID_UTF8`.
///
/// # Safety
/// `client` from `mc_client_open`; `options_json` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mc_refresher_start(
    client: *mut mc_client,
    options_json: *const c_char,
) -> i32 {
    call(|| {
        // SAFETY: contract of this export.
        let cl = unsafe { client_arg(client)? };
        // SAFETY: contract of this export.
        let opts =
            unsafe { opt_json_arg(options_json, "options_json", RefresherOptions::from_json)? };
        cl.start_refresher(opts)
    })
}

/// Stop the background refresher (a refresh in progress finishes or is cancelled cleanly; the
/// store stays consistent). Stopping a stopped refresher succeeds.
///
/// # Threads
/// any thread. Returns at once.
///
/// # Errors
/// `MC_E_NULL_POINTER`.
///
/// # Safety
/// `client` from `mc_client_open`.
#[no_mangle]
pub unsafe extern "C" fn mc_refresher_stop(client: *mut mc_client) -> i32 {
    call(|| {
        // SAFETY: contract of this export.
        let cl = unsafe { client_arg(client)? };
        if let Some(t) = cl.refresher_slot()?.take() {
            t.cancel();
        }
        Ok(())
    })
}

/// Run one refresher round now, on the calling thread (for hosts with their own timer, e.g. a
/// Windows service's): refresh every account that is due under `options_json` (as
/// `mc_refresher_start`; NULL = defaults). `*out_report_json`: `{"accounts", "fresh",
/// "refreshed", "failed", "needs_reauthorization", "backing_off", "not_connected"}` (counts).
///
/// # Ownership
/// `*out_report_json` is a new string; free it with `mc_string_free`.
///
/// # Threads
/// any thread except a mailconnect callback thread.
///
/// # Errors
/// `MC_E_INVALID_ARGUMENT`, `MC_E_STORE`, `MC_E_CANCELLED`, `MC_E_NULL_POINTER`,
/// `MC_E_INVALID_UTF8`. Failures of single accounts are counted in the report and raised as events.
///
/// # Safety
/// `client` from `mc_client_open`; `options_json` NULL or NUL-terminated; `cancel` NULL or
/// from `mc_cancel_new`; `out_report_json` writable.
#[no_mangle]
pub unsafe extern "C" fn mc_refresher_run(
    client: *mut mc_client,
    options_json: *const c_char,
    cancel: *mut mc_cancel,
    out_report_json: *mut *mut c_char,
) -> i32 {
    call(|| {
        out_arg(out_report_json, "out_report_json")?;
        // SAFETY: contract of this export.
        let cl = unsafe { client_arg(client)? };
        // SAFETY: contract of this export.
        let opts =
            unsafe { opt_json_arg(options_json, "options_json", RefresherOptions::from_json)? };
        let r = Refresher::new(cl.client.clone(), opts);
        let report = cl.run(cancel, async |t| r.round(t).await)?;
        // SAFETY: checked writable above.
        unsafe { give_json(out_report_json, &report) }
    })
}
