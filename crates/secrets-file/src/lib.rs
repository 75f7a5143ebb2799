//! Secrets-file provider: one JSON or YAML mapping of key -> value.
//!
//! - **Format** by extension: `.yaml`/`.yml` are YAML, anything else JSON. A YAML file stays
//!   YAML when written.
//! - **Keys** match exactly. String values are returned as is, numbers and booleans as their
//!   text; `null`, sequences and mappings are an error for that key naming the file.
//! - **Location**: [`FileProvider::new`] takes a path, honoured even before the file exists
//!   (writes create it); [`FileProvider::from_settings`] uses the configured path
//!   ([`FileSettings`], `<APP>_SECRETS_FILE`) or else the first existing of
//!   `~/.<app>/secrets.json`, `secrets.yaml`, `secrets.yml`, else `secrets.json`.
//! - **Freshness**: each lookup stats the file and re-reads it only when its identity (inode),
//!   size or modification time changed, so edits are seen without a restart.
//! - **Errors**: a malformed file, or a top level that is not a mapping, is a
//!   [`ErrorKind::Malformed`] error naming the file and line/column; no error carries a value.
//! - **Writes** are atomic and locked (see [`FileProvider::set`](secrets_core::SecretProvider::set)):
//!   two processes writing different keys lose nothing; the file is 0600 from creation and a
//!   missing directory is created 0700. Comments in a YAML file are not preserved by writes.
//! - A warning is logged when the file is readable by group or others.
//!
//! ```
//! use secrets_core::SecretProvider;
//! use secrets_file::FileProvider;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let provider = FileProvider::new(dir.path().join("secrets.yaml"));
//! let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! rt.block_on(async {
//!     provider.set("HF_TOKEN", &"hf_x".into()).await.unwrap();
//!     assert_eq!(provider.get("HF_TOKEN").await.unwrap().unwrap().expose(), "hf_x");
//! });
//! let text = std::fs::read_to_string(dir.path().join("secrets.yaml")).unwrap();
//! assert_eq!(text, "HF_TOKEN: hf_x\n");
//! ```

mod parse;
mod write;

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use private_fs::{AppName, LocateError};
use secrets_core::{ErrorKind, Location, ProviderError, Secret, SecretProvider, async_trait};
use zeroize::Zeroizing;

use parse::{Entry, ParseFailure, text_position};
use write::Change;

/// The provider name used in provenance and errors.
pub const PROVIDER_NAME: &str = "file";

/// File names looked for in `~/.<app>/`, in order.
pub const DEFAULT_FILE_NAMES: [&str; 3] = ["secrets.json", "secrets.yaml", "secrets.yml"];

/// The document format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

impl Format {
    /// The format a path's extension implies: YAML for `.yaml`/`.yml`, otherwise JSON.
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml") => {
                Self::Yaml
            }
            _ => Self::Json,
        }
    }
}

/// The candidate default paths of an application, in lookup order:
/// `~/.<app>/secrets.json`, `secrets.yaml`, `secrets.yml`.
pub fn default_paths(app: &AppName) -> Result<Vec<PathBuf>, LocateError> {
    let dir = private_fs::app_dir(app)?;
    Ok(DEFAULT_FILE_NAMES.iter().map(|n| dir.join(n)).collect())
}

/// Settings of the file provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSettings {
    /// The secrets file; `None` means the first existing of the [`default_paths`], else
    /// `~/.<app>/secrets.json`. A leading `~` is expanded.
    pub path: Option<PathBuf>,
}

impl FileSettings {
    /// Settings naming a file.
    pub fn with_path(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
        }
    }

    /// The settings an application gets from its configuration variables: the file from
    /// `<APP>_SECRETS_FILE` (`SIMPLETUNER_SECRETS_FILE`), if set and not empty.
    pub fn from_lookup(
        app: &AppName,
        lookup: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Self, ProviderError> {
        let variable = app.var(SECRETS_FILE_VAR_SUFFIX);
        let path = private_fs::read_var(lookup, &variable)
            .map_err(|e| misconfigured(e, Location::Variable(variable.clone())))?;
        Ok(Self {
            path: path.map(PathBuf::from),
        })
    }
}

