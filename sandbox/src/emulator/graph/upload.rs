//! Large attachments: `POST messages/{id}/attachments/createUploadSession` and the
//! pre-authenticated upload URL (`PUT` byte ranges in order, `DELETE` to cancel), which lives
//! at `{base}/api/v2.0/Users('…')/Messages('…')/AttachmentSessions('…')?authtoken=…` as
//! Outlook's does at `outlook.office.com`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::json;

use super::errors::{self, empty, json as json_response, GraphError, RequestIds};
use super::ids;
use super::mail::{open_message, render_id, resolve_message, session};
use super::mime::FilePart;
use super::query::{content_range, format_datetime};
use super::send::add_to_draft;
use super::{json_body, read_body, Ctx, UploadSession};
use crate::emulator::state::{now, random_token, Shared};

/// `POST /me/messages/{id}/attachments/createUploadSession`.
pub(crate) async fn create(ctx: &Ctx, id: &str, body: &[u8]) -> Result<Response, GraphError> {
    let req = json_body(body)?;
    let item = req
        .get("AttachmentItem")
        .or_else(|| req.get("attachmentItem"))
        .ok_or_else(|| errors::bad_request("The 'AttachmentItem' parameter is missing."))?;
    let kind = item["attachmentType"].as_str().unwrap_or("file");
    if !kind.eq_ignore_ascii_case("file") {
        return Err(errors::bad_request(format!(
            "The sandbox emulator accepts attachmentType 'file' only ('{kind}')."
        )));
    }
    let name = item["name"]
        .as_str()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| errors::bad_request("The attachment 'name' is missing."))?
        .to_string();
    let size = item["size"]
        .as_u64()
        .filter(|s| *s > 0)
        .ok_or_else(|| errors::bad_request("The attachment 'size' must be a number above 0."))?;
    let settings = ctx.settings();
    if size > settings.max_attachment_bytes as u64 {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "ErrorAttachmentSizeShouldNotBeGreaterThanMaximumSize",
            format!(
                "The attachment size {size} exceeds the maximum of {} bytes.",
                settings.max_attachment_bytes
            ),
        ));
    }
    let k = resolve_message(ctx, id)?;
    let mut imap = session(ctx).await?;
    open_message(&mut imap, &k, false).await?;
    imap.logout().await;
    let message_id = render_id(&ctx.shared, &k);
    let session_id = ids::random_id();
    let authtoken = random_token(96);
    let tid = ctx.principal.tid.clone();
    let expires = now() + settings.upload_session_secs as i64;
    let upload_url = format!(
        "{}/api/v2.0/Users('{}@{tid}')/Messages('{message_id}')/AttachmentSessions('{session_id}')?authtoken={authtoken}",
        ctx.shared.base_url, ctx.target.oid
    );
    ctx.shared.lock().graph.uploads.insert(
        session_id,
        UploadSession {
            authtoken,
            mailbox: ctx.target.mailbox.clone(),
            user_oid: ctx.target.oid.clone(),
            tid,
            message_id,
            name,
            content_type: item["contentType"]
                .as_str()
                .filter(|c| !c.is_empty())
                .unwrap_or("application/octet-stream")
                .to_string(),
            inline: item["isInline"].as_bool().unwrap_or(false),
            content_id: item["contentId"]
                .as_str()
                .filter(|c| !c.is_empty())
                .map(str::to_string),
            size,
            data: Vec::new(),
            expires,
        },
    );
    let body = json!({
        "@odata.context": format!("{}/$metadata#microsoft.graph.uploadSession", ctx.base()),
        "uploadUrl": upload_url,
        "expirationDateTime": format_datetime(expires),
        "nextExpectedRanges": ["0-"],
    });
    Ok(json_response(StatusCode::CREATED, &body, &ctx.ids))
}

/// The session id in `…/AttachmentSessions('{id}')`.
fn session_id(path: &str) -> Option<String> {
    let decoded = path
        .replace("%27", "'")
        .replace("%28", "(")
        .replace("%29", ")");
    let start = decoded.find("AttachmentSessions('")? + "AttachmentSessions('".len();
    let len = decoded[start..].find("')")?;
    Some(decoded[start..start + len].to_string())
}

/// `PUT|DELETE {uploadUrl}`: no `Authorization` (the URL carries its own token).
pub(crate) async fn upload(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ids = RequestIds::new(&headers);
    ids.answer(put(&shared, &method, &uri, &headers, body, &ids).await)
}

