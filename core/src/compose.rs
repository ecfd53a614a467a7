//! The message builder: a message described as JSON (addresses, subject, text and HTML bodies,
//! attachments from files or base64, inline images, extra headers, importance, a read receipt)
//! becomes RFC 5322 bytes through lettre's `MessageBuilder`, which encodes non-ASCII subjects,
//! names and file names (RFC 2047, RFC 2231) so a German "Rechnung für März.pdf" arrives as
//! written. The same bytes go over SMTP or Microsoft Graph.

use base64::Engine;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The largest attachment read from a file or base64 (Exchange's own limit is 150 MB a message).
pub const MAX_ATTACHMENT: u64 = 150 << 20;

/// An address: `"a@example.com"` or `{"name": "Anna Müller", "address": "a@example.com"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Address {
    /// Just the address.
    Plain(String),
    /// With a display name.
    Named {
        /// Display name.
        #[serde(default)]
        name: Option<String>,
        /// The address.
        address: String,
    },
}

/// An attachment: from a file (`path`) or inline data (`content_base64`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentSpec {
    /// A file to attach (read when the message is built).
    #[serde(default)]
    pub path: Option<String>,
    /// The content, base64.
    #[serde(default)]
    pub content_base64: Option<String>,
    /// The file name the recipient sees (default: the path's file name).
    #[serde(default)]
    pub file_name: Option<String>,
    /// MIME type (default `application/octet-stream`).
    #[serde(default)]
    pub content_type: Option<String>,
    /// An inline part (an image the HTML body shows as `cid:<content_id>`).
    #[serde(default)]
    pub content_id: Option<String>,
}

/// An extra header.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderSpec {
    /// Its name (`X-Invoice-Number`).
    pub name: String,
    /// Its value.
    pub value: String,
}

/// How important the message is (`Importance` and `X-Priority` headers, as Outlook writes them).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Importance {
    /// Low.
    Low,
    /// Normal (no header).
    Normal,
    /// High.
    High,
}

/// A message to build (the C ABI's `mc_message_send` JSON).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageSpec {
    /// The sender (default: the account's mailbox).
    #[serde(default)]
    pub from: Option<Address>,
    /// Recipients.
    #[serde(default)]
    pub to: Vec<Address>,
    /// Copy.
    #[serde(default)]
    pub cc: Vec<Address>,
    /// Blind copy.
    #[serde(default)]
    pub bcc: Vec<Address>,
    /// Where answers go.
    #[serde(default)]
    pub reply_to: Vec<Address>,
    /// Subject.
    #[serde(default)]
    pub subject: String,
    /// The plain-text body.
    #[serde(default)]
    pub text: Option<String>,
    /// The HTML body.
    #[serde(default)]
    pub html: Option<String>,
    /// Attachments and inline parts.
    #[serde(default)]
    pub attachments: Vec<AttachmentSpec>,
    /// Extra headers.
    #[serde(default)]
    pub headers: Vec<HeaderSpec>,
    /// Importance.
    #[serde(default)]
    pub importance: Option<Importance>,
    /// Ask for a read receipt (`Disposition-Notification-To` the sender).
    #[serde(default)]
    pub read_receipt: bool,
}

/// What sending a built message did.
#[derive(Debug, Clone, Serialize)]
pub struct SendResult {
    /// `smtp` or `graph`.
    pub transport: &'static str,
    /// The message's `Message-ID`.
    pub message_id: String,
    /// The server's acceptance (`250 2.0.0 OK …`, `202 Accepted by Microsoft Graph …`).
    pub reply: String,
    /// Bytes sent.
    pub size: usize,
}

fn mailbox(field: &str, a: &Address) -> Result<Mailbox> {
    let (name, address) = match a {
        Address::Plain(s) => (None, s.as_str()),
        Address::Named { name, address } => (name.clone(), address.as_str()),
    };
    let email = address.trim().parse().map_err(|e| {
        Error::invalid(
            field,
            format!(
                "'{field}' has an address that is not valid: '{}' ({e})",
                crate::error::quote(address)
            ),
        )
    })?;
    Ok(Mailbox::new(name.filter(|n| !n.is_empty()), email))
}

fn content_type(field: &str, s: Option<&str>) -> Result<ContentType> {
    let s = s.unwrap_or("application/octet-stream");
    ContentType::parse(s).map_err(|_| {
        Error::invalid(
            field,
            format!("'{field}' is not a MIME type: '{}'", crate::error::quote(s)),
        )
    })
}

