//! Opaque ids of messages, folders and attachments. Like Exchange's, an id names one item in
//! one mailbox and changes when the item moves to another folder; here it encodes the mailbox,
//! the Dovecot folder, its UIDVALIDITY and the message's UID (base64url, `AAMk…` like Graph's).

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;

const SEP: char = '\u{1f}';

/// Where a message lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct MessageKey {
    /// Mailbox address, lowercase.
    pub mailbox: String,
    /// IMAP folder name as Dovecot spells it.
    pub folder: String,
    pub uidvalidity: u32,
    pub uid: u32,
}

fn encode(prefix: &str, parts: &[&str]) -> String {
    let joined = parts.join(&SEP.to_string());
    format!("{prefix}{}", URL_SAFE.encode(joined.as_bytes()))
}

fn decode(prefix: &str, id: &str) -> Option<Vec<String>> {
    let rest = id.strip_prefix(prefix)?;
    let bytes = URL_SAFE_NO_PAD.decode(rest.trim_end_matches('=')).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    Some(text.split(SEP).map(str::to_string).collect())
}

/// The message id of `k`.
pub(crate) fn message_id(k: &MessageKey) -> String {
    encode(
        "AAMk",
        &[
            "m",
            &k.mailbox,
            &k.folder,
            &k.uidvalidity.to_string(),
            &k.uid.to_string(),
        ],
    )
}

/// Parse a message id; `None` when it is not one of ours.
pub(crate) fn parse_message_id(id: &str) -> Option<MessageKey> {
    let p = decode("AAMk", id)?;
    match p.as_slice() {
        [kind, mailbox, folder, validity, uid] if kind == "m" => Some(MessageKey {
            mailbox: mailbox.clone(),
            folder: folder.clone(),
            uidvalidity: validity.parse().ok()?,
            uid: uid.parse().ok()?,
        }),
        _ => None,
    }
}

/// The folder id of `folder` in `mailbox`.
pub(crate) fn folder_id(mailbox: &str, folder: &str) -> String {
    encode("AQMk", &["f", &mailbox.to_ascii_lowercase(), folder])
}

/// The id of the mailbox's root folder (`msgfolderroot`), the parent of top-level folders.
pub(crate) fn root_folder_id(mailbox: &str) -> String {
    encode("AQMk", &["r", &mailbox.to_ascii_lowercase()])
}

/// Parse a folder id: (mailbox, folder).
pub(crate) fn parse_folder_id(id: &str) -> Option<(String, String)> {
    let p = decode("AQMk", id)?;
    match p.as_slice() {
        [kind, mailbox, folder] if kind == "f" => Some((mailbox.clone(), folder.clone())),
        _ => None,
    }
}

/// An attachment id: the message id and the attachment's position.
pub(crate) fn attachment_id(message_id: &str, index: usize) -> String {
    encode("AAMkATT", &["a", message_id, &index.to_string()])
}

/// An opaque random id (upload sessions).
pub(crate) fn random_id() -> String {
    format!(
        "AAMk{}",
        URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_round_trip_and_refuse_strangers() {
        let k = MessageKey {
            mailbox: "alice@example.test".into(),
            folder: "Sent".into(),
            uidvalidity: 1_700_000_000,
            uid: 42,
        };
        let id = message_id(&k);
        assert!(id.starts_with("AAMk"), "{id}");
        assert_eq!(parse_message_id(&id), Some(k.clone()));
        assert_eq!(parse_message_id(id.trim_end_matches('=')), Some(k));
        assert_eq!(parse_message_id("AAMkAGI2THVSAAA="), None);
        assert_eq!(parse_message_id("nonsense"), None);
        let f = folder_id("Alice@Example.test", "INBOX");
        assert_eq!(
            parse_folder_id(&f),
            Some(("alice@example.test".into(), "INBOX".into()))
        );
        assert_eq!(parse_folder_id(&root_folder_id("a@b")), None);
    }
}
