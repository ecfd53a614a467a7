//! A PostgreSQL store for services that run on several machines (cargo feature `postgres`).
//!
//! Same semantics as [`super::sqlite::SqliteStore`], so the connector cannot tell them apart:
//!
//! * Secrets (refresh and access tokens, client secrets) are sealed with the same [`Cipher`] and
//!   the same associated data (`tokens:<account>`, `registrations:<id>`) before they leave the
//!   process; the database only ever sees ciphertext. A `key_check` value refuses a wrong key.
//! * Token writes are compare-and-swap: `UPDATE … WHERE version = $expected`, or
//!   `INSERT … ON CONFLICT DO NOTHING` for "no record". New versions come from one sequence
//!   (`mailconnect_version_seq`), so they are unique over the store's life and a record deleted
//!   and created again never matches an old version (no ABA).
//! * Refresh leases are rows taken with one atomic upsert whose `ON CONFLICT DO UPDATE … WHERE`
//!   only replaces a lease of the same holder, one that has expired, or one whose holder is
//!   gone. The conflicting row is locked while the condition is evaluated, so of several
//!   machines asking at once exactly one gets it. Expiry is measured on the **database server's
//!   clock**, so machines whose clocks differ still agree on when a lease ends. Each store keeps
//!   one extra session open for its whole life and a lease names it (backend pid and start
//!   time): when a holder's process dies its session ends, and its leases are free at once
//!   instead of after the lease time (a holder that hangs still loses its lease at expiry).
//! * The schema is created and migrated on open under an advisory lock, with its version in
//!   `mailconnect_schema`; a database written by a newer mailconnect is refused.
//!
//! The [`TokenStore`] trait is blocking (core calls it from `spawn_blocking`, and some
//! administrative calls directly). tokio-postgres is async, so the store owns a small runtime of
//! its own (one worker thread) that drives the connections; a call sends its query there and
//! waits on a plain channel. That never nests `block_on` inside the caller's runtime, so it works
//! from any thread, inside or outside tokio. Up to [`MAX_CONNECTIONS`] connections are kept.
//!
//! The store URL: `postgres://user[:password]@host[:port]/database[?param=value&…]`
//! (`postgresql://` too). Parameters are tokio-postgres's (`connect_timeout`,
//! `application_name`, `options`, `target_session_attrs`, …) plus `sslmode`: `disable`, `prefer`
//! (default; TLS when the server offers it) or `require`; `verify-ca` and `verify-full` are
//! accepted as `require`, since the server certificate is always checked against the platform's
//! roots plus the client's extra CA certificates, host name included. Without a password in the
//! URL, `PGPASSWORD` is used when set.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client as PgClient, Config, Row, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::crypto::Cipher;
use super::KeySource;
use super::{TokenRecord, TokenStore};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Account, Registration};
use crate::tls::TlsOptions;

const SCHEMA_VERSION: i32 = 1;
const KEY_CHECK: &[u8] = b"mailconnect key check v1";
/// Connections kept per store for queries (callers beyond this wait for one); one more session
/// marks the store as alive for its leases.
pub const MAX_CONNECTIONS: usize = 4;
/// The longest a single store operation may take (connecting included).
const OP_TIMEOUT: Duration = Duration::from_secs(30);
/// The advisory lock that serializes schema migrations of concurrent openers.
const MIGRATION_LOCK: i64 = 0x6d63_5f73_6368_656d;

/// The PostgreSQL store.
pub struct PostgresStore {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pool: Arc<Pool>,
    cipher: Cipher,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.pool.target)
            .finish_non_exhaustive()
    }
}

/// Why a database operation failed: the database said so, or a rule of ours.
enum Fail {
    Db(tokio_postgres::Error),
    Other(Error),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        Fail::Db(e)
    }
}

type DbResult<T> = std::result::Result<T, Fail>;

