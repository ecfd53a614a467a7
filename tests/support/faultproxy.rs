//! A TCP fault proxy for the mail-server tests: it stands between the library and a real server of
//! the sandbox stack and cuts the connection at a chosen point, with a TCP reset (RST), the way a
//! NAT timeout, a crashing middlebox or a server restart does.
//!
//! The stack's servers speak implicit TLS, so the proxy terminates TLS with the stack's own server
//! certificate (the library already trusts the stack's CA) and opens its own TLS connection to the
//! server. In between it sees the protocol in clear and can cut
//! - after N bytes in one direction ([`Cut::AfterBytes`]), or
//! - just before or just after a byte pattern in one direction ([`Cut::Before`], [`Cut::After`]),
//!
//! on the n-th connection it accepts (counted from 1), so a reconnect can be let through. What is
//! before the cut point is forwarded; then both sides are reset (`SO_LINGER` 0, then close).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::rustls;

use crate::MailStack;

/// Which way the bytes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the library to the server (commands, message data).
    FromClient,
    /// From the server to the library (replies, fetched messages).
    FromServer,
}

/// Where to cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cut {
    /// After this many bytes (in clear) have been forwarded in the direction.
    AfterBytes(usize),
    /// Just before the pattern: the pattern and everything after it never arrive.
    Before(Vec<u8>),
    /// Just after the pattern: the pattern arrives, nothing after it.
    After(Vec<u8>),
}

/// A cut on one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The connection it applies to (1 = the first one the proxy accepts).
    pub connection: usize,
    /// The direction the cut is counted in.
    pub direction: Direction,
    /// Where.
    pub cut: Cut,
}

impl Fault {
    /// Cut connection `n` in `direction` just before `pattern`.
    pub fn before(n: usize, direction: Direction, pattern: &str) -> Fault {
        Fault {
            connection: n,
            direction,
            cut: Cut::Before(pattern.as_bytes().to_vec()),
        }
    }

    /// Cut connection `n` in `direction` just after `pattern`.
    pub fn after(n: usize, direction: Direction, pattern: &str) -> Fault {
        Fault {
            connection: n,
            direction,
            cut: Cut::After(pattern.as_bytes().to_vec()),
        }
    }

    /// Cut connection `n` after `bytes` bytes in `direction`.
    pub fn after_bytes(n: usize, direction: Direction, bytes: usize) -> Fault {
        Fault {
            connection: n,
            direction,
            cut: Cut::AfterBytes(bytes),
        }
    }
}

#[derive(Default)]
struct Shared {
    faults: Mutex<Vec<Fault>>,
    connections: AtomicUsize,
    resets: AtomicUsize,
}

impl Shared {
    fn faults_of(&self, n: usize) -> Vec<Fault> {
        let all = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        all.iter().filter(|f| f.connection == n).cloned().collect()
    }
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The certificates of a PEM file.
pub(crate) fn pem_certs(path: &std::path::Path) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    let pem = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS server presenting the chain in `chain_pem` (leaf first) with the key in `key_pem`.
pub(crate) fn server_config(
    chain_pem: &std::path::Path,
    key_pem: &std::path::Path,
) -> rustls::ServerConfig {
    let key = std::fs::read(key_pem).unwrap_or_else(|e| panic!("{}: {e}", key_pem.display()));
    let key = rustls_pemfile::private_key(&mut key.as_slice())
        .expect("server key readable")
        .expect("a private key");
    rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(pem_certs(chain_pem), key)
        .expect("server certificate")
}

/// A TLS client trusting only the certificates in `ca_pem`.
pub(crate) fn client_config(ca_pem: &std::path::Path) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for c in pem_certs(ca_pem) {
        roots.add(c).expect("CA certificate");
    }
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

impl FaultProxy {
    /// Listen on 127.0.0.1 and forward to the stack's implicit-TLS port `port_name` (e.g.
    /// `imap_tls`, `pop3_tls`, `smtp_tls`).
    pub async fn start(stack: &MailStack, port_name: &str) -> FaultProxy {
        let tls_dir = stack.dir.path().join("tls");
        let server_cfg = server_config(
            &tls_dir.join("server-chain.pem"),
            &tls_dir.join("server.key"),
        );
        let client_cfg = client_config(&tls_dir.join("ca.pem"));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_cfg));
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_cfg));
        let upstream = SocketAddr::from(([127, 0, 0, 1], stack.port(port_name)));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared::default());
        let sh = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let n = sh.connections.fetch_add(1, Ordering::SeqCst) + 1;
                let (acceptor, connector, sh) = (acceptor.clone(), connector.clone(), sh.clone());
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    let Ok(client) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(up) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = up.set_nodelay(true);
                    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")
                        .expect("server name")
                        .to_owned();
                    let Ok(server) = connector.connect(name, up).await else {
                        return;
                    };
                    if relay(client, server, &sh, n).await {
                        sh.resets.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        FaultProxy { addr, shared, task }
    }

    /// The port to point the account at (host 127.0.0.1, security `tls`).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Add a cut.
    pub fn add(&self, fault: Fault) {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(fault);
    }

    /// The number the next connection will have (to cut the next connection the library opens).
    pub fn next(&self) -> usize {
        self.connections() + 1
    }

    /// Connections accepted so far (the number of the latest one).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Connections cut so far.
    pub fn resets(&self) -> usize {
        self.shared.resets.load(Ordering::SeqCst)
    }
}

