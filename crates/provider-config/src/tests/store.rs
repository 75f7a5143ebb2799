//! The configuration store: rows, cache, invalidation, concurrency, files.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::{Fixture, Kind, both, cipher, object, params};
use crate::caches::provider_config_key;
use crate::{
    CacheInvalidator, ConfigCaches, ConfigStore, CostAction, CostLimit, CostPeriod, Invalidation,
    StoreError,
};

fn missing_is_empty_and_rows_round_trip(kind: Kind) {
    let f = Fixture::new(kind);
    assert!(f.store.get("replicate").unwrap().is_empty());
    assert!(f.store.list().unwrap().is_empty());
    f.store
        .save(
            "replicate",
            object(json!({"a": 1, "nested": {"b": [1, 2]}})),
        )
        .unwrap();
    f.store.save("modal", object(json!({}))).unwrap();
    assert_eq!(
        *f.store.get("replicate").unwrap(),
        object(json!({"a": 1, "nested": {"b": [1, 2]}}))
    );
    assert_eq!(f.store.list().unwrap(), ["modal", "replicate"]);
    // save replaces, update merges shallowly.
    f.store.save("replicate", object(json!({"c": 3}))).unwrap();
    let merged = f
        .store
        .update("replicate", object(json!({"d": 4, "c": 5})))
        .unwrap();
    assert_eq!(*merged, object(json!({"c": 5, "d": 4})));
    assert_eq!(*f.store.get("replicate").unwrap(), *merged);
    assert!(f.store.delete("replicate").unwrap());
    assert!(!f.store.delete("replicate").unwrap());
    assert!(f.store.get("replicate").unwrap().is_empty());
    // The row is the original's: provider, JSON text, UTC ISO-8601 updated_at.
    let row = f.raw().rows(
        "SELECT config, updated_at FROM provider_config WHERE provider = 'modal'",
        &[],
    );
    let (config, updated_at) = (row[0][0].clone().unwrap(), row[0][1].clone().unwrap());
    assert_eq!(config, "{}");
    assert!(updated_at.ends_with("+00:00"), "{updated_at}");
    crate::Timestamp::parse(&updated_at).unwrap();
}

fn within_one_ttl_the_database_is_read_once_per_provider(kind: Kind) {
    let f = Fixture::new(kind);
    f.store.save("replicate", object(json!({"k": 1}))).unwrap();
    f.store.save("modal", object(json!({"k": 2}))).unwrap();
    assert_eq!(f.store.database_reads(), 0);
    // 8 threads, 100 reads each, two providers: one database read per provider.
    std::thread::scope(|s| {
        for t in 0..8 {
            let store = &f.store;
            s.spawn(move || {
                for i in 0..100 {
                    let provider = if (t + i) % 2 == 0 {
                        "replicate"
                    } else {
                        "modal"
                    };
                    assert!(store.get(provider).unwrap().contains_key("k"));
                }
            });
        }
    });
    assert_eq!(f.store.database_reads(), 2);
    // Just before the TTL ends: still cached.
    f.clock.advance(Duration::from_secs(299));
    f.store.get("replicate").unwrap();
    assert_eq!(f.store.database_reads(), 2);
    // After it: read again, once.
    f.clock.advance(Duration::from_secs(2));
    f.store.get("replicate").unwrap();
    f.store.get("replicate").unwrap();
    assert_eq!(f.store.database_reads(), 3);
    assert_eq!(
        f.caches
            .provider_config()
            .ttl_remaining(&provider_config_key("replicate")),
        Some(Duration::from_secs(300))
    );
}

