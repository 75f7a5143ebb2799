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

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
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
    pub current: SecretString,
    /// Decrypt only, tried in order after the current one.
    pub previous: Vec<SecretString>,
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
        let derive = |p: &SecretString| FernetKey::derive_cached(p.expose_secret(), salt);
        let mut cipher = CredentialCipher::new(&derive(&self.current)?);
        for previous in &self.previous {
            cipher = cipher.with_previous(&derive(previous)?);
        }
        Ok(cipher)
    }
}

/// Reads a configuration variable.
type EnvLookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Finds (or creates) the credential passphrase of an application.
///
/// ```
/// use credential_crypto::{KeyLoader, KeyOrigin};
///
/// let dir = tempfile::tempdir().unwrap();
/// let loader = KeyLoader::new("demo")
///     .key_file(dir.path().join("credential.key"))
///     .env_lookup(|_| None);
/// let first = loader.load().unwrap();
/// assert!(matches!(first.origin, KeyOrigin::Generated(_)));
/// let again = loader.load().unwrap();
/// assert!(matches!(again.origin, KeyOrigin::File(_)));
/// ```
pub struct KeyLoader {
    app_var: String,
    key_file: Option<PathBuf>,
    app_name: String,
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
    /// A loader for an application name, reading the process environment.
    pub fn new(app_name: &str) -> Self {
        Self {
            app_var: app_name.to_uppercase().replace(['-', '.'], "_"),
            key_file: None,
            app_name: app_name.to_owned(),
            lookup: Box::new(|name| std::env::var(name).ok()),
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
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.lookup = Box::new(lookup);
        self
    }

    /// The variable holding the passphrase (`<APP>_CREDENTIAL_KEY`).
    pub fn env_var(&self) -> String {
        format!("{}_CREDENTIAL_KEY", self.app_var)
    }

    /// The variable holding previous passphrases (`<APP>_CREDENTIAL_KEY_PREVIOUS`).
    pub fn previous_env_var(&self) -> String {
        format!("{}_CREDENTIAL_KEY_PREVIOUS", self.app_var)
    }

    /// The key file used when the variable is unset; `None` without a home directory.
    pub fn key_file_path(&self) -> Option<PathBuf> {
        self.key_file.clone().or_else(|| {
            ["HOME", "USERPROFILE"]
                .iter()
                .filter_map(std::env::var_os)
                .find(|v| !v.is_empty())
                .map(|home| {
                    PathBuf::from(home)
                        .join(format!(".{}", self.app_name))
                        .join(KEY_FILE_NAME)
                })
        })
    }

    /// Finds the keyring, generating and saving a passphrase if there is none yet.
    pub fn load(&self) -> Result<Keyring, CryptoError> {
        let mut previous = self.previous_from_env();
        let env_var = self.env_var();
        if let Some(passphrase) = (self.lookup)(&env_var).filter(|v| !v.is_empty()) {
            return Ok(Keyring {
                current: SecretString::from(passphrase),
                previous,
                origin: KeyOrigin::Environment(env_var),
            });
        }
        let path = self.key_file_path().ok_or(CryptoError::NoHomeDirectory)?;
        let (mut lines, origin) = match read_key_file(&path)? {
            Some(lines) => (lines, KeyOrigin::File(path)),
            None => match create_key_file(&path)? {
                Created::Ours => (
                    read_key_file(&path)?.unwrap_or_default(),
                    KeyOrigin::Generated(path),
                ),
                Created::Theirs => (
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

    fn previous_from_env(&self) -> Vec<SecretString> {
        (self.lookup)(&self.previous_env_var())
            .map(Zeroizing::new)
            .map(|text| non_empty_lines(&text))
            .unwrap_or_default()
    }
}

fn origin_path(origin: &KeyOrigin) -> PathBuf {
    match origin {
        KeyOrigin::File(p) | KeyOrigin::Generated(p) => p.clone(),
        KeyOrigin::Environment(v) => PathBuf::from(format!("${v}")),
    }
}

fn non_empty_lines(text: &str) -> Vec<SecretString> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(SecretString::from)
        .collect()
}

/// The passphrases in a key file; `None` when it does not exist.
fn read_key_file(path: &Path) -> Result<Option<Vec<SecretString>>, CryptoError> {
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

enum Created {
    Ours,
    Theirs,
}

fn io_error<'a>(
    path: &'a Path,
    operation: &'static str,
) -> impl FnOnce(io::Error) -> CryptoError + 'a {
    move |source| CryptoError::Io {
        path: path.to_owned(),
        operation,
        source,
    }
}

/// Generates a passphrase and publishes it at `path` unless another process got there first.
///
/// The content is written to a private temporary file (created with `O_EXCL`, mode 0600),
/// synced, and then hard-linked to `path`: the link either creates `path` complete, or fails
/// because it exists. No reader ever sees a half-written key, and no key is overwritten.
fn create_key_file(path: &Path) -> Result<Created, CryptoError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    private_fs::create_private_dir(dir).map_err(io_error(dir, "creating directory"))?;

    let mut raw = Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(raw.as_mut())
        .map_err(|_| CryptoError::Io {
            path: path.to_owned(),
            operation: "generating a key",
            source: io::Error::other("the system random number generator failed"),
        })?;
    let passphrase = Zeroizing::new(URL_SAFE_NO_PAD.encode(raw.as_ref()));

    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = dir.join(format!(".{KEY_FILE_NAME}.{}.{n}.tmp", std::process::id()));
    let _ = fs::remove_file(&temp);
    let result = (|| {
        let mut file = private_fs::private_options()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(io_error(&temp, "creating"))?;
        file.write_all(passphrase.as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(io_error(&temp, "writing"))?;
        match fs::hard_link(&temp, path) {
            Ok(()) => {
                // Best effort: the key is already readable through the new name.
                let _ = private_fs::sync_dir(dir);
                tracing::info!(path = %path.display(), "generated a new credential key");
                Ok(Created::Ours)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Created::Theirs),
            Err(e) => Err(io_error(path, "creating")(e)),
        }
    })();
    let _ = fs::remove_file(&temp);
    result
}
