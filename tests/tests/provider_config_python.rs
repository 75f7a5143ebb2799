//! provider-config against the original server's own storage code, in a real Python process
//! (`tests/data/simpletuner_original_store.py`: the original's SQL, pragmas, key rules and
//! audit HMAC formula): databases and audit chains it wrote open, read and verify here, and
//! what is written here reads and verifies with its code.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use integration_tests::{CapturedLogs, test_python};
use secrets::config::{
    Actor, AuditEvent, AuditFilter, AuditTrail, ConfigStore, CredentialStore, LinkError,
    StoreError, StoreSettings, Tampering, Timestamp,
};
use secrets::crypto::CredentialCipher;
use serde_json::{Map, Value, json};

const PASSPHRASE: &str = "compat test passphrase";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/simpletuner_original_store.py")
}

/// Runs the original's code: `command` on the state directory with a JSON request.
fn original(command: &str, state: &Path, request: &Value) -> Value {
    let mut child = Command::new(test_python())
        .arg(script())
        .arg(command)
        .arg(state)
        .env_remove("SIMPLETUNER_AUDIT_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the test Python (run the tests with `cargo xtask test`)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the original's code failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn cipher() -> CredentialCipher {
    CredentialCipher::from_passphrase(PASSPHRASE).unwrap()
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn files_contain(db: &Path, needle: &str) -> bool {
    ["", "-wal", "-shm"].iter().any(|suffix| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        std::fs::read(PathBuf::from(name))
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
    })
}

fn replicate_config() -> Value {
    json!({
        "webhook_url": "https://example.invalid/hook",
        "webhook_require_signature": false,
        "webhook_allowed_ips": ["10.0.0.0/8", "2001:db8::1"],
        "cost_limit_enabled": true,
        "cost_limit_amount": 12.5,
        "cost_limit_period": "weekly",
        "cost_limit_action": "block",
        "hardware_info": {
            "gpu-l40s": {"name": "L40S (48GB)", "cost_per_second": 0.000972222},
            "gpu-h100": {"name": "H100 (80GB)", "cost_per_second": 0.001525, "memory_gb": 80}
        },
        "preferences": {"note": "café ✓", "nested": [1, 2.5, null, true]},
        "version_override": null
    })
}

fn original_audit_events() -> Value {
    json!([
        {"event_type": "auth.login.success", "action": "User alice logged in", "actor_id": 1,
         "actor_username": "alice", "actor_ip": "192.0.2.1"},
        {"event_type": "provider.configured", "action": "Configured replicate",
         "target_type": "provider", "target_id": "replicate",
         "details": {"fields": ["webhook_url"], "note": "é ✓ \"quoted\""}},
        {"event_type": "security.suspicious", "action": "Odd request", "actor_id": null,
         "details": {"nested": {"a": [1, 2.5, null]}}},
        {"event_type": "credential.created", "action": "Stored token", "actor_id": 2,
         "target_type": "credential", "target_id": "7"},
        {"event_type": "job.submitted", "action": "Submitted job", "actor_id": 1,
         "timestamp": "2020-01-01T00:00:00+00:00"}
    ])
}

#[test]
fn what_the_original_wrote_opens_reads_and_verifies_here_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let credentials = json!([
        {"user_id": 1, "provider": "replicate", "name": "api_token", "value": "r8_plain_original"},
        {"user_id": 2, "provider": "huggingface", "name": "token", "value": "hf_plain ✓"}
    ]);
    original(
        "write",
        state,
        &json!({
            "configs": {"replicate": replicate_config(), "modal": {}},
            "raw_configs": {"runpod": "{'single': 'quotes'}"},
            "credentials": credentials,
            "audit": original_audit_events(),
        }),
    );
    let settings = StoreSettings::in_dir(state);
    let trail = AuditTrail::open(&settings).unwrap();
    let store = ConfigStore::builder(&settings.jobs_db)
        .cipher(cipher())
        .audit(trail.clone())
        .open()
        .unwrap()
        .acting_as(Actor::named("compat-test"));

    // Configuration rows read as the original stored them.
    assert_eq!(
        Value::Object(store.get("replicate").unwrap().into_map()),
        replicate_config()
    );
    assert!(store.get("modal").unwrap().is_empty());
    assert_eq!(store.list().unwrap(), ["modal", "replicate", "runpod"]);
    let e = store.get("runpod").unwrap_err();
    assert!(
        matches!(e, StoreError::InvalidStoredConfig { .. }) && e.to_string().contains("`runpod`")
    );
    let limit = store.cost_limit("replicate").unwrap();
    assert!(limit.enabled && limit.amount == 12.5);
    let webhook = store.webhook_config("replicate").unwrap();
    assert!(!webhook.require_signature && webhook.allowed_ips.len() == 2);
    let pricing = store.hardware_pricing().unwrap();
    assert_eq!(pricing["gpu-h100"].cost_per_second, 0.001525);
    assert_eq!(pricing["gpu-h100"].extra["memory_gb"], 80);

    // The original's plaintext credentials read as plaintext.
    let creds =
        CredentialStore::open_path(&settings.jobs_db, cipher(), Some(trail.clone())).unwrap();
    assert_eq!(
        creds
            .get(1, "replicate", "api_token")
            .unwrap()
            .unwrap()
            .expose(),
        "r8_plain_original"
    );
    assert_eq!(
        creds
            .get(2, "huggingface", "token")
            .unwrap()
            .unwrap()
            .expose(),
        "hf_plain ✓"
    );
    assert!(!creds.list_for_user(1, None).unwrap()[0].encrypted);

    // The original's chain verifies here.
    let report = trail.verify().unwrap();
    assert!(report.valid, "{report:?}");
    assert_eq!((report.entries_checked, report.row_macs_checked), (5, 0));
    let listed = trail.list(&AuditFilter::default()).unwrap();
    assert_eq!(listed[2].details["nested"]["a"], json!([1, 2.5, null]));
    assert_eq!(listed[2].actor_id, None);

    // Changes made here: an update, a credential, a plain audit event.
    store
        .update(
            "replicate",
            object(json!({"cost_limit_amount": 7, "webhook_secret": "SENTINEL-compat-hook"})),
        )
        .unwrap();
    creds
        .set(
            1,
            "replicate",
            "api_token",
            &secrets::Secret::new("r8_new ✓"),
        )
        .unwrap();
    trail
        .append(
            &AuditEvent::new("config.changed", "appended by Rust")
                .actor(Actor {
                    id: Some(9),
                    username: Some("bob".into()),
                    ip: Some("::1".into()),
                })
                .detail("unicode", "é ✓"),
        )
        .unwrap();

    // The original reads and verifies all of it with its own code.
    let answer = original(
        "read",
        state,
        &json!({
            "credentials": [{"user_id": 1, "provider": "replicate", "name": "api_token"}],
            "passphrase": PASSPHRASE,
            "decrypt": [],
        }),
    );
    assert_eq!(answer["verify"]["valid"], true, "{}", answer["verify"]);
    assert_eq!(answer["verify"]["entries_checked"], 8);
    assert_eq!(answer["providers"], json!(["modal", "replicate", "runpod"]));
    let replicate = &answer["configs"]["replicate"];
    assert_eq!(replicate["cost_limit_amount"], 7);
    assert_eq!(replicate["preferences"], replicate_config()["preferences"]);
    // The original's reader sees ciphertext where it had plaintext; its own
    // credential_encryption code decrypts it (same stored format).
    let stored_token = answer["credentials"][0].as_str().unwrap().to_owned();
    let stored_hook = replicate["webhook_secret"].as_str().unwrap().to_owned();
    assert!(stored_token.starts_with("Z0FBQUFB") && stored_hook.starts_with("Z0FBQUFB"));
    let decrypted = original(
        "read",
        state,
        &json!({"passphrase": PASSPHRASE, "decrypt": [stored_token, stored_hook]}),
    );
    assert_eq!(
        decrypted["decrypted"],
        json!(["r8_new ✓", "SENTINEL-compat-hook"])
    );
    // The original's query() reads the rows written here.
    let newest = &answer["audit"][0];
    assert_eq!(newest["action"], "appended by Rust");
    assert_eq!(newest["actor_username"], "bob");
    assert_eq!(newest["details"]["unicode"], "é ✓");
    assert_eq!(answer["audit"][2]["event_type"], "provider.configured");
    assert_eq!(
        answer["audit"][2]["details"]["changed_keys"],
        json!(["cost_limit_amount", "webhook_secret"])
    );
    // And here, the rows written here also carry a MAC over every column.
    let report = trail.verify().unwrap();
    assert!(report.valid && report.entries_checked == 8 && report.row_macs_checked == 3);

    // Cleanup keeps the rest verifiable here (the original's verifier, which knows no
    // checkpoints, now reports the first kept row: a documented difference).
    let cleaned = trail.cleanup(30).unwrap();
    assert_eq!(
        cleaned.removed, 0,
        "the old row is not at the start of the chain"
    );
}

