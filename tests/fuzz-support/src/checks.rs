//! What every oracle checks, and the runtime the network oracles run on.

use mailconnect_core::diagnose;
use mailconnect_core::Error;

/// Secrets shorter than this are not looked for in messages (they occur in ordinary words).
pub(crate) const MIN_SECRET: usize = 8;

/// The secrets worth looking for: long enough, and found in the input only where they are the
/// secret's value (a field name the fuzzer made of the same text may be quoted in a message).
pub(crate) fn distinct_secrets(input: &str, secrets: Vec<String>) -> Vec<String> {
    secrets
        .into_iter()
        .filter(|s| s.len() >= MIN_SECRET && input.matches(s.as_str()).count() == 1)
        .collect()
}

/// The text of an error as a report shows it: the message and the evidence.
pub(crate) fn shown(err: &Error) -> String {
    format!("{} {:?}", err.message(), err.evidence())
}

/// Panic if `text`, the error text for `input`, shows one of `secrets` because the input held it.
/// A secret counts as leaked when the error text for the same input with that secret's value
/// overwritten no longer shows it; text that shows it either way is the library's own (a field
/// name in a list of expected fields, say), which the fuzzer happened to pick as a secret.
pub(crate) fn assert_no_leak(
    input: &[u8],
    secrets: &[String],
    text: &str,
    again: impl Fn(&[u8]) -> String,
    what: &str,
) {
    for s in secrets {
        if !text.contains(s.as_str()) {
            continue;
        }
        let mut other = input.to_vec();
        if let Some(at) = input.windows(s.len()).position(|w| w == s.as_bytes()) {
            other[at..at + s.len()].fill(b'Q');
        }
        assert!(
            again(&other).contains(s.as_str()),
            "{what}: a secret from the input appears in the error: {text}"
        );
    }
}

/// Panic if `err` (message or evidence) contains any of `secrets`.
pub(crate) fn assert_no_secret(err: &Error, secrets: &[&str], what: &str) {
    let text = shown(err);
    for s in secrets {
        if s.len() >= MIN_SECRET {
            assert!(
                !text.contains(s),
                "{what}: a secret from the input appears in the error: {text}"
            );
        }
    }
}

/// Diagnose `err` in every context: the catalog must always have an entry.
pub(crate) fn diagnose_all(err: &Error) {
    for (other_protocol_accepted, delegate) in [(false, false), (true, false), (false, true)] {
        let ctx = diagnose::Context {
            other_protocol_accepted,
            delegate,
        };
        let d = diagnose::diagnose(err, ctx);
        assert!(!d.code.is_empty() && !d.en.title.is_empty() && !d.de.title.is_empty());
    }
}

/// Run `f` on this thread's single-threaded runtime (one per fuzzing thread, kept between inputs).
/// Timers only: the sessions run on in-memory streams, never on a socket.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    thread_local! {
        static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap_or_else(|e| panic!("no tokio runtime: {e}"));
    }
    RT.with(|rt| rt.block_on(f))
}
