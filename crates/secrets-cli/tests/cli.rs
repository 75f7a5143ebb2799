//! End-to-end tests of the `secrets` binary: each test runs it with a temporary HOME and an
//! environment cleared of everything but what the test sets.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{Run, Sandbox, finish, json, mode};

#[test]
fn env_wins_over_the_file_and_provenance_is_reported() {
    let sb = Sandbox::new();
    sb.write("secrets.json", r#"{"HF_TOKEN": "from-file"}"#);
    let r = sb.run(&["get", "HF_TOKEN"], &[("HF_TOKEN", "from-env")]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "from-env\n"),
        "{}",
        r.stderr
    );
    let r = sb.run(&["get", "HF_TOKEN", "--json"], &[]);
    assert_eq!(
        json(&r),
        serde_json::json!({"key": "HF_TOKEN", "found": true, "value": "from-file", "provider": "file"})
    );
    // An empty variable does not shadow the file.
    let r = sb.run(&["get", "HF_TOKEN"], &[("HF_TOKEN", "")]);
    assert_eq!(r.stdout, "from-file\n");
}

#[test]
fn env_keys_are_normalised_and_prefixed() {
    let sb = Sandbox::new();
    for key in ["hf-token", "hf.token", "HF_TOKEN", "Hf-Token"] {
        let r = sb.run(&["get", key], &[("HF_TOKEN", "v")]);
        assert_eq!((r.code, r.stdout.as_str()), (0, "v\n"), "{key}");
    }
    let env = [("MYAPP_HF_TOKEN", "prefixed"), ("HF_TOKEN", "plain")];
    let r = sb.run(&["--env-prefix", "myapp", "get", "hf-token"], &env);
    assert_eq!(r.stdout, "prefixed\n");
    let r = sb.run(
        &["get", "other", "--env-prefix", "MYAPP"],
        &[("OTHER", "x")],
    );
    assert_eq!(r.code, 1, "with a prefix only prefixed variables are read");
}

