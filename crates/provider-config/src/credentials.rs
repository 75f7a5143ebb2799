//! [`CredentialStore`]: users' cloud-provider credentials in the original's
//! `provider_credentials` table, encrypted at rest; migration from the original's plaintext
//! and key rotation, each in one transaction, leaving no old copy in the database files.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use credential_crypto::{CredentialCipher, Secret};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::audit::{
    AuditEvent, AuditTrail, CONFIG_CHANGED, CREDENTIAL_CREATED, CREDENTIAL_DELETED,
};
use crate::backend::{Backend, unblock};
use crate::caches::{CacheInvalidator, Invalidation, global_invalidator};
use crate::rows::{Rows, TxError};
use crate::sealing::{Stored, classify, looks_encrypted, open_credential};
use crate::values::{CREDENTIAL_KEYS, CloudProviderConfig, validate_provider_name};
use crate::{Actor, StoreError, StoreLocation, StoreSettings, Timestamp};

/// A stored credential, without its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialInfo {
    /// Row id.
    pub id: i64,
    /// The user it belongs to.
    pub user_id: i64,
    /// The cloud provider (`replicate`, `huggingface`, ...).
    pub provider: String,
    /// The credential's name (`api_token`, ...).
    pub credential_name: String,
    /// When it was first stored.
    pub created_at: String,
    /// When it was last replaced or deactivated.
    pub updated_at: Option<String>,
    /// When it was last used.
    pub last_used_at: Option<String>,
    /// Whether it is active.
    pub is_active: bool,
    /// Whether it is stored encrypted (rows the original wrote are plaintext until
    /// `secrets crypto migrate-db`).
    pub encrypted: bool,
}

/// What [`CredentialStore::encrypt_plaintext`] or [`CredentialStore::rotate_to_current_key`]
/// did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MaintenanceReport {
    /// Credential rows that were plaintext and are now encrypted.
    pub credentials_encrypted: u64,
    /// Credential rows re-encrypted from a previous key to the current one.
    pub credentials_rotated: u64,
    /// Credential rows left as they were.
    pub credentials_unchanged: u64,
    /// Configuration credentials (`webhook_secret`) that were plaintext and are now encrypted.
    pub config_secrets_encrypted: u64,
    /// Configuration credentials re-encrypted to the current key.
    pub config_secrets_rotated: u64,
    /// Configuration rows that cannot be read (not a JSON object, not UTF-8 text, a BLOB)
    /// and so were left as they are; the rest was done.
    pub unreadable_config_rows: Vec<String>,
    /// Whether the database files were rewritten so that no old copy of a value remains in
    /// them (SQLite: `VACUUM` and an emptied write-ahead log; PostgreSQL: `VACUUM FULL` of
    /// both tables; see the guide for what a server keeps elsewhere).
    pub scrubbed: bool,
}

struct CredInner {
    backend: Backend,
    cipher: Arc<CredentialCipher>,
    audit: Option<AuditTrail>,
    /// Whether audit rows are appended in the change's own transaction.
    audit_in_tx: bool,
    invalidator: Option<Arc<dyn CacheInvalidator>>,
}

/// Users' credentials for cloud providers (API tokens and the like), one row per user,
/// provider and name. Values are stored encrypted with credential-crypto in the original's
/// stored format and never in plaintext; rows the original wrote in plaintext are read as
/// plaintext until [`encrypt_plaintext`](Self::encrypt_plaintext) (`secrets crypto
/// migrate-db`) encrypts them. Every change appends `credential.created` or
/// `credential.deleted` to the audit trail (names, never values).
///
/// ```
/// use provider_config::{CredentialStore, Secret};
/// use credential_crypto::CredentialCipher;
///
/// let dir = tempfile::tempdir().unwrap();
/// let cipher = CredentialCipher::from_passphrase("example passphrase").unwrap();
/// let store = CredentialStore::open_path(&dir.path().join("jobs.db"), cipher, None).unwrap();
/// store.set(1, "replicate", "api_token", &Secret::new("r8_example")).unwrap();
/// let token = store.get(1, "replicate", "api_token").unwrap().unwrap();
/// assert_eq!(token.expose(), "r8_example");
/// assert!(store.list_for_user(1, None).unwrap()[0].encrypted);
/// ```
#[derive(Clone)]
pub struct CredentialStore {
    inner: Arc<CredInner>,
    actor: Actor,
}

