//! The per-client event queue: `mc_events_configure`, `mc_events_next`.

use std::ffi::c_char;
use std::ptr::null;
use std::time::Duration;

use mailconnect_core::events::EventOptions;
use mailconnect_core::Event;

use crate::client::{client_arg, mc_client};
use crate::guard::{call, give_json, out_arg, str_arg};
use crate::status::FfiError;

/// Configure the client's event queue. `options_json`: `{"capacity": N, "log_level": LEVEL}`;
/// `capacity` 2..100000 (default 1024), `log_level` `off` (default), `error`, `warn`, `info`,
/// `debug` or `trace`: log records at or above it become `log` events.
///
/// Events are always collected (without log records unless asked for); the queue is bounded and
/// never blocks mailconnect: when full, log records are dropped first, then the oldest events, and
/// the next `mc_events_next` reports `{"type": "events_dropped", "count": N}`.
///
/// Log events come from mailconnect's process-wide `tracing` subscriber, installed by the first
/// call that asks for them (or by `mc_log_callback_set`); every client that asked receives every
/// record. If the process already has another global subscriber, no log events arrive.
///
/// # Threads
/// any thread.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_INVALID_UTF8`, `MC_E_INVALID_ARGUMENT` (bad JSON, unknown level,
/// capacity out of range).
///
/// # Safety
/// `client` from `mc_client_open`; `options_json` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn mc_events_configure(
    client: *mut mc_client,
    options_json: *const c_char,
) -> i32 {
    call(|| {
        // SAFETY: contract of this export.
        let (cl, json) = unsafe { (client_arg(client)?, str_arg(options_json, "options_json")?) };
        let options = EventOptions::from_json(json)?;
        let events = cl.client.events();
        events.apply(&options);
        if options.log_level > 0 {
            crate::log::route_to_queue(events);
        }
        Ok(())
    })
}

/// Take the next event of the client, waiting up to `timeout_ms` milliseconds for one (0 = do not
/// wait, negative = until one arrives or the client is freed). On success `*out_event_json` is the
/// event, or NULL when none arrived in time.
///
/// Event JSON: `{"seq": N, "time": RFC3339, "type": T, ...}` with `type`
/// - `token_refreshed`: `account_id`, `expires_at`;
/// - `needs_reauthorization`: `account_id`, `reason`, `diagnostic` (as `mc_error_diagnostic_get`);
/// - `connect_progress`: `account_id`, `stage` (as `mc_connect_callbacks.on_progress`);
/// - `state_changed`: `account_id`, `from`, `to` (`not_connected`, `connected`,
///   `needs_reauthorization`, `error`);
/// - `log`: `level`, `target`, `message` (only when enabled with `mc_events_configure`);
/// - `events_dropped`: `count` (`seq` 0).
///
/// `seq` increases by one per event; a gap means events were dropped.
///
/// # Ownership
/// `*out_event_json` (when not NULL) is a new string; free it with `mc_string_free`.
///
/// # Threads
/// any thread except a mailconnect callback thread; typically one host thread loops on it. Several
/// threads may wait at once; each event goes to one of them.
///
/// # Errors
/// `MC_E_NULL_POINTER`, `MC_E_STATE` (called from a mailconnect callback thread).
///
/// # Safety
/// `client` from `mc_client_open`; `out_event_json` writable.
#[no_mangle]
pub unsafe extern "C" fn mc_events_next(
    client: *mut mc_client,
    timeout_ms: i32,
    out_event_json: *mut *mut c_char,
) -> i32 {
    call(|| {
        out_arg(out_event_json, "out_event_json")?;
        // SAFETY: contract of this export.
        let cl = unsafe { client_arg(client)? };
        match cl.next_event(timeout_ms)? {
            // SAFETY: checked writable above.
            Some(e) => unsafe { give_json(out_event_json, &e) },
            None => Ok(()),
        }
    })
}

impl mc_client {
    /// The next event, waiting up to `timeout_ms` (0 = not at all, negative = about a year: until
    /// one arrives or the client is freed).
    fn next_event(&self, timeout_ms: i32) -> Result<Option<Event>, FfiError> {
        let events = self.client.events();
        let timeout = match timeout_ms {
            0 => return Ok(events.try_next()),
            ms if ms < 0 => Duration::from_secs(365 * 24 * 3600),
            ms => Duration::from_millis(ms as u64),
        };
        self.run(null(), async |c| Ok(events.next(timeout, c).await))
    }
}
