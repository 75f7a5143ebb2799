//! moto's Secrets Manager server, as `cargo xtask test` exports it.

use std::sync::atomic::{AtomicU64, Ordering};

use secrets::aws::{AwsSecretsManagerProvider, AwsSettings};

/// The region the test server is used in.
pub const REGION: &str = "us-east-1";

/// The endpoint of the moto server that `cargo xtask test` started.
///
/// # Panics
/// When `SECRETS_TEST_AWS_ENDPOINT` is not set: run the tests with `cargo xtask test`.
pub fn endpoint() -> String {
    match std::env::var("SECRETS_TEST_AWS_ENDPOINT") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "SECRETS_TEST_AWS_ENDPOINT is not set: these tests need moto's Secrets Manager \
             server; run them with `cargo xtask test`, which starts it"
        ),
    }
}

/// A secret name no other test uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "it/{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Settings for a secret on the test server.
pub fn settings(name: &str) -> AwsSettings {
    AwsSettings::new(name)
        .with_region(REGION)
        .with_endpoint_url(endpoint())
}

/// Creates a secret holding `text` on the test server (through the SDK client of a provider,
/// with the credentials `cargo xtask test` exports).
pub async fn create_secret(name: &str, text: &str) {
    let provider = AwsSecretsManagerProvider::new(settings(name)).expect("test settings");
    let client = provider
        .client()
        .await
        .expect("an SDK client for the test server");
    client
        .create_secret()
        .name(name)
        .secret_string(text)
        .send()
        .await
        .expect("create a secret in moto (are AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY set? run with `cargo xtask test`)");
}

/// Replaces the secret's value (a new `AWSCURRENT` version).
pub async fn put_secret(name: &str, text: &str) {
    let provider = AwsSecretsManagerProvider::new(settings(name)).expect("test settings");
    let client = provider.client().await.expect("an SDK client");
    client
        .put_secret_value()
        .secret_id(name)
        .secret_string(text)
        .send()
        .await
        .expect("put a secret value in moto");
}
