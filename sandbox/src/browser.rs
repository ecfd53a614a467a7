//! A scripted browser: one cookie jar (one browser profile), no automatic redirects, and a user
//! who reads the emulator's real HTML pages and submits their real forms. It has no back door:
//! whatever it does, a person with a browser could do.

pub mod html;

use std::sync::Arc;

use reqwest::header::{HeaderMap, LOCATION};
use url::Url;

use crate::emulator::authorize::SIGNED_IN_HEADER;
use crate::Error;

/// What the user does at consent (and on the device flow's "Are you trying to sign in?" page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consent {
    /// Accept / Continue.
    #[default]
    Accept,
    /// Cancel.
    Decline,
    /// An administrator ticks "Consent on behalf of your organization", then Accept (a user
    /// without the box just accepts).
    AcceptForOrganization,
}

/// The user's script.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// Account to pick or type.
    pub user: String,
    /// Password.
    pub password: String,
    /// Code for the MFA page (the sandbox's is `123456`).
    pub mfa_code: Option<String>,
    /// Consent decision.
    pub consent: Consent,
    /// When the flow ends in a redirect to the app, request it like a browser would.
    pub deliver_redirect: bool,
}

/// How a scripted sign-in ended.
#[derive(Debug, Clone, Default)]
pub struct SignInOutcome {
    /// The final URL at the app's redirect URI (with `code`/`state` or `error`). For
    /// `response_mode=form_post` the posted fields are shown as a query.
    pub redirect_url: Option<Url>,
    /// The account the emulator signed in.
    pub signed_in_as: Option<String>,
    /// Status and body the app's redirect listener answered (when delivered).
    pub delivered: Option<(u16, String)>,
    /// Text of the emulator's error page, or of an inline error (wrong password, unknown
    /// user, wrong MFA code, bad device code) when the flow stopped there.
    pub error_page: Option<String>,
    /// Text of the last emulator page when the flow ended on one (device flow: "You have signed
    /// in ..." or "You have declined ...").
    pub final_page: Option<String>,
    /// Text of the "Need admin approval" page (AADSTS90094) when the flow passed it (the user
    /// can only return to the app from there).
    pub admin_approval: Option<String>,
}

impl SignInOutcome {
    /// A query parameter of the redirect URL (`code`, `state`, `error`, `error_description`).
    pub fn redirect_param(&self, name: &str) -> Option<String> {
        let u = self.redirect_url.as_ref()?;
        u.query_pairs()
            .chain(url::form_urlencoded::parse(
                u.fragment().unwrap_or("").as_bytes(),
            ))
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// A page as fetched.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// HTTP status.
    pub status: u16,
    /// The URL requested.
    pub url: Url,
    /// `Location` for redirects.
    pub location: Option<String>,
    /// Body text.
    pub body: String,
    /// The emulator's informational signed-in header.
    pub signed_in: Option<String>,
}

/// One browser profile.
#[derive(Debug, Clone)]
pub struct ScriptedBrowser {
    client: reqwest::Client,
}

impl Default for ScriptedBrowser {
    fn default() -> Self {
        ScriptedBrowser::new()
    }
}

fn default_tls() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    tls_with_roots(roots)
}

