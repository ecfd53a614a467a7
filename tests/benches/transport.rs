//! Transport benchmark against the real stack, with peers measured in the same run:
//! - Test() (IMAP + POP3 + SMTP concurrently) vs three sequential `curl` OAuth logins;
//! - SMTP: 1,000 messages on one session vs Python smtplib, and Postfix's smtp-source via LMTP;
//! - IMAP: fetching 10,000 small messages vs Python imaplib (the same FETCH items) and curl (one
//!   connection, UID URLs).
//!
//! `cargo bench -p mailconnect-tests --bench transport` (needs the stack's packages and curl, python3);
//! `MC_BENCH_PARTS=imap` (or `test`, `smtp`, comma-separated) runs only those parts.
//! Prints a table; numbers are wall-clock medians on this machine (no assertions: a benchmark, not a test).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mailconnect_core::check::TestOptions;
use mailconnect_core::mail::FetchRequest;
use mailconnect_core::transport::message::Envelope;
use mailconnect_core::transport::pop3::Mechanism;
use mailconnect_core::transport::sasl;
use mailconnect_core::transport::smtp::SmtpSession;
use mailconnect_core::transport::stream::Security;
use mailconnect_core::{CancellationToken, Client, ConnectOptions, Protocol};
use mailconnect_tests::*;
use secrecy::ExposeSecret;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn run_timed(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("peer runs");
    let d = t.elapsed();
    assert!(
        out.status.success(),
        "peer failed: {cmd:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

fn python(script: &str, env: &[(&str, String)]) -> f64 {
    peers::python_seconds("python3", script, env)
}

/// A Python peer that prints its wall time and its own CPU time, in seconds.
fn python_wall_cpu(script: &str, env: &[(&str, String)]) -> (Duration, Duration) {
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(script)
        .envs(env.iter().map(|(k, v)| (k, v)));
    let out = cmd.output().expect("python runs");
    assert!(
        out.status.success(),
        "python peer failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text
        .split_whitespace()
        .map(|v| v.parse::<f64>().expect("seconds"));
    let (wall, cpu) = (it.next().expect("wall"), it.next().expect("cpu"));
    (Duration::from_secs_f64(wall), Duration::from_secs_f64(cpu))
}

/// CPU time of this process, every thread (from /proc, nanoseconds).
fn process_cpu() -> Duration {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task")
        .expect("/proc")
        .flatten()
    {
        if let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) {
            ns += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(ns)
}

/// CPU time of the reaped children of the process in `pid_file` (utime + stime of the children
/// it waited for: Dovecot's master reaps each imap process when its client logs out).
fn children_cpu(pid_file: &std::path::Path) -> Duration {
    let pid = std::fs::read_to_string(pid_file).expect("master.pid");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).expect("stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat")
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 =
        fields[13].parse::<u64>().expect("cutime") + fields[14].parse::<u64>().expect("cstime");
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// The growth of `cpu` since `before`, once it has stopped growing (the served process has
/// exited and been reaped).
fn settled(cpu: impl Fn() -> Duration, before: Duration) -> Duration {
    let mut last = cpu();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let now = cpu();
        if now == last && now > before {
            break;
        }
        last = now;
    }
    last - before
}

const SMTPLIB: &str = r#"
import base64, os, smtplib, ssl, time
ctx = ssl.create_default_context(cafile=os.environ["CA"])
s = smtplib.SMTP("127.0.0.1", int(os.environ["PORT"]))
s.starttls(context=ctx); s.ehlo()
user, tok = os.environ["USER_"], os.environ["TOKEN"]
code, _ = s.docmd("AUTH", "XOAUTH2"); assert code == 334, code
code, resp = s.docmd(base64.b64encode(f"user={user}\x01auth=Bearer {tok}\x01\x01".encode()).decode()); assert code == 235, resp
n = int(os.environ["N"]); to = os.environ["TO"]
t = time.perf_counter()
for i in range(n):
    s.sendmail(user, [to], f"From: {user}\r\nTo: {to}\r\nSubject: smtplib {i}\r\n\r\nbench\r\n")
print(time.perf_counter() - t)
s.quit()
"#;

const IMAPLIB: &str = r#"
import imaplib, os, ssl, time
ctx = ssl.create_default_context(cafile=os.environ["CA"])
user, tok = os.environ["USER_"], os.environ["TOKEN"]
t, c = time.perf_counter(), time.process_time()
M = imaplib.IMAP4_SSL("127.0.0.1", int(os.environ["PORT"]), ssl_context=ctx)
M.authenticate("XOAUTH2", lambda x: f"user={user}\x01auth=Bearer {tok}\x01\x01".encode())
M.select("INBOX", readonly=True)
typ, data = M.uid("FETCH", "1:*", "(UID RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[])")
count = sum(1 for d in data if isinstance(d, tuple))
assert count == int(os.environ["N"]), count
print(time.perf_counter() - t, time.process_time() - c)
M.logout()
"#;

async fn connect(client: &Client, env: &Env, stack: &MailStack, id: &str, user: &str) {
    let acc = serde_json::json!({"id": id, "mailbox": user, "registration": "desktop", "flow": "device_code", "servers": stack.servers()});
    client.put_account_json(&acc.to_string()).unwrap();
    let u = ScriptedUser::new(sign_in_as(user));
    client
        .connect(id, ConnectOptions::default(), &u, &CancellationToken::new())
        .await
        .expect("connect");
    let _ = env;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let env = env_with(|c| c.tokens.device_poll_interval_secs = 1).await;
    let stack = MailStack::up(&env.emulator.introspection_url(), &[]);
    let client = open_client_with_ca(&env.dir.path().join("bench.db"), stack.ca_pem());
    let reg = serde_json::json!({"id":"desktop","provider":"microsoft","tenant":"organizations","authority_host": env.emulator.base_url(),"client_id": DESKTOP_APP});
    client.put_registration_json(&reg.to_string()).unwrap();
    connect(&client, &env, &stack, "alice", "alice@example.test").await;
    connect(&client, &env, &stack, "bob", "bob@example.test").await;
    connect(&client, &env, &stack, "carol", "carol@example.test").await;
    let nc = CancellationToken::new();
    let ca = stack.info["ca_pem"].as_str().unwrap().to_string();
    let mut rows: Vec<(String, String, String)> = Vec::new();

    // MC_BENCH_PARTS=test,smtp,imap (default: all) runs only those parts, e.g. under a profiler.
    let part = |name: &str| {
        std::env::var("MC_BENCH_PARTS").map_or(true, |v| v.split(',').any(|p| p.trim() == name))
    };

    if part("test") {
        // 1. Test() vs three sequential curl logins.
        let token = client
            .access_token("alice", &nc)
            .await
            .unwrap()
            .token
            .expose_secret()
            .to_string();
        let _ = client
            .test("alice", &[], TestOptions::default(), &nc)
            .await
            .unwrap();
        let mut ours = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            let r = client
                .test("alice", &[], TestOptions::default(), &nc)
                .await
                .unwrap();
            ours.push(t.elapsed());
            assert!(r.ok);
            let phases: Vec<String> = r
                .results
                .iter()
                .map(|p| {
                    format!(
                        "{} {} ms ({})",
                        p.protocol.as_str(),
                        p.elapsed_ms,
                        serde_json::to_string(&p.phases_ms).unwrap_or_default()
                    )
                })
                .collect();
            println!(
                "Test(): {} ms; token {} ms; {}",
                r.elapsed_ms,
                r.token.elapsed_ms,
                phases.join("; ")
            );
        }
        let curl = |args: Vec<String>| {
            let mut c = Command::new("curl");
            c.args([
                "-s",
                "--cacert",
                &ca,
                "-u",
                "alice@example.test:",
                "--oauth2-bearer",
                &token,
            ])
            .args(args);
            c
        };
        let mut peer = Vec::new();
        for _ in 0..7 {
            let mut total = Duration::ZERO;
            total += run_timed(&mut curl(vec![format!(
                "imaps://127.0.0.1:{}/",
                stack.port("imap_tls")
            )]));
            total += run_timed(&mut curl(vec![format!(
                "pop3s://127.0.0.1:{}/",
                stack.port("pop3_tls")
            )]));
            total += run_timed(&mut curl(vec![
                "--ssl-reqd".into(),
                "-X".into(),
                "NOOP".into(),
                format!("smtp://127.0.0.1:{}/", stack.port("smtp_starttls")),
            ]));
            peer.push(total);
        }
        rows.push((
            "Test(): IMAP+POP3+SMTP login and check".into(),
            format!("mailconnect {} (concurrent)", ms(median(ours))),
            format!("curl x3 sequential {}", ms(median(peer))),
        ));
    }

    if part("smtp") {
        // 2. SMTP: 1,000 messages on one session.
        const N: usize = 1000;
        let tok_bob = client.access_token("bob", &nc).await.unwrap();
        let tls = mailconnect_core::tls::client_config(&mailconnect_core::tls::TlsOptions {
            extra_ca_pem: vec![stack.ca_pem()],
            danger_accept_invalid_certs: false,
        })
        .unwrap();
        let mut s = SmtpSession::connect(
            "127.0.0.1",
            stack.port("smtp_starttls"),
            &mailconnect_core::net::Route::Direct,
            Security::Starttls,
            tls,
            Duration::from_secs(30),
            "bench.localhost",
        )
        .await
        .unwrap();
        s.authenticate(
            Mechanism::Xoauth2,
            &sasl::xoauth2("bob@example.test", &tok_bob.token),
        )
        .await
        .unwrap()
        .map_err(|f| f.reply)
        .unwrap();
        let env_bob = Envelope {
            from: "bob@example.test".into(),
            to: vec!["bob@example.test".into()],
        };
        let t = Instant::now();
        for i in 0..N {
            let m = format!("From: bob@example.test\r\nTo: bob@example.test\r\nSubject: mailconnect {i}\r\n\r\nbench\r\n");
            s.send(&env_bob, m.as_bytes()).await.unwrap();
        }
        let ours = t.elapsed();
        let _ = s.quit().await;
        let py = python(
            SMTPLIB,
            &[
                ("CA", ca.clone()),
                ("PORT", stack.port("smtp_starttls").to_string()),
                ("USER_", "bob@example.test".into()),
                ("TOKEN", tok_bob.token.expose_secret().to_string()),
                ("N", N.to_string()),
                ("TO", "bob@example.test".into()),
            ],
        );
        let src = run_timed(
            Command::new("smtp-source")
                .args([
                    "-L",
                    "-s",
                    "1",
                    "-m",
                    &N.to_string(),
                    "-f",
                    "bob@example.test",
                    "-t",
                    "bob@example.test",
                ])
                .arg(format!("127.0.0.1:{}", stack.port("lmtp"))),
        );
        rows.push((
            format!("SMTP: {N} messages, one session (STARTTLS + XOAUTH2)"),
            format!("mailconnect {:.0} msg/s", N as f64 / ours.as_secs_f64()),
            format!(
                "smtplib {:.0} msg/s; smtp-source -L (LMTP, no TLS/AUTH) {:.0} msg/s",
                N as f64 / py,
                N as f64 / src.as_secs_f64()
            ),
        ));
    }

    if part("imap") {
        // 3. IMAP: fetch 10,000 small messages (written straight into carol's maildir).
        const M: usize = 10_000;
        let maildir = stack.dir.path().join("mail/example.test/carol/Maildir");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        for i in 0..M {
            let mut f = std::fs::File::create(
                maildir
                    .join("new")
                    .join(format!("1700000000.bench{i}.localhost")),
            )
            .unwrap();
            write!(f, "From: bench@example.test\r\nTo: carol@example.test\r\nSubject: message {i}\r\nMessage-ID: <{i}@bench>\r\n\r\nSmall body {i}.\r\n").unwrap();
        }
        // Dovecot runs the mailbox as the stack's mail user: hand the files over.
        let st = Command::new("chown")
            .args(["-R", "--reference"])
            .arg(stack.dir.path().join("mail"))
            .arg(stack.dir.path().join("mail/example.test"))
            .status()
            .unwrap();
        assert!(st.success());
        // Warm Dovecot's index so every reader sees the same state.
        let warm = FetchRequest {
            protocol: Some(Protocol::Imap),
            headers_only: true,
            limit: Some(1),
            ..Default::default()
        };
        client.fetch("carol", &warm, &nc).await.unwrap();
        let tok_carol = client
            .access_token("carol", &nc)
            .await
            .unwrap()
            .token
            .expose_secret()
            .to_string();
        // Where the time goes: this process's CPU (every thread), the peer's CPU, and the CPU
        // of Dovecot's imap process serving the fetch (its master's reaped-children time).
        let master = stack.dir.path().join("dovecot/run/master.pid");
        let server_cpu = || children_cpu(&master);
        let (mut ours, mut ours_cpu, mut ours_srv) = (Vec::new(), Vec::new(), Vec::new());
        let (mut py, mut py_cpu, mut py_srv) = (Vec::new(), Vec::new(), Vec::new());
        let (mut split, mut split_cpu, mut split_srv) = (Vec::new(), Vec::new(), Vec::new());
        // Interleaved rounds, so both meet the same machine.
        for _ in 0..5 {
            let (s0, c0, t) = (server_cpu(), process_cpu(), Instant::now());
            let msgs = client
                .fetch(
                    "carol",
                    &FetchRequest {
                        protocol: Some(Protocol::Imap),
                        ..Default::default()
                    },
                    &nc,
                )
                .await
                .unwrap();
            ours.push(t.elapsed());
            ours_cpu.push(process_cpu() - c0);
            assert_eq!(msgs.len(), M);
            drop(msgs);
            ours_srv.push(settled(server_cpu, s0));

            // The same fetch split over two sessions (`connections: 2`).
            let (s0, c0, t) = (server_cpu(), process_cpu(), Instant::now());
            let msgs = client
                .fetch(
                    "carol",
                    &FetchRequest {
                        protocol: Some(Protocol::Imap),
                        connections: Some(2),
                        ..Default::default()
                    },
                    &nc,
                )
                .await
                .unwrap();
            split.push(t.elapsed());
            split_cpu.push(process_cpu() - c0);
            assert_eq!(msgs.len(), M);
            drop(msgs);
            split_srv.push(settled(server_cpu, s0));

            let s0 = server_cpu();
            let (wall, cpu) = python_wall_cpu(
                IMAPLIB,
                &[
                    ("CA", ca.clone()),
                    ("PORT", stack.port("imap_tls").to_string()),
                    ("USER_", "carol@example.test".into()),
                    ("TOKEN", tok_carol.clone()),
                    ("N", M.to_string()),
                ],
            );
            py.push(wall);
            py_cpu.push(cpu);
            py_srv.push(settled(server_cpu, s0));
        }
        let cfg = env.dir.path().join("curl.cfg");
        {
            let mut f = std::fs::File::create(&cfg).unwrap();
            for uid in 1..=M {
                writeln!(
                    f,
                    "url = \"imaps://127.0.0.1:{}/INBOX;UID={uid}\"\noutput = \"/dev/null\"",
                    stack.port("imap_tls")
                )
                .unwrap();
            }
        }
        let curl_t = run_timed(
            Command::new("curl")
                .args([
                    "-s",
                    "--cacert",
                    &ca,
                    "-u",
                    "carol@example.test:",
                    "--oauth2-bearer",
                    &tok_carol,
                    "-K",
                ])
                .arg(&cfg),
        );
        let (ours, py, split) = (median(ours), median(py), median(split));
        rows.push((
            format!("IMAP: fetch {M} small messages (UID RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[])"),
            format!(
                "mailconnect {} ({:.2}x imaplib's time; client CPU {}, Dovecot CPU {}); \
                 with `connections: 2` {} ({:.2}x; client CPU {}, Dovecot CPU {} in both sessions)",
                ms(ours),
                ours.as_secs_f64() / py.as_secs_f64(),
                ms(median(ours_cpu)),
                ms(median(ours_srv)),
                ms(split),
                split.as_secs_f64() / py.as_secs_f64(),
                ms(median(split_cpu)),
                ms(median(split_srv))
            ),
            format!(
                "imaplib {} (client CPU {}, Dovecot CPU {}); curl (one connection, one URL per UID) {}",
                ms(py),
                ms(median(py_cpu)),
                ms(median(py_srv)),
                ms(curl_t)
            ),
        ));
    }

    println!("\n| what | mailconnect | peers (same run, same stack) |\n|---|---|---|");
    for (what, a, b) in rows {
        println!("| {what} | {a} | {b} |");
    }
}