/// The suffix of the variable naming the secrets file: `<APP>_SECRETS_FILE`.
pub const SECRETS_FILE_VAR_SUFFIX: &str = "SECRETS_FILE";

fn misconfigured(error: LocateError, location: Location) -> ProviderError {
    ProviderError::new(PROVIDER_NAME, ErrorKind::Misconfigured, error.to_string())
        .with_location(location)
}

/// Reads and writes secrets in a JSON or YAML file.
#[derive(Debug, Clone)]
pub struct FileProvider {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    format: Format,
    loaded: Mutex<Option<Loaded>>,
}

#[derive(Debug)]
struct Loaded {
    stamp: Stamp,
    content: Result<HashMap<String, Entry>, ParseFailure>,
}

/// What identifies a version of the file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
    device: u64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Self {
        #[cfg(unix)]
        let (inode, device) = {
            use std::os::unix::fs::MetadataExt;
            (meta.ino(), meta.dev())
        };
        #[cfg(not(unix))]
        let (inode, device) = (0, 0);
        Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
            device,
        }
    }
}

impl FileProvider {
    /// A provider for this path. The file need not exist yet: lookups find nothing until it
    /// does, and writes create it.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self {
            inner: Arc::new(Inner {
                format: Format::from_path(&path),
                path,
                loaded: Mutex::new(None),
            }),
        }
    }

    /// The provider an application's settings describe: the configured file (with a leading
    /// `~` expanded), or the first existing of the [`default_paths`], else
    /// `~/.<app>/secrets.json`. Without a home directory to find it in, a
    /// [`ErrorKind::Misconfigured`] error.
    pub fn from_settings(app: &AppName, settings: &FileSettings) -> Result<Self, ProviderError> {
        let path = match &settings.path {
            Some(path) => {
                private_fs::expand_home(path).map_err(|e| misconfigured(e, Location::file(path)))?
            }
            None => {
                let candidates = default_paths(app).map_err(|e| {
                    ProviderError::new(
                        PROVIDER_NAME,
                        ErrorKind::Misconfigured,
                        format!("cannot locate the default secrets file: {e}"),
                    )
                })?;
                candidates
                    .iter()
                    .find(|p| p.is_file())
                    .unwrap_or(&candidates[0])
                    .clone()
            }
        };
        Ok(Self::new(path))
    }

    /// The file this provider reads and writes.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The file's format.
    pub fn format(&self) -> Format {
        self.inner.format
    }

    fn lock(&self) -> MutexGuard<'_, Option<Loaded>> {
        self.inner
            .loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn io_error(&self, operation: &'static str, source: io::Error) -> ProviderError {
        ProviderError::io(
            PROVIDER_NAME,
            operation,
            Location::file(&self.inner.path),
            source,
        )
    }

    /// Runs `f` on the current content of the file, re-reading it only when it changed.
    /// `Ok(None)` when the file does not exist.
    fn with_content<T>(
        &self,
        f: impl FnOnce(&HashMap<String, Entry>) -> Result<T, ProviderError>,
    ) -> Result<Option<T>, ProviderError> {
        let path = &self.inner.path;
        let meta = match fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                *self.lock() = None;
                return Ok(None);
            }
            Err(e) => return Err(self.io_error("reading metadata of", e)),
        };
        let stamp = Stamp::of(&meta);
        let mut loaded = self.lock();
        if loaded.as_ref().is_none_or(|l| l.stamp != stamp) {
            private_fs::warn_if_exposed(path, &meta, "secrets file");
            let bytes = match fs::read(path) {
                Ok(bytes) => Zeroizing::new(bytes),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    *loaded = None;
                    return Ok(None);
                }
                Err(e) => return Err(self.io_error("reading", e)),
            };
            let content = match std::str::from_utf8(&bytes) {
                Ok(text) => parse::parse(self.inner.format, text),
                Err(e) => Err(ParseFailure::not_utf8(text_position(
                    &bytes,
                    e.valid_up_to(),
                ))),
            };
            tracing::debug!(path = %path.display(), ok = content.is_ok(), "secrets file (re)loaded");
            *loaded = Some(Loaded { stamp, content });
        }
        match loaded.as_ref().map(|l| &l.content) {
            Some(Ok(map)) => f(map).map(Some),
            Some(Err(failure)) => Err(failure.to_error(path)),
            None => Ok(None),
        }
    }

    /// Looks a key up synchronously (the async trait method calls this).
    pub fn get_blocking(&self, key: &str) -> Result<Option<Secret>, ProviderError> {
        let found = self.with_content(|map| match map.get(key) {
            None => Ok(None),
            Some(Entry::Text(value)) => Ok(Some(value.clone())),
            Some(Entry::Unsupported(kind)) => Err(ProviderError::new(
                PROVIDER_NAME,
                ErrorKind::InvalidValue,
                format!("the value is {kind}; only strings, numbers and booleans can be secrets"),
            )
            .with_key(key)
            .with_location(Location::file(&self.inner.path))),
        })?;
        Ok(found.flatten())
    }

    /// The keys in the file (sorted); empty when the file does not exist.
    pub fn keys(&self) -> Result<Vec<String>, ProviderError> {
        let keys = self.with_content(|map| {
            let mut keys: Vec<String> = map.keys().cloned().collect();
            keys.sort();
            Ok(keys)
        })?;
        Ok(keys.unwrap_or_default())
    }

    /// Sets a key synchronously, with the guarantees described in the crate documentation.
    pub fn set_blocking(&self, key: &str, value: &Secret) -> Result<(), ProviderError> {
        let result = write::apply(&self.inner.path, self.inner.format, key, Change::Set(value));
        *self.lock() = None;
        result.map(drop)
    }

    /// Deletes a key synchronously; `Ok(true)` when it existed.
    pub fn delete_blocking(&self, key: &str) -> Result<bool, ProviderError> {
        let result = write::apply(&self.inner.path, self.inner.format, key, Change::Delete);
        *self.lock() = None;
        result
    }

    /// Runs blocking file work off the async runtime's threads.
    async fn off_thread<T: Send + 'static>(
        &self,
        f: impl FnOnce(FileProvider) -> Result<T, ProviderError> + Send + 'static,
    ) -> Result<T, ProviderError> {
        let this = self.clone();
        private_fs::unblock(move || f(this))
            .await
            .map_err(|e| self.io_error("running the file task", e))?
    }
}

