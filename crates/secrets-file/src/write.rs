//! Durable, concurrent-safe writes of the secrets document.
//!
//! A write is a read-modify-write of the whole document under an exclusive advisory lock on a
//! side file (`.<name>.lock`; locking the document itself would not work, as the rename
//! replaces it). The new content replaces the document atomically through
//! [`private_fs::write_atomic`] (0600 temporary file, fsync, rename, directory fsync), so a
//! reader sees the old or the new document, never a mix, and a crash leaves one of the two.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use private_fs::{LockFile, create_private_dir};
use secrets_core::{ErrorKind, Location, ProviderError, Secret};
use zeroize::{Zeroize, Zeroizing};

use crate::parse::{ParseFailure, json_failure, text_position, yaml_failure};
use crate::{Format, PROVIDER_NAME};

/// What a write does to the document.
#[derive(Clone, Copy)]
pub(crate) enum Change<'a> {
    Set(&'a Secret),
    Delete,
}

fn io_error(operation: &'static str, path: &Path, source: io::Error) -> ProviderError {
    ProviderError::io(PROVIDER_NAME, operation, Location::file(path), source)
}

/// Applies a change; returns whether the key existed before.
pub(crate) fn apply(
    path: &Path,
    format: Format,
    key: &str,
    change: Change<'_>,
) -> Result<bool, ProviderError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&dir).map_err(|e| io_error("creating the directory", &dir, e))?;
    let lock = LockFile::for_file(path)
        .map_err(|e| io_error("locking the file", &private_fs::lock_path(path), e))?;

    let current = match fs::read(path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Zeroizing::new(Vec::new()),
        Err(e) => return Err(io_error("reading", path, e)),
    };
    let mut document = Document::parse(format, &current, path)?;
    let existed = document.apply(key, change);
    // Deleting an absent key changes nothing, so the file is left alone.
    if existed || matches!(change, Change::Set(_)) {
        let bytes = document.serialize(path)?;
        private_fs::write_atomic(path, &bytes).map_err(|e| io_error("replacing", path, e))?;
    }
    // The lock is released when `lock` is dropped (also on the error paths above).
    drop(lock);
    Ok(existed)
}

/// The document as a generic value tree, so that keys this crate does not understand
/// (nested mappings, lists) survive a rewrite untouched.
struct Document {
    tree: Tree,
}

enum Tree {
    Json(serde_json::Map<String, serde_json::Value>),
    Yaml(serde_yaml::Mapping),
}

impl Document {
    fn parse(format: Format, bytes: &[u8], path: &Path) -> Result<Self, ProviderError> {
        let refuse = |failure: ParseFailure| {
            ParseFailure {
                message: format!("{}; refusing to overwrite the file", failure.message),
                ..failure
            }
            .to_error(path)
        };
        let not_a_mapping = || ParseFailure {
            line: None,
            column: None,
            message: "the top level is not a mapping".to_owned(),
        };
        let text = std::str::from_utf8(bytes).map_err(|e| {
            refuse(ParseFailure::not_utf8(text_position(
                bytes,
                e.valid_up_to(),
            )))
        })?;
        let tree = if text.trim().is_empty() {
            match format {
                Format::Json => Tree::Json(serde_json::Map::new()),
                Format::Yaml => Tree::Yaml(serde_yaml::Mapping::new()),
            }
        } else {
            match format {
                Format::Json => match serde_json::from_str::<serde_json::Value>(text) {
                    Ok(serde_json::Value::Object(map)) => Tree::Json(map),
                    Ok(mut other) => {
                        wipe_json(&mut other);
                        return Err(refuse(not_a_mapping()));
                    }
                    Err(e) => return Err(refuse(json_failure(&e))),
                },
                Format::Yaml => match serde_yaml::from_str::<serde_yaml::Value>(text) {
                    Ok(serde_yaml::Value::Mapping(map)) => Tree::Yaml(map),
                    Ok(serde_yaml::Value::Null) => Tree::Yaml(serde_yaml::Mapping::new()),
                    Ok(mut other) => {
                        wipe_yaml(&mut other);
                        return Err(refuse(not_a_mapping()));
                    }
                    Err(e) => return Err(refuse(yaml_failure(&e))),
                },
            }
        };
        Ok(Self { tree })
    }

    fn apply(&mut self, key: &str, change: Change<'_>) -> bool {
        match (&mut self.tree, change) {
            (Tree::Json(map), Change::Set(value)) => {
                let old = map.insert(key.to_owned(), value.expose().into());
                old.map(|mut v| wipe_json(&mut v)).is_some()
            }
            (Tree::Json(map), Change::Delete) => map
                .shift_remove(key)
                .map(|mut v| wipe_json(&mut v))
                .is_some(),
            (Tree::Yaml(map), Change::Set(value)) => {
                let old = map.insert(key.into(), value.expose().into());
                old.map(|mut v| wipe_yaml(&mut v)).is_some()
            }
            (Tree::Yaml(map), Change::Delete) => map
                .shift_remove(key)
                .map(|mut v| wipe_yaml(&mut v))
                .is_some(),
        }
    }

    fn serialize(&self, path: &Path) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        let text = match &self.tree {
            Tree::Json(map) => serde_json::to_string_pretty(map).map(|s| s + "\n").ok(),
            Tree::Yaml(map) => serde_yaml::to_string(map).ok(),
        };
        // A serialiser's message could quote a value, so only the fact is reported.
        let text = text.ok_or_else(|| {
            ProviderError::new(
                PROVIDER_NAME,
                ErrorKind::Malformed,
                "cannot serialise the updated document",
            )
            .with_location(Location::file(path))
        })?;
        Ok(Zeroizing::new(text.into_bytes()))
    }
}

impl Drop for Document {
    fn drop(&mut self) {
        match &mut self.tree {
            Tree::Json(map) => map.values_mut().for_each(wipe_json),
            Tree::Yaml(map) => map.values_mut().for_each(wipe_yaml),
        }
    }
}

/// Overwrites every string in a JSON tree before it is freed.
fn wipe_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(wipe_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(wipe_json),
        _ => {}
    }
}

/// Overwrites every string in a YAML tree before it is freed.
fn wipe_yaml(value: &mut serde_yaml::Value) {
    match value {
        serde_yaml::Value::String(s) => s.zeroize(),
        serde_yaml::Value::Sequence(items) => items.iter_mut().for_each(wipe_yaml),
        serde_yaml::Value::Mapping(map) => map.values_mut().for_each(wipe_yaml),
        serde_yaml::Value::Tagged(tagged) => wipe_yaml(&mut tagged.value),
        _ => {}
    }
}
