//! Every file the tools create holding secrets (the secrets file and its lock, the credential
//! key, the configuration database and audit trail with their -wal/-shm files, the audit
//! key) is 0600 in 0700 directories, under the usual umask and under umask 000; a secrets or
//! key file that group or others can read is warned about, and refused in strict mode
//! (`SIMPLETUNER_STRICT_PERMISSIONS=1`), with the real binaries.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use integration_tests::reliability::report;
use support::{clean_command, config_writer, secrets_cli};

/// `program args...` run by `sh` after `umask <umask>`.
fn under_umask(
    umask: &str,
    program: &Path,
    home: &Path,
    env: &[(&str, String)],
    args: &[&str],
) -> Command {
    let mut cmd = clean_command(Path::new("/bin/sh"), home, env);
    cmd.arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(program)
        .args(args);
    cmd
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// Every file and directory under `root` (not `root` itself).
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            found.push(path);
        }
    }
    found.sort();
    found
}

/// Asserts the modes of everything under `home`; returns how many files were checked.
fn assert_private(home: &Path, umask: &str, must_exist: &[&str]) -> usize {
    let all = walk(home);
    for name in must_exist {
        assert!(
            all.contains(&home.join(name)),
            "umask {umask}: {name} was not created; found {all:?}"
        );
    }
    let mut files = 0;
    for path in &all {
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(
            mode(path),
            expected,
            "umask {umask}: {} has mode {:o}",
            path.display(),
            mode(path)
        );
        files += usize::from(!path.is_dir());
    }
    files
}

