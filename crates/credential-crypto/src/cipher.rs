//! [`CredentialCipher`]: Fernet tokens, and the stored format of the original (URL-safe
//! base64 of the token, so stored values are base64 twice and start with `Z0FBQUFB`).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE};
use secret_value::Secret;
use zeroize::{Zeroize, Zeroizing};

use crate::seal::{HEADER_LEN, MAC_LEN, Sealer, VERSION};
use crate::{CryptoError, DEFAULT_SALT, FernetKey};

/// URL-safe base64 that accepts input with or without padding.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Header, one AES block at least, HMAC.
const MIN_TOKEN_LEN: usize = HEADER_LEN + 16 + MAC_LEN;

/// Encrypts and decrypts credentials with one current key and any number of previous keys.
///
/// Encryption always uses the current key; decryption tries the current key, then the
/// previous ones in order, so a deployment can switch keys first and re-encrypt stored
/// values later with [`rotate`](Self::rotate).
///
/// ```
/// use credential_crypto::CredentialCipher;
///
/// let old = CredentialCipher::from_passphrase("old passphrase").unwrap();
/// let stored = old.encrypt("r8_token");
/// assert!(stored.starts_with("Z0FBQUFB"));
///
/// let new = CredentialCipher::from_passphrase("new passphrase").unwrap()
///     .with_previous_passphrase("old passphrase").unwrap();
/// assert_eq!(new.decrypt(&stored).unwrap().expose(), "r8_token");
/// let rotated = new.rotate(&stored).unwrap();
/// assert!(!new.needs_rotation(&rotated).unwrap());
/// assert!(old.decrypt(&rotated).is_err());
/// ```
#[derive(Clone)]
pub struct CredentialCipher {
    /// Makes tokens under the current key.
    sealer: Sealer,
    /// `keys[0]` is the current key; all of them verify and decrypt.
    keys: Vec<fernet::Fernet>,
}

impl fmt::Debug for CredentialCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialCipher")
            .field("previous_keys", &(self.keys.len() - 1))
            .finish_non_exhaustive()
    }
}

