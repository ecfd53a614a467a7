//! Messages as bytes: reading MIME into Graph's message resource, building MIME from Graph's
//! JSON (lettre), the envelope of a MIME message, Bcc stripping and adding attachments to a
//! stored draft.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use mailparse::{DispositionType, MailAddr, MailHeader, MailHeaderMap, ParsedMail};
use serde_json::{json, Value};

use super::errors::{bad_request, invalid_mime, invalid_recipients, GraphError};
use super::imap::Meta;
use super::query::format_datetime;
use axum::http::StatusCode;

/// The header block's end: (start of the blank line, start of the body, line end used).
pub(crate) fn split(raw: &[u8]) -> (usize, usize, &'static [u8]) {
    if raw.starts_with(b"\r\n") {
        return (0, 2, b"\r\n");
    }
    if raw.starts_with(b"\n") {
        return (0, 1, b"\n");
    }
    let crlf = find(raw, b"\r\n\r\n");
    let lf = find(raw, b"\n\n");
    match (crlf, lf) {
        (Some(c), Some(l)) if l < c => (l + 1, l + 2, b"\n"),
        (Some(c), _) => (c + 2, c + 4, b"\r\n"),
        (None, Some(l)) => (l + 1, l + 2, b"\n"),
        (None, None) => (raw.len(), raw.len(), b"\r\n"),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The header fields of a header block, each with its continuation lines and line end.
fn fields(block: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < block.len() {
        let end = block[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| i + p + 1)
            .unwrap_or(block.len());
        let line = &block[i..end];
        let continuation = matches!(line.first(), Some(b' ') | Some(b'\t'));
        let blank = line == b"\r\n" || line == b"\n";
        if i > start && !continuation {
            out.push(&block[start..i]);
            start = i;
        }
        if blank {
            start = end;
        }
        i = end;
    }
    if start < block.len() {
        out.push(&block[start..]);
    }
    out
}

fn field_name(field: &[u8]) -> String {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(0);
    String::from_utf8_lossy(&field[..colon])
        .trim()
        .to_ascii_lowercase()
}

/// The message without its `Bcc` header fields (everything else byte for byte).
pub(crate) fn strip_bcc(raw: &[u8]) -> Vec<u8> {
    let (blank_at, _, _) = split(raw);
    let mut out = Vec::with_capacity(raw.len());
    for f in fields(&raw[..blank_at]) {
        if field_name(f) != "bcc" {
            out.extend_from_slice(f);
        }
    }
    out.extend_from_slice(&raw[blank_at..]);
    out
}

/// Add `From`, `Date` and `Message-ID` at the top when missing (Exchange sets them on submit).
pub(crate) fn complete_headers(raw: &[u8], from: &str, domain: &str) -> Vec<u8> {
    let (blank_at, _, nl) = split(raw);
    let names: Vec<String> = fields(&raw[..blank_at])
        .iter()
        .map(|f| field_name(f))
        .collect();
    let mut top = Vec::new();
    let nl_s = String::from_utf8_lossy(nl).into_owned();
    if !names.iter().any(|n| n == "from") {
        top.extend_from_slice(format!("From: {from}{nl_s}").as_bytes());
    }
    if !names.iter().any(|n| n == "date") {
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        top.extend_from_slice(format!("Date: {date}{nl_s}").as_bytes());
    }
    if !names.iter().any(|n| n == "message-id") {
        top.extend_from_slice(format!("Message-ID: {}{nl_s}", new_message_id(domain)).as_bytes());
    }
    top.extend_from_slice(raw);
    top
}

/// A fresh Message-ID in the mailbox's domain.
pub(crate) fn new_message_id(domain: &str) -> String {
    format!(
        "<{}@{domain}>",
        uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .to_ascii_uppercase()
    )
}

fn addresses(h: &MailHeader<'_>) -> Vec<(Option<String>, String)> {
    let Ok(list) = mailparse::addrparse_header(h) else {
        return vec![];
    };
    let mut out = Vec::new();
    for a in list.iter() {
        match a {
            MailAddr::Single(s) => out.push((s.display_name.clone(), s.addr.clone())),
            MailAddr::Group(g) => out.extend(
                g.addrs
                    .iter()
                    .map(|s| (s.display_name.clone(), s.addr.clone())),
            ),
        }
    }
    out
}

/// The envelope of a MIME message: the first `From` address and every `To`, `Cc`, `Bcc`.
pub(crate) fn envelope(raw: &[u8]) -> Result<(Option<String>, Vec<String>), GraphError> {
    let (headers, _) = mailparse::parse_headers(raw).map_err(|_| invalid_mime())?;
    let from = headers
        .iter()
        .filter(|h| h.get_key_ref().eq_ignore_ascii_case("from"))
        .flat_map(addresses)
        .map(|(_, a)| a)
        .next();
    let mut rcpts: Vec<String> = Vec::new();
    for h in &headers {
        let k = h.get_key_ref().to_ascii_lowercase();
        if matches!(k.as_str(), "to" | "cc" | "bcc") {
            for (_, a) in addresses(h) {
                if !rcpts.iter().any(|r| r.eq_ignore_ascii_case(&a)) {
                    rcpts.push(a);
                }
            }
        }
    }
    Ok((from, rcpts))
}

fn recipient(name: &Option<String>, addr: &str) -> Value {
    json!({"emailAddress": {"name": name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| addr.to_string()), "address": addr}})
}

fn recipients(headers: &[MailHeader], key: &str) -> Vec<Value> {
    headers
        .iter()
        .filter(|h| h.get_key_ref().eq_ignore_ascii_case(key))
        .flat_map(addresses)
        .map(|(n, a)| recipient(&n, &a))
        .collect()
}

fn is_attachment(p: &ParsedMail) -> bool {
    if p.ctype.mimetype.starts_with("multipart/") {
        return false;
    }
    let d = p.get_content_disposition();
    match d.disposition {
        DispositionType::Attachment => true,
        DispositionType::Inline => {
            let named = d.params.contains_key("filename") || p.ctype.params.contains_key("name");
            let explicit = p.headers.get_first_value("Content-Disposition").is_some();
            named && !explicit && !p.ctype.mimetype.starts_with("text/")
        }
        _ => false,
    }
}

fn leaves<'a>(p: &'a ParsedMail<'a>, out: &mut Vec<&'a ParsedMail<'a>>) {
    if p.subparts.is_empty() {
        out.push(p);
    } else {
        for s in &p.subparts {
            leaves(s, out);
        }
    }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Ids and place of a message being rendered.
pub(crate) struct Place<'a> {
    pub id: &'a str,
    pub folder_id: &'a str,
}

