//! Every connection through a corporate proxy (issue 17), through core's public API against real
//! proxy servers on loopback (tests/support/proxies.rs: tinyproxy, Dante, a recording Tap, a
//! TLS-inspecting proxy), the emulator over HTTPS and the real Dovecot/Postfix stack:
//!
//! - tinyproxy with Basic auth, and Dante SOCKS5 with user and password (`socks5://` and
//!   `socks5h://`): connect (the identity provider's traffic through the proxy, seen in its log),
//!   Test (each result's `path` names the proxy), send and fetch;
//! - a Tap between the library and the proxy: no token (access, refresh, for mail or Graph, nor a
//!   code or verifier) crosses it in clear, either way; the proxy password is in no report, error
//!   message or log record;
//! - the failures, each with its catalog code and without the password in the message: a proxy
//!   that allows only web ports, a wrong password (HTTP and SOCKS), no credentials, no proxy
//!   listening, a server the proxy cannot reach, and a per-protocol `"direct"` that takes IMAP
//!   around a proxy that would refuse it;
//! - a TLS-inspecting proxy: `MC-TLS-INSPECTED` naming the inspection CA, and working once that CA
//!   is among the client's extra CAs.
//!
//! The emulator runs over HTTPS (as Microsoft's endpoints do; over plain HTTP a proxy would see the
//! token endpoint's answers in clear). Dovecot asks its introspection endpoint through a plain-HTTP
//! relay here, so the stack needs no trust in the emulator's CA. Needs root (the mail stack, the
//! packages, Dante's system user), like tests/mail_stack.rs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use mailconnect_core::check::{ProtocolResult, TestOptions, TestReport};
use mailconnect_core::mail::FetchRequest;
use mailconnect_core::model::Transport;
use mailconnect_core::net::ProxyConfig;
use mailconnect_core::{CancellationToken, Client, ClientOptions, Error, Protocol, Resource};
use mailconnect_sandbox::{ScriptedBrowser, TlsConfig};
use mailconnect_tests::proxies::*;
use mailconnect_tests::*;
use tokio_rustls::rustls::pki_types::ServerName;

const ALICE: &str = "alice@example.test";

/// tinyproxy's Basic auth user and password (no white space: tinyproxy's config takes none).
const PROXY_USER: &str = "mcproxy";
const PROXY_PASSWORD: &str = "Pr0xy-pw-4b7e19c2";
/// Dante's system user and its password (one password for the whole file: every start sets it).
const SOCKS_USER: &str = "mcsocks-e2e";
const SOCKS_PASSWORD: &str = "S0cks-pw-8d3a61f0";
/// A password neither proxy accepts.
const WRONG_PASSWORD: &str = "Wr0ng-pw-51c9e2a7";

fn nc() -> CancellationToken {
    CancellationToken::new()
}

// ----- capturing every log record (core's and its dependencies') at TRACE ----------------------

use mailconnect_tests::tracelog::trace_log;

/// The secrets of the proxies in every form a leak could take.
fn proxy_secrets() -> Vec<String> {
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    vec![
        PROXY_PASSWORD.to_string(),
        SOCKS_PASSWORD.to_string(),
        WRONG_PASSWORD.to_string(),
        b64(format!("{PROXY_USER}:{PROXY_PASSWORD}")),
        b64(format!("{PROXY_USER}:{WRONG_PASSWORD}")),
    ]
}

/// Assert that no proxy password (nor a Basic credential made of one) is in `text`.
#[track_caller]
fn assert_no_password(what: &str, text: &str) {
    for s in proxy_secrets() {
        assert!(!text.contains(&s), "{what} holds a proxy password: {text}");
    }
}

/// Assert the same of everything logged so far.
#[track_caller]
fn assert_no_password_logged() {
    let log = trace_log().text();
    assert!(!log.is_empty(), "the log capture works");
    for s in proxy_secrets() {
        let at = log.find(&s);
        assert!(
            at.is_none(),
            "a proxy password was logged: …{}…",
            at.map(|i| &log[i.saturating_sub(300)..(i + 100).min(log.len())])
                .unwrap_or_default()
        );
    }
}

/// Assert `e` has the catalog code `code` (as the diagnosis gives it, and as the error carries
/// it) and no proxy password in its message or evidence.
#[track_caller]
fn assert_code(e: &Error, code: &str) {
    let text = format!("{e}\n{e:?}");
    assert_eq!(
        mailconnect_core::diagnose::code_for(e, Default::default()),
        code,
        "{text}"
    );
    assert_eq!(e.code(), Some(code), "{text}");
    assert_no_password("the error", &text);
}

// ----- the world: the emulator over HTTPS, the mail stack ----------------------------------------

/// A plain-HTTP relay to the emulator's HTTPS port, for Dovecot's introspection requests; stops
/// accepting on drop.
struct Relay {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn https_relay(target_port: u16, ca_pem: &[u8]) -> Relay {
    let connector = tls_connector(ca_pem);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("relay binds");
    let port = listener.local_addr().expect("relay address").port();
    let task = tokio::spawn(async move {
        while let Ok((mut plain, _)) = listener.accept().await {
            let connector = connector.clone();
            tokio::spawn(async move {
                let Ok(tcp) = tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await
                else {
                    return;
                };
                let name = ServerName::try_from("127.0.0.1").expect("server name");
                let Ok(mut tls) = connector.connect(name, tcp).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut plain, &mut tls).await;
            });
        }
    });
    Relay { port, task }
}

