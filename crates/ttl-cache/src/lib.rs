//! A concurrent TTL cache with CLOCK (second-chance) eviction, single-flight loaders,
//! statistics, prefix invalidation and a [`cached`] attribute macro.
//!
//! ```
//! use std::time::Duration;
//! use ttl_cache::TtlCache;
//!
//! let cache: TtlCache<String, u64> = TtlCache::builder()
//!     .max_size(10_000)
//!     .default_ttl(Duration::from_secs(300))
//!     .build();
//! cache.insert("user:1".to_owned(), 42);
//! assert_eq!(cache.get("user:1"), Some(42));
//! // Concurrent misses on one key run the loader once.
//! assert_eq!(cache.get_or_insert_with("user:2".to_owned(), || 7), 7);
//! assert_eq!(cache.invalidate_prefix("user:"), 2);
//! let stats = cache.stats();
//! assert_eq!((stats.hits, stats.loads), (1, 1));
//! ```
//!
//! # Semantics
//!
//! - **Time** is monotonic and comes from a [`Clock`]: by default the CPU's time-stamp counter
//!   (through `quanta`); in tests a [`ManualClock`], so no test sleeps to wait for a TTL.
//! - **Expiry**: each entry has a time to live, the cache's default or its own
//!   ([`TtlCache::insert_with_ttl`]). An expired entry is never returned. A TTL of zero stores
//!   nothing (and removes the key's previous value).
//! - **Capacity**: the number of entries never exceeds `max_size`. When a new key needs room,
//!   an expired entry is removed if there is one; otherwise CLOCK (second chance), an
//!   approximation of least-recently-used, picks the victim: a [`get`](TtlCache::get) marks
//!   an entry as used, the clock hand clears marks as it passes and evicts the first unmarked
//!   entry. The entry read or written last is never the next victim. Replacing an existing
//!   key never evicts another one. (CLOCK instead of an exact LRU list keeps a hit from
//!   relinking list nodes spread over memory.)
//! - **Shards**: the cache is split into shards, each with its own lock, eviction order and
//!   share of `max_size`; eviction picks within the shard of the new key. Caches under 1024
//!   entries have a single shard, so the rules above hold over the whole cache; for larger
//!   caches they hold per shard, as in most concurrent caches.
//!   [`Builder::shards`] sets the count.
//! - **Cleanup** is lazy: an expired entry is removed when it is looked up, when room is
//!   needed, and by a sweep of the shard that an insert runs once per `cleanup_interval`.
//!   No background thread is needed; [`TtlCache::cleanup`] sweeps on demand and, with the
//!   `tokio-cleanup` feature, [`spawn_cleanup`] runs it periodically.
//! - **Single flight**: concurrent misses on one key run the loader once
//!   ([`get_or_insert_with`](TtlCache::get_or_insert_with) and friends); the others wait for
//!   its value, blocking only on that key (sync) or awaiting without blocking a thread
//!   (async). A loader that fails, panics or is cancelled stores nothing and poisons nothing;
//!   waiting callers then retry. A key removed while it loads does not store the load's
//!   result.
//! - **Negative caching**: for `Option` values, [`Builder::negative_ttl`] keeps a loader's
//!   `None` for a shorter time.
//! - **Statistics** ([`TtlCache::stats`]) are counted per shard under its lock, so the read
//!   path has no extra atomic operations.
//! - **Prefix invalidation** ([`TtlCache::invalidate_prefix`], or [`TtlCache::remove_if`] for
//!   any predicate) removes matching entries before it returns (a scan of the cache).
//! - **`#[cached]`** ([`cached`]) gives a function its own cache keyed by its typed arguments,
//!   whose values live [`CACHED_DEFAULT_TTL`] (60 s) unless `ttl` says otherwise; the
//!   generated `NAME_cache()` returns that cache, for invalidation and statistics.
//!
//! Values are returned by clone: store an `Arc` for large values.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `macros` | yes | the [`cached`] attribute macro |
//! | `async` | no | [`TtlCache::get_or_insert_with_async`], [`TtlCache::try_get_or_insert_with_async`] and `#[cached]` on `async fn`; depends on tokio's `sync` module (no runtime) |
//! | `tokio-cleanup` | no | [`spawn_cleanup`]: a tokio task that sweeps expired entries |
//! | `metrics` | no | [`Builder::metrics`]: a named cache's counters through the [`metrics`](https://docs.rs/metrics) facade (names in the `metrics` module) |
//!
//! Without `async` the crate does not depend on tokio at all.
//!

#![cfg_attr(docsrs, feature(doc_cfg))]
// Feature-gated items above link to themselves when their feature is on (as on docs.rs) and
// to the features table otherwise, so the docs build without broken links in every feature set.
// (The empty doc line above makes these link definitions start a paragraph of their own.)
#![cfg_attr(
    not(feature = "macros"),
    doc = "[`cached`]: #features",
    doc = "[`CACHED_DEFAULT_TTL`]: #features"
)]
#![cfg_attr(
    not(feature = "async"),
    doc = "[`TtlCache::get_or_insert_with_async`]: #features",
    doc = "[`TtlCache::try_get_or_insert_with_async`]: #features"
)]
#![cfg_attr(not(feature = "tokio-cleanup"), doc = "[`spawn_cleanup`]: #features")]
#![cfg_attr(not(feature = "metrics"), doc = "[`Builder::metrics`]: #features")]

// `#[cached]` expands to `::ttl_cache::...`; this makes that path work inside this crate too
// (its unit tests); the library itself does not use the macro, hence the lint.
#[allow(unused_extern_crates)]
extern crate self as ttl_cache;

mod cache;
mod clock;
mod flight;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
mod shard;
mod stats;

pub use cache::{Builder, DEFAULT_CLEANUP_INTERVAL, DEFAULT_MAX_SIZE, DEFAULT_TTL, TtlCache};
pub use clock::{Clock, ManualClock, SystemClock};
pub use stats::CacheStats;

#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use ttl_cache_macros::cached;

/// How long a [`cached`] function without a `ttl` keeps its values: 60 s, the default of the
/// original Python `@cached` decorator. (A cache built with [`TtlCache::builder`] defaults to
/// [`DEFAULT_TTL`], 300 s.)
///
/// ```
/// #[ttl_cache::cached]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// assert_eq!(square(3), 9);
/// assert_eq!(square_cache().default_ttl(), ttl_cache::CACHED_DEFAULT_TTL);
/// ```
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub const CACHED_DEFAULT_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// Support for code generated by `#[cached]`; not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use std::sync::LazyLock;
}

/// Spawns a tokio task that calls [`TtlCache::cleanup`] every `interval` for as long as the
/// cache is alive (it holds only a weak reference).
#[cfg(feature = "tokio-cleanup")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio-cleanup")))]
pub fn spawn_cleanup<K, V, S>(
    cache: &std::sync::Arc<TtlCache<K, V, S>>,
    interval: std::time::Duration,
) -> tokio::task::JoinHandle<()>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: std::hash::BuildHasher + Send + Sync + 'static,
{
    let weak = std::sync::Arc::downgrade(cache);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            match weak.upgrade() {
                Some(cache) => {
                    cache.cleanup();
                }
                None => break,
            }
        }
    })
}

// The README's example is compiled and run with the doctests (it uses `#[cached]`).
#[cfg(all(doctest, feature = "macros"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod tests;
