//! Credentials at rest: the stored format of credential-crypto (URL-safe base64 of a Fernet
//! token), told apart from the plaintext the original wrote.

use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use credential_crypto::{CredentialCipher, CryptoError, KeyLoader, Secret};

use crate::StoreError;

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

/// Where a store gets its credential cipher.
pub(crate) enum CipherSource {
    /// None: writing a credential is an error.
    None,
    /// A cipher given up front.
    Given(Arc<CredentialCipher>),
    /// Loaded on first use (so a store that never touches a credential never creates a key
    /// file); a failed load is retried next time.
    Lazy {
        loader: KeyLoader,
        loaded: Mutex<Option<Arc<CredentialCipher>>>,
    },
}

impl CipherSource {
    pub(crate) fn given(cipher: CredentialCipher) -> Self {
        Self::Given(Arc::new(cipher))
    }

    pub(crate) fn lazy(loader: KeyLoader) -> Self {
        Self::Lazy {
            loader,
            loaded: Mutex::new(None),
        }
    }

    /// The cipher, for the credential `key` of `provider` (named in errors).
    pub(crate) fn get(
        &self,
        provider: &str,
        key: &str,
    ) -> Result<Arc<CredentialCipher>, StoreError> {
        match self {
            Self::None => Err(StoreError::InvalidValue {
                provider: provider.to_owned(),
                key: key.to_owned(),
                problem: "is a credential, stored encrypted, and this store has no credential key (give it a cipher or a key loader)".to_owned(),
            }),
            Self::Given(cipher) => Ok(Arc::clone(cipher)),
            Self::Lazy { loader, loaded } => {
                let mut slot = loaded.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(cipher) = slot.as_ref() {
                    return Ok(Arc::clone(cipher));
                }
                let cipher = loader
                    .load()
                    .and_then(|keyring| keyring.cipher())
                    .map(Arc::new)
                    .map_err(|source| StoreError::Crypto {
                        context: "loading the credential key".to_owned(),
                        source,
                    })?;
                *slot = Some(Arc::clone(&cipher));
                Ok(cipher)
            }
        }
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
