//! `get_provider_config` through the cache beside an uncached database read, in one process,
//! interleaved: operations per second and latency percentiles. Prints one JSON object;
//! `cargo xtask bench config` runs it several times and writes the report.
//!
//! Workloads (one provider row of realistic size in a real SQLite file):
//! - `cached`: `ConfigStore::get`, a cache hit;
//! - `uncached`: `ConfigStore::get_uncached`, the same read without the cache (a pooled
//!   connection, a cached statement, JSON parsing);
//! - `new_connection`: what the original does on every read: open a connection, set its
//!   pragmas, query, parse, close.
//!
//! Usage: config_bench [SECONDS_PER_WORKLOAD]

use std::hint::black_box;
use std::time::{Duration, Instant};

use provider_config::ConfigStore;
use serde_json::{Value, json};

const ROUNDS: usize = 3;
/// Operations timed one by one for the percentiles, per workload and round.
const SAMPLES: usize = 20_000;

fn config() -> serde_json::Map<String, Value> {
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
        "version_override": null,
        "preferences": {"default_hardware": "gpu-l40s", "notify": ["email", "slack"]}
    });
    value.as_object().cloned().unwrap_or_default()
}

/// The original's `get_sync`: a new connection with its pragmas for every read.
fn read_with_new_connection(path: &std::path::Path) -> serde_json::Map<String, Value> {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 30000;",
    )
    .expect("pragmas");
    let text: String = conn
        .query_row(
            "SELECT config FROM provider_config WHERE provider = ?1",
            ["replicate"],
            |row| row.get(0),
        )
        .expect("row");
    serde_json::from_str(&text).expect("json")
}

struct Measured {
    ops_per_sec: f64,
    p50_ns: f64,
    p99_ns: f64,
}

fn measure(budget: Duration, mut op: impl FnMut()) -> Measured {
    // Throughput: batches of 64, untimed inside.
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < budget {
        for _ in 0..64 {
            op();
        }
        count += 64;
    }
    let ops_per_sec = count as f64 / start.elapsed().as_secs_f64();
    // Latency: each operation timed on its own (the timer's cost is reported separately).
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let t = Instant::now();
        op();
        samples.push(t.elapsed().as_nanos() as f64);
    }
    samples.sort_by(f64::total_cmp);
    Measured {
        ops_per_sec,
        p50_ns: samples[samples.len() / 2],
        p99_ns: samples[samples.len() * 99 / 100],
    }
}

fn timer_overhead_ns() -> f64 {
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            t.elapsed().as_nanos() as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let budget = Duration::from_secs_f64(
        std::env::args()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.5),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cloud/jobs.db");
    let store = ConfigStore::builder(&path).open().expect("open store");
    store.save("replicate", config()).expect("save");
    assert_eq!(*store.get("replicate").expect("get"), config());
    assert_eq!(read_with_new_connection(&path), config());

    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        let cached = measure(budget, || {
            black_box(store.get(black_box("replicate")).expect("get"));
        });
        let uncached = measure(budget, || {
            black_box(store.get_uncached(black_box("replicate")).expect("get"));
        });
        let new_connection = measure(budget.min(Duration::from_millis(300)), || {
            black_box(read_with_new_connection(black_box(&path)));
        });
        rounds.push((cached, uncached, new_connection));
    }
    let median = |f: &dyn Fn(&(Measured, Measured, Measured)) -> f64| {
        let mut values: Vec<f64> = rounds.iter().map(f).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let workload = |pick: &dyn Fn(&(Measured, Measured, Measured)) -> &Measured| {
        json!({
            "ops_per_sec": median(&|r| pick(r).ops_per_sec),
            "p50_ns": median(&|r| pick(r).p50_ns),
            "p99_ns": median(&|r| pick(r).p99_ns),
        })
    };
    let report = json!({
        "cached": workload(&|r| &r.0),
        "uncached": workload(&|r| &r.1),
        "new_connection": workload(&|r| &r.2),
        "speedup_cached_over_uncached": median(&|r| r.0.ops_per_sec / r.1.ops_per_sec),
        "speedup_cached_over_new_connection": median(&|r| r.0.ops_per_sec / r.2.ops_per_sec),
        "timer_overhead_ns": timer_overhead_ns(),
        "database_reads": store.database_reads(),
    });
    println!("{report}");
}
