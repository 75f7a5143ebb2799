//! `#[cached]` used through the facade only: this package depends on `secrets` (feature
//! `cache`), not on `ttl-cache`, so the macro must find ttl-cache as `secrets::cache` by itself.

use std::sync::atomic::{AtomicUsize, Ordering};

static GREETING_CALLS: AtomicUsize = AtomicUsize::new(0);

#[secrets::cache::cached(ttl = 30)]
fn greeting(name: &str) -> String {
    GREETING_CALLS.fetch_add(1, Ordering::SeqCst);
    format!("hello {name}")
}

#[test]
fn the_macro_works_through_the_facade_without_a_crate_attribute() {
    assert_eq!(greeting("ana"), "hello ana");
    assert_eq!(greeting("ana"), "hello ana");
    assert_eq!(GREETING_CALLS.load(Ordering::SeqCst), 1);
    assert!(greeting_cache().contains_key(&("ana".to_owned(),)));
    assert_eq!(
        greeting_cache().default_ttl(),
        std::time::Duration::from_secs(30)
    );
    assert_eq!(greeting_cache().clear(), 1);
    assert_eq!(greeting("ana"), "hello ana");
    assert_eq!(
        GREETING_CALLS.load(Ordering::SeqCst),
        2,
        "cleared, so computed again"
    );
}

static LOOKUP_CALLS: AtomicUsize = AtomicUsize::new(0);

#[secrets::cache::cached(ttl = 30)]
async fn lookup(id: u32) -> Option<String> {
    LOOKUP_CALLS.fetch_add(1, Ordering::SeqCst);
    // Let the other callers arrive while this one loads.
    tokio::task::yield_now().await;
    (id > 0).then(|| format!("user-{id}"))
}

#[tokio::test(flavor = "current_thread")]
async fn async_functions_work_through_the_facade_with_single_flight() {
    let (a, b, c) = tokio::join!(lookup(7), lookup(7), lookup(7));
    assert_eq!(
        [a, b, c],
        [
            Some("user-7".to_owned()),
            Some("user-7".to_owned()),
            Some("user-7".to_owned())
        ]
    );
    assert_eq!(
        LOOKUP_CALLS.load(Ordering::SeqCst),
        1,
        "one load for concurrent callers"
    );
    assert_eq!(lookup(7).await.as_deref(), Some("user-7"));
    assert_eq!(lookup(0).await, None);
    assert_eq!(lookup(0).await, None);
    assert_eq!(LOOKUP_CALLS.load(Ordering::SeqCst), 3, "None is not cached");
}

static OVERRIDE_CALLS: AtomicUsize = AtomicUsize::new(0);

// The explicit override still works (and wins over the Cargo.toml lookup).
#[secrets::cache::cached(crate = "secrets::cache", ttl = 30)]
fn doubled(x: u32) -> u32 {
    OVERRIDE_CALLS.fetch_add(1, Ordering::SeqCst);
    x * 2
}

#[test]
fn the_crate_attribute_still_overrides_the_path() {
    assert_eq!(doubled(4), 8);
    assert_eq!(doubled(4), 8);
    assert_eq!(OVERRIDE_CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(doubled_cache().len(), 1);
}
