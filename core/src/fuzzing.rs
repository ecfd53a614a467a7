//! Entry points for the fuzz targets in `tests/fuzz` (cargo feature `fuzzing`, never on by default).
//!
//! Each function feeds hostile input to one parser exactly the way the library does, and checks
//! what must hold whatever the input: no panic, no hang (network input comes from a scripted
//! in-memory server that ends), and no secret taken from the input in an error message or its
//! evidence. A broken property panics, which the fuzzer reports as a crash.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use url::Url;
use zeroize::Zeroizing;

use crate::diagnose;
use crate::error::{Error, ErrorKind};
use crate::http::HttpResponse;
use crate::model::{self, Account, Protocol, Registration, ServerConfig};
use crate::oauth::browser::{self, Redirect};
use crate::oauth::errors::{self, OAuthErrorResponse};
use crate::oauth::{identity, token};
use crate::transport::pop3::{self, Mechanism, Pop3};
use crate::transport::sasl;
use crate::transport::smtp::{self, SmtpSession};
use crate::transport::stream::{ConnectTimings, LineConn};

/// Secrets shorter than this are not looked for in messages (they occur in ordinary words).
const MIN_SECRET: usize = 8;

/// The secrets worth looking for: long enough, and found in the input only where they are the
/// secret's value (a field name the fuzzer made of the same text may be quoted in a message).
fn distinct_secrets(input: &str, secrets: Vec<String>) -> Vec<String> {
    secrets
        .into_iter()
        .filter(|s| s.len() >= MIN_SECRET && input.matches(s.as_str()).count() == 1)
        .collect()
}

/// The text of an error as a report shows it: the message and the evidence.
fn shown(err: &Error) -> String {
    format!("{} {:?}", err.message(), err.evidence())
}

/// Panic if `text`, the error text for `input`, shows one of `secrets` because the input held it.
/// A secret counts as leaked when the error text for the same input with that secret's value
/// overwritten no longer shows it; text that shows it either way is the library's own (a field
/// name in a list of expected fields, say), which the fuzzer happened to pick as a secret.
fn assert_no_leak(
    input: &[u8],
    secrets: &[String],
    text: &str,
    again: impl Fn(&[u8]) -> String,
    what: &str,
) {
    for s in secrets {
        if !text.contains(s.as_str()) {
            continue;
        }
        let mut other = input.to_vec();
        if let Some(at) = input.windows(s.len()).position(|w| w == s.as_bytes()) {
            other[at..at + s.len()].fill(b'Q');
        }
        assert!(
            again(&other).contains(s.as_str()),
            "{what}: a secret from the input appears in the error: {text}"
        );
    }
}

/// Panic if `err` (message or evidence) contains any of `secrets`.
fn assert_no_secret(err: &Error, secrets: &[&str], what: &str) {
    let text = format!("{} {:?}", err.message(), err.evidence());
    for s in secrets {
        if s.len() >= MIN_SECRET {
            assert!(
                !text.contains(s),
                "{what}: a secret from the input appears in the error: {text}"
            );
        }
    }
}

/// Diagnose `err` in every context: the catalog must always have an entry.
fn diagnose_all(err: &Error) {
    for (other_protocol_accepted, delegate) in [(false, false), (true, false), (false, true)] {
        let ctx = diagnose::Context {
            other_protocol_accepted,
            delegate,
        };
        let d = diagnose::diagnose(err, ctx);
        assert!(!d.code.is_empty() && !d.en.title.is_empty() && !d.de.title.is_empty());
    }
}

// ----- token and error responses ---------------------------------------------------------------

