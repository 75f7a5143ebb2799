//! [`copy_store`]: copies the configuration, the credentials (as stored: encrypted values
//! stay the same ciphertext) and the audit chain (ids, hashes and row MACs) of one store to
//! another, such as the SQLite files to a PostgreSQL database (`secrets config migrate`).
//!
//! The copy is all or nothing (one transaction per target database), never overwrites a row
//! that differs in the target, and can be run again: rows already there are left alone, so
//! a second run copies nothing. The source chain is verified before and the target's after
//! the copy, inside the transaction; a chain that does not verify is not committed.

use std::collections::HashMap;

use serde::Serialize;

use crate::audit::{AuditKey, AuditTrail, ChainReport, RawRow, python_str, verify};
use crate::backend::{Backend, Tables};
use crate::caches::Invalidation;
use crate::rows::{CredentialRow, Rows, TxError};
use crate::{StoreError, StoreSettings};

/// What [`copy_store`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopyReport {
    /// Provider configurations written to the target.
    pub providers_copied: u64,
    /// Provider configurations the target already held, the same.
    pub providers_unchanged: u64,
    /// Credential rows written to the target.
    pub credentials_copied: u64,
    /// Credential rows the target already held, the same.
    pub credentials_unchanged: u64,
    /// Audit rows appended to the target's chain.
    pub audit_rows_copied: u64,
    /// Audit rows the target's chain already held.
    pub audit_rows_unchanged: u64,
    /// The target's chain, verified after the copy.
    pub chain: ChainReport,
}

fn refused(problem: String) -> TxError {
    TxError::Store(StoreError::CopyRefused { problem })
}

/// Copies the store of `from` to the store of `to` (see the module documentation); `key`
/// is the audit key both chains are signed with.
pub fn copy_store(
    from: &StoreSettings,
    to: &StoreSettings,
    key: &AuditKey,
) -> Result<CopyReport, StoreError> {
    let (chain_key, row_key) = (key.chain_key(), key.row_key());
    // A change a crash left without its audit row (SQLite) gets it before the chain is
    // copied (`audit::outbox`).
    let source_trail = AuditTrail::open_at(&from.audit_location(), key.clone())?;
    let source_jobs =
        Backend::open_jobs_with_audit(&from.jobs_location(), source_trail.sqlite_path())?;
    if source_trail.shares_transactions_with(&source_jobs) {
        source_trail.repair_outbox(&source_jobs)?;
    }
    let source_audit = source_trail.backend();
    let configs = source_jobs.read("reading the configurations to copy", |rows| {
        rows.config_all_rows()
    })?;
    let credentials = source_jobs.read("reading the credentials to copy", |rows| {
        rows.credential_all_rows()
    })?;
    let (audit_rows, source_chain) =
        source_audit.read_snapshot("reading the audit chain to copy", |rows| {
            let report = verify::verify(rows, &chain_key, &row_key)?;
            let mut all = Vec::new();
            rows.audit_each(&mut |row| {
                all.push(row);
                Ok(())
            })?;
            Ok(((all, rows.audit_head()?), report))
        })?;
    let (audit_rows, source_head) = audit_rows;
    if let Some(problem) = source_chain.first_problem() {
        return Err(StoreError::BrokenChain {
            id: problem.id,
            problem: problem.message.clone(),
            operation: "copying it",
        });
    }

    let mut report = CopyReport {
        providers_copied: 0,
        providers_unchanged: 0,
        credentials_copied: 0,
        credentials_unchanged: 0,
        audit_rows_copied: 0,
        audit_rows_unchanged: 0,
        chain: source_chain,
    };
    let copy_jobs = |tx: &dyn Rows, report: &mut CopyReport| -> Result<(), TxError> {
        copy_configs(tx, &configs, report)?;
        copy_credentials(tx, &credentials, report)
    };
    let copy_audit = |tx: &dyn Rows, report: &mut CopyReport| -> Result<(), TxError> {
        copy_chain(tx, &audit_rows, report)?;
        // The source's head marker, unless the target's chain has grown past it since an
        // earlier copy.
        if let Some(head) = &source_head
            && tx
                .audit_head()?
                .is_none_or(|target| target.last_id <= head.last_id)
        {
            tx.audit_set_head(head)?;
        }
        let chain = verify::verify(tx, &chain_key, &row_key)?;
        if let Some(problem) = chain.first_problem() {
            return Err(refused(format!(
                "the copied audit chain does not verify ({}); nothing was written",
                problem.message
            )));
        }
        report.chain = chain;
        Ok(())
    };
    let (to_jobs, to_audit) = (to.jobs_location(), to.audit_location());
    let target_jobs = Backend::open(&to_jobs, Tables::Jobs)?;
    if to_jobs == to_audit {
        // One database (PostgreSQL): one transaction for everything.
        target_jobs.write("copying the store", |tx| {
            copy_jobs(tx, &mut report)?;
            copy_audit(tx, &mut report)
        })?;
    } else {
        let target_audit = Backend::open(&to_audit, Tables::Audit)?;
        target_jobs.write("copying the configurations and credentials", |tx| {
            copy_jobs(tx, &mut report)
        })?;
        target_audit.write("copying the audit chain", |tx| copy_audit(tx, &mut report))?;
    }
    Ok(report)
}

