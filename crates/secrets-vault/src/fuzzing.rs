//! What the response parsers show for a server's answer, for the fuzz target of Vault
//! responses (`fuzz/fuzz_targets/vault_response.rs`). Not a stable API.

use std::time::Duration;

use reqwest::Url;
use secrets_core::Secret;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::auth::{self, Lease};
use crate::http::{Reply, status_error};
use crate::kv::{self, Entry, KvObject, MountKind};

/// Every message (`Display` and `Debug`) the provider's parsers can produce for an answer
/// with `status` and `body`, read as each kind of answer: a KV v2 and a KV v1 read, a mount
/// lookup, a login or renewal, a token lookup, a health check and an unexpected status.
///
/// Panics when a parser breaks an invariant of its own: a lease whose token is not the
/// answer's `auth.client_token`, or a decoded object that lost or invented keys.
pub fn outputs(status: u16, body: &[u8]) -> Vec<String> {
    let url = Url::parse("http://127.0.0.1:8200/v1/secret/data/app").expect("a valid URL");
    let reply = Reply {
        status,
        body: Zeroizing::new(body.to_vec()),
    };
    let mut shown = Vec::new();
    let show = |e: secrets_core::ProviderError| format!("{e} {e:?}");

    shown.push(show(status_error(&reply, &url, "reading the secret")));
    let _ = (reply.error_messages(), reply.has_empty_errors());

    let now = Duration::from_secs(1000);
    let unknown = Lease {
        token: Secret::new("given-token"),
        ttl: Duration::ZERO,
        renewable: false,
        since: now,
        full_ttl: Duration::ZERO,
        exhausted: true,
    };
    match auth::lease_from_auth(&reply, &url, now, Some(&unknown)) {
        Ok(lease) => {
            let expected = client_token(body).expect("a lease from an answer without a token");
            assert!(
                lease.token == Secret::new(expected),
                "the lease's token differs"
            );
            shown.push(format!("{lease:?}"));
        }
        Err(e) => shown.push(show(e)),
    }
    match auth::lease_from_lookup(&reply, &url, unknown) {
        Ok(lease) => {
            assert!(lease.token == Secret::new("given-token"));
            assert!(lease.full_ttl >= lease.ttl, "full TTL below the TTL");
            shown.push(format!("{lease:?}"));
        }
        Err(e) => shown.push(show(e)),
    }

    let Ok(mut body) = reply.json(&url) else {
        return shown;
    };
    match kv::mount_kind(&body) {
        // The engine's name is shown by design (filtered to 40 printable characters).
        Ok(MountKind::Other(name)) => assert!(name.len() <= 40),
        Ok(kind) => shown.push(format!("{kind:?}")),
        Err(why) => shown.push(why.to_owned()),
    }
    let _ = (
        kv::has_v2_metadata(&body),
        kv::v2_deleted_version(&body),
        kv::has_versioned_kv_warning(&body),
    );
    let mut v1_body = body.clone();
    match kv::v2_data(&mut body) {
        Ok((Some(map), version)) => shown.extend(entries_shown(map, version)),
        Ok((None, _)) => {}
        Err(why) => shown.push(why.to_owned()),
    }
    match kv::v1_data(&mut v1_body) {
        Ok(map) => shown.extend(entries_shown(map, None)),
        Err(why) => shown.push(why.to_owned()),
    }
    shown
}

/// The answer's `auth.client_token`, parsed on its own.
fn client_token(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value
        .get("auth")?
        .get("client_token")?
        .as_str()
        .map(str::to_owned)
}

/// What a lookup shows for each key of a decoded object (as `VaultProvider::get` words it).
fn entries_shown(map: serde_json::Map<String, Value>, version: Option<u64>) -> Vec<String> {
    let keys = map.len();
    let object = KvObject::from_map(map, version);
    let entries = object.entries.expect("a decoded object has entries");
    assert_eq!(entries.len(), keys, "keys lost or invented");
    entries
        .values()
        .map(|entry| match entry {
            Entry::Value(value) => format!("{value:?}"),
            Entry::NotAString(kind) => format!("the value is {kind}, not a string"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_every_way_without_showing_values() {
        let body = br#"{"auth": {"client_token": "s.SENTINEL", "lease_duration": 60},
            "data": {"data": {"K": "SENTINEL", "N": 5}, "metadata": {"version": 2},
            "type": "kv", "options": {"version": "2"}, "ttl": 5}}"#;
        let shown = outputs(200, body);
        assert!(shown.iter().any(|m| m.contains("Lease")), "{shown:?}");
        assert!(shown.iter().any(|m| m.contains("a number")), "{shown:?}");
        assert!(shown.iter().all(|m| !m.contains("SENTINEL")), "{shown:?}");
        let shown = outputs(503, br#"{"errors": ["Vault is sealed"]}"#);
        assert!(shown.iter().any(|m| m.contains("sealed")), "{shown:?}");
        let shown = outputs(200, b"{\"auth\": \"SENTINEL");
        assert!(shown.iter().any(|m| m.contains("ends early")), "{shown:?}");
        assert!(shown.iter().all(|m| !m.contains("SENTINEL")), "{shown:?}");
    }
}
