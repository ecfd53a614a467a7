//! Microsoft's error shapes: the token-endpoint JSON (`error`, `error_description` with the
//! AADSTS text, `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`, `suberror`)
//! and the AADSTS catalog the emulator uses. Texts are written in our own words, close to the
//! meaning of Microsoft's.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use time::macros::format_description;
use time::OffsetDateTime;

/// Microsoft's timestamp format in error bodies: `2026-11-23 10:01:02Z`.
pub fn timestamp_now() -> String {
    OffsetDateTime::now_utc()
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
}

/// An OAuth error as the identity platform reports it.
#[derive(Debug, Clone)]
pub struct AadError {
    /// HTTP status (400 for most, 401 for `invalid_client`).
    pub status: StatusCode,
    /// The OAuth `error` value.
    pub error: &'static str,
    /// AADSTS number, if any.
    pub code: Option<u32>,
    /// The sentence after `AADSTSnnnn: `.
    pub message: String,
    /// `suberror` (`consent_required`, `basic_action`, `bad_token`, ...).
    pub suberror: Option<&'static str>,
}

impl AadError {
    /// An error with HTTP 400.
    pub fn new(error: &'static str, code: u32, message: impl Into<String>) -> AadError {
        AadError {
            status: StatusCode::BAD_REQUEST,
            error,
            code: Some(code),
            message: message.into(),
            suberror: None,
        }
    }

    /// An `invalid_client` error (HTTP 401).
    pub fn client(code: u32, message: impl Into<String>) -> AadError {
        AadError {
            status: StatusCode::UNAUTHORIZED,
            ..AadError::new("invalid_client", code, message)
        }
    }

    /// Set the suberror.
    pub fn suberror(mut self, s: &'static str) -> AadError {
        self.suberror = Some(s);
        self
    }

    /// Text with `AADSTSnnnn: ` in front.
    pub fn aadsts_text(&self) -> String {
        match self.code {
            Some(c) => format!("AADSTS{c}: {}", self.message),
            None => self.message.clone(),
        }
    }

    /// The JSON body Microsoft sends.
    pub fn to_json(&self, base_url: &str) -> serde_json::Value {
        let trace = uuid::Uuid::new_v4().to_string();
        let correlation = uuid::Uuid::new_v4().to_string();
        let ts = timestamp_now();
        let description = format!(
            "{} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {ts}",
            self.aadsts_text()
        );
        let mut v = serde_json::json!({
            "error": self.error,
            "error_description": description,
        });
        if let Some(c) = self.code {
            v["error_codes"] = serde_json::json!([c]);
        }
        v["timestamp"] = ts.into();
        v["trace_id"] = trace.into();
        v["correlation_id"] = correlation.into();
        if let Some(c) = self.code {
            v["error_uri"] = format!("{base_url}/error?code={c}").into();
        }
        if let Some(s) = self.suberror {
            v["suberror"] = s.into();
        }
        v
    }

    /// The HTTP response (JSON, no-store).
    pub fn into_response(self, base_url: &str) -> Response {
        json_response(self.status, &self.to_json(base_url))
    }
}

/// A JSON response with Microsoft's cache headers.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

// --- the catalog -------------------------------------------------------------------------------

/// 900144: a required parameter is missing.
pub fn missing_parameter(name: &str) -> AadError {
    AadError::new(
        "invalid_request",
        900144,
        format!("The request body must contain the following parameter: '{name}'."),
    )
}

/// 90002: the `{tenant}` segment names no known tenant.
pub fn tenant_not_found(segment: &str) -> AadError {
    AadError::new(
        "invalid_tenant",
        90002,
        format!("Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."),
    )
}

/// 700016: the client id is not known in the directory.
pub fn app_not_found(client_id: &str, directory: &str) -> AadError {
    AadError::new(
        "unauthorized_client",
        700016,
        format!("Application with identifier '{client_id}' was not found in the directory '{directory}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."),
    )
}

