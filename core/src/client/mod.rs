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

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn TokenStore>,
    pub(crate) http: HttpClient,
    /// The path of every connection (proxies; see [`crate::net`]).
    pub(crate) net: crate::net::NetPolicy,
    pub(crate) mail_tls: Arc<rustls::ClientConfig>,
    pub(crate) tls_options: TlsOptions,
    pub(crate) language: Language,
    pub(crate) holder: String,
    pub(crate) lease_ttl: Duration,
    pub(crate) locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Events for the host.
    pub(crate) events: Arc<EventQueue>,
    /// The state each feature keeps per client (sign-ins in progress, idle SMTP sessions, the
    /// refresher's back-off), created on first use by the module that owns it.
    features: Features,
}

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
        let http = HttpClient::new(&options.http)?;
        let net = crate::net::NetPolicy::new(options.http.no_proxy, options.http.proxy.clone())?;
        let mail_tls = crate::tls::client_config(&options.http.tls)?;
        Ok(Client {
            inner: Arc::new(Inner {
                store,
                http,
                net,
                mail_tls,
                tls_options: options.http.tls.clone(),
                language: options.language,
                holder: format!("{}:{}", std::process::id(), uuid::Uuid::new_v4()),
                lease_ttl: options.lease_ttl,
                locks: Mutex::new(HashMap::new()),
                events: Arc::new(EventQueue::default()),
                features: Features::default(),
            }),
        })
    }

    /// The path a connection of `channel` to `host` takes (direct, or which proxy).
    pub fn route(&self, channel: crate::net::Channel, host: &str) -> crate::net::Route {
        self.inner.net.route(channel, host)
    }

    /// The path of HTTPS requests to `host`, in words for reports: the `proxy` option's choice,
    /// else whether the environment or the system settings pick the proxy.
    pub fn https_path(&self, host: &str) -> String {
        if self.inner.net.configured() {
            return self.route(crate::net::Channel::Https, host).to_string();
        }
        match self.inner.http.proxy_source() {
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
