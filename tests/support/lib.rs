//! Shared helpers for the end-to-end tests: a started emulator, a client on a fresh store, and
//! observers that complete the sign-in with the emulator's scripted browser (real HTTP forms).

pub mod cabi;
pub mod conformance;
pub mod faultproxy;
pub mod header;
pub mod oidc;
pub mod peers;
pub mod pg;
pub mod proxies;
pub mod tracelog;
pub mod wine;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use mailconnect_core::oauth::DeviceCodeInfo;
use mailconnect_core::{
    CancellationToken, Client, ClientOptions, ConnectObserver, ConnectOptions, ConnectStage, Status,
};
use mailconnect_sandbox::{
    Consent, Emulator, EmulatorConfig, ScriptedBrowser, SignIn, SignInOutcome,
};

/// Client id of the sandbox's public desktop app.
pub const DESKTOP_APP: &str = "d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90";
/// Client id of the sandbox's confidential service app.
pub const SERVICE_APP: &str = "a1c2e3f4-0b1d-4e2f-8a3b-5c6d7e8f9a0b";
/// Its secret.
pub const SERVICE_SECRET: &str = "sandbox-service-secret";
/// Client id of the app whose `http://localhost` is registered under the Web platform.
pub const WEB_APP: &str = "e5f6a7b8-c9d0-4e1f-a2b3-c4d5e6f7a8b9";
/// Tenant id of Example Corp.
pub const TENANT: &str = "6f1c1f3a-3b8e-4a35-9d2c-7a0e5b1c2d3e";

/// An emulator plus a client on a temporary store.
pub struct Env {
    /// The emulator.
    pub emulator: Emulator,
    /// The client.
    pub client: Client,
    /// Keeps the store directory alive.
    pub dir: tempfile::TempDir,
}

impl Env {
    /// The store file.
    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join("mailconnect.db")
    }
}

/// Start the emulator with the standard sandbox data, changed by `tweak`, and open a client.
pub async fn env_with(tweak: impl FnOnce(&mut EmulatorConfig)) -> Env {
    let mut config = EmulatorConfig::sandbox();
    config.tokens.device_poll_interval_secs = 1;
    tweak(&mut config);
    let emulator = Emulator::start(config).await.expect("emulator starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let client = open_client(&dir.path().join("mailconnect.db"));
    Env {
        emulator,
        client,
        dir,
    }
}

/// Start the standard emulator and open a client.
pub async fn env() -> Env {
    env_with(|_| {}).await
}

/// Open a client on `store` with short HTTP timeouts.
pub fn open_client(store: &std::path::Path) -> Client {
    let mut o = ClientOptions::new(store);
    o.http.timeout = std::time::Duration::from_secs(5);
    o.http.no_proxy = true;
    Client::open(o).expect("client opens")
}

/// Add the desktop-app registration ([`desktop`]) and an account, without connecting it (for tests
/// that look at something before the connect; [`connected`] does both and connects).
pub fn add_account(env: &Env, id: &str, mailbox: &str, flow: &str, extra: serde_json::Value) {
    env.client
        .put_registration_json(&desktop(&env.emulator).to_string())
        .expect("registration");
    let mut acc =
        serde_json::json!({"id": id, "mailbox": mailbox, "registration": "desktop", "flow": flow});
    if let (Some(a), Some(e)) = (acc.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            a.insert(k.clone(), v.clone());
        }
    }
    env.client
        .put_account_json(&acc.to_string())
        .expect("account");
}

/// The sandbox's desktop-app registration (`id` "desktop", tenant `organizations`) at `emulator`,
/// as [`add_account`] puts it.
pub fn desktop(emulator: &Emulator) -> serde_json::Value {
    serde_json::json!({
        "id": "desktop", "provider": "microsoft", "tenant": "organizations",
        "authority_host": emulator.base_url(), "client_id": DESKTOP_APP
    })
}

