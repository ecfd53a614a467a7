//! `mailconnect sandbox up|status|down`: the emulator and real Dovecot/Postfix come up in the
//! background, answer on the printed ports, the printed import file works, `status` sees them,
//! `down` stops every process; and a clear message when the mail servers cannot start.

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

fn sandbox(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mailconnect"))
        .arg("sandbox")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env("MAILCONNECT_LANG", "en")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn port_open(port: &Value) -> bool {
    let port = port.as_u64().unwrap() as u16;
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn up_status_down_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sb");

    let (ok, out, err) = sandbox(&dir, &["status"]);
    assert!(!ok && err.contains("not running"), "{out}{err}");

    let (ok, out, err) = sandbox(&dir, &["up", "--json"]);
    assert!(ok, "{out}\n{err}");
    let state: Value = serde_json::from_str(&out).unwrap();
    let emulator = state["emulator"]["base_url"].as_str().unwrap().to_string();
    let pid = state["emulator"]["pid"].as_u64().unwrap();
    let mail = &state["mail"];
    for p in [
        "imap_tls",
        "imap_starttls",
        "pop3_tls",
        "pop3_starttls",
        "smtp_starttls",
        "smtp_tls",
    ] {
        assert!(port_open(&mail[p]), "{p} answers: {state}");
    }
    assert!(Path::new(mail["ca_file"].as_str().unwrap()).exists());
    assert_eq!(
        state["registrations"][0]["client_id"],
        "d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90"
    );
    let users: Vec<&str> = state["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user"].as_str().unwrap())
        .collect();
    for u in [
        "alice@example.test",
        "bob@example.test",
        "carol@example.test",
        "admin@example.test",
        "sales@example.test",
    ] {
        assert!(users.contains(&u), "{users:?}");
    }
    assert_eq!(state["running"], true);

    // The emulator is a background process that answers its discovery document.
    let disco = format!("{emulator}/organizations/v2.0/.well-known/openid-configuration");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let page = rt
        .block_on(mailconnect_sandbox::ScriptedBrowser::new().fetch(&disco, None))
        .unwrap();
    assert_eq!(page.status, 200, "{}", page.body);

    // A second `up` finds it running and changes nothing.
    let (ok, out2, err) = sandbox(&dir, &["up", "--json"]);
    assert!(ok, "{err}");
    assert!(err.contains("already running"), "{err}");
    let again: Value = serde_json::from_str(&out2).unwrap();
    assert_eq!(again["emulator"]["pid"], pid);

    // status: the same information for people, everything running.
    let (ok, out, err) = sandbox(&dir, &["status"]);
    assert!(ok, "{out}\n{err}");
    for needle in [
        emulator.as_str(),
        "alice-password",
        "MFA code 123456",
        "shared mailbox",
        "MC_SANDBOX_SERVICE_SECRET=",
        "CA certificate to trust",
        "STARTTLS (like 587)",
        "running",
    ] {
        assert!(out.contains(needle), "'{needle}' in:\n{out}");
    }
    assert!(!out.contains("NOT RUNNING"), "{out}");

    // The printed import file works with the printed registration command.
    let store = tmp.path().join("try.db");
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mailconnect"))
            .env("MAILCONNECT_STORE", &store)
            .args(args)
            .output()
            .unwrap()
    };
    let o = cli(&[
        "registration",
        "add",
        "--id",
        "sandbox",
        "--tenant",
        "organizations",
        "--client-id",
        "d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90",
        "--authority-host",
        &emulator,
    ]);
    assert!(o.status.success());
    let o = cli(&[
        "account",
        "import",
        state["accounts_csv"].as_str().unwrap(),
        "--registration",
        "sandbox",
        "--json",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(o.status.success(), "{v}");
    assert_eq!(v["summary"]["created"], 4, "{v}");

    // A vendor's harness run against the running sandbox takes its URLs and ports from it.
    let exe = Path::new(env!("CARGO_BIN_EXE_mailconnect"));
    let lib = [
        exe.with_file_name("libmailconnect.so"),
        exe.parent().unwrap().join("deps/libmailconnect.so"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .expect("libmailconnect.so is built");
    let o = Command::new(exe)
        .args([
            "harness",
            concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/sandbox-demo.json"),
            "--from-sandbox",
            "--lib",
        ])
        .arg(&lib)
        .env("MAILCONNECT_SANDBOX_DIR", &dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        text.contains(&format!("POST {emulator}/_sandbox/users/")),
        "{text}"
    );
    assert!(text.contains(" 0 failed"), "{text}");

    // down stops everything.
    let (ok, out, err) = sandbox(&dir, &["down"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("sandbox stopped"), "{out}");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "the emulator process is gone (or a zombie waiting for init): {stat}"
    );
    for p in ["imap_tls", "pop3_tls", "smtp_starttls"] {
        assert!(!port_open(&mail[p]), "{p} closed");
    }
    let (ok, _, err) = sandbox(&dir, &["status"]);
    assert!(!ok && err.contains("not running"), "{err}");
    let (ok, out, _) = sandbox(&dir, &["down"]);
    assert!(ok && out.contains("was not running"), "{out}");
}

#[test]
fn emulator_only_needs_no_mail_servers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("emu");
    let (ok, out, err) = sandbox(&dir, &["up", "--emulator-only"]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains("Mail servers: not started (--emulator-only)"),
        "{out}"
    );
    assert!(out.contains("mailconnect account add --id alice"), "{out}");
    let (ok, out, err) = sandbox(&dir, &["status", "--json"]);
    assert!(ok, "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["emulator"]["running"], true);
    assert!(v["mail"].is_null());
    let (ok, _, _) = sandbox(&dir, &["down"]);
    assert!(ok);
    let (ok, _, _) = sandbox(&dir, &["status"]);
    assert!(!ok);
}

/// Not root: the mail servers cannot start, and the message says why and what to run.
#[test]
fn not_root_gets_a_clear_message() {
    if !is_root() {
        // The same check applies to the user running the tests.
        let tmp = tempfile::tempdir().unwrap();
        let (ok, _, err) = sandbox(&tmp.path().join("x"), &["up"]);
        assert!(!ok && err.contains("need root"), "{err}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nobody");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_mailconnect"))
        .args(["sandbox", "--dir"])
        .arg(&dir)
        .arg("up")
        .env("HOME", &dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("need root") && err.contains("sudo mailconnect sandbox up"),
        "{err}"
    );
    assert!(err.contains("--emulator-only"), "{err}");
    assert!(!dir.join("state.json").exists(), "nothing was started");
}
