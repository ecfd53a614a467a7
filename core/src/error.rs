//! The one error type that leaves core.
//!
//! Every error has a [`ErrorKind`] (which maps to a C ABI status group), a message that names what
//! was being done and never contains a secret, and the raw [`Evidence`] it was built from (provider
//! error fields, HTTP status, server reply) so diagnostics can explain it and support staff can quote
//! trace and correlation ids.
//!
//! The diagnostic code (`MC-...`, see `diagnose`) is attached where an error is raised
//! ([`Error::with_code`]) when the kind and evidence alone do not determine it; nothing reads the
//! message to find it. This module is a leaf: it depends on nothing else in core.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

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
    /// Who issued a server certificate that was not trusted (`CN=…,O=…`): a TLS-inspecting
    /// proxy or firewall shows up here with its own CA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_issuer: Option<String>,
}

/// The error type of mailconnect core.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    code: Option<&'static str>,
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
            code: None,
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

    /// Name the diagnostic catalog entry (`MC-...`) that explains this error, where the raise
    /// site knows it better than the kind and evidence do (a test checks every code exists).
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The catalog code named where the error was raised, if any.
    pub fn code(&self) -> Option<&'static str> {
        self.code
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

/// Whether `e` or one of its sources is an I/O error saying the peer closed or reset the
/// connection (read by type, not by message).
pub fn is_closed_connection(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            );
        }
        cur = e.source();
    }
    false
}

/// An error body from a token, device-code or authorize endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct OAuthErrorResponse {
    /// The RFC 6749 error code (`invalid_grant`, `invalid_client`, ...).
    pub error: String,
    /// Human-readable text; Microsoft starts it with `AADSTSnnnnn:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// Microsoft: the numeric AADSTS codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_codes: Vec<i64>,
    /// Microsoft: a finer classification (`consent_required`, `basic_action`, `bad_token`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suberror: Option<String>,
    /// Microsoft: when the error happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Microsoft: quote this id in support cases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Microsoft: quote this id in support cases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// A page about the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

impl OAuthErrorResponse {
    /// The AADSTS code: the first of `error_codes`, else parsed from the description.
    pub fn aadsts(&self) -> Option<i64> {
        if let Some(c) = self.error_codes.first() {
            return Some(*c);
        }
        let d = self.error_description.as_deref()?;
        let rest = d.split("AADSTS").nth(1)?;
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse().ok()
    }

    /// The first line of the description, without Microsoft's trailing trace/correlation/timestamp lines.
    pub fn summary(&self) -> String {
        let d = self.error_description.as_deref().unwrap_or("");
        let first = d.split(['\r', '\n']).next().unwrap_or("");
        let cut = first
            .find(" Trace ID:")
            .map(|i| &first[..i])
            .unwrap_or(first);
        if cut.is_empty() {
            self.error.clone()
        } else {
            format!("{} ({})", cut.trim(), self.error)
        }
    }
}

/// Why an account must be authorized again interactively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReauthReason {
    /// The refresh token expired (inactivity, AADSTS700082 / 70008).
    RefreshTokenExpired,
    /// The grant was revoked (password change or admin revoke, AADSTS50173).
    RefreshTokenRevoked,
    /// Consent is missing or was withdrawn (AADSTS65001).
    ConsentRequired,
    /// Multi-factor authentication or another interaction is required (AADSTS50076, 50079, `interaction_required`).
    InteractionRequired,
    /// Blocked by Conditional Access (AADSTS53003, 53000).
    ConditionalAccess,
    /// The sign-in frequency policy ended the session (AADSTS70043).
    SignInFrequency,
    /// The user account is disabled (AADSTS50057).
    AccountDisabled,
    /// The refresh token is invalid for another reason.
    RefreshTokenInvalid,
    /// The provider issued no refresh token (e.g. `offline_access` missing), so the session cannot be extended.
    NoRefreshToken,
}

impl ReauthReason {
    /// A stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReauthReason::RefreshTokenExpired => "refresh_token_expired",
            ReauthReason::RefreshTokenRevoked => "refresh_token_revoked",
            ReauthReason::ConsentRequired => "consent_required",
            ReauthReason::InteractionRequired => "interaction_required",
            ReauthReason::ConditionalAccess => "conditional_access",
            ReauthReason::SignInFrequency => "sign_in_frequency",
            ReauthReason::AccountDisabled => "account_disabled",
            ReauthReason::RefreshTokenInvalid => "refresh_token_invalid",
            ReauthReason::NoRefreshToken => "no_refresh_token",
        }
    }
}

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
            .with_code("MC-STORE-LOCKED")
        } else {
            Error::store(format!("token store: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_connection_is_recognised_by_type_through_sources() {
        #[derive(Debug)]
        struct Wrapper(std::io::Error);
        impl fmt::Display for Wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("wrapped")
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let reset = Wrapper(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(is_closed_connection(&reset));
        let refused = Wrapper(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(!is_closed_connection(&refused));
        // The words do not matter, only the kind.
        let worded = std::io::Error::other("connection reset, closed, eof");
        assert!(!is_closed_connection(&worded));
    }
}
