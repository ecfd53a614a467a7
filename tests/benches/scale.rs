//! Scale benchmark (issue 8), with peers measured in the same run against the same emulator and
//! the same mail servers:
//! 1. `mc_token_get` through the C ABI (the cdylib, dlopened) vs MSAL Python
//!    `acquire_token_silent` (in-memory cache, and msal-extensions' file-persisted cache): cached
//!    token and forced refresh, per-call p50/p99 and calls/s;
//! 2. refreshing 10,000 accounts whose access tokens expired (core `Client`, bounded concurrency)
//!    vs the bare HTTP exchange and MSAL `acquire_token_by_refresh_token`: refreshes/s, peak RSS;
//! 3. memory per idle account (N = 1,000 and 10,000) vs MSAL's token cache holding N accounts;
//! 4. the size of `libmailconnect.so` (stripped and unstripped; also built with the `dist` profile
//!    release packages ship, with a per-crate table from `size.sh`) and `libmailconnect.a`;
//! 5. time from `dlopen` to the first answered call in a fresh process;
//! 6. IMAP fetch of 10,000 messages: mailconnect directly, imaplib directly, and imaplib through
//!    email-oauth2-proxy (`emailproxy`), all against the sandbox's real Dovecot.
//!
//! The emulator runs in a separate process serving HTTPS with a throw-away CA (MSAL only accepts
//! `https` authorities); the measured clients (core, C ABI, MSAL, emailproxy) all reach it over
//! TLS. Dovecot's introspection goes through a plain-HTTP forwarder beside the emulator.
//!
//! ```text
//! bash tests/benches/peers.sh
//! CARGO_TARGET_DIR=target-bench CARGO_PROFILE_BENCH_STRIP=false \
//!     cargo bench -p mailconnect-tests --bench scale [-- SECTION...]
//! ```
//! Sections: `access_token refresh idle size dlopen imap` (default: all); `MC_BENCH_REFRESH_N`
//! changes the 10,000 of section 2 for a quick look. Needs root (the Dovecot/Postfix stack),
//! openssl, cc, binutils (strip, readelf); hyperfine is optional. Measuring processes
//! (refresh, idle) are this binary started again with `--child ...`, so their RSS is theirs alone.
//! A benchmark, not a test: it checks that every call succeeded, never a time.

use std::ffi::{c_char, c_void, CStr, CString};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailconnect_core::http::{HttpClient, HttpOptions};
use mailconnect_core::mail::FetchRequest;
use mailconnect_core::store::{KeySource, SqliteStore, TokenRecord, TokenSecrets, TokenStore};
use mailconnect_core::tls::TlsOptions;
use mailconnect_core::{CancellationToken, Client, ClientOptions, ConnectOptions, Protocol};
use mailconnect_sandbox::{EmulatorConfig, ScriptedBrowser, TlsConfig};
use mailconnect_tests::*;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

const SECTIONS: [&str; 6] = ["access_token", "refresh", "idle", "size", "dlopen", "imap"];
/// Accounts refreshed in section 2 (`MC_BENCH_REFRESH_N` overrides it for quick looks).
fn refresh_n() -> usize {
    std::env::var("MC_BENCH_REFRESH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}
/// Refreshes in flight at once (every peer gets the same bound).
const CONCURRENCY: usize = 16;
/// Cached-token calls timed per peer in section 1.
const CACHED_CALLS: usize = 20_000;
/// Cached calls per thread with two threads at once.
const TOGETHER_CALLS: usize = 500_000;
/// Forced refreshes timed per peer in section 1.
const REFRESH_CALLS: usize = 300;
/// Processes started per variant in section 5.
const DLOPEN_RUNS: usize = 100;
/// Messages fetched in section 6.
const IMAP_MESSAGES: usize = 10_000;

// ----- small helpers ------------------------------------------------------------------------------

fn status_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{field} not in /proc/self/status"))
}

/// User + system CPU seconds of a process (`/proc/PID/stat`, clock ticks of 1/100 s).
fn cpu_secs(pid: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    let after = s.rsplit_once(')').map(|(_, r)| r).expect("stat");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) are utime and stime; `after` starts at field 3.
    let tick = |i: usize| f[i - 3].parse::<f64>().expect("ticks") / 100.0;
    tick(14) + tick(15)
}

/// Nearest-rank percentile of sorted values.
fn pct<T: Copy>(sorted: &[T], q: f64) -> T {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// "p50 · p99 · calls/s" of per-call latencies (ns); calls/s = calls / time spent in calls.
fn latency(mut ns: Vec<u64>) -> String {
    ns.sort_unstable();
    let total: u64 = ns.iter().sum();
    format!(
        "p50 {} · p99 {} · {:.0}/s",
        us(pct(&ns, 0.50)),
        us(pct(&ns, 0.99)),
        ns.len() as f64 / (total as f64 / 1e9)
    )
}

fn us(ns: u64) -> String {
    if ns >= 10_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else if ns >= 1_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.1} µs", ns as f64 / 1e3)
    }
}

fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

fn bytes(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.2} MiB", b as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

fn print_table(title: &str, header: &[&str], rows: &[Vec<String>]) {
    println!("\n### {title}\n");
    println!("| {} |", header.join(" | "));
    println!("|{}", "---|".repeat(header.len()));
    for r in rows {
        println!("| {} |", r.join(" | "));
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// Run a command and parse the last line of its stdout as JSON; fail loudly with its stderr.
fn json_out(cmd: &mut Command) -> Value {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("JSON line")
}

fn ns_list(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|x| x.as_u64().expect("ns"))
        .collect()
}

fn kb(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

/// The peers' virtualenv (tests/benches/peers.sh).
fn peers_python() -> PathBuf {
    let dir = std::env::var_os("MC_BENCH_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target-bench/peers"));
    let py = dir.join("venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run `bash tests/benches/peers.sh` first (MSAL, msal-extensions, emailproxy)",
        py.display()
    );
    py
}

fn peers_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/scale_peers.py")
}

