//! # mailconnect-sandbox
//!
//! A local emulator of the Microsoft identity platform v2.0 (`login.microsoftonline.com`) for
//! tests and for vendors: OpenID metadata and keys, the authorize endpoint with real sign-in,
//! MFA and consent pages, the token endpoint for the authorization-code, refresh-token,
//! device-code and client-credentials grants, the device-code endpoint, logout, an RFC 7662
//! introspection endpoint for mail servers, failure switches that reproduce Microsoft's error
//! answers, and a JSON control API. [`ScriptedBrowser`] plays the user on the real HTML forms.
//! Connected to the Dovecot/Postfix stack ([`Emulator::set_mail_stack`]), it also serves
//! Microsoft Graph v1.0 mail under `/v1.0` on the real mailboxes, and an SMTP front that
//! answers Exchange's `535 5.7.139` for mailboxes with SMTP AUTH switched off.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mailconnect_sandbox::Error> {
//! use mailconnect_sandbox::{Emulator, EmulatorConfig};
//! let emulator = Emulator::start(EmulatorConfig::sandbox()).await?;
//! println!("authority: {}/organizations", emulator.base_url());
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ## Differences from the original brief
//! - `UserConfig` also has `mfa_code` (default `123456`), `can_sign_in` (shared mailboxes:
//!   false), `object_id`; `consented` is a list of [`ConsentGrant`]; `TenantConfig` has
//!   `users_can_consent` and `admin_consents`.
//! - `EmulatorConfig` also has `public_base_url` and `signing_key_pem_path`.
//! - [`SignInOutcome`] also has `final_page` (the device flow's closing page text) and
//!   `error_page` also carries inline errors (wrong password, unknown user, bad MFA code).
//! - [`Stats`] is a struct with maps and helper methods (`refreshes_total`,
//!   `refresh_requests_total`, `refreshes_for`, `token_requests_for`).
//! - The 2048-bit signing key is generated once per process and shared by all emulators in it
//!   (unless a PEM file is configured), so starting many emulators in tests stays fast.

#![warn(missing_docs)]

mod browser;
mod emulator;
mod error;
#[doc(hidden)]
pub mod testing;

pub use browser::{html, Consent, Fetched, ScriptedBrowser, SignIn, SignInOutcome};
pub use emulator::config::{
    AppConfig, ClientSecret, ConsentGrant, EmulatorConfig, Platform, RedirectUri,
    RequiredResourceAccess, ResourceAccess, SignInAudience, TenantConfig, TlsConfig, TokenSettings,
    UserConfig, CONSUMER_TENANT_ID, DESKTOP_APP_ID, EXAMPLE_TENANT_ID, FABRIKAM_TENANT_ID,
    SERVICE_APP_ID, SERVICE_APP_SECRET, SETUP_APP_ID, WEB_APP_ID,
};
pub use emulator::control::post_stack_json;
pub use emulator::faults::{Endpoint, Fault, FaultRule};
pub use emulator::graph::{
    GraphCloud, GraphOutage, GraphSettings, GraphThrottle, MailStackConfig, SmtpFront, GRAPH_APP_ID,
};
pub use emulator::smtp_front::{DISABLED_MAILBOX, DISABLED_TENANT};
pub use emulator::state::{IssuedSecrets, RefreshCount, Stats};
pub use emulator::Emulator;
pub use error::Error;
