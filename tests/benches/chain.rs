//! Warm lookups through `SecretsManager` (async and blocking, 1 and 2 threads) beside a bare
//! `ttl-cache` get of the same key, in one process, interleaved round by round, reported as
//! medians of per-round ratios (time per lookup through the chain / time per bare get).
//! Target: the chain costs at most 3x a bare cache hit. Run through `cargo xtask bench chain`.
//!
//! Options: `--rounds N` (5), `--ops N` (lookups per thread per workload, 2_000_000),
//! `--json PATH`.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use secrets::cache::TtlCache;
use secrets::{MemoryProvider, Secret, SecretsManager};

const KEY: &str = "HF_TOKEN";
const VALUE: &str = "hf_benchmark_value_of_a_usual_length_000000";

/// One workload: its name, and how it runs `ops` lookups on each of `threads` threads,
/// returning the wall time from the first thread's start to the last one's end.
type Workload = (&'static str, fn(&Setup, usize, usize) -> Duration);

struct Setup {
    manager: Arc<SecretsManager>,
    blocking: Arc<secrets::blocking::SecretsManager>,
    bare: Arc<TtlCache<String, Secret>>,
}

fn setup() -> Setup {
    let provider = Arc::new(MemoryProvider::new("memory").with(KEY, VALUE));
    let manager = Arc::new(SecretsManager::builder().provider(provider).build());
    let blocking = Arc::new(secrets::blocking::SecretsManager::new(Arc::clone(&manager)).unwrap());
    // Warm: the first lookup walks the chain and fills the manager's cache.
    assert_eq!(blocking.get(KEY).unwrap().unwrap().expose(), VALUE);
    let bare = Arc::new(
        TtlCache::builder()
            .max_size(1000)
            .default_ttl(Duration::from_secs(300))
            .build(),
    );
    bare.insert(KEY.to_owned(), Secret::new(VALUE));
    Setup {
        manager,
        blocking,
        bare,
    }
}

/// The wall time from the first thread's start to the last one's end.
fn wall(spans: impl IntoIterator<Item = (Instant, Instant)>) -> Duration {
    let spans: Vec<_> = spans.into_iter().collect();
    let start = spans.iter().map(|s| s.0).min().unwrap();
    let end = spans.iter().map(|s| s.1).max().unwrap();
    end - start
}

/// Runs `f(ops)` on `threads` threads started together; the wall time they took.
fn on_threads(threads: usize, ops: usize, f: impl Fn(usize) + Send + Sync + 'static) -> Duration {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (f, barrier) = (Arc::clone(&f), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let started = Instant::now();
                f(ops);
                (started, Instant::now())
            })
        })
        .collect();
    wall(handles.into_iter().map(|h| h.join().unwrap()))
}

fn bare_get(s: &Setup, threads: usize, ops: usize) -> Duration {
    let bare = Arc::clone(&s.bare);
    on_threads(threads, ops, move |ops| {
        for _ in 0..ops {
            black_box(bare.get(black_box(KEY)));
        }
    })
}

fn blocking_get(s: &Setup, threads: usize, ops: usize) -> Duration {
    let manager = Arc::clone(&s.blocking);
    on_threads(threads, ops, move |ops| {
        for _ in 0..ops {
            black_box(manager.get(black_box(KEY)).unwrap());
        }
    })
}

fn async_get(s: &Setup, threads: usize, ops: usize) -> Duration {
    // On a fresh thread, as the other workloads run (the allocator's per-thread state differs
    // between the main thread and the others).
    let manager = Arc::clone(&s.manager);
    std::thread::spawn(move || async_get_on(manager, threads, ops))
        .join()
        .unwrap()
}

fn async_get_on(manager: Arc<SecretsManager>, threads: usize, ops: usize) -> Duration {
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .build()
            .unwrap()
    };
    runtime.block_on(async move {
        let barrier = Arc::new(tokio::sync::Barrier::new(threads));
        let tasks: Vec<_> = (0..threads)
            .map(|_| {
                let (manager, barrier) = (Arc::clone(&manager), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    // The task the barrier woke sits in its waker's LIFO slot, which other
                    // workers cannot steal from; yielding moves it to the stealable queue,
                    // so the two tasks really run on two workers.
                    tokio::task::yield_now().await;
                    let started = Instant::now();
                    for _ in 0..ops {
                        black_box(manager.get(black_box(KEY)).await.unwrap());
                    }
                    (started, Instant::now())
                })
            })
            .collect();
        let mut spans = Vec::new();
        for task in tasks {
            spans.push(task.await.unwrap());
        }
        wall(spans)
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let rounds: usize = arg("--rounds").and_then(|r| r.parse().ok()).unwrap_or(5);
    let ops: usize = arg("--ops")
        .and_then(|r| r.parse().ok())
        .unwrap_or(2_000_000);
    let setup = setup();
    let workloads: [Workload; 3] = [
        ("bare ttl-cache get", bare_get),
        ("SecretsManager async get", async_get),
        ("SecretsManager blocking get", blocking_get),
    ];
    // ns per lookup, per (workload, threads), per round.
    let mut ns: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); 2]; workloads.len()];
    for round in 1..=rounds {
        eprintln!("round {round}/{rounds}");
        for (t, threads) in [1usize, 2].into_iter().enumerate() {
            for (w, (_, run)) in workloads.iter().enumerate() {
                let elapsed = run(&setup, threads, ops);
                ns[w][t].push(elapsed.as_nanos() as f64 / ops as f64);
            }
        }
    }
    let mut table = String::from(
        "| workload | threads | ns per lookup | lookups/s (all threads) | x bare ttl-cache get (median of rounds) |\n|---|---|---|---|---|\n",
    );
    let mut results = Vec::new();
    let mut worst: f64 = 0.0;
    for (w, (name, _)) in workloads.iter().enumerate() {
        for (t, threads) in [1usize, 2].into_iter().enumerate() {
            let per_op = median(ns[w][t].clone());
            let ratios: Vec<f64> = ns[w][t]
                .iter()
                .zip(&ns[0][t])
                .map(|(chain, bare)| chain / bare)
                .collect();
            let ratio = median(ratios);
            if w > 0 {
                worst = worst.max(ratio);
            }
            let throughput = threads as f64 * 1e9 / per_op;
            table.push_str(&format!(
                "| {name} | {threads} | {per_op:.1} | {:.2}M | {ratio:.2}x |\n",
                throughput / 1e6
            ));
            results.push(serde_json::json!({
                "workload": name,
                "threads": threads,
                "ns_per_lookup": per_op,
                "lookups_per_sec": throughput,
                "ratio_to_bare_get": ratio,
                "raw_ns_per_lookup": ns[w][t],
            }));
        }
    }
    println!("{table}");
    println!(
        "worst ratio: {worst:.2}x (target: at most 3x) -> {}",
        if worst <= 3.0 { "met" } else { "NOT met" }
    );
    if let Some(path) = arg("--json") {
        let document = serde_json::json!({
            "benchmark": "secrets-chain",
            "rounds": rounds,
            "lookups_per_thread": ops,
            "target_max_ratio": 3.0,
            "worst_ratio": worst,
            "results": results,
        });
        if let Some(dir) = std::path::Path::new(&path).parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&path, serde_json::to_string_pretty(&document).unwrap()).unwrap();
        println!("written to {path}");
    }
}
