//! The admin subcommands against the sandbox: registration with a secret from the environment,
//! account, connect by device code (read off the command's output, completed by the scripted
//! browser), status, token, disconnect, and an error paragraph in German.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use mailconnect_sandbox::{Consent, Emulator, EmulatorConfig, ScriptedBrowser, SignIn};

fn cli(store: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mailconnect"));
    c.env("MAILCONNECT_STORE", store)
        .env("MAILCONNECT_LANG", "en");
    c
}

fn ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{c:?}\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Run `cmd`, which prints a device code message as its first line; sign in with `script` as a
/// person would; its exit status and the rest of its standard output.
async fn with_device_sign_in(
    cmd: &mut Command,
    script: &SignIn,
) -> (std::process::ExitStatus, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (message, mut reader) = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stdout);
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        (first, reader)
    })
    .await
    .unwrap();
    let uri = message
        .split_whitespace()
        .find(|w| w.starts_with("http"))
        .unwrap_or_else(|| panic!("no device code message: {message}"))
        .to_string();
    let code = message
        .split("enter the code ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    ScriptedBrowser::new()
        .complete_device_code(&uri, &code, script)
        .await
        .unwrap();
    tokio::task::spawn_blocking(move || {
        let mut tail = String::new();
        std::io::Read::read_to_string(&mut reader, &mut tail).unwrap();
        (child.wait().unwrap(), tail)
    })
    .await
    .unwrap()
}

