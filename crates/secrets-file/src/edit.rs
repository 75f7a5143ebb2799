//! Writing one entry: the change is spliced into the text, every other byte stays as it was
//! (comments, order, formatting, and the exact text of values the write did not touch, so any
//! reader, PyYAML included, reads them as before). The result is parsed again and checked
//! before it may replace the file.

use std::fmt::Write as _;

use secrets_core::Secret;
use zeroize::Zeroizing;

use crate::Format;
use crate::document::{self, Document, Shape, Value, line_end};
use crate::parse::ParseFailure;

/// What a write does to the document.
#[derive(Clone, Copy)]
pub(crate) enum Change<'a> {
    Set(&'a Secret),
    Delete,
}

/// Why an edit cannot be made.
#[derive(Debug)]
pub(crate) enum EditError {
    /// The key's value comes from a YAML merge key (`<<`) and cannot be deleted on its own.
    Merged { line: usize },
    /// A new YAML key longer than the 1024 characters YAML readers allow an implicit key.
    KeyTooLong,
    /// The edited text did not read back as intended (a construct this editor does not
    /// handle, such as an anchor another entry refers to); the file is left as it was.
    NotVerified(ParseFailure),
}

/// The new text for `change` of `key`, or `None` when there is nothing to do (deleting a key
/// that is not there).
pub(crate) fn apply(
    format: Format,
    text: &str,
    doc: &Document,
    key: &str,
    change: Change<'_>,
) -> Result<Option<Zeroizing<String>>, EditError> {
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let existing = doc.position(key);
    let edited = match (change, existing) {
        (Change::Delete, None) => return Ok(None),
        (Change::Delete, Some(i)) => {
            let entry = &doc.entries[i];
            let Some(span) = &entry.span else {
                return Err(EditError::Merged { line: entry.line });
            };
            match &doc.shape {
                Shape::Braced { open, close } => delete_braced(text, doc, i, *open, *close),
                // The only pair: an empty mapping remains (nothing at all, say before a `...`
                // document end, is not a document YAML 1.1 readers accept).
                Shape::Block { pairs: 1, .. } => {
                    let ends = if text[span.lines.clone()].ends_with('\n') {
                        newline
                    } else {
                        ""
                    };
                    splice(text, span.lines.clone(), &format!("{{}}{ends}"))
                }
                _ => splice(text, span.lines.clone(), ""),
            }
        }
        (Change::Set(value), Some(i)) if doc.entries[i].span.is_some() => {
            let entry = &doc.entries[i];
            let span = entry
                .span
                .as_ref()
                .unwrap_or_else(|| unreachable!("checked"));
            match (&doc.shape, format) {
                (Shape::Braced { .. }, Format::Json) => {
                    splice(text, span.value.clone(), &json_string(value.expose()))
                }
                (Shape::Braced { .. }, Format::Yaml) => {
                    splice(text, span.value.clone(), &yaml_string(value.expose()))
                }
                _ => {
                    // The whole entry is rewritten on its lines: key as written, new value,
                    // and a trailing comment on the value's last line kept.
                    let line_start = span.lines.start;
                    let indent = &text[line_start..span.key.start];
                    let tail_end =
                        line_end(text, span.value.end.saturating_sub(1).max(span.key.start));
                    let tail =
                        text[span.value.end.min(tail_end)..tail_end].trim_end_matches(['\n', '\r']);
                    let comment = if tail.trim_start().starts_with('#') {
                        tail
                    } else {
                        ""
                    };
                    let mut line = Zeroizing::new(String::new());
                    let _ = write!(
                        line,
                        "{indent}{}: {}{comment}{newline}",
                        &text[span.key.clone()],
                        yaml_string(value.expose()).as_str()
                    );
                    let lines = span.lines.clone();
                    let ends_with_newline = text[lines.clone()].ends_with('\n');
                    let replacement = if ends_with_newline {
                        line.as_str()
                    } else {
                        line.trim_end_matches(['\n', '\r'])
                    };
                    splice(text, lines, replacement)
                }
            }
        }
        // A new key, or one that so far only comes from a merge: a new explicit entry.
        (Change::Set(value), _) => {
            if format == Format::Yaml && yaml_key(key).chars().count() > 1024 {
                return Err(EditError::KeyTooLong);
            }
            insert(format, text, doc, key, value, newline)
        }
    };
    verify(format, &edited, doc, key, change)?;
    Ok(Some(edited))
}

