//! core's Graph transport against the emulator's Graph on the real stack: `auto` falls back from
//! SMTP to Graph when the SMTP front answers 5.7.139, a large message goes as draft + upload
//! sessions, and fetching over Graph sees what arrived. (Needs root, like graph_emulator.rs.)

use std::time::{Duration, Instant};

use mailconnect_core::mail::FetchRequest;
use mailconnect_core::CancellationToken;
use mailconnect_tests::*;

fn nc() -> CancellationToken {
    CancellationToken::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_sends_over_graph_when_smtp_auth_is_off() {
    let w = graph_world(|_| {}).await;
    let client = open_client_with_ca(&w.env.dir.path().join("core.db"), w.stack.ca_pem());
    let mut reg = desktop(&w.env.emulator);
    reg["graph_host"] = w.env.emulator.base_url().into();
    let mut servers = w.stack.servers();
    servers["smtp"]["port"] = w.front.smtp_starttls.into();
    connected(&client, reg, "alice", "alice@example.test")
        .flow("browser")
        .with(serde_json::json!({"servers": servers, "transport": "auto"}))
        .await;
    let mut alice = w
        .env
        .emulator
        .config()
        .users
        .into_iter()
        .find(|u| u.upn == "alice@example.test")
        .unwrap();
    alice.smtp_client_authentication_disabled = Some(true);
    w.env.emulator.put_user(alice);

    let small = b"From: alice@example.test\r\nTo: alice@example.test\r\nSubject: core over graph 1\r\nMessage-ID: <core-graph-1@example.test>\r\n\r\nHello.\r\n".to_vec();
    let reply = client.send("alice", &small, None, &nc()).await;
    let reply = reply.unwrap_or_else(|e| panic!("{e}\n{:?}", e.evidence()));
    println!("reply: {reply}");
    let mut big = b"From: alice@example.test\r\nTo: alice@example.test\r\nSubject: core over graph 2\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nbig one\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    let data: Vec<u8> = (0..6_000_000u32).map(|i| (i % 253) as u8).collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
    for chunk in b64.as_bytes().chunks(76) {
        big.extend_from_slice(chunk);
        big.extend_from_slice(b"\r\n");
    }
    big.extend_from_slice(b"--b--\r\n");
    client
        .send("alice", &big, None, &nc())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{:?}", e.evidence()));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let msgs = client
            .fetch("alice", &FetchRequest::default(), &nc())
            .await
            .unwrap_or_else(|e| panic!("{e}\n{:?}", e.evidence()));
        let seen: Vec<String> = msgs
            .iter()
            .map(|m| String::from_utf8_lossy(&m.data).into_owned())
            .collect();
        if seen.iter().any(|m| m.contains("core over graph 1"))
            && seen.iter().any(|m| m.contains("core over graph 2"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "not arrived");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(w.env.emulator.stats().graph_messages_submitted >= 2);
}
