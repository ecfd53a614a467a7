//! Reading and changing messages and folders: `GET /me`, `mailFolders`, message lists with
//! OData options and `@odata.nextLink`, one message, `$value`, `PATCH`, `move`, `DELETE`,
//! `attachments`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use super::backend::backend_token;
use super::errors::{self, empty, json as json_response, GraphError};
use super::ids::{self, MessageKey};
use super::imap::{Fetched, Folder, Imap, Meta};
use super::mime::{self, Place};
use super::query::{self, Cursor};
use super::{json_body, Ctx};

/// A logged-in IMAP session for the request's mailbox.
pub(crate) async fn session(ctx: &Ctx) -> Result<Imap, GraphError> {
    session_for(&ctx.shared, &ctx.target.mailbox).await
}

pub(crate) async fn session_for(
    shared: &crate::emulator::state::Shared,
    mailbox: &str,
) -> Result<Imap, GraphError> {
    let stack = shared.graph.stack()?;
    if let Some(imap) = Imap::reuse(&stack, mailbox).await {
        return Ok(imap);
    }
    let token = backend_token(shared, mailbox)?;
    Ok(Imap::open(&stack, mailbox, &token)
        .await?
        .keep_in(stack, mailbox))
}

/// Graph's well-known folder names and their Dovecot special use.
const WELL_KNOWN: &[(&str, &str, &str)] = &[
    ("inbox", "", "Inbox"),
    ("sentitems", "sent", "Sent Items"),
    ("drafts", "drafts", "Drafts"),
    ("deleteditems", "trash", "Deleted Items"),
    ("junkemail", "junk", "Junk Email"),
    ("archive", "archive", "Archive"),
];

/// Display name of a folder as Outlook shows it.
pub(crate) fn display_name(f: &Folder) -> String {
    if f.name.eq_ignore_ascii_case("INBOX") {
        return "Inbox".into();
    }
    WELL_KNOWN
        .iter()
        .find(|(_, special, _)| !special.is_empty() && f.special == Some(*special))
        .map(|(_, _, name)| name.to_string())
        .unwrap_or_else(|| f.name.clone())
}

/// The Dovecot folder of a well-known name or folder id.
pub(crate) async fn resolve_folder(
    imap: &mut Imap,
    mailbox: &str,
    id: &str,
) -> Result<Folder, GraphError> {
    let folders = imap.folders().await?;
    let lower = id.to_ascii_lowercase();
    if let Some((_, special, _)) = WELL_KNOWN.iter().find(|(n, _, _)| *n == lower) {
        let found = if special.is_empty() {
            folders
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case("INBOX"))
        } else {
            folders.iter().find(|f| f.special == Some(*special))
        };
        return found.cloned().ok_or_else(errors::item_not_found);
    }
    let (owner, name) = ids::parse_folder_id(id).ok_or_else(errors::malformed_id)?;
    if !owner.eq_ignore_ascii_case(mailbox) {
        return Err(errors::item_not_found());
    }
    folders
        .into_iter()
        .find(|f| f.name == name && f.selectable)
        .ok_or_else(errors::item_not_found)
}

/// Where the message with client-facing id `id` is now.
pub(crate) fn resolve_message(ctx: &Ctx, id: &str) -> Result<MessageKey, GraphError> {
    if let Some(k) = ctx.shared.lock().graph.draft_now.get(id) {
        return Ok(k.clone());
    }
    let k = ids::parse_message_id(id).ok_or_else(errors::malformed_id)?;
    if k.mailbox != ctx.target.mailbox {
        return Err(errors::item_not_found());
    }
    Ok(k)
}

/// The id the client knows for the message at `k`.
pub(crate) fn render_id(shared: &crate::emulator::state::Shared, k: &MessageKey) -> String {
    shared
        .lock()
        .graph
        .draft_id
        .get(k)
        .cloned()
        .unwrap_or_else(|| ids::message_id(k))
}

