//! Where the passphrase comes from, in priority order:
//!
//! 1. the environment variable `<APP>_CREDENTIAL_KEY` (`SIMPLETUNER_CREDENTIAL_KEY`), if non-empty;
//! 2. the key file `~/.<app>/credential.key`: the whole file with surrounding whitespace
//!    stripped is ONE passphrase, exactly as the original reads it (a two-line
//!    `openssl rand -base64 64` file is one passphrase with a newline inside). An empty key
//!    file gave the original the empty passphrase; it is used too, with a loud warning that
//!    recommends rotation;
//! 3. otherwise a new passphrase (32 random bytes, URL-safe base64) saved to that file.
//!
//! Previous passphrases, accepted for decryption only during a key rotation, come from
//! `<APP>_CREDENTIAL_KEY_PREVIOUS` and from the file `credential.key.previous` next to the key
//! file (one passphrase per line in both).
//!
//! The key file is created with mode 0600 from the start (a private temporary file, linked
//! into place with `O_EXCL` semantics), its directory 0700; when two processes start at once,
//! one key wins and both use it. An existing key file is never overwritten: unreadable, empty
//! or non-UTF-8 content is an error, because a new key would make every stored credential
//! unreadable.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use private_fs::{AppName, Created, PermissionPolicy};
use ring::rand::{SecureRandom, SystemRandom};
use secret_value::Secret;
use zeroize::Zeroizing;

use crate::{CredentialCipher, CryptoError, DEFAULT_SALT, FernetKey};

/// The name of the key file in `~/.<app>/`.
pub const KEY_FILE_NAME: &str = "credential.key";

/// The suffix of the file of previous passphrases, next to the key file.
const PREVIOUS_KEYS_SUFFIX: &str = ".previous";

/// Largest key file accepted (a passphrase is a line, not a document).
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Where the current passphrase came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// An environment variable (its name).
    Environment(String),
    /// An existing key file.
    File(PathBuf),
    /// Generated now and saved to this key file.
    Generated(PathBuf),
}

impl std::fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Environment(var) => write!(f, "${var}"),
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Generated(path) => write!(f, "{} (generated)", path.display()),
        }
    }
}

/// The current passphrase and the previous ones. `Debug` shows no passphrase.
#[derive(Debug, Clone)]
pub struct Keyring {
    /// Encrypts and decrypts.
    pub current: Secret,
    /// Decrypt only, tried in order after the current one.
    pub previous: Vec<Secret>,
    /// Where `current` came from.
    pub origin: KeyOrigin,
}

impl Keyring {
    /// The cipher for this keyring (original salt; derivations cached per process).
    pub fn cipher(&self) -> Result<CredentialCipher, CryptoError> {
        self.cipher_with_salt(DEFAULT_SALT)
    }

    /// The cipher for this keyring with another salt.
    pub fn cipher_with_salt(&self, salt: &[u8]) -> Result<CredentialCipher, CryptoError> {
        // An empty passphrase is refused everywhere except from a key file, where the
        // original server used it (see the module documentation).
        let from_file = matches!(self.origin, KeyOrigin::File(_) | KeyOrigin::Generated(_));
        let derive = |p: &Secret| {
            if p.is_empty() && from_file {
                FernetKey::derive_cached_allowing_empty(p.expose(), salt)
            } else {
                FernetKey::derive_cached(p.expose(), salt)
            }
        };
        let mut cipher = CredentialCipher::new(&derive(&self.current)?);
        for previous in &self.previous {
            cipher = cipher.with_previous(&derive(previous)?);
        }
        Ok(cipher)
    }
}

/// Reads a configuration variable.
type EnvLookup = Box<dyn Fn(&str) -> Option<OsString> + Send + Sync>;

/// Finds (or creates) the credential passphrase of an application.
///
/// ```
/// use credential_crypto::{KeyLoader, KeyOrigin};
/// use private_fs::AppName;
///
/// let dir = tempfile::tempdir().unwrap();
/// let loader = KeyLoader::new(&AppName::new("demo").unwrap())
///     .key_file(dir.path().join("credential.key"))
///     .env_lookup(|_| None);
/// let first = loader.load().unwrap();
/// assert!(matches!(first.origin, KeyOrigin::Generated(_)));
/// let again = loader.load().unwrap();
/// assert!(matches!(again.origin, KeyOrigin::File(_)));
/// ```
pub struct KeyLoader {
    app: AppName,
    key_file: Option<PathBuf>,
    lookup: EnvLookup,
    create_if_missing: bool,
    permissions: Option<PermissionPolicy>,
}

