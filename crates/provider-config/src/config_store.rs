//! [`ConfigStore`]: cloud providers' configuration, read through the provider-config cache,
//! written in one transaction, invalidated and audited after every write.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use credential_crypto::{CredentialCipher, KeyLoader, Secret};
use serde_json::{Map, Value};

use crate::audit::{AuditEvent, AuditTrail, PROVIDER_CONFIGURED};
use crate::backend::{Backend, unblock};
use crate::caches::{
    CacheInvalidator, ConfigCaches, Invalidation, global_invalidator, provider_config_key,
};
use crate::hardware::{self, HARDWARE_INFO_KEY, HARDWARE_PROVIDER, HardwareInfo};
use crate::rows::{Rows, TxError};
use crate::sealing::{
    CipherSource, Sealed, count_encrypted, open_credential, seal_credential, store_error,
};
use crate::values::{
    CREDENTIAL_KEYS, CloudProviderConfig, CostLimit, WEBHOOK_SECRET, WebhookConfig, changed_keys,
    validate, validate_provider_name,
};
use crate::{Actor, StoreError, StoreLocation, StoreSettings, Timestamp};

struct StoreInner {
    backend: Backend,
    /// Stops the PostgreSQL listener when the last clone of the store goes.
    #[cfg(feature = "postgres")]
    listener: Option<crate::postgres::Listener>,
    caches: Arc<ConfigCaches>,
    invalidator: Arc<dyn CacheInvalidator>,
    audit: Option<AuditTrail>,
    /// Whether the audit row is appended in the change's own transaction (the audit trail
    /// is in the same PostgreSQL database, or its SQLite file is attached).
    audit_in_tx: bool,
    cipher: CipherSource,
    database_reads: AtomicU64,
}

/// The configuration of cloud training providers (`replicate`, `modal`, ...): one JSON
/// object per provider in the `provider_config` table of `<state>/cloud/jobs.db`.
///
/// - **Reads** go through the provider-configuration cache (key `provider:{name}:config`,
///   300 s): within one TTL the database is read once per provider, and concurrent misses
///   read it once.
/// - **Writes** go to the database in one `BEGIN IMMEDIATE` transaction (an update reads,
///   merges and writes under the write lock, so concurrent updates of different keys by
///   threads or processes lose nothing), which also appends the `provider.configured` audit
///   row naming the changed keys (never their values): a failing append rolls the change
///   back. Then `provider:{name}:` is invalidated through the store's [`CacheInvalidator`].
/// - **Credentials** in the configuration (`webhook_secret`) are stored encrypted in the
///   credential format; a plaintext value written by the original is read as plaintext.
/// - Every method has an `_async` form that never blocks the runtime (database work runs on
///   tokio's blocking pool; cache hits return at once).
///
/// Cheap to clone.
///
/// ```
/// use provider_config::ConfigStore;
/// use serde_json::json;
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = ConfigStore::builder(dir.path().join("cloud/jobs.db")).open().unwrap();
/// assert!(store.get("replicate").unwrap().is_empty()); // missing -> {}
/// let update = json!({"webhook_url": "https://example.invalid/hook"});
/// store.update("replicate", update.as_object().unwrap().clone()).unwrap();
/// assert_eq!(store.get("replicate").unwrap()["webhook_url"], "https://example.invalid/hook");
/// assert_eq!(store.list().unwrap(), ["replicate"]);
/// assert!(store.delete("replicate").unwrap());
/// ```
#[derive(Clone)]
pub struct ConfigStore {
    inner: Arc<StoreInner>,
    actor: Actor,
}

impl fmt::Debug for ConfigStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigStore")
            .field("backend", &self.inner.backend)
            .field("audit", &self.inner.audit)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

/// Builds a [`ConfigStore`] on an SQLite file or a PostgreSQL database.
#[must_use]
pub struct ConfigStoreBuilder {
    location: StoreLocation,
    caches: Option<Arc<ConfigCaches>>,
    invalidator: Option<Arc<dyn CacheInvalidator>>,
    audit: Option<AuditTrail>,
    cipher: CipherSource,
    create_key: bool,
    read_only: bool,
}

