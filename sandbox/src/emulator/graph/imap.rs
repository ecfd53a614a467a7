//! The emulator's IMAP client to Dovecot (async-imap over TLS, XOAUTH2 with the internal
//! Exchange token): what the Graph handlers read and change in a mailbox.

use async_imap::imap_proto::rfc4315::UidSetMember;
use async_imap::imap_proto::{Response as ImapResponse, ResponseCode, Status};
use async_imap::types::{Flag, NameAttribute};
use futures_util::TryStreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::backend::{xoauth2, Stack};
use super::errors::{internal, store_unavailable, GraphError};
use super::query::Facts;

pub(crate) type Session = async_imap::Session<TlsStream<TcpStream>>;

/// A folder of the mailbox.
#[derive(Debug, Clone)]
pub(crate) struct Folder {
    pub name: String,
    /// RFC 6154 special use (`sent`, `drafts`, `trash`, `junk`, `archive`), lowercase.
    pub special: Option<&'static str>,
    pub selectable: bool,
}

/// What is known of a message without reading it.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub uid: u32,
    pub received: i64,
    pub size: u32,
    pub seen: bool,
    pub draft: bool,
    pub flagged: bool,
}

impl Meta {
    pub fn facts(&self) -> Facts {
        Facts {
            received: self.received,
            is_read: self.seen,
            is_draft: self.draft,
            flagged: self.flagged,
        }
    }
}

/// A message read from the server (`partial`: only the first bytes).
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    pub meta: Meta,
    pub raw: Vec<u8>,
    pub partial: bool,
}

struct XOAuth2(Option<String>);

impl async_imap::Authenticator for XOAuth2 {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        // The first challenge gets the credentials; a second one is the error JSON, answered
        // with an empty line.
        self.0.take().unwrap_or_default()
    }
}

fn imap_err(what: &str, e: async_imap::error::Error) -> GraphError {
    internal(&format!("IMAP {what}: {e}"))
}

/// IMAP quoted string.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn meta_of(f: &async_imap::types::Fetch) -> Option<Meta> {
    let mut m = Meta {
        uid: f.uid?,
        received: f.internal_date().map(|d| d.timestamp()).unwrap_or(0),
        size: f.size.unwrap_or(0),
        seen: false,
        draft: false,
        flagged: false,
    };
    for flag in f.flags() {
        match flag {
            Flag::Seen => m.seen = true,
            Flag::Draft => m.draft = true,
            Flag::Flagged => m.flagged = true,
            _ => {}
        }
    }
    Some(m)
}

/// A logged-in IMAP session for one mailbox.
pub(crate) struct Imap {
    s: Session,
    /// Where the session goes back to when the request is done (see [`IdleImap`]).
    home: Option<(std::sync::Arc<Stack>, String)>,
}

/// A logged-in session kept for the mailbox's next request, as Exchange keeps its store
/// connections: without it every Graph request would pay a TLS handshake and a login to
/// Dovecot, and the emulator, not the client, would be what a benchmark measures.
pub(crate) struct IdleImap {
    s: Session,
    since: std::time::Instant,
}

/// Idle sessions kept per mailbox, and for how long.
const IDLE_PER_MAILBOX: usize = 4;
const IDLE_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// Messages up to this size are read whole in lists; larger ones only their first bytes.
const LIST_FULL_LIMIT: u32 = 2 * 1024 * 1024;
const LIST_PARTIAL_BYTES: u32 = 256 * 1024;

impl Imap {
    /// Connect and log in to `mailbox` with `token`.
    pub async fn open(stack: &Stack, mailbox: &str, token: &str) -> Result<Imap, GraphError> {
        let tls = stack.tls_connect(stack.cfg.imap_tls).await?;
        let mut client = async_imap::Client::new(tls);
        client
            .read_response()
            .await
            .map_err(|e| store_unavailable(&format!("IMAP greeting: {e}")))?
            .ok_or_else(|| store_unavailable("IMAP server closed the connection"))?;
        let s = client
            .authenticate("XOAUTH2", XOAuth2(Some(xoauth2(mailbox, token))))
            .await
            .map_err(|(e, _)| store_unavailable(&format!("IMAP login as {mailbox}: {e}")))?;
        Ok(Imap { s, home: None })
    }

    /// A session of `mailbox` kept from an earlier request that still answers (`NOOP`), else
    /// `None`. A session handed out this way, and one opened with [`Imap::open`] and given to
    /// [`Imap::keep_in`], goes back to the stack's pool on [`Imap::logout`].
    pub async fn reuse(stack: &std::sync::Arc<Stack>, mailbox: &str) -> Option<Imap> {
        let key = mailbox.to_ascii_lowercase();
        loop {
            let mut idle = {
                let mut pool = stack.idle.lock().unwrap_or_else(|p| p.into_inner());
                pool.get_mut(&key)?.pop()?
            };
            if idle.since.elapsed() < IDLE_FOR && idle.s.noop().await.is_ok() {
                return Some(Imap {
                    s: idle.s,
                    home: Some((stack.clone(), key)),
                });
            }
        }
    }

