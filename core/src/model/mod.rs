//! App registrations and accounts: what a host stores, as JSON, and how it is validated.
//!
//! Both cross the C ABI as JSON (schema in the README, "Accounts and registrations"). Validation
//! happens before anything is written: a bad field gets an [`ErrorKind::InvalidArgument`] error that
//! names the field, and the store is left unchanged.

pub mod csv;
pub(crate) mod validate;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub use validate::{validate_account, validate_registration};

use crate::error::{Error, ErrorKind, Result};

/// The identity provider family of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Microsoft identity platform v2.0 (Entra ID work/school accounts and personal Microsoft accounts).
    Microsoft,
    /// Google (Gmail, Workspace).
    Google,
    /// Any standard OAuth 2.0 / OpenID Connect server (RFC 6749, 7636, 8628, 8414).
    Generic,
}

/// How an account obtains its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// Authorization code + PKCE in the system browser (or the host's web view) with a loopback redirect.
    #[default]
    Browser,
    /// Device authorization grant (RFC 8628): the user enters a code on another device.
    #[serde(alias = "device")]
    DeviceCode,
    /// Client credentials (app-only, confidential client with a secret).
    ClientCredentials,
}

impl Flow {
    /// A stable lowercase name.
    /// A flow from its name as people write it (`browser`, `device_code`, `device-code`,
    /// `device`, `client_credentials`, `app`, ...; case and `-`/`_`/space do not matter): the one
    /// parser the CSV import, the command line and the options share.
    pub fn parse(s: &str) -> Option<Flow> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace(['-', ' '], "_")
            .as_str()
        {
            "browser" | "interactive" => Some(Flow::Browser),
            "device_code" | "device" | "devicecode" => Some(Flow::DeviceCode),
            "client_credentials" | "app" | "app_only" | "clientcredentials" => {
                Some(Flow::ClientCredentials)
            }
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Browser => "browser",
            Flow::DeviceCode => "device_code",
            Flow::ClientCredentials => "client_credentials",
        }
    }
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// An app registration (Azure "App registration" or another provider's OAuth client), shared by many accounts.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Host-chosen id, unique in the store.
    pub id: String,
    /// Provider family.
    pub provider: ProviderKind,
    /// Microsoft: tenant id (GUID), verified domain, `organizations`, `consumers` or `common` (default `common`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Microsoft: `global` (default), `usgov`, `china`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,
    /// Overrides the authority host (`https://login.microsoftonline.com`), e.g. for the sandbox emulator.
    /// `http` is accepted only for loopback hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_host: Option<String>,
    /// Microsoft: overrides the Microsoft Graph host (`https://graph.microsoft.com`, the cloud's
    /// Graph host by default), e.g. for the sandbox emulator. `http` only for loopback hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_host: Option<String>,
    /// The application (client) id.
    pub client_id: String,
    /// Client secret for confidential clients (client credentials). Stored encrypted, never returned.
    #[serde(default, skip_serializing)]
    pub client_secret: Option<SecretString>,
    /// Redirect URI for the browser flow; default `http://localhost` (loopback, any port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// Generic: issuer for RFC 8414 / OpenID discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Generic: authorization endpoint (instead of discovery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// Generic: token endpoint (instead of discovery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// Generic: device authorization endpoint (instead of discovery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<String>,
    /// Generic: revocation endpoint (RFC 7009), used on disconnect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// Generic: OpenID Connect userinfo endpoint (instead of discovery), asked for the signed-in
    /// account's names when the id_token carries only `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// Check that the account that signed in is the account's login (default `true`). `false`
    /// only for providers that tell no account name at all; the status then says
    /// `"identity_checked": false`.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub verify_identity: bool,
    /// Scopes to request instead of the provider's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Whether a client secret is stored (output only).
    #[serde(default, skip_deserializing)]
    pub has_client_secret: bool,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("tenant", &self.tenant)
            .field("authority_host", &self.authority_host)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

/// Mail protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// IMAP4rev1.
    Imap,
    /// POP3.
    Pop3,
    /// SMTP submission.
    Smtp,
}

impl Protocol {
    /// All protocols.
    pub const ALL: [Protocol; 3] = [Protocol::Imap, Protocol::Pop3, Protocol::Smtp];

    /// A stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Smtp => "smtp",
        }
    }
}

/// One mail server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Host name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `tls` (implicit), `starttls` or `none` (loopback test servers only).
    pub security: Security,
    /// Force a SASL mechanism (`xoauth2`, `oauthbearer`); default: XOAUTH2 when offered, else OAUTHBEARER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<String>,
    /// Accept any certificate for this server. Only set this for a server you control.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub danger_accept_invalid_certs: bool,
}

/// The mail servers of an account. Protocols left out are not used (unless no `servers` object
/// is given at all, when the provider's defaults apply).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Servers {
    /// IMAP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imap: Option<ServerConfig>,
    /// POP3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pop3: Option<ServerConfig>,
    /// SMTP submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<ServerConfig>,
}

