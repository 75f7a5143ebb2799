//! The row operations every backend implements, so that the stores' logic (validation,
//! sealing, merging, chaining) is written once: a store asks its [`Backend`](crate::backend)
//! for a read or a write transaction and works on the `&dyn Rows` it is given.
//!
//! The statements themselves live with each backend (`sqlite/*_rows.rs`,
//! `postgres/rows.rs`): the original's on SQLite, their equivalents on PostgreSQL.

use rusqlite::types::Value;

use crate::StoreError;
use crate::audit::{AuditFilter, RawRow};
use crate::caches::Invalidation;
use crate::credentials::CredentialInfo;

/// Why an operation in a transaction failed: the engine, or the store's own checks.
pub(crate) enum TxError {
    Sqlite(rusqlite::Error),
    #[cfg(feature = "postgres")]
    Postgres(crate::postgres::PgError),
    Store(StoreError),
}

impl From<rusqlite::Error> for TxError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e)
    }
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// A configuration row for maintenance: the provider and its stored text, or what makes
/// the text unreadable (SQLite: a BLOB, bytes that are not UTF-8).
pub(crate) type StoredConfigRow = (String, Result<String, String>);

/// `provider_config`: one JSON text per cloud provider.
pub(crate) trait ConfigRows {
    /// The stored JSON text of a provider's row.
    fn config_get(&self, provider: &str) -> Result<Option<String>, TxError>;
    /// The same inside a write transaction, locking the provider's row (present or not)
    /// until the transaction ends, so a read-modify-write never races another writer.
    fn config_get_for_update(&self, provider: &str) -> Result<Option<String>, TxError>;
    /// Replaces a provider's row.
    fn config_put(&self, provider: &str, config: &str, updated_at: &str) -> Result<(), TxError>;
    /// Deletes a provider's row; whether there was one.
    fn config_delete(&self, provider: &str) -> Result<bool, TxError>;
    /// Every provider with a row, sorted.
    fn config_list(&self) -> Result<Vec<String>, TxError>;
    /// Every row as (provider, stored JSON), locked for a maintenance rewrite; `Err` with
    /// the problem for a row that is not text (SQLite: a BLOB, invalid UTF-8).
    fn config_all_for_update(&self) -> Result<Vec<StoredConfigRow>, TxError>;
    /// Rewrites a row's JSON in place, keeping its `updated_at` (maintenance).
    fn config_set(&self, provider: &str, config: &str) -> Result<(), TxError>;
    /// Every row as (provider, stored JSON, `updated_at`), for a copy to another store.
    fn config_all_rows(&self) -> Result<Vec<(String, String, String)>, TxError>;
    /// Tells the other processes sharing the database, when this transaction commits, what
    /// it made stale (PostgreSQL: `NOTIFY`; SQLite: nothing, invalidation is in-process).
    fn notify(&self, what: &Invalidation) -> Result<(), TxError>;
}

