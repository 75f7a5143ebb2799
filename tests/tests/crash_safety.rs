//! Crash safety: writers killed with SIGKILL at random moments (200 times per target at full
//! scale, `cargo xtask reliability crash`; 10 under `cargo xtask test`). After every kill
//! the data parses, holds every write acknowledged before the kill, and no temporary copy
//! is left once the next write ran.
//!
//! - the secrets file, written by the real `secrets set`;
//! - the credential key file, created by the real `secrets crypto encrypt` (no key, or a
//!   complete one that decrypts what was encrypted with it; never an empty or partial key);
//! - provider-config updates and their audit rows on SQLite and on PostgreSQL, written by a
//!   process looping `ConfigStore::update` (tests/src/bin/config_writer.rs); `secrets audit
//!   verify` passes after every kill.
//!
//! A kill lands at a uniformly random moment of the writer's run (the window is measured
//! from uninterrupted runs first); the seed is printed (`CRASH_SEED` replays it).

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use integration_tests::reliability::{report, scale};
use serde_json::Value;
use support::{Database, Rng, clean_command, ok, run_cli, secrets_cli, temp_files};

fn kills_wanted() -> usize {
    scale(10, 200)
}

/// Waits up to `delay` for `child`; kills it if it is still running. `Some(exit success)`
/// when it finished first, `None` when the kill landed.
fn kill_after(child: &mut Child, delay: Duration) -> Option<bool> {
    std::thread::sleep(delay);
    if let Some(status) = child.try_wait().unwrap() {
        return Some(status.success());
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    // It may have exited between the check and the kill.
    status.code().map(|code| code == 0)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn read_json_map(path: &Path) -> BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeMap::new();
    };
    let value: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} does not parse after a kill: {e}", path.display()));
    value
        .as_object()
        .expect("the secrets file is a JSON object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string values").to_owned()))
        .collect()
}

