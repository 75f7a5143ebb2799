//! The tamper-evident audit trail: the original's `audit_log` table in `<state>/audit.db`,
//! its HMAC chain, and a second MAC over every column of the rows written here.
//!
//! - **The chain** (the original's formula): `entry_hash` = hex HMAC-SHA256 of
//!   `"{timestamp}|{event_type}|{actor_id}|{action}|{details}|{previous_hash}"` (Python's
//!   `str()` of each column, so a missing actor id is `None`); `previous_hash` is the
//!   previous row's `entry_hash`, `genesis` for the first. A chain the original wrote
//!   verifies here and rows appended here verify with the original's code.
//! - **Row MACs** (ours): the original's hash leaves out the actor's name and IP and the
//!   target. Rows written here carry an HMAC over every column (id included) in the side
//!   table `audit_row_mac`, which the original never reads; their `details` say so
//!   (`"_row_mac": 1`, covered by the chain hash), so removing a row MAC is detected too.
//! - **Appending** reads the previous hash and inserts in one transaction that holds the
//!   chain's lock (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: an advisory lock on the chain
//!   head), so concurrent writers (threads, processes or replicas) never fork the chain.
//! - **Cleanup** removes the oldest rows and appends a signed checkpoint row naming the
//!   first kept row and the hash it links to, so the rest still verifies.

mod key;
mod outbox;
pub(crate) mod verify;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use ring::hmac;
use rusqlite::types::Value;
use serde::Serialize;
use serde_json::{Map, Value as Json};

pub use key::{AuditKey, AuditKeyOrigin};
pub use verify::{BrokenLink, ChainReport, LinkError, Tampering};

use crate::backend::{Backend, Tables, unblock};
use crate::rows::{AuditHead, AuditRows, NewAuditRow, TxError};
use crate::{StoreError, StoreLocation, StoreSettings, Timestamp};

/// Event type of configuration changes.
pub const PROVIDER_CONFIGURED: &str = "provider.configured";
/// Event type of a credential stored (created or replaced).
pub const CREDENTIAL_CREATED: &str = "credential.created";
/// Event type of a credential deleted or deactivated.
pub const CREDENTIAL_DELETED: &str = "credential.deleted";
/// Event type of bulk changes to stored credentials (encryption, key rotation).
pub const CONFIG_CHANGED: &str = "config.changed";
/// Event type of the checkpoint row that [`AuditTrail::cleanup`] appends.
pub const CHECKPOINT: &str = "audit.checkpoint";

/// The `details` key that marks a row carrying a row MAC.
const ROW_MAC_MARKER: &str = "_row_mac";
/// The newest row-MAC format.
const ROW_MAC_VERSION: i64 = 1;
/// The `details` key that marks a row appended together with the chain head marker
/// (`audit_head`): once such a row exists, the marker must too.
const HEAD_MARKER: &str = "_head";

/// Who made a change, as far as it is known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// The user's id in the server's `users` table.
    pub id: Option<i64>,
    /// A name for display.
    pub username: Option<String>,
    /// The client's address.
    pub ip: Option<String>,
}

impl Actor {
    /// Nobody known.
    pub fn unknown() -> Self {
        Self::default()
    }

    /// An actor known only by name (for example the operating-system user of a CLI).
    pub fn named(username: impl Into<String>) -> Self {
        Self {
            username: Some(username.into()),
            ..Self::default()
        }
    }
}

/// An event to record. `details` must never hold a secret value: name the keys that
/// changed, not their values.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// Category, for example [`PROVIDER_CONFIGURED`].
    pub event_type: String,
    /// Human-readable description.
    pub action: String,
    /// Who did it.
    pub actor: Actor,
    /// Kind of the affected resource (`provider`, `credential`, ...).
    pub target_type: Option<String>,
    /// Id of the affected resource.
    pub target_id: Option<String>,
    /// Structured data (a JSON object).
    pub details: Map<String, Json>,
}

impl AuditEvent {
    /// An event with an action and nothing else.
    pub fn new(event_type: impl Into<String>, action: impl Into<String>) -> Self {
        Self {
            event_type: event_type.into(),
            action: action.into(),
            actor: Actor::default(),
            target_type: None,
            target_id: None,
            details: Map::new(),
        }
    }

    /// Sets who did it.
    pub fn actor(mut self, actor: Actor) -> Self {
        self.actor = actor;
        self
    }

