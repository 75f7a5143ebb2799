//! Behaviour of the manager chain, with in-memory providers.

use std::sync::Arc;
use std::time::Duration;

use crate::*;

fn mem(name: &str) -> Arc<MemoryProvider> {
    Arc::new(MemoryProvider::new(name))
}

fn chain(providers: &[&Arc<MemoryProvider>]) -> SecretsManagerBuilder {
    providers.iter().fold(SecretsManager::builder(), |b, p| {
        b.provider(Arc::clone(p) as Arc<dyn SecretProvider>)
    })
}

#[tokio::test]
async fn first_provider_with_the_key_wins_and_is_reported() {
    let (a, b) = (mem("a"), mem("b"));
    b.insert("K", "from-b");
    let m = chain(&[&a, &b]).build();
    let r = m.get_with_source("K").await.unwrap().unwrap();
    assert_eq!((r.value.expose(), r.provider.as_str()), ("from-b", "b"));
    a.insert("K", "from-a");
    m.clear_cache();
    let r = m.get_with_source("K").await.unwrap().unwrap();
    assert_eq!((r.value.expose(), r.provider.as_str()), ("from-a", "a"));
    assert_eq!(m.provider_names(), ["a", "b"]);
}

#[tokio::test]
async fn unavailable_providers_are_skipped() {
    let (a, b) = (mem("a"), mem("b"));
    a.insert("K", "hidden");
    a.set_available(false);
    b.insert("K", "shown");
    let m = chain(&[&a, &b]).build();
    assert_eq!(m.get("K").await.unwrap().unwrap().expose(), "shown");
    assert_eq!(a.lookups(), 0);
}

#[tokio::test]
async fn a_failing_provider_does_not_stop_the_walk() {
    let (a, b) = (mem("a"), mem("b"));
    a.set_failing(true);
    b.insert("K", "v");
    let m = chain(&[&a, &b]).build();
    assert_eq!(m.get("K").await.unwrap().unwrap().expose(), "v");
}

#[tokio::test]
async fn not_found_after_a_failure_is_an_error_naming_the_provider() {
    let (a, b) = (mem("a"), mem("b"));
    b.set_failing(true);
    let m = chain(&[&a, &b]).build();
    let err = m.get("K").await.unwrap_err();
    assert_eq!(err.failed_providers(), ["b"]);
    assert!(err.to_string().contains("`K`"), "{err}");
    // get_or does not hide the failure either.
    assert!(m.get_or("K", "default").await.is_err());
    b.set_failing(false);
    assert_eq!(m.get_or("K", "default").await.unwrap().expose(), "default");
    assert!(m.get("K").await.unwrap().is_none());
}

#[tokio::test]
async fn found_values_are_cached_until_the_ttl_passes() {
    let a = mem("a");
    a.insert("K", "v1");
    let clock = Arc::new(ManualClock::new());
    let m = chain(&[&a])
        .cache_ttl(Duration::from_secs(300))
        .clock(clock.clone())
        .build();
    assert_eq!(m.get("K").await.unwrap().unwrap().expose(), "v1");
    a.insert("K", "v2");
    clock.advance(Duration::from_secs(299));
    assert_eq!(m.get("K").await.unwrap().unwrap().expose(), "v1");
    assert_eq!(a.lookups(), 1);
    clock.advance(Duration::from_secs(1));
    assert_eq!(m.get("K").await.unwrap().unwrap().expose(), "v2");
    assert_eq!(a.lookups(), 2);
}

#[tokio::test]
async fn misses_are_remembered_only_briefly() {
    let a = mem("a");
    let clock = Arc::new(ManualClock::new());
    let m = chain(&[&a]).clock(clock.clone()).build();
    assert!(m.get("K").await.unwrap().is_none());
    a.insert("K", "late");
    assert!(
        m.get("K").await.unwrap().is_none(),
        "the miss is remembered"
    );
    assert_eq!(a.lookups(), 1);
    clock.advance(DEFAULT_NEGATIVE_CACHE_TTL);
    assert_eq!(m.get("K").await.unwrap().unwrap().expose(), "late");
    assert_eq!(m.cache_stats().hits, 1);
}

#[tokio::test]
async fn a_zero_ttl_disables_the_cache() {
    let a = mem("a");
    let m = chain(&[&a]).cache_ttl(Duration::ZERO).build();
    assert!(m.get("K").await.unwrap().is_none());
    a.insert("K", "v");
    assert_eq!(m.get("K").await.unwrap().unwrap().expose(), "v");
    m.get("K").await.unwrap();
    assert_eq!(a.lookups(), 3);
}

