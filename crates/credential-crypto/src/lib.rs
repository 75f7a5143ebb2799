//! Credential encryption compatible with the values the SimpleTuner server stored.
//!
//! - **Key derivation**: Fernet key = URL-safe base64(PBKDF2-HMAC-SHA256(passphrase,
//!   salt `simpletuner-credential-encryption-v1`, 100 000 iterations, 32 bytes)), computed once
//!   per passphrase per process ([`FernetKey::derive_cached`]).
//! - **Stored format**: URL-safe base64 of the Fernet token, so a stored value is base64 twice
//!   and starts with `Z0FBQUFB`.
//! - **Keys** ([`KeyLoader`]): `SIMPLETUNER_CREDENTIAL_KEY` > `~/.simpletuner/credential.key`
//!   (the whole file, stripped, as the original reads it) > generated and saved (0600,
//!   race-safe, never overwritten).
//! - **Rotation**: a [`CredentialCipher`] has one current key and any number of previous keys
//!   (`SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS`, or the lines of `credential.key.previous`);
//!   [`CredentialCipher::rotate`] re-encrypts a stored value under the current key.
//! - **Errors** ([`CryptoError`]) never echo the input, a plaintext or a passphrase.
//!
//! Fernet itself is AES-128-CBC + HMAC-SHA256 from RustCrypto. Tokens are verified and
//! decrypted by the `fernet` crate; they are generated here from the same primitives with
//! the key schedules prepared once per key (a third faster than the crate, still with a fresh
//! OS-random IV per token), and checked byte for byte against the specification's vectors.
//! PBKDF2 comes from `ring`. No OpenSSL.
//!
//! ```
//! use credential_crypto::CredentialCipher;
//!
//! let cipher = CredentialCipher::from_passphrase("test-master-key").unwrap();
//! // A value the original Python implementation stored:
//! let stored = "Z0FBQUFBQnJCczE2OTZKeU4zcFlNNkFfN2tlN3I4MjFLVTFKODY3WVNLck9CQ2FtYzNvX2pQYTN6bC1hYzRCN3VQcmxzVjkxY042ajQ4VjhZYkNnYWJQa0QwbnlaclFMSWc9PQ==";
//! assert_eq!(cipher.decrypt(stored).unwrap().expose(), r#"{"json": true}"#);
//! ```

mod cipher;
mod derive;
mod error;
mod global;
mod keys;
mod seal;

pub use cipher::CredentialCipher;
pub use derive::{DEFAULT_SALT, FernetKey, PBKDF2_ITERATIONS};
pub use error::CryptoError;
pub use global::{
    decrypt_credential, encrypt_credential, global_cipher, rotate_credential, set_global_cipher,
};
pub use keys::{KEY_FILE_NAME, KeyLoader, KeyOrigin, Keyring, previous_keys_path};
pub use private_fs::AppName;
pub use secret_value::Secret;

#[cfg(test)]
mod tests;