/// A built artifact of this profile: `target/<profile>/NAME` or `target/<profile>/deps/NAME`.
fn artifact(name: &str) -> PathBuf {
    let t = target_dir();
    [t.join(name), t.join("deps").join(name)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{name} not found in {} or deps/", t.display()))
}

fn run_ok_quiet(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ----- the emulator process -----------------------------------------------------------------------

/// A throw-away CA and a certificate for 127.0.0.1/localhost signed by it.
struct Certs {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn make_certs(dir: &Path) -> Certs {
    let (ca, cert, key) = mailconnect_tests::localhost_certs(dir);
    Certs { ca, cert, key }
}

/// The emulator in its own process (this binary, `--child emulator`); stopped on drop.
struct EmulatorProcess {
    child: Child,
    base_url: String,
    /// Plain-HTTP introspection URL for Dovecot (forwarded to the emulator over TLS).
    introspect_plain: String,
}

impl EmulatorProcess {
    fn start(certs: &Certs) -> EmulatorProcess {
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .args(["--child", "emulator"])
            .arg(&certs.cert)
            .arg(&certs.key)
            .arg(&certs.ca)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("emulator process");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("emulator line");
        let v: Value = serde_json::from_str(&line).expect("emulator JSON line");
        EmulatorProcess {
            child,
            base_url: v["base_url"].as_str().expect("base_url").into(),
            introspect_plain: v["introspect_plain"].as_str().expect("url").into(),
        }
    }

    fn authority(&self) -> String {
        format!("{}/organizations", self.base_url)
    }

    /// Successful refresh-token grants so far (the emulator's own count).
    async fn refreshes(&self, browser: &ScriptedBrowser) -> u64 {
        let f = browser
            .fetch(&format!("{}/_sandbox/stats", self.base_url), None)
            .await
            .expect("stats");
        let v: Value = serde_json::from_str(&f.body).expect("stats JSON");
        v["tokens_issued"]["refresh_token"].as_u64().unwrap_or(0)
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

async fn child_emulator(cert: &str, key: &str, ca: &str) {
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::rustls::pki_types::ServerName;
    let mut cfg = EmulatorConfig::sandbox();
    cfg.tokens.device_poll_interval_secs = 1;
    cfg.tls = Some(TlsConfig {
        cert_pem_path: cert.into(),
        key_pem_path: key.into(),
    });
    let emu = mailconnect_sandbox::Emulator::start(cfg)
        .await
        .expect("emulator");
    let tls = mailconnect_core::tls::client_config(&TlsOptions {
        extra_ca_pem: vec![std::fs::read(ca).expect("CA")],
        danger_accept_invalid_certs: false,
    })
    .expect("TLS config");
    let connector = tokio_rustls::TlsConnector::from(tls);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("forwarder");
    let plain = listener.local_addr().expect("addr");
    let target = emu.local_addr();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let connector = connector.clone();
            tokio::spawn(async move {
                let Ok(tcp) = TcpStream::connect(target).await else {
                    return;
                };
                let name = ServerName::try_from("127.0.0.1").expect("IP name");
                if let Ok(mut tls) = connector.connect(name, tcp).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut tls).await;
                }
            });
        }
    });
    println!(
        "{}",
        json!({"base_url": emu.base_url(), "introspect_plain": format!("http://{plain}/introspect")})
    );
    std::io::stdout().flush().expect("flush");
    // Serve until the parent closes our stdin.
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin()
            .read_line(&mut sink)
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            sink.clear();
        }
    })
    .await;
}

// ----- store seeding ----------------------------------------------------------------------------------

fn client_options(store: &Path, cas: &[&Path]) -> ClientOptions {
    let mut o = ClientOptions::new(store);
    o.http.no_proxy = true;
    o.http.timeout = Duration::from_secs(60);
    o.http.tls.extra_ca_pem = cas.iter().map(|p| std::fs::read(p).expect("CA")).collect();
    o
}

fn key_of(store: &Path) -> KeySource {
    let mut p = store.as_os_str().to_owned();
    p.push(".key");
    KeySource::File(PathBuf::from(p))
}

fn registration(base_url: &str) -> String {
    json!({"id": "desktop", "provider": "microsoft", "tenant": "organizations",
           "authority_host": base_url, "client_id": DESKTOP_APP})
    .to_string()
}

/// A store holding `n` accounts (delegates: alice opens shared mailboxes `mNNNNN@example.test`),
/// each with the token record of alice's real sign-in. `expired`: access tokens expired a minute
/// ago (the refresh token is alice's real one, so every refresh succeeds); otherwise valid for an
/// hour, with distinct token strings per account.
fn seed_store(path: &Path, base_url: &str, template: &TokenRecord, n: usize, expired: bool) {
    let store = Arc::new(SqliteStore::open(path, &key_of(path)).expect("store"));
    let client =
        Client::with_store(store.clone(), client_options(path, &[])).expect("seeding client");
    client
        .put_registration_json(&registration(base_url))
        .expect("registration");
    let t = now();
    let at = template.secrets.access_token.clone().expect("AT");
    let rt = template.secrets.refresh_token.clone().expect("RT");
    for i in 0..n {
        let id = format!("m{i:05}");
        client
            .put_account_json(
                &json!({"id": id, "mailbox": format!("{id}@example.test"),
                        "login": "alice@example.test", "registration": "desktop",
                        "flow": "device_code"})
                .to_string(),
            )
            .expect("account");
        let mut meta = template.meta.clone();
        let tag = format!("{i:08}");
        let (at, rt) = if expired {
            meta.access_issued_at = Some(t - 3960);
            meta.access_expires_at = Some(t - 60);
            (format!("{}{tag}", &at[..at.len() - 8]), rt.clone())
        } else {
            meta.access_issued_at = Some(t);
            meta.access_expires_at = Some(t + 3600);
            (
                format!("{}{tag}", &at[..at.len() - 8]),
                format!("{}{tag}", &rt[..rt.len() - 8]),
            )
        };
        let rec = TokenRecord {
            account_id: id,
            version: 0,
            meta,
            secrets: TokenSecrets {
                refresh_token: Some(rt),
                access_token: Some(at),
                graph_access_token: None,
            },
        };
        assert!(store.save_tokens(&rec, 0).expect("save").is_some());
    }
}

// ----- child processes (measured alone) ---------------------------------------------------------

async fn child_refresh(store: &str, ca: &str, n: usize) {
    let client = Client::open(client_options(Path::new(store), &[Path::new(ca)])).expect("client");
    let base = status_kb("VmRSS");
    // At most CONCURRENCY tasks exist at once: finished ones are joined (and freed) before the
    // next starts, so the process holds no more than the work in flight.
    let mut set = tokio::task::JoinSet::new();
    let mut ok = 0;
    let mut first_err = None;
    let mut tally = |r: Result<Result<(), String>, tokio::task::JoinError>| match r.expect("task") {
        Ok(()) => ok += 1,
        Err(e) => {
            first_err.get_or_insert(e);
        }
    };
    let t = Instant::now();
    for i in 0..n {
        if set.len() >= CONCURRENCY {
            tally(set.join_next().await.expect("a task"));
        }
        let c = client.clone();
        set.spawn(async move {
            c.access_token(&format!("m{i:05}"), &CancellationToken::new())
                .await
                .map(drop)
                .map_err(|e| e.message().to_string())
        });
    }
    while let Some(r) = set.join_next().await {
        tally(r);
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"secs": secs, "ok": ok, "first_error": first_err, "rss_base_kb": base,
               "hwm_kb": status_kb("VmHWM"), "rss_end_kb": status_kb("VmRSS"),
               "threads": status_kb("Threads"), "cpu_s": cpu_secs("self"),
               "rss_anon_kb": status_kb("RssAnon"), "rss_file_kb": status_kb("RssFile"),
               "rss_shmem_kb": status_kb("RssShmem")})
    );
}

