//! Load: two threads of lookups through the full chain (env, file, AWS on moto, Vault on
//! OpenBao, all warm) with a write every 100 ms, and two threads of provider-config reads on
//! PostgreSQL while a second store (another replica) writes every 100 ms. Zero errors, memory
//! flat (RSS from /proc/self/status, start vs end, bounded), lookups per second reported.
//!
//! 2 s each under `cargo xtask test`, 30 s each under `cargo xtask reliability load` (built
//! optimised).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use integration_tests::{moto, reliability, vault};
use secrets::aws::AwsSecretsManagerProvider;
use secrets::config::{ConfigCaches, ConfigStore, DatabaseUrl, StoreLocation};
use secrets::crypto::CredentialCipher;
use secrets::vault::{VaultProvider, VaultSettings};
use secrets::{EnvProvider, EnvSettings, FileProvider, Secret, SecretsManager};
use serde_json::json;

/// Allowed RSS growth between the warm start and the end.
const RSS_GROWTH_BOUND_KB: u64 = 32 * 1024;
const WRITE_EVERY: Duration = Duration::from_millis(100);
const THREADS: usize = 2;

fn duration() -> Duration {
    reliability::scale(Duration::from_secs(2), Duration::from_secs(30))
}

/// Resident set size of this process, in kB.
fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

