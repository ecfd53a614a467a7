//! Tenant setup through Microsoft Graph: create the app registration mailconnect needs with one
//! administrator sign-in, and read a registration back to report every deviation before a user
//! meets it (docs/admin-guide.md §1).
//!
//! The administrator signs in (device code or browser) to the vendor's *setup* registration: a
//! multi-tenant public client whose delegated Graph permissions `Application.ReadWrite.All`,
//! `DelegatedPermissionGrant.ReadWrite.All` and `AppRoleAssignment.ReadWrite.All` the
//! administrator consents to at that sign-in. The token is used for this one call and never
//! stored. [`Client::admin_register`] then creates, through Graph v1.0:
//!
//! 1. `POST /applications`: a single-tenant public client with `http://localhost` under "Mobile
//!    and desktop applications", public client flows on, and the delegated permissions (the
//!    permission ids are looked up on the tenant's Exchange Online and Graph service principals
//!    by value, never hard-coded);
//! 2. `POST /servicePrincipals`: its enterprise application in the tenant;
//! 3. `POST /oauth2PermissionGrants` (`AllPrincipals`): admin consent for the organisation;
//! 4. app-only, when asked: `addPassword` and `appRoleAssignedTo` for the application
//!    permissions, and the Exchange steps the administrator still runs in PowerShell;
//!
//! stores the registration (tenant id, client id; the secret sealed) and reads it back with
//! [`Client::admin_check`]'s rules ([`plan::evaluate`]). Each finding carries the catalog code
//! the sign-in would fail with.

pub mod plan;

use std::time::Duration;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::graph::errors as graph_errors;
use crate::http::{HttpResponse, Request};
use crate::i18n::Language;
use crate::model::{Flow, ProviderKind, Registration};
use crate::oauth::browser::{self, AuthorizeParams, Loopback};
use crate::oauth::token;
use crate::oauth::{device, identity, ClientAuth, ConnectObserver, ConnectStage};
use crate::provider::{self, Profile};

pub use plan::{Finding, Severity, Wanted};

/// The delegated Graph permissions the setup registration needs (`User.Read` for the
/// organisation's id and name, `GET /organization`).
pub const SETUP_SCOPES: &[&str] = &[
    "User.Read",
    "Application.ReadWrite.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
];

/// Options of [`Client::admin_register`] (JSON in the C ABI).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterOptions {
    /// The stored registration of the vendor's setup app (multi-tenant, public client).
    pub setup_registration: String,
    /// The id to store the new registration under.
    pub registration_id: String,
    /// The name of the new app registration in the tenant.
    #[serde(default = "default_display_name")]
    pub display_name: String,
    /// How the administrator signs in: `browser` (default) or `device_code`.
    #[serde(default)]
    pub flow: Option<Flow>,
    /// The administrator's address, filled in on the sign-in page.
    #[serde(default)]
    pub login_hint: Option<String>,
    /// Also Graph's mail permissions (`Mail.ReadWrite`, `Mail.Send`) for the Graph transport.
    #[serde(default)]
    pub graph: bool,
    /// Also app-only access: a client secret and the application permissions, stored as a second
    /// registration `<registration_id>-app`.
    #[serde(default)]
    pub app_only: bool,
    /// Lifetime of the client secret in days (1..=730, default 180).
    #[serde(default = "default_secret_days")]
    pub secret_days: u32,
    /// Replace a stored registration with the same id.
    #[serde(default)]
    pub replace: bool,
}

fn default_display_name() -> String {
    "mailconnect".into()
}

fn default_secret_days() -> u32 {
    180
}

/// Options of [`Client::admin_check`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckOptions {
    /// The stored registration of the vendor's setup app.
    pub setup_registration: String,
    /// How the administrator signs in.
    #[serde(default)]
    pub flow: Option<Flow>,
    /// The administrator's address.
    #[serde(default)]
    pub login_hint: Option<String>,
    /// Check Graph's mail permissions; default: when an account of the registration uses the
    /// `graph` or `auto` transport.
    #[serde(default)]
    pub graph: Option<bool>,
    /// Check app-only access; default: when the registration has a client secret.
    #[serde(default)]
    pub app_only: Option<bool>,
}

/// One thing [`Client::admin_register`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Graph request (`POST /applications`).
    pub request: String,
    /// What it did, English.
    pub en: String,
    /// German.
    pub de: String,
}

