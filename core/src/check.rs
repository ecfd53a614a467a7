//! **Test**: the honest check behind a "Test e-mail configuration" button.
//!
//! The token phase runs first (fresh, refreshed, needs re-authorization); if there is no usable
//! token, no server is contacted. Then IMAP, POP3 and SMTP (those configured, or those asked for)
//! are tried concurrently: connect, TLS, authenticate, and a check after authentication (IMAP LIST,
//! POP3 STAT; Microsoft can answer AUTH OK for a mailbox the token may not open). With
//! `send_probe`, one message goes to the mailbox itself and must arrive over IMAP or POP3.
//! The report is JSON with a schema version (README, "Test report").

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::error::{Error, ErrorKind};
use crate::mail::{AttemptLog, FetchRequest};
use crate::model::{Account, Protocol, ServerConfig, Transport};
use crate::oauth::errors::ReauthReason;
use crate::transport::message::Envelope;
use crate::transport::stream::Security;

/// The report's schema version.
pub const REPORT_SCHEMA: u32 = 1;

/// Options of a Test.
#[derive(Debug, Clone, Copy, Default)]
pub struct TestOptions {
    /// Send one message to the mailbox itself and confirm it arrives.
    pub send_probe: bool,
}

/// An error as it appears in a report.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorReport {
    /// The diagnostic catalog code (`MC-SMTP-AUTH-DISABLED-TENANT`).
    pub code: &'static str,
    /// The catalog entry with title, explanation and fix in every language.
    pub diagnostic: serde_json::Value,
    /// Error kind.
    pub kind: ErrorKind,
    /// Message.
    pub message: String,
    /// Why re-authorization is needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reauth_reason: Option<ReauthReason>,
    /// The server's reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_reply: Option<String>,
    /// The decoded SASL error challenge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasl_challenge: Option<String>,
    /// AADSTS code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aadsts: Option<i64>,
    /// Who issued a certificate that was not trusted (a TLS-inspecting proxy's CA shows here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_issuer: Option<String>,
}

impl From<&Error> for ErrorReport {
    fn from(e: &Error) -> Self {
        ErrorReport::with_context(e, crate::diagnose::Context::default())
    }
}

impl ErrorReport {
    /// The report of `e` diagnosed with `ctx`.
    pub fn with_context(e: &Error, ctx: crate::diagnose::Context) -> Self {
        let ev = e.evidence();
        let diagnostic = e.diagnostic_json_with(ctx);
        ErrorReport {
            code: crate::diagnose::diagnose(e, ctx).code,
            diagnostic,
            kind: e.kind(),
            message: e.message().to_string(),
            reauth_reason: ev.reauth_reason,
            server_reply: ev.server_reply.clone(),
            sasl_challenge: ev.sasl_challenge.clone(),
            aadsts: ev.oauth.as_ref().and_then(|o| o.aadsts()),
            certificate_issuer: ev.certificate_issuer.clone(),
        }
    }
}

/// The token phase.
#[derive(Debug, Clone, Serialize)]
pub struct TokenPhase {
    /// `fresh`, `refreshed`, `not_connected`, `needs_reauthorization` or `error`.
    pub status: &'static str,
    /// Access token expiry (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Time spent (ms).
    pub elapsed_ms: u64,
    /// The error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
}

/// Milliseconds per phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phases {
    /// TCP connect.
    pub connect: Option<u64>,
    /// TLS handshake.
    pub tls: Option<u64>,
    /// Authentication.
    pub auth: Option<u64>,
    /// The check after authentication.
    pub check: Option<u64>,
}

/// One protocol's result.
#[derive(Debug, Clone, Serialize)]
pub struct ProtocolResult {
    /// Protocol.
    pub protocol: Protocol,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Security.
    pub security: Security,
    /// The network path: `direct`, `http proxy HOST:PORT` or `socks5 proxy HOST:PORT`.
    pub path: String,
    /// Whether it worked.
    pub ok: bool,
    /// Negotiated TLS version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    /// Mechanisms offered.
    pub mechanisms_offered: Vec<String>,
    /// Mechanism used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mechanism_used: Option<String>,
    /// Whether the server refused the stored token and a refreshed one was tried (whether or not
    /// the second one was accepted).
    pub retried_with_refreshed_token: bool,
    /// Authentication attempts made (0 when the session failed before authenticating).
    pub auth_attempts: u32,
    /// Phase times.
    pub phases_ms: Phases,
    /// What the check found ("12 folders", "3 messages, 48213 octets").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
    /// Total time (ms).
    pub elapsed_ms: u64,
}

