//! OpenBao servers of the test's own: one stopped mid-run (the last copy is served, the
//! server asked again after the backoff, the new value seen once it is back), and one that
//! serves TLS with a generated CA.

use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::vault::OwnBao;
use secrets::vault::{VaultProvider, VaultSettings};
use secrets::{
    Config, ErrorKind, ManualClock, MemoryProvider, ProviderKind, Secret, SecretProvider,
    SecretsManager,
};
use serde_json::json;

const TTL: Duration = Duration::from_secs(300);
const BACKOFF: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_stopped_server_serves_the_last_copy_and_the_new_value_after_recovery() {
    let mut bao = OwnBao::start();
    bao.admin()
        .put_v2("secret", "app", json!({"HF_TOKEN": "before"}));
    let clock = Arc::new(ManualClock::new());
    let vault = Arc::new(
        VaultProvider::with_clock(
            VaultSettings::new(bao.addr.clone())
                .token("root")
                .path("app")
                .cache_ttl(TTL)
                .timeouts(Duration::from_secs(1), Duration::from_secs(2)),
            clock.clone(),
        )
        .unwrap(),
    );
    let next = Arc::new(MemoryProvider::new("next").with("ONLY_NEXT", "from-next"));
    let manager = SecretsManager::builder()
        .provider(vault.clone())
        .provider(next)
        .cache_ttl(TTL)
        .clock(clock.clone())
        .build();
    let get = |key: &'static str| {
        let manager = &manager;
        async move {
            manager
                .get_with_source(key)
                .await
                .unwrap()
                .map(|r| (r.provider, r.value.expose().to_owned()))
        }
    };
    assert_eq!(
        get("HF_TOKEN").await,
        Some(("vault".into(), "before".into()))
    );

    bao.stop();
    clock.advance(TTL);
    // The refresh fails (connection refused): the last copy is served.
    assert_eq!(
        get("HF_TOKEN").await,
        Some(("vault".into(), "before".into()))
    );
    assert_eq!(
        vault.freshness(),
        Some(BACKOFF),
        "asked again after the backoff"
    );
    let reads = vault.stats().secret_reads;
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        get("HF_TOKEN").await,
        Some(("vault".into(), "before".into()))
    );
    assert_eq!(
        vault.stats().secret_reads,
        reads,
        "no request during the backoff"
    );
    // Other keys fall through to the next provider meanwhile.
    assert_eq!(
        get("ONLY_NEXT").await,
        Some(("next".into(), "from-next".into()))
    );

    // Back (a dev server starts empty: the value is written again, changed).
    bao.restart();
    bao.admin()
        .put_v2("secret", "app", json!({"HF_TOKEN": "after"}));
    clock.advance(BACKOFF);
    assert_eq!(
        get("HF_TOKEN").await,
        Some(("vault".into(), "after".into()))
    );
}

#[tokio::test]
async fn with_no_copy_a_down_server_is_an_error_and_the_chain_moves_on() {
    let mut bao = OwnBao::start();
    let addr = bao.addr.clone();
    bao.stop();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.json");
    std::fs::write(&file, r#"{"IN_FILE": "from-file"}"#).unwrap();
    // Through the facade: Vault first, then the file.
    let manager = Config::default()
        .vault(
            VaultSettings::new(addr)
                .token("root")
                .timeouts(Duration::from_millis(500), Duration::from_secs(1)),
        )
        .file_path(&file)
        .providers([ProviderKind::Vault, ProviderKind::File])
        .build()
        .unwrap();
    let found = manager.get_with_source("IN_FILE").await.unwrap().unwrap();
    assert_eq!(
        (found.provider.as_str(), found.value.expose()),
        ("file", "from-file")
    );
    let error = manager.get("ELSEWHERE").await.unwrap_err();
    assert!(error.to_string().contains("vault"), "{error}");
    let health = manager.health_report().await;
    let vault = health.iter().find(|h| h.provider == "vault").unwrap();
    assert!(vault.available && !vault.reachable);
    assert_eq!(vault.error_kind, Some(ErrorKind::Unavailable));
}

/// Waits until a TLS dev server answers its health check (with the right CA).
async fn wait_healthy(provider: &VaultProvider) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(error) = provider.health().await {
        assert!(
            Instant::now() < deadline,
            "TLS server never healthy: {error}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn tls_is_verified_with_the_configured_ca_and_a_failure_says_tls() {
    let dir = tempfile::tempdir().unwrap();
    let bao = OwnBao::start_tls(dir.path());
    let settings = VaultSettings::new(bao.addr.clone())
        .token("root")
        .path("tls-app");
    let trusted = VaultProvider::new(settings.clone().ca_cert(bao.ca_cert())).unwrap();
    wait_healthy(&trusted).await;
    trusted.set("K", &Secret::new("over-tls")).await.unwrap();
    assert_eq!(
        trusted.get("K").await.unwrap().unwrap().expose(),
        "over-tls"
    );

    // Without the CA: the system roots do not know it; the error says TLS and is transient.
    let untrusted = VaultProvider::new(settings.clone()).unwrap();
    let error = untrusted.get("K").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert!(error.to_string().contains("TLS"), "{error}");
    assert!(
        error.to_string().to_lowercase().contains("certificate"),
        "{error}"
    );

    // With another CA (not the server's): refused as well.
    let other = tempfile::tempdir().unwrap();
    let other_bao = OwnBao::start_tls(other.path());
    let wrong_ca = VaultProvider::new(settings.clone().ca_cert(other_bao.ca_cert())).unwrap();
    let error = wrong_ca.get("K").await.unwrap_err();
    assert!(error.to_string().contains("TLS"), "{error}");

    // Verification off: it works (and is logged as dangerous when the provider is built).
    let unverified = VaultProvider::new(settings.danger_skip_verify(true)).unwrap();
    assert_eq!(
        unverified.get("K").await.unwrap().unwrap().expose(),
        "over-tls"
    );

    // A file that is not PEM is refused when the provider is built.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let error = VaultProvider::new(
        VaultSettings::new(bao.addr.clone())
            .token("root")
            .ca_cert(&junk),
    )
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Misconfigured, "{error}");
    assert!(error.to_string().contains("junk.pem"), "{error}");
}
