//! The measurement behind `cargo xtask bench vault` (run it through xtask, which starts
//! OpenBao and passes `SECRETS_TEST_VAULT_ADDR` and `SECRETS_TEST_VAULT_ROOT_TOKEN`).
//!
//! Prints one JSON document: lookups per second through the chain env > file > vault with
//! Vault warm, beside the same chain with an in-memory provider in Vault's place (rounds
//! interleaved, medians and the median of per-round ratios); and the HTTP requests that
//! 1,000,000 lookups within one TTL cost, from a cold start.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrets::vault::{VaultProvider, VaultSettings};
use secrets::{
    EnvProvider, EnvSettings, FileProvider, MemoryProvider, SecretProvider, SecretsManager,
};

const KEY: &str = "BENCH_VAULT_ONLY_KEY";
const LOOKUPS_PER_TTL: u64 = 1_000_000;

fn var(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("{name} is not set; run `cargo xtask bench vault`"))
}

/// env > file (absent) > `last`, with the manager's value cache on or off.
fn chain(last: Arc<dyn SecretProvider>, file: &std::path::Path, cached: bool) -> SecretsManager {
    let mut builder = SecretsManager::builder()
        .provider(Arc::new(EnvProvider::new(EnvSettings::default())))
        .provider(Arc::new(FileProvider::new(file)))
        .provider(last);
    if !cached {
        builder = builder.cache_ttl(Duration::ZERO);
    }
    builder.build()
}

/// Lookups per second over `budget`.
async fn rate(manager: &SecretsManager, budget: Duration) -> f64 {
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < budget {
        for _ in 0..256 {
            black_box(manager.get(KEY).await.unwrap().unwrap());
        }
        count += 256;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let addr = var("SECRETS_TEST_VAULT_ADDR");
    let root = var("SECRETS_TEST_VAULT_ROOT_TOKEN");
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let budget = Duration::from_millis(400);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("vault-bench-{}", std::process::id()));
    let file = dir.join("secrets.json"); // never created: the file provider misses
    let path = format!("bench-{}", std::process::id());
    let settings = VaultSettings::new(addr).token(root).path(path);

    runtime.block_on(async {
        // The secret, written through the provider itself.
        let writer = VaultProvider::new(settings.clone()).unwrap();
        writer.set(KEY, &"bench-value".into()).await.unwrap();

        // Requests for 1,000,000 lookups within one TTL, from a cold start.
        let vault = Arc::new(VaultProvider::new(settings.clone()).unwrap());
        let manager = chain(vault.clone(), &file, true);
        let cold = Instant::now();
        manager.get(KEY).await.unwrap().unwrap();
        let first_lookup_ms = cold.elapsed().as_secs_f64() * 1000.0;
        let started = Instant::now();
        for _ in 1..LOOKUPS_PER_TTL {
            black_box(manager.get(KEY).await.unwrap().unwrap());
        }
        let million_secs = started.elapsed().as_secs_f64();
        let stats = vault.stats();
        assert!(
            million_secs < 300.0,
            "the lookups must fit in one TTL to count"
        );

        // Lookups per second, Vault warm, beside an in-memory provider in its place.
        let memory: Arc<dyn SecretProvider> =
            Arc::new(MemoryProvider::new("memory").with(KEY, "bench-value"));
        let vault_warm = Arc::new(VaultProvider::new(settings.clone()).unwrap());
        vault_warm.get(KEY).await.unwrap().unwrap();
        let workloads: [(&str, SecretsManager, SecretsManager); 2] = [
            (
                "chain_cached",
                chain(vault_warm.clone(), &file, true),
                chain(memory.clone(), &file, true),
            ),
            (
                "chain_uncached",
                chain(vault_warm.clone(), &file, false),
                chain(memory.clone(), &file, false),
            ),
        ];
        let mut results = serde_json::Map::new();
        for (name, with_vault, with_memory) in &workloads {
            let (mut v, mut m, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..rounds {
                let a = rate(with_vault, budget).await;
                let b = rate(with_memory, budget).await;
                v.push(a);
                m.push(b);
                ratios.push(a / b);
            }
            results.insert(
                (*name).to_owned(),
                serde_json::json!({
                    "unit": "lookups/s",
                    "vault": median(v.clone()),
                    "memory_provider_in_its_place": median(m.clone()),
                    "vault_over_memory_median_of_rounds": median(ratios),
                    "rounds_vault": v,
                    "rounds_memory": m,
                }),
            );
        }
        let vault_reads_during_rate = vault_warm.stats().secret_reads;
        let document = serde_json::json!({
            "benchmark": "secrets-vault",
            "rounds": rounds,
            "seconds_per_measurement": budget.as_secs_f64(),
            "lookups_per_second": results,
            "requests_for_one_million_lookups_within_one_ttl": {
                "lookups": LOOKUPS_PER_TTL,
                "seconds": million_secs,
                "first_lookup_ms": first_lookup_ms,
                "secret_reads": stats.secret_reads,
                "token_lookups": stats.token_lookups,
                "mount_lookups": stats.mount_lookups,
                "logins": stats.logins,
                "renewals": stats.renewals,
                "total_http_requests": stats.requests(),
                "target_secret_reads": 1,
            },
            "secret_reads_during_the_rate_measurements": vault_reads_during_rate,
        });
        println!("{document}");
    });
}
