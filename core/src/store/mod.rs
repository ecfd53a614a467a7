//! Token and settings storage.
//!
//! [`TokenStore`] is the trait every backend implements (SQLite here; PostgreSQL and a host-callback
//! store come later). Token records carry a version for compare-and-swap; versions are unique across
//! the store's life so a record deleted and created again never matches an old version (no ABA).
//! Refreshes are serialized across processes with a lease row per account.

pub(crate) mod cache;
pub mod crypto;
pub(crate) mod generation;
pub mod host;
pub mod key;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::Result;
use crate::model::{Account, Flow, Registration};
use crate::oauth::errors::ReauthReason;
use crate::oauth::Identity;

pub use host::{HostStore, RecordBackend};

/// Diagnostic code of a record that came back shorter than it was stored, or altered.
pub(crate) const TRUNCATED: &str = "MC-TOKEN-TRUNCATED";
/// Diagnostic code of a key that does not open the store, or a key file that cannot be used.
pub(crate) const WRONG_KEY: &str = "MC-STORE-KEY";
/// Diagnostic code of a key file protected with DPAPI for another user or computer.
pub(crate) const KEY_PROTECTED: &str = "MC-STORE-KEY-PROTECTED";
pub use key::{DpapiScope, KeySource};
pub use sqlite::SqliteStore;

/// Stored connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredState {
    /// Tokens are usable.
    Connected,
    /// An interactive sign-in is needed.
    NeedsReauthorization,
    /// The last refresh failed for a reason that is neither transient nor a re-authorization (configuration).
    Error,
}

/// The non-secret part of a token record (stored as JSON in clear).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenMeta {
    /// Connection state.
    pub state: StoredState,
    /// Why re-authorization is needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reauth_reason: Option<ReauthReason>,
    /// When the access token expires (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_expires_at: Option<i64>,
    /// When the access token was issued (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_issued_at: Option<i64>,
    /// Granted scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Who signed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// Tenant to refresh against (Microsoft `tid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Flow used at connect.
    pub flow: Flow,
    /// When connected (unix seconds).
    pub connected_at: i64,
    /// When last refreshed (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed_at: Option<i64>,
    /// Last refresh error (message only, no secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Whether a refresh token is held.
    pub has_refresh_token: bool,
    /// When the Microsoft Graph access token expires (unix seconds): `auto` accounts hold one
    /// beside the mail token, minted from the same refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_expires_at: Option<i64>,
    /// When the Graph access token was issued (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_issued_at: Option<i64>,
    /// `auto` accounts: when the SMTP server answered that SMTP AUTH is disabled (`5.7.139`);
    /// mail is sent over Graph from then on, until the account is connected again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_disabled_at: Option<i64>,
}

/// The secret part of a token record (stored encrypted). Zeroized on drop.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct TokenSecrets {
    /// Refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// The Microsoft Graph access token of an `auto` account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_access_token: Option<String>,
}

impl std::fmt::Debug for TokenSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecrets([redacted])")
    }
}

/// A token record.
#[derive(Debug)]
pub struct TokenRecord {
    /// The account.
    pub account_id: String,
    /// Version for compare-and-swap (0 = not stored).
    pub version: i64,
    /// Non-secret data.
    pub meta: TokenMeta,
    /// Secrets.
    pub secrets: TokenSecrets,
}

