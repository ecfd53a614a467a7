//! What the emulator knows: tenants, app registrations, users and token settings.
//!
//! Everything here is plain data with serde, so the same structures come from a JSON file
//! (`mc-emulator --config`), from the control API (`POST /_sandbox/...`) or from Rust code.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;

/// The consumer ("Microsoft accounts") tenant id used by Microsoft for personal accounts.
pub const CONSUMER_TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// Tenant id of the standard work tenant "Example Corp".
pub const EXAMPLE_TENANT_ID: &str = "6f1c1f3a-3b8e-4a35-9d2c-7a0e5b1c2d3e";
/// Tenant id of the second work tenant "Fabrikam".
pub const FABRIKAM_TENANT_ID: &str = "0b5e2d71-8c44-4f0a-b6a9-3d2e1f0a9c88";
/// Client id of the standard public desktop app.
pub const DESKTOP_APP_ID: &str = "d3b07384-d113-4ec6-9c0e-2f6a1b7c8d90";
/// Client id of the standard confidential service app (client credentials).
pub const SERVICE_APP_ID: &str = "a1c2e3f4-0b1d-4e2f-8a3b-5c6d7e8f9a0b";
/// Secret value of the service app.
pub const SERVICE_APP_SECRET: &str = "sandbox-service-secret";
/// Client id of the app whose `http://localhost` is registered under the Web platform.
pub const WEB_APP_ID: &str = "e5f6a7b8-c9d0-4e1f-a2b3-c4d5e6f7a8b9";
/// Client id of the vendor's multi-tenant public "mailconnect setup" app, through which a
/// tenant administrator creates registrations with Microsoft Graph (`mailconnect admin
/// register`). Its delegated Graph permissions are not consented up front: the administrator
/// consents on the consent page at the first sign-in.
pub const SETUP_APP_ID: &str = "5c7e9a1b-2d3f-4a6b-8c9d-0e1f2a3b4c5d";

/// The whole emulator configuration. `Default` is an empty directory on 127.0.0.1:0;
/// [`EmulatorConfig::sandbox`] is the standard local tenant.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmulatorConfig {
    /// Address to listen on; `None` = `127.0.0.1:0` (a free port).
    pub bind: Option<SocketAddr>,
    /// The base URL the emulator announces (in metadata, `iss`, `verification_uri`) when it is
    /// reached through another name, e.g. `https://login.sandbox.test`. `None` = the bound address.
    pub public_base_url: Option<String>,
    /// Serve HTTPS with this certificate instead of plain HTTP.
    pub tls: Option<TlsConfig>,
    /// RSA private key (PKCS#1 or PKCS#8 PEM) to sign tokens with. `None` = a 2048-bit key
    /// generated once per process.
    pub signing_key_pem_path: Option<PathBuf>,
    /// Directories (Entra tenants), including the consumer tenant for personal accounts.
    pub tenants: Vec<TenantConfig>,
    /// App registrations.
    pub apps: Vec<AppConfig>,
    /// Users and mailboxes.
    pub users: Vec<UserConfig>,
    /// Token lifetimes and sizes.
    pub tokens: TokenSettings,
    /// Microsoft Graph (`/v1.0`): limits and failure switches.
    pub graph: super::graph::GraphSettings,
}

/// Certificate and key for HTTPS.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the certificate chain (leaf first).
    pub cert_pem_path: PathBuf,
    /// PEM file with the private key.
    pub key_pem_path: PathBuf,
}

/// A directory (Entra ID tenant).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantConfig {
    /// Tenant id (GUID).
    pub id: String,
    /// Organisation name shown on pages and in AADSTS texts.
    pub display_name: String,
    /// Verified domains; each can be used as the `{tenant}` path segment.
    pub domains: Vec<String>,
    /// The consumer tenant of personal Microsoft accounts.
    pub personal: bool,
    /// Whether ordinary users may consent to apps (otherwise only admins; users see "Need admin approval").
    pub users_can_consent: bool,
    /// Tenant-wide (admin) consent grants.
    pub admin_consents: Vec<ConsentGrant>,
    /// SMTP AUTH switched off for the organisation (`Set-TransportConfig
    /// -SmtpClientAuthenticationDisabled $true`): the SMTP front answers AUTH with
    /// `535 5.7.139 … disabled for the Tenant` unless the mailbox overrides it.
    pub smtp_client_authentication_disabled: bool,
    /// Client ids of apps with a service principal (enterprise application) in this tenant
    /// besides their home tenant's: created with Graph's `POST /servicePrincipals` or by a
    /// consent given here. Microsoft's own (Exchange Online, Graph) are always there.
    pub service_principals: Vec<String>,
}

