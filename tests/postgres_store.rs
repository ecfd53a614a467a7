//! The PostgreSQL store against a real PostgreSQL server (initdb into a temporary directory):
//! schema, key and damage checks, leases of holders that are gone, reconnection, encryption at rest
//! checked on the raw rows, TLS, and clients connecting and refreshing through the emulator. The
//! semantics it shares with the other stores are checked by tests/store_conformance.rs.

use std::time::Duration;

use mailconnect_core::store::postgres::PostgresStore;
use mailconnect_core::store::{KeySource, TokenStore};
use mailconnect_core::tls::TlsOptions;
use mailconnect_core::{AccountState, CancellationToken, Client, ClientOptions, ErrorKind};
use mailconnect_tests::conformance::{rec, rt_of};
use mailconnect_tests::pg::{expire_access_token, PgServer};
use mailconnect_tests::*;
use secrecy::ExposeSecret;

fn key() -> KeySource {
    KeySource::from_base64("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=").unwrap()
}

fn pg_store(url: &str) -> PostgresStore {
    PostgresStore::open(url, &key(), &TlsOptions::default()).expect("the PostgreSQL store opens")
}

// The store's semantics (compare-and-swap, leases, registrations, accounts, two pools on one
// database, concurrency) are checked on every backend by tests/store_conformance.rs; here: what
// only PostgreSQL has.

#[test]
fn postgres_schema_key_and_damage_are_checked() {
    let pg = PgServer::start();
    let url = pg.create_database("checks");
    // Several processes opening a fresh database at once: one creates the schema, all succeed.
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || pg_store(&url).target().to_string())
        })
        .collect();
    for o in openers {
        assert!(o.join().unwrap().contains("/checks"));
    }
    assert_eq!(
        pg.psql("checks", "SELECT version FROM mailconnect_schema")
            .trim(),
        "1"
    );

    let s = pg_store(&url);
    s.save_tokens(&rec("a", "rt"), 0).unwrap().unwrap();
    pg.psql(
        "checks",
        "UPDATE mailconnect_tokens SET secrets = substring(secrets from 1 for 20)",
    );
    let e = s.load_tokens("a").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Store);
    assert!(
        e.message().contains("incomplete") || e.message().contains("truncated"),
        "{}",
        e.message()
    );

    // A ciphertext copied to another account's row does not decrypt (bound to its row).
    s.save_tokens(&rec("b", "rt-b"), 0).unwrap().unwrap();
    s.save_tokens(&rec("c", "rt-c"), 0).unwrap().unwrap();
    pg.psql("checks", "UPDATE mailconnect_tokens SET secrets = (SELECT secrets FROM mailconnect_tokens WHERE account_id = 'b') WHERE account_id = 'c'");
    assert!(s.load_tokens("c").is_err());
    assert_eq!(rt_of(&s, "b").as_deref(), Some("rt-b"));

    let other = PostgresStore::open(
        &url,
        &KeySource::from_base64("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=").unwrap(),
        &TlsOptions::default(),
    );
    let e = other.expect_err("a wrong key is refused");
    assert!(e.message().contains("key does not open"), "{}", e.message());

    pg.psql(
        "checks",
        "INSERT INTO mailconnect_schema (version) VALUES (99)",
    );
    let e = PostgresStore::open(&url, &key(), &TlsOptions::default())
        .expect_err("a newer schema is refused");
    assert!(e.message().contains("newer"), "{}", e.message());

    // Nobody listening: a clear store error naming the server, never the password.
    let e = PostgresStore::open(
        "postgres://mc:hunter2-password@127.0.0.1:1/none?connect_timeout=3",
        &key(),
        &TlsOptions::default(),
    )
    .expect_err("no server");
    assert_eq!(e.kind(), ErrorKind::Store);
    assert!(e.message().contains("127.0.0.1:1/none"), "{}", e.message());
    assert!(!e.message().contains("hunter2"), "{}", e.message());
}

/// A lease whose holder has gone (its process died: the session ends) is free at once, long
/// before its expiry; while the holder lives it is not.
#[test]
fn postgres_frees_the_lease_of_a_holder_that_is_gone() {
    let pg = PgServer::start();
    let url = pg.create_database("gone");
    let (a, b) = (pg_store(&url), pg_store(&url));
    assert!(a.try_lease("x", "A", Duration::from_secs(600)).unwrap());
    std::thread::sleep(Duration::from_millis(300));
    assert!(!b.try_lease("x", "B", Duration::from_secs(600)).unwrap());
    drop(a);
    let t = std::time::Instant::now();
    while !b.try_lease("x", "B", Duration::from_secs(600)).unwrap() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the lease of a holder that is gone stays taken"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "lease free {} ms after its holder closed",
        t.elapsed().as_millis()
    );
    let c = pg_store(&url);
    assert!(!c.try_lease("x", "C", Duration::from_secs(600)).unwrap());
}