    /// Sets the affected resource.
    pub fn target(mut self, target_type: impl Into<String>, target_id: impl Into<String>) -> Self {
        self.target_type = Some(target_type.into());
        self.target_id = Some(target_id.into());
        self
    }

    /// Adds a detail.
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<Json>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }
}

/// One stored row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Row id (ascending with time).
    pub id: i64,
    /// When (UTC, ISO-8601 as stored).
    pub timestamp: String,
    /// Category.
    pub event_type: String,
    /// The actor's user id.
    pub actor_id: Option<i64>,
    /// The actor's name.
    pub actor_username: Option<String>,
    /// The actor's address.
    pub actor_ip: Option<String>,
    /// Kind of the affected resource.
    pub target_type: Option<String>,
    /// Id of the affected resource.
    pub target_id: Option<String>,
    /// Human-readable description.
    pub action: String,
    /// Structured data (the stored text when it is not JSON).
    pub details: Json,
    /// The previous row's hash.
    pub previous_hash: String,
    /// This row's hash.
    pub entry_hash: String,
    /// Whether the row carries a MAC over every column (written by this library).
    pub row_mac: bool,
}

/// Which rows [`AuditTrail::list`] returns (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    /// Any of these event types (all when empty).
    pub event_types: Vec<String>,
    /// Only this actor id.
    pub actor_id: Option<i64>,
    /// Only this actor name.
    pub actor_username: Option<String>,
    /// Only this kind of target.
    pub target_type: Option<String>,
    /// Only this target id.
    pub target_id: Option<String>,
    /// Only rows at or after this time.
    pub since: Option<Timestamp>,
    /// Only rows at or before this time.
    pub until: Option<Timestamp>,
    /// At most this many rows (the original's default: 100).
    pub limit: u64,
    /// Skip this many of the newest matching rows.
    pub offset: u64,
}

impl Default for AuditFilter {
    fn default() -> Self {
        Self {
            event_types: Vec::new(),
            actor_id: None,
            actor_username: None,
            target_type: None,
            target_id: None,
            since: None,
            until: None,
            limit: 100,
            offset: 0,
        }
    }
}

/// What [`AuditTrail::cleanup`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CleanupReport {
    /// Rows removed.
    pub removed: u64,
    /// The checkpoint row appended (none when nothing was removed).
    pub checkpoint_id: Option<i64>,
}

/// A row as read from the database, every column as stored.
#[derive(Debug, Clone)]
pub(crate) struct RawRow {
    pub(crate) id: i64,
    pub(crate) timestamp: Value,
    pub(crate) event_type: Value,
    pub(crate) actor_id: Value,
    pub(crate) actor_username: Value,
    pub(crate) actor_ip: Value,
    pub(crate) target_type: Value,
    pub(crate) target_id: Value,
    pub(crate) action: Value,
    pub(crate) details: Value,
    pub(crate) previous_hash: Value,
    pub(crate) entry_hash: Value,
    pub(crate) row_mac: Option<String>,
}

/// Rows in an audit database.
fn count_rows(location: &StoreLocation) -> Result<i64, StoreError> {
    Backend::open(location, Tables::Audit)?.read("counting audit rows", |rows| rows.audit_count())
}

/// Python's `str()` of a column value as `sqlite3` returns it: `None` for NULL.
pub(crate) fn python_str(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Integer(i) => i.to_string(),
        Value::Real(r) if r.is_finite() && r.fract() == 0.0 && r.abs() < 1e16 => format!("{r:.1}"),
        Value::Real(r) => r.to_string(),
        Value::Text(t) => t.clone(),
        Value::Blob(b) => format!("b'{}'", b.escape_ascii()),
    }
}

/// The MAC of the chain head marker: the newest row's id and entry hash.
pub(crate) fn head_mac(key: &hmac::Key, last_id: i64, entry_hash: &str) -> String {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(b"audit_head v1\0");
    ctx.update(&last_id.to_be_bytes());
    ctx.update(&(entry_hash.len() as u64).to_be_bytes());
    ctx.update(entry_hash.as_bytes());
    hex(ctx.sign().as_ref())
}

impl AuditKeyOrigin {
    /// Where the key came from, for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Environment(var) => format!("the variable {var}"),
            Self::File(path) => format!("the key file {}", path.display()),
            Self::Generated(path) => format!("the newly generated key file {}", path.display()),
            Self::Given => "the key given by the caller".to_owned(),
        }
    }
}

