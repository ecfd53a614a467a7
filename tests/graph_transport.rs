//! The Microsoft Graph transport of core (issue 16) against the emulator's Graph on the real
//! Dovecot and Postfix: the message builder's 10 MB attachment over Graph and over SMTP, `auto`
//! falling back once and remembering it, app-only sending from a shared mailbox and the access
//! policy's refusal, paging over more than 1,000 messages, throttling absorbed, a lost answer
//! reported as "may have been sent" and not sent twice, a token Graph refuses renewed once (and
//! diagnosed when Graph refuses the new one too), and Graph outages diagnosed with bounded
//! retries and sends never repeated. (Needs root for the mail stack.)

use std::time::{Duration, Instant};

use base64::Engine;
use mailconnect_core::compose::MessageSpec;
use mailconnect_core::graph::ListQuery;
use mailconnect_core::mail::FetchRequest;
use mailconnect_core::{CancellationToken, Client};
use mailconnect_sandbox::{GraphCloud, GraphOutage, GraphSettings, GraphThrottle};
use mailconnect_tests::*;

fn nc() -> CancellationToken {
    CancellationToken::new()
}

/// A registration that reaches the emulator's Graph as well as its identity platform.
fn graph_desktop(w: &GraphWorld) -> serde_json::Value {
    let mut reg = desktop(&w.env.emulator);
    reg["graph_host"] = w.env.emulator.base_url().into();
    reg
}

/// The stack's servers, with SMTP through the emulator's front (where SMTP AUTH can be off).
fn servers(w: &GraphWorld) -> serde_json::Value {
    let mut s = w.stack.servers();
    s["smtp"]["port"] = w.front.smtp_starttls.into();
    s
}

fn client(w: &GraphWorld, name: &str) -> Client {
    open_client_with_ca(&w.env.dir.path().join(name), w.stack.ca_pem())
}

fn spec(v: serde_json::Value) -> MessageSpec {
    serde_json::from_value(v).expect("message spec")
}