/// Sessions ended by the server (a restart, an admin, a proxy) are replaced without the caller
/// seeing an error.
#[test]
fn postgres_replaces_connections_the_server_ended() {
    let pg = PgServer::start();
    let url = pg.create_database("reconnect");
    let s = pg_store(&url);
    let mut v = s.save_tokens(&rec("a", "0"), 0).unwrap().unwrap();
    for i in 1..=5 {
        let ended = pg.psql(
            "reconnect",
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'mailconnect'",
        );
        assert!(
            ended.trim().parse::<u32>().unwrap() >= 1,
            "round {i}: a session was ended"
        );
        v = s
            .save_tokens(&rec("a", &i.to_string()), v)
            .unwrap_or_else(|e| panic!("round {i}: {e}"))
            .unwrap();
        assert_eq!(rt_of(&s, "a"), Some(i.to_string()));
    }
}

#[test]
fn postgres_over_tls_checks_the_server_certificate() {
    let pg = PgServer::start_tls();
    let url = pg.create_database("tls");
    let trusted = TlsOptions {
        extra_ca_pem: vec![pg.ca_pem()],
        danger_accept_invalid_certs: false,
    };
    let mut open = vec![];
    for mode in ["require", "verify-full", "prefer"] {
        let s = PostgresStore::open(&format!("{url}?sslmode={mode}"), &key(), &trusted)
            .unwrap_or_else(|e| panic!("sslmode={mode}: {e}"));
        s.save_tokens(&rec(mode, "rt"), 0).unwrap().unwrap();
        open.push(s);
    }
    let ssl_in_use = pg.psql(
        "tls",
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'mailconnect' AND s.ssl",
    );
    assert!(
        ssl_in_use.trim().parse::<u32>().unwrap() >= 3,
        "the store sessions use TLS"
    );
    drop(open);
    // Without the CA, TLS is refused (also with `prefer`: no silent fallback to plain text).
    for mode in ["require", "prefer"] {
        let e = PostgresStore::open(
            &format!("{url}?sslmode={mode}"),
            &key(),
            &TlsOptions::default(),
        )
        .err()
        .unwrap_or_else(|| panic!("sslmode={mode} with an unknown CA must fail"));
        assert!(
            e.message().to_lowercase().contains("certificate"),
            "{mode}: {}",
            e.message()
        );
    }
    let s = PostgresStore::open(
        &format!("{url}?sslmode=disable"),
        &key(),
        &TlsOptions::default(),
    )
    .unwrap();
    assert!(s.load_tokens("require").unwrap().is_some());
}

// ----- through the Client ------------------------------------------------------------------------

fn pg_client(url: &str, key_b64: &str) -> Client {
    let json = serde_json::json!({"store": url, "key": {"base64": key_b64}, "no_proxy": true, "http_timeout_secs": 5});
    Client::open(ClientOptions::from_json(&json.to_string()).unwrap()).expect("client opens")
}

const KEY_B64: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

fn key_b64() -> KeySource {
    KeySource::from_base64(KEY_B64).unwrap()
}

