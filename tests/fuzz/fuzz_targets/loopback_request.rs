//! A request to the browser flow's loopback listener, read as the listener reads each request.
//! Input: path selector byte, then the request head.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [sel, head @ ..] = data else { return };
    let path = if sel & 1 == 0 { "/" } else { "/cb" };
    mailconnect_fuzz_support::loopback_request(head, path, "st4te-fuzz");
});
