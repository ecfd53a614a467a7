//! SMTP submission on lettre, with the TLS done on our one rustls configuration.
//!
//! lettre cannot take an existing rustls `ClientConfig`, so we connect and secure the connection
//! ourselves: implicit TLS is handed to lettre as is; for STARTTLS we read the greeting, send EHLO
//! and STARTTLS, do the handshake, and hand lettre the TLS stream behind a synthetic `220` greeting
//! (it then sends EHLO again, as RFC 3207 requires after STARTTLS).
//!
//! Authentication always uses the two-step form (`AUTH XOAUTH2`, `334`, data): Postfix refuses an
//! initial-response line over 2,048 characters and real tokens are often longer; Exchange documents
//! both forms. A `334 <base64 JSON>` error challenge is answered with an empty line and kept.
//!
//! lettre's `tracing` feature is off on purpose: it logs every line written, tokens included.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::extension::ClientId;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::message::Envelope;
use super::pop3::{AuthFailure, Mechanism};
use super::stream::{self, ConnectTimings, LineConn, Security};
use crate::error::{Error, ErrorKind, Result};

const SYNTHETIC_GREETING: &[u8] = b"220 mailconnect: TLS established after STARTTLS\r\n";

/// The stream lettre runs on.
enum SmtpIo {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    AfterStarttls {
        prefix_left: usize,
        tls: Box<TlsStream<TcpStream>>,
    },
}

impl fmt::Debug for SmtpIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SmtpIo")
    }
}

impl AsyncRead for SmtpIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SmtpIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            SmtpIo::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            SmtpIo::AfterStarttls { prefix_left, tls } => {
                if *prefix_left > 0 {
                    let start = SYNTHETIC_GREETING.len() - *prefix_left;
                    let n = (*prefix_left).min(buf.remaining());
                    buf.put_slice(&SYNTHETIC_GREETING[start..start + n]);
                    *prefix_left -= n;
                    return Poll::Ready(Ok(()));
                }
                Pin::new(tls.as_mut()).poll_read(cx, buf)
            }
        }
    }
}

impl AsyncWrite for SmtpIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            SmtpIo::Plain(s) => Pin::new(s).poll_write(cx, buf),
            SmtpIo::Tls(s) | SmtpIo::AfterStarttls { tls: s, .. } => {
                Pin::new(s.as_mut()).poll_write(cx, buf)
            }
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SmtpIo::Plain(s) => Pin::new(s).poll_flush(cx),
            SmtpIo::Tls(s) | SmtpIo::AfterStarttls { tls: s, .. } => {
                Pin::new(s.as_mut()).poll_flush(cx)
            }
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SmtpIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
            SmtpIo::Tls(s) | SmtpIo::AfterStarttls { tls: s, .. } => {
                Pin::new(s.as_mut()).poll_shutdown(cx)
            }
        }
    }
}

impl AsyncTokioStream for SmtpIo {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        match self {
            SmtpIo::Plain(s) => s.peer_addr(),
            SmtpIo::Tls(s) | SmtpIo::AfterStarttls { tls: s, .. } => s.get_ref().0.peer_addr(),
        }
    }
}

/// One line sent as is (lettre commands carry their own CRLF).
struct Line<'a>(&'a str);
impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\r\n", self.0)
    }
}

fn reply_text(r: &lettre::transport::smtp::response::Response) -> String {
    let code = r.code();
    let lines: Vec<&str> = r.message().collect();
    format!("{code} {}", lines.join(" "))
}

fn smtp_error(what: &str, e: &lettre::transport::smtp::Error) -> Error {
    let text = crate::http::sanitize(&e.to_string());
    let kind = if e.status().is_some() {
        ErrorKind::MailServer
    } else {
        ErrorKind::Network
    };
    Error::new(kind, format!("{what}: {text}")).with_evidence(|ev| ev.server_reply = Some(text))
}

/// Read a (multi-line) SMTP reply on the plain connection: `(code, lines)`.
async fn read_reply(conn: &mut LineConn<TcpStream>) -> Result<(u16, Vec<String>)> {
    let mut lines = Vec::new();
    loop {
        let line = conn.read_line().await?;
        let code = line
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::MailServer,
                    format!(
                        "the SMTP server sent an unreadable reply: {}",
                        crate::http::sanitize(&line)
                    ),
                )
            })?;
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line.get(4..).unwrap_or("").to_string());
        if last {
            return Ok((code, lines));
        }
    }
}

