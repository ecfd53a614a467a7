//! Scope strings and resources (docs/provider-facts.md#scopes-and-resources): a scope without a
//! resource prefix is a Graph scope; Exchange Online is reached through `outlook.office.com`,
//! `outlook.office365.com` or `ps.outlook.com`; the token leg names one resource.

use super::errors::{self, AadError};

/// Resource id of Exchange Online in canonical form (also the `aud` of delegated mail tokens).
pub const EXCHANGE: &str = "https://outlook.office.com";
/// Resource id of Microsoft Graph.
pub const GRAPH: &str = "https://graph.microsoft.com";

const EXCHANGE_HOSTS: &[&str] = &[
    "outlook.office.com",
    "outlook.office365.com",
    "ps.outlook.com",
    "00000002-0000-0ff1-ce00-000000000000",
];
const GRAPH_HOSTS: &[&str] = &[
    "graph.microsoft.com",
    "00000003-0000-0000-c000-000000000000",
];

const EXCHANGE_SCOPES: &[&str] = &[
    "IMAP.AccessAsUser.All",
    "POP.AccessAsUser.All",
    "SMTP.Send",
    "EWS.AccessAsUser.All",
    "EAS.AccessAsUser.All",
    "Mail.Read",
    "Mail.ReadWrite",
    "Mail.Send",
    "User.Read",
];
const GRAPH_SCOPES: &[&str] = &[
    "User.Read",
    "User.ReadBasic.All",
    "Mail.Read",
    "Mail.ReadBasic",
    "Mail.ReadWrite",
    "Mail.Send",
    "Mail.Read.Shared",
    "Mail.ReadWrite.Shared",
    "Mail.Send.Shared",
    "MailboxSettings.Read",
    "MailboxSettings.ReadWrite",
    "IMAP.AccessAsUser.All",
    "POP.AccessAsUser.All",
    "SMTP.Send",
    "Calendars.Read",
    "Contacts.Read",
    "Organization.Read.All",
    "Directory.Read.All",
    "Application.Read.All",
    "Application.ReadWrite.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
];

/// Delegated permissions only an administrator can consent to ("Admin consent required: Yes");
/// an ordinary user asking for one gets "Need admin approval" (AADSTS90094) even where users
/// may consent.
const ADMIN_ONLY: &[&str] = &[
    "User.Read.All",
    "Organization.Read.All",
    "Directory.Read.All",
    "Application.Read.All",
    "Application.ReadWrite.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
];

/// Every delegated permission the emulator knows on a resource ([`EXCHANGE`] or [`GRAPH`]),
/// in catalog spelling.
pub fn catalog(family: &str) -> &'static [&'static str] {
    if family == EXCHANGE {
        EXCHANGE_SCOPES
    } else {
        GRAPH_SCOPES
    }
}

/// Every permission of a resource as scopes (for the `scp` claim of consented permissions).
pub fn catalog_scopes(family: &'static str) -> Vec<Scope> {
    catalog(family)
        .iter()
        .map(|n| Scope::Resource {
            family,
            resource: family.to_string(),
            name: n.to_string(),
        })
        .collect()
}

/// OpenID Connect scopes (no resource).
pub const OIDC: &[&str] = &["openid", "profile", "email", "offline_access"];

/// One scope of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `openid`, `profile`, `email`, `offline_access` (lowercase).
    Oidc(String),
    /// A permission on a resource.
    Resource {
        /// Canonical resource ([`EXCHANGE`] or [`GRAPH`]).
        family: &'static str,
        /// The resource as the client wrote it (`https://outlook.office365.com`), the `aud`.
        resource: String,
        /// Permission name in catalog spelling, or `.default`.
        name: String,
    },
}

impl Scope {
    /// Comparison key for consent (`openid`, `https://outlook.office.com/imap.accessasuser.all`).
    pub fn key(&self) -> String {
        match self {
            Scope::Oidc(s) => s.clone(),
            Scope::Resource { family, name, .. } => {
                format!("{family}/{}", name.to_ascii_lowercase())
            }
        }
    }

    /// How the scope is shown in a token response's `scope`.
    pub fn display(&self) -> String {
        match self {
            Scope::Oidc(s) => s.clone(),
            Scope::Resource { family, name, .. } if *family == GRAPH => name.clone(),
            Scope::Resource { resource, name, .. } => format!("{resource}/{name}"),
        }
    }

    /// Full form (`https://graph.microsoft.com/User.Read`), as token responses list scopes.
    pub fn full(&self) -> String {
        match self {
            Scope::Oidc(s) => s.clone(),
            Scope::Resource { resource, name, .. } => format!("{resource}/{name}"),
        }
    }

    /// Permission name (`IMAP.AccessAsUser.All`), as the `scp` claim lists it.
    pub fn name(&self) -> &str {
        match self {
            Scope::Oidc(s) => s,
            Scope::Resource { name, .. } => name,
        }
    }

    /// Whether this is `<resource>/.default`.
    pub fn is_default(&self) -> bool {
        matches!(self, Scope::Resource { name, .. } if name == ".default")
    }