impl Default for TenantConfig {
    fn default() -> Self {
        TenantConfig {
            id: String::new(),
            display_name: String::new(),
            domains: vec![],
            personal: false,
            users_can_consent: true,
            admin_consents: vec![],
            smtp_client_authentication_disabled: false,
            service_principals: vec![],
        }
    }
}

/// Who may sign in to an app (`signInAudience` in the app manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SignInAudience {
    /// Accounts in the home tenant only (single tenant).
    #[serde(rename = "AzureADMyOrg")]
    #[default]
    AzureAdMyOrg,
    /// Work/school accounts of any tenant.
    #[serde(rename = "AzureADMultipleOrgs")]
    AzureAdMultipleOrgs,
    /// Work/school accounts of any tenant and personal Microsoft accounts.
    #[serde(rename = "AzureADandPersonalMicrosoftAccount")]
    AzureAdAndPersonalMicrosoftAccount,
}

/// Platform under which a redirect URI is registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// "Mobile and desktop applications": public client.
    #[default]
    MobileDesktop,
    /// "Web": the token endpoint treats the client as confidential.
    Web,
    /// "Single-page application": public, refresh tokens live 24 h.
    Spa,
}

/// A registered redirect URI.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectUri {
    /// The URI as registered (`http://localhost` matches any port).
    pub uri: String,
    /// Platform.
    #[serde(default)]
    pub platform: Platform,
}

/// A client secret of a confidential app.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSecret {
    /// The secret value (what the client sends).
    pub value: String,
    /// Expiry as Unix seconds; `None` = never.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// Graph's `keyId` of the password credential; `None` = derived from the app and value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Graph's `displayName` of the password credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Graph's `startDateTime` as Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<i64>,
}

impl ClientSecret {
    /// A secret that never expires, as configuration files write it.
    pub fn new(value: impl Into<String>, expires_at: Option<i64>) -> ClientSecret {
        ClientSecret {
            value: value.into(),
            expires_at,
            key_id: None,
            display_name: None,
            starts_at: None,
        }
    }
}

/// One permission in an app's `requiredResourceAccess` ("API permissions" in the portal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceAccess {
    /// The permission's id on the resource's service principal.
    pub id: String,
    /// `Scope` (delegated) or `Role` (application).
    #[serde(rename = "type")]
    pub kind: String,
}

/// The permissions an app declares on one resource (Graph's `requiredResourceAccess` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredResourceAccess {
    /// The resource's application id (`00000002-0000-0ff1-ce00-000000000000` for Exchange Online).
    #[serde(rename = "resourceAppId")]
    pub resource_app_id: String,
    /// The permissions.
    #[serde(rename = "resourceAccess", default)]
    pub resource_access: Vec<ResourceAccess>,
}

/// An app registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppConfig {
    /// Application (client) id.
    pub client_id: String,
    /// Display name (consent page, `app_displayname` claim).
    pub display_name: String,
    /// Tenant id the app is registered in.
    pub home_tenant: String,
    /// Supported account types.
    pub sign_in_audience: SignInAudience,
    /// A pure public client (desktop/mobile app without credentials): a request that sends a
    /// client secret is refused with AADSTS700025.
    pub public_client: bool,
    /// "Allow public client flows" (needed for the device code flow, AADSTS7000218 otherwise).
    pub allow_public_client_flows: bool,
    /// Registered redirect URIs.
    pub redirect_uris: Vec<RedirectUri>,
    /// Client secrets.
    pub secrets: Vec<ClientSecret>,
    /// Application permissions granted by the admin (`IMAP.AccessAsApp`, `POP.AccessAsApp`,
    /// `SMTP.SendAsApp`), put in the `roles` claim of app-only tokens.
    pub app_roles_granted: Vec<String>,
    /// Mailboxes the app's service principal may open (`Add-MailboxPermission ... FullAccess`).
    pub mailbox_grants: Vec<String>,
    /// Per-app access token lifetime (a token lifetime policy).
    pub access_token_lifetime_secs: Option<u64>,
    /// Microsoft Graph application permissions granted by the admin (`Mail.Send`, `Mail.Read`,
    /// `Mail.ReadWrite`), put in the `roles` claim of app-only Graph tokens.
    pub graph_roles_granted: Vec<String>,
    /// An Exchange application access policy (`New-ApplicationAccessPolicy -AccessRight
    /// RestrictAccess`): the only mailboxes app-only Graph requests of this app may open.
    /// `None` = every mailbox of the tenant (no policy).
    pub application_access_policy: Option<Vec<String>>,
    /// The permissions the app declares (Graph's `requiredResourceAccess`, the portal's "API
    /// permissions"). Declaring grants nothing: consent does (`consented`, `admin_consents`,
    /// `app_roles_granted`). A delegated `.default` request asks for the declared ones.
    pub required_resource_access: Vec<RequiredResourceAccess>,
    /// Whether the app has a service principal in its home tenant. The portal creates one with
    /// the registration (default true); Graph's `POST /applications` does not, until
    /// `POST /servicePrincipals` or a consent.
    pub service_principal: bool,
    /// Free text of the registration (Graph's `notes`).
    pub notes: Option<String>,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            client_id: String::new(),
            display_name: String::new(),
            home_tenant: String::new(),
            sign_in_audience: SignInAudience::AzureAdMyOrg,
            public_client: false,
            allow_public_client_flows: false,
            redirect_uris: vec![],
            secrets: vec![],
            app_roles_granted: vec![],
            mailbox_grants: vec![],
            access_token_lifetime_secs: None,
            graph_roles_granted: vec![],
            application_access_policy: None,
            required_resource_access: vec![],
            service_principal: true,
            notes: None,
        }
    }
}