/// Put `registration` (its JSON; the account uses its `id`) and the account `id` for `mailbox` on
/// `client`, then connect the account with a scripted user: the sequence most tests start with.
///
/// By default the user signs in with a fresh browser as the account's `login` (or its mailbox),
/// accepting consent; the account has no `flow` (the library's default), and the connect is never
/// cancelled. The builder methods change that. Awaiting the returned
/// [`Connect`] connects and panics naming the account when that fails, giving the status and the
/// user (to look at what it saw); [`Connect::attempt`] and [`Connect::refused`] are for connects
/// that may or must fail.
///
/// ```ignore
/// let (status, user) = connected(&env.client, desktop(&env.emulator), "alice", "alice@example.test")
///     .flow("browser")
///     .await;
/// ```
pub fn connected<'a>(
    client: &'a Client,
    registration: serde_json::Value,
    id: &str,
    mailbox: &str,
) -> Connect<'a, ScriptedUser> {
    let account = serde_json::json!({
        "id": id, "mailbox": mailbox,
        "registration": registration["id"].as_str().expect("the registration has an id"),
    });
    Connect {
        client,
        registration,
        account,
        login: None,
        user: Box::new(|login: &str| ScriptedUser::new(sign_in_as(login))),
        cancel: CancellationToken::new(),
    }
}

impl Env {
    /// [`connected`] on this environment's client with the desktop registration at its emulator.
    pub fn connected(&self, id: &str, mailbox: &str) -> Connect<'_, ScriptedUser> {
        connected(&self.client, desktop(&self.emulator), id, mailbox)
    }
}

/// A connect being set up by [`connected`]; `U` is who plays the user.
pub struct Connect<'a, U: ConnectObserver> {
    client: &'a Client,
    registration: serde_json::Value,
    account: serde_json::Value,
    /// Whom the default scripted user signs in as (else the account's login, else its mailbox).
    login: Option<String>,
    /// Who plays the user, made when connecting from the login to sign in as.
    user: Box<dyn FnOnce(&str) -> U + Send + 'a>,
    cancel: CancellationToken,
}

impl<'a, U: ConnectObserver> Connect<'a, U> {
    /// The account's `flow` (`browser`, `device_code`, `client_credentials`).
    pub fn flow(mut self, flow: &str) -> Self {
        self.account["flow"] = flow.into();
        self
    }

    /// More account fields (`servers`, `options`, `login`, ...), replacing those of the same name.
    pub fn with(mut self, fields: serde_json::Value) -> Self {
        if let (Some(a), Some(f)) = (self.account.as_object_mut(), fields.as_object()) {
            for (k, v) in f {
                a.insert(k.clone(), v.clone());
            }
        }
        self
    }

    /// The scripted user signs in as `login` (accepting consent) instead of the account's login.
    pub fn signing_in_as(mut self, login: &str) -> Self {
        self.login = Some(login.to_string());
        self
    }

    /// Another user: a scripted user with its own script or a shared browser, an idle one, or any
    /// other observer (then [`Connect::signing_in_as`] has no effect).
    pub fn user<V: ConnectObserver + 'a>(self, user: V) -> Connect<'a, V> {
        Connect {
            client: self.client,
            registration: self.registration,
            account: self.account,
            login: self.login,
            user: Box::new(move |_: &str| user),
            cancel: self.cancel,
        }
    }

    /// Connect with this cancellation token.
    pub fn cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// The account's id.
    fn id(&self) -> String {
        self.account["id"].as_str().unwrap_or_default().to_string()
    }

    /// Put the registration and the account, then connect: the outcome and the user.
    pub async fn attempt(self) -> (mailconnect_core::Result<Status>, U) {
        let id = self.id();
        self.client
            .put_registration_json(&self.registration.to_string())
            .unwrap_or_else(|e| panic!("registration for '{id}': {e}"));
        self.client
            .put_account_json(&self.account.to_string())
            .unwrap_or_else(|e| panic!("account '{id}': {e}"));
        let login = self.login.unwrap_or_else(|| {
            self.account["login"]
                .as_str()
                .or(self.account["mailbox"].as_str())
                .unwrap_or_default()
                .to_string()
        });
        let user = (self.user)(&login);
        let r = self
            .client
            .connect(&id, ConnectOptions::default(), &user, &self.cancel)
            .await;
        (r, user)
    }

    /// Like [`Connect::attempt`] for a connect that must fail: its error (panics when it connected).
    pub async fn refused(self) -> mailconnect_core::Error {
        let id = self.id();
        match self.attempt().await {
            (Ok(s), _) => panic!(
                "account '{id}' connected ({:?}); expected a refusal",
                s.state
            ),
            (Err(e), _) => e,
        }
    }
}

