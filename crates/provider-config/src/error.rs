//! [`StoreError`]: what can go wrong, with the file, provider or key involved and never a
//! configuration value, credential or key in the message.

use std::fmt;
use std::path::PathBuf;

use credential_crypto::CryptoError;
use private_fs::LocateError;

/// An error of the database engine. Its message comes from the engine and names tables,
/// columns and constraints, never bound values (a PostgreSQL server's `DETAIL`, which can
/// quote a row, is left out).
#[derive(Debug)]
pub struct DatabaseError(pub(crate) Engine);

/// The engine behind a [`DatabaseError`].
#[derive(Debug)]
pub(crate) enum Engine {
    Sqlite(rusqlite::Error),
    #[cfg(feature = "postgres")]
    Postgres(crate::postgres::PgError),
}

impl fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Engine::Sqlite(e) => fmt::Display::fmt(e, f),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for DatabaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Engine::Sqlite(e) => e.source(),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.source(),
        }
    }
}

impl DatabaseError {
    /// Whether the database was locked by another connection for longer than the busy
    /// timeout.
    pub fn is_busy(&self) -> bool {
        match &self.0 {
            Engine::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.is_lock_timeout(),
        }
    }

    /// Whether trying again later may succeed: the database was busy, or the server could
    /// not be reached, went away, restarted or timed out.
    pub fn is_transient(&self) -> bool {
        match &self.0 {
            Engine::Sqlite(_) => self.is_busy(),
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.is_transient(),
        }
    }

    /// Whether a foreign key was violated (a credential of a user the `users` table lacks).
    pub(crate) fn is_foreign_key_violation(&self) -> bool {
        /// SQLite's extended result code for a violated foreign key.
        const SQLITE_CONSTRAINT_FOREIGNKEY: i32 = 787;
        match &self.0 {
            Engine::Sqlite(e) => {
                e.sqlite_extended_error_code() == Some(SQLITE_CONSTRAINT_FOREIGNKEY)
            }
            #[cfg(feature = "postgres")]
            Engine::Postgres(e) => e.is_foreign_key_violation(),
        }
    }
}

/// Where an engine error happened, for its [`StoreError`].
pub(crate) enum Place<'a> {
    /// An SQLite file.
    File(&'a std::path::Path),
    /// A database server, shown without its password.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Server(&'a str),
}

impl crate::rows::TxError {
    /// The store error: the store's own, or the engine's in context.
    pub(crate) fn in_database(self, place: Place<'_>, operation: &'static str) -> StoreError {
        let source = match self {
            Self::Store(e) => return e,
            Self::Sqlite(e) => DatabaseError(Engine::Sqlite(e)),
            #[cfg(feature = "postgres")]
            Self::Postgres(e) => DatabaseError(Engine::Postgres(e)),
        };
        match place {
            Place::File(path) => StoreError::Database {
                path: path.to_owned(),
                operation,
                source,
            },
            Place::Server(server) => StoreError::Server {
                server: server.to_owned(),
                operation,
                source,
            },
        }
    }
}

