//! The configuration database and audit trail that `config`, `audit`, `crypto migrate-db` and
//! `crypto rotate-db` use: where they are, and who is acting.

use secrets::AppName;
use secrets::config::{
    Actor, ConfigStore, CredentialStore, MaintenanceReport, StoreError, StoreSettings,
};
use secrets::crypto::{CryptoError, KeyLoader, KeyOrigin};

use crate::failure::{Failure, exit};

/// The application's store settings, from its variables.
pub(crate) fn settings(app: &AppName) -> Result<StoreSettings, Failure> {
    Ok(StoreSettings::from_env(app)?)
}

/// Whether the configuration store exists: always for a PostgreSQL database
/// (`<APP>_DATABASE_URL`), else when `jobs.db` does (reading commands create nothing).
pub(crate) fn store_exists(settings: &StoreSettings) -> bool {
    settings.database_url.is_some() || settings.jobs_db.exists()
}

/// Whether the audit trail exists (as [`store_exists`]).
pub(crate) fn audit_exists(settings: &StoreSettings) -> bool {
    settings.database_url.is_some() || settings.audit_db.exists()
}

/// The author recorded in the audit trail: the operating-system user running the command
/// (informational; whoever can run the command can set `USER`).
pub(crate) fn actor() -> Actor {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .map_or_else(Actor::unknown, |user| Actor::named(format!("cli:{user}")))
}

/// The application's credential store with its key; `None` (said on stderr) when there is no
/// database yet.
pub(crate) fn credential_store(app: &AppName) -> Result<Option<CredentialStore>, Failure> {
    let settings = settings(app)?;
    if !store_exists(&settings) {
        eprintln!(
            "secrets: no database at {}: nothing to do",
            settings.jobs_db.display()
        );
        return Ok(None);
    }
    let crypto = |e: secrets::crypto::CryptoError| Failure::new(exit::CRYPTO, e.to_string());
    // A key is created only when nothing is encrypted yet: a new key could decrypt none of
    // the stored credentials (and rotating to it would fail on every row).
    let keyring = match KeyLoader::new(app).create_if_missing(false).load() {
        Err(CryptoError::NoKey { .. }) => {
            let encrypted = ConfigStore::builder_at(settings.jobs_location())
                .open()?
                .encrypted_credentials()?;
            if encrypted > 0 {
                return Err(Failure::new(
                    exit::CRYPTO,
                    format!(
                        "no credential key ({} is unset and the key file is missing), and the database holds {encrypted} credential(s) encrypted under a key: a new key could never decrypt them, so none is created; restore the key file or set the variable",
                        app.var("CREDENTIAL_KEY")
                    ),
                ));
            }
            KeyLoader::new(app).load().map_err(crypto)?
        }
        other => other.map_err(crypto)?,
    };
    if let KeyOrigin::Generated(path) = &keyring.origin {
        eprintln!(
            "secrets: generated a new credential key in {} (mode 0600). Back it up together \
             with the database: without it, the stored credentials cannot be decrypted.",
            path.display()
        );
    }
    let cipher = keyring.cipher().map_err(crypto)?;
    Ok(Some(
        CredentialStore::open(&settings, cipher)?.acting_as(actor()),
    ))
}

/// A write that needed a credential key when there is none: say how to create one.
pub(crate) fn hint_create_key(e: StoreError, create_key: bool) -> Failure {
    if !create_key
        && let StoreError::Crypto {
            source: CryptoError::NoKey { .. },
            ..
        } = &e
    {
        return Failure::new(
            exit::CRYPTO,
            format!(
                "{e}; nothing was written. Pass --create-key to create a new credential key (or set the variable)"
            ),
        );
    }
    Failure::from(e)
}

/// Reports what could not be checked, and fails when old copies may remain.
pub(crate) fn finish_maintenance(report: &MaintenanceReport) -> Result<u8, Failure> {
    for provider in &report.unreadable_config_rows {
        eprintln!(
            "secrets: warning: the configuration of provider `{}` cannot be read (not a JSON object, not UTF-8 text, or a BLOB) and was left as it is; fix it with `secrets config set` or `secrets config delete`",
            crate::escape::key(provider)
        );
    }
    if report.scrubbed {
        Ok(0)
    } else {
        Err(Failure::new(
            exit::PROVIDER,
            "the rows were updated, but another process kept the write-ahead log in use, so old copies may remain in it; stop the server and run the command again",
        ))
    }
}
