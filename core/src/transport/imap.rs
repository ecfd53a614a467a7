//! IMAP on async-imap: connect (implicit TLS or STARTTLS), AUTHENTICATE XOAUTH2 / OAUTHBEARER with
//! the error-challenge rule, folders with special-use flags, fetch by UID range or date, and flag
//! changes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_imap::types::{Fetch, NameAttribute};
use futures_util::TryStreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use zeroize::Zeroizing;

use super::imap_fetch;
use super::pop3::{AuthFailure, Mechanism};
use super::stream::{self, BoxedIo, ConnectTimings, LineConn, SecretSwap, Security, SwapSlot};
use crate::error::{Error, ErrorKind, Result};

/// The stream async-imap runs on. async-imap logs every line it writes at TRACE through the
/// `log` crate, the AUTHENTICATE response included: a host logging at that level would get the
/// SASL string, which is as good as the token. So async-imap only ever sees `PLACEHOLDER`, and
/// the stream puts the real response on the wire in its place.
pub type ImapStream = SecretSwap<BoxedIo>;

/// The raw response async-imap sees and logs (base64-encoded) instead of the real one.
const PLACEHOLDER: &[u8] = b"mailconnect: the SASL response is not shown to async-imap";

/// The server's own words from async-imap's NO/BAD text (`code: None, info: Some("…")`).
pub(crate) fn server_text(t: &str) -> String {
    let info = t
        .split_once("info: Some(\"")
        .or_else(|| t.split_once("information: Some(\""))
        .and_then(|(_, rest)| rest.rsplit_once("\")").map(|(inner, _)| inner));
    let Some(info) = info else {
        return t.to_string();
    };
    let mut out = info.replace("\\\"", "\"").replace("\\\\", "\\");
    if let Some(code) = t
        .strip_prefix("code: Some(")
        .and_then(|r| r.split_once("), info:"))
        .map(|(c, _)| c)
    {
        if !out.starts_with('[') {
            out = format!("[{code}] {out}");
        }
    }
    out
}

fn imap_error(what: &str, e: async_imap::error::Error) -> Error {
    let (kind, reply) = match &e {
        async_imap::error::Error::No(t) => {
            (ErrorKind::MailServer, format!("NO {}", server_text(t)))
        }
        async_imap::error::Error::Bad(t) => {
            (ErrorKind::MailServer, format!("BAD {}", server_text(t)))
        }
        async_imap::error::Error::Io(io) => (ErrorKind::Network, io.to_string()),
        async_imap::error::Error::ConnectionLost => (
            ErrorKind::Network,
            "the server closed the connection".to_string(),
        ),
        other => (ErrorKind::MailServer, other.to_string()),
    };
    let closed = match &e {
        async_imap::error::Error::Io(io) => crate::error::is_closed_connection(io),
        async_imap::error::Error::ConnectionLost => true,
        _ => false,
    };
    let reply = crate::http::sanitize(&reply);
    let err = Error::new(kind, format!("{what}: {reply}"));
    let err = if closed {
        err.with_code(stream::CLOSED)
    } else {
        err
    };
    err.with_evidence(|ev| ev.server_reply = Some(reply))
}

/// Parse `[CAPABILITY ...]` out of a greeting.
fn greeting_capabilities(greeting: &str) -> Vec<String> {
    let Some(start) = greeting.find("[CAPABILITY ") else {
        return vec![];
    };
    let rest = &greeting[start + 12..];
    let end = rest.find(']').unwrap_or(rest.len());
    rest[..end].split_whitespace().map(str::to_string).collect()
}

struct SaslAuthenticator {
    mechanism: Mechanism,
    step: usize,
    challenge: Arc<Mutex<Option<String>>>,
}

