//! The audit outbox (SQLite): a change whose audit row a stopped process never committed
//! gets its row from the outbox, once, at the next write or the next opening of a store.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::{Fixture, Kind, TestDb, audit_key, cipher, object};
use crate::rows::OutboxRow;
use crate::sqlite::companion_paths;
use crate::{Actor, AuditEvent, AuditFilter, AuditKey, AuditTrail, ConfigStore, Timestamp};

fn entries(trail: &AuditTrail) -> Vec<crate::AuditEntry> {
    let mut all = trail.list(&AuditFilter::default()).unwrap();
    all.reverse();
    all
}

/// Copies a closed database (and any companion file) to `to`-prefixed names.
fn copy_db(from: &Path, to: &Path) {
    fs::copy(from, to).unwrap();
    for (a, b) in companion_paths(from).iter().zip(companion_paths(to)) {
        let _ = fs::remove_file(&b);
        if a.exists() {
            fs::copy(a, &b).unwrap();
        }
    }
}

fn open_store(f_jobs: &crate::StoreLocation, trail: &AuditTrail) -> ConfigStore {
    ConfigStore::builder_at(f_jobs.clone())
        .audit(trail.clone())
        .cipher(cipher())
        .open()
        .unwrap()
}

/// Two changes of `replicate` (`{first_key: 1}`, then `{second_key: 2}`) on a fresh SQLite
/// store, and the second's audit row lost as a SIGKILL between the commit of jobs.db and
/// that of audit.db loses it: audit.db is put back as it was before the second change. The
/// database, that copy of audit.db (to lose a later commit again), and the lost row's time.
fn second_change_unrecorded(first_key: &str, second_key: &str) -> (TestDb, PathBuf, String) {
    let Fixture {
        store, trail, db, ..
    } = Fixture::new(Kind::Sqlite);
    store
        .update("replicate", object(json!({ first_key: 1 })))
        .unwrap();
    drop((store, trail));
    let one_row = db.dir.path().join("audit-1.db");
    copy_db(&db.audit_db(), &one_row);
    let trail = AuditTrail::open_at(&db.audit(), audit_key()).unwrap();
    open_store(&db.jobs(), &trail)
        .update("replicate", object(json!({ second_key: 2 })))
        .unwrap();
    let stamped = entries(&trail)[1].timestamp.clone();
    drop(trail);
    copy_db(&one_row, &db.audit_db());
    (db, one_row, stamped)
}

#[test]
fn a_change_whose_audit_commit_was_lost_gets_its_row_when_a_store_opens() {
    let (db, _, stamped) = second_change_unrecorded("first", "second");

    let trail = AuditTrail::open_at(&db.audit(), audit_key()).unwrap();
    assert_eq!(entries(&trail).len(), 1);
    assert!(trail.verify().unwrap().valid);
    assert_eq!(trail.unrecorded_changes(&db.jobs()).unwrap(), 1);

    let store = open_store(&db.jobs(), &trail);
    let all = entries(&trail);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1].target_id.as_deref(), Some("replicate"));
    assert_eq!(all[1].details["changed_keys"], json!(["second"]));
    assert_eq!(all[1].details["recovered"], json!(true));
    assert_eq!(all[1].timestamp, stamped, "stamped with the change's time");
    assert!(all[0].details.get("recovered").is_none());
    assert_eq!(trail.unrecorded_changes(&db.jobs()).unwrap(), 0);
    let report = trail.verify().unwrap();
    assert!(report.valid, "{report:?}");
    assert_eq!(report.row_macs_checked, 2);

    // Appended once: neither the next change nor another opening appends it again.
    store
        .update("replicate", object(json!({"third": 3})))
        .unwrap();
    drop(store);
    let _again = open_store(&db.jobs(), &trail);
    let all = entries(&trail);
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all[2].details["changed_keys"], json!(["third"]));
    assert!(all[2].details.get("recovered").is_none());
    assert!(trail.verify().unwrap().valid);
}

