//! Microsoft Graph v1.0's directory subset a tenant setup uses (`/organization`,
//! `/applications`, `/servicePrincipals`, `/oauth2PermissionGrants`, app role assignments), on
//! the emulator's real tenant state: an application created here is an [`AppConfig`] the
//! sign-in uses at once; a delegated permission grant *is* the consent the sign-in checks
//! (`TenantConfig::admin_consents` for `AllPrincipals`, `UserConfig::consented` for
//! `Principal`), so consent given on the consent page is listed here and deleting a grant
//! takes the consent away; an app role assignment is `AppConfig::app_roles_granted` (Exchange
//! Online) or `graph_roles_granted` (Graph); `addPassword` adds a [`ClientSecret`].
//!
//! Writes act on the caller's tenant (the token's `tid`) only. Delegated callers need the
//! permission in `scp` and must be a tenant administrator (`UserConfig::admin`); otherwise 403
//! `Authorization_RequestDenied`, as Graph answers.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::auth::Principal;
use super::errors::{self, GraphError, RequestIds};
use super::GRAPH_APP_ID;
use crate::emulator::config::{
    AppConfig, ClientSecret, ConsentGrant, Platform, RedirectUri, RequiredResourceAccess,
    SignInAudience,
};
use crate::emulator::scopes::{self, Scope, EXCHANGE, GRAPH, OIDC};
use crate::emulator::state::{derived_guid, now, random_token, State as St};

/// Office 365 Exchange Online's application id.
pub const EXCHANGE_APP_ID: &str = "00000002-0000-0ff1-ce00-000000000000";
/// The tenant Microsoft's first-party applications belong to (`appOwnerOrganizationId`).
const MICROSOFT_SERVICES_TENANT: &str = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";

/// Permission ids Microsoft publishes (the Graph permissions reference, the Exchange Online
/// OAuth articles), as `(resource app id, "Scope" | "Role", value, id)`. A permission not listed
/// gets a stable id derived from its resource, kind and value ([`permission_id`]); clients look
/// ids up by value on the service principals, so nothing depends on them being Microsoft's.
#[rustfmt::skip]
const KNOWN_IDS: &[(&str, &str, &str, &str)] = &[
    (GRAPH_APP_ID, "Scope", "openid", "37f7f235-527c-4136-accd-4a02d197296e"),
    (GRAPH_APP_ID, "Scope", "profile", "14dad69e-099b-42c9-810b-d002981feec1"),
    (GRAPH_APP_ID, "Scope", "email", "64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0"),
    (GRAPH_APP_ID, "Scope", "offline_access", "7427e0e9-2fba-42fe-b0c0-848c9e6a8182"),
    (GRAPH_APP_ID, "Scope", "User.Read", "e1fe6dd8-ba31-4d61-89e7-88639da4683d"),
    (GRAPH_APP_ID, "Scope", "Mail.Read", "570282fd-fa5c-430d-a7fd-fc8dc98a9dca"),
    (GRAPH_APP_ID, "Scope", "Mail.ReadWrite", "024d486e-b451-40bb-833d-3e66d98c5c73"),
    (GRAPH_APP_ID, "Scope", "Mail.Send", "e383f46e-2787-4529-855e-0e479a3ffac0"),
    (GRAPH_APP_ID, "Scope", "IMAP.AccessAsUser.All", "652390e4-393a-48de-9484-05f9b1212954"),
    (GRAPH_APP_ID, "Scope", "SMTP.Send", "258f6531-6087-4cc4-bb90-092c5fb3ed3f"),
    (GRAPH_APP_ID, "Scope", "Directory.Read.All", "06da0dbc-49e2-44d2-8312-53f166ab848a"),
    (GRAPH_APP_ID, "Scope", "Application.Read.All", "c79f8feb-a9db-4090-85f9-90d820caa0eb"),
    (GRAPH_APP_ID, "Scope", "Application.ReadWrite.All", "bdfbf15f-ee85-4955-8675-146e8e5296b5"),
    (GRAPH_APP_ID, "Scope", "DelegatedPermissionGrant.ReadWrite.All", "41ce6ca6-6826-4807-84f1-1c82854f7ee5"),
    (GRAPH_APP_ID, "Scope", "AppRoleAssignment.ReadWrite.All", "84bccea3-f856-4a8a-967b-dbe0a3d53a64"),
    (GRAPH_APP_ID, "Role", "Mail.Send", "b633e1c5-b582-4048-a93e-9f11b44c7e96"),
    (GRAPH_APP_ID, "Role", "Mail.ReadWrite", "e2a3a72e-5f79-4c64-b1b1-878b674786c9"),
    (GRAPH_APP_ID, "Role", "Mail.Read", "810c84a8-4a9e-49e6-bf7d-12d183f40d01"),
    (EXCHANGE_APP_ID, "Scope", "EWS.AccessAsUser.All", "3b5f3d61-589b-4a3c-a359-5dd4b5ee5bd5"),
    (EXCHANGE_APP_ID, "Role", "IMAP.AccessAsApp", "5e5addcd-3e8d-4e90-baf5-964efab2b20a"),
    (EXCHANGE_APP_ID, "Role", "POP.AccessAsApp", "cb842b43-da6e-4506-86fe-bb12199c656d"),
    (EXCHANGE_APP_ID, "Role", "SMTP.SendAsApp", "7146a1f0-8703-45b3-9eae-527a64c00995"),
    (EXCHANGE_APP_ID, "Role", "full_access_as_app", "dc890d15-9560-4a4c-9b7f-a736ec74ec40"),
];

/// Application permissions (app roles) of Exchange Online and Graph the emulator knows.
const EXCHANGE_ROLES: &[&str] = &[
    "IMAP.AccessAsApp",
    "POP.AccessAsApp",
    "SMTP.SendAsApp",
    "full_access_as_app",
];
const GRAPH_ROLES: &[&str] = &["Mail.Send", "Mail.ReadWrite", "Mail.Read"];

/// The id of a permission: Microsoft's where [`KNOWN_IDS`] has it, else derived (stable).
pub(crate) fn permission_id(resource_app: &str, kind: &str, value: &str) -> String {
    KNOWN_IDS
        .iter()
        .find(|(r, k, v, _)| *r == resource_app && *k == kind && v.eq_ignore_ascii_case(value))
        .map(|(.., id)| id.to_string())
        .unwrap_or_else(|| derived_guid(&["permission", resource_app, kind, value]))
}

/// The first-party resources: (app id, display name, canonical resource of the scopes).
const RESOURCES: &[(&str, &str, &str)] = &[
    (EXCHANGE_APP_ID, "Office 365 Exchange Online", EXCHANGE),
    (GRAPH_APP_ID, "Microsoft Graph", GRAPH),
];

/// Delegated permission values of a first-party resource.
fn scope_values(resource_app: &str) -> Vec<&'static str> {
    if resource_app == EXCHANGE_APP_ID {
        scopes::catalog(EXCHANGE).to_vec()
    } else {
        let mut v: Vec<&str> = OIDC.to_vec();
        v.extend(scopes::catalog(GRAPH));
        v
    }
}

fn role_values(resource_app: &str) -> &'static [&'static str] {
    if resource_app == EXCHANGE_APP_ID {
        EXCHANGE_ROLES
    } else {
        GRAPH_ROLES
    }
}