fn a_write_is_visible_on_the_next_read_in_the_same_process(kind: Kind) {
    let f = Fixture::new(kind);
    f.store.save("replicate", object(json!({"v": 1}))).unwrap();
    assert_eq!(f.store.get("replicate").unwrap()["v"], 1);
    for (n, write) in [
        &(|s: &ConfigStore| s.save("replicate", object(json!({"v": 2}))))
            as &dyn Fn(&ConfigStore) -> Result<(), StoreError>,
        &|s| s.update("replicate", object(json!({"v": 3}))).map(|_| ()),
        &|s| s.set_cost_limit("replicate", CostLimit::default()),
    ]
    .into_iter()
    .enumerate()
    {
        write(&f.store).unwrap();
        let seen = f.store.get("replicate").unwrap();
        match n {
            0 => assert_eq!(seen["v"], 2),
            1 => assert_eq!(seen["v"], 3),
            _ => assert_eq!(seen["cost_limit_enabled"], false),
        }
    }
    f.store.delete("replicate").unwrap();
    assert!(f.store.get("replicate").unwrap().is_empty());
    // Every read after a write went to the database; the others hit the cache.
    let reads = f.store.database_reads();
    f.store.get("replicate").unwrap();
    assert_eq!(f.store.database_reads(), reads);
}

fn eight_threads_updating_different_keys_of_one_provider_lose_nothing(kind: Kind) {
    let f = Fixture::new(kind);
    f.store
        .save("replicate", object(json!({"base": true})))
        .unwrap();
    std::thread::scope(|s| {
        for t in 0..8 {
            let store = &f.store;
            s.spawn(move || {
                for i in 0..25 {
                    let mut update = serde_json::Map::new();
                    update.insert(format!("thread_{t}_{i}"), json!(i));
                    update.insert(format!("thread_{t}"), json!(i));
                    store.update("replicate", update).unwrap();
                }
            });
        }
    });
    let config = f.store.get_uncached("replicate").unwrap();
    assert_eq!(config.len(), 1 + 8 + 8 * 25);
    for t in 0..8 {
        assert_eq!(config[&format!("thread_{t}")], 24);
        for i in 0..25 {
            assert_eq!(config[&format!("thread_{t}_{i}")], i);
        }
    }
    // Every update was audited, and the chain stayed one chain.
    let report = f.trail.verify().unwrap();
    assert!(report.valid, "{report:?}");
    assert_eq!(report.entries_checked, 1 + 8 * 25);
}

