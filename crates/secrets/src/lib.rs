//! Resolve application secrets through an ordered chain of providers.
//!
//! This is the facade of the toolkit, in the way `grep` fronts `grep-searcher` and friends:
//! it re-exports the core types of [`secrets_core`] and, by cargo feature, the providers:
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `env`  | yes | [`EnvProvider`]: environment variables (`hf-token` reads `HF_TOKEN`) |
//! | `file` | yes | [`FileProvider`]: `~/.<app>/secrets.json` / `.yaml` / `.yml` |
//! | `cache` | no | [`cache`]: the concurrent TTL cache and its `#[cached]` macro |
//! | `crypto` | no | [`crypto`]: Fernet credential encryption, key management, rotation |
//! | `test-util` | no | `reset_global()` |
//!
//! The default chain is environment > file (> AWS > Vault when those features land); the
//! first provider that has a key wins. See [`SecretsManager`] for caching and error rules.
//!
//! ```
//! # #[cfg(feature = "file")] {
//! use secrets::{Config, ProviderKind};
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("secrets.json"), r#"{"DEMO_FACADE_KEY": "from-file"}"#).unwrap();
//! let manager = secrets::blocking::SecretsManager::from_config(
//!     &Config::new("myapp").file_path(dir.path().join("secrets.json")),
//! ).unwrap();
//! let found = manager.get_with_source("DEMO_FACADE_KEY").unwrap().unwrap();
//! assert_eq!((found.value.expose(), found.provider.as_str()), ("from-file", "file"));
//! # }
//! ```

pub mod blocking;
mod config;
mod global;

pub use config::{Config, ConfigError, DEFAULT_APP_NAME, ProviderKind, SecretsManagerExt};
#[cfg(any(test, feature = "test-util"))]
pub use global::reset_global;
pub use global::{global, set_global};
pub use secrets_core::{
    CLOUD_WEBHOOK_SECRET, CacheStats, Clock, DEFAULT_CACHE_TTL, DEFAULT_NEGATIVE_CACHE_TTL,
    HF_TOKEN, ManualClock, MemoryProvider, ProviderError, ProviderHealth, REPLICATE_API_TOKEN,
    Resolved, Secret, SecretProvider, SecretsError, SecretsManager, SecretsManagerBuilder,
    SystemClock, async_trait,
};

/// The environment-variable provider crate.
#[cfg(feature = "env")]
pub use secrets_env as env;
#[cfg(feature = "env")]
pub use secrets_env::EnvProvider;

/// The secrets-file provider crate.
#[cfg(feature = "file")]
pub use secrets_file as file;
#[cfg(feature = "file")]
pub use secrets_file::FileProvider;

/// The concurrent TTL cache (`ttl-cache`): [`cache::TtlCache`], [`cache::cached`].
#[cfg(feature = "cache")]
pub use ttl_cache as cache;

/// Credential encryption: [`crypto::CredentialCipher`], [`crypto::KeyLoader`],
/// [`crypto::encrypt_credential`] and friends.
#[cfg(feature = "crypto")]
pub use credential_crypto as crypto;

#[cfg(test)]
mod tests;
