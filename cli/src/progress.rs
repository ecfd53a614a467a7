//! Progress on stderr with indicatif: spinners for long operations, and a countdown while a
//! person signs in. Nothing is drawn when stderr is not a terminal or when `--json` was given, so
//! scripts and logs see only the results.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

/// Whether progress may be drawn.
pub fn enabled(json: bool) -> bool {
    !json
        && std::io::stderr().is_terminal()
        && std::env::var_os("MAILCONNECT_NO_PROGRESS").is_none()
}

/// A spinner that is cleared when dropped.
pub struct Spinner(Option<ProgressBar>);

impl Spinner {
    /// No spinner.
    pub fn none() -> Spinner {
        Spinner(None)
    }

    /// A spinner with `message`, if progress is enabled.
    pub fn new(json: bool, message: impl Into<String>) -> Spinner {
        if !enabled(json) {
            return Spinner(None);
        }
        let pb = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed:.dim}") {
            pb.set_style(style);
        }
        pb.set_message(message.into());
        pb.enable_steady_tick(Duration::from_millis(100));
        Spinner(Some(pb))
    }

    /// A spinner that shows how long is left until `deadline` (e.g. the device code's expiry).
    pub fn countdown(json: bool, message: impl Into<String>, deadline: Instant) -> Spinner {
        if !enabled(json) {
            return Spinner(None);
        }
        let pb = ProgressBar::new_spinner();
        let style = ProgressStyle::with_template(
            "{spinner} {msg} ({remaining} left, Ctrl-C cancels)",
        )
        .map(|s| {
            s.with_key(
                "remaining",
                move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let left = deadline.saturating_duration_since(Instant::now()).as_secs();
                    let _ = write!(w, "{}:{:02}", left / 60, left % 60);
                },
            )
        });
        if let Ok(style) = style {
            pb.set_style(style);
        }
        pb.set_message(message.into());
        pb.enable_steady_tick(Duration::from_millis(100));
        Spinner(Some(pb))
    }

    /// Change the message.
    pub fn set_message(&self, message: impl Into<String>) {
        if let Some(pb) = &self.0 {
            pb.set_message(message.into());
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(pb) = self.0.take() {
            pb.finish_and_clear();
        }
    }
}