impl async_imap::Authenticator for &mut SaslAuthenticator {
    type Response = Vec<u8>;
    fn process(&mut self, challenge: &[u8]) -> Vec<u8> {
        self.step += 1;
        if self.step == 1 {
            // The stream swaps in the real response (see `ImapStream`).
            return PLACEHOLDER.to_vec();
        }
        // A second continuation is an error challenge: keep it, answer so the server finishes.
        if let Ok(mut c) = self.challenge.lock() {
            *c = Some(String::from_utf8_lossy(challenge).into_owned());
        }
        match self.mechanism {
            Mechanism::Xoauth2 => Vec::new(),
            Mechanism::Oauthbearer => vec![1],
        }
    }
}

/// A connected, not yet authenticated IMAP connection.
pub struct ImapConnection {
    client: async_imap::Client<ImapStream>,
    swap: SwapSlot,
    /// The greeting.
    pub greeting: String,
    /// Capabilities announced before authentication.
    pub capabilities: Vec<String>,
    /// Connection timings.
    pub timings: ConnectTimings,
    timeout: Duration,
}

impl ImapConnection {
    /// Connect and read the greeting; with `Starttls`, upgrade first.
    pub async fn connect(
        host: &str,
        port: u16,
        route: &crate::net::Route,
        security: Security,
        tls: Arc<rustls::ClientConfig>,
        timeout: Duration,
    ) -> Result<ImapConnection> {
        let mut timings = ConnectTimings::default();
        let tcp = crate::net::dial(route, host, port, timeout, &mut timings).await?;
        let (io, greeting): (BoxedIo, Option<String>) = match security {
            Security::Tls => (
                Box::new(stream::tls_handshake(tcp, host, tls, timeout, &mut timings).await?),
                None,
            ),
            Security::None => (Box::new(tcp), None),
            Security::Starttls => {
                let mut conn = LineConn::new(Box::new(tcp), host, timeout);
                let greeting = conn.read_line().await?;
                if !greeting.starts_with("* OK") {
                    return Err(Error::new(
                        ErrorKind::MailServer,
                        format!(
                            "the IMAP server {host} refused the connection: {}",
                            crate::http::sanitize(&greeting)
                        ),
                    ));
                }
                conn.write_line("a0 STARTTLS").await?;
                loop {
                    let line = conn.read_line().await?;
                    if line.starts_with("a0 OK") {
                        break;
                    }
                    if line.starts_with("a0 ") {
                        return Err(Error::new(ErrorKind::MailServer, format!("the IMAP server {host}:{port} refused STARTTLS ({}); use port 993 with implicit TLS", crate::http::sanitize(&line))));
                    }
                }
                let plain = conn.into_inner_for_starttls()?;
                (
                    Box::new(stream::tls_handshake(plain, host, tls, timeout, &mut timings).await?),
                    Some(greeting),
                )
            }
        };
        let swap = SwapSlot::default();
        let mut client = async_imap::Client::new(SecretSwap::new(io, swap.clone()));
        let greeting = match greeting {
            Some(g) => g,
            None => {
                // async-imap does not read the greeting itself; AUTHENTICATE would hang without this.
                let resp = tokio::time::timeout(timeout, client.read_response())
                    .await
                    .map_err(|_| {
                        Error::timeout(&format!("waiting for the IMAP greeting of {host}"), timeout)
                    })?
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::Network,
                            format!("reading the IMAP greeting of {host}: {e}"),
                        )
                    })?
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::Network,
                            format!("{host} closed the connection before greeting"),
                        )
                        .with_code(stream::CLOSED)
                    })?;
                String::from_utf8_lossy(resp.borrow_owner())
                    .trim_end()
                    .to_string()
            }
        };
        if greeting.starts_with("* BYE") {
            return Err(Error::new(
                ErrorKind::MailServer,
                format!(
                    "the IMAP server {host} refused the connection: {}",
                    crate::http::sanitize(&greeting)
                ),
            ));
        }
        let capabilities = greeting_capabilities(&greeting);
        Ok(ImapConnection {
            client,
            swap,
            greeting,
            capabilities,
            timings,
            timeout,
        })
    }

    /// SASL mechanisms announced (`AUTH=...`), upper-cased.
    pub fn sasl_mechanisms(&self) -> Vec<String> {
        self.capabilities
            .iter()
            .filter_map(|c| c.strip_prefix("AUTH=").map(|m| m.to_ascii_uppercase()))
            .collect()
    }

    /// AUTHENTICATE with `mechanism`; `raw_initial` is the SASL initial response before base64.
    pub async fn authenticate(
        self,
        mechanism: Mechanism,
        raw_initial: Zeroizing<Vec<u8>>,
    ) -> Result<std::result::Result<ImapSession, AuthFailure>> {
        let challenge = Arc::new(Mutex::new(None));
        let response = crate::transport::sasl::base64_secret(&raw_initial);
        drop(raw_initial);
        let placeholder =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, PLACEHOLDER);
        self.swap.arm(
            placeholder.as_bytes(),
            Zeroizing::new(response.expose_secret().as_bytes().to_vec()),
        );
        drop(response);
        let mut auth = SaslAuthenticator {
            mechanism,
            step: 0,
            challenge: challenge.clone(),
        };
        let timeout = self.timeout;
        let timings = self.timings.clone();
        let swap = self.swap.clone();
        let fut = self.client.authenticate(mechanism.name(), &mut auth);
        let outcome = tokio::time::timeout(timeout, fut).await;
        // Unused when the server refused before asking for the response: wipe it now.
        swap.disarm();
        match outcome {
            Err(_) => Err(Error::timeout("IMAP AUTHENTICATE", timeout)),
            Ok(Ok(session)) => Ok(Ok(ImapSession {
                session,
                timeout,
                timings,
                fetches: 0,
                broken: false,
            })),
            Ok(Err((e, _client))) => {
                let challenge = challenge.lock().ok().and_then(|c| c.clone());
                match e {
                    async_imap::error::Error::No(t) => Ok(Err(AuthFailure {
                        reply: format!("NO {}", server_text(&t)),
                        challenge,
                    })),
                    async_imap::error::Error::Bad(t) => Ok(Err(AuthFailure {
                        reply: format!("BAD {}", server_text(&t)),
                        challenge,
                    })),
                    other => Err(imap_error("IMAP AUTHENTICATE", other)),
                }
            }
        }
    }
}

