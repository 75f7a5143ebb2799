//! The [`SecretsManager`]: an ordered chain of providers with provenance and a value cache.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ttl_cache::{CacheStats, TtlCache};

use crate::metrics::record;
use crate::{Clock, ErrorKind, Location, ProviderError, Secret, SecretProvider, SecretsError};

/// How long a resolved value is served from memory unless configured otherwise.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);

/// How long "no provider has this key" is remembered unless configured otherwise: short, so
/// that a secret added later is seen without a restart.
pub const DEFAULT_NEGATIVE_CACHE_TTL: Duration = Duration::from_secs(5);

/// Upper bound of distinct keys kept in the value cache.
const CACHE_MAX_KEYS: usize = 1000;

/// Key of the Replicate API token.
pub const REPLICATE_API_TOKEN: &str = "REPLICATE_API_TOKEN";
/// Key of the Hugging Face token.
pub const HF_TOKEN: &str = "HF_TOKEN";
/// Key of the secret that signs cloud webhooks.
pub const CLOUD_WEBHOOK_SECRET: &str = "CLOUD_WEBHOOK_SECRET";

/// A value together with the provider that served it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The secret.
    pub value: Secret,
    /// Name of the provider that answered (`env`, `file`, ...).
    pub provider: String,
}

/// One provider's answer to a health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderHealth {
    /// Provider name.
    pub provider: String,
    /// What [`SecretProvider::is_available`] said.
    pub available: bool,
    /// Whether [`SecretProvider::health`] succeeded.
    pub reachable: bool,
    /// How long the health check took.
    pub latency: Duration,
    /// The health check's error message, if any (never contains a secret value).
    pub error: Option<String>,
    /// The kind of the health check's error, if any.
    pub error_kind: Option<ErrorKind>,
}

/// Resolves secrets through an ordered chain of providers.
///
/// - The first provider that has the key wins; providers whose
///   [`is_available`](SecretProvider::is_available) is false are skipped.
/// - A failing provider is logged (never with a value) and the walk continues. If no provider
///   has the key and any provider failed, the result is [`SecretsError::ProvidersFailed`]
///   rather than "absent", because the key may live in the provider that failed.
/// - Results are cached in a [`TtlCache`]: found values for [`DEFAULT_CACHE_TTL`], misses for
///   the much shorter [`DEFAULT_NEGATIVE_CACHE_TTL`] (both configurable), so a secret added
///   later is seen within seconds. Failures are never cached. Concurrent lookups of one key
///   walk the chain once.
/// - [`set`](Self::set) and [`delete`](Self::delete) go to the first provider that supports
///   writes, or to the fallback writer; they invalidate the cached key but do not cache the
///   written value, since an earlier provider (say an environment variable) may still win.
///
/// ```
/// use std::sync::Arc;
/// use secrets_core::{SecretsManager, Secret, SecretProvider, ProviderError};
///
/// #[derive(Debug)]
/// struct Fixed;
///
/// #[async_trait::async_trait]
/// impl SecretProvider for Fixed {
///     fn name(&self) -> &str { "fixed" }
///     fn is_available(&self) -> bool { true }
///     async fn get(&self, key: &str) -> Result<Option<Secret>, ProviderError> {
///         Ok((key == "HF_TOKEN").then(|| Secret::new("hf_x")))
///     }
///     async fn health(&self) -> Result<(), ProviderError> { Ok(()) }
/// }
///
/// # tokio_test();
/// # fn tokio_test() {
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// let manager = SecretsManager::builder().provider(Arc::new(Fixed)).build();
/// let found = manager.get_with_source("HF_TOKEN").await.unwrap().unwrap();
/// assert_eq!((found.value.expose(), found.provider.as_str()), ("hf_x", "fixed"));
/// assert!(manager.get("OTHER").await.unwrap().is_none());
/// # });
/// # }
/// ```
pub struct SecretsManager {
    providers: Vec<Arc<dyn SecretProvider>>,
    fallback_writer: Option<Arc<dyn SecretProvider>>,
    /// Key -> the lookup's answer (`None`: no provider had it).
    cache: TtlCache<String, Option<Resolved>>,
}

