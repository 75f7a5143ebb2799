//! Passphrase -> Fernet key, as the original: URL-safe base64 of PBKDF2-HMAC-SHA256(passphrase,
//! salt, 100 000 iterations, 32 bytes). Derivation is slow on purpose (about 20 ms), so each
//! (salt, passphrase) pair is derived once per process and remembered.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use ring::{digest, pbkdf2};
use zeroize::{Zeroize, Zeroizing};

use crate::CryptoError;

/// The salt of the original implementation.
pub const DEFAULT_SALT: &[u8] = b"simpletuner-credential-encryption-v1";

/// PBKDF2 iterations of the original implementation.
pub const PBKDF2_ITERATIONS: u32 = 100_000;

/// A Fernet key: 32 bytes (16 signing, 16 encryption). Zeroized on drop; `Debug` is redacted.
#[derive(Clone)]
pub struct FernetKey([u8; 32]);

impl FernetKey {
    /// Derives the key for a passphrase and salt with PBKDF2-HMAC-SHA256, 100 000 iterations.
    /// This always does the full derivation; [`FernetKey::derive_cached`] remembers results.
    pub fn derive(passphrase: &str, salt: &[u8]) -> Result<Self, CryptoError> {
        if passphrase.is_empty() {
            return Err(CryptoError::EmptyPassphrase {
                origin: "the caller".to_owned(),
            });
        }
        Ok(Self::derive_any(passphrase, salt))
    }

    /// The derivation itself; the empty passphrase included.
    fn derive_any(passphrase: &str, salt: &[u8]) -> Self {
        #[cfg(test)]
        DERIVATIONS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut key = [0u8; 32];
        let iterations = NonZeroU32::new(PBKDF2_ITERATIONS).unwrap_or(NonZeroU32::MIN);
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            salt,
            passphrase.as_bytes(),
            &mut key,
        );
        Self(key)
    }

    /// Like [`FernetKey::derive`], but each (salt, passphrase) pair is derived once per
    /// process. The cache is keyed by a SHA-256 digest, so it holds no passphrase.
    pub fn derive_cached(passphrase: &str, salt: &[u8]) -> Result<Self, CryptoError> {
        if passphrase.is_empty() {
            return Err(CryptoError::EmptyPassphrase {
                origin: "the caller".to_owned(),
            });
        }
        Ok(Self::cached(passphrase, salt))
    }

    /// Like [`FernetKey::derive_cached`], accepting the empty passphrase: only for an empty
    /// key file, which the original server used as is.
    pub(crate) fn derive_cached_allowing_empty(
        passphrase: &str,
        salt: &[u8],
    ) -> Result<Self, CryptoError> {
        Ok(Self::cached(passphrase, salt))
    }

    fn cached(passphrase: &str, salt: &[u8]) -> Self {
        static CACHE: Mutex<Option<HashMap<[u8; 32], FernetKey>>> = Mutex::new(None);
        let id = cache_id(passphrase, salt);
        if let Some(key) = CACHE
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(|c| c.get(&id))
        {
            return key.clone();
        }
        // Derive outside the lock: two threads may both derive once, nobody waits 20 ms on
        // somebody else's passphrase.
        let key = Self::derive_any(passphrase, salt);
        CACHE
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(HashMap::new)
            .insert(id, key.clone());
        key
    }

    /// Parses a URL-safe base64 Fernet key (44 characters with padding).
    pub fn from_base64(encoded: &str) -> Result<Self, CryptoError> {
        let bytes = Zeroizing::new(
            URL_SAFE
                .decode(encoded.trim())
                .map_err(|_| CryptoError::InvalidFernetKey)?,
        );
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::InvalidFernetKey)?;
        Ok(Self(key))
    }

    /// The key as URL-safe base64 with padding, the form Python's `Fernet(key)` takes.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(URL_SAFE.encode(self.0))
    }

    /// The raw key: signing half, then encryption half.
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// How many full derivations ran in this test process.
#[cfg(test)]
pub(crate) static DERIVATIONS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

fn cache_id(passphrase: &str, salt: &[u8]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&(salt.len() as u64).to_be_bytes());
    ctx.update(salt);
    ctx.update(passphrase.as_bytes());
    let mut id = [0u8; 32];
    id.copy_from_slice(ctx.finish().as_ref());
    id
}

impl Drop for FernetKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for FernetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FernetKey([REDACTED])")
    }
}

impl PartialEq for FernetKey {
    fn eq(&self, other: &Self) -> bool {
        self.0
            .iter()
            .zip(&other.0)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl Eq for FernetKey {}
