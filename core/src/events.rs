//! The per-client event queue a host pulls from (`mc_events_next`).
//!
//! Events: a token was refreshed, an account needs re-authorization (with the diagnostic), connect
//! progress stages, account state changes, and log records at or above a level the host chose.
//! The queue is bounded and never blocks the library: when it is full, the oldest log record is
//! dropped first; when there is none, the oldest event is dropped; a log record arriving at a full
//! queue of non-log events is dropped itself. Drops are counted and reported to the host as an
//! `events_dropped` event before the next event it receives.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::account_state::AccountState;
use crate::error::{quote, Error, ReauthReason, Result};
use crate::oauth::{ConnectObserver, ConnectStage};

/// What happened.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A new access token was obtained with the refresh token (or app credentials).
    TokenRefreshed {
        /// The account.
        account_id: String,
        /// New expiry (RFC 3339).
        expires_at: String,
    },
    /// The account must be connected again interactively.
    NeedsReauthorization {
        /// The account.
        account_id: String,
        /// Why.
        reason: ReauthReason,
        /// The catalog entry (as `mc_error_diagnostic_get`).
        diagnostic: serde_json::Value,
    },
    /// Ahead of time (the background refresher, within its `ahead_secs`): the account has no
    /// refresh token, so it must be connected again when its access token expires. Sent once
    /// per access token.
    ReauthorizationDue {
        /// The account.
        account_id: String,
        /// When the access token expires (RFC 3339).
        at: String,
        /// The catalog entry that explains it (`MC-NO-REFRESH-TOKEN`).
        code: &'static str,
    },
    /// A connect (or host-driven sign-in) reached a stage.
    ConnectProgress {
        /// The account.
        account_id: String,
        /// The stage (`starting`, `opening_browser`, ... `connected`).
        stage: &'static str,
    },
    /// The account's state changed.
    StateChanged {
        /// The account.
        account_id: String,
        /// Before.
        from: AccountState,
        /// After.
        to: AccountState,
    },
    /// A log record (only when the host asked for log events).
    Log {
        /// `error`, `warn`, `info`, `debug` or `trace`.
        level: &'static str,
        /// The module that logged.
        target: String,
        /// The text (never contains secrets).
        message: String,
    },
    /// Events were dropped because the host did not pull them fast enough.
    EventsDropped {
        /// How many.
        count: u64,
    },
}

/// One event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Increasing per client, starting at 1; gaps mean dropped events.
    pub seq: u64,
    /// When (RFC 3339, UTC, with milliseconds).
    pub time: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// The event as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// Log level threshold for log events: 0 = off, 1 = error ... 5 = trace.
pub fn level_number(level: &str) -> Option<u8> {
    Some(match level {
        "off" => 0,
        "error" => 1,
        "warn" => 2,
        "info" => 3,
        "debug" => 4,
        "trace" => 5,
        _ => return None,
    })
}

/// The options of a client's event queue, from the JSON of `mc_events_configure`:
/// `{"capacity": N, "log_level": LEVEL}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventOptions {
    /// How many events the queue holds (2..=100000, default [`EventQueue::DEFAULT_CAPACITY`]).
    pub capacity: usize,
    /// Log records at or above this level become `log` events (0 = off, the default; 1 = error
    /// ... 5 = trace; see [`level_number`]).
    pub log_level: u8,
}

impl Default for EventOptions {
    fn default() -> Self {
        EventOptions {
            capacity: EventQueue::DEFAULT_CAPACITY,
            log_level: 0,
        }
    }
}

impl EventOptions {
    /// The smallest and largest capacity accepted.
    pub const CAPACITY: std::ops::RangeInclusive<usize> = 2..=100_000;

    /// Parse the options JSON; a missing field keeps its default, an unknown one is refused.
    pub fn from_json(json: &str) -> Result<EventOptions> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            #[serde(default)]
            capacity: Option<usize>,
            #[serde(default)]
            log_level: Option<String>,
        }
        let raw: Raw = crate::model::parse_json("event options", json)?;
        let mut o = EventOptions::default();
        if let Some(capacity) = raw.capacity {
            if !Self::CAPACITY.contains(&capacity) {
                return Err(Error::invalid(
                    "capacity",
                    format!("'capacity' must be between 2 and 100000, not {capacity}"),
                ));
            }
            o.capacity = capacity;
        }
        if let Some(l) = raw.log_level {
            o.log_level = level_number(&l).ok_or_else(|| {
                Error::invalid(
                    "log_level",
                    format!(
                        "'log_level' must be off, error, warn, info, debug or trace, not '{}'",
                        quote(&l)
                    ),
                )
            })?;
        }
        Ok(o)
    }
}

