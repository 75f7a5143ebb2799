//! [`TtlCache`] and its [`Builder`].

use std::borrow::Borrow;
use std::fmt;
#[cfg(feature = "async")]
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hashbrown::DefaultHashBuilder;

use crate::clock::{Clock, ClockSource};
use crate::flight::{Flight, FlightState};
#[cfg(feature = "metrics")]
use crate::metrics::CacheMetrics;
use crate::shard::{InsertTime, Shard, TtlKind};
use crate::stats::CacheStats;

/// Default time to live of an entry.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// Default maximum number of entries.
pub const DEFAULT_MAX_SIZE: usize = 1000;
/// Default interval between amortised sweeps of expired entries.
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// Caches smaller than this use a single shard, so their eviction order spans the whole cache.
const SINGLE_SHARD_BELOW: usize = 1024;
/// Smallest number of entries per shard when sharding.
const MIN_SHARD_CAPACITY: usize = 256;

/// Keeps each shard's lock on its own cache lines.
#[repr(align(128))]
struct Padded<T>(T);

type Shards<K, V> = Box<[Padded<Mutex<Shard<K, V>>>]>;

/// How to recognise a negative loader result (`None`) and how long to keep it.
struct Negative<V, T> {
    ttl: T,
    is_negative: fn(&V) -> bool,
}

/// A concurrent cache with per-entry time to live, a size bound with CLOCK (second-chance)
/// eviction, single-flight loaders and statistics. See the [crate documentation](crate) for the
/// semantics.
pub struct TtlCache<K, V, S = DefaultHashBuilder> {
    shards: Shards<K, V>,
    shard_mask: usize,
    hasher: S,
    clock: ClockSource,
    default_ttl: Duration,
    /// The default TTL in clock ticks.
    default_ttl_ticks: u64,
    max_size: usize,
    cleanup_interval_ticks: u64,
    negative: Option<Negative<V, u64>>,
    loads: AtomicU64,
    load_failures: AtomicU64,
    #[cfg(feature = "metrics")]
    metrics: Option<CacheMetrics>,
}

/// A locked shard. With the `metrics` feature and a named cache, what the holder counted is
/// exported when the lock is released (after releasing it, so no recorder runs under it).
#[cfg(feature = "metrics")]
struct ShardGuard<'a, K, V> {
    guard: Option<MutexGuard<'a, Shard<K, V>>>,
    metered: Option<(&'a CacheMetrics, crate::shard::ShardStats)>,
}

#[cfg(feature = "metrics")]
impl<'a, K, V> ShardGuard<'a, K, V> {
    fn new(guard: MutexGuard<'a, Shard<K, V>>, metrics: Option<&'a CacheMetrics>) -> Self {
        let metered = metrics.map(|m| (m, guard.stats));
        Self {
            guard: Some(guard),
            metered,
        }
    }
}

#[cfg(feature = "metrics")]
impl<K, V> std::ops::Deref for ShardGuard<'_, K, V> {
    type Target = Shard<K, V>;

    fn deref(&self) -> &Shard<K, V> {
        match &self.guard {
            Some(guard) => guard,
            None => unreachable!("the guard is only taken when dropped"),
        }
    }
}

#[cfg(feature = "metrics")]
impl<K, V> std::ops::DerefMut for ShardGuard<'_, K, V> {
    fn deref_mut(&mut self) -> &mut Shard<K, V> {
        match &mut self.guard {
            Some(guard) => guard,
            None => unreachable!("the guard is only taken when dropped"),
        }
    }
}

#[cfg(feature = "metrics")]
impl<K, V> Drop for ShardGuard<'_, K, V> {
    fn drop(&mut self) {
        let (Some(guard), Some((metrics, before))) = (self.guard.take(), self.metered.take())
        else {
            return;
        };
        let after = guard.stats;
        drop(guard);
        metrics.record(before, after);
    }
}

#[cfg(not(feature = "metrics"))]
type ShardGuard<'a, K, V> = MutexGuard<'a, Shard<K, V>>;