/// A service principal's object id in a tenant (the `oid` of the app's app-only tokens too).
pub(crate) fn sp_id(tenant: &str, app_id: &str) -> String {
    derived_guid(&[
        "sp",
        &tenant.to_ascii_lowercase(),
        &app_id.to_ascii_lowercase(),
    ])
}

/// An application object's id.
fn app_object_id(app_id: &str) -> String {
    derived_guid(&["application", &app_id.to_ascii_lowercase()])
}

fn rfc3339(unix: i64) -> Value {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map(Value::String)
        .unwrap_or(Value::Null)
}

fn parse_time(s: &str) -> Option<i64> {
    let rfc = &time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(s, rfc)
        .or_else(|_| time::OffsetDateTime::parse(&format!("{s}Z"), rfc))
        .ok()
        .map(|t| t.unix_timestamp())
}

// --- errors ------------------------------------------------------------------------------

/// 403 Authorization_RequestDenied.
pub(crate) fn insufficient_privileges() -> GraphError {
    GraphError::new(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

fn not_found(id: &str) -> GraphError {
    GraphError::new(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
    )
}

fn bad(message: impl Into<String>) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

fn conflict(message: impl Into<String>) -> GraphError {
    GraphError::new(
        StatusCode::CONFLICT,
        "Request_MultipleObjectsWithSameKeyValue",
        message,
    )
}

fn invalid_id(id: &str) -> GraphError {
    bad(format!("Invalid object identifier '{id}'."))
}

// --- authorization -------------------------------------------------------------------------

/// The caller may do this: one of `any` in `scp` (or `roles`), and a delegated caller must be
/// a tenant administrator unless `anyone`.
fn allow(st: &St, p: &Principal, any: &[&str], anyone: bool) -> Result<(), GraphError> {
    let has = p
        .permissions
        .iter()
        .any(|x| any.iter().any(|a| a.eq_ignore_ascii_case(x)));
    let admin = p.app_only
        || anyone
        || p.upn
            .as_deref()
            .and_then(|u| st.user(u))
            .is_some_and(|u| u.admin && !u.personal);
    if has && admin {
        Ok(())
    } else {
        Err(insufficient_privileges())
    }
}

const APP_READ: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const APP_WRITE: &[&str] = &["Application.ReadWrite.All", "Directory.ReadWrite.All"];
const GRANT_READ: &[&str] = &[
    "Directory.Read.All",
    "DelegatedPermissionGrant.Read.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "Directory.ReadWrite.All",
];
const GRANT_WRITE: &[&str] = &[
    "DelegatedPermissionGrant.ReadWrite.All",
    "Directory.ReadWrite.All",
];
const ROLE_READ: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const ROLE_WRITE: &[&str] = &[
    "AppRoleAssignment.ReadWrite.All",
    "Application.ReadWrite.All",
    "Directory.ReadWrite.All",
];
const ORG_READ: &[&str] = &[
    "User.Read",
    "User.ReadWrite",
    "User.ReadBasic.All",
    "User.Read.All",
    "Organization.Read.All",
    "Organization.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

// --- routing -------------------------------------------------------------------------------

/// Whether the first segment below `/v1.0` is one of the directory's.
pub(crate) fn is_directory(segment: &str) -> bool {
    let name = segment.split('(').next().unwrap_or_default();
    matches!(
        name,
        "organization" | "applications" | "servicePrincipals" | "oauth2PermissionGrants"
    )
}

/// `applications(appId='…')` → (`applications`, `Some(…)`).
fn split_key(segment: &str) -> Result<(&str, Option<String>), GraphError> {
    let Some((name, rest)) = segment.split_once('(') else {
        return Ok((segment, None));
    };
    let inner = rest
        .strip_suffix(')')
        .and_then(|r| r.strip_prefix("appId="))
        .map(|v| v.trim_matches('\'').to_string())
        .ok_or_else(|| bad(format!("Invalid key in the segment '{segment}'.")))?;
    Ok((name, Some(inner)))
}

/// The parsed `$filter`: `prop eq 'value'` joined by `and`.
fn filter_of(
    query: &std::collections::HashMap<String, String>,
) -> Result<Vec<(String, String)>, GraphError> {
    let Some(raw) = query.get("$filter") else {
        return Ok(vec![]);
    };
    let mut out = vec![];
    for clause in raw.split(" and ") {
        let clause = clause.trim();
        let parts: Vec<&str> = clause.splitn(3, ' ').collect();
        match parts.as_slice() {
            [prop, op, value]
                if op.eq_ignore_ascii_case("eq")
                    && value.len() >= 2
                    && value.starts_with('\'')
                    && value.ends_with('\'') =>
            {
                out.push((
                    prop.to_string(),
                    value[1..value.len() - 1].replace("''", "'"),
                ));
            }
            _ => {
                return Err(GraphError::new(
                    StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    format!("Unsupported or invalid query filter clause specified: '{clause}'."),
                ))
            }
        }
    }
    Ok(out)
}

fn matches_filter(obj: &Value, filter: &[(String, String)]) -> bool {
    filter.iter().all(|(prop, want)| match &obj[prop.as_str()] {
        Value::String(s) => s.eq_ignore_ascii_case(want),
        Value::Null => want.eq_ignore_ascii_case("null"),
        other => other.to_string().eq_ignore_ascii_case(want),
    })
}

/// Keep the properties `$select` names (and the OData annotations).
fn select(obj: Value, query: &std::collections::HashMap<String, String>) -> Value {
    let Some(sel) = query.get("$select") else {
        return obj;
    };
    let keep: Vec<&str> = sel.split(',').map(str::trim).collect();
    match obj {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| {
                    k.starts_with('@') || keep.iter().any(|s| s.eq_ignore_ascii_case(k))
                })
                .collect(),
        ),
        other => other,
    }
}

struct Req<'a> {
    st: &'a mut St,
    base: String,
    tid: String,
    query: &'a std::collections::HashMap<String, String>,
    body: &'a [u8],
    ids: &'a RequestIds,
}

impl Req<'_> {
    fn context(&self, what: &str) -> String {
        format!("{}/$metadata#{what}", self.base)
    }

    fn collection(&self, what: &str, items: Vec<Value>) -> Result<Response, GraphError> {
        let filter = filter_of(self.query)?;
        let mut value: Vec<Value> = items
            .into_iter()
            .filter(|o| matches_filter(o, &filter))
            .map(|o| select(o, self.query))
            .collect();
        if let Some(top) = self.query.get("$top").and_then(|t| t.parse::<usize>().ok()) {
            value.truncate(top);
        }
        Ok(errors::json(
            StatusCode::OK,
            &json!({"@odata.context": self.context(what), "value": value}),
            self.ids,
        ))
    }

    fn entity(&self, status: StatusCode, what: &str, obj: Value) -> Response {
        let mut obj = select(obj, self.query);
        if let Value::Object(m) = &mut obj {
            let mut out = Map::new();
            out.insert("@odata.context".into(), self.context(what).into());
            out.extend(std::mem::take(m));
            *m = out;
        }
        errors::json(status, &obj, self.ids)
    }

    fn json(&self) -> Result<Value, GraphError> {
        let v = super::json_body(self.body)?;
        if !v.is_object() {
            return Err(errors::unreadable_json());
        }
        Ok(v)
    }
}

