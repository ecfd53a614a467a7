//! Host-driven sign-in: `begin` an authorization, show it however the host likes, then `complete`
//! it with the redirect the host captured, or `poll`/`wait` for it.
//!
//! Two shapes:
//! - **Authorization code + PKCE** with either a loopback redirect (`http://localhost`: mailconnect
//!   listens, [`Client::wait_authorization`] returns when the browser comes back; a host that
//!   intercepts the redirect itself may still [`Client::complete_authorization`] with the URL) or a
//!   registered non-loopback redirect such as `https://login.microsoftonline.com/common/oauth2/nativeclient`
//!   that the host's embedded web view intercepts and hands to `complete`.
//! - **Device code**: `begin` returns the user code, verification URI, message and expiry; the host
//!   shows them and calls [`Client::poll_authorization`] (one check, never blocks longer than one
//!   request) or [`Client::wait_authorization`].
//!
//! A pending authorization is single-use, expires (browser: the account's interactive timeout;
//! device: the code's expiry), and is checked strictly: the redirect must go to the redirect URI
//! the authorization was started with and carry its `state`; error redirects become the provider's
//! error with its diagnostic. [`Client::connect`] is built on the same functions.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use url::Url;
use zeroize::Zeroizing;

mod connect;

pub use connect::ConnectOptions;
use connect::SignIn;

use crate::account_state::Status;
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::events::EventObserver;
use crate::model::{self, Account, Flow, Registration};
use crate::oauth::browser::{self, AuthorizationRequest, AuthorizeParams, Loopback};
use crate::oauth::device::{self, DeviceAuthorization, Step};
use crate::oauth::errors::{self, OAuthErrorResponse};
use crate::oauth::token::TokenGrant;
use crate::oauth::{ClientAuth, ConnectObserver, ConnectStage, DefaultObserver};
use crate::provider::{self, Profile};

/// Options of [`Client::begin_authorization`] (JSON: `{"flow": "browser"|"device", "redirect_uri": URI}`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeginOptions {
    /// `browser` (authorization code) or `device`; default: the account's flow.
    #[serde(default)]
    pub flow: Option<Flow>,
    /// The redirect URI for the browser flow; default: the registration's, else `http://localhost`.
    /// Loopback URIs (`http://localhost[:port][/path]`, `http://127.0.0.1...`) make mailconnect
    /// listen; any other registered URI must be intercepted by the host and passed to `complete`.
    #[serde(default)]
    pub redirect_uri: Option<String>,
}

impl BeginOptions {
    /// Parse the options JSON (empty text = defaults).
    pub fn from_json(json: &str) -> Result<BeginOptions> {
        if json.trim().is_empty() {
            return Ok(BeginOptions::default());
        }
        model::parse_json("authorization options", json)
    }
}

/// A started authorization: what the host shows (the `mc_authorization_begin` JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Authorization {
    /// Pass to complete / poll / wait / abort.
    pub handle: String,
    /// The account.
    pub account_id: String,
    /// `browser` or `device`.
    pub flow: Flow,
    /// Browser flow: the sign-in page to show.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Browser flow: where the provider sends the browser back (with the port for loopback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// Browser flow: whether mailconnect listens for the redirect (call wait) or the host must
    /// capture it (call complete).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loopback: Option<bool>,
    /// Device flow: the code the user types.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_code: Option<String>,
    /// Device flow: where the user types it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_uri: Option<String>,
    /// Device flow: the URI with the code filled in, when the provider offers one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_uri_complete: Option<String>,
    /// Device flow: the provider's ready sentence for the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Device flow: seconds between polls the provider asks for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<u64>,
    /// When this authorization stops being accepted (RFC 3339).
    pub expires_at: String,
    /// Seconds until then.
    pub expires_in_secs: u64,
}

/// The answer of [`Client::poll_authorization`].
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PollResult {
    /// Not finished: poll again after `retry_after_ms`.
    Pending {
        /// Milliseconds to wait before the next poll.
        retry_after_ms: u64,
    },
    /// Finished: the account is connected.
    Connected {
        /// The account's status.
        status: Box<Status>,
    },
}

enum Kind {
    Code {
        req: AuthorizationRequest,
        loopback: Option<Arc<Loopback>>,
    },
    Device {
        da: DeviceAuthorization,
        next_poll: Instant,
    },
}