struct Queue {
    items: VecDeque<Event>,
    capacity: usize,
    dropped: u64,
}

/// A bounded, non-blocking (for producers) event queue.
pub struct EventQueue {
    q: Mutex<Queue>,
    notify: Notify,
    seq: AtomicU64,
    log_level: AtomicU8,
}

impl Default for EventQueue {
    fn default() -> Self {
        EventQueue::new(EventQueue::DEFAULT_CAPACITY)
    }
}

impl EventQueue {
    /// Default capacity.
    pub const DEFAULT_CAPACITY: usize = 1024;

    /// A queue holding at most `capacity` events (at least 2).
    pub fn new(capacity: usize) -> EventQueue {
        EventQueue {
            q: Mutex::new(Queue {
                items: VecDeque::new(),
                capacity: capacity.max(2),
                dropped: 0,
            }),
            notify: Notify::new(),
            seq: AtomicU64::new(0),
            log_level: AtomicU8::new(0),
        }
    }

    /// Apply options (as [`EventQueue::configure`]).
    pub fn apply(&self, options: &EventOptions) {
        self.configure(options.capacity, options.log_level);
    }

    /// Change the capacity (dropping the oldest events when it shrinks) and the log level.
    pub fn configure(&self, capacity: usize, log_level: u8) {
        self.log_level.store(log_level.min(5), Ordering::Relaxed);
        if let Ok(mut q) = self.q.lock() {
            q.capacity = capacity.max(2);
            while q.items.len() > q.capacity {
                q.items.pop_front();
                q.dropped += 1;
            }
        }
    }

    /// The log level threshold (0 = no log events).
    pub fn log_level(&self) -> u8 {
        self.log_level.load(Ordering::Relaxed)
    }

    /// Add an event. Never blocks beyond a short lock; drops per the module rules when full.
    pub fn push(&self, kind: EventKind) {
        let is_log = matches!(kind, EventKind::Log { .. });
        let Ok(mut q) = self.q.lock() else { return };
        if q.items.len() >= q.capacity {
            if let Some(pos) = q
                .items
                .iter()
                .position(|e| matches!(e.kind, EventKind::Log { .. }))
            {
                q.items.remove(pos);
            } else if is_log {
                q.dropped += 1;
                return;
            } else {
                q.items.pop_front();
            }
            q.dropped += 1;
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        q.items.push_back(Event {
            seq,
            time: now_rfc3339(),
            kind,
        });
        drop(q);
        self.notify.notify_one();
    }

    /// Add a log record if the level passes the threshold.
    pub fn log(&self, level: u8, level_name: &'static str, target: &str, message: String) {
        if level == 0 || level > self.log_level() {
            return;
        }
        self.push(EventKind::Log {
            level: level_name,
            target: target.to_string(),
            message,
        });
    }

    /// Take the next event without waiting.
    pub fn try_next(&self) -> Option<Event> {
        let mut q = self.q.lock().ok()?;
        if q.dropped > 0 {
            let count = std::mem::take(&mut q.dropped);
            return Some(Event {
                seq: 0,
                time: now_rfc3339(),
                kind: EventKind::EventsDropped { count },
            });
        }
        q.items.pop_front()
    }

    /// Wait up to `timeout` for the next event; `None` on timeout or cancellation.
    pub async fn next(&self, timeout: Duration, cancel: &CancellationToken) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(e) = self.try_next() {
                return Some(e);
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => return self.try_next(),
                _ = cancel.cancelled() => return None,
            }
        }
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.q.lock().map(|q| q.items.len()).unwrap_or(0)
    }

    /// Whether no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn now_rfc3339() -> String {
    let t = time::OffsetDateTime::now_utc();
    let t = t
        .replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Forwards to the host's observer and records progress events.