fn tls_with_roots(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

impl ScriptedBrowser {
    /// A fresh profile (empty cookie jar) trusting the public web roots.
    pub fn new() -> Self {
        ScriptedBrowser::with_tls_config(default_tls())
    }

    /// A fresh profile with this TLS configuration (e.g. trusting a test CA).
    pub fn with_tls_config(tls: rustls::ClientConfig) -> Self {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .resolve("localhost", std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .timeout(std::time::Duration::from_secs(30))
            .user_agent("Mozilla/5.0 (mailconnect ScriptedBrowser)")
            .build()
            .expect("an HTTP client with a preconfigured TLS backend builds");
        ScriptedBrowser { client }
    }

    /// A fresh profile trusting the CA certificates in this PEM.
    pub fn with_root_certificates_pem(pem: &[u8]) -> Result<Self, Error> {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut &pem[..]) {
            let c = c.map_err(|e| Error::Tls(e.to_string()))?;
            roots.add(c).map_err(|e| Error::Tls(e.to_string()))?;
        }
        Ok(ScriptedBrowser::with_tls_config(tls_with_roots(roots)))
    }

    /// Request a URL (GET, or POST with form fields), keeping cookies, not following redirects.
    pub async fn fetch(
        &self,
        url: &str,
        form: Option<&[(String, String)]>,
    ) -> Result<Fetched, Error> {
        let u =
            Url::parse(url).map_err(|e| Error::Browser(format!("'{url}' is not a URL: {e}")))?;
        let rb = match form {
            Some(f) => self.client.post(u.clone()).form(f),
            None => self.client.get(u.clone()),
        };
        Self::answer(rb, u, url).await
    }

    /// Send a request (`GET`, `POST`, `DELETE`, …) with an optional JSON body, as a script or
    /// `curl` does to the emulator's control API (`/_sandbox/tenants`, `/_sandbox/stats`, …).
    /// Keeps cookies, does not follow redirects.
    pub async fn request_json(
        &self,
        method: &str,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Fetched, Error> {
        let u =
            Url::parse(url).map_err(|e| Error::Browser(format!("'{url}' is not a URL: {e}")))?;
        let m = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|e| Error::Browser(format!("'{method}' is not an HTTP method: {e}")))?;
        let mut rb = self.client.request(m, u.clone());
        if let Some(b) = body {
            rb = rb
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        Self::answer(rb, u, url).await
    }

    async fn answer(rb: reqwest::RequestBuilder, u: Url, url: &str) -> Result<Fetched, Error> {
        let resp = rb
            .send()
            .await
            .map_err(|e| Error::Http(format!("{url}: {e}")))?;
        let status = resp.status().as_u16();
        let headers: HeaderMap = resp.headers().clone();
        let body = resp
            .text()
            .await
            .map_err(|e| Error::Http(format!("{url}: reading the body: {e}")))?;
        Ok(Fetched {
            status,
            url: u,
            location: headers
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(String::from),
            signed_in: headers
                .get(SIGNED_IN_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(String::from),
            body,
        })
    }

    /// Open an authorization URL and play the script until the flow leaves the emulator (a
    /// redirect to the app) or stops on an error page.
    pub async fn sign_in(
        &self,
        authorize_url: &str,
        script: &SignIn,
    ) -> Result<SignInOutcome, Error> {
        let origin = Url::parse(authorize_url)
            .map_err(|e| Error::Browser(format!("'{authorize_url}' is not a URL: {e}")))?
            .origin();
        let first = self.fetch(authorize_url, None).await?;
        self.drive(first, &origin, script, None).await
    }

    /// Open the device-login page, enter `user_code`, and play the script.
    pub async fn complete_device_code(
        &self,
        verification_uri: &str,
        user_code: &str,
        script: &SignIn,
    ) -> Result<SignInOutcome, Error> {
        let origin = Url::parse(verification_uri)
            .map_err(|e| Error::Browser(format!("'{verification_uri}' is not a URL: {e}")))?
            .origin();
        let first = self.fetch(verification_uri, None).await?;
        self.drive(first, &origin, script, Some(user_code)).await
    }

    async fn drive(
        &self,
        mut page: Fetched,
        origin: &url::Origin,
        script: &SignIn,
        mut user_code: Option<&str>,
    ) -> Result<SignInOutcome, Error> {
        let mut out = SignInOutcome::default();
        for _ in 0..40 {
            if let Some(s) = page.signed_in.take() {
                out.signed_in_as = Some(s);
            }
            if (300..400).contains(&page.status) {
                let loc = page.location.as_deref().ok_or_else(|| {
                    Error::Browser(format!("{} redirect without Location", page.status))
                })?;
                let next = page
                    .url
                    .join(loc)
                    .map_err(|e| Error::Browser(format!("bad Location '{loc}': {e}")))?;
                if next.origin() == *origin {
                    page = self.fetch(next.as_str(), None).await?;
                    continue;
                }
                if script.deliver_redirect {
                    let d = self.fetch(next.as_str(), None).await?;
                    out.delivered = Some((d.status, d.body));
                }
                out.redirect_url = Some(next);
                return Ok(out);
            }
            let body = page.body.clone();
            if !(200..300).contains(&page.status) && !html::has_id(&body, "errorPage") {
                return Err(Error::Browser(format!(
                    "HTTP {} at {}: {}",
                    page.status,
                    page.url,
                    html::text(&body).chars().take(300).collect::<String>()
                )));
            }
            if html::has_id(&body, "errorPage") {
                out.error_page = html::element_text(&body, "errorPage");
                return Ok(out);
            }
            if let Some(e) = html::element_text(&body, "fieldError") {
                out.error_page = Some(e);
                return Ok(out);
            }
            for done in ["deviceDone", "deviceDeclined", "signedOut"] {
                if html::has_id(&body, done) {
                    out.final_page = html::element_text(&body, done);
                    return Ok(out);
                }
            }
            let forms = html::forms(&body);
            let Some(form) = forms.first().cloned() else {
                return Err(Error::Browser(format!(
                    "no form on the page at {}: {}",
                    page.url,
                    html::text(&body).chars().take(300).collect::<String>()
                )));
            };
            let mut fill: Vec<(&str, String)> = vec![];
            let mut button: Option<(String, String)> = None;
            let press = |value: &str| {
                form.buttons
                    .iter()
                    .find(|b| b.value == value)
                    .map(|b| (b.name.clone(), b.value.clone()))
            };
            match form.id.as_str() {
                "hiddenform" => {
                    let action = page
                        .url
                        .join(&form.action)
                        .map_err(|e| Error::Browser(format!("bad form action: {e}")))?;
                    let fields: Vec<(String, String)> = form
                        .fields
                        .iter()
                        .map(|f| (f.name.clone(), f.value.clone()))
                        .collect();
                    let mut shown = action.clone();
                    shown.query_pairs_mut().extend_pairs(&fields);
                    if script.deliver_redirect {
                        let d = self.fetch(action.as_str(), Some(&fields)).await?;
                        out.delivered = Some((d.status, d.body));
                    }
                    out.redirect_url = Some(shown);
                    return Ok(out);
                }
                "deviceCodeForm" => {
                    let code = user_code.take().ok_or_else(|| {
                        Error::Browser("the device code page came back (code refused twice)".into())
                    })?;
                    fill.push(("otc", code.to_string()));
                }
                "pickerForm" => {
                    button = form
                        .buttons
                        .iter()
                        .find(|b| b.value.eq_ignore_ascii_case(&script.user))
                        .or_else(|| form.buttons.iter().find(|b| b.value == "other"))
                        .map(|b| (b.name.clone(), b.value.clone()));
                }
                "loginForm" => fill.push(("loginfmt", script.user.clone())),
                "passwordForm" => fill.push(("passwd", script.password.clone())),
                "mfaForm" => {
                    let code = script.mfa_code.clone().ok_or_else(|| {
                        Error::Browser(
                            "the sign-in asks for an MFA code but the script has none".into(),
                        )
                    })?;
                    fill.push(("otc", code));
                }
                "consentForm" => {
                    button = press(if script.consent == Consent::Decline {
                        "cancel"
                    } else {
                        "accept"
                    });
                    if script.consent == Consent::AcceptForOrganization {
                        if let Some(f) = form
                            .fields
                            .iter()
                            .find(|f| f.kind == "checkbox" && f.name == "consent_for_org")
                        {
                            fill.push(("consent_for_org", f.value.clone()));
                        }
                    }
                }
                "adminApprovalForm" => {
                    out.admin_approval = Some(html::text(&body));
                    button = press("cancel");
                }
                "deviceConfirmForm" => {
                    button = press(if script.consent == Consent::Decline {
                        "no"
                    } else {
                        "yes"
                    });
                }
                other => {
                    return Err(Error::Browser(format!(
                        "unexpected form '{other}' at {}",
                        page.url
                    )));
                }
            }
            let mut fields: Vec<(String, String)> = form
                .fields
                .iter()
                .filter(|f| f.kind != "checkbox" || f.checked)
                .map(|f| (f.name.clone(), f.value.clone()))
                .collect();
            for (k, v) in fill {
                match fields.iter_mut().find(|(n, _)| n == k) {
                    Some(f) => f.1 = v,
                    None => fields.push((k.to_string(), v)),
                }
            }
            if let Some(b) = button {
                fields.push(b);
            }
            let action = page
                .url
                .join(&form.action)
                .map_err(|e| Error::Browser(format!("bad form action '{}': {e}", form.action)))?;
            page = if form.method == "POST" {
                self.fetch(action.as_str(), Some(&fields)).await?
            } else {
                let mut u = action;
                u.query_pairs_mut().extend_pairs(&fields);
                self.fetch(u.as_str(), None).await?
            };
        }
        Err(Error::Browser(
            "the sign-in did not end after 40 pages".into(),
        ))
    }
}
