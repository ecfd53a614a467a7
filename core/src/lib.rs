//! mailconnect core: OAuth 2.0 authorization, encrypted token storage and mail transport for
//! Microsoft 365 and other providers.
//!
//! Pure async Rust with no FFI, no globals and no printing; it logs with `tracing` and never logs
//! secrets. The C ABI (`ffi/`), the bindings and the `mailconnect` command all go through
//! [`Client`], so they behave the same.

pub mod account_state;
pub mod authorize;
pub mod check;
pub mod client;
pub mod compose;
pub mod diagnose;
pub mod error;
pub mod events;
pub mod graph;
pub mod http;
pub mod i18n;
pub mod locale;
pub mod logging;
pub mod mail;
pub mod model;
pub mod net;
pub mod oauth;
pub mod platform;
pub mod provider;
pub mod refresher;
pub mod setup;
pub mod store;
pub mod sysproxy;
pub mod tls;
pub mod tokens;
pub mod transport;

pub use account_state::{AccountState, Status};
pub use authorize::{Authorization, BeginOptions, ConnectOptions, PollResult};
pub use client::{Client, ClientOptions};
pub use error::{Error, ErrorKind, Evidence, Result};
pub use events::{Event, EventKind, EventQueue};
pub use i18n::Language;
pub use model::{Account, Flow, Protocol, ProviderKind, Registration};
pub use oauth::{ConnectObserver, ConnectStage, DefaultObserver, DeviceCodeInfo};
pub use refresher::{Refresher, RefresherOptions, RoundReport};
pub use tokens::{AccessToken, Resource, TokenRef};
pub use tokio_util::sync::CancellationToken;
