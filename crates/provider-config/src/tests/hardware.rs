//! Hardware pricing: defaults, the replicate configuration, the 300 s cache.

use std::time::Duration;

use serde_json::json;

use super::{Fixture, Kind, both, object};
use crate::HardwareInfo;
use crate::hardware::{
    self, DEFAULT_GPU, HardwareOption, default_gpu_cost_per_hour, default_hardware_info,
};

#[test]
fn the_defaults_are_the_documented_ones() {
    let defaults = default_hardware_info();
    assert_eq!(defaults.len(), 2);
    assert_eq!(defaults["gpu-l40s"].name.as_deref(), Some("L40S (48GB)"));
    assert_eq!(defaults["gpu-l40s"].cost_per_second, 0.000975);
    assert_eq!(
        defaults["gpu-a100-large"].name.as_deref(),
        Some("A100 (80GB)")
    );
    assert_eq!(defaults["gpu-a100-large"].cost_per_second, 0.0014);
    assert!((default_gpu_cost_per_hour(&defaults) - 3.51).abs() < 1e-9);
    // Without the default GPU, its default price.
    let mut other = HardwareInfo::new();
    other.insert("gpu-x".into(), HardwareOption::new("X", 1.0));
    assert!((default_gpu_cost_per_hour(&other) - 3.51).abs() < 1e-9);
}

fn pricing_comes_from_the_replicate_configuration_and_is_cached(kind: Kind) {
    let f = Fixture::new(kind);
    // No configuration: the defaults.
    assert_eq!(f.store.hardware_pricing().unwrap(), default_hardware_info());
    // An empty object is no configuration either.
    f.store
        .update("replicate", object(json!({"hardware_info": {}})))
        .unwrap();
    assert_eq!(f.store.hardware_pricing().unwrap(), default_hardware_info());
    let mut custom = HardwareInfo::new();
    custom.insert(
        DEFAULT_GPU.into(),
        HardwareOption::new("L40S (48GB)", 0.002),
    );
    let mut h100 = HardwareOption::new("H100", 0.003);
    h100.extra.insert("memory_gb".into(), json!(80));
    custom.insert("gpu-h100".into(), h100);
    // Saving through the store clears the pricing cache.
    f.store.set_hardware_info("replicate", &custom).unwrap();
    assert_eq!(f.store.hardware_pricing().unwrap(), custom);
    assert_eq!(f.store.hardware_info("replicate").unwrap().unwrap(), custom);
    assert_eq!(
        f.store.get("replicate").unwrap()["hardware_info"]["gpu-h100"]["memory_gb"],
        80
    );
    // A write behind the store's back is seen after the TTL, not before.
    let reads = f.store.database_reads();
    f.raw().execute(
        "UPDATE provider_config SET config = '{}' WHERE provider = 'replicate'",
        &[],
    );
    f.clock.advance(Duration::from_secs(299));
    assert_eq!(f.store.hardware_pricing().unwrap(), custom);
    assert_eq!(f.store.database_reads(), reads);
    f.clock.advance(Duration::from_secs(2));
    assert_eq!(f.store.hardware_pricing().unwrap(), default_hardware_info());
    // Another provider's hardware_info does not touch the pricing cache.
    f.store.set_hardware_info("modal", &custom).unwrap();
    assert_eq!(f.store.hardware_pricing().unwrap(), default_hardware_info());
    // The cache can be set and cleared by hand; callers get owned copies.
    f.caches.set_hardware_info(custom.clone()).unwrap();
    let mut copy = f.store.hardware_pricing().unwrap();
    copy.clear();
    assert_eq!(f.store.hardware_pricing().unwrap(), custom);
    f.caches.clear_hardware_info();
    assert_eq!(
        f.caches.hardware_info_or_defaults(),
        default_hardware_info()
    );
    let mut negative = HardwareInfo::new();
    negative.insert("g".into(), HardwareOption::new("G", -1.0));
    assert!(f.caches.set_hardware_info(negative.clone()).is_err());
    assert!(f.store.set_hardware_info("replicate", &negative).is_err());
}

fn concurrent_async_callers_load_once(kind: Kind) {
    let f = Fixture::new(kind);
    let mut custom = HardwareInfo::new();
    custom.insert("gpu-l40s".into(), HardwareOption::new("L40S", 0.001));
    f.store.set_hardware_info("replicate", &custom).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = f.store.clone();
                tokio::spawn(
                    async move { hardware::get_hardware_info_async(&store).await.unwrap() },
                )
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), custom);
        }
        let per_hour = hardware::default_hardware_cost_per_hour(&f.store)
            .await
            .unwrap();
        assert!((per_hour - 3.6).abs() < 1e-9);
    });
    assert_eq!(f.store.database_reads(), 1);
}

fn a_broken_stored_pricing_is_an_error_not_the_defaults(kind: Kind) {
    let f = Fixture::new(kind);
    f.raw()
        .execute("INSERT INTO provider_config (provider, config, updated_at)
             VALUES ('replicate', '{\"hardware_info\": {\"gpu\": {\"cost_per_second\": -3}}}', 'x')", &[]);
    let e = f.store.hardware_pricing().unwrap_err();
    assert!(
        e.to_string().contains("`replicate`") && e.to_string().contains("hardware_info"),
        "{e}"
    );
}

#[test]
fn the_global_functions_use_the_global_cache() {
    // Only this test touches the global hardware cache.
    hardware::clear_hardware_info_cache();
    assert_eq!(hardware::get_hardware_info(), default_hardware_info());
    let mut custom = HardwareInfo::new();
    custom.insert("gpu-z".into(), HardwareOption::new("Z", 0.5));
    hardware::set_hardware_info(custom.clone()).unwrap();
    assert_eq!(hardware::get_hardware_info(), custom);
    crate::invalidate_provider_cache("replicate");
    assert_eq!(hardware::get_hardware_info(), default_hardware_info());
}

both!(
    pricing_comes_from_the_replicate_configuration_and_is_cached,
    concurrent_async_callers_load_once,
    a_broken_stored_pricing_is_an_error_not_the_defaults,
);