pub(crate) struct EventObserver<'a> {
    pub(crate) host: &'a dyn ConnectObserver,
    pub(crate) events: &'a EventQueue,
    pub(crate) account_id: &'a str,
}

impl ConnectObserver for EventObserver<'_> {
    fn open_url(&self, url: &str) -> bool {
        self.host.open_url(url)
    }
    fn device_code(&self, info: &crate::oauth::DeviceCodeInfo) {
        self.host.device_code(info)
    }
    fn progress(&self, stage: ConnectStage) {
        self.events.push(EventKind::ConnectProgress {
            account_id: self.account_id.to_string(),
            stage: stage.as_str(),
        });
        self.host.progress(stage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(n: usize) -> EventKind {
        EventKind::ConnectProgress {
            account_id: format!("a{n}"),
            stage: "starting",
        }
    }

    #[test]
    fn log_records_are_dropped_first_and_drops_are_reported() {
        let q = EventQueue::new(3);
        q.configure(3, 5);
        q.log(3, "info", "t", "one".into());
        q.push(progress(1));
        q.push(progress(2));
        // Full: the log record goes first.
        q.push(progress(3));
        // Full of non-log events: a log record is dropped itself.
        q.log(3, "info", "t", "two".into());
        // A non-log event pushes out the oldest.
        q.push(progress(4));
        let first = q.try_next().unwrap();
        assert!(matches!(first.kind, EventKind::EventsDropped { count: 3 }));
        let rest: Vec<String> = std::iter::from_fn(|| q.try_next())
            .map(|e| match e.kind {
                EventKind::ConnectProgress { account_id, .. } => account_id,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(rest, ["a2", "a3", "a4"]);
    }

    #[test]
    fn log_level_filters() {
        let q = EventQueue::new(10);
        q.log(3, "info", "t", "off by default".into());
        assert!(q.is_empty());
        q.configure(10, 2);
        q.log(3, "info", "t", "too verbose".into());
        q.log(1, "error", "t", "kept".into());
        let e = q.try_next().unwrap();
        assert!(e.to_json().contains("\"type\":\"log\"") && e.to_json().contains("kept"));
    }

    #[test]
    fn options_from_json() {
        assert_eq!(
            EventOptions::from_json("{}").unwrap(),
            EventOptions::default()
        );
        let o = EventOptions::from_json(r#"{"capacity": 2, "log_level": "warn"}"#).unwrap();
        assert_eq!((o.capacity, o.log_level), (2, 2));
        let o = EventOptions::from_json(r#"{"capacity": 100000, "log_level": "off"}"#).unwrap();
        assert_eq!((o.capacity, o.log_level), (100_000, 0));
        for (json, field, message) in [
            (
                r#"{"capacity": 1}"#,
                "capacity",
                "'capacity' must be between 2 and 100000, not 1",
            ),
            (
                r#"{"capacity": 100001}"#,
                "capacity",
                "'capacity' must be between 2 and 100000, not 100001",
            ),
            (
                r#"{"log_level": "loud"}"#,
                "log_level",
                "'log_level' must be off, error, warn, info, debug or trace, not 'loud'",
            ),
            (r#"{"capacity": -1}"#, "capacity", ""),
            (r#"{"log_level": 3}"#, "log_level", ""),
            (r#"{"size": 3}"#, "size", ""),
        ] {
            let e = EventOptions::from_json(json).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{json}");
            assert_eq!(e.evidence().field.as_deref(), Some(field), "{json}");
            assert!(e.to_string().ends_with(message), "{json}: {e}");
        }
        for json in ["[]", "", "nonsense", "{"] {
            let e = EventOptions::from_json(json).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument, "{json}");
        }
    }

    #[tokio::test]
    async fn next_waits_for_a_push_and_times_out() {
        let q = std::sync::Arc::new(EventQueue::default());
        let cancel = CancellationToken::new();
        assert!(q.next(Duration::from_millis(20), &cancel).await.is_none());
        let q2 = q.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            q2.push(progress(7));
        });
        let e = q.next(Duration::from_secs(5), &cancel).await.unwrap();
        assert_eq!(e.seq, 1);
        cancel.cancel();
        assert!(q.next(Duration::from_secs(5), &cancel).await.is_none());
    }
}