/// The bare HTTP exchange: the same reqwest/rustls client POSTs the refresh grant and parses the
/// JSON answer; no store, no encryption, no leases.
async fn child_http_floor(token_url: &str, ca: &str, n: usize) {
    let rt = std::env::var("MC_BENCH_RT").expect("MC_BENCH_RT");
    let http = HttpClient::new(&HttpOptions {
        no_proxy: true,
        timeout: Duration::from_secs(60),
        tls: TlsOptions {
            extra_ca_pem: vec![std::fs::read(ca).expect("CA")],
            danger_accept_invalid_certs: false,
        },
        ..HttpOptions::default()
    })
    .expect("http");
    let url = url::Url::parse(token_url).expect("url");
    let scope = "https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/POP.AccessAsUser.All https://outlook.office.com/SMTP.Send offline_access openid profile email";
    let base = status_kb("VmRSS");
    let mut set = tokio::task::JoinSet::new();
    let mut ok = 0;
    let t = Instant::now();
    for _ in 0..n {
        if set.len() >= CONCURRENCY {
            ok += set.join_next().await.expect("a task").expect("task") as usize;
        }
        let (http, url, rt) = (http.clone(), url.clone(), rt.clone());
        set.spawn(async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("client_id", DESKTOP_APP),
                ("refresh_token", rt.as_str()),
                ("scope", scope),
            ];
            http.post_form(&url, &form, None)
                .await
                .ok()
                .filter(|r| r.status == 200)
                .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok())
                .is_some_and(|v| v["access_token"].is_string())
        });
    }
    while let Some(r) = set.join_next().await {
        ok += r.expect("task") as usize;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"secs": secs, "ok": ok, "rss_base_kb": base, "hwm_kb": status_kb("VmHWM"),
               "rss_end_kb": status_kb("VmRSS"), "threads": status_kb("Threads"),
               "cpu_s": cpu_secs("self")})
    );
}

/// RSS of a client over a store of `n` connected accounts: after opening it, and after one
/// (cached) access token per account.
async fn child_idle(store: &str, n: usize) {
    let before = status_kb("VmRSS");
    let client = Client::open(client_options(Path::new(store), &[])).expect("client");
    let opened = status_kb("VmRSS");
    let nc = CancellationToken::new();
    for i in 0..n {
        client
            .access_token(&format!("m{i:05}"), &nc)
            .await
            .expect("cached token");
    }
    println!(
        "{}",
        json!({"before_kb": before, "opened_kb": opened, "touched_kb": status_kb("VmRSS")})
    );
}

fn child(args: &[String]) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let a = |i: usize| args.get(i).map(String::as_str).expect("child argument");
    match a(0) {
        "emulator" => rt.block_on(child_emulator(a(1), a(2), a(3))),
        "refresh" => rt.block_on(child_refresh(a(1), a(2), a(3).parse().expect("n"))),
        "http-floor" => rt.block_on(child_http_floor(a(1), a(2), a(3).parse().expect("n"))),
        "idle" => rt.block_on(child_idle(a(1), a(2).parse().expect("n"))),
        other => panic!("unknown child {other}"),
    }
}

// ----- the C ABI, dlopened ------------------------------------------------------------------------

type OpenFn = unsafe extern "C" fn(*const c_char, *mut *mut c_void) -> i32;
/// `mc_token_get(client, account_id, cancel, out_token)`.
type TokenFn =
    unsafe extern "C" fn(*mut c_void, *const c_char, *mut c_void, *mut *mut c_char) -> i32;
type StrFreeFn = unsafe extern "C" fn(*mut c_char);
type ClientFreeFn = unsafe extern "C" fn(*mut c_void);
type MsgFn = unsafe extern "C" fn() -> *const c_char;

struct Abi {
    _lib: libloading::Library,
    open: OpenFn,
    token: TokenFn,
    str_free: StrFreeFn,
    client_free: ClientFreeFn,
    last_message: MsgFn,
}

impl Abi {
    fn load(path: &Path) -> Abi {
        // SAFETY: loading our own library; the symbols have the signatures of include/mailconnect.h.
        unsafe {
            let lib = libloading::Library::new(path).expect("dlopen libmailconnect.so");
            let open = *lib.get::<OpenFn>(b"mc_client_open\0").expect("symbol");
            let token = *lib.get::<TokenFn>(b"mc_token_get\0").expect("symbol");
            let str_free = *lib.get::<StrFreeFn>(b"mc_string_free\0").expect("symbol");
            let client_free = *lib
                .get::<ClientFreeFn>(b"mc_client_free\0")
                .expect("symbol");
            let last_message = *lib.get::<MsgFn>(b"mc_error_message_get\0").expect("symbol");
            Abi {
                _lib: lib,
                open,
                token,
                str_free,
                client_free,
                last_message,
            }
        }
    }

    fn check(&self, rc: i32, what: &str) {
        if rc != 0 {
            // SAFETY: never NULL, valid until the next call on this thread.
            let msg = unsafe { CStr::from_ptr((self.last_message)()) };
            panic!("{what}: {rc} {}", msg.to_string_lossy());
        }
    }

    /// One `mc_token_get` call, timed (ns); the token is checked and freed.
    fn timed_token(&self, client: *mut c_void, id: &CStr) -> u64 {
        let mut out: *mut c_char = std::ptr::null_mut();
        let t = Instant::now();
        // SAFETY: live client, NUL-terminated id, writable out pointer.
        let rc = unsafe { (self.token)(client, id.as_ptr(), std::ptr::null_mut(), &mut out) };
        let ns = t.elapsed().as_nanos() as u64;
        self.check(rc, "mc_token_get");
        // SAFETY: a string from the library, freed once.
        unsafe {
            assert!(CStr::from_ptr(out).to_bytes().len() > 100);
            (self.str_free)(out);
        }
        ns
    }
}

