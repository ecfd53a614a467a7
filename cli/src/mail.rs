//! `send`, `folders` and `fetch` on the core `Client` (the same code the C ABI runs).

use std::path::PathBuf;

use clap::Args;
use mailconnect_core::compose::MessageSpec;
use mailconnect_core::mail::{FetchRequest, FetchedMessage};
use mailconnect_core::model::Transport;
use mailconnect_core::transport::message::Envelope;
use mailconnect_core::{CancellationToken, Language, Protocol};
use serde_json::json;

use crate::admin::{open, table, StoreArgs};
use crate::progress::Spinner;

type Res = Result<(), Box<dyn std::error::Error>>;

/// `send`.
#[derive(Args)]
pub struct SendArgs {
    /// The account to send from (its mailbox is the sender).
    pub account: String,
    /// Recipient (repeat or separate with commas).
    #[arg(long, value_delimiter = ',', required_unless_present = "file")]
    pub to: Vec<String>,
    /// Copy recipient (repeat or separate with commas).
    #[arg(long, value_delimiter = ',')]
    pub cc: Vec<String>,
    /// Blind-copy recipient (repeat or separate with commas).
    #[arg(long, value_delimiter = ',', conflicts_with = "file")]
    pub bcc: Vec<String>,
    /// Subject.
    #[arg(long, required_unless_present = "file", conflicts_with = "file")]
    pub subject: Option<String>,
    /// Plain-text body (`-` reads standard input).
    #[arg(long, conflicts_with = "file")]
    pub body: Option<String>,
    /// An HTML body, read from this file (with --body, the message has both).
    #[arg(long, conflicts_with = "file")]
    pub html: Option<PathBuf>,
    /// Attach this file (repeat for more).
    #[arg(long, conflicts_with = "file")]
    pub attach: Vec<PathBuf>,
    /// Send over `smtp` or `graph` this time instead of the account's transport.
    #[arg(long, value_parser = ["smtp", "graph", "auto"], conflicts_with = "file")]
    pub transport: Option<String>,
    /// Send this RFC 5322 message (.eml) as it is; recipients from its header unless --to is given.
    #[arg(long)]
    pub file: Option<PathBuf>,
}

/// `fetch`.
#[derive(Args)]
pub struct FetchArgs {
    /// The account.
    pub account: String,
    /// Over POP3 instead of IMAP.
    #[arg(long)]
    pub pop3: bool,
    /// IMAP folder (default INBOX).
    #[arg(long, conflicts_with = "pop3")]
    pub folder: Option<String>,
    /// At most this many (the newest).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Only messages on or after this date (YYYY-MM-DD).
    #[arg(long)]
    pub since: Option<String>,
    /// Headers only.
    #[arg(long)]
    pub headers_only: bool,
    /// IMAP sessions sharing a fetch of 1,000 or more messages (1-4; each is a login).
    #[arg(long, conflicts_with = "pop3", value_parser = clap::value_parser!(u8).range(1..=4))]
    pub connections: Option<u8>,
    /// Write each message to DIR/<id>.eml.
    #[arg(long)]
    pub save: Option<PathBuf>,
}

fn addresses(list: &[String]) -> Vec<String> {
    list.iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

pub async fn send(store: &StoreArgs, lang: Language, a: SendArgs) -> Res {
    let c = open(store, lang)?;
    let account = c.account(&a.account)?;
    let to = addresses(&a.to);
    let cc = addresses(&a.cc);
    if let Some(path) = &a.file {
        let raw =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let envelope = (!to.is_empty()).then(|| Envelope {
            from: account.mailbox.clone(),
            to: to.iter().chain(&cc).cloned().collect(),
        });
        let spinner = Spinner::new(store.json, format!("Sending as {}", account.mailbox));
        let reply = c
            .send(&a.account, &raw, envelope, &CancellationToken::new())
            .await;
        drop(spinner);
        let reply = reply?;
        if store.json {
            println!(
                "{}",
                serde_json::to_string(&json!({
                    "account": a.account, "from": account.mailbox, "accepted": reply,
                    "bytes": raw.len()
                }))?
            );
        } else {
            println!("sent ({} bytes): {reply}", raw.len());
        }
        return Ok(());
    }
    let text = match a.body.as_deref() {
        Some("-") => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
            Some(s)
        }
        Some(b) => Some(b.to_string()),
        None => None,
    };
    let html = match &a.html {
        Some(p) => Some(
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?,
        ),
        None => None,
    };
    let spec = json!({
        "to": to, "cc": cc, "bcc": addresses(&a.bcc),
        "subject": a.subject.clone().unwrap_or_default(),
        "text": text.or(html.is_none().then(String::new)),
        "html": html,
        "attachments": a.attach.iter().map(|p| json!({"path": p})).collect::<Vec<_>>(),
    });
    let spec: MessageSpec = mailconnect_core::model::parse_json("message", &spec.to_string())?;
    let via = a.transport.as_deref().map(|t| match t {
        "graph" => Transport::Graph,
        "auto" => Transport::Auto,
        _ => Transport::SmtpImap,
    });
    let spinner = Spinner::new(store.json, format!("Sending as {}", account.mailbox));
    let sent = c
        .send_message(&a.account, &spec, via, &CancellationToken::new())
        .await;
    drop(spinner);
    let sent = sent?;
    if store.json {
        println!(
            "{}",
            serde_json::to_string(&json!({
                "account": a.account, "from": account.mailbox, "accepted": sent.reply,
                "transport": sent.transport, "message_id": sent.message_id, "bytes": sent.size
            }))?
        );
    } else {
        println!(
            "sent over {} ({} bytes, {}): {}",
            sent.transport.to_uppercase(),
            sent.size,
            sent.message_id,
            sent.reply
        );
    }
    Ok(())
}