    /// Give the session back to `stack`'s pool for `mailbox` when the request is done.
    pub fn keep_in(mut self, stack: std::sync::Arc<Stack>, mailbox: &str) -> Imap {
        self.home = Some((stack, mailbox.to_ascii_lowercase()));
        self
    }

    /// The request is done: back to the pool (or log out when it is full or not pooled). A
    /// session whose request failed is dropped instead, which closes its connection.
    pub async fn logout(mut self) {
        if let Some((stack, key)) = self.home.take() {
            let mut pool = stack.idle.lock().unwrap_or_else(|p| p.into_inner());
            let list = pool.entry(key).or_default();
            if list.len() < IDLE_PER_MAILBOX {
                list.push(IdleImap {
                    s: self.s,
                    since: std::time::Instant::now(),
                });
                return;
            }
        }
        let _ = self.s.logout().await;
    }

    /// Every folder (`LIST "" "*"`).
    pub async fn folders(&mut self) -> Result<Vec<Folder>, GraphError> {
        let names: Vec<_> = self
            .s
            .list(Some(""), Some("*"))
            .await
            .map_err(|e| imap_err("LIST", e))?
            .try_collect()
            .await
            .map_err(|e| imap_err("LIST", e))?;
        Ok(names
            .iter()
            .map(|n| {
                let mut special = None;
                let mut selectable = true;
                for a in n.attributes() {
                    match a {
                        NameAttribute::NoSelect => selectable = false,
                        NameAttribute::Sent => special = Some("sent"),
                        NameAttribute::Drafts => special = Some("drafts"),
                        NameAttribute::Trash => special = Some("trash"),
                        NameAttribute::Junk => special = Some("junk"),
                        NameAttribute::Archive => special = Some("archive"),
                        _ => {}
                    }
                }
                Folder {
                    name: n.name().to_string(),
                    special,
                    selectable,
                }
            })
            .collect())
    }

    /// (messages, unseen) of a folder.
    pub async fn status(&mut self, folder: &str) -> Result<(u32, u32), GraphError> {
        let m = self
            .s
            .status(folder, "(MESSAGES UNSEEN)")
            .await
            .map_err(|e| imap_err("STATUS", e))?;
        Ok((m.exists, m.unseen.unwrap_or(0)))
    }

    /// EXAMINE (read-only) or SELECT a folder: (UIDVALIDITY, messages).
    pub async fn open_folder(
        &mut self,
        folder: &str,
        write: bool,
    ) -> Result<(u32, u32), GraphError> {
        let m = if write {
            self.s.select(folder).await
        } else {
            self.s.examine(folder).await
        };
        let m = m.map_err(|e| match e {
            async_imap::error::Error::No(_) => super::errors::item_not_found(),
            e => imap_err("SELECT", e),
        })?;
        Ok((m.uid_validity.unwrap_or(0), m.exists))
    }

    /// Flags, dates and sizes of every message of the open folder.
    pub async fn metas(&mut self, exists: u32) -> Result<Vec<Meta>, GraphError> {
        if exists == 0 {
            return Ok(vec![]);
        }
        self.fetch_metas("1:*").await
    }

    async fn fetch_metas(&mut self, set: &str) -> Result<Vec<Meta>, GraphError> {
        let fetched: Vec<_> = self
            .s
            .uid_fetch(set, "(UID FLAGS INTERNALDATE RFC822.SIZE)")
            .await
            .map_err(|e| imap_err("FETCH", e))?
            .try_collect()
            .await
            .map_err(|e| imap_err("FETCH", e))?;
        Ok(fetched.iter().filter_map(meta_of).collect())
    }

    /// One message's facts, `None` when the UID does not exist.
    pub async fn meta(&mut self, uid: u32) -> Result<Option<Meta>, GraphError> {
        Ok(self
            .fetch_metas(&uid.to_string())
            .await?
            .into_iter()
            .find(|m| m.uid == uid))
    }