/// Open the message's folder and check the message is there.
pub(crate) async fn open_message(
    imap: &mut Imap,
    k: &MessageKey,
    write: bool,
) -> Result<Meta, GraphError> {
    let (validity, _) = imap.open_folder(&k.folder, write).await?;
    if validity != k.uidvalidity {
        return Err(errors::item_not_found());
    }
    imap.meta(k.uid).await?.ok_or_else(errors::item_not_found)
}

/// The message resource of a fetched message in `folder`.
pub(crate) fn render(
    shared: &crate::emulator::state::Shared,
    mailbox: &str,
    folder: &str,
    validity: u32,
    f: &Fetched,
) -> Value {
    let key = MessageKey {
        mailbox: mailbox.to_string(),
        folder: folder.to_string(),
        uidvalidity: validity,
        uid: f.meta.uid,
    };
    let id = render_id(shared, &key);
    let folder_id = ids::folder_id(mailbox, folder);
    mime::message_json(
        &Place {
            id: &id,
            folder_id: &folder_id,
        },
        &f.meta,
        &f.raw,
        f.partial,
    )
}

/// `GET /me`, `GET /users/{id}`.
pub(crate) async fn profile(ctx: &Ctx) -> Result<Response, GraphError> {
    let t = &ctx.target;
    let (given, surname) = match t.display_name.split_once(' ') {
        Some((g, s)) => (json!(g), json!(s)),
        None => (json!(t.display_name), Value::Null),
    };
    let body = json!({
        "@odata.context": format!("{}/$metadata#users/$entity", ctx.base()),
        "businessPhones": [],
        "displayName": t.display_name,
        "givenName": given,
        "jobTitle": null,
        "mail": t.mailbox,
        "mobilePhone": null,
        "officeLocation": null,
        "preferredLanguage": null,
        "surname": surname,
        "userPrincipalName": t.upn,
        "id": t.oid,
    });
    Ok(json_response(StatusCode::OK, &body, &ctx.ids))
}

async fn folder_json(imap: &mut Imap, mailbox: &str, f: &Folder) -> Result<Value, GraphError> {
    let (total, unseen) = imap.status(&f.name).await?;
    Ok(json!({
        "id": ids::folder_id(mailbox, &f.name),
        "displayName": display_name(f),
        "parentFolderId": ids::root_folder_id(mailbox),
        "childFolderCount": 0,
        "unreadItemCount": unseen,
        "totalItemCount": total,
        "isHidden": false,
    }))
}

fn select_folder(mut v: Value, select: Option<&[String]>) -> Value {
    if let (Some(keep), Some(obj)) = (select, v.as_object_mut()) {
        obj.retain(|k, _| k == "id" || keep.iter().any(|s| s == k));
    }
    v
}

/// `GET /me/mailFolders` (`$top`, `$select`, `$filter=displayName eq '…'`).
pub(crate) async fn folders(ctx: &Ctx) -> Result<Response, GraphError> {
    let q = query::folder_query(&ctx.query)?;
    let mut imap = session(ctx).await?;
    let mut list: Vec<Folder> = imap
        .folders()
        .await?
        .into_iter()
        .filter(|f| f.selectable)
        .filter(|f| {
            q.display_name
                .as_ref()
                .is_none_or(|n| display_name(f).eq_ignore_ascii_case(n))
        })
        .collect();
    list.sort_by_key(display_name);
    let mut value = Vec::new();
    for f in list.iter().take(q.top) {
        let v = folder_json(&mut imap, &ctx.target.mailbox, f).await?;
        value.push(select_folder(v, q.select.as_deref()));
    }
    imap.logout().await;
    let body = json!({
        "@odata.context": format!("{}/$metadata#{}/mailFolders", ctx.base(), ctx.target.context),
        "value": value,
    });
    Ok(json_response(StatusCode::OK, &body, &ctx.ids))
}