/// `mailconnect admin register` creates the registration through the emulator's Graph with one
/// administrator sign-in (device code) and stores it; `admin check` reads it back (in German).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_register_and_check_from_the_command_line() {
    let mut config = EmulatorConfig::sandbox();
    config.tokens.device_poll_interval_secs = 1;
    let emulator = Emulator::start(config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("cli.db");
    let url = emulator.base_url().to_string();
    ok(cli(&store).args([
        "registration",
        "add",
        "--id",
        "setup",
        "--tenant",
        "organizations",
        "--client-id",
        mailconnect_sandbox::SETUP_APP_ID,
        "--authority-host",
        &url,
        "--graph-host",
        &url,
    ]));
    let admin = SignIn {
        user: "admin@example.test".into(),
        password: "admin-password".into(),
        mfa_code: Some("123456".into()),
        consent: Consent::Accept,
        deliver_redirect: true,
    };
    let (st, out) = with_device_sign_in(
        cli(&store).args([
            "admin",
            "register",
            "contoso",
            "--setup-registration",
            "setup",
            "--flow",
            "device",
            "--name",
            "Contoso mail",
        ]),
        &admin,
    )
    .await;
    assert!(st.success(), "{out}");
    assert!(out.contains("registered: contoso"), "{out}");
    assert!(
        out.contains("Created the app registration 'Contoso mail'")
            && out.contains("Read back: everything as needed."),
        "{out}"
    );
    let regs = ok(cli(&store).args(["registration", "list", "--json"]));
    assert!(
        regs.contains("\"id\":\"contoso\"")
            && regs.contains(mailconnect_sandbox::EXAMPLE_TENANT_ID),
        "{regs}"
    );
    let (st, out) = with_device_sign_in(
        cli(&store)
            .args([
                "--lang",
                "de",
                "admin",
                "check",
                "contoso",
                "--setup-registration",
                "setup",
                "--flow",
                "device",
            ])
            .env("MAILCONNECT_LANG", "de"),
        &admin,
    )
    .await;
    assert!(st.success() && out.contains("alles wie benötigt"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_account_connect_status_token_disconnect() {
    let mut config = EmulatorConfig::sandbox();
    config.tokens.device_poll_interval_secs = 1;
    let emulator = Emulator::start(config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("cli.db");
    let url = emulator.base_url().to_string();

    ok(cli(&store).args([
        "registration",
        "add",
        "--id",
        "desktop",
        "--tenant",
        "organizations",
        "--client-id",
        "d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90",
        "--authority-host",
        &url,
    ]));
    ok(cli(&store)
        .args([
            "registration",
            "add",
            "--id",
            "svc",
            "--client-id",
            "a1c2e3f4-0b1d-4e2f-8a3b-5c6d7e8f9a0b",
            "--secret-env",
            "SVC_SECRET",
        ])
        .env("SVC_SECRET", "sandbox-service-secret"));
    let regs = ok(cli(&store).args(["registration", "list", "--json"]));
    assert!(
        regs.contains("\"has_client_secret\":true") && !regs.contains("sandbox-service-secret"),
        "{regs}"
    );

    ok(cli(&store).args([
        "account",
        "add",
        "--id",
        "alice",
        "--mailbox",
        "alice@example.test",
        "--registration",
        "desktop",
        "--flow",
        "device_code",
    ]));
    let status = ok(cli(&store).args(["status", "alice", "--json"]));
    assert!(status.contains("\"state\":\"not_connected\""), "{status}");

    // connect: read the device code message the command prints, sign in like a person would.
    let script = SignIn {
        user: "alice@example.test".into(),
        password: "alice-password".into(),
        mfa_code: None,
        consent: Consent::Accept,
        deliver_redirect: true,
    };
    let (st, tail) = with_device_sign_in(
        cli(&store).args(["connect", "alice", "--flow", "device"]),
        &script,
    )
    .await;
    assert!(
        st.success() && tail.contains("connected as alice@example.test"),
        "{tail}"
    );

    let status = ok(cli(&store).args(["status", "--json"]));
    assert!(status.contains("\"state\":\"connected\""), "{status}");
    let table = ok(cli(&store).args(["account", "list"]));
    assert!(
        table.contains("alice@example.test") && table.contains("connected"),
        "{table}"
    );
    let sasl = ok(cli(&store).args(["token", "alice", "--sasl"]));
    assert!(
        sasl.starts_with("dXNlcj1hbGljZUBleGFtcGxlLnRlc3QB"),
        "{sasl}"
    );
    ok(cli(&store).args(["disconnect", "alice"]));
    assert!(ok(cli(&store).args(["status", "alice", "--json"])).contains("not_connected"));

    // An error is one paragraph with the catalog's explanation, here in German.
    let out = cli(&store)
        .args(["--lang", "de", "token", "nobody"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[MC-INVALID-SETTING]") && err.contains("Eine Einstellung ist ungültig"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

/// `mailconnect proxy set|show|clear`: the password from the environment, sealed in the store
/// (not in the file, not in any output), shown as `has_password`; the stored proxy is what the
/// next command uses (a connect through a proxy that is not listening says so); `--no-proxy`
/// wins over it; `clear` goes back to the environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_set_show_clear() {
    let emulator = Emulator::start(EmulatorConfig::sandbox()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("proxy.db");
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    const PW: &str = "Cli-pr0xy-pw-73d1";
    let set = ok(cli(&store)
        .args([
            "proxy",
            "set",
            &format!("http://127.0.0.1:{dead}"),
            "--username",
            "svc",
            "--password-env",
            "MC_PROXY_PW",
        ])
        .env("MC_PROXY_PW", PW));
    assert!(
        set.contains(&format!(
            "http://127.0.0.1:{dead}, user svc, with a password"
        )),
        "{set}"
    );
    let show = ok(cli(&store).args(["proxy", "show", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert_eq!(v["source"], "stored", "{show}");
    assert_eq!(v["stored"]["has_password"], true, "{show}");
    assert!(!show.contains(PW), "{show}");
    let mut raw = std::fs::read(&store).unwrap();
    raw.extend(std::fs::read(dir.path().join("proxy.db-wal")).unwrap_or_default());
    assert!(
        !raw.windows(PW.len()).any(|w| w == PW.as_bytes()),
        "the password in the store file"
    );

    // The next command goes through the stored proxy, which is not there.
    ok(cli(&store).args([
        "registration",
        "add",
        "--id",
        "desktop",
        "--tenant",
        "organizations",
        "--client-id",
        "d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90",
        "--authority-host",
        emulator.base_url(),
    ]));
    ok(cli(&store).args([
        "account",
        "add",
        "--id",
        "alice",
        "--mailbox",
        "alice@example.test",
        "--registration",
        "desktop",
        "--flow",
        "device_code",
    ]));
    let out = cli(&store)
        .args(["connect", "alice", "--flow", "device"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("MC-PROXY-UNREACHABLE"), "{text}");
    assert!(!text.contains(PW), "{text}");
    let show = ok(cli(&store).args(["proxy", "show", "--no-proxy"]));
    assert!(show.contains("none (--no-proxy)"), "{show}");

    ok(cli(&store).args(["proxy", "clear"]));
    let show = ok(cli(&store).args(["proxy", "show", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert!(v["stored"].is_null(), "{show}");
    assert_ne!(v["source"], "stored", "{show}");
    let bad = cli(&store)
        .args(["proxy", "set", "ftp://x:21"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("not supported"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
