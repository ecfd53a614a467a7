//! A store whose records live in the host's own database, reached through a [`RecordBackend`]
//! (the C ABI implements it with host callbacks).
//!
//! The host only ever holds **opaque encrypted blobs**: every record (token set, account,
//! registration, refresh lease) is serialized, sealed with AES-256-GCM bound to its kind and id,
//! and framed as `"MCB1"`, the total length (u32, big-endian), then the sealed bytes. The length
//! lets a blob the host cut short be reported as exactly that ("stored incompletely: N of M
//! bytes") rather than as a wrong key or a silent re-login.
//!
//! Versions for compare-and-swap are chosen here: random positive 63-bit numbers, so a record
//! deleted and written again never matches an old version (no ABA) without the host keeping a
//! sequence. `0` means "no record".

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::crypto::Cipher;
use super::KeySource;
use super::{TokenMeta, TokenRecord, TokenSecrets, TokenStore};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Account, Registration};

/// Record kinds, as passed to the backend.
pub mod kind {
    /// A token set.
    pub const TOKENS: &str = "tokens";
    /// An account's settings.
    pub const ACCOUNT: &str = "account";
    /// A registration with its secret.
    pub const REGISTRATION: &str = "registration";
    /// A refresh lease.
    pub const LEASE: &str = "lease";
    /// A client-wide setting (id `proxy`: the proxy configuration with its password).
    pub const SETTING: &str = "setting";
}

/// A stored blob and its version.
pub struct Blob {
    /// The bytes exactly as mailconnect gave them.
    pub data: Vec<u8>,
    /// The version written with them.
    pub version: i64,
}

/// Where the host keeps records. Calls may come from several threads at once; each must be atomic
/// on its own (a compare-and-swap must not interleave with another write of the same record).
pub trait RecordBackend: Send + Sync {
    /// The record, or `None`.
    fn load(&self, kind: &str, id: &str) -> Result<Option<Blob>>;
    /// Write `data` with version `new_version` if the stored version is `expected` (0 = no record
    /// may exist). `Ok(false)` when the stored version differs.
    fn compare_and_swap(
        &self,
        kind: &str,
        id: &str,
        data: &[u8],
        expected: i64,
        new_version: i64,
    ) -> Result<bool>;
    /// Delete the record. `Ok(false)` when there was none.
    fn remove(&self, kind: &str, id: &str) -> Result<bool>;
    /// All records of a kind as (id, blob).
    fn list(&self, kind: &str) -> Result<Vec<(String, Blob)>>;
}

const MAGIC: &[u8; 4] = b"MCB1";

#[derive(Serialize, Deserialize)]
struct TokenBody {
    meta: TokenMeta,
    secrets: TokenSecrets,
}