/// `text` with the block scalar header at `indicator` (`|` or `>`, then an indentation digit
/// and a chomping sign in either order) set to strip chomping (`-`).
fn strip_chomping(text: &str, indicator: usize) -> Zeroizing<String> {
    let header_end = text[indicator + 1..]
        .find(|c: char| !(c.is_ascii_digit() || c == '+' || c == '-'))
        .map_or(text.len(), |i| indicator + 1 + i);
    let digits: String = text[indicator + 1..header_end]
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    splice(text, indicator + 1..header_end, &format!("{digits}-"))
}

fn splice(text: &str, range: std::ops::Range<usize>, with: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(text.len() + with.len()));
    out.push_str(&text[..range.start]);
    out.push_str(with);
    out.push_str(&text[range.end..]);
    out
}

/// Removes entry `i` of a `{...}` mapping with one of its commas.
fn delete_braced(
    text: &str,
    doc: &Document,
    i: usize,
    open: usize,
    close: usize,
) -> Zeroizing<String> {
    let spans: Vec<_> = doc.entries.iter().filter_map(|e| e.span.clone()).collect();
    let here = &spans[i];
    if spans.len() == 1 {
        // The only entry: an empty mapping.
        return splice(text, open + 1..close, "");
    }
    if i + 1 < spans.len() {
        // Up to the next key: the entry, its comma and the space before the next key.
        splice(text, here.key.start..spans[i + 1].key.start, "")
    } else {
        // The last entry: from the end of the previous value, taking its comma.
        splice(text, spans[i - 1].value.end..here.value.end, "")
    }
}

/// Adds a new entry.
fn insert(
    format: Format,
    text: &str,
    doc: &Document,
    key: &str,
    value: &Secret,
    newline: &str,
) -> Zeroizing<String> {
    let (key_text, value_text) = match format {
        Format::Json => (json_string(key), json_string(value.expose())),
        Format::Yaml => (yaml_key(key), yaml_string(value.expose())),
    };
    let key_text = key_text.as_str();
    match &doc.shape {
        Shape::Empty {
            insert_at,
            null_value,
        } => {
            let mut entry = Zeroizing::new(String::new());
            match format {
                Format::Json => {
                    // Blank or `null`: the whole text becomes the object.
                    let _ = write!(
                        entry,
                        "{{{newline}  {key_text}: {}{newline}}}{newline}",
                        value_text.as_str()
                    );
                    return entry;
                }
                Format::Yaml => {
                    let _ = write!(entry, "{key_text}: {}{newline}", value_text.as_str());
                }
            }
            let (base, at) = match null_value {
                Some(null) => {
                    // Offsets after the removed `null` move back by its length.
                    let at = if *insert_at >= null.end {
                        insert_at - null.len()
                    } else {
                        *insert_at
                    };
                    (splice(text, null.clone(), ""), at)
                }
                None => (Zeroizing::new(text.to_owned()), *insert_at),
            };
            let at = at.min(base.len());
            let needs_newline = at > 0 && !base[..at].ends_with('\n');
            let mut with = Zeroizing::new(String::new());
            if needs_newline {
                with.push_str(newline);
            }
            with.push_str(&entry);
            splice(&base, at..at, &with)
        }
        Shape::Block {
            insert_at,
            indent,
            last_block_indicator,
            ..
        } => {
            let at = *insert_at;
            let mut with = Zeroizing::new(String::new());
            let mut base = Zeroizing::new(text.to_owned());
            if at > 0 && !text[..at].ends_with('\n') {
                with.push_str(newline);
                // A block scalar that ended the file had no final line break; the line break
                // added before the new entry would join its value unless it strips it.
                if let Some(indicator) = last_block_indicator {
                    base = strip_chomping(text, *indicator);
                }
            }
            let _ = write!(
                with,
                "{}{key_text}: {}{newline}",
                " ".repeat(*indent),
                value_text.as_str()
            );
            // Stripping changes at most one header character, before `at`.
            let at = at + base.len() - text.len();
            splice(&base, at..at, &with)
        }
        Shape::Braced { open, close } => {
            let spans: Vec<_> = doc.entries.iter().filter_map(|e| e.span.clone()).collect();
            let mut with = Zeroizing::new(String::new());
            match spans.len() {
                0 => {
                    let _ = match format {
                        Format::Json => write!(
                            with,
                            "{newline}  {key_text}: {}{newline}",
                            value_text.as_str()
                        ),
                        Format::Yaml => write!(with, "{key_text}: {}", value_text.as_str()),
                    };
                    splice(text, open + 1..*close, &with)
                }
                n => {
                    // The same separator as before the last entry.
                    // The same layout as before the last entry: its line break and indentation,
                    // or a space (comments are not copied).
                    let before_last = if n == 1 {
                        &text[open + 1..spans[0].key.start]
                    } else {
                        &text[spans[n - 2].value.end..spans[n - 1].key.start]
                    };
                    let indentation = before_last.rsplit('\n').next().unwrap_or_default();
                    let separator = if before_last.contains('\n') && indentation.trim().is_empty() {
                        format!("{newline}{indentation}")
                    } else if before_last.is_empty() && format == Format::Json {
                        String::new()
                    } else {
                        " ".to_owned()
                    };
                    let _ = write!(with, ",{separator}{key_text}: {}", value_text.as_str());
                    let at = spans[n - 1].value.end;
                    splice(text, at..at, &with)
                }
            }
        }
    }
}

