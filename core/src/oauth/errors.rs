//! OAuth 2.0 error responses (RFC 6749 §5.2) with Microsoft's extensions, and their classification.
//!
//! Microsoft warns that `error_description` texts and numeric codes may change and that code should
//! branch on `error`; we branch on `error` first and refine with `error_codes` and `suberror`
//! (MICROSOFT.md §1.1, §12.6).

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};

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

/// How an OAuth error response should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    /// Sign in again interactively; never retry automatically.
    Reauthorize(ReauthReason),
    /// The app registration or tenant configuration is wrong; an admin or the vendor must fix it.
    Configuration,
    /// The user declined or was denied.
    Denied,
    /// Retry later.
    Transient,
    /// A request the library should not have made; a bug or an unsupported provider.
    Request,
}

/// Classify an error response from a token request for an existing grant (refresh or code redemption).
pub fn classify(e: &OAuthErrorResponse) -> Classification {
    let code = e.aadsts();
    let sub = e.suberror.as_deref();
    match code {
        Some(700082) | Some(70008) | Some(700084) => {
            return Classification::Reauthorize(ReauthReason::RefreshTokenExpired)
        }
        Some(50173) => return Classification::Reauthorize(ReauthReason::RefreshTokenRevoked),
        Some(65001) | Some(90094) | Some(90095) => {
            return Classification::Reauthorize(ReauthReason::ConsentRequired)
        }
        Some(50076) | Some(50079) | Some(50074) | Some(50078) | Some(50158) => {
            return Classification::Reauthorize(ReauthReason::InteractionRequired)
        }
        Some(53003) | Some(53000) | Some(53001) | Some(530035) => {
            return Classification::Reauthorize(ReauthReason::ConditionalAccess)
        }
        Some(70043) => return Classification::Reauthorize(ReauthReason::SignInFrequency),
        Some(50057) => return Classification::Reauthorize(ReauthReason::AccountDisabled),
        Some(65004) => return Classification::Denied,
        Some(700016) | Some(700011) | Some(7000215) | Some(7000222) | Some(7000218)
        | Some(700025) | Some(50011) | Some(500113) | Some(50194) | Some(9002332)
        | Some(500011) | Some(650057) | Some(65005) | Some(650056) | Some(70011) | Some(700022)
        | Some(9001023) | Some(50105) | Some(500208) | Some(50020) => {
            return Classification::Configuration
        }
        Some(90055) | Some(50196) => return Classification::Transient,
        _ => {}
    }
    match (e.error.as_str(), sub) {
        (_, Some("consent_required")) => Classification::Reauthorize(ReauthReason::ConsentRequired),
        (_, Some("basic_action")) | (_, Some("additional_action")) | (_, Some("message_only")) => {
            Classification::Reauthorize(ReauthReason::InteractionRequired)
        }
        (_, Some("bad_token")) | (_, Some("token_expired")) => {
            Classification::Reauthorize(ReauthReason::RefreshTokenExpired)
        }
        ("invalid_grant", _) => Classification::Reauthorize(ReauthReason::RefreshTokenInvalid),
        ("interaction_required", _) | ("login_required", _) | ("consent_required", _) => {
            Classification::Reauthorize(ReauthReason::InteractionRequired)
        }
        ("access_denied", _) | ("authorization_declined", _) => Classification::Denied,
        ("invalid_client", _)
        | ("unauthorized_client", _)
        | ("invalid_scope", _)
        | ("unsupported_grant_type", _) => Classification::Configuration,
        ("temporarily_unavailable", _) | ("server_error", _) | ("slow_down", _) => {
            Classification::Transient
        }
        _ => Classification::Request,
    }
}

/// Build the core error for an OAuth error response received while doing `what`.
pub fn to_error(what: &str, e: OAuthErrorResponse, http_status: Option<u16>) -> Error {
    let class = classify(&e);
    let (kind, reason) = match class {
        Classification::Reauthorize(r) => (ErrorKind::ReauthorizationRequired, Some(r)),
        Classification::Configuration => (ErrorKind::ProviderConfiguration, None),
        Classification::Denied => (ErrorKind::AuthorizationDenied, None),
        Classification::Transient => (ErrorKind::ProviderUnavailable, None),
        Classification::Request => (ErrorKind::ProviderConfiguration, None),
    };
    let message = format!("{what}: the identity provider answered {}", e.summary());
    let field = (e.error == "invalid_request")
        .then(|| refused_parameter(e.error_description.as_deref().unwrap_or_default()))
        .flatten();
    Error::new(kind, message).with_evidence(|ev| {
        ev.oauth = Some(e);
        ev.http_status = http_status;
        ev.reauth_reason = reason;
        ev.field = field.map(String::from);
    })
}