/// What [`Client::admin_register`] did.
#[derive(Debug, Clone, Serialize)]
pub struct RegisterReport {
    /// The tenant id.
    pub tenant_id: String,
    /// The organisation's name.
    pub tenant_name: String,
    /// The new application (client) id.
    pub client_id: String,
    /// The application's object id.
    pub application_object_id: String,
    /// The service principal's object id.
    pub service_principal_id: String,
    /// The stored registration.
    pub registration_id: String,
    /// The stored app-only registration (with the secret), when asked for.
    pub app_registration_id: Option<String>,
    /// When the client secret ends (RFC 3339).
    pub secret_expires: Option<String>,
    /// The Graph requests, in order.
    pub steps: Vec<Step>,
    /// PowerShell the administrator still runs for app-only access (Exchange Online).
    pub exchange_steps: Vec<String>,
    /// The registration read back: should be empty.
    pub findings: Vec<Finding>,
}

/// What [`Client::admin_check`] found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The registration checked.
    pub registration_id: String,
    /// Its client id.
    pub client_id: String,
    /// The tenant read.
    pub tenant_id: String,
    /// The application's name in the tenant (empty when it was not found).
    pub display_name: String,
    /// What was checked.
    pub graph: bool,
    /// App-only access checked.
    pub app_only: bool,
    /// Every deviation, errors first.
    pub findings: Vec<Finding>,
    /// No error among the findings.
    pub ok: bool,
}

/// A Graph session of the signed-in administrator.
struct AdminGraph<'c> {
    client: &'c Client,
    base: Url,
    token: SecretString,
    cancel: &'c CancellationToken,
}

impl AdminGraph<'_> {
    fn url(&self, rel: &str, query: &[(&str, &str)]) -> Result<Url> {
        let mut u = self
            .base
            .join(rel)
            .map_err(|e| Error::internal(format!("Graph URL for '{rel}': {e}")))?;
        if !query.is_empty() {
            u.query_pairs_mut().extend_pairs(query);
        }
        Ok(u)
    }

    /// One request; throttling (`429`, `503`) is waited out up to four times.
    async fn call(
        &self,
        method: Method,
        url: &Url,
        body: Option<&Value>,
        what: &str,
    ) -> Result<HttpResponse> {
        let mut throttled = 0u32;
        loop {
            let req = Request {
                body: body.map(|b| b.to_string().into_bytes()),
                content_type: body.map(|_| "application/json"),
                bearer: Some(&self.token),
                max_body: 8 << 20,
                timeout: Some(Duration::from_secs(60)),
                ..Request::new(method.clone(), url)
            };
            let http = self.client.network().http.clone();
            let resp = tokio::select! {
                r = http.execute(req) => r.map_err(|e| e.context(what))?,
                _ = self.cancel.cancelled() => return Err(Error::cancelled(what)),
            };
            if matches!(resp.status, 429 | 503) && throttled < 4 {
                throttled += 1;
                let wait = resp
                    .retry_after
                    .unwrap_or(Duration::from_secs(1 << throttled))
                    .min(Duration::from_secs(60));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => continue,
                    _ = self.cancel.cancelled() => return Err(Error::cancelled(what)),
                }
            }
            return Ok(resp);
        }
    }

    /// A request that must answer one of `expected`; its JSON (`null` when empty).
    async fn json(
        &self,
        method: Method,
        rel: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        expected: &[u16],
        what: &str,
    ) -> Result<Value> {
        let url = self.url(rel, query)?;
        let resp = self.call(method, &url, body, what).await?;
        if !expected.contains(&resp.status) {
            let e = graph_errors::error(&url, &resp, what);
            return Err(if resp.status == 403 {
                e.with_code("MC-SETUP-INSUFFICIENT-PRIVILEGES")
            } else {
                e
            });
        }
        if resp.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&resp.body).map_err(|e| {
            Error::new(
                ErrorKind::ProviderUnavailable,
                format!("Microsoft Graph answered {what} with JSON that could not be read: {e}"),
            )
            .with_code("MC-GRAPH-UNAVAILABLE")
        })
    }

    /// `GET rel?$filter=...`: the `value` array.
    async fn list(&self, rel: &str, filter: &str, what: &str) -> Result<Vec<Value>> {
        let v = self
            .json(Method::GET, rel, &[("$filter", filter)], None, &[200], what)
            .await?;
        Ok(v["value"].as_array().cloned().unwrap_or_default())
    }

    /// The tenant's service principal of `app_id` (Exchange Online, Graph).
    async fn resource(&self, app_id: &str) -> Result<plan::Resource> {
        let what = format!("reading the service principal of {app_id}");
        let found = self
            .list("servicePrincipals", &format!("appId eq '{app_id}'"), &what)
            .await?;
        found.first().and_then(plan::Resource::from_json).ok_or_else(|| {
            Error::new(ErrorKind::ProviderConfiguration, format!("the tenant has no service principal of {app_id} (Exchange Online needs a license in the tenant)"))
                .with_code("MC-EXCHANGE-NOT-AVAILABLE")
        })
    }

    async fn organization(&self) -> Result<(String, String)> {
        let orgs = self
            .json(
                Method::GET,
                "organization",
                &[("$select", "id,displayName")],
                None,
                &[200],
                "reading the organisation",
            )
            .await?;
        let o = &orgs["value"][0];
        match o["id"].as_str() {
            Some(id) => Ok((
                id.to_string(),
                o["displayName"].as_str().unwrap_or_default().to_string(),
            )),
            None => Err(Error::new(
                ErrorKind::ProviderUnavailable,
                "Microsoft Graph listed no organisation for the signed-in administrator",
            )
            .with_code("MC-GRAPH-UNAVAILABLE")),
        }
    }
}

