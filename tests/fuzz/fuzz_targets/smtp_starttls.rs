//! An SMTP server's side of the plain STARTTLS exchange (multi-line replies read by our own
//! parser), played by a scripted in-memory server. Input: the server's write size, then everything
//! the server sends.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [ctl, script @ ..] = data else { return };
    let chunk = if *ctl == 0 {
        1 << 16
    } else {
        usize::from(*ctl)
    };
    mailconnect_fuzz_support::smtp_starttls(script, chunk);
});