/// The bytes and file name of an attachment.
fn attachment_data(i: usize, a: &AttachmentSpec) -> Result<(Vec<u8>, String)> {
    let field = format!("attachments[{i}]");
    let (data, default_name) = match (&a.path, &a.content_base64) {
        (Some(p), None) => {
            let path = std::path::Path::new(p);
            let meta = std::fs::metadata(path).map_err(|e| {
                Error::invalid(
                    format!("{field}.path"),
                    format!(
                        "attachment file '{}' cannot be read: {e}",
                        crate::error::quote(p)
                    ),
                )
            })?;
            if meta.len() > MAX_ATTACHMENT {
                return Err(Error::invalid(
                    format!("{field}.path"),
                    format!(
                        "attachment file '{}' has {} bytes; at most {MAX_ATTACHMENT} are sent",
                        crate::error::quote(p),
                        meta.len()
                    ),
                ));
            }
            let data = std::fs::read(path).map_err(|e| {
                Error::invalid(
                    format!("{field}.path"),
                    format!(
                        "attachment file '{}' cannot be read: {e}",
                        crate::error::quote(p)
                    ),
                )
            })?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "attachment".into());
            (data, name)
        }
        (None, Some(b)) => {
            if b.len() as u64 > MAX_ATTACHMENT / 3 * 4 + 4 {
                return Err(Error::invalid(
                    format!("{field}.content_base64"),
                    format!("'{field}.content_base64' is larger than {MAX_ATTACHMENT} bytes"),
                ));
            }
            let clean: String = b.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let data = base64::engine::general_purpose::STANDARD
                .decode(clean)
                .map_err(|e| {
                    Error::invalid(
                        format!("{field}.content_base64"),
                        format!("'{field}.content_base64' is not base64: {e}"),
                    )
                })?;
            (data, "attachment".into())
        }
        _ => {
            return Err(Error::invalid(
                &field,
                format!("'{field}' needs exactly one of 'path' and 'content_base64'"),
            ))
        }
    };
    Ok((data, a.file_name.clone().unwrap_or(default_name)))
}