fn text_or_none(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        other => Some(python_str(other)),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Equality of two strings in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The original's entry hash of a row's columns.
pub(crate) fn entry_hash(
    key: &hmac::Key,
    timestamp: &str,
    event_type: &str,
    actor_id: &str,
    action: &str,
    details: &str,
    previous_hash: &str,
) -> String {
    let data = format!("{timestamp}|{event_type}|{actor_id}|{action}|{details}|{previous_hash}");
    hex(hmac::sign(key, data.as_bytes()).as_ref())
}

/// The MAC over every column of a row: each value tagged with its type and its length, so
/// no two different rows encode alike.
fn row_mac(key: &hmac::Key, row: &RawRow) -> String {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(b"audit_log row v1\0");
    let mut put = |value: &Value| match value {
        Value::Null => ctx.update(&[0]),
        Value::Integer(i) => {
            ctx.update(&[1]);
            ctx.update(&i.to_be_bytes());
        }
        Value::Real(r) => {
            ctx.update(&[2]);
            ctx.update(&r.to_bits().to_be_bytes());
        }
        Value::Text(t) => {
            ctx.update(&[3]);
            ctx.update(&(t.len() as u64).to_be_bytes());
            ctx.update(t.as_bytes());
        }
        Value::Blob(b) => {
            ctx.update(&[4]);
            ctx.update(&(b.len() as u64).to_be_bytes());
            ctx.update(b);
        }
    };
    put(&Value::Integer(row.id));
    for value in [
        &row.timestamp,
        &row.event_type,
        &row.actor_id,
        &row.actor_username,
        &row.actor_ip,
        &row.target_type,
        &row.target_id,
        &row.action,
        &row.details,
        &row.previous_hash,
        &row.entry_hash,
    ] {
        put(value);
    }
    hex(ctx.sign().as_ref())
}

impl RawRow {
    fn computed_entry_hash(&self, key: &hmac::Key) -> String {
        entry_hash(
            key,
            &python_str(&self.timestamp),
            &python_str(&self.event_type),
            &python_str(&self.actor_id),
            &python_str(&self.action),
            &python_str(&self.details),
            &python_str(&self.previous_hash),
        )
    }

    fn details_json(&self) -> Option<Map<String, Json>> {
        match &self.details {
            Value::Text(t) => serde_json::from_str::<Map<String, Json>>(t).ok(),
            _ => None,
        }
    }

    /// Whether the row says it carries a row MAC (in its hashed `details`).
    fn claims_row_mac(&self) -> bool {
        self.details_json()
            .and_then(|d| d.get(ROW_MAC_MARKER).and_then(Json::as_i64))
            .is_some()
    }

    /// Whether the row says it was appended with the chain head marker.
    fn claims_head(&self) -> bool {
        self.details_json()
            .and_then(|d| d.get(HEAD_MARKER).and_then(Json::as_i64))
            .is_some()
    }

    fn into_entry(self) -> AuditEntry {
        let details = match &self.details {
            Value::Text(t) => serde_json::from_str(t).unwrap_or_else(|_| Json::String(t.clone())),
            other => Json::String(python_str(other)),
        };
        let mut details = details;
        if let Some(map) = details.as_object_mut() {
            map.remove(ROW_MAC_MARKER);
            map.remove(HEAD_MARKER);
        }
        AuditEntry {
            id: self.id,
            timestamp: python_str(&self.timestamp),
            event_type: python_str(&self.event_type),
            actor_id: match self.actor_id {
                Value::Integer(i) => Some(i),
                _ => None,
            },
            actor_username: text_or_none(&self.actor_username),
            actor_ip: text_or_none(&self.actor_ip),
            target_type: text_or_none(&self.target_type),
            target_id: text_or_none(&self.target_id),
            action: python_str(&self.action),
            details,
            previous_hash: python_str(&self.previous_hash),
            entry_hash: python_str(&self.entry_hash),
            row_mac: self.row_mac.is_some(),
        }
    }
}

/// A row just appended.
pub(crate) struct Appended {
    id: i64,
    entry_hash: String,
    previous_hash: String,
    timestamp: String,
}

struct TrailInner {
    backend: Backend,
    chain_key: hmac::Key,
    row_key: hmac::Key,
    origin: AuditKeyOrigin,
}

/// The audit trail. Cheap to clone; every method has a blocking and an `_async` form (the
/// latter runs the database work on tokio's blocking pool).
///
/// ```
/// use provider_config::{AuditEvent, AuditKey, AuditTrail, PROVIDER_CONFIGURED};
///
/// let dir = tempfile::tempdir().unwrap();
/// let key = AuditKey::from_bytes(b"example key".to_vec()).unwrap();
/// let trail = AuditTrail::open_path(&dir.path().join("audit.db"), key).unwrap();
/// trail.append(&AuditEvent::new(PROVIDER_CONFIGURED, "configured replicate")
///     .target("provider", "replicate")
///     .detail("changed_keys", vec!["webhook_url"])).unwrap();
/// let report = trail.verify().unwrap();
/// assert!(report.valid);
/// assert_eq!(report.entries_checked, 1);
/// ```
#[derive(Clone)]
pub struct AuditTrail {
    inner: Arc<TrailInner>,
}

impl fmt::Debug for AuditTrail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditTrail")
            .field("backend", &self.inner.backend)
            .field("key", &self.inner.origin)
            .finish()
    }
}

