//! OAuth 2.0 flows: browser (authorization code + PKCE with a loopback redirect), device code,
//! client credentials and refresh; the identity check after sign-in.
//!
//! Why the token endpoint calls are written here rather than with the `oauth2` crate's client:
//! the library must keep the HTTP status, `Retry-After`, the raw body (to report a proxy's HTML page
//! or a truncated JSON response as such) and Microsoft's error extensions (`error_codes`, `suberror`,
//! `trace_id`, `correlation_id`) and the `id_token`; the `oauth2` crate's typed client drops or hides
//! these. We still use `oauth2` for the random `state` and `nonce`; PKCE is our own `pkce_pair`
//! (docs/dependencies.md#oauth2-crate).

pub mod browser;
pub mod device;
pub mod errors;
pub mod identity;
pub mod token;

use secrecy::SecretString;

pub use browser::LoopbackPage;
pub use identity::Identity;
pub use token::TokenGrant;

/// A device code to show to the user.
#[derive(Debug, Clone)]
pub struct DeviceCodeInfo {
    /// The code the user types.
    pub user_code: String,
    /// Where the user types it.
    pub verification_uri: String,
    /// The URI with the code filled in, when the provider offers one (Microsoft does not).
    pub verification_uri_complete: Option<String>,
    /// The provider's ready-made sentence for the user.
    pub message: String,
    /// Seconds until the code expires.
    pub expires_in: u64,
}

/// Stages of a connect, reported to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectStage {
    /// Resolving the provider's endpoints.
    Starting,
    /// The browser is being opened with the sign-in page.
    OpeningBrowser,
    /// Waiting for the user to finish signing in in the browser.
    WaitingForBrowser,
    /// Waiting for the user to enter the device code.
    WaitingForDeviceCode,
    /// Redeeming the authorization code or polling for tokens.
    RequestingTokens,
    /// Checking that the right account signed in.
    CheckingIdentity,
    /// Storing the tokens.
    Storing,
    /// Done.
    Connected,
}

impl ConnectStage {
    /// A stable lowercase name (also the C ABI's progress stage string).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectStage::Starting => "starting",
            ConnectStage::OpeningBrowser => "opening_browser",
            ConnectStage::WaitingForBrowser => "waiting_for_browser",
            ConnectStage::WaitingForDeviceCode => "waiting_for_device_code",
            ConnectStage::RequestingTokens => "requesting_tokens",
            ConnectStage::CheckingIdentity => "checking_identity",
            ConnectStage::Storing => "storing",
            ConnectStage::Connected => "connected",
        }
    }
}

/// What the host wants to do during a connect. Every method has a default, so a host that gives
/// nothing gets the system browser and a logged device code. Methods may be called on library threads.
pub trait ConnectObserver: Send + Sync {
    /// Show `url` (the sign-in page). Return `true` when the host opened it (e.g. in its own web view),
    /// `false` to let the library open the system browser.
    fn open_url(&self, _url: &str) -> bool {
        false
    }
    /// Show the device code to the user.
    fn device_code(&self, info: &DeviceCodeInfo) {
        tracing::info!(target: "mailconnect", "{}", info.message);
    }
    /// A connect stage was reached.
    fn progress(&self, _stage: ConnectStage) {}
}

/// The default observer.
pub struct DefaultObserver;
impl ConnectObserver for DefaultObserver {}

/// Client authentication at the token endpoint.
#[derive(Clone, Copy)]
pub struct ClientAuth<'a> {
    /// The client id.
    pub client_id: &'a str,
    /// The secret of a confidential client.
    pub secret: Option<&'a SecretString>,
}
