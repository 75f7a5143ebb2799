//! Where an application's files live, and how its configuration variables are named and read.

use std::ffi::OsString;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// The application name used when none is given: `~/.simpletuner/`, `SIMPLETUNER_*`.
pub const DEFAULT_APP_NAME: &str = "simpletuner";

/// Longest accepted application name.
const MAX_APP_NAME_LEN: usize = 64;

/// A validated application name. It names the directory `~/.<app>/` and prefixes the
/// configuration variables `<APP>_...`, so it may hold only ASCII letters, digits, `-`, `_`
/// and `.`, must start with a letter or digit and is at most 64 bytes: no path separator or
/// `..` can make it point outside the home directory.
///
/// ```
/// use private_fs::AppName;
///
/// let app = AppName::new("my-app.v2").unwrap();
/// assert_eq!(app.var("SECRETS_FILE"), "MY_APP_V2_SECRETS_FILE");
/// assert_eq!(app.dir_name(), ".my-app.v2");
/// assert!(AppName::new("x/../../escape").is_err());
/// assert_eq!(AppName::default().as_str(), "simpletuner");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppName(String);

/// Why a string is not an [`AppName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid application name {name:?}: {reason}")]
pub struct InvalidAppName {
    /// The rejected name (shown escaped).
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl AppName {
    /// Validates a name.
    pub fn new(name: &str) -> Result<Self, InvalidAppName> {
        let invalid = |reason| InvalidAppName {
            name: name.to_owned(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid("it is empty"));
        }
        if name.len() > MAX_APP_NAME_LEN {
            return Err(invalid("it is longer than 64 bytes"));
        }
        if !name.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(invalid("it must start with a letter or digit"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(invalid(
                "only ASCII letters, digits, '-', '_' and '.' are allowed (it names a directory)",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The prefix of the application's variables: uppercase, `-` and `.` as `_`
    /// (`simpletuner` -> `SIMPLETUNER`).
    pub fn var_prefix(&self) -> String {
        self.0
            .chars()
            .map(|c| match c {
                '-' | '.' => '_',
                c => c.to_ascii_uppercase(),
            })
            .collect()
    }

    /// The name of one of the application's variables: `<APP>_<suffix>`.
    pub fn var(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.var_prefix())
    }

    /// The application's directory name under the home directory: `.<app>`.
    pub fn dir_name(&self) -> String {
        format!(".{}", self.0)
    }
}

impl Default for AppName {
    fn default() -> Self {
        Self(DEFAULT_APP_NAME.to_owned())
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for AppName {
    type Err = InvalidAppName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// Why a place or a variable could not be determined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocateError {
    /// `HOME` is empty, or unset with no passwd entry for the user.
    #[error(
        "no home directory: HOME is unset or empty and the user has no passwd entry; set HOME or configure the path explicitly"
    )]
    NoHomeDirectory,
    /// A configuration variable holds bytes that are not UTF-8.
    #[error("environment variable {variable} is not valid UTF-8")]
    NotUnicode {
        /// The variable's name.
        variable: String,
    },
    /// A configuration variable holds a value outside the accepted ones.
    #[error("environment variable {variable} has an unrecognised value; expected {expected}")]
    InvalidValue {
        /// The variable's name.
        variable: String,
        /// What it accepts.
        expected: &'static str,
    },
}

/// The user's home directory: `HOME` when set (an empty `HOME` counts as none), otherwise the
/// passwd entry of the user (as Python's `Path.home()`); `USERPROFILE` on Windows.
pub fn home_dir() -> Option<PathBuf> {
    std::env::home_dir().filter(|home| !home.as_os_str().is_empty())
}

/// The application's directory: `~/.<app>`.
pub fn app_dir(app: &AppName) -> Result<PathBuf, LocateError> {
    Ok(home_dir()
        .ok_or(LocateError::NoHomeDirectory)?
        .join(app.dir_name()))
}

/// Expands a leading `~` (alone or followed by a separator) to the home directory; other
/// paths, including `~user/...`, are returned unchanged.
///
/// ```
/// # if let Some(home) = private_fs::home_dir() {
/// assert_eq!(private_fs::expand_home("~/s.json".as_ref()).unwrap(), home.join("s.json"));
/// # }
/// assert_eq!(private_fs::expand_home("/etc/s.json".as_ref()).unwrap(), std::path::Path::new("/etc/s.json"));
/// ```
pub fn expand_home(path: &Path) -> Result<PathBuf, LocateError> {
    let mut components = path.components();
    match components.next() {
        Some(Component::Normal(first)) if first == "~" => {
            let home = home_dir().ok_or(LocateError::NoHomeDirectory)?;
            Ok(home.join(components.as_path()))
        }
        _ => Ok(path.to_owned()),
    }
}

/// Reads a configuration variable through `lookup` (the process environment, or a map in
/// tests). An empty value counts as unset (deployment templates export `NAME=`); a value
/// that is not UTF-8 is an error rather than silently ignored.
///
/// ```
/// use std::ffi::OsString;
///
/// let lookup = |name: &str| (name == "APP_X").then(|| OsString::from("v"));
/// assert_eq!(private_fs::read_var(&lookup, "APP_X").unwrap().as_deref(), Some("v"));
/// assert_eq!(private_fs::read_var(&lookup, "APP_Y").unwrap(), None);
/// ```
pub fn read_var(
    lookup: &dyn Fn(&str) -> Option<OsString>,
    name: &str,
) -> Result<Option<String>, LocateError> {
    match lookup(name) {
        None => Ok(None),
        Some(value) if value.is_empty() => Ok(None),
        Some(value) => value
            .into_string()
            .map(Some)
            .map_err(|_| LocateError::NotUnicode {
                variable: name.to_owned(),
            }),
    }
}

/// The directory of the application's server state (its database, audit trail), as the
/// original server resolves it:
///
/// 1. `<APP>_STATE_DIR`, then the legacy `<APP>_CONFIG_DIR` (a leading `~` is expanded);
/// 2. on Linux and other Unix systems except macOS, the first of `/workspace/<app>` (only
///    where `/workspace` exists), `/notebooks/<app>` (only where `/notebooks` exists) and
///    `~/.<app>` that already has a `cloud/` subdirectory;
/// 3. otherwise the first of those candidates (`~/.<app>` when there is no ML workspace).
///
/// Elsewhere step 2 is skipped and the answer is `~/.<app>`.
pub fn state_dir(
    app: &AppName,
    lookup: &dyn Fn(&str) -> Option<OsString>,
) -> Result<PathBuf, LocateError> {
    let ml_roots: &[&Path] = if cfg!(all(unix, not(target_os = "macos"))) {
        &[Path::new("/workspace"), Path::new("/notebooks")]
    } else {
        &[]
    };
    resolve_state_dir(app, lookup, ml_roots, home_dir())
}

fn resolve_state_dir(
    app: &AppName,
    lookup: &dyn Fn(&str) -> Option<OsString>,
    ml_roots: &[&Path],
    home: Option<PathBuf>,
) -> Result<PathBuf, LocateError> {
    for suffix in ["STATE_DIR", "CONFIG_DIR"] {
        if let Some(dir) = read_var(lookup, &app.var(suffix))? {
            return expand_home(Path::new(&dir));
        }
    }
    let mut candidates: Vec<PathBuf> = ml_roots
        .iter()
        .filter(|root| root.exists())
        .map(|root| root.join(app.as_str()))
        .collect();
    if let Some(home) = home {
        candidates.push(home.join(app.dir_name()));
    }
    if let Some(existing) = candidates.iter().find(|c| c.join("cloud").is_dir()) {
        return Ok(existing.clone());
    }
    candidates
        .into_iter()
        .next()
        .ok_or(LocateError::NoHomeDirectory)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn app_names_cannot_escape_the_home_directory() {
        for bad in [
            "",
            "x/../../escape",
            "..",
            ".hidden",
            "a b",
            "a\\b",
            "-x",
            "é",
            "a\0b",
        ] {
            assert!(AppName::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(AppName::new(&"a".repeat(65)).is_err());
        for good in ["simpletuner", "my-app", "App_2", "a.b", "9"] {
            assert_eq!(AppName::new(good).unwrap().as_str(), good);
        }
        let e = AppName::new("x/y").unwrap_err().to_string();
        assert!(e.contains("\"x/y\"") && e.contains("directory"), "{e}");
    }

    #[test]
    fn variable_names_follow_one_rule() {
        let app = AppName::new("my-app.v2").unwrap();
        assert_eq!(app.var_prefix(), "MY_APP_V2");
        assert_eq!(
            AppName::default().var("CREDENTIAL_KEY"),
            "SIMPLETUNER_CREDENTIAL_KEY"
        );
    }

    #[cfg(unix)]
    #[test]
    fn variables_empty_is_unset_and_non_utf8_is_an_error() {
        use std::os::unix::ffi::OsStringExt;
        let lookup = |name: &str| match name {
            "EMPTY" => Some(OsString::new()),
            "BAD" => Some(OsString::from_vec(vec![0xff, b'x'])),
            _ => None,
        };
        assert_eq!(read_var(&lookup, "EMPTY").unwrap(), None);
        assert_eq!(read_var(&lookup, "UNSET").unwrap(), None);
        assert_eq!(
            read_var(&lookup, "BAD").unwrap_err(),
            LocateError::NotUnicode {
                variable: "BAD".into()
            }
        );
    }

    #[test]
    fn state_dir_follows_the_original_order() {
        let app = AppName::default();
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let workspace = tmp.path().join("workspace");
        let notebooks = tmp.path().join("notebooks");
        let missing = tmp.path().join("missing");
        let roots: Vec<&Path> = vec![&workspace, &missing, &notebooks];
        let resolve = |pairs: &[(&str, &str)]| {
            resolve_state_dir(&app, &vars(pairs), &roots, Some(home.clone()))
        };

        // No ML roots exist: ~/.simpletuner.
        assert_eq!(resolve(&[]).unwrap(), home.join(".simpletuner"));
        // Roots that exist come first, in order; a root that does not exist is no candidate.
        std::fs::create_dir_all(&notebooks).unwrap();
        assert_eq!(resolve(&[]).unwrap(), notebooks.join("simpletuner"));
        std::fs::create_dir_all(&workspace).unwrap();
        assert_eq!(resolve(&[]).unwrap(), workspace.join("simpletuner"));
        // An existing installation (with cloud/) wins over the preferred root.
        std::fs::create_dir_all(home.join(".simpletuner/cloud")).unwrap();
        assert_eq!(resolve(&[]).unwrap(), home.join(".simpletuner"));
        std::fs::create_dir_all(notebooks.join("simpletuner/cloud")).unwrap();
        assert_eq!(resolve(&[]).unwrap(), notebooks.join("simpletuner"));
        // Variables win: STATE_DIR over the legacy CONFIG_DIR; empty counts as unset.
        assert_eq!(
            resolve(&[("SIMPLETUNER_CONFIG_DIR", "/cfg")]).unwrap(),
            Path::new("/cfg")
        );
        assert_eq!(
            resolve(&[
                ("SIMPLETUNER_STATE_DIR", "/st"),
                ("SIMPLETUNER_CONFIG_DIR", "/cfg")
            ])
            .unwrap(),
            Path::new("/st")
        );
        assert_eq!(
            resolve(&[
                ("SIMPLETUNER_STATE_DIR", ""),
                ("SIMPLETUNER_CONFIG_DIR", "/cfg")
            ])
            .unwrap(),
            Path::new("/cfg")
        );
        // Without a home and without roots there is no answer.
        assert_eq!(
            resolve_state_dir(&app, &vars(&[]), &[], None).unwrap_err(),
            LocateError::NoHomeDirectory
        );
    }

    #[test]
    fn tilde_expands_only_alone_or_before_a_separator() {
        let home = home_dir().expect("the tests run with a home directory");
        assert_eq!(expand_home(Path::new("~")).unwrap(), home);
        assert_eq!(expand_home(Path::new("~/a/b")).unwrap(), home.join("a/b"));
        assert_eq!(expand_home(Path::new("~x/a")).unwrap(), Path::new("~x/a"));
        assert_eq!(expand_home(Path::new("a/~/b")).unwrap(), Path::new("a/~/b"));
    }
}
