//! The facade the C ABI, the bindings and the CLI use: one [`Client`] per store.
//!
//! A client is cheap to clone and thread-safe. Store calls are blocking and are moved off the
//! async threads. Access tokens are refreshed ahead of expiry, single-flight per account: within
//! a process through a per-account async lock, across processes through the store's lease, so
//! concurrent callers wait for one refresh and all get its result.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, ErrorKind, Result};
use crate::events::{EventKind, EventQueue};
use crate::http::{HttpClient, HttpOptions};
use crate::i18n::Language;
use crate::model::{self, Account, Flow, ProviderKind, Registration};
use crate::oauth::errors::ReauthReason;
use crate::oauth::token::{self, Retry, TokenEndpoint, TokenGrant};
use crate::oauth::{identity, ClientAuth, ConnectObserver, ConnectStage, Identity};
use crate::provider::{self, Profile};
use crate::store::{
    KeySource, SqliteStore, StoredState, TokenMeta, TokenRecord, TokenSecrets, TokenStore,
};
use crate::tls::TlsOptions;
use crate::transport::sasl;

/// Options of a client. From JSON with [`ClientOptions::from_json`] (schema in the README).
#[derive(Clone)]
pub struct ClientOptions {
    /// The SQLite store file, or a `postgres://` / `postgresql://` URL (feature `postgres`);
    /// empty for a host-owned store.
    pub store_path: PathBuf,
    /// Where the store key comes from (default: a key file beside the store, `<store>.key`).
    pub key: Option<KeySource>,
    /// Language of texts for people.
    pub language: Language,
    /// HTTP settings (proxy, timeouts, extra CA).
    pub http: HttpOptions,
    /// How long a refresh lease is held at most before other processes may take over.
    pub lease_ttl: Duration,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A PostgreSQL URL may carry a password.
        let store = self.store_path.to_string_lossy();
        let store = match (store.find("://"), store.rfind('@')) {
            (Some(s), Some(at)) if at > s => {
                format!("{}://[redacted]{}", &store[..s], &store[at..])
            }
            _ => store.into_owned(),
        };
        f.debug_struct("ClientOptions")
            .field("store", &store)
            .field("key", &self.key)
            .field("language", &self.language)
            .field("http", &self.http)
            .field("lease_ttl", &self.lease_ttl)
            .finish()
    }
}

impl ClientOptions {
    /// Options for a store file with defaults for everything else.
    pub fn new(store_path: impl Into<PathBuf>) -> ClientOptions {
        ClientOptions {
            store_path: store_path.into(),
            key: None,
            language: Language::En,
            http: HttpOptions::default(),
            lease_ttl: Duration::from_secs(60),
        }
    }

