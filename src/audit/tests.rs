use super::*;
use crate::secret::Secret;

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn store_with(entries: u64) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db"), &Secret::new(KEY)).unwrap();
    for n in 1..=entries {
        let mut entry = AuditEntry::new("work", "send");
        entry.message_id = Some(format!("<{n}@example.org>"));
        entry.recipients = vec![AuditRecipient {
            address: format!("patient{n}@example.org"),
            method: "tls".into(),
            evidence: "submission over TLS".into(),
            outcome: "accepted".into(),
        }];
        entry.outcome = "accepted".into();
        append(&store, entry).unwrap();
    }
    (dir, store)
}

fn tamper(store: &Store, statement: &str) {
    tamper_for_tests(store, statement).unwrap();
}

fn stored_json(store: &Store, seq: u64) -> String {
    store
        .db()
        .query_row(
            "SELECT entry FROM audit_log WHERE seq = ?1",
            [seq as i64],
            |row| row.get(0),
        )
        .unwrap()
}

fn found(store: &Store) -> Break {
    let report = verify(store).unwrap();
    report.broken.expect("verify found no damage")
}

#[test]
fn verify_intact_chain() {
    let (_dir, store) = store_with(4);
    let report = verify(&store).unwrap();
    assert!(report.intact(), "{}", report.summary());
    assert_eq!(report.entries, 4);
    assert_eq!(Some(report.head), hash_at(&store, 4).unwrap());
}

#[test]
fn verify_empty_log() {
    let (_dir, store) = store_with(0);
    let report = verify(&store).unwrap();
    assert!(report.intact());
    assert_eq!(report.head, GENESIS);
}

