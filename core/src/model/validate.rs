//! Validation of registrations and accounts before they are stored.

use url::Url;

use super::{Account, ProviderKind, Registration};
use crate::error::{quote, Error, Result};

const MAX_ID: usize = 256;

fn check_id(field: &str, id: &str) -> Result<()> {
    if id.trim().is_empty() {
        return Err(Error::invalid(
            field,
            format!("'{field}' must not be empty"),
        ));
    }
    if id.len() > MAX_ID {
        return Err(Error::invalid(
            field,
            format!("'{field}' is longer than {MAX_ID} bytes"),
        ));
    }
    if id.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(
            field,
            format!("'{field}' contains control characters"),
        ));
    }
    Ok(())
}

/// Whether `s` looks like a mailbox address (`local@domain.tld`, no spaces or brackets).
pub(crate) fn is_address(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && s.len() <= 320
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"".contains(c))
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
}

fn check_address(field: &str, s: &str) -> Result<()> {
    if !is_address(s) {
        return Err(Error::invalid(
            field,
            format!("'{field}' is not a valid mailbox address: '{}'", quote(s)),
        ));
    }
    Ok(())
}

/// Check that `s` is an https URL, or http on a loopback host.
pub(crate) fn check_endpoint_url(field: &str, s: &str) -> Result<Url> {
    let url = Url::parse(s)
        .map_err(|e| Error::invalid(field, format!("'{field}' is not a valid URL: {e}")))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(Error::invalid(
            field,
            format!(
                "'{field}' must use https (http is allowed only for loopback): {}",
                quote(s)
            ),
        )),
        other => Err(Error::invalid(
            field,
            format!("'{field}' has unsupported scheme '{}'", quote(other)),
        )),
    }
}

/// Longest URL accepted in a registration (issuer, endpoints, authority host, redirect URI).
pub const MAX_URL: usize = 2048;
/// Longest client secret accepted (Entra ID's are 40 characters; certificates are not secrets).
pub const MAX_SECRET: usize = 1024;
/// Most scopes, and the longest scope.
pub const MAX_SCOPES: usize = 64;
/// The longest scope.
pub const MAX_SCOPE: usize = 512;

/// A length check that names the field and the limit (before the value is parsed or quoted).
fn check_len(field: &str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(Error::invalid(
            field,
            format!(
                "'{field}' is {} bytes long; at most {max} are accepted",
                value.len()
            ),
        ));
    }
    Ok(())
}

/// The issuer and endpoint fields of a generic provider, with their names.
fn generic_endpoints(r: &Registration) -> [(&'static str, &Option<String>); 6] {
    [
        ("issuer", &r.issuer),
        ("authorization_endpoint", &r.authorization_endpoint),
        ("token_endpoint", &r.token_endpoint),
        (
            "device_authorization_endpoint",
            &r.device_authorization_endpoint,
        ),
        ("revocation_endpoint", &r.revocation_endpoint),
        ("userinfo_endpoint", &r.userinfo_endpoint),
    ]
}

/// Validate a registration: lengths first (naming the field and the limit), then values.
pub fn validate_registration(r: &Registration) -> Result<()> {
    check_id("id", &r.id)?;
    let urls = [
        ("authority_host", &r.authority_host),
        ("graph_host", &r.graph_host),
        ("redirect_uri", &r.redirect_uri),
    ];
    for (field, v) in urls.into_iter().chain(generic_endpoints(r)) {
        if let Some(v) = v {
            check_len(field, v, MAX_URL)?;
        }
    }
    if let Some(secret) = &r.client_secret {
        check_len(
            "client_secret",
            secrecy::ExposeSecret::expose_secret(secret),
            MAX_SECRET,
        )?;
    }
    if let Some(scopes) = &r.scopes {
        if scopes.len() > MAX_SCOPES {
            return Err(Error::invalid(
                "scopes",
                format!(
                    "'scopes' has {} entries; at most {MAX_SCOPES} are accepted",
                    scopes.len()
                ),
            ));
        }
        for s in scopes {
            check_len("scopes", s, MAX_SCOPE)?;
        }
    }
    if r.client_id.trim().is_empty() {
        return Err(Error::invalid(
            "client_id",
            "'client_id' must not be empty (the Application (client) ID of the app registration)",
        ));
    }
    if r.client_id.len() > MAX_ID
        || r.client_id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::invalid(
            "client_id",
            "'client_id' contains whitespace or is too long",
        ));
    }
    if let Some(t) = &r.tenant {
        let ok = !t.is_empty()
            && t.len() <= 256
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !ok {
            return Err(Error::invalid("tenant", format!("'tenant' must be a tenant id, a domain, 'organizations', 'consumers' or 'common', not '{}'", quote(t))));
        }
    }
    if let Some(c) = &r.cloud {
        if !matches!(c.as_str(), "global" | "usgov" | "china") {
            return Err(Error::invalid(
                "cloud",
                format!(
                    "'cloud' must be 'global', 'usgov' or 'china', not '{}'",
                    quote(c)
                ),
            ));
        }
    }
    for (field, host, example) in [
        (
            "authority_host",
            &r.authority_host,
            "https://login.microsoftonline.com",
        ),
        ("graph_host", &r.graph_host, "https://graph.microsoft.com"),
    ] {
        if let Some(h) = host {
            let u = check_endpoint_url(field, h)?;
            if u.path() != "/" && !u.path().is_empty() {
                return Err(Error::invalid(
                    field,
                    format!("'{field}' must be a scheme and host only, e.g. {example}"),
                ));
            }
        }
    }
    if let Some(ru) = &r.redirect_uri {
        let u = Url::parse(ru).map_err(|e| {
            Error::invalid(
                "redirect_uri",
                format!("'redirect_uri' is not a valid URL: {e}"),
            )
        })?;
        if u.scheme() != "http" && u.scheme() != "https" {
            return Err(Error::invalid(
                "redirect_uri",
                "'redirect_uri' must be an http(s) URL",
            ));
        }
    }
    for (field, v) in generic_endpoints(r) {
        if let Some(v) = v {
            check_endpoint_url(field, v)?;
        }
    }
    if r.provider == ProviderKind::Generic && r.issuer.is_none() && r.token_endpoint.is_none() {
        return Err(Error::invalid(
            "issuer",
            "a 'generic' registration needs 'issuer' (for discovery) or 'token_endpoint'",
        ));
    }
    if let Some(s) = &r.scopes {
        if s.iter().any(|x| x.is_empty() || x.contains(' ')) {
            return Err(Error::invalid(
                "scopes",
                "'scopes' entries must be non-empty and contain no spaces",
            ));
        }
    }
    Ok(())
}

