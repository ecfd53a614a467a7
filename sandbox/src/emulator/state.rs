//! The emulator's live state: the directory (from the configuration, changeable at run time),
//! browser sessions, sign-in transactions, codes, refresh and device grants, issued access
//! tokens, faults and statistics.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::config::{AppConfig, EmulatorConfig, SignInAudience, TenantConfig, UserConfig};
use super::errors::{self, AadError};
use super::faults::{self, ActiveFault, Fault, RequestFacts};
use super::jwt::SigningKey;
use super::scopes::{self, Scope};

/// Unix time in seconds.
pub fn now() -> i64 {
    now_ms() / 1000
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `len` random URL-safe characters.
pub fn random_token(len: usize) -> String {
    let mut bytes = vec![0u8; len.div_ceil(4) * 3 + 3];
    rand::rng().fill(&mut bytes[..]);
    let mut s = URL_SAFE_NO_PAD.encode(&bytes);
    s.truncate(len);
    s
}

/// A stable GUID derived from `parts` (for object ids).
pub fn derived_guid(parts: &[&str]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, parts.join("\u{1}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.as_ref()[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

/// Counters for tests and vendors (`GET /_sandbox/stats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Token-endpoint requests per grant type (short names: `authorization_code`,
    /// `refresh_token`, `device_code`, `client_credentials`, or what was sent), faulted ones included.
    pub token_requests: BTreeMap<String, u64>,
    /// Refresh requests whose refresh token was recognised, per client and user.
    pub refreshes: Vec<RefreshCount>,
    /// Successful token responses per grant type.
    pub tokens_issued: BTreeMap<String, u64>,
    /// Device-code polls (token requests with the device_code grant).
    pub device_polls: u64,
    /// `/devicecode` requests.
    pub device_code_requests: u64,
    /// `GET /authorize` requests.
    pub authorize_requests: u64,
    /// Sign-in pages rendered (picker, username, password, MFA, consent, device pages).
    pub page_views: u64,
    /// Introspection requests.
    pub introspections: u64,
    /// Faults applied.
    pub faults_applied: u64,
    /// Microsoft Graph requests (`/v1.0/...`), refused ones included.
    #[serde(default)]
    pub graph_requests: u64,
    /// Messages Graph handed to Postfix (sendMail and draft sends).
    #[serde(default)]
    pub graph_messages_submitted: u64,
    /// Graph requests answered by the throttling switch.
    #[serde(default)]
    pub graph_throttled: u64,
    /// Graph requests answered by the outage switch (`GraphSettings::outage`).
    #[serde(default)]
    pub graph_outage_answers: u64,
    /// SMTP AUTH attempts the SMTP front refused with `535 5.7.139` (the SMTP AUTH switch).
    #[serde(default)]
    pub smtp_auth_disabled_refusals: u64,
}

/// Refreshes of one client and user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshCount {
    /// Client id.
    pub client_id: String,
    /// UPN.
    pub user: String,
    /// Refresh requests with a recognised refresh token.
    pub count: u64,
}

impl Stats {
    /// Refresh requests with a recognised refresh token, all clients and users.
    pub fn refreshes_total(&self) -> u64 {
        self.refreshes.iter().map(|r| r.count).sum()
    }

    /// Every token request with `grant_type=refresh_token`, faulted ones included.
    pub fn refresh_requests_total(&self) -> u64 {
        self.token_requests
            .get("refresh_token")
            .copied()
            .unwrap_or(0)
    }

    /// Refreshes of one client and user.
    pub fn refreshes_for(&self, client_id: &str, user: &str) -> u64 {
        self.refreshes
            .iter()
            .filter(|r| {
                r.client_id.eq_ignore_ascii_case(client_id) && r.user.eq_ignore_ascii_case(user)
            })
            .map(|r| r.count)
            .sum()
    }

    /// Token requests of one grant type.
    pub fn token_requests_for(&self, grant: &str) -> u64 {
        self.token_requests.get(grant).copied().unwrap_or(0)
    }

    pub(crate) fn count_refresh(&mut self, client_id: &str, user: &str) {
        match self
            .refreshes
            .iter_mut()
            .find(|r| r.client_id == client_id && r.user == user)
        {
            Some(r) => r.count += 1,
            None => self.refreshes.push(RefreshCount {
                client_id: client_id.into(),
                user: user.into(),
                count: 1,
            }),
        }
    }
}

/// Which accounts the `{tenant}` segment admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    /// `/common`.
    Common,
    /// `/organizations`.
    Organizations,
    /// `/consumers` (or the consumer tenant id).
    Consumers,
    /// A tenant by id or verified domain (the id).
    Tenant(String),
}