#[cfg(unix)]
#[test]
fn database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let f = Fixture::new(Kind::Sqlite);
    f.store.save("replicate", object(json!({"k": 1}))).unwrap();
    // A connection is open (pooled), so the write-ahead log and shared memory exist.
    let db = f.jobs_db();
    assert_eq!(mode(db.parent().unwrap()), 0o700);
    for path in std::iter::once(db.clone()).chain(crate::sqlite::companion_paths(&db)) {
        assert!(path.exists(), "{}", path.display());
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    for path in std::iter::once(f.audit_db()).chain(crate::sqlite::companion_paths(&f.audit_db())) {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    // The original's pragmas.
    let conn = super::raw(&f.jobs_db());
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
}

fn a_row_holding_invalid_json_is_an_error_naming_the_provider(kind: Kind) {
    let f = Fixture::new(kind);
    f.raw()
        .execute("INSERT INTO provider_config (provider, config, updated_at) VALUES ('modal', '{broken', 'x')", &[]);
    let e = f.store.get("modal").unwrap_err();
    assert!(matches!(e, StoreError::InvalidStoredConfig { .. }));
    assert!(e.to_string().contains("`modal`"), "{e}");
    // An update does not silently replace it (the original merged into `{}`)...
    assert!(f.store.update("modal", object(json!({"a": 1}))).is_err());
    let stored = f.raw().string(
        "SELECT config FROM provider_config WHERE provider = 'modal'",
        &[],
    );
    assert_eq!(stored, "{broken");
    // ...a save fixes it, and errors are not cached.
    f.store.save("modal", object(json!({"a": 1}))).unwrap();
    assert_eq!(f.store.get("modal").unwrap()["a"], 1);
}

fn bad_values_are_refused_before_anything_is_written(kind: Kind) {
    let f = Fixture::new(kind);
    f.store
        .save("replicate", object(json!({"keep": 1})))
        .unwrap();
    for bad in [
        json!({"cost_limit_amount": -5}),
        json!({"cost_limit_period": "hourly"}),
        json!({"hardware_info": {"gpu": {"cost_per_second": -1}}}),
        json!({"webhook_allowed_ips": ["SENTINEL-not-an-ip"]}),
    ] {
        let e = f
            .store
            .update("replicate", object(bad.clone()))
            .unwrap_err();
        assert!(e.is_invalid_input(), "{e}");
        assert!(!e.to_string().contains("SENTINEL"), "{e}");
        assert!(f.store.save("replicate", object(bad)).is_err());
    }
    assert_eq!(
        *f.store.get_uncached("replicate").unwrap(),
        object(json!({"keep": 1}))
    );
    assert!(f.store.save("", object(json!({}))).is_err());
    let e = f.store.set_cost_limit(
        "replicate",
        CostLimit {
            amount: -1.0,
            ..CostLimit::default()
        },
    );
    assert!(e.is_err());
}

fn cost_limits_and_webhooks_have_the_originals_defaults(kind: Kind) {
    let f = Fixture::new(kind);
    assert_eq!(
        f.store.cost_limit("replicate").unwrap(),
        CostLimit::default()
    );
    let webhook = f.store.webhook_config("replicate").unwrap();
    assert!(webhook.require_signature && webhook.allowed_ips.is_empty());
    assert!(webhook.url.is_none() && webhook.secret.is_none());
    let limit = CostLimit {
        enabled: true,
        amount: 99.5,
        period: CostPeriod::Monthly,
        action: CostAction::Block,
    };
    f.store.set_cost_limit("replicate", limit).unwrap();
    assert_eq!(f.store.cost_limit("replicate").unwrap(), limit);
    // Stored as the original's flat keys.
    assert_eq!(
        f.store.get("replicate").unwrap()["cost_limit_period"],
        "monthly"
    );
}

fn the_webhook_secret_is_stored_encrypted_and_plaintext_rows_still_read(kind: Kind) {
    let f = Fixture::new(kind);
    let sentinel = "SENTINEL-webhook-3f9a1c";
    f.store
        .update(
            "replicate",
            object(json!({"webhook_url": "https://h.invalid", "webhook_secret": sentinel})),
        )
        .unwrap();
    let stored = f.store.get("replicate").unwrap()["webhook_secret"].clone();
    assert!(stored.as_str().unwrap().starts_with("Z0FBQUFB"), "{stored}");
    let webhook = f.store.webhook_config("replicate").unwrap();
    assert_eq!(webhook.secret.unwrap().expose(), sentinel);
    assert!(!format!("{:?}", f.store.get("replicate").unwrap()).contains("Z0FBQUFB"));
    // Rewriting the configuration as read keeps the ciphertext (no double encryption).
    let config = f.store.get("replicate").unwrap().into_map();
    f.store.save("replicate", config).unwrap();
    assert_eq!(f.store.get("replicate").unwrap()["webhook_secret"], stored);
    assert!(f.db.holding(sentinel).is_empty());
    // A row written by the original, in plaintext, reads as plaintext.
    f.raw().execute(
        "INSERT INTO provider_config (provider, config, updated_at)
             VALUES ('modal', '{\"webhook_secret\": \"legacy-plain\"}', 'x')",
        &[],
    );
    let webhook = f.store.webhook_config("modal").unwrap();
    assert_eq!(webhook.secret.unwrap().expose(), "legacy-plain");
    // A value encrypted under a key we do not have is an error, not plaintext.
    let other = credential_crypto::CredentialCipher::from_passphrase("other").unwrap();
    f.raw().execute(
        "UPDATE provider_config SET config = ?1 WHERE provider = 'modal'",
        params![json!({"webhook_secret": other.encrypt("x")}).to_string()],
    );
    f.store
        .caches()
        .invalidate(&Invalidation::Provider("modal".into()));
    assert!(f.store.webhook_config("modal").unwrap_err().is_crypto());
    // Without a cipher, writing a credential is refused rather than stored in plaintext.
    let keyless = ConfigStore::builder_at(f.db.jobs()).open().unwrap();
    assert!(
        keyless
            .update("x", object(json!({"webhook_secret": "s"})))
            .is_err()
    );
    keyless.update("x", object(json!({"other": "s"}))).unwrap();
    let _ = cipher();
}

/// Records invalidations and forwards them to several processes' caches: the shape of a
/// cross-process broadcaster.
#[derive(Debug, Default)]
struct Broadcaster {
    seen: Mutex<Vec<Invalidation>>,
    subscribers: Mutex<Vec<Arc<ConfigCaches>>>,
}

impl CacheInvalidator for Broadcaster {
    fn invalidate(&self, what: &Invalidation) {
        self.seen.lock().unwrap().push(what.clone());
        for caches in self.subscribers.lock().unwrap().iter() {
            caches.invalidate(what);
        }
    }
}

#[test]
fn invalidation_goes_through_the_pluggable_invalidator() {
    let f = Fixture::new(Kind::Sqlite);
    let broadcaster = Arc::new(Broadcaster::default());
    // Two "processes": separate caches over one database.
    let caches_a = Arc::new(ConfigCaches::new());
    let caches_b = Arc::new(ConfigCaches::new());
    broadcaster
        .subscribers
        .lock()
        .unwrap()
        .extend([caches_a.clone(), caches_b.clone()]);
    let open = |caches: &Arc<ConfigCaches>| {
        ConfigStore::builder(f.jobs_db())
            .caches(caches.clone())
            .invalidator(broadcaster.clone())
            .open()
            .unwrap()
    };
    let (a, b) = (open(&caches_a), open(&caches_b));
    a.save("replicate", object(json!({"v": 1}))).unwrap();
    assert_eq!(b.get("replicate").unwrap()["v"], 1);
    a.update("replicate", object(json!({"v": 2}))).unwrap();
    // B's cached copy was dropped by A's write.
    assert_eq!(b.get("replicate").unwrap()["v"], 2);
    a.delete("replicate").unwrap();
    assert!(b.get("replicate").unwrap().is_empty());
    assert_eq!(
        *broadcaster.seen.lock().unwrap(),
        vec![Invalidation::Provider("replicate".into()); 3]
    );
    // Without a broadcaster, another process's cache keeps its copy for the TTL.
    let isolated = ConfigStore::builder(f.jobs_db()).open().unwrap();
    isolated.get("modal").unwrap();
    a.save("modal", object(json!({"v": 9}))).unwrap();
    assert!(isolated.get("modal").unwrap().is_empty());
    assert_eq!(isolated.get_uncached("modal").unwrap()["v"], 9);
    // Prefix invalidation drops every key of the provider and nothing else.
    let caches = ConfigCaches::new();
    caches
        .provider_config()
        .insert("provider:replicate:config".into(), Default::default());
    caches
        .provider_config()
        .insert("provider:replicate:other".into(), Default::default());
    caches
        .provider_config()
        .insert("provider:modal:config".into(), Default::default());
    caches
        .user_permissions()
        .insert("user:7:permissions".into(), Default::default());
    caches
        .user_permissions()
        .insert("user:70:permissions".into(), Default::default());
    assert_eq!(
        caches.invalidate(&Invalidation::Provider("replicate".into())),
        2
    );
    assert_eq!(caches.invalidate(&Invalidation::User(7)), 1);
    assert_eq!(
        (
            caches.provider_config().len(),
            caches.user_permissions().len()
        ),
        (1, 1)
    );
}

#[test]
fn the_global_caches_have_the_documented_sizes_and_ttls() {
    let global = ConfigCaches::global();
    assert_eq!(
        global.provider_config().default_ttl(),
        Duration::from_secs(300)
    );
    assert_eq!(global.provider_config().max_size(), 100);
    assert_eq!(
        global.user_permissions().default_ttl(),
        Duration::from_secs(60)
    );
    assert_eq!(global.user_permissions().max_size(), 500);
    crate::caches::user_permission_cache().insert(
        "user:424242:permissions".into(),
        Arc::new(["job.submit".to_owned()].into()),
    );
    crate::invalidate_user_cache(424_242);
    assert!(
        !global
            .user_permissions()
            .contains_key("user:424242:permissions")
    );
    crate::caches::provider_config_cache()
        .insert("provider:global-test:config".into(), Default::default());
    crate::invalidate_provider_cache("global-test");
    assert!(
        !global
            .provider_config()
            .contains_key("provider:global-test:config")
    );
}

fn the_async_api_never_blocks_and_loads_once(kind: Kind) {
    let f = Fixture::new(kind);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        f.store
            .save_async("replicate", object(json!({"a": 1})))
            .await
            .unwrap();
        let reads: Vec<_> = (0..16)
            .map(|_| {
                let store = f.store.clone();
                tokio::spawn(async move { store.get_async("replicate").await.unwrap() })
            })
            .collect();
        for read in reads {
            assert_eq!(read.await.unwrap()["a"], 1);
        }
        assert_eq!(f.store.database_reads(), 1);
        let merged = f
            .store
            .update_async("replicate", object(json!({"b": 2})))
            .await
            .unwrap();
        assert_eq!(merged.len(), 2);
        assert_eq!(f.store.list_async().await.unwrap(), ["replicate"]);
        let limit = CostLimit {
            enabled: true,
            ..CostLimit::default()
        };
        f.store
            .set_cost_limit_async("replicate", limit)
            .await
            .unwrap();
        assert_eq!(f.store.cost_limit_async("replicate").await.unwrap(), limit);
        let secret = crate::Secret::new("async-hook");
        f.store
            .set_webhook_secret_async("replicate", Some(secret.clone()))
            .await
            .unwrap();
        let webhook = f.store.webhook_config_async("replicate").await.unwrap();
        assert_eq!(webhook.secret, Some(secret));
        let info = crate::hardware::default_hardware_info();
        f.store
            .set_hardware_info_async("replicate", info.clone())
            .await
            .unwrap();
        assert_eq!(
            f.store.hardware_info_async("replicate").await.unwrap(),
            Some(info)
        );
        f.store
            .set_webhook_secret_async("replicate", None)
            .await
            .unwrap();
        assert!(
            f.store
                .webhook_config_async("replicate")
                .await
                .unwrap()
                .secret
                .is_none()
        );
        assert!(f.store.delete_async("replicate").await.unwrap());
        assert!(f.store.get_async("replicate").await.unwrap().is_empty());
    });
}

