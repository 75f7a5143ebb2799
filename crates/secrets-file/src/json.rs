//! The JSON reader: serde_json validates the whole text (its syntax messages are fixed
//! strings), then a small scanner walks the top-level object to find each entry's key, value
//! and byte ranges. Numbers are kept exactly as written (no rounding of big integers), and a
//! value is never echoed in an error.

use serde::de::IgnoredAny;

use crate::document::{Document, Entry, EntrySpan, LineIndex, MAX_DEPTH, Shape, Value, position};
use crate::parse::ParseFailure;

pub(crate) fn parse(text: &str, start: usize) -> Result<Document, ParseFailure> {
    let body = &text[start..];
    if body.trim().is_empty() {
        return Document::new(
            Vec::new(),
            Shape::Empty {
                insert_at: text.len(),
                null_value: None,
            },
        );
    }
    validate(body)?;
    let mut scanner = Scanner {
        text,
        at: start,
        depth: 0,
    };
    scanner.skip_ws();
    let open = scanner.at;
    match scanner.peek() {
        Some(b'{') => {}
        Some(b'n') => {
            let null = open..open + 4;
            return Document::new(
                Vec::new(),
                Shape::Empty {
                    insert_at: text.len(),
                    null_value: Some(null),
                },
            );
        }
        other => {
            let found = match other {
                Some(b'[') => "a sequence",
                Some(b'"') => "a string",
                Some(b't' | b'f') => "a boolean",
                _ => "a number",
            };
            return Err(scanner.failure(
                open,
                format!("the top level must be a mapping of key to value, found {found}"),
            ));
        }
    }
    scanner.at += 1;
    let line_index = LineIndex::new(text);
    let mut entries = Vec::new();
    loop {
        scanner.skip_ws();
        if scanner.peek() == Some(b'}') {
            break;
        }
        let key_range = scanner.string()?;
        let key: String = serde_json::from_str(&text[key_range.clone()])
            .map_err(|_| scanner.failure(key_range.start, "a key cannot be decoded".into()))?;
        scanner.skip_ws();
        scanner.expect(b':')?;
        scanner.skip_ws();
        let value_start = scanner.at;
        let value = scanner.value()?;
        let value_range = value_start..scanner.at;
        let (line, column) = line_index.position(key_range.start);
        entries.push(Entry {
            key,
            value,
            line,
            column,
            span: Some(EntrySpan {
                key: key_range.clone(),
                value: value_range.clone(),
                lines: key_range.start..value_range.end,
            }),
        });
        scanner.skip_ws();
        match scanner.peek() {
            Some(b',') => scanner.at += 1,
            _ => break,
        }
    }
    scanner.skip_ws();
    let close = scanner.at;
    scanner.expect(b'}')?;
    Document::new(entries, Shape::Braced { open, close })
}

/// Checks the whole text with serde_json. Its syntax and end-of-input messages are fixed
/// strings; anything else (a custom message could quote input) becomes a generic message.
fn validate(body: &str) -> Result<(), ParseFailure> {
    let Err(e) = serde_json::from_str::<IgnoredAny>(body) else {
        return Ok(());
    };
    let message = match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            let text = e.to_string();
            match text.rfind(" at line ") {
                Some(at) => text[..at].to_owned(),
                None => text,
            }
        }
        _ => "the JSON cannot be read".to_owned(),
    };
    // serde_json counts lines and columns within `body`; the BOM, if any, is on line 1.
    Err(ParseFailure {
        line: (e.line() > 0).then_some(e.line()),
        column: (e.line() > 0).then_some(e.column()),
        message,
    })
}

