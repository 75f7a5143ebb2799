//! The secrets document as this crate understands it: the top-level entries, in file order,
//! each with its key, its value as a secret (or why it cannot be one), and where it sits in
//! the text, so that a write can change one entry and leave every other byte as it was.
//!
//! Reading and writing share this one parser: a file that `get` and `doctor` accept, `set`
//! accepts, and the reverse. Parsing is bounded (size and nesting limits) and no message ever
//! contains text from the file other than top-level key names.

use std::collections::HashMap;
use std::ops::Range;

use secrets_core::Secret;

use crate::Format;
use crate::parse::ParseFailure;

/// Largest file accepted: secrets files are small, and a bound keeps hostile input cheap.
pub(crate) const MAX_FILE_BYTES: usize = 1 << 20;

/// Deepest nesting accepted (values nested deeper than the top-level mapping).
pub(crate) const MAX_DEPTH: usize = 64;

/// A value under a top-level key.
#[derive(Debug)]
pub(crate) enum Value {
    /// A string, or a number or boolean as written in the file (`0123` stays `0123`).
    Text(Secret),
    /// `null` (JSON), `~`/`null`/empty (YAML): the key counts as missing, as in the original.
    Null,
    /// Not usable as a secret; the reason names the kind (`a sequence`, `tagged !!int but not
    /// an integer`), never the content.
    Rejected(&'static str),
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Text(a), Self::Text(b)) => a == b,
            (Self::Null, Self::Null) => true,
            (Self::Rejected(a), Self::Rejected(b)) => a == b,
            _ => false,
        }
    }
}

/// Where an entry sits in the text (byte offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntrySpan {
    /// The key token as written (with quotes, anchor or tag).
    pub(crate) key: Range<usize>,
    /// The value as written (for a block collection, up to its last content character).
    pub(crate) value: Range<usize>,
    /// Whole lines from the key's line to the value's last line, newline included (block
    /// mappings only; for `{...}` mappings the same as key start .. value end).
    pub(crate) lines: Range<usize>,
}

/// One top-level entry.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) value: Value,
    /// 1-based position of the key, for messages.
    pub(crate) line: usize,
    pub(crate) column: usize,
    /// `None` for an entry that comes from a YAML merge key (`<<`), not from its own text.
    pub(crate) span: Option<EntrySpan>,
}

/// How the top level is written, for inserting a new entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    /// No mapping yet: blank, comments only, or a top-level null (`null_value` is its range).
    Empty {
        insert_at: usize,
        null_value: Option<Range<usize>>,
    },
    /// `{ ... }` (JSON, or a YAML flow mapping): offsets of the braces.
    Braced { open: usize, close: usize },
    /// A YAML block mapping: new entries go at `insert_at`, indented by `indent` columns.
    Block { insert_at: usize, indent: usize },
}

/// A parsed secrets document.
#[derive(Debug)]
pub(crate) struct Document {
    pub(crate) entries: Vec<Entry>,
    pub(crate) shape: Shape,
    index: HashMap<String, usize>,
}

impl Document {
    /// A document from its entries; fails on a repeated key (ambiguous: JSON and YAML readers
    /// disagree on which one wins).
    pub(crate) fn new(entries: Vec<Entry>, shape: Shape) -> Result<Self, ParseFailure> {
        let mut index = HashMap::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            if let Some(first) = index.insert(entry.key.clone(), i) {
                let first = &entries[first];
                return Err(ParseFailure {
                    line: Some(entry.line),
                    column: Some(entry.column),
                    // The name is left out: a parser that mistook a value for a key must not
                    // echo it.
                    message: format!(
                        "a key appears twice (first at line {}, again here); remove one",
                        first.line
                    ),
                });
            }
        }
        Ok(Self {
            entries,
            shape,
            index,
        })
    }

    /// The entry of a key.
    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        self.index.get(key).map(|&i| &self.entries[i])
    }

    /// The position of a key's entry.
    pub(crate) fn position(&self, key: &str) -> Option<usize> {
        self.index.get(key).copied()
    }

    /// The keys, in file order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.key.as_str())
    }
}

/// A key shown in a message: control characters escaped.
pub(crate) fn escape_key(key: &str) -> String {
    key.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// Parses a whole document, within the size and depth limits.
pub(crate) fn parse(format: Format, text: &str) -> Result<Document, ParseFailure> {
    if text.len() > MAX_FILE_BYTES {
        return Err(ParseFailure {
            line: None,
            column: None,
            message: format!(
                "the file is larger than {} KiB; a secrets file this large is refused",
                MAX_FILE_BYTES / 1024
            ),
        });
    }
    // A byte-order mark is allowed and kept; offsets stay relative to the whole text.
    let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
    match format {
        Format::Json => crate::json::parse(text, bom),
        Format::Yaml => crate::yaml::parse(text, bom),
    }
}

/// Line starts of a text, for positions of many offsets without rescanning it.
pub(crate) struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = char_floor(self.text, offset);
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        (line, self.text[start..offset].chars().count() + 1)
    }
}

/// 1-based line and column (in characters) of a byte offset (one lookup; for many, use a
/// [`LineIndex`]).
pub(crate) fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..char_floor(text, offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// `offset`, moved back to the start of the character it falls in (offsets computed as "one
/// before the end" can land inside a multi-byte character).
fn char_floor(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The offset of the start of the line holding `offset`.
pub(crate) fn line_start(text: &str, offset: usize) -> usize {
    let offset = char_floor(text, offset);
    text[..offset].rfind('\n').map_or(0, |i| i + 1)
}

/// The offset just after the end of the line holding `offset` (after its `\n`, or the end).
pub(crate) fn line_end(text: &str, offset: usize) -> usize {
    let offset = char_floor(text, offset);
    text[offset..]
        .find('\n')
        .map_or(text.len(), |i| offset + i + 1)
}
