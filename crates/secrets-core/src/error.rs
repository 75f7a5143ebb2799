//! Error types of providers and of the manager.
//!
//! No error carries a secret value: only provider names, keys, locations and reasons.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

/// Boxed underlying error of a backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of failure a [`ProviderError`] is. Callers branch on this, not on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The container of the secrets does not exist: the file, the AWS secret, the Vault path.
    NotFound,
    /// The backend refused access (file permissions, IAM, a Vault policy).
    PermissionDenied,
    /// The backend cannot be reached or cannot serve now: network error, connection refused,
    /// a sealed Vault, an HTTP 5xx.
    Unavailable,
    /// The backend did not answer in time.
    Timeout,
    /// The backend asked us to slow down.
    Throttled,
    /// The container's content cannot be parsed (not JSON, not YAML, not a mapping).
    Malformed,
    /// The value under a key has a type that cannot be a secret.
    InvalidValue,
    /// A local I/O failure other than the above.
    Io,
    /// The provider's settings are wrong or incomplete.
    Misconfigured,
    /// The provider does not support the requested write.
    ReadOnly,
    /// A write lost a race: the container changed since it was read.
    Conflict,
}

impl ErrorKind {
    /// Whether the failure may pass by itself, so that serving a stale value and retrying
    /// later is reasonable: unavailable, timeout, throttled.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Unavailable | Self::Timeout | Self::Throttled)
    }

    fn describe(self) -> &'static str {
        match self {
            Self::NotFound => "not found",
            Self::PermissionDenied => "permission denied",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timed out",
            Self::Throttled => "throttled",
            Self::Malformed => "malformed content",
            Self::InvalidValue => "invalid value",
            Self::Io => "I/O error",
            Self::Misconfigured => "misconfigured",
            Self::ReadOnly => "read-only",
            Self::Conflict => "conflicting change",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Where a failure happened inside a provider's backend.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// A file, with the 1-based position of the problem when known.
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: Option<usize>,
        /// 1-based column.
        column: Option<usize>,
    },
    /// An environment variable (its name).
    Variable(String),
    /// A named remote secret (an AWS Secrets Manager secret id).
    Secret(String),
    /// A URL or URL path (a Vault path such as `secret/data/app`).
    Url(String),
}

impl Location {
    /// A whole file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::File {
            path: path.into(),
            line: None,
            column: None,
        }
    }

    /// A position in a file.
    pub fn file_at(path: impl Into<PathBuf>, line: Option<usize>, column: Option<usize>) -> Self {
        Self::File {
            path: path.into(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { path, line, column } => {
                write!(f, "{}", path.display())?;
                match (line, column) {
                    (Some(l), Some(c)) => write!(f, " at line {l}, column {c}"),
                    (Some(l), None) => write!(f, " at line {l}"),
                    _ => Ok(()),
                }
            }
            Self::Variable(name) => write!(f, "variable ${}", Escaped(name)),
            Self::Secret(id) => write!(f, "secret `{}`", Escaped(id)),
            Self::Url(url) => f.write_str(url),
        }
    }
}

/// Shows a name with control characters escaped, so a hostile key cannot forge log lines.
pub(crate) struct Escaped<'a>(pub(crate) &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

/// What a provider reports when it cannot answer: which provider, what kind of failure,
/// where (file and position, variable, remote secret, URL), for which key, a message, and
/// the underlying error.
///
/// Messages and sources never contain secret values; `Debug` shows the source through its
/// `Display`, so a backend error's `Debug` (which may dump a raw response) is never printed.
///
/// ```
/// use secrets_core::{ErrorKind, Location, ProviderError};
///
/// let e = ProviderError::new("file", ErrorKind::Malformed, "expected `,` or `}`")
///     .with_location(Location::file_at("/etc/app/secrets.json", Some(3), Some(7)));
/// assert_eq!(
///     e.to_string(),
///     "provider `file`: malformed content in /etc/app/secrets.json at line 3, column 7: expected `,` or `}`"
/// );
/// assert!(!e.is_transient());
/// ```
pub struct ProviderError(Box<Inner>);

/// Boxed so that `Result<_, ProviderError>` stays one pointer wide on the happy path.
struct Inner {
    provider: Cow<'static, str>,
    kind: ErrorKind,
    key: Option<String>,
    location: Option<Location>,
    message: Cow<'static, str>,
    source: Option<BoxError>,
}

impl ProviderError {
    /// A failure of `provider` of this kind; `message` says what happened and names no value.
    pub fn new(
        provider: impl Into<Cow<'static, str>>,
        kind: ErrorKind,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self(Box::new(Inner {
            provider: provider.into(),
            kind,
            key: None,
            location: None,
            message: message.into(),
            source: None,
        }))
    }

