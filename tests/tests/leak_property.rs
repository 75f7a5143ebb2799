//! No value of a secrets file ever reaches an error, a log line or `Debug` output.
//!
//! A sentinel is planted in every scalar position and shape the parsers meet: plain, quoted
//! and block scalars, tags (`!!int`, `!!binary`, custom), out-of-range numbers, anchors and
//! aliases, nested keys and values, at any depth; the document may then be damaged
//! (truncated, a character inserted, an entry repeated, junk appended). Every operation of
//! the file provider and of the manager runs on it with TRACE logging captured, and no error
//! message, `Debug` output or log line may contain the sentinel. Top-level keys are names,
//! not values: a damaged document that turned a value into a top-level key may name it.

use std::sync::Arc;

use integration_tests::CapturedLogs;
use proptest::prelude::*;
use secrets::{FileProvider, MemoryProvider, Secret, SecretProvider, SecretsManager};

const SENTINEL: &str = "qZ7SENTINELxK";
/// What must never show, also as a fragment of an escaped or split value.
const FRAGMENT: &str = "SENTINEL";

#[derive(Debug, Clone)]
enum Node {
    Scalar(u8),
    Seq(Vec<Node>),
    Map(Vec<(bool, Node)>),
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = any::<u8>().prop_map(Node::Scalar);
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Node::Seq),
            prop::collection::vec((any::<bool>(), inner), 0..4).prop_map(Node::Map),
        ]
    })
}

/// Mostly scalars at the top level (where a reader interprets them), sometimes collections.
fn top_level_value() -> impl Strategy<Value = Node> {
    prop_oneof![3 => any::<u8>().prop_map(Node::Scalar), 2 => node()]
}

/// A YAML scalar holding the sentinel, in one of many shapes.
fn yaml_scalar(kind: u8) -> String {
    match kind % 16 {
        0 => SENTINEL.to_owned(),
        1 => format!("'{SENTINEL}'"),
        2 => format!("\"{SENTINEL}\\n\""),
        3 => format!("!!int {SENTINEL}"),
        4 => format!("!!float {SENTINEL}"),
        5 => format!("!!bool {SENTINEL}"),
        6 => format!("!!binary {SENTINEL}"),
        7 => format!("!{SENTINEL} x"),
        8 => format!("!!str {SENTINEL}"),
        9 => format!("99999999999999999999999{SENTINEL}"),
        10 => format!("&{SENTINEL} {SENTINEL}"),
        11 => format!("*{SENTINEL}"),
        12 => format!("{SENTINEL}: {SENTINEL}"),
        13 => format!("\"\\x{SENTINEL}\""),
        14 => format!("!!timestamp {SENTINEL}"),
        _ => format!("{SENTINEL} # {SENTINEL}"),
    }
}

