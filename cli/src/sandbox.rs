//! `mailconnect sandbox up|down|status|sign-in`: a local Microsoft 365 stand-in for vendors and
//! demos. `up` starts the identity-platform emulator (this program, detached, `sandbox serve`;
//! it also serves Microsoft Graph mail at `{base}/v1.0` and the SMTP front that clients use for
//! submission) and real Dovecot (IMAP, POP3) and Postfix (SMTP submission) on loopback
//! (`sandbox/stack/mailstack.sh`, built into this program), writes their state to a directory and
//! prints the accounts, registrations, authority URL, ports and CA file a product can be pointed
//! at. `status` prints it again and checks that everything still answers; `down` stops it all.
//!
//! Directory (`--dir`, `$MAILCONNECT_SANDBOX_DIR`, default `/tmp/mailconnect-sandbox` for root,
//! `/tmp/mailconnect-sandbox-<uid>` otherwise): `state.json`, `emulator.json`, `emulator.log`,
//! `scripts/` (the stack scripts), `stack/` (the mail stack, see sandbox/stack/README.md),
//! `stack-up.log`, `accounts.csv` (the sandbox mailboxes, ready for `account import`).

use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use mailconnect_sandbox::{
    Consent, Emulator, EmulatorConfig, ScriptedBrowser, SignIn, DESKTOP_APP_ID, EXAMPLE_TENANT_ID,
    SERVICE_APP_ID, SERVICE_APP_SECRET, WEB_APP_ID,
};
use serde_json::{json, Value};

use crate::admin::{paint, table};

type Res = Result<(), Box<dyn std::error::Error>>;

const SCRIPTS: [(&str, &str); 4] = [
    (
        "mailstack.sh",
        include_str!("../../sandbox/stack/mailstack.sh"),
    ),
    (
        "stackhelper.py",
        include_str!("../../sandbox/stack/stackhelper.py"),
    ),
    (
        "introspect.lua",
        include_str!("../../sandbox/stack/introspect.lua"),
    ),
    (
        "install-deps.sh",
        include_str!("../../sandbox/stack/install-deps.sh"),
    ),
];

/// The Debian packages the mail stack needs (as in sandbox/stack/install-deps.sh).
const PACKAGES: &str = "dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-auth-lua postfix openssl curl python3 ca-certificates";

/// Environment variable `sandbox up` tells vendors to put the service app's secret in.
pub const SECRET_ENV: &str = "MC_SANDBOX_SERVICE_SECRET";

#[derive(Args)]
pub struct SandboxArgs {
    /// The sandbox's state directory.
    #[arg(long, env = "MAILCONNECT_SANDBOX_DIR", global = true)]
    pub dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: SandboxCommand,
}

#[derive(Subcommand)]
pub enum SandboxCommand {
    /// Start the identity-platform emulator and real Dovecot/Postfix in the background and print
    /// the accounts, registrations and ports to point a product at.
    Up {
        /// Port of the emulator (default: any free port).
        #[arg(long)]
        port: Option<u16>,
        /// Only the emulator (no root or mail packages needed; no IMAP, POP3, SMTP).
        #[arg(long)]
        emulator_only: bool,
    },
    /// Print the sandbox again and check that it answers; exit 1 when something is down.
    Status,
    /// Stop everything `up` started.
    Down,
    /// Play the user in the sandbox: complete a device code, or sign in on an authorize URL
    /// (following the emulator's real forms, like a browser), as USER with PASSWORD.
    SignIn(SignInArgs),
    /// (internal) Run the emulator in the foreground for `up`.
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        port: Option<u16>,
    },
}

#[derive(Args)]
pub struct SignInArgs {
    /// The user (e.g. alice@example.test).
    #[arg(long)]
    user: String,
    /// The password (sandbox users: <name>-password).
    #[arg(long)]
    password: String,
    /// Device flow: the user code shown.
    #[arg(long, requires = "verification_uri")]
    device_code: Option<String>,
    /// Device flow: the verification URI shown.
    #[arg(long)]
    verification_uri: Option<String>,
    /// Browser flow: the authorize URL the library opened.
    #[arg(long, conflicts_with = "device_code")]
    url: Option<String>,
    /// Decline the consent instead of accepting it.
    #[arg(long)]
    decline: bool,
    /// Browser flow: stop at the app's redirect and print it as `REDIRECT <url>` instead of
    /// loading it (what a host's embedded web view captures, e.g. the nativeclient URL).
    #[arg(long, requires = "url")]
    capture_redirect: bool,
}