#[test]
fn the_secrets_file_survives_sigkill_of_secrets_set() {
    let mut rng = Rng::from_env_or_time("secrets file");
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("d");
    let file = dir.join("secrets.json");
    let env = [("SIMPLETUNER_SECRETS_FILE", file.display().to_string())];
    let cli = secrets_cli();
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    let mut n = 0u64;
    let mut next = |rng: &mut Rng| {
        n += 1;
        (format!("K_{n}"), format!("value-{n}-{:016x}", rng.next()))
    };
    let spawn = |key: &str, value: &str| {
        clean_command(&cli, home.path(), &env)
            .args(["set", key, value])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // Uninterrupted runs give the window the kills are spread over.
    let mut durations = Vec::new();
    for _ in 0..5 {
        let (key, value) = next(&mut rng);
        let start = Instant::now();
        assert!(spawn(&key, &value).wait().unwrap().success());
        durations.push(start.elapsed());
        acked.insert(key, value);
    }
    let window = median(durations) * 3 / 2;
    let (mut kills, mut finished_first, mut temps_left, mut unacked_landed) = (0, 0, 0, 0);
    let mut checks_after_next_write = 0;
    while kills < kills_wanted() {
        let (key, value) = next(&mut rng);
        let mut child = spawn(&key, &value);
        let delay = Duration::from_micros(rng.below(window.as_micros() as u64 + 1));
        match kill_after(&mut child, delay) {
            Some(success) => {
                assert!(success, "secrets set {key} failed");
                finished_first += 1;
                acked.insert(key, value);
                continue;
            }
            None => kills += 1,
        }
        if !temp_files(&dir).is_empty() {
            temps_left += 1;
        }
        let content = read_json_map(&file);
        for (k, v) in &acked {
            assert_eq!(
                content.get(k),
                Some(v),
                "acknowledged write of {k} lost after kill {kills}"
            );
        }
        if content.get(&key) == Some(&value) {
            unacked_landed += 1;
        }
        // The next write runs to completion and leaves no temporary copy behind.
        let (key, value) = next(&mut rng);
        assert!(spawn(&key, &value).wait().unwrap().success());
        acked.insert(key, value);
        assert_eq!(temp_files(&dir), Vec::<String>::new(), "after kill {kills}");
        checks_after_next_write += 1;
    }
    let content = read_json_map(&file);
    assert!(acked.iter().all(|(k, v)| content.get(k) == Some(v)));
    report(
        "crash-secrets-file",
        "`secrets set` on one JSON secrets file killed with SIGKILL at random moments",
        &format!(
            "{kills} kills survived (the file parsed and held every acknowledged write after \
             each); {} writes acknowledged, all present at the end; {temps_left} kills left a \
             temp copy, removed by the next write every time ({checks_after_next_write} checks); \
             {unacked_landed} killed writes had landed complete; {finished_first} runs finished \
             before their kill; kill window {} µs",
            acked.len(),
            window.as_micros()
        ),
    );
}

const PAYLOAD: &str = "crash-test-credential";

#[test]
fn the_key_file_is_absent_or_complete_after_sigkill() {
    let mut rng = Rng::from_env_or_time("key file");
    let root = tempfile::tempdir().unwrap();
    let payload = root.path().join("payload");
    std::fs::write(&payload, PAYLOAD).unwrap();
    let cli = secrets_cli();
    // No key in the environment: the CLI creates ~/.simpletuner/credential.key.
    let env = [("SIMPLETUNER_CREDENTIAL_KEY", String::new())];
    let encrypt = |home: &Path| {
        clean_command(&cli, home, &env)
            .args(["crypto", "encrypt"])
            .stdin(std::fs::File::open(&payload).unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let decrypts = |home: &Path, token: &str| {
        let mut child = clean_command(&cli, home, &env)
            .args(["crypto", "decrypt"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), token.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        ok(&out, "secrets crypto decrypt").trim_end_matches('\n') == PAYLOAD
    };
    let key_of = |home: &Path| std::fs::read(home.join(".simpletuner/credential.key")).ok();
    let complete = |key: &[u8]| {
        key.len() == 44
            && key[43] == b'\n'
            && key[..43]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    };
    let mut round = 0;
    let home_for = |round: &mut u32| {
        *round += 1;
        let home = root.path().join(format!("h{round}"));
        std::fs::create_dir(&home).unwrap();
        home
    };
    let mut durations = Vec::new();
    for _ in 0..5 {
        let home = home_for(&mut round);
        let start = Instant::now();
        let out = encrypt(&home).wait_with_output().unwrap();
        durations.push(start.elapsed());
        let token = ok(&out, "secrets crypto encrypt");
        assert!(decrypts(&home, token.trim()));
    }
    let window = median(durations) * 3 / 2;
    let (mut kills, mut absent, mut present, mut temps_left, mut finished_first) = (0, 0, 0, 0, 0);
    while kills < kills_wanted() {
        let home = home_for(&mut round);
        let mut child = encrypt(&home);
        let delay = Duration::from_micros(rng.below(window.as_micros() as u64 + 1));
        if let Some(success) = kill_after(&mut child, delay) {
            assert!(success, "secrets crypto encrypt failed");
            finished_first += 1;
            continue;
        }
        kills += 1;
        let after_kill = key_of(&home);
        match &after_kill {
            None => absent += 1,
            Some(key) => {
                assert!(
                    complete(key),
                    "kill {kills} left a partial or empty key file ({} bytes)",
                    key.len()
                );
                present += 1;
            }
        }
        if !temp_files(&home.join(".simpletuner")).is_empty() {
            temps_left += 1;
        }
        // The next run uses (or creates) the key, and what it encrypts decrypts with it.
        let out = encrypt(&home).wait_with_output().unwrap();
        let token = ok(&out, "secrets crypto encrypt after a kill");
        let key = key_of(&home).expect("a key file after a completed run");
        assert!(complete(&key));
        if let Some(before) = after_kill {
            assert_eq!(before, key, "an existing key file was replaced");
        }
        assert!(decrypts(&home, token.trim()), "kill {kills}");
        assert_eq!(
            temp_files(&home.join(".simpletuner")),
            Vec::<String>::new(),
            "a temp copy of a key survived the next run (kill {kills})"
        );
    }
    report(
        "crash-key-file",
        "credential key creation (`secrets crypto encrypt` with no key yet) killed with SIGKILL at random moments",
        &format!(
            "{kills} kills survived: {absent} left no key file, {present} a complete one \
             (never an empty or partial key); {temps_left} left a temp copy, removed by the \
             next run every time; every later encryption decrypted with the key on disk; \
             {finished_first} runs finished before their kill; kill window {} µs",
            window.as_micros()
        ),
    );
}

/// Figures of one provider-config target.
struct ConfigFigures {
    kills: usize,
    acknowledged: usize,
    present: usize,
    audit_rows: usize,
    /// Kills that landed between the commit of a change and that of its audit row (SQLite),
    /// as `secrets audit verify` reported them (`unrecorded_changes`) after the kill.
    unrecorded_after_kill: u64,
    /// Audit rows the next writer appended from the outbox (`"recovered": true`).
    recovered_rows: usize,
}

/// Kills a process looping `ConfigStore::update` at random moments; after each kill the
/// configuration holds every acknowledged update and `secrets audit verify` passes.
fn crash_config_writes(label: &str, env: &[(&str, String)]) -> ConfigFigures {
    let mut rng = Rng::from_env_or_time(label);
    let home = tempfile::tempdir().unwrap();
    // The keys acknowledged (`r<round>_<n>` = n).
    let mut acked: Vec<(String, u64)> = Vec::new();
    let (mut kills, mut round) = (0, 0);
    let mut unrecorded_after_kill = 0;
    while kills < kills_wanted() {
        round += 1;
        let prefix = format!("r{round}");
        let mut child = clean_command(&support::config_writer(), home.path(), env)
            .args(["replicate", &prefix, "0", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        // Kill somewhere in the stream of updates (or, one round in ten, while it starts).
        if rng.below(10) != 0 {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(first) => lines.push(first),
                Err(_) => {
                    let _ = child.kill();
                    let out = child.wait_with_output().unwrap();
                    panic!(
                        "{label}: the writer acknowledged nothing: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
        std::thread::sleep(Duration::from_micros(rng.below(30_000)));
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.code().is_none(),
            "{label}: the writer exited by itself ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        kills += 1;
        reader.join().unwrap();
        lines.extend(rx.try_iter());
        for line in lines {
            let n = line
                .strip_prefix("ok ")
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{label}: unexpected writer output {line:?}"));
            acked.push((format!("{prefix}_{n}"), n));
        }
        let text = ok(
            &run_cli(home.path(), env, &["config", "get", "replicate"]),
            &format!("{label}: secrets config get after kill {kills}"),
        );
        let config: Value = serde_json::from_str(&text).expect("the configuration parses");
        for (key, n) in &acked {
            assert_eq!(
                config.get(key).and_then(Value::as_u64),
                Some(*n),
                "{label}: acknowledged update {key} lost after kill {kills}"
            );
        }
        let verified: Value = serde_json::from_str(&ok(
            &run_cli(home.path(), env, &["audit", "verify", "--json"]),
            &format!("{label}: secrets audit verify after kill {kills}"),
        ))
        .expect("verify JSON");
        assert_eq!(verified["valid"], true, "{label}: after kill {kills}");
        unrecorded_after_kill += verified["unrecorded_changes"]
            .as_u64()
            .expect("unrecorded_changes");
    }
    // One more writer, run to its end: it appends the rows the last kill may have left
    // unrecorded, and its own update.
    let out = clean_command(&support::config_writer(), home.path(), env)
        .args(["replicate", "final", "0", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{label}: the final writer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verified: Value = serde_json::from_str(&ok(
        &run_cli(home.path(), env, &["audit", "verify", "--json"]),
        &format!("{label}: secrets audit verify at the end"),
    ))
    .expect("verify JSON");
    assert_eq!(verified["valid"], true, "{label}: at the end");
    assert_eq!(verified["unrecorded_changes"], 0, "{label}: at the end");
    let text = ok(
        &run_cli(home.path(), env, &["config", "get", "replicate"]),
        &format!("{label}: secrets config get at the end"),
    );
    let config: Value = serde_json::from_str(&text).expect("the configuration parses");
    let config = config.as_object().expect("a JSON object");
    let rows = ok(
        &run_cli(
            home.path(),
            env,
            &[
                "audit",
                "list",
                "--json",
                "--event-type",
                "provider.configured",
                "--limit",
                "100000000",
            ],
        ),
        "secrets audit list",
    );
    let rows: Value = serde_json::from_str(&rows).expect("audit list JSON");
    let rows = rows.as_array().expect("a JSON array");
    ConfigFigures {
        kills,
        acknowledged: acked.len(),
        present: config.len(),
        audit_rows: rows.len(),
        unrecorded_after_kill,
        recovered_rows: rows
            .iter()
            .filter(|row| row["details"]["recovered"] == true)
            .count(),
    }
}

fn report_config(id: &str, store: &str, f: &ConfigFigures) {
    // Each update adds one key and one audit row; a kill between the two would show here.
    // (Making them one transaction is provider-config's; this figure shows what happened.)
    report(
        id,
        &format!(
            "a process looping provider-config updates ({store}) killed with SIGKILL at random moments; `secrets audit verify` after each"
        ),
        &format!(
            "{} kills survived (every acknowledged update present and the audit chain intact \
             after each); {} updates acknowledged, {} present (unacknowledged ones may land); \
             {} audit rows for {} updates stored (after one more writer); {} kills left a \
             change whose audit row the next writer appended from the outbox",
            f.kills, f.acknowledged, f.present, f.audit_rows, f.present, f.unrecorded_after_kill
        ),
    );
}

#[test]
fn provider_config_on_sqlite_survives_sigkill() {
    let home = tempfile::tempdir().unwrap();
    let env = [(
        "SIMPLETUNER_STATE_DIR",
        home.path().join("state").display().to_string(),
    )];
    let figures = crash_config_writes("sqlite config", &env);
    assert_eq!(figures.audit_rows, figures.present);
    report_config("crash-config-sqlite", "SQLite", &figures);
}

#[test]
fn provider_config_on_postgres_survives_sigkill() {
    let db = Database::create("crash");
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("SIMPLETUNER_DATABASE_URL", db.url()),
        (
            "SIMPLETUNER_STATE_DIR",
            home.path().join("state").display().to_string(),
        ),
    ];
    let figures = crash_config_writes("postgres config", &env);
    assert_eq!(figures.audit_rows, figures.present);
    report_config("crash-config-postgres", "PostgreSQL", &figures);
}

/// A configuration change and its audit row are one transaction: after any kill, every
/// stored update has its `provider.configured` row. On PostgreSQL that is one commit. On
/// SQLite the audit database is a second file attached to the transaction, which SQLite
/// commits after jobs.db's: a kill between the two keeps the change without its row in
/// audit.db, but with its row in jobs.db's outbox, from which the next writer appends it
/// (provider-config `audit::outbox`). Checked at the end, after one more writer ran; the
/// kills that landed in the window are counted from `secrets audit verify` after each.
#[test]
fn every_stored_config_change_keeps_its_audit_row_after_sigkill() {
    let home = tempfile::tempdir().unwrap();
    let sqlite = crash_config_writes(
        "SQLite audit",
        &[(
            "SIMPLETUNER_STATE_DIR",
            home.path().join("state").display().to_string(),
        )],
    );
    assert_eq!(
        sqlite.audit_rows, sqlite.present,
        "SQLite: {} audit rows for {} stored changes after {} kills",
        sqlite.audit_rows, sqlite.present, sqlite.kills
    );
    // Equal unless a kill also landed between the two commits of a repair (the row then
    // stays in the outbox and is counted again).
    assert!(
        u64::try_from(sqlite.recovered_rows).unwrap() <= sqlite.unrecorded_after_kill,
        "SQLite: {} rows recovered for {} changes reported unrecorded",
        sqlite.recovered_rows,
        sqlite.unrecorded_after_kill
    );
    let db = Database::create("crash_audit");
    let postgres = crash_config_writes(
        "PostgreSQL audit",
        &[
            ("SIMPLETUNER_DATABASE_URL", db.url()),
            (
                "SIMPLETUNER_STATE_DIR",
                home.path().join("pg-state").display().to_string(),
            ),
        ],
    );
    assert_eq!(
        postgres.audit_rows,
        postgres.present,
        "PostgreSQL: {} stored configuration changes have no audit row after {} kills",
        postgres.present.saturating_sub(postgres.audit_rows),
        postgres.kills
    );
    assert_eq!(postgres.recovered_rows, 0);
    integration_tests::reliability::report(
        "crash-config-audit-rows",
        "Crash safety: every stored configuration change has its audit row after SIGKILL (change and row in one transaction; SQLite: the row also in jobs.db's outbox)",
        &format!(
            "PostgreSQL: {} kills, {} changes stored, every one with its audit row. SQLite: {} kills, {} changes stored, every one with its audit row; {} kills landed between the commits of jobs.db and audit.db, and the next writer appended those rows from the outbox ({} rows marked recovered, no duplicate)",
            postgres.kills,
            postgres.present,
            sqlite.kills,
            sqlite.present,
            sqlite.unrecorded_after_kill,
            sqlite.recovered_rows
        ),
    );
}
