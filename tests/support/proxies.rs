//! Real proxy servers on loopback for the proxy tests (issue 17), and tools that watch what
//! crosses them:
//!
//! - [`HttpProxy`]: tinyproxy (Debian's `tinyproxy`), HTTP `CONNECT`, optionally with Basic auth
//!   and with a list of allowed `CONNECT` ports, as corporate proxies have.
//! - [`SocksProxy`]: Dante (Debian's `dante-server`, `danted`), SOCKS5 without authentication or
//!   with user name and password (RFC 1929).
//! - [`Tap`]: a recording TCP relay to put between the library and a proxy: what it records is
//!   exactly what crossed the wire, so a test can show that no token went through in clear.
//! - [`InspectingProxy`]: a TLS-inspecting `CONNECT` proxy like a corporate firewall's: it answers
//!   every tunnel with a certificate for the requested host issued by its own CA.
//!
//! Every server listens on 127.0.0.1 at a free port, is started in the foreground from a config in
//! a temporary directory, is waited for by polling (a generous deadline, no fixed sleeps), and is
//! stopped on drop.
//!
//! # Packages
//! [`ensure_packages`] installs a missing package itself (as root: `apt-get install -y
//! --no-install-recommends` with `DEBIAN_FRONTEND=noninteractive`, again after `apt-get update`
//! when that fails), as `sandbox/stack/install-deps.sh` does for the mail stack; that script lists
//! both packages too, so the full test run (tests/run-all.sh) has them before the tests start.
//!
//! # Why Dante
//! Dante is a SOCKS server companies deploy, run here as it is run there: its `username` method
//! checks the system's password database, it logs every session it opens with the authenticated
//! user, and it refuses in the RFC 1928/1929 ways a client must understand (below). Tried on Debian 12 (Dante 1.4.2) it
//! started and answered reliably, so microsocks (simpler: users given on the command line) was not
//! needed. The price: the user must be a system user. [`SocksProxy::start`] creates it when
//! missing (`useradd --system`, no home, `nologin` shell) and sets its password with `chpasswd`
//! every start, so it is idempotent; it refuses to touch an existing user that is not such a
//! throw-away account.
//!
//! # What the servers answer (seen with tinyproxy 1.11.1 and Dante 1.4.2, tests/proxies_support.rs)
//! tinyproxy, to `CONNECT`:
//! - no `Proxy-Authorization` where Basic auth is on: `HTTP/1.0 407 Proxy Authentication
//!   Required` with `Proxy-Authenticate: Basic realm="Tinyproxy"`;
//! - a wrong user or password: `HTTP/1.0 401 Unauthorized` with `WWW-Authenticate: Basic
//!   realm="Tinyproxy"` (not 407: that is what tinyproxy 1.11 sends);
//! - a port not among the `ConnectPort`s: `HTTP/1.1 403 Access violation` ("The CONNECT method
//!   not allowed with the port you tried to use.");
//! - a target that refuses the connection or does not resolve: `HTTP/1.1 500 Unable to connect`;
//! - success: `HTTP/1.0 200 Connection established`.
//!
//! Its log names every `CONNECT` request it read (also those it refused):
//! `CONNECT   Dec 03 11:23:55.786 [13667]: Request (file descriptor 5): CONNECT 127.0.0.1:993 HTTP/1.1`.
//!
//! Dante (SOCKS5):
//! - a client offering only "no authentication" where `username` is required: method reply
//!   `05 FF` ("no acceptable methods"), then it closes;
//! - a wrong user or password: sub-negotiation status `01 01` (any non-zero status is failure),
//!   logged as `system password authentication failed for user "…"`;
//! - a target that refuses the connection: reply code 5 ("connection refused").
//!
//! [`InspectingProxy`] answers `HTTP/1.1 200 Connection established`, or `HTTP/1.1 502 Bad
//! Gateway` when it cannot reach the target or the target's certificate is not trusted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

use crate::faultproxy::{client_config, pem_certs, server_config};

/// How long a server gets to start listening, or a log line to appear (slow, shared CI machines).
pub const DEADLINE: Duration = Duration::from_secs(90);

// ----- packages, users, processes -------------------------------------------------------------

/// Install the Debian packages `pkgs` where any is missing (root only; see the module doc).
/// Panics with what to do when it cannot.
pub fn ensure_packages(pkgs: &[&str]) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _one_at_a_time = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let missing = |pkgs: &[&str]| -> Vec<String> {
        pkgs.iter()
            .filter(|p| !installed(p))
            .map(|p| p.to_string())
            .collect()
    };
    let want = missing(pkgs);
    if want.is_empty() {
        return;
    }
    assert!(
        is_root(),
        "missing packages {want:?}: run the tests as root (they install them), or run \
         sh sandbox/stack/install-deps.sh as root"
    );
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["-o", "DPkg::Lock::Timeout=600", "-q"])
            .args(args)
            .output()
            .expect("apt-get runs")
    };
    let install = |want: &[String]| {
        let mut args = vec!["install", "-y", "--no-install-recommends"];
        args.extend(want.iter().map(String::as_str));
        apt(&args)
    };
    let mut out = install(&want);
    if !out.status.success() {
        // The package lists may be missing or stale, as install-deps.sh assumes too.
        let _ = apt(&["update"]);
        out = install(&want);
    }
    let still = missing(pkgs);
    assert!(
        still.is_empty(),
        "apt-get could not install {still:?}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Status}", pkg])
        .output()
        .is_ok_and(|o| o.stdout == b"installed")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Make `user` a throw-away system user (no home, `nologin` shell) whose password is `password`:
/// created when missing, its password set every time. Refuses any other kind of existing user.
pub fn ensure_system_user(user: &str, password: &str) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _one_at_a_time = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let valid = !user.is_empty()
        && user.len() <= 32
        && user.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && user
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    assert!(valid, "'{user}' is not a usable system user name");
    assert!(
        !password.is_empty() && !password.contains([':', '\n', '\r']),
        "the password must be one line without ':'"
    );
    assert!(is_root(), "creating the SOCKS user {user} needs root");
    let entry = |user: &str| {
        Command::new("getent")
            .args(["passwd", user])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if entry(user).is_none() {
        let out = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(user)
            .output()
            .expect("useradd runs");
        // 9: created meanwhile by another test process.
        assert!(
            out.status.success() || out.status.code() == Some(9),
            "useradd {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let line = entry(user).unwrap_or_else(|| panic!("user {user} exists after useradd"));
    let fields: Vec<&str> = line.split(':').collect();
    let uid: u32 = fields.get(2).and_then(|u| u.parse().ok()).unwrap_or(0);
    assert!(
        (1..1000).contains(&uid) && fields.last().is_some_and(|s| s.ends_with("nologin")),
        "user {user} exists and is not a throw-away system account ({line}); choose another name"
    );
    // chpasswd may find /etc/shadow locked by another process for a moment.
    let start = Instant::now();
    loop {
        let mut child = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chpasswd runs");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{user}:{password}\n").as_bytes())
            .expect("chpasswd input");
        let out = child.wait_with_output().expect("chpasswd ends");
        if out.status.success() {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "chpasswd {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Poll `f` every 50 ms until it gives a value; panic with `what` after [`DEADLINE`].
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A proxy server process (tinyproxy or Dante) listening on 127.0.0.1, with its config directory
/// and log; [`HttpProxy`] and [`SocksProxy`] dereference to it. It runs in a process group of its
/// own, which is stopped on drop (Dante forks children that outlive a killed parent).
pub struct ProxyProcess {
    what: &'static str,
    child: Mutex<Child>,
    port: u16,
    log: PathBuf,
    auth: Option<(String, String)>,
    connects_in: fn(&str) -> Vec<String>,
    dir: tempfile::TempDir,
}

impl ProxyProcess {
    /// Start the server `what` on a free port: `command(dir, log, port)` writes its config and
    /// gives the command; it is ready once `ready` is in the log and the port accepts. A port
    /// taken meanwhile by someone else (the server exits) is retried on another one.
    fn start(
        what: &'static str,
        ready: &str,
        auth: Option<(String, String)>,
        connects_in: fn(&str) -> Vec<String>,
        mut command: impl FnMut(&Path, &Path, u16) -> Command,
    ) -> ProxyProcess {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::Builder::new()
            .prefix(&format!("mc-{what}"))
            .tempdir()
            .expect("dir");
        let log = dir.path().join(format!("{what}.log"));
        let stderr_path = dir.path().join("stderr.log");
        let mut failures = String::new();
        for _ in 0..5 {
            let _ = std::fs::remove_file(&log);
            let port = free_port();
            let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
            let mut child = command(dir.path(), &log, port)
                .stdin(Stdio::null())
                .stdout(stderr.try_clone().expect("stderr file"))
                .stderr(stderr)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("{what} starts: {e}"));
            let output = || format!("{}{}", read_text(&log), read_text(&stderr_path));
            let start = Instant::now();
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    failures +=
                        &format!("{what} on port {port} exited ({status}):\n{}\n", output());
                    break;
                }
                if read_text(&log).contains(ready)
                    && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                {
                    return ProxyProcess {
                        what,
                        child: Mutex::new(child),
                        port,
                        log,
                        auth,
                        connects_in,
                        dir,
                    };
                }
                if start.elapsed() > DEADLINE {
                    stop_group(&mut child);
                    panic!("{what} did not listen on port {port}:\n{}", output());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("{what} did not start:\n{failures}");
    }

    fn url(&self, scheme: &str, with_credentials: bool) -> String {
        let credentials = self.auth.as_ref().filter(|_| with_credentials);
        userinfo_url(scheme, self.port, credentials)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The config file and the log live here.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        read_text(&self.log)
    }

    /// The targets the log names, in order (see [`HttpProxy`] and [`SocksProxy`] for which).
    pub fn connects(&self) -> Vec<String> {
        (self.connects_in)(&self.log())
    }

    /// Wait until `target` is among [`ProxyProcess::connects`].
    pub fn wait_for_connect(&self, target: &str) {
        wait_for(&format!("{} to log {target}", self.what), || {
            self.connects().iter().any(|c| c == target).then_some(())
        });
    }

    /// Wait until `needle` is in the log; gives the log.
    pub fn wait_for_log(&self, needle: &str) -> String {
        wait_for(&format!("{} to log '{needle}'", self.what), || {
            let log = self.log();
            log.contains(needle).then_some(log)
        })
    }

    /// The server's process id, which is also its process group's.
    pub fn pid(&self) -> u32 {
        lock(&self.child).id()
    }

    /// The processes of its group that have not ended (Dante runs several).
    pub fn processes(&self) -> Vec<u32> {
        group_members(self.pid())
    }

    /// Whether the server is still running.
    pub fn running(&self) -> bool {
        !exited(lock(&self.child).id())
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        stop_group(self.child.get_mut().unwrap_or_else(|p| p.into_inner()));
    }
}

/// Whether process `pid` has ended (a zombie not yet waited for, or gone), without waiting for
/// it: until it is waited for, its process and group ids cannot be reused.
fn exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(')')
            .is_none_or(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
    })
}

/// The processes in process group `pgid` that have not ended.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // After the command in parentheses: state, ppid, pgrp.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            fields.len() > 2
                && !matches!(fields[0], "Z" | "X")
                && fields[2].parse::<u32>() == Ok(pgid)
        })
        .collect()
}