/// Errors of the configuration store, the credential store and the audit trail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The state directory cannot be determined (no home directory, a variable that is not
    /// UTF-8).
    #[error("cannot locate the state directory: {0}")]
    Locate(#[source] LocateError),
    /// A file or directory operation failed.
    #[error("{}: {operation}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        operation: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The database engine failed.
    #[error("database {}: {operation}: {source}", .path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        operation: &'static str,
        /// The engine's error.
        #[source]
        source: DatabaseError,
    },
    /// The database server failed, could not be reached, or went away.
    /// [`is_transient`](StoreError::is_transient) tells whether trying again may help.
    #[error("database server {server}: {operation}: {source}")]
    Server {
        /// The server and database (`host:port/dbname`, never the password).
        server: String,
        /// What was being done.
        operation: &'static str,
        /// The server's or the connection's error.
        #[source]
        source: DatabaseError,
    },
    /// The configured database needs a backend this build does not have.
    #[error(
        "{setting} names a {backend} database, but this build has no `{feature}` feature; rebuild with it (or unset {setting} to use the embedded SQLite store)"
    )]
    BackendNotCompiled {
        /// The variable or setting that chose the database.
        setting: String,
        /// The backend (`PostgreSQL`).
        backend: &'static str,
        /// The cargo feature that compiles it in.
        feature: &'static str,
    },
    /// A database URL that cannot be used.
    #[error("{setting}: {problem}")]
    InvalidDatabaseUrl {
        /// The variable or setting it came from.
        setting: String,
        /// What is wrong (never the password).
        problem: String,
    },
    /// Copying a store to another was refused (the target holds other data, or a row cannot
    /// be copied exactly); nothing was written.
    #[error("copying the store was refused: {problem}")]
    CopyRefused {
        /// What is wrong.
        problem: String,
    },
    /// The database was written by a newer version of this library.
    #[error(
        "database {}: schema version {found} is newer than this build understands ({supported}); upgrade before using it",
        .path.display()
    )]
    SchemaTooNew {
        /// The database file (or server).
        path: PathBuf,
        /// Its schema version (`PRAGMA user_version`, or the `schema_version` table).
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A stored configuration row is not a JSON object.
    #[error("the stored configuration of provider `{provider}` is not valid JSON: {problem}")]
    InvalidStoredConfig {
        /// The cloud provider whose row is broken.
        provider: String,
        /// What is wrong (position of the syntax error, or the JSON type found).
        problem: String,
    },
    /// A configuration value fails the checks of its key.
    #[error("provider `{provider}`: `{key}` {problem}")]
    InvalidValue {
        /// The cloud provider.
        provider: String,
        /// The configuration key.
        key: String,
        /// What is wrong, without the value.
        problem: String,
    },
    /// A provider name that cannot be stored.
    #[error("invalid cloud provider name {name:?}: {reason}")]
    InvalidProviderName {
        /// The rejected name (escaped, truncated).
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Encrypting, decrypting or loading the credential key failed.
    #[error("{context}: {source}")]
    Crypto {
        /// What was being done (names the row or key, never the value).
        context: String,
        /// The cryptographic error.
        #[source]
        source: CryptoError,
    },
    /// A credential row refers to a user that does not exist in the `users` table.
    #[error("user {user_id} does not exist (the users table has no such id)")]
    UnknownUser {
        /// The user id.
        user_id: i64,
    },
    /// The audit signing key cannot be used.
    #[error("audit key {source_name}: {problem}; it was left untouched")]
    AuditKey {
        /// The variable or file the key came from.
        source_name: String,
        /// What is wrong.
        problem: String,
    },
    /// A database opened for reading only has none of the store's tables yet (nothing was
    /// ever stored there); reading it means "nothing stored".
    #[error("{place}: the store's tables do not exist yet (nothing has been stored there)")]
    Uninitialized {
        /// The database.
        place: String,
    },
    /// The audit chain is broken, so an operation that would hide the evidence was refused.
    #[error(
        "the audit chain is broken at row {id}: {problem}; run `secrets audit verify` and investigate before {operation}"
    )]
    BrokenChain {
        /// The first broken row.
        id: i64,
        /// What is wrong with it.
        problem: String,
        /// What was refused.
        operation: &'static str,
    },
    /// A change was committed but could not be recorded in the audit trail (only for a
    /// store whose trail is in another kind of database, which cannot share its transaction).
    #[error("the change was saved, but recording it in the audit trail failed: {0}")]
    AuditAfterCommit(#[source] Box<StoreError>),
    /// The database files could not be scrubbed of old page images.
    #[error(
        "database {}: {problem}; the rows are re-encrypted, but old copies may remain in the write-ahead log until every other process closes the database: stop them and run the command again",
        .path.display()
    )]
    ScrubIncomplete {
        /// The database file.
        path: PathBuf,
        /// What could not be done.
        problem: String,
    },
}

impl StoreError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        operation: &'static str,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            path: path.into(),
            operation,
            source,
        }
    }

    pub(crate) fn database(
        path: impl Into<PathBuf>,
        operation: &'static str,
        source: rusqlite::Error,
    ) -> Self {
        Self::Database {
            path: path.into(),
            operation,
            source: DatabaseError(Engine::Sqlite(source)),
        }
    }

    pub(crate) fn invalid_value(provider: &str, key: &str, problem: impl Into<String>) -> Self {
        Self::InvalidValue {
            provider: provider.to_owned(),
            key: key.to_owned(),
            problem: problem.into(),
        }
    }

    /// Whether this is a cryptographic failure (a wrong or missing key, a tampered token).
    pub fn is_crypto(&self) -> bool {
        match self {
            Self::Crypto { .. } | Self::AuditKey { .. } => true,
            Self::AuditAfterCommit(inner) => inner.is_crypto(),
            _ => false,
        }
    }

    /// Whether trying again later may succeed: the database was busy, or its server could
    /// not be reached, went away, restarted or timed out. Nothing was changed by the failed
    /// operation (its transaction was rolled back), unless the error is
    /// [`AuditAfterCommit`](StoreError::AuditAfterCommit).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database { source, .. } | Self::Server { source, .. } => source.is_transient(),
            Self::AuditAfterCommit(inner) => inner.is_transient(),
            _ => false,
        }
    }

    /// Whether the input was at fault (an invalid value, name or JSON given by the caller).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::InvalidValue { .. }
                | Self::InvalidProviderName { .. }
                | Self::UnknownUser { .. }
                | Self::InvalidDatabaseUrl { .. }
        )
    }
}
