//! Self-tests of the proxy test support (tests/support/proxies.rs, issue 17), with hand-written
//! clients rather than the library: tinyproxy and Dante reach the real mail stack's implicit-TLS
//! servers, refuse as they do in the field, and log what they tunnelled; the Tap sees only
//! ciphertext past the handshake; the inspecting proxy presents its own CA's certificates.
//! Needs root (the mail stack, the packages, Dante's system user), like tests/mail_stack.rs.

use std::future::Future;
use std::time::Duration;

use base64::Engine;
use mailconnect_sandbox::TlsConfig;
use mailconnect_tests::proxies::*;
use mailconnect_tests::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;

/// A bound on every network step, so a broken proxy fails the test rather than hanging it.
async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

struct World {
    _env: Env,
    stack: MailStack,
}

async fn world() -> World {
    let env = env().await;
    let stack = MailStack::up(&env.emulator.introspection_url(), &[]);
    World { _env: env, stack }
}

impl World {
    fn target(&self, port_name: &str) -> String {
        format!("127.0.0.1:{}", self.stack.port(port_name))
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port()
}

/// `CONNECT target` through the HTTP proxy on `port`: the response head and the stream.
async fn http_connect(port: u16, target: &str, auth: Option<(&str, &str)>) -> (String, TcpStream) {
    within("CONNECT", async {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("the proxy accepts");
        let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some((user, password)) = auth {
            let b64 =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            req += &format!("Proxy-Authorization: Basic {b64}\r\n");
        }
        req += "\r\n";
        s.write_all(req.as_bytes()).await.expect("CONNECT sent");
        let head = read_head(&mut s).await.expect("a response head");
        (head, s)
    })
    .await
}

fn status(head: &str) -> &str {
    head.lines().next().unwrap_or_default()
}

/// Why a SOCKS5 server refused: the method it chose (0xFF: none acceptable), the status of the
/// user/password sub-negotiation, or the reply code of the request.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    Method(u8),
    Auth(u8),
    Reply(u8),
}

/// A SOCKS5 CONNECT (RFC 1928, user/password per RFC 1929) to `host:port` (an IPv4 address, or
/// a name the proxy resolves), offering `methods`.
async fn socks5(
    port: u16,
    methods: &[u8],
    auth: Option<(&str, &str)>,
    host: &str,
    target_port: u16,
) -> Result<TcpStream, Refused> {
    within("SOCKS5 handshake", async {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("the proxy accepts");
        let mut hello = vec![5, methods.len() as u8];
        hello.extend_from_slice(methods);
        s.write_all(&hello).await.expect("greeting sent");
        let mut chosen = [0u8; 2];
        s.read_exact(&mut chosen).await.expect("method chosen");
        assert_eq!(chosen[0], 5, "a SOCKS5 answer");
        match chosen[1] {
            0 => {}
            2 => {
                let (user, password) = auth.expect("the server asked for user and password");
                let mut m = vec![1, user.len() as u8];
                m.extend_from_slice(user.as_bytes());
                m.push(password.len() as u8);
                m.extend_from_slice(password.as_bytes());
                s.write_all(&m).await.expect("credentials sent");
                let mut st = [0u8; 2];
                s.read_exact(&mut st).await.expect("auth status");
                if st[1] != 0 {
                    return Err(Refused::Auth(st[1]));
                }
            }
            other => return Err(Refused::Method(other)),
        }
        let mut req = vec![5, 1, 0];
        match host.parse::<std::net::Ipv4Addr>() {
            Ok(ip) => {
                req.push(1);
                req.extend_from_slice(&ip.octets());
            }
            Err(_) => {
                req.extend_from_slice(&[3, host.len() as u8]);
                req.extend_from_slice(host.as_bytes());
            }
        }
        req.extend_from_slice(&target_port.to_be_bytes());
        s.write_all(&req).await.expect("request sent");
        let mut rep = [0u8; 4];
        s.read_exact(&mut rep).await.expect("reply");
        let rest = match rep[3] {
            1 => 4 + 2,
            4 => 16 + 2,
            3 => {
                let mut n = [0u8; 1];
                s.read_exact(&mut n).await.expect("name length");
                n[0] as usize + 2
            }
            t => panic!("reply address type {t}"),
        };
        let mut bound = vec![0u8; rest];
        s.read_exact(&mut bound).await.expect("bound address");
        if rep[1] != 0 {
            return Err(Refused::Reply(rep[1]));
        }
        Ok(s)
    })
    .await
}

