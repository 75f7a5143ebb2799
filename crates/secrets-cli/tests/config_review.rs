//! End-to-end regression tests of `secrets config`, `secrets audit` and `secrets crypto
//! migrate-db` for the problems an adversarial review found (SQLite; the library tests
//! cover both backends).

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

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

const KEY: &str = "cli review test passphrase";

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

    fn key_file(&self) -> PathBuf {
        self.home.path().join(".simpletuner/credential.key")
    }

    /// The command with the credential key in the environment unless `keyless`.
    fn command(&self, args: &[&str], keyless: bool) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_secrets"));
        cmd.args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("USER", "tester")
            .env("SIMPLETUNER_STATE_DIR", self.state())
            .stdin(Stdio::null());
        if !keyless {
            cmd.env("SIMPLETUNER_CREDENTIAL_KEY", KEY);
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        finish(self.command(args, false).output().unwrap())
    }

    fn run_keyless(&self, args: &[&str]) -> Run {
        finish(self.command(args, true).output().unwrap())
    }

    fn raw(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.jobs_db()).unwrap();
        conn.busy_timeout(Duration::from_secs(30)).unwrap();
        conn
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

// 5. No credential key is created silently.
#[test]
fn config_set_creates_a_credential_key_only_with_create_key_and_never_over_encrypted_data() {
    let sb = Sandbox::new();
    let with_secret = r#"{"webhook_secret": "s3cret", "webhook_url": "https://a.invalid"}"#;
    let run = sb.run_keyless(&["config", "set", "replicate", with_secret]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("--create-key"), "{}", run.stderr);
    assert!(run.stderr.contains("nothing was written"), "{}", run.stderr);
    assert!(!sb.key_file().exists());
    assert_eq!(
        json_of(&sb.run_keyless(&["config", "get", "replicate"])),
        json!({})
    );
    // Without a credential, no key is needed.
    let run = sb.run_keyless(&[
        "config",
        "update",
        "replicate",
        r#"{"cost_limit_amount": 3}"#,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!sb.key_file().exists());
    // Asked for: created, and said loudly, naming the file.
    let run = sb.run_keyless(&["config", "update", "replicate", with_secret, "--create-key"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("generated a new credential key")
            && run.stderr.contains(&sb.key_file().display().to_string()),
        "{}",
        run.stderr
    );
    assert!(sb.key_file().exists());
    // The key is lost: a new one would make the stored secret unreadable.
    fs::remove_file(sb.key_file()).unwrap();
    let run = sb.run_keyless(&[
        "config",
        "update",
        "modal",
        r#"{"webhook_secret": "x"}"#,
        "--create-key",
    ]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("encrypted under a key"),
        "{}",
        run.stderr
    );
    assert!(!sb.key_file().exists());
}

// 10. Credential fields are redacted in output unless --reveal.
#[test]
fn config_output_redacts_credentials_unless_revealed() {
    let sb = Sandbox::new();
    assert_eq!(sb.run(&["config", "set", "modal", "{}"]).code, 0);
    // The original's plaintext secret.
    sb.raw()
        .execute(
            "INSERT INTO provider_config (provider, config, updated_at) VALUES ('replicate', ?1, 'then')",
            [r#"{"webhook_secret": "PLAIN-SENTINEL", "webhook_url": "https://a.invalid"}"#],
        )
        .unwrap();
    for args in [
        &["config", "get", "replicate"][..],
        &[
            "config",
            "update",
            "replicate",
            r#"{"cost_limit_amount": 1}"#,
        ],
        &[
            "config",
            "set",
            "modal",
            r#"{"webhook_secret": "NEW-SENTINEL"}"#,
        ],
    ] {
        let run = sb.run(args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert!(!run.stdout.contains("SENTINEL"), "{args:?}: {}", run.stdout);
        assert!(!run.stderr.contains("SENTINEL"), "{args:?}: {}", run.stderr);
        assert_eq!(json_of(&run)["webhook_secret"], "[REDACTED]", "{args:?}");
    }
    let run = sb.run(&["config", "get", "replicate", "--reveal"]);
    assert_eq!(json_of(&run)["webhook_secret"], "PLAIN-SENTINEL");
    assert_eq!(json_of(&run)["webhook_url"], "https://a.invalid");
}

// 12. Control characters in provider names are shown escaped and refused in new names.
#[test]
fn control_characters_in_provider_names_are_escaped_and_refused() {
    let sb = Sandbox::new();
    assert_eq!(sb.run(&["config", "set", "modal", "{}"]).code, 0);
    let evil = "evil\n\u{1b}[31mforged\u{202e}";
    sb.raw()
        .execute(
            "INSERT INTO provider_config (provider, config, updated_at) VALUES (?1, 'not json', 'then')",
            [evil],
        )
        .unwrap();
    let run = sb.run(&["config", "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
    assert!(!run.stdout.contains('\u{1b}') && !run.stdout.contains('\u{202e}'));
    assert!(
        run.stdout.contains(r"evil\n\u{1b}[31mforged\u{202e}"),
        "{}",
        run.stdout
    );
    // The error about its row, and the migrate-db warning.
    let run = sb.run(&["config", "get", evil]);
    assert_ne!(run.code, 0);
    assert!(!run.stderr.contains('\u{1b}'), "{}", run.stderr);
    let run = sb.run(&["crypto", "migrate-db"]);
    assert!(!run.stderr.contains('\u{1b}') && !run.stderr.contains('\u{202e}'));
    assert!(run.stderr.contains(r"evil\n\u{1b}"), "{}", run.stderr);
    // New names with such characters are refused.
    for name in ["a\nb", "a\u{1b}b", "a\u{202e}b", "a\u{200b}b"] {
        let run = sb.run(&["config", "set", name, "{}"]);
        assert_eq!(run.code, 2, "{name:?}: {}", run.stderr);
        assert!(!run.stderr.contains(name), "{}", run.stderr);
    }
}

// 5. migrate-db never creates a key over credentials encrypted under a lost one.
#[test]
fn migrate_db_never_creates_a_key_over_encrypted_credentials() {
    let sb = Sandbox::new();
    let run = sb.run(&["config", "set", "replicate", r#"{"webhook_secret": "s"}"#]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = sb.run_keyless(&["crypto", "migrate-db"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("1 credential(s) encrypted"),
        "{}",
        run.stderr
    );
    assert!(!sb.key_file().exists());
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut all = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(snapshot(&path));
        } else {
            let bytes = fs::read(&path).unwrap();
            all.push((path, bytes));
        }
    }
    all.sort();
    all
}

fn set_modes(dir: &std::path::Path, dirs: u32, files: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(dirs)).unwrap();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            set_modes(&path, dirs, files);
        } else {
            fs::set_permissions(&path, fs::Permissions::from_mode(files)).unwrap();
        }
    }
}

// 7. Reading commands work on a read-only database and change nothing, not even the
// schema of a database the original wrote.
#[test]
fn reading_commands_work_on_a_read_only_database_and_change_nothing() {
    use std::os::unix::process::CommandExt;
    let sb = Sandbox::new();
    let audit_key = "read-only test audit key";
    // As the original leaves them: its tables, no user_version, WAL mode, closed cleanly.
    fs::create_dir_all(sb.state().join("cloud")).unwrap();
    let jobs = rusqlite::Connection::open(sb.jobs_db()).unwrap();
    jobs.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE provider_config (provider TEXT PRIMARY KEY, config TEXT NOT NULL DEFAULT '{}', updated_at TEXT NOT NULL);
         INSERT INTO provider_config VALUES ('replicate', '{\"cost_limit_amount\": 7}', 'then');",
    )
    .unwrap();
    drop(jobs);
    let settings = secrets::config::StoreSettings::in_dir(&sb.state());
    let key = secrets::config::AuditKey::from_bytes(audit_key.as_bytes().to_vec()).unwrap();
    let trail = secrets::config::AuditTrail::open_path(&settings.audit_db, key).unwrap();
    trail
        .append(&secrets::config::AuditEvent::new(
            "provider.configured",
            "configured",
        ))
        .unwrap();
    drop(trail);
    let before = snapshot(&sb.state());
    // Read by the owner of a writable directory: no file is created or changed either.
    for args in [
        &["config", "get", "replicate"][..],
        &["config", "list"],
        &["audit", "list"],
        &["audit", "verify"],
    ] {
        let mut cmd = sb.command(args, false);
        let run = finish(
            cmd.env("SIMPLETUNER_AUDIT_KEY", audit_key)
                .output()
                .unwrap(),
        );
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    }
    assert_eq!(
        snapshot(&sb.state()),
        before,
        "a reading command changed the state"
    );
    // Nobody may write: as root, run as `nobody` (root ignores modes).
    // The files we created belong to our effective user.
    let root = std::os::unix::fs::MetadataExt::uid(&fs::metadata(sb.jobs_db()).unwrap()) == 0;
    let (dirs, files) = if root { (0o755, 0o644) } else { (0o555, 0o444) };
    set_modes(&sb.state(), dirs, files);
    set_modes(sb.home.path(), 0o755, 0o644);
    let run = |args: &[&str]| {
        let mut cmd = sb.command(args, false);
        cmd.env("SIMPLETUNER_AUDIT_KEY", audit_key);
        if root {
            cmd.uid(65534).gid(65534);
        }
        finish(cmd.output().unwrap())
    };
    let got = run(&["config", "get", "replicate"]);
    assert_eq!(got.code, 0, "{}", got.stderr);
    assert_eq!(json_of(&got)["cost_limit_amount"], 7);
    let listed = run(&["config", "list"]);
    assert_eq!(
        (listed.code, listed.stdout.as_str()),
        (0, "replicate\n"),
        "{}",
        listed.stderr
    );
    let audit = run(&["audit", "list"]);
    assert_eq!(audit.code, 0, "{}", audit.stderr);
    assert!(audit.stdout.contains("configured"), "{}", audit.stdout);
    let verified = run(&["audit", "verify"]);
    assert_eq!(verified.code, 0, "{}{}", verified.stdout, verified.stderr);
    // A write is refused, not half done.
    let write = run(&[
        "config",
        "update",
        "replicate",
        r#"{"cost_limit_amount": 8}"#,
    ]);
    assert_ne!(write.code, 0);
    set_modes(&sb.state(), 0o700, 0o600);
    assert_eq!(
        snapshot(&sb.state()),
        before,
        "a reading command changed the state"
    );
    // Opened for writing, the database is migrated as before.
    let mut cmd = sb.command(
        &[
            "config",
            "update",
            "replicate",
            r#"{"cost_limit_amount": 8}"#,
        ],
        false,
    );
    let run = finish(
        cmd.env("SIMPLETUNER_AUDIT_KEY", audit_key)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let version: i64 = sb
        .raw()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 2);
}

// 6. A BLOB or non-UTF-8 row: named when read, fixable with set/delete, reported by
// migrate-db, which does the rest.
#[test]
fn rows_that_are_not_text_are_named_and_fixable_through_the_cli() {
    let sb = Sandbox::new();
    assert_eq!(sb.run(&["config", "set", "modal", "{}"]).code, 0);
    sb.raw()
        .execute_batch(
            "INSERT INTO provider_config VALUES ('bad', CAST(x'7b22ff22' AS TEXT), 'then');
             INSERT INTO provider_config VALUES ('blob', x'7b7d', 'then');
             INSERT INTO provider_config VALUES ('plain', '{\"webhook_secret\": \"PLAIN-SENTINEL\"}', 'then');",
        )
        .unwrap();
    let run = sb.run(&["config", "get", "bad"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("`bad`") && run.stderr.contains("UTF-8"),
        "{}",
        run.stderr
    );
    let run = sb.run(&["crypto", "migrate-db"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("1 configuration secret(s)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("`bad`") && run.stderr.contains("`blob`"),
        "{}",
        run.stderr
    );
    assert_eq!(sb.run(&["config", "set", "bad", r#"{"ok": 1}"#]).code, 0);
    assert_eq!(json_of(&sb.run(&["config", "get", "bad"]))["ok"], 1);
    assert_eq!(sb.run(&["config", "delete", "blob"]).code, 0);
    assert_eq!(sb.run(&["audit", "verify"]).code, 0);
}

// 11. What could expose or redirect the databases and the audit key is warned about.
#[test]
fn unsafe_modes_and_a_symlinked_database_are_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    assert_eq!(sb.run(&["config", "set", "modal", "{}"]).code, 0);
    let clean = sb.run(&["config", "update", "modal", r#"{"a": 1}"#]);
    assert!(!clean.stderr.contains("WARN"), "{}", clean.stderr);
    let mode = |path: PathBuf, mode: u32| {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    };
    // As the original leaves them: cloud/ 0755; and a readable database and key.
    mode(sb.state().join("cloud"), 0o755);
    mode(sb.jobs_db(), 0o644);
    mode(sb.state().join("audit.key"), 0o644);
    for args in [
        &["config", "update", "modal", r#"{"a": 2}"#][..],
        &["config", "get", "modal"],
    ] {
        let run = sb.run(args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stderr
                .contains("directory of the database file is accessible by group or others"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains("database file is accessible by group or others"),
            "{}",
            run.stderr
        );
        if args[1] == "update" {
            assert!(
                run.stderr.contains("audit key file is accessible"),
                "{}",
                run.stderr
            );
        }
    }
    mode(sb.state().join("cloud"), 0o700);
    mode(sb.jobs_db(), 0o600);
    mode(sb.state().join("audit.key"), 0o600);
    // A symbolic link at jobs.db is followed, and said.
    let elsewhere = sb.home.path().join("elsewhere.db");
    fs::rename(sb.jobs_db(), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, sb.jobs_db()).unwrap();
    for args in [
        &["config", "update", "modal", r#"{"a": 3}"#][..],
        &["config", "get", "modal"],
    ] {
        let run = sb.run(args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stderr.contains("symbolic link"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains(&elsewhere.display().to_string()),
            "{}",
            run.stderr
        );
    }
}
