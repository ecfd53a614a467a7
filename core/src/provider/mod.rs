//! Provider profiles: endpoints, scopes and defaults per identity provider.
//!
//! A profile is resolved from a [`Registration`]: Microsoft and Google are built in (sovereign clouds
//! are data), `generic` takes its endpoints from the registration or discovers them (RFC 8414 /
//! OpenID Connect Discovery).

mod discovery;
mod microsoft;

use url::Url;

use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::model::{validate::check_endpoint_url, ProviderKind, Registration};

pub use microsoft::{MicrosoftCloud, CONSUMER_TENANT_ID};

/// Resolved endpoints of an authorization server.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Authorization endpoint (browser).
    pub authorize: Url,
    /// Token endpoint.
    pub token: Url,
    /// Device authorization endpoint, if the provider has one.
    pub device: Option<Url>,
    /// Token revocation endpoint (RFC 7009), if the provider has one (Microsoft has none).
    pub revocation: Option<Url>,
    /// OpenID Connect userinfo endpoint, asked for the account's names when the id_token has
    /// only `sub` (generic providers).
    pub userinfo: Option<Url>,
}

/// Everything the flows need to know about a provider for one registration.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Provider family.
    pub kind: ProviderKind,
    /// Endpoints.
    pub endpoints: Endpoints,
    /// Scopes requested for user (delegated) access: mail scopes plus `offline_access` and OpenID scopes.
    pub delegated_scopes: Vec<String>,
    /// Scope requested for app-only (client credentials) access.
    pub app_scopes: Vec<String>,
    /// Extra authorize parameters the provider needs (Google: `access_type=offline`).
    pub extra_authorize_params: Vec<(String, String)>,
    /// The `prompt` values the provider accepts: Microsoft and Google all of OpenID Connect's;
    /// a generic provider what its discovery document lists (`None`: it lists nothing).
    pub prompt_values: Option<Vec<String>>,
    /// Microsoft Graph (Microsoft registrations only).
    pub graph: Option<GraphProfile>,
    /// Scopes asked for consent at sign-in only, not redeemed (`auto` accounts: Graph's, so a
    /// Graph token can later be minted from the same refresh token).
    pub consent_scopes: Vec<String>,
}

/// Microsoft Graph as a mail transport: where it is and which scopes reach it.
#[derive(Debug, Clone)]
pub struct GraphProfile {
    /// The API base, ending in `/v1.0/`.
    pub base: Url,
    /// Delegated scopes: `Mail.ReadWrite`, `Mail.Send` on the Graph resource, `offline_access`.
    pub delegated_scopes: Vec<String>,
    /// The app-only scope (`https://graph.microsoft.com/.default`).
    pub app_scopes: Vec<String>,
}

impl Profile {
    /// Space-separated delegated scopes.
    pub fn delegated_scope_string(&self) -> String {
        self.delegated_scopes.join(" ")
    }