/// Every directory request (after the bearer token was validated).
/// What a directory request asks: method, path below `/v1.0`, query and body.
pub(crate) struct Call<'a> {
    pub method: &'a Method,
    pub segs: &'a [String],
    pub query: &'a std::collections::HashMap<String, String>,
    pub body: &'a [u8],
}

pub(crate) fn handle(
    st: &mut St,
    p: &Principal,
    base: &str,
    call: Call<'_>,
    ids: &RequestIds,
) -> Result<Response, GraphError> {
    let Call {
        method,
        segs,
        query,
        body,
    } = call;
    let (entity, key) = split_key(&segs[0])?;
    let rest: Vec<&str> = segs[1..].iter().map(String::as_str).collect();
    let mut r = Req {
        tid: p.tid.clone(),
        st,
        base: format!("{base}/v1.0"),
        query,
        body,
        ids,
    };
    match (entity, key, rest.as_slice(), method) {
        ("organization", None, [], &Method::GET) => {
            allow(r.st, p, ORG_READ, true)?;
            organization(&r)
        }
        ("applications", None, [], &Method::GET) => {
            allow(r.st, p, APP_READ, false)?;
            let items =
                r.st.config
                    .apps
                    .iter()
                    .filter(|a| a.home_tenant.eq_ignore_ascii_case(&r.tid))
                    .map(application_json)
                    .collect();
            r.collection("applications", items)
        }
        ("applications", None, [], &Method::POST) => {
            allow(r.st, p, APP_WRITE, false)?;
            create_application(&mut r)
        }
        ("applications", key, rest, m) => {
            let (app_id, tail) = match (key, rest) {
                (Some(k), tail) => (find_app_by_app_id(&r, &k)?, tail),
                (None, [id, tail @ ..]) => (find_app_by_object_id(&r, id)?, tail),
                _ => return Err(method_not_allowed(m)),
            };
            match (tail, m) {
                ([], &Method::GET) => {
                    allow(r.st, p, APP_READ, false)?;
                    let app =
                        r.st.app(&app_id)
                            .cloned()
                            .ok_or_else(|| not_found(&app_id))?;
                    Ok(r.entity(
                        StatusCode::OK,
                        "applications/$entity",
                        application_json(&app),
                    ))
                }
                ([], &Method::PATCH) => {
                    allow(r.st, p, APP_WRITE, false)?;
                    let body = r.json()?;
                    update_application(r.st, &app_id, &body, false)?;
                    Ok(errors::empty(StatusCode::NO_CONTENT, ids))
                }
                ([], &Method::DELETE) => {
                    allow(r.st, p, APP_WRITE, false)?;
                    delete_application(r.st, &app_id);
                    Ok(errors::empty(StatusCode::NO_CONTENT, ids))
                }
                (["addPassword"], &Method::POST) => {
                    allow(r.st, p, APP_WRITE, false)?;
                    add_password(&mut r, &app_id)
                }
                (["removePassword"], &Method::POST) => {
                    allow(r.st, p, APP_WRITE, false)?;
                    remove_password(&mut r, &app_id)
                }
                _ => Err(method_not_allowed(m)),
            }
        }
        ("servicePrincipals", None, [], &Method::GET) => {
            allow(r.st, p, APP_READ, false)?;
            let items = service_principals(r.st, &r.tid);
            r.collection("servicePrincipals", items)
        }
        ("servicePrincipals", None, [], &Method::POST) => {
            allow(r.st, p, APP_WRITE, false)?;
            create_service_principal(&mut r)
        }
        ("servicePrincipals", key, rest, m) => {
            let (sp, tail) = match (key, rest) {
                (Some(k), tail) => (
                    service_principals(r.st, &r.tid)
                        .into_iter()
                        .find(|s| {
                            s["appId"]
                                .as_str()
                                .is_some_and(|a| a.eq_ignore_ascii_case(&k))
                        })
                        .ok_or_else(|| not_found(&k))?,
                    tail,
                ),
                (None, [id, tail @ ..]) => {
                    if uuid::Uuid::parse_str(id).is_err() {
                        return Err(invalid_id(id));
                    }
                    (
                        service_principals(r.st, &r.tid)
                            .into_iter()
                            .find(|s| s["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)))
                            .ok_or_else(|| not_found(id))?,
                        tail,
                    )
                }
                _ => return Err(method_not_allowed(m)),
            };
            let sp_obj_id = sp["id"].as_str().unwrap_or_default().to_string();
            match (tail, m) {
                ([], &Method::GET) => {
                    allow(r.st, p, APP_READ, false)?;
                    Ok(r.entity(StatusCode::OK, "servicePrincipals/$entity", sp))
                }
                (["appRoleAssignedTo"], &Method::GET) => {
                    allow(r.st, p, ROLE_READ, false)?;
                    let items = assignments(r.st, &r.tid)
                        .into_iter()
                        .filter(|a| a["resourceId"] == sp_obj_id.as_str())
                        .collect();
                    r.collection(
                        &format!("servicePrincipals('{sp_obj_id}')/appRoleAssignedTo"),
                        items,
                    )
                }
                (["appRoleAssignments"], &Method::GET) => {
                    allow(r.st, p, ROLE_READ, false)?;
                    let items = assignments(r.st, &r.tid)
                        .into_iter()
                        .filter(|a| a["principalId"] == sp_obj_id.as_str())
                        .collect();
                    r.collection(
                        &format!("servicePrincipals('{sp_obj_id}')/appRoleAssignments"),
                        items,
                    )
                }
                (["appRoleAssignedTo"], &Method::POST) => {
                    allow(r.st, p, ROLE_WRITE, false)?;
                    assign_role(&mut r, &sp)
                }
                (["appRoleAssignedTo", aid] | ["appRoleAssignments", aid], &Method::DELETE) => {
                    allow(r.st, p, ROLE_WRITE, false)?;
                    unassign_role(&mut r, aid)
                }
                _ => Err(method_not_allowed(m)),
            }
        }
        ("oauth2PermissionGrants", None, [], &Method::GET) => {
            allow(r.st, p, GRANT_READ, false)?;
            let items = grants(r.st, &r.tid).into_iter().map(|g| g.json()).collect();
            r.collection("oauth2PermissionGrants", items)
        }
        ("oauth2PermissionGrants", None, [], &Method::POST) => {
            allow(r.st, p, GRANT_WRITE, false)?;
            create_grant(&mut r)
        }
        ("oauth2PermissionGrants", None, [id], m) => {
            let read = *m == Method::GET;
            allow(r.st, p, if read { GRANT_READ } else { GRANT_WRITE }, false)?;
            let g = grants(r.st, &r.tid)
                .into_iter()
                .find(|g| g.id() == *id)
                .ok_or_else(|| not_found(id))?;
            match *m {
                Method::GET => {
                    Ok(r.entity(StatusCode::OK, "oauth2PermissionGrants/$entity", g.json()))
                }
                Method::PATCH => {
                    let body = r.json()?;
                    let scope = body["scope"]
                        .as_str()
                        .ok_or_else(|| bad("Only 'scope' can be changed."))?;
                    let values = check_scope(g.resource_app, scope)?;
                    set_grant_part(r.st, &r.tid, &g, Some(values));
                    Ok(errors::empty(StatusCode::NO_CONTENT, ids))
                }
                Method::DELETE => {
                    set_grant_part(r.st, &r.tid, &g, None);
                    Ok(errors::empty(StatusCode::NO_CONTENT, ids))
                }
                _ => Err(method_not_allowed(m)),
            }
        }
        (_, _, _, m) => Err(method_not_allowed(m)),
    }
}

fn method_not_allowed(m: &Method) -> GraphError {
    GraphError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Request_BadRequest",
        format!("The HTTP method '{m}' is not allowed on this resource."),
    )
}

// --- organization --------------------------------------------------------------------------

fn organization(r: &Req) -> Result<Response, GraphError> {
    let t = r.st.tenant(&r.tid).ok_or_else(|| not_found(&r.tid))?;
    let domains: Vec<Value> = t
        .domains
        .iter()
        .enumerate()
        .map(|(i, d)| {
            json!({
                "capabilities": "Email, OfficeCommunicationsOnline",
                "isDefault": i == 0,
                "isInitial": d.contains(".onmicrosoft.") || (i == 0 && t.domains.len() == 1),
                "name": d,
                "type": "Managed",
            })
        })
        .collect();
    let org = json!({
        "id": t.id,
        "displayName": t.display_name,
        "tenantType": "AAD",
        "countryLetterCode": "DE",
        "preferredLanguage": "en",
        "verifiedDomains": domains,
    });
    r.collection("organization", vec![org])
}

// --- applications --------------------------------------------------------------------------

fn audience_str(a: SignInAudience) -> &'static str {
    match a {
        SignInAudience::AzureAdMyOrg => "AzureADMyOrg",
        SignInAudience::AzureAdMultipleOrgs => "AzureADMultipleOrgs",
        SignInAudience::AzureAdAndPersonalMicrosoftAccount => "AzureADandPersonalMicrosoftAccount",
    }
}

