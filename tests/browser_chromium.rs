//! The sign-in as a user sees it: headless Chromium (Debian's `chromium` and `chromium-driver`)
//! goes through the emulator's sign-in and consent pages and ends on the library's loopback page.
//!
//! * The library opens the browser through its normal launch path: no `open_url` callback, so
//!   `platform::open_browser` runs, which outside Windows is the `webbrowser` crate, which honours
//!   `$BROWSER` first. `$BROWSER` is a shell script the test writes (the "configured browser
//!   command" standing in for the system browser); it hands the URL to the test through a file,
//!   and the test navigates its WebDriver session there.
//! * WebDriver is spoken over plain HTTP with the `reqwest` and `serde_json` the tests crate
//!   already has (a dozen W3C endpoints, about 150 lines): no WebDriver crate (fantoccini,
//!   thirtyfour) and its dependency tree to vet, lock, build and list in docs/dependencies.md.
//! * Chromium runs with `--host-resolver-rules` mapping `login.microsoftonline.com` to nothing,
//!   so the embedded-view case stops at the `nativeclient` redirect without reaching the internet,
//!   like a host's web view that catches the navigation.
//!
//! Skipped (with a message) when Chromium or chromedriver is missing (`/usr/bin/chromium` and
//! `/usr/bin/chromedriver`, or the paths in `MAILCONNECT_CHROMIUM` and `MAILCONNECT_CHROMEDRIVER`)
//! and `MAILCONNECT_REQUIRE_BROWSER` is not set; `tests/run-all.sh` installs them and sets it, so CI
//! never skips. With `MAILCONNECT_WRITE_SCREENSHOTS=1` the pages are saved to `docs/img/`
//! (the admin guides show them); otherwise they are only checked.
//!
//! What the loopback page's URL carries: the library answers the redirect with its page directly
//! (no redirect to a clean URL), so the address bar keeps `?code=…&state=…`. The tests assert that
//! it is there, that it is nowhere in the page itself, that it is spent (redeemed again: AADSTS54005)
//! and, where the library never redeemed it (the timeout), that it buys nothing without the PKCE
//! verifier only the library had (AADSTS501481).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::ptr::null_mut;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use mailconnect::*;
use mailconnect_core::diagnose::diagnose;
use mailconnect_core::{
    AccountState, CancellationToken, Client, ClientOptions, ConnectOptions, DefaultObserver,
    ErrorKind, Language,
};
use mailconnect_sandbox::EmulatorConfig;
use mailconnect_tests::cabi::*;
use mailconnect_tests::*;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

/// How long any one thing may take before the test gives up (a busy 2-core machine).
const DEADLINE: Duration = Duration::from_secs(60);
const NATIVECLIENT: &str = "https://login.microsoftonline.com/common/oauth2/nativeclient";
const WIDTH: u32 = 900;
/// 800 rather than 700: the emulator's consent page is 713 px high, and its buttons belong in the picture.
const HEIGHT: u32 = 800;

/// One browser test at a time: `$BROWSER` is one per process, and one Chromium at a time is
/// what a 2-core machine carries well.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where the `$BROWSER` helper drops the URL the library asked to open.
struct Launcher {
    url_file: PathBuf,
}

static LAUNCHER: OnceLock<Launcher> = OnceLock::new();

/// Write the helper and point `$BROWSER` at it (once; called with [`SERIAL`] held, before any
/// client of this process exists). Then forget any URL an earlier (failed) test left behind.
fn launcher() -> &'static Launcher {
    let l = LAUNCHER.get_or_init(|| {
        // In the target directory, one per process so two runs never share it (a static is never
        // dropped, so a temporary directory would be left behind); those of ended runs go.
        let base = target_dir().join("browser-chromium");
        for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let pid = e.file_name().to_string_lossy().into_owned();
            if !Path::new("/proc").join(&pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let dir = base.join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).expect("launcher dir");
        let url_file = dir.join("url");
        let script = dir.join("open-in-test-browser");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n# Stands in for the system browser: hands the URL to the test's Chromium.\n\
                 printf '%s' \"$1\" > '{0}.tmp' && mv '{0}.tmp' '{0}'\n",
                url_file.display()
            ),
        )
        .expect("helper");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        // SAFETY (edition 2021: safe to call): set once, before this process opens any client;
        // the other tests of this binary wait on SERIAL meanwhile.
        std::env::set_var("BROWSER", &script);
        Launcher { url_file }
    });
    let _ = std::fs::remove_file(&l.url_file);
    l
}

