//! The `audit_log` rows (the original's table) and `audit_row_mac` (ours).

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row};

use crate::audit::{AuditFilter, RawRow};
use crate::rows::TxError;
use crate::rows::{AuditHead, NewAuditRow};

/// The columns of `audit_log`, in the order [`RawRow`] reads them.
const COLUMNS: &str = "a.id, a.timestamp, a.event_type, a.actor_id, a.actor_username, a.actor_ip, \
     a.target_type, a.target_id, a.action, a.details, a.previous_hash, a.entry_hash";

fn raw_row(row: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        id: row.get(0)?,
        timestamp: row.get(1)?,
        event_type: row.get(2)?,
        actor_id: row.get(3)?,
        actor_username: row.get(4)?,
        actor_ip: row.get(5)?,
        target_type: row.get(6)?,
        target_id: row.get(7)?,
        action: row.get(8)?,
        details: row.get(9)?,
        previous_hash: row.get(10)?,
        entry_hash: row.get(11)?,
        row_mac: row.get(12)?,
    })
}

/// The entry hash of the newest row, or `genesis`.
pub(crate) fn last_hash(tx: &Connection) -> Result<String, TxError> {
    let last: Option<Value> = tx
        .prepare_cached("SELECT entry_hash FROM audit_log ORDER BY id DESC LIMIT 1")?
        .query_row([], |row| row.get(0))
        .optional()?;
    Ok(match last {
        None => "genesis".to_owned(),
        Some(value) => crate::audit::python_str(&value),
    })
}

/// The newest row, every column.
pub(crate) fn last_row(conn: &Connection) -> Result<Option<RawRow>, TxError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS}, m.mac FROM audit_log a
             LEFT JOIN audit_row_mac m ON m.entry_id = a.id ORDER BY a.id DESC LIMIT 1"
        ))?
        .query_row([], raw_row)
        .optional()?)
}

/// The chain head marker.
pub(crate) fn head(conn: &Connection) -> Result<Option<AuditHead>, TxError> {
    // Typed loosely: a hand-edited marker of another type is a mismatch, not a failure.
    let mut stmt =
        match conn.prepare_cached("SELECT last_id, entry_hash, mac FROM audit_head WHERE id = 1") {
            Ok(stmt) => stmt,
            // A database of an older version, opened for reading only: no marker yet.
            Err(e) if e.to_string().starts_with("no such table") => return Ok(None),
            Err(e) => return Err(e.into()),
        };
    let row: Option<(Value, Value, Value)> = stmt
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .optional()?;
    Ok(row.map(|(last_id, entry_hash, mac)| AuditHead {
        last_id: match last_id {
            Value::Integer(i) => i,
            _ => i64::MIN,
        },
        entry_hash: crate::audit::python_str(&entry_hash),
        mac: crate::audit::python_str(&mac),
    }))
}

/// Replaces the chain head marker.
pub(crate) fn set_head(conn: &Connection, head: &AuditHead) -> Result<(), TxError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO audit_head (id, last_id, entry_hash, mac) VALUES (1, ?1, ?2, ?3)",
    )?
    .execute(rusqlite::params![head.last_id, head.entry_hash, head.mac])?;
    Ok(())
}

/// Row MACs whose row is gone.
pub(crate) fn orphan_macs(conn: &Connection, limit: i64) -> Result<Vec<i64>, TxError> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.entry_id FROM audit_row_mac m
         WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.id = m.entry_id)
         ORDER BY m.entry_id LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |row| row.get(0))?;
    let mut ids = Vec::new();
    for row in rows {
        ids.push(row?);
    }
    Ok(ids)
}

/// The largest id `AUTOINCREMENT` ever handed out (`sqlite_sequence` is updated in the
/// inserting transaction, so a rolled-back insert leaves no trace).
pub(crate) fn id_high_water(conn: &Connection) -> Result<Option<i64>, TxError> {
    Ok(conn
        .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'")?
        .query_row([], |row| row.get::<_, Value>(0))
        .optional()?
        .and_then(|seq| match seq {
            Value::Integer(i) => Some(i),
            _ => None,
        }))
}

/// Inserts a row with the original's statement; its id.
pub(crate) fn insert(tx: &Connection, row: &NewAuditRow<'_>) -> Result<i64, TxError> {
    tx.prepare_cached(
        "INSERT INTO audit_log (
            timestamp, event_type, actor_id, actor_username, actor_ip,
            target_type, target_id, action, details, previous_hash, entry_hash
        ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(rusqlite::params![
        row.timestamp,
        row.event_type,
        row.actor_id,
        row.actor_username,
        row.actor_ip,
        row.target_type,
        row.target_id,
        row.action,
        row.details,
        row.previous_hash,
        row.entry_hash,
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Stores the MAC over every column of row `id`.
pub(crate) fn insert_mac(tx: &Connection, id: i64, mac: &str) -> Result<(), TxError> {
    tx.prepare_cached("INSERT OR REPLACE INTO audit_row_mac (entry_id, mac) VALUES (?1, ?2)")?
        .execute(rusqlite::params![id, mac])?;
    Ok(())
}

/// Calls `f` with every row in id order (one consistent snapshot); stops at `f`'s error.
pub(crate) fn each(
    conn: &Connection,
    f: &mut dyn FnMut(RawRow) -> Result<(), TxError>,
) -> Result<(), TxError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS}, m.mac FROM audit_log a
             LEFT JOIN audit_row_mac m ON m.entry_id = a.id ORDER BY a.id"
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        f(raw_row(row)?)?;
    }
    Ok(())
}

/// How many rows there are.
pub(crate) fn count(conn: &Connection) -> Result<i64, TxError> {
    Ok(conn.query_row("SELECT count(*) FROM audit_log", [], |row| row.get(0))?)
}

/// The ids of rows whose stored `entry_hash` is `hash` (to explain a broken link).
pub(crate) fn ids_with_hash(conn: &Connection, hash: &str) -> Result<Vec<i64>, TxError> {
    let mut stmt =
        conn.prepare_cached("SELECT id FROM audit_log WHERE entry_hash = ?1 ORDER BY id")?;
    let rows = stmt.query_map([hash], |row| row.get(0))?;
    let mut ids = Vec::new();
    for row in rows {
        ids.push(row?);
    }
    Ok(ids)
}

/// Checkpoint rows, newest first.
pub(crate) fn checkpoints(conn: &Connection, event_type: &str) -> Result<Vec<RawRow>, TxError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, m.mac FROM audit_log a
         LEFT JOIN audit_row_mac m ON m.entry_id = a.id
         WHERE a.event_type = ?1 ORDER BY a.id DESC"
    ))?;
    let rows = stmt.query_map([event_type], raw_row)?;
    let mut all = Vec::new();
    for row in rows {
        all.push(row?);
    }
    Ok(all)
}

