//! [`StoreLocation`]: where a store keeps its rows (an SQLite file, or a PostgreSQL database
//! named by a [`DatabaseUrl`]).

use std::fmt;
use std::path::{Path, PathBuf};

use credential_crypto::Secret;

use crate::StoreError;

/// Where a store keeps its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreLocation {
    /// An SQLite file (the embedded default, and the original's).
    Sqlite(PathBuf),
    /// A PostgreSQL database shared by several processes (feature `postgres`; without it,
    /// opening one is a [`StoreError::BackendNotCompiled`]).
    Postgres(DatabaseUrl),
}

impl StoreLocation {
    /// Where errors and logs say the rows are (a path, or the URL without its password).
    pub fn display(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres(url) => url.to_string(),
        }
    }
}

impl From<PathBuf> for StoreLocation {
    fn from(path: PathBuf) -> Self {
        Self::Sqlite(path)
    }
}

impl From<&Path> for StoreLocation {
    fn from(path: &Path) -> Self {
        Self::Sqlite(path.to_owned())
    }
}

impl From<DatabaseUrl> for StoreLocation {
    fn from(url: DatabaseUrl) -> Self {
        Self::Postgres(url)
    }
}

/// A `postgres://` or `postgresql://` URL, as libpq reads it
/// (`postgres://user:password@host:port/dbname?sslmode=verify-full&sslrootcert=ca.pem`).
///
/// It may hold a password, so `Debug` and `Display` show it with the password replaced by
/// `***`; [`expose`](Self::expose) gives the whole URL.
///
/// ```
/// use provider_config::DatabaseUrl;
///
/// let url = DatabaseUrl::parse("postgres://app:SENTINEL@db.internal:5432/simpletuner").unwrap();
/// assert_eq!(url.to_string(), "postgres://app:***@db.internal:5432/simpletuner");
/// assert!(!format!("{url:?}").contains("SENTINEL"));
/// assert!(DatabaseUrl::parse("mysql://db/x").is_err());
/// ```
#[derive(Clone)]
pub struct DatabaseUrl {
    url: Secret,
    shown: String,
    setting: String,
}

impl PartialEq for DatabaseUrl {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url
    }
}

impl Eq for DatabaseUrl {}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl").field(&self.shown).finish()
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Query parameters whose values are secrets.
const SECRET_PARAMS: &[&str] = &["password", "sslpassword"];

impl DatabaseUrl {
    /// Checks the scheme (`postgres://` or `postgresql://`); the rest is checked when a store
    /// connects.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        Self::parse_from("the database URL", url)
    }

    /// [`parse`](Self::parse), naming `setting` (a variable) in errors.
    pub(crate) fn parse_from(setting: &str, url: &str) -> Result<Self, StoreError> {
        let invalid = |problem: &str| StoreError::InvalidDatabaseUrl {
            setting: setting.to_owned(),
            problem: problem.to_owned(),
        };
        let trimmed = url.trim();
        let Some((scheme, rest)) = trimmed.split_once("://") else {
            return Err(invalid(
                "not a URL: expected postgres://user:password@host:port/dbname",
            ));
        };
        if !matches!(scheme, "postgres" | "postgresql") {
            return Err(invalid(
                "only PostgreSQL URLs (postgres:// or postgresql://) are supported; unset it to use the embedded SQLite store",
            ));
        }
        if rest.is_empty() {
            return Err(invalid("the URL names no server"));
        }
        Ok(Self {
            url: Secret::new(trimmed),
            shown: redact(trimmed),
            setting: setting.to_owned(),
        })
    }

    /// The whole URL, password included.
    pub fn expose(&self) -> &str {
        self.url.expose()
    }

    /// The variable or setting the URL came from (named in errors).
    pub fn setting(&self) -> &str {
        &self.setting
    }
}

/// The URL with the password of its user-info and of `password=` parameters replaced.
fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    // The user-info ends at the last `@` (a password may hold an unencoded `/` or `@`).
    let hosts_start = before_query.rfind('@').map_or(0, |at| at + 1);
    let authority_end = before_query[hosts_start..]
        .find('/')
        .map_or(before_query.len(), |slash| hosts_start + slash);
    let (authority, path) = before_query.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{hosts}"),
            None => format!("{userinfo}@{hosts}"),
        },
        None => authority.to_owned(),
    };
    let mut shown = format!("{scheme}://{authority}{path}");
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if SECRET_PARAMS.contains(&key) => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&params.join("&"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        for (url, shown) in [
            (
                "postgres://u:SENTINEL@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgres://u:a/SENTINEL@h/db", "postgres://u:***@h/db"),
            (
                "postgresql://u:p@SENTINEL@h/db?sslmode=require",
                "postgresql://u:***@h/db?sslmode=require",
            ),
            (
                "postgres://h/db?user=u&password=SENTINEL&sslmode=verify-full",
                "postgres://h/db?user=u&password=***&sslmode=verify-full",
            ),
            ("postgres://u@h", "postgres://u@h"),
        ] {
            let parsed = DatabaseUrl::parse(url).unwrap();
            assert_eq!(parsed.to_string(), shown);
            assert!(!format!("{parsed:?} {parsed}").contains("SENTINEL"));
            assert_eq!(parsed.expose(), url);
        }
        for bad in ["", "localhost", "sqlite:///tmp/x.db", "postgres://"] {
            let e = DatabaseUrl::parse_from("SIMPLETUNER_DATABASE_URL", bad).unwrap_err();
            assert!(
                e.to_string().starts_with("SIMPLETUNER_DATABASE_URL: "),
                "{e}"
            );
        }
    }
}
