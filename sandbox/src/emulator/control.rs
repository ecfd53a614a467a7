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
                 <li>{b}/introspect</li><li>{b}/_sandbox/config</li><li>{b}/_sandbox/stats</li></ul>"
            ),
        ),
    )
}