/// A token endpoint answer: `token::parse_response`, then what `token::request` does with it.
pub fn token_response(status: u16, content_type: &str, body: &[u8], retry_after: Option<u64>) {
    // Any token-like string value in a JSON body is a secret.
    let secrets: Vec<String> = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|o| {
            ["access_token", "refresh_token", "id_token"]
                .iter()
                .filter_map(|k| o.get(*k).and_then(|v| v.as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let secrets = distinct_secrets(&String::from_utf8_lossy(body), secrets);
    if let Some(text) = token_outcome(status, content_type, body, retry_after, &secrets) {
        let again =
            |b: &[u8]| token_outcome(status, content_type, b, retry_after, &[]).unwrap_or_default();
        assert_no_leak(body, &secrets, &text, again, "token response");
    }
}

/// Read a token response; the error text, if it is an error.
fn token_outcome(
    status: u16,
    content_type: &str,
    body: &[u8],
    retry_after: Option<u64>,
    secrets: &[String],
) -> Option<String> {
    let url = Url::parse("https://login.example.test/tenant/oauth2/v2.0/token")
        .unwrap_or_else(|_| unreachable!());
    let resp = HttpResponse {
        status,
        retry_after: retry_after.map(Duration::from_secs),
        content_type: content_type.to_ascii_lowercase(),
        body: Zeroizing::new(body.to_vec()),
    };
    let scopes = ["https://outlook.office.com/IMAP.AccessAsUser.All".to_string()];
    match token::parse_response(&url, &resp, &scopes) {
        Ok(token::Outcome::Granted(g)) => {
            assert_eq!(status, 200, "a grant from a non-200 answer");
            assert!(!g.access_token.expose_secret().is_empty());
            assert!(g
                .refresh_token
                .as_ref()
                .is_none_or(|r| !r.expose_secret().is_empty()));
            let debug = format!("{g:?}");
            for s in secrets {
                assert!(!debug.contains(s), "a token in the grant's Debug output");
            }
            None
        }
        Ok(token::Outcome::Refused(e, st)) => {
            assert_eq!(st, status);
            assert!(!e.error.is_empty());
            let err = errors::to_error("fuzzing", e, Some(st));
            diagnose_all(&err);
            Some(shown(&err))
        }
        Err(err) => {
            diagnose_all(&err);
            Some(shown(&err))
        }
    }
}

/// An OAuth error body as JSON (token, device or authorize endpoint).
pub fn oauth_error_json(body: &[u8]) {
    if let Ok(e) = serde_json::from_slice::<OAuthErrorResponse>(body) {
        oauth_error(e);
    }
}

/// An OAuth error response: its AADSTS code, summary, classification, core error and diagnosis.
pub fn oauth_error(e: OAuthErrorResponse) {
    let _ = e.aadsts();
    let _ = e.summary();
    let class = errors::classify(&e);
    let err = errors::to_error("fuzzing", e, Some(400));
    match class {
        errors::Classification::Reauthorize(_) => {
            assert_eq!(err.kind(), ErrorKind::ReauthorizationRequired);
            assert!(err.evidence().reauth_reason.is_some());
        }
        _ => assert!(err.evidence().reauth_reason.is_none()),
    }
    diagnose_all(&err);
}

// ----- id_token ----------------------------------------------------------------------------------

/// An id_token as received, checked against `client_id` and `nonce`, then matched to `expected`.
pub fn id_token(jwt: &str, client_id: &str, nonce: Option<&str>, expected: &str) {
    let _ = identity::jwt_payload(jwt);
    let secret = SecretString::from(jwt.to_string());
    match identity::read_id_token(&secret, client_id, nonce) {
        Ok(id) => {
            let _ = identity::check_identity(&id, expected, &[expected.to_uppercase()]);
        }
        Err(err) => {
            assert_no_secret(&err, &[jwt], "id_token");
            diagnose_all(&err);
        }
    }
}

/// The claims of an id_token as JSON, wrapped in a JWT as a provider would send it.
pub fn id_token_claims(claims: &[u8], client_id: &str, nonce: Option<&str>, expected: &str) {
    use base64::Engine;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwt = format!(
        "{}.{}.c2lnbmF0dXJl",
        e.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        e.encode(claims)
    );
    id_token(&jwt, client_id, nonce, expected);
}

// ----- the loopback redirect -------------------------------------------------------------------

/// A request head sent to the loopback listener waiting on `/` (or `/cb`) for `state`.
pub fn loopback_request(head: &[u8], expected_path: &str, state: &str) {
    match browser::parse_redirect(head, expected_path, state) {
        Redirect::Code(code) => {
            // Only a GET of the expected path (with the expected state) may end the wait.
            let text = String::from_utf8_lossy(head);
            let target = text
                .strip_prefix("GET ")
                .and_then(|t| t.split([' ', '?']).next());
            assert_eq!(target, Some(expected_path), "a code from another request");
            assert!(!code.expose_secret().is_empty());
        }
        Redirect::Error(e) => {
            assert!(String::from_utf8_lossy(head).starts_with("GET /"));
            let page = browser::LoopbackPage::Failed(e.summary()).render(crate::Language::En);
            assert!(!page.contains("<script"), "provider text not escaped");
            let err = errors::to_error("signing in in the browser", e, None);
            diagnose_all(&err);
        }
        Redirect::BadRequest | Redirect::NotFound | Redirect::WrongState => {}
    }
}

// ----- mail servers ----------------------------------------------------------------------------

/// A mail server played from a script: reads return the script in chunks, writes are counted.
#[derive(Debug)]
pub struct ScriptedServer {
    script: Vec<u8>,
    pos: usize,
    chunk: usize,
    written: usize,
}

impl ScriptedServer {
    /// A server that sends `script` in reads of at most `chunk` bytes, then closes.
    pub fn new(script: &[u8], chunk: usize) -> ScriptedServer {
        ScriptedServer {
            script: script.to_vec(),
            pos: 0,
            chunk: chunk.max(1),
            written: 0,
        }
    }
}

impl AsyncRead for ScriptedServer {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        let n = (me.script.len() - me.pos)
            .min(me.chunk)
            .min(buf.remaining());
        buf.put_slice(&me.script[me.pos..me.pos + n]);
        me.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ScriptedServer {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        me.written += buf.len();
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl lettre::transport::smtp::client::AsyncTokioStream for ScriptedServer {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        Ok(std::net::SocketAddr::from(([127, 0, 0, 1], 587)))
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    thread_local! {
        static RT: Option<tokio::runtime::Runtime> = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .ok();
    }
    RT.with(|rt| match rt {
        Some(rt) => rt.block_on(f),
        None => panic!("no tokio runtime"),
    })
}

const TIMEOUT: Duration = Duration::from_secs(5);
const TOKEN: &str = "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA-fuzz-token";

fn server(host: &str, port: u16) -> ServerConfig {
    ServerConfig {
        host: host.into(),
        port,
        security: crate::transport::stream::Security::Tls,
        mechanism: None,
        danger_accept_invalid_certs: false,
    }
}

/// Check a refused AUTH as the library reports it: no token, a diagnosis.
fn auth_refused(protocol: Protocol, f: pop3::AuthFailure, ir: &SecretString) {
    let err = crate::mail::auth_error(protocol, &server("mail.fuzz.test", 995), f);
    assert_no_secret(&err, &[TOKEN, ir.expose_secret()], "refused AUTH");
    diagnose_all(&err);
}

/// One POP3 reply line.
pub fn pop3_reply(line: &str) {
    match pop3::parse_reply(line) {
        Ok(pop3::Reply::Ok(t) | pop3::Reply::Err(t) | pop3::Reply::Continue(t)) => {
            assert!(t.len() < line.len().max(1));
        }
        Err(err) => diagnose_all(&err),
    }
}

/// A whole POP3 session against a server that sends `script`: greeting, CAPA, AUTH (with the
/// error-challenge path), STAT, UIDL, LIST, TOP with the Date header, RETR, DELE, QUIT.
pub fn pop3_session(script: &[u8], chunk: usize, oauthbearer: bool) {
    block_on(async {
        let io = Box::new(ScriptedServer::new(script, chunk));
        let Ok(mut pop) =
            Pop3::start(io, "pop.fuzz.test", TIMEOUT, ConnectTimings::default()).await
        else {
            return;
        };
        pop.max_message = 256 * 1024;
        let _ = pop.has_capability("STLS");
        let offered = pop.sasl_mechanisms();
        assert!(offered.iter().all(|m| m.to_ascii_uppercase() == *m));
        let token = SecretString::from(TOKEN.to_string());
        let (mech, ir) = if oauthbearer {
            (
                Mechanism::Oauthbearer,
                sasl::oauthbearer("user@fuzz.test", "pop.fuzz.test", 995, &token),
            )
        } else {
            (Mechanism::Xoauth2, sasl::xoauth2("user@fuzz.test", &token))
        };
        match pop.authenticate(mech, &ir).await {
            Ok(Ok(())) => {}
            Ok(Err(f)) => {
                auth_refused(Protocol::Pop3, f, &ir);
                return;
            }
            Err(err) => {
                assert_no_secret(&err, &[TOKEN, ir.expose_secret()], "POP3 AUTH");
                return;
            }
        }
        if pop.stat().await.is_err() {
            return;
        }
        let Ok(uidl) = pop.uidl().await else { return };
        let Ok(list) = pop.list().await else { return };
        for (n, _) in uidl.iter().take(3) {
            let Ok(head) = pop.top(*n, 0).await else {
                return;
            };
            let _ = crate::mail::header_date(&head);
        }
        for l in list.iter().take(3) {
            match pop.retr(l.number).await {
                Ok(m) => assert!(m.len() as u64 <= pop.max_message),
                Err(_) => return,
            }
            if pop.dele(l.number).await.is_err() {
                return;
            }
        }
        let _ = pop.noop().await;
        let _ = pop.quit().await;
    });
}

/// The plain part of SMTP STARTTLS (greeting, EHLO, STARTTLS) against a server sending `script`.
pub fn smtp_starttls(script: &[u8], chunk: usize) {
    block_on(async {
        let mut conn = LineConn::new(
            ScriptedServer::new(script, chunk),
            "smtp.fuzz.test",
            TIMEOUT,
        );
        match smtp::starttls_preamble(&mut conn, 587, "client.fuzz.test").await {
            Ok(_) => {
                // Bytes sent ahead of the TLS handshake must be refused (CVE-2011-0411 style).
                let _ = conn.into_inner_for_starttls();
            }
            Err(err) => diagnose_all(&err),
        }
    });
}

/// An SMTP submission session on lettre against a server sending `script`: greeting, EHLO,
/// two-step AUTH (with the `334` error-challenge path), a message, QUIT.
pub fn smtp_session(script: &[u8], chunk: usize, oauthbearer: bool) {
    block_on(async {
        let io = Box::new(ScriptedServer::new(script, chunk));
        let Ok(mut s) = SmtpSession::start(
            io,
            "smtp.fuzz.test",
            None,
            ConnectTimings::default(),
            TIMEOUT,
            "client.fuzz.test",
        )
        .await
        else {
            return;
        };
        let offered = s.sasl_mechanisms();
        assert!(offered.iter().all(|m| m.to_ascii_uppercase() == *m));
        let token = SecretString::from(TOKEN.to_string());
        let (mech, ir) = if oauthbearer {
            (
                Mechanism::Oauthbearer,
                sasl::oauthbearer("user@fuzz.test", "smtp.fuzz.test", 587, &token),
            )
        } else {
            (Mechanism::Xoauth2, sasl::xoauth2("user@fuzz.test", &token))
        };
        match s.authenticate(mech, &ir).await {
            Ok(Ok(())) => {}
            Ok(Err(f)) => {
                auth_refused(Protocol::Smtp, f, &ir);
                return;
            }
            Err(err) => {
                assert_no_secret(&err, &[TOKEN, ir.expose_secret()], "SMTP AUTH");
                return;
            }
        }
        let env = crate::transport::message::Envelope {
            from: "user@fuzz.test".into(),
            to: vec!["rcpt@fuzz.test".into()],
        };
        let _ = s
            .send(&env, b"Subject: fuzz\r\n\r\nbody\r\n.\r\n..\r\n")
            .await;
        let _ = s.is_alive().await;
        let _ = s.quit().await;
    });
}

/// A SASL error challenge (`+ <data>` / `334 <data>`) and the final reply, as the library keeps and
/// diagnoses them.
pub fn sasl_challenge(data: &str, reply: &str) {
    let challenge = sasl::decode_error_challenge(data);
    for p in Protocol::ALL {
        let f = pop3::AuthFailure {
            reply: reply.to_string(),
            challenge: challenge.clone(),
        };
        let err = crate::mail::auth_error(p, &server("mail.fuzz.test", 993), f);
        diagnose_all(&err);
    }
}

// ----- JSON from the host ----------------------------------------------------------------------

/// The string values of `key` anywhere in `v` (to look for in error messages).
fn strings_at(v: &serde_json::Value, key: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                if k == key {
                    if let Some(s) = x.as_str() {
                        out.push(s.to_string());
                    }
                }
                strings_at(x, key, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings_at(x, key, out)),
        _ => {}
    }
}

/// Account JSON as `Client::put_account_json` reads it (with an inline registration or its id),
/// and registration JSON as `Client::put_registration_json` reads it, short of storing.
pub fn account_json(json: &str) {
    let mut secrets = Vec::new();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(json) {
        strings_at(&v, "client_secret", &mut secrets);
    }
    let secrets = distinct_secrets(json, secrets);
    let text = account_errors(json, &secrets);
    let again = |b: &[u8]| account_errors(&String::from_utf8_lossy(b), &[]);
    assert_no_leak(json.as_bytes(), &secrets, &text, again, "account JSON");
}

/// The error texts of reading `json` as an account and as a registration.
fn account_errors(json: &str, secrets: &[String]) -> String {
    let text = |r: crate::Result<()>| match r {
        Ok(()) => String::new(),
        Err(err) => {
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{}", err.message());
            shown(&err)
        }
    };
    let account = text(put_account_json(json));
    let registration = text(
        model::parse_json::<Registration>("registration", json).and_then(|reg| {
            model::validate_registration(&reg)?;
            let debug = format!("{reg:?}");
            for s in secrets {
                assert!(!debug.contains(s), "a client secret in the Debug output");
            }
            Ok(())
        }),
    );
    account + &registration
}

/// The parsing and validation steps of `Client::put_account_json`, in its order.
fn put_account_json(json: &str) -> crate::Result<()> {
    let mut v: serde_json::Value = model::parse_json("account", json)?;
    let inline = match v.get("registration") {
        Some(r @ serde_json::Value::Object(_)) => Some(r.clone()),
        _ => None,
    };
    if let Some(r) = inline {
        let reg: Registration = model::parse_json("account.registration", &r.to_string())?;
        model::validate_registration(&reg)?;
        v["registration"] = serde_json::Value::String(reg.id.clone());
        let _ = crate::provider::default_servers(&reg, None);
    }
    let account: Account = model::parse_json("account", &v.to_string())?;
    model::validate_account(&account)?;
    let _ = account.expected_login();
    // A valid account survives its own JSON (it is stored and returned as JSON).
    let again = serde_json::to_string(&account).unwrap_or_else(|e| panic!("serialize: {e}"));
    let back: Account = model::parse_json("account", &again)
        .unwrap_or_else(|e| panic!("a valid account does not read back: {}", e.message()));
    model::validate_account(&back).unwrap_or_else(|e| {
        panic!(
            "a valid account fails validation after a round trip: {}",
            e.message()
        )
    });
    Ok(())
}

/// The client options JSON (`mc_client_open`).
pub fn client_options_json(json: &str) {
    let mut secrets = Vec::new();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(json) {
        // `extra_ca_file` is read from disk: only let the fuzzer name regular files (a device such
        // as /dev/zero or /dev/stdin would never end; the options come from the host, not a peer).
        if let Some(p) = v.get("extra_ca_file").and_then(|p| p.as_str()) {
            if !std::path::Path::new(p).is_file() {
                return;
            }
        }
        strings_at(&v, "base64", &mut secrets);
    }
    let secrets = distinct_secrets(json, secrets);
    let text = options_error(json);
    let again = |b: &[u8]| options_error(&String::from_utf8_lossy(b));
    assert_no_leak(
        json.as_bytes(),
        &secrets,
        &text,
        again,
        "client options JSON",
    );
}

/// The error text of reading `json` as client options.
fn options_error(json: &str) -> String {
    match crate::ClientOptions::from_json(json) {
        Ok(_) => String::new(),
        Err(err) => {
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{}", err.message());
            shown(&err)
        }
    }
}

// ----- CSV import --------------------------------------------------------------------------------

/// A CSV file of accounts (`model::csv::parse_accounts_csv`), and applying each row to itself as
/// an update would.
pub fn accounts_csv(text: &str, flow: Option<crate::Flow>) {
    use crate::model::csv::{parse_accounts_csv, CsvDefaults};
    let defaults = CsvDefaults {
        registration: "contoso".into(),
        flow,
    };
    match parse_accounts_csv(text, &defaults) {
        Ok(imp) => {
            let mut ids = std::collections::HashSet::new();
            let mut last_line = 0;
            for row in &imp.rows {
                assert!(
                    row.line > last_line,
                    "row lines out of order: {:?}",
                    imp.rows
                );
                last_line = row.line;
                let Ok(a) = &row.outcome else { continue };
                model::validate_account(a)
                    .unwrap_or_else(|e| panic!("an imported account is invalid: {}", e.message()));
                assert_eq!(a.registration, "contoso");
                assert!(ids.insert(a.id.clone()), "duplicate id imported: {}", a.id);
                if let Some(f) = flow {
                    if !imp.sets("flow") {
                        assert_eq!(a.flow, f);
                    }
                }
                let updated = imp.apply(a, a, &defaults);
                model::validate_account(&updated)
                    .unwrap_or_else(|e| panic!("an applied account is invalid: {}", e.message()));
            }
        }
        Err(e) => assert!(e.line >= 1 && !e.reason.is_empty()),
    }
}

/// Inputs the fuzzers found, replayed through the same entry points (the fixes have their own
/// tests beside the code they fixed).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_response_a_grant_in_an_unreadable_error_body() {
        // tests/fuzz token_response: status 400, JSON; the access token reached the evidence.
        token_response(
            400,
            "application/json; charset=utf-8",
            br#"{"error": "unauthorizeok.office.com/IMAP.AccessAsUser.All https://outlook.office.com/POP.AccessAsUser.All https://o3599", "ext_expires_in": 4319, "access_token": "eyJ0eXAiOiJKV1QiLCJub25d_client", "error_description": "AADSTS700016:\r\nTimestamp: 2&26-11-23 09:12:44Z", "error_codes": [700016], "timestamp": "2026-11-23 09:12:44Z", "trace_id": "2f6e9c3a-1b0d-4KV1QiLCJub25d_client", "error_description": "AADSTS700016:\r\nTimestamp: 2&2resource.\r\n2600016"}"#,
            None,
        );
    }

    #[test]
    fn client_options_a_field_name_made_of_the_key() {
        // tests/fuzz client_options: the unknown field's name contains the key's text; naming the
        // field is right (the oracle now looks only for secrets that occur once in the input).
        client_options_json(
            r#"{"log_lsfitor+++++str,log_le+": "mc.db", "key": {"base64": "+++++str,log_le+"}, "luage": "en"}"#,
        );
        // ... and a "key" that is the name of an option, quoted in the list of expected fields.
        client_options_json(r#"{"sry": {"base64": "extra_ca_file"}, "languge": "en"}"#);
    }
}
