//! Mail transport: connections on the one rustls configuration, SASL encodings, and the protocols.

pub mod imap;
mod imap_fetch;
pub mod message;
pub mod pop3;
pub mod sasl;
pub mod smtp;
pub mod stream;
