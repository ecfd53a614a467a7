//! The recognition rules: which raw texts lead to which catalog entry. OAuth `error` and `suberror`
//! values, mail server replies (SMTP, IMAP, POP3), Microsoft Graph error codes and HTTP statuses,
//! and the kinds of failure mailconnect raises itself; the AADSTS numbers are in [`super::aadsts`].
//!
//! These tables are what the matcher evaluates ([`super::code_for`], and the Graph transport's
//! classification through [`graph`]), and what [`recognised`] lists for the diagnostics reference
//! (`mailconnect diagnostics reference`, `docs/diagnostics.md`), so the reference cannot drift
//! from the matcher. Rows are tried in order; the first that matches wins.

use serde::Serialize;

use super::{aadsts, Context};
use crate::error::ErrorKind;

/// Which field of an OAuth error response a rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthField {
    /// `error` (RFC 6749 §5.2).
    Error,
    /// Microsoft's `suberror`.
    Suberror,
}

/// An OAuth error response rule (applies when no AADSTS number of [`aadsts::TABLE`] matched).
pub struct OAuthRule {
    /// The field read.
    pub field: OAuthField,
    /// Any of these values (exact).
    pub values: &'static [&'static str],
    /// The catalog code.
    pub code: &'static str,
}

/// The OAuth error response rules, in order (suberrors first).
pub const OAUTH: &[OAuthRule] = &[
    OAuthRule {
        field: OAuthField::Suberror,
        values: &["consent_required"],
        code: "MC-CONSENT-REQUIRED",
    },
    OAuthRule {
        field: OAuthField::Suberror,
        values: &["basic_action", "additional_action"],
        code: "MC-MFA-REQUIRED",
    },
    OAuthRule {
        field: OAuthField::Error,
        values: &["interaction_required"],
        code: "MC-MFA-REQUIRED",
    },
    OAuthRule {
        field: OAuthField::Error,
        values: &["authorization_declined", "access_denied"],
        code: "MC-CONSENT-DECLINED",
    },
    OAuthRule {
        field: OAuthField::Error,
        values: &["expired_token"],
        code: "MC-DEVICE-CODE-EXPIRED",
    },
    OAuthRule {
        field: OAuthField::Error,
        values: &["temporarily_unavailable", "server_error"],
        code: "MC-IDP-UNAVAILABLE",
    },
    OAuthRule {
        field: OAuthField::Error,
        values: &["invalid_request"],
        code: "MC-REQUEST-REFUSED",
    },
];

/// The catalog code of an OAuth error response's `error` and `suberror` (no AADSTS number).
pub(crate) fn oauth(error: &str, suberror: Option<&str>) -> Option<&'static str> {
    OAUTH
        .iter()
        .find(|r| {
            let value = match r.field {
                OAuthField::Error => Some(error),
                OAuthField::Suberror => suberror,
            };
            value.is_some_and(|v| r.values.contains(&v))
        })
        .map(|r| r.code)
}

/// What a Test run must know for a reply rule to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// Always.
    Always,
    /// Another protocol accepted the same token for this mailbox.
    OtherProtocolAccepted,
    /// The mailbox is opened by a delegate.
    Delegate,
}

impl When {
    fn holds(self, ctx: Context) -> bool {
        match self {
            When::Always => true,
            When::OtherProtocolAccepted => ctx.other_protocol_accepted,
            When::Delegate => ctx.delegate,
        }
    }
}

/// A mail server reply rule: the reply contains every text of `all` and, unless `any` is empty,
/// at least one text of `any` (case-insensitive).
pub struct ReplyRule {
    /// Texts that must all appear.
    pub all: &'static [&'static str],
    /// Texts of which one must appear (none: no further condition).
    pub any: &'static [&'static str],
    /// What a Test run must know.
    pub when: When,
    /// The catalog code.
    pub code: &'static str,
    /// Whole replies seen from real servers that this rule recognises (for the reference; a test
    /// checks that each resolves to `code`).
    pub examples: &'static [&'static str],
}

/// How servers say that they refused the credentials (the token).
const AUTH_REFUSED: &[&str] = &[
    "AUTHENTICATE failed",
    "[AUTHENTICATIONFAILED]",
    "Authentication failed",
    "Authentication failure",
    "Authentication unsuccessful",
    "5.7.3",
    "535 5.7.8",
    "-ERR [AUTH]",
];