fn fernet_for(key: &FernetKey) -> fernet::Fernet {
    // A FernetKey is always 32 bytes, which is all `Fernet::new` checks.
    fernet::Fernet::new(&key.to_base64()).unwrap_or_else(|| unreachable!("32-byte key"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl CredentialCipher {
    /// A cipher with one key.
    pub fn new(current: &FernetKey) -> Self {
        Self {
            sealer: Sealer::new(current),
            keys: vec![fernet_for(current)],
        }
    }

    /// A cipher for a passphrase with the original salt; the derivation is cached per process.
    pub fn from_passphrase(passphrase: &str) -> Result<Self, CryptoError> {
        Ok(Self::new(&FernetKey::derive_cached(
            passphrase,
            DEFAULT_SALT,
        )?))
    }

    /// A cipher for a raw URL-safe base64 Fernet key (as Python's `Fernet(key)` takes).
    pub fn from_fernet_key(encoded: &str) -> Result<Self, CryptoError> {
        Ok(Self::new(&FernetKey::from_base64(encoded)?))
    }

    /// Adds a key accepted for decryption only.
    pub fn with_previous(mut self, key: &FernetKey) -> Self {
        self.keys.push(fernet_for(key));
        self
    }

    /// Adds a passphrase accepted for decryption only (original salt, cached derivation).
    pub fn with_previous_passphrase(self, passphrase: &str) -> Result<Self, CryptoError> {
        Ok(self.with_previous(&FernetKey::derive_cached(passphrase, DEFAULT_SALT)?))
    }

    /// How many keys decrypt (the current one and the previous ones).
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Encrypts a credential into the stored format, with a fresh IV from the OS.
    ///
    /// # Panics
    /// If the operating system's random source fails (as the `fernet` crate and Python's
    /// `os.urandom` fail): there is no safe IV to fall back on. The same holds for
    /// [`encrypt_token`](Self::encrypt_token) and [`encrypt_token_at`](Self::encrypt_token_at).
    pub fn encrypt(&self, plaintext: &str) -> String {
        self.sealer.seal_stored(plaintext.as_bytes(), unix_now())
    }

    /// Decrypts a stored credential with any configured key. Surrounding whitespace is ignored.
    pub fn decrypt(&self, stored: &str) -> Result<Secret, CryptoError> {
        self.decrypt_indexed(stored).map(|(plain, _)| plain)
    }

    /// Re-encrypts a stored credential under the current key.
    pub fn rotate(&self, stored: &str) -> Result<String, CryptoError> {
        let plaintext = self.decrypt(stored)?;
        Ok(self.encrypt(plaintext.expose()))
    }

    /// Whether a stored credential decrypts only with a previous key (and so should be rotated).
    pub fn needs_rotation(&self, stored: &str) -> Result<bool, CryptoError> {
        self.decrypt_indexed(stored).map(|(_, index)| index > 0)
    }

    fn decrypt_indexed(&self, stored: &str) -> Result<(Secret, usize), CryptoError> {
        let token_bytes = Zeroizing::new(
            URL_SAFE_LENIENT
                .decode(stored.trim())
                .map_err(|_| CryptoError::InvalidEncoding)?,
        );
        let token = std::str::from_utf8(&token_bytes).map_err(|_| CryptoError::Malformed)?;
        let (mut plaintext, index) = self.decrypt_token_indexed(token, None, unix_now())?;
        match String::from_utf8(std::mem::take(&mut *plaintext)) {
            Ok(text) => Ok((Secret::new(text), index)),
            Err(e) => {
                e.into_bytes().zeroize();
                Err(CryptoError::NotUtf8)
            }
        }
    }

    /// Makes a raw Fernet token (the spec's format) with the current key and time.
    pub fn encrypt_token(&self, data: &[u8]) -> String {
        self.encrypt_token_at(data, unix_now())
    }

    /// Makes a raw Fernet token stamped with `unix_time` (seconds). For tests and tools.
    pub fn encrypt_token_at(&self, data: &[u8], unix_time: u64) -> String {
        self.sealer.seal_text(data, unix_time)
    }

    /// Makes a raw Fernet token with a chosen IV: the specification's "generate" operation,
    /// for test vectors only. Reusing an IV with one key leaks which plaintexts share a
    /// prefix; [`encrypt_token_at`](Self::encrypt_token_at) draws a fresh one every time.
    #[doc(hidden)]
    pub fn encrypt_token_with_iv(&self, data: &[u8], unix_time: u64, iv: &[u8; 16]) -> String {
        URL_SAFE.encode(self.sealer.seal_with_iv(data, unix_time, iv))
    }

    /// Verifies and decrypts a raw Fernet token as of `now` (Unix seconds). With a TTL, tokens
    /// older than it are rejected, as are tokens from more than 60 s in the future; without
    /// one, the token's age is not checked (as Python's `Fernet.decrypt(token)`).
    pub fn decrypt_token(
        &self,
        token: &str,
        ttl_secs: Option<u64>,
        now: u64,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.decrypt_token_indexed(token, ttl_secs, now)
            .map(|(plain, _)| plain)
    }

    fn decrypt_token_indexed(
        &self,
        token: &str,
        ttl_secs: Option<u64>,
        now: u64,
    ) -> Result<(Zeroizing<Vec<u8>>, usize), CryptoError> {
        // The fernet crate adds timestamp and TTL unchecked; refuse what would overflow.
        if let Some(ttl) = ttl_secs {
            let timestamp = token_timestamp(token)?;
            if timestamp.checked_add(ttl).is_none() || now.checked_add(60).is_none() {
                return Err(CryptoError::InvalidToken);
            }
        }
        // Without a TTL, "now" is pushed to the end of time so that only authenticity is
        // checked, like Python's Fernet; the crate's future-skew check then never fires.
        let now = if ttl_secs.is_some() {
            now
        } else {
            u64::MAX - 60
        };
        for (index, key) in self.keys.iter().enumerate() {
            if let Ok(plaintext) = key.decrypt_at_time(token, ttl_secs, now) {
                return Ok((Zeroizing::new(plaintext), index));
            }
        }
        Err(classify_failure(token))
    }
}

/// Tells a token that is not a Fernet token at all from one that fails authentication.
fn classify_failure(token: &str) -> CryptoError {
    match URL_SAFE_LENIENT.decode(token) {
        Err(_) => CryptoError::InvalidEncoding,
        Ok(bytes)
            if bytes.len() < MIN_TOKEN_LEN
                || bytes[0] != VERSION
                || !(bytes.len() - (HEADER_LEN + MAC_LEN)).is_multiple_of(16) =>
        {
            CryptoError::Malformed
        }
        Ok(_) => CryptoError::InvalidToken,
    }
}

fn token_timestamp(token: &str) -> Result<u64, CryptoError> {
    let bytes = URL_SAFE_LENIENT
        .decode(token)
        .map_err(|_| CryptoError::InvalidEncoding)?;
    match bytes.get(..9) {
        Some([VERSION, ts @ ..]) => Ok(u64::from_be_bytes(
            ts.try_into().map_err(|_| CryptoError::Malformed)?,
        )),
        _ => Err(CryptoError::Malformed),
    }
}
