//! [`CryptoError`]: what can go wrong, never with the input or a plaintext in it.

use std::path::PathBuf;

/// Errors of encryption, decryption and key management. No variant echoes the stored value,
/// the plaintext or a passphrase.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The stored value is not URL-safe base64 (it is not a stored credential at all).
    #[error("the stored credential is not valid URL-safe base64")]
    InvalidEncoding,
    /// The value decodes but is not a Fernet token (wrong version byte, truncated, bad length).
    #[error("the stored credential is not a Fernet token (truncated or corrupted)")]
    Malformed,
    /// The token's authentication failed for every configured key: the key is wrong, or the
    /// token was tampered with.
    #[error(
        "the stored credential cannot be decrypted with any configured key (wrong key or tampered data)"
    )]
    InvalidToken,
    /// The decrypted credential is not UTF-8 text.
    #[error("the decrypted credential is not valid UTF-8")]
    NotUtf8,
    /// A passphrase was empty.
    #[error("the credential passphrase from {origin} is empty")]
    EmptyPassphrase {
        /// Where the passphrase came from.
        origin: String,
    },
    /// A raw Fernet key was not 32 bytes of URL-safe base64.
    #[error("the Fernet key is not 32 bytes of URL-safe base64")]
    InvalidFernetKey,
    /// The key file exists but cannot be used. It is never replaced: a new key would make
    /// every stored credential unreadable.
    #[error("credential key file {}: {problem}; it was left untouched (a new key would make every stored credential unreadable)", .path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Creating the key file or its directory failed.
    #[error("credential key file {}: {operation}: {source}", .path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// What was being done.
        operation: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// There is no key, and the loader was told not to create one.
    #[error(
        "no credential key: ${variable} is unset and {} does not exist; nothing could be decrypted with a new key", .path.display()
    )]
    NoKey {
        /// The variable that was looked at.
        variable: String,
        /// The key file that was looked for.
        path: PathBuf,
    },
    /// Strict permission mode refused a key file that group or others can read (or
    /// replace); the message names the file and the fix.
    #[error("{0}")]
    UnsafeKeyFile(#[source] private_fs::UnsafeFile),
    /// The key's variable or file cannot be read or located: a variable that is not UTF-8,
    /// or no home directory to find the key file in.
    #[error("cannot locate the credential key: {0}")]
    Locate(#[source] private_fs::LocateError),
}
