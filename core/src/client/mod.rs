//! The facade the C ABI, the bindings and the CLI use: one [`Client`] per store.
//!
//! A client is cheap to clone and thread-safe. This module opens the store and keeps the
//! registrations and accounts; what a client does lives beside it, each in one module that extends
//! [`Client`]: signing in in `authorize`, access tokens and the single-flight refresh in `tokens`,
//! mail in `mail`, the Test in `check`, the background refresher in `refresher`. Store calls are
//! blocking and are moved off the async threads (`Client::blocking`).

mod options;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::account_state::{self, AccountState, Status};
use crate::error::{Error, Result};
use crate::events::{EventKind, EventQueue};
use crate::http::HttpClient;
use crate::i18n::Language;
use crate::model::{self, Account, Registration};
use crate::store::{KeySource, SqliteStore, TokenStore};
use crate::tls::TlsOptions;

use options::is_postgres_url;
pub use options::ClientOptions;

/// Per-client state of the modules that extend [`Client`], keyed by type.
#[derive(Default)]
struct Features(Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>);

/// Store calls running on the blocking pool at once, per client. The SQLite store has one
/// connection behind a mutex, so more would only wait there, each on a thread of its own (16
/// refreshes in flight grew the pool to 30 threads and their malloc arenas: BENCHMARKS.md, issue
/// 18); two keep the next call ready while one runs. Callers beyond that wait on the runtime.
const STORE_TASKS: usize = 2;

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn TokenStore>,
    /// The HTTP client and the path of every connection, swapped whole when the stored proxy
    /// setting changes ([`Client::set_proxy`]).
    network: std::sync::RwLock<Arc<Network>>,
    /// The HTTP settings the client was opened with (the `proxy` option among them).
    http_options: crate::http::HttpOptions,
    pub(crate) mail_tls: Arc<rustls::ClientConfig>,
    pub(crate) tls_options: TlsOptions,
    pub(crate) language: Language,
    pub(crate) holder: String,
    pub(crate) lease_ttl: Duration,
    pub(crate) locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// At most [`STORE_TASKS`] store calls on the blocking pool at once (see [`Client::blocking`]).
    pub(crate) store_gate: tokio::sync::Semaphore,
    /// Access tokens served from memory while the store's change counter stands still.
    pub(crate) token_cache: crate::store::cache::TokenCache,
    /// Events for the host.
    pub(crate) events: Arc<EventQueue>,
    /// The state each feature keeps per client (sign-ins in progress, idle SMTP sessions, the
    /// refresher's back-off), created on first use by the module that owns it.
    features: Features,
}

/// Where the proxy of a client's connections comes from (precedence from the top).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxySource {
    /// `no_proxy` in the options: everything directly.
    NoProxyOption,
    /// The `proxy` option given when the client was opened.
    Option,
    /// The setting stored with [`Client::set_proxy`] (sealed in the store with its password).
    Stored,
    /// Neither: the environment (`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`), else for HTTPS the
    /// operating system's settings, else directly.
    Environment,
}

impl ProxySource {
    /// The name in JSON and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxySource::NoProxyOption => "no_proxy_option",
            ProxySource::Option => "option",
            ProxySource::Stored => "stored",
            ProxySource::Environment => "environment",
        }
    }
}

/// The network settings of a client at one moment: its HTTP client and the path of every
/// connection.
pub(crate) struct Network {
    pub(crate) http: HttpClient,
    pub(crate) net: crate::net::NetPolicy,
    pub(crate) source: ProxySource,
}

impl Network {
    fn build(
        base: &crate::http::HttpOptions,
        proxy: Option<crate::net::ProxyConfig>,
        source: ProxySource,
    ) -> Result<Network> {
        let mut opts = base.clone();
        opts.proxy = proxy;
        Ok(Network {
            http: HttpClient::new(&opts)?,
            net: crate::net::NetPolicy::new(opts.no_proxy, opts.proxy.clone())?,
            source,
        })
    }
}

/// The stored proxy setting, parsed.
fn stored_proxy(store: &dyn TokenStore) -> Result<Option<crate::net::ProxyConfig>> {
    let Some(plain) = store.get_setting(PROXY_SETTING)? else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&plain)
        .map_err(|_| Error::store("the stored proxy setting is not UTF-8"))?;
    crate::net::ProxyConfig::parse(text).map(Some)
}

/// The name of the stored proxy setting.
const PROXY_SETTING: &str = "proxy";

