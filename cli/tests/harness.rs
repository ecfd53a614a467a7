//! The vendor harness loads the built cdylib by path (as a host's LoadLibrary/dlopen would) and runs
//! a scenario against the sandbox; a scenario whose expectation is wrong makes it fail.

use std::path::PathBuf;
use std::process::Command;

use mailconnect_sandbox::{Emulator, EmulatorConfig};

fn cdylib() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_mailconnect"));
    let dir = exe.parent().unwrap().to_path_buf();
    for d in [dir.clone(), dir.join("deps")] {
        let p = d.join("libmailconnect.so");
        if p.exists() {
            return p;
        }
    }
    panic!("libmailconnect.so not found near {}", exe.display());
}

fn run(emulator: &str, scenario: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mailconnect"))
        .args(["harness", scenario, "--lib"])
        .arg(cdylib())
        .args(["--var", &format!("EMULATOR={emulator}")])
        .output()
        .expect("harness runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_runs_the_sandbox_scenario_through_the_loaded_library() {
    let mut config = EmulatorConfig::sandbox();
    config.tokens.device_poll_interval_secs = 1;
    let emulator = Emulator::start(config).await.unwrap();
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/sandbox-connect.json"
    );
    let url = emulator.base_url().to_string();
    let (ok, out) = tokio::task::spawn_blocking(move || run(&url, scenario))
        .await
        .unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("ABI 2"), "{out}");
    assert!(
        out.contains("mc_account_connect") && out.contains("PASS"),
        "{out}"
    );
    assert!(out.contains(" 0 failed"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_expectation_fails_the_run() {
    let emulator = Emulator::start(EmulatorConfig::sandbox()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"client":{"store":"${TMP}/x.db"},"registration":{"id":"r","provider":"microsoft","authority_host":"${EMULATOR}","client_id":"c"},
           "account":{"id":"a","mailbox":"a@example.test","registration":"r"},
           "steps":[{"do":"access_token","expect":"MC_OK"}]}"#,
    )
    .unwrap();
    let url = emulator.base_url().to_string();
    let path = bad.display().to_string();
    let (ok, out) = tokio::task::spawn_blocking(move || run(&url, &path))
        .await
        .unwrap();
    assert!(!ok, "{out}");
    assert!(out.contains("MC_E_STATE") && out.contains("FAIL"), "{out}");
}