fn secret_key_id(app: &AppConfig, s: &ClientSecret) -> String {
    s.key_id
        .clone()
        .unwrap_or_else(|| derived_guid(&["secret", &app.client_id.to_ascii_lowercase(), &s.value]))
}

fn password_json(app: &AppConfig, s: &ClientSecret) -> Value {
    json!({
        "customKeyIdentifier": null,
        "displayName": s.display_name,
        "endDateTime": s.expires_at.map(rfc3339).unwrap_or(Value::Null),
        "hint": s.value.chars().take(3).collect::<String>(),
        "keyId": secret_key_id(app, s),
        "secretText": null,
        "startDateTime": s.starts_at.map(rfc3339).unwrap_or(Value::Null),
    })
}

/// The `application` object of an app.
fn application_json(a: &AppConfig) -> Value {
    let uris = |p: Platform| -> Vec<&str> {
        a.redirect_uris
            .iter()
            .filter(|u| u.platform == p)
            .map(|u| u.uri.as_str())
            .collect()
    };
    json!({
        "id": app_object_id(&a.client_id),
        "appId": a.client_id,
        "displayName": a.display_name,
        "signInAudience": audience_str(a.sign_in_audience),
        "isFallbackPublicClient": a.allow_public_client_flows,
        "identifierUris": [],
        "notes": a.notes,
        "tags": [],
        "publisherDomain": Value::Null,
        "publicClient": {"redirectUris": uris(Platform::MobileDesktop)},
        "web": {
            "redirectUris": uris(Platform::Web),
            "homePageUrl": null,
            "logoutUrl": null,
            "implicitGrantSettings": {"enableAccessTokenIssuance": false, "enableIdTokenIssuance": false},
        },
        "spa": {"redirectUris": uris(Platform::Spa)},
        "requiredResourceAccess": a.required_resource_access,
        "passwordCredentials": a.secrets.iter().map(|s| password_json(a, s)).collect::<Vec<_>>(),
        "keyCredentials": [],
        "appRoles": [],
        "api": {"oauth2PermissionScopes": [], "requestedAccessTokenVersion": null},
    })
}

fn find_app_by_object_id(r: &Req, id: &str) -> Result<String, GraphError> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(invalid_id(id));
    }
    r.st.config
        .apps
        .iter()
        .filter(|a| a.home_tenant.eq_ignore_ascii_case(&r.tid))
        .find(|a| app_object_id(&a.client_id).eq_ignore_ascii_case(id))
        .map(|a| a.client_id.clone())
        .ok_or_else(|| not_found(id))
}

fn find_app_by_app_id(r: &Req, app_id: &str) -> Result<String, GraphError> {
    r.st.config
        .apps
        .iter()
        .filter(|a| a.home_tenant.eq_ignore_ascii_case(&r.tid))
        .find(|a| a.client_id.eq_ignore_ascii_case(app_id))
        .map(|a| a.client_id.clone())
        .ok_or_else(|| not_found(app_id))
}

/// Properties of `application` a request may set (others are refused, as Graph refuses
/// properties its type does not have).
const WRITABLE: &[&str] = &[
    "displayName",
    "signInAudience",
    "isFallbackPublicClient",
    "publicClient",
    "web",
    "spa",
    "requiredResourceAccess",
    "notes",
    "description",
    "tags",
    "identifierUris",
    "info",
    "api",
    "appRoles",
    "optionalClaims",
    "groupMembershipClaims",
    "serviceManagementReference",
];

/// A pure public client: no credentials and no Web redirect (the token endpoint then needs no
/// secret; a Web redirect always does, AADSTS7000218).
fn derive_public(a: &mut AppConfig) {
    a.public_client =
        a.secrets.is_empty() && !a.redirect_uris.iter().any(|u| u.platform == Platform::Web);
}

fn uri_list(v: &Value, what: &str) -> Result<Option<Vec<String>>, GraphError> {
    let u = &v["redirectUris"];
    if u.is_null() {
        return Ok(None);
    }
    let list = u.as_array().ok_or_else(|| {
        bad(format!(
            "Invalid value specified for property 'redirectUris' of resource '{what}'."
        ))
    })?;
    let mut out = vec![];
    for x in list {
        let s = x
            .as_str()
            .filter(|s| url::Url::parse(s).is_ok())
            .ok_or_else(|| {
                bad(format!(
                    "Invalid value specified for property 'redirectUris' of resource '{what}'."
                ))
            })?;
        out.push(s.to_string());
    }
    Ok(Some(out))
}

