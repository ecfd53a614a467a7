//! `POST /{tenant}/oauth2/v2.0/token`: the four grants, client authentication, and minting of
//! access tokens (v1.0 JWTs for Exchange/Graph), id_tokens (v2.0) and refresh tokens.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use tokio::runtime::{Handle, RuntimeFlavor};

use super::config::{AppConfig, Platform};
use super::errors::{self, json_response, AadError};
use super::faults::{self, ConnectionKill, Endpoint, Fault, RequestFacts};
use super::jwt::SigningKey;
use super::scopes::{self, Scope};
use super::state::{
    self, now, now_ms, random_token, Authority, DeviceStatus, RefreshGrant, Shared, State as St,
};
use super::{form_map, transport_faults};

pub(crate) const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Short grant name for statistics.
fn short_grant(g: &str) -> String {
    if g == DEVICE_GRANT {
        "device_code".into()
    } else {
        g.to_string()
    }
}

/// Client id and secret from HTTP Basic (RFC 6749 §2.3.1: form-urlencoded, then base64).
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let b = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let raw = String::from_utf8(STANDARD.decode(b.trim()).ok()?).ok()?;
    let (id, secret) = raw.split_once(':')?;
    let dec = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((dec(id), dec(secret)))
}

/// The token endpoint.
pub async fn token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    kill: Option<Extension<ConnectionKill>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form_map(&body);
    let basic = basic_auth(&headers);
    let client_id = form
        .get("client_id")
        .cloned()
        .or_else(|| basic.as_ref().map(|b| b.0.clone()));
    let secret = form
        .get("client_secret")
        .cloned()
        .or_else(|| basic.as_ref().map(|b| b.1.clone()));
    let grant = form.get("grant_type").cloned();
    let facts = {
        let mut st = shared.lock();
        let user = match grant.as_deref() {
            Some("refresh_token") => form
                .get("refresh_token")
                .and_then(|t| st.refresh_tokens.get(t))
                .map(|g| g.upn.clone()),
            Some("authorization_code") => form
                .get("code")
                .and_then(|c| st.codes.get(c))
                .map(|c| c.upn.clone()),
            Some(DEVICE_GRANT) => form
                .get("device_code")
                .and_then(|d| st.device_codes.get(d))
                .and_then(|d| match &d.status {
                    DeviceStatus::Approved { upn, .. } => Some(upn.clone()),
                    _ => None,
                }),
            _ => None,
        };
        if let Some(g) = &grant {
            *st.stats.token_requests.entry(short_grant(g)).or_default() += 1;
            if g == DEVICE_GRANT {
                st.stats.device_polls += 1;
            }
        }
        RequestFacts {
            endpoint: Some(Endpoint::Token),
            client_id: client_id.clone(),
            user,
            grant_type: grant.clone(),
        }
    };
    if let Some(r) = transport_faults(&shared, &facts, kill.as_ref().map(|k| &k.0), false).await {
        return r;
    }
    // Under the lock: check the grant, update the state and counters, decide the claims and the
    // faults of the answer. Nothing is signed here.
    let (issue, truncated, cut) = {
        let mut st = shared.lock();
        st.sweep();
        let result = (|| {
            let authority = st
                .authority(&tenant)
                .ok_or_else(|| errors::tenant_not_found(&tenant))?;
            let grant = grant
                .as_deref()
                .ok_or_else(|| errors::missing_parameter("grant_type"))?;
            let client_id = client_id
                .as_deref()
                .ok_or_else(|| errors::missing_parameter("client_id"))?;
            if st
                .take_fault(&facts, |f| *f == Fault::AppNotFound)
                .is_some()
            {
                let dir = st.directory_name(&authority, &tenant);
                return Err(errors::app_not_found(client_id, &dir));
            }
            let req = TokenRequest {
                form: &form,
                client_id,
                secret: secret.as_deref(),
                authority: &authority,
                segment: &tenant,
                facts: &facts,
            };
            match grant {
                "authorization_code" => code_grant(&shared, &mut st, &req),
                "refresh_token" => refresh_grant(&shared, &mut st, &req),
                DEVICE_GRANT => device_grant(&shared, &mut st, &req),
                "client_credentials" => client_credentials(&mut st, &req),
                other => Err(errors::unsupported_grant(other)),
            }
        })();
        let issue = match result {
            Ok(issue) => issue,
            Err(e) => return e.into_response(&shared.base_url),
        };
        if let Some(g) = &grant {
            *st.stats.tokens_issued.entry(short_grant(g)).or_default() += 1;
        }
        let truncated = st
            .take_fault(&facts, |f| *f == Fault::TruncatedJson)
            .is_some();
        let cut = !truncated
            && st
                .take_fault(&facts, |f| *f == Fault::DropMidBody)
                .is_some();
        (issue, truncated, cut)
    };
    // The lock is released: sign and encode now, so that requests are signed in parallel.
    let info = if form.get("client_info").map(String::as_str) == Some("1") {
        client_info(&issue.access)
    } else {
        None
    };
    let mut body = if Handle::current().runtime_flavor() == RuntimeFlavor::CurrentThread {
        // One thread runs the runtime (in tests, the client's requests too): sign beside it.
        let signer = shared.clone();
        match tokio::task::spawn_blocking(move || issue.sign(&signer)).await {
            Ok(body) => body,
            // A panic while signing goes on as it did when the tokens were signed in the
            // handler; a cancelled task means the runtime is shutting down.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
        }
    } else {
        // A worker per core: signing on the worker (about 2 ms) keeps every core signing with at
        // most one signature per core at a time. Measured against the blocking pool with the
        // scale benchmark's 16 refreshes in flight on 2 cores: the same HTTP floor, but the
        // clients measured beside the emulator got less CPU from the pool's many signing threads.
        issue.sign(&shared)
    };
    if let Some(info) = info {
        body["client_info"] = info.into();
    }
    if truncated {
        return faults::truncated(&body);
    }
    if cut {
        return faults::cut_mid_body(&body, kill.as_ref().map(|k| &k.0));
    }
    json_response(StatusCode::OK, &body)
}

