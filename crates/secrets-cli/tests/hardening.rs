//! The `secrets` binary against hostile or unusual files and input, and the rough edges of a
//! one-shot CLI: each test here failed before the hardening work and passes now.

mod common;

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Run, Sandbox, finish, json};

const SENTINEL: &str = "Zq7SENTINELvK3";

fn is_root() -> bool {
    let probe = tempfile::NamedTempFile::new().unwrap();
    fs::metadata(probe.path()).unwrap().uid() == 0
}

fn no_leak(r: &Run, what: &str) {
    for (stream, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        assert!(
            !text.contains(SENTINEL) && !text.contains("SENTINEL"),
            "{what}: the value reached {stream}: {text}"
        );
    }
}

#[test]
fn a_rejected_scalar_never_reaches_a_message() {
    let sb = Sandbox::new();
    for content in [
        format!("K: !!int {SENTINEL}\n"),
        format!("K: !!float {SENTINEL}\nOTHER2: x\n"),
        format!("K: !!bool {SENTINEL}\n"),
        format!("K: [!!int {SENTINEL}]\n"),
        format!("K:\n  nested: !!int {SENTINEL}\n"),
    ] {
        sb.write("secrets.yaml", &content);
        for args in [
            vec!["-vvv", "get", "OTHER"],
            vec!["-vvv", "get", "K"],
            vec!["-vvv", "get", "K", "--json"],
            vec!["-vvv", "doctor"],
            vec!["-vvv", "doctor", "--json"],
            vec!["-vvv", "set", "X", "y"],
            vec!["-vvv", "delete", "X"],
        ] {
            let r = sb.run(&args, &[]);
            no_leak(&r, &format!("{args:?} on {content:?}"));
        }
        // Another key still works, and the file is reported, not silently accepted.
        assert_eq!(sb.run(&["get", "OTHER"], &[]).code, 1);
        let r = sb.run(&["get", "K"], &[]);
        assert_eq!(r.code, 3, "{}", r.stderr);
        assert!(r.stderr.contains("line 1"), "{}", r.stderr);
        assert_eq!(sb.run(&["doctor"], &[]).code, 3);
    }
}

