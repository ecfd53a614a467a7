//! Mail operations on a [`Client`]: send, list folders, fetch (IMAP or POP3), and the rule for
//! authentication failures with a token the store thinks valid: refresh once, retry once, report.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Account, Protocol, ServerConfig, Servers, Transport};
use crate::provider;
use crate::tokens::AccessToken;
use crate::transport::imap::{self, FetchQuery, Folder, ImapConnection, ImapSession, SpecialUse};
use crate::transport::message::{self, Envelope};
use crate::transport::pop3::{AuthFailure, Mechanism, Pop3};
use crate::transport::smtp::SmtpSession;
use crate::transport::{sasl, stream::Security};

/// How an authenticated connection came about (for Test reports).
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuthInfo {
    /// Mechanisms the server offered.
    pub mechanisms_offered: Vec<String>,
    /// Mechanism used.
    pub mechanism_used: String,
    /// Whether the first attempt was refused and a refreshed token was used.
    pub retried_with_refreshed_token: bool,
    /// Whether a refresh happened to get the token.
    pub refreshed: bool,
    /// Time spent authenticating (ms).
    pub auth_ms: u64,
    /// Expiry of the token used (unix seconds).
    #[serde(skip)]
    pub token_expires_at: i64,
}

/// What happened while opening a mail session, kept whether it worked or not: Test reports the
/// phases it got through, the mechanisms, and the retry with a refreshed token even when the
/// server refused both tokens.
#[derive(Debug, Clone, Default)]
pub(crate) struct Attempt {
    /// TCP connect time (ms).
    pub connect_ms: Option<u64>,
    /// TLS handshake time (ms).
    pub tls_ms: Option<u64>,
    /// The negotiated TLS version.
    pub tls_version: Option<String>,
    /// SASL mechanisms the server offered.
    pub mechanisms_offered: Vec<String>,
    /// The mechanism used.
    pub mechanism_used: Option<String>,
    /// Time of the authentications (ms, all attempts together).
    pub auth_ms: Option<u64>,
    /// Authentication attempts made (2 when the first token was refused and a refreshed one tried).
    pub auth_attempts: u32,
    /// Whether the server refused the first token and a refreshed one was tried.
    pub retried_with_refreshed_token: bool,
}

/// An [`Attempt`] filled in as a session is opened.
pub(crate) type AttemptLog = std::sync::Arc<std::sync::Mutex<Attempt>>;

fn note(log: &AttemptLog, f: impl FnOnce(&mut Attempt)) {
    if let Ok(mut a) = log.lock() {
        f(&mut a);
    }
}

/// Note the connection and the mechanism chosen (before authenticating).
fn note_connected(
    log: &AttemptLog,
    timings: &crate::transport::stream::ConnectTimings,
    offered: &[String],
    mechanism: &str,
) {
    note(log, |a| {
        a.connect_ms = Some(timings.connect_ms);
        a.tls_ms = timings.tls_ms;
        a.tls_version = timings.tls_version.clone();
        a.mechanisms_offered = offered.to_vec();
        a.mechanism_used = Some(mechanism.to_string());
    });
}

/// Note one authentication of `ms` milliseconds.
fn note_auth(log: &AttemptLog, ms: u64) {
    note(log, |a| {
        a.auth_ms = Some(a.auth_ms.unwrap_or(0) + ms);
        a.auth_attempts += 1;
    });
}

/// A client's authenticated SMTP sessions kept for bursts (per account), and how many SMTP
/// connections it has opened (for hosts' metrics and tests).
#[derive(Default)]
struct SmtpPool {
    idle: std::sync::Mutex<std::collections::HashMap<String, Vec<IdleSmtp>>>,
    opened: std::sync::atomic::AtomicU64,
}

/// An authenticated SMTP session kept for reuse.
struct IdleSmtp {
    session: SmtpSession,
    token_expires_at: i64,
    since: std::time::Instant,
}

/// Run `$op` on the ready session; if the connection was lost, reconnect once and run it again.
macro_rules! reconnect_once {
    ($self:ident, $cancel:ident, $s:ident => $op:expr) => {{
        let first = {
            let $s = $self.ready($cancel).await?;
            $op.await
        };
        match first {
            Err(e) if e.kind() == ErrorKind::Network => {
                $self.session = None;
                let $s = $self.ready($cancel).await?;
                $op.await
            }
            r => r,
        }
    }};
}

/// A long-lived IMAP session (see [`Client::imap_session`]).
pub struct ManagedImap<'c> {
    client: &'c Client,
    account: Account,
    server: ServerConfig,
    session: Option<ImapSession>,
    token_expires_at: i64,
    authenticated_at: i64,
    reconnects: u32,
}

