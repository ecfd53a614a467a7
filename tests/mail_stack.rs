//! End-to-end against real Dovecot (IMAP, POP3) and Postfix (submission) validating tokens at the
//! emulator's introspection endpoint: the whole story, and the failures vendors meet.

use std::time::Duration;

use mailconnect_core::check::TestOptions;
use mailconnect_core::mail::FetchRequest;
use mailconnect_core::{AccountState, CancellationToken, Client, ErrorKind, Protocol};
use mailconnect_tests::*;

fn nc() -> CancellationToken {
    CancellationToken::new()
}

struct World {
    env: Env,
    stack: MailStack,
    client: Client,
}

async fn world(deny_pop3: &[&str]) -> World {
    world_with(deny_pop3, 3900).await
}

async fn world_with(deny_pop3: &[&str], access_token_lifetime: u64) -> World {
    let env = env_with(|c| c.tokens.access_token_lifetime_secs = access_token_lifetime).await;
    let stack = MailStack::up(&env.emulator.introspection_url(), deny_pop3);
    let client = open_client_with_ca(&env.dir.path().join("mail.db"), stack.ca_pem());
    World { env, stack, client }
}

impl World {
    /// Connect account `id` by browser, signed in as `login` (else as `mailbox`), with this
    /// stack's servers and `options`.
    async fn account(&self, id: &str, mailbox: &str, login: Option<&str>) {
        self.account_with(id, mailbox, login, serde_json::json!({}))
            .await;
    }

    async fn account_with(
        &self,
        id: &str,
        mailbox: &str,
        login: Option<&str>,
        options: serde_json::Value,
    ) {
        let mut fields = serde_json::json!({"servers": self.stack.servers()});
        if let Some(l) = login {
            fields["login"] = l.into();
        }
        if options.as_object().is_some_and(|o| !o.is_empty()) {
            fields["options"] = options;
        }
        connected(&self.client, desktop(&self.env.emulator), id, mailbox)
            .flow("browser")
            .with(fields)
            .await;
    }
}

fn message(subject: &str) -> Vec<u8> {
    format!("From: alice@example.test\r\nTo: alice@example.test\r\nSubject: {subject}\r\nMessage-ID: <{subject}@test>\r\n\r\nHello.\r\n").into_bytes()
}

