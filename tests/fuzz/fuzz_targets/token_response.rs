//! A token endpoint answer. Input: status selector, content-type selector, Retry-After selector,
//! then the body.
#![no_main]
use libfuzzer_sys::fuzz_target;

const STATUS: [u16; 10] = [200, 200, 400, 401, 403, 429, 500, 502, 503, 201];
const CONTENT_TYPE: [&str; 6] = [
    "application/json; charset=utf-8",
    "application/json",
    "text/html; charset=utf-8",
    "text/plain",
    "",
    "APPLICATION/JSON",
];

fuzz_target!(|data: &[u8]| {
    let [s, c, r, body @ ..] = data else { return };
    let status = STATUS[*s as usize % STATUS.len()];
    let ct = CONTENT_TYPE[*c as usize % CONTENT_TYPE.len()];
    let retry_after = (*r != 0).then_some(u64::from(*r));
    mailconnect_fuzz_support::token_response(status, ct, body, retry_after);
});