/// Parses the edited text and checks that exactly the intended entry changed.
fn verify(
    format: Format,
    edited: &str,
    before: &Document,
    key: &str,
    change: Change<'_>,
) -> Result<(), EditError> {
    let after = document::parse(format, edited).map_err(EditError::NotVerified)?;
    let not_verified = |message: &str| {
        EditError::NotVerified(ParseFailure {
            line: None,
            column: None,
            message: message.to_owned(),
        })
    };
    for entry in &before.entries {
        if entry.key == key {
            continue;
        }
        match after.get(&entry.key) {
            Some(now) if now.value == entry.value => {}
            _ => return Err(not_verified("another entry would change")),
        }
    }
    let expected_len = before.entries.len() + usize::from(matches!(change, Change::Set(_)))
        - usize::from(before.get(key).is_some());
    if after.entries.len() != expected_len {
        return Err(not_verified("the number of entries would be wrong"));
    }
    let ok = match change {
        Change::Set(value) => {
            matches!(&after.get(key).map(|e| &e.value), Some(Value::Text(v)) if v == value)
        }
        Change::Delete => after.get(key).is_none(),
    };
    if ok {
        Ok(())
    } else {
        Err(not_verified(
            "the changed entry would not read back as written",
        ))
    }
}

/// A JSON string literal.
pub(crate) fn json_string(value: &str) -> Zeroizing<String> {
    // Serialising a `str` cannot fail.
    Zeroizing::new(serde_json::to_string(value).unwrap_or_default())
}

/// A YAML double-quoted scalar that every reader (PyYAML's YAML 1.1 included) reads as this
/// exact string: no implicit typing applies to quoted scalars, and characters a YAML reader
/// refuses or folds are escaped.
pub(crate) fn yaml_string(value: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(value.len() + 2));
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if printable_in_yaml(c) => out.push(c),
            c if (c as u32) <= 0xff => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08X}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Characters PyYAML's reader accepts as they are (its `NON_PRINTABLE` complement), minus the
