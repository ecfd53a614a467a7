//! A SASL error challenge and the final reply. Input: the challenge data, a newline, the reply.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (challenge, reply) = text.split_once('\n').unwrap_or((text, ""));
    mailconnect_fuzz_support::sasl_challenge(challenge, reply);
});
