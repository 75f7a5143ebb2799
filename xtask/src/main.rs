//! Development tasks, in the manner of rust-analyzer's xtask: plain Rust instead of shell
//! scripts, run with `cargo xtask <task>`.
//!
//! - `ci`: every check CI runs, fail-fast, with named steps.
//! - `test`: starts the real test servers and runs all tests.

mod bench;
mod servers;

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask <ci|test|bench NAME|fuzz [SECONDS]>

  ci     fmt check, clippy, the facade's feature matrix, all tests (with the real test
         servers), docs, cargo-deny; installs missing tools (cargo-deny, the Python venv)
  test   all tests, with the real test servers started and stopped around them
  bench  crypto: credential-crypto beside Python's cryptography; cache: ttl-cache beside
         moka, quick_cache, mini-moka and Mutex<lru> (target/bench/*.json)
  fuzz   run the credential decrypt fuzz target (cargo-fuzz, nightly) for SECONDS (60)";

/// Facade feature sets built and tested on their own: none, each feature alone, all.
const FACADE_FEATURE_MATRIX: &[&[&str]] = &[
    &["--no-default-features"],
    &["--no-default-features", "--features", "env"],
    &["--no-default-features", "--features", "file"],
    &["--no-default-features", "--features", "crypto"],
    &["--no-default-features", "--features", "cache"],
    &["--all-features"],
];

fn main() -> Result<()> {
    let task = env::args().nth(1);
    let root = workspace_root();
    env::set_current_dir(&root)?;
    let started = Instant::now();
    match task.as_deref() {
        Some("ci") => ci(&root)?,
        Some("test") => test(&root)?,
        Some("bench") => bench::bench(&root, env::args().nth(2).as_deref())?,
        Some("fuzz") => fuzz(env::args().nth(2).as_deref())?,
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return Ok(());
        }
        _ => bail!("{USAGE}"),
    }
    println!("xtask: all done in {:.0?}", started.elapsed());
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_owned()
}

/// Runs one named step: prints its name and how long it took; fails with its name.
fn step(name: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
    println!("\n==> {name}");
    let started = Instant::now();
    f().with_context(|| format!("step failed: {name}"))?;
    println!("<== {name}: ok ({:.1?})", started.elapsed());
    Ok(())
}

/// Runs a command, inheriting stdio; an unsuccessful exit is an error naming it.
/// Runs the decrypt fuzz target for a while (installing cargo-fuzz when missing).
fn fuzz(seconds: Option<&str>) -> Result<()> {
    let seconds: u32 = seconds
        .unwrap_or("60")
        .parse()
        .context("SECONDS must be a number")?;
    ensure_cargo_tool("cargo-fuzz", "fuzz", "cargo-fuzz")?;
    run(Command::new("cargo")
        .args([
            "+nightly",
            "fuzz",
            "run",
            "decrypt",
            "--fuzz-dir",
            "fuzz",
            "--",
        ])
        .arg(format!("-max_total_time={seconds}")))
}

pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    println!("$ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

pub(crate) fn cargo() -> Command {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn ci(root: &Path) -> Result<()> {
    step("fmt", || {
        run(cargo().args(["fmt", "--all", "--", "--check"]))
    })?;
    step("clippy", || {
        run(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    for features in FACADE_FEATURE_MATRIX {
        step(
            &format!("facade feature set: {}", features.join(" ")),
            || {
                run(cargo()
                    .args(["test", "--package", "secrets", "--quiet"])
                    .args(*features))
            },
        )?;
    }
    test(root)?;
    step("docs", || {
        run(cargo()
            .args(["doc", "--workspace", "--no-deps", "--all-features"])
            .env("RUSTDOCFLAGS", "-D warnings"))
    })?;
    step("cargo-deny (bans, licenses, sources)", || {
        ensure_cargo_tool("cargo-deny", "deny", "cargo-deny")?;
        run(cargo().args(["deny", "check", "bans", "licenses", "sources"]))
    })
}

fn test(root: &Path) -> Result<()> {
    let mut environment = None;
    step("test servers", || {
        environment = Some(servers::start_all(root)?);
        Ok(())
    })?;
    let envs = environment
        .as_ref()
        .map(|e| e.exports.clone())
        .unwrap_or_default();
    let result = step("tests", || {
        if has_cargo_subcommand("nextest") {
            run(cargo()
                .args([
                    "nextest",
                    "run",
                    "--workspace",
                    "--all-features",
                    "--no-fail-fast",
                ])
                .envs(envs.iter().cloned()))?;
            // nextest does not run doctests.
            run(cargo()
                .args(["test", "--workspace", "--all-features", "--doc", "--quiet"])
                .envs(envs.iter().cloned()))
        } else {
            run(cargo()
                .args(["test", "--workspace", "--all-features", "--no-fail-fast"])
                .envs(envs.iter().cloned()))
        }
    });
    // The servers stop here, whether the tests passed or not.
    drop(environment);
    result
}

fn has_cargo_subcommand(name: &str) -> bool {
    cargo()
        .args([name, "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs a cargo tool with `cargo install --locked` when its subcommand is missing.
fn ensure_cargo_tool(binary: &str, subcommand: &str, krate: &str) -> Result<()> {
    if has_cargo_subcommand(subcommand) {
        return Ok(());
    }
    println!("{binary} is missing; installing it");
    run(cargo().args(["install", "--locked", krate]))
}
