//! The one table of Microsoft Entra `AADSTS` codes: for each, the catalog entry that explains it
//! and how a token request that got it is handled. Classification (`oauth::errors::classify`) and
//! diagnosis (`diagnose::code_for`) both read it, so the two cannot disagree.
//!
//! Codes without a handling fall through to the RFC 6749 `error` value (Microsoft advises to
//! branch on `error`; the numeric codes only refine it; see docs/provider-facts.md).

use crate::error::ReauthReason;

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

/// One row: these codes, their catalog entry, their handling (`None`: decided by `error`).
pub struct Row {
    /// The AADSTS numbers.
    pub codes: &'static [i64],
    /// The catalog code.
    pub diagnostic: &'static str,
    /// How a token request that got one of them is handled.
    pub handling: Option<Classification>,
}

use Classification::*;
use ReauthReason::*;

const fn row(
    codes: &'static [i64],
    diagnostic: &'static str,
    handling: Option<Classification>,
) -> Row {
    Row {
        codes,
        diagnostic,
        handling,
    }
}

/// The table.
#[rustfmt::skip]
pub const TABLE: &[Row] = &[
    row(&[700082, 70008, 700084], "MC-REFRESH-TOKEN-EXPIRED", Some(Reauthorize(RefreshTokenExpired))),
    row(&[50173], "MC-REFRESH-TOKEN-REVOKED", Some(Reauthorize(RefreshTokenRevoked))),
    row(&[65001], "MC-CONSENT-REQUIRED", Some(Reauthorize(ConsentRequired))),
    row(&[90094, 90095], "MC-ADMIN-CONSENT-REQUIRED", Some(Reauthorize(ConsentRequired))),
    row(&[50076, 50079, 50074, 50078, 50158], "MC-MFA-REQUIRED", Some(Reauthorize(InteractionRequired))),
    row(&[53003, 53000, 53001], "MC-CONDITIONAL-ACCESS-BLOCKED", Some(Reauthorize(ConditionalAccess))),
    row(&[530035], "MC-SECURITY-DEFAULTS", Some(Reauthorize(ConditionalAccess))),
    row(&[70043], "MC-SIGN-IN-FREQUENCY", Some(Reauthorize(SignInFrequency))),
    row(&[50057], "MC-ACCOUNT-DISABLED", Some(Reauthorize(AccountDisabled))),
    row(&[65004], "MC-CONSENT-DECLINED", Some(Denied)),
    row(&[700016, 700011], "MC-APP-NOT-FOUND", Some(Configuration)),
    row(&[7000215], "MC-CLIENT-SECRET-INVALID", Some(Configuration)),
    row(&[7000222], "MC-CLIENT-SECRET-EXPIRED", Some(Configuration)),
    row(&[7000218], "MC-PUBLIC-CLIENT-FLOWS-DISABLED", Some(Configuration)),
    row(&[700025], "MC-PUBLIC-CLIENT-SENT-SECRET", Some(Configuration)),
    row(&[50011, 500113], "MC-REDIRECT-URI-MISMATCH", Some(Configuration)),
    row(&[50194, 9002332, 500208, 50020, 9001023], "MC-WRONG-AUTHORITY", Some(Configuration)),
    row(&[500011], "MC-EXCHANGE-NOT-AVAILABLE", Some(Configuration)),
    row(&[650057, 65005, 650056, 70011, 700022], "MC-PERMISSIONS-NOT-CONFIGURED", Some(Configuration)),
    row(&[50105], "MC-USER-NOT-ASSIGNED", Some(Configuration)),
    row(&[90055, 50196], "MC-IDP-THROTTLED", Some(Transient)),
    row(&[54005, 9002313, 90014, 900144, 700054, 70018, 500112, 501481], "MC-REQUEST-REJECTED", None),
    row(&[50126, 50134], "MC-INVALID-CREDENTIALS", None),
    row(&[70019], "MC-DEVICE-CODE-EXPIRED", None),
];

/// The row of an AADSTS code.
pub fn lookup(code: i64) -> Option<&'static Row> {
    TABLE.iter().find(|r| r.codes.contains(&code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_appears_once_and_every_entry_exists() {
        let mut seen = std::collections::BTreeSet::new();
        for r in TABLE {
            for c in r.codes {
                assert!(seen.insert(*c), "AADSTS{c} appears twice");
            }
            assert!(
                super::super::catalog()
                    .iter()
                    .any(|e| e.code == r.diagnostic),
                "{} is not in the catalog",
                r.diagnostic
            );
        }
    }
}