fn yaml_flow(node: &Node) -> String {
    match node {
        Node::Scalar(kind) => match kind % 16 {
            // Shapes that only make sense in block context become quoted here.
            10..=12 | 15 => format!("\"{SENTINEL}\""),
            _ => yaml_scalar(*kind),
        },
        Node::Seq(items) => format!(
            "[{}]",
            items.iter().map(yaml_flow).collect::<Vec<_>>().join(", ")
        ),
        Node::Map(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| {
                    let key = if *k {
                        format!("\"{SENTINEL}\"")
                    } else {
                        "n".to_owned()
                    };
                    format!("{key}: {}", yaml_flow(v))
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A JSON value holding the sentinel.
fn json_value(node: &Node) -> String {
    match node {
        Node::Scalar(kind) => match kind % 6 {
            0 => format!("\"{SENTINEL}\""),
            // The same text, escaped.
            1 => format!(
                "\"{}\"",
                SENTINEL
                    .chars()
                    .map(|c| format!("\\u{:04x}", c as u32))
                    .collect::<String>()
            ),
            2 => format!("1e999{SENTINEL}"),
            3 => format!("-{SENTINEL}"),
            4 => format!("\"{SENTINEL}\\q\""),
            _ => format!("123456789012345678901234567890{SENTINEL}"),
        },
        Node::Seq(items) => format!(
            "[{}]",
            items.iter().map(json_value).collect::<Vec<_>>().join(", ")
        ),
        Node::Map(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| {
                    let key = if *k { SENTINEL } else { "n" };
                    format!("\"{key}\": {}", json_value(v))
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn document(yaml: bool, values: &[(Node, bool)]) -> String {
    let mut out = String::new();
    if !yaml {
        out.push('{');
    }
    for (i, (value, block)) in values.iter().enumerate() {
        if yaml {
            match value {
                Node::Scalar(kind) if *block && kind % 2 == 0 => {
                    out.push_str(&format!("K{i}: |\n  {SENTINEL}\n  {SENTINEL}\n"));
                }
                Node::Scalar(kind) => out.push_str(&format!("K{i}: {}\n", yaml_scalar(*kind))),
                _ => out.push_str(&format!("K{i}: {}\n", yaml_flow(value))),
            }
        } else {
            if i > 0 {
                out.push_str(",\n");
            }
            out.push_str(&format!("\"K{i}\": {}", json_value(value)));
        }
    }
    if !yaml {
        out.push_str("}\n");
    }
    out
}

#[derive(Debug, Clone)]
enum Damage {
    None,
    Truncate(usize),
    Insert(usize, char),
    RepeatFirstLine,
    Append(String),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => Just(Damage::None),
        1 => any::<usize>().prop_map(Damage::Truncate),
        1 => (
            any::<usize>(),
            prop::sample::select(vec!['{', '}', '[', ']', '"', '\'', ':', ',', '\n', ' ', '\t', '!', '&', '*', '\\', '#', '\u{0}', 'é'])
        )
            .prop_map(|(at, c)| Damage::Insert(at, c)),
        1 => Just(Damage::RepeatFirstLine),
        1 => "[ -~]{1,12}".prop_map(Damage::Append),
    ]
}

fn damaged(mut text: String, damage: &Damage) -> String {
    let boundary = |text: &str, at: usize| {
        let mut at = at % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    match damage {
        Damage::None => {}
        Damage::Truncate(at) => {
            let at = boundary(&text, *at);
            text.truncate(at);
        }
        Damage::Insert(at, c) => {
            let at = boundary(&text, *at);
            text.insert(at, *c);
        }
        Damage::RepeatFirstLine => {
            let first = text.lines().next().unwrap_or_default().to_owned();
            text = format!("{first}\n{text}");
        }
        Damage::Append(junk) => text.push_str(junk),
    }
    text
}

/// Runs every operation on the file and returns everything it showed.
fn exercise(path: &std::path::Path) -> Vec<String> {
    let mut shown = Vec::new();
    let provider = FileProvider::new(path);
    let keys = provider.keys();
    shown.push(format!("{keys:?}"));
    for key in ["K0", "K1", "K2", "K3", "MISSING"] {
        shown.push(format!("{:?}", provider.get_blocking(key)));
        if let Err(e) = provider.get_blocking(key) {
            shown.push(e.to_string());
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        if let Err(e) = provider.health().await {
            shown.push(format!("{e} {e:?}"));
        }
        let failing = Arc::new(MemoryProvider::new("down"));
        failing.set_failing(true);
        let manager = SecretsManager::builder()
            .provider(failing)
            .provider(Arc::new(provider.clone()))
            .build();
        for key in ["K0", "K1", "MISSING"] {
            match manager.get_with_source(key).await {
                Ok(found) => shown.push(format!("{found:?}")),
                Err(e) => shown.push(format!("{e} {e:?}")),
            }
        }
        shown.push(format!("{:?}", manager.health_report().await));
        for result in [
            manager.set("NEW", Secret::new("fresh")).await.err(),
            manager.set("K0", Secret::new("fresh")).await.err(),
            manager.delete("K1").await.err(),
        ]
        .into_iter()
        .flatten()
        {
            shown.push(format!("{result} {result:?}"));
        }
    });
    shown
}

/// Generated documents per run: 256 under `cargo xtask test`, 100 000 under
/// `cargo xtask reliability leaks-file`.
fn cases() -> u32 {
    integration_tests::reliability::scale(256, 100_000)
}

#[test]
fn no_value_reaches_an_error_a_log_line_or_debug_output() {
    let config = ProptestConfig {
        cases: cases(),
        // Keeps the regressions file beside this source, as `proptest!` does.
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::SourceParallel("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let inputs = (
        any::<bool>(),
        prop::collection::vec((top_level_value(), any::<bool>()), 1..4),
        damage(),
    );
    let outcome = runner.run(&inputs, |(yaml, values, damage)| {
        let logs = CapturedLogs::default();
        let _guard = tracing::subscriber::set_default(logs.subscriber());
        let dir = tempfile::tempdir().unwrap();
        let path = dir
            .path()
            .join(if yaml { "secrets.yaml" } else { "secrets.json" });
        let text = damaged(document(yaml, &values), &damage);
        std::fs::write(&path, &text).unwrap();

        // A damaged document may have turned a value into a top-level key; keys are names
        // and may be shown.
        let keys = FileProvider::new(&path).keys().unwrap_or_default();
        let mut shown = exercise(&path);
        shown.push(logs.text());
        for text in &shown {
            prop_assert!(
                !secrets::file::fuzzing::leaks(text, &keys, FRAGMENT),
                "leaked in: {text}\nfile:\n{}",
                std::fs::read_to_string(&path).unwrap_or_default()
            );
        }
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    integration_tests::reliability::report(
        "leaks-file",
        "Leaks: a sentinel planted in every scalar position of generated, damaged JSON/YAML secrets files never reaches an error, a TRACE log line or Debug output (file provider and manager: get, set, delete, health)",
        &format!("{} generated documents, 0 leaks", cases()),
    );
}
