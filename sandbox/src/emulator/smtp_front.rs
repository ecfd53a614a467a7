//! The SMTP front: the submission ports clients see. It relays each session to the real Postfix
//! byte for byte (both sides TLS with the stack's certificate and CA; STARTTLS is passed on and
//! done on both legs at once) and looks at one thing only: the user an `AUTH XOAUTH2` or
//! `AUTH OAUTHBEARER` names. When SMTP AUTH is switched off for that mailbox or its tenant, the
//! front answers Exchange Online's `535 5.7.139` itself (Postfix never sees that AUTH, and a
//! two-step AUTH already sent is cancelled with `*`). Everything else (greeting, EHLO, the
//! replies to good and bad tokens, MAIL, DATA) comes from Postfix. See sandbox/stack/README.md.

use std::collections::VecDeque;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::config::TlsConfig;
use super::graph::backend::{FrontHandle, Stack};
use super::graph::SmtpFront;
use super::state::Shared;
use crate::Error;

/// Exchange Online's reply when SMTP AUTH is off for the tenant.
pub const DISABLED_TENANT: &str = "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.";
/// … for the mailbox.
pub const DISABLED_MAILBOX: &str = "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.";

/// What the next reply of Postfix answers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Greeting,
    Plain,
    StartTls,
    /// `AUTH <mech>`; `awaiting`: Postfix sent 334 and waits for a client line; `checked`: the
    /// user was looked at.
    Auth {
        mech: String,
        awaiting: bool,
        checked: bool,
    },
    Data,
    /// Postfix's answer to a cancelled AUTH (`*`) is not shown; the client gets this reply.
    Swallow(String),
    /// A reply of the front's own, sent when every earlier reply has been relayed.
    Local(String),
}

/// The user of a SASL response (base64): XOAUTH2 `user=`, OAUTHBEARER `a=`.
pub(crate) fn sasl_user(mech: &str, b64: &str) -> Option<String> {
    let raw = STANDARD.decode(b64.trim()).ok()?;
    let text = String::from_utf8_lossy(&raw);
    match mech.to_ascii_uppercase().as_str() {
        "XOAUTH2" => text
            .split('\x01')
            .find_map(|kv| kv.strip_prefix("user="))
            .map(str::to_string),
        "OAUTHBEARER" => {
            let gs2 = text.split('\x01').next()?;
            gs2.split(',')
                .find_map(|p| p.strip_prefix("a="))
                .map(|a| a.replace("=2C", ",").replace("=3D", "="))
        }
        _ => None,
    }
    .filter(|u| !u.is_empty())
}

/// The 5.7.139 reply when SMTP AUTH is off for `user`'s mailbox or tenant.
/// Counted in `Stats::smtp_auth_disabled_refusals` when it refuses.
pub(crate) fn auth_disabled(shared: &Shared, user: &str) -> Option<&'static str> {
    let mut st = shared.lock();
    let u = st.user_by_address(user)?;
    let reply = match u.smtp_client_authentication_disabled {
        Some(true) => Some(DISABLED_MAILBOX),
        Some(false) => None,
        None => st
            .tenant(&u.tenant)
            .filter(|t| t.smtp_client_authentication_disabled)
            .map(|_| DISABLED_TENANT),
    };
    if reply.is_some() {
        st.stats.smtp_auth_disabled_refusals += 1;
    }
    reply
}

/// The session state of one relayed connection.
struct Relay {
    queue: VecDeque<Expect>,
    cbuf: Vec<u8>,
    sbuf: Vec<u8>,
    bdat: usize,
    data: bool,
    tls_pending: bool,
    /// The client's leg is TLS (before it, Postfix refuses AUTH itself: 530 5.7.0).
    secure: bool,
}

enum Step {
    Go,
    Upgrade,
    Raw,
}

fn take_line(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let pos = buf.iter().position(|&b| b == b'\n')?;
    Some(buf.drain(..=pos).collect())
}

