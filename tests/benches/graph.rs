//! Microsoft Graph benchmark (issue 16) on the emulator's Graph backed by the real Dovecot and
//! Postfix, with peers measured in the same run against the same servers:
//! - send 1,000 built messages over Graph vs over SMTP (both through `Client::send_message`),
//!   beside Python `requests` posting the same `sendMail` calls and `smtplib` on one session;
//! - fetch 10,000 small messages over Graph (list pages + each message's `$value`) vs over IMAP,
//!   beside Python `requests` making the same HTTP calls and `imaplib`.
//!
//! `bash tests/benches/peers.sh && cargo bench -p mailconnect-tests --bench graph` (root: needs
//! the stack's packages). Prints a table; no time is asserted (a benchmark, not a test).

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use mailconnect_core::compose::MessageSpec;
use mailconnect_core::mail::FetchRequest;
use mailconnect_core::tokens::Resource;
use mailconnect_core::{CancellationToken, Client, Protocol};
use mailconnect_tests::*;
use secrecy::ExposeSecret;

/// Run a Python peer (the benchmark venv's Python); it prints its own elapsed seconds.
fn python(script: &str, env: &[(&str, String)]) -> f64 {
    peers::python_seconds(&peers::python_bin(), script, env)
}

/// `sendMail` with a base64 MIME body, N times on one keep-alive session (as core does).
const REQUESTS_SEND: &str = r#"
import base64, os, time, requests
s = requests.Session()
s.headers["Authorization"] = "Bearer " + os.environ["TOKEN"]
url = os.environ["BASE"] + "me/sendMail"
user, n = os.environ["USER_"], int(os.environ["N"])
t = time.perf_counter()
for i in range(n):
    mime = (f"From: {user}\r\nTo: {user}\r\nSubject: requests {i}\r\nMessage-ID: <requests-{i}@bench>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbench {i}\r\n")
    r = s.post(url, data=base64.b64encode(mime.encode()), headers={"Content-Type": "text/plain"})
    assert r.status_code == 202, (r.status_code, r.text)
print(time.perf_counter() - t)
"#;

const SMTPLIB: &str = r#"
import base64, os, smtplib, ssl, time
ctx = ssl.create_default_context(cafile=os.environ["CA"])
user, tok, n = os.environ["USER_"], os.environ["TOKEN"], int(os.environ["N"])
t = time.perf_counter()
s = smtplib.SMTP("127.0.0.1", int(os.environ["PORT"]))
s.starttls(context=ctx); s.ehlo()
code, _ = s.docmd("AUTH", "XOAUTH2"); assert code == 334, code
code, resp = s.docmd(base64.b64encode(f"user={user}\x01auth=Bearer {tok}\x01\x01".encode()).decode()); assert code == 235, resp
for i in range(n):
    s.sendmail(user, [user], f"From: {user}\r\nTo: {user}\r\nSubject: smtplib {i}\r\n\r\nbench\r\n")
s.quit()
print(time.perf_counter() - t)
"#;

/// The same calls core makes: list pages of 1,000 following `@odata.nextLink`, then `$value`.
const REQUESTS_FETCH: &str = r#"
import os, time, requests
s = requests.Session()
s.headers["Authorization"] = "Bearer " + os.environ["TOKEN"]
base, n = os.environ["BASE"], int(os.environ["N"])
t = time.perf_counter()
url = base + "me/mailFolders/inbox/messages"
params = {"$top": "1000", "$select": "id,receivedDateTime,isRead,subject,internetMessageId",
          "$orderby": "receivedDateTime desc"}
ids = []
while url:
    r = s.get(url, params=params); assert r.status_code == 200, r.text
    page = r.json(); params = None
    ids += [m["id"] for m in page["value"]]
    url = page.get("@odata.nextLink")
total = 0
for i in ids:
    r = s.get(base + "me/messages/" + i + "/$value"); assert r.status_code == 200, r.text
    total += len(r.content)
assert len(ids) == n, len(ids)
print(time.perf_counter() - t)
"#;