impl Servers {
    /// The server of `p`.
    pub fn get(&self, p: Protocol) -> Option<&ServerConfig> {
        match p {
            Protocol::Imap => self.imap.as_ref(),
            Protocol::Pop3 => self.pop3.as_ref(),
            Protocol::Smtp => self.smtp.as_ref(),
        }
    }
}

/// POP3 options (the seed articles' "leave on server" and "ignore messages older than").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Pop3Options {
    /// Leave fetched messages on the server (default true). When false, fetched messages are deleted.
    pub leave_on_server: bool,
    /// Skip messages whose Date header is older than this many days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_older_than_days: Option<u32>,
    /// Largest message fetched, in bytes (default 50 MB).
    pub max_message_bytes: u64,
}

impl Default for Pop3Options {
    fn default() -> Self {
        Pop3Options {
            leave_on_server: true,
            ignore_older_than_days: None,
            max_message_bytes: 50 * 1024 * 1024,
        }
    }
}

/// Per-account options.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AccountOptions {
    /// How long the browser or device sign-in may take (seconds, default 300).
    pub interactive_timeout_secs: u64,
    /// Refresh access tokens this long before they expire (seconds, default 300).
    pub refresh_margin_secs: u64,
    /// Send `prompt=select_account` so an already signed-in browser never picks an account silently (default true).
    pub select_account: bool,
    /// Timeout of one mail-server operation in seconds (default 30).
    pub mail_timeout_secs: u64,
    /// POP3 options.
    pub pop3: Pop3Options,
}

impl Default for AccountOptions {
    fn default() -> Self {
        AccountOptions {
            interactive_timeout_secs: 300,
            refresh_margin_secs: 300,
            select_account: true,
            mail_timeout_secs: 30,
            pop3: Pop3Options::default(),
        }
    }
}

/// How an account's mail travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// SMTP submission to send, IMAP or POP3 to fetch (the default).
    #[default]
    SmtpImap,
    /// Microsoft Graph for sending and fetching: needs no SMTP AUTH, IMAP or POP switch in the
    /// tenant (Microsoft registrations only; consent for Graph's `Mail.Send`/`Mail.ReadWrite`).
    Graph,
    /// SMTP where SMTP AUTH works; Microsoft Graph once the server answers that SMTP AUTH is
    /// disabled (`5.7.139`). The outcome is remembered and shown in the status and the Test.
    Auto,
}

impl Transport {
    /// A stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::SmtpImap => "smtp_imap",
            Transport::Graph => "graph",
            Transport::Auto => "auto",
        }
    }

    /// Whether the account may use Microsoft Graph (and so needs Graph consent).
    pub fn uses_graph(self) -> bool {
        self != Transport::SmtpImap
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A mailbox the host wants to reach.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Host-chosen id, unique in the store.
    pub id: String,
    /// The mailbox address; the SASL `user=` (for a shared mailbox, the shared address).
    pub mailbox: String,
    /// The identity that signs in, if different from the mailbox (a delegate of a shared mailbox).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// Other names the signed-in identity may have (UPN vs primary SMTP address).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub login_aliases: Vec<String>,
    /// Id of the app registration.
    pub registration: String,
    /// How tokens are obtained.
    #[serde(default)]
    pub flow: Flow,
    /// Mail servers (`imap`, `pop3`, `smtp`), each `{host, port, security}`; defaults come from the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servers: Option<Servers>,
    /// How mail travels: `smtp_imap` (default), `graph` or `auto`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub transport: Transport,
    /// Options.
    #[serde(default)]
    pub options: AccountOptions,
}

impl Account {
    /// The identity expected to sign in: `login`, else the mailbox.
    pub fn expected_login(&self) -> &str {
        self.login.as_deref().unwrap_or(&self.mailbox)
    }
}

/// Parse JSON into `T`; the error names the field (its JSON path) and nothing else is done.
pub fn parse_json<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T> {
    // Every document is an object; serde would read a struct from an array by position.
    if json.trim_start().starts_with('[') {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("{what} JSON must be an object ({{...}}), not an array"),
        )
        .with_evidence(|ev| ev.field = Some(what.to_string())));
    }
    let de = &mut serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        let field = if path != "." && !path.is_empty() {
            path
        } else {
            // Missing or unknown fields are reported at the parent: take the name serde quotes.
            msg.split('`')
                .nth(1)
                .map(str::to_string)
                .unwrap_or_else(|| what.to_string())
        };
        Error::new(
            ErrorKind::InvalidArgument,
            format!("{what} JSON is invalid at '{field}': {msg}"),
        )
        .with_evidence(|ev| ev.field = Some(field))
    })
}

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// TLS from the first byte (IMAP 993, POP3 995, SMTP 465).
    Tls,
    /// Plain first, then STARTTLS/STLS (IMAP 143, POP3 110, SMTP 587). Refused if the server does not offer it.
    Starttls,
    /// No TLS. Only for loopback test servers; tokens would cross the network in clear.
    None,
}