/// Apply a JSON body to an app (create: `fresh`).
fn update_application(
    st: &mut St,
    app_id: &str,
    body: &Value,
    fresh: bool,
) -> Result<(), GraphError> {
    let obj = body.as_object().ok_or_else(errors::unreadable_json)?;
    for k in obj.keys() {
        if k.starts_with('@') {
            continue;
        }
        if k == "passwordCredentials" || k == "keyCredentials" {
            if fresh && obj[k].as_array().is_some_and(|a| a.is_empty()) {
                continue;
            }
            return Err(bad(format!(
                "Property '{k}' cannot be set here: use addPassword and removePassword."
            )));
        }
        if !WRITABLE.contains(&k.as_str()) {
            return Err(bad(format!(
                "Property '{k}' does not exist on type 'microsoft.graph.application'."
            )));
        }
    }
    let audience = match obj.get("signInAudience").and_then(Value::as_str) {
        None => None,
        Some("AzureADMyOrg") => Some(SignInAudience::AzureAdMyOrg),
        Some("AzureADMultipleOrgs") => Some(SignInAudience::AzureAdMultipleOrgs),
        Some("AzureADandPersonalMicrosoftAccount") => {
            Some(SignInAudience::AzureAdAndPersonalMicrosoftAccount)
        }
        Some(other) => {
            return Err(bad(format!(
                "Invalid value specified for property 'signInAudience' of resource 'Application': '{other}'."
            )))
        }
    };
    let rra: Option<Vec<RequiredResourceAccess>> = match obj.get("requiredResourceAccess") {
        None | Some(Value::Null) => None,
        Some(v) => Some(serde_json::from_value(v.clone()).map_err(|_| {
            bad("Invalid value specified for property 'requiredResourceAccess' of resource 'Application'.")
        })?),
    };
    if let Some(list) = &rra {
        for r in list {
            for a in &r.resource_access {
                if a.kind != "Scope" && a.kind != "Role" {
                    return Err(bad(format!(
                        "Invalid value '{}' for property 'type' of resource 'ResourceAccess'.",
                        a.kind
                    )));
                }
            }
        }
    }
    let public = obj
        .get("publicClient")
        .map(|v| uri_list(v, "PublicClientApplication"))
        .transpose()?
        .flatten();
    let web = obj
        .get("web")
        .map(|v| uri_list(v, "WebApplication"))
        .transpose()?
        .flatten();
    let spa = obj
        .get("spa")
        .map(|v| uri_list(v, "SpaApplication"))
        .transpose()?
        .flatten();
    let Some(app) = st
        .config
        .apps
        .iter_mut()
        .find(|a| a.client_id.eq_ignore_ascii_case(app_id))
    else {
        return Err(not_found(app_id));
    };
    if let Some(n) = obj.get("displayName") {
        app.display_name = n
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| bad("Property 'displayName' must be a non-empty string."))?
            .to_string();
    }
    if let Some(a) = audience {
        app.sign_in_audience = a;
    }
    if let Some(v) = obj.get("isFallbackPublicClient") {
        app.allow_public_client_flows = v.as_bool().unwrap_or(false);
    }
    if let Some(n) = obj.get("notes") {
        app.notes = n.as_str().map(str::to_string);
    }
    if let Some(list) = rra {
        app.required_resource_access = list;
    }
    for (platform, list) in [
        (Platform::MobileDesktop, public),
        (Platform::Web, web),
        (Platform::Spa, spa),
    ] {
        if let Some(list) = list {
            app.redirect_uris.retain(|u| u.platform != platform);
            app.redirect_uris
                .extend(list.into_iter().map(|uri| RedirectUri { uri, platform }));
        }
    }
    derive_public(app);
    Ok(())
}

fn create_application(r: &mut Req) -> Result<Response, GraphError> {
    let body = r.json()?;
    if body["displayName"]
        .as_str()
        .is_none_or(|s| s.trim().is_empty())
    {
        return Err(bad("Property 'displayName' is required."));
    }
    let app_id = uuid::Uuid::new_v4().to_string();
    r.st.config.apps.push(AppConfig {
        client_id: app_id.clone(),
        home_tenant: r.tid.clone(),
        service_principal: false,
        ..AppConfig::default()
    });
    if let Err(e) = update_application(r.st, &app_id, &body, true) {
        r.st.config.apps.retain(|a| a.client_id != app_id);
        return Err(e);
    }
    let app =
        r.st.app(&app_id)
            .cloned()
            .ok_or_else(|| not_found(&app_id))?;
    let mut obj = application_json(&app);
    obj["createdDateTime"] = rfc3339(now());
    Ok(r.entity(StatusCode::CREATED, "applications/$entity", obj))
}

fn delete_application(st: &mut St, app_id: &str) {
    let same = |c: &str| c.eq_ignore_ascii_case(app_id);
    st.config.apps.retain(|a| !same(&a.client_id));
    for t in &mut st.config.tenants {
        t.service_principals.retain(|c| !same(c));
        t.admin_consents.retain(|g| !same(&g.client_id));
    }
    for u in &mut st.config.users {
        u.consented.retain(|g| !same(&g.client_id));
    }
}

fn app_mut<'a>(st: &'a mut St, app_id: &str) -> Result<&'a mut AppConfig, GraphError> {
    st.config
        .apps
        .iter_mut()
        .find(|a| a.client_id.eq_ignore_ascii_case(app_id))
        .ok_or_else(|| not_found(app_id))
}

fn add_password(r: &mut Req, app_id: &str) -> Result<Response, GraphError> {
    let body = if r.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        r.json()?
    };
    let cred = &body["passwordCredential"];
    let t = now();
    let end = match cred["endDateTime"].as_str() {
        Some(s) => parse_time(s).ok_or_else(|| {
            bad("Invalid value specified for property 'endDateTime' of resource 'PasswordCredential'.")
        })?,
        // Graph's default lifetime: two years.
        None => t + 2 * 365 * 86_400,
    };
    let start = match cred["startDateTime"].as_str() {
        Some(s) => parse_time(s).ok_or_else(|| {
            bad("Invalid value specified for property 'startDateTime' of resource 'PasswordCredential'.")
        })?,
        None => t,
    };
    if end <= start {
        return Err(bad(
            "The endDateTime of a password credential must be after its startDateTime.",
        ));
    }
    // Entra's secrets: 40 characters with a `~` after the hint's 3 and 2 more.
    let raw = random_token(40);
    let value = format!("{}8Q~{}", &raw[..3], &raw[6..]);
    let key_id = uuid::Uuid::new_v4().to_string();
    let secret = ClientSecret {
        value,
        expires_at: Some(end),
        key_id: Some(key_id),
        display_name: cred["displayName"].as_str().map(str::to_string),
        starts_at: Some(start),
    };
    let app = app_mut(r.st, app_id)?;
    app.secrets.push(secret.clone());
    derive_public(app);
    let app = app.clone();
    let mut obj = password_json(&app, &secret);
    obj["secretText"] = secret.value.clone().into();
    Ok(r.entity(StatusCode::OK, "microsoft.graph.passwordCredential", obj))
}

fn remove_password(r: &mut Req, app_id: &str) -> Result<Response, GraphError> {
    let body = r.json()?;
    let key = body["keyId"]
        .as_str()
        .ok_or_else(|| bad("Property 'keyId' is required."))?
        .to_string();
    let app = app_mut(r.st, app_id)?;
    let snapshot = app.clone();
    let before = app.secrets.len();
    app.secrets
        .retain(|s| !secret_key_id(&snapshot, s).eq_ignore_ascii_case(&key));
    if app.secrets.len() == before {
        return Err(bad(format!(
            "No password credential with keyId '{key}' was found."
        )));
    }
    derive_public(app);
    Ok(errors::empty(StatusCode::NO_CONTENT, r.ids))
}

// --- service principals --------------------------------------------------------------------