/// A storage backend. Methods are blocking; core calls them off the async threads.
pub trait TokenStore: Send + Sync {
    /// Load the token record of an account.
    fn load_tokens(&self, account_id: &str) -> Result<Option<TokenRecord>>;
    /// Write `rec` if the stored version is `expected` (0 = no record). Returns the new version,
    /// or `None` when someone else wrote first.
    fn save_tokens(&self, rec: &TokenRecord, expected: i64) -> Result<Option<i64>>;
    /// Delete the token record (and lease). Returns whether there was one.
    fn delete_tokens(&self, account_id: &str) -> Result<bool>;
    /// Take the refresh lease of an account for `ttl` unless another live holder has it.
    fn try_lease(&self, account_id: &str, holder: &str, ttl: Duration) -> Result<bool>;
    /// Give the lease back.
    fn release_lease(&self, account_id: &str, holder: &str) -> Result<()>;
    /// Take the lease as [`TokenStore::try_lease`] does and, when it was taken, load the
    /// record: `None` when another holder has the lease, `Some(record)` when this one does. The
    /// default does one after the other; a store that can should do both in one transaction.
    fn lease_and_load(
        &self,
        account_id: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Option<TokenRecord>>> {
        if !self.try_lease(account_id, holder, ttl)? {
            return Ok(None);
        }
        match self.load_tokens(account_id) {
            Ok(r) => Ok(Some(r)),
            Err(e) => {
                let _ = self.release_lease(account_id, holder);
                Err(e)
            }
        }
    }
    /// [`TokenStore::save_tokens`], then give the lease back whatever the outcome: the end of a
    /// refresh. The default does one after the other; a store that can should do both in one
    /// transaction.
    fn save_tokens_and_release(
        &self,
        rec: &TokenRecord,
        expected: i64,
        holder: &str,
    ) -> Result<Option<i64>> {
        let saved = self.save_tokens(rec, expected);
        let released = self.release_lease(&rec.account_id, holder);
        let version = saved?;
        released?;
        Ok(version)
    }

    /// Insert or replace a registration. A registration put without a client secret keeps the stored one.
    fn put_registration(&self, reg: &Registration) -> Result<()>;
    /// A registration with its secret.
    fn get_registration(&self, id: &str) -> Result<Option<Registration>>;
    /// All registrations (secrets not loaded).
    fn list_registrations(&self) -> Result<Vec<Registration>>;
    /// Remove a registration. Fails when accounts still use it.
    fn remove_registration(&self, id: &str) -> Result<bool>;

    /// Insert or replace an account.
    fn put_account(&self, account: &Account) -> Result<()>;
    /// An account.
    fn get_account(&self, id: &str) -> Result<Option<Account>>;
    /// All accounts.
    fn list_accounts(&self) -> Result<Vec<Account>>;
    /// Remove an account and its tokens.
    fn remove_account(&self, id: &str) -> Result<bool>;

    /// Write a client-wide setting (today `proxy`: the proxy configuration with its password),
    /// sealed whole like a client secret; `None` removes it. Last writer wins.
    fn put_setting(&self, name: &str, value: Option<&[u8]>) -> Result<()>;
    /// A client-wide setting, opened, or `None`.
    fn get_setting(&self, name: &str) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>>;

    /// A number that changes (in every process using the store) whenever tokens or accounts
    /// change, read in nanoseconds: what lets a client serve an access token from memory (see
    /// `Client::access_token_for`). `None`: the store has no such signal, and every token is
    /// read from the store.
    fn generation(&self) -> Option<u64> {
        None
    }
}

/// The associated data a setting is sealed for (binds the ciphertext to its name).
pub(crate) fn setting_aad(name: &str) -> String {
    format!("setting:{name}")
}

/// A registration as stored: its JSON (without the output-only `has_client_secret`) and its
/// client secret sealed for `secret_aad`. Shared by the SQLite and PostgreSQL stores.
pub(crate) fn decode_registration(
    cipher: &crypto::Cipher,
    json: &str,
    secret: Option<Vec<u8>>,
    id: &str,
    secret_aad: &str,
) -> Result<Registration> {
    let damaged =
        |e: serde_json::Error| crate::Error::store(format!("registration '{id}' is damaged: {e}"));
    let mut v: serde_json::Value = serde_json::from_str(json).map_err(damaged)?;
    if let Some(o) = v.as_object_mut() {
        o.remove("has_client_secret");
    }
    let mut r: Registration = serde_json::from_value(v).map_err(damaged)?;
    if let Some(blob) = secret {
        let plain = cipher.open(secret_aad, &blob)?;
        let s = std::str::from_utf8(&plain)
            .map_err(|_| crate::Error::store("client secret is not UTF-8"))?;
        r.client_secret = Some(secrecy::SecretString::from(s.to_string()));
        r.has_client_secret = true;
    }
    Ok(r)
}

/// A token record as the SQL stores keep it: metadata JSON in clear and the secrets sealed for
/// `aad`. Shared by the SQLite and PostgreSQL stores.
pub(crate) fn encode_tokens(
    cipher: &crypto::Cipher,
    aad: &str,
    rec: &TokenRecord,
) -> Result<(String, Vec<u8>)> {
    let meta = serde_json::to_string(&rec.meta)
        .map_err(|e| crate::Error::internal(format!("token meta: {e}")))?;
    let plain = crypto::json_zeroizing(&rec.secrets)?;
    Ok((meta, cipher.seal(aad, &plain)?))
}

/// The inverse of [`encode_tokens`].
pub(crate) fn decode_tokens(
    cipher: &crypto::Cipher,
    aad: &str,
    account_id: &str,
    version: i64,
    meta: &str,
    blob: &[u8],
) -> Result<TokenRecord> {
    let meta: TokenMeta = serde_json::from_str(meta).map_err(|e| {
        crate::Error::store(format!("token record of '{account_id}' is damaged: {e}"))
    })?;
    let plain = cipher.open(aad, blob)?;
    let secrets: TokenSecrets = serde_json::from_slice(&plain)
        .map_err(|_| crate::Error::store(format!("token secrets of '{account_id}' are damaged")))?;
    Ok(TokenRecord {
        account_id: account_id.to_string(),
        version,
        meta,
        secrets,
    })
}