impl<K, V, S> fmt::Debug for TtlCache<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TtlCache")
            .field("max_size", &self.max_size)
            .field("default_ttl", &self.default_ttl)
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

/// Configures a [`TtlCache`].
pub struct Builder<K, V, S = DefaultHashBuilder> {
    default_ttl: Duration,
    max_size: usize,
    cleanup_interval: Duration,
    negative: Option<Negative<V, Duration>>,
    clock: ClockSource,
    shards: Option<usize>,
    hasher: S,
    #[cfg(feature = "metrics")]
    metrics: Option<metrics::SharedString>,
    _key: PhantomData<fn(K)>,
}

impl<K, V> Default for Builder<K, V> {
    fn default() -> Self {
        Self {
            default_ttl: DEFAULT_TTL,
            max_size: DEFAULT_MAX_SIZE,
            cleanup_interval: DEFAULT_CLEANUP_INTERVAL,
            negative: None,
            clock: ClockSource::system(),
            shards: None,
            hasher: DefaultHashBuilder::default(),
            #[cfg(feature = "metrics")]
            metrics: None,
            _key: PhantomData,
        }
    }
}

impl<K, V, S> fmt::Debug for Builder<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("default_ttl", &self.default_ttl)
            .field("max_size", &self.max_size)
            .field("cleanup_interval", &self.cleanup_interval)
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

impl<K, V, S> Builder<K, V, S> {
    /// Time to live of entries inserted without one (default 300 s). Zero stores nothing.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// Maximum number of entries (default 1000).
    pub fn max_size(mut self, max_size: usize) -> Self {
        self.max_size = max_size;
        self
    }

    /// How often an insert also sweeps its shard of expired entries (default 60 s).
    pub fn cleanup_interval(mut self, interval: Duration) -> Self {
        self.cleanup_interval = interval;
        self
    }

    /// The clock (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = ClockSource::Custom(clock);
        self
    }

    /// Number of shards (rounded up to a power of two). By default caches under 1024 entries
    /// have one shard (eviction order over the whole cache) and larger ones about sixteen per
    /// CPU, at least 256 entries each.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards.max(1));
        self
    }

    /// The hasher of keys.
    pub fn hasher<S2>(self, hasher: S2) -> Builder<K, V, S2> {
        Builder {
            default_ttl: self.default_ttl,
            max_size: self.max_size,
            cleanup_interval: self.cleanup_interval,
            negative: self.negative,
            clock: self.clock,
            shards: self.shards,
            hasher,
            #[cfg(feature = "metrics")]
            metrics: self.metrics,
            _key: PhantomData,
        }
    }

    /// Exports this cache's counters through the `metrics` facade under the label
    /// `cache = name` (`cache_hits_total{cache="name"}`, ...; see [`crate::metrics`]). Keep
    /// the name fixed and short: it becomes a time series per counter in the recorder.
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn metrics(mut self, name: impl Into<metrics::SharedString>) -> Self {
        self.metrics = Some(name.into());
        self
    }

    /// Builds the cache.
    pub fn build(self) -> TtlCache<K, V, S> {
        let shard_count = self
            .shards
            .unwrap_or_else(|| default_shard_count(self.max_size))
            .next_power_of_two();
        let base = self.max_size / shard_count;
        let extra = self.max_size % shard_count;
        let shards = (0..shard_count)
            .map(|i| Padded(Mutex::new(Shard::new(base + usize::from(i < extra)))))
            .collect();
        TtlCache {
            shards,
            shard_mask: shard_count - 1,
            hasher: self.hasher,
            default_ttl: self.default_ttl,
            default_ttl_ticks: self.clock.ticks(self.default_ttl),
            max_size: self.max_size,
            cleanup_interval_ticks: self.clock.ticks(self.cleanup_interval),
            negative: self.negative.map(|n| Negative {
                ttl: self.clock.ticks(n.ttl),
                is_negative: n.is_negative,
            }),
            clock: self.clock,
            loads: AtomicU64::new(0),
            load_failures: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            metrics: self.metrics.map(CacheMetrics::new),
        }
    }
}

