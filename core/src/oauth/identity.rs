//! Reading the id_token and checking that the right account signed in.
//!
//! The id_token comes straight from the token endpoint over TLS, so its signature is not checked
//! (OpenID Connect Core §3.1.3.7 allows this for the code flow); its `aud`, `nonce` and `exp` are.

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// Who signed in, from the id_token.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Identity {
    /// `preferred_username` (else `upn`, else `email`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Microsoft tenant id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    /// Microsoft object id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
    /// All names the account has in the token (preferred_username, upn, email), lowercased.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// The subject (`sub`), the provider's stable id of the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<serde_json::Value>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    tid: Option<String>,
    #[serde(default)]
    oid: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    upn: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// Decode the payload of a JWT without verifying it.
pub fn jwt_payload(jwt: &str) -> Result<serde_json::Value> {
    let bad = |why: &str| {
        Error::new(
            ErrorKind::ProviderUnavailable,
            format!("the id_token could not be read: {why}"),
        )
        .with_code("MC-IDP-RESPONSE-UNREADABLE")
    };
    let mut parts = jwt.split('.');
    let (_, Some(payload), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("not a JWT"));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad("payload is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| bad("payload is not JSON"))
}

/// Read and check an id_token: audience must be `client_id`, nonce must match, not expired.
pub fn read_id_token(
    id_token: &SecretString,
    client_id: &str,
    nonce: Option<&str>,
) -> Result<Identity> {
    let v = jwt_payload(id_token.expose_secret())?;
    let c: Claims = serde_json::from_value(v).map_err(|e| {
        Error::new(
            ErrorKind::ProviderUnavailable,
            format!("the id_token has unexpected claims: {e}"),
        )
    })?;
    let aud_ok = match &c.aud {
        Some(serde_json::Value::String(a)) => a == client_id,
        Some(serde_json::Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err(Error::new(
            ErrorKind::ProviderConfiguration,
            "the id_token was issued for another application (aud does not match the client id)",
        ));
    }
    if let Some(expected) = nonce {
        if c.nonce.as_deref() != Some(expected) {
            return Err(Error::new(
                ErrorKind::AuthorizationDenied,
                "the id_token does not belong to this sign-in (nonce mismatch); try again",
            ));
        }
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Some(exp) = c.exp {
        if exp + 300 < now {
            return Err(Error::new(
                ErrorKind::ProviderUnavailable,
                "the id_token has expired; check the computer's clock",
            ));
        }
    }
    Ok(identity_of(c))
}

fn identity_of(c: Claims) -> Identity {
    let mut names = Vec::new();
    for n in [&c.preferred_username, &c.upn, &c.email]
        .into_iter()
        .flatten()
    {
        let l = n.to_lowercase();
        if !names.contains(&l) {
            names.push(l);
        }
    }
    Identity {
        username: c.preferred_username.or(c.upn).or(c.email),
        name: c.name,
        tid: c.tid,
        oid: c.oid,
        names,
        sub: c.sub,
    }
}

/// Add what a userinfo response (OpenID Connect Core §5.3) says to `identity` (from an id_token
/// that had only `sub`, or none). Its `sub` must be the id_token's (§5.3.2), else it describes
/// someone else and is refused.
pub fn merge_userinfo(identity: Option<Identity>, userinfo: serde_json::Value) -> Result<Identity> {
    let c: Claims = serde_json::from_value(userinfo).map_err(|e| {
        Error::new(
            ErrorKind::ProviderUnavailable,
            format!("the userinfo response could not be read: {e}"),
        )
        .with_code("MC-IDP-RESPONSE-UNREADABLE")
    })?;
    let from_userinfo = identity_of(c);
    let Some(mut id) = identity else {
        return Ok(from_userinfo);
    };
    if id.sub.is_some() && from_userinfo.sub != id.sub {
        return Err(Error::new(
            ErrorKind::ProviderConfiguration,
            "the userinfo endpoint described another account than the id_token (its 'sub' differs); nothing was stored",
        ));
    }
    for n in from_userinfo.names {
        if !id.names.contains(&n) {
            id.names.push(n);
        }
    }
    id.username = id.username.or(from_userinfo.username);
    id.name = id.name.or(from_userinfo.name);
    Ok(id)
}

/// Check that `identity` is the expected login (or one of its aliases), case-insensitively.
pub fn check_identity(identity: &Identity, expected: &str, aliases: &[String]) -> Result<()> {
    if identity.names.is_empty() {
        return Ok(());
    }
    let wanted: Vec<String> = std::iter::once(expected)
        .chain(aliases.iter().map(String::as_str))
        .map(str::to_lowercase)
        .collect();
    if identity.names.iter().any(|n| wanted.contains(n)) {
        return Ok(());
    }
    let got = identity.username.clone().unwrap_or_default();
    Err(Error::new(
        ErrorKind::AuthorizationDenied,
        format!(
            "signed in as '{got}', but this account is set up for '{expected}'. Nothing was stored. Connect again and choose '{expected}' in the account picker (use \"Use another account\" if the browser is already signed in as '{got}')"
        ),
    )
    .with_code("MC-WRONG-ACCOUNT"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> SecretString {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        SecretString::from(format!(
            "{}.{}.sig",
            e.encode(b"{\"alg\":\"RS256\"}"),
            e.encode(claims.to_string())
        ))
    }

    #[test]
    fn identity_is_read_and_matched_case_insensitively_with_aliases() {
        let t = jwt(
            serde_json::json!({"aud":"c","nonce":"n","preferred_username":"Alice@Example.test","upn":"alice@corp.test","tid":"t"}),
        );
        let id = read_id_token(&t, "c", Some("n")).unwrap();
        assert_eq!(id.tid.as_deref(), Some("t"));
        assert!(check_identity(&id, "alice@example.TEST", &[]).is_ok());
        assert!(
            check_identity(&id, "alice.smith@example.test", &["ALICE@corp.test".into()]).is_ok()
        );
        let e = check_identity(&id, "bob@example.test", &[]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AuthorizationDenied);
        assert!(
            e.message().contains("Alice@Example.test") && e.message().contains("bob@example.test")
        );
    }

    #[test]
    fn wrong_audience_and_nonce_are_refused() {
        let t = jwt(serde_json::json!({"aud":"other","nonce":"n"}));
        assert!(read_id_token(&t, "c", Some("n")).is_err());
        let t = jwt(serde_json::json!({"aud":"c","nonce":"x"}));
        assert!(read_id_token(&t, "c", Some("n")).is_err());
        assert!(read_id_token(&SecretString::from("garbage".to_string()), "c", None).is_err());
    }
}