/// Special use of a folder (RFC 6154), or the Inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpecialUse {
    /// The Inbox.
    Inbox,
    /// Sent items.
    Sent,
    /// Drafts.
    Drafts,
    /// Junk / spam.
    Junk,
    /// Deleted items.
    Trash,
    /// Archive.
    Archive,
    /// All mail.
    All,
    /// Flagged.
    Flagged,
}

/// A folder.
#[derive(Debug, Clone, Serialize)]
pub struct Folder {
    /// Full name.
    pub name: String,
    /// Hierarchy delimiter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// Special use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub special_use: Option<SpecialUse>,
    /// Whether it can be selected.
    pub selectable: bool,
}

/// What to fetch.
#[derive(Debug, Clone, Default)]
pub struct FetchQuery {
    /// Folder (default `INBOX`).
    pub folder: Option<String>,
    /// First UID (inclusive).
    pub uid_from: Option<u32>,
    /// Last UID (inclusive); none = up to the newest.
    pub uid_to: Option<u32>,
    /// Only messages on or after this date (IMAP SEARCH SINCE, `YYYY-MM-DD`).
    pub since: Option<time::Date>,
    /// Headers only.
    pub headers_only: bool,
    /// At most this many (the newest).
    pub limit: Option<usize>,
    /// Only unseen messages (IMAP SEARCH UNSEEN).
    pub unread_only: bool,
}

/// A fetched message.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// UID.
    pub uid: u32,
    /// RFC822.SIZE.
    pub size: Option<u32>,
    /// Flags.
    pub flags: Vec<String>,
    /// INTERNALDATE (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_date: Option<String>,
    /// Header or whole message.
    #[serde(skip)]
    pub data: Vec<u8>,
}

async fn timed<T>(
    timeout: Duration,
    what: &str,
    fut: impl std::future::Future<Output = std::result::Result<T, async_imap::error::Error>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(imap_error(what, e)),
        Err(_) => Err(Error::timeout(what, timeout)),
    }
}

