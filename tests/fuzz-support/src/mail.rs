//! POP3 and SMTP sessions against a scripted in-memory server, message dates, and SASL error
//! challenges.

use std::sync::Arc;
use std::time::Duration;

use mailconnect_core::mail::{auth_error, header_date};
use mailconnect_core::model::{Protocol, ServerConfig};
use mailconnect_core::transport::message::Envelope;
use mailconnect_core::transport::pop3::{self, AuthFailure, Mechanism, Pop3};
use mailconnect_core::transport::sasl;
use mailconnect_core::transport::smtp::{self, SmtpSession};
use mailconnect_core::transport::stream::{self, ConnectTimings, LineConn, Security};
use secrecy::{ExposeSecret, SecretString};

use crate::checks::{assert_no_secret, block_on, diagnose_all};
use crate::scripted::ScriptedStream;

const TIMEOUT: Duration = Duration::from_secs(5);
const TOKEN: &str = "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA-fuzz-token";
const POP3_HOST: &str = "pop.fuzz.test";
const SMTP_HOST: &str = "smtp.fuzz.test";

/// The library's TLS configuration, built once per thread (only STARTTLS gets as far as a
/// handshake, which then fails: the script has ended).
fn tls() -> Arc<rustls::ClientConfig> {
    thread_local! {
        static TLS: Arc<rustls::ClientConfig> =
            mailconnect_core::tls::client_config(&Default::default())
                .unwrap_or_else(|e| panic!("TLS configuration: {}", e.message()));
    }
    TLS.with(Arc::clone)
}

/// The server a session talks to, as the mail layer names it in errors.
fn server(host: &str, port: u16) -> ServerConfig {
    ServerConfig {
        host: host.into(),
        port,
        security: Security::Tls,
        mechanism: None,
        danger_accept_invalid_certs: false,
    }
}

/// Check a refused AUTH as the library reports it (`mail::auth_error`): no token, a diagnosis.
fn auth_refused(protocol: Protocol, server: &ServerConfig, f: AuthFailure, ir: &SecretString) {
    let err = auth_error(protocol, server, f);
    assert_no_secret(&err, &[TOKEN, ir.expose_secret()], "refused AUTH");
    diagnose_all(&err);
}

/// The initial response for `user` with the fuzz token.
fn initial_response(oauthbearer: bool, host: &str, port: u16) -> (Mechanism, SecretString) {
    let token = SecretString::from(TOKEN.to_string());
    if oauthbearer {
        (
            Mechanism::Oauthbearer,
            sasl::oauthbearer("user@fuzz.test", host, port, &token),
        )
    } else {
        (Mechanism::Xoauth2, sasl::xoauth2("user@fuzz.test", &token))
    }
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

/// A whole POP3 session against a server that sends `script` in writes of at most `chunk` bytes:
/// greeting, CAPA, AUTH (with the error-challenge path), STAT, UIDL, LIST, TOP with the Date
/// header as a fetch with `since` reads it, RETR, DELE, NOOP, QUIT.
pub fn pop3_session(script: &[u8], chunk: usize, oauthbearer: bool) {
    block_on(async {
        let io = Box::new(ScriptedStream::new(script, chunk));
        let Ok(mut pop) = Pop3::start(io, POP3_HOST, TIMEOUT, ConnectTimings::default()).await
        else {
            return;
        };
        pop.max_message = 256 * 1024;
        let _ = pop.has_capability("STLS");
        let offered = pop.sasl_mechanisms();
        assert!(offered.iter().all(|m| m.to_ascii_uppercase() == *m));
        let (mech, ir) = initial_response(oauthbearer, POP3_HOST, 995);
        match pop.authenticate(mech, &ir).await {
            Ok(Ok(())) => {}
            Ok(Err(f)) => return auth_refused(Protocol::Pop3, &server(POP3_HOST, 995), f, &ir),
            Err(err) => return assert_no_secret(&err, &[TOKEN, ir.expose_secret()], "POP3 AUTH"),
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
            message_date(&head);
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

/// A message's header block as `mail::header_date` reads it (a POP3 `TOP n 0` answer, for a fetch
/// with `since`): no panic, and a date only from a `Date` header.
pub fn message_date(head: &[u8]) {
    if header_date(head).is_some() {
        assert!(
            head.windows(4).any(|w| w.eq_ignore_ascii_case(b"date")),
            "a date from headers without a Date header"
        );
    }
}

/// The plain part of SMTP STARTTLS against a server sending `script` in writes of at most `chunk`
/// bytes, as `SmtpSession::connect` runs it: greeting, EHLO, STARTTLS (`smtp::starttls_preamble`),
/// refusing bytes sent ahead of the TLS handshake, and the handshake, which fails: the script has
/// ended.
pub fn smtp_starttls(script: &[u8], chunk: usize) {
    block_on(async {
        let mut conn = LineConn::new(ScriptedStream::new(script, chunk), SMTP_HOST, TIMEOUT);
        if let Err(err) = smtp::starttls_preamble(&mut conn, 587, "client.fuzz.test").await {
            return diagnose_all(&err);
        }
        let plain = match conn.into_inner_for_starttls() {
            Ok(plain) => plain,
            Err(err) => return diagnose_all(&err),
        };
        let mut timings = ConnectTimings::default();
        if let Err(err) =
            stream::tls_handshake(plain, SMTP_HOST, tls(), TIMEOUT, &mut timings).await
        {
            diagnose_all(&err);
        }
    });
}

/// An SMTP submission session on lettre against a server sending `script` in writes of at most
/// `chunk` bytes: greeting, EHLO, two-step AUTH (with the `334` error-challenge path), a message,
/// QUIT.
pub fn smtp_session(script: &[u8], chunk: usize, oauthbearer: bool) {
    block_on(async {
        let io = Box::new(ScriptedStream::new(script, chunk));
        let started = SmtpSession::start(
            io,
            SMTP_HOST,
            None,
            ConnectTimings::default(),
            TIMEOUT,
            "client.fuzz.test",
        )
        .await;
        let Ok(mut s) = started else { return };
        let offered = s.sasl_mechanisms();
        assert!(offered.iter().all(|m| m.to_ascii_uppercase() == *m));
        let (mech, ir) = initial_response(oauthbearer, SMTP_HOST, 587);
        match s.authenticate(mech, &ir).await {
            Ok(Ok(())) => {}
            Ok(Err(f)) => return auth_refused(Protocol::Smtp, &server(SMTP_HOST, 587), f, &ir),
            Err(err) => return assert_no_secret(&err, &[TOKEN, ir.expose_secret()], "SMTP AUTH"),
        }
        let env = Envelope {
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
        let f = AuthFailure {
            reply: reply.to_string(),
            challenge: challenge.clone(),
        };
        diagnose_all(&auth_error(p, &server("mail.fuzz.test", 993), f));
    }
}
