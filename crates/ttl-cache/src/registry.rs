//! Named caches, so that groups of them can be cleared by name prefix. Caches made by
//! [`cached`](crate::cached) register themselves on first use under
//! `<key_prefix or module path>::<function name>`.
//!
//! ```
//! #[ttl_cache::cached(key_prefix = "pricing", ttl = 60)]
//! fn price(item: u32) -> u64 {
//!     u64::from(item) * 100
//! }
//!
//! assert_eq!(price(3), 300);
//! assert!(ttl_cache::registry::names().contains(&"pricing::price".to_owned()));
//! assert_eq!(ttl_cache::registry::clear_prefix("pricing"), 1);
//! assert!(price_cache().is_empty());
//! ```

use std::hash::{BuildHasher, Hash};
use std::sync::{Mutex, PoisonError};

use crate::TtlCache;

/// What the registry can do with a cache without knowing its types.
pub trait NamedCache: Send + Sync {
    /// Removes every entry; returns how many.
    fn clear_entries(&self) -> usize;
    /// Entries present.
    fn entry_count(&self) -> usize;
}

impl<K, V, S> NamedCache for TtlCache<K, V, S>
where
    K: Hash + Eq + Send + Sync,
    V: Clone + Send + Sync,
    S: BuildHasher + Send + Sync,
{
    fn clear_entries(&self) -> usize {
        self.clear()
    }

    fn entry_count(&self) -> usize {
        self.len()
    }
}

type Entries = Vec<(String, &'static dyn NamedCache)>;

static REGISTRY: Mutex<Entries> = Mutex::new(Vec::new());

/// Registers a cache under a name (names may repeat).
pub fn register(name: impl Into<String>, cache: &'static dyn NamedCache) {
    REGISTRY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((name.into(), cache));
}

/// Names of the registered caches.
pub fn names() -> Vec<String> {
    REGISTRY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(n, _)| n.clone())
        .collect()
}

/// Clears every registered cache whose name starts with `prefix`; returns the number of
/// entries removed.
pub fn clear_prefix(prefix: &str) -> usize {
    let matching: Vec<&'static dyn NamedCache> = REGISTRY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(_, c)| *c)
        .collect();
    matching.iter().map(|c| c.clear_entries()).sum()
}
