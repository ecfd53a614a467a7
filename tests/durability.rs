//! Durability on SQLite and on PostgreSQL (a real server, tests/support/pg.rs):
//!
//! * **Expiry rounds**: 4 processes × 16 threads ask for one account's token at the moment it
//!   expires, several rounds: the emulator sees exactly one refresh per expiry, and all 64
//!   callers of a round get the same new token.
//! * **SIGKILL in the middle of refresh-and-store**: a child process refreshes several accounts
//!   in a loop (each cycle: mark the access token expired, then ask for a token, which refreshes
//!   and stores the rotated refresh token) and is killed with SIGKILL at a random moment, over
//!   and over (200+ kills per backend). The emulator delays token answers by a random few
//!   milliseconds so kills land before, during and after the token request. After every kill
//!   the parent checks every account's record (it decrypts, is connected, its version never goes
//!   back, its refresh token never goes back to an earlier one); at the end every account must
//!   still refresh with what is stored. The emulator refuses a refresh token whose successor has
//!   been used, so an older refresh token stored again after a newer one was in use (a lost
//!   update) is refused. (A time-based reuse grace would also refuse the stored token of an
//!   account whose rotated answer died with a child and that no child refreshed for a while,
//!   which on a loaded machine takes longer than any fixed grace.)
//!
//! Children are this test binary run again (the ignored `child_*` tests, selected by environment).
//! `MC_DURABILITY_KILLS` changes the number of kills, `MC_DURABILITY_SEED` the random sequence.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mailconnect_core::store::postgres::PostgresStore;
use mailconnect_core::store::{KeySource, SqliteStore, StoredState, TokenStore};
use mailconnect_core::tls::TlsOptions;
use mailconnect_core::{AccountState, CancellationToken, Client, ClientOptions};
use mailconnect_sandbox::{Emulator, EmulatorConfig, Fault, FaultRule};
use mailconnect_tests::pg::{expire_access_token, PgServer};
use mailconnect_tests::*;
use secrecy::ExposeSecret;

