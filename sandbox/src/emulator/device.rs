//! The device authorization grant: `POST /{tenant}/oauth2/v2.0/devicecode`, the `/devicelogin`
//! page where the user types the code, and the "Are you trying to sign in?" confirmation.
//! Polling is handled by the token endpoint (token.rs).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use rand::Rng;

use super::authorize::{advance, finish_error};
use super::errors::{self, json_response, AadError};
use super::faults::{ConnectionKill, Endpoint, Fault, RequestFacts};
use super::pages;
use super::scopes;
use super::state::{now, random_token, DeviceGrant, DeviceStatus, Flow, Purpose, Shared, Step};
use super::{cookie, form_map, transport_faults};

/// A user code like Microsoft's: 9 characters, uppercase letters and digits.
fn user_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..9)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`.
pub async fn devicecode(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    kill: Option<Extension<ConnectionKill>>,
    body: Bytes,
) -> Response {
    let form = form_map(&body);
    let client_id = form.get("client_id").filter(|c| !c.is_empty()).cloned();
    let facts = RequestFacts {
        endpoint: Some(Endpoint::Devicecode),
        client_id: client_id.clone(),
        user: None,
        grant_type: None,
    };
    shared.lock().stats.device_code_requests += 1;
    if let Some(r) = transport_faults(&shared, &facts, kill.as_ref().map(|k| &k.0), false).await {
        return r;
    }
    let mut st = shared.lock();
    let result = (|| -> Result<serde_json::Value, AadError> {
        let authority = st
            .authority(&tenant)
            .ok_or_else(|| errors::tenant_not_found(&tenant))?;
        let client_id = client_id
            .as_deref()
            .ok_or_else(|| errors::missing_parameter("client_id"))?;
        if st
            .take_fault(&facts, |f| *f == Fault::AppNotFound)
            .is_some()
        {
            return Err(errors::app_not_found(
                client_id,
                &st.directory_name(&authority, &tenant),
            ));
        }
        let app = st.check_app(client_id, &authority, &tenant)?.clone();
        let raw_scope = form
            .get("scope")
            .filter(|s| !s.trim().is_empty())
            .cloned()
            .ok_or_else(|| errors::missing_parameter("scope"))?;
        let scopes = scopes::parse(&raw_scope, client_id, &tenant)?;
        let settings = st.config.tokens.clone();
        let device_code = format!("DAQABIQEAAAD{}", random_token(300));
        let code = user_code();
        st.device_codes.insert(
            device_code.clone(),
            DeviceGrant {
                client_id: app.client_id.clone(),
                user_code: code.clone(),
                segment: tenant.clone(),
                authority,
                scopes,
                expires_at: now() + settings.device_code_lifetime_secs as i64,
                interval: settings.device_poll_interval_secs,
                last_poll_ms: None,
                status: DeviceStatus::Pending,
            },
        );
        let uri = format!("{}/devicelogin", shared.base_url);
        Ok(serde_json::json!({
            "user_code": code,
            "device_code": device_code,
            "verification_uri": uri,
            "expires_in": settings.device_code_lifetime_secs,
            "interval": settings.device_poll_interval_secs,
            "message": format!("To sign in, use a web browser to open the page {uri} and enter the code {code} to authenticate."),
        }))
    })();
    match result {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => e.into_response(&shared.base_url),
    }
}

/// `GET /devicelogin`.
pub async fn devicelogin_page(State(shared): State<Arc<Shared>>) -> Response {
    shared.lock().stats.page_views += 1;
    pages::html(StatusCode::OK, pages::device_code_entry(None))
}

/// `POST /devicelogin`: the typed user code starts a sign-in transaction.
pub async fn devicelogin_submit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form_map(&body);
    let typed: String = form
        .get("otc")
        .map(|s| {
            s.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_uppercase()
        })
        .unwrap_or_default();
    let mut st = shared.lock();
    st.sweep();
    let t = now();
    let found = st
        .device_codes
        .iter()
        .find(|(_, g)| g.user_code == typed)
        .map(|(k, g)| (k.clone(), g.clone()));
    let Some((device_code, grant)) =
        found.filter(|(_, g)| g.expires_at > t && g.status == DeviceStatus::Pending)
    else {
        st.stats.page_views += 1;
        return pages::html(
            StatusCode::OK,
            pages::device_code_entry(Some("That code didn't work. Check the code and try again.")),
        );
    };
    let session_id =
        cookie(&headers, super::SESSION_COOKIE).filter(|s| st.sessions.contains_key(s));
    let has_accounts = session_id
        .as_ref()
        .and_then(|s| st.sessions.get(s))
        .is_some_and(|s| !s.accounts.is_empty());
    let flow = Flow {
        id: random_token(48),
        purpose: Purpose::Device { device_code },
        segment: grant.segment.clone(),
        authority: grant.authority.clone(),
        client_id: grant.client_id.clone(),
        scopes: grant.scopes.clone(),
        step: if has_accounts {
            Step::Picker
        } else {
            Step::Username
        },
        upn: None,
        authenticated: false,
        mfa_done: false,
        mfa_forced: false,
        device_confirmed: false,
        force_consent: false,
        login_hint: None,
        inline_error: None,
        consent_done: false,
        session_id,
        created: t,
    };
    let id = flow.id.clone();
    st.flows.insert(id.clone(), flow);
    advance(&shared, &mut st, &id)
}

/// `POST /{tenant}/oauth2/deviceauth`: Continue / Cancel on "Are you trying to sign in to ...?".
pub async fn confirm(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let form = form_map(&body);
    let mut st = shared.lock();
    let Some(id) = form
        .get("ctx")
        .filter(|c| st.flows.contains_key(*c))
        .cloned()
    else {
        return super::authorize::error_page(
            &AadError::new("invalid_request", 50089, "Authentication failed due to flow token expired. Start the sign-in again from the application."),
            None,
        );
    };
    let step = st.flows.get(&id).map(|f| f.step);
    if step == Some(Step::DeviceConfirm) {
        if form.get("continue").map(String::as_str) == Some("yes") {
            if let Some(f) = st.flows.get_mut(&id) {
                f.device_confirmed = true;
            }
        } else {
            let e = errors::authorization_declined();
            return finish_error(&shared, &mut st, &id, &e, None);
        }
    }
    advance(&shared, &mut st, &id)
}
