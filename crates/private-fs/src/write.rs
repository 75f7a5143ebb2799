//! Atomic replace, create-new, and the one temp-file naming scheme.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{create_private_dir, private_options, sync_dir};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How many names [`create_temp`] tries before giving up.
const TEMP_ATTEMPTS: usize = 16;

pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "file".to_owned(), |n| n.to_string_lossy().into_owned())
}

/// A fresh temporary path next to `target`: `.<name>.<pid>.<n>.tmp` in the same directory,
/// so that a rename onto `target` stays on one file system. The process id lets a later
/// writer tell the temp files of dead processes from those of live ones ([`is_temp_of`]).
pub fn temp_path(target: &Path) -> PathBuf {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    parent_dir(target).join(format!(
        ".{}.{}.{n}.tmp",
        file_name(target),
        std::process::id()
    ))
}

/// If `candidate` (a file name) is a temporary file of [`temp_path`] for `target`, the
/// process id that made it.
///
/// ```
/// let target = std::path::Path::new("/d/secrets.json");
/// let temp = private_fs::temp_path(target);
/// let name = temp.file_name().unwrap().to_str().unwrap();
/// assert_eq!(private_fs::is_temp_of(target, name), Some(std::process::id()));
/// assert_eq!(private_fs::is_temp_of(target, ".other.json.1.2.tmp"), None);
/// ```
pub fn is_temp_of(target: &Path, candidate: &str) -> Option<u32> {
    let rest = candidate
        .strip_prefix('.')?
        .strip_prefix(file_name(target).as_str())?
        .strip_prefix('.')?
        .strip_suffix(".tmp")?;
    let (pid, counter) = rest.split_once('.')?;
    counter.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Creates a new private (0600) temporary file next to `target`, never reusing an existing
/// name. The caller writes it and renames or removes it.
pub fn create_temp(target: &Path) -> io::Result<(PathBuf, File)> {
    let mut attempt = 0;
    loop {
        let path = temp_path(target);
        match private_options().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < TEMP_ATTEMPTS => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Writes `bytes` to a new temporary file next to `target` and syncs it; on failure the
/// temporary file is removed.
fn write_temp(target: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    let (temp, mut file) = create_temp(target)?;
    match file.write_all(bytes).and_then(|()| file.sync_all()) {
        Ok(()) => Ok(temp),
        Err(e) => {
            let _ = fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// The file a write to `path` should replace: `path` itself, or, when `path` is a symbolic
/// link, the file it points to (so the link stays a link and its target is updated, as the
/// original server's plain `open(path, "w")` did). A dangling link is an error: writing would
/// create a file wherever the link points.
pub fn resolve_link(path: &Path) -> io::Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                let target = fs::read_link(path)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "it is a symbolic link to {target}, which does not exist; nothing was written"
                    ),
                )
            } else {
                e
            }
        }),
        _ => Ok(path.to_owned()),
    }
}