#[test]
fn tampering_with_the_originals_chain_is_named_here_and_by_the_original() {
    type Tamper = (&'static str, &'static str, i64, LinkError, Tampering);
    let cases: [Tamper; 4] = [
        ("modified", "UPDATE audit_log SET action = 'nothing happened' WHERE id = 3", 3, LinkError::HashMismatch, Tampering::Modified),
        ("deleted", "DELETE FROM audit_log WHERE id = 2", 3, LinkError::LinkMismatch, Tampering::Deleted),
        (
            "inserted",
            "INSERT INTO audit_log (timestamp, event_type, actor_id, actor_username, actor_ip, target_type,
                 target_id, action, details, previous_hash, entry_hash)
             SELECT timestamp, event_type, actor_id, actor_username, actor_ip, target_type, target_id,
                 action, details, previous_hash, entry_hash FROM audit_log WHERE id = 2",
            6,
            LinkError::LinkMismatch,
            Tampering::Inserted,
        ),
        (
            "reordered",
            "UPDATE audit_log SET id = -1 WHERE id = 2; UPDATE audit_log SET id = 2 WHERE id = 4;
             UPDATE audit_log SET id = 4 WHERE id = -1;",
            2,
            LinkError::LinkMismatch,
            Tampering::Reordered,
        ),
    ];
    for (name, sql, id, error, tampering) in cases {
        let dir = tempfile::tempdir().unwrap();
        original(
            "write",
            dir.path(),
            &json!({"audit": original_audit_events()}),
        );
        let conn = rusqlite::Connection::open(dir.path().join("audit.db")).unwrap();
        conn.execute_batch(sql).unwrap();
        drop(conn);
        let trail = AuditTrail::open(&StoreSettings::in_dir(dir.path())).unwrap();
        let report = trail.verify().unwrap();
        assert!(!report.valid, "{name}: {report:?}");
        let first = report.first_problem().unwrap();
        assert_eq!(
            (first.id, first.error, first.tampering),
            (id, error, tampering),
            "{name}: {first:?}"
        );
        // The original's own verifier agrees that the chain is broken, at the same row.
        let answer = original("read", dir.path(), &json!({}));
        assert_eq!(answer["verify"]["valid"], false, "{name}");
        assert_eq!(answer["verify"]["broken_links"][0]["id"], id, "{name}");
    }
}

