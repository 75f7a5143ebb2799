//! Error types of providers and of the manager.
//!
//! No variant carries a secret value: only provider names, keys, paths and reasons.

use std::path::PathBuf;

/// Boxed underlying error of a backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a single provider reports when it cannot answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The provider does not support writes.
    #[error("provider `{provider}` is read-only: cannot {operation} key `{key}`")]
    ReadOnly {
        /// Provider name.
        provider: String,
        /// `set` or `delete`.
        operation: &'static str,
        /// The key that was to be written.
        key: String,
    },
    /// The provider is not configured or cannot be used at all.
    #[error("provider `{provider}` is not available: {reason}")]
    Unavailable {
        /// Provider name.
        provider: String,
        /// Why.
        reason: String,
    },
    /// A source document (file, remote secret) could not be parsed.
    #[error("provider `{provider}`: cannot parse {}{}: {message}", .path.display(), location(*.line, *.column))]
    Parse {
        /// Provider name.
        provider: String,
        /// The file or remote name that failed to parse.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// The parser's reason (never the offending text).
        message: String,
    },
    /// The value stored under a key has a type that cannot be a secret.
    #[error("provider `{provider}`: key `{key}` in {}: {reason}", .path.display())]
    InvalidValue {
        /// Provider name.
        provider: String,
        /// The source the key was read from.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong with the value (its type, never its content).
        reason: String,
    },
    /// A file-system operation failed.
    #[error("provider `{provider}`: {operation} {}: {source}", .path.display())]
    Io {
        /// Provider name.
        provider: String,
        /// What was being done, e.g. `reading`.
        operation: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Any other backend failure (network, remote service, authentication).
    #[error("provider `{provider}`: {message}")]
    Backend {
        /// Provider name.
        provider: String,
        /// A description that names no secret value.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

impl ProviderError {
    /// The name of the provider that failed.
    pub fn provider(&self) -> &str {
        match self {
            Self::ReadOnly { provider, .. }
            | Self::Unavailable { provider, .. }
            | Self::Parse { provider, .. }
            | Self::InvalidValue { provider, .. }
            | Self::Io { provider, .. }
            | Self::Backend { provider, .. } => provider,
        }
    }
}

/// What [`SecretsManager`](crate::SecretsManager) operations report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// No provider had the key and at least one provider failed, so the key may exist
    /// in a provider that could not be asked.
    #[error("key `{key}` not resolved: {} provider(s) failed: {}", .failures.len(), join(.failures))]
    ProvidersFailed {
        /// The key that was looked up.
        key: String,
        /// Each failure, in chain order.
        failures: Vec<ProviderError>,
    },
    /// A write was requested but no provider in the chain accepts writes.
    #[error("cannot {operation} key `{key}`: no writable provider is configured")]
    NoWritableProvider {
        /// `set` or `delete`.
        operation: &'static str,
        /// The key.
        key: String,
    },
    /// The writable provider failed.
    #[error(transparent)]
    Write(ProviderError),
}

fn join(failures: &[ProviderError]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl SecretsError {
    /// Names of the providers that failed, in chain order.
    pub fn failed_providers(&self) -> Vec<&str> {
        match self {
            Self::ProvidersFailed { failures, .. } => {
                failures.iter().map(ProviderError::provider).collect()
            }
            Self::Write(e) => vec![e.provider()],
            Self::NoWritableProvider { .. } => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_names_file_and_position() {
        let e = ProviderError::Parse {
            provider: "file".into(),
            path: "/tmp/s.json".into(),
            line: Some(3),
            column: Some(7),
            message: "expected `,`".into(),
        };
        assert_eq!(
            e.to_string(),
            "provider `file`: cannot parse /tmp/s.json at line 3, column 7: expected `,`"
        );
    }

    #[test]
    fn providers_failed_lists_each_failure() {
        let e = SecretsError::ProvidersFailed {
            key: "HF_TOKEN".into(),
            failures: vec![
                ProviderError::Unavailable {
                    provider: "aws".into(),
                    reason: "no credentials".into(),
                },
                ProviderError::Backend {
                    provider: "vault".into(),
                    message: "connection refused".into(),
                    source: None,
                },
            ],
        };
        let text = e.to_string();
        assert!(text.contains("HF_TOKEN") && text.contains("2 provider(s) failed"));
        assert_eq!(e.failed_providers(), ["aws", "vault"]);
    }
}
