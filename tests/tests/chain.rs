//! The facade's chain over real files, with logs captured at TRACE level.

use std::sync::Arc;

use integration_tests::CapturedLogs;
use secrets::{Config, FileProvider, MemoryProvider, ProviderKind, SecretsError, SecretsManager};

const SENTINEL: &str = "SENTINEL-c41d-never-logged";

#[tokio::test(flavor = "current_thread")]
async fn values_never_reach_logs_errors_or_debug_output() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json");
    std::fs::write(
        &path,
        format!(r#"{{"GOOD": "{SENTINEL}", "BAD": ["{SENTINEL}"], "NUM": 7}}"#),
    )
    .unwrap();
    let failing = Arc::new(MemoryProvider::new("flaky").with("GOOD", SENTINEL));
    failing.set_failing(true);
    let manager = SecretsManager::builder()
        .provider(Arc::new(FileProvider::new(&path)))
        .provider(failing)
        .build();

    let mut shown = Vec::new();
    let found = manager.get_with_source("GOOD").await.unwrap().unwrap();
    assert_eq!(
        (found.value.expose(), found.provider.as_str()),
        (SENTINEL, "file")
    );
    shown.push(format!("{found:?} {:?}", found.value));
    let err = manager.get("BAD").await.unwrap_err();
    assert_eq!(err.failed_providers(), ["file", "flaky"]);
    shown.push(format!("{err} {err:?}"));
    manager.set("NEW", SENTINEL).await.unwrap();
    assert_eq!(
        manager.get("NEW").await.unwrap().unwrap().expose(),
        SENTINEL
    );
    assert!(manager.delete("NEW").await.unwrap());
    shown.push(format!("{manager:?}"));

    // A malformed document that contains the value.
    std::fs::write(&path, format!("{{\"GOOD\": \"{SENTINEL}\",, }}")).unwrap();
    manager.clear_cache();
    let err = manager.get("GOOD").await.unwrap_err();
    shown.push(format!("{err} {err:?}"));
    let err = manager.set("OTHER", "x").await.unwrap_err();
    shown.push(format!("{err} {err:?}"));
    shown.push(format!("{:?}", manager.health_report().await));

    let logs = logs.text();
    assert!(
        logs.contains("provider failed"),
        "logging was captured: {logs}"
    );
    assert!(!logs.contains(SENTINEL), "logs leaked: {logs}");
    for text in shown {
        assert!(!text.contains(SENTINEL), "leaked: {text}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_failing_provider_is_an_error_not_an_absence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.yaml");
    std::fs::write(&path, "present: yes\n").unwrap();
    let manager = Config::new(secrets::AppName::new("it").unwrap())
        .file_path(&path)
        .providers([ProviderKind::File])
        .build()
        .unwrap();
    assert!(manager.get("absent").await.unwrap().is_none());
    std::fs::write(&path, "present: [unclosed\n").unwrap();
    // (A key not looked up before: "absent" is remembered as a miss for a few seconds.)
    let err = manager.get("also-absent").await.unwrap_err();
    assert!(matches!(err, SecretsError::ProvidersFailed { .. }), "{err}");
    assert!(err.to_string().contains("secrets.yaml"), "{err}");
}

#[tokio::test(flavor = "current_thread")]
async fn file_edits_reach_a_manager_once_its_cache_entry_expires() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json");
    std::fs::write(&path, r#"{"K": "one"}"#).unwrap();
    let clock = Arc::new(secrets::ManualClock::new());
    let manager = SecretsManager::builder()
        .provider(Arc::new(FileProvider::new(&path)))
        .clock(clock.clone())
        .build();
    assert_eq!(manager.get("K").await.unwrap().unwrap().expose(), "one");
    std::fs::write(&path, r#"{"K": "two!"}"#).unwrap();
    assert_eq!(manager.get("K").await.unwrap().unwrap().expose(), "one");
    clock.advance(secrets::DEFAULT_CACHE_TTL);
    assert_eq!(manager.get("K").await.unwrap().unwrap().expose(), "two!");
}
