//! Secrets-file provider: one JSON or YAML mapping of key -> value.
//!
//! - **Format** by extension: `.yaml`/`.yml` are YAML, anything else JSON. A YAML file stays
//!   YAML when written.
//! - **Keys** match exactly (a YAML key is the text of its scalar: `123: x` is key `123`).
//!   Values are returned as written in the file: strings as is, numbers and booleans as
//!   their text (`0123`, `0x1F`, `yes` and `123456789012345678901` stay exactly that).
//!   `null` counts as missing (the chain goes on); sequences, mappings and mistagged values
//!   (`!!int hunter2`) are an error for that key, naming the file, line and column.
//! - **Location**: [`FileProvider::new`] takes a path, honoured even before the file exists
//!   (writes create it); [`FileProvider::from_settings`] uses the configured path
//!   ([`FileSettings`], `<APP>_SECRETS_FILE`) or else the first existing of
//!   `~/.<app>/secrets.json`, `secrets.yaml`, `secrets.yml`, else `secrets.json`.
//! - **Freshness**: each lookup stats the file and re-reads it only when its identity (inode),
//!   size or modification time changed, so edits are seen without a restart. The default
//!   file is chosen again at each lookup, so a file created later is found.
//! - **Errors**: a malformed file, a top level that is not a mapping, a repeated key, more
//!   than one YAML document, nesting deeper than 64 levels or a file over 1 MiB is an
//!   [`ErrorKind::Malformed`] error naming the file and line/column; an unreadable directory
//!   or file is an error, not an absent key; a directory, FIFO, device or dangling link where
//!   the file should be is an error at once (never a hang). No error carries text from the
//!   file other than key names.
//! - **Writes** (see [`FileProvider::set`](secrets_core::SecretProvider::set)) change one
//!   entry and leave every other byte of the file as it was (comments, order, formatting,
//!   numbers as written), so the original server's PyYAML reads untouched entries as before;
//!   new values are double-quoted. The result is parsed again and checked before it replaces
//!   the file, atomically and under a lock: two processes writing different keys lose
//!   nothing, the file is 0600 from creation, a missing directory is created 0700, a
//!   symbolic link is written through (the link stays), root keeps a user's file owned by
//!   that user, and temporary files left by a killed writer are removed by the next write.
//!   The same parser serves reads and writes: what `get` accepts, `set` accepts.
//! - A warning is logged when the file is readable by group or others, owned by another
//!   user, or in a directory others can write to; in strict mode
//!   ([`FileSettings::permissions`], `<APP>_STRICT_PERMISSIONS=1`) such a file is refused
//!   with an [`ErrorKind::PermissionDenied`] error naming it and the fix.
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
//! assert_eq!(text, "HF_TOKEN: \"hf_x\"\n");
//! ```

mod document;
mod edit;
#[doc(hidden)]
pub mod fuzzing;
mod json;
mod parse;
mod write;
mod yaml;

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use private_fs::{AppName, LocateError, PermissionPolicy};
use secrets_core::{ErrorKind, Location, ProviderError, Secret, SecretProvider, async_trait};

use document::{Document, MAX_FILE_BYTES, Value};
use edit::Change;
use parse::ParseFailure;

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
    /// Whether a file others could read or replace is only warned about (the default) or
    /// refused ([`PermissionPolicy::Strict`], `<APP>_STRICT_PERMISSIONS=1`).
    pub permissions: PermissionPolicy,
}

impl FileSettings {
    /// Settings naming a file.
    pub fn with_path(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
            ..Self::default()
        }
    }

    /// The settings an application gets from its configuration variables: the file from
    /// `<APP>_SECRETS_FILE` (`SIMPLETUNER_SECRETS_FILE`), if set and not empty, and the
    /// permission policy from `<APP>_STRICT_PERMISSIONS`.
    pub fn from_lookup(
        app: &AppName,
        lookup: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Self, ProviderError> {
        let variable = app.var(SECRETS_FILE_VAR_SUFFIX);
        let path = private_fs::read_var(lookup, &variable).map_err(|e| {
            ProviderError::new(PROVIDER_NAME, ErrorKind::Misconfigured, e.to_string())
                .with_location(Location::Variable(variable.clone()))
        })?;
        let permissions = PermissionPolicy::from_lookup(app, lookup).map_err(|e| {
            ProviderError::new(PROVIDER_NAME, ErrorKind::Misconfigured, e.to_string())
                .with_location(Location::Variable(PermissionPolicy::var(app)))
        })?;
        Ok(Self {
            path: path.map(PathBuf::from),
            permissions,
        })
    }
}

