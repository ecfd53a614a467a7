//! `mailconnect send`, `folders` and `fetch` against real Dovecot and Postfix (sandbox/stack)
//! validating tokens at the emulator: tables for people, JSON for scripts, an .eml sent as it is,
//! messages saved to files, and no progress noise when output is not a terminal.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mailconnect_core::{CancellationToken, ConnectOptions};
use mailconnect_tests::*;
use serde_json::Value;

fn cli(store: &Path, ca: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mailconnect"));
    c.env("MAILCONNECT_STORE", store)
        .env("MAILCONNECT_CA_FILE", ca)
        .env("MAILCONNECT_LANG", "en");
    c
}

fn run(c: &mut Command) -> (bool, String, String) {
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Fetch (JSON) until a message contains `needle`; the messages of the last try.
fn fetch_until(store: &Path, ca: &Path, extra: &[&str], needle: &str) -> Vec<Value> {
    let mut last = vec![];
    for _ in 0..50 {
        let (ok, out, err) = run(cli(store, ca)
            .args(["fetch", "alice", "--json"])
            .args(extra));
        assert!(ok, "{out}\n{err}");
        assert!(
            err.is_empty(),
            "no progress noise without a terminal: {err}"
        );
        last = serde_json::from_str::<Vec<Value>>(&out).unwrap();
        if last
            .iter()
            .any(|m| m["subject"].as_str().unwrap_or_default().contains(needle))
        {
            return last;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("no message with '{needle}' arrived: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_folders_and_fetch_over_imap_and_pop3() {
    let env = env().await;
    let stack = MailStack::up(&env.emulator.introspection_url(), &[]);
    let ca = env.dir.path().join("ca.pem");
    std::fs::write(&ca, stack.ca_pem()).unwrap();
    let store = env.dir.path().join("cli-mail.db");

    // Connect with the core client on the store the command then uses.
    {
        let client = open_client_with_ca(&store, stack.ca_pem());
        let reg = serde_json::json!({"id":"desktop","provider":"microsoft","tenant":"organizations",
            "authority_host": env.emulator.base_url(), "client_id": DESKTOP_APP});
        client.put_registration_json(&reg.to_string()).unwrap();
        let acc = serde_json::json!({"id":"alice","mailbox":"alice@example.test","registration":"desktop",
            "flow":"browser","servers": stack.servers()});
        client.put_account_json(&acc.to_string()).unwrap();
        let user = ScriptedUser::new(sign_in_as("alice@example.test"));
        client
            .connect(
                "alice",
                ConnectOptions::default(),
                &user,
                &CancellationToken::new(),
            )
            .await
            .expect("connect");
    }
    let (store2, ca2) = (store.clone(), ca.clone());
    tokio::task::spawn_blocking(move || story(&store2, &ca2))
        .await
        .unwrap();
}

fn story(store: &Path, ca: &Path) {
    // send: built from the options, UTF-8 subject and body.
    let (ok, out, err) = run(cli(store, ca).args([
        "send",
        "alice",
        "--to",
        "alice@example.test",
        "--subject",
        "Grüße vom CLI-Test",
        "--body",
        "Hallo Welt, ä ö ü",
        "--json",
    ]));
    assert!(ok, "{out}\n{err}");
    let sent: Value = serde_json::from_str(&out).unwrap();
    assert!(
        sent["accepted"].as_str().unwrap().starts_with("250"),
        "{sent}"
    );
    assert_eq!(sent["from"], "alice@example.test");
    assert!(sent["message_id"].as_str().unwrap().contains('@'), "{sent}");

    // fetch over IMAP: JSON with decoded subject and the raw message.
    let msgs = fetch_until(store, ca, &[], "Grüße vom CLI-Test");
    let m = msgs
        .iter()
        .find(|m| m["subject"] == "Grüße vom CLI-Test")
        .unwrap();
    assert_eq!(m["from"], "alice@example.test");
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(m["raw"].as_str().unwrap())
        .unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.contains("Message-ID:"), "{raw}");
    assert!(raw.contains(sent["message_id"].as_str().unwrap()), "{raw}");

    // send an .eml as it is; the recipients come from its header.
    let dir = store.parent().unwrap();
    let eml = dir.join("note.eml");
    std::fs::write(
        &eml,
        "From: alice@example.test\r\nTo: alice@example.test\r\nSubject: eml-file-42\r\nMessage-ID: <eml-42@example.test>\r\n\r\nAs it is.\r\n",
    )
    .unwrap();
    let (ok, out, err) = run(cli(store, ca).args(["send", "alice", "--file"]).arg(&eml));
    assert!(ok, "{out}\n{err}");
    assert!(out.starts_with("sent (") && out.contains("250"), "{out}");

    // fetch over POP3 (left on the server), and saved as files.
    let saved = dir.join("saved");
    let msgs = fetch_until(
        store,
        ca,
        &["--pop3", "--save", saved.to_str().unwrap()],
        "eml-file-42",
    );
    assert!(msgs.len() >= 2, "{msgs:?}");
    let files: Vec<_> = std::fs::read_dir(&saved).unwrap().collect();
    assert_eq!(files.len(), msgs.len());
    let any_eml = files.iter().any(|f| {
        std::fs::read_to_string(f.as_ref().unwrap().path())
            .unwrap_or_default()
            .contains("<eml-42@example.test>")
    });
    assert!(any_eml, "the .eml files hold the messages");

    // The table for people, with --limit.
    let (ok, out, err) = run(cli(store, ca).args(["fetch", "alice", "--limit", "1"]));
    assert!(ok, "{err}");
    assert!(
        out.contains("subject") && out.contains("eml-file-42"),
        "{out}"
    );
    assert!(
        !out.contains("Grüße vom CLI-Test"),
        "limit 1: the newest only\n{out}"
    );
    assert!(out.contains("1 message(s) over IMAP"), "{out}");
    let (ok, out, _) =
        run(cli(store, ca).args(["fetch", "alice", "--since", "2000-01-01", "--pop3"]));
    assert!(ok);
    assert!(out.contains("2 message(s) over POP3"), "{out}");

    // folders: table and JSON with special use.
    let (ok, out, err) = run(cli(store, ca).args(["folders", "alice"]));
    assert!(ok, "{err}");
    assert!(
        out.contains("INBOX") && out.contains("special use"),
        "{out}"
    );
    let (ok, out, _) = run(cli(store, ca).args(["folders", "alice", "--json"]));
    assert!(ok);
    let folders: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert!(
        folders
            .iter()
            .any(|f| f["name"] == "Sent" && f["special_use"] == "sent"),
        "{out}"
    );

    // Errors: one paragraph from the catalog, no panic; a bad date names the option.
    let (ok, _, err) = run(cli(store, ca).args(["fetch", "alice", "--since", "yesterday"]));
    assert!(!ok);
    assert!(err.contains("'since' must be a date"), "{err}");
    let (ok, _, err) = run(cli(store, ca).args([
        "send",
        "alice",
        "--to",
        "not an address",
        "--subject",
        "x",
        "--body",
        "y",
    ]));
    assert!(!ok);
    assert!(
        err.contains("'to'") && err.contains("'not an address'"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // Without the stack's CA the server certificate is not trusted: a TLS diagnostic.
    let mut c = Command::new(env!("CARGO_BIN_EXE_mailconnect"));
    c.env("MAILCONNECT_STORE", store)
        .env_remove("MAILCONNECT_CA_FILE")
        .args(["--lang", "en", "folders", "alice"]);
    let (ok, _, err) = run(&mut c);
    assert!(!ok);
    assert!(err.contains("[MC-TLS"), "{err}");
}
