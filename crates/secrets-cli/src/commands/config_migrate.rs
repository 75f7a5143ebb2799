//! `secrets config migrate [--to URL]`: the SQLite store copied to PostgreSQL.

use secrets::AppName;
use secrets::config::{AuditKey, CopyReport, DatabaseUrl, StoreSettings, copy_store};

use crate::failure::{Failure, exit};
use crate::output::write_stdout;

pub(crate) fn run(
    app: &AppName,
    settings: StoreSettings,
    to: Option<&str>,
    json: bool,
) -> Result<u8, Failure> {
    let url_var = StoreSettings::database_url_var(app);
    let target_url = match to {
        Some(url) => DatabaseUrl::parse(url)?,
        None => settings.database_url.clone().ok_or_else(|| {
            Failure::new(
                exit::USAGE,
                format!("name the PostgreSQL database: --to postgres://... or {url_var}"),
            )
        })?,
    };
    // The source is the SQLite files, whatever the variable says.
    let mut source = settings;
    source.database_url = None;
    if !source.jobs_db.exists() && !source.audit_db.exists() {
        eprintln!(
            "secrets: no SQLite store under {} ({} and {} do not exist): nothing to migrate",
            source.state_dir.display(),
            source.jobs_db.display(),
            source.audit_db.display()
        );
        return Ok(exit::NOT_FOUND);
    }
    let key = match AuditKey::load_existing(&source)? {
        Some(key) => key,
        None if source.audit_db.exists() => {
            return Err(Failure::new(
                exit::CRYPTO,
                format!(
                    "no audit key: {} is missing and {} is unset; the chain can only be copied and verified with the key that signed it",
                    source.audit_key_file.display(),
                    app.var("AUDIT_KEY")
                ),
            ));
        }
        None => {
            let key = AuditKey::load(&source)?;
            eprintln!(
                "secrets: generated the audit key {} (mode 0600): give every replica this same key",
                source.audit_key_file.display()
            );
            key
        }
    };
    let target = source.clone().with_database_url(target_url.clone());
    let report = copy_store(&source, &target, &key)?;
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::new(exit::PROVIDER, format!("cannot format JSON: {e}")))?;
        write_stdout(&format!("{text}\n"))?;
    } else {
        write_stdout(&summary(&report, &target_url))?;
    }
    eprintln!(
        "secrets: to use it, set {url_var} on every replica (with the same audit key and credential key)"
    );
    Ok(0)
}

fn summary(report: &CopyReport, target: &DatabaseUrl) -> String {
    format!(
        "copied to {target}:\n  provider configurations: {} copied, {} already there\n  credentials: {} copied, {} already there\n  audit rows: {} copied, {} already there\n  audit chain: verified, {} rows\n",
        report.providers_copied,
        report.providers_unchanged,
        report.credentials_copied,
        report.credentials_unchanged,
        report.audit_rows_copied,
        report.audit_rows_unchanged,
        report.chain.entries_checked,
    )
}
