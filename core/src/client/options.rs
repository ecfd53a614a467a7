//! The options of a client, from JSON (schema in the README): store, key, language, proxy,
//! timeouts, extra CA certificates; and the event-queue options.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::http::HttpOptions;
use crate::i18n::Language;
use crate::model;
use crate::store::KeySource;
use crate::tls::TlsOptions;

/// Options of a client. From JSON with [`ClientOptions::from_json`] (schema in the README).
#[derive(Clone)]
pub struct ClientOptions {
    /// The SQLite store file, or a `postgres://` / `postgresql://` URL (feature `postgres`);
    /// empty for a host-owned store.
    pub store_path: PathBuf,
    /// Where the store key comes from (default: a key file beside the store, `<store>.key`).
    pub key: Option<KeySource>,
    /// Language of texts for people (default: the user's locale, [`crate::locale::user_language`]).
    pub language: Language,
    /// HTTP settings (proxy, timeouts, extra CA).
    pub http: HttpOptions,
    /// How long a refresh lease is held at most before other processes may take over.
    pub lease_ttl: Duration,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A PostgreSQL URL may carry a password.
        let store = self.store_path.to_string_lossy();
        let store = match (store.find("://"), store.rfind('@')) {
            (Some(s), Some(at)) if at > s => {
                format!("{}://[redacted]{}", &store[..s], &store[at..])
            }
            _ => store.into_owned(),
        };
        f.debug_struct("ClientOptions")
            .field("store", &store)
            .field("key", &self.key)
            .field("language", &self.language)
            .field("http", &self.http)
            .field("lease_ttl", &self.lease_ttl)
            .finish()
    }
}

impl ClientOptions {
    /// Options for a store file with defaults for everything else (the language from the user's
    /// locale).
    pub fn new(store_path: impl Into<PathBuf>) -> ClientOptions {
        ClientOptions {
            store_path: store_path.into(),
            key: None,
            language: crate::locale::user_language(),
            http: HttpOptions::default(),
            lease_ttl: Duration::from_secs(60),
        }
    }

