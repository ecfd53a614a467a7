//! Four processes with 16 threads each ask for the token of one account at expiry: the emulator
//! must see exactly one refresh, and every caller gets the same new token.
//!
//! The child processes are this test binary run again with `MC_CHILD_STORE` set (see `child`).

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mailconnect_core::CancellationToken;
use mailconnect_tests::*;
use secrecy::ExposeSecret;

const THREADS: usize = 16;
const PROCESSES: usize = 4;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// In a child: wait until `MC_CHILD_START_MS`, then 16 threads ask for the token at once.
/// Prints one line `TOKEN-DIGEST <hex>` when all threads got the same token.
#[test]
#[ignore = "run by single_refresh_across_processes_and_threads as a child process"]
fn child() {
    let Ok(store) = std::env::var("MC_CHILD_STORE") else {
        return;
    };
    let start: u64 = std::env::var("MC_CHILD_START_MS").unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let client = open_client(std::path::Path::new(&store));
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (client, barrier, handle) = (client.clone(), barrier.clone(), rt.handle().clone());
            std::thread::spawn(move || {
                barrier.wait();
                while unix_ms() < start {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let t = handle
                    .block_on(client.access_token("alice", &CancellationToken::new()))
                    .expect("token");
                ring::digest::digest(&ring::digest::SHA256, t.token.expose_secret().as_bytes())
                    .as_ref()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            })
        })
        .collect();
    let digests: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(
        digests.iter().all(|d| d == &digests[0]),
        "threads got different tokens"
    );
    println!("TOKEN-DIGEST {}", digests[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_refresh_across_processes_and_threads() {
    let env = env_with(|c| c.tokens.access_token_lifetime_secs = 6).await;
    let (status, _) = env
        .connected("alice", "alice@example.test")
        .flow("device_code")
        .with(serde_json::json!({"options": {"refresh_margin_secs": 1}}))
        .await;
    env.emulator.reset_stats();

    // Start both children at the moment the token enters the refresh margin.
    let start = unix_ms() + (status.expires_in_secs.unwrap() as u64 - 1) * 1000 + 300;
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "child",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("MC_CHILD_STORE", env.store_path())
                .env("MC_CHILD_START_MS", start.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut digests = Vec::new();
    for c in children {
        let out = tokio::task::spawn_blocking(move || c.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // libtest may print "test child ... " on the same line before ours.
        let d = stdout
            .lines()
            .find_map(|l| l.split("TOKEN-DIGEST ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .expect("digest line")
            .to_string();
        digests.push(d);
    }
    assert_eq!(digests.len(), PROCESSES);
    assert!(
        digests.iter().all(|d| d == &digests[0]),
        "every process got the same refreshed token: {digests:?}"
    );
    assert_eq!(
        env.emulator.stats().refreshes_total(),
        1,
        "exactly one refresh for {PROCESSES} processes x {THREADS} threads"
    );
}
