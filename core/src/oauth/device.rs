//! Device authorization grant (RFC 8628; Microsoft: docs/provider-facts.md#device-code).

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::errors::{self, OAuthErrorResponse};
use super::token::{self, Outcome, TokenEndpoint, TokenGrant};
use super::{ClientAuth, ConnectObserver, ConnectStage, DeviceCodeInfo};
use crate::error::{Error, ErrorKind, Result};
use crate::http::{self, HttpClient};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

#[derive(Deserialize)]
struct RawDeviceAuthorization {
    device_code: SecretString,
    user_code: String,
    #[serde(default)]
    verification_uri: Option<String>,
    /// Google's older name.
    #[serde(default)]
    verification_url: Option<String>,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    expires_in: u64,
    #[serde(default)]
    interval: Option<u64>,
    #[serde(default)]
    message: Option<String>,
}

/// A started device authorization.
pub struct DeviceAuthorization {
    device_code: SecretString,
    /// What to show the user.
    pub info: DeviceCodeInfo,
    interval: Duration,
    started: Instant,
    /// The provider's last failure while polling, if the last poll failed (429, 5xx, network).
    last_failure: Option<Error>,
}

/// Start a device authorization at `url` for `scope`.
pub async fn start(
    http: &HttpClient,
    url: &Url,
    auth: ClientAuth<'_>,
    scope: &str,
) -> Result<DeviceAuthorization> {
    let what = "starting the device-code sign-in";
    let resp = http
        .post_form(
            url,
            &[("client_id", auth.client_id), ("scope", scope)],
            None,
        )
        .await
        .map_err(|e| e.context(what))?;
    if resp.status != 200 {
        if let Ok(e) = serde_json::from_slice::<OAuthErrorResponse>(&resp.body) {
            if !e.error.is_empty() {
                return Err(errors::to_error(what, e, Some(resp.status)));
            }
        }
        return Err(http::unexpected(url, &resp).context(what));
    }
    let raw: RawDeviceAuthorization = serde_json::from_slice(&resp.body).map_err(|e| {
        Error::new(
            ErrorKind::ProviderUnavailable,
            format!("{what}: the device authorization response could not be read: {e}"),
        )
        .with_code("MC-IDP-RESPONSE-UNREADABLE")
    })?;
    let uri = raw
        .verification_uri
        .or(raw.verification_url)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::ProviderUnavailable,
                format!("{what}: the response has no verification_uri"),
            )
        })?;
    let message = raw.message.unwrap_or_else(|| {
        format!("To sign in, use a web browser to open the page {uri} and enter the code {} to authenticate.", raw.user_code)
    });
    Ok(DeviceAuthorization {
        device_code: raw.device_code,
        info: DeviceCodeInfo {
            user_code: raw.user_code,
            verification_uri: uri,
            verification_uri_complete: raw.verification_uri_complete,
            message,
            expires_in: raw.expires_in,
        },
        interval: Duration::from_secs(raw.interval.unwrap_or(5).clamp(1, 60)),
        started: Instant::now(),
        last_failure: None,
    })
}

/// One answer of the token endpoint while polling.
pub enum Step {
    /// The user has not finished yet; poll again after the interval.
    Pending,
    /// The provider asked to poll less often (the interval grew by 5 s).
    SlowDown,
    /// The user finished: the tokens.
    Granted(TokenGrant),
}

impl DeviceAuthorization {
    /// The polling interval the provider asked for (grows with `slow_down`).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// When the device code expires.
    pub fn expires_at(&self) -> Instant {
        self.started + Duration::from_secs(self.info.expires_in)
    }

    /// Ask the token endpoint once whether the user has finished.
    pub async fn poll_once(
        &mut self,
        ep: TokenEndpoint<'_>,
        scopes: &[String],
        cancel: &CancellationToken,
    ) -> Result<Step> {
        let what = "waiting for the device-code sign-in";
        if Instant::now() >= self.expires_at() {
            return Err(expired(what, None));
        }
        let form = vec![
            ("grant_type", GRANT),
            ("device_code", self.device_code.expose_secret()),
        ];
        let outcome = tokio::select! {
            r = token::call_once(ep, form, scopes) => r,
            _ = cancel.cancelled() => return Err(Error::cancelled("the device-code sign-in")),
        };
        self.last_failure = None;
        match outcome {
            Ok(Outcome::Granted(g)) => Ok(Step::Granted(g)),
            Ok(Outcome::Refused(e, status)) => match e.error.as_str() {
                "authorization_pending" => Ok(Step::Pending),
                "slow_down" => {
                    self.interval += Duration::from_secs(5);
                    Ok(Step::SlowDown)
                }
                "authorization_declined" | "access_denied" => Err(Error::new(
                    ErrorKind::AuthorizationDenied,
                    format!("{what}: the sign-in was declined on the device page"),
                )
                .with_evidence(|ev| {
                    ev.oauth = Some(e);
                    ev.http_status = Some(status);
                })),
                "expired_token" | "code_expired" => Err(expired(what, Some((e, status)))),
                _ if status == 429 || status >= 500 => {
                    tracing::debug!("device polling: provider busy (HTTP {status}); polling on");
                    self.interval += Duration::from_secs(5);
                    self.last_failure = Some(errors::to_error(what, e, Some(status)));
                    Ok(Step::SlowDown)
                }
                _ => Err(errors::to_error(what, e, Some(status))),
            },
            Err(e) if e.is_transient() => {
                tracing::debug!("device polling: {}; polling on", e.message());
                self.last_failure = Some(e.context(what));
                Ok(Step::Pending)
            }
            Err(e) => Err(e.context(what)),
        }
    }
}

fn expired(what: &str, evidence: Option<(OAuthErrorResponse, u16)>) -> Error {
    let e = Error::new(
        ErrorKind::Timeout,
        format!("{what}: the device code expired before the sign-in was completed"),
    )
    .with_code("MC-DEVICE-CODE-EXPIRED");
    match evidence {
        Some((o, status)) => e.with_evidence(|ev| {
            ev.oauth = Some(o);
            ev.http_status = Some(status);
        }),
        None => e,
    }
}

/// Poll until the user finishes, declines, the code expires, `deadline` passes (reported as a
/// timeout of `timeout`), or `cancel` fires.
pub async fn poll(
    ep: TokenEndpoint<'_>,
    scopes: &[String],
    da: &mut DeviceAuthorization,
    observer: &dyn ConnectObserver,
    deadline: Instant,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<TokenGrant> {
    let what = "waiting for the device-code sign-in";
    observer.progress(ConnectStage::WaitingForDeviceCode);
    loop {
        let next = Instant::now() + da.interval;
        if next > da.expires_at() {
            return Err(expired(what, None));
        }
        if next > deadline {
            // A provider that kept failing is the cause, not the user: report its error.
            return Err(match da.last_failure.take() {
                Some(e) => e.context(format!(
                    "the sign-in did not finish within {} s while the sign-in service was failing",
                    timeout.as_secs()
                )),
                None => Error::timeout(what, timeout),
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(da.interval) => {}
            _ = cancel.cancelled() => return Err(Error::cancelled("the device-code sign-in")),
        }
        if let Step::Granted(g) = da.poll_once(ep.clone(), scopes, cancel).await? {
            return Ok(g);
        }
    }
}