impl<K, T, S> Builder<K, Option<T>, S> {
    /// Keeps a loader's `None` for this (shorter) time instead of the default TTL, so a value
    /// that appears later is seen soon. Only loader results are affected.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative = Some(Negative {
            ttl,
            is_negative: Option::is_none,
        });
        self
    }
}

fn default_shard_count(max_size: usize) -> usize {
    if max_size < SINGLE_SHARD_BELOW {
        return 1;
    }
    let cpus = std::thread::available_parallelism().map_or(4, |n| n.get());
    // Many more shards than threads: Zipf-skewed traffic concentrates on a few shards.
    let wanted = (cpus * 16).next_power_of_two();
    let fitting = (max_size / MIN_SHARD_CAPACITY).max(1);
    // The largest power of two not above `fitting`.
    let fitting = 1 << (usize::BITS - 1 - fitting.leading_zeros());
    wanted.min(fitting)
}

impl<K, V> TtlCache<K, V> {
    /// A builder with the defaults (300 s TTL, 1000 entries, 60 s cleanup interval).
    pub fn builder() -> Builder<K, V> {
        Builder::default()
    }

    /// A cache with the default TTL and cleanup interval and this size bound.
    pub fn new(max_size: usize) -> Self {
        Self::builder().max_size(max_size).build()
    }
}

/// Whether this call runs the loader or waits for another caller's.
enum Role<K, V> {
    Leader(Arc<Flight<K, V>>),
    Follower(Arc<Flight<K, V>>),
}