    /// Parse the options JSON.
    pub fn from_json(json: &str) -> Result<ClientOptions> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct KeyJson {
            #[serde(default)]
            file: Option<PathBuf>,
            #[serde(default)]
            base64: Option<String>,
            #[serde(default)]
            dpapi: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            #[serde(default)]
            store: Option<PathBuf>,
            #[serde(default)]
            key: Option<KeyJson>,
            #[serde(default)]
            language: Option<String>,
            #[serde(default)]
            log_level: Option<String>,
            #[serde(default)]
            proxy: Option<String>,
            #[serde(default)]
            no_proxy: bool,
            #[serde(default)]
            extra_ca_file: Option<PathBuf>,
            #[serde(default)]
            http_timeout_secs: Option<u64>,
            #[serde(default)]
            danger_accept_invalid_certs: bool,
        }
        let raw: Raw = model::parse_json("client options", json)?;
        let mut o = ClientOptions::new(raw.store.unwrap_or_default());
        o.key = match raw.key {
            None => None,
            Some(KeyJson {
                file: Some(f),
                base64: None,
                dpapi: None,
            }) => Some(KeySource::File(f)),
            Some(KeyJson {
                file: None,
                base64: Some(b),
                dpapi: None,
            }) => Some(KeySource::from_base64(&b)?),
            Some(KeyJson {
                file,
                base64: None,
                dpapi: Some(scope),
            }) => {
                let scope = crate::store::DpapiScope::parse(&scope)?;
                let file = match (file, o.store_path.to_str()) {
                    (Some(f), _) => f,
                    (None, Some(s)) if !s.is_empty() && !is_postgres_url(s) => {
                        crate::store::key::default_key_file(&o.store_path)
                    }
                    _ => {
                        return Err(Error::invalid(
                            "key",
                            "'key': {'dpapi': ...} needs 'file' unless the store is a SQLite file (the key file then sits beside it)",
                        ))
                    }
                };
                Some(KeySource::Dpapi { file, scope })
            }
            Some(_) => {
                return Err(Error::invalid(
                    "key",
                    "'key' must have exactly one of 'file', 'base64' or 'dpapi' (with 'dpapi', 'file' may name the key file)",
                ))
            }
        };
        if let Some(l) = raw.language {
            o.language = match l.as_str() {
                "en" => Language::En,
                "de" => Language::De,
                other => {
                    return Err(Error::invalid(
                        "language",
                        format!(
                            "'language' must be 'en' or 'de', not '{}'",
                            crate::error::quote(other)
                        ),
                    ))
                }
            };
        }
        if let Some(l) = raw.log_level {
            if !matches!(
                l.as_str(),
                "error" | "warn" | "info" | "debug" | "trace" | "off"
            ) {
                return Err(Error::invalid(
                    "log_level",
                    format!(
                        "'log_level' must be error, warn, info, debug, trace or off, not '{}'",
                        crate::error::quote(&l)
                    ),
                ));
            }
        }
        o.http.proxy = raw.proxy;
        o.http.no_proxy = raw.no_proxy;
        if let Some(t) = raw.http_timeout_secs {
            if t == 0 || t > 600 {
                return Err(Error::invalid(
                    "http_timeout_secs",
                    "'http_timeout_secs' must be between 1 and 600",
                ));
            }
            o.http.timeout = Duration::from_secs(t);
        }
        if let Some(ca) = raw.extra_ca_file {
            // A PEM bundle is a regular file of at most a few hundred KiB; refuse devices and
            // pipes (which could block or never end) and anything absurdly large.
            const MAX_CA: u64 = 4 * 1024 * 1024;
            match std::fs::metadata(&ca) {
                Ok(m) if !m.is_file() => {
                    return Err(Error::invalid(
                        "extra_ca_file",
                        format!("'{}' is not a regular file", ca.display()),
                    ))
                }
                Ok(m) if m.len() > MAX_CA => {
                    return Err(Error::invalid(
                        "extra_ca_file",
                        format!(
                            "'{}' is {} bytes; a CA bundle is at most 4 MiB",
                            ca.display(),
                            m.len()
                        ),
                    ))
                }
                _ => {}
            }
            let pem = std::fs::read(&ca).map_err(|e| {
                Error::invalid(
                    "extra_ca_file",
                    format!("cannot read '{}': {e}", ca.display()),
                )
            })?;
            o.http.tls = TlsOptions {
                extra_ca_pem: vec![pem],
                ..o.http.tls
            };
        }
        o.http.tls.danger_accept_invalid_certs = raw.danger_accept_invalid_certs;
        Ok(o)
    }
}

/// The connection state of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    /// No tokens.
    NotConnected,
    /// Tokens are usable.
    Connected,
    /// Connect again (see `reason`).
    NeedsReauthorization,
    /// The last refresh failed (see `last_error`).
    Error,
}

/// The status of an account (the C ABI's `mc_status` JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Account id.
    pub account_id: String,
    /// Mailbox.
    pub mailbox: String,
    /// State.
    pub state: AccountState,
    /// Why re-authorization is needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<ReauthReason>,
    /// Flow used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<Flow>,
    /// Who signed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// Granted scopes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Access token expiry (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Seconds until the access token expires (negative = expired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<i64>,
    /// Whether a refresh token is held.
    pub has_refresh_token: bool,
    /// When connected (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected_at: Option<String>,
    /// When last refreshed (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refreshed_at: Option<String>,
    /// Last refresh error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Connected, but signing in again will be needed when the access token expires (the
    /// provider issued no refresh token): when, and the diagnostic code that explains it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reauthorization_due: Option<ReauthorizationDue>,
    /// Whether the account that signed in was checked against the account's login (`false` only
    /// for registrations with `"verify_identity": false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_checked: Option<bool>,
}

/// When an account will need signing in again although nothing failed yet.
#[derive(Debug, Clone, Serialize)]
pub struct ReauthorizationDue {
    /// When the access token expires (RFC 3339).
    pub at: Option<String>,
    /// The diagnostic code (`MC-NO-REFRESH-TOKEN`).
    pub code: &'static str,
}

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

/// Per-call connect options.
#[derive(Default, Clone, Copy)]
pub struct ConnectOptions {
    /// Use this flow instead of the account's.
    pub flow: Option<Flow>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn TokenStore>,
    pub(crate) http: HttpClient,
    pub(crate) mail_tls: Arc<rustls::ClientConfig>,
    pub(crate) tls_options: TlsOptions,
    pub(crate) language: Language,
    holder: String,
    lease_ttl: Duration,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Authenticated SMTP sessions kept for bursts, per account.
    pub(crate) smtp_idle: Mutex<HashMap<String, Vec<crate::mail::IdleSmtp>>>,
    /// SMTP connections opened (for hosts' metrics and tests).
    pub(crate) smtp_opened: std::sync::atomic::AtomicU64,
    /// Host-driven sign-ins in progress.
    pub(crate) pending: crate::authorize::PendingTable,
    /// Events for the host.
    pub(crate) events: Arc<EventQueue>,
    /// Tenants the background refresher backs off (after a 429).
    pub(crate) backoff: Arc<Mutex<crate::scheduler::Backoff>>,
}

/// A mailconnect client over one store.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn rfc3339(t: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

