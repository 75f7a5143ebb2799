//! `cargo xtask reliability [NAME...]`: the long versions of the reliability checks, and
//! docs/reliability.md regenerated from what they measured.
//!
//! Each check is an integration test of the `integration-tests` package (tests/tests/) that
//! runs quickly under `cargo xtask test` (so CI runs it) and at full scale when
//! `SECRETS_RELIABILITY=full` is set; at the end it reports its figures through
//! `integration_tests::reliability::report`, which writes one JSON record per measured row to
//! `$SECRETS_RELIABILITY_REPORT`. Fuzzing reports the executions of each target. The rows land
//! in docs/reliability.json (committed, one row per id, replaced when measured again), from
//! which docs/reliability.md is rendered, so the document only ever shows measured figures,
//! each with the command and the date that produced it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{cargo, run, servers, step};

pub(crate) const USAGE: &str = "usage: cargo xtask reliability [NAME...|doc]

Runs the named reliability checks (all when none is named) at full scale, with the real test
servers, and regenerates docs/reliability.md from their figures (docs/reliability.json).
`doc` only regenerates the document. `cargo xtask ci` runs the quick versions as tests.";

/// How a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Run {
    /// An integration test file (`tests/tests/<test>.rs`) at full scale, with the servers.
    Test {
        test: &'static str,
        /// Built optimised: for checks that report throughput.
        release: bool,
    },
    /// Every fuzz target for this many seconds, built optimised with AddressSanitizer.
    Fuzz { seconds: u32 },
}

/// One reliability check: its name on the command line, and how it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Check {
    pub(crate) name: &'static str,
    pub(crate) run: Run,
}

/// Every check, in the order the document lists them. Add a row for a new check.
pub(crate) const CHECKS: &[Check] = &[
    Check {
        name: "fuzz",
        run: Run::Fuzz { seconds: 600 },
    },
    Check {
        name: "leaks-file",
        run: Run::Test {
            test: "leak_property",
            release: false,
        },
    },
    // Crash safety, concurrent writers, file permissions and strict mode (tests/tests/).
    Check {
        name: "crash",
        run: Run::Test {
            test: "crash_safety",
            release: false,
        },
    },
    Check {
        name: "multi-process",
        run: Run::Test {
            test: "multi_process",
            release: false,
        },
    },
    Check {
        name: "permissions",
        run: Run::Test {
            test: "permissions",
            release: false,
        },
    },
    // Leak checks of every CLI command and the library scenarios (tests/tests/leaks.rs).
    Check {
        name: "leaks",
        run: Run::Test {
            test: "leaks",
            release: false,
        },
    },
    // Fault injection and load against the real servers (tests/tests/faults.rs, load.rs).
    Check {
        name: "faults",
        run: Run::Test {
            test: "faults",
            release: false,
        },
    },
    Check {
        name: "load",
        run: Run::Test {
            test: "load",
            release: true,
        },
    },
];

