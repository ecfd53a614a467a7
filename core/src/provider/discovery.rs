//! Authorization server metadata discovery (RFC 8414, OpenID Connect Discovery 1.0).

use serde::Deserialize;
use url::Url;

use crate::error::{Error, ErrorKind, Result};
use crate::http::HttpClient;

#[derive(Debug, Deserialize)]
struct RawMetadata {
    issuer: String,
    #[serde(default)]
    authorization_endpoint: Option<String>,
    token_endpoint: String,
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
    #[serde(default)]
    revocation_endpoint: Option<String>,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    #[serde(default)]
    prompt_values_supported: Option<Vec<String>>,
}

/// What discovery found.
#[derive(Debug)]
pub(super) struct Metadata {
    pub authorization_endpoint: Option<Url>,
    pub token_endpoint: Url,
    pub device_authorization_endpoint: Option<Url>,
    pub revocation_endpoint: Option<Url>,
    pub userinfo_endpoint: Option<Url>,
    /// `prompt_values_supported` (OpenID Connect Prompt Create; many servers do not publish it).
    pub prompt_values_supported: Option<Vec<String>>,
}

/// The discovery URLs for `issuer`, in the order RFC 8414 §3.1 and OIDC Discovery §4 give them.
fn candidates(issuer: &Url) -> Vec<Url> {
    let path = issuer.path().trim_end_matches('/');
    let mut out = Vec::new();
    for wk in ["oauth-authorization-server", "openid-configuration"] {
        // RFC 8414: well-known segment inserted between host and path.
        let mut u = issuer.clone();
        u.set_path(&format!("/.well-known/{wk}{path}"));
        out.push(u);
    }
    // OIDC: appended to the issuer path.
    let mut u = issuer.clone();
    u.set_path(&format!("{path}/.well-known/openid-configuration"));
    if !out.contains(&u) {
        out.push(u);
    }
    out
}

pub(super) async fn discover(http: &HttpClient, issuer: &str) -> Result<Metadata> {
    let issuer_url = super::parse("issuer", issuer)?;
    let mut last: Option<Error> = None;
    for url in candidates(&issuer_url) {
        match http.get_json::<RawMetadata>(&url).await {
            Ok(m) => {
                if m.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
                    return Err(Error::new(
                        ErrorKind::ProviderConfiguration,
                        format!(
                            "discovery at {url} names issuer '{}', not '{issuer}' (RFC 8414 §3.3)",
                            m.issuer
                        ),
                    ));
                }
                let opt = |f: &str, v: Option<String>| v.map(|s| super::parse(f, &s)).transpose();
                return Ok(Metadata {
                    authorization_endpoint: opt(
                        "authorization_endpoint",
                        m.authorization_endpoint,
                    )?,
                    token_endpoint: super::parse("token_endpoint", &m.token_endpoint)?,
                    device_authorization_endpoint: opt(
                        "device_authorization_endpoint",
                        m.device_authorization_endpoint,
                    )?,
                    revocation_endpoint: opt("revocation_endpoint", m.revocation_endpoint)?,
                    userinfo_endpoint: opt("userinfo_endpoint", m.userinfo_endpoint)?,
                    prompt_values_supported: m.prompt_values_supported,
                });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| Error::new(ErrorKind::ProviderConfiguration, "no discovery URL"))
        .context(format!("discovering the endpoints of issuer '{issuer}'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8414_inserts_the_well_known_segment_before_the_path() {
        let c = candidates(&Url::parse("https://as.example.com/tenant1").unwrap());
        assert_eq!(
            c[0].as_str(),
            "https://as.example.com/.well-known/oauth-authorization-server/tenant1"
        );
        assert_eq!(
            c[2].as_str(),
            "https://as.example.com/tenant1/.well-known/openid-configuration"
        );
        let c = candidates(&Url::parse("https://as.example.com").unwrap());
        assert_eq!(c.len(), 2);
    }
}
