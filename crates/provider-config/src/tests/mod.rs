//! Tests against real databases: SQLite files in temporary directories and, with feature
//! `postgres`, a real PostgreSQL server (`cargo xtask test` starts one and exports
//! `SECRETS_TEST_DATABASE_URL`; each test gets a database of its own).
//!
//! Most tests are written once, for a [`Kind`] of backend, and run against both: see
//! [`both!`].

mod audit;
mod copy;
mod credentials;
mod hardware;
mod outbox;
#[cfg(feature = "postgres")]
mod postgres;
mod review;
mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use credential_crypto::CredentialCipher;
use serde_json::{Map, Value};
use ttl_cache::ManualClock;

use crate::sqlite::companion_paths;
use crate::{AuditKey, AuditTrail, ConfigCaches, ConfigStore, StoreLocation};

/// Generates, for each test function taking a [`Kind`], a module of that name with one
/// `#[test]` per backend (`name::sqlite`, `name::postgres`).
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name($crate::tests::Kind::Sqlite)
            }

            #[cfg(feature = "postgres")]
            #[test]
            fn postgres() {
                super::$name($crate::tests::Kind::Postgres)
            }
        }
    )*};
}
pub(crate) use both;

/// A backend the tests run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

/// One test's database: two SQLite files in a temporary directory, or a PostgreSQL
/// database of its own (dropped at the end).
pub(super) struct TestDb {
    pub(super) dir: tempfile::TempDir,
    #[cfg(feature = "postgres")]
    pg: Option<postgres::TestDatabase>,
}

impl TestDb {
    pub(super) fn new(kind: Kind) -> Self {
        let dir = tempfile::tempdir().unwrap();
        match kind {
            Kind::Sqlite => Self {
                dir,
                #[cfg(feature = "postgres")]
                pg: None,
            },
            #[cfg(feature = "postgres")]
            Kind::Postgres => Self {
                dir,
                pg: Some(postgres::TestDatabase::create()),
            },
        }
    }

    pub(super) fn jobs_db(&self) -> PathBuf {
        self.dir.path().join("cloud/jobs.db")
    }

    pub(super) fn audit_db(&self) -> PathBuf {
        self.dir.path().join("audit.db")
    }

    /// Where the configuration and credentials are.
    pub(super) fn jobs(&self) -> StoreLocation {
        #[cfg(feature = "postgres")]
        if let Some(pg) = &self.pg {
            return StoreLocation::Postgres(pg.url());
        }
        StoreLocation::Sqlite(self.jobs_db())
    }

    /// Where the audit trail is.
    pub(super) fn audit(&self) -> StoreLocation {
        #[cfg(feature = "postgres")]
        if let Some(pg) = &self.pg {
            return StoreLocation::Postgres(pg.url());
        }
        StoreLocation::Sqlite(self.audit_db())
    }

    /// A raw connection to the configuration database (to plant rows as another writer
    /// would).
    pub(super) fn raw(&self) -> Raw {
        #[cfg(feature = "postgres")]
        if let Some(pg) = &self.pg {
            return Raw::Postgres(pg.connect());
        }
        Raw::Sqlite(raw(&self.jobs_db()))
    }

    /// A raw connection to the audit database.
    pub(super) fn raw_audit(&self) -> Raw {
        #[cfg(feature = "postgres")]
        if let Some(pg) = &self.pg {
            return Raw::Postgres(pg.connect());
        }
        Raw::Sqlite(raw(&self.audit_db()))
    }

    /// Where `needle` is stored in the audit trail: the SQLite files of `audit.db`, or the
    /// PostgreSQL audit tables.
    pub(super) fn audit_holding(&self, needle: &str) -> Vec<String> {
        #[cfg(feature = "postgres")]
        if self.pg.is_some() {
            let mut found = self.raw().tables_holding(needle);
            found.retain(|table| table.starts_with("audit_"));
            return found;
        }
        files_contain(&self.audit_db(), needle)
            .iter()
            .map(|p| p.display().to_string())
            .collect()
    }

    /// Where `needle` is stored: the SQLite files (database, write-ahead log, shared memory)
    /// that hold its bytes, or the PostgreSQL tables that hold it in a live row.
    pub(super) fn holding(&self, needle: &str) -> Vec<String> {
        #[cfg(feature = "postgres")]
        if self.pg.is_some() {
            return self.raw().tables_holding(needle);
        }
        let mut found = files_contain(&self.jobs_db(), needle);
        found.extend(files_contain(&self.audit_db(), needle));
        found.iter().map(|p| p.display().to_string()).collect()
    }
}

/// A store on a manual clock, audited, on one test database.
pub(super) struct Fixture {
    pub(super) clock: Arc<ManualClock>,
    pub(super) caches: Arc<ConfigCaches>,
    pub(super) trail: AuditTrail,
    pub(super) store: ConfigStore,
    pub(super) db: TestDb,
}

pub(super) fn cipher() -> CredentialCipher {
    CredentialCipher::from_passphrase("provider-config test key").unwrap()
}

