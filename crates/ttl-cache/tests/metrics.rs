//! A named cache exports its counters through the `metrics` facade; an unnamed one exports
//! nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use ttl_cache::{ManualClock, TtlCache, metrics as names};

/// The counters moved since the last call: `name{cache=..}` -> increment.
fn deltas(snapshotter: &Snapshotter) -> BTreeMap<String, u64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(n) if n > 0 => {
                let key = key.key();
                let labels: Vec<String> = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                Some((format!("{}{{{}}}", key.name(), labels.join(",")), n))
            }
            _ => None,
        })
        .collect()
}

fn counter(name: &str) -> String {
    format!("{name}{{cache=users}}")
}

#[test]
fn counters_follow_hits_misses_inserts_evictions_expirations_and_loads() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let clock = Arc::new(ManualClock::new());
        let cache: TtlCache<String, u32> = TtlCache::builder()
            .max_size(2)
            .default_ttl(Duration::from_secs(10))
            .clock(clock.clone())
            .metrics("users")
            .build();

        cache.insert("a".into(), 1);
        assert_eq!(cache.get("a"), Some(1));
        assert_eq!(cache.get("zz"), None);
        assert_eq!(
            deltas(&snapshotter),
            BTreeMap::from([
                (counter(names::INSERTS), 1),
                (counter(names::HITS), 1),
                (counter(names::MISSES), 1),
            ])
        );

        // A third key in a cache of two evicts one live entry.
        cache.insert("b".into(), 2);
        cache.insert("c".into(), 3);
        let moved = deltas(&snapshotter);
        assert_eq!(moved.get(&counter(names::INSERTS)), Some(&2));
        assert_eq!(moved.get(&counter(names::EVICTIONS)), Some(&1));

        // Expired: the lookup misses and removes it.
        clock.advance(Duration::from_secs(11));
        assert_eq!(cache.get("c"), None);
        let moved = deltas(&snapshotter);
        assert_eq!(moved.get(&counter(names::MISSES)), Some(&1));
        assert_eq!(moved.get(&counter(names::EXPIRATIONS)), Some(&1));
        // The explicit sweep counts the rest.
        assert_eq!(cache.cleanup(), 1);
        assert_eq!(
            deltas(&snapshotter),
            BTreeMap::from([(counter(names::EXPIRATIONS), 1)])
        );

        // Loads: one that stores, one that fails.
        assert_eq!(cache.get_or_insert_with("d".into(), || 4), 4);
        assert!(
            cache
                .try_get_or_insert_with("e".into(), || Err::<u32, _>("refused"))
                .is_err()
        );
        let moved = deltas(&snapshotter);
        assert_eq!(moved.get(&counter(names::LOADS)), Some(&2));
        assert_eq!(moved.get(&counter(names::LOAD_FAILURES)), Some(&1));
        assert_eq!(moved.get(&counter(names::MISSES)), Some(&2));
        assert_eq!(moved.get(&counter(names::INSERTS)), Some(&1));

        // The totals agree with the cache's own statistics.
        let stats = cache.stats();
        assert_eq!(
            (stats.hits, stats.misses, stats.evictions, stats.loads),
            (1, 4, 1, 2)
        );
    });
}

#[test]
fn an_unnamed_cache_exports_nothing() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let cache: TtlCache<String, u32> = TtlCache::new(2);
        cache.insert("a".into(), 1);
        cache.get("a");
        cache.get("b");
        assert!(cache.stats().hits == 1);
    });
    assert_eq!(deltas(&snapshotter), BTreeMap::new());
}
