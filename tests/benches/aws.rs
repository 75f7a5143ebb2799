//! The AWS provider warm, through the full chain (env > file > aws), against moto's real
//! server: lookups per second, and how many `GetSecretValue` calls 1,000,000 lookups of 3
//! keys make within one TTL window (target: exactly 1), counted on the wire by an SDK
//! interceptor. Run through `cargo xtask bench aws`, which starts moto and writes
//! `target/bench/secrets-aws.json`.
//!
//! Options: `--rounds N` (5), `--ops N` (lookups per measurement, 1_000_000), `--json PATH`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use secrets::aws::sdk::config::interceptors::BeforeTransmitInterceptorContextRef;
use secrets::aws::sdk::config::{ConfigBag, Intercept, RuntimeComponents};
use secrets::aws::{AwsSecretsManagerProvider, AwsSettings};
use secrets::{EnvProvider, EnvSettings, FileProvider, SecretsManager};

const KEYS: [&str; 3] = [
    "BENCH_AWS_HF_TOKEN",
    "BENCH_AWS_REPLICATE_API_TOKEN",
    "BENCH_AWS_WEBHOOK_SECRET",
];

/// Counts `GetSecretValue` requests just before they are sent (each attempt).
#[derive(Debug, Clone, Default)]
struct GetSecretValueCalls(Arc<AtomicU64>);