async fn tls(s: TcpStream, ca_pem: &[u8], host: &str) -> std::io::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(host.to_string()).expect("server name");
    within("TLS handshake", tls_connector(ca_pem).connect(name, s)).await
}

/// One line (through `\n`).
async fn line<S: AsyncRead + Unpin>(s: &mut S) -> String {
    within("a line", async {
        let mut l = Vec::new();
        let mut b = [0u8; 1];
        while !l.ends_with(b"\n") {
            if s.read(&mut b).await.expect("read") == 0 {
                break;
            }
            l.push(b[0]);
        }
        String::from_utf8_lossy(&l).into_owned()
    })
    .await
}

/// Send an IMAP `ID` carrying `secret` and read through its tagged answer.
async fn imap_id(t: &mut TlsStream<TcpStream>, secret: &str) {
    t.write_all(format!("a1 ID (\"x-secret\" \"{secret}\")\r\n").as_bytes())
        .await
        .expect("ID sent");
    loop {
        let l = line(t).await;
        assert!(!l.is_empty(), "the server closed during ID");
        if l.starts_with("a1 ") {
            assert!(l.starts_with("a1 OK"), "{l}");
            return;
        }
    }
}

#[tokio::test]
async fn tinyproxy_tunnels_tls_and_the_tap_sees_only_ciphertext() {
    let w = world().await;
    let proxy = HttpProxy::start(HttpProxyOptions::default());
    assert_eq!(proxy.url(), format!("http://127.0.0.1:{}", proxy.port()));
    assert_eq!(proxy.url_with_credentials(), proxy.url());
    let tap = Tap::start(proxy.port());

    let imaps = w.target("imap_tls");
    let (head, s) = http_connect(tap.port(), &imaps, None).await;
    assert_eq!(status(&head), "HTTP/1.0 200 Connection established");
    let mut t = tls(s, &w.stack.ca_pem(), "127.0.0.1")
        .await
        .expect("TLS with Dovecot through the tunnel");
    let greeting = line(&mut t).await;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    let secret = "tok-0f3a9c1d7e5b-never-in-clear";
    imap_id(&mut t, secret).await;
    drop(t);

    assert_eq!(tap.connections(), 1);
    assert!(tap.contains(format!("CONNECT {imaps} HTTP/1.1").as_bytes()));
    assert!(tap.bytes_to_client().starts_with(b"HTTP/1.0 200"));
    assert!(
        !tap.contains(secret.as_bytes()),
        "the secret crossed in clear"
    );
    assert!(!tap.contains(greeting.trim_end().as_bytes()));
    assert!(!tap.contains(b""), "an empty needle is never found");
    assert_eq!(proxy.connects(), std::slice::from_ref(&imaps));

    // SMTPS (implicit TLS, 465-style) the same way.
    let smtps = w.target("smtp_tls");
    let (head, s) = http_connect(proxy.port(), &smtps, None).await;
    assert_eq!(status(&head), "HTTP/1.0 200 Connection established");
    let mut t = tls(s, &w.stack.ca_pem(), "127.0.0.1").await.expect("TLS");
    let greeting = line(&mut t).await;
    assert!(greeting.starts_with("220 "), "{greeting}");

    // A target that refuses: tinyproxy's 500.
    let closed = format!("127.0.0.1:{}", closed_port());
    let (head, _) = http_connect(proxy.port(), &closed, None).await;
    assert_eq!(status(&head), "HTTP/1.1 500 Unable to connect", "{head}");
    assert_eq!(proxy.connects(), [imaps, smtps, closed]);
    assert!(proxy.log().contains("Could not establish a connection"));
    let pid = proxy.pid();
    assert!(proxy.running());
    drop(proxy);
    assert!(group_members(pid).is_empty(), "tinyproxy stopped");
}

