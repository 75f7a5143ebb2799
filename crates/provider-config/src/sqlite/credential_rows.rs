//! The `provider_credentials` rows, with the original's statements.

use rusqlite::{Connection, OptionalExtension};

use crate::credentials::CredentialInfo;
use crate::rows::CredentialRow;
use crate::rows::TxError;

/// Inserts or replaces (reactivating) a credential; its row id.
pub(crate) fn upsert(
    tx: &Connection,
    user_id: i64,
    provider: &str,
    name: &str,
    stored_value: &str,
    now: &str,
) -> Result<(i64, bool), TxError> {
    let existed: bool =
        tx.prepare_cached(
            "SELECT count(*) FROM provider_credentials
             WHERE user_id = ?1 AND provider = ?2 AND credential_name = ?3",
        )?
        .query_row(rusqlite::params![user_id, provider, name], |row| {
            row.get::<_, i64>(0)
        })? > 0;
    tx.prepare_cached(
        "INSERT INTO provider_credentials
         (user_id, provider, credential_name, credential_value, created_at, is_active)
         VALUES (?1, ?2, ?3, ?4, ?5, 1)
         ON CONFLICT(user_id, provider, credential_name) DO UPDATE SET
             credential_value = excluded.credential_value,
             updated_at = ?5,
             is_active = 1",
    )?
    .execute(rusqlite::params![
        user_id,
        provider,
        name,
        stored_value,
        now
    ])?;
    let id = tx
        .prepare_cached(
            "SELECT id FROM provider_credentials
             WHERE user_id = ?1 AND provider = ?2 AND credential_name = ?3",
        )?
        .query_row(rusqlite::params![user_id, provider, name], |row| row.get(0))?;
    Ok((id, existed))
}

/// The stored value of an active credential.
pub(crate) fn get(
    conn: &Connection,
    user_id: i64,
    provider: &str,
    name: &str,
) -> Result<Option<(i64, String)>, TxError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, credential_value FROM provider_credentials
             WHERE user_id = ?1 AND provider = ?2 AND credential_name = ?3 AND is_active = 1",
        )?
        .query_row(rusqlite::params![user_id, provider, name], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?)
}

/// Sets `last_used_at` of an active credential; whether there was one.
pub(crate) fn mark_used(
    tx: &Connection,
    user_id: i64,
    provider: &str,
    name: &str,
    now: &str,
) -> Result<bool, TxError> {
    Ok(tx
        .prepare_cached(
            "UPDATE provider_credentials SET last_used_at = ?4
             WHERE user_id = ?1 AND provider = ?2 AND credential_name = ?3 AND is_active = 1",
        )?
        .execute(rusqlite::params![user_id, provider, name, now])?
        > 0)
}

/// Deletes a credential; whether there was one.
pub(crate) fn delete(
    tx: &Connection,
    user_id: i64,
    provider: &str,
    name: &str,
) -> Result<bool, TxError> {
    Ok(tx
        .prepare_cached(
            "DELETE FROM provider_credentials
             WHERE user_id = ?1 AND provider = ?2 AND credential_name = ?3",
        )?
        .execute(rusqlite::params![user_id, provider, name])?
        > 0)
}

/// Deactivates a credential without deleting it; whether there was one.
pub(crate) fn deactivate(
    tx: &Connection,
    user_id: i64,
    provider: &str,
    name: &str,
    now: &str,
) -> Result<bool, TxError> {
    Ok(tx
        .prepare_cached(
            "UPDATE provider_credentials SET is_active = 0, updated_at = ?4
             WHERE user_id = ?1 AND provider = ?2 AND credential_name = ?3",
        )?
        .execute(rusqlite::params![user_id, provider, name, now])?
        > 0)
}

/// A user's credentials (without values), sorted by provider and name.
pub(crate) fn list_for_user(
    conn: &Connection,
    user_id: i64,
    provider: Option<&str>,
    is_encrypted: &dyn Fn(&str) -> bool,
) -> Result<Vec<CredentialInfo>, TxError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, provider, credential_name, created_at, updated_at, last_used_at,
                is_active, credential_value
         FROM provider_credentials
         WHERE user_id = ?1 AND (?2 IS NULL OR provider = ?2)
         ORDER BY provider, credential_name",
    )?;
    let rows = stmt.query_map(rusqlite::params![user_id, provider], |row| {
        let value: String = row.get(8)?;
        Ok(CredentialInfo {
            id: row.get(0)?,
            user_id: row.get(1)?,
            provider: row.get(2)?,
            credential_name: row.get(3)?,
            created_at: row.get(4)?,
            updated_at: row.get(5)?,
            last_used_at: row.get(6)?,
            is_active: row.get::<_, i64>(7)? != 0,
            encrypted: is_encrypted(&value),
        })
    })?;
    let mut all = Vec::new();
    for row in rows {
        all.push(row?);
    }
    Ok(all)
}

/// Every row's id and stored value, for maintenance, in id order.
pub(crate) fn all_values(tx: &Connection) -> Result<Vec<(i64, String)>, TxError> {
    let mut stmt =
        tx.prepare("SELECT id, credential_value FROM provider_credentials ORDER BY id")?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let mut all = Vec::new();
    for row in rows {
        all.push(row?);
    }
    Ok(all)
}

/// Replaces a row's stored value (maintenance: `updated_at` is left alone).
pub(crate) fn set_value(tx: &Connection, id: i64, stored_value: &str) -> Result<(), TxError> {
    tx.prepare_cached("UPDATE provider_credentials SET credential_value = ?2 WHERE id = ?1")?
        .execute(rusqlite::params![id, stored_value])?;
    Ok(())
}

/// Every row, every column, in id order.
pub(crate) fn all_rows(conn: &Connection) -> Result<Vec<CredentialRow>, TxError> {
    let mut stmt = conn.prepare(
        "SELECT id, user_id, provider, credential_name, credential_value, created_at,
                updated_at, last_used_at, is_active
         FROM provider_credentials ORDER BY id",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok(CredentialRow {
            id: row.get(0)?,
            user_id: row.get(1)?,
            provider: row.get(2)?,
            credential_name: row.get(3)?,
            credential_value: row.get(4)?,
            created_at: row.get(5)?,
            updated_at: row.get(6)?,
            last_used_at: row.get(7)?,
            is_active: row.get(8)?,
        })
    })?;
    let mut all = Vec::new();
    for row in rows {
        all.push(row?);
    }
    Ok(all)
}

/// Writes a copied row with its id.
pub(crate) fn copy(conn: &Connection, row: &CredentialRow) -> Result<(), TxError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO provider_credentials
         (id, user_id, provider, credential_name, credential_value, created_at, updated_at,
          last_used_at, is_active)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(rusqlite::params![
        row.id,
        row.user_id,
        row.provider,
        row.credential_name,
        row.credential_value,
        row.created_at,
        row.updated_at,
        row.last_used_at,
        row.is_active,
    ])?;
    Ok(())
}
