//! Device authorization grant (RFC 8628; Microsoft: MICROSOFT.md §5.4).

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
    device_code: String,
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
    let _ = raw.verification_uri_complete;
    Ok(DeviceAuthorization {
        device_code: SecretString::from(raw.device_code),
        info: DeviceCodeInfo {
            user_code: raw.user_code,
            verification_uri: uri,
            message,
            expires_in: raw.expires_in,
        },
        interval: Duration::from_secs(raw.interval.unwrap_or(5).clamp(1, 60)),
        started: Instant::now(),
    })
}

/// Poll until the user finishes, declines, the code expires, `timeout` passes, or `cancel` fires.
pub async fn poll(
    ep: TokenEndpoint<'_>,
    scopes: &[String],
    da: &DeviceAuthorization,
    observer: &dyn ConnectObserver,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<TokenGrant> {
    let what = "waiting for the device-code sign-in";
    let expires = Duration::from_secs(da.info.expires_in);
    let limit = expires.min(timeout);
    let mut interval = da.interval;
    observer.progress(ConnectStage::WaitingForDeviceCode);
    loop {
        let elapsed = da.started.elapsed();
        if elapsed + interval > limit {
            return Err(if limit == expires {
                Error::new(
                    ErrorKind::Timeout,
                    format!("{what}: the device code expired before the sign-in was completed"),
                )
            } else {
                Error::timeout(what, timeout)
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = cancel.cancelled() => return Err(Error::cancelled("the device-code sign-in")),
        }
        let form = vec![
            ("grant_type", GRANT),
            ("device_code", da.device_code.expose_secret()),
        ];
        let outcome = tokio::select! {
            r = token::call_once(ep, form, scopes) => r,
            _ = cancel.cancelled() => return Err(Error::cancelled("the device-code sign-in")),
        };
        match outcome {
            Ok(Outcome::Granted(g)) => return Ok(g),
            Ok(Outcome::Refused(e, status)) => match e.error.as_str() {
                "authorization_pending" => {}
                "slow_down" => interval += Duration::from_secs(5),
                "authorization_declined" | "access_denied" => {
                    return Err(Error::new(
                        ErrorKind::AuthorizationDenied,
                        format!("{what}: the sign-in was declined on the device page"),
                    )
                    .with_evidence(|ev| {
                        ev.oauth = Some(e);
                        ev.http_status = Some(status);
                    }))
                }
                "expired_token" | "code_expired" => {
                    return Err(Error::new(
                        ErrorKind::Timeout,
                        format!("{what}: the device code expired before the sign-in was completed"),
                    )
                    .with_evidence(|ev| {
                        ev.oauth = Some(e);
                        ev.http_status = Some(status);
                    }))
                }
                _ if status == 429 || status >= 500 => {
                    tracing::debug!("device polling: provider busy (HTTP {status}); polling on");
                    interval += Duration::from_secs(5);
                }
                _ => return Err(errors::to_error(what, e, Some(status))),
            },
            Err(e) if e.is_transient() => {
                tracing::debug!("device polling: {}; polling on", e.message());
            }
            Err(e) => return Err(e.context(what)),
        }
    }
}
