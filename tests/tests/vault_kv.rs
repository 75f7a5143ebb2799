//! The Vault provider against the real OpenBao server of `cargo xtask test`: KV v2 and v1
//! reads, what is absent and what is an error, version pinning, writes with check-and-set,
//! namespaces, and how fast a change is seen.

use std::sync::Arc;
use std::time::Duration;

use integration_tests::vault::{self, Admin, RecordingProxy, unique};
use secrets::vault::{KvVersion, VaultProvider, VaultSettings};
use secrets::{
    ErrorKind, ManualClock, MemoryProvider, Secret, SecretProvider, SecretsError, SecretsManager,
};
use serde_json::json;

fn root_settings(admin: &Admin, path: &str) -> VaultSettings {
    VaultSettings::new(admin.addr.clone())
        .token(admin.root_token.clone())
        .path(path)
}

fn provider(settings: VaultSettings) -> VaultProvider {
    VaultProvider::new(settings).unwrap()
}

async fn value(provider: &VaultProvider, key: &str) -> Option<String> {
    provider
        .get(key)
        .await
        .unwrap()
        .map(|s| s.expose().to_owned())
}

#[tokio::test]
async fn kv2_secret_is_read_once_for_every_key_and_lookup() {
    let admin = vault::shared();
    let path = unique("kv2");
    admin.put_v2(
        "secret",
        &path,
        json!({"HF_TOKEN": "hf_real", "REPLICATE_API_TOKEN": "r8_real"}),
    );
    let p = provider(root_settings(&admin, &path));
    assert_eq!(value(&p, "HF_TOKEN").await.as_deref(), Some("hf_real"));
    for _ in 0..1000 {
        assert_eq!(
            value(&p, "REPLICATE_API_TOKEN").await.as_deref(),
            Some("r8_real")
        );
    }
    assert_eq!(p.kv_version(), Some(KvVersion::V2));
    assert_eq!(p.secret_version().await.unwrap(), Some(1));
    let stats = p.stats();
    assert_eq!(
        (stats.secret_reads, stats.mount_lookups),
        (1, 1),
        "{stats:?}"
    );
    // Keys match exactly (no environment-style normalisation).
    assert_eq!(value(&p, "hf-token").await, None);
}

#[tokio::test]
async fn kv1_secret_is_read_on_a_v1_mount() {
    let admin = vault::shared();
    let path = unique("kv1");
    admin.put_v1("kv1", &path, json!({"HF_TOKEN": "hf_v1"}));
    let p = provider(root_settings(&admin, &path).mount("kv1"));
    assert_eq!(value(&p, "HF_TOKEN").await.as_deref(), Some("hf_v1"));
    assert_eq!(p.kv_version(), Some(KvVersion::V1));
    assert_eq!(p.secret_version().await.unwrap(), None);
    assert_eq!(p.stats().secret_reads, 1, "no KV v2 read was tried first");
}

#[tokio::test]
async fn a_missing_path_and_a_missing_key_are_both_absent_but_tell_apart() {
    let admin = vault::shared();
    let path = unique("present");
    admin.put_v2("secret", &path, json!({"A": "a"}));
    let present = provider(root_settings(&admin, &path));
    assert_eq!(value(&present, "B").await, None);
    assert!(present.exists().await.unwrap());
    assert_eq!(present.keys().await.unwrap(), ["A"]);

    let missing = provider(root_settings(&admin, &unique("never-written")));
    assert_eq!(value(&missing, "A").await, None);
    assert!(!missing.exists().await.unwrap());
    assert!(missing.keys().await.unwrap().is_empty());

    // A deleted latest version is "nothing stored" too.
    let deleted = unique("deleted");
    admin.put_v2("secret", &deleted, json!({"A": "a"}));
    admin.ok("DELETE", &format!("/v1/secret/data/{deleted}"), None);
    let p = provider(root_settings(&admin, &deleted));
    assert_eq!(value(&p, "A").await, None);
    assert!(!p.exists().await.unwrap());
    assert_eq!(p.secret_version().await.unwrap(), Some(1));

    // A mount that does not exist is an error, not "absent".
    let p = provider(root_settings(&admin, &path).mount(unique("no-such-mount")));
    let error = p.get("A").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
    assert!(error.to_string().contains("does not exist"), "{error}");
}