/// A connected SMTP submission session.
pub struct SmtpSession {
    conn: AsyncSmtpConnection,
    /// The server's greeting.
    pub greeting: String,
    /// EHLO keywords after TLS (e.g. `AUTH XOAUTH2 OAUTHBEARER`, `SIZE 10240000`).
    pub capabilities: Vec<String>,
    /// Connection timings.
    pub timings: ConnectTimings,
    timeout: Duration,
}

impl SmtpSession {
    /// Connect and secure the connection; `hello` is the EHLO name.
    pub async fn connect(
        host: &str,
        port: u16,
        security: Security,
        tls: Arc<rustls::ClientConfig>,
        timeout: Duration,
        hello: &str,
    ) -> Result<SmtpSession> {
        let mut timings = ConnectTimings::default();
        let tcp = stream::connect_tcp(host, port, timeout, &mut timings).await?;
        let (io, greeting) = match security {
            Security::Tls => (
                SmtpIo::Tls(Box::new(
                    stream::tls_handshake(tcp, host, tls, timeout, &mut timings).await?,
                )),
                None,
            ),
            Security::None => (SmtpIo::Plain(tcp), None),
            Security::Starttls => {
                let mut conn = LineConn::new(tcp, host, timeout);
                let (code, g) = read_reply(&mut conn).await?;
                if code != 220 {
                    return Err(Error::new(
                        ErrorKind::MailServer,
                        format!(
                            "the SMTP server {host} refused the connection: {code} {}",
                            g.join(" ")
                        ),
                    ));
                }
                conn.write_line(&format!("EHLO {hello}")).await?;
                let (code, ehlo) = read_reply(&mut conn).await?;
                if code != 250 {
                    return Err(Error::new(
                        ErrorKind::MailServer,
                        format!(
                            "the SMTP server {host} refused EHLO: {code} {}",
                            ehlo.join(" ")
                        ),
                    ));
                }
                if !ehlo.iter().any(|l| l.eq_ignore_ascii_case("STARTTLS")) {
                    return Err(Error::new(ErrorKind::MailServer, format!("the SMTP server {host}:{port} does not offer STARTTLS; use port 465 with implicit TLS")));
                }
                conn.write_line("STARTTLS").await?;
                let (code, text) = read_reply(&mut conn).await?;
                if code != 220 {
                    return Err(Error::new(
                        ErrorKind::MailServer,
                        format!(
                            "the SMTP server {host} refused STARTTLS: {code} {}",
                            text.join(" ")
                        ),
                    ));
                }
                let plain = conn.into_inner_for_starttls()?;
                let tls = stream::tls_handshake(plain, host, tls, timeout, &mut timings).await?;
                (
                    SmtpIo::AfterStarttls {
                        prefix_left: SYNTHETIC_GREETING.len(),
                        tls: Box::new(tls),
                    },
                    Some(format!("220 {}", g.join(" "))),
                )
            }
        };
        let client_id = ClientId::Domain(hello.to_string());
        let conn = tokio::time::timeout(
            timeout,
            AsyncSmtpConnection::connect_with_transport(Box::new(io), &client_id),
        )
        .await
        .map_err(|_| Error::timeout(&format!("SMTP greeting and EHLO of {host}"), timeout))?
        .map_err(|e| smtp_error(&format!("SMTP greeting and EHLO of {host}"), &e))?;
        let mut session = SmtpSession {
            greeting: greeting.unwrap_or_else(|| format!("220 {}", conn.server_info().name())),
            conn,
            capabilities: vec![],
            timings,
            timeout,
        };
        let ehlo = session
            .command(&format!("EHLO {hello}"), "SMTP EHLO")
            .await?;
        session.capabilities = ehlo.message().skip(1).map(str::to_string).collect();
        Ok(session)
    }

    /// SASL mechanisms offered (from `AUTH ...`), upper-cased.
    pub fn sasl_mechanisms(&self) -> Vec<String> {
        self.capabilities
            .iter()
            .find(|l| l.to_ascii_uppercase().starts_with("AUTH "))
            .map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .map(|s| s.to_ascii_uppercase())
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn command(
        &mut self,
        line: &str,
        what: &str,
    ) -> Result<lettre::transport::smtp::response::Response> {
        match tokio::time::timeout(self.timeout, self.conn.command(Line(line))).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(smtp_error(what, &e)),
            Err(_) => Err(Error::timeout(what, self.timeout)),
        }
    }

