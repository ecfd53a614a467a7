//! A CSV file of accounts to import. Input: a flow-default byte, then the file's text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mailconnect_core::Flow;

fuzz_target!(|data: &[u8]| {
    let [sel, rest @ ..] = data else { return };
    let flow = match sel % 4 {
        1 => Some(Flow::Browser),
        2 => Some(Flow::DeviceCode),
        3 => Some(Flow::ClientCredentials),
        _ => None,
    };
    if let Ok(text) = std::str::from_utf8(rest) {
        mailconnect_fuzz_support::accounts_csv(text, flow);
    }
});
