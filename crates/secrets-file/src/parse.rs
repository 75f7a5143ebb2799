//! Parsing a secrets document into key -> entry without ever echoing a value in an error.
//!
//! Deserialising straight into `HashMap<String, String>` would produce serde messages such as
//! `invalid type: string "hunter2", expected a map`, which leak values. These visitors name
//! only the kind of a value.

use std::collections::HashMap;
use std::fmt;

use std::path::Path;

use secrets_core::{ErrorKind, Location, ProviderError, Secret};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::{Format, PROVIDER_NAME};

/// One value of the document.
#[derive(Debug)]
pub(crate) enum Entry {
    /// A string, number or boolean, as text.
    Text(Secret),
    /// A value that cannot be a secret; the string names its kind (`null`, `a sequence`, ...).
    Unsupported(&'static str),
}

/// Where and why a document failed to parse.
#[derive(Debug, Clone)]
pub(crate) struct ParseFailure {
    pub(crate) line: Option<usize>,
    pub(crate) column: Option<usize>,
    pub(crate) message: String,
}

impl ParseFailure {
    /// The document is not UTF-8; `(line, column)` of the first invalid byte.
    pub(crate) fn not_utf8((line, column): (usize, usize)) -> Self {
        Self {
            line: Some(line),
            column: Some(column),
            message: "the file is not valid UTF-8".to_owned(),
        }
    }

    /// The provider error for this failure in the file at `path`.
    pub(crate) fn to_error(&self, path: &Path) -> ProviderError {
        ProviderError::new(PROVIDER_NAME, ErrorKind::Malformed, self.message.clone())
            .with_location(Location::file_at(path, self.line, self.column))
    }
}

/// The 1-based line and column (in characters) of byte `offset` of a document whose first
/// `offset` bytes are valid UTF-8.
pub(crate) fn text_position(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = std::str::from_utf8(&bytes[..offset]).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Parses a whole document. Blank content is an empty mapping.
pub(crate) fn parse(format: Format, text: &str) -> Result<HashMap<String, Entry>, ParseFailure> {
    if text.trim().is_empty() {
        return Ok(HashMap::new());
    }
    match format {
        Format::Json => serde_json::from_str::<Document>(text)
            .map(|d| d.0)
            .map_err(|e| json_failure(&e)),
        Format::Yaml => serde_yaml::from_str::<Document>(text)
            .map(|d| d.0)
            .map_err(|e| yaml_failure(&e)),
    }
}

pub(crate) fn json_failure(e: &serde_json::Error) -> ParseFailure {
    let text = e.to_string();
    // serde_json appends " at line L column C"; the position is reported separately.
    let message = match text.rfind(" at line ") {
        Some(at) if e.line() > 0 => text[..at].to_owned(),
        _ => text,
    };
    ParseFailure {
        line: (e.line() > 0).then_some(e.line()),
        column: (e.line() > 0).then_some(e.column()),
        message,
    }
}

pub(crate) fn yaml_failure(e: &serde_yaml::Error) -> ParseFailure {
    let location = e.location();
    let text = e.to_string();
    let message = match text.find(" at line ") {
        Some(at) if location.is_some() => text[..at].to_owned(),
        _ => text,
    };
    ParseFailure {
        line: location.as_ref().map(|l| l.line()),
        column: location.as_ref().map(|l| l.column()),
        message,
    }
}

struct Document(HashMap<String, Entry>);

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DocumentVisitor)
    }
}

struct DocumentVisitor;

fn not_a_mapping<E: de::Error>(kind: &str) -> E {
    E::custom(format_args!(
        "the top level must be a mapping of key to value, found {kind}"
    ))
}

