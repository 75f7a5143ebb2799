//! The audit outbox: no configuration change without its audit row on SQLite.
//!
//! On SQLite a store's write transaction spans two files, jobs.db and the attached
//! audit.db, and in WAL mode SQLite commits them one after the other (jobs.db first). A
//! process killed between the two commits kept the change without its audit row. So the
//! audit row is also written, in the same transaction, to `audit_outbox` in jobs.db: it
//! commits exactly when the change does. The next write transaction (or the next writable
//! store to open) looks each outbox row up in the trail and appends, under the chain lock,
//! the event of any row the trail never committed, stamped with the change's time and
//! marked `"recovered": true` in its details; the outbox then holds only the rows that
//! transaction appended (a row appended again stays there until a later transaction sees
//! it committed, so a second crash loses nothing either). A row the trail holds (or a row
//! appended again for it, whose `recovered_from` names it), a row whose id a cleanup
//! removed, and a row whose predecessor is not in this chain (audit.db replaced) are never
//! appended. The outbox holds event names, targets
//! and key names, never a value (as the trail itself). Each outbox row carries a MAC under
//! the trail's row key, so whoever can write jobs.db but lacks the audit key cannot have
//! text of theirs signed into the chain.
//!
//! On PostgreSQL the change and its row are in one database and commit together: the
//! outbox is always empty there.

use ring::hmac;
use serde_json::Value as Json;

use super::{Appended, AuditEvent, AuditTrail, constant_time_eq, hex};
use crate::backend::{Backend, Tables};
use crate::rows::{AuditRows, OutboxRow, RowFate, TxError};
use crate::{StoreError, StoreLocation};

/// The detail that marks a row appended from the outbox.
const RECOVERED: &str = "recovered";
/// The detail listing the entry hashes of the lost rows a recovered row stands for.
const RECOVERED_FROM: &str = "recovered_from";

impl AuditTrail {
    /// Appends, in `tx` (which holds the chain lock), the rows of the outbox the trail never
    /// committed, then leaves in the outbox only the rows appended now (they are as exposed
    /// to a crash between the two commits as the one they replace); how many rows were
    /// appended.
    pub(crate) fn settle_outbox(&self, tx: &dyn AuditRows) -> Result<usize, TxError> {
        let pending = tx.audit_outbox()?;
        if pending.is_empty() {
            return Ok(0);
        }
        let mut appended = Vec::new();
        let mut lost_hashes = Vec::new();
        for row in pending {
            if !self.is_lost(&row, tx, &lost_hashes)? {
                continue;
            }
            lost_hashes.push(row.entry_hash.clone());
            let mut event = row.event;
            event.details.insert(RECOVERED.to_owned(), Json::Bool(true));
            // Every hash this row stands for (a row appended again can be lost again), so
            // that an outbox row put back later (a restored jobs.db) finds it.
            let mut from = match event.details.remove(RECOVERED_FROM) {
                Some(Json::Array(hashes)) => hashes,
                _ => Vec::new(),
            };
            from.push(Json::String(row.entry_hash.clone()));
            event
                .details
                .insert(RECOVERED_FROM.to_owned(), Json::Array(from));
            let new = self.append_in(tx, &event, None, Some(&row.timestamp))?;
            tracing::warn!(
                event_type = %event.event_type,
                stamped = %row.timestamp,
                id = new.id,
                "appended an audit row that a stopped process had committed its change without (recovered from the outbox)"
            );
            appended.push(self.outbox_row(new, event));
        }
        tx.audit_outbox_clear()?;
        for row in &appended {
            tx.audit_outbox_add(row)?;
        }
        Ok(appended.len())
    }

    /// At the opening of a writable store on `jobs`: appends the outbox rows the trail
    /// never committed (a process was stopped between the two commits), so the trail is
    /// whole before the next change. Reads only, when nothing is missing.
    pub(crate) fn repair_outbox(&self, jobs: &Backend) -> Result<usize, StoreError> {
        if !matches!(jobs, Backend::Sqlite(_)) {
            return Ok(0);
        }
        let missing = jobs.read("reading the audit outbox", |rows| {
            self.count_lost(&rows.audit_outbox()?, rows)
        })?;
        if missing == 0 {
            return Ok(0);
        }
        jobs.write("appending the audit rows of the outbox", |tx| {
            tx.audit_lock_chain()?;
            self.settle_outbox(tx)
        })
    }

