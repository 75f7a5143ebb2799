//! [`AwsSecretsManagerProvider`]: lookups served from one fetched copy of the secret, health
//! checks, and one-key writes by read-modify-write.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{Intercept, SharedInterceptor};
use aws_sdk_secretsmanager::primitives::Blob;
use aws_types::SdkConfig;
use secrets_core::{
    Clock, ErrorKind, Location, ProviderError, Secret, SecretProvider, Snapshot, SnapshotPolicy,
    async_trait,
};
use zeroize::Zeroizing;

use crate::document::{self, Document, Encoding};
use crate::settings::AWSCURRENT;
use crate::{AwsSettings, PROVIDER_NAME, VersionSelector, client, errors};

/// The largest secret value Secrets Manager stores, in bytes.
pub const MAX_SECRET_SIZE: usize = 65_536;

/// How many times a write is re-applied on top of a concurrent write it raced with.
const WRITE_ROUNDS: usize = 3;

/// Reads keys from one AWS Secrets Manager secret holding a JSON object of key -> string.
///
/// - **One call per TTL**: the whole object is fetched with one `GetSecretValue` and served
///   for the TTL (300 s by default); any number of keys and lookups cost one call per TTL
///   window, and concurrent cold lookups share it. [`freshness`](SecretProvider::freshness)
///   tells the manager how long the copy has left, so a changed value is seen within one TTL.
/// - **Outages**: when a refresh fails with a network error, a timeout, throttling or a 5xx,
///   the last good copy is served with a warning, and AWS is asked again only after a short
///   backoff (both configurable). Other failures are errors.
/// - **Versions**: `AWSCURRENT` unless a stage or a version id is configured; the stage is
///   always sent explicitly.
/// - **Values**: strings are secrets, `null` is a missing key, any other kind is an
///   [`ErrorKind::InvalidValue`] error naming the key. A `SecretBinary` must hold the same
///   JSON as UTF-8.
/// - **Writes** (`set`/`delete` of one key, for a provider reading `AWSCURRENT`): read the
///   current version, edit the one key, `PutSecretValue` the result as a new version under
///   the [`PENDING_STAGE`] label with a fresh `ClientRequestToken` (so the SDK's retries are
///   idempotent), then move `AWSCURRENT` to it with `UpdateSecretVersionStage` *from the
///   version read*, which AWS refuses if `AWSCURRENT` moved meanwhile: a compare-and-swap. On
///   a conflict the write starts over from a fresh read (3 rounds, then
///   [`ErrorKind::Conflict`]), so concurrent writers of different keys lose nothing.
/// - No error, log line or `Debug` output contains a value; SDK errors are reduced to their
///   code and a fixed description.
///
/// The SDK client is created on first use (the region and credential chains are async).
#[derive(Clone)]
pub struct AwsSecretsManagerProvider {
    inner: Arc<Inner>,
}

struct Inner {
    settings: AwsSettings,
    snapshot: Snapshot<Document>,
    client: tokio::sync::OnceCell<Client>,
    sdk_config: Option<SdkConfig>,
    interceptors: Vec<SharedInterceptor>,
    /// One write at a time from this provider (writes from elsewhere are detected).
    write_lock: tokio::sync::Mutex<()>,
}

impl fmt::Debug for AwsSecretsManagerProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsSecretsManagerProvider")
            .field("settings", &self.inner.settings)
            .field("snapshot", &self.inner.snapshot)
            .field("client_ready", &self.inner.client.initialized())
            .finish_non_exhaustive()
    }
}

/// Builds an [`AwsSecretsManagerProvider`] with a clock, SDK interceptors or an SDK
/// configuration of the caller's.
#[derive(Debug)]
#[must_use]
pub struct AwsProviderBuilder {
    settings: AwsSettings,
    clock: Option<Arc<dyn Clock>>,
    sdk_config: Option<SdkConfig>,
    interceptors: Vec<SharedInterceptor>,
}

impl AwsProviderBuilder {
    /// The clock of the TTL and the backoff (a `ManualClock` in tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Uses this SDK configuration (credentials, region, HTTP client) instead of loading
    /// the default chain. The settings' region, endpoint, timeouts and retries still apply.
    pub fn sdk_config(mut self, config: SdkConfig) -> Self {
        self.sdk_config = Some(config);
        self
    }

