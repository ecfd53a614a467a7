//! Microsoft Graph's error answers (`{"error": {"code", "message", "innerError": {"request-id",
//! "date"}}}`) as diagnosed errors: the catalog code is chosen here, from Graph's `code` and the
//! HTTP status, where the answer is read.

use serde::Deserialize;
use url::Url;

use crate::error::{Error, ErrorKind, Result};
use crate::http::{self, HttpResponse};

#[derive(Deserialize)]
struct Envelope {
    error: GraphError,
}

#[derive(Deserialize, Default)]
struct GraphError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default, rename = "innerError")]
    inner: Option<Inner>,
}

#[derive(Deserialize, Default)]
struct Inner {
    #[serde(default, rename = "request-id")]
    request_id: Option<String>,
    #[serde(default)]
    date: Option<String>,
}

/// `Ok` when `resp` has one of the `expected` statuses, else the error it describes.
pub(crate) fn expect(url: &Url, resp: &HttpResponse, expected: &[u16], what: &str) -> Result<()> {
    if expected.contains(&resp.status) {
        return Ok(());
    }
    Err(error(url, resp, what))
}

/// The error a Graph answer describes.
pub(crate) fn error(url: &Url, resp: &HttpResponse, what: &str) -> Error {
    let body: Option<GraphError> = serde_json::from_slice::<Envelope>(&resp.body)
        .ok()
        .map(|e| e.error);
    let Some(g) = body else {
        // Not Graph's JSON: a proxy's page, a load balancer, an empty 5xx.
        let mut e = http::unexpected(url, resp);
        if resp.status == 429 || resp.status == 503 {
            e = e.with_code("MC-GRAPH-THROTTLED");
        } else if resp.status >= 500 {
            // A gateway's error page on the way to Graph: Graph is not reachable (not the
            // identity platform, which the bare kind would name).
            e = e.with_code("MC-GRAPH-UNAVAILABLE");
        }
        return e.context(what);
    };
    let (kind, code) = classify(resp.status, &g.code, &g.message);
    let request_id = g
        .inner
        .as_ref()
        .and_then(|i| i.request_id.clone())
        .map(|r| format!(", request-id {r}"))
        .unwrap_or_default();
    let date = g
        .inner
        .as_ref()
        .and_then(|i| i.date.clone())
        .map(|d| format!(" at {d}"))
        .unwrap_or_default();
    let reply = http::sanitize(&format!("{}: {}", g.code, g.message));
    let answered = if resp.status >= 500 {
        format!("Microsoft Graph failed {what} with a server error")
    } else {
        format!("Microsoft Graph refused {what}")
    };
    Error::new(
        kind,
        format!(
            "{answered} (HTTP {}, {reply}{request_id}{date})",
            resp.status
        ),
    )
    .with_code(code)
    .with_evidence(|ev| {
        ev.http_status = Some(resp.status);
        ev.retry_after_secs = resp.retry_after.map(|d| d.as_secs());
        ev.server_reply = Some(reply);
        ev.endpoint = Some(http::endpoint(url));
    })
}

/// The kind and catalog code of a Graph error: the rules are the diagnostics' table
/// (`diagnose::rules::GRAPH`), which the diagnostics reference lists.
fn classify(status: u16, code: &str, message: &str) -> (ErrorKind, &'static str) {
    crate::diagnose::rules::graph(status, code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            retry_after: None,
            content_type: "application/json".into(),
            body: zeroize::Zeroizing::new(body.as_bytes().to_vec()),
        }
    }

    #[test]
    fn graph_errors_get_their_codes() {
        let url = Url::parse("https://graph.microsoft.com/v1.0/me/sendMail?x=1").unwrap();
        let cases = [
            (
                403,
                r#"{"error":{"code":"ErrorAccessDenied","message":"Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings."}}"#,
                "MC-GRAPH-APP-ACCESS-POLICY",
            ),
            (
                403,
                r#"{"error":{"code":"ErrorAccessDenied","message":"Access is denied. Check credentials and try again."}}"#,
                "MC-GRAPH-ACCESS-DENIED",
            ),
            (
                404,
                r#"{"error":{"code":"MailboxNotEnabledForRESTAPI","message":"The mailbox is either inactive, soft-deleted, or is hosted on-premise."}}"#,
                "MC-GRAPH-MAILBOX-NOT-ENABLED",
            ),
            (
                404,
                r#"{"error":{"code":"ErrorItemNotFound","message":"The specified object was not found in the store."}}"#,
                "MC-GRAPH-NOT-FOUND",
            ),
            (
                401,
                r#"{"error":{"code":"InvalidAuthenticationToken","message":"Access token validation failure. Invalid audience."}}"#,
                "MC-GRAPH-TOKEN-REFUSED",
            ),
            (
                400,
                r#"{"error":{"code":"ErrorMimeContentInvalidBase64String","message":"Invalid base64 string for MIME content."}}"#,
                "MC-GRAPH-REQUEST-REFUSED",
            ),
            (
                413,
                r#"{"error":{"code":"RequestEntityTooLarge","message":"too large"}}"#,
                "MC-GRAPH-MESSAGE-TOO-LARGE",
            ),
            (
                429,
                r#"{"error":{"code":"ApplicationThrottled","message":"Application is over its MailboxConcurrency limit."}}"#,
                "MC-GRAPH-THROTTLED",
            ),
            (503, "", "MC-GRAPH-THROTTLED"),
            (
                504,
                r#"{"error":{"code":"UnknownError","message":""}}"#,
                "MC-GRAPH-UNAVAILABLE",
            ),
            (
                502,
                "<html><head><title>502 - Bad Gateway</title></head></html>",
                "MC-GRAPH-UNAVAILABLE",
            ),
            (500, "", "MC-GRAPH-UNAVAILABLE"),
        ];
        for (status, body, code) in cases {
            let e = error(&url, &resp(status, body), "sending mail");
            assert_eq!(e.code(), Some(code), "{status} {body}: {}", e.message());
            assert_eq!(e.evidence().http_status, Some(status));
            assert!(!e
                .evidence()
                .endpoint
                .as_deref()
                .unwrap_or("")
                .contains("x=1"));
        }
    }

    #[test]
    fn the_message_names_graphs_code_and_request_id() {
        let url = Url::parse("https://graph.microsoft.com/v1.0/me/sendMail").unwrap();
        let body = r#"{"error":{"code":"ErrorSendAsDenied","message":"The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account.","innerError":{"request-id":"5e1a-77","date":"2026-12-03T08:00:00"}}}"#;
        let e = error(&url, &resp(403, body), "sending mail");
        assert_eq!(e.code(), Some("MC-SEND-AS-DENIED"));
        assert!(e.message().contains("ErrorSendAsDenied"), "{}", e.message());
        assert!(
            e.message().contains("request-id 5e1a-77"),
            "{}",
            e.message()
        );
    }
}