/// Rows matching `filter`, newest first.
pub(crate) fn query(conn: &Connection, filter: &AuditFilter) -> Result<Vec<RawRow>, TxError> {
    let mut sql = format!(
        "SELECT {COLUMNS}, m.mac FROM audit_log a
         LEFT JOIN audit_row_mac m ON m.entry_id = a.id WHERE 1 = 1"
    );
    let mut params: Vec<Value> = Vec::new();
    let mut bind = |sql: &mut String, clause: &str, value: Value| {
        params.push(value);
        sql.push_str(&clause.replace('?', &format!("?{}", params.len())));
    };
    if !filter.event_types.is_empty() {
        sql.push_str(" AND a.event_type IN (");
        for (i, event_type) in filter.event_types.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            bind(&mut sql, "?", Value::Text(event_type.clone()));
        }
        sql.push(')');
    }
    if let Some(id) = filter.actor_id {
        bind(&mut sql, " AND a.actor_id = ?", Value::Integer(id));
    }
    if let Some(name) = &filter.actor_username {
        bind(
            &mut sql,
            " AND a.actor_username = ?",
            Value::Text(name.clone()),
        );
    }
    if let Some(target_type) = &filter.target_type {
        bind(
            &mut sql,
            " AND a.target_type = ?",
            Value::Text(target_type.clone()),
        );
    }
    if let Some(target_id) = &filter.target_id {
        bind(
            &mut sql,
            " AND a.target_id = ?",
            Value::Text(target_id.clone()),
        );
    }
    if let Some(since) = filter.since {
        bind(
            &mut sql,
            " AND a.timestamp >= ?",
            Value::Text(since.to_string()),
        );
    }
    if let Some(until) = filter.until {
        bind(
            &mut sql,
            " AND a.timestamp <= ?",
            Value::Text(until.to_string()),
        );
    }
    let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
    bind(
        &mut sql,
        " ORDER BY a.id DESC LIMIT ?",
        Value::Integer(limit),
    );
    bind(&mut sql, " OFFSET ?", Value::Integer(offset));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), raw_row)?;
    let mut all = Vec::new();
    for row in rows {
        all.push(row?);
    }
    Ok(all)
}

/// The smallest id of a row at or after `cutoff` (text comparison, as the original).
pub(crate) fn first_id_since(tx: &Connection, cutoff: &str) -> Result<Option<i64>, TxError> {
    Ok(tx.query_row(
        "SELECT MIN(id) FROM audit_log WHERE timestamp >= ?1",
        [cutoff],
        |row| row.get(0),
    )?)
}

/// The newest row before `id` (or the newest row at all), as (id, entry hash).
pub(crate) fn last_before(
    tx: &Connection,
    id: Option<i64>,
) -> Result<Option<(i64, Value)>, TxError> {
    Ok(tx
        .query_row(
            "SELECT id, entry_hash FROM audit_log WHERE (?1 IS NULL OR id < ?1)
             ORDER BY id DESC LIMIT 1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?)
}

/// Deletes every row with an id up to `through` (and their MACs); how many rows went.
pub(crate) fn delete_through(tx: &Connection, through: i64) -> Result<u64, TxError> {
    let removed = tx.execute("DELETE FROM audit_log WHERE id <= ?1", [through])?;
    tx.execute("DELETE FROM audit_row_mac WHERE entry_id <= ?1", [through])?;
    Ok(u64::try_from(removed).unwrap_or(u64::MAX))
}

/// Writes a copied row with its id, and its row MAC when it has one.
pub(crate) fn copy(conn: &Connection, row: &RawRow) -> Result<(), TxError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO audit_log (
            id, timestamp, event_type, actor_id, actor_username, actor_ip,
            target_type, target_id, action, details, previous_hash, entry_hash
        ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(rusqlite::params![
        row.id,
        row.timestamp,
        row.event_type,
        row.actor_id,
        row.actor_username,
        row.actor_ip,
        row.target_type,
        row.target_id,
        row.action,
        row.details,
        row.previous_hash,
        row.entry_hash,
    ])?;
    if let Some(mac) = &row.row_mac {
        insert_mac(conn, row.id, mac)?;
    }
    Ok(())
}
