//! Microsoft Graph's error shape and response plumbing: every answer carries `request-id` and
//! `client-request-id` headers; every error is
//! `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Graph's JSON content type.
pub(crate) const JSON_TYPE: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// The text of 403 ErrorAccessDenied for a missing permission or mailbox right.
pub(crate) const ACCESS_DENIED: &str = "Access is denied. Check credentials and try again.";

/// The text of 403 ErrorAccessDenied for a mailbox outside the app's access policy.
pub(crate) const RAOP: &str =
    "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.";

/// The request and client request ids of one request.
#[derive(Debug, Clone)]
pub(crate) struct RequestIds {
    pub request_id: String,
    pub client_request_id: String,
}

impl RequestIds {
    /// A fresh `request-id`; `client-request-id` echoes the client's header when it sent one.
    pub fn new(headers: &HeaderMap) -> RequestIds {
        let request_id = uuid::Uuid::new_v4().to_string();
        let client_request_id = headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 200)
            .map(str::to_string)
            .unwrap_or_else(|| request_id.clone());
        RequestIds {
            request_id,
            client_request_id,
        }
    }

    /// The request's answer: the response stamped with the ids, or the error in Graph's shape.
    pub fn answer(&self, r: Result<Response, GraphError>) -> Response {
        match r {
            Ok(r) => self.stamp(r),
            Err(e) => e.into_response(self),
        }
    }

    /// Put the id headers on a response.
    pub fn stamp(&self, mut r: Response) -> Response {
        let h = r.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            h.insert("request-id", v);
        }
        if let Ok(v) = HeaderValue::from_str(&self.client_request_id) {
            h.insert("client-request-id", v);
        }
        h.insert(
            "x-ms-ags-diagnostic",
            HeaderValue::from_static(
                r#"{"ServerInfo":{"DataCenter":"Sandbox","Slice":"E","Ring":"5","ScaleUnit":"000","RoleInstance":"SANDBOX"}}"#,
            ),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        r
    }
}

/// A Graph error answer.
#[derive(Debug, Clone)]
pub(crate) struct GraphError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub headers: Vec<(HeaderName, String)>,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> GraphError {
        GraphError {
            status,
            code: code.to_string(),
            message: message.into(),
            headers: vec![],
        }
    }

    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> GraphError {
        self.headers.push((name, value.into()));
        self
    }

    /// The JSON body.
    pub fn body(&self, ids: &RequestIds) -> serde_json::Value {
        let date = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]"
            ))
            .unwrap_or_default();
        serde_json::json!({"error": {
            "code": self.code,
            "message": self.message,
            "innerError": {
                "date": date,
                "request-id": ids.request_id,
                "client-request-id": ids.client_request_id,
            }
        }})
    }

    /// The HTTP answer.
    pub fn into_response(self, ids: &RequestIds) -> Response {
        let mut r = json(self.status, &self.body(ids), ids);
        for (name, value) in &self.headers {
            if let Ok(v) = HeaderValue::from_str(value) {
                r.headers_mut().insert(name.clone(), v);
            }
        }
        r
    }
}

/// A JSON answer with Graph's content type and the id headers.
pub(crate) fn json(status: StatusCode, body: &serde_json::Value, ids: &RequestIds) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_TYPE));
    ids.stamp(r)
}

/// An answer without a body (202 Accepted, 204 No Content).
pub(crate) fn empty(status: StatusCode, ids: &RequestIds) -> Response {
    let mut r = (status, Body::empty()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    ids.stamp(r)
}

// --- the catalog ---------------------------------------------------------------------------

/// 401 InvalidAuthenticationToken with Graph's `WWW-Authenticate` challenge.
pub(crate) fn invalid_token(base_url: &str, message: &str) -> GraphError {
    GraphError::new(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        message,
    )
    .header(
        header::WWW_AUTHENTICATE,
        format!(
            "Bearer realm=\"\", authorization_uri=\"{base_url}/common/oauth2/authorize\", client_id=\"{}\"",
            super::GRAPH_APP_ID
        ),
    )
}

/// 403 ErrorAccessDenied.
pub(crate) fn access_denied() -> GraphError {
    GraphError::new(StatusCode::FORBIDDEN, "ErrorAccessDenied", ACCESS_DENIED)
}

/// 403 ErrorAccessDenied for a mailbox outside the application access policy.
pub(crate) fn raop() -> GraphError {
    GraphError::new(StatusCode::FORBIDDEN, "ErrorAccessDenied", RAOP)
}

/// 404 ErrorItemNotFound.
pub(crate) fn item_not_found() -> GraphError {
    GraphError::new(
        StatusCode::NOT_FOUND,
        "ErrorItemNotFound",
        "The specified object was not found in the store.",
    )
}

/// 400 ErrorInvalidIdMalformed.
pub(crate) fn malformed_id() -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "ErrorInvalidIdMalformed",
        "Id is malformed.",
    )
}

/// 404 ErrorInvalidUser.
pub(crate) fn invalid_user(user: &str) -> GraphError {
    GraphError::new(
        StatusCode::NOT_FOUND,
        "ErrorInvalidUser",
        format!("The requested user '{user}' is invalid."),
    )
}

/// 404 MailboxNotEnabledForRESTAPI.
pub(crate) fn rest_disabled() -> GraphError {
    GraphError::new(
        StatusCode::NOT_FOUND,
        "MailboxNotEnabledForRESTAPI",
        "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
    )
}

/// 400 BadRequest.
pub(crate) fn bad_request(message: impl Into<String>) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
}

/// 400 BadRequest for a body that is not JSON.
pub(crate) fn unreadable_json() -> GraphError {
    bad_request("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
}

/// 413 for a request body over the limit.
pub(crate) fn request_too_large(limit: usize) -> GraphError {
    GraphError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        format!(
            "The maximum request length supported is {}MB.",
            limit / (1024 * 1024)
        ),
    )
}

/// 400 ErrorMessageSizeExceeded.
pub(crate) fn message_size_exceeded() -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "ErrorMessageSizeExceeded",
        "The message exceeds the maximum supported size., Cannot save changes made to an item to store.",
    )
}

/// 400 ErrorMimeContentInvalidBase64String.
pub(crate) fn invalid_base64() -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "ErrorMimeContentInvalidBase64String",
        "Invalid base64 string for MIME content.",
    )
}

/// 400 ErrorMimeContentInvalid.
pub(crate) fn invalid_mime() -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "ErrorMimeContentInvalid",
        "The MIME content is invalid.",
    )
}

/// 400 ErrorInvalidRecipients.
pub(crate) fn invalid_recipients(detail: &str) -> GraphError {
    GraphError::new(
        StatusCode::BAD_REQUEST,
        "ErrorInvalidRecipients",
        format!("At least one recipient isn't valid., {detail}"),
    )
}

/// 403 ErrorSendAsDenied.
pub(crate) fn send_as_denied() -> GraphError {
    GraphError::new(
        StatusCode::FORBIDDEN,
        "ErrorSendAsDenied",
        "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account., Cannot submit message.",
    )
}

/// 503 when the mail stack cannot be reached (or was never connected).
pub(crate) fn store_unavailable(detail: &str) -> GraphError {
    GraphError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "ErrorMailboxStoreUnavailable",
        format!("The mailbox database is temporarily unavailable. ({detail})"),
    )
}

/// 500 for an unexpected answer of the mail stack.
pub(crate) fn internal(detail: &str) -> GraphError {
    GraphError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ErrorInternalServerError",
        format!("An internal server error occurred. The operation failed. ({detail})"),
    )
}
