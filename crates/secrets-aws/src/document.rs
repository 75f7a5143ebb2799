//! The secret's value: one JSON object of key -> string, parsed without ever echoing a value
//! in an error, and edited one key at a time for writes.

use std::collections::HashMap;
use std::fmt;

use secrets_core::{ErrorKind, Location, ProviderError, Secret};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use zeroize::Zeroizing;

use crate::PROVIDER_NAME;

/// How the secret's value was stored; writes keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// `SecretString`.
    String,
    /// `SecretBinary` holding UTF-8 JSON.
    Binary,
}

/// One value of the object.
#[derive(Debug)]
pub(crate) enum Entry {
    /// A string: a secret.
    Text(Secret),
    /// `null`: the key counts as missing (as in the original, where `dict.get` gave `None`).
    Null,
    /// A number, boolean, array or object; names its kind.
    Unsupported(&'static str),
}

/// The parsed secret: key -> entry.
#[derive(Debug)]
pub(crate) struct Document {
    pub(crate) entries: HashMap<String, Entry>,
}

impl Document {
    /// The value of `key`, `Ok(None)` when absent or `null`; a value that is not a string is
    /// an [`ErrorKind::InvalidValue`] error naming the key and its kind.
    pub(crate) fn lookup(&self, key: &str, secret: &str) -> Result<Option<Secret>, ProviderError> {
        match self.entries.get(key) {
            None | Some(Entry::Null) => Ok(None),
            Some(Entry::Text(value)) => Ok(Some(value.clone())),
            Some(Entry::Unsupported(kind)) => Err(ProviderError::new(
                PROVIDER_NAME,
                ErrorKind::InvalidValue,
                format!("the value is {kind}; only strings can be secrets"),
            )
            .with_key(key)
            .with_location(Location::Secret(secret.to_owned()))),
        }
    }
}

/// The text of a `SecretBinary`, which must hold the same UTF-8 JSON as a `SecretString`.
pub(crate) fn binary_text<'a>(bytes: &'a [u8], secret: &str) -> Result<&'a str, ProviderError> {
    std::str::from_utf8(bytes).map_err(|e| {
        malformed(
            format!(
                "the SecretBinary is not UTF-8 text (invalid byte at offset {}); it must hold \
                 the same JSON object as a SecretString would",
                e.valid_up_to()
            ),
            secret,
        )
    })
}

/// Parses the secret's text into entries. Blank text is an empty object (the original read
/// an empty `SecretString` as no keys).
pub(crate) fn parse(text: &str, secret: &str) -> Result<Document, ProviderError> {
    if text.trim().is_empty() {
        return Ok(Document {
            entries: HashMap::new(),
        });
    }
    match serde_json::from_str::<Entries>(text) {
        Ok(Entries(entries)) => Ok(Document { entries }),
        Err(e) => Err(json_error(&e, secret)),
    }
}

/// The object for a write: every value kept as it is (numbers, nested objects), keys in
/// their order. Not an object, or not JSON, is an error: a write never replaces a value it
/// cannot read.
pub(crate) fn parse_for_edit(
    text: &str,
    secret: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, ProviderError> {
    if text.trim().is_empty() {
        return Ok(serde_json::Map::new());
    }
    // Into `Value` first: its errors are syntax errors only, never "invalid type: string
    // \"<value>\"" as a typed target would give.
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(other) => Err(malformed(
            format!(
                "the secret is JSON but {}, not an object of key -> value",
                kind_of(&other)
            ),
            secret,
        )),
        // Lookups skip the values they do not use without decoding them, so a nested string
        // holding an escape no Rust string can keep (a lone surrogate, `"\udc00"`, which
        // Python's `json` reads) reads fine but cannot be written back unchanged.
        Err(e) if parse(text, secret).is_ok() => Err(malformed(
            format!(
                "the secret holds a value an edit cannot keep unchanged at line {}, column {} \
                 (such as a \\u escape of a lone surrogate, which no UTF-8 text can hold); \
                 lookups still read it; change that value in Secrets Manager first",
                e.line(),
                e.column()
            ),
            secret,
        )),
        Err(e) => Err(json_error(&e, secret)),
    }
}

