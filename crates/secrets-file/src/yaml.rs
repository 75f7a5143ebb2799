//! The YAML reader, on `saphyr-parser`'s event stream with source spans.
//!
//! Values are taken as written: `port: 8080` is `8080`, `token: 0123` is `0123`, and
//! `enabled: yes` is `yes` (YAML readers disagree on what unquoted `yes`, `0x1F` or
//! `12:30:00` mean; the text is what the user wrote). A core-schema tag is checked
//! (`!!int hunter2` is an invalid value for its key, reported without the text). Aliases are
//! resolved without expanding collections, so an alias bomb costs nothing; merge keys (`<<`)
//! add the merged mapping's entries below the explicit ones, as PyYAML does.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};
use zeroize::Zeroize;

use crate::document::{
    Document, Entry, EntrySpan, LineIndex, MAX_DEPTH, Shape, Value, line_end, line_start, position,
};
use crate::parse::ParseFailure;

/// A node of the document, in an arena; children refer to nodes by index.
enum Node<'a> {
    Scalar {
        text: Cow<'a, str>,
        plain: bool,
        tag: Option<Cow<'a, Tag>>,
        span: Range<usize>,
    },
    Sequence {
        items: Vec<usize>,
        span: Range<usize>,
    },
    Mapping {
        entries: Vec<(usize, usize)>,
        span: Range<usize>,
        /// `{ ... }`: the offsets of the braces.
        braces: Option<(usize, usize)>,
    },
    Alias {
        target: usize,
        span: Range<usize>,
    },
}

/// The nodes, with owned scalar text wiped when dropped.
struct Arena<'a> {
    nodes: Vec<Node<'a>>,
    /// For each node, the end of its last content character (block collections end where
    /// their last child ends, not where the parser reports their end).
    content_end: Vec<usize>,
}

impl Drop for Arena<'_> {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Node::Scalar {
                text: Cow::Owned(text),
                ..
            } = node
            {
                text.zeroize();
            }
        }
    }
}

/// Character index -> byte offset (the parser counts characters).
struct Offsets<'a> {
    text: &'a str,
    /// `None` for ASCII text, where the two agree.
    table: Option<Vec<usize>>,
    base: usize,
}

impl<'a> Offsets<'a> {
    fn new(text: &'a str, base: usize) -> Self {
        let body = &text[base..];
        let table = (!body.is_ascii()).then(|| {
            body.char_indices()
                .map(|(i, _)| base + i)
                .chain(std::iter::once(text.len()))
                .collect()
        });
        Self { text, table, base }
    }

    fn byte(&self, chars: usize) -> usize {
        match &self.table {
            None => (self.base + chars).min(self.text.len()),
            Some(table) => table.get(chars).copied().unwrap_or(self.text.len()),
        }
    }

    fn range(&self, span: &Span) -> Range<usize> {
        self.byte(span.start.index())..self.byte(span.end.index())
    }
}

fn failure_at(text: &str, offset: usize, message: impl Into<String>) -> ParseFailure {
    let (line, column) = position(text, offset);
    ParseFailure {
        line: Some(line),
        column: Some(column),
        message: message.into(),
    }
}

/// The parser's messages are fixed strings, except one that quotes a character of the input.
fn scan_failure(text: &str, offsets: &Offsets<'_>, e: &ScanError) -> ParseFailure {
    let info = e.info();
    let message = if info.starts_with("unexpected character") {
        "unexpected character"
    } else {
        info
    };
    failure_at(text, offsets.byte(e.marker().index()), message)
}