struct Pending {
    account: Account,
    reg: Registration,
    profile: Profile,
    kind: Kind,
    expires: Instant,
}

impl Pending {
    fn sign_in(&self) -> SignIn<'_> {
        SignIn {
            account: &self.account,
            reg: &self.reg,
            profile: &self.profile,
        }
    }
}

enum Slot {
    Idle(Box<Pending>),
    Busy,
}

/// The pending authorizations of a client.
#[derive(Default)]
pub(crate) struct PendingTable {
    slots: std::sync::Mutex<HashMap<String, Slot>>,
    /// Recently finished handles and how they finished, to explain a reused handle.
    finished: std::sync::Mutex<VecDeque<(String, &'static str)>>,
}

const FINISHED_KEPT: usize = 256;

fn not_pending(handle: &str, how: Option<&str>) -> Error {
    let why = match how {
        Some(h) => format!("it was already {h}"),
        None => {
            "it was never begun by this client, or it was completed, aborted or expired".to_string()
        }
    };
    Error::new(
        ErrorKind::State,
        format!("no pending sign-in '{handle}': {why}; begin a new authorization"),
    )
    .with_code(NOT_PENDING)
}

/// The code of a sign-in handle that is not (or no longer) waiting to be completed.
const NOT_PENDING: &str = "MC-SIGN-IN-NOT-PENDING";
/// The code of a redirect whose `state` is not this sign-in's.
const STATE_MISMATCH: &str = "MC-SIGN-IN-STATE-MISMATCH";

fn wrong_response(msg: String) -> Error {
    Error::new(
        ErrorKind::State,
        format!("the response does not belong to this sign-in: {msg}"),
    )
    .with_code("MC-SIGN-IN-WRONG-RESPONSE")
}

impl PendingTable {
    fn insert(&self, handle: String, p: Pending) -> Result<()> {
        let mut slots = self
            .slots
            .lock()
            .map_err(|_| Error::internal("sign-in table poisoned"))?;
        let now = Instant::now();
        let expired: Vec<String> = slots
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Idle(p) if p.expires <= now))
            .map(|(h, _)| h.clone())
            .collect();
        for h in expired {
            slots.remove(&h);
            self.note(h, "expired");
        }
        slots.insert(handle, Slot::Idle(Box::new(p)));
        Ok(())
    }

    fn take(&self, handle: &str) -> Result<Box<Pending>> {
        let mut slots = self
            .slots
            .lock()
            .map_err(|_| Error::internal("sign-in table poisoned"))?;
        match slots.get_mut(handle) {
            None => {
                drop(slots);
                let how = self.finished.lock().ok().and_then(|f| {
                    f.iter()
                        .rev()
                        .find(|(h, _)| h == handle)
                        .map(|(_, how)| *how)
                });
                Err(not_pending(handle, how))
            }
            Some(Slot::Busy) => Err(Error::new(
                ErrorKind::State,
                format!("sign-in '{handle}' is being finished by another call right now"),
            )
            .with_code(NOT_PENDING)),
            Some(slot) => {
                let Slot::Idle(p) = std::mem::replace(slot, Slot::Busy) else {
                    return Err(Error::internal("sign-in slot changed under its lock"));
                };
                if p.expires <= Instant::now() {
                    slots.remove(handle);
                    drop(slots);
                    self.note(handle.to_string(), "expired");
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!("the sign-in '{handle}' expired before it was completed; begin a new authorization"),
                    )
                    .with_code(NOT_PENDING));
                }
                Ok(p)
            }
        }
    }

    fn put_back(&self, handle: &str, p: Box<Pending>) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.insert(handle.to_string(), Slot::Idle(p));
        }
    }

    fn finish(&self, handle: &str, how: &'static str) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.remove(handle);
        }
        self.note(handle.to_string(), how);
    }

    fn note(&self, handle: String, how: &'static str) {
        if let Ok(mut f) = self.finished.lock() {
            if f.len() >= FINISHED_KEPT {
                f.pop_front();
            }
            f.push_back((handle, how));
        }
    }
}

