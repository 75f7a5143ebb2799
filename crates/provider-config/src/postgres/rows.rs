//! The row traits on a pooled PostgreSQL connection: the SQLite statements' equivalents,
//! with the locks PostgreSQL needs where SQLite's `BEGIN IMMEDIATE` held the whole
//! database, and the `NOTIFY` that tells the other replicas what changed.

use std::cell::{Cell, RefCell};

use deadpool_postgres::{Object, Pool};
use rusqlite::types::Value;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{CHANNEL, LOCK_CLASS, PgError, wait};
use crate::StoreError;
use crate::audit::{AuditFilter, RawRow, python_str};
use crate::caches::Invalidation;
use crate::credentials::CredentialInfo;
use crate::rows::{
    AuditHead, AuditRows, ConfigRows, CredentialRow, CredentialRows, NewAuditRow, OutboxRow,
    RowFate, TxError,
};

/// An audit row whose column cannot be kept exactly in PostgreSQL's typed column.
fn copy_error(id: i64, column: &str) -> TxError {
    TxError::Store(StoreError::CopyRefused {
        problem: format!(
            "audit row {id}: column `{column}` holds a value of a type the PostgreSQL column cannot keep exactly, so the chain would no longer verify"
        ),
    })
}

/// Second advisory-lock key of the audit chain head (providers use `hashtext(name)`, whose
/// rare collision with it only serialises two writers for a moment).
const CHAIN_LOCK: i32 = 0;

/// Rows read per round trip while verifying the chain.
const AUDIT_PAGE: i64 = 1000;

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

/// A pooled connection, remembering whether it may be broken.
pub(crate) struct PgRows<'a> {
    /// `None` only after a stale connection was given up and no other could be had.
    client: RefCell<Option<Object>>,
    /// Where a replacement comes from when the pooled connection turns out closed.
    pool: &'a Pool,
    /// Names the store in the notifications it sends.
    origin: &'a str,
    broken: Cell<bool>,
    /// Whether a statement has been sent on this connection (after which nothing is
    /// retried: the session may hold a transaction's state).
    used: Cell<bool>,
}

impl<'a> PgRows<'a> {
    pub(crate) fn new(client: Object, pool: &'a Pool, origin: &'a str) -> Self {
        Self {
            client: RefCell::new(Some(client)),
            pool,
            origin,
            broken: Cell::new(false),
            used: Cell::new(false),
        }
    }

    /// The connection, for the pool to take back (or close when broken); `None` afterwards.
    pub(crate) fn take_client(&self) -> Option<Object> {
        // `try_`: also called while a panic unwinds, when a second panic would abort.
        self.client
            .try_borrow_mut()
            .ok()
            .and_then(|mut client| client.take())
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.broken.get()
    }

    pub(crate) fn mark_broken(&self) {
        self.broken.set(true);
    }

    /// Runs `op` on the connection. A pooled connection can have been closed by the
    /// server or the network while it sat idle, before its connection task noticed (so
    /// the pool's check passed): when the first statement finds the connection closed,
    /// nothing of it ran, and it is sent again on another connection.
    fn run<T>(&self, op: impl Fn(&Object) -> Result<T, PgError>) -> Result<T, TxError> {
        let first = !self.used.replace(true);
        let mut result = self.on_client(&op);
        if first {
            // Every idle connection may be stale; a new one is never retried.
            for _ in 0..=super::POOL_SIZE {
                let recycled = self
                    .client
                    .borrow()
                    .as_ref()
                    .is_some_and(|client| Object::metrics(client).recycle_count > 0);
                if !(recycled && matches!(&result, Err(e) if e.is_closed_connection())) {
                    break;
                }
                // Given up before asking for another: a held object keeps its pool slot,
                // and calls that each held one while waiting would fill the pool and wait
                // for each other until the timeout.
                if let Some(stale) = self.client.borrow_mut().take() {
                    drop(Object::take(stale));
                }
                let fresh = self.check(super::runtime().and_then(|runtime| {
                    // As `PgDb::client`: the pool's timers and tasks belong to that runtime.
                    let _context = runtime.enter();
                    wait(self.pool.get()).and_then(|r| r.map_err(PgError::from))
                }))?;
                *self.client.borrow_mut() = Some(fresh);
                tracing::debug!(
                    "a pooled PostgreSQL connection was closed while idle; the statement was sent on another"
                );
                result = self.on_client(&op);
            }
        }
        self.check(result)
    }