impl fmt::Debug for SecretsManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsManager")
            .field("providers", &self.provider_names())
            .field(
                "fallback_writer",
                &self.fallback_writer.as_ref().map(|p| p.name().to_owned()),
            )
            .field("cache_ttl", &self.cache.default_ttl())
            .finish()
    }
}

impl SecretsManager {
    /// Starts a builder with no providers.
    pub fn builder() -> SecretsManagerBuilder {
        SecretsManagerBuilder::default()
    }

    /// The providers, in lookup order.
    pub fn providers(&self) -> &[Arc<dyn SecretProvider>] {
        &self.providers
    }

    /// Names of the providers, in lookup order.
    pub fn provider_names(&self) -> Vec<&str> {
        self.providers.iter().map(|p| p.name()).collect()
    }

    /// Looks a key up through the chain.
    pub async fn get(&self, key: &str) -> Result<Option<Secret>, SecretsError> {
        Ok(self.get_with_source(key).await?.map(|r| r.value))
    }

    /// Looks a key up; `default` when no provider has it. Provider failures are still errors.
    pub async fn get_or(
        &self,
        key: &str,
        default: impl Into<Secret>,
    ) -> Result<Secret, SecretsError> {
        Ok(self.get(key).await?.unwrap_or_else(|| default.into()))
    }

    /// Looks a key up and reports which provider served it.
    pub async fn get_with_source(&self, key: &str) -> Result<Option<Resolved>, SecretsError> {
        // A hit costs one map lookup and the clone of the answer: no key allocation, no
        // loader machinery.
        let answer = match self.cache.get_hit(key) {
            Some(answer) => Ok(answer),
            None => {
                self.cache
                    .try_get_or_insert_with_capped_async(key.to_owned(), self.walk(key))
                    .await
            }
        };
        record::lookup(&answer);
        answer
    }

    /// The answer the value cache holds for `key`, without asking any provider: `Some` on a
    /// hit (whose value is `None` for a remembered miss), `None` when the key would have to be
    /// looked up. For callers that can answer a hit without an async runtime (the facade's
    /// blocking API).
    #[inline]
    pub fn cached(&self, key: &str) -> Option<Option<Resolved>> {
        self.cache.get_hit(key)
    }

    /// Asks the providers in order; the first that has the key wins. Also returns how long
    /// the answer may be cached at most: the shortest [`SecretProvider::freshness`] of the
    /// providers asked, since each of their answers shaped it.
    async fn walk(&self, key: &str) -> Result<(Option<Resolved>, Option<Duration>), SecretsError> {
        let mut failures: Vec<ProviderError> = Vec::new();
        let mut cap: Option<Duration> = None;
        for provider in &self.providers {
            if !provider.is_available() {
                tracing::trace!(
                    provider = provider.name(),
                    key,
                    "provider not available; skipped"
                );
                record::provider_skipped(provider.name());
                continue;
            }
            let started = Instant::now();
            let answer = provider.get(key).await;
            record::provider_call(
                provider.name(),
                "get",
                started.elapsed(),
                answer.as_ref().err(),
            );
            record::provider_lookup(
                provider.name(),
                match &answer {
                    Ok(Some(_)) => "found",
                    Ok(None) => "not_found",
                    Err(_) => "error",
                },
            );
            if let Some(fresh) = provider.freshness() {
                cap = Some(cap.map_or(fresh, |c| c.min(fresh)));
            }
            match answer {
                Ok(Some(value)) => {
                    // Earlier failures would otherwise go unseen: the answer may be stale or
                    // come from the wrong place.
                    for error in &failures {
                        tracing::warn!(
                            provider = error.provider(),
                            key,
                            %error,
                            "provider failed; the key was served by a later provider"
                        );
                    }
                    tracing::debug!(provider = provider.name(), key, "secret resolved");
                    let resolved = Resolved {
                        value,
                        provider: provider.name().to_owned(),
                    };
                    return Ok((Some(resolved), cap));
                }
                Ok(None) => {}
                Err(error) => {
                    // Logged once: below when a later provider answers, otherwise the
                    // caller gets it in the error.
                    tracing::debug!(provider = provider.name(), key, %error, "provider failed; trying the next one");
                    failures.push(error);
                }
            }
        }
        if failures.is_empty() {
            tracing::debug!(key, "secret not found in any provider");
            Ok((None, cap))
        } else {
            Err(SecretsError::ProvidersFailed {
                key: key.to_owned(),
                failures,
            })
        }
    }

