//! Reading a secret file without surprises.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use zeroize::Zeroizing;

/// What a path is, for messages: `a directory`, `a FIFO`, ...
pub(crate) fn kind_of(file_type: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// Reads a regular file of at most `max_len` bytes; `Ok(None)` when nothing is there.
///
/// Symbolic links are followed (a linked secrets file is normal), but the file must be a
/// regular file: a directory, FIFO, socket or device (a link to `/dev/zero`, say) is an error
/// at once, never a hang or an endless read. A dangling link is an error naming its target,
/// not an absent file. The buffer is wiped when dropped.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("k");
/// assert!(private_fs::read_regular_file(&path, 1024).unwrap().is_none());
/// std::fs::write(&path, "v").unwrap();
/// assert_eq!(private_fs::read_regular_file(&path, 1024).unwrap().unwrap().as_slice(), b"v");
/// assert!(private_fs::read_regular_file(dir.path(), 1024).is_err());
/// ```
pub fn read_regular_file(path: &Path, max_len: u64) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // A FIFO opened for reading would block until a writer appears.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return match fs::read_link(path) {
                Ok(target) => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "it is a symbolic link to {}, which does not exist",
                        target.display()
                    ),
                )),
                Err(_) => Ok(None),
            };
        }
        Err(e) => return Err(e),
    };
    // Checked on the open file, so a swap after a `stat` cannot fool it.
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {}, not a regular file", kind_of(&meta.file_type())),
        ));
    }
    if meta.len() > max_len {
        return Err(too_large(max_len));
    }
    read_bounded(file, max_len).map(Some)
}

fn too_large(max_len: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("it is larger than {max_len} bytes"),
    )
}

fn read_bounded(file: File, max_len: u64) -> io::Result<Zeroizing<Vec<u8>>> {
    let capacity = usize::try_from(file.metadata()?.len()).unwrap_or(0);
    let mut buffer = Zeroizing::new(Vec::with_capacity(capacity.saturating_add(1)));
    // One byte more than allowed tells a file that grew past the limit from one that fits.
    file.take(max_len + 1).read_to_end(&mut buffer)?;
    if buffer.len() as u64 > max_len {
        return Err(too_large(max_len));
    }
    Ok(buffer)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn fifos_devices_directories_and_dangling_links_fail_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        let started = std::time::Instant::now();
        for (path, needle) in [
            (&fifo, "a FIFO"),
            (&zero, "a device"),
            (&dir.path().to_owned(), "a directory"),
            (&dangling, "does not exist"),
        ] {
            let e = read_regular_file(path, 1024).unwrap_err();
            assert!(e.to_string().contains(needle), "{}: {e}", path.display());
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn links_to_regular_files_are_read_and_size_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::write(&real, "0123456789").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(read_regular_file(&link, 10).unwrap().unwrap().len(), 10);
        let e = read_regular_file(&link, 9).unwrap_err();
        assert!(e.to_string().contains("larger than 9 bytes"), "{e}");
    }
}