fn created_files_are_private_under(umask: &str) -> usize {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let cli = secrets_cli();
    let env = [
        (
            "SIMPLETUNER_SECRETS_FILE",
            home.join("a/b/secrets.json").display().to_string(),
        ),
        (
            "SIMPLETUNER_STATE_DIR",
            home.join("state").display().to_string(),
        ),
        // Unset (empty counts as unset): the tools create the key files.
        ("SIMPLETUNER_CREDENTIAL_KEY", String::new()),
        ("SIMPLETUNER_AUDIT_KEY", String::new()),
    ];
    let status = under_umask(umask, &cli, home, &env, &["set", "K", "v"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let out = under_umask(umask, &cli, home, &env, &["crypto", "encrypt"])
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A live store, so that the write-ahead logs exist while the modes are checked.
    let mut writer = under_umask(
        umask,
        &config_writer(),
        home,
        &env,
        &["replicate", "k", "0", "3", "hold"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(writer.stdout.take().unwrap()).lines();
    let holding = lines.find(|l| l.as_ref().is_ok_and(|l| l == "holding"));
    assert!(
        holding.is_some(),
        "the config writer did not get to `holding`"
    );
    let checked = assert_private(
        home,
        umask,
        &[
            "a/b/secrets.json",
            "a/b/.secrets.json.lock",
            ".simpletuner/credential.key",
            "state/cloud/jobs.db",
            "state/cloud/jobs.db-wal",
            "state/cloud/jobs.db-shm",
            "state/audit.db",
            "state/audit.key",
        ],
    );
    drop(writer.stdin.take());
    assert!(writer.wait().unwrap().success());
    checked
}

#[test]
fn every_file_the_tools_create_is_private_under_any_umask() {
    let default = created_files_are_private_under("022");
    let open = created_files_are_private_under("000");
    report(
        "permissions-created-files",
        "modes of every file and directory created by `secrets set`, `secrets crypto encrypt` and a live provider-config store (SQLite, with -wal/-shm, audit trail and audit key)",
        &format!(
            "umask 022: {default} files 0600, every directory 0700; umask 000: {open} files \
             0600, every directory 0700"
        ),
    );
}

/// Runs the CLI with `args`, returning (exit code, stdout, stderr).
fn cli(home: &Path, env: &[(&str, String)], args: &[&str]) -> (i32, String, String) {
    let out = clean_command(&secrets_cli(), home, env)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const SENTINEL: &str = "SENTINEL-perm-value-73";

#[test]
fn exposed_secret_files_warn_by_default_and_fail_in_strict_mode() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let file = home.join("secrets.json");
    std::fs::write(&file, format!(r#"{{"K": "{SENTINEL}"}}"#)).unwrap();
    let key_file = home.join(".simpletuner/credential.key");
    std::fs::create_dir_all(key_file.parent().unwrap()).unwrap();
    std::fs::write(&key_file, "SENTINEL-perm-passphrase-19\n").unwrap();
    let mut env = vec![
        ("SIMPLETUNER_SECRETS_FILE", file.display().to_string()),
        ("SIMPLETUNER_CREDENTIAL_KEY", String::new()),
    ];
    let mut cases = 0;
    for exposed in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(exposed)).unwrap();
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(exposed)).unwrap();
        env.truncate(2);
        let (code, stdout, stderr) = cli(home, &env, &["get", "K"]);
        assert_eq!((code, stdout.trim_end()), (0, SENTINEL), "{stderr}");
        assert!(
            stderr.contains("WARN")
                && stderr.contains("secrets file is accessible by group or others"),
            "{stderr}"
        );
        let (code, _, stderr) = cli(home, &env, &["crypto", "encrypt"]);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stderr.contains("credential key file is accessible by group or others"),
            "{stderr}"
        );

        env.push(("SIMPLETUNER_STRICT_PERMISSIONS", "1".to_owned()));
        let (code, stdout, stderr) = cli(home, &env, &["get", "K"]);
        assert_eq!(code, 3, "strict mode refuses the secrets file: {stderr}");
        assert!(stdout.is_empty());
        assert!(
            stderr.contains("secrets.json")
                && stderr.contains("chmod 600")
                && stderr.contains("strict"),
            "{stderr}"
        );
        let (code, _, stderr) = cli(home, &env, &["crypto", "encrypt"]);
        assert_eq!(code, 4, "strict mode refuses the key file: {stderr}");
        assert!(
            stderr.contains("credential.key") && stderr.contains("chmod 600"),
            "{stderr}"
        );
        for text in [&stderr, &stdout] {
            assert!(!text.contains("SENTINEL-perm"), "{text}");
        }
        cases += 4;
    }
    // Private again: strict mode accepts both.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, stdout, stderr) = cli(home, &env, &["get", "K"]);
    assert_eq!((code, stdout.trim_end()), (0, SENTINEL), "{stderr}");
    assert!(
        !stderr.contains("WARN") && !stderr.contains("ERROR"),
        "{stderr}"
    );
    let (code, _, stderr) = cli(home, &env, &["crypto", "encrypt"]);
    assert_eq!(code, 0, "{stderr}");
    // A value that is not a boolean is a usage error naming the variable.
    env.pop();
    env.push(("SIMPLETUNER_STRICT_PERMISSIONS", "sometimes".to_owned()));
    let (code, _, stderr) = cli(home, &env, &["get", "K"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("SIMPLETUNER_STRICT_PERMISSIONS"),
        "{stderr}"
    );
    report(
        "permissions-strict-mode",
        "group/world-readable secrets and key files (modes 644, 640, 604) with the real CLI, default and strict mode",
        &format!(
            "{cases} cases: a warning naming the file by default (exit 0); in strict mode \
             `get` exits 3 and `crypto encrypt` exits 4 with an error naming the file and \
             `chmod 600`; no value or passphrase in any output; accepted again once 0600"
        ),
    );
}

#[test]
fn strict_mode_reaches_checks_that_can_only_log() {
    // The configuration database is checked by provider-config through
    // `private_fs::warn_if_exposed`, which cannot refuse: in strict mode the CLI makes it
    // log at ERROR level.
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let env = vec![(
        "SIMPLETUNER_STATE_DIR",
        home.join("state").display().to_string(),
    )];
    let (code, _, stderr) = cli(home, &env, &["config", "set", "modal", "{}"]);
    assert_eq!(code, 0, "{stderr}");
    let db = home.join("state/cloud/jobs.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, stderr) = cli(home, &env, &["config", "get", "modal"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("WARN") && stderr.contains("jobs.db"),
        "{stderr}"
    );
    let mut strict = env.clone();
    strict.push(("SIMPLETUNER_STRICT_PERMISSIONS", "1".to_owned()));
    let (_, _, stderr) = cli(home, &strict, &["config", "get", "modal"]);
    assert!(
        stderr.contains("ERROR") && stderr.contains("jobs.db"),
        "{stderr}"
    );
}