/// The state directory: `--dir`, else `$MAILCONNECT_SANDBOX_DIR`, else under /tmp.
pub fn state_dir(dir: Option<PathBuf>) -> PathBuf {
    dir.unwrap_or_else(|| {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        if uid == 0 {
            PathBuf::from("/tmp/mailconnect-sandbox")
        } else {
            PathBuf::from(format!("/tmp/mailconnect-sandbox-{uid}"))
        }
    })
}

pub async fn run(args: SandboxArgs, json: bool) -> Res {
    let dir = absolute(&state_dir(args.dir));
    match args.command {
        SandboxCommand::Up {
            port,
            emulator_only,
        } => {
            let mut state = up(&dir, port, emulator_only).await?;
            state["running"] = json!(true);
            state["emulator"]["running"] = json!(true);
            if !state["mail"].is_null() {
                state["mail"]["running"] = json!(true);
            }
            if json {
                println!("{}", serde_json::to_string(&with_liveness(&state))?);
            } else {
                print_info(&state, true);
            }
            Ok(())
        }
        SandboxCommand::Status => {
            let Some(state) = read_state(&dir) else {
                if json {
                    println!(
                        "{}",
                        json!({"dir": dir.display().to_string(), "running": false})
                    );
                }
                return Err(format!(
                    "the sandbox is not running (no state in {}); start it with: mailconnect sandbox up",
                    dir.display()
                )
                .into());
            };
            let state = with_liveness(&state);
            if json {
                println!("{}", serde_json::to_string(&state)?);
            } else {
                print_info(&state, false);
            }
            if state["running"].as_bool() == Some(true) {
                Ok(())
            } else {
                Err("part of the sandbox is not running (see above); restart it with: mailconnect sandbox down && mailconnect sandbox up".into())
            }
        }
        SandboxCommand::Down => {
            let stopped = down(&dir)?;
            if json {
                println!(
                    "{}",
                    json!({"dir": dir.display().to_string(), "stopped": stopped})
                );
            } else if stopped {
                println!("sandbox stopped ({})", dir.display());
            } else {
                println!("the sandbox was not running ({})", dir.display());
            }
            Ok(())
        }
        SandboxCommand::SignIn(a) => sign_in(a).await,
        SandboxCommand::Serve { port } => serve(&dir, port).await,
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    }
}

fn write_json(path: &Path, v: &Value) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(v).unwrap_or_default())?;
    std::fs::rename(tmp, path)
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The sandbox's state, when `up` wrote one.
pub fn read_state(dir: &Path) -> Option<Value> {
    read_json(&dir.join("state.json"))
}

// ----- the emulator process -------------------------------------------------------------------

