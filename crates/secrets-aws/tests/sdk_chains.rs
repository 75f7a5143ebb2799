//! The provider with the SDK's own region and credential chains pointed at loopback servers
//! that hang or refuse (instance metadata, container credentials), against moto's real
//! server (`cargo xtask test`).
//!
//! The SDK reads those settings from the process environment, which a test cannot change
//! safely while others run, so each scenario runs in a child process of this test binary
//! (the same test, selected with `--exact`) with an environment of its own: no AWS
//! variables but the scenario's, and no `~/.aws`. The parent starts the loopback servers,
//! checks the child passed, and that the SDK really asked the server.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Hostile, HostileServer};
use secrets_aws::{AwsSecretsManagerProvider, AwsSettings};
use secrets_core::{ErrorKind, ProviderError, SecretProvider};

/// Set in a child: the name of the scenario it runs.
const SCENARIO_VAR: &str = "SECRETS_AWS_TEST_SCENARIO";

/// The scenario this process runs, when it is a child.
fn scenario() -> Option<String> {
    std::env::var(SCENARIO_VAR).ok()
}

/// Runs `test` (this binary's test of that name) in a child process for `scenario`, with
/// only `vars` of the AWS settings, and fails with the child's output when it fails.
fn run_child(test: &str, scenario: &str, vars: &[(&str, String)]) {
    let moto = common::endpoint();
    let nowhere = std::env::temp_dir().join("secrets-aws-test-no-home");
    let output = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env_clear()
        .env(SCENARIO_VAR, scenario)
        .env("SECRETS_TEST_AWS_ENDPOINT", &moto)
        .env("HOME", &nowhere)
        .env("AWS_CONFIG_FILE", nowhere.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", nowhere.join("credentials"))
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run this test binary again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "scenario {scenario} failed in the child:\n{stdout}\n{stderr}"
    );
}

/// The child's lookup: a provider of `settings` with the SDK's default chains, once.
fn lookup(settings: AwsSettings) -> (Result<Option<String>, ProviderError>, Duration) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let provider = AwsSecretsManagerProvider::new(settings).unwrap();
        let started = Instant::now();
        let result = provider
            .get("K")
            .await
            .map(|found| found.map(|s| s.expose().to_owned()));
        let elapsed = started.elapsed();
        println!("scenario result after {elapsed:?}: {result:?}");
        (result, elapsed)
    })
}

/// Settings for a secret on moto, with the region left to the SDK.
fn on_moto(name: &str) -> AwsSettings {
    AwsSettings::new(name)
        .with_endpoint_url(common::endpoint())
        .with_max_attempts(1)
}

fn test_credentials() -> [(&'static str, String); 2] {
    [
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
    ]
}

#[test]
fn region_discovery_from_hanging_instance_metadata_shares_the_lookups_deadline() {
    const TOTAL: Duration = Duration::from_millis(1500);
    if scenario().is_some() {
        // No region anywhere but instance metadata, which never answers: the SDK's own
        // metadata timeouts are longer than the lookup's whole limit.
        let settings = on_moto("test/no-region").with_timeouts(Duration::from_secs(1), TOTAL);
        let (result, elapsed) = lookup(settings);
        let e = result.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        assert!(e.to_string().contains("1.5 s"), "{e}");
        assert!(
            elapsed >= TOTAL - Duration::from_millis(50)
                && elapsed < TOTAL + Duration::from_secs(1),
            "{elapsed:?}"
        );
        return;
    }
    let metadata = HostileServer::start(Hostile::Silent);
    let mut vars = vec![("AWS_EC2_METADATA_SERVICE_ENDPOINT", metadata.url())];
    vars.extend(test_credentials());
    run_child(
        "region_discovery_from_hanging_instance_metadata_shares_the_lookups_deadline",
        "hanging-metadata",
        &vars,
    );
    assert!(
        metadata.connections() > 0,
        "the SDK asked instance metadata"
    );
}

#[test]
fn a_hanging_container_credentials_endpoint_ends_at_the_lookups_deadline() {
    const TOTAL: Duration = Duration::from_millis(1500);
    if scenario().is_some() {
        let settings =
            on_moto("test/hanging-credentials").with_timeouts(Duration::from_secs(1), TOTAL);
        let (result, elapsed) = lookup(settings);
        let e = result.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        assert!(elapsed < TOTAL + Duration::from_secs(1), "{elapsed:?}");
        return;
    }
    let credentials = HostileServer::start(Hostile::Silent);
    run_child(
        "a_hanging_container_credentials_endpoint_ends_at_the_lookups_deadline",
        "hanging-credentials",
        &[
            ("AWS_REGION", "us-east-1".to_owned()),
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                format!("{}/credentials", credentials.url()),
            ),
        ],
    );
    assert!(credentials.connections() > 0, "the SDK asked the endpoint");
}