impl AuditTrail {
    /// The trail of `settings` (`<state>/audit.db`) with its key. A key is generated only
    /// for a trail without rows: when the key of an existing chain is missing, a new one
    /// would sign a second chain that never verifies with the first, so that is an error.
    ///
    /// On PostgreSQL (`<APP>_DATABASE_URL`), the key must exist (the variable or the key
    /// file): every replica appends to one chain, so they all need the same key, and a key
    /// generated on one of them would be unknown to the others.
    pub fn open(settings: &StoreSettings) -> Result<Self, StoreError> {
        let location = settings.audit_location();
        if let Some(key) = AuditKey::load_existing(settings)? {
            return Self::open_at(&location, key);
        }
        let var = settings.app.var(crate::settings::AUDIT_KEY_VAR_SUFFIX);
        if let StoreLocation::Postgres(url) = &location {
            return Err(StoreError::AuditKey {
                source_name: settings.audit_key_file.display().to_string(),
                problem: format!(
                    "there is no audit key, and the audit trail is in the shared database {url}: set {var} (the same key on every replica) or install the key file; a key generated here would be unknown to the other replicas"
                ),
            });
        }
        if settings.audit_db.exists() {
            let rows = count_rows(&location)?;
            if rows > 0 {
                return Err(StoreError::AuditKey {
                    source_name: settings.audit_key_file.display().to_string(),
                    problem: format!(
                        "the key file is missing and the audit trail {} has {rows} rows signed with a key; restore the key file or set {var}",
                        settings.audit_db.display()
                    ),
                });
            }
        }
        Self::open_at(&location, AuditKey::load(settings)?)
    }

    /// The trail in an SQLite file, created when missing.
    pub fn open_path(path: &Path, key: AuditKey) -> Result<Self, StoreError> {
        Self::open_at(&StoreLocation::Sqlite(path.to_owned()), key)
    }

    /// The trail at `location` (an SQLite file, or a PostgreSQL database shared by several
    /// processes, which all append to one chain).
    pub fn open_at(location: &StoreLocation, key: AuditKey) -> Result<Self, StoreError> {
        let backend = Backend::open(location, Tables::Audit)?;
        Ok(Self {
            inner: Arc::new(TrailInner {
                backend,
                chain_key: key.chain_key(),
                row_key: key.row_key(),
                origin: key.origin().clone(),
            }),
        })
    }

    /// The trail at `location` opened for reading only (listing, verifying): nothing is
    /// created or migrated and appending fails, so it works on a read-only file, directory
    /// or database role and never changes the database.
    pub fn open_read_only(location: &StoreLocation, key: AuditKey) -> Result<Self, StoreError> {
        let backend = Backend::open_read_only(location, Tables::Audit)?;
        Ok(Self {
            inner: Arc::new(TrailInner {
                backend,
                chain_key: key.chain_key(),
                row_key: key.row_key(),
                origin: key.origin().clone(),
            }),
        })
    }

    /// Appends an event; the new row's id.
    pub fn append(&self, event: &AuditEvent) -> Result<i64, StoreError> {
        self.inner
            .backend
            .write("appending to the audit trail", |tx| {
                tx.audit_lock_chain()?;
                Ok(self.append_in(tx, event, None, None)?.id)
            })
    }

