//! Scale and reporting for the reliability checks (`cargo xtask reliability`).
//!
//! Each check is an ordinary test that runs its quick version under `cargo xtask test` (so CI
//! runs it) and its full version when `SECRETS_RELIABILITY=full`; it then reports what it
//! measured with [`report`], which `cargo xtask reliability` turns into a row of
//! docs/reliability.md. Outside that command, [`report`] writes nothing.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Whether this run is the full reliability check (`SECRETS_RELIABILITY=full`).
pub fn full() -> bool {
    std::env::var_os("SECRETS_RELIABILITY").is_some_and(|v| v == "full")
}

/// `quick` under `cargo xtask test`, `full` under `cargo xtask reliability`.
pub fn scale<T>(quick: T, full: T) -> T {
    if self::full() { full } else { quick }
}

/// Records one row of docs/reliability.md: `id` (stable, unique), what was checked, and the
/// figures measured (counts, bounds held, rates). Written only under
/// `cargo xtask reliability`, which adds the command and the date.
///
/// # Panics
/// When the report directory cannot be written: a check that cannot report must fail.
pub fn report(id: &str, check: &str, figures: &str) {
    static SEQUENCE: AtomicUsize = AtomicUsize::new(0);
    let Some(dir) = std::env::var_os("SECRETS_RELIABILITY_REPORT").map(PathBuf::from) else {
        return;
    };
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let row = serde_json::json!({ "id": id, "check": check, "figures": figures });
    let path = dir.join(format!("{:03}-{}-{id}.json", sequence, std::process::id()));
    std::fs::write(&path, row.to_string()).unwrap_or_else(|e| {
        panic!(
            "cannot write the reliability report {}: {e}",
            path.display()
        )
    });
}