/// Consent of a user (or of a tenant admin for everyone) to scopes of one app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentGrant {
    /// The app.
    pub client_id: String,
    /// Consented scopes, written as in requests (`https://outlook.office.com/IMAP.AccessAsUser.All`,
    /// `offline_access`, `User.Read`); `"*"` consents to everything the app asks for.
    pub scopes: Vec<String>,
}

/// A user (an account that can sign in) and/or a mailbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserConfig {
    /// Sign-in name (UPN), e.g. `alice@example.test`.
    pub upn: String,
    /// Password.
    pub password: String,
    /// Display name (`name` claim).
    pub display_name: String,
    /// Tenant id of the user's home tenant (the consumer tenant for personal accounts).
    pub tenant: String,
    /// Primary SMTP address of the mailbox; `None` = the UPN.
    pub mailbox: Option<String>,
    /// Multi-factor authentication required at sign-in.
    pub mfa: bool,
    /// The one-time code the MFA page accepts.
    pub mfa_code: String,
    /// A personal Microsoft account (Outlook.com), in the consumer tenant.
    pub personal: bool,
    /// Tenant administrator: may consent for the whole organisation.
    pub admin: bool,
    /// Whether the account can sign in at all (shared mailboxes cannot: AADSTS50057).
    pub can_sign_in: bool,
    /// Other mailboxes this user has FullAccess to (shared mailboxes).
    pub full_access: Vec<String>,
    /// Apps and scopes the user has already consented to.
    pub consented: Vec<ConsentGrant>,
    /// Object id (`oid`); `None` = derived from tenant and UPN.
    pub object_id: Option<String>,
    /// Users with FullAccess to this mailbox (the delegates of a shared mailbox); the same as
    /// listing this mailbox in each delegate's `full_access`.
    pub delegates: Vec<String>,
    /// Whether the mailbox can be reached through REST (Microsoft Graph). `false`: Graph mail
    /// requests answer `MailboxNotEnabledForRESTAPI` (no licence, soft-deleted, on-premises).
    pub rest_enabled: bool,
    /// SMTP AUTH for this mailbox (`Set-CASMailbox -SmtpClientAuthenticationDisabled`):
    /// `Some(true)` switched off (`535 5.7.139 … for the Mailbox`), `Some(false)` allowed even
    /// when the tenant switched it off, `None` = the tenant's setting.
    pub smtp_client_authentication_disabled: Option<bool>,
}

impl Default for UserConfig {
    fn default() -> Self {
        UserConfig {
            upn: String::new(),
            password: String::new(),
            display_name: String::new(),
            tenant: String::new(),
            mailbox: None,
            mfa: false,
            mfa_code: "123456".into(),
            personal: false,
            admin: false,
            can_sign_in: true,
            full_access: vec![],
            consented: vec![],
            object_id: None,
            delegates: vec![],
            rest_enabled: true,
            smtp_client_authentication_disabled: None,
        }
    }
}

impl UserConfig {
    /// The mailbox address (the `username` introspection answers).
    pub fn mailbox_address(&self) -> &str {
        self.mailbox.as_deref().unwrap_or(&self.upn)
    }

    /// Whether `address` is this user's UPN or mailbox address.
    pub fn is_address(&self, address: &str) -> bool {
        self.upn.eq_ignore_ascii_case(address)
            || self.mailbox_address().eq_ignore_ascii_case(address)
    }
}

