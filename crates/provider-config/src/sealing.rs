//! Credentials at rest: the stored format of credential-crypto (URL-safe base64 of a Fernet
//! token), told apart from the plaintext the original wrote.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use credential_crypto::{CredentialCipher, CryptoError, KeyLoader, KeyOrigin, Keyring, Secret};

use crate::StoreError;
use crate::rows::{Rows, TxError};
use crate::values::CREDENTIAL_KEYS;

/// URL-safe base64, padded or not (as credential-crypto reads it).
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Fernet: version, timestamp, IV, HMAC around at least one AES block.
const FERNET_VERSION: u8 = 0x80;
const FERNET_OVERHEAD: usize = 1 + 8 + 16 + 32;

/// Whether a stored value has the shape of an encrypted credential (a Fernet token,
/// base64 twice, as credential-crypto stores it). Plaintext never does: the original's API tokens and secrets are short
/// printable strings, not base64 of a binary token with a version byte.
pub fn looks_encrypted(stored: &str) -> bool {
    let Ok(token) = URL_SAFE_LENIENT.decode(stored.trim()) else {
        return false;
    };
    let Ok(raw) = URL_SAFE_LENIENT.decode(&token) else {
        return false;
    };
    raw.len() >= FERNET_OVERHEAD + 16
        && raw[0] == FERNET_VERSION
        && (raw.len() - FERNET_OVERHEAD).is_multiple_of(16)
}

/// What a stored credential is.
pub(crate) enum Stored {
    /// Encrypted; decrypts with the current key (`false`) or only a previous one (`true`).
    Encrypted {
        plaintext: Secret,
        needs_rotation: bool,
    },
    /// Written in plaintext (by the original).
    Plaintext,
}

/// Classifies a stored value. An encrypted value that no configured key decrypts is an
/// error, never mistaken for plaintext.
pub(crate) fn classify(cipher: &CredentialCipher, stored: &str) -> Result<Stored, CryptoError> {
    if !looks_encrypted(stored) {
        return Ok(Stored::Plaintext);
    }
    let plaintext = cipher.decrypt(stored)?;
    Ok(Stored::Encrypted {
        plaintext,
        needs_rotation: cipher.needs_rotation(stored)?,
    })
}

/// What sealing a value produced.
pub(crate) enum Sealed {
    /// The value was plaintext; this is its stored (encrypted) form.
    Encrypted(String),
    /// The value was already encrypted under a configured key.
    AlreadyEncrypted,
}

/// Encrypts a plaintext value; leaves an encrypted one alone.
pub(crate) fn seal_credential(
    cipher: &CredentialCipher,
    value: &str,
) -> Result<Sealed, CryptoError> {
    match classify(cipher, value)? {
        Stored::Plaintext => Ok(Sealed::Encrypted(cipher.encrypt(value))),
        Stored::Encrypted { .. } => Ok(Sealed::AlreadyEncrypted),
    }
}

/// The plaintext of a stored value; the cipher is asked for only when the value is
/// encrypted (reading the original's plaintext needs no key). `context` names the row or
/// key for errors.
pub(crate) fn open_credential(
    stored: &str,
    cipher: impl FnOnce() -> Result<Arc<CredentialCipher>, StoreError>,
    context: impl FnOnce() -> String,
) -> Result<Secret, StoreError> {
    if !looks_encrypted(stored) {
        tracing::debug!(
            "{}: stored in plaintext (written by the original server); run `secrets crypto migrate-db`",
            context()
        );
        return Ok(Secret::new(stored));
    }
    cipher()?
        .decrypt(stored)
        .map_err(|source| StoreError::Crypto {
            context: context(),
            source,
        })
}

/// The store error of a failure outside any transaction (the store's own).
pub(crate) fn store_error(e: TxError) -> StoreError {
    match e {
        TxError::Store(e) => e,
        other => other.in_database(
            crate::error::Place::Server("the database"),
            "loading the credential key",
        ),
    }
}

/// Where a store gets its credential cipher.
pub(crate) enum CipherSource {
    /// None: writing a credential is an error.
    None,
    /// A cipher given up front.
    Given(Arc<CredentialCipher>),
    /// Loaded on first use (so a store that never touches a credential never creates a key
    /// file); a failed load is retried next time.
    Lazy {
        /// Whether a key may be created when there is none.
        create: bool,
        state: Mutex<LazyState>,
    },
}

pub(crate) struct LazyState {
    /// Taken while a load runs (its builder methods consume it).
    loader: Option<KeyLoader>,
    cipher: Option<Arc<CredentialCipher>>,
    /// The key file created by this store, if any.
    generated: Option<PathBuf>,
}

/// How many stored credentials are encrypted (under some key); asked before a new key is
/// created, which could decrypt none of them. `None`: never create a key (reading).
pub(crate) type EncryptedCount<'a> = Option<&'a dyn Fn() -> Result<u64, TxError>>;

