//! HTTP client for the identity provider: reqwest on our rustls configuration, no redirects,
//! proxies from the options or the standard environment variables, bounded timeouts, and responses
//! read whole so error pages (a proxy's HTML, truncated JSON) can be reported as what they are.

use std::time::Duration;

use serde::de::DeserializeOwned;
use url::Url;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::sysproxy::SystemProxy;
use crate::tls::{self, TlsOptions};

/// Maximum response body we read (token responses are a few KB; discovery documents tens of KB).
const MAX_BODY: usize = 1 << 20;

/// HTTP settings.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The `proxy` option (for every protocol, see [`crate::net`]); `None` = the
    /// `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY` environment, else the operating system's
    /// settings (Windows: Internet Options with PAC and WPAD, then the WinHTTP proxy; see
    /// [`crate::sysproxy`]).
    pub proxy: Option<crate::net::ProxyConfig>,
    /// Ignore the proxy option, the environment and the system settings: always connect directly.
    pub no_proxy: bool,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Timeout for a whole request.
    pub timeout: Duration,
    /// TLS settings.
    pub tls: TlsOptions,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            proxy: None,
            no_proxy: false,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            tls: TlsOptions::default(),
        }
    }
}

/// A request for [`HttpClient::execute`].
pub struct Request<'a> {
    /// The method.
    pub method: reqwest::Method,
    /// Where to.
    pub url: &'a Url,
    /// An access token for `Authorization: Bearer`.
    pub bearer: Option<&'a secrecy::SecretString>,
    /// More headers.
    pub headers: &'a [(&'a str, String)],
    /// `Content-Type` of the body.
    pub content_type: Option<&'a str>,
    /// The body.
    pub body: Option<Vec<u8>>,
    /// The largest response body accepted.
    pub max_body: usize,
    /// A timeout for this request instead of the client's (large uploads and downloads).
    pub timeout: Option<Duration>,
}

