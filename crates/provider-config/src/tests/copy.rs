//! Copying a store (the SQLite files) to another backend: everything arrives as stored, the
//! chain verifies, a second run copies nothing, a diverged target is refused untouched.

use serde_json::json;

use super::{Kind, TestDb, audit_key, both, cipher, object};
use crate::{
    AuditEvent, AuditTrail, ConfigStore, CredentialStore, Secret, StoreError, StoreLocation,
    StoreSettings, copy_store,
};

/// The settings whose stores are at `db`'s locations.
fn settings_of(db: &TestDb) -> StoreSettings {
    let mut settings = StoreSettings::in_dir(db.dir.path());
    settings.jobs_db = db.jobs_db();
    settings.audit_db = db.audit_db();
    if let StoreLocation::Postgres(url) = db.jobs() {
        settings = settings.with_database_url(url);
    }
    settings
}

fn copy_to(kind: Kind) {
    let source = TestDb::new(Kind::Sqlite);
    let trail = AuditTrail::open_at(&source.audit(), audit_key()).unwrap();
    let store = ConfigStore::builder_at(source.jobs())
        .audit(trail.clone())
        .cipher(cipher())
        .open()
        .unwrap();
    let creds = CredentialStore::open_at(&source.jobs(), cipher(), Some(trail.clone())).unwrap();
    store
        .save(
            "replicate",
            object(json!({"webhook_secret": "SENTINEL-hook", "cost_limit_amount": 5})),
        )
        .unwrap();
    store.save("modal", object(json!({"k": [1, 2]}))).unwrap();
    for user in 1..=3 {
        creds
            .set(
                user,
                "replicate",
                "api_token",
                &Secret::new(format!("token-{user}")),
            )
            .unwrap();
    }
    creds.deactivate(2, "replicate", "api_token").unwrap();
    creds.delete(3, "replicate", "api_token").unwrap();
    trail
        .append(&AuditEvent::new("auth.login.success", "someone logged in"))
        .unwrap();
    let source_rows = trail.verify().unwrap().entries_checked;

    let target = TestDb::new(kind);
    let report = copy_store(&settings_of(&source), &settings_of(&target), &audit_key()).unwrap();
    assert_eq!(
        (
            report.providers_copied,
            report.credentials_copied,
            report.audit_rows_copied
        ),
        (2, 2, source_rows)
    );
    assert!(report.chain.valid && report.chain.entries_checked == source_rows);
    // Everything as stored: the same ciphertexts, the same rows and ids.
    let dump = |db: &TestDb| {
        let raw = db.raw();
        (
            raw.rows(
                "SELECT provider, config, updated_at FROM provider_config ORDER BY provider",
                &[],
            ),
            raw.rows(
                "SELECT id, user_id, provider, credential_name, credential_value, created_at,
                        updated_at, last_used_at, is_active FROM provider_credentials ORDER BY id",
                &[],
            ),
            db.raw_audit().rows(
                "SELECT a.id, timestamp, event_type, actor_id, actor_username, actor_ip,
                        target_type, target_id, action, details, previous_hash, entry_hash, m.mac
                 FROM audit_log a LEFT JOIN audit_row_mac m ON m.entry_id = a.id ORDER BY a.id",
                &[],
            ),
        )
    };
    assert_eq!(dump(&source), dump(&target));
    let copied = ConfigStore::builder_at(target.jobs())
        .cipher(cipher())
        .open()
        .unwrap();
    assert_eq!(
        copied
            .webhook_config("replicate")
            .unwrap()
            .secret
            .unwrap()
            .expose(),
        "SENTINEL-hook"
    );
    let copied_creds = CredentialStore::open_at(&target.jobs(), cipher(), None).unwrap();
    assert_eq!(
        copied_creds
            .get(1, "replicate", "api_token")
            .unwrap()
            .unwrap()
            .expose(),
        "token-1"
    );
    assert!(
        copied_creds
            .get(2, "replicate", "api_token")
            .unwrap()
            .is_none()
    );
    // New rows in the target continue the ids and the chain.
    let copied_trail = AuditTrail::open_at(&target.audit(), audit_key()).unwrap();
    let id = copied_creds
        .set(4, "modal", "api_token", &Secret::new("t4"))
        .unwrap();
    assert!(id > 2, "{id}");
    copied_trail
        .append(&AuditEvent::new("a", "after the copy"))
        .unwrap();
    assert!(copied_trail.verify().unwrap().valid);

    // A second run copies nothing and changes nothing.
    let again = copy_store(&settings_of(&source), &settings_of(&target), &audit_key()).unwrap();
    assert_eq!(
        (
            again.providers_copied,
            again.credentials_copied,
            again.audit_rows_copied
        ),
        (0, 0, 0)
    );
    assert_eq!(
        (
            again.providers_unchanged,
            again.credentials_unchanged,
            again.audit_rows_unchanged
        ),
        (2, 2, source_rows)
    );
    // A target changed since is never overwritten: refused, nothing written.
    copied
        .update("modal", object(json!({"k": "changed in the target"})))
        .unwrap();
    store.save("new-provider", object(json!({}))).unwrap();
    let e = copy_store(&settings_of(&source), &settings_of(&target), &audit_key()).unwrap_err();
    assert!(matches!(e, StoreError::CopyRefused { .. }), "{e}");
    assert!(e.to_string().contains("`modal`"), "{e}");
    assert!(copied.get_uncached("new-provider").unwrap().is_empty());
    // A source chain that does not verify is not copied.
    source
        .raw_audit()
        .execute("UPDATE audit_log SET action = 'forged' WHERE id = 1", &[]);
    let fresh = TestDb::new(kind);
    let e = copy_store(&settings_of(&source), &settings_of(&fresh), &audit_key()).unwrap_err();
    assert!(matches!(e, StoreError::BrokenChain { id: 1, .. }), "{e}");
}

both!(copy_to);