/// The text to store for an edited object. Zeroized when dropped.
pub(crate) fn serialize(map: &serde_json::Map<String, serde_json::Value>) -> Zeroizing<String> {
    Zeroizing::new(serde_json::Value::Object(map.clone()).to_string())
}

fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn malformed(message: String, secret: &str) -> ProviderError {
    ProviderError::new(PROVIDER_NAME, ErrorKind::Malformed, message)
        .with_location(Location::Secret(secret.to_owned()))
}

/// A parse failure without serde's text, which could quote the input: the category and the
/// position only, or the message of our own visitor (which names kinds, never values).
fn json_error(e: &serde_json::Error, secret: &str) -> ProviderError {
    let position = if e.line() > 0 {
        format!(" at line {}, column {}", e.line(), e.column())
    } else {
        String::new()
    };
    let message = match e.classify() {
        serde_json::error::Category::Data => {
            // Raised by the visitors below, whose messages name a kind and never a value.
            let text = e.to_string();
            let own = text
                .rfind(" at line ")
                .map_or(text.as_str(), |at| &text[..at]);
            if own.starts_with(OWN_MESSAGE_PREFIX) {
                own.to_owned()
            } else {
                "the secret is not an object of key -> value".to_owned()
            }
        }
        serde_json::error::Category::Eof => {
            format!("the secret is not valid JSON: it ends too early{position}")
        }
        serde_json::error::Category::Syntax | serde_json::error::Category::Io => {
            format!("the secret is not valid JSON: syntax error{position}")
        }
    };
    malformed(message, secret)
}

const OWN_MESSAGE_PREFIX: &str = "the secret is JSON but";

struct Entries(HashMap<String, Entry>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EntriesVisitor)
    }
}

struct EntriesVisitor;

