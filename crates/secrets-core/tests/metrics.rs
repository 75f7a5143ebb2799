//! The manager and `Snapshot` export lookups, cache hits and misses, provider latencies and
//! errors, snapshot fetches and stale serves through the `metrics` facade; no label carries
//! a key name or a value.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use secrets_core::metrics as names;
use secrets_core::{
    ErrorKind, ManualClock, MemoryProvider, ProviderError, SecretsManager, Snapshot, SnapshotPolicy,
};

const KEY: &str = "KEYNAME_SENTINEL_7f3";
const VALUE: &str = "VALUE_SENTINEL_9c1";

/// What moved since the last call: counters as their increment, histograms as their number
/// of samples; keyed `name{label=value,...}` with labels sorted.
fn deltas(snapshotter: &Snapshotter) -> BTreeMap<String, u64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| {
            let n = match value {
                DebugValue::Counter(n) => n,
                DebugValue::Histogram(samples) => samples.len() as u64,
                DebugValue::Gauge(_) => return None,
            };
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            (n > 0).then(|| (format!("{}{{{}}}", key.name(), labels.join(",")), n))
        })
        .collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

#[test]
fn manager_counters_follow_lookups_hits_misses_errors_and_writes() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let mut seen = String::new();
    metrics::with_local_recorder(&recorder, || {
        let first = Arc::new(MemoryProvider::new("first"));
        let second = Arc::new(MemoryProvider::new("second").with(KEY, VALUE));
        let manager = SecretsManager::builder()
            .provider(first.clone())
            .provider(second.clone())
            .clock(Arc::new(ManualClock::new()))
            .build();
        let rt = rt();

        // A miss of the value cache walks the chain: not in `first`, found in `second`.
        rt.block_on(manager.get(KEY)).unwrap().unwrap();
        let moved = deltas(&snapshotter);
        seen.push_str(&format!("{moved:?}"));
        assert_eq!(moved["secrets_lookups_total{outcome=found}"], 1);
        assert_eq!(moved["cache_misses_total{cache=secrets}"], 1);
        assert_eq!(moved["cache_loads_total{cache=secrets}"], 1);
        assert_eq!(moved["cache_inserts_total{cache=secrets}"], 1);
        assert_eq!(
            moved["secrets_provider_lookups_total{outcome=not_found,provider=first}"],
            1
        );
        assert_eq!(
            moved["secrets_provider_lookups_total{outcome=found,provider=second}"],
            1
        );
        assert_eq!(
            moved["secrets_provider_latency_seconds{op=get,provider=first}"],
            1
        );
        assert_eq!(
            moved["secrets_provider_latency_seconds{op=get,provider=second}"],
            1
        );
        assert!(!moved.contains_key("cache_hits_total{cache=secrets}"));

        // Twice more: both hits, no provider asked.
        rt.block_on(manager.get(KEY)).unwrap().unwrap();
        rt.block_on(manager.get(KEY)).unwrap().unwrap();
        let moved = deltas(&snapshotter);
        seen.push_str(&format!("{moved:?}"));
        assert_eq!(
            moved,
            BTreeMap::from([
                ("cache_hits_total{cache=secrets}".to_owned(), 2),
                ("secrets_lookups_total{outcome=found}".to_owned(), 2),
            ])
        );

        // Nobody has it: a miss, remembered.
        assert!(rt.block_on(manager.get("OTHER")).unwrap().is_none());
        assert!(rt.block_on(manager.get("OTHER")).unwrap().is_none());
        let moved = deltas(&snapshotter);
        assert_eq!(moved["secrets_lookups_total{outcome=not_found}"], 2);
        assert_eq!(moved["cache_hits_total{cache=secrets}"], 1);
        assert_eq!(moved["cache_misses_total{cache=secrets}"], 1);

        // A failing provider: an error by kind; the lookup fails (the key may live there).
        second.set_failing(true);
        assert!(rt.block_on(manager.get("THIRD")).is_err());
        let moved = deltas(&snapshotter);
        seen.push_str(&format!("{moved:?}"));
        assert_eq!(moved["secrets_lookups_total{outcome=error}"], 1);
        assert_eq!(
            moved["secrets_provider_errors_total{kind=unavailable,op=get,provider=second}"],
            1
        );
        assert_eq!(
            moved["secrets_provider_lookups_total{outcome=error,provider=second}"],
            1
        );
        assert_eq!(moved["cache_load_failures_total{cache=secrets}"], 1);

        // An unavailable provider is skipped.
        second.set_failing(false);
        first.set_available(false);
        rt.block_on(manager.get("FOURTH")).unwrap();
        let moved = deltas(&snapshotter);
        assert_eq!(
            moved["secrets_provider_lookups_total{outcome=skipped,provider=first}"],
            1
        );

        // Writes and health checks have latencies; a failed write counts an error.
        rt.block_on(manager.set_in("second", KEY, VALUE)).unwrap();
        rt.block_on(manager.delete_in("second", KEY)).unwrap();
        second.set_failing(true);
        assert!(rt.block_on(manager.set_in("second", KEY, VALUE)).is_err());
        let health = rt.block_on(manager.health_report());
        assert_eq!(health.len(), 2);
        let moved = deltas(&snapshotter);
        seen.push_str(&format!("{moved:?}"));
        assert_eq!(
            moved["secrets_provider_latency_seconds{op=set,provider=second}"],
            2
        );
        assert_eq!(
            moved["secrets_provider_latency_seconds{op=delete,provider=second}"],
            1
        );
        assert_eq!(
            moved["secrets_provider_latency_seconds{op=health,provider=first}"],
            1
        );
        assert_eq!(
            moved["secrets_provider_errors_total{kind=unavailable,op=set,provider=second}"],
            1
        );
        assert_eq!(
            moved["secrets_provider_errors_total{kind=unavailable,op=health,provider=second}"],
            1
        );
    });
    // Key names and values are never labels.
    assert!(!seen.contains("SENTINEL"), "{seen}");
}

#[test]
fn snapshot_counts_fetches_and_stale_serves() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let clock = Arc::new(ManualClock::new());
        let snapshot = Snapshot::new("remote", SnapshotPolicy::default()).with_clock(clock.clone());
        let rt = rt();
        rt.block_on(async {
            snapshot
                .get(|| async { Ok::<_, ProviderError>(1) })
                .await
                .unwrap();
            snapshot
                .get(|| async { Ok::<_, ProviderError>(2) })
                .await
                .unwrap();
        });
        assert_eq!(
            deltas(&snapshotter),
            BTreeMap::from([
                (
                    "secrets_snapshot_fetch_seconds{provider=remote}".to_owned(),
                    1
                ),
                (
                    "secrets_snapshot_fetches_total{outcome=ok,provider=remote}".to_owned(),
                    1
                ),
            ])
        );
        clock.advance(Duration::from_secs(301));
        let down = || async {
            Err::<u32, _>(ProviderError::new("remote", ErrorKind::Unavailable, "down"))
        };
        assert_eq!(*rt.block_on(snapshot.get(down)).unwrap(), 1);
        let moved = deltas(&snapshotter);
        assert_eq!(
            moved["secrets_snapshot_fetches_total{outcome=error,provider=remote}"],
            1
        );
        assert_eq!(
            moved[&format!("{}{{provider=remote}}", names::SNAPSHOT_STALE_SERVED)],
            1
        );
    });
}