/// 50194: single-tenant app used through `/common` or `/organizations`.
pub fn not_multi_tenant(client_id: &str, name: &str) -> AadError {
    AadError::new(
        "invalid_request",
        50194,
        format!("Application '{client_id}'({name}) is not configured as a multi-tenant application. Usage of the /common endpoint is not supported for such applications created after '10/15/2018'. Use a tenant-specific endpoint or configure the application to be multi-tenant."),
    )
}

/// 9002332: work/school-only app used through `/consumers`.
pub fn not_for_consumers(client_id: &str, name: &str) -> AadError {
    AadError::new(
        "invalid_request",
        9002332,
        format!("Application '{client_id}'({name}) is configured for use by Azure Active Directory users only. Please do not use the /consumers endpoint to serve this request."),
    )
}

/// 50011: redirect URI not registered.
pub fn redirect_mismatch(redirect_uri: &str, client_id: &str) -> AadError {
    AadError::new(
        "invalid_request",
        50011,
        format!("The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this."),
    )
}

/// 7000218: confidential client without credentials.
pub fn client_credentials_missing() -> AadError {
    AadError::client(
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    )
}

/// 700025: public client sent credentials.
pub fn public_client_sent_secret() -> AadError {
    AadError::client(
        700025,
        "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
    )
}

/// 7000215: wrong secret.
pub fn invalid_client_secret(client_id: &str) -> AadError {
    AadError::client(
        7000215,
        format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."),
    )
}

/// 7000222: expired secret.
pub fn client_secret_expired(client_id: &str) -> AadError {
    AadError::client(
        7000222,
        format!("The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."),
    )
}

/// 65001: no consent.
pub fn consent_required(client_id: &str, name: &str) -> AadError {
    AadError::new(
        "invalid_grant",
        65001,
        format!("The user or administrator has not consented to use the application with ID '{client_id}' named '{name}'. Send an interactive authorization request for this user and resource."),
    )
    .suberror("consent_required")
}

/// 50076: MFA required.
pub fn mfa_required() -> AadError {
    AadError::new(
        "invalid_grant",
        50076,
        "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '00000002-0000-0ff1-ce00-000000000000'.",
    )
    .suberror("basic_action")
}

/// 53003: Conditional Access block.
pub fn conditional_access_blocked(error: &'static str) -> AadError {
    AadError::new(
        error,
        53003,
        "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
    )
    .suberror("message_only")
}

/// 700082: refresh token expired through inactivity.
pub fn refresh_token_inactive(issued: &str, inactive_days: u64) -> AadError {
    AadError::new(
        "invalid_grant",
        700082,
        format!("The refresh token has expired due to inactivity. The token was issued on {issued} and was inactive for {inactive_days}.00:00:00."),
    )
}

/// 70008: code or refresh token expired.
pub fn grant_expired() -> AadError {
    AadError::new(
        "invalid_grant",
        70008,
        "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
    )
}

/// 50173: grant revoked (password change, revoked sessions).
pub fn refresh_token_revoked(issued: &str, valid_from: &str) -> AadError {
    AadError::new(
        "invalid_grant",
        50173,
        format!("The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{issued}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{valid_from}'."),
    )
    .suberror("bad_token")
}

/// 54005: code already redeemed.
pub fn code_redeemed() -> AadError {
    AadError::new(
        "invalid_grant",
        54005,
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
    )
}

/// 501481: PKCE verifier mismatch.
pub fn pkce_mismatch() -> AadError {
    AadError::new(
        "invalid_grant",
        501481,
        "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
    )
}

/// 9002313: malformed request / unknown grant.
pub fn malformed(detail: &str) -> AadError {
    AadError::new(
        "invalid_grant",
        9002313,
        format!("Invalid request. Request is malformed or invalid. {detail}"),
    )
}

/// 70000: grant invalid.
pub fn grant_invalid(detail: &str) -> AadError {
    AadError::new(
        "invalid_grant",
        70000,
        format!("Provided grant is invalid or malformed. {detail}"),
    )
}

/// 70003: unsupported grant type.
pub fn unsupported_grant(grant: &str) -> AadError {
    AadError::new(
        "unsupported_grant_type",
        70003,
        format!("The app requested an unsupported grant type '{grant}'."),
    )
}