impl std::fmt::Debug for KeyLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLoader")
            .field("env_var", &self.env_var())
            .field("key_file", &self.key_file_path())
            .finish_non_exhaustive()
    }
}

impl KeyLoader {
    /// A loader for an application, reading the process environment.
    pub fn new(app: &AppName) -> Self {
        Self {
            app: app.clone(),
            key_file: None,
            lookup: Box::new(|name| std::env::var_os(name)),
            create_if_missing: true,
            permissions: None,
        }
    }

    /// Whether [`load`](Self::load) generates a key when there is none (the default). Turn
    /// it off where a new key is useless, such as for decryption: a key made now cannot
    /// decrypt anything stored before.
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.create_if_missing = create;
        self
    }

    /// Whether a key file others could read (or replace) is only warned about or refused
    /// ([`PermissionPolicy::Strict`]). Without this setting, `<APP>_STRICT_PERMISSIONS`
    /// decides (read through the loader's lookup); the process-wide policy
    /// ([`private_fs::set_process_policy`]) can only make it stricter.
    pub fn permission_policy(mut self, policy: PermissionPolicy) -> Self {
        self.permissions = Some(policy);
        self
    }

    fn effective_permissions(&self) -> Result<PermissionPolicy, CryptoError> {
        match self.permissions {
            Some(policy) => Ok(policy),
            None => {
                PermissionPolicy::from_lookup(&self.app, &*self.lookup).map_err(CryptoError::Locate)
            }
        }
    }

    /// Uses this key file instead of `~/.<app>/credential.key`.
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_file = Some(path.into());
        self
    }

    /// Reads variables through `lookup` instead of the process environment (for tests).
    pub fn env_lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<OsString> + Send + Sync + 'static,
    ) -> Self {
        self.lookup = Box::new(lookup);
        self
    }

    /// The variable holding the passphrase (`<APP>_CREDENTIAL_KEY`).
    pub fn env_var(&self) -> String {
        self.app.var("CREDENTIAL_KEY")
    }

    /// The variable holding previous passphrases (`<APP>_CREDENTIAL_KEY_PREVIOUS`).
    pub fn previous_env_var(&self) -> String {
        self.app.var("CREDENTIAL_KEY_PREVIOUS")
    }

    /// The key file used when the variable is unset: the configured one, else
    /// `~/.<app>/credential.key`; `None` without a home directory.
    pub fn key_file_path(&self) -> Option<PathBuf> {
        self.key_file.clone().or_else(|| {
            private_fs::app_dir(&self.app)
                .ok()
                .map(|dir| dir.join(KEY_FILE_NAME))
        })
    }

    fn var(&self, name: &str) -> Result<Option<Zeroizing<String>>, CryptoError> {
        private_fs::read_var(&*self.lookup, name)
            .map(|v| v.map(Zeroizing::new))
            .map_err(CryptoError::Locate)
    }

    /// Finds the keyring, generating and saving a passphrase if there is none yet.
    pub fn load(&self) -> Result<Keyring, CryptoError> {
        let mut previous = self.previous_from_env()?;
        let env_var = self.env_var();
        if let Some(passphrase) = self.var(&env_var)? {
            return Ok(Keyring {
                current: Secret::new(passphrase.as_str()),
                previous,
                origin: KeyOrigin::Environment(env_var),
            });
        }
        let path = match &self.key_file {
            Some(path) => path.clone(),
            None => private_fs::app_dir(&self.app)
                .map_err(CryptoError::Locate)?
                .join(KEY_FILE_NAME),
        };
        let permissions = self.effective_permissions()?;
        let (current, origin) = match read_key_file(&path, permissions)? {
            Some(current) => {
                // A creator killed after publishing the key may have left its temporary copy.
                private_fs::remove_dead_temps(&path);
                (current, KeyOrigin::File(path.clone()))
            }
            None if !self.create_if_missing => {
                return Err(CryptoError::NoKey {
                    variable: env_var,
                    path,
                });
            }
            None => {
                let created = create_key_file(&path)?;
                let current =
                    read_key_file(&path, permissions)?.ok_or_else(|| CryptoError::KeyFile {
                        path: path.clone(),
                        problem: "it disappeared right after it was created".to_owned(),
                    })?;
                let origin = match created {
                    Created::Ours => KeyOrigin::Generated(path.clone()),
                    Created::Existing => KeyOrigin::File(path.clone()),
                };
                (current, origin)
            }
        };
        if current.is_empty() {
            tracing::warn!(
                path = %path.display(),
                "the credential key file is empty: the original server used the empty \
                 passphrase in that case, so it is used to decrypt; anyone can decrypt these \
                 credentials: rotate to a real key now (see docs/credential-encryption.md)"
            );
        }
        let mut from_file = read_previous_file(&previous_keys_path(&path), permissions)?;
        from_file.append(&mut previous);
        Ok(Keyring {
            current,
            previous: from_file,
            origin,
        })
    }

    fn previous_from_env(&self) -> Result<Vec<Secret>, CryptoError> {
        Ok(self
            .var(&self.previous_env_var())?
            .map(|text| non_empty_lines(&text))
            .unwrap_or_default())
    }
}