impl<K, V, S> TtlCache<K, V, S>
where
    K: Hash + Eq,
    V: Clone,
    S: BuildHasher,
{
    #[inline]
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    #[inline]
    fn shard(&self, hash: u64) -> ShardGuard<'_, K, V> {
        // High bits pick the shard; the table uses the low bits and the top seven.
        let index = ((hash >> 32) as usize) & self.shard_mask;
        self.lock_shard(&self.shards[index])
    }

    #[inline]
    fn lock_shard<'a>(&'a self, shard: &'a Padded<Mutex<Shard<K, V>>>) -> ShardGuard<'a, K, V> {
        let guard = shard.0.lock().unwrap_or_else(PoisonError::into_inner);
        #[cfg(feature = "metrics")]
        let guard = ShardGuard::new(guard, self.metrics.as_ref());
        guard
    }

    fn expiry(&self, now: u64, ttl_ticks: u64) -> u64 {
        now.saturating_add(ttl_ticks)
    }

    /// The live value of a key. Counts a hit or a miss and refreshes the entry's recency.
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        self.shard(hash).get(hash, key, &self.clock).cloned()
    }

    /// The live value of a key, counting a hit; on a miss `None`, counting nothing. For the
    /// fast path of a lookup that goes on to a loading call on a miss (which counts the miss
    /// itself), with a borrowed key: `cache.get_hit(k).or_else(|| cache.get_or_insert_with(..))`.
    #[inline]
    pub fn get_hit<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let now = self.clock.now();
        self.shard(hash).get_hit(hash, key, now).cloned()
    }

    /// Inserts with the default TTL, replacing any value of the key.
    #[inline]
    pub fn insert(&self, key: K, value: V) {
        self.insert_ticks(key, value, self.default_ttl_ticks, TtlKind::Default);
    }

    /// Inserts with its own TTL. A zero TTL stores nothing and removes the key's old value.
    pub fn insert_with_ttl(&self, key: K, value: V, ttl: Duration) {
        let ticks = if ttl.is_zero() {
            0
        } else {
            self.clock.ticks(ttl).max(1)
        };
        self.insert_ticks(key, value, ticks, TtlKind::Custom);
    }

    fn insert_ticks(&self, key: K, value: V, ttl_ticks: u64, kind: TtlKind) {
        let hash = self.hash(&key);
        let mut shard = self.shard(hash);
        if ttl_ticks == 0 {
            shard.remove(hash, &key);
            return;
        }
        let now = self.clock.now();
        let kind = if ttl_ticks == self.default_ttl_ticks {
            TtlKind::Default
        } else {
            kind
        };
        let time = InsertTime {
            expires_at: self.expiry(now, ttl_ticks),
            kind,
            now,
            sweep_interval: self.cleanup_interval_ticks,
        };
        shard.insert(hash, key, value, time);
    }

    /// Removes a key; `true` when a value (live or expired) was present. A load of the key in
    /// progress will not store its result.
    pub fn remove<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let mut shard = self.shard(hash);
        if let Ok(flight) = shard.flights.find_entry(hash, |f| f.key.borrow() == key) {
            flight.get().mark_stale();
            flight.remove();
        }
        shard.remove(hash, key).is_some()
    }

    /// Removes every entry; returns how many there were. Loads in progress will not store.
    pub fn clear(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let mut shard = s.0.lock().unwrap_or_else(PoisonError::into_inner);
                for flight in shard.flights.drain() {
                    flight.mark_stale();
                }
                shard.clear()
            })
            .sum()
    }

    /// Removes every entry whose key matches `predicate` (a scan of the whole cache); returns
    /// how many. Loads in progress of matching keys will not store.
    pub fn remove_if(&self, mut predicate: impl FnMut(&K) -> bool) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let mut shard = s.0.lock().unwrap_or_else(PoisonError::into_inner);
                shard.flights.retain(|f| {
                    let doomed = predicate(&f.key);
                    if doomed {
                        f.mark_stale();
                    }
                    !doomed
                });
                shard.remove_matching(&mut predicate)
            })
            .sum()
    }

    /// Removes every entry whose key starts with `prefix`; returns how many. Unlike a lazy
    /// predicate, the entries are gone when this returns.
    pub fn invalidate_prefix(&self, prefix: &str) -> usize
    where
        K: Borrow<str>,
    {
        self.remove_if(|k| k.borrow().starts_with(prefix))
    }

    /// Entries present, including expired ones not yet removed (see
    /// [`CacheStats::expired_count`]).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.0.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Whether no entry is present.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a live value is present; counts nothing and leaves recency alone.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let now = self.clock.now();
        self.shard(hash).peek(hash, key, now).is_some()
    }

    /// Time until a live entry expires.
    pub fn ttl_remaining<Q>(&self, key: &Q) -> Option<Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let now = self.clock.now();
        self.shard(hash)
            .peek(hash, key, now)
            .map(|(_, expires_at)| self.clock.duration(expires_at - now))
    }

    /// Removes every expired entry now; returns how many. Inserts also do this for their
    /// shard once per cleanup interval, so calling it is optional.
    pub fn cleanup(&self) -> usize {
        let now = self.clock.now();
        self.shards
            .iter()
            .map(|s| self.lock_shard(s).sweep(now))
            .sum()
    }

    /// Counters and sizes. Takes each shard's lock briefly and scans for expired entries.
    pub fn stats(&self) -> CacheStats {
        let now = self.clock.now();
        let mut stats = CacheStats {
            max_size: self.max_size,
            default_ttl: self.default_ttl,
            loads: self.loads.load(Ordering::Relaxed),
            load_failures: self.load_failures.load(Ordering::Relaxed),
            ..CacheStats::default()
        };
        for s in self.shards.iter() {
            let shard = s.0.lock().unwrap_or_else(PoisonError::into_inner);
            stats.size += shard.len();
            stats.expired_count += shard.expired_count(now);
            let c = shard.stats;
            stats.hits += c.hits;
            stats.misses += c.misses;
            stats.inserts += c.inserts;
            stats.evictions += c.evictions;
            stats.expirations += c.expirations;
        }
        stats
    }

    /// The size bound.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// The default time to live.
    pub fn default_ttl(&self) -> Duration {
        self.default_ttl
    }

    /// Visits every live entry (in no particular order), one shard at a time.
    pub fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        let now = self.clock.now();
        for s in self.shards.iter() {
            let shard = s.0.lock().unwrap_or_else(PoisonError::into_inner);
            shard.for_each(|k, v, expires_at| {
                if expires_at > now {
                    f(k, v);
                }
            });
        }
    }
}