const KEY_B64: &str = "c3RvcmUta2V5LWZvci1kdXJhYmlsaXR5LXRlc3RzISE=";
const PROCESSES: usize = 4;
const THREADS: usize = 16;
const ROUNDS: usize = 4;
const ACCOUNTS: usize = 6;
const LEASE_TTL: Duration = Duration::from_secs(1);
/// The refresher children's lease: a killed holder blocks its accounts this long. Longer than a
/// refresh takes here (the emulator's delay is at most 40 ms), so it never ends under a live one.
const KILL_LEASE_TTL: Duration = Duration::from_millis(400);

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn digest(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A small deterministic generator (xorshift64*), so a failing run can be repeated by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Where the store is: a SQLite file or a PostgreSQL URL (the same string children get).
fn open_store(store: &str) -> Box<dyn TokenStore> {
    let key = KeySource::from_base64(KEY_B64).unwrap();
    if store.starts_with("postgres://") {
        Box::new(PostgresStore::open(store, &key, &TlsOptions::default()).unwrap())
    } else {
        Box::new(SqliteStore::open(Path::new(store), &key).unwrap())
    }
}

fn client_options(store: &str, lease_ttl: Duration) -> ClientOptions {
    let mut o = ClientOptions::new(store);
    o.key = Some(KeySource::from_base64(KEY_B64).unwrap());
    o.http.timeout = Duration::from_secs(10);
    o.http.no_proxy = true;
    o.lease_ttl = lease_ttl;
    o
}

/// The store of one backend, and what keeps it alive.
struct Backend {
    store: String,
    _dir: tempfile::TempDir,
    _pg: Option<PgServer>,
}

fn backend(postgres: bool) -> Backend {
    let dir = tempfile::tempdir().unwrap();
    if postgres {
        let pg = PgServer::start();
        let url = pg.create_database("durability");
        Backend {
            store: url,
            _dir: dir,
            _pg: Some(pg),
        }
    } else {
        Backend {
            store: dir.path().join("store.db").display().to_string(),
            _dir: dir,
            _pg: None,
        }
    }
}

/// Start the emulator, open a client and connect `accounts` (all signed in as alice, each with
/// its own refresh token chain).
async fn setup(store: &str, accounts: &[String]) -> (Emulator, Client) {
    let mut config = EmulatorConfig::sandbox();
    config.tokens.device_poll_interval_secs = 1;
    config.tokens.refuse_superseded_refresh_tokens = true;
    let emulator = Emulator::start(config).await.unwrap();
    let store = store.to_string();
    let client =
        tokio::task::spawn_blocking(move || Client::open(client_options(&store, LEASE_TTL)))
            .await
            .unwrap()
            .expect("client opens");
    let mut connects = tokio::task::JoinSet::new();
    for id in accounts {
        let (client, id, registration) = (client.clone(), id.clone(), desktop(&emulator));
        connects.spawn(async move {
            let (s, _) = connected(&client, registration, &id, "alice@example.test")
                .flow("device_code")
                .await;
            s.state
        });
    }
    while let Some(r) = connects.join_next().await {
        assert_eq!(r.unwrap(), AccountState::Connected);
    }
    (emulator, client)
}

fn child_command(test: &str, store: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        test,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("MC_DUR_STORE", store)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c
}

// ----- expiry rounds -----------------------------------------------------------------------------

/// In a child: 16 threads; for each round, wait for the parent's go file (which names the start
/// time), then all ask for the token at once. Prints `READY`, then `DONE <round> <digest>` once
/// all 16 threads of a round got the same token.
#[test]
#[ignore = "run by the expiry_rounds tests as a child process"]
fn child_expiry() {
    let (Ok(store), Ok(go_dir)) = (
        std::env::var("MC_DUR_STORE"),
        std::env::var("MC_DUR_GO_DIR"),
    ) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let client = Client::open(client_options(&store, LEASE_TTL)).expect("client opens");
    let barrier = Arc::new(Barrier::new(THREADS));
    let (tx, rx) = mpsc::channel::<(usize, String)>();
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (client, barrier, handle, tx, go_dir) = (
                client.clone(),
                barrier.clone(),
                rt.handle().clone(),
                tx.clone(),
                PathBuf::from(&go_dir),
            );
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    let go = go_dir.join(format!("round-{round}"));
                    let start: u64 = loop {
                        if let Ok(s) = std::fs::read_to_string(&go) {
                            break s.trim().parse().unwrap();
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    };
                    barrier.wait();
                    while unix_ms() < start {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    let t = handle
                        .block_on(client.access_token("shared", &CancellationToken::new()))
                        .expect("token");
                    tx.send((round, digest(t.token.expose_secret()))).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    println!("READY");
    let mut by_round: HashMap<usize, Vec<String>> = HashMap::new();
    for (round, d) in rx {
        let v = by_round.entry(round).or_default();
        v.push(d);
        if v.len() == THREADS {
            assert!(
                v.iter().all(|x| x == &v[0]),
                "round {round}: the threads got different tokens"
            );
            println!("DONE {round} {}", v[0]);
        }
    }
    for t in threads {
        t.join().unwrap();
    }
}

/// Lines a child prints, with the child's index, read on a thread per child.
fn read_lines(children: &mut [Child]) -> mpsc::Receiver<(usize, String)> {
    let (tx, rx) = mpsc::channel();
    for (i, c) in children.iter_mut().enumerate() {
        let out = c.stdout.take().unwrap();
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                // libtest may print "test child_expiry ... " before our text on the same line.
                for word in ["READY", "DONE "] {
                    if let Some(pos) = line.find(word) {
                        let _ = tx.send((i, line[pos..].to_string()));
                    }
                }
            }
        });
    }
    rx
}

