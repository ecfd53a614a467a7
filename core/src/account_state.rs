//! The state of an account as hosts see it: [`AccountState`], the [`Status`] JSON, and the one
//! mapping from a stored token record to them.

use serde::{Deserialize, Serialize};

use crate::error::ReauthReason;
use crate::model::{Account, Flow, Transport};
use crate::oauth::Identity;
use crate::store::{StoredState, TokenRecord};

/// The connection state of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    /// No tokens.
    NotConnected,
    /// Tokens are usable.
    Connected,
    /// Connect again (see `reason`).
    NeedsReauthorization,
    /// The last refresh failed (see `last_error`).
    Error,
}

/// The status of an account (the C ABI's `mc_account_status_get` JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Account id.
    pub account_id: String,
    /// Mailbox.
    pub mailbox: String,
    /// State.
    pub state: AccountState,
    /// Why re-authorization is needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<ReauthReason>,
    /// Flow used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<Flow>,
    /// Who signed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// Granted scopes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Access token expiry (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Seconds until the access token expires (negative = expired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<i64>,
    /// Whether a refresh token is held.
    pub has_refresh_token: bool,
    /// When connected (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected_at: Option<String>,
    /// When last refreshed (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refreshed_at: Option<String>,
    /// Last refresh error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Connected, but signing in again will be needed when the access token expires (the
    /// provider issued no refresh token): when, and the diagnostic code that explains it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reauthorization_due: Option<ReauthorizationDue>,
    /// Whether the account that signed in was checked against the account's login (`false` only
    /// for registrations with `"verify_identity": false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_checked: Option<bool>,
    /// How mail travels for this account (accounts that may use Microsoft Graph).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<TransportStatus>,
}

/// How an account's mail travels, and why.
#[derive(Debug, Clone, Serialize)]
pub struct TransportStatus {
    /// The account's setting: `smtp_imap`, `graph` or `auto`.
    pub configured: Transport,
    /// How mail is sent now: `smtp` or `graph`.
    pub send: &'static str,
    /// Why `auto` sends over Graph: `smtp_auth_disabled` (the SMTP server answered `5.7.139`,
    /// diagnostics `MC-SMTP-AUTH-DISABLED-TENANT` / `-MAILBOX`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// Since when `auto` sends over Graph (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

/// How `account` sends, given what its record remembers.
pub fn transport_of(account: &Account, rec: Option<&TokenRecord>) -> TransportStatus {
    let disabled = rec.and_then(|r| r.meta.smtp_auth_disabled_at);
    let graph = match account.transport {
        Transport::Graph => true,
        Transport::Auto => disabled.is_some(),
        Transport::SmtpImap => false,
    };
    TransportStatus {
        configured: account.transport,
        send: if graph { "graph" } else { "smtp" },
        reason: (account.transport == Transport::Auto && disabled.is_some())
            .then_some("smtp_auth_disabled"),
        since: (account.transport == Transport::Auto)
            .then_some(disabled)
            .flatten()
            .and_then(rfc3339),
    }
}

/// When an account will need signing in again although nothing failed yet.
#[derive(Debug, Clone, Serialize)]
pub struct ReauthorizationDue {
    /// When the access token expires (RFC 3339).
    pub at: Option<String>,
    /// The diagnostic code (`MC-NO-REFRESH-TOKEN`).
    pub code: &'static str,
}

impl From<StoredState> for AccountState {
    fn from(s: StoredState) -> AccountState {
        match s {
            StoredState::Connected => AccountState::Connected,
            StoredState::NeedsReauthorization => AccountState::NeedsReauthorization,
            StoredState::Error => AccountState::Error,
        }
    }
}

/// The state of an account with this token record (none: not connected).
pub fn state_of(rec: Option<&TokenRecord>) -> AccountState {
    rec.map_or(AccountState::NotConnected, |r| r.meta.state.into())
}

/// Now, in unix seconds.
pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Unix seconds as RFC 3339.
pub(crate) fn rfc3339(t: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// The status of `account` with this token record. Never touches the network.
pub fn status_of(account: &Account, rec: Option<&TokenRecord>) -> Status {
    let mut s = Status {
        account_id: account.id.clone(),
        mailbox: account.mailbox.clone(),
        state: AccountState::NotConnected,
        reason: None,
        flow: None,
        identity: None,
        scopes: vec![],
        expires_at: None,
        expires_in_secs: None,
        has_refresh_token: false,
        connected_at: None,
        refreshed_at: None,
        last_error: None,
        reauthorization_due: None,
        identity_checked: None,
        transport: account
            .transport
            .uses_graph()
            .then(|| transport_of(account, rec)),
    };
    let Some(rec) = rec else { return s };
    let m = &rec.meta;
    s.state = m.state.into();
    s.reason = m.reauth_reason;
    s.flow = Some(m.flow);
    s.identity = m.identity.clone();
    s.scopes = m.scopes.clone();
    s.expires_at = m.access_expires_at.and_then(rfc3339);
    s.expires_in_secs = m.access_expires_at.map(|e| e - now());
    s.has_refresh_token = m.has_refresh_token;
    s.connected_at = rfc3339(m.connected_at);
    s.refreshed_at = m.refreshed_at.and_then(rfc3339);
    s.last_error = m.last_error.clone();
    if m.flow != Flow::ClientCredentials {
        s.identity_checked = Some(m.identity.as_ref().is_some_and(|i| !i.names.is_empty()));
        if m.state == StoredState::Connected && !m.has_refresh_token {
            s.reauthorization_due = Some(ReauthorizationDue {
                at: s.expires_at.clone(),
                code: "MC-NO-REFRESH-TOKEN",
            });
        }
    }
    s
}
