//! Sending over Microsoft Graph. A message that fits Graph's 4 MB request limit goes as MIME in
//! one `sendMail` (Exchange keeps the host's exact bytes and saves a copy in Sent Items). A larger
//! one becomes a draft with its small attachments, its large attachments go up through upload
//! sessions in chunks, and the draft is sent (Exchange moves it to Sent Items), up to Exchange's
//! default 35 MB message limit (Exchange enforces the limit; we do not guess the tenant's).

use base64::Engine;
use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};

use super::{Body, GraphMailbox, Repeat};
use crate::error::{Error, ErrorKind, Result};
use crate::http::{self, Request};

/// Graph refuses request bodies over 4 MB; base64 makes 3 bytes of MIME 4.
const MAX_REQUEST: usize = 4_000_000;
/// Attachments up to this size travel inside the draft's JSON; larger ones by upload session.
const INLINE_ATTACHMENTS: usize = 2_500_000;
/// Upload chunks: Graph asks for multiples of 320 KiB, at most 4 MiB… we use 12 × 320 KiB.
const CHUNK: usize = 12 * 320 * 1024;

/// What a send over Graph did.
#[derive(Debug, Clone, Serialize)]
pub struct GraphSent {
    /// `sendMail` (MIME in one request) or `draft` (draft, upload sessions, send).
    pub method: &'static str,
    /// The message's `Message-ID` header, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Attachments uploaded through upload sessions.
    pub uploaded_attachments: usize,
}

/// The error of a send whose answer was lost (or that was cancelled while under way): Graph may
/// have accepted the message, which is said, so nobody sends it twice without looking.
fn maybe_sent(e: Error) -> Error {
    let uncertain = matches!(
        e.kind(),
        ErrorKind::Network | ErrorKind::Timeout | ErrorKind::Cancelled
    );
    if !uncertain || http::never_sent(&e) {
        return e;
    }
    may_have_been_sent(e)
}

/// The error of a send Graph answered with a server error. `429` and `503` refuse a request
/// before it is carried out (and are waited out in `call`); any other 5xx can come from Graph's
/// gateway giving up while Exchange goes on and sends the message (a `504` to `sendMail` whose
/// message is delivered anyway), so it is said, as for a lost answer.
fn answered_maybe_sent(e: Error) -> Error {
    match e.evidence().http_status {
        Some(s) if s >= 500 && s != 503 => may_have_been_sent(e),
        _ => e,
    }
}

fn may_have_been_sent(e: Error) -> Error {
    let message = format!(
        "{}; Microsoft Graph may have accepted the message, so check Sent Items before sending it again",
        e.message()
    );
    let evidence = e.evidence().clone();
    Error::new(e.kind(), message)
        .with_code("MC-GRAPH-SEND-UNCERTAIN")
        .with_evidence(|ev| *ev = evidence)
}

