//! Opening a TCP connection to a server along a [`Route`]: directly, through an HTTP proxy's
//! `CONNECT` tunnel, or through SOCKS5 (tokio-socks). The result is a plain TCP stream carrying
//! the server's bytes, on which the protocols then do TLS; the proxy only ever sees TLS (or, for
//! STARTTLS, the plain greeting and `STARTTLS`), never a token.
//!
//! `CONNECT` is written here rather than taken from hyper-util's tunnel: that one reduces every
//! refusal other than 407 to "unsuccessful", and the status code is what tells an admin whether
//! the proxy forbids the port (403) or could not reach the server (502/504). The response head is
//! read byte by byte so not one byte of the server's greeting that may follow it is lost.

use std::time::{Duration, Instant};

use base64::Engine;
use secrecy::ExposeSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::quickack::MailTcp;
use super::ConnectTimings;
use super::{Proxy, ProxyKind, Route};
use crate::error::{Error, ErrorKind, Result};

use super::codes::{
    PROXY_AUTH_REQUIRED as AUTH_REQUIRED, PROXY_PORT_DENIED as PORT_DENIED,
    PROXY_TARGET_UNREACHABLE as TARGET_UNREACHABLE, PROXY_UNREACHABLE as UNREACHABLE,
};

/// The longest proxy response head read.
const MAX_HEAD: usize = 16 * 1024;

/// Connect to `host:port` along `route` within `timeout` (for the proxy's handshake as well).
/// The connection acknowledges promptly ([`MailTcp`]).
pub async fn dial(
    route: &Route,
    host: &str,
    port: u16,
    timeout: Duration,
    t: &mut ConnectTimings,
) -> Result<MailTcp> {
    dial_tcp(route, host, port, timeout, t)
        .await
        .map(MailTcp::new)
}

async fn dial_tcp(
    route: &Route,
    host: &str,
    port: u16,
    timeout: Duration,
    t: &mut ConnectTimings,
) -> Result<TcpStream> {
    let proxy = match route {
        Route::Direct => return connect_tcp(host, port, timeout, t).await,
        Route::Via(p) => p,
    };
    let started = Instant::now();
    let tcp = connect_tcp(&proxy.host, proxy.port, timeout, t)
        .await
        .map_err(|e| {
            let msg = format!(
                "the {} could not be reached to connect to {host}:{port}: {}",
                proxy.describe(),
                e.message()
            );
            Error::new(e.kind(), msg)
                .with_code(UNREACHABLE)
                .with_evidence(|ev| ev.endpoint = Some(proxy.endpoint()))
        })?;
    let tunnel = async {
        match proxy.kind {
            ProxyKind::Http => http_connect(tcp, proxy, host, port).await,
            ProxyKind::Socks5 { remote_dns } => socks5(tcp, proxy, host, port, remote_dns).await,
        }
    };
    let s = match tokio::time::timeout(timeout, tunnel).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(Error::timeout(
                &format!(
                    "waiting for the {} to open a connection to {host}:{port}",
                    proxy.describe()
                ),
                timeout,
            )
            .with_code(UNREACHABLE)
            .with_evidence(|ev| ev.endpoint = Some(proxy.endpoint())))
        }
    };
    t.connect_ms = started.elapsed().as_millis() as u64;
    Ok(s)
}

fn refused(proxy: &Proxy, code: &'static str, msg: String, reply: String) -> Error {
    Error::new(ErrorKind::Network, msg)
        .with_code(code)
        .with_evidence(|ev| {
            ev.endpoint = Some(proxy.endpoint());
            ev.server_reply = Some(reply);
        })
}

