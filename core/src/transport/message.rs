//! Envelopes for raw RFC 5322 messages: derived from the header when the host gives none.

use crate::error::{Error, Result};

/// An SMTP envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `MAIL FROM`.
    pub from: String,
    /// `RCPT TO`.
    pub to: Vec<String>,
}

fn addresses(value: &mailparse::MailHeader<'_>) -> Vec<String> {
    match mailparse::addrparse_header(value) {
        Ok(list) => list
            .iter()
            .flat_map(|a| match a {
                mailparse::MailAddr::Single(s) => vec![s.addr.clone()],
                mailparse::MailAddr::Group(g) => g.addrs.iter().map(|s| s.addr.clone()).collect(),
            })
            .filter(|a| crate::model::validate::is_address(a))
            .collect(),
        Err(_) => vec![],
    }
}

/// Derive the envelope from the header (`Sender`/`From`, `To`/`Cc`/`Bcc`), falling back to
/// `default_from`, and return the message with any `Bcc` header removed.
pub fn derive(raw: &[u8], default_from: &str) -> Result<(Envelope, Vec<u8>)> {
    let (headers, body_start) = mailparse::parse_headers(raw).map_err(|e| {
        Error::invalid(
            "message",
            format!("the message header could not be read: {e}"),
        )
    })?;
    let mut from = None;
    let mut to: Vec<String> = Vec::new();
    for h in &headers {
        let key = h.get_key_ref().to_ascii_lowercase();
        match key.as_str() {
            "sender" => from = addresses(h).into_iter().next().or(from),
            "from" if from.is_none() => from = addresses(h).into_iter().next(),
            "to" | "cc" | "bcc" => {
                for a in addresses(h) {
                    if !to.iter().any(|x| x.eq_ignore_ascii_case(&a)) {
                        to.push(a);
                    }
                }
            }
            _ => {}
        }
    }
    if to.is_empty() {
        return Err(Error::invalid(
            "message",
            "the message has no recipients (no To, Cc or Bcc address) and no envelope was given",
        ));
    }
    let envelope = Envelope {
        from: from.unwrap_or_else(|| default_from.to_string()),
        to,
    };
    Ok((envelope, strip_bcc(raw, body_start)))
}

/// Remove `Bcc` header fields (with continuation lines) from the header section.
fn strip_bcc(raw: &[u8], body_start: usize) -> Vec<u8> {
    let (head, body) = raw.split_at(body_start.min(raw.len()));
    let mut out = Vec::with_capacity(raw.len());
    let mut skipping = false;
    for line in head.split_inclusive(|&b| b == b'\n') {
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            skipping = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"bcc:");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_from_headers_without_bcc_in_the_message() {
        let raw = b"From: \"Sales, Team\" <sales@example.test>\r\nTo: alice@example.test, Bob <bob@example.test>\r\nBcc: carol@example.test,\r\n dave@example.test\r\nSubject: x\r\n\r\nBcc: in the body stays\r\n";
        let (env, msg) = derive(raw, "me@example.test").unwrap();
        assert_eq!(env.from, "sales@example.test");
        assert_eq!(
            env.to,
            vec![
                "alice@example.test",
                "bob@example.test",
                "carol@example.test",
                "dave@example.test"
            ]
        );
        let text = String::from_utf8(msg).unwrap();
        assert!(!text.contains("carol") && !text.contains("dave"));
        assert!(text.contains("Subject: x") && text.contains("Bcc: in the body stays"));
    }

    #[test]
    fn no_recipients_is_an_error_and_from_defaults() {
        assert!(derive(b"Subject: x\r\n\r\nhi", "me@example.test").is_err());
        let (env, _) = derive(b"To: a@example.test\r\n\r\nhi", "me@example.test").unwrap();
        assert_eq!(env.from, "me@example.test");
    }
}