/// `provider_credentials`: users' credentials, stored encrypted.
pub(crate) trait CredentialRows {
    /// Inserts or replaces (reactivating) a credential; its row id and whether it existed.
    fn credential_upsert(
        &self,
        user_id: i64,
        provider: &str,
        name: &str,
        stored_value: &str,
        now: &str,
    ) -> Result<(i64, bool), TxError>;
    /// The id and stored value of an active credential.
    fn credential_get(
        &self,
        user_id: i64,
        provider: &str,
        name: &str,
    ) -> Result<Option<(i64, String)>, TxError>;
    /// Sets `last_used_at` of an active credential; whether there was one.
    fn credential_mark_used(
        &self,
        user_id: i64,
        provider: &str,
        name: &str,
        now: &str,
    ) -> Result<bool, TxError>;
    /// Deletes a credential; whether there was one.
    fn credential_delete(&self, user_id: i64, provider: &str, name: &str) -> Result<bool, TxError>;
    /// Deactivates a credential; whether there was one.
    fn credential_deactivate(
        &self,
        user_id: i64,
        provider: &str,
        name: &str,
        now: &str,
    ) -> Result<bool, TxError>;
    /// A user's credentials (without values), sorted by provider and name.
    fn credential_list_for_user(
        &self,
        user_id: i64,
        provider: Option<&str>,
        is_encrypted: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<CredentialInfo>, TxError>;
    /// Every row's id and stored value in id order, locked for a maintenance rewrite.
    fn credential_all_for_update(&self) -> Result<Vec<(i64, String)>, TxError>;
    /// Replaces a row's stored value (maintenance: `updated_at` is left alone).
    fn credential_set_value(&self, id: i64, stored_value: &str) -> Result<(), TxError>;
    /// Every row, every column, in id order, for a copy to another store.
    fn credential_all_rows(&self) -> Result<Vec<CredentialRow>, TxError>;
    /// Writes a copied row with its id (replacing the row of that id).
    fn credential_copy(&self, row: &CredentialRow) -> Result<(), TxError>;
    /// Moves the id generator past the largest id (after rows were copied with theirs).
    fn credential_sync_ids(&self) -> Result<(), TxError>;
}

/// Every column of a `provider_credentials` row, the value as stored.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct CredentialRow {
    pub(crate) id: i64,
    pub(crate) user_id: i64,
    pub(crate) provider: String,
    pub(crate) credential_name: String,
    pub(crate) credential_value: String,
    pub(crate) created_at: String,
    pub(crate) updated_at: Option<String>,
    pub(crate) last_used_at: Option<String>,
    pub(crate) is_active: i64,
}

/// The values of one new audit row, before it has an id.
pub(crate) struct NewAuditRow<'a> {
    pub(crate) timestamp: &'a str,
    pub(crate) event_type: &'a str,
    pub(crate) actor_id: Option<i64>,
    pub(crate) actor_username: Option<&'a str>,
    pub(crate) actor_ip: Option<&'a str>,
    pub(crate) target_type: Option<&'a str>,
    pub(crate) target_id: Option<&'a str>,
    pub(crate) action: &'a str,
    pub(crate) details: &'a str,
    pub(crate) previous_hash: &'a str,
    pub(crate) entry_hash: &'a str,
}

/// The chain head marker (`audit_head`, ours): the newest row this library appended, and a
/// MAC over its id and hash, so deleting the newest rows (or all of them) shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuditHead {
    pub(crate) last_id: i64,
    pub(crate) entry_hash: String,
    pub(crate) mac: String,
}