    fn on_client<T>(&self, op: &impl Fn(&Object) -> Result<T, PgError>) -> Result<T, PgError> {
        match self.client.borrow().as_ref() {
            Some(client) => op(client),
            None => Err(PgError::Unavailable("no connection")),
        }
    }

    fn check<T>(&self, result: Result<T, PgError>) -> Result<T, TxError> {
        result.map_err(|e| {
            if e.breaks_connection() {
                self.mark_broken();
            }
            TxError::Postgres(e)
        })
    }

    /// Runs statements without parameters (`BEGIN`, `COMMIT`, `VACUUM`...).
    pub(crate) fn batch(&self, sql: &str) -> Result<(), TxError> {
        self.run(|client| wait(client.batch_execute(sql)).and_then(|r| r.map_err(PgError::from)))
    }

    fn statement(client: &Object, sql: &str) -> Result<tokio_postgres::Statement, PgError> {
        wait(client.prepare_cached(sql)).and_then(|r| r.map_err(PgError::from))
    }

    fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, TxError> {
        self.run(|client| {
            let statement = Self::statement(client, sql)?;
            wait(client.query(&statement, params)).and_then(|r| r.map_err(PgError::from))
        })
    }

    fn query_opt(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>, TxError> {
        self.run(|client| {
            let statement = Self::statement(client, sql)?;
            wait(client.query_opt(&statement, params)).and_then(|r| r.map_err(PgError::from))
        })
    }

    fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, TxError> {
        self.run(|client| {
            let statement = Self::statement(client, sql)?;
            wait(client.execute(&statement, params)).and_then(|r| r.map_err(PgError::from))
        })
    }

    /// A column of a row (a type mismatch is the schema's fault: an error, not a panic).
    fn get<'r, T: tokio_postgres::types::FromSql<'r>>(
        &self,
        row: &'r Row,
        index: usize,
    ) -> Result<T, TxError> {
        row.try_get(index)
            .map_err(|e| TxError::Postgres(PgError::from(e)))
    }
}

impl PgRows<'_> {
    /// The version recorded in `provider_config_schema` (0 when none).
    /// Whether a table exists (in the search path).
    pub(crate) fn table_exists(&self, table: &str) -> Result<bool, TxError> {
        Ok(self
            .query_opt("SELECT to_regclass($1) IS NOT NULL", &[&table])?
            .map(|row| self.get::<bool>(&row, 0))
            .transpose()?
            .unwrap_or(false))
    }

    pub(crate) fn schema_version(&self) -> Result<i64, TxError> {
        Ok(self
            .query_opt("SELECT max(version) FROM provider_config_schema", &[])?
            .map(|row| self.get::<Option<i64>>(&row, 0))
            .transpose()?
            .flatten()
            .unwrap_or(0))
    }
}

