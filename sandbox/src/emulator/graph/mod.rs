//! Microsoft Graph v1.0 mail (`/v1.0/me/…`, `/v1.0/users/{id}/…`) on the real mail stack: the
//! handlers read and change the mailboxes in Dovecot over IMAP and hand messages to Postfix
//! over SMTP submission, logged in with tokens the emulator mints for itself. Bearer tokens,
//! permissions, the application access policy, error shapes and limits follow Microsoft
//! (docs/provider-facts.md); see sandbox/README.md "Microsoft Graph".

pub(crate) mod auth;
pub(crate) mod backend;
pub(crate) mod directory;
pub(crate) mod errors;
pub(crate) mod ids;
pub(crate) mod imap;
pub(crate) mod mail;
pub(crate) mod mime;
pub(crate) mod query;
pub(crate) mod send;
pub(crate) mod smtp;
pub(crate) mod upload;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Extension;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

pub(crate) use backend::Backend;
pub use backend::{MailStackConfig, SmtpFront};

use super::faults::ConnectionKill;
use super::state::Shared;
use auth::{Need, Principal, Target, Who};
use errors::{GraphError, RequestIds};

/// Microsoft Graph's application id (also a valid token audience).
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// Limits and failure switches of the Graph endpoints (`EmulatorConfig::graph`,
/// `GET|POST /_sandbox/graph`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphSettings {
    /// Largest request body; larger ones get 413 (Graph: 4 MB).
    pub max_request_bytes: usize,
    /// Largest message (MIME size) that can be sent or stored; larger: 400
    /// `ErrorMessageSizeExceeded` (Exchange Online's default: 35 MB).
    pub max_message_bytes: usize,
    /// Largest byte range of one upload-session `PUT` (4 MB).
    pub max_upload_chunk_bytes: usize,
    /// Largest attachment of an upload session (150 MB).
    pub max_attachment_bytes: usize,
    /// How long an upload URL stays valid, in seconds.
    pub upload_session_secs: u64,
    /// The throttling switch: the next requests answer 429 (or 503) with `Retry-After`.
    pub throttle: Option<GraphThrottle>,
    /// The next N sends (`sendMail`, `messages/{id}/send`) hand the message to Postfix, then
    /// close the connection without an answer (the client cannot know it was sent).
    pub lose_send_answers: u32,
    /// The Microsoft cloud this Graph belongs to, whose resource a token's audience must name
    /// (default: the global cloud, `https://graph.microsoft.com`). The emulator's identity
    /// platform is the global one, so with another cloud every token it issues is refused with
    /// 401 `InvalidAuthenticationToken` "Access token validation failure. Invalid audience.",
    /// as a national cloud's Graph refuses a global token: what a client meets when a
    /// registration's `graph_host` and cloud do not belong together.
    pub cloud: GraphCloud,
    /// The outage switch: Graph (or the gateway in front of it) answers server errors.
    pub outage: Option<GraphOutage>,
}

impl Default for GraphSettings {
    fn default() -> Self {
        GraphSettings {
            max_request_bytes: 4 * 1024 * 1024,
            max_message_bytes: 35 * 1024 * 1024,
            max_upload_chunk_bytes: 4 * 1024 * 1024,
            max_attachment_bytes: 150 * 1024 * 1024,
            upload_session_secs: 6 * 3600,
            throttle: None,
            lose_send_answers: 0,
            cloud: GraphCloud::Global,
            outage: None,
        }
    }
}

/// A Microsoft cloud's Graph (`GraphSettings::cloud`). JSON: `"global"`, `"usgov"`, `"dod"`,
/// `"china"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphCloud {
    /// `https://graph.microsoft.com`.
    #[default]
    Global,
    /// US Government L4: `https://graph.microsoft.us`.
    Usgov,
    /// US Government L5 (DOD): `https://dod-graph.microsoft.us`.
    Dod,
    /// Operated by 21Vianet: `https://microsoftgraph.chinacloudapi.cn`.
    China,
}

impl GraphCloud {
    /// The Graph resource of this cloud (a token's `aud`).
    pub fn resource(self) -> &'static str {
        match self {
            GraphCloud::Global => crate::emulator::scopes::GRAPH,
            GraphCloud::Usgov => "https://graph.microsoft.us",
            GraphCloud::Dod => "https://dod-graph.microsoft.us",
            GraphCloud::China => "https://microsoftgraph.chinacloudapi.cn",
        }
    }
}