fn rfc3339_in(d: Duration) -> String {
    (time::OffsetDateTime::now_utc() + d)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn is_loopback(uri: &str) -> bool {
    Url::parse(uri).is_ok_and(|u| {
        u.scheme() == "http" && matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
    })
}

/// The parameters of a captured redirect: from a full URL (query or fragment), a bare query, or a
/// bare code. Checks the URL goes to `redirect_uri` (scheme, host, port and path).
/// Parameter values are wiped when dropped (the code is among them).
type Params = HashMap<String, Zeroizing<String>>;

fn redirect_params(input: &str, redirect_uri: &str) -> Result<Option<Params>> {
    let input = input.trim();
    if input.is_empty() {
        return Err(Error::invalid(
            "redirect",
            "the captured redirect is empty; pass the full URL the web view was sent to",
        ));
    }
    let query: Zeroizing<String> = Zeroizing::new(if input.contains("://") {
        let got = Url::parse(input).map_err(|e| {
            Error::invalid(
                "redirect",
                format!("the captured redirect is not a URL: {e}"),
            )
        })?;
        let want = Url::parse(redirect_uri)
            .map_err(|e| Error::internal(format!("stored redirect URI: {e}")))?;
        let same = got.scheme() == want.scheme()
            && got.host_str().map(str::to_ascii_lowercase)
                == want.host_str().map(str::to_ascii_lowercase)
            && got.port_or_known_default() == want.port_or_known_default()
            && got.path().trim_end_matches('/') == want.path().trim_end_matches('/');
        if !same {
            let mut shown = got.clone();
            shown.set_query(None);
            shown.set_fragment(None);
            return Err(wrong_response(format!(
                "it went to '{shown}', but this sign-in was started with the redirect URI '{redirect_uri}'"
            )));
        }
        let mut q = got.query().unwrap_or("").to_string();
        if let Some(f) = got.fragment() {
            if !f.is_empty() {
                if !q.is_empty() {
                    q.push('&');
                }
                q.push_str(f);
            }
        }
        q
    } else if input.contains('=') {
        input.trim_start_matches(['?', '#']).to_string()
    } else if input.chars().any(|c| c.is_whitespace() || c == '&') {
        return Err(Error::invalid(
            "redirect",
            "the captured redirect is neither a URL, a query nor an authorization code",
        ));
    } else {
        return Ok(None);
    });
    Ok(Some(
        url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), Zeroizing::new(v.into_owned())))
            .collect(),
    ))
}

/// The code of a captured redirect after checking `state` and error parameters.
fn code_from_redirect(input: &str, redirect_uri: &str, state: &str) -> Result<SecretString> {
    let Some(params) = redirect_params(input, redirect_uri)? else {
        return Ok(SecretString::from(input.trim().to_string()));
    };
    if params.contains_key("device_code") || params.contains_key("user_code") {
        return Err(wrong_response(
            "it carries a device code; device-code sign-ins finish with poll or wait".into(),
        ));
    }
    match params.get("state") {
        Some(s) if s.as_str() == state => {}
        Some(_) => {
            return Err(Error::new(
                ErrorKind::State,
                "state mismatch: the redirect belongs to another (older) sign-in; use the page of the newest sign-in",
            )
            .with_code(STATE_MISMATCH))
        }
        None if params.contains_key("code") => {
            return Err(Error::new(
                ErrorKind::State,
                "state mismatch: the redirect carries no 'state'; pass the full URL the web view was sent to",
            )
            .with_code(STATE_MISMATCH))
        }
        None => {}
    }
    if let Some(error) = params.get("error") {
        let e = OAuthErrorResponse {
            error: error.to_string(),
            error_description: params.get("error_description").map(|v| v.to_string()),
            error_uri: params.get("error_uri").map(|v| v.to_string()),
            ..Default::default()
        };
        return Err(errors::to_error("signing in", e, None));
    }
    match params.get("code") {
        Some(c) if !c.is_empty() => Ok(SecretString::from(c.to_string())),
        _ => Err(wrong_response(
            "it has neither 'code' nor 'error'; pass the URL the web view was finally sent to"
                .into(),
        )),
    }
}

