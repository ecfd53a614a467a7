//! Capturing every log record of the test process (core's `tracing`, and the `log` records of its
//! dependencies such as rustls and reqwest) at TRACE, for tests that assert no secret is logged.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// What the process has logged so far (cheap to clone; one buffer per process).
#[derive(Clone, Default)]
pub struct TraceLog(Arc<Mutex<Vec<u8>>>);

impl Write for TraceLog {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl TraceLog {
    /// The records so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// The process-wide subscriber, installed on first call: every record at TRACE except the
/// in-process emulator's own (which holds the secrets it issues, by design). Panics if the test
/// binary already installed another subscriber.
pub fn trace_log() -> TraceLog {
    static LOG: OnceLock<TraceLog> = OnceLock::new();
    LOG.get_or_init(|| {
        use tracing_subscriber::prelude::*;
        let buf = TraceLog::default();
        let writer = buf.clone();
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                !m.target().starts_with("mailconnect_sandbox") && !m.target().starts_with("axum")
            }))
            .with_filter(tracing_subscriber::filter::LevelFilter::TRACE);
        tracing_subscriber::registry()
            .with(layer)
            .try_init()
            .expect("the test binary's only subscriber");
        buf
    })
    .clone()
}
