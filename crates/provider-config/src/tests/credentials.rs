//! Credentials: encryption at rest, the original's plaintext rows, migration, rotation.

use serde_json::json;

use super::{Fixture, Kind, Raw, both, cipher, object, params, raw};
use crate::sealing::looks_encrypted;
use crate::{AuditFilter, AuditTrail, CredentialStore, Secret, StoreError};
use credential_crypto::CredentialCipher;

fn store(f: &Fixture, cipher: CredentialCipher) -> CredentialStore {
    CredentialStore::open_at(&f.db.jobs(), cipher, Some(f.trail.clone())).unwrap()
}

/// A plaintext row as the original's `CredentialStore.set` writes it.
fn plant_plaintext(conn: &Raw, user_id: i64, name: &str, value: &str) {
    conn.execute(
        "INSERT INTO provider_credentials
         (user_id, provider, credential_name, credential_value, created_at, is_active)
         VALUES (?1, 'replicate', ?2, ?3, '2025-01-01T00:00:00+00:00', 1)
         ON CONFLICT(user_id, provider, credential_name) DO UPDATE SET
             credential_value = excluded.credential_value, updated_at = ?4, is_active = 1",
        params![user_id, name, value, "2025-01-02T00:00:00+00:00"],
    );
}

fn credentials_are_stored_encrypted_and_never_in_plaintext(kind: Kind) {
    let f = Fixture::new(kind);
    let creds = store(&f, cipher());
    let sentinel = "SENTINEL-credential-51d2";
    let id = creds
        .set(7, "replicate", "api_token", &Secret::new(sentinel))
        .unwrap();
    assert_eq!(
        creds
            .get(7, "replicate", "api_token")
            .unwrap()
            .unwrap()
            .expose(),
        sentinel
    );
    assert!(creds.get(8, "replicate", "api_token").unwrap().is_none());
    // Replacing keeps the row and reactivates it.
    assert!(creds.deactivate(7, "replicate", "api_token").unwrap());
    assert!(creds.get(7, "replicate", "api_token").unwrap().is_none());
    assert_eq!(
        creds
            .set(7, "replicate", "api_token", &Secret::new(sentinel))
            .unwrap(),
        id
    );
    assert!(creds.mark_used(7, "replicate", "api_token").unwrap());
    let listed = creds.list_for_user(7, None).unwrap();
    assert_eq!(listed.len(), 1);
    let info = &listed[0];
    assert!(
        info.encrypted
            && info.is_active
            && info.last_used_at.is_some()
            && info.updated_at.is_some()
    );
    assert!(creds.list_for_user(7, Some("modal")).unwrap().is_empty());
    // Nothing of the value in any file (the write-ahead log included) or row.
    assert!(f.db.holding(sentinel).is_empty());
    let stored = f
        .raw()
        .string("SELECT credential_value FROM provider_credentials", &[]);
    assert!(stored.starts_with("Z0FBQUFB"));
    assert!(!format!("{creds:?} {listed:?}").contains(sentinel));
    // Changes are audited by name.
    assert!(creds.delete(7, "replicate", "api_token").unwrap());
    assert!(!creds.delete(7, "replicate", "api_token").unwrap());
    let events: Vec<String> = f
        .trail
        .list(&AuditFilter::default())
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        events,
        [
            "credential.deleted",
            "credential.created",
            "credential.deleted",
            "credential.created"
        ]
    );
    assert!(f.trail.verify().unwrap().valid);
}

#[test]
fn with_the_originals_users_table_the_foreign_key_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let conn = raw(&path);
    conn.execute_batch(
        "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT UNIQUE NOT NULL,
             username TEXT UNIQUE NOT NULL, created_at TEXT NOT NULL);
         INSERT INTO users (email, username, created_at) VALUES ('a@x', 'a', 'now');",
    )
    .unwrap();
    let creds = CredentialStore::open_path(&path, cipher(), None).unwrap();
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'provider_credentials'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        sql.contains("REFERENCES users(id) ON DELETE CASCADE"),
        "{sql}"
    );
    creds
        .set(1, "replicate", "api_token", &Secret::new("v"))
        .unwrap();
    let e = creds
        .set(99, "replicate", "api_token", &Secret::new("v"))
        .unwrap_err();
    assert!(matches!(e, StoreError::UnknownUser { user_id: 99 }), "{e}");
    // The original's cascade.
    conn.execute_batch("PRAGMA foreign_keys = ON; DELETE FROM users WHERE id = 1;")
        .unwrap();
    assert!(creds.list_for_user(1, None).unwrap().is_empty());
}