/// The outage switch: Graph answers server errors the way it does during an incident, in its
/// JSON shape (`{"error":{"code":"UnknownError","message":"","innerError":{…}}}`, the body
/// Graph's mail endpoints give with 500, 503 and 504) or as a gateway's HTML page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphOutage {
    /// How many requests still get the error (counted down; the switch ends at 0); `null`:
    /// every request until the switch is cleared.
    pub requests: Option<u32>,
    /// The HTTP status: 500 (default), 502, 503 or 504.
    pub status: u16,
    /// Seconds in `Retry-After` (none by default).
    pub retry_after_secs: Option<u64>,
    /// Only `sendMail` and draft sends get the error; other requests pass.
    pub send_mail_only: bool,
    /// The request is carried out first and the error answered after it: the gateway gave up
    /// while Exchange did the work, so a send has gone out (a 504 to `sendMail` whose message
    /// is delivered anyway). Default: refused before anything happens.
    pub after_processing: bool,
    /// The answer is a gateway's HTML error page instead of Graph's JSON.
    pub html: bool,
    /// The error `code` (default `UnknownError`).
    pub code: Option<String>,
    /// The error `message` (default empty, as Graph sends it).
    pub message: Option<String>,
}

impl Default for GraphOutage {
    fn default() -> Self {
        GraphOutage {
            requests: None,
            status: 500,
            retry_after_secs: None,
            send_mail_only: false,
            after_processing: false,
            html: false,
            code: None,
            message: None,
        }
    }
}

/// The throttling switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphThrottle {
    /// How many requests are still refused (counted down; the switch ends at 0).
    pub requests: u32,
    /// 429 (default) or 503.
    pub status: u16,
    /// Seconds in `Retry-After`.
    pub retry_after_secs: u64,
    /// Only `sendMail` and draft sends are refused; other requests pass.
    pub send_mail_only: bool,
    /// The error `code` (default: `ApplicationThrottled` for 429, `ServiceUnavailable` for 503).
    pub code: Option<String>,
    /// The error `message`.
    pub message: Option<String>,
}

impl Default for GraphThrottle {
    fn default() -> Self {
        GraphThrottle {
            requests: 1,
            status: 429,
            retry_after_secs: 2,
            send_mail_only: false,
            code: None,
            message: None,
        }
    }
}

/// An upload session in progress.
#[derive(Debug, Clone)]
pub(crate) struct UploadSession {
    pub authtoken: String,
    pub mailbox: String,
    pub user_oid: String,
    pub tid: String,
    /// The message id the client used.
    pub message_id: String,
    pub name: String,
    pub content_type: String,
    pub inline: bool,
    pub content_id: Option<String>,
    pub size: u64,
    pub data: Vec<u8>,
    pub expires: i64,
}

/// Graph's live data in the emulator state.
#[derive(Debug, Default)]
pub(crate) struct GraphData {
    /// Internal Exchange tokens per mailbox: (token, expiry).
    pub backend_tokens: HashMap<String, (String, i64)>,
    /// Upload sessions by id.
    pub uploads: HashMap<String, UploadSession>,
    /// Drafts rewritten to add attachments keep the id the client knows: id → where it is now.
    pub draft_now: HashMap<String, ids::MessageKey>,
    /// … and where it is now → the id the client knows.
    pub draft_id: HashMap<ids::MessageKey, String>,
}

/// One authenticated request for one mailbox.
pub(crate) struct Ctx {
    pub shared: Arc<Shared>,
    pub ids: RequestIds,
    pub principal: Principal,
    pub target: Target,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub kill: Option<ConnectionKill>,
    /// The request path below `/v1.0` (for `@odata.nextLink`).
    pub path: String,
}

impl Ctx {
    /// `{base}/v1.0`.
    pub fn base(&self) -> String {
        format!("{}/v1.0", self.shared.base_url)
    }