impl ManagedImap<'_> {
    async fn connect(&mut self, cancel: &CancellationToken) -> Result<()> {
        if let Some(old) = self.session.take() {
            let _ = old.logout().await;
        }
        let (s, info) = self
            .client
            .open_imap(&self.account, &self.server, cancel, &AttemptLog::default())
            .await?;
        self.session = Some(s);
        self.token_expires_at = info.token_expires_at;
        self.authenticated_at = time::OffsetDateTime::now_utc().unix_timestamp();
        Ok(())
    }

    /// The session, re-authenticated first when its token is within the refresh margin.
    async fn ready(&mut self, cancel: &CancellationToken) -> Result<&mut ImapSession> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let lifetime = (self.token_expires_at - self.authenticated_at).max(0);
        let margin = (self.account.options.refresh_margin_secs as i64).min(lifetime / 2);
        if self.session.is_none() || now >= self.token_expires_at - margin {
            self.connect(cancel).await?;
            self.reconnects += 1;
        }
        self.session
            .as_mut()
            .ok_or_else(|| Error::internal("IMAP session missing"))
    }

    /// How often the session re-authenticated or reconnected.
    pub fn reconnects(&self) -> u32 {
        self.reconnects
    }

    /// Fetch messages (see [`FetchQuery`]); reconnects once if the server dropped the session.
    pub async fn fetch(
        &mut self,
        q: &FetchQuery,
        cancel: &CancellationToken,
    ) -> Result<Vec<imap::Message>> {
        reconnect_once!(self, cancel, s => s.fetch(q))
    }

    /// The folders; reconnects once if the server dropped the session.
    pub async fn list_folders(&mut self, cancel: &CancellationToken) -> Result<Vec<Folder>> {
        reconnect_once!(self, cancel, s => s.list_folders())
    }

    /// Mark messages seen.
    pub async fn mark_seen(
        &mut self,
        folder: &str,
        uids: &[u32],
        cancel: &CancellationToken,
    ) -> Result<()> {
        self.ready(cancel).await?.mark_seen(folder, uids).await
    }

    /// Delete messages.
    pub async fn delete(
        &mut self,
        folder: &str,
        uids: &[u32],
        cancel: &CancellationToken,
    ) -> Result<()> {
        self.ready(cancel).await?.delete(folder, uids).await
    }

    /// Move messages.
    pub async fn move_to(
        &mut self,
        folder: &str,
        uids: &[u32],
        target: &str,
        cancel: &CancellationToken,
    ) -> Result<()> {
        self.ready(cancel)
            .await?
            .move_to(folder, uids, target)
            .await
    }

    /// Log out.
    pub async fn close(mut self) -> Result<()> {
        match self.session.take() {
            Some(s) => s.logout().await,
            None => Ok(()),
        }
    }
}

/// What to fetch (the C ABI's `mc_mail_fetch` query JSON).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchRequest {
    /// `imap` (default) or `pop3`.
    pub protocol: Option<Protocol>,
    /// IMAP folder (default INBOX).
    pub folder: Option<String>,
    /// IMAP: first UID.
    pub uid_from: Option<u32>,
    /// IMAP: last UID.
    pub uid_to: Option<u32>,
    /// Only messages on or after this date (`YYYY-MM-DD`).
    pub since: Option<String>,
    /// Headers only.
    pub headers_only: bool,
    /// At most this many (the newest).
    pub limit: Option<usize>,
    /// Mark fetched messages as seen (IMAP) or read (Graph).
    pub mark_seen: bool,
    /// Only unread messages (IMAP, Graph).
    pub unread_only: bool,
    /// `graph` to read over Microsoft Graph (the default for accounts with `"transport":
    /// "graph"`), `smtp_imap` for IMAP or POP3 as `protocol` says.
    pub transport: Option<Transport>,
    /// IMAP: how many sessions share a large fetch, 1 to 4 (default 1). Above 1 the UIDs are
    /// searched first; when there are at least [`SPLIT_MIN`] they are split into that many
    /// runs, each fetched on its own session at the same time. Faster only where the server
    /// serves sessions in parallel (the sandbox's Dovecot on maildir does not). Each session
    /// counts against the server's connections per mailbox.
    pub connections: Option<u8>,
}

/// The fewest messages a fetch is split for (see [`FetchRequest::connections`]): below it the
/// extra logins cost more than they save.
pub const SPLIT_MIN: usize = 1000;

/// A fetched message.
#[derive(Debug, Clone, Serialize)]
pub struct FetchedMessage {
    /// IMAP UID (as text) or POP3 UIDL.
    pub id: String,
    /// Size in octets, as the server reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// IMAP flags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// IMAP INTERNALDATE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_date: Option<String>,
    /// The header or whole message (base64 in JSON, field `raw`).
    #[serde(rename = "raw", serialize_with = "as_base64")]
    pub data: Vec<u8>,
}

fn as_base64<S: serde::Serializer>(data: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    use base64::Engine;
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(data))
}

fn parse_date(s: &str) -> Result<time::Date> {
    time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).map_err(|_| {
        Error::invalid(
            "since",
            format!(
                "'since' must be a date like 2026-11-23, not '{}'",
                crate::error::quote(s)
            ),
        )
    })
}

/// The error a refused AUTH becomes: a [`ErrorKind::MailServer`] error naming `protocol` and
/// `server`, with the sanitized final reply as message and evidence, the decoded error challenge
/// and the endpoint as evidence (what the diagnosis reads). A pure function of its inputs (tests
/// and fuzzing build it directly; hosts get it from the `Client` API's mail operations).
///
/// It never sees the token or the SASL initial response, and must never be given them: its
/// message and evidence hold only what the server sent, sanitized, and the server's address.
pub fn auth_error(protocol: Protocol, server: &ServerConfig, f: AuthFailure) -> Error {
    let reply = crate::http::sanitize(&f.reply);
    Error::new(
        ErrorKind::MailServer,
        format!(
            "{} authentication at {}:{} was refused: {reply}",
            protocol.as_str().to_uppercase(),
            server.host,
            server.port
        ),
    )
    .with_evidence(|ev| {
        ev.server_reply = Some(reply);
        ev.sasl_challenge = f.challenge;
        ev.endpoint = Some(format!("{}:{}", server.host, server.port));
    })
}