#[tokio::test]
async fn tinyproxy_refuses_like_a_corporate_proxy() {
    let w = world().await;
    let (user, password) = ("mcproxy", "s3cret-Pa55");
    let imap_port = w.stack.port("imap_tls");
    let proxy = HttpProxy::start(HttpProxyOptions {
        basic_auth: Some((user.into(), password.into())),
        connect_ports: Some(vec![imap_port]),
    });
    assert_eq!(
        proxy.url_with_credentials(),
        format!("http://{user}:{password}@127.0.0.1:{}", proxy.port())
    );
    let imaps = w.target("imap_tls");

    let (head, _) = http_connect(proxy.port(), &imaps, None).await;
    assert_eq!(status(&head), "HTTP/1.0 407 Proxy Authentication Required");
    assert!(
        head.contains("Proxy-Authenticate: Basic realm=\"Tinyproxy\""),
        "{head}"
    );

    // tinyproxy 1.11 answers wrong credentials with 401 and WWW-Authenticate, not 407.
    let (head, _) = http_connect(proxy.port(), &imaps, Some((user, "wrong"))).await;
    assert_eq!(status(&head), "HTTP/1.0 401 Unauthorized");
    assert!(
        head.contains("WWW-Authenticate: Basic realm=\"Tinyproxy\""),
        "{head}"
    );

    let (head, s) = http_connect(proxy.port(), &imaps, Some((user, password))).await;
    assert_eq!(status(&head), "HTTP/1.0 200 Connection established");
    let mut t = tls(s, &w.stack.ca_pem(), "127.0.0.1").await.expect("TLS");
    assert!(line(&mut t).await.starts_with("* OK"));

    // A port not among the ConnectPorts.
    let pop3s = w.target("pop3_tls");
    let (head, _) = http_connect(proxy.port(), &pop3s, Some((user, password))).await;
    assert_eq!(status(&head), "HTTP/1.1 403 Access violation");

    assert_eq!(
        proxy.connects(),
        [imaps.clone(), imaps.clone(), imaps.clone(), pop3s.clone()]
    );
    proxy.wait_for_connect(&pop3s);
}

#[tokio::test]
async fn dante_tunnels_by_address_and_by_name() {
    let w = world().await;
    let proxy = SocksProxy::start(SocksOptions::default());
    assert_eq!(proxy.url(), format!("socks5://127.0.0.1:{}", proxy.port()));
    assert_eq!(
        proxy.url_h(),
        format!("socks5h://127.0.0.1:{}", proxy.port())
    );
    let tap = Tap::start(proxy.port());

    let imap_port = w.stack.port("imap_tls");
    let s = socks5(tap.port(), &[0], None, "127.0.0.1", imap_port)
        .await
        .expect("Dante connects");
    let mut t = tls(s, &w.stack.ca_pem(), "127.0.0.1").await.expect("TLS");
    let greeting = line(&mut t).await;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    let secret = "tok-5e8d2b7a41c6-never-in-clear";
    imap_id(&mut t, secret).await;
    assert!(tap
        .bytes_from_client()
        .starts_with(&[5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1]));
    assert!(
        !tap.contains(secret.as_bytes()),
        "the secret crossed in clear"
    );
    proxy.wait_for_connect(&format!("127.0.0.1:{imap_port}"));

    // socks5h: Dante resolves the name (the stack's certificate names localhost too).
    let pop3_port = w.stack.port("pop3_tls");
    let s = socks5(proxy.port(), &[0], None, "localhost", pop3_port)
        .await
        .expect("Dante resolves and connects");
    let mut t = tls(s, &w.stack.ca_pem(), "localhost").await.expect("TLS");
    let greeting = line(&mut t).await;
    assert!(greeting.starts_with("+OK"), "{greeting}");
    proxy.wait_for_connect(&format!("127.0.0.1:{pop3_port}"));

    // A target that refuses: reply 5, "connection refused".
    let refused = socks5(proxy.port(), &[0], None, "127.0.0.1", closed_port()).await;
    assert_eq!(refused.err(), Some(Refused::Reply(5)));
    proxy.wait_for_log("remote peer error");
}

