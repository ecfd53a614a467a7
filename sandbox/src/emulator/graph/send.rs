//! Sending and drafts: `sendMail` (MIME or JSON), `POST messages` (a draft from MIME or JSON),
//! `POST messages/{id}/attachments`, `POST messages/{id}/send`; the shared steps: hand the
//! message to Postfix as the mailbox, save the Sent Items copy, add a part to a stored draft.

use axum::http::StatusCode;
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use lettre::message::Mailbox;
use serde_json::json;

use super::backend::backend_token;
use super::errors::{self, empty, json as json_response, GraphError};
use super::ids::{self, MessageKey};
use super::mail::{
    created, forget_draft, open_message, render_id, resolve_folder, resolve_message, session,
    session_for,
};
use super::mime::{self, FilePart};
use super::{is_mime, json_body, smtp, Ctx};
use crate::emulator::state::Shared;

/// The domain of an address (for Message-IDs).
fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_else(|| "sandbox.test".into())
}

/// The sender of the request's mailbox.
fn sender(ctx: &Ctx) -> Result<Mailbox, GraphError> {
    let addr = ctx
        .target
        .mailbox
        .parse::<lettre::Address>()
        .map_err(|_| errors::internal("the mailbox address is not valid"))?;
    Ok(Mailbox::new(Some(ctx.target.display_name.clone()), addr))
}

/// Decode a `text/plain` body: base64 of a MIME message.
fn mime_body(body: &[u8]) -> Result<Vec<u8>, GraphError> {
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if text.is_empty() {
        return Err(errors::invalid_base64());
    }
    let raw = STANDARD
        .decode(&text)
        .map_err(|_| errors::invalid_base64())?;
    mailparse::parse_headers(&raw).map_err(|_| errors::invalid_mime())?;
    if !raw.contains(&b':') {
        return Err(errors::invalid_mime());
    }
    Ok(raw)
}

/// Whether `address` is the request's mailbox (the only one it may send as).
fn may_send_as(ctx: &Ctx, address: &str) -> bool {
    let st = ctx.shared.lock();
    st.user(&ctx.target.upn)
        .is_some_and(|u| u.is_address(address))
}

/// Check a complete message as Exchange does (size, recipients, sending as the mailbox) and
/// hand it to Postfix as the request's mailbox (Bcc removed from the transmitted copy).
async fn submit(ctx: &Ctx, raw: &[u8]) -> Result<(), GraphError> {
    check_size(ctx, raw)?;
    let (from, rcpts) = mime::envelope(raw)?;
    if rcpts.is_empty() {
        return Err(errors::invalid_recipients(
            "A message can't be sent because it contains no recipients.",
        ));
    }
    if let Some(f) = from.as_deref() {
        if !may_send_as(ctx, f) {
            return Err(errors::send_as_denied());
        }
    }
    let (shared, mailbox) = (&ctx.shared, &ctx.target.mailbox);
    let from = from.unwrap_or_else(|| mailbox.to_string());
    let stack = shared.graph.stack()?;
    let token = backend_token(shared, mailbox)?;
    smtp::submit(
        &stack,
        mailbox,
        &token,
        &from,
        &rcpts,
        &mime::strip_bcc(raw),
    )
    .await?;
    shared.lock().stats.graph_messages_submitted += 1;
    Ok(())
}

/// The Sent Items copy (read, not a draft).
async fn save_sent(shared: &Shared, mailbox: &str, raw: &[u8]) {
    let result = async {
        let mut imap = session_for(shared, mailbox).await?;
        let sent = imap
            .folders()
            .await?
            .into_iter()
            .find(|f| f.special == Some("sent"))
            .ok_or_else(errors::item_not_found)?;
        imap.append(&sent.name, "\\Seen", raw).await?;
        imap.logout().await;
        Ok::<(), GraphError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(code = %e.code, message = %e.message, "saving the Sent Items copy failed");
    }
}

/// The "lose the answer after sendMail" switch: the message went out; close the connection.
async fn maybe_lose_answer(ctx: &Ctx) {
    let lose = {
        let mut st = ctx.shared.lock();
        let n = &mut st.config.graph.lose_send_answers;
        if *n > 0 {
            *n -= 1;
            true
        } else {
            false
        }
    };
    if lose {
        if let Some(k) = &ctx.kill {
            k.0.notify_one();
            std::future::pending::<()>().await;
        }
    }
}

fn check_size(ctx: &Ctx, raw: &[u8]) -> Result<(), GraphError> {
    if raw.len() > ctx.settings().max_message_bytes {
        Err(errors::message_size_exceeded())
    } else {
        Ok(())
    }
}

/// `POST /me/sendMail`: `text/plain` (base64 MIME) or JSON `{message, saveToSentItems}`.
pub(crate) async fn send_mail(ctx: &Ctx, body: &[u8]) -> Result<Response, GraphError> {
    let domain = domain_of(&ctx.target.mailbox);
    let from = sender(ctx)?;
    let (raw, save) = if is_mime(&ctx.headers) {
        let raw = mime_body(body)?;
        (
            mime::complete_headers(&raw, &from.to_string(), &domain),
            true,
        )
    } else {
        let req = json_body(body)?;
        let m = req
            .get("message")
            .or_else(|| req.get("Message"))
            .ok_or_else(|| errors::bad_request("The 'message' parameter is missing."))?;
        if let Some(a) = m["from"]["emailAddress"]["address"].as_str() {
            if !may_send_as(ctx, a) {
                return Err(errors::send_as_denied());
            }
        }
        let save = req["saveToSentItems"]
            .as_bool()
            .or_else(|| req["SaveToSentItems"].as_bool())
            .unwrap_or(true);
        (mime::build_message(m, from, &domain)?, save)
    };
    submit(ctx, &raw).await?;
    if save {
        save_sent(&ctx.shared, &ctx.target.mailbox, &raw).await;
    }
    maybe_lose_answer(ctx).await;
    Ok(empty(StatusCode::ACCEPTED, &ctx.ids))
}

