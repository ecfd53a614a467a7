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

use crate::net::MailTcp;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::extension::ClientId;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::client::TlsStream;
use zeroize::Zeroizing;

use super::message::Envelope;
use super::pop3::{AuthFailure, Mechanism};
use super::stream::{self, ConnectTimings, LineConn, SecretSwap, Security, SwapSlot};
use crate::error::{Error, ErrorKind, Result};

const SYNTHETIC_GREETING: &[u8] = b"220 mailconnect: TLS established after STARTTLS\r\n";

/// The stream lettre runs on.
enum SmtpIo {
    Plain(MailTcp),
    Tls(Box<TlsStream<MailTcp>>),
    AfterStarttls {
        prefix_left: usize,
        tls: Box<TlsStream<MailTcp>>,
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

/// lettre 0.11.23 panics (`split.next().unwrap()` in `ServerInfo::from_response`) when a line of
/// the EHLO reply has text that is only whitespace (`250-  `, found by `tests/fuzz` target
/// `smtp_session`). This reader, between the connection and lettre, empties such texts; lettre
/// skips empty EHLO lines and nothing else changes. It cuts the server's bytes where lettre does,
/// at CRLF, and releases a piece as soon as its CRLF arrives (or at the end of the stream).
struct BlankReplyText {
    inner: Box<dyn AsyncTokioStream>,
    /// The current CRLF-terminated piece, still incomplete.
    piece: Vec<u8>,
    /// Bytes ready for lettre.
    ready: Vec<u8>,
    ready_pos: usize,
}

/// Longer pieces than lettre accepts in a whole reply are passed on as they are (lettre refuses them).
const MAX_PIECE: usize = 100_001;

impl BlankReplyText {
    fn new(inner: Box<dyn AsyncTokioStream>) -> BlankReplyText {
        BlankReplyText {
            inner,
            piece: Vec::new(),
            ready: Vec::new(),
            ready_pos: 0,
        }
    }

    /// Release the current piece, without its text when that is only whitespace.
    fn release(&mut self) {
        let piece = std::mem::take(&mut self.piece);
        let blank = piece.len() > 6
            && piece.ends_with(b"\r\n")
            && std::str::from_utf8(&piece[4..piece.len() - 2]).is_ok_and(|t| t.trim().is_empty());
        if blank {
            self.ready.extend_from_slice(&piece[..4]);
            self.ready.extend_from_slice(b"\r\n");
        } else {
            self.ready.extend_from_slice(&piece);
        }
    }
}

impl fmt::Debug for BlankReplyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlankReplyText")
    }
}

impl AsyncRead for BlankReplyText {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        loop {
            if me.ready_pos < me.ready.len() {
                let n = (me.ready.len() - me.ready_pos).min(buf.remaining());
                buf.put_slice(&me.ready[me.ready_pos..me.ready_pos + n]);
                me.ready_pos += n;
                if me.ready_pos == me.ready.len() {
                    me.ready.clear();
                    me.ready_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 4096];
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut me.inner).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
            if rb.filled().is_empty() {
                // End of the stream: what is left goes out as it is.
                if me.piece.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                me.release();
                continue;
            }
            for &b in rb.filled() {
                me.piece.push(b);
                if (b == b'\n' && me.piece.ends_with(b"\r\n")) || me.piece.len() >= MAX_PIECE {
                    me.release();
                }
            }
        }
    }
}

impl AsyncWrite for BlankReplyText {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for BlankReplyText {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.inner.peer_addr()
    }
}

impl<S: AsyncTokioStream> AsyncTokioStream for SecretSwap<S> {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.get_ref().peer_addr()
    }
}

/// What lettre is given to send instead of the SASL response (it turns every command into a
/// `String` it never wipes); the stream sends the real response in its place.
const SASL_PLACEHOLDER: &str = "mailconnect-sasl-response-withheld";

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
    let err = Error::new(kind, format!("{what}: {text}"));
    let err = if kind == ErrorKind::Network && crate::error::is_closed_connection(e) {
        err.with_code(stream::CLOSED)
    } else {
        err
    };
    err.with_evidence(|ev| ev.server_reply = Some(text))
}

/// A command line given to lettre as it is.
struct Raw<'a>(&'a str);
impl fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A send that failed.
#[derive(Debug)]
pub struct SendFailure {
    /// What happened.
    pub error: Error,
    /// Whether the server may have accepted the message anyway (the connection broke or timed
    /// out after the message data went out). `false`: it certainly did not.
    pub maybe_accepted: bool,
}

