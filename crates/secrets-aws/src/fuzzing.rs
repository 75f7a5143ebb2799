//! What the secret-value parsers show for a `SecretString` or `SecretBinary`, for the fuzz
//! target of AWS secret JSON (`fuzz/fuzz_targets/aws_secret_json.rs`). Not a stable API.

use secrets_core::Secret;

use crate::document::{self, Entry};

const SECRET: &str = "app/secret";

/// Every message (`Display` and `Debug`) that reading `bytes` as a `SecretBinary` (and, when
/// it is UTF-8, as a `SecretString`), looking each key up and editing one key can produce,
/// and the object's keys (at any depth) when it parses.
///
/// Panics when the two parsers disagree (the lookup parser accepts what the edit parser
/// refuses, or the reverse, or they read a value differently), or when an edit does not
/// read back as written.
pub fn outputs(bytes: &[u8]) -> (Vec<String>, Vec<String>) {
    let mut shown = Vec::new();
    let text = match document::binary_text(bytes, SECRET) {
        Ok(text) => text,
        Err(e) => {
            shown.push(format!("{e} {e:?}"));
            return (shown, Vec::new());
        }
    };
    let parsed = document::parse(text, SECRET);
    let editable = document::parse_for_edit(text, SECRET);
    let (doc, mut map) = match (parsed, editable) {
        (Ok(doc), Ok(map)) => (doc, map),
        (Err(a), Err(b)) => {
            shown.push(format!("{a} {a:?}"));
            shown.push(format!("{b} {b:?}"));
            return (shown, Vec::new());
        }
        // Lookups skip unused values without decoding them; an edit must refuse a value it
        // cannot keep, and say so.
        (Ok(_), Err(e)) if e.to_string().contains("an edit cannot keep") => {
            shown.push(format!("{e} {e:?}"));
            return (shown, Vec::new());
        }
        (parsed, editable) => panic!(
            "the parsers disagree: lookup {}, edit {}",
            parsed.is_ok(),
            editable.is_ok()
        ),
    };
    let mut keys = Vec::new();
    collect_keys(&serde_json::Value::Object(map.clone()), &mut keys);
    shown.push(format!("{doc:?}"));
    assert_eq!(
        doc.entries.len(),
        map.len(),
        "the parsers see different keys"
    );
    for (key, value) in &map {
        let entry = doc.entries.get(key).expect("a key the lookup parser lost");
        let agrees = match (entry, value) {
            (Entry::Text(secret), serde_json::Value::String(text)) => secret.expose() == text,
            (Entry::Null, serde_json::Value::Null) => true,
            (Entry::Unsupported(_), other) => !other.is_string() && !other.is_null(),
            _ => false,
        };
        assert!(agrees, "the parsers read a value differently");
        match doc.lookup(key, SECRET) {
            Ok(found) => shown.push(format!("{found:?}")),
            Err(e) => shown.push(format!("{e} {e:?}")),
        }
    }
    // An edit keeps every other value and reads back as written.
    let written = Secret::new("replacement");
    map.insert(
        "NEW_KEY".to_owned(),
        serde_json::Value::String(written.expose().to_owned()),
    );
    let stored = document::serialize(&map);
    let again = document::parse(&stored, SECRET).expect("an edited secret reads back");
    let found = again.lookup("NEW_KEY", SECRET).expect("the written value");
    assert!(
        found == Some(written),
        "the written value reads back differently"
    );
    assert_eq!(again.entries.len(), map.len(), "an edit lost keys");
    let reparsed = document::parse_for_edit(&stored, SECRET).expect("an edited secret");
    assert!(reparsed == map, "an edit changed other values");
    (shown, keys)
}

/// Every object key in `value`, at any depth (names, which messages may show).
fn collect_keys(value: &serde_json::Value, keys: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                keys.push(key.clone());
                collect_keys(inner, keys);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_keys(v, keys)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_never_shown_and_edits_read_back() {
        for text in [
            r#"{"K": "SENTINEL", "N": 1, "O": {"x": "SENTINEL"}, "Z": null}"#,
            r#"["SENTINEL"]"#,
            r#"{"K": "SENTINEL""#,
            "",
        ] {
            let (shown, _) = outputs(text.as_bytes());
            assert!(!shown.is_empty());
            assert!(shown.iter().all(|m| !m.contains("SENTINEL")), "{shown:?}");
        }
        let (shown, keys) = outputs(br#"{"K": 1}"#);
        assert!(shown.iter().any(|m| m.contains("a number")), "{shown:?}");
        assert_eq!(keys, ["K"]);
        let (shown, _) = outputs(b"{\"K\": \"\xff\"}");
        assert!(shown.iter().any(|m| m.contains("not UTF-8")), "{shown:?}");
    }
}
