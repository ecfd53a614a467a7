//! `/{tenant}/oauth2/v2.0/authorize` and the sign-in pages behind it: account picker, username,
//! password, MFA, consent; the browser session cookie with its silent single sign-on; logout.
//! The device-code flow (device.rs) reuses the same steps through [`advance`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::config::{AppConfig, RedirectUri};
use super::errors::{self, AadError};
use super::faults::{ConnectionKill, Endpoint, Fault, RequestFacts};
use super::pages;
use super::scopes;
use super::state::{
    now, random_token, AuthCode, Authority, AuthorizeRequest, BrowserSession, DeviceStatus, Flow,
    Purpose, SessionAccount, Shared, State as St, Step,
};
use super::{cookie, form_map, set_session_cookie, transport_faults};

/// Response header naming the account a flow signed in (informational, for test harnesses).
pub const SIGNED_IN_HEADER: &str = "x-sandbox-signed-in";

/// An HTML error page (errors that must not be redirected: unknown app, bad redirect URI, ...).
pub(crate) fn error_page(e: &AadError, client_id: Option<&str>) -> Response {
    let mut details = vec![
        ("Request Id", uuid::Uuid::new_v4().to_string()),
        ("Correlation Id", uuid::Uuid::new_v4().to_string()),
        ("Timestamp", errors::timestamp_now()),
        ("Message", e.aadsts_text()),
    ];
    if let Some(c) = client_id {
        details.insert(0, ("App id", c.to_string()));
    }
    let status = if e.code == Some(50011) || e.code == Some(700016) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    pages::html(status, pages::error_page(&e.aadsts_text(), &details))
}

/// Whether `requested` matches a registration (loopback: any port; path case-sensitive; an
/// empty path equals `/`).
pub(crate) fn match_redirect<'a>(app: &'a AppConfig, requested: &str) -> Option<&'a RedirectUri> {
    let req = url::Url::parse(requested).ok()?;
    app.redirect_uris.iter().find(|r| {
        let Ok(reg) = url::Url::parse(&r.uri) else {
            return false;
        };
        let loopback = reg.scheme() == "http"
            && matches!(reg.host_str(), Some("localhost") | Some("127.0.0.1"));
        if loopback {
            req.scheme() == "http"
                && req.host_str() == reg.host_str()
                && req.path() == reg.path()
                && req.query() == reg.query()
                && req.fragment().is_none()
        } else {
            req == reg
        }
    })
}

fn params_of(
    method: &Method,
    query: Option<String>,
    body: &Bytes,
) -> std::collections::HashMap<String, String> {
    if method == Method::POST {
        form_map(body)
    } else {
        form_map(query.unwrap_or_default().as_bytes())
    }
}