    /// Appends an event in `tx`, a write transaction of another store on the same database
    /// (PostgreSQL) or on a connection that has this trail's file attached (SQLite), so the
    /// change and its audit row commit or roll back together. At most one event per
    /// transaction: the row is also kept in the store's outbox (SQLite), which this call
    /// first settles, see [`outbox`].
    pub(crate) fn append_in_tx(
        &self,
        tx: &dyn AuditRows,
        event: &AuditEvent,
    ) -> Result<i64, TxError> {
        tx.audit_lock_chain()?;
        self.settle_outbox(tx)?;
        let appended = self.append_in(tx, event, None, None)?;
        let id = appended.id;
        tx.audit_outbox_add(&self.outbox_row(appended, event.clone()))?;
        Ok(id)
    }

    /// Whether this trail is in the database of `backend` (PostgreSQL) or attached to its
    /// connections (SQLite), so a store on `backend` can append in its own transactions.
    pub(crate) fn shares_transactions_with(&self, backend: &Backend) -> bool {
        backend.has_audit_of(&self.inner.backend)
    }

    /// The database the trail is in.
    pub(crate) fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// The trail's SQLite file, if it is one.
    pub(crate) fn sqlite_path(&self) -> Option<&Path> {
        match &self.inner.backend {
            Backend::Sqlite(db) => Some(db.path()),
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => None,
        }
    }

    /// The newest row's entry hash, after checking that the row verifies under this trail's
    /// key: a row appended under another key would never verify, so that is refused before
    /// anything is written.
    fn checked_last_hash(&self, tx: &dyn AuditRows) -> Result<String, TxError> {
        let Some(last) = tx.audit_last_row()? else {
            return Ok("genesis".to_owned());
        };
        let hash_ok = verify::hash_ok(&last, &self.inner.chain_key);
        let mac_ok = verify::row_mac_ok(&last, &self.inner.row_key) != Some(false);
        if !(hash_ok && mac_ok) {
            return Err(TxError::Store(StoreError::AuditKey {
                source_name: self.inner.origin.describe(),
                problem: format!(
                    "wrong audit key: the newest audit row ({}) does not verify under it, so a row appended now could never be verified; nothing was written (if this is the right key, that row was modified: run `secrets audit verify`)",
                    last.id
                ),
            }));
        }
        Ok(python_str(&last.entry_hash))
    }

    /// [`append`](Self::append) without blocking the runtime.
    pub async fn append_async(&self, event: AuditEvent) -> Result<i64, StoreError> {
        let trail = self.clone();
        unblock(move || trail.append(&event)).await
    }

    /// Appends a row in `tx`, which holds the chain lock, stamped `timestamp` (now when
    /// `None`).
    fn append_in(
        &self,
        tx: &dyn AuditRows,
        event: &AuditEvent,
        previous_hash: Option<String>,
        timestamp: Option<&str>,
    ) -> Result<Appended, TxError> {
        let previous_hash = match previous_hash {
            Some(hash) => hash,
            None => self.checked_last_hash(tx)?,
        };
        let timestamp = timestamp.map_or_else(|| Timestamp::now().to_string(), str::to_owned);
        let mut details = event.details.clone();
        details.insert(ROW_MAC_MARKER.to_owned(), Json::from(ROW_MAC_VERSION));
        details.insert(HEAD_MARKER.to_owned(), Json::from(1));
        let details = Json::Object(details).to_string();
        let actor_id = event
            .actor
            .id
            .map_or_else(|| "None".to_owned(), |id| id.to_string());
        let hash = entry_hash(
            &self.inner.chain_key,
            &timestamp,
            &event.event_type,
            &actor_id,
            &event.action,
            &details,
            &previous_hash,
        );
        let new = NewAuditRow {
            timestamp: &timestamp,
            event_type: &event.event_type,
            actor_id: event.actor.id,
            actor_username: event.actor.username.as_deref(),
            actor_ip: event.actor.ip.as_deref(),
            target_type: event.target_type.as_deref(),
            target_id: event.target_id.as_deref(),
            action: &event.action,
            details: &details,
            previous_hash: &previous_hash,
            entry_hash: &hash,
        };
        let id = tx.audit_insert(&new)?;
        let text = |s: &str| Value::Text(s.to_owned());
        let opt = |s: Option<&str>| s.map_or(Value::Null, text);
        let stored = RawRow {
            id,
            timestamp: text(&timestamp),
            event_type: text(&event.event_type),
            actor_id: event.actor.id.map_or(Value::Null, Value::Integer),
            actor_username: opt(new.actor_username),
            actor_ip: opt(new.actor_ip),
            target_type: opt(new.target_type),
            target_id: opt(new.target_id),
            action: text(&event.action),
            details: text(&details),
            previous_hash: text(&previous_hash),
            entry_hash: text(&hash),
            row_mac: None,
        };
        tx.audit_insert_mac(id, &row_mac(&self.inner.row_key, &stored))?;
        tx.audit_set_head(&AuditHead {
            last_id: id,
            mac: head_mac(&self.inner.row_key, id, &hash),
            entry_hash: hash.clone(),
        })?;
        Ok(Appended {
            id,
            entry_hash: hash,
            previous_hash,
            timestamp,
        })
    }