    /// The key being looked up or written.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.0.key = Some(key.into());
        self
    }

    /// Where the failure happened.
    pub fn with_location(mut self, location: Location) -> Self {
        self.0.location = Some(location);
        self
    }

    /// The underlying error. Its `Display` is shown in this error's message, so it must not
    /// contain a secret value (do not attach a parser's error that quotes its input).
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.0.source = Some(source.into());
        self
    }

    /// An I/O failure while doing `operation` (`"reading"`, `"replacing"`...) at `location`;
    /// the kind follows the I/O error (permission denied, timeout, otherwise I/O).
    pub fn io(
        provider: impl Into<Cow<'static, str>>,
        operation: impl Into<Cow<'static, str>>,
        location: Location,
        source: std::io::Error,
    ) -> Self {
        let kind = match source.kind() {
            std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
            _ => ErrorKind::Io,
        };
        Self::new(provider, kind, operation)
            .with_location(location)
            .with_source(source)
    }

    /// The provider does not support `operation` (`"set"` or `"delete"`) of `key`.
    pub fn read_only(
        provider: impl Into<Cow<'static, str>>,
        operation: &'static str,
        key: &str,
    ) -> Self {
        Self::new(
            provider,
            ErrorKind::ReadOnly,
            format!("this provider cannot {operation} keys"),
        )
        .with_key(key)
    }

    /// The name of the provider that failed.
    pub fn provider(&self) -> &str {
        &self.0.provider
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The key involved, if any.
    pub fn key(&self) -> Option<&str> {
        self.0.key.as_deref()
    }

    /// Where the failure happened, if known.
    pub fn location(&self) -> Option<&Location> {
        self.0.location.as_ref()
    }

    /// What happened (never a value).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Whether the failure may pass by itself (see [`ErrorKind::is_transient`]): a cached
    /// value may be served meanwhile and the lookup retried later.
    pub fn is_transient(&self) -> bool {
        self.0.kind.is_transient()
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let this = &self.0;
        write!(f, "provider `{}`: {}", Escaped(&this.provider), this.kind)?;
        if let Some(key) = &this.key {
            write!(f, " for key `{}`", Escaped(key))?;
        }
        if let Some(location) = &this.location {
            write!(f, " in {location}")?;
        }
        if !this.message.is_empty() {
            write!(f, ": {}", this.message)?;
        }
        if let Some(source) = &this.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

/// Clones keep the source's message but not its type (a boxed error cannot be cloned).
impl Clone for ProviderError {
    fn clone(&self) -> Self {
        let this = &self.0;
        Self(Box::new(Inner {
            provider: this.provider.clone(),
            kind: this.kind,
            key: this.key.clone(),
            location: this.location.clone(),
            message: this.message.clone(),
            source: this
                .source
                .as_ref()
                .map(|s| Box::new(SourceText(s.to_string())) as BoxError),
        }))
    }
}

/// The message of a source error whose type was lost in a clone.
#[derive(Debug)]
struct SourceText(String);

impl fmt::Display for SourceText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceText {}

impl fmt::Debug for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let this = &self.0;
        f.debug_struct("ProviderError")
            .field("provider", &this.provider)
            .field("kind", &this.kind)
            .field("key", &this.key)
            .field("location", &this.location)
            .field("message", &this.message)
            .field("source", &this.source.as_ref().map(ToString::to_string))
            .finish()
    }
}

