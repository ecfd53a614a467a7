//! The network path of every connection the library makes: to the identity provider and
//! Microsoft Graph (HTTPS) and to the mail servers (IMAP, POP3, SMTP). Each goes directly, through
//! an HTTP proxy with `CONNECT` (optionally with Basic authentication), or through a SOCKS5 proxy
//! (optionally with user name and password; `socks5h://` resolves the server's name at the proxy).
//!
//! Which path a connection takes (docs/integration.md §16 has the same list):
//! 1. client option `"no_proxy": true`: every connection goes directly;
//! 2. client option `proxy` (a URL, or an object with per-protocol values and a `no_proxy` list):
//!    the protocol's own value (`https`, `imap`, `pop3`, `smtp`; `"direct"` for none), else the
//!    object's `url`, unless the server matches its `no_proxy` list. With the option set, the
//!    environment is not read;
//! 3. the environment: `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` for HTTPS (read by the HTTP client),
//!    `ALL_PROXY` for IMAP, POP3 and SMTP, each with `NO_PROXY`;
//! 4. HTTPS only: the operating system's settings (Windows; [`crate::sysproxy`]);
//! 5. directly.
//!
//! A proxy's password is kept as a secret: it appears in no log, error or report ([`Proxy`]'s
//! `Debug` and [`Route`]'s `Display` leave it out).

mod dial;
mod quickack;

/// The catalog codes of proxy failures and of a TLS-inspecting proxy.
pub mod codes {
    /// The proxy could not be reached.
    pub const PROXY_UNREACHABLE: &str = "MC-PROXY-UNREACHABLE";
    /// The proxy wants (other) credentials.
    pub const PROXY_AUTH_REQUIRED: &str = "MC-PROXY-AUTH-REQUIRED";
    /// The proxy does not allow a tunnel to this port or server.
    pub const PROXY_PORT_DENIED: &str = "MC-PROXY-PORT-DENIED";
    /// The proxy could not reach the server.
    pub const PROXY_TARGET_UNREACHABLE: &str = "MC-PROXY-TARGET-UNREACHABLE";
    /// A certificate on a proxied connection came from an untrusted issuer: TLS inspection.
    pub const TLS_INSPECTED: &str = "MC-TLS-INSPECTED";
}

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::error::{Error, Result};

pub use dial::dial;
pub use quickack::MailTcp;

/// What happened while connecting (for Test reports).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ConnectTimings {
    /// TCP connect time.
    pub connect_ms: u64,
    /// TLS handshake time.
    pub tls_ms: Option<u64>,
    /// Negotiated TLS version.
    pub tls_version: Option<String>,
}

/// The protocols a path is chosen for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The identity provider and Microsoft Graph.
    Https,
    /// IMAP.
    Imap,
    /// POP3.
    Pop3,
    /// SMTP submission.
    Smtp,
}

/// What kind of proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// An HTTP proxy, reached with `CONNECT host:port`.
    Http,
    /// SOCKS5; `remote_dns`: the proxy resolves the server's name (`socks5h://`).
    Socks5 {
        /// Whether the proxy resolves names.
        remote_dns: bool,
    },
}

/// A proxy server and its credentials.
#[derive(Clone)]
pub struct Proxy {
    /// HTTP or SOCKS5.
    pub kind: ProxyKind,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User name, if the proxy wants one.
    pub username: Option<String>,
    /// Password (a secret).
    pub password: Option<SecretString>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<secret>"))
            .finish()
    }
}