impl Relay {
    async fn flush_locals<C: AsyncWrite + Unpin>(&mut self, client: &mut C) -> std::io::Result<()> {
        while let Some(Expect::Local(r)) = self.queue.front() {
            client.write_all(format!("{r}\r\n").as_bytes()).await?;
            self.queue.pop_front();
        }
        client.flush().await
    }

    async fn on_client<C: AsyncWrite + Unpin, S: AsyncWrite + Unpin>(
        &mut self,
        shared: &Shared,
        client: &mut C,
        server: &mut S,
    ) -> std::io::Result<()> {
        loop {
            if self.bdat > 0 && !self.cbuf.is_empty() {
                let n = self.bdat.min(self.cbuf.len());
                server.write_all(&self.cbuf[..n]).await?;
                self.cbuf.drain(..n);
                self.bdat -= n;
                continue;
            }
            if self.tls_pending {
                // Nothing may follow STARTTLS before its answer (RFC 3207).
                self.cbuf.clear();
                break;
            }
            let Some(line) = take_line(&mut self.cbuf) else {
                if self.cbuf.len() > 64 * 1024 {
                    server.write_all(&self.cbuf).await?;
                    self.cbuf.clear();
                }
                break;
            };
            if self.data {
                server.write_all(&line).await?;
                if line == b".\r\n" || line == b".\n" {
                    self.data = false;
                    self.queue.push_back(Expect::Plain);
                }
                continue;
            }
            let continuation = match self.queue.front_mut() {
                Some(Expect::Auth {
                    mech,
                    awaiting,
                    checked,
                }) if *awaiting => {
                    *awaiting = false;
                    let first = !*checked;
                    *checked = true;
                    Some((mech.clone(), first))
                }
                _ => None,
            };
            if let Some((mech, first)) = continuation {
                let user = sasl_user(&mech, &String::from_utf8_lossy(&line));
                let refusal = user
                    .filter(|_| first && self.secure)
                    .and_then(|u| auth_disabled(shared, &u));
                if let Some(reply) = refusal {
                    tracing::debug!("SMTP front: AUTH refused, SMTP AUTH is disabled");
                    server.write_all(b"*\r\n").await?;
                    if let Some(f) = self.queue.front_mut() {
                        *f = Expect::Swallow(reply.to_string());
                    }
                } else {
                    server.write_all(&line).await?;
                }
                continue;
            }
            let text = String::from_utf8_lossy(&line);
            let mut words = text.split_whitespace();
            let verb = words.next().unwrap_or_default().to_ascii_uppercase();
            match verb.as_str() {
                "STARTTLS" => {
                    server.write_all(&line).await?;
                    self.queue.push_back(Expect::StartTls);
                    self.tls_pending = true;
                }
                "AUTH" => {
                    let mech = words.next().unwrap_or_default().to_string();
                    match words.next().filter(|ir| *ir != "=") {
                        Some(ir) => {
                            if let Some(reply) = sasl_user(&mech, ir)
                                .filter(|_| self.secure)
                                .and_then(|u| auth_disabled(shared, &u))
                            {
                                tracing::debug!("SMTP front: AUTH refused, SMTP AUTH is disabled");
                                self.queue.push_back(Expect::Local(reply.to_string()));
                                self.flush_locals(client).await?;
                            } else {
                                server.write_all(&line).await?;
                                self.queue.push_back(Expect::Auth {
                                    mech,
                                    awaiting: false,
                                    checked: true,
                                });
                            }
                        }
                        None => {
                            server.write_all(&line).await?;
                            self.queue.push_back(Expect::Auth {
                                mech,
                                awaiting: false,
                                checked: false,
                            });
                        }
                    }
                }
                "DATA" => {
                    server.write_all(&line).await?;
                    self.queue.push_back(Expect::Data);
                }
                "BDAT" => {
                    server.write_all(&line).await?;
                    self.bdat = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                    self.queue.push_back(Expect::Plain);
                }
                _ => {
                    server.write_all(&line).await?;
                    self.queue.push_back(Expect::Plain);
                }
            }
        }
        server.flush().await
    }

