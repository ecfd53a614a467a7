//! The background refresher for a service process: keeps every connected account's access token
//! fresh ahead of expiry, so the vendor's mail service never waits for a refresh and learns early
//! when an account needs re-authorization.
//!
//! Each round lists the accounts, reads their token metadata (no network), and refreshes those
//! that expire within `ahead` plus a per-account jitter (spreading accounts that were connected
//! together), at most `concurrency` at a time. Refreshes go through the same single-flight path as
//! [`Client::access_token`] (per-account lock and the store's lease), so several service
//! instances on one store never refresh an account twice. A 429 from the provider backs off every
//! account of that tenant until `Retry-After` (at least `backoff_min`, doubling per repeated 429,
//! at most `backoff_max`). Failures needing re-authorization raise `needs_reauthorization` events
//! (from the refresh path) and are not retried until the account is connected again.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::error::{ErrorKind, Result};
use crate::model::{self, Flow};
use crate::store::StoredState;
use crate::tokens::Refresh;

/// Options of the refresher (JSON: the field names below; all optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RefresherOptions {
    /// Seconds between rounds (default 30).
    pub interval_secs: u64,
    /// Refresh when the token expires within this many seconds (default 600; never more often
    /// than every half token lifetime).
    pub ahead_secs: u64,
    /// Spread refreshes over up to this many extra seconds ahead (default 120).
    pub jitter_secs: u64,
    /// Refreshes at once (default 8).
    pub concurrency: usize,
    /// Back-off after a 429 without Retry-After, doubled per repeat (default 30 s).
    pub backoff_min_secs: u64,
    /// Longest back-off (default 900 s).
    pub backoff_max_secs: u64,
}

impl Default for RefresherOptions {
    fn default() -> Self {
        RefresherOptions {
            interval_secs: 30,
            ahead_secs: 600,
            jitter_secs: 120,
            concurrency: 8,
            backoff_min_secs: 30,
            backoff_max_secs: 900,
        }
    }
}

impl RefresherOptions {
    /// Parse and check the options JSON (empty = defaults).
    pub fn from_json(json: &str) -> Result<RefresherOptions> {
        let o: RefresherOptions = if json.trim().is_empty() {
            RefresherOptions::default()
        } else {
            model::parse_json("refresher options", json)?
        };
        if o.interval_secs == 0 || o.interval_secs > 86_400 {
            return Err(crate::Error::invalid(
                "interval_secs",
                "'interval_secs' must be between 1 and 86400",
            ));
        }
        if o.concurrency == 0 || o.concurrency > 256 {
            return Err(crate::Error::invalid(
                "concurrency",
                "'concurrency' must be between 1 and 256",
            ));
        }
        if o.backoff_min_secs == 0 || o.backoff_max_secs < o.backoff_min_secs {
            return Err(crate::Error::invalid(
                "backoff_min_secs",
                "'backoff_min_secs' must be at least 1 and not above 'backoff_max_secs'",
            ));
        }
        Ok(o)
    }
}

/// What one round did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RoundReport {
    /// Accounts looked at.
    pub accounts: usize,
    /// Connected accounts not due yet.
    pub fresh: usize,
    /// Refreshed (by this round or by another process meanwhile).
    pub refreshed: usize,
    /// Failed (transient; retried next round).
    pub failed: usize,
    /// Now need re-authorization (or already did: not touched).
    pub needs_reauthorization: usize,
    /// Skipped because their tenant is backing off after a 429.
    pub backing_off: usize,
    /// Not connected or app-only without tokens.
    pub not_connected: usize,
}

/// The access tokens (account → expiry) whose coming re-authorization was announced.
#[derive(Default)]
struct Announced(std::sync::Mutex<HashMap<String, i64>>);

/// Tenants backing off after a 429, shared by every refresher of a client.
#[derive(Default)]
pub(crate) struct Backoff {
    until: HashMap<String, (Instant, Duration)>,
}

impl Backoff {
    fn active(&self, tenant: &str, now: Instant) -> bool {
        self.until.get(tenant).is_some_and(|(t, _)| *t > now)
    }

    fn hit(&mut self, tenant: &str, retry_after: Option<Duration>, o: &RefresherOptions) {
        let min = Duration::from_secs(o.backoff_min_secs);
        let max = Duration::from_secs(o.backoff_max_secs);
        let next = match self.until.get(tenant) {
            Some((_, last)) => (*last * 2).min(max),
            None => min,
        };
        let wait = retry_after.map_or(next, |r| r.max(next)).min(max);
        tracing::warn!(
            tenant,
            secs = wait.as_secs(),
            "the provider throttles refreshes for this tenant; backing off"
        );
        self.until
            .insert(tenant.to_string(), (Instant::now() + wait, next));
    }