#[test]
fn json_and_yaml_default_files() {
    let sb = Sandbox::new();
    sb.write("secrets.yaml", "HF_TOKEN: from-yaml\nport: 8080\n");
    let r = sb.run(&["get", "HF_TOKEN"], &[]);
    assert_eq!(r.stdout, "from-yaml\n");
    assert_eq!(sb.run(&["get", "port"], &[]).stdout, "8080\n");
    // secrets.json comes first when both exist.
    sb.write("secrets.json", r#"{"HF_TOKEN": "from-json"}"#);
    assert_eq!(sb.run(&["get", "HF_TOKEN"], &[]).stdout, "from-json\n");
    // Keys in files match exactly.
    assert_eq!(sb.run(&["get", "hf_token"], &[]).code, 1);
}

#[test]
fn the_secrets_file_can_come_from_the_environment_or_the_app_name() {
    let sb = Sandbox::new();
    let custom = sb.home.path().join("custom.json");
    fs::write(&custom, r#"{"K": "custom"}"#).unwrap();
    let path = custom.to_str().unwrap();
    let r = sb.run(&["get", "K"], &[("SIMPLETUNER_SECRETS_FILE", path)]);
    assert_eq!(r.stdout, "custom\n", "{}", r.stderr);
    let other = sb.home.path().join(".other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("secrets.json"), r#"{"K": "other-app"}"#).unwrap();
    assert_eq!(
        sb.run(&["--app", "other", "get", "K"], &[]).stdout,
        "other-app\n"
    );
}

#[test]
fn malformed_files_are_reported_with_file_and_line() {
    let sb = Sandbox::new();
    let path = sb.write("secrets.json", "{\n  \"A\": \"x\",\n  \"B\" \"y\"\n}\n");
    let r = sb.run(&["get", "A"], &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains(path.to_str().unwrap()), "{}", r.stderr);
    assert!(r.stderr.contains("line 3"), "{}", r.stderr);
    assert_eq!(r.stdout, "");
    // The manager logs the failure and still answers from the next provider... or an earlier one.
    let r = sb.run(&["get", "A"], &[("A", "from-env")]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "from-env\n"));
    // A file whose top level is not a mapping.
    sb.write("secrets.json", "[1, 2]");
    let r = sb.run(&["get", "A"], &[]);
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("top level must be a mapping"),
        "{}",
        r.stderr
    );
    // Writes never overwrite a file they cannot parse.
    let r = sb.run(&["set", "A", "v"], &[]);
    assert_eq!(r.code, 3);
    assert_eq!(fs::read_to_string(&path).unwrap(), "[1, 2]");
}

#[test]
fn set_get_delete_round_trip_with_private_permissions() {
    let sb = Sandbox::new();
    let r = sb.run(&["set", "HF_TOKEN", "hf_123"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let file = sb.app_dir().join("secrets.json");
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&sb.app_dir()), 0o700);
    assert_eq!(sb.run(&["get", "HF_TOKEN"], &[]).stdout, "hf_123\n");
    let r = sb.run_with_stdin(&["set", "REPLICATE_API_TOKEN"], &[], "r8_from_stdin\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        sb.run(&["get", "REPLICATE_API_TOKEN"], &[]).stdout,
        "r8_from_stdin\n"
    );
    assert_eq!(sb.run(&["delete", "HF_TOKEN"], &[]).code, 0);
    assert_eq!(sb.run(&["delete", "HF_TOKEN"], &[]).code, 1);
    assert_eq!(sb.run(&["get", "HF_TOKEN"], &[]).code, 1);
    assert_eq!(mode(&file), 0o600);
    let r = sb.run_with_stdin(&["set", "EMPTY"], &[], "\n");
    assert_eq!(r.code, 2, "empty values are refused");
}

#[test]
fn yaml_stays_yaml() {
    let sb = Sandbox::new();
    let path = sb.write("secrets.yaml", "EXISTING: one\n");
    assert_eq!(sb.run(&["set", "NEW", "two"], &[]).code, 0);
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "EXISTING: one\nNEW: \"two\"\n"
    );
    assert!(!sb.app_dir().join("secrets.json").exists());
    let explicit = sb.home.path().join("elsewhere/s.yml");
    let p = explicit.to_str().unwrap();
    assert_eq!(sb.run(&["--secrets-file", p, "set", "K", "v"], &[]).code, 0);
    assert_eq!(fs::read_to_string(&explicit).unwrap(), "K: \"v\"\n");
}

#[test]
fn two_processes_writing_100_keys_each_lose_none() {
    let sb = Sandbox::new();
    std::thread::scope(|scope| {
        for writer in ["a", "b"] {
            let sb = &sb;
            scope.spawn(move || {
                for i in 0..100 {
                    let r = sb.run(&["set", &format!("{writer}_{i}"), &format!("v{i}")], &[]);
                    assert_eq!(r.code, 0, "{}", r.stderr);
                }
            });
        }
    });
    let text = fs::read_to_string(sb.app_dir().join("secrets.json")).unwrap();
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(map.len(), 200);
    for writer in ["a", "b"] {
        for i in 0..100 {
            assert_eq!(map[&format!("{writer}_{i}")], format!("v{i}"));
        }
    }
}

