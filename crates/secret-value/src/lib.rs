//! [`Secret`]: the one type the secrets toolkit uses for a secret value: a provider's answer,
//! a decrypted credential, a passphrase.
//!
//! - Zeroized when dropped (built on [`secrecy`]).
//! - `Debug` prints `[REDACTED]`, and there is no `Display`: `format!("Bearer {token}")` does
//!   not compile, so a value cannot reach a log line or an error message by accident.
//! - The value is reachable only through [`Secret::expose`]; every call site is a place where
//!   it leaves its wrapper, and is easy to find.
//! - Equality is constant-time ([`subtle`]): comparing a presented token with a stored one
//!   does not reveal where they first differ.
//!
//! ```
//! use secret_value::Secret;
//!
//! let token = Secret::new("hf_abc123");
//! assert_eq!(format!("{token:?}"), "[REDACTED]");
//! assert_eq!(token.expose(), "hf_abc123");
//! assert_eq!(token, Secret::from("hf_abc123"));
//! ```
//!
//! Formatting a secret with `{}` is a compile error:
//!
//! ```compile_fail,E0277
//! let token = secret_value::Secret::new("hf_abc123");
//! let header = format!("Bearer {token}");
//! ```

use std::fmt;

use secrecy::{ExposeSecret, SecretBox};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// A secret string: zeroized on drop, redacted by `Debug`, without `Display`.
///
/// ```
/// # use secret_value::Secret;
/// let value = Secret::new(String::from("s3cr3t"));
/// assert_eq!(value.expose(), "s3cr3t");
/// assert_eq!(format!("{:?}", Some(&value)), "Some([REDACTED])");
/// ```
pub struct Secret(SecretBox<str>);

impl Secret {
    /// Wraps a value. A `String` with spare capacity is copied into an exact-size buffer and
    /// the original buffer is zeroized, so no unwiped copy is left behind by the move.
    pub fn new(value: impl Into<String>) -> Self {
        let mut value: String = value.into();
        let boxed: Box<str> = if value.capacity() == value.len() {
            value.into_boxed_str()
        } else {
            let exact = Box::from(value.as_str());
            value.zeroize();
            exact
        };
        Self(SecretBox::new(boxed))
    }

    /// The plain value. Every call is a place where the secret leaves its wrapper.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether the value is the empty string.
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }

    /// The value's length in bytes.
    pub fn len(&self) -> usize {
        self.expose().len()
    }
}

impl Clone for Secret {
    fn clone(&self) -> Self {
        Self::new(self.expose())
    }
}

impl PartialEq for Secret {
    /// Constant-time in the content; the lengths are not secret.
    fn eq(&self, other: &Self) -> bool {
        self.expose()
            .as_bytes()
            .ct_eq(other.expose().as_bytes())
            .into()
    }
}

impl Eq for Secret {}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("sentinel-value-42");
        for shown in [
            format!("{s:?}"),
            format!("{s:#?}"),
            format!("{:?}", Some(s.clone())),
            format!("{:?}", vec![s.clone()]),
        ] {
            assert!(!shown.contains("sentinel"), "{shown}");
            assert!(shown.contains("[REDACTED]"));
        }
    }

    #[test]
    fn equality_compares_values() {
        assert_eq!(Secret::new("a"), Secret::from("a"));
        assert_ne!(Secret::new("a"), Secret::new("b"));
        assert_ne!(Secret::new("a"), Secret::new("ab"));
        assert!(Secret::new("").is_empty());
        assert_eq!(Secret::new("abc").len(), 3);
    }

    #[test]
    fn strings_with_spare_capacity_keep_their_value() {
        let mut s = String::with_capacity(64);
        s.push_str("héllo");
        assert_eq!(Secret::new(s).expose(), "héllo");
    }
}
