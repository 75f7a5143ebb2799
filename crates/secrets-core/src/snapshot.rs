//! [`Snapshot`]: the one copy of a remote object (an AWS secret, a Vault path) that a
//! provider serves keys from.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::metrics::record;
use crate::{Clock, ProviderError, SystemClock};

/// How a [`Snapshot`] refreshes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// How long a fetched copy is fresh (default 300 s).
    pub ttl: Duration,
    /// Whether a stale copy is served when a refetch fails with a transient error (network,
    /// timeout, throttling, 5xx); default on. A warning is logged each time it happens.
    pub serve_stale: bool,
    /// After a failed fetch, how long lookups get the stale copy (or the same error) without
    /// asking the backend again (default 5 s), so a struggling backend is not hammered by
    /// every lookup.
    pub retry_backoff: Duration,
    /// The oldest copy ever served stale (default 1 hour): an outage longer than this turns
    /// into errors instead of a value that may long have been rotated or revoked.
    pub max_stale: Duration,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            serve_stale: true,
            retry_backoff: Duration::from_secs(5),
            max_stale: Duration::from_secs(3600),
        }
    }
}

/// The last good copy, or the last failure, and when.
struct State<T> {
    value: Option<Arc<T>>,
    fetched_at: Duration,
    /// Set after a failed fetch: no new fetch before this time.
    retry_at: Option<Duration>,
    /// The failure to repeat until `retry_at` when there is no copy to serve.
    last_error: Option<ProviderError>,
    /// Bumped by [`Snapshot::invalidate`]: a fetch that started before it must not store
    /// what it read (it may predate the write that invalidated).
    generation: u64,
}

/// The one copy of a remote object a provider serves keys from, with its refresh rules:
///
/// - a fresh copy (younger than the TTL) is returned without I/O;
/// - otherwise one caller fetches while concurrent callers wait for its result (single
///   flight): any number of keys and lookups cost one fetch per TTL window;
/// - when the refetch fails with a transient error and a copy exists, the copy is served
///   (stale) with a warning, and the backend is asked again only after the backoff;
/// - any other failure is returned; it too is repeated without a fetch during the backoff.
///
/// Time comes from a [`Clock`], so tests move it by hand.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use secrets_core::{ErrorKind, ManualClock, ProviderError, Snapshot, SnapshotPolicy};
///
/// let clock = Arc::new(ManualClock::new());
/// let snapshot = Snapshot::new("demo", SnapshotPolicy::default()).with_clock(clock.clone());
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     let v = snapshot.get(|| async { Ok::<_, ProviderError>(1) }).await.unwrap();
///     assert_eq!(*v, 1);
///     // Within the TTL: no fetch.
///     let v = snapshot.get(|| async { Ok::<_, ProviderError>(2) }).await.unwrap();
///     assert_eq!(*v, 1);
///     // After it, a transient failure serves the stale copy.
///     clock.advance(Duration::from_secs(301));
///     let down = || async { Err::<u32, _>(ProviderError::new("demo", ErrorKind::Unavailable, "down")) };
///     assert_eq!(*snapshot.get(down).await.unwrap(), 1);
/// });
/// assert_eq!(snapshot.fetches(), 2);
/// ```
pub struct Snapshot<T> {
    provider: Cow<'static, str>,
    policy: SnapshotPolicy,
    clock: Arc<dyn Clock>,
    state: Mutex<State<T>>,
    /// Held by the caller that fetches; the others wait on it, then find the new copy.
    refresh: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

impl<T> fmt::Debug for Snapshot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("provider", &self.provider)
            .field("policy", &self.policy)
            .field("fetches", &self.fetches())
            .finish_non_exhaustive()
    }
}

/// What the state says a caller should do.
enum Decision<T> {
    Serve(Arc<T>),
    Fail(ProviderError),
    Fetch,
}

impl<T> Snapshot<T> {
    /// An empty snapshot for the named provider (used in log lines), on the system clock.
    pub fn new(provider: impl Into<Cow<'static, str>>, policy: SnapshotPolicy) -> Self {
        Self {
            provider: provider.into(),
            policy,
            clock: Arc::new(SystemClock),
            state: Mutex::new(State {
                value: None,
                fetched_at: Duration::ZERO,
                retry_at: None,
                last_error: None,
                generation: 0,
            }),
            refresh: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
        }
    }

    /// Uses this clock (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The refresh rules.
    pub fn policy(&self) -> SnapshotPolicy {
        self.policy
    }

