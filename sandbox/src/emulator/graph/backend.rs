//! The real mail stack behind Graph: where Dovecot and Postfix listen, the TLS trust for them,
//! and the internal Exchange-audience tokens the emulator logs in with (as Graph's own service
//! principal reaches Exchange at Microsoft).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::errors::{store_unavailable, GraphError};
use super::GRAPH_APP_ID;
use crate::emulator::scopes::EXCHANGE;
use crate::emulator::state::{self, now, random_token, Shared};
use crate::Error;

fn default_host() -> String {
    "127.0.0.1".into()
}

/// Where the mail stack listens (the fields of `sandbox/stack/mailstack.sh`'s `stack.json`,
/// which can be given as is; other fields are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailStackConfig {
    /// Host of the servers (`127.0.0.1`).
    #[serde(default = "default_host")]
    pub host: String,
    /// Dovecot IMAP with implicit TLS.
    pub imap_tls: u16,
    /// Postfix submission with STARTTLS (the real one; the SMTP front sits before it).
    pub smtp_starttls: u16,
    /// Postfix submission with implicit TLS.
    pub smtp_tls: u16,
    /// The stack's CA certificate (PEM).
    pub ca_pem: PathBuf,
    /// The servers' certificate chain (PEM); with `tls_key` the emulator starts the SMTP front.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// The servers' private key (PEM).
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

impl MailStackConfig {
    /// Read `stack.json`.
    pub fn from_stack_json(path: impl AsRef<Path>) -> Result<MailStackConfig, Error> {
        crate::emulator::config::read_json_file(path.as_ref())
    }
}

/// The SMTP front's listeners (what clients should use instead of Postfix's ports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpFront {
    /// Submission with STARTTLS (587 style).
    pub smtp_starttls: u16,
    /// Submission with implicit TLS (465 style).
    pub smtp_tls: u16,
}

/// A connected mail stack.
pub(crate) struct Stack {
    pub cfg: MailStackConfig,
    pub tls: Arc<rustls::ClientConfig>,
    /// Logged-in IMAP sessions kept per mailbox (lowercase) between requests.
    pub idle: std::sync::Mutex<std::collections::HashMap<String, Vec<super::imap::IdleImap>>>,
}

impl Stack {
    pub fn new(cfg: MailStackConfig) -> Result<Stack, Error> {
        let pem = std::fs::read(&cfg.ca_pem).map_err(|e| Error::Io {
            context: format!("reading {}", cfg.ca_pem.display()),
            source: e,
        })?;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut pem.as_slice()) {
            let c = c.map_err(|e| Error::Tls(format!("{}: {e}", cfg.ca_pem.display())))?;
            roots
                .add(c)
                .map_err(|e| Error::Tls(format!("{}: {e}", cfg.ca_pem.display())))?;
        }
        if roots.is_empty() {
            return Err(Error::Tls(format!(
                "{}: no certificate",
                cfg.ca_pem.display()
            )));
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Stack {
            cfg,
            tls: Arc::new(tls),
            idle: Default::default(),
        })
    }

    /// Connect TCP + TLS to `port` of the stack's host.
    pub async fn tls_connect(
        &self,
        port: u16,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, GraphError> {
        let tcp = self.tcp_connect(port).await?;
        self.tls_over(tcp).await
    }

    pub async fn tcp_connect(&self, port: u16) -> Result<tokio::net::TcpStream, GraphError> {
        let addr = (self.cfg.host.as_str(), port);
        let tcp = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        .map_err(|_| store_unavailable(&format!("{}:{port} did not answer", self.cfg.host)))?
        .map_err(|e| store_unavailable(&format!("{}:{port}: {e}", self.cfg.host)))?;
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    pub async fn tls_over<S>(&self, io: S) -> Result<tokio_rustls::client::TlsStream<S>, GraphError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let name = rustls::pki_types::ServerName::try_from(self.cfg.host.clone())
            .map_err(|e| store_unavailable(&format!("host '{}': {e}", self.cfg.host)))?;
        tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, io)
            .await
            .map_err(|e| store_unavailable(&format!("TLS with {}: {e}", self.cfg.host)))
    }
}

/// What a running front needs to be stopped.
pub(crate) struct FrontHandle {
    pub ports: SmtpFront,
    pub stop: tokio::sync::watch::Sender<bool>,
}

/// Runtime state of the Graph side (not part of the configuration).
#[derive(Default)]
pub(crate) struct Backend {
    stack: RwLock<Option<Arc<Stack>>>,
    pub front: std::sync::Mutex<Option<FrontHandle>>,
    /// Serialises rewrites of drafts (attachments are added by replacing the stored message).
    pub drafts: tokio::sync::Mutex<()>,
}

impl Backend {
    pub fn stack(&self) -> Result<Arc<Stack>, GraphError> {
        self.stack
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| {
                store_unavailable(
                    "the sandbox's mail stack is not connected to the emulator: POST its stack.json to /_sandbox/mail-stack",
                )
            })
    }

    pub fn config(&self) -> Option<MailStackConfig> {
        self.stack
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|s| s.cfg.clone())
    }

    pub fn set_stack(&self, s: Arc<Stack>) {
        *self.stack.write().unwrap_or_else(|p| p.into_inner()) = Some(s);
    }

    pub fn front_ports(&self) -> Option<SmtpFront> {
        self.front
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|f| f.ports)
    }
}

/// Claim that marks the emulator's own backend tokens (introspection trusts them for any mailbox
/// of their tenant; nobody else can mint them, they are signed by the emulator's key).
pub(crate) const BACKEND_CLAIM: &str = "xms_sandbox_backend";

/// An Exchange-audience app-only token of Graph's service principal for `mailbox`, cached until
/// five minutes before it expires.
pub(crate) fn backend_token(shared: &Shared, mailbox: &str) -> Result<String, GraphError> {
    let key = mailbox.to_ascii_lowercase();
    let mut st = shared.lock();
    let t = now();
    if let Some((token, exp)) = st.graph.backend_tokens.get(&key) {
        if *exp > t + 300 {
            return Ok(token.clone());
        }
    }
    let tid = st
        .user_by_address(mailbox)
        .map(|u| u.tenant.clone())
        .ok_or_else(|| super::errors::invalid_user(mailbox))?;
    let uti = random_token(22);
    let sp = state::derived_guid(&["sp", &tid.to_ascii_lowercase(), GRAPH_APP_ID]);
    let exp = t + 3600;
    let claims = serde_json::json!({
        "aud": EXCHANGE,
        "iss": format!("https://sts.windows.net/{tid}/"),
        "iat": t, "nbf": t, "exp": exp,
        "app_displayname": "Microsoft Graph",
        "appid": GRAPH_APP_ID,
        "appidacr": "2",
        "idtyp": "app",
        "oid": sp,
        "sub": sp,
        "roles": ["IMAP.AccessAsApp", "SMTP.SendAsApp"],
        "tid": tid,
        "uti": uti,
        "ver": "1.0",
        BACKEND_CLAIM: true,
    });
    let token = shared.key.sign(&claims);
    st.issued_access_tokens.push(token.clone());
    st.access_tokens.insert(
        uti,
        state::AccessRecord {
            upn: None,
            revoked: false,
        },
    );
    st.graph.backend_tokens.insert(key, (token.clone(), exp));
    Ok(token)
}

/// The XOAUTH2 initial response for `user` and `token` (not base64-encoded).
pub(crate) fn xoauth2(user: &str, token: &str) -> String {
    format!("user={user}\x01auth=Bearer {token}\x01\x01")
}
