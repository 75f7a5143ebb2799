//! Vault/OpenBao answers read every way the provider reads them (KV v2 and v1 reads, mount
//! lookup, login and renewal, token lookup, error statuses), with the leak oracle: every
//! `@@` in the body becomes a sentinel, and no message or `Debug` output may show it (the
//! keys of the answer are names and may be shown). No panic; the parsers' own invariants
//! are asserted in `secrets_vault::fuzzing`. Input: two bytes of HTTP status, then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

const SENTINEL: &str = "qZ7SENTINELxK";

fuzz_target!(|data: &[u8]| {
    let [high, low, body @ ..] = data else {
        return;
    };
    // Statuses 100..=599 mostly, with a few outside the range.
    let status = 100 + u16::from_be_bytes([*high, *low]) % 520;
    let body = replace(body, b"@@", SENTINEL.as_bytes());
    let keys = keys_of(&body);
    for message in secrets_vault::fuzzing::outputs(status, &body) {
        assert!(
            !secrets_file::fuzzing::leaks(&message, &keys, "SENTINEL"),
            "leaked: {message}"
        );
    }
});

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while !rest.is_empty() {
        if rest.starts_with(from) {
            out.extend_from_slice(to);
            rest = &rest[from.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

/// The object keys of the body, at any depth, when it is JSON.
fn keys_of(body: &[u8]) -> Vec<String> {
    fn walk(value: &serde_json::Value, keys: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, inner) in map {
                    keys.push(key.clone());
                    walk(inner, keys);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, keys)),
            _ => {}
        }
    }
    let mut keys = Vec::new();
    if let Ok(value) = serde_json::from_slice(body) {
        walk(&value, &mut keys);
    }
    keys
}
