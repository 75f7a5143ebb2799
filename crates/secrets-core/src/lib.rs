//! Core of the secrets toolkit: the redacting [`Secret`], the async [`SecretProvider`] trait,
//! error types, and the [`SecretsManager`] that resolves keys through an ordered chain of
//! providers. This crate does no I/O of its own; backends live in their own crates
//! (`secrets-env`, `secrets-file`, ...) and applications usually depend on the `secrets` facade.
//!
//! ```
//! use std::sync::Arc;
//! use secrets_core::{MemoryProvider, SecretsManager};
//!
//! let manager = SecretsManager::builder()
//!     .provider(Arc::new(MemoryProvider::new("first").with("HF_TOKEN", "from-first")))
//!     .provider(Arc::new(MemoryProvider::new("second").with("HF_TOKEN", "from-second")))
//!     .build();
//! let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! let found = rt.block_on(manager.get_with_source("HF_TOKEN")).unwrap().unwrap();
//! assert_eq!(found.provider, "first");
//! assert_eq!(found.value.expose(), "from-first");
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod manager;
mod memory;
pub mod metrics;
mod provider;
mod snapshot;

pub use async_trait::async_trait;
pub use error::{BoxError, ErrorKind, Location, ProviderError, SecretsError};
pub use manager::{
    CLOUD_WEBHOOK_SECRET, DEFAULT_CACHE_TTL, DEFAULT_NEGATIVE_CACHE_TTL, HF_TOKEN, ProviderHealth,
    REPLICATE_API_TOKEN, Resolved, SecretsManager, SecretsManagerBuilder,
};
pub use memory::MemoryProvider;
pub use provider::SecretProvider;
pub use secret_value::Secret;
pub use snapshot::{Snapshot, SnapshotPolicy};
pub use ttl_cache::{CacheStats, Clock, ManualClock, SystemClock};

#[cfg(test)]
mod tests;