impl GraphMailbox<'_> {
    /// Send the RFC 5322 message `raw` as it is (MIME), at most once.
    pub async fn send_mime(&mut self, raw: &[u8]) -> Result<GraphSent> {
        let message_id = message_id(raw);
        let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
        if encoded.len() <= MAX_REQUEST {
            let url = self.url("sendMail", &[])?;
            let body = Body {
                content_type: "text/plain",
                bytes: encoded.into_bytes(),
            };
            let resp = self
                .call(
                    Method::POST,
                    &url,
                    Some(&body),
                    Repeat::Never,
                    "sending the message",
                )
                .await
                .map_err(maybe_sent)?;
            super::errors::expect(&url, &resp, &[202, 200], "sending the message")
                .map_err(answered_maybe_sent)?;
            return Ok(GraphSent {
                method: "sendMail",
                message_id,
                uploaded_attachments: 0,
            });
        }
        drop(encoded);
        self.send_as_draft(raw, message_id).await
    }

    /// A message over the request limit: draft, upload sessions, send.
    async fn send_as_draft(&mut self, raw: &[u8], message_id: Option<String>) -> Result<GraphSent> {
        let parsed = Draft::parse(raw)?;
        let url = self.url("messages", &[])?;
        let created = self
            .call_json(
                Method::POST,
                &url,
                Some(&Body::json(&parsed.json)),
                Repeat::Never,
                &[201],
                "creating a draft for a large message",
            )
            .await?;
        let id = created["id"]
            .as_str()
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::MailServer,
                    "Microsoft Graph created the draft but named no id",
                )
                .with_code("MC-GRAPH-UNAVAILABLE")
            })?
            .to_string();
        let result = self.upload_and_send(&id, &parsed.large).await;
        if let Err(e) = &result {
            if e.code() != Some("MC-GRAPH-SEND-UNCERTAIN") {
                // Nothing was sent: the draft goes, so it cannot be sent by mistake later.
                if let Err(d) = self.delete(&id).await {
                    tracing::warn!("deleting the unsent draft failed: {}", d.message());
                }
            }
        }
        result?;
        Ok(GraphSent {
            method: "draft",
            message_id,
            uploaded_attachments: parsed.large.len(),
        })
    }

    async fn upload_and_send(&mut self, id: &str, large: &[Attachment]) -> Result<()> {
        let seg = super::segment(id);
        for a in large {
            let url = self.url(
                &format!("messages/{seg}/attachments/createUploadSession"),
                &[],
            )?;
            let mut item = json!({
                "attachmentType": "file",
                "name": a.name,
                "size": a.bytes.len(),
                "contentType": a.content_type,
                "isInline": a.inline,
            });
            if let Some(cid) = &a.content_id {
                item["contentId"] = json!(cid);
            }
            let session = self
                .call_json(
                    Method::POST,
                    &url,
                    Some(&Body::json(&json!({ "AttachmentItem": item }))),
                    Repeat::Safe,
                    &[200, 201],
                    "opening an upload session for an attachment",
                )
                .await?;
            let upload = session["uploadUrl"].as_str().ok_or_else(|| {
                Error::new(
                    ErrorKind::MailServer,
                    "Microsoft Graph opened an upload session without an uploadUrl",
                )
                .with_code("MC-GRAPH-UNAVAILABLE")
            })?;
            let upload = url::Url::parse(upload).map_err(|e| {
                Error::new(
                    ErrorKind::MailServer,
                    format!("Microsoft Graph's uploadUrl is not a URL: {e}"),
                )
                .with_code("MC-GRAPH-UNAVAILABLE")
            })?;
            self.upload(&upload, &a.bytes).await?;
        }
        let url = self.url(&format!("messages/{seg}/send"), &[])?;
        let resp = self
            .call(
                Method::POST,
                &url,
                Some(&Body {
                    content_type: "application/json",
                    bytes: Vec::new(),
                }),
                Repeat::Never,
                "sending the draft",
            )
            .await
            .map_err(maybe_sent)?;
        super::errors::expect(&url, &resp, &[202, 200], "sending the draft")
            .map_err(answered_maybe_sent)
    }

    /// Upload `bytes` to a pre-authenticated upload URL in chunks (no `Authorization` header:
    /// the URL carries its own; sending the Graph token there would be refused).
    async fn upload(&mut self, upload: &url::Url, bytes: &[u8]) -> Result<()> {
        let total = bytes.len();
        let mut start = 0;
        while start < total {
            let end = (start + CHUNK).min(total);
            let range = vec![(
                "Content-Range",
                format!("bytes {start}-{}/{total}", end - 1),
            )];
            let req = Request {
                headers: &range,
                content_type: Some("application/octet-stream"),
                body: Some(bytes[start..end].to_vec()),
                timeout: Some(self.timeout(None) * 2),
                ..Request::new(Method::PUT, upload)
            };
            let network = self.client.network();
            let resp = tokio::select! {
                r = network.http.execute(req) => r?,
                _ = self.cancel.cancelled() => return Err(Error::cancelled("uploading an attachment")),
            };
            super::errors::expect(upload, &resp, &[200, 201], "uploading an attachment")?;
            start = end;
        }
        Ok(())
    }
}