/// Token lifetimes, sizes and grant behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSettings {
    /// Access token lifetime (`expires_in`). Microsoft picks 60–90 min at random; default 3900 s.
    pub access_token_lifetime_secs: u64,
    /// Target length of an access token in characters (padding claims are added; Microsoft's run
    /// to 1.5–3 KB). 0 = no padding.
    pub access_token_size: usize,
    /// id_token lifetime.
    pub id_token_lifetime_secs: u64,
    /// Length of refresh tokens in characters.
    pub refresh_token_size: usize,
    /// After a refresh token was used, how long it stays valid. `None` = like Microsoft: the old
    /// token is not revoked by rotation.
    pub refresh_token_reuse_grace_secs: Option<u64>,
    /// Refuse (AADSTS70008) a refresh token whose successor (the token its rotation issued) has
    /// itself been used: a client that lost a rotated token and went back to an older one is
    /// caught, with no timing involved. Not Microsoft's behaviour (an old token stays valid);
    /// for durability tests. Default off.
    pub refuse_superseded_refresh_tokens: bool,
    /// Refresh tokens unused this long expire (AADSTS700082). Default 90 days.
    pub refresh_token_inactivity_secs: u64,
    /// Authorization code lifetime.
    pub code_lifetime_secs: u64,
    /// Device code lifetime (`expires_in` of `/devicecode`).
    pub device_code_lifetime_secs: u64,
    /// Device code polling interval (`interval`); faster polls get `slow_down`.
    pub device_poll_interval_secs: u64,
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            access_token_lifetime_secs: 3900,
            access_token_size: 2200,
            id_token_lifetime_secs: 3600,
            refresh_token_size: 1100,
            refresh_token_reuse_grace_secs: None,
            refuse_superseded_refresh_tokens: false,
            refresh_token_inactivity_secs: 90 * 24 * 3600,
            code_lifetime_secs: 600,
            device_code_lifetime_secs: 900,
            device_poll_interval_secs: 5,
        }
    }
}

/// The standard scopes the sandbox users have already consented to for the desktop app.
/// Read a JSON file into `T` (configuration files, the mail stack's `stack.json`).
pub(crate) fn read_json_file<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        context: format!("reading {}", path.display()),
        source: e,
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

fn desktop_consent() -> ConsentGrant {
    ConsentGrant {
        client_id: DESKTOP_APP_ID.into(),
        scopes: [
            "openid",
            "profile",
            "email",
            "offline_access",
            "https://outlook.office.com/IMAP.AccessAsUser.All",
            "https://outlook.office.com/POP.AccessAsUser.All",
            "https://outlook.office.com/SMTP.Send",
            "User.Read",
        ]
        .map(String::from)
        .to_vec(),
    }
}

fn user(upn: &str, name: &str, tenant: &str) -> UserConfig {
    let local = upn.split('@').next().unwrap_or(upn);
    UserConfig {
        upn: upn.into(),
        password: format!("{local}-password"),
        display_name: name.into(),
        tenant: tenant.into(),
        consented: vec![desktop_consent()],
        ..UserConfig::default()
    }
}