fn assert_flat(what: &str, start: u64, end: u64) {
    assert!(
        end <= start + RSS_GROWTH_BOUND_KB,
        "{what}: RSS grew from {start} kB to {end} kB (bound +{RSS_GROWTH_BOUND_KB} kB)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_through_the_full_chain_with_writes() {
    // AWS: a secret of the test's own on moto.
    let secret = moto::unique("load");
    moto::create_secret(&secret, &json!({"LOAD_AWS": "aws-value"}).to_string()).await;
    let aws = AwsSecretsManagerProvider::new(moto::settings(&secret)).unwrap();
    // Vault: a path of the test's own on the shared OpenBao.
    let admin = vault::shared();
    let path = vault::unique("load");
    admin.put_v2("secret", &path, json!({"LOAD_VAULT": "0"}));
    let vault = VaultProvider::new(
        VaultSettings::new(admin.addr.as_str())
            .token(admin.root_token.as_str())
            .path(path.as_str()),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.json");
    std::fs::write(&file, r#"{"LOAD_FILE": "0"}"#).unwrap();
    let manager = Arc::new(
        SecretsManager::builder()
            .provider(Arc::new(EnvProvider::new(EnvSettings::default())))
            .provider(Arc::new(FileProvider::new(&file)))
            .provider(Arc::new(aws))
            .provider(Arc::new(vault))
            .build(),
    );
    // (key, provider expected): AWS_REGION is exported by `cargo xtask test`.
    let keys = [
        ("AWS_REGION", "env"),
        ("LOAD_FILE", "file"),
        ("LOAD_AWS", "aws"),
        ("LOAD_VAULT", "vault"),
    ];
    for (key, provider) in keys {
        let found = manager.get_with_source(key).await.unwrap();
        assert_eq!(
            found.map(|r| r.provider).as_deref(),
            Some(provider),
            "{key}"
        );
    }

    let rss_start = rss_kb();
    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicU64::new(0));
    // Readers on threads of their own (lookups served from the cache never yield, so as
    // runtime tasks they would starve the writer); their I/O runs on the runtime.
    let runtime = tokio::runtime::Handle::current();
    let mut readers = Vec::new();
    for thread in 0..THREADS {
        let (manager, stop, lookups) = (manager.clone(), stop.clone(), lookups.clone());
        let runtime = runtime.clone();
        readers.push(std::thread::spawn(move || {
            let mut i = thread;
            while !stop.load(Ordering::Relaxed) {
                let (key, provider) = keys[i % keys.len()];
                i += 1;
                let found = runtime
                    .block_on(manager.get_with_source(key))
                    .unwrap_or_else(|e| panic!("lookup of {key} failed under load: {e}"))
                    .unwrap_or_else(|| panic!("{key} not found under load"));
                assert_eq!(found.provider, provider, "{key}");
                if key != "AWS_REGION" && key != "LOAD_AWS" {
                    found
                        .value
                        .expose()
                        .parse::<u64>()
                        .unwrap_or_else(|_| panic!("{key}: not a written value"));
                }
                lookups.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    let mut writes = 0u64;
    while started.elapsed() < duration() {
        tokio::time::sleep(WRITE_EVERY).await;
        writes += 1;
        let (provider, key) = if writes.is_multiple_of(2) {
            ("file", "LOAD_FILE")
        } else {
            ("vault", "LOAD_VAULT")
        };
        manager
            .set_in(provider, key, Secret::new(writes.to_string()))
            .await
            .unwrap_or_else(|e| panic!("write to {provider} failed under load: {e}"));
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().expect("a reader panicked");
    }
    let elapsed = started.elapsed();
    // The last writes are seen.
    let last_vault = if writes % 2 == 1 { writes } else { writes - 1 };
    assert_eq!(
        manager.get("LOAD_VAULT").await.unwrap().unwrap().expose(),
        last_vault.to_string()
    );
    let rss_end = rss_kb();
    assert_flat("chain", rss_start, rss_end);
    let total = lookups.load(Ordering::Relaxed);
    assert!(total > 0);
    let rate = total as f64 / elapsed.as_secs_f64();
    eprintln!(
        "chain: {total} lookups, {writes} writes in {elapsed:?}: {rate:.0}/s; RSS {rss_start} -> {rss_end} kB"
    );
    reliability::report(
        "load-chain",
        "Lookups through env, file, AWS (moto) and Vault (OpenBao), 2 threads, a write every 100 ms",
        &format!(
            "{total} lookups in {:.1} s ({rate:.0}/s), {writes} writes, 0 errors; RSS {rss_start} kB -> {rss_end} kB (bound +{} MB)",
            elapsed.as_secs_f64(),
            RSS_GROWTH_BOUND_KB / 1024
        ),
    );
}

fn replica(
    location: &StoreLocation,
    cipher: &CredentialCipher,
) -> (ConfigStore, Arc<ConfigCaches>) {
    let caches = Arc::new(ConfigCaches::new());
    let store = ConfigStore::builder_at(location.clone())
        .caches(Arc::clone(&caches))
        .cipher(cipher.clone())
        .open()
        .unwrap();
    (store, caches)
}

#[test]
fn provider_config_reads_on_postgres_with_writes_on_another_replica() {
    let db = support::Database::create("load");
    let url = db.url();
    let location = StoreLocation::Postgres(DatabaseUrl::parse(&url).unwrap());
    let cipher = CredentialCipher::from_passphrase("load test key").unwrap();
    let (reader, _) = replica(&location, &cipher);
    let (writer, _) = replica(&location, &cipher);
    let object = |v: u64| json!({"v": v}).as_object().unwrap().clone();
    writer.save("replicate", object(0)).unwrap();
    assert_eq!(reader.get("replicate").unwrap()["v"], 0);

    let rss_start = rss_kb();
    let stop = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    let started = Instant::now();
    let mut writes = 0u64;
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                let mut last = 0;
                while !stop.load(Ordering::Relaxed) {
                    let v = reader
                        .get("replicate")
                        .unwrap_or_else(|e| panic!("read failed under load: {e}"))["v"]
                        .as_u64()
                        .expect("a written value");
                    assert!(v >= last, "went back from {last} to {v}");
                    last = v;
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        while started.elapsed() < duration() {
            std::thread::sleep(WRITE_EVERY);
            writes += 1;
            writer
                .update("replicate", object(writes))
                .unwrap_or_else(|e| panic!("write failed under load: {e}"));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = started.elapsed();
    // The other replica's last write reaches the reader within a second.
    let deadline = Instant::now() + Duration::from_secs(1);
    while reader.get("replicate").unwrap()["v"] != writes {
        assert!(
            Instant::now() < deadline,
            "the last write never reached the reader"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let rss_end = rss_kb();
    assert_flat("provider-config", rss_start, rss_end);
    drop((reader, writer, db));
    let total = reads.load(Ordering::Relaxed);
    let rate = total as f64 / elapsed.as_secs_f64();
    eprintln!(
        "provider-config: {total} reads, {writes} writes in {elapsed:?}: {rate:.0}/s; RSS {rss_start} -> {rss_end} kB"
    );
    reliability::report(
        "load-provider-config",
        "provider-config reads on PostgreSQL, 2 threads, a write every 100 ms on another replica",
        &format!(
            "{total} reads in {:.1} s ({rate:.0}/s), {writes} writes, 0 errors; RSS {rss_start} kB -> {rss_end} kB (bound +{} MB)",
            elapsed.as_secs_f64(),
            RSS_GROWTH_BOUND_KB / 1024
        ),
    );
}
