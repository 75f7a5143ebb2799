//! OpenBao servers of the test's own: one stopped mid-run (the last copy is served, the
//! server asked again after the backoff, the new value seen once it is back), and one that
//! serves TLS with a generated CA; and the shared server behind a proxy that is slow to
//! forward (one deadline per lookup, write and health check).

use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::vault::{self, OwnBao, RecordingProxy, unique};
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

/// Behind a proxy that holds every request 600 ms, each request fits in a 1 s timeout but a
/// first lookup (token lookup, mount lookup, read), a health check (health, token lookup) and
/// a write (token lookup, mount lookup, read, write) do not: each fails with a timeout after
/// about 1 s, not after all its requests.
#[tokio::test]
async fn one_deadline_covers_all_the_requests_of_a_lookup_a_write_and_a_health_check() {
    let admin = vault::shared();
    let path = unique("slow");
    admin.put_v2("secret", &path, json!({"K": "v"}));
    let proxy = RecordingProxy::start(&admin.addr, |_| {
        std::thread::sleep(Duration::from_millis(600))
    });
    let limit = Duration::from_secs(1);
    let fresh = || {
        VaultProvider::new(
            VaultSettings::new(proxy.addr.clone())
                .token(admin.root_token.clone())
                .path(&path)
                .timeouts(Duration::from_secs(2), limit),
        )
        .unwrap()
    };
    for operation in ["lookup", "health check", "write"] {
        let provider = fresh();
        let started = Instant::now();
        let error = match operation {
            "lookup" => provider.get("K").await.map(drop),
            "health check" => provider.health().await,
            _ => provider.set("K", &Secret::new("w")).await,
        }
        .unwrap_err();
        let took = started.elapsed();
        assert_eq!(error.kind(), ErrorKind::Timeout, "{operation}: {error}");
        assert!(
            error.to_string().contains(&format!("for the {operation}")),
            "{error}"
        );
        assert!(
            took < limit + Duration::from_millis(400),
            "{operation} took {took:?}"
        );
    }
    // Nothing was written by the write that timed out before its last request.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(admin.get_v2("secret", &path), Some(json!({"K": "v"})));
}
