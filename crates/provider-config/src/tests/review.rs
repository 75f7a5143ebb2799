//! Regression tests for the problems an adversarial review found: each fails without its
//! fix, on both backends where it applies.

use std::time::Duration;

use serde_json::json;

use super::{Fixture, Kind, Raw, TestDb, audit_key, both, cipher, object};
use crate::hardware::{HardwareOption, default_hardware_info};
use crate::{
    AuditEvent, AuditKey, AuditTrail, ConfigStore, CredentialStore, HardwareInfo, LinkError,
    Secret, StoreError, Tampering,
};

/// Makes every insert into `audit_log` fail, as a lock timeout or a full disk would.
fn refuse_audit_inserts(kind: Kind, raw: &Raw) {
    match kind {
        Kind::Sqlite => raw.batch(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log
             BEGIN SELECT RAISE(ABORT, 'audit insert refused'); END;",
        ),
        #[cfg(feature = "postgres")]
        Kind::Postgres => raw.batch(
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN RAISE EXCEPTION 'audit insert refused'; END $$;
             CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log
               FOR EACH ROW EXECUTE FUNCTION refuse_audit();",
        ),
    }
}

fn audit_rows(raw: &Raw) -> i64 {
    raw.string("SELECT count(*) FROM audit_log", &[])
        .parse()
        .unwrap()
}

// 1. A change and its audit row are one transaction: a failing append rolls back both.
fn a_change_is_never_committed_without_its_audit_row(kind: Kind) {
    let f = Fixture::new(kind);
    f.store
        .update(
            "replicate",
            object(json!({"webhook_url": "https://a.invalid"})),
        )
        .unwrap();
    refuse_audit_inserts(kind, &f.db.raw_audit());
    let e = f
        .store
        .update(
            "replicate",
            object(json!({"webhook_url": "https://b.invalid"})),
        )
        .unwrap_err();
    assert!(!matches!(e, StoreError::AuditAfterCommit(_)), "{e:?}");
    assert_eq!(
        f.store.get_uncached("replicate").unwrap()["webhook_url"],
        "https://a.invalid"
    );
    assert!(f.store.delete("replicate").is_err());
    assert!(f.store.save("modal", object(json!({"k": 1}))).is_err());
    assert_eq!(f.store.list().unwrap(), ["replicate"]);

    // Credentials, and the maintenance rewrite (whose VACUUM runs only after both commit).
    let creds = CredentialStore::open_at(&f.db.jobs(), cipher(), Some(f.trail.clone())).unwrap();
    assert!(
        creds
            .set(1, "replicate", "api_token", &Secret::new("t"))
            .is_err()
    );
    assert!(creds.get(1, "replicate", "api_token").unwrap().is_none());
    f.raw().execute(
        "INSERT INTO provider_credentials (user_id, provider, credential_name, credential_value, created_at)
         VALUES (2, 'replicate', 'api_token', 'PLAINTEXT-SENTINEL', 'now')",
        &[],
    );
    assert!(creds.encrypt_plaintext().is_err());
    assert_eq!(
        f.raw().string(
            "SELECT credential_value FROM provider_credentials WHERE user_id = 2",
            &[]
        ),
        "PLAINTEXT-SENTINEL"
    );
    assert_eq!(audit_rows(&f.db.raw_audit()), 1);
    assert!(f.trail.verify().unwrap().valid);
}

/// A trail with three rows appended here.
fn three_rows(kind: Kind) -> (TestDb, AuditTrail) {
    let db = TestDb::new(kind);
    let trail = AuditTrail::open_at(&db.audit(), audit_key()).unwrap();
    for i in 0..3 {
        trail
            .append(&AuditEvent::new(
                "provider.configured",
                format!("change {i}"),
            ))
            .unwrap();
    }
    assert!(trail.verify().unwrap().valid);
    (db, trail)
}

