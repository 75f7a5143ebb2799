//! [`ParseFailure`]: where and why the secrets document cannot be read, without its text.

use std::path::Path;

use secrets_core::{ErrorKind, Location, ProviderError};

use crate::PROVIDER_NAME;

/// Where and why a document failed to parse.
#[derive(Debug, Clone)]
pub(crate) struct ParseFailure {
    pub(crate) line: Option<usize>,
    pub(crate) column: Option<usize>,
    pub(crate) message: String,
}

impl ParseFailure {
    /// The document is not UTF-8; `(line, column)` of the first invalid byte.
    pub(crate) fn not_utf8((line, column): (usize, usize)) -> Self {
        Self {
            line: Some(line),
            column: Some(column),
            message: "the file is not valid UTF-8".to_owned(),
        }
    }

    /// The provider error for this failure in the file at `path`.
    pub(crate) fn to_error(&self, path: &Path) -> ProviderError {
        ProviderError::new(PROVIDER_NAME, ErrorKind::Malformed, self.message.clone())
            .with_location(Location::file_at(path, self.line, self.column))
    }
}

/// The 1-based line and column (in characters) of byte `offset` of a document whose first
/// `offset` bytes are valid UTF-8.
pub(crate) fn text_position(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = std::str::from_utf8(&bytes[..offset]).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_invalid_utf8_are_one_based() {
        let bytes = b"{\n  \"k\": \"\xff\"\n}";
        // "{", newline, two spaces, "k", colon, space, a quote: the bad byte is byte 10.
        assert_eq!(text_position(bytes, 10), (2, 9));
        assert_eq!(text_position(b"\xff", 0), (1, 1));
    }
}