/// Wait until Dovecot holds a message for `mailbox` whose text contains `marker`; its bytes.
async fn arrived(w: &GraphWorld, mailbox: &str, marker: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(m) = w
            .stack
            .stored_messages(mailbox, None)
            .into_iter()
            .find(|m| String::from_utf8_lossy(m).contains(marker))
        {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "the message '{marker}' did not arrive for {mailbox}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// How many stored messages of `mailbox` contain `marker`.
fn count(w: &GraphWorld, mailbox: &str, marker: &str) -> usize {
    w.stack
        .stored_messages(mailbox, None)
        .iter()
        .filter(|m| String::from_utf8_lossy(m).contains(marker))
        .count()
}

/// The decoded subject, text body and attachments (name, bytes) of a stored message.
fn parts(raw: &[u8]) -> (String, String, Vec<(String, Vec<u8>)>) {
    use mailparse::MailHeaderMap;
    let m = mailparse::parse_mail(raw).expect("a MIME message");
    let subject = m.headers.get_first_value("Subject").unwrap_or_default();
    let mut text = String::new();
    let mut files = Vec::new();
    for p in m.parts() {
        let d = p.get_content_disposition();
        if let Some(name) = d.params.get("filename") {
            files.push((name.clone(), p.get_body_raw().expect("attachment body")));
        } else if p.ctype.mimetype == "text/plain" && text.is_empty() {
            text = p.get_body().expect("text body").trim().to_string();
        }
    }
    (subject, text, files)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_built_message_with_a_10_mb_attachment_arrives_identically_over_graph_and_smtp() {
    let w = graph_world(|_| {}).await;
    let c = client(&w, "built.db");
    connected(&c, graph_desktop(&w), "alice", "alice@example.test")
        .flow("browser")
        .with(serde_json::json!({"servers": servers(&w), "transport": "graph"}))
        .await;
    connected(&c, graph_desktop(&w), "carol-smtp", "alice@example.test")
        .flow("browser")
        .with(serde_json::json!({"servers": servers(&w), "transport": "auto"}))
        .await;
    let data: Vec<u8> = (0..10 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let message = |marker: &str| {
        spec(serde_json::json!({
            "to": [{"name": "Alice Müller", "address": "alice@example.test"}],
            "subject": format!("Rechnung für März {marker}"),
            "text": "Grüße aus Köln",
            "attachments": [{
                "content_base64": base64::engine::general_purpose::STANDARD.encode(&data),
                "file_name": "Rechnung März.bin",
                "content_type": "application/octet-stream"
            }]
        }))
    };
    let over_graph = c
        .send_message("alice", &message("graph-10mb"), None, &nc())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{:?}", e.evidence()));
    assert_eq!(over_graph.transport, "graph");
    assert!(over_graph.reply.contains("draft"), "{}", over_graph.reply);
    let over_smtp = c
        .send_message("carol-smtp", &message("smtp-10mb"), None, &nc())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{:?}", e.evidence()));
    assert_eq!(over_smtp.transport, "smtp");

    let g = parts(&arrived(&w, "alice@example.test", "graph-10mb").await);
    let s = parts(&arrived(&w, "alice@example.test", "smtp-10mb").await);
    assert_eq!(g.0, "Rechnung für März graph-10mb");
    assert_eq!(s.0, "Rechnung für März smtp-10mb");
    assert_eq!(g.1, "Grüße aus Köln");
    assert_eq!(g.1, s.1, "the text body");
    assert_eq!(g.2.len(), 1, "one attachment over Graph");
    assert_eq!(g.2[0].0, "Rechnung März.bin");
    assert!(
        g.2[0].1 == data,
        "the attachment arrives byte-identical over Graph"
    );
    assert_eq!(g.2, s.2, "the same attachment over SMTP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_back_to_graph_once_and_remembers() {
    let w = graph_world(|_| {}).await;
    let c = client(&w, "auto.db");
    connected(&c, graph_desktop(&w), "alice", "alice@example.test")
        .flow("browser")
        .with(serde_json::json!({"servers": servers(&w), "transport": "auto"}))
        .await;
    let before = c.status("alice").unwrap();
    let t = serde_json::to_value(&before).unwrap()["transport"].clone();
    assert_eq!(t["send"], "smtp", "{t}");

    change_user(&w.env.emulator, "alice@example.test", |u| {
        u.smtp_client_authentication_disabled = Some(true)
    });

    let msg = |n: u32| {
        spec(
            serde_json::json!({"to": ["alice@example.test"], "subject": format!("auto {n}"), "text": "x"}),
        )
    };
    let first = c.send_message("alice", &msg(1), None, &nc()).await.unwrap();
    assert_eq!(first.transport, "graph", "{}", first.reply);
    let refusals = || w.env.emulator.stats().smtp_auth_disabled_refusals;
    assert_eq!(refusals(), 1, "SMTP was tried once");
    let status = serde_json::to_value(c.status("alice").unwrap()).unwrap();
    assert_eq!(status["transport"]["send"], "graph", "{status}");
    assert_eq!(status["transport"]["reason"], "smtp_auth_disabled");
    assert!(status["transport"]["since"].is_string());

    let second = c.send_message("alice", &msg(2), None, &nc()).await.unwrap();
    assert_eq!(second.transport, "graph");
    assert_eq!(refusals(), 1, "the second message went straight to Graph");
    // Another client on the same store (another process of the host) remembers it too.
    let again = open_client_with_ca(&w.env.dir.path().join("auto.db"), w.stack.ca_pem());
    let third = again
        .send_message("alice", &msg(3), None, &nc())
        .await
        .unwrap();
    assert_eq!(third.transport, "graph");
    assert_eq!(refusals(), 1);
    for n in 1..=3 {
        arrived(&w, "alice@example.test", &format!("auto {n}")).await;
    }
    let report = c
        .test("alice", &[], Default::default(), &nc())
        .await
        .unwrap();
    let r = serde_json::to_value(&report).unwrap();
    assert_eq!(r["transport"]["send"], "graph", "{r}");
    assert_eq!(r["graph"]["ok"], true, "{r}");
    assert_eq!(r["graph"]["found"]["can_send"], true, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_only_sends_from_a_shared_mailbox_and_the_access_policy_is_explained() {
    let w = graph_world(|_| {}).await;
    let c = client(&w, "app.db");
    let reg = serde_json::json!({"id": "svc", "provider": "microsoft", "tenant": TENANT,
        "authority_host": w.env.emulator.base_url(), "graph_host": w.env.emulator.base_url(),
        "client_id": SERVICE_APP, "client_secret": SERVICE_SECRET});
    connected(&c, reg.clone(), "sales", "sales@example.test")
        .flow("client_credentials")
        .with(serde_json::json!({"transport": "graph"}))
        .user(ScriptedUser::idle())
        .await;
    let sent = c
        .send_message(
            "sales",
            &spec(serde_json::json!({"to": ["alice@example.test"], "subject": "from the shared mailbox", "text": "x"})),
            None,
            &nc(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{:?}", e.evidence()));
    assert_eq!(sent.transport, "graph");
    let raw = arrived(&w, "alice@example.test", "from the shared mailbox").await;
    assert!(String::from_utf8_lossy(&raw).contains("sales@example.test"));

    connected(&c, reg, "carol", "carol@example.test")
        .flow("client_credentials")
        .with(serde_json::json!({"transport": "graph"}))
        .user(ScriptedUser::idle())
        .await;
    let e = c
        .send_message(
            "carol",
            &spec(serde_json::json!({"to": ["alice@example.test"], "subject": "refused", "text": "x"})),
            None,
            &nc(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("MC-GRAPH-APP-ACCESS-POLICY"), "{e}");
    assert!(e.message().contains("[RAOP]"), "{}", e.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_through_more_than_a_thousand_messages() {
    let w = graph_world(|_| {}).await;
    let c = client(&w, "paging.db");
    connected(&c, graph_desktop(&w), "alice", "alice@example.test")
        .flow("browser")
        .with(serde_json::json!({"transport": "graph"}))
        .await;
    let messages: Vec<Vec<u8>> = (0..1050)
        .map(|i| {
            format!("From: bob@example.test\r\nTo: alice@example.test\r\nSubject: page test {i}\r\nMessage-ID: <page-{i}@example.test>\r\n\r\nbody {i}\r\n")
                .into_bytes()
        })
        .collect();
    w.stack.lmtp_deliver("alice@example.test", &messages).await;
    let before = w.env.emulator.stats().graph_requests;
    let mut g = c.graph_mailbox("alice", &nc()).await.unwrap();
    let listed = g.list("INBOX", &ListQuery::default()).await.unwrap();
    let ids: std::collections::BTreeSet<&str> = listed.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(listed.len(), 1050, "every message, once");
    assert_eq!(ids.len(), 1050, "no message twice across pages");
    assert!(
        w.env.emulator.stats().graph_requests - before >= 2,
        "more than one page was read"
    );
    // The newest first, and a limit stops early.
    let newest = g
        .list(
            "inbox",
            &ListQuery {
                limit: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(newest.len(), 5);
    let fetched = c
        .fetch(
            "alice",
            &FetchRequest {
                limit: Some(3),
                unread_only: true,
                mark_seen: true,
                ..Default::default()
            },
            &nc(),
        )
        .await
        .unwrap();
    assert_eq!(fetched.len(), 3);
    assert!(fetched
        .iter()
        .all(|m| m.flags.iter().any(|f| f == "\\Seen")));
    let unread = g
        .list(
            "inbox",
            &ListQuery {
                unread_only: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(unread.len(), 1047, "the three fetched are read now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_waited_out_and_a_lost_answer_is_reported_not_repeated() {
    let w = graph_world(|_| {}).await;
    let c = client(&w, "throttle.db");
    connected(&c, graph_desktop(&w), "alice", "alice@example.test")
        .flow("browser")
        .with(serde_json::json!({"transport": "graph"}))
        .await;
    w.env.emulator.set_graph_settings(GraphSettings {
        throttle: Some(GraphThrottle {
            requests: 2,
            status: 429,
            retry_after_secs: 1,
            send_mail_only: true,
            ..Default::default()
        }),
        ..Default::default()
    });
    let msg = |s: &str| {
        spec(serde_json::json!({"to": ["alice@example.test"], "subject": s, "text": "x"}))
    };
    let sent = c
        .send_message("alice", &msg("after throttling"), None, &nc())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{:?}", e.evidence()));
    assert_eq!(sent.transport, "graph");
    assert_eq!(
        w.env.emulator.stats().graph_throttled,
        2,
        "both 429s were waited out"
    );
    arrived(&w, "alice@example.test", "after throttling").await;

    let submitted = w.env.emulator.stats().graph_messages_submitted;
    w.env.emulator.set_graph_settings(GraphSettings {
        lose_send_answers: 1,
        ..Default::default()
    });
    let e = c
        .send_message("alice", &msg("answer lost"), None, &nc())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("MC-GRAPH-SEND-UNCERTAIN"), "{e}");
    assert!(e.message().contains("may have accepted"), "{}", e.message());
    assert_eq!(
        w.env.emulator.stats().graph_messages_submitted,
        submitted + 1,
        "submitted once, not repeated"
    );
    arrived(&w, "alice@example.test", "answer lost").await;
    // Nothing sends it a second time later either.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&w, "alice@example.test", "answer lost"), 1);

    // A throttle longer than the client waits ends in a clear diagnostic.
    w.env.emulator.set_graph_settings(GraphSettings {
        throttle: Some(GraphThrottle {
            requests: 50,
            status: 503,
            retry_after_secs: 1,
            send_mail_only: true,
            ..Default::default()
        }),
        ..Default::default()
    });
    let e = c
        .send_message("alice", &msg("never"), None, &nc())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("MC-GRAPH-THROTTLED"), "{e}");
    assert_eq!(e.kind(), mailconnect_core::ErrorKind::ProviderUnavailable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_refusals_reach_the_host_diagnosed() {
    let w = graph_world(|c| {
        // The service app lost its Graph permissions (an admin removed the admin consent).
        for app in &mut c.apps {
            if app.client_id == SERVICE_APP {
                app.graph_roles_granted.clear();
            }
        }
    })
    .await;
    let c = client(&w, "refusals.db");
    connected(&c, graph_desktop(&w), "alice", "alice@example.test")
        .flow("browser")
        .with(serde_json::json!({"transport": "graph"}))
        .await;
    let send = |subject: &str| {
        spec(serde_json::json!({"to": ["alice@example.test"], "subject": subject, "text": "x"}))
    };

    // A message that is no longer there (deleted, so its id is gone).
    let one =
        b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: soon gone\r\n\r\nx\r\n";
    w.stack
        .lmtp_deliver("alice@example.test", &[one.to_vec()])
        .await;
    let mut g = c.graph_mailbox("alice", &nc()).await.unwrap();
    let id = g.list("inbox", &ListQuery::default()).await.unwrap()[0]
        .id
        .clone();
    g.delete(&id).await.unwrap();
    let e = g.raw(&id).await.unwrap_err();
    assert_eq!(e.code(), Some("MC-GRAPH-NOT-FOUND"), "{e}");
    assert_eq!(e.kind(), mailconnect_core::ErrorKind::NotFound);

    // A message without recipients, sent as it is.
    let e = c
        .send(
            "alice",
            b"From: alice@example.test\r\nSubject: nobody\r\n\r\nx\r\n",
            None,
            &nc(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("MC-GRAPH-REQUEST-REFUSED"), "{e}");
    assert!(
        e.message().contains("ErrorInvalidRecipients"),
        "{}",
        e.message()
    );

    // Larger than the mailbox accepts.
    w.env.emulator.set_graph_settings(GraphSettings {
        max_message_bytes: 1024 * 1024,
        ..Default::default()
    });
    let big = spec(
        serde_json::json!({"to": ["alice@example.test"], "subject": "too big", "text": "x",
        "attachments": [{"content_base64": base64::engine::general_purpose::STANDARD.encode(vec![1u8; 2 * 1024 * 1024]), "file_name": "big.bin"}]}),
    );
    let e = c
        .send_message("alice", &big, None, &nc())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("MC-GRAPH-MESSAGE-TOO-LARGE"), "{e}");
    w.env.emulator.set_graph_settings(GraphSettings::default());

    // A mailbox Graph cannot reach (no Exchange Online licence, on premises).
    change_user(&w.env.emulator, "alice@example.test", |u| {
        u.rest_enabled = false
    });
    let e = c
        .send_message("alice", &send("not enabled"), None, &nc())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("MC-GRAPH-MAILBOX-NOT-ENABLED"), "{e}");

    // An app-only service without Graph's Mail.Send.
    let reg = serde_json::json!({"id": "svc", "provider": "microsoft", "tenant": TENANT,
        "authority_host": w.env.emulator.base_url(), "graph_host": w.env.emulator.base_url(),
        "client_id": SERVICE_APP, "client_secret": SERVICE_SECRET});
    connected(&c, reg, "sales", "sales@example.test")
        .flow("client_credentials")
        .with(serde_json::json!({"transport": "graph"}))
        .user(ScriptedUser::idle())
        .await;
    let e = c
        .send_message("sales", &send("no permission"), None, &nc())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("MC-GRAPH-ACCESS-DENIED"), "{e}");
    assert_eq!(e.kind(), mailconnect_core::ErrorKind::ProviderConfiguration);
    // Each one explains itself to the admin in both languages.
    for code in ["MC-GRAPH-ACCESS-DENIED", "MC-GRAPH-MAILBOX-NOT-ENABLED"] {
        let d = mailconnect_core::diagnose::catalog()
            .iter()
            .find(|d| d.code == code)
            .expect("catalog entry");
        assert!(!d.de.fix.is_empty() && !d.en.fix.is_empty());
    }
}

/// The diagnostic of `e` is the catalog entry `code`, explained (title, explanation, fix) in
/// English and in German.
fn explained(e: &mailconnect_core::Error, code: &str) -> serde_json::Value {
    let d = e.diagnostic_json();
    assert_eq!(d["code"], code, "{d}");
    for lang in ["en", "de"] {
        for field in ["title", "explanation", "fix"] {
            assert!(
                d[lang][field].as_str().is_some_and(|t| !t.is_empty()),
                "{code}: no {lang} {field}: {d}"
            );
        }
    }
    assert_ne!(d["en"]["explanation"], d["de"]["explanation"], "{d}");
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_renewed_once_and_a_token_graph_keeps_refusing_is_diagnosed() {
    let w = graph_world(|_| {}).await;
    let c = client(&w, "token.db");
    // Set up for SMTP (`auto`): the stored access token is Exchange's (outlook.office.com).
    connected(&c, graph_desktop(&w), "alice", "alice@example.test")
        .flow("browser")
        .with(serde_json::json!({"servers": servers(&w), "transport": "auto"}))
        .await;
    let msg = |s: &str| {
        spec(serde_json::json!({"to": ["alice@example.test"], "subject": s, "text": "x"}))
    };
    // Switched to Graph: the first call presents the Exchange token, Graph refuses it (401
    // InvalidAuthenticationToken, wrong audience), core renews it once and the Graph token works.
    let mut account = c.account("alice").unwrap();
    account.transport = mailconnect_core::model::Transport::Graph;
    c.put_account(&account).unwrap();
    let before = w.env.emulator.stats();
    let sent = c
        .send_message("alice", &msg("after one renewal"), None, &nc())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{:?}", e.evidence()));
    assert_eq!(sent.transport, "graph");
    let after = w.env.emulator.stats();
    assert_eq!(
        after.graph_requests - before.graph_requests,
        2,
        "the refused Exchange token, then the renewed Graph token"
    );
    assert_eq!(
        after.refresh_requests_total() - before.refresh_requests_total(),
        1,
        "renewed once"
    );
    assert_eq!(
        after.graph_messages_submitted - before.graph_messages_submitted,
        1
    );
    arrived(&w, "alice@example.test", "after one renewal").await;

    // Graph of another cloud (the registration's graph_host points at the US Government's Graph,
    // its tokens come from the global cloud): the renewed token is refused too.
    w.env.emulator.set_graph_settings(GraphSettings {
        cloud: GraphCloud::Usgov,
        ..Default::default()
    });
    let before = w.env.emulator.stats();
    let e = c
        .send_message("alice", &msg("wrong cloud"), None, &nc())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("MC-GRAPH-TOKEN-REFUSED"), "{e}");
    assert_eq!(e.kind(), mailconnect_core::ErrorKind::ProviderConfiguration);
    assert!(
        e.message().contains("InvalidAuthenticationToken")
            && e.message().contains("Invalid audience"),
        "{}",
        e.message()
    );
    assert_eq!(e.evidence().http_status, Some(401));
    let after = w.env.emulator.stats();
    assert_eq!(
        after.graph_requests - before.graph_requests,
        2,
        "one renewal, not more"
    );
    assert_eq!(
        after.refresh_requests_total() - before.refresh_requests_total(),
        1
    );
    assert_eq!(
        after.graph_messages_submitted,
        before.graph_messages_submitted
    );
    let d = explained(&e, "MC-GRAPH-TOKEN-REFUSED");
    assert!(
        d["en"]["explanation"]
            .as_str()
            .unwrap()
            .contains("InvalidAuthenticationToken"),
        "{d}"
    );
    // The Test and a fetch say the same.
    let report = c
        .test("alice", &[], Default::default(), &nc())
        .await
        .unwrap();
    let r = serde_json::to_value(&report).unwrap();
    assert_eq!(r["graph"]["ok"], false, "{r}");
    assert_eq!(r["graph"]["error"]["code"], "MC-GRAPH-TOKEN-REFUSED", "{r}");
    assert!(
        r["graph"]["error"]["diagnostic"]["de"]["explanation"]
            .as_str()
            .is_some_and(|t| t.contains("InvalidAuthenticationToken")),
        "{r}"
    );
    let e = c
        .fetch("alice", &FetchRequest::default(), &nc())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("MC-GRAPH-TOKEN-REFUSED"), "{e}");

    // Back in the cloud its tokens belong to, the account works again.
    w.env.emulator.set_graph_settings(GraphSettings::default());
    c.send_message("alice", &msg("right cloud"), None, &nc())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{:?}", e.evidence()));
    arrived(&w, "alice@example.test", "right cloud").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_outages_are_diagnosed_with_bounded_retries_and_sends_are_never_repeated() {
    let w = graph_world(|_| {}).await;
    let c = client(&w, "outage.db");
    connected(&c, graph_desktop(&w), "alice", "alice@example.test")
        .flow("browser")
        .with(serde_json::json!({"transport": "graph"}))
        .await;
    let outage = |o: GraphOutage| {
        w.env.emulator.set_graph_settings(GraphSettings {
            outage: Some(o),
            ..Default::default()
        })
    };
    let stats = || w.env.emulator.stats();
    let msg = |s: &str| {
        spec(serde_json::json!({"to": ["alice@example.test"], "subject": s, "text": "x"}))
    };
    let read = FetchRequest {
        limit: Some(5),
        ..Default::default()
    };

    // Reading while Graph answers 500 UnknownError: diagnosed, and a server error is not repeated.
    outage(GraphOutage::default());
    let before = stats();
    let e = c.fetch("alice", &read, &nc()).await.unwrap_err();
    assert_eq!(e.code(), Some("MC-GRAPH-UNAVAILABLE"), "{e}");
    assert_eq!(e.kind(), mailconnect_core::ErrorKind::ProviderUnavailable);
    assert!(e.message().contains("UnknownError"), "{}", e.message());
    assert_eq!(e.evidence().http_status, Some(500));
    explained(&e, "MC-GRAPH-UNAVAILABLE");
    let after = stats();
    assert_eq!(
        after.graph_requests - before.graph_requests,
        1,
        "not repeated"
    );
    assert_eq!(after.graph_outage_answers - before.graph_outage_answers, 1);

    // The Test while a gateway in front of Graph answers 502 with its HTML page.
    outage(GraphOutage {
        status: 502,
        html: true,
        ..Default::default()
    });
    let before = stats();
    let report = c
        .test("alice", &[], Default::default(), &nc())
        .await
        .unwrap();
    let r = serde_json::to_value(&report).unwrap();
    assert_eq!(r["graph"]["ok"], false, "{r}");
    assert_eq!(r["graph"]["error"]["code"], "MC-GRAPH-UNAVAILABLE", "{r}");
    for lang in ["en", "de"] {
        assert!(
            r["graph"]["error"]["diagnostic"][lang]["explanation"]
                .as_str()
                .is_some_and(|t| !t.is_empty()),
            "{r}"
        );
    }
    assert_eq!(
        stats().graph_outage_answers - before.graph_outage_answers,
        1
    );

    // A 503 that asks to come back (Retry-After) is waited out at most four times, then reported.
    outage(GraphOutage {
        status: 503,
        retry_after_secs: Some(1),
        ..Default::default()
    });
    let before = stats();
    let e = c.fetch("alice", &read, &nc()).await.unwrap_err();
    assert_eq!(e.code(), Some("MC-GRAPH-THROTTLED"), "{e}");
    let after = stats();
    assert_eq!(
        after.graph_outage_answers - before.graph_outage_answers,
        5,
        "the first answer and four waits, no more"
    );
    assert_eq!(after.graph_requests - before.graph_requests, 5);

    // Graph's gateway times out (504) after Exchange sent the message: delivered once, reported
    // as "may have been sent", not sent again.
    outage(GraphOutage {
        status: 504,
        send_mail_only: true,
        after_processing: true,
        ..Default::default()
    });
    let before = stats();
    let e = c
        .send_message("alice", &msg("gateway timeout"), None, &nc())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("MC-GRAPH-SEND-UNCERTAIN"), "{e}");
    assert_eq!(e.evidence().http_status, Some(504));
    assert!(
        e.message().contains("HTTP 504") && e.message().contains("may have accepted"),
        "{}",
        e.message()
    );
    let d = explained(&e, "MC-GRAPH-SEND-UNCERTAIN");
    assert!(
        d["en"]["explanation"]
            .as_str()
            .unwrap()
            .contains("server error"),
        "{d}"
    );
    let after = stats();
    assert_eq!(after.graph_requests - before.graph_requests, 1, "sent once");
    assert_eq!(
        after.graph_messages_submitted - before.graph_messages_submitted,
        1
    );
    arrived(&w, "alice@example.test", "gateway timeout").await;
    assert_eq!(count(&w, "alice@example.test", "gateway timeout"), 1);

    // The same error before Graph did anything: the client cannot tell, so it says the same;
    // nothing was submitted and nothing is repeated.
    outage(GraphOutage {
        status: 500,
        send_mail_only: true,
        ..Default::default()
    });
    let before = stats();
    let e = c
        .send_message("alice", &msg("not handed over"), None, &nc())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("MC-GRAPH-SEND-UNCERTAIN"), "{e}");
    let after = stats();
    assert_eq!(after.graph_requests - before.graph_requests, 1);
    assert_eq!(
        after.graph_messages_submitted,
        before.graph_messages_submitted
    );

    // Over: reading and sending work again.
    w.env.emulator.set_graph_settings(GraphSettings::default());
    c.fetch("alice", &read, &nc()).await.unwrap();
    c.send_message("alice", &msg("after the outage"), None, &nc())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{:?}", e.evidence()));
    arrived(&w, "alice@example.test", "after the outage").await;
}
