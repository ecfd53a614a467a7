//! The control API under `/_sandbox/` (JSON) and the operations behind it, shared with the Rust
//! methods of [`super::Emulator`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;

use super::config::{AppConfig, TenantConfig, TokenSettings, UserConfig};
use super::errors::json_response;
use super::faults::{ActiveFault, FaultRule};
use super::graph::backend::Stack;
use super::graph::{GraphSettings, MailStackConfig, SmtpFront};
use super::pages;
use super::state::{now_ms, Shared, State as St, Stats};

pub(crate) fn put_tenant(st: &mut St, t: TenantConfig) {
    st.config
        .tenants
        .retain(|x| !x.id.eq_ignore_ascii_case(&t.id));
    st.config.tenants.push(t);
}

pub(crate) fn put_app(st: &mut St, a: AppConfig) {
    st.config
        .apps
        .retain(|x| !x.client_id.eq_ignore_ascii_case(&a.client_id));
    st.config.apps.push(a);
}

pub(crate) fn put_user(st: &mut St, u: UserConfig) {
    st.config
        .users
        .retain(|x| !x.upn.eq_ignore_ascii_case(&u.upn));
    st.config.users.push(u);
}

pub(crate) fn revoke_refresh(st: &mut St, upn: &str) {
    // +1 ms: a token issued in this same millisecond counts as before the change.
    st.tokens_valid_from
        .insert(upn.to_ascii_lowercase(), now_ms() + 1);
}

pub(crate) fn revoke_access(st: &mut St, upn: &str) {
    for r in st.access_tokens.values_mut() {
        if r.upn
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case(upn))
        {
            r.revoked = true;
        }
    }
}

/// Connect Graph to a mail stack and (re)start the SMTP front.
pub(crate) async fn connect_mail_stack(
    shared: &Arc<Shared>,
    cfg: MailStackConfig,
) -> Result<Option<SmtpFront>, crate::Error> {
    let stack = Arc::new(Stack::new(cfg)?);
    stop_front(shared);
    let front = super::smtp_front::start(shared.clone(), stack.clone()).await?;
    let ports = front.as_ref().map(|f| f.ports);
    shared.graph.set_stack(stack);
    *shared.graph.front.lock().unwrap_or_else(|p| p.into_inner()) = front;
    Ok(ports)
}

/// Stop the SMTP front, if it runs.
pub(crate) fn stop_front(shared: &Shared) {
    if let Some(old) = shared
        .graph
        .front
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        let _ = old.stop.send(true);
    }
}

pub(crate) fn list_faults(st: &St) -> Vec<FaultRule> {
    st.faults
        .iter()
        .map(|f| FaultRule {
            times: f.remaining,
            ..f.rule.clone()
        })
        .collect()
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/config", get(get_config))
        .route("/tenants", post(post_tenant))
        .route("/apps", post(post_app))
        .route("/users", post(post_user))
        .route("/users/{upn}/revoke", post(post_revoke))
        .route(
            "/users/{upn}/revoke-access-tokens",
            post(post_revoke_access),
        )
        .route(
            "/faults",
            get(get_faults).post(post_fault).delete(delete_faults),
        )
        .route("/stats", get(get_stats))
        .route("/reset-stats", post(post_reset_stats))
        .route(
            "/token-settings",
            get(get_token_settings).post(post_token_settings),
        )
        .route("/graph", get(get_graph).post(post_graph))
        .route("/mail-stack", get(get_mail_stack).post(post_mail_stack))
}

async fn get_graph(State(s): State<Arc<Shared>>) -> Response {
    let g = s.lock().config.graph.clone();
    ok(serde_json::to_value(g).unwrap_or_default())
}

async fn post_graph(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    match parse::<GraphSettings>(&body) {
        Ok(g) => {
            s.lock().config.graph = g;
            ok(serde_json::json!({"ok": true}))
        }
        Err(r) => *r,
    }
}

fn mail_stack_state(s: &Shared) -> serde_json::Value {
    serde_json::json!({
        "mail_stack": s.graph.config(),
        "smtp_front": s.graph.front_ports(),
        "graph_base_url": format!("{}/v1.0", s.base_url),
    })
}

async fn get_mail_stack(State(s): State<Arc<Shared>>) -> Response {
    ok(mail_stack_state(&s))
}

async fn post_mail_stack(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    match parse::<MailStackConfig>(&body) {
        Ok(cfg) => match connect_mail_stack(&s, cfg).await {
            Ok(_) => {
                let mut v = mail_stack_state(&s);
                v["ok"] = true.into();
                ok(v)
            }
            Err(e) => bad(&e.to_string()),
        },
        Err(r) => *r,
    }
}