/// Graph's message resource for a stored message (`partial`: `raw` is only its beginning).
pub(crate) fn message_json(place: &Place, meta: &Meta, raw: &[u8], partial: bool) -> Value {
    let parsed = mailparse::parse_mail(raw).ok();
    let headers: Vec<MailHeader> = mailparse::parse_headers(raw)
        .map(|(h, _)| h)
        .unwrap_or_default();
    let first = |k: &str| -> Option<String> { headers.get_first_value(k) };
    let received = format_datetime(meta.received);
    let sent = first("Date")
        .and_then(|d: String| mailparse::dateparse(&d).ok())
        .map(format_datetime)
        .unwrap_or_else(|| received.clone());
    let mut body_type = "text";
    let mut body = String::new();
    let mut preview = String::new();
    let mut has_attachments = false;
    if let Some(p) = &parsed {
        let mut all = Vec::new();
        leaves(p, &mut all);
        has_attachments = all.iter().any(|l| is_attachment(l));
        let texts: Vec<&&ParsedMail> = all
            .iter()
            .filter(|l| !is_attachment(l) && l.ctype.mimetype.starts_with("text/"))
            .collect();
        let html = texts.iter().find(|l| l.ctype.mimetype == "text/html");
        let plain = texts.iter().find(|l| l.ctype.mimetype == "text/plain");
        if let Some(h) = html {
            body_type = "html";
            body = h.get_body().unwrap_or_default();
        } else if let Some(t) = plain {
            body = t.get_body().unwrap_or_default();
        }
        preview = match plain {
            Some(t) => collapse(&t.get_body().unwrap_or_default()),
            None => collapse(&strip_tags(&body)),
        };
    }
    if partial && !has_attachments {
        has_attachments = first("Content-Type")
            .map(|c| c.to_ascii_lowercase().contains("multipart/mixed"))
            .unwrap_or(false);
    }
    let preview: String = preview.chars().take(255).collect();
    let from = headers
        .iter()
        .filter(|h| h.get_key_ref().eq_ignore_ascii_case("from"))
        .flat_map(addresses)
        .next()
        .map(|(n, a): (Option<String>, String)| recipient(&n, &a));
    let sender = headers
        .iter()
        .filter(|h| h.get_key_ref().eq_ignore_ascii_case("sender"))
        .flat_map(addresses)
        .next()
        .map(|(n, a): (Option<String>, String)| recipient(&n, &a))
        .or_else(|| from.clone());
    let importance = match (
        first("Importance").map(|v| v.trim().to_ascii_lowercase()),
        first("X-Priority").and_then(|v| v.trim().chars().next()),
    ) {
        (Some(i), _) if i == "high" || i == "low" => i,
        (_, Some('1')) | (_, Some('2')) => "high".into(),
        (_, Some('4')) | (_, Some('5')) => "low".into(),
        _ => "normal".into(),
    };
    let message_id = first("Message-ID").map(|m| m.trim().to_string());
    let conversation = crate::emulator::state::derived_guid(&[first("References")
        .and_then(|r| r.split_whitespace().next().map(str::to_string))
        .or_else(|| message_id.clone())
        .unwrap_or_else(|| place.id.to_string())
        .as_str()]);
    let internet_headers: Vec<Value> = headers
        .iter()
        .map(|h| json!({"name": h.get_key(), "value": h.get_value()}))
        .collect();
    json!({
        "@odata.etag": format!("W/\"CQAAABYAAA{}\"", meta.uid),
        "id": place.id,
        "createdDateTime": received,
        "lastModifiedDateTime": received,
        "changeKey": format!("CQAAABYAAA{}", meta.uid),
        "categories": [],
        "receivedDateTime": received,
        "sentDateTime": sent,
        "hasAttachments": has_attachments,
        "internetMessageId": message_id,
        "subject": first("Subject").unwrap_or_default(),
        "bodyPreview": preview,
        "importance": importance,
        "parentFolderId": place.folder_id,
        "conversationId": conversation,
        "isDeliveryReceiptRequested": false,
        "isReadReceiptRequested": first("Disposition-Notification-To").is_some(),
        "isRead": meta.seen,
        "isDraft": meta.draft,
        "webLink": format!("https://outlook.office365.com/owa/?ItemID={}&exvsurl=1&viewmodel=ReadMessageItem", place.id),
        "inferenceClassification": "focused",
        "body": {"contentType": body_type, "content": body},
        "sender": sender,
        "from": from,
        "toRecipients": recipients(&headers, "to"),
        "ccRecipients": recipients(&headers, "cc"),
        "bccRecipients": recipients(&headers, "bcc"),
        "replyTo": recipients(&headers, "reply-to"),
        "flag": {"flagStatus": if meta.flagged { "flagged" } else { "notFlagged" }},
        "internetMessageHeaders": internet_headers,
    })
}

