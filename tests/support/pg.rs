//! A throw-away PostgreSQL server for tests: `initdb` into a temporary directory and `postgres`
//! listening on a free loopback port, stopped when dropped (and by a watchdog when the test
//! process dies without dropping it).
//!
//! The binaries come from Debian's `postgresql` package (`/usr/lib/postgresql/<major>/bin`,
//! installed by `sandbox/stack/install-deps.sh`), or from `MC_PG_BIN`, or from `PATH`.
//! PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user (or
//! `nobody`). Authentication is `trust` on 127.0.0.1 for the superuser [`USER`].

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The database superuser of test servers.
pub const USER: &str = "mailconnect";

/// A running PostgreSQL server.
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    server: Option<Child>,
    watchdog: Option<Child>,
    ca_pem: Option<PathBuf>,
}

/// The directory with `initdb`, `postgres`, `psql` and `pg_dump`.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MC_PG_BIN") {
        return PathBuf::from(d);
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return bin;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|d| d.join("initdb").exists() && d.join("postgres").exists())
        .unwrap_or_else(|| {
            panic!(
                "PostgreSQL server binaries (initdb, postgres) not found: install the Debian package \
                 'postgresql' (sandbox/stack/install-deps.sh does) or set MC_PG_BIN"
            )
        })
}

/// The uid and gid to run the server as when we are root (`postgres`, else `nobody`).
fn unprivileged_user() -> Option<(u32, u32)> {
    let euid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok()?;
    if euid != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let find = |name: &str| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == name).then(|| (f[2].parse().ok(), f[3].parse().ok()))
        })
    };
    match find("postgres").or_else(|| find("nobody")) {
        Some((Some(u), Some(g))) => Some((u, g)),
        _ => panic!("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL as"),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn as_server_user(cmd: &mut Command, user: Option<(u32, u32)>) -> &mut Command {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn chown(path: &Path, user: Option<(u32, u32)>) {
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

/// A throw-away CA and a server certificate for 127.0.0.1 and localhost (openssl).
fn make_tls(dir: &Path) {
    let script = r#"set -e
openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=mailconnect test PostgreSQL CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem
openssl ecparam -name prime256v1 -genkey -noout -out server.key
openssl req -new -key server.key -subj "/CN=localhost" -out server.csr
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 0x5eed -days 2 -sha256 -extfile server.ext -out server.pem
chmod 0600 server.key
"#;
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("openssl runs (install the Debian package openssl)");
    assert!(
        out.status.success(),
        "making the test certificates failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PgServer {
    /// Start a server without TLS.
    pub fn start() -> PgServer {
        PgServer::start_with(false)
    }

    /// Start a server that also offers TLS with a certificate from a throw-away CA ([`Self::ca_pem`]).
    pub fn start_tls() -> PgServer {
        PgServer::start_with(true)
    }

    fn start_with(tls: bool) -> PgServer {
        let bin = bin_dir();
        let user = unprivileged_user();
        let dir = tempfile::Builder::new()
            .prefix("mcpg")
            .tempdir()
            .expect("temp dir");
        chown(dir.path(), user);
        let data = dir.path().join("data");
        let out = as_server_user(&mut Command::new(bin.join("initdb")), user)
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .current_dir(dir.path())
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut ca_pem = None;
        let mut ssl_args: Vec<String> = vec![];
        if tls {
            let t = dir.path().join("tls");
            std::fs::create_dir(&t).expect("tls dir");
            make_tls(&t);
            chown(&t, user);
            chown(&t.join("server.key"), user);
            chown(&t.join("server.pem"), user);
            ssl_args = vec![
                "-c".into(),
                "ssl=on".into(),
                "-c".into(),
                format!("ssl_cert_file={}", t.join("server.pem").display()),
                "-c".into(),
                format!("ssl_key_file={}", t.join("server.key").display()),
            ];
            ca_pem = Some(t.join("ca.pem"));
        }
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let log = dir.path().join(format!("server-{port}.log"));
            let f = std::fs::File::create(&log).expect("log file");
            let mut server = as_server_user(&mut Command::new(bin.join("postgres")), user)
                .arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string()])
                .args(["-c", "listen_addresses=127.0.0.1"])
                .arg("-c")
                .arg(format!("unix_socket_directories={}", dir.path().display()))
                .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
                .args(["-c", "max_connections=200", "-c", "shared_buffers=32MB"])
                .args(&ssl_args)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(f.try_clone().expect("log"))
                .stderr(f)
                .spawn()
                .expect("postgres starts");
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                last_log = std::fs::read_to_string(&log).unwrap_or_default();
                if last_log.contains("ready to accept connections")
                    && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                {
                    let watchdog = Command::new("sh")
                        .arg("-c")
                        .arg(format!(
                            "while kill -0 {} 2>/dev/null; do sleep 1; done; kill -INT {} 2>/dev/null",
                            std::process::id(),
                            server.id()
                        ))
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .ok();
                    return PgServer {
                        dir,
                        bin,
                        port,
                        server: Some(server),
                        watchdog,
                        ca_pem,
                    };
                }
                if server.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                    let _ = server.kill();
                    let _ = server.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("PostgreSQL did not start:\n{last_log}");
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The throw-away CA certificate (PEM) of a server started with [`Self::start_tls`].
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.ca_pem.as_ref().expect("a TLS server")).expect("CA file")
    }

    /// The store URL of database `db` (no `sslmode`: the default, `prefer`).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Create database `db` and return its store URL.
    pub fn create_database(&self, db: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE \"{db}\""));
        self.url(db)
    }

    fn client(&self, tool: &str, db: &str) -> Command {
        let mut c = Command::new(self.bin.join(tool));
        c.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
            .args(["-d", db])
            .env("PGSSLMODE", "disable")
            // Generous: a loaded CI machine can take many seconds to accept and authenticate.
            .env("PGCONNECT_TIMEOUT", "60");
        c
    }

    /// Run SQL with psql; the rows, unaligned (`|`-separated), one a line.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self
            .client("psql", db)
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Everything stored in database `db`, as `pg_dump --data-only` prints it (bytea as hex).
    pub fn dump(&self, db: &str) -> String {
        let out = self
            .client("pg_dump", db)
            .args(["--data-only", "--no-owner"])
            .output()
            .expect("pg_dump runs");
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The server's data directory (files on disk).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if let Some(mut s) = self.server.take() {
            // Fast shutdown (SIGINT): open sessions are ended, the server exits cleanly.
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!("kill -INT {}", s.id()))
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while s.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = s.kill();
            let _ = s.wait();
        }
    }
}

/// Make the stored access token of `account` look expired (as if its hour were up), through the
/// store's compare-and-swap. Returns false when someone else wrote the record meanwhile.
pub fn expire_access_token(store: &dyn mailconnect_core::store::TokenStore, account: &str) -> bool {
    let Some(mut rec) = store.load_tokens(account).expect("load tokens") else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    rec.meta.access_issued_at = Some(now - 3610);
    rec.meta.access_expires_at = Some(now - 10);
    store
        .save_tokens(&rec, rec.version)
        .expect("save tokens")
        .is_some()
}