pub async fn folders(store: &StoreArgs, lang: Language, account: String) -> Res {
    let c = open(store, lang)?;
    let spinner = Spinner::new(store.json, format!("Listing the folders of '{account}'"));
    let folders = c.list_folders(&account, &CancellationToken::new()).await;
    drop(spinner);
    let folders = folders?;
    if store.json {
        println!("{}", serde_json::to_string(&folders)?);
    } else {
        let rows: Vec<Vec<String>> = folders
            .iter()
            .map(|f| {
                vec![
                    f.name.clone(),
                    f.special_use
                        .as_ref()
                        .and_then(|u| serde_json::to_value(u).ok())
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    if f.selectable { "yes" } else { "no" }.into(),
                ]
            })
            .collect();
        table(&["folder", "special use", "selectable"], &rows);
    }
    Ok(())
}

fn header(headers: &[mailparse::MailHeader<'_>], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|h| h.get_key_ref().eq_ignore_ascii_case(name))
        .map(|h| h.get_value())
}

/// From, Subject and Date of a message (decoded), for people.
fn summary(m: &FetchedMessage) -> (String, String, String) {
    match mailparse::parse_headers(&m.data) {
        Ok((h, _)) => (
            header(&h, "from").unwrap_or_default(),
            header(&h, "subject").unwrap_or_default(),
            header(&h, "date").unwrap_or_default(),
        ),
        Err(_) => Default::default(),
    }
}

fn file_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub async fn fetch(store: &StoreArgs, lang: Language, a: FetchArgs) -> Res {
    let c = open(store, lang)?;
    let protocol = if a.pop3 {
        Protocol::Pop3
    } else {
        Protocol::Imap
    };
    let req = FetchRequest {
        protocol: Some(protocol),
        folder: a.folder.clone(),
        since: a.since.clone(),
        headers_only: a.headers_only,
        limit: a.limit,
        connections: a.connections,
        ..Default::default()
    };
    let spinner = Spinner::new(
        store.json,
        format!(
            "Fetching mail of '{}' over {}",
            a.account,
            protocol.as_str().to_uppercase()
        ),
    );
    let msgs = c.fetch(&a.account, &req, &CancellationToken::new()).await;
    drop(spinner);
    let msgs = msgs?;
    if let Some(dir) = &a.save {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        for m in &msgs {
            let p = dir.join(format!("{}.eml", file_name(&m.id)));
            std::fs::write(&p, &m.data)
                .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        }
    }
    if store.json {
        let list: Vec<serde_json::Value> = msgs
            .iter()
            .map(|m| {
                let (from, subject, date) = summary(m);
                let mut v = serde_json::to_value(m).unwrap_or_default();
                v["from"] = json!(from);
                v["subject"] = json!(subject);
                v["date"] = json!(date);
                v
            })
            .collect();
        println!("{}", serde_json::to_string(&list)?);
    } else {
        let rows: Vec<Vec<String>> = msgs
            .iter()
            .map(|m| {
                let (from, subject, date) = summary(m);
                vec![
                    m.id.clone(),
                    date,
                    from,
                    subject,
                    m.size.unwrap_or(m.data.len() as u64).to_string(),
                ]
            })
            .collect();
        table(&["id", "date", "from", "subject", "bytes"], &rows);
        println!(
            "\n{} message(s) over {}{}",
            msgs.len(),
            protocol.as_str().to_uppercase(),
            a.save
                .as_ref()
                .map(|d| format!(", saved in {}", d.display()))
                .unwrap_or_default()
        );
    }
    Ok(())
}
