//! Criterion micro-benchmarks of single operations, ttl-cache beside moka and quick_cache.
//! `cargo bench -p ttl-cache --bench micro`. The workload comparison with medians of ratios
//! is `cargo xtask bench cache`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

const N: u64 = 10_000;

fn get_hit(c: &mut Criterion) {
    let mut group = c.benchmark_group("get_hit");
    let ttl: ttl_cache::TtlCache<u64, u64> = ttl_cache::TtlCache::new(N as usize);
    let moka: moka::sync::Cache<u64, u64> = moka::sync::Cache::builder()
        .max_capacity(N)
        .time_to_live(Duration::from_secs(300))
        .build();
    let quick: quick_cache::sync::Cache<u64, u64> = quick_cache::sync::Cache::new(N as usize);
    for k in 0..N {
        ttl.insert(k, k);
        moka.insert(k, k);
        quick.insert(k, k);
    }
    let mut k = 0u64;
    group.bench_function("ttl-cache", |b| {
        b.iter(|| {
            k = (k + 7) % N;
            black_box(ttl.get(&k))
        })
    });
    group.bench_function("moka", |b| {
        b.iter(|| {
            k = (k + 7) % N;
            black_box(moka.get(&k))
        })
    });
    group.bench_function("quick_cache", |b| {
        b.iter(|| {
            k = (k + 7) % N;
            black_box(quick.get(&k))
        })
    });
    group.finish();
}

fn insert(c: &mut Criterion) {
    let mut group = c.benchmark_group("insert_at_capacity");
    let ttl: ttl_cache::TtlCache<u64, u64> = ttl_cache::TtlCache::new(N as usize);
    let moka: moka::sync::Cache<u64, u64> = moka::sync::Cache::builder()
        .max_capacity(N)
        .time_to_live(Duration::from_secs(300))
        .build();
    let quick: quick_cache::sync::Cache<u64, u64> = quick_cache::sync::Cache::new(N as usize);
    let mut k = 0u64;
    group.bench_function("ttl-cache", |b| {
        b.iter(|| {
            k += 1;
            ttl.insert(black_box(k), k)
        })
    });
    group.bench_function("moka", |b| {
        b.iter(|| {
            k += 1;
            moka.insert(black_box(k), k)
        })
    });
    group.bench_function("quick_cache", |b| {
        b.iter(|| {
            k += 1;
            quick.insert(black_box(k), k)
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = get_hit, insert
}
criterion_main!(benches);
