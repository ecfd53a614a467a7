//! Token endpoint answers, OAuth error responses, id_tokens and the loopback redirect.

use std::time::Duration;

use mailconnect_core::http::HttpResponse;
use mailconnect_core::oauth::browser::{parse_redirect, LoopbackPage, Redirect};
use mailconnect_core::oauth::errors::{self, OAuthErrorResponse};
use mailconnect_core::oauth::{identity, token};
use mailconnect_core::{ErrorKind, Language};
use secrecy::{ExposeSecret, SecretString};
use url::Url;
use zeroize::Zeroizing;

use crate::checks::{assert_no_leak, assert_no_secret, diagnose_all, distinct_secrets, shown};

// ----- token and error responses ---------------------------------------------------------------

/// A token endpoint answer: `token::parse_response`, then what a token request does with it.
pub fn token_response(status: u16, content_type: &str, body: &[u8], retry_after: Option<u64>) {
    // Any token-like string value in a JSON body is a secret.
    let secrets: Vec<String> = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|o| {
            ["access_token", "refresh_token", "id_token"]
                .iter()
                .filter_map(|k| o.get(*k).and_then(|v| v.as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let secrets = distinct_secrets(&String::from_utf8_lossy(body), secrets);
    if let Some(text) = token_outcome(status, content_type, body, retry_after, &secrets) {
        let again =
            |b: &[u8]| token_outcome(status, content_type, b, retry_after, &[]).unwrap_or_default();
        assert_no_leak(body, &secrets, &text, again, "token response");
    }
}

/// Read a token response; the error text, if it is an error.
fn token_outcome(
    status: u16,
    content_type: &str,
    body: &[u8],
    retry_after: Option<u64>,
    secrets: &[String],
) -> Option<String> {
    let url = Url::parse("https://login.example.test/tenant/oauth2/v2.0/token")
        .unwrap_or_else(|_| unreachable!());
    let resp = HttpResponse {
        status,
        retry_after: retry_after.map(Duration::from_secs),
        content_type: content_type.to_ascii_lowercase(),
        body: Zeroizing::new(body.to_vec()),
    };
    let scopes = ["https://outlook.office.com/IMAP.AccessAsUser.All".to_string()];
    match token::parse_response(&url, &resp, &scopes) {
        Ok(token::Outcome::Granted(g)) => {
            assert_eq!(status, 200, "a grant from a non-200 answer");
            assert!(!g.access_token.expose_secret().is_empty());
            assert!(g
                .refresh_token
                .as_ref()
                .is_none_or(|r| !r.expose_secret().is_empty()));
            let debug = format!("{g:?}");
            for s in secrets {
                assert!(!debug.contains(s), "a token in the grant's Debug output");
            }
            None
        }
        Ok(token::Outcome::Refused(e, st)) => {
            assert_eq!(st, status);
            assert!(!e.error.is_empty());
            let err = errors::to_error("fuzzing", e, Some(st));
            diagnose_all(&err);
            Some(shown(&err))
        }
        Err(err) => {
            diagnose_all(&err);
            Some(shown(&err))
        }
    }
}

/// An OAuth error body as JSON (token, device or authorize endpoint).
pub fn oauth_error_json(body: &[u8]) {
    if let Ok(e) = serde_json::from_slice::<OAuthErrorResponse>(body) {
        oauth_error(e);
    }
}

/// An OAuth error response: its AADSTS code, summary, classification, core error and diagnosis.
pub fn oauth_error(e: OAuthErrorResponse) {
    let _ = e.aadsts();
    let _ = e.summary();
    let class = errors::classify(&e);
    let err = errors::to_error("fuzzing", e, Some(400));
    match class {
        errors::Classification::Reauthorize(_) => {
            assert_eq!(err.kind(), ErrorKind::ReauthorizationRequired);
            assert!(err.evidence().reauth_reason.is_some());
        }
        _ => assert!(err.evidence().reauth_reason.is_none()),
    }
    diagnose_all(&err);
}

// ----- id_token ----------------------------------------------------------------------------------

/// An id_token as received, checked against `client_id` and `nonce`, then matched to `expected`.
pub fn id_token(jwt: &str, client_id: &str, nonce: Option<&str>, expected: &str) {
    let _ = identity::jwt_payload(jwt);
    let secret = SecretString::from(jwt.to_string());
    match identity::read_id_token(&secret, client_id, nonce) {
        Ok(id) => {
            let _ = identity::check_identity(&id, expected, &[expected.to_uppercase()]);
        }
        Err(err) => {
            assert_no_secret(&err, &[jwt], "id_token");
            diagnose_all(&err);
        }
    }
}

/// The claims of an id_token as JSON, wrapped in a JWT as a provider would send it.
pub fn id_token_claims(claims: &[u8], client_id: &str, nonce: Option<&str>, expected: &str) {
    use base64::Engine;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwt = format!(
        "{}.{}.c2lnbmF0dXJl",
        e.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        e.encode(claims)
    );
    id_token(&jwt, client_id, nonce, expected);
}

// ----- the loopback redirect -------------------------------------------------------------------

/// A request head sent to the browser flow's loopback listener waiting on `/` (or `/cb`) for
/// `state`, read by `browser::parse_redirect` as the listener reads each request, and the page the
/// listener answers it with.
pub fn loopback_request(head: &[u8], expected_path: &str, state: &str) {
    let page = match parse_redirect(head, expected_path, state) {
        Redirect::Code(code) => {
            // Only a GET of the expected path (with the expected state) may end the wait.
            let text = String::from_utf8_lossy(head);
            let target = text
                .strip_prefix("GET ")
                .and_then(|t| t.split([' ', '?']).next());
            assert_eq!(target, Some(expected_path), "a code from another request");
            assert!(!code.expose_secret().is_empty());
            LoopbackPage::Done
        }
        Redirect::Error(e) => {
            // The provider's error redirect.
            assert!(String::from_utf8_lossy(head).starts_with("GET /"));
            let err = errors::to_error("signing in in the browser", e, None);
            diagnose_all(&err);
            // The failure page shows the catalog's texts for the error, never the provider's.
            LoopbackPage::failed(&err)
        }
        Redirect::WrongState => LoopbackPage::WrongState,
        Redirect::NotFound => LoopbackPage::NotFound,
        Redirect::BadRequest => LoopbackPage::BadRequest,
    };
    for lang in [Language::En, Language::De] {
        let page = page.render(lang);
        assert!(
            !page.contains("<script"),
            "provider text not escaped: {page}"
        );
    }
}