fn choose_mechanism(server: &ServerConfig, offered: &[String]) -> Mechanism {
    match server.mechanism.as_deref() {
        Some(m) if m.eq_ignore_ascii_case("oauthbearer") => Mechanism::Oauthbearer,
        Some(_) => Mechanism::Xoauth2,
        None if offered.iter().any(|m| m == "XOAUTH2") => Mechanism::Xoauth2,
        None if offered.iter().any(|m| m == "OAUTHBEARER") => Mechanism::Oauthbearer,
        None => Mechanism::Xoauth2,
    }
}

fn initial_b64(
    mechanism: Mechanism,
    user: &str,
    server: &ServerConfig,
    t: &AccessToken,
) -> secrecy::SecretString {
    match mechanism {
        Mechanism::Xoauth2 => sasl::xoauth2(user, &t.token),
        Mechanism::Oauthbearer => sasl::oauthbearer(user, &server.host, server.port, &t.token),
    }
}

impl Client {
    /// The servers of an account: its own, else the provider's defaults.
    pub fn servers(&self, account: &Account) -> Result<Servers> {
        if let Some(s) = &account.servers {
            return Ok(s.clone());
        }
        let reg = self.registration(&account.registration)?;
        let tid = self
            .inner
            .store
            .load_tokens(&account.id)?
            .and_then(|r| r.meta.identity.and_then(|i| i.tid));
        Ok(provider::default_servers(&reg, tid.as_deref()))
    }

