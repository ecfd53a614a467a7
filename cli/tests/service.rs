//! `mailconnect service --once` against the sandbox: a round refreshes a due account and prints
//! the event; after the refresh token is revoked the round reports the re-authorization with its
//! diagnostic and exits non-zero. `mailconnect service` (continuous) stops cleanly on SIGINT.

use std::process::Command;
use std::time::Duration;

use mailconnect_core::{CancellationToken, ConnectOptions};
use mailconnect_tests::*;

fn cli(store: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mailconnect"));
    c.env("MAILCONNECT_STORE", store)
        .env("MAILCONNECT_LANG", "en");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_round_refreshes_and_reports_reauthorization() {
    let env = env().await;
    token_lifetime(&env.emulator, 8);
    add_account(
        &env,
        "alice",
        "alice@example.test",
        "device_code",
        serde_json::json!({}),
    );
    let user = ScriptedUser::new(sign_in_as("alice@example.test"));
    env.client
        .connect(
            "alice",
            ConnectOptions::default(),
            &user,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let store = env.store_path();

    // Not due with --ahead 60 (600 s left): nothing to do.
    let out = cli(&store)
        .args([
            "service", "--once", "--ahead", "1", "--jitter", "0", "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"fresh\":1") && text.contains("\"refreshed\":0"),
        "{text}"
    );

    // Half the lifetime later, due with --ahead 4: refreshed, with the event.
    tokio::time::sleep(Duration::from_millis(4300)).await;
    let out = cli(&store)
        .args([
            "service", "--once", "--ahead", "4", "--jitter", "0", "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"type\":\"token_refreshed\"") && text.contains("\"refreshed\":1"),
        "{text}"
    );
    assert_eq!(env.emulator.stats().refreshes_total(), 1);
    assert!(!text.contains("eyJ"), "no token in the output");

    // Revoked: the round reports it in words and fails.
    env.emulator
        .revoke_user_refresh_tokens("alice@example.test");
    tokio::time::sleep(Duration::from_millis(4300)).await;
    let out = cli(&store)
        .args(["service", "--once", "--ahead", "4", "--jitter", "0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("alice: NEEDS RE-AUTHORIZATION:"), "{text}");
    assert!(text.contains("1 need re-authorization"), "{text}");
    let attempts = env.emulator.stats().refresh_requests_total();
    let out = cli(&store)
        .args(["service", "--once", "--ahead", "4", "--lang", "de"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // Already marked: counted, not refreshed again.
    assert!(text.contains("Runde: 1 accounts"), "{text}");
    assert_eq!(
        env.emulator.stats().refresh_requests_total(),
        attempts,
        "not refreshed again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_continuous_service_stops_on_sigint() {
    let env = env().await;
    add_account(
        &env,
        "alice",
        "alice@example.test",
        "device_code",
        serde_json::json!({}),
    );
    let store = env.store_path();
    let child = cli(&store)
        .args(["service", "--interval", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("service running"));
}
