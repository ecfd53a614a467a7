//! The Microsoft identity platform v2.0 emulator: an HTTP(S) server on loopback.

pub(crate) mod authorize;
pub(crate) mod config;
pub(crate) mod control;
pub(crate) mod device;
pub(crate) mod discovery;
pub(crate) mod errors;
pub(crate) mod faults;
pub(crate) mod graph;
pub(crate) mod introspect;
pub(crate) mod jwt;
pub(crate) mod pages;
pub(crate) mod scopes;
pub(crate) mod smtp_front;
pub(crate) mod state;
pub(crate) mod token;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::{JoinHandle, JoinSet};

use crate::Error;
use config::{AppConfig, EmulatorConfig, TenantConfig, TokenSettings, UserConfig};
use faults::{ActiveFault, ConnectionKill, FaultRule, RequestFacts};
use jwt::SigningKey;
use state::{Shared, Stats};

/// Name of the browser-session cookie (Microsoft's is also `ESTSAUTH`).
pub(crate) const SESSION_COOKIE: &str = "ESTSAUTH";

/// A running emulator. Dropping it stops the server; [`Emulator::shutdown`] waits for that.
pub struct Emulator {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    addr: SocketAddr,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("base_url", &self.shared.base_url)
            .finish()
    }
}

impl Emulator {
    /// Start serving `config` (on `127.0.0.1:0` unless `config.bind`).
    pub async fn start(config: EmulatorConfig) -> Result<Emulator, Error> {
        config.validate()?;
        let key = match &config.signing_key_pem_path {
            Some(p) => Arc::new(SigningKey::from_pem_file(p)?),
            None => tokio::task::spawn_blocking(SigningKey::process_default)
                .await
                .map_err(|e| Error::Config(format!("key generation failed: {e}")))??,
        };
        let tls = match &config.tls {
            Some(t) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(server_tls(t)?))),
            None => None,
        };
        let bind = config
            .bind
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = TcpListener::bind(bind).await.map_err(|e| Error::Io {
            context: format!("binding {bind}"),
            source: e,
        })?;
        let addr = listener.local_addr().map_err(|e| Error::Io {
            context: "reading the bound address".into(),
            source: e,
        })?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        let base_url = config
            .public_base_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("{scheme}://{host}:{}", addr.port()));
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared::new(
            base_url,
            key,
            tls.is_some(),
            config,
            stop_rx.clone(),
        ));
        let app = router(shared.clone());
        let task = tokio::spawn(accept_loop(listener, tls, app, stop_rx));
        tracing::info!(base_url = %shared.base_url, "identity platform emulator listening");
        Ok(Emulator {
            shared,
            stop,
            task: Some(task),
            addr,
        })
    }

    /// `http://127.0.0.1:PORT` (https with TLS), without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The RFC 7662 introspection endpoint (`{base}/introspect`).
    pub fn introspection_url(&self) -> String {
        format!("{}/introspect", self.shared.base_url)
    }

    /// The Microsoft Graph base URL (`{base}/v1.0`), what a client uses instead of
    /// `https://graph.microsoft.com/v1.0`.
    pub fn graph_base_url(&self) -> String {
        format!("{}/v1.0", self.shared.base_url)
    }

    /// Connect Graph to the mail stack (Dovecot and Postfix; `MailStackConfig::from_stack_json`
    /// reads `sandbox/stack/mailstack.sh`'s `stack.json`) and, when the configuration names the
    /// stack's certificate, start the SMTP front that answers `535 5.7.139` for mailboxes with
    /// SMTP AUTH switched off; its ports are returned. Calling it again replaces both.
    pub async fn set_mail_stack(
        &self,
        stack: graph::MailStackConfig,
    ) -> Result<Option<graph::SmtpFront>, Error> {
        control::connect_mail_stack(&self.shared, stack).await
    }

    /// The connected mail stack, if any.
    pub fn mail_stack(&self) -> Option<graph::MailStackConfig> {
        self.shared.graph.config()
    }

    /// The SMTP front's ports, if it runs.
    pub fn smtp_front(&self) -> Option<graph::SmtpFront> {
        self.shared.graph.front_ports()
    }

    /// The Graph limits and failure switches.
    pub fn graph_settings(&self) -> graph::GraphSettings {
        self.shared.lock().config.graph.clone()
    }

    /// Replace the Graph limits and failure switches (throttling, lost answers, the cloud whose
    /// tokens Graph accepts, outages).
    pub fn set_graph_settings(&self, s: graph::GraphSettings) {
        self.shared.lock().config.graph = s;
    }

    /// Add a fault rule.
    pub fn add_fault(&self, rule: FaultRule) {
        let remaining = rule.times;
        self.shared
            .lock()
            .faults
            .push(ActiveFault { rule, remaining });
    }

    /// Remove every fault rule.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// The active fault rules (with `times` = what is left).
    pub fn faults(&self) -> Vec<FaultRule> {
        control::list_faults(&self.shared.lock())
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// Every access token, refresh token, authorization code and device code issued so far, the
    /// PKCE verifiers presented, and the apps' client secrets (for leak tests).
    pub fn issued_secrets(&self) -> state::IssuedSecrets {
        let st = self.shared.lock();
        state::IssuedSecrets {
            access_tokens: st.issued_access_tokens.clone(),
            refresh_tokens: st.refresh_tokens.keys().cloned().collect(),
            authorization_codes: st.codes.keys().cloned().collect(),
            device_codes: st.device_codes.keys().cloned().collect(),
            code_verifiers: st.code_verifiers.clone(),
            client_secrets: st
                .config
                .apps
                .iter()
                .flat_map(|a| a.secrets.iter().map(|s| s.value.clone()))
                .collect(),
        }
    }

    /// Zero the counters.
    pub fn reset_stats(&self) {
        self.shared.lock().stats = Stats::default();
    }

    /// Revoke every refresh token of the user issued before now (a password change): they fail
    /// with AADSTS50173.
    pub fn revoke_user_refresh_tokens(&self, upn: &str) {
        control::revoke_refresh(&mut self.shared.lock(), upn);
    }

    /// Make introspection answer inactive for the user's access tokens issued so far.
    pub fn revoke_user_access_tokens(&self, upn: &str) {
        control::revoke_access(&mut self.shared.lock(), upn);
    }

    /// Add or replace a tenant.
    pub fn put_tenant(&self, t: TenantConfig) {
        control::put_tenant(&mut self.shared.lock(), t);
    }

    /// Add or replace an app registration.
    pub fn put_app(&self, a: AppConfig) {
        control::put_app(&mut self.shared.lock(), a);
    }

    /// Add or replace a user.
    pub fn put_user(&self, u: UserConfig) {
        control::put_user(&mut self.shared.lock(), u);
    }

    /// A user as the directory holds it now (by UPN, case-insensitive).
    pub fn user(&self, upn: &str) -> Option<UserConfig> {
        self.shared.lock().user(upn).cloned()
    }

    /// Replace the token settings (applies to tokens issued from now on).
    pub fn set_token_settings(&self, s: TokenSettings) {
        self.shared.lock().config.tokens = s;
    }

    /// The current configuration (directory as changed at run time, consents included).
    pub fn config(&self) -> EmulatorConfig {
        self.shared.lock().config.clone()
    }

    /// Stop serving and wait until the listener is closed.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        control::stop_front(&self.shared);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        control::stop_front(&self.shared);
    }
}

