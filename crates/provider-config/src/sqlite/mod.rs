//! The SQLite backend: private database files, the original's pragmas, versioned
//! migrations, a small connection pool, and write transactions that take the write lock
//! up front (`BEGIN IMMEDIATE`), so a read-modify-write never races another process.

pub(crate) mod audit_outbox;
pub(crate) mod audit_rows;
pub(crate) mod config_rows;
pub(crate) mod credential_rows;
mod rows;
pub(crate) mod schema;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::StoreError;
use crate::error::Place;
pub(crate) use crate::rows::TxError;

/// As the original: `sqlite3.connect(timeout=30.0)` and `PRAGMA busy_timeout = 30000`.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per database.
const MAX_IDLE_CONNECTIONS: usize = 4;

/// The tables of one database file and how to bring an older file up to date.
pub(crate) struct Schema {
    /// `migrations[i]` takes `PRAGMA user_version` from `i` to `i + 1`.
    pub(crate) migrations: &'static [fn(&Transaction<'_>) -> rusqlite::Result<()>],
}

/// One SQLite database file.
#[derive(Debug)]
pub(crate) struct SqliteDb {
    path: PathBuf,
    /// The audit database attached to every connection as `audit`, so that a change and
    /// its audit row are written in one transaction.
    attached: Option<PathBuf>,
    /// Opened for reading only: no file is created, no schema migrated, nothing written.
    read_only: bool,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteDb {
    /// Opens (creating when missing) the database at `path` and migrates it to `schema`.
    /// The directory is created 0700 and the database, its write-ahead log and its
    /// shared-memory file 0600.
    pub(crate) fn open(path: &Path, schema: &Schema) -> Result<Self, StoreError> {
        Self::open_with(path, schema, None)
    }

    /// [`open`](Self::open), attaching the audit database `audit` (already created and
    /// migrated by its trail) to every connection. Not attached when the database itself
    /// has tables of the audit database's names, which would hide the attached ones.
    pub(crate) fn open_attached(
        path: &Path,
        schema: &Schema,
        audit: &Path,
    ) -> Result<Self, StoreError> {
        Self::open_with(path, schema, Some(audit))
    }

    fn open_with(path: &Path, schema: &Schema, audit: Option<&Path>) -> Result<Self, StoreError> {
        let mut db = Self {
            path: path.to_owned(),
            attached: None,
            read_only: false,
            idle: Mutex::new(Vec::new()),
        };
        if path.parent().is_some_and(Path::exists) {
            warn_about_location(path);
        }
        // One connection for the set-up, kept in the pool: a connection opened and closed
        // at once would, as the last one of its process, checkpoint and remove the
        // write-ahead log under the feet of other processes starting at the same time.
        let mut conn = db.connect()?;
        migrate(&mut conn, schema).map_err(|e| db.error("migrating the schema", e))?;
        if let Some(audit) = audit {
            let clash: i64 = conn
                .query_row(
                    "SELECT count(*) FROM main.sqlite_master
                     WHERE name IN ('audit_log', 'audit_row_mac', 'audit_head')",
                    [],
                    |row| row.get(0),
                )
                .map_err(|e| StoreError::database(path, "checking table names", e))?;
            if clash > 0 || audit.to_str().is_none() {
                tracing::warn!(
                    path = %path.display(),
                    audit = %audit.display(),
                    "the configuration database has audit tables of its own, or the audit database's path is not UTF-8 (SQLite cannot attach it); audit rows are appended after each change instead of in its transaction"
                );
            } else {
                db.attached = Some(audit.to_owned());
                db.attach(&conn)?;
            }
        }
        db.give_back(conn);
        Ok(db)
    }

    /// Attaches the audit database to `conn` as `audit`.
    fn attach(&self, conn: &Connection) -> Result<(), StoreError> {
        let Some(audit) = &self.attached else {
            return Ok(());
        };
        let name = audit.to_str().ok_or_else(|| {
            StoreError::io(
                audit,
                "attaching the audit database",
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path is not UTF-8"),
            )
        })?;
        let fail = |operation, e| StoreError::database(audit, operation, e);
        conn.execute("ATTACH DATABASE ?1 AS audit", [name])
            .map_err(|e| fail("attaching the audit database", e))?;
        // Its trail opened it in WAL mode already (persistent).
        conn.execute_batch("PRAGMA audit.synchronous = NORMAL;")
            .map_err(|e| fail("setting pragmas", e))
    }

    /// Opens an existing database for reading only: nothing is created or migrated (a
    /// database of a newer version is still refused), so reading works on a read-only file
    /// or directory and never changes the database. Tables an older version lacks read as
    /// empty where the store allows it.
    pub(crate) fn open_read_only(path: &Path, schema: &Schema) -> Result<Self, StoreError> {
        let db = Self {
            path: path.to_owned(),
            attached: None,
            read_only: true,
            idle: Mutex::new(Vec::new()),
        };
        warn_about_location(path);
        if let Ok(meta) = fs::metadata(path) {
            private_fs::warn_if_unsafe(path, &meta, "database file");
        }
        let conn = db.connect()?;
        let supported = i64::try_from(schema.migrations.len()).unwrap_or(i64::MAX);
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|e| StoreError::database(path, "reading the schema version", e))?;
        if version > supported {
            return Err(StoreError::SchemaTooNew {
                path: path.to_owned(),
                found: version,
                supported,
            });
        }
        // A file with no table at all: its first writer was killed before the schema's
        // transaction committed (or it was created empty). Nothing was ever stored there.
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM main.sqlite_master WHERE type = 'table'",
                [],
                |row| row.get(0),
            )
            .map_err(|e| StoreError::database(path, "reading the schema", e))?;
        if version == 0 && tables == 0 {
            return Err(StoreError::Uninitialized {
                place: path.display().to_string(),
            });
        }
        db.give_back(conn);
        Ok(db)
    }

    /// A read-only connection. Without a `-wal` file, no connection has the database open
    /// (SQLite creates the log when a connection opens it in WAL mode, and removes it when
    /// the last one closes), so it is opened as immutable: SQLite then creates no
    /// shared-memory or log file, which a read-only directory would not allow and a
    /// reading command must not leave behind. With a log, it is opened read-only normally,
    /// reading the log (SQLite can do so with an existing shared-memory file it cannot
    /// write).
    fn connect_read_only(&self) -> Result<Connection, StoreError> {
        let fail = |operation, e| StoreError::database(&self.path, operation, e);
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let [wal, _] = companion_paths(&self.path);
        let conn = if wal.exists() {
            Connection::open_with_flags(&self.path, flags)
        } else {
            // Fails when the file is missing (nothing is created).
            fs::metadata(&self.path).map_err(|e| StoreError::io(&self.path, "opening", e))?;
            let uri = format!("file:{}?immutable=1", uri_path(&self.path));
            Connection::open_with_flags(&uri, flags | OpenFlags::SQLITE_OPEN_URI)
        }
        .map_err(|e| fail("opening for reading", e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| fail("setting the busy timeout", e))?;
        // An audit database the original wrote has no `audit_row_mac` (the first write here
        // creates it): an empty one in this connection's temporary schema lets the queries
        // run, without writing the file. Never when the file has one: it would hide it.
        let lacks_row_macs: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM main.sqlite_master WHERE name = 'audit_log')
                    AND NOT EXISTS (SELECT 1 FROM main.sqlite_master WHERE name = 'audit_row_mac')",
                [],
                |row| row.get(0),
            )
            .map_err(|e| fail("reading the schema", e))?;
        if lacks_row_macs {
            conn.execute_batch(
                "CREATE TEMP TABLE audit_row_mac (entry_id INTEGER PRIMARY KEY, mac TEXT NOT NULL)",
            )
            .map_err(|e| fail("preparing to read", e))?;
        }
        Ok(conn)
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The audit database attached to every connection.
    pub(crate) fn attached(&self) -> Option<&Path> {
        self.attached.as_deref()
    }

    /// A new connection with the original's pragmas.
    pub(crate) fn connect(&self) -> Result<Connection, StoreError> {
        if self.read_only {
            return self.connect_read_only();
        }
        prepare_files(&self.path)?;
        let fail = |operation, e| StoreError::database(&self.path, operation, e);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(&self.path, flags).map_err(|e| fail("opening", e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| fail("setting the busy timeout", e))?;
        // secure_delete (ours): what a write frees (a replaced or deleted row, such as the
        // original's plaintext `webhook_secret`) is zeroed, not left in free space. It is
        // also the default of databases attached later. Cost: within measurement noise.
        conn.execute_batch(
            "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA secure_delete = ON;",
        )
        .map_err(|e| fail("setting pragmas", e))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(|e| fail("switching to write-ahead logging", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(
                path = %self.path.display(),
                mode,
                "the database did not switch to write-ahead logging"
            );
        }
        self.attach(&conn)?;
        Ok(conn)
    }

    fn take(&self) -> Result<Connection, StoreError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle {
            Some(conn) => Ok(conn),
            None => self.connect(),
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_CONNECTIONS {
            idle.push(conn);
        }
    }

    /// Runs `f` on a pooled connection. A connection whose operation failed is closed
    /// rather than reused.
    pub(crate) fn read<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Connection) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        let conn = self.take()?;
        let result = f(&conn);
        match result {
            Ok(value) => {
                self.give_back(conn);
                Ok(value)
            }
            Err(e) => Err(self.error(operation, e)),
        }
    }

    /// Runs `f` in a write transaction begun with `BEGIN IMMEDIATE` (the write lock is
    /// taken before anything is read, waiting up to the busy timeout for other writers);
    /// commits when `f` succeeds, rolls back otherwise.
    pub(crate) fn write<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, TxError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.take()?;
        let result = write_on(&mut conn, f);
        match result {
            Ok(value) => {
                self.give_back(conn);
                Ok(value)
            }
            Err(e) => Err(self.error(operation, e)),
        }
    }

    /// Runs `f` in an immediate transaction on a connection of its own with `secure_delete`
    /// on (what the updates free is zeroed), then rewrites the database without free pages
    /// (`VACUUM`: it must not share a connection with pooled statements) and empties the
    /// write-ahead log; whether the log could be emptied (another process may keep it in
    /// use).
    pub(crate) fn rewrite_scrubbing<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, TxError>,
    ) -> Result<(T, bool), StoreError> {
        let mut conn = self.connect()?;
        conn.execute_batch("PRAGMA secure_delete = ON; PRAGMA temp_store = MEMORY;")
            .map_err(|e| StoreError::database(&self.path, "enabling secure_delete", e))?;
        let value = write_on(&mut conn, f).map_err(|e| self.error(operation, e))?;
        let scrubbed = scrub(&conn, &self.path)?;
        Ok((value, scrubbed))
    }

    pub(crate) fn error(&self, operation: &'static str, e: TxError) -> StoreError {
        e.in_database(Place::File(&self.path), operation)
    }
}

