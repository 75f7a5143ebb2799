//! Side-by-side comparison of ttl-cache with moka, quick_cache, mini-moka and
//! `Mutex<lru::LruCache>`, in one process, implementations interleaved round by round
//! (the speed of these machines drifts over time), reported as medians and as medians of
//! per-round ratios. Run through `cargo xtask bench cache`, which writes
//! `target/bench/ttl-cache.json` and prints a markdown table.
//!
//! Options: `--rounds N` (5), `--ops N` (4_000_000 per workload), `--json PATH`,
//! `--memory IMPL` (internal: measure one implementation's memory in a fresh process).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

const CAPACITY: usize = 100_000;
const KEY_SPACE: usize = 10 * CAPACITY;
const LONG_TTL: Duration = Duration::from_secs(300);
const SHORT_TTL: Duration = Duration::from_millis(1);

/// What every contender offers for these workloads.
trait Contender: Send + Sync + 'static {
    const NAME: &'static str;
    fn build(capacity: usize, ttl: Option<Duration>) -> Self;
    fn get(&self, key: u64) -> Option<u64>;
    fn insert(&self, key: u64, value: u64);
    /// Number of loader calls when 64 threads miss one cold key at once.
    fn get_or_load(&self, key: u64, load: &dyn Fn() -> u64) -> u64;
    fn has_ttl() -> bool;
}

struct TtlCacheC(ttl_cache::TtlCache<u64, u64>);
impl Contender for TtlCacheC {
    const NAME: &'static str = "ttl-cache";
    fn build(capacity: usize, ttl: Option<Duration>) -> Self {
        Self(
            ttl_cache::TtlCache::builder()
                .max_size(capacity)
                .default_ttl(ttl.unwrap_or(LONG_TTL))
                .build(),
        )
    }
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key)
    }
    fn insert(&self, key: u64, value: u64) {
        self.0.insert(key, value);
    }
    fn get_or_load(&self, key: u64, load: &dyn Fn() -> u64) -> u64 {
        self.0.get_or_insert_with(key, load)
    }
    fn has_ttl() -> bool {
        true
    }
}

struct MokaC(moka::sync::Cache<u64, u64>);
impl Contender for MokaC {
    const NAME: &'static str = "moka";
    fn build(capacity: usize, ttl: Option<Duration>) -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(capacity as u64)
                .time_to_live(ttl.unwrap_or(LONG_TTL))
                .build(),
        )
    }
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key)
    }
    fn insert(&self, key: u64, value: u64) {
        self.0.insert(key, value);
    }
    fn get_or_load(&self, key: u64, load: &dyn Fn() -> u64) -> u64 {
        self.0.get_with(key, load)
    }
    fn has_ttl() -> bool {
        true
    }
}

struct QuickCacheC(quick_cache::sync::Cache<u64, u64>);
impl Contender for QuickCacheC {
    const NAME: &'static str = "quick_cache";
    fn build(capacity: usize, _ttl: Option<Duration>) -> Self {
        Self(quick_cache::sync::Cache::new(capacity))
    }
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key)
    }
    fn insert(&self, key: u64, value: u64) {
        self.0.insert(key, value);
    }
    fn get_or_load(&self, key: u64, load: &dyn Fn() -> u64) -> u64 {
        self.0
            .get_or_insert_with(&key, || Ok::<u64, ()>(load()))
            .unwrap_or(0)
    }
    fn has_ttl() -> bool {
        false
    }
}