fn migration_encrypts_every_plaintext_row_and_leaves_no_copy_in_the_files(kind: Kind) {
    let f = Fixture::new(kind);
    let creds = store(&f, cipher());
    let (live, deleted, webhook) = (
        "SENTINEL-live-8c1",
        "SENTINEL-deleted-3b7",
        "SENTINEL-hook-e02",
    );
    // Another writer (the original) with automatic checkpoints off, so its pages stay in
    // the write-ahead log; one row deleted again, so its bytes linger in a free cell.
    let original = f.raw();
    if kind == Kind::Sqlite {
        original.batch("PRAGMA wal_autocheckpoint = 0");
    }
    plant_plaintext(&original, 1, "api_token", live);
    plant_plaintext(&original, 2, "other", deleted);
    original.execute("DELETE FROM provider_credentials WHERE user_id = 2", &[]);
    original.execute(
        "INSERT INTO provider_config (provider, config, updated_at) VALUES ('replicate', ?1, 'x')",
        params![json!({"webhook_secret": webhook, "webhook_url": "https://h.invalid"}).to_string()],
    );
    creds
        .set(3, "modal", "api_token", &Secret::new("already-encrypted"))
        .unwrap();
    let planted = if kind == Kind::Sqlite {
        vec![live, deleted, webhook]
    } else {
        // PostgreSQL is searched in its live rows.
        vec![live, webhook]
    };
    for sentinel in &planted {
        assert!(!f.db.holding(sentinel).is_empty(), "{sentinel} planted");
    }
    // The original's plaintext reads as plaintext (listed as not encrypted).
    assert_eq!(
        creds
            .get(1, "replicate", "api_token")
            .unwrap()
            .unwrap()
            .expose(),
        live
    );
    assert!(!creds.list_for_user(1, None).unwrap()[0].encrypted);

    let report = creds.encrypt_plaintext().unwrap();
    assert_eq!(
        (
            report.credentials_encrypted,
            report.credentials_unchanged,
            report.config_secrets_encrypted
        ),
        (1, 1, 1)
    );
    assert!(report.scrubbed);
    for sentinel in [live, deleted, webhook] {
        assert_eq!(f.db.holding(sentinel), Vec::<String>::new(), "{sentinel}");
    }
    drop(original);
    assert_eq!(
        creds
            .get(1, "replicate", "api_token")
            .unwrap()
            .unwrap()
            .expose(),
        live
    );
    assert_eq!(
        creds
            .get(3, "modal", "api_token")
            .unwrap()
            .unwrap()
            .expose(),
        "already-encrypted"
    );
    assert!(creds.list_for_user(1, None).unwrap()[0].encrypted);
    f.store
        .caches()
        .invalidate(&crate::Invalidation::Provider("replicate".into()));
    assert_eq!(
        f.store
            .webhook_config("replicate")
            .unwrap()
            .secret
            .unwrap()
            .expose(),
        webhook
    );
    // A second run finds nothing to do.
    let again = creds.encrypt_plaintext().unwrap();
    assert_eq!(
        (again.credentials_encrypted, again.config_secrets_encrypted),
        (0, 0)
    );
    let last = &f.trail.list(&AuditFilter::default()).unwrap()[0];
    assert_eq!(last.event_type, "config.changed");
    assert!(f.trail.verify().unwrap().valid);
}

fn rotation_moves_every_row_to_the_current_key(kind: Kind) {
    let f = Fixture::new(kind);
    let old = CredentialCipher::from_passphrase("old passphrase").unwrap();
    let old_store = store(&f, old.clone());
    for user in 1..=5 {
        old_store
            .set(
                user,
                "replicate",
                "api_token",
                &Secret::new(format!("token-{user}")),
            )
            .unwrap();
    }
    old_store
        .set(6, "replicate", "api_token", &Secret::new("token-6"))
        .unwrap();
    f.store
        .update("replicate", object(json!({"webhook_secret": "hook"})))
        .unwrap();
    let old_ciphertexts = f
        .raw()
        .strings("SELECT credential_value FROM provider_credentials", &[]);
    // The store's webhook secret was encrypted with the fixture's key: it becomes the old
    // key too.
    let rotating = CredentialCipher::from_passphrase("new passphrase")
        .unwrap()
        .with_previous_passphrase("old passphrase")
        .unwrap()
        .with_previous_passphrase("provider-config test key")
        .unwrap();
    let creds = store(&f, rotating.clone());
    let report = creds.rotate_to_current_key().unwrap();
    assert_eq!(
        (report.credentials_rotated, report.config_secrets_rotated),
        (6, 1)
    );
    assert!(report.scrubbed);
    for value in f
        .raw()
        .strings("SELECT credential_value FROM provider_credentials", &[])
    {
        assert!(!rotating.needs_rotation(&value).unwrap());
        assert!(old.decrypt(&value).is_err());
    }
    // The old ciphertexts are gone from the files (SQLite), not only from the rows.
    for ciphertext in &old_ciphertexts {
        assert!(f.db.holding(&ciphertext[40..100]).is_empty());
    }
    let new_only = CredentialCipher::from_passphrase("new passphrase").unwrap();
    let current = store(&f, new_only);
    assert_eq!(
        current
            .get(4, "replicate", "api_token")
            .unwrap()
            .unwrap()
            .expose(),
        "token-4"
    );
}