impl fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialStore")
            .field("backend", &self.inner.backend)
            .field("cipher", &self.inner.cipher)
            .field("audit", &self.inner.audit)
            .field("actor", &self.actor)
            .finish()
    }
}

impl CredentialStore {
    /// The application's store: `<state>/cloud/jobs.db` (or the PostgreSQL database of
    /// `<APP>_DATABASE_URL`), audited in `<state>/audit.db` (or that database), invalidating
    /// the global caches when a configuration credential changes.
    pub fn open(settings: &StoreSettings, cipher: CredentialCipher) -> Result<Self, StoreError> {
        let audit = AuditTrail::open(settings)?;
        Self::build(
            &settings.jobs_location(),
            cipher,
            Some(audit),
            Some(global_invalidator()),
        )
    }

    /// A store on an SQLite file, created when missing, optionally audited.
    pub fn open_path(
        path: &Path,
        cipher: CredentialCipher,
        audit: Option<AuditTrail>,
    ) -> Result<Self, StoreError> {
        Self::build(&StoreLocation::Sqlite(path.to_owned()), cipher, audit, None)
    }

    /// A store at `location` (an SQLite file or a PostgreSQL database), optionally audited.
    pub fn open_at(
        location: &StoreLocation,
        cipher: CredentialCipher,
        audit: Option<AuditTrail>,
    ) -> Result<Self, StoreError> {
        Self::build(location, cipher, audit, None)
    }

    fn build(
        location: &StoreLocation,
        cipher: CredentialCipher,
        audit: Option<AuditTrail>,
        invalidator: Option<Arc<dyn CacheInvalidator>>,
    ) -> Result<Self, StoreError> {
        let audit_file = audit.as_ref().and_then(AuditTrail::sqlite_path);
        let backend = Backend::open_jobs_with_audit(location, audit_file)?;
        let audit_in_tx = audit
            .as_ref()
            .is_some_and(|trail| trail.shares_transactions_with(&backend));
        if let (Some(trail), true) = (&audit, audit_in_tx) {
            // Not a reason to refuse reading: the next write settles the outbox, and fails
            // loudly if it must.
            if let Err(e) = trail.repair_outbox(&backend) {
                tracing::warn!(
                    "could not append the audit rows a stopped process left in the outbox: {e}"
                );
            }
        }
        Ok(Self {
            inner: Arc::new(CredInner {
                backend,
                cipher: Arc::new(cipher),
                audit,
                audit_in_tx,
                invalidator,
            }),
            actor: Actor::default(),
        })
    }

