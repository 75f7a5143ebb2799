//! [`VaultProvider`]: the secret at `{mount}/{path}` as one key -> value object, read once per
//! TTL through a [`Snapshot`], written key by key.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, Url};
use secrets_core::{
    Clock, ErrorKind, Location, ProviderError, Secret, SecretProvider, Snapshot, SystemClock,
    async_trait,
};
use serde_json::{Map, Value};

use crate::auth::{Auth, Op};
use crate::http::{Call, Http, Reply, VaultStats, scrub, status_error};
use crate::kv::{self, Entry, KvObject, MountKind, RawObject};
use crate::settings::{CLIENT_TIMEOUT_VAR, KvVersion, PROVIDER_NAME, VaultSettings, path_segments};

/// How many times a KV v2 write is tried when another writer changes the secret between
/// this writer's read and its check-and-set write.
const CAS_ATTEMPTS: usize = 3;

/// Reads (and writes) secrets in HashiCorp Vault or OpenBao over the HTTP API.
///
/// - The secret at `{mount}/{path}` is one object of key -> value; it is read once per TTL
///   (300 s by default) whatever the number of keys and lookups, concurrent first lookups
///   share one read, and when a refresh fails with a transient error (network, timeout,
///   sealed, 5xx, 429) the last copy is served with a warning while the server is asked
///   again only after a backoff. [`freshness`](SecretProvider::freshness) tells the manager
///   how long the copy stays valid, so the two caches never stack.
/// - KV v2 or v1: the mount's version is asked once (`sys/internal/ui/mounts/{mount}`) and
///   remembered. A refused token, a sealed server or a network error is reported as such and
///   never turned into a KV v1 retry or an empty secret.
/// - Nothing stored at the path: every key is absent (a warning names the path). A key
///   whose value is not a string: an [`ErrorKind::InvalidValue`] error for that key.
/// - Writes: `set`/`delete` of one key; on KV v2 with check-and-set on the version just read
///   (a concurrent change is retried, then reported as [`ErrorKind::Conflict`]); on KV v1 a
///   plain write of the whole object (KV v1 cannot detect a concurrent writer).
/// - Auth: see [`VaultAuth`](crate::VaultAuth). A refused request (403) with AppRole causes
///   a new login and one retry, then the error; at most one login per lookup, write or
///   health check, and none for a while after a token fresh from a login was refused (the
///   role's policies do not allow the request). A token a login replaces is revoked.
/// - One deadline, the settings' `timeout`, covers all the requests of a lookup, a write or a
///   health check.
pub struct VaultProvider {
    inner: Arc<Inner>,
}

impl Clone for VaultProvider {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner {
    settings: VaultSettings,
    http: Http,
    auth: Auth,
    mount: Vec<String>,
    path: Vec<String>,
    /// The mount's KV version once known.
    kv: tokio::sync::OnceCell<KnownVersion>,
    snapshot: Snapshot<KvObject>,
    /// Writes of this provider go one at a time (they would only conflict with each other).
    writing: tokio::sync::Mutex<()>,
}

impl fmt::Debug for VaultProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("VaultProvider")
            .field("settings", &inner.settings)
            .field("kv_version", &inner.kv.get().map(|k| k.version))
            .field("auth", &inner.auth)
            .field("snapshot", &inner.snapshot)
            .finish()
    }
}

/// The mount's KV version, and whether the server said it (rather than a configured version
/// it could not confirm, whose answers are then checked for the other version's shape).
#[derive(Debug, Clone, Copy)]
struct KnownVersion {
    version: KvVersion,
    told: bool,
}

/// Whether the server refused the token (or its policies refused the request).
fn is_refusal(reply: &Reply) -> bool {
    matches!(reply.status, 401 | 403)
}

/// What a write does to the object.
enum Change<'a> {
    Set(&'a str, &'a Secret),
    Delete(&'a str),
}

