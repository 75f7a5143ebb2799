//! Export of a named cache's counters through the [`metrics`] facade (feature `metrics`).
//!
//! Every counter carries one label, `cache`, the name given to
//! [`Builder::metrics`](crate::Builder::metrics). Caches without a name export nothing and pay nothing but a
//! branch. The counters move as the matching fields of [`CacheStats`](crate::CacheStats) do.

use metrics::{Key, Label, Level, Metadata, SharedString};

use crate::shard::ShardStats;

/// `cache_hits_total{cache}`: lookups that found a live value.
pub const HITS: &str = "cache_hits_total";
/// `cache_misses_total{cache}`: lookups that found nothing or an expired value.
pub const MISSES: &str = "cache_misses_total";
/// `cache_inserts_total{cache}`: values stored (new keys, replacements, loader results).
pub const INSERTS: &str = "cache_inserts_total";
/// `cache_evictions_total{cache}`: live entries removed to make room.
pub const EVICTIONS: &str = "cache_evictions_total";
/// `cache_expirations_total{cache}`: expired entries removed.
pub const EXPIRATIONS: &str = "cache_expirations_total";
/// `cache_loads_total{cache}`: loader runs.
pub const LOADS: &str = "cache_loads_total";
/// `cache_load_failures_total{cache}`: loader runs that failed, panicked or were cancelled.
pub const LOAD_FAILURES: &str = "cache_load_failures_total";
/// The label naming the cache.
pub const CACHE_LABEL: &str = "cache";

/// Registers the descriptions of the counters with the installed recorder (optional; for
/// exporters that print help texts).
pub fn describe() {
    metrics::describe_counter!(HITS, "Cache lookups that found a live value");
    metrics::describe_counter!(
        MISSES,
        "Cache lookups that found nothing or an expired value"
    );
    metrics::describe_counter!(INSERTS, "Values stored in the cache");
    metrics::describe_counter!(EVICTIONS, "Live cache entries removed to make room");
    metrics::describe_counter!(EXPIRATIONS, "Expired cache entries removed");
    metrics::describe_counter!(LOADS, "Cache loader runs");
    metrics::describe_counter!(
        LOAD_FAILURES,
        "Cache loader runs that failed or were cancelled"
    );
}

const METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The counters' keys of one named cache, built once, so that counting allocates nothing.
#[derive(Debug, Clone)]
pub(crate) struct CacheMetrics {
    hits: Key,
    misses: Key,
    inserts: Key,
    evictions: Key,
    expirations: Key,
    loads: Key,
    load_failures: Key,
}

impl CacheMetrics {
    pub(crate) fn new(name: SharedString) -> Self {
        let key = |metric: &'static str| {
            Key::from_parts(metric, vec![Label::new(CACHE_LABEL, name.clone())])
        };
        Self {
            hits: key(HITS),
            misses: key(MISSES),
            inserts: key(INSERTS),
            evictions: key(EVICTIONS),
            expirations: key(EXPIRATIONS),
            loads: key(LOADS),
            load_failures: key(LOAD_FAILURES),
        }
    }

    fn add(key: &Key, n: u64) {
        if n > 0 {
            metrics::with_recorder(|recorder| {
                recorder.register_counter(key, &METADATA).increment(n)
            });
        }
    }

    /// Exports what one locked operation on a shard counted (called after the lock is
    /// released).
    pub(crate) fn record(&self, before: ShardStats, after: ShardStats) {
        Self::add(&self.hits, after.hits.wrapping_sub(before.hits));
        Self::add(&self.misses, after.misses.wrapping_sub(before.misses));
        Self::add(&self.inserts, after.inserts.wrapping_sub(before.inserts));
        Self::add(
            &self.evictions,
            after.evictions.wrapping_sub(before.evictions),
        );
        Self::add(
            &self.expirations,
            after.expirations.wrapping_sub(before.expirations),
        );
    }

    pub(crate) fn load(&self) {
        Self::add(&self.loads, 1);
    }

    pub(crate) fn load_failure(&self) {
        Self::add(&self.load_failures, 1);
    }
}
