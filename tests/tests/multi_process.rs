//! Several processes writing one store at once lose nothing: 4 processes x 250 `secrets set`
//! of distinct keys on one secrets file, and 4 processes x 250 provider-config updates of
//! distinct keys on one provider (SQLite and PostgreSQL), all present afterwards with the
//! audit chain intact (4 x 20 under `cargo xtask test`; full size under
//! `cargo xtask reliability multi-process`).

mod support;

use std::process::Stdio;
use std::time::Instant;

use integration_tests::reliability::{report, scale};
use serde_json::Value;
use support::{Database, clean_command, ok, run_cli, secrets_cli, temp_files};

const PROCESSES: usize = 4;

fn per_process() -> usize {
    scale(20, 250)
}

#[test]
fn four_processes_setting_distinct_keys_on_one_secrets_file_lose_nothing() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("d/secrets.yaml");
    let env = [("SIMPLETUNER_SECRETS_FILE", file.display().to_string())];
    let cli = secrets_cli();
    let start = Instant::now();
    std::thread::scope(|s| {
        for p in 0..PROCESSES {
            let (cli, env, home) = (&cli, &env, home.path());
            s.spawn(move || {
                for i in 0..per_process() {
                    let out = clean_command(cli, home, env)
                        .args(["set", &format!("P{p}_{i}"), &format!("v{p}-{i}")])
                        .stdout(Stdio::null())
                        .output()
                        .unwrap();
                    ok(&out, &format!("secrets set P{p}_{i}"));
                }
            });
        }
    });
    let elapsed = start.elapsed();
    let mut missing = Vec::new();
    for p in 0..PROCESSES {
        for i in 0..per_process() {
            // Through the real CLI (the YAML file parsed as the provider parses it).
            let out = run_cli(home.path(), &env, &["get", &format!("P{p}_{i}")]);
            if !out.status.success()
                || String::from_utf8_lossy(&out.stdout).trim_end_matches('\n')
                    != format!("v{p}-{i}")
            {
                missing.push(format!("P{p}_{i}"));
            }
        }
    }
    assert!(missing.is_empty(), "lost writes: {missing:?}");
    assert_eq!(temp_files(file.parent().unwrap()), Vec::<String>::new());
    let total = PROCESSES * per_process();
    report(
        "multi-process-secrets-file",
        "concurrent `secrets set` processes, distinct keys, one YAML secrets file",
        &format!(
            "{PROCESSES} processes x {} sets: {total} of {total} keys present with their \
             values, no temp file left; {:.0} sets/s overall",
            per_process(),
            total as f64 / elapsed.as_secs_f64()
        ),
    );
}

fn concurrent_config_updates(label: &str, env: &[(&str, String)]) -> String {
    let home = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let children: Vec<_> = (0..PROCESSES)
        .map(|p| {
            clean_command(&support::config_writer(), home.path(), env)
                .args([
                    "replicate",
                    &format!("p{p}"),
                    "0",
                    &per_process().to_string(),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let acks = ok(&out, &format!("{label}: config_writer")).lines().count();
        assert_eq!(acks, per_process(), "{label}: acknowledgements");
    }
    let elapsed = start.elapsed();
    let text = ok(
        &run_cli(home.path(), env, &["config", "get", "replicate"]),
        "secrets config get",
    );
    let config: Value = serde_json::from_str(&text).unwrap();
    let config = config.as_object().unwrap();
    let mut missing = Vec::new();
    for p in 0..PROCESSES {
        for i in 0..per_process() {
            let key = format!("p{p}_{i}");
            if config.get(&key).and_then(Value::as_u64) != Some(i as u64) {
                missing.push(key);
            }
        }
    }
    assert!(missing.is_empty(), "{label}: lost updates: {missing:?}");
    let total = PROCESSES * per_process();
    assert_eq!(config.len(), total, "{label}: unexpected keys");
    ok(
        &run_cli(home.path(), env, &["audit", "verify"]),
        &format!("{label}: secrets audit verify"),
    );
    let rows = ok(
        &run_cli(
            home.path(),
            env,
            &["audit", "list", "--json", "--limit", "100000000"],
        ),
        "secrets audit list",
    );
    let rows = serde_json::from_str::<Value>(&rows).unwrap();
    let rows = rows.as_array().unwrap().len();
    assert_eq!(rows, total, "{label}: one audit row per update");
    format!(
        "{PROCESSES} processes x {} updates: {total} of {total} keys present, {rows} audit \
         rows, chain verified; {:.0} updates/s overall",
        per_process(),
        total as f64 / elapsed.as_secs_f64()
    )
}

#[test]
fn four_processes_updating_one_provider_on_sqlite_lose_nothing() {
    let home = tempfile::tempdir().unwrap();
    let env = [(
        "SIMPLETUNER_STATE_DIR",
        home.path().join("state").display().to_string(),
    )];
    let figures = concurrent_config_updates("sqlite", &env);
    report(
        "multi-process-config-sqlite",
        "concurrent processes calling provider-config `update` with distinct keys on one provider (SQLite)",
        &figures,
    );
}

#[test]
fn four_processes_updating_one_provider_on_postgres_lose_nothing() {
    let db = Database::create("multi");
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("SIMPLETUNER_DATABASE_URL", db.url()),
        (
            "SIMPLETUNER_STATE_DIR",
            home.path().join("state").display().to_string(),
        ),
    ];
    let figures = concurrent_config_updates("postgres", &env);
    report(
        "multi-process-config-postgres",
        "concurrent processes calling provider-config `update` with distinct keys on one provider (PostgreSQL)",
        &figures,
    );
}