/// Walks text that serde_json has already validated.
struct Scanner<'a> {
    text: &'a str,
    at: usize,
    depth: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn failure(&self, offset: usize, message: String) -> ParseFailure {
        let (line, column) = position(self.text, offset);
        ParseFailure {
            line: Some(line),
            column: Some(column),
            message,
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), ParseFailure> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.failure(self.at, format!("expected `{}`", byte as char)))
        }
    }

    /// A string token; returns its range, quotes included.
    fn string(&mut self) -> Result<std::ops::Range<usize>, ParseFailure> {
        let start = self.at;
        self.expect(b'"')?;
        let bytes = self.text.as_bytes();
        while let Some(&b) = bytes.get(self.at) {
            self.at += 1;
            match b {
                b'\\' => self.at += 1,
                b'"' => return Ok(start..self.at),
                _ => {}
            }
        }
        Err(self.failure(start, "unterminated string".into()))
    }

    /// A value: its meaning as a secret; leaves `at` after it.
    fn value(&mut self) -> Result<Value, ParseFailure> {
        let start = self.at;
        match self.peek() {
            Some(b'"') => {
                let range = self.string()?;
                let text: String = serde_json::from_str(&self.text[range])
                    .map_err(|_| self.failure(start, "a string value cannot be decoded".into()))?;
                Ok(Value::Text(secrets_core::Secret::new(text)))
            }
            Some(b'[' | b'{') => {
                let kind = if self.peek() == Some(b'[') {
                    "a sequence"
                } else {
                    "a mapping"
                };
                self.skip_nested()?;
                Ok(Value::Rejected(kind))
            }
            Some(b'n') => {
                self.at += 4;
                Ok(Value::Null)
            }
            Some(b't') => {
                self.at += 4;
                Ok(Value::Text("true".into()))
            }
            Some(b'f') => {
                self.at += 5;
                Ok(Value::Text("false".into()))
            }
            _ => {
                while matches!(
                    self.peek(),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.at += 1;
                }
                // Kept as written: `123456789012345678901` is not rounded to a float.
                Ok(Value::Text(secrets_core::Secret::new(
                    &self.text[start..self.at],
                )))
            }
        }
    }

    /// Skips an array or object, within the depth limit.
    fn skip_nested(&mut self) -> Result<(), ParseFailure> {
        let start_depth = self.depth;
        loop {
            match self.peek() {
                Some(b'[' | b'{') => {
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        return Err(self.failure(
                            self.at,
                            format!("values are nested deeper than {MAX_DEPTH} levels"),
                        ));
                    }
                    self.at += 1;
                }
                Some(b']' | b'}') => {
                    self.depth -= 1;
                    self.at += 1;
                    if self.depth == start_depth {
                        return Ok(());
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(_) => self.at += 1,
                None => return Err(self.failure(self.at, "unexpected end of the file".into())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(doc: &Document, key: &str) -> String {
        match &doc.get(key).unwrap().value {
            Value::Text(s) => s.expose().to_owned(),
            Value::Null => "<null>".into(),
            Value::Rejected(why) => format!("<{why}>"),
        }
    }

    #[test]
    fn scalars_are_kept_as_written() {
        let doc = parse(
            r#"{"s":"v\n","i":123456789012345678901,"neg":-1.50e3,"b":true,"f":false,"n":null,"a":[1,{"x":"]"}],"m":{"k":"}"}}"#,
            0,
        )
        .unwrap();
        let got: Vec<String> = ["s", "i", "neg", "b", "f", "n", "a", "m"]
            .iter()
            .map(|k| text(&doc, k))
            .collect();
        assert_eq!(
            got,
            [
                "v\n",
                "123456789012345678901",
                "-1.50e3",
                "true",
                "false",
                "<null>",
                "<a sequence>",
                "<a mapping>"
            ]
        );
        assert_eq!(
            doc.keys().collect::<Vec<_>>(),
            ["s", "i", "neg", "b", "f", "n", "a", "m"]
        );
    }

    #[test]
    fn spans_point_at_keys_and_values() {
        let src = "{\n  \"a\": \"x\",\n  \"b\" : [1, 2]\n}\n";
        let doc = parse(src, 0).unwrap();
        let b = doc.get("b").unwrap().span.clone().unwrap();
        assert_eq!(&src[b.key], "\"b\"");
        assert_eq!(&src[b.value], "[1, 2]");
        assert_eq!(doc.get("b").unwrap().line, 3);
        assert_eq!(
            doc.shape,
            Shape::Braced {
                open: 0,
                close: src.len() - 2
            }
        );
    }

    #[test]
    fn duplicates_non_mappings_and_depth_are_refused() {
        let e = parse(r#"{"k": 1, "k": 2}"#, 0).unwrap_err();
        assert!(e.message.contains("appears twice"), "{e:?}");
        let e = parse(r#"["x"]"#, 0).unwrap_err();
        assert!(e.message.contains("found a sequence"), "{e:?}");
        let deep = format!("{{\"k\": {}{}}}", "[".repeat(70), "]".repeat(70));
        let e = parse(&deep, 0).unwrap_err();
        assert!(e.message.contains("nested deeper"), "{e:?}");
        assert!(matches!(
            parse("null", 0).unwrap().shape,
            Shape::Empty {
                null_value: Some(_),
                ..
            }
        ));
    }
}
