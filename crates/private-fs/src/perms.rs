//! Private permissions: 0700 directories, 0600 files from creation, exposure warnings.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::Path;

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

/// Logs a warning naming `what` and the path when the file is accessible by group or others.
pub fn warn_if_exposed(path: &Path, meta: &fs::Metadata, what: &str) {
    if is_exposed(meta) {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{:o}", mode(meta)),
            "{what} is accessible by group or others; run chmod 600 on it"
        );
    }
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
/// file in the message (`secrets file`, `credential key file`).
pub fn warn_if_unsafe(path: &Path, meta: &fs::Metadata, what: &str) {
    warn_if_exposed(path, meta, what);
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let Some(me) = effective_uid() else { return };
        if me != 0 && meta.uid() != me {
            tracing::warn!(
                path = %path.display(),
                owner = meta.uid(),
                "{what} is owned by another user"
            );
        }
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        if let Ok(dir_meta) = fs::metadata(dir) {
            let sticky = dir_meta.mode() & 0o1000 != 0;
            if dir_meta.mode() & 0o022 != 0 && !sticky {
                tracing::warn!(
                    path = %dir.display(),
                    mode = format_args!("{:o}", dir_meta.mode() & 0o7777),
                    "the directory of the {what} is writable by group or others, who could replace the file; run chmod go-w on it"
                );
            }
            if dir_meta.uid() != me && dir_meta.uid() != 0 {
                tracing::warn!(
                    path = %dir.display(),
                    owner = dir_meta.uid(),
                    "the directory of the {what} is owned by another user, who could replace the file"
                );
            }
        }
    }
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