struct World {
    env: Env,
    stack: MailStack,
    /// The CA of the emulator's certificate (PEM).
    emu_ca: Vec<u8>,
    _relay: Relay,
    _certs: tempfile::TempDir,
}

async fn world() -> World {
    trace_log();
    let certs = tempfile::tempdir().expect("dir");
    let (ca, cert, key) = localhost_certs(certs.path());
    let env = env_with(|c| {
        c.tls = Some(TlsConfig {
            cert_pem_path: cert,
            key_pem_path: key,
        })
    })
    .await;
    assert!(env.emulator.base_url().starts_with("https://127.0.0.1:"));
    let emu_ca = std::fs::read(ca).expect("CA");
    let relay = https_relay(env.emulator.local_addr().port(), &emu_ca).await;
    let stack = MailStack::up(&format!("http://127.0.0.1:{}/introspect", relay.port), &[]);
    World {
        env,
        stack,
        emu_ca,
        _relay: relay,
        _certs: certs,
    }
}

impl World {
    /// `127.0.0.1:PORT` of the emulator (the identity provider and Graph).
    fn idp(&self) -> String {
        format!("127.0.0.1:{}", self.env.emulator.local_addr().port())
    }

    /// `127.0.0.1:PORT` of the stack's port `name`.
    fn target(&self, name: &str) -> String {
        format!("127.0.0.1:{}", self.stack.port(name))
    }

    /// The targets of the account's IMAP, POP3 and SMTP servers ([`MailStack::servers`]).
    fn mail_targets(&self) -> [String; 3] {
        [
            self.target("imap_tls"),
            self.target("pop3_tls"),
            self.target("smtp_starttls"),
        ]
    }

    /// A client on the store `name` with the proxy option `proxy` (a URL or the JSON object;
    /// `None`: `no_proxy`), trusting the stack's and the emulator's CAs and `extra_ca`.
    fn client(&self, name: &str, proxy: Option<&str>, extra_ca: &[Vec<u8>]) -> Client {
        let mut o = self.options(name);
        o.http.tls.extra_ca_pem.extend(extra_ca.iter().cloned());
        match proxy {
            Some(p) => o.http.proxy = Some(ProxyConfig::parse(p).expect("the proxy option parses")),
            None => o.http.no_proxy = true,
        }
        Client::open(o).expect("client opens")
    }

    /// The options of a client on the store `name` trusting the stack's and the emulator's CAs,
    /// with neither `proxy` nor `no_proxy`.
    fn options(&self, name: &str) -> ClientOptions {
        let mut o = ClientOptions::new(self.env.dir.path().join(name));
        // Generous: a shared machine, and every connection takes two hops.
        o.http.timeout = Duration::from_secs(60);
        o.http.connect_timeout = Duration::from_secs(60);
        o.http.tls.extra_ca_pem = vec![self.stack.ca_pem(), self.emu_ca.clone()];
        o
    }

    /// alice played in a browser that trusts the emulator's certificate.
    fn user(&self) -> ScriptedUser {
        let browser = ScriptedBrowser::with_root_certificates_pem(&self.emu_ca).expect("a browser");
        ScriptedUser::with_browser(Arc::new(browser), sign_in_as(ALICE))
    }

    /// Put the desktop registration and account `id` for alice with `servers` on `client`, and
    /// connect it with `flow`: the outcome.
    async fn connect(
        &self,
        client: &Client,
        id: &str,
        flow: &str,
        fields: serde_json::Value,
    ) -> mailconnect_core::Result<mailconnect_core::Status> {
        let mut with = serde_json::json!({"servers": self.stack.servers()});
        if let (Some(w), Some(f)) = (with.as_object_mut(), fields.as_object()) {
            w.extend(f.clone());
        }
        connected(client, desktop(&self.env.emulator), id, ALICE)
            .flow(flow)
            .with(with)
            .user(self.user())
            .attempt()
            .await
            .0
    }

    /// [`World::connect`] that must succeed.
    async fn connected(&self, client: &Client, id: &str, flow: &str, fields: serde_json::Value) {
        if let Err(e) = self.connect(client, id, flow, fields).await {
            panic!("connecting '{id}': {e}\n{:?}", e.evidence());
        }
    }

    /// Account `id` connected on the store `name` without a proxy (for tests of what a proxy
    /// does to connections after the sign-in): open the store again with a proxy to use it.
    async fn connected_directly(&self, name: &str, id: &str, fields: serde_json::Value) {
        let direct = self.client(name, None, &[]);
        self.connected(&direct, id, "device_code", fields).await;
    }
}

/// The stack's servers with the host `localhost` (for `socks5h://`: the proxy resolves it; the
/// stack's certificate names `localhost` too).
fn servers_named(stack: &MailStack, host: &str) -> serde_json::Value {
    let mut s = stack.servers();
    for p in ["imap", "pop3", "smtp"] {
        s[p]["host"] = host.into();
    }
    s
}