    /// This store, recording `actor` as the author of its changes.
    pub fn acting_as(&self, actor: Actor) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            actor,
        }
    }

    fn db(&self) -> &Backend {
        &self.inner.backend
    }

    /// Appends `event` in `tx` when the trail shares its transactions; otherwise `event`
    /// is kept for [`audit_after`](Self::audit_after).
    fn audit_in(
        &self,
        tx: &dyn Rows,
        event: Option<AuditEvent>,
        later: &mut Option<AuditEvent>,
    ) -> Result<(), TxError> {
        let (Some(trail), Some(event)) = (&self.inner.audit, event) else {
            return Ok(());
        };
        let event = event.actor(self.actor.clone());
        if self.inner.audit_in_tx {
            trail.append_in_tx(tx, &event)?;
        } else {
            *later = Some(event);
        }
        Ok(())
    }

    /// Appends, after the commit, an event a trail elsewhere could not take in the
    /// transaction.
    fn audit_after(&self, event: Option<AuditEvent>) -> Result<(), StoreError> {
        match (&self.inner.audit, event) {
            (Some(trail), Some(event)) => trail
                .append(&event)
                .map(|_| ())
                .map_err(|e| StoreError::AuditAfterCommit(Box::new(e))),
            _ => Ok(()),
        }
    }

    /// A write transaction whose audit row (`event` of its result; `None` records nothing)
    /// is appended in the same transaction: a failure of either rolls back both.
    fn audited_write<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&dyn Rows) -> Result<T, TxError>,
        event: impl FnOnce(&T) -> Option<AuditEvent>,
    ) -> Result<T, StoreError> {
        let mut later = None;
        let value = self.db().write(operation, |tx| {
            let value = f(tx)?;
            self.audit_in(tx, event(&value), &mut later)?;
            Ok(value)
        })?;
        self.audit_after(later)?;
        Ok(value)
    }

    /// Stores (encrypted) a user's credential, replacing and reactivating an existing one;
    /// the row id.
    pub fn set(
        &self,
        user_id: i64,
        provider: &str,
        name: &str,
        value: &Secret,
    ) -> Result<i64, StoreError> {
        validate_provider_name(provider)?;
        let stored = self.inner.cipher.encrypt(value.expose());
        let now = Timestamp::now().to_string();
        let (id, _) = self
            .audited_write(
                "storing a credential",
                |tx| tx.credential_upsert(user_id, provider, name, &stored, &now),
                |&(id, replaced)| {
                    Some(
                        AuditEvent::new(
                            CREDENTIAL_CREATED,
                            format!(
                                "{} credential {name} of provider {provider} for user {user_id}",
                                if replaced { "replaced" } else { "stored" }
                            ),
                        )
                        .target("credential", id.to_string())
                        .detail("user_id", user_id)
                        .detail("provider", provider)
                        .detail("credential_name", name)
                        .detail("replaced", replaced),
                    )
                },
            )
            .map_err(|e| foreign_key_to_unknown_user(e, user_id))?;
        Ok(id)
    }

    /// [`set`](Self::set) without blocking the runtime.
    pub async fn set_async(
        &self,
        user_id: i64,
        provider: &str,
        name: &str,
        value: Secret,
    ) -> Result<i64, StoreError> {
        let (store, provider, name) = (self.clone(), provider.to_owned(), name.to_owned());
        unblock(move || store.set(user_id, &provider, &name, &value)).await
    }

    /// A user's active credential, decrypted (`None` when there is none).
    pub fn get(
        &self,
        user_id: i64,
        provider: &str,
        name: &str,
    ) -> Result<Option<Secret>, StoreError> {
        let row = self.db().read("reading a credential", |conn| {
            conn.credential_get(user_id, provider, name)
        })?;
        let Some((id, stored)) = row else {
            return Ok(None);
        };
        open_credential(
            &stored,
            || Ok(Arc::clone(&self.inner.cipher)),
            || format!("credential row {id} ({provider}/{name} of user {user_id})"),
        )
        .map(Some)
    }

    /// [`get`](Self::get) without blocking the runtime.
    pub async fn get_async(
        &self,
        user_id: i64,
        provider: &str,
        name: &str,
    ) -> Result<Option<Secret>, StoreError> {
        let (store, provider, name) = (self.clone(), provider.to_owned(), name.to_owned());
        unblock(move || store.get(user_id, &provider, &name)).await
    }

    /// Records that an active credential was used now; whether there was one.
    pub fn mark_used(&self, user_id: i64, provider: &str, name: &str) -> Result<bool, StoreError> {
        let now = Timestamp::now().to_string();
        self.db().write("marking a credential used", |tx| {
            tx.credential_mark_used(user_id, provider, name, &now)
        })
    }

    /// A user's credentials (without values), optionally of one provider.
    pub fn list_for_user(
        &self,
        user_id: i64,
        provider: Option<&str>,
    ) -> Result<Vec<CredentialInfo>, StoreError> {
        self.db().read("listing credentials", |conn| {
            conn.credential_list_for_user(user_id, provider, &looks_encrypted)
        })
    }

    /// [`list_for_user`](Self::list_for_user) without blocking the runtime.
    pub async fn list_for_user_async(
        &self,
        user_id: i64,
        provider: Option<String>,
    ) -> Result<Vec<CredentialInfo>, StoreError> {
        let store = self.clone();
        unblock(move || store.list_for_user(user_id, provider.as_deref())).await
    }

    /// Deletes a credential; whether there was one.
    pub fn delete(&self, user_id: i64, provider: &str, name: &str) -> Result<bool, StoreError> {
        self.audited_write(
            "deleting a credential",
            |tx| tx.credential_delete(user_id, provider, name),
            |&deleted| deleted.then(|| credential_deleted(user_id, provider, name, "deleted")),
        )
    }

    /// [`delete`](Self::delete) without blocking the runtime.
    pub async fn delete_async(
        &self,
        user_id: i64,
        provider: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let (store, provider, name) = (self.clone(), provider.to_owned(), name.to_owned());
        unblock(move || store.delete(user_id, &provider, &name)).await
    }

    /// Deactivates a credential without deleting it; whether there was one.
    pub fn deactivate(&self, user_id: i64, provider: &str, name: &str) -> Result<bool, StoreError> {
        let now = Timestamp::now().to_string();
        self.audited_write(
            "deactivating a credential",
            |tx| tx.credential_deactivate(user_id, provider, name, &now),
            |&changed| changed.then(|| credential_deleted(user_id, provider, name, "deactivated")),
        )
    }

    /// Encrypts every credential the original stored in plaintext (the rows of
    /// `provider_credentials` and the `webhook_secret` of every provider configuration), in
    /// one transaction; then rewrites the database (`VACUUM`, with `secure_delete`) and
    /// empties the write-ahead log, so no plaintext copy remains in the files. This is
    /// `secrets crypto migrate-db`.
    pub fn encrypt_plaintext(&self) -> Result<MaintenanceReport, StoreError> {
        self.reseal(false)
    }

    /// Re-encrypts every credential that decrypts only with a previous key of the keyring
    /// under the current key (and encrypts plaintext ones), in one transaction, then scrubs
    /// the files as [`encrypt_plaintext`](Self::encrypt_plaintext) does. If it is
    /// interrupted, the transaction is rolled back and every row still decrypts with the
    /// keyring. This is `secrets crypto rotate-db`.
    pub fn rotate_to_current_key(&self) -> Result<MaintenanceReport, StoreError> {
        self.reseal(true)
    }

    /// [`mark_used`](Self::mark_used) without blocking the runtime.
    pub async fn mark_used_async(
        &self,
        user_id: i64,
        provider: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let (store, provider, name) = (self.clone(), provider.to_owned(), name.to_owned());
        unblock(move || store.mark_used(user_id, &provider, &name)).await
    }

    /// [`deactivate`](Self::deactivate) without blocking the runtime.
    pub async fn deactivate_async(
        &self,
        user_id: i64,
        provider: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let (store, provider, name) = (self.clone(), provider.to_owned(), name.to_owned());
        unblock(move || store.deactivate(user_id, &provider, &name)).await
    }

    /// [`encrypt_plaintext`](Self::encrypt_plaintext) without blocking the runtime.
    pub async fn encrypt_plaintext_async(&self) -> Result<MaintenanceReport, StoreError> {
        let store = self.clone();
        unblock(move || store.encrypt_plaintext()).await
    }

    /// [`rotate_to_current_key`](Self::rotate_to_current_key) without blocking the runtime.
    pub async fn rotate_to_current_key_async(&self) -> Result<MaintenanceReport, StoreError> {
        let store = self.clone();
        unblock(move || store.rotate_to_current_key()).await
    }

    fn reseal(&self, rotate: bool) -> Result<MaintenanceReport, StoreError> {
        let cipher = &self.inner.cipher;
        let operation = if rotate {
            "re-encrypting credentials under the current key"
        } else {
            "encrypting plaintext credentials"
        };
        let mut changed_providers = Vec::new();
        let mut later = None;
        let (mut report, scrubbed) = self.db().rewrite_scrubbing(operation, |tx| {
            let mut report = MaintenanceReport::default();
            for (id, stored) in tx.credential_all_for_update()? {
                let crypto = |source| StoreError::Crypto {
                    context: format!("credential row {id}"),
                    source,
                };
                match classify(cipher, &stored).map_err(crypto)? {
                    Stored::Plaintext => {
                        tx.credential_set_value(id, &cipher.encrypt(&stored))?;
                        report.credentials_encrypted += 1;
                    }
                    Stored::Encrypted {
                        plaintext,
                        needs_rotation: true,
                    } if rotate => {
                        tx.credential_set_value(id, &cipher.encrypt(plaintext.expose()))?;
                        report.credentials_rotated += 1;
                    }
                    Stored::Encrypted { .. } => report.credentials_unchanged += 1,
                }
            }
            for (provider, text) in tx.config_all_for_update()? {
                // A row that cannot be read (a BLOB, not UTF-8, not a JSON object) is
                // reported and left alone; the rest is done.
                let raw_text = text.as_ref().ok().cloned();
                let Ok(mut config) = text.map_err(drop).and_then(|text| {
                    CloudProviderConfig::from_stored(&provider, &text)
                        .map(CloudProviderConfig::into_map)
                        .map_err(drop)
                }) else {
                    report.unreadable_config_rows.push(provider);
                    continue;
                };
                if reseal_config(cipher, &provider, &mut config, rotate, &mut report)? {
                    // Only the credential keys change; the rest is kept byte for byte.
                    let changes: Map<String, Value> = CREDENTIAL_KEYS
                        .iter()
                        .filter_map(|key| Some(((*key).to_owned(), config.get(*key)?.clone())))
                        .collect();
                    let text = raw_text
                        .as_deref()
                        .and_then(|raw| crate::raw_json::merge_preserving(raw, &changes))
                        .unwrap_or_else(|| Value::Object(config).to_string());
                    tx.config_set(&provider, &text)?;
                    tx.notify(&Invalidation::Provider(provider.clone()))?;
                    changed_providers.push(provider);
                }
            }
            // The record is part of the transaction: the files are scrubbed only after both
            // committed, so a failing scrub (VACUUM) cannot leave a change unrecorded.
            let action = format!(
                "{operation}: {} credential rows encrypted, {} re-encrypted, {} configuration secrets encrypted, {} re-encrypted",
                report.credentials_encrypted,
                report.credentials_rotated,
                report.config_secrets_encrypted,
                report.config_secrets_rotated
            );
            let event = AuditEvent::new(CONFIG_CHANGED, action)
                .target("database", "provider_credentials")
                .detail("operation", if rotate { "rotate" } else { "encrypt" })
                .detail("credentials_encrypted", report.credentials_encrypted)
                .detail("credentials_rotated", report.credentials_rotated)
                .detail("config_secrets_encrypted", report.config_secrets_encrypted)
                .detail("config_secrets_rotated", report.config_secrets_rotated)
                .detail("providers", changed_providers.clone());
            self.audit_in(tx, Some(event), &mut later)?;
            Ok(report)
        })?;
        report.scrubbed = scrubbed;
        if let Some(invalidator) = &self.inner.invalidator {
            for provider in &changed_providers {
                invalidator.invalidate(&Invalidation::Provider(provider.clone()));
            }
        }
        self.audit_after(later)?;
        Ok(report)
    }
}