fn first_party_json(tenant: &str, app_id: &str, name: &str) -> Value {
    let scopes: Vec<Value> = scope_values(app_id)
        .into_iter()
        .map(|v| {
            let admin = Scope::Resource {
                family: GRAPH,
                resource: GRAPH.into(),
                name: v.into(),
            }
            .admin_only()
                && app_id == GRAPH_APP_ID;
            let text = match scopes::parse(
                &if app_id == EXCHANGE_APP_ID {
                    format!("{EXCHANGE}/{v}")
                } else {
                    v.to_string()
                },
                "",
                "",
            ) {
                Ok(s) => s.first().map(Scope::describe).unwrap_or_default(),
                Err(_) => v.to_string(),
            };
            json!({
                "adminConsentDescription": text,
                "adminConsentDisplayName": text,
                "id": permission_id(app_id, "Scope", v),
                "isEnabled": true,
                "type": if admin { "Admin" } else { "User" },
                "userConsentDescription": if admin { Value::Null } else { text.clone().into() },
                "userConsentDisplayName": if admin { Value::Null } else { text.into() },
                "value": v,
            })
        })
        .collect();
    let roles: Vec<Value> = role_values(app_id)
        .iter()
        .map(|v| {
            json!({
                "allowedMemberTypes": ["Application"],
                "description": format!("{v} ({name})"),
                "displayName": v,
                "id": permission_id(app_id, "Role", v),
                "isEnabled": true,
                "origin": "Application",
                "value": v,
            })
        })
        .collect();
    json!({
        "id": sp_id(tenant, app_id),
        "accountEnabled": true,
        "appDisplayName": name,
        "appId": app_id,
        "appOwnerOrganizationId": MICROSOFT_SERVICES_TENANT,
        "appRoleAssignmentRequired": false,
        "appRoles": roles,
        "displayName": name,
        "oauth2PermissionScopes": scopes,
        "replyUrls": [],
        "servicePrincipalNames": [app_id],
        "servicePrincipalType": "Application",
        "signInAudience": "AzureADMultipleOrgs",
        "tags": [],
    })
}

fn app_sp_json(tenant: &str, a: &AppConfig) -> Value {
    json!({
        "id": sp_id(tenant, &a.client_id),
        "accountEnabled": true,
        "appDisplayName": a.display_name,
        "appId": a.client_id,
        "appOwnerOrganizationId": a.home_tenant,
        "appRoleAssignmentRequired": false,
        "appRoles": [],
        "displayName": a.display_name,
        "oauth2PermissionScopes": [],
        "replyUrls": a.redirect_uris.iter().map(|u| u.uri.as_str()).collect::<Vec<_>>(),
        "servicePrincipalNames": [a.client_id],
        "servicePrincipalType": "Application",
        "signInAudience": audience_str(a.sign_in_audience),
        "tags": [],
    })
}

/// Every service principal of a tenant: Exchange Online, Graph, and the apps with one there.
fn service_principals(st: &St, tenant: &str) -> Vec<Value> {
    if st.tenant(tenant).is_none_or(|t| t.personal) {
        return vec![];
    }
    let mut out: Vec<Value> = RESOURCES
        .iter()
        .map(|(id, name, _)| first_party_json(tenant, id, name))
        .collect();
    out.extend(
        st.config
            .apps
            .iter()
            .filter(|a| st.has_service_principal(tenant, &a.client_id))
            .map(|a| app_sp_json(tenant, a)),
    );
    out
}

fn create_service_principal(r: &mut Req) -> Result<Response, GraphError> {
    let body = r.json()?;
    let app_id = body["appId"]
        .as_str()
        .ok_or_else(|| bad("Property 'appId' is required."))?
        .to_string();
    let invalid = || {
        bad(format!(
            "The appId '{app_id}' of the service principal does not reference a valid application object."
        ))
    };
    if RESOURCES
        .iter()
        .any(|(id, ..)| id.eq_ignore_ascii_case(&app_id))
    {
        return Err(conflict(format!("The service principal cannot be created, updated, or restored because the service principal name {app_id} is already in use.")));
    }
    let app = r.st.app(&app_id).cloned().ok_or_else(invalid)?;
    let home = app.home_tenant.eq_ignore_ascii_case(&r.tid);
    if !home && app.sign_in_audience == SignInAudience::AzureAdMyOrg {
        return Err(invalid());
    }
    if r.st.has_service_principal(&r.tid, &app.client_id) {
        return Err(conflict(format!("The service principal cannot be created, updated, or restored because the service principal name {} is already in use.", app.client_id)));
    }
    r.st.ensure_service_principal(&r.tid, &app.client_id);
    let app = r.st.app(&app_id).cloned().ok_or_else(invalid)?;
    Ok(r.entity(
        StatusCode::CREATED,
        "servicePrincipals/$entity",
        app_sp_json(&r.tid, &app),
    ))
}

// --- app role assignments ------------------------------------------------------------------

fn assignment_id(principal: &str, resource: &str, role: &str) -> String {
    let mut bytes = uuid::Uuid::parse_str(principal)
        .map(|u| u.to_bytes_le().to_vec())
        .unwrap_or_default();
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{resource}|{role}").to_ascii_lowercase().as_bytes(),
    );
    bytes.extend_from_slice(&d.as_ref()[..16]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Every app role assignment of the tenant's apps to Exchange Online and Graph.
fn assignments(st: &St, tenant: &str) -> Vec<Value> {
    let mut out = vec![];
    for a in st
        .config
        .apps
        .iter()
        .filter(|a| st.has_service_principal(tenant, &a.client_id))
    {
        let principal = sp_id(tenant, &a.client_id);
        for (resource_app, resource_name, roles) in [
            (
                EXCHANGE_APP_ID,
                "Office 365 Exchange Online",
                &a.app_roles_granted,
            ),
            (GRAPH_APP_ID, "Microsoft Graph", &a.graph_roles_granted),
        ] {
            let resource = sp_id(tenant, resource_app);
            for role in roles {
                out.push(json!({
                    "id": assignment_id(&principal, &resource, role),
                    "appRoleId": permission_id(resource_app, "Role", role),
                    "createdDateTime": null,
                    "deletedDateTime": null,
                    "principalDisplayName": a.display_name,
                    "principalId": principal,
                    "principalType": "ServicePrincipal",
                    "resourceDisplayName": resource_name,
                    "resourceId": resource,
                }));
            }
        }
    }
    out
}

/// The tenant's app whose service principal has object id `id`.
fn app_of_sp(st: &St, tenant: &str, id: &str) -> Option<String> {
    st.config
        .apps
        .iter()
        .filter(|a| st.has_service_principal(tenant, &a.client_id))
        .find(|a| sp_id(tenant, &a.client_id).eq_ignore_ascii_case(id))
        .map(|a| a.client_id.clone())
}

/// The first-party resource whose service principal has object id `id` in the tenant.
fn resource_of_sp(tenant: &str, id: &str) -> Option<&'static str> {
    RESOURCES
        .iter()
        .find(|(app, ..)| sp_id(tenant, app).eq_ignore_ascii_case(id))
        .map(|(app, ..)| *app)
}

