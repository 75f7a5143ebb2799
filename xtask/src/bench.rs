//! `cargo xtask bench <name>`: side-by-side comparisons with the peer implementations, run in
//! the same session and interleaved round by round (these machines' speed drifts over time),
//! reported as the median of per-round ratios. Results go to `target/bench/<name>.json` and a
//! markdown table on stdout.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::servers::{EXTRA_PACKAGES, Venv};
use crate::{cargo, run};

const ROUNDS: usize = 5;

/// Python's `cryptography` Fernet and `hashlib.pbkdf2_hmac`, timed the same way as the Rust
/// side (token-level encrypt/decrypt of a 64-byte credential; one derivation).
const PYTHON_CRYPTO: &str = r#"
import base64, hashlib, json, sys, time
from cryptography.fernet import Fernet
budget = float(sys.argv[1])
salt = b"simpletuner-credential-encryption-v1"
def derive():
    return hashlib.pbkdf2_hmac("sha256", b"benchmark passphrase", salt, 100000, 32)
f = Fernet(base64.urlsafe_b64encode(derive()))
credential = b"c" * 64
token = f.encrypt(credential)
def ops_per_sec(op):
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget:
        for _ in range(256):
            op()
        count += 256
    return count / (time.perf_counter() - start)
enc = ops_per_sec(lambda: f.encrypt(credential))
dec = ops_per_sec(lambda: f.decrypt(token))
times = []
for _ in range(5):
    start = time.perf_counter(); derive(); times.append((time.perf_counter() - start) * 1000)