impl<'a, U> std::future::IntoFuture for Connect<'a, U>
where
    U: ConnectObserver + 'a,
{
    type Output = (Status, U);
    type IntoFuture = std::pin::Pin<Box<dyn std::future::Future<Output = (Status, U)> + Send + 'a>>;

    /// Connect; panics naming the account and the error when it fails.
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let id = self.id();
            match self.attempt().await {
                (Ok(s), u) => (s, u),
                (Err(e), _) => panic!("connecting account '{id}': {e}\n{:?}", e.evidence()),
            }
        })
    }
}

/// The password of a sandbox user (`alice@example.test` -> `alice-password`).
pub fn password(user: &str) -> String {
    format!("{}-password", user.split('@').next().unwrap_or(user))
}

/// A sign-in script for `user` that accepts consent.
pub fn sign_in_as(user: &str) -> SignIn {
    SignIn {
        user: user.to_string(),
        password: password(user),
        mfa_code: Some("123456".into()),
        consent: Consent::Accept,
        deliver_redirect: true,
    }
}

/// An observer that plays the user with the scripted browser: it signs in on the page the library
/// opens, or completes the device code, and records what happened.
pub struct ScriptedUser {
    /// The browser (one cookie jar = one browser profile).
    pub browser: Arc<ScriptedBrowser>,
    /// What the user does.
    pub script: SignIn,
    /// Outcome of the last sign-in.
    pub outcome: Arc<Mutex<Option<Result<SignInOutcome, String>>>>,
    /// Stages seen.
    pub stages: Mutex<Vec<ConnectStage>>,
    /// Device code shown.
    pub device_code: Mutex<Option<DeviceCodeInfo>>,
    /// Do nothing when a URL or code is shown (a user who closed the browser).
    pub idle: bool,
    /// A sign-in page or device code was shown and the browser set off.
    started: std::sync::atomic::AtomicBool,
}

impl ScriptedUser {
    /// A user with a fresh browser.
    pub fn new(script: SignIn) -> ScriptedUser {
        ScriptedUser::with_browser(Arc::new(ScriptedBrowser::new()), script)
    }

    /// A user with the given browser (to share its signed-in session).
    pub fn with_browser(browser: Arc<ScriptedBrowser>, script: SignIn) -> ScriptedUser {
        ScriptedUser {
            browser,
            script,
            outcome: Arc::new(Mutex::new(None)),
            stages: Mutex::new(vec![]),
            device_code: Mutex::new(None),
            idle: false,
            started: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A user who never signs in.
    pub fn idle() -> ScriptedUser {
        let mut u = ScriptedUser::new(sign_in_as("alice@example.test"));
        u.idle = true;
        u
    }

    /// The last sign-in outcome, once the browser has finished with it: the library answers the
    /// browser's last request as it returns, so the browser may still be reading that answer
    /// when a connect has returned. `None` when no sign-in was shown (or the user is idle);
    /// waits at most two minutes otherwise.
    pub async fn outcome(&self) -> Option<Result<SignInOutcome, String>> {
        let shown = self.started.load(std::sync::atomic::Ordering::SeqCst);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            if let Some(o) = self.outcome.lock().unwrap().take() {
                return Some(o);
            }
            if self.idle || !shown || std::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

impl ConnectObserver for ScriptedUser {
    fn open_url(&self, url: &str) -> bool {
        if self.idle {
            return true;
        }
        self.started
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let (browser, script, out, url) = (
            self.browser.clone(),
            self.script.clone(),
            self.outcome.clone(),
            url.to_string(),
        );
        tokio::spawn(async move {
            let r = browser
                .sign_in(&url, &script)
                .await
                .map_err(|e| e.to_string());
            *out.lock().unwrap() = Some(r);
        });
        true
    }

    fn device_code(&self, info: &DeviceCodeInfo) {
        *self.device_code.lock().unwrap() = Some(info.clone());
        if self.idle {
            return;
        }
        self.started
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let (browser, script, out, info) = (
            self.browser.clone(),
            self.script.clone(),
            self.outcome.clone(),
            info.clone(),
        );
        tokio::spawn(async move {
            let r = browser
                .complete_device_code(&info.verification_uri, &info.user_code, &script)
                .await
                .map_err(|e| e.to_string());
            *out.lock().unwrap() = Some(r);
        });
    }

    fn progress(&self, stage: ConnectStage) {
        self.stages.lock().unwrap().push(stage);
    }
}

/// A running Dovecot + Postfix stack (sandbox/stack/mailstack.sh), stopped on drop.
pub struct MailStack {
    /// The stack directory.
    pub dir: tempfile::TempDir,
    /// `stack.json`.
    pub info: serde_json::Value,
}

impl MailStack {
    /// Start a stack validating tokens against `introspect_url`; `deny_pop3` users may not use POP3.
    pub fn up(introspect_url: &str, deny_pop3: &[&str]) -> MailStack {
        MailStack::up_with(introspect_url, deny_pop3, &[])
    }

    /// [`MailStack::up`] with more of mailstack.sh's options (`--crl-url URL`, ...).
    pub fn up_with(introspect_url: &str, deny_pop3: &[&str], options: &[&str]) -> MailStack {
        let dir = tempfile::Builder::new()
            .prefix("mcstack")
            .tempdir()
            .expect("stack dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sandbox/stack/mailstack.sh");
        let mut cmd = std::process::Command::new("bash");
        cmd.arg(&script)
            .arg("up")
            .arg(dir.path())
            .arg("--introspect-url")
            .arg(introspect_url);
        for u in deny_pop3 {
            cmd.arg("--deny-pop3").arg(u);
        }
        cmd.args(options);
        let log = dir.path().join("up.log");
        let f = std::fs::File::create(&log).expect("log file");
        let status = cmd
            .stdout(f.try_clone().expect("log"))
            .stderr(f)
            .status()
            .expect("mailstack.sh runs");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(status.success(), "the mail stack did not start:\n{text}");
        let info: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("stack.json")).expect("stack.json"),
        )
        .expect("stack.json is JSON");
        MailStack { dir, info }
    }

    /// A port from stack.json.
    pub fn port(&self, name: &str) -> u16 {
        self.info[name]
            .as_u64()
            .unwrap_or_else(|| panic!("stack.json has no {name}")) as u16
    }

    /// The throw-away CA certificate (PEM).
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.info["ca_pem"].as_str().expect("ca_pem")).expect("CA file")
    }