/// `host:port` as the authority of a `CONNECT` (IPv6 in brackets).
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn http_connect(mut s: TcpStream, proxy: &Proxy, host: &str, port: u16) -> Result<TcpStream> {
    let target = authority(host, port);
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(user) = &proxy.username {
        let pass = proxy
            .password
            .as_ref()
            .map(|p| p.expose_secret())
            .unwrap_or("");
        let cred = zeroize::Zeroizing::new(format!("{user}:{pass}"));
        let enc = zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode(cred.as_bytes()),
        );
        req.push_str("Proxy-Authorization: Basic ");
        req.push_str(&enc);
        req.push_str("\r\n");
    }
    req.push_str(concat!(
        "User-Agent: mailconnect/",
        env!("CARGO_PKG_VERSION"),
        "\r\n\r\n"
    ));
    let req = zeroize::Zeroizing::new(req);
    let what = format!("asking the {} for a tunnel to {target}", proxy.describe());
    let io = |e: std::io::Error| {
        Error::new(ErrorKind::Network, format!("{what}: {e}"))
            .with_code(UNREACHABLE)
            .with_evidence(|ev| ev.endpoint = Some(proxy.endpoint()))
    };
    s.write_all(req.as_bytes()).await.map_err(io)?;
    let mut head = Vec::with_capacity(256);
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err(refused(
                proxy,
                UNREACHABLE,
                format!("{what}: the proxy's answer is longer than {MAX_HEAD} bytes"),
                String::new(),
            ));
        }
        match s.read(&mut b).await.map_err(io)? {
            0 => {
                return Err(refused(
                    proxy,
                    UNREACHABLE,
                    format!("{what}: the proxy closed the connection without an answer"),
                    String::from_utf8_lossy(&head).into_owned(),
                ))
            }
            _ => head.push(b[0]),
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let status = match resp.parse(&head) {
        Ok(httparse::Status::Complete(_)) => resp.code.unwrap_or(0),
        _ => 0,
    };
    let line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    match status {
        200..=299 => Ok(s),
        // 407 is the standard; tinyproxy answers wrong credentials with 401.
        407 | 401 => {
            let (kind, hint) = if proxy.username.is_some() {
                ("refused the user name or password", "correct the proxy user and password")
            } else {
                ("wants a user name and password", "set the proxy user and password")
            };
            let scheme = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("proxy-authenticate"))
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
                .unwrap_or_default();
            let basic = scheme.is_empty() || scheme.to_ascii_lowercase().contains("basic");
            let msg = if basic {
                format!("the {} {kind} ({line}); {hint} in the program's proxy settings", proxy.describe())
            } else {
                format!("the {} {kind} with an authentication mailconnect does not speak ({line}, '{scheme}'): only Basic is supported; ask for a rule that lets this program through, or use a SOCKS5 proxy", proxy.describe())
            };
            Err(refused(proxy, AUTH_REQUIRED, msg, line))
        }
        // 500: tinyproxy's "Unable to connect"; 502/504: squid and most others.
        500 | 502..=504 => Err(refused(
            proxy,
            TARGET_UNREACHABLE,
            format!(
                "the {} could not reach {target} ({line})",
                proxy.describe()
            ),
            line,
        )),
        0 => Err(refused(
            proxy,
            UNREACHABLE,
            format!("{what}: the answer is not HTTP ('{line}'); is this an HTTP proxy?"),
            line,
        )),
        _ => Err(refused(
            proxy,
            PORT_DENIED,
            format!(
                "the {} refused a tunnel to {target} ({line}); many proxies allow CONNECT only to port 443",
                proxy.describe()
            ),
            line,
        )),
    }
}

async fn socks5(
    s: TcpStream,
    proxy: &Proxy,
    host: &str,
    port: u16,
    remote_dns: bool,
) -> Result<TcpStream> {
    use tokio_socks::tcp::Socks5Stream;
    use tokio_socks::TargetAddr;
    let target = authority(host, port);
    let addr: TargetAddr<'_> = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => TargetAddr::Ip(std::net::SocketAddr::new(ip, port)),
        Err(_) if remote_dns => TargetAddr::Domain(host.into(), port),
        Err(_) => {
            let resolved = tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Network,
                        format!("resolving {host} for the {}: {e} (socks5h:// lets the proxy resolve names)", proxy.describe()),
                    )
                    .with_evidence(|ev| ev.endpoint = Some(target.clone()))
                })?
                .next()
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::Network,
                        format!("{host} has no address (socks5h:// lets the proxy resolve names)"),
                    )
                })?;
            TargetAddr::Ip(resolved)
        }
    };
    let r = match (&proxy.username, &proxy.password) {
        (Some(u), p) => {
            let pass = p.as_ref().map(|p| p.expose_secret()).unwrap_or("");
            Socks5Stream::connect_with_password_and_socket(s, addr, u, pass).await
        }
        (None, _) => Socks5Stream::connect_with_socket(s, addr).await,
    };
    r.map(Socks5Stream::into_inner).map_err(|e| {
        use tokio_socks::Error as E;
        let (code, why) = match &e {
            E::PasswordAuthFailure(_) => (
                AUTH_REQUIRED,
                "refused the user name or password; correct them in the program's proxy settings",
            ),
            E::NoAcceptableAuthMethods | E::AuthorizationRequired => (
                AUTH_REQUIRED,
                "wants a user name and password (or another authentication); set them in the program's proxy settings",
            ),
            E::ConnectionNotAllowedByRuleset => (
                PORT_DENIED,
                "does not allow connections to this server or port (its rule set refused it)",
            ),
            E::NetworkUnreachable
            | E::HostUnreachable
            | E::ConnectionRefused
            | E::TtlExpired
            | E::GeneralSocksServerFailure => (TARGET_UNREACHABLE, "could not reach the server"),
            _ => (UNREACHABLE, "did not open the connection"),
        };
        refused(
            proxy,
            code,
            format!("the {} {why} ({target}: {e})", proxy.describe()),
            e.to_string(),
        )
    })
}

/// Connect TCP to `host:port` within `timeout`.
async fn connect_tcp(
    host: &str,
    port: u16,
    timeout: Duration,
    t: &mut ConnectTimings,
) -> Result<TcpStream> {
    let started = Instant::now();
    let what = format!("connecting to {host}:{port}");
    let s = match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(
                Error::new(ErrorKind::Network, format!("{what}: {e}")).with_evidence(|ev| {
                    ev.server_reply = Some(e.to_string());
                    ev.endpoint = Some(format!("{host}:{port}"));
                }),
            );
        }
        Err(_) => {
            return Err(Error::timeout(&what, timeout)
                .with_evidence(|ev| ev.endpoint = Some(format!("{host}:{port}"))))
        }
    };
    let _ = s.set_nodelay(true);
    t.connect_ms = started.elapsed().as_millis() as u64;
    Ok(s)
}