/// A successful token response decided under the state lock (grant checked and rotated, counters
/// and records updated); its JWTs are padded and signed by [`Issue::sign`] after the lock is
/// released.
pub(crate) struct Issue {
    /// The response, with an empty `access_token` (and `id_token`) where the token goes.
    body: serde_json::Value,
    /// The access token's claims (`aio` is set to pad it to `access_size`).
    access: serde_json::Value,
    /// `TokenSettings::access_token_size` when it was issued.
    access_size: usize,
    /// The id_token's claims, when one is issued.
    id: Option<serde_json::Value>,
}

impl Issue {
    /// Sign the tokens into the response, and record the access token among the issued secrets.
    fn sign(mut self, shared: &Shared) -> serde_json::Value {
        let access_token = sign_padded(&shared.key, &mut self.access, self.access_size);
        if let Some(id) = &self.id {
            self.body["id_token"] = shared.key.sign(id).into();
        }
        self.body["access_token"] = access_token.clone().into();
        shared.lock().issued_access_tokens.push(access_token);
        self.body
    }
}

/// Entra ID's `client_info` (sent when the request has `client_info=1`, as MSAL's do): base64url
/// of `{"uid": <object id>, "utid": <tenant id>}` of the signed-in user, from which MSAL builds the
/// home account id `<uid>.<utid>`. `None` for app-only tokens (no user). From the claims of the
/// access token issued.
fn client_info(claims: &serde_json::Value) -> Option<String> {
    if claims["idtyp"] != "user" {
        return None;
    }
    let info = serde_json::json!({"uid": claims["oid"], "utid": claims["tid"]});
    Some(URL_SAFE_NO_PAD.encode(info.to_string()))
}

