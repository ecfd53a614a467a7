//! Token endpoint requests and responses.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::errors::{self, Classification, OAuthErrorResponse};
use super::ClientAuth;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{self, HttpClient, HttpResponse};

/// Tokens granted by a token endpoint.
pub struct TokenGrant {
    /// The access token.
    pub access_token: SecretString,
    /// The refresh token, when one was issued.
    pub refresh_token: Option<SecretString>,
    /// The OpenID Connect id_token, when one was issued.
    pub id_token: Option<SecretString>,
    /// Lifetime of the access token.
    pub expires_in: Duration,
    /// Granted scopes (as the server reported them, else as requested).
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenGrant")
            .field("expires_in", &self.expires_in)
            .field("scopes", &self.scopes)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}

/// The token response as sent. The secrets are read straight into [`SecretString`]s, so they are
/// wiped when dropped, also when a later field fails to parse.
#[derive(Deserialize)]
struct RawGrant {
    access_token: SecretString,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    refresh_token: Option<SecretString>,
    #[serde(default)]
    id_token: Option<SecretString>,
    #[serde(default)]
    scope: Option<String>,
}

/// The outcome of one token endpoint call that got an answer.
pub enum Outcome {
    /// Tokens.
    Granted(TokenGrant),
    /// An OAuth error response (with the HTTP status).
    Refused(OAuthErrorResponse, u16),
}

/// Read a token endpoint response.
pub fn parse_response(
    url: &Url,
    resp: &HttpResponse,
    requested_scopes: &[String],
) -> Result<Outcome> {
    if resp.status == 200 {
        let raw: RawGrant = serde_json::from_slice(&resp.body).map_err(|e| {
            if resp.is_html() {
                http::unexpected(url, resp)
            } else {
                Error::new(
                    ErrorKind::ProviderUnavailable,
                    format!("{} answered a token response that could not be read (truncated or not JSON: {e})", http::endpoint(url)),
                )
                .with_code("MC-IDP-RESPONSE-UNREADABLE")
                .with_evidence(|ev| {
                    ev.http_status = Some(200);
                    ev.endpoint = Some(http::endpoint(url));
                })
            }
        })?;
        if let Some(tt) = &raw.token_type {
            if !tt.eq_ignore_ascii_case("bearer") {
                return Err(Error::new(ErrorKind::ProviderConfiguration, format!("the token endpoint issued a '{tt}' token; only Bearer tokens can be used for mail")));
            }
        }
        if raw.access_token.expose_secret().is_empty() {
            return Err(Error::new(
                ErrorKind::ProviderUnavailable,
                "the token endpoint answered an empty access token",
            ));
        }
        let expires_in = match &raw.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(3600);
        let scopes = match &raw.scope {
            Some(s) => s.split_whitespace().map(str::to_string).collect(),
            None => requested_scopes.to_vec(),
        };
        return Ok(Outcome::Granted(TokenGrant {
            access_token: raw.access_token,
            refresh_token: raw.refresh_token.filter(|s| !s.expose_secret().is_empty()),
            id_token: raw.id_token,
            expires_in: Duration::from_secs(expires_in),
            scopes,
        }));
    }
    if !resp.is_html() {
        if let Ok(e) = serde_json::from_slice::<OAuthErrorResponse>(&resp.body) {
            if !e.error.is_empty() {
                return Ok(Outcome::Refused(e, resp.status));
            }
        }
    }
    Err(http::unexpected(url, resp))
}

/// A token endpoint and how the client authenticates to it.
#[derive(Clone)]
pub struct TokenEndpoint<'a> {
    /// The HTTP client (a cheap clone: the client's network settings of the moment).
    pub http: HttpClient,
    /// The token endpoint URL.
    pub url: &'a Url,
    /// Client authentication.
    pub auth: ClientAuth<'a>,
}

impl TokenEndpoint<'_> {
    fn form<'f>(&'f self, mut form: Vec<(&'f str, &'f str)>) -> Vec<(&'f str, &'f str)> {
        form.push(("client_id", self.auth.client_id));
        if let Some(s) = self.auth.secret {
            form.push(("client_secret", s.expose_secret()));
        }
        form
    }
}

/// Retry policy for a token request.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// Also retry when the connection broke after the request may have been received (unsafe for code redemption).
    pub after_send_failure: bool,
    /// Longest single wait, including a server's `Retry-After`.
    pub max_wait: Duration,
}

impl Retry {
    /// For refresh and client credentials: a few attempts, safe to repeat.
    pub const IDEMPOTENT: Retry = Retry {
        attempts: 3,
        after_send_failure: true,
        max_wait: Duration::from_secs(30),
    };
    /// For single-use codes: retry only when the server said it did not process the request (429/503).
    pub const SINGLE_USE: Retry = Retry {
        attempts: 3,
        after_send_failure: false,
        max_wait: Duration::from_secs(30),
    };
}