/// Split the URL into tokio-postgres's configuration and the TLS mode (parsed here, since
/// tokio-postgres does not know libpq's `verify-*` modes).
fn parse_url(url: &str) -> Result<Config> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut mode = SslMode::Prefer;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k != "sslmode" {
            kept.push(pair);
            continue;
        }
        mode = match v {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" | "verify-ca" | "verify-full" => SslMode::Require,
            other => {
                return Err(Error::invalid(
                    "store",
                    format!("sslmode '{other}' is not known; use disable, prefer, require, verify-ca or verify-full"),
                ))
            }
        };
    }
    let rebuilt = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config: Config = rebuilt.parse().map_err(|e: tokio_postgres::Error| {
        Error::invalid(
            "store",
            format!("the PostgreSQL store URL cannot be read: {e}"),
        )
    })?;
    config.ssl_mode(mode);
    if config.get_password().is_none() {
        if let Some(pw) = std::env::var_os("PGPASSWORD") {
            config.password(pw.as_encoded_bytes());
        }
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_application_name().is_none() {
        config.application_name("mailconnect");
    }
    if config.get_user().is_none() {
        return Err(Error::invalid(
            "store",
            "the PostgreSQL store URL must name the user (postgres://user@host/database)",
        ));
    }
    Ok(config)
}

/// `user@host:port/database`, for messages (never the password).
fn describe(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = config
                .get_ports()
                .get(i)
                .or_else(|| config.get_ports().first())
                .copied()
                .unwrap_or(5432);
            match h {
                Host::Tcp(name) => format!("{name}:{port}"),
                #[cfg(unix)]
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    format!(
        "{}@{}/{}",
        config.get_user().unwrap_or(""),
        if hosts.is_empty() {
            "localhost".to_string()
        } else {
            hosts.join(",")
        },
        config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("postgres")
    )
}

/// A connection with the statements prepared on it.
struct PgConn {
    client: PgClient,
    statements: HashMap<&'static str, Statement>,
}

impl PgConn {
    async fn prepare(&mut self, sql: &'static str) -> DbResult<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).await?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    async fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> DbResult<Vec<Row>> {
        let s = self.prepare(sql).await?;
        Ok(self.client.query(&s, params).await?)
    }

    async fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> DbResult<Option<Row>> {
        let s = self.prepare(sql).await?;
        Ok(self.client.query_opt(&s, params).await?)
    }

    async fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> DbResult<u64> {
        let s = self.prepare(sql).await?;
        Ok(self.client.execute(&s, params).await?)
    }

    /// Run `body` in a transaction: committed when it returns `Ok`, rolled back otherwise.
    async fn transaction<T, F>(&mut self, body: F) -> DbResult<T>
    where
        F: for<'c> FnOnce(
            &'c mut PgConn,
        )
            -> std::pin::Pin<Box<dyn Future<Output = DbResult<T>> + Send + 'c>>,
    {
        self.client.batch_execute("BEGIN").await?;
        match body(self).await {
            Ok(v) => {
                self.client.batch_execute("COMMIT").await?;
                Ok(v)
            }
            Err(e) => {
                // A failed ROLLBACK means the connection is gone; the pool drops it then.
                let _ = self.client.batch_execute("ROLLBACK").await;
                Err(e)
            }
        }
    }
}

/// A few connections, opened on demand.
struct Pool {
    config: Config,
    tls: MakeRustlsConnect,
    target: String,
    idle: Mutex<Vec<PgConn>>,
    permits: Arc<tokio::sync::Semaphore>,
    presence: tokio::sync::Mutex<Option<Presence>>,
}

/// A session kept open for as long as the store lives. Leases record it (backend pid and start
/// time), so others see at once when the holder's process has died: its session is gone.
struct Presence {
    client: PgClient,
    pid: i32,
    start: String,
}

/// A connection taken from the pool; it goes back when dropped unless marked broken.
struct Lease {
    conn: Option<PgConn>,
    pool: Arc<Pool>,
    healthy: bool,
    /// Whether the connection was kept from an earlier operation (it may have died meanwhile).
    reused: bool,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            if self.healthy && !c.client.is_closed() {
                if let Ok(mut idle) = self.pool.idle.lock() {
                    idle.push(c);
                }
            }
        }
    }
}