/// The mail server reply rules, in order.
pub const REPLY: &[ReplyRule] = &[
    ReplyRule {
        all: &["5.7.139"],
        any: &["disabled for the Tenant"],
        when: When::Always,
        code: "MC-SMTP-AUTH-DISABLED-TENANT",
        examples: &["535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."],
    },
    ReplyRule {
        all: &["5.7.139"],
        any: &["disabled for the Mailbox"],
        when: When::Always,
        code: "MC-SMTP-AUTH-DISABLED-MAILBOX",
        examples: &["535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information."],
    },
    ReplyRule {
        all: &["5.7.139"],
        any: &["security defaults"],
        when: When::Always,
        code: "MC-SECURITY-DEFAULTS",
        examples: &["535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy."],
    },
    ReplyRule {
        all: &["5.7.139"],
        any: &[],
        when: When::Always,
        code: "MC-SMTP-AUTH-POLICY",
        examples: &["535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully. Contact your administrator."],
    },
    ReplyRule {
        all: &[],
        any: &["authenticated but not connected"],
        when: When::Always,
        code: "MC-IMAP-NOT-CONNECTED",
        examples: &["BAD User is authenticated but not connected."],
    },
    ReplyRule {
        all: &[],
        any: &["AccessTokenExpired"],
        when: When::Always,
        code: "MC-IMAP-TOKEN-EXPIRED",
        examples: &["* BYE Session invalidated - AccessTokenExpired"],
    },
    ReplyRule {
        all: &[],
        any: &["5.7.60", "SendAsDenied", "send as this sender", "send on behalf"],
        when: When::Always,
        code: "MC-SEND-AS-DENIED",
        examples: &[
            "550 5.7.60 SMTP; Client does not have permissions to send as this sender",
            "554 5.2.252 SendAsDenied; alice@contoso.com not allowed to send as sales@contoso.com; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied",
        ],
    },
    ReplyRule {
        all: &[],
        any: &["5.7.30", "Basic authentication is not supported"],
        when: When::Always,
        code: "MC-SMTP-BASIC-AUTH-REJECTED",
        examples: &["550 5.7.30 Basic authentication is not supported for Client Submission."],
    },
    ReplyRule {
        all: &[],
        any: &["5.7.57"],
        when: When::Always,
        code: "MC-SMTP-NOT-AUTHENTICATED",
        examples: &["530 5.7.57 Client not authenticated to send mail."],
    },
    ReplyRule {
        all: &[],
        any: &["throttled", "4.3.2", "concurrent connections"],
        when: When::Always,
        code: "MC-MAIL-THROTTLED",
        examples: &[
            "BAD Request is throttled. Suggested Backoff Time: 1500 milliseconds",
            "432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more information.",
        ],
    },
    ReplyRule {
        all: &[],
        any: &["QuotaExceeded", "5.2.2", "mailbox full"],
        when: When::Always,
        code: "MC-SMTP-QUOTA",
        examples: &["554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException"],
    },
    ReplyRule {
        all: &[],
        any: &[
            "[UNAVAILABLE]",
            "[SYS/TEMP]",
            "Temporary authentication failure",
            "454 4.7.0",
        ],
        when: When::Always,
        code: "MC-MAIL-AUTH-TEMPORARY",
        examples: &[
            "NO [UNAVAILABLE] Temporary authentication failure.",
            "-ERR [SYS/TEMP] Temporary authentication failure.",
        ],
    },
    ReplyRule {
        all: &[],
        any: AUTH_REFUSED,
        when: When::OtherProtocolAccepted,
        code: "MC-PROTOCOL-DISABLED",
        examples: &["-ERR [AUTH] Authentication failed."],
    },
    ReplyRule {
        all: &[],
        any: AUTH_REFUSED,
        when: When::Delegate,
        code: "MC-SHARED-MAILBOX-NO-ACCESS",
        examples: &["NO [AUTHENTICATIONFAILED] Authentication failed."],
    },
    ReplyRule {
        all: &[],
        any: AUTH_REFUSED,
        when: When::Always,
        code: "MC-MAIL-AUTH-REJECTED",
        examples: &[
            "535 5.7.3 Authentication unsuccessful [AM0PR02CA0001.eurprd02.prod.outlook.com]",
            "NO AUTHENTICATE failed.",
            "-ERR Authentication failure: unknown user name or bad password.",
        ],
    },
];