impl fmt::Debug for ConfigStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigStoreBuilder")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl ConfigStoreBuilder {
    /// Uses these caches (for example the global ones, or ones on a manual clock). Default:
    /// caches of this store's own, so two databases in one process never share entries.
    pub fn caches(mut self, caches: Arc<ConfigCaches>) -> Self {
        self.caches = Some(caches);
        self
    }

    /// Sends invalidations here (a cross-process broadcaster). Default: the store's caches.
    pub fn invalidator(mut self, invalidator: Arc<dyn CacheInvalidator>) -> Self {
        self.invalidator = Some(invalidator);
        self
    }

    /// Records every change in this audit trail. Default: no audit.
    pub fn audit(mut self, trail: AuditTrail) -> Self {
        self.audit = Some(trail);
        self
    }

    /// Encrypts and decrypts credentials in the configuration with this cipher.
    pub fn cipher(mut self, cipher: CredentialCipher) -> Self {
        self.cipher = CipherSource::given(cipher);
        self
    }

    /// Loads the credential key with this loader the first time a credential is read or
    /// written (so reading other keys never creates a key file).
    pub fn key_loader(mut self, loader: KeyLoader) -> Self {
        self.cipher = CipherSource::lazy(loader, self.create_key);
        self
    }

    /// Opens an existing database for reading only: nothing is created, no schema is
    /// migrated and every write fails, so reading works on a read-only file, directory or
    /// database role and never changes the database.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Whether the key loader may create a credential key when there is none (default:
    /// yes, as the original server does). Never when the database already holds
    /// credentials encrypted under a key: a new key could not decrypt them. Set before
    /// [`key_loader`](Self::key_loader).
    pub fn create_key(mut self, create: bool) -> Self {
        self.create_key = create;
        self
    }

    /// Opens (creating when missing) the database and brings its schema up to date. On
    /// PostgreSQL, also starts the store's listener: a dedicated connection that drops the
    /// entries of this store's caches that other processes' writes made stale.
    pub fn open(self) -> Result<ConfigStore, StoreError> {
        let backend = if self.read_only {
            Backend::open_read_only(&self.location, crate::backend::Tables::Jobs)?
        } else {
            let audit_file = self.audit.as_ref().and_then(AuditTrail::sqlite_path);
            Backend::open_jobs_with_audit(&self.location, audit_file)?
        };
        let audit_in_tx = self
            .audit
            .as_ref()
            .is_some_and(|trail| trail.shares_transactions_with(&backend));
        if let (Some(trail), true, false) = (&self.audit, audit_in_tx, self.read_only) {
            // Not a reason to refuse reading: the next write settles the outbox, and fails
            // loudly if it must.
            if let Err(e) = trail.repair_outbox(&backend) {
                tracing::warn!(
                    "could not append the audit rows a stopped process left in the outbox: {e}"
                );
            }
        }
        let caches = self.caches.unwrap_or_else(|| Arc::new(ConfigCaches::new()));
        let invalidator = self
            .invalidator
            .unwrap_or_else(|| Arc::clone(&caches) as Arc<dyn CacheInvalidator>);
        #[cfg(feature = "postgres")]
        let listener = match &backend {
            Backend::Postgres(db) => Some(db.listen(Arc::clone(&caches))?),
            Backend::Sqlite(_) => None,
        };
        Ok(ConfigStore {
            inner: Arc::new(StoreInner {
                backend,
                #[cfg(feature = "postgres")]
                listener,
                caches,
                invalidator,
                audit: self.audit,
                audit_in_tx,
                cipher: self.cipher,
                database_reads: AtomicU64::new(0),
            }),
            actor: Actor::default(),
        })
    }
}