/// The probe message result.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    /// Whether it was sent and found again.
    pub ok: bool,
    /// The server's acceptance reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<String>,
    /// What found it: `imap`, `pop3` or `graph`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found_via: Option<&'static str>,
    /// Time from sending to finding (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_ms: Option<u64>,
    /// The error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
}

/// The Microsoft Graph check of an account that may use Graph.
#[derive(Debug, Clone, Serialize)]
pub struct GraphResult {
    /// Whether Graph works for this mailbox.
    pub ok: bool,
    /// The Graph API base.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The network path of the Graph requests (`direct`, the proxy, or where the proxy comes from).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// What the check found (mailbox path, the token's permissions, the Inbox).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<crate::graph::GraphProbe>,
    /// Milliseconds: getting the Graph token, then reading the mailbox.
    pub phases_ms: GraphPhases,
    /// The error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
    /// Total time (ms).
    pub elapsed_ms: u64,
}

/// Milliseconds per Graph phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GraphPhases {
    /// The Graph access token (minted from the refresh token when needed).
    pub token: Option<u64>,
    /// Reading the mailbox.
    pub mailbox: Option<u64>,
}

/// The Test report.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    /// Schema version.
    pub schema: u32,
    /// Account.
    pub account_id: String,
    /// Mailbox.
    pub mailbox: String,
    /// Whether everything tested worked.
    pub ok: bool,
    /// Token phase.
    pub token: TokenPhase,
    /// Per protocol.
    pub results: Vec<ProtocolResult>,
    /// Microsoft Graph (accounts whose transport is `graph` or `auto`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph: Option<GraphResult>,
    /// How mail travels for this account (accounts that may use Graph).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<crate::account_state::TransportStatus>,
    /// Probe message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeResult>,
    /// Total time (ms).
    pub elapsed_ms: u64,
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl Client {
    /// Test the account's configured protocols (or `protocols`, when not empty), concurrently.
    /// Never sends mail unless `opts.send_probe`. An error is returned only for an unknown account;
    /// everything else is in the report.
    pub async fn test(
        &self,
        id: &str,
        protocols: &[Protocol],
        opts: TestOptions,
        cancel: &CancellationToken,
    ) -> crate::Result<TestReport> {
        let account = self.account(id)?;
        if cancel.is_cancelled() {
            return Err(Error::cancelled("the test"));
        }
        let started = Instant::now();
        let servers = self.servers(&account)?;
        // A `graph` account is tested over Graph; its mail servers only when asked for.
        let graph_only = account.transport == Transport::Graph;
        let wanted: Vec<Protocol> = if !protocols.is_empty() {
            protocols.to_vec()
        } else if graph_only {
            vec![]
        } else {
            Protocol::ALL
                .into_iter()
                .filter(|p| servers.get(*p).is_some())
                .collect()
        };

        let t0 = Instant::now();
        let token = self.access_token_inner(&account, None, cancel).await;
        let token_phase = match &token {
            Ok((t, refreshed)) => TokenPhase {
                status: if *refreshed { "refreshed" } else { "fresh" },
                expires_at: time::OffsetDateTime::from_unix_timestamp(t.expires_at)
                    .ok()
                    .and_then(|d| {
                        d.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    }),
                elapsed_ms: ms(t0.elapsed()),
                error: None,
            },
            Err(e) => TokenPhase {
                status: match e.kind() {
                    ErrorKind::State => "not_connected",
                    ErrorKind::ReauthorizationRequired => "needs_reauthorization",
                    _ => "error",
                },
                expires_at: None,
                elapsed_ms: ms(t0.elapsed()),
                error: Some(ErrorReport::from(e)),
            },
        };

        let mut results = Vec::new();
        let graph_wanted = account.transport.uses_graph() && protocols.is_empty();
        let graph_run = async {
            match (graph_wanted, token.is_ok()) {
                (true, true) => Some(self.test_graph(&account, cancel).await),
                _ => None,
            }
        };
        let mut graph = None;
        if token.is_ok() {
            let runs = wanted.iter().map(|p| {
                let server = servers.get(*p).cloned();
                let account = account.clone();
                async move { self.test_protocol(&account, *p, server, cancel).await }
            });
            let (pairs, g) =
                futures_util::future::join(futures_util::future::join_all(runs), graph_run).await;
            graph = g;
            // Evidence across protocols: a token accepted by one protocol and refused by another
            // means that protocol is disabled for the mailbox, not that the token is bad.
            let any_ok = pairs.iter().any(|(r, _)| r.ok);
            let delegate = account
                .login
                .as_deref()
                .is_some_and(|l| !l.eq_ignore_ascii_case(&account.mailbox));
            results = pairs
                .into_iter()
                .map(|(mut r, e)| {
                    if let Some(e) = e {
                        let ctx = crate::diagnose::Context {
                            other_protocol_accepted: any_ok,
                            delegate,
                        };
                        r.error = Some(ErrorReport::with_context(&e, ctx));
                    }
                    r
                })
                .collect();
        } else {
            for p in &wanted {
                let Some(s) = servers.get(*p) else { continue };
                results.push(skipped(*p, s, self.path_of(*p, &s.host)));
            }
        }

        let mut ok = token.is_ok()
            && results.iter().all(|r| r.ok)
            && graph.as_ref().is_none_or(|g| g.ok)
            && (!results.is_empty() || graph.is_some());
        let probe = if opts.send_probe && ok {
            let p = self.probe(&account, &wanted, cancel).await;
            ok &= p.ok;
            Some(p)
        } else {
            None
        };
        let transport = account.transport.uses_graph().then(|| {
            let id = account.id.clone();
            let rec = self.inner.store.load_tokens(&id).ok().flatten();
            crate::account_state::transport_of(&account, rec.as_ref())
        });
        Ok(TestReport {
            schema: REPORT_SCHEMA,
            account_id: account.id.clone(),
            mailbox: account.mailbox.clone(),
            ok,
            token: token_phase,
            results,
            graph,
            transport,
            probe,
            elapsed_ms: ms(started.elapsed()),
        })
    }

    /// The network path of `p` to `host`, in words.
    fn path_of(&self, p: Protocol, host: &str) -> String {
        let channel = match p {
            Protocol::Imap => crate::net::Channel::Imap,
            Protocol::Pop3 => crate::net::Channel::Pop3,
            Protocol::Smtp => crate::net::Channel::Smtp,
        };
        self.route(channel, host).to_string()
    }

    async fn test_protocol(
        &self,
        account: &Account,
        p: Protocol,
        server: Option<ServerConfig>,
        cancel: &CancellationToken,
    ) -> (ProtocolResult, Option<Error>) {
        let started = Instant::now();
        let Some(server) = server else {
            let mut r = skipped(
                p,
                &ServerConfig {
                    host: String::new(),
                    port: 0,
                    security: Security::Tls,
                    mechanism: None,
                    danger_accept_invalid_certs: false,
                },
                String::new(),
            );
            r.error = Some(ErrorReport::from(&Error::new(
                ErrorKind::State,
                format!(
                    "no {} server is configured for this account",
                    p.as_str().to_uppercase()
                ),
            )));
            return (r, None);
        };
        let mut r = ProtocolResult {
            detail: None,
            ..skipped(p, &server, self.path_of(p, &server.host))
        };
        // Filled in as the session is opened, so a refused login still shows the phases it
        // got through, the mechanisms and the retry with a refreshed token.
        let log = AttemptLog::default();
        let outcome: crate::Result<()> = async {
            match p {
                Protocol::Imap => {
                    let (mut s, _) = self.open_imap(account, &server, cancel, &log).await?;
                    let c = Instant::now();
                    let folders = s.list_folders().await?;
                    r.phases_ms.check = Some(ms(c.elapsed()));
                    r.detail = Some(format!("{} folders", folders.len()));
                    let _ = s.logout().await;
                }
                Protocol::Pop3 => {
                    let (mut pop, _) = self.open_pop3(account, &server, cancel, &log).await?;
                    let c = Instant::now();
                    let (n, size) = pop.stat().await?;
                    r.phases_ms.check = Some(ms(c.elapsed()));
                    r.detail = Some(format!("{n} messages, {size} octets"));
                    let _ = pop.quit().await;
                }
                Protocol::Smtp => {
                    let (smtp, _) = self.open_smtp(account, &server, cancel, &log).await?;
                    r.detail = Some("authenticated; no mail sent".into());
                    let _ = smtp.quit().await;
                }
            }
            Ok(())
        }
        .await;
        if let Ok(a) = log.lock() {
            r.phases_ms.connect = a.connect_ms;
            r.phases_ms.tls = a.tls_ms;
            r.tls_version = a.tls_version.clone();
            r.phases_ms.auth = a.auth_ms;
            r.mechanisms_offered = a.mechanisms_offered.clone();
            r.mechanism_used = a.mechanism_used.clone();
            r.retried_with_refreshed_token = a.retried_with_refreshed_token;
            r.auth_attempts = a.auth_attempts;
        }
        r.elapsed_ms = ms(started.elapsed());
        match outcome {
            Ok(()) => {
                r.ok = true;
                (r, None)
            }
            Err(e) => {
                r.error = Some(ErrorReport::from(&e));
                (r, Some(e))
            }
        }
    }

    /// The Graph check: a Graph token (minted from the refresh token if need be), then the
    /// mailbox's Inbox over Graph.
    async fn test_graph(&self, account: &Account, cancel: &CancellationToken) -> GraphResult {
        let started = Instant::now();
        let mut r = GraphResult {
            ok: false,
            endpoint: None,
            path: None,
            found: None,
            phases_ms: GraphPhases::default(),
            error: None,
            elapsed_ms: 0,
        };
        let t = Instant::now();
        let outcome = async {
            let mut g = self.graph_mailbox(&account.id, cancel).await?;
            r.phases_ms.token = Some(ms(t.elapsed()));
            r.endpoint = Some(g.endpoint());
            r.path = Some(self.https_path(&g.host()));
            let m = Instant::now();
            let found = g.probe().await;
            r.phases_ms.mailbox = Some(ms(m.elapsed()));
            found
        }
        .await;
        match outcome {
            Ok(found) => {
                r.ok = true;
                r.found = Some(found);
            }
            Err(e) => r.error = Some(ErrorReport::from(&e)),
        }
        r.elapsed_ms = ms(started.elapsed());
        r
    }

    async fn probe(
        &self,
        account: &Account,
        wanted: &[Protocol],
        cancel: &CancellationToken,
    ) -> ProbeResult {
        let marker = uuid::Uuid::new_v4().simple().to_string();
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        let msg = format!(
            "From: <{m}>\r\nTo: <{m}>\r\nSubject: mailconnect test {marker}\r\nDate: {date}\r\nMessage-ID: <{marker}@mailconnect.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThis message was sent by the mailconnect e-mail test. It can be deleted.\r\n",
            m = account.mailbox
        );
        // Graph takes the recipients from the message; SMTP gets them as the envelope.
        let graph = account.transport == Transport::Graph;
        let env = (!graph).then(|| Envelope {
            from: account.mailbox.clone(),
            to: vec![account.mailbox.clone()],
        });
        let sent_at = Instant::now();
        let accepted = match self.send(&account.id, msg.as_bytes(), env, cancel).await {
            Ok(a) => a,
            Err(e) => {
                return ProbeResult {
                    ok: false,
                    accepted: None,
                    found_via: None,
                    delivery_ms: None,
                    error: Some(ErrorReport::from(&e)),
                }
            }
        };
        let (via, req) = if graph
            || !wanted
                .iter()
                .any(|p| matches!(p, Protocol::Imap | Protocol::Pop3))
                && account.transport.uses_graph()
        {
            (
                "graph",
                FetchRequest {
                    transport: Some(Transport::Graph),
                    headers_only: true,
                    limit: Some(20),
                    ..Default::default()
                },
            )
        } else {
            let p = if wanted.contains(&Protocol::Imap) {
                Protocol::Imap
            } else {
                Protocol::Pop3
            };
            (
                p.as_str(),
                FetchRequest {
                    protocol: Some(p),
                    headers_only: true,
                    limit: Some(20),
                    ..Default::default()
                },
            )
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.fetch(&account.id, &req, cancel).await {
                Ok(msgs)
                    if msgs
                        .iter()
                        .any(|m| String::from_utf8_lossy(&m.data).contains(&marker)) =>
                {
                    return ProbeResult {
                        ok: true,
                        accepted: Some(accepted),
                        found_via: Some(via),
                        delivery_ms: Some(ms(sent_at.elapsed())),
                        error: None,
                    };
                }
                Ok(_) => {}
                Err(e) => {
                    return ProbeResult {
                        ok: false,
                        accepted: Some(accepted),
                        found_via: None,
                        delivery_ms: None,
                        error: Some(ErrorReport::from(&e)),
                    }
                }
            }
            if Instant::now() > deadline {
                let e = Error::new(
                    ErrorKind::MailServer,
                    format!(
                        "the test message was accepted but did not arrive in {} within 30 s",
                        account.mailbox
                    ),
                );
                return ProbeResult {
                    ok: false,
                    accepted: Some(accepted),
                    found_via: None,
                    delivery_ms: None,
                    error: Some(ErrorReport::from(&e)),
                };
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = cancel.cancelled() => {
                    let e = Error::cancelled("the test");
                    return ProbeResult { ok: false, accepted: Some(accepted), found_via: None, delivery_ms: None, error: Some(ErrorReport::from(&e)) };
                }
            }
        }
    }
}

fn skipped(p: Protocol, s: &ServerConfig, path: String) -> ProtocolResult {
    ProtocolResult {
        protocol: p,
        host: s.host.clone(),
        port: s.port,
        security: s.security,
        path,
        ok: false,
        tls_version: None,
        mechanisms_offered: vec![],
        mechanism_used: None,
        retried_with_refreshed_token: false,
        auth_attempts: 0,
        phases_ms: Phases::default(),
        detail: Some("not tried: no usable token".into()),
        error: None,
        elapsed_ms: 0,
    }
}