struct MiniMokaC(mini_moka::sync::Cache<u64, u64>);
impl Contender for MiniMokaC {
    const NAME: &'static str = "mini-moka";
    fn build(capacity: usize, ttl: Option<Duration>) -> Self {
        Self(
            mini_moka::sync::Cache::builder()
                .max_capacity(capacity as u64)
                .time_to_live(ttl.unwrap_or(LONG_TTL))
                .build(),
        )
    }
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key)
    }
    fn insert(&self, key: u64, value: u64) {
        self.0.insert(key, value);
    }
    /// mini-moka has no loader API: get, then load and insert on a miss.
    fn get_or_load(&self, key: u64, load: &dyn Fn() -> u64) -> u64 {
        if let Some(v) = self.0.get(&key) {
            return v;
        }
        let v = load();
        self.0.insert(key, v);
        v
    }
    fn has_ttl() -> bool {
        true
    }
}

struct MutexLruC(Mutex<lru::LruCache<u64, u64>>);
impl Contender for MutexLruC {
    const NAME: &'static str = "Mutex<lru::LruCache>";
    fn build(capacity: usize, _ttl: Option<Duration>) -> Self {
        let cap =
            std::num::NonZeroUsize::new(capacity.max(1)).unwrap_or(std::num::NonZeroUsize::MIN);
        Self(Mutex::new(lru::LruCache::new(cap)))
    }
    fn get(&self, key: u64) -> Option<u64> {
        self.0.lock().unwrap().get(&key).copied()
    }
    fn insert(&self, key: u64, value: u64) {
        self.0.lock().unwrap().put(key, value);
    }
    /// Loads outside the lock (holding it would stall every other key): get, load, put.
    fn get_or_load(&self, key: u64, load: &dyn Fn() -> u64) -> u64 {
        if let Some(v) = self.get(key) {
            return v;
        }
        let v = load();
        self.insert(key, v);
        v
    }
    fn has_ttl() -> bool {
        false
    }
}