    /// Space-separated scopes of an interactive sign-in: the delegated scopes, then those asked
    /// for consent only.
    pub fn sign_in_scope_string(&self) -> String {
        self.delegated_scopes
            .iter()
            .chain(&self.consent_scopes)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The profile as `account` uses it: a `graph` account's tokens are Graph tokens (its
    /// delegated and app-only scopes are Graph's, plus OpenID's for the identity check); an
    /// `auto` account asks consent for Graph at sign-in. Errors for Graph on a provider without
    /// it.
    pub fn for_account(mut self, account: &crate::model::Account) -> Result<Profile> {
        use crate::model::Transport;
        if !account.transport.uses_graph() {
            return Ok(self);
        }
        let Some(mut graph) = self.graph.clone() else {
            return Err(Error::invalid(
                "transport",
                format!(
                    "account '{}' has \"transport\": \"{}\", but Microsoft Graph exists only for Microsoft registrations",
                    crate::error::quote(&account.id),
                    account.transport.as_str()
                ),
            ));
        };
        // A delegate opening a shared mailbox needs Graph's `.Shared` permissions (they cover
        // the delegate's own mailbox too).
        let delegate = !account
            .expected_login()
            .eq_ignore_ascii_case(&account.mailbox);
        if delegate && account.flow != crate::model::Flow::ClientCredentials {
            for s in &mut graph.delegated_scopes {
                if s.ends_with("/Mail.ReadWrite") || s.ends_with("/Mail.Send") {
                    s.push_str(".Shared");
                }
            }
            self.graph = Some(graph.clone());
        }
        let openid: Vec<String> = self
            .delegated_scopes
            .iter()
            .filter(|s| matches!(s.as_str(), "openid" | "profile" | "email"))
            .cloned()
            .collect();
        match account.transport {
            Transport::Graph => {
                self.delegated_scopes = graph
                    .delegated_scopes
                    .iter()
                    .cloned()
                    .chain(openid)
                    .collect();
                self.app_scopes = graph.app_scopes.clone();
            }
            _ => {
                self.consent_scopes = graph
                    .delegated_scopes
                    .iter()
                    .filter(|s| !self.delegated_scopes.contains(s))
                    .cloned()
                    .collect();
            }
        }
        Ok(self)
    }

    /// The `prompt` of an interactive sign-in, or `None`:
    /// * `select_account` when `select_account` is wanted and the provider accepts it (Microsoft,
    ///   Google; a generic provider only when its discovery lists it: servers that do not know the
    ///   value refuse the whole request, and the identity check still catches a wrong account);
    /// * `consent` for a generic provider when `offline_access` is requested, because OpenID
    ///   Connect Core §11 lets a server ignore `offline_access` (and issue no refresh token)
    ///   without it; sent unless the server's published list leaves it out.
    pub fn prompt(&self, select_account: bool) -> Option<String> {
        let accepts = |v: &str| match &self.prompt_values {
            Some(list) => list.iter().any(|p| p == v),
            None => self.kind != ProviderKind::Generic,
        };
        let mut prompts = Vec::new();
        if select_account && accepts("select_account") {
            prompts.push("select_account");
        }
        if self.kind == ProviderKind::Generic
            && self.delegated_scopes.iter().any(|s| s == "offline_access")
            && self
                .prompt_values
                .as_ref()
                .is_none_or(|list| list.iter().any(|p| p == "consent"))
        {
            prompts.push("consent");
        }
        (!prompts.is_empty()).then(|| prompts.join(" "))
    }
}

/// Every `prompt` value of OpenID Connect Core §3.1.2.1 (what Microsoft and Google accept).
fn oidc_prompts() -> Option<Vec<String>> {
    Some(
        ["none", "login", "consent", "select_account"]
            .map(String::from)
            .to_vec(),
    )
}

/// Resolve the profile of `reg`. `tenant_override` replaces the registration's tenant (used for
/// refreshes against the tenant the user actually signed in to, docs/provider-facts.md#refresh-tenant).
pub async fn resolve(
    reg: &Registration,
    tenant_override: Option<&str>,
    http: &HttpClient,
) -> Result<Profile> {
    match reg.provider {
        ProviderKind::Microsoft => microsoft::profile(reg, tenant_override),
        ProviderKind::Google => google(reg),
        ProviderKind::Generic => generic(reg, http).await,
    }
}

/// The mail servers a provider uses when the account names none. `tid` is the signed-in tenant
/// (personal Microsoft accounts submit through another SMTP host).
pub fn default_servers(reg: &Registration, tid: Option<&str>) -> crate::model::Servers {
    use crate::model::Security;
    use crate::model::{ServerConfig, Servers};
    let s = |host: &str, port: u16, security: Security| {
        Some(ServerConfig {
            host: host.to_string(),
            port,
            security,
            mechanism: None,
            danger_accept_invalid_certs: false,
        })
    };
    match reg.provider {
        ProviderKind::Microsoft => {
            let cloud = MicrosoftCloud::named(reg.cloud.as_deref().unwrap_or("global"))
                .unwrap_or(microsoft::GLOBAL);
            let personal =
                tid == Some(CONSUMER_TENANT_ID) || reg.tenant.as_deref() == Some("consumers");
            let smtp_host = if personal && reg.cloud.is_none() {
                "smtp-mail.outlook.com"
            } else {
                cloud.smtp_host
            };
            Servers {
                imap: s(cloud.mail_host, 993, Security::Tls),
                pop3: s(cloud.mail_host, 995, Security::Tls),
                smtp: s(smtp_host, 587, Security::Starttls),
            }
        }
        ProviderKind::Google => Servers {
            imap: s("imap.gmail.com", 993, Security::Tls),
            pop3: s("pop.gmail.com", 995, Security::Tls),
            smtp: s("smtp.gmail.com", 465, Security::Tls),
        },
        ProviderKind::Generic => Servers::default(),
    }
}

fn parse(field: &str, s: &str) -> Result<Url> {
    check_endpoint_url(field, s)
}

fn google(reg: &Registration) -> Result<Profile> {
    let u =
        |s: &str| Url::parse(s).map_err(|e| Error::internal(format!("built-in Google URL: {e}")));
    Ok(Profile {
        kind: ProviderKind::Google,
        endpoints: Endpoints {
            authorize: u("https://accounts.google.com/o/oauth2/v2/auth")?,
            token: u("https://oauth2.googleapis.com/token")?,
            device: Some(u("https://oauth2.googleapis.com/device/code")?),
            revocation: Some(u("https://oauth2.googleapis.com/revoke")?),
            userinfo: Some(u("https://openidconnect.googleapis.com/v1/userinfo")?),
        },
        delegated_scopes: reg.scopes.clone().unwrap_or_else(|| {
            vec![
                "https://mail.google.com/".into(),
                "openid".into(),
                "email".into(),
            ]
        }),
        app_scopes: vec!["https://mail.google.com/".into()],
        extra_authorize_params: vec![("access_type".into(), "offline".into())],
        prompt_values: oidc_prompts(),
        graph: None,
        consent_scopes: vec![],
    })
}

async fn generic(reg: &Registration, http: &HttpClient) -> Result<Profile> {
    let mut authorize = reg
        .authorization_endpoint
        .as_deref()
        .map(|s| parse("authorization_endpoint", s))
        .transpose()?;
    let mut token = reg
        .token_endpoint
        .as_deref()
        .map(|s| parse("token_endpoint", s))
        .transpose()?;
    let mut device = reg
        .device_authorization_endpoint
        .as_deref()
        .map(|s| parse("device_authorization_endpoint", s))
        .transpose()?;
    let mut revocation = reg
        .revocation_endpoint
        .as_deref()
        .map(|s| parse("revocation_endpoint", s))
        .transpose()?;
    let mut userinfo = reg
        .userinfo_endpoint
        .as_deref()
        .map(|s| parse("userinfo_endpoint", s))
        .transpose()?;
    let mut prompt_values = None;
    if let Some(issuer) = &reg.issuer {
        if authorize.is_none() || token.is_none() {
            let meta = discovery::discover(http, issuer).await?;
            authorize = authorize.or(meta.authorization_endpoint);
            token = token.or(Some(meta.token_endpoint));
            device = device.or(meta.device_authorization_endpoint);
            revocation = revocation.or(meta.revocation_endpoint);
            userinfo = userinfo.or(meta.userinfo_endpoint);
            prompt_values = meta.prompt_values_supported;
        }
    }
    let token = token.ok_or_else(|| {
        Error::invalid(
            "token_endpoint",
            "no token endpoint: give 'token_endpoint' or an 'issuer' with discovery metadata",
        )
    })?;
    let authorize = match authorize {
        Some(a) => a,
        None => token.clone(),
    };
    let scopes = reg
        .scopes
        .clone()
        .unwrap_or_else(|| vec!["openid".into(), "email".into(), "offline_access".into()]);
    Ok(Profile {
        kind: ProviderKind::Generic,
        endpoints: Endpoints {
            authorize,
            token,
            device,
            revocation,
            userinfo,
        },
        delegated_scopes: scopes.clone(),
        app_scopes: scopes
            .into_iter()
            .filter(|s| s != "offline_access" && s != "openid")
            .collect(),
        extra_authorize_params: vec![],
        prompt_values,
        graph: None,
        consent_scopes: vec![],
    })
}
