//! Helpers for tests that call a running emulator over HTTP as an app would (the sandbox's own
//! tests and the workspace's Graph tests). Not part of the sandbox's supported API.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use crate::{
    Consent, Emulator, ScriptedBrowser, SignIn, DESKTOP_APP_ID, EXAMPLE_TENANT_ID, SERVICE_APP_ID,
};

/// A redirect URI registered for the desktop app.
pub const REDIRECT: &str = "http://localhost:53123/";

/// An HTTP client for the emulator (plain HTTP): no proxy, redirects not followed, a TLS backend
/// that trusts no root. Add a timeout or other settings before building.
pub fn http_builder() -> reqwest::ClientBuilder {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
}

/// [`http_builder`], built.
pub fn http() -> reqwest::Client {
    http_builder()
        .build()
        .expect("an HTTP client with a preconfigured TLS backend builds")
}

/// A sandbox user's sign-in (`alice@example.test` with `alice-password` and MFA code `123456`),
/// consenting when asked; the redirect back to the app is not delivered.
pub fn script(user: &str) -> SignIn {
    SignIn {
        user: user.into(),
        password: format!("{}-password", user.split('@').next().unwrap()),
        mfa_code: Some("123456".into()),
        consent: Consent::Accept,
        deliver_redirect: false,
    }
}

/// A fresh PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = format!("v{}", "x".repeat(10))
        + &uuid::Uuid::new_v4().simple().to_string()
        + &uuid::Uuid::new_v4().simple().to_string();
    let d = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    (verifier, URL_SAFE_NO_PAD.encode(d.as_ref()))
}

/// `/{tenant}/oauth2/v2.0/authorize` for `client` asking for a code at [`REDIRECT`], with
/// `params` (the scope among them) added in order.
pub fn authorize_url(
    emu: &Emulator,
    tenant: &str,
    client: &str,
    params: &[(&str, &str)],
) -> String {
    let mut u = url::Url::parse(&format!(
        "{}/{tenant}/oauth2/v2.0/authorize",
        emu.base_url()
    ))
    .expect("the emulator's base URL is a URL");
    u.query_pairs_mut()
        .append_pair("client_id", client)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", REDIRECT)
        .extend_pairs(params);
    u.to_string()
}

/// POST `form` to `/{tenant}/oauth2/v2.0/token`: the status and the answer (a JSON string when
/// the answer is not JSON).
pub async fn post_token(emu: &Emulator, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = http()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", emu.base_url()))
        .form(form)
        .send()
        .await
        .expect("the token endpoint answers");
    let status = r.status().as_u16();
    let text = r.text().await.expect("the token endpoint's answer is read");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Sign `user` in as the desktop app at `/organizations` for `scope` with PKCE (consenting when
/// asked) and redeem the code (with `redeem_scope` when given): the token endpoint's answer.
pub async fn sign_in(emu: &Emulator, user: &str, scope: &str, redeem_scope: Option<&str>) -> Value {
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        emu,
        "organizations",
        DESKTOP_APP_ID,
        &[
            ("scope", scope),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let out = ScriptedBrowser::new()
        .sign_in(&url, &script(user))
        .await
        .expect("the sign-in pages work");
    let code = out
        .redirect_param("code")
        .unwrap_or_else(|| panic!("no code: {out:?}"));
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", DESKTOP_APP_ID),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
    ];
    if let Some(s) = redeem_scope {
        form.push(("scope", s));
    }
    post_token(emu, "organizations", &form).await.1
}

/// Redeem the desktop app's refresh token `rt` for `scope` at `/organizations`.
pub async fn refresh(emu: &Emulator, rt: &str, scope: &str) -> Value {
    post_token(
        emu,
        "organizations",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", DESKTOP_APP_ID),
            ("refresh_token", rt),
            ("scope", scope),
        ],
    )
    .await
    .1
}

/// The service app's client-credentials grant with `secret` for `scope` at `tenant`.
pub async fn client_credentials(
    emu: &Emulator,
    tenant: &str,
    secret: &str,
    scope: &str,
) -> (u16, Value) {
    post_token(
        emu,
        tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SERVICE_APP_ID),
            ("client_secret", secret),
            ("scope", scope),
        ],
    )
    .await
}

/// The service app's Graph token (application roles) in the example tenant.
pub async fn graph_app_token(emu: &Emulator) -> Value {
    client_credentials(
        emu,
        EXAMPLE_TENANT_ID,
        crate::SERVICE_APP_SECRET,
        "https://graph.microsoft.com/.default",
    )
    .await
    .1
}

/// The claims of a JWT (unverified).
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("JSON claims")
}

/// The access token of a token answer.
pub fn access_token(answer: &Value) -> &str {
    answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token: {answer}"))
}

/// The refresh token of a token answer.
pub fn refresh_token(answer: &Value) -> &str {
    answer["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh token: {answer}"))
}

/// GET `url` with [`http`]: the JSON answer.
pub async fn get_json(url: impl reqwest::IntoUrl) -> Value {
    http()
        .get(url)
        .send()
        .await
        .expect("the emulator answers")
        .json()
        .await
        .expect("a JSON answer")
}
