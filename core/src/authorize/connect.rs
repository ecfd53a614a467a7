//! Connecting an account (interactive sign-in or app-only), checking who signed in, storing the
//! grant, and disconnecting (with revocation where the provider offers it).

use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use crate::account_state::{self, now, AccountState, Status};
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::events::EventObserver;
use crate::model::{Account, Flow, ProviderKind, Registration};
use crate::oauth::token::TokenGrant;
use crate::oauth::{identity, ConnectObserver, ConnectStage, Identity};
use crate::provider::{self, Profile};
use crate::store::{StoredState, TokenMeta, TokenRecord, TokenSecrets};

/// Per-call connect options.
#[derive(Default, Clone, Copy)]
pub struct ConnectOptions {
    /// Use this flow instead of the account's.
    pub flow: Option<Flow>,
}

/// Whom a grant is for: the account, its registration and the provider profile it was resolved to.
#[derive(Clone, Copy)]
pub(crate) struct SignIn<'a> {
    pub(crate) account: &'a Account,
    pub(crate) reg: &'a Registration,
    pub(crate) profile: &'a Profile,
}

impl Client {
    /// Authorize the account interactively (or app-only) and store its tokens.
    pub async fn connect(
        &self,
        id: &str,
        opts: ConnectOptions,
        observer: &dyn ConnectObserver,
        cancel: &CancellationToken,
    ) -> Result<Status> {
        let account = self.account(id)?;
        let what = format!("connecting account '{}'", crate::error::quote(id));
        self.connect_inner(&account, opts, observer, cancel)
            .await
            .map_err(|e| e.context(&what))
    }

    async fn connect_inner(
        &self,
        account: &Account,
        opts: ConnectOptions,
        observer: &dyn ConnectObserver,
        cancel: &CancellationToken,
    ) -> Result<Status> {
        if cancel.is_cancelled() {
            return Err(Error::cancelled("the connect"));
        }
        let observer = EventObserver {
            host: observer,
            events: &self.inner.events,
            account_id: &account.id,
        };
        observer.progress(ConnectStage::Starting);
        let flow = opts.flow.unwrap_or(account.flow);
        if flow != Flow::ClientCredentials {
            return self
                .interactive_connect(account, flow, &observer, cancel)
                .await;
        }
        let reg = self.registration(&account.registration)?;
        let profile = provider::resolve(&reg, None, &self.network().http)
            .await?
            .for_account(account)?;
        observer.progress(ConnectStage::RequestingTokens);
        let grant = self.client_credentials(&reg, &profile, cancel).await?;
        let to = SignIn {
            account,
            reg: &reg,
            profile: &profile,
        };
        self.store_grant(to, &grant, None, flow, &observer).await
    }

    /// Check the identity of a grant and store it as the account's tokens. `observer` records
    /// progress events already (an [`EventObserver`]).
    pub(crate) async fn store_grant(
        &self,
        to: SignIn<'_>,
        grant: &TokenGrant,
        nonce: Option<&str>,
        flow: Flow,
        observer: &dyn ConnectObserver,
    ) -> Result<Status> {
        let SignIn { account, reg, .. } = to;
        observer.progress(ConnectStage::CheckingIdentity);
        let identity = self.check_identity(&to, grant, nonce, flow).await?;
        observer.progress(ConnectStage::Storing);
        let tenant = match (reg.provider, &identity) {
            (ProviderKind::Microsoft, Some(Identity { tid: Some(tid), .. })) => Some(tid.clone()),
            _ => None,
        };
        if flow != Flow::ClientCredentials && grant.refresh_token.is_none() {
            tracing::warn!(account = %account.id, "no refresh token was issued (is 'offline_access' among the scopes?); the account must connect again when the access token expires");
        }
        let t = now();
        let rec = TokenRecord {
            account_id: account.id.clone(),
            version: 0,
            meta: TokenMeta {
                state: StoredState::Connected,
                reauth_reason: None,
                access_expires_at: Some(t + grant.expires_in.as_secs() as i64),
                access_issued_at: Some(t),
                scopes: grant.scopes.clone(),
                identity,
                tenant,
                flow,
                connected_at: t,
                refreshed_at: None,
                last_error: None,
                has_refresh_token: grant.refresh_token.is_some(),
                graph_expires_at: None,
                graph_issued_at: None,
                smtp_auth_disabled_at: None,
            },
            secrets: TokenSecrets {
                refresh_token: grant
                    .refresh_token
                    .as_ref()
                    .map(|s| s.expose_secret().to_string()),
                access_token: Some(grant.access_token.expose_secret().to_string()),
                graph_access_token: None,
            },
        };
        let id = account.id.clone();
        let (rec, before) = self
            .blocking(move |s| {
                for _ in 0..10 {
                    let current = match s.load_tokens(&id) {
                        Ok(r) => r,
                        Err(e) => {
                            // A damaged record (truncated by a host's column, altered): the new
                            // tokens replace it, so connecting again repairs the account.
                            tracing::warn!(account = %id, "the stored token record cannot be read ({}); replacing it", e.message());
                            s.delete_tokens(&id)?;
                            None
                        }
                    };
                    let before = account_state::state_of(current.as_ref());
                    let version = current.map(|r| r.version).unwrap_or(0);
                    if s.save_tokens(&rec, version)?.is_some() {
                        return Ok((rec, before));
                    }
                }
                Err(Error::store(
                    "the token record kept changing while storing the new tokens",
                ))
            })
            .await?;
        observer.progress(ConnectStage::Connected);
        self.state_changed(&account.id, before, AccountState::Connected);
        tracing::info!(account = %account.id, flow = flow.as_str(), "connected");
        Ok(account_state::status_of(account, Some(&rec)))
    }