/// Keep `id`, `@odata.etag` and the selected properties (`None`: everything except
/// `internetMessageHeaders`, which Graph returns only when selected).
pub(crate) fn select(mut v: Value, select: Option<&[String]>) -> Value {
    if let Some(obj) = v.as_object_mut() {
        match select {
            None => {
                obj.remove("internetMessageHeaders");
            }
            Some(keep) => {
                obj.retain(|k, _| k == "id" || k == "@odata.etag" || keep.iter().any(|s| s == k))
            }
        }
    }
    v
}

// --- building MIME from Graph's JSON --------------------------------------------------------

fn mailbox_of(v: &Value, field: &str) -> Result<Mailbox, GraphError> {
    let e = &v["emailAddress"];
    let addr = e["address"].as_str().unwrap_or_default().trim();
    let parsed = addr.parse::<lettre::Address>().map_err(|_| {
        invalid_recipients(&format!("'{addr}' in {field} is not a valid SMTP address."))
    })?;
    let name = e["name"]
        .as_str()
        .map(str::trim)
        .filter(|n| !n.is_empty() && *n != addr)
        .map(str::to_string);
    Ok(Mailbox::new(name, parsed))
}

fn list_of(m: &Value, field: &str) -> Result<Vec<Mailbox>, GraphError> {
    match &m[field] {
        Value::Null => Ok(vec![]),
        Value::Array(a) => a.iter().map(|r| mailbox_of(r, field)).collect(),
        _ => Err(bad_request(format!(
            "'{field}' must be a collection of recipients."
        ))),
    }
}

