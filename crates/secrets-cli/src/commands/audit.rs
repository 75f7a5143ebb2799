//! `secrets audit list|verify`: the tamper-evident audit trail.

use secrets::AppName;
use secrets::config::{
    AuditEntry, AuditFilter, AuditKey, AuditTrail, ChainReport, StoreError, Timestamp,
};

use crate::cli::AuditCommand;
use crate::failure::{Failure, exit};
use crate::output::write_stdout;
use crate::state;

pub(crate) fn run(app: &AppName, command: &AuditCommand) -> Result<u8, Failure> {
    let settings = state::settings(app)?;
    // Reading creates nothing: no audit database means no entries. And a missing key is
    // never replaced here: a new key would not verify the existing chain.
    let trail = if state::audit_exists(&settings) {
        let key = AuditKey::load_existing(&settings)?.ok_or_else(|| {
            Failure::new(
                exit::CRYPTO,
                format!(
                    "no audit key: {} is missing and {} is unset; the chain can only be checked with the key that signed it",
                    settings.audit_key_file.display(),
                    app.var("AUDIT_KEY")
                ),
            )
        })?;
        // Read-only: listing and verifying never change the database (one where nothing
        // was ever stored has no entries).
        match AuditTrail::open_read_only(&settings.audit_location(), key) {
            Ok(trail) => Some(trail),
            Err(StoreError::Uninitialized { .. }) => None,
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    match command {
        AuditCommand::List {
            json,
            event_types,
            actor,
            target_type,
            target_id,
            since,
            limit,
            offset,
        } => {
            let mut filter = AuditFilter {
                event_types: event_types.clone(),
                target_type: target_type.clone(),
                target_id: target_id.clone(),
                limit: *limit,
                offset: *offset,
                ..AuditFilter::default()
            };
            match actor.as_deref().map(|a| (a, a.parse::<i64>())) {
                Some((_, Ok(id))) => filter.actor_id = Some(id),
                Some((name, Err(_))) => filter.actor_username = Some(name.to_owned()),
                None => {}
            }
            if let Some(since) = since {
                filter.since = Some(
                    Timestamp::parse(since)
                        .map_err(|e| Failure::new(exit::USAGE, e.to_string()))?,
                );
            }
            let entries = match &trail {
                Some(trail) => trail.list(&filter)?,
                None => Vec::new(),
            };
            if *json {
                let mut text = serde_json::to_string_pretty(&entries).map_err(|e| {
                    Failure::new(exit::PROVIDER, format!("cannot format JSON: {e}"))
                })?;
                text.push('\n');
                write_stdout(&text)?;
            } else {
                let text: String = entries.iter().map(line).collect();
                write_stdout(&text)?;
            }
            Ok(0)
        }
        AuditCommand::Verify { json } => {
            let report = match &trail {
                Some(trail) => {
                    let mut report = trail.verify()?;
                    // The chain's verdict stands even when the configuration database
                    // cannot be read (say, a newer schema): that is only warned about.
                    match trail.unrecorded_changes(&settings.jobs_location()) {
                        Ok(n) => report.unrecorded_changes = n,
                        Err(e) => tracing::warn!(
                            "could not check the configuration database for changes committed without their audit row: {e}"
                        ),
                    }
                    report
                }
                None => ChainReport {
                    valid: true,
                    entries_checked: 0,
                    broken_links: Vec::new(),
                    first_id: None,
                    last_id: None,
                    checkpoint_id: None,
                    row_macs_checked: 0,
                    unrecorded_changes: 0,
                },
            };
            if *json {
                let mut text = serde_json::to_string_pretty(&report).map_err(|e| {
                    Failure::new(exit::PROVIDER, format!("cannot format JSON: {e}"))
                })?;
                text.push('\n');
                write_stdout(&text)?;
            } else {
                write_stdout(&summary(&report))?;
            }
            Ok(if report.valid { 0 } else { exit::PROVIDER })
        }
    }
}

/// One entry on one line: id, time, event, actor, target, action.
fn line(entry: &AuditEntry) -> String {
    let actor = match (&entry.actor_username, entry.actor_id) {
        (Some(name), Some(id)) => format!("{name}#{id}"),
        (Some(name), None) => name.clone(),
        (None, Some(id)) => format!("#{id}"),
        (None, None) => "-".to_owned(),
    };
    let target = match (&entry.target_type, &entry.target_id) {
        (Some(kind), Some(id)) => format!("{kind}:{id}"),
        (Some(kind), None) => kind.clone(),
        (None, Some(id)) => id.clone(),
        (None, None) => "-".to_owned(),
    };
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\n",
        entry.id,
        printable(&entry.timestamp),
        printable(&entry.event_type),
        printable(&actor),
        printable(&target),
        printable(&entry.action)
    )
}

/// A stored field as one line of text: control characters (a newline, a terminal escape
/// written into the database) are shown escaped, so a row cannot forge or hide other lines.
fn printable(field: &str) -> String {
    field
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn summary(report: &ChainReport) -> String {
    let range = match (report.first_id, report.last_id) {
        (Some(first), Some(last)) => format!(" (rows {first}..={last})"),
        _ => String::new(),
    };
    let checkpoint = report
        .checkpoint_id
        .map(|id| format!(", starting from the cleanup checkpoint in row {id}"))
        .unwrap_or_default();
    let unrecorded = match report.unrecorded_changes {
        0 => String::new(),
        n => format!(
            "{n} configuration change(s) committed without their audit row (a process was stopped between the two commits); the next configuration write appends them\n"
        ),
    };
    if report.valid {
        return format!(
            "audit trail intact: {} entries{range}{checkpoint}; {} with a MAC over every column\n{unrecorded}",
            report.entries_checked, report.row_macs_checked
        );
    }
    let mut text = format!(
        "audit trail BROKEN: {} problem(s) in {} entries{range}\n",
        report.broken_links.len(),
        report.entries_checked
    );
    if let Some(first) = report.first_problem() {
        text.push_str(&format!("first: {}\n", first.message));
    }
    for problem in report.broken_links.iter().skip(1).take(20) {
        text.push_str(&format!("  {}\n", problem.message));
    }
    text.push_str(&unrecorded);
    text
}
