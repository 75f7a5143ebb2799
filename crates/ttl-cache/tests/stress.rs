//! Many threads on one cache; checks invariants rather than timings.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use ttl_cache::{ManualClock, TtlCache};

/// Values encode their key, so a returned value can be checked against the key asked for.
fn value(key: u64, round: u64) -> u64 {
    (key << 32) | round
}

#[test]
fn concurrent_reads_and_writes_keep_the_invariants() {
    const THREADS: u64 = 8;
    const MAX: usize = 4096;
    let clock = Arc::new(ManualClock::new());
    let cache: Arc<TtlCache<u64, u64>> = Arc::new(
        TtlCache::builder()
            .max_size(MAX)
            .default_ttl(Duration::from_secs(10))
            .clock(clock.clone())
            .build(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    // A thread that moves time on, so entries expire while the others work.
    let ticker = {
        let (clock, stop) = (clock.clone(), stop.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                clock.advance(Duration::from_millis(50));
                thread::yield_now();
            }
        })
    };
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let cache = cache.clone();
            thread::spawn(move || {
                let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for round in 0..50_000u64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let key = x % 20_000;
                    match x % 10 {
                        0..=5 => {
                            if let Some(v) = cache.get(&key) {
                                assert_eq!(v >> 32, key, "value of another key returned");
                            }
                        }
                        6..=8 => cache.insert(key, value(key, round)),
                        _ => {
                            cache.insert_with_ttl(
                                key,
                                value(key, round),
                                Duration::from_millis(x % 500),
                            );
                        }
                    }
                    assert!(cache.len() <= MAX);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    ticker.join().unwrap();
    let stats = cache.stats();
    assert!(stats.size <= MAX);
    assert!(stats.evictions > 0 && stats.expirations > 0, "{stats:?}");
    // Nothing expired is returned: after time moves past every TTL, nothing is found.
    clock.advance(Duration::from_secs(11));
    for key in 0..20_000 {
        assert_eq!(cache.get(&key), None);
    }
}

#[test]
fn inserts_below_capacity_are_never_lost() {
    let cache: Arc<TtlCache<u64, u64>> = Arc::new(TtlCache::builder().max_size(100_000).build());
    let workers: Vec<_> = (0..8u64)
        .map(|t| {
            let cache = cache.clone();
            thread::spawn(move || {
                for i in 0..5_000 {
                    cache.insert(t * 1_000_000 + i, i);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    for t in 0..8u64 {
        for i in 0..5_000 {
            assert_eq!(cache.get(&(t * 1_000_000 + i)), Some(i));
        }
    }
    assert_eq!(cache.len(), 40_000);
}
