//! The seam between the stores and their database. Each store matches on [`Backend`] where
//! it touches rows, so a new backend (PostgreSQL, for several server replicas sharing one
//! store) adds a variant and one arm per operation, and the public API stays as it is.

use std::fmt;
use std::sync::Arc;

use crate::StoreError;
use crate::sqlite::SqliteDb;

/// Where a store's rows live.
#[derive(Clone)]
pub(crate) enum Backend {
    /// An SQLite file (the default, and the original's).
    Sqlite(Arc<SqliteDb>),
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(db) => write!(f, "Sqlite({})", db.path().display()),
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