impl<'a> Request<'a> {
    /// A request without a body, accepting the usual 1 MiB response.
    pub fn new(method: reqwest::Method, url: &'a Url) -> Request<'a> {
        Request {
            method,
            url,
            bearer: None,
            headers: &[],
            content_type: None,
            body: None,
            max_body: MAX_BODY,
            timeout: None,
        }
    }
}

/// A response read whole. The body may hold tokens: it is zeroized when dropped.
pub struct HttpResponse {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After`, in seconds form or HTTP-date form.
    pub retry_after: Option<Duration>,
    /// `Content-Type`, lowercased.
    pub content_type: String,
    /// Body.
    pub body: Zeroizing<Vec<u8>>,
}

impl HttpResponse {
    /// Whether the body is an HTML page (a proxy, a captive portal, a load balancer).
    pub fn is_html(&self) -> bool {
        self.content_type.contains("text/html") || {
            let start = self
                .body
                .iter()
                .skip_while(|b| b.is_ascii_whitespace())
                .take(15)
                .copied()
                .collect::<Vec<u8>>();
            let s = String::from_utf8_lossy(&start).to_ascii_lowercase();
            s.starts_with("<!doctype") || s.starts_with("<html")
        }
    }

    /// The `<title>` of an HTML body, or its first words (never past a secret's name).
    pub fn html_title(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let lower = text.to_ascii_lowercase();
        if let (Some(a), Some(b)) = (lower.find("<title>"), lower.find("</title>")) {
            if b > a + 7 {
                return sanitize(before_secret(&text[a + 7..b]));
            }
        }
        sanitize(before_secret(&text.chars().take(120).collect::<String>()))
    }
}

/// Names whose values are secrets (a token response; a request a server echoes back).
const SECRET_NAMES: [&str; 7] = [
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "device_code",
    "code_verifier",
    "client_assertion",
];

/// `text` up to the first secret's name, or JSON escape (which could spell one).
fn before_secret(text: &str) -> &str {
    let lower = text.to_ascii_lowercase();
    let cut = SECRET_NAMES
        .iter()
        .filter_map(|n| lower.find(n))
        .chain(lower.find("\\u"))
        .min()
        .unwrap_or(text.len());
    &text[..cut]
}

fn redact_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if SECRET_NAMES.iter().any(|n| k.eq_ignore_ascii_case(n)) {
                    *x = serde_json::Value::String("[redacted]".into());
                } else {
                    redact_json(x);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact_json),
        _ => {}
    }
}

/// A short excerpt of an unexpected body for the evidence: JSON with the values of secret fields
/// redacted (a grant sent with an error status must not end up in a report), anything else up to
/// the first secret's name.
fn body_excerpt(body: &[u8]) -> String {
    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) {
        redact_json(&mut v);
        return sanitize(&v.to_string());
    }
    sanitize(before_secret(&String::from_utf8_lossy(
        &body[..body.len().min(200)],
    )))
}

/// Collapse whitespace and cut to a short, printable excerpt.
pub fn sanitize(s: &str) -> String {
    let mut out: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    out.retain(|c| !c.is_control());
    if out.len() > 200 {
        let mut cut = 200;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// The HTTP client. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    /// The operating system's proxy settings when neither the options nor the environment name a
    /// proxy (Windows; see [`crate::sysproxy`]).
    system_proxy: Option<std::sync::Arc<SystemProxy>>,
    /// `no_proxy` was set.
    no_proxy: bool,
    /// The `proxy` option.
    proxy: Option<crate::net::ProxyConfig>,
    /// Connect timeout (for asking a proxy again, see `explain_tunnel`).
    connect_timeout: Duration,
}

impl HttpClient {
    /// Build a client.
    pub fn new(opts: &HttpOptions) -> Result<HttpClient> {
        let tls = tls::client_config(&opts.tls)?;
        let mut b = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.timeout)
            .user_agent(concat!("mailconnect/", env!("CARGO_PKG_VERSION")));
        // Precedence: no_proxy, then the host's proxy, then the environment (reqwest reads
        // HTTPS_PROXY/HTTP_PROXY/ALL_PROXY/NO_PROXY itself), then the operating system's settings.
        let mut system_proxy = None;
        if opts.no_proxy {
            b = b.no_proxy();
        } else if let Some(p) = &opts.proxy {
            // The option's HTTPS value (or its url), with its no_proxy list, per request.
            let cfg = p.clone();
            b = b.proxy(reqwest::Proxy::custom(move |u| {
                cfg.route(crate::net::Channel::Https, u.host_str().unwrap_or(""))
                    .proxy()
                    .and_then(crate::net::Proxy::url_with_credentials)
            }));
        } else if !crate::sysproxy::environment_has_proxy() {
            if let Some(sys) = SystemProxy::detect() {
                tracing::debug!("using the system proxy settings: {:?}", sys.settings());
                let s = sys.clone();
                b = b.proxy(reqwest::Proxy::custom(move |u| s.proxy_for(u)));
                system_proxy = Some(sys);
            }
        }
        let client = b
            .build()
            .map_err(|e| Error::internal(format!("HTTP client: {e}")))?;
        Ok(HttpClient {
            client,
            system_proxy,
            no_proxy: opts.no_proxy,
            proxy: opts.proxy.clone(),
            connect_timeout: opts.connect_timeout,
        })
    }

    /// Where requests' proxy comes from when the `proxy` option does not decide: `None` when
    /// they go directly (`no_proxy`, or nothing configured anywhere).
    pub fn proxy_source(&self) -> Option<&'static str> {
        if self.no_proxy {
            None
        } else if crate::sysproxy::environment_has_proxy() {
            Some("the environment's HTTPS_PROXY/HTTP_PROXY/ALL_PROXY and NO_PROXY")
        } else if self.system_proxy.is_some() {
            Some("the system's proxy settings")
        } else {
            None
        }
    }

    /// The HTTP client reports every refused `CONNECT` but 407 as "unsuccessful" and drops the
    /// status; for a proxy of the `proxy` option, ask it again with mailconnect's own `CONNECT`
    /// (which reads the status: 401/407, 403, 5xx) and report that answer instead.
    async fn explain_tunnel(&self, url: &Url, err: Error) -> Error {
        let (Some(cfg), Some(crate::net::codes::PROXY_PORT_DENIED)) = (&self.proxy, err.code())
        else {
            return err;
        };
        let host = url.host_str().unwrap_or("").trim_matches(['[', ']']);
        let route = cfg.route(crate::net::Channel::Https, host);
        if !matches!(route.proxy(), Some(p) if p.kind == crate::net::ProxyKind::Http) {
            return err;
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let mut t = crate::net::ConnectTimings::default();
        match crate::net::dial(&route, host, port, self.connect_timeout, &mut t).await {
            Err(precise) => {
                let ep = endpoint(url);
                let msg = format!("{ep} could not be reached: {}", precise.message());
                let mut e = Error::new(precise.kind(), msg);
                if let Some(code) = precise.code() {
                    e = e.with_code(code);
                }
                let reply = precise.evidence().server_reply.clone();
                e.with_evidence(|ev| {
                    ev.endpoint = Some(ep);
                    ev.server_reply = reply;
                })
            }
            Ok(_) => err,
        }
    }

    /// Whether requests to `url` go through a proxy (as far as the client can tell: with the
    /// environment or the system settings, it assumes they do).
    fn proxied(&self, url: &Url) -> bool {
        match (&self.proxy, self.no_proxy) {
            (_, true) => false,
            (Some(p), _) => p
                .route(crate::net::Channel::Https, url.host_str().unwrap_or(""))
                .proxy()
                .is_some(),
            (None, _) => self.proxy_source().is_some(),
        }
    }

    /// POST a form, optionally with HTTP Basic client authentication.
    pub async fn post_form(
        &self,
        url: &Url,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<HttpResponse> {
        let mut rb = self
            .client
            .post(url.clone())
            .header("Accept", "application/json")
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(reqwest::Body::from(tokio_util::bytes::Bytes::from_owner(
                form_body(form),
            )));
        if let Some((u, p)) = basic {
            rb = rb.basic_auth(u, Some(p));
        }
        self.send(url, rb).await
    }

    /// GET a JSON document.
    pub async fn get_json<T: DeserializeOwned>(&self, url: &Url) -> Result<T> {
        self.get_json_with(url, None).await
    }

    /// GET a JSON document with an access token (`Authorization: Bearer`), e.g. OpenID Connect's
    /// userinfo.
    pub async fn get_json_bearer<T: DeserializeOwned>(
        &self,
        url: &Url,
        token: &secrecy::SecretString,
    ) -> Result<T> {
        self.get_json_with(url, Some(token)).await
    }

    async fn get_json_with<T: DeserializeOwned>(
        &self,
        url: &Url,
        bearer: Option<&secrecy::SecretString>,
    ) -> Result<T> {
        let mut rb = self
            .client
            .get(url.clone())
            .header("Accept", "application/json");
        if let Some(t) = bearer {
            rb = rb.bearer_auth(secrecy::ExposeSecret::expose_secret(t));
        }
        let resp = self.send(url, rb).await?;
        if resp.status != 200 {
            return Err(unexpected(url, &resp));
        }
        serde_json::from_slice(&resp.body).map_err(|e| {
            Error::new(
                ErrorKind::ProviderUnavailable,
                format!(
                    "{} answered JSON that could not be read: {e}",
                    endpoint(url)
                ),
            )
            .with_code("MC-IDP-RESPONSE-UNREADABLE")
            .with_evidence(|ev| ev.endpoint = Some(endpoint(url)))
        })
    }

    /// Send `req` (an API call such as Microsoft Graph's), reading a response of at most
    /// `req.max_body` bytes.
    pub async fn execute(&self, req: Request<'_>) -> Result<HttpResponse> {
        let mut rb = self
            .client
            .request(req.method, req.url.clone())
            .header("Accept", "application/json");
        if let Some(t) = req.bearer {
            rb = rb.bearer_auth(secrecy::ExposeSecret::expose_secret(t));
        }
        for (name, value) in req.headers {
            rb = rb.header(*name, value.as_str());
        }
        if let Some(ct) = req.content_type {
            rb = rb.header(reqwest::header::CONTENT_TYPE, ct);
        }
        if let Some(body) = req.body {
            rb = rb.body(body);
        }
        if let Some(t) = req.timeout {
            rb = rb.timeout(t);
        }
        self.send_limited(req.url, rb, req.max_body).await
    }

    async fn send(&self, url: &Url, rb: reqwest::RequestBuilder) -> Result<HttpResponse> {
        self.send_limited(url, rb, MAX_BODY).await
    }

    async fn send_limited(
        &self,
        url: &Url,
        rb: reqwest::RequestBuilder,
        max_body: usize,
    ) -> Result<HttpResponse> {
        if let Some(sys) = &self.system_proxy {
            sys.prepare(url).await;
        }
        let (sent, issuer) = crate::tls::noting_refused_issuer(rb.send()).await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                let err = map_reqwest(url, e, issuer, self.proxied(url));
                return Err(self.explain_tunnel(url, err).await);
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let expected = resp
            .content_length()
            .map_or(16 * 1024, |n| n as usize)
            .min(max_body);
        let mut body = Zeroizing::new(Vec::with_capacity(expected));
        let mut resp = resp;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > max_body {
                        return Err(Error::new(
                            ErrorKind::ProviderUnavailable,
                            format!("{} sent more than {max_body} bytes", endpoint(url)),
                        ));
                    }
                    append_zeroizing(&mut body, &chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::Network,
                        format!(
                        "the connection to {} broke while reading the response (HTTP {status}): {}",
                        endpoint(url),
                        source_chain(&e)
                    ),
                    )
                    .with_code("MC-CONNECTION-CLOSED")
                    .with_evidence(|ev| {
                        ev.http_status = Some(status);
                        ev.endpoint = Some(endpoint(url));
                    }))
                }
            }
        }
        Ok(HttpResponse {
            status,
            retry_after,
            content_type,
            body,
        })
    }
}

/// The `application/x-www-form-urlencoded` body of `form` in a buffer that is zeroized when the
/// request is done with it (the form carries codes, refresh tokens, PKCE verifiers and client
/// secrets). The buffer is sized for the worst case up front so no reallocation leaves a copy behind.
fn form_body(form: &[(&str, &str)]) -> Zeroizing<Vec<u8>> {
    let worst: usize = form.iter().map(|(k, v)| 3 * (k.len() + v.len()) + 2).sum();
    let mut text = String::with_capacity(worst);
    url::form_urlencoded::Serializer::new(&mut text)
        .extend_pairs(form)
        .finish();
    Zeroizing::new(text.into_bytes())
}

/// Append to a zeroizing buffer; when it must grow, the old allocation is wiped, not just freed.
fn append_zeroizing(buf: &mut Zeroizing<Vec<u8>>, more: &[u8]) {
    if buf.capacity() - buf.len() < more.len() {
        let mut bigger = Zeroizing::new(Vec::with_capacity(
            (buf.len() + more.len()).max(buf.capacity() * 2),
        ));
        bigger.extend_from_slice(buf);
        *buf = bigger; // the old buffer is zeroized as it is dropped
    }
    buf.extend_from_slice(more);
}

/// Scheme, host, port and path of a URL (never the query).
pub fn endpoint(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

/// An error for a response that is not what was expected.
pub fn unexpected(url: &Url, resp: &HttpResponse) -> Error {
    let ep = endpoint(url);
    let (msg, reply, code) = if resp.is_html() {
        let t = resp.html_title();
        let (msg, code) = if resp.status >= 500 || resp.status == 429 {
            // A load balancer's or a proxy's error page: the service (or the way to it) is down
            // or busy, not blocked.
            (format!("{ep} answered HTTP {} with an HTML error page (\"{t}\") instead of JSON; the service, or a proxy on the way to it, is unavailable", resp.status), None)
        } else {
            (format!("{ep} answered HTTP {} with an HTML page (\"{t}\") instead of JSON; a proxy, firewall or captive portal may be in the way", resp.status), Some("MC-PROXY-BLOCKED"))
        };
        (msg, t, code)
    } else {
        let excerpt = body_excerpt(&resp.body);
        (
            format!(
                "{ep} answered HTTP {} with an unexpected response",
                resp.status
            ),
            excerpt,
            None,
        )
    };
    let e = Error::new(ErrorKind::ProviderUnavailable, msg);
    let e = match code {
        Some(c) => e.with_code(c),
        None => e,
    };
    e.with_evidence(|ev| {
        ev.http_status = Some(resp.status);
        ev.retry_after_secs = resp.retry_after.map(|d| d.as_secs());
        ev.server_reply = Some(reply);
        ev.endpoint = Some(ep);
    })
}

fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when =
        time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let delta = when - time::OffsetDateTime::now_utc();
    Some(Duration::from_secs(delta.whole_seconds().max(0) as u64))
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// A proxy's refusal in the HTTP client's error text (hyper-util's tunnel and SOCKS messages).
fn proxy_failure(lower: &str, proxied: bool) -> Option<(&'static str, &'static str)> {
    use crate::net::codes::*;
    let socks = lower.contains("socks error");
    if lower.contains("proxy authorization required")
        || (socks && (lower.contains("credentials not accepted") || lower.contains("user/pass")))
    {
        Some((
            PROXY_AUTH_REQUIRED,
            "wants a (different) user name and password",
        ))
    } else if lower.contains("tunnel") && lower.contains("unsuccessful")
        || socks && lower.contains("connection not allowed")
    {
        Some((PROXY_PORT_DENIED, "refused to open a tunnel to the server"))
    } else if socks
        && [
            "unreachable",
            "ttl expired",
            "general server failure",
            "connection refused",
        ]
        .iter()
        .any(|t| lower.contains(t))
    {
        Some((PROXY_TARGET_UNREACHABLE, "could not reach the server"))
    } else if proxied && lower.contains("failed to create underlying connection") {
        Some((PROXY_UNREACHABLE, "could not be reached"))
    } else {
        None
    }
}

fn map_reqwest(url: &Url, e: reqwest::Error, issuer: Option<String>, proxied: bool) -> Error {
    let ep = endpoint(url);
    let timeout = e.is_timeout();
    let connect = e.is_connect();
    let chain = source_chain(&e.without_url());
    let lower = chain.to_ascii_lowercase();
    // A plain-http request through an HTTP proxy is sent to the proxy itself (no tunnel): a
    // connect error there is the proxy not answering.
    let forwarded = proxied && connect && url.scheme() == "http";
    let failure = proxy_failure(&lower, proxied).or(if forwarded {
        Some((crate::net::codes::PROXY_UNREACHABLE, "could not be reached"))
    } else {
        None
    });
    if let Some((code, what)) = failure {
        return Error::new(
            ErrorKind::Network,
            format!("{ep} could not be reached: the proxy {what} ({chain})"),
        )
        .with_code(code)
        .with_evidence(|ev| ev.endpoint = Some(ep));
    }
    if let Some(issuer) = issuer {
        let code = if proxied {
            crate::net::codes::TLS_INSPECTED
        } else {
            "MC-TLS-UNTRUSTED"
        };
        return Error::new(
            ErrorKind::Tls,
            format!("{ep} presented a certificate that is not trusted, issued by '{issuer}' ({chain}); if a proxy or firewall inspects TLS, give its CA with 'extra_ca_file' or exempt this address from inspection"),
        )
        .with_code(code)
        .with_evidence(|ev| {
            ev.endpoint = Some(ep);
            ev.certificate_issuer = Some(issuer);
        });
    }
    let kind = if timeout {
        ErrorKind::Timeout
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        ErrorKind::Tls
    } else {
        ErrorKind::Network
    };
    // "could not be reached" means the request was never sent (callers may then repeat a
    // single-use request such as a code redemption); a connection that broke after the request went
    // out is reported differently, since the server may have acted on it.
    let (what, code) = match kind {
        ErrorKind::Timeout => ("did not answer in time", "MC-TIMEOUT"),
        ErrorKind::Tls => ("failed the TLS handshake", "MC-TLS-UNTRUSTED"),
        _ if connect => ("could not be reached", NOT_REACHED),
        _ => (
            "closed the connection before answering",
            "MC-CONNECTION-CLOSED",
        ),
    };
    Error::new(kind, format!("{ep} {what}: {chain}"))
        .with_code(code)
        .with_evidence(|ev| ev.endpoint = Some(ep))
}

/// The code of a request that never reached the server (so repeating even a single-use request,
/// such as a code redemption, is safe).
pub const NOT_REACHED: &str = "MC-NETWORK-UNREACHABLE";

/// Whether `e` says the request never reached the server.
pub fn never_sent(e: &Error) -> bool {
    use crate::net::codes::*;
    e.kind() == ErrorKind::Network
        && matches!(e.code(), Some(c) if c == NOT_REACHED
            || c == PROXY_UNREACHABLE
            || c == PROXY_AUTH_REQUIRED
            || c == PROXY_PORT_DENIED
            || c == PROXY_TARGET_UNREACHABLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::from_secs(0))
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn html_pages_are_recognised_and_titled() {
        let r = HttpResponse {
            status: 502,
            retry_after: None,
            content_type: String::new(),
            body: Zeroizing::new(
                b"  <!DOCTYPE html><html><head><title>Access   Denied</title>".to_vec(),
            ),
        };
        assert!(r.is_html());
        assert_eq!(r.html_title(), "Access Denied");
    }

    fn url() -> Url {
        Url::parse("https://login.example/t/oauth2/v2.0/token").unwrap()
    }

    fn shown(status: u16, ct: &str, body: &str) -> String {
        let r = HttpResponse {
            status,
            retry_after: None,
            content_type: ct.into(),
            body: Zeroizing::new(body.as_bytes().to_vec()),
        };
        let e = unexpected(&url(), &r);
        format!("{} {:?}", e.message(), e.evidence())
    }

    /// Found by `tests/fuzz` (token_response): the excerpt of an unreadable non-200 body carried
    /// the access token of a grant in it into the error's evidence.
    #[test]
    fn excerpts_of_unexpected_bodies_never_carry_tokens() {
        let s = shown(
            400,
            "application/json",
            r#"{"error": "x", "access_token": "eyJ0eXAiOiJKV1QiLCJub25d_client", "error_description": "a", "error_description": "b"}"#,
        );
        assert!(!s.contains("eyJ0eXAiOiJKV1QiLCJub25d_client"), "{s}");
        // A grant with an unexpected status: readable JSON, secrets redacted, the rest kept.
        let s = shown(
            201,
            "application/json",
            r#"{"token_type":"Bearer","Access_Token":"AT-secret-123","refresh_token":"RT-secret-456","nested":[{"id_token":"ID-secret-789"}]}"#,
        );
        for secret in ["AT-secret-123", "RT-secret-456", "ID-secret-789"] {
            assert!(!s.contains(secret), "{s}");
        }
        assert!(s.contains("Bearer") && s.contains("[redacted]"), "{s}");
        // Truncated or escaped JSON: cut before the first secret's name.
        let s = shown(
            502,
            "",
            r#"{"token_type":"Bearer","refresh_token":"RT-secret-456","#,
        );
        assert!(
            !s.contains("RT-secret-456") && s.contains("token_type"),
            "{s}"
        );
        let s = shown(502, "", r#"{"a":1,"refresh_token":"RT-secret-456""#);
        assert!(!s.contains("RT-secret-456"), "{s}");
        // HTML pages: the title, or the first words, also stop before a secret's name.
        let s = shown(
            200,
            "text/html",
            "<html><body>access_token=AT-secret-123&expires_in=3600</body></html>",
        );
        assert!(
            !s.contains("AT-secret-123") && s.contains("HTML page"),
            "{s}"
        );
        // Ordinary bodies are shown as before.
        let s = shown(500, "text/plain", "upstream  connect error");
        assert!(s.contains("upstream connect error"), "{s}");
    }

    #[test]
    fn form_bodies_are_encoded_in_place_and_growth_keeps_the_content() {
        let b = form_body(&[("code", "a b&c=d/é"), ("x", "")]);
        assert_eq!(b.as_slice(), b"code=a+b%26c%3Dd%2F%C3%A9&x=");
        let worst = 3 * ("code".len() + "a b&c=d/é".len() + "x".len()) + 4;
        assert!(b.capacity() <= worst);
        let mut buf = Zeroizing::new(Vec::with_capacity(2));
        append_zeroizing(&mut buf, b"ab");
        append_zeroizing(&mut buf, b"cdefg");
        append_zeroizing(&mut buf, b"h");
        assert_eq!(buf.as_slice(), b"abcdefgh");
    }

    #[test]
    fn html_error_pages_of_unavailable_services_are_not_called_blocked() {
        let page = |status| HttpResponse {
            status,
            retry_after: None,
            content_type: "text/html".into(),
            body: Zeroizing::new(b"<html><title>502 Bad Gateway</title>".to_vec()),
        };
        let u = Url::parse("https://login.example/t/oauth2/v2.0/token").unwrap();
        let e = unexpected(&u, &page(502));
        assert!(e.message().contains("HTML error page"), "{}", e.message());
        assert!(!e.message().contains("HTML page"), "{}", e.message());
        assert!(unexpected(&u, &page(403)).message().contains("HTML page"));
    }

    #[test]
    fn endpoints_never_show_query_strings() {
        let u = Url::parse("https://u:p@login.example.com/t/oauth2?code=secret").unwrap();
        assert_eq!(endpoint(&u), "https://login.example.com/t/oauth2");
    }
}
