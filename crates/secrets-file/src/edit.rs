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
        (Change::Set(value), _) => insert(format, text, doc, key, value, newline),
    };
    verify(format, &edited, doc, key, change)?;
    Ok(Some(edited))
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
            let base = match null_value {
                Some(null) => splice(text, null.clone(), ""),
                None => Zeroizing::new(text.to_owned()),
            };
            let at = (*insert_at).min(base.len());
            let needs_newline = at > 0 && !base[..at].ends_with('\n');
            let mut with = Zeroizing::new(String::new());
            if needs_newline {
                with.push_str(newline);
            }
            with.push_str(&entry);
            splice(&base, at..at, &with)
        }
        Shape::Block { insert_at, indent } => {
            let at = *insert_at;
            let mut with = Zeroizing::new(String::new());
            if at > 0 && !text[..at].ends_with('\n') {
                with.push_str(newline);
            }
            let _ = write!(
                with,
                "{}{key_text}: {}{newline}",
                " ".repeat(*indent),
                value_text.as_str()
            );
            splice(text, at..at, &with)
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
                    let separator = if n == 1 {
                        match &text[open + 1..spans[0].key.start] {
                            "" if format == Format::Yaml => " ",
                            before_first => before_first,
                        }
                    } else {
                        let between = &text[spans[n - 2].value.end..spans[n - 1].key.start];
                        between.split_once(',').map_or(between, |(_, after)| after)
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
