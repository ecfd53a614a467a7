//! The default store: one SQLite file in WAL mode, usable by several processes at once.
//!
//! Secrets (refresh and access tokens, client secrets) are encrypted with [`Cipher`]; everything
//! else is plain JSON so admins can inspect it. Writes are single transactions (atomic); token
//! writes are compare-and-swap on a store-wide version sequence; refreshes are serialized across
//! processes by a lease row with an expiry, so a holder killed mid-refresh blocks others at most
//! for the lease time.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use secrecy::ExposeSecret;

use super::crypto::Cipher;
use super::KeySource;
use super::{TokenRecord, TokenStore};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Account, Registration};

const SCHEMA_VERSION: i64 = 1;
const KEY_CHECK: &[u8] = b"mailconnect key check v1";

/// The SQLite store.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    cipher: Cipher,
    path: PathBuf,
    /// The change counter beside the file (`None` when it cannot be mapped: no in-memory tokens).
    generation: Option<super::generation::Generation>,
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn now_s() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Create the database file with owner-only permissions if it does not exist.
fn create_private(path: &Path, access: crate::platform::FileAccess) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::store(format!(
                "cannot create the store directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    crate::platform::create_if_missing(path, access)
        .map_err(|e| Error::store(format!("cannot create the store {}: {e}", path.display())))
}

impl SqliteStore {
    /// Open (or create) the store at `path` with the key from `key`.
    pub fn open(path: &Path, key: &KeySource) -> Result<SqliteStore> {
        create_private(path, key.file_access())?;
        let cipher = Cipher::new(key)?;
        let conn = Connection::open(path)
            .map_err(|e| Error::store(format!("cannot open the store {}: {e}", path.display())))?;
        conn.busy_timeout(Duration::from_secs(15))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let gen_path = super::generation::Generation::path_for(path);
        let generation = match super::generation::Generation::open(&gen_path, key.file_access()) {
            Ok(g) => Some(g),
            Err(e) => {
                tracing::warn!("every access token is read from the store: {}", e.message());
                None
            }
        };
        let store = SqliteStore {
            conn: Mutex::new(conn),
            cipher,
            path: path.to_path_buf(),
            generation,
        };
        store.migrate()?;
        store.check_key()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Count a committed change of tokens or accounts for every process's in-memory tokens.
    fn changed(&self) {
        if let Some(g) = &self.generation {
            g.bump();
        }
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>> {
        self.conn
            .lock()
            .map_err(|_| Error::internal("store connection lock poisoned"))
    }

    fn migrate(&self) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let v: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if v > SCHEMA_VERSION {
            return Err(Error::store(format!("the store was written by a newer mailconnect (schema {v}; this one knows {SCHEMA_VERSION})")));
        }
        if v < 1 {
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
                 CREATE TABLE IF NOT EXISTS registrations (id TEXT PRIMARY KEY, json TEXT NOT NULL, secret BLOB, updated_at INTEGER NOT NULL);
                 CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, registration TEXT NOT NULL, json TEXT NOT NULL, updated_at INTEGER NOT NULL);
                 CREATE TABLE IF NOT EXISTS tokens (account_id TEXT PRIMARY KEY, version INTEGER NOT NULL, meta TEXT NOT NULL, secrets BLOB NOT NULL, updated_at INTEGER NOT NULL);
                 CREATE TABLE IF NOT EXISTS refresh_leases (account_id TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at_ms INTEGER NOT NULL);
                 INSERT OR IGNORE INTO meta (key, value) VALUES ('version_seq', 0);
                 PRAGMA user_version = 1;",
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn check_key(&self) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing: Option<Vec<u8>> = tx
            .query_row("SELECT value FROM meta WHERE key = 'key_check'", [], |r| {
                r.get(0)
            })
            .optional()?;
        match existing {
            Some(blob) => {
                let ok = self
                    .cipher
                    .open("meta:key_check", &blob)
                    .map(|p| p.as_slice() == KEY_CHECK)
                    .unwrap_or(false);
                if !ok {
                    return Err(Error::new(
                        ErrorKind::Store,
                        format!("the key does not open the store {} (was the key file replaced or another key given?)", self.path.display()),
                    )
                    .with_code(super::WRONG_KEY));
                }
            }
            None => {
                let blob = self.cipher.seal("meta:key_check", KEY_CHECK)?;
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('key_check', ?1)",
                    params![blob],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn token_aad(account_id: &str) -> String {
        format!("tokens:{account_id}")
    }

    fn secret_aad(reg_id: &str) -> String {
        format!("registrations:{reg_id}")
    }

    fn decode_registration(
        &self,
        json: &str,
        secret: Option<Vec<u8>>,
        id: &str,
    ) -> Result<Registration> {
        super::decode_registration(&self.cipher, json, secret, id, &Self::secret_aad(id))
    }
}

impl TokenStore for SqliteStore {
    fn generation(&self) -> Option<u64> {
        self.generation.as_ref().map(|g| g.get())
    }

    fn load_tokens(&self, account_id: &str) -> Result<Option<TokenRecord>> {
        let conn = self.conn()?;
        let row: Option<(i64, String, Vec<u8>)> = conn
            .prepare_cached("SELECT version, meta, secrets FROM tokens WHERE account_id = ?1")?
            .query_row(params![account_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        drop(conn);
        let Some((version, meta, blob)) = row else {
            return Ok(None);
        };
        super::decode_tokens(
            &self.cipher,
            &Self::token_aad(account_id),
            account_id,
            version,
            &meta,
            &blob,
        )
        .map(Some)
    }

    fn save_tokens(&self, rec: &TokenRecord, expected: i64) -> Result<Option<i64>> {
        let (meta, blob) =
            super::encode_tokens(&self.cipher, &Self::token_aad(&rec.account_id), rec)?;
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let saved = save_in(&tx, &rec.account_id, &meta, &blob, expected)?;
        if saved.is_some() {
            tx.commit()?;
            drop(conn);
            self.changed();
        }
        Ok(saved)
    }

    fn save_tokens_and_release(
        &self,
        rec: &TokenRecord,
        expected: i64,
        holder: &str,
    ) -> Result<Option<i64>> {
        let (meta, blob) =
            super::encode_tokens(&self.cipher, &Self::token_aad(&rec.account_id), rec)?;
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let saved = save_in(&tx, &rec.account_id, &meta, &blob, expected)?;
        release_in(&tx, &rec.account_id, holder)?;
        tx.commit()?;
        drop(conn);
        if saved.is_some() {
            self.changed();
        }
        Ok(saved)
    }

    fn delete_tokens(&self, account_id: &str) -> Result<bool> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx
            .prepare_cached("DELETE FROM tokens WHERE account_id = ?1")?
            .execute(params![account_id])?;
        tx.prepare_cached("DELETE FROM refresh_leases WHERE account_id = ?1")?
            .execute(params![account_id])?;
        tx.commit()?;
        drop(conn);
        self.changed();
        Ok(n > 0)
    }

    fn try_lease(&self, account_id: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let free = lease_in(&tx, account_id, holder, ttl)?;
        tx.commit()?;
        Ok(free)
    }

    fn lease_and_load(
        &self,
        account_id: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Option<TokenRecord>>> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !lease_in(&tx, account_id, holder, ttl)? {
            tx.commit()?;
            return Ok(None);
        }
        let row: Option<(i64, String, Vec<u8>)> = tx
            .prepare_cached("SELECT version, meta, secrets FROM tokens WHERE account_id = ?1")?
            .query_row(params![account_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        tx.commit()?;
        drop(conn);
        let Some((version, meta, blob)) = row else {
            return Ok(Some(None));
        };
        match super::decode_tokens(
            &self.cipher,
            &Self::token_aad(account_id),
            account_id,
            version,
            &meta,
            &blob,
        ) {
            Ok(rec) => Ok(Some(Some(rec))),
            Err(e) => {
                let _ = self.release_lease(account_id, holder);
                Err(e)
            }
        }
    }

    fn release_lease(&self, account_id: &str, holder: &str) -> Result<()> {
        let conn = self.conn()?;
        release_in(&conn, account_id, holder)
    }

    fn put_registration(&self, reg: &Registration) -> Result<()> {
        let mut v =
            serde_json::to_value(reg).map_err(|e| Error::internal(format!("registration: {e}")))?;
        if let Some(o) = v.as_object_mut() {
            o.remove("has_client_secret");
        }
        let json = v.to_string();
        let secret = match &reg.client_secret {
            Some(s) => Some(
                self.cipher
                    .seal(&Self::secret_aad(&reg.id), s.expose_secret().as_bytes())?,
            ),
            None => None,
        };
        let conn = self.conn()?;
        conn.prepare_cached(
            "INSERT INTO registrations (id, json, secret, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(id) DO UPDATE SET json = excluded.json, secret = COALESCE(excluded.secret, registrations.secret), updated_at = excluded.updated_at",
        )?
        .execute(params![reg.id, json, secret, now_s()])?;
        Ok(())
    }

    fn get_registration(&self, id: &str) -> Result<Option<Registration>> {
        let conn = self.conn()?;
        let row: Option<(String, Option<Vec<u8>>)> = conn
            .prepare_cached("SELECT json, secret FROM registrations WHERE id = ?1")?
            .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        drop(conn);
        row.map(|(json, secret)| self.decode_registration(&json, secret, id))
            .transpose()
    }

    fn list_registrations(&self) -> Result<Vec<Registration>> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare("SELECT id, json, secret IS NOT NULL FROM registrations ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json, has_secret) = row?;
            let mut r = self.decode_registration(&json, None, &id)?;
            r.has_client_secret = has_secret;
            out.push(r);
        }
        Ok(out)
    }

    fn remove_registration(&self, id: &str) -> Result<bool> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let users: i64 = tx
            .prepare_cached("SELECT COUNT(*) FROM accounts WHERE registration = ?1")?
            .query_row(params![id], |r| r.get(0))?;
        if users > 0 {
            return Err(Error::new(ErrorKind::State, format!("registration '{id}' is still used by {users} account(s); remove or move them first")));
        }
        let n = tx.execute("DELETE FROM registrations WHERE id = ?1", params![id])?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn put_account(&self, account: &Account) -> Result<()> {
        let json =
            serde_json::to_string(account).map_err(|e| Error::internal(format!("account: {e}")))?;
        let conn = self.conn()?;
        conn.prepare_cached(
            "INSERT INTO accounts (id, registration, json, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(id) DO UPDATE SET registration = excluded.registration, json = excluded.json, updated_at = excluded.updated_at",
        )?
        .execute(params![account.id, account.registration, json, now_s()])?;
        drop(conn);
        self.changed();
        Ok(())
    }

    fn get_account(&self, id: &str) -> Result<Option<Account>> {
        let conn = self.conn()?;
        let json: Option<String> = conn
            .prepare_cached("SELECT json FROM accounts WHERE id = ?1")?
            .query_row(params![id], |r| r.get(0))
            .optional()?;
        json.map(|j| {
            serde_json::from_str(&j)
                .map_err(|e| Error::store(format!("account '{id}' is damaged: {e}")))
        })
        .transpose()
    }

    fn list_accounts(&self) -> Result<Vec<Account>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT id, json FROM accounts ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row?;
            out.push(
                serde_json::from_str(&json)
                    .map_err(|e| Error::store(format!("account '{id}' is damaged: {e}")))?,
            );
        }
        Ok(out)
    }

    fn remove_account(&self, id: &str) -> Result<bool> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM tokens WHERE account_id = ?1", params![id])?;
        tx.prepare_cached("DELETE FROM refresh_leases WHERE account_id = ?1")?
            .execute(params![id])?;
        let n = tx.execute("DELETE FROM accounts WHERE id = ?1", params![id])?;
        tx.commit()?;
        drop(conn);
        self.changed();
        Ok(n > 0)
    }

    fn put_setting(&self, name: &str, value: Option<&[u8]>) -> Result<()> {
        // Settings live in `meta` (no schema change): key `setting:<name>`, value sealed.
        let key = super::setting_aad(name);
        let conn = self.conn()?;
        match value {
            Some(v) => {
                let sealed = self.cipher.seal(&key, v)?;
                conn.prepare_cached(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![key, sealed])?;
            }
            None => {
                conn.execute("DELETE FROM meta WHERE key = ?1", params![key])?;
            }
        }
        Ok(())
    }

    fn get_setting(&self, name: &str) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
        let key = super::setting_aad(name);
        let conn = self.conn()?;
        let blob: Option<Vec<u8>> = conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()?;
        drop(conn);
        blob.map(|b| self.cipher.open(&key, &b)).transpose()
    }
}

/// Write the sealed record in `tx` if the stored version is `expected` (0 = none): the new
/// version, or `None` when someone else wrote first (nothing written).
fn save_in(
    tx: &rusqlite::Transaction<'_>,
    account_id: &str,
    meta: &str,
    blob: &[u8],
    expected: i64,
) -> Result<Option<i64>> {
    let current: i64 = tx
        .prepare_cached("SELECT version FROM tokens WHERE account_id = ?1")?
        .query_row(params![account_id], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    if current != expected {
        return Ok(None);
    }
    let next: i64 = tx
        .prepare_cached(
            "UPDATE meta SET value = value + 1 WHERE key = 'version_seq' RETURNING value",
        )?
        .query_row([], |r| r.get(0))?;
    tx.prepare_cached(
        "INSERT INTO tokens (account_id, version, meta, secrets, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(account_id) DO UPDATE SET version = excluded.version, meta = excluded.meta, secrets = excluded.secrets, updated_at = excluded.updated_at",
    )?
    .execute(params![account_id, next, meta, blob, now_s()])?;
    Ok(Some(next))
}

/// Take the lease in `tx` unless another live holder has it.
fn lease_in(
    tx: &rusqlite::Transaction<'_>,
    account_id: &str,
    holder: &str,
    ttl: Duration,
) -> Result<bool> {
    let now = now_ms();
    let cur: Option<(String, i64)> = tx
        .prepare_cached("SELECT holder, expires_at_ms FROM refresh_leases WHERE account_id = ?1")?
        .query_row(params![account_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let free = match &cur {
        None => true,
        Some((h, exp)) => h == holder || *exp <= now,
    };
    if free {
        tx.prepare_cached(
            "INSERT INTO refresh_leases (account_id, holder, expires_at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(account_id) DO UPDATE SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms",
        )?
        .execute(params![account_id, holder, now + ttl.as_millis() as i64])?;
    }
    Ok(free)
}

/// Give the lease back (only this holder's).
fn release_in(conn: &rusqlite::Connection, account_id: &str, holder: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM refresh_leases WHERE account_id = ?1 AND holder = ?2")?
        .execute(params![account_id, holder])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Flow;
    use crate::store::{StoredState, TokenMeta, TokenSecrets};

    fn store(dir: &Path) -> SqliteStore {
        SqliteStore::open(&dir.join("s.db"), &KeySource::File(dir.join("s.key"))).unwrap()
    }

    fn rec(id: &str, rt: &str) -> TokenRecord {
        TokenRecord {
            account_id: id.into(),
            version: 0,
            meta: TokenMeta {
                state: StoredState::Connected,
                reauth_reason: None,
                access_expires_at: Some(1),
                access_issued_at: None,
                scopes: vec![],
                identity: None,
                tenant: None,
                flow: Flow::Browser,
                connected_at: 1,
                refreshed_at: None,
                last_error: None,
                has_refresh_token: true,
                graph_expires_at: None,
                graph_issued_at: None,
                smtp_auth_disabled_at: None,
            },
            secrets: TokenSecrets {
                refresh_token: Some(rt.into()),
                access_token: Some("at".into()),
                graph_access_token: None,
            },
        }
    }

    #[test]
    fn compare_and_swap_and_no_aba_after_delete() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        let v1 = s.save_tokens(&rec("a", "rt1"), 0).unwrap().unwrap();
        assert_eq!(s.save_tokens(&rec("a", "rt-stale"), 0).unwrap(), None);
        let v2 = s.save_tokens(&rec("a", "rt2"), v1).unwrap().unwrap();
        assert_eq!(
            s.load_tokens("a")
                .unwrap()
                .unwrap()
                .secrets
                .refresh_token
                .as_deref(),
            Some("rt2")
        );
        assert!(s.delete_tokens("a").unwrap());
        let v3 = s.save_tokens(&rec("a", "rt3"), 0).unwrap().unwrap();
        assert!(v3 > v2);
        assert_eq!(s.save_tokens(&rec("a", "rt-old"), v1).unwrap(), None);
    }

    #[test]
    fn registrations_round_trip_with_the_secret_encrypted_and_kept_on_update() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        let reg: Registration = serde_json::from_str(
            r#"{"id":"r","provider":"microsoft","client_id":"c","client_secret":"s3cret"}"#,
        )
        .unwrap();
        s.put_registration(&reg).unwrap();
        let back = s.get_registration("r").unwrap().unwrap();
        assert!(back.has_client_secret);
        assert_eq!(
            back.client_secret
                .as_ref()
                .map(|x| x.expose_secret().to_string())
                .as_deref(),
            Some("s3cret")
        );
        let mut update: Registration =
            serde_json::from_str(r#"{"id":"r","provider":"microsoft","client_id":"c2"}"#).unwrap();
        update.has_client_secret = true;
        s.put_registration(&update).unwrap();
        let back = s.get_registration("r").unwrap().unwrap();
        assert_eq!(back.client_id, "c2");
        assert!(
            back.client_secret.is_some(),
            "a put without a secret keeps the stored one"
        );
        let listed = s.list_registrations().unwrap();
        assert!(listed[0].has_client_secret && listed[0].client_secret.is_none());
        let raw = std::fs::read(d.path().join("s.db")).unwrap();
        assert!(!raw.windows(6).any(|w| w == b"s3cret"));
    }

    #[test]
    fn leases_exclude_other_holders_until_released_or_expired() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        assert!(s.try_lease("a", "p1", Duration::from_secs(30)).unwrap());
        assert!(!s.try_lease("a", "p2", Duration::from_secs(30)).unwrap());
        s.release_lease("a", "p1").unwrap();
        assert!(s.try_lease("a", "p2", Duration::from_millis(1)).unwrap());
        std::thread::sleep(Duration::from_millis(5));
        assert!(s.try_lease("a", "p3", Duration::from_secs(30)).unwrap());
    }

    #[test]
    fn the_lease_comes_with_the_record_and_goes_with_the_write() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        let ttl = Duration::from_secs(30);
        // No record yet: the lease is taken, the record is absent.
        assert!(matches!(
            s.lease_and_load("a", "p1", ttl).unwrap(),
            Some(None)
        ));
        s.release_lease("a", "p1").unwrap();
        let v1 = s.save_tokens(&rec("a", "rt1"), 0).unwrap().unwrap();
        let got = s.lease_and_load("a", "p1", ttl).unwrap().unwrap().unwrap();
        assert_eq!(got.version, v1);
        assert_eq!(got.secrets.refresh_token.as_deref(), Some("rt1"));
        // Held: another holder gets nothing.
        assert!(s.lease_and_load("a", "p2", ttl).unwrap().is_none());
        // The write of the result gives the lease back in the same transaction.
        let v2 = s
            .save_tokens_and_release(&rec("a", "rt2"), v1, "p1")
            .unwrap()
            .unwrap();
        assert!(v2 > v1);
        let next = s.lease_and_load("a", "p2", ttl).unwrap().unwrap().unwrap();
        assert_eq!(next.secrets.refresh_token.as_deref(), Some("rt2"));
        // A stale write is refused, and still gives the lease back.
        assert_eq!(
            s.save_tokens_and_release(&rec("a", "rt-stale"), v1, "p2")
                .unwrap(),
            None
        );
        assert!(s.try_lease("a", "p3", ttl).unwrap());
        // Releasing another holder's lease does nothing.
        assert_eq!(
            s.save_tokens_and_release(&rec("a", "rt3"), v2, "p1")
                .unwrap()
                .map(|v| v > v2),
            Some(true)
        );
        assert!(!s.try_lease("a", "p4", ttl).unwrap());
    }

    #[test]
    fn a_wrong_key_is_refused_and_a_truncated_secret_is_reported() {
        let d = tempfile::tempdir().unwrap();
        {
            let s = store(d.path());
            s.save_tokens(&rec("a", "rt"), 0).unwrap();
            let conn = s.conn().unwrap();
            conn.execute("UPDATE tokens SET secrets = substr(secrets, 1, 20)", [])
                .unwrap();
        }
        let s = store(d.path());
        let e = s.load_tokens("a").unwrap_err();
        assert!(
            e.message().contains("incomplete") || e.message().contains("truncated"),
            "{}",
            e.message()
        );
        let other = SqliteStore::open(
            &d.path().join("s.db"),
            &KeySource::Bytes(zeroize::Zeroizing::new([1; 32])),
        );
        assert!(other.err().unwrap().message().contains("key does not open"));
    }
}