fn copy_configs(
    tx: &dyn Rows,
    configs: &[(String, String, String)],
    report: &mut CopyReport,
) -> Result<(), TxError> {
    let existing: HashMap<String, (String, String)> = tx
        .config_all_rows()?
        .into_iter()
        .map(|(provider, config, updated_at)| (provider, (config, updated_at)))
        .collect();
    for (provider, config, updated_at) in configs {
        match existing.get(provider) {
            Some((c, u)) if c == config && u == updated_at => report.providers_unchanged += 1,
            Some(_) => {
                return Err(refused(format!(
                    "the target's configuration of provider `{provider}` differs from the source's (it was changed after an earlier copy?); nothing was written"
                )));
            }
            None => {
                tx.config_get_for_update(provider)?;
                tx.config_put(provider, config, updated_at)?;
                tx.notify(&Invalidation::Provider(provider.clone()))?;
                report.providers_copied += 1;
            }
        }
    }
    Ok(())
}

fn copy_credentials(
    tx: &dyn Rows,
    credentials: &[CredentialRow],
    report: &mut CopyReport,
) -> Result<(), TxError> {
    // Locks the target's rows (PostgreSQL) until the copy commits.
    tx.credential_all_for_update()?;
    let existing_rows = tx.credential_all_rows()?;
    let by_id: HashMap<i64, &CredentialRow> = existing_rows.iter().map(|r| (r.id, r)).collect();
    let by_name: HashMap<(i64, &str, &str), i64> = existing_rows
        .iter()
        .map(|r| {
            (
                (r.user_id, r.provider.as_str(), r.credential_name.as_str()),
                r.id,
            )
        })
        .collect();
    for row in credentials {
        let name = (
            row.user_id,
            row.provider.as_str(),
            row.credential_name.as_str(),
        );
        match (by_id.get(&row.id), by_name.get(&name)) {
            (Some(present), _) if *present == row => report.credentials_unchanged += 1,
            (None, None) => {
                tx.credential_copy(row)?;
                report.credentials_copied += 1;
            }
            _ => {
                return Err(refused(format!(
                    "the target holds another credential row {} or another `{}` of provider `{}` for user {}; nothing was written",
                    row.id, row.credential_name, row.provider, row.user_id
                )));
            }
        }
    }
    tx.credential_sync_ids()
}

fn copy_chain(tx: &dyn Rows, rows: &[RawRow], report: &mut CopyReport) -> Result<(), TxError> {
    tx.audit_lock_chain()?;
    let mut existing: HashMap<i64, (String, String)> = HashMap::new();
    let mut last_id = None;
    tx.audit_each(&mut |row| {
        last_id = Some(row.id);
        existing.insert(
            row.id,
            (python_str(&row.entry_hash), python_str(&row.previous_hash)),
        );
        Ok(())
    })?;
    for row in rows {
        let hashes = (python_str(&row.entry_hash), python_str(&row.previous_hash));
        match existing.get(&row.id) {
            Some(present) if *present == hashes => report.audit_rows_unchanged += 1,
            Some(_) => {
                return Err(refused(format!(
                    "the target's audit row {} differs from the source's: the chains have diverged; nothing was written",
                    row.id
                )));
            }
            None if last_id.is_some_and(|last| row.id < last) => {
                return Err(refused(format!(
                    "the source's audit row {} is missing from the target, which has later rows; nothing was written",
                    row.id
                )));
            }
            None => {
                tx.audit_copy(row)?;
                report.audit_rows_copied += 1;
            }
        }
    }
    tx.audit_sync_ids()
}