fn problems(trail: &AuditTrail) -> Vec<(LinkError, Tampering, String)> {
    let report = trail.verify().unwrap();
    assert!(!report.valid, "the deletion was not detected: {report:?}");
    report
        .broken_links
        .into_iter()
        .map(|p| (p.error, p.tampering, p.message))
        .collect()
}

// 2. Deleting the newest rows, or all of them, is detected.
fn deleting_the_newest_or_all_rows_is_detected(kind: Kind) {
    // The newest row, its MAC kept: the head marker and the orphaned MAC both show it.
    let (db, trail) = three_rows(kind);
    db.raw_audit().batch("DELETE FROM audit_log WHERE id = 3");
    let found = problems(&trail);
    assert!(
        found.iter().any(|(e, t, m)| *e == LinkError::HeadMismatch
            && *t == Tampering::Deleted
            && m.contains("rows 3..=3 were deleted")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|(e, ..)| *e == LinkError::OrphanRowMac),
        "{found:?}"
    );

    // The newest two rows with their MACs.
    let (db, trail) = three_rows(kind);
    db.raw_audit().batch(
        "DELETE FROM audit_log WHERE id >= 2; DELETE FROM audit_row_mac WHERE entry_id >= 2",
    );
    let found = problems(&trail);
    assert!(found[0].2.contains("rows 2..=3 were deleted"), "{found:?}");

    // Every row and MAC.
    let (db, trail) = three_rows(kind);
    db.raw_audit()
        .batch("DELETE FROM audit_log; DELETE FROM audit_row_mac");
    let found = problems(&trail);
    assert!(found[0].2.contains("every row was deleted"), "{found:?}");

    // The newest row, its MAC and the head marker: the remaining rows say they were
    // appended with a marker.
    let (db, trail) = three_rows(kind);
    db.raw_audit().batch(
        "DELETE FROM audit_log WHERE id = 3; DELETE FROM audit_row_mac WHERE entry_id = 3;
         DELETE FROM audit_head",
    );
    let found = problems(&trail);
    assert!(found[0].2.contains("head marker is missing"), "{found:?}");

    // An older copy of the head marker put back after deleting the newest row.
    let (db, trail) = three_rows(kind);
    let raw = db.raw_audit();
    let old = raw.rows("SELECT last_id, entry_hash, mac FROM audit_head", &[]);
    trail.append(&AuditEvent::new("x", "newest")).unwrap();
    raw.batch("DELETE FROM audit_log WHERE id = 4; DELETE FROM audit_row_mac WHERE entry_id = 4");
    raw.execute(
        "UPDATE audit_head SET last_id = ?1, entry_hash = ?2, mac = ?3",
        &old[0]
            .iter()
            .map(|v| match v.as_deref().unwrap().parse::<i64>() {
                Ok(i) => super::P::I(i),
                Err(_) => super::P::T(v.clone().unwrap()),
            })
            .collect::<Vec<_>>(),
    );
    match kind {
        // SQLite remembers the ids it handed out.
        Kind::Sqlite => {
            let found = problems(&trail);
            assert!(
                found
                    .iter()
                    .any(|(e, _, m)| *e == LinkError::SequenceAhead && m.contains("rows 4..=4")),
                "{found:?}"
            );
        }
        // The documented limit: without the key, an older marker and the rows before it
        // are consistent; PostgreSQL's sequence proves nothing.
        #[cfg(feature = "postgres")]
        Kind::Postgres => assert!(trail.verify().unwrap().valid),
    }

    // Everything, the head marker included.
    let (db, trail) = three_rows(kind);
    db.raw_audit()
        .batch("DELETE FROM audit_log; DELETE FROM audit_row_mac; DELETE FROM audit_head");
    match kind {
        Kind::Sqlite => {
            let found = problems(&trail);
            assert!(
                found.iter().any(|(e, _, m)| *e == LinkError::SequenceAhead
                    && m.contains("every row was deleted")),
                "{found:?}"
            );
        }
        #[cfg(feature = "postgres")]
        Kind::Postgres => assert!(trail.verify().unwrap().valid),
    }
}

