//! KV engine answers: what a mount lookup says about the version, and the key -> value object
//! in a read. Pure functions over parsed JSON; the requests are made by the provider.

use std::collections::HashMap;

use secrets_core::Secret;
use serde_json::{Map, Value};

use crate::http::scrub;
use crate::settings::KvVersion;

/// One key of the secret.
pub(crate) enum Entry {
    /// A string value.
    Value(Secret),
    /// A value that is not a string (its JSON type).
    NotAString(&'static str),
}

/// The secret as read: its keys, or `None` when nothing is stored at the path (never
/// written, or the latest KV v2 version deleted).
pub(crate) struct KvObject {
    pub(crate) entries: Option<HashMap<String, Entry>>,
    /// The KV v2 version read (`None` on KV v1).
    pub(crate) version: Option<u64>,
}

impl KvObject {
    pub(crate) fn absent(version: Option<u64>) -> Self {
        Self {
            entries: None,
            version,
        }
    }

    /// Takes the values out of a decoded object (moving each string into a [`Secret`]).
    pub(crate) fn from_map(map: Map<String, Value>, version: Option<u64>) -> Self {
        let entries = map
            .into_iter()
            .map(|(key, value)| {
                let entry = match value {
                    Value::String(text) => Entry::Value(Secret::new(text)),
                    mut other => {
                        let kind = json_type(&other);
                        scrub(&mut other);
                        Entry::NotAString(kind)
                    }
                };
                (key, entry)
            })
            .collect();
        Self {
            entries: Some(entries),
            version,
        }
    }
}

/// The JSON type of a value, for messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// What a mount lookup (`sys/internal/ui/mounts/{mount}`) says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum MountKind {
    Kv(KvVersion),
    /// Another secrets engine (its type, as the server names it).
    Other(String),
}

pub(crate) fn mount_kind(body: &Value) -> Result<MountKind, &'static str> {
    let data = body
        .get("data")
        .ok_or("the mount lookup has no `data` object")?;
    let engine = data
        .get("type")
        .and_then(Value::as_str)
        .ok_or("the mount lookup has no engine `type`")?;
    if engine != "kv" && engine != "generic" {
        // An engine name is an identifier; keep it short and printable.
        let shown: String = engine
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(40)
            .collect();
        return Ok(MountKind::Other(shown));
    }
    let version = data
        .get("options")
        .and_then(|o| o.get("version"))
        .and_then(|v| {
            v.as_str()
                .map(str::to_owned)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        });
    match version.as_deref() {
        Some("2") => Ok(MountKind::Kv(KvVersion::V2)),
        None | Some("" | "1") => Ok(MountKind::Kv(KvVersion::V1)),
        Some(_) => Err("the mount lookup names an unknown KV version"),
    }
}

/// A decoded secret: the key -> value object (`None`: nothing stored) and its KV v2 version.
pub(crate) type RawObject = (Option<Map<String, Value>>, Option<u64>);

/// A KV v2 read answer (`200`): the key -> value object and its version. The object is taken
/// out of `body`.
pub(crate) fn v2_data(body: &mut Value) -> Result<RawObject, &'static str> {
    let data = body
        .get_mut("data")
        .filter(|d| d.is_object())
        .ok_or("the answer has no `data` object")?;
    let version = data
        .get("metadata")
        .and_then(|m| m.get("version"))
        .and_then(Value::as_u64);
    match data.get_mut("data") {
        Some(Value::Object(map)) => Ok((Some(std::mem::take(map)), version)),
        // A deleted version reads as `"data": null`.
        Some(Value::Null) | None => Ok((None, version)),
        Some(_) => Err("the answer's `data.data` is not an object"),
    }
}

/// Whether a read answer carries KV v2's `data.metadata` object (KV v1 answers have none).
pub(crate) fn has_v2_metadata(body: &Value) -> bool {
    body.get("data")
        .and_then(|d| d.get("metadata"))
        .is_some_and(Value::is_object)
}

/// The version a KV v2 `404` reports (a deleted latest version still has metadata), if any.
pub(crate) fn v2_deleted_version(body: &Value) -> Option<u64> {
    body.get("data")?.get("metadata")?.get("version")?.as_u64()
}

/// A KV v1 read answer (`200`): the key -> value object, taken out of `body`.
pub(crate) fn v1_data(body: &mut Value) -> Result<Map<String, Value>, &'static str> {
    match body.get_mut("data") {
        Some(Value::Object(map)) => Ok(std::mem::take(map)),
        _ => Err("the answer has no `data` object"),
    }
}

/// Whether a `{mount}/{path}` answer carries KV v2's warning that the path needs `data/`
/// (how an older server without the mount lookup tells a v2 mount apart).
pub(crate) fn has_versioned_kv_warning(body: &Value) -> bool {
    body.get("warnings")
        .and_then(Value::as_array)
        .is_some_and(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .any(|m| m.contains("versioned K/V"))
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn mount_lookups_name_the_kv_version() {
        let v2 = json!({"data": {"type": "kv", "options": {"version": "2"}}});
        assert_eq!(mount_kind(&v2), Ok(MountKind::Kv(KvVersion::V2)));
        let v1 = json!({"data": {"type": "kv", "options": {"version": "1"}}});
        assert_eq!(mount_kind(&v1), Ok(MountKind::Kv(KvVersion::V1)));
        let legacy = json!({"data": {"type": "generic", "options": null}});
        assert_eq!(mount_kind(&legacy), Ok(MountKind::Kv(KvVersion::V1)));
        let pki = json!({"data": {"type": "pki\n", "options": null}});
        assert_eq!(mount_kind(&pki), Ok(MountKind::Other("pki".to_owned())));
        assert!(mount_kind(&json!({"data": {"type": "kv", "options": {"version": "9"}}})).is_err());
        assert!(mount_kind(&json!({"nope": 1})).is_err());
    }

    #[test]
    fn v2_answers_give_the_object_and_version() {
        let mut body = json!({"data": {"data": {"A": "1"}, "metadata": {"version": 3}}});
        let (map, version) = v2_data(&mut body).unwrap();
        assert_eq!(map.unwrap()["A"], "1");
        assert_eq!(version, Some(3));
        let mut deleted = json!({"data": {"data": null, "metadata": {"version": 4}}});
        assert_eq!(v2_data(&mut deleted).unwrap().1, Some(4));
        assert!(v2_data(&mut json!({"data": {"data": [1]}})).is_err());
        assert!(v2_data(&mut json!({"data": "x"})).is_err());
        assert_eq!(v2_deleted_version(&deleted), Some(4));
    }

    #[test]
    fn non_string_values_are_recorded_by_type() {
        let map = json!({"S": "v", "N": 5, "B": true, "Z": null, "L": [], "O": {}});
        let Value::Object(map) = map else {
            unreachable!()
        };
        let object = KvObject::from_map(map, None);
        let entries = object.entries.unwrap();
        assert!(matches!(&entries["S"], Entry::Value(s) if s.expose() == "v"));
        for (key, kind) in [
            ("N", "a number"),
            ("B", "a boolean"),
            ("Z", "null"),
            ("L", "a list"),
            ("O", "an object"),
        ] {
            assert!(
                matches!(entries[key], Entry::NotAString(k) if k == kind),
                "{key}"
            );
        }
    }
}