    async fn on_server<C: AsyncWrite + Unpin>(&mut self, client: &mut C) -> std::io::Result<Step> {
        loop {
            let Some(line) = take_line(&mut self.sbuf) else {
                if self.sbuf.len() > 64 * 1024 {
                    client.write_all(&self.sbuf).await?;
                    self.sbuf.clear();
                }
                break;
            };
            let swallow = matches!(self.queue.front(), Some(Expect::Swallow(_)));
            if !swallow {
                client.write_all(&line).await?;
            }
            if line.get(3) == Some(&b'-') {
                continue;
            }
            let code: u16 = std::str::from_utf8(line.get(..3).unwrap_or_default())
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            match self.queue.pop_front() {
                Some(Expect::StartTls) => {
                    self.tls_pending = false;
                    if code == 220 {
                        client.flush().await?;
                        return Ok(Step::Upgrade);
                    }
                }
                Some(Expect::Auth { mech, checked, .. }) => {
                    if code == 334 {
                        self.queue.push_front(Expect::Auth {
                            mech,
                            awaiting: true,
                            checked,
                        });
                    } else if code == 235 {
                        client.flush().await?;
                        return Ok(Step::Raw);
                    }
                }
                Some(Expect::Data) => self.data = code == 354,
                Some(Expect::Swallow(reply)) => {
                    client.write_all(format!("{reply}\r\n").as_bytes()).await?;
                }
                Some(Expect::Local(r)) => {
                    // Not reached: local replies are sent as soon as they are first in line.
                    client.write_all(format!("{r}\r\n").as_bytes()).await?;
                }
                _ => {}
            }
            self.flush_locals(client).await?;
        }
        client.flush().await?;
        Ok(Step::Go)
    }
}

async fn session(
    shared: Arc<Shared>,
    stack: Arc<Stack>,
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: TcpStream,
    implicit: bool,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let port = if implicit {
        stack.cfg.smtp_tls
    } else {
        stack.cfg.smtp_starttls
    };
    let upstream = stack.tcp_connect(port).await.map_err(|e| e.message)?;
    let mut r = Relay {
        queue: VecDeque::from([Expect::Greeting]),
        cbuf: Vec::new(),
        sbuf: Vec::new(),
        bdat: 0,
        data: false,
        tls_pending: false,
        secure: implicit,
    };
    let (tcp, upstream) = if implicit {
        (tcp, upstream)
    } else {
        // Plain until STARTTLS is accepted; then TLS on both legs from a clean state.
        let Some(plain) = relay(&mut r, &shared, tcp, upstream, &mut stop).await? else {
            return Ok(());
        };
        r.cbuf.clear();
        r.sbuf.clear();
        r.queue.clear();
        r.secure = true;
        plain
    };
    let s = stack.tls_over(upstream).await.map_err(|e| e.message)?;
    let c = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
    match relay(&mut r, &shared, c, s, &mut stop).await? {
        None => Ok(()),
        Some(_) => Err("STARTTLS inside TLS".into()),
    }
}

/// Relay between `client` and `server` until a side closes, AUTH succeeded and the rest was
/// copied, or the front stops (`None`); or until Postfix accepted STARTTLS (the streams back).
async fn relay<C, S>(
    r: &mut Relay,
    shared: &Shared,
    mut client: C,
    mut server: S,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<(C, S)>, String>
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut cb = vec![0u8; 16 * 1024];
    let mut sb = vec![0u8; 16 * 1024];
    loop {
        let step = tokio::select! {
            _ = stop.changed() => return Ok(None),
            n = client.read(&mut cb) => {
                let n = n.map_err(|e| e.to_string())?;
                if n == 0 {
                    let _ = server.shutdown().await;
                    return Ok(None);
                }
                r.cbuf.extend_from_slice(&cb[..n]);
                r.on_client(shared, &mut client, &mut server).await.map_err(|e| e.to_string())?;
                Step::Go
            }
            n = server.read(&mut sb) => {
                let n = n.map_err(|e| e.to_string())?;
                if n == 0 {
                    let _ = client.shutdown().await;
                    return Ok(None);
                }
                r.sbuf.extend_from_slice(&sb[..n]);
                r.on_server(&mut client).await.map_err(|e| e.to_string())?
            }
        };
        match step {
            Step::Go => {}
            Step::Upgrade => return Ok(Some((client, server))),
            Step::Raw => {
                // Authenticated: the rest of the session is Postfix's alone.
                server.write_all(&r.cbuf).await.map_err(|e| e.to_string())?;
                client.write_all(&r.sbuf).await.map_err(|e| e.to_string())?;
                tokio::select! {
                    _ = stop.changed() => {}
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                }
                return Ok(None);
            }
        }
    }
}

