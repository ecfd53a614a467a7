//! A mail server played from a script: in memory for the oracles ([`ScriptedStream`], handed to
//! mailconnect-core's `start` functions), or on 127.0.0.1 for tests of the `connect` functions
//! ([`with_server`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpListener;

/// A server's side of a connection, in memory: each read returns the next at most `chunk` bytes of
/// the script (so the client sees the server's writes split exactly where the fuzzer chose, one
/// read per write), then the end of the stream; whatever the client writes is taken whole and
/// dropped. Nothing ever waits, so a session costs no wake-ups, sockets or ports.
#[derive(Debug)]
pub struct ScriptedStream {
    script: Vec<u8>,
    pos: usize,
    chunk: usize,
    written: usize,
}

impl ScriptedStream {
    /// A server that sends `script` in writes of at most `chunk` bytes (at least 1), then closes.
    pub fn new(script: &[u8], chunk: usize) -> ScriptedStream {
        ScriptedStream {
            script: script.to_vec(),
            pos: 0,
            chunk: chunk.max(1),
            written: 0,
        }
    }

    /// How many bytes the client wrote.
    pub fn written(&self) -> usize {
        self.written
    }
}

impl AsyncRead for ScriptedStream {
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

impl AsyncWrite for ScriptedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        me.written += buf.len();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// lettre's stream type, for `SmtpSession::start`. The peer is a made-up submission port.
impl lettre::transport::smtp::client::AsyncTokioStream for ScriptedStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        Ok(std::net::SocketAddr::from(([127, 0, 0, 1], 587)))
    }
}

// ----- on 127.0.0.1 ------------------------------------------------------------------------------

/// The most writes [`with_server`] splits a script into.
pub const MAX_WRITES: usize = 32;

/// Run `client` against a server on a fresh port of 127.0.0.1 that accepts one connection, sends
/// `script` in writes of at most `chunk` bytes, then ends its side (the client reads the script,
/// then the end of the stream) and reads whatever the client sends until the client closes.
/// `client` gets the port. The server stops when `client` returns. The oracles use
/// [`ScriptedStream`] (several times faster); this is for tests of the `connect` functions.
///
/// The chunk size is what the server writes at a time, with a yield to the client in between;
/// TCP may still join chunks, so it is a hint to the client's reads, not a guarantee. A script is
/// sent in at most [`MAX_WRITES`] writes (larger chunks for a long script): every write costs the
/// client a wake-up and a read, and a fuzzer runs thousands of sessions a second.
pub async fn with_server<T, Fut: Future<Output = T>>(
    script: &[u8],
    chunk: usize,
    client: impl FnOnce(u16) -> Fut,
) -> T {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap_or_else(|e| panic!("cannot listen on 127.0.0.1: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("listener address: {e}"))
        .port();
    let chunk = chunk.max(1).max(script.len().div_ceil(MAX_WRITES));
    let serve = serve(listener, script, chunk);
    let client = client(port);
    tokio::pin!(serve, client);
    let mut serving = true;
    loop {
        tokio::select! {
            out = &mut client => return out,
            _ = &mut serve, if serving => serving = false,
        }
    }
}

async fn serve(listener: TcpListener, script: &[u8], chunk: usize) -> std::io::Result<()> {
    let (mut s, _) = listener.accept().await?;
    drop(listener);
    s.set_nodelay(true)?;
    // Closing resets the connection instead of leaving it in TIME_WAIT: a fuzzing run opens
    // hundreds of thousands of connections.
    s.set_zero_linger()?;
    for c in script.chunks(chunk) {
        s.write_all(c).await?;
        tokio::task::yield_now().await;
    }
    s.shutdown().await?;
    let mut sink = [0u8; 4096];
    while s.read(&mut sink).await? != 0 {}
    Ok(())
}
