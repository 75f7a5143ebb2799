//! Process-wide `encrypt_credential` / `decrypt_credential`, backed by a cipher built once
//! from the default application's keyring ([`KeyLoader`]). A failed build (say, a broken key
//! file) is not remembered: the next call tries again after the problem is fixed.

use std::sync::{Arc, Mutex, PoisonError};

use private_fs::AppName;
use secret_value::Secret;

use crate::{CredentialCipher, CryptoError, KeyLoader};

static GLOBAL: Mutex<Option<Arc<CredentialCipher>>> = Mutex::new(None);

/// The process-wide cipher, built on first use from `SIMPLETUNER_CREDENTIAL_KEY` or
/// `~/.simpletuner/credential.key` (generated when missing).
pub fn global_cipher() -> Result<Arc<CredentialCipher>, CryptoError> {
    let mut slot = GLOBAL.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(cipher) = slot.as_ref() {
        return Ok(Arc::clone(cipher));
    }
    let cipher = Arc::new(KeyLoader::new(&AppName::default()).load()?.cipher()?);
    *slot = Some(Arc::clone(&cipher));
    Ok(cipher)
}

/// Replaces the process-wide cipher (for an application that loads its keys itself).
pub fn set_global_cipher(cipher: CredentialCipher) {
    *GLOBAL.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(cipher));
}

/// Encrypts a credential with the process-wide cipher, in the stored format.
pub fn encrypt_credential(plaintext: &str) -> Result<String, CryptoError> {
    Ok(global_cipher()?.encrypt(plaintext))
}

/// Decrypts a stored credential with the process-wide cipher.
pub fn decrypt_credential(stored: &str) -> Result<Secret, CryptoError> {
    global_cipher()?.decrypt(stored)
}

/// Re-encrypts a stored credential under the process-wide cipher's current key.
pub fn rotate_credential(stored: &str) -> Result<String, CryptoError> {
    global_cipher()?.rotate(stored)
}