/// The catalog code of a mail server's reply (`None`: no rule matches).
pub(crate) fn reply(reply: &str, ctx: Context) -> Option<&'static str> {
    let r = reply.to_ascii_lowercase();
    let has = |s: &&str| r.contains(&s.to_ascii_lowercase());
    REPLY
        .iter()
        .find(|rule| {
            rule.when.holds(ctx)
                && rule.all.iter().all(has)
                && (rule.any.is_empty() || rule.any.iter().any(has))
        })
        .map(|rule| rule.code)
}

/// A Microsoft Graph error rule: Graph's `code` is one of `codes` (case-insensitive) or the HTTP
/// status is in one of `statuses`, and, unless `message_any` is empty, the message contains one of
/// `message_any`.
pub struct GraphRule {
    /// Graph error codes.
    pub codes: &'static [&'static str],
    /// HTTP status ranges (inclusive).
    pub statuses: &'static [(u16, u16)],
    /// Texts of which one must appear in the message (case-insensitive; none: no condition).
    pub message_any: &'static [&'static str],
    /// The error's kind.
    pub kind: ErrorKind,
    /// The catalog code.
    pub code: &'static str,
}

/// The Microsoft Graph error rules, in order; an answer no rule matches is [`GRAPH_OTHER`].
pub const GRAPH: &[GraphRule] = &[
    GraphRule {
        codes: &[
            "MailboxNotEnabledForRESTAPI",
            "MailboxNotSupportedForRESTAPI",
        ],
        statuses: &[],
        message_any: &[],
        kind: ErrorKind::MailServer,
        code: "MC-GRAPH-MAILBOX-NOT-ENABLED",
    },
    GraphRule {
        codes: &["ErrorSendAsDenied"],
        statuses: &[],
        message_any: &[],
        kind: ErrorKind::MailServer,
        code: "MC-SEND-AS-DENIED",
    },
    GraphRule {
        codes: &["ErrorMessageSizeExceeded"],
        statuses: &[(413, 413)],
        message_any: &[],
        kind: ErrorKind::MailServer,
        code: "MC-GRAPH-MESSAGE-TOO-LARGE",
    },
    GraphRule {
        codes: &["ErrorItemNotFound"],
        statuses: &[(404, 404)],
        message_any: &[],
        kind: ErrorKind::NotFound,
        code: "MC-GRAPH-NOT-FOUND",
    },
    // The application access policy (RBAC for Applications' predecessor) names itself.
    GraphRule {
        codes: &["ErrorAccessDenied", "AccessDenied"],
        statuses: &[(403, 403)],
        message_any: &["[RAOP]", "AccessPolicy"],
        kind: ErrorKind::ProviderConfiguration,
        code: "MC-GRAPH-APP-ACCESS-POLICY",
    },
    GraphRule {
        codes: &["ErrorAccessDenied", "AccessDenied"],
        statuses: &[(403, 403)],
        message_any: &[],
        kind: ErrorKind::ProviderConfiguration,
        code: "MC-GRAPH-ACCESS-DENIED",
    },
    GraphRule {
        codes: &[],
        statuses: &[(401, 401)],
        message_any: &[],
        kind: ErrorKind::ProviderConfiguration,
        code: "MC-GRAPH-TOKEN-REFUSED",
    },
    GraphRule {
        codes: &[],
        statuses: &[(429, 429), (503, 503)],
        message_any: &[],
        kind: ErrorKind::ProviderUnavailable,
        code: "MC-GRAPH-THROTTLED",
    },
    GraphRule {
        codes: &[],
        statuses: &[(500, 599)],
        message_any: &[],
        kind: ErrorKind::ProviderUnavailable,
        code: "MC-GRAPH-UNAVAILABLE",
    },
];

/// Any other error answer of Microsoft Graph.
pub const GRAPH_OTHER: (ErrorKind, &str) = (ErrorKind::MailServer, "MC-GRAPH-REQUEST-REFUSED");