/// Validate an account (the registration must exist; the caller checks that).
pub fn validate_account(a: &Account) -> Result<()> {
    check_id("id", &a.id)?;
    check_address("mailbox", &a.mailbox)?;
    if let Some(l) = &a.login {
        check_address("login", l)?;
    }
    for l in &a.login_aliases {
        check_address("login_aliases", l)?;
    }
    check_id("registration", &a.registration)?;
    let o = &a.options;
    if o.interactive_timeout_secs == 0 || o.interactive_timeout_secs > 3600 {
        return Err(Error::invalid(
            "options.interactive_timeout_secs",
            "'options.interactive_timeout_secs' must be between 1 and 3600",
        ));
    }
    if o.refresh_margin_secs > 3600 {
        return Err(Error::invalid(
            "options.refresh_margin_secs",
            "'options.refresh_margin_secs' must be at most 3600",
        ));
    }
    if o.mail_timeout_secs == 0 || o.mail_timeout_secs > 600 {
        return Err(Error::invalid(
            "options.mail_timeout_secs",
            "'options.mail_timeout_secs' must be between 1 and 600",
        ));
    }
    if let Some(servers) = &a.servers {
        for (name, s) in [
            ("imap", &servers.imap),
            ("pop3", &servers.pop3),
            ("smtp", &servers.smtp),
        ] {
            let Some(s) = s else { continue };
            let field = format!("servers.{name}");
            let host_ok = !s.host.is_empty()
                && s.host.len() <= 253
                && s.host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == ':');
            if !host_ok {
                return Err(Error::invalid(
                    format!("{field}.host"),
                    format!(
                        "'{field}.host' is not a valid host name: '{}'",
                        quote(&s.host)
                    ),
                ));
            }
            if s.port == 0 {
                return Err(Error::invalid(
                    format!("{field}.port"),
                    format!("'{field}.port' must be 1-65535"),
                ));
            }
            if s.security == super::Security::None
                && !matches!(s.host.as_str(), "127.0.0.1" | "localhost" | "::1")
            {
                return Err(Error::invalid(format!("{field}.security"), format!("'{field}.security' = none is only allowed for loopback servers: tokens would cross the network in clear")));
            }
            if let Some(m) = &s.mechanism {
                if !m.eq_ignore_ascii_case("xoauth2") && !m.eq_ignore_ascii_case("oauthbearer") {
                    return Err(Error::invalid(
                        format!("{field}.mechanism"),
                        format!("'{field}.mechanism' must be xoauth2 or oauthbearer"),
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert!(is_address("alice@example.test"));
        assert!(is_address("a.b+c@sub.example.test"));
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.test",
            "alice@example",
            "al ice@example.test",
            "<a@b.c>",
            "a@b.c.",
        ] {
            assert!(!is_address(bad), "{bad}");
        }
    }

    #[test]
    fn plain_http_authority_is_refused_unless_loopback() {
        assert!(check_endpoint_url("authority_host", "http://127.0.0.1:8080").is_ok());
        assert!(check_endpoint_url("authority_host", "https://login.microsoftonline.com").is_ok());
        let e = check_endpoint_url("authority_host", "http://login.example.com").unwrap_err();
        assert_eq!(e.evidence().field.as_deref(), Some("authority_host"));
    }
}

#[cfg(test)]
mod json_tests {
    use crate::model::{parse_json, Account, Registration};

    #[test]
    fn json_errors_name_the_field() {
        let e = parse_json::<Registration>(
            "registration",
            r#"{"id":"r","provider":"nonsense","client_id":"c"}"#,
        )
        .unwrap_err();
        assert_eq!(e.evidence().field.as_deref(), Some("provider"));
        let e = parse_json::<Registration>("registration", r#"{"id":"r","provider":"microsoft"}"#)
            .unwrap_err();
        assert_eq!(e.evidence().field.as_deref(), Some("client_id"));
        let e = parse_json::<Account>("account", r#"{"id":"a","mailbox":"a@b.c","registration":"r","options":{"interactive_timeout_secs":"x"}}"#).unwrap_err();
        assert_eq!(
            e.evidence().field.as_deref(),
            Some("options.interactive_timeout_secs")
        );
        let e = parse_json::<Account>(
            "account",
            r#"{"id":"a","mailbox":"a@b.c","registration":"r","colour":"red"}"#,
        )
        .unwrap_err();
        assert_eq!(e.evidence().field.as_deref(), Some("colour"));
        assert!(parse_json::<Account>("account", "[1,2").is_err());
    }
}
