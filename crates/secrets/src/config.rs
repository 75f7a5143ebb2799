//! [`Config`]: the original server's configuration, turned into a [`SecretsManager`].

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use secrets_core::{
    DEFAULT_CACHE_TTL, DEFAULT_NEGATIVE_CACHE_TTL, Secret, SecretProvider, SecretsManager,
};

/// The application name used when none is given; it sets `~/.<app>/` and the `<APP>_` prefix
/// of the configuration variables.
pub const DEFAULT_APP_NAME: &str = "simpletuner";

/// A kind of provider, in the order of the default chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// Environment variables.
    Env,
    /// Secrets file.
    File,
    /// AWS Secrets Manager.
    Aws,
    /// HashiCorp Vault / OpenBao.
    Vault,
}

impl ProviderKind {
    /// Every kind, in default chain order.
    pub const ALL: [Self; 4] = [Self::Env, Self::File, Self::Aws, Self::Vault];

    /// The provider's name (`env`, `file`, `aws`, `vault`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Env => "env",
            Self::File => "file",
            Self::Aws => "aws",
            Self::Vault => "vault",
        }
    }

    /// Whether this build includes the provider (its cargo feature is on).
    pub fn is_compiled(self) -> bool {
        match self {
            Self::Env => cfg!(feature = "env"),
            Self::File => cfg!(feature = "file"),
            Self::Aws | Self::Vault => false,
        }
    }

    /// Parses a comma-separated list such as `env,file`.
    pub fn parse_list(list: &str) -> Result<Vec<Self>, ConfigError> {
        let mut kinds = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let kind = part.parse()?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        Ok(kinds)
    }
}

impl FromStr for ProviderKind {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| ConfigError::UnknownProvider(s.to_owned()))
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What can be wrong with a [`Config`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A provider name that does not exist.
    #[error("unknown provider `{0}` (expected one of env, file, aws, vault)")]
    UnknownProvider(String),
    /// A provider that was asked for explicitly but is not in this build.
    #[error(
        "provider `{0}` is not compiled into this build (enable the `{0}` feature of the `secrets` crate)"
    )]
    NotCompiled(ProviderKind),
    /// The file provider was asked for, no path was given and there is no home directory.
    #[error(
        "provider `file`: no secrets file path given and no home directory (HOME) to find the default one"
    )]
    NoHomeDirectory,
}

/// The configuration of a [`SecretsManager`], with the original server's knobs.
///
/// Plain data: fill it in directly, with the builder-style methods, or from the environment
/// with [`Config::from_env`]. [`Config::build`] makes the manager.
///
/// ```
/// # #[cfg(all(feature = "env", feature = "file"))] {
/// let dir = tempfile::tempdir().unwrap();
/// let manager = secrets::Config::new("myapp")
///     .file_path(dir.path().join("secrets.json"))
///     .providers([secrets::ProviderKind::Env, secrets::ProviderKind::File])
///     .build()
///     .unwrap();
/// assert_eq!(manager.provider_names(), ["env", "file"]);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// Application name: `~/.<app>/secrets.json` and the `<APP>_*` variables.
    pub app_name: String,
    /// Prefix of environment variables (`PREFIX_KEY`); none by default.
    pub env_prefix: Option<String>,
    /// Secrets file; default: first existing of `~/.<app>/secrets.{json,yaml,yml}`.
    pub file_path: Option<PathBuf>,
    /// AWS Secrets Manager secret holding a JSON object of key -> value.
    pub aws_secret_name: Option<String>,
    /// AWS region.
    pub aws_region: Option<String>,
    /// Vault address.
    pub vault_url: Option<String>,
    /// Vault token.
    pub vault_token: Option<Secret>,
    /// Path of the Vault secret under the `secret` mount (default `<app>`).
    pub vault_path: Option<String>,
    /// Providers and their order; `None` means every compiled-in provider in default order.
    pub providers: Option<Vec<ProviderKind>>,
    /// How long resolved values are cached ([`DEFAULT_CACHE_TTL`] by default).
    pub cache_ttl: Duration,
    /// How long a miss is remembered ([`DEFAULT_NEGATIVE_CACHE_TTL`] by default).
    pub negative_cache_ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self::new(DEFAULT_APP_NAME)
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: impl Into<$ty>) -> Self {
            self.$name = Some(value.into());
            self
        }
    };
}

impl Config {
    /// Defaults for an application name.
    pub fn new(app_name: impl Into<String>) -> Self {
        Self {
            app_name: app_name.into(),
            env_prefix: None,
            file_path: None,
            aws_secret_name: None,
            aws_region: None,
            vault_url: None,
            vault_token: None,
            vault_path: None,
            providers: None,
            cache_ttl: DEFAULT_CACHE_TTL,
            negative_cache_ttl: DEFAULT_NEGATIVE_CACHE_TTL,
        }
    }

    /// The default application's configuration from the process environment; see
    /// [`Config::from_lookup`] for the variables read.
    pub fn from_env() -> Self {
        Self::from_lookup(DEFAULT_APP_NAME, |name| std::env::var(name).ok())
    }