pub(super) fn audit_key() -> AuditKey {
    AuditKey::from_bytes(b"provider-config test audit key".to_vec()).unwrap()
}

impl Fixture {
    pub(super) fn new(kind: Kind) -> Self {
        let db = TestDb::new(kind);
        let clock = Arc::new(ManualClock::new());
        let caches = Arc::new(ConfigCaches::with_clock(clock.clone()));
        let trail = AuditTrail::open_at(&db.audit(), audit_key()).unwrap();
        let store = ConfigStore::builder_at(db.jobs())
            .caches(Arc::clone(&caches))
            .audit(trail.clone())
            .cipher(cipher())
            .open()
            .unwrap();
        Self {
            clock,
            caches,
            trail,
            store,
            db,
        }
    }

    pub(super) fn jobs_db(&self) -> PathBuf {
        self.db.jobs_db()
    }

    pub(super) fn audit_db(&self) -> PathBuf {
        self.db.audit_db()
    }

    pub(super) fn raw(&self) -> Raw {
        self.db.raw()
    }
}

pub(super) fn raw(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .unwrap();
    conn
}

/// A parameter of a raw statement.
#[derive(Debug, Clone)]
pub(super) enum P {
    T(String),
    I(i64),
    Null,
}

impl From<&str> for P {
    fn from(s: &str) -> Self {
        Self::T(s.to_owned())
    }
}

impl From<String> for P {
    fn from(s: String) -> Self {
        Self::T(s)
    }
}

impl From<i64> for P {
    fn from(i: i64) -> Self {
        Self::I(i)
    }
}

impl From<Option<i64>> for P {
    fn from(i: Option<i64>) -> Self {
        i.map_or(Self::Null, Self::I)
    }
}

/// Parameters for [`Raw`] methods: `params![a, b]`.
macro_rules! params {
    ($($value:expr),* $(,)?) => { &[$($crate::tests::P::from($value)),*] };
}
pub(crate) use params;

/// A raw connection to a test database, for statements written once with `?1`-style
/// placeholders (PostgreSQL gets `$1`).
pub(crate) enum Raw {
    Sqlite(rusqlite::Connection),
    #[cfg(feature = "postgres")]
    Postgres(postgres::RawPg),
}

impl rusqlite::ToSql for P {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(match self {
            P::T(s) => s.as_str().into(),
            P::I(i) => (*i).into(),
            P::Null => rusqlite::types::Null.into(),
        })
    }
}

impl Raw {
    /// Runs one statement; how many rows it changed.
    pub(super) fn execute(&self, sql: &str, params: &[P]) -> u64 {
        match self {
            Raw::Sqlite(conn) => conn
                .execute(sql, rusqlite::params_from_iter(params.iter()))
                .unwrap() as u64,
            #[cfg(feature = "postgres")]
            Raw::Postgres(pg) => pg.execute(sql, params),
        }
    }

    /// Runs statements without parameters.
    pub(super) fn batch(&self, sql: &str) {
        match self {
            Raw::Sqlite(conn) => conn.execute_batch(sql).unwrap(),
            #[cfg(feature = "postgres")]
            Raw::Postgres(pg) => pg.batch(sql),
        }
    }

    /// The text columns of every row a query returns.
    pub(super) fn rows(&self, sql: &str, params: &[P]) -> Vec<Vec<Option<String>>> {
        match self {
            Raw::Sqlite(conn) => {
                let mut stmt = conn.prepare(sql).unwrap();
                let columns = stmt.column_count();
                stmt.query_map(rusqlite::params_from_iter(params.iter()), |row| {
                    (0..columns)
                        .map(|i| {
                            Ok(match row.get::<_, rusqlite::types::Value>(i)? {
                                rusqlite::types::Value::Null => None,
                                value => Some(crate::audit::python_str(&value)),
                            })
                        })
                        .collect()
                })
                .unwrap()
                .map(Result::unwrap)
                .collect()
            }
            #[cfg(feature = "postgres")]
            Raw::Postgres(pg) => pg.rows(sql, params),
        }
    }

    /// The first column of every row, as text (`NULL` is an error).
    pub(super) fn strings(&self, sql: &str, params: &[P]) -> Vec<String> {
        self.rows(sql, params)
            .into_iter()
            .map(|row| row.into_iter().next().flatten().expect("a value"))
            .collect()
    }

    /// The first column of the one row a query returns, as text.
    pub(super) fn string(&self, sql: &str, params: &[P]) -> String {
        let mut all = self.strings(sql, params);
        assert_eq!(all.len(), 1, "{sql}: {all:?}");
        all.remove(0)
    }

    /// `(id, text)` rows.
    pub(super) fn id_strings(&self, sql: &str, params: &[P]) -> Vec<(i64, String)> {
        self.rows(sql, params)
            .into_iter()
            .map(|row| {
                let id = row[0].as_deref().unwrap().parse().unwrap();
                (id, row[1].clone().unwrap())
            })
            .collect()
    }
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
