//! Diagnostics: every failure mailconnect sees ends in a stable code, the raw evidence, and an
//! explanation plus the fix an admin can act on, in English and German.
//!
//! The catalog is data (`catalog.json`: code, category, who fixes it, links, and per language the
//! title, explanation and fix), and so is the AADSTS table ([`aadsts`]). [`code_for`] picks the
//! entry in this order: the code the raise site attached ([`Error::with_code`]); the OAuth error
//! response (AADSTS code, then `error` / `suberror`); the re-authorization reason; the mail
//! server's reply or SASL challenge (with what a Test run knows, [`Context`]); else the error's
//! kind. It never reads the error's message. Unknown evidence gives `MC-UNKNOWN`, which still
//! carries the raw reply. Adding a language means adding its texts to every entry (a test enforces
//! this).

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::ReauthReason;
use crate::error::{Error, ErrorKind};
use crate::i18n::Language;

pub mod aadsts;

/// Texts of an entry in one language.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    /// Short title.
    pub title: String,
    /// What happened, in words an admin understands.
    pub explanation: String,
    /// What to do.
    pub fix: String,
}

/// What area a failure belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// The app registration or program settings.
    Configuration,
    /// Consent.
    Consent,
    /// The user account or mailbox.
    Account,
    /// A tenant policy (Conditional Access, SMTP AUTH switch, protocol switches).
    TenantPolicy,
    /// Network, proxy, TLS.
    Network,
    /// A server (identity provider or mail server).
    Server,
    /// This computer (browser, store, cancellation).
    Local,
}

/// Who can fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fixer {
    /// The person using the program.
    User,
    /// The mailbox (Exchange) administrator.
    MailboxAdmin,
    /// The tenant (Entra) administrator.
    TenantAdmin,
    /// The software vendor.
    Vendor,
}

/// A catalog entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Stable code (`MC-SMTP-AUTH-DISABLED-TENANT`).
    pub code: String,
    /// Category.
    pub category: Category,
    /// Who can fix it.
    pub fixer: Fixer,
    /// Documentation links.
    pub links: Vec<String>,
    /// English.
    pub en: Texts,
    /// German.
    pub de: Texts,
}

impl Entry {
    /// The texts in `lang`.
    pub fn texts(&self, lang: Language) -> &Texts {
        match lang {
            Language::En => &self.en,
            Language::De => &self.de,
        }
    }
}

/// The catalog.
pub fn catalog() -> &'static [Entry] {
    static CATALOG: OnceLock<Vec<Entry>> = OnceLock::new();
    CATALOG.get_or_init(|| serde_json::from_str(include_str!("catalog.json")).unwrap_or_default())
}

/// The entry with `code` (falls back to `MC-UNKNOWN`).
pub fn entry(code: &str) -> &'static Entry {
    let c = catalog();
    c.iter()
        .find(|e| e.code == code)
        .or_else(|| c.iter().find(|e| e.code == "MC-UNKNOWN"))
        .unwrap_or_else(|| fallback())
}

/// Used only if the embedded catalog could not be read (a build defect the tests catch).
fn fallback() -> &'static Entry {
    static FALLBACK: OnceLock<Entry> = OnceLock::new();
    FALLBACK.get_or_init(|| {
        let t = Texts {
            title: "Unexpected error".into(),
            explanation: "The diagnostics catalog is unavailable.".into(),
            fix: "Report this to the vendor.".into(),
        };
        Entry {
            code: "MC-UNKNOWN".into(),
            category: Category::Server,
            fixer: Fixer::Vendor,
            links: vec![],
            en: t.clone(),
            de: t,
        }
    })
}

/// What else is known when diagnosing (from a Test run).
#[derive(Debug, Clone, Copy, Default)]
pub struct Context {
    /// Another protocol accepted the same token for this mailbox.
    pub other_protocol_accepted: bool,
    /// The mailbox is opened by a delegate (`login` differs from `mailbox`).
    pub delegate: bool,
}

fn reply_code(reply: &str, ctx: Context) -> Option<&'static str> {
    let r = reply.to_ascii_lowercase();
    let has = |s: &str| r.contains(s);
    if has("5.7.139") {
        return Some(if has("disabled for the tenant") {
            "MC-SMTP-AUTH-DISABLED-TENANT"
        } else if has("disabled for the mailbox") {
            "MC-SMTP-AUTH-DISABLED-MAILBOX"
        } else if has("security defaults") {
            "MC-SECURITY-DEFAULTS"
        } else {
            "MC-SMTP-AUTH-POLICY"
        });
    }
    if has("authenticated but not connected") {
        return Some("MC-IMAP-NOT-CONNECTED");
    }
    if has("accesstokenexpired") {
        return Some("MC-IMAP-TOKEN-EXPIRED");
    }
    if has("5.7.60") || has("sendasdenied") || has("send as this sender") || has("send on behalf") {
        return Some("MC-SEND-AS-DENIED");
    }
    if has("5.7.30") || has("basic authentication is not supported") {
        return Some("MC-SMTP-BASIC-AUTH-REJECTED");
    }
    if has("5.7.57") {
        return Some("MC-SMTP-NOT-AUTHENTICATED");
    }
    if has("throttled") || has("4.3.2") || has("concurrent connections") {
        return Some("MC-MAIL-THROTTLED");
    }
    if has("quotaexceeded") || has("5.2.2") || has("mailbox full") {
        return Some("MC-SMTP-QUOTA");
    }
    if has("[unavailable]")
        || has("[sys/temp]")
        || has("temporary authentication failure")
        || has("454 4.7.0")
    {
        return Some("MC-MAIL-AUTH-TEMPORARY");
    }
    let auth_refused = has("authenticate failed")
        || has("[authenticationfailed]")
        || has("authentication failed")
        || has("authentication failure")
        || has("authentication unsuccessful")
        || has("5.7.3")
        || has("535 5.7.8")
        || has("-err [auth]");
    if auth_refused {
        return Some(if ctx.other_protocol_accepted {
            "MC-PROTOCOL-DISABLED"
        } else if ctx.delegate {
            "MC-SHARED-MAILBOX-NO-ACCESS"
        } else {
            "MC-MAIL-AUTH-REJECTED"
        });
    }
    None
}

