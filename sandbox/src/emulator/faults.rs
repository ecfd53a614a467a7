//! Failure switches: rules that make the emulator answer the way Microsoft (or the network in
//! between) does when things go wrong.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::errors::{json_response, AadError};

/// What goes wrong. JSON: `{"fault": "throttled", "retry_after_secs": 2}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum Fault {
    /// AADSTS65001 (`consent_required`). At authorize the consent page says admin approval is
    /// needed (AADSTS90094); at refresh: `invalid_grant` with suberror `consent_required`.
    ConsentRequired,
    /// AADSTS700016: the app is not in the directory (authorize error page; token/devicecode JSON).
    AppNotFound,
    /// AADSTS7000215 at the token endpoint.
    InvalidClientSecret,
    /// AADSTS7000222 at the token endpoint.
    ClientSecretExpired,
    /// AADSTS50076: MFA step forced at authorize; `invalid_grant` + suberror `basic_action` at refresh.
    MfaRequired,
    /// AADSTS53003: `access_denied` redirect at authorize; `invalid_grant` at refresh.
    ConditionalAccessBlocked,
    /// AADSTS50011: error page at authorize; `invalid_request` when a code is redeemed.
    RedirectUriMismatch,
    /// AADSTS700082 at refresh.
    RefreshTokenExpired,
    /// AADSTS50173 (suberror `bad_token`) at refresh.
    RefreshTokenRevoked,
    /// AADSTS65004 at authorize (the user cancels); `authorization_declined` in the device flow.
    UserDeclined,
    /// HTTP 429 with `Retry-After`.
    Throttled {
        /// Seconds in `Retry-After`.
        retry_after_secs: u64,
    },
    /// Delay the answer (then answer normally).
    Slow {
        /// Delay in milliseconds.
        millis: u64,
    },
    /// HTTP 500 JSON `server_error`.
    ServerError,
    /// HTTP 503 with an HTML body, as a load balancer sends.
    ServiceUnavailable,
    /// Close the connection without any response.
    DropConnection,
    /// HTTP 403 with a corporate web proxy's HTML page.
    ProxyHtmlPage,
    /// A 200 token response cut in the middle of the JSON.
    TruncatedJson,
    /// HTTP 502 with a corporate proxy's HTML page (the proxy could not reach the server).
    ProxyBadGateway,
    /// A 200 token response whose connection is closed half-way through the body (the tokens
    /// were issued; the client never gets them whole).
    DropMidBody,
    /// Code redemption: `invalid_grant` AADSTS54005, the code was already redeemed.
    CodeRedeemed,
}

impl Fault {
    /// Faults that replace the whole HTTP exchange before the request is looked at.
    pub(crate) fn is_transport(&self) -> bool {
        matches!(
            self,
            Fault::Throttled { .. }
                | Fault::Slow { .. }
                | Fault::ServerError
                | Fault::ServiceUnavailable
                | Fault::DropConnection
                | Fault::ProxyHtmlPage
                | Fault::ProxyBadGateway
        )
    }
}

/// The endpoint a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `/oauth2/v2.0/authorize` and its sign-in pages.
    Authorize,
    /// `/oauth2/v2.0/token`.
    Token,
    /// `/oauth2/v2.0/devicecode`.
    Devicecode,
    /// `/introspect`.
    Introspect,
}

/// A fault and the requests it applies to. Every `Some` filter must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    /// What happens.
    #[serde(flatten)]
    pub fault: Fault,
    /// Only for this client id.
    #[serde(default)]
    pub app: Option<String>,
    /// Only for this user (UPN).
    #[serde(default)]
    pub user: Option<String>,
    /// Only at this endpoint.
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
    /// Only for this grant type (`refresh_token`, `authorization_code`, `client_credentials`,
    /// `device_code` or the full URN).
    #[serde(default)]
    pub grant_type: Option<String>,
    /// Apply this many times, then drop the rule; `None` = until cleared.
    #[serde(default)]
    pub times: Option<u32>,
}

impl FaultRule {
    /// A rule for every request.
    pub fn always(fault: Fault) -> FaultRule {
        FaultRule {
            fault,
            app: None,
            user: None,
            endpoint: None,
            grant_type: None,
            times: None,
        }
    }
}

/// What is known about a request when faults are looked up.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestFacts {
    pub endpoint: Option<Endpoint>,
    pub client_id: Option<String>,
    pub user: Option<String>,
    pub grant_type: Option<String>,
}

fn grant_matches(rule: &str, actual: &str) -> bool {
    let short = |g: &str| {
        g.strip_prefix("urn:ietf:params:oauth:grant-type:")
            .unwrap_or(g)
            .to_ascii_lowercase()
    };
    short(rule) == short(actual)
}

impl FaultRule {
    pub(crate) fn matches(&self, f: &RequestFacts) -> bool {
        let eq = |want: &Option<String>, have: &Option<String>| match (want, have) {
            (None, _) => true,
            (Some(w), Some(h)) => w.eq_ignore_ascii_case(h),
            (Some(_), None) => false,
        };
        if let Some(e) = self.endpoint {
            if f.endpoint != Some(e) {
                return false;
            }
        }
        if let Some(g) = &self.grant_type {
            match &f.grant_type {
                Some(h) if grant_matches(g, h) => {}
                _ => return false,
            }
        }
        eq(&self.app, &f.client_id) && eq(&self.user, &f.user)
    }
}

/// A rule with its remaining count.
#[derive(Debug, Clone)]
pub(crate) struct ActiveFault {
    pub rule: FaultRule,
    pub remaining: Option<u32>,
}