    /// The canonical resource, if any.
    pub fn family(&self) -> Option<&'static str> {
        match self {
            Scope::Resource { family, .. } => Some(family),
            Scope::Oidc(_) => None,
        }
    }

    /// Whether only an administrator may consent to it.
    pub fn admin_only(&self) -> bool {
        matches!(self, Scope::Resource { family, name, .. }
            if *family == GRAPH && ADMIN_ONLY.iter().any(|a| a.eq_ignore_ascii_case(name)))
    }

    /// A sentence for the consent page.
    pub fn describe(&self) -> String {
        match self {
            Scope::Oidc(s) => match s.as_str() {
                "openid" => "Sign you in".into(),
                "profile" => "View your basic profile".into(),
                "email" => "View your email address".into(),
                _ => "Maintain access to data you have given it access to".into(),
            },
            Scope::Resource { family, name, .. } => {
                let api = if *family == GRAPH {
                    "Microsoft Graph"
                } else {
                    "Office 365 Exchange Online"
                };
                let what = match name.to_ascii_lowercase().as_str() {
                    "imap.accessasuser.all" => "Read and write access to your mail via IMAP",
                    "pop.accessasuser.all" => "Read and write access to your mail via POP",
                    "smtp.send" => "Send emails from your mailbox using SMTP AUTH",
                    "user.read" => "Sign in and read your profile",
                    "mail.read" => "Read your mail",
                    "mail.readwrite" => "Read and write access to your mail",
                    "mail.send" => "Send mail as you",
                    "organization.read.all" => "Read organization information",
                    "directory.read.all" => "Read directory data",
                    "application.read.all" => "Read applications",
                    "application.readwrite.all" => "Read and write all applications",
                    "delegatedpermissiongrant.readwrite.all" => {
                        "Manage all delegated permission grants"
                    }
                    "approleassignment.readwrite.all" => {
                        "Manage app permission grants and app role assignments"
                    }
                    ".default" => "All permissions configured for the app",
                    _ => "Access your data",
                };
                format!("{what} ({api}: {name})")
            }
        }
    }
}

fn catalog_name(list: &[&str], name: &str) -> Option<String> {
    if name == ".default" {
        return Some(".default".into());
    }
    list.iter()
        .find(|s| s.eq_ignore_ascii_case(name))
        .map(|s| s.to_string())
}

/// Parse a space-separated scope parameter. Errors: unknown resource (500011), unknown
/// permission on a known resource (650053).
pub fn parse(raw: &str, client_id: &str, tenant_name: &str) -> Result<Vec<Scope>, AadError> {
    let mut out: Vec<Scope> = Vec::new();
    for s in raw.split_whitespace() {
        let lower = s.to_ascii_lowercase();
        let scope = if OIDC.contains(&lower.as_str()) {
            Scope::Oidc(lower)
        } else if let Some((resource, name)) = split_resource(s) {
            let host = resource
                .trim_start_matches("https://")
                .trim_start_matches("api://")
                .trim_end_matches('/')
                .to_ascii_lowercase();
            let (family, list) = if EXCHANGE_HOSTS.contains(&host.as_str()) {
                (EXCHANGE, EXCHANGE_SCOPES)
            } else if GRAPH_HOSTS.contains(&host.as_str()) {
                (GRAPH, GRAPH_SCOPES)
            } else {
                return Err(errors::resource_not_found(resource, tenant_name));
            };
            let name = catalog_name(list, name)
                .ok_or_else(|| errors::scope_not_on_resource(client_id, name, resource))?;
            Scope::Resource {
                family,
                resource: resource.trim_end_matches('/').to_string(),
                name,
            }
        } else {
            let name = catalog_name(GRAPH_SCOPES, s)
                .ok_or_else(|| errors::scope_not_on_resource(client_id, s, GRAPH))?;
            Scope::Resource {
                family: GRAPH,
                resource: GRAPH.into(),
                name,
            }
        };
        if !out.iter().any(|x| x.key() == scope.key()) {
            out.push(scope);
        }
    }
    Ok(out)
}

/// `https://host/Name` -> (`https://host`, `Name`).
fn split_resource(s: &str) -> Option<(&str, &str)> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("api://"))?;
    let slash = rest.rfind('/')?;
    let cut = s.len() - rest.len() + slash;
    Some((&s[..cut], &s[cut + 1..]))
}

/// The resource a token is issued for: the resource of the first resource scope, or Graph when
/// only OpenID scopes are asked for. With `strict`, scopes of another resource are an error
/// (AADSTS700022); `.default` mixed with named scopes of its resource is AADSTS70011.
pub fn token_resource(scopes: &[Scope], strict: bool) -> Result<(&'static str, String), AadError> {
    let Some(first) = scopes.iter().find(|s| s.family().is_some()) else {
        return Ok((GRAPH, GRAPH.into()));
    };
    let family = first.family().unwrap_or(GRAPH);
    let resource = match first {
        Scope::Resource { resource, .. } => resource.clone(),
        Scope::Oidc(_) => GRAPH.into(),
    };
    let same: Vec<&Scope> = scopes
        .iter()
        .filter(|s| s.family() == Some(family))
        .collect();
    if strict
        && scopes
            .iter()
            .any(|s| s.family().is_some_and(|f| f != family))
    {
        let all: Vec<String> = scopes.iter().map(Scope::display).collect();
        return Err(errors::multiple_resources(&all.join(" ")));
    }
    if same.iter().any(|s| s.is_default()) && same.len() > 1 {
        let all: Vec<String> = same.iter().map(|s| s.display()).collect();
        return Err(errors::invalid_scope(&all.join(" ")));
    }
    Ok((family, resource))
}

/// Whether `consented` (scope strings as stored in config) covers `scope`.
pub fn consented_to(consented: &[String], scope: &Scope) -> bool {
    consented.iter().any(|c| {
        if c == "*" {
            return true;
        }
        match parse(c, "", "") {
            Ok(v) => v.iter().any(|x| x.key() == scope.key()),
            Err(_) => false,
        }
    })
}