/// `GET /me/mailFolders/{id}` (`$select`).
pub(crate) async fn folder(ctx: &Ctx, id: &str) -> Result<Response, GraphError> {
    let q = query::folder_query(&ctx.query)?;
    let mut imap = session(ctx).await?;
    let f = resolve_folder(&mut imap, &ctx.target.mailbox, id).await?;
    let body = folder_json(&mut imap, &ctx.target.mailbox, &f).await?;
    imap.logout().await;
    let mut body = select_folder(body, q.select.as_deref());
    body["@odata.context"] = json!(format!(
        "{}/$metadata#{}/mailFolders/$entity",
        ctx.base(),
        ctx.target.context
    ));
    Ok(json_response(StatusCode::OK, &body, &ctx.ids))
}

/// `GET /me/messages` (every folder) and `GET /me/mailFolders/{id}/messages`.
pub(crate) async fn list(ctx: &Ctx, folder: Option<&str>) -> Result<Response, GraphError> {
    let q = query::list_query(&ctx.query)?;
    let mailbox = ctx.target.mailbox.clone();
    let mut imap = session(ctx).await?;
    let folders: Vec<Folder> = match folder {
        Some(id) => vec![resolve_folder(&mut imap, &mailbox, id).await?],
        None => imap
            .folders()
            .await?
            .into_iter()
            .filter(|f| f.selectable)
            .collect(),
    };
    // Every message's facts, filtered and sorted by (receivedDateTime, folder, UID).
    let mut all: Vec<(Meta, usize)> = Vec::new();
    let mut validity = Vec::new();
    for (i, f) in folders.iter().enumerate() {
        let (v, exists) = imap.open_folder(&f.name, false).await?;
        validity.push(v);
        for m in imap.metas(exists).await? {
            if q.filter.as_ref().is_none_or(|flt| flt.matches(&m.facts())) {
                all.push((m, i));
            }
        }
    }
    let key = |m: &Meta, i: usize| (m.received, folders[i].name.clone(), m.uid);
    all.sort_by_key(|a| key(&a.0, a.1));
    if q.descending {
        all.reverse();
    }
    let count = all.len();
    if let Some(c) = &q.after {
        let cursor = (c.r, c.f.clone(), c.u);
        all.retain(|(m, i)| {
            let k = key(m, *i);
            if q.descending {
                k < cursor
            } else {
                k > cursor
            }
        });
    }
    let page: Vec<(Meta, usize)> = all.iter().skip(q.skip).take(q.top).cloned().collect();
    let more = all.len() > q.skip + page.len() && q.top > 0;
    // Read the page's messages, folder by folder, and render them in page order.
    let mut rendered: Vec<Option<Value>> = vec![None; page.len()];
    for (i, f) in folders.iter().enumerate() {
        let metas: Vec<Meta> = page
            .iter()
            .filter(|(_, fi)| *fi == i)
            .map(|(m, _)| m.clone())
            .collect();
        if metas.is_empty() {
            continue;
        }
        imap.open_folder(&f.name, false).await?;
        for fetched in imap.fetch_for_list(&metas).await? {
            if let Some(pos) = page
                .iter()
                .position(|(m, fi)| *fi == i && m.uid == fetched.meta.uid)
            {
                let v = render(&ctx.shared, &mailbox, &f.name, validity[i], &fetched);
                rendered[pos] = Some(mime::select(v, q.select.as_deref()));
            }
        }
    }
    imap.logout().await;
    let value: Vec<Value> = rendered.into_iter().flatten().collect();
    let context = match folder {
        Some(id) => format!("{}/mailFolders('{id}')/messages", ctx.target.context),
        None => format!("{}/messages", ctx.target.context),
    };
    let mut body = json!({
        "@odata.context": format!("{}/$metadata#{context}", ctx.base()),
    });
    if ctx.query.get("$count").map(String::as_str) == Some("true") {
        body["@odata.count"] = json!(count);
    }
    body["value"] = json!(value);
    if more {
        if let Some((m, i)) = page.last() {
            let cursor = Cursor {
                r: m.received,
                f: folders[*i].name.clone(),
                u: m.uid,
            };
            let mut params: Vec<(String, String)> = ctx
                .query
                .iter()
                .filter(|(k, _)| k.as_str() != "$skiptoken" && k.as_str() != "$skip")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            params.sort();
            params.push(("$skiptoken".into(), cursor.encode()));
            let qs = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&params)
                .finish();
            body["@odata.nextLink"] = json!(format!("{}/{}?{qs}", ctx.base(), ctx.path));
        }
    }
    Ok(json_response(StatusCode::OK, &body, &ctx.ids))
}