/// An account signed in to a browser session.
#[derive(Debug, Clone)]
pub struct SessionAccount {
    pub upn: String,
    pub mfa_done: bool,
}

/// A browser's sign-in session (the ESTSAUTH cookie).
#[derive(Debug, Clone, Default)]
pub struct BrowserSession {
    pub accounts: Vec<SessionAccount>,
    /// `sid` claim.
    pub sid: String,
}

/// What a sign-in transaction is for.
#[derive(Debug, Clone)]
pub enum Purpose {
    /// An authorization request; ends in a redirect to the app.
    Authorize(AuthorizeRequest),
    /// A device-code approval; ends on a "you may close this window" page.
    Device { device_code: String },
}

/// The parameters of an authorization request kept during sign-in.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub response_mode: String,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub public_redirect: bool,
    pub spa: bool,
}

/// Where a sign-in transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Picker,
    Username,
    Password,
    Mfa,
    DeviceConfirm,
    Consent,
    AdminApproval,
}

/// A sign-in transaction (`ctx`/`flowToken` in Microsoft's pages).
#[derive(Debug, Clone)]
pub struct Flow {
    pub id: String,
    pub purpose: Purpose,
    pub segment: String,
    pub authority: Authority,
    pub client_id: String,
    pub scopes: Vec<Scope>,
    pub step: Step,
    pub upn: Option<String>,
    pub authenticated: bool,
    pub mfa_done: bool,
    pub mfa_forced: bool,
    pub device_confirmed: bool,
    pub force_consent: bool,
    pub login_hint: Option<String>,
    pub inline_error: Option<String>,
    pub consent_done: bool,
    pub session_id: Option<String>,
    pub created: i64,
}

/// An issued authorization code.
#[derive(Debug, Clone)]
pub struct AuthCode {
    pub client_id: String,
    pub upn: String,
    pub tid: String,
    pub scopes: Vec<Scope>,
    pub request: AuthorizeRequest,
    pub amr: Vec<String>,
    pub sid: String,
    pub expires_at: i64,
    pub redeemed: bool,
}

/// A refresh token's grant.
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub client_id: String,
    pub upn: String,
    pub tid: String,
    pub scopes: Vec<Scope>,
    pub public: bool,
    pub spa: bool,
    pub amr: Vec<String>,
    pub sid: String,
    pub issued_ms: i64,
    pub last_used: i64,
    /// When it was first exchanged (rotation); with a reuse grace it dies after that.
    pub rotated_at: Option<i64>,
    /// The refresh token its latest exchange issued.
    pub successor: Option<String>,
}

/// State of a device code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceStatus {
    Pending,
    Approved {
        upn: String,
        amr: Vec<String>,
        sid: String,
    },
    Declined,
    Redeemed,
}

/// A device-code grant.
#[derive(Debug, Clone)]
pub struct DeviceGrant {
    pub client_id: String,
    pub user_code: String,
    pub segment: String,
    pub authority: Authority,
    pub scopes: Vec<Scope>,
    pub expires_at: i64,
    pub interval: u64,
    pub last_poll_ms: Option<i64>,
    pub status: DeviceStatus,
}

/// An issued access token (for introspection and revocation).
#[derive(Debug, Clone)]
pub struct AccessRecord {
    pub upn: Option<String>,
    pub revoked: bool,
}

/// Everything mutable.
#[derive(Debug, Default)]
pub struct State {
    pub config: EmulatorConfig,
    pub faults: Vec<ActiveFault>,
    pub stats: Stats,
    pub sessions: HashMap<String, BrowserSession>,
    pub flows: HashMap<String, Flow>,
    pub codes: HashMap<String, AuthCode>,
    pub refresh_tokens: HashMap<String, RefreshGrant>,
    pub device_codes: HashMap<String, DeviceGrant>,
    pub access_tokens: HashMap<String, AccessRecord>,
    /// Per user (lowercase UPN): refresh tokens issued before this (ms) are revoked.
    pub tokens_valid_from: HashMap<String, i64>,
    /// PKCE verifiers presented at code redemption (for leak tests).
    pub code_verifiers: Vec<String>,
    /// Every access token issued (for leak tests; `access_tokens` is keyed by `uti`).
    pub issued_access_tokens: Vec<String>,
    /// Microsoft Graph's live data (upload sessions, internal tokens, rewritten drafts).
    pub graph: super::graph::GraphData,
}