impl Change<'_> {
    /// Applies the change; whether the key existed before.
    fn apply(&self, map: &mut Map<String, Value>) -> bool {
        match self {
            Self::Set(key, value) => map
                .insert((*key).to_owned(), Value::String(value.expose().to_owned()))
                .map(|mut old| scrub(&mut old))
                .is_some(),
            Self::Delete(key) => map.remove(*key).map(|mut old| scrub(&mut old)).is_some(),
        }
    }

    fn key(&self) -> &str {
        match self {
            Self::Set(key, _) | Self::Delete(key) => key,
        }
    }
}

impl VaultProvider {
    /// A provider for these settings, on the system clock. Fails with
    /// [`ErrorKind::Misconfigured`] for an unusable address, mount or path, or a CA file that
    /// cannot be read. No request is made until the first lookup.
    pub fn new(settings: VaultSettings) -> Result<Self, ProviderError> {
        Self::with_clock(settings, Arc::new(SystemClock))
    }

    /// The same on another clock: TTLs, backoff and token renewal follow it (a
    /// [`ManualClock`](secrets_core::ManualClock) in tests).
    pub fn with_clock(
        settings: VaultSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ProviderError> {
        settings.validate()?;
        let http = Http::new(&settings)?;
        let owned = |segments: Vec<&str>| segments.into_iter().map(str::to_owned).collect();
        let mount = owned(path_segments("mount", &settings.mount)?);
        let path = owned(path_segments("path", &settings.path)?);
        let snapshot =
            Snapshot::new(PROVIDER_NAME, settings.refresh).with_clock(Arc::clone(&clock));
        let auth = Auth::new(settings.auth.clone(), settings.refresh.retry_backoff, clock);
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                http,
                auth,
                mount,
                path,
                kv: tokio::sync::OnceCell::new(),
                snapshot,
                writing: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &VaultSettings {
        &self.inner.settings
    }

    /// The mount's KV version, once detected (or configured and checked) at first use.
    pub fn kv_version(&self) -> Option<KvVersion> {
        self.inner.kv.get().map(|known| known.version)
    }

    /// How many HTTP requests this provider made, by kind.
    pub fn stats(&self) -> VaultStats {
        self.inner.http.stats()
    }

    #[cfg(test)]
    pub(crate) fn auth_for_tests(&self) -> &Auth {
        &self.inner.auth
    }

    /// Forgets the read copy: the next lookup reads the secret again.
    pub fn invalidate(&self) {
        self.inner.snapshot.invalidate();
    }

    /// The keys stored at the path (sorted), read through the same copy as lookups; empty
    /// when nothing is stored there.
    pub async fn keys(&self) -> Result<Vec<String>, ProviderError> {
        let object = self.inner.current().await?;
        let mut keys: Vec<String> = object
            .entries
            .as_ref()
            .map(|e| e.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        Ok(keys)
    }

    /// Whether anything is stored at the path (as opposed to a path never written, or whose
    /// latest KV v2 version was deleted).
    pub async fn exists(&self) -> Result<bool, ProviderError> {
        Ok(self.inner.current().await?.entries.is_some())
    }

    /// The KV v2 version of the copy lookups are served from (`None` on KV v1 or when
    /// nothing is stored).
    pub async fn secret_version(&self) -> Result<Option<u64>, ProviderError> {
        Ok(self.inner.current().await?.version)
    }
}

impl Inner {
    /// `mount/path` as people write it, for messages.
    fn display_path(&self) -> String {
        format!("{}/{}", self.mount.join("/"), self.path.join("/"))
    }

    fn location(&self) -> Location {
        Location::Url(self.display_path())
    }

    fn error(
        &self,
        kind: ErrorKind,
        message: impl Into<std::borrow::Cow<'static, str>>,
    ) -> ProviderError {
        ProviderError::new(PROVIDER_NAME, kind, message).with_location(self.location())
    }

    fn malformed(&self, url: &Url, why: &'static str) -> ProviderError {
        ProviderError::new(PROVIDER_NAME, ErrorKind::Malformed, why)
            .with_location(Location::Url(url.to_string()))
    }

    /// `/v1/{mount}/{middle...}/{path}`.
    fn secret_url(&self, middle: Option<&str>) -> Url {
        let mut segments: Vec<&str> = self.mount.iter().map(String::as_str).collect();
        segments.extend(middle);
        segments.extend(self.path.iter().map(String::as_str));
        self.http.url(&segments)
    }

    /// The copy lookups are served from (read when not fresh).
    async fn current(&self) -> Result<Arc<KvObject>, ProviderError> {
        self.snapshot
            .get(|| self.within_deadline("lookup", self.read()))
            .await
    }

    /// Runs the requests of one operation (a lookup's read, a write, a health check) under one
    /// deadline: the configured timeout covers all of them together (token lookup or login,
    /// renewal, mount lookup, read, write), not each one.
    async fn within_deadline<T>(
        &self,
        operation: &'static str,
        work: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let limit = self.settings.timeout;
        match tokio::time::timeout(limit, work).await {
            Ok(result) => result,
            Err(_) => Err(self.error(
                ErrorKind::Timeout,
                format!(
                    "no complete answer within {limit:?} for the {operation} (the timeout, \
                     {CLIENT_TIMEOUT_VAR}, covers all the requests of one {operation})"
                ),
            )),
        }
    }

    /// Sends a request with the token. When the server refuses it (401/403) and a new login
    /// may help (AppRole, no login yet in this operation, no token fresh from a login refused
    /// recently), logs in and sends it once more.
    async fn authorized(
        &self,
        op: &mut Op,
        call: Call,
        method: Method,
        url: &Url,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, ProviderError> {
        let token = self.auth.token(&self.http, op).await?;
        let reply = self
            .http
            .send(call, method.clone(), url, Some(&token), body.clone())
            .await?;
        if !is_refusal(&reply) {
            return Ok(reply);
        }
        if op.is_fresh(&token) {
            self.auth.fresh_token_refused().await;
            return Ok(reply);
        }
        let Some(fresh) = self.auth.relogin(&self.http, &token, op).await? else {
            return Ok(reply);
        };
        let reply = self
            .http
            .send(call, method, url, Some(&fresh), body)
            .await?;
        match (is_refusal(&reply), op.is_fresh(&fresh)) {
            (true, true) => self.auth.fresh_token_refused().await,
            (false, true) => self.auth.relogin_helped().await,
            // Another operation's token: its own requests judge it.
            (_, false) => {}
        }
        Ok(reply)
    }

    async fn kv_version(&self, op: &mut Op) -> Result<KvVersion, ProviderError> {
        let known = self.kv.get_or_try_init(|| self.resolve_version(op)).await?;
        Ok(known.version)
    }

    /// Whether the KV version in use is one the server did not confirm.
    fn version_unconfirmed(&self) -> bool {
        self.kv.get().is_some_and(|known| !known.told)
    }

    /// The mount's KV version, as the server says it; a configured version is checked
    /// against that answer (a mismatch is [`ErrorKind::Misconfigured`], never a read of the
    /// wrong location, a silent "absent", or a write to the wrong place), and trusted only
    /// when the server cannot say.
    async fn resolve_version(&self, op: &mut Op) -> Result<KnownVersion, ProviderError> {
        let configured = self.settings.kv_version;
        let told = match self.mount_version(op).await? {
            Some(version) => Some(version),
            None => self.probe_version(op, configured.is_some()).await?,
        };
        let mount = self.mount.join("/");
        let version = match (configured, told) {
            (Some(configured), Some(told)) if configured != told => {
                return Err(self.error(
                    ErrorKind::Misconfigured,
                    format!(
                        "mount `{mount}` is {told}, but the KV version is set to {} ({}): unset \
                         it to detect the version, or set it to {}",
                        configured.number(),
                        self.settings.kv_version_setting(),
                        told.number()
                    ),
                ));
            }
            (Some(version), _) | (None, Some(version)) => version,
            (None, None) => {
                unreachable!("without a configured version, probing tells or fails")
            }
        };
        tracing::debug!(
            provider = PROVIDER_NAME,
            mount,
            %version,
            confirmed = told.is_some(),
            "KV version known"
        );
        Ok(KnownVersion {
            version,
            told: told.is_some(),
        })
    }

    /// Asks the server which KV version the mount runs (`None`: this server has no mount
    /// lookup). Only a clear answer counts: a refusal, a sealed server or a network error is
    /// an error, not a guess.
    async fn mount_version(&self, op: &mut Op) -> Result<Option<KvVersion>, ProviderError> {
        let mut segments = vec!["sys", "internal", "ui", "mounts"];
        segments.extend(self.mount.iter().map(String::as_str));
        let url = self.http.url(&segments);
        let reply = self
            .authorized(op, Call::MountLookup, Method::GET, &url, None)
            .await?;
        let mount = self.mount.join("/");
        let version = match reply.status {
            200 => {
                let mut body = reply.json(&url)?;
                let kind = kv::mount_kind(&body);
                scrub(&mut body);
                match kind.map_err(|why| self.malformed(&url, why))? {
                    MountKind::Kv(version) => version,
                    MountKind::Other(engine) => {
                        return Err(self.error(
                            ErrorKind::Misconfigured,
                            format!("mount `{mount}` is a `{engine}` secrets engine, not KV"),
                        ));
                    }
                }
            }
            401 | 403 if self.auth.lookup_refused() => {
                return Err(self.error(
                    ErrorKind::PermissionDenied,
                    format!(
                        "the token is invalid or expired (HTTP {}): the server refused it for \
                         its own lookup and for mount `{mount}` (or it lacks permission to look \
                         itself up and has no capability under the mount)",
                        reply.status
                    ),
                ));
            }
            401 | 403 => {
                return Err(self.error(
                    ErrorKind::PermissionDenied,
                    format!(
                        "the token's policies grant nothing under mount `{mount}` (or the mount \
                         does not exist) (HTTP {})",
                        reply.status
                    ),
                ));
            }
            404 if reply
                .error_messages()
                .iter()
                .any(|m| m.contains("namespace not found")) =>
            {
                return Err(self.namespace_not_found());
            }
            // A server without the mount lookup: the v1 location tells.
            404 | 405 => return Ok(None),
            _ => return Err(status_error(&reply, &url, "detecting the KV version")),
        };
        Ok(Some(version))
    }

    /// The KV version as the v1 location's answer shows it (a v2 mount answers with a
    /// warning). With a configured version to fall back on (`lenient`), a refusal gives
    /// `None`: the server cannot say, and the configured version is used.
    async fn probe_version(
        &self,
        op: &mut Op,
        lenient: bool,
    ) -> Result<Option<KvVersion>, ProviderError> {
        let url = self.secret_url(None);
        let reply = self
            .authorized(op, Call::SecretRead, Method::GET, &url, None)
            .await?;
        match reply.status {
            200 => Ok(Some(KvVersion::V1)),
            404 => {
                let mut body = reply.json(&url)?;
                let v2 = kv::has_versioned_kv_warning(&body);
                scrub(&mut body);
                if v2 {
                    Ok(Some(KvVersion::V2))
                } else if reply.has_empty_errors() {
                    Ok(Some(KvVersion::V1))
                } else {
                    Err(self.missing_mount(&reply))
                }
            }
            401 | 403 if lenient => {
                tracing::debug!(
                    provider = PROVIDER_NAME,
                    "the server cannot say the mount's KV version; the configured one is used"
                );
                Ok(None)
            }
            _ => Err(status_error(&reply, &url, "detecting the KV version")),
        }
    }

    /// The mount answered a request of one KV version in the way of the other: the
    /// configured version (if any) is wrong.
    fn answered_like(&self, request: KvVersion, like: KvVersion, what: &str) -> ProviderError {
        let mount = self.mount.join("/");
        let fix = match self.settings.kv_version {
            Some(configured) => format!(
                ": the KV version is set to {} ({}); unset it to detect the version, or set it \
                 to {}",
                configured.number(),
                self.settings.kv_version_setting(),
                like.number()
            ),
            None => String::new(),
        };
        self.error(
            ErrorKind::Misconfigured,
            format!("mount `{mount}` answered a {request} {what} like a {like} mount{fix}"),
        )
    }

    /// Whether an answer carries KV v2's warning that the path needs `data/`.
    fn has_versioned_kv_warning(&self, reply: &Reply, url: &Url) -> bool {
        let Ok(mut body) = reply.json(url) else {
            return false;
        };
        let v2 = kv::has_versioned_kv_warning(&body);
        scrub(&mut body);
        v2
    }

    fn namespace_not_found(&self) -> ProviderError {
        let message = match &self.settings.namespace {
            Some(namespace) => format!(
                "namespace `{}` does not exist (HTTP 404)",
                namespace.escape_default()
            ),
            None => "the server says the namespace does not exist (HTTP 404)".to_owned(),
        };
        self.error(ErrorKind::NotFound, message)
    }

    /// A 404 that is not "nothing stored here": the mount or the namespace is missing.
    fn missing_mount(&self, reply: &Reply) -> ProviderError {
        if reply
            .error_messages()
            .iter()
            .any(|m| m.contains("namespace not found"))
        {
            return self.namespace_not_found();
        }
        self.error(
            ErrorKind::NotFound,
            format!(
                "mount `{}` does not exist or is not a KV engine (HTTP 404)",
                self.mount.join("/")
            ),
        )
    }

    /// Reads the secret for the snapshot.
    async fn read(&self) -> Result<KvObject, ProviderError> {
        let op = &mut Op::default();
        let version = self.kv_version(op).await?;
        let object = match version {
            KvVersion::V2 => self.read_v2(op, self.settings.secret_version).await?,
            KvVersion::V1 => {
                if self.settings.secret_version.is_some() {
                    return Err(self.error(
                        ErrorKind::Misconfigured,
                        "a secret version is pinned but the mount is KV v1, which has no versions",
                    ));
                }
                let (map, _) = self.read_raw_v1(op).await?;
                map.map_or_else(|| KvObject::absent(None), |m| KvObject::from_map(m, None))
            }
        };
        if object.entries.is_none() {
            tracing::warn!(
                provider = PROVIDER_NAME,
                path = %self.display_path(),
                "nothing is stored at the secret's path; every key is absent"
            );
        } else {
            tracing::debug!(
                provider = PROVIDER_NAME,
                path = %self.display_path(),
                version = object.version,
                "secret read"
            );
        }
        Ok(object)
    }

    async fn read_v2(&self, op: &mut Op, pinned: Option<u64>) -> Result<KvObject, ProviderError> {
        let (map, version) = self.read_raw_v2(op, pinned).await?;
        if pinned.is_some() && map.is_none() {
            return Err(self.error(
                ErrorKind::NotFound,
                format!(
                    "version {} of the secret does not exist, or was deleted or destroyed",
                    pinned.unwrap_or_default()
                ),
            ));
        }
        Ok(match map {
            Some(map) => KvObject::from_map(map, version),
            None => KvObject::absent(version),
        })
    }

    /// The KV v2 object (`None`: nothing stored) and the current version (0 when the path
    /// was never written).
    async fn read_raw_v2(
        &self,
        op: &mut Op,
        pinned: Option<u64>,
    ) -> Result<RawObject, ProviderError> {
        let mut url = self.secret_url(Some("data"));
        if let Some(version) = pinned {
            url.query_pairs_mut()
                .append_pair("version", &version.to_string());
        }
        let reply = self
            .authorized(op, Call::SecretRead, Method::GET, &url, None)
            .await?;
        match reply.status {
            200 => {
                let mut body = reply.json(&url)?;
                // KV v2 always sends the version's metadata; KV v1 stores `data/{path}` as
                // a path of its own and answers without.
                let versioned = kv::has_v2_metadata(&body);
                let result = kv::v2_data(&mut body);
                scrub(&mut body);
                if !versioned && self.version_unconfirmed() {
                    return Err(self.answered_like(KvVersion::V2, KvVersion::V1, "read"));
                }
                result.map_err(|why| self.malformed(&url, why))
            }
            404 => {
                let mut body = reply.json(&url).unwrap_or(Value::Null);
                let deleted = kv::v2_deleted_version(&body);
                scrub(&mut body);
                if deleted.is_some() || reply.has_empty_errors() {
                    Ok((None, deleted))
                } else {
                    Err(self.missing_mount(&reply))
                }
            }
            _ => Err(status_error(&reply, &url, "reading the secret")),
        }
    }

    /// The KV v1 object (`None`: nothing stored).
    async fn read_raw_v1(&self, op: &mut Op) -> Result<RawObject, ProviderError> {
        let url = self.secret_url(None);
        let reply = self
            .authorized(op, Call::SecretRead, Method::GET, &url, None)
            .await?;
        match reply.status {
            200 => {
                let mut body = reply.json(&url)?;
                let result = kv::v1_data(&mut body);
                scrub(&mut body);
                Ok((Some(result.map_err(|why| self.malformed(&url, why))?), None))
            }
            404 if self.has_versioned_kv_warning(&reply, &url) => {
                Err(self.answered_like(KvVersion::V1, KvVersion::V2, "read"))
            }
            404 if reply.has_empty_errors() => Ok((None, None)),
            404 => Err(self.missing_mount(&reply)),
            _ => Err(status_error(&reply, &url, "reading the secret")),
        }
    }

    /// Applies a change; whether the key existed. The read copy is dropped afterwards.
    async fn write(&self, change: Change<'_>) -> Result<bool, ProviderError> {
        if self.settings.secret_version.is_some() {
            return Err(ProviderError::read_only(
                PROVIDER_NAME,
                if matches!(change, Change::Set(..)) {
                    "set"
                } else {
                    "delete"
                },
                change.key(),
            ));
        }
        let _one_writer = self.writing.lock().await;
        let result = self
            .within_deadline("write", async {
                let op = &mut Op::default();
                match self.kv_version(op).await? {
                    KvVersion::V2 => self.write_v2(op, &change).await,
                    KvVersion::V1 => self.write_v1(op, &change).await,
                }
            })
            .await;
        // Also after a timeout: the write may have reached the server.
        self.snapshot.invalidate();
        result.map_err(|e| e.with_key(change.key()))
    }

    async fn write_v2(&self, op: &mut Op, change: &Change<'_>) -> Result<bool, ProviderError> {
        let url = self.secret_url(Some("data"));
        for attempt in 1..=CAS_ATTEMPTS {
            let (map, version) = self.read_raw_v2(op, None).await?;
            let mut map = map.unwrap_or_default();
            let existed = change.apply(&mut map);
            if matches!(change, Change::Delete(_)) && !existed {
                scrub(&mut Value::Object(map));
                return Ok(false);
            }
            let mut body = serde_json::json!({
                "options": {"cas": version.unwrap_or(0)},
                "data": Value::Object(map),
            });
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            scrub(&mut body);
            let reply = self
                .authorized(op, Call::SecretWrite, Method::POST, &url, Some(bytes))
                .await?;
            if reply.is_success() {
                if reply.body.is_empty() {
                    // KV v2 answers a write with the new version; KV v1 with no content.
                    return Err(self.answered_like(KvVersion::V2, KvVersion::V1, "write"));
                }
                return Ok(existed);
            }
            let conflict = reply.status == 400
                && reply
                    .error_messages()
                    .iter()
                    .any(|m| m.contains("check-and-set"));
            if !conflict {
                return Err(status_error(&reply, &url, "writing the secret"));
            }
            tracing::debug!(
                provider = PROVIDER_NAME,
                attempt,
                "the secret changed between read and write (check-and-set); reading it again"
            );
        }
        Err(self.error(
            ErrorKind::Conflict,
            format!(
                "the secret changed between reading and writing it, {CAS_ATTEMPTS} times in a \
                 row (check-and-set); nothing was written, try again"
            ),
        ))
    }

    async fn write_v1(&self, op: &mut Op, change: &Change<'_>) -> Result<bool, ProviderError> {
        let url = self.secret_url(None);
        let (map, _) = self.read_raw_v1(op).await?;
        let mut map = map.unwrap_or_default();
        let existed = change.apply(&mut map);
        if matches!(change, Change::Delete(_)) && !existed {
            scrub(&mut Value::Object(map));
            return Ok(false);
        }
        let reply = if map.is_empty() {
            // KV v1 refuses an empty object: the last key goes with the path.
            self.authorized(op, Call::SecretWrite, Method::DELETE, &url, None)
                .await?
        } else {
            let mut body = Value::Object(map);
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            scrub(&mut body);
            self.authorized(op, Call::SecretWrite, Method::POST, &url, Some(bytes))
                .await?
        };
        if reply.status == 404 && self.has_versioned_kv_warning(&reply, &url) {
            return Err(self.answered_like(KvVersion::V1, KvVersion::V2, "write"));
        }
        if !reply.is_success() {
            return Err(status_error(&reply, &url, "writing the secret"));
        }
        Ok(existed)
    }

    /// `sys/health`, then the token's own lookup, within one deadline.
    async fn health(&self) -> Result<(), ProviderError> {
        self.within_deadline("health check", self.check_health())
            .await
    }

    async fn check_health(&self) -> Result<(), ProviderError> {
        let mut url = self.http.url(&["sys", "health"]);
        url.query_pairs_mut()
            .append_pair("standbyok", "true")
            .append_pair("perfstandbyok", "true");
        let reply = self
            .http
            .send(Call::Health, Method::GET, &url, None, None)
            .await?;
        match reply.status {
            200 | 429 | 472 | 473 => {}
            503 => {
                let mut body = reply.json(&url).unwrap_or(Value::Null);
                let sealed = body.get("sealed").and_then(Value::as_bool) == Some(true);
                scrub(&mut body);
                let message = if sealed {
                    "the server is sealed (HTTP 503)"
                } else {
                    "the server is unavailable (HTTP 503)"
                };
                return Err(
                    ProviderError::new(PROVIDER_NAME, ErrorKind::Unavailable, message)
                        .with_location(Location::Url(url.to_string())),
                );
            }
            _ => return Err(status_error(&reply, &url, "checking the server's health")),
        }
        let url = self.http.url(&["auth", "token", "lookup-self"]);
        let reply = self
            .authorized(
                &mut Op::default(),
                Call::TokenLookup,
                Method::GET,
                &url,
                None,
            )
            .await?;
        if !reply.is_success() {
            return Err(status_error(&reply, &url, "looking the token up"));
        }
        Ok(())
    }
}

#[async_trait]
impl SecretProvider for VaultProvider {
    fn name(&self) -> &str {
        PROVIDER_NAME
    }

    /// An address and some authentication are configured.
    fn is_available(&self) -> bool {
        self.inner.auth.is_configured()
    }

    async fn get(&self, key: &str) -> Result<Option<Secret>, ProviderError> {
        let object = self.inner.current().await.map_err(|e| e.with_key(key))?;
        match object.entries.as_ref().and_then(|e| e.get(key)) {
            None => Ok(None),
            Some(Entry::Value(value)) => Ok(Some(value.clone())),
            Some(Entry::NotAString(kind)) => Err(self
                .inner
                .error(
                    ErrorKind::InvalidValue,
                    format!("the value is {kind}, not a string"),
                )
                .with_key(key)),
        }
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.inner.health().await
    }

    fn freshness(&self) -> Option<Duration> {
        // An expired copy is worth zero, not "no opinion" (the manager's own TTL).
        Some(self.inner.snapshot.freshness())
    }

    fn supports_writes(&self) -> bool {
        self.inner.settings.secret_version.is_none()
    }

    async fn set(&self, key: &str, value: &Secret) -> Result<(), ProviderError> {
        self.inner.write(Change::Set(key, value)).await.map(drop)
    }

    async fn delete(&self, key: &str) -> Result<bool, ProviderError> {
        self.inner.write(Change::Delete(key)).await
    }
}
