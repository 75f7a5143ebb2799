//! Development tasks, in the manner of rust-analyzer's xtask: plain Rust instead of shell
//! scripts, run with `cargo xtask <task>`.
//!
//! - `ci`: every check CI runs, fail-fast, with named steps.
//! - `test`: starts the real test servers and runs all tests.
//! - `bench NAME`, `fuzz [SECONDS]`: comparisons with peer implementations; fuzzing.
//!
//! Exit status: 0 done, 1 a step failed (`xtask: error: ...`), 2 usage.

mod bench;
mod checks;
mod openbao;
mod postgres;
mod reliability;
mod servers;
mod tools;

use std::env;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::bench::Bench;

const USAGE: &str =
    "usage: cargo xtask <ci|test|bench NAME|fuzz [--seconds N] [TARGET...]|reliability [NAME...]|help>

  ci     every check CI runs, stopping at the first failure: the repository is
         self-contained, fmt, dependency boundaries, clippy, the facade's feature matrix,
         all tests (with the real test servers), docs, cargo-deny; installs what is missing
         (the Python venv under target/, cargo-deny into the tools cache)
  test   all tests, with the real test servers started and stopped around them
  bench  crypto: credential-crypto beside Python's cryptography; cache: ttl-cache beside
         moka, quick_cache, mini-moka and Mutex<lru>; aws: the AWS provider through the
         chain against moto; chain: SecretsManager beside a bare ttl-cache get; vault: the
         Vault provider through the chain against OpenBao; config [--backend postgres]:
         cached provider configuration beside an uncached database read, and on PostgreSQL
         the cross-replica invalidation latency (target/bench/*.json)
  fuzz   run each fuzz target (or the TARGETs named) for N seconds (60; `fuzz N` works
         too): decrypt (credentials), secrets_file (file parser), vault_response (Vault
         answers), aws_secret_json (AWS secret values), config_input (`secrets config`
         inputs on SQLite) (cargo-fuzz, nightly); ci runs each for a few seconds
  reliability  the long reliability checks (fuzzing, crash and multi-process safety, faults,
         leaks, load) with the real servers; regenerates docs/reliability.md from their figures

Cargo tools are installed into $SECRETS_XTASK_TOOLS, else $XDG_CACHE_HOME/secrets-xtask,
else ~/.cache/secrets-xtask (never into ~/.cargo/bin), and reused by later runs and clones.";

/// Facade feature sets built and tested on their own: none, each feature alone, all.
const FACADE_FEATURE_MATRIX: &[&[&str]] = &[
    &["--no-default-features"],
    &["--no-default-features", "--features", "env"],
    &["--no-default-features", "--features", "file"],
    &["--no-default-features", "--features", "crypto"],
    &["--no-default-features", "--features", "cache"],
    &["--no-default-features", "--features", "aws"],
    &["--no-default-features", "--features", "vault"],
    &["--no-default-features", "--features", "config"],
    &["--no-default-features", "--features", "postgres"],
    &["--no-default-features", "--features", "metrics"],
    &["--all-features"],
];

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Task {
    Ci,
    Test,
    Bench(Bench),
    Fuzz {
        seconds: u32,
        /// The targets to run (`FUZZ_TARGETS` names); empty: all of them.
        targets: Vec<&'static str>,
    },
    /// `cargo xtask reliability`: the checks to run at full scale (`None`: only the document).
    Reliability(Option<Vec<reliability::Check>>),
    /// Print this usage text and succeed.
    Help(&'static str),
}

/// A command line that asks for nothing known: what is wrong, and the usage text to print.
#[derive(Debug, PartialEq, Eq)]
struct UsageError {
    problem: Option<String>,
    usage: &'static str,
}

impl UsageError {
    fn new(problem: Option<String>, usage: &'static str) -> Self {
        Self { problem, usage }
    }
}

/// Parses the arguments after `cargo xtask`.
fn parse_args(args: &[&str]) -> Result<Task, UsageError> {
    let usage = |problem: String| UsageError::new(Some(problem), USAGE);
    let no_more = |task: Task, rest: &[&str], usage_text: &'static str| match rest {
        [] => Ok(task),
        [extra, ..] => Err(UsageError::new(
            Some(format!("unexpected argument `{extra}`")),
            usage_text,
        )),
    };
    match args {
        [] => Err(UsageError::new(None, USAGE)),
        ["help" | "-h" | "--help", rest @ ..] => no_more(Task::Help(USAGE), rest, USAGE),
        ["ci", rest @ ..] => no_more(Task::Ci, rest, USAGE),
        ["test", rest @ ..] => no_more(Task::Test, rest, USAGE),
        ["bench", "help" | "-h" | "--help"] => Ok(Task::Help(bench::USAGE)),
        ["bench", "config", "--backend", backend, rest @ ..] => match *backend {
            "sqlite" => no_more(Task::Bench(Bench::Config), rest, bench::USAGE),
            "postgres" => no_more(Task::Bench(Bench::ConfigPostgres), rest, bench::USAGE),
            other => Err(UsageError::new(
                Some(format!("unknown backend `{other}` (sqlite or postgres)")),
                bench::USAGE,
            )),
        },
        ["bench"] => Err(UsageError::new(None, bench::USAGE)),
        ["bench", name, rest @ ..] => match Bench::from_name(name) {
            Some(which) => no_more(Task::Bench(which), rest, bench::USAGE),
            None => Err(UsageError::new(
                Some(format!("unknown benchmark `{name}`")),
                bench::USAGE,
            )),
        },
        ["fuzz", rest @ ..] => parse_fuzz(rest),
        ["reliability", "help" | "-h" | "--help"] => Ok(Task::Help(reliability::USAGE)),
        ["reliability", names @ ..] => reliability::parse(names)
            .map(Task::Reliability)
            .map_err(|problem| UsageError::new(Some(problem), reliability::USAGE)),
        [other, ..] => Err(usage(format!("unknown task `{other}`"))),
    }
}

/// Exit status 0 when the task succeeded, 1 when it failed (`xtask: error: ...` with the
/// chain of causes, no backtrace), 2 for a command line that asks for nothing known.
fn main() -> ExitCode {
    let args: Vec<String> = env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let task = match parse_args(&args) {
        Ok(Task::Help(usage)) => {
            // Not println!: `cargo xtask help | head -3` must not panic on the closed pipe.
            let _ = writeln!(std::io::stdout(), "{usage}");
            return ExitCode::SUCCESS;
        }
        Ok(task) => task,
        Err(UsageError { problem, usage }) => {
            if let Some(problem) = problem {
                eprintln!("xtask: {problem}\n");
            }
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    match execute(task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn execute(task: Task) -> Result<()> {
    let root = workspace_root();
    env::set_current_dir(&root)
        .with_context(|| format!("cannot change to the workspace root {}", root.display()))?;
    let started = Instant::now();
    match task {
        Task::Ci => ci(&root)?,
        Task::Test => test(&root)?,
        Task::Bench(which) => bench::bench(&root, which)?,
        Task::Fuzz { seconds, targets } => {
            fuzz_targets(&root, seconds, FuzzBuild::Thorough, &targets).map(drop)?;
        }
        Task::Reliability(checks) => reliability::reliability(&root, checks)?,
        Task::Help(usage) => println!("{usage}"),
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

/// The fuzz targets under `fuzz/`: name, and the libFuzzer dictionary and seed corpus the
/// target starts from (paths below `fuzz/`), if any.
const FUZZ_TARGETS: &[(&str, Option<&str>, Option<&str>)] = &[
    ("decrypt", None, None),
    (
        "secrets_file",
        Some("secrets_file.dict"),
        Some("seeds/secrets_file"),
    ),
    (
        "vault_response",
        Some("vault_response.dict"),
        Some("seeds/vault_response"),
    ),
    (
        "aws_secret_json",
        Some("aws_secret_json.dict"),
        Some("seeds/aws_secret_json"),
    ),
    (
        "config_input",
        Some("config_input.dict"),
        Some("seeds/config_input"),
    ),
];

/// `fuzz [--seconds N | N] [TARGET...]`.
fn parse_fuzz(args: &[&str]) -> Result<Task, UsageError> {
    let usage = |problem: String| UsageError::new(Some(problem), USAGE);
    let (seconds, names) = match args {
        ["--seconds", n, rest @ ..] => (Some(*n), rest),
        [n, rest @ ..] if n.starts_with(|c: char| c.is_ascii_digit()) => (Some(*n), rest),
        rest => (None, rest),
    };
    let seconds = match seconds {
        None => 60,
        Some(n) => n
            .parse()
            .map_err(|_| usage(format!("SECONDS must be a whole number, not `{n}`")))?,
    };
    let targets = names
        .iter()
        .map(|name| {
            FUZZ_TARGETS
                .iter()
                .map(|(target, ..)| *target)
                .find(|target| target == name)
                .ok_or_else(|| usage(format!("unknown fuzz target `{name}`")))
        })
        .collect::<Result<_, _>>()?;
    Ok(Task::Fuzz { seconds, targets })
}

/// How long `cargo xtask ci` fuzzes each target: a smoke test that the targets build and
/// their oracles hold on a first batch of inputs. Longer runs: `cargo xtask fuzz SECONDS`.
const CI_FUZZ_SECONDS: u32 = 5;

/// How a fuzz run builds its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FuzzBuild {
    /// Optimised, with AddressSanitizer: for real fuzzing runs.
    Thorough,
    /// Unoptimised, without a sanitizer: builds in a fraction of the time; for CI's smoke
    /// test that the targets build and their oracles hold on a first batch of inputs.
    Smoke,
}

/// Runs every fuzz target for `seconds` (installing cargo-fuzz into the tools cache when
/// missing; it needs the nightly toolchain).
fn fuzz(root: &Path, seconds: u32, build: FuzzBuild) -> Result<()> {
    fuzz_targets(root, seconds, build, &[]).map(drop)
}

/// What one fuzz run did: the target, libFuzzer's executions and seconds, the corpus size.
struct FuzzRun {
    target: &'static str,
    executions: u64,
    seconds: u64,
    corpus: usize,
}

/// `cargo xtask reliability fuzz`: every target for `seconds`, thorough build; one row each.
pub(crate) fn fuzz_and_report(root: &Path, seconds: u32) -> Result<Vec<serde_json::Value>> {
    let runs = fuzz_targets(root, seconds, FuzzBuild::Thorough, &[])?;
    Ok(runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": format!("fuzz-{}", r.target),
                "check": format!("Fuzzing: `{}` (cargo-fuzz, libFuzzer, AddressSanitizer)", r.target),
                "figures": format!(
                    "{} executions in {} s, no crash or oracle failure; corpus {} inputs",
                    r.executions, r.seconds, r.corpus
                ),
            })
        })
        .collect())
}

/// Runs the targets named in `only` (all when empty) for `seconds` each.
fn fuzz_targets(
    root: &Path,
    seconds: u32,
    build: FuzzBuild,
    only: &[&str],
) -> Result<Vec<FuzzRun>> {
    let cargo_fuzz = tools::ensure(&tools::CARGO_FUZZ)?;
    let mut runs = Vec::new();
    let chosen = FUZZ_TARGETS
        .iter()
        .filter(|(target, ..)| only.is_empty() || only.contains(target));
    for (target, dict, seeds) in chosen {
        let corpus = root.join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("creating {}", corpus.display()))?;
        let mut cmd = cargo_fuzz.rustup_cargo();
        cmd.args(["+nightly", "fuzz", "run"]);
        if build == FuzzBuild::Smoke {
            cmd.args(["--dev", "--sanitizer", "none"]);
        }
        cmd.args([target, "--fuzz-dir", "fuzz"]).arg(&corpus);
        if let Some(seeds) = seeds {
            cmd.arg(root.join("fuzz").join(seeds));
        }
        cmd.arg("--").arg(format!("-max_total_time={seconds}"));
        if let Some(dict) = dict {
            cmd.arg(format!("-dict={}", root.join("fuzz").join(dict).display()));
        }
        step(&format!("fuzz {target} for {seconds} s"), || {
            let stderr = run_teeing_stderr(&mut cmd)?;
            // libFuzzer's last words: "Done 10490 runs in 12 second(s)".
            let done = stderr
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("Done "))
                .context("libFuzzer did not report its executions (no `Done N runs` line)")?;
            let mut words = done.split_whitespace();
            let executions = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let seconds = words.nth(2).and_then(|n| n.parse().ok()).unwrap_or(0);
            let corpus = std::fs::read_dir(&corpus).map(|d| d.count()).unwrap_or(0);
            runs.push(FuzzRun {
                target,
                executions,
                seconds,
                corpus,
            });
            Ok(())
        })?;
    }
    Ok(runs)
}

/// Runs a command with its stderr passed through line by line and also kept; an unsuccessful
/// exit is an error naming it.
fn run_teeing_stderr(cmd: &mut Command) -> Result<String> {
    use std::io::BufRead;
    let shown = format!("{cmd:?}");
    println!("$ {shown}");
    let mut child = cmd
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {shown}"))?;
    let mut kept = String::new();
    if let Some(stderr) = child.stderr.take() {
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            eprintln!("{line}");
            kept.push_str(&line);
            kept.push('\n');
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(kept)
}

/// Runs a command, inheriting stdio; an unsuccessful exit is an error naming it.
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
    step(
        "self-contained (nothing read from outside the repository)",
        || checks::self_contained(root),
    )?;
    step("fmt", || {
        run(cargo().args(["fmt", "--all", "--", "--check"]))
    })?;
    step("dependency boundaries", || {
        checks::dependency_boundaries(checks::BOUNDARIES)
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
    // The facade as most users build it: intra-doc links must not need a non-default feature.
    step("docs (default features)", || {
        run(cargo()
            .args(["doc", "--no-deps", "--package", "secrets"])
            .env("RUSTDOCFLAGS", "-D warnings"))
    })?;
    step("cargo-deny (bans, licenses, sources)", || {
        let cargo_deny = tools::ensure(&tools::CARGO_DENY)?;
        run(cargo_deny
            .cargo()
            .args(["deny", "check", "bans", "licenses", "sources"]))
    })?;
    fuzz(root, CI_FUZZ_SECONDS, FuzzBuild::Smoke)
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
    // Tests that drive the real `secrets` binary (crash safety, leaks) find it in
    // target/debug; built first with every feature, as the test build does, so it is there
    // and current whichever test starts first.
    step("the secrets binary", || {
        run(cargo().args([
            "build",
            "--package",
            "secrets-cli",
            "--bin",
            "secrets",
            "--all-features",
        ]))
    })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_tasks_parse() {
        assert_eq!(parse_args(&["ci"]), Ok(Task::Ci));
        assert_eq!(parse_args(&["test"]), Ok(Task::Test));
        assert_eq!(
            parse_args(&["bench", "cache"]),
            Ok(Task::Bench(Bench::Cache))
        );
        assert_eq!(parse_args(&["bench", "aws"]), Ok(Task::Bench(Bench::Aws)));
        assert_eq!(
            parse_args(&["bench", "chain"]),
            Ok(Task::Bench(Bench::Chain))
        );
        assert_eq!(
            parse_args(&["bench", "vault"]),
            Ok(Task::Bench(Bench::Vault))
        );
        assert_eq!(
            parse_args(&["bench", "config"]),
            Ok(Task::Bench(Bench::Config))
        );
        assert_eq!(
            parse_args(&["bench", "config", "--backend", "postgres"]),
            Ok(Task::Bench(Bench::ConfigPostgres))
        );
        assert_eq!(
            parse_args(&["bench", "config", "--backend", "sqlite"]),
            Ok(Task::Bench(Bench::Config))
        );
        let fuzz = |seconds, targets: &[&'static str]| Task::Fuzz {
            seconds,
            targets: targets.to_vec(),
        };
        assert_eq!(parse_args(&["fuzz"]), Ok(fuzz(60, &[])));
        assert_eq!(parse_args(&["fuzz", "5"]), Ok(fuzz(5, &[])));
        assert_eq!(parse_args(&["fuzz", "--seconds", "7"]), Ok(fuzz(7, &[])));
        assert_eq!(
            parse_args(&["fuzz", "--seconds", "7", "vault_response", "decrypt"]),
            Ok(fuzz(7, &["vault_response", "decrypt"]))
        );
        assert_eq!(
            parse_args(&["fuzz", "config_input"]),
            Ok(fuzz(60, &["config_input"]))
        );
        for help in ["help", "-h", "--help"] {
            assert_eq!(parse_args(&[help]), Ok(Task::Help(USAGE)));
        }
        assert_eq!(
            parse_args(&["bench", "--help"]),
            Ok(Task::Help(bench::USAGE))
        );
    }

    #[test]
    fn anything_else_is_a_usage_error() {
        let usage_of = |args: &[&str]| parse_args(args).map_err(|e| e.usage);
        assert_eq!(usage_of(&[]), Err(USAGE));
        assert_eq!(usage_of(&["bogus"]), Err(USAGE));
        assert_eq!(usage_of(&["ci", "--bogus"]), Err(USAGE));
        assert_eq!(usage_of(&["fuzz", "soon"]), Err(USAGE));
        assert_eq!(usage_of(&["fuzz", "5x"]), Err(USAGE));
        assert_eq!(usage_of(&["fuzz", "--seconds"]), Err(USAGE));
        assert_eq!(usage_of(&["fuzz", "--seconds", "7", "bogus"]), Err(USAGE));
        assert_eq!(usage_of(&["bench"]), Err(bench::USAGE));
        assert_eq!(usage_of(&["bench", "bogus"]), Err(bench::USAGE));
        assert_eq!(usage_of(&["bench", "cache", "extra"]), Err(bench::USAGE));
        assert_eq!(
            usage_of(&["bench", "config", "--backend", "mysql"]),
            Err(bench::USAGE)
        );
    }
}
