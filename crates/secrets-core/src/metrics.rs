//! Names of the metrics the manager and [`Snapshot`](crate::Snapshot) export through the
//! [`metrics`](https://docs.rs/metrics) facade (feature `metrics`). No exporter is included:
//! the application installs a recorder (Prometheus, statsd, ...) and these move there.
//!
//! Labels are bounded sets: provider names (those of the chain), operations, outcomes and
//! [`ErrorKind`](crate::ErrorKind)s. Key names are never labels (an application may look up
//! any number of keys, and a key name can tell more than it should); values never appear at
//! all. The manager's value cache exports the counters of `ttl_cache::metrics` with the label
//! `cache = "secrets"` ([`VALUE_CACHE`]).

/// `secrets_lookups_total{outcome}`: lookups through the manager (served from its cache or
/// not); `outcome` is `found`, `not_found` or `error`.
pub const LOOKUPS: &str = "secrets_lookups_total";
/// `secrets_provider_lookups_total{provider, outcome}`: providers asked for a key during a
/// walk of the chain; `outcome` is `found`, `not_found`, `error` or `skipped` (the provider
/// said it is not available).
pub const PROVIDER_LOOKUPS: &str = "secrets_provider_lookups_total";
/// `secrets_provider_latency_seconds{provider, op}` (histogram): how long a provider call
/// took; `op` is `get`, `set`, `delete` or `health`.
pub const PROVIDER_LATENCY: &str = "secrets_provider_latency_seconds";
/// `secrets_provider_errors_total{provider, op, kind}`: failed provider calls by
/// [`ErrorKind`](crate::ErrorKind) (`kind` in snake case: `not_found`, `permission_denied`,
/// `unavailable`, `timeout`, `throttled`, `malformed`, `invalid_value`, `io`,
/// `misconfigured`, `read_only`, `conflict`).
pub const PROVIDER_ERRORS: &str = "secrets_provider_errors_total";
/// `secrets_snapshot_fetches_total{provider, outcome}`: fetches of a remote object by a
/// [`Snapshot`](crate::Snapshot); `outcome` is `ok` or `error`.
pub const SNAPSHOT_FETCHES: &str = "secrets_snapshot_fetches_total";
/// `secrets_snapshot_fetch_seconds{provider}` (histogram): how long those fetches took.
pub const SNAPSHOT_FETCH_LATENCY: &str = "secrets_snapshot_fetch_seconds";
/// `secrets_snapshot_stale_served_total{provider}`: refreshes that failed transiently and
/// served the last good copy instead.
pub const SNAPSHOT_STALE_SERVED: &str = "secrets_snapshot_stale_served_total";
/// The `cache` label of the manager's value cache in `ttl_cache`'s counters
/// (`cache_hits_total{cache="secrets"}`, `cache_misses_total`, `cache_evictions_total`, ...).
pub const VALUE_CACHE: &str = "secrets";

/// Registers descriptions and units of these metrics (and the cache counters) with the
/// installed recorder; optional, for exporters that print help texts.
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(LOOKUPS, "Lookups through the secrets manager, by outcome");
    describe_counter!(PROVIDER_LOOKUPS, "Providers asked for a key, by outcome");
    describe_histogram!(
        PROVIDER_LATENCY,
        Unit::Seconds,
        "Duration of provider calls"
    );
    describe_counter!(PROVIDER_ERRORS, "Failed provider calls, by error kind");
    describe_counter!(SNAPSHOT_FETCHES, "Fetches of a remote secret object");
    describe_histogram!(
        SNAPSHOT_FETCH_LATENCY,
        Unit::Seconds,
        "Duration of fetches of a remote secret object"
    );
    describe_counter!(
        SNAPSHOT_STALE_SERVED,
        "Failed refreshes answered with the last good copy"
    );
    ttl_cache::metrics::describe();
}

/// The recording side; every function is empty without the feature.
pub(crate) mod record {
    use std::time::Duration;

    #[cfg(feature = "metrics")]
    use crate::ErrorKind;
    use crate::ProviderError;

    /// Stable label value of an error kind.
    #[cfg(feature = "metrics")]
    pub(crate) fn kind_label(kind: ErrorKind) -> &'static str {
        match kind {
            ErrorKind::NotFound => "not_found",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Malformed => "malformed",
            ErrorKind::InvalidValue => "invalid_value",
            ErrorKind::Io => "io",
            ErrorKind::Misconfigured => "misconfigured",
            ErrorKind::ReadOnly => "read_only",
            ErrorKind::Conflict => "conflict",
        }
    }

    /// One manager lookup's outcome (`found`, `not_found`, `error`).
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn lookup<T, E>(answer: &Result<Option<T>, E>) {
        // Literal labels: a static key, so counting a cache hit allocates nothing.
        #[cfg(feature = "metrics")]
        match answer {
            Ok(Some(_)) => metrics::counter!(super::LOOKUPS, "outcome" => "found").increment(1),
            Ok(None) => metrics::counter!(super::LOOKUPS, "outcome" => "not_found").increment(1),
            Err(_) => metrics::counter!(super::LOOKUPS, "outcome" => "error").increment(1),
        }
    }

    /// A provider skipped because it is not available.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn provider_skipped(provider: &str) {
        #[cfg(feature = "metrics")]
        metrics::counter!(super::PROVIDER_LOOKUPS, "provider" => provider.to_owned(), "outcome" => "skipped")
            .increment(1);
    }

    /// One provider call: its latency, and its error by kind.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn provider_call(
        provider: &str,
        op: &'static str,
        elapsed: Duration,
        error: Option<&ProviderError>,
    ) {
        #[cfg(feature = "metrics")]
        {
            let provider = provider.to_owned();
            metrics::histogram!(super::PROVIDER_LATENCY, "provider" => provider.clone(), "op" => op)
                .record(elapsed.as_secs_f64());
            if let Some(error) = error {
                metrics::counter!(
                    super::PROVIDER_ERRORS,
                    "provider" => provider,
                    "op" => op,
                    "kind" => kind_label(error.kind())
                )
                .increment(1);
            }
        }
    }

    /// A provider's answer during a walk of the chain.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn provider_lookup(provider: &str, outcome: &'static str) {
        #[cfg(feature = "metrics")]
        metrics::counter!(super::PROVIDER_LOOKUPS, "provider" => provider.to_owned(), "outcome" => outcome)
            .increment(1);
    }

    /// One fetch of a snapshot.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn snapshot_fetch(provider: &str, elapsed: Duration, ok: bool) {
        #[cfg(feature = "metrics")]
        {
            let outcome = if ok { "ok" } else { "error" };
            metrics::counter!(super::SNAPSHOT_FETCHES, "provider" => provider.to_owned(), "outcome" => outcome)
                .increment(1);
            metrics::histogram!(super::SNAPSHOT_FETCH_LATENCY, "provider" => provider.to_owned())
                .record(elapsed.as_secs_f64());
        }
    }

    /// A failed refresh answered with the stale copy.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn snapshot_stale_served(provider: &str) {
        #[cfg(feature = "metrics")]
        metrics::counter!(super::SNAPSHOT_STALE_SERVED, "provider" => provider.to_owned())
            .increment(1);
    }
}