/// A file attachment as a MIME part.
pub(crate) struct FilePart {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
    pub inline: bool,
    pub content_id: Option<String>,
}

impl FilePart {
    /// Read a `#microsoft.graph.fileAttachment`.
    pub fn from_json(a: &Value) -> Result<FilePart, GraphError> {
        let kind = a["@odata.type"]
            .as_str()
            .unwrap_or("#microsoft.graph.fileAttachment");
        if !kind.eq_ignore_ascii_case("#microsoft.graph.fileAttachment") {
            return Err(bad_request(format!(
                "The sandbox emulator supports file attachments only ('{kind}')."
            )));
        }
        let name = a["name"].as_str().unwrap_or("attachment").to_string();
        let content = a["contentBytes"].as_str().unwrap_or_default();
        let bytes = STANDARD.decode(content.trim()).map_err(|_| {
            bad_request(format!(
                "Invalid value for property 'contentBytes' of attachment '{name}': not base64."
            ))
        })?;
        Ok(FilePart {
            content_type: a["contentType"]
                .as_str()
                .filter(|c| !c.is_empty())
                .unwrap_or("application/octet-stream")
                .to_string(),
            inline: a["isInline"].as_bool().unwrap_or(false),
            content_id: a["contentId"]
                .as_str()
                .map(str::to_string)
                .filter(|c| !c.is_empty()),
            name,
            bytes,
        })
    }

    fn part(&self) -> SinglePart {
        let ct = ContentType::parse(&self.content_type)
            .unwrap_or_else(|_| ContentType::parse("application/octet-stream").expect("valid"));
        let a = match (&self.content_id, self.inline) {
            (Some(cid), true) => Attachment::new_inline_with_name(
                cid.trim_matches(|c| c == '<' || c == '>').to_string(),
                self.name.clone(),
            ),
            _ => Attachment::new(self.name.clone()),
        };
        a.body(self.bytes.clone(), ct)
    }

    /// The part's bytes (headers, blank line, base64 body).
    pub fn formatted(&self) -> Vec<u8> {
        self.part().formatted()
    }
}