/// A Microsoft registration `id` for `client_id` in `tenant`, on the setup registration's cloud
/// and hosts (the sandbox's emulator when the setup registration points there).
fn registration(
    id: &str,
    tenant: Option<&str>,
    client_id: &str,
    setup: Option<&Registration>,
) -> Result<Registration> {
    let mut v = json!({"id": id, "provider": "microsoft", "client_id": client_id});
    if let Some(t) = tenant {
        v["tenant"] = json!(t);
    }
    if let Some(s) = setup {
        for (k, val) in [
            ("cloud", &s.cloud),
            ("authority_host", &s.authority_host),
            ("graph_host", &s.graph_host),
        ] {
            if let Some(val) = val {
                v[k] = json!(val);
            }
        }
    }
    serde_json::from_value(v)
        .map_err(|e| Error::internal(format!("building the registration: {e}")))
}

fn step(request: &str, en: String, de: String) -> Step {
    Step {
        request: request.into(),
        en,
        de,
    }
}

impl Client {
    /// The administrator's sign-in to the setup registration: a Graph access token with
    /// [`SETUP_SCOPES`] (never stored), the tenant it was issued for, and the Graph base URL.
    async fn admin_sign_in(
        &self,
        setup_registration: &str,
        flow: Option<Flow>,
        login_hint: Option<&str>,
        observer: &dyn ConnectObserver,
        cancel: &CancellationToken,
    ) -> Result<(SecretString, Url, Registration)> {
        let setup = self.registration(setup_registration)?;
        if setup.provider != ProviderKind::Microsoft {
            return Err(Error::invalid("setup_registration", format!("'{setup_registration}' is not a Microsoft registration: tenant setup goes through Microsoft Graph")));
        }
        let mut profile: Profile = provider::resolve(&setup, None, &self.network().http).await?;
        let graph = profile
            .graph
            .clone()
            .ok_or_else(|| Error::internal("a Microsoft profile without Graph"))?;
        // The Graph resource as the scopes name it (the public identifier, also in the sandbox).
        let resource = graph
            .app_scopes
            .first()
            .and_then(|s| s.strip_suffix("/.default"))
            .unwrap_or("https://graph.microsoft.com")
            .to_string();
        profile.delegated_scopes = SETUP_SCOPES
            .iter()
            .map(|s| format!("{resource}/{s}"))
            .chain(["openid".to_string(), "profile".to_string()])
            .collect();
        profile.consent_scopes.clear();
        let grant = self
            .admin_grant(&setup, &profile, flow, login_hint, observer, cancel)
            .await
            .map_err(|e| {
                // Declined, or "Need admin approval", at the setup app's permissions: not an
                // administrator, or one who did not accept them.
                match crate::diagnose::code_for(&e, Default::default()) {
                    "MC-CONSENT-DECLINED" | "MC-ADMIN-CONSENT-REQUIRED" | "MC-CONSENT-REQUIRED" => {
                        e.with_code("MC-SETUP-INSUFFICIENT-PRIVILEGES")
                    }
                    _ => e,
                }
            })?;
        // The token names the administrator's tenant; the registration is created there.
        let claims =
            identity::jwt_payload(grant.access_token.expose_secret()).unwrap_or(Value::Null);
        let scp = claims["scp"].as_str().unwrap_or_default();
        if !scp.is_empty()
            && !scp
                .split(' ')
                .any(|s| s.eq_ignore_ascii_case("Application.ReadWrite.All"))
        {
            return Err(Error::new(ErrorKind::AuthorizationDenied, "the administrator's token lacks Application.ReadWrite.All: the setup app's permissions were not consented")
                .with_code("MC-SETUP-INSUFFICIENT-PRIVILEGES"));
        }
        Ok((grant.access_token, graph.base, setup))
    }