    /// The account `servers` object for this stack.
    pub fn servers(&self) -> serde_json::Value {
        serde_json::json!({
            "imap": {"host": "127.0.0.1", "port": self.port("imap_tls"), "security": "tls"},
            "pop3": {"host": "127.0.0.1", "port": self.port("pop3_tls"), "security": "tls"},
            "smtp": {"host": "127.0.0.1", "port": self.port("smtp_starttls"), "security": "starttls"}
        })
    }
}

impl Drop for MailStack {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sandbox/stack/mailstack.sh");
        let _ = std::process::Command::new("bash")
            .arg(script)
            .arg("down")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Open a client that trusts `ca_pem` (the stack's throw-away CA).
pub fn open_client_with_ca(store: &std::path::Path, ca_pem: Vec<u8>) -> Client {
    let mut o = ClientOptions::new(store);
    o.http.timeout = std::time::Duration::from_secs(5);
    o.http.no_proxy = true;
    o.http.tls.extra_ca_pem = vec![ca_pem];
    Client::open(o).expect("client opens")
}

use std::path::Path;

/// The cargo target directory of this build (holds libmailconnect.so and the binaries).
pub fn target_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// The directory holding `libmailconnect.so`: `target/<profile>` when ffi was built directly,
/// `target/<profile>/deps` when cargo built it only as a dependency of the tests.
pub fn cdylib_dir() -> std::path::PathBuf {
    let t = target_dir();
    [t.clone(), t.join("deps")]
        .into_iter()
        .find(|d| d.join("libmailconnect.so").exists())
        .unwrap_or_else(|| {
            panic!(
                "libmailconnect.so not found in {} or its deps/",
                t.display()
            )
        })
}

/// Run a command; fail the test with its output when it fails. Returns stdout and stderr.
pub fn run_ok(cmd: &mut std::process::Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} could not start: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// The arguments every binding scenario program takes:
/// `STORE EMULATOR_URL MAILCONNECT_BIN HOST IMAPS POP3S SMTP CA_FILE`.
pub fn binding_scenario_args(env: &Env, stack: &MailStack, store: &Path) -> Vec<String> {
    vec![
        store.display().to_string(),
        env.emulator.base_url().to_string(),
        target_dir().join("mailconnect").display().to_string(),
        "127.0.0.1".to_string(),
        stack.port("imap_tls").to_string(),
        stack.port("pop3_tls").to_string(),
        stack.port("smtp_starttls").to_string(),
        stack.info["ca_pem"].as_str().expect("ca_pem").to_string(),
    ]
}

/// Make the emulator issue access tokens that live `secs` seconds (refreshes become due after
/// half of that), keeping its other token settings.
pub fn token_lifetime(emulator: &Emulator, secs: u64) {
    emulator.set_token_settings(mailconnect_sandbox::TokenSettings {
        access_token_lifetime_secs: secs,
        ..emulator.config().tokens
    });
}

/// Play alice for a line a C host printed: `DEVICE <user_code> <uri>` (the device-code flow) or
/// `OPEN <url>` / `BROWSER <url>` (the sign-in page, in the host's view or the system browser; the
/// redirect must reach the library's loopback listener). Other lines are left alone.
pub async fn play_sign_in_line(browser: &ScriptedBrowser, line: &str) {
    if let Some(rest) = line.strip_prefix("DEVICE ") {
        let (code, uri) = rest.split_once(' ').expect("DEVICE <code> <uri>");
        browser
            .complete_device_code(uri, code, &sign_in_as("alice@example.test"))
            .await
            .expect("device sign-in");
    } else if let Some(url) = line
        .strip_prefix("OPEN ")
        .or_else(|| line.strip_prefix("BROWSER "))
    {
        let o = browser
            .sign_in(url, &sign_in_as("alice@example.test"))
            .await
            .expect("browser sign-in");
        assert!(
            o.delivered.is_some(),
            "the redirect reached the library's loopback listener"
        );
    }
}

/// Run a host program (a C test host, an installed package's program) to its end, completing
/// each sign-in it prints (`DEVICE <code> <uri>`, `OPEN <url>`) as alice with the scripted
/// browser. Returns its stdout; fails the test when it exits non-zero or a sanitizer reported.
pub async fn run_signing_in(mut cmd: std::process::Command) -> String {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let what = format!("{cmd:?}");
    let mut child = cmd.spawn().expect("program starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let browser = ScriptedBrowser::new();
    let mut out = String::new();
    while let Some(line) = rx.recv().await {
        play_sign_in_line(&browser, &line).await;
        out.push_str(&line);
        out.push('\n');
    }
    let result = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("waiting thread")
        .expect("program ends");
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{what} failed:\n{out}\n{stderr}");
    assert!(
        !stderr.contains("ERROR: AddressSanitizer") && !stderr.contains("runtime error:"),
        "sanitizer findings:\n{stderr}"
    );
    out
}

/// A throw-away CA and a server certificate for `127.0.0.1` and `localhost` signed by it, made with
/// openssl in `dir`: (CA PEM, certificate PEM, PKCS#8 key PEM). With the key usages and key
/// identifiers strict verifiers want (urllib3 2 checks X509_STRICT).
pub fn localhost_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca = proxies::make_ca(dir, "ca", "/CN=mailconnect test CA");
    let cert = proxies::issue_cert(
        dir,
        "ca",
        "server",
        "localhost",
        "IP:127.0.0.1,DNS:localhost",
    );
    (ca, cert, dir.join("server.key"))
}

// ----- Microsoft Graph on the emulator (issue 16): the stack behind `/v1.0` -------------------

impl MailStack {
    /// This stack as the emulator's Graph backend and SMTP front take it (`stack.json`).
    pub fn stack_config(&self) -> mailconnect_sandbox::MailStackConfig {
        mailconnect_sandbox::MailStackConfig::from_stack_json(self.dir.path().join("stack.json"))
            .expect("stack.json names the servers")
    }

    /// Connect `emulator`'s Graph endpoints to this stack and start its SMTP front (the
    /// submission ports that answer `535 5.7.139` for mailboxes with SMTP AUTH switched off).
    pub async fn connect_graph(&self, emulator: &Emulator) -> mailconnect_sandbox::SmtpFront {
        emulator
            .set_mail_stack(self.stack_config())
            .await
            .expect("the emulator takes the mail stack")
            .expect("stack.json names the certificate, so the SMTP front runs")
    }

    /// The messages Dovecot holds for `mailbox` in `folder` (`None`: INBOX; else the folder's
    /// name, e.g. `Sent`), as files, with CRLF line ends as IMAP serves them.
    pub fn stored_messages(&self, mailbox: &str, folder: Option<&str>) -> Vec<Vec<u8>> {
        let (local, domain) = mailbox.split_once('@').expect("an address");
        let mut dir = self
            .dir
            .path()
            .join("mail")
            .join(domain)
            .join(local)
            .join("Maildir");
        if let Some(f) = folder {
            dir = dir.join(format!(".{f}"));
        }
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
                continue;
            };
            for e in entries.flatten() {
                if let Ok(bytes) = std::fs::read(e.path()) {
                    out.push(crlf(&bytes));
                }
            }
        }
        out
    }