/// The `Message-ID` of `raw`, if its header has one.
fn message_id(raw: &[u8]) -> Option<String> {
    let (headers, _) = mailparse::parse_headers(raw).ok()?;
    use mailparse::MailHeaderMap;
    headers
        .get_first_value("Message-ID")
        .map(|v| v.trim().to_string())
}

/// An attachment taken out of a MIME message.
struct Attachment {
    name: String,
    content_type: String,
    bytes: Vec<u8>,
    inline: bool,
    content_id: Option<String>,
}

/// A large message as Graph's draft JSON (body, recipients, small attachments) and the large
/// attachments that go by upload session.
struct Draft {
    json: Value,
    large: Vec<Attachment>,
}

impl Draft {
    fn parse(raw: &[u8]) -> Result<Draft> {
        use mailparse::MailHeaderMap;
        let mail = mailparse::parse_mail(raw).map_err(|e| {
            Error::invalid("message", format!("the message could not be read: {e}"))
        })?;
        let mut text: Option<String> = None;
        let mut html: Option<String> = None;
        let mut attachments = Vec::new();
        collect(&mail, &mut text, &mut html, &mut attachments)?;
        let h = &mail.headers;
        let recipients = |name: &str| -> Value {
            let list = h
                .get_all_headers(name)
                .into_iter()
                .filter_map(|hd| mailparse::addrparse_header(hd).ok())
                .flat_map(|l| l.into_inner())
                .flat_map(|a| match a {
                    mailparse::MailAddr::Single(s) => vec![s],
                    mailparse::MailAddr::Group(g) => g.addrs,
                })
                .map(|s| {
                    let mut e = json!({"address": s.addr});
                    if let Some(n) = s.display_name {
                        e["name"] = json!(n);
                    }
                    json!({ "emailAddress": e })
                })
                .collect::<Vec<_>>();
            Value::Array(list)
        };
        let (content_type, content) = match (html, text) {
            (Some(h), _) => ("html", h),
            (None, Some(t)) => ("text", t),
            (None, None) => ("text", String::new()),
        };
        let mut json = json!({
            "subject": h.get_first_value("Subject").unwrap_or_default(),
            "body": {"contentType": content_type, "content": content},
            "toRecipients": recipients("To"),
            "ccRecipients": recipients("Cc"),
            "bccRecipients": recipients("Bcc"),
            "replyTo": recipients("Reply-To"),
        });
        if let Some(Value::Object(from)) = recipients("From")
            .as_array()
            .and_then(|a| a.first())
            .cloned()
        {
            json["from"] = Value::Object(from);
        }
        // Graph takes custom headers only when they start with x- (documented limit).
        let custom: Vec<Value> = h
            .iter()
            .filter(|hd| hd.get_key_ref().to_ascii_lowercase().starts_with("x-"))
            .map(|hd| json!({"name": hd.get_key(), "value": hd.get_value()}))
            .collect();
        if !custom.is_empty() {
            json["internetMessageHeaders"] = Value::Array(custom);
        }
        let mut inline_budget = INLINE_ATTACHMENTS;
        let mut small = Vec::new();
        let mut large = Vec::new();
        for a in attachments {
            if a.bytes.len() <= inline_budget {
                inline_budget -= a.bytes.len();
                let mut v = json!({
                    "@odata.type": "#microsoft.graph.fileAttachment",
                    "name": a.name,
                    "contentType": a.content_type,
                    "contentBytes": base64::engine::general_purpose::STANDARD.encode(&a.bytes),
                    "isInline": a.inline,
                });
                if let Some(cid) = &a.content_id {
                    v["contentId"] = json!(cid);
                }
                small.push(v);
            } else {
                large.push(a);
            }
        }
        if !small.is_empty() {
            json["attachments"] = Value::Array(small);
        }
        Ok(Draft { json, large })
    }
}

