//! Mail-server faults against the real Dovecot and Postfix of the sandbox stack: a fault proxy
//! (tests/support/faultproxy.rs) resets the connection in the middle of an IMAP FETCH, a POP3 RETR
//! or QUIT, and at every point of an SMTP submission. The maildir is read directly to count the
//! copies actually delivered.
//!
//! What the library promises, and these tests hold it to:
//! - A fetch cut short fails cleanly (a network error with the MC-CONNECTION-CLOSED diagnostic) or,
//!   in a long IMAP session, succeeds after one reconnect; either way no message is returned twice.
//! - POP3 deletes only at QUIT, so a cut before QUIT loses nothing. When the connection breaks after
//!   the messages were read, they are returned anyway (with their UIDL ids): the server may have
//!   deleted them. POP3 with delete is at-least-once; hosts de-duplicate by id.
//! - A send is at-most-once per call: the library never repeats a submission by itself, and never
//!   reports success without the server's 250 for the message. A send cut before the end of the
//!   data is an error and nothing is delivered. A send cut after the server accepted it (its 250
//!   lost on the way) is an error whose message says the message may have been accepted: exactly
//!   one copy is delivered, and the caller decides whether to send again.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mailconnect_core::mail::FetchRequest;
use mailconnect_core::{CancellationToken, Client, Error, ErrorKind, Protocol};
use mailconnect_tests::faultproxy::{Direction, Fault, FaultProxy};
use mailconnect_tests::*;

fn nc() -> CancellationToken {
    CancellationToken::new()
}

struct World {
    env: Env,
    stack: MailStack,
    client: Client,
    imap: FaultProxy,
    pop3: FaultProxy,
    smtp: FaultProxy,
}

async fn world(options: serde_json::Value) -> World {
    let env = env().await;
    let stack = MailStack::up(&env.emulator.introspection_url(), &[]);
    let client = open_client_with_ca(&env.dir.path().join("mail.db"), stack.ca_pem());
    let (imap, pop3, smtp) = (
        FaultProxy::start(&stack, "imap_tls").await,
        FaultProxy::start(&stack, "pop3_tls").await,
        FaultProxy::start(&stack, "smtp_tls").await,
    );
    let servers = serde_json::json!({
        "imap": {"host": "127.0.0.1", "port": imap.port(), "security": "tls"},
        "pop3": {"host": "127.0.0.1", "port": pop3.port(), "security": "tls"},
        "smtp": {"host": "127.0.0.1", "port": smtp.port(), "security": "tls"}
    });
    connected(
        &client,
        desktop(&env.emulator),
        "alice",
        "alice@example.test",
    )
    .flow("browser")
    .with(serde_json::json!({"servers": servers, "options": options}))
    .await;
    World {
        env,
        stack,
        client,
        imap,
        pop3,
        smtp,
    }
}

fn message(tag: &str) -> Vec<u8> {
    format!("From: alice@example.test\r\nTo: alice@example.test\r\nSubject: {tag}\r\nMessage-ID: <{tag}@mailconnect.test>\r\n\r\nBody of {tag}.\r\n.leading dot line\r\nEnd.\r\n").into_bytes()
}

impl World {
    fn maildir(&self) -> PathBuf {
        PathBuf::from(
            self.stack.info["maildir_format"]
                .as_str()
                .expect("maildir_format")
                .replace("{domain}", "example.test")
                .replace("{localpart}", "alice"),
        )
    }

    /// Delivered copies of the message with `tag` in its Message-ID (new/ and cur/).
    fn copies(&self, tag: &str) -> usize {
        let id = format!("<{tag}@mailconnect.test>");
        ["new", "cur"]
            .iter()
            .filter_map(|d| std::fs::read_dir(self.maildir().join(d)).ok())
            .flatten()
            .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
            .filter(|b| String::from_utf8_lossy(b).contains(&id))
            .count()
    }