#[tokio::test]
async fn dante_checks_user_and_password() {
    let w = world().await;
    let (user, password) = ("mcsocks-selftest", "S0cks-pass-1");
    let proxy = SocksProxy::start(SocksOptions {
        auth: Some((user.into(), password.into())),
    });
    assert_eq!(
        proxy.url_h_with_credentials(),
        format!("socks5h://{user}:{password}@127.0.0.1:{}", proxy.port())
    );
    let smtp_port = w.stack.port("smtp_tls");

    let no_auth = socks5(proxy.port(), &[0], None, "127.0.0.1", smtp_port).await;
    assert_eq!(no_auth.err(), Some(Refused::Method(0xFF)));

    let wrong = socks5(
        proxy.port(),
        &[2],
        Some((user, "wrong")),
        "127.0.0.1",
        smtp_port,
    )
    .await;
    assert_eq!(wrong.err(), Some(Refused::Auth(1)));
    proxy.wait_for_log(&format!(
        "system password authentication failed for user \"{user}\""
    ));

    let s = socks5(
        proxy.port(),
        &[0, 2],
        Some((user, password)),
        "127.0.0.1",
        smtp_port,
    )
    .await
    .expect("Dante connects with the right password");
    let mut t = tls(s, &w.stack.ca_pem(), "127.0.0.1").await.expect("TLS");
    let greeting = line(&mut t).await;
    assert!(greeting.starts_with("220 "), "{greeting}");
    proxy.wait_for_connect(&format!("127.0.0.1:{smtp_port}"));
    assert!(proxy.log().contains(&format!("username%{user}@127.0.0.1")));

    // A second start with the same user is idempotent.
    let again = SocksProxy::start(SocksOptions {
        auth: Some((user.into(), password.into())),
    });
    let s = socks5(
        again.port(),
        &[2],
        Some((user, password)),
        "127.0.0.1",
        smtp_port,
    )
    .await
    .expect("the second Dante connects too");
    let mut t = tls(s, &w.stack.ca_pem(), "127.0.0.1").await.expect("TLS");
    assert!(line(&mut t).await.starts_with("220 "));

    // Dropping one stops its whole process group (Dante forks helpers); the other goes on.
    let pid = again.pid();
    assert!(again.running() && again.processes().len() > 1);
    drop(again);
    wait_for("Dante's processes to end", || {
        group_members(pid).is_empty().then_some(())
    });
    assert!(proxy.running());
}

