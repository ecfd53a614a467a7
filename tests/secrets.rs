//! No secret leaves the library: the whole story (connect by device code and by browser, Test,
//! access token and SASL string, send, fetch over IMAP and POP3, refreshes, failing refreshes,
//! failing connects, app-only tokens with a client secret, disconnect) runs with every log record at
//! TRACE captured: core's `tracing` (and the `log` records of its dependencies) through a subscriber
//! into a buffer, the C ABI's log callback at `MC_LOG_TRACE` in a child process running the same
//! story through the C ABI, and the `mailconnect` command's output (human and `--json`). Then every
//! access token, refresh token, authorization code, device code, PKCE verifier and client secret the
//! emulator issued or was shown is searched for in: the logs, error messages, diagnostics
//! (`mc_error_diagnostic_get` and core's), Test reports, status JSON, the command's stdout and
//! stderr, and the store files (database, WAL and shared memory, key file).
//!
//! The sign-ins are played by `mailconnect sandbox sign-in` in its own process (the user's browser
//! sees codes, that is its job), and the emulator's own log records are left out, so what is
//! searched is exactly what the library (and its HTTP and TLS stacks) wrote.
//!
//! Also: the key file and database are created owner-only, and the loopback redirect listener
//! answers only its path with the right `state`, and only on 127.0.0.1.

use std::ffi::{c_char, c_void, CStr, CString};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::ptr::null_mut;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailconnect_core::check::TestOptions;
use mailconnect_core::mail::FetchRequest;
use mailconnect_core::oauth::DeviceCodeInfo;
use mailconnect_core::{
    CancellationToken, Client, ConnectObserver, ConnectOptions, Error, Flow, Protocol,
};
use mailconnect_sandbox::{Emulator, EmulatorConfig, Endpoint, Fault, FaultRule};
use mailconnect_tests::*;
use secrecy::ExposeSecret;

fn nc() -> CancellationToken {
    CancellationToken::new()
}

// ----- capturing core's tracing at TRACE ---------------------------------------------------------

use mailconnect_tests::tracelog::trace_log;

// ----- the user, played by `mailconnect sandbox sign-in` in its own process ----------------------

fn cli_bin() -> PathBuf {
    let p = target_dir().join("mailconnect");
    assert!(
        p.exists(),
        "{} is missing: cargo build -p mailconnect-cli",
        p.display()
    );
    p
}

