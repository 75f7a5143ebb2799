//! [`Config`]: which providers, in which order, with which settings; turned into a
//! [`SecretsManager`].

use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

use private_fs::{AppName, InvalidAppName};
use secrets_core::{
    DEFAULT_CACHE_TTL, DEFAULT_NEGATIVE_CACHE_TTL, ProviderError, SecretProvider, SecretsManager,
};

use crate::ProviderKind;

/// What can be wrong with a [`Config`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A provider name that does not exist.
    #[error("unknown provider `{0}` (expected one of {names})", names = ProviderKind::names())]
    UnknownProvider(String),
    /// A provider that was asked for explicitly but is not in this build.
    #[error(
        "provider `{provider}` is not compiled into this build (enable the `{feature}` feature of the `secrets` crate)"
    )]
    NotCompiled {
        /// The provider's name.
        provider: &'static str,
        /// The cargo feature that compiles it in.
        feature: &'static str,
    },
    /// A provider that was asked for explicitly has no settings.
    #[error("provider `{0}` was requested but is not configured")]
    NotConfigured(ProviderKind),
    /// A provider's settings are wrong (a variable that is not UTF-8, no home directory to
    /// find a default file in, ...).
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The application name cannot name a directory.
    #[error(transparent)]
    InvalidAppName(#[from] InvalidAppName),
}

/// The configuration of a [`SecretsManager`]: the application, the settings of each
/// compiled-in provider, the providers' order and the cache lifetimes.
///
/// Plain data: fill it in directly, with the builder-style methods, or from the environment
/// with [`Config::from_env`]. [`Config::build`] makes the manager. A provider whose settings
/// are `None` is not configured and not part of the chain.
///
/// ```
/// # #[cfg(all(feature = "env", feature = "file"))] {
/// use secrets::{AppName, Config, ProviderKind};
///
/// let dir = tempfile::tempdir().unwrap();
/// let manager = Config::new(AppName::new("myapp").unwrap())
///     .file_path(dir.path().join("secrets.json"))
///     .providers([ProviderKind::Env, ProviderKind::File])
///     .build()
///     .unwrap();
/// assert_eq!(manager.provider_names(), ["env", "file"]);
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Application name: `~/.<app>/` and the `<APP>_*` variables.
    pub app: AppName,
    /// Environment provider settings.
    #[cfg(feature = "env")]
    #[cfg_attr(docsrs, doc(cfg(feature = "env")))]
    pub env: Option<secrets_env::EnvSettings>,
    /// Secrets-file provider settings.
    #[cfg(feature = "file")]
    #[cfg_attr(docsrs, doc(cfg(feature = "file")))]
    pub file: Option<secrets_file::FileSettings>,
    /// AWS Secrets Manager provider settings; `None` (not configured) unless a secret name
    /// is set (`<APP>_AWS_SECRET_NAME` for [`Config::from_lookup`]).
    #[cfg(feature = "aws")]
    #[cfg_attr(docsrs, doc(cfg(feature = "aws")))]
    pub aws: Option<secrets_aws::AwsSettings>,
    /// Vault / OpenBao provider settings (`None` unless `VAULT_ADDR` is set or they are given).
    #[cfg(feature = "vault")]
    #[cfg_attr(docsrs, doc(cfg(feature = "vault")))]
    pub vault: Option<secrets_vault::VaultSettings>,
    /// Providers and their order; `None` means every compiled-in, configured provider in
    /// default order.
    pub providers: Option<Vec<ProviderKind>>,
    /// How long resolved values are cached ([`DEFAULT_CACHE_TTL`] by default).
    pub cache_ttl: Duration,
    /// How long a miss is remembered ([`DEFAULT_NEGATIVE_CACHE_TTL`] by default).
    pub negative_cache_ttl: Duration,
    /// Providers whose settings variables are wrong (a variable that is not UTF-8, an
    /// unsupported `VAULT_ADDR`, ...), with why. [`Config::build`] puts each in the chain as a
    /// provider that fails every lookup (or refuses to build when it was asked for by name),
    /// so one bad variable of one provider does not stop the others.
    pub unusable: Vec<(ProviderKind, ProviderError)>,
}