/// Replaces `path` with `bytes` atomically: a private temporary file in the same directory
/// is written, fsynced and renamed over `path`, then the directory is fsynced. Readers see
/// the old or the new content, never a mix, and a crash leaves one of the two. Missing
/// directories are created 0700; the new file is 0600.
///
/// When `path` is a symbolic link, its target is replaced (in the target's directory) and
/// the link stays ([`resolve_link`]). When the file exists and belongs to another user (root
/// updating a user's file), the new file gets the old owner and group.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let target = resolve_link(path)?;
    let dir = parent_dir(&target);
    create_private_dir(dir)?;
    let temp = write_temp(&target, bytes)?;
    let result = keep_owner(&target, &temp).and_then(|()| fs::rename(&temp, &target));
    if let Err(e) = result {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Gives `temp` the owner and group of the existing `target`, when they differ (only root
/// can; for anyone else an existing file of another user is replaced by one of their own).
fn keep_owner(target: &Path, temp: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let (Ok(old), Ok(new)) = (fs::metadata(target), fs::metadata(temp)) else {
            return Ok(());
        };
        if (old.uid(), old.gid()) != (new.uid(), new.gid())
            && crate::perms::effective_uid() == Some(0)
        {
            std::os::unix::fs::chown(temp, Some(old.uid()), Some(old.gid()))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (target, temp);
    Ok(())
}

/// Temporary files of [`temp_path`] for `target` that exist now. A writer that holds the
/// target's [`LockFile`](crate::LockFile) knows every one of them was left by a writer that
/// died (writers create them only under the lock), and removes them: they may hold an old
/// copy of every secret.
pub fn stale_temps(target: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = parent_dir(target);
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(name) = entry.file_name().to_str()
            && is_temp_of(target, name).is_some()
        {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

/// Removes the temporary files of `target` whose writer process no longer exists (a
/// creator killed between writing its copy and linking it, or between linking it and
/// removing it). Creators take no lock, so only the temp files of dead processes are known
/// to be abandoned; they may hold a copy of a key. [`create_new`] calls it; a reader of a
/// file made by `create_new` calls it too, as the file exists then and nothing is created.
/// Failures leave them for the next call.
pub fn remove_dead_temps(target: &Path) {
    let Ok(temps) = stale_temps(target) else {
        return;
    };
    for temp in temps {
        let pid = temp
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| is_temp_of(target, n));
        if pid.is_some_and(|pid| pid != std::process::id() && !process_exists(pid))
            && fs::remove_file(&temp).is_ok()
        {
            tracing::warn!(
                path = %temp.display(),
                "removed a temporary file left by an interrupted file creation"
            );
        }
    }
}

/// Whether a process with this id exists (a signal-0 probe; "not permitted" means it does).
fn process_exists(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return false;
        };
        !matches!(
            rustix::process::test_kill_process(pid),
            Err(rustix::io::Errno::SRCH)
        )
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// What [`create_new`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// This call created the file with the given content.
    Ours,
    /// The file existed already (possibly created by a concurrent process); it was left as is.
    Existing,
}

/// Creates `path` with `bytes` unless it exists, never overwriting: the content goes to a
/// private temporary file, is synced, and is hard-linked to `path`, which either creates
/// `path` complete or fails because it exists. No reader ever sees a half-written file, and
/// of several processes racing, exactly one creates it. Missing directories are created 0700.
///
/// ```
/// use private_fs::{Created, create_new};
///
/// let dir = tempfile::tempdir().unwrap();
/// let key = dir.path().join("credential.key");
/// assert_eq!(create_new(&key, b"first").unwrap(), Created::Ours);
/// assert_eq!(create_new(&key, b"second").unwrap(), Created::Existing);
/// assert_eq!(std::fs::read(&key).unwrap(), b"first");
/// ```
pub fn create_new(path: &Path, bytes: &[u8]) -> io::Result<Created> {
    let dir = parent_dir(path);
    create_private_dir(dir)?;
    remove_dead_temps(path);
    let temp = write_temp(path, bytes)?;
    let result = match fs::hard_link(&temp, path) {
        Ok(()) => {
            // Best effort: the file is already complete under its name.
            let _ = sync_dir(dir);
            Ok(Created::Ours)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Created::Existing),
        Err(e) => Err(e),
    };
    let _ = fs::remove_file(&temp);
    result
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn write_atomic_replaces_privately_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/dir/s.json");
        write_atomic(&path, b"one").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(mode(&path), 0o600, "the replacement is private again");
        assert!(leftovers(path.parent().unwrap()).is_empty());
    }

    #[test]
    fn a_failed_replace_keeps_the_old_content_and_removes_the_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory in the way of the rename.
        let path = dir.path().join("s.json");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inner"), "keep").unwrap();
        assert!(write_atomic(&path, b"new").is_err());
        assert_eq!(fs::read_to_string(path.join("inner")).unwrap(), "keep");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn writes_go_through_links_and_dangling_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real_dir = dir.path().join("real");
        fs::create_dir(&real_dir).unwrap();
        let real = real_dir.join("s.json");
        fs::write(&real, "old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&real).unwrap(), b"new");
        assert!(leftovers(&real_dir).is_empty() && leftovers(dir.path()).is_empty());

        let dangling = dir.path().join("dangling.json");
        std::os::unix::fs::symlink(dir.path().join("nowhere/x.json"), &dangling).unwrap();
        let e = write_atomic(&dangling, b"x").unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(!dir.path().join("nowhere").exists());
    }

    #[test]
    fn root_keeps_the_owner_of_a_file_it_rewrites() {
        use std::os::unix::fs::MetadataExt;
        if crate::perms::effective_uid() != Some(0) {
            // Only root can give a file away; for other users there is nothing to keep.
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        fs::write(&path, "old").unwrap();
        std::os::unix::fs::chown(&path, Some(4321), Some(4322)).unwrap();
        write_atomic(&path, b"new").unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (4321, 4322));
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn stale_temps_are_listed_for_their_target_only() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("s.json");
        let mine = dir.path().join(".s.json.999999.1.tmp");
        fs::write(&mine, "old secrets").unwrap();
        fs::write(dir.path().join(".other.json.1.1.tmp"), "x").unwrap();
        assert_eq!(stale_temps(&target).unwrap(), [mine]);
        assert!(
            stale_temps(&dir.path().join("none/s.json"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn create_new_has_exactly_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let winners: Vec<Created> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let path = &path;
                    s.spawn(move || create_new(path, format!("key-{i}").as_bytes()).unwrap())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(winners.iter().filter(|c| **c == Created::Ours).count(), 1);
        assert!(fs::read_to_string(&path).unwrap().starts_with("key-"));
        assert_eq!(mode(&path), 0o600);
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn create_new_removes_the_temp_files_of_dead_creators_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credential.key");
        // A process id that cannot exist (above the kernel's maximum), and a live one.
        let dead = dir.path().join(".credential.key.2147483000.0.tmp");
        let alive = dir
            .path()
            .join(format!(".credential.key.{}.99.tmp", std::process::id()));
        fs::write(&dead, "unpublished key").unwrap();
        fs::write(&alive, "in progress").unwrap();
        assert_eq!(create_new(&path, b"k").unwrap(), Created::Ours);
        assert!(!dead.exists(), "the dead creator's copy is removed");
        assert!(alive.exists(), "a live creator's copy is left alone");
    }

    #[test]
    fn temp_names_are_recognised_only_for_their_target() {
        let target = Path::new("/x/secrets.json");
        assert_eq!(is_temp_of(target, ".secrets.json.42.7.tmp"), Some(42));
        for other in [
            ".secrets.json.42.tmp",
            ".secrets.json.x.7.tmp",
            ".secrets.yaml.42.7.tmp",
            "secrets.json.42.7.tmp",
            ".secrets.json.42.7.tmpx",
        ] {
            assert_eq!(is_temp_of(target, other), None, "{other}");
        }
    }
}
