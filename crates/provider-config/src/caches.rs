//! The global caches of the product documentation and their invalidation.
//!
//! | cache | TTL | max entries | keys |
//! |---|---|---|---|
//! | provider configuration | 300 s | 100 | `provider:{name}:config` |
//! | user permissions | 60 s | 500 | `user:{id}:...` |
//! | hardware pricing | 300 s | 1 | (one entry) |
//!
//! Every write goes to the database first and then invalidates through a
//! [`CacheInvalidator`]: in-process by default ([`ConfigCaches`] itself); a cross-process
//! broadcaster (for several server replicas sharing one database) plugs in by implementing
//! the trait and forwarding to each process's caches.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};
use std::time::Duration;

use ttl_cache::{Clock, TtlCache};

use crate::hardware::{HARDWARE_PROVIDER, HardwareInfo};
use crate::values::CloudProviderConfig;

/// How long a provider's configuration is cached.
pub const PROVIDER_CONFIG_TTL: Duration = Duration::from_secs(300);
/// How many providers' configurations are cached at most.
pub const PROVIDER_CONFIG_MAX_SIZE: usize = 100;
/// How long a user's permissions are cached (short: permission changes must take effect).
pub const USER_PERMISSION_TTL: Duration = Duration::from_secs(60);
/// How many users' entries are cached at most.
pub const USER_PERMISSION_MAX_SIZE: usize = 500;
/// How long the hardware pricing is cached.
pub const HARDWARE_INFO_TTL: Duration = Duration::from_secs(300);

/// A user's permission names, shared by the cache and its readers.
pub type PermissionSet = Arc<BTreeSet<String>>;

/// The cache key of a provider's configuration: `provider:{name}:config`.
pub fn provider_config_key(provider: &str) -> String {
    format!("provider:{provider}:config")
}

/// The prefix of every cache key of a provider: `provider:{name}:`.
pub fn provider_prefix(provider: &str) -> String {
    format!("provider:{provider}:")
}

/// The cache key of a user's permissions: `user:{id}:permissions`.
pub fn user_permissions_key(user_id: i64) -> String {
    format!("user:{user_id}:permissions")
}

/// The prefix of every cache key of a user: `user:{id}:`.
pub fn user_prefix(user_id: i64) -> String {
    format!("user:{user_id}:")
}

/// What a write made stale.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Invalidation {
    /// Everything cached about a cloud provider (prefix `provider:{name}:`; for the
    /// provider that holds the hardware pricing, that cache too).
    Provider(String),
    /// Everything cached about a user (prefix `user:{id}:`).
    User(i64),
}

impl Invalidation {
    /// The cache-key prefix this invalidates.
    pub fn prefix(&self) -> String {
        match self {
            Self::Provider(name) => provider_prefix(name),
            Self::User(id) => user_prefix(*id),
        }
    }
}

/// Drops stale cache entries after a committed write. The stores call it after every write;
/// implement it to also tell other processes (and have their listeners call
/// [`ConfigCaches::invalidate`] on their own caches).
pub trait CacheInvalidator: Send + Sync + fmt::Debug {
    /// Drops everything cached about `what`.
    fn invalidate(&self, what: &Invalidation);
}

/// The provider-configuration, user-permission and hardware-pricing caches. The process has
/// one global set ([`ConfigCaches::global`]); tests and embedders can make their own, with
/// an injected clock.
pub struct ConfigCaches {
    provider_config: TtlCache<String, CloudProviderConfig>,
    user_permissions: TtlCache<String, PermissionSet>,
    hardware_info: TtlCache<(), HardwareInfo>,
}

impl fmt::Debug for ConfigCaches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigCaches")
            .field("provider_config", &self.provider_config.len())
            .field("user_permissions", &self.user_permissions.len())
            .field("hardware_info", &self.hardware_info.len())
            .finish()
    }
}

impl Default for ConfigCaches {
    fn default() -> Self {
        Self::new()
    }
}

static GLOBAL_CACHES: LazyLock<Arc<ConfigCaches>> = LazyLock::new(|| Arc::new(ConfigCaches::new()));
static GLOBAL_INVALIDATOR: RwLock<Option<Arc<dyn CacheInvalidator>>> = RwLock::new(None);

impl ConfigCaches {
    /// New caches with the documented TTLs and sizes, on the system clock.
    pub fn new() -> Self {
        Self::build(None)
    }

