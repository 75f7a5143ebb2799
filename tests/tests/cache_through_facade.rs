//! `#[cached]` used through the facade only (this package depends on `secrets`, not on
//! `ttl-cache`), with the `crate` option.

use std::sync::atomic::{AtomicUsize, Ordering};

static CALLS: AtomicUsize = AtomicUsize::new(0);

#[secrets::cache::cached(crate = "secrets::cache", ttl = 30)]
fn greeting(name: &str) -> String {
    CALLS.fetch_add(1, Ordering::SeqCst);
    format!("hello {name}")
}

#[test]
fn the_macro_works_through_the_facade_re_export() {
    assert_eq!(greeting("ana"), "hello ana");
    assert_eq!(greeting("ana"), "hello ana");
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    assert!(greeting_cache().contains_key(&("ana".to_owned(),)));
    assert_eq!(greeting_cache().clear(), 1);
    assert_eq!(greeting("ana"), "hello ana");
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        2,
        "cleared, so computed again"
    );
}