    /// Where each available provider looks for `key`, in chain order (for "not found"
    /// messages).
    pub fn lookup_locations(&self, key: &str) -> Vec<(&str, Option<Location>)> {
        self.providers
            .iter()
            .map(|p| (p.name(), p.lookup_location(key)))
            .collect()
    }

    /// The provider that [`set`](Self::set) and [`delete`](Self::delete) write to, if any.
    pub fn writer(&self) -> Option<&Arc<dyn SecretProvider>> {
        self.providers
            .iter()
            .find(|p| p.supports_writes())
            .or(self.fallback_writer.as_ref())
    }

    fn writer_for(
        &self,
        operation: &'static str,
        key: &str,
    ) -> Result<&Arc<dyn SecretProvider>, SecretsError> {
        self.writer()
            .ok_or_else(|| SecretsError::NoWritableProvider {
                operation,
                key: key.to_owned(),
            })
    }

    /// The provider of the chain (or the fallback writer) with this name, if it accepts
    /// writes.
    fn named_writer(
        &self,
        name: &str,
        operation: &'static str,
        key: &str,
    ) -> Result<&Arc<dyn SecretProvider>, SecretsError> {
        let provider = self
            .providers
            .iter()
            .chain(self.fallback_writer.as_ref())
            .find(|p| p.name() == name)
            .ok_or_else(|| SecretsError::UnknownProvider {
                provider: name.to_owned(),
                configured: self.provider_names().join(", "),
            })?;
        if provider.supports_writes() {
            Ok(provider)
        } else {
            Err(SecretsError::Write(ProviderError::read_only(
                name.to_owned(),
                operation,
                key,
            )))
        }
    }

    /// Stores a value in the writable provider and drops the key from the cache.
    pub async fn set(&self, key: &str, value: impl Into<Secret>) -> Result<(), SecretsError> {
        let writer = self.writer_for("set", key)?;
        self.set_with(writer, key, &value.into()).await
    }

    /// Stores a value in the named provider (`aws`, `vault`, ...) instead of the default
    /// writer, and drops the key from the cache.
    pub async fn set_in(
        &self,
        provider: &str,
        key: &str,
        value: impl Into<Secret>,
    ) -> Result<(), SecretsError> {
        let writer = self.named_writer(provider, "set", key)?;
        self.set_with(writer, key, &value.into()).await
    }

    async fn set_with(
        &self,
        writer: &Arc<dyn SecretProvider>,
        key: &str,
        value: &Secret,
    ) -> Result<(), SecretsError> {
        let started = Instant::now();
        let result = writer.set(key, value).await;
        record::provider_call(
            writer.name(),
            "set",
            started.elapsed(),
            result.as_ref().err(),
        );
        self.cache.remove(key);
        result.map_err(SecretsError::Write)?;
        tracing::info!(provider = writer.name(), key, "secret stored");
        Ok(())
    }

    /// Removes a key from the writable provider; `Ok(true)` when it existed there.
    pub async fn delete(&self, key: &str) -> Result<bool, SecretsError> {
        let writer = self.writer_for("delete", key)?;
        self.delete_with(writer, key).await
    }

    /// Removes a key from the named provider; `Ok(true)` when it existed there.
    pub async fn delete_in(&self, provider: &str, key: &str) -> Result<bool, SecretsError> {
        let writer = self.named_writer(provider, "delete", key)?;
        self.delete_with(writer, key).await
    }

    async fn delete_with(
        &self,
        writer: &Arc<dyn SecretProvider>,
        key: &str,
    ) -> Result<bool, SecretsError> {
        let started = Instant::now();
        let result = writer.delete(key).await;
        record::provider_call(
            writer.name(),
            "delete",
            started.elapsed(),
            result.as_ref().err(),
        );
        self.cache.remove(key);
        let existed = result.map_err(SecretsError::Write)?;
        tracing::info!(provider = writer.name(), key, existed, "secret deleted");
        Ok(existed)
    }

