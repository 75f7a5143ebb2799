//! `secrets doctor [--json]`: every provider of the table, configured or not, with a real
//! round trip for those in the chain. `--json` also reports what the run recorded through the
//! `metrics` facade (health-check latencies, errors by kind, snapshot fetches) and the value
//! cache's statistics.

use std::fmt::Write as _;
use std::time::Duration;

use secrets::{Config, SecretsManager};

use crate::failure::{Failure, exit};
use crate::metrics_report::MetricsReport;
use crate::output::write_stdout;

/// One row of the report.
struct Row {
    name: &'static str,
    configured: bool,
    available: bool,
    reachable: bool,
    latency: Option<Duration>,
    error: Option<String>,
}

pub(crate) async fn run(
    config: &Config,
    manager: &SecretsManager,
    json: bool,
) -> Result<u8, Failure> {
    let recorder = json.then(MetricsReport::install);
    let health = manager.health_report().await;
    let rows: Vec<Row> = config
        .provider_status()
        .into_iter()
        .map(|status| {
            let name = status.kind.name();
            match health.iter().find(|h| h.provider == name) {
                Some(h) => Row {
                    name,
                    configured: true,
                    available: h.available,
                    reachable: h.reachable,
                    latency: Some(h.latency),
                    error: h.error.clone(),
                },
                None => Row {
                    name,
                    configured: status.configured,
                    available: false,
                    reachable: false,
                    latency: None,
                    error: Some(if !status.compiled {
                        format!(
                            "not compiled into this build (cargo feature `{}`)",
                            status.kind.feature()
                        )
                    } else if !status.selected {
                        "not selected (--providers)".to_owned()
                    } else {
                        "not configured".to_owned()
                    }),
                },
            }
        })
        .collect();
    let writer = manager.writer().map(|w| w.name().to_owned());
    // A provider that is not available (say, no secrets file) is skipped by lookups, so only
    // an available provider that fails its round trip makes the chain unhealthy.
    let healthy = rows.iter().all(|r| !r.available || r.reachable);
    let text = if let Some(recorder) = recorder {
        let stats = manager.cache_stats();
        let cache = serde_json::json!({
            "size": stats.size,
            "max_size": stats.max_size,
            "hits": stats.hits,
            "misses": stats.misses,
            "inserts": stats.inserts,
            "evictions": stats.evictions,
            "expirations": stats.expirations,
            "loads": stats.loads,
            "load_failures": stats.load_failures,
        });
        render_json(&rows, writer.as_deref(), healthy, cache, recorder.to_json())
    } else {
        render_table(&rows, writer.as_deref())
    };
    write_stdout(&text)?;
    Ok(if healthy { 0 } else { exit::PROVIDER })
}

fn render_json(
    rows: &[Row],
    writer: Option<&str>,
    healthy: bool,
    cache: serde_json::Value,
    metrics: serde_json::Value,
) -> String {
    let providers: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name,
                "configured": r.configured,
                "available": r.available,
                "reachable": r.reachable,
                "latency_ms": r.latency.map(|l| l.as_secs_f64() * 1000.0),
                "error": r.error,
            })
        })
        .collect();
    let document = serde_json::json!({
        "providers": providers,
        "writer": writer,
        "healthy": healthy,
        "cache": cache,
        "metrics": metrics,
    });
    format!("{document}\n")
}

fn render_table(rows: &[Row], writer: Option<&str>) -> String {
    let mut text = format!(
        "{:<8} {:<10} {:<9} {:<9} {:>10}  ERROR\n",
        "PROVIDER", "CONFIGURED", "AVAILABLE", "REACHABLE", "LATENCY"
    );
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    for r in rows {
        let latency = r.latency.map_or_else(
            || "-".to_owned(),
            |l| format!("{:.2} ms", l.as_secs_f64() * 1000.0),
        );
        let _ = writeln!(
            text,
            "{:<8} {:<10} {:<9} {:<9} {:>10}  {}",
            r.name,
            yes_no(r.configured),
            yes_no(r.available),
            yes_no(r.reachable),
            latency,
            r.error.as_deref().unwrap_or("-"),
        );
    }
    let _ = writeln!(text, "writes go to: {}", writer.unwrap_or("(none)"));
    text
}