    /// Parse the options JSON.
    pub fn from_json(json: &str) -> Result<ClientOptions> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct KeyJson {
            #[serde(default)]
            file: Option<PathBuf>,
            #[serde(default)]
            base64: Option<String>,
            #[serde(default)]
            dpapi: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            #[serde(default)]
            store: Option<PathBuf>,
            #[serde(default)]
            key: Option<KeyJson>,
            #[serde(default)]
            language: Option<String>,
            #[serde(default)]
            log_level: Option<String>,
            #[serde(default)]
            proxy: Option<serde_json::Value>,
            #[serde(default)]
            no_proxy: bool,
            #[serde(default)]
            extra_ca_file: Option<PathBuf>,
            #[serde(default)]
            http_timeout_secs: Option<u64>,
            #[serde(default)]
            danger_accept_invalid_certs: bool,
        }
        let raw: Raw = model::parse_json("client options", json)?;
        let mut o = ClientOptions::new(raw.store.unwrap_or_default());
        o.key = match raw.key {
            None => None,
            Some(KeyJson {
                file: Some(f),
                base64: None,
                dpapi: None,
            }) => Some(KeySource::File(f)),
            Some(KeyJson {
                file: None,
                base64: Some(b),
                dpapi: None,
            }) => Some(KeySource::from_base64(&b)?),
            Some(KeyJson {
                file,
                base64: None,
                dpapi: Some(scope),
            }) => {
                let scope = crate::store::DpapiScope::parse(&scope)?;
                let file = match (file, o.store_path.to_str()) {
                    (Some(f), _) => f,
                    (None, Some(s)) if !s.is_empty() && !is_postgres_url(s) => {
                        crate::store::key::default_key_file(&o.store_path)
                    }
                    _ => {
                        return Err(Error::invalid(
                            "key",
                            "'key': {'dpapi': ...} needs 'file' unless the store is a SQLite file (the key file then sits beside it)",
                        ))
                    }
                };
                Some(KeySource::Dpapi { file, scope })
            }
            Some(_) => {
                return Err(Error::invalid(
                    "key",
                    "'key' must have exactly one of 'file', 'base64' or 'dpapi' (with 'dpapi', 'file' may name the key file)",
                ))
            }
        };
        if let Some(l) = raw.language {
            o.language = match l.as_str() {
                "en" => Language::En,
                "de" => Language::De,
                other => {
                    return Err(Error::invalid(
                        "language",
                        format!(
                            "'language' must be 'en' or 'de', not '{}'",
                            crate::error::quote(other)
                        ),
                    ))
                }
            };
        }
        if let Some(l) = raw.log_level {
            if !matches!(
                l.as_str(),
                "error" | "warn" | "info" | "debug" | "trace" | "off"
            ) {
                return Err(Error::invalid(
                    "log_level",
                    format!(
                        "'log_level' must be error, warn, info, debug, trace or off, not '{}'",
                        crate::error::quote(&l)
                    ),
                ));
            }
        }
        o.http.proxy = match raw.proxy {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(crate::net::ProxyConfig::from_json(&v)?),
        };
        o.http.no_proxy = raw.no_proxy;
        if let Some(t) = raw.http_timeout_secs {
            if t == 0 || t > 600 {
                return Err(Error::invalid(
                    "http_timeout_secs",
                    "'http_timeout_secs' must be between 1 and 600",
                ));
            }
            o.http.timeout = Duration::from_secs(t);
        }
        if let Some(ca) = raw.extra_ca_file {
            // A PEM bundle is a regular file of at most a few hundred KiB; refuse devices and
            // pipes (which could block or never end) and anything absurdly large.
            const MAX_CA: u64 = 4 * 1024 * 1024;
            match std::fs::metadata(&ca) {
                Ok(m) if !m.is_file() => {
                    return Err(Error::invalid(
                        "extra_ca_file",
                        format!("'{}' is not a regular file", ca.display()),
                    ))
                }
                Ok(m) if m.len() > MAX_CA => {
                    return Err(Error::invalid(
                        "extra_ca_file",
                        format!(
                            "'{}' is {} bytes; a CA bundle is at most 4 MiB",
                            ca.display(),
                            m.len()
                        ),
                    ))
                }
                _ => {}
            }
            let pem = std::fs::read(&ca).map_err(|e| {
                Error::invalid(
                    "extra_ca_file",
                    format!("cannot read '{}': {e}", ca.display()),
                )
            })?;
            o.http.tls = TlsOptions {
                extra_ca_pem: vec![pem],
                ..o.http.tls
            };
        }
        o.http.tls.danger_accept_invalid_certs = raw.danger_accept_invalid_certs;
        Ok(o)
    }
}

/// Whether the `store` option names a PostgreSQL database rather than a SQLite file.
pub(crate) fn is_postgres_url(store: &str) -> bool {
    ["postgres://", "postgresql://"].iter().any(|p| {
        store
            .get(..p.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extra_ca_file_must_be_a_regular_file_of_sane_size() {
        let e = ClientOptions::from_json(r#"{"store": "s.db", "extra_ca_file": "/dev/zero"}"#)
            .unwrap_err();
        assert!(
            e.message().contains("not a regular file"),
            "{}",
            e.message()
        );
        let e = ClientOptions::from_json(
            r#"{"store": "s.db", "extra_ca_file": "/nonexistent/ca.pem"}"#,
        )
        .unwrap_err();
        assert!(e.message().contains("cannot read"), "{}", e.message());
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.pem");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(5 * 1024 * 1024)
            .unwrap();
        let e = ClientOptions::from_json(
            &serde_json::json!({"store": "s.db", "extra_ca_file": big}).to_string(),
        )
        .unwrap_err();
        assert!(e.message().contains("at most 4 MiB"), "{}", e.message());
    }

    #[test]
    fn debug_output_hides_a_password_in_the_store_url() {
        let o = ClientOptions::new("postgres://mc:hunter2@db.example:5432/mail");
        let d = format!("{o:?}");
        assert!(!d.contains("hunter2") && d.contains("db.example"), "{d}");
    }
}
