//! [`AuditKey`]: the audit trail's signing key, found as the original finds it.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use private_fs::Created;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::{StoreError, StoreSettings};

/// Where an [`AuditKey`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditKeyOrigin {
    /// An environment variable (its name).
    Environment(String),
    /// An existing key file.
    File(PathBuf),
    /// Generated now and saved to this key file.
    Generated(PathBuf),
    /// Given by the caller.
    Given,
}

/// The HMAC key that signs the audit chain. `Debug` shows where it came from, never the key.
///
/// Found in this order, as the original server finds it: the variable `<APP>_AUDIT_KEY`
/// (its UTF-8 bytes), else the file `audit.key` beside `audit.db` (its raw bytes), else 32
/// random bytes saved to that file, created 0600 from the first byte and never overwritten.
#[derive(Clone)]
pub struct AuditKey {
    bytes: Zeroizing<Vec<u8>>,
    origin: AuditKeyOrigin,
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditKey")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Length of a generated key, as the original's `secrets.token_bytes(32)`.
const GENERATED_KEY_LEN: usize = 32;

impl AuditKey {
    /// A key from raw bytes. An empty key signs nothing (anyone could forge a chain with it)
    /// and is refused.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Result<Self, StoreError> {
        let bytes = Zeroizing::new(bytes.into());
        if bytes.is_empty() {
            return Err(StoreError::AuditKey {
                source_name: "the given key".to_owned(),
                problem: "the key is empty".to_owned(),
            });
        }
        Ok(Self {
            bytes,
            origin: AuditKeyOrigin::Given,
        })
    }

    pub(crate) fn from_env(var: &str, text: String) -> Result<Self, StoreError> {
        let text = Zeroizing::new(text);
        Ok(Self {
            bytes: Zeroizing::new(text.as_bytes().to_vec()),
            origin: AuditKeyOrigin::Environment(var.to_owned()),
        })
    }

    /// The key of `settings`: the variable's, else the key file's, else a new key saved to
    /// the key file.
    pub fn load(settings: &StoreSettings) -> Result<Self, StoreError> {
        match Self::load_existing(settings)? {
            Some(key) => Ok(key),
            None => Self::load_file(&settings.audit_key_file),
        }
    }

    /// The key of `settings` if there is one (the variable's, else the key file's); never
    /// generates one.
    pub fn load_existing(settings: &StoreSettings) -> Result<Option<Self>, StoreError> {
        if let Some(key) = &settings.audit_key_from_env {
            return Ok(Some(key.clone()));
        }
        let path = &settings.audit_key_file;
        Ok(read_key_file(path)?.map(|bytes| Self {
            bytes,
            origin: AuditKeyOrigin::File(path.clone()),
        }))
    }

    /// The key in `path`, generating it there when the file does not exist.
    pub fn load_file(path: &Path) -> Result<Self, StoreError> {
        if let Some(bytes) = read_key_file(path)? {
            return Ok(Self {
                bytes,
                origin: AuditKeyOrigin::File(path.to_owned()),
            });
        }
        let mut raw = Zeroizing::new(vec![0u8; GENERATED_KEY_LEN]);
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| StoreError::AuditKey {
                source_name: path.display().to_string(),
                problem: "the system random number generator failed".to_owned(),
            })?;
        let created = private_fs::create_new(path, &raw)
            .map_err(|e| StoreError::io(path, "creating the audit key", e))?;
        match created {
            Created::Ours => {
                tracing::info!(path = %path.display(), "generated a new audit signing key");
                Ok(Self {
                    bytes: raw,
                    origin: AuditKeyOrigin::Generated(path.to_owned()),
                })
            }
            // Another process created it first: use theirs.
            Created::Existing => Ok(Self {
                bytes: read_key_file(path)?.ok_or_else(|| StoreError::AuditKey {
                    source_name: path.display().to_string(),
                    problem: "the file vanished while it was being created".to_owned(),
                })?,
                origin: AuditKeyOrigin::File(path.to_owned()),
            }),
        }
    }

    /// Where the key came from.
    pub fn origin(&self) -> &AuditKeyOrigin {
        &self.origin
    }

    /// The HMAC-SHA256 key of the original's chain formula.
    pub(crate) fn chain_key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.bytes)
    }

    /// A separate key for the MAC over every column of a row, derived from the same secret.
    pub(crate) fn row_key(&self) -> hmac::Key {
        let derived = hmac::sign(&self.chain_key(), b"simpletuner-audit-row-mac-v1");
        hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
    }
}

/// Longest accepted audit key file (the original's is 32 bytes).
const MAX_KEY_FILE_LEN: u64 = 64 * 1024;

fn read_key_file(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    // A regular file only: a FIFO or device planted at the path is an error, never a hang.
    let Some(bytes) = private_fs::read_regular_file(path, MAX_KEY_FILE_LEN)
        .map_err(|e| StoreError::io(path, "reading the audit key", e))?
    else {
        return Ok(None);
    };
    if let Ok(meta) = fs::metadata(path) {
        private_fs::warn_if_unsafe(path, &meta, "audit key file");
    }
    if bytes.is_empty() {
        return Err(StoreError::AuditKey {
            source_name: path.display().to_string(),
            problem: "the file is empty (a chain signed with an empty key proves nothing)"
                .to_owned(),
        });
    }
    Ok(Some(bytes))
}