/// 9001023: grant type not allowed on `/common` or `/consumers`.
pub fn grant_needs_tenant() -> AadError {
    AadError::new(
        "unsupported_grant_type",
        9001023,
        "The grant type isn't supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
    )
}

/// 700022: scopes of several resources on the token leg.
pub fn multiple_resources(scope: &str) -> AadError {
    AadError::new(
        "invalid_scope",
        700022,
        format!("The provided value for the input parameter scope is not valid because it contains more than one resource. Scope {scope} is not valid."),
    )
}

/// 70011: invalid scope (e.g. `.default` mixed with named scopes).
pub fn invalid_scope(scope: &str) -> AadError {
    AadError::new(
        "invalid_scope",
        70011,
        format!("The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."),
    )
}

/// 1002012: client credentials need `<resource>/.default`.
pub fn client_credentials_scope(scope: &str) -> AadError {
    AadError::new(
        "invalid_scope",
        1002012,
        format!("The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."),
    )
}

/// 500011: resource principal unknown.
pub fn resource_not_found(resource: &str, tenant: &str) -> AadError {
    AadError::new(
        "invalid_resource",
        500011,
        format!("The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."),
    )
}

/// 650053: scope does not exist on the resource.
pub fn scope_not_on_resource(app: &str, scope: &str, resource: &str) -> AadError {
    AadError::new(
        "invalid_client",
        650053,
        format!("The application '{app}' asked for scope '{scope}' that doesn't exist on the resource '{resource}'. Contact the app vendor."),
    )
}

/// 70016: device flow still pending.
pub fn authorization_pending() -> AadError {
    AadError::new(
        "authorization_pending",
        70016,
        "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
    )
}

/// 70019: device code expired.
pub fn device_code_expired() -> AadError {
    AadError::new("expired_token", 70019, "Verification code expired.")
}

/// 70018: unknown device code.
pub fn bad_verification_code() -> AadError {
    AadError::new(
        "bad_verification_code",
        70018,
        "Invalid verification code due to user typing in wrong user code for device code flow.",
    )
}

/// The user declined the device sign-in.
pub fn authorization_declined() -> AadError {
    AadError::new(
        "authorization_declined",
        70000,
        "The end user denied the authorization request on the device login page.",
    )
}

/// RFC 8628 `slow_down` (Microsoft documents no AADSTS number for it).
pub fn slow_down(interval: u64) -> AadError {
    AadError {
        status: StatusCode::BAD_REQUEST,
        error: "slow_down",
        code: None,
        message: format!("The client is polling too frequently. Wait at least {interval} seconds between token requests for this device code."),
        suberror: None,
    }
}

/// Text for the `/error?code=N` page.
pub fn describe_code(code: u32) -> &'static str {
    match code {
        50011 => {
            "The redirect URI in the request does not match a redirect URI registered for the app."
        }
        50020 => "The user account does not exist in the tenant and cannot access the application.",
        50057 => "The user account is disabled.",
        50076 => "Multi-factor authentication is required.",
        50126 => "Invalid username or password.",
        50173 => "The grant was revoked (password change or revoked sessions).",
        50194 => "The application is not multi-tenant; use a tenant-specific endpoint.",
        53003 => "Access has been blocked by Conditional Access policies.",
        54005 => "The authorization code was already redeemed.",
        65001 => "The user or administrator has not consented to use the application.",
        65004 => "The user declined to consent to access the app.",
        70008 => "The authorization code or refresh token has expired.",
        70011 => "The scope is not valid.",
        700016 => "The application was not found in the directory.",
        700022 => "The scope names more than one resource.",
        700025 => "The client is public; no client secret or assertion may be presented.",
        700082 => "The refresh token has expired due to inactivity.",
        7000215 => "Invalid client secret provided.",
        7000218 => "The request must contain 'client_assertion' or 'client_secret'.",
        7000222 => "The client secret has expired.",
        90094 => "Administrator approval is required.",
        501481 => "The code verifier does not match the code challenge.",
        _ => "See the AADSTS error code reference.",
    }
}
