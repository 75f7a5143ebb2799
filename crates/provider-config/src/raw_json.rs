//! The stored configuration text as the original writes it: Python's `json.dumps`, which
//! also writes what JSON (and serde_json) does not accept or cannot hold exactly: `NaN`,
//! `Infinity` and `-Infinity`, strings with lone surrogates (`"\ud800"`), and integers of
//! any size.
//!
//! - Reading ([`lenient`]): such text is made readable: the three non-numbers become the
//!   strings `"NaN"`, `"Infinity"` and `"-Infinity"` (so a well-known key holding one is an
//!   error naming the key, never a silent default), a lone surrogate becomes U+FFFD, and an
//!   integer beyond 64 bits reads as the nearest float.
//! - Rewriting ([`merge_preserving`]): the members of the stored object that a write does
//!   not change are copied byte for byte, so an update of one key never alters another.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// `text` made acceptable to serde_json (see the module documentation); borrowed when
/// nothing needed changing.
pub(crate) fn lenient(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    let replace =
        |out: &mut Option<String>, copied: &mut usize, from: usize, to: usize, with: &str| {
            let buffer = out.get_or_insert_with(|| String::with_capacity(text.len() + 16));
            buffer.push_str(&text[*copied..from]);
            buffer.push_str(with);
            *copied = to;
        };
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // A string: look for \uXXXX escapes of lone surrogates.
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        if let Some(unit) = escape_unit(bytes, i) {
                            if (0xD800..0xDC00).contains(&unit) {
                                let paired = escape_unit(bytes, i + 6)
                                    .is_some_and(|low| (0xDC00..0xE000).contains(&low));
                                if paired {
                                    i += 12;
                                    continue;
                                }
                                replace(&mut out, &mut copied, i, i + 6, "\\ufffd");
                                i += 6;
                                continue;
                            }
                            if (0xDC00..0xE000).contains(&unit) {
                                replace(&mut out, &mut copied, i, i + 6, "\\ufffd");
                                i += 6;
                                continue;
                            }
                        }
                        i += 2;
                        continue;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'N' if text[i..].starts_with("NaN") => {
                replace(&mut out, &mut copied, i, i + 3, "\"NaN\"");
                i += 3;
            }
            b'I' if text[i..].starts_with("Infinity") => {
                replace(&mut out, &mut copied, i, i + 8, "\"Infinity\"");
                i += 8;
            }
            b'-' if text[i..].starts_with("-Infinity") => {
                replace(&mut out, &mut copied, i, i + 9, "\"-Infinity\"");
                i += 9;
            }
            _ => i += 1,
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut buffer) => {
            buffer.push_str(&text[copied..]);
            Cow::Owned(buffer)
        }
    }
}

/// The UTF-16 unit of a `\uXXXX` escape starting at `at`.
fn escape_unit(bytes: &[u8], at: usize) -> Option<u32> {
    let escape = bytes.get(at..at + 6)?;
    if escape[0] != b'\\' || escape[1] != b'u' {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(&escape[2..]).ok()?, 16).ok()
}

/// One member of a stored object: its key (decoded) and its raw text (`"key": value`).
struct Member<'a> {
    key: String,
    raw: &'a str,
}

/// The members of the object `text`, each with its raw text; `None` when `text` is not one
/// object (checked loosely: [`lenient`] must also accept it).
fn members(text: &str) -> Option<Vec<Member<'_>>> {
    let bytes = text.as_bytes();
    let skip_ws = |mut i: usize| {
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        i
    };
    let mut i = skip_ws(0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(i + 1);
    let mut all = Vec::new();
    if bytes.get(i) == Some(&b'}') {
        return (skip_ws(i + 1) == bytes.len()).then_some(all);
    }
    loop {
        let start = i;
        let key_end = end_of_string(bytes, i)?;
        let key_text = lenient(&text[start..key_end]);
        let key: String = serde_json::from_str(&key_text).ok()?;
        i = skip_ws(key_end);
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        let value_end = end_of_value(bytes, skip_ws(i + 1))?;
        all.push(Member {
            key,
            raw: &text[start..value_end],
        });
        i = skip_ws(value_end);
        match bytes.get(i) {
            Some(b',') => i = skip_ws(i + 1),
            Some(b'}') => return (skip_ws(i + 1) == bytes.len()).then_some(all),
            _ => return None,
        }
    }
}

