//! The facade with the AWS provider against moto's real server (`cargo xtask test`): the
//! configuration from the environment, the chain falling through, one TTL of staleness at
//! most through the manager's cache, the blocking API, health reports.

use std::collections::HashMap;
use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

use integration_tests::{CapturedLogs, moto};
use secrets::aws::AwsSecretsManagerProvider;
use secrets::{
    AppName, Config, ErrorKind, FileProvider, ManualClock, ProviderKind, SecretsError,
    SecretsManager,
};

fn app() -> AppName {
    AppName::new("simpletuner").unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn the_environment_configures_aws_into_the_default_chain() {
    let name = moto::unique("from-env");
    moto::create_secret(&name, r#"{"REPLICATE_API_TOKEN": "r8_from_aws"}"#).await;
    let home = tempfile::tempdir().unwrap();
    let vars: HashMap<&str, OsString> = [
        ("SIMPLETUNER_AWS_SECRET_NAME", OsString::from(&name)),
        (
            "SIMPLETUNER_SECRETS_FILE",
            home.path().join("absent.json").into_os_string(),
        ),
    ]
    .into_iter()
    .collect();
    let config = Config::from_lookup(&app(), &|n| vars.get(n).cloned()).unwrap();
    let status = config.provider_status();
    let aws = status.iter().find(|s| s.kind == ProviderKind::Aws).unwrap();
    assert!(aws.compiled && aws.configured && aws.selected, "{aws:?}");
    let manager = config.build().unwrap();
    assert_eq!(manager.provider_names(), ["env", "file", "aws"]);
    // Region, endpoint and credentials come from the SDK's chains (the variables xtask sets).
    let found = manager
        .get_with_source("REPLICATE_API_TOKEN")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.value.expose(), found.provider.as_str()),
        ("r8_from_aws", "aws")
    );
    // Writes still go to the file by default.
    assert_eq!(manager.writer().unwrap().name(), "file");
    let report = manager.health_report().await;
    let aws = report.iter().find(|h| h.provider == "aws").unwrap();
    assert!(aws.available && aws.reachable, "{aws:?}");
    assert!(aws.latency > Duration::ZERO);

    // Without a secret name, AWS is not configured and not in the chain.
    let config = Config::from_lookup(&app(), &|_| None).unwrap();
    assert!(config.aws.is_none());
    assert_eq!(config.build().unwrap().provider_names(), ["env", "file"]);
}

