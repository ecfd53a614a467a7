//! Access tokens: the fresh token from the store, the refresh ahead of expiry (single-flight per
//! account: within a process through a per-account async lock, across processes through the
//! store's lease, so concurrent callers wait for one refresh and all get its result), and the
//! token requests that connecting and refreshing share.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use crate::account_state::{self, now, rfc3339, AccountState};
use crate::client::Client;
use crate::error::{Error, ErrorKind, ReauthReason, Result};
use crate::events::EventKind;
use crate::model::{Account, Flow, Registration, Transport};
use crate::oauth::token::{self, Retry, TokenEndpoint, TokenGrant};
use crate::oauth::ClientAuth;
use crate::provider::{self, Profile};
use crate::store::{StoredState, TokenRecord, TokenSecrets};
use crate::transport::sasl;

/// An access token ready for use.
pub struct AccessToken {
    /// The token.
    pub token: SecretString,
    /// Expiry (unix seconds).
    pub expires_at: i64,
    /// The SASL `user=` (the mailbox).
    pub user: String,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at", &self.expires_at)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Resource {
    fn index(self) -> usize {
        match self {
            Resource::Mail => 0,
            Resource::Graph => 1,
        }
    }
}

/// An access token in a client's memory, lent to the closure of [`Client::cached_token`].
#[derive(Clone, Copy)]
pub struct TokenRef<'a> {
    /// The token.
    pub token: &'a SecretString,
    /// Expiry (unix seconds).
    pub expires_at: i64,
    /// The SASL `user=` (the mailbox).
    pub user: &'a str,
}

/// Which access token of an account. Microsoft issues one token per resource; one sign-in and
/// its refresh token serve both (refresh tokens are not bound to a resource).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// The token for the account's mail: IMAP, POP3 and SMTP (Exchange Online for Microsoft),
    /// or Microsoft Graph for a `graph` account.
    Mail,
    /// A Microsoft Graph token (for a `graph` account the same as [`Resource::Mail`]).
    Graph,
}

/// Where a token is kept in the account's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// The token of the profile's delegated (or app-only) scopes.
    Primary,
    /// The Graph token of an `auto` (or `smtp_imap`) account, minted from the refresh token.
    Graph,
}

impl Slot {
    fn of(account: &Account, resource: Resource) -> Slot {
        match resource {
            Resource::Graph if account.transport != Transport::Graph => Slot::Graph,
            _ => Slot::Primary,
        }
    }

    fn token(self, rec: &TokenRecord) -> Option<&String> {
        match self {
            Slot::Primary => rec.secrets.access_token.as_ref(),
            Slot::Graph => rec.secrets.graph_access_token.as_ref(),
        }
    }

    fn expires_at(self, rec: &TokenRecord) -> Option<i64> {
        match self {
            Slot::Primary => rec.meta.access_expires_at,
            Slot::Graph => rec.meta.graph_expires_at,
        }
    }

    fn issued_at(self, rec: &TokenRecord) -> Option<i64> {
        match self {
            Slot::Primary => rec.meta.access_issued_at,
            Slot::Graph => rec.meta.graph_issued_at,
        }
    }

    /// Put a new token into this slot of `rec`.
    fn set(self, rec: &mut TokenRecord, token: String, issued: i64, expires: i64) {
        match self {
            Slot::Primary => {
                rec.secrets.access_token = Some(token);
                rec.meta.access_issued_at = Some(issued);
                rec.meta.access_expires_at = Some(expires);
            }
            Slot::Graph => {
                rec.secrets.graph_access_token = Some(token);
                rec.meta.graph_issued_at = Some(issued);
                rec.meta.graph_expires_at = Some(expires);
            }
        }
    }