async fn find(client: &Client, id: &str, protocol: Protocol, needle: &str) -> bool {
    let req = FetchRequest {
        protocol: Some(protocol),
        ..Default::default()
    };
    for _ in 0..40 {
        let msgs = client.fetch(id, &req, &nc()).await.expect("fetch");
        if msgs
            .iter()
            .any(|m| String::from_utf8_lossy(&m.data).contains(needle))
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_test_send_fetch_over_imap_and_pop3_then_disconnect() {
    let w = world(&[]).await;
    w.account("alice", "alice@example.test", None).await;

    let report = w
        .client
        .test("alice", &[], TestOptions::default(), &nc())
        .await
        .unwrap();
    let json = serde_json::to_string_pretty(&report).unwrap();
    assert!(report.ok, "{json}");
    assert_eq!(report.results.len(), 3);
    for r in &report.results {
        assert!(r.ok, "{json}");
        assert_eq!(r.mechanism_used.as_deref(), Some("XOAUTH2"), "{json}");
        assert!(
            r.mechanisms_offered.iter().any(|m| m == "XOAUTH2"),
            "{json}"
        );
        assert!(
            r.tls_version
                .as_deref()
                .is_some_and(|v| v.starts_with("TLS 1.")),
            "{json}"
        );
        assert!(
            r.phases_ms.connect.is_some() && r.phases_ms.auth.is_some(),
            "{json}"
        );
    }

    let accepted = w
        .client
        .send("alice", &message("story-1"), None, &nc())
        .await
        .expect("send");
    assert!(accepted.starts_with("250"), "{accepted}");
    assert!(
        find(&w.client, "alice", Protocol::Imap, "story-1").await,
        "arrives over IMAP"
    );
    assert!(
        find(&w.client, "alice", Protocol::Pop3, "story-1").await,
        "arrives over POP3"
    );
    assert!(
        find(&w.client, "alice", Protocol::Pop3, "story-1").await,
        "POP3 left it on the server"
    );

    let folders = w.client.list_folders("alice", &nc()).await.unwrap();
    assert!(
        folders
            .iter()
            .any(|f| f.name == "INBOX" && f.special_use.is_some()),
        "{folders:?}"
    );

    w.client
        .disconnect("alice", &CancellationToken::new())
        .await
        .unwrap();
    let report = w
        .client
        .test("alice", &[], TestOptions::default(), &nc())
        .await
        .unwrap();
    assert!(!report.ok);
    assert_eq!(report.token.status, "not_connected");
    assert!(
        report.results.iter().all(|r| r.phases_ms.connect.is_none()),
        "no server was contacted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_message_is_sent_to_self_and_found_again() {
    let w = world(&[]).await;
    w.account("alice", "alice@example.test", None).await;
    let report = w
        .client
        .test(
            "alice",
            &[Protocol::Imap, Protocol::Smtp],
            TestOptions { send_probe: true },
            &nc(),
        )
        .await
        .unwrap();
    let probe = report.probe.clone().expect("probe ran");
    assert!(
        probe.ok,
        "{}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    assert_eq!(probe.found_via, Some("imap"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_server_refuses_is_refreshed_once_and_retried() {
    let w = world(&[]).await;
    w.account("alice", "alice@example.test", None).await;
    // The stored access token is still "valid" for us, but the server no longer accepts it.
    w.env
        .emulator
        .revoke_user_access_tokens("alice@example.test");
    let report = w
        .client
        .test("alice", &[Protocol::Imap], TestOptions::default(), &nc())
        .await
        .unwrap();
    assert!(
        report.ok,
        "{}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    assert!(report.results[0].retried_with_refreshed_token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_refresh_token_needs_reauthorization_without_a_retry_loop() {
    let w = world(&[]).await;
    w.account("alice", "alice@example.test", None).await;
    w.env
        .emulator
        .revoke_user_access_tokens("alice@example.test");
    w.env
        .emulator
        .revoke_user_refresh_tokens("alice@example.test");
    w.env.emulator.reset_stats();
    let e = w
        .client
        .send("alice", &message("never"), None, &nc())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ReauthorizationRequired, "{e}");
    assert_eq!(
        w.client.status("alice").unwrap().state,
        AccountState::NeedsReauthorization
    );
    let e = w
        .client
        .send("alice", &message("never"), None, &nc())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ReauthorizationRequired);
    assert_eq!(
        w.env.emulator.stats().refresh_requests_total(),
        1,
        "one refresh attempt, no loop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_another_user_is_refused_with_the_sasl_challenge_kept() {
    let w = world(&[]).await;
    // bob signs in, but the account names alice's mailbox: bob has no FullAccess on it.
    w.account("wrong", "alice@example.test", Some("bob@example.test"))
        .await;
    let report = w
        .client
        .test(
            "wrong",
            &[Protocol::Imap, Protocol::Pop3],
            TestOptions::default(),
            &nc(),
        )
        .await
        .unwrap();
    let json = serde_json::to_string_pretty(&report).unwrap();
    assert!(!report.ok, "{json}");
    for r in &report.results {
        let e = r.error.as_ref().expect("error");
        assert_eq!(e.code, "MC-SHARED-MAILBOX-NO-ACCESS", "{json}");
        assert!(
            e.sasl_challenge
                .as_deref()
                .is_some_and(|c| c.contains("401")),
            "the + challenge JSON is kept: {json}"
        );
    }
    // The delegate with FullAccess works: alice opens the shared mailbox sales@.
    w.account("sales", "sales@example.test", Some("alice@example.test"))
        .await;
    let report = w
        .client
        .test("sales", &[Protocol::Imap], TestOptions::default(), &nc())
        .await
        .unwrap();
    assert!(
        report.ok,
        "{}",
        serde_json::to_string_pretty(&report).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop3_disabled_for_one_user_is_diagnosed_as_such() {
    let w = world(&["bob@example.test"]).await;
    w.account("bob", "bob@example.test", None).await;
    let report = w
        .client
        .test("bob", &[], TestOptions::default(), &nc())
        .await
        .unwrap();
    let json = serde_json::to_string_pretty(&report).unwrap();
    let pop = report
        .results
        .iter()
        .find(|r| r.protocol == Protocol::Pop3)
        .unwrap();
    let imap = report
        .results
        .iter()
        .find(|r| r.protocol == Protocol::Imap)
        .unwrap();
    assert!(imap.ok && !pop.ok, "{json}");
    assert_eq!(
        pop.error.as_ref().unwrap().code,
        "MC-PROTOCOL-DISABLED",
        "{json}"
    );
    // The report tells what happened although the login failed: connected, TLS, the mechanisms
    // offered, two authentications (the stored token, then a refreshed one).
    assert!(
        pop.phases_ms.connect.is_some() && pop.phases_ms.tls.is_some(),
        "{json}"
    );
    assert!(
        pop.phases_ms.auth.is_some() && pop.phases_ms.check.is_none(),
        "{json}"
    );
    assert!(
        pop.mechanisms_offered.iter().any(|m| m == "XOAUTH2"),
        "{json}"
    );
    assert_eq!(pop.mechanism_used.as_deref(), Some("XOAUTH2"), "{json}");
    assert!(pop.retried_with_refreshed_token, "{json}");
    assert_eq!(pop.auth_attempts, 2, "{json}");
    assert_eq!(imap.auth_attempts, 1, "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_port_and_untrusted_certificate_are_diagnosed() {
    let w = world(&[]).await;
    w.account("alice", "alice@example.test", None).await;
    // A closed port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut a: serde_json::Value =
        serde_json::to_value(w.client.account("alice").unwrap()).unwrap();
    a["servers"]["imap"]["port"] = closed.into();
    w.client.put_account_json(&a.to_string()).unwrap();
    let report = w
        .client
        .test("alice", &[Protocol::Imap], TestOptions::default(), &nc())
        .await
        .unwrap();
    assert_eq!(
        report.results[0].error.as_ref().unwrap().code,
        "MC-NETWORK-UNREACHABLE"
    );

    // A client that does not trust the throw-away CA.
    let plain = open_client(&w.env.dir.path().join("mail.db"));
    let report = plain
        .test("alice", &[Protocol::Pop3], TestOptions::default(), &nc())
        .await
        .unwrap();
    let e = report.results[0].error.clone().unwrap();
    assert_eq!(e.code, "MC-TLS-UNTRUSTED", "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_closing_the_connection_mid_command_is_reported() {
    let w = world(&[]).await;
    w.account("alice", "alice@example.test", None).await;
    // A POP3 server that greets, then hangs up when the client speaks.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(b"+OK ready\r\n").await;
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf).await;
        }
    });
    let mut a: serde_json::Value =
        serde_json::to_value(w.client.account("alice").unwrap()).unwrap();
    a["servers"]["pop3"] =
        serde_json::json!({"host": "127.0.0.1", "port": port, "security": "none"});
    w.client.put_account_json(&a.to_string()).unwrap();
    let report = w
        .client
        .test("alice", &[Protocol::Pop3], TestOptions::default(), &nc())
        .await
        .unwrap();
    let e = report.results[0].error.clone().unwrap();
    assert_eq!(e.code, "MC-CONNECTION-CLOSED", "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_messages_reuses_one_smtp_connection() {
    let w = world(&[]).await;
    w.account("alice", "alice@example.test", None).await;
    for i in 0..5 {
        w.client
            .send("alice", &message(&format!("burst-{i}")), None, &nc())
            .await
            .expect("send");
    }
    assert_eq!(
        w.client.smtp_connections_opened(),
        1,
        "one session for the burst"
    );
    assert!(find(&w.client, "alice", Protocol::Imap, "burst-4").await);
    // Another process disconnects the account: the idle session that logged in before must not
    // carry mail for it (the state is read from the store on every send).
    let other = open_client_with_ca(&w.env.dir.path().join("mail.db"), w.stack.ca_pem());
    other.disconnect("alice", &nc()).await.expect("disconnect");
    let e = w
        .client
        .send("alice", &message("after-disconnect"), None, &nc())
        .await
        .expect_err("a disconnected account sends nothing");
    assert_eq!(e.kind(), ErrorKind::State, "{e:?}");
    assert_eq!(w.client.smtp_connections_opened(), 1, "no new login either");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_imap_session_reauthenticates_before_its_token_expires() {
    let w = world_with(&[], 4).await;
    w.account_with(
        "alice",
        "alice@example.test",
        None,
        serde_json::json!({"refresh_margin_secs": 1}),
    )
    .await;
    let mut session = w.client.imap_session("alice", &nc()).await.unwrap();
    let q = mailconnect_core::transport::imap::FetchQuery::default();
    session.fetch(&q, &nc()).await.unwrap();
    assert_eq!(session.reconnects(), 0);
    tokio::time::sleep(Duration::from_millis(3300)).await; // the login token is now inside the margin
    session.list_folders(&nc()).await.expect("still works");
    assert_eq!(
        session.reconnects(),
        1,
        "re-authenticated with a fresh token before expiry"
    );
    session.close().await.unwrap();
}

/// The Dovecot sessions that have logged out since the log had `skip` lines: each one's
/// `body_count` (messages whose body it sent).
fn bodies_per_session(log: &std::path::Path, skip: usize) -> Vec<u64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .skip(skip)
        .filter(|l| l.contains("imap(alice@example.test)") && l.contains("Logged out"))
        .filter_map(|l| l.split("body_count=").nth(1))
        .filter_map(|r| r.split_whitespace().next()?.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_fetch_split_over_sessions_returns_what_one_session_returns() {
    let w = world(&[]).await;
    w.account("alice", "alice@example.test", None).await;
    let n = 1500;
    let msgs: Vec<Vec<u8>> = (0..n).map(|i| message(&format!("split-{i}"))).collect();
    w.stack.lmtp_deliver("alice@example.test", &msgs).await;
    let log = std::path::PathBuf::from(w.stack.info["dovecot_log"].as_str().unwrap());
    let fetch = |connections: Option<u8>, limit: Option<usize>, uid_from: Option<u32>| {
        let req = FetchRequest {
            protocol: Some(Protocol::Imap),
            connections,
            limit,
            uid_from,
            ..Default::default()
        };
        let client = &w.client;
        async move { client.fetch("alice", &req, &nc()).await }
    };
    let lines = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let one = fetch(None, None, None).await.unwrap();
    assert_eq!(one.len(), n);
    let ids = |v: &[mailconnect_core::mail::FetchedMessage]| {
        v.iter()
            .map(|m| (m.id.clone(), m.data.clone(), m.internal_date.clone()))
            .collect::<Vec<_>>()
    };

    let before = lines();
    let three = fetch(Some(3), None, None).await.unwrap();
    assert_eq!(
        ids(&three),
        ids(&one),
        "same messages, same order, same bytes"
    );
    // Dovecot's log: three sessions logged out, each having sent its share of the bodies.
    let mut shares = Vec::new();
    for _ in 0..100 {
        shares = bodies_per_session(&log, before);
        if shares.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shares.sort_unstable();
    assert_eq!(shares, vec![500, 500, 500], "{shares:?}");

    // The newest 1,200 over two sessions are the newest 1,200 over one.
    let newest = fetch(Some(2), Some(1200), None).await.unwrap();
    assert_eq!(ids(&newest), ids(&one[n - 1200..]));
    // Below the split threshold one session does it all.
    let from = one[n - 300].id.parse::<u32>().unwrap();
    let before = lines();
    let few = fetch(Some(4), None, Some(from)).await.unwrap();
    assert_eq!(ids(&few), ids(&one[n - 300..]));
    let mut shares = Vec::new();
    for _ in 0..100 {
        shares = bodies_per_session(&log, before);
        if !shares.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(shares, vec![300]);

    for bad in [0u8, 5] {
        let e = fetch(Some(bad), None, None)
            .await
            .expect_err("out of range");
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e:?}");
    }
}
