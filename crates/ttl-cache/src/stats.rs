//! [`CacheStats`].

use std::time::Duration;

/// A snapshot of a cache's sizes and counters (counters since the cache was built).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries present, including expired ones not yet removed.
    pub size: usize,
    /// The size bound.
    pub max_size: usize,
    /// Entries present but expired (they are never returned, and go first when room is needed).
    pub expired_count: usize,
    /// The default time to live.
    pub default_ttl: Duration,
    /// Lookups that found a live value.
    pub hits: u64,
    /// Lookups that found nothing or an expired value.
    pub misses: u64,
    /// Values stored (new keys and replacements, including loader results).
    pub inserts: u64,
    /// Live entries removed to make room (chosen by CLOCK).
    pub evictions: u64,
    /// Expired entries removed (on access, to make room, or by a sweep).
    pub expirations: u64,
    /// Loader runs.
    pub loads: u64,
    /// Loader runs that returned an error, panicked or were cancelled.
    pub load_failures: u64,
}

impl CacheStats {
    /// Hits over lookups; 0 when there were none.
    pub fn hit_rate(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 {
            0.0
        } else {
            self.hits as f64 / lookups as f64
        }
    }
}
