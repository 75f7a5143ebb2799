//! provider-config on PostgreSQL, in one process, interleaved round by round: cached reads
//! (`ConfigStore::get`, a cache hit), uncached reads (`get_uncached`: one query on a pooled
//! connection and JSON parsing), and cross-replica invalidation latency: two stores with
//! caches of their own (replicas A and B, each with its pool and listener); B caches a
//! configuration, A updates it, and a watcher on B's cache records when the entry goes.
//! Prints one JSON object; `cargo xtask bench config --backend postgres` runs it against
//! the server it starts and writes the report.
//!
//! Usage: config_bench_postgres URL [ROUNDS] [SECONDS_PER_WORKLOAD]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use provider_config::caches::provider_config_key;
use provider_config::{ConfigCaches, ConfigStore, DatabaseUrl};
use serde_json::{Value, json};

/// Operations timed one by one for the read percentiles, per round.
const SAMPLES: usize = 5_000;
/// Invalidations timed per round.
const INVALIDATIONS: usize = 200;

fn config(version: u64) -> serde_json::Map<String, Value> {
    let value = json!({
        "webhook_url": "https://example.invalid/hooks/replicate",
        "webhook_require_signature": true,
        "webhook_allowed_ips": ["10.0.0.0/8", "192.0.2.10"],
        "cost_limit_enabled": true,
        "cost_limit_amount": 250.0,
        "cost_limit_period": "monthly",
        "cost_limit_action": "warn",
        "hardware_info": {
            "gpu-l40s": {"name": "L40S (48GB)", "cost_per_second": 0.000975},
            "gpu-a100-large": {"name": "A100 (80GB)", "cost_per_second": 0.0014}
        },
        "preferences": {"default_hardware": "gpu-l40s", "notify": ["email", "slack"]},
        "version": version
    });
    value.as_object().cloned().unwrap_or_default()
}

struct Reads {
    ops_per_sec: f64,
    p50_ns: f64,
    p99_ns: f64,
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn measure(budget: Duration, mut op: impl FnMut()) -> Reads {
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < budget {
        for _ in 0..16 {
            op();
        }
        count += 16;
    }
    let ops_per_sec = count as f64 / start.elapsed().as_secs_f64();
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            op();
            t.elapsed().as_nanos() as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    Reads {
        ops_per_sec,
        p50_ns: percentile(&samples, 50),
        p99_ns: percentile(&samples, 99),
    }
}

/// Latencies in µs: from A's commit acknowledged to B's entry gone (0 when it went before
/// A's `update` returned), and from the start of A's `update` to B's entry gone.
fn invalidations(
    a: &ConfigStore,
    b: &ConfigStore,
    b_caches: &ConfigCaches,
    version: &mut u64,
) -> (Vec<f64>, Vec<f64>) {
    let key = provider_config_key("replicate");
    let mut after_commit = Vec::with_capacity(INVALIDATIONS);
    let mut from_start = Vec::with_capacity(INVALIDATIONS);
    for _ in 0..INVALIDATIONS {
        b.get("replicate").expect("B reads");
        assert!(b_caches.provider_config().contains_key(&key));
        let armed = AtomicBool::new(false);
        let dropped_at = std::thread::scope(|s| {
            let watcher = s.spawn(|| {
                armed.store(true, Ordering::Release);
                let deadline = Instant::now() + Duration::from_secs(5);
                while b_caches.provider_config().contains_key(&key) {
                    if Instant::now() > deadline {
                        return None;
                    }
                    std::hint::spin_loop();
                }
                Some(Instant::now())
            });
            while !armed.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            *version += 1;
            let started = Instant::now();
            let mut update = serde_json::Map::new();
            update.insert("version".into(), json!(*version));
            a.update("replicate", update).expect("A writes");
            let committed = Instant::now();
            let dropped = watcher
                .join()
                .expect("watcher")
                .expect("B's entry dropped within 5 s");
            (started, committed, dropped)
        });
        let (started, committed, dropped) = dropped_at;
        after_commit.push(dropped.saturating_duration_since(committed).as_secs_f64() * 1e6);
        from_start.push(dropped.duration_since(started).as_secs_f64() * 1e6);
    }
    (after_commit, from_start)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let url = DatabaseUrl::parse(
        &args
            .next()
            .expect("usage: config_bench_postgres URL [ROUNDS] [SECONDS]"),
    )
    .expect("a PostgreSQL URL");
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let budget = Duration::from_secs_f64(args.next().and_then(|s| s.parse().ok()).unwrap_or(0.5));
    let replica = || {
        let caches = Arc::new(ConfigCaches::new());
        let store = ConfigStore::builder_at(url.clone())
            .caches(Arc::clone(&caches))
            .open()
            .expect("open store");
        (store, caches)
    };
    let (a, _a_caches) = replica();
    let (b, b_caches) = replica();
    let mut version = 0;
    a.save("replicate", config(version)).expect("save");
    assert_eq!(*b.get("replicate").expect("get"), config(version));

    let mut report_rounds = Vec::new();
    let (mut all_after_commit, mut all_from_start) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let cached = measure(budget, || {
            black_box(b.get(black_box("replicate")).expect("get"));
        });
        let uncached = measure(budget, || {
            black_box(b.get_uncached(black_box("replicate")).expect("get"));
        });
        let (after_commit, from_start) = invalidations(&a, &b, &b_caches, &mut version);
        report_rounds.push(json!({
            "cached": {"ops_per_sec": cached.ops_per_sec, "p50_ns": cached.p50_ns, "p99_ns": cached.p99_ns},
            "uncached": {"ops_per_sec": uncached.ops_per_sec, "p50_ns": uncached.p50_ns, "p99_ns": uncached.p99_ns},
            "speedup_cached_over_uncached": cached.ops_per_sec / uncached.ops_per_sec,
        }));
        all_after_commit.extend(after_commit);
        all_from_start.extend(from_start);
    }
    let median = |path: &[&str]| {
        let mut values: Vec<f64> = report_rounds
            .iter()
            .filter_map(|r| path.iter().try_fold(r, |v, k| v.get(*k))?.as_f64())
            .collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    all_after_commit.sort_by(f64::total_cmp);
    all_from_start.sort_by(f64::total_cmp);
    let report = json!({
        "cached": {
            "ops_per_sec": median(&["cached", "ops_per_sec"]),
            "p50_ns": median(&["cached", "p50_ns"]),
            "p99_ns": median(&["cached", "p99_ns"]),
        },
        "uncached": {
            "ops_per_sec": median(&["uncached", "ops_per_sec"]),
            "p50_ns": median(&["uncached", "p50_ns"]),
            "p99_ns": median(&["uncached", "p99_ns"]),
        },
        "speedup_cached_over_uncached": median(&["speedup_cached_over_uncached"]),
        "invalidation_after_commit_us": {
            "samples": all_after_commit.len(),
            "p50": percentile(&all_after_commit, 50),
            "p99": percentile(&all_after_commit, 99),
            "max": all_after_commit.last(),
        },
        "invalidation_from_update_start_us": {
            "p50": percentile(&all_from_start, 50),
            "p99": percentile(&all_from_start, 99),
            "max": all_from_start.last(),
        },
        "listener_reconnects": b.listener_status().map(|s| s.reconnects),
        "rounds": report_rounds,
    });
    println!("{report}");
}
