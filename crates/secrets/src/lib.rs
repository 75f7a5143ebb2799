//! Resolve application secrets through an ordered chain of providers.
//!
//! This is the facade of the toolkit, in the way `grep` fronts `grep-searcher` and friends:
//! it re-exports the core types of [`secrets_core`] and, by cargo feature, the providers and
//! tools:
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `env`  | yes | [`EnvProvider`]: environment variables (`hf-token` reads `HF_TOKEN`) |
//! | `file` | yes | [`FileProvider`]: `~/.<app>/secrets.json` / `.yaml` / `.yml` |
//! | `aws` | no | [`AwsSecretsManagerProvider`]: one AWS Secrets Manager secret (`<APP>_AWS_SECRET_NAME`) |
//! | `vault` | no | [`VaultProvider`]: HashiCorp Vault / OpenBao KV v2 or v1 (`VAULT_ADDR`, `VAULT_TOKEN`, AppRole) |
//! | `cache` | no | [`cache`]: the concurrent TTL cache and its `#[cached]` macro |
//! | `crypto` | no | [`crypto`]: Fernet credential encryption, key management, rotation |
//! | `config` | no | [`config`]: cloud-provider configuration store, encrypted credentials, audit trail |
//! | `postgres` | no | `config` on a PostgreSQL database shared by several replicas (`<APP>_DATABASE_URL`), with cross-replica cache invalidation |
//! | `metrics` | no | lookups, cache hits/misses/evictions, provider latencies and errors through the [`metrics`](https://docs.rs/metrics) facade (names in [`metrics`](mod@metrics)) |
//! | `test-util` | no | `reset_global()` |
//!
//! The default chain is environment > file > AWS > Vault (each as compiled in); the
//! first provider that has a key wins. See [`SecretsManager`] for caching and error rules,
//! [`Config`] for configuration, [`blocking`] for synchronous callers and [`global`] for the
//! process-wide manager the original server had.
//!
//! ```
//! # #[cfg(feature = "file")] {
//! use secrets::Config;
//!
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("secrets.json"), r#"{"DEMO_FACADE_KEY": "from-file"}"#).unwrap();
//! let config = Config::default().file_path(dir.path().join("secrets.json"));
//! let manager = secrets::blocking::SecretsManager::from_config(&config).unwrap();
//! let found = manager.get_with_source("DEMO_FACADE_KEY").unwrap().unwrap();
//! assert_eq!((found.value.expose(), found.provider.as_str()), ("from-file", "file"));
//! # }
//! ```
#![cfg_attr(feature = "env", doc = "[`EnvProvider`]: crate::EnvProvider")]
#![cfg_attr(
    not(feature = "env"),
    doc = "[`EnvProvider`]: https://docs.rs/secrets-env (feature `env`)"
)]
#![cfg_attr(feature = "file", doc = "[`FileProvider`]: crate::FileProvider")]
#![cfg_attr(
    not(feature = "file"),
    doc = "[`FileProvider`]: https://docs.rs/secrets-file (feature `file`)"
)]
#![cfg_attr(
    feature = "aws",
    doc = "[`AwsSecretsManagerProvider`]: crate::AwsSecretsManagerProvider"
)]
#![cfg_attr(
    not(feature = "aws"),
    doc = "[`AwsSecretsManagerProvider`]: https://docs.rs/secrets-aws (feature `aws`)"
)]
#![cfg_attr(feature = "vault", doc = "[`VaultProvider`]: crate::VaultProvider")]
#![cfg_attr(
    not(feature = "vault"),
    doc = "[`VaultProvider`]: https://docs.rs/secrets-vault (feature `vault`)"
)]
#![cfg_attr(feature = "cache", doc = "[`cache`]: crate::cache")]
#![cfg_attr(
    not(feature = "cache"),
    doc = "[`cache`]: https://docs.rs/ttl-cache (feature `cache`)"
)]
#![cfg_attr(feature = "crypto", doc = "[`crypto`]: crate::crypto")]
#![cfg_attr(
    not(feature = "crypto"),
    doc = "[`crypto`]: https://docs.rs/credential-crypto (feature `crypto`)"
)]
#![cfg_attr(feature = "config", doc = "[`config`]: crate::config")]
#![cfg_attr(
    not(feature = "config"),
    doc = "[`config`]: https://docs.rs/provider-config (feature `config`)"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod blocking;