async fn connect_alice(env: &Env, client: &Client, account: &str) {
    let (s, _) = connected(
        client,
        desktop(&env.emulator),
        account,
        "alice@example.test",
    )
    .flow("device_code")
    .await;
    assert_eq!(s.state, AccountState::Connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_connects_refreshes_and_disconnects_with_nothing_in_clear_in_the_database() {
    let pg = tokio::task::spawn_blocking(PgServer::start).await.unwrap();
    let url = pg.create_database("client");
    let env = env().await;

    // The store URL selects PostgreSQL; the key must be given, not a file beside the store.
    let e = ClientOptions::from_json(&serde_json::json!({"store": url}).to_string())
        .and_then(Client::open)
        .err()
        .unwrap_or_else(|| panic!("a PostgreSQL store without a key must be refused"));
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().contains("'key'"), "{}", e.message());

    let client = pg_client(&url, KEY_B64);
    connect_alice(&env, &client, "alice").await;
    let reg = serde_json::json!({"id":"svc","provider":"microsoft","tenant":TENANT,"authority_host":env.emulator.base_url(),
        "client_id":SERVICE_APP,"client_secret":SERVICE_SECRET});
    connected(&client, reg, "app", "alice@example.test")
        .flow("client_credentials")
        .user(ScriptedUser::idle())
        .await;

    let t1 = client
        .access_token("alice", &CancellationToken::new())
        .await
        .unwrap();
    let store = tokio::task::block_in_place(|| pg_store_with(&url, key_b64()));
    let rt1 = rt_of(&store, "alice").expect("a refresh token");
    env.emulator.reset_stats();
    assert!(expire_access_token(&store, "alice"));
    let t2 = client
        .access_token("alice", &CancellationToken::new())
        .await
        .unwrap();
    assert_ne!(t1.token.expose_secret(), t2.token.expose_secret());
    assert_eq!(env.emulator.stats().refreshes_total(), 1);
    let rt2 = rt_of(&store, "alice").expect("a refresh token");
    assert_ne!(rt1, rt2, "the rotated refresh token is stored");
    let app = client
        .access_token("app", &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        client.status("alice").unwrap().state,
        AccountState::Connected
    );

    // Every table, as pg_dump prints it (bytea as hex), and the server's files on disk.
    let dump = pg.dump("client");
    assert!(dump.contains("mailconnect_tokens") && dump.contains("alice@example.test"));
    let mut secrets: Vec<(&str, String)> = vec![
        ("access token", t1.token.expose_secret().to_string()),
        ("access token", t2.token.expose_secret().to_string()),
        (
            "app-only access token",
            app.token.expose_secret().to_string(),
        ),
        ("refresh token", rt1.clone()),
        ("refresh token", rt2.clone()),
        ("client secret", SERVICE_SECRET.to_string()),
    ];
    secrets.retain(|(_, s)| s.len() >= 16);
    let mut files = Vec::new();
    collect_files(&pg.data_dir(), &mut files);
    let disk: Vec<u8> = files
        .iter()
        .flat_map(|f| std::fs::read(f).unwrap_or_default())
        .collect();
    for (what, s) in &secrets {
        let probe = &s[..s.len().min(40)];
        let hex: String = probe.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(!dump.contains(probe), "{what} in clear in the database");
        assert!(
            !dump.contains(&hex),
            "{what} in clear (hex) in the database"
        );
        assert!(
            !disk.windows(probe.len()).any(|w| w == probe.as_bytes()),
            "{what} in clear in the server's files"
        );
    }
    assert!(!dump.contains("eyJ"), "no JWT fragment in clear");
    let raw_rows = pg.psql(
        "client",
        "SELECT account_id, version, meta, encode(secrets, 'escape') FROM mailconnect_tokens",
    );
    assert!(raw_rows.contains("alice") && !raw_rows.contains(&rt2[..40]));
    println!(
        "checked {} secrets against {} bytes of dump and {} bytes in {} server files",
        secrets.len(),
        dump.len(),
        disk.len(),
        files.len()
    );

    client
        .disconnect("alice", &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        client.status("alice").unwrap().state,
        AccountState::NotConnected
    );
    assert!(tokio::task::block_in_place(|| store.load_tokens("alice"))
        .unwrap()
        .is_none());
}

fn pg_store_with(url: &str, key: KeySource) -> PostgresStore {
    PostgresStore::open(url, &key, &TlsOptions::default()).unwrap()
}

fn collect_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Two clients with their own connections on one database (as two service instances would be):
/// what one connects the other uses, and at expiry 2 × 8 callers cause exactly one refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_share_one_database() {
    let pg = tokio::task::spawn_blocking(PgServer::start).await.unwrap();
    let url = pg.create_database("two");
    let env = env().await;
    let a = pg_client(&url, KEY_B64);
    let b = pg_client(&url, KEY_B64);
    connect_alice(&env, &a, "alice").await;
    assert_eq!(b.status("alice").unwrap().state, AccountState::Connected);
    let ta = a
        .access_token("alice", &CancellationToken::new())
        .await
        .unwrap();
    let tb = b
        .access_token("alice", &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(ta.token.expose_secret(), tb.token.expose_secret());

    let store = tokio::task::block_in_place(|| pg_store_with(&url, key_b64()));
    for round in 0..3 {
        env.emulator.reset_stats();
        assert!(tokio::task::block_in_place(|| expire_access_token(
            &store, "alice"
        )));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..16 {
            let c = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.spawn(async move {
                c.access_token("alice", &CancellationToken::new())
                    .await
                    .map(|t| t.token.expose_secret().to_string())
            });
        }
        let mut tokens = vec![];
        while let Some(r) = tasks.join_next().await {
            tokens.push(r.unwrap().expect("token"));
        }
        assert!(
            tokens.iter().all(|t| t == &tokens[0]),
            "round {round}: one token for all"
        );
        assert_ne!(tokens[0], ta.token.expose_secret());
        assert_eq!(
            env.emulator.stats().refreshes_total(),
            1,
            "round {round}: exactly one refresh for two clients x 8 callers"
        );
    }
    // A key other than the database's is refused by the second instance.
    let other = ClientOptions::from_json(
        &serde_json::json!({"store": url, "key": {"base64": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}})
            .to_string(),
    )
    .and_then(Client::open);
    assert!(other.err().unwrap().message().contains("key does not open"));
}
