//! Tests against real SQLite files in temporary directories.

mod audit;
mod credentials;
mod hardware;
mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use credential_crypto::CredentialCipher;
use serde_json::{Map, Value};
use ttl_cache::ManualClock;

use crate::sqlite::companion_paths;
use crate::{AuditKey, AuditTrail, ConfigCaches, ConfigStore};

/// A state directory with a store on a manual clock, audited.
pub(super) struct Fixture {
    pub(super) dir: tempfile::TempDir,
    pub(super) clock: Arc<ManualClock>,
    pub(super) caches: Arc<ConfigCaches>,
    pub(super) trail: AuditTrail,
    pub(super) store: ConfigStore,
}

pub(super) fn cipher() -> CredentialCipher {
    CredentialCipher::from_passphrase("provider-config test key").unwrap()
}

pub(super) fn audit_key() -> AuditKey {
    AuditKey::from_bytes(b"provider-config test audit key".to_vec()).unwrap()
}

impl Fixture {
    pub(super) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new());
        let caches = Arc::new(ConfigCaches::with_clock(clock.clone()));
        let trail = AuditTrail::open_path(&dir.path().join("audit.db"), audit_key()).unwrap();
        let store = ConfigStore::builder(dir.path().join("cloud/jobs.db"))
            .caches(Arc::clone(&caches))
            .audit(trail.clone())
            .cipher(cipher())
            .open()
            .unwrap();
        Self {
            dir,
            clock,
            caches,
            trail,
            store,
        }
    }

    pub(super) fn jobs_db(&self) -> PathBuf {
        self.dir.path().join("cloud/jobs.db")
    }

    pub(super) fn audit_db(&self) -> PathBuf {
        self.dir.path().join("audit.db")
    }

    /// A raw connection to the jobs database (to plant rows as another writer would).
    pub(super) fn raw(&self) -> rusqlite::Connection {
        raw(&self.jobs_db())
    }
}

pub(super) fn raw(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .unwrap();
    conn
}

pub(super) fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// Whether `needle` occurs in the database file, its write-ahead log or its shared memory.
pub(super) fn files_contain(db: &Path, needle: &str) -> Vec<PathBuf> {
    let mut files = vec![db.to_owned()];
    files.extend(companion_paths(db));
    files
        .into_iter()
        .filter(|path| {
            std::fs::read(path).is_ok_and(|bytes| {
                bytes
                    .windows(needle.len())
                    .any(|window| window == needle.as_bytes())
            })
        })
        .collect()
}