    pub(crate) fn server(&self, account: &Account, p: Protocol) -> Result<ServerConfig> {
        self.servers(account)?.get(p).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::State,
                format!(
                    "account '{}' has no {} server configured",
                    account.id,
                    p.as_str().to_uppercase()
                ),
            )
        })
    }

    pub(crate) fn tls_for(&self, server: &ServerConfig) -> Result<Arc<rustls::ClientConfig>> {
        if server.danger_accept_invalid_certs {
            let mut o = self.inner.tls_options.clone();
            o.danger_accept_invalid_certs = true;
            crate::tls::client_config(&o)
        } else {
            Ok(self.inner.mail_tls.clone())
        }
    }

    /// Run `attempt` with a token; if the server refuses a token the store thought valid, refresh
    /// once and retry once. A refusal of a just-refreshed token is reported at once.
    pub(crate) async fn with_token_retry<S, F, Fut>(
        &self,
        account: &Account,
        protocol: Protocol,
        server: &ServerConfig,
        cancel: &CancellationToken,
        log: &AttemptLog,
        mut attempt: F,
    ) -> Result<(S, AuthInfo)>
    where
        F: FnMut(AccessToken) -> Fut,
        Fut: Future<Output = Result<(std::result::Result<S, AuthFailure>, AuthInfo)>>,
    {
        let (token, refreshed) = self.access_token_inner(account, None, cancel).await?;
        let stale = zeroize::Zeroizing::new(token.token.expose_secret().to_string());
        let expires = token.expires_at;
        let (first, mut info) = attempt(token).await?;
        info.refreshed = refreshed;
        info.token_expires_at = expires;
        match first {
            Ok(s) => return Ok((s, info)),
            Err(f) => {
                let e = auth_error(protocol, server, f);
                // A policy refusal (SMTP AUTH off, security defaults, Conditional Access) says
                // nothing about the token: a new one would be refused the same way.
                if refreshed || policy_refusal(&e) {
                    return Err(e);
                }
                tracing::info!(account = %account.id, protocol = protocol.as_str(), "the server refused the stored token ({}); refreshing once", e.message())
            }
        }
        note(log, |a| a.retried_with_refreshed_token = true);
        let (token, _) = self
            .access_token_inner(account, Some(&stale), cancel)
            .await?;
        let expires = token.expires_at;
        let (second, mut info) = attempt(token).await?;
        info.token_expires_at = expires;
        info.refreshed = true;
        info.retried_with_refreshed_token = true;
        match second {
            Ok(s) => Ok((s, info)),
            Err(f) => Err(auth_error(protocol, server, f)),
        }
    }

    pub(crate) async fn open_imap(
        &self,
        account: &Account,
        server: &ServerConfig,
        cancel: &CancellationToken,
        log: &AttemptLog,
    ) -> Result<(ImapSession, AuthInfo)> {
        let tls = self.tls_for(server)?;
        let route = self.route(crate::net::Channel::Imap, &server.host);
        let timeout = Duration::from_secs(account.options.mail_timeout_secs);
        self.with_token_retry(account, Protocol::Imap, server, cancel, log, |t| {
            let (tls, server, log) = (tls.clone(), server.clone(), log.clone());
            let route = route.clone();
            let user = account.mailbox.clone();
            async move {
                let conn = ImapConnection::connect(
                    &server.host,
                    server.port,
                    &route,
                    server.security,
                    tls,
                    timeout,
                )
                .await
                .map_err(|e| crate::net::through(e, &route))?;
                let offered = conn.sasl_mechanisms();
                let mech = choose_mechanism(&server, &offered);
                note_connected(&log, &conn.timings, &offered, mech.name());
                let raw =
                    imap::raw_initial_response(mech, &user, &server.host, server.port, &t.token);
                let started = std::time::Instant::now();
                let r = conn.authenticate(mech, raw).await?;
                note_auth(&log, started.elapsed().as_millis() as u64);
                let info = AuthInfo {
                    mechanisms_offered: offered,
                    mechanism_used: mech.name().into(),
                    auth_ms: started.elapsed().as_millis() as u64,
                    ..Default::default()
                };
                Ok((r, info))
            }
        })
        .await
    }

    pub(crate) async fn open_pop3(
        &self,
        account: &Account,
        server: &ServerConfig,
        cancel: &CancellationToken,
        log: &AttemptLog,
    ) -> Result<(Pop3, AuthInfo)> {
        let tls = self.tls_for(server)?;
        let route = self.route(crate::net::Channel::Pop3, &server.host);
        let timeout = Duration::from_secs(account.options.mail_timeout_secs);
        let max = account.options.pop3.max_message_bytes;
        self.with_token_retry(account, Protocol::Pop3, server, cancel, log, |t| {
            let (tls, server, log) = (tls.clone(), server.clone(), log.clone());
            let route = route.clone();
            let user = account.mailbox.clone();
            async move {
                let mut pop = Pop3::connect(
                    &server.host,
                    server.port,
                    &route,
                    server.security,
                    tls,
                    timeout,
                )
                .await
                .map_err(|e| crate::net::through(e, &route))?;
                pop.max_message = max;
                let offered = pop.sasl_mechanisms();
                let mech = choose_mechanism(&server, &offered);
                note_connected(&log, &pop.timings, &offered, mech.name());
                let started = std::time::Instant::now();
                let r = pop
                    .authenticate(mech, &initial_b64(mech, &user, &server, &t))
                    .await?;
                note_auth(&log, started.elapsed().as_millis() as u64);
                let info = AuthInfo {
                    mechanisms_offered: offered,
                    mechanism_used: mech.name().into(),
                    auth_ms: started.elapsed().as_millis() as u64,
                    ..Default::default()
                };
                Ok((r.map(|()| pop), info))
            }
        })
        .await
    }

    pub(crate) async fn open_smtp(
        &self,
        account: &Account,
        server: &ServerConfig,
        cancel: &CancellationToken,
        log: &AttemptLog,
    ) -> Result<(SmtpSession, AuthInfo)> {
        let tls = self.tls_for(server)?;
        let route = self.route(crate::net::Channel::Smtp, &server.host);
        let timeout = Duration::from_secs(account.options.mail_timeout_secs);
        // The SASL user is the login for SMTP (a delegate sends as the shared mailbox with Send As).
        let user = account
            .login
            .clone()
            .unwrap_or_else(|| account.mailbox.clone());
        self.with_token_retry(account, Protocol::Smtp, server, cancel, log, |t| {
            let (tls, server, user, log) = (tls.clone(), server.clone(), user.clone(), log.clone());
            let route = route.clone();
            async move {
                let mut smtp = SmtpSession::connect(
                    &server.host,
                    server.port,
                    &route,
                    server.security,
                    tls,
                    timeout,
                    "mailconnect.localhost",
                )
                .await
                .map_err(|e| crate::net::through(e, &route))?;
                let offered = smtp.sasl_mechanisms();
                let mech = choose_mechanism(&server, &offered);
                note_connected(&log, &smtp.timings, &offered, mech.name());
                let started = std::time::Instant::now();
                let r = smtp
                    .authenticate(mech, &initial_b64(mech, &user, &server, &t))
                    .await?;
                note_auth(&log, started.elapsed().as_millis() as u64);
                let info = AuthInfo {
                    mechanisms_offered: offered,
                    mechanism_used: mech.name().into(),
                    auth_ms: started.elapsed().as_millis() as u64,
                    ..Default::default()
                };
                Ok((r.map(|()| smtp), info))
            }
        })
        .await
    }

    /// Send a raw RFC 5322 message. Without `envelope` it is derived from the header (Bcc removed).
    /// Returns the server's acceptance reply. Sessions are kept for 60 s and reused for bursts (at
    /// most 2 idle per account; Exchange allows 3 concurrent submissions per mailbox), as long as
    /// their token is not about to expire and the server still answers.
    ///
    /// The account's transport decides the way: SMTP, Microsoft Graph (the message's MIME as it
    /// is), or `auto`: SMTP until the server answers that SMTP AUTH is disabled (`5.7.139`), then
    /// Graph for this message and, remembered in the account's record, for the next ones. The
    /// fallback happens only for that refusal, which comes before any of the message is sent.
    pub async fn send(
        &self,
        id: &str,
        raw: &[u8],
        envelope: Option<Envelope>,
        cancel: &CancellationToken,
    ) -> Result<String> {
        self.send_routed(id, raw, envelope, None, cancel)
            .await
            .map(|(reply, _)| reply)
    }

    /// Build the message `spec` describes (see [`crate::compose`]) and send it as
    /// [`Client::send`] does; the result says which transport carried it.
    /// `via` overrides the account's transport for this message (`smtp_imap` = SMTP).
    pub async fn send_message(
        &self,
        id: &str,
        spec: &crate::compose::MessageSpec,
        via: Option<Transport>,
        cancel: &CancellationToken,
    ) -> Result<crate::compose::SendResult> {
        let account = self.account(id)?;
        let (raw, message_id) = crate::compose::build(spec, &account.mailbox)?;
        let (reply, transport) = self.send_routed(id, &raw, None, via, cancel).await?;
        Ok(crate::compose::SendResult {
            transport,
            message_id,
            reply,
            size: raw.len(),
        })
    }

    /// [`Client::send`], and the transport that carried the message (`smtp` or `graph`).
    async fn send_routed(
        &self,
        id: &str,
        raw: &[u8],
        envelope: Option<Envelope>,
        via: Option<Transport>,
        cancel: &CancellationToken,
    ) -> Result<(String, &'static str)> {
        let mut account = self.account(id)?;
        if let Some(t) = via {
            account.transport = t;
        }
        let what = format!("sending mail for account '{}'", crate::error::quote(id));
        let rec = {
            let aid = account.id.clone();
            self.blocking(move |s| s.load_tokens(&aid)).await?
        };
        if matches!(
            crate::account_state::state_of(rec.as_ref()),
            crate::account_state::AccountState::NotConnected
                | crate::account_state::AccountState::NeedsReauthorization
        ) {
            // Disconnected or revoked (here or by another process): a session that logged in
            // before must not carry mail for it any more.
            self.drop_idle_smtp(&account.id);
        }
        let route = crate::account_state::transport_of(&account, rec.as_ref());
        if route.send == "graph" {
            return self
                .graph_send(id, raw, envelope.as_ref(), cancel, &what)
                .await
                .map(|r| (r, "graph"));
        }
        match self
            .smtp_send(&account, raw, envelope.clone(), cancel, &what)
            .await
        {
            Err(e) if account.transport == Transport::Auto && smtp_auth_disabled(&e) => {
                let whose = match crate::diagnose::code_for(&e, crate::diagnose::Context::default())
                {
                    "MC-SMTP-AUTH-DISABLED-TENANT" => "the organisation (tenant)",
                    _ => "this mailbox",
                };
                tracing::warn!(account = %account.id, "SMTP AUTH is disabled for {whose} ({}); sending over Microsoft Graph from now on", e.message());
                self.remember_smtp_auth_disabled(&account.id).await;
                self.graph_send(id, raw, envelope.as_ref(), cancel, &what)
                    .await
                    .map(|r| (r, "graph"))
            }
            r => r.map(|r| (r, "smtp")),
        }
    }

    /// Send over Microsoft Graph (the MIME as it is; an explicit envelope has no Graph form).
    async fn graph_send(
        &self,
        id: &str,
        raw: &[u8],
        envelope: Option<&Envelope>,
        cancel: &CancellationToken,
        what: &str,
    ) -> Result<String> {
        if envelope.is_some() {
            return Err(Error::invalid(
                "envelope",
                "an explicit SMTP envelope cannot be sent over Microsoft Graph: Graph takes the recipients from the message's To, Cc and Bcc",
            ));
        }
        let mut g = self
            .graph_mailbox(id, cancel)
            .await
            .map_err(|e| e.context(what))?;
        let sent = g.send_mime(raw).await.map_err(|e| e.context(what))?;
        Ok(format!(
            "202 Accepted by Microsoft Graph ({}{})",
            sent.method,
            sent.message_id
                .map(|m| format!(", {m}"))
                .unwrap_or_default()
        ))
    }

    /// Remember in the account's record that SMTP AUTH is disabled for it (best effort: a lost
    /// write only means the next send tries SMTP once more).
    async fn remember_smtp_auth_disabled(&self, id: &str) {
        let aid = id.to_string();
        let r = self
            .blocking(move |s| {
                for _ in 0..5 {
                    let Some(mut rec) = s.load_tokens(&aid)? else {
                        return Ok(());
                    };
                    if rec.meta.smtp_auth_disabled_at.is_some() {
                        return Ok(());
                    }
                    rec.meta.smtp_auth_disabled_at = Some(crate::account_state::now());
                    let expected = rec.version;
                    if s.save_tokens(&rec, expected)?.is_some() {
                        return Ok(());
                    }
                }
                Ok(())
            })
            .await;
        if let Err(e) = r {
            tracing::warn!(
                account = id,
                "remembering that SMTP AUTH is disabled failed: {}",
                e.message()
            );
        }
    }

    /// Send over SMTP, reusing an idle session of the account where one is alive.
    async fn smtp_send(
        &self,
        account: &Account,
        raw: &[u8],
        envelope: Option<Envelope>,
        cancel: &CancellationToken,
        what: &str,
    ) -> Result<String> {
        let (envelope, body) = match envelope {
            Some(e) => (e, raw.to_vec()),
            None => message::derive(raw, &account.mailbox)?,
        };
        let server = self.server(account, Protocol::Smtp)?;
        let (mut smtp, mut token_expires_at, mut reused) =
            match self.take_idle_smtp(&account.id).await {
                Some(i) => (i.session, i.token_expires_at, true),
                None => {
                    let (s, t) = self.new_smtp(account, &server, cancel, what).await?;
                    (s, t, false)
                }
            };
        // At most once: a message is never submitted twice. The one retry is for a pooled session
        // that turns out to be dead before anything of the message was sent.
        loop {
            let r = tokio::select! {
                r = smtp.send_message(&envelope, &body) => r,
                _ = cancel.cancelled() => return Err(Error::new(
                    ErrorKind::Cancelled,
                    format!("{what} was cancelled; if the message was already being transferred, the server may have accepted it"),
                )),
            };
            match r {
                Ok(reply) => {
                    self.put_idle_smtp(
                        &account.id,
                        IdleSmtp {
                            session: smtp,
                            token_expires_at,
                            since: std::time::Instant::now(),
                        },
                    );
                    return Ok(reply);
                }
                Err(f) if reused && !f.maybe_accepted && f.error.kind() == ErrorKind::Network => {
                    tracing::debug!(account = %account.id, "a pooled SMTP session was dead before anything was sent ({}); using a new one", f.error.message());
                    (smtp, token_expires_at) =
                        self.new_smtp(account, &server, cancel, what).await?;
                    reused = false;
                }
                Err(f) => return Err(f.error.context(what)),
            }
        }
    }

    async fn new_smtp(
        &self,
        account: &Account,
        server: &ServerConfig,
        cancel: &CancellationToken,
        what: &str,
    ) -> Result<(SmtpSession, i64)> {
        let (s, info) = self
            .open_smtp(account, server, cancel, &AttemptLog::default())
            .await
            .map_err(|e| e.context(what))?;
        self.feature::<SmtpPool>()
            .opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok((s, info.token_expires_at))
    }

    /// SMTP connections this client has opened so far.
    pub fn smtp_connections_opened(&self) -> u64 {
        self.feature::<SmtpPool>()
            .opened
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn take_idle_smtp(&self, id: &str) -> Option<IdleSmtp> {
        loop {
            let mut c = self
                .feature::<SmtpPool>()
                .idle
                .lock()
                .ok()
                .and_then(|mut m| m.get_mut(id).and_then(Vec::pop))?;
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            if c.since.elapsed() < Duration::from_secs(60)
                && c.token_expires_at - 60 > now
                && c.session.is_alive().await
            {
                return Some(c);
            }
            let _ = c.session.quit().await;
        }
    }

    /// Close the account's idle SMTP sessions (after a disconnect, or when its tokens are gone).
    pub(crate) fn drop_idle_smtp(&self, id: &str) {
        let idle = self
            .feature::<SmtpPool>()
            .idle
            .lock()
            .ok()
            .and_then(|mut m| m.remove(id));
        drop(idle);
    }

    /// Close every idle SMTP session (the network path changed: none may keep the old one).
    pub(crate) fn drop_all_idle_smtp(&self) {
        let idle = self
            .feature::<SmtpPool>()
            .idle
            .lock()
            .ok()
            .map(|mut m| std::mem::take(&mut *m));
        drop(idle);
    }

    fn put_idle_smtp(&self, id: &str, s: IdleSmtp) {
        if let Ok(mut m) = self.feature::<SmtpPool>().idle.lock() {
            let v = m.entry(id.to_string()).or_default();
            if v.len() < 2 {
                v.push(s);
            }
        }
    }

    /// A long-lived IMAP session that re-authenticates with a fresh token before the one it logged
    /// in with expires (Exchange ends sessions with `AccessTokenExpired` otherwise), and reconnects
    /// once when the server drops the connection.
    pub async fn imap_session(
        &self,
        id: &str,
        cancel: &CancellationToken,
    ) -> Result<ManagedImap<'_>> {
        let account = self.account(id)?;
        let server = self.server(&account, Protocol::Imap)?;
        let mut m = ManagedImap {
            client: self,
            account,
            server,
            session: None,
            token_expires_at: 0,
            authenticated_at: 0,
            reconnects: 0,
        };
        m.connect(cancel).await?;
        Ok(m)
    }

    /// The folders of an account: over IMAP, or over Microsoft Graph for a `graph` account.
    pub async fn list_folders(&self, id: &str, cancel: &CancellationToken) -> Result<Vec<Folder>> {
        let account = self.account(id)?;
        let what = format!(
            "listing the folders of account '{}'",
            crate::error::quote(id)
        );
        if account.transport == Transport::Graph {
            let mut g = self.graph_mailbox(id, cancel).await?;
            let folders = g.folders().await.map_err(|e| e.context(&what))?;
            return Ok(folders
                .into_iter()
                .map(|f| Folder {
                    name: f.display_name,
                    delimiter: Some("/".into()),
                    special_use: f.well_known.and_then(special_use_of),
                    selectable: true,
                })
                .collect());
        }
        let server = self.server(&account, Protocol::Imap)?;
        let (mut s, _) = self
            .open_imap(&account, &server, cancel, &AttemptLog::default())
            .await
            .map_err(|e| e.context(&what))?;
        let folders = s.list_folders().await.map_err(|e| e.context(&what))?;
        let _ = s.logout().await;
        Ok(folders)
    }

    /// Fetch messages over IMAP or POP3.
    pub async fn fetch(
        &self,
        id: &str,
        req: &FetchRequest,
        cancel: &CancellationToken,
    ) -> Result<Vec<FetchedMessage>> {
        let account = self.account(id)?;
        let what = format!("fetching mail for account '{}'", crate::error::quote(id));
        let since = req.since.as_deref().map(parse_date).transpose()?;
        if fetch_over_graph(&account, req)? {
            return self
                .graph_fetch(id, req, since, cancel)
                .await
                .map_err(|e| e.context(&what));
        }
        match req.protocol.unwrap_or(Protocol::Imap) {
            Protocol::Imap => {
                let server = self.server(&account, Protocol::Imap)?;
                let (mut s, _) = self
                    .open_imap(&account, &server, cancel, &AttemptLog::default())
                    .await
                    .map_err(|e| e.context(&what))?;
                let q = FetchQuery {
                    folder: req.folder.clone(),
                    uid_from: req.uid_from,
                    uid_to: req.uid_to,
                    since,
                    headers_only: req.headers_only,
                    limit: req.limit,
                    unread_only: req.unread_only,
                };
                let connections = usize::from(req.connections.unwrap_or(1));
                if !(1..=4).contains(&connections) {
                    let _ = s.logout().await;
                    return Err(Error::invalid(
                        "connections",
                        "'connections' must be 1, 2, 3 or 4",
                    ));
                }
                let msgs = if connections > 1 {
                    self.fetch_split(&account, &server, &mut s, &q, connections, cancel)
                        .await
                } else {
                    s.fetch(&q).await
                };
                let msgs = match msgs {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = s.logout().await;
                        return Err(e.context(&what));
                    }
                };
                if req.mark_seen {
                    let uids: Vec<u32> = msgs.iter().map(|m| m.uid).collect();
                    s.mark_seen(q.folder.as_deref().unwrap_or("INBOX"), &uids)
                        .await
                        .map_err(|e| e.context(&what))?;
                }
                let _ = s.logout().await;
                Ok(msgs
                    .into_iter()
                    .map(|m| FetchedMessage {
                        id: m.uid.to_string(),
                        size: m.size.map(u64::from),
                        flags: m.flags,
                        internal_date: m.internal_date,
                        data: m.data,
                    })
                    .collect())
            }
            Protocol::Pop3 => {
                let server = self.server(&account, Protocol::Pop3)?;
                let (mut pop, _) = self
                    .open_pop3(&account, &server, cancel, &AttemptLog::default())
                    .await
                    .map_err(|e| e.context(&what))?;
                let out = self
                    .pop3_fetch(&account, &mut pop, req, since)
                    .await
                    .map_err(|e| e.context(&what))?;
                // Deletions happen at QUIT. When the connection breaks there, the server may
                // already have deleted what was read: return it rather than lose it. Without
                // deletion nothing is at stake either way.
                if let Err(e) = pop.quit().await {
                    if e.kind() == ErrorKind::MailServer {
                        return Err(e.context(&what));
                    }
                    tracing::warn!(account = %account.id, "POP3 QUIT failed ({}); returning the {} messages read (the server may or may not have deleted them)", e.message(), out.len());
                }
                Ok(out)
            }
            Protocol::Smtp => Err(Error::invalid(
                "protocol",
                "'protocol' must be imap or pop3 to fetch",
            )),
        }
    }

    /// [`FetchRequest::connections`] > 1: the UIDs on `first`, then runs of them on `first` and
    /// on sessions opened for the purpose, at the same time. A session that cannot be opened
    /// leaves its share to the others; the result is the same as one session's.
    async fn fetch_split(
        &self,
        account: &Account,
        server: &ServerConfig,
        first: &mut ImapSession,
        q: &FetchQuery,
        connections: usize,
        cancel: &CancellationToken,
    ) -> Result<Vec<imap::Message>> {
        let uids = first.uids(q).await?;
        if uids.len() < SPLIT_MIN {
            return first.fetch_uids(q, &uids).await;
        }
        let logs: Vec<AttemptLog> = (1..connections).map(|_| AttemptLog::default()).collect();
        let opened = futures_util::future::join_all(
            logs.iter()
                .map(|log| self.open_imap(account, server, cancel, log)),
        )
        .await;
        let mut extra: Vec<ImapSession> = Vec::new();
        for o in opened {
            match o {
                Ok((s, _)) => extra.push(s),
                Err(e) => tracing::warn!(
                    account = %account.id,
                    "an extra IMAP session for a split fetch could not be opened ({}); the others take its share",
                    e.message()
                ),
            }
        }
        let runs = extra.len() + 1;
        let per = uids.len().div_ceil(runs);
        let mut chunks = uids.chunks(per);
        let own = chunks.next().unwrap_or(&[]);
        let others = extra
            .iter_mut()
            .zip(chunks)
            .map(|(s, c)| s.fetch_uids(q, c));
        let (mine, theirs) = futures_util::future::join(
            first.fetch_uids(q, own),
            futures_util::future::join_all(others),
        )
        .await;
        for s in extra {
            let _ = s.logout().await;
        }
        let mut out = mine?;
        for r in theirs {
            out.extend(r?);
        }
        out.sort_by_key(|m| m.uid);
        Ok(out)
    }

    async fn pop3_fetch(
        &self,
        account: &Account,
        pop: &mut Pop3,
        req: &FetchRequest,
        since: Option<time::Date>,
    ) -> Result<Vec<FetchedMessage>> {
        let opts = &account.options.pop3;
        let uidl = pop.uidl().await?;
        let sizes = pop.list().await?;
        let mut numbers: Vec<(u32, String)> = uidl;
        numbers.sort_by_key(|(n, _)| *n);
        if let Some(limit) = req.limit {
            if numbers.len() > limit {
                numbers.drain(..numbers.len() - limit);
            }
        }
        let cutoff = match (since, opts.ignore_older_than_days) {
            (Some(d), _) => Some(d),
            (None, Some(days)) => {
                Some((time::OffsetDateTime::now_utc() - time::Duration::days(days.into())).date())
            }
            (None, None) => None,
        };
        let mut out = Vec::new();
        for (n, uid) in numbers {
            if let Some(cutoff) = cutoff {
                let head = pop.top(n, 0).await?;
                if let Some(date) = header_date(&head) {
                    if date < cutoff {
                        continue;
                    }
                }
            }
            let data = if req.headers_only {
                pop.top(n, 0).await?
            } else {
                pop.retr(n).await?
            };
            if !opts.leave_on_server && !req.headers_only {
                pop.dele(n).await?;
            }
            let size = sizes.iter().find(|l| l.number == n).map(|l| l.size);
            out.push(FetchedMessage {
                id: uid,
                size,
                flags: vec![],
                internal_date: None,
                data,
            });
        }
        Ok(out)
    }
}

