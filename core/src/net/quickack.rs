//! Prompt acknowledgements on mail connections.
//!
//! Mail protocols are request and answer: the client writes a command and waits. Some servers
//! write one answer in two segments with Nagle's algorithm on; Postfix does after the TLS 1.3
//! handshake (the session tickets, then the reply to the first `EHLO`). Nagle holds the second
//! segment until the client acknowledges the first, and the client's kernel delays that
//! acknowledgement because the client has nothing to send: 40 ms on Linux, up to 200 ms on
//! Windows. Measured on the sandbox's Postfix, that stall was 40 of the 43 ms of an SMTP login
//! (BENCHMARKS.md, issue 18), the same for curl and Python's smtplib.
//!
//! [`MailTcp`] removes it on the client's side, where the library can act for every server:
//! - Linux and Android: whenever a read has to wait, `TCP_QUICKACK` is set. That sends an
//!   acknowledgement the kernel holds back at once and leaves the kernel's delayed-ACK
//!   ("ping-pong") mode; the kernel drops back into that mode by itself, so it is set again at
//!   the next wait (one `setsockopt`, only when no data is ready, so bulk reads do not pay it).
//! - Windows: `SIO_TCP_SET_ACK_FREQUENCY` = 1 once per connection (the socket's own form of the
//!   `TcpAckFrequency` registry value): every segment is acknowledged at once. Systems without it
//!   (before Windows 10 1703, Wine) refuse it, and the connection works as before.
//! - Elsewhere nothing changes.
//!
//! A failure to set either option is ignored: it costs time, never correctness.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP connection to a mail server (or to the proxy carrying it) that acknowledges promptly;
/// see the module documentation.
#[derive(Debug)]
pub struct MailTcp {
    inner: TcpStream,
}

impl MailTcp {
    /// Wrap a connected stream.
    pub fn new(inner: TcpStream) -> MailTcp {
        ack_every_segment(&inner);
        MailTcp { inner }
    }

    /// The stream itself.
    pub fn get_ref(&self) -> &TcpStream {
        &self.inner
    }

    /// The server's (or proxy's) address.
    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.peer_addr()
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn before_waiting(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_tcp_quickack(true);
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn before_waiting(_: &TcpStream) {}

#[cfg(windows)]
fn ack_every_segment(s: &TcpStream) {
    use std::os::windows::io::AsRawSocket;
    use windows_sys::Win32::Networking::WinSock::{WSAIoctl, SIO_TCP_SET_ACK_FREQUENCY, SOCKET};
    let frequency: u32 = 1;
    let mut returned: u32 = 0;
    // SAFETY: the socket is open for the duration of the call; the input buffer is a live u32
    // of the stated size; no output buffer, overlapped structure or completion routine.
    unsafe {
        WSAIoctl(
            s.as_raw_socket() as SOCKET,
            SIO_TCP_SET_ACK_FREQUENCY,
            (&frequency as *const u32).cast(),
            std::mem::size_of::<u32>() as u32,
            std::ptr::null_mut(),
            0,
            &mut returned,
            std::ptr::null_mut(),
            None,
        );
    }
}

#[cfg(not(windows))]
fn ack_every_segment(_: &TcpStream) {}

impl AsyncRead for MailTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if r.is_pending() {
            before_waiting(&self.inner);
        }
        r
    }
}

impl AsyncWrite for MailTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Reads that wait and reads that find data ready both deliver every byte, in order.
    #[tokio::test]
    async fn carries_bytes_both_ways() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut line = [0u8; 5];
            s.read_exact(&mut line).await.unwrap();
            // Two writes, as a Nagle-ing server answers.
            s.write_all(b"250-first\r\n").await.unwrap();
            tokio::task::yield_now().await;
            s.write_all(b"250 second\r\n").await.unwrap();
            line
        });
        let mut c = MailTcp::new(TcpStream::connect(addr).await.unwrap());
        c.write_all(b"EHLO\n").await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4];
        while got.len() < 23 {
            let n = c.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed early after {got:?}");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"250-first\r\n250 second\r\n");
        assert_eq!(&server.await.unwrap(), b"EHLO\n");
        assert_eq!(c.peer_addr().unwrap(), addr);
        assert!(c.get_ref().local_addr().is_ok());
    }
}
