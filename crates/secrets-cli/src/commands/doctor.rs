//! `secrets doctor [--json]`: every provider of the table, configured or not, with a real
//! round trip for those in the chain.

use std::fmt::Write as _;
use std::time::Duration;

use secrets::{Config, SecretsManager};

use crate::failure::{Failure, exit};
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
    let text = if json {
        render_json(&rows, writer.as_deref(), healthy)
    } else {
        render_table(&rows, writer.as_deref())
    };
    write_stdout(&text)?;
    Ok(if healthy { 0 } else { exit::PROVIDER })
}

fn render_json(rows: &[Row], writer: Option<&str>, healthy: bool) -> String {
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
    let document =
        serde_json::json!({ "providers": providers, "writer": writer, "healthy": healthy });
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