times.sort()
print(json.dumps({"encrypt_64B": enc, "decrypt_64B": dec, "derive_ms": times[len(times) // 2]}))
"#;

/// Printed for `cargo xtask bench` without a known name.
pub(crate) const USAGE: &str =
    "usage: cargo xtask bench <crypto|cache|aws|chain|vault|config [--backend sqlite|postgres]>

  crypto  credential-crypto beside Python's cryptography (target/bench/credential-crypto.json)
  cache   ttl-cache beside moka, quick_cache, mini-moka and Mutex<lru>
          (target/bench/ttl-cache.json)
  aws     the AWS provider warm through the full chain against moto: lookups/s, and the
          GetSecretValue calls of 1,000,000 lookups in one TTL window
          (target/bench/secrets-aws.json)
  chain   warm SecretsManager lookups (async, blocking; 1 and 2 threads) beside a bare
          ttl-cache get (target/bench/secrets-chain.json)
  vault   lookups/s through env > file > vault with Vault warm (beside an in-memory provider
          in its place) and the HTTP requests of 1,000,000 lookups within one TTL, against
          OpenBao (target/bench/secrets-vault.json)
  config  provider-config: cached get_provider_config beside an uncached database read
          (target/bench/provider-config.json); with --backend postgres, against the
          PostgreSQL server it starts, also the cross-replica invalidation latency (commit on
          replica A to B's cache entry dropped), p50/p99
          (target/bench/provider-config-postgres.json)";

/// The comparisons `cargo xtask bench` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bench {
    Crypto,
    Cache,
    Aws,
    Chain,
    Vault,
    Config,
    ConfigPostgres,
}

impl Bench {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "crypto" => Some(Self::Crypto),
            "cache" => Some(Self::Cache),
            "aws" => Some(Self::Aws),
            "chain" => Some(Self::Chain),
            "vault" => Some(Self::Vault),
            "config" => Some(Self::Config),
            _ => None,
        }
    }
}

pub(crate) fn bench(root: &Path, which: Bench) -> Result<()> {
    match which {
        Bench::Crypto => crypto(root),
        Bench::Cache => cache(root),
        Bench::Aws => aws(root),
        Bench::Chain => chain(root),
        Bench::Vault => vault(root),
        Bench::Config => config(root),
        Bench::ConfigPostgres => config_postgres(root),
    }
}

fn json_of(cmd: &mut Command) -> Result<serde_json::Value> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {shown}"))?;
    if !out.status.success() {
        bail!("{shown} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("output of {shown}"))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn crypto(root: &Path) -> Result<()> {
    run(cargo().args([
        "build",
        "--release",
        "--quiet",
        "--package",
        "credential-crypto",
        "--example",
        "crypto_throughput",
    ]))?;
    let venv = Venv::ensure(root, EXTRA_PACKAGES)?;
    let rust_bin = root.join("target/release/examples/crypto_throughput");
    let budget = "0.5";
    let mut rust_rounds = Vec::new();
    let mut python_rounds = Vec::new();
    for round in 1..=ROUNDS {
        println!("round {round}/{ROUNDS}");
        rust_rounds.push(json_of(Command::new(&rust_bin).arg(budget))?);
        python_rounds.push(json_of(Command::new(venv.python()).args([
            "-c",
            PYTHON_CRYPTO,
            budget,
        ]))?);
    }
    let field = |rounds: &[serde_json::Value], key: &str| -> Vec<f64> {
        rounds.iter().filter_map(|r| r[key].as_f64()).collect()
    };
    let mut table = String::from(
        "| workload | Rust (this crate) | Python cryptography | Rust / Python (median of rounds) |\n|---|---|---|---|\n",
    );
    let mut results = serde_json::Map::new();
    for (key, unit, higher_is_better) in [
        ("encrypt_64B", "ops/s", true),
        ("decrypt_64B", "ops/s", true),
        ("derive_ms", "ms", false),
    ] {
        let rust = field(&rust_rounds, key);
        let python = field(&python_rounds, key);
        let ratios: Vec<f64> = rust
            .iter()
            .zip(&python)
            .map(|(r, p)| if higher_is_better { r / p } else { p / r })
            .collect();
        let (rust_median, python_median, ratio) = (median(rust), median(python), median(ratios));
        table.push_str(&format!(
            "| {key} | {rust_median:.0} {unit} | {python_median:.0} {unit} | {ratio:.1}x{} |\n",
            if higher_is_better { "" } else { " (speed)" }
        ));
        results.insert(
            key.to_owned(),
            serde_json::json!({
                "unit": unit,
                "rust": rust_median,
                "python_cryptography": python_median,
                "speedup_median_of_rounds": ratio,
            }),
        );
    }
    for key in ["encrypt_stored_64B", "decrypt_stored_64B"] {
        let rust = median(field(&rust_rounds, key));
        table.push_str(&format!(
            "| {key} (stored format) | {rust:.0} ops/s | - | - |\n"
        ));
        results.insert(
            key.to_owned(),
            serde_json::json!({"unit": "ops/s", "rust": rust}),
        );
    }
    let out_dir = root.join("target/bench");
    fs::create_dir_all(&out_dir)?;
    let document = serde_json::json!({
        "benchmark": "credential-crypto",
        "rounds": ROUNDS,
        "seconds_per_workload": budget,
        "workloads": results,
        "raw": {"rust": rust_rounds, "python": python_rounds},
    });
    let path = out_dir.join("credential-crypto.json");
    fs::write(&path, serde_json::to_string_pretty(&document)?)?;
    println!("\n{table}\nwritten to {}", path.display());
    Ok(())
}

/// ttl-cache beside moka, quick_cache, mini-moka and `Mutex<lru::LruCache>`: the comparison
/// program interleaves the implementations itself, in one process.
fn cache(root: &Path) -> Result<()> {
    let json = root.join("target/bench/ttl-cache.json");
    run(cargo()
        .args([
            "bench",
            "--package",
            "ttl-cache",
            "--bench",
            "side_by_side",
            "--",
            "--rounds",
            "5",
            "--json",
        ])
        .arg(&json))
}

/// The AWS provider against a moto started for this run (stopped by PID afterwards, also on
/// failure).
fn aws(root: &Path) -> Result<()> {
    let environment = crate::servers::start_one(root, &crate::servers::MOTO)?;
    let json = root.join("target/bench/secrets-aws.json");
    let result = run(cargo()
        .args([
            "bench",
            "--package",
            "integration-tests",
            "--bench",
            "aws",
            "--",
            "--rounds",
            "5",
            "--json",
        ])
        .arg(&json)
        .envs(environment.exports.iter().cloned()));
    drop(environment);
    result
}

/// `SecretsManager` beside a bare ttl-cache get, in one process.
fn chain(root: &Path) -> Result<()> {
    let json = root.join("target/bench/secrets-chain.json");
    run(cargo()
        .args([
            "bench",
            "--package",
            "integration-tests",
            "--bench",
            "chain",
            "--",
            "--rounds",
            "5",
            "--json",
        ])
        .arg(&json))
}

/// The Vault provider through the chain, against the OpenBao test server (started here and
/// stopped afterwards); the program interleaves its comparisons itself, in one process.
fn vault(root: &Path) -> Result<()> {
    run(cargo().args([
        "build",
        "--release",
        "--quiet",
        "--package",
        "secrets",
        "--features",
        "vault",
        "--example",
        "vault_chain_bench",
    ]))?;
    let environment = crate::servers::start_some(root, |s| s.name == "openbao")?;
    let program = root.join("target/release/examples/vault_chain_bench");
    let document = json_of(
        Command::new(&program)
            .arg(ROUNDS.to_string())
            .envs(environment.exports.iter().cloned()),
    )?;
    drop(environment);
    let mut table = String::from(
        "| workload | with Vault (lookups/s) | in-memory provider in its place | Vault / memory (median of rounds) |\n|---|---|---|---|\n",
    );
    for name in ["chain_cached", "chain_uncached"] {
        let w = &document["lookups_per_second"][name];
        table.push_str(&format!(
            "| {name} | {:.0} | {:.0} | {:.2}x |\n",
            w["vault"].as_f64().unwrap_or_default(),
            w["memory_provider_in_its_place"]
                .as_f64()
                .unwrap_or_default(),
            w["vault_over_memory_median_of_rounds"]
                .as_f64()
                .unwrap_or_default(),
        ));
    }
    let requests = &document["requests_for_one_million_lookups_within_one_ttl"];
    table.push_str(&format!(
        "\n1,000,000 lookups within one TTL: {} secret read(s) (target 1), {} HTTP requests in \
         all (token lookup and KV version detection included), {:.2} s; first lookup {:.1} ms\n",
        requests["secret_reads"],
        requests["total_http_requests"],
        requests["seconds"].as_f64().unwrap_or_default(),
        requests["first_lookup_ms"].as_f64().unwrap_or_default(),
    ));
    if requests["secret_reads"] != 1 {
        bail!(
            "1,000,000 lookups within one TTL made {} secret reads, not 1",
            requests["secret_reads"]
        );
    }
    let out_dir = root.join("target/bench");
    fs::create_dir_all(&out_dir)?;
    let path = out_dir.join("secrets-vault.json");
    fs::write(&path, serde_json::to_string_pretty(&document)?)?;
    println!("\n{table}\nwritten to {}", path.display());
    Ok(())
}

/// provider-config: `ConfigStore::get` through the cache beside the same read without it and
/// beside the original's new-connection-per-read, interleaved in one process per run.
fn config(root: &Path) -> Result<()> {
    run(cargo().args([
        "build",
        "--release",
        "--quiet",
        "--package",
        "provider-config",
        "--example",
        "config_bench",
    ]))?;
    let bin = root.join("target/release/examples/config_bench");
    let budget = "0.5";
    let mut runs = Vec::new();
    for round in 1..=ROUNDS {
        println!("run {round}/{ROUNDS}");
        runs.push(json_of(Command::new(&bin).arg(budget))?);
    }
    let field = |path: &[&str]| -> f64 {
        median(
            runs.iter()
                .filter_map(|r| path.iter().try_fold(r, |v, k| v.get(*k))?.as_f64())
                .collect(),
        )
    };
    let mut table = String::from("| read | ops/s | p50 | p99 |\n|---|---|---|---|\n");
    let mut workloads = serde_json::Map::new();
    for (key, label) in [
        ("cached", "get_provider_config, cached"),
        ("uncached", "uncached database read (pooled connection)"),
        (
            "new_connection",
            "original-style read (new connection per read)",
        ),
    ] {
        let (ops, p50, p99) = (
            field(&[key, "ops_per_sec"]),
            field(&[key, "p50_ns"]),
            field(&[key, "p99_ns"]),
        );
        table.push_str(&format!(
            "| {label} | {ops:.0} | {p50:.0} ns | {p99:.0} ns |\n"
        ));
        workloads.insert(
            key.to_owned(),
            serde_json::json!({"ops_per_sec": ops, "p50_ns": p50, "p99_ns": p99}),
        );
    }
    let speedup = field(&["speedup_cached_over_uncached"]);
    let over_original = field(&["speedup_cached_over_new_connection"]);
    let timer = field(&["timer_overhead_ns"]);
    let target = 100.0;
    let document = serde_json::json!({
        "benchmark": "provider-config",
        "runs": ROUNDS,
        "seconds_per_workload": budget,
        "workloads": workloads,
        "speedup_cached_over_uncached": speedup,
        "speedup_cached_over_new_connection": over_original,
        "target_speedup": target,
        "target_met": speedup >= target,
        "timer_overhead_ns": timer,
        "raw": runs,
    });
    let out_dir = root.join("target/bench");
    fs::create_dir_all(&out_dir)?;
    let path = out_dir.join("provider-config.json");
    fs::write(&path, serde_json::to_string_pretty(&document)?)?;
    println!(
        "\n{table}\ncached / uncached: {speedup:.0}x (target {target:.0}x: {}); cached / original-style: {over_original:.0}x\nlatencies include the timer (~{timer:.0} ns per reading)\nwritten to {}",
        if speedup >= target { "met" } else { "NOT met" },
        path.display()
    );
    if speedup < target {
        bail!("the cached read is only {speedup:.0}x the uncached one (target {target:.0}x)");
    }
    Ok(())
}

/// provider-config on PostgreSQL against the server xtask starts (stopped afterwards, also on
/// failure): cached and uncached reads and the cross-replica invalidation latency, measured
/// by one program in one process, interleaved round by round.
fn config_postgres(root: &Path) -> Result<()> {
    run(cargo().args([
        "build",
        "--release",
        "--quiet",
        "--package",
        "provider-config",
        "--features",
        "postgres",
        "--example",
        "config_bench_postgres",
    ]))?;
    let environment = crate::servers::start_one(root, &crate::postgres::POSTGRES)?;
    let url = environment
        .exports
        .iter()
        .find(|(name, _)| name == "SECRETS_TEST_DATABASE_URL")
        .map(|(_, url)| url.clone())
        .context("the PostgreSQL server exported no URL")?;
    let program = root.join("target/release/examples/config_bench_postgres");
    let document = json_of(Command::new(&program).args([url.as_str(), &ROUNDS.to_string(), "0.5"]));
    drop(environment);
    let document = document?;
    let number = |path: &[&str]| -> f64 {
        path.iter()
            .try_fold(&document, |v, k| v.get(*k))
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(f64::NAN)
    };
    let speedup = number(&["speedup_cached_over_uncached"]);
    let p50 = number(&["invalidation_after_commit_us", "p50"]);
    let p99 = number(&["invalidation_after_commit_us", "p99"]);
    let (speedup_target, p99_target_ms) = (100.0, 50.0);
    let mut table = String::from("| workload | ops/s | p50 | p99 |\n|---|---|---|---|\n");
    for (key, label) in [
        ("cached", "get_provider_config, cached"),
        ("uncached", "uncached read (one query, pooled connection)"),
    ] {
        table.push_str(&format!(
            "| {label} | {:.0} | {:.0} ns | {:.0} ns |\n",
            number(&[key, "ops_per_sec"]),
            number(&[key, "p50_ns"]),
            number(&[key, "p99_ns"]),
        ));
    }
    table.push_str(&format!(
        "| invalidation, A's commit to B's entry dropped | - | {:.2} ms | {:.2} ms |\n| invalidation, start of A's update to B's entry dropped | - | {:.2} ms | {:.2} ms |\n",
        p50 / 1000.0,
        p99 / 1000.0,
        number(&["invalidation_from_update_start_us", "p50"]) / 1000.0,
        number(&["invalidation_from_update_start_us", "p99"]) / 1000.0,
    ));
    let out_dir = root.join("target/bench");
    fs::create_dir_all(&out_dir)?;
    let path = out_dir.join("provider-config-postgres.json");
    fs::write(&path, serde_json::to_string_pretty(&document)?)?;
    let speedup_met = speedup >= speedup_target;
    let latency_met = p99 / 1000.0 < p99_target_ms;
    println!(
        "\n{table}\ncached / uncached: {speedup:.0}x (target {speedup_target:.0}x: {}); invalidation p99 {:.2} ms (target < {p99_target_ms:.0} ms: {})\nwritten to {}",
        if speedup_met { "met" } else { "NOT met" },
        p99 / 1000.0,
        if latency_met { "met" } else { "NOT met" },
        path.display()
    );
    if !speedup_met || !latency_met {
        bail!("a PostgreSQL target was missed (see above)");
    }
    Ok(())
}
