//! An id_token. Input: mode byte, then either the whole token as received (mode bit 0 clear) or
//! the claims JSON, wrapped in a JWT here (bit 0 set). Bit 1 asks for a nonce check.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else { return };
    let nonce = (mode & 2 != 0).then_some("n0nce-fuzz");
    let expected = "alice@example.test";
    if mode & 1 == 0 {
        if let Ok(jwt) = std::str::from_utf8(rest) {
            mailconnect_fuzz_support::id_token(jwt, "client-1", nonce, expected);
        }
    } else {
        mailconnect_fuzz_support::id_token_claims(rest, "client-1", nonce, expected);
    }
});
