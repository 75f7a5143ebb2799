//! [`StoreSettings`]: where the store's files are, from an application's variables. The names
//! of the variables this crate reads live here (the state directory's live in `private-fs`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use private_fs::AppName;

use crate::audit::AuditKey;
use crate::{DatabaseUrl, StoreError, StoreLocation};

/// The suffix of the variable naming a PostgreSQL database to use instead of the SQLite
/// files: `<APP>_DATABASE_URL`.
pub(crate) const DATABASE_URL_VAR_SUFFIX: &str = "DATABASE_URL";
/// The suffix of the variable holding the audit signing key: `<APP>_AUDIT_KEY`.
pub(crate) const AUDIT_KEY_VAR_SUFFIX: &str = "AUDIT_KEY";
/// The configuration database under the state directory.
pub(crate) const JOBS_DB: &str = "cloud/jobs.db";
/// The audit database under the state directory.
pub(crate) const AUDIT_DB: &str = "audit.db";
/// The audit signing key file under the state directory.
pub(crate) const AUDIT_KEY_FILE: &str = "audit.key";

/// Where the configuration database, the audit trail and its key live: the SQLite files
/// under the state directory, or, when `<APP>_DATABASE_URL` is set (or
/// [`with_database_url`](Self::with_database_url) was called), one PostgreSQL database for
/// both (feature `postgres`), shared by several server replicas.
///
/// ```
/// use std::ffi::OsString;
/// use provider_config::{AppName, StoreSettings};
///
/// let lookup = |name: &str| (name == "SIMPLETUNER_STATE_DIR").then(|| OsString::from("/srv/st"));
/// let settings = StoreSettings::from_lookup(&AppName::default(), &lookup).unwrap();
/// assert_eq!(settings.jobs_db, std::path::Path::new("/srv/st/cloud/jobs.db"));
/// assert_eq!(settings.audit_db, std::path::Path::new("/srv/st/audit.db"));
/// ```
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// The application (its credential key is `~/.<app>/credential.key`).
    pub app: AppName,
    /// The state directory: `<APP>_STATE_DIR` > `<APP>_CONFIG_DIR` > the original's
    /// candidates (see [`private_fs::state_dir`]).
    pub state_dir: PathBuf,
    /// `<state>/cloud/jobs.db`: provider configuration and credentials.
    pub jobs_db: PathBuf,
    /// `<state>/audit.db`: the tamper-evident audit trail.
    pub audit_db: PathBuf,
    /// `<state>/audit.key`: the audit signing key when the variable is unset.
    pub audit_key_file: PathBuf,
    /// The key from `<APP>_AUDIT_KEY`, if set and non-empty.
    pub audit_key_from_env: Option<AuditKey>,
    /// The PostgreSQL database from `<APP>_DATABASE_URL` (if set and non-empty) or given
    /// explicitly; `None` for the SQLite files.
    pub database_url: Option<DatabaseUrl>,
}

impl StoreSettings {
    /// The settings of an application, reading its variables through `lookup`.
    pub fn from_lookup(
        app: &AppName,
        lookup: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Self, StoreError> {
        let state_dir = private_fs::state_dir(app, lookup).map_err(StoreError::Locate)?;
        let var = app.var(AUDIT_KEY_VAR_SUFFIX);
        let audit_key_from_env = private_fs::read_var(lookup, &var)
            .map_err(StoreError::Locate)?
            .map(|text| AuditKey::from_env(&var, text))
            .transpose()?;
        let url_var = Self::database_url_var(app);
        let database_url = private_fs::read_var(lookup, &url_var)
            .map_err(StoreError::Locate)?
            .map(|text| DatabaseUrl::parse_from(&url_var, &text))
            .transpose()?;
        Ok(Self {
            app: app.clone(),
            audit_key_from_env,
            database_url,
            ..Self::in_dir(&state_dir)
        })
    }

    /// The variable that names a PostgreSQL database for `app`: `<APP>_DATABASE_URL`.
    pub fn database_url_var(app: &AppName) -> String {
        app.var(DATABASE_URL_VAR_SUFFIX)
    }

    /// These settings with the configuration, credentials and audit trail in a PostgreSQL
    /// database instead of the SQLite files (the explicit form of `<APP>_DATABASE_URL`).
    pub fn with_database_url(mut self, url: DatabaseUrl) -> Self {
        self.database_url = Some(url);
        self
    }

    /// Where the configuration and credentials are: the PostgreSQL database, else
    /// `<state>/cloud/jobs.db`.
    pub fn jobs_location(&self) -> StoreLocation {
        match &self.database_url {
            Some(url) => StoreLocation::Postgres(url.clone()),
            None => StoreLocation::Sqlite(self.jobs_db.clone()),
        }
    }

    /// Where the audit trail is: the PostgreSQL database, else `<state>/audit.db`.
    pub fn audit_location(&self) -> StoreLocation {
        match &self.database_url {
            Some(url) => StoreLocation::Postgres(url.clone()),
            None => StoreLocation::Sqlite(self.audit_db.clone()),
        }
    }

    /// The settings of the process environment for an application.
    pub fn from_env(app: &AppName) -> Result<Self, StoreError> {
        Self::from_lookup(app, &|name| std::env::var_os(name))
    }

    /// The files under an explicit state directory, for the default application, with the
    /// audit key from its file.
    pub fn in_dir(state_dir: &Path) -> Self {
        Self {
            app: AppName::default(),
            state_dir: state_dir.to_owned(),
            jobs_db: state_dir.join(JOBS_DB),
            audit_db: state_dir.join(AUDIT_DB),
            audit_key_file: state_dir.join(AUDIT_KEY_FILE),
            audit_key_from_env: None,
            database_url: None,
        }
    }
}