/// The end (exclusive) of the string starting at `at`.
fn end_of_string(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let mut i = at + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The end (exclusive) of the value starting at `at`: a string, an object or array
/// (brackets balanced outside strings), or a bare token.
fn end_of_value(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at)? {
        b'"' => end_of_string(bytes, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            while i < bytes.len() {
                match bytes[i] {
                    b'"' => {
                        i = end_of_string(bytes, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            let mut i = at;
            while i < bytes.len()
                && !matches!(bytes[i], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                i += 1;
            }
            (i > at).then_some(i)
        }
    }
}

/// The stored object `text` with the members of `changes` set (replaced where the key is
/// present, appended otherwise) and every other member copied byte for byte; `None` when
/// `text` is not one object.
pub(crate) fn merge_preserving(text: &str, changes: &Map<String, Value>) -> Option<String> {
    let members = members(text)?;
    let mut parts: Vec<Cow<'_, str>> = Vec::with_capacity(members.len() + changes.len());
    let mut written = std::collections::HashSet::new();
    for member in &members {
        match changes.get(&member.key) {
            // A duplicate key (the last one wins when read) is written once.
            Some(_) if written.contains(member.key.as_str()) => {}
            Some(value) => {
                written.insert(member.key.as_str());
                parts.push(Cow::Owned(member_text(&member.key, value)));
            }
            None => parts.push(Cow::Borrowed(member.raw)),
        }
    }
    for (key, value) in changes {
        if !members.iter().any(|m| &m.key == key) {
            parts.push(Cow::Owned(member_text(key, value)));
        }
    }
    Some(format!("{{{}}}", parts.join(", ")))
}

fn member_text(key: &str, value: &Value) -> String {
    format!("{}: {}", Value::String(key.to_owned()), value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PYTHON: &str = r#"{"nan": NaN, "inf": Infinity, "ninf": -Infinity, "lone": "a\ud800b", "pair": "\ud83d\ude00", "big": 1180591620717411303424, "text": "NaN Infinity", "nested": {"x": [NaN, "\udc00"]}}"#;

    #[test]
    fn what_python_writes_reads_leniently() {
        let value: Value = serde_json::from_str(&lenient(PYTHON)).unwrap();
        assert_eq!(value["nan"], "NaN");
        assert_eq!(value["inf"], "Infinity");
        assert_eq!(value["ninf"], "-Infinity");
        assert_eq!(value["lone"], "a\u{fffd}b");
        assert_eq!(value["pair"], "\u{1f600}");
        assert_eq!(value["big"].as_f64(), Some(1180591620717411303424.0));
        assert_eq!(value["text"], "NaN Infinity");
        assert_eq!(value["nested"], json!({"x": ["NaN", "\u{fffd}"]}));
        assert!(matches!(lenient(r#"{"a": 1}"#), Cow::Borrowed(_)));
    }

    #[test]
    fn a_merge_without_changes_reads_back_the_same_object() {
        let nasty = json!({
            "a": "}{][,:\"\\", "b": {"c": [1, {"d": "]"}, [], {}], "e": null},
            "é": "\u{1f600}", "n": -1.5e-7, "t": true, "f": false, "empty": "",
            "ctl": "\n\t\u{1}",
        });
        for text in [
            nasty.to_string(),
            serde_json::to_string_pretty(&nasty).unwrap(),
        ] {
            let merged = merge_preserving(&text, &Map::new()).unwrap();
            assert_eq!(
                serde_json::from_str::<Value>(&merged).unwrap(),
                nasty,
                "{merged}"
            );
            let changes = json!({"b": 1});
            let merged = merge_preserving(&text, changes.as_object().unwrap()).unwrap();
            let mut expected = nasty.clone();
            expected["b"] = json!(1);
            assert_eq!(
                serde_json::from_str::<Value>(&merged).unwrap(),
                expected,
                "{merged}"
            );
        }
        // Duplicate keys: the change is written once, where the first one was.
        let merged = merge_preserving(
            r#"{"a": 1, "b": 2, "a": 3}"#,
            json!({"a": 9}).as_object().unwrap(),
        )
        .unwrap();
        assert_eq!(merged, r#"{"a": 9, "b": 2}"#);
    }

    #[test]
    fn a_merge_keeps_every_other_member_byte_for_byte() {
        let changes = json!({"big": 1, "new": "n"});
        let merged = merge_preserving(PYTHON, changes.as_object().unwrap()).unwrap();
        for kept in [
            r#""nan": NaN"#,
            r#""inf": Infinity"#,
            r#""ninf": -Infinity"#,
            r#""lone": "a\ud800b""#,
            r#""nested": {"x": [NaN, "\udc00"]}"#,
        ] {
            assert!(merged.contains(kept), "{merged}");
        }
        assert!(
            merged.contains(r#""big": 1,"#) && merged.ends_with(r#""new": "n"}"#),
            "{merged}"
        );
        assert!(merge_preserving("[1]", &Map::new()).is_none());
        assert!(merge_preserving(r#"{"a": 1"#, &Map::new()).is_none());
        assert_eq!(merge_preserving("{}", &Map::new()).unwrap(), "{}");
    }
}
