//! What the parser and the editor show for a text, for the fuzz target of the file parser
//! (`fuzz/fuzz_targets/secrets_file.rs`). Not a stable API.

use std::path::Path;

use secrets_core::Secret;

use crate::document::{self, Value};
use crate::edit::{self, Change};
use crate::parse::ParseFailure;
use crate::{Format, rejected};

/// Every message (`Display` and `Debug`) that reading `text` and editing it can produce, and
/// the document's top-level keys when it parses.
pub fn outputs(yaml: bool, text: &str) -> (Vec<String>, Vec<String>) {
    let format = if yaml { Format::Yaml } else { Format::Json };
    let path = Path::new(if yaml { "secrets.yaml" } else { "secrets.json" });
    let mut shown = Vec::new();
    let doc = match document::parse(format, text) {
        Ok(doc) => doc,
        Err(failure) => {
            let e = failure.to_error(path);
            shown.push(format!("{e} {e:?}"));
            return (shown, Vec::new());
        }
    };
    let keys: Vec<String> = doc.keys().map(str::to_owned).collect();
    for entry in &doc.entries {
        if let Value::Rejected(why) = &entry.value {
            let e = rejected(path, entry, why);
            shown.push(format!("{e} {e:?}"));
        }
        shown.push(format!("{:?}", entry.value));
    }
    let value = Secret::new("replacement");
    let first = keys.first().cloned().unwrap_or_default();
    for (key, change) in [
        (first.as_str(), Change::Set(&value)),
        (first.as_str(), Change::Delete),
        ("NEW_KEY", Change::Set(&value)),
    ] {
        if let Err(e) = edit::apply(format, text, &doc, key, change) {
            let e = ParseFailure::from(e).to_error(path);
            shown.push(format!("{e} {e:?}"));
        }
    }
    (shown, keys)
}

/// The leak oracle: whether `message` shows `fragment` anywhere other than inside one of the
/// document's top-level `keys` (names, which messages may show), in any of the forms a key
/// takes in a message: as written, as `Debug` writes it, or with control characters escaped.
pub fn leaks(message: &str, keys: &[String], fragment: &str) -> bool {
    let mut covered = vec![false; message.len()];
    for key in keys.iter().filter(|k| k.contains(fragment)) {
        let escaped: String = key
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
        let debug = format!("{key:?}");
        let debug = debug.trim_matches('"').to_owned();
        for form in [key.as_str(), debug.as_str(), escaped.as_str()] {
            for (at, _) in message.match_indices(form) {
                covered[at..at + form.len()]
                    .iter_mut()
                    .for_each(|c| *c = true);
            }
        }
    }
    message
        .match_indices(fragment)
        .any(|(at, _)| !covered[at..at + fragment.len()].iter().all(|&c| c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oracle_allows_keys_and_catches_values() {
        let keys = vec!["aSECRETb".to_owned(), "x\u{1}SECRET".to_owned()];
        assert!(!leaks(
            "key `aSECRETb` and key `x\\u{1}SECRET`",
            &keys,
            "SECRET"
        ));
        assert!(!leaks("Some(\"x\\u{1}SECRET\")", &keys, "SECRET"));
        assert!(leaks("key `aSECRETb`: value SECRET", &keys, "SECRET"));
        assert!(leaks("SECRET", &[], "SECRET"));
        assert!(!leaks("nothing here", &[], "SECRET"));
    }
}