#[test]
fn append_links_and_numbers() {
    let (_dir, store) = store_with(3);
    let records = list(&store).unwrap();
    assert_eq!(
        records.iter().map(|r| r.entry.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(records[0].prev_hash, GENESIS);
    assert_eq!(records[1].prev_hash, records[0].hash);
    assert_eq!(
        records[2].hash,
        chain_hash(&records[1].hash, &records[2].entry.canonical_json())
    );
    assert_eq!(
        records[1].entry.message_id.as_deref(),
        Some("<2@example.org>")
    );
}

#[test]
fn verify_detects_edited_entry() {
    let (_dir, store) = store_with(4);
    tamper(
        &store,
        "UPDATE audit_log SET entry = replace(entry, 'accepted', 'failed') WHERE seq = 2",
    );
    let found = found(&store);
    assert_eq!(found.seq, 2);
    assert_eq!(found.damage, Damage::Edited);
}

#[test]
fn verify_detects_replaced_entry() {
    let (_dir, store) = store_with(4);
    let forged = stored_json(&store, 2).replace("patient2", "someone");
    let prev = hash_at(&store, 1).unwrap().unwrap();
    let hash = chain_hash(&prev, &forged);
    tamper(
        &store,
        &format!("UPDATE audit_log SET entry = '{forged}', hash = '{hash}' WHERE seq = 2"),
    );
    let found = found(&store);
    assert_eq!(found.seq, 2);
    assert_eq!(found.damage, Damage::Edited);
}

#[test]
fn verify_detects_inserted_entry() {
    let (_dir, store) = store_with(4);
    // Make room at 3 the way an attacker would, then insert an entry that
    // links correctly to entry 2.
    tamper(
        &store,
        "UPDATE audit_log SET seq = seq + 100 WHERE seq >= 3;
         UPDATE audit_log SET seq = seq - 99 WHERE seq >= 100;
         UPDATE audit_head SET count = 5",
    );
    let mut forged = AuditEntry::new("work", "send");
    forged.seq = 3;
    forged.outcome = "accepted".into();
    let json = forged.canonical_json();
    let prev = hash_at(&store, 2).unwrap().unwrap();
    let hash = chain_hash(&prev, &json);
    tamper(
        &store,
        &format!(
            "INSERT INTO audit_log (seq, entry, prev_hash, hash) VALUES (3, '{json}', '{prev}', '{hash}')"
        ),
    );
    let found = found(&store);
    assert_eq!(found.seq, 3);
    assert_eq!(found.damage, Damage::Inserted);
}

#[test]
fn verify_detects_entry_appended_outside() {
    let (_dir, store) = store_with(3);
    let mut forged = AuditEntry::new("work", "send");
    forged.seq = 4;
    let json = forged.canonical_json();
    let prev = hash_at(&store, 3).unwrap().unwrap();
    let hash = chain_hash(&prev, &json);
    tamper(
        &store,
        &format!(
            "INSERT INTO audit_log (seq, entry, prev_hash, hash) VALUES (4, '{json}', '{prev}', '{hash}')"
        ),
    );
    let found = found(&store);
    assert_eq!(found.seq, 4);
    assert_eq!(found.damage, Damage::Inserted);
}

#[test]
fn verify_detects_deleted_middle_entry() {
    let (_dir, store) = store_with(4);
    tamper(&store, "DELETE FROM audit_log WHERE seq = 2");
    let found = found(&store);
    assert_eq!(found.seq, 2);
    assert_eq!(found.damage, Damage::Deleted);
}

#[test]
fn verify_detects_deleted_and_renumbered() {
    let (_dir, store) = store_with(4);
    tamper(
        &store,
        "DELETE FROM audit_log WHERE seq = 2;
         UPDATE audit_log SET seq = seq - 1 WHERE seq > 2;
         UPDATE audit_head SET count = 3",
    );
    let found = found(&store);
    assert_eq!(found.seq, 2);
    assert_eq!(found.damage, Damage::Deleted);
}

#[test]
fn verify_detects_deleted_last_entry() {
    let (_dir, store) = store_with(4);
    tamper(&store, "DELETE FROM audit_log WHERE seq = 4");
    let found = found(&store);
    assert_eq!(found.seq, 4);
    assert_eq!(found.damage, Damage::Deleted);
}

#[test]
fn verify_detects_deleted_head_record() {
    let (_dir, store) = store_with(2);
    tamper(&store, "DELETE FROM audit_head");
    let found = found(&store);
    assert_eq!(found.seq, 2);
    assert_eq!(found.damage, Damage::Edited);
}

#[test]
fn rewrite_with_head_is_not_detected() {
    // The documented limit: whoever holds the store key can rewrite the
    // tail and the head consistently. Only an anchor kept elsewhere shows it.
    let (_dir, store) = store_with(3);
    let anchor = hash_at(&store, 3).unwrap().unwrap();
    tamper(
        &store,
        "DELETE FROM audit_log WHERE seq = 3; UPDATE audit_head SET count = 2,
         hash = (SELECT hash FROM audit_log WHERE seq = 2)",
    );
    assert!(verify(&store).unwrap().intact());
    assert_ne!(hash_at(&store, 3).unwrap(), Some(anchor));
}

#[test]
fn send_entry_uses_stored_plan() {
    let (_dir, store) = store_with(0);
    let recipients = vec!["a@example.org".to_owned(), "b@example.org".to_owned()];
    let id = store
        .outbox_add(
            "work",
            "<p@example.org>",
            b"x",
            "me@example.org",
            &recipients,
        )
        .unwrap();
    let draft = AuditDraft {
        recipients: vec![PlannedRecipient {
            address: "A@example.org".into(),
            method: "openpgp".into(),
            evidence: "verified key".into(),
        }],
        decision: "allowed".into(),
        override_reason: Some("lab requested".into()),
        choices: Vec::new(),
    };
    save_plan(&store, id, &draft).unwrap();
    let outbox = store.outbox("work").unwrap().remove(0);
    let entry = send_entry(&store, &outbox, SendOutcome::Failed, Some("refused")).unwrap();
    assert_eq!(entry.recipients[0].method, "openpgp");
    assert_eq!(entry.recipients[1].method, DEFAULT_METHOD);
    assert_eq!(entry.recipients[1].outcome, "failed");
    assert_eq!(entry.decision, "allowed");
    assert_eq!(entry.override_reason.as_deref(), Some("lab requested"));
    assert_eq!(
        entry.details.get("error").map(String::as_str),
        Some("refused")
    );

    store.outbox_remove(id).unwrap();
    let plans: i64 = store
        .db()
        .query_row("SELECT count(*) FROM outbox_audit_plan", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(plans, 0);
}