impl ConfigRows for PgRows<'_> {
    fn config_get(&self, provider: &str) -> Result<Option<String>, TxError> {
        self.query_opt(
            "SELECT config FROM provider_config WHERE provider = $1",
            &[&provider],
        )?
        .map(|row| self.get(&row, 0))
        .transpose()
    }

    fn config_get_for_update(&self, provider: &str) -> Result<Option<String>, TxError> {
        // The advisory lock covers a provider without a row (two first writes would
        // otherwise both insert); FOR UPDATE waits for a maintenance rewrite of the row.
        self.execute(
            &format!("SELECT pg_advisory_xact_lock({LOCK_CLASS}, hashtext($1))"),
            &[&provider],
        )?;
        self.query_opt(
            "SELECT config FROM provider_config WHERE provider = $1 FOR UPDATE",
            &[&provider],
        )?
        .map(|row| self.get(&row, 0))
        .transpose()
    }

    fn config_put(&self, provider: &str, config: &str, updated_at: &str) -> Result<(), TxError> {
        self.execute(
            "INSERT INTO provider_config (provider, config, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (provider) DO UPDATE
             SET config = EXCLUDED.config, updated_at = EXCLUDED.updated_at",
            &[&provider, &config, &updated_at],
        )?;
        Ok(())
    }

    fn config_delete(&self, provider: &str) -> Result<bool, TxError> {
        Ok(self.execute(
            "DELETE FROM provider_config WHERE provider = $1",
            &[&provider],
        )? > 0)
    }

    fn config_list(&self) -> Result<Vec<String>, TxError> {
        // Byte order, as SQLite sorts.
        self.query(
            "SELECT provider FROM provider_config ORDER BY provider COLLATE \"C\"",
            &[],
        )?
        .iter()
        .map(|row| self.get(row, 0))
        .collect()
    }

    // PostgreSQL's text is always valid text: every row reads.
    fn config_all_for_update(&self) -> Result<Vec<crate::rows::StoredConfigRow>, TxError> {
        self.query(
            "SELECT provider, config FROM provider_config ORDER BY provider COLLATE \"C\" FOR UPDATE",
            &[],
        )?
        .iter()
        .map(|row| Ok((self.get(row, 0)?, Ok(self.get(row, 1)?))))
        .collect()
    }

    fn config_set(&self, provider: &str, config: &str) -> Result<(), TxError> {
        self.execute(
            "UPDATE provider_config SET config = $2 WHERE provider = $1",
            &[&provider, &config],
        )?;
        Ok(())
    }

    fn config_all_rows(&self) -> Result<Vec<(String, String, String)>, TxError> {
        self.query(
            "SELECT provider, config, updated_at FROM provider_config ORDER BY provider COLLATE \"C\"",
            &[],
        )?
        .iter()
        .map(|row| Ok((self.get(row, 0)?, self.get(row, 1)?, self.get(row, 2)?)))
        .collect()
    }

    fn notify(&self, what: &Invalidation) -> Result<(), TxError> {
        let payload = super::listener::payload(self.origin, what);
        self.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])?;
        Ok(())
    }
}

