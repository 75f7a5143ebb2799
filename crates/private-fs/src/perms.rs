//! Private permissions: 0700 directories, 0600 files from creation, exposure warnings, and
//! the strict mode that refuses exposed files.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{AppName, LocateError, read_var};

/// `OpenOptions` that create files with mode 0600 (on Unix), so there is no moment at which
/// a new file is readable by others. Set the access flags as usual.
pub fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Creates `dir` and missing parents with mode 0700; an existing directory is left as it is.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Makes a rename or a new directory entry in `dir` durable (a no-op where directories
/// cannot be synced).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Whether a file's permissions let group or others in (always false off Unix).
pub fn is_exposed(meta: &fs::Metadata) -> bool {
    mode(meta) & 0o077 != 0
}

fn mode(meta: &fs::Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o777
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        0o600
    }
}

/// How a secret file that others could read or replace is treated.
///
/// [`Warn`](Self::Warn) (the default, as the original server) logs a warning and uses the
/// file; [`Strict`](Self::Strict) refuses it with an [`UnsafeFile`] error naming the file,
/// what is wrong and the fix. Set it per application with `<APP>_STRICT_PERMISSIONS=1`
/// ([`from_lookup`](Self::from_lookup)), per component with an explicit setting, or for the
/// whole process with [`set_process_policy`]; the stricter of a component's policy and the
/// process-wide one applies.
///
/// ```
/// use private_fs::{AppName, PermissionPolicy};
///
/// let app = AppName::default();
/// assert_eq!(PermissionPolicy::var(&app), "SIMPLETUNER_STRICT_PERMISSIONS");
/// let lookup = |name: &str| (name == "SIMPLETUNER_STRICT_PERMISSIONS").then(|| "1".into());
/// assert_eq!(PermissionPolicy::from_lookup(&app, &lookup).unwrap(), PermissionPolicy::Strict);
/// assert_eq!(PermissionPolicy::from_lookup(&app, &|_| None).unwrap(), PermissionPolicy::Warn);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PermissionPolicy {
    /// Log a warning and use the file.
    #[default]
    Warn,
    /// Refuse the file (an error naming it), and log the problem at ERROR level.
    Strict,
}

/// The suffix of the variable that turns strict permissions on: `<APP>_STRICT_PERMISSIONS`.
pub const STRICT_PERMISSIONS_VAR_SUFFIX: &str = "STRICT_PERMISSIONS";

impl PermissionPolicy {
    /// The variable that selects the policy of `app`: `<APP>_STRICT_PERMISSIONS`.
    pub fn var(app: &AppName) -> String {
        app.var(STRICT_PERMISSIONS_VAR_SUFFIX)
    }

    /// The policy `<APP>_STRICT_PERMISSIONS` selects: `1`, `true`, `yes` or `on` (any case)
    /// is strict; unset, empty, `0`, `false`, `no` or `off` is the default warning; anything
    /// else is an error naming the variable (a typo must not silently turn the check off).
    pub fn from_lookup(
        app: &AppName,
        lookup: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Self, LocateError> {
        let variable = Self::var(app);
        let Some(value) = read_var(lookup, &variable)? else {
            return Ok(Self::Warn);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Self::Strict),
            "0" | "false" | "no" | "off" => Ok(Self::Warn),
            _ => Err(LocateError::InvalidValue {
                variable,
                expected: "1/true/yes/on or 0/false/no/off",
            }),
        }
    }

    /// The stricter of this policy and the process-wide one ([`process_policy`]).
    pub fn effective(self) -> Self {
        self.max(process_policy())
    }

    /// Checks a secret file as [`warn_if_unsafe`] does, under this policy (made at least as
    /// strict as the process-wide one): every problem is logged (a warning, or an error when
    /// strict), and when strict the first problem is returned as an error.
    pub fn check(self, path: &Path, meta: &fs::Metadata, what: &str) -> Result<(), UnsafeFile> {
        let strict = self.effective() == Self::Strict;
        let mut first = None;
        for problem in problems(path, meta, what) {
            if strict {
                tracing::error!(path = %problem.path.display(), "{}; strict permissions refuse it", problem.problem);
            } else {
                tracing::warn!(path = %problem.path.display(), "{}", problem.problem);
            }
            first.get_or_insert(problem);
        }
        match first {
            Some(problem) if strict => Err(problem),
            _ => Ok(()),
        }
    }
}

/// A secret file refused by the strict [`PermissionPolicy`]: which file, and what is wrong
/// with it (with the command that fixes it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {}: {problem}; strict permission mode refuses to use it", .what, .path.display())]
pub struct UnsafeFile {
    /// What the file is (`secrets file`, `credential key file`).
    pub what: String,
    /// The file, or its directory when the directory is the problem.
    pub path: PathBuf,
    /// What is wrong, and the fix.
    pub problem: String,
}

static PROCESS_STRICT: AtomicBool = AtomicBool::new(false);

/// Sets the policy of every check in this process that has no stricter policy of its own,
/// including [`warn_if_unsafe`] and [`warn_if_exposed`], whose callers cannot refuse a file
/// (they log the problem at ERROR level instead). A command-line tool sets it once at
/// startup from [`PermissionPolicy::from_lookup`].
pub fn set_process_policy(policy: PermissionPolicy) {
    PROCESS_STRICT.store(policy == PermissionPolicy::Strict, Ordering::Relaxed);
}

/// The process-wide policy ([`set_process_policy`]; [`PermissionPolicy::Warn`] by default).
pub fn process_policy() -> PermissionPolicy {
    if PROCESS_STRICT.load(Ordering::Relaxed) {
        PermissionPolicy::Strict
    } else {
        PermissionPolicy::Warn
    }
}

