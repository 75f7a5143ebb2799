//! The #[cached] macro on sync and (feature `async`) async functions.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ttl_cache::cached;

static SQUARE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(ttl = 120, max_size = 100)]
fn square(x: u64) -> u64 {
    SQUARE_CALLS.fetch_add(1, Ordering::SeqCst);
    x * x
}

#[test]
fn sync_results_are_cached_per_argument() {
    assert_eq!(square(3), 9);
    assert_eq!(square(3), 9);
    assert_eq!(square(4), 16);
    assert_eq!(SQUARE_CALLS.load(Ordering::SeqCst), 2);
    assert_eq!(
        square_cache()
            .ttl_remaining(&(3,))
            .map(|d| d.as_secs() <= 120),
        Some(true)
    );
    assert_eq!(square_cache().max_size(), 100);
    assert!(square_cache().remove(&(3,)));
    assert_eq!(square(3), 9);
    assert_eq!(SQUARE_CALLS.load(Ordering::SeqCst), 3);
}

static TYPED_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached]
fn describe(id: u32, name: &str) -> String {
    TYPED_CALLS.fetch_add(1, Ordering::SeqCst);
    format!("{id}:{name}")
}

#[cached]
fn describe_text(id: &str, name: &str) -> String {
    TYPED_CALLS.fetch_add(1, Ordering::SeqCst);
    format!("{id}:{name}")
}

#[test]
fn keys_are_typed_tuples_so_1_and_quoted_1_never_collide() {
    assert_eq!(describe(1, "a"), "1:a");
    assert_eq!(describe_text("1", "a"), "1:a");
    assert_eq!(TYPED_CALLS.load(Ordering::SeqCst), 2);
    assert_eq!(describe(1, "a"), "1:a");
    assert_eq!(TYPED_CALLS.load(Ordering::SeqCst), 2);
    // The keys are real typed tuples: (u32, String) and (String, String).
    assert!(describe_cache().contains_key(&(1u32, "a".to_owned())));
    assert!(describe_text_cache().contains_key(&("1".to_owned(), "a".to_owned())));
}

static LOOKUP_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached]
fn lookup(x: i32) -> Option<i32> {
    LOOKUP_CALLS.fetch_add(1, Ordering::SeqCst);
    (x > 0).then_some(x)
}

#[cached(cache_none)]
fn lookup_caching_none(x: i32) -> Option<i32> {
    LOOKUP_CALLS.fetch_add(100, Ordering::SeqCst);
    (x > 0).then_some(x)
}

#[test]
fn none_is_cached_only_with_cache_none() {
    assert_eq!(lookup(-1), None);
    assert_eq!(lookup(-1), None);
    assert_eq!(LOOKUP_CALLS.load(Ordering::SeqCst), 2, "None is not cached");
    assert_eq!(lookup(5), Some(5));
    assert_eq!(lookup(5), Some(5));
    assert_eq!(LOOKUP_CALLS.load(Ordering::SeqCst), 3);
    assert_eq!(lookup_caching_none(-1), None);
    assert_eq!(lookup_caching_none(-1), None);
    assert_eq!(LOOKUP_CALLS.load(Ordering::SeqCst), 103, "None is cached");
}

static PARSE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached]
fn parse(text: &str) -> Result<u32, String> {
    PARSE_CALLS.fetch_add(1, Ordering::SeqCst);
    let n: u32 = text.parse().map_err(|e| format!("{e}"))?;
    Ok(n)
}

#[cached(cache_err)]
fn parse_caching_err(text: &str) -> Result<u32, String> {
    PARSE_CALLS.fetch_add(100, Ordering::SeqCst);
    text.parse().map_err(|e| format!("{e}"))
}

#[test]
fn err_is_cached_only_with_cache_err() {
    assert!(parse("x").is_err());
    assert!(parse("x").is_err());
    assert_eq!(PARSE_CALLS.load(Ordering::SeqCst), 2, "Err is not cached");
    assert_eq!(parse("7"), Ok(7));
    assert_eq!(parse("7"), Ok(7));
    assert_eq!(PARSE_CALLS.load(Ordering::SeqCst), 3);
    assert!(parse_caching_err("x").is_err());
    assert!(parse_caching_err("x").is_err());
    assert_eq!(PARSE_CALLS.load(Ordering::SeqCst), 103, "Err is cached");
}

#[cfg(feature = "async")]
static ASYNC_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cfg(feature = "async")]
#[cached(ttl = 60)]
async fn fetch_remote(id: u64) -> Result<String, String> {
    ASYNC_CALLS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    if id == 0 {
        return Err("no such id".to_owned());
    }
    Ok(format!("item-{id}"))
}

#[cfg(feature = "async")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_functions_are_cached_with_single_flight() {
    let calls: Vec<_> = (0..16).map(|_| tokio::spawn(fetch_remote(9))).collect();
    for c in calls {
        assert_eq!(c.await.unwrap(), Ok("item-9".to_owned()));
    }
    assert_eq!(ASYNC_CALLS.load(Ordering::SeqCst), 1);
    assert!(fetch_remote(0).await.is_err());
    assert!(fetch_remote(0).await.is_err());
    assert_eq!(ASYNC_CALLS.load(Ordering::SeqCst), 3);
    assert_eq!(fetch_remote_cache().clear(), 1);
}

static CUBE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached]
fn cube(x: u64) -> u64 {
    CUBE_CALLS.fetch_add(1, Ordering::SeqCst);
    x * x * x
}

#[test]
fn the_generated_accessor_clears_and_reports_statistics() {
    assert_eq!(cube(10), 1000);
    assert_eq!(cube(10), 1000);
    let stats = cube_cache().stats();
    assert_eq!((stats.size, stats.hits, stats.loads), (1, 1, 1));
    assert_eq!(cube_cache().clear(), 1);
    assert_eq!(cube(10), 1000);
    assert_eq!(
        CUBE_CALLS.load(Ordering::SeqCst),
        2,
        "cleared, so computed again"
    );
}

static HALVE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached]
fn halve(x: u64) -> u64 {
    HALVE_CALLS.fetch_add(1, Ordering::SeqCst);
    x / 2
}

#[test]
fn without_a_ttl_values_live_sixty_seconds_like_the_python_decorator() {
    // The macro's cache has no injectable clock, so look at the TTL it was built with and at
    // the expiry of a stored value (the builder's own default would be 300 s).
    assert_eq!(halve_cache().default_ttl(), Duration::from_secs(60));
    assert_eq!(halve(8), 4);
    let left = halve_cache()
        .ttl_remaining(&(8,))
        .expect("the value is cached");
    assert!(
        left <= Duration::from_secs(60) && left > Duration::from_secs(50),
        "{left:?}"
    );
    assert_eq!(halve(8), 4);
    assert_eq!(HALVE_CALLS.load(Ordering::SeqCst), 1);
}