/// `audit_log`, `audit_row_mac` and `audit_head`.
pub(crate) trait AuditRows {
    /// Makes this transaction the only appender until it ends (PostgreSQL: an advisory lock
    /// on the chain head; SQLite: `BEGIN IMMEDIATE` already holds the write lock).
    fn audit_lock_chain(&self) -> Result<(), TxError>;
    /// The entry hash of the newest row, or `genesis`.
    fn audit_last_hash(&self) -> Result<String, TxError>;
    /// The newest row, every column (to check the key before appending).
    fn audit_last_row(&self) -> Result<Option<RawRow>, TxError>;
    /// The chain head marker, when there is one.
    fn audit_head(&self) -> Result<Option<AuditHead>, TxError>;
    /// Replaces the chain head marker.
    fn audit_set_head(&self, head: &AuditHead) -> Result<(), TxError>;
    /// The ids of row MACs whose row is gone, at most `limit`.
    fn audit_orphan_macs(&self, limit: i64) -> Result<Vec<i64>, TxError>;
    /// The largest id ever handed out, where the engine records it transactionally
    /// (SQLite's `sqlite_sequence`); `None` elsewhere (a PostgreSQL sequence also moves
    /// for transactions that roll back, so it proves nothing).
    fn audit_id_high_water(&self) -> Result<Option<i64>, TxError>;
    /// Inserts a row; its id.
    fn audit_insert(&self, row: &NewAuditRow<'_>) -> Result<i64, TxError>;
    /// Stores the MAC over every column of row `id`.
    fn audit_insert_mac(&self, id: i64, mac: &str) -> Result<(), TxError>;
    /// Calls `f` with every row in id order (one consistent snapshot); stops at `f`'s error.
    fn audit_each(&self, f: &mut dyn FnMut(RawRow) -> Result<(), TxError>) -> Result<(), TxError>;
    /// The ids of rows whose stored `entry_hash` is `hash`.
    fn audit_ids_with_hash(&self, hash: &str) -> Result<Vec<i64>, TxError>;
    /// Rows of `event_type` (checkpoints), newest first.
    fn audit_checkpoints(&self, event_type: &str) -> Result<Vec<RawRow>, TxError>;
    /// Rows matching `filter`, newest first.
    fn audit_query(&self, filter: &AuditFilter) -> Result<Vec<RawRow>, TxError>;
    /// The smallest id of a row stamped at or after `cutoff` (text comparison).
    fn audit_first_id_since(&self, cutoff: &str) -> Result<Option<i64>, TxError>;
    /// The newest row before `id` (or the newest row at all), as (id, entry hash).
    fn audit_last_before(&self, id: Option<i64>) -> Result<Option<(i64, Value)>, TxError>;
    /// Deletes every row with an id up to `through` (and their MACs); how many rows went.
    fn audit_delete_through(&self, through: i64) -> Result<u64, TxError>;
    /// How many rows there are.
    fn audit_count(&self) -> Result<i64, TxError>;
    /// Writes a copied row with its id, and its row MAC when it has one.
    fn audit_copy(&self, row: &RawRow) -> Result<(), TxError>;
    /// Moves the id generator past the largest id (after rows were copied with theirs).
    fn audit_sync_ids(&self) -> Result<(), TxError>;
    /// What became of the audit row an outbox row describes.
    fn audit_row_fate(&self, row: &OutboxRow) -> Result<RowFate, TxError>;
    /// The audit rows kept beside the changes of the last write transaction (SQLite:
    /// `audit_outbox` in jobs.db, see `audit::outbox`; PostgreSQL: none, the change and its
    /// row are in one database).
    fn audit_outbox(&self) -> Result<Vec<OutboxRow>, TxError>;
    /// Empties the outbox.
    fn audit_outbox_clear(&self) -> Result<(), TxError>;
    /// Keeps `row` in the outbox until a later write transaction has seen it in the trail.
    fn audit_outbox_add(&self, row: &OutboxRow) -> Result<(), TxError>;
}

/// An audit row as appended in a configuration database's write transaction: enough to
/// recognise it in the trail, and to append its event again when it is not there.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OutboxRow {
    pub(crate) entry_id: i64,
    pub(crate) entry_hash: String,
    /// The hash the row linked to: the row is missing from *this* chain only if its
    /// predecessor is there.
    pub(crate) previous_hash: String,
    pub(crate) timestamp: String,
    pub(crate) event: crate::audit::AuditEvent,
    /// A MAC over the other fields under the trail's row key: a row planted in jobs.db by
    /// someone without the key is never signed into the chain.
    pub(crate) mac: String,
}

/// What became of an appended audit row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowFate {
    /// The row is in the trail, or a row appended again for it (`recovered_from`).
    Stored,
    /// Its id was handed out but the row is gone (a cleanup removed it, or removed the
    /// row of another writer that took its id).
    Removed,
    /// The trail never committed it: its id was never used, or was used again by another
    /// row, and its predecessor is in the trail.
    Lost,
    /// Not of this chain: its predecessor is not in the trail (audit.db was replaced by
    /// another trail, or by a backup older than the row's predecessor).
    Foreign,
}

/// Everything a store may touch in one transaction.
pub(crate) trait Rows: ConfigRows + CredentialRows + AuditRows {}

impl<T: ConfigRows + CredentialRows + AuditRows> Rows for T {}