    /// Asks every provider for a real round trip, one after another, and reports the result.
    pub async fn health_report(&self) -> Vec<ProviderHealth> {
        let mut report = Vec::with_capacity(self.providers.len());
        for provider in &self.providers {
            let available = provider.is_available();
            let started = Instant::now();
            let result = provider.health().await;
            let latency = started.elapsed();
            record::provider_call(provider.name(), "health", latency, result.as_ref().err());
            report.push(ProviderHealth {
                provider: provider.name().to_owned(),
                available,
                reachable: result.is_ok(),
                latency,
                error_kind: result.as_ref().err().map(ProviderError::kind),
                error: result.err().map(|e| e.to_string()),
            });
        }
        report
    }

    /// Forgets every cached answer (found values and remembered misses); returns how many.
    pub fn clear_cache(&self) -> usize {
        self.cache.clear()
    }

    /// Statistics of the value cache.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// The Hugging Face token ([`HF_TOKEN`]).
    pub async fn hf_token(&self) -> Result<Option<Secret>, SecretsError> {
        self.get(HF_TOKEN).await
    }

    /// The Replicate API token ([`REPLICATE_API_TOKEN`]).
    pub async fn replicate_token(&self) -> Result<Option<Secret>, SecretsError> {
        self.get(REPLICATE_API_TOKEN).await
    }

    /// The webhook signing secret ([`CLOUD_WEBHOOK_SECRET`]).
    pub async fn webhook_secret(&self) -> Result<Option<Secret>, SecretsError> {
        self.get(CLOUD_WEBHOOK_SECRET).await
    }

    /// Stores the Replicate API token.
    pub async fn set_replicate_token(&self, value: impl Into<Secret>) -> Result<(), SecretsError> {
        self.set(REPLICATE_API_TOKEN, value).await
    }
}

/// Builds a [`SecretsManager`].
#[derive(Debug)]
pub struct SecretsManagerBuilder {
    providers: Vec<Arc<dyn SecretProvider>>,
    fallback_writer: Option<Arc<dyn SecretProvider>>,
    cache_ttl: Duration,
    negative_cache_ttl: Duration,
    clock: Option<Arc<dyn Clock>>,
}

impl Default for SecretsManagerBuilder {
    fn default() -> Self {
        Self {
            providers: Vec::new(),
            fallback_writer: None,
            cache_ttl: DEFAULT_CACHE_TTL,
            negative_cache_ttl: DEFAULT_NEGATIVE_CACHE_TTL,
            clock: None,
        }
    }
}

impl SecretsManagerBuilder {
    /// Appends a provider; lookups ask providers in the order they were added.
    pub fn provider(mut self, provider: Arc<dyn SecretProvider>) -> Self {
        self.providers.push(provider);
        self
    }

    /// The provider that receives writes when no provider in the chain supports them.
    pub fn fallback_writer(mut self, provider: Arc<dyn SecretProvider>) -> Self {
        self.fallback_writer = Some(provider);
        self
    }

    /// How long found values are served from memory; zero disables caching altogether.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// How long a miss (no provider has the key) is remembered; zero disables that.
    pub fn negative_cache_ttl(mut self, ttl: Duration) -> Self {
        self.negative_cache_ttl = ttl;
        self
    }

    /// The clock used for cache expiry (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Builds the manager.
    pub fn build(self) -> SecretsManager {
        let negative = if self.cache_ttl.is_zero() {
            Duration::ZERO
        } else {
            self.negative_cache_ttl
        };
        let mut cache = TtlCache::builder()
            .max_size(CACHE_MAX_KEYS)
            .default_ttl(self.cache_ttl)
            .negative_ttl(negative);
        if let Some(clock) = self.clock {
            cache = cache.clock(clock);
        }
        #[cfg(feature = "metrics")]
        {
            cache = cache.metrics(crate::metrics::VALUE_CACHE);
        }
        SecretsManager {
            providers: self.providers,
            fallback_writer: self.fallback_writer,
            cache: cache.build(),
        }
    }
}