// `secrets::config` is the cloud-provider configuration store (feature `config`); the
// configuration of the provider chain is `chain_config`.
mod chain_config;
mod global;
mod providers;

pub use chain_config::{Config, ConfigError, ProviderStatus, SecretsManagerExt};
#[cfg(any(test, feature = "test-util"))]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub use global::reset_global;
pub use global::{global, set_global};
pub use private_fs::{AppName, DEFAULT_APP_NAME, InvalidAppName};
pub use private_fs::{PermissionPolicy, UnsafeFile, process_policy, set_process_policy};
pub use providers::ProviderKind;
/// Names and labels of the metrics exported with the feature `metrics`.
pub use secrets_core::metrics;
pub use secrets_core::{
    CLOUD_WEBHOOK_SECRET, CacheStats, Clock, DEFAULT_CACHE_TTL, DEFAULT_NEGATIVE_CACHE_TTL,
    ErrorKind, HF_TOKEN, Location, ManualClock, MemoryProvider, ProviderError, ProviderHealth,
    REPLICATE_API_TOKEN, Resolved, Secret, SecretProvider, SecretsError, SecretsManager,
    SecretsManagerBuilder, Snapshot, SnapshotPolicy, SystemClock, async_trait,
};

/// The environment-variable provider crate.
#[cfg(feature = "env")]
#[cfg_attr(docsrs, doc(cfg(feature = "env")))]
pub use secrets_env as env;
#[cfg(feature = "env")]
#[cfg_attr(docsrs, doc(cfg(feature = "env")))]
pub use secrets_env::{EnvProvider, EnvSettings};

/// The secrets-file provider crate.
#[cfg(feature = "file")]
#[cfg_attr(docsrs, doc(cfg(feature = "file")))]
pub use secrets_file as file;
#[cfg(feature = "file")]
#[cfg_attr(docsrs, doc(cfg(feature = "file")))]
pub use secrets_file::{FileProvider, FileSettings};

/// The AWS Secrets Manager provider crate.
#[cfg(feature = "aws")]
#[cfg_attr(docsrs, doc(cfg(feature = "aws")))]
pub use secrets_aws as aws;
#[cfg(feature = "aws")]
#[cfg_attr(docsrs, doc(cfg(feature = "aws")))]
pub use secrets_aws::{AwsSecretsManagerProvider, AwsSettings};
/// The HashiCorp Vault / OpenBao provider crate.
#[cfg(feature = "vault")]
#[cfg_attr(docsrs, doc(cfg(feature = "vault")))]
pub use secrets_vault as vault;
#[cfg(feature = "vault")]
#[cfg_attr(docsrs, doc(cfg(feature = "vault")))]
pub use secrets_vault::{VaultProvider, VaultSettings};

/// The concurrent TTL cache (`ttl-cache`): [`cache::TtlCache`], [`cache::cached`].
#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
pub use ttl_cache as cache;

/// Credential encryption: [`crypto::CredentialCipher`], [`crypto::KeyLoader`],
/// [`crypto::encrypt_credential`] and friends.
#[cfg(feature = "crypto")]
#[cfg_attr(docsrs, doc(cfg(feature = "crypto")))]
pub use credential_crypto as crypto;

/// The configuration of cloud training providers (`provider-config`): [`config::ConfigStore`],
/// [`config::CredentialStore`], [`config::AuditTrail`], the global caches and the hardware
/// pricing. "Provider" there is a cloud training provider, not a [`SecretProvider`].
#[cfg(feature = "config")]
#[cfg_attr(docsrs, doc(cfg(feature = "config")))]
pub use provider_config as config;

// The repository README's Rust example compiles as shown.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct RepositoryReadme;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadme;

// The AWS guide's Rust example compiles as shown.
#[cfg(all(doctest, feature = "aws"))]
#[doc = include_str!("../../../docs/aws.md")]
struct AwsGuide;
// The provider-config guide's examples compile and run as shown.
#[cfg(all(doctest, feature = "config"))]
#[doc = include_str!("../../../docs/provider-config.md")]
struct ProviderConfigGuide;

#[cfg(test)]
mod tests;