    pub fn settings(&self) -> GraphSettings {
        self.shared.lock().config.graph.clone()
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Read a request body of at most `limit` bytes (a larger one is drained, then refused: 413).
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, GraphError> {
    let mut stream = body.into_data_stream();
    let mut out: Vec<u8> = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| errors::bad_request(format!("Reading the request body failed: {e}")))?;
        total += chunk.len();
        if total <= limit {
            out.extend_from_slice(&chunk);
        } else if total > 512 * 1024 * 1024 {
            break;
        }
    }
    if total > limit {
        return Err(errors::request_too_large(limit));
    }
    Ok(Bytes::from(out))
}

/// The routes below `/v1.0/{me|users/{id}}`.
enum Route {
    Profile,
    SendMail,
    Folders,
    Folder(String),
    FolderMessages(String),
    CreateInFolder(String),
    Messages,
    CreateMessage,
    Message(String),
    Update(String),
    Delete(String),
    Value(String),
    Move(String),
    Send(String),
    Attachments(String),
    AddAttachment(String),
    UploadSession(String),
}

impl Route {
    fn need(&self) -> Option<Need> {
        Some(match self {
            Route::Profile => return None,
            Route::SendMail | Route::Send(_) => Need::Send,
            Route::Folders
            | Route::Folder(_)
            | Route::FolderMessages(_)
            | Route::Messages
            | Route::Message(_)
            | Route::Value(_)
            | Route::Attachments(_) => Need::Read,
            _ => Need::Write,
        })
    }

    fn is_send(&self) -> bool {
        matches!(self, Route::SendMail | Route::Send(_))
    }
}

fn route(method: &Method, rest: &[String]) -> Result<Route, GraphError> {
    let s: Vec<&str> = rest.iter().map(String::as_str).collect();
    // `mailFolders/{f}/messages/{id}/…` is the same message as `messages/{id}/…`.
    let s: Vec<&str> = match s.as_slice() {
        ["mailFolders", _, "messages", id, tail @ ..] => {
            let mut v = vec!["messages", *id];
            v.extend_from_slice(tail);
            v
        }
        _ => s,
    };
    let id = |i: usize| s[i].to_string();
    let r = match (s.as_slice(), method) {
        ([], &Method::GET) => Route::Profile,
        (["sendMail"], &Method::POST) => Route::SendMail,
        (["mailFolders"], &Method::GET) => Route::Folders,
        (["mailFolders", _], &Method::GET) => Route::Folder(id(1)),
        (["mailFolders", _, "messages"], &Method::GET) => Route::FolderMessages(id(1)),
        (["mailFolders", _, "messages"], &Method::POST) => Route::CreateInFolder(id(1)),
        (["messages"], &Method::GET) => Route::Messages,
        (["messages"], &Method::POST) => Route::CreateMessage,
        (["messages", _], &Method::GET) => Route::Message(id(1)),
        (["messages", _], &Method::PATCH) => Route::Update(id(1)),
        (["messages", _], &Method::DELETE) => Route::Delete(id(1)),
        (["messages", _, "$value"], &Method::GET) => Route::Value(id(1)),
        (["messages", _, "move"], &Method::POST) => Route::Move(id(1)),
        (["messages", _, "send"], &Method::POST) => Route::Send(id(1)),
        (["messages", _, "attachments"], &Method::GET) => Route::Attachments(id(1)),
        (["messages", _, "attachments"], &Method::POST) => Route::AddAttachment(id(1)),
        (["messages", _, "attachments", "createUploadSession"], &Method::POST) => {
            Route::UploadSession(id(1))
        }
        (shape, _) => {
            let known = matches!(
                shape,
                [] | ["sendMail"]
                    | ["mailFolders"]
                    | ["mailFolders", _]
                    | ["mailFolders", _, "messages"]
                    | ["messages"]
                    | ["messages", _]
                    | ["messages", _, "$value" | "move" | "send" | "attachments"]
                    | ["messages", _, "attachments", "createUploadSession"]
            );
            return Err(if known {
                GraphError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "Request_BadRequest",
                    format!("The HTTP method '{method}' is not allowed on this resource."),
                )
            } else {
                errors::bad_request(format!(
                    "Resource not found for the segment '{}'.",
                    shape.last().copied().unwrap_or("me")
                ))
            });
        }
    };
    Ok(r)
}