    /// An application's configuration from a variable lookup (the environment, or a map in
    /// tests). With `APP` the uppercased application name, it reads `APP_SECRETS_FILE`,
    /// `APP_AWS_SECRET_NAME`, `AWS_DEFAULT_REGION` then `AWS_REGION`, `VAULT_ADDR`,
    /// `VAULT_TOKEN` and `APP_VAULT_PATH`. Empty variables count as unset.
    pub fn from_lookup(app_name: &str, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let app_var = app_name.to_uppercase().replace(['-', '.'], "_");
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        Self {
            file_path: get(&format!("{app_var}_SECRETS_FILE")).map(PathBuf::from),
            aws_secret_name: get(&format!("{app_var}_AWS_SECRET_NAME")),
            aws_region: get("AWS_DEFAULT_REGION").or_else(|| get("AWS_REGION")),
            vault_url: get("VAULT_ADDR"),
            vault_token: get("VAULT_TOKEN").map(Secret::new),
            vault_path: get(&format!("{app_var}_VAULT_PATH")),
            ..Self::new(app_name)
        }
    }

    setter!(
        /// Sets the environment-variable prefix.
        env_prefix: String
    );
    setter!(
        /// Sets the secrets file.
        file_path: PathBuf
    );
    setter!(
        /// Sets the AWS secret name.
        aws_secret_name: String
    );
    setter!(
        /// Sets the AWS region.
        aws_region: String
    );
    setter!(
        /// Sets the Vault address.
        vault_url: String
    );
    setter!(
        /// Sets the Vault token.
        vault_token: Secret
    );
    setter!(
        /// Sets the Vault secret path.
        vault_path: String
    );

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

    /// Builds the manager. Providers listed explicitly must be compiled in; with the default
    /// list, missing ones are skipped (and a setting for them is reported with a warning).
    ///
    /// When no provider in the chain accepts writes and the `file` feature is on, writes go
    /// to the secrets file at its configured or default path, as the original server does.
    pub fn build(&self) -> Result<SecretsManager, ConfigError> {
        let explicit = self.providers.is_some();
        let kinds = self
            .providers
            .clone()
            .unwrap_or_else(|| ProviderKind::ALL.to_vec());
        let mut builder = SecretsManager::builder()
            .cache_ttl(self.cache_ttl)
            .negative_cache_ttl(self.negative_cache_ttl);
        let mut has_writer = false;
        for kind in kinds {
            if !kind.is_compiled() {
                if explicit {
                    return Err(ConfigError::NotCompiled(kind));
                }
                self.warn_if_configured(kind);
                continue;
            }
            match self.provider(kind)? {
                Some(provider) => {
                    has_writer |= provider.supports_writes();
                    builder = builder.provider(provider);
                }
                None if explicit => return Err(ConfigError::NoHomeDirectory),
                None => tracing::warn!(
                    provider = kind.name(),
                    "no home directory and no path configured; provider skipped"
                ),
            }
        }
        if !has_writer && let Some(writer) = self.fallback_writer() {
            builder = builder.fallback_writer(writer);
        }
        Ok(builder.build())
    }

    fn warn_if_configured(&self, kind: ProviderKind) {
        let configured = match kind {
            ProviderKind::Aws => self.aws_secret_name.is_some(),
            ProviderKind::Vault => self.vault_url.is_some(),
            ProviderKind::Env | ProviderKind::File => false,
        };
        if configured {
            tracing::warn!(
                provider = kind.name(),
                "provider is configured but not compiled into this build; enable the `{}` feature",
                kind.name()
            );
        }
    }

    /// Makes one provider; `Ok(None)` when it cannot be located (the file without a home).
    fn provider(&self, kind: ProviderKind) -> Result<Option<Arc<dyn SecretProvider>>, ConfigError> {
        match kind {
            #[cfg(feature = "env")]
            ProviderKind::Env => Ok(Some(Arc::new(match &self.env_prefix {
                Some(prefix) => secrets_env::EnvProvider::with_prefix(prefix),
                None => secrets_env::EnvProvider::new(),
            }))),
            #[cfg(feature = "file")]
            ProviderKind::File => Ok(self
                .file_provider()
                .map(|p| Arc::new(p) as Arc<dyn SecretProvider>)),
            other => Err(ConfigError::NotCompiled(other)),
        }
    }

    #[cfg(feature = "file")]
    fn file_provider(&self) -> Option<secrets_file::FileProvider> {
        match &self.file_path {
            Some(path) => Some(secrets_file::FileProvider::new(path)),
            None => secrets_file::FileProvider::for_app(&self.app_name),
        }
    }

    fn fallback_writer(&self) -> Option<Arc<dyn SecretProvider>> {
        #[cfg(feature = "file")]
        {
            self.file_provider()
                .map(|p| Arc::new(p) as Arc<dyn SecretProvider>)
        }
        #[cfg(not(feature = "file"))]
        {
            None
        }
    }
}

/// `SecretsManager::from_env()` and `SecretsManager::from_config(..)` for the facade.
pub trait SecretsManagerExt: Sized {
    /// The manager the original server would build from the process environment.
    fn from_env() -> Self;
    /// The manager for a configuration.
    fn from_config(config: &Config) -> Result<Self, ConfigError>;
}

impl SecretsManagerExt for SecretsManager {
    fn from_env() -> Self {
        Config::from_env().build().unwrap_or_else(|error| {
            // The default provider list skips what is not compiled in, so this is not reached;
            // an empty chain is still a safe answer if it ever is.
            tracing::error!(%error, "cannot build the secrets manager; using an empty chain");
            SecretsManager::builder().build()
        })
    }

    fn from_config(config: &Config) -> Result<Self, ConfigError> {
        config.build()
    }
}