async fn put(
    shared: &Arc<Shared>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    ids: &RequestIds,
) -> Result<Response, GraphError> {
    if headers.contains_key(header::AUTHORIZATION) {
        return Err(GraphError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The upload URL is pre-authenticated: send no Authorization header with it.",
        ));
    }
    let q = crate::emulator::form_map(uri.query().unwrap_or_default().as_bytes());
    let sid = session_id(uri.path()).ok_or_else(errors::item_not_found)?;
    let settings = shared.lock().config.graph.clone();
    {
        let mut st = shared.lock();
        let t = now();
        st.graph.uploads.retain(|_, s| s.expires > t);
        let s = st
            .graph
            .uploads
            .get(&sid)
            .ok_or_else(errors::item_not_found)?;
        if q.get("authtoken") != Some(&s.authtoken) {
            return Err(GraphError::new(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "The upload URL's token is not valid.",
            ));
        }
        if *method == Method::DELETE {
            st.graph.uploads.remove(&sid);
            return Ok(empty(StatusCode::NO_CONTENT, ids));
        }
    }
    if *method != Method::PUT {
        return Err(GraphError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "ErrorInvalidRequest",
            format!("The HTTP method '{method}' is not allowed on an upload URL."),
        ));
    }
    let range = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| errors::bad_request("The Content-Range header is missing."))?;
    let (start, end, total) = content_range(range).ok_or_else(|| {
        errors::bad_request(format!("The Content-Range header '{range}' is not valid."))
    })?;
    let len = (end - start + 1) as usize;
    if len > settings.max_upload_chunk_bytes {
        return Err(errors::request_too_large(settings.max_upload_chunk_bytes));
    }
    let bytes = read_body(body, settings.max_upload_chunk_bytes).await?;
    if bytes.len() != len {
        return Err(errors::bad_request(format!(
            "The body has {} bytes; Content-Range '{range}' announces {len}.",
            bytes.len()
        )));
    }
    let done = {
        let mut st = shared.lock();
        let s = st
            .graph
            .uploads
            .get_mut(&sid)
            .ok_or_else(errors::item_not_found)?;
        if total != s.size {
            return Err(errors::bad_request(format!(
                "The Content-Range total {total} differs from the session's size {}.",
                s.size
            )));
        }
        if start != s.data.len() as u64 {
            return Err(GraphError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "ErrorInvalidRange",
                format!(
                    "The byte range starts at {start}; the next expected byte is {}.",
                    s.data.len()
                ),
            ));
        }
        s.data.extend_from_slice(&bytes);
        if s.data.len() as u64 == s.size {
            st.graph.uploads.remove(&sid)
        } else {
            let context = format!(
                "{}/api/v2.0/$metadata#Users('{}%40{}')/Messages('{}')/AttachmentSessions/$entity",
                shared.base_url, s.user_oid, s.tid, s.message_id
            );
            let body = json!({
                "@odata.context": context,
                "ExpirationDateTime": format_datetime(s.expires),
                "nextExpectedRanges": [s.data.len().to_string()],
            });
            return Ok(json_response(StatusCode::OK, &body, ids));
        }
    };
    let Some(s) = done else {
        return Err(errors::item_not_found());
    };
    let part = FilePart {
        name: s.name.clone(),
        content_type: s.content_type.clone(),
        bytes: s.data,
        inline: s.inline,
        content_id: s.content_id.clone(),
    }
    .formatted();
    let key = {
        let st = shared.lock();
        st.graph.draft_now.get(&s.message_id).cloned()
    }
    .or_else(|| ids::parse_message_id(&s.message_id))
    .ok_or_else(errors::item_not_found)?;
    let (_, index) = add_to_draft(shared, &s.message_id, &key, &part).await?;
    let location = format!(
        "{}/api/v2.0/Users('{}@{}')/Messages('{}')/Attachments('{}')",
        shared.base_url,
        s.user_oid,
        s.tid,
        s.message_id,
        ids::attachment_id(&s.message_id, index)
    );
    let mut r = empty(StatusCode::CREATED, ids);
    r.headers_mut()
        .insert(header::LOCATION, super::hv(&location));
    let _ = &s.mailbox;
    Ok(r)
}

#[cfg(test)]
mod tests {
    #[test]
    fn session_ids_come_from_the_path() {
        assert_eq!(
            super::session_id(
                "/api/v2.0/Users('a@b')/Messages('AAMk=')/AttachmentSessions('AAMkXYZ')"
            )
            .as_deref(),
            Some("AAMkXYZ")
        );
        assert_eq!(
            super::session_id("/api/v2.0/Users(%27a%27)/AttachmentSessions(%27S1%27)").as_deref(),
            Some("S1")
        );
        assert_eq!(super::session_id("/api/v2.0/Users('a')"), None);
    }
}