/// Stop the process group led by `child` (a process that was never waited for): TERM, up to 5
/// seconds for the leader to end, then KILL for whatever is left of the group, then wait.
fn stop_group(child: &mut Child) {
    let pid = child.id();
    let signal = |signal: &str| {
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
    };
    signal("-TERM");
    let start = Instant::now();
    while !exited(pid) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    signal("-KILL");
    let _ = child.kill();
    let _ = child.wait();
}

fn userinfo_url(scheme: &str, port: u16, credentials: Option<&(String, String)>) -> String {
    let mut url = url::Url::parse(&format!("{scheme}://127.0.0.1:{port}")).expect("proxy URL");
    if let Some((user, password)) = credentials {
        url.set_username(user).expect("user in URL");
        url.set_password(Some(password)).expect("password in URL");
    }
    url.as_str().trim_end_matches('/').to_string()
}

// ----- tinyproxy ------------------------------------------------------------------------------

/// What [`HttpProxy::start`] sets up.
#[derive(Debug, Clone, Default)]
pub struct HttpProxyOptions {
    /// `BasicAuth user password`: tunnels only with these credentials. No white space in either.
    pub basic_auth: Option<(String, String)>,
    /// `ConnectPort` lines: `None` lets `CONNECT` reach any port; `Some(vec![443])` refuses the
    /// others with 403, as many corporate proxies do.
    pub connect_ports: Option<Vec<u16>>,
}

/// tinyproxy on 127.0.0.1; stopped on drop. Its [`ProxyProcess::connects`] are the `host:port`
/// of every `CONNECT` request it read, in order, refused ones too (tinyproxy logs the request
/// line before it checks credentials and port, so it is there when the client has its answer).
pub struct HttpProxy(ProxyProcess);

impl std::ops::Deref for HttpProxy {
    type Target = ProxyProcess;
    fn deref(&self) -> &ProxyProcess {
        &self.0
    }
}

impl HttpProxy {
    /// Start tinyproxy (installed when missing) with `options`, and wait until it accepts.
    pub fn start(options: HttpProxyOptions) -> HttpProxy {
        ensure_packages(&["tinyproxy"]);
        let mut extra = String::new();
        if let Some((user, password)) = &options.basic_auth {
            let plain = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
            assert!(
                plain(user) && plain(password),
                "tinyproxy's BasicAuth takes no white space"
            );
            extra += &format!("BasicAuth {user} {password}\n");
        }
        for p in options.connect_ports.iter().flatten() {
            extra += &format!("ConnectPort {p}\n");
        }
        HttpProxy(ProxyProcess::start(
            "tinyproxy",
            "Accepting connections",
            options.basic_auth,
            tinyproxy_connects,
            |dir, log, port| {
                let conf = dir.join("tinyproxy.conf");
                std::fs::write(
                    &conf,
                    format!(
                        "Port {port}\nListen 127.0.0.1\nTimeout 600\nLogFile \"{}\"\nLogLevel Info\n\
                         MaxClients 100\nAllow 127.0.0.1\nDisableViaHeader Yes\n{extra}",
                        log.display()
                    ),
                )
                .expect("tinyproxy.conf");
                let mut cmd = Command::new("tinyproxy");
                cmd.arg("-d").arg("-c").arg(conf);
                cmd
            },
        ))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.0.url("http", false)
    }