    /// Who signed in: the id_token's names, else (an id_token with only `sub`, or none) the
    /// userinfo endpoint's, checked against the account's login. An identity that cannot be
    /// established refuses the sign-in unless the registration says `"verify_identity": false`.
    async fn check_identity(
        &self,
        to: &SignIn<'_>,
        grant: &TokenGrant,
        nonce: Option<&str>,
        flow: Flow,
    ) -> Result<Option<Identity>> {
        let SignIn {
            account,
            reg,
            profile,
        } = *to;
        if flow == Flow::ClientCredentials {
            return Ok(None);
        }
        let mut identity = match &grant.id_token {
            Some(t) => Some(identity::read_id_token(t, &reg.client_id, nonce)?),
            None => None,
        };
        let mut userinfo_error = None;
        if identity.as_ref().is_none_or(|i| i.names.is_empty()) {
            if let Some(url) = &profile.endpoints.userinfo {
                match self
                    .network()
                    .http
                    .get_json_bearer::<serde_json::Value>(url, &grant.access_token)
                    .await
                {
                    Ok(info) => identity = Some(identity::merge_userinfo(identity, info)?),
                    Err(e) => userinfo_error = Some(e),
                }
            }
        }
        match identity {
            Some(i) if !i.names.is_empty() => {
                identity::check_identity(&i, account.expected_login(), &account.login_aliases)?;
                Ok(Some(i))
            }
            other if !reg.verify_identity => {
                tracing::warn!(account = %account.id, "the signed-in account is not checked ('verify_identity' is false)");
                Ok(other)
            }
            _ => {
                let why = match (&grant.id_token, &userinfo_error, &profile.endpoints.userinfo) {
                    (None, _, None) => "the provider issued no id_token (is 'openid' among the scopes?) and names no userinfo endpoint".to_string(),
                    (_, Some(e), _) => format!("the id_token names no account and the userinfo endpoint failed: {}", e.message()),
                    (_, None, None) => "the id_token names no account (only 'sub') and the provider names no userinfo endpoint".to_string(),
                    (_, None, Some(_)) => "neither the id_token nor the userinfo endpoint names the account (is 'email' among the scopes?)".to_string(),
                };
                Err(Error::new(
                    ErrorKind::AuthorizationDenied,
                    format!(
                        "the account that signed in cannot be identified: {why}. Nothing was stored. Add 'openid' and 'email' to the registration's scopes, or set \"verify_identity\": false in the registration if this provider tells no account name (then any account that signs in is taken for '{}')",
                        account.expected_login()
                    ),
                )
                .with_code("MC-IDENTITY-UNKNOWN"))
            }
        }
    }

    /// Forget the account's tokens (and revoke them where the provider offers revocation). Idempotent.
    ///
    /// `cancel` fired before the tokens are deleted ends the call with a cancellation and changes
    /// nothing; fired during the revocation request it stops waiting for the provider (revocation
    /// is best effort: the account is disconnected either way, and the call succeeds).
    pub async fn disconnect(&self, id: &str, cancel: &CancellationToken) -> Result<()> {
        let account = self.account(id)?;
        if cancel.is_cancelled() {
            return Err(Error::cancelled(&format!("disconnecting account '{id}'")));
        }
        let aid = id.to_string();
        let rec = self
            .blocking(move |s| s.load_tokens(&aid))
            .await
            .unwrap_or(None);
        let aid = id.to_string();
        self.blocking(move |s| s.delete_tokens(&aid)).await?;
        self.drop_idle_smtp(id);
        self.state_changed(
            id,
            account_state::state_of(rec.as_ref()),
            AccountState::NotConnected,
        );
        if let (Some(rec), Ok(reg)) = (rec, self.registration(&account.registration)) {
            if let Some(rt) = rec.secrets.refresh_token.as_deref() {
                let revoke = self.revoke(id, rt, &reg);
                tokio::select! {
                    () = revoke => {}
                    _ = cancel.cancelled() => {
                        tracing::warn!(account = id, "revocation not awaited: the call was cancelled");
                    }
                }
            }
        }
        tracing::info!(account = id, "disconnected");
        Ok(())
    }

    /// Revoke a refresh token where the provider offers revocation; failures are logged only.
    async fn revoke(&self, id: &str, rt: &str, reg: &Registration) {
        if let Ok(profile) = provider::resolve(reg, None, &self.network().http).await {
            if let Some(url) = &profile.endpoints.revocation {
                let form = [
                    ("token", rt),
                    ("token_type_hint", "refresh_token"),
                    ("client_id", reg.client_id.as_str()),
                ];
                match self.network().http.post_form(url, &form, None).await {
                    Ok(r) if r.status == 200 => {
                        tracing::info!(account = id, "refresh token revoked")
                    }
                    Ok(r) => tracing::warn!(
                        account = id,
                        status = r.status,
                        "the provider did not confirm the revocation"
                    ),
                    Err(e) => {
                        tracing::warn!(account = id, "revocation failed: {}", e.message())
                    }
                }
            }
        }
    }
}
