//! Concurrent misses on one key run one loader, for sync and async (feature `async`) callers
//! alike.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use ttl_cache::TtlCache;

#[test]
fn sixty_four_threads_one_loader_call() {
    let cache: Arc<TtlCache<&str, u64>> = Arc::new(TtlCache::new(10));
    let calls = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(64));
    let handles: Vec<_> = (0..64)
        .map(|_| {
            let (cache, calls, barrier) = (cache.clone(), calls.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                cache.get_or_insert_with("cold", || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(50)); // a slow backend
                    99
                })
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 99);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.stats().loads, 1);
}

#[test]
fn waiters_retry_when_the_leader_fails() {
    let cache: Arc<TtlCache<&str, u64>> = Arc::new(TtlCache::new(10));
    let calls = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let (cache, calls, barrier) = (cache.clone(), calls.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                cache.try_get_or_insert_with("key", || {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(20));
                    if n == 0 {
                        Err("first attempt fails")
                    } else {
                        Ok(7)
                    }
                })
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        results.iter().filter(|r| r.is_err()).count(),
        1,
        "only the failing leader sees its error"
    );
    assert!(results.iter().filter_map(|r| r.ok()).all(|v| v == 7));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one failed load, one retry"
    );
}

#[cfg(feature = "async")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_one_loader_future() {
    let cache: Arc<TtlCache<String, u64>> = Arc::new(TtlCache::new(10));
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            tokio::spawn(async move {
                cache
                    .get_or_insert_with_async("cold".to_owned(), async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        5
                    })
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 5);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[cfg(feature = "async")]
#[tokio::test(flavor = "current_thread")]
async fn async_waiters_do_not_block_the_runtime_thread() {
    // On a single-threaded runtime a blocking wait would deadlock: the leader could never run.
    let cache: Arc<TtlCache<u32, u32>> = Arc::new(TtlCache::new(10));
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_insert_with_async(1, async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    10
                })
                .await
        })
    };
    tokio::task::yield_now().await;
    let follower = cache.get_or_insert_with_async(1, async { unreachable!("the leader loads") });
    assert_eq!(follower.await, 10);
    assert_eq!(leader.await.unwrap(), 10);
}

#[cfg(feature = "async")]
#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_async_leader_lets_the_next_caller_load() {
    let cache: TtlCache<u32, u32> = TtlCache::new(10);
    let slow = cache.get_or_insert_with_async(1, async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        1
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(10), slow)
            .await
            .is_err()
    );
    assert_eq!(cache.get_or_insert_with_async(1, async { 2 }).await, 2);
    let failing: Result<u32, &str> = cache
        .try_get_or_insert_with_async(3, async { Err("no") })
        .await;
    assert!(failing.is_err() && !cache.contains_key(&3));
    let s = cache.stats();
    assert_eq!((s.loads, s.load_failures), (3, 2));
}

#[cfg(feature = "tokio-cleanup")]
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_cleanup_task_sweeps_periodically_and_stops_with_the_cache() {
    let clock = Arc::new(ttl_cache::ManualClock::new());
    let cache: Arc<TtlCache<u32, u32>> = Arc::new(
        TtlCache::builder()
            .default_ttl(Duration::from_secs(1))
            .cleanup_interval(Duration::from_secs(3600))
            .clock(clock.clone())
            .build(),
    );
    cache.insert(1, 1);
    cache.insert(2, 2);
    let task = ttl_cache::spawn_cleanup(&cache, Duration::from_secs(10));
    clock.advance(Duration::from_secs(2));
    assert_eq!(cache.len(), 2, "expired but not yet swept");
    tokio::time::sleep(Duration::from_secs(11)).await; // paused time: advances instantly
    assert_eq!(cache.len(), 0, "the task swept them");
    drop(cache);
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert!(task.is_finished(), "the task ends once the cache is gone");
}