/// How much of `chunk` to forward, and whether to cut after it.
fn decide(
    faults: &[Fault],
    dir: Direction,
    sent: usize,
    tail: &[u8],
    chunk: &[u8],
) -> (usize, bool) {
    let mut keep = chunk.len();
    let mut cut = false;
    for f in faults.iter().filter(|f| f.direction == dir) {
        let at = match &f.cut {
            Cut::AfterBytes(n) => (sent + chunk.len() >= *n).then(|| n.saturating_sub(sent)),
            Cut::Before(p) | Cut::After(p) => {
                // Search the end of what was forwarded plus this chunk, so a pattern split
                // across reads is found.
                let mut hay = tail.to_vec();
                hay.extend_from_slice(chunk);
                hay.windows(p.len())
                    .position(|w| w == p.as_slice())
                    .map(|i| {
                        let end = if matches!(f.cut, Cut::After(_)) {
                            i + p.len()
                        } else {
                            i
                        };
                        end.saturating_sub(tail.len())
                    })
            }
        };
        if let Some(at) = at {
            if at <= keep {
                keep = at;
                cut = true;
            }
        }
    }
    (keep, cut)
}

/// The underlying TCP socket of either TLS stream type.
trait Tcp {
    fn tcp(&self) -> &TcpStream;
}
impl Tcp for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}
impl Tcp for tokio_rustls::client::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// Forward both ways until both sides closed, or until a cut. Returns whether it cut. The cuts
/// are looked up for every read, so one can be added to a connection that is already open.
async fn relay<C, S>(mut client: C, mut server: S, sh: &Shared, conn: usize) -> bool
where
    C: AsyncRead + AsyncWrite + Unpin + Tcp,
    S: AsyncRead + AsyncWrite + Unpin + Tcp,
{
    const TAIL: usize = 256;
    let (mut a, mut b) = (vec![0u8; 32 * 1024], vec![0u8; 32 * 1024]);
    let (mut sent_up, mut sent_down) = (0usize, 0usize);
    let (mut tail_up, mut tail_down) = (Vec::new(), Vec::new());
    let (mut client_open, mut server_open) = (true, true);
    let keep_tail = |tail: &mut Vec<u8>, more: &[u8]| {
        tail.extend_from_slice(more);
        if tail.len() > TAIL {
            tail.drain(..tail.len() - TAIL);
        }
    };
    while client_open || server_open {
        tokio::select! {
            r = client.read(&mut a), if client_open => match r {
                Ok(0) | Err(_) => {
                    client_open = false;
                    let _ = server.shutdown().await;
                }
                Ok(n) => {
                    let faults = sh.faults_of(conn);
                    let (keep, cut) = decide(&faults, Direction::FromClient, sent_up, &tail_up, &a[..n]);
                    if server.write_all(&a[..keep]).await.is_err() || server.flush().await.is_err() {
                        return false;
                    }
                    sent_up += keep;
                    keep_tail(&mut tail_up, &a[..keep]);
                    if cut {
                        reset(client, server).await;
                        return true;
                    }
                }
            },
            r = server.read(&mut b), if server_open => match r {
                Ok(0) | Err(_) => {
                    server_open = false;
                    let _ = client.shutdown().await;
                }
                Ok(n) => {
                    let faults = sh.faults_of(conn);
                    let (keep, cut) = decide(&faults, Direction::FromServer, sent_down, &tail_down, &b[..n]);
                    if client.write_all(&b[..keep]).await.is_err() || client.flush().await.is_err() {
                        return false;
                    }
                    sent_down += keep;
                    keep_tail(&mut tail_down, &b[..keep]);
                    if cut {
                        reset(client, server).await;
                        return true;
                    }
                }
            },
        }
    }
    false
}

/// Let what was forwarded reach the peers, then reset both connections.
async fn reset<C: Tcp, S: Tcp>(client: C, server: S) {
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = client.tcp().set_zero_linger();
    let _ = server.tcp().set_zero_linger();
    drop(client);
    drop(server);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_points() {
        let f = [Fault::before(1, Direction::FromServer, "250 2.0.0")];
        assert_eq!(
            decide(&f, Direction::FromServer, 0, b"", b"354 go\r\n"),
            (8, false)
        );
        assert_eq!(
            decide(&f, Direction::FromClient, 0, b"", b"250 2.0.0 Ok"),
            (12, false)
        );
        assert_eq!(
            decide(&f, Direction::FromServer, 0, b"", b"xx250 2.0.0 Ok"),
            (2, true)
        );
        // Split across reads: the part in the tail was forwarded already; nothing more goes.
        assert_eq!(
            decide(&f, Direction::FromServer, 5, b"abc250 ", b"2.0.0 Ok"),
            (0, true)
        );
        let f = [Fault::after(1, Direction::FromClient, "DATA\r\n")];
        assert_eq!(
            decide(&f, Direction::FromClient, 0, b"", b"DATA\r\nmore"),
            (6, true)
        );
        let f = [Fault::after_bytes(1, Direction::FromServer, 10)];
        assert_eq!(
            decide(&f, Direction::FromServer, 4, b"", b"0123456789"),
            (6, true)
        );
        assert_eq!(
            decide(&f, Direction::FromServer, 0, b"", b"01234"),
            (5, false)
        );
    }
}
