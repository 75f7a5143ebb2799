//! Where the passphrase comes from, in priority order:
//!
//! 1. the environment variable `<APP>_CREDENTIAL_KEY` (`SIMPLETUNER_CREDENTIAL_KEY`), if non-empty;
//! 2. the key file `~/.<app>/credential.key`: the passphrase on its first line, trimmed;
//! 3. otherwise a new passphrase (32 random bytes, URL-safe base64) saved to that file.
//!
//! Previous passphrases, accepted for decryption only during a key rotation, come from
//! `<APP>_CREDENTIAL_KEY_PREVIOUS` (one per line) and from further lines of the key file.
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
use private_fs::{AppName, Created};
use ring::rand::{SecureRandom, SystemRandom};
use secret_value::Secret;
use zeroize::Zeroizing;

use crate::{CredentialCipher, CryptoError, DEFAULT_SALT, FernetKey};

/// The name of the key file in `~/.<app>/`.
pub const KEY_FILE_NAME: &str = "credential.key";

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
        let derive = |p: &Secret| FernetKey::derive_cached(p.expose(), salt);
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
        let (mut lines, origin) = match read_key_file(&path)? {
            Some(lines) => (lines, KeyOrigin::File(path)),
            None => match create_key_file(&path)? {
                Created::Ours => (
                    read_key_file(&path)?.unwrap_or_default(),
                    KeyOrigin::Generated(path),
                ),
                Created::Existing => (
                    read_key_file(&path)?.unwrap_or_default(),
                    KeyOrigin::File(path),
                ),
            },
        };
        if lines.is_empty() {
            return Err(CryptoError::KeyFile {
                path: origin_path(&origin),
                problem: "the file is empty".to_owned(),
            });
        }
        let current = lines.remove(0);
        lines.append(&mut previous);
        Ok(Keyring {
            current,
            previous: lines,
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

fn origin_path(origin: &KeyOrigin) -> PathBuf {
    match origin {
        KeyOrigin::File(p) | KeyOrigin::Generated(p) => p.clone(),
        KeyOrigin::Environment(v) => PathBuf::from(format!("${v}")),
    }
}

fn non_empty_lines(text: &str) -> Vec<Secret> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(Secret::new)
        .collect()
}

/// The passphrases in a key file; `None` when it does not exist.
fn read_key_file(path: &Path) -> Result<Option<Vec<Secret>>, CryptoError> {
    let key_file_error = |problem: String| CryptoError::KeyFile {
        path: path.to_owned(),
        problem,
    };
    let bytes = match fs::read(path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(key_file_error(format!("cannot be read: {e}"))),
    };
    if let Ok(meta) = fs::metadata(path) {
        private_fs::warn_if_exposed(path, &meta, "credential key file");
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| key_file_error("the content is not valid UTF-8".to_owned()))?;
    let lines = non_empty_lines(text);
    if lines.is_empty() {
        return Err(key_file_error("the file is empty".to_owned()));
    }
    Ok(Some(lines))
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
