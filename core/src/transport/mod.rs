//! Mail transport: connections on the one rustls configuration, SASL encodings, and the protocols.

pub mod pop3;
pub mod sasl;
pub mod stream;
