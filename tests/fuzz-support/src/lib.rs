//! Fuzz oracles for mailconnect, used by the cargo-fuzz targets in `tests/fuzz`.
//!
//! Each function hands hostile input to one of mailconnect-core's parsers, through the crate's
//! public API, and checks what has to hold for every input: no panic, no hang (network input comes
//! from a scripted in-memory server, [`scripted::ScriptedStream`], handed to the protocols'
//! `start` functions: it sends its script in the writes the fuzzer chose and then closes), and no
//! secret from the input in an error message or its evidence. A broken property panics, which the
//! fuzzer reports as a crash. `tests/regressions.rs` replays what the fuzzers found.
//!
//! This crate is test support: it is not part of the product and never published.

mod checks;
mod host;
mod mail;
mod oauth;
pub mod scripted;

pub use host::{account_json, accounts_csv, client_options_json};
pub use mail::{
    message_date, pop3_reply, pop3_session, sasl_challenge, smtp_session, smtp_starttls,
};
pub use oauth::{
    id_token, id_token_claims, loopback_request, oauth_error, oauth_error_json, token_response,
};