fn the_schema_of_a_newer_version_is_refused(kind: Kind) {
    let f = Fixture::new(kind);
    match kind {
        Kind::Sqlite => f.raw().batch("PRAGMA user_version = 99"),
        #[cfg(feature = "postgres")]
        Kind::Postgres => f
            .raw()
            .batch("UPDATE provider_config_schema SET version = 99"),
    }
    let e = ConfigStore::builder_at(f.db.jobs()).open().unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::SchemaTooNew {
                found: 99,
                supported,
                ..
            } if supported == match kind {
                Kind::Sqlite => 2,
                #[cfg(feature = "postgres")]
                Kind::Postgres => 2,
            }
        ),
        "{e}"
    );
}

both!(
    missing_is_empty_and_rows_round_trip,
    within_one_ttl_the_database_is_read_once_per_provider,
    a_write_is_visible_on_the_next_read_in_the_same_process,
    eight_threads_updating_different_keys_of_one_provider_lose_nothing,
    a_row_holding_invalid_json_is_an_error_naming_the_provider,
    bad_values_are_refused_before_anything_is_written,
    cost_limits_and_webhooks_have_the_originals_defaults,
    the_webhook_secret_is_stored_encrypted_and_plaintext_rows_still_read,
    the_async_api_never_blocks_and_loads_once,
    the_schema_of_a_newer_version_is_refused,
);