/// Build a message from Graph's JSON `message` (sender `from`, Bcc kept).
pub(crate) fn build_message(m: &Value, from: Mailbox, domain: &str) -> Result<Vec<u8>, GraphError> {
    if !m.is_object() {
        return Err(bad_request("The 'message' must be a JSON object."));
    }
    let mut b = lettre::Message::builder()
        .from(from.clone())
        .keep_bcc()
        .message_id(Some(new_message_id(domain)))
        .subject(m["subject"].as_str().unwrap_or_default());
    for (field, kind) in [
        ("toRecipients", 0),
        ("ccRecipients", 1),
        ("bccRecipients", 2),
        ("replyTo", 3),
    ] {
        for mb in list_of(m, field)? {
            b = match kind {
                0 => b.to(mb),
                1 => b.cc(mb),
                2 => b.bcc(mb),
                _ => b.reply_to(mb),
            };
        }
    }
    if let Some(h) = m["internetMessageHeaders"].as_array() {
        for h in h {
            let name = h["name"].as_str().unwrap_or_default();
            if !name.to_ascii_lowercase().starts_with("x-") {
                return Err(GraphError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidInternetMessageHeader",
                    format!(
                        "The internet message header name '{name}' should start with 'x-' or 'X-'."
                    ),
                ));
            }
            let hn = HeaderName::new_from_ascii(name.to_string()).map_err(|_| {
                GraphError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidInternetMessageHeader",
                    format!("The internet message header name '{name}' is not valid."),
                )
            })?;
            b = b.raw_header(HeaderValue::new(
                hn,
                h["value"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    match m["importance"]
        .as_str()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("high") => {
            b = b.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Importance"),
                "high".into(),
            ))
        }
        Some("low") => {
            b = b.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Importance"),
                "low".into(),
            ))
        }
        _ => {}
    }
    if m["isReadReceiptRequested"].as_bool() == Some(true) {
        b = b.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Disposition-Notification-To"),
            from.to_string(),
        ));
    }
    // Drafts may have no recipients yet: the envelope is not used for those.
    let addr = from.email.clone();
    b = b.envelope(
        lettre::address::Envelope::new(Some(addr.clone()), vec![addr])
            .map_err(|e| bad_request(e.to_string()))?,
    );
    let content = m["body"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let body = match m["body"]["contentType"]
        .as_str()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("html") => SinglePart::html(content),
        _ => SinglePart::plain(content),
    };
    let mut files = Vec::new();
    if let Some(list) = m["attachments"].as_array() {
        for a in list {
            files.push(FilePart::from_json(a)?);
        }
    }
    let (inline, attached): (Vec<&FilePart>, Vec<&FilePart>) = files
        .iter()
        .partition(|f| f.inline && f.content_id.is_some());
    let msg = if files.is_empty() {
        b.singlepart(body)
    } else {
        let mut mixed = MultiPart::mixed().build();
        if inline.is_empty() {
            mixed = mixed.singlepart(body);
        } else {
            let mut related = MultiPart::related().singlepart(body);
            for f in &inline {
                related = related.singlepart(f.part());
            }
            mixed = mixed.multipart(related);
        }
        for f in &attached {
            mixed = mixed.singlepart(f.part());
        }
        b.multipart(mixed)
    }
    .map_err(|e| bad_request(format!("The message cannot be built: {e}")))?;
    Ok(msg.formatted())
}