    /// The messages `metas` of the open folder, for a list (large ones cut).
    pub async fn fetch_for_list(&mut self, metas: &[Meta]) -> Result<Vec<Fetched>, GraphError> {
        let (small, large): (Vec<&Meta>, Vec<&Meta>) =
            metas.iter().partition(|m| m.size <= LIST_FULL_LIMIT);
        let mut out = Vec::new();
        for (group, partial) in [(small, false), (large, true)] {
            if group.is_empty() {
                continue;
            }
            let set: Vec<String> = group.iter().map(|m| m.uid.to_string()).collect();
            let items = if partial {
                format!("(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[]<0.{LIST_PARTIAL_BYTES}>)")
            } else {
                "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])".to_string()
            };
            let fetched: Vec<_> = self
                .s
                .uid_fetch(set.join(","), items)
                .await
                .map_err(|e| imap_err("FETCH", e))?
                .try_collect()
                .await
                .map_err(|e| imap_err("FETCH", e))?;
            for f in &fetched {
                if let Some(meta) = meta_of(f) {
                    out.push(Fetched {
                        meta,
                        raw: f.body().unwrap_or_default().to_vec(),
                        partial,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The whole message (`BODY.PEEK[]`); `ErrorItemNotFound` when the UID does not exist.
    pub async fn fetch_raw(&mut self, uid: u32) -> Result<Fetched, GraphError> {
        let fetched: Vec<_> = self
            .s
            .uid_fetch(
                uid.to_string(),
                "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])",
            )
            .await
            .map_err(|e| imap_err("FETCH", e))?
            .try_collect()
            .await
            .map_err(|e| imap_err("FETCH", e))?;
        fetched
            .iter()
            .find_map(|f| {
                let meta = meta_of(f).filter(|m| m.uid == uid)?;
                Some(Fetched {
                    meta,
                    raw: f.body().unwrap_or_default().to_vec(),
                    partial: false,
                })
            })
            .ok_or_else(super::errors::item_not_found)
    }

    /// Run a command whose tagged answer must be OK; the response codes seen on the way.
    async fn codes(
        &mut self,
        literal: Option<&[u8]>,
        command: &str,
    ) -> Result<Vec<(u32, u32)>, GraphError> {
        let tag = self
            .s
            .run_command(command)
            .await
            .map_err(|e| imap_err("command", e))?;
        if let Some(bytes) = literal {
            let io = self.s.get_mut();
            io.write_all(bytes)
                .await
                .map_err(|e| internal(&format!("IMAP write: {e}")))?;
            io.write_all(b"\r\n")
                .await
                .map_err(|e| internal(&format!("IMAP write: {e}")))?;
            io.flush()
                .await
                .map_err(|e| internal(&format!("IMAP write: {e}")))?;
        }
        let mut found = Vec::new();
        let first = |set: &[UidSetMember]| match set.first() {
            Some(UidSetMember::Uid(u)) => Some(*u),
            Some(UidSetMember::UidRange(r)) => Some(*r.start()),
            None => None,
        };
        loop {
            let r = self
                .s
                .read_response()
                .await
                .map_err(|e| internal(&format!("IMAP read: {e}")))?
                .ok_or_else(|| internal("IMAP server closed the connection"))?;
            let (code, done) = match r.parsed() {
                ImapResponse::Data { outcome, .. } => (outcome.code.as_ref(), None),
                ImapResponse::Done {
                    tag: t,
                    status,
                    outcome,
                } if *t == tag => (
                    outcome.code.as_ref(),
                    Some((
                        matches!(status, Status::Ok),
                        outcome.information.as_ref().map(|i| i.to_string()),
                    )),
                ),
                _ => (None, None),
            };
            match code {
                Some(ResponseCode::AppendUid(v, set)) => {
                    if let Some(u) = first(set) {
                        found.push((*v, u));
                    }
                }
                Some(ResponseCode::CopyUid(v, _, dst)) => {
                    if let Some(u) = first(dst) {
                        found.push((*v, u));
                    }
                }
                _ => {}
            }
            if let Some((ok, info)) = done {
                return match ok {
                    true => Ok(found),
                    false => Err(internal(&format!(
                        "IMAP {}: {}",
                        command.split(' ').next().unwrap_or_default(),
                        info.unwrap_or_default()
                    ))),
                };
            }
        }
    }

    /// APPEND (LITERAL+): the new message's (UIDVALIDITY, UID).
    pub async fn append(
        &mut self,
        folder: &str,
        flags: &str,
        bytes: &[u8],
    ) -> Result<(u32, u32), GraphError> {
        let cmd = format!("APPEND {} ({flags}) {{{}+}}", quote(folder), bytes.len());
        self.codes(Some(bytes), &cmd)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| internal("APPEND gave no APPENDUID"))
    }

    /// UID MOVE of one message of the open (selected) folder: its new UID.
    pub async fn move_to(&mut self, uid: u32, dest: &str) -> Result<(u32, u32), GraphError> {
        let cmd = format!("UID MOVE {uid} {}", quote(dest));
        self.codes(None, &cmd)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| internal("MOVE gave no COPYUID"))
    }

    /// Add (`+`) or remove (`-`) flags.
    pub async fn store(&mut self, uid: u32, sign: char, flags: &str) -> Result<(), GraphError> {
        let cmd = format!("UID STORE {uid} {sign}FLAGS.SILENT ({flags})");
        self.codes(None, &cmd).await.map(|_| ())
    }

    /// Remove one message of the open (selected) folder for good.
    pub async fn expunge(&mut self, uid: u32) -> Result<(), GraphError> {
        self.store(uid, '+', "\\Deleted").await?;
        self.codes(None, &format!("UID EXPUNGE {uid}"))
            .await
            .map(|_| ())
    }
}