fn assign_role(r: &mut Req, sp: &Value) -> Result<Response, GraphError> {
    let body = r.json()?;
    let sp_obj = sp["id"].as_str().unwrap_or_default();
    let principal = body["principalId"]
        .as_str()
        .ok_or_else(|| bad("Property 'principalId' is required."))?;
    let resource = body["resourceId"]
        .as_str()
        .ok_or_else(|| bad("Property 'resourceId' is required."))?;
    let role_id = body["appRoleId"]
        .as_str()
        .ok_or_else(|| bad("Property 'appRoleId' is required."))?;
    if !resource.eq_ignore_ascii_case(sp_obj) {
        return Err(bad(
            "The resourceId must be the service principal of the request's path.",
        ));
    }
    let resource_app = resource_of_sp(&r.tid, resource).ok_or_else(|| {
        bad(format!(
            "Permission being assigned was not found on application '{}'.",
            sp["appId"].as_str().unwrap_or_default()
        ))
    })?;
    let app_id = app_of_sp(r.st, &r.tid, principal).ok_or_else(|| not_found(principal))?;
    let role = role_values(resource_app)
        .iter()
        .find(|v| permission_id(resource_app, "Role", v).eq_ignore_ascii_case(role_id))
        .ok_or_else(|| {
            bad(format!(
                "Permission being assigned was not found on application '{resource_app}'."
            ))
        })?
        .to_string();
    let app = app_mut(r.st, &app_id)?;
    let list = if resource_app == EXCHANGE_APP_ID {
        &mut app.app_roles_granted
    } else {
        &mut app.graph_roles_granted
    };
    if list.iter().any(|x| x.eq_ignore_ascii_case(&role)) {
        return Err(bad(
            "Permission being assigned already exists on the object",
        ));
    }
    list.push(role.clone());
    let obj = assignments(r.st, &r.tid)
        .into_iter()
        .find(|a| a["id"] == assignment_id(principal, resource, &role).as_str())
        .unwrap_or(Value::Null);
    let mut obj = obj;
    obj["createdDateTime"] = rfc3339(now());
    Ok(r.entity(
        StatusCode::CREATED,
        &format!("servicePrincipals('{sp_obj}')/appRoleAssignedTo/$entity"),
        obj,
    ))
}

fn unassign_role(r: &mut Req, aid: &str) -> Result<Response, GraphError> {
    let a = assignments(r.st, &r.tid)
        .into_iter()
        .find(|a| a["id"] == aid)
        .ok_or_else(|| not_found(aid))?;
    let principal = a["principalId"].as_str().unwrap_or_default();
    let resource = a["resourceId"].as_str().unwrap_or_default();
    let app_id = app_of_sp(r.st, &r.tid, principal).ok_or_else(|| not_found(aid))?;
    let resource_app = resource_of_sp(&r.tid, resource).ok_or_else(|| not_found(aid))?;
    let role_id = a["appRoleId"].as_str().unwrap_or_default().to_string();
    let app = app_mut(r.st, &app_id)?;
    let list = if resource_app == EXCHANGE_APP_ID {
        &mut app.app_roles_granted
    } else {
        &mut app.graph_roles_granted
    };
    list.retain(|v| !permission_id(resource_app, "Role", v).eq_ignore_ascii_case(&role_id));
    Ok(errors::empty(StatusCode::NO_CONTENT, r.ids))
}

// --- delegated permission grants -----------------------------------------------------------

/// One delegated permission grant: the part of a [`ConsentGrant`] on one resource.
#[derive(Debug, Clone)]
struct Grant {
    client_app: String,
    client_sp: String,
    /// The user's object id and UPN for `Principal`, `None` for `AllPrincipals`.
    principal: Option<(String, String)>,
    resource_app: &'static str,
    resource_sp: String,
    /// Permission values (`IMAP.AccessAsUser.All`, `openid`).
    values: Vec<String>,
}