/// A parsed token request.
struct TokenRequest<'a> {
    form: &'a HashMap<String, String>,
    client_id: &'a str,
    secret: Option<&'a str>,
    authority: &'a Authority,
    segment: &'a str,
    facts: &'a RequestFacts,
}

impl TokenRequest<'_> {
    fn param(&self, name: &str) -> Result<&str, AadError> {
        self.form
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| errors::missing_parameter(name))
    }
}

/// Client authentication. `public`: the request comes from a public client (desktop/SPA
/// redirect, device code, or a refresh token issued to one).
fn authenticate(
    st: &mut St,
    app: &AppConfig,
    public: bool,
    req: &TokenRequest,
) -> Result<(), AadError> {
    if st
        .take_fault(req.facts, |f| *f == Fault::InvalidClientSecret)
        .is_some()
    {
        return Err(errors::invalid_client_secret(&app.client_id));
    }
    if st
        .take_fault(req.facts, |f| *f == Fault::ClientSecretExpired)
        .is_some()
    {
        return Err(errors::client_secret_expired(&app.client_id));
    }
    let assertion = req.form.contains_key("client_assertion");
    let presented = req.secret.is_some() || assertion;
    if public || app.public_client {
        if presented {
            return Err(errors::public_client_sent_secret());
        }
        return Ok(());
    }
    if assertion {
        return Err(AadError::client(
            700027,
            "Client assertion failed signature validation. (The sandbox emulator accepts client secrets only.)",
        ));
    }
    let Some(secret) = req.secret else {
        return Err(errors::client_credentials_missing());
    };
    match app.secrets.iter().find(|s| s.value == secret) {
        None => Err(errors::invalid_client_secret(&app.client_id)),
        Some(s) if s.expires_at.is_some_and(|e| e <= now()) => {
            Err(errors::client_secret_expired(&app.client_id))
        }
        Some(_) => Ok(()),
    }
}

fn code_grant(shared: &Shared, st: &mut St, req: &TokenRequest) -> Result<Issue, AadError> {
    let code = req.param("code")?.to_string();
    let redirect_uri = req.param("redirect_uri")?.to_string();
    let app = st
        .check_app(req.client_id, req.authority, req.segment)?
        .clone();
    let rec = st.codes.get(&code).cloned().ok_or_else(|| {
        errors::grant_invalid("The provided value for the 'code' parameter is not valid.")
    })?;
    if !rec.client_id.eq_ignore_ascii_case(req.client_id) {
        return Err(errors::grant_invalid(
            "The authorization code was issued to a different client.",
        ));
    }
    if let Some(v) = req.form.get("code_verifier") {
        st.code_verifiers.push(v.clone());
    }
    if rec.redeemed
        || st
            .take_fault(req.facts, |f| *f == Fault::CodeRedeemed)
            .is_some()
    {
        return Err(errors::code_redeemed());
    }
    if rec.expires_at <= now() {
        return Err(errors::grant_expired());
    }
    if st
        .take_fault(req.facts, |f| *f == Fault::RedirectUriMismatch)
        .is_some()
    {
        return Err(errors::redirect_mismatch(&redirect_uri, req.client_id));
    }
    if redirect_uri != rec.request.redirect_uri {
        return Err(AadError::new(
            "invalid_grant",
            500112,
            format!("The reply address '{redirect_uri}' does not match the reply address '{}' provided when requesting Authorization code.", rec.request.redirect_uri),
        ));
    }
    authenticate(st, &app, rec.request.public_redirect, req)?;
    if let Some(challenge) = &rec.request.code_challenge {
        let verifier = req
            .form
            .get("code_verifier")
            .map(String::as_str)
            .unwrap_or("");
        let ok = match rec.request.code_challenge_method.as_deref() {
            Some("plain") => verifier == challenge,
            _ => {
                let d = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
                URL_SAFE_NO_PAD.encode(d.as_ref()) == *challenge
            }
        };
        if !ok {
            return Err(errors::pkce_mismatch());
        }
    }
    let (requested, strict) = match req.form.get("scope").filter(|s| !s.trim().is_empty()) {
        Some(s) => (scopes::parse(s, req.client_id, req.segment)?, true),
        None => (rec.scopes.clone(), false),
    };
    if let Some(c) = st.codes.get_mut(&code) {
        c.redeemed = true;
    }
    let grant = Delegation {
        client_id: app.client_id.clone(),
        upn: rec.upn.clone(),
        tid: rec.tid.clone(),
        grant_scopes: rec.scopes.clone(),
        public: rec.request.public_redirect,
        spa: rec.request.spa,
        amr: rec.amr.clone(),
        sid: rec.sid.clone(),
        nonce: rec.request.nonce.clone(),
    };
    issue_delegated(shared, st, &grant, &requested, strict)
}

