//! The audit trail: appending, listing, verifying (and what verification catches), cleanup,
//! keys.

use serde_json::json;

use super::{Fixture, Kind, Raw, TestDb, audit_key, both, object, params};
use crate::audit::entry_hash;
use crate::{
    Actor, AuditEvent, AuditFilter, AuditKey, AuditKeyOrigin, AuditTrail, LinkError, StoreError,
    StoreSettings, Tampering, Timestamp,
};

/// A trail with `n` rows: written here (`old_format == false`) or planted as the original
/// writes them (its formula, no row MAC), stamped `stamp(i)`.
fn chain(
    kind: Kind,
    n: usize,
    old_format: bool,
    stamp: impl Fn(usize) -> String,
) -> (TestDb, AuditTrail) {
    let db = TestDb::new(kind);
    let trail = AuditTrail::open_at(&db.audit(), audit_key()).unwrap();
    if old_format {
        plant_original_rows(&db.raw_audit(), n, stamp);
    } else {
        for i in 0..n {
            trail
                .append(
                    &AuditEvent::new("provider.configured", format!("change {i}"))
                        .actor(Actor {
                            id: Some(i as i64),
                            username: Some(format!("user{i}")),
                            ip: Some("127.0.0.1".into()),
                        })
                        .target("provider", "replicate")
                        .detail("changed_keys", vec![format!("k{i}")]),
                )
                .unwrap();
        }
    }
    (db, trail)
}

/// Rows as the original's `AuditStore.log` writes them (its SQL and HMAC formula).
pub(super) fn plant_original_rows(conn: &Raw, n: usize, stamp: impl Fn(usize) -> String) {
    let key = audit_key().chain_key();
    let mut previous = conn
        .strings(
            "SELECT entry_hash FROM audit_log ORDER BY id DESC LIMIT 1",
            &[],
        )
        .pop()
        .unwrap_or_else(|| "genesis".to_owned());
    for i in 0..n {
        let timestamp = stamp(i);
        let actor_id = (i % 2 == 0).then_some(i as i64);
        let actor_text = actor_id.map_or("None".to_owned(), |a| a.to_string());
        let details = format!("{{\"n\": {i}, \"note\": \"\\u00e9t\\u00e9\"}}");
        let action = format!("original change {i}");
        let hash = entry_hash(
            &key,
            &timestamp,
            "auth.login.success",
            &actor_text,
            &action,
            &details,
            &previous,
        );
        conn.execute("INSERT INTO audit_log (timestamp, event_type, actor_id, actor_username, actor_ip,
             target_type, target_id, action, details, previous_hash, entry_hash)
             VALUES (?1, 'auth.login.success', ?2, 'someone', '10.0.0.1', 'user', ?3, ?4, ?5, ?6, ?7)", params![timestamp, actor_id, i.to_string(), action, details, previous, hash.clone()]);
        previous = hash;
    }
}

fn now_stamp(_: usize) -> String {
    Timestamp::now().to_string()
}

fn first_problem(trail: &AuditTrail) -> (i64, LinkError, Tampering, String) {
    let report = trail.verify().unwrap();
    assert!(!report.valid, "tampering not detected: {report:?}");
    let p = report.first_problem().unwrap().clone();
    (p.id, p.error, p.tampering, p.message)
}

fn configuration_changes_are_recorded_with_key_names_and_never_values(kind: Kind) {
    let f = Fixture::new(kind);
    let store = f.store.acting_as(Actor {
        id: Some(42),
        username: Some("alice".into()),
        ip: Some("192.0.2.7".into()),
    });
    let sentinel = "SENTINEL-audit-value-77";
    store
        .save(
            "replicate",
            object(json!({"webhook_url": sentinel, "cost_limit_amount": 3})),
        )
        .unwrap();
    store
        .update("replicate", object(json!({"cost_limit_amount": 4})))
        .unwrap();
    store.delete("replicate").unwrap();
    let entries = f.trail.list(&AuditFilter::default()).unwrap();
    assert_eq!(entries.len(), 3);
    // Newest first.
    assert_eq!(entries[0].details["operation"], "delete");
    assert_eq!(
        entries[1].details["changed_keys"],
        json!(["cost_limit_amount"])
    );
    assert_eq!(
        entries[2].details["changed_keys"],
        json!(["cost_limit_amount", "webhook_url"])
    );
    for entry in &entries {
        assert_eq!(entry.event_type, "provider.configured");
        assert_eq!(entry.actor_id, Some(42));
        assert_eq!(entry.actor_username.as_deref(), Some("alice"));
        assert_eq!(entry.actor_ip.as_deref(), Some("192.0.2.7"));
        assert_eq!(
            (entry.target_type.as_deref(), entry.target_id.as_deref()),
            (Some("provider"), Some("replicate"))
        );
        assert!(entry.row_mac);
        assert!(
            entry.details.get("_row_mac").is_none(),
            "the marker is internal"
        );
    }
    assert!(f.db.audit_holding(sentinel).is_empty());
    let report = f.trail.verify().unwrap();
    assert!(report.valid && report.entries_checked == 3 && report.row_macs_checked == 3);
    assert_eq!((report.first_id, report.last_id), (Some(1), Some(3)));
}

