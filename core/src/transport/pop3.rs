//! POP3 (RFC 1939, 2449 CAPA, 2595 STLS, 5034 AUTH) with SASL XOAUTH2 and OAUTHBEARER.
//!
//! Our own module because no maintained crate does the two-step `AUTH XOAUTH2` Microsoft documents
//! (a command line is capped at 255 octets by RFC 5034 and tokens are ~2 KB): `AUTH XOAUTH2`, the
//! server answers `+`, the client sends the base64 on its own line. When the server answers the
//! credentials with a `+ <base64 JSON>` error challenge, the client sends an empty line (XOAUTH2) or
//! `AQ==` (OAUTHBEARER) and reads the final `-ERR`; the JSON is kept for diagnostics.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::stream::{self, BoxedIo, ConnectTimings, LineConn, Security};
use crate::error::{Error, ErrorKind, Result};

/// A POP3 reply status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK text`.
    Ok(String),
    /// `-ERR text`.
    Err(String),
    /// `+ data` (SASL continuation).
    Continue(String),
}

/// Parse one reply line.
pub fn parse_reply(line: &str) -> Result<Reply> {
    if let Some(rest) = line.strip_prefix("+OK") {
        return Ok(Reply::Ok(rest.trim_start().to_string()));
    }
    if let Some(rest) = line.strip_prefix("-ERR") {
        return Ok(Reply::Err(rest.trim_start().to_string()));
    }
    if line == "+" || line.starts_with("+ ") {
        return Ok(Reply::Continue(line[1..].trim_start().to_string()));
    }
    Err(Error::new(
        ErrorKind::MailServer,
        format!(
            "the POP3 server sent an unreadable reply: {}",
            crate::http::sanitize(line)
        ),
    )
    .with_evidence(|ev| ev.server_reply = Some(crate::http::sanitize(line))))
}

/// Why an AUTH failed.
#[derive(Debug, Clone)]
pub struct AuthFailure {
    /// The final `-ERR` text.
    pub reply: String,
    /// The decoded JSON of a `+` error challenge, if the server sent one.
    pub challenge: Option<String>,
}

/// Which SASL mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// XOAUTH2.
    Xoauth2,
    /// OAUTHBEARER (RFC 7628).
    Oauthbearer,
}

impl Mechanism {
    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Xoauth2 => "XOAUTH2",
            Mechanism::Oauthbearer => "OAUTHBEARER",
        }
    }
}

/// A message's number and size from `LIST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listing {
    /// Message number (1-based, valid in this session).
    pub number: u32,
    /// Size in octets.
    pub size: u64,
}

/// A connected POP3 session.
pub struct Pop3 {
    conn: LineConn,
    /// The greeting text.
    pub greeting: String,
    /// Capabilities from `CAPA` (upper-cased first words kept as sent).
    pub capabilities: Vec<String>,
    /// Connection timings.
    pub timings: ConnectTimings,
    /// Largest message `RETR` accepts.
    pub max_message: u64,
}

impl Pop3 {
    /// Connect, read the greeting, secure the connection as asked, and read the capabilities.
    pub async fn connect(
        host: &str,
        port: u16,
        route: &crate::net::Route,
        security: Security,
        tls: Arc<rustls::ClientConfig>,
        timeout: Duration,
    ) -> Result<Pop3> {
        let mut timings = ConnectTimings::default();
        let tcp = crate::net::dial(route, host, port, timeout, &mut timings).await?;
        let io: BoxedIo = match security {
            Security::Tls => Box::new(
                stream::tls_handshake(tcp, host, tls.clone(), timeout, &mut timings).await?,
            ),
            _ => Box::new(tcp),
        };
        let mut pop = Pop3::start(io, host, timeout, timings).await?;
        if security == Security::Starttls {
            if !pop.has_capability("STLS") {
                return Err(Error::new(ErrorKind::MailServer, format!("the POP3 server {host}:{port} does not offer STLS; use port 995 with implicit TLS")));
            }
            pop.simple("STLS").await?;
            let Pop3 {
                conn,
                greeting,
                mut timings,
                max_message,
                ..
            } = pop;
            let io = conn.into_inner_for_starttls()?;
            let tls_io: BoxedIo =
                Box::new(stream::tls_handshake(io, host, tls, timeout, &mut timings).await?);
            pop = Pop3 {
                conn: LineConn::new(tls_io, host, timeout),
                greeting,
                capabilities: vec![],
                timings,
                max_message,
            };
            pop.capabilities = pop.capa().await.unwrap_or_default();
        }
        Ok(pop)
    }