impl Pool {
    /// This store's presence session (opened, or opened again, when needed): its backend pid
    /// and start time.
    async fn presence(&self) -> DbResult<(i32, String)> {
        let mut p = self.presence.lock().await;
        if let Some(x) = p.as_ref().filter(|x| !x.client.is_closed()) {
            return Ok((x.pid, x.start.clone()));
        }
        let client = self.connect().await?;
        let row = client
            .query_one(
                "SELECT pid, backend_start::text FROM pg_stat_activity WHERE pid = pg_backend_pid()",
                &[],
            )
            .await?;
        let (pid, start): (i32, String) = (row.try_get(0)?, row.try_get(1)?);
        *p = Some(Presence {
            client,
            pid,
            start: start.clone(),
        });
        Ok((pid, start))
    }

    async fn connect(&self) -> DbResult<PgClient> {
        let (client, connection) = self.config.connect(self.tls.clone()).await?;
        let target = self.target.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("PostgreSQL store connection to {target} ended: {e}");
            }
        });
        Ok(client)
    }

    async fn get(self: &Arc<Pool>) -> DbResult<Lease> {
        let permit =
            self.permits.clone().acquire_owned().await.map_err(|_| {
                Fail::Other(Error::internal("the store's connection pool is closed"))
            })?;
        let reuse = {
            let mut idle = self
                .idle
                .lock()
                .map_err(|_| Fail::Other(Error::internal("store pool lock poisoned")))?;
            let mut found = None;
            while let Some(c) = idle.pop() {
                if !c.client.is_closed() {
                    found = Some(c);
                    break;
                }
            }
            found
        };
        let reused = reuse.is_some();
        let conn = match reuse {
            Some(c) => c,
            None => PgConn {
                client: self.connect().await?,
                statements: HashMap::new(),
            },
        };
        Ok(Lease {
            conn: Some(conn),
            pool: self.clone(),
            healthy: true,
            reused,
            _permit: permit,
        })
    }
}

fn now_s() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn token_aad(account_id: &str) -> String {
    format!("tokens:{account_id}")
}

fn secret_aad(reg_id: &str) -> String {
    format!("registrations:{reg_id}")
}

/// Registration JSON as stored (the secret is never part of it).
pub(crate) fn registration_json(reg: &Registration) -> Result<String> {
    let mut v =
        serde_json::to_value(reg).map_err(|e| Error::internal(format!("registration: {e}")))?;
    if let Some(o) = v.as_object_mut() {
        o.remove("has_client_secret");
    }
    Ok(v.to_string())
}