/// line breaks and the BOM, which are escaped.
fn printable_in_yaml(c: char) -> bool {
    matches!(c, '\x20'..='\x7e' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// A key for a new YAML entry: plain when no reader could take it for anything but this
/// string, double-quoted otherwise.
fn yaml_key(key: &str) -> Zeroizing<String> {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !matches!(
            key.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "true" | "false" | "on" | "off" | "null"
        );
    if plain {
        Zeroizing::new(key.to_owned())
    } else {
        yaml_string(key)
    }
}

impl From<EditError> for ParseFailure {
    fn from(e: EditError) -> Self {
        match e {
            EditError::KeyTooLong => ParseFailure {
                line: None,
                column: None,
                message: "the key is longer than 1024 characters, the most a YAML key may have"
                    .to_owned(),
            },
            EditError::Merged { line } => ParseFailure {
                line: Some(line),
                column: None,
                message: "the key's value comes from a YAML merge key (<<); remove it from the \
                          merged mapping by hand"
                    .to_owned(),
            },
            EditError::NotVerified(failure) => ParseFailure {
                message: format!(
                    "the file cannot be edited safely ({}); it was left unchanged",
                    failure.message
                ),
                ..failure
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(format: Format, text: &str, key: &str, change: Change<'_>) -> String {
        let doc = document::parse(format, text).unwrap();
        match apply(format, text, &doc, key, change).unwrap() {
            Some(t) => t.to_string(),
            None => text.to_owned(),
        }
    }

    fn set(format: Format, text: &str, key: &str, value: &str) -> String {
        edit(format, text, key, Change::Set(&Secret::new(value)))
    }

    fn del(format: Format, text: &str, key: &str) -> String {
        edit(format, text, key, Change::Delete)
    }

    #[test]
    fn json_edits_touch_only_their_entry() {
        let src = "{\n  \"big\": 123456789012345678901,\n  \"a\": \"x\"\n}\n";
        assert_eq!(
            set(Format::Json, src, "a", "y\"z"),
            "{\n  \"big\": 123456789012345678901,\n  \"a\": \"y\\\"z\"\n}\n"
        );
        assert_eq!(
            set(Format::Json, src, "new", "n"),
            "{\n  \"big\": 123456789012345678901,\n  \"a\": \"x\",\n  \"new\": \"n\"\n}\n"
        );
        assert_eq!(del(Format::Json, src, "big"), "{\n  \"a\": \"x\"\n}\n");
        assert_eq!(
            del(Format::Json, src, "a"),
            "{\n  \"big\": 123456789012345678901\n}\n"
        );
        assert_eq!(del(Format::Json, "{\"only\": 1}", "only"), "{}");
        assert_eq!(set(Format::Json, "", "k", "v"), "{\n  \"k\": \"v\"\n}\n");
        assert_eq!(set(Format::Json, "{}", "k", "v"), "{\n  \"k\": \"v\"\n}");
        assert_eq!(
            set(Format::Json, "{\"a\":1}", "k", "v"),
            "{\"a\":1,\"k\": \"v\"}"
        );
    }

    #[test]
    fn yaml_edits_keep_comments_and_untouched_text() {
        let src = "# secrets\nA: yes  # pyyaml reads a boolean\nB: 0x1F\nC: old # note\n";
        assert_eq!(
            set(Format::Yaml, src, "C", "new"),
            "# secrets\nA: yes  # pyyaml reads a boolean\nB: 0x1F\nC: \"new\" # note\n"
        );
        assert_eq!(
            set(Format::Yaml, src, "D", "on"),
            "# secrets\nA: yes  # pyyaml reads a boolean\nB: 0x1F\nC: old # note\nD: \"on\"\n"
        );
        assert_eq!(
            del(Format::Yaml, src, "B"),
            "# secrets\nA: yes  # pyyaml reads a boolean\nC: old # note\n"
        );
        let nested = "A:\n  x: 1\n  y: [2]\nB: b\n";
        assert_eq!(
            set(Format::Yaml, nested, "A", "flat"),
            "A: \"flat\"\nB: b\n"
        );
        assert_eq!(del(Format::Yaml, nested, "A"), "B: b\n");
        assert_eq!(set(Format::Yaml, "", "k", "v"), "k: \"v\"\n");
        assert_eq!(set(Format::Yaml, "# c\n", "k", "v"), "# c\nk: \"v\"\n");
        assert_eq!(set(Format::Yaml, "a: 1", "k", "v"), "a: 1\nk: \"v\"\n");
        assert_eq!(set(Format::Yaml, "{a: 1}", "k", "v"), "{a: 1, k: \"v\"}");
        assert_eq!(
            set(Format::Yaml, "123: OLD\n", "123", "new"),
            "123: \"new\"\n"
        );
        assert_eq!(del(Format::Yaml, "123: OLD\nx: 1\n", "123"), "x: 1\n");
    }

    #[test]
    fn merged_keys_are_overridden_by_a_new_entry_and_not_deleted() {
        let src = "base: &b\n  X: 1\n<<: *b\n";
        assert_eq!(
            set(Format::Yaml, src, "X", "2"),
            "base: &b\n  X: 1\n<<: *b\nX: \"2\"\n"
        );
        let doc = document::parse(Format::Yaml, src).unwrap();
        assert!(matches!(
            apply(Format::Yaml, src, &doc, "X", Change::Delete),
            Err(EditError::Merged { .. })
        ));
    }

    #[test]
    fn an_edit_that_would_break_another_entry_is_refused() {
        // Replacing A drops its anchor, which B refers to.
        let src = "A: &a shared\nB: *a\n";
        let doc = document::parse(Format::Yaml, src).unwrap();
        let new = Secret::new("x");
        assert!(matches!(
            apply(Format::Yaml, src, &doc, "A", Change::Set(&new)),
            Err(EditError::NotVerified(_))
        ));
    }

    #[test]
    fn yaml_strings_escape_what_readers_would_change() {
        assert_eq!(yaml_string("a\"b\\c\nd\te").as_str(), r#""a\"b\\c\nd\te""#);
        assert_eq!(
            yaml_string("\u{1}\u{85}\u{2028}\u{feff}").as_str(),
            r#""\x01\x85\u2028\uFEFF""#
        );
        assert_eq!(yaml_key("HF_TOKEN").as_str(), "HF_TOKEN");
        for quoted in ["yes", "On", "123", "a b", "", "<<", "=", "~"] {
            assert!(yaml_key(quoted).starts_with('"'), "{quoted}");
        }
    }
}

/// Cases found by review, each checked against what PyYAML reads (see the integration
/// tests for the real PyYAML).
#[cfg(test)]
mod review_tests {
    use super::*;

    fn set(text: &str, key: &str, value: &str) -> Result<String, EditError> {
        let doc = document::parse(Format::Yaml, text).unwrap();
        apply(
            Format::Yaml,
            text,
            &doc,
            key,
            Change::Set(&Secret::new(value)),
        )
        .map(|t| t.map_or_else(|| text.to_owned(), |t| t.to_string()))
    }

    fn value(text: &str, key: &str) -> String {
        match &document::parse(Format::Yaml, text)
            .unwrap()
            .get(key)
            .unwrap()
            .value
        {
            Value::Text(s) => s.expose().to_owned(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn a_block_scalar_ending_the_file_keeps_its_value_when_an_entry_follows() {
        for (src, header) in [
            ("A: |\n  tok", "|-"),
            ("A: >+\n  tok", ">-"),
            ("A: |2\n  tok", "|2-"),
        ] {
            assert_eq!(value(src, "A"), "tok", "{src:?}");
            let out = set(src, "B", "v").unwrap();
            assert_eq!(out, format!("A: {header}\n  tok\nB: \"v\"\n"), "{src:?}");
            assert_eq!(value(&out, "A"), "tok");
        }
    }

    #[test]
    fn deleting_the_only_entry_leaves_an_empty_mapping() {
        let doc = document::parse(Format::Yaml, "A: 1\n...\n").unwrap();
        let out = apply(Format::Yaml, "A: 1\n...\n", &doc, "A", Change::Delete)
            .unwrap()
            .unwrap();
        assert_eq!(out.as_str(), "{}\n...\n");
        let doc = document::parse(Format::Yaml, "base: &b {X: 1}\n<<: *b\n").unwrap();
        let out = apply(
            Format::Yaml,
            "base: &b {X: 1}\n<<: *b\n",
            &doc,
            "base",
            Change::Delete,
        );
        assert!(out.is_err(), "the merge refers to it");
    }

    #[test]
    fn flow_mappings_with_spaces_inside_the_braces_are_edited() {
        assert_eq!(
            set("{ A: 1, B: 2 }\n", "A", "x").unwrap(),
            "{ A: \"x\", B: 2 }\n"
        );
        assert_eq!(
            set("{ A: 1, B: 2 }\n", "C", "x").unwrap(),
            "{ A: 1, B: 2, C: \"x\" }\n"
        );
        assert_eq!(set("{ }\n", "C", "x").unwrap(), "{C: \"x\"}\n");
        let doc = document::parse(Format::Yaml, "{ A: 1, B: 2 }\n").unwrap();
        let out = apply(Format::Yaml, "{ A: 1, B: 2 }\n", &doc, "B", Change::Delete).unwrap();
        assert_eq!(out.unwrap().as_str(), "{ A: 1 }\n");
        assert_eq!(
            set("{K0: v, K1: {x: 1} }\n", "K1", "y").unwrap(),
            "{K0: v, K1: \"y\" }\n"
        );
    }

    #[test]
    fn comments_are_not_copied_into_new_flow_entries() {
        let src = "{\n  A: 1, # first\n  B: 2\n}\n";
        assert_eq!(
            set(src, "C", "3").unwrap(),
            "{\n  A: 1, # first\n  B: 2,\n  C: \"3\"\n}\n"
        );
    }

    #[test]
    fn a_byte_order_mark_is_no_indentation() {
        assert_eq!(
            set("\u{feff}A: 1\n", "B", "v").unwrap(),
            "\u{feff}A: 1\nB: \"v\"\n"
        );
    }

    #[test]
    fn a_null_document_with_markers_gets_its_first_entry() {
        let out = set("--- null\n...\n", "K", "v").unwrap();
        assert_eq!(value(&out, "K"), "v");
        let out = set("--- ~\n...\n", "K", "v").unwrap();
        assert_eq!(value(&out, "K"), "v");
    }

    #[test]
    fn yaml_keys_longer_than_1024_characters_are_refused() {
        assert!(matches!(
            set("{A: 1}\n", &"K".repeat(1030), "v"),
            Err(EditError::KeyTooLong)
        ));
        assert!(set("A: 1\n", &"K".repeat(1000), "v").is_ok());
    }
}
