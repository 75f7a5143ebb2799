//! The Secrets Manager client: the SDK's configuration chain on a rustls + ring HTTPS client,
//! with the settings' timeouts and retries.
//!
//! The SDK logs every request and response with `Debug` at TRACE level. Request bodies (the
//! secret, for `PutSecretValue`) show as `BoxBody` there, because the SDK's own byte-counting
//! wrapper replaces them before that log line, and `GetSecretValue` answers are logged
//! redacted (the operation is marked sensitive) unless `LOG_SENSITIVE_BODIES=true` is set.
//! The tests check both at TRACE level with a planted value.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::retry::RetryConfig;
use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::config::{Region, SharedHttpClient, SharedInterceptor};
use aws_smithy_http_client::tls;
use aws_types::SdkConfig;
use secrets_core::{ErrorKind, Location, ProviderError};

use crate::plain_http::PlainHttpWarning;
use crate::response_limit::{self, MAX_RESPONSE_SIZE};
use crate::{AwsSettings, PROVIDER_NAME};

/// The HTTPS client: hyper 1 with rustls on the ring provider (one TLS stack, no aws-lc),
/// reading at most [`MAX_RESPONSE_SIZE`] of any response (credentials endpoints included).
pub(crate) fn https_client() -> SharedHttpClient {
    response_limit::capped(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https(),
        MAX_RESPONSE_SIZE,
    )
}

/// Loads the SDK configuration the way the AWS CLI would (region and credential chains,
/// `AWS_ENDPOINT_URL`), with the settings' region and endpoint taking precedence.
pub(crate) async fn load_sdk_config(settings: &AwsSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(https_client());
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The settings' connect timeout, and `operation` as the limit of a whole call.
pub(crate) fn timeouts(settings: &AwsSettings, operation: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(settings.connect_timeout)
        .operation_timeout(operation)
        .build()
}

/// A caller's SDK configuration, with its HTTP client (if it brings one) capped as ours is.
pub(crate) fn with_capped_http_client(sdk: &SdkConfig) -> SdkConfig {
    match sdk.http_client() {
        Some(client) => sdk
            .to_builder()
            .http_client(response_limit::capped(client, MAX_RESPONSE_SIZE))
            .build(),
        None => sdk.clone(),
    }
}

/// The client for `sdk` with the settings applied on top.
pub(crate) fn build_client(
    sdk: &SdkConfig,
    settings: &AwsSettings,
    interceptors: &[SharedInterceptor],
) -> Result<Client, ProviderError> {
    let mut builder = aws_sdk_secretsmanager::config::Builder::from(sdk)
        .timeout_config(timeouts(settings, settings.operation_timeout))
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts));
    if sdk.http_client().is_none() {
        builder = builder.http_client(https_client());
    }
    if let Some(region) = &settings.region {
        builder = builder.region(Region::new(region.clone()));
    }
    if let Some(url) = &settings.endpoint_url {
        builder = builder.endpoint_url(url);
    }
    // One per client, so once per provider.
    builder.push_interceptor(SharedInterceptor::new(PlainHttpWarning::default()));
    for interceptor in interceptors {
        builder.push_interceptor(interceptor.clone());
    }
    let config = builder.build();
    if config.region().is_none() {
        return Err(ProviderError::new(
            PROVIDER_NAME,
            ErrorKind::Misconfigured,
            "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a region in the AWS \
             profile), or the region in the provider's settings",
        )
        .with_location(Location::Secret(settings.secret_name.clone())));
    }
    Ok(Client::from_conf(config))
}
