//! Semantics with a manual clock: expiry, capacity and eviction order, statistics, loaders.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::*;

const SECOND: Duration = Duration::from_secs(1);

fn cache(max_size: usize) -> (TtlCache<u32, u32>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let cache = TtlCache::builder()
        .max_size(max_size)
        .default_ttl(10 * SECOND)
        .clock(clock.clone())
        .build();
    (cache, clock)
}

#[test]
fn entries_live_until_their_ttl_and_never_after() {
    let (c, clock) = cache(10);
    c.insert(1, 10);
    c.insert_with_ttl(2, 20, 2 * SECOND);
    clock.advance(SECOND);
    assert_eq!((c.get(&1), c.get(&2)), (Some(10), Some(20)));
    assert_eq!(c.ttl_remaining(&2), Some(SECOND));
    clock.advance(SECOND);
    assert_eq!(c.get(&2), None, "expired exactly at its TTL");
    assert!(!c.contains_key(&2));
    clock.advance(8 * SECOND - Duration::from_nanos(1));
    assert_eq!(c.get(&1), Some(10));
    clock.advance(Duration::from_nanos(1));
    assert_eq!(c.get(&1), None);
    assert!(c.is_empty(), "expired entries found by get are removed");
}

#[test]
fn a_zero_ttl_stores_nothing_and_drops_the_old_value() {
    let (c, _) = cache(10);
    c.insert(1, 10);
    c.insert_with_ttl(1, 11, Duration::ZERO);
    assert_eq!(c.get(&1), None);
    c.insert_with_ttl(2, 20, Duration::ZERO);
    assert!(c.is_empty());
    let zero: TtlCache<u32, u32> = TtlCache::builder().default_ttl(Duration::ZERO).build();
    zero.insert(1, 1);
    assert!(zero.is_empty());
}

#[test]
fn at_capacity_an_unused_entry_goes_before_a_used_one() {
    let (c, _) = cache(3);
    for k in 1..=3 {
        c.insert(k, k);
    }
    assert_eq!(c.get(&1), Some(1)); // 1 is marked used; 2 and 3 are not, and 3 was written last
    c.insert(4, 4);
    assert_eq!(c.len(), 3);
    assert_eq!(c.get(&2), None);
    assert!(c.contains_key(&1) && c.contains_key(&3) && c.contains_key(&4));
    assert_eq!(c.stats().evictions, 1);
}

#[test]
fn at_capacity_expired_entries_go_before_live_ones() {
    let (c, clock) = cache(3);
    c.insert(1, 1);
    c.insert_with_ttl(2, 2, 5 * SECOND);
    c.insert(3, 3);
    c.get(&2);
    c.get(&2); // 2 is the most recently used, but it will be the only expired entry
    clock.advance(6 * SECOND);
    c.insert(4, 4);
    assert!(c.contains_key(&1) && c.contains_key(&3) && c.contains_key(&4));
    let s = c.stats();
    assert_eq!((s.evictions, s.expirations), (0, 1));

    // The same with default-TTL entries: the expired one goes, although it was read last.
    let (c, clock) = cache(2);
    c.insert(1, 1);
    clock.advance(5 * SECOND);
    c.insert(2, 2);
    c.get(&2);
    c.get(&1);
    clock.advance(5 * SECOND); // 1 expires now; 2 is live
    c.insert(3, 3);
    assert!(c.contains_key(&2) && c.contains_key(&3));
}

#[test]
fn replacing_a_key_never_evicts_another() {
    let (c, _) = cache(2);
    c.insert(1, 1);
    c.insert(2, 2);
    for v in 0..10 {
        c.insert(1, v);
        c.insert_with_ttl(2, v, SECOND);
    }
    assert_eq!((c.get(&1), c.get(&2), c.len()), (Some(9), Some(9), 2));
    assert_eq!(c.stats().evictions, 0);
}

#[test]
fn sweeps_run_once_per_cleanup_interval_and_on_demand() {
    let clock = Arc::new(ManualClock::new());
    let c: TtlCache<u32, u32> = TtlCache::builder()
        .max_size(100)
        .default_ttl(SECOND)
        .cleanup_interval(10 * SECOND)
        .clock(clock.clone())
        .build();
    for k in 0..10 {
        c.insert(k, k);
    }
    clock.advance(2 * SECOND);
    assert_eq!(c.stats().expired_count, 10);
    c.insert(100, 0); // the first insert's sweep was at t=0; the next is due at t=10
    assert_eq!(c.len(), 11);
    clock.advance(10 * SECOND);
    c.insert(101, 0);
    assert_eq!(c.len(), 1, "the due sweep removed every expired entry");
    c.insert_with_ttl(102, 0, SECOND);
    clock.advance(2 * SECOND);
    assert_eq!(c.cleanup(), 2);
    assert!(c.is_empty());
}