/// `POST /me/messages` and `POST /me/mailFolders/{id}/messages`: a draft (MIME or JSON).
pub(crate) async fn create(
    ctx: &Ctx,
    folder: Option<&str>,
    body: &[u8],
) -> Result<Response, GraphError> {
    let domain = domain_of(&ctx.target.mailbox);
    let raw = if is_mime(&ctx.headers) {
        mime_body(body)?
    } else {
        let m = json_body(body)?;
        if let Some(a) = m["from"]["emailAddress"]["address"].as_str() {
            if !may_send_as(ctx, a) {
                return Err(errors::send_as_denied());
            }
        }
        mime::build_message(&m, sender(ctx)?, &domain)?
    };
    check_size(ctx, &raw)?;
    let mut imap = session(ctx).await?;
    let dest = resolve_folder(&mut imap, &ctx.target.mailbox, folder.unwrap_or("drafts")).await?;
    let (uidvalidity, uid) = imap.append(&dest.name, "\\Draft \\Seen", &raw).await?;
    let k = MessageKey {
        mailbox: ctx.target.mailbox.clone(),
        folder: dest.name,
        uidvalidity,
        uid,
    };
    created(ctx, imap, &k).await
}

/// Add a formatted MIME part to the stored message at `k` (rewritten in place; the client keeps
/// its id). Returns where the message is now and the new part's position among attachments.
pub(crate) async fn add_to_draft(
    shared: &Shared,
    client_id: &str,
    k: &MessageKey,
    part: &[u8],
) -> Result<(MessageKey, usize), GraphError> {
    let _one_at_a_time = shared.graph.drafts.lock().await;
    let max = shared.lock().config.graph.max_message_bytes;
    // The draft may have been rewritten while this request waited.
    let k = shared
        .lock()
        .graph
        .draft_now
        .get(client_id)
        .cloned()
        .unwrap_or_else(|| k.clone());
    let mut imap = session_for(shared, &k.mailbox).await?;
    let meta = open_message(&mut imap, &k, true).await?;
    let f = imap.fetch_raw(k.uid).await?;
    let raw = mime::add_part(&f.raw, part);
    if raw.len() > max {
        return Err(errors::message_size_exceeded());
    }
    let mut flags = vec!["\\Seen"];
    if meta.draft {
        flags.push("\\Draft");
    }
    if meta.flagged {
        flags.push("\\Flagged");
    }
    let (validity, uid) = imap.append(&k.folder, &flags.join(" "), &raw).await?;
    imap.expunge(k.uid).await?;
    imap.logout().await;
    let now = MessageKey {
        mailbox: k.mailbox.clone(),
        folder: k.folder.clone(),
        uidvalidity: validity,
        uid,
    };
    {
        let mut st = shared.lock();
        st.graph.draft_id.remove(&k);
        st.graph
            .draft_now
            .insert(client_id.to_string(), now.clone());
        st.graph.draft_id.insert(now.clone(), client_id.to_string());
    }
    let index = mime::attachments(&raw).len().saturating_sub(1);
    Ok((now, index))
}

/// `POST /me/messages/{id}/attachments` with a `#microsoft.graph.fileAttachment`.
pub(crate) async fn add_attachment(
    ctx: &Ctx,
    id: &str,
    body: &[u8],
) -> Result<Response, GraphError> {
    let a = json_body(body)?;
    let part = FilePart::from_json(&a)?;
    let k = resolve_message(ctx, id)?;
    let client_id = render_id(&ctx.shared, &k);
    let (_, index) = add_to_draft(&ctx.shared, &client_id, &k, &part.formatted()).await?;
    let v = json!({
        "@odata.context": format!("{}/$metadata#{}/messages('{client_id}')/attachments/$entity", ctx.base(), ctx.target.context),
        "@odata.type": "#microsoft.graph.fileAttachment",
        "id": ids::attachment_id(&client_id, index),
        "lastModifiedDateTime": super::query::format_datetime(crate::emulator::state::now()),
        "name": part.name,
        "contentType": part.content_type,
        "size": part.bytes.len(),
        "isInline": part.inline,
        "contentId": part.content_id,
    });
    Ok(json_response(StatusCode::CREATED, &v, &ctx.ids))
}

/// `POST /me/messages/{id}/send`: hand the draft to Postfix, move it to Sent Items.
pub(crate) async fn send_draft(ctx: &Ctx, id: &str) -> Result<Response, GraphError> {
    let k = resolve_message(ctx, id)?;
    let domain = domain_of(&ctx.target.mailbox);
    let from = sender(ctx)?;
    let mut imap = session(ctx).await?;
    let meta = open_message(&mut imap, &k, true).await?;
    if !meta.draft {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidOperation",
            "Only draft messages can be sent.",
        ));
    }
    let f = imap.fetch_raw(k.uid).await?;
    let raw = mime::complete_headers(&f.raw, &from.to_string(), &domain);
    submit(ctx, &raw).await?;
    // Exchange moves the draft to Sent Items once it is submitted.
    imap.expunge(k.uid).await?;
    imap.logout().await;
    forget_draft(ctx, &k);
    save_sent(&ctx.shared, &ctx.target.mailbox, &raw).await;
    maybe_lose_answer(ctx).await;
    Ok(empty(StatusCode::ACCEPTED, &ctx.ids))
}