    /// Wait until `want` copies of `tag` are delivered; the count after waiting.
    async fn wait_copies(&self, tag: &str, want: usize) -> usize {
        let started = Instant::now();
        while self.copies(tag) < want && started.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.copies(tag)
    }

    /// A fresh client on the same store (no pooled SMTP session), so the next proxy connection is
    /// the one its first send opens.
    fn fresh_client(&self) -> Client {
        open_client_with_ca(&self.env.dir.path().join("mail.db"), self.stack.ca_pem())
    }

    /// Deliver `tags` through the server without faults and wait until they are in the maildir.
    async fn seed(&self, tags: &[&str]) {
        for t in tags {
            self.client
                .send("alice", &message(t), None, &nc())
                .await
                .expect("seed send");
        }
        for t in tags {
            assert_eq!(self.wait_copies(t, 1).await, 1, "{t} delivered");
        }
    }

    async fn fetch(
        &self,
        protocol: Protocol,
    ) -> Result<Vec<mailconnect_core::mail::FetchedMessage>, Error> {
        let req = FetchRequest {
            protocol: Some(protocol),
            ..Default::default()
        };
        self.client.fetch("alice", &req, &nc()).await
    }
}

fn count_tag(msgs: &[mailconnect_core::mail::FetchedMessage], tag: &str) -> usize {
    let id = format!("<{tag}@mailconnect.test>");
    msgs.iter()
        .filter(|m| String::from_utf8_lossy(&m.data).contains(&id))
        .count()
}

fn assert_cut(e: &Error, what: &str) {
    assert_eq!(e.kind(), ErrorKind::Network, "{what}: {e}");
    assert_eq!(
        e.diagnostic_json()["code"],
        "MC-CONNECTION-CLOSED",
        "{what}: {e}"
    );
}