/// The suffix of the variable naming the secrets file: `<APP>_SECRETS_FILE`.
pub const SECRETS_FILE_VAR_SUFFIX: &str = "SECRETS_FILE";

/// Reads and writes secrets in a JSON or YAML file.
#[derive(Debug, Clone)]
pub struct FileProvider {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    target: Target,
    loaded: Mutex<Option<Loaded>>,
    permissions: PermissionPolicy,
}

/// Which file the provider uses.
#[derive(Debug, Clone)]
enum Target {
    /// A configured path.
    Fixed(PathBuf),
    /// The first existing of the default candidates, else the first one; chosen again at
    /// each lookup.
    FirstExisting(Vec<PathBuf>),
}

#[derive(Debug)]
struct Loaded {
    path: PathBuf,
    stamp: Stamp,
    content: Result<Document, ParseFailure>,
}

/// What identifies a version of the file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
    device: u64,
    // A chmod changes no content but may change whether the file is refused.
    mode: u32,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Self {
        #[cfg(unix)]
        let (inode, device, mode) = {
            use std::os::unix::fs::MetadataExt;
            (meta.ino(), meta.dev(), meta.mode())
        };
        #[cfg(not(unix))]
        let (inode, device, mode) = (0, 0, 0);
        Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
            device,
            mode,
        }
    }
}

fn io_error(operation: &'static str, path: &Path, source: io::Error) -> ProviderError {
    ProviderError::io(PROVIDER_NAME, operation, Location::file(path), source)
}