impl CredentialRows for PgRows<'_> {
    fn credential_upsert(
        &self,
        user_id: i64,
        provider: &str,
        name: &str,
        stored_value: &str,
        now: &str,
    ) -> Result<(i64, bool), TxError> {
        let existed = self
            .query_opt(
                "SELECT id FROM provider_credentials
                 WHERE user_id = $1 AND provider = $2 AND credential_name = $3 FOR UPDATE",
                &[&user_id, &provider, &name],
            )?
            .is_some();
        let row = self
            .query_opt(
                "INSERT INTO provider_credentials
                 (user_id, provider, credential_name, credential_value, created_at, is_active)
                 VALUES ($1, $2, $3, $4, $5, 1)
                 ON CONFLICT (user_id, provider, credential_name) DO UPDATE SET
                     credential_value = EXCLUDED.credential_value,
                     updated_at = $5,
                     is_active = 1
                 RETURNING id",
                &[&user_id, &provider, &name, &stored_value, &now],
            )?
            .ok_or_else(|| TxError::Postgres(PgError::Unavailable("the upsert returned no id")))?;
        Ok((self.get(&row, 0)?, existed))
    }

    fn credential_get(
        &self,
        user_id: i64,
        provider: &str,
        name: &str,
    ) -> Result<Option<(i64, String)>, TxError> {
        self.query_opt(
            "SELECT id, credential_value FROM provider_credentials
             WHERE user_id = $1 AND provider = $2 AND credential_name = $3 AND is_active = 1",
            &[&user_id, &provider, &name],
        )?
        .map(|row| Ok((self.get(&row, 0)?, self.get(&row, 1)?)))
        .transpose()
    }

    fn credential_mark_used(
        &self,
        user_id: i64,
        provider: &str,
        name: &str,
        now: &str,
    ) -> Result<bool, TxError> {
        Ok(self.execute(
            "UPDATE provider_credentials SET last_used_at = $4
             WHERE user_id = $1 AND provider = $2 AND credential_name = $3 AND is_active = 1",
            &[&user_id, &provider, &name, &now],
        )? > 0)
    }

    fn credential_delete(&self, user_id: i64, provider: &str, name: &str) -> Result<bool, TxError> {
        Ok(self.execute(
            "DELETE FROM provider_credentials
             WHERE user_id = $1 AND provider = $2 AND credential_name = $3",
            &[&user_id, &provider, &name],
        )? > 0)
    }

    fn credential_deactivate(
        &self,
        user_id: i64,
        provider: &str,
        name: &str,
        now: &str,
    ) -> Result<bool, TxError> {
        Ok(self.execute(
            "UPDATE provider_credentials SET is_active = 0, updated_at = $4
             WHERE user_id = $1 AND provider = $2 AND credential_name = $3",
            &[&user_id, &provider, &name, &now],
        )? > 0)
    }

    fn credential_list_for_user(
        &self,
        user_id: i64,
        provider: Option<&str>,
        is_encrypted: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<CredentialInfo>, TxError> {
        self.query(
            "SELECT id, user_id, provider, credential_name, created_at, updated_at, last_used_at,
                    is_active, credential_value
             FROM provider_credentials
             WHERE user_id = $1 AND ($2::text IS NULL OR provider = $2)
             ORDER BY provider COLLATE \"C\", credential_name COLLATE \"C\"",
            &[&user_id, &provider],
        )?
        .iter()
        .map(|row| {
            let value: String = self.get(row, 8)?;
            Ok(CredentialInfo {
                id: self.get(row, 0)?,
                user_id: self.get(row, 1)?,
                provider: self.get(row, 2)?,
                credential_name: self.get(row, 3)?,
                created_at: self.get(row, 4)?,
                updated_at: self.get(row, 5)?,
                last_used_at: self.get(row, 6)?,
                is_active: self.get::<i32>(row, 7)? != 0,
                encrypted: is_encrypted(&value),
            })
        })
        .collect()
    }

    fn credential_all_for_update(&self) -> Result<Vec<(i64, String)>, TxError> {
        self.query(
            "SELECT id, credential_value FROM provider_credentials ORDER BY id FOR UPDATE",
            &[],
        )?
        .iter()
        .map(|row| Ok((self.get(row, 0)?, self.get(row, 1)?)))
        .collect()
    }

    fn credential_set_value(&self, id: i64, stored_value: &str) -> Result<(), TxError> {
        self.execute(
            "UPDATE provider_credentials SET credential_value = $2 WHERE id = $1",
            &[&id, &stored_value],
        )?;
        Ok(())
    }

    fn credential_all_rows(&self) -> Result<Vec<CredentialRow>, TxError> {
        self.query(
            "SELECT id, user_id, provider, credential_name, credential_value, created_at,
                    updated_at, last_used_at, is_active
             FROM provider_credentials ORDER BY id",
            &[],
        )?
        .iter()
        .map(|row| {
            Ok(CredentialRow {
                id: self.get(row, 0)?,
                user_id: self.get(row, 1)?,
                provider: self.get(row, 2)?,
                credential_name: self.get(row, 3)?,
                credential_value: self.get(row, 4)?,
                created_at: self.get(row, 5)?,
                updated_at: self.get(row, 6)?,
                last_used_at: self.get(row, 7)?,
                is_active: i64::from(self.get::<i32>(row, 8)?),
            })
        })
        .collect()
    }

    fn credential_copy(&self, row: &CredentialRow) -> Result<(), TxError> {
        let is_active = i32::try_from(row.is_active).unwrap_or(1);
        self.execute(
            "INSERT INTO provider_credentials
             (id, user_id, provider, credential_name, credential_value, created_at, updated_at,
              last_used_at, is_active)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (id) DO UPDATE SET
                 user_id = EXCLUDED.user_id, provider = EXCLUDED.provider,
                 credential_name = EXCLUDED.credential_name,
                 credential_value = EXCLUDED.credential_value,
                 created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
                 last_used_at = EXCLUDED.last_used_at, is_active = EXCLUDED.is_active",
            &[
                &row.id,
                &row.user_id,
                &row.provider,
                &row.credential_name,
                &row.credential_value,
                &row.created_at,
                &row.updated_at,
                &row.last_used_at,
                &is_active,
            ],
        )?;
        Ok(())
    }

    fn credential_sync_ids(&self) -> Result<(), TxError> {
        self.batch(
            "SELECT setval(pg_get_serial_sequence('provider_credentials', 'id'),
                           GREATEST((SELECT max(id) FROM provider_credentials), 1))",
        )
    }
}