    /// The setup app's token for `profile`, by device code or in the browser.
    async fn admin_grant(
        &self,
        setup: &Registration,
        profile: &Profile,
        flow: Option<Flow>,
        login_hint: Option<&str>,
        observer: &dyn ConnectObserver,
        cancel: &CancellationToken,
    ) -> Result<token::TokenGrant> {
        let timeout = Duration::from_secs(900);
        let deadline = std::time::Instant::now() + timeout;
        let ep = self.token_endpoint(setup, profile);
        let grant = match flow.unwrap_or(Flow::Browser) {
            Flow::DeviceCode => {
                let url = profile
                    .endpoints
                    .device
                    .clone()
                    .ok_or_else(|| Error::internal("no device endpoint"))?;
                let mut da = device::start(
                    &self.network().http,
                    &url,
                    ClientAuth {
                        client_id: &setup.client_id,
                        secret: None,
                    },
                    &profile.sign_in_scope_string(),
                )
                .await?;
                observer.device_code(&da.info);
                device::poll(
                    ep,
                    &profile.delegated_scopes,
                    &mut da,
                    observer,
                    deadline,
                    timeout,
                    cancel,
                )
                .await?
            }
            Flow::Browser => {
                let lb =
                    Loopback::bind(setup.redirect_uri.as_deref().unwrap_or("http://localhost"))
                        .await?;
                let req = browser::authorization_request(
                    profile,
                    &AuthorizeParams {
                        client_id: &setup.client_id,
                        redirect_uri: lb.redirect_uri(),
                        login_hint,
                        select_account: login_hint.is_none(),
                    },
                )?;
                observer.progress(ConnectStage::OpeningBrowser);
                browser::open(observer, req.url.as_str()).await?;
                observer.progress(ConnectStage::WaitingForBrowser);
                let (code, answer) = lb
                    .wait(req.state.secret(), self.language(), timeout, cancel)
                    .await?;
                observer.progress(ConnectStage::RequestingTokens);
                let r = browser::redeem_code(
                    ep,
                    &req,
                    &code,
                    profile,
                    "redeeming the administrator's sign-in",
                    cancel,
                )
                .await;
                answer.finish(r.as_ref().map(|_| ())).await;
                r?
            }
            Flow::ClientCredentials => {
                return Err(Error::invalid(
                    "flow",
                    "tenant setup needs an administrator's sign-in: use browser or device_code",
                ))
            }
        };
        Ok(grant)
    }

    /// Create the app registration mailconnect needs in the administrator's tenant through
    /// Microsoft Graph, grant admin consent, store it, and read it back. See the module docs.
    pub async fn admin_register(
        &self,
        opts: &RegisterOptions,
        observer: &dyn ConnectObserver,
        cancel: &CancellationToken,
    ) -> Result<RegisterReport> {
        let what = "setting up the app registration through Microsoft Graph";
        // The registration as it will be stored, checked before anything is created.
        crate::model::validate::validate_registration(&registration(
            &opts.registration_id,
            None,
            "00000000-0000-0000-0000-000000000000",
            None,
        )?)?;
        if !(1..=730).contains(&opts.secret_days) {
            return Err(Error::invalid(
                "secret_days",
                "'secret_days' must be 1 to 730",
            ));
        }
        if !opts.replace && self.registration(&opts.registration_id).is_ok() {
            return Err(Error::invalid(
                "registration_id",
                format!(
                    "a registration '{}' is stored already (pass \"replace\": true to replace it)",
                    opts.registration_id
                ),
            ));
        }
        let (token, base, setup) = self
            .admin_sign_in(
                &opts.setup_registration,
                opts.flow,
                opts.login_hint.as_deref(),
                observer,
                cancel,
            )
            .await
            .map_err(|e| e.context(what))?;
        let g = AdminGraph {
            client: self,
            base,
            token,
            cancel,
        };
        self.register_with(&g, opts, &setup)
            .await
            .map_err(|e| e.context(what))
    }

