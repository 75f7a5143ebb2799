//! [`MemoryProvider`]: an in-process provider for tests and for values computed at start-up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use crate::{ErrorKind, ProviderError, Secret, SecretProvider};

/// A writable provider that keeps values in memory. It can be told to fail, which makes it
/// handy for testing how a chain behaves when a backend is down.
#[derive(Debug)]
pub struct MemoryProvider {
    name: String,
    values: Mutex<HashMap<String, Secret>>,
    available: AtomicBool,
    failing: AtomicBool,
    lookups: AtomicUsize,
}

impl MemoryProvider {
    /// An empty, available provider with the given name.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            values: Mutex::default(),
            available: AtomicBool::new(true),
            failing: AtomicBool::new(false),
            lookups: AtomicUsize::new(0),
        }
    }

    /// Adds a value (builder style).
    pub fn with(self, key: impl Into<String>, value: impl Into<Secret>) -> Self {
        self.insert(key, value);
        self
    }

    /// Adds or replaces a value.
    pub fn insert(&self, key: impl Into<String>, value: impl Into<Secret>) {
        self.lock().insert(key.into(), value.into());
    }

    /// Makes [`is_available`](SecretProvider::is_available) answer `available`.
    pub fn set_available(&self, available: bool) {
        self.available.store(available, Ordering::SeqCst);
    }

    /// Makes every operation fail with an [`ErrorKind::Unavailable`] error while `failing`
    /// is true.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// How many times [`get`](SecretProvider::get) was called.
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Secret>> {
        self.values.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn check(&self) -> Result<(), ProviderError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(ProviderError::new(
                self.name.clone(),
                ErrorKind::Unavailable,
                "simulated failure",
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl SecretProvider for MemoryProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_available(&self) -> bool {
        self.available.load(Ordering::SeqCst)
    }

    async fn get(&self, key: &str) -> Result<Option<Secret>, ProviderError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        Ok(self.lock().get(key).cloned())
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.check()
    }

    fn supports_writes(&self) -> bool {
        true
    }

    async fn set(&self, key: &str, value: &Secret) -> Result<(), ProviderError> {
        self.check()?;
        self.insert(key, value.clone());
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, ProviderError> {
        self.check()?;
        Ok(self.lock().remove(key).is_some())
    }
}