fn message(subject: &str) -> Vec<u8> {
    format!(
        "From: {ALICE}\r\nTo: {ALICE}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@proxies.test>\r\n\r\nThrough the proxy.\r\n"
    )
    .into_bytes()
}

/// Poll `fetch` of account `id` over `protocol` (or Graph) until a message contains `needle`.
async fn fetched(client: &Client, id: &str, req: FetchRequest, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let msgs = client
            .fetch(id, &req, &nc())
            .await
            .unwrap_or_else(|e| panic!("fetch {:?}/{:?}: {e}", req.transport, req.protocol));
        if msgs
            .iter()
            .any(|m| String::from_utf8_lossy(&m.data).contains(needle))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "'{needle}' never arrived ({:?}/{:?})",
            req.transport,
            req.protocol
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn over(protocol: Protocol) -> FetchRequest {
    FetchRequest {
        protocol: Some(protocol),
        ..Default::default()
    }
}

fn result(report: &TestReport, p: Protocol) -> &ProtocolResult {
    report
        .results
        .iter()
        .find(|r| r.protocol == p)
        .unwrap_or_else(|| panic!("no {p:?} result: {}", json(report)))
}

fn json(report: &TestReport) -> String {
    serde_json::to_string_pretty(report).expect("report JSON")
}

/// Test account `id`; the report with no proxy password in it.
async fn test(client: &Client, id: &str) -> TestReport {
    let report = client
        .test(id, &[], TestOptions::default(), &nc())
        .await
        .expect("the test runs");
    assert_no_password("the Test report", &json(&report));
    report
}

/// Assert that every IMAP, POP3 and SMTP result of `report` passed along `path`.
#[track_caller]
fn assert_all_ok_via(report: &TestReport, path: &str) {
    let j = json(report);
    assert!(report.ok, "{j}");
    assert_eq!(report.results.len(), 3, "{j}");
    for r in &report.results {
        assert!(r.ok, "{j}");
        assert_eq!(r.path, path, "{j}");
        assert_eq!(r.mechanism_used.as_deref(), Some("XOAUTH2"), "{j}");
    }
}

/// Assert that every IMAP, POP3 and SMTP result of `report` failed with `code` along `path`.
#[track_caller]
fn assert_all_failed(report: &TestReport, code: &str, path: &str) {
    let j = json(report);
    assert!(!report.ok, "{j}");
    assert_eq!(report.results.len(), 3, "{j}");
    for r in &report.results {
        assert!(!r.ok, "{j}");
        assert_eq!(r.path, path, "{j}");
        let e = r.error.as_ref().unwrap_or_else(|| panic!("an error: {j}"));
        assert_eq!(e.code, code, "{j}");
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port()
}

fn tinyproxy_with_auth(connect_ports: Option<Vec<u16>>) -> HttpProxy {
    HttpProxy::start(HttpProxyOptions {
        basic_auth: Some((PROXY_USER.into(), PROXY_PASSWORD.into())),
        connect_ports,
    })
}

fn dante_with_auth() -> SocksProxy {
    SocksProxy::start(SocksOptions {
        auth: Some((SOCKS_USER.into(), SOCKS_PASSWORD.into())),
    })
}

// ----- through the proxies ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_tinyproxy_with_basic_auth_connect_test_send_and_fetch() {
    let w = world().await;
    let proxy = tinyproxy_with_auth(None);
    let url = proxy.url_with_credentials();
    assert!(url.contains(PROXY_PASSWORD));
    let c = w.client("tiny.db", Some(&url), &[]);

    // The browser sign-in: the library's token requests go through the proxy.
    w.connected(&c, "alice", "browser", serde_json::json!({}))
        .await;
    proxy.wait_for_connect(&w.idp());

    let via = format!("http proxy 127.0.0.1:{}", proxy.port());
    let report = test(&c, "alice").await;
    assert_all_ok_via(&report, &via);
    for t in w.mail_targets() {
        proxy.wait_for_connect(&t);
    }

    let accepted = c
        .send("alice", &message("tiny-1"), None, &nc())
        .await
        .expect("send through tinyproxy");
    assert!(accepted.starts_with("250"), "{accepted}");
    fetched(&c, "alice", over(Protocol::Imap), "tiny-1").await;
    fetched(&c, "alice", over(Protocol::Pop3), "tiny-1").await;

    // It tunnelled only to the emulator and the account's mail ports, and refused nothing.
    let allowed = [w.idp(), w.mail_targets().join(" ")].join(" ");
    for t in proxy.connects() {
        assert!(allowed.split(' ').any(|a| a == t), "unexpected CONNECT {t}");
    }
    let log = proxy.log();
    assert!(!log.contains("Unauthorized"), "{log}");
    assert_no_password("tinyproxy's log", &log);
    assert_no_password_logged();
}

/// The stored proxy (`mc_proxy_set`): the program stores it once with its password, sealed; the
/// service beside it opens the store later without any proxy option and goes through the proxy
/// too; the options still win when given; a bad setting changes nothing; removing it goes back to
/// the environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_stored_by_the_program_serves_the_service_opened_later() {
    let w = world().await;
    let proxy = tinyproxy_with_auth(None);
    let via = format!("http proxy 127.0.0.1:{}", proxy.port());
    let program = Client::open(w.options("stored.db")).expect("the program's client");
    assert_eq!(program.proxy_info().await.unwrap()["source"], "environment");
    let setting = serde_json::json!({
        "url": proxy.url(), "username": PROXY_USER, "password": PROXY_PASSWORD,
        "no_proxy": ["intranet.example"],
    })
    .to_string();
    program
        .set_proxy(Some(&setting))
        .await
        .expect("the proxy is stored");
    let info = program.proxy_info().await.unwrap();
    assert_no_password("the proxy info", &info.to_string());
    assert_eq!(info["source"], "stored", "{info}");
    assert_eq!(info["stored"]["has_password"], true, "{info}");
    assert_eq!(info["stored"]["username"], PROXY_USER, "{info}");
    assert_eq!(info["stored"]["url"], proxy.url(), "{info}");

    // The program signs in through the stored proxy (no reopen needed).
    w.connected(&program, "alice", "browser", serde_json::json!({}))
        .await;
    proxy.wait_for_connect(&w.idp());

    // The password is sealed: not in the database file or its WAL, in no encoding.
    let db = w.env.dir.path().join("stored.db");
    let mut raw = std::fs::read(&db).expect("the store file");
    raw.extend(std::fs::read(db.with_extension("db-wal")).unwrap_or_default());
    let raw_text = String::from_utf8_lossy(&raw).to_string();
    assert_no_password("the store file", &raw_text);
    let hex: String = PROXY_PASSWORD.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(
        !raw_text.to_lowercase().contains(&hex),
        "the password in hex"
    );

    // The service opens the same store later, with no proxy option: it goes through the proxy.
    let service = Client::open(w.options("stored.db")).expect("the service's client");
    assert_eq!(service.proxy_info().await.unwrap()["source"], "stored");
    let report = test(&service, "alice").await;
    assert_all_ok_via(&report, &via);
    for t in w.mail_targets() {
        proxy.wait_for_connect(&t);
    }
    let before = proxy.connects().len();

    // Options given when a client opens win over the stored setting.
    let mut direct = w.options("stored.db");
    direct.http.no_proxy = true;
    let direct = Client::open(direct).expect("a client with no_proxy");
    assert_eq!(
        direct.proxy_info().await.unwrap()["source"],
        "no_proxy_option"
    );
    assert_all_ok_via(&test(&direct, "alice").await, "direct");

    // A bad setting is refused without a password in the message and changes nothing.
    let bad = format!("ftp://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:21");
    let e = service
        .set_proxy(Some(&bad))
        .await
        .expect_err("not a proxy URL");
    assert_eq!(
        e.kind(),
        mailconnect_core::ErrorKind::InvalidArgument,
        "{e}"
    );
    assert_no_password("the error", &format!("{e} {e:?}"));
    assert_eq!(
        service.proxy_info().await.unwrap()["stored"]["url"],
        proxy.url()
    );
    assert_all_ok_via(&test(&service, "alice").await, &via);

    // "direct" stored: this client at once; then removed: back to the environment (none here).
    service
        .set_proxy(Some("direct"))
        .await
        .expect("direct stored");
    let n = proxy.connects().len();
    assert_all_ok_via(&test(&service, "alice").await, "direct");
    service.set_proxy(None).await.expect("removed");
    let info = service.proxy_info().await.unwrap();
    assert_eq!(info["source"], "environment", "{info}");
    assert!(info["stored"].is_null(), "{info}");
    assert_all_ok_via(&test(&service, "alice").await, "direct");
    assert_eq!(
        proxy.connects().len(),
        n,
        "nothing more went through the proxy"
    );
    assert!(
        n > before,
        "the test before 'direct' went through the proxy"
    );
    assert_no_password("tinyproxy's log", &proxy.log());
    assert_no_password_logged();
}