/// Every secret the emulator issued or was shown, for tests that search logs, files and output
/// for leaks ([`super::Emulator::issued_secrets`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedSecrets {
    /// Access tokens issued.
    pub access_tokens: Vec<String>,
    /// Refresh tokens issued.
    pub refresh_tokens: Vec<String>,
    /// Authorization codes issued.
    pub authorization_codes: Vec<String>,
    /// Device codes issued (the secret half; the user code is meant to be shown).
    pub device_codes: Vec<String>,
    /// PKCE verifiers presented at code redemption.
    pub code_verifiers: Vec<String>,
    /// Client secrets configured for the apps.
    pub client_secrets: Vec<String>,
}

impl IssuedSecrets {
    /// All of them, each with its kind (`access_token`, `refresh_token`, ...).
    pub fn all(&self) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        for (kind, list) in [
            ("access_token", &self.access_tokens),
            ("refresh_token", &self.refresh_tokens),
            ("authorization_code", &self.authorization_codes),
            ("device_code", &self.device_codes),
            ("code_verifier", &self.code_verifiers),
            ("client_secret", &self.client_secrets),
        ] {
            out.extend(list.iter().map(|s| (kind, s.as_str())));
        }
        out
    }
}

/// State shared by all handlers.
pub struct Shared {
    pub base_url: String,
    pub key: Arc<SigningKey>,
    pub tls: bool,
    state: Mutex<State>,
    /// The mail stack behind Graph and the SMTP front.
    pub graph: super::graph::Backend,
    /// Turns true when the emulator stops (background listeners watch it).
    pub stop: tokio::sync::watch::Receiver<bool>,
}

