//! Shared by the crash-safety, multi-process, permission and leak tests: the real `secrets` binary,
//! the config writer process, a scratch PostgreSQL database, a seeded random source.

#![allow(dead_code)] // each test file uses part of it

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The audit key every process of a test shares.
pub(crate) const AUDIT_KEY: &str = "crash test audit key";
/// The credential passphrase every process of a test shares.
pub(crate) const CREDENTIAL_KEY: &str = "crash test credential key";

/// The `secrets` binary of this build (`target/<profile>/secrets`, next to the test's own
/// `deps/` directory).
///
/// # Panics
/// When it has not been built: `cargo xtask test` and `cargo xtask reliability` build it.
pub(crate) fn secrets_cli() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let cli = profile_dir.join("secrets");
    assert!(
        cli.exists(),
        "{} does not exist: build it with `cargo build -p secrets-cli` (cargo xtask test and \
         cargo xtask reliability do)",
        cli.display()
    );
    cli
}

/// The config writer helper (`tests/src/bin/config_writer.rs`).
pub(crate) fn config_writer() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_config_writer"))
}

/// A command with a clean environment: HOME, PATH, the shared keys and `env`.
pub(crate) fn clean_command(program: &Path, home: &Path, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("USER", "tester")
        .env("SIMPLETUNER_AUDIT_KEY", AUDIT_KEY)
        .env("SIMPLETUNER_CREDENTIAL_KEY", CREDENTIAL_KEY)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null());
    cmd
}

/// Runs the CLI to completion.
pub(crate) fn run_cli(home: &Path, env: &[(&str, String)], args: &[&str]) -> Output {
    clean_command(&secrets_cli(), home, env)
        .args(args)
        .output()
        .expect("running the secrets CLI")
}

/// Fails with the command's stderr unless it exited 0; returns its stdout.
pub(crate) fn ok(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A small seeded random source (xorshift64*); the seed is printed so a failure can be
/// replayed with `CRASH_SEED=<seed>`.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn from_env_or_time(label: &str) -> Self {
        let seed = std::env::var("CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("{label}: seed {seed} (replay with CRASH_SEED={seed})");
        Self(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

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

/// A database of its own on the test server (`SECRETS_TEST_DATABASE_URL`), dropped at the end.
pub(crate) struct Database {
    admin: String,
    name: String,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl Database {
    pub(crate) fn create(label: &str) -> Self {
        let admin = std::env::var("SECRETS_TEST_DATABASE_URL").expect(
            "SECRETS_TEST_DATABASE_URL is not set: these tests need the PostgreSQL server \
             `cargo xtask test` starts (run with `cargo xtask test`)",
        );
        let name = format!(
            "{label}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        admin_sql(&admin, &format!("CREATE DATABASE {name}"));
        Self { admin, name }
    }

    pub(crate) fn url(&self) -> String {
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

/// The temporary files (`.*.tmp`) in `dir`.
pub(crate) fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.') && n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}