/// Apply the throttling switch.
fn throttled(shared: &Shared, is_send: bool) -> Option<GraphError> {
    let mut st = shared.lock();
    let t = st.config.graph.throttle.as_mut()?;
    if t.requests == 0 || (t.send_mail_only && !is_send) {
        return None;
    }
    t.requests -= 1;
    let t = t.clone();
    if t.requests == 0 {
        st.config.graph.throttle = None;
    }
    st.stats.graph_throttled += 1;
    let (status, code, message) = if t.status == 503 {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The service is temporarily unavailable. Try again later.",
        )
    } else {
        (
            StatusCode::TOO_MANY_REQUESTS,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
        )
    };
    Some(
        GraphError::new(
            status,
            t.code.as_deref().unwrap_or(code),
            t.message.clone().unwrap_or_else(|| message.to_string()),
        )
        .header(header::RETRY_AFTER, t.retry_after_secs.to_string()),
    )
}

/// Apply the outage switch: the outage when this request gets its error (counted down).
fn outage_hit(shared: &Shared, is_send: bool) -> Option<GraphOutage> {
    let mut st = shared.lock();
    let o = st.config.graph.outage.as_mut()?;
    if o.requests == Some(0) || (o.send_mail_only && !is_send) {
        return None;
    }
    if let Some(n) = o.requests.as_mut() {
        *n -= 1;
    }
    let o = o.clone();
    if o.requests == Some(0) {
        st.config.graph.outage = None;
    }
    Some(o)
}

/// The answer of the outage switch.
fn outage_answer(o: &GraphOutage, ids: &RequestIds) -> Response {
    let status = StatusCode::from_u16(o.status)
        .ok()
        .filter(|s| s.is_server_error())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = if o.html {
        let title = format!(
            "{} - {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Server Error")
        );
        let page = format!(
            "<!DOCTYPE html>\r\n<html><head><title>{title}</title></head>\r\n<body><h1>Server Error</h1><h2>{title}</h2><p>The gateway did not get a valid answer from the server behind it.</p></body></html>\r\n"
        );
        let mut r = Response::new(Body::from(page));
        *r.status_mut() = status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        r
    } else {
        GraphError::new(
            status,
            o.code.as_deref().unwrap_or("UnknownError"),
            o.message.clone().unwrap_or_default(),
        )
        .into_response(ids)
    };
    if let Some(secs) = o.retry_after_secs {
        r.headers_mut().insert(header::RETRY_AFTER, secs.into());
    }
    r
}

/// `/v1.0/{*rest}`: every Graph request.
pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    kill: Option<Extension<ConnectionKill>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    shared.lock().stats.graph_requests += 1;
    let ids = RequestIds::new(&headers);
    let r = dispatch(shared, kill.map(|k| k.0), method, uri, headers, body, &ids).await;
    if let Err(e) = &r {
        tracing::debug!(status = %e.status, code = %e.code, "graph request refused");
    }
    ids.answer(r)
}

