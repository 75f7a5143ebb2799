//! The `secrets config set|update` inputs on a real SQLite store: a provider name and a JSON
//! text, read as the CLI reads them (a JSON object, else a usage error), then saved or
//! merged. Oracles:
//! - what is accepted round-trips: the configuration read back (through the cache and from
//!   the database) is the JSON given, except the webhook secret, which is stored encrypted
//!   and decrypts to the value given; the typed views (webhook, cost limit, hardware) read
//!   it without error; an update repeated changes nothing (but the webhook secret's
//!   ciphertext);
//! - what is refused is an error the caller is told is their input's fault;
//! - every `@@` becomes a sentinel; no error message shows it (outside a key or the provider
//!   name, which messages may show), and no `Debug` output shows it when it is only in the
//!   webhook secret.
//!
//! Input: first byte: bit 0 picks `update` over `set`; then the provider name, a newline,
//! the JSON text.
#![no_main]

use std::sync::LazyLock;

use credential_crypto::CredentialCipher;
use libfuzzer_sys::fuzz_target;
use provider_config::{ConfigStore, StoreError, WEBHOOK_SECRET, looks_encrypted};
use serde_json::Value;

const SENTINEL: &str = "qZ7SENTINELxK";

const DIR_PREFIX: &str = "config-input-fuzz-";

static STORE: LazyLock<ConfigStore> = LazyLock::new(|| {
    // libFuzzer ends with `exit`, so a run cannot remove its store; the next run removes
    // the stores of runs that have ended.
    let temp = std::env::temp_dir();
    for entry in std::fs::read_dir(&temp).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX));
        if pid.is_some_and(|pid| !std::path::Path::new("/proc").join(pid).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = temp.join(format!("{DIR_PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cipher = CredentialCipher::from_fernet_key("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=")
        .expect("a valid key");
    ConfigStore::builder(dir.join("cloud/jobs.db"))
        .cipher(cipher)
        .open()
        .expect("the store opens")
});

fuzz_target!(|data: &[u8]| {
    let Some((&op, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let text = text.replace("@@", SENTINEL);
    let (provider, json) = text.split_once('\n').unwrap_or((&text, "{}"));
    // The provider name is shown, truncated to 128 characters when it is refused as too long.
    let mut names = vec![provider.to_owned(), provider.chars().take(128).collect()];
    // As `secrets config set|update` reads its argument.
    let map = match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return,
        Err(e) => {
            check_message(&e.to_string(), &names);
            return;
        }
    };
    collect_keys(&Value::Object(map.clone()), &mut names);
    let store = &*STORE;
    // Each input starts from no configuration (the store lives across inputs).
    if let Err(e) = store.delete(provider) {
        check_error(&e, &names);
        assert!(e.is_invalid_input(), "deleting failed: {e}");
    }
    let update = op & 1 == 1;
    let result = if update {
        store.update(provider, map.clone()).map(|stored| {
            let again = store
                .update(provider, map.clone())
                .expect("the same update again");
            // The webhook secret is encrypted again (a new Fernet token for the same value;
            // its value is checked below), so it is left out of the comparison.
            let without_secret = |config: provider_config::CloudProviderConfig| {
                let mut map = config.into_map();
                map.remove(WEBHOOK_SECRET);
                map
            };
            assert!(
                without_secret(again) == without_secret(stored),
                "a repeated update changed the configuration"
            );
        })
    } else {
        store.save(provider, map.clone())
    };
    if let Err(e) = result {
        check_error(&e, &names);
        assert!(
            e.is_invalid_input(),
            "refused, but not as invalid input: {e}"
        );
        return;
    }
    let cached = store.get(provider).expect("reading back");
    let stored = store.get_uncached(provider).expect("reading back");
    assert!(cached == stored, "the cache and the database disagree");
    let secret_only = !map
        .iter()
        .any(|(k, v)| k != WEBHOOK_SECRET && v.to_string().contains("SENTINEL"));
    if secret_only {
        check_message(&format!("{stored:?}"), &names);
    }
    let stored = stored.into_map();
    assert_eq!(stored.len(), map.len(), "keys lost or invented");
    for (key, given) in &map {
        let kept = stored.get(key).expect("a key lost");
        if key == WEBHOOK_SECRET && given.as_str().is_some_and(|s| !s.is_empty()) {
            assert!(
                looks_encrypted(kept.as_str().unwrap_or("")),
                "stored in plaintext"
            );
        } else {
            assert!(kept == given, "`{key}` reads back differently");
        }
    }
    let given_secret = map.get(WEBHOOK_SECRET).and_then(Value::as_str);
    match store.webhook_config(provider) {
        Ok(webhook) => {
            if let Some(given) = given_secret.filter(|s| !s.is_empty() && !looks_encrypted(s)) {
                let secret = webhook.secret.as_ref().expect("the webhook secret");
                assert!(
                    secret.expose() == given,
                    "the webhook secret reads back differently"
                );
            }
            if secret_only {
                check_message(&format!("{webhook:?}"), &names);
            }
        }
        // Text that already looks like a token is stored as given (the original's
        // ciphertext); it only decrypts if it is one.
        Err(StoreError::Crypto { .. }) if given_secret.is_some_and(looks_encrypted) => {}
        Err(e) => panic!("accepted, but the webhook view fails: {e}"),
    }
    if let Err(e) = store.cost_limit(provider) {
        panic!("accepted, but the cost limit fails: {e}");
    }
    if let Err(e) = store.hardware_info(provider) {
        panic!("accepted, but the hardware view fails: {e}");
    }
    if provider == "replicate"
        && let Err(e) = store.hardware_pricing()
    {
        panic!("accepted, but the hardware pricing fails: {e}");
    }
});

fn check_error(e: &StoreError, names: &[String]) {
    check_message(&format!("{e} {e:?}"), names);
}

fn check_message(message: &str, names: &[String]) {
    assert!(
        !secrets_file::fuzzing::leaks(message, names, "SENTINEL"),
        "leaked: {message}"
    );
}

/// The names in a configuration (keys at any depth), which messages may show.
fn collect_keys(value: &Value, keys: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                keys.push(key.clone());
                collect_keys(inner, keys);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_keys(v, keys)),
        _ => {}
    }
}