impl std::error::Error for ProviderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// What [`SecretsManager`](crate::SecretsManager) operations report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// No provider had the key and at least one provider failed, so the key may exist
    /// in a provider that could not be asked.
    #[error("key `{}` not resolved: {} provider(s) failed: {}", Escaped(.key), .failures.len(), join(.failures))]
    ProvidersFailed {
        /// The key that was looked up.
        key: String,
        /// Each failure, in chain order.
        failures: Vec<ProviderError>,
    },
    /// A write was requested but no provider in the chain accepts writes.
    #[error("cannot {operation} key `{}`: no writable provider is configured", Escaped(.key))]
    NoWritableProvider {
        /// `set` or `delete`.
        operation: &'static str,
        /// The key.
        key: String,
    },
    /// The writable provider failed.
    #[error(transparent)]
    Write(ProviderError),
    /// A write named a provider that is not in the chain.
    #[error("provider `{}` is not in the chain (configured: {configured})", Escaped(.provider))]
    UnknownProvider {
        /// The name asked for.
        provider: String,
        /// The providers of the chain, comma-separated.
        configured: String,
    },
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
        self.provider_errors()
            .iter()
            .map(|e| e.provider())
            .collect()
    }

    /// The provider failures behind this error, in chain order.
    pub fn provider_errors(&self) -> Vec<&ProviderError> {
        match self {
            Self::ProvidersFailed { failures, .. } => failures.iter().collect(),
            Self::Write(e) => vec![e],
            Self::NoWritableProvider { .. } | Self::UnknownProvider { .. } => Vec::new(),
        }
    }

    /// Whether every provider failure behind this error is transient (retrying may help).
    pub fn is_transient(&self) -> bool {
        let errors = self.provider_errors();
        !errors.is_empty() && errors.iter().all(|e| e.is_transient())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_provider_kind_key_and_location() {
        let e = ProviderError::new(
            "file",
            ErrorKind::InvalidValue,
            "the value is a sequence; only strings, numbers and booleans can be secrets",
        )
        .with_key("list")
        .with_location(Location::file("/tmp/s.json"));
        assert_eq!(
            e.to_string(),
            "provider `file`: invalid value for key `list` in /tmp/s.json: the value is a sequence; only strings, numbers and booleans can be secrets"
        );
        assert_eq!(
            (e.provider(), e.kind(), e.key()),
            ("file", ErrorKind::InvalidValue, Some("list"))
        );

        let e = ProviderError::new("env", ErrorKind::InvalidValue, "not valid UTF-8")
            .with_key("k")
            .with_location(Location::Variable("K".into()));
        assert_eq!(
            e.to_string(),
            "provider `env`: invalid value for key `k` in variable $K: not valid UTF-8"
        );
        let e = ProviderError::new("aws", ErrorKind::NotFound, "the secret does not exist")
            .with_location(Location::Secret("prod/app".into()));
        assert_eq!(
            e.to_string(),
            "provider `aws`: not found in secret `prod/app`: the secret does not exist"
        );
    }

    #[test]
    fn io_errors_keep_their_cause_and_map_their_kind() {
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let e = ProviderError::io("file", "reading", Location::file("/s.json"), denied);
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(
            e.to_string()
                .starts_with("provider `file`: permission denied in /s.json: reading: ")
        );
        assert!(std::error::Error::source(&e).is_some());
        let other = std::io::Error::other("disk on fire");
        let e = ProviderError::io("file", "writing", Location::file("/s.json"), other);
        assert_eq!(e.kind(), ErrorKind::Io);
        assert!(format!("{e:?}").contains("disk on fire"));
    }

    #[test]
    fn clones_keep_every_field_and_the_source_text() {
        let e = ProviderError::io(
            "file",
            "reading",
            Location::file("/s.json"),
            std::io::Error::other("disk on fire"),
        )
        .with_key("K");
        let c = e.clone();
        assert_eq!(c.to_string(), e.to_string());
        assert_eq!(
            (c.kind(), c.key(), c.location()),
            (e.kind(), e.key(), e.location())
        );
        assert_eq!(
            std::error::Error::source(&c).map(ToString::to_string),
            Some("disk on fire".to_owned())
        );
    }

    #[test]
    fn control_characters_in_names_are_escaped() {
        let e = ProviderError::read_only("env", "set", "evil\nINFO forged line");
        let text = e.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains(r"evil\nINFO"), "{text}");
    }

    #[test]
    fn transience_follows_the_kind() {
        let transient = [
            ErrorKind::Unavailable,
            ErrorKind::Timeout,
            ErrorKind::Throttled,
        ];
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::PermissionDenied,
            ErrorKind::Unavailable,
            ErrorKind::Timeout,
            ErrorKind::Throttled,
            ErrorKind::Malformed,
            ErrorKind::InvalidValue,
            ErrorKind::Io,
            ErrorKind::Misconfigured,
            ErrorKind::ReadOnly,
            ErrorKind::Conflict,
        ] {
            let e = ProviderError::new("p", kind, "m");
            assert_eq!(e.is_transient(), transient.contains(&kind), "{kind:?}");
        }
    }

    #[test]
    fn providers_failed_lists_each_failure() {
        let e = SecretsError::ProvidersFailed {
            key: "HF_TOKEN".into(),
            failures: vec![
                ProviderError::new("aws", ErrorKind::Throttled, "slow down"),
                ProviderError::new("vault", ErrorKind::Unavailable, "connection refused"),
            ],
        };
        let text = e.to_string();
        assert!(text.contains("HF_TOKEN") && text.contains("2 provider(s) failed"));
        assert_eq!(e.failed_providers(), ["aws", "vault"]);
        assert!(e.is_transient());
        let e = SecretsError::Write(ProviderError::new("file", ErrorKind::Io, "x"));
        assert!(!e.is_transient());
    }
}