/// The columns of `audit_log` and the row MAC, in the order [`raw_row`] reads them.
const AUDIT_COLUMNS: &str = "a.id, a.timestamp, a.event_type, a.actor_id, a.actor_username, \
     a.actor_ip, a.target_type, a.target_id, a.action, a.details, a.previous_hash, \
     a.entry_hash, m.mac";

impl PgRows<'_> {
    fn raw_row(&self, row: &Row) -> Result<RawRow, TxError> {
        let text = |i: usize| -> Result<Value, TxError> {
            Ok(self
                .get::<Option<String>>(row, i)?
                .map_or(Value::Null, Value::Text))
        };
        Ok(RawRow {
            id: self.get(row, 0)?,
            timestamp: text(1)?,
            event_type: text(2)?,
            actor_id: self
                .get::<Option<i64>>(row, 3)?
                .map_or(Value::Null, Value::Integer),
            actor_username: text(4)?,
            actor_ip: text(5)?,
            target_type: text(6)?,
            target_id: text(7)?,
            action: text(8)?,
            details: text(9)?,
            previous_hash: text(10)?,
            entry_hash: text(11)?,
            row_mac: self.get(row, 12)?,
        })
    }

    fn raw_rows(&self, sql: &str, params: Params<'_>) -> Result<Vec<RawRow>, TxError> {
        self.query(sql, params)?
            .iter()
            .map(|row| self.raw_row(row))
            .collect()
    }
}