/// Read one message whole.
async fn fetch(
    ctx: &Ctx,
    id: &str,
    write: bool,
) -> Result<(Imap, MessageKey, Fetched), GraphError> {
    let k = resolve_message(ctx, id)?;
    let mut imap = session(ctx).await?;
    open_message(&mut imap, &k, write).await?;
    let f = imap.fetch_raw(k.uid).await?;
    Ok((imap, k, f))
}

/// The message at `k` alone as Graph answers it: rendered, `$select`ed, with its
/// `@odata.context`.
fn message_response(
    ctx: &Ctx,
    status: StatusCode,
    k: &MessageKey,
    f: &Fetched,
    select: Option<&[String]>,
) -> Response {
    let rendered = render(&ctx.shared, &k.mailbox, &k.folder, k.uidvalidity, f);
    let mut v = mime::select(rendered, select);
    v["@odata.context"] = json!(format!(
        "{}/$metadata#{}/messages/$entity",
        ctx.base(),
        ctx.target.context
    ));
    json_response(status, &v, &ctx.ids)
}

/// 201 with the message just stored at `k`; ends the session.
pub(crate) async fn created(
    ctx: &Ctx,
    mut imap: Imap,
    k: &MessageKey,
) -> Result<Response, GraphError> {
    imap.open_folder(&k.folder, false).await?;
    let f = imap.fetch_raw(k.uid).await?;
    imap.logout().await;
    Ok(message_response(ctx, StatusCode::CREATED, k, &f, None))
}

/// `GET /me/messages/{id}`.
pub(crate) async fn get(ctx: &Ctx, id: &str) -> Result<Response, GraphError> {
    let select = query::list_query(&ctx.query)?.select;
    let (imap, k, f) = fetch(ctx, id, false).await?;
    imap.logout().await;
    Ok(message_response(
        ctx,
        StatusCode::OK,
        &k,
        &f,
        select.as_deref(),
    ))
}

/// `GET /me/messages/{id}/$value`: the MIME as Dovecot holds it.
pub(crate) async fn value(ctx: &Ctx, id: &str) -> Result<Response, GraphError> {
    let (imap, _, f) = fetch(ctx, id, false).await?;
    imap.logout().await;
    let mut r = (StatusCode::OK, f.raw).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, super::hv("text/plain"));
    Ok(r)
}

/// `PATCH /me/messages/{id}`: `isRead`, `flag`.
pub(crate) async fn update(ctx: &Ctx, id: &str, body: &[u8]) -> Result<Response, GraphError> {
    let patch = json_body(body)?;
    let obj = patch.as_object().ok_or_else(errors::unreadable_json)?;
    for k in obj.keys() {
        if !matches!(k.as_str(), "isRead" | "flag" | "@odata.type") {
            return Err(errors::bad_request(format!(
                "The sandbox emulator can update 'isRead' and 'flag' only, not '{k}'."
            )));
        }
    }
    let k = resolve_message(ctx, id)?;
    let mut imap = session(ctx).await?;
    open_message(&mut imap, &k, true).await?;
    if let Some(v) = obj.get("isRead") {
        let read = v
            .as_bool()
            .ok_or_else(|| errors::bad_request("'isRead' must be true or false."))?;
        imap.store(k.uid, if read { '+' } else { '-' }, "\\Seen")
            .await?;
    }
    if let Some(f) = obj.get("flag") {
        match f["flagStatus"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("flagged") => imap.store(k.uid, '+', "\\Flagged").await?,
            Some("notflagged") | Some("complete") => imap.store(k.uid, '-', "\\Flagged").await?,
            _ => {
                return Err(errors::bad_request(
                    "'flag/flagStatus' must be 'flagged', 'notFlagged' or 'complete'.",
                ))
            }
        }
    }
    let f = imap.fetch_raw(k.uid).await?;
    imap.logout().await;
    Ok(message_response(ctx, StatusCode::OK, &k, &f, None))
}