/// Build `spec` into RFC 5322 bytes, `default_from` being the account's mailbox. `Bcc` is kept
/// in the bytes (Microsoft Graph reads the recipients from them; the SMTP path removes it).
/// Returns the bytes and the `Message-ID`.
pub fn build(spec: &MessageSpec, default_from: &str) -> Result<(Vec<u8>, String)> {
    let from = match &spec.from {
        Some(a) => mailbox("from", a)?,
        None => mailbox("from", &Address::Plain(default_from.to_string()))?,
    };
    if spec.to.is_empty() && spec.cc.is_empty() && spec.bcc.is_empty() {
        return Err(Error::invalid(
            "to",
            "the message has no recipients: give 'to', 'cc' or 'bcc'",
        ));
    }
    let host = from.email.domain().to_string();
    let message_id = format!("<{}@{}>", uuid::Uuid::new_v4().simple(), host);
    let mut b = lettre::Message::builder()
        .from(from.clone())
        .subject(spec.subject.clone())
        .message_id(Some(message_id.clone()))
        .keep_bcc();
    for (field, list) in [
        ("to", &spec.to),
        ("cc", &spec.cc),
        ("bcc", &spec.bcc),
        ("reply_to", &spec.reply_to),
    ] {
        for a in list {
            let m = mailbox(field, a)?;
            b = match field {
                "to" => b.to(m),
                "cc" => b.cc(m),
                "bcc" => b.bcc(m),
                _ => b.reply_to(m),
            };
        }
    }
    let mut raw_headers = Vec::new();
    match spec.importance {
        Some(Importance::High) => raw_headers.extend([
            ("Importance", "high".to_string()),
            ("X-Priority", "1 (Highest)".to_string()),
        ]),
        Some(Importance::Low) => raw_headers.extend([
            ("Importance", "low".to_string()),
            ("X-Priority", "5 (Lowest)".to_string()),
        ]),
        _ => {}
    }
    if spec.read_receipt {
        raw_headers.push(("Disposition-Notification-To", from.to_string()));
    }
    for (name, value) in raw_headers {
        let n = HeaderName::new_from_ascii(name.to_string())
            .map_err(|_| Error::internal(format!("header name {name}")))?;
        b = b.raw_header(HeaderValue::new(n, value));
    }
    for (i, h) in spec.headers.iter().enumerate() {
        let field = format!("headers[{i}]");
        let reserved = [
            "from",
            "to",
            "cc",
            "bcc",
            "reply-to",
            "subject",
            "message-id",
            "date",
            "mime-version",
            "content-type",
            "content-transfer-encoding",
        ];
        if reserved.contains(&h.name.to_ascii_lowercase().as_str()) {
            return Err(Error::invalid(
                &field,
                format!(
                    "'{field}': '{}' is set by its own field, not as an extra header",
                    crate::error::quote(&h.name)
                ),
            ));
        }
        if h.value.contains(['\r', '\n']) {
            return Err(Error::invalid(
                &field,
                format!("'{field}.value' must be one line"),
            ));
        }
        let n = HeaderName::new_from_ascii(h.name.clone()).map_err(|_| {
            Error::invalid(
                &field,
                format!(
                    "'{field}.name' is not a header name: '{}'",
                    crate::error::quote(&h.name)
                ),
            )
        })?;
        b = b.raw_header(HeaderValue::new(n, h.value.clone()));
    }
    let body = match (&spec.text, &spec.html) {
        (Some(t), Some(h)) => MultiPart::alternative()
            .singlepart(SinglePart::plain(t.clone()))
            .singlepart(SinglePart::html(h.clone())),
        (None, Some(h)) => MultiPart::mixed().singlepart(SinglePart::html(h.clone())),
        (Some(t), None) => MultiPart::mixed().singlepart(SinglePart::plain(t.clone())),
        (None, None) => MultiPart::mixed().singlepart(SinglePart::plain(String::new())),
    };
    // Inline parts go with the body (multipart/related), files after it (multipart/mixed).
    let mut inline = Vec::new();
    let mut files = Vec::new();
    for (i, a) in spec.attachments.iter().enumerate() {
        let (data, name) = attachment_data(i, a)?;
        let ct = content_type(
            &format!("attachments[{i}].content_type"),
            a.content_type.as_deref(),
        )?;
        match &a.content_id {
            Some(cid) => {
                inline.push(Attachment::new_inline_with_name(cid.clone(), name).body(data, ct))
            }
            None => files.push(Attachment::new(name).body(data, ct)),
        }
    }
    let body = if inline.is_empty() {
        body
    } else {
        inline
            .into_iter()
            .fold(MultiPart::related().multipart(body), |m, p| m.singlepart(p))
    };
    let whole = if files.is_empty() {
        body
    } else {
        files
            .into_iter()
            .fold(MultiPart::mixed().multipart(body), |m, p| m.singlepart(p))
    };
    let msg = b
        .multipart(whole)
        .map_err(|e| Error::invalid("message", format!("the message cannot be built: {e}")))?;
    Ok((msg.formatted(), message_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> MessageSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn umlauts_attachments_and_headers_are_encoded() {
        let s = spec(serde_json::json!({
            "to": [{"name": "Jörg Müller", "address": "joerg@example.test"}, "b@example.test"],
            "bcc": ["hidden@example.test"],
            "subject": "Rechnung für März",
            "text": "Grüße",
            "html": "<p>Grüße <img src=\"cid:logo\"></p>",
            "attachments": [
                {"content_base64": "JVBERi0xLjQ=", "file_name": "Rechnung für März.pdf", "content_type": "application/pdf"},
                {"content_base64": "iVBORw0KGgo=", "file_name": "logo.png", "content_type": "image/png", "content_id": "logo"}
            ],
            "headers": [{"name": "X-Invoice", "value": "42"}],
            "importance": "high",
            "read_receipt": true
        }));
        let (raw, id) = build(&s, "alice@example.test").unwrap();
        let text = String::from_utf8(raw.clone()).unwrap();
        assert!(text.contains("From: alice@example.test"), "{text}");
        assert!(text.contains("Bcc: hidden@example.test"), "{text}");
        assert!(text.contains("X-Invoice: 42"));
        assert!(text.contains("Importance: high"));
        assert!(text.contains("Disposition-Notification-To: alice@example.test"));
        assert!(text.contains(&format!("Message-ID: {id}")));
        assert!(
            !text.contains("Rechnung für März"),
            "headers are encoded, not raw UTF-8"
        );
        let parsed = mailparse::parse_mail(&raw).unwrap();
        use mailparse::MailHeaderMap;
        assert_eq!(
            parsed.headers.get_first_value("Subject").unwrap(),
            "Rechnung für März"
        );
        let to = parsed.headers.get_first_value("To").unwrap();
        assert!(to.contains("Jörg Müller"), "{to}");
        let names: Vec<String> = parsed
            .parts()
            .filter_map(|p| p.get_content_disposition().params.get("filename").cloned())
            .collect();
        assert!(
            names.contains(&"Rechnung für März.pdf".to_string()),
            "{names:?}"
        );
        let pdf = parsed
            .parts()
            .find(|p| p.ctype.mimetype == "application/pdf")
            .unwrap();
        assert_eq!(pdf.get_body_raw().unwrap(), b"%PDF-1.4");
    }

    #[test]
    fn bad_input_names_the_field() {
        let cases = [
            (serde_json::json!({"subject": "x", "text": "y"}), "to"),
            (serde_json::json!({"to": ["not an address"]}), "to"),
            (
                serde_json::json!({"to": ["a@example.test"], "attachments": [{"file_name": "x"}]}),
                "attachments[0]",
            ),
            (
                serde_json::json!({"to": ["a@example.test"], "attachments": [{"content_base64": "***"}]}),
                "attachments[0].content_base64",
            ),
            (
                serde_json::json!({"to": ["a@example.test"], "attachments": [{"path": "/nonexistent/x.pdf"}]}),
                "attachments[0].path",
            ),
            (
                serde_json::json!({"to": ["a@example.test"], "headers": [{"name": "Subject", "value": "x"}]}),
                "headers[0]",
            ),
            (
                serde_json::json!({"to": ["a@example.test"], "headers": [{"name": "X-A", "value": "a\r\nBcc: x@y"}]}),
                "headers[0]",
            ),
            (
                serde_json::json!({"to": ["a@example.test"], "attachments": [{"content_base64": "AA==", "content_type": "no type"}]}),
                "attachments[0].content_type",
            ),
        ];
        for (v, field) in cases {
            let e = build(&spec(v.clone()), "alice@example.test").unwrap_err();
            assert_eq!(
                e.evidence().field.as_deref(),
                Some(field),
                "{v}: {}",
                e.message()
            );
        }
    }
}
