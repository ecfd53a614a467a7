//! Microsoft's own client, MSAL for Python (from PyPI; tests/msal/install.sh), against the sandbox
//! emulator over HTTPS: a device-code sign-in and the account MSAL keeps. Entra ID answers MSAL's
//! `client_info=1` with `client_info` (the user's object id and tenant id), from which MSAL builds
//! the home account id `<oid>.<tid>`; an emulator without it would leave MSAL keying accounts by
//! the id_token's `sub`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use mailconnect_sandbox::{Emulator, EmulatorConfig, ScriptedBrowser, TlsConfig};
use mailconnect_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_python_signs_in_and_keys_the_account_by_object_and_tenant_id() {
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("msal/site");
    assert!(
        site.join("msal").exists(),
        "MSAL is not installed: run sh tests/msal/install.sh (tests/run-all.sh does)"
    );
    let dir = tempfile::tempdir().expect("dir");
    let (ca, cert, key) = localhost_certs(dir.path());
    let mut config = EmulatorConfig::sandbox();
    config.tokens.device_poll_interval_secs = 1;
    config.tls = Some(TlsConfig {
        cert_pem_path: cert,
        key_pem_path: key,
    });
    let emulator = Emulator::start(config).await.expect("emulator");
    let mut child = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("msal/home_account.py"))
        .env("PYTHONPATH", &site)
        .env(
            "AUTHORITY",
            format!("{}/organizations", emulator.base_url()),
        )
        .env("CLIENT_ID", DESKTOP_APP)
        .env("CA", &ca)
        // requests lets these override the session's own CA file (requests issue 3829).
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Play the user at the emulator's verification page when MSAL shows the code.
    let browser = ScriptedBrowser::with_root_certificates_pem(&std::fs::read(&ca).expect("CA"))
        .expect("browser");
    let mut result = None;
    let mut lines = Vec::new();
    while let Some(line) = rx.recv().await {
        if let Some(rest) = line.strip_prefix("DEVICE ") {
            let (code, uri) = rest.split_once(' ').expect("DEVICE <code> <uri>");
            browser
                .complete_device_code(uri, code, &sign_in_as("alice@example.test"))
                .await
                .expect("device sign-in");
        } else if let Some(json) = line.strip_prefix("RESULT ") {
            result = Some(serde_json::from_str::<serde_json::Value>(json).expect("RESULT JSON"));
        }
        lines.push(line);
    }
    let out = child.wait_with_output().expect("python3 ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let result = result.unwrap_or_else(|| panic!("no RESULT line: {lines:?}\n{stderr}"));
    assert!(
        out.status.success() && result["has_access_token"] == true,
        "{result}\n{stderr}"
    );
    let claims = &result["id_token_claims"];
    let (oid, tid) = (
        claims["oid"].as_str().expect("oid"),
        claims["tid"].as_str().expect("tid"),
    );
    let accounts = result["accounts"].as_array().expect("accounts");
    assert_eq!(accounts.len(), 1, "{result}");
    assert_eq!(
        accounts[0]["home_account_id"],
        format!("{oid}.{tid}"),
        "MSAL keys the account by client_info's uid.utid: {result}"
    );
    assert_eq!(accounts[0]["username"], "alice@example.test", "{result}");
    assert_eq!(
        result["silent_ok"], true,
        "the cached account gives a token silently: {result}"
    );
}