/// Forget the id mapping of a rewritten draft that moved or went away.
pub(crate) fn forget_draft(ctx: &Ctx, k: &MessageKey) {
    let mut st = ctx.shared.lock();
    if let Some(id) = st.graph.draft_id.remove(k) {
        st.graph.draft_now.remove(&id);
    }
}

/// `POST /me/messages/{id}/move` `{"destinationId": …}`: 201 with the moved message.
pub(crate) async fn move_message(ctx: &Ctx, id: &str, body: &[u8]) -> Result<Response, GraphError> {
    let req = json_body(body)?;
    let dest_id = req["destinationId"]
        .as_str()
        .or_else(|| req["DestinationId"].as_str())
        .ok_or_else(|| errors::bad_request("The 'destinationId' parameter is missing."))?
        .to_string();
    let k = resolve_message(ctx, id)?;
    let mut imap = session(ctx).await?;
    let dest = resolve_folder(&mut imap, &ctx.target.mailbox, &dest_id).await?;
    open_message(&mut imap, &k, true).await?;
    let (validity, uid) = if dest.name == k.folder {
        (k.uidvalidity, k.uid)
    } else {
        imap.move_to(k.uid, &dest.name).await?
    };
    forget_draft(ctx, &k);
    let moved = MessageKey {
        folder: dest.name,
        uidvalidity: validity,
        uid,
        ..k
    };
    created(ctx, imap, &moved).await
}

/// `DELETE /me/messages/{id}`: to Deleted Items (from Deleted Items: gone).
pub(crate) async fn delete(ctx: &Ctx, id: &str) -> Result<Response, GraphError> {
    let k = resolve_message(ctx, id)?;
    let mut imap = session(ctx).await?;
    let trash = imap
        .folders()
        .await?
        .into_iter()
        .find(|f| f.special == Some("trash"));
    open_message(&mut imap, &k, true).await?;
    match trash {
        Some(t) if t.name != k.folder => {
            imap.move_to(k.uid, &t.name).await?;
        }
        _ => imap.expunge(k.uid).await?,
    }
    forget_draft(ctx, &k);
    imap.logout().await;
    Ok(empty(StatusCode::NO_CONTENT, &ctx.ids))
}

/// `GET /me/messages/{id}/attachments`.
pub(crate) async fn attachments(ctx: &Ctx, id: &str) -> Result<Response, GraphError> {
    let (imap, k, f) = fetch(ctx, id, false).await?;
    imap.logout().await;
    let msg_id = render_id(&ctx.shared, &k);
    let modified = query::format_datetime(f.meta.received);
    let value: Vec<Value> = mime::attachments(&f.raw)
        .into_iter()
        .enumerate()
        .map(|(i, (name, ct, size, inline, bytes))| {
            json!({
                "@odata.type": "#microsoft.graph.fileAttachment",
                "id": ids::attachment_id(&msg_id, i),
                "lastModifiedDateTime": modified,
                "name": name,
                "contentType": ct,
                "size": size,
                "isInline": inline,
                "contentBytes": STANDARD.encode(bytes),
            })
        })
        .collect();
    let body = json!({
        "@odata.context": format!("{}/$metadata#{}/messages('{msg_id}')/attachments", ctx.base(), ctx.target.context),
        "value": value,
    });
    Ok(json_response(StatusCode::OK, &body, &ctx.ids))
}