impl AuditRows for PgRows<'_> {
    fn audit_lock_chain(&self) -> Result<(), TxError> {
        self.execute(
            &format!("SELECT pg_advisory_xact_lock({LOCK_CLASS}, {CHAIN_LOCK})"),
            &[],
        )?;
        Ok(())
    }

    fn audit_last_hash(&self) -> Result<String, TxError> {
        Ok(self
            .query_opt(
                "SELECT entry_hash FROM audit_log ORDER BY id DESC LIMIT 1",
                &[],
            )?
            .map(|row| self.get(&row, 0))
            .transpose()?
            .unwrap_or_else(|| "genesis".to_owned()))
    }

    fn audit_last_row(&self) -> Result<Option<RawRow>, TxError> {
        Ok(self
            .raw_rows(
                &format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log a
                     LEFT JOIN audit_row_mac m ON m.entry_id = a.id ORDER BY a.id DESC LIMIT 1"
                ),
                &[],
            )?
            .pop())
    }

    fn audit_head(&self) -> Result<Option<AuditHead>, TxError> {
        // A database of an older version, opened for reading only: no marker yet.
        if !self.table_exists("audit_head")? {
            return Ok(None);
        }
        self.query_opt(
            "SELECT last_id, entry_hash, mac FROM audit_head WHERE id = 1",
            &[],
        )?
        .map(|row| {
            Ok(AuditHead {
                last_id: self.get(&row, 0)?,
                entry_hash: self.get(&row, 1)?,
                mac: self.get(&row, 2)?,
            })
        })
        .transpose()
    }

    fn audit_set_head(&self, head: &AuditHead) -> Result<(), TxError> {
        self.execute(
            "INSERT INTO audit_head (id, last_id, entry_hash, mac) VALUES (1, $1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET last_id = EXCLUDED.last_id,
                 entry_hash = EXCLUDED.entry_hash, mac = EXCLUDED.mac",
            &[&head.last_id, &head.entry_hash, &head.mac],
        )?;
        Ok(())
    }

    fn audit_orphan_macs(&self, limit: i64) -> Result<Vec<i64>, TxError> {
        self.query(
            "SELECT m.entry_id FROM audit_row_mac m
             WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.id = m.entry_id)
             ORDER BY m.entry_id LIMIT $1",
            &[&limit],
        )?
        .iter()
        .map(|row| self.get(row, 0))
        .collect()
    }

    fn audit_id_high_water(&self) -> Result<Option<i64>, TxError> {
        Ok(None)
    }

    fn audit_insert(&self, row: &NewAuditRow<'_>) -> Result<i64, TxError> {
        let inserted = self
            .query_opt(
                "INSERT INTO audit_log (
                    timestamp, event_type, actor_id, actor_username, actor_ip,
                    target_type, target_id, action, details, previous_hash, entry_hash
                ) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                &[
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
                ],
            )?
            .ok_or_else(|| TxError::Postgres(PgError::Unavailable("the insert returned no id")))?;
        self.get(&inserted, 0)
    }

    fn audit_insert_mac(&self, id: i64, mac: &str) -> Result<(), TxError> {
        self.execute(
            "INSERT INTO audit_row_mac (entry_id, mac) VALUES ($1, $2)
             ON CONFLICT (entry_id) DO UPDATE SET mac = EXCLUDED.mac",
            &[&id, &mac],
        )?;
        Ok(())
    }

    fn audit_each(&self, f: &mut dyn FnMut(RawRow) -> Result<(), TxError>) -> Result<(), TxError> {
        // Pages by id: bounded memory, one snapshot when run in one (verify runs in a
        // repeatable-read transaction).
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log a
             LEFT JOIN audit_row_mac m ON m.entry_id = a.id
             WHERE a.id > $1 ORDER BY a.id LIMIT $2"
        );
        let mut after = i64::MIN;
        loop {
            let page = self.raw_rows(&sql, &[&after, &AUDIT_PAGE])?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.id;
            let full = page.len() as i64 == AUDIT_PAGE;
            for row in page {
                f(row)?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn audit_ids_with_hash(&self, hash: &str) -> Result<Vec<i64>, TxError> {
        self.query(
            "SELECT id FROM audit_log WHERE entry_hash = $1 ORDER BY id",
            &[&hash],
        )?
        .iter()
        .map(|row| self.get(row, 0))
        .collect()
    }

    fn audit_checkpoints(&self, event_type: &str) -> Result<Vec<RawRow>, TxError> {
        self.raw_rows(
            &format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log a
                 LEFT JOIN audit_row_mac m ON m.entry_id = a.id
                 WHERE a.event_type = $1 ORDER BY a.id DESC"
            ),
            &[&event_type],
        )
    }

    fn audit_query(&self, filter: &AuditFilter) -> Result<Vec<RawRow>, TxError> {
        let mut sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log a
             LEFT JOIN audit_row_mac m ON m.entry_id = a.id WHERE TRUE"
        );
        let since = filter.since.map(|t| t.to_string());
        let until = filter.until.map(|t| t.to_string());
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
        let mut clauses: Vec<&str> = Vec::new();
        if !filter.event_types.is_empty() {
            params.push(&filter.event_types);
            clauses.push(" AND a.event_type = ANY(?)");
        }
        if let Some(id) = &filter.actor_id {
            params.push(id);
            clauses.push(" AND a.actor_id = ?");
        }
        if let Some(name) = &filter.actor_username {
            params.push(name);
            clauses.push(" AND a.actor_username = ?");
        }
        if let Some(target_type) = &filter.target_type {
            params.push(target_type);
            clauses.push(" AND a.target_type = ?");
        }
        if let Some(target_id) = &filter.target_id {
            params.push(target_id);
            clauses.push(" AND a.target_id = ?");
        }
        if let Some(since) = &since {
            params.push(since);
            clauses.push(" AND a.timestamp >= ?");
        }
        if let Some(until) = &until {
            params.push(until);
            clauses.push(" AND a.timestamp <= ?");
        }
        params.push(&limit);
        clauses.push(" ORDER BY a.id DESC LIMIT ?");
        params.push(&offset);
        clauses.push(" OFFSET ?");
        for (n, clause) in clauses.iter().enumerate() {
            sql.push_str(&clause.replace('?', &format!("${}", n + 1)));
        }
        self.raw_rows(&sql, &params)
    }

    fn audit_first_id_since(&self, cutoff: &str) -> Result<Option<i64>, TxError> {
        let row = self
            .query_opt(
                "SELECT MIN(id) FROM audit_log WHERE timestamp >= $1",
                &[&cutoff],
            )?
            .ok_or_else(|| TxError::Postgres(PgError::Unavailable("MIN returned no row")))?;
        self.get(&row, 0)
    }

    fn audit_last_before(&self, id: Option<i64>) -> Result<Option<(i64, Value)>, TxError> {
        self.query_opt(
            "SELECT id, entry_hash FROM audit_log WHERE ($1::bigint IS NULL OR id < $1)
             ORDER BY id DESC LIMIT 1",
            &[&id],
        )?
        .map(|row| Ok((self.get(&row, 0)?, Value::Text(self.get(&row, 1)?))))
        .transpose()
    }

    fn audit_delete_through(&self, through: i64) -> Result<u64, TxError> {
        let removed = self.execute("DELETE FROM audit_log WHERE id <= $1", &[&through])?;
        self.execute(
            "DELETE FROM audit_row_mac WHERE entry_id <= $1",
            &[&through],
        )?;
        Ok(removed)
    }

    fn audit_copy(&self, row: &RawRow) -> Result<(), TxError> {
        let text = |column: &str, value: &Value| -> Result<Option<String>, TxError> {
            Ok(match value {
                Value::Null => None,
                Value::Text(t) => Some(t.clone()),
                // Another type in a text column: its text is what the chain hashed (rows
                // of the original's format carry no row MAC, which would tell types apart).
                other if row.row_mac.is_none() => Some(python_str(other)),
                _ => return Err(copy_error(row.id, column)),
            })
        };
        let required = |column: &str, value: &Value| -> Result<String, TxError> {
            text(column, value)?.ok_or_else(|| copy_error(row.id, column))
        };
        let actor_id = match &row.actor_id {
            Value::Null => None,
            Value::Integer(i) => Some(*i),
            Value::Text(t)
                if row.row_mac.is_none() && t.parse::<i64>().is_ok_and(|i| i.to_string() == *t) =>
            {
                t.parse::<i64>().ok()
            }
            _ => return Err(copy_error(row.id, "actor_id")),
        };
        self.execute(
            "INSERT INTO audit_log (
                id, timestamp, event_type, actor_id, actor_username, actor_ip,
                target_type, target_id, action, details, previous_hash, entry_hash
            ) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            &[
                &row.id,
                &required("timestamp", &row.timestamp)?,
                &required("event_type", &row.event_type)?,
                &actor_id,
                &text("actor_username", &row.actor_username)?,
                &text("actor_ip", &row.actor_ip)?,
                &text("target_type", &row.target_type)?,
                &text("target_id", &row.target_id)?,
                &required("action", &row.action)?,
                &required("details", &row.details)?,
                &required("previous_hash", &row.previous_hash)?,
                &required("entry_hash", &row.entry_hash)?,
            ],
        )?;
        if let Some(mac) = &row.row_mac {
            self.audit_insert_mac(row.id, mac)?;
        }
        Ok(())
    }

    fn audit_sync_ids(&self) -> Result<(), TxError> {
        self.batch(
            "SELECT setval(pg_get_serial_sequence('audit_log', 'id'),
                           GREATEST((SELECT max(id) FROM audit_log), 1))",
        )
    }

    fn audit_count(&self) -> Result<i64, TxError> {
        let row = self
            .query_opt("SELECT count(*) FROM audit_log", &[])?
            .ok_or_else(|| TxError::Postgres(PgError::Unavailable("count returned no row")))?;
        self.get(&row, 0)
    }

    // Never asked: the outbox is always empty here (below). Answered from the row itself.
    fn audit_row_fate(&self, row: &OutboxRow) -> Result<RowFate, TxError> {
        let stored = self.query_opt(
            "SELECT entry_hash FROM audit_log WHERE id = $1",
            &[&row.entry_id],
        )?;
        Ok(match stored {
            Some(found)
                if self.get::<Option<String>>(&found, 0)? == Some(row.entry_hash.clone()) =>
            {
                RowFate::Stored
            }
            _ => RowFate::Lost,
        })
    }

    // A change and its audit row are in one database, committed together: no outbox.
    fn audit_outbox(&self) -> Result<Vec<OutboxRow>, TxError> {
        Ok(Vec::new())
    }

    fn audit_outbox_clear(&self) -> Result<(), TxError> {
        Ok(())
    }

    fn audit_outbox_add(&self, _row: &OutboxRow) -> Result<(), TxError> {
        Ok(())
    }
}
