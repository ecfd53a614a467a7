//! What mailconnect needs of an app registration, and how a registration read back through
//! Microsoft Graph deviates from it: pure functions over Graph's JSON, so every rule is tested
//! without a server.

use serde::Serialize;
use serde_json::Value;

use crate::diagnose;
use crate::i18n::Language;

/// Office 365 Exchange Online: the resource of the IMAP, POP and SMTP permissions.
pub const EXCHANGE_APP_ID: &str = "00000002-0000-0ff1-ce00-000000000000";
/// Microsoft Graph.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
/// Delegated permissions on Exchange Online for IMAP, POP and SMTP with XOAUTH2.
pub const EXCHANGE_SCOPES: &[&str] =
    &["IMAP.AccessAsUser.All", "POP.AccessAsUser.All", "SMTP.Send"];
/// Delegated permissions on Microsoft Graph every sign-in asks for (identity, refresh tokens).
pub const GRAPH_SIGN_IN_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];
/// Delegated permissions on Microsoft Graph of the Graph mail transport.
pub const GRAPH_MAIL_SCOPES: &[&str] = &["Mail.ReadWrite", "Mail.Send"];
/// Application permissions on Exchange Online of app-only (client credentials) accounts.
pub const EXCHANGE_APP_ROLES: &[&str] = &["IMAP.AccessAsApp", "POP.AccessAsApp", "SMTP.SendAsApp"];
/// Application permissions on Microsoft Graph of app-only accounts with the Graph transport.
pub const GRAPH_APP_ROLES: &[&str] = &["Mail.ReadWrite", "Mail.Send"];
/// A secret or certificate that ends within this many days is reported.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// What a registration must have.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wanted {
    /// Graph's mail permissions (accounts with the `graph` or `auto` transport).
    pub graph: bool,
    /// App-only access (a client secret or certificate, application permissions).
    pub app_only: bool,
}

impl Wanted {
    /// Delegated scopes per resource app id.
    pub fn delegated(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        let mut graph: Vec<&str> = GRAPH_SIGN_IN_SCOPES.to_vec();
        if self.graph {
            graph.extend(GRAPH_MAIL_SCOPES);
        }
        vec![
            (EXCHANGE_APP_ID, EXCHANGE_SCOPES.to_vec()),
            (GRAPH_APP_ID, graph),
        ]
    }

    /// Application permissions per resource app id (empty without app-only access).
    pub fn roles(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        if !self.app_only {
            return vec![];
        }
        let mut v = vec![(EXCHANGE_APP_ID, EXCHANGE_APP_ROLES.to_vec())];
        if self.graph {
            v.push((GRAPH_APP_ID, GRAPH_APP_ROLES.to_vec()));
        }
        v
    }
}

/// A resource's service principal as Graph lists it: object id and permission ids by value.
#[derive(Debug, Clone)]
pub struct Resource {
    /// The resource's app id (`00000002-…` for Exchange Online).
    pub app_id: String,
    /// The service principal's object id in the tenant.
    pub id: String,
    /// Delegated permissions: (value, id).
    pub scopes: Vec<(String, String)>,
    /// Application permissions: (value, id).
    pub roles: Vec<(String, String)>,
}

