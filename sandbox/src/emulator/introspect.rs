//! `POST|GET /introspect` (RFC 7662) for mail servers (Dovecot's oauth2 passdb): is this bearer
//! token good for mail, and which mailbox may it open?
//!
//! The token comes from the form field `token`, the query parameter `token`, or an
//! `Authorization: Bearer` header; the mailbox to open from `user` (form or query).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;

use super::errors::json_response;
use super::faults::{ConnectionKill, Endpoint, RequestFacts};
use super::graph::backend::BACKEND_CLAIM;
use super::graph::GRAPH_APP_ID;
use super::scopes;
use super::state::{now, Shared, State as St};
use super::{form_map, transport_faults};

/// Audiences Exchange Online accepts.
const MAIL_AUDIENCES: &[&str] = &[
    "https://outlook.office.com",
    "https://outlook.office365.com",
    "https://ps.outlook.com",
    "00000002-0000-0ff1-ce00-000000000000",
];

/// The introspection endpoint.
pub async fn introspect(
    State(shared): State<Arc<Shared>>,
    kill: Option<Extension<ConnectionKill>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let q = form_map(query.unwrap_or_default().as_bytes());
    let f = form_map(&body);
    let token = f
        .get("token")
        .or_else(|| q.get("token"))
        .cloned()
        .or_else(|| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(|s| s.trim().to_string())
        });
    let user = f
        .get("user")
        .or_else(|| q.get("user"))
        .filter(|u| !u.is_empty())
        .cloned();
    let claims = token.as_deref().and_then(|t| shared.key.verify(t));
    let facts = RequestFacts {
        endpoint: Some(Endpoint::Introspect),
        client_id: claims
            .as_ref()
            .and_then(|c| c["appid"].as_str().map(String::from)),
        user: claims
            .as_ref()
            .and_then(|c| c["upn"].as_str().map(String::from)),
        grant_type: None,
    };
    shared.lock().stats.introspections += 1;
    if let Some(r) = transport_faults(&shared, &facts, kill.as_ref().map(|k| &k.0), false).await {
        return r;
    }
    let Some(token) = token else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({"error": "invalid_request", "error_description": "The request must contain the parameter 'token'."}),
        );
    };
    let _ = token;
    let st = shared.lock();
    let answer = claims
        .and_then(|c| evaluate(&st, &c, user.as_deref()))
        .unwrap_or_else(|| serde_json::json!({"active": false}));
    json_response(StatusCode::OK, &answer)
}

/// The introspection answer for verified claims, or `None` (inactive).
fn evaluate(st: &St, c: &serde_json::Value, user: Option<&str>) -> Option<serde_json::Value> {
    let aud = c["aud"].as_str()?;
    if !MAIL_AUDIENCES.contains(&aud) || aud == scopes::GRAPH {
        return None;
    }
    let exp = c["exp"].as_i64()?;
    if exp <= now() || c["nbf"].as_i64().unwrap_or(0) > now() + 300 {
        return None;
    }
    let tid = c["tid"].as_str()?;
    if c["iss"].as_str()? != format!("https://sts.windows.net/{tid}/") || st.tenant(tid).is_none() {
        return None;
    }
    let uti = c["uti"].as_str()?;
    if st.access_tokens.get(uti).is_some_and(|r| r.revoked) {
        return None;
    }
    let client_id = c["appid"].as_str()?;
    // Graph's own logins to the mailboxes (the emulator's backend tokens): any mailbox of the
    // token's tenant, as Exchange trusts Graph.
    let backend = c[BACKEND_CLAIM] == true && client_id == GRAPH_APP_ID;
    let app = if backend {
        None
    } else {
        Some(st.app(client_id)?)
    };
    let username = if backend {
        let target = st.user_by_address(user?)?;
        if !target.tenant.eq_ignore_ascii_case(tid) {
            return None;
        }
        target.mailbox_address().to_string()
    } else if c["idtyp"] == "app" {
        // App-only: a mailbox in the tenant the app was granted, named by `user`.
        let roles: Vec<&str> = c["roles"]
            .as_array()?
            .iter()
            .filter_map(|r| r.as_str())
            .collect();
        if !roles.iter().any(|r| {
            matches!(
                *r,
                "IMAP.AccessAsApp" | "POP.AccessAsApp" | "SMTP.SendAsApp"
            )
        }) {
            return None;
        }
        let target = st.user_by_address(user?)?;
        if !target.tenant.eq_ignore_ascii_case(tid) {
            return None;
        }
        let granted = app?.mailbox_grants.iter().any(|m| {
            m.eq_ignore_ascii_case(target.mailbox_address()) || m.eq_ignore_ascii_case(&target.upn)
        });
        if !granted {
            return None;
        }
        target.mailbox_address().to_string()
    } else {
        let oid = c["oid"].as_str()?;
        let me = st
            .config
            .users
            .iter()
            .find(|u| st.oid(u) == oid && (u.tenant.eq_ignore_ascii_case(tid) || u.personal))?;
        if !me.can_sign_in {
            return None;
        }
        match user {
            None => me.mailbox_address().to_string(),
            Some(u)
                if u.eq_ignore_ascii_case(&me.upn)
                    || u.eq_ignore_ascii_case(me.mailbox_address()) =>
            {
                me.mailbox_address().to_string()
            }
            Some(u) => {
                let target = st.user_by_address(u)?;
                let allowed = me.full_access.iter().any(|m| target.is_address(m))
                    || target.delegates.iter().any(|d| me.is_address(d));
                if !allowed {
                    return None;
                }
                target.mailbox_address().to_string()
            }
        }
    };
    let scope = c["scp"]
        .as_str()
        .map(String::from)
        .or_else(|| {
            c["roles"].as_array().map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        })
        .unwrap_or_default();
    Some(serde_json::json!({
        "active": true,
        "username": username,
        "scope": scope,
        "exp": exp,
        "iat": c["iat"],
        "client_id": client_id,
        "sub": c["sub"],
        "token_type": "Bearer",
        "aud": aud,
        "iss": c["iss"],
        "tid": tid,
        "oid": c["oid"],
    }))
}