/// Make the stored access token of `id` look expired (outside the timed call).
fn expire(store: &SqliteStore, id: &str) {
    let rec = store.load_tokens(id).expect("load").expect("record");
    let mut meta = rec.meta.clone();
    let t = now();
    meta.access_issued_at = Some(t - 3960);
    meta.access_expires_at = Some(t - 60);
    let new = TokenRecord {
        account_id: rec.account_id.clone(),
        version: 0,
        meta,
        secrets: TokenSecrets {
            refresh_token: rec.secrets.refresh_token.clone(),
            access_token: rec.secrets.access_token.clone(),
            graph_access_token: rec.secrets.graph_access_token.clone(),
        },
    };
    assert!(store
        .save_tokens(&new, rec.version)
        .expect("save")
        .is_some());
}

// ----- the run ----------------------------------------------------------------------------------------

struct Run {
    rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    certs: Certs,
    emu: EmulatorProcess,
    browser: Arc<ScriptedBrowser>,
    py: PathBuf,
    /// The parent's core client on `main.db` (alice connected).
    client: Client,
    main_store: PathBuf,
}

impl Run {
    fn python(&self, sub: &str) -> Command {
        let mut c = Command::new(&self.py);
        c.arg(peers_script())
            .arg(sub)
            .env("CA", &self.certs.ca)
            .env("REQUESTS_CA_BUNDLE", &self.certs.ca)
            .env("SSL_CERT_FILE", &self.certs.ca)
            .env("AUTHORITY", self.emu.authority())
            .env("CLIENT_ID", DESKTOP_APP)
            .env("TENANT", TENANT);
        c
    }

    fn record(&self, id: &str) -> TokenRecord {
        SqliteStore::open(&self.main_store, &key_of(&self.main_store))
            .expect("store")
            .load_tokens(id)
            .expect("load")
            .expect("record")
    }

    fn refreshes(&self) -> u64 {
        self.rt.block_on(self.emu.refreshes(&self.browser))
    }
}

fn connect(run: &Run, id: &str, user: &str, servers: Option<Value>) {
    let mut acc =
        json!({"id": id, "mailbox": user, "registration": "desktop", "flow": "device_code"});
    if let Some(s) = servers {
        acc["servers"] = s;
    }
    run.client
        .put_account_json(&acc.to_string())
        .expect("account");
    let u = ScriptedUser::with_browser(run.browser.clone(), sign_in_as(user));
    run.rt
        .block_on(
            run.client
                .connect(id, ConnectOptions::default(), &u, &CancellationToken::new()),
        )
        .expect("connect");
}

