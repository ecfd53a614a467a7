//! The one error type that leaves core.
//!
//! Every error has a [`ErrorKind`] (which maps to a C ABI status group), a message that names what
//! was being done and never contains a secret, and the raw [`Evidence`] it was built from (provider
//! error fields, HTTP status, server reply) so diagnostics can explain it and support staff can quote
//! trace and correlation ids.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::oauth::errors::{OAuthErrorResponse, ReauthReason};

/// What kind of failure this is. Stable; the C ABI maps each kind to a status code group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The caller passed something invalid (bad JSON, a missing field, an unknown option).
    InvalidArgument,
    /// The named account or registration does not exist.
    NotFound,
    /// The call is not possible in the current state (e.g. no tokens: not connected).
    State,
    /// The sign-in must be done again interactively (refresh token expired or revoked, consent withdrawn, MFA required).
    ReauthorizationRequired,
    /// The provider refused the request because of how the app or tenant is configured (unknown app, bad secret, redirect URI).
    ProviderConfiguration,
    /// The user refused, or signed in with the wrong account.
    AuthorizationDenied,
    /// The provider or a proxy answered with an error or something unreadable (5xx, throttling, HTML pages, truncated JSON).
    ProviderUnavailable,
    /// Connecting failed: DNS, refused, reset, proxy.
    Network,
    /// TLS handshake or certificate verification failed.
    Tls,
    /// A mail server refused or failed.
    MailServer,
    /// The token store failed (locked, corrupt, wrong key, I/O).
    Store,
    /// The operation was cancelled by the caller.
    Cancelled,
    /// The operation took longer than its configured limit.
    Timeout,
    /// A bug in mailconnect.
    Internal,
}

/// Raw evidence behind an error, free of secrets.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Evidence {
    /// The OAuth error response (Microsoft's `error`, `error_codes`, `suberror`, trace and correlation ids).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthErrorResponse>,
    /// HTTP status of the response the error came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The server asked us to wait this long (`Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// A short excerpt of what a server sent (reply line, HTML title), sanitized.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_reply: Option<String>,
    /// The decoded SASL error challenge a mail server sent (e.g. `{"status":"401","schemes":"bearer"}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasl_challenge: Option<String>,
    /// The input field an invalid-argument error is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Why a re-authorization is needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reauth_reason: Option<ReauthReason>,
    /// The endpoint or host involved (never with query strings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// The error type of mailconnect core.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    evidence: Box<Evidence>,
}

/// Result alias for core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The longest error message (bytes). A message that quotes a huge input is cut, and says so.
pub const MAX_MESSAGE: usize = 4096;

/// `text` (an input quoted in a message) cut to about 200 characters, marked when cut: a host that
/// passes a megabyte gets a readable error, not its megabyte back.
pub fn quote(text: &str) -> String {
    const MAX: usize = 200;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut cut = MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… [cut: {} bytes in all]", &text[..cut], text.len())
}

fn capped(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let total = message.len();
        let mut cut = MAX_MESSAGE - 64;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str(&format!("… [cut: {total} bytes in all]"));
    }
    message
}

impl Error {
    /// A new error of `kind` with a message (which must not contain secrets). Messages longer than
    /// [`MAX_MESSAGE`] are cut.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: capped(message.into()),
            evidence: Box::default(),
        }
    }

    /// An invalid-argument error about `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let mut e = Error::new(ErrorKind::InvalidArgument, message);
        e.evidence.field = Some(field);
        e
    }

    /// A not-found error.
    pub fn not_found(what: &str, id: &str) -> Self {
        Error::new(
            ErrorKind::NotFound,
            format!("{what} '{}' does not exist", quote(id)),
        )
    }

    /// A store error.
    pub fn store(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Store, message)
    }

    /// An internal error (a bug).
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }

    /// The operation was cancelled.
    pub fn cancelled(what: &str) -> Self {
        Error::new(ErrorKind::Cancelled, format!("{what} was cancelled"))
    }

    /// The operation timed out.
    pub fn timeout(what: &str, after: Duration) -> Self {
        Error::new(
            ErrorKind::Timeout,
            format!("{what} timed out after {} s", after.as_secs()),
        )
    }

    /// Attach evidence.
    pub fn with_evidence(mut self, f: impl FnOnce(&mut Evidence)) -> Self {
        f(&mut self.evidence);
        self
    }

    /// Prefix the message with what was being done ("refreshing token for account 'sales': ...").
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = capped(format!("{what}: {}", self.message));
        self
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message (no secrets).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The evidence.
    pub fn evidence(&self) -> &Evidence {
        &self.evidence
    }

    /// Why a re-authorization is needed, if that is what this error says.
    pub fn reauth_reason(&self) -> Option<ReauthReason> {
        self.evidence.reauth_reason
    }

    /// The diagnostic as JSON: the catalog entry (stable code, category, who fixes it, title,
    /// explanation and fix in every language, links), the kind, the message and the evidence
    /// (the C ABI's `mc_last_error_diagnostic`).
    pub fn diagnostic_json(&self) -> serde_json::Value {
        self.diagnostic_json_with(crate::diagnose::Context::default())
    }

    /// As [`Error::diagnostic_json`] with more context (from a Test run).
    pub fn diagnostic_json_with(&self, ctx: crate::diagnose::Context) -> serde_json::Value {
        let d = crate::diagnose::diagnose(self, ctx);
        serde_json::json!({
            "code": d.code,
            "category": d.category,
            "fixer": d.fixer,
            "kind": self.kind,
            "message": self.message,
            "evidence": &*self.evidence,
            "en": d.en,
            "de": d.de,
            "links": d.links,
        })
    }

    /// Whether retrying later may succeed without any change (network, 5xx, throttling).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Network | ErrorKind::ProviderUnavailable | ErrorKind::Timeout
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(o) = &self.evidence.oauth {
            if let Some(t) = &o.trace_id {
                write!(f, " (trace id {t}")?;
                if let Some(c) = &o.correlation_id {
                    write!(f, ", correlation id {c}")?;
                }
                f.write_str(")")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        let busy = matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        if busy {
            Error::store(format!(
                "the token store is locked by another process for too long: {e}"
            ))
        } else {
            Error::store(format!("token store: {e}"))
        }
    }
}