    /// Deliver `messages` to `rcpt` straight into Dovecot over LMTP (fast seeding, one session).
    pub async fn lmtp_deliver(&self, rcpt: &str, messages: &[Vec<u8>]) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port("lmtp")))
            .await
            .expect("LMTP answers");
        let mut io = BufReader::new(tcp);
        async fn reply(io: &mut BufReader<tokio::net::TcpStream>) -> String {
            let mut all = String::new();
            loop {
                let mut line = String::new();
                io.read_line(&mut line).await.expect("LMTP reply");
                assert!(!line.is_empty(), "LMTP closed: {all}");
                all.push_str(&line);
                if line.as_bytes().get(3) != Some(&b'-') {
                    return all;
                }
            }
        }
        async fn cmd(io: &mut BufReader<tokio::net::TcpStream>, line: &[u8], want: &str) {
            io.get_mut().write_all(line).await.expect("LMTP write");
            let r = reply(io).await;
            assert!(
                r.starts_with(want),
                "LMTP {:?}: {r}",
                String::from_utf8_lossy(line)
            );
        }
        let greeting = reply(&mut io).await;
        assert!(greeting.starts_with("220"), "{greeting}");
        cmd(&mut io, b"LHLO seed.test\r\n", "250").await;
        for m in messages {
            cmd(&mut io, b"MAIL FROM:<seed@example.test>\r\n", "250").await;
            cmd(&mut io, format!("RCPT TO:<{rcpt}>\r\n").as_bytes(), "250").await;
            cmd(&mut io, b"DATA\r\n", "354").await;
            let mut data = Vec::with_capacity(m.len() + 8);
            for line in crlf(m).split_inclusive(|&b| b == b'\n') {
                if line.first() == Some(&b'.') {
                    data.push(b'.');
                }
                data.extend_from_slice(line);
            }
            if !data.ends_with(b"\r\n") {
                data.extend_from_slice(b"\r\n");
            }
            data.extend_from_slice(b".\r\n");
            cmd(&mut io, &data, "250").await;
        }
        let _ = io.get_mut().write_all(b"QUIT\r\n").await;
    }
}