pub(crate) fn parse(text: &str, base: usize) -> Result<Document, ParseFailure> {
    let offsets = Offsets::new(text, base);
    let mut arena = Arena {
        nodes: Vec::new(),
        content_end: Vec::new(),
    };
    let mut anchors: HashMap<usize, usize> = HashMap::new();
    // Open collections: (node index, is a mapping).
    let mut open: Vec<usize> = Vec::new();
    let mut root: Option<usize> = None;
    let mut documents = 0;
    let mut document_end: Option<usize> = None;
    for event in Parser::new_from_str(&text[base..]) {
        let (event, span) = event.map_err(|e| scan_failure(text, &offsets, &e))?;
        let range = offsets.range(&span);
        let new_node = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(failure_at(
                        text,
                        range.start,
                        "the file holds more than one YAML document",
                    ));
                }
                None
            }
            Event::DocumentEnd => {
                if range.end > range.start {
                    document_end = Some(range.start);
                }
                None
            }
            Event::Scalar(value, style, anchor, tag) => Some((
                Node::Scalar {
                    text: value,
                    plain: style == ScalarStyle::Plain,
                    tag,
                    span: range.clone(),
                },
                anchor,
            )),
            Event::Alias(id) => {
                let target = *anchors.get(&id).ok_or_else(|| {
                    failure_at(text, range.start, "an alias refers to an unknown anchor")
                })?;
                Some((
                    Node::Alias {
                        target,
                        span: range.clone(),
                    },
                    0,
                ))
            }
            Event::SequenceStart(anchor, _) => Some((
                Node::Sequence {
                    items: Vec::new(),
                    span: range.clone(),
                },
                anchor,
            )),
            Event::MappingStart(anchor, _) => {
                let brace = text[range.clone()].ends_with('{').then(|| range.end - 1);
                Some((
                    Node::Mapping {
                        entries: Vec::new(),
                        span: range.clone(),
                        braces: brace.map(|b| (b, b)),
                    },
                    anchor,
                ))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(done) = open.pop() else {
                    return Err(failure_at(text, range.start, "unbalanced collection"));
                };
                let flow_end = text[range.clone()].ends_with([']', '}']);
                if flow_end {
                    arena.content_end[done] = range.end;
                }
                if let Node::Mapping {
                    braces: Some((_, close)),
                    ..
                } = &mut arena.nodes[done]
                {
                    *close = range.start;
                }
                let end = arena.content_end[done];
                if let Some(&parent) = open.last() {
                    arena.content_end[parent] = arena.content_end[parent].max(end);
                }
                None
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => None,
        };
        let Some((node, anchor)) = new_node else {
            continue;
        };
        let is_collection = matches!(node, Node::Sequence { .. } | Node::Mapping { .. });
        let end = match &node {
            Node::Scalar { span, .. } | Node::Alias { span, .. } => span.end,
            Node::Sequence { span, .. } | Node::Mapping { span, .. } => span.end,
        };
        let index = arena.nodes.len();
        arena.nodes.push(node);
        arena.content_end.push(end);
        if anchor != 0 {
            anchors.insert(anchor, index);
        }
        match open.last() {
            None => root = Some(index),
            Some(&parent) => {
                arena.content_end[parent] = arena.content_end[parent].max(end);
                match &mut arena.nodes[parent] {
                    Node::Sequence { items, .. } => items.push(index),
                    Node::Mapping { entries, .. } => match entries.last_mut() {
                        Some((_, value)) if *value == usize::MAX => *value = index,
                        _ => entries.push((index, usize::MAX)),
                    },
                    _ => {}
                }
            }
        }
        if is_collection {
            open.push(index);
            if open.len() > MAX_DEPTH {
                return Err(failure_at(
                    text,
                    arena_start(&arena, index),
                    format!("values are nested deeper than {MAX_DEPTH} levels"),
                ));
            }
        }
    }
    interpret(text, &arena, root, document_end)
}

fn arena_start(arena: &Arena<'_>, index: usize) -> usize {
    match &arena.nodes[index] {
        Node::Scalar { span, .. }
        | Node::Alias { span, .. }
        | Node::Sequence { span, .. }
        | Node::Mapping { span, .. } => span.start,
    }
}

/// Follows aliases to the node they name.
fn resolve(arena: &Arena<'_>, mut index: usize) -> usize {
    // Anchors are defined before use, so an alias chain always moves backwards and ends.
    while let Node::Alias { target, .. } = &arena.nodes[index] {
        index = *target;
    }
    index
}