    /// Read the greeting and the capabilities (`CAPA`) on a stream that is already connected and,
    /// if it is to be, secured: the second half of [`Pop3::connect`], on any stream (an in-memory
    /// one in tests and fuzzing). Hosts use the `Client` API, which connects through
    /// [`Pop3::connect`].
    ///
    /// It sends only `CAPA` and never authenticates. It never secures the stream (no TLS, no
    /// `STLS`): whatever `io` is, is what the session runs on, so a caller must never hand it an
    /// unsecured connection to a real server (the token goes over it later). `timings` are kept
    /// as given; `host` names the server in errors.
    pub async fn start(
        io: BoxedIo,
        host: &str,
        timeout: Duration,
        timings: ConnectTimings,
    ) -> Result<Pop3> {
        let mut conn = LineConn::new(io, host, timeout);
        let greeting = match parse_reply(&conn.read_line().await?)? {
            Reply::Ok(t) => t,
            Reply::Err(t) | Reply::Continue(t) => {
                return Err(Error::new(
                    ErrorKind::MailServer,
                    format!("the POP3 server {host} refused the connection: {t}"),
                )
                .with_evidence(|ev| ev.server_reply = Some(t)))
            }
        };
        let mut pop = Pop3 {
            conn,
            greeting,
            capabilities: vec![],
            timings,
            max_message: 64 * 1024 * 1024,
        };
        pop.capabilities = pop.capa().await.unwrap_or_default();
        Ok(pop)
    }