// 3. Appending under a wrong key is refused before anything is written.
fn appending_under_a_wrong_audit_key_is_refused(kind: Kind) {
    let f = Fixture::new(kind);
    f.store
        .update(
            "replicate",
            object(json!({"webhook_url": "https://a.invalid"})),
        )
        .unwrap();
    let wrong = AuditKey::from_bytes(b"another audit key".to_vec()).unwrap();
    let wrong_trail = AuditTrail::open_at(&f.db.audit(), wrong).unwrap();
    let e = wrong_trail
        .append(&AuditEvent::new("x", "under the wrong key"))
        .unwrap_err();
    assert!(e.to_string().contains("wrong audit key"), "{e}");
    assert!(e.is_crypto(), "{e:?}");
    let store = ConfigStore::builder_at(f.db.jobs())
        .audit(wrong_trail)
        .cipher(cipher())
        .open()
        .unwrap();
    let e = store
        .update(
            "replicate",
            object(json!({"webhook_url": "https://b.invalid"})),
        )
        .unwrap_err();
    assert!(e.to_string().contains("wrong audit key"), "{e}");
    assert_eq!(
        store.get_uncached("replicate").unwrap()["webhook_url"],
        "https://a.invalid"
    );
    assert_eq!(audit_rows(&f.db.raw_audit()), 1);
    assert!(f.trail.verify().unwrap().valid);
}

both!(
    a_change_is_never_committed_without_its_audit_row,
    deleting_the_newest_or_all_rows_is_detected,
    appending_under_a_wrong_audit_key_is_refused,
);

// 4. A replaced or deleted plaintext secret is gone from the file bytes (SQLite: every
// writing connection zeroes what it frees; PostgreSQL keeps dead row versions until a
// vacuum, which `migrate-db` runs: see postgres.md).
#[test]
fn a_replaced_or_deleted_plaintext_secret_is_gone_from_the_files() {
    let f = Fixture::new(Kind::Sqlite);
    let raw = f.raw();
    for (provider, secret) in [
        ("replicate", "PLAIN-SENTINEL-ONE"),
        ("modal", "PLAIN-SENTINEL-TWO"),
    ] {
        raw.execute(
            "INSERT INTO provider_config (provider, config, updated_at) VALUES (?1, ?2, 'then')",
            super::params![
                provider,
                format!(
                    "{{\"webhook_secret\": \"{secret}\", \"webhook_url\": \"https://a.invalid\"}}"
                )
            ],
        );
    }
    raw.batch("PRAGMA wal_checkpoint(TRUNCATE)");
    assert!(!f.db.holding("PLAIN-SENTINEL-ONE").is_empty());
    f.store
        .update("replicate", object(json!({"webhook_secret": "new secret"})))
        .unwrap();
    assert!(f.store.delete("modal").unwrap());
    raw.batch("PRAGMA wal_checkpoint(TRUNCATE)");
    for sentinel in ["PLAIN-SENTINEL-ONE", "PLAIN-SENTINEL-TWO"] {
        assert_eq!(f.db.holding(sentinel), Vec::<String>::new(), "{sentinel}");
    }
}

/// A second store on the same database with caches of its own (another process).
fn other_process(f: &Fixture) -> ConfigStore {
    ConfigStore::builder_at(f.db.jobs())
        .cipher(cipher())
        .open()
        .unwrap()
}

fn custom_pricing() -> HardwareInfo {
    let mut custom = HardwareInfo::new();
    custom.insert("gpu-l40s".into(), HardwareOption::new("L40S (48GB)", 0.5));
    custom
}

