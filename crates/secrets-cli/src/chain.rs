//! The manager that the chain commands (get, set, delete, doctor) use.

use std::time::Duration;

use secrets::{AppName, Config, SecretsManager};

use crate::cli::{ChainArgs, ProviderList};
use crate::failure::Failure;

/// The configuration: the application's variables, then the command-line options.
pub(crate) fn config(app: &AppName, args: &ChainArgs) -> Result<Config, Failure> {
    let mut config = Config::from_lookup(app, &|name| std::env::var_os(name))?;
    if let Some(path) = &args.secrets_file {
        config = config.file_path(path);
    }
    if let Some(prefix) = &args.env_prefix {
        config = config.env_prefix(prefix);
    }
    if let Some(ProviderList(kinds)) = &args.providers {
        config.providers = Some(kinds.clone());
    }
    // One process, one lookup: caching buys nothing here.
    config.cache_ttl = Duration::ZERO;
    Ok(config)
}

/// The manager for a configuration.
pub(crate) fn manager(config: &Config) -> Result<SecretsManager, Failure> {
    Ok(config.build()?)
}
