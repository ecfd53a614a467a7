//! Connections for the mail protocols: TCP with timeouts, implicit TLS or STARTTLS on the one
//! rustls configuration, and a line reader with a length limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::{Error, ErrorKind, Result};

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

/// A byte stream the protocols run on.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A boxed stream.
pub type BoxedIo = Box<dyn Io>;

/// What happened while connecting (for Test reports).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConnectTimings {
    /// TCP connect time.
    pub connect_ms: u64,
    /// TLS handshake time.
    pub tls_ms: Option<u64>,
    /// Negotiated TLS version.
    pub tls_version: Option<String>,
}

fn io_error(kind: ErrorKind, what: String, e: std::io::Error) -> Error {
    Error::new(kind, format!("{what}: {e}"))
        .with_evidence(|ev| ev.server_reply = Some(e.to_string()))
}

/// Connect TCP to `host:port` within `timeout`.
pub async fn connect_tcp(
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
            let kind = ErrorKind::Network;
            return Err(io_error(kind, what, e)
                .with_evidence(|ev| ev.endpoint = Some(format!("{host}:{port}"))));
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

/// Do the TLS handshake on `stream` for `host`.
pub async fn tls_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    host: &str,
    config: Arc<rustls::ClientConfig>,
    timeout: Duration,
    t: &mut ConnectTimings,
) -> Result<tokio_rustls::client::TlsStream<S>> {
    let started = Instant::now();
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| Error::invalid("host", format!("'{host}' is not a valid server name")))?;
    let what = format!("TLS handshake with {host}");
    let tls = match tokio::time::timeout(timeout, TlsConnector::from(config).connect(name, stream))
        .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let text = e.to_string();
            let msg = if text.contains("UnknownIssuer") || text.contains("invalid peer certificate")
            {
                format!("{what}: the server's certificate is not trusted ({text}); add the issuing CA with 'extra_ca_file' if this is your own server")
            } else {
                format!("{what}: {text}")
            };
            return Err(
                Error::new(ErrorKind::Tls, msg).with_evidence(|ev| ev.server_reply = Some(text))
            );
        }
        Err(_) => return Err(Error::timeout(&what, timeout)),
    };
    t.tls_ms = Some(started.elapsed().as_millis() as u64);
    t.tls_version = tls
        .get_ref()
        .1
        .protocol_version()
        .map(|v| format!("{v:?}").replace("TLSv1_", "TLS 1."));
    Ok(tls)
}

/// A line-oriented connection with a read limit per line and a timeout per operation.
pub struct LineConn<S = BoxedIo> {
    inner: BufReader<S>,
    timeout: Duration,
    max_line: usize,
    host: String,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> LineConn<S> {
    /// Wrap a stream.
    pub fn new(io: S, host: &str, timeout: Duration) -> LineConn<S> {
        LineConn {
            inner: BufReader::new(io),
            timeout,
            max_line: 64 * 1024,
            host: host.to_string(),
        }
    }

    /// The server's host name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Read one line (without CRLF). An EOF is an error naming what was expected.
    pub async fn read_line(&mut self) -> Result<String> {
        let mut buf = Vec::new();
        let fut = async {
            loop {
                let available = self.inner.fill_buf().await?;
                if available.is_empty() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ));
                }
                let (done, used) = match available.iter().position(|&b| b == b'\n') {
                    Some(i) => (true, i + 1),
                    None => (false, available.len()),
                };
                buf.extend_from_slice(&available[..used]);
                self.inner.consume(used);
                if buf.len() > self.max_line {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "the server sent a line longer than 64 KiB",
                    ));
                }
                if done {
                    return Ok(());
                }
            }
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let kind = if e.kind() == std::io::ErrorKind::InvalidData {
                    ErrorKind::MailServer
                } else {
                    ErrorKind::Network
                };
                return Err(io_error(kind, format!("reading from {}", self.host), e));
            }
            Err(_) => {
                return Err(Error::timeout(
                    &format!("waiting for {}", self.host),
                    self.timeout,
                ))
            }
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Write `line` followed by CRLF.
    pub async fn write_line(&mut self, line: &str) -> Result<()> {
        let host = self.host.clone();
        let fut = async {
            let w = self.inner.get_mut();
            w.write_all(line.as_bytes()).await?;
            w.write_all(b"\r\n").await?;
            w.flush().await
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(io_error(
                ErrorKind::Network,
                format!("writing to {host}"),
                e,
            )),
            Err(_) => Err(Error::timeout(&format!("writing to {host}"), self.timeout)),
        }
    }

    /// Take the stream back for a TLS upgrade. Fails if the server sent bytes ahead of the
    /// handshake (a STARTTLS command-injection attempt, CVE-2011-0411 style).
    pub fn into_inner_for_starttls(self) -> Result<S> {
        if !self.inner.buffer().is_empty() {
            return Err(Error::new(
                ErrorKind::MailServer,
                format!(
                    "{} sent data before the TLS handshake; refusing to continue",
                    self.host
                ),
            ));
        }
        Ok(self.inner.into_inner())
    }
}