async fn dispatch(
    shared: Arc<Shared>,
    kill: Option<ConnectionKill>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
    ids: &RequestIds,
) -> Result<Response, GraphError> {
    let segs: Vec<String> = uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let principal = {
        let st = shared.lock();
        auth::authenticate(&st, &shared.key, &shared.base_url, &headers)?
    };
    if segs.get(1).is_some_and(|s| directory::is_directory(s)) {
        return directory_request(&shared, &principal, &method, &uri, &segs[1..], body, ids).await;
    }
    let (who, rest) = match segs.get(1).map(String::as_str) {
        Some("me") => (Who::Me, &segs[2..]),
        Some("users") if segs.len() >= 3 => (Who::User(segs[2].clone()), &segs[3..]),
        other => {
            return Err(errors::bad_request(format!(
                "Resource not found for the segment '{}'.",
                other.unwrap_or_default()
            )))
        }
    };
    let route = route(&method, rest)?;
    if let Some(e) = throttled(&shared, route.is_send()) {
        return Err(e);
    }
    let outage = outage_hit(&shared, route.is_send());
    if let Some(o) = &outage {
        shared.lock().stats.graph_outage_answers += 1;
        if !o.after_processing {
            return Ok(outage_answer(o, ids));
        }
    }
    let answer = async move {
        let target = {
            let st = shared.lock();
            let t = auth::target(&st, &principal, &who)?;
            match route.need() {
                None => auth::check_profile(&principal, &t)?,
                Some(need) => {
                    auth::check(&principal, &t, need)?;
                    auth::open_mailbox(&st, &principal, &t)?;
                }
            }
            t
        };
        let query: HashMap<String, String> =
            super::form_map(uri.query().unwrap_or_default().as_bytes());
        let limit = shared.lock().config.graph.max_request_bytes;
        let body = if matches!(method, Method::POST | Method::PATCH | Method::PUT) {
            read_body(body, limit).await?
        } else {
            Bytes::new()
        };
        let path = segs[1..].join("/");
        let ctx = Ctx {
            shared,
            ids: ids.clone(),
            principal,
            target,
            query,
            headers,
            kill,
            path,
        };
        match route {
            Route::Profile => mail::profile(&ctx).await,
            Route::SendMail => send::send_mail(&ctx, &body).await,
            Route::Folders => mail::folders(&ctx).await,
            Route::Folder(f) => mail::folder(&ctx, &f).await,
            Route::FolderMessages(f) => mail::list(&ctx, Some(&f)).await,
            Route::CreateInFolder(f) => send::create(&ctx, Some(&f), &body).await,
            Route::Messages => mail::list(&ctx, None).await,
            Route::CreateMessage => send::create(&ctx, None, &body).await,
            Route::Message(id) => mail::get(&ctx, &id).await,
            Route::Update(id) => mail::update(&ctx, &id, &body).await,
            Route::Delete(id) => mail::delete(&ctx, &id).await,
            Route::Value(id) => mail::value(&ctx, &id).await,
            Route::Move(id) => mail::move_message(&ctx, &id, &body).await,
            Route::Send(id) => send::send_draft(&ctx, &id).await,
            Route::Attachments(id) => mail::attachments(&ctx, &id).await,
            Route::AddAttachment(id) => send::add_attachment(&ctx, &id, &body).await,
            Route::UploadSession(id) => upload::create(&ctx, &id, &body).await,
        }
    }
    .await;
    match outage {
        // The work is done (or failed); the gateway answers its error all the same.
        Some(o) => Ok(outage_answer(&o, ids)),
        None => answer,
    }
}

/// A directory request (`/organization`, `/applications`, `/servicePrincipals`,
/// `/oauth2PermissionGrants`): the throttling and outage switches apply as to mail requests.
async fn directory_request(
    shared: &Arc<Shared>,
    principal: &Principal,
    method: &Method,
    uri: &Uri,
    segs: &[String],
    body: Body,
    ids: &RequestIds,
) -> Result<Response, GraphError> {
    if let Some(e) = throttled(shared, false) {
        return Err(e);
    }
    let outage = outage_hit(shared, false);
    if let Some(o) = &outage {
        shared.lock().stats.graph_outage_answers += 1;
        if !o.after_processing {
            return Ok(outage_answer(o, ids));
        }
    }
    let limit = shared.lock().config.graph.max_request_bytes;
    let body = if matches!(*method, Method::POST | Method::PATCH | Method::PUT) {
        read_body(body, limit).await?
    } else {
        Bytes::new()
    };
    let query: HashMap<String, String> =
        super::form_map(uri.query().unwrap_or_default().as_bytes());
    let answer = {
        let mut st = shared.lock();
        let call = directory::Call {
            method,
            segs,
            query: &query,
            body: &body,
        };
        directory::handle(&mut st, principal, &shared.base_url, call, ids)
    };
    match outage {
        Some(o) => Ok(outage_answer(&o, ids)),
        None => answer,
    }
}

/// The JSON request body (400 BadRequest when it is not JSON).
pub(crate) fn json_body(body: &[u8]) -> Result<serde_json::Value, GraphError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(errors::bad_request("Empty Payload. JSON content expected."));
    }
    serde_json::from_slice(body).map_err(|_| errors::unreadable_json())
}

/// Whether the request body is MIME (`Content-Type: text/plain`).
pub(crate) fn is_mime(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("text/plain"))
}

/// A header value that is known to be valid.
pub(crate) fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}