async fn socks_story(remote_dns: bool) {
    let w = world().await;
    let proxy = dante_with_auth();
    let (url, host, flow) = if remote_dns {
        (proxy.url_h_with_credentials(), "localhost", "browser")
    } else {
        (proxy.url_with_credentials(), "127.0.0.1", "device_code")
    };
    assert!(url.contains(SOCKS_PASSWORD));
    let c = w.client("socks.db", Some(&url), &[]);

    w.connected(
        &c,
        "alice",
        flow,
        serde_json::json!({"servers": servers_named(&w.stack, host)}),
    )
    .await;
    proxy.wait_for_connect(&w.idp());

    let via = format!("socks5 proxy 127.0.0.1:{}", proxy.port());
    let report = test(&c, "alice").await;
    assert_all_ok_via(&report, &via);
    for r in &report.results {
        assert_eq!(r.host, host);
    }
    // Dante names the address it connected to: with socks5h it resolved `localhost` itself.
    for t in w.mail_targets() {
        proxy.wait_for_connect(&t);
    }
    let log = proxy.log();
    assert!(
        log.contains(&format!("username%{SOCKS_USER}@127.0.0.1")),
        "Dante authenticated the user: {log}"
    );
    assert!(!log.contains("authentication failed"), "{log}");

    let subject = if remote_dns { "socks5h-1" } else { "socks5-1" };
    let accepted = c
        .send("alice", &message(subject), None, &nc())
        .await
        .expect("send through Dante");
    assert!(accepted.starts_with("250"), "{accepted}");
    fetched(&c, "alice", over(Protocol::Imap), subject).await;
    fetched(&c, "alice", over(Protocol::Pop3), subject).await;

    let allowed = [w.idp(), w.mail_targets().join(" ")].join(" ");
    for t in proxy.connects() {
        assert!(allowed.split(' ').any(|a| a == t), "unexpected session {t}");
    }
    assert_no_password_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_dante_socks5_with_user_and_password() {
    socks_story(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_dante_socks5h_the_proxy_resolves_the_names() {
    socks_story(true).await;
}

// ----- what the proxy sees ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_never_sees_a_token_in_clear() {
    let w = world().await;
    let _front = w.stack.connect_graph(&w.env.emulator).await;
    let proxy = tinyproxy_with_auth(None);
    let tap = Tap::start(proxy.port());
    let url = format!(
        "http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{}",
        tap.port()
    );
    let c = w.client("tap.db", Some(&url), &[]);

    // An account that uses Graph as well as IMAP, POP3 and SMTP.
    let mut reg = desktop(&w.env.emulator);
    reg["graph_host"] = w.env.emulator.base_url().into();
    let (status, _) = connected(&c, reg, "alice", ALICE)
        .flow("browser")
        .with(serde_json::json!({"servers": w.stack.servers(), "transport": "auto"}))
        .user(w.user())
        .await;
    assert!(status.has_refresh_token);

    let via = format!("http proxy 127.0.0.1:{}", tap.port());
    let report = test(&c, "alice").await;
    assert_all_ok_via(&report, &via);
    let graph = report.graph.as_ref().expect("a Graph result");
    assert!(graph.ok, "{}", json(&report));
    assert_eq!(
        graph.path.as_deref(),
        Some(via.as_str()),
        "{}",
        json(&report)
    );

    let accepted = c
        .send("alice", &message("tapped-1"), None, &nc())
        .await
        .expect("send");
    assert!(accepted.starts_with("250"), "{accepted}");
    fetched(&c, "alice", over(Protocol::Imap), "tapped-1").await;
    let over_graph = FetchRequest {
        transport: Some(Transport::Graph),
        ..Default::default()
    };
    fetched(&c, "alice", over_graph, "tapped-1").await;

    let mail = c.access_token("alice", &nc()).await.expect("mail token");
    let graph_token = c
        .access_token_for("alice", Resource::Graph, &nc())
        .await
        .expect("Graph token");
    use secrecy::ExposeSecret;
    let sasl = c.sasl_xoauth2("alice", &nc()).await.expect("SASL");

    // Everything went through the Tap: the tunnels to the emulator and each mail port.
    for t in [w.idp()].into_iter().chain(w.mail_targets()) {
        assert!(
            tap.contains(format!("CONNECT {t} HTTP/1.1").as_bytes()),
            "no CONNECT {t} crossed the Tap"
        );
    }
    // The Basic credentials are expected on the proxy hop; tokens never are.
    assert!(tap.contains(b"Proxy-Authorization: Basic "));
    let secrets = w.env.emulator.issued_secrets();
    assert!(!secrets.access_tokens.is_empty() && !secrets.refresh_tokens.is_empty());
    let mut needles: Vec<(&str, String)> = secrets
        .all()
        .into_iter()
        .map(|(k, s)| (k, s.to_string()))
        .collect();
    needles.push(("mail access token", mail.token.expose_secret().to_string()));
    needles.push((
        "Graph access token",
        graph_token.token.expose_secret().to_string(),
    ));
    needles.push(("XOAUTH2 response", sasl.expose_secret().to_string()));
    assert_ne!(
        mail.token.expose_secret(),
        graph_token.token.expose_secret()
    );
    for (kind, s) in &needles {
        assert!(s.len() >= 16, "{kind} is a real secret");
        // A token's signature is the part no one else could make: look for that too.
        let tail = &s[s.len() - 16..];
        assert!(
            !tap.contains(s.as_bytes()) && !tap.contains(tail.as_bytes()),
            "a {kind} crossed the proxy in clear"
        );
    }
    assert_no_password_logged();
}

// ----- failures --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_allows_only_web_ports_denies_the_mail_ports() {
    let w = world().await;
    // "443 only", as many corporate proxies: here 443 and the emulator's port (the identity
    // provider's HTTPS, which is on 443 in the field).
    let emu_port = w.env.emulator.local_addr().port();
    let proxy = tinyproxy_with_auth(Some(vec![443, emu_port]));
    let c = w.client("web-only.db", Some(&proxy.url_with_credentials()), &[]);
    w.connected(&c, "alice", "browser", serde_json::json!({}))
        .await;
    proxy.wait_for_connect(&w.idp());

    let via = format!("http proxy 127.0.0.1:{}", proxy.port());
    let report = test(&c, "alice").await;
    assert_all_failed(&report, "MC-PROXY-PORT-DENIED", &via);
    for r in &report.results {
        let e = r.error.as_ref().expect("error");
        assert!(
            e.message.contains(&format!("127.0.0.1:{}", r.port)),
            "the message names the target: {}",
            e.message
        );
    }
    for name in ["imap_tls", "pop3_tls", "smtp_starttls"] {
        proxy.wait_for_log(&format!(
            "Refused CONNECT method on port {}",
            w.stack.port(name)
        ));
    }

    let e = c
        .fetch("alice", &over(Protocol::Imap), &nc())
        .await
        .expect_err("IMAP is refused");
    assert_code(&e, "MC-PROXY-PORT-DENIED");
    let e = c
        .send("alice", &message("never"), None, &nc())
        .await
        .expect_err("SMTP is refused");
    assert_code(&e, "MC-PROXY-PORT-DENIED");
    assert_no_password_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_http_proxy_password_is_refused_as_authentication() {
    let w = world().await;
    let proxy = tinyproxy_with_auth(None);
    let wrong = format!(
        "http://{PROXY_USER}:{WRONG_PASSWORD}@127.0.0.1:{}",
        proxy.port()
    );

    // The mail connections of an account connected before.
    w.connected_directly("wrong.db", "alice", serde_json::json!({}))
        .await;
    let c = w.client("wrong.db", Some(&wrong), &[]);
    let via = format!("http proxy 127.0.0.1:{}", proxy.port());
    let report = test(&c, "alice").await;
    assert_all_failed(&report, "MC-PROXY-AUTH-REQUIRED", &via);
    let e = c
        .fetch("alice", &over(Protocol::Pop3), &nc())
        .await
        .expect_err("POP3 is refused");
    assert_code(&e, "MC-PROXY-AUTH-REQUIRED");
    for t in w.mail_targets() {
        proxy.wait_for_connect(&t);
    }
    drop(c);

    // The sign-in's requests (tinyproxy 1.11 answers wrong credentials with 401).
    let c = w.client("wrong-connect.db", Some(&wrong), &[]);
    let e = w
        .connect(&c, "alice", "device_code", serde_json::json!({}))
        .await
        .expect_err("the proxy refuses the password");
    proxy.wait_for_connect(&w.idp());
    assert_code(&e, "MC-PROXY-AUTH-REQUIRED");
    assert_no_password_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_socks_password_is_refused_as_authentication() {
    let w = world().await;
    let proxy = dante_with_auth();
    let wrong = format!(
        "socks5h://{SOCKS_USER}:{WRONG_PASSWORD}@127.0.0.1:{}",
        proxy.port()
    );

    let c = w.client("wrong-socks-connect.db", Some(&wrong), &[]);
    let e = w
        .connect(&c, "alice", "device_code", serde_json::json!({}))
        .await
        .expect_err("Dante refuses the password");
    assert_code(&e, "MC-PROXY-AUTH-REQUIRED");
    proxy.wait_for_log(&format!(
        "system password authentication failed for user \"{SOCKS_USER}\""
    ));
    drop(c);

    w.connected_directly("wrong-socks.db", "alice", serde_json::json!({}))
        .await;
    let c = w.client("wrong-socks.db", Some(&wrong), &[]);
    let via = format!("socks5 proxy 127.0.0.1:{}", proxy.port());
    let report = test(&c, "alice").await;
    assert_all_failed(&report, "MC-PROXY-AUTH-REQUIRED", &via);
    let e = c
        .send("alice", &message("never"), None, &nc())
        .await
        .expect_err("SMTP is refused");
    assert_code(&e, "MC-PROXY-AUTH-REQUIRED");
    assert!(
        proxy.connects().is_empty(),
        "Dante opened no session: {:?}",
        proxy.connects()
    );
    assert_no_password_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_for_a_proxy_that_needs_them() {
    let w = world().await;
    w.connected_directly("no-creds.db", "alice", serde_json::json!({}))
        .await;

    // tinyproxy: 407 Proxy Authentication Required.
    let tiny = tinyproxy_with_auth(None);
    let c = w.client("no-creds-connect.db", Some(&tiny.url()), &[]);
    let e = w
        .connect(&c, "alice", "device_code", serde_json::json!({}))
        .await
        .expect_err("the proxy wants credentials");
    assert_code(&e, "MC-PROXY-AUTH-REQUIRED");
    drop(c);
    let c = w.client("no-creds.db", Some(&tiny.url()), &[]);
    let report = test(&c, "alice").await;
    assert_all_failed(
        &report,
        "MC-PROXY-AUTH-REQUIRED",
        &format!("http proxy 127.0.0.1:{}", tiny.port()),
    );
    drop(c);

    // Dante: no acceptable authentication method (05 FF).
    let dante = dante_with_auth();
    let c = w.client("no-creds-socks-connect.db", Some(&dante.url()), &[]);
    let e = w
        .connect(&c, "alice", "device_code", serde_json::json!({}))
        .await
        .expect_err("Dante wants credentials");
    assert_code(&e, "MC-PROXY-AUTH-REQUIRED");
    drop(c);
    let c = w.client("no-creds.db", Some(&dante.url()), &[]);
    let report = test(&c, "alice").await;
    assert_all_failed(
        &report,
        "MC-PROXY-AUTH-REQUIRED",
        &format!("socks5 proxy 127.0.0.1:{}", dante.port()),
    );
    assert!(dante.connects().is_empty(), "{:?}", dante.connects());
    assert_no_password_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_proxy_listening_and_a_server_the_proxy_cannot_reach() {
    let w = world().await;
    w.connected_directly("unreachable.db", "alice", serde_json::json!({}))
        .await;

    // Nobody listens on the proxy's port (with a password in the URL, kept out of the messages).
    for scheme in ["http", "socks5"] {
        let port = closed_port();
        let url = format!("{scheme}://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{port}");
        let c = w.client(&format!("dead-{scheme}.db"), Some(&url), &[]);
        let e = w
            .connect(&c, "alice", "device_code", serde_json::json!({}))
            .await
            .expect_err("no proxy answers");
        assert_code(&e, "MC-PROXY-UNREACHABLE");
        drop(c);
        let c = w.client("unreachable.db", Some(&url), &[]);
        let report = test(&c, "alice").await;
        assert_all_failed(
            &report,
            "MC-PROXY-UNREACHABLE",
            &format!("{scheme} proxy 127.0.0.1:{port}"),
        );
        let e = c
            .fetch("alice", &over(Protocol::Imap), &nc())
            .await
            .expect_err("no proxy answers");
        assert_code(&e, "MC-PROXY-UNREACHABLE");
    }

    // The proxies answer, the server does not: tinyproxy's 500, Dante's reply 5.
    let dead = closed_port();
    let mut servers = w.stack.servers();
    servers["imap"]["port"] = dead.into();
    w.connected_directly(
        "dead-server.db",
        "alice",
        serde_json::json!({"servers": servers}),
    )
    .await;
    let tiny = tinyproxy_with_auth(None);
    let dante = dante_with_auth();
    for (url, path) in [
        (
            tiny.url_with_credentials(),
            format!("http proxy 127.0.0.1:{}", tiny.port()),
        ),
        (
            dante.url_with_credentials(),
            format!("socks5 proxy 127.0.0.1:{}", dante.port()),
        ),
    ] {
        let c = w.client("dead-server.db", Some(&url), &[]);
        let report = test(&c, "alice").await;
        let j = json(&report);
        let imap = result(&report, Protocol::Imap);
        assert!(!imap.ok, "{j}");
        assert_eq!(imap.path, path, "{j}");
        assert_eq!(
            imap.error.as_ref().expect("error").code,
            "MC-PROXY-TARGET-UNREACHABLE",
            "{j}"
        );
        assert!(result(&report, Protocol::Pop3).ok, "{j}");
        assert!(result(&report, Protocol::Smtp).ok, "{j}");
        let e = c
            .fetch("alice", &over(Protocol::Imap), &nc())
            .await
            .expect_err("the server is down");
        assert_code(&e, "MC-PROXY-TARGET-UNREACHABLE");
    }
    tiny.wait_for_connect(&format!("127.0.0.1:{dead}"));
    dante.wait_for_log("remote peer error");

    // The sign-in to an identity provider the proxy cannot reach (Dante, then tinyproxy's 500).
    let dead_idp = closed_port();
    let mut reg = desktop(&w.env.emulator);
    reg["authority_host"] = format!("https://127.0.0.1:{dead_idp}").into();
    for url in [dante.url_with_credentials(), tiny.url_with_credentials()] {
        let c = w.client("dead-idp.db", Some(&url), &[]);
        let e = connected(&c, reg.clone(), "alice", ALICE)
            .flow("device_code")
            .user(w.user())
            .refused()
            .await;
        assert_code(&e, "MC-PROXY-TARGET-UNREACHABLE");
    }
    tiny.wait_for_connect(&format!("127.0.0.1:{dead_idp}"));
    assert_no_password_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_goes_direct_around_a_proxy_that_denies_its_port_while_smtp_goes_through() {
    let w = world().await;
    let emu_port = w.env.emulator.local_addr().port();
    let smtp_port = w.stack.port("smtp_starttls");
    // The proxy allows the identity provider and SMTP submission, not IMAP's port nor POP3's.
    let proxy = tinyproxy_with_auth(Some(vec![443, emu_port, smtp_port]));
    let option = serde_json::json!({
        "url": proxy.url(),
        "username": PROXY_USER,
        "password": PROXY_PASSWORD,
        "imap": "direct",
    })
    .to_string();
    let c = w.client("override.db", Some(&option), &[]);
    w.connected(&c, "alice", "device_code", serde_json::json!({}))
        .await;
    proxy.wait_for_connect(&w.idp());

    let via = format!("http proxy 127.0.0.1:{}", proxy.port());
    let report = test(&c, "alice").await;
    let j = json(&report);
    let imap = result(&report, Protocol::Imap);
    assert!(imap.ok, "{j}");
    assert_eq!(imap.path, "direct", "{j}");
    let smtp = result(&report, Protocol::Smtp);
    assert!(smtp.ok, "{j}");
    assert_eq!(smtp.path, via, "{j}");
    // POP3 has no override: through the proxy, which denies its port.
    let pop3 = result(&report, Protocol::Pop3);
    assert!(!pop3.ok, "{j}");
    assert_eq!(pop3.path, via, "{j}");
    assert_eq!(
        pop3.error.as_ref().expect("error").code,
        "MC-PROXY-PORT-DENIED",
        "{j}"
    );

    let accepted = c
        .send("alice", &message("override-1"), None, &nc())
        .await
        .expect("send through the proxy");
    assert!(accepted.starts_with("250"), "{accepted}");
    fetched(&c, "alice", over(Protocol::Imap), "override-1").await;

    proxy.wait_for_connect(&w.target("smtp_starttls"));
    proxy.wait_for_connect(&w.target("pop3_tls"));
    let imap_target = w.target("imap_tls");
    assert!(
        !proxy.connects().contains(&imap_target),
        "IMAP went through the proxy: {:?}",
        proxy.connects()
    );
    assert_no_password_logged();
}

// ----- TLS inspection --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_inspecting_proxy_is_named_and_its_ca_makes_it_work() {
    let w = world().await;
    let upstream = [w.stack.ca_pem(), w.emu_ca.clone()].concat();
    let proxy = InspectingProxy::start(&upstream);
    let issuer = proxy.issuer_name();
    assert!(
        issuer.starts_with("CN=Contoso TLS Inspection CA"),
        "{issuer}"
    );
    let via = format!("http proxy 127.0.0.1:{}", proxy.port());
    // Implicit TLS everywhere (the inspecting proxy starts TLS at once; STARTTLS it cannot).
    let mut servers = w.stack.servers();
    servers["smtp"] = serde_json::json!({
        "host": "127.0.0.1", "port": w.stack.port("smtp_tls"), "security": "tls"
    });
    let fields = serde_json::json!({"servers": servers});

    // The sign-in through it, without its CA: the identity provider's certificate is its.
    let c = w.client("inspected-connect.db", Some(&proxy.url()), &[]);
    let e = w
        .connect(&c, "alice", "device_code", fields.clone())
        .await
        .expect_err("the inspection CA is not trusted");
    assert_code(&e, "MC-TLS-INSPECTED");
    assert_eq!(
        e.evidence().certificate_issuer.as_deref(),
        Some(issuer.as_str()),
        "{e}"
    );
    assert!(e.to_string().contains("Contoso TLS Inspection CA"), "{e}");
    drop(c);

    // The mail connections of an account signed in directly.
    let option = serde_json::json!({"url": proxy.url(), "https": "direct"}).to_string();
    w.connected_directly("inspected.db", "alice", fields.clone())
        .await;
    let c = w.client("inspected.db", Some(&option), &[]);
    let report = test(&c, "alice").await;
    assert_all_failed(&report, "MC-TLS-INSPECTED", &via);
    for r in &report.results {
        let e = r.error.as_ref().expect("error");
        assert_eq!(
            e.certificate_issuer.as_deref(),
            Some(issuer.as_str()),
            "{}",
            json(&report)
        );
    }
    let e = c
        .fetch("alice", &over(Protocol::Imap), &nc())
        .await
        .expect_err("IMAP refuses the inspected certificate");
    assert_code(&e, "MC-TLS-INSPECTED");
    assert_eq!(
        e.evidence().certificate_issuer.as_deref(),
        Some(issuer.as_str()),
        "{e}"
    );
    assert!(e.to_string().contains("Contoso TLS Inspection CA"), "{e}");
    let failures = wait_for("the proxy to note the refused handshakes", || {
        let f = proxy.handshake_failures();
        (f.len() >= 4).then_some(f)
    });
    assert!(
        failures.iter().all(|f| f.contains("UnknownCA")),
        "{failures:?}"
    );
    drop(c);

    // With the inspection CA among the extra CAs, everything works through it, sign-in included;
    // and the firewall, which decrypts, sees the token (what the diagnosis warns about).
    let c = w.client("inspected-ok.db", Some(&proxy.url()), &[proxy.ca_pem()]);
    w.connected(&c, "alice", "device_code", fields.clone())
        .await;
    let report = test(&c, "alice").await;
    assert_all_ok_via(&report, &via);
    let accepted = c
        .send("alice", &message("inspected-1"), None, &nc())
        .await
        .expect("send through the inspecting proxy");
    assert!(accepted.starts_with("250"), "{accepted}");
    fetched(&c, "alice", over(Protocol::Imap), "inspected-1").await;
    let token = c.access_token("alice", &nc()).await.expect("token");
    use secrecy::ExposeSecret;
    assert!(proxy.contains(token.token.expose_secret().as_bytes()));
    let connects = proxy.connects();
    for t in [
        w.idp(),
        w.target("imap_tls"),
        w.target("pop3_tls"),
        w.target("smtp_tls"),
    ] {
        assert!(connects.contains(&t), "{t} not in {connects:?}");
    }
    assert_no_password_logged();
}