    /// Whether `CAPA` listed `name` (first word, case-insensitive).
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.iter().any(|c| {
            c.split_whitespace()
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case(name))
        })
    }

    /// SASL mechanisms offered.
    pub fn sasl_mechanisms(&self) -> Vec<String> {
        self.capabilities
            .iter()
            .find(|c| {
                c.split_whitespace()
                    .next()
                    .is_some_and(|w| w.eq_ignore_ascii_case("SASL"))
            })
            .map(|c| {
                c.split_whitespace()
                    .skip(1)
                    .map(|s| s.to_ascii_uppercase())
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn capa(&mut self) -> Result<Vec<String>> {
        self.conn.write_line("CAPA").await?;
        match parse_reply(&self.conn.read_line().await?)? {
            Reply::Ok(_) => {}
            _ => return Ok(vec![]),
        }
        let body = self.read_multiline(1024 * 1024).await?;
        Ok(String::from_utf8_lossy(&body)
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// Send a one-line command and expect `+OK`.
    async fn simple(&mut self, cmd: &str) -> Result<String> {
        self.conn.write_line(cmd).await?;
        let verb = cmd.split(' ').next().unwrap_or(cmd).to_string();
        match parse_reply(&self.conn.read_line().await?)? {
            Reply::Ok(t) => Ok(t),
            Reply::Err(t) | Reply::Continue(t) => Err(Error::new(
                ErrorKind::MailServer,
                format!("POP3 {verb} failed: {t}"),
            )
            .with_evidence(|ev| ev.server_reply = Some(format!("-ERR {t}")))),
        }
    }

    /// Authenticate with `mechanism` and the ready initial response (base64). The initial response is
    /// never sent on the AUTH line (RFC 5034's 255-octet limit).
    pub async fn authenticate(
        &mut self,
        mechanism: Mechanism,
        initial_response: &SecretString,
    ) -> Result<std::result::Result<(), AuthFailure>> {
        self.conn
            .write_line(&format!("AUTH {}", mechanism.name()))
            .await?;
        match parse_reply(&self.conn.read_line().await?)? {
            Reply::Continue(_) => {}
            Reply::Err(t) => {
                return Ok(Err(AuthFailure {
                    reply: t,
                    challenge: None,
                }))
            }
            Reply::Ok(t) => {
                return Err(Error::new(
                    ErrorKind::MailServer,
                    format!("POP3 AUTH answered +OK before credentials were sent: {t}"),
                ))
            }
        }
        self.conn
            .write_line(initial_response.expose_secret())
            .await?;
        match parse_reply(&self.conn.read_line().await?)? {
            Reply::Ok(_) => Ok(Ok(())),
            Reply::Err(t) => Ok(Err(AuthFailure {
                reply: t,
                challenge: None,
            })),
            Reply::Continue(data) => {
                let challenge = super::sasl::decode_error_challenge(&data);
                let answer = match mechanism {
                    Mechanism::Xoauth2 => "",
                    Mechanism::Oauthbearer => "AQ==",
                };
                self.conn.write_line(answer).await?;
                let reply = match parse_reply(&self.conn.read_line().await?)? {
                    Reply::Err(t) => t,
                    Reply::Ok(t) => {
                        return Err(Error::new(
                            ErrorKind::MailServer,
                            format!("POP3 AUTH succeeded after an error challenge: {t}"),
                        ))
                    }
                    Reply::Continue(t) => t,
                };
                Ok(Err(AuthFailure { reply, challenge }))
            }
        }
    }

    /// `STAT`: message count and total size.
    pub async fn stat(&mut self) -> Result<(u32, u64)> {
        let t = self.simple("STAT").await?;
        let mut it = t.split_whitespace();
        match (
            it.next().and_then(|s| s.parse().ok()),
            it.next().and_then(|s| s.parse().ok()),
        ) {
            (Some(n), Some(s)) => Ok((n, s)),
            _ => Err(Error::new(
                ErrorKind::MailServer,
                format!(
                    "POP3 STAT reply is unreadable: {}",
                    crate::http::sanitize(&t)
                ),
            )),
        }
    }

    /// `LIST`: every message's number and size.
    pub async fn list(&mut self) -> Result<Vec<Listing>> {
        self.simple("LIST").await?;
        let body = self.read_multiline(16 * 1024 * 1024).await?;
        let mut out = Vec::new();
        for line in String::from_utf8_lossy(&body).lines() {
            let mut it = line.split_whitespace();
            if let (Some(n), Some(s)) = (
                it.next().and_then(|s| s.parse().ok()),
                it.next().and_then(|s| s.parse().ok()),
            ) {
                out.push(Listing { number: n, size: s });
            }
        }
        Ok(out)
    }

    /// `UIDL`: every message's number and unique id.
    pub async fn uidl(&mut self) -> Result<Vec<(u32, String)>> {
        self.simple("UIDL").await?;
        let body = self.read_multiline(16 * 1024 * 1024).await?;
        let mut out = Vec::new();
        for line in String::from_utf8_lossy(&body).lines() {
            let mut it = line.split_whitespace();
            if let (Some(n), Some(u)) = (it.next().and_then(|s| s.parse().ok()), it.next()) {
                out.push((n, u.to_string()));
            }
        }
        Ok(out)
    }

    /// `RETR n`: the message, dot-unstuffed, at most `max_message` octets.
    pub async fn retr(&mut self, n: u32) -> Result<Vec<u8>> {
        self.simple(&format!("RETR {n}")).await?;
        let max = self.max_message;
        self.read_multiline(max).await
    }

    /// `TOP n lines`: the header and the first `lines` body lines.
    pub async fn top(&mut self, n: u32, lines: u32) -> Result<Vec<u8>> {
        self.simple(&format!("TOP {n} {lines}")).await?;
        self.read_multiline(4 * 1024 * 1024).await
    }

    /// `DELE n`: mark for deletion (done at QUIT).
    pub async fn dele(&mut self, n: u32) -> Result<()> {
        self.simple(&format!("DELE {n}")).await.map(|_| ())
    }

    /// `NOOP`.
    pub async fn noop(&mut self) -> Result<()> {
        self.simple("NOOP").await.map(|_| ())
    }

    /// `QUIT`: ends the session and commits deletions.
    pub async fn quit(mut self) -> Result<()> {
        self.simple("QUIT").await.map(|_| ())
    }

    /// Read a multi-line body up to the terminating `.`, undoing dot-stuffing, with CRLF line ends.
    async fn read_multiline(&mut self, max: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let line = self.conn.read_line().await?;
            if line == "." {
                return Ok(out);
            }
            let line = line.strip_prefix('.').unwrap_or(&line);
            if out.len() as u64 + line.len() as u64 + 2 > max {
                return Err(Error::new(
                    ErrorKind::MailServer,
                    format!("a POP3 response is larger than the limit of {max} octets"),
                ));
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies() {
        assert_eq!(
            parse_reply("+OK Logged in.").unwrap(),
            Reply::Ok("Logged in.".into())
        );
        assert_eq!(
            parse_reply("-ERR [AUTH] Authentication failed.").unwrap(),
            Reply::Err("[AUTH] Authentication failed.".into())
        );
        assert_eq!(
            parse_reply("+ eyJzdGF0dXMiOiI0MDEifQ==").unwrap(),
            Reply::Continue("eyJzdGF0dXMiOiI0MDEifQ==".into())
        );
        assert_eq!(parse_reply("+").unwrap(), Reply::Continue(String::new()));
        assert!(parse_reply("* OK IMAP").is_err());
        assert!(parse_reply("").is_err());
    }
}