/// `GET|POST /{tenant}/oauth2/v2.0/authorize`.
pub async fn authorize(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    kill: Option<Extension<ConnectionKill>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let p = params_of(&method, query, &body);
    let get = |k: &str| p.get(k).filter(|v| !v.is_empty()).cloned();
    let client_id = get("client_id");
    let facts = RequestFacts {
        endpoint: Some(Endpoint::Authorize),
        client_id: client_id.clone(),
        user: get("login_hint"),
        grant_type: None,
    };
    shared.lock().stats.authorize_requests += 1;
    if let Some(r) = transport_faults(&shared, &facts, kill.as_ref().map(|k| &k.0), true).await {
        return r;
    }
    let mut st = shared.lock();
    st.sweep();
    let Some(authority) = st.authority(&tenant) else {
        return error_page(&errors::tenant_not_found(&tenant), None);
    };
    let Some(client_id) = client_id else {
        return error_page(&errors::missing_parameter("client_id"), None);
    };
    if st
        .take_fault(&facts, |f| *f == Fault::AppNotFound)
        .is_some()
    {
        let dir = st.directory_name(&authority, &tenant);
        return error_page(&errors::app_not_found(&client_id, &dir), Some(&client_id));
    }
    let app = match st.check_app(&client_id, &authority, &tenant) {
        Ok(a) => a.clone(),
        Err(e) => return error_page(&e, Some(&client_id)),
    };
    let Some(redirect_uri) = get("redirect_uri") else {
        return error_page(&errors::missing_parameter("redirect_uri"), Some(&client_id));
    };
    let registered = match_redirect(&app, &redirect_uri).cloned();
    let faulted = st
        .take_fault(&facts, |f| *f == Fault::RedirectUriMismatch)
        .is_some();
    let Some(registered) = registered.filter(|_| !faulted) else {
        return error_page(
            &errors::redirect_mismatch(&redirect_uri, &client_id),
            Some(&client_id),
        );
    };
    let response_mode = get("response_mode")
        .unwrap_or_else(|| "query".into())
        .to_ascii_lowercase();
    let mut req = AuthorizeRequest {
        redirect_uri: redirect_uri.clone(),
        state: p.get("state").cloned(),
        nonce: get("nonce"),
        response_mode: response_mode.clone(),
        code_challenge: get("code_challenge"),
        code_challenge_method: get("code_challenge_method"),
        public_redirect: super::token::platform_is_public(registered.platform),
        spa: registered.platform == super::config::Platform::Spa,
    };
    // From here on, errors go back to the app.
    if !matches!(response_mode.as_str(), "query" | "fragment" | "form_post") {
        req.response_mode = "query".into();
        let e = AadError::new(
            "invalid_request",
            900144,
            format!(
                "The value '{response_mode}' of the 'response_mode' parameter is not supported."
            ),
        );
        return redirect_error(&shared, &req, &e, None, None);
    }
    let response_type = get("response_type").unwrap_or_default();
    if response_type != "code" {
        let e = match response_type.as_str() {
            "" => errors::missing_parameter("response_type"),
            "token" | "id_token token" => AadError::new(
                "unsupported_response_type",
                700051,
                format!("response_type '{response_type}' is not enabled for the application."),
            ),
            _ => AadError::new(
                "unsupported_response_type",
                700054,
                format!("response_type '{response_type}' is not enabled for the application."),
            ),
        };
        return redirect_error(&shared, &req, &e, None, None);
    }
    let Some(raw_scope) = get("scope") else {
        return redirect_error(
            &shared,
            &req,
            &errors::missing_parameter("scope"),
            None,
            None,
        );
    };
    let scopes = match scopes::parse(&raw_scope, &client_id, &tenant) {
        Ok(s) => s,
        Err(e) => return redirect_error(&shared, &req, &e, None, None),
    };
    if let Some(m) = &req.code_challenge_method {
        if m != "S256" && m != "plain" {
            let e = AadError::new(
                "invalid_request",
                501491,
                format!("The code_challenge_method '{m}' is not supported. Use 'S256' or 'plain'."),
            );
            return redirect_error(&shared, &req, &e, None, None);
        }
        if req.code_challenge.is_none() {
            return redirect_error(
                &shared,
                &req,
                &errors::missing_parameter("code_challenge"),
                None,
                None,
            );
        }
    }
    if let Some(c) = &req.code_challenge {
        if c.len() < 43 || c.len() > 128 {
            let e = AadError::new(
                "invalid_request",
                501491,
                "Invalid size of Code_Challenge parameter.",
            );
            return redirect_error(&shared, &req, &e, None, None);
        }
    } else if req.spa {
        let e = AadError::new("invalid_request", 9002325, "Proof Key for Code Exchange is required for cross-origin authorization code redemption.");
        return redirect_error(&shared, &req, &e, None, None);
    }

    let prompt = get("prompt").map(|p| p.to_ascii_lowercase());
    let login_hint = get("login_hint");
    let session_id =
        cookie(&headers, super::SESSION_COOKIE).filter(|s| st.sessions.contains_key(s));
    let eligible = eligible_accounts(&st, session_id.as_deref(), &app, &authority);
    let mfa_forced = st
        .take_fault(&facts, |f| *f == Fault::MfaRequired)
        .is_some();
    let mut flow = Flow {
        id: random_token(48),
        purpose: Purpose::Authorize(req.clone()),
        segment: tenant.clone(),
        authority: authority.clone(),
        client_id: app.client_id.clone(),
        scopes,
        step: Step::Username,
        upn: None,
        authenticated: false,
        mfa_done: false,
        mfa_forced,
        device_confirmed: false,
        force_consent: prompt.as_deref() == Some("consent"),
        login_hint: login_hint.clone(),
        inline_error: None,
        consent_done: false,
        session_id: session_id.clone(),
        created: now(),
    };
    let hinted = login_hint.as_ref().and_then(|h| {
        eligible
            .iter()
            .find(|a| a.upn.eq_ignore_ascii_case(h))
            .cloned()
    });
    let sso = |flow: &mut Flow, a: &SessionAccount| {
        flow.upn = Some(a.upn.clone());
        flow.authenticated = true;
        flow.mfa_done = a.mfa_done;
    };
    match prompt.as_deref() {
        Some("none") => {
            let account = hinted.or_else(|| {
                if login_hint.is_none() && eligible.len() == 1 {
                    eligible.first().cloned()
                } else {
                    None
                }
            });
            let Some(a) = account else {
                let e = if eligible.len() > 1 {
                    AadError::new("interaction_required", 16000, "Either multiple user identities are available for the current request or selected account is not supported for the scenario.")
                } else {
                    AadError::new("login_required", 50058, "A silent sign-in request was sent but no user is signed in. The cookies used to represent the user's session were not sent in the request to Azure AD.")
                };
                return redirect_error(&shared, &req, &e, None, None);
            };
            sso(&mut flow, &a);
            let user = st.user(&a.upn).cloned();
            if user
                .as_ref()
                .is_some_and(|u| (u.mfa || mfa_forced) && !a.mfa_done)
            {
                let e = AadError::new("interaction_required", 50076, "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access the resource.");
                return redirect_error(&shared, &req, &e, None, None);
            }
            if !st
                .missing_consent(&a.upn, &app.client_id, &flow.scopes)
                .is_empty()
            {
                let e = AadError::new("consent_required", 65001, format!("The user or administrator has not consented to use the application with ID '{}' named '{}'. Send an interactive authorization request for this user and resource.", app.client_id, app.display_name));
                return redirect_error(&shared, &req, &e, None, None);
            }
        }
        Some("login") => {
            if let Some(h) = &login_hint {
                if let Some(u) = st.user(h) {
                    flow.upn = Some(u.upn.clone());
                }
            }
        }
        Some("select_account") => {
            if !eligible.is_empty() {
                flow.step = Step::Picker;
            }
        }
        _ => {
            if let Some(a) = hinted {
                sso(&mut flow, &a);
            } else if let Some(h) = &login_hint {
                if let Some(u) = st.user(h) {
                    if st.check_user(u, &app, &authority).is_ok() {
                        flow.upn = Some(u.upn.clone());
                    }
                }
            } else if eligible.len() == 1 {
                sso(&mut flow, &eligible[0]);
            } else if eligible.len() > 1 {
                flow.step = Step::Picker;
            }
        }
    }
    let id = flow.id.clone();
    st.flows.insert(id.clone(), flow);
    advance(&shared, &mut st, &id)
}

