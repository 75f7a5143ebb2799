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
fn a_slow_set_up_leaves_the_call_only_the_rest_of_the_lookups_limit() {
    const TOTAL: Duration = Duration::from_secs(2);
    if scenario().is_some() {
        // The region comes from instance metadata in about two delays (token, region); the
        // endpoint then never answers. The call gets what the set-up left of the limit.
        let endpoint = std::env::var("SECRETS_AWS_TEST_SILENT_ENDPOINT").unwrap();
        let settings = AwsSettings::new("test/slow-set-up")
            .with_endpoint_url(endpoint)
            .with_max_attempts(1)
            .with_timeouts(Duration::from_secs(1), TOTAL);
        let (result, elapsed) = lookup(settings);
        let e = result.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        assert!(
            elapsed >= TOTAL - Duration::from_millis(50)
                && elapsed < TOTAL + common::SLOW_METADATA_DELAY,
            "{elapsed:?}"
        );
        return;
    }
    let metadata = HostileServer::start(Hostile::SlowMetadata);
    let silent = HostileServer::start(Hostile::Silent);
    let mut vars = vec![
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", metadata.url()),
        ("SECRETS_AWS_TEST_SILENT_ENDPOINT", silent.url()),
    ];
    vars.extend(test_credentials());
    run_child(
        "a_slow_set_up_leaves_the_call_only_the_rest_of_the_lookups_limit",
        "slow-set-up",
        &vars,
    );
    assert!(metadata.connections() >= 2, "the region came from IMDS");
    assert_eq!(silent.connections(), 1, "the call was sent");
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

/// The parent's side of a credentials scenario: a closed port where nothing listens.
fn closed_port_url() -> String {
    format!("http://127.0.0.1:{}", common::free_port())
}

/// In a child: an instance metadata service that keeps failing is an outage (transient),
/// reported as its 503 or, when the SDK's identity timeout ends the retries first, a timeout.
fn expect_outage() {
    let settings = on_moto("test/credentials")
        .with_region(common::REGION)
        .with_timeouts(Duration::from_secs(2), Duration::from_secs(15));
    let (result, _elapsed) = lookup(settings);
    let e = result.unwrap_err();
    assert!(e.is_transient(), "{e}");
    match e.kind() {
        ErrorKind::Unavailable => {
            for word in ["instance metadata", "HTTP 503"] {
                assert!(e.to_string().contains(word), "{word:?} in {e}");
            }
        }
        ErrorKind::Timeout => assert!(e.to_string().contains("credentials"), "{e}"),
        other => panic!("{other:?}: {e}"),
    }
}

/// In a child: one lookup with the region set and credentials left to the SDK's chain;
/// checks the error's kind, transience and words.
fn expect_credentials_error(kind: ErrorKind, words: &[&str]) {
    let settings = on_moto("test/credentials")
        .with_region(common::REGION)
        .with_timeouts(Duration::from_secs(2), Duration::from_secs(15));
    let (result, _elapsed) = lookup(settings);
    let e = result.unwrap_err();
    assert_eq!(e.kind(), kind, "{e}");
    assert_eq!(
        e.is_transient(),
        matches!(kind, ErrorKind::Unavailable | ErrorKind::Timeout)
    );
    for word in words {
        assert!(e.to_string().contains(word), "{word:?} in {e}");
    }
    assert!(!e.to_string().contains("provider failed"), "{e}");
}

#[test]
fn instance_metadata_that_refuses_means_no_credentials_and_one_that_fails_is_an_outage() {
    if let Some(scenario) = scenario() {
        match scenario.as_str() {
            "refuses" => expect_credentials_error(
                ErrorKind::Misconfigured,
                &["no AWS credentials found", "instance metadata", "HTTP 403"],
            ),
            // An outage: the chain's answer names the 503 unless the SDK's 5 s identity
            // timeout ends its retries first (a loaded machine): transient either way.
            "fails" => expect_outage(),
            // Not on EC2 (nothing listens): the chain found nothing.
            "absent" => expect_credentials_error(
                ErrorKind::Misconfigured,
                &["no AWS credentials found (environment, profile"],
            ),
            other => panic!("unknown scenario {other}"),
        }
        return;
    }
    let test =
        "instance_metadata_that_refuses_means_no_credentials_and_one_that_fails_is_an_outage";
    for (scenario, server) in [
        ("refuses", Some(HostileServer::start(Hostile::Forbidden))),
        ("fails", Some(HostileServer::start(Hostile::Unavailable))),
        ("absent", None),
    ] {
        let url = server
            .as_ref()
            .map_or_else(closed_port_url, HostileServer::url);
        run_child(
            test,
            scenario,
            &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", url)],
        );
        if let Some(server) = server {
            assert!(server.connections() > 0, "{scenario}: the SDK asked IMDS");
        }
    }
}

#[test]
fn container_credentials_refused_are_missing_but_an_unreachable_endpoint_is_an_outage() {
    if let Some(scenario) = scenario() {
        let container = "container credentials endpoint";
        match scenario.as_str() {
            "refuses" => expect_credentials_error(
                ErrorKind::Misconfigured,
                &["no AWS credentials found", container, "HTTP 403"],
            ),
            "fails" => {
                expect_credentials_error(ErrorKind::Unavailable, &[container, "HTTP 503"]);
            }
            "down" => expect_credentials_error(
                ErrorKind::Unavailable,
                &["cannot reach the container credentials endpoint"],
            ),
            "answers" => {
                // The control: the same set-up with an endpoint that gives credentials
                // reads the secret from moto.
                let name = std::env::var("SECRETS_AWS_TEST_SECRET").unwrap();
                let (result, _elapsed) = lookup(on_moto(&name).with_region(common::REGION));
                assert_eq!(
                    result.unwrap().as_deref(),
                    Some("via-container-credentials")
                );
            }
            other => panic!("unknown scenario {other}"),
        }
        return;
    }
    let name = common::unique("container");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let admin = common::admin().await;
            common::create(&admin, &name, r#"{"K": "via-container-credentials"}"#).await;
        });
    let test = "container_credentials_refused_are_missing_but_an_unreachable_endpoint_is_an_outage";
    for (scenario, server) in [
        ("refuses", Some(HostileServer::start(Hostile::Forbidden))),
        ("fails", Some(HostileServer::start(Hostile::Unavailable))),
        ("down", None),
        ("answers", Some(HostileServer::start(Hostile::Credentials))),
    ] {
        let url = server
            .as_ref()
            .map_or_else(closed_port_url, HostileServer::url);
        run_child(
            test,
            scenario,
            &[
                (
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    format!("{url}/credentials"),
                ),
                ("SECRETS_AWS_TEST_SECRET", name.clone()),
            ],
        );
        if let Some(server) = server {
            assert!(
                server.connections() > 0,
                "{scenario}: the SDK asked the endpoint"
            );
        }
    }
}