fn server_tls(t: &config::TlsConfig) -> Result<rustls::ServerConfig, Error> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| Error::Io {
            context: format!("reading {}", p.display()),
            source: e,
        })
    };
    let cert_pem = read(&t.cert_pem_path)?;
    let key_pem = read(&t.key_pem_path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Tls(format!("{}: {e}", t.cert_pem_path.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!(
            "{}: no certificate",
            t.cert_pem_path.display()
        )));
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| Error::Tls(format!("{}: {e}", t.key_pem_path.display())))?
        .ok_or_else(|| Error::Tls(format!("{}: no private key", t.key_pem_path.display())))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| Error::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let (app, tls) = (app.clone(), tls.clone());
                conns.spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(stream).await {
                                serve_connection(s, app).await;
                            }
                        }
                        None => serve_connection(stream, app).await,
                    }
                });
            }
        }
    }
    conns.shutdown().await;
}

async fn serve_connection<S>(io: S, app: Router)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let kill = Arc::new(Notify::new());
    let marker = ConnectionKill(kill.clone());
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(marker.clone());
        let mut app = app.clone();
        async move { tower_service::Service::call(&mut app, req).await }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), svc);
    tokio::select! {
        _ = conn => {}
        _ = kill.notified() => {}
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(control::index))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/{tenant}/.well-known/oauth-authorization-server",
            get(discovery::authorization_server),
        )
        .route(
            "/{tenant}/v2.0/.well-known/oauth-authorization-server",
            get(discovery::authorization_server),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(discovery::keys))
        .route("/{tenant}/discovery/keys", get(discovery::keys))
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(authorize::authorize).post(authorize::authorize),
        )
        .route("/{tenant}/login", post(authorize::login))
        .route("/{tenant}/SAS/ProcessAuth", post(authorize::mfa))
        .route("/{tenant}/Consent/Set", post(authorize::consent))
        .route("/{tenant}/oauth2/deviceauth", post(device::confirm))
        .route("/{tenant}/oauth2/v2.0/token", post(token::token))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(device::devicecode))
        .route(
            "/{tenant}/oauth2/v2.0/logout",
            get(authorize::logout).post(authorize::logout),
        )
        .route(
            "/devicelogin",
            get(device::devicelogin_page).post(device::devicelogin_submit),
        )
        .route(
            "/introspect",
            get(introspect::introspect).post(introspect::introspect),
        )
        .route("/error", get(discovery::error_code_page))
        .route("/oidc/userinfo", get(discovery::userinfo))
        .route("/v1.0/{*rest}", any(graph::handle))
        .route("/api/v2.0/{*rest}", any(graph::upload::upload))
        .nest("/_sandbox", control::routes())
        .with_state(shared)
}

