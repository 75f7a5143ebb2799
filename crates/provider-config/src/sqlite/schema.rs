//! The tables, as the original server creates them, and the migrations (`PRAGMA
//! user_version`, which the original does not use). Migrations only create what is missing
//! and add columns the way the original's own migrations do, so the original keeps reading
//! every table.

use rusqlite::Transaction;

use super::Schema;

/// `cloud/jobs.db`: provider configuration and provider credentials.
pub(crate) const JOBS_DB: Schema = Schema {
    migrations: &[jobs_v1, jobs_v2],
};

/// `audit.db`: the audit chain and the per-row MACs of rows written here.
pub(crate) const AUDIT_DB: Schema = Schema {
    migrations: &[audit_v1, audit_v2],
};

/// The original's `provider_credentials` table (auth/stores/credential_store.py). Its foreign
/// key needs the original's `users` table: with `foreign_keys = ON` every insert into a table
/// whose parent table is missing fails, so without a `users` table the key is left out.
const CREDENTIALS_TABLE: &str = "
    CREATE TABLE IF NOT EXISTS provider_credentials (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id INTEGER NOT NULL,
        provider TEXT NOT NULL,
        credential_name TEXT NOT NULL,
        credential_value TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT,
        last_used_at TEXT,
        is_active INTEGER NOT NULL DEFAULT 1,
        FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE,
        UNIQUE(user_id, provider, credential_name)
    )";

fn table_exists(tx: &Transaction<'_>, name: &str) -> rusqlite::Result<bool> {
    tx.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |row| row.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

fn jobs_v1(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    // storage/provider_config_store.py
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS provider_config (
            provider TEXT PRIMARY KEY,
            config TEXT NOT NULL DEFAULT '{}',
            updated_at TEXT NOT NULL
        )",
    )?;
    if !table_exists(tx, "provider_credentials")? {
        if table_exists(tx, "users")? {
            tx.execute_batch(CREDENTIALS_TABLE)?;
        } else {
            let without_users = CREDENTIALS_TABLE.replace(
                "FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE,",
                "",
            );
            tx.execute_batch(&without_users)?;
        }
    }
    // The columns the original's user_store.py migration adds to older tables.
    let mut existing = Vec::new();
    {
        let mut stmt = tx.prepare("SELECT name FROM pragma_table_info('provider_credentials')")?;
        let names = stmt.query_map([], |row| row.get::<_, String>(0))?;
        for name in names {
            existing.push(name?);
        }
    }
    for (column, definition) in [
        ("credential_value", "TEXT NOT NULL DEFAULT ''"),
        ("created_at", "TEXT NOT NULL DEFAULT ''"),
        ("updated_at", "TEXT"),
        ("last_used_at", "TEXT"),
        ("is_active", "INTEGER NOT NULL DEFAULT 1"),
    ] {
        if !existing.iter().any(|c| c == column) {
            tx.execute_batch(&format!(
                "ALTER TABLE provider_credentials ADD COLUMN {column} {definition}"
            ))?;
        }
    }
    tx.execute_batch(
        "CREATE INDEX IF NOT EXISTS idx_provider_creds_user ON provider_credentials(user_id);
         CREATE INDEX IF NOT EXISTS idx_provider_creds_provider ON provider_credentials(provider);",
    )
}

fn jobs_v2(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    // Ours: the audit rows of the last write transaction, committed with their change so a
    // crash between the commits of jobs.db and the attached audit.db loses no row (see
    // `audit::outbox`). The original never reads it.
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS audit_outbox (
            entry_id INTEGER PRIMARY KEY,
            entry_hash TEXT NOT NULL,
            previous_hash TEXT NOT NULL,
            timestamp TEXT NOT NULL,
            event_type TEXT NOT NULL,
            action TEXT NOT NULL,
            actor_id INTEGER,
            actor_username TEXT,
            actor_ip TEXT,
            target_type TEXT,
            target_id TEXT,
            details TEXT NOT NULL,
            mac TEXT NOT NULL
        );",
    )
}

fn audit_v1(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    // audit.py, AuditStore._init_db
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            timestamp TEXT NOT NULL,
            event_type TEXT NOT NULL,
            actor_id INTEGER,
            actor_username TEXT,
            actor_ip TEXT,
            target_type TEXT,
            target_id TEXT,
            action TEXT NOT NULL,
            details TEXT NOT NULL DEFAULT '{}',
            previous_hash TEXT NOT NULL,
            entry_hash TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS idx_audit_timestamp ON audit_log(timestamp);
        CREATE INDEX IF NOT EXISTS idx_audit_event_type ON audit_log(event_type);
        CREATE INDEX IF NOT EXISTS idx_audit_actor ON audit_log(actor_id);
        CREATE INDEX IF NOT EXISTS idx_audit_target ON audit_log(target_type, target_id);
        -- Ours: a MAC over every column of each row written here. A side table, so the
        -- original's readers (SELECT * and named columns) and writers never see it.
        CREATE TABLE IF NOT EXISTS audit_row_mac (
            entry_id INTEGER PRIMARY KEY,
            mac TEXT NOT NULL
        );",
    )
}

fn audit_v2(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    // Ours: the chain head marker (one row), which the original never reads.
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS audit_head (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            last_id INTEGER NOT NULL,
            entry_hash TEXT NOT NULL,
            mac TEXT NOT NULL
        );",
    )
}