#[derive(Serialize, Deserialize)]
struct RegistrationBody {
    registration: serde_json::Value,
    #[serde(default)]
    secret: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct LeaseBody {
    holder: String,
    until: i64,
}

/// The host-callback store.
pub struct HostStore<B: RecordBackend> {
    backend: B,
    cipher: Cipher,
}

fn new_version() -> i64 {
    ((rand::random::<u64>() >> 1) as i64).max(1)
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

impl<B: RecordBackend> HostStore<B> {
    /// A store over `backend` with the key from `key` (the host keeps the key, e.g. in its
    /// secret store; it is never passed to the backend).
    pub fn new(backend: B, key: &KeySource) -> Result<HostStore<B>> {
        Ok(HostStore {
            backend,
            cipher: Cipher::new(key)?,
        })
    }

    fn aad(kind: &str, id: &str) -> String {
        format!("host:{kind}:{id}")
    }

    fn seal(&self, kind: &str, id: &str, plain: &[u8]) -> Result<Vec<u8>> {
        let sealed = self.cipher.seal(&Self::aad(kind, id), plain)?;
        let total = u32::try_from(sealed.len() + 8)
            .map_err(|_| Error::store("a record is larger than 4 GiB"))?;
        let mut out = Vec::with_capacity(total as usize);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn open(&self, kind: &str, id: &str, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let what = format!("the {kind} record '{id}' in the application's database");
        if blob.len() < 8 || &blob[..4] != MAGIC {
            let short = blob.len() < 8 && MAGIC.starts_with(&blob[..blob.len().min(4)]);
            return Err(if short {
                Error::store(format!("{what} was stored incompletely: only {} bytes came back (the whole blob must be stored; check the column size)", blob.len())).with_code(super::TRUNCATED)
            } else {
                Error::store(format!("{what} is not a mailconnect blob ({} bytes); it was altered, or the column does not keep binary data unchanged", blob.len()))
            });
        }
        let total = u32::from_be_bytes([blob[4], blob[5], blob[6], blob[7]]) as usize;
        if blob.len() != total {
            return Err(Error::store(format!(
                "{what} was stored incompletely: {} of {total} bytes came back (truncated; the whole blob must be stored, with no length limit)",
                blob.len()
            ))
            .with_code(super::TRUNCATED));
        }
        self.cipher.open(&Self::aad(kind, id), &blob[8..])
    }

    fn load_json<T: serde::de::DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<(T, i64)>> {
        let Some(b) = self.backend.load(kind, id)? else {
            return Ok(None);
        };
        let plain = self.open(kind, id, &b.data)?;
        let v = serde_json::from_slice(&plain)
            .map_err(|e| Error::store(format!("the {kind} record '{id}' cannot be read: {e}")))?;
        Ok(Some((v, b.version)))
    }

    fn write_json<T: Serialize>(
        &self,
        kind: &str,
        id: &str,
        value: &T,
        expected: i64,
    ) -> Result<Option<i64>> {
        let plain = super::crypto::json_zeroizing(value)?;
        let blob = self.seal(kind, id, &plain)?;
        let v = new_version();
        Ok(self
            .backend
            .compare_and_swap(kind, id, &blob, expected, v)?
            .then_some(v))
    }

    /// Write unconditionally (settings records): retry the CAS against the current version.
    fn put_json<T: Serialize>(&self, kind: &str, id: &str, value: &T) -> Result<()> {
        let plain = super::crypto::json_zeroizing(value)?;
        self.put_plain(kind, id, &plain)
    }

    /// Seal `plain` and write it unconditionally (retrying the CAS against the current version).
    fn put_plain(&self, kind: &str, id: &str, plain: &[u8]) -> Result<()> {
        let blob = self.seal(kind, id, plain)?;
        for _ in 0..20 {
            let current = self.backend.load(kind, id)?.map(|b| b.version).unwrap_or(0);
            if self
                .backend
                .compare_and_swap(kind, id, &blob, current, new_version())?
            {
                return Ok(());
            }
        }
        Err(Error::store(format!(
            "the {kind} record '{id}' kept changing while it was written"
        )))
    }

    fn registration_from(&self, body: RegistrationBody, with_secret: bool) -> Result<Registration> {
        let mut reg: Registration = serde_json::from_value(body.registration)
            .map_err(|e| Error::store(format!("a stored registration cannot be read: {e}")))?;
        reg.has_client_secret = body.secret.is_some();
        if with_secret {
            reg.client_secret = body.secret.map(SecretString::from);
        }
        Ok(reg)
    }
}

impl<B: RecordBackend> TokenStore for HostStore<B> {
    fn load_tokens(&self, account_id: &str) -> Result<Option<TokenRecord>> {
        Ok(self
            .load_json::<TokenBody>(kind::TOKENS, account_id)?
            .map(|(b, version)| TokenRecord {
                account_id: account_id.to_string(),
                version,
                meta: b.meta,
                secrets: b.secrets,
            }))
    }

    fn save_tokens(&self, rec: &TokenRecord, expected: i64) -> Result<Option<i64>> {
        let body = TokenBody {
            meta: rec.meta.clone(),
            secrets: rec.secrets.clone(),
        };
        self.write_json(kind::TOKENS, &rec.account_id, &body, expected)
    }

    fn delete_tokens(&self, account_id: &str) -> Result<bool> {
        let had = self.backend.remove(kind::TOKENS, account_id)?;
        self.backend.remove(kind::LEASE, account_id)?;
        Ok(had)
    }

    fn try_lease(&self, account_id: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let now = now_ms();
        let current = self.load_json::<LeaseBody>(kind::LEASE, account_id)?;
        let expected = match &current {
            Some((l, _)) if l.holder != holder && l.until > now => return Ok(false),
            Some((_, v)) => *v,
            None => 0,
        };
        let lease = LeaseBody {
            holder: holder.to_string(),
            until: now + ttl.as_millis() as i64,
        };
        Ok(self
            .write_json(kind::LEASE, account_id, &lease, expected)?
            .is_some())
    }

    fn release_lease(&self, account_id: &str, holder: &str) -> Result<()> {
        if let Some((l, v)) = self.load_json::<LeaseBody>(kind::LEASE, account_id)? {
            if l.holder == holder {
                let expired = LeaseBody {
                    holder: String::new(),
                    until: 0,
                };
                self.write_json(kind::LEASE, account_id, &expired, v)?;
            }
        }
        Ok(())
    }

    fn put_registration(&self, reg: &Registration) -> Result<()> {
        let secret = match &reg.client_secret {
            Some(s) => Some(s.expose_secret().to_string()),
            None => self
                .load_json::<RegistrationBody>(kind::REGISTRATION, &reg.id)?
                .and_then(|(b, _)| b.secret),
        };
        let mut registration =
            serde_json::to_value(reg).map_err(|e| Error::internal(format!("JSON: {e}")))?;
        if let Some(o) = registration.as_object_mut() {
            // Output-only: derived from `secret` when read back.
            o.remove("has_client_secret");
        }
        let body = RegistrationBody {
            registration,
            secret,
        };
        let r = self.put_json(kind::REGISTRATION, &reg.id, &body);
        if let Some(s) = body.secret {
            drop(Zeroizing::new(s));
        }
        r
    }

    fn get_registration(&self, id: &str) -> Result<Option<Registration>> {
        self.load_json::<RegistrationBody>(kind::REGISTRATION, id)?
            .map(|(b, _)| self.registration_from(b, true))
            .transpose()
    }

    fn list_registrations(&self) -> Result<Vec<Registration>> {
        let mut out = Vec::new();
        for (id, b) in self.backend.list(kind::REGISTRATION)? {
            let plain = self.open(kind::REGISTRATION, &id, &b.data)?;
            let body: RegistrationBody = serde_json::from_slice(&plain)
                .map_err(|e| Error::store(format!("registration '{id}' cannot be read: {e}")))?;
            out.push(self.registration_from(body, false)?);
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    fn remove_registration(&self, id: &str) -> Result<bool> {
        let users: Vec<String> = self
            .list_accounts()?
            .into_iter()
            .filter(|a| a.registration == id)
            .map(|a| a.id)
            .collect();
        if !users.is_empty() {
            // As the SQL stores answer: a state error, not a bad argument.
            return Err(Error::new(
                ErrorKind::State,
                format!(
                    "registration '{id}' is still used by {} account(s) ({}); remove or move them first",
                    users.len(),
                    users.join(", ")
                ),
            ));
        }
        self.backend.remove(kind::REGISTRATION, id)
    }

    fn put_account(&self, account: &Account) -> Result<()> {
        self.put_json(kind::ACCOUNT, &account.id, account)
    }

    fn get_account(&self, id: &str) -> Result<Option<Account>> {
        Ok(self
            .load_json::<Account>(kind::ACCOUNT, id)?
            .map(|(a, _)| a))
    }

    fn list_accounts(&self) -> Result<Vec<Account>> {
        let mut out = Vec::new();
        for (id, b) in self.backend.list(kind::ACCOUNT)? {
            let plain = self.open(kind::ACCOUNT, &id, &b.data)?;
            out.push(
                serde_json::from_slice(&plain)
                    .map_err(|e| Error::store(format!("account '{id}' cannot be read: {e}")))?,
            );
        }
        out.sort_by(|a: &Account, b| a.id.cmp(&b.id));
        Ok(out)
    }

    fn remove_account(&self, id: &str) -> Result<bool> {
        self.delete_tokens(id)?;
        self.backend.remove(kind::ACCOUNT, id)
    }

    fn put_setting(&self, name: &str, value: Option<&[u8]>) -> Result<()> {
        let Some(v) = value else {
            self.backend.remove(kind::SETTING, name)?;
            return Ok(());
        };
        self.put_plain(kind::SETTING, name, v)
    }

    fn get_setting(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let Some(b) = self.backend.load(kind::SETTING, name)? else {
            return Ok(None);
        };
        self.open(kind::SETTING, name, &b.data).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    use crate::model::Flow;
    use crate::store::StoredState;

    type Rows = HashMap<(String, String), (Vec<u8>, i64)>;

    /// An in-memory backend that can cut blobs short, as a host with a too-small column would.
    #[derive(Default)]
    struct Mem {
        rows: Mutex<Rows>,
        truncate_to: Option<usize>,
    }

    impl RecordBackend for Mem {
        fn load(&self, kind: &str, id: &str) -> Result<Option<Blob>> {
            let rows = self.rows.lock().unwrap();
            Ok(rows.get(&(kind.into(), id.into())).map(|(d, v)| Blob {
                data: d.clone(),
                version: *v,
            }))
        }
        fn compare_and_swap(
            &self,
            kind: &str,
            id: &str,
            data: &[u8],
            expected: i64,
            new_version: i64,
        ) -> Result<bool> {
            let mut rows = self.rows.lock().unwrap();
            let key = (kind.to_string(), id.to_string());
            let current = rows.get(&key).map(|r| r.1).unwrap_or(0);
            if current != expected {
                return Ok(false);
            }
            let mut d = data.to_vec();
            if let Some(n) = self.truncate_to {
                d.truncate(n);
            }
            rows.insert(key, (d, new_version));
            Ok(true)
        }
        fn remove(&self, kind: &str, id: &str) -> Result<bool> {
            Ok(self
                .rows
                .lock()
                .unwrap()
                .remove(&(kind.into(), id.into()))
                .is_some())
        }
        fn list(&self, kind: &str) -> Result<Vec<(String, Blob)>> {
            Ok(self
                .rows
                .lock()
                .unwrap()
                .iter()
                .filter(|((k, _), _)| k == kind)
                .map(|((_, id), (d, v))| {
                    (
                        id.clone(),
                        Blob {
                            data: d.clone(),
                            version: *v,
                        },
                    )
                })
                .collect())
        }
    }

    fn key() -> KeySource {
        KeySource::Bytes(Zeroizing::new([3u8; 32]))
    }

    fn record(rt: &str) -> TokenRecord {
        TokenRecord {
            account_id: "a".into(),
            version: 0,
            meta: TokenMeta {
                state: StoredState::Connected,
                reauth_reason: None,
                access_expires_at: Some(10),
                access_issued_at: Some(1),
                scopes: vec![],
                identity: None,
                tenant: None,
                flow: Flow::DeviceCode,
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
                access_token: Some("eyJ-access".repeat(300)),
                graph_access_token: None,
            },
        }
    }

    #[test]
    fn cas_round_trip_and_no_secret_in_the_blob() {
        let s = HostStore::new(Mem::default(), &key()).unwrap();
        let v1 = s.save_tokens(&record("rt-one"), 0).unwrap().unwrap();
        assert!(
            s.save_tokens(&record("rt-x"), 0).unwrap().is_none(),
            "create over an existing record"
        );
        let v2 = s.save_tokens(&record("rt-two"), v1).unwrap().unwrap();
        assert!(
            s.save_tokens(&record("rt-x"), v1).unwrap().is_none(),
            "stale version"
        );
        let back = s.load_tokens("a").unwrap().unwrap();
        assert_eq!(back.version, v2);
        assert_eq!(back.secrets.refresh_token.as_deref(), Some("rt-two"));
        let raw = s.backend.load(kind::TOKENS, "a").unwrap().unwrap().data;
        assert!(
            !raw.windows(6).any(|w| w == b"rt-two") && !raw.windows(10).any(|w| w == b"eyJ-access")
        );
        // Deleted and written again: the old version never matches (no ABA).
        assert!(s.delete_tokens("a").unwrap());
        let v3 = s.save_tokens(&record("rt-three"), 0).unwrap().unwrap();
        assert_ne!(v3, v2);
        assert!(s.save_tokens(&record("rt-x"), v2).unwrap().is_none());
    }

    #[test]
    fn a_truncated_blob_says_so() {
        let s = HostStore::new(
            Mem {
                truncate_to: Some(1024),
                ..Default::default()
            },
            &key(),
        )
        .unwrap();
        s.save_tokens(&record("rt"), 0).unwrap().unwrap();
        let e = s.load_tokens("a").unwrap_err();
        assert!(
            e.message().contains("stored incompletely: 1024 of"),
            "{}",
            e.message()
        );
        assert_eq!(
            crate::diagnose::code_for(&e, Default::default()),
            "MC-TOKEN-TRUNCATED"
        );
        let s = HostStore::new(
            Mem {
                truncate_to: Some(5),
                ..Default::default()
            },
            &key(),
        )
        .unwrap();
        s.save_tokens(&record("rt"), 0).unwrap().unwrap();
        let e = s.load_tokens("a").unwrap_err();
        assert_eq!(
            crate::diagnose::code_for(&e, Default::default()),
            "MC-TOKEN-TRUNCATED",
            "{}",
            e.message()
        );
    }

    #[test]
    fn leases_exclude_other_holders_until_released_or_expired() {
        let s = HostStore::new(Mem::default(), &key()).unwrap();
        assert!(s.try_lease("a", "p1", Duration::from_secs(60)).unwrap());
        assert!(!s.try_lease("a", "p2", Duration::from_secs(60)).unwrap());
        assert!(s.try_lease("a", "p1", Duration::from_secs(60)).unwrap());
        s.release_lease("a", "p1").unwrap();
        assert!(s.try_lease("a", "p2", Duration::from_millis(1)).unwrap());
        std::thread::sleep(Duration::from_millis(5));
        assert!(s.try_lease("a", "p3", Duration::from_secs(60)).unwrap());
    }
}