// --- HTTP plumbing shared by the handlers ------------------------------------------------------

/// Parse `application/x-www-form-urlencoded` (first value of a name wins).
pub(crate) fn form_map(body: &[u8]) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        m.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    m
}

/// The value of a cookie.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Set (or, with `None`, clear) the session cookie on a response.
pub(crate) fn set_session_cookie(resp: &mut Response, session: Option<&str>, tls: bool) {
    let secure = if tls {
        "; Secure; SameSite=None"
    } else {
        "; SameSite=Lax"
    };
    let v = match session {
        Some(s) => format!("{SESSION_COOKIE}={s}; Path=/; HttpOnly{secure}"),
        None => format!("{SESSION_COOKIE}=; Path=/; HttpOnly; Max-Age=0{secure}"),
    };
    if let Ok(h) = HeaderValue::from_str(&v) {
        resp.headers_mut().append(header::SET_COOKIE, h);
    }
}

/// Apply a matching transport fault (throttling, 5xx, proxy page, dropped connection, delay).
pub(crate) async fn transport_faults(
    shared: &Shared,
    facts: &RequestFacts,
    kill: Option<&ConnectionKill>,
    html: bool,
) -> Option<Response> {
    let mut slowed = false;
    loop {
        let f = shared.lock().take_fault(facts, |f| {
            f.is_transport() && !(slowed && matches!(f, faults::Fault::Slow { .. }))
        })?;
        if matches!(f, faults::Fault::Slow { .. }) {
            slowed = true;
        }
        if let Some(r) = faults::transport_response(&f, &shared.base_url, kill, html).await {
            return Some(r);
        }
    }
}