/// The kind and catalog code of a Microsoft Graph error answer.
pub(crate) fn graph(status: u16, code: &str, message: &str) -> (ErrorKind, &'static str) {
    let message = message.to_ascii_lowercase();
    GRAPH
        .iter()
        .find(|r| {
            (r.codes.iter().any(|c| c.eq_ignore_ascii_case(code))
                || r.statuses
                    .iter()
                    .any(|(lo, hi)| (*lo..=*hi).contains(&status)))
                && (r.message_any.is_empty()
                    || r.message_any
                        .iter()
                        .any(|m| message.contains(&m.to_ascii_lowercase())))
        })
        .map(|r| (r.kind, r.code))
        .unwrap_or(GRAPH_OTHER)
}

/// A failure mailconnect raises itself without a more specific code: its kind (and the HTTP
/// status, where one is required) decides the entry.
pub struct KindRule {
    /// The kinds.
    pub kinds: &'static [ErrorKind],
    /// The HTTP status the error must carry (`None`: any or none).
    pub http_status: Option<u16>,
    /// The catalog code.
    pub code: &'static str,
}

/// The kind rules, in order; a kind no rule names is `MC-UNKNOWN`.
pub const KINDS: &[KindRule] = &[
    KindRule {
        kinds: &[ErrorKind::Tls],
        http_status: None,
        code: "MC-TLS-UNTRUSTED",
    },
    KindRule {
        kinds: &[ErrorKind::Network],
        http_status: None,
        code: "MC-NETWORK-UNREACHABLE",
    },
    KindRule {
        kinds: &[ErrorKind::Timeout],
        http_status: None,
        code: "MC-TIMEOUT",
    },
    KindRule {
        kinds: &[ErrorKind::ProviderUnavailable],
        http_status: Some(429),
        code: "MC-IDP-THROTTLED",
    },
    KindRule {
        kinds: &[ErrorKind::ProviderUnavailable],
        http_status: None,
        code: "MC-IDP-UNAVAILABLE",
    },
    KindRule {
        kinds: &[ErrorKind::AuthorizationDenied],
        http_status: None,
        code: "MC-CONSENT-DECLINED",
    },
    KindRule {
        kinds: &[ErrorKind::Store],
        http_status: None,
        code: "MC-STORE-FAILED",
    },
    KindRule {
        kinds: &[ErrorKind::InvalidArgument, ErrorKind::NotFound],
        http_status: None,
        code: "MC-INVALID-SETTING",
    },
    KindRule {
        kinds: &[ErrorKind::Cancelled],
        http_status: None,
        code: "MC-CANCELLED",
    },
];

/// The catalog code of an error's kind.
pub(crate) fn kind(kind: ErrorKind, http_status: Option<u16>) -> &'static str {
    KINDS
        .iter()
        .find(|r| r.kinds.contains(&kind) && r.http_status.is_none_or(|s| http_status == Some(s)))
        .map(|r| r.code)
        .unwrap_or("MC-UNKNOWN")
}

/// Entries mailconnect raises itself, from what it sees rather than from a text a server sent:
/// a state it is in (not connected, a sign-in no longer pending), a check it made (the wrong
/// account signed in, a proxy's page instead of JSON, a TLS-inspecting issuer), a local failure
/// (the store, no browser), or the kind of a failure without a more specific code ([`KINDS`]).
/// Some of them are also recognised from server texts. A test checks that each is raised
/// somewhere, and that every entry is either recognised from texts or listed here.
pub const RAISED_BY_LIBRARY: &[&str] = &[
    "MC-NO-REFRESH-TOKEN",
    "MC-CLIENT-SECRET-EXPIRING",
    "MC-SETUP-INSUFFICIENT-PRIVILEGES",
    "MC-EXCHANGE-NOT-AVAILABLE",
    "MC-PROXY-BLOCKED",
    "MC-IDP-RESPONSE-UNREADABLE",
    "MC-DEVICE-CODE-EXPIRED",
    "MC-WRONG-ACCOUNT",
    "MC-IDENTITY-UNKNOWN",
    "MC-BROWSER-TIMEOUT",
    "MC-NO-BROWSER",
    "MC-GRAPH-NOT-FOUND",
    "MC-GRAPH-THROTTLED",
    "MC-GRAPH-UNAVAILABLE",
    "MC-GRAPH-SEND-UNCERTAIN",
    "MC-TLS-UNTRUSTED",
    "MC-NETWORK-UNREACHABLE",
    "MC-TIMEOUT",
    "MC-CONNECTION-CLOSED",
    "MC-PROXY-UNREACHABLE",
    "MC-PROXY-AUTH-REQUIRED",
    "MC-PROXY-PORT-DENIED",
    "MC-PROXY-TARGET-UNREACHABLE",
    "MC-TLS-INSPECTED",
    "MC-TOKEN-TRUNCATED",
    "MC-STORE-KEY",
    "MC-STORE-KEY-PROTECTED",
    "MC-STORE-LOCKED",
    "MC-STORE-FAILED",
    "MC-SIGN-IN-STATE-MISMATCH",
    "MC-SIGN-IN-NOT-PENDING",
    "MC-SIGN-IN-WRONG-RESPONSE",
    "MC-NOT-CONNECTED",
    "MC-INVALID-SETTING",
    "MC-CANCELLED",
    "MC-IDP-UNAVAILABLE",
    "MC-CONSENT-DECLINED",
    "MC-UNKNOWN",
];