const IMAPLIB: &str = r#"
import imaplib, os, ssl, time
ctx = ssl.create_default_context(cafile=os.environ["CA"])
user, tok = os.environ["USER_"], os.environ["TOKEN"]
t = time.perf_counter()
M = imaplib.IMAP4_SSL("127.0.0.1", int(os.environ["PORT"]), ssl_context=ctx)
M.authenticate("XOAUTH2", lambda x: f"user={user}\x01auth=Bearer {tok}\x01\x01".encode())
M.select("INBOX", readonly=True)
typ, data = M.uid("FETCH", "1:*", "(BODY.PEEK[])")
count = sum(1 for d in data if isinstance(d, tuple))
assert count == int(os.environ["N"]), count
print(time.perf_counter() - t)
M.logout()
"#;

fn per_s(n: usize, secs: f64) -> String {
    format!("{:.0} msg/s", n as f64 / secs)
}

fn secs(d: f64) -> String {
    if d < 10.0 {
        format!("{:.0} ms", d * 1000.0)
    } else {
        format!("{d:.1} s")
    }
}

async fn token(c: &Client, id: &str, r: Resource) -> String {
    c.access_token_for(id, r, &CancellationToken::new())
        .await
        .expect("token")
        .token
        .expose_secret()
        .to_string()
}

/// Send `n` built messages from `id` to its own mailbox over `via`; seconds taken.
async fn send_n(c: &Client, id: &str, mailbox: &str, via: &str, n: usize) -> f64 {
    let nc = CancellationToken::new();
    let via = serde_json::from_value(via.into()).expect("transport");
    let t = Instant::now();
    for i in 0..n {
        let spec: MessageSpec = serde_json::from_value(serde_json::json!({
            "to": [mailbox], "subject": format!("mailconnect {i}"), "text": format!("bench {i}")
        }))
        .expect("spec");
        c.send_message(id, &spec, Some(via), &nc)
            .await
            .expect("sent");
    }
    t.elapsed().as_secs_f64()
}