/// A mailconnect client over one store.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
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
        // Precedence: `no_proxy`, the `proxy` option, the stored setting, the environment.
        let (proxy, source) = if options.http.no_proxy {
            (None, ProxySource::NoProxyOption)
        } else if let Some(p) = &options.http.proxy {
            (Some(p.clone()), ProxySource::Option)
        } else {
            match stored_proxy(store.as_ref())? {
                Some(p) => (Some(p), ProxySource::Stored),
                None => (None, ProxySource::Environment),
            }
        };
        let network = Network::build(&options.http, proxy, source)?;
        let mail_tls = crate::tls::client_config(&options.http.tls)?;
        Ok(Client {
            inner: Arc::new(Inner {
                store,
                network: std::sync::RwLock::new(Arc::new(network)),
                http_options: options.http.clone(),
                mail_tls,
                tls_options: options.http.tls.clone(),
                language: options.language,
                holder: format!("{}:{}", std::process::id(), uuid::Uuid::new_v4()),
                lease_ttl: options.lease_ttl,
                locks: Mutex::new(HashMap::new()),
                store_gate: tokio::sync::Semaphore::new(STORE_TASKS),
                token_cache: Default::default(),
                events: Arc::new(EventQueue::default()),
                features: Features::default(),
            }),
        })
    }

    /// The network settings of this moment.
    pub(crate) fn network(&self) -> Arc<Network> {
        match self.inner.network.read() {
            Ok(n) => n.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The path a connection of `channel` to `host` takes (direct, or which proxy).
    pub fn route(&self, channel: crate::net::Channel, host: &str) -> crate::net::Route {
        self.network().net.route(channel, host)
    }

    /// Store the proxy of every connection (a URL, `"direct"`, or the object the `proxy` option
    /// takes, with `username` and `password`), sealed in the store like a client secret, and use
    /// it from now on: in this client at once, and in every client opened later on this store
    /// without a `proxy` or `no_proxy` option (a service beside the program that set it, say).
    /// `None` removes it; the client then goes back to its options, else the environment.
    /// Connections already open (idle mail sessions) are closed so none keeps the old path.
    pub async fn set_proxy(&self, config: Option<&str>) -> Result<()> {
        let parsed = match config {
            Some(text) => {
                if text.len() > 64 * 1024 {
                    return Err(Error::invalid("proxy", "'proxy' is longer than 64 KiB"));
                }
                Some(crate::net::ProxyConfig::parse(text)?)
            }
            None => None,
        };
        let sealed = config.map(|t| zeroize::Zeroizing::new(t.trim().as_bytes().to_vec()));
        self.blocking(move |s| s.put_setting(PROXY_SETTING, sealed.as_deref().map(|v| &v[..])))
            .await?;
        let base = &self.inner.http_options;
        let network = match parsed {
            Some(p) => Network::build(base, Some(p), ProxySource::Stored)?,
            None if base.no_proxy => Network::build(base, None, ProxySource::NoProxyOption)?,
            None => match &base.proxy {
                Some(p) => Network::build(base, Some(p.clone()), ProxySource::Option)?,
                None => Network::build(base, None, ProxySource::Environment)?,
            },
        };
        match self.inner.network.write() {
            Ok(mut n) => *n = Arc::new(network),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(network),
        }
        self.drop_all_idle_smtp();
        Ok(())
    }

    /// The proxy settings: where they come from (`no_proxy_option`, `option`, `stored`,
    /// `environment`), the stored setting without its password (`has_password` says whether it
    /// has one), and the path to the identity provider's host as reports show it.
    pub async fn proxy_info(&self) -> Result<serde_json::Value> {
        let stored = self
            .blocking(|s| s.get_setting(PROXY_SETTING))
            .await?
            .map(|plain| crate::net::redacted(&String::from_utf8_lossy(&plain)));
        let n = self.network();
        Ok(serde_json::json!({
            "source": n.source.as_str(),
            "stored": stored,
            "environment": crate::sysproxy::environment_has_proxy(),
        }))
    }

    /// The path of HTTPS requests to `host`, in words for reports: the `proxy` option's choice,
    /// else whether the environment or the system settings pick the proxy.
    pub fn https_path(&self, host: &str) -> String {
        if self.network().net.configured() {
            return self.route(crate::net::Channel::Https, host).to_string();
        }
        match self.network().http.proxy_source() {
            Some(source) => format!("as {source} say"),
            None => "direct".into(),
        }
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

    pub(crate) fn state_changed(&self, account_id: &str, from: AccountState, to: AccountState) {
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
        let _turn = self
            .inner
            .store_gate
            .acquire()
            .await
            .map_err(|_| Error::internal("the store gate is closed"))?;
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
        let Some(reg) = self.inner.store.get_registration(&account.registration)? else {
            return Err(Error::invalid(
                "registration",
                format!(
                    "registration '{}' does not exist; add it first",
                    account.registration
                ),
            ));
        };
        if account.transport.uses_graph() && reg.provider != model::ProviderKind::Microsoft {
            return Err(Error::invalid(
                "transport",
                format!(
                    "\"transport\": \"{}\" needs a Microsoft registration (Microsoft Graph); registration '{}' is not one",
                    account.transport.as_str(),
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
        Ok(account_state::status_of(&account, rec.as_ref()))
    }

    /// The state `T` that a module keeps for this client (created empty on first use).
    pub(crate) fn feature<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut map = match self.inner.features.0.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let entry = map
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()));
        match entry.clone().downcast::<T>() {
            Ok(t) => t,
            // Unreachable: the map is keyed by the type itself.
            Err(_) => Arc::new(T::default()),
        }
    }
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