/// `f` in an immediate transaction on `conn`.
pub(crate) fn write_on<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, TxError>,
) -> Result<T, TxError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let value = f(&tx)?;
    tx.commit()?;
    Ok(value)
}

fn migrate(conn: &mut Connection, schema: &Schema) -> Result<(), TxError> {
    let supported = i64::try_from(schema.migrations.len()).unwrap_or(i64::MAX);
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version == supported {
        return Ok(());
    }
    let path = conn.path().map(PathBuf::from).unwrap_or_default();
    let too_new = |found| {
        TxError::Store(StoreError::SchemaTooNew {
            path: path.clone(),
            found,
            supported,
        })
    };
    if version > supported {
        return Err(too_new(version));
    }
    write_on(conn, |tx| {
        // Another process may have migrated while this one waited for the lock.
        let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if version > supported {
            return Err(too_new(version));
        }
        let from = usize::try_from(version.max(0)).unwrap_or(0);
        for step in &schema.migrations[from..] {
            step(tx)?;
        }
        tx.execute_batch(&format!("PRAGMA user_version = {supported}"))?;
        Ok(())
    })
}

/// Rewrites the database without free pages and empties the write-ahead log. `false` when
/// another process kept the log in use.
fn scrub(conn: &Connection, path: &Path) -> Result<bool, StoreError> {
    conn.execute_batch("VACUUM")
        .map_err(|e| StoreError::database(path, "rewriting the database (VACUUM)", e))?;
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
        .map_err(|e| StoreError::database(path, "emptying the write-ahead log", e))?;
    if busy != 0 {
        tracing::warn!(
            path = %path.display(),
            "the write-ahead log could not be emptied: another process is using the database"
        );
    }
    Ok(busy == 0)
}