#[test]
fn stats_count_what_happened() {
    let (c, clock) = cache(2);
    c.insert(1, 1);
    c.get(&1);
    c.get(&9);
    c.insert(2, 2);
    c.insert(3, 3); // evicts 1
    clock.advance(20 * SECOND);
    c.get(&2); // expired
    let s = c.stats();
    assert_eq!(
        (s.size, s.max_size, s.expired_count, s.default_ttl),
        (1, 2, 1, 10 * SECOND)
    );
    assert_eq!(
        (s.hits, s.misses, s.inserts, s.evictions, s.expirations),
        (1, 2, 3, 1, 1)
    );
    assert!((s.hit_rate() - 1.0 / 3.0).abs() < 1e-9);
}

#[test]
fn remove_clear_and_prefix_invalidation() {
    let c: TtlCache<String, u32> = TtlCache::new(100);
    for k in ["user:1", "user:2", "team:1", "user"] {
        c.insert(k.to_owned(), 1);
    }
    assert!(c.remove("team:1"));
    assert!(!c.remove("team:1"));
    assert_eq!(c.invalidate_prefix("user:"), 2);
    assert_eq!(c.get("user"), Some(1));
    assert_eq!(c.remove_if(|k| k.len() == 4), 1);
    c.insert("a".to_owned(), 1);
    assert_eq!(c.clear(), 1);
    assert!(c.is_empty());
}

#[test]
fn loaders_run_once_and_errors_are_not_cached() {
    let (c, _) = cache(10);
    let calls = AtomicUsize::new(0);
    let load = || {
        calls.fetch_add(1, Ordering::SeqCst);
        7
    };
    assert_eq!(c.get_or_insert_with(1, load), 7);
    assert_eq!(c.get_or_insert_with(1, || unreachable!()), 7);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let err: Result<u32, &str> = c.try_get_or_insert_with(2, || Err("backend down"));
    assert_eq!(err, Err("backend down"));
    assert!(!c.contains_key(&2));
    assert_eq!(c.try_get_or_insert_with(2, || Ok::<_, &str>(8)), Ok(8));
    let s = c.stats();
    assert_eq!((s.loads, s.load_failures), (3, 1));
}

#[test]
fn a_panicking_loader_caches_nothing_and_poisons_nothing() {
    let (c, _) = cache(10);
    let c = Arc::new(c);
    let c2 = Arc::clone(&c);
    let result =
        std::thread::spawn(move || c2.get_or_insert_with(1, || panic!("loader failed"))).join();
    assert!(result.is_err());
    assert!(!c.contains_key(&1));
    assert_eq!(c.get_or_insert_with(1, || 5), 5);
    c.insert(2, 2);
    assert_eq!(c.get(&2), Some(2));
    assert_eq!(c.stats().load_failures, 1);
}

#[test]
fn negative_results_live_for_the_negative_ttl() {
    let clock = Arc::new(ManualClock::new());
    let c: TtlCache<u32, Option<u32>> = TtlCache::builder()
        .default_ttl(100 * SECOND)
        .negative_ttl(5 * SECOND)
        .clock(clock.clone())
        .build();
    assert_eq!(c.get_or_insert_with(1, || None), None);
    assert_eq!(c.get_or_insert_with(2, || Some(2)), Some(2));
    assert_eq!(c.ttl_remaining(&1), Some(5 * SECOND));
    clock.advance(5 * SECOND);
    assert_eq!(c.get(&1), None, "the negative entry expired");
    assert_eq!(c.get_or_insert_with(1, || Some(1)), Some(1));
    assert_eq!(c.get(&2), Some(Some(2)));
}

#[test]
fn a_removal_during_a_load_keeps_the_stale_result_out() {
    let (c, _) = cache(10);
    let value = c.get_or_insert_with(1, || {
        // Someone invalidates the key while the value is being computed.
        assert!(!c.remove(&1));
        42
    });
    assert_eq!(value, 42);
    assert!(!c.contains_key(&1));
    let value = c.get_or_insert_with(2, || {
        c.clear();
        43
    });
    assert_eq!(value, 43);
    assert!(c.is_empty());
}