fn refresh_grant(shared: &Shared, st: &mut St, req: &TokenRequest) -> Result<Issue, AadError> {
    let rt = req.param("refresh_token")?.to_string();
    let app = st
        .check_app(req.client_id, req.authority, req.segment)?
        .clone();
    let g = st
        .refresh_tokens
        .get(&rt)
        .cloned()
        .ok_or_else(|| errors::malformed("The refresh token is not valid."))?;
    st.stats.count_refresh(&g.client_id, &g.upn);
    if !g.client_id.eq_ignore_ascii_case(req.client_id) {
        return Err(errors::grant_invalid(
            "The refresh token was issued to a different client.",
        ));
    }
    let issued = fmt_time(g.issued_ms / 1000);
    if let Some(f) = st.take_fault(req.facts, |f| {
        matches!(
            f,
            Fault::RefreshTokenExpired
                | Fault::RefreshTokenRevoked
                | Fault::ConsentRequired
                | Fault::MfaRequired
                | Fault::ConditionalAccessBlocked
        )
    }) {
        return Err(match f {
            Fault::RefreshTokenExpired => errors::refresh_token_inactive(&issued, 90),
            Fault::RefreshTokenRevoked => errors::refresh_token_revoked(&issued, &fmt_time(now())),
            Fault::ConsentRequired => errors::consent_required(&app.client_id, &app.display_name),
            Fault::MfaRequired => errors::mfa_required(),
            _ => errors::conditional_access_blocked("invalid_grant"),
        });
    }
    authenticate(st, &app, g.public, req)?;
    let settings = st.config.tokens.clone();
    if let Some(from) = st.tokens_valid_from.get(&g.upn.to_ascii_lowercase()) {
        if g.issued_ms < *from {
            return Err(errors::refresh_token_revoked(
                &issued,
                &fmt_time(from / 1000),
            ));
        }
    }
    let t = now();
    if t - g.last_used > settings.refresh_token_inactivity_secs as i64 {
        return Err(errors::refresh_token_inactive(
            &issued,
            settings.refresh_token_inactivity_secs / 86400,
        ));
    }
    if g.spa && t - g.issued_ms / 1000 > 24 * 3600 {
        return Err(AadError::new(
            "invalid_grant",
            700084,
            format!("The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited lifetime of 1.00:00:00, which cannot be extended. It is now expired and a new sign in request must be sent by the SPA to the sign in page. The token was issued on {issued}."),
        ));
    }
    if let (Some(rotated), Some(grace)) = (g.rotated_at, settings.refresh_token_reuse_grace_secs) {
        if t > rotated + grace as i64 {
            return Err(errors::grant_expired());
        }
    }
    let superseded = g
        .successor
        .as_ref()
        .and_then(|s| st.refresh_tokens.get(s))
        .is_some_and(|next| next.rotated_at.is_some());
    if settings.refuse_superseded_refresh_tokens && superseded {
        return Err(errors::grant_expired());
    }
    if !st.user(&g.upn).is_some_and(|u| u.can_sign_in) {
        return Err(AadError::new(
            "invalid_grant",
            50057,
            "The user account is disabled.",
        ));
    }
    let requested = match req.form.get("scope").filter(|s| !s.trim().is_empty()) {
        Some(s) => scopes::parse(s, req.client_id, req.segment)?,
        None => g.grant_scopes_or_all(),
    };
    if let Some(old) = st.refresh_tokens.get_mut(&rt) {
        old.last_used = t;
        old.rotated_at.get_or_insert(t);
    }
    let d = Delegation {
        client_id: app.client_id.clone(),
        upn: g.upn.clone(),
        tid: g.tid.clone(),
        grant_scopes: g.scopes.clone(),
        public: g.public,
        spa: g.spa,
        amr: g.amr.clone(),
        sid: g.sid.clone(),
        nonce: None,
    };
    let issue = issue_delegated(shared, st, &d, &requested, false)?;
    if let Some(next) = issue.body.get("refresh_token").and_then(|v| v.as_str()) {
        if let Some(old) = st.refresh_tokens.get_mut(&rt) {
            old.successor = Some(next.to_string());
        }
    }
    Ok(issue)
}

