//! Model-based property tests: random operation sequences against the cache and a plain map
//! with timestamps, under a manual clock. Below capacity every observable result must match
//! the model; at capacity the eviction invariants must hold.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use ttl_cache::{ManualClock, TtlCache};

const DEFAULT_TTL: u64 = 10;

#[derive(Debug, Clone)]
enum Op {
    Get(u8),
    Insert(u8, u32),
    InsertTtl(u8, u32, u64),
    Remove(u8),
    Contains(u8),
    TtlRemaining(u8),
    Advance(u64),
    Clear,
}

fn op(keys: u8) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..keys).prop_map(Op::Get),
        4 => (0..keys, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => (0..keys, any::<u32>(), 0..15u64).prop_map(|(k, v, t)| Op::InsertTtl(k, v, t)),
        1 => (0..keys).prop_map(Op::Remove),
        1 => (0..keys).prop_map(Op::Contains),
        1 => (0..keys).prop_map(Op::TtlRemaining),
        2 => (0..6u64).prop_map(Op::Advance),
        1 => Just(Op::Clear),
    ]
}

/// The reference: key -> (value, expires_at in seconds).
#[derive(Default)]
struct Model {
    now: u64,
    map: HashMap<u8, (u32, u64)>,
}

impl Model {
    fn live(&self, k: u8) -> Option<(u32, u64)> {
        self.map.get(&k).copied().filter(|&(_, exp)| self.now < exp)
    }

    fn insert(&mut self, k: u8, v: u32, ttl: u64) {
        if ttl == 0 {
            self.map.remove(&k);
        } else {
            self.map.insert(k, (v, self.now + ttl));
        }
    }
}

fn new_cache(max_size: usize) -> (TtlCache<u8, u32>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let cache = TtlCache::builder()
        .max_size(max_size)
        .default_ttl(Duration::from_secs(DEFAULT_TTL))
        .cleanup_interval(Duration::from_secs(3))
        .clock(clock.clone())
        .build();
    (cache, clock)
}

fn secs(d: Option<Duration>) -> Option<u64> {
    d.map(|d| d.as_secs())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// With room for every key the cache behaves exactly like the model.
    #[test]
    fn below_capacity_the_cache_matches_the_model(ops in prop::collection::vec(op(16), 1..200)) {
        let (cache, clock) = new_cache(64);
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Get(k) => prop_assert_eq!(cache.get(&k), model.live(k).map(|(v, _)| v)),
                Op::Insert(k, v) => {
                    cache.insert(k, v);
                    model.insert(k, v, DEFAULT_TTL);
                }
                Op::InsertTtl(k, v, t) => {
                    cache.insert_with_ttl(k, v, Duration::from_secs(t));
                    model.insert(k, v, t);
                }
                Op::Remove(k) => {
                    let present = cache.remove(&k);
                    let in_model = model.map.remove(&k).is_some();
                    // An expired entry may already have been swept; a live one must be there.
                    prop_assert!(present == in_model || !present, "remove of {} reported {}", k, present);
                }
                Op::Contains(k) => prop_assert_eq!(cache.contains_key(&k), model.live(k).is_some()),
                Op::TtlRemaining(k) => prop_assert_eq!(
                    secs(cache.ttl_remaining(&k)),
                    model.live(k).map(|(_, exp)| exp - model.now)
                ),
                Op::Advance(s) => {
                    clock.advance(Duration::from_secs(s));
                    model.now += s;
                }
                Op::Clear => {
                    cache.clear();
                    model.map.clear();
                }
            }
            let stats = cache.stats();
            let live = model.map.keys().filter(|k| model.live(**k).is_some()).count();
            prop_assert_eq!(stats.size - stats.expired_count, live);
        }
    }

    /// At capacity: the size bound holds, a returned value is never stale or expired, an
    /// expired entry is evicted before any live one, and the entry just read or written
    /// survives the next insert.
    #[test]
    fn at_capacity_the_eviction_invariants_hold(
        max_size in 1usize..6,
        ops in prop::collection::vec(op(12), 1..300),
    ) {
        let (cache, clock) = new_cache(max_size);
        let mut model = Model::default();
        let mut just_used: Option<u8> = None;
        for op in ops {
            match op {
                Op::Get(k) => {
                    let got = cache.get(&k);
                    if let Some(v) = got {
                        prop_assert_eq!(Some(v), model.live(k).map(|(v, _)| v), "stale or expired value");
                        just_used = Some(k);
                    }
                }
                Op::Insert(k, v) | Op::InsertTtl(k, v, _) => {
                    let ttl = match op { Op::InsertTtl(_, _, t) => t, _ => DEFAULT_TTL };
                    let mut before: Vec<u8> = Vec::new();
                    cache.for_each(|key, _| before.push(*key));
                    let present = |key: u8| cache.contains_key(&key);
                    let had_expired = cache.stats().expired_count > 0;
                    let is_new = !before.contains(&k);
                    if ttl == 0 {
                        cache.insert_with_ttl(k, v, Duration::ZERO);
                    } else if matches!(op, Op::Insert(..)) {
                        cache.insert(k, v);
                    } else {
                        cache.insert_with_ttl(k, v, Duration::from_secs(ttl));
                    }
                    model.insert(k, v, ttl);
                    // With room for one entry, the new one necessarily replaces it.
                    if let Some(j) = just_used.filter(|&j| max_size > 1 && j != k && before.contains(&j)) {
                        prop_assert!(present(j), "the entry just used ({}) was evicted", j);
                    }
                    if is_new && had_expired {
                        for key in before.iter().filter(|&&key| key != k) {
                            prop_assert!(present(*key), "live {} evicted while an expired entry existed", key);
                        }
                    }
                    if !is_new {
                        for key in before.iter().filter(|&&key| key != k) {
                            prop_assert!(present(*key), "replacing {} evicted {}", k, key);
                        }
                    }
                    just_used = (ttl > 0).then_some(k);
                }
                Op::Remove(k) => {
                    cache.remove(&k);
                    model.map.remove(&k);
                }
                Op::Contains(k) => {
                    if cache.contains_key(&k) {
                        prop_assert!(model.live(k).is_some());
                    }
                }
                Op::TtlRemaining(k) => {
                    if let Some(left) = secs(cache.ttl_remaining(&k)) {
                        prop_assert_eq!(Some(left), model.live(k).map(|(_, exp)| exp - model.now));
                    }
                }
                Op::Advance(s) => {
                    clock.advance(Duration::from_secs(s));
                    model.now += s;
                    just_used = None;
                }
                Op::Clear => {
                    cache.clear();
                    model.map.clear();
                    just_used = None;
                }
            }
            prop_assert!(cache.len() <= max_size, "size {} over {}", cache.len(), max_size);
        }
    }
}