impl Resource {
    /// Read a `servicePrincipal` object.
    pub fn from_json(v: &Value) -> Option<Resource> {
        let pairs = |key: &str| -> Vec<(String, String)> {
            v[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| {
                            Some((
                                p["value"].as_str()?.to_string(),
                                p["id"].as_str()?.to_string(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(Resource {
            app_id: v["appId"].as_str()?.to_string(),
            id: v["id"].as_str()?.to_string(),
            scopes: pairs("oauth2PermissionScopes"),
            roles: pairs("appRoles"),
        })
    }

    /// The id of the delegated permission `value`.
    pub fn scope_id(&self, value: &str) -> Option<&str> {
        self.scopes
            .iter()
            .find(|(v, _)| v.eq_ignore_ascii_case(value))
            .map(|(_, id)| id.as_str())
    }

    /// The id of the application permission `value`.
    pub fn role_id(&self, value: &str) -> Option<&str> {
        self.roles
            .iter()
            .find(|(v, _)| v.eq_ignore_ascii_case(value))
            .map(|(_, id)| id.as_str())
    }

    /// The value of the permission with `id` (delegated or application).
    fn value_of(&self, id: &str) -> Option<&str> {
        self.scopes
            .iter()
            .chain(&self.roles)
            .find(|(_, i)| i.eq_ignore_ascii_case(id))
            .map(|(v, _)| v.as_str())
    }

    /// A short name for texts.
    pub fn name(&self) -> &'static str {
        if self.app_id.eq_ignore_ascii_case(EXCHANGE_APP_ID) {
            "Office 365 Exchange Online"
        } else {
            "Microsoft Graph"
        }
    }
}

/// The `requiredResourceAccess` of a new registration ("API permissions" in the portal).
pub fn required_resource_access(wanted: Wanted, resources: &[Resource]) -> Result<Value, String> {
    let mut out = vec![];
    for (app, scopes) in wanted.delegated() {
        let r = resource(resources, app)?;
        let mut access = vec![];
        for s in scopes {
            let id = r
                .scope_id(s)
                .ok_or_else(|| format!("{} has no delegated permission {s}", r.name()))?;
            access.push(serde_json::json!({"id": id, "type": "Scope"}));
        }
        for (role_app, roles) in wanted.roles() {
            if role_app == app {
                for role in roles {
                    let id = r.role_id(role).ok_or_else(|| {
                        format!("{} has no application permission {role}", r.name())
                    })?;
                    access.push(serde_json::json!({"id": id, "type": "Role"}));
                }
            }
        }
        out.push(serde_json::json!({"resourceAppId": r.app_id, "resourceAccess": access}));
    }
    Ok(Value::Array(out))
}

fn resource<'a>(resources: &'a [Resource], app_id: &str) -> Result<&'a Resource, String> {
    resources
        .iter()
        .find(|r| r.app_id.eq_ignore_ascii_case(app_id))
        .ok_or_else(|| format!("the tenant has no service principal of {app_id}"))
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Sign-in or mail will fail.
    Error,
    /// It will fail later (an expiring secret) or for some users.
    Warning,
}

/// One deviation of a registration from what mailconnect needs.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The catalog code: the same one the sign-in fails with.
    pub code: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// What exactly is wrong, in English and German.
    pub detail_en: String,
    /// German.
    pub detail_de: String,
}

impl Finding {
    fn new(code: &'static str, severity: Severity, en: String, de: String) -> Finding {
        Finding {
            code,
            severity,
            detail_en: en,
            detail_de: de,
        }
    }

    /// The finding's detail, the catalog's title and fix in `lang`.
    pub fn text(&self, lang: Language) -> (String, String, String) {
        let t = diagnose::entry(self.code).texts(lang);
        let detail = match lang {
            Language::En => &self.detail_en,
            Language::De => &self.detail_de,
        };
        (detail.clone(), t.title.clone(), t.fix.clone())
    }
}

/// What Graph returned for a registration.
pub struct ReadBack<'a> {
    /// The `application` object.
    pub app: &'a Value,
    /// Its service principal in the tenant, if any.
    pub sp: Option<&'a Value>,
    /// The service principal's `oauth2PermissionGrants`.
    pub grants: &'a [Value],
    /// Its app role assignments (`appRoleAssignments` of the service principal).
    pub role_assignments: &'a [Value],
    /// Exchange Online's and Graph's service principals.
    pub resources: &'a [Resource],
    /// The redirect URI the stored registration uses (`None`: `http://localhost`).
    pub redirect_uri: Option<&'a str>,
    /// The authority the stored registration signs in at (tenant id, domain, `organizations`, …).
    pub tenant: Option<&'a str>,
    /// Now, Unix seconds.
    pub now: i64,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `http://localhost` matches any port and `http://127.0.0.1` too only when registered so.
fn redirect_matches(registered: &str, wanted: &str) -> bool {
    let norm = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
    norm(registered) == norm(wanted)
}

/// Every deviation of a registration from what mailconnect needs, with the catalog code the
/// sign-in would fail with.
pub fn evaluate(r: &ReadBack<'_>, wanted: Wanted) -> Vec<Finding> {
    let mut out = vec![];
    let app = r.app;
    let redirect = r.redirect_uri.unwrap_or("http://localhost");
    let public = strings(&app["publicClient"]["redirectUris"]);
    let web = strings(&app["web"]["redirectUris"]);
    let spa = strings(&app["spa"]["redirectUris"]);
    let loopback =
        redirect.starts_with("http://localhost") || redirect.starts_with("http://127.0.0.1");
    if loopback && !public.iter().any(|u| redirect_matches(u, redirect)) {
        if web
            .iter()
            .chain(&spa)
            .any(|u| redirect_matches(u, redirect))
        {
            out.push(Finding::new(
                "MC-PUBLIC-CLIENT-FLOWS-DISABLED",
                Severity::Error,
                format!("'{redirect}' is registered under the Web (or single-page) platform; mailconnect is a desktop client and needs it under 'Mobile and desktop applications'. Sign-ins end with AADSTS7000218."),
                format!("'{redirect}' ist unter der Plattform Web (oder Single-Page) eingetragen; mailconnect ist ein Desktop-Client und braucht ihn unter 'Mobile und Desktopanwendungen'. Anmeldungen enden mit AADSTS7000218."),
            ));
        } else {
            out.push(Finding::new(
                "MC-REDIRECT-URI-MISMATCH",
                Severity::Error,
                format!("The redirect URI '{redirect}' is not registered under 'Mobile and desktop applications' (registered there: {}).", list_or_none(&public)),
                format!("Der Umleitungs-URI '{redirect}' ist nicht unter 'Mobile und Desktopanwendungen' eingetragen (dort eingetragen: {}).", list_or_none_de(&public)),
            ));
        }
    }
    if app["isFallbackPublicClient"].as_bool() != Some(true) {
        out.push(Finding::new(
            "MC-PUBLIC-CLIENT-FLOWS-DISABLED",
            Severity::Error,
            "'Allow public client flows' is off: the device-code sign-in ends with AADSTS7000218.".into(),
            "'Öffentliche Clientflows zulassen' ist aus: Die Anmeldung mit Gerätecode endet mit AADSTS7000218.".into(),
        ));
    }
    // The app's own tenant-wide list of permissions.
    let required = |app_id: &str, kind: &str| -> Vec<String> {
        let Some(res) = r
            .resources
            .iter()
            .find(|x| x.app_id.eq_ignore_ascii_case(app_id))
        else {
            return vec![];
        };
        app["requiredResourceAccess"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|x| {
                x["resourceAppId"]
                    .as_str()
                    .is_some_and(|a| a.eq_ignore_ascii_case(app_id))
            })
            .flat_map(|x| x["resourceAccess"].as_array().cloned().unwrap_or_default())
            .filter(|a| a["type"].as_str() == Some(kind))
            .filter_map(|a| {
                a["id"]
                    .as_str()
                    .and_then(|id| res.value_of(id))
                    .map(str::to_string)
            })
            .collect()
    };
    let has = |list: &[String], s: &str| list.iter().any(|x| x.eq_ignore_ascii_case(s));
    for (app_id, scopes) in wanted.delegated() {
        let name = r
            .resources
            .iter()
            .find(|x| x.app_id.eq_ignore_ascii_case(app_id))
            .map_or(app_id, |x| x.name());
        let declared = required(app_id, "Scope");
        // openid/profile/email/offline_access need not be declared: Entra adds them on consent.
        let missing: Vec<&str> = scopes
            .iter()
            .copied()
            .filter(|s| !GRAPH_SIGN_IN_SCOPES.contains(s) && !has(&declared, s))
            .collect();
        if !missing.is_empty() {
            out.push(Finding::new(
                "MC-PERMISSIONS-NOT-CONFIGURED",
                Severity::Error,
                format!(
                    "API permissions lack {} of {name} (delegated).",
                    missing.join(", ")
                ),
                format!(
                    "Bei den API-Berechtigungen fehlt {} von {name} (delegiert).",
                    missing.join(", ")
                ),
            ));
        }
    }
    for (app_id, roles) in wanted.roles() {
        let name = r
            .resources
            .iter()
            .find(|x| x.app_id.eq_ignore_ascii_case(app_id))
            .map_or(app_id, |x| x.name());
        let declared = required(app_id, "Role");
        let missing: Vec<&str> = roles
            .iter()
            .copied()
            .filter(|s| !has(&declared, s))
            .collect();
        if !missing.is_empty() {
            out.push(Finding::new(
                "MC-PERMISSIONS-NOT-CONFIGURED",
                Severity::Error,
                format!(
                    "API permissions lack {} of {name} (application).",
                    missing.join(", ")
                ),
                format!(
                    "Bei den API-Berechtigungen fehlt {} von {name} (Anwendung).",
                    missing.join(", ")
                ),
            ));
        }
    }
    // Consent for the whole organisation.
    match r.sp {
        None => out.push(Finding::new(
            "MC-ADMIN-CONSENT-REQUIRED",
            Severity::Error,
            "The app has no enterprise application (service principal) in this tenant: nobody has consented to it here.".into(),
            "Die App hat in diesem Mandanten keine Unternehmensanwendung (Dienstprinzipal): Hier hat niemand zugestimmt.".into(),
        )),
        Some(_) => {
            for (app_id, scopes) in wanted.delegated() {
                let Some(res) = r.resources.iter().find(|x| x.app_id.eq_ignore_ascii_case(app_id)) else { continue };
                let granted: Vec<String> = r
                    .grants
                    .iter()
                    .filter(|g| g["consentType"].as_str() == Some("AllPrincipals"))
                    .filter(|g| g["resourceId"].as_str().is_some_and(|id| id.eq_ignore_ascii_case(&res.id)))
                    .flat_map(|g| g["scope"].as_str().unwrap_or_default().split_whitespace().map(str::to_string).collect::<Vec<_>>())
                    .collect();
                let missing: Vec<&str> = scopes.iter().copied().filter(|s| !has(&granted, s)).collect();
                if !missing.is_empty() {
                    out.push(Finding::new(
                        "MC-ADMIN-CONSENT-REQUIRED",
                        Severity::Error,
                        format!("Admin consent for the organisation does not cover {} of {}: each user is asked, or blocked where users may not consent.", missing.join(", "), res.name()),
                        format!("Die Administratorzustimmung für die Organisation umfasst {} von {} nicht: Jeder Benutzer wird gefragt oder, wo Benutzer nicht zustimmen dürfen, blockiert.", missing.join(", "), res.name()),
                    ));
                }
            }
            for (app_id, roles) in wanted.roles() {
                let Some(res) = r.resources.iter().find(|x| x.app_id.eq_ignore_ascii_case(app_id)) else { continue };
                let assigned: Vec<&str> = r
                    .role_assignments
                    .iter()
                    .filter(|a| a["resourceId"].as_str().is_some_and(|id| id.eq_ignore_ascii_case(&res.id)))
                    .filter_map(|a| a["appRoleId"].as_str().and_then(|id| res.value_of(id)))
                    .collect();
                let missing: Vec<&str> = roles.iter().copied().filter(|s| !assigned.iter().any(|a| a.eq_ignore_ascii_case(s))).collect();
                if !missing.is_empty() {
                    out.push(Finding::new(
                        "MC-ADMIN-CONSENT-REQUIRED",
                        Severity::Error,
                        format!("The application permissions {} of {} are not granted (admin consent).", missing.join(", "), res.name()),
                        format!("Die Anwendungsberechtigungen {} von {} sind nicht erteilt (Administratorzustimmung).", missing.join(", "), res.name()),
                    ));
                }
            }
        }
    }
    // Secrets and certificates.
    for (key, what_en, what_de) in [
        (
            "passwordCredentials",
            "client secret",
            "geheime Clientschlüssel",
        ),
        ("keyCredentials", "certificate", "Zertifikat"),
    ] {
        for c in app[key].as_array().into_iter().flatten() {
            let Some(end) = c["endDateTime"].as_str().and_then(parse_rfc3339) else {
                continue;
            };
            let name = c["displayName"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("(unnamed)");
            let date = c["endDateTime"]
                .as_str()
                .unwrap_or_default()
                .get(..10)
                .unwrap_or_default()
                .to_string();
            let days = (end - r.now).div_euclid(86_400);
            if end <= r.now {
                out.push(Finding::new(
                    "MC-CLIENT-SECRET-EXPIRED",
                    if wanted.app_only {
                        Severity::Error
                    } else {
                        Severity::Warning
                    },
                    format!("The {what_en} '{name}' expired on {date}."),
                    format!("Der {what_de} '{name}' ist am {date} abgelaufen."),
                ));
            } else if days < EXPIRY_WARNING_DAYS {
                out.push(Finding::new(
                    "MC-CLIENT-SECRET-EXPIRING",
                    Severity::Warning,
                    format!("The {what_en} '{name}' expires on {date}, in {days} days."),
                    format!("Der {what_de} '{name}' läuft am {date} ab, in {days} Tagen."),
                ));
            }
        }
    }
    // Who may sign in.
    let audience = app["signInAudience"].as_str().unwrap_or("AzureADMyOrg");
    let multi_authority = matches!(
        r.tenant.map(str::to_ascii_lowercase).as_deref(),
        None | Some("common" | "organizations")
    );
    if audience == "AzureADMyOrg" && multi_authority {
        out.push(Finding::new(
            "MC-WRONG-AUTHORITY",
            Severity::Error,
            format!("The app accepts accounts of its own tenant only (AzureADMyOrg), but the registration signs in at '{}': set the tenant id in the registration.", r.tenant.unwrap_or("common")),
            format!("Die App nimmt nur Konten des eigenen Mandanten an (AzureADMyOrg), die Registrierung meldet aber bei '{}' an: Tragen Sie die Mandanten-ID in die Registrierung ein.", r.tenant.unwrap_or("common")),
        ));
    }
    out
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn list_or_none_de(v: &[String]) -> String {
    if v.is_empty() {
        "keiner".into()
    } else {
        v.join(", ")
    }
}

/// Unix seconds of an RFC 3339 time as Graph writes it (`2027-01-31T12:00:00Z`, with or
/// without fractions).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn resources() -> Vec<Resource> {
        let exo = json!({"appId": EXCHANGE_APP_ID, "id": "exo-sp", "oauth2PermissionScopes": [
            {"value": "IMAP.AccessAsUser.All", "id": "s-imap"}, {"value": "POP.AccessAsUser.All", "id": "s-pop"},
            {"value": "SMTP.Send", "id": "s-smtp"}], "appRoles": [
            {"value": "IMAP.AccessAsApp", "id": "r-imap"}, {"value": "POP.AccessAsApp", "id": "r-pop"},
            {"value": "SMTP.SendAsApp", "id": "r-smtp"}]});
        let graph = json!({"appId": GRAPH_APP_ID, "id": "graph-sp", "oauth2PermissionScopes": [
            {"value": "openid", "id": "g-openid"}, {"value": "profile", "id": "g-profile"}, {"value": "email", "id": "g-email"},
            {"value": "offline_access", "id": "g-offline"}, {"value": "Mail.Send", "id": "g-send"},
            {"value": "Mail.ReadWrite", "id": "g-rw"}], "appRoles": [
            {"value": "Mail.Send", "id": "gr-send"}, {"value": "Mail.ReadWrite", "id": "gr-rw"}]});
        vec![
            Resource::from_json(&exo).unwrap(),
            Resource::from_json(&graph).unwrap(),
        ]
    }

    /// The application exactly as `admin register` creates it.
    fn good_app(wanted: Wanted) -> Value {
        json!({
            "displayName": "mailconnect", "signInAudience": "AzureADMyOrg", "isFallbackPublicClient": true,
            "publicClient": {"redirectUris": ["http://localhost"]}, "web": {"redirectUris": []},
            "requiredResourceAccess": required_resource_access(wanted, &resources()).unwrap(),
            "passwordCredentials": [], "keyCredentials": []
        })
    }

    fn grants(exo: &str, graph: &str) -> Vec<Value> {
        vec![
            json!({"consentType": "AllPrincipals", "resourceId": "exo-sp", "scope": exo}),
            json!({"consentType": "AllPrincipals", "resourceId": "graph-sp", "scope": graph}),
        ]
    }

    fn codes(
        app: &Value,
        grants: &[Value],
        sp: bool,
        wanted: Wanted,
        tenant: Option<&str>,
    ) -> Vec<&'static str> {
        let sp_v = json!({"id": "client-sp"});
        let r = ReadBack {
            app,
            sp: sp.then_some(&sp_v),
            grants,
            role_assignments: &[],
            resources: &resources(),
            redirect_uri: None,
            tenant: tenant.or(Some("6f1c1f3a-3b8e-4a35-9d2c-7a0e5b1c2d3e")),
            now: NOW,
        };
        evaluate(&r, wanted).iter().map(|f| f.code).collect()
    }

    const EXO: &str = "IMAP.AccessAsUser.All POP.AccessAsUser.All SMTP.Send";
    const OIDC: &str = "openid profile email offline_access";

    #[test]
    fn what_register_creates_has_no_findings() {
        let w = Wanted::default();
        assert!(codes(&good_app(w), &grants(EXO, OIDC), true, w, None).is_empty());
        let w = Wanted {
            graph: true,
            app_only: false,
        };
        let g = grants(EXO, &format!("{OIDC} Mail.ReadWrite Mail.Send"));
        assert!(codes(&good_app(w), &g, true, w, None).is_empty());
    }

    #[test]
    fn each_misconfiguration_has_the_code_the_sign_in_fails_with() {
        let w = Wanted::default();
        let g = grants(EXO, OIDC);
        // localhost under Web instead of Mobile and desktop.
        let mut app = good_app(w);
        app["publicClient"]["redirectUris"] = json!([]);
        app["web"]["redirectUris"] = json!(["http://localhost"]);
        assert_eq!(
            codes(&app, &g, true, w, None),
            ["MC-PUBLIC-CLIENT-FLOWS-DISABLED"]
        );
        // No redirect URI at all.
        app["web"]["redirectUris"] = json!([]);
        assert_eq!(codes(&app, &g, true, w, None), ["MC-REDIRECT-URI-MISMATCH"]);
        // Public client flows off.
        let mut app = good_app(w);
        app["isFallbackPublicClient"] = json!(false);
        assert_eq!(
            codes(&app, &g, true, w, None),
            ["MC-PUBLIC-CLIENT-FLOWS-DISABLED"]
        );
        // SMTP.Send missing from the API permissions, and so from the consent.
        let mut app = good_app(w);
        app["requiredResourceAccess"][0]["resourceAccess"]
            .as_array_mut()
            .unwrap()
            .retain(|a| a["id"] != "s-smtp");
        let reduced = grants("IMAP.AccessAsUser.All POP.AccessAsUser.All", OIDC);
        assert_eq!(
            codes(&app, &reduced, true, w, None),
            ["MC-PERMISSIONS-NOT-CONFIGURED", "MC-ADMIN-CONSENT-REQUIRED"]
        );
        // No consent for the organisation, or no enterprise application at all.
        assert_eq!(
            codes(&good_app(w), &[], true, w, None),
            ["MC-ADMIN-CONSENT-REQUIRED", "MC-ADMIN-CONSENT-REQUIRED"]
        );
        assert_eq!(
            codes(&good_app(w), &[], false, w, None),
            ["MC-ADMIN-CONSENT-REQUIRED"]
        );
        // A single-tenant app signed in at `organizations`.
        assert_eq!(
            codes(&good_app(w), &g, true, w, Some("organizations")),
            ["MC-WRONG-AUTHORITY"]
        );
    }

    #[test]
    fn secrets_expiring_within_30_days_warn_and_expired_ones_fail_app_only() {
        let w = Wanted {
            graph: false,
            app_only: true,
        };
        let mut app = good_app(w);
        let at = |days: i64| crate::account_state::rfc3339(NOW + days * 86_400).unwrap();
        app["passwordCredentials"] = json!([
            {"displayName": "old", "endDateTime": at(-1)},
            {"displayName": "soon", "endDateTime": at(10)},
            {"displayName": "fine", "endDateTime": at(200)}
        ]);
        let assigned: Vec<Value> = ["r-imap", "r-pop", "r-smtp"]
            .iter()
            .map(|r| json!({"resourceId": "exo-sp", "appRoleId": r}))
            .collect();
        let sp_v = json!({"id": "client-sp"});
        let g = grants(EXO, OIDC);
        let r = ReadBack {
            app: &app,
            sp: Some(&sp_v),
            grants: &g,
            role_assignments: &assigned,
            resources: &resources(),
            redirect_uri: None,
            tenant: Some("t"),
            now: NOW,
        };
        let f = evaluate(&r, w);
        let got: Vec<(&str, Severity)> = f.iter().map(|f| (f.code, f.severity)).collect();
        assert_eq!(
            got,
            [
                ("MC-CLIENT-SECRET-EXPIRED", Severity::Error),
                ("MC-CLIENT-SECRET-EXPIRING", Severity::Warning)
            ]
        );
        assert!(
            f[1].detail_en.contains("'soon'") && f[1].detail_en.contains("in 10 days"),
            "{}",
            f[1].detail_en
        );
        assert!(f[1].detail_de.contains("in 10 Tagen"), "{}", f[1].detail_de);
        // Without the role assignments, app-only access lacks consent.
        let r = ReadBack {
            role_assignments: &[],
            ..r
        };
        assert!(evaluate(&r, w)
            .iter()
            .any(|f| f.code == "MC-ADMIN-CONSENT-REQUIRED"
                && f.detail_en.contains("IMAP.AccessAsApp")));
    }

    #[test]
    fn the_catalog_has_every_code_a_finding_uses() {
        for code in [
            "MC-PUBLIC-CLIENT-FLOWS-DISABLED",
            "MC-REDIRECT-URI-MISMATCH",
            "MC-PERMISSIONS-NOT-CONFIGURED",
            "MC-ADMIN-CONSENT-REQUIRED",
            "MC-CLIENT-SECRET-EXPIRED",
            "MC-CLIENT-SECRET-EXPIRING",
            "MC-WRONG-AUTHORITY",
            "MC-APP-NOT-FOUND",
            "MC-SETUP-INSUFFICIENT-PRIVILEGES",
        ] {
            assert_eq!(diagnose::entry(code).code, code);
        }
    }
}
