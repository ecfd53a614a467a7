//! Microsoft identity platform v2.0 (docs/provider-facts.md#endpoints, #authorities, #scopes-and-resources).

use url::Url;

use super::{Endpoints, GraphProfile, Profile};
use crate::error::{Error, Result};
use crate::model::{ProviderKind, Registration};

/// The tenant id of personal Microsoft accounts (`consumers`).
pub const CONSUMER_TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// A Microsoft cloud: authority host and Exchange Online resource.
#[derive(Debug, Clone, Copy)]
pub struct MicrosoftCloud {
    /// Entra authority host.
    pub authority_host: &'static str,
    /// Exchange Online resource for delegated mail scopes.
    pub mail_resource: &'static str,
    /// Resource for app-only `.default` tokens.
    pub app_resource: &'static str,
    /// IMAP and POP3 host.
    pub mail_host: &'static str,
    /// SMTP submission host.
    pub smtp_host: &'static str,
    /// Microsoft Graph (`https://graph.microsoft.com`): host and resource.
    pub graph_host: &'static str,
}

/// The global cloud.
pub(super) const GLOBAL: MicrosoftCloud = MicrosoftCloud {
    authority_host: "https://login.microsoftonline.com",
    mail_resource: "https://outlook.office.com",
    app_resource: "https://outlook.office365.com",
    mail_host: "outlook.office365.com",
    smtp_host: "smtp.office365.com",
    graph_host: "https://graph.microsoft.com",
};

impl MicrosoftCloud {
    /// The cloud named `name` (`global`, `usgov`, `china`).
    pub fn named(name: &str) -> Option<MicrosoftCloud> {
        Some(match name {
            "global" => GLOBAL,
            "usgov" => MicrosoftCloud {
                authority_host: "https://login.microsoftonline.us",
                mail_resource: "https://outlook.office365.us",
                app_resource: "https://outlook.office365.us",
                mail_host: "outlook.office365.us",
                smtp_host: "smtp.office365.us",
                graph_host: "https://graph.microsoft.us",
            },
            "china" => MicrosoftCloud {
                authority_host: "https://login.partner.microsoftonline.cn",
                mail_resource: "https://partner.outlook.cn",
                app_resource: "https://partner.outlook.cn",
                mail_host: "partner.outlook.cn",
                smtp_host: "smtp.partner.outlook.cn",
                graph_host: "https://microsoftgraph.chinacloudapi.cn",
            },
            _ => return None,
        })
    }
}

pub(super) fn profile(reg: &Registration, tenant_override: Option<&str>) -> Result<Profile> {
    let cloud_name = reg.cloud.as_deref().unwrap_or("global");
    let cloud = MicrosoftCloud::named(cloud_name).ok_or_else(|| {
        Error::invalid("cloud", format!("unknown Microsoft cloud '{cloud_name}'"))
    })?;
    let host = reg
        .authority_host
        .as_deref()
        .unwrap_or(cloud.authority_host)
        .trim_end_matches('/');
    let tenant = tenant_override
        .or(reg.tenant.as_deref())
        .unwrap_or("common");
    let ep = |path: &str| {
        Url::parse(&format!("{host}/{tenant}/oauth2/v2.0/{path}")).map_err(|e| {
            Error::invalid(
                "authority_host",
                format!("cannot build the {path} endpoint URL: {e}"),
            )
        })
    };
    let res = cloud.mail_resource;
    let delegated = reg.scopes.clone().unwrap_or_else(|| {
        vec![
            format!("{res}/IMAP.AccessAsUser.All"),
            format!("{res}/POP.AccessAsUser.All"),
            format!("{res}/SMTP.Send"),
            "offline_access".into(),
            "openid".into(),
            "profile".into(),
            "email".into(),
        ]
    });
    Ok(Profile {
        kind: ProviderKind::Microsoft,
        endpoints: Endpoints {
            authorize: ep("authorize")?,
            token: ep("token")?,
            device: Some(ep("devicecode")?),
            revocation: None,
            // Entra ID's id_tokens always carry preferred_username.
            userinfo: None,
        },
        delegated_scopes: delegated,
        app_scopes: vec![format!("{}/.default", cloud.app_resource)],
        extra_authorize_params: vec![],
        prompt_values: super::oidc_prompts(),
        graph: Some(graph_profile(reg, &cloud)?),
        consent_scopes: vec![],
    })
}

/// Microsoft Graph for `reg`: the API base and the scopes of the Graph resource. Graph scopes are
/// always written with the resource (a bare `Mail.Send` would mean the same, but the resource
/// must be explicit where the token endpoint compares resources).
fn graph_profile(reg: &Registration, cloud: &MicrosoftCloud) -> Result<GraphProfile> {
    let host = reg
        .graph_host
        .as_deref()
        .unwrap_or(cloud.graph_host)
        .trim_end_matches('/');
    let base = Url::parse(&format!("{host}/v1.0/"))
        .map_err(|e| Error::invalid("graph_host", format!("cannot build the Graph URL: {e}")))?;
    // The resource in scopes is the public Graph identifier of the cloud, also when the host is
    // overridden (the sandbox serves Graph on its own address).
    let resource = cloud.graph_host;
    Ok(GraphProfile {
        base,
        delegated_scopes: vec![
            format!("{resource}/Mail.ReadWrite"),
            format!("{resource}/Mail.Send"),
            "offline_access".into(),
        ],
        app_scopes: vec![format!("{resource}/.default")],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> Registration {
        serde_json::from_value(serde_json::json!({
            "id": "r", "provider": "microsoft", "client_id": "c", "tenant": "contoso.onmicrosoft.com"
        }))
        .unwrap()
    }

    #[test]
    fn endpoints_and_exchange_scopes_for_the_global_cloud() {
        let p = profile(&reg(), None).unwrap();
        assert_eq!(
            p.endpoints.token.as_str(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert!(p
            .delegated_scopes
            .contains(&"https://outlook.office.com/IMAP.AccessAsUser.All".to_string()));
        assert!(p.delegated_scopes.contains(&"offline_access".to_string()));
        assert_eq!(
            p.app_scopes,
            vec!["https://outlook.office365.com/.default".to_string()]
        );
        assert!(p.endpoints.revocation.is_none());
    }

    #[test]
    fn refresh_goes_to_the_signed_in_tenant_and_clouds_are_data() {
        let mut r = reg();
        r.cloud = Some("usgov".into());
        let p = profile(&r, Some("abc")).unwrap();
        assert_eq!(
            p.endpoints.authorize.as_str(),
            "https://login.microsoftonline.us/abc/oauth2/v2.0/authorize"
        );
        assert!(p.delegated_scopes[0].starts_with("https://outlook.office365.us/"));
    }
}