#[async_trait]
impl SecretProvider for FileProvider {
    fn name(&self) -> &str {
        PROVIDER_NAME
    }

    /// True when the file exists.
    fn is_available(&self) -> bool {
        self.inner.path.is_file()
    }

    async fn get(&self, key: &str) -> Result<Option<Secret>, ProviderError> {
        let key = key.to_owned();
        self.off_thread(move |this| this.get_blocking(&key)).await
    }

    /// Reads and parses the file; a missing file is reported as not found.
    async fn health(&self) -> Result<(), ProviderError> {
        let found = self
            .off_thread(|this| this.with_content(|_| Ok(())))
            .await?;
        found.ok_or_else(|| {
            ProviderError::new(
                PROVIDER_NAME,
                ErrorKind::NotFound,
                "the file does not exist",
            )
            .with_location(Location::file(&self.inner.path))
        })
    }

    fn supports_writes(&self) -> bool {
        true
    }

    /// Read-modify-write under an exclusive lock, through a 0600 temporary file, fsync and
    /// rename, on a blocking thread.
    async fn set(&self, key: &str, value: &Secret) -> Result<(), ProviderError> {
        let (key, value) = (key.to_owned(), value.clone());
        self.off_thread(move |this| this.set_blocking(&key, &value))
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool, ProviderError> {
        let key = key.to_owned();
        self.off_thread(move |this| this.delete_blocking(&key))
            .await
    }
}

#[cfg(test)]
mod tests;