/// Logs a warning naming `what` and the path when the file is accessible by group or others
/// (at ERROR level under a strict process-wide policy; see [`PermissionPolicy::check`] to
/// refuse such a file).
pub fn warn_if_exposed(path: &Path, meta: &fs::Metadata, what: &str) {
    if let Some(problem) = exposure(path, meta, what) {
        log_unrefused(&problem);
    }
}

fn log_unrefused(problem: &UnsafeFile) {
    if process_policy() == PermissionPolicy::Strict {
        tracing::error!(path = %problem.path.display(), "{} (strict permission mode)", problem.problem);
    } else {
        tracing::warn!(path = %problem.path.display(), "{}", problem.problem);
    }
}

fn exposure(path: &Path, meta: &fs::Metadata, what: &str) -> Option<UnsafeFile> {
    is_exposed(meta).then(|| UnsafeFile {
        what: what.to_owned(),
        path: path.to_owned(),
        problem: format!(
            "{what} is accessible by group or others (mode {:o}); run chmod 600 on it",
            mode(meta)
        ),
    })
}

/// The effective user id (`None` off Unix).
pub(crate) fn effective_uid() -> Option<u32> {
    #[cfg(unix)]
    {
        Some(rustix::process::geteuid().as_raw())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Warns, as ssh's `StrictModes` refuses, about a secret file that others could read or
/// replace: readable by group or others; owned by another user; in a directory that is
/// writable by group or others or owned by another user (root excepted). `what` names the
/// file in the message (`secrets file`, `credential key file`). Under a strict process-wide
/// policy ([`set_process_policy`]) the problems are logged at ERROR level; to refuse the
/// file, use [`PermissionPolicy::check`].
pub fn warn_if_unsafe(path: &Path, meta: &fs::Metadata, what: &str) {
    for problem in problems(path, meta, what) {
        log_unrefused(&problem);
    }
}

/// Everything that lets others read or replace the file, in order of gravity.
fn problems(path: &Path, meta: &fs::Metadata, what: &str) -> Vec<UnsafeFile> {
    let mut found: Vec<UnsafeFile> = exposure(path, meta, what).into_iter().collect();
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let Some(me) = effective_uid() else {
            return found;
        };
        let problem = |path: &Path, problem: String| UnsafeFile {
            what: what.to_owned(),
            path: path.to_owned(),
            problem,
        };
        if me != 0 && meta.uid() != me {
            found.push(problem(
                path,
                format!("{what} is owned by another user (uid {})", meta.uid()),
            ));
        }
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        if let Ok(dir_meta) = fs::metadata(dir) {
            let sticky = dir_meta.mode() & 0o1000 != 0;
            if dir_meta.mode() & 0o022 != 0 && !sticky {
                found.push(problem(
                    dir,
                    format!(
                        "the directory of the {what} is writable by group or others (mode {:o}), who could replace the file; run chmod go-w on it",
                        dir_meta.mode() & 0o7777
                    ),
                ));
            }
            if dir_meta.uid() != me && dir_meta.uid() != 0 {
                found.push(problem(
                    dir,
                    format!(
                        "the directory of the {what} is owned by another user (uid {}), who could replace the file",
                        dir_meta.uid()
                    ),
                ));
            }
        }
    }
    found
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn exposure_follows_group_and_other_bits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, "x").unwrap();
        for (mode, exposed) in [(0o600, false), (0o640, true), (0o604, true), (0o400, false)] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(
                is_exposed(&fs::metadata(&path).unwrap()),
                exposed,
                "{mode:o}"
            );
        }
    }

    #[test]
    fn strict_policy_refuses_what_the_default_only_warns_about() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        fs::write(&path, "{}").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let meta = fs::metadata(&path).unwrap();
        PermissionPolicy::Warn
            .check(&path, &meta, "secrets file")
            .unwrap();
        let e = PermissionPolicy::Strict
            .check(&path, &meta, "secrets file")
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("secrets.json") && text.contains("chmod 600"),
            "{text}"
        );
        assert!(text.contains("strict"), "{text}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let meta = fs::metadata(&path).unwrap();
        PermissionPolicy::Strict
            .check(&path, &meta, "secrets file")
            .unwrap();
    }

    #[test]
    fn the_strict_variable_is_parsed_strictly() {
        let app = AppName::new("it").unwrap();
        for (value, expected) in [
            ("1", Some(PermissionPolicy::Strict)),
            ("TRUE", Some(PermissionPolicy::Strict)),
            ("on", Some(PermissionPolicy::Strict)),
            ("0", Some(PermissionPolicy::Warn)),
            ("off", Some(PermissionPolicy::Warn)),
            ("", Some(PermissionPolicy::Warn)),
            ("strict-ish", None),
        ] {
            let lookup = |name: &str| (name == "IT_STRICT_PERMISSIONS").then(|| value.into());
            let got = PermissionPolicy::from_lookup(&app, &lookup);
            match expected {
                Some(policy) => assert_eq!(got.unwrap(), policy, "{value}"),
                None => assert!(
                    got.unwrap_err()
                        .to_string()
                        .contains("IT_STRICT_PERMISSIONS"),
                    "{value}"
                ),
            }
        }
    }

    #[test]
    fn existing_directories_keep_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(dir.path()).unwrap();
        let mode = fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755);
        let nested = dir.path().join("a/b");
        create_private_dir(&nested).unwrap();
        for d in [dir.path().join("a"), nested] {
            assert_eq!(
                fs::metadata(&d).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        sync_dir(dir.path()).unwrap();
    }
}