impl Proxy {
    /// Parse a proxy URL: `http://[user[:password]@]host[:port]`, `socks5://…`, `socks5h://…`, or
    /// `host:port` (HTTP). `field` names the option in errors. Without a port: 80 for HTTP (as
    /// curl), 1080 for SOCKS.
    pub fn parse(field: &str, text: &str) -> Result<Proxy> {
        let text = text.trim();
        let with_scheme = if text.contains("://") {
            text.to_string()
        } else {
            format!("http://{text}")
        };
        // The URL itself may hold a password: errors name only the field.
        let url = Url::parse(&with_scheme).map_err(|e| {
            Error::invalid(
                field,
                format!("'{field}' is not a proxy URL (http://host:port, socks5://host:port): {e}"),
            )
        })?;
        let kind = match url.scheme() {
            "http" => ProxyKind::Http,
            "socks5" => ProxyKind::Socks5 { remote_dns: false },
            "socks5h" => ProxyKind::Socks5 { remote_dns: true },
            other => {
                return Err(Error::invalid(
                    field,
                    format!(
                        "'{field}': proxies of scheme '{}' are not supported; use http://, socks5:// or socks5h://",
                        crate::error::quote(other)
                    ),
                ))
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::invalid(field, format!("'{field}' names no proxy host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if url.path().len() > 1 || url.query().is_some() {
            return Err(Error::invalid(
                field,
                format!("'{field}' must be a proxy address without a path (http://host:port)"),
            ));
        }
        let port = url.port().unwrap_or(match kind {
            ProxyKind::Http => 80,
            ProxyKind::Socks5 { .. } => 1080,
        });
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| {
                    Error::invalid(
                        field,
                        format!("'{field}': the credentials are not valid UTF-8"),
                    )
                })
        };
        let username = match url.username() {
            "" => None,
            u => Some(decode(u)?),
        };
        let password = match url.password() {
            None => None,
            Some(p) => Some(SecretString::from(decode(p)?)),
        };
        Ok(Proxy {
            kind,
            host,
            port,
            username,
            password,
        })
    }

    /// `http proxy host:port` / `socks5 proxy host:port` (never the credentials).
    pub fn describe(&self) -> String {
        let kind = match self.kind {
            ProxyKind::Http => "http proxy",
            ProxyKind::Socks5 { .. } => "socks5 proxy",
        };
        format!("{kind} {}", self.endpoint())
    }

    /// `host:port` (IPv6 in brackets).
    pub fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The proxy as a URL for the HTTP client, with the credentials (never logged).
    pub(crate) fn url_with_credentials(&self) -> Option<Url> {
        let scheme = match self.kind {
            ProxyKind::Http => "http",
            ProxyKind::Socks5 { remote_dns: false } => "socks5",
            ProxyKind::Socks5 { remote_dns: true } => "socks5h",
        };
        let mut u = Url::parse(&format!("{scheme}://{}", self.endpoint())).ok()?;
        if let Some(user) = &self.username {
            u.set_username(user).ok()?;
            if let Some(p) = &self.password {
                u.set_password(Some(p.expose_secret())).ok()?;
            }
        }
        Some(u)
    }
}

/// The path of one connection.
#[derive(Debug, Clone, Default)]
pub enum Route {
    /// Directly.
    #[default]
    Direct,
    /// Through a proxy.
    Via(Arc<Proxy>),
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Route::Direct => f.write_str("direct"),
            Route::Via(p) => f.write_str(&p.describe()),
        }
    }
}

impl Route {
    /// The proxy, if any.
    pub fn proxy(&self) -> Option<&Proxy> {
        match self {
            Route::Direct => None,
            Route::Via(p) => Some(p),
        }
    }
}

/// `e` with the TLS-inspection code when it is an untrusted certificate on a connection through
/// a proxy (whose CA re-signed the server's certificate).
pub fn through(e: Error, route: &Route) -> Error {
    if route.proxy().is_some()
        && e.kind() == crate::error::ErrorKind::Tls
        && e.evidence().certificate_issuer.is_some()
        && e.code().is_none()
    {
        e.with_code(codes::TLS_INSPECTED)
    } else {
        e
    }
}

/// A value of the `proxy` object: a URL or `"direct"`.
fn choice(
    field: &str,
    text: &str,
    user: &Option<String>,
    pass: &Option<SecretString>,
) -> Result<Route> {
    if text.trim().eq_ignore_ascii_case("direct") || text.trim().is_empty() {
        return Ok(Route::Direct);
    }
    let mut p = Proxy::parse(field, text)?;
    // The object's user name for a URL without one; its password for a URL without one whose
    // user is the object's (or names the user only: `http://svc@proxy:3128`).
    if p.username.is_none() {
        p.username = user.clone();
    }
    if p.password.is_none() && (user.is_none() || p.username == *user) {
        p.password = pass.clone();
    }
    Ok(Route::Via(Arc::new(p)))
}