#[tokio::test]
async fn inspecting_proxy_presents_its_own_issuer() {
    let w = world().await;
    let proxy = InspectingProxy::start(&w.stack.ca_pem());
    assert_eq!(
        proxy.issuer_name(),
        "CN=Contoso TLS Inspection CA,O=Contoso Firewall"
    );
    assert_eq!(
        std::fs::read(proxy.ca_file()).expect("CA file"),
        proxy.ca_pem()
    );
    let imaps = w.target("imap_tls");

    // A client trusting only the stack's CA refuses the inspection.
    let (head, s) = http_connect(proxy.port(), &imaps, None).await;
    assert_eq!(status(&head), "HTTP/1.1 200 Connection established");
    let err = tls(s, &w.stack.ca_pem(), "127.0.0.1")
        .await
        .expect_err("the stack's CA did not issue the proxy's certificate");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    let failures = wait_for("the proxy to note the refused handshake", || {
        let f = proxy.handshake_failures();
        (!f.is_empty()).then_some(f)
    });
    assert!(failures[0].contains("UnknownCA"), "{failures:?}");

    // A client trusting the inspection CA talks to Dovecot through it, in clear to the proxy.
    let (_, s) = http_connect(proxy.port(), &imaps, None).await;
    let mut t = tls(s, &proxy.ca_pem(), "127.0.0.1")
        .await
        .expect("TLS with the inspection CA");
    let peer = t.get_ref().1.peer_certificates().expect("a certificate")[0].to_vec();
    assert_eq!(issuer_of(&peer), proxy.issuer_name());
    assert_ne!(proxy.issuer_name(), subject_of(&w.stack.ca_pem()));
    let greeting = line(&mut t).await;
    assert!(greeting.starts_with("* OK"), "{greeting}");
    let secret = "tok-9b1e6f3c2a7d-seen-by-the-firewall";
    imap_id(&mut t, secret).await;
    assert!(proxy.contains(secret.as_bytes()));
    assert!(proxy.bytes_to_client().starts_with(greeting.as_bytes()));

    // SMTPS too, with a certificate for the name asked for.
    let (_, s) = http_connect(
        proxy.port(),
        &format!("localhost:{}", w.stack.port("smtp_tls")),
        None,
    )
    .await;
    let mut t = tls(s, &proxy.ca_pem(), "localhost").await.expect("TLS");
    let peer = t.get_ref().1.peer_certificates().expect("a certificate")[0].to_vec();
    assert_eq!(issuer_of(&peer), proxy.issuer_name());
    assert!(line(&mut t).await.starts_with("220 "));

    // A target it cannot reach.
    let closed = format!("127.0.0.1:{}", closed_port());
    let (head, _) = http_connect(proxy.port(), &closed, None).await;
    assert_eq!(status(&head), "HTTP/1.1 502 Bad Gateway");
    assert_eq!(proxy.connects().len(), 4);
    assert_eq!(proxy.connects()[3], closed);
}

#[tokio::test]
async fn https_through_tinyproxy_and_the_inspecting_proxy() {
    let dir = tempfile::tempdir().expect("dir");
    let (ca, cert, key) = localhost_certs(dir.path());
    let env = env_with(|c| {
        c.tls = Some(TlsConfig {
            cert_pem_path: cert,
            key_pem_path: key,
        })
    })
    .await;
    let ca_pem = std::fs::read(ca).expect("CA");
    let target = env
        .emulator
        .base_url()
        .trim_start_matches("https://")
        .to_string();
    let get = format!(
        "GET /common/v2.0/.well-known/openid-configuration HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"
    );
    let fetch = |mut t: TlsStream<TcpStream>| {
        let get = get.clone();
        async move {
            t.write_all(get.as_bytes()).await.expect("GET sent");
            let mut body = Vec::new();
            within("the response", t.read_to_end(&mut body))
                .await
                .expect("response read");
            String::from_utf8_lossy(&body).into_owned()
        }
    };

    let tiny = HttpProxy::start(HttpProxyOptions {
        basic_auth: None,
        connect_ports: Some(vec![env.emulator.local_addr().port()]),
    });
    let (head, s) = http_connect(tiny.port(), &target, None).await;
    assert_eq!(status(&head), "HTTP/1.0 200 Connection established");
    let answer = fetch(tls(s, &ca_pem, "127.0.0.1").await.expect("TLS")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("token_endpoint"), "{answer}");
    assert_eq!(tiny.connects(), std::slice::from_ref(&target));

    let inspecting = InspectingProxy::start(&ca_pem);
    let (_, s) = http_connect(inspecting.port(), &target, None).await;
    let answer = fetch(
        tls(s, &inspecting.ca_pem(), "127.0.0.1")
            .await
            .expect("TLS"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(inspecting.contains(b"GET /common/v2.0/.well-known/openid-configuration"));
}