#[test]
fn large_caches_are_sharded_and_bounded() {
    let c: TtlCache<u64, u64> = TtlCache::builder().max_size(10_000).build();
    for k in 0..50_000 {
        c.insert(k, k);
    }
    assert_eq!(c.len(), 10_000);
    let small: TtlCache<u64, u64> = TtlCache::builder().max_size(1000).build();
    assert!(format!("{small:?}").contains("shards: 1"));
    let none: TtlCache<u64, u64> = TtlCache::new(0);
    none.insert(1, 1);
    assert!(none.is_empty());
}

#[test]
fn for_each_sees_live_entries() {
    let (c, clock) = cache(10);
    c.insert(1, 1);
    c.insert_with_ttl(2, 2, SECOND);
    clock.advance(SECOND);
    let mut seen = Vec::new();
    c.for_each(|k, v| seen.push((*k, *v)));
    assert_eq!(seen, [(1, 1)]);
}

#[test]
fn the_system_clock_converts_ttls_both_ways() {
    let c: TtlCache<u32, u32> = TtlCache::new(10);
    c.insert_with_ttl(1, 1, Duration::from_secs(3600));
    c.insert(2, 2);
    let left = c.ttl_remaining(&1).unwrap();
    assert!(
        left <= Duration::from_secs(3600) && left > Duration::from_secs(3590),
        "{left:?}"
    );
    let left = c.ttl_remaining(&2).unwrap();
    assert!(
        left <= DEFAULT_TTL && left > DEFAULT_TTL - Duration::from_secs(10),
        "{left:?}"
    );
    let a = SystemClock.now();
    let b = SystemClock.now();
    assert!(b >= a);
}

#[cfg(feature = "macros")]
#[test]
fn cached_works_inside_this_crate() {
    // The expansion names `::ttl_cache`, which `extern crate self` makes valid here.
    #[crate::cached(ttl = 5)]
    fn tripled(x: u32) -> u32 {
        x * 3
    }
    assert_eq!(tripled(2), 6);
    assert_eq!(tripled_cache().get(&(2,)), Some(6));
    assert_eq!(tripled_cache().default_ttl(), 5 * SECOND);
}

#[cfg(feature = "async")]
#[test]
fn a_capped_load_lives_for_the_shorter_ttl() {
    let (cache, clock) = cache(10);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let load = |v: u32, cap: Option<Duration>| async move { Ok::<_, ()>((v, cap)) };
    rt.block_on(async {
        // A cap shorter than the default TTL (10 s here) wins.
        let v = cache
            .try_get_or_insert_with_capped_async(1, load(10, Some(Duration::from_secs(5))))
            .await;
        assert_eq!(v, Ok(10));
        // A cap longer than the default TTL does not extend it.
        cache
            .try_get_or_insert_with_capped_async(2, load(20, Some(Duration::from_secs(600))))
            .await
            .unwrap();
        // No cap: the default TTL.
        cache
            .try_get_or_insert_with_capped_async(3, load(30, None))
            .await
            .unwrap();
        // A zero cap returns the value and stores nothing.
        let v = cache
            .try_get_or_insert_with_capped_async(4, load(40, Some(Duration::ZERO)))
            .await;
        assert_eq!((v, cache.get(&4)), (Ok(40), None));
    });
    clock.advance(5 * SECOND);
    assert_eq!(cache.get(&1), None);
    assert_eq!((cache.get(&2), cache.get(&3)), (Some(20), Some(30)));
    clock.advance(5 * SECOND);
    assert_eq!((cache.get(&2), cache.get(&3)), (None, None));
}

#[test]
fn get_hit_counts_only_hits_and_leaves_misses_to_the_loader() {
    let (c, clock) = cache(10);
    c.insert(1, 10);
    assert_eq!(c.get_hit(&1), Some(10));
    assert_eq!(c.get_hit(&2), None);
    let stats = c.stats();
    assert_eq!((stats.hits, stats.misses), (1, 0));
    // The loader that follows a miss counts it, once.
    assert_eq!(
        c.get_hit(&2)
            .unwrap_or_else(|| c.get_or_insert_with(2, || 20)),
        20
    );
    assert_eq!(
        (c.stats().hits, c.stats().misses, c.stats().loads),
        (1, 1, 1)
    );
    clock.advance(10 * SECOND);
    assert_eq!(c.get_hit(&1), None, "an expired value is not returned");
    assert_eq!(c.stats().expirations, 0, "and is left for the next step");
    assert_eq!(c.get(&1), None);
    assert_eq!(c.stats().expirations, 1);
}
