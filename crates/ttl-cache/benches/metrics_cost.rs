//! What exporting counters costs a hit, side by side in one process: an unnamed cache, a
//! named one with no recorder installed (the facade's no-op), and a named one with
//! metrics-util's debugging recorder (a real registry). `cargo bench -p ttl-cache --features
//! metrics --bench metrics_cost`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ttl_cache::TtlCache;

const N: u64 = 10_000;

fn filled(name: Option<&'static str>) -> TtlCache<u64, u64> {
    let builder = TtlCache::builder().max_size(N as usize);
    let cache = match name {
        Some(name) => builder.metrics(name).build(),
        None => builder.build(),
    };
    for k in 0..N {
        cache.insert(k, k);
    }
    cache
}

fn get_hit(c: &mut Criterion) {
    let mut group = c.benchmark_group("get_hit");
    let plain = filled(None);
    let named = filled(Some("bench"));
    let mut k = 0u64;
    group.bench_function("unnamed", |b| {
        b.iter(|| {
            k = (k + 7) % N;
            black_box(plain.get(&k))
        })
    });
    group.bench_function("named, no recorder", |b| {
        b.iter(|| {
            k = (k + 7) % N;
            black_box(named.get(&k))
        })
    });
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    metrics::with_local_recorder(&recorder, || {
        group.bench_function("named, debugging recorder", |b| {
            b.iter(|| {
                k = (k + 7) % N;
                black_box(named.get(&k))
            })
        });
    });
    group.finish();
}

criterion_group!(benches, get_hit);
criterion_main!(benches);