    /// How many fetches ran (successful or not).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn decide(&self, now: Duration) -> Decision<T> {
        let state = self.lock();
        if let Some(value) = &state.value
            && now < state.fetched_at.saturating_add(self.policy.ttl)
        {
            return Decision::Serve(Arc::clone(value));
        }
        if let Some(retry_at) = state.retry_at
            && now < retry_at
        {
            if let Some(error) = &state.last_error {
                return Decision::Fail(error.clone());
            }
            if let Some(value) = &state.value {
                return Decision::Serve(Arc::clone(value));
            }
        }
        Decision::Fetch
    }

    /// The current copy, fetching it with `fetch` when there is no fresh one (see the type's
    /// documentation for the rules).
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<Arc<T>, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        match self.decide(self.clock.now()) {
            Decision::Serve(value) => return Ok(value),
            Decision::Fail(error) => return Err(error),
            Decision::Fetch => {}
        }
        let _refreshing = self.refresh.lock().await;
        // Another caller may have fetched while this one waited.
        match self.decide(self.clock.now()) {
            Decision::Serve(value) => return Ok(value),
            Decision::Fail(error) => return Err(error),
            Decision::Fetch => {}
        }
        self.fetch_now(fetch).await
    }

    /// Fetches now, whatever the age of the copy and any backoff (an explicit refresh, such
    /// as a provider's `refresh_now`). Concurrent fetches still run one at a time. The rules
    /// for failures are those of [`get`](Self::get): a transient failure serves the copy, if
    /// any, with a warning.
    pub async fn refresh<F, Fut>(&self, fetch: F) -> Result<Arc<T>, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let _refreshing = self.refresh.lock().await;
        self.fetch_now(fetch).await
    }

    /// Runs one fetch (the caller holds the refresh lock) and records its outcome.
    async fn fetch_now<F, Fut>(&self, fetch: F) -> Result<Arc<T>, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let generation = self.lock().generation;
        let started = std::time::Instant::now();
        let result = fetch().await;
        record::snapshot_fetch(&self.provider, started.elapsed(), result.is_ok());
        let now = self.clock.now();
        let mut state = self.lock();
        if state.generation != generation {
            // Invalidated while fetching (a write went through): hand the answer to this
            // caller, remember nothing; the next lookup fetches again.
            return result.map(Arc::new);
        }
        match result {
            Ok(value) => {
                let value = Arc::new(value);
                state.value = Some(Arc::clone(&value));
                state.fetched_at = now;
                state.retry_at = None;
                state.last_error = None;
                Ok(value)
            }
            Err(error) => {
                state.retry_at = Some(now.saturating_add(self.policy.retry_backoff));
                let age = now.saturating_sub(state.fetched_at);
                match state.value.clone() {
                    Some(stale)
                        if error.is_transient()
                            && self.policy.serve_stale
                            && age <= self.policy.max_stale =>
                    {
                        tracing::warn!(
                            provider = %self.provider,
                            %error,
                            age_secs = now.saturating_sub(state.fetched_at).as_secs(),
                            retry_in_secs = self.policy.retry_backoff.as_secs_f64(),
                            "refresh failed; serving the last good copy"
                        );
                        state.last_error = None;
                        drop(state);
                        record::snapshot_stale_served(&self.provider);
                        Ok(stale)
                    }
                    _ => {
                        // A permanent refusal (revoked access, a deleted secret) or a copy
                        // too old to trust: the copy is dropped, so a later network blip
                        // cannot bring it back.
                        state.value = None;
                        state.last_error = Some(error.clone());
                        Err(error)
                    }
                }
            }
        }
    }

    /// Forgets the copy and any remembered failure: the next [`get`](Self::get) fetches.
    /// For writes through the provider and for an explicit refresh.
    pub fn invalidate(&self) {
        let mut state = self.lock();
        state.value = None;
        state.retry_at = None;
        state.last_error = None;
        state.generation = state.generation.wrapping_add(1);
    }

    /// How long what [`get`](Self::get) returns now stays valid: the time left of a fresh
    /// copy, or of the backoff while a stale copy or a failure is served; zero when there is
    /// nothing (the next `get` fetches). Providers answer
    /// [`SecretProvider::freshness`](crate::SecretProvider::freshness) with
    /// `Some(snapshot.freshness())`: an expired copy is worth zero, not "no opinion" (which
    /// would let the manager keep it for its own TTL).
    pub fn freshness(&self) -> Duration {
        let now = self.clock.now();
        let state = self.lock();
        let fresh_until = state
            .value
            .as_ref()
            .map(|_| state.fetched_at.saturating_add(self.policy.ttl))
            .filter(|until| now < *until);
        fresh_until
            .or(state.retry_at.filter(|until| now < *until))
            .map_or(Duration::ZERO, |until| until - now)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::{ErrorKind, ManualClock};

    const TTL: Duration = Duration::from_secs(300);
    const BACKOFF: Duration = Duration::from_secs(5);

    fn snapshot() -> (Snapshot<u32>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        let policy = SnapshotPolicy {
            ttl: TTL,
            serve_stale: true,
            retry_backoff: BACKOFF,
            max_stale: Duration::from_secs(3600),
        };
        (
            Snapshot::new("test", policy).with_clock(clock.clone()),
            clock,
        )
    }

    fn failure(kind: ErrorKind) -> ProviderError {
        ProviderError::new("test", kind, "simulated")
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn one_fetch_per_ttl_window() {
        let (s, clock) = snapshot();
        rt().block_on(async {
            for n in 0..100 {
                let v = s.get(|| async move { Ok(n) }).await.unwrap();
                assert_eq!(*v, 0);
            }
            assert_eq!(s.freshness(), TTL);
            clock.advance(TTL - Duration::from_secs(1));
            assert_eq!(s.freshness(), Duration::from_secs(1));
            assert_eq!(*s.get(|| async { Ok(7) }).await.unwrap(), 0);
            clock.advance(Duration::from_secs(1));
            assert_eq!(s.freshness(), Duration::ZERO);
            assert_eq!(*s.get(|| async { Ok(7) }).await.unwrap(), 7);
        });
        assert_eq!(s.fetches(), 2);
    }

    #[test]
    fn concurrent_cold_lookups_share_one_fetch() {
        let (s, _clock) = snapshot();
        let s = Arc::new(s);
        let calls = Arc::new(AtomicUsize::new(0));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let tasks: Vec<_> = (0..32)
                .map(|_| {
                    let (s, calls) = (Arc::clone(&s), Arc::clone(&calls));
                    tokio::spawn(async move {
                        s.get(|| async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            // Long enough for every task to arrive while this one fetches.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok(42)
                        })
                        .await
                    })
                })
                .collect();
            for t in tasks {
                assert_eq!(*t.await.unwrap().unwrap(), 42);
            }
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(s.fetches(), 1);
    }

    #[test]
    fn transient_failures_serve_the_stale_copy_and_back_off() {
        let (s, clock) = snapshot();
        rt().block_on(async {
            s.get(|| async { Ok(1) }).await.unwrap();
            clock.advance(TTL);
            let v = s
                .get(|| async { Err(failure(ErrorKind::Unavailable)) })
                .await;
            assert_eq!(*v.unwrap(), 1);
            assert_eq!(s.freshness(), BACKOFF);
            // Within the backoff the backend is not asked.
            let v = s
                .get(|| async { panic!("fetched during the backoff") })
                .await;
            assert_eq!(*v.unwrap(), 1);
            // After it, the next lookup retries and recovers.
            clock.advance(BACKOFF);
            assert_eq!(*s.get(|| async { Ok(2) }).await.unwrap(), 2);
        });
        assert_eq!(s.fetches(), 3);
    }

    #[test]
    fn permanent_failures_are_errors_and_are_repeated_during_the_backoff() {
        let (s, clock) = snapshot();
        rt().block_on(async {
            s.get(|| async { Ok(1) }).await.unwrap();
            clock.advance(TTL);
            let e = s
                .get(|| async { Err(failure(ErrorKind::PermissionDenied)) })
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::PermissionDenied);
            let e = s
                .get(|| async { panic!("fetched during the backoff") })
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::PermissionDenied);
            clock.advance(BACKOFF);
            assert_eq!(*s.get(|| async { Ok(3) }).await.unwrap(), 3);
        });
    }

    #[test]
    fn without_a_copy_or_with_stale_serving_off_a_transient_failure_is_an_error() {
        let (s, clock) = snapshot();
        rt().block_on(async {
            let e = s.get(|| async { Err(failure(ErrorKind::Timeout)) }).await;
            assert_eq!(e.unwrap_err().kind(), ErrorKind::Timeout);
        });
        let strict = Snapshot::new(
            "strict",
            SnapshotPolicy {
                serve_stale: false,
                ..SnapshotPolicy::default()
            },
        )
        .with_clock(clock.clone());
        rt().block_on(async {
            strict.get(|| async { Ok(1u8) }).await.unwrap();
            clock.advance(Duration::from_secs(300));
            let e = strict
                .get(|| async { Err(failure(ErrorKind::Throttled)) })
                .await;
            assert_eq!(e.unwrap_err().kind(), ErrorKind::Throttled);
        });
    }

    #[test]
    fn refresh_fetches_within_the_ttl_and_keeps_the_copy_on_a_transient_failure() {
        let (s, _clock) = snapshot();
        rt().block_on(async {
            s.get(|| async { Ok(1) }).await.unwrap();
            assert_eq!(*s.refresh(|| async { Ok(2) }).await.unwrap(), 2);
            assert_eq!(*s.get(|| async { Ok(3) }).await.unwrap(), 2);
            let v = s
                .refresh(|| async { Err(failure(ErrorKind::Unavailable)) })
                .await;
            assert_eq!(*v.unwrap(), 2);
            let e = s
                .refresh(|| async { Err(failure(ErrorKind::NotFound)) })
                .await;
            assert_eq!(e.unwrap_err().kind(), ErrorKind::NotFound);
        });
        assert_eq!(s.fetches(), 4);
    }

    #[test]
    fn a_fetch_that_started_before_an_invalidation_stores_nothing() {
        let (s, _clock) = snapshot();
        rt().block_on(async {
            let fetched = s.get(|| async {
                // The write lands (and invalidates) while this read is on the wire.
                s.invalidate();
                Ok(1)
            });
            assert_eq!(
                *fetched.await.unwrap(),
                1,
                "the caller still gets its answer"
            );
            assert_eq!(s.freshness(), Duration::ZERO, "but it is not kept");
            assert_eq!(*s.get(|| async { Ok(2) }).await.unwrap(), 2);
        });
    }

    #[test]
    fn a_permanent_refusal_drops_the_copy_for_good() {
        let (s, clock) = snapshot();
        rt().block_on(async {
            s.get(|| async { Ok(1) }).await.unwrap();
            clock.advance(TTL);
            let e = s
                .get(|| async { Err(failure(ErrorKind::PermissionDenied)) })
                .await;
            assert_eq!(e.unwrap_err().kind(), ErrorKind::PermissionDenied);
            // A network blip after the backoff must not bring the revoked copy back.
            clock.advance(BACKOFF);
            let e = s
                .get(|| async { Err(failure(ErrorKind::Unavailable)) })
                .await;
            assert_eq!(e.unwrap_err().kind(), ErrorKind::Unavailable);
        });
    }

    #[test]
    fn a_copy_older_than_the_stale_limit_is_not_served() {
        let (s, clock) = snapshot();
        rt().block_on(async {
            s.get(|| async { Ok(1) }).await.unwrap();
            clock.advance(Duration::from_secs(3600));
            let v = s
                .get(|| async { Err(failure(ErrorKind::Unavailable)) })
                .await;
            assert_eq!(*v.unwrap(), 1, "an hour old: still served");
            clock.advance(BACKOFF);
            let e = s
                .get(|| async { Err(failure(ErrorKind::Unavailable)) })
                .await;
            assert_eq!(e.unwrap_err().kind(), ErrorKind::Unavailable, "too old now");
        });
    }

    #[test]
    fn invalidate_forces_the_next_fetch() {
        let (s, _clock) = snapshot();
        rt().block_on(async {
            s.get(|| async { Ok(1) }).await.unwrap();
            s.invalidate();
            assert_eq!(s.freshness(), Duration::ZERO);
            assert_eq!(*s.get(|| async { Ok(2) }).await.unwrap(), 2);
        });
    }

    #[test]
    fn a_cancelled_fetch_lets_the_next_caller_fetch() {
        let (s, _clock) = snapshot();
        rt().block_on(async {
            let pending = s.get(std::future::pending::<Result<u32, ProviderError>>);
            // Poll it once (it takes the refresh lock), then drop it.
            assert!(
                tokio::time::timeout(Duration::from_millis(10), pending)
                    .await
                    .is_err()
            );
            assert_eq!(*s.get(|| async { Ok(5) }).await.unwrap(), 5);
        });
    }
}
