//! The `secrets` binary with the AWS provider, end to end against moto's real server (started
//! by `cargo xtask test`): `set/get/delete --provider aws`, `doctor --json`, exit codes, and
//! no value outside stdout of `get` at TRACE level.

#![cfg(feature = "aws")]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use secrets::aws::{AwsSecretsManagerProvider, AwsSettings};

const SENTINEL: &str = "SENTINEL-cli-aws-5e2d-never-logged";

fn endpoint() -> String {
    match std::env::var("SECRETS_TEST_AWS_ENDPOINT") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "SECRETS_TEST_AWS_ENDPOINT is not set: run the tests with `cargo xtask test`, \
             which starts moto's Secrets Manager server"
        ),
    }
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("cli/{prefix}-{}-{nanos}", std::process::id())
}

fn create_secret(name: &str, text: &str) {
    let settings = AwsSettings::new(name)
        .with_region("us-east-1")
        .with_endpoint_url(endpoint());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let provider = AwsSecretsManagerProvider::new(settings).unwrap();
            provider
                .client()
                .await
                .unwrap()
                .create_secret()
                .name(name)
                .secret_string(text)
                .send()
                .await
                .expect("create a secret in moto");
        });
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `secrets` with a temporary HOME and only the variables that point it at moto.
fn run(home: &std::path::Path, secret: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_secrets"));
    command
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SIMPLETUNER_AWS_SECRET_NAME", secret)
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out: Output = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().expect("exited normally"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[test]
fn set_get_delete_with_provider_aws_and_doctor_against_moto() {
    let home = tempfile::tempdir().unwrap();
    let secret = unique("roundtrip");
    create_secret(&secret, r#"{"EXISTING": "e"}"#);
    let h = home.path();

    let r = run(
        h,
        &secret,
        &["-vvv", "set", "HF_TOKEN", "--provider", "aws"],
        Some(SENTINEL),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("stored `HF_TOKEN` in provider `aws`"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("TRACE"), "trace logging was on");
    assert!(!r.stderr.contains(SENTINEL), "set leaked to stderr");
    assert!(
        !h.join(".simpletuner/secrets.json").exists(),
        "nothing went to the file"
    );

    let r = run(h, &secret, &["-vvv", "get", "HF_TOKEN", "--json"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        json(&r),
        serde_json::json!({"key": "HF_TOKEN", "found": true, "value": SENTINEL, "provider": "aws"})
    );
    assert!(!r.stderr.contains(SENTINEL), "get leaked to stderr");
    let r = run(h, &secret, &["get", "EXISTING", "--providers", "aws"], None);
    assert_eq!((r.code, r.stdout.as_str()), (0, "e\n"), "{}", r.stderr);

    let r = run(h, &secret, &["doctor", "--json"], None);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let report = json(&r);
    let aws = report["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "aws")
        .unwrap()
        .clone();
    assert_eq!(aws["configured"], true, "{aws}");
    assert_eq!(aws["available"], true, "{aws}");
    assert_eq!(aws["reachable"], true, "{aws}");
    assert!(aws["latency_ms"].as_f64().unwrap() > 0.0, "{aws}");
    assert_eq!(aws["error"], serde_json::Value::Null);
    assert_eq!(report["writer"], "file", "writes go to the file by default");

    let r = run(
        h,
        &secret,
        &["delete", "HF_TOKEN", "--provider", "aws"],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(h, &secret, &["get", "HF_TOKEN"], None);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let r = run(
        h,
        &secret,
        &["delete", "HF_TOKEN", "--provider", "aws"],
        None,
    );
    assert_eq!(r.code, 1, "deleting a missing key: {}", r.stderr);
}

#[test]
fn a_missing_secret_fails_doctor_and_lookups_with_exit_3() {
    let home = tempfile::tempdir().unwrap();
    let secret = unique("absent");
    let r = run(home.path(), &secret, &["doctor", "--json"], None);
    assert_eq!(r.code, 3, "{}", r.stdout);
    let report = json(&r);
    let aws = report["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "aws")
        .unwrap()
        .clone();
    assert_eq!(
        (aws["configured"].clone(), aws["reachable"].clone()),
        (true.into(), false.into())
    );
    let error = aws["error"].as_str().unwrap();
    assert!(
        error.contains("not found") && error.contains(&secret),
        "{error}"
    );
    let r = run(home.path(), &secret, &["get", "K"], None);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("ResourceNotFoundException"),
        "{}",
        r.stderr
    );
    let r = run(
        home.path(),
        &secret,
        &["set", "K", "v", "--provider", "aws"],
        None,
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("create it first"), "{}", r.stderr);
}