#[tokio::test]
async fn failures_are_not_cached() {
    let a = mem("a");
    a.set_failing(true);
    let m = chain(&[&a]).build();
    assert!(m.get("K").await.is_err());
    a.set_failing(false);
    a.insert("K", "v");
    assert_eq!(m.get("K").await.unwrap().unwrap().expose(), "v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lookups_of_one_key_walk_the_chain_once() {
    let a = mem("a");
    a.insert("K", "v");
    let m = Arc::new(chain(&[&a]).build());
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move { m.get("K").await.unwrap().unwrap().expose().to_owned() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), "v");
    }
    assert_eq!(a.lookups(), 1);
}

#[tokio::test]
async fn writes_go_to_the_first_writable_provider_and_invalidate() {
    let (a, b) = (mem("a"), mem("b"));
    let m = chain(&[&a, &b]).build();
    m.set("K", "v1").await.unwrap();
    assert_eq!(m.get("K").await.unwrap().unwrap().expose(), "v1");
    m.set("K", "v2").await.unwrap();
    assert_eq!(m.get("K").await.unwrap().unwrap().expose(), "v2");
    assert!(m.delete("K").await.unwrap());
    assert!(!m.delete("K").await.unwrap());
    assert!(m.get("K").await.unwrap().is_none());
    assert_eq!(b.lookups(), 1);
}

#[tokio::test]
async fn clear_cache_reports_how_many_values_it_dropped() {
    let a = mem("a").with_values(&[("X", "1"), ("Y", "2")]);
    let m = chain(&[&a]).build();
    m.get("X").await.unwrap();
    m.get("Y").await.unwrap();
    assert_eq!(m.clear_cache(), 2);
    assert_eq!(m.clear_cache(), 0);
}

#[derive(Debug)]
struct ReadOnly;

#[async_trait]
impl SecretProvider for ReadOnly {
    fn name(&self) -> &str {
        "ro"
    }
    fn is_available(&self) -> bool {
        true
    }
    async fn get(&self, _key: &str) -> Result<Option<Secret>, ProviderError> {
        Ok(None)
    }
    async fn health(&self) -> Result<(), ProviderError> {
        Ok(())
    }
}

#[tokio::test]
async fn read_only_providers_refuse_writes_clearly() {
    let err = ReadOnly.set("K", &Secret::new("v")).await.unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::ReadOnly);
    assert_eq!(
        err.to_string(),
        "provider `ro`: read-only for key `K`: this provider cannot set keys"
    );
    let m = SecretsManager::builder()
        .provider(Arc::new(ReadOnly))
        .build();
    let err = m.set("K", "v").await.unwrap_err();
    assert!(
        matches!(err, SecretsError::NoWritableProvider { .. }),
        "{err}"
    );
    assert!(m.delete("K").await.is_err());
}

#[tokio::test]
async fn the_fallback_writer_takes_writes_when_the_chain_has_none() {
    let fallback = mem("fallback");
    let m = SecretsManager::builder()
        .provider(Arc::new(ReadOnly))
        .fallback_writer(fallback.clone())
        .build();
    m.set_replicate_token("r8_x").await.unwrap();
    assert_eq!(
        fallback
            .get(REPLICATE_API_TOKEN)
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "r8_x"
    );
    // The fallback is a write target only; it is not part of the lookup chain.
    assert!(m.replicate_token().await.unwrap().is_none());
}

#[tokio::test]
async fn well_known_getters_read_their_keys() {
    let a = mem("a").with_values(&[
        (HF_TOKEN, "hf"),
        (REPLICATE_API_TOKEN, "r8"),
        (CLOUD_WEBHOOK_SECRET, "wh"),
    ]);
    let m = chain(&[&a]).build();
    assert_eq!(m.hf_token().await.unwrap().unwrap().expose(), "hf");
    assert_eq!(m.replicate_token().await.unwrap().unwrap().expose(), "r8");
    assert_eq!(m.webhook_secret().await.unwrap().unwrap().expose(), "wh");
}