    async fn register_with(
        &self,
        g: &AdminGraph<'_>,
        opts: &RegisterOptions,
        setup: &Registration,
    ) -> Result<RegisterReport> {
        let wanted = Wanted {
            graph: opts.graph,
            app_only: opts.app_only,
        };
        let (tenant_id, tenant_name) = g.organization().await?;
        let resources = vec![
            g.resource(plan::EXCHANGE_APP_ID).await?,
            g.resource(plan::GRAPH_APP_ID).await?,
        ];
        let rra = plan::required_resource_access(wanted, &resources).map_err(|m| {
            Error::new(ErrorKind::ProviderConfiguration, m).with_code("MC-EXCHANGE-NOT-AVAILABLE")
        })?;
        let mut steps = vec![];
        let body = json!({
            "displayName": opts.display_name,
            "signInAudience": "AzureADMyOrg",
            "isFallbackPublicClient": true,
            "publicClient": {"redirectUris": ["http://localhost"]},
            "requiredResourceAccess": rra,
            "notes": "Created by mailconnect admin register: the mail client's desktop sign-in (IMAP, POP, SMTP with OAuth 2.0).",
        });
        let app = g
            .json(
                Method::POST,
                "applications",
                &[],
                Some(&body),
                &[201],
                "creating the app registration",
            )
            .await?;
        let (Some(app_oid), Some(client_id)) = (
            app["id"].as_str().map(str::to_string),
            app["appId"].as_str().map(str::to_string),
        ) else {
            return Err(Error::new(
                ErrorKind::ProviderUnavailable,
                "Microsoft Graph created the application without an id or appId",
            )
            .with_code("MC-GRAPH-UNAVAILABLE"));
        };
        steps.push(step("POST /applications", format!("Created the app registration '{}' (client id {client_id}): public client, http://localhost under Mobile and desktop applications, public client flows on, the mail permissions.", opts.display_name), format!("App-Registrierung '{}' angelegt (Client-ID {client_id}): öffentlicher Client, http://localhost unter Mobile und Desktopanwendungen, öffentliche Clientflows an, die E-Mail-Berechtigungen.", opts.display_name)));
        // A new application reaches the directory's replicas with a delay: its service principal
        // is retried for a while (Graph answers 400/404 "does not reference a valid application").
        let mut tries = 0;
        let sp = loop {
            tries += 1;
            match g
                .json(
                    Method::POST,
                    "servicePrincipals",
                    &[],
                    Some(&json!({"appId": client_id})),
                    &[201],
                    "creating the enterprise application",
                )
                .await
            {
                Ok(v) => break v,
                Err(e) if tries < 6 && matches!(e.evidence().http_status, Some(400 | 404)) => {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(2 * tries)) => {}
                        _ = g.cancel.cancelled() => return Err(Error::cancelled("creating the enterprise application")),
                    }
                }
                Err(e) => return Err(e),
            }
        };
        let sp_id = sp["id"].as_str().unwrap_or_default().to_string();
        steps.push(step(
            "POST /servicePrincipals",
            "Created its enterprise application in the tenant.".into(),
            "Die zugehörige Unternehmensanwendung im Mandanten angelegt.".into(),
        ));
        for (app_id, scopes) in wanted.delegated() {
            let Some(res) = resources.iter().find(|r| r.app_id == app_id) else {
                continue;
            };
            let scope = scopes.join(" ");
            g.json(Method::POST, "oauth2PermissionGrants", &[], Some(&json!({"clientId": sp_id, "consentType": "AllPrincipals", "resourceId": res.id, "scope": scope})), &[201], "granting admin consent").await?;
            steps.push(step(
                "POST /oauth2PermissionGrants",
                format!(
                    "Granted admin consent for the organisation: {scope} ({}).",
                    res.name()
                ),
                format!(
                    "Administratorzustimmung für die Organisation erteilt: {scope} ({}).",
                    res.name()
                ),
            ));
        }
        let mut app_registration_id = None;
        let mut secret_expires = None;
        let mut exchange_steps = vec![];
        let mut secret = None;
        if opts.app_only {
            let end = crate::account_state::rfc3339(
                crate::account_state::now() + i64::from(opts.secret_days) * 86_400,
            )
            .unwrap_or_default();
            let pw = g.json(Method::POST, &format!("applications/{app_oid}/addPassword"), &[], Some(&json!({"passwordCredential": {"displayName": "mailconnect", "endDateTime": end}})), &[200, 201], "adding a client secret").await?;
            let Some(text) = pw["secretText"].as_str() else {
                return Err(Error::new(
                    ErrorKind::ProviderUnavailable,
                    "Microsoft Graph added a secret but returned no secretText",
                )
                .with_code("MC-GRAPH-UNAVAILABLE"));
            };
            secret = Some(SecretString::from(text.to_string()));
            secret_expires = Some(pw["endDateTime"].as_str().unwrap_or(&end).to_string());
            steps.push(step("POST /applications/{id}/addPassword", format!("Added a client secret valid until {} (stored sealed, shown nowhere).", secret_expires.as_deref().unwrap_or_default()), format!("Einen geheimen Clientschlüssel bis {} hinzugefügt (versiegelt gespeichert, nirgends angezeigt).", secret_expires.as_deref().unwrap_or_default())));
            for (app_id, roles) in wanted.roles() {
                let Some(res) = resources.iter().find(|r| r.app_id == app_id) else {
                    continue;
                };
                for role in roles {
                    let Some(role_id) = res.role_id(role) else {
                        continue;
                    };
                    g.json(Method::POST, &format!("servicePrincipals/{}/appRoleAssignedTo", res.id), &[], Some(&json!({"principalId": sp_id, "resourceId": res.id, "appRoleId": role_id})), &[201], "granting an application permission").await?;
                    steps.push(step(
                        "POST /servicePrincipals/{id}/appRoleAssignedTo",
                        format!(
                            "Granted the application permission {role} ({}).",
                            res.name()
                        ),
                        format!(
                            "Die Anwendungsberechtigung {role} ({}) erteilt.",
                            res.name()
                        ),
                    ));
                }
            }
            exchange_steps = vec![
                "Connect-ExchangeOnline".to_string(),
                format!("New-ServicePrincipal -AppId {client_id} -ObjectId {sp_id}"),
                format!("Add-MailboxPermission -Identity <mailbox> -User {sp_id} -AccessRights FullAccess"),
            ];
        }
        let base = registration(
            &opts.registration_id,
            Some(&tenant_id),
            &client_id,
            Some(setup),
        )?;
        self.put_registration(&base)?;
        if let Some(secret) = secret {
            let id = format!("{}-app", opts.registration_id);
            let app_reg = Registration {
                id: id.clone(),
                client_secret: Some(secret),
                ..base.clone()
            };
            self.put_registration(&app_reg)?;
            app_registration_id = Some(id);
        }
        steps.push(step(
            "",
            format!(
                "Stored the registration '{}' (tenant {tenant_id}, client id {client_id}).",
                opts.registration_id
            ),
            format!(
                "Die Registrierung '{}' gespeichert (Mandant {tenant_id}, Client-ID {client_id}).",
                opts.registration_id
            ),
        ));
        // Read back what was created, as `check` does.
        let findings = check_with(g, &base, &tenant_id, wanted).await?.1;
        Ok(RegisterReport {
            tenant_id,
            tenant_name,
            client_id,
            application_object_id: app_oid,
            service_principal_id: sp_id,
            registration_id: opts.registration_id.clone(),
            app_registration_id,
            secret_expires,
            steps,
            exchange_steps,
            findings,
        })
    }

    /// Read registration `id` back through Microsoft Graph (the administrator signs in to the
    /// setup registration) and report every deviation from what mailconnect needs.
    pub async fn admin_check(
        &self,
        id: &str,
        opts: &CheckOptions,
        observer: &dyn ConnectObserver,
        cancel: &CancellationToken,
    ) -> Result<CheckReport> {
        let what = format!("checking the app registration of '{id}' through Microsoft Graph");
        let reg = self.registration(id).map_err(|e| e.context(&what))?;
        let uses_graph = self
            .accounts()?
            .iter()
            .any(|a| a.registration == reg.id && a.transport.uses_graph());
        let wanted = Wanted {
            graph: opts.graph.unwrap_or(uses_graph),
            app_only: opts.app_only.unwrap_or(reg.client_secret.is_some()),
        };
        let (token, base, _) = self
            .admin_sign_in(
                &opts.setup_registration,
                opts.flow,
                opts.login_hint.as_deref(),
                observer,
                cancel,
            )
            .await
            .map_err(|e| e.context(&what))?;
        let g = AdminGraph {
            client: self,
            base,
            token,
            cancel,
        };
        let (tenant_id, _) = g.organization().await.map_err(|e| e.context(&what))?;
        let (display_name, findings) = check_with(&g, &reg, &tenant_id, wanted)
            .await
            .map_err(|e| e.context(&what))?;
        Ok(CheckReport {
            registration_id: reg.id.clone(),
            client_id: reg.client_id.clone(),
            ok: !findings.iter().any(|f| f.severity == Severity::Error),
            tenant_id,
            display_name,
            graph: wanted.graph,
            app_only: wanted.app_only,
            findings,
        })
    }
}