    /// Adds an SDK interceptor to every call (metrics, call counting in tests).
    pub fn interceptor(mut self, interceptor: impl Intercept + 'static) -> Self {
        self.interceptors.push(SharedInterceptor::new(interceptor));
        self
    }

    /// Checks the settings and makes the provider (no I/O yet).
    pub fn build(self) -> Result<AwsSecretsManagerProvider, ProviderError> {
        self.settings.validate()?;
        let policy = SnapshotPolicy {
            ttl: self.settings.ttl,
            serve_stale: self.settings.serve_stale,
            retry_backoff: self.settings.retry_backoff,
            ..SnapshotPolicy::default()
        };
        let mut snapshot = Snapshot::new(PROVIDER_NAME, policy);
        if let Some(clock) = self.clock {
            snapshot = snapshot.with_clock(clock);
        }
        Ok(AwsSecretsManagerProvider {
            inner: Arc::new(Inner {
                settings: self.settings,
                snapshot,
                client: tokio::sync::OnceCell::new(),
                sdk_config: self.sdk_config,
                interceptors: self.interceptors,
                write_lock: tokio::sync::Mutex::new(()),
            }),
        })
    }
}

/// A one-key change.
#[derive(Clone, Copy)]
enum Change<'a> {
    Set(&'a Secret),
    Delete,
}

/// The secret's value as read for a write.
struct Current {
    text: Zeroizing<String>,
    encoding: Encoding,
    version_id: Option<String>,
}

/// Which versions carry the `AWSCURRENT` label (moto can leave two).
struct Stages {
    current: Vec<String>,
}

impl AwsSecretsManagerProvider {
    /// A provider for these settings, on the system clock, loading the SDK's default
    /// configuration on first use.
    pub fn new(settings: AwsSettings) -> Result<Self, ProviderError> {
        Self::builder(settings).build()
    }

