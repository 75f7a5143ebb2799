//! Verification of the chain: links, entry hashes, row MACs, checkpoints, and an
//! explanation of the first thing that is wrong.

use ring::hmac;
use serde::Serialize;
use serde_json::Value as Json;

use super::{CHECKPOINT, RawRow, constant_time_eq, head_mac, python_str, row_mac};
use crate::rows::{AuditHead, AuditRows, TxError};

/// Link breaks explained with extra queries, at most (a wholly rewritten table would
/// otherwise cost one scan per row).
const MAX_EXPLAINED: usize = 100;

/// The result of [`AuditTrail::verify`](super::AuditTrail::verify): the original's report
/// (`valid`, `entries_checked`, `broken_links`, `first_id`, `last_id`) plus the checkpoint
/// the chain starts from and how many rows carried a row MAC.
///
/// Unlike the original, a report never contains the hash a modified row *should* have:
/// that value would let whoever reads the report forge the row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainReport {
    /// No problem found.
    pub valid: bool,
    /// Rows checked.
    pub entries_checked: u64,
    /// Every problem, in row order.
    pub broken_links: Vec<BrokenLink>,
    /// The first row's id.
    pub first_id: Option<i64>,
    /// The last row's id.
    pub last_id: Option<i64>,
    /// The checkpoint row that vouches for the first row, when older rows were cleaned up.
    pub checkpoint_id: Option<i64>,
    /// Rows whose MAC over every column was checked.
    pub row_macs_checked: u64,
    /// Configuration changes committed without their audit row, which the next write to
    /// the configuration store appends (SQLite: a process stopped between the two commits).
    /// The chain alone cannot know them: [`verify`](super::AuditTrail::verify) leaves 0, and
    /// [`unrecorded_changes`](super::AuditTrail::unrecorded_changes) counts them.
    pub unrecorded_changes: u64,
}

impl ChainReport {
    /// The first problem in row order, naming the row.
    pub fn first_problem(&self) -> Option<&BrokenLink> {
        self.broken_links.first()
    }
}

/// What check a row failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkError {
    /// `previous_hash` is not the previous row's `entry_hash`.
    LinkMismatch,
    /// `entry_hash` does not match the row's columns (the original's check).
    HashMismatch,
    /// The MAC over every column does not match.
    RowMacMismatch,
    /// The row says it carries a MAC over every column, but the MAC is gone.
    RowMacMissing,
    /// The chain head marker (`audit_head`: the newest row appended here, MACed) does not
    /// match the newest row, is missing, or does not verify: the newest rows were deleted.
    HeadMismatch,
    /// A row MAC remains whose row is gone: that row was deleted.
    OrphanRowMac,
    /// SQLite handed out larger ids than the newest row's: the rows after it were deleted.
    SequenceAhead,
}

/// What the failure most likely means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tampering {
    /// The row's content was changed (or the row was forged without the key).
    Modified,
    /// Rows before this one are missing.
    Deleted,
    /// Rows that are not part of the chain were inserted before this one, or this row is a
    /// copy of another.
    Inserted,
    /// Rows are out of order.
    Reordered,
}

/// One problem, naming the row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BrokenLink {
    /// The row where the problem shows.
    pub id: i64,
    /// The check that failed.
    pub error: LinkError,
    /// What it most likely means.
    pub tampering: Tampering,
    /// One sentence naming the row (and the rows involved).
    pub message: String,
    /// For link mismatches: the previous row's stored hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_previous: Option<String>,
    /// For link mismatches: the row's stored `previous_hash`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual_previous: Option<String>,
}

impl BrokenLink {
    fn content(id: i64, error: LinkError, message: String) -> Self {
        Self {
            id,
            error,
            tampering: Tampering::Modified,
            message,
            expected_previous: None,
            actual_previous: None,
        }
    }
}

pub(crate) fn hash_ok(row: &RawRow, key: &hmac::Key) -> bool {
    constant_time_eq(&row.computed_entry_hash(key), &python_str(&row.entry_hash))
}

pub(crate) fn row_mac_ok(row: &RawRow, key: &hmac::Key) -> Option<bool> {
    row.row_mac
        .as_deref()
        .map(|stored| constant_time_eq(&row_mac(key, row), stored))
}

/// Whether `checkpoint` is an intact checkpoint row that vouches for `first` as the first
/// row after a cleanup.
fn vouches_for(
    checkpoint: &RawRow,
    first: &RawRow,
    chain_key: &hmac::Key,
    row_key: &hmac::Key,
) -> bool {
    if !hash_ok(checkpoint, chain_key)
        || row_mac_ok(checkpoint, row_key) != Some(true)
        || !checkpoint.claims_row_mac()
    {
        return false;
    }
    let Some(details) = checkpoint.details_json() else {
        return false;
    };
    let first_kept_matches = match details.get("first_kept_id") {
        Some(Json::Number(n)) => n.as_i64() == Some(first.id),
        // Everything was removed: the checkpoint itself is the first row.
        Some(Json::Null) => checkpoint.id == first.id,
        _ => false,
    };
    first_kept_matches
        && details.get("anchor_hash").and_then(Json::as_str)
            == Some(python_str(&first.previous_hash).as_str())
}