/// Accounts of the browser session that may sign in to `app` through `authority`.
fn eligible_accounts(
    st: &St,
    session: Option<&str>,
    app: &AppConfig,
    authority: &Authority,
) -> Vec<SessionAccount> {
    let Some(s) = session.and_then(|s| st.sessions.get(s)) else {
        return vec![];
    };
    s.accounts
        .iter()
        .filter(|a| {
            st.user(&a.upn)
                .is_some_and(|u| u.can_sign_in && st.check_user(u, app, authority).is_ok())
        })
        .cloned()
        .collect()
}

/// Decide and render the next step of a sign-in transaction.
pub(crate) fn advance(shared: &Shared, st: &mut St, id: &str) -> Response {
    let Some(flow) = st.flows.get(id).cloned() else {
        return flow_expired();
    };
    let Some(app) = st.app(&flow.client_id).cloned() else {
        return error_page(&errors::app_not_found(&flow.client_id, &flow.segment), None);
    };
    let seg = flow.segment.clone();
    let render = |st: &mut St, step: Step, page: String| -> Response {
        st.stats.page_views += 1;
        if let Some(f) = st.flows.get_mut(id) {
            f.step = step;
            f.inline_error = None;
        }
        let mut r = pages::html(StatusCode::OK, page);
        if let Some(s) = &flow.session_id {
            set_session_cookie(&mut r, Some(s), shared.tls);
        }
        r
    };
    let err = flow.inline_error.as_deref();
    if flow.step == Step::Picker && flow.upn.is_none() {
        let accounts: Vec<(String, String)> = flow
            .session_id
            .as_ref()
            .and_then(|s| st.sessions.get(s))
            .map(|s| {
                s.accounts
                    .iter()
                    .map(|a| {
                        let name = st
                            .user(&a.upn)
                            .map(|u| u.display_name.clone())
                            .unwrap_or_default();
                        (a.upn.clone(), name)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let page = pages::picker(&seg, id, &app.display_name, &accounts);
        return render(st, Step::Picker, page);
    }
    let Some(upn) = flow.upn.clone() else {
        let page = pages::username(&seg, id, &app.display_name, flow.login_hint.as_deref(), err);
        return render(st, Step::Username, page);
    };
    let Some(user) = st.user(&upn).cloned() else {
        return flow_expired();
    };
    if !flow.authenticated {
        let page = pages::password(&seg, id, &upn, err);
        return render(st, Step::Password, page);
    }
    if (user.mfa || flow.mfa_forced) && !flow.mfa_done {
        let page = pages::mfa(&seg, id, &upn, err);
        return render(st, Step::Mfa, page);
    }
    // Signed in: remember the account in the browser session.
    let session_id = remember(st, id, &upn, flow.mfa_done);
    let is_device = matches!(flow.purpose, Purpose::Device { .. });
    if is_device && !flow.device_confirmed {
        let page = pages::device_confirm(&seg, id, &app.display_name, &upn);
        return with_cookie(
            render(st, Step::DeviceConfirm, page),
            &session_id,
            shared.tls,
        );
    }
    let facts = RequestFacts {
        endpoint: Some(if is_device {
            Endpoint::Devicecode
        } else {
            Endpoint::Authorize
        }),
        client_id: Some(app.client_id.clone()),
        user: Some(upn.clone()),
        grant_type: None,
    };
    if !is_device
        && st
            .take_fault(&facts, |f| *f == Fault::ConditionalAccessBlocked)
            .is_some()
    {
        return finish_error(
            shared,
            st,
            id,
            &errors::conditional_access_blocked("access_denied"),
            None,
        );
    }
    if flow.step == Step::AdminApproval
        || st
            .take_fault(&facts, |f| *f == Fault::ConsentRequired)
            .is_some()
    {
        let page = pages::admin_approval(&seg, id, &app.display_name, &upn);
        return with_cookie(
            render(st, Step::AdminApproval, page),
            &session_id,
            shared.tls,
        );
    }
    let missing = if flow.force_consent && !flow.consent_done {
        flow.scopes.clone()
    } else {
        st.missing_consent(&upn, &app.client_id, &flow.scopes)
    };
    if !missing.is_empty() {
        let users_can_consent = st.tenant(&user.tenant).is_none_or(|t| t.users_can_consent);
        // Permissions that need an administrator's consent cannot be consented to by a user,
        // whatever the tenant allows.
        let admin_only = missing.iter().any(|s| s.admin_only());
        if !user.admin && !user.personal && (!users_can_consent || admin_only) {
            let page = pages::admin_approval(&seg, id, &app.display_name, &upn);
            return with_cookie(
                render(st, Step::AdminApproval, page),
                &session_id,
                shared.tls,
            );
        }
        let list: Vec<String> = flow.scopes.iter().map(|s| s.describe()).collect();
        let page = pages::consent(&seg, id, &app.display_name, &upn, &list, user.admin);
        return with_cookie(render(st, Step::Consent, page), &session_id, shared.tls);
    }
    if !is_device
        && st
            .take_fault(&facts, |f| *f == Fault::UserDeclined)
            .is_some()
    {
        return finish_error(shared, st, id, &declined(), Some("cancel"));
    }
    let mut r = finish_success(shared, st, id, &user.upn);
    set_session_cookie(&mut r, Some(&session_id), shared.tls);
    r
}

fn with_cookie(mut r: Response, session: &str, tls: bool) -> Response {
    set_session_cookie(&mut r, Some(session), tls);
    r
}

/// Add the account to the flow's browser session (creating one); returns the session id.
fn remember(st: &mut St, id: &str, upn: &str, mfa_done: bool) -> String {
    let existing = st
        .flows
        .get(id)
        .and_then(|f| f.session_id.clone())
        .filter(|s| st.sessions.contains_key(s));
    let sid = existing.unwrap_or_else(|| random_token(64));
    let session = st
        .sessions
        .entry(sid.clone())
        .or_insert_with(|| BrowserSession {
            accounts: vec![],
            sid: uuid::Uuid::new_v4().to_string(),
        });
    match session
        .accounts
        .iter_mut()
        .find(|a| a.upn.eq_ignore_ascii_case(upn))
    {
        Some(a) => a.mfa_done |= mfa_done,
        None => session.accounts.push(SessionAccount {
            upn: upn.to_string(),
            mfa_done,
        }),
    }
    if let Some(f) = st.flows.get_mut(id) {
        f.session_id = Some(sid.clone());
    }
    sid
}

fn declined() -> AadError {
    AadError::new(
        "access_denied",
        65004,
        "User declined to consent to access the app.",
    )
}

fn flow_expired() -> Response {
    error_page(
        &AadError::new("invalid_request", 50089, "Authentication failed due to flow token expired. Start the sign-in again from the application."),
        None,
    )
}

/// Issue the code (authorize) or approve the device code, and end the transaction.
fn finish_success(shared: &Shared, st: &mut St, id: &str, upn: &str) -> Response {
    let Some(flow) = st.flows.remove(id) else {
        return flow_expired();
    };
    let user = st.user(upn).cloned();
    let personal = user.as_ref().is_some_and(|u| u.personal);
    let tid = if personal {
        st.consumer_tenant_id()
    } else {
        user.as_ref().map(|u| u.tenant.clone()).unwrap_or_default()
    };
    let sid = flow
        .session_id
        .as_ref()
        .and_then(|s| st.sessions.get(s))
        .map(|s| s.sid.clone())
        .unwrap_or_default();
    let mut amr = vec!["pwd".to_string()];
    if flow.mfa_done {
        amr.push("mfa".into());
    }
    let app_name = st
        .app(&flow.client_id)
        .map(|a| a.display_name.clone())
        .unwrap_or_default();
    let mut r = match flow.purpose {
        Purpose::Authorize(req) => {
            let prefix = if personal { "M.C5" } else { "1.AXoA" };
            let code = format!("{prefix}{}", random_token(760));
            let lifetime = st.config.tokens.code_lifetime_secs as i64;
            st.codes.insert(
                code.clone(),
                AuthCode {
                    client_id: flow.client_id.clone(),
                    upn: upn.to_string(),
                    tid,
                    scopes: flow.scopes.clone(),
                    request: req.clone(),
                    amr,
                    sid: sid.clone(),
                    expires_at: now() + lifetime,
                    redeemed: false,
                },
            );
            let mut params = vec![("code".to_string(), code)];
            if let Some(s) = &req.state {
                params.push(("state".into(), s.clone()));
            }
            params.push(("session_state".into(), sid));
            respond(&req, params)
        }
        Purpose::Device { device_code } => {
            if let Some(g) = st.device_codes.get_mut(&device_code) {
                g.status = DeviceStatus::Approved {
                    upn: upn.to_string(),
                    amr,
                    sid,
                };
            }
            st.stats.page_views += 1;
            pages::html(StatusCode::OK, pages::device_done(&app_name))
        }
    };
    if let Ok(v) = HeaderValue::from_str(upn) {
        r.headers_mut().insert(SIGNED_IN_HEADER, v);
    }
    let _ = shared;
    r
}

/// End the transaction with an error (redirect for authorize, a page for the device flow).
pub(crate) fn finish_error(
    shared: &Shared,
    st: &mut St,
    id: &str,
    e: &AadError,
    subcode: Option<&str>,
) -> Response {
    let Some(flow) = st.flows.remove(id) else {
        return flow_expired();
    };
    match flow.purpose {
        Purpose::Authorize(req) => {
            redirect_error(shared, &req, e, subcode, flow.session_id.as_deref())
        }
        Purpose::Device { device_code } => {
            if let Some(g) = st.device_codes.get_mut(&device_code) {
                g.status = DeviceStatus::Declined;
            }
            let app = st
                .app(&flow.client_id)
                .map(|a| a.display_name.clone())
                .unwrap_or_default();
            st.stats.page_views += 1;
            pages::html(StatusCode::OK, pages::device_declined(&app))
        }
    }
}

/// Redirect an error to the app (`error`, `error_description`, `error_uri`, `state`).
fn redirect_error(
    shared: &Shared,
    req: &AuthorizeRequest,
    e: &AadError,
    subcode: Option<&str>,
    session: Option<&str>,
) -> Response {
    let json = e.to_json(&shared.base_url);
    let description = format!(
        "{}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {}",
        e.aadsts_text(),
        json["trace_id"].as_str().unwrap_or(""),
        json["correlation_id"].as_str().unwrap_or(""),
        json["timestamp"].as_str().unwrap_or("")
    );
    let mut params = vec![("error".to_string(), e.error.to_string())];
    if let Some(s) = subcode {
        params.push(("error_subcode".into(), s.into()));
    }
    params.push(("error_description".into(), description));
    if let Some(c) = e.code {
        params.push((
            "error_uri".into(),
            format!("{}/error?code={c}", shared.base_url),
        ));
    }
    if let Some(s) = &req.state {
        params.push(("state".into(), s.clone()));
    }
    let mut r = respond(req, params);
    if let Some(s) = session {
        set_session_cookie(&mut r, Some(s), shared.tls);
    }
    r
}

/// Deliver parameters to the redirect URI per `response_mode`.
fn respond(req: &AuthorizeRequest, params: Vec<(String, String)>) -> Response {
    if req.response_mode == "form_post" {
        return pages::html(StatusCode::OK, pages::form_post(&req.redirect_uri, &params));
    }
    let Ok(mut url) = url::Url::parse(&req.redirect_uri) else {
        return error_page(&errors::redirect_mismatch(&req.redirect_uri, ""), None);
    };
    if req.response_mode == "fragment" {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        url.set_fragment(Some(&encoded));
    } else {
        url.query_pairs_mut().extend_pairs(&params);
    }
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(url.as_str()) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    r
}

fn flow_of(st: &St, form: &std::collections::HashMap<String, String>) -> Option<String> {
    form.get("ctx")
        .filter(|c| st.flows.contains_key(*c))
        .cloned()
}

/// `POST /{tenant}/login`: account picker, username and password.
pub async fn login(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let form = form_map(&body);
    let mut st = shared.lock();
    let Some(id) = flow_of(&st, &form) else {
        return flow_expired();
    };
    let flow = st.flows.get(&id).cloned().expect("checked above");
    let Some(app) = st.app(&flow.client_id).cloned() else {
        return flow_expired();
    };
    match flow.step {
        Step::Picker => {
            let choice = form.get("account").cloned().unwrap_or_default();
            let account = flow
                .session_id
                .as_ref()
                .and_then(|s| st.sessions.get(s))
                .and_then(|s| {
                    s.accounts
                        .iter()
                        .find(|a| a.upn.eq_ignore_ascii_case(&choice))
                        .cloned()
                });
            let f = st.flows.get_mut(&id).expect("exists");
            f.step = Step::Username;
            if let Some(a) = account {
                f.upn = Some(a.upn.clone());
                f.authenticated = true;
                f.mfa_done = a.mfa_done;
                let user = st.user(&a.upn).cloned();
                if let Some(u) = user {
                    if let Err(e) = st.check_user(&u, &app, &flow.authority) {
                        st.flows.remove(&id);
                        return error_page(&e, Some(&app.client_id));
                    }
                }
            }
        }
        Step::Username => {
            let name = form
                .get("loginfmt")
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            match st.user(&name).cloned() {
                None => {
                    let f = st.flows.get_mut(&id).expect("exists");
                    f.login_hint = Some(name);
                    f.inline_error = Some(if matches!(flow.authority, Authority::Consumers) {
                        "That Microsoft account doesn't exist. Enter a different account or get a new one.".into()
                    } else {
                        "This username may be incorrect. Make sure you typed it correctly. Otherwise, contact your admin.".into()
                    });
                }
                Some(u) => {
                    if let Err(e) = st.check_user(&u, &app, &flow.authority) {
                        st.flows.remove(&id);
                        return error_page(&e, Some(&app.client_id));
                    }
                    let f = st.flows.get_mut(&id).expect("exists");
                    f.upn = Some(u.upn.clone());
                    f.authenticated = false;
                    f.mfa_done = false;
                }
            }
        }
        Step::Password => {
            let upn = flow.upn.clone().unwrap_or_default();
            let user = st.user(&upn).cloned();
            let given = form.get("passwd").cloned().unwrap_or_default();
            match user {
                Some(u) if !u.can_sign_in => {
                    st.flows.remove(&id);
                    let e = AadError::new("invalid_grant", 50057, "The user account is disabled. The user object in Active Directory backing this account has been disabled. An admin can re-enable this account through PowerShell.");
                    return error_page(&e, Some(&app.client_id));
                }
                Some(u) if u.password == given => {
                    let f = st.flows.get_mut(&id).expect("exists");
                    f.authenticated = true;
                }
                _ => {
                    let f = st.flows.get_mut(&id).expect("exists");
                    f.inline_error = Some("Your account or password is incorrect. If you don't remember your password, reset it now.".into());
                }
            }
        }
        _ => {}
    }
    advance(&shared, &mut st, &id)
}

/// `POST /{tenant}/SAS/ProcessAuth`: the MFA code.
pub async fn mfa(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let form = form_map(&body);
    let mut st = shared.lock();
    let Some(id) = flow_of(&st, &form) else {
        return flow_expired();
    };
    let flow = st.flows.get(&id).cloned().expect("checked above");
    if flow.step == Step::Mfa {
        let expected = flow
            .upn
            .as_deref()
            .and_then(|u| st.user(u))
            .map(|u| u.mfa_code.clone());
        let given = form
            .get("otc")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let f = st.flows.get_mut(&id).expect("exists");
        if expected.is_some_and(|c| c == given) {
            f.mfa_done = true;
        } else {
            f.inline_error =
                Some("You didn't enter the expected verification code. Please try again.".into());
        }
    }
    advance(&shared, &mut st, &id)
}

/// `POST /{tenant}/Consent/Set`: Accept / Cancel.
pub async fn consent(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let form = form_map(&body);
    let mut st = shared.lock();
    let Some(id) = flow_of(&st, &form) else {
        return flow_expired();
    };
    let flow = st.flows.get(&id).cloned().expect("checked above");
    let accept = form.get("consent").map(String::as_str) == Some("accept");
    match flow.step {
        Step::Consent if accept => {
            let upn = flow.upn.clone().unwrap_or_default();
            let admin = st.user(&upn).is_some_and(|u| u.admin);
            let for_org = admin && form.get("consent_for_org").map(String::as_str) == Some("true");
            st.grant_consent(&upn, &flow.client_id, &flow.scopes, for_org);
            if let Some(f) = st.flows.get_mut(&id) {
                f.consent_done = true;
            }
            advance(&shared, &mut st, &id)
        }
        Step::Consent | Step::AdminApproval => {
            finish_error(&shared, &mut st, &id, &declined(), Some("cancel"))
        }
        _ => advance(&shared, &mut st, &id),
    }
}

/// `GET|POST /{tenant}/oauth2/v2.0/logout`: end the browser session.
pub async fn logout(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let p = params_of(&method, query, &body);
    let mut st = shared.lock();
    if let Some(s) = cookie(&headers, super::SESSION_COOKIE) {
        st.sessions.remove(&s);
    }
    let target = p.get("post_logout_redirect_uri").filter(|u| {
        let apps: Vec<&AppConfig> = match p.get("client_id") {
            Some(c) => st.app(c).into_iter().collect(),
            None => st.config.apps.iter().collect(),
        };
        apps.iter().any(|a| match_redirect(a, u).is_some())
    });
    let mut r = match target {
        Some(u) => {
            let mut url = url::Url::parse(u).expect("matched a registration, so it parses");
            if let Some(s) = p.get("state") {
                url.query_pairs_mut().append_pair("state", s);
            }
            let mut r = StatusCode::FOUND.into_response();
            if let Ok(v) = HeaderValue::from_str(url.as_str()) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        None => pages::html(StatusCode::OK, pages::signed_out()),
    };
    set_session_cookie(&mut r, None, shared.tls);
    r
}