/// A proxy setting (a URL or the `proxy` object, as [`ProxyConfig::parse`] takes it) as JSON to
/// show: every password removed (from the object and from URLs), `has_password` saying whether
/// there was one.
pub fn redacted(text: &str) -> serde_json::Value {
    fn url_without_password(u: &str, had: &mut bool) -> String {
        if !u.contains("://") {
            return u.to_string();
        }
        match Url::parse(u.trim()) {
            Ok(mut url) => {
                if url.password().is_some() {
                    *had = true;
                    let _ = url.set_password(None);
                }
                url.to_string().trim_end_matches('/').to_string()
            }
            Err(_) => "(not a URL)".into(),
        }
    }
    let mut had = false;
    let t = text.trim();
    let mut v = if t.starts_with('{') {
        match serde_json::from_str::<serde_json::Value>(t) {
            Ok(serde_json::Value::Object(mut o)) => {
                if o.remove("password").is_some() {
                    had = true;
                }
                for field in ["url", "https", "imap", "pop3", "smtp"] {
                    if let Some(serde_json::Value::String(u)) = o.get(field) {
                        let clean = url_without_password(u, &mut had);
                        o.insert(field.into(), serde_json::Value::String(clean));
                    }
                }
                serde_json::Value::Object(o)
            }
            _ => serde_json::json!({ "url": "(unreadable)" }),
        }
    } else {
        serde_json::json!({ "url": url_without_password(t, &mut had) })
    };
    if let Some(o) = v.as_object_mut() {
        o.insert("has_password".into(), serde_json::Value::Bool(had));
    }
    v
}

/// The client option `proxy`: a URL for every protocol, or per protocol with a `no_proxy` list.
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    default: Option<Route>,
    https: Option<Route>,
    imap: Option<Route>,
    pop3: Option<Route>,
    smtp: Option<Route>,
    no_proxy: NoProxy,
}

impl ProxyConfig {
    /// Parse the option's JSON value (a string or an object).
    pub fn from_json(v: &serde_json::Value) -> Result<ProxyConfig> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Obj {
            #[serde(default)]
            url: Option<String>,
            #[serde(default)]
            username: Option<String>,
            #[serde(default)]
            password: Option<SecretString>,
            #[serde(default)]
            https: Option<String>,
            #[serde(default)]
            imap: Option<String>,
            #[serde(default)]
            pop3: Option<String>,
            #[serde(default)]
            smtp: Option<String>,
            #[serde(default)]
            no_proxy: Vec<String>,
        }
        match v {
            serde_json::Value::Null => Ok(ProxyConfig::default()),
            serde_json::Value::String(s) => Ok(ProxyConfig {
                default: Some(choice("proxy", s, &None, &None)?),
                ..Default::default()
            }),
            serde_json::Value::Object(_) => {
                let o: Obj = serde_json::from_value(v.clone()).map_err(|e| {
                    // serde's message names the field, never a value.
                    Error::invalid("proxy", format!("'proxy': {e}"))
                })?;
                let one = |field: &str, v: &Option<String>| -> Result<Option<Route>> {
                    v.as_deref()
                        .map(|s| choice(field, s, &o.username, &o.password))
                        .transpose()
                };
                Ok(ProxyConfig {
                    default: one("proxy.url", &o.url)?,
                    https: one("proxy.https", &o.https)?,
                    imap: one("proxy.imap", &o.imap)?,
                    pop3: one("proxy.pop3", &o.pop3)?,
                    smtp: one("proxy.smtp", &o.smtp)?,
                    no_proxy: NoProxy::parse(o.no_proxy.iter().map(String::as_str)),
                })
            }
            _ => Err(Error::invalid(
                "proxy",
                "'proxy' must be a proxy URL or an object with 'url', 'https', 'imap', 'pop3', 'smtp', 'username', 'password' and 'no_proxy'",
            )),
        }
    }

    /// Parse the option's text (a URL, or the object as JSON).
    pub fn parse(text: &str) -> Result<ProxyConfig> {
        let t = text.trim();
        if t.starts_with('{') {
            let v: serde_json::Value = serde_json::from_str(t)
                .map_err(|e| Error::invalid("proxy", format!("'proxy' is not valid JSON: {e}")))?;
            ProxyConfig::from_json(&v)
        } else {
            ProxyConfig::from_json(&serde_json::Value::String(t.to_string()))
        }
    }

    /// The path for `channel` to `host` under this option.
    pub fn route(&self, channel: Channel, host: &str) -> Route {
        let own = match channel {
            Channel::Https => &self.https,
            Channel::Imap => &self.imap,
            Channel::Pop3 => &self.pop3,
            Channel::Smtp => &self.smtp,
        };
        if self.no_proxy.matches(host) {
            return Route::Direct;
        }
        own.clone()
            .or_else(|| self.default.clone())
            .unwrap_or_default()
    }
}