impl RefreshGrant {
    fn grant_scopes_or_all(&self) -> Vec<Scope> {
        self.scopes.clone()
    }
}

fn device_grant(shared: &Shared, st: &mut St, req: &TokenRequest) -> Result<Issue, AadError> {
    let dc = req.param("device_code")?.to_string();
    let app = st
        .check_app(req.client_id, req.authority, req.segment)?
        .clone();
    let Some(g) = st.device_codes.get(&dc).cloned() else {
        return Err(errors::bad_verification_code());
    };
    if !g.client_id.eq_ignore_ascii_case(req.client_id) {
        return Err(errors::bad_verification_code());
    }
    if !app.allow_public_client_flows {
        return Err(errors::client_credentials_missing());
    }
    authenticate(st, &app, true, req)?;
    let t = now_ms();
    if let Some(dg) = st.device_codes.get_mut(&dc) {
        dg.last_poll_ms = Some(t);
    }
    if g.expires_at * 1000 <= t {
        return Err(errors::device_code_expired());
    }
    if let Some(last) = g.last_poll_ms {
        if t - last + 150 < (g.interval * 1000) as i64 {
            return Err(errors::slow_down(g.interval));
        }
    }
    match g.status {
        DeviceStatus::Pending => Err(errors::authorization_pending()),
        DeviceStatus::Declined => Err(errors::authorization_declined()),
        DeviceStatus::Redeemed => Err(AadError::new(
            "invalid_grant",
            54005,
            "The device code was already redeemed. Start a new device code flow.",
        )),
        DeviceStatus::Approved { upn, amr, sid } => {
            if st
                .take_fault(req.facts, |f| *f == Fault::UserDeclined)
                .is_some()
            {
                if let Some(dg) = st.device_codes.get_mut(&dc) {
                    dg.status = DeviceStatus::Declined;
                }
                return Err(errors::authorization_declined());
            }
            let tid = st.user(&upn).map(|u| u.tenant.clone()).unwrap_or_default();
            if let Some(dg) = st.device_codes.get_mut(&dc) {
                dg.status = DeviceStatus::Redeemed;
            }
            let d = Delegation {
                client_id: app.client_id.clone(),
                upn,
                tid,
                grant_scopes: g.scopes.clone(),
                public: true,
                spa: false,
                amr,
                sid,
                nonce: None,
            };
            issue_delegated(shared, st, &d, &g.scopes, false)
        }
    }
}