impl Launcher {
    /// The URL the library opened (waits for the helper to run).
    async fn opened(&self) -> String {
        let start = Instant::now();
        loop {
            if let Ok(u) = std::fs::read_to_string(&self.url_file) {
                std::fs::remove_file(&self.url_file).expect("remove url file");
                return u;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "the library did not open a browser within {DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Chromium and chromedriver (Debian's paths, or `MAILCONNECT_CHROMIUM` and
/// `MAILCONNECT_CHROMEDRIVER`), or why not (None = skip).
fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let find = |var: &str, names: &[&str]| match std::env::var_os(var) {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.exists()),
        None => names
            .iter()
            .map(|n| Path::new("/usr/bin").join(n))
            .find(|p| p.exists()),
    };
    let chromium = find("MAILCONNECT_CHROMIUM", &["chromium", "chromium-browser"]);
    let driver = find("MAILCONNECT_CHROMEDRIVER", &["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ if std::env::var_os("MAILCONNECT_REQUIRE_BROWSER").is_some() => panic!(
            "MAILCONNECT_REQUIRE_BROWSER is set but chromium or chromedriver is missing \
             (apt-get install chromium chromium-driver; tests/run-all.sh does)"
        ),
        _ => {
            eprintln!(
                "SKIPPED: chromium/chromedriver not installed (apt-get install chromium chromium-driver); \
                 set MAILCONNECT_REQUIRE_BROWSER=1 to make this a failure"
            );
            None
        }
    }
}

fn write_screenshots() -> bool {
    std::env::var("MAILCONNECT_WRITE_SCREENSHOTS").is_ok_and(|v| v == "1")
}

/// A chromedriver process with one Chromium session, spoken to over W3C WebDriver.
struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    async fn start(chromium: &Path, chromedriver: &Path) -> Browser {
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("http client");
        let profile = tempfile::tempdir().expect("profile dir");
        let log = profile.path().join("chromedriver.log");
        // A free port, handed to chromedriver; should another process take it first, chromedriver
        // exits and the next attempt takes another.
        let mut attempt = 0;
        let (driver, base) = 'started: loop {
            attempt += 1;
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
                l.local_addr().expect("addr").port()
            };
            let out = std::fs::File::create(&log).expect("chromedriver log");
            let mut driver = Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdout(out.try_clone().expect("log"))
                .stderr(out)
                .spawn()
                .expect("chromedriver starts");
            let base = format!("http://127.0.0.1:{port}");
            let start = Instant::now();
            loop {
                if let Ok(Some(status)) = driver.try_wait() {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    assert!(attempt < 5, "chromedriver exited ({status}): {text}");
                    continue 'started;
                }
                let ready = match http.get(format!("{base}/status")).send().await {
                    Ok(r) => r
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|v| v["value"]["ready"].as_bool()),
                    Err(_) => None,
                };
                if ready == Some(true) {
                    break 'started (driver, base);
                }
                if start.elapsed() > DEADLINE {
                    let _ = driver.kill();
                    panic!(
                        "chromedriver not ready within {DEADLINE:?}: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--window-size={WIDTH},{HEIGHT}"),
                    "--host-resolver-rules=MAP login.microsoftonline.com ~NOTFOUND",
                ]
            }
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session JSON");
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_string();
        let b = Browser {
            driver,
            http,
            session: format!("{base}/session/{id}"),
            _profile: profile,
        };
        // The page area exactly WIDTH x HEIGHT (the window size leaves less to the page, and by
        // how much differs between Chromium versions): stable screenshots.
        b.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(
                json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": {
                "width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false}}),
            ),
        )
        .await;
        b
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r: Value = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"));
        if r["value"].get("error").is_some() {
            panic!("WebDriver {path}: {}", r["value"]);
        }
        r["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// The address bar.
    async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .expect("url")
            .to_string()
    }

    async fn js(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// What the page shows (`innerText`) and its whole HTML.
    async fn page(&self) -> (String, String) {
        let v = self
            .js("return [document.body ? document.body.innerText : '', document.documentElement.outerHTML]")
            .await;
        (
            v[0].as_str().unwrap_or_default().to_string(),
            v[1].as_str().unwrap_or_default().to_string(),
        )
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT].as_str().expect("element id").to_string()
    }

    /// Type into a field like a user (after clearing what is prefilled).
    async fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Click a button and wait until the next document has loaded.
    async fn click_and_wait(&self, css: &str) {
        self.js("window.__mcOld = true").await;
        let e = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
        let start = Instant::now();
        loop {
            let v = self
                .js("return window.__mcOld === true ? 'old' : document.readyState")
                .await;
            if v == "complete" {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "no new page within {DEADLINE:?} after clicking {css}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The id of the page's form (`loginForm`, `consentForm`, ...), if any.
    async fn form(&self) -> Option<String> {
        self.js("return document.forms.length ? document.forms[0].id : null")
            .await
            .as_str()
            .map(str::to_string)
    }

    /// Save the viewport as `docs/img/<name>` when screenshots are wanted; always check that one
    /// can be taken and is a PNG of the fixed size.
    async fn screenshot(&self, name: &str) {
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("screenshot"))
            .expect("base64");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name} is a PNG");
        let (w, h) = (
            u32::from_be_bytes(png[16..20].try_into().unwrap()),
            u32::from_be_bytes(png[20..24].try_into().unwrap()),
        );
        assert_eq!((w, h), (WIDTH, HEIGHT), "{name}: screenshot size");
        // All of the page is in the picture (buttons included).
        let page_height = self
            .js("return document.documentElement.scrollHeight")
            .await;
        assert!(
            page_height
                .as_u64()
                .is_some_and(|ph| ph <= u64::from(HEIGHT)),
            "{name}: the page is {page_height} px high, more than the {HEIGHT} px shown"
        );
        if write_screenshots() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/img");
            std::fs::create_dir_all(&dir).expect("docs/img");
            std::fs::write(dir.join(name), &png).expect("write screenshot");
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends Chromium too (chromedriver's children); then chromedriver itself.
        let http = self.http.clone();
        let session = self.session.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let _ = rt.block_on(async {
                tokio::time::timeout(DEADLINE, http.delete(&session).send()).await
            });
        })
        .join();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// What the user does on the emulator's pages.
struct User<'a> {
    login: &'a str,
    accept: bool,
    /// Screenshot names for the username, password and consent pages.
    shots: Option<(&'a str, &'a str, &'a str)>,
}

/// Play the user in the browser from wherever it is until the address bar starts with
/// `redirect_prefix`; returns the pages seen (form ids) in order.
async fn sign_in(b: &Browser, user: &User<'_>, redirect_prefix: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < DEADLINE * 2,
            "sign-in did not reach {redirect_prefix}; pages: {seen:?}, now at {}",
            b.url().await
        );
        if b.url().await.starts_with(redirect_prefix) {
            return seen;
        }
        let Some(form) = b.form().await else {
            let (text, _) = b.page().await;
            panic!("a page without a form before the redirect: {text}");
        };
        seen.push(form.clone());
        match form.as_str() {
            "loginForm" => {
                let (text, _) = b.page().await;
                assert!(text.contains("Sign in"), "{text}");
                if let Some((name, _, _)) = user.shots {
                    b.screenshot(name).await;
                }
                b.type_into("#i0116", user.login).await;
                b.click_and_wait("#idSIButton9").await;
            }
            "passwordForm" => {
                let (text, _) = b.page().await;
                assert!(
                    text.contains("Enter password") && text.contains(user.login),
                    "{text}"
                );
                b.type_into("#i0118", &password(user.login)).await;
                if let Some((_, name, _)) = user.shots {
                    b.screenshot(name).await;
                }
                b.click_and_wait("#idSIButton9").await;
            }
            "consentForm" => {
                let (text, _) = b.page().await;
                assert!(
                    text.contains("Permissions requested")
                        && text.contains("IMAP.AccessAsUser.All"),
                    "{text}"
                );
                if let Some((_, _, name)) = user.shots {
                    b.screenshot(name).await;
                }
                b.click_and_wait(if user.accept {
                    "#idSIButton9"
                } else {
                    "#idBtn_Back"
                })
                .await;
            }
            other => panic!("unexpected form {other} at {}", b.url().await),
        }
    }
}

