//! Configuration of cloud **training** providers (`replicate`, `modal`, ...) and their
//! credentials, in an embedded SQLite store compatible with the SimpleTuner server's, with
//! the read-through caches, the tamper-evident audit trail and the hardware-pricing cache
//! its documentation describes. ("Provider" here is a cloud training provider, not a
//! secrets provider.)
//!
//! - [`ConfigStore`]: one JSON object per provider in `provider_config` of
//!   `<state>/cloud/jobs.db`; reads through the provider-configuration cache, writes in one
//!   transaction together with its audit row, invalidates after every write. Typed views with the original's
//!   defaults and checks: [`WebhookConfig`], [`CostLimit`], [`HardwareInfo`].
//! - [`CredentialStore`]: users' provider credentials in `provider_credentials`, encrypted
//!   with `credential-crypto`; migration from the original's plaintext and key rotation.
//! - [`AuditTrail`]: `<state>/audit.db`, the original's HMAC chain plus a MAC over every
//!   column of new rows; [`AuditTrail::verify`] names the first modified, inserted, deleted
//!   or reordered row.
//! - [`caches`]: the global caches (provider configuration 300 s / 100 entries, user
//!   permissions 60 s / 500 entries) and [`CacheInvalidator`], the seam for cross-process
//!   invalidation.
//! - [`hardware`]: hardware pricing, cached 300 s, with the documented defaults.
//! - Feature `postgres`: every store on a PostgreSQL database shared by several server
//!   replicas ([`StoreLocation::Postgres`], `<APP>_DATABASE_URL`), the same API: writes
//!   notify the other replicas in their transaction (`NOTIFY`), each [`ConfigStore`] listens
//!   on a dedicated connection and drops stale entries through [`CacheInvalidator`], and all
//!   replicas append to one audit chain. [`copy_store`] migrates the SQLite store.
//!
//! The files: the state directory is `<APP>_STATE_DIR` > `<APP>_CONFIG_DIR` > the original's
//! candidates ([`StoreSettings`]); databases are created 0600 (with their write-ahead log and
//! shared-memory files) in 0700 directories, with the original's pragmas (WAL,
//! `synchronous=NORMAL`, `foreign_keys=ON`, `busy_timeout=30000`).
//!
//! ```
//! use provider_config::{AuditKey, AuditTrail, ConfigStore, CostLimit, CostPeriod};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let trail = AuditTrail::open_path(
//!     &dir.path().join("audit.db"),
//!     AuditKey::from_bytes(b"example audit key".to_vec()).unwrap(),
//! ).unwrap();
//! let store = ConfigStore::builder(dir.path().join("cloud/jobs.db"))
//!     .audit(trail.clone())
//!     .open()
//!     .unwrap();
//! store.set_cost_limit("replicate", CostLimit {
//!     enabled: true,
//!     amount: 50.0,
//!     period: CostPeriod::Weekly,
//!     ..CostLimit::default()
//! }).unwrap();
//! assert_eq!(store.cost_limit("replicate").unwrap().amount, 50.0);
//! assert!(store.cost_limit("replicate").unwrap().enabled);
//! // The change is in the audit trail, naming the keys but not the values.
//! let entries = trail.list(&Default::default()).unwrap();
//! assert_eq!(entries[0].event_type, "provider.configured");
//! assert!(trail.verify().unwrap().valid);
//! ```

mod audit;
mod backend;
pub mod caches;
mod config_store;
mod copy;
mod credentials;
mod error;
pub mod hardware;
mod location;
#[cfg(feature = "postgres")]
mod postgres;
mod raw_json;
mod rows;
mod sealing;
mod settings;
mod sqlite;
mod time;
mod values;

pub use audit::{
    Actor, AuditEntry, AuditEvent, AuditFilter, AuditKey, AuditKeyOrigin, AuditTrail, BrokenLink,
    CHECKPOINT, CONFIG_CHANGED, CREDENTIAL_CREATED, CREDENTIAL_DELETED, ChainReport, CleanupReport,
    LinkError, PROVIDER_CONFIGURED, Tampering,
};
pub use caches::{
    CacheInvalidator, ConfigCaches, Invalidation, invalidate_provider_cache, invalidate_user_cache,
};
pub use config_store::{ConfigStore, ConfigStoreBuilder};
pub use copy::{CopyReport, copy_store};
pub use credential_crypto::{AppName, Secret};
pub use credentials::{CredentialInfo, CredentialStore, MaintenanceReport};
pub use error::{DatabaseError, StoreError};
pub use hardware::{HardwareInfo, HardwareOption};
pub use location::{DatabaseUrl, StoreLocation};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::ListenerStatus;
pub use sealing::looks_encrypted;
pub use settings::StoreSettings;
pub use time::{InvalidTimestamp, Timestamp};
pub use values::{
    COST_LIMIT_ACTION, COST_LIMIT_AMOUNT, COST_LIMIT_ENABLED, COST_LIMIT_PERIOD, CREDENTIAL_KEYS,
    CloudProviderConfig, CostAction, CostLimit, CostPeriod, WEBHOOK_ALLOWED_IPS,
    WEBHOOK_REQUIRE_SIGNATURE, WEBHOOK_SECRET, WEBHOOK_URL, WebhookConfig, validate_provider_name,
};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod tests;