#[tokio::test]
async fn a_denied_path_is_permission_denied_and_never_a_kv1_retry() {
    let admin = vault::shared();
    let path = unique("denied");
    admin.put_v2("secret", &path, json!({"HF_TOKEN": "hf_denied"}));
    // The policy grants another path of the mount, so the mount lookup works.
    let policy = admin.policy_for(&format!("secret/data/{}", unique("other")), &["read"]);
    let token = admin.token(&[&policy], json!({"ttl": "1h"}));
    let p = Arc::new(provider(
        VaultSettings::new(admin.addr.clone())
            .token(token)
            .path(&path),
    ));
    let error = p.get("HF_TOKEN").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
    assert_eq!(p.kv_version(), Some(KvVersion::V2));
    assert_eq!(
        p.stats().secret_reads,
        1,
        "one v2 read, no v1 retry: {:?}",
        p.stats()
    );
    // Through the chain: an error naming the provider, not "not found".
    let manager = SecretsManager::builder().provider(p.clone()).build();
    match manager.get("HF_TOKEN").await {
        Err(SecretsError::ProvidersFailed { failures, .. }) => {
            assert_eq!(failures[0].kind(), ErrorKind::PermissionDenied);
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_pinned_version_is_read_and_writes_are_refused() {
    let admin = vault::shared();
    let path = unique("pinned");
    admin.put_v2("secret", &path, json!({"K": "one"}));
    admin.put_v2("secret", &path, json!({"K": "two"}));
    let latest = provider(root_settings(&admin, &path));
    assert_eq!(value(&latest, "K").await.as_deref(), Some("two"));
    let first = provider(root_settings(&admin, &path).secret_version(1));
    assert_eq!(value(&first, "K").await.as_deref(), Some("one"));
    assert_eq!(first.secret_version().await.unwrap(), Some(1));
    assert!(!first.supports_writes());
    let error = first.set("K", &Secret::new("three")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReadOnly);
    let missing = provider(root_settings(&admin, &path).secret_version(9));
    let error = missing.get("K").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert!(error.to_string().contains("version 9"), "{error}");
    // Pinning on a KV v1 mount is refused.
    let v1 = provider(root_settings(&admin, &path).mount("kv1").secret_version(1));
    assert_eq!(
        v1.get("K").await.unwrap_err().kind(),
        ErrorKind::Misconfigured
    );
}

#[tokio::test]
async fn kv2_set_and_delete_round_trip_keeping_other_keys() {
    let admin = vault::shared();
    let path = unique("write-v2");
    let p = provider(root_settings(&admin, &path));
    assert!(p.supports_writes());
    // The first write creates the path (check-and-set 0).
    p.set("A", &Secret::new("1")).await.unwrap();
    assert_eq!(admin.get_v2("secret", &path), Some(json!({"A": "1"})));
    // Someone else adds a key with a number; a write keeps it as it is.
    admin.put_v2("secret", &path, json!({"A": "1", "PORT": 8080}));
    p.set("B", &Secret::new("2")).await.unwrap();
    assert_eq!(
        admin.get_v2("secret", &path),
        Some(json!({"A": "1", "PORT": 8080, "B": "2"}))
    );
    // The provider's own copy is dropped by a write: the next lookup sees it.
    assert_eq!(value(&p, "B").await.as_deref(), Some("2"));
    p.set("B", &Secret::new("22")).await.unwrap();
    assert_eq!(value(&p, "B").await.as_deref(), Some("22"));
    assert!(p.delete("A").await.unwrap());
    assert!(!p.delete("A").await.unwrap());
    assert_eq!(value(&p, "A").await, None);
    assert_eq!(
        admin.get_v2("secret", &path),
        Some(json!({"PORT": 8080, "B": "22"}))
    );
    assert_eq!(p.secret_version().await.unwrap(), Some(5));
}

#[tokio::test]
async fn kv1_set_and_delete_round_trip() {
    let admin = vault::shared();
    let path = unique("write-v1");
    let p = provider(root_settings(&admin, &path).mount("kv1"));
    p.set("A", &Secret::new("1")).await.unwrap();
    p.set("B", &Secret::new("2")).await.unwrap();
    assert_eq!(
        admin.get_v1("kv1", &path),
        Some(json!({"A": "1", "B": "2"}))
    );
    assert_eq!(value(&p, "A").await.as_deref(), Some("1"));
    assert!(p.delete("A").await.unwrap());
    assert!(!p.delete("A").await.unwrap());
    assert_eq!(admin.get_v1("kv1", &path), Some(json!({"B": "2"})));
    // The last key goes with the path (KV v1 refuses an empty object).
    assert!(p.delete("B").await.unwrap());
    assert_eq!(admin.get_v1("kv1", &path), None);
    assert!(!p.exists().await.unwrap());
}

/// A proxy writes to the secret right before each of the provider's writes reaches the
/// server: the server's check-and-set refuses the provider's write every time; after its
/// retries the provider reports a conflict, and the other writer's data is intact.
#[tokio::test]
async fn a_concurrent_change_is_a_check_and_set_conflict_and_nothing_is_lost() {
    let admin = vault::shared();
    let path = unique("cas");
    admin.put_v2("secret", &path, json!({"BASE": "b"}));
    let interfere = |admin: Admin, path: String, times: usize| {
        let done = std::sync::atomic::AtomicUsize::new(0);
        move |request: &vault::Passed| {
            if request.method == "POST"
                && request.target == format!("/v1/secret/data/{path}")
                && done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < times
            {
                let mut data = admin.get_v2("secret", &path).unwrap();
                let n = data.as_object().unwrap().len();
                data[format!("OTHER{n}")] = json!("theirs");
                admin.put_v2("secret", &path, data);
            }
        }
    };
    let proxy = RecordingProxy::start(&admin.addr, interfere(admin.clone(), path.clone(), 100));
    let p = provider(
        VaultSettings::new(proxy.addr.clone())
            .token(admin.root_token.clone())
            .path(&path),
    );
    let error = p.set("MINE", &Secret::new("mine")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Conflict, "{error}");
    assert_eq!(error.key(), Some("MINE"));
    assert_eq!(p.stats().secret_writes, 3, "three check-and-set attempts");
    let stored = admin.get_v2("secret", &path).unwrap();
    assert_eq!(
        stored,
        json!({"BASE": "b", "OTHER1": "theirs", "OTHER2": "theirs", "OTHER3": "theirs"})
    );

    // Interfered with once: the retry reads again and writes on top of the other change.
    let path = unique("cas-once");
    admin.put_v2("secret", &path, json!({"BASE": "b"}));
    let proxy = RecordingProxy::start(&admin.addr, interfere(admin.clone(), path.clone(), 1));
    let p = provider(
        VaultSettings::new(proxy.addr.clone())
            .token(admin.root_token.clone())
            .path(&path),
    );
    p.set("MINE", &Secret::new("mine")).await.unwrap();
    assert_eq!(
        admin.get_v2("secret", &path).unwrap(),
        json!({"BASE": "b", "OTHER1": "theirs", "MINE": "mine"})
    );
}

/// Two providers (as two processes would) write different keys at the same time: every
/// write that reports success is in the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_of_different_keys_lose_no_acknowledged_write() {
    let admin = vault::shared();
    let path = unique("race");
    let writers: Vec<Arc<VaultProvider>> = (0..2)
        .map(|_| Arc::new(provider(root_settings(&admin, &path))))
        .collect();
    let mut tasks = Vec::new();
    for (w, writer) in writers.iter().enumerate() {
        for k in 0..10 {
            let writer = Arc::clone(writer);
            tasks.push(tokio::spawn(async move {
                let key = format!("W{w}K{k}");
                let result = writer.set(&key, &Secret::new("v")).await;
                (key, result)
            }));
        }
    }
    let mut acknowledged = Vec::new();
    for task in tasks {
        let (key, result) = task.await.unwrap();
        match result {
            Ok(()) => acknowledged.push(key),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict, "{e}"),
        }
    }
    assert!(!acknowledged.is_empty());
    let stored = admin.get_v2("secret", &path).unwrap();
    for key in &acknowledged {
        assert_eq!(
            stored[key], "v",
            "{key} was acknowledged but is missing: {stored}"
        );
    }
}

#[tokio::test]
async fn a_namespace_is_sent_and_reads_from_that_namespace() {
    let admin = vault::shared();
    let namespace = unique("ns");
    let path = unique("in-ns");
    admin.ok(
        "POST",
        &format!("/v1/sys/namespaces/{namespace}"),
        Some(&json!({})),
    );
    let (status, answer) = admin.request_in(
        Some(&namespace),
        "POST",
        "/v1/sys/mounts/secret",
        Some(&json!({"type": "kv", "options": {"version": "2"}})),
    );
    assert!((200..300).contains(&status), "{answer}");
    let (status, answer) = admin.request_in(
        Some(&namespace),
        "POST",
        &format!("/v1/secret/data/{path}"),
        Some(&json!({"data": {"K": "in-namespace"}})),
    );
    assert!((200..300).contains(&status), "{answer}");
    admin.put_v2("secret", &path, json!({"K": "in-root"}));

    let in_ns = provider(root_settings(&admin, &path).namespace(namespace.clone()));
    assert_eq!(value(&in_ns, "K").await.as_deref(), Some("in-namespace"));
    let in_root = provider(root_settings(&admin, &path));
    assert_eq!(value(&in_root, "K").await.as_deref(), Some("in-root"));

    // Writes go to the namespace too.
    in_ns.set("W", &Secret::new("w")).await.unwrap();
    let (_, answer) = admin.request_in(
        Some(&namespace),
        "GET",
        &format!("/v1/secret/data/{path}"),
        None,
    );
    assert_eq!(answer["data"]["data"]["W"], "w");

    // Every request but `sys/health` (root namespace only) carried the header, as seen by a
    // recording proxy in front of the server.
    let proxy = RecordingProxy::start(&admin.addr, |_| {});
    let through = provider(
        VaultSettings::new(proxy.addr.clone())
            .token(admin.root_token.clone())
            .path(&path)
            .namespace(namespace.clone()),
    );
    assert_eq!(value(&through, "K").await.as_deref(), Some("in-namespace"));
    through.health().await.unwrap();
    let passed = proxy.passed();
    assert!(passed.len() >= 4, "{passed:?}");
    for request in passed {
        let expected =
            (!request.target.starts_with("/v1/sys/health")).then_some(namespace.as_str());
        assert_eq!(request.header("x-vault-namespace"), expected, "{request:?}");
    }

    // A namespace that does not exist is an error saying so.
    let nowhere = provider(root_settings(&admin, &path).namespace(unique("no-ns")));
    let error = nowhere.get("K").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert!(error.to_string().contains("namespace"), "{error}");
}

#[tokio::test]
async fn a_changed_value_is_seen_within_one_ttl_through_the_chain() {
    let admin = vault::shared();
    let path = unique("ttl");
    admin.put_v2("secret", &path, json!({"K": "old"}));
    let clock = Arc::new(ManualClock::new());
    let p = Arc::new(
        VaultProvider::with_clock(
            root_settings(&admin, &path).cache_ttl(Duration::from_secs(300)),
            clock.clone(),
        )
        .unwrap(),
    );
    // The manager caches answers for 300 s too; the caches must not stack to 600 s.
    let manager = SecretsManager::builder()
        .provider(p.clone())
        .cache_ttl(Duration::from_secs(300))
        .clock(clock.clone())
        .build();
    let get = || async { manager.get("K").await.unwrap().unwrap().expose().to_owned() };
    assert_eq!(get().await, "old");
    clock.advance(Duration::from_secs(100));
    assert_eq!(get().await, "old");
    admin.put_v2("secret", &path, json!({"K": "new"}));
    clock.advance(Duration::from_secs(199));
    assert_eq!(get().await, "old", "still within the TTL of the first read");
    clock.advance(Duration::from_secs(1));
    assert_eq!(get().await, "new", "seen one TTL after the first read");
    assert_eq!(p.stats().secret_reads, 2);
}

#[tokio::test]
async fn non_string_values_are_invalid_for_that_key_only() {
    let admin = vault::shared();
    let path = unique("types");
    admin.put_v2(
        "secret",
        &path,
        json!({"PORT": 8080, "OK": "fine", "NESTED": {"a": "b"}}),
    );
    let p = provider(root_settings(&admin, &path));
    assert_eq!(value(&p, "OK").await.as_deref(), Some("fine"));
    let error = p.get("PORT").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidValue);
    assert_eq!(error.key(), Some("PORT"));
    assert!(error.to_string().contains("a number"), "{error}");
    assert!(!error.to_string().contains("8080"), "{error}");
}