/// The outbox row another process left: a change of `modal` by user 7, the row after the
/// newest of `trail`, signed by `signer`.
fn lost_row(trail: &AuditTrail, signer: &AuditTrail) -> OutboxRow {
    let newest = entries(trail).last().map(|e| (e.id, e.entry_hash.clone()));
    let (id, previous_hash) = newest.unwrap_or((0, "genesis".into()));
    let mut row = OutboxRow {
        entry_id: id + 1,
        entry_hash: "never-committed".into(),
        previous_hash,
        timestamp: "2026-11-25T10:00:00.000001".into(),
        event: AuditEvent::new(
            "provider.configured",
            "updated the configuration of provider modal (keys: k)",
        )
        .actor(Actor {
            id: Some(7),
            username: Some("other".into()),
            ip: None,
        })
        .target("provider", "modal")
        .detail("operation", "update")
        .detail("changed_keys", vec!["k"]),
        mac: String::new(),
    };
    row.mac = signer.outbox_mac(&row);
    row
}

/// Writes `row` into the outbox as another process would (with the store's own statement).
fn plant(f: &Fixture, row: &OutboxRow) {
    let conn = super::raw(&f.jobs_db());
    if crate::sqlite::audit_outbox::add(&conn, row).is_err() {
        panic!("planting outbox row {}", row.entry_id);
    }
}

#[test]
fn the_next_write_appends_a_row_another_process_lost() {
    let f = Fixture::new(Kind::Sqlite);
    f.store
        .update("replicate", object(json!({"a": 1})))
        .unwrap();
    // What another process, killed between its two commits, leaves in jobs.db: its change's
    // row in the outbox (id 2, never committed to audit.db), signed with the audit key.
    let raw = f.raw();
    raw.execute("DELETE FROM audit_outbox", &[]);
    plant(&f, &lost_row(&f.trail, &f.trail));
    f.store
        .update("replicate", object(json!({"b": 2})))
        .unwrap();
    let all = entries(&f.trail);
    assert_eq!(all.len(), 3, "{all:?}");
    let recovered = &all[1];
    assert_eq!(recovered.id, 2);
    assert_eq!(recovered.timestamp, "2026-11-25T10:00:00.000001");
    assert_eq!(recovered.actor_id, Some(7));
    assert_eq!(recovered.actor_username.as_deref(), Some("other"));
    assert_eq!(recovered.target_id.as_deref(), Some("modal"));
    assert_eq!(recovered.details["changed_keys"], json!(["k"]));
    assert_eq!(recovered.details["operation"], "update");
    assert_eq!(recovered.details["recovered"], json!(true));
    assert_eq!(all[2].details["changed_keys"], json!(["b"]));
    assert!(f.trail.verify().unwrap().valid);
    // The outbox now holds the rows this transaction appended: both are exposed to a
    // crash between the two commits until a later transaction sees them in audit.db.
    assert_eq!(
        raw.strings("SELECT entry_id FROM audit_outbox ORDER BY entry_id", &[]),
        ["2", "3"]
    );
    f.store
        .update("replicate", object(json!({"c": 3})))
        .unwrap();
    assert_eq!(entries(&f.trail).len(), 4);
    assert_eq!(raw.strings("SELECT entry_id FROM audit_outbox", &[]), ["4"]);
}

#[test]
fn rows_a_cleanup_removed_or_the_trail_holds_are_not_appended_again() {
    let f = Fixture::new(Kind::Sqlite);
    f.store
        .update("replicate", object(json!({"a": 1})))
        .unwrap();
    f.store
        .update("replicate", object(json!({"b": 2})))
        .unwrap();
    let cleaned = f
        .trail
        .cleanup_before(Timestamp::parse("2999-01-01T00:00:00").unwrap())
        .unwrap();
    assert_eq!(cleaned.removed, 2);
    // The outbox still names row 2, now removed by the cleanup; it must stay removed.
    assert_eq!(f.trail.unrecorded_changes(&f.db.jobs()).unwrap(), 0);
    f.store
        .update("replicate", object(json!({"c": 3})))
        .unwrap();
    let all = entries(&f.trail);
    assert_eq!(all.len(), 2, "the checkpoint and the new change: {all:?}");
    assert!(all.iter().all(|e| e.details.get("recovered").is_none()));
    assert!(f.trail.verify().unwrap().valid);
    // A store opening on an outbox whose row the trail holds appends nothing either.
    let _other = open_store(&f.db.jobs(), &f.trail);
    assert_eq!(entries(&f.trail).len(), 2);
}

#[test]
fn credential_changes_use_the_outbox_too() {
    let f = Fixture::new(Kind::Sqlite);
    let creds =
        crate::CredentialStore::open_at(&f.db.jobs(), cipher(), Some(f.trail.clone())).unwrap();
    creds
        .set(1, "replicate", "api_token", &crate::Secret::new("t"))
        .unwrap();
    let id = entries(&f.trail)[0].id;
    assert_eq!(
        f.raw().strings("SELECT entry_id FROM audit_outbox", &[]),
        [id.to_string()]
    );
}