/// The request parameter an `invalid_request` description names ("unsupported prompt value
/// requested" -> `prompt`), if it names one of those mailconnect sends.
fn refused_parameter(description: &str) -> Option<&'static str> {
    const PARAMS: [&str; 17] = [
        "code_challenge_method",
        "code_challenge",
        "code_verifier",
        "redirect_uri",
        "response_type",
        "response_mode",
        "client_id",
        "login_hint",
        "grant_type",
        "prompt",
        "scope",
        "nonce",
        "state",
        "resource",
        "claims",
        "code",
        "client_secret",
    ];
    let d = description.to_ascii_lowercase();
    let words: Vec<&str> = d
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    PARAMS.into_iter().find(|p| words.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_request_names_the_refused_parameter() {
        assert_eq!(
            refused_parameter("unsupported prompt value requested"),
            Some("prompt")
        );
        assert_eq!(
            refused_parameter("redirect_uri did not match any of the client's registered"),
            Some("redirect_uri")
        );
        assert_eq!(refused_parameter("something else"), None);
        let e = to_error(
            "signing in",
            OAuthErrorResponse {
                error: "invalid_request".into(),
                error_description: Some("unsupported prompt value requested".into()),
                ..Default::default()
            },
            None,
        );
        assert_eq!(e.evidence().field.as_deref(), Some("prompt"));
        assert_eq!(
            crate::diagnose::diagnose(&e, Default::default()).code,
            "MC-REQUEST-REFUSED"
        );
    }

    fn err(error: &str, codes: &[i64], sub: Option<&str>) -> OAuthErrorResponse {
        OAuthErrorResponse {
            error: error.into(),
            error_description: Some(format!(
                "AADSTS{}: text. Trace ID: x",
                codes.first().unwrap_or(&0)
            )),
            error_codes: codes.to_vec(),
            suberror: sub.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn refresh_token_failures_ask_for_reauthorization_with_the_reason() {
        use ReauthReason::*;
        for (codes, reason) in [
            (700082, RefreshTokenExpired),
            (70008, RefreshTokenExpired),
            (50173, RefreshTokenRevoked),
            (65001, ConsentRequired),
            (50076, InteractionRequired),
            (53003, ConditionalAccess),
            (70043, SignInFrequency),
            (50057, AccountDisabled),
        ] {
            assert_eq!(
                classify(&err("invalid_grant", &[codes], None)),
                Classification::Reauthorize(reason),
                "{codes}"
            );
        }
    }

    #[test]
    fn configuration_errors_are_not_reauthorization() {
        for c in [700016, 7000215, 7000222, 7000218, 700025, 50011] {
            assert_eq!(
                classify(&err("invalid_client", &[c], None)),
                Classification::Configuration,
                "{c}"
            );
        }
    }

    #[test]
    fn aadsts_code_is_read_from_the_description_when_error_codes_are_missing() {
        let e = OAuthErrorResponse {
            error: "invalid_grant".into(),
            error_description: Some(
                "AADSTS700082: The refresh token has expired.\r\nTrace ID: 1".into(),
            ),
            ..Default::default()
        };
        assert_eq!(e.aadsts(), Some(700082));
        assert_eq!(
            e.summary(),
            "AADSTS700082: The refresh token has expired. (invalid_grant)"
        );
    }

    #[test]
    fn unknown_invalid_grant_still_requires_reauthorization_and_server_errors_are_transient() {
        assert_eq!(
            classify(&err("invalid_grant", &[], None)),
            Classification::Reauthorize(ReauthReason::RefreshTokenInvalid)
        );
        assert_eq!(
            classify(&err("temporarily_unavailable", &[], None)),
            Classification::Transient
        );
    }
}
