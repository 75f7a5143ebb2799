//! The seam between the stores and their database. A store holds a [`Backend`] and asks it
//! for read and write transactions, in which it works on the backend's [`Rows`]; the
//! statements live with each backend (`sqlite/`, `postgres/`). The public API is the same
//! whichever backend a store is on.

use std::fmt;
use std::sync::Arc;

use crate::rows::{Rows, TxError};
use crate::sqlite::{SqliteDb, schema};
use crate::{StoreError, StoreLocation};

/// Which tables a store needs (the SQLite backend keeps them in two files; PostgreSQL in
/// one database).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tables {
    /// `provider_config` and `provider_credentials` (`jobs.db`).
    Jobs,
    /// `audit_log` and `audit_row_mac` (`audit.db`).
    Audit,
}

/// Where a store's rows live.
#[derive(Clone)]
pub(crate) enum Backend {
    /// An SQLite file (the default, and the original's).
    Sqlite(Arc<SqliteDb>),
    /// A PostgreSQL database shared by several processes.
    #[cfg(feature = "postgres")]
    Postgres(Arc<crate::postgres::PgDb>),
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(db) => write!(f, "Sqlite({})", db.path().display()),
            #[cfg(feature = "postgres")]
            Self::Postgres(db) => write!(f, "Postgres({})", db.server()),
        }
    }
}

impl Backend {
    /// Opens (creating what is missing) the database at `location` and brings the schema of
    /// `tables` up to date.
    pub(crate) fn open(location: &StoreLocation, tables: Tables) -> Result<Self, StoreError> {
        match location {
            StoreLocation::Sqlite(path) => {
                let schema = match tables {
                    Tables::Jobs => &schema::JOBS_DB,
                    Tables::Audit => &schema::AUDIT_DB,
                };
                Ok(Self::Sqlite(Arc::new(SqliteDb::open(path, schema)?)))
            }
            #[cfg(feature = "postgres")]
            StoreLocation::Postgres(url) => Ok(Self::Postgres(crate::postgres::PgDb::open(url)?)),
            #[cfg(not(feature = "postgres"))]
            StoreLocation::Postgres(url) => Err(StoreError::BackendNotCompiled {
                setting: url.setting().to_owned(),
                backend: "PostgreSQL",
                feature: "postgres",
            }),
        }
    }

    /// Opens an existing database at `location` for reading only: nothing is created or
    /// migrated (a newer schema is still refused).
    pub(crate) fn open_read_only(
        location: &StoreLocation,
        tables: Tables,
    ) -> Result<Self, StoreError> {
        match location {
            StoreLocation::Sqlite(path) => {
                let schema = match tables {
                    Tables::Jobs => &schema::JOBS_DB,
                    Tables::Audit => &schema::AUDIT_DB,
                };
                Ok(Self::Sqlite(Arc::new(SqliteDb::open_read_only(
                    path, schema,
                )?)))
            }
            #[cfg(feature = "postgres")]
            StoreLocation::Postgres(url) => {
                Ok(Self::Postgres(crate::postgres::PgDb::open_read_only(url)?))
            }
            #[cfg(not(feature = "postgres"))]
            StoreLocation::Postgres(url) => Err(StoreError::BackendNotCompiled {
                setting: url.setting().to_owned(),
                backend: "PostgreSQL",
                feature: "postgres",
            }),
        }
    }

    /// Opens the configuration database at `location` so that its write transactions can
    /// append to `audit` in the same transaction: on SQLite, the audit file is attached to
    /// every connection (as `audit`); on PostgreSQL, both are in one database anyway.
    pub(crate) fn open_jobs_with_audit(
        location: &StoreLocation,
        audit: Option<&std::path::Path>,
    ) -> Result<Self, StoreError> {
        match (location, audit) {
            (StoreLocation::Sqlite(path), Some(audit)) => Ok(Self::Sqlite(Arc::new(
                SqliteDb::open_attached(path, &schema::JOBS_DB, audit)?,
            ))),
            _ => Self::open(location, Tables::Jobs),
        }
    }

    /// Whether write transactions on this backend reach the audit tables of `audit`.
    pub(crate) fn has_audit_of(&self, audit: &Backend) -> bool {
        match (self, audit) {
            (Self::Sqlite(db), Self::Sqlite(trail)) => db.attached() == Some(trail.path()),
            #[cfg(feature = "postgres")]
            (Self::Postgres(db), Self::Postgres(trail)) => db.server() == trail.server(),
            #[cfg(feature = "postgres")]
            _ => false,
        }
    }

    /// Runs `f` on a connection (one consistent snapshot for SQLite; PostgreSQL runs each
    /// statement in its own snapshot unless `f` reads in one statement).
    pub(crate) fn read<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&dyn Rows) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        match self {
            Self::Sqlite(db) => db.read(operation, |conn| f(conn)),
            #[cfg(feature = "postgres")]
            Self::Postgres(db) => db.read(operation, f),
        }
    }

    /// Runs `f` on one consistent snapshot of the database, for several statements that
    /// must agree (verifying the audit chain while others append to it).
    pub(crate) fn read_snapshot<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&dyn Rows) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        match self {
            // One connection whose statements run while the chain's statement is open: one
            // read transaction.
            Self::Sqlite(db) => db.read(operation, |conn| f(conn)),
            #[cfg(feature = "postgres")]
            Self::Postgres(db) => db.read_snapshot(operation, f),
        }
    }

    /// Runs `f` in a write transaction: committed when `f` succeeds, rolled back otherwise.
    /// SQLite takes the write lock up front (`BEGIN IMMEDIATE`); on PostgreSQL, the row
    /// operations that read before writing lock what they read.
    pub(crate) fn write<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&dyn Rows) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        match self {
            Self::Sqlite(db) => db.write(operation, |tx| f(&**tx)),
            #[cfg(feature = "postgres")]
            Self::Postgres(db) => db.write(operation, f),
        }
    }

    /// Runs a maintenance write that rewrites stored values (encryption, key rotation) in
    /// one transaction, then removes the old copies from the database files as far as the
    /// backend allows; whether that succeeded.
    pub(crate) fn rewrite_scrubbing<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&dyn Rows) -> Result<T, TxError>,
    ) -> Result<(T, bool), StoreError> {
        match self {
            Self::Sqlite(db) => db.rewrite_scrubbing(operation, |tx| f(&**tx)),
            #[cfg(feature = "postgres")]
            Self::Postgres(db) => db.rewrite_scrubbing(operation, f),
        }
    }
}

/// Runs blocking store work on tokio's blocking pool, so async callers never stall a
/// runtime thread.
pub(crate) async fn unblock<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    private_fs::unblock(work)
        .await
        .map_err(|e| StoreError::Io {
            path: Default::default(),
            operation: "running blocking database work",
            source: e,
        })?
}
