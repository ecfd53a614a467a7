//! Metadata: OpenID Connect discovery, RFC 8414 authorization-server metadata, the JWKS, the
//! `/error?code=` page and a userinfo endpoint.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::errors::{self, json_response};
use super::pages;
use super::state::{now, Authority, Shared};

/// The tenant id for `iss` (`{tenantid}` for common and organizations, like Microsoft).
fn issuer_tenant(shared: &Shared, authority: &Authority) -> String {
    match authority {
        Authority::Tenant(id) => id.clone(),
        Authority::Consumers => shared.lock().consumer_tenant_id(),
        Authority::Common | Authority::Organizations => "{tenantid}".into(),
    }
}

/// The path segment endpoints are announced with.
fn endpoint_segment(authority: &Authority) -> String {
    match authority {
        Authority::Tenant(id) => id.clone(),
        Authority::Common => "common".into(),
        Authority::Organizations => "organizations".into(),
        Authority::Consumers => "consumers".into(),
    }
}

fn resolve(shared: &Shared, tenant: &str) -> Result<Authority, Box<Response>> {
    let a = shared.lock().authority(tenant);
    a.ok_or_else(|| Box::new(errors::tenant_not_found(tenant).into_response(&shared.base_url)))
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub async fn openid_configuration(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
) -> Response {
    let authority = match resolve(&shared, &tenant) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let base = &shared.base_url;
    let seg = endpoint_segment(&authority);
    let tid = issuer_tenant(&shared, &authority);
    let region = match authority {
        Authority::Tenant(_) => serde_json::Value::from("EU"),
        _ => serde_json::Value::Null,
    };
    let doc = serde_json::json!({
        "token_endpoint": format!("{base}/{seg}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{seg}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/{tid}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{base}/{seg}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{seg}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{seg}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{base}/{seg}/kerberos"),
        "tenant_region_scope": region,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    });
    json_response(StatusCode::OK, &doc)
}

/// `GET /{tenant}/.well-known/oauth-authorization-server` (RFC 8414; an emulator extra).
pub async fn authorization_server(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
) -> Response {
    let authority = match resolve(&shared, &tenant) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let base = &shared.base_url;
    let seg = endpoint_segment(&authority);
    let tid = issuer_tenant(&shared, &authority);
    let doc = serde_json::json!({
        "issuer": format!("{base}/{tid}/v2.0"),
        "authorization_endpoint": format!("{base}/{seg}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/{seg}/oauth2/v2.0/token"),
        "device_authorization_endpoint": format!("{base}/{seg}/oauth2/v2.0/devicecode"),
        "jwks_uri": format!("{base}/{seg}/discovery/v2.0/keys"),
        "introspection_endpoint": format!("{base}/introspect"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
        "code_challenge_methods_supported": ["S256", "plain"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
    });
    json_response(StatusCode::OK, &doc)
}

/// `GET /{tenant}/discovery/v2.0/keys`.
pub async fn keys(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>) -> Response {
    let authority = match resolve(&shared, &tenant) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let issuer = format!(
        "{}/{}/v2.0",
        shared.base_url,
        issuer_tenant(&shared, &authority)
    );
    json_response(
        StatusCode::OK,
        &serde_json::json!({"keys": [shared.key.jwk(&issuer)]}),
    )
}

/// `GET /error?code=N`.
pub async fn error_code_page(
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let code: u32 = q.get("code").and_then(|c| c.parse().ok()).unwrap_or(0);
    pages::html(
        StatusCode::OK,
        pages::layout(
            "Error code lookup",
            &format!(
                "<h1>AADSTS{code}</h1><p>{}</p>",
                pages::esc(errors::describe_code(code))
            ),
        ),
    )
}

/// `GET /oidc/userinfo` with a Graph-audience bearer token.
pub async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let claims = shared.key.verify(token);
    match claims {
        Some(c) if c["aud"] == super::scopes::GRAPH && c["exp"].as_i64().unwrap_or(0) > now() => {
            let body = serde_json::json!({
                "sub": c["sub"], "name": c["name"], "family_name": c["family_name"],
                "given_name": c["given_name"], "email": c["upn"].as_str().or(c["email"].as_str()),
            });
            json_response(StatusCode::OK, &body)
        }
        _ => json_response(
            StatusCode::UNAUTHORIZED,
            &serde_json::json!({"error": {"code": "InvalidAuthenticationToken", "message": "Access token validation failure. Invalid audience."}}),
        ),
    }
}
