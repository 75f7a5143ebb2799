//! The one table of providers: names, default order, cargo features, and how each is built
//! from a [`Config`]. Adding a provider means its crate, one row here, one feature line.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use secrets_core::SecretProvider;

use crate::{Config, ConfigError};

/// A kind of provider, in the order of the default chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
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

/// Builds a provider from the configuration; `Ok(None)` when its settings are absent (the
/// provider is not configured).
type Factory = fn(&Config) -> Result<Option<Arc<dyn SecretProvider>>, ConfigError>;

/// One row of the table.
struct Row {
    kind: ProviderKind,
    name: &'static str,
    /// The facade's cargo feature that compiles the provider in.
    feature: &'static str,
    /// `None` when the feature is off.
    factory: Option<Factory>,
}

/// Every provider, in default chain order.
const TABLE: &[Row] = &[
    Row {
        kind: ProviderKind::Env,
        name: "env",
        feature: "env",
        #[cfg(feature = "env")]
        factory: Some(crate::chain_config::env_provider),
        #[cfg(not(feature = "env"))]
        factory: None,
    },
    Row {
        kind: ProviderKind::File,
        name: "file",
        feature: "file",
        #[cfg(feature = "file")]
        factory: Some(crate::chain_config::file_provider),
        #[cfg(not(feature = "file"))]
        factory: None,
    },
    Row {
        kind: ProviderKind::Aws,
        name: "aws",
        feature: "aws",
        #[cfg(feature = "aws")]
        factory: Some(crate::chain_config::aws_provider),
        #[cfg(not(feature = "aws"))]
        factory: None,
    },
    Row {
        kind: ProviderKind::Vault,
        name: "vault",
        feature: "vault",
        #[cfg(feature = "vault")]
        factory: Some(crate::chain_config::vault_provider),
        #[cfg(not(feature = "vault"))]
        factory: None,
    },
];

fn row(kind: ProviderKind) -> &'static Row {
    TABLE
        .iter()
        .find(|r| r.kind == kind)
        .unwrap_or_else(|| unreachable!("every kind has a row"))
}

impl ProviderKind {
    /// Every kind, in default chain order.
    pub fn all() -> impl Iterator<Item = Self> {
        TABLE.iter().map(|r| r.kind)
    }

    /// The provider's name (`env`, `file`, `aws`, `vault`).
    pub fn name(self) -> &'static str {
        row(self).name
    }

    /// The cargo feature of the `secrets` crate that compiles the provider in.
    pub fn feature(self) -> &'static str {
        row(self).feature
    }

    /// Whether this build includes the provider (its cargo feature is on).
    pub fn is_compiled(self) -> bool {
        row(self).factory.is_some()
    }

    /// Parses a comma-separated list such as `env,file` (case-insensitive; duplicates are
    /// dropped, empty items ignored).
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

    /// Makes the provider, if compiled in and configured.
    pub(crate) fn build(
        self,
        config: &Config,
    ) -> Result<Option<Arc<dyn SecretProvider>>, ConfigError> {
        match row(self).factory {
            Some(factory) => factory(config),
            None => Err(ConfigError::NotCompiled {
                provider: self.name(),
                feature: self.feature(),
            }),
        }
    }

    /// The names of all providers, for messages: `env, file, aws, vault`.
    pub(crate) fn names() -> String {
        TABLE.iter().map(|r| r.name).collect::<Vec<_>>().join(", ")
    }
}

impl FromStr for ProviderKind {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TABLE
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(s))
            .map(|r| r.kind)
            .ok_or_else(|| ConfigError::UnknownProvider(s.to_owned()))
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
