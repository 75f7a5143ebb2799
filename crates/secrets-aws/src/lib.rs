//! AWS Secrets Manager provider for the secrets toolkit, on the real AWS SDK.
//!
//! The secret is one JSON object of key -> string (`SecretString`, or `SecretBinary` holding
//! the same UTF-8 JSON). [`AwsSecretsManagerProvider`] fetches the whole object with one
//! `GetSecretValue` and serves every key from it for the TTL (300 s by default); concurrent
//! cold lookups share the call; a refresh that fails with a transient error (network,
//! timeout, throttling, 5xx) serves the last good copy with a warning and retries after a
//! short backoff. Writes change one key by read-modify-write with `PutSecretValue`.
//!
//! Configuration: [`AwsSettings`], or [`AwsSettings::from_lookup`] for
//! `<APP>_AWS_SECRET_NAME` (`SIMPLETUNER_AWS_SECRET_NAME`) and friends; region, credentials
//! and endpoint (`AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL`, ...) as the SDK resolves
//! them. HTTPS runs on rustls with the ring provider; no OpenSSL, no aws-lc.
//!
//! ```no_run
//! use secrets_aws::{AwsSecretsManagerProvider, AwsSettings};
//! use secrets_core::SecretProvider;
//!
//! # async fn demo() -> Result<(), secrets_core::ProviderError> {
//! let provider = AwsSecretsManagerProvider::new(
//!     AwsSettings::new("prod/simpletuner").with_region("eu-west-1"),
//! )?;
//! if let Some(token) = provider.get("HF_TOKEN").await? {
//!     // `token` is a `Secret`: Debug prints [REDACTED]; the value is behind `expose()`.
//!     let _header = format!("Bearer {}", token.expose());
//! }
//! # Ok(())
//! # }
//! ```

mod client;
mod document;
mod errors;
#[doc(hidden)]
pub mod fuzzing;
mod plain_http;
mod provider;
mod response_limit;
mod settings;

pub use provider::{AwsProviderBuilder, AwsSecretsManagerProvider, MAX_SECRET_SIZE, PENDING_STAGE};
pub use response_limit::MAX_RESPONSE_SIZE;
pub use settings::{
    AWSCURRENT, AWSPREVIOUS, AwsSettings, CACHE_TTL_VAR_SUFFIX, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS, DEFAULT_OPERATION_TIMEOUT, DEFAULT_RETRY_BACKOFF, DEFAULT_TTL,
    SECRET_NAME_VAR_SUFFIX, VERSION_ID_VAR_SUFFIX, VERSION_STAGE_VAR_SUFFIX, VersionSelector,
};

/// The AWS SDK crates this provider is built on, for callers that pass an SDK configuration
/// or interceptors ([`AwsProviderBuilder`]) and need the same versions.
pub mod sdk {
    pub use aws_sdk_secretsmanager::*;
    pub use aws_types::SdkConfig;
}

/// The provider name used in provenance and errors.
pub const PROVIDER_NAME: &str = "aws";

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