/// The emulator with nobody's consent given (so the consent page shows) and a client on it.
async fn world(language: Language) -> (Env, Client) {
    let env = env_with(|c: &mut EmulatorConfig| {
        for u in &mut c.users {
            u.consented.clear();
        }
    })
    .await;
    let mut o = ClientOptions::new(env.dir.path().join(format!("{}.db", language.tag())));
    o.language = language;
    o.http.no_proxy = true;
    o.http.timeout = Duration::from_secs(30);
    let client = Client::open(o).expect("client");
    client
        .put_registration_json(&desktop(&env.emulator).to_string())
        .expect("registration");
    (env, client)
}

fn put_account(client: &Client, id: &str, mailbox: &str) {
    client
        .put_account_json(
            &json!({"id": id, "mailbox": mailbox, "registration": "desktop", "flow": "browser",
                    "options": {"interactive_timeout_secs": 240}})
            .to_string(),
        )
        .expect("account");
}

/// The loopback page after the redirect: its address, text and HTML.
struct Landing {
    url: url::Url,
    text: String,
    html: String,
    /// The authorization code the address carries.
    code: Option<String>,
}

async fn landing(b: &Browser) -> Landing {
    let url = url::Url::parse(&b.url().await).expect("URL");
    let (text, html) = b.page().await;
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned());
    Landing {
        url,
        text,
        html,
        code,
    }
}