/// A path for an SQLite `file:` URI: every byte that is not unreserved percent-encoded.
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The companion files SQLite creates beside a database in WAL mode.
pub(crate) fn companion_paths(db: &Path) -> [PathBuf; 2] {
    let with_suffix = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [with_suffix("-wal"), with_suffix("-shm")]
}

/// Creates the directory 0700 and the database, `-wal` and `-shm` files 0600 before SQLite
/// opens them, so none of them ever exists with wider permissions (SQLite would otherwise
/// create them with the process umask's mode). Existing files are left as they are, with a
/// warning when others can read them.
fn prepare_files(db: &Path) -> Result<(), StoreError> {
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_fs::create_private_dir(dir)
            .map_err(|e| StoreError::io(dir, "creating the directory", e))?;
    }
    create_private(db, false)?;
    // SQLite names its companion files after the resolved database path.
    let resolved = fs::canonicalize(db).map_err(|e| StoreError::io(db, "resolving", e))?;
    for companion in companion_paths(&resolved) {
        create_private(&companion, true)?;
    }
    Ok(())
}

/// Warns about what could expose or redirect the database: a symbolic link at its path
/// (followed: the data lives where it points), and a directory others can list or enter
/// (the original creates `cloud/` with the umask's mode, often 0755). The file's own mode
/// and owner are checked where it is opened.
pub(crate) fn warn_about_location(db: &Path) {
    if let Ok(meta) = fs::symlink_metadata(db)
        && meta.file_type().is_symlink()
    {
        let target = fs::read_link(db).unwrap_or_default();
        tracing::warn!(
            path = %db.display(),
            target = %target.display(),
            "the database file is a symbolic link, which is followed: the data lives at its target; replace the link with the file if that is not intended"
        );
    }
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(meta) = fs::metadata(dir)
        && private_fs::is_exposed(&meta)
    {
        tracing::warn!(
            path = %dir.display(),
            "the directory of the database file is accessible by group or others; run chmod 700 on it"
        );
    }
}

fn create_private(path: &Path, refuse_symlink: bool) -> Result<(), StoreError> {
    let mut options = private_fs::private_options();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    if refuse_symlink {
        use std::os::unix::fs::OpenOptionsExt;
        // A link planted at a companion path cannot redirect the creation.
        options.custom_flags(libc::O_NOFOLLOW);
    }
    #[cfg(not(unix))]
    let _ = refuse_symlink;
    let file = options
        .open(path)
        .map_err(|e| StoreError::io(path, "creating privately", e))?;
    if let Ok(meta) = file.metadata() {
        if refuse_symlink {
            private_fs::warn_if_exposed(path, &meta, "database file");
        } else {
            // Mode, owner, and a directory others could replace it in.
            private_fs::warn_if_unsafe(path, &meta, "database file");
        }
    }
    Ok(())
}
