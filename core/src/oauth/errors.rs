//! OAuth 2.0 error responses (RFC 6749 §5.2) with Microsoft's extensions, and their classification.
//!
//! Microsoft warns that `error_description` texts and numeric codes may change and that code should
//! branch on `error`; we branch on `error` first and refine with `error_codes` and `suberror`
//! (docs/provider-facts.md#branch-on-error).

pub use crate::diagnose::aadsts::Classification;
use crate::error::{Error, ErrorKind};
pub use crate::error::{OAuthErrorResponse, ReauthReason};

/// Classify an error response from a token request for an existing grant (refresh or code redemption).
pub fn classify(e: &OAuthErrorResponse) -> Classification {
    if let Some(handling) = e
        .aadsts()
        .and_then(crate::diagnose::aadsts::lookup)
        .and_then(|r| r.handling)
    {
        return handling;
    }
    let sub = e.suberror.as_deref();
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