impl FileProvider {
    /// A provider for this path. The file need not exist yet: lookups find nothing until it
    /// does, and writes create it.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_target(Target::Fixed(path.into()))
    }

    fn with_target(target: Target) -> Self {
        Self {
            inner: Arc::new(Inner {
                target,
                loaded: Mutex::new(None),
                permissions: PermissionPolicy::default(),
            }),
        }
    }

    /// The same provider with this permission policy: [`PermissionPolicy::Strict`] refuses
    /// a file that group or others can read (or replace) instead of warning about it.
    pub fn with_permission_policy(self, permissions: PermissionPolicy) -> Self {
        Self {
            inner: Arc::new(Inner {
                target: self.inner.target.clone(),
                loaded: Mutex::new(None),
                permissions,
            }),
        }
    }

    /// The provider an application's settings describe: the configured file (with a leading
    /// `~` expanded), or the first existing of the [`default_paths`], else
    /// `~/.<app>/secrets.json`. Without a home directory to find it in, a
    /// [`ErrorKind::Misconfigured`] error.
    pub fn from_settings(app: &AppName, settings: &FileSettings) -> Result<Self, ProviderError> {
        match &settings.path {
            Some(path) => {
                let path = private_fs::expand_home(path).map_err(|e| {
                    ProviderError::new(PROVIDER_NAME, ErrorKind::Misconfigured, e.to_string())
                        .with_location(Location::file(path))
                })?;
                Ok(Self::new(path).with_permission_policy(settings.permissions))
            }
            None => {
                let candidates = default_paths(app).map_err(|e| {
                    ProviderError::new(
                        PROVIDER_NAME,
                        ErrorKind::Misconfigured,
                        format!("cannot locate the default secrets file: {e}"),
                    )
                })?;
                Ok(Self::with_target(Target::FirstExisting(candidates))
                    .with_permission_policy(settings.permissions))
            }
        }
    }

    /// The file this provider reads and writes now (for a default location, the first
    /// candidate that exists, else the first candidate).
    pub fn path(&self) -> PathBuf {
        self.locate().unwrap_or_else(|_| match &self.inner.target {
            Target::Fixed(path) => path.clone(),
            Target::FirstExisting(candidates) => candidates[0].clone(),
        })
    }

    /// The file's format (by the extension of [`path`](Self::path)).
    pub fn format(&self) -> Format {
        Format::from_path(&self.path())
    }

    /// The file to use now; an error when a candidate cannot be checked (for example a
    /// directory without search permission): that is a failure, not an absent file.
    fn locate(&self) -> Result<PathBuf, ProviderError> {
        match &self.inner.target {
            Target::Fixed(path) => Ok(path.clone()),
            Target::FirstExisting(candidates) => {
                for candidate in candidates {
                    match fs::symlink_metadata(candidate) {
                        Ok(_) => return Ok(candidate.clone()),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(io_error("looking for the secrets file", candidate, e));
                        }
                    }
                }
                Ok(candidates[0].clone())
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Loaded>> {
        self.inner
            .loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the current content of the file, re-reading it only when it changed.
    /// `Ok(None)` when the file does not exist.
    fn with_document<T>(
        &self,
        f: impl FnOnce(&Path, &Document) -> Result<T, ProviderError>,
    ) -> Result<Option<T>, ProviderError> {
        let path = self.locate()?;
        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if fs::symlink_metadata(&path).is_ok() {
                    // A dangling link: reading reports it with its target.
                    return Err(match private_fs::read_regular_file(&path, 0) {
                        Err(e) => io_error("reading", &path, e),
                        Ok(_) => io_error("reading", &path, io::ErrorKind::NotFound.into()),
                    });
                }
                *self.lock() = None;
                return Ok(None);
            }
            Err(e) => return Err(io_error("reading metadata of", &path, e)),
        };
        let stamp = Stamp::of(&meta);
        let mut loaded = self.lock();
        let fresh = loaded
            .as_ref()
            .is_some_and(|l| l.stamp == stamp && l.path == path);
        if !fresh {
            self.inner
                .permissions
                .check(&path, &meta, "secrets file")
                .map_err(|e| {
                    ProviderError::new(PROVIDER_NAME, ErrorKind::PermissionDenied, e.to_string())
                        .with_location(Location::file(&path))
                })?;
            let bytes = match private_fs::read_regular_file(&path, MAX_FILE_BYTES as u64) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => {
                    *loaded = None;
                    return Ok(None);
                }
                Err(e) => {
                    *loaded = None;
                    return Err(io_error("reading", &path, e));
                }
            };
            let content = match std::str::from_utf8(&bytes) {
                Ok(text) => document::parse(Format::from_path(&path), text),
                Err(e) => Err(ParseFailure::not_utf8(parse::text_position(
                    &bytes,
                    e.valid_up_to(),
                ))),
            };
            tracing::debug!(path = %path.display(), ok = content.is_ok(), "secrets file (re)loaded");
            *loaded = Some(Loaded {
                path: path.clone(),
                stamp,
                content,
            });
        }
        match loaded.as_ref().map(|l| &l.content) {
            Some(Ok(doc)) => f(&path, doc).map(Some),
            Some(Err(failure)) => Err(failure.to_error(&path)),
            None => Ok(None),
        }
    }

    /// Looks a key up synchronously (the async trait method calls this off the runtime).
    pub fn get_blocking(&self, key: &str) -> Result<Option<Secret>, ProviderError> {
        let found = self.with_document(|path, doc| match doc.get(key) {
            None => Ok(None),
            Some(entry) => match &entry.value {
                Value::Text(value) => Ok(Some(value.clone())),
                Value::Null => Ok(None),
                Value::Rejected(why) => Err(rejected(path, entry, why)),
            },
        })?;
        Ok(found.flatten())
    }

    /// The keys in the file (sorted); empty when the file does not exist.
    pub fn keys(&self) -> Result<Vec<String>, ProviderError> {
        let keys = self.with_document(|_, doc| {
            let mut keys: Vec<String> = doc.keys().map(str::to_owned).collect();
            keys.sort();
            Ok(keys)
        })?;
        Ok(keys.unwrap_or_default())
    }

    /// Problems a write would not fix by itself: entries whose value cannot be a secret, and
    /// temporary files left by an interrupted write (they may hold old secrets).
    fn problems(&self) -> Result<Option<Vec<(ErrorKind, String)>>, ProviderError> {
        let path = self.locate()?;
        let found = self.with_document(|_, doc| {
            Ok(doc
                .entries
                .iter()
                .filter_map(|entry| match &entry.value {
                    Value::Rejected(why) => Some((
                        ErrorKind::InvalidValue,
                        format!(
                            "key `{}` at line {}, column {}: the value is {why}",
                            document::escape_key(&entry.key),
                            entry.line,
                            entry.column
                        ),
                    )),
                    _ => None,
                })
                .collect::<Vec<_>>())
        })?;
        let target = private_fs::resolve_link(&path).unwrap_or(path);
        let temps = private_fs::stale_temps(&target)
            .map_err(|e| io_error("listing the directory of", &target, e))?;
        if temps.is_empty() {
            return Ok(found);
        }
        let mut problems = found.unwrap_or_default();
        problems.push((
            ErrorKind::Io,
            format!(
                "{} temporary file(s) left by an interrupted write, which may hold old secrets \
             (the next set or delete removes them): {}",
                temps.len(),
                temps
                    .iter()
                    .map(|t| t.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
        Ok(Some(problems))
    }

    /// Sets a key synchronously, with the guarantees described in the crate documentation.
    pub fn set_blocking(&self, key: &str, value: &Secret) -> Result<(), ProviderError> {
        let path = self.locate()?;
        let result = write::apply(&path, key, Change::Set(value));
        *self.lock() = None;
        result.map(drop)
    }

    /// Deletes a key synchronously; `Ok(true)` when it existed. Nothing is created when the
    /// file does not exist.
    pub fn delete_blocking(&self, key: &str) -> Result<bool, ProviderError> {
        let path = self.locate()?;
        let result = write::apply(&path, key, Change::Delete);
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
            .map_err(|e| io_error("running the file task", &self.path(), e))?
    }
}

fn rejected(path: &Path, entry: &document::Entry, why: &str) -> ProviderError {
    ProviderError::new(
        PROVIDER_NAME,
        ErrorKind::InvalidValue,
        format!("the value is {why}; only strings, numbers and booleans can be secrets"),
    )
    .with_key(entry.key.clone())
    .with_location(Location::file_at(
        path,
        Some(entry.line),
        Some(entry.column),
    ))
}

#[async_trait]
impl SecretProvider for FileProvider {
    fn name(&self) -> &str {
        PROVIDER_NAME
    }

    /// True when the file exists, or when checking for it fails (so that the failure is
    /// reported instead of the key looking absent).
    fn is_available(&self) -> bool {
        match self.locate() {
            Err(_) => true,
            Ok(path) => match fs::symlink_metadata(&path) {
                Ok(_) => true,
                Err(e) => e.kind() != io::ErrorKind::NotFound,
            },
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Secret>, ProviderError> {
        let key = key.to_owned();
        self.off_thread(move |this| this.get_blocking(&key)).await
    }

    /// Reads and parses the file, and reports what a write would refuse or should clean up:
    /// a missing file is not found; invalid values and leftover temporary files are errors.
    async fn health(&self) -> Result<(), ProviderError> {
        let problems = self.off_thread(|this| this.problems()).await?;
        let path = self.path();
        match problems {
            None => Err(ProviderError::new(
                PROVIDER_NAME,
                ErrorKind::NotFound,
                "the file does not exist",
            )
            .with_location(Location::file(&path))),
            Some(problems) if problems.is_empty() => Ok(()),
            Some(problems) => {
                let message = problems
                    .iter()
                    .map(|(_, message)| message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                Err(ProviderError::new(PROVIDER_NAME, problems[0].0, message)
                    .with_location(Location::file(&path)))
            }
        }
    }

    fn lookup_location(&self, _key: &str) -> Option<Location> {
        Some(Location::file(self.path()))
    }

    fn supports_writes(&self) -> bool {
        true
    }

    /// Changes one entry under an exclusive lock, through a 0600 temporary file, fsync and
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
