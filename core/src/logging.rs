//! Routing mailconnect's `tracing` records to a host: to one host callback at a level the host
//! chose, and to the event queues of clients that asked for `log` events.
//!
//! This module decides what reaches a host and how it reads; it installs nothing. A front end (the
//! C ABI) owns one [`LogRouter`], installs a `tracing` subscriber or layer whose events go to
//! [`LogRouter::on_event`], and adapts its host's callback to a [`LogFn`].
//!
//! Mail content never reaches a host: async-imap traces every line it decodes, that is mail
//! headers and bodies, so its TRACE records are dropped ([`is_private`]); its protocol lines at
//! DEBUG still pass. The rest of mailconnect never logs secrets.

use std::sync::{Arc, Mutex, RwLock, Weak};

use tracing::field::{Field, Visit};
use tracing::{Event, Level};

use crate::events::EventQueue;

/// Level number: off (nothing is forwarded).
pub const OFF: u8 = 0;
/// Level number: errors.
pub const ERROR: u8 = 1;
/// Level number: warnings.
pub const WARN: u8 = 2;
/// Level number: information.
pub const INFO: u8 = 3;
/// Level number: debugging.
pub const DEBUG: u8 = 4;
/// Level number: tracing.
pub const TRACE: u8 = 5;

/// The number of a `tracing` level (1 = error ... 5 = trace), as the hosts' `MC_LOG_*`.
pub fn level_of(level: &Level) -> u8 {
    match *level {
        Level::ERROR => ERROR,
        Level::WARN => WARN,
        Level::INFO => INFO,
        Level::DEBUG => DEBUG,
        Level::TRACE => TRACE,
    }
}

/// The name of a level number (`error` ... `trace`), as in `log` events.
pub fn level_name(level: u8) -> &'static str {
    match level {
        ERROR => "error",
        WARN => "warn",
        INFO => "info",
        DEBUG => "debug",
        _ => "trace",
    }
}

/// Whether a record at `level` from `target` may carry mail content and so is never forwarded:
/// async-imap's TRACE records (every line it decodes: headers and bodies).
pub fn is_private(level: u8, target: &str) -> bool {
    level == TRACE && target.starts_with("async_imap")
}