fn client_credentials(st: &mut St, req: &TokenRequest) -> Result<Issue, AadError> {
    let Authority::Tenant(tid) = req.authority.clone() else {
        return Err(errors::grant_needs_tenant());
    };
    let app = st
        .app(req.client_id)
        .cloned()
        .filter(|a| {
            a.home_tenant.eq_ignore_ascii_case(&tid)
                || st.tenant(&tid).is_some_and(|t| {
                    t.admin_consents
                        .iter()
                        .any(|g| g.client_id.eq_ignore_ascii_case(&a.client_id))
                })
        })
        .ok_or_else(|| {
            errors::app_not_found(
                req.client_id,
                &st.directory_name(req.authority, req.segment),
            )
        })?;
    authenticate(st, &app, false, req)?;
    let raw = req.param("scope")?;
    let parts: Vec<&str> = raw.split_whitespace().collect();
    if parts.len() != 1 || !parts[0].ends_with("/.default") {
        return Err(errors::client_credentials_scope(raw));
    }
    let parsed = scopes::parse(parts[0], req.client_id, req.segment)?;
    let Some(Scope::Resource {
        family, resource, ..
    }) = parsed.into_iter().next()
    else {
        return Err(errors::client_credentials_scope(raw));
    };
    let roles: Vec<String> = if family == scopes::EXCHANGE {
        app.app_roles_granted.clone()
    } else {
        app.graph_roles_granted.clone()
    };
    let settings = st.config.tokens.clone();
    let life = app
        .access_token_lifetime_secs
        .unwrap_or(settings.access_token_lifetime_secs);
    let t = now();
    let uti = random_token(22);
    let sp_oid = state::derived_guid(&[
        "sp",
        &tid.to_ascii_lowercase(),
        &app.client_id.to_ascii_lowercase(),
    ]);
    let mut claims = serde_json::json!({
        "aud": resource,
        "iss": format!("https://sts.windows.net/{tid}/"),
        "iat": t, "nbf": t, "exp": t + life as i64,
        "aio": "",
        "app_displayname": app.display_name,
        "appid": app.client_id,
        "appidacr": "1",
        "idp": format!("https://sts.windows.net/{tid}/"),
        "idtyp": "app",
        "oid": sp_oid,
        "rh": format!("1.A{}", random_token(60)),
        "sub": sp_oid,
        "tid": tid,
        "uti": uti,
        "ver": "1.0",
        "wids": ["0997a1d0-0d1d-4acb-b408-d5ca73121e90"],
        "xms_idrel": "7 28",
    });
    if !roles.is_empty() {
        claims["roles"] = roles.into();
    }
    st.access_tokens.insert(
        uti,
        state::AccessRecord {
            upn: None,
            revoked: false,
        },
    );
    Ok(Issue {
        body: serde_json::json!({
            "token_type": "Bearer",
            "expires_in": life,
            "ext_expires_in": life,
            "access_token": "",
        }),
        access: claims,
        access_size: settings.access_token_size,
        id: None,
    })
}

/// Who and what a delegated token is issued for.
pub(crate) struct Delegation {
    pub client_id: String,
    pub upn: String,
    pub tid: String,
    /// Scopes the user authorized (the code's, the device code's, the refresh token's).
    pub grant_scopes: Vec<Scope>,
    pub public: bool,
    pub spa: bool,
    pub amr: Vec<String>,
    pub sid: String,
    pub nonce: Option<String>,
}