fn not_an_object<E: de::Error>(kind: &str) -> E {
    E::custom(format_args!(
        "{OWN_MESSAGE_PREFIX} {kind}, not an object of key -> value"
    ))
}

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Entries;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of key -> value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
        let mut entries = HashMap::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(key) = map.next_key::<String>()? {
            let entry = map.next_value::<Entry>()?;
            entries.insert(key, entry);
        }
        Ok(Entries(entries))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Entries, E> {
        Err(not_an_object("null"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Entries, A::Error> {
        Err(not_an_object("an array"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Entries, E> {
        Err(not_an_object("a string"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Entries, E> {
        Err(not_an_object("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Entries, E> {
        Err(not_an_object("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Entries, E> {
        Err(not_an_object("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Entries, E> {
        Err(not_an_object("a number"))
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
        f.write_str("a string value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Entry, E> {
        Ok(Entry::Text(Secret::new(v)))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Entry, E> {
        Ok(Entry::Text(Secret::new(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Entry, E> {
        Ok(Entry::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Entry, E> {
        Ok(Entry::Null)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Entry, E> {
        Ok(Entry::Unsupported("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Entry, E> {
        Ok(Entry::Unsupported("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Entry, E> {
        Ok(Entry::Unsupported("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Entry, E> {
        Ok(Entry::Unsupported("a number"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entry, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Entry::Unsupported("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Entry::Unsupported("an object"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENTINEL: &str = "SENTINEL-doc-7f3a";

    fn entries(text: &str) -> Result<Document, ProviderError> {
        parse(text, "app/secret")
    }

    #[test]
    fn strings_are_secrets_null_is_missing_other_kinds_are_errors_naming_the_key() {
        let doc = entries(&format!(
            r#"{{"A": "{SENTINEL}", "N": null, "I": 7, "B": true, "L": ["{SENTINEL}"], "O": {{"x": "{SENTINEL}"}}}}"#
        ))
        .unwrap();
        assert_eq!(doc.lookup("A", "s").unwrap().unwrap().expose(), SENTINEL);
        assert!(doc.lookup("N", "s").unwrap().is_none());
        assert!(doc.lookup("missing", "s").unwrap().is_none());
        for (key, kind) in [
            ("I", "a number"),
            ("B", "a boolean"),
            ("L", "an array"),
            ("O", "an object"),
        ] {
            let e = doc.lookup(key, "app/secret").unwrap_err();
            assert_eq!((e.kind(), e.key()), (ErrorKind::InvalidValue, Some(key)));
            let text = format!("{e} {e:?}");
            assert!(text.contains(kind) && text.contains("app/secret"), "{text}");
            assert!(!text.contains(SENTINEL), "{text}");
        }
    }

    #[test]
    fn not_json_and_not_an_object_are_malformed_without_quoting_the_value() {
        for (text, expect) in [
            (SENTINEL.to_owned(), "not valid JSON"),
            (format!("{{\"A\": \"{SENTINEL}\""), "ends too early"),
            (format!("{{\"A\": \"{SENTINEL}\",, }}"), "not valid JSON"),
            (format!("\"{SENTINEL}\""), "JSON but a string"),
            (format!("[\"{SENTINEL}\"]"), "JSON but an array"),
            ("42".to_owned(), "JSON but a number"),
            ("null".to_owned(), "JSON but null"),
        ] {
            let e = entries(&text).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Malformed, "{text}");
            let shown = format!("{e} {e:?}");
            assert!(shown.contains(expect), "{text}: {shown}");
            assert!(!shown.contains(SENTINEL), "{shown}");
            let e = parse_for_edit(&text, "s").unwrap_err();
            let shown = format!("{e} {e:?}");
            assert_eq!(e.kind(), ErrorKind::Malformed);
            assert!(!shown.contains(SENTINEL), "{shown}");
        }
    }

    #[test]
    fn a_lone_surrogate_the_lookups_skip_is_read_but_an_edit_refuses_it_clearly() {
        // Found by the aws_secret_json fuzz target: the two parsers disagreed.
        let text = format!(r#"{{"K": "{SENTINEL}", "O": {{"x": "\udc00"}}}}"#);
        let doc = entries(&text).unwrap();
        assert_eq!(doc.lookup("K", "s").unwrap().unwrap().expose(), SENTINEL);
        let e = parse_for_edit(&text, "app/secret").unwrap_err();
        let shown = format!("{e} {e:?}");
        assert_eq!(e.kind(), ErrorKind::Malformed);
        assert!(
            shown.contains("cannot keep") && shown.contains("column"),
            "{shown}"
        );
        assert!(!shown.contains(SENTINEL), "{shown}");
        // Where the lookups must decode it, both refuse it as invalid JSON.
        let e = entries(r#"{"K": "\udc00"}"#).unwrap_err();
        assert!(e.to_string().contains("not valid JSON"), "{e}");
    }

    #[test]
    fn an_edit_keeps_every_number_exactly() {
        // Found by the aws_secret_json fuzz target: without serde_json's `float_roundtrip`,
        // this number read back one unit in the last place away after an edit.
        let text = r#"{"n": 1.7976931348623114e308, "m": 0.30000000000000004, "k": 5e-324}"#;
        let map = parse_for_edit(text, "s").unwrap();
        let again = parse_for_edit(&serialize(&map), "s").unwrap();
        assert_eq!(again, map);
        assert_eq!(again["n"].as_f64(), Some(1.797_693_134_862_311_4e308));
    }

    #[test]
    fn blank_is_an_empty_object() {
        assert!(entries("  \n").unwrap().entries.is_empty());
        assert!(parse_for_edit("", "s").unwrap().is_empty());
    }

    #[test]
    fn edits_keep_other_values_and_key_order() {
        let mut map = parse_for_edit(
            r#"{"z": "1", "n": 7, "o": {"deep": [1, 2]}, "a": null}"#,
            "s",
        )
        .unwrap();
        map.insert("new".into(), serde_json::Value::String("v".into()));
        map.shift_remove("z");
        assert_eq!(
            serialize(&map).as_str(),
            r#"{"n":7,"o":{"deep":[1,2]},"a":null,"new":"v"}"#
        );
    }
}