/// Walk the MIME tree: the first text/plain and text/html bodies that are not attachments, and
/// every attachment (a part with a file name or `Content-Disposition: attachment`).
fn collect(
    part: &mailparse::ParsedMail<'_>,
    text: &mut Option<String>,
    html: &mut Option<String>,
    out: &mut Vec<Attachment>,
) -> Result<()> {
    use mailparse::MailHeaderMap;
    if !part.subparts.is_empty() {
        for p in &part.subparts {
            collect(p, text, html, out)?;
        }
        return Ok(());
    }
    let disposition = part.get_content_disposition();
    let name = disposition
        .params
        .get("filename")
        .or_else(|| part.ctype.params.get("name"))
        .cloned();
    let is_attachment =
        disposition.disposition == mailparse::DispositionType::Attachment || name.is_some();
    let mime = part.ctype.mimetype.to_ascii_lowercase();
    let unreadable = |e: mailparse::MailParseError| {
        Error::invalid("message", format!("a part could not be decoded: {e}"))
    };
    if !is_attachment && mime == "text/plain" && text.is_none() {
        *text = Some(part.get_body().map_err(unreadable)?);
    } else if !is_attachment && mime == "text/html" && html.is_none() {
        *html = Some(part.get_body().map_err(unreadable)?);
    } else {
        let content_id = part.headers.get_first_value("Content-ID").map(|c| {
            c.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        });
        out.push(Attachment {
            name: name.unwrap_or_else(|| "attachment".into()),
            content_type: mime,
            bytes: part.get_body_raw().map_err(unreadable)?,
            inline: disposition.disposition == mailparse::DispositionType::Inline
                && content_id.is_some(),
            content_id,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_message_becomes_a_draft_with_its_attachments_split_by_size() {
        use base64::Engine;
        let big = vec![7u8; 3_000_000];
        let small = b"%PDF-1.4 small".to_vec();
        let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
        let raw = format!(
            "From: Alice <alice@example.test>\r\nTo: Bob <bob@example.test>, carol@example.test\r\nBcc: dave@example.test\r\nSubject: =?UTF-8?Q?Rechnung_f=C3=BCr_M=C3=A4rz?=\r\nX-Invoice: 42\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHallo\r\n--b1\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\nContent-Disposition: attachment; filename=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--b1--\r\n",
            b64(&small),
            b64(&big)
        );
        let d = Draft::parse(raw.as_bytes()).unwrap();
        assert_eq!(d.json["subject"], "Rechnung für März");
        assert_eq!(d.json["body"]["content"].as_str().unwrap().trim(), "Hallo");
        assert_eq!(d.json["toRecipients"].as_array().unwrap().len(), 2);
        assert_eq!(d.json["toRecipients"][0]["emailAddress"]["name"], "Bob");
        assert_eq!(
            d.json["bccRecipients"][0]["emailAddress"]["address"],
            "dave@example.test"
        );
        assert_eq!(
            d.json["from"]["emailAddress"]["address"],
            "alice@example.test"
        );
        assert_eq!(d.json["internetMessageHeaders"][0]["name"], "X-Invoice");
        assert_eq!(d.json["attachments"][0]["name"], "r.pdf");
        assert_eq!(d.json["attachments"][0]["contentBytes"], b64(&small));
        assert_eq!(d.large.len(), 1);
        assert_eq!(d.large[0].name, "big.bin");
        assert_eq!(d.large[0].bytes, big);
    }

    #[test]
    fn message_id_is_read_from_the_header() {
        assert_eq!(
            message_id(b"Message-ID: <a@b>\r\nSubject: x\r\n\r\nbody").as_deref(),
            Some("<a@b>")
        );
        assert_eq!(message_id(b"Subject: x\r\n\r\nbody"), None);
    }
}
