//! Diagnostics: every failure mailconnect sees ends in a stable code, the raw evidence, and an
//! explanation plus the fix an admin can act on, in English and German.
//!
//! The catalog is data (`catalog.json`: code, category, who fixes it, links, and per language the
//! title, explanation and fix), and so are the recognition rules: the AADSTS table ([`aadsts`]) and
//! the OAuth, mail server reply, Microsoft Graph and kind tables ([`rules`]), which the matcher
//! evaluates and [`recognised`] lists for the diagnostics reference (`docs/diagnostics.md`,
//! `mailconnect diagnostics reference`). [`code_for`] picks the
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
pub mod rules;

pub use rules::{raised_by_library, recognised, Recognised};

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
        if let Some(code) = rules::oauth(&o.error, o.suberror.as_deref()) {
            return code;
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
        if let Some(c) = ev
            .server_reply
            .as_deref()
            .and_then(|r| rules::reply(r, ctx))
        {
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
    rules::kind(err.kind(), ev.http_status)
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
