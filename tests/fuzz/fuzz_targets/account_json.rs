//! Account JSON (with an inline registration or a registration id) and registration JSON.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(json) = std::str::from_utf8(data) {
        mailconnect_fuzz_support::account_json(json);
    }
});