fn section_access_token(run: &Run) {
    let lib = artifact("libmailconnect.so");
    let abi = Abi::load(&lib);
    let opts = CString::new(
        json!({"store": run.main_store, "extra_ca_file": run.certs.ca, "no_proxy": true})
            .to_string(),
    )
    .expect("json");
    let mut client: *mut c_void = std::ptr::null_mut();
    // SAFETY: NUL-terminated options, writable out pointer.
    abi.check(
        unsafe { (abi.open)(opts.as_ptr(), &mut client) },
        "mc_client_open",
    );
    let id = CString::new("alice").expect("id");
    for _ in 0..100 {
        abi.timed_token(client, &id);
    }
    let t = Instant::now();
    let cached: Vec<u64> = (0..CACHED_CALLS)
        .map(|_| abi.timed_token(client, &id))
        .collect();
    let cached_wall = t.elapsed();
    // Two host threads asking at once (the token path's target: a million calls a second on two
    // threads together), each call timed; the rate is calls over the wall time of both.
    let shared = client as usize;
    let t = Instant::now();
    let together: Vec<Vec<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (abi, id) = (&abi, &id);
                s.spawn(move || {
                    (0..TOGETHER_CALLS)
                        .map(|_| abi.timed_token(shared as *mut c_void, id))
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let together_wall = t.elapsed();
    let together_rate = (2 * TOGETHER_CALLS) as f64 / together_wall.as_secs_f64();
    let together: Vec<u64> = together.into_iter().flatten().collect();
    let store = SqliteStore::open(&run.main_store, &key_of(&run.main_store)).expect("store");
    let before = run.refreshes();
    let refresh: Vec<u64> = (0..REFRESH_CALLS)
        .map(|_| {
            expire(&store, "alice");
            abi.timed_token(client, &id)
        })
        .collect();
    let ours_refreshes = run.refreshes() - before;
    assert_eq!(
        ours_refreshes, REFRESH_CALLS as u64,
        "every timed call refreshed"
    );
    // SAFETY: from mc_client_open, freed once.
    unsafe { (abi.client_free)(client) };

    // MSAL: device-code sign-in completed by the scripted browser, then the same loops.
    let mut py = run
        .python("access-token")
        .env("N_CACHED", CACHED_CALLS.to_string())
        .env("N_REFRESH", REFRESH_CALLS.to_string())
        .env("PERSIST_FILE", run.dir.path().join("msal-cache.json"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("MSAL peer");
    let mut lines = BufReader::new(py.stdout.take().expect("stdout")).lines();
    let first: Value =
        serde_json::from_str(&lines.next().expect("device line").expect("read")).expect("JSON");
    let before = run.refreshes();
    let outcome = run.rt.block_on(run.browser.complete_device_code(
        first["verification_uri"].as_str().expect("uri"),
        first["user_code"].as_str().expect("code"),
        &sign_in_as("alice@example.test"),
    ));
    outcome.expect("MSAL device sign-in");
    let result: Value =
        serde_json::from_str(&lines.next().expect("result line").expect("read")).expect("JSON");
    assert!(py.wait().expect("wait").success(), "MSAL peer failed");
    let msal_refreshes = run.refreshes() - before;
    assert_eq!(
        msal_refreshes,
        2 * REFRESH_CALLS as u64,
        "every forced MSAL refresh reached the emulator"
    );

    let msal_memory = ns_list(&result["memory"]["cached"]);
    let msal_rate = {
        let total: u64 = msal_memory.iter().sum();
        msal_memory.len() as f64 / (total as f64 / 1e9)
    };
    let rows = vec![
        vec![
            "cached token".into(),
            latency(cached.clone()),
            latency(msal_memory.clone()),
            latency(ns_list(&result["persisted"]["cached"])),
        ],
        vec![
            format!("cached token, 2 threads at once ({TOGETHER_CALLS} calls each)"),
            format!(
                "{} · {together_rate:.0}/s together ({:.1}× MSAL in-memory, one thread: the GIL)",
                latency(together.clone())
                    .rsplit_once(" · ")
                    .map(|(l, _)| l.to_string())
                    .unwrap_or_default(),
                together_rate / msal_rate
            ),
            "—".into(),
            "—".into(),
        ],
        vec![
            "expired → refresh (HTTPS to the emulator)".into(),
            latency(refresh),
            latency(ns_list(&result["memory"]["refresh"])),
            latency(ns_list(&result["persisted"]["refresh"])),
        ],
    ];
    print_table(
        &format!("1. Access token for a connected account ({CACHED_CALLS} cached calls, {REFRESH_CALLS} refreshes; p50 · p99 · calls per second of call time)"),
        &[
            "path",
            "mailconnect `mc_token_get` (C ABI, dlopen; SQLite + AES-GCM store)",
            "MSAL Python `acquire_token_silent` (in-memory cache)",
            "MSAL + msal-extensions `PersistedTokenCache` (file)",
        ],
        &rows,
    );
    println!(
        "\n(mailconnect: {CACHED_CALLS} cached calls took {:.2} s wall, loop included; the emulator counted {ours_refreshes} refreshes for mailconnect and {msal_refreshes} for MSAL)",
        cached_wall.as_secs_f64()
    );
}

fn section_refresh(run: &Run) {
    let n = refresh_n();
    let template = run.record("alice");
    let store = run.dir.path().join("refresh.db");
    let t = Instant::now();
    seed_store(&store, &run.emu.base_url, &template, n, true);
    eprintln!("seeded {n} accounts in {:.1} s", t.elapsed().as_secs_f64());
    let rt_secret = template.secrets.refresh_token.clone().expect("RT");
    let exe = std::env::current_exe().expect("exe");

    let emu_pid = run.emu.child.id().to_string();
    // Run one peer in its own process; also count the emulator's refreshes and CPU meanwhile.
    let measure = |cmd: &mut Command| {
        let (count0, cpu0) = (run.refreshes(), cpu_secs(&emu_pid));
        let v = json_out(cmd);
        eprintln!("refresh peer: {v}");
        let (count, cpu) = (run.refreshes() - count0, cpu_secs(&emu_pid) - cpu0);
        assert_eq!(v["ok"].as_u64(), Some(n as u64), "refreshes failed: {v}");
        assert_eq!(count, n as u64, "the emulator saw every refresh");
        (v, count, cpu)
    };
    let ours = measure(
        Command::new(&exe)
            .args(["--child", "refresh"])
            .arg(&store)
            .arg(&run.certs.ca)
            .arg(n.to_string()),
    );
    let floor = measure(
        Command::new(&exe)
            .args(["--child", "http-floor"])
            .arg(format!("{}/oauth2/v2.0/token", run.emu.authority()))
            .arg(&run.certs.ca)
            .arg(n.to_string())
            .env("MC_BENCH_RT", &rt_secret),
    );
    let msal = measure(
        run.python("refresh")
            .env("N", n.to_string())
            .env("CONC", CONCURRENCY.to_string())
            .env("MC_BENCH_RT", &rt_secret),
    );
    let per = |secs: f64| format!("{:.2} ms", secs * 1000.0 / n as f64);
    let row = |who: &str, (v, count, emu_cpu): &(Value, u64, f64)| {
        let secs = v["secs"].as_f64().expect("secs");
        vec![
            who.to_string(),
            format!("{:.0}/s", n as f64 / secs),
            format!("{secs:.1} s"),
            per(v["cpu_s"].as_f64().expect("cpu")),
            per(*emu_cpu),
            mib(kb(v, "hwm_kb")),
            format!(
                "{} / {}",
                mib(kb(v, "rss_base_kb")),
                mib(kb(v, "rss_end_kb"))
            ),
            kb(v, "threads").to_string(),
            count.to_string(),
        ]
    };
    print_table(
        &format!("2. Refreshing {n} accounts with expired access tokens, {CONCURRENCY} in flight (each in its own process)"),
        &["who", "refreshes/s", "wall", "client CPU per refresh", "emulator CPU per refresh", "peak RSS (VmHWM)", "RSS before / after the run", "threads at the end", "refreshes the emulator counted"],
        &[
            row("mailconnect core `Client::access_token` (SQLite store: lease, AES-GCM, compare-and-swap per account)", &ours),
            row("HTTP floor: the same reqwest/rustls client POSTing the grant, no store", &floor),
            row("MSAL Python `acquire_token_by_refresh_token` (thread pool, in-memory cache)", &msal),
        ],
    );
}

fn section_idle(run: &Run) {
    let template = run.record("alice");
    let exe = std::env::current_exe().expect("exe");
    let mut ours = Vec::new();
    for n in [0usize, 1_000, 10_000] {
        let store = run.dir.path().join(format!("idle-{n}.db"));
        seed_store(&store, &run.emu.base_url, &template, n, false);
        let v = json_out(
            Command::new(&exe)
                .args(["--child", "idle"])
                .arg(&store)
                .arg(n.to_string()),
        );
        let disk = ["", "-wal"]
            .iter()
            .filter_map(|s| {
                let mut p = store.as_os_str().to_owned();
                p.push(s);
                std::fs::metadata(PathBuf::from(p)).ok()
            })
            .map(|m| m.len())
            .sum::<u64>();
        ours.push((n, v, disk));
    }
    let at = template.secrets.access_token.clone().expect("AT");
    let rt = template.secrets.refresh_token.clone().expect("RT");
    let msal: Vec<(usize, Value)> = [0usize, 1_000, 10_000]
        .into_iter()
        .map(|n| {
            (
                n,
                json_out(
                    run.python("idle")
                        .env("N", n.to_string())
                        .env("MC_BENCH_AT", &at)
                        .env("MC_BENCH_RT", &rt),
                ),
            )
        })
        .collect();
    let (_, base, _) = &ours[0];
    let mut rows = Vec::new();
    for ((n, v, disk), (_, m)) in ours.iter().zip(&msal).skip(1) {
        let per = |a: u64, b: u64| format!("{:.2} KiB", (a as f64 - b as f64) / *n as f64);
        rows.push(vec![
            n.to_string(),
            format!(
                "{} ({} per account)",
                mib(kb(v, "opened_kb")),
                per(kb(v, "opened_kb"), kb(base, "opened_kb"))
            ),
            format!(
                "{} ({} per account)",
                mib(kb(v, "touched_kb")),
                per(kb(v, "touched_kb"), kb(base, "touched_kb"))
            ),
            format!(
                "{} ({:.2} KiB per account)",
                bytes(*disk),
                *disk as f64 / 1024.0 / *n as f64
            ),
            format!(
                "+{} ({} per account)",
                mib(kb(m, "rss1_kb") - kb(m, "rss0_kb")),
                per(kb(m, "rss1_kb") - kb(m, "rss0_kb"), 0)
            ),
        ]);
    }
    print_table(
        "3. Memory per idle account (RSS of a process holding N connected accounts; per account = difference to the same process with 0 accounts)",
        &["N", "mailconnect: RSS after opening the client", "… after one cached token per account", "store on disk", "MSAL Python: token cache holding N accounts (RSS growth)"],
        &rows,
    );
    println!(
        "\n(mailconnect with 0 accounts: {} after opening, {} after the loop)",
        mib(kb(base, "opened_kb")),
        mib(kb(base, "touched_kb"))
    );
}

fn has_symtab(path: &Path) -> bool {
    let out = Command::new("readelf")
        .arg("-S")
        .arg(path)
        .output()
        .expect("readelf");
    String::from_utf8_lossy(&out.stdout).contains(".symtab")
}

/// The C library built with the `dist` profile (what release packages ship: fat LTO, opt-level
/// "z" with the hot crates at 3), with its symbol table kept (the stripped size is measured on a
/// `strip --strip-all` copy, as for the bench profile). Its own target directory beside this
/// profile's, so the running `cargo bench` does not hold its lock; cold, this takes minutes.
/// Returns the library and the seconds the build took.
fn build_dist_lib() -> (PathBuf, f64) {
    let target = target_dir()
        .parent()
        .expect("target root")
        .join("size-dist");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let t = Instant::now();
    let status = Command::new(cargo)
        .args([
            "build",
            "--locked",
            "--profile",
            "dist",
            "-p",
            "mailconnect-ffi",
        ])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_PROFILE_DIST_STRIP", "false")
        .stdout(Stdio::null())
        .status()
        .expect("cargo build --profile dist");
    assert!(
        status.success(),
        "cargo build --profile dist -p mailconnect-ffi failed"
    );
    (
        target.join("dist").join("libmailconnect.so"),
        t.elapsed().as_secs_f64(),
    )
}

/// `tests/benches/size.sh`: the top crates of an unstripped library and its ELF sections.
fn per_crate_table(so: &Path) -> String {
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/size.sh"))
        .arg(so)
        .arg("15")
        .output()
        .expect("size.sh");
    assert!(
        out.status.success(),
        "size.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn section_size(run: &Run) {
    let so = artifact("libmailconnect.so");
    let a = artifact("libmailconnect.a");
    let size = |p: &Path| std::fs::metadata(p).expect("size").len();
    let strip_all = |from: &Path, name: &str| {
        let to = run.dir.path().join(name);
        run_ok_quiet(
            Command::new("strip")
                .arg("--strip-all")
                .arg(from)
                .arg("-o")
                .arg(&to),
        );
        to
    };
    let stripped = strip_all(&so, "libmailconnect.stripped.so");
    let (dist_so, dist_secs) = build_dist_lib();
    let dist_stripped = strip_all(&dist_so, "libmailconnect.dist.stripped.so");
    let a_nodebug = run.dir.path().join("libmailconnect.nodebug.a");
    run_ok_quiet(
        Command::new("strip")
            .arg("--strip-debug")
            .arg(&a)
            .arg("-o")
            .arg(&a_nodebug),
    );
    let unstripped = if has_symtab(&so) {
        bytes(size(&so))
    } else {
        "n/a (this build is stripped; run with CARGO_PROFILE_BENCH_STRIP=false)".into()
    };
    let foot = json_out(&mut run.python("footprint"));
    let sys = |name: &str| {
        let p = Path::new("/usr/lib/x86_64-linux-gnu").join(name);
        std::fs::canonicalize(&p)
            .ok()
            .map(|p| format!("{name} {}", bytes(size(&p))))
            .unwrap_or_else(|| format!("{name} not installed"))
    };
    let peers = format!(
        "{}; {} + {}",
        sys("libcurl.so.4"),
        sys("libssl.so.3"),
        sys("libcrypto.so.3")
    );
    print_table(
        "4. Library size (bench profile = release: LTO thin, 1 codegen unit, opt-level 3; dist profile: LTO fat, 1 codegen unit, opt-level z, ring/rustls/tokio at 3)",
        &["artifact", "size", "peers"],
        &[
            vec![
                "libmailconnect.so, dist profile, stripped (what release packages ship)".into(),
                bytes(size(&dist_stripped)),
                format!("{peers}; target ≤ 6 MiB"),
            ],
            vec![
                "libmailconnect.so, bench profile (= release), stripped (`strip --strip-all`, what `strip = true` ships)".into(),
                bytes(size(&stripped)),
                peers.clone(),
            ],
            vec!["libmailconnect.so, bench profile, unstripped".into(), unstripped, String::new()],
            vec![
                "libmailconnect.a (staticlib, bench profile, as built)".into(),
                bytes(size(&a)),
                format!("after `strip --strip-debug`: {}", bytes(size(&a_nodebug))),
            ],
            vec![
                "MSAL Python installed (msal, requests, urllib3, certifi, idna, charset-normalizer, PyJWT, cryptography, cffi, pycparser)".into(),
                bytes(foot["msal_total"].as_u64().expect("size")),
                format!(
                    "of which native extensions {}; emailproxy itself {}",
                    bytes(foot["msal_native"].as_u64().expect("size")),
                    bytes(foot["emailproxy"].as_u64().expect("size"))
                ),
            ],
        ],
    );
    println!(
        "\n(`cargo build --profile dist -p mailconnect-ffi` took {dist_secs:.0} s in this run; cold on an idle machine it takes minutes)"
    );
    println!("\nWhere the bytes are, dist profile (`bash tests/benches/size.sh LIB.so`):\n");
    print!("{}", per_crate_table(&dist_so));
    if has_symtab(&so) {
        println!("\nThe same for the bench profile:\n");
        print!("{}", per_crate_table(&so));
    }
}

fn hyperfine_median(dir: &Path, cmds: &[String]) -> Option<Vec<f64>> {
    Command::new("hyperfine").arg("--version").output().ok()?;
    let json_path = dir.join("hyperfine.json");
    let out = Command::new("hyperfine")
        .args([
            "-N",
            "--warmup",
            "5",
            "--runs",
            &DLOPEN_RUNS.to_string(),
            "--style",
            "none",
            "--export-json",
        ])
        .arg(&json_path)
        .args(cmds)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("hyperfine failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let v: Value = serde_json::from_slice(&std::fs::read(&json_path).ok()?).ok()?;
    v["results"]
        .as_array()?
        .iter()
        .map(|r| r["median"].as_f64())
        .collect()
}

fn section_dlopen(run: &Run) {
    let dir = run.dir.path().join("dlopen");
    std::fs::create_dir_all(&dir).expect("dir");
    let prog = dir.join("dlopen_first_call");
    run_ok_quiet(
        Command::new("cc")
            .args(["-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&prog)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/dlopen_first_call.c"))
            .arg("-ldl"),
    );
    // The shipped (stripped) library.
    let so = dir.join("libmailconnect.so");
    run_ok_quiet(
        Command::new("strip")
            .arg("--strip-all")
            .arg(artifact("libmailconnect.so"))
            .arg("-o")
            .arg(&so),
    );
    let so_s = so.display().to_string();
    let prog_s = prog.display().to_string();
    let time_runs = |args: &dyn Fn(usize) -> Vec<String>| -> Vec<u64> {
        let mut v: Vec<u64> = (0..DLOPEN_RUNS + 5)
            .map(|i| {
                let out = Command::new(&prog).args(args(i)).output().expect("run");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .parse()
                    .expect("ns")
            })
            .skip(5)
            .collect();
        v.sort_unstable();
        v
    };
    let version = time_runs(&|_| vec![so_s.clone(), "version".into()]);
    let open = time_runs(&|i| {
        vec![
            so_s.clone(),
            "open".into(),
            dir.join(format!("fresh-{i}.db")).display().to_string(),
        ]
    });
    let existing = dir.join("existing.db");
    let existing_s = existing.display().to_string();
    let reopen = time_runs(&|_| vec![so_s.clone(), "open".into(), existing_s.clone()]);
    let curl = time_runs(&|_| vec!["libcurl.so.4".into(), "sym".into(), "curl_version".into()]);
    let msal: Vec<u64> = {
        let mut v: Vec<u64> = (0..20)
            .map(|_| {
                json_out(&mut run.python("import-time"))["ns"]
                    .as_u64()
                    .expect("ns")
            })
            .collect();
        v.sort_unstable();
        v
    };
    let hf = hyperfine_median(
        &dir,
        &[
            format!("{prog_s} {so_s} version"),
            format!("{prog_s} libcurl.so.4 sym curl_version"),
            format!("{} -c \"import msal\"", run.py.display()),
            format!("{} -c pass", run.py.display()),
        ],
    );
    let hfs = |i: usize| {
        hf.as_ref()
            .map(|v| format!("{:.2} ms", v[i] * 1000.0))
            .unwrap_or_else(|| "hyperfine not installed".into())
    };
    let row = |what: &str, v: &[u64], whole: String| {
        vec![what.to_string(), us(pct(v, 0.5)), us(pct(v, 0.99)), whole]
    };
    print_table(
        &format!("5. From dlopen to the first answered call, fresh process each time ({DLOPEN_RUNS} runs; in-process clock)"),
        &["what", "p50", "p99", "whole process, hyperfine median (exec → exit)"],
        &[
            row("mailconnect: dlopen + `mc_version_get()`", &version, hfs(0)),
            row("mailconnect: dlopen + `mc_client_open()` on a store that does not exist yet (creates SQLite file + key, starts the runtime)", &open, String::new()),
            row("mailconnect: dlopen + `mc_client_open()` on an existing store (the usual start of an application)", &reopen, String::new()),
            row("peer: dlopen libcurl.so.4 + `curl_version()`", &curl, hfs(1)),
            row("peer: Python `import msal` (20 runs; interpreter start not included)", &msal, format!("{} (`python -c pass`: {})", hfs(2), hfs(3))),
        ],
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn write_messages(stack: &MailStack, user: &str, n: usize) {
    let maildir = stack
        .dir
        .path()
        .join(format!("mail/example.test/{user}/Maildir"));
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
    }
    for i in 0..n {
        let mut f = std::fs::File::create(
            maildir
                .join("new")
                .join(format!("1700000000.bench{i}.localhost")),
        )
        .expect("message");
        write!(f, "From: bench@example.test\r\nTo: {user}@example.test\r\nSubject: message {i}\r\nMessage-ID: <{i}@bench>\r\n\r\nSmall body {i}.\r\n").expect("write");
    }
    // Dovecot runs mailboxes as the stack's mail user (the owner of mail/): hand the files over.
    run_ok_quiet(
        Command::new("chown")
            .args(["-R", "--reference"])
            .arg(stack.dir.path().join("mail"))
            .arg(stack.dir.path().join("mail/example.test")),
    );
}

/// Wait until `log` has a line containing `needle`; return that line.
fn wait_for_log(log: &Path, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(log) {
            if let Some(l) = text.lines().find(|l| l.contains(needle)) {
                return l.to_string();
            }
        }
        assert!(
            Instant::now() < deadline,
            "'{needle}' did not appear in {}:\n{}",
            log.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn section_imap(run: &Run) {
    let stack = MailStack::up(&run.emu.introspect_plain, &[]);
    let stack_ca = PathBuf::from(stack.info["ca_pem"].as_str().expect("ca_pem"));
    // One bundle for the Python side: the emulator's CA and the mail servers' CA.
    let bundle = run.dir.path().join("bundle.pem");
    std::fs::write(
        &bundle,
        [
            std::fs::read(&run.certs.ca).expect("CA"),
            std::fs::read(&stack_ca).expect("CA"),
        ]
        .concat(),
    )
    .expect("bundle");
    let client = Client::open(client_options(
        &run.dir.path().join("imap.db"),
        &[&run.certs.ca, &stack_ca],
    ))
    .expect("client");
    client
        .put_registration_json(&registration(&run.emu.base_url))
        .expect("registration");
    let user = "carol@example.test";
    client
        .put_account_json(
            &json!({"id": "carol", "mailbox": user, "registration": "desktop",
                    "flow": "device_code", "servers": stack.servers()})
            .to_string(),
        )
        .expect("account");
    let u = ScriptedUser::with_browser(run.browser.clone(), sign_in_as(user));
    let nc = CancellationToken::new();
    run.rt
        .block_on(client.connect("carol", ConnectOptions::default(), &u, &nc))
        .expect("connect carol");
    write_messages(&stack, "carol", IMAP_MESSAGES);
    let all = FetchRequest {
        protocol: Some(Protocol::Imap),
        ..Default::default()
    };
    // Warm Dovecot's index so every reader sees the same state.
    let warm = FetchRequest {
        protocol: Some(Protocol::Imap),
        headers_only: true,
        limit: Some(1),
        ..Default::default()
    };
    run.rt
        .block_on(client.fetch("carol", &warm, &nc))
        .expect("warm");
    let mut ours = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let msgs = run
            .rt
            .block_on(client.fetch("carol", &all, &nc))
            .expect("fetch");
        ours.push(t.elapsed().as_secs_f64());
        assert_eq!(msgs.len(), IMAP_MESSAGES);
    }
    let token = run
        .rt
        .block_on(client.access_token("carol", &nc))
        .expect("token")
        .token
        .expose_secret()
        .to_string();
    let imaplib = |mode: &str, port: u16| {
        let mut c = run.python("imap");
        c.env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("MODE", mode)
            .env("USER_", user)
            .env("N", IMAP_MESSAGES.to_string())
            .env("CA", &bundle)
            .env("MC_BENCH_TOKEN", &token)
            .env("PROXY_PASSWORD", "bench-proxy-password");
        c
    };
    let direct: Vec<Value> = (0..3)
        .map(|_| json_out(&mut imaplib("xoauth2", stack.port("imap_tls"))))
        .collect();

    // email-oauth2-proxy: plain IMAP locally, TLS + XOAUTH2 to Dovecot, tokens from the emulator.
    let local = free_port();
    let redirect = free_port();
    let cfg = run.dir.path().join("emailproxy.config");
    let log = run.dir.path().join("emailproxy.log");
    std::fs::write(
        &cfg,
        format!(
            "[IMAP-{local}]\nlocal_address = 127.0.0.1\nserver_address = 127.0.0.1\nserver_port = {imaps}\n\n\
             [{user}]\npermission_url = {auth}/oauth2/v2.0/authorize\ntoken_url = {auth}/oauth2/v2.0/token\n\
             oauth2_scope = https://outlook.office.com/IMAP.AccessAsUser.All offline_access\n\
             redirect_uri = http://localhost:{redirect}\nclient_id = {DESKTOP_APP}\n",
            imaps = stack.port("imap_tls"),
            auth = run.emu.authority(),
        ),
    )
    .expect("config");
    let proxy_bin = run.py.with_file_name("emailproxy");
    let _proxy = Killed(
        Command::new(&proxy_bin)
            .args(["--no-gui", "--local-server-auth", "--config-file"])
            .arg(&cfg)
            .arg("--log-file")
            .arg(&log)
            .env("SSL_CERT_FILE", &bundle)
            .env("REQUESTS_CA_BUNDLE", &bundle)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("emailproxy"),
    );
    wait_for_log(&log, "Initialised", Duration::from_secs(30));
    // The first login through the proxy asks for authorisation: sign in on the URL it logs.
    let mut first = imaplib("login", local)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("first login");
    let line = wait_for_log(
        &log,
        "Please visit the following URL to authenticate account",
        Duration::from_secs(60),
    );
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .expect("URL in the log line")
        .to_string();
    let outcome = run
        .rt
        .block_on(run.browser.sign_in(&url, &sign_in_as(user)))
        .expect("sign-in for the proxy");
    let _ = outcome;
    let first_out = wait_child(&mut first);
    assert!(
        first_out.0,
        "first login through the proxy failed:\n{}",
        first_out.1
    );
    let proxied: Vec<Value> = (0..3)
        .map(|_| json_out(&mut imaplib("login", local)))
        .collect();

    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ms = |s: f64| format!("{:.0} ms", s * 1000.0);
    let py_row = |who: &str, v: &[Value]| {
        let f = |k: &str| med(v.iter().map(|x| x[k].as_f64().expect("secs")).collect());
        vec![
            who.to_string(),
            ms(f("total_s")),
            ms(f("login_s")),
            ms(f("fetch_s")),
        ]
    };
    print_table(
        &format!("6. IMAP: fetch {IMAP_MESSAGES} small messages from the sandbox's Dovecot (median of 3)"),
        &["who", "total", "connect + log in", "SELECT/EXAMINE + fetch"],
        &[
            vec![
                "mailconnect `Client::fetch` (token from the store, TLS, XOAUTH2, EXAMINE, one UID FETCH with UID, size, flags, date, body)".into(),
                ms(med(ours)),
                "—".into(),
                "—".into(),
            ],
            py_row("imaplib directly (TLS, XOAUTH2 with mailconnect's token, SELECT, UID FETCH BODY.PEEK[])", &direct),
            py_row("imaplib through email-oauth2-proxy (plain LOGIN to the proxy; it does TLS + XOAUTH2 upstream)", &proxied),
        ],
    );
}

fn wait_child(c: &mut Child) -> (bool, String) {
    let status = c.wait().expect("wait");
    let mut err = String::new();
    if let Some(mut e) = c.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    let mut out = String::new();
    if let Some(o) = c.stdout.as_mut() {
        let o: &mut ChildStdout = o;
        let _ = std::io::Read::read_to_string(o, &mut out);
    }
    (status.success(), format!("{out}{err}"))
}

fn machine_notes() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().map(|l| l.to_string()))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "machine: {cpu}, {cores} cores, {}, Linux {}; load average at the start: {}",
        mem.split_whitespace().skip(1).collect::<Vec<_>>().join(" "),
        kernel.trim(),
        loadavg()
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--child") {
        return child(&args[1..]);
    }
    let sections: Vec<String> = if args.is_empty() {
        SECTIONS.iter().map(|s| s.to_string()).collect()
    } else {
        for a in &args {
            assert!(
                SECTIONS.contains(&a.as_str()),
                "unknown section '{a}' (known: {SECTIONS:?})"
            );
        }
        args
    };
    let py = peers_python();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::Builder::new()
        .prefix("mcscale")
        .tempdir()
        .expect("tempdir");
    let certs = make_certs(dir.path());
    let emu = EmulatorProcess::start(&certs);
    let browser = Arc::new(
        ScriptedBrowser::with_root_certificates_pem(&std::fs::read(&certs.ca).expect("CA"))
            .expect("browser"),
    );
    let main_store = dir.path().join("main.db");
    let client = Client::open(client_options(&main_store, &[&certs.ca])).expect("client");
    client
        .put_registration_json(&registration(&emu.base_url))
        .expect("registration");
    let run = Run {
        rt,
        dir,
        certs,
        emu,
        browser,
        py,
        client,
        main_store,
    };
    connect(&run, "alice", "alice@example.test", None);
    machine_notes();
    println!("emulator: {} (separate process, HTTPS)", run.emu.base_url);
    for s in &sections {
        let t = Instant::now();
        match s.as_str() {
            "access_token" => section_access_token(&run),
            "refresh" => section_refresh(&run),
            "idle" => section_idle(&run),
            "size" => section_size(&run),
            "dlopen" => section_dlopen(&run),
            "imap" => section_imap(&run),
            _ => unreachable!(),
        }
        eprintln!("[{s}: {:.0} s]", t.elapsed().as_secs_f64());
    }
    println!("\nload average at the end: {}", loadavg());
}

/// `/proc/loadavg`: the machine is shared; this says how busy it was.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
