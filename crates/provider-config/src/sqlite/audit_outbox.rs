//! `audit_outbox` (ours, in jobs.db): the audit rows of the last write transaction, kept
//! beside their changes. Why: `audit::outbox`.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row};
use serde_json::{Map, Value as Json};

use crate::audit::{Actor, AuditEvent, python_str};
use crate::rows::{OutboxRow, RowFate, TxError};

/// What became of the audit row `row` describes. Unqualified `audit_log` is the trail's
/// table both on the trail's own connection and on a jobs.db connection that attaches it
/// (the attachment is refused when jobs.db has a table of that name).
pub(crate) fn row_fate(conn: &Connection, row: &OutboxRow) -> Result<RowFate, TxError> {
    let hash_at = |id: i64| -> Result<Option<String>, TxError> {
        Ok(conn
            .prepare_cached("SELECT entry_hash FROM audit_log WHERE id = ?1")?
            .query_row([id], |r| r.get::<_, Value>(0))
            .optional()?
            .map(|hash| python_str(&hash)))
    };
    let at_id = hash_at(row.entry_id)?;
    if at_id.as_deref() == Some(row.entry_hash.as_str()) {
        return Ok(RowFate::Stored);
    }
    // Appended again earlier (its details name the hashes it stands for): never twice.
    let recovered: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM audit_log WHERE id >= ?1 AND instr(details, ?2) > 0)",
        )?
        .query_row(rusqlite::params![row.entry_id, row.entry_hash], |r| {
            r.get(0)
        })?;
    if recovered {
        return Ok(RowFate::Stored);
    }
    if at_id.is_none() {
        // Ids are never handed out twice unless a crash rolled one back, and a cleanup
        // always leaves its checkpoint row, newer than what it removed.
        let newest: Option<i64> = conn
            .prepare_cached("SELECT max(id) FROM audit_log")?
            .query_row([], |r| r.get(0))?;
        if newest.is_some_and(|newest| newest >= row.entry_id) {
            return Ok(RowFate::Removed);
        }
    }
    // Lost from this chain only if the row it linked to is in it: the row before it, or
    // the last row a cleanup removed (its checkpoint's anchor), or the start of the chain.
    let linked = match row.previous_hash.as_str() {
        "genesis" => row.entry_id == 1 || hash_at(row.entry_id - 1)?.is_none(),
        previous => {
            hash_at(row.entry_id - 1)?.as_deref() == Some(previous)
                || conn
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM audit_log
                         WHERE event_type = ?1 AND instr(details, ?2) > 0)",
                    )?
                    .query_row(rusqlite::params![crate::CHECKPOINT, previous], |r| r.get(0))?
        }
    };
    Ok(if linked {
        RowFate::Lost
    } else {
        RowFate::Foreign
    })
}

/// A row of the outbox, every column read loosely: a hand-edited row of another type
/// must not stop every later write (the outbox is ours; the original never writes it).
fn outbox_row(row: &Row<'_>) -> rusqlite::Result<OutboxRow> {
    let text = |i| -> rusqlite::Result<String> { Ok(python_str(&row.get::<_, Value>(i)?)) };
    let optional = |i| -> rusqlite::Result<Option<String>> {
        Ok(match row.get::<_, Value>(i)? {
            Value::Null => None,
            value => Some(python_str(&value)),
        })
    };
    let details = match serde_json::from_str(&text(10)?) {
        Ok(Json::Object(details)) => details,
        _ => Map::new(),
    };
    Ok(OutboxRow {
        entry_id: row.get(0)?,
        entry_hash: text(1)?,
        previous_hash: text(12)?,
        timestamp: text(2)?,
        event: AuditEvent {
            event_type: text(3)?,
            action: text(4)?,
            actor: Actor {
                id: match row.get::<_, Value>(5)? {
                    Value::Integer(id) => Some(id),
                    _ => None,
                },
                username: optional(6)?,
                ip: optional(7)?,
            },
            target_type: optional(8)?,
            target_id: optional(9)?,
            details,
        },
        mac: text(11)?,
    })
}

/// Every row of the outbox, oldest first; none when jobs.db has no outbox yet (a database
/// opened read-only that this version never wrote).
pub(crate) fn list(conn: &Connection) -> Result<Vec<OutboxRow>, TxError> {
    let mut stmt = match conn.prepare_cached(
        "SELECT entry_id, entry_hash, timestamp, event_type, action, actor_id, actor_username,
                actor_ip, target_type, target_id, details, mac, previous_hash
         FROM main.audit_outbox ORDER BY entry_id",
    ) {
        Ok(stmt) => stmt,
        Err(e) if e.to_string().starts_with("no such table") => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let rows = stmt.query_map([], outbox_row)?;
    let mut all = Vec::new();
    for row in rows {
        all.push(row?);
    }
    Ok(all)
}

/// Empties the outbox.
pub(crate) fn clear(conn: &Connection) -> Result<(), TxError> {
    conn.prepare_cached("DELETE FROM main.audit_outbox")?
        .execute([])?;
    Ok(())
}

/// Adds a row.
pub(crate) fn add(conn: &Connection, row: &OutboxRow) -> Result<(), TxError> {
    let event = &row.event;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO main.audit_outbox (
            entry_id, entry_hash, timestamp, event_type, action, actor_id, actor_username,
            actor_ip, target_type, target_id, details, mac, previous_hash
        ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(rusqlite::params![
        row.entry_id,
        row.entry_hash,
        row.timestamp,
        event.event_type,
        event.action,
        event.actor.id,
        event.actor.username,
        event.actor.ip,
        event.target_type,
        event.target_id,
        Json::Object(event.details.clone()).to_string(),
        row.mac,
        row.previous_hash,
    ])?;
    Ok(())
}
