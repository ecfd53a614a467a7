//! Every catalog entry is reached by at least one real-world evidence sample, and has both languages.

use std::collections::BTreeSet;

use super::*;
use crate::oauth::errors::{to_error, OAuthErrorResponse};

fn oauth(error: &str, code: i64, sub: Option<&str>, text: &str) -> Error {
    to_error(
        "refreshing the token",
        OAuthErrorResponse {
            error: error.into(),
            error_description: Some(format!("AADSTS{code}: {text} Trace ID: 0f4e Correlation ID: 9a1b Timestamp: 2026-11-23 10:00:00Z")),
            error_codes: vec![code],
            suberror: sub.map(Into::into),
            trace_id: Some("0f4e".into()),
            correlation_id: Some("9a1b".into()),
            ..Default::default()
        },
        Some(400),
    )
}

fn mail(reply: &str) -> Error {
    Error::new(
        ErrorKind::MailServer,
        format!("authentication was refused: {reply}"),
    )
    .with_evidence(|e| e.server_reply = Some(reply.into()))
}

/// What Microsoft Graph answered, as the Graph transport reads it.
fn graph(status: u16, code: &str, message: &str) -> Error {
    let url = url::Url::parse("https://graph.microsoft.com/v1.0/me/sendMail").expect("url");
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    let resp = crate::http::HttpResponse {
        status,
        retry_after: None,
        content_type: "application/json".into(),
        body: zeroize::Zeroizing::new(body.into_bytes()),
    };
    crate::graph::errors::error(&url, &resp, "sending the message")
}

fn kind(k: ErrorKind, msg: &str) -> Error {
    Error::new(k, msg)
}