#[tokio::test]
async fn a_failed_write_still_invalidates_and_reports_the_provider() {
    let a = mem("a");
    a.insert("K", "old");
    let m = chain(&[&a]).build();
    m.get("K").await.unwrap();
    a.set_failing(true);
    let err = m.set("K", "new").await.unwrap_err();
    assert_eq!(err.failed_providers(), ["a"]);
    a.set_failing(false);
    assert_eq!(m.get("K").await.unwrap().unwrap().expose(), "old");
    assert_eq!(a.lookups(), 2);
}

#[test]
fn debug_of_the_manager_shows_structure_only() {
    let a = mem("a");
    a.insert("K", "sentinel-secret");
    let m = chain(&[&a]).build();
    let shown = format!("{m:?}");
    assert!(
        shown.contains("\"a\"") && !shown.contains("sentinel"),
        "{shown}"
    );
}

trait WithValues {
    fn with_values(self, values: &[(&str, &str)]) -> Self;
}

impl WithValues for Arc<MemoryProvider> {
    fn with_values(self, values: &[(&str, &str)]) -> Self {
        for (k, v) in values {
            self.insert(*k, *v);
        }
        self
    }
}

#[tokio::test]
async fn health_report_covers_every_provider() {
    let (a, b) = (mem("a"), mem("b"));
    b.set_failing(true);
    b.set_available(false);
    let report = chain(&[&a, &b]).build().health_report().await;
    assert_eq!(report.len(), 2);
    assert!(report[0].available && report[0].reachable && report[0].error.is_none());
    assert!(!report[1].available && !report[1].reachable);
    assert!(
        report[1]
            .error
            .as_deref()
            .unwrap()
            .contains("simulated failure")
    );
}

/// A provider that keeps its own copy which stays fresh for a set time.
#[derive(Debug)]
struct Remote {
    inner: MemoryProvider,
    fresh_for: Duration,
}

#[async_trait]
impl SecretProvider for Remote {
    fn name(&self) -> &str {
        "remote"
    }
    fn is_available(&self) -> bool {
        true
    }
    async fn get(&self, key: &str) -> Result<Option<Secret>, ProviderError> {
        self.inner.get(key).await
    }
    async fn health(&self) -> Result<(), ProviderError> {
        Ok(())
    }
    fn freshness(&self) -> Option<Duration> {
        Some(self.fresh_for)
    }
}

#[tokio::test]
async fn answers_of_a_caching_provider_are_kept_no_longer_than_its_copy() {
    let clock = Arc::new(ManualClock::new());
    let remote = Arc::new(Remote {
        inner: MemoryProvider::new("remote").with("K", "v1"),
        fresh_for: Duration::from_secs(30),
    });
    let before = mem("before");
    let m = SecretsManager::builder()
        .provider(before.clone())
        .provider(remote.clone())
        .clock(clock.clone())
        .build();
    assert_eq!(m.get("K").await.unwrap().unwrap().expose(), "v1");
    remote.inner.insert("K", "v2");
    clock.advance(Duration::from_secs(29));
    assert_eq!(m.get("K").await.unwrap().unwrap().expose(), "v1");
    // The manager's 300 s do not stack on top of the provider's 30 s.
    clock.advance(Duration::from_secs(1));
    assert_eq!(m.get("K").await.unwrap().unwrap().expose(), "v2");
    // A miss is kept no longer than the shorter of the negative TTL and the copy.
    assert!(m.get("MISSING").await.unwrap().is_none());
    assert_eq!(before.lookups(), 3);
    clock.advance(DEFAULT_NEGATIVE_CACHE_TTL);
    assert!(m.get("MISSING").await.unwrap().is_none());
    assert_eq!(before.lookups(), 4);
}

#[tokio::test]
async fn writes_can_target_a_named_provider() {
    let (a, b) = (mem("a"), mem("b"));
    let m = chain(&[&a, &b]).build();
    m.set_in("b", "K", "to-b").await.unwrap();
    assert!(a.get("K").await.unwrap().is_none());
    assert_eq!(b.get("K").await.unwrap().unwrap().expose(), "to-b");
    assert!(m.delete_in("b", "K").await.unwrap());
    let err = m.set_in("nope", "K", "v").await.unwrap_err();
    assert!(matches!(err, SecretsError::UnknownProvider { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "provider `nope` is not in the chain (configured: a, b)"
    );
    let ro = SecretsManager::builder()
        .provider(Arc::new(ReadOnly))
        .build();
    let err = ro.set_in("ro", "K", "v").await.unwrap_err();
    assert_eq!(err.provider_errors()[0].kind(), ErrorKind::ReadOnly);
}