#[test]
fn a_row_appended_again_and_lost_again_is_appended_a_third_time() {
    let (db, one_row, _) = second_change_unrecorded("a", "b");
    // The first crash lost the row of `b`. The repair at the next opening appends it...
    let trail = AuditTrail::open_at(&db.audit(), audit_key()).unwrap();
    drop(open_store(&db.jobs(), &trail));
    assert_eq!(entries(&trail).len(), 2);
    drop(trail);
    // ...and a second crash loses that repair's audit.db commit too.
    copy_db(&one_row, &db.audit_db());
    let trail = AuditTrail::open_at(&db.audit(), audit_key()).unwrap();
    assert_eq!(trail.unrecorded_changes(&db.jobs()).unwrap(), 1);
    drop(open_store(&db.jobs(), &trail));
    let all = entries(&trail);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1].details["changed_keys"], json!(["b"]));
    assert_eq!(all[1].details["recovered"], json!(true));
    assert!(trail.verify().unwrap().valid);
}

#[test]
fn a_copy_to_another_store_carries_the_row_a_crash_left_in_the_outbox() {
    let (db, _, _) = second_change_unrecorded("a", "b");
    let settings = |db: &TestDb| {
        let mut settings = crate::StoreSettings::in_dir(db.dir.path());
        settings.jobs_db = db.jobs_db();
        settings.audit_db = db.audit_db();
        settings
    };
    let target = TestDb::new(Kind::Sqlite);
    let report = crate::copy_store(&settings(&db), &settings(&target), &audit_key()).unwrap();
    assert_eq!(report.audit_rows_copied, 2);
    let copied = AuditTrail::open_at(&target.audit(), audit_key()).unwrap();
    let all = entries(&copied);
    assert_eq!(all[1].details["changed_keys"], json!(["b"]));
    assert_eq!(all[1].details["recovered"], json!(true));
    assert!(copied.verify().unwrap().valid);
}

#[test]
fn an_outbox_row_planted_or_edited_without_the_audit_key_is_never_signed_into_the_chain() {
    let f = Fixture::new(Kind::Sqlite);
    f.store
        .update("replicate", object(json!({"a": 1})))
        .unwrap();
    let raw = f.raw();
    raw.execute("DELETE FROM audit_outbox", &[]);
    // Edited after signing: another action.
    let mut edited = lost_row(&f.trail, &f.trail);
    edited.event.action = "FORGED action".into();
    plant(&f, &edited);
    // Hand-written, every column of a wrong type: read loosely, never blocks a write.
    raw.batch(
        "INSERT INTO audit_outbox (entry_id, entry_hash, timestamp, event_type, action,
             actor_id, actor_username, actor_ip, target_type, target_id, details, mac,
             previous_hash)
         VALUES (4, X'FF00', 17, 42, X'C3', 'not a number', 5, NULL, NULL, X'80', 'not json', 1,
             X'00')",
    );
    assert_eq!(f.trail.unrecorded_changes(&f.db.jobs()).unwrap(), 0);
    f.store
        .update("replicate", object(json!({"b": 2})))
        .unwrap();
    let all = entries(&f.trail);
    assert_eq!(all.len(), 2, "nothing appended but the change: {all:?}");
    assert!(all.iter().all(|e| !e.action.contains("FORGED")));
    assert!(f.trail.verify().unwrap().valid);
    assert_eq!(
        raw.strings("SELECT entry_id FROM audit_outbox", &[]),
        [all[1].id.to_string()]
    );
    // Signed with another audit key.
    let other_key = AuditKey::from_bytes(b"another key".to_vec()).unwrap();
    let other = AuditTrail::open_path(&f.db.dir.path().join("other.db"), other_key).unwrap();
    raw.execute("DELETE FROM audit_outbox", &[]);
    let mut foreign = lost_row(&f.trail, &other);
    foreign.event.action = "FORGED action".into();
    foreign.mac = other.outbox_mac(&foreign);
    plant(&f, &foreign);
    assert_eq!(f.trail.unrecorded_changes(&f.db.jobs()).unwrap(), 0);
    f.store
        .update("replicate", object(json!({"c": 3})))
        .unwrap();
    let all = entries(&f.trail);
    assert_eq!(all.len(), 3, "nothing appended but the change: {all:?}");
    assert!(all.iter().all(|e| !e.action.contains("FORGED")));
    // The same row signed with the trail's key counts: only the key was wrong above.
    raw.execute("DELETE FROM audit_outbox", &[]);
    let mut genuine = lost_row(&f.trail, &f.trail);
    genuine.event.action = "GENUINE action".into();
    genuine.mac = f.trail.outbox_mac(&genuine);
    plant(&f, &genuine);
    assert_eq!(f.trail.unrecorded_changes(&f.db.jobs()).unwrap(), 1);
}