/// Wait until Dovecot holds `n` messages of `marker` for `mailbox` (Postfix delivers after the
/// submission's answer), so the next part starts on a quiet stack.
async fn delivered(w: &GraphWorld, mailbox: &str, marker: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let got = w
            .stack
            .stored_messages(mailbox, None)
            .iter()
            .filter(|m| String::from_utf8_lossy(m).contains(marker))
            .count();
        if got >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{got} of {n} '{marker}' arrived for {mailbox}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let w = graph_world(|_| {}).await;
    let c = open_client_with_ca(&w.env.dir.path().join("graph-bench.db"), w.stack.ca_pem());
    let mut reg = desktop(&w.env.emulator);
    reg["graph_host"] = w.env.emulator.base_url().into();
    let base = format!("{}/v1.0/", w.env.emulator.base_url());
    let ca = w.stack.info["ca_pem"].as_str().expect("ca").to_string();
    let direct = w.stack.servers();
    for (id, mailbox, transport) in [
        ("alice-graph", "alice@example.test", "graph"),
        ("bob-smtp", "bob@example.test", "smtp_imap"),
        ("carol", "carol@example.test", "auto"),
    ] {
        connected(&c, reg.clone(), id, mailbox)
            .flow("browser")
            .with(serde_json::json!({"servers": direct, "transport": transport}))
            .await;
    }
    let mut rows: Vec<(String, String, String)> = Vec::new();

    // 1. Send 1,000 built messages, each to the sender's own inbox.
    const N: usize = 1000;
    let _ = send_n(&c, "alice-graph", "alice@example.test", "graph", 1).await;
    let _ = send_n(&c, "bob-smtp", "bob@example.test", "smtp_imap", 1).await;
    let graph_s = send_n(&c, "alice-graph", "alice@example.test", "graph", N).await;
    let smtp_s = send_n(&c, "bob-smtp", "bob@example.test", "smtp_imap", N).await;
    delivered(&w, "alice@example.test", "mailconnect", N + 1).await;
    delivered(&w, "bob@example.test", "mailconnect", N + 1).await;
    let req_s = python(
        REQUESTS_SEND,
        &[
            ("BASE", base.clone()),
            ("TOKEN", token(&c, "alice-graph", Resource::Graph).await),
            ("USER_", "alice@example.test".into()),
            ("N", N.to_string()),
        ],
    );
    delivered(&w, "alice@example.test", "requests", N).await;
    let smtplib_s = python(
        SMTPLIB,
        &[
            ("CA", ca.clone()),
            ("PORT", w.stack.port("smtp_starttls").to_string()),
            ("USER_", "bob@example.test".into()),
            ("TOKEN", token(&c, "bob-smtp", Resource::Mail).await),
            ("N", N.to_string()),
        ],
    );
    rows.push((
        format!("send {N} built messages (to the own inbox)"),
        format!(
            "Graph {}; SMTP {} (Graph takes {:.2}x SMTP's time)",
            per_s(N, graph_s),
            per_s(N, smtp_s),
            graph_s / smtp_s
        ),
        format!(
            "requests sendMail {}; smtplib one session {}",
            per_s(N, req_s),
            per_s(N, smtplib_s)
        ),
    ));

    // 2. Fetch 10,000 small messages, written into carol's maildir (carol is `auto`: consented
    //    for IMAP and Graph, so one account reads both ways).
    const M: usize = 10_000;
    let maildir = w.stack.dir.path().join("mail/example.test/carol/Maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
    }
    for i in 0..M {
        let mut f = std::fs::File::create(
            maildir
                .join("new")
                .join(format!("1700000000.bench{i}.localhost")),
        )
        .expect("message file");
        write!(f, "From: bench@example.test\r\nTo: carol@example.test\r\nSubject: message {i}\r\nMessage-ID: <{i}@bench>\r\n\r\nSmall body {i}.\r\n").expect("written");
    }
    let st = Command::new("chown")
        .args(["-R", "--reference"])
        .arg(w.stack.dir.path().join("mail/example.test/alice"))
        .arg(w.stack.dir.path().join("mail/example.test/carol"))
        .status()
        .expect("chown");
    assert!(st.success());
    let nc = CancellationToken::new();
    let imap = FetchRequest {
        protocol: Some(Protocol::Imap),
        transport: serde_json::from_value("smtp_imap".into()).ok(),
        ..Default::default()
    };
    // Warm Dovecot's index and cache (sizes, dates, the files themselves) with one untimed
    // read of everything, so no reader pays for the first look at 10,000 new files.
    let warm = c.fetch("carol", &imap, &nc).await.expect("warm");
    assert_eq!(warm.len(), M);
    let t = Instant::now();
    let over_graph = c
        .fetch(
            "carol",
            &FetchRequest {
                transport: serde_json::from_value("graph".into()).ok(),
                ..Default::default()
            },
            &nc,
        )
        .await
        .expect("graph fetch");
    let graph_f = t.elapsed().as_secs_f64();
    assert_eq!(over_graph.len(), M);
    let t = Instant::now();
    let over_imap = c.fetch("carol", &imap, &nc).await.expect("imap fetch");
    let imap_f = t.elapsed().as_secs_f64();
    assert_eq!(over_imap.len(), M);
    let graph_token = token(&c, "carol", Resource::Graph).await;
    let mail_token = token(&c, "carol", Resource::Mail).await;
    let req_f = python(
        REQUESTS_FETCH,
        &[
            ("BASE", base.clone()),
            ("TOKEN", graph_token),
            ("N", M.to_string()),
        ],
    );
    let imaplib_f = python(
        IMAPLIB,
        &[
            ("CA", ca.clone()),
            ("PORT", w.stack.port("imap_tls").to_string()),
            ("USER_", "carol@example.test".into()),
            ("TOKEN", mail_token),
            ("N", M.to_string()),
        ],
    );
    rows.push((
        format!("fetch {M} small messages (with their MIME)"),
        format!(
            "Graph {}; IMAP {} (Graph takes {:.1}x IMAP's time)",
            secs(graph_f),
            secs(imap_f),
            graph_f / imap_f
        ),
        format!(
            "requests (same HTTP calls) {}; imaplib {}",
            secs(req_f),
            secs(imaplib_f)
        ),
    ));

    let stats = w.env.emulator.stats();
    println!(
        "\nemulator: {} Graph requests served\n",
        stats.graph_requests
    );
    println!("| what | mailconnect | peers (same run, same stack) |\n|---|---|---|");
    for (what, a, b) in rows {
        println!("| {what} | {a} | {b} |");
    }
}
