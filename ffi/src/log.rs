//! Forwarding mailconnect's log records to a host callback.

use std::ffi::{c_char, c_void};
use std::sync::{Arc, OnceLock};

use mailconnect_core::logging::{self, LogFn, LogRouter};
use mailconnect_core::EventQueue;

use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use crate::guard::{c_string, call};
use crate::status::{FfiError, MC_E_INVALID_ARGUMENT};

/// Log level: off.
pub const MC_LOG_OFF: i32 = 0;
/// Log level: errors.
pub const MC_LOG_ERROR: i32 = 1;
/// Log level: warnings.
pub const MC_LOG_WARN: i32 = 2;
/// Log level: information.
pub const MC_LOG_INFO: i32 = 3;
/// Log level: debugging.
pub const MC_LOG_DEBUG: i32 = 4;
/// Log level: tracing.
pub const MC_LOG_TRACE: i32 = 5;

// The host's level numbers are core's.
const _: () = assert!(
    MC_LOG_OFF == logging::OFF as i32
        && MC_LOG_ERROR == logging::ERROR as i32
        && MC_LOG_WARN == logging::WARN as i32
        && MC_LOG_INFO == logging::INFO as i32
        && MC_LOG_DEBUG == logging::DEBUG as i32
        && MC_LOG_TRACE == logging::TRACE as i32
);

/// A log callback: `level` is one of `MC_LOG_*`, `target` the module, `message` the text (UTF-8;
/// never contains tokens, codes or secrets). Strings are valid during the call only. Called on the
/// thread that logs (often a mailconnect thread); must not call back into mailconnect.
pub type mc_log_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        level: i32,
        target: *const c_char,
        message: *const c_char,
    ),
>;

/// Where this process's log records go (the host callback, client event queues); the filter that
/// keeps mail content from hosts and the formatting are core's.
static ROUTER: LogRouter = LogRouter::new();
static INSTALLED: OnceLock<bool> = OnceLock::new();

fn install() {
    INSTALLED.get_or_init(|| {
        tracing_subscriber::registry()
            .with(RouterLayer)
            .try_init()
            .is_ok()
    });
}

/// Send log records to a client's event queue (at the queue's own level) from now on.
pub(crate) fn route_to_queue(q: &Arc<EventQueue>) {
    ROUTER.route_to_queue(q);
    install();
}

/// The process's `tracing` layer: every record goes to [`ROUTER`].
struct RouterLayer;
impl<S: Subscriber> Layer<S> for RouterLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        ROUTER.on_event(event);
    }
}

/// The host's C callback as a core [`LogFn`]: strings become C strings valid during the call.
fn host_fn(cb: mc_log_fn, user_data: *mut c_void) -> Option<LogFn> {
    let cb = cb?;
    let user_data = user_data as usize;
    Some(Box::new(move |level, target, message| {
        let (target, message) = (c_string(target), c_string(message));
        // SAFETY: the host registered a valid callback with its user data (mc_log_callback_set
        // contract).
        unsafe {
            cb(
                user_data as *mut c_void,
                i32::from(level),
                target.as_ptr(),
                message.as_ptr(),
            )
        };
    }))
}

/// A `MC_LOG_*` level argument.
fn level_arg(max_level: i32) -> Result<u8, FfiError> {
    let level = u8::try_from(max_level).ok();
    level.filter(|l| *l <= logging::TRACE).ok_or_else(|| {
        FfiError::new(
            MC_E_INVALID_ARGUMENT,
            format!("'max_level' must be 0..5, not {max_level}"),
        )
    })
}

/// Receive mailconnect's log records at or above `max_level` (`MC_LOG_ERROR` .. `MC_LOG_TRACE`;
/// `MC_LOG_OFF` or a NULL `cb` stops forwarding). Process-wide; replaces the previous callback.
/// Records never contain tokens, authorization codes, client secrets or PKCE verifiers.
///
/// mailconnect installs its forwarder as the process's global `tracing` subscriber the first time
/// this is called, unless the process already has one (then that one keeps receiving the records).
///
/// # Ownership
/// `user_data` is passed back as is.
///
/// # Threads
/// any thread; the callback runs on the thread that logs and may run concurrently.
///
/// # Errors
/// `MC_E_INVALID_ARGUMENT` for a level outside 0..5.
///
/// # Safety
/// `cb` must stay callable (and `user_data` valid) until replaced or the process ends.
#[no_mangle]
pub unsafe extern "C" fn mc_log_callback_set(
    cb: mc_log_fn,
    user_data: *mut c_void,
    max_level: i32,
) -> i32 {
    call(|| {
        ROUTER.set_host(host_fn(cb, user_data), level_arg(max_level)?);
        install();
        Ok(())
    })
}
