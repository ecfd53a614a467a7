//! Who calls (the bearer token), which mailbox the request is for, and whether the caller may
//! do what it asks there (scopes, app roles, FullAccess, the application access policy).

use axum::http::HeaderMap;

use super::errors::{self, GraphError};
use super::GRAPH_APP_ID;
use crate::emulator::state::{now, State as St};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub app_only: bool,
    pub client_id: String,
    pub tid: String,
    /// The signed-in user (delegated tokens).
    pub upn: Option<String>,
    /// `scp` (delegated) or `roles` (app-only).
    pub permissions: Vec<String>,
}

impl Principal {
    fn has(&self, any: &[&str]) -> bool {
        self.permissions
            .iter()
            .any(|p| any.iter().any(|a| a.eq_ignore_ascii_case(p)))
    }
}

/// Validate the bearer token: Graph audience, the emulator's signature, lifetime, issuer.
pub(crate) fn authenticate(
    st: &St,
    key: &crate::emulator::jwt::SigningKey,
    base_url: &str,
    headers: &HeaderMap,
) -> Result<Principal, GraphError> {
    let fail = |m: &str| errors::invalid_token(base_url, m);
    let raw = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    let token = raw
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .unwrap_or_default();
    if token.is_empty() {
        return Err(fail("Access token is empty."));
    }
    if token.split('.').count() != 3 {
        return Err(fail(
            "IDX14100: JWT is not well formed, there are no dots (.).",
        ));
    }
    let claims = key
        .verify(token)
        .ok_or_else(|| fail("Access token validation failure. Invalid signature."))?;
    // The audience must be this cloud's Graph (`GraphSettings::cloud`): a global token presented
    // to a national cloud's Graph is refused like an Exchange token presented to Graph.
    let aud = claims["aud"].as_str().unwrap_or_default();
    let resource = st.config.graph.cloud.resource();
    if aud.trim_end_matches('/') != resource && aud != GRAPH_APP_ID {
        return Err(fail("Access token validation failure. Invalid audience."));
    }
    let t = now();
    if claims["exp"].as_i64().is_none_or(|e| e <= t)
        || claims["nbf"].as_i64().is_some_and(|n| n > t + 300)
    {
        return Err(fail("Lifetime validation failed, the token is expired."));
    }
    let tid = claims["tid"].as_str().unwrap_or_default().to_string();
    let iss_ok = claims["iss"].as_str() == Some(format!("https://sts.windows.net/{tid}/").as_str());
    if !iss_ok || st.tenant(&tid).is_none() {
        return Err(fail("Access token validation failure. Invalid issuer."));
    }
    let client_id = claims["appid"].as_str().unwrap_or_default().to_string();
    if claims["idtyp"] == "app" {
        let roles = claims["roles"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        return Ok(Principal {
            app_only: true,
            client_id,
            tid,
            upn: None,
            permissions: roles,
        });
    }
    let oid = claims["oid"].as_str().unwrap_or_default();
    let user = st
        .config
        .users
        .iter()
        .find(|u| st.oid(u) == oid)
        .filter(|u| u.can_sign_in)
        .ok_or_else(|| {
            fail("Access token validation failure. The user does not exist or is disabled.")
        })?;
    Ok(Principal {
        app_only: false,
        client_id,
        tid,
        upn: Some(user.upn.clone()),
        permissions: claims["scp"]
            .as_str()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect(),
    })
}

/// The mailbox a request is for.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Mailbox address (lowercase).
    pub mailbox: String,
    pub upn: String,
    pub display_name: String,
    pub oid: String,
    /// The caller's own mailbox (not a shared one or another user's).
    pub own: bool,
    /// The path prefix Graph's `@odata.context` uses (`users('…')`).
    pub context: String,
}

/// `/me` or `/users/{id}`.
pub(crate) enum Who {
    Me,
    User(String),
}