#[test]
fn an_unreadable_directory_is_a_provider_failure_not_an_absent_key() {
    let sb = Sandbox::new();
    sb.write("secrets.json", r#"{"K": "v"}"#);
    let as_other_user = is_root();
    if as_other_user {
        // Root reads everything: run the binary as `nobody` instead, with a HOME it can
        // enter but a ~/.simpletuner (root's, 0700) it cannot.
        fs::set_permissions(sb.home.path(), fs::Permissions::from_mode(0o755)).unwrap();
    } else {
        fs::set_permissions(sb.app_dir(), fs::Permissions::from_mode(0o000)).unwrap();
    }
    let run = |args: &[&str]| {
        let mut cmd = sb.command(args, &[]);
        if as_other_user {
            use std::os::unix::process::CommandExt;
            cmd.uid(65534).gid(65534);
        }
        finish(cmd.stdin(Stdio::null()).output().unwrap())
    };
    let r = run(&["get", "K"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("permission denied"), "{}", r.stderr);
    let r = run(&["get", "K", "--default", "d"]);
    assert_eq!(r.code, 3, "--default must not hide it: {}", r.stdout);
    let r = run(&["doctor", "--json"]);
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert_eq!(json(&r)["healthy"], false);
    fs::set_permissions(sb.app_dir(), fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn special_files_fail_at_once_and_nothing_is_overwritten() {
    let sb = Sandbox::new();
    sb.write("placeholder", "");
    let path = sb.app_dir().join("secrets.json");
    let fifo = || {
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&path)
                .status()
                .unwrap()
                .success()
        );
    };
    type Make<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, Make<'_>)> = vec![
        ("a directory", Box::new(|| fs::create_dir(&path).unwrap())),
        ("a FIFO", Box::new(fifo)),
        (
            "a device",
            Box::new(|| std::os::unix::fs::symlink("/dev/zero", &path).unwrap()),
        ),
        (
            "does not exist",
            Box::new(|| std::os::unix::fs::symlink(sb.app_dir().join("gone.json"), &path).unwrap()),
        ),
    ];
    for (needle, make) in cases {
        make();
        let started = Instant::now();
        for args in [
            ["get", "K"].as_slice(),
            &["set", "K", "v"],
            &["delete", "K"],
        ] {
            let r = sb.run(args, &[]);
            assert_eq!(r.code, 3, "{needle} {args:?}: {}", r.stderr);
            assert!(r.stderr.contains(needle), "{needle} {args:?}: {}", r.stderr);
        }
        let r = sb.run(&["doctor"], &[]);
        assert_eq!(r.code, 3, "{needle}: {}", r.stdout);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{needle}: too slow"
        );
        assert!(
            !sb.app_dir().join("gone.json").exists(),
            "a dangling link was followed"
        );
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(!meta.is_file(), "{needle}: replaced by a regular file");
        if meta.is_dir() {
            fs::remove_dir(&path).unwrap();
        } else {
            fs::remove_file(&path).unwrap();
        }
    }
    // The key file too.
    let key = sb.app_dir().join("credential.key");
    std::os::unix::fs::symlink("/dev/zero", &key).unwrap();
    let started = Instant::now();
    let r = sb.run_with_stdin(&["crypto", "encrypt"], &[], "x");
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("a device"), "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_symlinked_secrets_file_is_written_through() {
    let sb = Sandbox::new();
    let real_dir = sb.home.path().join("vault-dir");
    fs::create_dir(&real_dir).unwrap();
    let real = real_dir.join("real.json");
    fs::write(&real, r#"{"OLD": "1"}"#).unwrap();
    sb.write("placeholder", "");
    let link = sb.app_dir().join("secrets.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let r = sb.run(&["set", "NEW", "2"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let text = fs::read_to_string(&real).unwrap();
    assert!(
        text.contains("\"NEW\"") && text.contains("\"OLD\""),
        "{text}"
    );
    assert_eq!(sb.run(&["get", "NEW"], &[]).stdout, "2\n");
}

#[test]
fn leftover_temp_files_are_reported_and_removed_by_the_next_write() {
    let sb = Sandbox::new();
    sb.write("secrets.json", r#"{"K": "v"}"#);
    let leftover = sb.app_dir().join(".secrets.json.999999.0.tmp");
    fs::write(&leftover, format!(r#"{{"DELETED": "{SENTINEL}"}}"#)).unwrap();
    let r = sb.run(&["doctor"], &[]);
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(r.stdout.contains("temporary file"), "{}", r.stdout);
    no_leak(&r, "doctor");
    let r = sb.run(&["set", "K", "w"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!leftover.exists(), "the next write removes it");
    assert_eq!(sb.run(&["doctor"], &[]).code, 0);
}

#[test]
fn killed_writers_leave_nothing_after_the_next_write() {
    let sb = Sandbox::new();
    // A large file makes each write take long enough to be killed in the middle.
    let big: String = (0..12_000)
        .map(|i| format!("  \"K{i}\": \"{}\",\n", "x".repeat(40)))
        .collect();
    sb.write("secrets.json", &format!("{{\n{big}  \"LAST\": \"v\"\n}}\n"));
    for round in 0..15u64 {
        let mut child = sb
            .command(&["set", "ROUND", &round.to_string()], &[])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(2 + (round * 7) % 40));
        let _ = child.kill();
        let _ = child.wait();
        // Whatever happened, the file is whole.
        let r = sb.run(&["get", "LAST"], &[]);
        assert_eq!((r.code, r.stdout.as_str()), (0, "v\n"), "{}", r.stderr);
    }
    assert_eq!(sb.run(&["set", "AFTER", "1"], &[]).code, 0);
    let temps: Vec<_> = fs::read_dir(sb.app_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
}

#[test]
fn root_keeps_the_owner_of_a_users_secrets_file() {
    if !is_root() {
        // Only root can write a file for another user; nothing to check otherwise.
        return;
    }
    let sb = Sandbox::new();
    let path = sb.write("secrets.json", r#"{"K": "v"}"#);
    std::os::unix::fs::chown(&path, Some(4321), Some(4322)).unwrap();
    assert_eq!(sb.run(&["set", "K", "w"], &[]).code, 0);
    let meta = fs::metadata(&path).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (4321, 4322));
    assert_eq!(meta.mode() & 0o777, 0o600);
}

#[test]
fn risky_permissions_are_warned_about() {
    let sb = Sandbox::new();
    sb.write("secrets.json", r#"{"K": "v"}"#);
    fs::set_permissions(sb.app_dir(), fs::Permissions::from_mode(0o777)).unwrap();
    let r = sb.run(&["get", "K"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("writable by group or others"),
        "{}",
        r.stderr
    );
}

#[test]
fn reads_and_writes_accept_and_refuse_the_same_files() {
    let sb = Sandbox::new();
    // Refused by both, reported by doctor.
    for (content, needle) in [
        ("A: 1\nA: 2\n", "appears twice"),
        ("A: 1\n---\nB: 2\n", "more than one YAML document"),
        (
            &format!("K: {}{}\n", "[".repeat(100), "]".repeat(100)),
            "nested",
        ),
    ] {
        let path = sb.write("secrets.yaml", content);
        let r = sb.run(&["get", "A"], &[]);
        assert_eq!(r.code, 3, "{content:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{content:?}: {}", r.stderr);
        let r = sb.run(&["set", "B", "v"], &[]);
        assert_eq!(r.code, 3, "{content:?}: {}", r.stderr);
        assert_eq!(fs::read_to_string(&path).unwrap(), content, "untouched");
        let r = sb.run(&["doctor"], &[]);
        assert_eq!(r.code, 3, "{content:?}");
        assert!(r.stdout.contains(needle), "{content:?}: {}", r.stdout);
    }
    // Accepted by both: a top-level null, an alias bomb.
    sb.write("secrets.yaml", "~\n");
    assert_eq!(sb.run(&["get", "A"], &[]).code, 1);
    assert_eq!(sb.run(&["set", "A", "v"], &[]).code, 0);
    assert_eq!(sb.run(&["get", "A"], &[]).stdout, "v\n");
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..20 {
        let p = if i == 1 {
            "a".to_owned()
        } else {
            format!("l{}", i - 1)
        };
        bomb.push_str(&format!(
            "l{i}: &l{i} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        ));
    }
    sb.write("secrets.yaml", &bomb);
    let started = Instant::now();
    assert_eq!(sb.run(&["set", "K", "v"], &[]).code, 0);
    assert_eq!(sb.run(&["get", "K"], &[]).stdout, "v\n");
    assert_eq!(
        sb.run(&["doctor"], &[]).code,
        3,
        "the collection values are reported"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_huge_file_of_brackets_is_refused_quickly() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", &format!("K: {}", "[".repeat(500_000)));
    let started = Instant::now();
    let r = sb.run(&["get", "K"], &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    sb.write("secrets.json", &format!("{{\"K\": {}", "[".repeat(500_000)));
    let started = Instant::now();
    assert_eq!(sb.run(&["get", "K"], &[]).code, 3);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn yaml_keys_that_look_like_numbers_are_one_key_for_reads_and_writes() {
    let sb = Sandbox::new();
    let path = sb.write("secrets.yaml", "123: OLD\ntrue: yes\n");
    assert_eq!(sb.run(&["get", "123"], &[]).stdout, "OLD\n");
    assert_eq!(sb.run(&["set", "123", "NEW"], &[]).code, 0);
    assert_eq!(sb.run(&["get", "123"], &[]).stdout, "NEW\n");
    assert_eq!(
        fs::read_to_string(&path).unwrap().matches("123").count(),
        1,
        "no second entry"
    );
    let r = sb.run(&["delete", "123"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        sb.run(&["get", "123"], &[]).code,
        1,
        "a deleted secret is gone"
    );
    assert_eq!(sb.run(&["get", "true"], &[]).stdout, "yes\n");
}

#[test]
fn json_numbers_are_kept_exactly_through_reads_and_rewrites() {
    let sb = Sandbox::new();
    let path = sb.write(
        "secrets.json",
        "{\n  \"BIG\": 123456789012345678901,\n  \"F\": 1.10\n}\n",
    );
    assert_eq!(
        sb.run(&["get", "BIG"], &[]).stdout,
        "123456789012345678901\n"
    );
    assert_eq!(sb.run(&["get", "F"], &[]).stdout, "1.10\n");
    assert_eq!(sb.run(&["set", "OTHER", "x"], &[]).code, 0);
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("123456789012345678901") && text.contains("1.10"),
        "{text}"
    );
}

#[test]
fn non_utf8_configuration_variables_are_errors() {
    let sb = Sandbox::new();
    let bad = || OsString::from_vec(vec![b'/', 0xff, b'x']);
    let run = |args: &[&str], var: &str, stdin: &str| {
        let mut child = sb
            .command(args, &[])
            .env(var, bad())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        finish(child.wait_with_output().unwrap())
    };
    let r = run(&["get", "K"], "SIMPLETUNER_SECRETS_FILE", "");
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("SIMPLETUNER_SECRETS_FILE") && r.stderr.contains("UTF-8"));
    for var in [
        "SIMPLETUNER_CREDENTIAL_KEY",
        "SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS",
    ] {
        let r = run(&["crypto", "encrypt"], var, "x");
        assert_eq!(r.code, 4, "{var}: {}", r.stderr);
        assert!(
            r.stderr.contains(var) && r.stderr.contains("UTF-8"),
            "{}",
            r.stderr
        );
        assert!(
            !sb.app_dir().join("credential.key").exists(),
            "{var}: no key was generated"
        );
    }
}

#[test]
fn null_values_count_as_missing_and_the_chain_goes_on() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", "K: null\nE: ~\n");
    let r = sb.run(&["get", "K"], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    // The env provider comes first anyway; with the file first, the env answers.
    let r = sb.run(
        &["--providers", "file,env", "get", "E"],
        &[("E", "from-env")],
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "from-env\n"),
        "{}",
        r.stderr
    );
}

#[test]
fn delete_without_a_secrets_file_creates_nothing() {
    let sb = Sandbox::new();
    let r = sb.run(&["delete", "K"], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let entries: Vec<_> = fs::read_dir(sb.home.path()).unwrap().collect();
    assert!(entries.is_empty(), "{entries:?}");
}

#[test]
fn a_tilde_in_a_configured_path_is_expanded() {
    let sb = Sandbox::new();
    fs::write(sb.home.path().join("custom.json"), r#"{"K": "custom"}"#).unwrap();
    let r = sb.run(
        &["get", "K"],
        &[("SIMPLETUNER_SECRETS_FILE", "~/custom.json")],
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, "custom\n"), "{}", r.stderr);
    let r = sb.run(&["get", "K", "--secrets-file", "~/custom.json"], &[]);
    assert_eq!(r.stdout, "custom\n", "{}", r.stderr);
}

#[test]
fn set_on_a_terminal_prompts_without_echo() {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let sb = Sandbox::new();
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    let mut child = sb
        .command(&["set", "TTY_KEY"], &[])
        .stdin(slave.try_clone().unwrap())
        .stdout(Stdio::null())
        .stderr(slave)
        .spawn()
        .unwrap();
    let mut master = fs::File::from(master);
    // Wait for the prompt (echo is off by then), then type the value.
    let mut seen = Vec::new();
    let started = Instant::now();
    while !String::from_utf8_lossy(&seen).contains("input hidden") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no prompt: {seen:?}"
        );
        let mut buf = [0u8; 256];
        let n = master.read(&mut buf).unwrap();
        seen.extend_from_slice(&buf[..n]);
    }
    master
        .write_all(format!("{SENTINEL}\n").as_bytes())
        .unwrap();
    let status = child.wait().unwrap();
    // Drain what the terminal showed after the prompt.
    let mut rest = [0u8; 4096];
    if let Ok(n) = master.read(&mut rest) {
        seen.extend_from_slice(&rest[..n]);
    }
    assert!(status.success());
    let shown = String::from_utf8_lossy(&seen);
    assert!(!shown.contains(SENTINEL), "the value was echoed: {shown}");
    assert_eq!(
        sb.run(&["get", "TTY_KEY"], &[]).stdout,
        format!("{SENTINEL}\n")
    );
}

#[test]
fn keys_are_checked_and_escaped_in_messages() {
    let sb = Sandbox::new();
    let r = sb.run(&["set", "", "v"], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("the key is empty"), "{}", r.stderr);
    let r = sb.run(&["get", "evil\nsecrets: forged line"], &[]);
    assert_eq!(r.code, 1);
    assert!(!r.stderr.contains("\nsecrets: forged"), "{}", r.stderr);
    assert!(
        r.stderr.contains("evil\\nsecrets: forged line"),
        "{}",
        r.stderr
    );
}

#[test]
fn get_json_reports_a_provider_failure_on_stdout() {
    let sb = Sandbox::new();
    sb.write("secrets.json", "{broken");
    let r = sb.run(&["get", "K", "--json"], &[]);
    assert_eq!(r.code, 3);
    let doc = json(&r);
    assert_eq!(doc["found"], false);
    assert_eq!(doc["key"], "K");
    assert!(
        doc["error"].as_str().unwrap().contains("malformed"),
        "{doc}"
    );
}

#[test]
fn crypto_decrypt_of_non_utf8_input_exits_4() {
    let sb = Sandbox::new();
    let mut child = sb
        .command(
            &["crypto", "decrypt"],
            &[("SIMPLETUNER_CREDENTIAL_KEY", "k")],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&[0xff, 0xfe, b'x'])
        .unwrap();
    let r = finish(child.wait_with_output().unwrap());
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("UTF-8"), "{}", r.stderr);
}

#[test]
fn stderr_is_plain_and_a_failure_is_said_once() {
    let sb = Sandbox::new();
    sb.write("secrets.json", "{broken");
    let r = sb.run(&["get", "K"], &[]);
    assert_eq!(r.code, 3);
    assert!(
        !r.stderr.contains('\u{1b}'),
        "no colours off a terminal: {:?}",
        r.stderr
    );
    assert!(
        !r.stderr.chars().take(4).all(|c| c.is_ascii_digit()),
        "no timestamps: {}",
        r.stderr
    );
    assert_eq!(
        r.stderr.matches("malformed content").count(),
        1,
        "{}",
        r.stderr
    );
}

#[test]
fn set_says_when_an_earlier_provider_still_wins() {
    let sb = Sandbox::new();
    let r = sb.run(&["set", "HF_TOKEN", "in-file"], &[("HF_TOKEN", "in-env")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("provider `env` (variable $HF_TOKEN) also has `HF_TOKEN`"),
        "{}",
        r.stderr
    );
    let r = sb.run(&["set", "OTHER", "v"], &[]);
    assert!(!r.stderr.contains("also has"), "{}", r.stderr);
}

#[test]
fn a_generated_credential_key_is_announced() {
    let sb = Sandbox::new();
    let r = sb.run_with_stdin(&["crypto", "encrypt"], &[], "x");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let key = sb.app_dir().join("credential.key");
    assert!(
        r.stderr.contains("generated a new credential key"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(key.to_str().unwrap()) && r.stderr.contains("Back it up"));
    let r = sb.run_with_stdin(&["crypto", "encrypt"], &[], "x");
    assert!(
        !r.stderr.contains("generated"),
        "only the first time: {}",
        r.stderr
    );
}

#[test]
fn not_found_says_where_it_looked_and_how_to_set_the_key() {
    let sb = Sandbox::new();
    let r = sb.run(&["get", "hf-token"], &[]);
    assert_eq!(r.code, 1);
    let file = sb.app_dir().join("secrets.json");
    for needle in [
        "env (variable $HF_TOKEN)",
        &format!("file ({}, does not exist)", file.display()),
        "secrets set hf-token",
    ] {
        assert!(r.stderr.contains(needle), "{needle}: {}", r.stderr);
    }
}

#[test]
fn completions_are_generated_for_the_common_shells() {
    let sb = Sandbox::new();
    for (shell, needle) in [
        ("bash", "_secrets()"),
        ("zsh", "#compdef secrets"),
        ("fish", "complete -c secrets"),
    ] {
        let r = sb.run(&["completions", shell], &[]);
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        assert!(
            r.stdout.contains(needle),
            "{shell}: {}",
            &r.stdout[..r.stdout.len().min(200)]
        );
    }
}