/// Issue access token (+ refresh token with offline_access, + id_token with openid); the JWTs
/// are signed later, without the lock ([`Issue::sign`]).
pub(crate) fn issue_delegated(
    shared: &Shared,
    st: &mut St,
    d: &Delegation,
    requested: &[Scope],
    strict: bool,
) -> Result<Issue, AadError> {
    let app = st
        .app(&d.client_id)
        .cloned()
        .ok_or_else(|| errors::app_not_found(&d.client_id, "the tenant"))?;
    let user = st
        .user(&d.upn)
        .cloned()
        .ok_or_else(|| errors::grant_invalid("The user no longer exists."))?;
    let (family, resource) = scopes::token_resource(requested, strict)?;
    // Consent: everything named for this resource must be consented.
    let named: Vec<Scope> = requested
        .iter()
        .filter(|s| s.family() == Some(family) && !s.is_default())
        .cloned()
        .collect();
    if !st
        .missing_consent(&user.upn, &app.client_id, &named)
        .is_empty()
    {
        return Err(errors::consent_required(&app.client_id, &app.display_name));
    }
    // scp: every consented permission of the resource (Microsoft lists all consented ones).
    let catalog = scopes::catalog_scopes(family);
    let missing = st.missing_consent(&user.upn, &app.client_id, &catalog);
    let mut granted: Vec<Scope> = catalog
        .into_iter()
        .filter(|s| !missing.iter().any(|m| m.key() == s.key()))
        .collect();
    for n in &named {
        if !granted.iter().any(|g| g.key() == n.key()) {
            granted.push(n.clone());
        }
    }
    let oidc_requested: Vec<String> = requested
        .iter()
        .filter_map(|s| match s {
            Scope::Oidc(o) => Some(o.clone()),
            _ => None,
        })
        .collect();
    if granted.is_empty() && family == scopes::EXCHANGE {
        return Err(errors::consent_required(&app.client_id, &app.display_name));
    }
    let mut scp: Vec<String> = granted.iter().map(|s| s.name().to_string()).collect();
    if granted.is_empty() {
        scp = oidc_requested
            .iter()
            .filter(|s| *s != "offline_access")
            .cloned()
            .collect();
    }
    let settings = st.config.tokens.clone();
    let life = app
        .access_token_lifetime_secs
        .unwrap_or(settings.access_token_lifetime_secs);
    let t = now();
    let uti = random_token(22);
    let oid = st.oid(&user);
    let (given, family_name) = match user.display_name.split_once(' ') {
        Some((g, f)) => (g.to_string(), f.to_string()),
        None => (user.display_name.clone(), String::new()),
    };
    let sub = pairwise_sub(&oid, &app.client_id, &resource);
    let mut claims = serde_json::json!({
        "aud": resource,
        "iss": format!("https://sts.windows.net/{}/", d.tid),
        "iat": t, "nbf": t, "exp": t + life as i64,
        "acct": 0,
        "acr": "1",
        "aio": "",
        "amr": d.amr,
        "app_displayname": app.display_name,
        "appid": app.client_id,
        "appidacr": if d.public { "0" } else { "1" },
        "family_name": family_name,
        "given_name": given,
        "idtyp": "user",
        "ipaddr": "127.0.0.1",
        "name": user.display_name,
        "oid": oid,
        "puid": puid(&oid),
        "rh": format!("1.A{}", random_token(64)),
        "scp": scp.join(" "),
        "sid": d.sid,
        "sub": sub,
        "tid": d.tid,
        "uti": uti,
        "ver": "1.0",
        "xms_st": {"sub": pairwise_sub(&oid, &app.client_id, "st")},
        "xms_tcdt": 1600000000,
    });
    if user.personal {
        claims["unique_name"] = format!("live.com#{}", user.upn).into();
        claims["email"] = user.mailbox_address().into();
        claims["idp"] = "live.com".into();
        claims["altsecid"] = format!("1:live.com:{}", &puid(&oid)).into();
    } else {
        claims["upn"] = user.upn.clone().into();
        claims["unique_name"] = user.upn.clone().into();
        let mut wids = vec!["b79fbf4d-3ef9-4689-8143-76b194e85509"];
        if user.admin {
            wids.insert(0, "62e90394-69f5-4237-9190-012177145e10");
        }
        claims["wids"] = wids.into();
    }
    st.access_tokens.insert(
        uti,
        state::AccessRecord {
            upn: Some(user.upn.clone()),
            revoked: false,
        },
    );
    let mut scope_out: Vec<String> = granted.iter().map(Scope::full).collect();
    scope_out.extend(
        oidc_requested
            .iter()
            .filter(|s| *s != "offline_access")
            .cloned(),
    );
    let mut body = serde_json::json!({
        "token_type": "Bearer",
        "scope": scope_out.join(" "),
        "expires_in": life,
        "ext_expires_in": life,
        "access_token": "",
    });
    let has = |name: &str| {
        d.grant_scopes
            .iter()
            .any(|s| matches!(s, Scope::Oidc(o) if o == name))
    };
    if has("offline_access") {
        let rt = mint_refresh_token(&user.personal, settings.refresh_token_size);
        st.refresh_tokens.insert(
            rt.clone(),
            RefreshGrant {
                client_id: app.client_id.clone(),
                upn: user.upn.clone(),
                tid: d.tid.clone(),
                scopes: d.grant_scopes.clone(),
                public: d.public,
                spa: d.spa,
                amr: d.amr.clone(),
                sid: d.sid.clone(),
                issued_ms: now_ms(),
                last_used: t,
                rotated_at: None,
                successor: None,
            },
        );
        body["refresh_token"] = rt.into();
        if d.spa {
            body["refresh_token_expires_in"] = (24 * 3600).into();
        }
    }
    let wants_openid = requested
        .iter()
        .any(|s| matches!(s, Scope::Oidc(o) if o == "openid"));
    let mut id_token = None;
    if wants_openid && has("openid") {
        let profile = has("profile");
        let mut id = serde_json::json!({
            "aud": app.client_id,
            "iss": format!("{}/{}/v2.0", shared.base_url, d.tid),
            "iat": t, "nbf": t, "exp": t + settings.id_token_lifetime_secs as i64,
            "aio": random_token(120),
            "oid": oid,
            "rh": format!("1.A{}", random_token(64)),
            "sid": d.sid,
            "sub": pairwise_sub(&oid, &app.client_id, "id"),
            "tid": d.tid,
            "uti": random_token(22),
            "ver": "2.0",
        });
        if profile {
            id["name"] = user.display_name.clone().into();
            id["preferred_username"] = user.upn.clone().into();
        }
        if has("email") {
            id["email"] = user.mailbox_address().into();
        }
        if let Some(n) = &d.nonce {
            id["nonce"] = n.clone().into();
        }
        body["id_token"] = "".into();
        id_token = Some(id);
    }
    Ok(Issue {
        body,
        access: claims,
        access_size: settings.access_token_size,
        id: id_token,
    })
}