    fn clear(&mut self, tenant: &str) {
        self.until.remove(tenant);
    }
}

fn jitter(account_id: &str, expires_at: i64, max: u64) -> i64 {
    if max == 0 {
        return 0;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (account_id, expires_at).hash(&mut h);
    (h.finish() % (max + 1)) as i64
}

/// The refresher's state across rounds.
pub struct Refresher {
    client: Client,
    options: RefresherOptions,
    backoff: Arc<std::sync::Mutex<Backoff>>,
}

impl Refresher {
    /// A refresher over `client`.
    pub fn new(client: Client, options: RefresherOptions) -> Refresher {
        let backoff = client.feature::<std::sync::Mutex<Backoff>>();
        Refresher {
            client,
            options,
            backoff,
        }
    }

    /// Another handle on the same refresher (same client, options and back-off table), e.g. to
    /// move into a task.
    pub fn clone_handle(&self) -> Refresher {
        Refresher {
            client: self.client.clone(),
            options: self.options.clone(),
            backoff: self.backoff.clone(),
        }
    }

    /// Run rounds every `interval_secs` until `cancel` fires.
    pub async fn run(&self, cancel: &CancellationToken) {
        tracing::info!(
            interval = self.options.interval_secs,
            ahead = self.options.ahead_secs,
            concurrency = self.options.concurrency,
            "refresher started"
        );
        loop {
            match self.round(cancel).await {
                Ok(r) => tracing::debug!(
                    refreshed = r.refreshed,
                    failed = r.failed,
                    reauth = r.needs_reauthorization,
                    backing_off = r.backing_off,
                    "refresher round"
                ),
                Err(e) => tracing::warn!("refresher round failed: {}", e.message()),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(self.options.interval_secs)) => {}
                _ = cancel.cancelled() => break,
            }
        }
        tracing::info!("refresher stopped");
    }

    /// Tell the host, once per access token, that an account without a refresh token must sign in
    /// again when that token expires at `exp`.
    fn announce_reauthorization(&self, account_id: &str, exp: i64) {
        let announced = self.client.feature::<Announced>();
        let mut map = match announced.0.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if map.get(account_id) == Some(&exp) {
            return;
        }
        map.insert(account_id.to_string(), exp);
        self.client
            .events()
            .push(crate::events::EventKind::ReauthorizationDue {
                account_id: account_id.to_string(),
                at: crate::account_state::rfc3339(exp).unwrap_or_default(),
                code: "MC-NO-REFRESH-TOKEN",
            });
    }

    /// One round: refresh every due account.
    pub async fn round(&self, cancel: &CancellationToken) -> Result<RoundReport> {
        let client = self.client.clone();
        let accounts = client
            .blocking(|s| {
                let mut out = Vec::new();
                for a in s.list_accounts()? {
                    let rec = s.load_tokens(&a.id).ok().flatten();
                    out.push((a, rec.map(|r| r.meta)));
                }
                Ok(out)
            })
            .await?;
        let mut report = RoundReport {
            accounts: accounts.len(),
            ..Default::default()
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let started = Instant::now();
        let sem = Arc::new(Semaphore::new(self.options.concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        for (account, meta) in accounts {
            let Some(meta) = meta else {
                report.not_connected += 1;
                continue;
            };
            match meta.state {
                StoredState::NeedsReauthorization => {
                    report.needs_reauthorization += 1;
                    continue;
                }
                StoredState::Connected | StoredState::Error => {}
            }
            let Some(exp) = meta.access_expires_at else {
                report.not_connected += 1;
                continue;
            };
            // Nothing can renew a token without a refresh token: it serves until it expires (the
            // status says re-authorization is due); an expired one goes to the refresh path,
            // which records that the account needs signing in again.
            if !meta.has_refresh_token
                && meta.flow != Flow::ClientCredentials
                && meta.state == StoredState::Connected
                && exp > now
            {
                if exp - (self.options.ahead_secs as i64) <= now {
                    self.announce_reauthorization(&account.id, exp);
                }
                report.fresh += 1;
                continue;
            }
            let lifetime = meta.access_issued_at.map_or(i64::MAX, |i| exp - i);
            let ahead =
                self.options.ahead_secs as i64 + jitter(&account.id, exp, self.options.jitter_secs);
            let margin = ahead.min(lifetime / 2);
            if exp - margin > now && meta.state == StoredState::Connected {
                report.fresh += 1;
                continue;
            }
            let tenant = meta
                .tenant
                .clone()
                .unwrap_or_else(|| format!("registration:{}", account.registration));
            if self
                .backoff
                .lock()
                .map(|b| b.active(&tenant, started))
                .unwrap_or(false)
            {
                report.backing_off += 1;
                continue;
            }
            let (client, sem, cancel, backoff, options) = (
                self.client.clone(),
                sem.clone(),
                cancel.clone(),
                self.backoff.clone(),
                self.options.clone(),
            );
            tasks.spawn(async move {
                let Ok(_permit) = sem.acquire_owned().await else {
                    return Outcome::Failed;
                };
                // Another task of this round may have hit a 429 for the tenant meanwhile.
                if backoff
                    .lock()
                    .map(|b| b.active(&tenant, Instant::now()))
                    .unwrap_or(false)
                {
                    return Outcome::BackingOff;
                }
                let mut due = account.clone();
                due.options.refresh_margin_secs =
                    due.options.refresh_margin_secs.max(margin.max(0) as u64);
                if meta.flow == Flow::ClientCredentials {
                    due.options.refresh_margin_secs = due.options.refresh_margin_secs.max(1);
                }
                let result = match client.access_token_refresh(&due, None, &cancel).await {
                    Ok((_, Refresh::FailedUsingCurrent(e))) => Err(e),
                    other => other.map(|_| ()),
                };
                match result {
                    Ok(()) => {
                        if let Ok(mut b) = backoff.lock() {
                            b.clear(&tenant);
                        }
                        Outcome::Refreshed
                    }
                    Err(e) if e.kind() == ErrorKind::ReauthorizationRequired => {
                        Outcome::NeedsReauthorization
                    }
                    Err(e) => {
                        let ev = e.evidence();
                        if ev.http_status == Some(429) {
                            if let Ok(mut b) = backoff.lock() {
                                b.hit(&tenant, ev.retry_after_secs.map(Duration::from_secs), &options);
                            }
                        }
                        tracing::warn!(account = %account.id, "background refresh failed: {}", e.message());
                        Outcome::Failed
                    }
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(Outcome::Refreshed) => report.refreshed += 1,
                Ok(Outcome::NeedsReauthorization) => report.needs_reauthorization += 1,
                Ok(Outcome::BackingOff) => report.backing_off += 1,
                Ok(Outcome::Failed) | Err(_) => report.failed += 1,
            }
        }
        Ok(report)
    }
}

enum Outcome {
    Refreshed,
    NeedsReauthorization,
    BackingOff,
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        assert_eq!(RefresherOptions::from_json("").unwrap().concurrency, 8);
        let o = RefresherOptions::from_json(r#"{"interval_secs": 5, "concurrency": 2}"#).unwrap();
        assert_eq!((o.interval_secs, o.concurrency, o.ahead_secs), (5, 2, 600));
        assert!(RefresherOptions::from_json(r#"{"concurrency": 0}"#).is_err());
        assert!(RefresherOptions::from_json(r#"{"interval": 5}"#).is_err());
        assert!(
            RefresherOptions::from_json(r#"{"backoff_min_secs": 60, "backoff_max_secs": 10}"#)
                .is_err()
        );
    }

    #[test]
    fn jitter_is_bounded_and_spreads_accounts() {
        let js: Vec<i64> = (0..50)
            .map(|i| jitter(&format!("a{i}"), 1000, 120))
            .collect();
        assert!(js.iter().all(|j| (0..=120).contains(j)));
        let distinct: std::collections::HashSet<_> = js.iter().collect();
        assert!(distinct.len() > 20);
        assert_eq!(jitter("a", 1, 0), 0);
    }

    #[test]
    fn backoff_honours_retry_after_and_doubles() {
        let o = RefresherOptions::default();
        let mut b = Backoff::default();
        let now = Instant::now();
        assert!(!b.active("t", now));
        b.hit("t", Some(Duration::from_secs(120)), &o);
        assert!(b.active("t", now + Duration::from_secs(100)));
        assert!(!b.active("t", now + Duration::from_secs(125)));
        b.hit("t", None, &o);
        assert_eq!(b.until["t"].1, Duration::from_secs(60));
        assert!(!b.active("other", now));
        b.clear("t");
        assert!(!b.active("t", now));
    }
}
