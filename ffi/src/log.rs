//! Forwarding mailconnect's log records to a host callback.

use std::ffi::{c_char, c_void, CString};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

use mailconnect_core::EventQueue;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use crate::guard::call;
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

struct Sink {
    cb: mc_log_fn,
    user_data: usize,
    max_level: i32,
}

static SINK: RwLock<Sink> = RwLock::new(Sink {
    cb: None,
    user_data: 0,
    max_level: MC_LOG_OFF,
});
static INSTALLED: OnceLock<bool> = OnceLock::new();
/// Client event queues that asked for log records.
static QUEUES: Mutex<Vec<Weak<EventQueue>>> = Mutex::new(Vec::new());

fn install() {
    INSTALLED.get_or_init(|| {
        tracing_subscriber::registry()
            .with(HostLayer)
            .try_init()
            .is_ok()
    });
}

/// Send log records to a client's event queue (at the queue's own level) from now on.
pub(crate) fn route_to_queue(q: &Arc<EventQueue>) {
    if let Ok(mut qs) = QUEUES.lock() {
        qs.retain(|w| w.strong_count() > 0);
        if !qs.iter().any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(q))) {
            qs.push(Arc::downgrade(q));
        }
    }
    install();
}

fn level_name(level: i32) -> &'static str {
    match level {
        MC_LOG_ERROR => "error",
        MC_LOG_WARN => "warn",
        MC_LOG_INFO => "info",
        MC_LOG_DEBUG => "debug",
        _ => "trace",
    }
}

fn level_num(l: &Level) -> i32 {
    match *l {
        Level::ERROR => MC_LOG_ERROR,
        Level::WARN => MC_LOG_WARN,
        Level::INFO => MC_LOG_INFO,
        Level::DEBUG => MC_LOG_DEBUG,
        Level::TRACE => MC_LOG_TRACE,
    }
}

struct Message(String);
impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            self.0.push_str(&format!(" {}={value}", field.name()));
        }
    }
}

struct HostLayer;
impl<S: Subscriber> Layer<S> for HostLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = level_num(event.metadata().level());
        // async-imap traces every line it decodes: mail headers and bodies. Private, so never
        // forwarded to hosts (its protocol lines at DEBUG still are).
        if level == MC_LOG_TRACE && event.metadata().target().starts_with("async_imap") {
            return;
        }
        let queues: Vec<Arc<EventQueue>> = QUEUES
            .lock()
            .map(|qs| {
                qs.iter()
                    .filter_map(Weak::upgrade)
                    .filter(|q| i32::from(q.log_level()) >= level)
                    .collect()
            })
            .unwrap_or_default();
        let Ok(sink) = SINK.read() else { return };
        let to_host = sink.cb.filter(|_| level <= sink.max_level);
        if to_host.is_none() && queues.is_empty() {
            return;
        }
        let mut m = Message(String::new());
        event.record(&mut m);
        for q in &queues {
            q.log(
                level as u8,
                level_name(level),
                event.metadata().target(),
                m.0.clone(),
            );
        }
        let Some(cb) = to_host else { return };
        let target = CString::new(event.metadata().target()).unwrap_or_default();
        let msg = CString::new(m.0.replace('\0', " ")).unwrap_or_default();
        // SAFETY: the host registered a valid callback with its user data (mc_set_log_callback contract).
        unsafe {
            cb(
                sink.user_data as *mut c_void,
                level,
                target.as_ptr(),
                msg.as_ptr(),
            )
        };
    }
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
pub unsafe extern "C" fn mc_set_log_callback(
    cb: mc_log_fn,
    user_data: *mut c_void,
    max_level: i32,
) -> i32 {
    call(|| {
        if !(MC_LOG_OFF..=MC_LOG_TRACE).contains(&max_level) {
            return Err(FfiError::new(
                MC_E_INVALID_ARGUMENT,
                format!("'max_level' must be 0..5, not {max_level}"),
            ));
        }
        if let Ok(mut s) = SINK.write() {
            *s = Sink {
                cb,
                user_data: user_data as usize,
                max_level,
            };
        }
        install();
        Ok(())
    })
}
