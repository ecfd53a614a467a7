//! The `TokenStore` conformance suite (tests/support/conformance.rs) against every backend: SQLite
//! (a temporary file), PostgreSQL (a throw-away server, as tests/postgres_store.rs starts it) and
//! the host store (`HostStore` over an in-memory `RecordBackend`, as a host's database would be).
//! Each check gets a new, empty store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mailconnect_core::store::host::Blob;
use mailconnect_core::store::postgres::PostgresStore;
use mailconnect_core::store::{HostStore, KeySource, RecordBackend, SqliteStore};
use mailconnect_core::tls::TlsOptions;
use mailconnect_tests::conformance::{run, Backend, Opened};
use mailconnect_tests::pg::PgServer;

fn key() -> KeySource {
    KeySource::from_base64("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=").unwrap()
}

#[test]
fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    let open = || {
        let path = dir
            .path()
            .join(format!("s{}.db", n.fetch_add(1, Ordering::SeqCst)));
        let store = SqliteStore::open(&path, &key()).expect("the SQLite store opens");
        let other = SqliteStore::open(&path, &key()).expect("a second handle opens");
        Opened {
            store: Arc::new(store),
            other: Arc::new(other),
            raw: Box::new(move || {
                let mut bytes = std::fs::read(&path).expect("the database file");
                let mut wal = path.clone().into_os_string();
                wal.push("-wal");
                bytes.extend(std::fs::read(wal).unwrap_or_default());
                bytes
            }),
        }
    };
    run(&Backend {
        name: "SQLite",
        open: &open,
        versions_increase: true,
    });
}

#[test]
fn postgres() {
    let pg = Arc::new(PgServer::start());
    let n = AtomicUsize::new(0);
    let open = || {
        let db = format!("conformance{}", n.fetch_add(1, Ordering::SeqCst));
        let url = pg.create_database(&db);
        let store = || {
            PostgresStore::open(&url, &key(), &TlsOptions::default())
                .expect("the PostgreSQL store opens")
        };
        let (store, other) = (store(), store());
        let pg = pg.clone();
        Opened {
            store: Arc::new(store),
            other: Arc::new(other),
            raw: Box::new(move || pg.dump(&db).into_bytes()),
        }
    };
    run(&Backend {
        name: "PostgreSQL",
        open: &open,
        versions_increase: true,
    });
}

/// `(kind, id)` -> (blob, version).
type Rows = HashMap<(String, String), (Vec<u8>, i64)>;

/// Records as a host keeps them: each `(kind, id)` with its blob and version, every call atomic.
#[derive(Default)]
struct Memory {
    rows: Mutex<Rows>,
}

/// A handle on shared [`Memory`] (two hosts, or two processes, on one database).
#[derive(Clone, Default)]
struct Shared(Arc<Memory>);

impl RecordBackend for Shared {
    fn load(&self, kind: &str, id: &str) -> mailconnect_core::Result<Option<Blob>> {
        let rows = self.0.rows.lock().unwrap();
        Ok(rows
            .get(&(kind.to_string(), id.to_string()))
            .map(|(data, version)| Blob {
                data: data.clone(),
                version: *version,
            }))
    }

    fn compare_and_swap(
        &self,
        kind: &str,
        id: &str,
        data: &[u8],
        expected: i64,
        new_version: i64,
    ) -> mailconnect_core::Result<bool> {
        let mut rows = self.0.rows.lock().unwrap();
        let key = (kind.to_string(), id.to_string());
        if rows.get(&key).map_or(0, |r| r.1) != expected {
            return Ok(false);
        }
        rows.insert(key, (data.to_vec(), new_version));
        Ok(true)
    }

    fn remove(&self, kind: &str, id: &str) -> mailconnect_core::Result<bool> {
        let mut rows = self.0.rows.lock().unwrap();
        Ok(rows.remove(&(kind.to_string(), id.to_string())).is_some())
    }

    fn list(&self, kind: &str) -> mailconnect_core::Result<Vec<(String, Blob)>> {
        let rows = self.0.rows.lock().unwrap();
        Ok(rows
            .iter()
            .filter(|((k, _), _)| k == kind)
            .map(|((_, id), (data, version))| {
                (
                    id.clone(),
                    Blob {
                        data: data.clone(),
                        version: *version,
                    },
                )
            })
            .collect())
    }
}

#[test]
fn host() {
    let open = || {
        let memory = Shared::default();
        let store = HostStore::new(memory.clone(), &key()).expect("the host store opens");
        let other = HostStore::new(memory.clone(), &key()).expect("a second handle opens");
        Opened {
            store: Arc::new(store),
            other: Arc::new(other),
            raw: Box::new(move || {
                let rows = memory.0.rows.lock().unwrap();
                rows.iter()
                    .flat_map(|((kind, id), (data, _))| {
                        [kind.as_bytes(), id.as_bytes(), data.as_slice()].concat()
                    })
                    .collect()
            }),
        }
    };
    run(&Backend {
        name: "host",
        open: &open,
        versions_increase: false,
    });
}