impl<'de> Visitor<'de> for DocumentVisitor {
    type Value = Document;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of key to value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
        let mut entries = HashMap::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((Key(key), entry)) = map.next_entry::<Key, Entry>()? {
            entries.insert(key, entry);
        }
        Ok(Document(entries))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Document, E> {
        Ok(Document(HashMap::new()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Document, E> {
        Ok(Document(HashMap::new()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Document, A::Error> {
        Err(not_a_mapping("a sequence"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Document, E> {
        Err(not_a_mapping("a string"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Document, E> {
        Err(not_a_mapping("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Document, E> {
        Err(not_a_mapping("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Document, E> {
        Err(not_a_mapping("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Document, E> {
        Err(not_a_mapping("a number"))
    }
}

/// A key: strings as is; YAML's numeric and boolean keys as their text.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(Key(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Key, E> {
        Ok(Key(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Key, E> {
        Ok(Key(format!("{v:?}")))
    }
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = Entry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Entry, E> {
        Ok(Entry::Text(Secret::new(v)))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Entry, E> {
        Ok(Entry::Text(Secret::new(v)))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Entry, E> {
        Ok(Entry::Text(Secret::new(v.to_string())))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Entry, E> {
        Ok(Entry::Text(Secret::new(v.to_string())))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Entry, E> {
        Ok(Entry::Text(Secret::new(v.to_string())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Entry, E> {
        Ok(Entry::Text(Secret::new(format!("{v:?}"))))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Entry, E> {
        Ok(Entry::Unsupported("null"))
    }

    fn visit_none<E: de::Error>(self) -> Result<Entry, E> {
        Ok(Entry::Unsupported("null"))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Entry, D::Error> {
        Entry::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entry, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Entry::Unsupported("a sequence"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Entry::Unsupported("a mapping"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(map: &HashMap<String, Entry>, key: &str) -> String {
        match &map[key] {
            Entry::Text(s) => s.expose().to_owned(),
            Entry::Unsupported(kind) => format!("<{kind}>"),
        }
    }

    #[test]
    fn json_scalars_become_text_and_others_are_flagged() {
        let map = parse(
            Format::Json,
            r#"{"s":"v","i":42,"neg":-1,"f":1.5,"b":true,"n":null,"a":[1],"m":{"x":1}}"#,
        )
        .unwrap();
        let got: Vec<String> = ["s", "i", "neg", "f", "b", "n", "a", "m"]
            .iter()
            .map(|k| text(&map, k))
            .collect();
        assert_eq!(
            got,
            [
                "v",
                "42",
                "-1",
                "1.5",
                "true",
                "<null>",
                "<a sequence>",
                "<a mapping>"
            ]
        );
    }

    #[test]
    fn yaml_scalars_and_keys() {
        let map = parse(
            Format::Yaml,
            "s: v\n123: num-key\nb: false\nn: ~\nl: [1, 2]\n",
        )
        .unwrap();
        assert_eq!(text(&map, "s"), "v");
        assert_eq!(text(&map, "123"), "num-key");
        assert_eq!(text(&map, "b"), "false");
        assert_eq!(text(&map, "n"), "<null>");
        assert_eq!(text(&map, "l"), "<a sequence>");
    }

    #[test]
    fn positions_of_invalid_utf8_are_one_based() {
        let bytes = b"{\n  \"k\": \"\xff\"\n}";
        // "{", newline, two spaces, "k", colon, space, a quote: the bad byte is byte 10.
        assert_eq!(text_position(bytes, 10), (2, 9));
        assert_eq!(text_position(b"\xff", 0), (1, 1));
    }

    #[test]
    fn blank_documents_are_empty() {
        assert!(parse(Format::Json, " \n").unwrap().is_empty());
        assert!(parse(Format::Yaml, "").unwrap().is_empty());
        assert!(
            parse(Format::Yaml, "# only a comment\n")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn errors_give_position_and_never_the_text() {
        let f = parse(Format::Json, "{\n  \"k\": \"sentinel-1\",\n  oops\n}").unwrap_err();
        assert_eq!((f.line, f.column.is_some()), (Some(3), true));
        assert!(!f.message.contains("sentinel"), "{}", f.message);

        let f = parse(Format::Json, "\"sentinel-2\"").unwrap_err();
        assert!(f.message.contains("found a string"), "{}", f.message);
        assert!(!f.message.contains("sentinel"), "{}", f.message);

        let f = parse(Format::Yaml, "- sentinel-3\n").unwrap_err();
        assert!(f.message.contains("found a sequence"), "{}", f.message);

        let f = parse(Format::Yaml, "k: sentinel-4\n  bad: [\n").unwrap_err();
        assert!(f.line.is_some(), "{f:?}");
        assert!(!f.message.contains("sentinel"), "{}", f.message);
    }
}
