//! `secrets config migrate` and the commands on a PostgreSQL store, against the server
//! `cargo xtask test` starts (`SECRETS_TEST_DATABASE_URL`), each test on a database of its
//! own.
#![cfg(feature = "postgres")]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use secrets::config::{CredentialStore, Secret};
use secrets::crypto::CredentialCipher;
use serde_json::Value;
use tempfile::TempDir;

const KEY: &str = "cli postgres test passphrase";

/// A database of its own on the test server, dropped at the end.
struct Database {
    admin: String,
    name: String,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn admin_sql(url: &str, sql: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client.batch_execute(sql).await.unwrap();
    });
}

impl Database {
    fn create() -> Self {
        let admin = std::env::var("SECRETS_TEST_DATABASE_URL").expect(
            "SECRETS_TEST_DATABASE_URL is not set: these tests need the PostgreSQL server `cargo xtask test` starts",
        );
        let name = format!(
            "cli_test_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        admin_sql(&admin, &format!("CREATE DATABASE {name}"));
        Self { admin, name }
    }

    fn url(&self) -> String {
        let (before, query) = self.admin.split_once('?').unwrap_or((&self.admin, ""));
        let base = before.rsplit_once('/').unwrap().0;
        format!("{base}/{}?{query}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        admin_sql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

struct Sandbox {
    home: TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Self {
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn state(&self) -> PathBuf {
        self.home.path().join("state")
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_secrets"))
            .args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("USER", "tester")
            .env("SIMPLETUNER_STATE_DIR", self.state())
            .env("SIMPLETUNER_CREDENTIAL_KEY", KEY)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

#[test]
fn migrate_copies_the_sqlite_store_once_and_the_commands_then_use_postgres() {
    let db = Database::create();
    let url = db.url();
    let sandbox = Sandbox::new();
    let sentinel = "SENTINEL-cli-hook-51";
    for (provider, json) in [
        (
            "replicate",
            format!(r#"{{"webhook_secret": "{sentinel}", "cost_limit_amount": 5}}"#),
        ),
        ("modal", "{}".to_owned()),
    ] {
        let run = sandbox.run(&["config", "set", provider, &json], &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let creds = CredentialStore::open_path(
        &sandbox.state().join("cloud/jobs.db"),
        CredentialCipher::from_passphrase(KEY).unwrap(),
        None,
    )
    .unwrap();
    creds
        .set(1, "replicate", "api_token", &Secret::new("r8_token"))
        .unwrap();

    let with_url = [("SIMPLETUNER_DATABASE_URL", url.as_str())];
    let first = sandbox.run(&["config", "migrate"], &with_url);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first
            .stdout
            .contains("provider configurations: 2 copied, 0 already there")
            && first.stdout.contains("credentials: 1 copied"),
        "{}",
        first.stdout
    );
    // Twice: nothing more to copy. With --to and --json too.
    let second = sandbox.run(&["config", "migrate", "--to", &url, "--json"], &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let report: Value = serde_json::from_str(&second.stdout).unwrap();
    assert_eq!(report["providers_copied"], 0);
    assert_eq!(report["providers_unchanged"], 2);
    assert_eq!(report["credentials_unchanged"], 1);
    assert_eq!(report["audit_rows_copied"], 0);
    assert_eq!(report["chain"]["valid"], true);
    assert!(!format!("{}{}{}", first.stdout, first.stderr, second.stdout).contains(sentinel));

    // The commands now read and write PostgreSQL.
    let got = sandbox.run(&["config", "get", "replicate", "--reveal"], &with_url);
    assert_eq!(got.code, 0, "{}", got.stderr);
    let config: Value = serde_json::from_str(&got.stdout).unwrap();
    assert_eq!(config["cost_limit_amount"], 5);
    assert!(
        config["webhook_secret"]
            .as_str()
            .unwrap()
            .starts_with("Z0FBQUFB")
    );
    let update = sandbox.run(&["config", "update", "modal", r#"{"a": 1}"#], &with_url);
    assert_eq!(update.code, 0, "{}", update.stderr);
    // Not in the SQLite file any more: only in PostgreSQL.
    let sqlite = sandbox.run(&["config", "get", "modal"], &[]);
    assert_eq!(sqlite.stdout.trim(), "{}");
    let listed = sandbox.run(&["config", "list"], &with_url);
    assert_eq!(listed.stdout, "modal\nreplicate\n");
    let verified = sandbox.run(&["audit", "verify", "--json"], &with_url);
    assert_eq!(verified.code, 0, "{}", verified.stdout);
    let verified: Value = serde_json::from_str(&verified.stdout).unwrap();
    assert_eq!(verified["entries_checked"], 3);
    // A configuration changed in PostgreSQL since is never overwritten by another run.
    sandbox.run(&["config", "set", "modal", r#"{"b": 2}"#], &[]);
    let refused = sandbox.run(&["config", "migrate"], &with_url);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(refused.stderr.contains("`modal`"), "{}", refused.stderr);
}

#[test]
fn migrate_says_what_is_wrong_without_the_password() {
    let sandbox = Sandbox::new();
    // No SQLite store: nothing to migrate.
    let none = sandbox.run(
        &["config", "migrate", "--to", "postgres://u@127.0.0.1:1/x"],
        &[],
    );
    assert_eq!(none.code, 1, "{}", none.stderr);
    assert!(
        none.stderr.contains("nothing to migrate"),
        "{}",
        none.stderr
    );
    sandbox.run(&["config", "set", "modal", "{}"], &[]);
    // No target named.
    let usage = sandbox.run(&["config", "migrate"], &[]);
    assert_eq!(usage.code, 2, "{}", usage.stderr);
    assert!(
        usage.stderr.contains("SIMPLETUNER_DATABASE_URL"),
        "{}",
        usage.stderr
    );
    for (url, code) in [
        ("mysql://u:SENTINEL-pw@h/x", 2),
        ("postgres://u:SENTINEL-pw@h/x?sslmode=sometimes", 2),
    ] {
        let run = sandbox.run(&["config", "migrate", "--to", url], &[]);
        assert_eq!(run.code, code, "{url}: {}", run.stderr);
        assert!(!run.stderr.contains("SENTINEL"), "{}", run.stderr);
    }
    // Nobody listens there: an I/O failure naming the server, not the password.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://u:SENTINEL-pw@127.0.0.1:{port}/x?sslmode=disable");
    let run = sandbox.run(
        &["config", "migrate"],
        &[("SIMPLETUNER_DATABASE_URL", &url)],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("127.0.0.1:{port}/x")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("SENTINEL"), "{}", run.stderr);
    // The same for any command once the variable points there.
    let get = sandbox.run(
        &["config", "get", "modal"],
        &[("SIMPLETUNER_DATABASE_URL", &url)],
    );
    assert_eq!(get.code, 3, "{}", get.stderr);
    assert!(!get.stderr.contains("SENTINEL"), "{}", get.stderr);
}