/// A raw text (or answer) mailconnect recognises as a catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Recognised {
    /// A Microsoft Entra error code in a token or sign-in answer (`AADSTS50173`).
    Aadsts {
        /// The number.
        number: i64,
    },
    /// An OAuth error response's `error` or `suberror` value (without a known AADSTS number).
    OAuth {
        /// The field.
        field: OAuthField,
        /// The value.
        value: &'static str,
    },
    /// A reply of a mail server (SMTP, IMAP, POP3) containing every text of `all` and, unless
    /// `any` is empty, one of `any` (case-insensitive).
    Reply {
        /// Texts that must all appear.
        all: Vec<&'static str>,
        /// Texts of which one must appear.
        any: Vec<&'static str>,
        /// What a Test run must know.
        when: When,
    },
    /// A whole reply seen from a real server.
    ReplyExample {
        /// The reply.
        text: &'static str,
        /// What a Test run must know.
        when: When,
    },
    /// A Microsoft Graph answer with one of `codes` as its error code or one of `statuses` as its
    /// HTTP status, and, unless `message_any` is empty, one of `message_any` in its message.
    Graph {
        /// Graph error codes.
        codes: Vec<&'static str>,
        /// HTTP status ranges (inclusive).
        statuses: Vec<(u16, u16)>,
        /// Texts of which one must appear in the message.
        message_any: Vec<&'static str>,
    },
    /// Any other error answer of Microsoft Graph ([`GRAPH_OTHER`]).
    GraphOther,
    /// An HTTP status of the identity provider's answer.
    IdpHttpStatus {
        /// The status.
        status: u16,
    },
}

/// Every raw text the matcher recognises as the entry `code`, in the order the rules list them.
pub fn recognised(code: &str) -> Vec<Recognised> {
    let mut out = Vec::new();
    for row in aadsts::TABLE.iter().filter(|r| r.diagnostic == code) {
        out.extend(
            row.codes
                .iter()
                .map(|&number| Recognised::Aadsts { number }),
        );
    }
    for rule in OAUTH.iter().filter(|r| r.code == code) {
        out.extend(rule.values.iter().map(|&value| Recognised::OAuth {
            field: rule.field,
            value,
        }));
    }
    for rule in REPLY.iter().filter(|r| r.code == code) {
        out.push(Recognised::Reply {
            all: rule.all.to_vec(),
            any: rule.any.to_vec(),
            when: rule.when,
        });
    }
    for rule in REPLY.iter().filter(|r| r.code == code) {
        out.extend(rule.examples.iter().map(|&text| Recognised::ReplyExample {
            text,
            when: rule.when,
        }));
    }
    for rule in GRAPH.iter().filter(|r| r.code == code) {
        out.push(Recognised::Graph {
            codes: rule.codes.to_vec(),
            statuses: rule.statuses.to_vec(),
            message_any: rule.message_any.to_vec(),
        });
    }
    if code == GRAPH_OTHER.1 {
        out.push(Recognised::GraphOther);
    }
    for rule in KINDS.iter().filter(|r| r.code == code) {
        if let Some(status) = rule.http_status {
            out.push(Recognised::IdpHttpStatus { status });
        }
    }
    out
}

/// Whether mailconnect raises the entry `code` itself ([`RAISED_BY_LIBRARY`]).
pub fn raised_by_library(code: &str) -> bool {
    RAISED_BY_LIBRARY.contains(&code)
}