impl Client {
    /// Begin an authorization for an account: the URL to show (browser flow) or the device code
    /// (device flow). Nothing is stored until it is completed.
    /// `cancel` ends the call (discovery, the device-code request) with a cancellation; nothing
    /// is pending afterwards.
    pub async fn begin_authorization(
        &self,
        account_id: &str,
        opts: &BeginOptions,
        cancel: &CancellationToken,
    ) -> Result<Authorization> {
        let account = self.account(account_id)?;
        let what = format!("beginning a sign-in for account '{account_id}'");
        self.observer(&DefaultObserver, account_id)
            .progress(ConnectStage::Starting);
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(Error::cancelled(&what)),
            r = self.begin_inner(account, opts) => r.map_err(|e| e.context(&what)),
        }
    }

    async fn begin_inner(&self, account: Account, opts: &BeginOptions) -> Result<Authorization> {
        let reg = self.registration(&account.registration)?;
        let profile = provider::resolve(&reg, None, &self.network().http)
            .await?
            .for_account(&account)?;
        let flow = opts.flow.unwrap_or(account.flow);
        let handle = format!("auth-{}", uuid::Uuid::new_v4().simple());
        let timeout = Duration::from_secs(account.options.interactive_timeout_secs);
        let mut out = Authorization {
            handle: handle.clone(),
            account_id: account.id.clone(),
            flow,
            url: None,
            redirect_uri: None,
            loopback: None,
            user_code: None,
            verification_uri: None,
            verification_uri_complete: None,
            message: None,
            interval_secs: None,
            expires_at: String::new(),
            expires_in_secs: 0,
        };
        let (kind, lifetime) = match flow {
            Flow::Browser => {
                let registered = opts
                    .redirect_uri
                    .clone()
                    .or_else(|| reg.redirect_uri.clone())
                    .unwrap_or_else(|| "http://localhost".to_string());
                let loopback = if is_loopback(&registered) {
                    Some(Arc::new(Loopback::bind(&registered).await?))
                } else {
                    let u = Url::parse(&registered).map_err(|e| {
                        Error::invalid("redirect_uri", format!("'redirect_uri' is not a URL: {e}"))
                    })?;
                    if u.scheme() != "https" && !u.scheme().contains('.') && u.scheme() != "msal" {
                        tracing::debug!("non-loopback redirect URI with scheme '{}'", u.scheme());
                    }
                    None
                };
                let redirect_uri = loopback
                    .as_ref()
                    .map(|l| l.redirect_uri().to_string())
                    .unwrap_or(registered);
                let req = browser::authorization_request(
                    &profile,
                    &AuthorizeParams {
                        client_id: &reg.client_id,
                        redirect_uri: &redirect_uri,
                        login_hint: Some(account.expected_login()),
                        select_account: account.options.select_account,
                    },
                )?;
                out.url = Some(req.url.to_string());
                out.redirect_uri = Some(redirect_uri);
                out.loopback = Some(loopback.is_some());
                (Kind::Code { req, loopback }, timeout)
            }
            Flow::DeviceCode => {
                let url = profile.endpoints.device.clone().ok_or_else(|| {
                    Error::new(
                        ErrorKind::ProviderConfiguration,
                        "this provider has no device authorization endpoint; use the browser flow",
                    )
                })?;
                let scope = profile.sign_in_scope_string();
                let public = ClientAuth {
                    client_id: &reg.client_id,
                    secret: None,
                };
                let da = device::start(&self.network().http, &url, public, &scope).await?;
                out.user_code = Some(da.info.user_code.clone());
                out.verification_uri = Some(da.info.verification_uri.clone());
                out.verification_uri_complete = da.info.verification_uri_complete.clone();
                out.message = Some(da.info.message.clone());
                out.interval_secs = Some(da.interval().as_secs());
                let life = da.expires_at().saturating_duration_since(Instant::now());
                let next_poll = Instant::now() + da.interval();
                (Kind::Device { da, next_poll }, life.min(timeout))
            }
            Flow::ClientCredentials => {
                return Err(Error::invalid(
                    "flow",
                    "app-only (client credentials) accounts have no sign-in to show; use connect",
                ))
            }
        };
        out.expires_at = rfc3339_in(lifetime);
        out.expires_in_secs = lifetime.as_secs();
        self.feature::<PendingTable>().insert(
            handle,
            Pending {
                account,
                reg,
                profile,
                kind,
                expires: Instant::now() + lifetime,
            },
        )?;
        tracing::info!(account = %out.account_id, flow = flow.as_str(), "sign-in begun");
        Ok(out)
    }

    /// Complete a browser-flow authorization with the redirect the host captured: the full URL
    /// (preferred: `state` is checked), its query, or the bare code.
    pub async fn complete_authorization(
        &self,
        handle: &str,
        redirect: &str,
        cancel: &CancellationToken,
    ) -> Result<Status> {
        let p = self.feature::<PendingTable>().take(handle)?;
        let what = format!("completing the sign-in of account '{}'", p.account.id);
        let code = match &p.kind {
            Kind::Code { req, .. } => {
                code_from_redirect(redirect, &req.redirect_uri, req.state.secret())
            }
            Kind::Device { .. } => Err(wrong_response(format!(
                "'{handle}' is a device-code sign-in; it finishes with poll or wait, not with a redirect"
            ))),
        };
        let code = match code {
            Ok(c) => c,
            Err(e) if matches!(e.kind(), ErrorKind::InvalidArgument | ErrorKind::State) => {
                // Not this sign-in's answer (another redirect, a stale tab, a typo): keep it pending.
                self.feature::<PendingTable>().put_back(handle, p);
                return Err(e.context(&what));
            }
            Err(e) => {
                self.feature::<PendingTable>().finish(handle, "failed");
                return Err(e.context(&what));
            }
        };
        let result = self.finish_code(&p, &code, &DefaultObserver, cancel).await;
        self.feature::<PendingTable>().finish(
            handle,
            if result.is_ok() {
                "completed"
            } else {
                "failed"
            },
        );
        result.map_err(|e| e.context(&what))
    }

    /// Check a device-code authorization once (never waits longer than one request; no request is
    /// made before the provider's interval has passed).
    pub async fn poll_authorization(
        &self,
        handle: &str,
        cancel: &CancellationToken,
    ) -> Result<PollResult> {
        let mut p = self.feature::<PendingTable>().take(handle)?;
        let what = format!("checking the sign-in of account '{}'", p.account.id);
        let now = Instant::now();
        let step = match &mut p.kind {
            Kind::Device { next_poll, .. } if *next_poll > now => {
                let ms = (*next_poll - now).as_millis() as u64;
                self.feature::<PendingTable>().put_back(handle, p);
                return Ok(PollResult::Pending {
                    retry_after_ms: ms.max(1),
                });
            }
            Kind::Device { da, next_poll } => {
                let r = da
                    .poll_once(
                        self.token_endpoint(&p.reg, &p.profile),
                        &p.profile.delegated_scopes,
                        cancel,
                    )
                    .await;
                *next_poll = Instant::now() + da.interval();
                r
            }
            Kind::Code {
                loopback: Some(_), ..
            } => {
                self.feature::<PendingTable>().put_back(handle, p);
                return Err(wrong_response(format!("'{handle}' is a browser sign-in; mailconnect listens for its redirect: call wait, or complete with the URL you captured")).context(&what));
            }
            Kind::Code { loopback: None, .. } => {
                self.feature::<PendingTable>().put_back(handle, p);
                return Err(wrong_response(format!("'{handle}' is a browser sign-in with a redirect URI mailconnect cannot listen on: pass the URL your web view captured to complete")).context(&what));
            }
        };
        match step {
            Ok(Step::Pending | Step::SlowDown) => {
                let ms = match &p.kind {
                    Kind::Device { da, .. } => da.interval().as_millis() as u64,
                    Kind::Code { .. } => 1000,
                };
                self.feature::<PendingTable>().put_back(handle, p);
                Ok(PollResult::Pending { retry_after_ms: ms })
            }
            Ok(Step::Granted(g)) => {
                let r = self
                    .store_grant(
                        p.sign_in(),
                        &g,
                        None,
                        Flow::DeviceCode,
                        &self.observer(&DefaultObserver, &p.account.id),
                    )
                    .await;
                self.feature::<PendingTable>()
                    .finish(handle, if r.is_ok() { "completed" } else { "failed" });
                r.map(|status| PollResult::Connected {
                    status: Box::new(status),
                })
                .map_err(|e| e.context(&what))
            }
            Err(e) if e.kind() == ErrorKind::Cancelled => {
                self.feature::<PendingTable>().put_back(handle, p);
                Err(e.context(&what))
            }
            Err(e) => {
                self.feature::<PendingTable>().finish(handle, "failed");
                Err(e.context(&what))
            }
        }
    }

    /// Wait for an authorization to finish: the loopback redirect of a browser sign-in, or the
    /// user entering a device code. Ends with the account connected, the provider's error, the
    /// authorization's expiry, or `cancel` (then the authorization stays pending).
    pub async fn wait_authorization(
        &self,
        handle: &str,
        cancel: &CancellationToken,
    ) -> Result<Status> {
        self.wait_with(handle, None, cancel).await
    }

    /// An observer that records progress events for `account_id` and forwards to `host`.
    fn observer<'a>(
        &'a self,
        host: &'a dyn ConnectObserver,
        account_id: &'a str,
    ) -> EventObserver<'a> {
        EventObserver {
            host,
            events: &self.inner.events,
            account_id,
        }
    }

    /// Wait for `handle`; `observer` is an event-recording observer from connect, or `None` for a
    /// host-driven wait (progress then goes to the event queue only).
    pub(crate) async fn wait_with(
        &self,
        handle: &str,
        observer: Option<&dyn ConnectObserver>,
        cancel: &CancellationToken,
    ) -> Result<Status> {
        let mut p = self.feature::<PendingTable>().take(handle)?;
        let account_id = p.account.id.clone();
        let own = self.observer(&DefaultObserver, &account_id);
        let observer: &dyn ConnectObserver = match observer {
            Some(o) => o,
            None => &own,
        };
        let what = format!("waiting for the sign-in of account '{}'", p.account.id);
        let left = p.expires.saturating_duration_since(Instant::now());
        let grant: Result<TokenGrant> = match &mut p.kind {
            Kind::Code {
                req,
                loopback: Some(lb),
            } => {
                observer.progress(ConnectStage::WaitingForBrowser);
                let (lb, state) = (lb.clone(), req.state.secret().clone());
                match lb.wait(&state, self.inner.language, left, cancel).await {
                    Ok((code, answer)) => {
                        let r = self.finish_code(&p, &code, observer, cancel).await;
                        // The browser learns how it ended (a wrong account is a failure there too).
                        answer.finish(r.as_ref().map(|_| ())).await;
                        self.feature::<PendingTable>()
                            .finish(handle, if r.is_ok() { "completed" } else { "failed" });
                        return r.map_err(|e| e.context(&what));
                    }
                    Err(e) => Err(e),
                }
            }
            Kind::Code { loopback: None, .. } => {
                self.feature::<PendingTable>().put_back(handle, p);
                return Err(wrong_response(format!("'{handle}' uses a redirect URI mailconnect cannot listen on: pass the URL your web view captured to complete")).context(&what));
            }
            Kind::Device { da, .. } => {
                device::poll(
                    self.token_endpoint(&p.reg, &p.profile),
                    &p.profile.delegated_scopes,
                    da,
                    observer,
                    p.expires,
                    Duration::from_secs(p.account.options.interactive_timeout_secs),
                    cancel,
                )
                .await
            }
        };
        match grant {
            Ok(g) => {
                let r = self
                    .store_grant(p.sign_in(), &g, None, Flow::DeviceCode, observer)
                    .await;
                self.feature::<PendingTable>()
                    .finish(handle, if r.is_ok() { "completed" } else { "failed" });
                r.map_err(|e| e.context(&what))
            }
            Err(e) if e.kind() == ErrorKind::Cancelled => {
                self.feature::<PendingTable>().put_back(handle, p);
                Err(e.context(&what))
            }
            Err(e) => {
                self.feature::<PendingTable>().finish(
                    handle,
                    if e.kind() == ErrorKind::Timeout {
                        "expired"
                    } else {
                        "failed"
                    },
                );
                Err(e.context(&what))
            }
        }
    }

    /// Abandon a pending authorization (closes the loopback listener). Unknown handles are an error.
    pub fn abort_authorization(&self, handle: &str) -> Result<()> {
        let _p = self.feature::<PendingTable>().take(handle)?;
        self.feature::<PendingTable>().finish(handle, "aborted");
        Ok(())
    }

    /// Begin, show (host callback or system browser / logged device code) and wait: the one-call connect.
    pub(crate) async fn interactive_connect(
        &self,
        account: &Account,
        flow: Flow,
        observer: &dyn ConnectObserver,
        cancel: &CancellationToken,
    ) -> Result<Status> {
        let opts = BeginOptions {
            flow: Some(flow),
            redirect_uri: None,
        };
        let a = self.begin_inner(account.clone(), &opts).await?;
        let handle = a.handle.clone();
        let shown = async {
            match flow {
                Flow::DeviceCode => {
                    observer.device_code(&crate::oauth::DeviceCodeInfo {
                        user_code: a.user_code.clone().unwrap_or_default(),
                        verification_uri: a.verification_uri.clone().unwrap_or_default(),
                        verification_uri_complete: a.verification_uri_complete.clone(),
                        message: a.message.clone().unwrap_or_default(),
                        expires_in: a.expires_in_secs,
                    });
                    Ok(())
                }
                _ => {
                    observer.progress(ConnectStage::OpeningBrowser);
                    browser::open(observer, a.url.as_deref().unwrap_or_default()).await
                }
            }
        }
        .await;
        if let Err(e) = shown {
            let _ = self.abort_authorization(&handle);
            return Err(e);
        }
        let r = self.wait_with(&handle, Some(observer), cancel).await;
        if matches!(&r, Err(e) if e.kind() == ErrorKind::Cancelled) {
            let _ = self.abort_authorization(&handle);
        }
        r
    }

    async fn finish_code(
        &self,
        p: &Pending,
        code: &SecretString,
        observer: &dyn ConnectObserver,
        cancel: &CancellationToken,
    ) -> Result<Status> {
        let Kind::Code { req, .. } = &p.kind else {
            return Err(Error::internal("finish_code on a device sign-in"));
        };
        observer.progress(ConnectStage::RequestingTokens);
        let g = browser::redeem_code(
            self.token_endpoint(&p.reg, &p.profile),
            req,
            code,
            &p.profile,
            "redeeming the authorization code",
            cancel,
        )
        .await?;
        self.store_grant(
            p.sign_in(),
            &g,
            Some(req.nonce.secret()),
            Flow::Browser,
            observer,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn is_wrong_response(e: &Error) -> bool {
        e.message().contains("does not belong to this sign-in")
    }

    const R: &str = "https://login.microsoftonline.com/common/oauth2/nativeclient";

    #[test]
    fn captured_redirects() {
        let ok = code_from_redirect(&format!("{R}?code=abc&state=s1&session_state=x"), R, "s1");
        assert_eq!(ok.unwrap().expose_secret(), "abc");
        // Fragment response mode and a trailing slash.
        let ok = code_from_redirect(&format!("{R}/#code=abc&state=s1"), R, "s1");
        assert_eq!(ok.unwrap().expose_secret(), "abc");
        // Bare query and bare code.
        assert_eq!(
            code_from_redirect("?code=q&state=s1", R, "s1")
                .unwrap()
                .expose_secret(),
            "q"
        );
        assert_eq!(
            code_from_redirect(" M.C5_BAY.2.U.abc ", R, "s1")
                .unwrap()
                .expose_secret(),
            "M.C5_BAY.2.U.abc"
        );
        let e = code_from_redirect(&format!("{R}?code=abc&state=old"), R, "s1").unwrap_err();
        assert!(e.message().contains("state mismatch"), "{}", e.message());
        let e = code_from_redirect(&format!("{R}?code=abc"), R, "s1").unwrap_err();
        assert!(e.message().contains("state mismatch"));
        let e =
            code_from_redirect("https://evil.example/cb?code=abc&state=s1", R, "s1").unwrap_err();
        assert!(is_wrong_response(&e), "{}", e.message());
        let e = code_from_redirect(
            "http://localhost:5555/?code=abc&state=s1",
            "http://localhost:5556/",
            "s1",
        )
        .unwrap_err();
        assert!(is_wrong_response(&e));
        let e = code_from_redirect(
            &format!(
                "{R}?error=access_denied&error_description=AADSTS65004%3A+User+declined&state=s1"
            ),
            R,
            "s1",
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AuthorizationDenied, "{}", e.message());
        let e = code_from_redirect("not a code", R, "s1").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let e = code_from_redirect("", R, "s1").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("http://localhost"));
        assert!(is_loopback("http://127.0.0.1:8400/cb"));
        assert!(!is_loopback(R));
        assert!(!is_loopback("https://localhost"));
        assert!(!is_loopback("not a url"));
    }
}