/// Sign `claims`, growing the `aio` claim until the token is about `target` characters long.
/// The length of a token is known before it is signed ([`SigningKey::signed_len`]), so the
/// padding is worked out first and the token signed once.
fn sign_padded(key: &SigningKey, claims: &mut serde_json::Value, target: usize) -> String {
    claims["aio"] = random_token(60).into();
    let mut payload = claims.to_string();
    for _ in 0..4 {
        let len = key.signed_len(payload.len());
        if target == 0 || len >= target {
            break;
        }
        let missing = target - len;
        let current = claims["aio"].as_str().map(str::len).unwrap_or(0);
        claims["aio"] = random_token(current + missing * 3 / 4).into();
        payload = claims.to_string();
    }
    key.sign_payload(&payload)
}

/// Microsoft-style opaque refresh token.
fn mint_refresh_token(personal: &bool, size: usize) -> String {
    let prefix = if *personal { "M.C5" } else { "1.AXoA" };
    format!(
        "{prefix}{}",
        random_token(size.saturating_sub(prefix.len()).max(32))
    )
}

/// Pairwise subject: stable per user and app.
fn pairwise_sub(oid: &str, client_id: &str, salt: &str) -> String {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{oid}|{}|{salt}", client_id.to_ascii_lowercase()).as_bytes(),
    );
    URL_SAFE_NO_PAD.encode(d.as_ref())
}

fn puid(oid: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, oid.as_bytes());
    d.as_ref()[..8].iter().map(|b| format!("{b:02X}")).collect()
}

/// `2026-11-23T10:01:02.0000000Z`-style time for AADSTS texts.
pub(crate) fn fmt_time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[month]/[day]/[year] [hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// Whether a redirect URI's platform makes the client public for the code redemption.
pub(crate) fn platform_is_public(p: Platform) -> bool {
    matches!(p, Platform::MobileDesktop | Platform::Spa)
}
