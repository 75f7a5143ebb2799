//! Durable, concurrent-safe writes of one entry.
//!
//! A write is a read-modify-write under an exclusive advisory lock on a side file
//! (`.<name>.lock`; locking the document itself would not work, as the rename replaces it).
//! Under the lock, temporary files of writers that died are removed (only lock holders make
//! them). The change is spliced into the text and checked ([`crate::edit`]), and the result
//! replaces the file through [`private_fs::write_atomic`] (0600 temporary file, fsync,
//! rename, directory fsync; symbolic links written through; owner kept).

use std::fs;
use std::io;
use std::path::Path;

use private_fs::{LockFile, create_private_dir, resolve_link};
use secrets_core::{ErrorKind, Location, ProviderError};

use crate::document::{self, MAX_FILE_BYTES};
use crate::edit::{self, Change};
use crate::parse::{ParseFailure, text_position};
use crate::{Format, PROVIDER_NAME};

fn io_error(operation: &'static str, path: &Path, source: io::Error) -> ProviderError {
    ProviderError::io(PROVIDER_NAME, operation, Location::file(path), source)
}

/// Applies a change to the file at `path`; returns whether the key existed before.
pub(crate) fn apply(path: &Path, key: &str, change: Change<'_>) -> Result<bool, ProviderError> {
    if key.is_empty() {
        return Err(
            ProviderError::new(PROVIDER_NAME, ErrorKind::InvalidValue, "the key is empty")
                .with_location(Location::file(path)),
        );
    }
    // The format follows the configured name, even when it is a link to another name.
    let format = Format::from_path(path);
    let target = resolve_link(path).map_err(|e| io_error("resolving", path, e))?;
    if matches!(change, Change::Delete) && fs::symlink_metadata(&target).is_err() {
        // Nothing to delete, and nothing to create (no directory, no lock file).
        return Ok(false);
    }
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    create_private_dir(dir).map_err(|e| io_error("creating the directory", dir, e))?;
    let lock = LockFile::for_file(&target)
        .map_err(|e| io_error("locking", &private_fs::lock_path(&target), e))?;
    remove_stale_temps(&target);

    let bytes = private_fs::read_regular_file(&target, MAX_FILE_BYTES as u64)
        .map_err(|e| io_error("reading", &target, e))?
        .unwrap_or_default();
    let refuse = |failure: ParseFailure| {
        ParseFailure {
            message: format!("{}; refusing to overwrite the file", failure.message),
            ..failure
        }
        .to_error(&target)
    };
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        refuse(ParseFailure::not_utf8(text_position(
            &bytes,
            e.valid_up_to(),
        )))
    })?;
    let doc = document::parse(format, text).map_err(refuse)?;
    let existed = doc.get(key).is_some();
    match edit::apply(format, text, &doc, key, change) {
        Ok(Some(edited)) => private_fs::write_atomic(&target, edited.as_bytes())
            .map_err(|e| io_error("replacing", &target, e))?,
        Ok(None) => {}
        Err(e) => {
            return Err(ParseFailure::from(e)
                .to_error(&target)
                .with_key(key.to_owned()));
        }
    }
    // The lock is released when `lock` is dropped (also on the error paths above).
    drop(lock);
    Ok(existed)
}

/// Removes temporary files left by writers that died; called with the lock held, when every
/// temporary file of the target is stale. Failures only leave them for the next writer.
fn remove_stale_temps(target: &Path) {
    let Ok(stale) = private_fs::stale_temps(target) else {
        return;
    };
    for temp in stale {
        match fs::remove_file(&temp) {
            Ok(()) => tracing::warn!(
                path = %temp.display(),
                "removed a temporary file left by an interrupted write"
            ),
            Err(e) => tracing::warn!(
                path = %temp.display(),
                error = %e,
                "cannot remove a temporary file left by an interrupted write"
            ),
        }
    }
}