/// Read `reg`'s application, service principal, grants and role assignments; the findings.
async fn check_with(
    g: &AdminGraph<'_>,
    reg: &Registration,
    tenant_id: &str,
    wanted: Wanted,
) -> Result<(String, Vec<Finding>)> {
    let client_id = reg.client_id.replace('\'', "''");
    let apps = g
        .list(
            "applications",
            &format!("appId eq '{client_id}'"),
            "reading the app registration",
        )
        .await?;
    let Some(app) = apps.first() else {
        let f = Finding {
            code: "MC-APP-NOT-FOUND",
            severity: Severity::Error,
            detail_en: format!("Tenant {tenant_id} has no app registration with client id {}: it lives in another tenant, was deleted, or the id is mistyped (AADSTS700016 at sign-in).", reg.client_id),
            detail_de: format!("Mandant {tenant_id} hat keine App-Registrierung mit der Client-ID {}: Sie liegt in einem anderen Mandanten, wurde gelöscht, oder die ID ist vertippt (AADSTS700016 bei der Anmeldung).", reg.client_id),
        };
        return Ok((String::new(), vec![f]));
    };
    let resources = vec![
        g.resource(plan::EXCHANGE_APP_ID).await?,
        g.resource(plan::GRAPH_APP_ID).await?,
    ];
    let sps = g
        .list(
            "servicePrincipals",
            &format!("appId eq '{client_id}'"),
            "reading the enterprise application",
        )
        .await?;
    let sp = sps.first();
    let (grants, assignments) = match sp.and_then(|s| s["id"].as_str()) {
        Some(sp_id) => (
            g.list(
                "oauth2PermissionGrants",
                &format!("clientId eq '{sp_id}'"),
                "reading the admin consent",
            )
            .await?,
            g.json(
                Method::GET,
                &format!("servicePrincipals/{sp_id}/appRoleAssignments"),
                &[],
                None,
                &[200],
                "reading the application permissions",
            )
            .await?["value"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        ),
        None => (vec![], vec![]),
    };
    let mut findings = plan::evaluate(
        &plan::ReadBack {
            app,
            sp,
            grants: &grants,
            role_assignments: &assignments,
            resources: &resources,
            redirect_uri: reg.redirect_uri.as_deref(),
            tenant: reg.tenant.as_deref(),
            now: crate::account_state::now(),
        },
        wanted,
    );
    findings.sort_by_key(|f| f.severity != Severity::Error);
    Ok((
        app["displayName"].as_str().unwrap_or_default().to_string(),
        findings,
    ))
}

/// The report's findings as text lines in `lang` (for the CLI and logs).
pub fn finding_lines(findings: &[Finding], lang: Language) -> Vec<String> {
    findings
        .iter()
        .map(|f| {
            let (detail, _title, fix) = f.text(lang);
            format!(
                "{} {}: {detail} {fix}",
                f.code,
                match (f.severity, lang) {
                    (Severity::Error, Language::En) => "error",
                    (Severity::Error, Language::De) => "Fehler",
                    (Severity::Warning, Language::En) => "warning",
                    (Severity::Warning, Language::De) => "Warnung",
                }
            )
        })
        .collect()
}