    /// One step of an AUTH exchange: the server's reply, or its refusal as an [`AuthFailure`].
    async fn auth_step(
        &mut self,
        line: &str,
    ) -> Result<std::result::Result<lettre::transport::smtp::response::Response, AuthFailure>> {
        match tokio::time::timeout(self.timeout, self.conn.command(Line(line))).await {
            Err(_) => Err(Error::timeout("SMTP AUTH", self.timeout)),
            Ok(Err(e)) if e.status().is_some() => Ok(Err(AuthFailure {
                reply: crate::http::sanitize(&e.to_string()),
                challenge: None,
            })),
            Ok(Err(e)) => Err(smtp_error("SMTP AUTH", &e)),
            Ok(Ok(r)) => Ok(Ok(r)),
        }
    }

    /// Authenticate with the two-step form. `initial_response` is the base64 SASL response.
    pub async fn authenticate(
        &mut self,
        mechanism: Mechanism,
        initial_response: &SecretString,
    ) -> Result<std::result::Result<(), AuthFailure>> {
        let first = match self
            .auth_step(&format!("AUTH {}", mechanism.name()))
            .await?
        {
            Ok(r) => r,
            Err(f) => return Ok(Err(f)),
        };
        if !first.has_code(334) {
            return Err(Error::new(
                ErrorKind::MailServer,
                format!("SMTP AUTH answered {} instead of 334", reply_text(&first)),
            ));
        }
        let second = match self.auth_step(initial_response.expose_secret()).await? {
            Ok(r) => r,
            Err(f) => return Ok(Err(f)),
        };
        if second.has_code(235) {
            return Ok(Ok(()));
        }
        if second.has_code(334) {
            let data: String = second.message().collect::<Vec<_>>().join("");
            let challenge = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            let answer = match mechanism {
                Mechanism::Xoauth2 => "",
                Mechanism::Oauthbearer => "AQ==",
            };
            let reply =
                match tokio::time::timeout(self.timeout, self.conn.command(Line(answer))).await {
                    Err(_) => return Err(Error::timeout("SMTP AUTH", self.timeout)),
                    Ok(Err(e)) => crate::http::sanitize(&e.to_string()),
                    Ok(Ok(r)) => reply_text(&r),
                };
            return Ok(Err(AuthFailure { reply, challenge }));
        }
        Ok(Err(AuthFailure {
            reply: reply_text(&second),
            challenge: None,
        }))
    }

    /// Send a message. Returns the server's acceptance reply (e.g. `250 2.0.0 Ok: queued as ...`).
    pub async fn send(&mut self, envelope: &Envelope, message: &[u8]) -> Result<String> {
        let from = envelope.from.parse::<lettre::Address>().map_err(|e| {
            Error::invalid(
                "from",
                format!("'{}' is not a valid sender: {e}", envelope.from),
            )
        })?;
        let to = envelope
            .to
            .iter()
            .map(|a| {
                a.parse::<lettre::Address>().map_err(|e| {
                    Error::invalid("to", format!("'{a}' is not a valid recipient: {e}"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let env = lettre::address::Envelope::new(Some(from), to)
            .map_err(|e| Error::invalid("to", format!("envelope: {e}")))?;
        let limit = self.timeout * 4;
        match tokio::time::timeout(limit, self.conn.send(&env, message)).await {
            Ok(Ok(r)) => Ok(reply_text(&r)),
            Ok(Err(e)) => Err(smtp_error("sending the message", &e)),
            Err(_) => Err(Error::timeout(
                "sending the message (the server may or may not have accepted it)",
                limit,
            )),
        }
    }

    /// Whether the connection still works (for reuse in bursts).
    pub async fn is_alive(&mut self) -> bool {
        !self.conn.has_broken() && self.conn.test_connected().await
    }

    /// `QUIT`.
    pub async fn quit(mut self) -> Result<()> {
        match tokio::time::timeout(self.timeout, self.conn.quit()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(smtp_error("SMTP QUIT", &e)),
            Err(_) => Err(Error::timeout("SMTP QUIT", self.timeout)),
        }
    }
}
