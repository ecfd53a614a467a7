//! Inputs the fuzzers found, replayed through the same oracles (the fixes have their own tests
//! beside the code they fixed in mailconnect-core).

use mailconnect_fuzz_support as oracle;

#[test]
fn token_response_a_grant_in_an_unreadable_error_body() {
    // tests/fuzz token_response: status 400, JSON; the access token reached the evidence.
    oracle::token_response(
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
    oracle::client_options_json(
        r#"{"log_lsfitor+++++str,log_le+": "mc.db", "key": {"base64": "+++++str,log_le+"}, "luage": "en"}"#,
    );
    // ... and a "key" that is the name of an option, quoted in the list of expected fields.
    oracle::client_options_json(r#"{"sry": {"base64": "extra_ca_file"}, "languge": "en"}"#);
}

#[test]
fn smtp_session_an_ehlo_line_of_only_whitespace() {
    // tests/fuzz smtp_session: lettre panicked on an EHLO line of only whitespace (the fix and its
    // unit test are in core/src/transport/smtp.rs).
    oracle::smtp_session(
        b"223 623 6-?-\n\rQ223 6\n223 6-?/\n\r\n223-?-\n\rQ2\x7f\0\0\x002--?-\r2 236A\n223 6-?\n447 )D-\0\xca\x9a/\r\n223 \n\r\n22\n3-?-\n\rQ-?-\n\rQ223 6\n227 6-?/\n\r\n223-?-\n\rQ2\n*\x7f\0\0\0(/\n223 \n\r\n223-?-\n\rQ-?-\n\rQ22\x0c\n4\n4?4?4077\n\n?777236\n223?-\0\n",
        0x0a,
        false,
    );
}

const SMTP_SESSION: &[u8] = b"220 mx ESMTP\r\n250-mx\r\n250 AUTH XOAUTH2\r\n250-mx\r\n250 AUTH XOAUTH2\r\n\
    334 \r\n235 ok\r\n250 from ok\r\n250 rcpt ok\r\n354 go\r\n250 queued\r\n250 noop\r\n221 bye\r\n";

const POP3_SESSION: &[u8] = b"+OK ready\r\n+OK\r\nSASL XOAUTH2\r\n.\r\n+ \r\n+OK in\r\n+OK 1 10\r\n\
    +OK\r\n1 a\r\n.\r\n+OK\r\n1 10\r\n.\r\n+OK\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\n\r\n.\r\n\
    +OK\r\nx\r\n.\r\n+OK\r\n+OK\r\n+OK bye\r\n";

/// The in-memory scripted server plays a whole session to the library's sessions, whatever the size
/// of its writes: the network oracles test every step, not only the greeting.
#[tokio::test]
async fn the_scripted_stream_plays_whole_sessions() {
    use mailconnect_core::transport::message::Envelope;
    use mailconnect_core::transport::pop3::{Mechanism, Pop3};
    use mailconnect_core::transport::sasl;
    use mailconnect_core::transport::smtp::SmtpSession;
    use mailconnect_core::transport::stream::ConnectTimings;
    use oracle::scripted::ScriptedStream;
    use secrecy::SecretString;
    use std::time::Duration;

    let token = SecretString::from("t0ken-t0ken".to_string());
    let timeout = Duration::from_secs(5);
    for chunk in [1, 5, 4096] {
        let io = Box::new(ScriptedStream::new(SMTP_SESSION, chunk));
        let mut s = SmtpSession::start(
            io,
            "smtp.test",
            None,
            ConnectTimings::default(),
            timeout,
            "c",
        )
        .await
        .unwrap();
        assert_eq!(s.sasl_mechanisms(), ["XOAUTH2"]);
        let ir = sasl::xoauth2("user@fuzz.test", &token);
        s.authenticate(Mechanism::Xoauth2, &ir)
            .await
            .unwrap()
            .unwrap();
        let env = Envelope {
            from: "user@fuzz.test".into(),
            to: vec!["rcpt@fuzz.test".into()],
        };
        s.send(&env, b"Subject: x\r\n\r\nbody\r\n").await.unwrap();
        assert!(s.is_alive().await);
        s.quit().await.unwrap();

        let io = Box::new(ScriptedStream::new(POP3_SESSION, chunk));
        let mut pop = Pop3::start(io, "pop.test", timeout, ConnectTimings::default())
            .await
            .unwrap();
        let ir = sasl::xoauth2("user@fuzz.test", &token);
        pop.authenticate(Mechanism::Xoauth2, &ir)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(pop.stat().await.unwrap(), (1, 10));
        assert_eq!(pop.uidl().await.unwrap(), [(1, "a".to_string())]);
        assert_eq!(pop.list().await.unwrap().len(), 1);
        let head = pop.top(1, 0).await.unwrap();
        assert_eq!(
            mailconnect_core::mail::header_date(&head).map(|d| d.to_string()),
            Some("2026-11-23".to_string())
        );
        assert_eq!(pop.retr(1).await.unwrap(), b"x\r\n");
        pop.dele(1).await.unwrap();
        pop.noop().await.unwrap();
        pop.quit().await.unwrap();
    }
}

/// The same sessions over TCP through the public `connect` functions, which hosts reach through the
/// `Client` API: what the oracles drive in memory is what runs on a socket.
#[tokio::test]
async fn the_scripted_server_plays_whole_sessions_over_tcp() {
    use mailconnect_core::transport::message::Envelope;
    use mailconnect_core::transport::pop3::{Mechanism, Pop3};
    use mailconnect_core::transport::sasl;
    use mailconnect_core::transport::smtp::SmtpSession;
    use mailconnect_core::transport::stream::Security;
    use oracle::scripted::with_server;
    use secrecy::SecretString;
    use std::time::Duration;

    let tls = mailconnect_core::tls::client_config(&Default::default()).unwrap();
    let token = SecretString::from("t0ken-t0ken".to_string());
    let timeout = Duration::from_secs(5);
    let (tls, token) = (&tls, &token);
    for chunk in [1, 5, 4096] {
        with_server(SMTP_SESSION, chunk, |port| async move {
            let mut s = SmtpSession::connect(
                "127.0.0.1",
                port,
                &Default::default(),
                Security::None,
                tls.clone(),
                timeout,
                "c",
            )
            .await
            .unwrap();
            assert_eq!(s.sasl_mechanisms(), ["XOAUTH2"]);
            let ir = sasl::xoauth2("user@fuzz.test", token);
            s.authenticate(Mechanism::Xoauth2, &ir)
                .await
                .unwrap()
                .unwrap();
            let env = Envelope {
                from: "user@fuzz.test".into(),
                to: vec!["rcpt@fuzz.test".into()],
            };
            s.send(&env, b"Subject: x\r\n\r\nbody\r\n").await.unwrap();
            assert!(s.is_alive().await);
            s.quit().await.unwrap();
        })
        .await;
        with_server(POP3_SESSION, chunk, |port| async move {
            let mut pop = Pop3::connect(
                "127.0.0.1",
                port,
                &Default::default(),
                Security::None,
                tls.clone(),
                timeout,
            )
            .await
            .unwrap();
            let ir = sasl::xoauth2("user@fuzz.test", token);
            pop.authenticate(Mechanism::Xoauth2, &ir)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(pop.stat().await.unwrap(), (1, 10));
            assert_eq!(pop.uidl().await.unwrap(), [(1, "a".to_string())]);
            assert_eq!(pop.list().await.unwrap().len(), 1);
            pop.top(1, 0).await.unwrap();
            assert_eq!(pop.retr(1).await.unwrap(), b"x\r\n");
            pop.dele(1).await.unwrap();
            pop.noop().await.unwrap();
            pop.quit().await.unwrap();
        })
        .await;
    }
}

/// The same sessions through the oracles, and the STARTTLS preamble and a SASL error challenge.
#[test]
fn ordinary_sessions_run_through_the_oracles() {
    oracle::smtp_session(SMTP_SESSION, 7, false);
    oracle::pop3_session(POP3_SESSION, 1, false);
    oracle::pop3_session(POP3_SESSION, 64, true);
    oracle::message_date(b"Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n\r\n");
    oracle::message_date(b"Subject: no date\r\n\r\n");
    oracle::message_date(b"DATE: yesterday\r\n");
    oracle::smtp_starttls(b"220 mx\r\n250-mx\r\n250 STARTTLS\r\n220 go ahead\r\n", 3);
    oracle::sasl_challenge(
        "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==",
        "535 5.7.3 Authentication unsuccessful",
    );
}

const LOOPBACK_HEADS: [&[u8]; 6] = [
    b"GET /?code=abc&state=st4te-fuzz HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"GET /?error=access_denied&error_description=%3Cscript%3E&state=st4te-fuzz HTTP/1.1\r\n\r\n",
    b"GET /?code=abc&state=other HTTP/1.1\r\n\r\n",
    b"GET /elsewhere HTTP/1.1\r\n\r\n",
    b"POST / HTTP/1.1\r\n\r\n",
    b"",
];

#[test]
fn loopback_requests_end_the_wait_or_not() {
    for head in LOOPBACK_HEADS {
        oracle::loopback_request(head, "/", "st4te-fuzz");
        oracle::loopback_request(head, "/cb", "st4te-fuzz");
    }
}

/// A real loopback listener, sent the same heads over TCP, ends its wait exactly when
/// `parse_redirect` (what the oracle reads heads with) says the head is the redirect.
#[tokio::test]
async fn the_loopback_listener_waits_as_parse_redirect_reads() {
    use mailconnect_core::oauth::browser::{parse_redirect, Loopback, Redirect};
    use mailconnect_core::{CancellationToken, ErrorKind, Language};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    for path in ["/", "/cb"] {
        let lb = Loopback::bind(&format!("http://localhost{path}"))
            .await
            .unwrap();
        let port = url::Url::parse(lb.redirect_uri()).unwrap().port().unwrap();
        for head in LOOPBACK_HEADS {
            let cancel = CancellationToken::new();
            // The code's request is answered once the sign-in is known to have ended.
            let waiting = async {
                let (code, answer) = lb
                    .wait("st4te-fuzz", Language::En, Duration::from_secs(30), &cancel)
                    .await?;
                answer.finish(Ok(())).await;
                Ok::<_, mailconnect_core::Error>(code)
            };
            let browser = async {
                let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap();
                s.write_all(head).await.unwrap();
                s.shutdown().await.unwrap();
                let mut page = Vec::new();
                let _ = s.read_to_end(&mut page).await;
                cancel.cancel();
                page
            };
            let (outcome, page) = tokio::join!(waiting, browser);
            let page = String::from_utf8_lossy(&page);
            assert!(!page.contains("<script"), "{page}");
            match (parse_redirect(head, path, "st4te-fuzz"), outcome) {
                (Redirect::Code(_), Ok(_)) => {}
                (Redirect::Error(_), Err(e)) if e.kind() != ErrorKind::Cancelled => {}
                (Redirect::BadRequest | Redirect::NotFound | Redirect::WrongState, Err(e))
                    if e.kind() == ErrorKind::Cancelled => {}
                (r, o) => panic!("{path} {head:?}: parse_redirect {r:?}, the listener {o:?}"),
            }
        }
    }
}
