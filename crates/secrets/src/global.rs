//! A process-wide manager, as the original server's module-level singleton. It is a thin
//! convenience: code that can pass a [`SecretsManager`] around should do that instead.

use std::sync::{Arc, PoisonError, RwLock};

use secrets_core::SecretsManager;

use crate::{ConfigError, SecretsManagerExt};

static GLOBAL: RwLock<Option<Arc<SecretsManager>>> = RwLock::new(None);

/// The process-wide manager, built with [`SecretsManager::from_env`] on first use. A
/// configuration error is returned and not remembered: the next call tries again.
pub fn global() -> Result<Arc<SecretsManager>, ConfigError> {
    if let Some(manager) = GLOBAL
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
    {
        return Ok(Arc::clone(manager));
    }
    let mut slot = GLOBAL.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(manager) = slot.as_ref() {
        return Ok(Arc::clone(manager));
    }
    let manager = Arc::new(SecretsManager::from_env()?);
    *slot = Some(Arc::clone(&manager));
    Ok(manager)
}

/// Replaces the process-wide manager (for example with one built from an explicit
/// [`Config`](crate::Config) at start-up).
pub fn set_global(manager: SecretsManager) {
    *GLOBAL.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(manager));
}

/// Forgets the process-wide manager so the next [`global`] call builds a fresh one.
/// For tests only.
#[cfg(any(test, feature = "test-util"))]
pub fn reset_global() {
    *GLOBAL.write().unwrap_or_else(PoisonError::into_inner) = None;
}