/// A one-shot fetch cut while the server streams the second of three messages fails cleanly (a
/// network error naming the fetch), and the next fetch returns each message exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_cut_mid_message_fails_cleanly_and_the_next_returns_each_message_once() {
    let w = world(serde_json::json!({})).await;
    // (protocol, where the cut falls, its proxy, the messages' tags; the cut is in the second)
    let cases = [
        (
            Protocol::Imap,
            "mid-FETCH",
            &w.imap,
            ["imap-a", "imap-b", "imap-c"],
        ),
        (
            Protocol::Pop3,
            "mid-RETR",
            &w.pop3,
            ["pop-a", "pop-b", "pop-c"],
        ),
    ];
    for (protocol, cut, proxy, tags) in cases {
        let what = format!("{protocol:?} fetch cut {cut}");
        w.seed(&tags).await;
        let resets = proxy.resets();
        proxy.add(Fault::before(
            proxy.next(),
            Direction::FromServer,
            &format!("Subject: {}", tags[1]),
        ));
        let e = w.fetch(protocol).await.expect_err(&what);
        assert_cut(&e, &what);
        assert!(
            e.message().contains("fetching mail for account 'alice'"),
            "{what}: {e}"
        );
        assert_eq!(proxy.resets(), resets + 1, "{what}");
        let msgs = w
            .fetch(protocol)
            .await
            .unwrap_or_else(|e| panic!("{what}: the next fetch fails: {e}"));
        for t in tags {
            assert_eq!(count_tag(&msgs, t), 1, "{what}: {t} exactly once");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_imap_session_reconnects_once_after_a_cut_without_duplicates() {
    let w = world(serde_json::json!({})).await;
    let tags = ["imap-a", "imap-b", "imap-c"];
    w.seed(&tags).await;

    // A long session: the cut connection is replaced once and the fetch succeeds.
    let mut s = w.client.imap_session("alice", &nc()).await.unwrap();
    let conn = w.imap.connections();
    let resets = w.imap.resets();
    w.imap.add(Fault::before(
        conn,
        Direction::FromServer,
        "Subject: imap-c",
    ));
    let q = mailconnect_core::transport::imap::FetchQuery::default();
    let msgs = s.fetch(&q, &nc()).await.expect("reconnected once");
    assert_eq!(s.reconnects(), 1);
    assert_eq!(w.imap.resets(), resets + 1);
    assert_eq!(w.imap.connections(), conn + 1, "one new connection");
    for t in tags {
        let n = msgs
            .iter()
            .filter(|m| String::from_utf8_lossy(&m.data).contains(&format!("<{t}@")))
            .count();
        assert_eq!(n, 1, "{t} exactly once after the reconnect");
    }
    // Two cuts in a row: reported, not retried again.
    let conn = w.imap.connections();
    w.imap.add(Fault::before(
        conn,
        Direction::FromServer,
        "Subject: imap-a",
    ));
    w.imap.add(Fault::before(
        conn + 1,
        Direction::FromServer,
        "Subject: imap-a",
    ));
    let e = s.fetch(&q, &nc()).await.unwrap_err();
    assert_cut(&e, "two cuts");
    assert_eq!(w.imap.connections(), conn + 1, "one reconnect, no more");
    let _ = s.close().await;
    // Nothing was lost on the server.
    for t in tags {
        assert_eq!(w.copies(t), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pop3_fetch_cut_anywhere_is_a_network_error_and_loses_nothing() {
    let w = world(serde_json::json!({})).await;
    w.seed(&["pop-a", "pop-b", "pop-c"]).await;
    // Cut after N bytes of the server's answers, wherever that falls.
    for bytes in [40, 400, 1200] {
        w.pop3.add(Fault::after_bytes(
            w.pop3.next(),
            Direction::FromServer,
            bytes,
        ));
        let e = w.fetch(Protocol::Pop3).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Network, "cut after {bytes} bytes: {e}");
    }
    let msgs = w.fetch(Protocol::Pop3).await.unwrap();
    assert_eq!(msgs.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop3_with_delete_commits_only_at_quit_and_never_loses_what_it_read() {
    let w = world(serde_json::json!({"pop3": {"leave_on_server": false}})).await;
    w.seed(&["del-a", "del-b"]).await;

    // Cut mid-RETR: no QUIT reached the server, so nothing was deleted.
    w.pop3.add(Fault::before(
        w.pop3.next(),
        Direction::FromServer,
        "Subject: del-b",
    ));
    let e = w.fetch(Protocol::Pop3).await.unwrap_err();
    assert_cut(&e, "cut mid-RETR with delete");
    assert_eq!(w.copies("del-a"), 1, "not deleted without QUIT");
    assert_eq!(w.copies("del-b"), 1);

    // Cut after the server processed QUIT (its +OK lost): the server deleted them, so the
    // messages read must be returned, not thrown away with an error.
    w.pop3.add(Fault::before(
        w.pop3.next(),
        Direction::FromServer,
        "+OK Logging out",
    ));
    let msgs = w
        .fetch(Protocol::Pop3)
        .await
        .expect("messages read before a lost QUIT reply are returned");
    assert_eq!(count_tag(&msgs, "del-a"), 1);
    assert_eq!(count_tag(&msgs, "del-b"), 1);
    assert_eq!(w.copies("del-a") + w.copies("del-b"), 0, "deleted at QUIT");

    // Cut before QUIT reaches the server: nothing deleted, the messages are returned now and again
    // at the next fetch, with the same ids (at-least-once; hosts de-duplicate by id).
    w.seed(&["del-c"]).await;
    w.pop3
        .add(Fault::before(w.pop3.next(), Direction::FromClient, "QUIT"));
    let first = w
        .fetch(Protocol::Pop3)
        .await
        .expect("returned despite the lost QUIT");
    assert_eq!(count_tag(&first, "del-c"), 1);
    assert_eq!(w.copies("del-c"), 1, "QUIT never arrived: not deleted");
    let again = w.fetch(Protocol::Pop3).await.unwrap();
    assert_eq!(count_tag(&again, "del-c"), 1);
    assert_eq!(first[0].id, again[0].id, "same UIDL id both times");
    assert_eq!(w.copies("del-c"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_submission_cut_before_the_end_of_data_is_an_error_and_delivers_nothing() {
    let w = world(serde_json::json!({})).await;
    // Before the server's 354 the library knows nothing was sent. After it, the data may have
    // reached the server whole (the client cannot see where a cut happened), so the outcome is
    // reported as unknown; here the server never got the final dot, and nothing is delivered.
    let not_sent = "was not sent";
    let unknown = "may have been accepted";
    let cuts: Vec<(&str, Fault, &str)> = vec![
        (
            "after MAIL FROM",
            Fault::after(0, Direction::FromClient, "MAIL FROM:"),
            not_sent,
        ),
        (
            "after the DATA command",
            Fault::after(0, Direction::FromClient, "DATA\r\n"),
            not_sent,
        ),
        (
            "before the 354 go-ahead",
            Fault::before(0, Direction::FromServer, "354 "),
            not_sent,
        ),
        (
            "mid-body",
            Fault::before(0, Direction::FromClient, "Body of"),
            unknown,
        ),
        (
            "before the final dot",
            Fault::before(0, Direction::FromClient, "\r\n.\r\n"),
            unknown,
        ),
    ];
    let mut tags = vec![];
    for (i, (what, mut fault, says)) in cuts.into_iter().enumerate() {
        let tag = format!("smtp-cut-{i}");
        let client = w.fresh_client();
        fault.connection = w.smtp.next();
        w.smtp.add(fault);
        let r = client.send("alice", &message(&tag), None, &nc()).await;
        let e = match r {
            Ok(reply) => panic!("{what}: a cut send was reported as sent: {reply}"),
            Err(e) => e,
        };
        assert_cut(&e, what);
        assert!(
            e.message().contains("sending mail for account 'alice'"),
            "{what}: {e}"
        );
        assert!(e.message().contains(says), "{what}: {}", e.message());
        tags.push(tag);
    }
    assert_eq!(w.smtp.resets(), tags.len());
    // A message sent afterwards arrives; the cut ones never do.
    w.fresh_client()
        .send("alice", &message("smtp-marker"), None, &nc())
        .await
        .expect("marker send");
    assert_eq!(w.wait_copies("smtp-marker", 1).await, 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    for t in &tags {
        assert_eq!(w.copies(t), 0, "{t} must not be delivered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_submission_cut_after_the_servers_250_is_an_error_that_says_so_and_is_delivered_once(
) {
    let w = world(serde_json::json!({})).await;
    let client = w.fresh_client();
    w.smtp.add(Fault::before(
        w.smtp.next(),
        Direction::FromServer,
        "250 2.0.0 Ok: queued",
    ));
    let e = client
        .send("alice", &message("smtp-lost-250"), None, &nc())
        .await
        .expect_err("no 250 arrived: not reported as sent");
    assert_cut(&e, "after 250");
    assert!(
        e.message().contains("may have been accepted"),
        "{}",
        e.message()
    );
    // The server had accepted it: one copy, and the library did not send it again.
    assert_eq!(w.wait_copies("smtp-lost-250", 1).await, 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.copies("smtp-lost-250"), 1, "at most once: no second copy");
    assert_eq!(w.smtp.connections(), 1, "no retry on another connection");

    // A pooled session whose connection died while idle is replaced before anything is sent.
    let client = w.fresh_client();
    client
        .send("alice", &message("smtp-pool-1"), None, &nc())
        .await
        .expect("first send");
    let conn = w.smtp.connections();
    w.smtp
        .add(Fault::before(conn, Direction::FromServer, "250 2.1.0"));
    let reply = client
        .send("alice", &message("smtp-pool-2"), None, &nc())
        .await
        .expect("a dead pooled session is replaced when nothing was sent yet");
    assert!(reply.starts_with("250"), "{reply}");
    assert_eq!(w.wait_copies("smtp-pool-2", 1).await, 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(w.copies("smtp-pool-2"), 1);
    assert_eq!(w.copies("smtp-pool-1"), 1);
}