impl Intercept for GetSecretValueCalls {
    fn name(&self) -> &'static str {
        "bench::GetSecretValueCalls"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), secrets::aws::sdk::error::BoxError> {
        let target = context.request().headers().get("x-amz-target");
        if target.is_some_and(|t| t.ends_with(".GetSecretValue")) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

fn settings(name: &str) -> AwsSettings {
    let endpoint = std::env::var("SECRETS_TEST_AWS_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .expect(
            "SECRETS_TEST_AWS_ENDPOINT is not set: run `cargo xtask bench aws`, which starts moto",
        );
    AwsSettings::new(name)
        .with_region("us-east-1")
        .with_endpoint_url(endpoint)
}

/// A provider for the secret with a call counter.
fn provider(name: &str) -> (Arc<AwsSecretsManagerProvider>, GetSecretValueCalls) {
    let calls = GetSecretValueCalls::default();
    let provider = AwsSecretsManagerProvider::builder(settings(name))
        .interceptor(calls.clone())
        .build()
        .unwrap();
    (Arc::new(provider), calls)
}

/// env > file (no file: skipped, as for most users) > aws, as `Config::from_env` builds it.
fn full_chain(
    aws: Arc<AwsSecretsManagerProvider>,
    dir: &std::path::Path,
    cache: bool,
) -> SecretsManager {
    let mut builder = SecretsManager::builder()
        .provider(Arc::new(EnvProvider::new(EnvSettings::default())))
        .provider(Arc::new(FileProvider::new(dir.join("secrets.json"))))
        .provider(aws);
    if !cache {
        builder = builder.cache_ttl(Duration::ZERO);
    }
    builder.build()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Lookups per second of `ops` lookups cycling over the 3 keys.
async fn async_rate(manager: &SecretsManager, ops: usize) -> f64 {
    let started = Instant::now();
    for i in 0..ops {
        let found = manager.get(KEYS[i % 3]).await.unwrap();
        black_box(found.expect("the key is in the secret"));
    }
    ops as f64 / started.elapsed().as_secs_f64()
}

fn blocking_rate(manager: &secrets::blocking::SecretsManager, ops: usize) -> f64 {
    let started = Instant::now();
    for i in 0..ops {
        let found = manager.get(KEYS[i % 3]).unwrap();
        black_box(found.expect("the key is in the secret"));
    }
    ops as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let rounds: usize = arg("--rounds").and_then(|r| r.parse().ok()).unwrap_or(5);
    let ops: usize = arg("--ops")
        .and_then(|r| r.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let name = format!("bench/secrets-aws-{}", std::process::id());
    let object = serde_json::json!({
        KEYS[0]: "hf_bench_value_0000000000000000000000",
        KEYS[1]: "r8_bench_value_0000000000000000000000",
        KEYS[2]: "whsec_bench_value_000000000000000000",
    });

    // The secret, and the call count of 1,000,000 lookups within one TTL window.
    let (aws, calls) = provider(&name);
    let counts = runtime.block_on(async {
        aws.client()
            .await
            .unwrap()
            .create_secret()
            .name(&name)
            .secret_string(object.to_string())
            .send()
            .await
            .expect("create the benchmark secret in moto");
        let started = Instant::now();
        // Through the full chain with the manager's cache (the default configuration).
        let chain = full_chain(Arc::clone(&aws), dir.path(), true);
        for i in 0..ops {
            black_box(chain.get(KEYS[i % 3]).await.unwrap());
        }
        let through_chain = calls.0.load(Ordering::SeqCst);
        // Straight to the provider on every lookup (the manager's cache off): the provider's
        // own copy answers.
        let (direct, direct_calls) = provider(&name);
        let only_aws = SecretsManager::builder()
            .provider(direct.clone())
            .cache_ttl(Duration::ZERO)
            .build();
        for i in 0..ops {
            black_box(only_aws.get(KEYS[i % 3]).await.unwrap());
        }
        let elapsed = started.elapsed();
        assert!(
            elapsed < direct.settings().ttl,
            "the lookups outlasted one TTL window"
        );
        (
            through_chain,
            direct_calls.0.load(Ordering::SeqCst),
            direct.fetches(),
            elapsed,
        )
    });
    let (chain_calls, provider_calls, provider_fetches, window) = counts;
    println!(
        "{ops} lookups of 3 keys within one TTL window ({window:.1?}): GetSecretValue calls \
         through the chain: {chain_calls}; with the manager's cache off (every lookup asks the \
         provider): {provider_calls} (provider fetches: {provider_fetches}) (target: exactly 1)"
    );

    // Warm lookups per second, interleaved round by round.
    let (aws, _) = provider(&name);
    let cached = Arc::new(full_chain(Arc::clone(&aws), dir.path(), true));
    let walking = full_chain(Arc::clone(&aws), dir.path(), false);
    let blocking = secrets::blocking::SecretsManager::new(Arc::clone(&cached)).unwrap();
    runtime.block_on(async {
        for key in KEYS {
            cached.get(key).await.unwrap().unwrap();
        }
    });
    let mut rates: [Vec<f64>; 3] = Default::default();
    for round in 1..=rounds {
        eprintln!("round {round}/{rounds}");
        rates[0].push(runtime.block_on(async_rate(&cached, ops)));
        rates[1].push(blocking_rate(&blocking, ops));
        rates[2].push(runtime.block_on(async_rate(&walking, ops / 10)));
    }
    let names = [
        "full chain, async, manager cache warm",
        "full chain, blocking, manager cache warm",
        "full chain walk, async, manager cache off (env miss, file skipped, aws copy)",
    ];
    let mut table = String::from("| workload | lookups/s (median of rounds) |\n|---|---|\n");
    let mut workloads = Vec::new();
    for (name, samples) in names.iter().zip(&rates) {
        let rate = median(samples.clone());
        table.push_str(&format!("| {name} | {:.2}M |\n", rate / 1e6));
        workloads
            .push(serde_json::json!({"workload": name, "lookups_per_sec": rate, "raw": samples}));
    }
    table.push_str(&format!(
        "| GetSecretValue calls for {ops} lookups of 3 keys in one TTL window | {chain_calls} through the chain, {provider_calls} with the manager's cache off (target: 1) |\n"
    ));
    println!("{table}");
    let met = chain_calls == 1 && provider_calls == 1;
    println!(
        "target (exactly 1 call): {}",
        if met { "met" } else { "NOT met" }
    );
    if let Some(path) = arg("--json") {
        let document = serde_json::json!({
            "benchmark": "secrets-aws",
            "server": "moto (loopback)",
            "rounds": rounds,
            "lookups": ops,
            "get_secret_value_calls": {
                "through_chain_with_manager_cache": chain_calls,
                "manager_cache_off": provider_calls,
                "provider_fetches_manager_cache_off": provider_fetches,
                "window_secs": window.as_secs_f64(),
                "target": 1,
            },
            "workloads": workloads,
        });
        if let Some(dir) = std::path::Path::new(&path).parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&path, serde_json::to_string_pretty(&document).unwrap()).unwrap();
        println!("written to {path}");
    }
    if !met {
        std::process::exit(1);
    }
}
