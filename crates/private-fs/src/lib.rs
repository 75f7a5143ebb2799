//! The one place where the secrets toolkit decides where secret files live and how they are
//! written. Every crate that touches secret material (the secrets file, the credential key,
//! the configuration database) uses it and keeps no copy of its own.
//!
//! - **Names and places** ([`AppName`], [`home_dir`], [`app_dir`], [`state_dir`],
//!   [`expand_home`], [`read_var`]): the application name is validated (no path separators),
//!   `<APP>_` variable names follow one rule, the home directory falls back to the passwd
//!   entry when `HOME` is unset (as Python's `Path.home()`), and configuration variables that
//!   are empty count as unset while non-UTF-8 ones are an error.
//! - **Permissions** ([`create_private_dir`], [`private_options`], [`warn_if_unsafe`],
//!   [`PermissionPolicy`]): directories are created 0700 and files 0600 from creation, so
//!   there is no moment at which others can read a new file; a secret file others could read
//!   or replace is warned about, or refused in strict mode (`<APP>_STRICT_PERMISSIONS=1`).
//! - **Writes** ([`write_atomic`], [`create_new`], [`LockFile`], [`temp_path`]): replacing a
//!   file goes through a private temporary file in the same directory, fsync, rename and a
//!   directory fsync, so a reader or a crash sees the old or the new content, never a mix;
//!   creating a file that must not be overwritten publishes it complete with a hard link;
//!   lock files are opened without following symlinks.
//! - **Async** (feature `tokio`): [`unblock`] runs blocking file work on tokio's blocking pool.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("app").join("token");
//! private_fs::write_atomic(&path, b"s3cr3t").unwrap();
//! assert_eq!(std::fs::read(&path).unwrap(), b"s3cr3t");
//! # #[cfg(unix)] {
//! use std::os::unix::fs::PermissionsExt;
//! assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
//! assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod lock;
mod names;
mod perms;
mod read;
#[cfg(feature = "tokio")]
mod unblock;
mod write;

pub use lock::{LockFile, lock_path};
pub use names::{
    AppName, DEFAULT_APP_NAME, InvalidAppName, LocateError, app_dir, expand_home, home_dir,
    read_var, state_dir,
};
pub use perms::{
    PermissionPolicy, STRICT_PERMISSIONS_VAR_SUFFIX, UnsafeFile, create_private_dir, is_exposed,
    private_options, process_policy, set_process_policy, sync_dir, warn_if_exposed, warn_if_unsafe,
};
pub use read::{file_kind, read_regular_file};
#[cfg(feature = "tokio")]
pub use unblock::unblock;
pub use write::{
    Created, create_new, create_temp, is_temp_of, remove_dead_temps, resolve_link, stale_temps,
    temp_path, write_atomic,
};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