    /// Configuration changes committed in `jobs` (the configuration database) whose audit
    /// row this trail does not have: a process was stopped between the commit of the change
    /// and that of its row (SQLite). The next write to the configuration store appends
    /// them. Reads only: `jobs` is opened read-only, and a missing or never-initialised
    /// database has none.
    ///
    /// ```
    /// use provider_config::{AuditKey, AuditTrail, StoreLocation};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let key = AuditKey::from_bytes(b"example key".to_vec()).unwrap();
    /// let trail = AuditTrail::open_path(&dir.path().join("audit.db"), key).unwrap();
    /// let jobs = StoreLocation::Sqlite(dir.path().join("cloud/jobs.db"));
    /// assert_eq!(trail.unrecorded_changes(&jobs).unwrap(), 0);
    /// ```
    pub fn unrecorded_changes(&self, jobs: &StoreLocation) -> Result<u64, StoreError> {
        // PostgreSQL keeps no outbox (one database, one commit).
        let StoreLocation::Sqlite(path) = jobs else {
            return Ok(0);
        };
        if !path.exists() {
            return Ok(0);
        }
        let jobs = match Backend::open_read_only(jobs, Tables::Jobs) {
            Ok(jobs) => jobs,
            Err(StoreError::Uninitialized { .. }) => return Ok(0),
            Err(e) => return Err(e),
        };
        let pending = jobs.read("reading the audit outbox", |rows| rows.audit_outbox())?;
        if pending.is_empty() {
            return Ok(0);
        }
        let missing = self.backend().read("reading the audit trail", |trail| {
            self.count_lost(&pending, trail)
        })?;
        Ok(u64::try_from(missing).unwrap_or(u64::MAX))
    }

    /// The outbox row of a row just appended, signed with the row key.
    pub(super) fn outbox_row(&self, appended: Appended, event: AuditEvent) -> OutboxRow {
        let mut row = OutboxRow {
            entry_id: appended.id,
            entry_hash: appended.entry_hash,
            previous_hash: appended.previous_hash,
            timestamp: appended.timestamp,
            event,
            mac: String::new(),
        };
        row.mac = self.outbox_mac(&row);
        row
    }

    /// The MAC of an outbox row: every field but the MAC, as a JSON array.
    pub(crate) fn outbox_mac(&self, row: &OutboxRow) -> String {
        let event = &row.event;
        let fields = serde_json::json!([
            row.entry_id,
            row.entry_hash,
            row.previous_hash,
            row.timestamp,
            event.event_type,
            event.action,
            event.actor.id,
            event.actor.username,
            event.actor.ip,
            event.target_type,
            event.target_id,
            event.details,
        ]);
        let mut ctx = hmac::Context::with_key(&self.inner.row_key);
        ctx.update(b"audit_outbox row v1\0");
        ctx.update(fields.to_string().as_bytes());
        hex(ctx.sign().as_ref())
    }

    /// Whether `row` is an authentic outbox row whose audit row `trail` never committed. A
    /// row whose MAC does not verify (planted or edited in jobs.db, or signed with another
    /// audit key) is never appended: that would sign someone else's text into the chain.
    fn is_lost(
        &self,
        row: &OutboxRow,
        trail: &dyn AuditRows,
        lost_before: &[String],
    ) -> Result<bool, TxError> {
        match trail.audit_row_fate(row)? {
            RowFate::Lost => {}
            // Its predecessor is an earlier row of the same outbox, lost with it.
            RowFate::Foreign if lost_before.contains(&row.previous_hash) => {}
            RowFate::Stored | RowFate::Removed => return Ok(false),
            RowFate::Foreign => {
                tracing::warn!(
                    entry_id = row.entry_id,
                    "an audit outbox row in the configuration database belongs to another audit chain (audit.db was replaced, or restored from a backup older than the row's predecessor); it is not appended"
                );
                return Ok(false);
            }
        }
        if !constant_time_eq(&self.outbox_mac(row), &row.mac) {
            tracing::error!(
                entry_id = row.entry_id,
                "an audit outbox row in the configuration database does not verify under the audit key (edited, planted, or written under another key); it is not appended to the trail"
            );
            return Ok(false);
        }
        Ok(true)
    }

    /// How many of `pending` are authentic and never committed by `trail`.
    fn count_lost(&self, pending: &[OutboxRow], trail: &dyn AuditRows) -> Result<usize, TxError> {
        let mut lost = 0;
        let mut lost_hashes = Vec::new();
        for row in pending {
            if self.is_lost(row, trail, &lost_hashes)? {
                lost += 1;
                lost_hashes.push(row.entry_hash.clone());
            }
        }
        Ok(lost)
    }
}