/// Tell a running emulator (at `base_url`) about its mail stack: POST `stack.json` to
/// `/_sandbox/mail-stack`. The answer names the Graph base URL and the SMTP front's ports
/// (`{"ok":true,"graph_base_url":…,"mail_stack":{…},"smtp_front":{"smtp_starttls":…,"smtp_tls":…}}`).
pub async fn post_stack_json(
    base_url: &str,
    stack_json: &std::path::Path,
) -> Result<serde_json::Value, crate::Error> {
    let body = std::fs::read(stack_json).map_err(|e| crate::Error::Io {
        context: format!("reading {}", stack_json.display()),
        source: e,
    })?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| crate::Error::Tls(e.to_string()))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        )
        .build()
        .map_err(|e| crate::Error::Config(format!("HTTP client: {e}")))?;
    let r = client
        .post(format!(
            "{}/_sandbox/mail-stack",
            base_url.trim_end_matches('/')
        ))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| crate::Error::Config(format!("POST {base_url}/_sandbox/mail-stack: {e}")))?;
    let status = r.status();
    let v: serde_json::Value = r
        .json()
        .await
        .map_err(|e| crate::Error::Config(format!("POST {base_url}/_sandbox/mail-stack: {e}")))?;
    if !status.is_success() {
        return Err(crate::Error::Config(format!(
            "POST {base_url}/_sandbox/mail-stack: {status} {v}"
        )));
    }
    Ok(v)
}

fn ok(v: serde_json::Value) -> Response {
    json_response(StatusCode::OK, &v)
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(json_response(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({"error": "invalid_json", "error_description": e.to_string()}),
        ))
    })
}

async fn get_config(State(s): State<Arc<Shared>>) -> Response {
    let cfg = s.lock().config.clone();
    ok(serde_json::to_value(cfg).unwrap_or_default())
}

async fn post_tenant(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    match parse::<TenantConfig>(&body) {
        Ok(t) if uuid::Uuid::parse_str(&t.id).is_ok() => {
            put_tenant(&mut s.lock(), t);
            ok(serde_json::json!({"ok": true}))
        }
        Ok(t) => bad(&format!("tenant id '{}' is not a GUID", t.id)),
        Err(r) => *r,
    }
}

fn bad(msg: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &serde_json::json!({"error": "invalid_config", "error_description": msg}),
    )
}

async fn post_app(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    match parse::<AppConfig>(&body) {
        Ok(a) => {
            let mut st = s.lock();
            if st.tenant(&a.home_tenant).is_none() {
                return bad(&format!(
                    "home_tenant '{}' is not a configured tenant",
                    a.home_tenant
                ));
            }
            put_app(&mut st, a);
            ok(serde_json::json!({"ok": true}))
        }
        Err(r) => *r,
    }
}

async fn post_user(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    match parse::<UserConfig>(&body) {
        Ok(u) => {
            let mut st = s.lock();
            if st.tenant(&u.tenant).is_none() {
                return bad(&format!("tenant '{}' is not a configured tenant", u.tenant));
            }
            put_user(&mut st, u);
            ok(serde_json::json!({"ok": true}))
        }
        Err(r) => *r,
    }
}

async fn post_revoke(State(s): State<Arc<Shared>>, Path(upn): Path<String>) -> Response {
    revoke_refresh(&mut s.lock(), &upn);
    ok(serde_json::json!({"ok": true}))
}

async fn post_revoke_access(State(s): State<Arc<Shared>>, Path(upn): Path<String>) -> Response {
    revoke_access(&mut s.lock(), &upn);
    ok(serde_json::json!({"ok": true}))
}

async fn get_faults(State(s): State<Arc<Shared>>) -> Response {
    ok(serde_json::to_value(list_faults(&s.lock())).unwrap_or_default())
}

async fn post_fault(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    match parse::<FaultRule>(&body) {
        Ok(rule) => {
            let remaining = rule.times;
            s.lock().faults.push(ActiveFault { rule, remaining });
            ok(serde_json::json!({"ok": true}))
        }
        Err(r) => *r,
    }
}

async fn delete_faults(State(s): State<Arc<Shared>>) -> Response {
    s.lock().faults.clear();
    ok(serde_json::json!({"ok": true}))
}

async fn get_stats(State(s): State<Arc<Shared>>) -> Response {
    let stats = s.lock().stats.clone();
    ok(serde_json::to_value(stats).unwrap_or_default())
}

async fn post_reset_stats(State(s): State<Arc<Shared>>) -> Response {
    s.lock().stats = Stats::default();
    ok(serde_json::json!({"ok": true}))
}

async fn get_token_settings(State(s): State<Arc<Shared>>) -> Response {
    let t = s.lock().config.tokens.clone();
    ok(serde_json::to_value(t).unwrap_or_default())
}

async fn post_token_settings(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    match parse::<TokenSettings>(&body) {
        Ok(t) => {
            s.lock().config.tokens = t;
            ok(serde_json::json!({"ok": true}))
        }
        Err(r) => *r,
    }
}

/// `GET /`: what this server is.
pub async fn index(State(s): State<Arc<Shared>>) -> Response {
    let b = pages::esc(&s.base_url);
    pages::html(
        StatusCode::OK,
        pages::layout(
            "mailconnect identity platform emulator",
            &format!(
                "<h1>Identity platform emulator</h1><p>A local stand-in for login.microsoftonline.com (v2.0).</p><ul>\
                 <li>{b}/common/v2.0/.well-known/openid-configuration</li><li>{b}/devicelogin</li>\
                 <li>{b}/introspect</li><li>{b}/v1.0/me (Microsoft Graph)</li><li>{b}/_sandbox/config</li><li>{b}/_sandbox/stats</li></ul>"
            ),
        ),
    )
}