/// An authenticated IMAP session.
pub struct ImapSession {
    session: async_imap::Session<ImapStream>,
    timeout: Duration,
    /// Connection timings.
    pub timings: ConnectTimings,
    /// `UID FETCH` commands sent past async-imap (their tags: `mcf1`, `mcf2`, ...).
    fetches: u32,
    /// A fetch failed part-way: the stream may be in the middle of an answer.
    broken: bool,
}

impl ImapSession {
    /// An error when an earlier failure left the stream in an unknown state; it has the kind
    /// and code of a closed connection, so a managed session reconnects.
    fn usable(&self) -> Result<()> {
        if self.broken {
            return Err(Error::new(
                ErrorKind::Network,
                "the IMAP session was dropped after an earlier command failed part-way",
            )
            .with_code(stream::CLOSED));
        }
        Ok(())
    }

    /// All folders with their special use.
    pub async fn list_folders(&mut self) -> Result<Vec<Folder>> {
        self.usable()?;
        let timeout = self.timeout;
        let fut = async {
            let names: Vec<_> = self
                .session
                .list(Some(""), Some("*"))
                .await?
                .try_collect()
                .await?;
            Ok::<_, async_imap::error::Error>(names)
        };
        let names = match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(imap_error("IMAP LIST", e)),
            Err(_) => return Err(Error::timeout("IMAP LIST", timeout)),
        };
        Ok(names
            .iter()
            .map(|n| {
                let mut special = None;
                let mut selectable = true;
                for a in n.attributes() {
                    match a {
                        NameAttribute::NoSelect => selectable = false,
                        NameAttribute::Sent => special = Some(SpecialUse::Sent),
                        NameAttribute::Drafts => special = Some(SpecialUse::Drafts),
                        NameAttribute::Junk => special = Some(SpecialUse::Junk),
                        NameAttribute::Trash => special = Some(SpecialUse::Trash),
                        NameAttribute::Archive => special = Some(SpecialUse::Archive),
                        NameAttribute::All => special = Some(SpecialUse::All),
                        NameAttribute::Flagged => special = Some(SpecialUse::Flagged),
                        _ => {}
                    }
                }
                if n.name().eq_ignore_ascii_case("INBOX") {
                    special = Some(SpecialUse::Inbox);
                }
                Folder {
                    name: n.name().to_string(),
                    delimiter: n.delimiter().map(str::to_string),
                    special_use: special,
                    selectable,
                }
            })
            .collect())
    }

    /// Fetch messages.
    pub async fn fetch(&mut self, q: &FetchQuery) -> Result<Vec<Message>> {
        self.usable()?;
        let folder = q.folder.clone().unwrap_or_else(|| "INBOX".into());
        let mailbox = timed(self.timeout, "IMAP EXAMINE", self.session.examine(&folder)).await?;
        if mailbox.exists == 0 {
            return Ok(vec![]);
        }
        let from = q.uid_from.unwrap_or(1).max(1);
        // Without a date filter or a limit the range itself is the set: no SEARCH round trip.
        let set = if q.since.is_none() && q.limit.is_none() && !q.unread_only {
            match q.uid_to {
                Some(to) if to < from => return Ok(vec![]),
                Some(to) => format!("{from}:{to}"),
                None => format!("{from}:*"),
            }
        } else {
            let uids = self.search(q).await?;
            if uids.is_empty() {
                return Ok(vec![]);
            }
            uid_set(&uids)
        };
        self.fetch_set(&set, q).await
    }

    /// The UIDs `q` selects in its folder, ascending (`EXAMINE`, then `UID SEARCH`), the newest
    /// `limit` of them when it has one. For splitting a large fetch over several sessions.
    pub async fn uids(&mut self, q: &FetchQuery) -> Result<Vec<u32>> {
        self.usable()?;
        let folder = q.folder.clone().unwrap_or_else(|| "INBOX".into());
        let mailbox = timed(self.timeout, "IMAP EXAMINE", self.session.examine(&folder)).await?;
        if mailbox.exists == 0 {
            return Ok(vec![]);
        }
        self.search(q).await
    }

    /// Fetch the messages with these UIDs from `q`'s folder (`q` gives the folder and whether
    /// headers only; its other fields are not applied again).
    pub async fn fetch_uids(&mut self, q: &FetchQuery, uids: &[u32]) -> Result<Vec<Message>> {
        self.usable()?;
        if uids.is_empty() {
            return Ok(vec![]);
        }
        let folder = q.folder.clone().unwrap_or_else(|| "INBOX".into());
        timed(self.timeout, "IMAP EXAMINE", self.session.examine(&folder)).await?;
        let mut out = self.fetch_set(&uid_set(uids), q).await?;
        let (lo, hi) = (uids[0], uids[uids.len() - 1]);
        out.retain(|m| m.uid >= lo && m.uid <= hi);
        Ok(out)
    }

    /// `UID SEARCH` for `q` in the examined folder: ascending, the newest `limit`.
    async fn search(&mut self, q: &FetchQuery) -> Result<Vec<u32>> {
        let mut uids: Vec<u32> = {
            let mut criteria = Vec::new();
            let from = q.uid_from.unwrap_or(1).max(1);
            criteria.push(match q.uid_to {
                Some(to) => format!("UID {from}:{to}"),
                None => format!("UID {from}:*"),
            });
            if let Some(d) = q.since {
                const MONTHS: [&str; 12] = [
                    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                    "Dec",
                ];
                criteria.push(format!(
                    "SINCE {}-{}-{}",
                    d.day(),
                    MONTHS[d.month() as usize - 1],
                    d.year()
                ));
            }
            if q.unread_only {
                criteria.push("UNSEEN".into());
            }
            let query = criteria.join(" ");
            timed(
                self.timeout,
                "IMAP UID SEARCH",
                self.session.uid_search(query),
            )
            .await?
            .into_iter()
            .collect()
        };
        uids.retain(|u| q.uid_from.is_none_or(|f| *u >= f) && q.uid_to.is_none_or(|t| *u <= t));
        uids.sort_unstable();
        if let Some(limit) = q.limit {
            if uids.len() > limit {
                uids.drain(..uids.len() - limit);
            }
        }
        Ok(uids)
    }

    /// `UID FETCH set` of the examined folder, sorted by UID, within `q`'s UID bounds.
    async fn fetch_set(&mut self, set: &str, q: &FetchQuery) -> Result<Vec<Message>> {
        let from = q.uid_from.unwrap_or(1).max(1);
        let items = if q.headers_only {
            "(UID RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[HEADER])"
        } else {
            "(UID RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[])"
        };
        let part = if q.headers_only {
            imap_fetch::Part::Header
        } else {
            imap_fetch::Part::Whole
        };
        // Read past async-imap (module imap_fetch says why), with a tag of its own.
        self.fetches += 1;
        let tag = format!("mcf{}", self.fetches);
        let fut = imap_fetch::uid_fetch(self.session.as_mut(), &tag, set, items, part);
        let mut out = match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => {
                // A refusal ends the answer cleanly; anything else may leave part of it unread.
                self.broken = !matches!(
                    e,
                    async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_)
                );
                return Err(imap_error("IMAP UID FETCH", e));
            }
            Err(_) => {
                self.broken = true;
                return Err(Error::timeout("IMAP UID FETCH", self.timeout));
            }
        };
        out.retain(|m| m.uid >= from && q.uid_to.is_none_or(|t| m.uid <= t));
        out.sort_by_key(|m| m.uid);
        Ok(out)
    }

    async fn store_flags(&mut self, folder: &str, uids: &[u32], flags: &str) -> Result<()> {
        self.usable()?;
        if uids.is_empty() {
            return Ok(());
        }
        timed(self.timeout, "IMAP SELECT", self.session.select(folder)).await?;
        let set = uid_set(uids);
        let timeout = self.timeout;
        let fut = async {
            let _: Vec<Fetch> = self
                .session
                .uid_store(&set, flags)
                .await?
                .try_collect()
                .await?;
            Ok::<_, async_imap::error::Error>(())
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(imap_error("IMAP UID STORE", e)),
            Err(_) => Err(Error::timeout("IMAP UID STORE", timeout)),
        }
    }

    /// Mark messages as seen.
    pub async fn mark_seen(&mut self, folder: &str, uids: &[u32]) -> Result<()> {
        self.store_flags(folder, uids, "+FLAGS.SILENT (\\Seen)")
            .await
    }

    /// Delete messages (flag and expunge those UIDs only).
    pub async fn delete(&mut self, folder: &str, uids: &[u32]) -> Result<()> {
        self.store_flags(folder, uids, "+FLAGS.SILENT (\\Deleted)")
            .await?;
        let set = uid_set(uids);
        let timeout = self.timeout;
        let fut = async {
            let _: Vec<_> = self.session.uid_expunge(&set).await?.try_collect().await?;
            Ok::<_, async_imap::error::Error>(())
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(imap_error("IMAP UID EXPUNGE", e)),
            Err(_) => Err(Error::timeout("IMAP UID EXPUNGE", timeout)),
        }
    }

    /// Move messages to another folder.
    pub async fn move_to(&mut self, folder: &str, uids: &[u32], target: &str) -> Result<()> {
        self.usable()?;
        if uids.is_empty() {
            return Ok(());
        }
        timed(self.timeout, "IMAP SELECT", self.session.select(folder)).await?;
        let set = uid_set(uids);
        let target = target.to_string();
        timed(
            self.timeout,
            "IMAP UID MOVE",
            self.session.uid_mv(set, target),
        )
        .await
    }

    /// `NOOP`: keeps the session alive and checks it.
    pub async fn noop(&mut self) -> Result<()> {
        self.usable()?;
        timed(self.timeout, "IMAP NOOP", self.session.noop()).await
    }

    /// `LOGOUT`.
    pub async fn logout(mut self) -> Result<()> {
        if self.broken {
            return Ok(());
        }
        timed(self.timeout, "IMAP LOGOUT", self.session.logout()).await
    }
}

