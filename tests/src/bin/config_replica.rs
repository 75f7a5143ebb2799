//! One "server replica" for the multi-process PostgreSQL tests: a `ConfigStore` with caches
//! of its own (and its listener) and an `AuditTrail`, on the database of
//! `REPLICA_DATABASE_URL` (audit key `REPLICA_AUDIT_KEY`), driven by one command per line on
//! stdin, answering one line each on stdout:
//!
//! - `get PROVIDER`: the configuration as JSON (through the cache);
//! - `cached PROVIDER`: `yes` or `no`;
//! - `update PROVIDER JSON`: merges, `ok`;
//! - `wait-uncached PROVIDER MS`: `gone MICROS` once the cached entry is dropped, or `still`;
//! - `append N TAG`: appends N audit rows, `ok`.
//!
//! It prints `ready` once the store listens, and exits at the end of stdin.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrets::config::caches::provider_config_key;
use secrets::config::{AuditEvent, AuditKey, AuditTrail, ConfigCaches, ConfigStore, DatabaseUrl};

fn main() {
    let url =
        DatabaseUrl::parse(&std::env::var("REPLICA_DATABASE_URL").expect("REPLICA_DATABASE_URL"))
            .expect("a PostgreSQL URL");
    let key = AuditKey::from_bytes(
        std::env::var("REPLICA_AUDIT_KEY")
            .expect("REPLICA_AUDIT_KEY")
            .into_bytes(),
    )
    .expect("an audit key");
    let caches = Arc::new(ConfigCaches::new());
    let store = ConfigStore::builder_at(url.clone())
        .caches(Arc::clone(&caches))
        .open()
        .expect("opening the store");
    let trail = AuditTrail::open_at(&url.into(), key).expect("opening the audit trail");
    let mut out = std::io::stdout().lock();
    let ready = store.listener_status().is_some_and(|s| s.listening);
    writeln!(out, "{}", if ready { "ready" } else { "not listening" }).unwrap();
    out.flush().unwrap();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let mut words = line.splitn(3, ' ');
        let answer = match (words.next(), words.next(), words.next()) {
            (Some("get"), Some(provider), None) => match store.get(provider) {
                Ok(config) => serde_json::to_string(&config).unwrap(),
                Err(e) => format!("error {e}"),
            },
            (Some("cached"), Some(provider), None) => {
                let cached = caches
                    .provider_config()
                    .contains_key(&provider_config_key(provider));
                (if cached { "yes" } else { "no" }).to_owned()
            }
            (Some("update"), Some(provider), Some(json)) => {
                let updates = serde_json::from_str(json).expect("a JSON object");
                match store.update(provider, updates) {
                    Ok(_) => "ok".to_owned(),
                    Err(e) => format!("error {e}"),
                }
            }
            (Some("wait-uncached"), Some(provider), Some(ms)) => {
                let limit = Duration::from_millis(ms.parse().expect("milliseconds"));
                let key = provider_config_key(provider);
                let start = Instant::now();
                loop {
                    if !caches.provider_config().contains_key(&key) {
                        break format!("gone {}", start.elapsed().as_micros());
                    }
                    if start.elapsed() > limit {
                        break "still".to_owned();
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            (Some("append"), Some(n), Some(tag)) => {
                let n: usize = n.parse().expect("a count");
                let result = (0..n).try_for_each(|i| {
                    trail
                        .append(&AuditEvent::new(
                            "provider.configured",
                            format!("{tag}/{i}"),
                        ))
                        .map(|_| ())
                });
                match result {
                    Ok(()) => "ok".to_owned(),
                    Err(e) => format!("error {e}"),
                }
            }
            _ => format!("error unknown command {line:?}"),
        };
        writeln!(out, "{answer}").unwrap();
        out.flush().unwrap();
    }
}
