//! YAML this tool writes reads back the same in PyYAML (YAML 1.1, what the original server
//! uses), and entries a write did not touch keep the value PyYAML read before. The real
//! PyYAML of the test virtualenv does the reading.

use std::process::{Command, Stdio};

use integration_tests::test_python;
use secrets::{FileProvider, Secret};
use serde_json::Value;

/// PyYAML's `safe_load` of a file, as JSON (dates and other non-JSON values as strings, with
/// their Python type name so that `1000` the int and `"1000"` the string stay different).
const PYTHON: &str = r#"
import json, sys, yaml
def plain(v):
    if isinstance(v, dict):
        return {str(k) + ":" + type(k).__name__: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, (str, bool, int, float)) or v is None:
        return [type(v).__name__, v]
    return [type(v).__name__, str(v)]
with open(sys.argv[1], encoding="utf-8") as f:
    print(json.dumps(plain(yaml.safe_load(f))))
"#;

fn pyyaml(path: &std::path::Path) -> Value {
    let out = Command::new(test_python())
        .args(["-c", PYTHON])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("start the test Python");
    assert!(
        out.status.success(),
        "PyYAML could not load {}: {}\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Values PyYAML would read as something else when written plain.
const TRICKY: &[&str] = &[
    "yes",
    "on",
    "NO",
    "Off",
    "y",
    "n",
    "true",
    "~",
    "null",
    "",
    "12:30:00",
    "1_000",
    "0x1F",
    "0o17",
    "0123",
    "1.5e3",
    ".inf",
    "-.NaN",
    "2024-01-02",
    "=",
    "<<",
    "- item",
    "a: b",
    "#hash",
    "&anchor",
    "*alias",
    "!tag",
    "%percent",
    "@at",
    "`tick",
    "'single'",
    "\"double\"",
    "{flow}",
    "[seq]",
    "line\nbreak",
    "tab\there",
    " leading",
    "trailing ",
    "ünïcode ✓",
    "\u{1}control",
    "\u{85}nel",
    "\u{2028}ls",
    "\u{feff}bom",
    "back\\slash",
    "hf_AbC123",
    "r8_xyz",
];

#[test]
fn values_written_here_read_back_as_the_same_strings_in_pyyaml() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.yaml");
    let provider = FileProvider::new(&path);
    for (i, value) in TRICKY.iter().enumerate() {
        if value.is_empty() {
            continue;
        }
        provider
            .set_blocking(&format!("K{i}"), &Secret::new(*value))
            .unwrap();
    }
    // Keys that PyYAML would read as other types.
    for key in ["123", "true", "yes", "null", "1.5"] {
        provider.set_blocking(key, &Secret::new("v")).unwrap();
    }
    let read = pyyaml(&path);
    for (i, value) in TRICKY.iter().enumerate() {
        if value.is_empty() {
            continue;
        }
        assert_eq!(
            read[format!("K{i}:str")],
            serde_json::json!(["str", value]),
            "{value:?}"
        );
        // And this tool reads the same.
        assert_eq!(
            provider
                .get_blocking(&format!("K{i}"))
                .unwrap()
                .unwrap()
                .expose(),
            *value
        );
    }
    for key in ["123", "true", "yes", "null", "1.5"] {
        assert_eq!(
            read[format!("{key}:str")],
            serde_json::json!(["str", "v"]),
            "{key}"
        );
    }
}

#[test]
fn entries_a_write_did_not_touch_keep_what_pyyaml_read_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.yaml");
    let original = "\
# Written by hand for the original server.
enabled: yes
mode: on
disabled: NO
at: 12:30:00
count: 1_000
mask: 0x1F
octal: 0123
ratio: 1.5e3
none: ~
day: 2024-01-02
quoted: \"yes\"
list: [1, two]
nested:
  deep: on
block: |
  line one
  line two
HF_TOKEN: hf_original
";
    std::fs::write(&path, original).unwrap();
    let before = pyyaml(&path);
    let provider = FileProvider::new(&path);

    provider.set_blocking("NEW", &Secret::new("yes")).unwrap();
    provider
        .set_blocking("HF_TOKEN", &Secret::new("on"))
        .unwrap();
    assert!(provider.delete_blocking("mode").unwrap());

    let after = pyyaml(&path);
    let mut expected = before.as_object().unwrap().clone();
    expected.remove("mode:str");
    expected.insert("NEW:str".into(), serde_json::json!(["str", "yes"]));
    expected.insert("HF_TOKEN:str".into(), serde_json::json!(["str", "on"]));
    assert_eq!(after, Value::Object(expected));
    // The comment and the untouched lines are byte for byte what they were.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# Written by hand for the original server.\nenabled: yes\n"));
    assert!(
        text.contains("block: |\n  line one\n  line two\n"),
        "{text}"
    );
}