/// The day of a message's `Date` header (in UTC), read from its header block: how a POP3 fetch
/// with `since` or `ignore_older_than_days` decides, from the `TOP n 0` answer, which messages
/// are too old. Takes any bytes (tests and fuzzing call it directly; hosts use the `Client` API's
/// fetch).
///
/// It never fails or panics on hostile input: no `Date` header, or one it cannot read, is `None`
/// (the message is then kept, not skipped). It never logs the headers.
pub fn header_date(head: &[u8]) -> Option<time::Date> {
    let (headers, _) = mailparse::parse_headers(head).ok()?;
    let value = headers
        .iter()
        .find(|h| h.get_key_ref().eq_ignore_ascii_case("date"))?
        .get_value();
    let ts = mailparse::dateparse(&value).ok()?;
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .map(|t| t.date())
}

/// Whether the security of `server` puts a token on the wire in clear.
pub fn is_cleartext(server: &ServerConfig) -> bool {
    server.security == Security::None
}

/// Whether `req` reads over Microsoft Graph: asked for, or the account's transport is Graph
/// (unless the request names IMAP or POP3 explicitly through `transport: smtp_imap`).
fn fetch_over_graph(account: &Account, req: &FetchRequest) -> Result<bool> {
    let graph = match req.transport {
        Some(t) => t == Transport::Graph,
        None => account.transport == Transport::Graph && req.protocol.is_none(),
    };
    if graph && (req.uid_from.is_some() || req.uid_to.is_some()) {
        return Err(Error::invalid(
            "uid_from",
            "'uid_from'/'uid_to' are IMAP UIDs; Microsoft Graph selects by 'since', 'unread_only' and 'limit'",
        ));
    }
    if graph && req.protocol == Some(Protocol::Pop3) {
        return Err(Error::invalid(
            "protocol",
            "'protocol': 'pop3' cannot be read over Microsoft Graph; leave 'protocol' out",
        ));
    }
    Ok(graph)
}

