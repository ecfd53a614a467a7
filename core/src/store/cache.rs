//! Access tokens kept in a client's memory, each with the store's change counter
//! ([`super::TokenStore::generation`]) at the time its record was read: served without touching
//! the store while the counter stands still and the token is not due for renewal. A read-through
//! cache in front of the store; the token logic that decides what goes in is in `tokens`.

use std::collections::HashMap;
use std::sync::RwLock;

use secrecy::SecretString;

/// One access token in memory.
pub(crate) struct CachedToken {
    /// The token.
    pub(crate) token: SecretString,
    /// Its expiry (unix seconds).
    pub(crate) expires_at: i64,
    /// The SASL `user=`.
    pub(crate) user: String,
    /// Unix seconds until which it serves without a refresh.
    pub(crate) fresh_until: i64,
    /// The store's change counter before its record was read.
    pub(crate) generation: u64,
}

/// Per account, one slot per resource (mail, Graph).
#[derive(Default)]
pub(crate) struct TokenCache(RwLock<HashMap<String, [Option<CachedToken>; 2]>>);

impl TokenCache {
    /// `f` of the token in `slot` of account `id` when it was read at `generation` and serves
    /// until after `now`; `None` otherwise.
    pub(crate) fn get<R>(
        &self,
        id: &str,
        slot: usize,
        generation: u64,
        now: i64,
        f: impl FnOnce(&CachedToken) -> R,
    ) -> Option<R> {
        let map = self.0.read().ok()?;
        let c = map.get(id)?.get(slot)?.as_ref()?;
        (c.generation == generation && c.fresh_until > now).then(|| f(c))
    }

    /// Keep `token` in `slot` of account `id`.
    pub(crate) fn put(&self, id: &str, slot: usize, token: CachedToken) {
        if let Ok(mut map) = self.0.write() {
            if let Some(s) = map.entry(id.to_string()).or_default().get_mut(slot) {
                *s = Some(token);
            }
        }
    }
}