/// `bytes` with every bare LF made CRLF.
pub fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 40);
    let mut prev = 0u8;
    for &b in bytes {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// An emulator (standard sandbox) and a mail stack validating its tokens, connected for Graph.
pub struct GraphWorld {
    /// The emulator (with a client nobody needs to use).
    pub env: Env,
    /// Dovecot and Postfix.
    pub stack: MailStack,
    /// The SMTP front's ports.
    pub front: mailconnect_sandbox::SmtpFront,
}

/// Change the emulator's user `upn` while it runs (SMTP AUTH switch, REST switch, ...).
pub fn change_user(
    emulator: &Emulator,
    upn: &str,
    change: impl FnOnce(&mut mailconnect_sandbox::UserConfig),
) {
    let mut user = emulator
        .config()
        .users
        .into_iter()
        .find(|u| u.upn == upn)
        .unwrap_or_else(|| panic!("the emulator has no user {upn}"));
    change(&mut user);
    emulator.put_user(user);
}

/// Start a [`GraphWorld`]; `tweak` changes the emulator configuration first.
pub async fn graph_world(tweak: impl FnOnce(&mut EmulatorConfig)) -> GraphWorld {
    let env = env_with(tweak).await;
    let stack = MailStack::up(&env.emulator.introspection_url(), &[]);
    let front = stack.connect_graph(&env.emulator).await;
    GraphWorld { env, stack, front }
}