/// The IMAP SPECIAL-USE of a Graph well-known folder.
fn special_use_of(well_known: &str) -> Option<SpecialUse> {
    Some(match well_known {
        "inbox" => SpecialUse::Inbox,
        "sentitems" => SpecialUse::Sent,
        "drafts" => SpecialUse::Drafts,
        "deleteditems" => SpecialUse::Trash,
        "junkemail" => SpecialUse::Junk,
        "archive" => SpecialUse::Archive,
        _ => return None,
    })
}

impl Client {
    /// Fetch over Microsoft Graph: the folder's messages newest first, each message's MIME.
    async fn graph_fetch(
        &self,
        id: &str,
        req: &FetchRequest,
        since: Option<time::Date>,
        cancel: &CancellationToken,
    ) -> Result<Vec<FetchedMessage>> {
        let mut g = self.graph_mailbox(id, cancel).await?;
        let folder = req.folder.as_deref().unwrap_or("inbox");
        let q = crate::graph::ListQuery {
            since,
            unread_only: req.unread_only,
            limit: req.limit,
        };
        let listed = g.list(folder, &q).await?;
        let mut out = Vec::with_capacity(listed.len());
        for m in listed {
            let mut data = g.raw(&m.id).await?;
            if req.headers_only {
                data.truncate(header_end(&data));
            }
            if req.mark_seen && !m.is_read {
                g.mark_read(&m.id, true).await?;
            }
            out.push(FetchedMessage {
                size: Some(data.len() as u64),
                flags: if m.is_read || req.mark_seen {
                    vec!["\\Seen".into()]
                } else {
                    vec![]
                },
                internal_date: m.received,
                id: m.id,
                data,
            });
        }
        Ok(out)
    }
}