    /// `http://USER:PASSWORD@127.0.0.1:PORT` (percent-encoded) with the Basic auth credentials,
    /// or [`HttpProxy::url`] without them.
    pub fn url_with_credentials(&self) -> String {
        self.0.url("http", true)
    }
}

fn tinyproxy_connects(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| {
            l.split_once("]: Request (file descriptor ")?
                .1
                .split_once("): ")
        }) // (fd, request line)
        .filter_map(|(_, req)| {
            let mut words = req.split_whitespace();
            (words.next()? == "CONNECT").then(|| words.next().map(str::to_string))?
        })
        .collect()
}

// ----- Dante ----------------------------------------------------------------------------------

/// What [`SocksProxy::start`] sets up.
#[derive(Debug, Clone, Default)]
pub struct SocksOptions {
    /// Require SOCKS5 user/password authentication (RFC 1929) with this system user and password
    /// (the user is created; see the module doc). A name of its own per test, e.g.
    /// `mcsocks-smtp`: two tests in one process giving one user different passwords would race.
    pub auth: Option<(String, String)>,
}

/// Dante's SOCKS5 server on 127.0.0.1 (connects only to 127.0.0.1); stopped on drop. Its
/// [`ProxyProcess::connects`] are the `ip:port` of every session it opened to a target, in order
/// (a name given by a socks5h client appears resolved). Dante logs a session once it is
/// established, a moment after the client got its reply: assert one with
/// [`ProxyProcess::wait_for_connect`]. Targets that refused are in the log as `remote peer error`.
pub struct SocksProxy(ProxyProcess);

impl std::ops::Deref for SocksProxy {
    type Target = ProxyProcess;
    fn deref(&self) -> &ProxyProcess {
        &self.0
    }
}

impl SocksProxy {
    /// Start danted (installed when missing) with `options`, and wait until it accepts.
    pub fn start(options: SocksOptions) -> SocksProxy {
        ensure_packages(&["dante-server"]);
        if let Some((user, password)) = &options.auth {
            ensure_system_user(user, password);
        }
        let method = if options.auth.is_some() {
            "username"
        } else {
            "none"
        };
        // Without root Dante cannot read /etc/shadow nor switch users; with no authentication it
        // then runs as the user it was started by.
        let users = if is_root() {
            "user.privileged: root\nuser.unprivileged: nobody\n"
        } else {
            ""
        };
        SocksProxy(ProxyProcess::start(
            "danted",
            "running",
            options.auth,
            dante_connects,
            |dir, log, port| {
                let conf = dir.join("danted.conf");
                std::fs::write(
                    &conf,
                    format!(
                        "logoutput: {log}\ninternal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\n\
                         socksmethod: {method}\nclientmethod: none\n{users}\
                         client pass {{\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n  log: connect disconnect error\n}}\n\
                         socks pass {{\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n  command: connect\n  log: connect disconnect error\n}}\n",
                        log = log.display()
                    ),
                )
                .expect("danted.conf");
                let mut cmd = Command::new("danted");
                cmd.arg("-f")
                    .arg(conf)
                    .arg("-p")
                    .arg(dir.join("danted.pid"))
                    .args(["-N", "1"]);
                cmd
            },
        ))
    }

    /// `socks5://127.0.0.1:PORT` (the client resolves names).
    pub fn url(&self) -> String {
        self.0.url("socks5", false)
    }

    /// `socks5h://127.0.0.1:PORT` (the proxy resolves names).
    pub fn url_h(&self) -> String {
        self.0.url("socks5h", false)
    }

    /// `socks5://USER:PASSWORD@127.0.0.1:PORT` with the configured user, or [`SocksProxy::url`].
    pub fn url_with_credentials(&self) -> String {
        self.0.url("socks5", true)
    }

    /// `socks5h://USER:PASSWORD@127.0.0.1:PORT`, or [`SocksProxy::url_h`].
    pub fn url_h_with_credentials(&self) -> String {
        self.0.url("socks5h", true)
    }
}

/// Dante writes `a.b.c.d.port`; this gives `a.b.c.d:port`.
fn dante_address(word: &str) -> Option<String> {
    let (ip, port) = word.rsplit_once('.')?;
    port.parse::<u16>().ok()?;
    Some(format!("{ip}:{port}"))
}

fn dante_connects(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.split_once("tcp/connect [: ")?.1.split_whitespace().last())
        .filter_map(dante_address)
        .collect()
}

// ----- the recording relay --------------------------------------------------------------------

/// A runtime of its own, so the relays run whatever the test does with its own threads (a
/// current-thread test runtime blocked in a C call, say).
struct Background {
    rt: Option<tokio::runtime::Runtime>,
}