#[test]
fn exit_codes_follow_the_contract() {
    let sb = Sandbox::new();
    assert_eq!(sb.run(&["get", "MISSING"], &[]).code, 1);
    let r = sb.run(&["get", "MISSING", "--default", "fallback"], &[]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "fallback\n"));
    let r = sb.run(&["get", "MISSING", "--json"], &[]);
    assert_eq!(r.code, 1);
    assert_eq!(
        json(&r),
        serde_json::json!({"key": "MISSING", "found": false, "value": null, "provider": null})
    );
    let r = sb.run(&["get", "MISSING", "--json", "--default", "d"], &[]);
    assert_eq!(r.code, 0);
    assert_eq!(json(&r)["value"], "d");
    assert_eq!(json(&r)["found"], false);
    assert_eq!(sb.run(&["frobnicate"], &[]).code, 2);
    assert_eq!(sb.run(&["get"], &[]).code, 2);
    let r = sb.run(&["--providers", "env,ldap", "get", "K"], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown provider `ldap`"), "{}", r.stderr);
    let r = sb.run(&["--providers", "aws", "get", "K"], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not compiled"), "{}", r.stderr);
    assert_eq!(sb.run(&["--help"], &[]).code, 0);
    // --providers restricts the chain.
    sb.write("secrets.json", r#"{"K": "file"}"#);
    assert_eq!(sb.run(&["--providers", "env", "get", "K"], &[]).code, 1);
    let r = sb.run(&["--providers", "file,env", "get", "K"], &[("K", "env")]);
    assert_eq!(r.stdout, "file\n");
}

#[test]
fn doctor_reports_every_provider() {
    let sb = Sandbox::new();
    let r = sb.run(&["doctor", "--json"], &[]);
    assert_eq!(r.code, 0, "a missing file is not a failure: {}", r.stdout);
    let report = json(&r);
    let providers = report["providers"].as_array().unwrap();
    let names: Vec<&str> = providers
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["env", "file", "aws", "vault"]);
    assert_eq!(providers[0]["reachable"], true);
    assert_eq!(providers[1]["available"], false);
    assert!(
        providers[1]["error"]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );
    assert_eq!(providers[2]["configured"], false);
    assert_eq!(report["writer"], "file");
    for key in [
        "configured",
        "available",
        "reachable",
        "latency_ms",
        "error",
    ] {
        assert!(providers[0].get(key).is_some(), "{key}");
    }
    sb.write("secrets.json", "{broken");
    let r = sb.run(&["doctor"], &[]);
    assert_eq!(r.code, 3);
    assert!(r.stdout.contains("malformed content"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("not compiled into this build (cargo feature `aws`)"),
        "{}",
        r.stdout
    );
}

/// A sentinel value is set in the environment and in the file; every command runs with
/// trace logging; the sentinel may appear only on stdout of `get`.
#[test]
fn secret_values_appear_only_on_stdout_of_get() {
    const SENTINEL: &str = "SENTINEL-7f3a9c-do-not-leak";
    let sb = Sandbox::new();
    let env = [("HF_TOKEN", SENTINEL)];
    let file_content = format!(
        r#"{{"HF_TOKEN": "{SENTINEL}", "FILE_ONLY": "{SENTINEL}", "LIST": ["{SENTINEL}"]}}"#
    );
    sb.write("secrets.json", &file_content);
    let no_leak = |r: &Run, what: &str| {
        assert!(
            !r.stderr.contains(SENTINEL),
            "{what}: stderr leaked:\n{}",
            r.stderr
        );
        assert!(!r.stderr.contains("7f3a9c"), "{what}: stderr leaked a part");
    };

    for args in [
        &["-vvv", "get", "HF_TOKEN"][..],
        &["-vvv", "get", "FILE_ONLY", "--json"],
        &["-vvv", "--providers", "file", "get", "HF_TOKEN"],
    ] {
        let r = sb.run(args, &env);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert!(r.stdout.contains(SENTINEL), "{args:?}");
        assert!(
            r.stderr.contains("TRACE") || r.stderr.contains("DEBUG"),
            "logging is on"
        );
        no_leak(&r, &format!("{args:?}"));
    }
    // Commands whose stdout must not carry the value either.
    let quiet: Vec<(Vec<&str>, Option<&str>)> = vec![
        (vec!["-vvv", "get", "LIST"], None),
        (vec!["-vvv", "get", "MISSING"], None),
        (vec!["-vvv", "set", "NEW_KEY"], Some(SENTINEL)),
        (vec!["-vvv", "set", "ARG_KEY", SENTINEL], None),
        (vec!["-vvv", "delete", "FILE_ONLY"], None),
        (vec!["-vvv", "doctor"], None),
        (vec!["-vvv", "doctor", "--json"], None),
    ];
    for (args, stdin) in quiet {
        let r = match stdin {
            Some(input) => sb.run_with_stdin(&args, &env, input),
            None => sb.run(&args, &env),
        };
        assert!(
            !r.stdout.contains(SENTINEL),
            "{args:?}: stdout leaked:\n{}",
            r.stdout
        );
        no_leak(&r, &format!("{args:?}"));
    }
    // A malformed file that contains the value.
    sb.write(
        "secrets.json",
        &format!("{{\"HF_TOKEN\": \"{SENTINEL}\" oops"),
    );
    let r = sb.run(&["-vvv", "get", "HF_TOKEN", "--providers", "file"], &[]);
    assert_eq!(r.code, 3);
    no_leak(&r, "malformed file");
    let r = sb.run(&["-vvv", "set", "X", "y"], &env);
    no_leak(&r, "set on malformed file");
}

/// The first stored value made by the original Python code, from the repository's
/// `tests/data/simpletuner-compat.json`.
fn compat_vector() -> (String, String, String) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/simpletuner-compat.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let data: serde_json::Value = serde_json::from_str(&text).unwrap();
    let v = &data["vectors"][0];
    let s = |k: &str| v[k].as_str().unwrap().to_owned();
    (s("passphrase"), s("plaintext"), s("stored"))
}

#[test]
fn crypto_decrypts_the_original_values_and_round_trips() {
    let sb = Sandbox::new();
    let (passphrase, plaintext, stored) = compat_vector();
    let env = [("SIMPLETUNER_CREDENTIAL_KEY", passphrase.as_str())];
    let r = sb.run_with_stdin(&["crypto", "decrypt"], &env, &format!("{stored}\n"));
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, format!("{plaintext}\n").as_str()),
        "{}",
        r.stderr
    );
    let r = sb.run_with_stdin(&["crypto", "encrypt"], &env, "hf_cli\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("Z0FBQUFB"), "{}", r.stdout);
    let back = sb.run_with_stdin(&["crypto", "decrypt"], &env, &r.stdout);
    assert_eq!(back.stdout, "hf_cli\n");
    assert!(
        !sb.app_dir().join("credential.key").exists(),
        "the env key was used"
    );
}