/// Where a message's header block ends (after the empty line), or its length.
fn header_end(data: &[u8]) -> usize {
    data.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| data.windows(2).position(|w| w == b"\n\n").map(|p| p + 2))
        .unwrap_or(data.len())
}

/// Whether `e` is SMTP's "SMTP AUTH is disabled" refusal (`535 5.7.139 … disabled for the
/// Tenant/Mailbox`), the one failure `auto` answers by sending over Microsoft Graph.
fn smtp_auth_disabled(e: &Error) -> bool {
    matches!(
        crate::diagnose::code_for(e, crate::diagnose::Context::default()),
        "MC-SMTP-AUTH-DISABLED-TENANT" | "MC-SMTP-AUTH-DISABLED-MAILBOX"
    )
}

/// Whether a refused AUTH is a policy decision of the server (`5.7.139`: SMTP AUTH disabled,
/// security defaults, Conditional Access) rather than a token it did not accept.
fn policy_refusal(e: &Error) -> bool {
    matches!(
        crate::diagnose::code_for(e, crate::diagnose::Context::default()),
        "MC-SMTP-AUTH-DISABLED-TENANT"
            | "MC-SMTP-AUTH-DISABLED-MAILBOX"
            | "MC-SMTP-AUTH-POLICY"
            | "MC-SECURITY-DEFAULTS"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_choice_prefers_xoauth2_like_exchange_and_honours_overrides() {
        let s = |m: Option<&str>| ServerConfig {
            host: "h".into(),
            port: 1,
            security: Security::Tls,
            mechanism: m.map(Into::into),
            danger_accept_invalid_certs: false,
        };
        assert_eq!(
            choose_mechanism(
                &s(None),
                &["PLAIN".into(), "XOAUTH2".into(), "OAUTHBEARER".into()]
            ),
            Mechanism::Xoauth2
        );
        assert_eq!(
            choose_mechanism(&s(None), &["OAUTHBEARER".into()]),
            Mechanism::Oauthbearer
        );
        assert_eq!(
            choose_mechanism(&s(Some("oauthbearer")), &["XOAUTH2".into()]),
            Mechanism::Oauthbearer
        );
    }

    #[test]
    fn header_dates() {
        let d =
            header_date(b"Date: Mon, 23 Nov 2026 10:00:00 +0100\r\nSubject: x\r\n\r\n").unwrap();
        assert_eq!(d.to_string(), "2026-11-23");
        assert!(header_date(b"Subject: x\r\n\r\n").is_none());
    }
}