impl EmulatorConfig {
    /// The standard sandbox: Example Corp, Fabrikam, the consumer tenant, their users and the
    /// three apps (see sandbox/README.md).
    pub fn sandbox() -> Self {
        let tenants = vec![
            TenantConfig {
                id: EXAMPLE_TENANT_ID.into(),
                display_name: "Example Corp".into(),
                domains: vec!["example.test".into(), "example.onmicrosoft.test".into()],
                ..TenantConfig::default()
            },
            TenantConfig {
                id: FABRIKAM_TENANT_ID.into(),
                display_name: "Fabrikam".into(),
                domains: vec!["fabrikam.test".into()],
                ..TenantConfig::default()
            },
            TenantConfig {
                id: CONSUMER_TENANT_ID.into(),
                display_name: "Microsoft Accounts".into(),
                domains: vec!["outlook.test".into()],
                personal: true,
                ..TenantConfig::default()
            },
        ];
        let apps = vec![
            AppConfig {
                client_id: DESKTOP_APP_ID.into(),
                display_name: "mailconnect desktop".into(),
                home_tenant: EXAMPLE_TENANT_ID.into(),
                sign_in_audience: SignInAudience::AzureAdAndPersonalMicrosoftAccount,
                public_client: true,
                allow_public_client_flows: true,
                redirect_uris: vec![
                    RedirectUri {
                        uri: "http://localhost".into(),
                        platform: Platform::MobileDesktop,
                    },
                    RedirectUri {
                        uri: "https://login.microsoftonline.com/common/oauth2/nativeclient".into(),
                        platform: Platform::MobileDesktop,
                    },
                ],
                ..AppConfig::default()
            },
            AppConfig {
                client_id: SERVICE_APP_ID.into(),
                display_name: "mailconnect service".into(),
                home_tenant: EXAMPLE_TENANT_ID.into(),
                sign_in_audience: SignInAudience::AzureAdMyOrg,
                secrets: vec![ClientSecret::new(SERVICE_APP_SECRET, None)],
                app_roles_granted: vec![
                    "IMAP.AccessAsApp".into(),
                    "POP.AccessAsApp".into(),
                    "SMTP.SendAsApp".into(),
                ],
                mailbox_grants: vec!["alice@example.test".into(), "sales@example.test".into()],
                graph_roles_granted: vec!["Mail.Send".into(), "Mail.ReadWrite".into()],
                application_access_policy: Some(vec![
                    "alice@example.test".into(),
                    "sales@example.test".into(),
                ]),
                ..AppConfig::default()
            },
            AppConfig {
                client_id: WEB_APP_ID.into(),
                display_name: "mailconnect web-registered".into(),
                home_tenant: EXAMPLE_TENANT_ID.into(),
                sign_in_audience: SignInAudience::AzureAdMyOrg,
                redirect_uris: vec![RedirectUri {
                    uri: "http://localhost".into(),
                    platform: Platform::Web,
                }],
                ..AppConfig::default()
            },
            AppConfig {
                client_id: SETUP_APP_ID.into(),
                display_name: "mailconnect setup".into(),
                home_tenant: EXAMPLE_TENANT_ID.into(),
                sign_in_audience: SignInAudience::AzureAdMultipleOrgs,
                public_client: true,
                allow_public_client_flows: true,
                redirect_uris: vec![RedirectUri {
                    uri: "http://localhost".into(),
                    platform: Platform::MobileDesktop,
                }],
                ..AppConfig::default()
            },
        ];
        let mut alice = user("alice@example.test", "Alice Example", EXAMPLE_TENANT_ID);
        alice.full_access = vec!["sales@example.test".into()];
        let mut carol = user("carol@example.test", "Carol Example", EXAMPLE_TENANT_ID);
        carol.mfa = true;
        let mut admin = user("admin@example.test", "Example Admin", EXAMPLE_TENANT_ID);
        admin.admin = true;
        let sales = UserConfig {
            upn: "sales@example.test".into(),
            display_name: "Sales".into(),
            tenant: EXAMPLE_TENANT_ID.into(),
            can_sign_in: false,
            delegates: vec!["alice@example.test".into()],
            ..UserConfig::default()
        };
        let mut erin = user("erin@outlook.test", "Erin Outlook", CONSUMER_TENANT_ID);
        erin.personal = true;
        let users = vec![
            alice,
            user("bob@example.test", "Bob Example", EXAMPLE_TENANT_ID),
            carol,
            admin,
            sales,
            user("dave@fabrikam.test", "Dave Fabrikam", FABRIKAM_TENANT_ID),
            erin,
        ];
        EmulatorConfig {
            tenants,
            apps,
            users,
            ..EmulatorConfig::default()
        }
    }

    /// Read a configuration from a JSON file (same shape as `GET /_sandbox/config`).
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        read_json_file(path.as_ref())
    }

    /// Check references between tenants, apps and users.
    pub fn validate(&self) -> Result<(), Error> {
        let known = |t: &str| self.tenants.iter().any(|x| x.id.eq_ignore_ascii_case(t));
        for t in &self.tenants {
            if uuid::Uuid::parse_str(&t.id).is_err() {
                return Err(Error::Config(format!("tenant id '{}' is not a GUID", t.id)));
            }
        }
        for a in &self.apps {
            if uuid::Uuid::parse_str(&a.client_id).is_err() {
                return Err(Error::Config(format!(
                    "app client_id '{}' is not a GUID",
                    a.client_id
                )));
            }
            if !known(&a.home_tenant) {
                return Err(Error::Config(format!(
                    "app '{}': home_tenant '{}' is not a configured tenant",
                    a.client_id, a.home_tenant
                )));
            }
        }
        for u in &self.users {
            if !u.upn.contains('@') {
                return Err(Error::Config(format!("user '{}': upn needs an '@'", u.upn)));
            }
            if !known(&u.tenant) {
                return Err(Error::Config(format!(
                    "user '{}': tenant '{}' is not a configured tenant",
                    u.upn, u.tenant
                )));
            }
        }
        Ok(())
    }
}