/// A `NO_PROXY` list: `*`, host names (matching the name and its subdomains; a leading `.` or
/// `*.` is the same), IP addresses and networks (`10.0.0.0/8`).
#[derive(Debug, Clone, Default)]
pub struct NoProxy {
    all: bool,
    names: Vec<String>,
    nets: Vec<ipnet::IpNet>,
}

impl NoProxy {
    /// Parse entries (comma-separated lists are split too).
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> NoProxy {
        let mut n = NoProxy::default();
        for e in entries
            .into_iter()
            .flat_map(|e| e.split([',', ' ']))
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            if e == "*" {
                n.all = true;
            } else if let Ok(net) = e.parse::<ipnet::IpNet>() {
                n.nets.push(net);
            } else if let Ok(ip) = e.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
                n.nets.push(ipnet::IpNet::from(ip));
            } else {
                n.names.push(
                    e.trim_start_matches("*.")
                        .trim_start_matches('.')
                        .to_ascii_lowercase(),
                );
            }
        }
        n
    }

    /// From `NO_PROXY`/`no_proxy`.
    pub fn from_env() -> NoProxy {
        let v = env_var(&["NO_PROXY", "no_proxy"]).unwrap_or_default();
        NoProxy::parse([v.as_str()])
    }

    /// Whether `host` goes directly.
    pub fn matches(&self, host: &str) -> bool {
        if self.all {
            return true;
        }
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return self.nets.iter().any(|n| n.contains(&ip));
        }
        let host = host.trim_end_matches('.');
        self.names
            .iter()
            .any(|n| host == n || host.ends_with(&format!(".{n}")))
    }
}

fn env_var(names: &[&str]) -> Option<String> {
    names
        .iter()
        .filter_map(|n| std::env::var(n).ok())
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty())
}

/// The paths of one client, fixed when it opens (the environment is read once).
#[derive(Debug, Clone, Default)]
pub struct NetPolicy {
    off: bool,
    configured: Option<ProxyConfig>,
    env_all: Option<Route>,
    env_no_proxy: NoProxy,
}

impl NetPolicy {
    /// The policy of a client: `no_proxy` (everything directly), the `proxy` option, else the
    /// environment's `ALL_PROXY` and `NO_PROXY` for the mail protocols. An unusable `ALL_PROXY`
    /// is an error naming the variable (never its value: it may hold a password).
    pub fn new(no_proxy: bool, configured: Option<ProxyConfig>) -> Result<NetPolicy> {
        if no_proxy || configured.is_some() {
            return Ok(NetPolicy {
                off: no_proxy,
                configured,
                ..Default::default()
            });
        }
        let env_all = match env_var(&["ALL_PROXY", "all_proxy"]) {
            Some(v) => Some(Route::Via(Arc::new(Proxy::parse("ALL_PROXY", &v)?))),
            None => None,
        };
        Ok(NetPolicy {
            off: false,
            configured: None,
            env_all,
            env_no_proxy: NoProxy::from_env(),
        })
    }

    /// Whether the `proxy` option decides (then the HTTP client asks [`NetPolicy::route`]).
    pub fn configured(&self) -> bool {
        !self.off && self.configured.is_some()
    }

    /// The path for `channel` to `host`. For HTTPS without the `proxy` option the HTTP client
    /// itself follows the environment and the system settings, so this says `Direct` there.
    pub fn route(&self, channel: Channel, host: &str) -> Route {
        if self.off {
            return Route::Direct;
        }
        if let Some(c) = &self.configured {
            return c.route(channel, host);
        }
        match (&self.env_all, channel) {
            (Some(r), Channel::Imap | Channel::Pop3 | Channel::Smtp)
                if !self.env_no_proxy.matches(host) =>
            {
                r.clone()
            }
            _ => Route::Direct,
        }
    }
}

#[cfg(test)]
mod tests;
