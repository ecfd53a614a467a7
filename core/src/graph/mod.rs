//! Microsoft Graph as a mail transport (docs/provider-facts.md#microsoft-graph): sending and
//! reading mail where SMTP AUTH, IMAP or POP are switched off in the tenant. Graph needs no such
//! switch; it needs a Graph access token (minted from the account's refresh token, see
//! [`crate::tokens::Resource`]) and the `Mail.Send` / `Mail.ReadWrite` permissions.
//!
//! A [`GraphMailbox`] is one account's mailbox: `/me` for the signed-in user, `/users/{mailbox}`
//! for a shared mailbox or an app-only account. Every call goes through [`GraphMailbox::call`]:
//! a refused token is replaced once (single-flight refresh), throttling (`429`, `503` with
//! `Retry-After`) is waited out a bounded number of times, and Graph's error body becomes a
//! diagnosed [`Error`]. A request that may have reached Graph is never repeated: a send is at
//! most once per call.

pub(crate) mod errors;
mod read;
mod send;

use std::time::Duration;

use reqwest::Method;
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{self, HttpResponse, Request};
use crate::model::{Account, Flow};
use crate::provider;
use crate::tokens::{AccessToken, Resource};

pub use read::{GraphFolder, GraphMessage, ListQuery};
pub use send::GraphSent;

/// Most throttled answers (`429`, `503`) one call waits out before it gives up.
const MAX_THROTTLED: u32 = 4;
/// The longest single wait for a throttled call (a larger `Retry-After` is cut to this).
const MAX_WAIT: Duration = Duration::from_secs(60);
/// The largest response read from Graph (a message's MIME can reach 150 MB).
const MAX_RESPONSE: usize = 160 << 20;

/// One account's mailbox over Microsoft Graph.
pub struct GraphMailbox<'c> {
    client: &'c Client,
    account: Account,
    base: Url,
    /// `me` or `users/{mailbox}` (percent-encoded).
    owner: String,
    token: AccessToken,
    cancel: CancellationToken,
}

/// A request body.
pub(crate) struct Body {
    content_type: &'static str,
    bytes: Vec<u8>,
}

impl Body {
    fn json(v: &serde_json::Value) -> Body {
        Body {
            content_type: "application/json",
            bytes: v.to_string().into_bytes(),
        }
    }
}

/// Whether a request may be sent again after it may have reached Graph.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Reading, or setting a value: repeating it changes nothing.
    Safe,
    /// Sending, creating, moving: it must not happen twice.
    Never,
}

impl Client {
    /// The account's mailbox over Microsoft Graph, with a fresh Graph token. Errors when the
    /// account's registration is not Microsoft's, the account is not connected, or the token
    /// cannot be had (consent for Graph missing: connect again).
    pub async fn graph_mailbox(
        &self,
        id: &str,
        cancel: &CancellationToken,
    ) -> Result<GraphMailbox<'_>> {
        let account = self.account(id)?;
        let reg = self.registration(&account.registration)?;
        let profile = provider::resolve(&reg, None, &self.network().http).await?;
        let graph = profile.graph.ok_or_else(|| {
            Error::invalid(
                "transport",
                format!(
                    "account '{}' cannot use Microsoft Graph: its registration '{}' is not a Microsoft one",
                    crate::error::quote(id),
                    crate::error::quote(&reg.id)
                ),
            )
        })?;
        let token = self.access_token_for(id, Resource::Graph, cancel).await?;
        Ok(GraphMailbox {
            client: self,
            owner: owner(&account),
            account,
            base: graph.base,
            token,
            cancel: cancel.clone(),
        })
    }
}

/// The path segment of `account`'s mailbox: `me` when the signed-in user reads their own
/// mailbox, `users/{mailbox}` for a shared mailbox (a delegate signs in) and app-only access.
fn owner(account: &Account) -> String {
    let own = account.flow != Flow::ClientCredentials
        && account
            .expected_login()
            .eq_ignore_ascii_case(&account.mailbox);
    if own {
        "me".into()
    } else {
        format!("users/{}", segment(&account.mailbox))
    }
}

