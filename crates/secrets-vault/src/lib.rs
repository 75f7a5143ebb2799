//! HashiCorp Vault / OpenBao provider for the secrets toolkit, over the HTTP API (`reqwest`
//! with rustls and the ring provider; no Vault SDK, no OpenSSL).
//!
//! - **What it reads**: the secret at `{mount}/{path}` (default `secret/simpletuner`), one
//!   object of key -> value, on KV v2 (`/v1/{mount}/data/{path}`) or KV v1
//!   (`/v1/{mount}/{path}`). The mount's version is detected once and remembered; only a
//!   clear answer picks v1, never a refusal, a sealed server or a network error.
//! - **Caching**: one read per TTL (300 s) with single flight and the last copy served on
//!   transient failures ([`secrets_core::Snapshot`]); a changed value is seen within one TTL.
//! - **Auth**: a token, or AppRole (role ID + secret ID or secret-ID file); tokens are renewed
//!   at about two thirds of their TTL, and AppRole logs in again when renewal is refused or
//!   the maximum TTL is reached, and after a 403 (at most once per lookup, and after a pause
//!   when a token fresh from a login was refused); a replaced token is revoked.
//! - **Writes**: `set`/`delete` of one key, with check-and-set on KV v2.
//! - **Errors** say which: permission denied, not found, sealed/unavailable, TLS, timeout,
//!   malformed answer. No error, log line or `Debug` output holds a token, secret ID or value.
//!
//! Configuration from the environment (`VAULT_ADDR`, `VAULT_TOKEN`, `SIMPLETUNER_VAULT_PATH`,
//! ...) is [`VaultSettings::from_lookup`]; the variables are listed there.
//!
//! ```
//! use std::sync::Arc;
//! use secrets_core::{SecretProvider, SecretsManager};
//! use secrets_vault::{AppRole, VaultProvider, VaultSettings};
//!
//! let settings = VaultSettings::new("https://vault.example.com:8200")
//!     .approle(AppRole::new("my-role-id", "my-secret-id"))
//!     .mount("secret")
//!     .path("myapp");
//! // No request is made until the first lookup.
//! let provider = VaultProvider::new(settings).unwrap();
//! assert!(provider.is_available());
//! assert!(!format!("{provider:?}").contains("my-secret-id"));
//!
//! let manager = SecretsManager::builder().provider(Arc::new(provider)).build();
//! assert_eq!(manager.provider_names(), ["vault"]);
//! ```
//!
//! Reading, with a server running:
//!
//! ```no_run
//! # async fn demo() -> Result<(), secrets_core::ProviderError> {
//! use secrets_core::SecretProvider;
//! use secrets_vault::{VaultProvider, VaultSettings};
//!
//! let provider = VaultProvider::new(VaultSettings::new("http://127.0.0.1:8200").token("root"))?;
//! if let Some(token) = provider.get("HF_TOKEN").await? {
//!     let _header = format!("Bearer {}", token.expose());
//! }
//! # Ok(()) }
//! ```

mod auth;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod kv;
mod provider;
mod settings;

pub use http::VaultStats;
pub use provider::VaultProvider;
pub use settings::{
    ADDR_VAR, APPROLE_MOUNT_VAR_SUFFIX, AppRole, CACERT_VAR, CACHE_TTL_VAR_SUFFIX,
    CLIENT_TIMEOUT_VAR, DEFAULT_APPROLE_MOUNT, DEFAULT_CACHE_TTL, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MOUNT, DEFAULT_TIMEOUT, KV_VERSION_VAR_SUFFIX, KvVersion, MOUNT_VAR_SUFFIX,
    NAMESPACE_VAR, PATH_VAR_SUFFIX, PROVIDER_NAME, ROLE_ID_VAR, SECRET_ID_FILE_VAR, SECRET_ID_VAR,
    SECRET_VERSION_VAR_SUFFIX, SKIP_VERIFY_VAR, SecretIdSource, TOKEN_VAR, VaultAuth,
    VaultSettings,
};

#[cfg(test)]
mod tests;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
