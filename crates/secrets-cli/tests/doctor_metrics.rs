//! `secrets doctor --json` reports what its run recorded through the `metrics` facade and the
//! value cache's statistics; no metric label carries a key name, a value or a token.

mod common;

use common::Sandbox;
use serde_json::Value;

const TOKEN: &str = "s.TOKENSENTINEL42";
const VALUE: &str = "VALUESENTINEL42";

fn counter(report: &Value, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
    report["metrics"]["counters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["name"] == name
                && c["labels"].as_object().unwrap().len() == labels.len()
                && labels.iter().all(|(k, v)| c["labels"][*k] == *v)
        })
        .map(|c| c["value"].as_u64().unwrap())
}

fn histogram_count(report: &Value, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
    report["metrics"]["histograms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name && labels.iter().all(|(k, v)| c["labels"][*k] == *v))
        .map(|c| c["count"].as_u64().unwrap())
}

#[test]
fn doctor_json_reports_health_latencies_errors_and_cache_statistics() {
    let sb = Sandbox::new();
    sb.write("secrets.json", &format!("{{\"{VALUE}\": {VALUE}"));
    // Vault configured at a port nobody listens on: a health error of kind `unavailable`.
    let r = sb.run(
        &["doctor", "--json"],
        &[
            ("VAULT_ADDR", "http://127.0.0.1:1"),
            ("VAULT_TOKEN", TOKEN),
            ("HF_TOKEN", VALUE),
        ],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    let report: Value = serde_json::from_str(&r.stdout).unwrap();
    for provider in ["env", "file", "vault"] {
        assert_eq!(
            histogram_count(
                &report,
                "secrets_provider_latency_seconds",
                &[("provider", provider), ("op", "health")]
            ),
            Some(1),
            "{provider}: {}",
            r.stdout
        );
    }
    assert_eq!(
        counter(
            &report,
            "secrets_provider_errors_total",
            &[
                ("provider", "vault"),
                ("op", "health"),
                ("kind", "unavailable")
            ]
        ),
        Some(1),
        "{}",
        r.stdout
    );
    assert_eq!(
        counter(
            &report,
            "secrets_provider_errors_total",
            &[
                ("provider", "file"),
                ("op", "health"),
                ("kind", "malformed")
            ]
        ),
        Some(1),
        "{}",
        r.stdout
    );
    assert_eq!(
        counter(
            &report,
            "secrets_provider_errors_total",
            &[
                ("provider", "env"),
                ("op", "health"),
                ("kind", "unavailable")
            ]
        ),
        None
    );
    assert_eq!(report["cache"]["max_size"], 1000);
    assert_eq!(report["cache"]["hits"], 0);
    assert!(!r.stdout.contains("SENTINEL"), "{}", r.stdout);
    assert!(!r.stderr.contains("SENTINEL"), "{}", r.stderr);

    // The table has no metrics section: the text contract is unchanged.
    let r = sb.run(&["doctor"], &[]);
    assert!(!r.stdout.contains("secrets_provider"), "{}", r.stdout);
}