/// Add a formatted MIME part as the last part of a stored message: into its `multipart/mixed`
/// body, or by wrapping the body in a new `multipart/mixed`.
pub(crate) fn add_part(raw: &[u8], part: &[u8]) -> Vec<u8> {
    let (blank_at, body_at, nl) = split(raw);
    let header_fields = fields(&raw[..blank_at]);
    let ctype = header_fields
        .iter()
        .find(|f| field_name(f) == "content-type")
        .map(|f| {
            let colon = f.iter().position(|&b| b == b':').unwrap_or(0);
            mailparse::parse_content_type(&String::from_utf8_lossy(&f[colon + 1..]))
        });
    let nl_s = String::from_utf8_lossy(nl).into_owned();
    if let Some(ct) = ctype.as_ref().filter(|c| c.mimetype == "multipart/mixed") {
        if let Some(boundary) = ct.params.get("boundary") {
            let close = format!("--{boundary}--");
            if let Some(pos) = rfind(&raw[body_at..], close.as_bytes()).map(|p| p + body_at) {
                let mut out = raw[..pos].to_vec();
                if !out.ends_with(nl) {
                    out.extend_from_slice(nl);
                }
                out.extend_from_slice(format!("--{boundary}{nl_s}").as_bytes());
                out.extend_from_slice(part);
                if !part.ends_with(b"\n") {
                    out.extend_from_slice(nl);
                }
                out.extend_from_slice(&raw[pos..]);
                return out;
            }
        }
    }
    let boundary = format!("sandbox_{}", uuid::Uuid::new_v4().simple());
    let mut head = Vec::new();
    let mut content_fields = Vec::new();
    for f in &header_fields {
        match field_name(f).as_str() {
            "content-type" | "content-transfer-encoding" | "content-disposition" => {
                content_fields.extend_from_slice(f)
            }
            "mime-version" => {}
            _ => head.extend_from_slice(f),
        }
    }
    if content_fields.is_empty() {
        content_fields.extend_from_slice(
            format!("Content-Type: text/plain; charset=us-ascii{nl_s}").as_bytes(),
        );
    }
    let mut out = head;
    out.extend_from_slice(
        format!("MIME-Version: 1.0{nl_s}Content-Type: multipart/mixed;{nl_s} boundary=\"{boundary}\"{nl_s}{nl_s}--{boundary}{nl_s}").as_bytes(),
    );
    out.extend_from_slice(&content_fields);
    out.extend_from_slice(nl);
    out.extend_from_slice(&raw[body_at..]);
    // The line end before a boundary belongs to the boundary: the body keeps its own.
    out.extend_from_slice(nl);
    out.extend_from_slice(format!("--{boundary}{nl_s}").as_bytes());
    out.extend_from_slice(part);
    if !part.ends_with(b"\n") {
        out.extend_from_slice(nl);
    }
    out.extend_from_slice(format!("--{boundary}--{nl_s}").as_bytes());
    out
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// The attachments of a stored message: (name, content type, size, inline, bytes).
pub(crate) fn attachments(raw: &[u8]) -> Vec<(String, String, usize, bool, Vec<u8>)> {
    let Ok(p) = mailparse::parse_mail(raw) else {
        return vec![];
    };
    let mut all = Vec::new();
    leaves(&p, &mut all);
    all.iter()
        .filter(|l| is_attachment(l) || l.get_content_disposition().params.contains_key("filename"))
        .filter(|l| !l.ctype.mimetype.starts_with("multipart/"))
        .map(|l| {
            let d = l.get_content_disposition();
            let name = d
                .params
                .get("filename")
                .or_else(|| l.ctype.params.get("name"))
                .cloned()
                .unwrap_or_default();
            let bytes = l.get_body_raw().unwrap_or_default();
            (
                name,
                l.ctype.mimetype.clone(),
                bytes.len(),
                d.disposition == DispositionType::Inline,
                bytes,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: Alice <alice@example.test>\r\nTo: bob@example.test,\r\n Carol <carol@example.test>\r\nBcc: secret@example.test\r\nSubject: Hi\r\n\r\nBody line\r\n.dot\r\n";

    #[test]
    fn bcc_is_stripped_byte_for_byte() {
        let s = strip_bcc(MSG);
        assert_eq!(
            s,
            b"From: Alice <alice@example.test>\r\nTo: bob@example.test,\r\n Carol <carol@example.test>\r\nSubject: Hi\r\n\r\nBody line\r\n.dot\r\n"
        );
        let (from, rcpts) = envelope(MSG).unwrap();
        assert_eq!(from.as_deref(), Some("alice@example.test"));
        assert_eq!(
            rcpts,
            vec![
                "bob@example.test",
                "carol@example.test",
                "secret@example.test"
            ]
        );
        let lf = b"Bcc: x@y.test\nSubject: s\n\nbody\n";
        assert_eq!(strip_bcc(lf), b"Subject: s\n\nbody\n");
    }

    #[test]
    fn missing_headers_are_added_on_top() {
        let m = complete_headers(
            b"To: bob@example.test\r\n\r\nx\r\n",
            "alice@example.test",
            "example.test",
        );
        let text = String::from_utf8(m).unwrap();
        assert!(
            text.starts_with("From: alice@example.test\r\nDate: "),
            "{text}"
        );
        assert!(text.contains("\r\nMessage-ID: <"), "{text}");
        assert!(
            text.ends_with("\r\nTo: bob@example.test\r\n\r\nx\r\n"),
            "{text}"
        );
        assert!(complete_headers(MSG, "a@b", "b").len() > MSG.len());
    }

    #[test]
    fn parts_are_added_to_mixed_or_wrapped() {
        let part = FilePart {
            name: "a.bin".into(),
            content_type: "application/octet-stream".into(),
            bytes: vec![1, 2, 3, 255],
            inline: false,
            content_id: None,
        }
        .formatted();
        let wrapped = add_part(MSG, &part);
        let atts = attachments(&wrapped);
        assert_eq!(atts.len(), 1, "{}", String::from_utf8_lossy(&wrapped));
        assert_eq!(atts[0].0, "a.bin");
        assert_eq!(atts[0].4, vec![1, 2, 3, 255]);
        let p = mailparse::parse_mail(&wrapped).unwrap();
        assert_eq!(p.subparts[0].get_body().unwrap(), "Body line\r\n.dot\r\n");
        let twice = add_part(&wrapped, &part);
        assert_eq!(attachments(&twice).len(), 2);
        assert_eq!(mailparse::parse_mail(&twice).unwrap().subparts.len(), 3);
    }

    #[test]
    fn json_messages_build_and_render() {
        let m = serde_json::json!({
            "subject": "Grüße",
            "body": {"contentType": "HTML", "content": "<p>Hello <b>you</b></p>"},
            "toRecipients": [{"emailAddress": {"address": "bob@example.test", "name": "Bob"}}],
            "bccRecipients": [{"emailAddress": {"address": "carol@example.test"}}],
            "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment", "name": "n.txt",
                              "contentType": "text/plain", "contentBytes": "aGVsbG8="}],
            "internetMessageHeaders": [{"name": "X-Custom", "value": "1"}]
        });
        let from = Mailbox::new(Some("Alice".into()), "alice@example.test".parse().unwrap());
        let raw = build_message(&m, from.clone(), "example.test").unwrap();
        let (f, rcpts) = envelope(&raw).unwrap();
        assert_eq!(f.as_deref(), Some("alice@example.test"));
        assert_eq!(rcpts, vec!["bob@example.test", "carol@example.test"]);
        let meta = Meta {
            uid: 7,
            received: 1_700_000_000,
            size: raw.len() as u32,
            seen: false,
            draft: true,
            flagged: false,
        };
        let v = message_json(
            &Place {
                id: "AAMkx",
                folder_id: "AQMky",
            },
            &meta,
            &raw,
            false,
        );
        assert_eq!(v["subject"], "Grüße");
        assert_eq!(v["hasAttachments"], true);
        assert_eq!(v["body"]["contentType"], "html");
        assert_eq!(v["bodyPreview"], "Hello you");
        assert_eq!(v["toRecipients"][0]["emailAddress"]["name"], "Bob");
        assert_eq!(
            v["bccRecipients"][0]["emailAddress"]["address"],
            "carol@example.test"
        );
        assert_eq!(v["isDraft"], true);
        assert_eq!(attachments(&raw)[0].4, b"hello");
        let bad = serde_json::json!({"internetMessageHeaders": [{"name": "Custom", "value": "1"}]});
        assert_eq!(
            build_message(&bad, from.clone(), "x").unwrap_err().code,
            "InvalidInternetMessageHeader"
        );
        let bad = serde_json::json!({"toRecipients": [{"emailAddress": {"address": "nope"}}]});
        assert_eq!(
            build_message(&bad, from, "x").unwrap_err().code,
            "ErrorInvalidRecipients"
        );
        let sel = select(v, Some(&["subject".to_string()]));
        assert_eq!(sel.as_object().unwrap().len(), 3, "{sel}");
    }
}
