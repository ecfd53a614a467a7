//! POP3 and SMTP sessions against a scripted server, and SASL error challenges.

use std::sync::Arc;
use std::time::Duration;

use mailconnect_core::error::{Error, ErrorKind};
use mailconnect_core::model::Protocol;
use mailconnect_core::transport::message::Envelope;
use mailconnect_core::transport::pop3::{self, AuthFailure, Mechanism, Pop3};
use mailconnect_core::transport::sasl;
use mailconnect_core::transport::smtp::SmtpSession;
use mailconnect_core::transport::stream::Security;
use secrecy::{ExposeSecret, SecretString};

use crate::checks::{assert_no_secret, block_on, diagnose_all};
use crate::scripted::with_server;

const TIMEOUT: Duration = Duration::from_secs(5);
const TOKEN: &str = "EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA-fuzz-token";
const HOST: &str = "127.0.0.1";

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

/// Panic if the client could not reach the scripted server: the input would test nothing.
fn reached(err: &Error) {
    assert!(
        !(err.kind() == ErrorKind::Network && err.message().starts_with("connecting to")),
        "the scripted server was not reachable: {}",
        err.message()
    );
}

/// The error a refused AUTH becomes in mailconnect-core's mail layer (`mail::auth_error`, which
/// is crate-private): the sanitized reply as the message and evidence, the decoded error challenge
/// and the endpoint as evidence. The diagnosis reads these fields.
fn auth_error(protocol: Protocol, port: u16, f: AuthFailure) -> Error {
    let reply = mailconnect_core::http::sanitize(&f.reply);
    Error::new(
        ErrorKind::MailServer,
        format!(
            "{} authentication at {HOST}:{port} was refused: {reply}",
            protocol.as_str().to_uppercase()
        ),
    )
    .with_evidence(|ev| {
        ev.server_reply = Some(reply);
        ev.sasl_challenge = f.challenge;
        ev.endpoint = Some(format!("{HOST}:{port}"));
    })
}

/// Check a refused AUTH as the library reports it: no token, a diagnosis.
fn auth_refused(protocol: Protocol, port: u16, f: AuthFailure, ir: &SecretString) {
    let err = auth_error(protocol, port, f);
    assert_no_secret(&err, &[TOKEN, ir.expose_secret()], "refused AUTH");
    diagnose_all(&err);
}

/// The initial response for `user` with the fuzz token.
fn initial_response(oauthbearer: bool, port: u16) -> (Mechanism, SecretString) {
    let token = SecretString::from(TOKEN.to_string());
    if oauthbearer {
        (
            Mechanism::Oauthbearer,
            sasl::oauthbearer("user@fuzz.test", HOST, port, &token),
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

/// A whole POP3 session against a server that sends `script`: greeting, CAPA, AUTH (with the
/// error-challenge path), STAT, UIDL, LIST, TOP, RETR, DELE, NOOP, QUIT.
pub fn pop3_session(script: &[u8], chunk: usize, oauthbearer: bool) {
    block_on(with_server(script, chunk, |port| async move {
        let mut pop = match Pop3::connect(HOST, port, Security::None, tls(), TIMEOUT).await {
            Ok(pop) => pop,
            Err(err) => return reached(&err),
        };
        pop.max_message = 256 * 1024;
        let _ = pop.has_capability("STLS");
        let offered = pop.sasl_mechanisms();
        assert!(offered.iter().all(|m| m.to_ascii_uppercase() == *m));
        let (mech, ir) = initial_response(oauthbearer, port);
        match pop.authenticate(mech, &ir).await {
            Ok(Ok(())) => {}
            Ok(Err(f)) => return auth_refused(Protocol::Pop3, port, f, &ir),
            Err(err) => return assert_no_secret(&err, &[TOKEN, ir.expose_secret()], "POP3 AUTH"),
        }
        if pop.stat().await.is_err() {
            return;
        }
        let Ok(uidl) = pop.uidl().await else { return };
        let Ok(list) = pop.list().await else { return };
        for (n, _) in uidl.iter().take(3) {
            if pop.top(*n, 0).await.is_err() {
                return;
            }
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
    }));
}

/// The plain part of SMTP STARTTLS (greeting, EHLO, STARTTLS, refusing bytes sent ahead of the
/// TLS handshake) against a server sending `script`. The handshake that follows fails: the script
/// has ended.
pub fn smtp_starttls(script: &[u8], chunk: usize) {
    block_on(with_server(script, chunk, |port| async move {
        let connected = SmtpSession::connect(
            HOST,
            port,
            Security::Starttls,
            tls(),
            TIMEOUT,
            "client.fuzz.test",
        )
        .await;
        if let Err(err) = connected {
            reached(&err);
            diagnose_all(&err);
        }
    }));
}

/// An SMTP submission session on lettre against a server sending `script`: greeting, EHLO,
/// two-step AUTH (with the `334` error-challenge path), a message, QUIT.
pub fn smtp_session(script: &[u8], chunk: usize, oauthbearer: bool) {
    block_on(with_server(script, chunk, |port| async move {
        let connected = SmtpSession::connect(
            HOST,
            port,
            Security::None,
            tls(),
            TIMEOUT,
            "client.fuzz.test",
        )
        .await;
        let mut s = match connected {
            Ok(s) => s,
            Err(err) => return reached(&err),
        };
        let offered = s.sasl_mechanisms();
        assert!(offered.iter().all(|m| m.to_ascii_uppercase() == *m));
        let (mech, ir) = initial_response(oauthbearer, port);
        match s.authenticate(mech, &ir).await {
            Ok(Ok(())) => {}
            Ok(Err(f)) => return auth_refused(Protocol::Smtp, port, f, &ir),
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
    }));
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
        diagnose_all(&auth_error(p, 993, f));
    }
}