/// Schema version 1. Table names carry a prefix so the store can share a database.
const SCHEMA_V1: &str = "
CREATE TABLE mailconnect_meta (key TEXT PRIMARY KEY, value BYTEA NOT NULL);
CREATE TABLE mailconnect_registrations (id TEXT PRIMARY KEY, json TEXT NOT NULL, secret BYTEA, updated_at BIGINT NOT NULL);
CREATE TABLE mailconnect_accounts (id TEXT PRIMARY KEY, registration TEXT NOT NULL, json TEXT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX mailconnect_accounts_registration ON mailconnect_accounts (registration);
CREATE TABLE mailconnect_tokens (account_id TEXT PRIMARY KEY, version BIGINT NOT NULL, meta TEXT NOT NULL, secrets BYTEA NOT NULL, updated_at BIGINT NOT NULL);
CREATE TABLE mailconnect_refresh_leases (account_id TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL, session_pid INTEGER NOT NULL, session_start TEXT NOT NULL);
CREATE SEQUENCE mailconnect_version_seq;
";

impl PostgresStore {
    /// Connect to the database at `url` (see the module documentation), create or migrate the
    /// schema, and check that `key` opens it. TLS uses `tls` (extra CA certificates).
    pub fn open(url: &str, key: &KeySource, tls: &TlsOptions) -> Result<PostgresStore> {
        let cipher = Cipher::new(key)?;
        let config = parse_url(url)?;
        let target = describe(&config);
        let mut rustls_config = (*crate::tls::client_config(tls)?).clone();
        rustls_config.alpn_protocols.clear();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mailconnect-postgres")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| Error::internal(format!("cannot start the store runtime: {e}")))?;
        let store = PostgresStore {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            pool: Arc::new(Pool {
                config,
                tls: MakeRustlsConnect::new(rustls_config),
                target,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS)),
                presence: tokio::sync::Mutex::new(None),
            }),
            cipher,
        };
        store.migrate()?;
        store.check_key()?;
        Ok(store)
    }

    /// `user@host:port/database` (no password).
    pub fn target(&self) -> &str {
        &self.pool.target
    }

    /// Run `work` in the store's runtime and wait for it here, at most [`OP_TIMEOUT`].
    fn wait<T>(
        &self,
        what: &'static str,
        work: impl Future<Output = DbResult<T>> + Send + 'static,
    ) -> Result<T>
    where
        T: Send + 'static,
    {
        let target = self.pool.target.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let r = match tokio::time::timeout(OP_TIMEOUT, work).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(Fail::Other(e))) => Err(e),
                Ok(Err(Fail::Db(e))) => Err(db_error(&target, what, &e)),
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "the PostgreSQL store {target} did not answer within {} s ({what})",
                        OP_TIMEOUT.as_secs()
                    ),
                )),
            };
            let _ = tx.send(r);
        });
        rx.recv()
            .map_err(|_| Error::internal("the PostgreSQL store worker stopped"))?
    }

    /// Run `op` on a pooled connection in the store's runtime and wait for it here.
    fn run<T, F>(&self, what: &'static str, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(
                &'c mut PgConn,
            )
                -> std::pin::Pin<Box<dyn Future<Output = DbResult<T>> + Send + 'c>>
            + Clone
            + Send
            + Sync
            + 'static,
    {
        let pool = self.pool.clone();
        self.wait(what, async move {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let mut lease = pool.get().await?;
                // Until the operation has finished, the connection counts as broken: when the
                // time limit drops it halfway (a transaction open, an answer pending), it is
                // not reused. Errors other than those the server reported (I/O, protocol)
                // leave the session in an unknown state too.
                lease.healthy = false;
                let conn = lease.conn.as_mut().ok_or_else(|| {
                    Fail::Other(Error::internal("a pooled connection is missing"))
                })?;
                let r = op.clone()(conn).await;
                let broken = matches!(&r, Err(Fail::Db(e)) if connection_lost(e));
                lease.healthy = !broken;
                if broken && lease.reused {
                    // The other kept connections are likely gone too (a server restart).
                    if let Ok(mut idle) = pool.idle.lock() {
                        idle.clear();
                    }
                }
                // Once more on a new connection when a kept one turned out to be dead (the
                // server restarted, a proxy dropped it), or on a serialization failure or
                // deadlock. Safe for every operation here: reads and upserts are idempotent,
                // and a compare-and-swap whose first attempt did commit fails the second
                // time, which the connector takes as "someone else wrote" and reloads.
                let retry = match &r {
                    Err(Fail::Db(e)) => {
                        (broken && lease.reused)
                            || e.code().is_some_and(|c| {
                                *c == SqlState::T_R_SERIALIZATION_FAILURE
                                    || *c == SqlState::T_R_DEADLOCK_DETECTED
                            })
                    }
                    _ => false,
                };
                if !(retry && attempt < 2) {
                    return r;
                }
                tracing::debug!("PostgreSQL store {}: {what} is tried again", pool.target);
            }
        })
    }

    fn migrate(&self) -> Result<()> {
        let found = self.run("creating the schema", |c| {
            Box::pin(c.transaction(|c| {
                Box::pin(async move {
                    c.client
                        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                        .await?;
                    c.client
                        .batch_execute(
                            "CREATE TABLE IF NOT EXISTS mailconnect_schema (version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                        )
                        .await?;
                    let row = c
                        .client
                        .query_one("SELECT COALESCE(MAX(version), 0) FROM mailconnect_schema", &[])
                        .await?;
                    let v: i32 = row.try_get(0)?;
                    if v > SCHEMA_VERSION {
                        return Ok(v);
                    }
                    if v < 1 {
                        c.client.batch_execute(SCHEMA_V1).await?;
                        c.client
                            .execute(
                                "INSERT INTO mailconnect_schema (version) VALUES ($1)",
                                &[&1i32],
                            )
                            .await?;
                    }
                    Ok(v)
                })
            }))
        })?;
        if found > SCHEMA_VERSION {
            return Err(Error::store(format!(
                "the PostgreSQL store {} was written by a newer mailconnect (schema {found}; this one knows {SCHEMA_VERSION})",
                self.pool.target
            )));
        }
        Ok(())
    }

    fn check_key(&self) -> Result<()> {
        let fresh = self.cipher.seal("meta:key_check", KEY_CHECK)?;
        let stored: Vec<u8> = self.run("checking the store key", move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO mailconnect_meta (key, value) VALUES ('key_check', $1) ON CONFLICT (key) DO NOTHING",
                    &[&fresh],
                )
                .await?;
                let row = c
                    .query_opt("SELECT value FROM mailconnect_meta WHERE key = 'key_check'", &[])
                    .await?
                    .ok_or_else(|| Fail::Other(Error::store("the store's key check vanished").with_code(super::WRONG_KEY)))?;
                Ok(row.try_get(0)?)
            })
        })?;
        let ok = self
            .cipher
            .open("meta:key_check", &stored)
            .map(|p| p.as_slice() == KEY_CHECK)
            .unwrap_or(false);
        if !ok {
            return Err(Error::store(format!(
                "the key does not open the PostgreSQL store {} (was another key given than the one it was created with?)",
                self.pool.target
            ))
            .with_code(super::WRONG_KEY));
        }
        Ok(())
    }

    fn decode_registration(
        &self,
        json: &str,
        secret: Option<Vec<u8>>,
        id: &str,
    ) -> Result<Registration> {
        super::decode_registration(&self.cipher, json, secret, id, &secret_aad(id))
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Never blocks, so a store may be dropped inside an async context.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Whether the session is gone or unusable: I/O and protocol errors, and the server's own
/// "connection exception" (08) and "operator intervention" (57P: shutdown, terminated) errors.
fn connection_lost(e: &tokio_postgres::Error) -> bool {
    e.is_closed()
        || e.as_db_error().is_none()
        || e.code()
            .is_some_and(|c| c.code().starts_with("08") || c.code().starts_with("57P"))
}

fn db_error(target: &str, what: &str, e: &tokio_postgres::Error) -> Error {
    let detail = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(c) = src {
                let t = c.to_string();
                if !s.contains(&t) {
                    s = format!("{s}: {t}");
                }
                src = c.source();
            }
            s
        }
    };
    Error::store(format!(
        "the PostgreSQL store {target} failed while {what}: {detail}"
    ))
}

