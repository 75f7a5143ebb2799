//! A blocking API for synchronous callers, in the manner of `reqwest::blocking`.
//!
//! [`SecretsManager`] owns a small current-thread tokio runtime. Calling it from inside an
//! async runtime is allowed too: the call then runs on a scoped helper thread instead of
//! panicking as a nested `block_on` would, but async code should use the async manager.

use std::future::Future;
use std::sync::Arc;

use secrets_core::{Resolved, Secret, SecretsError};

use crate::{Config, ConfigError, SecretsManagerExt};

/// A synchronous front for an async [`secrets_core::SecretsManager`].
///
/// ```
/// # #[cfg(feature = "file")] {
/// let dir = tempfile::tempdir().unwrap();
/// let config = secrets::Config::default().file_path(dir.path().join("secrets.json"));
/// let manager = secrets::blocking::SecretsManager::from_config(&config).unwrap();
/// manager.set("demo-key", "value").unwrap();
/// assert_eq!(manager.get("demo-key").unwrap().unwrap().expose(), "value");
/// # }
/// ```
#[derive(Debug)]
pub struct SecretsManager {
    inner: Arc<secrets_core::SecretsManager>,
    runtime: tokio::runtime::Runtime,
}

/// Errors of the blocking API: the async manager's, or failing to start its runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlockingError {
    /// Building the configured manager failed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The internal runtime could not be started.
    #[error("cannot start the runtime of the blocking secrets manager: {0}")]
    Runtime(#[from] std::io::Error),
}

impl SecretsManager {
    /// Wraps an async manager.
    pub fn new(inner: Arc<secrets_core::SecretsManager>) -> Result<Self, BlockingError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Self { inner, runtime })
    }

    /// The manager [`from_env`](crate::SecretsManagerExt::from_env) builds.
    pub fn from_env() -> Result<Self, BlockingError> {
        Self::new(Arc::new(secrets_core::SecretsManager::from_env()?))
    }

    /// The manager for a configuration.
    pub fn from_config(config: &Config) -> Result<Self, BlockingError> {
        Self::new(Arc::new(config.build()?))
    }

    /// The async manager behind this one.
    pub fn inner(&self) -> &Arc<secrets_core::SecretsManager> {
        &self.inner
    }

    fn block_on<F: Future + Send>(&self, future: F) -> F::Output
    where
        F::Output: Send,
    {
        if tokio::runtime::Handle::try_current().is_err() {
            return self.runtime.block_on(future);
        }
        std::thread::scope(|scope| {
            let handle = scope.spawn(|| self.runtime.block_on(future));
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// See [`secrets_core::SecretsManager::get`].
    pub fn get(&self, key: &str) -> Result<Option<Secret>, SecretsError> {
        Ok(self.get_with_source(key)?.map(|r| r.value))
    }

    /// See [`secrets_core::SecretsManager::get_or`].
    pub fn get_or(&self, key: &str, default: impl Into<Secret>) -> Result<Secret, SecretsError> {
        let default = default.into();
        self.block_on(self.inner.get_or(key, default))
    }

    /// See [`secrets_core::SecretsManager::get_with_source`].
    pub fn get_with_source(&self, key: &str) -> Result<Option<Resolved>, SecretsError> {
        // A cached answer needs no runtime: entering one costs more than the lookup.
        if let Some(answer) = self.inner.cached(key) {
            return Ok(answer);
        }
        self.look_up(key)
    }

    /// The lookup of a key the cache does not hold. Out of line, so that the hit path's
    /// stack frame does not carry the (large) lookup future.
    #[cold]
    #[inline(never)]
    fn look_up(&self, key: &str) -> Result<Option<Resolved>, SecretsError> {
        self.block_on(self.inner.get_with_source(key))
    }

    /// See [`secrets_core::SecretsManager::set`].
    pub fn set(&self, key: &str, value: impl Into<Secret>) -> Result<(), SecretsError> {
        let value = value.into();
        self.block_on(self.inner.set(key, value))
    }

    /// See [`secrets_core::SecretsManager::set_in`].
    pub fn set_in(
        &self,
        provider: &str,
        key: &str,
        value: impl Into<Secret>,
    ) -> Result<(), SecretsError> {
        let value = value.into();
        self.block_on(self.inner.set_in(provider, key, value))
    }

    /// See [`secrets_core::SecretsManager::delete_in`].
    pub fn delete_in(&self, provider: &str, key: &str) -> Result<bool, SecretsError> {
        self.block_on(self.inner.delete_in(provider, key))
    }

    /// See [`secrets_core::SecretsManager::delete`].
    pub fn delete(&self, key: &str) -> Result<bool, SecretsError> {
        self.block_on(self.inner.delete(key))
    }

    /// See [`secrets_core::SecretsManager::clear_cache`].
    pub fn clear_cache(&self) -> usize {
        self.inner.clear_cache()
    }

    /// See [`secrets_core::SecretsManager::hf_token`].
    pub fn hf_token(&self) -> Result<Option<Secret>, SecretsError> {
        self.block_on(self.inner.hf_token())
    }

    /// See [`secrets_core::SecretsManager::replicate_token`].
    pub fn replicate_token(&self) -> Result<Option<Secret>, SecretsError> {
        self.block_on(self.inner.replicate_token())
    }

    /// See [`secrets_core::SecretsManager::webhook_secret`].
    pub fn webhook_secret(&self) -> Result<Option<Secret>, SecretsError> {
        self.block_on(self.inner.webhook_secret())
    }

    /// See [`secrets_core::SecretsManager::set_replicate_token`].
    pub fn set_replicate_token(&self, value: impl Into<Secret>) -> Result<(), SecretsError> {
        let value = value.into();
        self.block_on(self.inner.set_replicate_token(value))
    }
}
