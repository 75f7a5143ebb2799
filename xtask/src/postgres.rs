//! The PostgreSQL test server: PostgreSQL 16 from the PyPI package `pgserver` (which ships
//! the binaries), started by `pg_launch.py` on 127.0.0.1 with a fresh data directory under
//! `target/test-postgres/` (as `nobody` when xtask runs as root: initdb refuses root).
//!
//! The tests get the URL under a test-only name, `SECRETS_TEST_DATABASE_URL` (never
//! `SIMPLETUNER_DATABASE_URL`, so nothing picks it up by accident), and what they need to
//! start a private server of their own (to restart it mid-test): the launcher
//! (`SECRETS_TEST_PG_LAUNCHER`, run with `SECRETS_TEST_PYTHON`) and a directory for its data
//! (`SECRETS_TEST_PG_DIR`).

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::servers::{ServerSpec, Venv};

/// The launcher, written under `target/test-postgres/` for xtask and the tests.
const LAUNCHER: &str = include_str!("pg_launch.py");

pub(crate) const POSTGRES: ServerSpec = ServerSpec {
    name: "postgres",
    packages: &["pgserver"],
    command,
    exports,
    after_start,
};

/// `target/test-postgres`: the launcher, the shared server's data, the tests' own servers.
fn base_dir() -> PathBuf {
    crate::workspace_root().join("target").join("test-postgres")
}

fn launcher() -> PathBuf {
    base_dir().join("pg_launch.py")
}

fn command(venv: &Venv, port: u16) -> Command {
    // A ServerSpec's command cannot fail: a launcher that could not be written fails the
    // start with the launcher's own error.
    let _ = fs::create_dir_all(base_dir()).and_then(|()| fs::write(launcher(), LAUNCHER));
    let mut command = Command::new(venv.python());
    command
        .arg(launcher())
        .arg(base_dir().join("shared-server"))
        .arg(port.to_string());
    command
}

fn url(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable")
}

fn exports(port: u16) -> Vec<(String, String)> {
    vec![
        ("SECRETS_TEST_DATABASE_URL".to_owned(), url(port)),
        (
            "SECRETS_TEST_PG_LAUNCHER".to_owned(),
            launcher().display().to_string(),
        ),
        (
            "SECRETS_TEST_PG_DIR".to_owned(),
            base_dir().display().to_string(),
        ),
    ]
}

/// The port opens while the server still says "the database system is starting up": wait
/// until `pg_isready` (shipped beside the server) says it accepts connections.
fn after_start(port: u16) -> Result<()> {
    let pg_isready = pg_bin("pg_isready")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = Command::new(&pg_isready)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .stdout(std::process::Stdio::null())
            .status()
            .with_context(|| format!("cannot run {}", pg_isready.display()))?;
        if status.success() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("PostgreSQL on port {port} did not accept connections within 60 s");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// A program of pgserver's PostgreSQL in the test virtualenv.
fn pg_bin(name: &str) -> Result<PathBuf> {
    let lib = crate::workspace_root().join("target/test-venv/lib");
    for entry in fs::read_dir(&lib).with_context(|| format!("reading {}", lib.display()))? {
        let bin = entry?
            .path()
            .join("site-packages/pgserver/pginstall/bin")
            .join(name);
        if bin.exists() {
            return Ok(bin);
        }
    }
    bail!("{name} of pgserver was not found under {}", lib.display())
}