/// An address for a failure message: the query's names only (values may be a code).
fn shown(url: &url::Url) -> String {
    let names: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    format!(
        "{}{} with query {names:?}",
        url.origin().ascii_serialization(),
        url.path()
    )
}

/// Nothing secret in what the browser shows: not the code, not `secrets` (tokens).
fn assert_no_secret(l: &Landing, secrets: &[&str]) {
    if let Some(code) = &l.code {
        assert!(code.len() > 20, "a real code: {code}");
        assert!(
            !l.text.contains(code.as_str()) && !l.html.contains(code.as_str()),
            "the code is in the page"
        );
    }
    for s in secrets {
        assert!(s.len() > 20);
        assert!(
            !l.text.contains(s) && !l.html.contains(s) && !l.url.as_str().contains(s),
            "a token is in the page or its address"
        );
    }
    for word in [
        "access_token",
        "refresh_token",
        "client_secret",
        "code_verifier",
    ] {
        assert!(!l.html.contains(word), "'{word}' in the page");
    }
}

/// Sign in and consent in Chromium, opened by the library through `$BROWSER`; the loopback page in
/// the client's language; the account works afterwards.
async fn connect_in_browser(language: Language, shots: Option<(&str, &str, &str)>, done: &str) {
    let Some((chromium, driver)) = browser_binaries() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let launcher = launcher();
    let (env, client) = world(language).await;
    put_account(&client, "alice", "alice@example.test");
    let browser = Browser::start(&chromium, &driver).await;
    let cancel = CancellationToken::new();
    let connect = client.connect(
        "alice",
        ConnectOptions::default(),
        &DefaultObserver,
        &cancel,
    );
    let drive = async {
        let url = launcher.opened().await;
        let opened = url::Url::parse(&url).expect("opened URL");
        let redirect = opened
            .query_pairs()
            .find(|(k, _)| k == "redirect_uri")
            .map(|(_, v)| v.into_owned())
            .expect("redirect_uri");
        assert!(redirect.starts_with("http://localhost:"), "{redirect}");
        browser.goto(&url).await;
        let pages = sign_in(
            &browser,
            &User {
                login: "alice@example.test",
                accept: true,
                shots,
            },
            &redirect,
        )
        .await;
        assert_eq!(pages, ["loginForm", "passwordForm", "consentForm"]);
        (landing(&browser).await, redirect)
    };
    let (status, (page, redirect)) = tokio::join!(connect, drive);
    let status = status.unwrap_or_else(|e| panic!("connect: {e}"));
    assert_eq!(status.state, AccountState::Connected);

    let (title, sentence) = match language {
        Language::De => (
            "Anmeldung abgeschlossen",
            "Sie können dieses Fenster schließen und zur Anwendung zurückkehren.",
        ),
        _ => (
            "Sign-in complete",
            "You can close this window and return to the application.",
        ),
    };
    assert_eq!(
        page.text.trim(),
        format!("{title}\n\n{sentence}"),
        "{}",
        page.text
    );
    assert!(
        page.html
            .starts_with(&format!("<html lang=\"{}\">", language.tag())),
        "{}",
        page.html
    );
    assert_eq!(browser.js("return document.title").await, title);
    // No redirect to a clean address: the (now spent) code stays in the address bar.
    assert!(page.code.is_some(), "{}", shown(&page.url));
    browser.screenshot(done).await;

    let token = client.access_token("alice", &cancel).await.expect("token");
    assert_eq!(token.user, "alice@example.test");
    assert_no_secret(&page, &[token.token.expose_secret()]);
    // The code the address bar keeps is spent: the emulator refuses it as already redeemed.
    let again = redeem(&env, page.code.as_deref().unwrap_or_default(), &redirect).await;
    assert!(
        again["error_description"]
            .as_str()
            .is_some_and(|d| d.starts_with("AADSTS54005:")),
        "{}",
        again["error"]
    );
    drop(browser);
    drop(env);
}