impl Default for Config {
    fn default() -> Self {
        Self::new(AppName::default())
    }
}

/// One provider as a [`Config`] sees it, for diagnostics (`secrets doctor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderStatus {
    /// The provider.
    pub kind: ProviderKind,
    /// Whether its cargo feature is on.
    pub compiled: bool,
    /// Whether it has settings.
    pub configured: bool,
    /// Whether the configuration's provider list includes it.
    pub selected: bool,
}

impl Config {
    /// Defaults for an application: the environment and file providers with default
    /// settings (no prefix; the default secrets file), caches as documented.
    pub fn new(app: AppName) -> Self {
        Self {
            app,
            #[cfg(feature = "env")]
            env: Some(secrets_env::EnvSettings::default()),
            #[cfg(feature = "file")]
            file: Some(secrets_file::FileSettings::default()),
            #[cfg(feature = "aws")]
            aws: None,
            #[cfg(feature = "vault")]
            vault: None,
            providers: None,
            cache_ttl: DEFAULT_CACHE_TTL,
            negative_cache_ttl: DEFAULT_NEGATIVE_CACHE_TTL,
            unusable: Vec::new(),
        }
    }

    /// The default application's configuration from the process environment; see
    /// [`Config::from_lookup`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&AppName::default(), &|name| std::env::var_os(name))
    }

    /// An application's configuration from a variable lookup (the environment, or a map in
    /// tests): each compiled-in provider reads its own variables (for example
    /// `<APP>_SECRETS_FILE` for the file provider). Empty variables count as unset. A
    /// provider whose variables are wrong (not UTF-8, not a valid address) is recorded in
    /// [`Config::unusable`] with the reason naming the variable, and the others are read as
    /// usual.
    pub fn from_lookup(
        app: &AppName,
        lookup: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Self, ConfigError> {
        let _ = lookup; // unused when no provider with settings variables is compiled in
        #[allow(unused_mut)]
        let mut config = Self::new(app.clone());
        #[cfg(feature = "env")]
        match secrets_env::EnvSettings::from_lookup(app, lookup) {
            Ok(settings) => config.env = Some(settings),
            Err(error) => config.unusable.push((ProviderKind::Env, error)),
        }
        #[cfg(feature = "file")]
        match secrets_file::FileSettings::from_lookup(app, lookup) {
            Ok(settings) => config.file = Some(settings),
            Err(error) => config.unusable.push((ProviderKind::File, error)),
        }
        #[cfg(feature = "aws")]
        match secrets_aws::AwsSettings::from_lookup(app, lookup) {
            Ok(settings) => config.aws = settings,
            Err(error) => config.unusable.push((ProviderKind::Aws, error)),
        }
        #[cfg(feature = "vault")]
        match secrets_vault::VaultSettings::from_lookup(app, lookup) {
            Ok(settings) => config.vault = settings,
            Err(error) => config.unusable.push((ProviderKind::Vault, error)),
        }
        Ok(config)
    }

    /// Sets the environment-variable prefix (`PREFIX_KEY`).
    #[cfg(feature = "env")]
    #[cfg_attr(docsrs, doc(cfg(feature = "env")))]
    pub fn env_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.env.get_or_insert_with(Default::default).prefix = Some(prefix.into());
        self
    }

    /// Sets the secrets file.
    #[cfg(feature = "file")]
    #[cfg_attr(docsrs, doc(cfg(feature = "file")))]
    pub fn file_path(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.file.get_or_insert_with(Default::default).path = Some(path.into());
        self
    }

    /// Sets the AWS Secrets Manager provider's settings (which configures it).
    #[cfg(feature = "aws")]
    #[cfg_attr(docsrs, doc(cfg(feature = "aws")))]
    pub fn aws(mut self, settings: secrets_aws::AwsSettings) -> Self {
        self.aws = Some(settings);
        self
    }

    /// Sets the Vault / OpenBao settings (which configures the provider).
    #[cfg(feature = "vault")]
    #[cfg_attr(docsrs, doc(cfg(feature = "vault")))]
    pub fn vault(mut self, settings: secrets_vault::VaultSettings) -> Self {
        self.vault = Some(settings);
        self
    }

    /// Sets the providers and their order.
    pub fn providers(mut self, kinds: impl IntoIterator<Item = ProviderKind>) -> Self {
        self.providers = Some(kinds.into_iter().collect());
        self
    }

    /// Sets how long resolved values are cached; zero disables the cache.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Sets how long a miss is remembered; zero disables that.
    pub fn negative_cache_ttl(mut self, ttl: Duration) -> Self {
        self.negative_cache_ttl = ttl;
        self
    }

    /// Whether a provider has settings here (independently of being compiled in).
    fn is_configured(&self, kind: ProviderKind) -> bool {
        if self.unusable.iter().any(|(k, _)| *k == kind) {
            return true;
        }
        match kind {
            #[cfg(feature = "env")]
            ProviderKind::Env => self.env.is_some(),
            #[cfg(feature = "file")]
            ProviderKind::File => self.file.is_some(),
            #[cfg(feature = "aws")]
            ProviderKind::Aws => self.aws.is_some(),
            #[cfg(feature = "vault")]
            ProviderKind::Vault => self.vault.is_some(),
            // A provider whose feature is off has no settings field.
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Every provider of the table: compiled in, configured, selected.
    pub fn provider_status(&self) -> Vec<ProviderStatus> {
        ProviderKind::all()
            .map(|kind| ProviderStatus {
                kind,
                compiled: kind.is_compiled(),
                configured: self.is_configured(kind),
                selected: self.providers.as_ref().is_none_or(|p| p.contains(&kind)),
            })
            .collect()
    }

    /// Builds the manager.
    ///
    /// Providers listed explicitly must be compiled in and configured, or this fails naming
    /// the cargo feature to enable. With the default list, providers that are not compiled
    /// in or not configured are left out; one whose settings cannot be used (no home
    /// directory to find the default file in) stays in the chain and fails every lookup with
    /// the reason, so that nothing silently falls back to a later provider or a default.
    ///
    /// When no provider in the chain accepts writes and the `file` feature is on, writes go
    /// to the secrets file at its configured or default path, as the original server does.
    pub fn build(&self) -> Result<SecretsManager, ConfigError> {
        let explicit = self.providers.is_some();
        let kinds: Vec<ProviderKind> = match &self.providers {
            Some(kinds) => kinds.clone(),
            None => ProviderKind::all().collect(),
        };
        let mut builder = SecretsManager::builder()
            .cache_ttl(self.cache_ttl)
            .negative_cache_ttl(self.negative_cache_ttl);
        let mut has_writer = false;
        for kind in kinds {
            if !explicit && !kind.is_compiled() {
                continue;
            }
            if let Some((_, error)) = self.unusable.iter().find(|(k, _)| *k == kind) {
                if explicit {
                    return Err(ConfigError::Provider(error.clone()));
                }
                tracing::warn!(provider = kind.name(), %error, "provider cannot be used");
                builder = builder.provider(Arc::new(Unusable {
                    name: kind.name(),
                    error: error.clone(),
                }));
                continue;
            }
            match kind.build(self) {
                Ok(Some(provider)) => {
                    has_writer |= provider.supports_writes();
                    builder = builder.provider(provider);
                }
                Ok(None) if explicit => return Err(ConfigError::NotConfigured(kind)),
                Ok(None) => {}
                Err(error) if explicit => return Err(error),
                // Configured but unusable (say, no home directory to find the default file
                // in): it stays in the chain and fails every lookup, so nothing falls back
                // silently to a later provider or a default value.
                Err(ConfigError::Provider(error)) => {
                    tracing::warn!(provider = kind.name(), %error, "provider cannot be used");
                    builder = builder.provider(Arc::new(Unusable {
                        name: kind.name(),
                        error,
                    }));
                }
                Err(error) => return Err(error),
            }
        }
        if !has_writer && let Some(writer) = self.fallback_writer() {
            builder = builder.fallback_writer(writer);
        }
        Ok(builder.build())
    }

    fn fallback_writer(&self) -> Option<Arc<dyn SecretProvider>> {
        #[cfg(feature = "file")]
        {
            file_provider(self).ok().flatten()
        }
        #[cfg(not(feature = "file"))]
        {
            None
        }
    }
}

/// A configured provider that could not be built: every lookup and health check fails with
/// the reason.
#[derive(Debug)]
struct Unusable {
    name: &'static str,
    error: ProviderError,
}

#[secrets_core::async_trait]
impl SecretProvider for Unusable {
    fn name(&self) -> &str {
        self.name
    }

    fn is_available(&self) -> bool {
        true
    }

    async fn get(&self, _key: &str) -> Result<Option<secrets_core::Secret>, ProviderError> {
        Err(self.error.clone())
    }

    async fn health(&self) -> Result<(), ProviderError> {
        Err(self.error.clone())
    }
}

/// The environment provider of a configuration (a row of the provider table).
#[cfg(feature = "env")]
pub(crate) fn env_provider(
    config: &Config,
) -> Result<Option<Arc<dyn SecretProvider>>, ConfigError> {
    Ok(config.env.as_ref().map(|settings| {
        Arc::new(secrets_env::EnvProvider::new(settings.clone())) as Arc<dyn SecretProvider>
    }))
}

/// The file provider of a configuration (a row of the provider table).
#[cfg(feature = "file")]
pub(crate) fn file_provider(
    config: &Config,
) -> Result<Option<Arc<dyn SecretProvider>>, ConfigError> {
    config
        .file
        .as_ref()
        .map(|settings| {
            secrets_file::FileProvider::from_settings(&config.app, settings)
                .map(|p| Arc::new(p) as Arc<dyn SecretProvider>)
                .map_err(ConfigError::from)
        })
        .transpose()
}

/// The AWS Secrets Manager provider of a configuration (a row of the provider table).
#[cfg(feature = "aws")]
pub(crate) fn aws_provider(
    config: &Config,
) -> Result<Option<Arc<dyn SecretProvider>>, ConfigError> {
    config
        .aws
        .as_ref()
        .map(|settings| {
            secrets_aws::AwsSecretsManagerProvider::new(settings.clone())
                .map(|p| Arc::new(p) as Arc<dyn SecretProvider>)
                .map_err(ConfigError::from)
        })
        .transpose()
}

/// The Vault provider of a configuration (a row of the provider table).
#[cfg(feature = "vault")]
pub(crate) fn vault_provider(
    config: &Config,
) -> Result<Option<Arc<dyn SecretProvider>>, ConfigError> {
    config
        .vault
        .as_ref()
        .map(|settings| {
            secrets_vault::VaultProvider::new(settings.clone())
                .map(|p| Arc::new(p) as Arc<dyn SecretProvider>)
                .map_err(ConfigError::from)
        })
        .transpose()
}

/// `SecretsManager::from_env()` and `SecretsManager::from_config(..)` for the facade.
pub trait SecretsManagerExt: Sized {
    /// The manager the original server would build from the process environment.
    fn from_env() -> Result<Self, ConfigError>;
    /// The manager for a configuration.
    fn from_config(config: &Config) -> Result<Self, ConfigError>;
}

impl SecretsManagerExt for SecretsManager {
    fn from_env() -> Result<Self, ConfigError> {
        Config::from_env()?.build()
    }

    fn from_config(config: &Config) -> Result<Self, ConfigError> {
        config.build()
    }
}
