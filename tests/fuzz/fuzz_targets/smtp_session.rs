//! An SMTP server's side of a submission session on lettre (greeting, EHLO, AUTH with the 334
//! challenge, MAIL/RCPT/DATA, QUIT), played by a scripted in-memory server. Input: a control byte
//! (the server's write size, the mechanism), then everything the server sends.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [ctl, script @ ..] = data else { return };
    let chunk = if ctl & 0x3f == 0 {
        1 << 16
    } else {
        usize::from(ctl & 0x3f)
    };
    mailconnect_fuzz_support::smtp_session(script, chunk, ctl & 0x40 != 0);
});