/// Redeem `code` at the emulator's token endpoint as anyone who copied it from the address bar
/// could: without the PKCE verifier, which only the library had. The error answer.
async fn redeem(env: &Env, code: &str, redirect_uri: &str) -> Value {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(DEADLINE)
        .build()
        .expect("http client");
    let r = http
        .post(format!(
            "{}/organizations/oauth2/v2.0/token",
            env.emulator.base_url().trim_end_matches('/')
        ))
        .form(&[
            ("client_id", DESKTOP_APP),
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("scope", "https://outlook.office.com/IMAP.AccessAsUser.All"),
        ])
        .send()
        .await
        .expect("token endpoint");
    assert_eq!(r.status(), 400, "the code must not buy a token");
    r.json().await.expect("error JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_consent_in_chromium_end_on_the_english_loopback_page() {
    connect_in_browser(
        Language::En,
        Some((
            "signin-microsoft-emulator.png",
            "password.png",
            "consent.png",
        )),
        "done-en.png",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loopback_page_speaks_german_in_chromium() {
    connect_in_browser(Language::De, None, "done-de.png").await;
}

/// The user clicks Cancel on the permissions page: the loopback error page, and the connect
/// ends with the catalog's MC-CONSENT-DECLINED; nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declining_consent_in_chromium_shows_the_error_page() {
    let Some((chromium, driver)) = browser_binaries() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let launcher = launcher();
    let (env, client) = world(Language::En).await;
    put_account(&client, "alice", "alice@example.test");
    let browser = Browser::start(&chromium, &driver).await;
    let cancel = CancellationToken::new();
    let connect = client.connect(
        "alice",
        ConnectOptions::default(),
        &DefaultObserver,
        &cancel,
    );
    let drive = async {
        let url = launcher.opened().await;
        let redirect = redirect_of(&url);
        browser.goto(&url).await;
        let user = User {
            login: "alice@example.test",
            accept: false,
            shots: None,
        };
        sign_in(&browser, &user, &redirect).await;
        landing(&browser).await
    };
    let (result, page) = tokio::join!(connect, drive);
    let e = result.expect_err("declined consent must not connect");
    assert_eq!(e.kind(), ErrorKind::AuthorizationDenied, "{e}");
    assert_eq!(diagnose(&e, Default::default()).code, "MC-CONSENT-DECLINED");
    assert!(page.text.starts_with("Sign-in failed"), "{}", page.text);
    assert!(
        page.text.contains("The sign-in did not succeed")
            && page.text.contains("The permissions were declined")
            && page
                .text
                .contains("Return to the application for details. (MC-CONSENT-DECLINED)"),
        "{}",
        page.text
    );
    assert!(page.code.is_none(), "{}", shown(&page.url));
    assert_no_secret(&page, &[]);
    browser.screenshot("declined.png").await;
    assert_eq!(
        client.status("alice").unwrap().state,
        AccountState::NotConnected
    );
    drop(browser);
    drop(env);
}

/// Bob signs in where Alice's mailbox is being connected. The provider's redirect carries a
/// good code; the loopback listener holds the browser's request until the library has redeemed
/// it and seen whose it is, so the page says the sign-in failed with the catalog's title and fix,
/// the application gets MC-WRONG-ACCOUNT naming both, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_as_someone_else_in_chromium_is_refused() {
    let Some((chromium, driver)) = browser_binaries() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let launcher = launcher();
    let (env, client) = world(Language::En).await;
    put_account(&client, "alice", "alice@example.test");
    let browser = Browser::start(&chromium, &driver).await;
    let cancel = CancellationToken::new();
    let connect = client.connect(
        "alice",
        ConnectOptions::default(),
        &DefaultObserver,
        &cancel,
    );
    let drive = async {
        let url = launcher.opened().await;
        let redirect = redirect_of(&url);
        browser.goto(&url).await;
        // The username page comes prefilled with alice (login_hint); the user types bob over it.
        let (text, _) = browser.page().await;
        assert!(
            browser
                .js("return document.getElementById('i0116').value")
                .await
                == "alice@example.test",
            "{text}"
        );
        let user = User {
            login: "bob@example.test",
            accept: true,
            shots: None,
        };
        sign_in(&browser, &user, &redirect).await;
        landing(&browser).await
    };
    let (result, page) = tokio::join!(connect, drive);
    let e = result.expect_err("another account must not connect");
    assert_eq!(e.kind(), ErrorKind::AuthorizationDenied, "{e}");
    assert_eq!(diagnose(&e, Default::default()).code, "MC-WRONG-ACCOUNT");
    assert!(
        e.message().contains("bob@example.test") && e.message().contains("alice@example.test"),
        "{}",
        e.message()
    );
    assert!(page.text.starts_with("Sign-in failed"), "{}", page.text);
    assert!(
        page.text.contains("Another account signed in")
            && page.text.contains("Use another account")
            && page.text.contains("(MC-WRONG-ACCOUNT)"),
        "{}",
        page.text
    );
    assert!(page.code.is_some());
    assert_no_secret(&page, &[]);
    browser.screenshot("wrong-account.png").await;
    assert_eq!(
        client.status("alice").unwrap().state,
        AccountState::NotConnected
    );
    drop(browser);
    drop(env);
}

/// The user takes longer than the account's `interactive_timeout_secs`: the connect ends with
/// MC-BROWSER-TIMEOUT, the listener is gone, and finishing the sign-in afterwards ends on the
/// browser's own "can't be reached" page. The browser is driven only after the connect returned,
/// so no timing margin decides the outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finishing_after_the_timeout_ends_on_the_browsers_error_page() {
    let Some((chromium, driver)) = browser_binaries() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let launcher = launcher();
    let (env, client) = world(Language::En).await;
    client
        .put_account_json(
            &json!({"id": "alice", "mailbox": "alice@example.test", "registration": "desktop",
                    "flow": "browser", "options": {"interactive_timeout_secs": 1}})
            .to_string(),
        )
        .expect("account");
    let cancel = CancellationToken::new();
    let e = client
        .connect(
            "alice",
            ConnectOptions::default(),
            &DefaultObserver,
            &cancel,
        )
        .await
        .expect_err("nobody signed in in time");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(diagnose(&e, Default::default()).code, "MC-BROWSER-TIMEOUT");
    let url = launcher.opened().await;
    let redirect = redirect_of(&url);
    let browser = Browser::start(&chromium, &driver).await;
    browser.goto(&url).await;
    let user = User {
        login: "alice@example.test",
        accept: true,
        shots: None,
    };
    sign_in(&browser, &user, &redirect).await;
    assert_eq!(
        browser.js("return location.href").await,
        "chrome-error://chromewebdata/",
        "nobody answers on the loopback port any more"
    );
    let (text, _) = browser.page().await;
    assert!(text.contains("localhost"), "{text}");
    browser.screenshot("timeout.png").await;
    // The code in that address was never redeemed, and without the verifier it cannot be.
    let l = landing(&browser).await;
    let code = l.code.clone().expect("the address keeps the code");
    let refused = redeem(&env, &code, &redirect).await;
    assert!(
        refused["error_description"]
            .as_str()
            .is_some_and(|d| d.starts_with("AADSTS501481:")),
        "{}",
        refused["error"]
    );
    assert_eq!(
        client.status("alice").unwrap().state,
        AccountState::NotConnected
    );
    drop(browser);
    drop(env);
}