fn build_envelope(envelope: &Envelope) -> Result<lettre::address::Envelope> {
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
            a.parse::<lettre::Address>()
                .map_err(|e| Error::invalid("to", format!("'{a}' is not a valid recipient: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    lettre::address::Envelope::new(Some(from), to)
        .map_err(|e| Error::invalid("to", format!("envelope: {e}")))
}

/// A connection that broke (no SMTP status): a network error naming what it means for the message.
fn broke(what: &str, e: &lettre::transport::smtp::Error) -> Error {
    let text = crate::http::sanitize(&e.to_string());
    Error::new(ErrorKind::Network, format!("{what} ({text})"))
        .with_code(stream::CLOSED)
        .with_evidence(|ev| ev.server_reply = Some(text))
}

/// Read a (multi-line) SMTP reply on the plain connection: `(code, lines)`.
async fn read_reply<S: stream::Io>(conn: &mut LineConn<S>) -> Result<(u16, Vec<String>)> {
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

/// The plain part of STARTTLS: read the greeting, send EHLO, check that STARTTLS is offered, send
/// it and read the go-ahead. Returns the greeting's lines. `conn` may wrap any stream (an in-memory
/// one in tests and fuzzing); hosts use the `Client` API, which runs this inside
/// [`SmtpSession::connect`]. `port` only names the server in errors.
///
/// It sends only `EHLO` and `STARTTLS` and never does the TLS handshake: the caller takes the
/// stream back with [`LineConn::into_inner_for_starttls`], which refuses bytes the server sent
/// ahead of the handshake, and must never send anything else on the plain connection.
pub async fn starttls_preamble<S: stream::Io>(
    conn: &mut LineConn<S>,
    port: u16,
    hello: &str,
) -> Result<Vec<String>> {
    let host = conn.host().to_string();
    let (code, g) = read_reply(conn).await?;
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
    let (code, ehlo) = read_reply(conn).await?;
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
    let (code, text) = read_reply(conn).await?;
    if code != 220 {
        return Err(Error::new(
            ErrorKind::MailServer,
            format!(
                "the SMTP server {host} refused STARTTLS: {code} {}",
                text.join(" ")
            ),
        ));
    }
    Ok(g)
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
    swap: SwapSlot,
}

impl SmtpSession {
    /// Connect and secure the connection; `hello` is the EHLO name.
    pub async fn connect(
        host: &str,
        port: u16,
        route: &crate::net::Route,
        security: Security,
        tls: Arc<rustls::ClientConfig>,
        timeout: Duration,
        hello: &str,
    ) -> Result<SmtpSession> {
        let mut timings = ConnectTimings::default();
        let tcp = crate::net::dial(route, host, port, timeout, &mut timings).await?;
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
                let g = starttls_preamble(&mut conn, port, hello).await?;
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
        SmtpSession::start(Box::new(io), host, greeting, timings, timeout, hello).await
    }

    /// Hand a secured stream to lettre: read the greeting, send EHLO and read the capabilities.
    /// The second half of [`SmtpSession::connect`], on any stream (an in-memory one in tests and
    /// fuzzing); hosts use the `Client` API, which connects through [`SmtpSession::connect`].
    /// `greeting`, if given, is kept as the session's greeting instead of the one read from `io`
    /// (after STARTTLS that one is synthetic); `timings` are kept as given.
    ///
    /// It sends only `EHLO` and never authenticates. It never secures the stream (no TLS, no
    /// STARTTLS): whatever `io` is, is what the session runs on, so a caller must never hand it an
    /// unsecured connection to a real server (the token goes over it later).
    pub async fn start(
        io: Box<dyn AsyncTokioStream>,
        host: &str,
        greeting: Option<String>,
        timings: ConnectTimings,
        timeout: Duration,
        hello: &str,
    ) -> Result<SmtpSession> {
        let client_id = ClientId::Domain(hello.to_string());
        let swap = SwapSlot::default();
        let conn = tokio::time::timeout(
            timeout,
            AsyncSmtpConnection::connect_with_transport(
                Box::new(SecretSwap::new(BlankReplyText::new(io), swap.clone())),
                &client_id,
            ),
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
            swap,
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
        let secret = initial_response.expose_secret().as_bytes();
        let mut line = Zeroizing::new(Vec::with_capacity(secret.len() + 2));
        line.extend_from_slice(secret);
        line.extend_from_slice(b"\r\n");
        self.swap
            .arm(format!("{SASL_PLACEHOLDER}\r\n").as_bytes(), line);
        let second = self.auth_step(SASL_PLACEHOLDER).await;
        self.swap.disarm();
        let second = match second? {
            Ok(r) => r,
            Err(f) => return Ok(Err(f)),
        };
        if second.has_code(235) {
            return Ok(Ok(()));
        }
        if second.has_code(334) {
            let data: String = second.message().collect::<Vec<_>>().join("");
            let challenge = super::sasl::decode_error_challenge(&data);
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
        self.send_message(envelope, message)
            .await
            .map_err(|f| f.error)
    }

    /// Send a message, saying on failure whether the server may have accepted it.
    ///
    /// The envelope (`MAIL`, `RCPT`, `DATA`) is sent step by step, so a failure before the server's
    /// `354` is known to have sent nothing; once the message data goes out, a broken connection or
    /// a timeout leaves the outcome unknown (the server's `250` may have been lost on the way), and
    /// the error says so. Success is only ever reported with the server's `2xx` for the data.
    pub async fn send_message(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
    ) -> std::result::Result<String, SendFailure> {
        use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
        use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
        let sure = |error| SendFailure {
            error,
            maybe_accepted: false,
        };
        let env = build_envelope(envelope).map_err(sure)?;
        let mut mail_options = vec![];
        let info = self.conn.server_info();
        if !envelope.from.is_ascii() || envelope.to.iter().any(|a| !a.is_ascii()) {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Err(sure(Error::invalid(
                    "to",
                    "the addresses are not ASCII and the SMTP server does not support SMTPUTF8",
                )));
            }
            mail_options.push(MailParameter::SmtpUtfEight);
        }
        if !message.is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                return Err(sure(Error::invalid(
                    "message",
                    "the message is not ASCII and the SMTP server does not support 8BITMIME",
                )));
            }
            mail_options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let mut steps = vec![Mail::new(env.from().cloned(), mail_options).to_string()];
        steps.extend(
            env.to()
                .iter()
                .map(|a| Rcpt::new(a.clone(), vec![]).to_string()),
        );
        steps.push(Data.to_string());
        for step in &steps {
            let verb = step
                .split([' ', ':'])
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            let r = tokio::time::timeout(self.timeout, self.conn.command(Raw(step))).await;
            let error = match r {
                Ok(Ok(_)) => continue,
                Ok(Err(e)) if e.status().is_some() => {
                    smtp_error(&format!("the message was not sent: SMTP {verb} was refused"), &e)
                }
                Ok(Err(e)) => broke(
                    &format!("the message was not sent: the connection to the SMTP server broke at {verb}"),
                    &e,
                ),
                Err(_) => Error::timeout(
                    &format!("the message was not sent: the SMTP server did not answer {verb}"),
                    self.timeout,
                ),
            };
            self.abort().await;
            return Err(sure(error));
        }
        let limit = self.timeout * 4;
        let failure = match tokio::time::timeout(limit, self.conn.message(message)).await {
            Ok(Ok(r)) => return Ok(reply_text(&r)),
            Ok(Err(e)) if e.status().is_some() => sure(smtp_error(
                "the message was not sent: the SMTP server refused it",
                &e,
            )),
            Ok(Err(e)) => SendFailure {
                error: broke(
                    "the connection to the SMTP server broke while the message was being transferred or before the server confirmed it; it may have been accepted, so check before sending it again",
                    &e,
                ),
                maybe_accepted: true,
            },
            Err(_) => SendFailure {
                error: Error::timeout(
                    "waiting for the SMTP server to confirm the message (it may have been accepted, so check before sending it again)",
                    limit,
                ),
                maybe_accepted: true,
            },
        };
        self.abort().await;
        Err(failure)
    }

    /// Give up on the connection (best effort `QUIT`, bounded).
    async fn abort(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.conn.abort()).await;
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

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use lettre::transport::smtp::client::AsyncTokioStream;
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    use super::*;

    /// An SMTP server played from a script, in memory: reads return the script in pieces of at
    /// most `chunk` bytes, then the end of the stream; writes are accepted and dropped.
    #[derive(Debug)]
    struct ScriptedServer {
        script: Vec<u8>,
        pos: usize,
        chunk: usize,
    }

    impl ScriptedServer {
        fn new(script: &[u8], chunk: usize) -> ScriptedServer {
            ScriptedServer {
                script: script.to_vec(),
                pos: 0,
                chunk: chunk.max(1),
            }
        }
    }

    impl AsyncRead for ScriptedServer {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let me = self.get_mut();
            let n = (me.script.len() - me.pos)
                .min(me.chunk)
                .min(buf.remaining());
            buf.put_slice(&me.script[me.pos..me.pos + n]);
            me.pos += n;
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for ScriptedServer {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncTokioStream for ScriptedServer {
        fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
            Ok(std::net::SocketAddr::from(([127, 0, 0, 1], 587)))
        }
    }

    async fn start(script: &[u8], chunk: usize) -> Result<SmtpSession> {
        SmtpSession::start(
            Box::new(ScriptedServer::new(script, chunk)),
            "smtp.test",
            None,
            ConnectTimings::default(),
            Duration::from_secs(5),
            "client.test",
        )
        .await
    }

    /// Found by `tests/fuzz` (smtp_session): lettre panicked on an EHLO line of only whitespace.
    #[tokio::test]
    async fn an_ehlo_line_of_only_whitespace_is_read_not_a_panic() {
        for chunk in [1, 3, 4096] {
            let s = start(
                b"220 mx.test ESMTP\r\n250-mx.test\r\n250- \t \r\n250-AUTH XOAUTH2\r\n250  \r\n\
                  250-mx.test\r\n250- \r\n250-AUTH XOAUTH2\r\n250 \xe3\x80\x80\r\n",
                chunk,
            )
            .await
            .unwrap();
            assert_eq!(s.sasl_mechanisms(), vec!["XOAUTH2".to_string()]);
        }
    }

    /// The fuzzer's own input for the panic above, as it found it (tests/fuzz smtp_session, read
    /// in pieces of 10 bytes; the oracle in tests/fuzz-support replays it over TCP too).
    #[tokio::test]
    async fn the_fuzzers_ehlo_input_is_read_not_a_panic() {
        let _ = start(
            b"223 623 6-?-\n\rQ223 6\n223 6-?/\n\r\n223-?-\n\rQ2\x7f\0\0\x002--?-\r2 236A\n223 6-?\n447 )D-\0\xca\x9a/\r\n223 \n\r\n22\n3-?-\n\rQ-?-\n\rQ223 6\n227 6-?/\n\r\n223-?-\n\rQ2\n*\x7f\0\0\0(/\n223 \n\r\n223-?-\n\rQ-?-\n\rQ22\x0c\n4\n4?4?4077\n\n?777236\n223?-\0\n",
            0x0a,
        )
        .await;
    }

    #[tokio::test]
    async fn the_blank_text_guard_passes_ordinary_replies_through_unchanged() {
        let script = b"220 mx.test ESMTP\r\n250-mx.test Hello\r\n250-SIZE 35882577\r\n250 AUTH LOGIN XOAUTH2 OAUTHBEARER\r\n";
        for chunk in [1, 2, 7, 4096] {
            let mut g = BlankReplyText::new(Box::new(ScriptedServer::new(script, chunk)));
            let mut out = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut g, &mut out)
                .await
                .unwrap();
            assert_eq!(out, script.to_vec());
        }
        let mut g = BlankReplyText::new(Box::new(ScriptedServer::new(
            b"250- \r\n250-x \r\n250 \r\nno end",
            2,
        )));
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut g, &mut out)
            .await
            .unwrap();
        assert_eq!(out, b"250-\r\n250-x \r\n250 \r\nno end".to_vec());
    }

    #[tokio::test]
    async fn multi_line_replies_before_starttls() {
        let mut conn = LineConn::new(
            ScriptedServer::new(
                b"220-mx.test ESMTP\r\n220 ready\r\n250-mx.test\r\n250-STARTTLS\r\n250 SIZE 1\r\n220 go ahead\r\n",
                5,
            ),
            "smtp.test",
            Duration::from_secs(5),
        );
        let g = starttls_preamble(&mut conn, 587, "client.test")
            .await
            .unwrap();
        assert_eq!(g, vec!["mx.test ESMTP".to_string(), "ready".to_string()]);
        let mut conn = LineConn::new(
            ScriptedServer::new(b"220 mx\r\n250-mx\r\n250 SIZE 1\r\n", 64),
            "smtp.test",
            Duration::from_secs(5),
        );
        let e = starttls_preamble(&mut conn, 587, "client.test")
            .await
            .unwrap_err();
        assert!(
            e.message().contains("does not offer STARTTLS"),
            "{}",
            e.message()
        );
    }
}