#[test]
fn a_pending_outbox_row_never_stops_a_store_from_opening() {
    let (db, _, _) = second_change_unrecorded("first", "second");
    // The newest audit row no longer verifies: appending (the repair) must fail...
    super::raw(&db.audit_db())
        .execute("UPDATE audit_log SET action = 'tampered' WHERE id = 1", [])
        .unwrap();
    let trail = AuditTrail::open_at(&db.audit(), audit_key()).unwrap();
    // ...but the store opens and reads; the write, which must append, fails loudly.
    let store = open_store(&db.jobs(), &trail);
    assert_eq!(store.get("replicate").unwrap()["second"], 2);
    let e = store
        .update("replicate", object(json!({"third": 3})))
        .unwrap_err();
    assert!(e.to_string().contains("wrong audit key"), "{e}");
    assert_eq!(store.get_uncached("replicate").unwrap().get("third"), None);
}

#[test]
fn an_outbox_row_put_back_after_its_recovery_is_not_appended_again() {
    let (db, one_row, _) = second_change_unrecorded("first", "second");
    // jobs.db as the crash left it, kept as a backup.
    let jobs_backup = db.dir.path().join("jobs-backup.db");
    copy_db(&db.jobs_db(), &jobs_backup);
    let trail = AuditTrail::open_at(&db.audit(), audit_key()).unwrap();
    drop(open_store(&db.jobs(), &trail));
    drop(trail);
    // The recovered row lost again, and recovered again: it now stands for two hashes.
    copy_db(&one_row, &db.audit_db());
    let trail = AuditTrail::open_at(&db.audit(), audit_key()).unwrap();
    drop(open_store(&db.jobs(), &trail));
    assert_eq!(entries(&trail).len(), 2);
    // The backup of jobs.db restored: its outbox names the first, lost, hash.
    copy_db(&jobs_backup, &db.jobs_db());
    assert_eq!(trail.unrecorded_changes(&db.jobs()).unwrap(), 0);
    drop(open_store(&db.jobs(), &trail));
    let all = entries(&trail);
    let second = all
        .iter()
        .filter(|e| e.details["changed_keys"] == json!(["second"]))
        .count();
    assert_eq!(second, 1, "recorded {second} times: {all:?}");
    assert_eq!(
        all[1].details["recovered_from"].as_array().map(Vec::len),
        Some(2),
        "{all:?}"
    );
    assert!(trail.verify().unwrap().valid);
}

#[test]
fn a_replaced_audit_database_is_not_given_rows_of_the_old_chain() {
    let f = Fixture::new(Kind::Sqlite);
    f.store
        .update("replicate", object(json!({"a": 1})))
        .unwrap();
    f.store
        .update("replicate", object(json!({"b": 2})))
        .unwrap();
    let Fixture {
        store, trail, db, ..
    } = f;
    drop((store, trail));
    // A new chain in place of the old one (same key).
    let audit = db.audit_db();
    fs::rename(&audit, db.dir.path().join("audit-old.db")).unwrap();
    for companion in companion_paths(&audit) {
        let _ = fs::remove_file(companion);
    }
    let fresh = AuditTrail::open_at(&db.audit(), audit_key()).unwrap();
    assert_eq!(fresh.unrecorded_changes(&db.jobs()).unwrap(), 0);
    let store = open_store(&db.jobs(), &fresh);
    assert!(entries(&fresh).is_empty());
    store.update("replicate", object(json!({"c": 3}))).unwrap();
    let all = entries(&fresh);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].details["changed_keys"], json!(["c"]));
}