    /// A builder, for a clock, interceptors or an SDK configuration.
    pub fn builder(settings: AwsSettings) -> AwsProviderBuilder {
        AwsProviderBuilder {
            settings,
            clock: None,
            sdk_config: None,
            interceptors: Vec::new(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &AwsSettings {
        &self.inner.settings
    }

    /// How many times lookups fetched the secret (successfully or not).
    pub fn fetches(&self) -> u64 {
        self.inner.snapshot.fetches()
    }

    /// The SDK client this provider calls, created on first use: loading the SDK's
    /// configuration (region discovery may ask instance metadata) ends with a
    /// [`ErrorKind::Timeout`] error after the settings' operation timeout.
    pub async fn client(&self) -> Result<&Client, ProviderError> {
        let limit = self.inner.settings.operation_timeout;
        tokio::time::timeout(limit, self.client_unbounded())
            .await
            .unwrap_or_else(|_| Err(self.timed_out("loading the AWS configuration", limit)))
    }

    async fn client_unbounded(&self) -> Result<&Client, ProviderError> {
        self.inner
            .client
            .get_or_try_init(|| async {
                let settings = &self.inner.settings;
                let sdk = match &self.inner.sdk_config {
                    Some(sdk) => client::with_capped_http_client(sdk),
                    None => client::load_sdk_config(settings).await,
                };
                client::build_client(&sdk, settings, &self.inner.interceptors)
            })
            .await
    }

    /// The error of a step that did not finish within `limit`.
    fn timed_out(&self, what: &str, limit: Duration) -> ProviderError {
        ProviderError::new(
            PROVIDER_NAME,
            ErrorKind::Timeout,
            format!(
                "{what}: not done within {}, the limit of one lookup (loading the AWS \
                 configuration and credentials, and the call's attempts, all count)",
                shown(limit)
            ),
        )
        .with_location(self.location())
    }

    /// Fetches the secret now, whatever the TTL (lookups then use the new copy). A transient
    /// failure keeps the last good copy, as a refresh after the TTL would.
    pub async fn refresh_now(&self) -> Result<(), ProviderError> {
        self.inner
            .snapshot
            .refresh(|| self.fetch(&self.inner.settings.version))
            .await
            .map(drop)
    }

    fn secret_name(&self) -> &str {
        &self.inner.settings.secret_name
    }

    fn location(&self) -> Location {
        Location::Secret(self.secret_name().to_owned())
    }

    /// One `GetSecretValue` of the selected version, parsed.
    async fn fetch(&self, version: &VersionSelector) -> Result<Document, ProviderError> {
        let current = self.read(version).await?;
        document::parse(&current.text, self.secret_name())
    }

    /// One `GetSecretValue`: the text of the selected version and its id. The first call's
    /// set-up (the SDK's configuration and credentials) and the call share one deadline.
    async fn read(&self, version: &VersionSelector) -> Result<Current, ProviderError> {
        let settings = &self.inner.settings;
        let set_up_now = !self.inner.client.initialized();
        let started = Instant::now();
        let client = self.client().await?;
        let name = self.secret_name();
        let request = client.get_secret_value().secret_id(name);
        // The stage is sent even for AWSCURRENT (moto resolves some stage moves only then).
        let request = match version {
            VersionSelector::Stage(stage) => request.version_stage(stage),
            VersionSelector::Id(id) => request.version_id(id),
        };
        let sent = if set_up_now {
            // The set-up used part of this lookup's limit: the call gets what is left.
            let left = settings.operation_timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(self.timed_out("GetSecretValue", settings.operation_timeout));
            }
            request
                .customize()
                .config_override(
                    aws_sdk_secretsmanager::config::Builder::default()
                        .timeout_config(client::timeouts(settings, left)),
                )
                .send()
                .await
        } else {
            request.send().await
        };
        let mut output = sent.map_err(|e| errors::from_sdk("GetSecretValue", &e, name))?;
        tracing::debug!(
            secret = name,
            version = %version,
            version_id = output.version_id.as_deref().unwrap_or("-"),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            set_up_now,
            "fetched the secret"
        );
        let (text, encoding) = match (output.secret_string.take(), output.secret_binary.take()) {
            (Some(text), _) => (Zeroizing::new(text), Encoding::String),
            (None, Some(blob)) => {
                let bytes = Zeroizing::new(blob.into_inner());
                let text = document::binary_text(&bytes, name)?;
                (Zeroizing::new(text.to_owned()), Encoding::Binary)
            }
            (None, None) => (Zeroizing::new(String::new()), Encoding::String),
        };
        Ok(Current {
            text,
            encoding,
            version_id: output.version_id.take(),
        })
    }

    /// Which versions hold the `AWSCURRENT` label now (`DescribeSecret`).
    async fn stages(&self) -> Result<Stages, ProviderError> {
        let client = self.client().await?;
        let name = self.secret_name();
        let output = client
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| errors::from_sdk("DescribeSecret", &e, name))?;
        let current = output
            .version_ids_to_stages
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, labels)| labels.iter().any(|l| l == AWSCURRENT))
            .map(|(id, _)| id)
            .collect();
        Ok(Stages { current })
    }

    /// The current version for a write; a secret that exists without any version yet reads
    /// as an empty object.
    async fn read_for_write(&self) -> Result<Current, ProviderError> {
        match self.read(&VersionSelector::default()).await {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let stages = self.stages().await.map_err(|d| {
                    if d.kind() == ErrorKind::NotFound {
                        ProviderError::new(
                            PROVIDER_NAME,
                            ErrorKind::NotFound,
                            "the secret does not exist; writes change a key of an existing \
                             secret (create it first, for example with `aws secretsmanager \
                             create-secret --name NAME --secret-string '{}'`)",
                        )
                        .with_location(self.location())
                    } else {
                        d
                    }
                })?;
                if stages.current.is_empty() {
                    Ok(Current {
                        text: Zeroizing::new(String::new()),
                        encoding: Encoding::String,
                        version_id: None,
                    })
                } else {
                    Err(e)
                }
            }
            other => other,
        }
    }

    /// `PutSecretValue` of a new version carrying `stage` (`AWSCURRENT` when `None`), with
    /// a fresh request token.
    async fn put(
        &self,
        text: &str,
        encoding: Encoding,
        stage: Option<&str>,
    ) -> Result<String, ProviderError> {
        let client = self.client().await?;
        let name = self.secret_name();
        let request = client
            .put_secret_value()
            .secret_id(name)
            .client_request_token(request_token()?)
            .set_version_stages(stage.map(|s| vec![s.to_owned()]));
        let request = match encoding {
            Encoding::String => request.secret_string(text),
            Encoding::Binary => request.secret_binary(Blob::new(text.as_bytes())),
        };
        let output = request
            .send()
            .await
            .map_err(|e| errors::from_sdk("PutSecretValue", &e, name))?;
        output.version_id.ok_or_else(|| {
            ProviderError::new(
                PROVIDER_NAME,
                ErrorKind::Unavailable,
                "PutSecretValue: the answer names no version id",
            )
            .with_location(self.location())
        })
    }

    fn check_writable(&self, operation: &'static str, key: &str) -> Result<(), ProviderError> {
        if self.supports_writes() {
            return Ok(());
        }
        Err(ProviderError::new(
            PROVIDER_NAME,
            ErrorKind::ReadOnly,
            format!(
                "this provider reads {} of the secret; writes replace AWSCURRENT and would not \
                 be seen here, so {operation} needs a provider reading AWSCURRENT",
                self.inner.settings.version
            ),
        )
        .with_key(key)
        .with_location(self.location()))
    }

    async fn write(
        &self,
        operation: &'static str,
        key: &str,
        change: Change<'_>,
    ) -> Result<bool, ProviderError> {
        self.check_writable(operation, key)?;
        let _one_writer = self.inner.write_lock.lock().await;
        let result = self.write_locked(key, change).await;
        // Whatever happened, the next lookup reads what AWS has now.
        self.inner.snapshot.invalidate();
        result.map_err(|e| {
            if e.key().is_none() {
                e.with_key(key)
            } else {
                e
            }
        })
    }

    async fn write_locked(&self, key: &str, change: Change<'_>) -> Result<bool, ProviderError> {
        let name = self.secret_name();
        for round in 1..=WRITE_ROUNDS {
            let current = self.read_for_write().await?;
            let mut map = document::parse_for_edit(&current.text, name)?;
            let existed = match change {
                Change::Set(value) => {
                    let new = serde_json::Value::String(value.expose().to_owned());
                    if map.get(key) == Some(&new) {
                        return Ok(true);
                    }
                    map.insert(key.to_owned(), new).is_some()
                }
                Change::Delete => {
                    if map.shift_remove(key).is_none() {
                        return Ok(false);
                    }
                    true
                }
            };
            let text = document::serialize(&map);
            if text.len() > MAX_SECRET_SIZE {
                return Err(ProviderError::new(
                    PROVIDER_NAME,
                    ErrorKind::InvalidValue,
                    format!(
                        "the secret would hold {} bytes; Secrets Manager stores at most \
                         {MAX_SECRET_SIZE}",
                        text.len()
                    ),
                )
                .with_location(self.location()));
            }
            let Some(read_version) = current.version_id else {
                // The secret has no version yet: nothing to compare with, the first wins.
                self.put(&text, current.encoding, None).await?;
                return Ok(existed);
            };
            // The new version is written under a label of ours, then AWSCURRENT is moved to
            // it from the version read, which fails if AWSCURRENT has moved meanwhile: a
            // compare-and-swap, so a concurrent change is never overwritten.
            let written = self
                .put(&text, current.encoding, Some(PENDING_STAGE))
                .await?;
            let swapped = self.move_current(&read_version, &written).await;
            self.drop_pending_label(&written).await;
            match swapped {
                Ok(()) => {
                    tracing::debug!(secret = name, key, version_id = %written, "secret key written");
                    return Ok(existed);
                }
                Err(e) if e.kind() == ErrorKind::Conflict => {
                    tracing::info!(
                        secret = name,
                        key,
                        round,
                        "the secret changed during the write; applying the change again"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        Err(ProviderError::new(
            PROVIDER_NAME,
            ErrorKind::Conflict,
            format!(
                "the secret changed between reading and writing it, {WRITE_ROUNDS} times in a \
                 row; nothing of this write is current; write again"
            ),
        )
        .with_location(self.location()))
    }

    /// Moves `AWSCURRENT` from `from` to `to`; [`ErrorKind::Conflict`] when `from` no longer
    /// carries it.
    async fn move_current(&self, from: &str, to: &str) -> Result<(), ProviderError> {
        let client = self.client().await?;
        let name = self.secret_name();
        let result = client
            .update_secret_version_stage()
            .secret_id(name)
            .version_stage(AWSCURRENT)
            .remove_from_version_id(from)
            .move_to_version_id(to)
            .send()
            .await;
        let Err(e) = result else {
            return Ok(());
        };
        if e.as_service_error()
            .is_some_and(|s| s.is_invalid_parameter_exception())
        {
            return Err(ProviderError::new(
                PROVIDER_NAME,
                ErrorKind::Conflict,
                format!("AWSCURRENT is no longer on version {from}, the version read"),
            )
            .with_location(self.location()));
        }
        Err(errors::from_sdk("UpdateSecretVersionStage", &e, name))
    }

    /// Removes our label from a version we wrote (best effort: a concurrent writer's put may
    /// have moved it already, and a left-over label is harmless).
    async fn drop_pending_label(&self, version: &str) {
        let Ok(client) = self.client().await else {
            return;
        };
        let name = self.secret_name();
        let result = client
            .update_secret_version_stage()
            .secret_id(name)
            .version_stage(PENDING_STAGE)
            .remove_from_version_id(version)
            .send()
            .await;
        if let Err(e) = result {
            let error = errors::from_sdk("UpdateSecretVersionStage", &e, name);
            tracing::debug!(secret = name, %error, "could not remove the pending label");
        }
    }
}

/// A duration as a person reads it: `5 s`, `1.5 s`, `700 ms`.
fn shown(duration: Duration) -> String {
    if duration.subsec_millis() == 0 && duration.as_secs() > 0 {
        format!("{} s", duration.as_secs())
    } else if duration >= Duration::from_secs(1) {
        format!("{:.1} s", duration.as_secs_f64())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

/// The label a write's new version carries until `AWSCURRENT` is moved to it.
pub const PENDING_STAGE: &str = "SECRETS-PENDING";

/// A fresh `ClientRequestToken` (a random UUID): it becomes the new version's id, and the
/// SDK's retries of the same put reuse it, so a retried put creates no second version.
fn request_token() -> Result<String, ProviderError> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut b).map_err(|_| {
        ProviderError::new(
            PROVIDER_NAME,
            ErrorKind::Io,
            "the system random generator failed",
        )
    })?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

#[async_trait]
impl SecretProvider for AwsSecretsManagerProvider {
    fn name(&self) -> &str {
        PROVIDER_NAME
    }

    /// True: the provider exists only with a secret name.
    fn is_available(&self) -> bool {
        true
    }

    async fn get(&self, key: &str) -> Result<Option<Secret>, ProviderError> {
        let version = &self.inner.settings.version;
        let document = self.inner.snapshot.get(|| self.fetch(version)).await?;
        document.lookup(key, self.secret_name())
    }

    /// A real `GetSecretValue` of the configured version (the copy lookups use is not
    /// touched), parsed, so a secret that is not a JSON object is reported too.
    async fn health(&self) -> Result<(), ProviderError> {
        self.fetch(&self.inner.settings.version).await.map(drop)
    }

    /// The time left of the copy lookups are served from; zero when it has expired (or
    /// the TTL is zero), so the manager never keeps an answer longer than this copy.
    fn freshness(&self) -> Option<Duration> {
        Some(self.inner.snapshot.freshness())
    }

    /// True when the provider reads `AWSCURRENT`, the version writes replace.
    fn supports_writes(&self) -> bool {
        self.inner.settings.version.is_current()
    }

    async fn set(&self, key: &str, value: &Secret) -> Result<(), ProviderError> {
        self.write("set", key, Change::Set(value)).await.map(drop)
    }

    async fn delete(&self, key: &str) -> Result<bool, ProviderError> {
        self.write("delete", key, Change::Delete).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_tokens_are_random_uuids_of_the_accepted_length() {
        let a = request_token().unwrap();
        let b = request_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!((32..=64).contains(&a.len()));
    }

    #[test]
    fn durations_are_shown_in_readable_units() {
        assert_eq!(shown(Duration::from_secs(5)), "5 s");
        assert_eq!(shown(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(shown(Duration::from_millis(700)), "700 ms");
    }

    #[test]
    fn pinned_versions_are_read_only_and_settings_are_checked() {
        let p =
            AwsSecretsManagerProvider::new(AwsSettings::new("s").with_version_stage("AWSPREVIOUS"))
                .unwrap();
        assert!(!p.supports_writes());
        let e = p.check_writable("set", "K").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ReadOnly);
        assert!(e.to_string().contains("stage AWSPREVIOUS"), "{e}");
        assert!(AwsSecretsManagerProvider::new(AwsSettings::new("")).is_err());
        let p = AwsSecretsManagerProvider::new(AwsSettings::new("s")).unwrap();
        assert!(p.supports_writes() && p.is_available());
        assert_eq!(p.freshness(), Some(std::time::Duration::ZERO));
        let shown = format!("{p:?}");
        assert!(shown.contains("client_ready: false"), "{shown}");
    }
}