    /// Rows matching `filter`, newest first.
    pub fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = self
            .inner
            .backend
            .read("listing the audit trail", |rows| rows.audit_query(filter))?;
        Ok(rows.into_iter().map(RawRow::into_entry).collect())
    }

    /// [`list`](Self::list) without blocking the runtime.
    pub async fn list_async(&self, filter: AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let trail = self.clone();
        unblock(move || trail.list(&filter)).await
    }

    /// Checks every row: its link to the previous row, its entry hash and, for rows written
    /// here, its row MAC. See [`ChainReport`].
    pub fn verify(&self) -> Result<ChainReport, StoreError> {
        self.inner
            .backend
            .read_snapshot("verifying the audit trail", |rows| {
                verify::verify(rows, &self.inner.chain_key, &self.inner.row_key)
            })
    }

    /// [`verify`](Self::verify) without blocking the runtime.
    pub async fn verify_async(&self) -> Result<ChainReport, StoreError> {
        let trail = self.clone();
        unblock(move || trail.verify()).await
    }

    /// Removes rows older than `max_age_days` (the oldest rows only, so the rest stays one
    /// unbroken chain) and appends a signed checkpoint row that lets the rest verify. A
    /// broken chain is never cleaned up: that would delete the evidence.
    pub fn cleanup(&self, max_age_days: u32) -> Result<CleanupReport, StoreError> {
        self.cleanup_before(Timestamp::now().minus_days(max_age_days))
    }

    /// [`cleanup`](Self::cleanup) without blocking the runtime.
    pub async fn cleanup_async(&self, max_age_days: u32) -> Result<CleanupReport, StoreError> {
        let trail = self.clone();
        unblock(move || trail.cleanup(max_age_days)).await
    }

    /// Removes the rows before the first one stamped at or after `cutoff`; see
    /// [`cleanup`](Self::cleanup).
    pub fn cleanup_before(&self, cutoff: Timestamp) -> Result<CleanupReport, StoreError> {
        self.inner
            .backend
            .write("cleaning up the audit trail", |tx| {
                tx.audit_lock_chain()?;
                let report = verify::verify(tx, &self.inner.chain_key, &self.inner.row_key)?;
                if let Some(problem) = report.broken_links.first() {
                    return Err(TxError::Store(StoreError::BrokenChain {
                        id: problem.id,
                        problem: problem.message.clone(),
                        operation: "cleaning up",
                    }));
                }
                let first_kept = tx.audit_first_id_since(&cutoff.to_string())?;
                let Some((last_removed, anchor)) = tx.audit_last_before(first_kept)? else {
                    return Ok(CleanupReport {
                        removed: 0,
                        checkpoint_id: None,
                    });
                };
                // The checkpoint continues the chain from the newest row, which may be removed.
                let previous_hash = tx.audit_last_hash()?;
                let removed = tx.audit_delete_through(last_removed)?;
                let event = AuditEvent::new(
                    CHECKPOINT,
                    format!("removed {removed} audit entries stamped before {cutoff}"),
                )
                .target("audit_log", last_removed.to_string())
                .detail("removed", removed)
                .detail("removed_through_id", last_removed)
                .detail("first_kept_id", first_kept.map_or(Json::Null, Json::from))
                .detail("anchor_hash", python_str(&anchor));
                let checkpoint = self.append_in(tx, &event, Some(previous_hash), None)?.id;
                Ok(CleanupReport {
                    removed,
                    checkpoint_id: Some(checkpoint),
                })
            })
    }

    /// Where the signing key came from.
    pub fn key_origin(&self) -> &AuditKeyOrigin {
        &self.inner.origin
    }
}