impl<K, V, S> TtlCache<K, V, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
{
    /// The cached value, or the loader's, stored with the default TTL. Concurrent misses on
    /// the same key run `init` once; the other callers wait for its value.
    pub fn get_or_insert_with(&self, key: K, init: impl FnOnce() -> V) -> V {
        match self.try_get_or_insert_with(key, || Ok::<V, std::convert::Infallible>(init())) {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }

    /// Like [`get_or_insert_with`](Self::get_or_insert_with) with a fallible loader. An error
    /// is returned to this caller and cached nowhere; callers waiting on this load retry.
    pub fn try_get_or_insert_with<E>(
        &self,
        key: K,
        init: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        let mut init = Some(init);
        loop {
            match self.join_or_lead(&key) {
                Ok(value) => return Ok(value),
                Err(Role::Follower(flight)) => {
                    if let Some(value) = flight.wait_blocking() {
                        return Ok(value);
                    }
                }
                Err(Role::Leader(flight)) => {
                    let guard = LeaderGuard::new(self, flight);
                    let Some(init) = init.take() else {
                        unreachable!("a caller leads at most once: it returns after leading")
                    };
                    return guard.complete(init());
                }
            }
        }
    }

    /// The cached value, or the future's, stored with the default TTL. Concurrent misses on
    /// the same key poll one future; the other callers await its value without blocking a
    /// thread. The future is dropped unpolled when another caller is already loading.
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub async fn get_or_insert_with_async(&self, key: K, init: impl Future<Output = V>) -> V {
        let init = async { Ok::<V, std::convert::Infallible>(init.await) };
        match self.try_get_or_insert_with_async(key, init).await {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }

    /// Like [`get_or_insert_with_async`](Self::get_or_insert_with_async) with a fallible
    /// future. If the calling future is dropped while loading, waiters retry.
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub async fn try_get_or_insert_with_async<E>(
        &self,
        key: K,
        init: impl Future<Output = Result<V, E>>,
    ) -> Result<V, E> {
        let mut init = Some(init);
        loop {
            match self.join_or_lead(&key) {
                Ok(value) => return Ok(value),
                Err(Role::Follower(flight)) => {
                    if let Some(value) = flight.wait_async().await {
                        return Ok(value);
                    }
                }
                Err(Role::Leader(flight)) => {
                    let guard = LeaderGuard::new(self, flight);
                    let Some(init) = init.take() else {
                        unreachable!("a caller leads at most once: it returns after leading")
                    };
                    return guard.complete(init.await);
                }
            }
        }
    }

    /// Like [`try_get_or_insert_with_async`](Self::try_get_or_insert_with_async), where the
    /// future also says how long its value may be kept at most (`None`: the usual TTL). The
    /// value is stored for the shorter of that and the usual TTL; a zero cap stores nothing.
    /// For values that come from another cache with its own expiry, so the two never stack.
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub async fn try_get_or_insert_with_capped_async<E>(
        &self,
        key: K,
        init: impl Future<Output = Result<(V, Option<Duration>), E>>,
    ) -> Result<V, E> {
        let mut init = Some(init);
        loop {
            match self.join_or_lead(&key) {
                Ok(value) => return Ok(value),
                Err(Role::Follower(flight)) => {
                    if let Some(value) = flight.wait_async().await {
                        return Ok(value);
                    }
                }
                Err(Role::Leader(flight)) => {
                    let guard = LeaderGuard::new(self, flight);
                    let Some(init) = init.take() else {
                        unreachable!("a caller leads at most once: it returns after leading")
                    };
                    return match init.await {
                        Ok((value, cap)) => {
                            let cap = cap.map(|c| self.clock.ticks(c));
                            guard.complete_capped(Ok(value), cap)
                        }
                        Err(e) => guard.complete(Err(e)),
                    };
                }
            }
        }
    }

    /// A hit, or this caller's role in loading the key.
    fn join_or_lead(&self, key: &K) -> Result<V, Role<K, V>> {
        let hash = self.hash(key);
        let mut shard = self.shard(hash);
        if let Some(value) = shard.get(hash, key, &self.clock) {
            return Ok(value.clone());
        }
        if let Some(flight) = shard.flights.find(hash, |f| f.key == *key) {
            return Err(Role::Follower(Arc::clone(flight)));
        }
        let flight = Arc::new(Flight::new(key.clone(), hash));
        shard
            .flights
            .insert_unique(hash, Arc::clone(&flight), |f| f.hash);
        Err(Role::Leader(flight))
    }

    fn load_failed(&self) {
        self.load_failures.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.metrics {
            metrics.load_failure();
        }
    }

    fn ttl_for(&self, value: &V) -> u64 {
        match &self.negative {
            Some(n) if (n.is_negative)(value) => n.ttl,
            _ => self.default_ttl_ticks,
        }
    }
}

/// Ends a flight whatever happens to its leader: completed with a value, failed, panicked
/// or cancelled (dropped while awaiting).
struct LeaderGuard<'a, K, V, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
{
    cache: &'a TtlCache<K, V, S>,
    flight: Arc<Flight<K, V>>,
    finished: bool,
}

impl<'a, K, V, S> LeaderGuard<'a, K, V, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
{
    fn new(cache: &'a TtlCache<K, V, S>, flight: Arc<Flight<K, V>>) -> Self {
        cache.loads.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &cache.metrics {
            metrics.load();
        }
        Self {
            cache,
            flight,
            finished: false,
        }
    }

    /// Takes the flight out of its shard; stores `value` there unless the key was
    /// invalidated meanwhile.
    fn settle(&self, value: Option<&V>, cap_ticks: Option<u64>) {
        let cache = self.cache;
        let hash = self.flight.hash;
        let mut shard = cache.shard(hash);
        if let Ok(entry) = shard
            .flights
            .find_entry(hash, |f| Arc::ptr_eq(f, &self.flight))
        {
            entry.remove();
        }
        if let Some(value) = value
            && !self.flight.is_stale()
        {
            let ttl = cache.ttl_for(value).min(cap_ticks.unwrap_or(u64::MAX));
            if ttl > 0 {
                let now = cache.clock.now();
                let kind = if ttl == cache.default_ttl_ticks {
                    TtlKind::Default
                } else {
                    TtlKind::Custom
                };
                let time = InsertTime {
                    expires_at: cache.expiry(now, ttl),
                    kind,
                    now,
                    sweep_interval: cache.cleanup_interval_ticks,
                };
                shard.insert(hash, self.flight.key.clone(), value.clone(), time);
            }
        }
    }

    fn complete<E>(self, result: Result<V, E>) -> Result<V, E> {
        self.complete_capped(result, None)
    }

    /// Completes the flight; a stored value lives at most `cap_ticks`.
    fn complete_capped<E>(mut self, result: Result<V, E>, cap_ticks: Option<u64>) -> Result<V, E> {
        match &result {
            Ok(value) => {
                self.settle(Some(value), cap_ticks);
                self.flight.finish(FlightState::Done(value.clone()));
            }
            Err(_) => {
                self.cache.load_failed();
                self.settle(None, None);
                self.flight.finish(FlightState::Abandoned);
            }
        }
        self.finished = true;
        result
    }
}

impl<K, V, S> Drop for LeaderGuard<'_, K, V, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
{
    fn drop(&mut self) {
        if !self.finished {
            // The loader panicked or the loading future was dropped.
            self.cache.load_failed();
            self.settle(None, None);
            self.flight.finish(FlightState::Abandoned);
        }
    }
}
