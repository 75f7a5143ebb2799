//! Files holding secrets that group or others can read are reported in the logs.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use integration_tests::CapturedLogs;
use secrets::crypto::KeyLoader;
use secrets::{FileProvider, SecretProvider};

#[tokio::test(flavor = "current_thread")]
async fn a_world_readable_secrets_file_is_warned_about() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json");
    fs::write(&path, r#"{"K": "v"}"#).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let provider = FileProvider::new(&path);
    assert!(provider.get("K").await.unwrap().is_some());
    let text = logs.text();
    assert!(
        text.contains("secrets file is accessible by group or others"),
        "{text}"
    );
    assert!(text.contains("secrets.json"), "{text}");
}

#[test]
fn a_private_secrets_file_is_not_warned_about() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json");
    fs::write(&path, r#"{"K": "v"}"#).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    FileProvider::new(&path).get_blocking("K").unwrap();
    assert!(!logs.text().contains("accessible by group or others"));
}

#[test]
fn a_group_readable_key_file_is_warned_about() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credential.key");
    fs::write(&path, "passphrase\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let ring = KeyLoader::new(&secrets::AppName::new("it").unwrap())
        .key_file(&path)
        .env_lookup(|_| None)
        .load()
        .unwrap();
    assert!(!format!("{ring:?}").contains("passphrase"));
    let text = logs.text();
    assert!(
        text.contains("credential key file is accessible by group or others"),
        "{text}"
    );
}