async fn serve(dir: &Path, port: Option<u16>) -> Res {
    let mut config = EmulatorConfig::sandbox();
    // Microsoft's device code interval is 5 s; 1 s keeps demos and tests quick.
    config.tokens.device_poll_interval_secs = 1;
    if let Some(p) = port {
        config.bind = Some(SocketAddr::from(([127, 0, 0, 1], p)));
    }
    let emulator = Emulator::start(config).await?;
    let info = json!({
        "pid": std::process::id(),
        "base_url": emulator.base_url(),
        "introspection_url": emulator.introspection_url(),
    });
    write_json(&dir.join("emulator.json"), &info)?;
    eprintln!("emulator listening on {}", emulator.base_url());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    emulator.shutdown().await;
    let _ = std::fs::remove_file(dir.join("emulator.json"));
    eprintln!("emulator stopped");
    Ok(())
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Whether `pid` is this sandbox's emulator (and not a process that got its number later).
fn is_our_emulator(pid: u32, dir: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    alive(pid) && args.iter().any(|a| a == "serve") && args.iter().any(|a| Path::new(a) == dir)
}

fn answers(base_url: &str) -> bool {
    let Some(hostport) = base_url
        .strip_prefix("http://")
        .or_else(|| base_url.strip_prefix("https://"))
        .map(|s| s.trim_end_matches('/'))
    else {
        return false;
    };
    hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

fn stop_pid(pid: u32) {
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) with a positive pid checked to be our emulator.
    unsafe { libc::kill(p, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive(pid) {
        // SAFETY: as above.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
}

fn start_emulator(dir: &Path, port: Option<u16>) -> Result<Value, Box<dyn std::error::Error>> {
    let _ = std::fs::remove_file(dir.join("emulator.json"));
    let log_path = dir.join("emulator.log");
    let log = std::fs::File::create(&log_path)?;
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("sandbox").arg("--dir").arg(dir).arg("serve");
    if let Some(p) = port {
        cmd.arg("--port").arg(p.to_string());
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a Ctrl-C in the terminal that ran `up` does not stop it.
        .process_group(0)
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(info) = read_json(&dir.join("emulator.json")) {
            return Ok(info);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the emulator did not start ({status}):\n{}",
                tail(&log_path, 15)
            )
            .into());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!(
                "the emulator did not start within 30 s:\n{}",
                tail(&log_path, 15)
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let v: Vec<&str> = text.lines().collect();
    v[v.len().saturating_sub(lines)..]
        .iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

// ----- the mail stack -------------------------------------------------------------------------

fn write_scripts(dir: &Path) -> std::io::Result<PathBuf> {
    let scripts = dir.join("scripts");
    std::fs::create_dir_all(&scripts)?;
    for (name, text) in SCRIPTS {
        let p = scripts.join(name);
        std::fs::write(&p, text)?;
        let mode = if name.ends_with(".sh") { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(scripts)
}

fn missing_packages() -> Vec<String> {
    let Ok(out) = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${db:Status-Status}\\n"])
        .args(PACKAGES.split(' '))
        .stderr(Stdio::null())
        .output()
    else {
        // Not Debian: look for the programs instead.
        return ["dovecot", "postfix", "doveadm", "openssl", "python3"]
            .iter()
            .filter(|b| {
                !["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
                    .iter()
                    .any(|d| Path::new(d).join(b).exists())
            })
            .map(|b| b.to_string())
            .collect();
    };
    let text = String::from_utf8_lossy(&out.stdout);
    PACKAGES
        .split(' ')
        .filter(|p| {
            !text
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [*p, "installed"])
        })
        .map(str::to_string)
        .collect()
}

/// Why the mail stack cannot start here, with the command that fixes it.
fn stack_preflight() -> Result<(), String> {
    let missing = missing_packages();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "the mail servers are not installed (missing: {}). Install them with:\n    sudo bash sandbox/stack/install-deps.sh\n  or: sudo apt-get install --no-install-recommends {}",
            missing.join(" "),
            missing.join(" ")
        ));
    }
    if !root {
        problems.push(
            "the real mail servers need root (Postfix's master refuses to run as another user): run\n    sudo mailconnect sandbox up"
                .to_string(),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the sandbox's mail servers (Dovecot, Postfix) cannot start: {}\n  Without them, `mailconnect sandbox up --emulator-only` starts the identity platform alone.",
            problems.join("; and ")
        ))
    }
}

fn mailstack(dir: &Path, args: &[&str], log: &Path) -> std::io::Result<std::process::ExitStatus> {
    let f = std::fs::File::create(log)?;
    Command::new("bash")
        .arg(dir.join("scripts").join("mailstack.sh"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(f.try_clone()?)
        .stderr(f)
        .status()
}

// ----- up / down / status ---------------------------------------------------------------------

async fn up(
    dir: &Path,
    port: Option<u16>,
    emulator_only: bool,
) -> Result<Value, Box<dyn std::error::Error>> {
    if let Some(state) = read_state(dir) {
        let live = with_liveness(&state);
        if live["running"].as_bool() == Some(true) {
            eprintln!("the sandbox is already running ({})", dir.display());
            return Ok(state);
        }
        eprintln!("cleaning up a sandbox that is partly stopped");
        down(dir)?;
    }
    if !emulator_only {
        stack_preflight()?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // The mail processes run as `nobody` and must reach the stack directory.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    write_scripts(dir)?;

    let emulator = start_emulator(dir, port)?;
    let base_url = emulator["base_url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let introspection = emulator["introspection_url"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let mail = if emulator_only {
        Value::Null
    } else {
        let stack_dir = dir.join("stack");
        let log = dir.join("stack-up.log");
        let ok = mailstack(
            dir,
            &[
                "up",
                &stack_dir.display().to_string(),
                "--introspect-url",
                &introspection,
            ],
            &log,
        )
        .map(|s| s.success())
        .unwrap_or(false);
        let info = read_json(&stack_dir.join("stack.json"));
        // The emulator learns where the stack is (Graph reads and sends there) and starts the
        // SMTP front, which clients use instead of Postfix's ports.
        let connected = match (ok, &info) {
            (true, Some(_)) => {
                mailconnect_sandbox::post_stack_json(&base_url, &stack_dir.join("stack.json"))
                    .await
                    .map_err(|e| e.to_string())
            }
            _ => Err(String::new()),
        };
        match (info, connected) {
            (Some(info), Ok(front)) => json!({
                "dir": stack_dir.display().to_string(),
                "host": info["host"],
                "domain": info["domain"],
                "imap_tls": info["imap_tls"], "imap_starttls": info["imap_starttls"],
                "pop3_tls": info["pop3_tls"], "pop3_starttls": info["pop3_starttls"],
                "smtp_starttls": front["smtp_front"]["smtp_starttls"],
                "smtp_tls": front["smtp_front"]["smtp_tls"],
                "postfix_smtp_starttls": info["smtp_starttls"],
                "postfix_smtp_tls": info["smtp_tls"],
                "ca_file": info["ca_pem"],
                "dovecot_log": info["dovecot_log"], "postfix_log": info["postfix_log"],
            }),
            (_, connected) => {
                let why = match connected {
                    Err(e) if !e.is_empty() => format!(
                        "the emulator could not connect to the mail servers ({e}); everything was stopped again"
                    ),
                    _ => format!(
                        "the mail servers (Dovecot, Postfix) did not start; the emulator was stopped again. Their log ({}):\n{}",
                        log.display(),
                        tail(&log, 20)
                    ),
                };
                let _ = mailstack(
                    dir,
                    &["down", &stack_dir.display().to_string()],
                    &dir.join("stack-down.log"),
                );
                if let Some(pid) = emulator["pid"].as_u64().and_then(|p| u32::try_from(p).ok()) {
                    stop_pid(pid);
                }
                return Err(why.into());
            }
        }
    };

    let cfg = EmulatorConfig::sandbox();
    let users: Vec<Value> = cfg
        .users
        .iter()
        .filter(|u| u.tenant == EXAMPLE_TENANT_ID)
        .map(|u| {
            let mut notes = Vec::new();
            if !u.can_sign_in {
                notes.push("shared mailbox (cannot sign in)".to_string());
            }
            if u.mfa {
                notes.push(format!("MFA code {}", u.mfa_code));
            }
            if u.admin {
                notes.push("tenant admin".into());
            }
            if !u.full_access.is_empty() {
                notes.push(format!("FullAccess to {}", u.full_access.join(", ")));
            }
            json!({
                "user": u.upn,
                "password": if u.can_sign_in { json!(u.password) } else { Value::Null },
                "notes": notes.join("; "),
            })
        })
        .collect();
    let state = json!({
        "dir": dir.display().to_string(),
        "started_at": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "emulator": {
            "pid": emulator["pid"],
            "base_url": base_url,
            "authority": format!("{base_url}/organizations"),
            "graph_base_url": format!("{base_url}/v1.0"),
            "introspection_url": introspection,
            "log": dir.join("emulator.log").display().to_string(),
        },
        "tenant": {"name": "Example Corp", "id": EXAMPLE_TENANT_ID, "domain": "example.test"},
        "registrations": [
            {"name": "desktop", "client_id": DESKTOP_APP_ID,
             "kind": "public client: browser (redirect http://localhost, any port) and device code"},
            {"name": "service", "client_id": SERVICE_APP_ID, "tenant": EXAMPLE_TENANT_ID,
             "kind": "confidential client: client credentials (app-only) for alice@ and sales@",
             "secret_env": SECRET_ENV, "secret": SERVICE_APP_SECRET},
            {"name": "web", "client_id": WEB_APP_ID,
             "kind": "misregistered: http://localhost under Web (AADSTS7000218 without a secret)"}
        ],
        "users": users,
        "mail": mail,
        "accounts_csv": dir.join("accounts.csv").display().to_string(),
    });
    if !mail.is_null() {
        std::fs::write(dir.join("accounts.csv"), accounts_csv(&mail))?;
    }
    write_json(&dir.join("state.json"), &state)?;
    Ok(state)
}

/// The sandbox mailboxes as an import file, written the way Excel does in Germany (`;`).
fn accounts_csv(mail: &Value) -> String {
    let host = mail["host"].as_str().unwrap_or("127.0.0.1");
    let servers = format!(
        "{host};{};tls;{host};{};tls;{host};{};starttls",
        mail["imap_tls"], mail["pop3_tls"], mail["smtp_starttls"]
    );
    let mut s = String::from("id;mailbox;login;flow;imap_host;imap_port;imap_security;pop3_host;pop3_port;pop3_security;smtp_host;smtp_port;smtp_security\r\n");
    for (id, mailbox, login) in [
        ("alice", "alice@example.test", ""),
        ("bob", "bob@example.test", ""),
        ("carol", "carol@example.test", ""),
        ("sales", "sales@example.test", "alice@example.test"),
    ] {
        s.push_str(&format!("{id};{mailbox};{login};device_code;{servers}\r\n"));
    }
    s
}

fn down(dir: &Path) -> Result<bool, Box<dyn std::error::Error>> {
    let state = read_state(dir);
    let mut stopped = false;
    let stack_dir = dir.join("stack");
    if stack_dir.join("stack.json").exists() || state.as_ref().is_some_and(|s| !s["mail"].is_null())
    {
        if !dir.join("scripts").join("mailstack.sh").exists() {
            write_scripts(dir)?;
        }
        let stack = stack_dir.display().to_string();
        // `status` exits 3 when nothing of this stack runs.
        let running = mailstack(dir, &["status", &stack], &dir.join("stack-status.log"))?;
        if running.code() != Some(3) {
            let log = dir.join("stack-down.log");
            let ok = mailstack(dir, &["down", &stack], &log)?;
            if !ok.success() {
                return Err(
                    format!("stopping the mail servers failed:\n{}", tail(&log, 15)).into(),
                );
            }
            stopped = true;
        }
    }
    let pids = [
        state.as_ref().and_then(|s| s["emulator"]["pid"].as_u64()),
        read_json(&dir.join("emulator.json")).and_then(|e| e["pid"].as_u64()),
    ];
    for pid in pids.into_iter().flatten() {
        if let Ok(pid) = u32::try_from(pid) {
            if is_our_emulator(pid, dir) {
                stop_pid(pid);
                stopped = true;
            }
        }
    }
    let _ = std::fs::remove_file(dir.join("state.json"));
    let _ = std::fs::remove_file(dir.join("emulator.json"));
    Ok(stopped)
}

/// The state with `running` flags: the emulator process answers, the mail servers run.
fn with_liveness(state: &Value) -> Value {
    let dir = PathBuf::from(state["dir"].as_str().unwrap_or_default());
    let emulator_up = state["emulator"]["pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .is_some_and(|pid| is_our_emulator(pid, &dir))
        && answers(state["emulator"]["base_url"].as_str().unwrap_or_default());
    let mail_up = if state["mail"].is_null() {
        None
    } else {
        Some(
            mailstack(
                &dir,
                &["status", state["mail"]["dir"].as_str().unwrap_or_default()],
                &dir.join("stack-status.log"),
            )
            .map(|s| s.success())
            .unwrap_or(false),
        )
    };
    let mut v = state.clone();
    v["running"] = json!(emulator_up && mail_up != Some(false));
    v["emulator"]["running"] = json!(emulator_up);
    if let Some(m) = mail_up {
        v["mail"]["running"] = json!(m);
    }
    v
}

fn print_info(state: &Value, fresh: bool) {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    };
    let up = |v: &Value| match v.as_bool() {
        Some(true) => paint("running", true),
        Some(false) => paint("NOT RUNNING", false),
        None => String::new(),
    };
    let e = &state["emulator"];
    let base = s(&e["base_url"]);
    println!(
        "mailconnect sandbox{} (state in {})\n",
        if fresh { " is up" } else { "" },
        s(&state["dir"])
    );
    println!(
        "Identity platform emulator (stands in for https://login.microsoftonline.com)  {}",
        up(&e["running"])
    );
    table(
        &["", ""],
        &[
            vec!["authority host".into(), base.clone()],
            vec![
                "authority".into(),
                format!("{} (tenant segments as at Microsoft)", s(&e["authority"])),
            ],
            vec![
                "tenant".into(),
                format!(
                    "{} {} ({})",
                    s(&state["tenant"]["name"]),
                    s(&state["tenant"]["id"]),
                    s(&state["tenant"]["domain"])
                ),
            ],
            vec![
                "Microsoft Graph".into(),
                format!(
                    "{} (stands in for https://graph.microsoft.com/v1.0{})",
                    s(&e["graph_base_url"]),
                    if state["mail"].is_null() {
                        "; no mail servers, so mail requests answer 503"
                    } else {
                        "; mail on the servers below"
                    }
                ),
            ],
            vec!["introspection".into(), s(&e["introspection_url"])],
            vec!["log".into(), s(&e["log"])],
        ],
    );
    println!("\nApp registrations");
    let regs: Vec<Vec<String>> = state["registrations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| vec![s(&r["name"]), s(&r["client_id"]), s(&r["kind"])])
        .collect();
    table(&["name", "client id", "kind"], &regs);
    println!(
        "  the service app's secret, for --secret-env:  export {SECRET_ENV}={}",
        s(&state["registrations"][1]["secret"])
    );
    println!("\nUsers and mailboxes");
    let users: Vec<Vec<String>> = state["users"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| vec![s(&u["user"]), s(&u["password"]), s(&u["notes"])])
        .collect();
    table(&["user", "password", "notes"], &users);
    let m = &state["mail"];
    if m.is_null() {
        println!("\nMail servers: not started (--emulator-only)");
    } else {
        println!(
            "\nMail servers on {} (Dovecot: IMAP, POP3; Postfix: SMTP submission)  {}",
            s(&m["host"]),
            up(&m["running"])
        );
        table(
            &["protocol", "port", "security"],
            &[
                vec!["IMAP".into(), s(&m["imap_tls"]), "TLS (like 993)".into()],
                vec![
                    "IMAP".into(),
                    s(&m["imap_starttls"]),
                    "STARTTLS (like 143)".into(),
                ],
                vec!["POP3".into(), s(&m["pop3_tls"]), "TLS (like 995)".into()],
                vec![
                    "POP3".into(),
                    s(&m["pop3_starttls"]),
                    "STLS (like 110)".into(),
                ],
                vec![
                    "SMTP".into(),
                    s(&m["smtp_starttls"]),
                    "STARTTLS (like 587), the emulator's SMTP front before Postfix".into(),
                ],
                vec![
                    "SMTP".into(),
                    s(&m["smtp_tls"]),
                    "TLS (like 465), the SMTP front".into(),
                ],
            ],
        );
        println!(
            "  CA certificate to trust: {}\n  logs: {}, {}",
            s(&m["ca_file"]),
            s(&m["dovecot_log"]),
            s(&m["postfix_log"])
        );
    }
    println!("\nTry it:");
    let mut lines = vec![format!(
        "export MAILCONNECT_STORE={}/try.db{}",
        s(&state["dir"]),
        if m.is_null() {
            String::new()
        } else {
            format!(" MAILCONNECT_CA_FILE={}", s(&m["ca_file"]))
        }
    )];
    lines.push(format!("mailconnect registration add --id sandbox --tenant organizations --client-id {DESKTOP_APP_ID} --authority-host {base}"));
    if m.is_null() {
        lines.push("mailconnect account add --id alice --mailbox alice@example.test --registration sandbox --flow device_code".into());
    } else {
        lines.push(format!(
            "mailconnect account import {} --registration sandbox",
            s(&state["accounts_csv"])
        ));
    }
    lines.push("mailconnect connect alice    # open the URL shown and sign in as alice@example.test / alice-password".into());
    if !m.is_null() {
        lines.push("mailconnect test alice && mailconnect send alice --to alice@example.test --subject hi --body hello && mailconnect fetch alice".into());
    }
    lines.push("mailconnect sandbox down".into());
    for l in lines {
        println!("  {l}");
    }
    let _ = std::io::stdout().flush();
}

/// `--var` values for a harness scenario run against this sandbox.
pub fn harness_vars(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let state = read_state(dir).ok_or_else(|| {
        format!(
            "no sandbox state in {}; start one with: mailconnect sandbox up",
            dir.display()
        )
    })?;
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let e = &state["emulator"];
    let mut vars = vec![
        ("EMULATOR".into(), s(&e["base_url"])),
        ("GRAPH".into(), s(&e["graph_base_url"])),
        ("INTROSPECT".into(), s(&e["introspection_url"])),
        ("SANDBOX_DIR".into(), s(&state["dir"])),
    ];
    let m = &state["mail"];
    if !m.is_null() {
        for (var, key) in [
            ("MAIL_HOST", "host"),
            ("IMAP_PORT", "imap_tls"),
            ("IMAP_STARTTLS_PORT", "imap_starttls"),
            ("POP3_PORT", "pop3_tls"),
            ("POP3_STARTTLS_PORT", "pop3_starttls"),
            ("SMTP_PORT", "smtp_starttls"),
            ("SMTP_TLS_PORT", "smtp_tls"),
            ("CA_FILE", "ca_file"),
        ] {
            vars.push((var.into(), s(&m[key])));
        }
    }
    Ok(vars)
}

/// Bring a sandbox up in `dir` (for `demo`).
pub async fn up_in(dir: &Path) -> Result<Value, Box<dyn std::error::Error>> {
    up(dir, None, false).await
}

/// Stop the sandbox in `dir` (for `demo`).
pub fn down_in(dir: &Path) -> Result<bool, Box<dyn std::error::Error>> {
    down(dir)
}

/// Print the sandbox in `state` (for `demo`).
pub fn print(state: &Value) {
    print_info(&with_liveness(state), true);
}

async fn sign_in(args: SignInArgs) -> Res {
    let SignInArgs {
        user,
        password,
        device_code,
        verification_uri,
        url,
        decline,
        capture_redirect,
    } = args;
    let script = SignIn {
        user,
        password,
        mfa_code: Some("123456".into()),
        consent: if decline {
            Consent::Decline
        } else {
            Consent::Accept
        },
        deliver_redirect: !capture_redirect,
    };
    let browser = ScriptedBrowser::new();
    let outcome = match (device_code, verification_uri, url) {
        (Some(code), Some(uri), None) => browser.complete_device_code(&uri, &code, &script).await?,
        (None, None, Some(url)) => browser.sign_in(&url, &script).await?,
        _ => return Err("give --device-code with --verification-uri, or --url".into()),
    };
    if let Some(page) = outcome.error_page {
        return Err(format!("the sign-in ended on an error page: {page}").into());
    }
    println!("signed in as {}", outcome.signed_in_as.unwrap_or_default());
    if capture_redirect {
        let url = outcome
            .redirect_url
            .ok_or("the sign-in did not end at the app's redirect URI")?;
        println!("REDIRECT {url}");
    }
    Ok(())
}