/// How many stored credentials (credential rows and credential keys of configurations)
/// are encrypted.
pub(crate) fn count_encrypted(rows: &dyn Rows) -> Result<u64, TxError> {
    let mut n = 0;
    for (_, stored) in rows.credential_all_for_update()? {
        n += u64::from(looks_encrypted(&stored));
    }
    for (_, text) in rows.config_all_for_update()? {
        let Ok(text) = text else { continue };
        let Ok(config) = crate::values::CloudProviderConfig::from_stored("", &text) else {
            continue;
        };
        for key in CREDENTIAL_KEYS {
            if let Some(serde_json::Value::String(stored)) = config.get(*key) {
                n += u64::from(looks_encrypted(stored));
            }
        }
    }
    Ok(n)
}

impl CipherSource {
    pub(crate) fn given(cipher: CredentialCipher) -> Self {
        Self::Given(Arc::new(cipher))
    }

    pub(crate) fn lazy(loader: KeyLoader, create: bool) -> Self {
        Self::Lazy {
            create,
            state: Mutex::new(LazyState {
                loader: Some(loader),
                cipher: None,
                generated: None,
            }),
        }
    }

    /// The key file this store created (the CLI says so loudly).
    pub(crate) fn generated(&self) -> Option<PathBuf> {
        match self {
            Self::Lazy { state, .. } => state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .generated
                .clone(),
            _ => None,
        }
    }

    /// The cipher, for the credential `key` of `provider` (named in errors). A key is
    /// created only when allowed and when no stored credential is encrypted (`encrypted`).
    pub(crate) fn get(
        &self,
        provider: &str,
        key: &str,
        encrypted: EncryptedCount<'_>,
    ) -> Result<Arc<CredentialCipher>, TxError> {
        match self {
            Self::None => Err(TxError::Store(StoreError::InvalidValue {
                provider: provider.to_owned(),
                key: key.to_owned(),
                problem: "is a credential, stored encrypted, and this store has no credential key (give it a cipher or a key loader)".to_owned(),
            })),
            Self::Given(cipher) => Ok(Arc::clone(cipher)),
            Self::Lazy { create, state } => {
                let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(cipher) = state.cipher.as_ref() {
                    return Ok(Arc::clone(cipher));
                }
                let Some(loader) = state.loader.take() else {
                    return Err(TxError::Store(StoreError::Crypto {
                        context: "loading the credential key".to_owned(),
                        source: CryptoError::InvalidToken,
                    }));
                };
                let (loader, result) = load(loader, *create, encrypted);
                state.loader = Some(loader);
                let (keyring, generated) = result?;
                let cipher = keyring
                    .cipher()
                    .map(Arc::new)
                    .map_err(|source| StoreError::Crypto {
                        context: "loading the credential key".to_owned(),
                        source,
                    })?;
                if let Some(path) = generated {
                    tracing::warn!(
                        path = %path.display(),
                        "generated a new credential key: back it up together with the database"
                    );
                    state.generated = Some(path);
                }
                state.cipher = Some(Arc::clone(&cipher));
                Ok(cipher)
            }
        }
    }
}

/// Loads the key without creating one; when there is none and `create` allows it, creates
/// one unless credentials are already encrypted (under a key that is lost or elsewhere).
/// Gives the loader back, with the keyring and the key file created (if any).
#[allow(clippy::type_complexity)]
fn load(
    loader: KeyLoader,
    create: bool,
    encrypted: EncryptedCount<'_>,
) -> (KeyLoader, Result<(Keyring, Option<PathBuf>), TxError>) {
    let crypto = |context: String, source| TxError::Store(StoreError::Crypto { context, source });
    let loader = loader.create_if_missing(false);
    match loader.load() {
        Ok(keyring) => (loader, Ok((keyring, None))),
        Err(source @ CryptoError::NoKey { .. }) if create && encrypted.is_some() => {
            match encrypted.map_or(Ok(0), |count| count()) {
                Err(e) => return (loader, Err(e)),
                Ok(n) if n > 0 => {
                    return (
                        loader,
                        Err(crypto(
                            format!(
                                "the database holds {n} credential(s) encrypted under a key that is not configured; a new key could never decrypt them, so none is created (restore the key file or set the variable)"
                            ),
                            source,
                        )),
                    );
                }
                Ok(_) => {}
            }
            let loader = loader.create_if_missing(true);
            let result = loader.load().map(|keyring| {
                let generated = match &keyring.origin {
                    KeyOrigin::Generated(path) => Some(path.clone()),
                    _ => None,
                };
                (keyring, generated)
            });
            (
                loader,
                result.map_err(|source| crypto("creating a credential key".to_owned(), source)),
            )
        }
        Err(source) => (
            loader,
            Err(crypto("loading the credential key".to_owned(), source)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_of_encrypted_values_is_recognised() {
        let cipher = CredentialCipher::from_passphrase("sealing test").unwrap();
        for plain in ["", "r8_abc", "Z0FBQUFB", "aGVsbG8=", &"x".repeat(500)] {
            assert!(!looks_encrypted(plain), "{plain}");
            assert!(looks_encrypted(&cipher.encrypt(plain)));
        }
        // A token under a key we do not have is an error, not plaintext.
        let other = CredentialCipher::from_passphrase("another key").unwrap();
        assert!(matches!(
            classify(&cipher, &other.encrypt("v")),
            Err(CryptoError::InvalidToken)
        ));
        assert!(matches!(
            seal_credential(&cipher, "r8_plain").unwrap(),
            Sealed::Encrypted(s) if cipher.decrypt(&s).unwrap().expose() == "r8_plain"
        ));
    }
}