/// Explains why `row` does not link to the row before it (`previous`, if any).
fn explain_link(
    rows: &dyn AuditRows,
    row: &RawRow,
    previous: Option<i64>,
    explain: bool,
) -> Result<(Tampering, String), TxError> {
    let id = row.id;
    let Some(prev_id) = previous else {
        return Ok((
            Tampering::Deleted,
            format!(
                "row {id} is the first row but does not start the chain and no intact checkpoint vouches for it: the rows before it were deleted"
            ),
        ));
    };
    if !explain {
        return Ok((
            Tampering::Modified,
            format!("row {id} does not link to row {prev_id}"),
        ));
    }
    let own_hash = python_str(&row.entry_hash);
    let copies: Vec<i64> = rows
        .audit_ids_with_hash(&own_hash)?
        .into_iter()
        .filter(|&other| other < id)
        .collect();
    if let Some(original) = copies.first() {
        return Ok((
            Tampering::Inserted,
            format!("row {id} is a copy of row {original} inserted into the chain"),
        ));
    }
    let targets = rows.audit_ids_with_hash(&python_str(&row.previous_hash))?;
    if let Some(&later) = targets.iter().find(|&&t| t > id) {
        return Ok((
            Tampering::Reordered,
            format!("row {id} follows row {later}, which comes after it: rows were reordered"),
        ));
    }
    if let Some(&earlier) = targets.iter().rev().find(|&&t| t < prev_id) {
        return Ok((
            Tampering::Inserted,
            format!(
                "row {id} follows row {earlier}, not row {prev_id}: rows {}..={prev_id} were inserted (or rows were moved)",
                earlier + 1
            ),
        ));
    }
    let missing = if id > prev_id + 1 {
        format!(" (ids {}..={} are missing)", prev_id + 1, id - 1)
    } else {
        String::new()
    };
    Ok((
        Tampering::Deleted,
        format!(
            "row {id} does not link to row {prev_id}: the row(s) between them were deleted{missing}"
        ),
    ))
}

pub(crate) fn verify(
    rows: &dyn AuditRows,
    chain_key: &hmac::Key,
    row_key: &hmac::Key,
) -> Result<ChainReport, TxError> {
    let mut report = ChainReport {
        unrecorded_changes: 0,
        valid: true,
        entries_checked: 0,
        broken_links: Vec::new(),
        first_id: None,
        last_id: None,
        checkpoint_id: None,
        row_macs_checked: 0,
    };
    let mut expected = String::new();
    let mut previous: Option<i64> = None;
    let mut explained = 0;
    let mut last_row: Option<RawRow> = None;
    let mut any_claims_head = false;
    let head = rows.audit_head()?;
    let head_id = head.as_ref().map(|h| h.last_id);
    let mut head_row_found = false;
    let mut newer_claiming_head = None;
    rows.audit_each(&mut |row| -> Result<(), TxError> {
        let id = row.id;
        let claims_head = row.claims_head();
        any_claims_head |= claims_head;
        if let (Some(head_id), Some(head)) = (head_id, &head) {
            if id == head_id {
                head_row_found = constant_time_eq(&python_str(&row.entry_hash), &head.entry_hash);
            } else if id > head_id && claims_head && newer_claiming_head.is_none() {
                newer_claiming_head = Some(id);
            }
        }
        let actual_previous = python_str(&row.previous_hash);
        if previous.is_none() {
            report.first_id = Some(id);
            expected = "genesis".to_owned();
            if actual_previous != expected {
                for checkpoint in rows.audit_checkpoints(CHECKPOINT)? {
                    if vouches_for(&checkpoint, &row, chain_key, row_key) {
                        report.checkpoint_id = Some(checkpoint.id);
                        expected = actual_previous.clone();
                        break;
                    }
                }
            }
        }
        report.entries_checked += 1;
        report.last_id = Some(id);
        if actual_previous != expected {
            let explain = explained < MAX_EXPLAINED;
            explained += 1;
            let (tampering, message) = explain_link(rows, &row, previous, explain)?;
            report.broken_links.push(BrokenLink {
                id,
                error: LinkError::LinkMismatch,
                tampering,
                message,
                expected_previous: Some(expected.clone()),
                actual_previous: Some(actual_previous),
            });
        }
        if !hash_ok(&row, chain_key) {
            report.broken_links.push(BrokenLink::content(
                id,
                LinkError::HashMismatch,
                format!(
                    "row {id} does not match its entry hash: it was modified (or forged without the key)"
                ),
            ));
        }
        match row_mac_ok(&row, row_key) {
            Some(true) => report.row_macs_checked += 1,
            Some(false) => report.broken_links.push(BrokenLink::content(
                id,
                LinkError::RowMacMismatch,
                format!("row {id} does not match its row MAC: a column was modified"),
            )),
            None if row.claims_row_mac() => report.broken_links.push(BrokenLink::content(
                id,
                LinkError::RowMacMissing,
                format!("row {id} was written with a row MAC, and the MAC was removed"),
            )),
            None => {}
        }
        expected = python_str(&row.entry_hash);
        previous = Some(id);
        last_row = Some(row);
        Ok(())
    })?;
    check_tail(
        rows,
        row_key,
        &mut report,
        last_row.as_ref(),
        any_claims_head,
        head,
        (head_row_found, newer_claiming_head),
    )?;
    report.valid = report.broken_links.is_empty();
    Ok(report)
}

