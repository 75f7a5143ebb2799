//! [`AwsSecretsManagerProvider`]: lookups served from one fetched copy of the secret, health
//! checks, and one-key writes by read-modify-write.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

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
use crate::settings::{AWSCURRENT, AWSPREVIOUS};
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
/// - **Writes** (`set`/`delete` of one key, reading `AWSCURRENT` only): read, edit, check that
///   nobody replaced the version read, `PutSecretValue` with a fresh `ClientRequestToken` (so
///   the SDK's retries are idempotent), then check again: a write that raced with another is
///   re-applied on top of it, so concurrent writers of different keys lose nothing.
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

/// Which versions carry the `AWSCURRENT` and `AWSPREVIOUS` labels.
struct Stages {
    current: Vec<String>,
    previous: Option<String>,
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

    /// The SDK client this provider calls, created on first use.
    pub async fn client(&self) -> Result<&Client, ProviderError> {
        self.inner
            .client
            .get_or_try_init(|| async {
                let settings = &self.inner.settings;
                let sdk = match &self.inner.sdk_config {
                    Some(sdk) => sdk.clone(),
                    None => client::load_sdk_config(settings).await,
                };
                client::build_client(&sdk, settings, &self.inner.interceptors)
            })
            .await
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

    /// One `GetSecretValue`: the text of the selected version and its id.
    async fn read(&self, version: &VersionSelector) -> Result<Current, ProviderError> {
        let client = self.client().await?;
        let name = self.secret_name();
        let request = client.get_secret_value().secret_id(name);
        // The stage is sent even for AWSCURRENT (moto resolves some stage moves only then).
        let request = match version {
            VersionSelector::Stage(stage) => request.version_stage(stage),
            VersionSelector::Id(id) => request.version_id(id),
        };
        let started = Instant::now();
        let mut output = request
            .send()
            .await
            .map_err(|e| errors::from_sdk("GetSecretValue", &e, name))?;
        tracing::debug!(
            secret = name,
            version = %version,
            version_id = output.version_id.as_deref().unwrap_or("-"),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
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

    /// Which versions hold the `AWSCURRENT` and `AWSPREVIOUS` labels now.
    async fn stages(&self) -> Result<Stages, ProviderError> {
        let client = self.client().await?;
        let name = self.secret_name();
        let output = client
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| errors::from_sdk("DescribeSecret", &e, name))?;
        let mut stages = Stages {
            current: Vec::new(),
            previous: None,
        };
        for (id, labels) in output.version_ids_to_stages.unwrap_or_default() {
            if labels.iter().any(|l| l == AWSPREVIOUS) {
                stages.previous = Some(id.clone());
            }
            if labels.iter().any(|l| l == AWSCURRENT) {
                stages.current.push(id);
            }
        }
        Ok(stages)
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

    async fn put(&self, text: &str, encoding: Encoding) -> Result<String, ProviderError> {
        let client = self.client().await?;
        let name = self.secret_name();
        let request = client
            .put_secret_value()
            .secret_id(name)
            .client_request_token(request_token()?);
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
        // The version the next put must replace, and the text to apply the change to.
        let mut current = self.read_for_write().await?;
        let mut expected = current.version_id.clone();
        let mut existed = None;
        for round in 1..=WRITE_ROUNDS {
            let mut map = document::parse_for_edit(&current.text, name)?;
            let had_key = match change {
                Change::Set(value) => {
                    let new = serde_json::Value::String(value.expose().to_owned());
                    let same = map.get(key) == Some(&new);
                    let had = map.insert(key.to_owned(), new).is_some();
                    if same {
                        return Ok(*existed.get_or_insert(had));
                    }
                    had
                }
                Change::Delete => {
                    let had = map.shift_remove(key).is_some();
                    if !had {
                        return Ok(*existed.get_or_insert(false));
                    }
                    had
                }
            };
            let existed = *existed.get_or_insert(had_key);
            let text = document::serialize(&map);
            if text.len() > MAX_SECRET_SIZE {
                return Err(ProviderError::new(
                    PROVIDER_NAME,
                    ErrorKind::InvalidValue,
                    format!(
                        "the secret would hold {} bytes; Secrets Manager stores at most {MAX_SECRET_SIZE}",
                        text.len()
                    ),
                )
                .with_location(self.location()));
            }
            // Nobody may have replaced the version this edit is based on.
            let before = self.stages().await?;
            if !matches_current(&before.current, expected.as_deref()) {
                return Err(self.conflict(expected.as_deref(), &before.current));
            }
            let written = self.put(&text, current.encoding).await?;
            let after = self.stages().await?;
            if !after.current.contains(&written) {
                // A later write replaced ours; it was based on ours or will merge onto it.
                tracing::info!(
                    secret = name,
                    key,
                    "secret key written; a later write followed"
                );
                return Ok(existed);
            }
            if after.previous.as_deref() == expected.as_deref() || expected.is_none() {
                tracing::debug!(secret = name, key, version_id = %written, "secret key written");
                return Ok(existed);
            }
            // Another write landed between the check and the put: ours replaced it, without
            // its change. Apply ours again on top of that version.
            let Some(overwritten) = after.previous else {
                return Ok(existed);
            };
            tracing::warn!(
                secret = name,
                key,
                round,
                overwritten = %overwritten,
                "a concurrent write landed just before this one; applying the change on top of it"
            );
            current = self.read(&VersionSelector::Id(overwritten)).await?;
            expected = Some(written);
        }
        Err(ProviderError::new(
            PROVIDER_NAME,
            ErrorKind::Conflict,
            format!(
                "the secret kept changing while this write was applied ({WRITE_ROUNDS} rounds); \
                 check its versions and write again"
            ),
        )
        .with_location(self.location()))
    }

    fn conflict(&self, expected: Option<&str>, current: &[String]) -> ProviderError {
        ProviderError::new(
            PROVIDER_NAME,
            ErrorKind::Conflict,
            format!(
                "the secret changed between reading and writing it (read version {}, current \
                 version {}); nothing was written, read it again and retry",
                expected.unwrap_or("(none)"),
                if current.is_empty() {
                    "(none)".to_owned()
                } else {
                    current.join(", ")
                }
            ),
        )
        .with_location(self.location())
    }
}

fn matches_current(current: &[String], expected: Option<&str>) -> bool {
    match expected {
        Some(id) => current.iter().any(|c| c == id),
        None => current.is_empty(),
    }
}

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

    fn freshness(&self) -> Option<std::time::Duration> {
        self.inner.snapshot.freshness()
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
    fn the_current_version_must_be_the_one_read() {
        let ids = vec!["v2".to_owned()];
        assert!(matches_current(&ids, Some("v2")));
        assert!(!matches_current(&ids, Some("v1")));
        assert!(!matches_current(&ids, None));
        assert!(matches_current(&[], None));
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
        assert_eq!(p.freshness(), None);
        let shown = format!("{p:?}");
        assert!(shown.contains("client_ready: false"), "{shown}");
    }
}
