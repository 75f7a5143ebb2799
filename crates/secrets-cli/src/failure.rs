//! How a command fails: an exit code of the contract and a message without secret values.

use secrets::config::StoreError;
use secrets::{ConfigError, SecretsError};

/// Exit codes of the contract.
pub(crate) mod exit {
    pub(crate) const NOT_FOUND: u8 = 1;
    pub(crate) const USAGE: u8 = 2;
    pub(crate) const PROVIDER: u8 = 3;
    pub(crate) const CRYPTO: u8 = 4;
}

/// A failure with the exit code it maps to. Messages never contain secret values.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    /// `None`: end quietly with `code` (the reader of stdout went away).
    pub(crate) message: Option<String>,
}

impl Failure {
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: Some(message.into()),
        }
    }

    /// Stdout was closed by its reader (`secrets doctor | head -1`): nothing more to say,
    /// and not an error.
    pub(crate) fn closed_pipe() -> Self {
        Self {
            code: 0,
            message: None,
        }
    }
}

impl From<SecretsError> for Failure {
    fn from(e: SecretsError) -> Self {
        let code = match e {
            // `--provider NAME` naming no provider of the chain: a usage error.
            SecretsError::UnknownProvider { .. } => exit::USAGE,
            _ => exit::PROVIDER,
        };
        Self::new(code, e.to_string())
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        let code = match e {
            ConfigError::Provider(_) => exit::PROVIDER,
            _ => exit::USAGE,
        };
        Self::new(code, e.to_string())
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        let code = if e.is_crypto() {
            exit::CRYPTO
        } else if e.is_invalid_input() {
            exit::USAGE
        } else {
            exit::PROVIDER
        };
        // Names stored by the original (a provider, a credential) may hold control
        // characters: escaped, so a message cannot forge or hide lines.
        Self::new(code, crate::escape::key(&e.to_string()))
    }
}