impl Client {
    /// Open the store (creating it and its key file when missing). A `postgres://` or
    /// `postgresql://` store is a PostgreSQL database (feature `postgres`); its key must be given.
    pub fn open(options: ClientOptions) -> Result<Client> {
        if options.store_path.as_os_str().is_empty() {
            return Err(Error::invalid(
                "store",
                "'store' must name the store file or a postgres:// URL",
            ));
        }
        if let Some(url) = options.store_path.to_str().filter(|s| is_postgres_url(s)) {
            let Some(key) = options.key.clone() else {
                return Err(Error::invalid("key", "a PostgreSQL store needs 'key' ({\"file\": PATH} or {\"base64\": ...}): there is no store file beside which a key file could be kept"));
            };
            let store = open_postgres(url, &key, &options)?;
            return Client::with_store(store, options);
        }
        let key = options
            .key
            .clone()
            .unwrap_or_else(|| KeySource::default_for(&options.store_path));
        let store = SqliteStore::open(&options.store_path, &key)?;
        Client::with_store(Arc::new(store), options)
    }

    /// A client whose records live in the host's own database (see [`crate::store::host`]). The
    /// key must be given in the options (`key.file` or `key.base64`); `store` is not used.
    pub fn with_host_store(
        backend: impl crate::store::RecordBackend + 'static,
        options: ClientOptions,
    ) -> Result<Client> {
        let key = options.key.clone().ok_or_else(|| {
            Error::invalid(
                "key",
                "a host-owned store needs the encryption key in the options: 'key': {'base64': ...} or {'file': ...}",
            )
        })?;
        let store = crate::store::HostStore::new(backend, &key)?;
        Client::with_store(Arc::new(store), options)
    }

    /// A client over any store backend.
    pub fn with_store(store: Arc<dyn TokenStore>, options: ClientOptions) -> Result<Client> {
        let http = HttpClient::new(&options.http)?;
        let mail_tls = crate::tls::client_config(&options.http.tls)?;
        Ok(Client {
            inner: Arc::new(Inner {
                store,
                http,
                mail_tls,
                tls_options: options.http.tls.clone(),
                language: options.language,
                holder: format!("{}:{}", std::process::id(), uuid::Uuid::new_v4()),
                lease_ttl: options.lease_ttl,
                locks: Mutex::new(HashMap::new()),
                smtp_idle: Mutex::new(HashMap::new()),
                smtp_opened: std::sync::atomic::AtomicU64::new(0),
                pending: Default::default(),
                events: Arc::new(EventQueue::default()),
                backoff: Arc::default(),
            }),
        })
    }

    /// The language of texts for people.
    pub fn language(&self) -> Language {
        self.inner.language
    }

    /// The client's event queue (token refreshed, needs re-authorization, connect progress,
    /// state changes, log records when enabled).
    pub fn events(&self) -> &Arc<EventQueue> {
        &self.inner.events
    }

