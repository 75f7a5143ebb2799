//! Behaviour of the file provider on real files in temporary directories.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use secrets_core::{ErrorKind, Location, Secret, SecretProvider};
use tempfile::TempDir;

use crate::{FileProvider, Format};

fn setup(name: &str, content: Option<&str>) -> (TempDir, FileProvider) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    if let Some(content) = content {
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }
    (dir, FileProvider::new(path))
}

fn value(p: &FileProvider, key: &str) -> Option<String> {
    p.get_blocking(key).unwrap().map(|s| s.expose().to_owned())
}

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn format_follows_the_extension() {
    assert_eq!(Format::from_path("a/s.yaml".as_ref()), Format::Yaml);
    assert_eq!(Format::from_path("a/s.YML".as_ref()), Format::Yaml);
    assert_eq!(Format::from_path("a/s.json".as_ref()), Format::Json);
    assert_eq!(Format::from_path("a/secrets".as_ref()), Format::Json);
}

#[test]
fn reads_json_and_yaml_with_exact_keys() {
    let (_d, json) = setup("s.json", Some(r#"{"HF_TOKEN": "hf_1", "port": 8080}"#));
    assert_eq!(value(&json, "HF_TOKEN").as_deref(), Some("hf_1"));
    assert_eq!(value(&json, "port").as_deref(), Some("8080"));
    assert_eq!(value(&json, "hf_token"), None, "keys match exactly");
    let (_d, yaml) = setup("s.yml", Some("HF_TOKEN: hf_2\nflag: true\n"));
    assert_eq!(value(&yaml, "HF_TOKEN").as_deref(), Some("hf_2"));
    assert_eq!(value(&yaml, "flag").as_deref(), Some("true"));
    assert_eq!(yaml.keys().unwrap(), ["HF_TOKEN", "flag"]);
}

#[test]
fn a_missing_file_is_absent_not_an_error() {
    let (_d, p) = setup("s.json", None);
    assert!(!p.is_available());
    assert_eq!(value(&p, "K"), None);
    assert!(p.keys().unwrap().is_empty());
}

#[test]
fn unsupported_values_are_an_error_naming_file_and_key() {
    let (_d, p) = setup("s.json", Some(r#"{"n": null, "list": ["x"], "ok": "v"}"#));
    let err = p.get_blocking("list").unwrap_err();
    let text = err.to_string();
    assert_eq!(err.kind(), ErrorKind::InvalidValue);
    assert_eq!(err.key(), Some("list"));
    assert!(
        text.contains("`list`") && text.contains("s.json") && text.contains("a sequence"),
        "{text}"
    );
    // `null` counts as missing, as in the original: the chain goes on.
    assert_eq!(value(&p, "n"), None);
    assert_eq!(value(&p, "ok").as_deref(), Some("v"));
}

#[test]
fn malformed_files_name_file_and_position_and_recover_after_a_fix() {
    let (d, p) = setup("s.json", Some("{\n  \"a\": \"sentinel-x\",\n  \"b\"\n}\n"));
    let err = p.get_blocking("a").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Malformed);
    assert_eq!(
        err.location(),
        Some(&Location::file_at(
            d.path().join("s.json"),
            Some(4),
            Some(1)
        ))
    );
    assert!(!err.to_string().contains("sentinel"), "{err}");
    fs::write(d.path().join("s.json"), r#"{"a": "fixed"}"#).unwrap();
    assert_eq!(value(&p, "a").as_deref(), Some("fixed"));

    let (_d, p) = setup("s.yaml", Some("- a\n- b\n"));
    let err = p.get_blocking("a").unwrap_err().to_string();
    assert!(
        err.contains("top level must be a mapping") && err.contains("s.yaml"),
        "{err}"
    );
}

#[test]
fn edits_are_seen_without_a_restart() {
    let (d, p) = setup("s.json", Some(r#"{"K": "one"}"#));
    assert_eq!(value(&p, "K").as_deref(), Some("one"));
    // A replaced file (new inode), as editors and our own writes do it.
    let tmp = d.path().join("new.json");
    fs::write(&tmp, r#"{"K": "two"}"#).unwrap();
    fs::rename(&tmp, d.path().join("s.json")).unwrap();
    assert_eq!(value(&p, "K").as_deref(), Some("two"));
    // An in-place edit that changes the size.
    fs::write(d.path().join("s.json"), r#"{"K": "three!"}"#).unwrap();
    assert_eq!(value(&p, "K").as_deref(), Some("three!"));
    // A deleted file.
    fs::remove_file(d.path().join("s.json")).unwrap();
    assert_eq!(value(&p, "K"), None);
}

#[test]
fn an_unchanged_stamp_does_not_reread() {
    let (d, p) = setup("s.json", Some(r#"{"K": "aaaa"}"#));
    let path = d.path().join("s.json");
    assert_eq!(value(&p, "K").as_deref(), Some("aaaa"));
    let modified = fs::metadata(&path).unwrap().modified().unwrap();
    // Same inode, same size, modification time put back: the cached content stays in use,
    // which shows a lookup costs a stat and no read.
    fs::write(&path, r#"{"K": "bbbb"}"#).unwrap();
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    assert_eq!(value(&p, "K").as_deref(), Some("aaaa"));
}

#[tokio::test]
async fn set_creates_a_private_file_in_a_private_directory() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("nested/app/secrets.json");
    let p = FileProvider::new(&path);
    p.set("HF_TOKEN", &Secret::new("hf_new")).await.unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(&d.path().join("nested")), 0o700);
    assert_eq!(value(&p, "HF_TOKEN").as_deref(), Some("hf_new"));
    let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn writes_keep_other_keys_order_and_format() {
    let (d, p) = setup(
        "s.yaml",
        Some("zeta: 1\nnested:\n  inner: [1, 2]\nalpha: keep\n"),
    );
    p.set("NEW", &Secret::new("v")).await.unwrap();
    let text = fs::read_to_string(d.path().join("s.yaml")).unwrap();
    assert_eq!(
        text,
        "zeta: 1\nnested:\n  inner: [1, 2]\nalpha: keep\nNEW: \"v\"\n"
    );
    assert!(p.delete("zeta").await.unwrap());
    assert!(!p.delete("zeta").await.unwrap());
    let text = fs::read_to_string(d.path().join("s.yaml")).unwrap();
    assert!(text.starts_with("nested:"), "{text}");

    let (d, p) = setup("s.json", Some(r#"{"b": "1", "a": {"x": [true]}}"#));
    p.set("c", &Secret::new("3")).await.unwrap();
    let back: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(d.path().join("s.json")).unwrap()).unwrap();
    assert_eq!(
        back,
        serde_json::json!({"b": "1", "a": {"x": [true]}, "c": "3"})
    );
}

#[tokio::test]
async fn a_malformed_file_is_never_overwritten() {
    let original = "{\"a\": \"keep me\",,}";
    let (d, p) = setup("s.json", Some(original));
    let err = p.set("b", &Secret::new("v")).await.unwrap_err();
    assert!(err.to_string().contains("refusing to overwrite"), "{err}");
    assert_eq!(
        fs::read_to_string(d.path().join("s.json")).unwrap(),
        original
    );
    assert!(p.delete("a").await.is_err());
}

#[tokio::test]
async fn deleting_from_a_missing_file_creates_nothing() {
    let (d, p) = setup("s.json", None);
    assert!(!p.delete("K").await.unwrap());
    assert!(!d.path().join("s.json").exists());
}

#[test]
fn concurrent_writers_in_one_process_lose_nothing() {
    let (d, p) = setup("s.json", None);
    std::thread::scope(|s| {
        for t in 0..4 {
            let p = p.clone();
            s.spawn(move || {
                for i in 0..25 {
                    p.set_blocking(&format!("k{t}_{i}"), &Secret::new(format!("v{i}")))
                        .unwrap();
                }
            });
        }
    });
    let fresh = FileProvider::new(d.path().join("s.json"));
    assert_eq!(fresh.keys().unwrap().len(), 100);
}

#[tokio::test]
async fn health_reads_the_file() {
    let (d, p) = setup("s.json", None);
    assert_eq!(p.health().await.unwrap_err().kind(), ErrorKind::NotFound);
    fs::write(d.path().join("s.json"), "{").unwrap();
    assert_eq!(p.health().await.unwrap_err().kind(), ErrorKind::Malformed);
    fs::write(d.path().join("s.json"), "{}").unwrap();
    p.health().await.unwrap();
}

#[cfg(unix)]
#[test]
fn settings_come_from_the_app_variable_and_reject_non_utf8() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    use private_fs::AppName;

    use crate::FileSettings;

    let app = AppName::new("my-app").unwrap();
    let lookup = |name: &str| (name == "MY_APP_SECRETS_FILE").then(|| OsString::from("/x/s.yaml"));
    assert_eq!(
        FileSettings::from_lookup(&app, &lookup).unwrap(),
        FileSettings::with_path("/x/s.yaml")
    );
    let empty = |_: &str| Some(OsString::new());
    assert_eq!(FileSettings::from_lookup(&app, &empty).unwrap().path, None);
    let bad = |_: &str| Some(OsString::from_vec(vec![b'/', 0xff]));
    let err = FileSettings::from_lookup(&app, &bad).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Misconfigured);
    assert_eq!(
        err.location(),
        Some(&Location::Variable("MY_APP_SECRETS_FILE".into()))
    );
}

#[test]
fn settings_paths_expand_the_home_directory_and_default_to_the_app_dir() {
    use private_fs::AppName;

    use crate::FileSettings;

    let app = AppName::new("secrets-file-test-app").unwrap();
    let home = private_fs::home_dir().expect("the tests run with a home directory");
    let p = FileProvider::from_settings(&app, &FileSettings::with_path("~/x/s.yml")).unwrap();
    assert_eq!(p.path(), home.join("x/s.yml"));
    assert_eq!(p.format(), Format::Yaml);
    let p = FileProvider::from_settings(&app, &FileSettings::default()).unwrap();
    assert_eq!(p.path(), home.join(".secrets-file-test-app/secrets.json"));
}

#[test]
fn strict_mode_refuses_an_exposed_file_and_accepts_it_once_private() {
    let (dir, provider) = setup("s.json", Some(r#"{"K": "sentinel-value-1"}"#));
    let provider = provider.with_permission_policy(private_fs::PermissionPolicy::Strict);
    let path = dir.path().join("s.json");
    assert_eq!(value(&provider, "K").as_deref(), Some("sentinel-value-1"));
    // A chmod alone (same content, same mtime) is noticed.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let e = provider.get_blocking("K").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    let text = e.to_string();
    assert!(
        text.contains("s.json") && text.contains("chmod 600"),
        "{text}"
    );
    assert!(!text.contains("sentinel-value-1"), "{text}");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(value(&provider, "K").as_deref(), Some("sentinel-value-1"));
}

#[test]
fn settings_read_the_strict_variable() {
    let app = private_fs::AppName::new("it").unwrap();
    let lookup = |name: &str| (name == "IT_STRICT_PERMISSIONS").then(|| "yes".into());
    let settings = crate::FileSettings::from_lookup(&app, &lookup).unwrap();
    assert_eq!(settings.permissions, private_fs::PermissionPolicy::Strict);
    let bad = |name: &str| (name == "IT_STRICT_PERMISSIONS").then(|| "maybe".into());
    let e = crate::FileSettings::from_lookup(&app, &bad).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Misconfigured);
    assert!(e.to_string().contains("IT_STRICT_PERMISSIONS"), "{e}");
}