impl Background {
    fn new(name: &str) -> Background {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .expect("a runtime");
        Background { rt: Some(rt) }
    }

    /// Serve `listener` with `serve` for every accepted connection.
    fn serve<F, Fut>(&self, listener: std::net::TcpListener, serve: F)
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        listener.set_nonblocking(true).expect("non-blocking");
        self.rt.as_ref().expect("runtime").spawn(async move {
            let listener = TcpListener::from_std(listener).expect("listener");
            while let Ok((tcp, _)) = listener.accept().await {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(serve(tcp));
            }
        });
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Also allowed inside a test's own runtime, unlike dropping a runtime.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// What crossed one relayed connection, each way.
#[derive(Default)]
struct Recorded {
    from_client: Mutex<Vec<u8>>,
    to_client: Mutex<Vec<u8>>,
}

/// Recorded connections.
#[derive(Default)]
struct Recordings(Mutex<Vec<Arc<Recorded>>>);

impl Recordings {
    fn add(&self) -> Arc<Recorded> {
        let r = Arc::new(Recorded::default());
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(r.clone());
        r
    }

    fn all(&self) -> Vec<Arc<Recorded>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn joined(&self, pick: impl Fn(&Recorded) -> &Mutex<Vec<u8>>) -> Vec<u8> {
        self.all()
            .iter()
            .flat_map(|r| pick(r).lock().unwrap_or_else(|p| p.into_inner()).clone())
            .collect()
    }

    fn contains(&self, needle: &[u8]) -> bool {
        !needle.is_empty()
            && self.all().iter().any(|r| {
                [&r.from_client, &r.to_client].iter().any(|m| {
                    let bytes = m.lock().unwrap_or_else(|p| p.into_inner());
                    bytes.windows(needle.len()).any(|w| w == needle)
                })
            })
    }
}

/// Forward both ways, recording before forwarding (so what a peer has read is recorded), until
/// both directions are closed.
async fn relay_recording<C, S>(client: C, server: S, rec: &Recorded)
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    async fn pump<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
        mut from: R,
        mut to: W,
        rec: &Mutex<Vec<u8>>,
    ) {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            rec.lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(&buf[..n]);
            if to.write_all(&buf[..n]).await.is_err() || to.flush().await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    }
    let (cr, cw) = tokio::io::split(client);
    let (sr, sw) = tokio::io::split(server);
    tokio::join!(pump(cr, sw, &rec.from_client), pump(sr, cw, &rec.to_client));
}

/// A recording TCP relay on 127.0.0.1 to `127.0.0.1:target_port`: put it between the library and
/// a proxy (point the library at `127.0.0.1:tap.port()`) to see every byte that crossed. Stops on
/// drop.
pub struct Tap {
    port: u16,
    recordings: Arc<Recordings>,
    _bg: Background,
}

impl Tap {
    /// Listen on a free port and relay every connection to `127.0.0.1:target_port`.
    pub fn start(target_port: u16) -> Tap {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("tap binds");
        let port = listener.local_addr().expect("tap address").port();
        let recordings = Arc::new(Recordings::default());
        let bg = Background::new("tap");
        let recs = recordings.clone();
        bg.serve(listener, move |client| {
            let rec = recs.add();
            async move {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)).await else {
                    return;
                };
                let _ = server.set_nodelay(true);
                relay_recording(client, server, &rec).await;
            }
        });
        Tap {
            port,
            recordings,
            _bg: bg,
        }
    }

    /// The port to connect to instead of the target's.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.recordings.all().len()
    }

    /// Everything the clients sent, connection after connection.
    pub fn bytes_from_client(&self) -> Vec<u8> {
        self.recordings.joined(|r| &r.from_client)
    }

    /// Everything the clients were sent, connection after connection.
    pub fn bytes_to_client(&self) -> Vec<u8> {
        self.recordings.joined(|r| &r.to_client)
    }

    /// Whether `needle` crossed in either direction on any one connection (an empty needle never
    /// did).
    pub fn contains(&self, needle: &[u8]) -> bool {
        self.recordings.contains(needle)
    }
}

// ----- certificates (openssl) -----------------------------------------------------------------

fn openssl_script(dir: &Path, script: &str, vars: &[(&str, &str)]) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .envs(vars.iter().copied())
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "openssl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throw-away CA made with openssl in `dir`: `NAME.key`, and `NAME.pem` with the subject
/// `subject` (openssl's `/O=…/CN=…` form); valid for two days.
pub fn make_ca(dir: &Path, name: &str, subject: &str) -> PathBuf {
    openssl_script(
        dir,
        r#"set -e
openssl ecparam -name prime256v1 -genkey -noout -out "$NAME.key"
openssl req -x509 -new -key "$NAME.key" -sha256 -days 2 -subj "$SUBJECT" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -addext "subjectKeyIdentifier=hash" -out "$NAME.pem"
"#,
        &[("NAME", name), ("SUBJECT", subject)],
    );
    dir.join(format!("{name}.pem"))
}