#[test]
fn migration_of_the_originals_plaintext_leaves_no_copy_even_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let (kept, gone, hook) = (
        "SENTINEL-py-kept-1a",
        "SENTINEL-py-gone-2b",
        "SENTINEL-py-hook-3c",
    );
    // The original writes plaintext rows, deletes one, and is killed before any checkpoint.
    original(
        "write",
        state,
        &json!({
            "configs": {"replicate": {"webhook_secret": hook}},
            "credentials": [{"user_id": 1, "provider": "replicate", "name": "api_token", "value": kept}],
            "deleted_credentials": [{"user_id": 2, "provider": "modal", "name": "t", "value": gone}],
            "crash": true,
        }),
    );
    let settings = StoreSettings::in_dir(state);
    for sentinel in [kept, gone, hook] {
        assert!(
            files_contain(&settings.jobs_db, sentinel),
            "{sentinel} was planted"
        );
    }
    let creds = CredentialStore::open_path(&settings.jobs_db, cipher(), None).unwrap();
    let report = creds.encrypt_plaintext().unwrap();
    assert_eq!(
        (
            report.credentials_encrypted,
            report.config_secrets_encrypted
        ),
        (1, 1)
    );
    assert!(report.scrubbed);
    for sentinel in [kept, gone, hook] {
        assert!(
            !files_contain(&settings.jobs_db, sentinel),
            "{sentinel} left in the files"
        );
    }
    assert_eq!(
        creds
            .get(1, "replicate", "api_token")
            .unwrap()
            .unwrap()
            .expose(),
        kept
    );
    // The original's code decrypts what the migration stored.
    let answer = original(
        "read",
        state,
        &json!({"credentials": [{"user_id": 1, "provider": "replicate", "name": "api_token"}]}),
    );
    let decrypted = original(
        "read",
        state,
        &json!({
            "passphrase": PASSPHRASE,
            "decrypt": [answer["credentials"][0], answer["configs"]["replicate"]["webhook_secret"]],
        }),
    );
    assert_eq!(decrypted["decrypted"], json!([kept, hook]));
}

