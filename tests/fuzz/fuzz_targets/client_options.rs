//! The client options JSON given to `mc_client_open`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(json) = std::str::from_utf8(data) {
        mailconnect_fuzz_support::client_options_json(json);
    }
});