fn sign_in_command(user: &str) -> Command {
    let mut c = Command::new(cli_bin());
    c.args(["sandbox", "sign-in", "--user", user, "--password"])
        .arg(password(user))
        .env("MAILCONNECT_LANG", "en")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// Complete a device code as `user` (in the background).
fn sign_in_device(user: &str, code: &str, uri: &str) {
    let mut c = sign_in_command(user);
    c.args(["--device-code", code, "--verification-uri", uri]);
    std::thread::spawn(move || c.status());
}

/// Sign in on an authorize URL as `user` (in the background).
fn sign_in_url(user: &str, url: &str) {
    let mut c = sign_in_command(user);
    c.args(["--url", url]);
    std::thread::spawn(move || c.status());
}

struct CliUser(&'static str);

impl ConnectObserver for CliUser {
    fn open_url(&self, url: &str) -> bool {
        sign_in_url(self.0, url);
        true
    }
    fn device_code(&self, info: &DeviceCodeInfo) {
        sign_in_device(self.0, &info.user_code, &info.verification_uri);
    }
}

// ----- what is searched -------------------------------------------------------------------------

/// Everything a secret must not appear in, by where it came from.
#[derive(Default)]
struct Haystacks(Vec<(String, Vec<u8>)>, Vec<String>);

impl Haystacks {
    fn add(&mut self, place: impl Into<String>, text: impl AsRef<[u8]>) {
        self.0.push((place.into(), text.as_ref().to_vec()));
    }
    fn error(&mut self, place: &str, e: &Error) {
        self.add(format!("{place}: error message"), e.to_string());
        self.add(format!("{place}: error debug"), format!("{e:?}"));
        self.add(
            format!("{place}: diagnostic"),
            e.diagnostic_json().to_string(),
        );
    }
    /// A token the library handed out on purpose (checked to be among the emulator's list, which
    /// proves the search looks for the right strings).
    fn handed_out(&mut self, token: &str) {
        self.1.push(token.to_string());
    }
    fn file(&mut self, path: &Path) {
        if let Ok(b) = std::fs::read(path) {
            self.add(path.display().to_string(), b);
        }
    }
    fn store(&mut self, db: &Path) {
        for suffix in ["", "-wal", "-shm", "-journal", ".key"] {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            self.file(Path::new(&p));
        }
    }
}

/// Fragments of a secret that identify it: the whole value and, for long ones, windows from its
/// random part (a JWT's header is the same for every token, its signature is not).
fn needles(kind: &str, secret: &str) -> Vec<String> {
    let mut out = vec![secret.to_string()];
    if secret.len() >= 64 {
        let tail = &secret[secret.len() - 32..];
        out.push(tail.to_string());
        let mid = secret.len() / 2;
        out.push(secret[mid - 16..mid + 16].to_string());
        if kind != "access_token" {
            out.push(secret[12..44].to_string());
        }
    }
    out
}

fn scan(secrets: &mailconnect_sandbox::IssuedSecrets, users: &[&str], hay: &Haystacks) {
    let mut found = vec![];
    let mut list: Vec<(String, String)> = secrets
        .all()
        .into_iter()
        .map(|(k, s)| (k.to_string(), s.to_string()))
        .collect();
    // The SASL XOAUTH2 strings made from the access tokens are as good as the tokens.
    for t in &secrets.access_tokens {
        for u in users {
            let sasl = mailconnect_core::transport::sasl::xoauth2(
                u,
                &secrecy::SecretString::from(t.clone()),
            );
            list.push(("sasl_xoauth2".into(), sasl.expose_secret().to_string()));
        }
    }
    for (kind, secret) in &list {
        for (which, n) in needles(kind, secret).into_iter().enumerate() {
            for (place, text) in &hay.0 {
                if let Some(i) = text.windows(n.len()).position(|w| w == n.as_bytes()) {
                    let ctx = String::from_utf8_lossy(
                        &text[i.saturating_sub(120)..(i + n.len() + 40).min(text.len())],
                    )
                    .into_owned();
                    found.push(format!(
                        "{kind} ({}…, fragment {which}) in {place}: …{ctx}…",
                        &secret[..secret.len().min(12)]
                    ));
                }
            }
        }
    }
    found.sort();
    found.dedup();
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}

// ----- the story through core ---------------------------------------------------------------------

struct Story {
    emulator: Emulator,
    stack: MailStack,
    dir: tempfile::TempDir,
    client: Client,
    ca: PathBuf,
}

const LIFETIME: u64 = 6;

async fn story() -> Story {
    let mut config = EmulatorConfig::sandbox();
    config.tokens.device_poll_interval_secs = 1;
    config.tokens.access_token_lifetime_secs = LIFETIME;
    let emulator = Emulator::start(config).await.expect("emulator");
    let stack = MailStack::up(&emulator.introspection_url(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, stack.ca_pem()).unwrap();
    let client = open_client_with_ca(&dir.path().join("app.db"), stack.ca_pem());
    let reg = |id: &str, client_id: &str, tenant: &str| {
        serde_json::json!({"id": id, "provider": "microsoft", "tenant": tenant,
            "authority_host": emulator.base_url(), "client_id": client_id})
    };
    client
        .put_registration_json(&reg("desktop", DESKTOP_APP, "organizations").to_string())
        .unwrap();
    let mut svc = reg("svc", SERVICE_APP, TENANT);
    svc["client_secret"] = SERVICE_SECRET.into();
    client.put_registration_json(&svc.to_string()).unwrap();
    let servers = stack.servers();
    for (id, mailbox, reg, flow) in [
        ("alice", "alice@example.test", "desktop", "device_code"),
        ("bob", "bob@example.test", "desktop", "browser"),
        ("svc", "sales@example.test", "svc", "client_credentials"),
    ] {
        let a = serde_json::json!({"id": id, "mailbox": mailbox, "registration": reg, "flow": flow,
            "servers": servers, "options": {"refresh_margin_secs": 1}});
        client.put_account_json(&a.to_string()).unwrap();
    }
    Story {
        emulator,
        stack,
        dir,
        client,
        ca,
    }
}

fn fault_for(user: Option<&str>, grant: &str, fault: Fault) -> FaultRule {
    FaultRule {
        fault,
        app: None,
        user: user.map(str::to_string),
        endpoint: Some(Endpoint::Token),
        grant_type: Some(grant.into()),
        times: Some(1),
    }
}

async fn expire() {
    tokio::time::sleep(Duration::from_secs(LIFETIME + 1)).await;
}

fn message(tag: &str) -> Vec<u8> {
    format!("From: alice@example.test\r\nTo: alice@example.test\r\nSubject: {tag}\r\nMessage-ID: <{tag}@secrets.test>\r\n\r\nHello.\r\n").into_bytes()
}

async fn fetch_until(client: &Client, protocol: Protocol, tag: &str) -> usize {
    let req = FetchRequest {
        protocol: Some(protocol),
        ..Default::default()
    };
    for _ in 0..60 {
        let msgs = client.fetch("alice", &req, &nc()).await.expect("fetch");
        if msgs
            .iter()
            .any(|m| String::from_utf8_lossy(&m.data).contains(tag))
        {
            return msgs.len();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{tag} did not arrive over {protocol:?}");
}

async fn run_core_story(s: &Story, hay: &mut Haystacks) {
    let c = &s.client;
    let connect = |id: &'static str, user: &'static str| async move {
        c.connect(id, ConnectOptions::default(), &CliUser(user), &nc())
            .await
    };
    let st = connect("alice", "alice@example.test")
        .await
        .expect("device code");
    hay.add("status after connect", serde_json::to_string(&st).unwrap());
    connect("bob", "bob@example.test").await.expect("browser");
    connect("svc", "").await.expect("client credentials");

    let report = c
        .test("alice", &[], TestOptions::default(), &nc())
        .await
        .unwrap();
    assert!(report.ok, "{}", serde_json::to_string(&report).unwrap());
    hay.add(
        "Test report (alice)",
        serde_json::to_string(&report).unwrap(),
    );
    let report = c
        .test("svc", &[], TestOptions::default(), &nc())
        .await
        .unwrap();
    hay.add("Test report (svc)", serde_json::to_string(&report).unwrap());

    // The host's own mail code asks for a token and the SASL string (those are the outputs).
    let t = c.access_token("alice", &nc()).await.unwrap();
    hay.handed_out(t.token.expose_secret());
    c.sasl_xoauth2("alice", &nc()).await.unwrap();
    let t = c.access_token("svc", &nc()).await.unwrap();
    hay.handed_out(t.token.expose_secret());

    let accepted = c
        .send("alice", &message("secrets-1"), None, &nc())
        .await
        .expect("send");
    hay.add("send reply", accepted);
    fetch_until(c, Protocol::Imap, "secrets-1").await;
    fetch_until(c, Protocol::Pop3, "secrets-1").await;
    let folders = c.list_folders("alice", &nc()).await.unwrap();
    hay.add("folders", format!("{folders:?}"));

    // Refreshes (successful, and failing in every way), after the tokens expired.
    expire().await;
    c.access_token("alice", &nc()).await.expect("refresh");
    c.send("alice", &message("secrets-2"), None, &nc())
        .await
        .expect("send after refresh");
    for (fault, what) in [
        (Fault::TruncatedJson, "truncated refresh"),
        (Fault::DropMidBody, "refresh cut mid-body"),
        (Fault::ProxyBadGateway, "refresh through a proxy's 502"),
    ] {
        expire().await;
        let mut r = fault_for(Some("alice@example.test"), "refresh_token", fault);
        r.times = None;
        s.emulator.add_fault(r);
        let e = c.access_token("alice", &nc()).await.unwrap_err();
        hay.error(what, &e);
        s.emulator.clear_faults();
        hay.add(
            format!("status after {what}"),
            serde_json::to_string(&c.status("alice").unwrap()).unwrap(),
        );
    }
    expire().await;
    let mut revoked = fault_for(
        Some("bob@example.test"),
        "refresh_token",
        Fault::RefreshTokenRevoked,
    );
    revoked.times = None;
    s.emulator.add_fault(revoked);
    let e = c.access_token("bob", &nc()).await.unwrap_err();
    hay.error("revoked refresh", &e);
    hay.add(
        "status needing re-authorization",
        serde_json::to_string(&c.status("bob").unwrap()).unwrap(),
    );
    let report = c
        .test("bob", &[], TestOptions::default(), &nc())
        .await
        .unwrap();
    assert!(!report.ok);
    hay.add(
        "failed Test report (bob)",
        serde_json::to_string(&report).unwrap(),
    );
    let e = c.sasl_xoauth2("bob", &nc()).await.unwrap_err();
    hay.error("SASL for an account needing re-authorization", &e);

    // Failing connects: a spent code, a lost device-code answer, a bad client secret.
    s.emulator
        .add_fault(fault_for(None, "authorization_code", Fault::CodeRedeemed));
    let e = connect("bob", "bob@example.test").await.unwrap_err();
    hay.error("code already redeemed", &e);
    s.emulator
        .add_fault(fault_for(None, "device_code", Fault::TruncatedJson));
    let e = connect("alice", "alice@example.test").await.unwrap_err();
    hay.error("lost device-code answer", &e);
    s.emulator.add_fault(fault_for(
        None,
        "client_credentials",
        Fault::InvalidClientSecret,
    ));
    expire().await;
    let e = c.access_token("svc", &nc()).await.unwrap_err();
    hay.error("bad client secret", &e);
    connect("alice", "alice@example.test")
        .await
        .expect("device code again");
}

// ----- the command ---------------------------------------------------------------------------------

fn cli(s: &Story) -> Command {
    let mut c = Command::new(cli_bin());
    c.env("MAILCONNECT_STORE", s.dir.path().join("app.db"))
        .env("MAILCONNECT_CA_FILE", &s.ca)
        .env("MAILCONNECT_LANG", "en");
    c
}

fn run_cli(s: &Story, hay: &mut Haystacks, args: &[&str], stdout_is_secret: bool) {
    let out = cli(s).args(args).output().expect("mailconnect runs");
    let label = format!("mailconnect {}", args.join(" "));
    if !stdout_is_secret {
        hay.add(format!("{label}: stdout"), &out.stdout);
    } else if !args.contains(&"--sasl") && !args.contains(&"--json") {
        hay.handed_out(String::from_utf8_lossy(&out.stdout).trim());
    }
    hay.add(format!("{label}: stderr"), &out.stderr);
}

async fn run_cli_story(s: &Story, hay: &mut Haystacks) {
    for json in [false, true] {
        let j: &[&str] = if json { &["--json"] } else { &[] };
        let with = |a: &[&'static str]| [a, j].concat();
        run_cli(s, hay, &with(&["status"]), false);
        run_cli(s, hay, &with(&["account", "list"]), false);
        run_cli(s, hay, &with(&["account", "show", "alice"]), false);
        run_cli(s, hay, &with(&["registration", "list"]), false);
        run_cli(s, hay, &with(&["test", "alice"]), false);
        run_cli(s, hay, &with(&["test", "bob"]), false);
        run_cli(s, hay, &with(&["folders", "alice"]), false);
        run_cli(s, hay, &with(&["fetch", "alice"]), false);
        run_cli(s, hay, &with(&["fetch", "alice", "--pop3"]), false);
        run_cli(s, hay, &with(&["token", "bob"]), false);
        run_cli(s, hay, &with(&["token", "nobody"]), false);
        run_cli(
            s,
            hay,
            &with(&[
                "send",
                "alice",
                "--to",
                "alice@example.test",
                "--subject",
                "cli",
                "--body",
                "x",
            ]),
            false,
        );
        // `token` prints the token on stdout because it was asked to; its stderr is still searched.
        run_cli(s, hay, &with(&["token", "alice"]), true);
        run_cli(s, hay, &with(&["token", "alice", "--sasl"]), true);
    }
    // connect by device code through the command: what it prints is read like a person would.
    let mut child = cli(s)
        .args(["connect", "bob", "--flow", "device"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let out = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut reader = std::io::BufReader::new(stdout);
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        let uri = first
            .split_whitespace()
            .find(|w| w.starts_with("http"))
            .unwrap_or_default()
            .to_string();
        let code = first
            .split("enter the code ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_default()
            .to_string();
        sign_in_device("bob@example.test", &code, &uri);
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut err).unwrap();
        }
        (child.wait().unwrap(), format!("{first}{rest}"), err)
    })
    .await
    .unwrap();
    assert!(out.0.success(), "{}\n{}", out.1, out.2);
    hay.add("mailconnect connect bob --flow device: stdout", out.1);
    hay.add("mailconnect connect bob --flow device: stderr", out.2);
    run_cli(s, hay, &["disconnect", "bob"], false);
    run_cli(s, hay, &["disconnect", "bob", "--json"], false);
}

// ----- the story through the C ABI, in a child process with the log callback at TRACE -------------

const CHILD: &str = "MC_SECRETS_FFI_CHILD";

/// Run the C ABI story in a child process (the test binary itself, this one test), so the C ABI's
/// log forwarder can be the process's subscriber there.
fn run_ffi_child(s: &Story, out_dir: &Path) {
    let exe = std::env::current_exe().unwrap();
    let status = Command::new(exe)
        .args(["--exact", "ffi_story_child", "--ignored", "--nocapture"])
        .env(CHILD, out_dir)
        .env("MC_EMULATOR", s.emulator.base_url())
        .env("MC_CA", &s.ca)
        .env("MC_SERVERS", s.stack.servers().to_string())
        .status()
        .expect("child runs");
    assert!(
        status.success(),
        "the C ABI story failed (see its output above)"
    );
}

static FFI_LOG: Mutex<Option<std::fs::File>> = Mutex::new(None);

unsafe extern "C" fn log_cb(_: *mut c_void, level: i32, target: *const c_char, msg: *const c_char) {
    let (t, m) = unsafe { (CStr::from_ptr(target), CStr::from_ptr(msg)) };
    if let Some(f) = FFI_LOG.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        let _ = writeln!(f, "{level} {} {}", t.to_string_lossy(), m.to_string_lossy());
    }
}

unsafe extern "C" fn on_device(
    _: *mut c_void,
    code: *const c_char,
    uri: *const c_char,
    _: *const c_char,
) {
    let (code, uri) = unsafe { (CStr::from_ptr(code), CStr::from_ptr(uri)) };
    sign_in_device(
        "alice@example.test",
        &code.to_string_lossy(),
        &uri.to_string_lossy(),
    );
}

unsafe extern "C" fn on_url(user: *mut c_void, url: *const c_char) -> i32 {
    let who = unsafe { CStr::from_ptr(user as *const c_char) };
    let url = unsafe { CStr::from_ptr(url) };
    sign_in_url(&who.to_string_lossy(), &url.to_string_lossy());
    1
}

#[test]
#[ignore = "run by whole_story_at_trace_level_reveals_no_secret in a child process"]
fn ffi_story_child() {
    use mailconnect::*;
    let Some(out_dir) = std::env::var_os(CHILD).map(PathBuf::from) else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap();
    *FFI_LOG.lock().unwrap() = Some(std::fs::File::create(out_dir.join("ffi.log")).unwrap());
    let mut outputs = std::fs::File::create(out_dir.join("ffi-outputs.txt")).unwrap();
    let mut record = |what: &str, text: &str| {
        writeln!(outputs, "== {what}\n{text}").unwrap();
    };
    let cstr = |s: &str| CString::new(s).unwrap();
    let take = |p: *mut c_char| {
        let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
        unsafe { mc_string_free(p) };
        s
    };
    let last = || unsafe {
        format!(
            "{} {}\n{}",
            mc_error_code_get(),
            CStr::from_ptr(mc_error_message_get()).to_string_lossy(),
            CStr::from_ptr(mc_error_diagnostic_get()).to_string_lossy()
        )
    };
    unsafe {
        assert_eq!(
            mc_log_callback_set(Some(log_cb), null_mut(), MC_LOG_TRACE),
            MC_OK
        );
        let opts = serde_json::json!({"store": out_dir.join("ffi.db"), "extra_ca_file": var("MC_CA"), "log_level": "trace", "no_proxy": true});
        let mut c = null_mut();
        assert_eq!(
            mc_client_open(cstr(&opts.to_string()).as_ptr(), &mut c),
            MC_OK,
            "{}",
            last()
        );
        let reg = serde_json::json!({"id":"desktop","provider":"microsoft","tenant":"organizations","authority_host":var("MC_EMULATOR"),"client_id":DESKTOP_APP});
        assert_eq!(
            mc_registration_put(c, cstr(&reg.to_string()).as_ptr()),
            MC_OK,
            "{}",
            last()
        );
        let servers: serde_json::Value = serde_json::from_str(&var("MC_SERVERS")).unwrap();
        for (id, mailbox, flow) in [
            ("alice", "alice@example.test", "device_code"),
            ("bob", "bob@example.test", "browser"),
        ] {
            let a = serde_json::json!({"id": id, "mailbox": mailbox, "registration": "desktop", "flow": flow,
                "servers": servers, "options": {"refresh_margin_secs": 1}});
            assert_eq!(
                mc_account_put(c, cstr(&a.to_string()).as_ptr()),
                MC_OK,
                "{}",
                last()
            );
        }
        let bob = cstr("bob@example.test");
        let cbs = mc_connect_callbacks {
            version: MC_CONNECT_CALLBACKS_VERSION,
            user_data: bob.as_ptr() as *mut c_void,
            on_open_url: Some(on_url),
            on_device_code: Some(on_device),
            on_progress: None,
        };
        for id in ["alice", "bob"] {
            assert_eq!(
                mc_account_connect(c, cstr(id).as_ptr(), &cbs, null_mut()),
                MC_OK,
                "{id}: {}",
                last()
            );
        }
        let alice = cstr("alice");
        let mut out = null_mut();
        assert_eq!(
            mc_account_test(c, alice.as_ptr(), 0, null_mut(), &mut out),
            MC_OK,
            "{}",
            last()
        );
        record("mc_account_test alice", &take(out));
        assert_eq!(
            mc_token_get(c, alice.as_ptr(), std::ptr::null_mut(), &mut out),
            MC_OK
        );
        drop(take(out));
        assert_eq!(
            mc_sasl_xoauth2_get(c, alice.as_ptr(), std::ptr::null_mut(), &mut out),
            MC_OK
        );
        drop(take(out));
        let msg = b"From: alice@example.test\r\nTo: alice@example.test\r\nSubject: ffi-secrets\r\n\r\nHi.\r\n";
        assert_eq!(
            mc_mail_send(c, alice.as_ptr(), msg.as_ptr(), msg.len(), null_mut()),
            MC_OK,
            "{}",
            last()
        );
        for q in [
            r#"{"protocol":"imap","headers_only":true}"#,
            r#"{"protocol":"pop3","headers_only":true}"#,
        ] {
            assert_eq!(
                mc_mail_fetch(c, alice.as_ptr(), cstr(q).as_ptr(), null_mut(), &mut out),
                MC_OK,
                "{}",
                last()
            );
            drop(take(out));
        }
        assert_eq!(mc_account_status_get(c, alice.as_ptr(), &mut out), MC_OK);
        record("mc_account_status_get alice", &take(out));
        // Failing calls: an unknown account; bob's refresh token is revoked (the parent set the fault).
        assert_ne!(
            mc_token_get(c, cstr("nobody").as_ptr(), std::ptr::null_mut(), &mut out),
            MC_OK
        );
        record("unknown account", &last());
        std::thread::sleep(Duration::from_secs(LIFETIME + 1));
        let bid = cstr("bob");
        assert_ne!(
            mc_token_get(c, bid.as_ptr(), std::ptr::null_mut(), &mut out),
            MC_OK
        );
        record("revoked refresh token", &last());
        assert_ne!(
            mc_sasl_xoauth2_get(c, bid.as_ptr(), std::ptr::null_mut(), &mut out),
            MC_OK
        );
        record("SASL after revocation", &last());
        assert_eq!(
            mc_account_test(c, bid.as_ptr(), 0, null_mut(), &mut out),
            MC_OK,
            "{}",
            last()
        );
        record("mc_account_test bob", &take(out));
        assert_eq!(mc_account_status_get(c, bid.as_ptr(), &mut out), MC_OK);
        record("mc_account_status_get bob", &take(out));
        for id in ["alice", "bob"] {
            assert_eq!(
                mc_account_disconnect(c, cstr(id).as_ptr(), std::ptr::null_mut()),
                MC_OK,
                "{}",
                last()
            );
        }
        mc_client_free(c);
        assert_eq!(mc_log_callback_set(None, null_mut(), MC_LOG_OFF), MC_OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_story_at_trace_level_reveals_no_secret() {
    let log = trace_log();
    let s = story().await;
    let mut hay = Haystacks::default();
    run_core_story(&s, &mut hay).await;
    run_cli_story(&s, &mut hay).await;

    // The C ABI, with bob's refresh token still revoked.
    let mut revoked = FaultRule::always(Fault::RefreshTokenRevoked);
    revoked.user = Some("bob@example.test".into());
    revoked.grant_type = Some("refresh_token".into());
    s.emulator.add_fault(revoked);
    let ffi_dir = s.dir.path().join("ffi");
    std::fs::create_dir_all(&ffi_dir).unwrap();
    let child_dir = ffi_dir.clone();
    let sref = &s;
    tokio::task::block_in_place(|| run_ffi_child(sref, &child_dir));
    let ffi_log = std::fs::read_to_string(ffi_dir.join("ffi.log")).unwrap();
    assert!(
        ffi_log.lines().any(|l| l.contains("mailconnect_core")),
        "the C ABI log callback received core's records:\n{ffi_log}"
    );
    assert!(
        ffi_log.lines().any(|l| l.starts_with("5 ")),
        "the C ABI log callback received TRACE records"
    );
    hay.file(&ffi_dir.join("ffi.log"));
    hay.file(&ffi_dir.join("ffi-outputs.txt"));
    hay.store(&ffi_dir.join("ffi.db"));

    for id in ["alice", "svc"] {
        s.client
            .disconnect(id, &CancellationToken::new())
            .await
            .unwrap();
    }
    hay.store(&s.dir.path().join("app.db"));
    let text = log.text();
    assert!(
        text.contains("TRACE") && text.contains("DEBUG") && text.contains("mailconnect_core"),
        "core's records at every level were captured"
    );
    hay.add("core tracing at TRACE", text);

    let secrets = s.emulator.issued_secrets();
    // The search has something to find: the story made every kind of secret.
    assert!(
        secrets.access_tokens.len() >= 10,
        "{}",
        secrets.access_tokens.len()
    );
    assert!(secrets.refresh_tokens.len() >= 6);
    assert!(
        secrets.authorization_codes.len() >= 3,
        "core, C ABI, failed redemption"
    );
    assert!(secrets.device_codes.len() >= 4);
    assert!(secrets.code_verifiers.len() >= 3);
    assert!(secrets.client_secrets.iter().any(|c| c == SERVICE_SECRET));
    assert!(hay.1.len() >= 3);
    for t in &hay.1 {
        assert!(
            secrets.access_tokens.contains(t),
            "a token the library handed out is not in the emulator's list: the search would miss it"
        );
    }
    println!(
        "searched {} access tokens, {} refresh tokens, {} authorization codes, {} device codes, {} PKCE verifiers and {} client secrets in {} places ({} bytes)",
        secrets.access_tokens.len(),
        secrets.refresh_tokens.len(),
        secrets.authorization_codes.len(),
        secrets.device_codes.len(),
        secrets.code_verifiers.len(),
        secrets.client_secrets.len(),
        hay.0.len(),
        hay.0.iter().map(|(_, b)| b.len()).sum::<usize>()
    );
    scan(
        &secrets,
        &[
            "alice@example.test",
            "bob@example.test",
            "sales@example.test",
        ],
        &hay,
    );
}

// ----- files and the loopback listener ------------------------------------------------------------

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_file_and_the_database_are_created_owner_only() {
    let _ = trace_log();
    let env = env().await;
    env.connected("alice", "alice@example.test")
        .flow("device_code")
        .user(CliUser("alice@example.test"))
        .await;
    let db = env.store_path();
    let mut key = db.as_os_str().to_owned();
    key.push(".key");
    assert_eq!(mode(&db), 0o600, "database");
    assert_eq!(mode(Path::new(&key)), 0o600, "key file");
    for suffix in ["-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let p = PathBuf::from(p);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
    // A key file elsewhere, named in the options (as the README shows).
    let dir = tempfile::tempdir().unwrap();
    let opts = serde_json::json!({"store": dir.path().join("x.db"), "key": {"file": dir.path().join("k")}});
    let o = mailconnect_core::ClientOptions::from_json(&opts.to_string()).unwrap();
    Client::open(o).unwrap();
    assert_eq!(mode(&dir.path().join("k")), 0o600);
    assert_eq!(mode(&dir.path().join("x.db")), 0o600);
}

/// The machine's address on its default route, if it has one (no packet is sent).
fn non_loopback_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("10.254.254.254:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

fn http_get(port: u16, target: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut s, &mut out).unwrap();
    out
}

struct UrlCatcher(Mutex<Option<String>>);
impl ConnectObserver for UrlCatcher {
    fn open_url(&self, url: &str) -> bool {
        *self.0.lock().unwrap() = Some(url.to_string());
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loopback_listener_answers_only_its_path_and_state_and_only_on_127_0_0_1() {
    let _ = trace_log();
    let env = env().await;
    add_account(
        &env,
        "bob",
        "bob@example.test",
        "browser",
        serde_json::json!({}),
    );
    let catcher = Arc::new(UrlCatcher(Mutex::new(None)));
    let (client, c2) = (env.client.clone(), catcher.clone());
    struct Fwd(Arc<UrlCatcher>);
    impl ConnectObserver for Fwd {
        fn open_url(&self, url: &str) -> bool {
            self.0.open_url(url)
        }
    }
    let task = tokio::spawn(async move {
        client
            .connect(
                "bob",
                ConnectOptions {
                    flow: Some(Flow::Browser),
                },
                &Fwd(c2),
                &nc(),
            )
            .await
    });
    let started = Instant::now();
    let url = loop {
        if let Some(u) = catcher.0.lock().unwrap().clone() {
            break u;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no sign-in URL"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let u = url::Url::parse(&url).unwrap();
    let q = |k: &str| {
        u.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let redirect = url::Url::parse(&q("redirect_uri")).unwrap();
    let state = q("state");
    let port = redirect.port().unwrap();
    let path = redirect.path().to_string();

    let probes = tokio::task::spawn_blocking(move || {
        let mut answers = vec![];
        for target in [
            "/favicon.ico".to_string(),
            format!("/elsewhere?code=x&state={state}"),
            format!("{path}?code=x&state=not-the-state"),
            format!("{path}?code=x"),
            format!("{path}?state={state}"),
        ] {
            let a = http_get(port, &target);
            answers.push((target, a.lines().next().unwrap_or_default().to_string()));
        }
        // Bound to 127.0.0.1 only: another loopback address and the machine's own address fail.
        let other_loopback = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 2], port)),
            Duration::from_secs(2),
        );
        let outside = non_loopback_address().map(|ip| {
            TcpStream::connect_timeout(&SocketAddr::new(ip, port), Duration::from_secs(2))
        });
        (
            answers,
            other_loopback.is_err(),
            outside.map(|r| r.is_err()),
        )
    })
    .await
    .unwrap();
    let (answers, refused_other_loopback, refused_outside) = probes;
    for (target, status) in &answers {
        assert!(
            status.starts_with("HTTP/1.1 404") || status.starts_with("HTTP/1.1 400"),
            "{target}: {status}"
        );
    }
    assert!(refused_other_loopback, "listening beyond 127.0.0.1");
    assert_ne!(refused_outside, Some(false), "reachable from the network");
    assert!(
        !task.is_finished(),
        "a wrong request must not end the sign-in"
    );

    // The real sign-in still completes it.
    sign_in_url("bob@example.test", &url);
    let st = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("connect finishes")
        .unwrap()
        .expect("connect succeeds");
    assert_eq!(st.state, mailconnect_core::AccountState::Connected);
}