thread_local! {
    static KEY_BUFFER: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Calls `f` with `provider:{name}:config`, built in a reused per-thread buffer.
fn with_config_key<T>(provider: &str, f: impl FnOnce(&str) -> T) -> T {
    KEY_BUFFER.with(|buffer| match buffer.try_borrow_mut() {
        Ok(mut key) => {
            key.clear();
            key.push_str("provider:");
            key.push_str(provider);
            key.push_str(":config");
            f(&key)
        }
        // Re-entered (a loader reading through the cache): build it afresh.
        Err(_) => f(&provider_config_key(provider)),
    })
}

/// The stored configuration of a row about to be replaced or deleted: `{}` when it cannot
/// be read (not JSON, not an object, a BLOB, not UTF-8), `None` when there is no row.
fn replaceable(tx: &dyn Rows, provider: &str) -> Result<Option<Map<String, Value>>, TxError> {
    match tx.config_get_for_update(provider) {
        Ok(Some(text)) => Ok(Some(
            CloudProviderConfig::from_stored(provider, &text)
                .map(CloudProviderConfig::into_map)
                .unwrap_or_default(),
        )),
        Ok(None) => Ok(None),
        Err(TxError::Store(StoreError::InvalidStoredConfig { .. })) => Ok(Some(Map::new())),
        Err(e) => Err(e),
    }
}

/// What a write did, for the audit row.
struct Change {
    operation: &'static str,
    changed_keys: Vec<String>,
}

impl ConfigStore {
    /// The application's store: `<state>/cloud/jobs.db` (or the PostgreSQL database of
    /// `<APP>_DATABASE_URL`) with the global caches and invalidator, the audit trail
    /// `<state>/audit.db` (or that database), and the application's credential key (loaded
    /// on first use).
    ///
    /// On PostgreSQL, every write also notifies the other replicas in its transaction, and
    /// the store's [`broadcaster`](Self::broadcaster) becomes the global invalidator
    /// ([`set_global_invalidator`](crate::caches::set_global_invalidator)), so that the
    /// global invalidation functions reach every replica too.
    pub fn open(settings: &StoreSettings) -> Result<Self, StoreError> {
        Self::open_with(settings, true)
    }

    /// [`open`](Self::open), saying whether a credential key may be created when there is
    /// none (see [`ConfigStoreBuilder::create_key`]; the CLI asks for `--create-key`).
    pub fn open_with(settings: &StoreSettings, create_key: bool) -> Result<Self, StoreError> {
        let location = settings.jobs_location();
        let shared = matches!(location, StoreLocation::Postgres(_));
        // On PostgreSQL, the write's own NOTIFY tells the other replicas; after the commit
        // only this process's caches need the word.
        let invalidator = if shared {
            Arc::clone(ConfigCaches::global()) as Arc<dyn CacheInvalidator>
        } else {
            global_invalidator()
        };
        let store = Self::builder_at(location)
            .caches(Arc::clone(ConfigCaches::global()))
            .invalidator(invalidator)
            .audit(AuditTrail::open(settings)?)
            .create_key(create_key)
            .key_loader(KeyLoader::new(&settings.app))
            .open()?;
        if shared {
            crate::caches::set_global_invalidator(store.broadcaster());
        }
        Ok(store)
    }

    /// A builder for a store on an SQLite file.
    pub fn builder(path: impl AsRef<Path>) -> ConfigStoreBuilder {
        Self::builder_at(StoreLocation::Sqlite(path.as_ref().to_owned()))
    }

    /// A builder for a store at `location`: an SQLite file, or a PostgreSQL database
    /// (feature `postgres`) shared by several processes.
    pub fn builder_at(location: impl Into<StoreLocation>) -> ConfigStoreBuilder {
        ConfigStoreBuilder {
            location: location.into(),
            caches: None,
            invalidator: None,
            audit: None,
            cipher: CipherSource::None,
            create_key: true,
            read_only: false,
        }
    }

    /// This store, recording `actor` as the author of its changes.
    pub fn acting_as(&self, actor: Actor) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            actor,
        }
    }

    /// The credential key file this store created, if it created one (when there was no
    /// key and a credential was written: see [`ConfigStoreBuilder::create_key`]).
    pub fn generated_key_file(&self) -> Option<std::path::PathBuf> {
        self.inner.cipher.generated()
    }

    /// How many stored credentials (credential rows and configuration secrets) are
    /// encrypted: with none, a new credential key loses nothing.
    pub fn encrypted_credentials(&self) -> Result<u64, StoreError> {
        self.inner
            .backend
            .read("counting encrypted credentials", count_encrypted)
    }

    /// The caches this store reads through.
    pub fn caches(&self) -> &Arc<ConfigCaches> {
        &self.inner.caches
    }

    /// How many times this store has read a configuration row from the database.
    pub fn database_reads(&self) -> u64 {
        self.inner.database_reads.load(Ordering::Relaxed)
    }

    /// Whether the caches may be used: always on SQLite; on PostgreSQL while the listener
    /// listens (otherwise another process's write could go unnoticed).
    #[inline]
    fn caching(&self) -> bool {
        #[cfg(feature = "postgres")]
        if let Some(listener) = &self.inner.listener {
            return listener.is_listening();
        }
        true
    }

    /// The state of this store's invalidation listener (PostgreSQL only; `None` on SQLite).
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub fn listener_status(&self) -> Option<crate::ListenerStatus> {
        self.inner.listener.as_ref().map(|l| l.status())
    }

    /// An invalidator that drops entries of this store's caches and, on PostgreSQL, tells
    /// every other process sharing the database (a `NOTIFY` of its own, outside any write).
    /// For changes this crate does not write, such as a user's permissions:
    /// [`ConfigStore::open`] installs it as the global invalidator, so that
    /// [`invalidate_user_cache`](crate::invalidate_user_cache) reaches every replica.
    pub fn broadcaster(&self) -> Arc<dyn CacheInvalidator> {
        match &self.inner.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres(db) => Arc::new(crate::postgres::Broadcaster::new(
                Arc::clone(db),
                Arc::clone(&self.inner.caches),
            )),
            Backend::Sqlite(_) => Arc::clone(&self.inner.caches) as Arc<dyn CacheInvalidator>,
        }
    }

    /// A provider's configuration (`{}` when there is none), through the cache.
    pub fn get(&self, provider: &str) -> Result<CloudProviderConfig, StoreError> {
        if !self.caching() {
            return self.load(provider);
        }
        let cache = self.inner.caches.provider_config();
        // The hit path builds its key in a per-thread buffer: no allocation per read.
        if let Some(hit) = with_config_key(provider, |key| cache.get(key)) {
            return Ok(hit);
        }
        cache.try_get_or_insert_with(provider_config_key(provider), || self.load(provider))
    }

    /// [`get`](Self::get) without blocking the runtime.
    pub async fn get_async(&self, provider: &str) -> Result<CloudProviderConfig, StoreError> {
        let store = self.clone();
        let owned = provider.to_owned();
        if !self.caching() {
            return unblock(move || store.load(&owned)).await;
        }
        self.inner
            .caches
            .provider_config()
            .try_get_or_insert_with_async(provider_config_key(provider), async move {
                unblock(move || store.load(&owned)).await
            })
            .await
    }

    /// A provider's configuration read from the database now, bypassing the cache.
    pub fn get_uncached(&self, provider: &str) -> Result<CloudProviderConfig, StoreError> {
        self.load(provider)
    }

    fn load(&self, provider: &str) -> Result<CloudProviderConfig, StoreError> {
        self.inner.database_reads.fetch_add(1, Ordering::Relaxed);
        let stored = self
            .inner
            .backend
            .read("reading a provider configuration", |rows| {
                rows.config_get(provider)
            })?;
        match stored {
            None => Ok(CloudProviderConfig::default()),
            Some(text) => CloudProviderConfig::from_stored(provider, &text),
        }
    }

    /// Every provider with a configuration, sorted.
    pub fn list(&self) -> Result<Vec<String>, StoreError> {
        self.inner
            .backend
            .read("listing providers", |rows| rows.config_list())
    }

    /// [`list`](Self::list) without blocking the runtime.
    pub async fn list_async(&self) -> Result<Vec<String>, StoreError> {
        let store = self.clone();
        unblock(move || store.list()).await
    }

    /// Replaces a provider's configuration. The well-known keys are checked first (see the
    /// crate documentation); credentials are encrypted.
    pub fn save(&self, provider: &str, config: Map<String, Value>) -> Result<(), StoreError> {
        validate_provider_name(provider)?;
        validate(provider, &config)?;
        self.write("saving a provider configuration", provider, |tx| {
            // A row that cannot be read is replaced: saving is how it gets fixed.
            let before = replaceable(tx, provider)?.unwrap_or_default();
            let mut after = config;
            self.seal(tx, provider, &before, &mut after)?;
            tx.config_put(
                provider,
                &Value::Object(after.clone()).to_string(),
                &Timestamp::now().to_string(),
            )?;
            Ok((
                (),
                Some(Change {
                    operation: "save",
                    changed_keys: changed_keys(&before, &after),
                }),
            ))
        })
    }

    /// [`save`](Self::save) without blocking the runtime.
    pub async fn save_async(
        &self,
        provider: &str,
        config: Map<String, Value>,
    ) -> Result<(), StoreError> {
        let (store, provider) = (self.clone(), provider.to_owned());
        unblock(move || store.save(&provider, config)).await
    }

    /// Merges `updates` into a provider's configuration (a shallow merge: each key given
    /// replaces the stored one), reading and writing inside one write transaction. Returns
    /// the configuration as stored.
    pub fn update(
        &self,
        provider: &str,
        updates: Map<String, Value>,
    ) -> Result<CloudProviderConfig, StoreError> {
        validate_provider_name(provider)?;
        validate(provider, &updates)?;
        self.write("updating a provider configuration", provider, |tx| {
            let stored = tx.config_get_for_update(provider)?;
            let before = match &stored {
                // Unlike the original, a broken row is not silently replaced by the update.
                Some(text) => CloudProviderConfig::from_stored(provider, text)?.into_map(),
                None => Map::new(),
            };
            let mut sealed = updates;
            self.seal(tx, provider, &before, &mut sealed)?;
            // The keys not given are kept byte for byte as stored, whatever the original
            // wrote there (NaN, lone surrogates, integers beyond 64 bits).
            let text = match &stored {
                Some(text) => {
                    crate::raw_json::merge_preserving(text, &sealed).ok_or_else(|| {
                        StoreError::InvalidStoredConfig {
                            provider: provider.to_owned(),
                            problem:
                                "its JSON object could not be split into members to update one"
                                    .to_owned(),
                        }
                    })?
                }
                None => Value::Object(sealed.clone()).to_string(),
            };
            let after = CloudProviderConfig::from_stored(provider, &text)?.into_map();
            tx.config_put(provider, &text, &Timestamp::now().to_string())?;
            let changed_keys = changed_keys(&before, &after);
            Ok((
                CloudProviderConfig::from(after),
                Some(Change {
                    operation: "update",
                    changed_keys,
                }),
            ))
        })
    }

    /// [`update`](Self::update) without blocking the runtime.
    pub async fn update_async(
        &self,
        provider: &str,
        updates: Map<String, Value>,
    ) -> Result<CloudProviderConfig, StoreError> {
        let (store, provider) = (self.clone(), provider.to_owned());
        unblock(move || store.update(&provider, updates)).await
    }

    /// Deletes a provider's configuration; whether there was one.
    pub fn delete(&self, provider: &str) -> Result<bool, StoreError> {
        self.write("deleting a provider configuration", provider, |tx| {
            // A row that cannot be read is deleted all the same.
            let Some(before) = replaceable(tx, provider)? else {
                // Nothing to delete; still invalidated (another process may have deleted it).
                return Ok((false, None));
            };
            let deleted = tx.config_delete(provider)?;
            Ok((
                deleted,
                Some(Change {
                    operation: "delete",
                    changed_keys: changed_keys(&before, &Map::new()),
                }),
            ))
        })
    }

    /// [`delete`](Self::delete) without blocking the runtime.
    pub async fn delete_async(&self, provider: &str) -> Result<bool, StoreError> {
        let (store, provider) = (self.clone(), provider.to_owned());
        unblock(move || store.delete(&provider)).await
    }

    /// A write transaction about `provider`'s row: `f` makes the change and says what it
    /// changed; its audit row is appended in the same transaction (so a failure rolls back
    /// both), the other processes sharing the database (PostgreSQL) are told when it
    /// commits, and this process's caches are invalidated afterwards, whatever `f` found.
    fn write<T>(
        &self,
        operation: &'static str,
        provider: &str,
        f: impl FnOnce(&dyn Rows) -> Result<(T, Option<Change>), TxError>,
    ) -> Result<T, StoreError> {
        let in_tx = self.inner.audit_in_tx;
        let result = self.inner.backend.write(operation, |tx| {
            let (value, change) = f(tx)?;
            if in_tx && let (Some(trail), Some(change)) = (&self.inner.audit, &change) {
                trail.append_in_tx(tx, &self.audit_event(provider, change))?;
            }
            tx.notify(&Invalidation::Provider(provider.to_owned()))?;
            Ok((value, change))
        });
        // Invalidated even when the write failed or found nothing: cheap, and never stale.
        self.inner
            .invalidator
            .invalidate(&Invalidation::Provider(provider.to_owned()));
        let (value, change) = result?;
        if !in_tx && let (Some(trail), Some(change)) = (&self.inner.audit, &change) {
            // The trail is elsewhere (another kind of database): appended after the commit.
            trail
                .append(&self.audit_event(provider, change))
                .map_err(|e| StoreError::AuditAfterCommit(Box::new(e)))?;
        }
        Ok(value)
    }

    /// Encrypts the credential keys of `after` whose values are new (not those carried over
    /// unchanged from `before`, so rewriting a configuration needs no key).
    fn seal(
        &self,
        tx: &dyn Rows,
        provider: &str,
        before: &Map<String, Value>,
        after: &mut Map<String, Value>,
    ) -> Result<(), TxError> {
        for key in CREDENTIAL_KEYS {
            let Some(Value::String(value)) = after.get(*key) else {
                continue;
            };
            if value.is_empty() || before.get(*key) == after.get(*key) {
                continue;
            }
            let count = || count_encrypted(tx);
            let cipher = self.inner.cipher.get(provider, key, Some(&count))?;
            let sealed = seal_credential(&cipher, value).map_err(|source| StoreError::Crypto {
                context: format!("provider `{provider}`: `{key}`"),
                source,
            })?;
            if let Sealed::Encrypted(stored) = sealed {
                after.insert((*key).to_owned(), Value::String(stored));
            }
        }
        Ok(())
    }

    /// The `provider.configured` row of a change: the names of the changed keys, never
    /// their values.
    fn audit_event(&self, provider: &str, change: &Change) -> AuditEvent {
        let verb = match change.operation {
            "save" => "saved",
            "update" => "updated",
            _ => "deleted",
        };
        let action = if change.changed_keys.is_empty() {
            format!("{verb} the configuration of provider {provider} (no key changed)")
        } else {
            format!(
                "{verb} the configuration of provider {provider} (keys: {})",
                change.changed_keys.join(", ")
            )
        };
        AuditEvent::new(PROVIDER_CONFIGURED, action)
            .actor(self.actor.clone())
            .target("provider", provider)
            .detail("operation", change.operation)
            .detail("changed_keys", change.changed_keys.clone())
    }

    /// A provider's webhook settings with the original's defaults; the secret decrypted.
    pub fn webhook_config(&self, provider: &str) -> Result<WebhookConfig, StoreError> {
        let config = self.get(provider)?;
        let mut webhook = WebhookConfig::from_config(provider, &config)?;
        webhook.secret = match config.get(WEBHOOK_SECRET) {
            Some(Value::String(stored)) if !stored.is_empty() => {
                Some(self.open_credential(provider, WEBHOOK_SECRET, stored)?)
            }
            _ => None,
        };
        Ok(webhook)
    }

    fn open_credential(
        &self,
        provider: &str,
        key: &str,
        stored: &str,
    ) -> Result<Secret, StoreError> {
        open_credential(
            stored,
            || {
                self.inner
                    .cipher
                    .get(provider, key, None)
                    .map_err(store_error)
            },
            || format!("provider `{provider}`: `{key}`"),
        )
    }

    /// Stores (encrypted) or removes (`None`) a provider's webhook secret.
    pub fn set_webhook_secret(
        &self,
        provider: &str,
        secret: Option<&Secret>,
    ) -> Result<(), StoreError> {
        let mut updates = Map::new();
        let value = match secret {
            Some(secret) => {
                let cipher = self
                    .inner
                    .backend
                    .read("loading the credential key", |rows| {
                        let count = || count_encrypted(rows);
                        self.inner
                            .cipher
                            .get(provider, WEBHOOK_SECRET, Some(&count))
                    })?;
                Value::String(cipher.encrypt(secret.expose()))
            }
            None => Value::Null,
        };
        updates.insert(WEBHOOK_SECRET.to_owned(), value);
        self.update(provider, updates).map(|_| ())
    }

    /// A provider's cost limit with the original's defaults (off, 0.0, daily, warn).
    pub fn cost_limit(&self, provider: &str) -> Result<CostLimit, StoreError> {
        CostLimit::from_config(provider, &*self.get(provider)?)
    }

    /// Stores a provider's cost limit (the amount must not be negative).
    pub fn set_cost_limit(&self, provider: &str, limit: CostLimit) -> Result<(), StoreError> {
        self.update(provider, limit.to_updates()).map(|_| ())
    }

    /// A provider's `hardware_info` (`None` when it has none).
    pub fn hardware_info(&self, provider: &str) -> Result<Option<HardwareInfo>, StoreError> {
        match self.get(provider)?.get(HARDWARE_INFO_KEY) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => hardware::parse(provider, value).map(Some),
        }
    }

    /// Stores a provider's `hardware_info` (every price non-negative). Saving the pricing
    /// provider's clears the hardware-pricing cache.
    pub fn set_hardware_info(&self, provider: &str, info: &HardwareInfo) -> Result<(), StoreError> {
        hardware::validate_hardware_info(info)?;
        let mut updates = Map::new();
        updates.insert(HARDWARE_INFO_KEY.to_owned(), hardware::to_value(info));
        self.update(provider, updates).map(|_| ())
    }

    /// The hardware pricing (the `replicate` configuration's `hardware_info` when it is a
    /// non-empty object, else the defaults), through the store's hardware cache.
    pub fn hardware_pricing(&self) -> Result<HardwareInfo, StoreError> {
        // Loaded from the database, not through the configuration cache: a cached
        // configuration near the end of its TTL would make the pricing stale for two TTLs.
        if !self.caching() {
            return hardware::pricing_of(&*self.load(HARDWARE_PROVIDER)?);
        }
        self.inner
            .caches
            .hardware_info()
            .try_get_or_insert_with((), || hardware::pricing_of(&*self.load(HARDWARE_PROVIDER)?))
    }

    /// [`hardware_pricing`](Self::hardware_pricing) without blocking the runtime;
    /// concurrent callers load once.
    pub async fn hardware_pricing_async(&self) -> Result<HardwareInfo, StoreError> {
        let load = || {
            let store = self.clone();
            async move {
                let config = unblock(move || store.load(HARDWARE_PROVIDER)).await?;
                hardware::pricing_of(&config)
            }
        };
        if !self.caching() {
            return load().await;
        }
        self.inner
            .caches
            .hardware_info()
            .try_get_or_insert_with_async((), load())
            .await
    }

    /// Runs a blocking method of this store on tokio's blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&ConfigStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        unblock(move || work(&store)).await
    }

    /// [`webhook_config`](Self::webhook_config) without blocking the runtime.
    pub async fn webhook_config_async(&self, provider: &str) -> Result<WebhookConfig, StoreError> {
        let provider = provider.to_owned();
        self.blocking(move |store| store.webhook_config(&provider))
            .await
    }

    /// [`set_webhook_secret`](Self::set_webhook_secret) without blocking the runtime.
    pub async fn set_webhook_secret_async(
        &self,
        provider: &str,
        secret: Option<Secret>,
    ) -> Result<(), StoreError> {
        let provider = provider.to_owned();
        self.blocking(move |store| store.set_webhook_secret(&provider, secret.as_ref()))
            .await
    }

    /// [`cost_limit`](Self::cost_limit) without blocking the runtime.
    pub async fn cost_limit_async(&self, provider: &str) -> Result<CostLimit, StoreError> {
        let provider = provider.to_owned();
        self.blocking(move |store| store.cost_limit(&provider))
            .await
    }

    /// [`set_cost_limit`](Self::set_cost_limit) without blocking the runtime.
    pub async fn set_cost_limit_async(
        &self,
        provider: &str,
        limit: CostLimit,
    ) -> Result<(), StoreError> {
        let provider = provider.to_owned();
        self.blocking(move |store| store.set_cost_limit(&provider, limit))
            .await
    }

    /// [`hardware_info`](Self::hardware_info) without blocking the runtime.
    pub async fn hardware_info_async(
        &self,
        provider: &str,
    ) -> Result<Option<HardwareInfo>, StoreError> {
        let provider = provider.to_owned();
        self.blocking(move |store| store.hardware_info(&provider))
            .await
    }

    /// [`set_hardware_info`](Self::set_hardware_info) without blocking the runtime.
    pub async fn set_hardware_info_async(
        &self,
        provider: &str,
        info: HardwareInfo,
    ) -> Result<(), StoreError> {
        let provider = provider.to_owned();
        self.blocking(move |store| store.set_hardware_info(&provider, &info))
            .await
    }
}