/// xorshift64*: fast, deterministic.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `count` keys drawn from a Zipf(s = 1) distribution over `KEY_SPACE` keys, scattered so
/// that popular keys are not neighbours.
fn zipf_keys(count: usize, seed: u64) -> Vec<u64> {
    let mut cdf = Vec::with_capacity(KEY_SPACE);
    let mut total = 0.0;
    for rank in 1..=KEY_SPACE {
        total += 1.0 / rank as f64;
        cdf.push(total);
    }
    let mut rng = Rng(seed | 1);
    (0..count)
        .map(|_| {
            let target = rng.unit() * total;
            let rank = cdf.partition_point(|&c| c < target) as u64;
            rank.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Mix {
    /// One insert in this many operations; the rest are gets.
    InsertEvery(usize),
}

fn run_ops<C: Contender>(cache: &C, keys: &[u64], mix: Mix) -> u64 {
    let Mix::InsertEvery(every) = mix;
    let mut found = 0u64;
    for (i, &key) in keys.iter().enumerate() {
        if i % every == 0 {
            cache.insert(key, key);
        } else if cache.get(key).is_some() {
            found += 1;
        }
    }
    found
}

/// Operations per second of `threads` threads sharing one cache.
fn throughput<C: Contender>(
    keys: &Arc<Vec<u64>>,
    ops: usize,
    threads: usize,
    mix: Mix,
    ttl: Option<Duration>,
) -> f64 {
    let cache = Arc::new(C::build(CAPACITY, ttl));
    // Warm up: fill the cache from the same distribution.
    run_ops(&*cache, &keys[..CAPACITY * 2], Mix::InsertEvery(1));
    let per_thread = ops / threads;
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (cache, keys, barrier) = (cache.clone(), keys.clone(), barrier.clone());
            std::thread::spawn(move || {
                let start = (t * per_thread) % (keys.len() - per_thread);
                barrier.wait();
                black_box(run_ops(&*cache, &keys[start..start + per_thread], mix));
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    for h in handles {
        h.join().unwrap();
    }
    (per_thread * threads) as f64 / started.elapsed().as_secs_f64()
}

fn stampede<C: Contender>() -> usize {
    let cache = Arc::new(C::build(CAPACITY, None));
    let calls = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(64));
    let handles: Vec<_> = (0..64)
        .map(|_| {
            let (cache, calls, barrier) = (cache.clone(), calls.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                cache.get_or_load(42, &|| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    7
                })
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 7);
    }
    calls.load(Ordering::SeqCst)
}

/// Resident memory of this process in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn memory_of<C: Contender>() -> f64 {
    const N: usize = 1_000_000;
    let before = rss();
    let cache = C::build(N, None);
    for key in 0..N as u64 {
        cache.insert(key.wrapping_mul(0x9E37_79B9_7F4A_7C15), key);
    }
    let after = rss();
    black_box(cache.get(1));
    (after - before) as f64 / N as f64
}

fn memory_in_child(name: &str) -> f64 {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--memory", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(f64::NAN)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

type Runner = fn(&Arc<Vec<u64>>, usize, usize, Mix, Option<Duration>) -> f64;

fn contenders() -> Vec<(&'static str, bool, Runner)> {
    vec![
        (
            TtlCacheC::NAME,
            TtlCacheC::has_ttl(),
            throughput::<TtlCacheC>,
        ),
        (
            QuickCacheC::NAME,
            QuickCacheC::has_ttl(),
            throughput::<QuickCacheC>,
        ),
        (MokaC::NAME, MokaC::has_ttl(), throughput::<MokaC>),
        (
            MiniMokaC::NAME,
            MiniMokaC::has_ttl(),
            throughput::<MiniMokaC>,
        ),
        (
            MutexLruC::NAME,
            MutexLruC::has_ttl(),
            throughput::<MutexLruC>,
        ),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if let Some(name) = arg("--memory") {
        let bytes = match name.as_str() {
            "ttl-cache" => memory_of::<TtlCacheC>(),
            "moka" => memory_of::<MokaC>(),
            "quick_cache" => memory_of::<QuickCacheC>(),
            "mini-moka" => memory_of::<MiniMokaC>(),
            _ => memory_of::<MutexLruC>(),
        };
        println!("{bytes}");
        return;
    }
    if let Some(name) = arg("--profile") {
        // Internal: one contender, read-heavy, for a profiler.
        let keys = Arc::new(zipf_keys(8_000_000, 7));
        let run = contenders()
            .into_iter()
            .find(|c| c.0 == name)
            .map(|c| c.2)
            .unwrap_or(throughput::<TtlCacheC>);
        for _ in 0..5 {
            println!(
                "{:.1}M ops/s",
                run(&keys, 6_000_000, 1, Mix::InsertEvery(20), None) / 1e6
            );
        }
        return;
    }
    let rounds: usize = arg("--rounds").and_then(|r| r.parse().ok()).unwrap_or(5);
    let ops: usize = arg("--ops")
        .and_then(|r| r.parse().ok())
        .unwrap_or(4_000_000);
    let keys = Arc::new(zipf_keys(ops.max(CAPACITY * 2) + CAPACITY * 2, 7));

    let workloads: Vec<(&str, usize, Mix, Option<Duration>, bool)> = vec![
        ("read-heavy 1 thread", 1, Mix::InsertEvery(20), None, false),
        ("read-heavy 2 threads", 2, Mix::InsertEvery(20), None, false),
        ("write-heavy 1 thread", 1, Mix::InsertEvery(2), None, false),
        ("write-heavy 2 threads", 2, Mix::InsertEvery(2), None, false),
        (
            "TTL churn 1 thread (1 ms TTL)",
            1,
            Mix::InsertEvery(2),
            Some(SHORT_TTL),
            true,
        ),
    ];
    // results[workload][contender] = ops/s per round
    let mut results: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    let all = contenders();
    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        for (workload, threads, mix, ttl, ttl_only) in &workloads {
            // Rotate the order each round so no contender always runs first.
            for i in 0..all.len() {
                let (name, has_ttl, run) = all[(i + round) % all.len()];
                if *ttl_only && !has_ttl {
                    continue;
                }
                let per_sec = run(&keys, ops, *threads, *mix, *ttl);
                results
                    .entry((*workload).to_owned())
                    .or_default()
                    .entry(name.to_owned())
                    .or_default()
                    .push(per_sec);
            }
        }
    }

    let stampede_calls: BTreeMap<&str, usize> = [
        (TtlCacheC::NAME, stampede::<TtlCacheC>()),
        (QuickCacheC::NAME, stampede::<QuickCacheC>()),
        (MokaC::NAME, stampede::<MokaC>()),
        (MiniMokaC::NAME, stampede::<MiniMokaC>()),
        (MutexLruC::NAME, stampede::<MutexLruC>()),
    ]
    .into_iter()
    .collect();
    let memory: BTreeMap<&str, f64> = all
        .iter()
        .map(|(name, _, _)| (*name, memory_in_child(name)))
        .collect();

    let names: Vec<&str> = all.iter().map(|(n, _, _)| *n).collect();
    let mut table = format!(
        "| workload | {} | ttl-cache / quick_cache | ttl-cache / moka |\n|---|{}---|---|\n",
        names.join(" | "),
        "---|".repeat(names.len())
    );
    let mut json_workloads = serde_json::Map::new();
    for (workload, per_contender) in &results {
        let ratio_to = |peer: &str| -> Option<f64> {
            let ours = per_contender.get(TtlCacheC::NAME)?;
            let theirs = per_contender.get(peer)?;
            Some(median(
                ours.iter().zip(theirs).map(|(a, b)| a / b).collect(),
            ))
        };
        let cells: Vec<String> = names
            .iter()
            .map(|n| {
                per_contender.get(*n).map_or("-".to_owned(), |v| {
                    format!("{:.1}M", median(v.clone()) / 1e6)
                })
            })
            .collect();
        let fmt_ratio = |r: Option<f64>| r.map_or("-".to_owned(), |r| format!("{r:.2}x"));
        table.push_str(&format!(
            "| {workload} | {} | {} | {} |\n",
            cells.join(" | "),
            fmt_ratio(ratio_to(QuickCacheC::NAME)),
            fmt_ratio(ratio_to(MokaC::NAME))
        ));
        let mut entry = serde_json::Map::new();
        for (name, v) in per_contender {
            entry.insert(name.clone(), serde_json::json!(median(v.clone())));
        }
        entry.insert(
            "ratio_ttl_cache_to_quick_cache".into(),
            serde_json::json!(ratio_to(QuickCacheC::NAME)),
        );
        entry.insert(
            "ratio_ttl_cache_to_moka".into(),
            serde_json::json!(ratio_to(MokaC::NAME)),
        );
        json_workloads.insert(workload.clone(), serde_json::Value::Object(entry));
    }
    table.push_str(&format!(
        "| stampede: loader calls for 64 threads on one cold key | {} | | |\n",
        names
            .iter()
            .map(|n| stampede_calls[n].to_string())
            .collect::<Vec<_>>()
            .join(" | ")
    ));
    table.push_str(&format!(
        "| memory: bytes per u64 -> u64 entry (1M entries) | {} | | |\n",
        names
            .iter()
            .map(|n| format!("{:.0}", memory[n]))
            .collect::<Vec<_>>()
            .join(" | ")
    ));
    let document = serde_json::json!({
        "benchmark": "ttl-cache",
        "unit": "operations per second (median of rounds)",
        "capacity": CAPACITY,
        "key_space": KEY_SPACE,
        "distribution": "Zipf s=1",
        "ops_per_workload": ops,
        "rounds": rounds,
        "workloads": json_workloads,
        "stampede_loader_calls": stampede_calls,
        "memory_bytes_per_entry": memory,
    });
    if let Some(path) = arg("--json") {
        if let Some(dir) = std::path::Path::new(&path).parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&path, serde_json::to_string_pretty(&document).unwrap()).unwrap();
        eprintln!("written to {path}");
    }
    println!("{table}");
}
