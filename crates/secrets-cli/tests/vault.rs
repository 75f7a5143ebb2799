//! The `secrets` binary against the real OpenBao server of `cargo xtask test`: set, get,
//! delete with `--provider vault`, `doctor --json`, and failures that echo no token.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

struct Vault {
    addr: String,
    root_token: String,
}

fn vault() -> Vault {
    let var =
        |name: &str| {
            std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
            panic!("{name} is not set: run the tests with `cargo xtask test`, which starts OpenBao")
        })
        };
    Vault {
        addr: var("SECRETS_TEST_VAULT_ADDR"),
        root_token: var("SECRETS_TEST_VAULT_ROOT_TOKEN"),
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary with a temporary HOME and only the given variables.
fn run(home: &std::path::Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_secrets"))
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn unique_path() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("cli-{}-{nanos}", std::process::id())
}

#[test]
fn set_get_delete_and_doctor_through_vault() {
    let v = vault();
    let home = tempfile::tempdir().unwrap();
    let path = unique_path();
    let env = [
        ("VAULT_ADDR", v.addr.as_str()),
        ("VAULT_TOKEN", v.root_token.as_str()),
        ("SIMPLETUNER_VAULT_PATH", path.as_str()),
    ];
    const VALUE: &str = "r8_cli-vault-value";

    let r = run(
        home.path(),
        &["set", "REPLICATE_API_TOKEN", "--provider", "vault"],
        &env,
        Some(VALUE),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("provider `vault`"), "{}", r.stderr);
    assert!(!r.stderr.contains(VALUE));

    let r = run(
        home.path(),
        &["get", "REPLICATE_API_TOKEN", "--json"],
        &env,
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let answer: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(answer["provider"], "vault");
    assert_eq!(answer["value"], VALUE);
    assert_eq!(answer["found"], true);

    // Environment first, as always.
    let mut with_env = env.to_vec();
    with_env.push(("REPLICATE_API_TOKEN", "from-env"));
    let r = run(
        home.path(),
        &["get", "REPLICATE_API_TOKEN", "--json"],
        &with_env,
        None,
    );
    let answer: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(answer["provider"], "env");

    let r = run(home.path(), &["doctor", "--json"], &env, None);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    let vault = report["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "vault")
        .unwrap()
        .clone();
    assert_eq!(vault["configured"], true, "{vault}");
    assert_eq!(vault["available"], true, "{vault}");
    assert_eq!(vault["reachable"], true, "{vault}");
    assert!(vault["latency_ms"].as_f64().unwrap() > 0.0, "{vault}");
    assert!(vault["error"].is_null(), "{vault}");
    let r = run(home.path(), &["doctor"], &env, None);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("vault") && l.contains(" ms")),
        "{}",
        r.stdout
    );

    let r = run(
        home.path(),
        &["delete", "REPLICATE_API_TOKEN", "--provider", "vault"],
        &env,
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(home.path(), &["get", "REPLICATE_API_TOKEN"], &env, None);
    assert_eq!(r.code, 1, "not found after delete: {}", r.stderr);
    let r = run(
        home.path(),
        &["delete", "REPLICATE_API_TOKEN", "--provider", "vault"],
        &env,
        None,
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
}

#[test]
fn a_refused_token_is_a_provider_failure_that_echoes_no_token() {
    let v = vault();
    let home = tempfile::tempdir().unwrap();
    const TOKEN: &str = "s.cli-sentinel-not-a-token";
    let env = [("VAULT_ADDR", v.addr.as_str()), ("VAULT_TOKEN", TOKEN)];
    for args in [
        vec!["-vvv", "get", "HF_TOKEN"],
        vec!["-vvv", "set", "HF_TOKEN", "x", "--provider", "vault"],
        vec!["-vvv", "doctor", "--json"],
    ] {
        let r = run(home.path(), &args, &env, None);
        assert_eq!(r.code, 3, "{args:?}: {}\n{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains("permission denied") || r.stdout.contains("permission denied"),
            "{args:?}: {}\n{}",
            r.stdout,
            r.stderr
        );
        assert!(
            !r.stderr.contains(TOKEN) && !r.stdout.contains(TOKEN),
            "{args:?}"
        );
    }
    // VAULT_ADDR without any credentials: configured, not available, not a failure.
    let r = run(
        home.path(),
        &["doctor", "--json"],
        &[("VAULT_ADDR", v.addr.as_str())],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stdout);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    let vault = &report["providers"][3];
    assert_eq!(
        (
            vault["name"].as_str(),
            vault["configured"].as_bool(),
            vault["available"].as_bool()
        ),
        (Some("vault"), Some(true), Some(false)),
        "{vault}"
    );
    // A bad setting is a usage-level failure naming the variable.
    let r = run(
        home.path(),
        &["get", "K"],
        &[("VAULT_ADDR", "ftp://nope")],
        None,
    );
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("VAULT_ADDR"), "{}", r.stderr);
}
