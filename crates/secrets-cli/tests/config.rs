//! End-to-end tests of `secrets config`, `secrets audit` and `secrets crypto migrate-db |
//! rotate-db` against real database files in a temporary state directory.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use secrets::config::{AuditFilter, AuditKey, AuditTrail, StoreSettings};
use secrets::crypto::CredentialCipher;
use serde_json::{Value, json};
use tempfile::TempDir;

struct Sandbox {
    home: TempDir,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

const KEY: &str = "cli config test passphrase";

impl Sandbox {
    fn new() -> Self {
        Self {
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn state(&self) -> PathBuf {
        self.home.path().join("state")
    }

    fn jobs_db(&self) -> PathBuf {
        self.state().join("cloud/jobs.db")
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_secrets"));
        cmd.args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("USER", "tester")
            .env("SIMPLETUNER_STATE_DIR", self.state())
            .env("SIMPLETUNER_CREDENTIAL_KEY", KEY)
            .envs(env.iter().copied());
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        finish(
            self.command(args, env)
                .stdin(Stdio::null())
                .output()
                .unwrap(),
        )
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = self
            .command(args, &[])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        finish(child.wait_with_output().unwrap())
    }

    fn raw(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.jobs_db()).unwrap();
        conn.busy_timeout(Duration::from_secs(30)).unwrap();
        conn
    }

    fn trail(&self) -> AuditTrail {
        let settings = StoreSettings::in_dir(&self.state());
        let key = AuditKey::load_existing(&settings).unwrap().unwrap();
        AuditTrail::open_path(&settings.audit_db, key).unwrap()
    }
}

fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().expect("exited normally"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn contains(path: &Path, needle: &str) -> bool {
    let mut files = vec![path.to_owned()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        files.push(name.into());
    }
    files.iter().any(|file| {
        fs::read(file)
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
    })
}

#[test]
fn config_commands_round_trip_json_with_the_contracts_exit_codes() {
    let sb = Sandbox::new();
    // Reading creates nothing.
    let r = sb.run(&["config", "get", "replicate"]);
    assert_eq!((r.code, json_of(&r)), (0, json!({})));
    assert_eq!(sb.run(&["config", "list"]).stdout, "");
    assert!(!sb.state().exists());
    let sentinel = "SENTINEL-cli-webhook-9e1";
    let body = json!({"webhook_url": "https://h.invalid", "webhook_secret": sentinel, "cost_limit_amount": 5});
    let r = sb.run_with_stdin(&["config", "set", "replicate"], &body.to_string());
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Credentials are redacted in output; --reveal shows them as stored (encrypted).
    assert_eq!(json_of(&r)["webhook_secret"], "[REDACTED]");
    let stored = json_of(&sb.run(&["config", "get", "replicate", "--reveal"]));
    assert!(
        stored["webhook_secret"]
            .as_str()
            .unwrap()
            .starts_with("Z0FBQUFB")
    );
    assert!(!r.stdout.contains(sentinel) && !r.stderr.contains(sentinel));
    let r = sb.run(&[
        "config",
        "update",
        "replicate",
        r#"{"cost_limit_period": "weekly"}"#,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(json_of(&r)["cost_limit_period"], "weekly");
    assert_eq!(json_of(&r)["cost_limit_amount"], 5);
    let r = sb.run(&["config", "get", "replicate", "--reveal"]);
    assert_eq!(json_of(&r)["webhook_secret"], stored["webhook_secret"]);
    sb.run(&["config", "set", "modal", "{}"]);
    assert_eq!(sb.run(&["config", "list"]).stdout, "modal\nreplicate\n");
    assert_eq!(
        json_of(&sb.run(&["config", "list", "--json"])),
        json!(["modal", "replicate"])
    );
    // Usage errors exit 2 and echo nothing of the input.
    for bad in [
        r#"{"cost_limit_amount": -1}"#,
        "[1, 2]",
        r#"{"webhook_secret": "SENTINEL-cli-bad"#,
        r#"{"cost_limit_action": "SENTINEL-cli-action"}"#,
    ] {
        let r = sb.run(&["config", "update", "replicate", bad]);
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
        assert!(!r.stderr.contains("SENTINEL"), "{}", r.stderr);
    }
    assert_eq!(sb.run(&["config", "delete", "modal"]).code, 0);
    assert_eq!(sb.run(&["config", "delete", "modal"]).code, 1);
    // Private files; the secret nowhere in them.
    assert_eq!(mode(&sb.state()), 0o700);
    assert_eq!(mode(&sb.state().join("cloud")), 0o700);
    for file in ["cloud/jobs.db", "audit.db", "audit.key"] {
        assert_eq!(mode(&sb.state().join(file)), 0o600, "{file}");
    }
    assert!(!contains(&sb.jobs_db(), sentinel));
    assert!(!contains(&sb.state().join("audit.db"), sentinel));
    // Every change is audited, by the OS user, naming keys.
    let r = sb.run(&["audit", "list", "--json"]);
    let entries = json_of(&r);
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[0]["details"]["operation"], "delete");
    assert_eq!(entries[3]["actor_username"], "cli:tester");
    assert_eq!(
        entries[3]["details"]["changed_keys"],
        json!(["cost_limit_amount", "webhook_secret", "webhook_url"])
    );
    let r = sb.run(&["audit", "list", "--target-id", "modal"]);
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
    assert_eq!(sb.run(&["audit", "list", "--since", "tomorrow"]).code, 2);
    let r = sb.run(&["audit", "verify"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("intact: 4 entries"), "{}", r.stdout);
}

#[test]
fn four_processes_updating_different_keys_of_one_provider_lose_nothing() {
    let sb = Sandbox::new();
    assert_eq!(sb.run(&["config", "set", "replicate", "{}"]).code, 0);
    std::thread::scope(|scope| {
        for process in 0..4 {
            let sb = &sb;
            scope.spawn(move || {
                for i in 0..25 {
                    let update = json!({ format!("p{process}_{i}"): i }).to_string();
                    let r = sb.run(&["config", "update", "replicate", &update]);
                    assert_eq!(r.code, 0, "{}", r.stderr);
                }
            });
        }
    });
    let config = json_of(&sb.run(&["config", "get", "replicate"]));
    let config = config.as_object().unwrap();
    assert_eq!(config.len(), 100);
    for process in 0..4 {
        for i in 0..25 {
            assert_eq!(config[&format!("p{process}_{i}")], i);
        }
    }
    // The processes appended to one audit chain without forking it.
    let r = sb.run(&["audit", "verify", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let report = json_of(&r);
    assert_eq!(
        (report["valid"].clone(), report["entries_checked"].clone()),
        (json!(true), json!(101))
    );
}

#[test]
fn audit_verify_exits_3_and_names_the_first_tampered_row() {
    let sb = Sandbox::new();
    for i in 0..5 {
        sb.run(&[
            "config",
            "update",
            "replicate",
            &json!({ "k": i }).to_string(),
        ]);
    }
    let audit = rusqlite::Connection::open(sb.state().join("audit.db")).unwrap();
    audit
        .execute(
            "UPDATE audit_log SET actor_username = 'mallory' WHERE id = 3",
            [],
        )
        .unwrap();
    let r = sb.run(&["audit", "verify"]);
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(
        r.stdout.contains("BROKEN") && r.stdout.contains("first: row 3"),
        "{}",
        r.stdout
    );
    let r = sb.run(&["audit", "verify", "--json"]);
    assert_eq!(r.code, 3);
    let report = json_of(&r);
    assert_eq!(report["valid"], false);
    assert_eq!(report["broken_links"][0]["id"], 3);
    assert_eq!(report["broken_links"][0]["tampering"], "modified");
    // Stored text cannot forge or hide lines of the listing.
    audit
        .execute(
            "UPDATE audit_log SET action = 'two\nlines\x1b[31m' WHERE id = 2",
            [],
        )
        .unwrap();
    let r = sb.run(&["audit", "list"]);
    assert_eq!(r.stdout.lines().count(), 5, "{}", r.stdout);
    assert!(r.stdout.contains("two\\nlines\\u{1b}[31m"), "{}", r.stdout);
    // Without the key that signed the chain there is nothing to check against.
    fs::remove_file(sb.state().join("audit.key")).unwrap();
    let r = sb.run(&["audit", "verify"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(!sb.state().join("audit.key").exists(), "no key was made up");
    // Nor will a write start a second chain under a new key.
    let r = sb.run(&["config", "update", "replicate", r#"{"k": 9}"#]);
    assert_eq!(r.code, 4, "{}", r.stderr);
}

/// The original server's plaintext rows (its SQL), one of them deleted again.
fn plant_plaintext(sb: &Sandbox, sentinels: &[&str]) {
    let conn = sb.raw();
    for (i, value) in sentinels.iter().enumerate() {
        conn.execute(
            "INSERT INTO provider_credentials
             (user_id, provider, credential_name, credential_value, created_at, is_active)
             VALUES (?1, 'replicate', 'api_token', ?2, '2025-01-01T00:00:00+00:00', 1)",
            rusqlite::params![i as i64 + 1, value],
        )
        .unwrap();
    }
}

#[test]
fn migrate_db_encrypts_the_plaintext_rows_and_scrubs_the_files() {
    let sb = Sandbox::new();
    assert_eq!(sb.run(&["config", "get", "x"]).code, 0);
    sb.run(&["config", "set", "init", "{}"]);
    let (kept, dropped, hook) = (
        "SENTINEL-cli-kept-71",
        "SENTINEL-cli-dropped-72",
        "SENTINEL-cli-hook-73",
    );
    plant_plaintext(&sb, &[kept, dropped]);
    sb.raw()
        .execute(
            "DELETE FROM provider_credentials WHERE credential_value = ?1",
            [dropped],
        )
        .unwrap();
    sb.raw()
        .execute(
            "INSERT INTO provider_config (provider, config, updated_at) VALUES ('modal', ?1, 'x')",
            [json!({"webhook_secret": hook}).to_string()],
        )
        .unwrap();
    let r = sb.run(&["config", "get", "modal"]);
    assert!(
        r.stderr.contains("plaintext") && !r.stderr.contains(hook),
        "{}",
        r.stderr
    );
    let r = sb.run(&["crypto", "migrate-db"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("encrypted 1 plaintext credential row(s) and 1 configuration secret(s)"),
        "{}",
        r.stdout
    );
    for sentinel in [kept, dropped, hook] {
        assert!(
            !contains(&sb.jobs_db(), sentinel),
            "{sentinel} left in the files"
        );
    }
    let stored: String = sb
        .raw()
        .query_row(
            "SELECT credential_value FROM provider_credentials",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let cipher = CredentialCipher::from_passphrase(KEY).unwrap();
    assert_eq!(cipher.decrypt(&stored).unwrap().expose(), kept);
    let r = sb.run(&["config", "get", "modal"]);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    let entries = sb.trail().list(&AuditFilter::default()).unwrap();
    assert_eq!(entries[0].event_type, "config.changed");
    assert_eq!(sb.run(&["audit", "verify"]).code, 0);
    // No database: nothing to do.
    let empty = Sandbox::new();
    assert_eq!(empty.run(&["crypto", "migrate-db"]).code, 0);
    assert!(!empty.jobs_db().exists());
}

#[test]
fn rotate_db_killed_midway_leaves_every_row_readable() {
    let sb = Sandbox::new();
    sb.run(&["config", "set", "init", "{}"]);
    let old = CredentialCipher::from_passphrase("old rotation key").unwrap();
    const ROWS: i64 = 20_000;
    {
        let mut conn = sb.raw();
        let tx = conn.transaction().unwrap();
        for user in 1..=ROWS {
            tx.execute(
                "INSERT INTO provider_credentials
                 (user_id, provider, credential_name, credential_value, created_at, is_active)
                 VALUES (?1, 'replicate', 'api_token', ?2, 'now', 1)",
                rusqlite::params![user, old.encrypt(&format!("token-{user}"))],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let rotation_env = [
        ("SIMPLETUNER_CREDENTIAL_KEY", "new rotation key"),
        ("SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS", "old rotation key"),
    ];
    let mut child = sb
        .command(&["crypto", "rotate-db"], &rotation_env)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the rotation holds the write lock (its transaction is open), then kill it.
    let probe = sb.raw();
    probe.busy_timeout(Duration::ZERO).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut killed_in_transaction = false;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        match probe.execute_batch("BEGIN IMMEDIATE; ROLLBACK;") {
            Ok(()) => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => {
                // Let it get well into the rows before pulling the plug.
                std::thread::sleep(Duration::from_millis(100));
                killed_in_transaction = child.try_wait().unwrap().is_none();
                child.kill().unwrap();
                break;
            }
        }
    }
    child.wait().unwrap();
    assert!(
        killed_in_transaction,
        "the rotation finished before it could be interrupted"
    );
    drop(probe);
    // Every row is as it was: under the old key, readable with the keyring.
    let keyring = CredentialCipher::from_passphrase("new rotation key")
        .unwrap()
        .with_previous_passphrase("old rotation key")
        .unwrap();
    let conn = sb.raw();
    let values: Vec<String> = conn
        .prepare("SELECT credential_value FROM provider_credentials ORDER BY user_id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(values.len() as i64, ROWS);
    for (i, value) in values.iter().enumerate() {
        assert_eq!(
            keyring.decrypt(value).unwrap().expose(),
            format!("token-{}", i + 1)
        );
        assert!(
            keyring.needs_rotation(value).unwrap(),
            "row {} changed",
            i + 1
        );
    }
    drop(conn);
    // Run to the end: every row under the new key.
    let r = sb.run_env(&["crypto", "rotate-db"], &rotation_env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains(&format!("re-encrypted {ROWS} credential row(s)")),
        "{}",
        r.stdout
    );
    let new_only = CredentialCipher::from_passphrase("new rotation key").unwrap();
    let sample: String = sb
        .raw()
        .query_row(
            "SELECT credential_value FROM provider_credentials WHERE user_id = 777",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(new_only.decrypt(&sample).unwrap().expose(), "token-777");
    // A wrong keyring is a crypto failure (exit 4), and nothing changes.
    let r = sb.run_env(
        &["crypto", "rotate-db"],
        &[("SIMPLETUNER_CREDENTIAL_KEY", "unrelated")],
    );
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("credential row"), "{}", r.stderr);
}

/// A crash between the commits of jobs.db and audit.db (simulated by putting back audit.db
/// as it was before a change): `audit verify` reports the change without its row, a read
/// changes nothing, and the next write appends the row from the outbox.
#[test]
fn audit_verify_reports_a_change_a_crash_left_unrecorded_until_the_next_write() {
    let sb = Sandbox::new();
    assert_eq!(
        sb.run(&["config", "update", "replicate", r#"{"a": 1}"#])
            .code,
        0
    );
    let audit = sb.state().join("audit.db");
    let saved = sb.state().join("audit.saved");
    fs::copy(&audit, &saved).unwrap();
    assert_eq!(
        sb.run(&["config", "update", "replicate", r#"{"b": 2}"#])
            .code,
        0
    );
    fs::copy(&saved, &audit).unwrap();

    for _ in 0..2 {
        let r = sb.run(&["audit", "verify"]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("intact: 1 entries"), "{}", r.stdout);
        assert!(
            r.stdout
                .contains("1 configuration change(s) committed without their audit row"),
            "{}",
            r.stdout
        );
        let report = json_of(&sb.run(&["audit", "verify", "--json"]));
        assert_eq!(report["unrecorded_changes"], 1);
        // Reading repairs nothing (read commands never write).
        assert_eq!(json_of(&sb.run(&["config", "get", "replicate"]))["b"], 2);
    }
    assert_eq!(
        sb.run(&["config", "update", "replicate", r#"{"c": 3}"#])
            .code,
        0
    );
    let report = json_of(&sb.run(&["audit", "verify", "--json"]));
    assert_eq!(
        (report["valid"].clone(), report["entries_checked"].clone()),
        (json!(true), json!(3))
    );
    assert_eq!(report["unrecorded_changes"], 0);
    let entries = json_of(&sb.run(&["audit", "list", "--json"]));
    assert_eq!(entries[1]["details"]["changed_keys"], json!(["b"]));
    assert_eq!(entries[1]["details"]["recovered"], true);
    assert_eq!(entries[0]["details"]["changed_keys"], json!(["c"]));
}
