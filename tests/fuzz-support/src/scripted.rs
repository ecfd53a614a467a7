//! A mail server played from a script, on 127.0.0.1: the client connects to it as to any server,
//! through mailconnect-core's public `connect` functions.

use std::future::Future;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The most writes [`with_server`] splits a script into.
pub const MAX_WRITES: usize = 32;

/// Run `client` against a server on a fresh port of 127.0.0.1 that accepts one connection, sends
/// `script` in writes of at most `chunk` bytes, then ends its side (the client reads the script,
/// then the end of the stream) and reads whatever the client sends until the client closes.
/// `client` gets the port. The server stops when `client` returns.
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
