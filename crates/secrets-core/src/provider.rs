//! The [`SecretProvider`] trait that every backend implements.

use std::time::Duration;

use async_trait::async_trait;

use crate::{Location, ProviderError, Secret};

/// A source of secrets: environment, file, remote store.
///
/// Reads are mandatory; writes are a capability: a provider that supports them overrides
/// [`supports_writes`](Self::supports_writes), [`set`](Self::set) and
/// [`delete`](Self::delete). The defaults answer an [`ErrorKind::ReadOnly`](crate::ErrorKind::ReadOnly) error.
#[async_trait]
pub trait SecretProvider: Send + Sync + std::fmt::Debug {
    /// Short stable name used in provenance, logs and the CLI (`env`, `file`, `aws`, `vault`).
    fn name(&self) -> &str;

    /// Cheap check (no I/O beyond a stat) of whether the provider is configured and can be asked.
    /// The manager skips providers that answer `false`.
    fn is_available(&self) -> bool;

    /// Looks a key up. `Ok(None)` means "not here"; `Err` means "could not tell".
    async fn get(&self, key: &str) -> Result<Option<Secret>, ProviderError>;

    /// A real round trip to the backend, used by health checks (`secrets doctor`).
    async fn health(&self) -> Result<(), ProviderError>;

    /// Where this provider looks for `key` (the variable name, the file), for "not found"
    /// messages that say where to put it. `None` (the default) when there is nothing
    /// specific to say.
    fn lookup_location(&self, _key: &str) -> Option<Location> {
        None
    }

    /// For how long the answers this provider gives now stay fresh, if it keeps its own copy
    /// of a remote object (AWS, Vault): the time left until that copy expires. The manager
    /// caches an answer no longer than this, so the two caches never stack and a changed
    /// value is seen within one TTL. `None` (the default): the manager's own TTL applies.
    fn freshness(&self) -> Option<Duration> {
        None
    }

    /// Whether [`set`](Self::set) and [`delete`](Self::delete) are supported.
    fn supports_writes(&self) -> bool {
        false
    }

    /// Stores a value under a key.
    async fn set(&self, key: &str, _value: &Secret) -> Result<(), ProviderError> {
        Err(ProviderError::read_only(self.name().to_owned(), "set", key))
    }

    /// Removes a key; `Ok(true)` when it existed.
    async fn delete(&self, key: &str) -> Result<bool, ProviderError> {
        Err(ProviderError::read_only(
            self.name().to_owned(),
            "delete",
            key,
        ))
    }
}