/// Start the front on two loopback ports (STARTTLS and implicit TLS) for `stack`, using the
/// stack's certificate; `None` when the stack configuration names no certificate.
pub(crate) async fn start(
    shared: Arc<Shared>,
    stack: Arc<Stack>,
) -> Result<Option<FrontHandle>, Error> {
    let (Some(cert), Some(key)) = (stack.cfg.tls_cert.clone(), stack.cfg.tls_key.clone()) else {
        return Ok(None);
    };
    let mut tls = super::server_tls(&TlsConfig {
        cert_pem_path: cert,
        key_pem_path: key,
    })?;
    tls.alpn_protocols.clear();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let ip: std::net::IpAddr = stack.cfg.host.parse().unwrap_or([127, 0, 0, 1].into());
    let bind = |_: ()| async move {
        TcpListener::bind((ip, 0)).await.map_err(|e| Error::Io {
            context: format!("binding the SMTP front on {ip}"),
            source: e,
        })
    };
    let starttls = bind(()).await?;
    let implicit = bind(()).await?;
    let port = |l: &TcpListener| l.local_addr().map(|a| a.port()).unwrap_or(0);
    let ports = SmtpFront {
        smtp_starttls: port(&starttls),
        smtp_tls: port(&implicit),
    };
    let (stop_tx, _) = watch::channel(false);
    for (listener, is_implicit) in [(starttls, false), (implicit, true)] {
        let (shared, stack, acceptor) = (shared.clone(), stack.clone(), acceptor.clone());
        let mut own_stop = stop_tx.subscribe();
        let mut emulator_stop = shared.stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = own_stop.changed() => break,
                    _ = emulator_stop.changed() => break,
                    a = listener.accept() => a,
                };
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let (shared, stack, acceptor) = (shared.clone(), stack.clone(), acceptor.clone());
                let stop = own_stop.clone();
                tokio::spawn(async move {
                    if let Err(e) = session(shared, stack, acceptor, tcp, is_implicit, stop).await {
                        tracing::debug!(error = %e, "SMTP front session ended");
                    }
                });
            }
        });
    }
    tracing::info!(
        smtp_starttls = ports.smtp_starttls,
        smtp_tls = ports.smtp_tls,
        "SMTP front listening"
    );
    Ok(Some(FrontHandle {
        ports,
        stop: stop_tx,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_of_sasl_responses() {
        let x = STANDARD.encode("user=alice@example.test\x01auth=Bearer abc\x01\x01");
        assert_eq!(
            sasl_user("XOAUTH2", &x).as_deref(),
            Some("alice@example.test")
        );
        let o = STANDARD.encode("n,a=bob@example.test,\x01host=x\x01auth=Bearer abc\x01\x01");
        assert_eq!(
            sasl_user("oauthbearer", &o).as_deref(),
            Some("bob@example.test")
        );
        let o = STANDARD.encode("n,a=we=2Cird=3D@example.test,\x01auth=Bearer abc\x01\x01");
        assert_eq!(
            sasl_user("OAUTHBEARER", &o).as_deref(),
            Some("we,ird=@example.test")
        );
        assert_eq!(sasl_user("PLAIN", &x), None);
        assert_eq!(sasl_user("XOAUTH2", "!!!"), None);
        assert_eq!(sasl_user("XOAUTH2", ""), None);
    }
}