    /// The scopes a refresh (or an app-only grant) for this slot asks for.
    fn scopes(self, profile: &Profile, app_only: bool) -> Result<Vec<String>> {
        match (self, app_only) {
            (Slot::Primary, false) => Ok(profile.delegated_scopes.clone()),
            (Slot::Primary, true) => Ok(profile.app_scopes.clone()),
            (Slot::Graph, _) => {
                let g = profile.graph.as_ref().ok_or_else(|| {
                    Error::new(
                        ErrorKind::ProviderConfiguration,
                        "Microsoft Graph exists only for Microsoft registrations",
                    )
                })?;
                Ok(if app_only {
                    g.app_scopes.clone()
                } else {
                    g.delegated_scopes.clone()
                })
            }
        }
    }
}

impl Client {
    /// The token endpoint of `profile` with the registration's client authentication.
    pub(crate) fn token_endpoint<'a>(
        &'a self,
        reg: &'a Registration,
        profile: &'a Profile,
    ) -> TokenEndpoint<'a> {
        TokenEndpoint {
            http: self.network().http.clone(),
            url: &profile.endpoints.token,
            auth: ClientAuth {
                client_id: &reg.client_id,
                secret: reg.client_secret.as_ref(),
            },
        }
    }

    /// An app-only token (client credentials grant): connecting and renewing an app-only account.
    pub(crate) async fn client_credentials(
        &self,
        reg: &Registration,
        profile: &Profile,
        cancel: &CancellationToken,
    ) -> Result<TokenGrant> {
        self.client_credentials_for(reg, profile, &profile.app_scopes, cancel)
            .await
    }

    /// An app-only token for `scopes` (one resource's `.default`).
    async fn client_credentials_for(
        &self,
        reg: &Registration,
        profile: &Profile,
        scopes: &[String],
        cancel: &CancellationToken,
    ) -> Result<TokenGrant> {
        if reg.client_secret.is_none() {
            return Err(Error::invalid(
                "client_secret",
                format!(
                    "registration '{}' has no client secret; client credentials need one",
                    reg.id
                ),
            ));
        }
        let scope = scopes.join(" ");
        token::request(
            self.token_endpoint(reg, profile),
            vec![
                ("grant_type", "client_credentials"),
                ("scope", scope.as_str()),
            ],
            scopes,
            "requesting an app-only token",
            Retry::IDEMPOTENT,
            cancel,
        )
        .await
    }

    /// The access token for `resource` of account `id` handed to `f` when it is in this client's
    /// memory and still what the store holds: the store's change counter has not moved since it
    /// was read (no process refreshed, disconnected or changed the account), and it is not yet due
    /// for renewal. `None` otherwise (and for stores without a change counter): then
    /// [`Client::access_token_for`] reads the store, refreshing if needed. No I/O, no lock held
    /// across a call: nanoseconds, for hosts that ask for a token before every use.
    pub fn cached_token<R>(
        &self,
        id: &str,
        resource: Resource,
        f: impl FnOnce(TokenRef<'_>) -> R,
    ) -> Option<R> {
        let generation = self.inner.store.generation()?;
        self.inner
            .token_cache
            .get(id, resource.index(), generation, now(), |c| {
                f(TokenRef {
                    token: &c.token,
                    expires_at: c.expires_at,
                    user: &c.user,
                })
            })
    }

    fn remember(
        &self,
        id: &str,
        resource: Resource,
        t: &AccessToken,
        fresh_until: i64,
        generation: u64,
    ) {
        self.inner.token_cache.put(
            id,
            resource.index(),
            crate::store::cache::CachedToken {
                token: t.token.clone(),
                expires_at: t.expires_at,
                user: t.user.clone(),
                fresh_until,
                generation,
            },
        );
    }

    /// A valid access token, refreshed ahead of expiry, single-flight across threads and processes.
    pub async fn access_token(&self, id: &str, cancel: &CancellationToken) -> Result<AccessToken> {
        self.access_token_for(id, Resource::Mail, cancel).await
    }

    /// A valid access token for `resource` (a Graph token for hosts that call Graph themselves),
    /// refreshed ahead of expiry, single-flight across threads and processes.
    pub async fn access_token_for(
        &self,
        id: &str,
        resource: Resource,
        cancel: &CancellationToken,
    ) -> Result<AccessToken> {
        if let Some(t) = self.cached_token(id, resource, |t| AccessToken {
            token: t.token.clone(),
            expires_at: t.expires_at,
            user: t.user.to_string(),
        }) {
            return Ok(t);
        }
        let account = self.account(id)?;
        let what = format!(
            "getting {} access token for account '{}'",
            match resource {
                Resource::Mail => "an",
                Resource::Graph => "a Microsoft Graph",
            },
            crate::error::quote(id)
        );
        self.access_token_refresh_for(&account, resource, None, cancel)
            .await
            .map(|(t, _)| t)
            .map_err(|e| e.context(&what))
    }

    /// The SASL XOAUTH2 initial response (base64) for the account's mailbox.
    pub async fn sasl_xoauth2(&self, id: &str, cancel: &CancellationToken) -> Result<SecretString> {
        let t = self.access_token(id, cancel).await?;
        Ok(sasl::xoauth2(&t.user, &t.token))
    }

    /// [`Client::fresh`] that also keeps the token in memory for [`Client::cached_token`].
    async fn fresh_remembered(
        &self,
        account: &Account,
        resource: Resource,
        slot: Slot,
    ) -> Result<Option<AccessToken>> {
        let generation = self.inner.store.generation();
        let id = account.id.clone();
        let rec = self.blocking(move |s| s.load_tokens(&id)).await?;
        let t = fresh_token(account, slot, rec.as_ref(), None)?;
        if let (Some(t), Some(rec), Some(g)) = (&t, &rec, generation) {
            if let Some(until) = fresh_until(account, slot, rec) {
                self.remember(&account.id, resource, t, until, g);
            }
        }
        Ok(t)
    }

    async fn fresh(
        &self,
        account: &Account,
        slot: Slot,
        reject: Option<&str>,
    ) -> Result<Option<AccessToken>> {
        let id = account.id.clone();
        let rec = self.blocking(move |s| s.load_tokens(&id)).await?;
        fresh_token(account, slot, rec.as_ref(), reject)
    }

    /// A valid access token; `reject` is a token a server just refused, which must be replaced.
    /// The flag says whether a refresh happened (by this caller or another) to get it.
    pub(crate) async fn access_token_inner(
        &self,
        account: &Account,
        reject: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<(AccessToken, bool)> {
        self.access_token_refresh(account, reject, cancel)
            .await
            .map(|(t, r)| (t, matches!(r, Refresh::Done)))
    }

    /// As [`Client::access_token_inner`], telling apart a refresh that failed while the current
    /// token is still usable (the background refresher must see that failure).
    pub(crate) async fn access_token_refresh(
        &self,
        account: &Account,
        reject: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<(AccessToken, Refresh)> {
        self.access_token_refresh_for(account, Resource::Mail, reject, cancel)
            .await
    }

    /// As [`Client::access_token_refresh`], for `resource`.
    pub(crate) async fn access_token_refresh_for(
        &self,
        account: &Account,
        resource: Resource,
        reject: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<(AccessToken, Refresh)> {
        let slot = Slot::of(account, resource);
        let first = match reject {
            None => self.fresh_remembered(account, resource, slot).await?,
            Some(_) => self.fresh(account, slot, reject).await?,
        };
        if let Some(t) = first {
            return Ok((t, Refresh::NotNeeded));
        }
        let lock = {
            let mut locks = self
                .inner
                .locks
                .lock()
                .map_err(|_| Error::internal("lock table poisoned"))?;
            locks.entry(account.id.clone()).or_default().clone()
        };
        let _guard = tokio::select! {
            g = lock.lock() => g,
            _ = cancel.cancelled() => return Err(Error::cancelled("waiting for a token refresh")),
        };
        if let Some(t) = self.fresh(account, slot, reject).await? {
            return Ok((t, Refresh::Done));
        }
        let deadline = Instant::now() + self.inner.lease_ttl + Duration::from_secs(10);
        let waiting_since = Instant::now();
        loop {
            let (id, holder, ttl) = (
                account.id.clone(),
                self.inner.holder.clone(),
                self.inner.lease_ttl,
            );
            // The lease and the record in one transaction; the new tokens and the lease's
            // release in another (for SQLite: two commits per refresh, not four).
            if let Some(rec) = self
                .blocking(move |s| s.lease_and_load(&id, &holder, ttl))
                .await?
            {
                let mut released = false;
                let result = self
                    .refresh_with_lease(account, slot, reject, rec, &mut released, cancel)
                    .await;
                if !released {
                    let (id, holder) = (account.id.clone(), self.inner.holder.clone());
                    if let Err(e) = self.blocking(move |s| s.release_lease(&id, &holder)).await {
                        tracing::warn!("releasing the refresh lease failed: {}", e.message());
                    }
                }
                return result;
            }
            // Another process refreshes: wait for its result.
            let jitter = rand::random::<u64>() % 40;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(30 + jitter)) => {}
                _ = cancel.cancelled() => return Err(Error::cancelled("waiting for a token refresh")),
            }
            if let Some(t) = self.fresh(account, slot, reject).await? {
                return Ok((t, Refresh::Done));
            }
            // The holder is slow (or died holding the lease): a token that is still valid
            // serves this caller meanwhile instead of stalling it until the lease expires.
            if waiting_since.elapsed() > Duration::from_secs(2) {
                let id = account.id.clone();
                if let Some(rec) = self.blocking(move |s| s.load_tokens(&id)).await? {
                    let usable = rec.meta.state == StoredState::Connected
                        && slot.expires_at(&rec).is_some_and(|e| e > now() + 10)
                        && (reject.is_none() || slot.token(&rec).map(String::as_str) != reject);
                    if let Some(t) = token_from(account, slot, &rec).filter(|_| usable) {
                        tracing::debug!(account = %account.id, "refresh lease held elsewhere; using the still-valid token");
                        return Ok((t, Refresh::NotNeeded));
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(Error::store(
                    "another process has held the refresh lease for too long",
                ));
            }
        }
    }

    /// Refresh with the lease held; `rec` is the record read when it was taken. Sets
    /// `released` when the lease was given back with the write of the result.
    async fn refresh_with_lease(
        &self,
        account: &Account,
        slot: Slot,
        reject: Option<&str>,
        rec: Option<TokenRecord>,
        released: &mut bool,
        cancel: &CancellationToken,
    ) -> Result<(AccessToken, Refresh)> {
        let Some(rec) = rec else {
            return Err(not_connected(&account.id));
        };
        if let Some(t) = fresh_token(account, slot, Some(&rec), reject)? {
            return Ok((t, Refresh::Done));
        }
        let reg = self.registration(&account.registration)?;
        let profile = provider::resolve(&reg, rec.meta.tenant.as_deref(), &self.network().http)
            .await?
            .for_account(account)?;
        let app_only = rec.meta.flow == Flow::ClientCredentials;
        let scopes = slot.scopes(&profile, app_only)?;
        let result = match (&rec.secrets.refresh_token, app_only) {
            (_, true) => {
                self.client_credentials_for(&reg, &profile, &scopes, cancel)
                    .await
            }
            (Some(rt), false) => {
                let scope = scopes.join(" ");
                let form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                    ("scope", scope.as_str()),
                ];
                token::request(
                    self.token_endpoint(&reg, &profile),
                    form,
                    &scopes,
                    "refreshing the token",
                    Retry::IDEMPOTENT,
                    cancel,
                )
                .await
            }
            (None, false) => Err(Error::new(
                ErrorKind::ReauthorizationRequired,
                "no refresh token is stored (the provider issued none); connect again",
            )
            .with_evidence(|ev| ev.reauth_reason = Some(ReauthReason::NoRefreshToken))),
        };
        let t = now();
        match result {
            Ok(grant) => {
                let mut meta = rec.meta.clone();
                meta.state = StoredState::Connected;
                meta.reauth_reason = None;
                meta.last_error = None;
                meta.refreshed_at = Some(t);
                if slot == Slot::Primary && !grant.scopes.is_empty() {
                    meta.scopes = grant.scopes.clone();
                }
                let refresh_token = grant
                    .refresh_token
                    .as_ref()
                    .map(|s| s.expose_secret().to_string())
                    .or_else(|| rec.secrets.refresh_token.clone());
                meta.has_refresh_token = refresh_token.is_some();
                let mut new = TokenRecord {
                    account_id: account.id.clone(),
                    version: 0,
                    meta,
                    secrets: TokenSecrets {
                        refresh_token,
                        access_token: rec.secrets.access_token.clone(),
                        graph_access_token: rec.secrets.graph_access_token.clone(),
                    },
                };
                slot.set(
                    &mut new,
                    grant.access_token.expose_secret().to_string(),
                    t,
                    t + grant.expires_in.as_secs() as i64,
                );
                let expected = rec.version;
                let holder = self.inner.holder.clone();
                let saved = self
                    .blocking(move |s| {
                        Ok(s.save_tokens_and_release(&new, expected, &holder)?
                            .map(|_| new))
                    })
                    .await;
                *released = saved.is_ok();
                let saved = saved?;
                match saved {
                    Some(new) => {
                        tracing::debug!(account = %account.id, "access token refreshed");
                        self.inner.events.push(EventKind::TokenRefreshed {
                            account_id: account.id.clone(),
                            expires_at: slot.expires_at(&new).and_then(rfc3339).unwrap_or_default(),
                        });
                        self.state_changed(
                            &account.id,
                            account_state::state_of(Some(&rec)),
                            AccountState::Connected,
                        );
                        // The new token is handed out as it is: on a busy machine its short life
                        // may already be inside the refresh margin, which is no reason to fail.
                        token_from(account, slot, &new)
                            .map(|t| (t, Refresh::Done))
                            .ok_or_else(|| {
                                Error::internal("the refreshed record has no access token")
                            })
                    }
                    None => {
                        // Someone replaced the record meanwhile (a new connect or a disconnect): theirs wins.
                        self.fresh(account, slot, reject).await?.map(|t| (t, Refresh::Done)).ok_or_else(|| Error::new(ErrorKind::State, "the account was disconnected or reconnected during the refresh; try again"))
                    }
                }
            }
            Err(e) => {
                let mut meta = rec.meta.clone();
                meta.last_error = Some(e.message().to_string());
                let still_valid =
                    slot.expires_at(&rec).is_some_and(|x| x > t + 5) && slot.token(&rec).is_some();
                if let Some(reason) = e.reauth_reason() {
                    meta.state = StoredState::NeedsReauthorization;
                    meta.reauth_reason = Some(reason);
                } else if e.is_transient() && still_valid {
                    tracing::warn!(account = %account.id, "refresh failed ({}); using the current token until it expires", e.message());
                    if let Some(t) = token_from(account, slot, &rec) {
                        return Ok((t, Refresh::FailedUsingCurrent(e)));
                    }
                } else if !e.is_transient() && e.kind() != ErrorKind::Cancelled {
                    meta.state = StoredState::Error;
                }
                if e.kind() != ErrorKind::Cancelled {
                    let to = AccountState::from(meta.state);
                    if let Some(reason) = meta
                        .reauth_reason
                        .filter(|_| to == AccountState::NeedsReauthorization)
                    {
                        self.inner.events.push(EventKind::NeedsReauthorization {
                            account_id: account.id.clone(),
                            reason,
                            diagnostic: e.diagnostic_json(),
                        });
                    }
                    self.state_changed(&account.id, account_state::state_of(Some(&rec)), to);
                    let new = TokenRecord {
                        account_id: account.id.clone(),
                        version: 0,
                        meta,
                        secrets: rec.secrets.clone(),
                    };
                    let expected = rec.version;
                    let holder = self.inner.holder.clone();
                    match self
                        .blocking(move |s| s.save_tokens_and_release(&new, expected, &holder))
                        .await
                    {
                        Ok(_) => *released = true,
                        Err(se) => {
                            tracing::warn!("recording the refresh failure failed: {}", se.message())
                        }
                    }
                }
                Err(e)
            }
        }
    }
}

/// Whether getting a token refreshed it.
pub(crate) enum Refresh {
    /// The stored token was fresh.
    NotNeeded,
    /// Refreshed (by this caller, or another thread or process meanwhile).
    Done,
    /// The refresh failed transiently; the current token is still valid and was returned.
    FailedUsingCurrent(Error),
}

fn not_connected(id: &str) -> Error {
    Error::new(
        ErrorKind::State,
        format!("account '{id}' is not connected; connect it first"),
    )
    .with_code("MC-NOT-CONNECTED")
}

fn token_from(account: &Account, slot: Slot, rec: &TokenRecord) -> Option<AccessToken> {
    Some(AccessToken {
        token: SecretString::from(slot.token(rec)?.clone()),
        expires_at: slot.expires_at(rec)?,
        user: account.mailbox.clone(),
    })
}

/// The stored token if it is valid beyond the refresh margin; an error when the account is not
/// connected or needs re-authorization (no provider call is made then).
fn fresh_token(
    account: &Account,
    slot: Slot,
    rec: Option<&TokenRecord>,
    reject: Option<&str>,
) -> Result<Option<AccessToken>> {
    let Some(rec) = rec else {
        return Err(not_connected(&account.id));
    };
    if rec.meta.state == StoredState::NeedsReauthorization {
        let reason = rec
            .meta
            .reauth_reason
            .unwrap_or(ReauthReason::RefreshTokenInvalid);
        let last = rec.meta.last_error.clone().unwrap_or_default();
        return Err(Error::new(
            ErrorKind::ReauthorizationRequired,
            format!(
                "account '{}' must be authorized again ({}){}",
                account.id,
                reason.as_str(),
                if last.is_empty() {
                    String::new()
                } else {
                    format!(": {last}")
                }
            ),
        )
        .with_evidence(|ev| ev.reauth_reason = Some(reason)));
    }
    let Some(exp) = slot.expires_at(rec) else {
        return Ok(None);
    };
    if reject.is_some() && slot.token(rec).map(String::as_str) == reject {
        return Ok(None);
    }
    // Nothing can renew it: it serves until it expires (the status says re-authorization is due).
    if !rec.meta.has_refresh_token && rec.meta.flow != Flow::ClientCredentials {
        return Ok(if exp > now() {
            token_from(account, slot, rec)
        } else {
            None
        });
    }
    match fresh_until(account, slot, rec) {
        Some(until) if until > now() => Ok(token_from(account, slot, rec)),
        _ => Ok(None),
    }
}

/// Until when (unix seconds) the token of `slot` serves without a refresh: its expiry when
/// nothing can renew it, else the expiry less the account's refresh margin (at most half the
/// token's lifetime).
fn fresh_until(account: &Account, slot: Slot, rec: &TokenRecord) -> Option<i64> {
    let exp = slot.expires_at(rec)?;
    if !rec.meta.has_refresh_token && rec.meta.flow != Flow::ClientCredentials {
        return Some(exp);
    }
    let lifetime = slot.issued_at(rec).map(|i| exp - i).unwrap_or(i64::MAX);
    let margin = (account.options.refresh_margin_secs as i64).min(lifetime / 2);
    Some(exp - margin)
}