/// A server certificate `NAME.pem` with PKCS#8 key `NAME.key` in `dir`, for the subject
/// alternative names `san` (`IP:127.0.0.1,DNS:localhost`), issued by the CA `CA.pem`/`CA.key`
/// made by [`make_ca`]; with the key usages and key identifiers strict verifiers want.
pub fn issue_cert(dir: &Path, ca: &str, name: &str, common_name: &str, san: &str) -> PathBuf {
    openssl_script(
        dir,
        r#"set -e
openssl ecparam -name prime256v1 -genkey -noout -out "$NAME.key.ec"
openssl pkcs8 -topk8 -nocrypt -in "$NAME.key.ec" -out "$NAME.key"
openssl req -new -key "$NAME.key" -subj "/CN=$CN" -out "$NAME.csr"
printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' "$SAN" > "$NAME.ext"
openssl x509 -req -in "$NAME.csr" -CA "$CA.pem" -CAkey "$CA.key" -set_serial 0x$(openssl rand -hex 8) -days 2 -sha256 -extfile "$NAME.ext" -out "$NAME.pem"
"#,
        &[
            ("CA", ca),
            ("NAME", name),
            ("CN", common_name),
            ("SAN", san),
        ],
    );
    dir.join(format!("{name}.pem"))
}

/// The subject of the first certificate in `pem`, as an RFC 4514 name (`CN=…,O=…`), the way the
/// library names an issuer.
pub fn subject_of(pem: &[u8]) -> String {
    use x509_cert::der::Decode;
    let der = rustls_pemfile::certs(&mut &*pem)
        .next()
        .expect("a certificate")
        .expect("PEM readable");
    x509_cert::Certificate::from_der(&der)
        .expect("a certificate")
        .tbs_certificate
        .subject
        .to_string()
}

/// The issuer of a DER certificate (a peer's), as an RFC 4514 name.
pub fn issuer_of(der: &[u8]) -> String {
    use x509_cert::der::Decode;
    x509_cert::Certificate::from_der(der)
        .expect("a certificate")
        .tbs_certificate
        .issuer
        .to_string()
}

/// A TLS connector trusting only the certificates in `ca_pem` (for tests' own clients).
pub fn tls_connector(ca_pem: &[u8]) -> tokio_rustls::TlsConnector {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, ca_pem).expect("CA file");
    tokio_rustls::TlsConnector::from(Arc::new(client_config(&path)))
}

// ----- the TLS-inspecting proxy ---------------------------------------------------------------

/// The inspecting proxy's CA subject (openssl form).
const INSPECTION_CA: &str = "/O=Contoso Firewall/CN=Contoso TLS Inspection CA";

struct Inspector {
    dir: PathBuf,
    upstream: tokio_rustls::TlsConnector,
    issued: Mutex<HashMap<String, Arc<rustls::ServerConfig>>>,
    serial: AtomicUsize,
    connects: Mutex<Vec<String>>,
    handshake_failures: Mutex<Vec<String>>,
    recordings: Recordings,
}

/// A TLS-inspecting HTTP `CONNECT` proxy on 127.0.0.1, as corporate firewalls run: it answers
/// `CONNECT host:port` with 200 (after reaching the target itself: 502 when it cannot), then
/// speaks TLS to the client with a certificate for `host` issued by its own CA ("CN=Contoso TLS
/// Inspection CA,O=Contoso Firewall") and relays in clear to its own TLS connection to the
/// target. For implicit-TLS targets (IMAPS, POP3S, SMTPS, HTTPS). Stops on drop.
pub struct InspectingProxy {
    port: u16,
    ca_pem: Vec<u8>,
    inspector: Arc<Inspector>,
    _bg: Background,
    _dir: tempfile::TempDir,
}