/// POST a token request with the client authentication and retries, and return the grant or the
/// classified error. `what` names the operation for messages ("refreshing the token of account 'x'").
pub async fn request(
    ep: TokenEndpoint<'_>,
    form: Vec<(&str, &str)>,
    scopes: &[String],
    what: &str,
    retry: Retry,
    cancel: &CancellationToken,
) -> Result<TokenGrant> {
    let url = ep.url;
    let form = ep.form(form);
    let http = &ep.http;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = tokio::select! {
            r = http.post_form(url, &form, None) => r,
            _ = cancel.cancelled() => return Err(Error::cancelled(what)),
        };
        let (err, wait) = match result {
            Ok(resp) => match parse_response(url, &resp, scopes) {
                Ok(Outcome::Granted(g)) => return Ok(g),
                Ok(Outcome::Refused(e, status)) => {
                    let transient = status == 429
                        || status >= 500
                        || errors::classify(&e) == Classification::Transient;
                    let err = errors::to_error(what, e, Some(status)).with_evidence(|ev| {
                        ev.retry_after_secs = resp.retry_after.map(|d| d.as_secs());
                        ev.endpoint = Some(http::endpoint(url));
                    });
                    if !transient {
                        return Err(err);
                    }
                    (err, resp.retry_after)
                }
                Err(e) => {
                    let explicit = resp.status == 429 || resp.status == 503;
                    // A 4xx page that is not JSON (a proxy or firewall refusing the request) does
                    // not change in a second: report it at once.
                    let refused = (400..500).contains(&resp.status) && resp.status != 429;
                    if refused || !e.is_transient() || !(explicit || retry.after_send_failure) {
                        return Err(e.context(what));
                    }
                    (e.context(what), resp.retry_after)
                }
            },
            Err(e) => {
                let before_send = http::never_sent(&e);
                if !e.is_transient() || !(before_send || retry.after_send_failure) {
                    return Err(e.context(what));
                }
                (e.context(what), None)
            }
        };
        if attempt >= retry.attempts {
            return Err(err);
        }
        let backoff = Duration::from_millis(500 * (1 << (attempt - 1)));
        let wait = wait.unwrap_or(backoff).min(retry.max_wait);
        if wait >= retry.max_wait
            && err
                .evidence()
                .retry_after_secs
                .is_some_and(|s| s > retry.max_wait.as_secs())
        {
            // The server wants us gone for longer than we may wait: report now.
            return Err(err);
        }
        tracing::debug!(
            attempt,
            wait_ms = wait.as_millis() as u64,
            "{}; retrying",
            err.message()
        );
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = cancel.cancelled() => return Err(Error::cancelled(what)),
        }
    }
}

/// One token endpoint call without retries, returning OAuth error responses as values (device polling).
pub async fn call_once(
    ep: TokenEndpoint<'_>,
    form: Vec<(&str, &str)>,
    scopes: &[String],
) -> Result<Outcome> {
    let form = ep.form(form);
    let resp = ep.http.post_form(ep.url, &form, None).await?;
    parse_response(ep.url, &resp, scopes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn resp(status: u16, ct: &str, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            retry_after: None,
            content_type: ct.into(),
            body: Zeroizing::new(body.as_bytes().to_vec()),
        }
    }
    fn url() -> Url {
        Url::parse("https://login.example/t/oauth2/v2.0/token").unwrap()
    }

    #[test]
    fn a_grant_with_string_expiry_and_scopes() {
        let r = resp(
            200,
            "application/json",
            r#"{"token_type":"Bearer","access_token":"at","expires_in":"3599","refresh_token":"rt","scope":"a b"}"#,
        );
        let Outcome::Granted(g) = parse_response(&url(), &r, &[]).unwrap() else {
            panic!()
        };
        assert_eq!(g.expires_in, Duration::from_secs(3599));
        assert_eq!(g.scopes, vec!["a", "b"]);
        assert!(g.refresh_token.is_some());
        assert!(!format!("{g:?}").contains("at\""));
    }

    #[test]
    fn truncated_json_and_proxy_pages_are_reported_as_such() {
        let e = parse_response(
            &url(),
            &resp(
                200,
                "application/json",
                r#"{"token_type":"Bearer","access_tok"#,
            ),
            &[],
        )
        .err()
        .unwrap();
        assert_eq!(e.kind(), ErrorKind::ProviderUnavailable);
        assert!(e.message().contains("truncated"), "{}", e.message());
        let e = parse_response(
            &url(),
            &resp(403, "text/html", "<html><title>Blocked by proxy</title>"),
            &[],
        )
        .err()
        .unwrap();
        assert!(e.message().contains("HTML page"), "{}", e.message());
        assert_eq!(
            e.evidence().server_reply.as_deref(),
            Some("Blocked by proxy")
        );
    }

    #[test]
    fn oauth_errors_are_values() {
        let r = resp(
            400,
            "application/json",
            r#"{"error":"invalid_grant","error_description":"AADSTS50173: revoked","error_codes":[50173]}"#,
        );
        let Outcome::Refused(e, 400) = parse_response(&url(), &r, &[]).unwrap() else {
            panic!()
        };
        assert_eq!(e.aadsts(), Some(50173));
    }
}