fn credential_deleted(user_id: i64, provider: &str, name: &str, verb: &str) -> AuditEvent {
    AuditEvent::new(
        CREDENTIAL_DELETED,
        format!("{verb} credential {name} of provider {provider} for user {user_id}"),
    )
    .target("credential", format!("{user_id}:{provider}:{name}"))
    .detail("user_id", user_id)
    .detail("provider", provider)
    .detail("credential_name", name)
    .detail("operation", verb)
}

/// Encrypts (or rotates) the credential keys of one configuration; whether it changed.
fn reseal_config(
    cipher: &CredentialCipher,
    provider: &str,
    config: &mut Map<String, Value>,
    rotate: bool,
    report: &mut MaintenanceReport,
) -> Result<bool, TxError> {
    let mut changed = false;
    for key in CREDENTIAL_KEYS {
        let Some(Value::String(stored)) = config.get(*key) else {
            continue;
        };
        if stored.is_empty() {
            continue;
        }
        let stored = stored.clone();
        let replacement = match classify(cipher, &stored).map_err(|source| StoreError::Crypto {
            context: format!("provider `{provider}`: `{key}`"),
            source,
        })? {
            Stored::Plaintext => {
                report.config_secrets_encrypted += 1;
                cipher.encrypt(&stored)
            }
            Stored::Encrypted {
                plaintext,
                needs_rotation: true,
            } if rotate => {
                report.config_secrets_rotated += 1;
                cipher.encrypt(plaintext.expose())
            }
            Stored::Encrypted { .. } => continue,
        };
        config.insert((*key).to_owned(), Value::String(replacement));
        changed = true;
    }
    Ok(changed)
}

fn foreign_key_to_unknown_user(e: StoreError, user_id: i64) -> StoreError {
    match &e {
        StoreError::Database { source, .. } | StoreError::Server { source, .. }
            if source.is_foreign_key_violation() =>
        {
            StoreError::UnknownUser { user_id }
        }
        _ => e,
    }
}