/// Resolve the user a request names (404 ErrorInvalidUser when unknown or in another tenant).
pub(crate) fn target(st: &St, p: &Principal, who: &Who) -> Result<Target, GraphError> {
    let user = match who {
        Who::Me => {
            let Some(upn) = &p.upn else {
                return Err(errors::bad_request(
                    "/me request is only valid with delegated authentication flow.",
                ));
            };
            st.user(upn).ok_or_else(|| errors::invalid_user(upn))?
        }
        Who::User(id) => st
            .config
            .users
            .iter()
            .find(|u| u.is_address(id) || st.oid(u).eq_ignore_ascii_case(id))
            .filter(|u| u.tenant.eq_ignore_ascii_case(&p.tid))
            .ok_or_else(|| errors::invalid_user(id))?,
    };
    let own = p
        .upn
        .as_deref()
        .is_some_and(|u| user.upn.eq_ignore_ascii_case(u));
    let oid = st.oid(user);
    let context = match who {
        Who::Me => format!("users('{oid}')"),
        Who::User(id) => format!("users('{id}')"),
    };
    Ok(Target {
        mailbox: user.mailbox_address().to_ascii_lowercase(),
        upn: user.upn.clone(),
        display_name: user.display_name.clone(),
        oid,
        own,
        context,
    })
}

/// Whether the caller may open the target's mailbox at all: the app's access policy (RAOP),
/// FullAccess for another user's mailbox, and the mailbox being enabled for REST.
pub(crate) fn open_mailbox(st: &St, p: &Principal, t: &Target) -> Result<(), GraphError> {
    let user = st
        .user(&t.upn)
        .ok_or_else(|| errors::invalid_user(&t.upn))?;
    if p.app_only {
        let allowed = st
            .app(&p.client_id)
            .and_then(|a| a.application_access_policy.as_ref())
            .is_none_or(|list| list.iter().any(|m| user.is_address(m)));
        if !allowed {
            return Err(errors::raop());
        }
    } else if !t.own {
        let me = p.upn.as_deref().and_then(|u| st.user(u));
        let full_access = me.is_some_and(|me| {
            me.full_access.iter().any(|m| user.is_address(m))
                || user.delegates.iter().any(|d| me.is_address(d))
        });
        if !full_access {
            return Err(errors::access_denied());
        }
    }
    if !user.rest_enabled {
        return Err(errors::rest_disabled());
    }
    Ok(())
}

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    Send,
    Read,
    Write,
}

/// The permission check (403 ErrorAccessDenied). Another user's mailbox needs the `.Shared`
/// delegated scopes, as at Microsoft.
pub(crate) fn check(p: &Principal, t: &Target, need: Need) -> Result<(), GraphError> {
    let ok = match (p.app_only, t.own, need) {
        (true, _, Need::Send) => p.has(&["Mail.Send"]),
        (true, _, Need::Read) => p.has(&["Mail.Read", "Mail.ReadWrite"]),
        (true, _, Need::Write) => p.has(&["Mail.ReadWrite"]),
        (false, true, Need::Send) => p.has(&["Mail.Send"]),
        (false, true, Need::Read) => p.has(&["Mail.Read", "Mail.ReadWrite"]),
        (false, true, Need::Write) => p.has(&["Mail.ReadWrite"]),
        (false, false, Need::Send) => p.has(&["Mail.Send.Shared"]),
        (false, false, Need::Read) => p.has(&["Mail.Read.Shared", "Mail.ReadWrite.Shared"]),
        (false, false, Need::Write) => p.has(&["Mail.ReadWrite.Shared"]),
    };
    if ok {
        Ok(())
    } else {
        Err(errors::access_denied())
    }
}

/// The profile check of `GET /me` and `GET /users/{id}`.
pub(crate) fn check_profile(p: &Principal, t: &Target) -> Result<(), GraphError> {
    let ok = if p.app_only {
        p.has(&["User.Read.All", "User.ReadBasic.All", "User.ReadWrite.All"])
    } else if t.own {
        p.has(&[
            "User.Read",
            "User.ReadWrite",
            "User.ReadBasic.All",
            "User.Read.All",
        ])
    } else {
        p.has(&["User.ReadBasic.All", "User.Read.All"])
    };
    if ok {
        Ok(())
    } else {
        Err(super::directory::insufficient_privileges())
    }
}