#[test]
fn crypto_generates_a_private_key_file_when_there_is_no_key() {
    let sb = Sandbox::new();
    let r = sb.run_with_stdin(&["crypto", "encrypt"], &[], "v");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let key = sb.app_dir().join("credential.key");
    assert_eq!(mode(&key), 0o600);
    let back = sb.run_with_stdin(&["crypto", "decrypt"], &[], &r.stdout);
    assert_eq!(back.stdout, "v\n");
    // An emptied key file is an error, never silently replaced.
    fs::write(&key, "").unwrap();
    let r = sb.run_with_stdin(&["crypto", "decrypt"], &[], &r.stdout);
    assert_eq!(r.code, 4);
    assert_eq!(fs::read_to_string(&key).unwrap(), "");
}

#[test]
fn crypto_failures_exit_4_with_one_line_that_echoes_nothing() {
    let sb = Sandbox::new();
    let (_, plaintext, stored) = compat_vector();
    let env = [("SIMPLETUNER_CREDENTIAL_KEY", "the-wrong-key")];
    for input in [stored.as_str(), "SENTINEL-not-base64!", "Z0FBQUFB", ""] {
        let r = sb.run_with_stdin(&["crypto", "decrypt"], &env, input);
        assert_eq!(r.code, 4, "{input}: {}", r.stderr);
        assert_eq!(r.stdout, "");
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(!r.stderr.contains("SENTINEL") && !r.stderr.contains(&plaintext));
        if !input.is_empty() {
            assert!(!r.stderr.contains(input), "{}", r.stderr);
        }
    }
    assert!(sb.run_with_stdin(&["crypto", "rotate"], &env, &stored).code == 4);
}