/// The catalog code for an error.
pub fn code_for(err: &Error, ctx: Context) -> &'static str {
    if let Some(code) = err.code() {
        return code;
    }
    let ev = err.evidence();
    if let Some(o) = &ev.oauth {
        if let Some(row) = o.aadsts().and_then(aadsts::lookup) {
            return row.diagnostic;
        }
        match (o.error.as_str(), o.suberror.as_deref()) {
            (_, Some("consent_required")) => return "MC-CONSENT-REQUIRED",
            (_, Some("basic_action" | "additional_action")) | ("interaction_required", _) => {
                return "MC-MFA-REQUIRED"
            }
            ("authorization_declined" | "access_denied", _) => return "MC-CONSENT-DECLINED",
            ("expired_token", _) => return "MC-DEVICE-CODE-EXPIRED",
            ("temporarily_unavailable" | "server_error", _) => return "MC-IDP-UNAVAILABLE",
            ("invalid_request", _) => return "MC-REQUEST-REFUSED",
            _ => {}
        }
    }
    if let Some(r) = ev.reauth_reason {
        return match r {
            ReauthReason::RefreshTokenExpired => "MC-REFRESH-TOKEN-EXPIRED",
            ReauthReason::RefreshTokenRevoked | ReauthReason::RefreshTokenInvalid => {
                "MC-REFRESH-TOKEN-REVOKED"
            }
            ReauthReason::ConsentRequired => "MC-CONSENT-REQUIRED",
            ReauthReason::InteractionRequired => "MC-MFA-REQUIRED",
            ReauthReason::ConditionalAccess => "MC-CONDITIONAL-ACCESS-BLOCKED",
            ReauthReason::SignInFrequency => "MC-SIGN-IN-FREQUENCY",
            ReauthReason::AccountDisabled => "MC-ACCOUNT-DISABLED",
            ReauthReason::NoRefreshToken => "MC-NO-REFRESH-TOKEN",
        };
    }
    if err.kind() == ErrorKind::MailServer {
        if let Some(c) = ev.server_reply.as_deref().and_then(|r| reply_code(r, ctx)) {
            return c;
        }
        if ev.sasl_challenge.is_some() {
            return if ctx.other_protocol_accepted {
                "MC-PROTOCOL-DISABLED"
            } else {
                "MC-MAIL-AUTH-REJECTED"
            };
        }
    }
    match err.kind() {
        ErrorKind::Tls => "MC-TLS-UNTRUSTED",
        ErrorKind::Network => "MC-NETWORK-UNREACHABLE",
        ErrorKind::Timeout => "MC-TIMEOUT",
        ErrorKind::ProviderUnavailable if ev.http_status == Some(429) => "MC-IDP-THROTTLED",
        ErrorKind::ProviderUnavailable => "MC-IDP-UNAVAILABLE",
        ErrorKind::AuthorizationDenied => "MC-CONSENT-DECLINED",
        ErrorKind::Store => "MC-STORE-FAILED",
        ErrorKind::InvalidArgument | ErrorKind::NotFound => "MC-INVALID-SETTING",
        ErrorKind::Cancelled => "MC-CANCELLED",
        _ => "MC-UNKNOWN",
    }
}

/// A diagnosis: the entry for an error and the evidence.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    /// Stable code.
    pub code: &'static str,
    /// Category.
    pub category: Category,
    /// Who can fix it.
    pub fixer: Fixer,
    /// English texts.
    pub en: &'static Texts,
    /// German texts.
    pub de: &'static Texts,
    /// Links.
    pub links: &'static [String],
}

/// Diagnose an error.
pub fn diagnose(err: &Error, ctx: Context) -> Diagnosis {
    let e = entry(code_for(err, ctx));
    let code: &'static str = e.code.as_str();
    Diagnosis {
        code,
        category: e.category,
        fixer: e.fixer,
        en: &e.en,
        de: &e.de,
        links: &e.links,
    }
}

impl Error {
    /// The diagnostic as JSON: the catalog entry (stable code, category, who fixes it, title,
    /// explanation and fix in every language, links), the kind, the message and the evidence
    /// (the C ABI's `mc_error_diagnostic_get`).
    pub fn diagnostic_json(&self) -> serde_json::Value {
        self.diagnostic_json_with(Context::default())
    }

    /// As [`Error::diagnostic_json`] with more context (from a Test run).
    pub fn diagnostic_json_with(&self, ctx: Context) -> serde_json::Value {
        let d = diagnose(self, ctx);
        serde_json::json!({
            "code": d.code,
            "category": d.category,
            "fixer": d.fixer,
            "kind": self.kind(),
            "message": self.message(),
            "evidence": self.evidence(),
            "en": d.en,
            "de": d.de,
            "links": d.links,
        })
    }
}

#[cfg(test)]
mod tests;