fn wait_for(rx: &mpsc::Receiver<(usize, String)>, prefix: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut got = vec![];
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((_, line)) if line.starts_with(prefix) => got.push(line),
            Ok(_) => {}
            Err(e) => panic!("waiting for {n} × '{prefix}' from the children: {e} (got {got:?})"),
        }
    }
    got
}

async fn expiry_rounds(postgres: bool) {
    let b = backend(postgres);
    let (emulator, _client) = setup(&b.store, &["shared".to_string()]).await;
    let go_dir = tempfile::tempdir().unwrap();
    let store = b.store.clone();
    let go = go_dir.path().to_path_buf();
    let (per_round, outputs) = tokio::task::spawn_blocking(move || {
        let raw = open_store(&store);
        let mut children: Vec<Child> = (0..PROCESSES)
            .map(|_| {
                child_command("child_expiry", &store)
                    .env("MC_DUR_GO_DIR", &go)
                    .spawn()
                    .unwrap()
            })
            .collect();
        let rx = read_lines(&mut children);
        wait_for(&rx, "READY", PROCESSES);
        let mut per_round = vec![];
        let mut seen_tokens = HashSet::new();
        for round in 0..ROUNDS {
            let before = emulator.stats().refreshes_total();
            assert!(
                expire_access_token(raw.as_ref(), "shared"),
                "expire before round {round}"
            );
            let tmp = go.join("tmp");
            std::fs::write(&tmp, (unix_ms() + 300).to_string()).unwrap();
            std::fs::rename(&tmp, go.join(format!("round-{round}"))).unwrap();
            let done = wait_for(&rx, &format!("DONE {round} "), PROCESSES);
            let digests: HashSet<&str> = done
                .iter()
                .filter_map(|l| l.split_whitespace().nth(2))
                .collect();
            assert_eq!(
                digests.len(),
                1,
                "round {round}: all {PROCESSES} processes got the same token"
            );
            assert!(
                seen_tokens.insert(digests.into_iter().next().unwrap().to_string()),
                "round {round}: a new token"
            );
            let refreshes = emulator.stats().refreshes_total() - before;
            assert_eq!(
                refreshes, 1,
                "round {round}: exactly one refresh for {PROCESSES} processes × {THREADS} threads"
            );
            per_round.push(refreshes);
        }
        let outputs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        (per_round, outputs)
    })
    .await
    .unwrap();
    for o in &outputs {
        assert!(
            o.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    println!(
        "{}: {ROUNDS} expiry rounds × {PROCESSES} processes × {THREADS} threads: refreshes per round {per_round:?}",
        if postgres { "PostgreSQL" } else { "SQLite" }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_rounds_sqlite() {
    expiry_rounds(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_rounds_postgres() {
    expiry_rounds(true).await;
}

// ----- SIGKILL during refresh-and-store ------------------------------------------------------------

/// In a child: for every account, in parallel and forever: mark the access token expired, then
/// ask for a token (refresh + store). Prints `READY`, then `B <account>` before and
/// `D <account>` after each cycle (`E <account> <message>` on an error).
#[test]
#[ignore = "run by the sigkill tests as a child process"]
fn child_refresher() {
    let (Ok(store), Ok(n)) = (
        std::env::var("MC_DUR_STORE"),
        std::env::var("MC_DUR_ACCOUNTS"),
    ) else {
        return;
    };
    let n: usize = n.parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = Client::open(client_options(&store, KILL_LEASE_TTL)).expect("client opens");
    let raw: Arc<dyn TokenStore> = Arc::from(open_store(&store));
    println!("READY");
    rt.block_on(async move {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let (client, raw) = (client.clone(), raw.clone());
            tasks.spawn(async move {
                let id = format!("acc{i}");
                loop {
                    let (r, a) = (raw.clone(), id.clone());
                    tokio::task::spawn_blocking(move || expire_access_token(r.as_ref(), &a))
                        .await
                        .unwrap();
                    println!("B {id}");
                    match client.access_token(&id, &CancellationToken::new()).await {
                        Ok(_) => println!("D {id}"),
                        Err(e) => {
                            println!("E {id} {}", e.message().replace('\n', " "));
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    });
}

#[derive(Default)]
struct KillStats {
    kills: usize,
    cycles_done: usize,
    interrupted: usize,
    errors: Vec<String>,
    checks: usize,
}

/// What one killed child printed: completed cycles, accounts caught between `B` and `D`, errors.
fn account_markers(out: &str, stats: &mut KillStats) {
    let mut open: HashMap<&str, bool> = HashMap::new();
    for line in out.lines() {
        let mut w = line.split_whitespace();
        match (w.next(), w.next()) {
            (Some("B"), Some(a)) => {
                open.insert(a, true);
            }
            (Some("D"), Some(a)) => {
                open.insert(a, false);
                stats.cycles_done += 1;
            }
            (Some("E"), Some(_)) => stats.errors.push(line.to_string()),
            _ => {}
        }
    }
    stats.interrupted += open.values().filter(|v| **v).count();
}

/// Per account: the versions and refresh tokens (digests) seen after each kill.
#[derive(Default)]
struct History {
    last_version: i64,
    last_rt: String,
    rts: HashSet<String>,
}

fn check_records(raw: &dyn TokenStore, accounts: &[String], seen: &mut HashMap<String, History>) {
    for id in accounts {
        let rec = raw
            .load_tokens(id)
            .unwrap_or_else(|e| panic!("{id}: the record is damaged: {e}"))
            .unwrap_or_else(|| panic!("{id}: the record is lost"));
        assert_eq!(
            rec.meta.state,
            StoredState::Connected,
            "{id}: {:?}",
            rec.meta
        );
        let rt = digest(
            rec.secrets
                .refresh_token
                .as_deref()
                .unwrap_or_else(|| panic!("{id}: no refresh token")),
        );
        assert!(rec.secrets.access_token.is_some(), "{id}: no access token");
        let h = seen.entry(id.clone()).or_default();
        assert!(
            rec.version >= h.last_version,
            "{id}: the version went back from {} to {}",
            h.last_version,
            rec.version
        );
        if rt != h.last_rt {
            assert!(
                h.rts.insert(rt.clone()),
                "{id}: the stored refresh token went back to an earlier one (a rotated token was lost)"
            );
        }
        h.last_version = rec.version;
        h.last_rt = rt;
    }
}

fn kills_wanted() -> usize {
    std::env::var("MC_DURABILITY_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(210)
}

async fn sigkill_during_refresh(postgres: bool) {
    let name = if postgres { "PostgreSQL" } else { "SQLite" };
    let b = backend(postgres);
    let accounts: Vec<String> = (0..ACCOUNTS).map(|i| format!("acc{i}")).collect();
    let (emulator, client) = setup(&b.store, &accounts).await;
    let seed = std::env::var("MC_DURABILITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| unix_ms() | 1);
    println!("{name}: seed {seed}");
    let emulator = Arc::new(emulator);
    let (store, emu) = (b.store.clone(), emulator.clone());
    let started = Instant::now();
    emulator.reset_stats();
    let (stats, raw) = tokio::task::spawn_blocking(move || {
        let raw = open_store(&store);
        let mut rng = Rng(seed);
        let mut stats = KillStats::default();
        let mut seen = HashMap::new();
        check_records(raw.as_ref(), &accounts, &mut seen);
        while stats.kills < kills_wanted() {
            // Token answers come after 0-40 ms (sometimes at once), so kills land before,
            // during and after the provider's answer and the store write that follows it.
            emu.clear_faults();
            let delay = rng.below(41);
            if delay > 0 {
                let mut rule = FaultRule::always(Fault::Slow { millis: delay });
                rule.grant_type = Some("refresh_token".into());
                emu.add_fault(rule);
            }
            let mut child = child_command("child_refresher", &store)
                .env("MC_DUR_ACCOUNTS", ACCOUNTS.to_string())
                .spawn()
                .unwrap();
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let mut first = String::new();
            while !first.contains("READY") {
                first.clear();
                if out.read_line(&mut first).unwrap() == 0 {
                    let o = child.wait_with_output().unwrap();
                    panic!(
                        "the child ended before READY: {}",
                        String::from_utf8_lossy(&o.stderr)
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(20 + rng.below(280)));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            stats.kills += 1;
            let mut rest = String::new();
            out.read_to_string(&mut rest).unwrap();
            account_markers(&rest, &mut stats);
            check_records(raw.as_ref(), &accounts, &mut seen);
            stats.checks += accounts.len();
        }
        emu.clear_faults();
        (stats, raw)
    })
    .await
    .unwrap();
    let kill_phase = started.elapsed();
    let kill_phase_refreshes = emulator.stats().refreshes_total();

    // Every account must still work: force a refresh with what is stored.
    let before = emulator.stats().refreshes_total();
    let (mut usable, mut lost, mut corrupted) = (0, 0, 0);
    let raw: Arc<dyn TokenStore> = Arc::from(raw);
    for i in 0..ACCOUNTS {
        let id = format!("acc{i}");
        let (r, a) = (raw.clone(), id.clone());
        let rec = tokio::task::spawn_blocking(move || {
            let rec = r.load_tokens(&a);
            if matches!(rec, Ok(Some(_))) {
                // A statement the last child sent may still land (PostgreSQL finishes it): retry.
                // Its leases end after LEASE_TTL; access_token waits for that.
                let expired = (0..5).any(|_| {
                    expire_access_token(r.as_ref(), &a) || {
                        std::thread::sleep(Duration::from_millis(200));
                        false
                    }
                });
                assert!(expired, "{a}: could not mark the token expired");
            }
            rec
        })
        .await
        .unwrap();
        match rec {
            Err(e) => {
                corrupted += 1;
                println!("{id}: damaged: {e}");
                continue;
            }
            Ok(None) => {
                lost += 1;
                println!("{id}: record lost");
                continue;
            }
            Ok(Some(_)) => {}
        }
        match client.access_token(&id, &CancellationToken::new()).await {
            Ok(_) => usable += 1,
            Err(e) => {
                lost += 1;
                println!("{id}: the stored token set no longer works: {e}");
            }
        }
    }
    let final_refreshes = emulator.stats().refreshes_total() - before;
    println!(
        "{name}: {} kills (SIGKILL) in {:.1} s; {} refresh-and-store cycles completed; {} refreshes \
         made by the emulator, {} of them never confirmed stored (the child died first); {} cycles \
         cut off in all; {} record checks after kills; {} errors in children; afterwards \
         {ACCOUNTS} accounts checked: {usable} usable, {lost} lost, {corrupted} corrupted",
        stats.kills,
        kill_phase.as_secs_f64(),
        stats.cycles_done,
        kill_phase_refreshes,
        kill_phase_refreshes.saturating_sub(stats.cycles_done as u64),
        stats.interrupted,
        stats.checks,
        stats.errors.len()
    );
    assert!(stats.kills >= kills_wanted());
    assert_eq!(
        (usable, lost, corrupted),
        (ACCOUNTS, 0, 0),
        "every account keeps a usable token set"
    );
    assert_eq!(
        final_refreshes, ACCOUNTS as u64,
        "the final check refreshed each account once"
    );
    assert!(
        stats.errors.is_empty(),
        "children saw errors: {:?}",
        &stats.errors[..stats.errors.len().min(5)]
    );
    assert!(
        kill_phase_refreshes > stats.cycles_done as u64 && stats.cycles_done > stats.kills,
        "the kills must land in the middle of refreshes ({kill_phase_refreshes} refreshes, {} completed)",
        stats.cycles_done
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_refresh_sqlite() {
    sigkill_during_refresh(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_refresh_postgres() {
    sigkill_during_refresh(true).await;
}