fn redirect_of(url: &str) -> String {
    url::Url::parse(url)
        .expect("opened URL")
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .expect("redirect_uri")
}

/// The embedded view (`nativeclient`) through the C ABI: the host shows the URL from
/// `mc_authorization_begin` in its own view (here Chromium), the view stops at the redirect, the
/// host hands the address to `mc_authorization_complete`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_view_in_chromium_stops_at_nativeclient_and_completes() {
    let Some((chromium, driver)) = browser_binaries() else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let (env, _client) = world(Language::En).await;
    let dir = tempfile::tempdir().unwrap();
    let opts = cs(
        &json!({"store": dir.path().join("s.db"), "http_timeout_secs": 30, "no_proxy": true})
            .to_string(),
    );
    let mut c = null_mut();
    assert_eq!(unsafe { mc_client_open(opts.as_ptr(), &mut c) }, MC_OK);
    let c = Arc::new(C(c));
    let reg = desktop(&env.emulator).to_string();
    assert_eq!(
        unsafe { mc_registration_put(c.0, cs(&reg).as_ptr()) },
        MC_OK
    );
    let acc = json!({"id": "alice", "mailbox": "alice@example.test", "registration": "desktop", "flow": "browser"});
    assert_eq!(
        unsafe { mc_account_put(c.0, cs(&acc.to_string()).as_ptr()) },
        MC_OK
    );
    let c2 = c.clone();
    let begun: Value = on_host_thread(move || {
        let o = cs(&json!({"redirect_uri": NATIVECLIENT}).to_string());
        let mut out = null_mut();
        let rc = unsafe {
            mc_authorization_begin(c2.0, cs("alice").as_ptr(), o.as_ptr(), null_mut(), &mut out)
        };
        assert_eq!(rc, MC_OK, "{:?}", last_error());
        serde_json::from_str(&take(out).unwrap()).unwrap()
    })
    .await;
    assert_eq!(begun["loopback"], false);
    let url = begun["url"].as_str().unwrap().to_string();
    let handle = begun["handle"].as_str().unwrap().to_string();

    let browser = Browser::start(&chromium, &driver).await;
    browser.goto(&url).await;
    let user = User {
        login: "alice@example.test",
        accept: true,
        shots: None,
    };
    let pages = sign_in(&browser, &user, NATIVECLIENT).await;
    assert_eq!(pages, ["loginForm", "passwordForm", "consentForm"]);
    // The view went no further: login.microsoftonline.com does not resolve here, as a host's view
    // cancels the navigation. What the host reads is the address.
    let captured = browser.url().await;
    assert!(
        captured.starts_with(&format!("{NATIVECLIENT}?code=")),
        "{}",
        shown(&url::Url::parse(&captured).expect("URL"))
    );
    let c2 = c.clone();
    let done: Value = on_host_thread(move || {
        let mut out = null_mut();
        let rc = unsafe {
            mc_authorization_complete(
                c2.0,
                cs(&handle).as_ptr(),
                cs(&captured).as_ptr(),
                null_mut(),
                &mut out,
            )
        };
        assert_eq!(rc, MC_OK, "{:?}", last_error());
        serde_json::from_str(&take(out).unwrap()).unwrap()
    })
    .await;
    assert_eq!(done["state"], "connected", "{done}");
    let c2 = c.clone();
    let token = on_host_thread(move || {
        let mut out = null_mut();
        let rc = unsafe { mc_token_get(c2.0, cs("alice").as_ptr(), null_mut(), &mut out) };
        assert_eq!(rc, MC_OK, "{:?}", last_error());
        take(out).unwrap()
    })
    .await;
    assert!(token.starts_with("eyJ"), "an access token (JWT)");
    // What the view shows now is Chromium's own "can't be reached" page (it quotes the address,
    // code and all; a host's view never shows it, it stops the navigation): nothing was loaded
    // from the network, and no token reached the view.
    let l = landing(&browser).await;
    assert_eq!(
        browser.js("return location.href").await,
        "chrome-error://chromewebdata/"
    );
    assert!(!l.html.contains(token.as_str()) && !l.text.contains(token.as_str()));
    drop(browser);
    drop(env);
}