fn a_rotation_that_fails_midway_leaves_every_row_as_it_was(kind: Kind) {
    let f = Fixture::new(kind);
    let old = CredentialCipher::from_passphrase("old passphrase").unwrap();
    let old_store = store(&f, old);
    for user in 1..=10 {
        old_store
            .set(
                user,
                "replicate",
                "api_token",
                &Secret::new(format!("token-{user}")),
            )
            .unwrap();
    }
    // Row 5 holds a token under a key nobody has: rotation fails there, after rows 1..=4
    // were re-encrypted inside the transaction.
    let stranger = CredentialCipher::from_passphrase("lost key").unwrap();
    f.raw().execute(
        "UPDATE provider_credentials SET credential_value = ?1 WHERE user_id = 5",
        params![stranger.encrypt("token-5")],
    );
    let before = f.raw().id_strings(
        "SELECT id, credential_value FROM provider_credentials ORDER BY id",
        &[],
    );
    let rotating = CredentialCipher::from_passphrase("new passphrase")
        .unwrap()
        .with_previous_passphrase("old passphrase")
        .unwrap();
    let creds = store(&f, rotating);
    let e = creds.rotate_to_current_key().unwrap_err();
    assert!(
        e.is_crypto() && e.to_string().contains("credential row 5"),
        "{e}"
    );
    let after = f.raw().id_strings(
        "SELECT id, credential_value FROM provider_credentials ORDER BY id",
        &[],
    );
    assert_eq!(before, after, "the transaction was rolled back");
    for user in (1..=10).filter(|u| *u != 5) {
        assert_eq!(
            creds
                .get(user, "replicate", "api_token")
                .unwrap()
                .unwrap()
                .expose(),
            format!("token-{user}")
        );
    }
    assert!(looks_encrypted(&after[4].1));
    // No audit row claims a rotation that did not happen.
    let events: Vec<String> = f
        .trail
        .list(&AuditFilter::default())
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert!(!events.contains(&"config.changed".to_owned()));
    let _: Option<AuditTrail> = None;
}

fn the_async_api_runs_on_the_blocking_pool(kind: Kind) {
    let f = Fixture::new(kind);
    let creds = store(&f, cipher());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        creds
            .set_async(1, "replicate", "api_token", Secret::new("async-token"))
            .await
            .unwrap();
        let got = creds.get_async(1, "replicate", "api_token").await.unwrap();
        assert_eq!(got.unwrap().expose(), "async-token");
        assert!(
            creds
                .mark_used_async(1, "replicate", "api_token")
                .await
                .unwrap()
        );
        assert_eq!(creds.list_for_user_async(1, None).await.unwrap().len(), 1);
        assert_eq!(
            creds
                .encrypt_plaintext_async()
                .await
                .unwrap()
                .credentials_unchanged,
            1
        );
        assert_eq!(
            creds
                .rotate_to_current_key_async()
                .await
                .unwrap()
                .credentials_rotated,
            0
        );
        assert!(
            creds
                .deactivate_async(1, "replicate", "api_token")
                .await
                .unwrap()
        );
        assert!(
            creds
                .delete_async(1, "replicate", "api_token")
                .await
                .unwrap()
        );
    });
}

both!(
    credentials_are_stored_encrypted_and_never_in_plaintext,
    migration_encrypts_every_plaintext_row_and_leaves_no_copy_in_the_files,
    rotation_moves_every_row_to_the_current_key,
    a_rotation_that_fails_midway_leaves_every_row_as_it_was,
    the_async_api_runs_on_the_blocking_pool,
);
