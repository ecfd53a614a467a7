//! A POP3 server's side of a session, played by a scripted in-memory server; the script also as
//! reply lines and as a message's header block (the Date a fetch with `since` reads). Input: a
//! control byte (the server's write size, the mechanism), then everything the server sends.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [ctl, script @ ..] = data else { return };
    let chunk = if ctl & 0x3f == 0 {
        1 << 16
    } else {
        usize::from(ctl & 0x3f)
    };
    mailconnect_fuzz_support::pop3_session(script, chunk, ctl & 0x40 != 0);
    mailconnect_fuzz_support::message_date(script);
    if let Ok(text) = std::str::from_utf8(script) {
        for line in text.split("\r\n").take(8) {
            mailconnect_fuzz_support::pop3_reply(line);
        }
    }
});