    fn state_changed(&self, account_id: &str, from: AccountState, to: AccountState) {
        if from != to {
            self.inner.events.push(EventKind::StateChanged {
                account_id: account_id.to_string(),
                from,
                to,
            });
        }
    }

    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn TokenStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| Error::internal(format!("store task failed: {e}")))?
    }

    // ----- registrations and accounts -------------------------------------------------------

    /// Insert or update a registration after validating it.
    pub fn put_registration(&self, reg: &Registration) -> Result<()> {
        model::validate_registration(reg)?;
        self.inner.store.put_registration(reg)
    }

    /// Insert or update a registration from JSON.
    pub fn put_registration_json(&self, json: &str) -> Result<Registration> {
        let reg: Registration = model::parse_json("registration", json)?;
        self.put_registration(&reg)?;
        Ok(reg)
    }

    /// A registration (its secret is never part of its JSON).
    pub fn registration(&self, id: &str) -> Result<Registration> {
        self.inner
            .store
            .get_registration(id)?
            .ok_or_else(|| Error::not_found("registration", id))
    }

    /// All registrations.
    pub fn registrations(&self) -> Result<Vec<Registration>> {
        self.inner.store.list_registrations()
    }

    /// Remove a registration (refused while accounts use it).
    pub fn remove_registration(&self, id: &str) -> Result<()> {
        if self.inner.store.remove_registration(id)? {
            Ok(())
        } else {
            Err(Error::not_found("registration", id))
        }
    }

    /// Insert or update an account after validating it; its registration must exist.
    pub fn put_account(&self, account: &Account) -> Result<()> {
        model::validate_account(account)?;
        if self
            .inner
            .store
            .get_registration(&account.registration)?
            .is_none()
        {
            return Err(Error::invalid(
                "registration",
                format!(
                    "registration '{}' does not exist; add it first",
                    account.registration
                ),
            ));
        }
        self.inner.store.put_account(account)
    }

    /// Insert or update an account from JSON. `registration` is an id, or an inline registration
    /// object that is stored too.
    pub fn put_account_json(&self, json: &str) -> Result<Account> {
        let mut v: serde_json::Value = model::parse_json("account", json)?;
        let inline = match v.get("registration") {
            Some(r @ serde_json::Value::Object(_)) => Some(r.clone()),
            _ => None,
        };
        let reg = match inline {
            Some(r) => {
                let reg: Registration = model::parse_json("account.registration", &r.to_string())?;
                model::validate_registration(&reg)?;
                v["registration"] = serde_json::Value::String(reg.id.clone());
                Some(reg)
            }
            None => None,
        };
        let account: Account = model::parse_json("account", &v.to_string())?;
        model::validate_account(&account)?;
        if let Some(reg) = reg {
            self.inner.store.put_registration(&reg)?;
        }
        self.put_account(&account)?;
        Ok(account)
    }

    /// An account.
    pub fn account(&self, id: &str) -> Result<Account> {
        self.inner
            .store
            .get_account(id)?
            .ok_or_else(|| Error::not_found("account", id))
    }

    /// All accounts.
    pub fn accounts(&self) -> Result<Vec<Account>> {
        self.inner.store.list_accounts()
    }

    /// Remove an account and its tokens.
    pub fn remove_account(&self, id: &str) -> Result<()> {
        if self.inner.store.remove_account(id)? {
            Ok(())
        } else {
            Err(Error::not_found("account", id))
        }
    }

    // ----- status -----------------------------------------------------------------------------

    /// The status of an account. Never touches the network.
    pub fn status(&self, id: &str) -> Result<Status> {
        let account = self.account(id)?;
        let rec = self.inner.store.load_tokens(id)?;
        Ok(status_of(&account, rec.as_ref()))
    }

    // ----- connect / disconnect ---------------------------------------------------------------

    /// Authorize the account interactively (or app-only) and store its tokens.
    pub async fn connect(
        &self,
        id: &str,
        opts: ConnectOptions,
        observer: &dyn ConnectObserver,
        cancel: &CancellationToken,
    ) -> Result<Status> {
        let account = self.account(id)?;
        let what = format!("connecting account '{}'", crate::error::quote(id));
        self.connect_inner(&account, opts, observer, cancel)
            .await
            .map_err(|e| e.context(&what))
    }

    async fn connect_inner(
        &self,
        account: &Account,
        opts: ConnectOptions,
        observer: &dyn ConnectObserver,
        cancel: &CancellationToken,
    ) -> Result<Status> {
        if cancel.is_cancelled() {
            return Err(Error::cancelled("the connect"));
        }
        let observer = EventObserver {
            host: observer,
            events: &self.inner.events,
            account_id: &account.id,
        };
        observer.progress(ConnectStage::Starting);
        let flow = opts.flow.unwrap_or(account.flow);
        if flow != Flow::ClientCredentials {
            return self
                .interactive_connect(account, flow, &observer, cancel)
                .await;
        }
        let reg = self.registration(&account.registration)?;
        let profile = provider::resolve(&reg, None, &self.inner.http).await?;
        observer.progress(ConnectStage::RequestingTokens);
        let grant = self.client_credentials(&reg, &profile, cancel).await?;
        self.store_grant(account, &reg, &profile, &grant, None, flow, &observer)
            .await
    }

    /// Check the identity of a grant and store it as the account's tokens. `observer` records
    /// progress events already (an [`EventObserver`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn store_grant(
        &self,
        account: &Account,
        reg: &Registration,
        profile: &Profile,
        grant: &TokenGrant,
        nonce: Option<&str>,
        flow: Flow,
        observer: &dyn ConnectObserver,
    ) -> Result<Status> {
        observer.progress(ConnectStage::CheckingIdentity);
        let identity = self
            .check_identity(account, reg, profile, grant, nonce, flow)
            .await?;
        observer.progress(ConnectStage::Storing);
        let tenant = match (reg.provider, &identity) {
            (ProviderKind::Microsoft, Some(Identity { tid: Some(tid), .. })) => Some(tid.clone()),
            _ => None,
        };
        if flow != Flow::ClientCredentials && grant.refresh_token.is_none() {
            tracing::warn!(account = %account.id, "no refresh token was issued (is 'offline_access' among the scopes?); the account must connect again when the access token expires");
        }
        let t = now();
        let rec = TokenRecord {
            account_id: account.id.clone(),
            version: 0,
            meta: TokenMeta {
                state: StoredState::Connected,
                reauth_reason: None,
                access_expires_at: Some(t + grant.expires_in.as_secs() as i64),
                access_issued_at: Some(t),
                scopes: grant.scopes.clone(),
                identity,
                tenant,
                flow,
                connected_at: t,
                refreshed_at: None,
                last_error: None,
                has_refresh_token: grant.refresh_token.is_some(),
            },
            secrets: TokenSecrets {
                refresh_token: grant
                    .refresh_token
                    .as_ref()
                    .map(|s| s.expose_secret().to_string()),
                access_token: Some(grant.access_token.expose_secret().to_string()),
            },
        };
        let id = account.id.clone();
        let (rec, before) = self
            .blocking(move |s| {
                for _ in 0..10 {
                    let current = match s.load_tokens(&id) {
                        Ok(r) => r,
                        Err(e) => {
                            // A damaged record (truncated by a host's column, altered): the new
                            // tokens replace it, so connecting again repairs the account.
                            tracing::warn!(account = %id, "the stored token record cannot be read ({}); replacing it", e.message());
                            s.delete_tokens(&id)?;
                            None
                        }
                    };
                    let before = status_of_state(current.as_ref());
                    let version = current.map(|r| r.version).unwrap_or(0);
                    if s.save_tokens(&rec, version)?.is_some() {
                        return Ok((rec, before));
                    }
                }
                Err(Error::store(
                    "the token record kept changing while storing the new tokens",
                ))
            })
            .await?;
        observer.progress(ConnectStage::Connected);
        self.state_changed(&account.id, before, AccountState::Connected);
        tracing::info!(account = %account.id, flow = flow.as_str(), "connected");
        Ok(status_of(account, Some(&rec)))
    }

    /// Who signed in: the id_token's names, else (an id_token with only `sub`, or none) the
    /// userinfo endpoint's, checked against the account's login. An identity that cannot be
    /// established refuses the sign-in unless the registration says `"verify_identity": false`.
    async fn check_identity(
        &self,
        account: &Account,
        reg: &Registration,
        profile: &Profile,
        grant: &TokenGrant,
        nonce: Option<&str>,
        flow: Flow,
    ) -> Result<Option<Identity>> {
        if flow == Flow::ClientCredentials {
            return Ok(None);
        }
        let mut identity = match &grant.id_token {
            Some(t) => Some(identity::read_id_token(t, &reg.client_id, nonce)?),
            None => None,
        };
        let mut userinfo_error = None;
        if identity.as_ref().is_none_or(|i| i.names.is_empty()) {
            if let Some(url) = &profile.endpoints.userinfo {
                match self
                    .inner
                    .http
                    .get_json_bearer::<serde_json::Value>(url, &grant.access_token)
                    .await
                {
                    Ok(info) => identity = Some(identity::merge_userinfo(identity, info)?),
                    Err(e) => userinfo_error = Some(e),
                }
            }
        }
        match identity {
            Some(i) if !i.names.is_empty() => {
                identity::check_identity(&i, account.expected_login(), &account.login_aliases)?;
                Ok(Some(i))
            }
            other if !reg.verify_identity => {
                tracing::warn!(account = %account.id, "the signed-in account is not checked ('verify_identity' is false)");
                Ok(other)
            }
            _ => {
                let why = match (&grant.id_token, &userinfo_error, &profile.endpoints.userinfo) {
                    (None, _, None) => "the provider issued no id_token (is 'openid' among the scopes?) and names no userinfo endpoint".to_string(),
                    (_, Some(e), _) => format!("the id_token names no account and the userinfo endpoint failed: {}", e.message()),
                    (_, None, None) => "the id_token names no account (only 'sub') and the provider names no userinfo endpoint".to_string(),
                    (_, None, Some(_)) => "neither the id_token nor the userinfo endpoint names the account (is 'email' among the scopes?)".to_string(),
                };
                Err(Error::new(
                    ErrorKind::AuthorizationDenied,
                    format!(
                        "the account that signed in cannot be identified: {why}. Nothing was stored. Add 'openid' and 'email' to the registration's scopes, or set \"verify_identity\": false in the registration if this provider tells no account name (then any account that signs in is taken for '{}')",
                        account.expected_login()
                    ),
                )
                .with_code("MC-IDENTITY-UNKNOWN"))
            }
        }
    }

    async fn client_credentials(
        &self,
        reg: &Registration,
        profile: &Profile,
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
        let scope = profile.app_scopes.join(" ");
        let auth = ClientAuth {
            client_id: &reg.client_id,
            secret: reg.client_secret.as_ref(),
        };
        token::request(
            TokenEndpoint {
                http: &self.inner.http,
                url: &profile.endpoints.token,
                auth,
            },
            vec![
                ("grant_type", "client_credentials"),
                ("scope", scope.as_str()),
            ],
            &profile.app_scopes,
            "requesting an app-only token",
            Retry::IDEMPOTENT,
            cancel,
        )
        .await
    }

    /// Forget the account's tokens (and revoke them where the provider offers revocation). Idempotent.
    pub async fn disconnect(&self, id: &str) -> Result<()> {
        let account = self.account(id)?;
        let aid = id.to_string();
        let rec = self
            .blocking(move |s| s.load_tokens(&aid))
            .await
            .unwrap_or(None);
        let aid = id.to_string();
        self.blocking(move |s| s.delete_tokens(&aid)).await?;
        self.state_changed(
            id,
            status_of_state(rec.as_ref()),
            AccountState::NotConnected,
        );
        if let (Some(rec), Ok(reg)) = (rec, self.registration(&account.registration)) {
            if let Some(rt) = rec.secrets.refresh_token.as_deref() {
                if let Ok(profile) = provider::resolve(&reg, None, &self.inner.http).await {
                    if let Some(url) = &profile.endpoints.revocation {
                        let form = [
                            ("token", rt),
                            ("token_type_hint", "refresh_token"),
                            ("client_id", reg.client_id.as_str()),
                        ];
                        match self.inner.http.post_form(url, &form, None).await {
                            Ok(r) if r.status == 200 => {
                                tracing::info!(account = id, "refresh token revoked")
                            }
                            Ok(r) => tracing::warn!(
                                account = id,
                                status = r.status,
                                "the provider did not confirm the revocation"
                            ),
                            Err(e) => {
                                tracing::warn!(account = id, "revocation failed: {}", e.message())
                            }
                        }
                    }
                }
            }
        }
        tracing::info!(account = id, "disconnected");
        Ok(())
    }

    // ----- tokens -----------------------------------------------------------------------------

    /// A valid access token, refreshed ahead of expiry, single-flight across threads and processes.
    pub async fn access_token(&self, id: &str, cancel: &CancellationToken) -> Result<AccessToken> {
        let account = self.account(id)?;
        let what = format!(
            "getting an access token for account '{}'",
            crate::error::quote(id)
        );
        self.access_token_inner(&account, None, cancel)
            .await
            .map(|(t, _)| t)
            .map_err(|e| e.context(&what))
    }

    /// The SASL XOAUTH2 initial response (base64) for the account's mailbox.
    pub async fn sasl_xoauth2(&self, id: &str, cancel: &CancellationToken) -> Result<SecretString> {
        let t = self.access_token(id, cancel).await?;
        Ok(sasl::xoauth2(&t.user, &t.token))
    }

    async fn fresh(&self, account: &Account, reject: Option<&str>) -> Result<Option<AccessToken>> {
        let id = account.id.clone();
        let rec = self.blocking(move |s| s.load_tokens(&id)).await?;
        fresh_token(account, rec.as_ref(), reject)
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
        if let Some(t) = self.fresh(account, reject).await? {
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
        if let Some(t) = self.fresh(account, reject).await? {
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
            if self
                .blocking(move |s| s.try_lease(&id, &holder, ttl))
                .await?
            {
                let result = self.refresh_with_lease(account, reject, cancel).await;
                let (id, holder) = (account.id.clone(), self.inner.holder.clone());
                if let Err(e) = self.blocking(move |s| s.release_lease(&id, &holder)).await {
                    tracing::warn!("releasing the refresh lease failed: {}", e.message());
                }
                return result;
            }
            // Another process refreshes: wait for its result.
            let jitter = rand::random::<u64>() % 40;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(30 + jitter)) => {}
                _ = cancel.cancelled() => return Err(Error::cancelled("waiting for a token refresh")),
            }
            if let Some(t) = self.fresh(account, reject).await? {
                return Ok((t, Refresh::Done));
            }
            // The holder is slow (or died holding the lease): a token that is still valid
            // serves this caller meanwhile instead of stalling it until the lease expires.
            if waiting_since.elapsed() > Duration::from_secs(2) {
                let id = account.id.clone();
                if let Some(rec) = self.blocking(move |s| s.load_tokens(&id)).await? {
                    let usable = rec.meta.state == StoredState::Connected
                        && rec.meta.access_expires_at.is_some_and(|e| e > now() + 10)
                        && (reject.is_none() || rec.secrets.access_token.as_deref() != reject);
                    if let Some(t) = token_from(account, &rec).filter(|_| usable) {
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

    async fn refresh_with_lease(
        &self,
        account: &Account,
        reject: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<(AccessToken, Refresh)> {
        let id = account.id.clone();
        let Some(rec) = self.blocking(move |s| s.load_tokens(&id)).await? else {
            return Err(not_connected(&account.id));
        };
        if let Some(t) = fresh_token(account, Some(&rec), reject)? {
            return Ok((t, Refresh::Done));
        }
        let reg = self.registration(&account.registration)?;
        let profile = provider::resolve(&reg, rec.meta.tenant.as_deref(), &self.inner.http).await?;
        let result = match (&rec.secrets.refresh_token, rec.meta.flow) {
            (_, Flow::ClientCredentials) => self.client_credentials(&reg, &profile, cancel).await,
            (Some(rt), _) => {
                let scope = profile.delegated_scope_string();
                let auth = ClientAuth {
                    client_id: &reg.client_id,
                    secret: reg.client_secret.as_ref(),
                };
                let form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                    ("scope", scope.as_str()),
                ];
                token::request(
                    TokenEndpoint {
                        http: &self.inner.http,
                        url: &profile.endpoints.token,
                        auth,
                    },
                    form,
                    &profile.delegated_scopes,
                    "refreshing the token",
                    Retry::IDEMPOTENT,
                    cancel,
                )
                .await
            }
            (None, _) => Err(Error::new(
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
                meta.access_expires_at = Some(t + grant.expires_in.as_secs() as i64);
                meta.access_issued_at = Some(t);
                meta.refreshed_at = Some(t);
                if !grant.scopes.is_empty() {
                    meta.scopes = grant.scopes.clone();
                }
                let refresh_token = grant
                    .refresh_token
                    .as_ref()
                    .map(|s| s.expose_secret().to_string())
                    .or_else(|| rec.secrets.refresh_token.clone());
                meta.has_refresh_token = refresh_token.is_some();
                let new = TokenRecord {
                    account_id: account.id.clone(),
                    version: 0,
                    meta,
                    secrets: TokenSecrets {
                        refresh_token,
                        access_token: Some(grant.access_token.expose_secret().to_string()),
                    },
                };
                let expected = rec.version;
                let saved = self
                    .blocking(move |s| Ok(s.save_tokens(&new, expected)?.map(|_| new)))
                    .await?;
                match saved {
                    Some(new) => {
                        tracing::debug!(account = %account.id, "access token refreshed");
                        self.inner.events.push(EventKind::TokenRefreshed {
                            account_id: account.id.clone(),
                            expires_at: new
                                .meta
                                .access_expires_at
                                .and_then(rfc3339)
                                .unwrap_or_default(),
                        });
                        self.state_changed(
                            &account.id,
                            status_of_state(Some(&rec)),
                            AccountState::Connected,
                        );
                        // The new token is handed out as it is: on a busy machine its short life
                        // may already be inside the refresh margin, which is no reason to fail.
                        token_from(account, &new)
                            .map(|t| (t, Refresh::Done))
                            .ok_or_else(|| {
                                Error::internal("the refreshed record has no access token")
                            })
                    }
                    None => {
                        // Someone replaced the record meanwhile (a new connect or a disconnect): theirs wins.
                        self.fresh(account, reject).await?.map(|t| (t, Refresh::Done)).ok_or_else(|| Error::new(ErrorKind::State, "the account was disconnected or reconnected during the refresh; try again"))
                    }
                }
            }
            Err(e) => {
                let mut meta = rec.meta.clone();
                meta.last_error = Some(e.message().to_string());
                let still_valid = rec.meta.access_expires_at.is_some_and(|x| x > t + 5)
                    && rec.secrets.access_token.is_some();
                if let Some(reason) = e.reauth_reason() {
                    meta.state = StoredState::NeedsReauthorization;
                    meta.reauth_reason = Some(reason);
                } else if e.is_transient() && still_valid {
                    tracing::warn!(account = %account.id, "refresh failed ({}); using the current token until it expires", e.message());
                    if let Some(t) = token_from(account, &rec) {
                        return Ok((t, Refresh::FailedUsingCurrent(e)));
                    }
                } else if !e.is_transient() && e.kind() != ErrorKind::Cancelled {
                    meta.state = StoredState::Error;
                }
                if e.kind() != ErrorKind::Cancelled {
                    let to = match meta.state {
                        StoredState::Connected => AccountState::Connected,
                        StoredState::NeedsReauthorization => AccountState::NeedsReauthorization,
                        StoredState::Error => AccountState::Error,
                    };
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
                    self.state_changed(&account.id, status_of_state(Some(&rec)), to);
                    let new = TokenRecord {
                        account_id: account.id.clone(),
                        version: 0,
                        meta,
                        secrets: TokenSecrets {
                            refresh_token: rec.secrets.refresh_token.clone(),
                            access_token: rec.secrets.access_token.clone(),
                        },
                    };
                    let expected = rec.version;
                    if let Err(se) = self.blocking(move |s| s.save_tokens(&new, expected)).await {
                        tracing::warn!("recording the refresh failure failed: {}", se.message());
                    }
                }
                Err(e)
            }
        }
    }
}

/// Whether the `store` option names a PostgreSQL database rather than a SQLite file.
fn is_postgres_url(store: &str) -> bool {
    ["postgres://", "postgresql://"].iter().any(|p| {
        store
            .get(..p.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(p))
    })
}

#[cfg(feature = "postgres")]
fn open_postgres(url: &str, key: &KeySource, o: &ClientOptions) -> Result<Arc<dyn TokenStore>> {
    let store = crate::store::postgres::PostgresStore::open(url, key, &o.http.tls)?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "postgres"))]
fn open_postgres(_: &str, _: &KeySource, _: &ClientOptions) -> Result<Arc<dyn TokenStore>> {
    Err(Error::invalid(
        "store",
        "this mailconnect was built without PostgreSQL support (cargo feature 'postgres')",
    ))
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

fn token_from(account: &Account, rec: &TokenRecord) -> Option<AccessToken> {
    Some(AccessToken {
        token: SecretString::from(rec.secrets.access_token.clone()?),
        expires_at: rec.meta.access_expires_at?,
        user: account.mailbox.clone(),
    })
}

/// The stored token if it is valid beyond the refresh margin; an error when the account is not
/// connected or needs re-authorization (no provider call is made then).
fn fresh_token(
    account: &Account,
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
    let Some(exp) = rec.meta.access_expires_at else {
        return Ok(None);
    };
    if reject.is_some() && rec.secrets.access_token.as_deref() == reject {
        return Ok(None);
    }
    // Nothing can renew it: it serves until it expires (the status says re-authorization is due).
    if !rec.meta.has_refresh_token && rec.meta.flow != Flow::ClientCredentials {
        return Ok(if exp > now() {
            token_from(account, rec)
        } else {
            None
        });
    }
    let lifetime = rec
        .meta
        .access_issued_at
        .map(|i| exp - i)
        .unwrap_or(i64::MAX);
    let margin = (account.options.refresh_margin_secs as i64).min(lifetime / 2);
    if exp - margin > now() {
        Ok(token_from(account, rec))
    } else {
        Ok(None)
    }
}

fn status_of_state(rec: Option<&TokenRecord>) -> AccountState {
    match rec.map(|r| r.meta.state) {
        None => AccountState::NotConnected,
        Some(StoredState::Connected) => AccountState::Connected,
        Some(StoredState::NeedsReauthorization) => AccountState::NeedsReauthorization,
        Some(StoredState::Error) => AccountState::Error,
    }
}

/// Forwards to the host's observer and records progress events.
pub(crate) struct EventObserver<'a> {
    pub(crate) host: &'a dyn ConnectObserver,
    pub(crate) events: &'a EventQueue,
    pub(crate) account_id: &'a str,
}

impl ConnectObserver for EventObserver<'_> {
    fn open_url(&self, url: &str) -> bool {
        self.host.open_url(url)
    }
    fn device_code(&self, info: &crate::oauth::DeviceCodeInfo) {
        self.host.device_code(info)
    }
    fn progress(&self, stage: ConnectStage) {
        self.events.push(EventKind::ConnectProgress {
            account_id: self.account_id.to_string(),
            stage: stage.as_str(),
        });
        self.host.progress(stage)
    }
}

fn status_of(account: &Account, rec: Option<&TokenRecord>) -> Status {
    let mut s = Status {
        account_id: account.id.clone(),
        mailbox: account.mailbox.clone(),
        state: AccountState::NotConnected,
        reason: None,
        flow: None,
        identity: None,
        scopes: vec![],
        expires_at: None,
        expires_in_secs: None,
        has_refresh_token: false,
        connected_at: None,
        refreshed_at: None,
        last_error: None,
        reauthorization_due: None,
        identity_checked: None,
    };
    let Some(rec) = rec else { return s };
    let m = &rec.meta;
    s.state = match m.state {
        StoredState::Connected => AccountState::Connected,
        StoredState::NeedsReauthorization => AccountState::NeedsReauthorization,
        StoredState::Error => AccountState::Error,
    };
    s.reason = m.reauth_reason;
    s.flow = Some(m.flow);
    s.identity = m.identity.clone();
    s.scopes = m.scopes.clone();
    s.expires_at = m.access_expires_at.and_then(rfc3339);
    s.expires_in_secs = m.access_expires_at.map(|e| e - now());
    s.has_refresh_token = m.has_refresh_token;
    s.connected_at = rfc3339(m.connected_at);
    s.refreshed_at = m.refreshed_at.and_then(rfc3339);
    s.last_error = m.last_error.clone();
    if m.flow != Flow::ClientCredentials {
        s.identity_checked = Some(m.identity.as_ref().is_some_and(|i| !i.names.is_empty()));
        if m.state == StoredState::Connected && !m.has_refresh_token {
            s.reauthorization_due = Some(ReauthorizationDue {
                at: s.expires_at.clone(),
                code: "MC-NO-REFRESH-TOKEN",
            });
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extra_ca_file_must_be_a_regular_file_of_sane_size() {
        let e = ClientOptions::from_json(r#"{"store": "s.db", "extra_ca_file": "/dev/zero"}"#)
            .unwrap_err();
        assert!(
            e.message().contains("not a regular file"),
            "{}",
            e.message()
        );
        let e = ClientOptions::from_json(
            r#"{"store": "s.db", "extra_ca_file": "/nonexistent/ca.pem"}"#,
        )
        .unwrap_err();
        assert!(e.message().contains("cannot read"), "{}", e.message());
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.pem");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(5 * 1024 * 1024)
            .unwrap();
        let e = ClientOptions::from_json(
            &serde_json::json!({"store": "s.db", "extra_ca_file": big}).to_string(),
        )
        .unwrap_err();
        assert!(e.message().contains("at most 4 MiB"), "{}", e.message());
    }

    #[test]
    fn debug_output_hides_a_password_in_the_store_url() {
        let o = ClientOptions::new("postgres://mc:hunter2@db.example:5432/mail");
        let d = format!("{o:?}");
        assert!(!d.contains("hunter2") && d.contains("db.example"), "{d}");
    }
}