/// `s` percent-encoded for one path segment.
fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// What a Test found out about Microsoft Graph for an account.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GraphProbe {
    /// `/me` or `/users/{mailbox}`.
    pub mailbox_path: String,
    /// The permissions the Graph token carries (`scp` or `roles`), when the token is a JWT that
    /// tells (personal Microsoft accounts get opaque tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
    /// Whether the token may send (`Mail.Send`), when the permissions are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_send: Option<bool>,
    /// What the Inbox holds ("1204 messages, 3 unread").
    pub detail: String,
}

/// The permissions a JWT access token lists (`scp`, space-separated, or `roles`), without
/// checking its signature (Graph checks it; this only reports what the token asks for).
fn token_permissions(token: &str) -> Option<Vec<String>> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    if let Some(scp) = claims["scp"].as_str() {
        return Some(scp.split_whitespace().map(str::to_string).collect());
    }
    claims["roles"].as_array().map(|r| {
        r.iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    })
}

impl GraphMailbox<'_> {
    /// The account.
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// The Graph API base (`https://graph.microsoft.com/v1.0/`).
    pub fn endpoint(&self) -> String {
        self.base.to_string()
    }

    /// The Graph host name.
    pub fn host(&self) -> String {
        self.base.host_str().unwrap_or_default().to_string()
    }

    /// A Test's look at the mailbox: the token's permissions and the Inbox (which needs the
    /// mailbox to be reachable over Graph and a read permission). Sends nothing.
    pub async fn probe(&mut self) -> Result<GraphProbe> {
        let permissions = token_permissions(self.token.token.expose_secret());
        let url = self.url(
            "mailFolders/inbox",
            &[("$select", "totalItemCount,unreadItemCount".into())],
        )?;
        let v = self.get_json(&url, "reading the Inbox").await?;
        Ok(GraphProbe {
            mailbox_path: format!("/{}", self.owner),
            can_send: permissions
                .as_ref()
                .map(|p| p.iter().any(|s| s.eq_ignore_ascii_case("Mail.Send"))),
            permissions,
            detail: format!(
                "Inbox: {} messages, {} unread",
                v["totalItemCount"].as_u64().unwrap_or(0),
                v["unreadItemCount"].as_u64().unwrap_or(0)
            ),
        })
    }

    /// The URL of `rel` below the mailbox (`messages/{id}`, `sendMail`), with `query` pairs.
    fn url(&self, rel: &str, query: &[(&str, String)]) -> Result<Url> {
        let mut u = self
            .base
            .join(&format!("{}/{rel}", self.owner))
            .map_err(|e| Error::internal(format!("Graph URL for '{rel}': {e}")))?;
        if !query.is_empty() {
            let mut q = u.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        Ok(u)
    }

    /// One Graph call: `what` names it in errors. A `401` gets one retry with a new token, a
    /// throttled answer is waited out up to [`MAX_THROTTLED`] times; any other answer is returned
    /// (callers check the status they expect with [`errors::expect`]). A transport failure after
    /// the request may have reached Graph is repeated only for [`Repeat::Safe`] requests.
    async fn call(
        &mut self,
        method: Method,
        url: &Url,
        body: Option<&Body>,
        repeat: Repeat,
        what: &str,
    ) -> Result<HttpResponse> {
        let mut throttled = 0;
        let mut renewed = false;
        let mut resent_after_break = false;
        loop {
            let req = Request {
                body: body.map(|b| b.bytes.clone()),
                content_type: body.map(|b| b.content_type),
                bearer: Some(&self.token.token),
                max_body: MAX_RESPONSE,
                timeout: Some(self.timeout(body)),
                ..Request::new(method.clone(), url)
            };
            let network = self.client.network();
            let sent = tokio::select! {
                r = network.http.execute(req) => r,
                _ = self.cancel.cancelled() => return Err(Error::cancelled(what)),
            };
            let resp = match sent {
                Ok(r) => r,
                Err(e) if http::never_sent(&e) => return Err(e.context(what)),
                Err(e) if repeat == Repeat::Safe && !resent_after_break && e.is_transient() => {
                    tracing::debug!("Graph call broke ({}); repeating it once", e.message());
                    resent_after_break = true;
                    continue;
                }
                Err(e) => return Err(e.context(what)),
            };
            match resp.status {
                401 if !renewed => {
                    renewed = true;
                    let stale = self.token.token.expose_secret().to_string();
                    let (fresh, _) = self
                        .client
                        .access_token_refresh_for(
                            &self.account,
                            Resource::Graph,
                            Some(&stale),
                            &self.cancel,
                        )
                        .await?;
                    self.token = fresh;
                }
                429 | 503 if throttled < MAX_THROTTLED => {
                    throttled += 1;
                    let wait = resp
                        .retry_after
                        .unwrap_or(Duration::from_secs(1 << throttled))
                        .min(MAX_WAIT);
                    tracing::info!(
                        status = resp.status,
                        "Microsoft Graph is throttling; waiting {} s ({throttled} of {MAX_THROTTLED})",
                        wait.as_secs()
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.cancel.cancelled() => return Err(Error::cancelled(what)),
                    }
                }
                _ => return Ok(resp),
            }
        }
    }

    /// A timeout for a request carrying `body`: the account's mail timeout, plus a second per
    /// 256 KiB of upload.
    fn timeout(&self, body: Option<&Body>) -> Duration {
        let base = Duration::from_secs(self.account.options.mail_timeout_secs.max(30));
        base + Duration::from_secs(body.map_or(0, |b| b.bytes.len() as u64 >> 18))
    }

    /// A call that must answer `expected`, and the JSON it answered (`null` for an empty body).
    async fn call_json(
        &mut self,
        method: Method,
        url: &Url,
        body: Option<&Body>,
        repeat: Repeat,
        expected: &[u16],
        what: &str,
    ) -> Result<serde_json::Value> {
        let resp = self.call(method, url, body, repeat, what).await?;
        errors::expect(url, &resp, expected, what)?;
        if resp.body.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&resp.body).map_err(|e| {
            Error::new(
                ErrorKind::MailServer,
                format!("Microsoft Graph answered {what} with JSON that could not be read: {e}"),
            )
            .with_code("MC-GRAPH-UNAVAILABLE")
            .with_evidence(|ev| ev.endpoint = Some(http::endpoint(url)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(v: serde_json::Value) -> Account {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn own_mailbox_is_me_shared_and_app_only_are_users() {
        let own = account(
            serde_json::json!({"id": "a", "mailbox": "Alice@Example.test", "registration": "r", "login": "alice@example.test"}),
        );
        assert_eq!(owner(&own), "me");
        let shared = account(
            serde_json::json!({"id": "s", "mailbox": "info@example.test", "registration": "r", "login": "alice@example.test"}),
        );
        assert_eq!(owner(&shared), "users/info%40example.test");
        let app = account(
            serde_json::json!({"id": "b", "mailbox": "bot@example.test", "registration": "r", "flow": "client_credentials"}),
        );
        assert_eq!(owner(&app), "users/bot%40example.test");
        assert_eq!(segment("a b/ä"), "a%20b%2F%C3%A4");
    }

    #[test]
    fn permissions_are_read_from_scp_or_roles() {
        use base64::Engine;
        let jwt = |claims: serde_json::Value| {
            let e = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
            format!("{}.{}.sig", e(b"{}"), e(claims.to_string().as_bytes()))
        };
        assert_eq!(
            token_permissions(&jwt(serde_json::json!({"scp": "Mail.ReadWrite Mail.Send"}))),
            Some(vec!["Mail.ReadWrite".to_string(), "Mail.Send".to_string()])
        );
        assert_eq!(
            token_permissions(&jwt(serde_json::json!({"roles": ["Mail.Send"]}))),
            Some(vec!["Mail.Send".to_string()])
        );
        assert_eq!(token_permissions("EwBwA8l6BAAU-opaque"), None);
    }
}
