//! Sync, IDLE, sending and the outbox against the real Dovecot and
//! Postfix started by `scripts/test-servers`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use wardmail::audit::{self, AuditDraft, PlannedRecipient};
use wardmail::imap::Role;
use wardmail::sync::blocking;

/// Every file of a vectors folder that is a message, sorted.
fn corpus(folder: &str) -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/vectors")
        .join(folder);
    let mut files = Vec::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "eml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_corpus_lists_every_message() {
    let user = &support::user("sync-corpus");
    let mut expected = 0;
    for (mailbox, folder) in [
        ("Corpus", "mail-parser-corpus"),
        ("Thunderbird", "thunderbird-mime"),
    ] {
        support::create_mailbox(user, mailbox);
        let files = corpus(folder);
        assert!(!files.is_empty(), "no messages in {folder}");
        for file in &files {
            support::save(user, mailbox, &std::fs::read(file).unwrap());
        }
        expected += files.len();
    }
    let (_dir, session) = support::session(support::account(user)).await;
    let reports = session.sync(&|_| {}).await.unwrap();

    let mut synced = 0;
    for mailbox in ["Corpus", "Thunderbird"] {
        let report = reports.iter().find(|r| r.name == mailbox).unwrap();
        let server_uids = support::uids(user, mailbox);
        assert_eq!(report.total as usize, server_uids.len(), "{mailbox}");
        synced += server_uids.len();

        let folder = session.folder(mailbox).await.unwrap();
        let id = folder.id;
        let rows = blocking(&session.store, move |s| s.list(id, 0, u32::MAX))
            .await
            .unwrap();
        let mut listed: Vec<u32> = rows.iter().map(|r| r.uid).collect();
        listed.sort_unstable();
        assert_eq!(listed, server_uids, "{mailbox}");
        for uid in listed {
            let raw = session
                .body(&folder, uid)
                .await
                .unwrap()
                .expect("body exists");
            let parsed = wardmail::message::parse(&raw);
            assert!(
                !parsed.text.is_empty()
                    || !parsed.problems.is_empty()
                    || !parsed.attachments.is_empty()
                    || raw.len() < 400,
                "{mailbox} UID {uid}: nothing shown and no problem reported"
            );
        }
    }
    assert_eq!(synced, expected);
    let folders = session.folders().await.unwrap();
    for role in [
        Role::Inbox,
        Role::Drafts,
        Role::Sent,
        Role::Trash,
        Role::Junk,
        Role::Archive,
    ] {
        assert!(
            folders.iter().any(|f| f.role == Some(role)),
            "no {role:?} folder in {folders:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_incremental_new_flags_expunge() {
    let user = &support::user("sync-incremental");
    for n in 1..=3 {
        support::save(
            user,
            "INBOX",
            &support::message(
                "lab@example.org",
                "x@example.org",
                "first",
                &format!("inc{n}@example.org"),
            ),
        );
    }
    let (_dir, session) = support::session(support::account(user)).await;
    session.sync(&|_| {}).await.unwrap();
    let inbox = session.folder("INBOX").await.unwrap();
    assert_eq!(session.folder("INBOX").await.unwrap().total, 3);

    support::save(
        user,
        "INBOX",
        &support::message(
            "lab@example.org",
            "x@example.org",
            "second",
            "inc4@example.org",
        ),
    );
    let report = session.sync_folder(&inbox).await.unwrap();
    assert_eq!((report.added, report.removed, report.total), (1, 0, 4));

    let uids = support::uids(user, "INBOX");
    support::expunge(user, "INBOX", uids[0]);
    support::add_flag(user, "INBOX", uids[1], "\\Flagged");
    let report = session.sync_folder(&inbox).await.unwrap();
    assert_eq!((report.added, report.removed, report.total), (0, 1, 3));
    assert!(report.flags_changed >= 1, "{report:?}");
    let id = inbox.id;
    let rows = blocking(&session.store, move |s| s.list(id, 0, 10))
        .await
        .unwrap();
    assert!(!rows.iter().any(|r| r.uid == uids[0]));
    assert!(rows.iter().find(|r| r.uid == uids[1]).unwrap().flagged);

    let report = session.sync_folder(&inbox).await.unwrap();
    assert_eq!(
        (report.added, report.removed, report.flags_changed),
        (0, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn folder_names_round_trip_utf7() {
    let user = &support::user("sync-utf7");
    support::create_mailbox(user, "Befunde/Übersicht 台北");
    let (_dir, session) = support::session(support::account(user)).await;
    session.sync(&|_| {}).await.unwrap();
    let folder = session.folder("Befunde/Übersicht 台北").await.unwrap();
    assert_eq!(folder.raw_name, "Befunde/&ANw-bersicht &U,BTFw-");
    assert_eq!(wardmail::utf7::encode(&folder.name), folder.raw_name);
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_reports_new_mail() {
    let user = &support::user("idle");
    let (_dir, session) = support::session(support::account(user)).await;
    session.sync(&|_| {}).await.unwrap();
    let mut connection = session.connect().await.unwrap();
    connection.select("INBOX").await.unwrap();
    let started = std::time::Instant::now();
    let idle = tokio::spawn(connection.idle(Duration::from_secs(60)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let account = session.account.clone();
    let raw = support::message(
        "lab@example.org",
        &account.address,
        "idle",
        "idle1@example.org",
    );
    wardmail::smtp::submit(
        &account,
        &support::password(),
        session.tls(),
        "lab@example.org",
        std::slice::from_ref(&account.address),
        &raw,
        false,
    )
    .await
    .unwrap();
    let (mut connection, changed) = tokio::time::timeout(Duration::from_secs(20), idle)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(changed);
    assert!(started.elapsed() < Duration::from_secs(20));
    let inbox = session.folder("INBOX").await.unwrap();
    let report = wardmail::sync::sync_folder(&mut connection, &session.store, &inbox, &|_| {})
        .await
        .unwrap();
    assert_eq!(report.added, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn send_lands_in_inbox_and_sent() {
    let user = &support::user("send");
    let (_dir, session) = support::session(support::account(user)).await;
    session.sync(&|_| {}).await.unwrap();
    let me = session.account.address.clone();
    let raw = support::message(&me, &me, "hello", "send1@example.org");
    session
        .send("<send1@example.org>".into(), raw, vec![me.clone()])
        .await
        .unwrap();

    for _ in 0..50 {
        if support::count_message_id(user, "INBOX", "send1@example.org") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        support::count_message_id(user, "INBOX", "send1@example.org"),
        1
    );
    assert_eq!(
        support::count_message_id(user, "Sent", "send1@example.org"),
        1
    );
    let account = session.account.id.clone();
    let pending = blocking(&session.store, move |s| s.outbox(&account))
        .await
        .unwrap();
    assert!(pending.is_empty(), "{pending:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn send_with_audit_records_plan() {
    let user = &support::user("audit-plan");
    let (_dir, session) = support::session(support::account(user)).await;
    session.sync(&|_| {}).await.unwrap();
    let me = session.account.address.clone();
    let raw = support::message(&me, &me, "Results for Ward 7", "plan1@example.org");
    let plan = AuditDraft {
        recipients: vec![PlannedRecipient {
            address: me.clone(),
            method: "openpgp".into(),
            evidence: "key verified by the user".into(),
        }],
        decision: "allowed with override".into(),
        override_reason: Some("patient asked by phone".into()),
        choices: Vec::new(),
    };
    session
        .send_with_audit("<plan1@example.org>".into(), raw, vec![me.clone()], plan)
        .await
        .unwrap();

    let (log, report) = blocking(&session.store, |s| {
        Ok((audit::list(s).unwrap(), audit::verify(s)?))
    })
    .await
    .unwrap();
    assert!(report.intact(), "{}", report.summary());
    assert_eq!(log.len(), 1, "{log:?}");
    let entry = &log[0].entry;
    assert_eq!(entry.kind, "send");
    assert_eq!(entry.account, session.account.id);
    assert_eq!(entry.outcome, "accepted");
    assert_eq!(entry.decision, "allowed with override");
    assert_eq!(
        entry.override_reason.as_deref(),
        Some("patient asked by phone")
    );
    assert_eq!(entry.recipients.len(), 1);
    assert_eq!(entry.recipients[0].address, me);
    assert_eq!(entry.recipients[0].method, "openpgp");
    assert_eq!(entry.recipients[0].evidence, "key verified by the user");
    assert_eq!(entry.recipients[0].outcome, "accepted");
    let json = log[0].entry.canonical_json();
    assert!(!json.contains("Ward 7"), "the subject leaked: {json}");
    assert!(!json.contains("Lab results"), "the body leaked: {json}");
}

#[tokio::test(flavor = "multi_thread")]
async fn flags_move_and_delete_reach_server() {
    let user = &support::user("actions");
    for n in 1..=2 {
        support::save(
            user,
            "INBOX",
            &support::message(
                "lab@example.org",
                "x@example.org",
                "act",
                &format!("act{n}@example.org"),
            ),
        );
    }
    let (_dir, session) = support::session(support::account(user)).await;
    session.sync(&|_| {}).await.unwrap();
    let inbox = session.folder("INBOX").await.unwrap();
    let uids = support::uids(user, "INBOX");

    session
        .set_flag(&inbox, uids[0], "\\Seen", true)
        .await
        .unwrap();
    session
        .set_flag(&inbox, uids[0], "\\Flagged", true)
        .await
        .unwrap();
    let archive = session.folder("archive").await.unwrap();
    session
        .move_message(&inbox, uids[1], &archive)
        .await
        .unwrap();
    assert_eq!(support::uids(user, "Archive").len(), 1);

    session.delete_message(&inbox, uids[0]).await.unwrap();
    assert!(support::uids(user, "INBOX").is_empty());
    assert_eq!(support::uids(user, "Trash").len(), 1);

    session.sync(&|_| {}).await.unwrap();
    let trash = session.folder("trash").await.unwrap();
    let id = trash.id;
    let rows = blocking(&session.store, move |s| s.list(id, 0, 10))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].seen && rows[0].flagged, "{:?}", rows[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn draft_is_saved_to_drafts() {
    let user = &support::user("drafts");
    let (_dir, session) = support::session(support::account(user)).await;
    session.sync(&|_| {}).await.unwrap();
    let raw = support::message(
        "drafts@example.org",
        "x@example.org",
        "draft",
        "draft1@example.org",
    );
    session.save_draft(&raw).await.unwrap();
    assert_eq!(
        support::count_message_id(user, "Drafts", "draft1@example.org"),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn send_interrupted_by_crash_waits_for_user() {
    let user = &support::user("crash");
    let (dir, session) = support::session(support::account(user)).await;
    let me = session.account.address.clone();
    let raw = support::message(&me, &me, "crash", "crash1@example.org");
    let id = wardmail::outbox::enqueue(
        &session.store,
        &session.account,
        "<crash1@example.org>".into(),
        raw,
        vec![me],
    )
    .await
    .unwrap();
    // The state a crash leaves behind: claimed for sending, never finished.
    let from = [wardmail::store::OutboxState::Queued];
    let claimed = blocking(&session.store, move |s| {
        s.outbox_transition(id, &from, wardmail::store::OutboxState::Sending)
    })
    .await
    .unwrap();
    assert!(claimed);
    drop(session);

    let profile = wardmail::account::Profile::locate(Some(dir.path())).unwrap();
    let session = wardmail::session::Session::open(profile, None)
        .await
        .unwrap();
    let account = session.account.id.clone();
    let entries = blocking(&session.store, move |s| s.outbox(&account))
        .await
        .unwrap();
    assert_eq!(entries[0].state, wardmail::store::OutboxState::Uncertain);
    let log = blocking(&session.store, |s| Ok(audit::list(s).unwrap()))
        .await
        .unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].entry.outcome, "uncertain");
    assert_eq!(
        log[0].entry.message_id.as_deref(),
        Some("<crash1@example.org>")
    );
    assert!(
        log[0].entry.details["error"].contains("stopped while sending"),
        "{log:?}"
    );
    assert!(session.flush_outbox().await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        support::count_message_id(user, "INBOX", "crash1@example.org"),
        0
    );

    session.resend(id, true).await.unwrap();
    let log = blocking(&session.store, |s| Ok(audit::list(s).unwrap()))
        .await
        .unwrap();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[1].entry.outcome, "accepted");
    for _ in 0..50 {
        if support::count_message_id(user, "INBOX", "crash1@example.org") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        support::count_message_id(user, "INBOX", "crash1@example.org"),
        1
    );
}