fn samples() -> Vec<(Error, Context, &'static str)> {
    let none = Context::default();
    let other_ok = Context {
        other_protocol_accepted: true,
        ..Default::default()
    };
    let delegate = Context {
        delegate: true,
        ..Default::default()
    };
    vec![
        (oauth("invalid_grant", 65001, Some("consent_required"), "The user or administrator has not consented to use the application."), none, "MC-CONSENT-REQUIRED"),
        (oauth("interaction_required", 90094, None, "Admin consent is required."), none, "MC-ADMIN-CONSENT-REQUIRED"),
        (oauth("access_denied", 65004, None, "User declined to consent to access the app."), none, "MC-CONSENT-DECLINED"),
        (oauth("unauthorized_client", 700016, None, "Application with identifier 'x' was not found in the directory 'contoso'."), none, "MC-APP-NOT-FOUND"),
        (oauth("invalid_request", 50194, None, "Application 'x' is not configured as a multi-tenant application."), none, "MC-WRONG-AUTHORITY"),
        (oauth("invalid_client", 7000215, None, "Invalid client secret provided."), none, "MC-CLIENT-SECRET-INVALID"),
        (oauth("invalid_client", 7000222, None, "The provided client secret keys for app 'x' are expired."), none, "MC-CLIENT-SECRET-EXPIRED"),
        (oauth("invalid_client", 7000218, None, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."), none, "MC-PUBLIC-CLIENT-FLOWS-DISABLED"),
        (oauth("invalid_client", 700025, None, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented."), none, "MC-PUBLIC-CLIENT-SENT-SECRET"),
        (oauth("invalid_request", 50011, None, "The redirect URI 'http://localhost:5000/' specified in the request does not match."), none, "MC-REDIRECT-URI-MISMATCH"),
        (oauth("invalid_resource", 500011, None, "The resource principal named https://outlook.office.com was not found in the tenant."), none, "MC-EXCHANGE-NOT-AVAILABLE"),
        (oauth("invalid_client", 650057, None, "Invalid resource. The client has requested access to a resource which is not listed."), none, "MC-PERMISSIONS-NOT-CONFIGURED"),
        (oauth("invalid_grant", 50076, Some("basic_action"), "Due to a configuration change made by your administrator, you must use multi-factor authentication."), none, "MC-MFA-REQUIRED"),
        (oauth("invalid_grant", 53003, None, "Access has been blocked by Conditional Access policies."), none, "MC-CONDITIONAL-ACCESS-BLOCKED"),
        (oauth("invalid_grant", 530035, None, "Access has been blocked by security defaults."), none, "MC-SECURITY-DEFAULTS"),
        (oauth("invalid_grant", 700082, None, "The refresh token has expired due to inactivity."), none, "MC-REFRESH-TOKEN-EXPIRED"),
        (oauth("invalid_grant", 50173, Some("bad_token"), "The provided grant has expired due to it being revoked."), none, "MC-REFRESH-TOKEN-REVOKED"),
        (oauth("invalid_grant", 70043, None, "The refresh token has expired or is invalid due to sign-in frequency checks by conditional access."), none, "MC-SIGN-IN-FREQUENCY"),
        (oauth("invalid_grant", 50057, None, "The user account is disabled."), none, "MC-ACCOUNT-DISABLED"),
        (oauth("invalid_grant", 50105, None, "Your administrator has configured the application to block users unless they are specifically granted access."), none, "MC-USER-NOT-ASSIGNED"),
        (Error::new(ErrorKind::ReauthorizationRequired, "no refresh token is stored").with_evidence(|e| e.reauth_reason = Some(ReauthReason::NoRefreshToken)), none, "MC-NO-REFRESH-TOKEN"),
        (oauth("temporarily_unavailable", 90055, None, "The request is throttled temporarily."), none, "MC-IDP-THROTTLED"),
        (kind(ErrorKind::ProviderUnavailable, "https://login.microsoftonline.com/x/oauth2/v2.0/token answered HTTP 503 with an unexpected response").with_evidence(|e| e.http_status = Some(503)), none, "MC-IDP-UNAVAILABLE"),
        (kind(ErrorKind::ProviderUnavailable, "x answered HTTP 403 with an HTML page (\"Access Denied\") instead of JSON").with_code("MC-PROXY-BLOCKED"), none, "MC-PROXY-BLOCKED"),
        (kind(ErrorKind::ProviderUnavailable, "x answered a token response that could not be read (truncated or not JSON: EOF)").with_code("MC-IDP-RESPONSE-UNREADABLE"), none, "MC-IDP-RESPONSE-UNREADABLE"),
        (kind(ErrorKind::Timeout, "waiting for the device-code sign-in: the device code expired before the sign-in was completed").with_code("MC-DEVICE-CODE-EXPIRED"), none, "MC-DEVICE-CODE-EXPIRED"),
        (kind(ErrorKind::AuthorizationDenied, "signed in as 'admin@example.test', but this account is set up for 'bob@example.test'").with_code("MC-WRONG-ACCOUNT"), none, "MC-WRONG-ACCOUNT"),
        (kind(ErrorKind::AuthorizationDenied, "the account that signed in cannot be identified: the id_token names no account (only 'sub') and the provider names no userinfo endpoint").with_code("MC-IDENTITY-UNKNOWN"), none, "MC-IDENTITY-UNKNOWN"),
        (to_error("signing in in the browser", OAuthErrorResponse { error: "invalid_request".into(), error_description: Some("unsupported prompt value requested".into()), ..Default::default() }, None), none, "MC-REQUEST-REFUSED"),
        (kind(ErrorKind::Timeout, "waiting for the sign-in in the browser timed out after 300 s").with_code("MC-BROWSER-TIMEOUT"), none, "MC-BROWSER-TIMEOUT"),
        (kind(ErrorKind::State, "no web browser could be opened (No valid browsers detected)").with_code("MC-NO-BROWSER"), none, "MC-NO-BROWSER"),
        (mail("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."), none, "MC-SMTP-AUTH-DISABLED-TENANT"),
        (mail("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information."), none, "MC-SMTP-AUTH-DISABLED-MAILBOX"),
        (mail("535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully. Contact your administrator."), none, "MC-SMTP-AUTH-POLICY"),
        (mail("535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy."), none, "MC-SECURITY-DEFAULTS"),
        (mail("535 5.7.3 Authentication unsuccessful [AM0PR02CA0001.eurprd02.prod.outlook.com]"), none, "MC-MAIL-AUTH-REJECTED"),
        (mail("NO AUTHENTICATE failed."), none, "MC-MAIL-AUTH-REJECTED"),
        (mail("-ERR Authentication failure: unknown user name or bad password."), none, "MC-MAIL-AUTH-REJECTED"),
        (mail("-ERR [AUTH] Authentication failed."), other_ok, "MC-PROTOCOL-DISABLED"),
        (mail("NO [AUTHENTICATIONFAILED] Authentication failed."), delegate, "MC-SHARED-MAILBOX-NO-ACCESS"),
        (mail("BAD User is authenticated but not connected."), none, "MC-IMAP-NOT-CONNECTED"),
        (mail("* BYE Session invalidated - AccessTokenExpired"), none, "MC-IMAP-TOKEN-EXPIRED"),
        (mail("BAD Request is throttled. Suggested Backoff Time: 1500 milliseconds"), none, "MC-MAIL-THROTTLED"),
        (mail("432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more information."), none, "MC-MAIL-THROTTLED"),
        (mail("NO [UNAVAILABLE] Temporary authentication failure."), none, "MC-MAIL-AUTH-TEMPORARY"),
        (mail("-ERR [SYS/TEMP] Temporary authentication failure."), none, "MC-MAIL-AUTH-TEMPORARY"),
        (mail("550 5.7.60 SMTP; Client does not have permissions to send as this sender"), none, "MC-SEND-AS-DENIED"),
        (mail("554 5.2.252 SendAsDenied; alice@contoso.com not allowed to send as sales@contoso.com; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied"), none, "MC-SEND-AS-DENIED"),
        (mail("530 5.7.57 Client not authenticated to send mail."), none, "MC-SMTP-NOT-AUTHENTICATED"),
        (mail("554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException"), none, "MC-SMTP-QUOTA"),
        (kind(ErrorKind::Tls, "TLS handshake with imap.example.test: the server's certificate is not trusted (invalid peer certificate: UnknownIssuer)"), none, "MC-TLS-UNTRUSTED"),
        (kind(ErrorKind::Tls, "TLS handshake with outlook.office365.com: the certificate presented is not trusted (invalid peer certificate: UnknownIssuer, issued by 'CN=Contoso TLS Inspection CA,O=Contoso Firewall')").with_code("MC-TLS-INSPECTED"), none, "MC-TLS-INSPECTED"),
        (kind(ErrorKind::Network, "the http proxy proxy.corp:3128 could not be reached to connect to outlook.office365.com:993: connection refused").with_code("MC-PROXY-UNREACHABLE"), none, "MC-PROXY-UNREACHABLE"),
        (kind(ErrorKind::Network, "the http proxy proxy.corp:3128 wants a user name and password (HTTP/1.0 407 Proxy Authentication Required)").with_code("MC-PROXY-AUTH-REQUIRED"), none, "MC-PROXY-AUTH-REQUIRED"),
        (kind(ErrorKind::Network, "the http proxy proxy.corp:3128 refused a tunnel to outlook.office365.com:993 (HTTP/1.1 403 Access violation)").with_code("MC-PROXY-PORT-DENIED"), none, "MC-PROXY-PORT-DENIED"),
        (kind(ErrorKind::Network, "the socks5 proxy proxy.corp:1080 could not reach the server (outlook.office365.com:993: Host unreachable)").with_code("MC-PROXY-TARGET-UNREACHABLE"), none, "MC-PROXY-TARGET-UNREACHABLE"),
        (kind(ErrorKind::Network, "connecting to outlook.office365.com:993: Connection refused (os error 111)"), none, "MC-NETWORK-UNREACHABLE"),
        (kind(ErrorKind::Timeout, "waiting for smtp.office365.com timed out after 30 s"), none, "MC-TIMEOUT"),
        (kind(ErrorKind::Network, "reading from 127.0.0.1: the server closed the connection").with_code("MC-CONNECTION-CLOSED"), none, "MC-CONNECTION-CLOSED"),
        (kind(ErrorKind::Store, "the stored secret for tokens:a is incomplete or damaged (20 bytes); it was not stored completely").with_code("MC-TOKEN-TRUNCATED"), none, "MC-TOKEN-TRUNCATED"),
        (kind(ErrorKind::Store, "the key does not open the store /x.db (was the key file replaced or another key given?)").with_code("MC-STORE-KEY"), none, "MC-STORE-KEY"),
        (kind(ErrorKind::Store, "the store key file C:\\mc.db.key is protected with Windows DPAPI (user scope) for another Windows installation (created by PC\\j); it cannot be unlocked here").with_code("MC-STORE-KEY-PROTECTED"), none, "MC-STORE-KEY-PROTECTED"),
        (kind(ErrorKind::Store, "the token store is locked by another process for too long").with_code("MC-STORE-LOCKED"), none, "MC-STORE-LOCKED"),
        (kind(ErrorKind::Store, "cannot create the store /readonly/x.db: Permission denied"), none, "MC-STORE-FAILED"),
        (kind(ErrorKind::State, "account 'a' is not connected; connect it first").with_code("MC-NOT-CONNECTED"), none, "MC-NOT-CONNECTED"),
        (kind(ErrorKind::State, "state mismatch: the redirect belongs to another (older) sign-in; use the page of the newest sign-in").with_code("MC-SIGN-IN-STATE-MISMATCH"), none, "MC-SIGN-IN-STATE-MISMATCH"),
        (kind(ErrorKind::State, "no pending sign-in 'auth-1': it was already completed; begin a new authorization").with_code("MC-SIGN-IN-NOT-PENDING"), none, "MC-SIGN-IN-NOT-PENDING"),
        (kind(ErrorKind::Timeout, "the sign-in 'auth-1' expired before it was completed; begin a new authorization").with_code("MC-SIGN-IN-NOT-PENDING"), none, "MC-SIGN-IN-NOT-PENDING"),
        (kind(ErrorKind::State, "the response does not belong to this sign-in: it went to 'https://evil.example/'").with_code("MC-SIGN-IN-WRONG-RESPONSE"), none, "MC-SIGN-IN-WRONG-RESPONSE"),
        (Error::invalid("mailbox", "'mailbox' is not a valid mailbox address"), none, "MC-INVALID-SETTING"),
        (Error::cancelled("the connect"), none, "MC-CANCELLED"),
        (oauth("invalid_grant", 54005, None, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token."), none, "MC-REQUEST-REJECTED"),
        (oauth("invalid_request", 900144, None, "The request body must contain the following parameter: 'scope'."), none, "MC-REQUEST-REJECTED"),
        (oauth("unsupported_grant_type", 9001023, None, "The grant type is not supported over the /common or /consumers endpoints."), none, "MC-WRONG-AUTHORITY"),
        (oauth("invalid_grant", 50126, None, "Error validating credentials due to invalid username or password."), none, "MC-INVALID-CREDENTIALS"),
        (mail("550 5.7.30 Basic authentication is not supported for Client Submission."), none, "MC-SMTP-BASIC-AUTH-REJECTED"),
        (mail("599 something nobody has seen"), none, "MC-UNKNOWN"),
        (graph(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."), none, "MC-GRAPH-ACCESS-DENIED"),
        (graph(403, "ErrorAccessDenied", "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings."), none, "MC-GRAPH-APP-ACCESS-POLICY"),
        (graph(404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or is hosted on-premise."), none, "MC-GRAPH-MAILBOX-NOT-ENABLED"),
        (graph(400, "ErrorMessageSizeExceeded", "The message exceeds the maximum supported size."), none, "MC-GRAPH-MESSAGE-TOO-LARGE"),
        (graph(404, "ErrorItemNotFound", "The specified object was not found in the store."), none, "MC-GRAPH-NOT-FOUND"),
        (graph(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience."), none, "MC-GRAPH-TOKEN-REFUSED"),
        (graph(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit."), none, "MC-GRAPH-THROTTLED"),
        (graph(500, "ErrorInternalServerError", "An internal server error occurred."), none, "MC-GRAPH-UNAVAILABLE"),
        (graph(400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content."), none, "MC-GRAPH-REQUEST-REFUSED"),
        (graph(403, "ErrorSendAsDenied", "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account."), none, "MC-SEND-AS-DENIED"),
        (kind(ErrorKind::Network, "the connection to Microsoft Graph broke; Microsoft Graph may have accepted the message, so check Sent Items before sending it again").with_code("MC-GRAPH-SEND-UNCERTAIN"), none, "MC-GRAPH-SEND-UNCERTAIN"),
        // Tenant setup (core/src/setup): a refused administrator, and the check's warning.
        (kind(ErrorKind::AuthorizationDenied, "Microsoft Graph refused creating the app registration").with_code("MC-SETUP-INSUFFICIENT-PRIVILEGES"), none, "MC-SETUP-INSUFFICIENT-PRIVILEGES"),
        (kind(ErrorKind::ProviderConfiguration, "the client secret 'mailconnect' expires in 10 days").with_code("MC-CLIENT-SECRET-EXPIRING"), none, "MC-CLIENT-SECRET-EXPIRING"),
    ]
}

#[test]
fn every_sample_resolves_to_its_entry() {
    for (err, ctx, want) in samples() {
        assert_eq!(code_for(&err, ctx), want, "{}", err.message());
    }
}

#[test]
fn every_entry_is_used_and_every_sample_code_exists() {
    let used: BTreeSet<&str> = samples().iter().map(|(_, _, c)| *c).collect();
    let defined: BTreeSet<&str> = catalog().iter().map(|e| e.code.as_str()).collect();
    let unused: Vec<_> = defined.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "entries without a matching sample: {unused:?}"
    );
    let missing: Vec<_> = used.difference(&defined).collect();
    assert!(
        missing.is_empty(),
        "codes matched but not in the catalog: {missing:?}"
    );
}

#[test]
fn every_entry_has_both_languages_and_unique_codes() {
    assert!(catalog().len() >= 50);
    let mut seen = BTreeSet::new();
    for e in catalog() {
        assert!(seen.insert(e.code.clone()), "duplicate {}", e.code);
        assert!(
            e.code.starts_with("MC-")
                && e.code
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
        );
        for (lang, t) in [("en", &e.en), ("de", &e.de)] {
            assert!(
                !t.title.trim().is_empty()
                    && !t.explanation.trim().is_empty()
                    && !t.fix.trim().is_empty(),
                "{} {lang} incomplete",
                e.code
            );
        }
        assert_ne!(
            e.en.fix, e.de.fix,
            "{}: the German text is a copy of the English",
            e.code
        );
    }
}

#[test]
fn unknown_evidence_keeps_the_raw_reply() {
    let err = mail("599 something nobody has seen");
    let d = diagnose(&err, Context::default());
    assert_eq!(d.code, "MC-UNKNOWN");
    assert_eq!(
        err.evidence().server_reply.as_deref(),
        Some("599 something nobody has seen")
    );
}

#[test]
fn every_code_named_in_the_sources_is_in_the_catalog() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![root];
    let mut named = BTreeSet::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split("\"MC-").skip(1) {
                    let code: String = piece
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || *c == '-')
                        .collect();
                    if !code.is_empty() && piece[code.len()..].starts_with('"') {
                        named.insert(format!("MC-{code}"));
                    }
                }
            }
        }
    }
    assert!(named.len() > 40, "{named:?}");
    for code in named {
        assert!(
            catalog().iter().any(|e| e.code == code),
            "{code} is named in core/src but not in the catalog"
        );
    }
}

/// Errors carrying what `r` describes (one for each alternative it names), with the context
/// they need.
fn evidence_for(r: &Recognised) -> Vec<(Error, Context)> {
    use rules::{OAuthField, When};
    let ctx = |when: When| Context {
        other_protocol_accepted: when == When::OtherProtocolAccepted,
        delegate: when == When::Delegate,
    };
    let none = Context::default();
    let oauth_only = |error: &str, suberror: Option<&str>| {
        to_error(
            "refreshing the token",
            OAuthErrorResponse {
                error: error.into(),
                suberror: suberror.map(Into::into),
                ..Default::default()
            },
            Some(400),
        )
    };
    match r {
        Recognised::Aadsts { number } => {
            vec![(oauth("invalid_grant", *number, None, "text"), none)]
        }
        Recognised::OAuth {
            field: OAuthField::Error,
            value,
        } => vec![(oauth_only(value, None), none)],
        Recognised::OAuth {
            field: OAuthField::Suberror,
            value,
        } => vec![(oauth_only("invalid_grant", Some(value)), none)],
        Recognised::Reply { all, any, when } => {
            let replies: Vec<String> = if any.is_empty() {
                vec![all.join(" ")]
            } else {
                any.iter()
                    .map(|a| {
                        let mut texts = all.clone();
                        texts.push(a);
                        texts.join(" ")
                    })
                    .collect()
            };
            replies
                .iter()
                .map(|reply| (mail(reply), ctx(*when)))
                .collect()
        }
        Recognised::ReplyExample { text, when } => vec![(mail(text), ctx(*when))],
        Recognised::Graph {
            codes,
            statuses,
            message_any,
        } => {
            let messages: Vec<&str> = if message_any.is_empty() {
                vec!["a message"]
            } else {
                message_any.clone()
            };
            let mut out = Vec::new();
            for m in messages {
                for c in codes {
                    out.push((graph(400, c, m), none));
                }
                for (lo, hi) in statuses {
                    out.push((graph(*lo, "SomeOtherCode", m), none));
                    out.push((graph(*hi, "SomeOtherCode", m), none));
                }
            }
            out
        }
        Recognised::GraphOther => vec![(graph(400, "ErrorInvalidRecipients", "a message"), none)],
        Recognised::IdpHttpStatus { status } => vec![(
            kind(ErrorKind::ProviderUnavailable, "throttled")
                .with_evidence(|e| e.http_status = Some(*status)),
            none,
        )],
    }
}

#[test]
fn every_recognised_text_resolves_to_its_entry_through_the_matcher() {
    let mut checked = 0;
    for e in catalog() {
        for r in recognised(&e.code) {
            for (err, ctx) in evidence_for(&r) {
                assert_eq!(
                    code_for(&err, ctx),
                    e.code,
                    "{r:?} is listed for {} but the matcher gives another entry ({})",
                    e.code,
                    err.message()
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} texts checked");
}

#[test]
fn every_entry_is_recognised_from_texts_or_raised_by_the_library() {
    let mut problems = Vec::new();
    for e in catalog() {
        if recognised(&e.code).is_empty() && !raised_by_library(&e.code) {
            problems.push(format!(
                "{}: no rule recognises it and it is not in rules::RAISED_BY_LIBRARY",
                e.code
            ));
        }
    }
    for code in rules::RAISED_BY_LIBRARY {
        if !catalog().iter().any(|e| e.code == *code) {
            problems.push(format!(
                "{code} is in RAISED_BY_LIBRARY but not in the catalog"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The catalog codes core/src names outside the diagnostics module: every string literal, and
/// those raised by a literal `with_code("MC-…")` or kept in a `&str` constant.
fn codes_in_the_sources() -> (BTreeSet<String>, BTreeSet<String>) {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let diagnose = src.join("diagnose");
    let mut stack = vec![src];
    let (mut named, mut raised) = (BTreeSet::new(), BTreeSet::new());
    let code_at = |rest: &str| -> String {
        let code: String = rest
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || *c == '-')
            .collect();
        format!("MC-{code}")
    };
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path != diagnose {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split("\"MC-").skip(1) {
                    named.insert(code_at(piece));
                }
                for marker in ["with_code(", ": &str ="] {
                    for piece in text.split(marker).skip(1) {
                        if let Some(rest) = piece.trim_start().strip_prefix("\"MC-") {
                            raised.insert(code_at(rest));
                        }
                    }
                }
            }
        }
    }
    (named, raised)
}

#[test]
fn what_the_library_raises_is_listed_and_what_is_listed_is_raised() {
    let (named, raised) = codes_in_the_sources();
    assert!(raised.len() > 20, "{raised:?}");
    let listed: BTreeSet<String> = rules::RAISED_BY_LIBRARY
        .iter()
        .map(|c| c.to_string())
        .collect();
    let unlisted: Vec<_> = raised.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "raised in core/src but not in rules::RAISED_BY_LIBRARY: {unlisted:?}"
    );
    let by_kind: BTreeSet<&str> = rules::KINDS
        .iter()
        .filter(|r| r.http_status.is_none())
        .map(|r| r.code)
        .collect();
    let no_refresh_token = code_for(
        &Error::new(ErrorKind::ReauthorizationRequired, "no refresh token")
            .with_evidence(|e| e.reauth_reason = Some(ReauthReason::NoRefreshToken)),
        Context::default(),
    );
    let unknown = code_for(&kind(ErrorKind::Internal, "a bug"), Context::default());
    for code in rules::RAISED_BY_LIBRARY {
        assert!(
            named.contains(*code)
                || by_kind.contains(code)
                || *code == no_refresh_token
                || *code == unknown,
            "{code} is in RAISED_BY_LIBRARY but core/src never raises it"
        );
    }
}