/// Find the first rule matching `facts` whose fault satisfies `want`, count it down, return it.
pub(crate) fn take(
    rules: &mut Vec<ActiveFault>,
    facts: &RequestFacts,
    want: impl Fn(&Fault) -> bool,
) -> Option<Fault> {
    let i = rules
        .iter()
        .position(|r| want(&r.rule.fault) && r.rule.matches(facts))?;
    let fault = rules[i].rule.fault.clone();
    if let Some(n) = rules[i].remaining.as_mut() {
        *n = n.saturating_sub(1);
        if *n == 0 {
            rules.remove(i);
        }
    }
    Some(fault)
}

/// Marker put into request extensions: firing it closes the connection without an answer.
#[derive(Clone)]
pub(crate) struct ConnectionKill(pub std::sync::Arc<tokio::sync::Notify>);

/// The response for a transport fault; `None` for `Slow` (the caller sleeps, then carries on).
pub(crate) async fn transport_response(
    fault: &Fault,
    base_url: &str,
    kill: Option<&ConnectionKill>,
    html: bool,
) -> Option<Response> {
    match fault {
        Fault::Slow { millis } => {
            tokio::time::sleep(Duration::from_millis(*millis)).await;
            None
        }
        Fault::Throttled { retry_after_secs } => {
            let mut r = if html {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    axum::response::Html(
                        "<!DOCTYPE html><html><head><title>Too many requests</title></head><body><h1>Too many requests</h1><p>AADSTS90055: The sign-in service is receiving too many requests. Try again later.</p></body></html>",
                    ),
                )
                    .into_response()
            } else {
                let mut e = AadError::new(
                    "temporarily_unavailable",
                    90055,
                    "The request was throttled because too many requests were received from this client or tenant. Retry after the time given in the Retry-After header.",
                );
                e.status = StatusCode::TOO_MANY_REQUESTS;
                e.into_response(base_url)
            };
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Some(r)
        }
        Fault::ServerError => {
            let mut e = AadError::new(
                "server_error",
                50000,
                "There was an error issuing a token or an issue with our sign-in service. Please try again.",
            );
            e.status = StatusCode::INTERNAL_SERVER_ERROR;
            Some(e.into_response(base_url))
        }
        Fault::ServiceUnavailable => Some(html_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>\n<body><h1>Service Unavailable</h1>\n<p>The server is temporarily unable to service your request due to maintenance downtime or capacity problems. Please try again later.</p>\n<hr><address>Front Door</address></body></html>\n",
        )),
        Fault::ProxyHtmlPage => Some(html_page(
            StatusCode::FORBIDDEN,
            "<!DOCTYPE html>\n<html><head><title>Access Denied - Corporate Web Gateway</title></head>\n<body style=\"font-family:sans-serif\"><h1>Access Denied</h1>\n<p>Your request to <b>login.microsoftonline.com</b> was blocked by the corporate web gateway according to the Internet usage policy of your organization.</p>\n<p>Category: Uncategorized URLs<br>Policy: Default outbound<br>If you believe this is an error, contact the IT service desk.</p>\n</body></html>\n",
        )),
        Fault::ProxyBadGateway => Some(html_page(
            StatusCode::BAD_GATEWAY,
            "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway - Corporate Web Gateway</title></head>\n<body style=\"font-family:sans-serif\"><h1>Bad Gateway</h1>\n<p>The web gateway could not connect to <b>login.microsoftonline.com</b>. The server may be down or unreachable from this network.</p>\n<p>Error code: 502 upstream connect error<br>If the problem persists, contact the IT service desk.</p>\n</body></html>\n",
        )),
        Fault::DropConnection => {
            if let Some(k) = kill {
                k.0.notify_one();
            }
            // The connection is being torn down; never answer.
            std::future::pending::<()>().await;
            None
        }
        _ => None,
    }
}

fn html_page(status: StatusCode, body: &'static str) -> Response {
    let mut r = (status, Body::from(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// A 200 JSON response with the full `Content-Length` whose connection is closed after half of
/// the body was sent.
pub(crate) fn cut_mid_body(body: &serde_json::Value, kill: Option<&ConnectionKill>) -> Response {
    let text = body.to_string();
    let half = bytes_of(&text[..text.len() / 2]);
    let kill = kill.cloned();
    let stream = futures_util::stream::unfold(0u8, move |step| {
        let (half, kill) = (half.clone(), kill.clone());
        async move {
            if step == 0 {
                return Some((Ok::<_, std::io::Error>(half), 1));
            }
            // Give the first half time to reach the client, then close the connection.
            tokio::time::sleep(Duration::from_millis(150)).await;
            if let Some(k) = kill {
                k.0.notify_one();
            }
            std::future::pending::<()>().await;
            None
        }
    });
    let mut r = json_response(StatusCode::OK, &serde_json::Value::Null);
    *r.body_mut() = Body::from_stream(stream);
    if let Ok(v) = HeaderValue::from_str(&text.len().to_string()) {
        r.headers_mut().insert(header::CONTENT_LENGTH, v);
    }
    r
}

fn bytes_of(s: &str) -> axum::body::Bytes {
    axum::body::Bytes::copy_from_slice(s.as_bytes())
}

/// A 200 JSON response cut in the middle.
pub(crate) fn truncated(body: &serde_json::Value) -> Response {
    let text = body.to_string();
    let cut = text.len() / 2;
    let part = text.as_bytes()[..cut].to_vec();
    let mut r = json_response(StatusCode::OK, &serde_json::Value::Null);
    *r.body_mut() = Body::from(part);
    r
}