#[tokio::test]
async fn the_chain_falls_through_vault_to_the_next_provider() {
    let admin = vault::shared();
    let path = unique("chain");
    admin.put_v2("secret", &path, json!({"IN_VAULT": "from-vault"}));
    let next = Arc::new(
        MemoryProvider::new("next")
            .with("IN_VAULT", "shadowed")
            .with("ONLY_NEXT", "from-next"),
    );
    let manager = SecretsManager::builder()
        .provider(Arc::new(provider(root_settings(&admin, &path))))
        .provider(next.clone())
        .build();
    let found = manager.get_with_source("IN_VAULT").await.unwrap().unwrap();
    assert_eq!(
        (found.provider.as_str(), found.value.expose()),
        ("vault", "from-vault")
    );
    let found = manager.get_with_source("ONLY_NEXT").await.unwrap().unwrap();
    assert_eq!(
        (found.provider.as_str(), found.value.expose()),
        ("next", "from-next")
    );

    // Vault unreachable (nothing listens): logged, and the next provider still answers.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = VaultSettings::new(format!("http://127.0.0.1:{port}"))
        .token("s.unused")
        .path(&path);
    let manager = SecretsManager::builder()
        .provider(Arc::new(provider(down)))
        .provider(next)
        .build();
    let found = manager.get_with_source("ONLY_NEXT").await.unwrap().unwrap();
    assert_eq!(found.provider, "next");
    // A key nobody else has: an error naming vault, not "not found".
    match manager.get("ONLY_IN_VAULT").await {
        Err(SecretsError::ProvidersFailed { failures, .. }) => {
            assert_eq!(failures[0].provider(), "vault");
            assert_eq!(failures[0].kind(), ErrorKind::Unavailable);
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_lookups_share_one_read() {
    let admin = vault::shared();
    let path = unique("flight");
    admin.put_v2("secret", &path, json!({"K": "v"}));
    let p = Arc::new(provider(root_settings(&admin, &path)));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let p = Arc::clone(&p);
            tokio::spawn(async move { p.get("K").await.unwrap().unwrap().expose().to_owned() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), "v");
    }
    let stats = p.stats();
    assert_eq!(
        (stats.secret_reads, stats.mount_lookups, stats.token_lookups),
        (1, 1, 1),
        "{stats:?}"
    );
}

/// A KV version set to the other one than the mount's (`SIMPLETUNER_VAULT_KV_VERSION`) is a
/// misconfiguration naming the mount and the variable, for reads and writes, both ways;
/// nothing is written anywhere (before, KV v2 on a KV v1 mount said "not found" and wrote a
/// v2-shaped body to `kv1/data/{path}`).
#[tokio::test]
async fn a_kv_version_set_against_the_mount_is_misconfigured_and_nothing_is_written() {
    let admin = vault::shared();
    let app = secrets::AppName::default();
    let from_env = |mount: &str, path: &str, version: &str| {
        let vars = [
            ("VAULT_ADDR", admin.addr.clone()),
            ("VAULT_TOKEN", admin.root_token.clone()),
            ("SIMPLETUNER_VAULT_MOUNT", mount.to_owned()),
            ("SIMPLETUNER_VAULT_PATH", path.to_owned()),
            ("SIMPLETUNER_VAULT_KV_VERSION", version.to_owned()),
        ];
        let lookup = move |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| std::ffi::OsString::from(v))
        };
        provider(VaultSettings::from_lookup(&app, &lookup).unwrap().unwrap())
    };
    let misconfigured = |error: secrets::ProviderError, mount: &str| {
        let text = error.to_string();
        assert_eq!(error.kind(), ErrorKind::Misconfigured, "{text}");
        assert!(text.contains(&format!("mount `{mount}`")), "{text}");
        assert!(text.contains("SIMPLETUNER_VAULT_KV_VERSION"), "{text}");
    };

    let path = unique("forced-v2-on-v1");
    admin.put_v1("kv1", &path, json!({"K": "v1"}));
    let p = from_env("kv1", &path, "2");
    misconfigured(p.get("K").await.unwrap_err(), "kv1");
    misconfigured(p.set("K", &Secret::new("x")).await.unwrap_err(), "kv1");
    assert_eq!(admin.get_v1("kv1", &format!("data/{path}")), None);
    assert_eq!(admin.get_v1("kv1", &path), Some(json!({"K": "v1"})));

    let path = unique("forced-v1-on-v2");
    admin.put_v2("secret", &path, json!({"K": "v2"}));
    let p = from_env("secret", &path, "1");
    misconfigured(p.get("K").await.unwrap_err(), "secret");
    misconfigured(p.set("K", &Secret::new("x")).await.unwrap_err(), "secret");
    misconfigured(p.delete("K").await.unwrap_err(), "secret");
    assert_eq!(admin.get_v2("secret", &path), Some(json!({"K": "v2"})));

    // The right version, set, reads as detection would.
    let p = from_env("secret", &path, "2");
    assert_eq!(value(&p, "K").await.as_deref(), Some("v2"));
    assert_eq!(p.kv_version(), Some(KvVersion::V2));
}