/// Row MACs reported as orphans, at most.
const MAX_ORPHANS: i64 = 20;

/// The checks that see deletions the links cannot: the newest rows (or all of them) gone.
/// `last` is the newest row; `any_claims_head` whether any row says it was appended with
/// the head marker.
fn check_tail(
    rows: &dyn AuditRows,
    row_key: &hmac::Key,
    report: &mut ChainReport,
    last: Option<&RawRow>,
    any_claims_head: bool,
    head: Option<AuditHead>,
    scan: (bool, Option<i64>),
) -> Result<(), TxError> {
    let last_id = last.map(|row| row.id);
    let deleted = |id: i64, error: LinkError, message: String| BrokenLink {
        id,
        error,
        tampering: Tampering::Deleted,
        message,
        expected_previous: None,
        actual_previous: None,
    };
    match head {
        Some(head) => {
            let mac_ok =
                constant_time_eq(&head_mac(row_key, head.last_id, &head.entry_hash), &head.mac);
            let newest = last_id.unwrap_or(0);
            if !mac_ok {
                report.broken_links.push(deleted(
                    newest,
                    LinkError::HeadMismatch,
                    "the chain head marker does not verify: it was modified (or forged without the key)".to_owned(),
                ));
            } else if last_id.is_none() {
                report.broken_links.push(deleted(
                    0,
                    LinkError::HeadMismatch,
                    format!(
                        "the audit trail is empty, but the chain head marker names row {}: every row was deleted",
                        head.last_id
                    ),
                ));
            } else if head.last_id > newest {
                report.broken_links.push(deleted(
                    newest,
                    LinkError::HeadMismatch,
                    format!(
                        "the chain head marker names row {}, but the newest row is {newest}: rows {}..={} were deleted",
                        head.last_id,
                        newest + 1,
                        head.last_id
                    ),
                ));
            } else {
                // The marked row must still be there, unchanged (checked during the scan);
                // rows after it may only be the original's (which never update the marker).
                let (found, newer_claiming_head) = scan;
                if !found {
                    report.broken_links.push(deleted(
                        head.last_id,
                        LinkError::HeadMismatch,
                        format!(
                            "the chain head marker names row {}, which is gone or was replaced",
                            head.last_id
                        ),
                    ));
                } else if let Some(id) = newer_claiming_head {
                    report.broken_links.push(deleted(
                        id,
                        LinkError::HeadMismatch,
                        format!(
                            "row {id} was appended after the row the chain head marker names ({}): the marker was replaced by an older copy, hiding deleted rows",
                            head.last_id
                        ),
                    ));
                }
            }
        }
        None if any_claims_head => report.broken_links.push(deleted(
            last_id.unwrap_or(0),
            LinkError::HeadMismatch,
            "the chain head marker is missing although rows were appended with it: it was deleted, and with it possibly the newest rows".to_owned(),
        )),
        None => {}
    }
    for orphan in rows.audit_orphan_macs(MAX_ORPHANS)? {
        report.broken_links.push(deleted(
            orphan,
            LinkError::OrphanRowMac,
            format!("the row MAC of row {orphan} remains, but the row is gone: it was deleted"),
        ));
    }
    if let Some(high) = rows.audit_id_high_water()? {
        let newest = last_id.unwrap_or(0);
        if high > newest {
            report.broken_links.push(deleted(
                newest,
                LinkError::SequenceAhead,
                if newest == 0 {
                    format!("the audit trail is empty, but ids up to {high} were handed out: every row was deleted")
                } else {
                    format!(
                        "ids up to {high} were handed out, but the newest row is {newest}: rows {}..={high} were deleted",
                        newest + 1
                    )
                },
            ));
        }
    }
    Ok(())
}
