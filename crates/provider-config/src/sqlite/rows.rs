//! The row traits on an SQLite connection (or a transaction, which derefs to one): each
//! operation is the original's statement in `config_rows`, `credential_rows` or
//! `audit_rows`.

use rusqlite::Connection;
use rusqlite::types::Value;

use super::{audit_outbox, audit_rows, config_rows, credential_rows};
use crate::audit::{AuditFilter, RawRow};
use crate::caches::Invalidation;
use crate::credentials::CredentialInfo;
use crate::rows::{
    AuditHead, AuditRows, ConfigRows, CredentialRow, CredentialRows, NewAuditRow, OutboxRow,
    RowFate, TxError,
};

impl ConfigRows for Connection {
    fn config_get(&self, provider: &str) -> Result<Option<String>, TxError> {
        config_rows::get(self, provider)
    }

    // Write transactions begin with `BEGIN IMMEDIATE`: the write lock is already held.
    fn config_get_for_update(&self, provider: &str) -> Result<Option<String>, TxError> {
        config_rows::get(self, provider)
    }

    fn config_put(&self, provider: &str, config: &str, updated_at: &str) -> Result<(), TxError> {
        config_rows::put(self, provider, config, updated_at)
    }

    fn config_delete(&self, provider: &str) -> Result<bool, TxError> {
        config_rows::delete(self, provider)
    }

    fn config_list(&self) -> Result<Vec<String>, TxError> {
        config_rows::list(self)
    }

    fn config_all_for_update(&self) -> Result<Vec<crate::rows::StoredConfigRow>, TxError> {
        config_rows::all(self)
    }

    fn config_set(&self, provider: &str, config: &str) -> Result<(), TxError> {
        config_rows::set_config(self, provider, config)
    }

    fn config_all_rows(&self) -> Result<Vec<(String, String, String)>, TxError> {
        config_rows::all_rows(self)
    }

    fn notify(&self, _what: &Invalidation) -> Result<(), TxError> {
        Ok(())
    }
}

impl CredentialRows for Connection {
    fn credential_upsert(
        &self,
        user_id: i64,
        provider: &str,
        name: &str,
        stored_value: &str,
        now: &str,
    ) -> Result<(i64, bool), TxError> {
        credential_rows::upsert(self, user_id, provider, name, stored_value, now)
    }

    fn credential_get(
        &self,
        user_id: i64,
        provider: &str,
        name: &str,
    ) -> Result<Option<(i64, String)>, TxError> {
        credential_rows::get(self, user_id, provider, name)
    }

    fn credential_mark_used(
        &self,
        user_id: i64,
        provider: &str,
        name: &str,
        now: &str,
    ) -> Result<bool, TxError> {
        credential_rows::mark_used(self, user_id, provider, name, now)
    }

    fn credential_delete(&self, user_id: i64, provider: &str, name: &str) -> Result<bool, TxError> {
        credential_rows::delete(self, user_id, provider, name)
    }

    fn credential_deactivate(
        &self,
        user_id: i64,
        provider: &str,
        name: &str,
        now: &str,
    ) -> Result<bool, TxError> {
        credential_rows::deactivate(self, user_id, provider, name, now)
    }

    fn credential_list_for_user(
        &self,
        user_id: i64,
        provider: Option<&str>,
        is_encrypted: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<CredentialInfo>, TxError> {
        credential_rows::list_for_user(self, user_id, provider, is_encrypted)
    }

    fn credential_all_for_update(&self) -> Result<Vec<(i64, String)>, TxError> {
        credential_rows::all_values(self)
    }

    fn credential_set_value(&self, id: i64, stored_value: &str) -> Result<(), TxError> {
        credential_rows::set_value(self, id, stored_value)
    }

    fn credential_all_rows(&self) -> Result<Vec<CredentialRow>, TxError> {
        credential_rows::all_rows(self)
    }

    fn credential_copy(&self, row: &CredentialRow) -> Result<(), TxError> {
        credential_rows::copy(self, row)
    }

    // AUTOINCREMENT keeps its counter past every id inserted.
    fn credential_sync_ids(&self) -> Result<(), TxError> {
        Ok(())
    }
}

impl AuditRows for Connection {
    fn audit_lock_chain(&self) -> Result<(), TxError> {
        Ok(())
    }

    fn audit_last_hash(&self) -> Result<String, TxError> {
        audit_rows::last_hash(self)
    }

    fn audit_last_row(&self) -> Result<Option<RawRow>, TxError> {
        audit_rows::last_row(self)
    }

    fn audit_head(&self) -> Result<Option<AuditHead>, TxError> {
        audit_rows::head(self)
    }

    fn audit_set_head(&self, head: &AuditHead) -> Result<(), TxError> {
        audit_rows::set_head(self, head)
    }

    fn audit_orphan_macs(&self, limit: i64) -> Result<Vec<i64>, TxError> {
        audit_rows::orphan_macs(self, limit)
    }

    fn audit_id_high_water(&self) -> Result<Option<i64>, TxError> {
        audit_rows::id_high_water(self)
    }

    fn audit_insert(&self, row: &NewAuditRow<'_>) -> Result<i64, TxError> {
        audit_rows::insert(self, row)
    }

    fn audit_insert_mac(&self, id: i64, mac: &str) -> Result<(), TxError> {
        audit_rows::insert_mac(self, id, mac)
    }

    fn audit_each(&self, f: &mut dyn FnMut(RawRow) -> Result<(), TxError>) -> Result<(), TxError> {
        audit_rows::each(self, f)
    }

    fn audit_ids_with_hash(&self, hash: &str) -> Result<Vec<i64>, TxError> {
        audit_rows::ids_with_hash(self, hash)
    }

    fn audit_checkpoints(&self, event_type: &str) -> Result<Vec<RawRow>, TxError> {
        audit_rows::checkpoints(self, event_type)
    }

    fn audit_query(&self, filter: &AuditFilter) -> Result<Vec<RawRow>, TxError> {
        audit_rows::query(self, filter)
    }

    fn audit_first_id_since(&self, cutoff: &str) -> Result<Option<i64>, TxError> {
        audit_rows::first_id_since(self, cutoff)
    }

    fn audit_last_before(&self, id: Option<i64>) -> Result<Option<(i64, Value)>, TxError> {
        audit_rows::last_before(self, id)
    }

    fn audit_delete_through(&self, through: i64) -> Result<u64, TxError> {
        audit_rows::delete_through(self, through)
    }

    fn audit_count(&self) -> Result<i64, TxError> {
        audit_rows::count(self)
    }

    fn audit_copy(&self, row: &RawRow) -> Result<(), TxError> {
        audit_rows::copy(self, row)
    }

    fn audit_sync_ids(&self) -> Result<(), TxError> {
        Ok(())
    }

    fn audit_row_fate(&self, row: &OutboxRow) -> Result<RowFate, TxError> {
        audit_outbox::row_fate(self, row)
    }

    fn audit_outbox(&self) -> Result<Vec<OutboxRow>, TxError> {
        audit_outbox::list(self)
    }

    fn audit_outbox_clear(&self) -> Result<(), TxError> {
        audit_outbox::clear(self)
    }

    fn audit_outbox_add(&self, row: &OutboxRow) -> Result<(), TxError> {
        audit_outbox::add(self, row)
    }
}