#[test]
fn timestamps_are_written_as_the_originals_isoformat() {
    let micros = [
        0_i64,
        1,
        1_787_398_344_000_000,
        1_787_398_344_123_456,
        951_782_399_999_999,
    ];
    let python = original("isoformat", Path::new("."), &json!({ "micros": micros }));
    let ours: Vec<String> = micros
        .iter()
        .map(|m| Timestamp::from_unix_micros(*m).to_string())
        .collect();
    assert_eq!(python, json!(ours));
}

#[test]
fn no_value_reaches_the_logs_even_at_trace_level() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let (plain, token, hook) = (
        "SENTINEL-log-plain-01",
        "SENTINEL-log-token-02",
        "SENTINEL-log-hook-03",
    );
    original(
        "write",
        state,
        &json!({"credentials": [{"user_id": 1, "provider": "replicate", "name": "legacy", "value": plain}]}),
    );
    let settings = StoreSettings::in_dir(state);
    let trail = AuditTrail::open(&settings).unwrap();
    let store = ConfigStore::builder(&settings.jobs_db)
        .cipher(cipher())
        .audit(trail.clone())
        .open()
        .unwrap();
    let creds =
        CredentialStore::open_path(&settings.jobs_db, cipher(), Some(trail.clone())).unwrap();
    assert_eq!(
        creds
            .get(1, "replicate", "legacy")
            .unwrap()
            .unwrap()
            .expose(),
        plain
    );
    creds
        .set(1, "replicate", "api_token", &secrets::Secret::new(token))
        .unwrap();
    store
        .update("replicate", object(json!({"webhook_secret": hook})))
        .unwrap();
    let webhook = store.webhook_config("replicate").unwrap();
    let errors = [
        store
            .update("replicate", object(json!({"cost_limit_action": hook})))
            .unwrap_err()
            .to_string(),
        store
            .update("replicate", object(json!({"webhook_allowed_ips": [hook]})))
            .unwrap_err()
            .to_string(),
    ];
    creds.encrypt_plaintext().unwrap();
    trail.verify().unwrap();
    let shown = format!(
        "{webhook:?} {store:?} {creds:?} {:?} {errors:?}",
        store.get("replicate").unwrap()
    );
    let text = logs.text();
    assert!(!text.is_empty(), "TRACE logging was captured");
    for sentinel in [plain, token, hook] {
        assert!(!text.contains(sentinel), "{sentinel} in the logs:\n{text}");
        assert!(
            !shown.contains(sentinel),
            "{sentinel} in Debug or an error: {shown}"
        );
        assert!(!files_contain(&settings.audit_db, sentinel));
    }
}

/// What Python's json.dumps writes beyond JSON (NaN, infinities, a lone surrogate, integers
/// beyond 64 bits) reads here, and neither an update of another key nor `migrate-db`'s
/// encryption of the secret changes it, as the original reads it back.
#[test]
fn values_only_python_writes_read_here_and_survive_updates_of_other_keys() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    original(
        "write",
        state,
        &json!({"python_only_configs": ["replicate"]}),
    );
    let settings = StoreSettings::in_dir(state);
    let trail = AuditTrail::open(&settings).unwrap();
    let store = ConfigStore::builder(&settings.jobs_db)
        .cipher(cipher())
        .audit(trail.clone())
        .open()
        .unwrap();
    let config = store.get("replicate").unwrap();
    assert_eq!(config["nan"], "NaN");
    assert_eq!(config["inf"], "Infinity");
    assert_eq!(config["ninf"], "-Infinity");
    assert_eq!(config["lone"], "a\u{fffd}b");
    assert_eq!(config["big"].as_f64(), Some(2f64.powi(70)));
    // A typed read of a well-known key holding one is an error naming the key.
    store
        .update("replicate", object(json!({"cost_limit_amount": 1.0})))
        .unwrap();
    let unchanged = original("read", state, &json!({"python_only_check": ["replicate"]}));
    let expected = json!({"nan": true, "inf": true, "ninf": true, "lone": true, "big": true,
        "neg_big": true, "keep": 1, "webhook_secret_plain": true});
    assert_eq!(unchanged["replicate"], expected);
    store
        .update("replicate", object(json!({"keep": 2})))
        .unwrap();
    let creds = CredentialStore::open(&settings, cipher()).unwrap();
    let report = creds.encrypt_plaintext().unwrap();
    assert_eq!(report.config_secrets_encrypted, 1);
    let after = original("read", state, &json!({"python_only_check": ["replicate"]}));
    let mut expected = expected;
    expected["keep"] = json!(2);
    expected["webhook_secret_plain"] = json!(false);
    assert_eq!(after["replicate"], expected);
    assert!(trail.verify().unwrap().valid);
}