    /// New caches on `clock` (a [`ttl_cache::ManualClock`] in tests).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self::build(Some(clock))
    }

    fn build(clock: Option<Arc<dyn Clock>>) -> Self {
        fn builder<V: Clone>(
            ttl: Duration,
            max: usize,
            clock: &Option<Arc<dyn Clock>>,
        ) -> ttl_cache::Builder<String, V> {
            let builder = TtlCache::builder().default_ttl(ttl).max_size(max);
            match clock {
                Some(clock) => builder.clock(Arc::clone(clock)),
                None => builder,
            }
        }
        let hardware = TtlCache::builder()
            .default_ttl(HARDWARE_INFO_TTL)
            .max_size(1);
        let hardware = match &clock {
            Some(clock) => hardware.clock(Arc::clone(clock)),
            None => hardware,
        };
        Self {
            provider_config: builder(PROVIDER_CONFIG_TTL, PROVIDER_CONFIG_MAX_SIZE, &clock).build(),
            user_permissions: builder(USER_PERMISSION_TTL, USER_PERMISSION_MAX_SIZE, &clock)
                .build(),
            hardware_info: hardware.build(),
        }
    }

    /// The process-wide caches (used by the store opened from the application's settings).
    pub fn global() -> &'static Arc<ConfigCaches> {
        &GLOBAL_CACHES
    }

    /// Provider configurations, keyed `provider:{name}:config`.
    pub fn provider_config(&self) -> &TtlCache<String, CloudProviderConfig> {
        &self.provider_config
    }

    /// User permissions, keyed `user:{id}:permissions` (and other `user:{id}:` keys).
    pub fn user_permissions(&self) -> &TtlCache<String, PermissionSet> {
        &self.user_permissions
    }

    pub(crate) fn hardware_info(&self) -> &TtlCache<(), HardwareInfo> {
        &self.hardware_info
    }

    /// Drops every entry of these caches; how many went. Loads in progress will not store
    /// their results.
    pub fn clear(&self) -> usize {
        self.provider_config.clear() + self.user_permissions.clear() + self.hardware_info.clear()
    }

    /// Drops everything these caches hold about `what` (in this process only); how many
    /// entries went.
    pub fn invalidate(&self, what: &Invalidation) -> usize {
        match what {
            Invalidation::Provider(name) => {
                let mut removed = self.provider_config.invalidate_prefix(&what.prefix());
                if name == HARDWARE_PROVIDER && self.hardware_info.remove(&()) {
                    removed += 1;
                }
                removed
            }
            Invalidation::User(_) => self.user_permissions.invalidate_prefix(&what.prefix()),
        }
    }
}

impl CacheInvalidator for ConfigCaches {
    fn invalidate(&self, what: &Invalidation) {
        ConfigCaches::invalidate(self, what);
    }
}

/// The invalidator of the global caches: the one set with [`set_global_invalidator`], else
/// the global caches themselves (in-process).
pub fn global_invalidator() -> Arc<dyn CacheInvalidator> {
    let set = GLOBAL_INVALIDATOR
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    set.unwrap_or_else(|| Arc::clone(ConfigCaches::global()) as Arc<dyn CacheInvalidator>)
}

/// Routes invalidations of the global caches through `invalidator` (a cross-process
/// broadcaster); it must also invalidate this process's [`ConfigCaches::global`].
pub fn set_global_invalidator(invalidator: Arc<dyn CacheInvalidator>) {
    *GLOBAL_INVALIDATOR
        .write()
        .unwrap_or_else(PoisonError::into_inner) = Some(invalidator);
}

/// The global provider-configuration cache (TTL 300 s, 100 entries).
pub fn provider_config_cache() -> &'static TtlCache<String, CloudProviderConfig> {
    ConfigCaches::global().provider_config()
}

/// The global user-permission cache (TTL 60 s, 500 entries).
pub fn user_permission_cache() -> &'static TtlCache<String, PermissionSet> {
    ConfigCaches::global().user_permissions()
}

/// Drops everything cached about a cloud provider (prefix `provider:{name}:`), through the
/// global invalidator.
pub fn invalidate_provider_cache(provider: &str) {
    global_invalidator().invalidate(&Invalidation::Provider(provider.to_owned()));
}

/// Drops everything cached about a user (prefix `user:{id}:`), through the global
/// invalidator.
pub fn invalidate_user_cache(user_id: i64) {
    global_invalidator().invalidate(&Invalidation::User(user_id));
}
