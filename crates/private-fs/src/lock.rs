//! Advisory lock files.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::private_options;
use crate::write::{file_name, parent_dir};

/// The side lock file of `target`: `.<name>.lock` beside it.
pub fn lock_path(target: &Path) -> PathBuf {
    parent_dir(target).join(format!(".{}.lock", file_name(target)))
}

/// An exclusive advisory lock held on a side file (for example `.secrets.json.lock`) for as
/// long as the value lives. Locking the protected file itself would not work: an atomic
/// replace swaps its inode.
///
/// The lock file is created 0600 and opened without following a symlink, so a link planted
/// at its path cannot make a writer create or truncate a file elsewhere.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let lock = private_fs::LockFile::acquire(&dir.path().join(".s.lock")).unwrap();
/// assert!(lock.path().exists());
/// drop(lock); // released
/// ```
#[derive(Debug)]
pub struct LockFile {
    path: PathBuf,
    // Held for its lock; closing the descriptor releases it.
    _file: File,
}

impl LockFile {
    /// Opens (creating if needed) and locks `path`, waiting for other holders.
    pub fn acquire(path: &Path) -> io::Result<Self> {
        let mut options = private_options();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.custom_flags(libc::O_NOFOLLOW);
        }
        let file = options.open(path)?;
        file.lock()?;
        Ok(Self {
            path: path.to_owned(),
            _file: file,
        })
    }

    /// Locks the side file of `target`: `.<name>.lock` in the same directory. Writers of one
    /// file agree on its lock this way; the lock outlives atomic replacements of `target`.
    pub fn for_file(target: &Path) -> io::Result<Self> {
        Self::acquire(&lock_path(target))
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_at_the_lock_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join(".s.lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(LockFile::acquire(&link).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }

    #[test]
    fn a_file_lock_lives_beside_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let lock = LockFile::for_file(&dir.path().join("secrets.json")).unwrap();
        assert_eq!(lock.path(), dir.path().join(".secrets.json.lock"));
    }

    #[test]
    fn the_lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".l.lock");
        let held = LockFile::acquire(&path).unwrap();
        let other = File::open(&path).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(held);
        other.try_lock().unwrap();
    }
}