fn is_null_literal(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// The top-level shape and entries.
fn interpret(
    text: &str,
    arena: &Arena<'_>,
    root: Option<usize>,
    document_end: Option<usize>,
) -> Result<Document, ParseFailure> {
    let insert_at = document_end.map_or(text.len(), |end| line_start(text, end));
    let Some(root) = root else {
        return Document::new(
            Vec::new(),
            Shape::Empty {
                insert_at,
                null_value: None,
            },
        );
    };
    let (entries, span, braces) = match &arena.nodes[resolve(arena, root)] {
        Node::Mapping {
            entries,
            span,
            braces,
        } => (entries, span, braces),
        Node::Scalar {
            text: value,
            plain,
            tag,
            span,
        } if (*plain && tag.is_none() && is_null_literal(value))
            || tag.as_ref().is_some_and(|t| core_tag(t) == Some("null")) =>
        {
            return Document::new(
                Vec::new(),
                Shape::Empty {
                    insert_at,
                    null_value: Some(span.clone()),
                },
            );
        }
        other => {
            let found = match other {
                Node::Sequence { .. } => "a sequence",
                _ => "a scalar",
            };
            return Err(failure_at(
                text,
                arena_start(arena, root),
                format!("the top level must be a mapping of key to value, found {found}"),
            ));
        }
    };
    let line_index = LineIndex::new(text);
    let mut explicit = Vec::new();
    let mut merged: Vec<Entry> = Vec::new();
    // Where the last pair ends (merge keys included), for appending a new entry.
    let mut last_line_end = None;
    for &(key_index, value_index) in entries {
        let key_node = &arena.nodes[resolve(arena, key_index)];
        let key_start = arena_start(arena, key_index);
        let Node::Scalar {
            text: key, plain, ..
        } = key_node
        else {
            return Err(failure_at(
                text,
                key_start,
                "a key is a collection; keys must be scalars",
            ));
        };
        if value_index == usize::MAX {
            return Err(failure_at(text, key_start, "a key has no value"));
        }
        let end = arena.content_end[value_index].max(key_start + 1);
        last_line_end = Some(line_end(text, end - 1));
        if *plain && key == "<<" {
            merge(text, &line_index, arena, value_index, &mut merged)?;
            continue;
        }
        let key_range = key_start..match &arena.nodes[key_index] {
            Node::Scalar { span, .. } | Node::Alias { span, .. } => span.end,
            _ => key_start,
        };
        let value_range =
            arena_start(arena, value_index)..arena.content_end[value_index].max(key_range.end);
        let lines = if braces.is_some() {
            key_range.start..value_range.end
        } else {
            line_start(text, key_range.start)
                ..line_end(text, value_range.end.saturating_sub(1).max(key_range.start))
        };
        let (line, column) = line_index.position(key_range.start);
        explicit.push(Entry {
            key: key.to_string(),
            value: value_of(arena, value_index),
            line,
            column,
            span: Some(EntrySpan {
                key: key_range,
                value: value_range,
                lines,
            }),
        });
    }
    let shape = match braces {
        Some((open, close)) => Shape::Braced {
            open: *open,
            close: *close,
        },
        None => {
            let first_key = explicit
                .first()
                .and_then(|e| e.span.as_ref())
                .map_or(span.start, |s| s.key.start);
            let indent = first_key - line_start(text, first_key);
            let after_last = last_line_end.unwrap_or(insert_at);
            Shape::Block {
                insert_at: after_last,
                indent,
            }
        }
    };
    // Explicit keys win over merged ones (PyYAML's rule); the first merged mapping wins over
    // later ones.
    for entry in merged {
        if !explicit.iter().any(|e| e.key == entry.key) {
            explicit.push(entry);
        }
    }
    Document::new(explicit, shape)
}

/// The entries a merge key's value brings: a mapping, or a sequence of mappings.
fn merge(
    text: &str,
    line_index: &LineIndex<'_>,
    arena: &Arena<'_>,
    value_index: usize,
    merged: &mut Vec<Entry>,
) -> Result<(), ParseFailure> {
    let sources: Vec<usize> = match &arena.nodes[resolve(arena, value_index)] {
        Node::Mapping { .. } => vec![resolve(arena, value_index)],
        Node::Sequence { items, .. } => items.iter().map(|&i| resolve(arena, i)).collect(),
        _ => {
            return Err(failure_at(
                text,
                arena_start(arena, value_index),
                "a merge key (<<) must merge a mapping or a list of mappings",
            ));
        }
    };
    for source in sources {
        let Node::Mapping { entries, .. } = &arena.nodes[source] else {
            return Err(failure_at(
                text,
                arena_start(arena, source),
                "a merge key (<<) must merge a mapping or a list of mappings",
            ));
        };
        for &(k, v) in entries {
            let Node::Scalar { text: key, .. } = &arena.nodes[resolve(arena, k)] else {
                continue;
            };
            if v == usize::MAX || merged.iter().any(|e| e.key == key.as_ref()) {
                continue;
            }
            let (line, column) = line_index.position(arena_start(arena, k));
            merged.push(Entry {
                key: key.to_string(),
                value: value_of(arena, v),
                line,
                column,
                span: None,
            });
        }
    }
    Ok(())
}

/// The suffix of a core-schema tag (`!!int` -> `int`).
fn core_tag(tag: &Tag) -> Option<&str> {
    (tag.handle == "tag:yaml.org,2002:" || tag.handle == "!!").then_some(tag.suffix.as_str())
}

/// What a value node means as a secret.
fn value_of(arena: &Arena<'_>, index: usize) -> Value {
    match &arena.nodes[resolve(arena, index)] {
        Node::Sequence { .. } => Value::Rejected("a sequence"),
        Node::Mapping { .. } => Value::Rejected("a mapping"),
        Node::Alias { .. } => Value::Rejected("an alias"),
        Node::Scalar {
            text, plain, tag, ..
        } => match tag.as_deref().map(|t| (core_tag(t), t)) {
            None if *plain && is_null_literal(text) => Value::Null,
            None => Value::Text(secrets_core::Secret::new(text.as_ref())),
            Some((Some("str"), _)) => Value::Text(secrets_core::Secret::new(text.as_ref())),
            Some((Some("null"), _)) => Value::Null,
            Some((Some("int"), _)) if is_yaml_int(text) => {
                Value::Text(secrets_core::Secret::new(text.as_ref()))
            }
            Some((Some("int"), _)) => Value::Rejected("tagged !!int but not an integer"),
            Some((Some("float"), _)) if is_yaml_float(text) => {
                Value::Text(secrets_core::Secret::new(text.as_ref()))
            }
            Some((Some("float"), _)) => Value::Rejected("tagged !!float but not a number"),
            Some((Some("bool"), _)) if is_yaml_bool(text) => {
                Value::Text(secrets_core::Secret::new(text.as_ref()))
            }
            Some((Some("bool"), _)) => Value::Rejected("tagged !!bool but not a boolean"),
            Some((Some("binary"), _)) => Value::Rejected("binary data (!!binary)"),
            Some((Some("timestamp"), _)) => Value::Rejected("a timestamp (!!timestamp)"),
            Some(_) => Value::Rejected("a value with an unsupported tag"),
        },
    }
}

/// Integers as YAML 1.1 (PyYAML) and 1.2 write them: decimal, `0x`, `0o`/`0`, `0b`, `_`
/// separators, sexagesimal `1:30`.
fn is_yaml_int(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let digits =
        |s: &str, ok: fn(char) -> bool| !s.is_empty() && s.chars().all(|c| ok(c) || c == '_');
    if let Some(hex) = body.strip_prefix("0x") {
        return digits(hex, |c| c.is_ascii_hexdigit());
    }
    if let Some(oct) = body.strip_prefix("0o") {
        return digits(oct, |c| ('0'..='7').contains(&c));
    }
    if let Some(bin) = body.strip_prefix("0b") {
        return digits(bin, |c| c == '0' || c == '1');
    }
    let mut parts = body.split(':');
    let first = parts.next().unwrap_or_default();
    digits(first, |c| c.is_ascii_digit())
        && parts.all(|p| !p.is_empty() && p.len() <= 2 && p.chars().all(|c| c.is_ascii_digit()))
}

/// Floats as YAML 1.1 and 1.2 write them, with `.inf`/`.nan`.
fn is_yaml_float(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    if matches!(body, ".inf" | ".Inf" | ".INF") || matches!(text, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let body = body.replace('_', "");
    !body.is_empty() && body.contains(|c: char| c.is_ascii_digit()) && body.parse::<f64>().is_ok()
        || is_yaml_int(text)
}

/// Booleans as YAML 1.1 (PyYAML) and 1.2 write them.
fn is_yaml_bool(text: &str) -> bool {
    matches!(
        text,
        "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "yes"
            | "Yes"
            | "YES"
            | "no"
            | "No"
            | "NO"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(doc: &Document, key: &str) -> String {
        match &doc.get(key).unwrap_or_else(|| panic!("no key {key}")).value {
            Value::Text(s) => s.expose().to_owned(),
            Value::Null => "<null>".into(),
            Value::Rejected(why) => format!("<{why}>"),
        }
    }

    #[test]
    fn scalars_are_taken_as_written() {
        let doc = parse(
            "s: v\n123: num-key\nb: yes\nz: 0123\nh: 0x1F\nt: 12:30:00\nn: ~\ne:\nl: [1, 2]\nq: 'x'\nm:\n  a: 1\n",
            0,
        )
        .unwrap();
        for (key, want) in [
            ("s", "v"),
            ("123", "num-key"),
            ("b", "yes"),
            ("z", "0123"),
            ("h", "0x1F"),
            ("t", "12:30:00"),
            ("n", "<null>"),
            ("e", "<null>"),
            ("l", "<a sequence>"),
            ("q", "x"),
            ("m", "<a mapping>"),
        ] {
            assert_eq!(shown(&doc, key), want, "{key}");
        }
    }

    #[test]
    fn tags_are_checked_without_echoing_the_text() {
        let doc = parse(
            "a: !!int hunter2\nb: !!int 0x1F\nc: !!str 12\nd: !!binary aGk=\ne: !custom x\nf: !!bool on\n",
            0,
        )
        .unwrap();
        assert_eq!(shown(&doc, "a"), "<tagged !!int but not an integer>");
        assert_eq!(shown(&doc, "b"), "0x1F");
        assert_eq!(shown(&doc, "c"), "12");
        assert_eq!(shown(&doc, "d"), "<binary data (!!binary)>");
        assert_eq!(shown(&doc, "e"), "<a value with an unsupported tag>");
        assert_eq!(shown(&doc, "f"), "on");
    }

    #[test]
    fn aliases_resolve_and_merges_add_entries_below_explicit_ones() {
        let doc = parse(
            "base: &b\n  X: from-base\n  Y: base-y\nv: &v shared\nw: *v\n<<: *b\nY: explicit\n",
            0,
        )
        .unwrap();
        assert_eq!(shown(&doc, "w"), "shared");
        assert_eq!(shown(&doc, "X"), "from-base");
        assert_eq!(shown(&doc, "Y"), "explicit");
        assert!(doc.get("X").unwrap().span.is_none());
    }

    #[test]
    fn an_alias_bomb_costs_nothing() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..30 {
            bomb.push_str(&format!(
                "l{i}: &l{i} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n",
                p = if i == 1 {
                    "a".to_owned()
                } else {
                    format!("l{}", i - 1)
                }
            ));
        }
        bomb.push_str("K: v\n");
        let started = std::time::Instant::now();
        let doc = parse(&bomb, 0).unwrap();
        assert_eq!(shown(&doc, "K"), "v");
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
    }

    #[test]
    fn structure_problems_are_refused_with_positions() {
        for (src, needle) in [
            ("- a\n", "found a sequence"),
            ("just text\n", "found a scalar"),
            ("a: 1\n---\nb: 2\n", "more than one YAML document"),
            ("a: 1\na: 2\n", "appears twice"),
            ("? [x]\n: v\n", "keys must be scalars"),
            ("a: *nope\n", "unknown anchor"),
        ] {
            let e = parse(src, 0).unwrap_err();
            assert!(e.message.contains(needle), "{src:?}: {e:?}");
            assert!(e.line.is_some(), "{src:?}");
        }
    }

    #[test]
    fn empty_and_null_documents_are_empty() {
        for src in ["", "# only a comment\n", "~\n", "null", "---\n...\n"] {
            let doc = parse(src, 0).unwrap();
            assert!(doc.entries.is_empty(), "{src:?}");
            assert!(matches!(doc.shape, Shape::Empty { .. }), "{src:?}");
        }
    }

    #[test]
    fn block_entries_cover_whole_lines() {
        let src = "# head\nA: one # note\nB:\n  nested: 1\n  more: [2]\n# tail\nC: |\n  block\n";
        let doc = parse(src, 0).unwrap();
        let lines = |k: &str| {
            let span = doc.get(k).unwrap().span.clone().unwrap();
            src[span.lines].to_owned()
        };
        assert_eq!(lines("A"), "A: one # note\n");
        assert_eq!(lines("B"), "B:\n  nested: 1\n  more: [2]\n");
        assert_eq!(lines("C"), "C: |\n  block\n");
        assert_eq!(
            doc.shape,
            Shape::Block {
                insert_at: src.len(),
                indent: 0
            }
        );
    }

    #[test]
    fn multibyte_text_keeps_byte_offsets_right() {
        let src = "ü: \"é\"\nK: v\n";
        let doc = parse(src, 0).unwrap();
        let span = doc.get("K").unwrap().span.clone().unwrap();
        assert_eq!(&src[span.key], "K");
        assert_eq!(&src[span.value], "v");
        assert_eq!(shown(&doc, "ü"), "é");
    }

    #[test]
    fn offsets_inside_multibyte_characters_do_not_panic() {
        // Found by the fuzz target: "one before the end" of a key landed inside U+FFFB.
        let _ = parse("\u{fffb}: ", 0);
        let _ = parse("\u{fffb}: \u{fffb}\n", 0);
        let doc = parse("é: ü\n", 0).unwrap();
        assert_eq!(shown(&doc, "é"), "ü");
    }

    #[test]
    fn deep_nesting_is_refused_quickly() {
        let started = std::time::Instant::now();
        let brackets = format!("k: {}", "[".repeat(500_000));
        assert!(parse(&brackets, 0).is_err());
        let nested: String = (0..100)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        let e = parse(&nested, 0).unwrap_err();
        assert!(e.message.contains("nested deeper"), "{e:?}");
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
    }
}