/// A compact UID set (`1:3,7,9:10`).
pub fn uid_set(uids: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    out.join(",")
}

/// The raw SASL initial response for `mechanism` (before base64), zeroized on drop.
pub fn raw_initial_response(
    mechanism: Mechanism,
    user: &str,
    host: &str,
    port: u16,
    token: &SecretString,
) -> Zeroizing<Vec<u8>> {
    match mechanism {
        Mechanism::Xoauth2 => crate::transport::sasl::xoauth2_raw(user, token),
        Mechanism::Oauthbearer => crate::transport::sasl::oauthbearer_raw(user, host, port, token),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_words_are_taken_out_of_async_imaps_debug_text() {
        assert_eq!(
            server_text(
                r#"code: None, info: Some("[AUTHENTICATIONFAILED] Authentication failed.")"#
            ),
            "[AUTHENTICATIONFAILED] Authentication failed."
        );
        assert_eq!(
            server_text(r#"code: Some(Alert), info: Some("User is \"x\"")"#),
            r#"[Alert] User is "x""#
        );
        assert_eq!(
            server_text(
                r#"outcome: Outcome { code: None, information: Some("Internal mailbox synchronization failure.") }"#
            ),
            "Internal mailbox synchronization failure."
        );
        assert_eq!(server_text("outcome: something"), "outcome: something");
    }

    #[test]
    fn uid_sets_are_compact() {
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
    }

    #[test]
    fn capabilities_from_the_greeting() {
        let g = "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN AUTH=XOAUTH2 AUTH=OAUTHBEARER] Dovecot ready.";
        let caps = greeting_capabilities(g);
        assert!(caps.contains(&"AUTH=XOAUTH2".to_string()));
        assert!(greeting_capabilities("* OK ready").is_empty());
    }
}
