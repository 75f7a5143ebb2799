//! The `provider_config` rows, with the original's statements.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension};

use crate::StoreError;

use crate::rows::TxError;

/// The stored JSON text of a provider's row.
pub(crate) fn get(conn: &Connection, provider: &str) -> Result<Option<String>, TxError> {
    let stored = conn
        .prepare_cached("SELECT config FROM provider_config WHERE provider = ?1")?
        .query_row([provider], |row| Ok(config_text(row.get_ref(0)?)))
        .optional()?;
    match stored {
        None => Ok(None),
        Some(Ok(text)) => Ok(Some(text)),
        Some(Err(problem)) => Err(TxError::Store(StoreError::InvalidStoredConfig {
            provider: provider.to_owned(),
            problem,
        })),
    }
}

/// The stored configuration as text, or what is wrong with it. SQLite stores whatever it
/// is given: the original (or a hand edit) may have left a BLOB or bytes that are not
/// UTF-8, which must not make the row unreachable. A number is its JSON text.
pub(crate) fn config_text(value: ValueRef<'_>) -> Result<String, String> {
    match value {
        ValueRef::Text(bytes) => String::from_utf8(bytes.to_vec())
            .map_err(|_| format!("it is not valid UTF-8 text ({} bytes)", bytes.len())),
        ValueRef::Blob(bytes) => Err(format!("it is a BLOB of {} bytes, not text", bytes.len())),
        ValueRef::Null => Err("it is NULL".to_owned()),
        ValueRef::Integer(i) => Ok(i.to_string()),
        ValueRef::Real(r) => Ok(r.to_string()),
    }
}

/// Replaces a provider's row (`INSERT OR REPLACE`, as the original).
pub(crate) fn put(
    tx: &Connection,
    provider: &str,
    config: &str,
    updated_at: &str,
) -> Result<(), TxError> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO provider_config (provider, config, updated_at) VALUES (?1, ?2, ?3)",
    )?
    .execute([provider, config, updated_at])?;
    Ok(())
}

/// Deletes a provider's row; whether there was one.
pub(crate) fn delete(tx: &Connection, provider: &str) -> Result<bool, TxError> {
    Ok(tx
        .prepare_cached("DELETE FROM provider_config WHERE provider = ?1")?
        .execute([provider])?
        > 0)
}

/// Every provider with a row, sorted.
pub(crate) fn list(conn: &Connection) -> Result<Vec<String>, TxError> {
    let mut stmt = conn.prepare_cached("SELECT provider FROM provider_config ORDER BY provider")?;
    let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
    let mut providers = Vec::new();
    for row in rows {
        providers.push(row?);
    }
    Ok(providers)
}

/// Every row as (provider, stored JSON), for maintenance.
pub(crate) fn all(tx: &Connection) -> Result<Vec<crate::rows::StoredConfigRow>, TxError> {
    let mut stmt = tx.prepare("SELECT provider, config FROM provider_config ORDER BY provider")?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, config_text(row.get_ref(1)?))))?;
    let mut all = Vec::new();
    for row in rows {
        all.push(row?);
    }
    Ok(all)
}

/// Rewrites a row's JSON in place, keeping its `updated_at` (maintenance, not a change).
pub(crate) fn set_config(tx: &Connection, provider: &str, config: &str) -> Result<(), TxError> {
    tx.execute(
        "UPDATE provider_config SET config = ?2 WHERE provider = ?1",
        [provider, config],
    )?;
    Ok(())
}

/// Every row as (provider, stored JSON, `updated_at`).
pub(crate) fn all_rows(conn: &Connection) -> Result<Vec<(String, String, String)>, TxError> {
    let mut stmt =
        conn.prepare("SELECT provider, config, updated_at FROM provider_config ORDER BY provider")?;
    let rows = stmt.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            config_text(row.get_ref(1)?),
            row.get(2)?,
        ))
    })?;
    let mut all = Vec::new();
    for row in rows {
        let (provider, config, updated_at) = row?;
        match config {
            Ok(config) => all.push((provider, config, updated_at)),
            Err(problem) => {
                return Err(TxError::Store(StoreError::InvalidStoredConfig {
                    provider,
                    problem,
                }));
            }
        }
    }
    Ok(all)
}
