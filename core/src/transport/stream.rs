//! Connections for the mail protocols: TCP with timeouts, implicit TLS or STARTTLS on the one
//! rustls configuration, and a line reader with a length limit.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio_rustls::TlsConnector;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

pub use crate::model::Security;

/// A byte stream the protocols run on.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A boxed stream.
pub type BoxedIo = Box<dyn Io>;

pub use crate::net::ConnectTimings;

fn io_error(kind: ErrorKind, what: String, e: std::io::Error) -> Error {
    let err = Error::new(kind, format!("{what}: {e}"));
    let err = if kind == ErrorKind::Network && crate::error::is_closed_connection(&e) {
        err.with_code(CLOSED)
    } else {
        err
    };
    err.with_evidence(|ev| ev.server_reply = Some(e.to_string()))
}

/// The diagnostic code of a connection the server closed or reset.
pub const CLOSED: &str = "MC-CONNECTION-CLOSED";

/// Do the TLS handshake on `stream` for `host`.
pub async fn tls_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    host: &str,
    config: Arc<rustls::ClientConfig>,
    timeout: Duration,
    t: &mut ConnectTimings,
) -> Result<tokio_rustls::client::TlsStream<S>> {
    let started = Instant::now();
    let name = ServerName::try_from(host.to_string()).map_err(|_| {
        Error::invalid(
            "host",
            format!("'{}' is not a valid server name", crate::error::quote(host)),
        )
    })?;
    let what = format!("TLS handshake with {host}");
    let handshake = crate::tls::noting_refused_issuer(tokio::time::timeout(
        timeout,
        TlsConnector::from(config).connect(name, stream),
    ));
    let tls = match handshake.await {
        (Ok(Ok(s)), _) => s,
        (Ok(Err(e)), issuer) => {
            let text = e.to_string();
            let by = issuer
                .as_deref()
                .map(|i| format!(", issued by '{i}'"))
                .unwrap_or_default();
            let msg = if text.contains("UnknownIssuer") || text.contains("invalid peer certificate")
            {
                format!("{what}: the certificate presented is not trusted ({text}{by}); if a proxy or firewall inspects TLS, give its CA with 'extra_ca_file' (or exempt this server from inspection); if this is your own server, add its CA")
            } else {
                format!("{what}: {text}")
            };
            return Err(Error::new(ErrorKind::Tls, msg).with_evidence(|ev| {
                ev.server_reply = Some(text);
                ev.certificate_issuer = issuer;
            }));
        }
        (Err(_), _) => return Err(Error::timeout(&what, timeout)),
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

/// A stream that puts a secret on the wire where the protocol library above it writes a
/// placeholder, so the library never holds the secret: async-imap logs every line it writes at
/// TRACE (through the `log` crate) and lettre turns every command into a `String` it does not wipe.
///
/// [`SwapSlot::arm`] sets the placeholder and its replacement; the first write whose buffer is
/// exactly the placeholder sends the replacement instead (libraries hand a line over in one
/// `write_all`, and hand the same buffer again after a `Pending`). The replacement is wiped when
/// written or disarmed.
pub struct SecretSwap<S> {
    io: S,
    slot: SwapSlot,
}

/// The shared handle that arms a [`SecretSwap`].
#[derive(Clone, Default)]
pub struct SwapSlot(Arc<Mutex<Option<Armed>>>);

struct Armed {
    placeholder: Vec<u8>,
    replacement: Zeroizing<Vec<u8>>,
    written: usize,
}

impl SwapSlot {
    /// Write `replacement` where `placeholder` is written next.
    pub fn arm(&self, placeholder: &[u8], replacement: Zeroizing<Vec<u8>>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(Armed {
            placeholder: placeholder.to_vec(),
            replacement,
            written: 0,
        });
    }

    /// Forget (and wipe) a replacement that was not used.
    pub fn disarm(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Whether a replacement is waiting.
    pub fn is_armed(&self) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }
}

impl<S> SecretSwap<S> {
    /// Wrap `io`; arm it through `slot`.
    pub fn new(io: S, slot: SwapSlot) -> SecretSwap<S> {
        SecretSwap { io, slot }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }
}

impl<S> std::fmt::Debug for SecretSwap<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretSwap")
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SecretSwap<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SecretSwap<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let mut guard = this.slot.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = guard.as_mut() {
            if a.written > 0 || buf == a.placeholder.as_slice() {
                while a.written < a.replacement.len() {
                    match Pin::new(&mut this.io).poll_write(cx, &a.replacement[a.written..]) {
                        Poll::Ready(Ok(0)) => {
                            return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                        }
                        Poll::Ready(Ok(n)) => a.written += n,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                *guard = None;
                return Poll::Ready(Ok(buf.len()));
            }
        }
        drop(guard);
        Pin::new(&mut this.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn the_secret_goes_out_where_the_placeholder_was_written_in_partial_writes() {
        // A tiny pipe, so the replacement goes out in many partial writes.
        let (near, mut far) = tokio::io::duplex(7);
        let slot = SwapSlot::default();
        let mut s = SecretSwap::new(near, slot.clone());
        slot.arm(
            b"PLACEHOLDER\r\n",
            Zeroizing::new(b"the-real-secret-line\r\n".to_vec()),
        );
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            far.read_to_end(&mut got).await.unwrap();
            got
        });
        s.write_all(b"AUTH XOAUTH2\r\n").await.unwrap();
        assert!(slot.is_armed(), "other lines pass as they are");
        s.write_all(b"PLACEHOLDER\r\n").await.unwrap();
        assert!(!slot.is_armed(), "used once, then gone");
        s.write_all(b"PLACEHOLDER\r\n").await.unwrap();
        s.shutdown().await.unwrap();
        drop(s);
        assert_eq!(
            String::from_utf8(reader.await.unwrap()).unwrap(),
            "AUTH XOAUTH2\r\nthe-real-secret-line\r\nPLACEHOLDER\r\n"
        );
    }
}