impl InspectingProxy {
    /// Start it; it trusts the CA certificates in `upstream_ca_pem` (PEM, one or more: the mail
    /// stack's [`crate::MailStack::ca_pem`], an emulator's) for its connections to the targets.
    pub fn start(upstream_ca_pem: &[u8]) -> InspectingProxy {
        let dir = tempfile::Builder::new()
            .prefix("mc-inspect")
            .tempdir()
            .expect("dir");
        let ca = make_ca(dir.path(), "inspection-ca", INSPECTION_CA);
        let ca_pem = std::fs::read(&ca).expect("CA file");
        let upstream_ca = dir.path().join("upstream-ca.pem");
        std::fs::write(&upstream_ca, upstream_ca_pem).expect("upstream CA file");
        let inspector = Arc::new(Inspector {
            dir: dir.path().to_path_buf(),
            upstream: tokio_rustls::TlsConnector::from(Arc::new(client_config(&upstream_ca))),
            issued: Mutex::default(),
            serial: AtomicUsize::new(0),
            connects: Mutex::default(),
            handshake_failures: Mutex::default(),
            recordings: Recordings::default(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("proxy binds");
        let port = listener.local_addr().expect("proxy address").port();
        let bg = Background::new("inspect");
        let ins = inspector.clone();
        bg.serve(listener, move |client| inspect(ins.clone(), client));
        InspectingProxy {
            port,
            ca_pem,
            inspector,
            _bg: bg,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        userinfo_url("http", self.port, None)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its CA certificate (PEM): give it to the library as an extra CA to trust the inspection.
    pub fn ca_pem(&self) -> Vec<u8> {
        self.ca_pem.clone()
    }

    /// Its CA certificate's file.
    pub fn ca_file(&self) -> PathBuf {
        self.inspector.dir.join("inspection-ca.pem")
    }

    /// The issuer of every certificate it presents, as an RFC 4514 name:
    /// `CN=Contoso TLS Inspection CA,O=Contoso Firewall`.
    pub fn issuer_name(&self) -> String {
        subject_of(&self.ca_pem)
    }

    /// The `host:port` of every `CONNECT` it read, in order.
    pub fn connects(&self) -> Vec<String> {
        lock(&self.inspector.connects).clone()
    }

    /// Why each TLS handshake with a client failed, in order (a client refusing the certificate
    /// shows as a received alert, e.g. `received fatal alert: UnknownCA`).
    pub fn handshake_failures(&self) -> Vec<String> {
        lock(&self.inspector.handshake_failures).clone()
    }

    /// What the clients sent inside TLS (decrypted), connection after connection.
    pub fn bytes_from_client(&self) -> Vec<u8> {
        self.inspector.recordings.joined(|r| &r.from_client)
    }

    /// What the targets sent inside TLS (decrypted), connection after connection.
    pub fn bytes_to_client(&self) -> Vec<u8> {
        self.inspector.recordings.joined(|r| &r.to_client)
    }

    /// Whether `needle` was seen in clear, either way, on any one connection.
    pub fn contains(&self, needle: &[u8]) -> bool {
        self.inspector.recordings.contains(needle)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Read an HTTP request or response head (through the blank line) byte by byte, so nothing after
/// it is consumed. `None` when the peer closed first or the head is over 16 KiB.
pub async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 || s.read(&mut b).await.ok()? == 0 {
            return None;
        }
        head.push(b[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// The host of a `CONNECT` target, when it is one a certificate can name.
fn cert_host(target: &str) -> Option<(String, u16)> {
    let (host, port) = target.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    ok.then(|| (host.to_string(), port))
}

impl Inspector {
    /// The TLS server config presenting a certificate for `host`, issued on first use.
    fn server_for(&self, host: &str) -> Arc<rustls::ServerConfig> {
        if let Some(c) = lock(&self.issued).get(host) {
            return c.clone();
        }
        let n = self.serial.fetch_add(1, Ordering::SeqCst);
        let name = format!("host{n}");
        let san = if host.parse::<std::net::IpAddr>().is_ok() {
            format!("IP:{host}")
        } else {
            format!("DNS:{host}")
        };
        let leaf = issue_cert(&self.dir, "inspection-ca", &name, host, &san);
        let chain = self.dir.join(format!("{name}-chain.pem"));
        let mut pem = std::fs::read(&leaf).expect("leaf");
        pem.extend(std::fs::read(self.dir.join("inspection-ca.pem")).expect("CA"));
        std::fs::write(&chain, pem).expect("chain file");
        let cfg = Arc::new(server_config(&chain, &self.dir.join(format!("{name}.key"))));
        lock(&self.issued).insert(host.to_string(), cfg.clone());
        cfg
    }
}

async fn inspect(ins: Arc<Inspector>, mut client: TcpStream) {
    let Some(head) = read_head(&mut client).await else {
        return;
    };
    let mut words = head.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if method != "CONNECT" {
        let _ = client
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\n\r\n")
            .await;
        return;
    }
    lock(&ins.connects).push(target.to_string());
    let Some((host, port)) = cert_host(target) else {
        let _ = client
            .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            .await;
        return;
    };
    // Like a firewall: reach the target (and check its certificate) before answering.
    let upstream = async {
        let tcp = TcpStream::connect((host.as_str(), port)).await.ok()?;
        let _ = tcp.set_nodelay(true);
        let name = rustls::pki_types::ServerName::try_from(host.clone()).ok()?;
        ins.upstream.connect(name, tcp).await.ok()
    };
    let Some(server) = upstream.await else {
        let _ = client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n")
            .await;
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    let cfg = {
        let ins = ins.clone();
        let host = host.clone();
        match tokio::task::spawn_blocking(move || ins.server_for(&host)).await {
            Ok(c) => c,
            Err(_) => return,
        }
    };
    let client = match tokio_rustls::TlsAcceptor::from(cfg).accept(client).await {
        Ok(c) => c,
        Err(e) => {
            lock(&ins.handshake_failures).push(e.to_string());
            return;
        }
    };
    let rec = ins.recordings.add();
    relay_recording(client, server, &rec).await;
}

/// The DER certificates in a PEM file (for comparing what a peer presented).
pub fn certs_in(path: &Path) -> Vec<Vec<u8>> {
    pem_certs(path).into_iter().map(|c| c.to_vec()).collect()
}

/// A binding's scenario run with `MC_TEST_PROXY` (tests/bindings_*.rs): it stored the proxy and
/// read it back without its password, Test reported the proxy as the path of every protocol, and
/// the proxy's own log shows the sign-in's requests to the emulator (plain HTTP: absolute-form
/// requests, not tunnels) and a CONNECT to each mail port, and never the password.
pub fn binding_went_through_proxy(
    proxy: &HttpProxy,
    env: &crate::Env,
    stack: &crate::MailStack,
    out: &str,
    password: &str,
) {
    for line in [
        "ok proxy stored: source stored, no password shown",
        "ok Test paths name the stored proxy",
    ] {
        assert!(out.contains(line), "{line}\n{out}");
    }
    let token = format!(
        "POST {}/organizations/oauth2/v2.0/token HTTP/1.1",
        env.emulator.base_url()
    );
    proxy.wait_for_log(&token);
    for port in ["imap_tls", "pop3_tls", "smtp_starttls"] {
        proxy.wait_for_connect(&format!("127.0.0.1:{}", stack.port(port)));
    }
    assert!(
        !proxy.log().contains(password),
        "the password in the proxy's log"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tinyproxy_log_gives_the_connect_targets() {
        let log = "NOTICE    Dec 03 11:23:53.314 [13667]: Initializing tinyproxy ...\n\
CONNECT   Dec 03 11:23:55.467 [13667]: Connect (file descriptor 5): 127.0.0.1\n\
CONNECT   Dec 03 11:23:55.468 [13667]: Request (file descriptor 5): CONNECT 127.0.0.1:48080 HTTP/1.1\n\
CONNECT   Dec 03 11:23:55.468 [13667]: Request (file descriptor 6): GET http://x/ HTTP/1.1\n\
CONNECT   Dec 03 11:23:55.949 [13667]: Request (file descriptor 5): CONNECT localhost:993 HTTP/1.1\n\
CONNECT   Dec 03 11:23:55.949 [13667]: Established connection to host \"127.0.0.1\" using file descriptor 6.\n";
        assert_eq!(
            tinyproxy_connects(log),
            ["127.0.0.1:48080", "localhost:993"]
        );
    }

    #[test]
    fn dante_log_gives_the_sessions() {
        let log = "Dec  3 11:23:40 (1796297020.591654) danted[13551]: info: pass(1): tcp/accept [: 127.0.0.1.54480 127.0.0.1.41080\n\
Dec  3 11:23:40 (1796297020.615541) danted[13568]: info: pass(1): tcp/connect [: username%mcsocks@127.0.0.1.54480 127.0.0.1.41080 -> 127.0.0.1.59867 127.0.0.1.48080\n\
Dec  3 11:23:40 (1796297020.616996) danted[13568]: info: pass(1): tcp/connect ]: 518 -> username%mcsocks@127.0.0.1.54480 127.0.0.1.41080 -> 79, 79 -> 127.0.0.1.59867 127.0.0.1.48080 -> 518: local client closed.  Session duration: 0s\n\
Dec  3 11:23:40 (1796297020.688007) danted[13568]: info: pass(1): tcp/connect ]: 0 -> username%mcsocks@127.0.0.1.54516 127.0.0.1.41080 -> 0, 0 -> 127.0.0.1.54625 127.0.0.1.1 -> 0: remote peer error (Connection refused).  Session duration: 0s\n";
        assert_eq!(dante_connects(log), ["127.0.0.1:48080"]);
    }

    #[test]
    fn connect_targets_a_certificate_can_name() {
        assert_eq!(cert_host("127.0.0.1:993"), Some(("127.0.0.1".into(), 993)));
        assert_eq!(cert_host("[::1]:443"), Some(("::1".into(), 443)));
        assert_eq!(
            cert_host("outlook.office365.com:993"),
            Some(("outlook.office365.com".into(), 993))
        );
        assert_eq!(cert_host("a b:1"), None);
        assert_eq!(cert_host("$(x):1"), None);
        assert_eq!(cert_host("host"), None);
    }

    #[test]
    fn urls_carry_percent_encoded_credentials() {
        let creds = ("al ice".to_string(), "p@ss:w/rd".to_string());
        assert_eq!(
            userinfo_url("http", 3128, Some(&creds)),
            "http://al%20ice:p%40ss%3Aw%2Frd@127.0.0.1:3128"
        );
        assert_eq!(
            userinfo_url("socks5h", 1080, None),
            "socks5h://127.0.0.1:1080"
        );
    }
}
