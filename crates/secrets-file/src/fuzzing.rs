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