/// The text of a record: its message, then its other fields as ` name=value`.
pub fn format_record(event: &Event<'_>) -> String {
    let mut m = Message(String::new());
    event.record(&mut m);
    m.0
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

/// A host's receiver of log records: `(level, target, message)` with `level` 1 (error) ..
/// 5 (trace). Called on the thread that logs, possibly on several at once.
pub type LogFn = Box<dyn Fn(u8, &str, &str) + Send + Sync>;

struct Host {
    f: LogFn,
    max_level: u8,
}

/// Where log records go: one host callback and any number of client event queues (each at its
/// own level, [`EventQueue::log_level`]). A queue is held weakly: a freed client stops receiving.
pub struct LogRouter {
    host: RwLock<Option<Host>>,
    queues: Mutex<Vec<Weak<EventQueue>>>,
}

impl Default for LogRouter {
    fn default() -> Self {
        LogRouter::new()
    }
}

impl LogRouter {
    /// A router that forwards nothing yet (usable in a `static`).
    pub const fn new() -> LogRouter {
        LogRouter {
            host: RwLock::new(None),
            queues: Mutex::new(Vec::new()),
        }
    }

    /// Send records at or above `max_level` (1 = error .. 5 = trace; 0 = none) to `f` from now
    /// on, replacing the previous callback; `None` stops forwarding to the host. Returns after
    /// calls of the previous callback in progress have returned.
    pub fn set_host(&self, f: Option<LogFn>, max_level: u8) {
        if let Ok(mut h) = self.host.write() {
            *h = f.map(|f| Host { f, max_level });
        }
    }

    /// Send records to `queue` (at the queue's own level) from now on. Adding a queue twice has
    /// no further effect.
    pub fn route_to_queue(&self, queue: &Arc<EventQueue>) {
        if let Ok(mut qs) = self.queues.lock() {
            qs.retain(|w| w.strong_count() > 0);
            if !qs
                .iter()
                .any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(queue)))
            {
                qs.push(Arc::downgrade(queue));
            }
        }
    }

    /// Route one `tracing` record (call it from the subscriber or layer the front end installed).
    pub fn on_event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        self.route(level_of(meta.level()), meta.target(), || {
            format_record(event)
        });
    }

    /// Route a record at `level` from `target`; `message` is only formatted when someone
    /// receives the record.
    pub fn route(&self, level: u8, target: &str, message: impl FnOnce() -> String) {
        if is_private(level, target) {
            return;
        }
        let queues: Vec<Arc<EventQueue>> = self
            .queues
            .lock()
            .map(|qs| {
                qs.iter()
                    .filter_map(Weak::upgrade)
                    .filter(|q| q.log_level() >= level)
                    .collect()
            })
            .unwrap_or_default();
        let Ok(host) = self.host.read() else { return };
        let to_host = host.as_ref().filter(|h| level <= h.max_level);
        if to_host.is_none() && queues.is_empty() {
            return;
        }
        let message = message();
        for q in &queues {
            q.log(level, level_name(level), target, message.clone());
        }
        if let Some(h) = to_host {
            (h.f)(level, target, &message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicU64, Ordering};

    use tracing::span::{Attributes, Id, Record};
    use tracing::{Metadata, Subscriber};

    use crate::events::EventKind;

    /// A subscriber without spans that hands every event to a router, as the C ABI's layer does.
    struct ToRouter(Arc<LogRouter>, AtomicU64);
    impl Subscriber for ToRouter {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(self.1.fetch_add(1, Ordering::Relaxed) + 1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            self.0.on_event(event)
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    type Seen = Arc<Mutex<Vec<(u8, String, String)>>>;

    fn recording(router: &LogRouter, max_level: u8) -> Seen {
        let seen: Seen = Arc::default();
        let s = seen.clone();
        router.set_host(
            Some(Box::new(move |level, target, message| {
                s.lock()
                    .unwrap()
                    .push((level, target.to_string(), message.to_string()))
            })),
            max_level,
        );
        seen
    }

    fn with_router(router: &Arc<LogRouter>, f: impl FnOnce()) {
        tracing::subscriber::with_default(ToRouter(router.clone(), AtomicU64::new(0)), f);
    }

    #[test]
    fn records_reach_the_host_at_its_level_with_their_fields() {
        let router = Arc::new(LogRouter::new());
        let seen = recording(&router, INFO);
        with_router(&router, || {
            tracing::info!(target: "mailconnect::x", account = "a1", n = 3, "refreshed");
            tracing::debug!(target: "mailconnect::x", "too verbose");
            tracing::error!(target: "mailconnect::y", "failed");
        });
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            [
                (
                    INFO,
                    "mailconnect::x".to_string(),
                    "refreshed account=a1 n=3".to_string()
                ),
                (ERROR, "mailconnect::y".to_string(), "failed".to_string()),
            ]
        );
    }

    #[test]
    fn mail_content_traced_by_async_imap_never_reaches_a_host() {
        let router = Arc::new(LogRouter::new());
        let seen = recording(&router, TRACE);
        let queue = Arc::new(EventQueue::new(16));
        queue.configure(16, TRACE);
        router.route_to_queue(&queue);
        with_router(&router, || {
            tracing::trace!(target: "async_imap::imap_stream", "Subject: private");
            tracing::debug!(target: "async_imap::client", "A1 OK SELECT completed");
            tracing::trace!(target: "mailconnect::transport", "traced");
        });
        let texts: Vec<String> = seen.lock().unwrap().iter().map(|s| s.2.clone()).collect();
        assert_eq!(texts, ["A1 OK SELECT completed", "traced"]);
        let queued: Vec<String> = std::iter::from_fn(|| queue.try_next())
            .map(|e| match e.kind {
                EventKind::Log { message, .. } => message,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(queued, ["A1 OK SELECT completed", "traced"]);
        assert!(is_private(TRACE, "async_imap"));
        assert!(!is_private(DEBUG, "async_imap"));
    }

    #[test]
    fn queues_get_records_at_their_own_level_and_are_held_weakly() {
        let router = LogRouter::new();
        let warn = Arc::new(EventQueue::new(16));
        warn.configure(16, WARN);
        let debug = Arc::new(EventQueue::new(16));
        debug.configure(16, DEBUG);
        router.route_to_queue(&warn);
        router.route_to_queue(&warn);
        router.route_to_queue(&debug);
        let mut formatted = 0;
        router.route(INFO, "t", || {
            formatted += 1;
            "hello".into()
        });
        assert_eq!(formatted, 1, "formatted once for all receivers");
        assert!(warn.is_empty());
        let e = debug.try_next().unwrap();
        assert!(e.to_json().contains(r#""level":"info""#), "{}", e.to_json());
        router.route(ERROR, "t", || "bad".into());
        assert_eq!(warn.len(), 1, "a queue added twice gets a record once");
        drop(debug);
        router.route(TRACE, "t", || unreachable!("nobody receives trace records"));
        assert_eq!(router.queues.lock().unwrap().len(), 2);
        router.route_to_queue(&warn);
        assert_eq!(
            router.queues.lock().unwrap().len(),
            1,
            "freed queues are forgotten"
        );
    }

    #[test]
    fn a_cleared_host_receives_nothing() {
        let router = LogRouter::new();
        let seen = recording(&router, TRACE);
        router.route(ERROR, "t", || "one".into());
        assert_eq!(seen.lock().unwrap().len(), 1);
        router.set_host(None, TRACE);
        router.route(ERROR, "t", || unreachable!("no receiver"));
        let seen = recording(&router, OFF);
        router.route(ERROR, "t", || unreachable!("level off"));
        assert!(seen.lock().unwrap().is_empty());
    }
}
