//! An OAuth error response. Input: `J` + JSON body as a provider sends it, or any other first byte
//! + structured fields (so classification sees every known code and suberror).
#![no_main]
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use mailconnect_core::oauth::errors::OAuthErrorResponse;

const ERRORS: [&str; 12] = [
    "invalid_grant",
    "invalid_client",
    "unauthorized_client",
    "invalid_request",
    "invalid_scope",
    "access_denied",
    "interaction_required",
    "consent_required",
    "temporarily_unavailable",
    "server_error",
    "authorization_pending",
    "expired_token",
];
const SUBERRORS: [&str; 6] = [
    "consent_required",
    "basic_action",
    "additional_action",
    "message_only",
    "bad_token",
    "token_expired",
];
const CODES: [i64; 24] = [
    65001, 65004, 90094, 700016, 50194, 9002332, 500208, 50020, 500011, 650057, 7000215, 7000222,
    7000218, 700025, 50011, 50076, 53003, 530035, 70008, 700082, 50173, 70043, 50057, 90055,
];

#[derive(Arbitrary)]
struct Fields {
    error: (u8, String),
    description: Option<String>,
    code_in_description: Option<u8>,
    codes: Vec<(u8, i64)>,
    suberror: Option<(u8, String)>,
    trace_id: Option<String>,
}

fn pick<'a>(sel: u8, list: &[&'a str], other: &'a str) -> &'a str {
    list.get(sel as usize).copied().unwrap_or(other)
}

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else { return };
    if *mode == b'J' {
        mailconnect_fuzz_support::oauth_error_json(rest);
        return;
    }
    let Ok(f) = Fields::arbitrary(&mut Unstructured::new(rest)) else {
        return;
    };
    let codes: Vec<i64> = f
        .codes
        .iter()
        .map(|(s, c)| CODES.get(*s as usize).copied().unwrap_or(*c))
        .collect();
    let description = match (f.description, f.code_in_description) {
        (Some(d), Some(s)) => Some(format!(
            "AADSTS{}: {d}\r\nTrace ID: x\r\nCorrelation ID: y",
            CODES[s as usize % CODES.len()]
        )),
        (d, _) => d,
    };
    mailconnect_fuzz_support::oauth_error(OAuthErrorResponse {
        error: pick(f.error.0, &ERRORS, &f.error.1).to_string(),
        error_description: description,
        error_codes: codes,
        suberror: f
            .suberror
            .as_ref()
            .map(|(s, o)| pick(*s, &SUBERRORS, o).to_string()),
        trace_id: f.trace_id,
        ..Default::default()
    });
});