impl Grant {
    /// Entra's id: base64url of the client's, the resource's (and the user's) object ids.
    fn id(&self) -> String {
        let mut bytes = vec![];
        for g in [
            Some(&self.client_sp),
            Some(&self.resource_sp),
            self.principal.as_ref().map(|p| &p.0),
        ]
        .into_iter()
        .flatten()
        {
            if let Ok(u) = uuid::Uuid::parse_str(g) {
                bytes.extend_from_slice(&u.to_bytes_le());
            }
        }
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn json(&self) -> Value {
        json!({
            "clientId": self.client_sp,
            "consentType": if self.principal.is_some() { "Principal" } else { "AllPrincipals" },
            "id": self.id(),
            "principalId": self.principal.as_ref().map(|p| p.0.clone()),
            "resourceId": self.resource_sp,
            "scope": self.values.join(" "),
        })
    }
}

/// Split consented scope strings (the sign-in's notation) by resource: permission values.
fn split_by_resource(scopes_list: &[String]) -> [(&'static str, Vec<String>); 2] {
    let mut exchange: Vec<String> = vec![];
    let mut graph: Vec<String> = vec![];
    let push = |list: &mut Vec<String>, v: &str| {
        if !list.iter().any(|x| x.eq_ignore_ascii_case(v)) {
            list.push(v.to_string());
        }
    };
    for s in scopes_list {
        if s == "*" {
            for v in scope_values(EXCHANGE_APP_ID) {
                push(&mut exchange, v);
            }
            for v in scope_values(GRAPH_APP_ID) {
                push(&mut graph, v);
            }
            continue;
        }
        for scope in scopes::parse(s, "", "").unwrap_or_default() {
            match &scope {
                Scope::Oidc(o) => push(&mut graph, o),
                Scope::Resource { family, name, .. } if *family == EXCHANGE => {
                    push(&mut exchange, name)
                }
                Scope::Resource { name, .. } => push(&mut graph, name),
            }
        }
    }
    [(EXCHANGE_APP_ID, exchange), (GRAPH_APP_ID, graph)]
}

/// Every delegated permission grant of a tenant, read from its consents.
fn grants(st: &St, tenant: &str) -> Vec<Grant> {
    let mut out = vec![];
    let mut add = |client: &str, principal: Option<(String, String)>, list: &[String]| {
        if st.app(client).is_none() {
            return;
        }
        for (resource_app, values) in split_by_resource(list) {
            if values.is_empty() {
                continue;
            }
            out.push(Grant {
                client_app: client.to_string(),
                client_sp: sp_id(tenant, client),
                principal: principal.clone(),
                resource_app,
                resource_sp: sp_id(tenant, resource_app),
                values,
            });
        }
    };
    if let Some(t) = st.tenant(tenant) {
        for g in &t.admin_consents {
            add(&g.client_id, None, &g.scopes);
        }
    }
    for u in st
        .config
        .users
        .iter()
        .filter(|u| u.tenant.eq_ignore_ascii_case(tenant))
    {
        for g in &u.consented {
            add(&g.client_id, Some((st.oid(u), u.upn.clone())), &g.scopes);
        }
    }
    out
}

/// The permission values of a grant's `scope`, checked against the resource.
fn check_scope(resource_app: &str, scope: &str) -> Result<Vec<String>, GraphError> {
    let known = scope_values(resource_app);
    let mut out: Vec<String> = vec![];
    for v in scope.split_whitespace() {
        let Some(k) = known.iter().find(|k| k.eq_ignore_ascii_case(v)) else {
            return Err(bad(format!(
                "Invalid value specified for property 'scope' of resource 'OAuth2PermissionGrant': '{v}' is not a delegated permission of the resource."
            )));
        };
        if !out.iter().any(|x| x == k) {
            out.push(k.to_string());
        }
    }
    Ok(out)
}

/// A permission value in the sign-in's consent notation.
fn consent_notation(resource_app: &str, value: &str) -> String {
    if resource_app == EXCHANGE_APP_ID {
        format!("{EXCHANGE}/{value}")
    } else {
        value.to_string()
    }
}

/// Replace (or with `None` remove) the part of a grant on its resource in the consents.
fn set_grant_part(st: &mut St, tenant: &str, g: &Grant, values: Option<Vec<String>>) {
    let list = match &g.principal {
        None => st
            .config
            .tenants
            .iter_mut()
            .find(|t| t.id.eq_ignore_ascii_case(tenant))
            .map(|t| &mut t.admin_consents),
        Some((_, upn)) => st
            .config
            .users
            .iter_mut()
            .find(|u| u.upn.eq_ignore_ascii_case(upn))
            .map(|u| &mut u.consented),
    };
    let Some(list) = list else {
        return;
    };
    let pos = list
        .iter()
        .position(|c| c.client_id.eq_ignore_ascii_case(&g.client_app));
    let mut others: Vec<String> = vec![];
    if let Some(i) = pos {
        for (resource_app, vals) in split_by_resource(&list[i].scopes) {
            if resource_app != g.resource_app {
                others.extend(vals.iter().map(|v| consent_notation(resource_app, v)));
            }
        }
    }
    let mine: Vec<String> = values
        .unwrap_or_default()
        .iter()
        .map(|v| consent_notation(g.resource_app, v))
        .collect();
    let mut scopes_now = others;
    scopes_now.extend(mine);
    match pos {
        Some(i) if scopes_now.is_empty() => {
            list.remove(i);
        }
        Some(i) => list[i].scopes = scopes_now,
        None if !scopes_now.is_empty() => list.push(ConsentGrant {
            client_id: g.client_app.clone(),
            scopes: scopes_now,
        }),
        None => {}
    }
}

fn create_grant(r: &mut Req) -> Result<Response, GraphError> {
    let body = r.json()?;
    let field = |k: &str| body[k].as_str().map(str::to_string);
    let client = field("clientId").ok_or_else(|| bad("Property 'clientId' is required."))?;
    let resource = field("resourceId").ok_or_else(|| bad("Property 'resourceId' is required."))?;
    let consent_type =
        field("consentType").ok_or_else(|| bad("Property 'consentType' is required."))?;
    let scope = field("scope").unwrap_or_default();
    let client_app = app_of_sp(r.st, &r.tid, &client).ok_or_else(|| not_found(&client))?;
    let resource_app = resource_of_sp(&r.tid, &resource).ok_or_else(|| {
        if app_of_sp(r.st, &r.tid, &resource).is_some() {
            bad("The emulator grants delegated permissions on Office 365 Exchange Online and Microsoft Graph only.")
        } else {
            not_found(&resource)
        }
    })?;
    let principal = match (consent_type.as_str(), field("principalId")) {
        ("AllPrincipals", None) => None,
        ("AllPrincipals", Some(_)) => {
            return Err(bad("principalId must be null when consentType is 'AllPrincipals'."))
        }
        ("Principal", Some(p)) => {
            let u = r
                .st
                .config
                .users
                .iter()
                .filter(|u| u.tenant.eq_ignore_ascii_case(&r.tid))
                .find(|u| r.st.oid(u).eq_ignore_ascii_case(&p))
                .ok_or_else(|| not_found(&p))?;
            Some((r.st.oid(u), u.upn.clone()))
        }
        ("Principal", None) => {
            return Err(bad("principalId is required when consentType is 'Principal'."))
        }
        (other, _) => {
            return Err(bad(format!(
                "Invalid value specified for property 'consentType' of resource 'OAuth2PermissionGrant': '{other}'."
            )))
        }
    };
    let values = check_scope(resource_app, &scope)?;
    let g = Grant {
        client_app: client_app.clone(),
        client_sp: sp_id(&r.tid, &client_app),
        principal,
        resource_app,
        resource_sp: sp_id(&r.tid, resource_app),
        values: values.clone(),
    };
    if grants(r.st, &r.tid).iter().any(|x| x.id() == g.id()) {
        return Err(conflict("Permission entry already exists."));
    }
    set_grant_part(r.st, &r.tid, &g, Some(values));
    Ok(r.entity(
        StatusCode::CREATED,
        "oauth2PermissionGrants/$entity",
        g.json(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_ids_decode_to_client_resource_and_principal() {
        let g = Grant {
            client_app: "x".into(),
            client_sp: "d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90".into(),
            principal: None,
            resource_app: GRAPH_APP_ID,
            resource_sp: "a1c2e3f4-0b1d-4e2f-8a3b-5c6d7e8f9a0b".into(),
            values: vec!["openid".into()],
        };
        let bytes = URL_SAFE_NO_PAD.decode(g.id()).unwrap();
        assert_eq!(bytes.len(), 32);
        assert_eq!(
            uuid::Uuid::from_slice_le(&bytes[..16]).unwrap().to_string(),
            g.client_sp
        );
    }

    #[test]
    fn consent_scopes_split_by_resource_and_back() {
        let list = vec![
            "openid".to_string(),
            "offline_access".into(),
            "https://outlook.office.com/IMAP.AccessAsUser.All".into(),
            "https://outlook.office365.com/SMTP.Send".into(),
            "User.Read".into(),
        ];
        let [(e, exo), (g, graph)] = split_by_resource(&list);
        assert_eq!(e, EXCHANGE_APP_ID);
        assert_eq!(exo, vec!["IMAP.AccessAsUser.All", "SMTP.Send"]);
        assert_eq!(g, GRAPH_APP_ID);
        assert_eq!(graph, vec!["openid", "offline_access", "User.Read"]);
        assert_eq!(
            consent_notation(EXCHANGE_APP_ID, "SMTP.Send"),
            "https://outlook.office.com/SMTP.Send"
        );
    }

    #[test]
    fn filters_parse_eq_clauses_and_refuse_others() {
        let mut q = std::collections::HashMap::new();
        q.insert(
            "$filter".to_string(),
            "appId eq 'a''b' and displayName eq 'x'".to_string(),
        );
        assert_eq!(
            filter_of(&q).unwrap(),
            vec![
                ("appId".to_string(), "a'b".to_string()),
                ("displayName".into(), "x".into())
            ]
        );
        q.insert(
            "$filter".to_string(),
            "startswith(displayName,'x')".to_string(),
        );
        assert_eq!(filter_of(&q).unwrap_err().code, "Request_UnsupportedQuery");
    }

    #[test]
    fn permission_ids_are_microsofts_or_stable() {
        assert_eq!(
            permission_id(EXCHANGE_APP_ID, "Role", "IMAP.AccessAsApp"),
            "5e5addcd-3e8d-4e90-baf5-964efab2b20a"
        );
        let derived = permission_id(EXCHANGE_APP_ID, "Scope", "IMAP.AccessAsUser.All");
        assert_eq!(
            derived,
            permission_id(EXCHANGE_APP_ID, "Scope", "IMAP.AccessAsUser.All")
        );
        assert_ne!(
            derived,
            permission_id(GRAPH_APP_ID, "Scope", "IMAP.AccessAsUser.All")
        );
    }
}