fn list_filters_by_event_actor_target_time_and_pages(kind: Kind) {
    let (_dir, trail) = chain(kind, 10, false, now_stamp);
    trail
        .append(&AuditEvent::new("credential.created", "stored").target("credential", "9"))
        .unwrap();
    let all = trail
        .list(&AuditFilter {
            limit: 1000,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.len(), 11);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    let by_type = trail
        .list(&AuditFilter {
            event_types: vec!["credential.created".into()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_type.len(), 1);
    let by_actor = trail
        .list(&AuditFilter {
            actor_id: Some(3),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_actor.len(), 1);
    assert_eq!(by_actor[0].action, "change 3");
    let by_name = trail
        .list(&AuditFilter {
            actor_username: Some("user4".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_name[0].action, "change 4");
    let by_target = trail
        .list(&AuditFilter {
            target_type: Some("credential".into()),
            target_id: Some("9".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_target.len(), 1);
    let page = trail
        .list(&AuditFilter {
            limit: 3,
            offset: 2,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), [9, 8, 7]);
    let future = Timestamp::now().minus_days(0);
    let later = Timestamp::from_unix_micros(future.unix_micros() + 60_000_000);
    assert!(
        trail
            .list(&AuditFilter {
                since: Some(later),
                ..Default::default()
            })
            .unwrap()
            .is_empty()
    );
    let past = Timestamp::now().minus_days(1);
    assert_eq!(
        trail
            .list(&AuditFilter {
                since: Some(past),
                limit: 100,
                ..Default::default()
            })
            .unwrap()
            .len(),
        11
    );
}

fn verify_names_the_first_modified_row_new_format(kind: Kind) {
    let (dir, trail) = chain(kind, 6, false, now_stamp);
    let conn = dir.raw_audit();
    // A field the original's hash covers.
    conn.execute("UPDATE audit_log SET action = 'innocent' WHERE id = 4", &[]);
    let (id, error, tampering, message) = first_problem(&trail);
    assert_eq!(
        (id, error, tampering),
        (4, LinkError::HashMismatch, Tampering::Modified)
    );
    assert!(message.contains("row 4"), "{message}");
    conn.execute("UPDATE audit_log SET action = 'change 3' WHERE id = 4", &[]);
    assert!(trail.verify().unwrap().valid);
    // Fields the original's hash leaves out are covered by the row MAC.
    for column in ["actor_username", "actor_ip", "target_type", "target_id"] {
        conn.execute(
            &format!("UPDATE audit_log SET {column} = 'forged' WHERE id = 2"),
            &[],
        );
        let (id, error, tampering, _) = first_problem(&trail);
        assert_eq!(
            (id, error, tampering),
            (2, LinkError::RowMacMismatch, Tampering::Modified),
            "{column}"
        );
        let restore = match column {
            "actor_username" => "user1",
            "actor_ip" => "127.0.0.1",
            "target_type" => "provider",
            _ => "replicate",
        };
        conn.execute(
            &format!("UPDATE audit_log SET {column} = ?1 WHERE id = 2"),
            params![restore],
        );
    }
    assert!(trail.verify().unwrap().valid);
    // Removing the row MAC is detected: the row's hashed details say it has one.
    conn.execute("DELETE FROM audit_row_mac WHERE entry_id = 5", &[]);
    let (id, error, ..) = first_problem(&trail);
    assert_eq!((id, error), (5, LinkError::RowMacMissing));
}

fn verify_names_deleted_inserted_and_reordered_rows_new_format(kind: Kind) {
    // Deleted.
    let (dir, trail) = chain(kind, 6, false, now_stamp);
    dir.raw_audit()
        .execute("DELETE FROM audit_log WHERE id = 3", &[]);
    let (id, error, tampering, message) = first_problem(&trail);
    assert_eq!(
        (id, error, tampering),
        (4, LinkError::LinkMismatch, Tampering::Deleted)
    );
    assert!(message.contains("ids 3..=3 are missing"), "{message}");
    // The first rows deleted, without a checkpoint.
    let (dir, trail) = chain(kind, 4, false, now_stamp);
    dir.raw_audit()
        .execute("DELETE FROM audit_log WHERE id <= 2", &[]);
    assert_eq!(first_problem(&trail).2, Tampering::Deleted);
    // Inserted: a copy of an earlier row (valid hash, wrong place).
    let (dir, trail) = chain(kind, 5, false, now_stamp);
    dir.raw_audit()
        .execute("INSERT INTO audit_log (timestamp, event_type, actor_id, actor_username, actor_ip,
             target_type, target_id, action, details, previous_hash, entry_hash)
             SELECT timestamp, event_type, actor_id, actor_username, actor_ip, target_type,
                    target_id, action, details, previous_hash, entry_hash FROM audit_log WHERE id = 2", &[]);
    let (id, error, tampering, message) = first_problem(&trail);
    assert_eq!(
        (id, error, tampering),
        (6, LinkError::LinkMismatch, Tampering::Inserted)
    );
    assert!(message.contains("copy of row 2"), "{message}");
    // Inserted: a forged row without the key.
    let (dir, trail) = chain(kind, 3, false, now_stamp);
    let conn = dir.raw_audit();
    let last = conn.string("SELECT entry_hash FROM audit_log WHERE id = 3", &[]);
    conn.execute(
        "INSERT INTO audit_log (timestamp, event_type, action, details, previous_hash, entry_hash)
         VALUES ('2030-01-01T00:00:00+00:00', 'user.created', 'forged', '{}', ?1, ?2)",
        params![last, "0".repeat(64)],
    );
    let (id, error, tampering, _) = first_problem(&trail);
    assert_eq!(
        (id, error, tampering),
        (4, LinkError::HashMismatch, Tampering::Modified)
    );
    // Reordered: the contents of rows 2 and 4 swapped (ids kept).
    let (dir, trail) = chain(kind, 5, false, now_stamp);
    swap_rows(&dir.raw_audit(), 2, 4);
    let (id, error, tampering, message) = first_problem(&trail);
    assert_eq!(
        (id, error, tampering),
        (2, LinkError::LinkMismatch, Tampering::Reordered)
    );
    assert!(message.contains("row 2"), "{message}");
}

fn swap_rows(conn: &Raw, a: i64, b: i64) {
    conn.batch(&format!(
        "UPDATE audit_log SET id = -1 WHERE id = {a};
         UPDATE audit_log SET id = {a} WHERE id = {b};
         UPDATE audit_log SET id = {b} WHERE id = -1;
         UPDATE audit_row_mac SET entry_id = -1 WHERE entry_id = {a};
         UPDATE audit_row_mac SET entry_id = {a} WHERE entry_id = {b};
         UPDATE audit_row_mac SET entry_id = {b} WHERE entry_id = -1;"
    ));
}

fn verify_catches_tampering_with_rows_in_the_originals_format(kind: Kind) {
    let (dir, trail) = chain(kind, 6, true, now_stamp);
    let report = trail.verify().unwrap();
    assert!(report.valid, "{report:?}");
    assert_eq!((report.entries_checked, report.row_macs_checked), (6, 0));
    let conn = dir.raw_audit();
    conn.execute("UPDATE audit_log SET details = '{}' WHERE id = 3", &[]);
    let (id, error, tampering, _) = first_problem(&trail);
    assert_eq!(
        (id, error, tampering),
        (3, LinkError::HashMismatch, Tampering::Modified)
    );
    // The original's format does not cover the actor's name: a limit of that format, which
    // rows written here do not have.
    let (dir, trail) = chain(kind, 3, true, now_stamp);
    dir.raw_audit()
        .execute("UPDATE audit_log SET actor_username = 'x'", &[]);
    assert!(trail.verify().unwrap().valid);
    let (dir, trail) = chain(kind, 6, true, now_stamp);
    dir.raw_audit()
        .execute("DELETE FROM audit_log WHERE id = 4", &[]);
    assert_eq!(first_problem(&trail).2, Tampering::Deleted);
    let (dir, trail) = chain(kind, 6, true, now_stamp);
    swap_rows(&dir.raw_audit(), 3, 5);
    let (id, error, tampering, _) = first_problem(&trail);
    assert_eq!(
        (id, error, tampering),
        (3, LinkError::LinkMismatch, Tampering::Reordered)
    );
    // Rows appended here continue the original's chain.
    let (dir, trail) = chain(kind, 3, true, now_stamp);
    trail
        .append(&AuditEvent::new("provider.configured", "new"))
        .unwrap();
    plant_original_rows(&dir.raw_audit(), 2, now_stamp);
    let report = trail.verify().unwrap();
    assert!(
        report.valid && report.entries_checked == 6 && report.row_macs_checked == 1,
        "{report:?}"
    );
}

fn cleanup_keeps_the_rest_verifiable_with_a_signed_checkpoint(kind: Kind) {
    // Rows 1..=4 from 2020, then two new rows.
    let (dir, trail) = chain(kind, 4, true, |i| {
        format!("2020-01-0{}T00:00:00+00:00", i + 1)
    });
    trail
        .append(&AuditEvent::new("provider.configured", "recent 1"))
        .unwrap();
    trail
        .append(&AuditEvent::new("provider.configured", "recent 2"))
        .unwrap();
    let report = trail.cleanup(30).unwrap();
    assert_eq!(report.removed, 4);
    let checkpoint = report.checkpoint_id.unwrap();
    assert_eq!(checkpoint, 7);
    let verified = trail.verify().unwrap();
    assert!(verified.valid, "{verified:?}");
    assert_eq!(
        (
            verified.first_id,
            verified.checkpoint_id,
            verified.entries_checked
        ),
        (Some(5), Some(7), 3)
    );
    // Nothing more is old: a second cleanup changes nothing.
    assert_eq!(trail.cleanup(30).unwrap().removed, 0);
    // Deleting the first kept row is still detected.
    let conn = dir.raw_audit();
    conn.execute("DELETE FROM audit_log WHERE id = 5", &[]);
    let (id, _, tampering, _) = first_problem(&trail);
    assert_eq!((id, tampering), (6, Tampering::Deleted));
    // A broken chain is never cleaned up: that would delete the evidence.
    let e = trail.cleanup(0).unwrap_err();
    assert!(matches!(e, StoreError::BrokenChain { id: 6, .. }), "{e}");
    // A forged checkpoint (no key) vouches for nothing.
    let (dir, trail) = chain(kind, 3, false, now_stamp);
    let conn = dir.raw_audit();
    let anchor = conn.string("SELECT previous_hash FROM audit_log WHERE id = 3", &[]);
    conn.execute("DELETE FROM audit_log WHERE id < 3", &[]);
    conn.execute(
        "INSERT INTO audit_log (timestamp, event_type, action, details, previous_hash, entry_hash)
         VALUES ('x', 'audit.checkpoint', 'forged', ?1, 'p', 'h')",
        params![json!({"first_kept_id": 3, "anchor_hash": anchor, "_row_mac": 1}).to_string()],
    );
    let report = trail.verify().unwrap();
    assert!(!report.valid && report.checkpoint_id.is_none());
    assert_eq!(report.first_problem().unwrap().id, 3);
}

fn cleanup_of_every_row_leaves_a_checkpoint_that_verifies(kind: Kind) {
    let (_dir, trail) = chain(kind, 3, true, |i| {
        format!("2019-05-0{}T10:00:00.5+00:00", i + 1)
    });
    let report = trail.cleanup_before(Timestamp::now()).unwrap();
    assert_eq!(report.removed, 3);
    let verified = trail.verify().unwrap();
    assert!(verified.valid, "{verified:?}");
    assert_eq!(
        (verified.entries_checked, verified.checkpoint_id),
        (1, report.checkpoint_id)
    );
    trail
        .append(&AuditEvent::new("provider.configured", "after"))
        .unwrap();
    assert!(trail.verify().unwrap().valid);
    let entries = trail.list(&AuditFilter::default()).unwrap();
    assert_eq!(entries[1].event_type, "audit.checkpoint");
    assert_eq!(entries[1].details["removed"], 3);
}

fn concurrent_writers_never_fork_the_chain(kind: Kind) {
    let db = TestDb::new(kind);
    // Separate trails: separate connections, as separate processes would have.
    let trails: Vec<_> = (0..8)
        .map(|_| AuditTrail::open_at(&db.audit(), audit_key()).unwrap())
        .collect();
    std::thread::scope(|s| {
        for (t, trail) in trails.iter().enumerate() {
            s.spawn(move || {
                for i in 0..20 {
                    trail
                        .append(&AuditEvent::new("provider.configured", format!("{t}/{i}")))
                        .unwrap();
                }
            });
        }
    });
    let report = trails[0].verify().unwrap();
    assert!(report.valid, "{report:?}");
    assert_eq!(report.entries_checked, 160);
}

#[test]
fn the_audit_key_is_found_as_the_original_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings::in_dir(dir.path());
    let generated = AuditKey::load(&settings).unwrap();
    assert!(matches!(generated.origin(), AuditKeyOrigin::Generated(_)));
    let bytes = std::fs::read(&settings.audit_key_file).unwrap();
    assert_eq!(bytes.len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&settings.audit_key_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = AuditKey::load(&settings).unwrap();
    assert!(matches!(again.origin(), AuditKeyOrigin::File(_)));
    // Same key: a chain signed with the first verifies with the second.
    let path = dir.path().join("audit.db");
    AuditTrail::open_path(&path, generated)
        .unwrap()
        .append(&AuditEvent::new("a", "b"))
        .unwrap();
    assert!(
        AuditTrail::open_path(&path, again)
            .unwrap()
            .verify()
            .unwrap()
            .valid
    );
    // The variable wins; its bytes are the key; Debug shows no key.
    let lookup =
        |name: &str| (name == "SIMPLETUNER_AUDIT_KEY").then(|| "SENTINEL-audit-key".into());
    let settings = StoreSettings::from_lookup(&crate::AppName::default(), &lookup).unwrap();
    let from_env = AuditKey::load(&settings).unwrap();
    assert_eq!(
        from_env.origin(),
        &AuditKeyOrigin::Environment("SIMPLETUNER_AUDIT_KEY".into())
    );
    assert!(!format!("{from_env:?} {settings:?}").contains("SENTINEL"));
    // A different key does not verify the chain.
    let other =
        AuditTrail::open_path(&path, AuditKey::from_bytes(b"other".to_vec()).unwrap()).unwrap();
    assert!(!other.verify().unwrap().valid);
    // An empty key file is refused and left alone.
    let empty = dir.path().join("empty.key");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        AuditKey::load_file(&empty),
        Err(StoreError::AuditKey { .. })
    ));
    assert!(AuditKey::from_bytes(Vec::new()).is_err());
}

fn the_async_api_appends_and_verifies(kind: Kind) {
    let (_dir, trail) = chain(kind, 2, false, now_stamp);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        trail
            .append_async(AuditEvent::new("provider.configured", "async"))
            .await
            .unwrap();
        assert_eq!(
            trail
                .list_async(AuditFilter::default())
                .await
                .unwrap()
                .len(),
            3
        );
        assert!(trail.verify_async().await.unwrap().valid);
        assert_eq!(trail.cleanup_async(1).await.unwrap().removed, 0);
    });
}

#[test]
fn a_lost_key_is_never_silently_replaced_for_an_existing_chain() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings::in_dir(dir.path());
    let trail = AuditTrail::open(&settings).unwrap();
    trail.append(&AuditEvent::new("a", "b")).unwrap();
    drop(trail);
    std::fs::remove_file(&settings.audit_key_file).unwrap();
    let e = AuditTrail::open(&settings).unwrap_err();
    assert!(matches!(e, StoreError::AuditKey { .. }), "{e}");
    assert!(e.to_string().contains("1 rows"), "{e}");
    assert!(!settings.audit_key_file.exists());
    assert!(AuditKey::load_existing(&settings).unwrap().is_none());
}

#[cfg(unix)]
#[test]
fn a_fifo_at_the_key_path_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.key");
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
    let e = AuditKey::load_file(&path).unwrap_err();
    assert!(matches!(e, StoreError::Io { .. }), "{e}");
}

both!(
    configuration_changes_are_recorded_with_key_names_and_never_values,
    list_filters_by_event_actor_target_time_and_pages,
    verify_names_the_first_modified_row_new_format,
    verify_names_deleted_inserted_and_reordered_rows_new_format,
    verify_catches_tampering_with_rows_in_the_originals_format,
    cleanup_keeps_the_rest_verifiable_with_a_signed_checkpoint,
    cleanup_of_every_row_leaves_a_checkpoint_that_verifies,
    concurrent_writers_never_fork_the_chain,
    the_async_api_appends_and_verifies,
);