/// What a SIGKILL between the commit of jobs.db and that of audit.db leaves: audit.db as
/// it was with its newest row `keep` (rows, row MACs, head marker and AUTOINCREMENT
/// sequence), while jobs.db (change and outbox) keeps the later commit.
fn lose_audit_commit(audit_db: &Path, keep: i64, head: &(i64, String, String)) {
    let conn = super::raw(audit_db);
    conn.execute("DELETE FROM audit_log WHERE id > ?1", [keep])
        .unwrap();
    conn.execute("DELETE FROM audit_row_mac WHERE entry_id > ?1", [keep])
        .unwrap();
    conn.execute(
        "UPDATE audit_head SET last_id = ?1, entry_hash = ?2, mac = ?3",
        rusqlite::params![head.0, head.1, head.2],
    )
    .unwrap();
    conn.execute(
        "UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'audit_log'",
        [keep],
    )
    .unwrap();
}

/// The chain head marker of `audit_db`: (last id, entry hash, MAC).
fn audit_head_of(audit_db: &Path) -> (i64, String, String) {
    super::raw(audit_db)
        .query_row("SELECT last_id, entry_hash, mac FROM audit_head", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap()
}

/// Two crashes in a row between the two commits: the second one during the write that
/// recovers the first's row. Its outbox holds [recovered row N, new change N+1]; the
/// next settle appends the recovered row again (new hash), and row N+1's predecessor is
/// that earlier row of the same outbox, lost with it: not "another chain".
#[test]
fn a_change_lost_with_the_write_that_recovers_another_gets_its_row() {
    let f = Fixture::new(Kind::Sqlite);
    let audit = f.audit_db();
    f.store
        .update("replicate", object(json!({"a": 1})))
        .unwrap();
    let head1 = audit_head_of(&audit);
    // Crash 1: the row of `b` (id 2) never reaches audit.db.
    f.store
        .update("replicate", object(json!({"b": 2})))
        .unwrap();
    lose_audit_commit(&audit, 1, &head1);
    // The next write (this process, still running) settles: recovered `b` at 2, `c` at 3.
    f.store
        .update("replicate", object(json!({"c": 3})))
        .unwrap();
    assert_eq!(
        f.raw()
            .strings("SELECT entry_id FROM audit_outbox ORDER BY entry_id", &[]),
        ["2", "3"]
    );
    // Crash 2: that write's audit.db commit is lost too.
    lose_audit_commit(&audit, 1, &head1);
    let lost = f.trail.unrecorded_changes(&f.db.jobs()).unwrap();
    f.store
        .update("replicate", object(json!({"d": 4})))
        .unwrap();
    let all = entries(&f.trail);
    let keys: Vec<_> = all
        .iter()
        .map(|e| e.details["changed_keys"].clone())
        .collect();
    eprintln!("unrecorded_changes before the settle: {lost}; trail: {keys:?}");
    assert!(f.trail.verify().unwrap().valid);
    for key in ["a", "b", "c", "d"] {
        assert_eq!(
            keys.iter().filter(|k| **k == json!([key])).count(),
            1,
            "change `{key}` recorded once: {keys:?}"
        );
    }
    assert_eq!(lost, 2, "both changes counted as unrecorded");
}

/// The first row of a chain (previous hash `genesis`) left in the outbox is given to a
/// new, empty audit.db (audit.db replaced, same key), which the docs say never happens.
#[test]
fn an_outbox_row_with_awkward_details_keeps_its_mac_through_the_database() {
    let f = Fixture::new(Kind::Sqlite);
    f.store
        .update("replicate", object(json!({"a": 1})))
        .unwrap();
    let raw = f.raw();
    raw.execute("DELETE FROM audit_outbox", &[]);
    let mut row = lost_row(&f.trail, &f.trail);
    row.event = row
        .event
        .detail("zz", 0.1)
        .detail("big", 1e300)
        .detail("tiny", 5e-324)
        .detail("neg0", -0.0)
        .detail("one", 1.0)
        .detail("imax", i64::MIN)
        .detail("umax", u64::MAX)
        .detail("text", "é\u{2028}\u{0}\u{1f}\"\\/😀\u{feff}")
        .detail(
            "nested",
            json!({"z": 1, "a": {"y": [1.5, "x", null], "b": true}}),
        )
        .detail("aa", json!([]));
    row.event.actor.username = Some("ü\u{0}ser".into());
    row.mac = f.trail.outbox_mac(&row);
    plant(&f, &row);
    assert_eq!(f.trail.unrecorded_changes(&f.db.jobs()).unwrap(), 1);
    f.store
        .update("replicate", object(json!({"b": 2})))
        .unwrap();
    let all = entries(&f.trail);
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(
        all[1].details["nested"],
        json!({"z": 1, "a": {"y": [1.5, "x", null], "b": true}})
    );
    assert!(f.trail.verify().unwrap().valid);
}