/// Parses the arguments after `cargo xtask reliability`: the checks to run (none = all), or
/// `None` for `doc`.
pub(crate) fn parse(args: &[&str]) -> Result<Option<Vec<Check>>, String> {
    match args {
        ["doc"] => Ok(None),
        [] => Ok(Some(CHECKS.to_vec())),
        names => names
            .iter()
            .map(|name| {
                CHECKS
                    .iter()
                    .find(|c| c.name == *name)
                    .copied()
                    .ok_or_else(|| {
                        let known: Vec<&str> = CHECKS.iter().map(|c| c.name).collect();
                        format!(
                            "unknown reliability check `{name}` (known: {})",
                            known.join(", ")
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
    }
}

/// Runs the checks, merges their rows into docs/reliability.json and rewrites
/// docs/reliability.md. A failing check stops the run; the rows of the checks that passed
/// before it are kept.
pub(crate) fn reliability(root: &Path, checks: Option<Vec<Check>>) -> Result<()> {
    let data = root.join("docs/reliability.json");
    let mut rows = load_rows(&data)?;
    for check in checks.unwrap_or_default() {
        let mut fresh = Vec::new();
        step(&format!("reliability: {}", check.name), || {
            fresh = run_check(root, check)?;
            if fresh.is_empty() {
                bail!("the check reported no figures");
            }
            Ok(())
        })?;
        for row in fresh {
            rows.insert(row_id(&row)?, row);
        }
        save_rows(&data, &rows)?;
        write_doc(root, &rows)?;
    }
    write_doc(root, &rows)?;
    println!("wrote docs/reliability.md ({} rows)", rows.len());
    Ok(())
}

fn run_check(root: &Path, check: Check) -> Result<Vec<Value>> {
    let command = format!("cargo xtask reliability {}", check.name);
    let order = CHECKS
        .iter()
        .position(|c| c.name == check.name)
        .unwrap_or(0);
    let mut rows = match check.run {
        Run::Fuzz { seconds } => crate::fuzz_and_report(root, seconds)?,
        Run::Test { test, release } => {
            let report = root.join("target/reliability").join(check.name);
            if report.exists() {
                fs::remove_dir_all(&report)
                    .with_context(|| format!("clearing {}", report.display()))?;
            }
            fs::create_dir_all(&report)
                .with_context(|| format!("creating {}", report.display()))?;
            // Checks drive the real `secrets` binary, which `cargo test -p integration-tests`
            // does not build; with every feature, as `cargo xtask test` builds it.
            let mut build = cargo();
            build.args([
                "build",
                "--package",
                "secrets-cli",
                "--bin",
                "secrets",
                "--all-features",
            ]);
            if release {
                build.arg("--release");
            }
            run(&mut build)?;
            let environment = servers::start_all(root)?;
            let mut cmd = cargo();
            cmd.args(["test", "--package", "integration-tests", "--test", test]);
            if release {
                cmd.arg("--release");
            }
            cmd.args(["--", "--nocapture", "--test-threads=1"])
                .envs(environment.exports.iter().cloned())
                .env("SECRETS_RELIABILITY", "full")
                .env("SECRETS_RELIABILITY_REPORT", &report);
            let result = run(&mut cmd);
            drop(environment);
            result?;
            read_reports(&report)?
        }
    };
    let date = today();
    for (index, row) in rows.iter_mut().enumerate() {
        let object = row
            .as_object_mut()
            .context("a reliability record is not a JSON object")?;
        object.insert("command".into(), json!(command));
        object.insert("measured".into(), json!(date));
        object.insert("order".into(), json!(order * 1000 + index));
    }
    Ok(rows)
}

/// The records a test wrote, in the order it wrote them (file names carry a sequence number).
fn read_reports(dir: &Path) -> Result<Vec<Value>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
        })
        .collect()
}

fn row_id(row: &Value) -> Result<String> {
    row.get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .context("a reliability record has no string `id`")
}

fn load_rows(path: &Path) -> Result<BTreeMap<String, Value>> {
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let rows: Vec<Value> =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    rows.into_iter().map(|r| Ok((row_id(&r)?, r))).collect()
}

fn save_rows(path: &Path, rows: &BTreeMap<String, Value>) -> Result<()> {
    let list: Vec<&Value> = sorted(rows);
    let text = serde_json::to_string_pretty(&list)? + "\n";
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The rows in the order of [`CHECKS`] (found through the command that measured them), then
/// in the order their check reported them.
fn sorted(rows: &BTreeMap<String, Value>) -> Vec<&Value> {
    let check_position = |row: &Value| {
        let name = row
            .get("command")
            .and_then(Value::as_str)
            .and_then(|c| c.strip_prefix("cargo xtask reliability "));
        CHECKS
            .iter()
            .position(|c| Some(c.name) == name)
            .unwrap_or(CHECKS.len())
    };
    let mut list: Vec<&Value> = rows.values().collect();
    list.sort_by_key(|r| {
        let within = r.get("order").and_then(Value::as_u64).unwrap_or(u64::MAX) % 1000;
        (check_position(r), within)
    });
    list
}

fn write_doc(root: &Path, rows: &BTreeMap<String, Value>) -> Result<()> {
    let field = |row: &Value, name: &str| {
        row.get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .replace('|', "\\|")
            .replace('\n', " ")
    };
    let mut doc = String::from(
        "# Reliability and security figures\n\n\
         Generated by `cargo xtask reliability` from docs/reliability.json: do not edit by hand.\n\
         Each row is what one check measured, with the command that measured it and the date.\n\
         Re-run a check with its command; `cargo xtask reliability` re-runs them all (with the\n\
         real moto, OpenBao and PostgreSQL servers), `cargo xtask reliability doc` only\n\
         re-renders this file. `cargo xtask ci` runs the quick version of every check as a test.\n\n\
         | Check | Figures | Command | Measured |\n|---|---|---|---|\n",
    );
    for row in sorted(rows) {
        doc.push_str(&format!(
            "| {} | {} | `{}` | {} |\n",
            field(row, "check"),
            field(row, "figures"),
            field(row, "command"),
            field(row, "measured"),
        ));
    }
    let path = root.join("docs/reliability.md");
    fs::write(&path, doc).with_context(|| format!("writing {}", path.display()))
}

/// Today's UTC date, YYYY-MM-DD (days-from-civil inverted; no date crate for one line).
fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0);
    civil_date(days as i64)
}

fn civil_date(days_since_epoch: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = days_since_epoch + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(20_417), "2025-11-25");
        assert_eq!(civil_date(11_016), "2000-02-29");
    }

    #[test]
    fn names_parse() {
        assert_eq!(parse(&["doc"]), Ok(None));
        assert_eq!(parse(&[]), Ok(Some(CHECKS.to_vec())));
        assert_eq!(parse(&["fuzz"]), Ok(Some(vec![CHECKS[0]])));
        assert!(parse(&["bogus"]).unwrap_err().contains("bogus"));
    }
}