// 9. The hardware pricing is never stale for more than one TTL after another process's
// change (SQLite), and a delete that found nothing still invalidates.
#[test]
fn hardware_pricing_is_stale_for_one_ttl_at_most_and_every_delete_invalidates() {
    let f = Fixture::new(Kind::Sqlite);
    let other = other_process(&f);
    assert!(f.store.get("replicate").unwrap().is_empty());
    other
        .set_hardware_info("replicate", &custom_pricing())
        .unwrap();
    // The first pricing load near the end of the configuration's TTL...
    f.clock.advance(Duration::from_secs(299));
    let _ = f.store.hardware_pricing().unwrap();
    // ...and one TTL after the change the pricing is current.
    f.clock.advance(Duration::from_secs(2));
    assert_eq!(f.store.hardware_pricing().unwrap(), custom_pricing());

    // Deleted by the other process; a local delete finds nothing, yet invalidates.
    other.delete("replicate").unwrap();
    assert!(!f.store.delete("replicate").unwrap());
    assert_eq!(f.store.hardware_pricing().unwrap(), default_hardware_info());
    assert!(f.store.get("replicate").unwrap().is_empty());
}

// 9, PostgreSQL: the other replica's write reaches the pricing cache through NOTIFY.
#[cfg(feature = "postgres")]
#[test]
fn hardware_pricing_follows_another_replicas_write_on_postgres() {
    let f = Fixture::new(Kind::Postgres);
    let other = other_process(&f);
    assert_eq!(f.store.hardware_pricing().unwrap(), default_hardware_info());
    other
        .set_hardware_info("replicate", &custom_pricing())
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while f.store.hardware_pricing().unwrap() != custom_pricing() {
        assert!(
            std::time::Instant::now() < deadline,
            "the pricing stayed stale"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    other.delete("replicate").unwrap();
    assert!(!f.store.delete("replicate").unwrap());
    assert_eq!(f.store.hardware_pricing().unwrap(), default_hardware_info());
}

fn loader(dir: &std::path::Path) -> credential_crypto::KeyLoader {
    credential_crypto::KeyLoader::new(&crate::AppName::new("simpletuner").unwrap())
        .env_lookup(|_| None)
        .key_file(dir.join("credential.key"))
}

// 5. A credential key is created only when allowed, and never when credentials are
// already encrypted under another key.
fn a_credential_key_is_created_only_when_allowed_and_never_over_encrypted_data(kind: Kind) {
    let db = TestDb::new(kind);
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("credential.key");
    let secret = || object(json!({"webhook_secret": "s3cret", "webhook_url": "https://a.invalid"}));
    // Not allowed: refused, nothing written, no key file.
    let refusing = ConfigStore::builder_at(db.jobs())
        .create_key(false)
        .key_loader(loader(keys.path()))
        .open()
        .unwrap();
    let e = refusing.update("replicate", secret()).unwrap_err();
    assert!(e.is_crypto(), "{e:?}");
    assert!(!key_file.exists());
    assert!(refusing.get_uncached("replicate").unwrap().is_empty());
    // Other keys need no key.
    refusing
        .update("replicate", object(json!({"cost_limit_amount": 5.0})))
        .unwrap();
    // Allowed: created, and said so.
    let creating = ConfigStore::builder_at(db.jobs())
        .key_loader(loader(keys.path()))
        .open()
        .unwrap();
    creating.update("replicate", secret()).unwrap();
    assert_eq!(creating.generated_key_file(), Some(key_file.clone()));
    assert!(key_file.exists());
    // The key is lost: a new one is never created over the encrypted secret.
    std::fs::remove_file(&key_file).unwrap();
    let again = ConfigStore::builder_at(db.jobs())
        .key_loader(loader(keys.path()))
        .open()
        .unwrap();
    let e = again
        .update("modal", object(json!({"webhook_secret": "other"})))
        .unwrap_err();
    assert!(e.to_string().contains("1 credential(s) encrypted"), "{e}");
    assert!(!key_file.exists());
    assert!(again.get_uncached("modal").unwrap().is_empty());
    let e = again
        .set_webhook_secret("modal", Some(&Secret::new("x")))
        .unwrap_err();
    assert!(e.to_string().contains("encrypted under a key"), "{e}");
    assert!(!key_file.exists());
}

both!(a_credential_key_is_created_only_when_allowed_and_never_over_encrypted_data);

// 7, PostgreSQL: reading needs no more than SELECT (no migration, no schema table).
#[cfg(feature = "postgres")]
#[test]
fn reading_on_postgres_works_with_a_role_that_may_only_read() {
    let f = Fixture::new(Kind::Postgres);
    f.store
        .update("replicate", object(json!({"cost_limit_amount": 4.0})))
        .unwrap();
    let pg = f.db.pg.as_ref().unwrap();
    let role = format!("ro_{}", pg.name);
    let raw = f.raw();
    raw.batch(&format!(
        "CREATE ROLE {role} LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};"
    ));
    let url =
        crate::DatabaseUrl::parse(&pg.url_text().replacen("postgres@", &format!("{role}@"), 1))
            .unwrap();
    let location = crate::StoreLocation::Postgres(url);
    let result = std::panic::catch_unwind(|| {
        let reader = ConfigStore::builder_at(location.clone())
            .read_only()
            .open()
            .unwrap();
        assert_eq!(reader.get("replicate").unwrap()["cost_limit_amount"], 4.0);
        assert_eq!(reader.list().unwrap(), ["replicate"]);
        let trail = AuditTrail::open_read_only(&location, audit_key()).unwrap();
        assert!(trail.verify().unwrap().valid);
        assert_eq!(trail.list(&Default::default()).unwrap().len(), 1);
        // Opened for writing, the same role fails (it may not migrate or write).
        assert!(
            ConfigStore::builder_at(location.clone()).open().is_err()
                || reader.save("x", object(json!({}))).is_err()
        );
    });
    raw.batch(&format!("DROP OWNED BY {role}; DROP ROLE {role};"));
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

// 6. A row that is not text (a BLOB, bytes that are not UTF-8) is an error naming the
// provider when read, can still be replaced and deleted, and is reported, not fatal, by
// the maintenance rewrite. (SQLite only: PostgreSQL's text column holds valid text.)
#[test]
fn rows_that_are_not_text_name_their_provider_and_never_block_repairs() {
    let f = Fixture::new(Kind::Sqlite);
    let raw = f.raw();
    raw.batch(
        "INSERT INTO provider_config VALUES ('not-utf8', CAST(x'7b22ff22' AS TEXT), 'then');
         INSERT INTO provider_config VALUES ('blob', x'7b7d', 'then');
         INSERT INTO provider_config VALUES ('plain', '{\"webhook_secret\": \"PLAIN\"}', 'then');",
    );
    for (provider, problem) in [("not-utf8", "not valid UTF-8"), ("blob", "BLOB")] {
        let e = f.store.get(provider).unwrap_err();
        assert!(
            matches!(&e, StoreError::InvalidStoredConfig { provider: p, problem: m } if p == provider && m.contains(problem)),
            "{e:?}"
        );
        assert!(f.store.update(provider, object(json!({"a": 1}))).is_err());
    }
    assert_eq!(f.store.list().unwrap(), ["blob", "not-utf8", "plain"]);
    // Maintenance reports them and does the rest.
    let creds = CredentialStore::open_at(&f.db.jobs(), cipher(), Some(f.trail.clone())).unwrap();
    let report = creds.encrypt_plaintext().unwrap();
    assert_eq!(report.unreadable_config_rows, ["blob", "not-utf8"]);
    assert_eq!(report.config_secrets_encrypted, 1);
    // Replacing and deleting repair them.
    f.store
        .save("not-utf8", object(json!({"fixed": true})))
        .unwrap();
    assert_eq!(f.store.get("not-utf8").unwrap()["fixed"], true);
    assert!(f.store.delete("blob").unwrap());
    assert_eq!(f.store.list().unwrap(), ["not-utf8", "plain"]);
    assert!(f.trail.verify().unwrap().valid);
}

// 8. What Python's json.dumps writes beyond JSON reads, and an update of another key keeps
// it byte for byte; a well-known key holding it is an error naming the key.
fn values_only_python_writes_are_read_and_kept_byte_for_byte(kind: Kind) {
    let f = Fixture::new(kind);
    let stored = r#"{"cost_limit_amount": NaN, "x": Infinity, "s": "\ud800", "big": 123456789012345678901234567890, "keep": 1}"#;
    f.raw().execute(
        "INSERT INTO provider_config (provider, config, updated_at) VALUES ('replicate', ?1, 'then')",
        super::params![stored],
    );
    let config = f.store.get("replicate").unwrap();
    assert_eq!(
        (config["x"].clone(), config["s"].clone()),
        (json!("Infinity"), json!("\u{fffd}"))
    );
    let e = f.store.cost_limit("replicate").unwrap_err();
    assert!(e.to_string().contains("cost_limit_amount"), "{e}");
    f.store
        .update("replicate", object(json!({"keep": 2})))
        .unwrap();
    let now = f.raw().string(
        "SELECT config FROM provider_config WHERE provider = 'replicate'",
        &[],
    );
    assert_eq!(now, stored.replace(r#""keep": 1"#, r#""keep": 2"#));
}

both!(values_only_python_writes_are_read_and_kept_byte_for_byte);

// 7. An audit database exactly as the original leaves it (its table only) lists and
// verifies read-only, and is not changed.
#[test]
fn the_originals_audit_database_reads_read_only_and_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let conn = super::raw(&path);
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE audit_log (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp TEXT NOT NULL,
            event_type TEXT NOT NULL, actor_id INTEGER, actor_username TEXT, actor_ip TEXT,
            target_type TEXT, target_id TEXT, action TEXT NOT NULL,
            details TEXT NOT NULL DEFAULT '{}', previous_hash TEXT NOT NULL,
            entry_hash TEXT NOT NULL);",
    )
    .unwrap();
    super::audit::plant_original_rows(&Raw::Sqlite(conn), 3, |i| {
        format!("2026-01-0{}T00:00:00+00:00", i + 1)
    });
    let before = std::fs::read(&path).unwrap();
    let location = crate::StoreLocation::Sqlite(path.clone());
    let trail = AuditTrail::open_read_only(&location, audit_key()).unwrap();
    let report = trail.verify().unwrap();
    assert!(report.valid && report.entries_checked == 3, "{report:?}");
    assert_eq!(trail.list(&Default::default()).unwrap().len(), 3);
    assert!(trail.append(&AuditEvent::new("x", "refused")).is_err());
    drop(trail);
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["audit.db"]);
}

// 7. A database file whose first writer was killed before its schema committed (an empty
// file, or one with only an uncommitted log) reads as "nothing stored", not "no such table".
#[test]
fn reading_a_sqlite_file_without_tables_is_uninitialized() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["jobs.db", "audit.db"] {
        let path = dir.path().join(name);
        std::fs::write(&path, b"").unwrap();
        let location = crate::StoreLocation::Sqlite(path.clone());
        let e = if name == "jobs.db" {
            ConfigStore::builder_at(location)
                .read_only()
                .open()
                .unwrap_err()
        } else {
            AuditTrail::open_read_only(&location, audit_key()).unwrap_err()
        };
        assert!(
            matches!(e, StoreError::Uninitialized { .. }),
            "{name}: {e:?}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"", "{name} was changed");
    }
}

// 7, PostgreSQL: reading a database where nothing was ever stored creates nothing.
#[cfg(feature = "postgres")]
#[test]
fn reading_an_empty_postgres_database_creates_no_table() {
    let pg = super::postgres::TestDatabase::create();
    let location = crate::StoreLocation::Postgres(pg.url());
    let e = ConfigStore::builder_at(location.clone())
        .read_only()
        .open()
        .unwrap_err();
    assert!(matches!(e, StoreError::Uninitialized { .. }), "{e:?}");
    let e = AuditTrail::open_read_only(&location, audit_key()).unwrap_err();
    assert!(matches!(e, StoreError::Uninitialized { .. }), "{e:?}");
    let tables = pg.connect().rows(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
        &[],
    );
    assert!(tables.is_empty(), "{tables:?}");
}