#[tokio::test(flavor = "current_thread")]
async fn the_chain_falls_through_when_aws_fails() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json");
    std::fs::write(&path, r#"{"HF_TOKEN": "hf_from_file"}"#).unwrap();
    let missing = moto::unique("missing");
    let manager = Config::new(app())
        .aws(moto::settings(&missing))
        .file_path(&path)
        .providers([ProviderKind::Aws, ProviderKind::File])
        .build()
        .unwrap();
    let found = manager.get_with_source("HF_TOKEN").await.unwrap().unwrap();
    assert_eq!(
        (found.value.expose(), found.provider.as_str()),
        ("hf_from_file", "file")
    );
    assert!(
        logs.text().contains("provider failed; trying the next one"),
        "{}",
        logs.text()
    );
    // A key no provider has: AWS failed, so the answer is an error, not "absent".
    let err = manager.get("NOWHERE").await.unwrap_err();
    assert!(matches!(err, SecretsError::ProvidersFailed { .. }), "{err}");
    assert_eq!(err.failed_providers(), ["aws"]);
    assert_eq!(
        err.provider_errors()[0].kind(),
        ErrorKind::NotFound,
        "{err}"
    );
    assert!(err.to_string().contains(&missing), "{err}");

    // An endpoint where nothing listens: unavailable, and still the file answers.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let down = Config::new(app())
        .aws(
            moto::settings(&missing)
                .with_endpoint_url(format!("http://127.0.0.1:{closed}"))
                .with_max_attempts(1),
        )
        .file_path(&path)
        .providers([ProviderKind::Aws, ProviderKind::File])
        .build()
        .unwrap();
    let found = down.get_with_source("HF_TOKEN").await.unwrap().unwrap();
    assert_eq!(found.provider, "file");
    let err = down.get("NOWHERE").await.unwrap_err();
    assert!(err.is_transient(), "{err}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_changed_value_is_seen_within_one_ttl_through_the_manager() {
    let name = moto::unique("freshness");
    moto::create_secret(&name, r#"{"A": "a1", "B": "b1"}"#).await;
    let clock = Arc::new(ManualClock::new());
    let provider = AwsSecretsManagerProvider::builder(moto::settings(&name))
        .clock(clock.clone())
        .build()
        .unwrap();
    assert_eq!(provider.settings().ttl, Duration::from_secs(300));
    let manager = SecretsManager::builder()
        .provider(Arc::new(provider))
        .cache_ttl(Duration::from_secs(300))
        .clock(clock.clone())
        .build();
    // t=0: the secret is fetched.
    assert_eq!(manager.get("A").await.unwrap().unwrap().expose(), "a1");
    // t=250: B is asked for the first time, from the copy fetched at t=0.
    clock.advance(Duration::from_secs(250));
    assert_eq!(manager.get("B").await.unwrap().unwrap().expose(), "b1");
    // t=260: B changes in AWS.
    clock.advance(Duration::from_secs(10));
    moto::put_secret(&name, r#"{"A": "a2", "B": "b2"}"#).await;
    // t=300: one TTL after the fetch, both keys show the new value. (Were the caches
    // stacked, the manager would serve B = b1 until t=550.)
    clock.advance(Duration::from_secs(40));
    assert_eq!(manager.get("B").await.unwrap().unwrap().expose(), "b2");
    assert_eq!(manager.get("A").await.unwrap().unwrap().expose(), "a2");
}

#[tokio::test(flavor = "current_thread")]
async fn a_zero_ttl_asks_aws_on_every_lookup_even_through_the_manager_cache() {
    let name = moto::unique("zero-ttl");
    moto::create_secret(&name, r#"{"K": "v1"}"#).await;
    let provider = Arc::new(
        AwsSecretsManagerProvider::new(moto::settings(&name).with_ttl(Duration::ZERO)).unwrap(),
    );
    let manager = SecretsManager::builder().provider(provider.clone()).build();
    assert_eq!(manager.get("K").await.unwrap().unwrap().expose(), "v1");
    moto::put_secret(&name, r#"{"K": "v2"}"#).await;
    assert_eq!(manager.get("K").await.unwrap().unwrap().expose(), "v2");
    assert_eq!(provider.fetches(), 2);
}

#[test]
fn the_blocking_api_reads_aws_and_writes_to_it_by_name() {
    let name = moto::unique("blocking");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(moto::create_secret(&name, r#"{"K": "v"}"#));
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(app())
        .aws(moto::settings(&name))
        .file_path(dir.path().join("secrets.json"));
    let manager = secrets::blocking::SecretsManager::from_config(&config).unwrap();
    let found = manager.get_with_source("K").unwrap().unwrap();
    assert_eq!(
        (found.value.expose(), found.provider.as_str()),
        ("v", "aws")
    );
    manager.set_in("aws", "NEW", "from-blocking").unwrap();
    assert_eq!(
        manager.get("NEW").unwrap().unwrap().expose(),
        "from-blocking"
    );
    assert!(manager.delete_in("aws", "NEW").unwrap());
    assert!(manager.get("NEW").unwrap().is_none());
    // The default writer is still the file.
    manager.set("LOCAL", "x").unwrap();
    assert!(dir.path().join("secrets.json").exists());
}

#[tokio::test(flavor = "current_thread")]
async fn health_reports_a_missing_secret_and_file_provider_still_serves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.json");
    std::fs::write(&path, "{}").unwrap();
    let manager = SecretsManager::builder()
        .provider(Arc::new(
            AwsSecretsManagerProvider::new(moto::settings(&moto::unique("absent"))).unwrap(),
        ))
        .provider(Arc::new(FileProvider::new(&path)))
        .build();
    let report = manager.health_report().await;
    assert_eq!(report[0].provider, "aws");
    assert!(report[0].available && !report[0].reachable);
    assert_eq!(report[0].error_kind, Some(ErrorKind::NotFound));
    assert!(report[1].reachable);
    let aws = &manager.providers()[0];
    assert!(aws.supports_writes());
}