impl Shared {
    pub fn new(
        base_url: String,
        key: Arc<SigningKey>,
        tls: bool,
        config: EmulatorConfig,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Shared {
        Shared {
            base_url,
            key,
            tls,
            state: Mutex::new(State {
                config,
                ..State::default()
            }),
            graph: super::graph::Backend::default(),
            stop,
        }
    }

    /// Lock the state (a poisoned lock is taken over: the state stays usable for tests).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    /// Resolve the `{tenant}` path segment.
    pub fn authority(&self, segment: &str) -> Option<Authority> {
        let s = segment.to_ascii_lowercase();
        match s.as_str() {
            "common" => return Some(Authority::Common),
            "organizations" => return Some(Authority::Organizations),
            "consumers" => return Some(Authority::Consumers),
            _ => {}
        }
        let t = self.config.tenants.iter().find(|t| {
            t.id.eq_ignore_ascii_case(&s) || t.domains.iter().any(|d| d.eq_ignore_ascii_case(&s))
        })?;
        if t.personal {
            Some(Authority::Consumers)
        } else {
            Some(Authority::Tenant(t.id.clone()))
        }
    }

    pub fn tenant(&self, id: &str) -> Option<&TenantConfig> {
        self.config
            .tenants
            .iter()
            .find(|t| t.id.eq_ignore_ascii_case(id))
    }

    /// The consumer tenant's id.
    pub fn consumer_tenant_id(&self) -> String {
        self.config
            .tenants
            .iter()
            .find(|t| t.personal)
            .map(|t| t.id.clone())
            .unwrap_or_else(|| super::config::CONSUMER_TENANT_ID.into())
    }

    /// Name of the directory for messages.
    pub fn directory_name(&self, authority: &Authority, segment: &str) -> String {
        match authority {
            Authority::Tenant(id) => self
                .tenant(id)
                .map(|t| t.display_name.clone())
                .unwrap_or_else(|| segment.into()),
            Authority::Consumers => "Microsoft Accounts".into(),
            _ => segment.into(),
        }
    }

    pub fn app(&self, client_id: &str) -> Option<&AppConfig> {
        self.config
            .apps
            .iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }

    pub fn user(&self, upn: &str) -> Option<&UserConfig> {
        self.config
            .users
            .iter()
            .find(|u| u.upn.eq_ignore_ascii_case(upn))
    }

    /// A user by UPN or mailbox address.
    pub fn user_by_address(&self, address: &str) -> Option<&UserConfig> {
        self.user(address).or_else(|| {
            self.config
                .users
                .iter()
                .find(|u| u.mailbox_address().eq_ignore_ascii_case(address))
        })
    }

    /// Object id of a user.
    pub fn oid(&self, u: &UserConfig) -> String {
        u.object_id.clone().unwrap_or_else(|| {
            derived_guid(&[&u.tenant.to_ascii_lowercase(), &u.upn.to_ascii_lowercase()])
        })
    }

    /// Whether the app can be used through this authority (AADSTS700016, 50194, 9002332).
    pub fn check_app(
        &self,
        app_id: &str,
        authority: &Authority,
        segment: &str,
    ) -> Result<&AppConfig, AadError> {
        let dir = self.directory_name(authority, segment);
        let app = self
            .app(app_id)
            .ok_or_else(|| errors::app_not_found(app_id, &dir))?;
        let multi = app.sign_in_audience != SignInAudience::AzureAdMyOrg;
        match authority {
            Authority::Tenant(t) => {
                if !app.home_tenant.eq_ignore_ascii_case(t) && !multi {
                    return Err(errors::app_not_found(app_id, &dir));
                }
            }
            Authority::Common | Authority::Organizations => {
                if !multi {
                    return Err(errors::not_multi_tenant(&app.client_id, &app.display_name));
                }
            }
            Authority::Consumers => {
                if app.sign_in_audience != SignInAudience::AzureAdAndPersonalMicrosoftAccount {
                    return Err(errors::not_for_consumers(&app.client_id, &app.display_name));
                }
            }
        }
        Ok(app)
    }

    /// Whether `user` may sign in to `app` through `authority` (AADSTS50020 otherwise).
    pub fn check_user(
        &self,
        user: &UserConfig,
        app: &AppConfig,
        authority: &Authority,
    ) -> Result<(), AadError> {
        let idp = if user.personal {
            "live.com"
        } else {
            "the user's organization"
        };
        let refuse = |dir: &str| {
            AadError::new(
                "invalid_request",
                50020,
                format!("User account '{}' from identity provider '{idp}' does not exist in tenant '{dir}' and cannot access the application '{}'({}) in that tenant. The account needs to be added as an external user in the tenant first. Sign out and sign in again with a different Azure Active Directory user account.", user.upn, app.client_id, app.display_name),
            )
        };
        match authority {
            Authority::Consumers if !user.personal => Err(refuse("Microsoft Accounts")),
            Authority::Organizations if user.personal => Err(refuse("organizations")),
            Authority::Common
                if user.personal
                    && app.sign_in_audience
                        != SignInAudience::AzureAdAndPersonalMicrosoftAccount =>
            {
                Err(refuse(
                    &self
                        .tenant(&app.home_tenant)
                        .map(|t| t.display_name.clone())
                        .unwrap_or_default(),
                ))
            }
            Authority::Tenant(t) if !user.tenant.eq_ignore_ascii_case(t) => Err(refuse(
                &self
                    .tenant(t)
                    .map(|t| t.display_name.clone())
                    .unwrap_or_default(),
            )),
            _ if !user.personal
                && app.sign_in_audience == SignInAudience::AzureAdMyOrg
                && !user.tenant.eq_ignore_ascii_case(&app.home_tenant) =>
            {
                Err(refuse(
                    &self
                        .tenant(&app.home_tenant)
                        .map(|t| t.display_name.clone())
                        .unwrap_or_default(),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Scopes of the request not yet consented to by the user or the tenant admin.
    pub fn missing_consent(&self, upn: &str, client_id: &str, scopes: &[Scope]) -> Vec<Scope> {
        let Some(user) = self.user(upn) else {
            return scopes.to_vec();
        };
        let mut granted: Vec<String> = user
            .consented
            .iter()
            .filter(|g| g.client_id.eq_ignore_ascii_case(client_id))
            .flat_map(|g| g.scopes.iter().cloned())
            .collect();
        if let Some(t) = self.tenant(&user.tenant) {
            granted.extend(
                t.admin_consents
                    .iter()
                    .filter(|g| g.client_id.eq_ignore_ascii_case(client_id))
                    .flat_map(|g| g.scopes.iter().cloned()),
            );
        }
        scopes
            .iter()
            .filter(|s| !scopes::consented_to(&granted, s))
            .cloned()
            .collect()
    }

    /// Record consent (by the user, or for the whole tenant).
    pub fn grant_consent(
        &mut self,
        upn: &str,
        client_id: &str,
        scopes: &[Scope],
        for_tenant: bool,
    ) {
        let list: Vec<String> = scopes.iter().map(Scope::display).collect();
        // A consent creates the app's service principal in the tenant (Entra does, for
        // multi-tenant apps in other tenants too).
        let tenant = self.user(upn).map(|u| u.tenant.clone()).unwrap_or_default();
        self.ensure_service_principal(&tenant, client_id);
        let target = if for_tenant {
            let tenant = self.user(upn).map(|u| u.tenant.clone()).unwrap_or_default();
            self.config
                .tenants
                .iter_mut()
                .find(|t| t.id.eq_ignore_ascii_case(&tenant))
                .map(|t| &mut t.admin_consents)
        } else {
            self.config
                .users
                .iter_mut()
                .find(|u| u.upn.eq_ignore_ascii_case(upn))
                .map(|u| &mut u.consented)
        };
        if let Some(grants) = target {
            match grants
                .iter_mut()
                .find(|g| g.client_id.eq_ignore_ascii_case(client_id))
            {
                Some(g) => {
                    for s in list {
                        if !g.scopes.iter().any(|have| have.eq_ignore_ascii_case(&s)) {
                            g.scopes.push(s);
                        }
                    }
                }
                None => grants.push(super::config::ConsentGrant {
                    client_id: client_id.into(),
                    scopes: list,
                }),
            }
        }
    }

    /// Whether `client_id` has a service principal in `tenant`: created there (Graph, a
    /// consent), its home tenant's unless Graph created the app without one, or a consent of
    /// the configuration for it in that tenant.
    pub fn has_service_principal(&self, tenant: &str, client_id: &str) -> bool {
        let Some(t) = self.tenant(tenant) else {
            return false;
        };
        if t.personal {
            return false;
        }
        let same = |c: &str| c.eq_ignore_ascii_case(client_id);
        self.app(client_id)
            .is_some_and(|a| a.service_principal && a.home_tenant.eq_ignore_ascii_case(tenant))
            || t.service_principals.iter().any(|c| same(c))
            || t.admin_consents.iter().any(|g| same(&g.client_id))
            || self.config.users.iter().any(|u| {
                u.tenant.eq_ignore_ascii_case(tenant)
                    && u.consented.iter().any(|g| same(&g.client_id))
            })
    }

    /// Create `client_id`'s service principal in `tenant` unless it has one.
    pub fn ensure_service_principal(&mut self, tenant: &str, client_id: &str) {
        if self.has_service_principal(tenant, client_id) || self.app(client_id).is_none() {
            return;
        }
        let home = self
            .app(client_id)
            .is_some_and(|a| a.home_tenant.eq_ignore_ascii_case(tenant));
        if home {
            if let Some(a) = self
                .config
                .apps
                .iter_mut()
                .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
            {
                a.service_principal = true;
            }
        } else if let Some(t) = self
            .config
            .tenants
            .iter_mut()
            .find(|t| t.id.eq_ignore_ascii_case(tenant))
        {
            t.service_principals.push(client_id.to_string());
        }
    }

    /// Take a matching fault.
    pub fn take_fault(
        &mut self,
        facts: &RequestFacts,
        want: impl Fn(&Fault) -> bool,
    ) -> Option<Fault> {
        let f = faults::take(&mut self.faults, facts, want);
        if f.is_some() {
            self.stats.faults_applied += 1;
        }
        f
    }

    /// Drop expired codes, flows and device codes.
    pub fn sweep(&mut self) {
        let t = now();
        self.codes.retain(|_, c| c.expires_at + 3600 > t);
        self.flows.retain(|_, f| f.created + 3600 > t);
        self.device_codes.retain(|_, d| d.expires_at + 3600 > t);
    }
}
