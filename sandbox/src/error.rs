//! The crate's error type.

/// Errors of the emulator and the scripted browser.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TLS setup failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// An HTTP request of the scripted browser failed.
    #[error("HTTP: {0}")]
    Http(String),
    /// The scripted browser could not follow the pages.
    #[error("scripted browser: {0}")]
    Browser(String),
}