#[test]
fn crypto_rotate_moves_a_value_to_the_current_key() {
    let sb = Sandbox::new();
    let (passphrase, plaintext, stored) = compat_vector();
    let env = [
        ("SIMPLETUNER_CREDENTIAL_KEY", "brand-new-key"),
        ("SIMPLETUNER_CREDENTIAL_KEY_PREVIOUS", passphrase.as_str()),
    ];
    let r = sb.run_with_stdin(&["crypto", "rotate"], &env, &stored);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let new_only = [("SIMPLETUNER_CREDENTIAL_KEY", "brand-new-key")];
    let back = sb.run_with_stdin(&["crypto", "decrypt"], &new_only, &r.stdout);
    assert_eq!(back.stdout, format!("{plaintext}\n"));
    let old_only = [("SIMPLETUNER_CREDENTIAL_KEY", passphrase.as_str())];
    assert_eq!(
        sb.run_with_stdin(&["crypto", "decrypt"], &old_only, &r.stdout)
            .code,
        4
    );
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let sb = Sandbox::new();
    sb.write("secrets.json", r#"{"K": "v"}"#);
    for args in [
        vec!["doctor"],
        vec!["doctor", "--json"],
        vec!["get", "K"],
        vec!["get", "K", "--json"],
    ] {
        // The reader is gone before the first write, as with `secrets doctor | head -0`.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = sb
            .command(&args, &[])
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn crypto_ignores_the_chain_options() {
    let sb = Sandbox::new();
    let env = [("SIMPLETUNER_CREDENTIAL_KEY", "chain-options-test")];
    // `aws` is not compiled into this binary; crypto does not build the chain.
    let r = sb.run_with_stdin(&["--providers", "aws", "crypto", "encrypt"], &env, "x\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("Z0FBQUFB"), "{}", r.stdout);
    let r = sb.run(&["--providers", "aws", "get", "K"], &[]);
    assert_eq!(
        r.code, 2,
        "the chain commands still refuse it: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains("enable the `aws` feature"),
        "{}",
        r.stderr
    );
}

#[test]
fn crypto_help_shows_only_its_options_and_where_the_key_comes_from() {
    let sb = Sandbox::new();
    let r = sb.run(&["crypto", "--help"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for absent in ["--providers", "--secrets-file", "--env-prefix"] {
        assert!(!r.stdout.contains(absent), "{absent} in: {}", r.stdout);
    }
    for present in ["--app", "CREDENTIAL_KEY", "credential.key"] {
        assert!(
            r.stdout.contains(present),
            "{present} missing: {}",
            r.stdout
        );
    }
    // The chain options are still accepted before and after the chain commands.
    let r = sb.run(&["get", "--help"], &[]);
    assert!(r.stdout.contains("--providers"), "{}", r.stdout);
}

#[test]
fn the_app_name_cannot_escape_the_home_directory() {
    let sb = Sandbox::new();
    let outside = sb.home.path().parent().unwrap().join("escape");
    for app in ["x/../../escape", "../escape", ".", "", "a b"] {
        let r = sb.run(&["--app", app, "set", "K", "v"], &[]);
        assert_eq!(r.code, 2, "{app:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("invalid application name"),
            "{}",
            r.stderr
        );
    }
    assert!(!outside.exists());
    let entries: Vec<_> = fs::read_dir(sb.home.path()).unwrap().collect();
    assert!(entries.is_empty(), "nothing written in HOME: {entries:?}");
}

/// The home directory of the user running the tests, from /etc/passwd.
fn passwd_home() -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let probe = tempfile::NamedTempFile::new().unwrap();
    let uid = fs::metadata(probe.path()).unwrap().uid().to_string();
    let passwd = fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.split(':').nth(2) == Some(uid.as_str()))
        .expect("the test user has a passwd entry");
    PathBuf::from(line.split(':').nth(5).unwrap())
}

#[test]
fn without_home_the_passwd_entry_is_used() {
    let sb = Sandbox::new();
    let out = sb
        .command(&["doctor", "--json"], &[])
        .env_remove("HOME")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let r = finish(out);
    let report = json(&r);
    let file = &report["providers"][1];
    assert_eq!(file["name"], "file");
    let expected = passwd_home().join(".simpletuner");
    assert!(
        file["error"]
            .as_str()
            .is_some_and(|e| e.contains(expected.to_str().unwrap()))
            || expected.join("secrets.json").exists(),
        "{report}"
    );
    assert_eq!(file["configured"], true, "{report}");
}

#[test]
fn writes_can_name_their_provider() {
    let sb = Sandbox::new();
    let r = sb.run(&["set", "K", "v", "--provider", "file"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(sb.run(&["get", "K"], &[]).stdout, "v\n");
    let r = sb.run(&["set", "K", "v", "--provider", "env"], &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("read-only"), "{}", r.stderr);
    let r = sb.run(&["delete", "K", "--provider", "vault"], &[]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("not in the chain"), "{}", r.stderr);
    assert_eq!(sb.run(&["delete", "K", "--provider", "file"], &[]).code, 0);
}