/// The file of previous passphrases next to a key file: `credential.key.previous`.
pub fn previous_keys_path(key_file: &Path) -> PathBuf {
    let mut name = key_file
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_else(|| KEY_FILE_NAME.into());
    name.push(PREVIOUS_KEYS_SUFFIX);
    key_file.with_file_name(name)
}

/// Strips whitespace as Python's `str.strip()` does (it also counts the ASCII separators
/// U+001C..U+001F as whitespace), so a key file reads as the original read it.
fn python_strip(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

fn non_empty_lines(text: &str) -> Vec<Secret> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(Secret::new)
        .collect()
}

/// The text of a key file, read safely (a regular file of bounded size: a FIFO or a link to
/// `/dev/zero` is an error at once); `None` when it does not exist.
fn read_text(
    path: &Path,
    what: &str,
    permissions: PermissionPolicy,
) -> Result<Option<Zeroizing<String>>, CryptoError> {
    let key_file_error = |problem: String| CryptoError::KeyFile {
        path: path.to_owned(),
        problem,
    };
    let Some(mut bytes) = private_fs::read_regular_file(path, MAX_KEY_FILE_BYTES)
        .map_err(|e| key_file_error(format!("cannot be read: {e}")))?
    else {
        return Ok(None);
    };
    if let Ok(meta) = fs::metadata(path) {
        permissions
            .check(path, &meta, what)
            .map_err(CryptoError::UnsafeKeyFile)?;
    }
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(Some(Zeroizing::new(text))),
        Err(e) => {
            let mut lost = e.into_bytes();
            zeroize::Zeroize::zeroize(&mut lost);
            Err(key_file_error("the content is not valid UTF-8".to_owned()))
        }
    }
}

/// The passphrase of a key file (the whole file, stripped); `None` when it does not exist.
/// Line breaks are read as Python's `read_text()` reads them (universal newlines: `\r\n`
/// and `\r` become `\n`), so a multi-line key file with Windows line endings is the same
/// passphrase as for the original.
fn read_key_file(
    path: &Path,
    permissions: PermissionPolicy,
) -> Result<Option<Secret>, CryptoError> {
    Ok(
        read_text(path, "credential key file", permissions)?.map(|text| {
            let universal = Zeroizing::new(text.replace("\r\n", "\n").replace('\r', "\n"));
            Secret::new(python_strip(&universal))
        }),
    )
}

/// The previous passphrases (one per line); none when the file does not exist.
fn read_previous_file(
    path: &Path,
    permissions: PermissionPolicy,
) -> Result<Vec<Secret>, CryptoError> {
    Ok(
        read_text(path, "previous credential keys file", permissions)?
            .map(|text| non_empty_lines(&text))
            .unwrap_or_default(),
    )
}

/// Generates a passphrase and publishes it at `path` unless another process got there first
/// ([`private_fs::create_new`]: 0600 from the first byte, complete or absent, never
/// overwriting an existing key).
fn create_key_file(path: &Path) -> Result<Created, CryptoError> {
    let mut raw = Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(raw.as_mut())
        .map_err(|_| CryptoError::Io {
            path: path.to_owned(),
            operation: "generating a key",
            source: io::Error::other("the system random number generator failed"),
        })?;
    let mut content = Zeroizing::new(URL_SAFE_NO_PAD.encode(raw.as_ref()));
    content.push('\n');
    let created =
        private_fs::create_new(path, content.as_bytes()).map_err(|source| CryptoError::Io {
            path: path.to_owned(),
            operation: "creating",
            source,
        })?;
    if created == Created::Ours {
        tracing::info!(path = %path.display(), "generated a new credential key");
    }
    Ok(created)
}