impl TokenStore for PostgresStore {
    fn load_tokens(&self, account_id: &str) -> Result<Option<TokenRecord>> {
        let id = account_id.to_string();
        let row: Option<(i64, String, Vec<u8>)> = self.run("loading tokens", move |c| {
            Box::pin(async move {
                let r = c
                    .query_opt(
                        "SELECT version, meta, secrets FROM mailconnect_tokens WHERE account_id = $1",
                        &[&id],
                    )
                    .await?;
                Ok(match r {
                    Some(r) => Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)),
                    None => None,
                })
            })
        })?;
        let Some((version, meta, blob)) = row else {
            return Ok(None);
        };
        super::decode_tokens(
            &self.cipher,
            &token_aad(account_id),
            account_id,
            version,
            &meta,
            &blob,
        )
        .map(Some)
    }

    fn save_tokens(&self, rec: &TokenRecord, expected: i64) -> Result<Option<i64>> {
        let (meta, blob) = super::encode_tokens(&self.cipher, &token_aad(&rec.account_id), rec)?;
        let id = rec.account_id.clone();
        self.run("saving tokens", move |c| {
            Box::pin(async move {
                let t = now_s();
                let row = if expected == 0 {
                    c.query_opt(
                        "INSERT INTO mailconnect_tokens (account_id, version, meta, secrets, updated_at)
                         VALUES ($1, nextval('mailconnect_version_seq'), $2, $3, $4)
                         ON CONFLICT (account_id) DO NOTHING RETURNING version",
                        &[&id, &meta, &blob, &t],
                    )
                    .await?
                } else {
                    c.query_opt(
                        "UPDATE mailconnect_tokens SET version = nextval('mailconnect_version_seq'),
                         meta = $2, secrets = $3, updated_at = $4
                         WHERE account_id = $1 AND version = $5 RETURNING version",
                        &[&id, &meta, &blob, &t, &expected],
                    )
                    .await?
                };
                Ok(match row {
                    Some(r) => Some(r.try_get::<_, i64>(0)?),
                    None => None,
                })
            })
        })
    }

    fn delete_tokens(&self, account_id: &str) -> Result<bool> {
        let id = account_id.to_string();
        self.run("deleting tokens", move |c| {
            Box::pin(c.transaction(move |c| {
                Box::pin(async move {
                    let n = c
                        .execute(
                            "DELETE FROM mailconnect_tokens WHERE account_id = $1",
                            &[&id],
                        )
                        .await?;
                    c.execute(
                        "DELETE FROM mailconnect_refresh_leases WHERE account_id = $1",
                        &[&id],
                    )
                    .await?;
                    Ok(n > 0)
                })
            }))
        })
    }

    fn try_lease(&self, account_id: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let pool = self.pool.clone();
        let (pid, start) = self.wait("opening the store's presence session", async move {
            pool.presence().await
        })?;
        let (id, holder) = (account_id.to_string(), holder.to_string());
        let ttl_ms = ttl.as_millis() as f64;
        self.run("taking the refresh lease", move |c| {
            Box::pin(async move {
                // Free: no lease, our own, expired on the server's clock, or its holder's
                // session is gone (the process died; PostgreSQL ends the session at once).
                let row = c
                    .query_opt(
                        "INSERT INTO mailconnect_refresh_leases AS l (account_id, holder, expires_at, session_pid, session_start)
                         VALUES ($1, $2, clock_timestamp() + $3::float8 * interval '1 millisecond', $4, $5)
                         ON CONFLICT (account_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
                           session_pid = excluded.session_pid, session_start = excluded.session_start
                         WHERE l.holder = excluded.holder OR l.expires_at <= clock_timestamp()
                           OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                                          WHERE a.pid = l.session_pid AND a.backend_start::text = l.session_start)
                         RETURNING holder",
                        &[&id, &holder, &ttl_ms, &pid, &start],
                    )
                    .await?;
                Ok(row.is_some())
            })
        })
    }

    fn release_lease(&self, account_id: &str, holder: &str) -> Result<()> {
        let (id, holder) = (account_id.to_string(), holder.to_string());
        self.run("releasing the refresh lease", move |c| {
            Box::pin(async move {
                c.execute(
                    "DELETE FROM mailconnect_refresh_leases WHERE account_id = $1 AND holder = $2",
                    &[&id, &holder],
                )
                .await?;
                Ok(())
            })
        })
    }

    fn put_registration(&self, reg: &Registration) -> Result<()> {
        let json = registration_json(reg)?;
        let secret = match &reg.client_secret {
            Some(s) => Some(
                self.cipher
                    .seal(&secret_aad(&reg.id), s.expose_secret().as_bytes())?,
            ),
            None => None,
        };
        let id = reg.id.clone();
        self.run("saving a registration", move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO mailconnect_registrations AS r (id, json, secret, updated_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (id) DO UPDATE SET json = excluded.json, secret = COALESCE(excluded.secret, r.secret), updated_at = excluded.updated_at",
                    &[&id, &json, &secret, &now_s()],
                )
                .await?;
                Ok(())
            })
        })
    }

    fn get_registration(&self, id: &str) -> Result<Option<Registration>> {
        let key = id.to_string();
        let row: Option<(String, Option<Vec<u8>>)> =
            self.run("loading a registration", move |c| {
                Box::pin(async move {
                    let r = c
                        .query_opt(
                            "SELECT json, secret FROM mailconnect_registrations WHERE id = $1",
                            &[&key],
                        )
                        .await?;
                    Ok(match r {
                        Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
                        None => None,
                    })
                })
            })?;
        row.map(|(json, secret)| self.decode_registration(&json, secret, id))
            .transpose()
    }

    fn list_registrations(&self) -> Result<Vec<Registration>> {
        let rows: Vec<(String, String, bool)> = self.run("listing registrations", |c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        "SELECT id, json, secret IS NOT NULL FROM mailconnect_registrations ORDER BY id",
                        &[],
                    )
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    out.push((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?));
                }
                Ok(out)
            })
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, json, has_secret) in rows {
            let mut r = self.decode_registration(&json, None, &id)?;
            r.has_client_secret = has_secret;
            out.push(r);
        }
        Ok(out)
    }

    fn remove_registration(&self, id: &str) -> Result<bool> {
        let key = id.to_string();
        self.run("removing a registration", move |c| {
            Box::pin(c.transaction(move |c| {
                Box::pin(async move {
                    // Lock the registration first: a concurrent put_account of one of its
                    // accounts waits (FOR SHARE) until this is decided.
                    let exists = c
                        .query_opt(
                            "SELECT 1 FROM mailconnect_registrations WHERE id = $1 FOR UPDATE",
                            &[&key],
                        )
                        .await?
                        .is_some();
                    let users: i64 = c
                        .query_opt(
                            "SELECT COUNT(*) FROM mailconnect_accounts WHERE registration = $1",
                            &[&key],
                        )
                        .await?
                        .map(|r| r.try_get(0))
                        .transpose()?
                        .unwrap_or(0);
                    if users > 0 {
                        return Err(Fail::Other(Error::new(
                            ErrorKind::State,
                            format!("registration '{key}' is still used by {users} account(s); remove or move them first"),
                        )));
                    }
                    if !exists {
                        return Ok(false);
                    }
                    let n = c
                        .execute("DELETE FROM mailconnect_registrations WHERE id = $1", &[&key])
                        .await?;
                    Ok(n > 0)
                })
            }))
        })
    }

    fn put_account(&self, account: &Account) -> Result<()> {
        let json =
            serde_json::to_string(account).map_err(|e| Error::internal(format!("account: {e}")))?;
        let (id, reg) = (account.id.clone(), account.registration.clone());
        self.run("saving an account", move |c| {
            Box::pin(c.transaction(move |c| {
                Box::pin(async move {
                    c.query_opt(
                        "SELECT 1 FROM mailconnect_registrations WHERE id = $1 FOR SHARE",
                        &[&reg],
                    )
                    .await?;
                    c.execute(
                        "INSERT INTO mailconnect_accounts (id, registration, json, updated_at) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (id) DO UPDATE SET registration = excluded.registration, json = excluded.json, updated_at = excluded.updated_at",
                        &[&id, &reg, &json, &now_s()],
                    )
                    .await?;
                    Ok(())
                })
            }))
        })
    }

    fn get_account(&self, id: &str) -> Result<Option<Account>> {
        let key = id.to_string();
        let json: Option<String> = self.run("loading an account", move |c| {
            Box::pin(async move {
                let r = c
                    .query_opt(
                        "SELECT json FROM mailconnect_accounts WHERE id = $1",
                        &[&key],
                    )
                    .await?;
                Ok(match r {
                    Some(r) => Some(r.try_get(0)?),
                    None => None,
                })
            })
        })?;
        json.map(|j| {
            serde_json::from_str(&j)
                .map_err(|e| Error::store(format!("account '{id}' is damaged: {e}")))
        })
        .transpose()
    }

    fn list_accounts(&self) -> Result<Vec<Account>> {
        let rows: Vec<(String, String)> = self.run("listing accounts", |c| {
            Box::pin(async move {
                let rows = c
                    .query("SELECT id, json FROM mailconnect_accounts ORDER BY id", &[])
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    out.push((r.try_get(0)?, r.try_get(1)?));
                }
                Ok(out)
            })
        })?;
        rows.into_iter()
            .map(|(id, json)| {
                serde_json::from_str(&json)
                    .map_err(|e| Error::store(format!("account '{id}' is damaged: {e}")))
            })
            .collect()
    }

    fn remove_account(&self, id: &str) -> Result<bool> {
        let key = id.to_string();
        self.run("removing an account", move |c| {
            Box::pin(c.transaction(move |c| {
                Box::pin(async move {
                    c.execute(
                        "DELETE FROM mailconnect_tokens WHERE account_id = $1",
                        &[&key],
                    )
                    .await?;
                    c.execute(
                        "DELETE FROM mailconnect_refresh_leases WHERE account_id = $1",
                        &[&key],
                    )
                    .await?;
                    let n = c
                        .execute("DELETE FROM mailconnect_accounts WHERE id = $1", &[&key])
                        .await?;
                    Ok(n > 0)
                })
            }))
        })
    }

    fn put_setting(&self, name: &str, value: Option<&[u8]>) -> Result<()> {
        // Settings live in `mailconnect_meta` (no schema change), sealed for `setting:<name>`.
        let key = super::setting_aad(name);
        let sealed = value.map(|v| self.cipher.seal(&key, v)).transpose()?;
        self.run("saving a setting", move |c| {
            Box::pin(async move {
                match sealed {
                    Some(v) => {
                        c.execute(
                            "INSERT INTO mailconnect_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                            &[&key, &v],
                        )
                        .await?;
                    }
                    None => {
                        c.execute("DELETE FROM mailconnect_meta WHERE key = $1", &[&key])
                            .await?;
                    }
                }
                Ok(())
            })
        })
    }

    fn get_setting(&self, name: &str) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
        let key = super::setting_aad(name);
        let lookup = key.clone();
        let blob: Option<Vec<u8>> = self.run("loading a setting", move |c| {
            Box::pin(async move {
                let r = c
                    .query_opt(
                        "SELECT value FROM mailconnect_meta WHERE key = $1",
                        &[&lookup],
                    )
                    .await?;
                Ok(match r {
                    Some(r) => Some(r.try_get(0)?),
                    None => None,
                })
            })
        })?;
        blob.map(|b| self.cipher.open(&key, &b)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognised_and_sslmode_is_ours() {
        let c = parse_url(
            "postgresql://u:pw@db.example:6543/mc?sslmode=verify-full&application_name=x",
        )
        .unwrap();
        assert_eq!(c.get_ssl_mode(), SslMode::Require);
        assert_eq!(c.get_application_name(), Some("x"));
        assert_eq!(describe(&c), "u@db.example:6543/mc");
        let c = parse_url("postgres://u@h/db").unwrap();
        assert_eq!(c.get_ssl_mode(), SslMode::Prefer);
        assert_eq!(
            parse_url("postgres://u@h/db?sslmode=disable")
                .unwrap()
                .get_ssl_mode(),
            SslMode::Disable
        );
        let e = parse_url("postgres://u@h/db?sslmode=sometimes").unwrap_err();
        assert!(e.message().contains("sslmode"), "{}", e.message());
        assert!(!format!(
            "{:?}",
            parse_url("postgres://u:hunter2@h/db").map(|c| describe(&c))
        )
        .contains("hunter2"));
    }
}
