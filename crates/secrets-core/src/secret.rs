//! The [`Secret`] value wrapper.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// A secret value: zeroized on drop, printed as `[REDACTED]` by `Debug` and `Display`.
///
/// The value is reachable only through [`Secret::expose`], so it cannot end up in a log line
/// or an error message by accident.
///
/// ```
/// use secrets_core::Secret;
///
/// let token = Secret::new("hf_abc123");
/// assert_eq!(format!("{token:?} {token}"), "[REDACTED] [REDACTED]");
/// assert_eq!(token.expose(), "hf_abc123");
/// ```
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The plain value. Every call site is a place where the secret leaves its wrapper.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether the value is the empty string.
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl Clone for Secret {
    fn clone(&self) -> Self {
        Self::new(self.expose())
    }
}

impl PartialEq for Secret {
    /// Compares in time independent of where the values first differ.
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.expose().as_bytes(), other.expose().as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_value() {
        let s = Secret::new("sentinel-value-42");
        for shown in [
            format!("{s:?}"),
            format!("{s}"),
            format!("{s:#?}"),
            format!("{:?}", Some(s.clone())),
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
    }
}
