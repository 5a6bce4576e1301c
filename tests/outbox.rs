//! The outbox and its audit log entries across a stopped SMTP server. This is its own test binary
//! because it stops and starts the shared Postfix, and cargo runs test
//! binaries one after another.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use wardmail::audit;
use wardmail::store::OutboxState;
use wardmail::sync::blocking;

/// Starts Postfix again even when an assertion fails, so later test
/// binaries still have it.
struct RestartPostfix;

impl Drop for RestartPostfix {
    fn drop(&mut self) {
        support::postfix("start");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn outbox_retry_after_smtp_stopped_sends_once() {
    let user = &support::user("outbox");
    let (dir, session) = support::session(support::account(user)).await;
    session.sync(&|_| {}).await.unwrap();
    let me = session.account.address.clone();
    let raw = support::message(&me, &me, "retry", "retry1@example.org");

    support::postfix("stop");
    let restart = RestartPostfix;
    let error = session
        .send("<retry1@example.org>".into(), raw, vec![me.clone()])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("refused"), "{error}");
    let id = session.account.id.clone();
    let pending = blocking(&session.store, move |s| s.outbox(&id))
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].state, OutboxState::Failed);
    assert!(
        pending[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("refused")
    );
    let log = blocking(&session.store, |s| Ok(audit::list(s).unwrap()))
        .await
        .unwrap();
    assert_eq!(log.len(), 1);
    let failed = &log[0].entry;
    assert_eq!(failed.kind, "send");
    assert_eq!(failed.outcome, "failed");
    assert_eq!(failed.message_id.as_deref(), Some("<retry1@example.org>"));
    assert_eq!(failed.recipients.len(), 1);
    assert_eq!(failed.recipients[0].address, me);
    assert_eq!(failed.recipients[0].method, "tls");
    assert_eq!(failed.recipients[0].outcome, "failed");
    assert!(failed.details["error"].contains("refused"), "{failed:?}");
    drop(session);

    // The server is back; a new session stands for a restarted app.
    drop(restart);
    let profile = wardmail::account::Profile::locate(Some(dir.path())).unwrap();
    let session = wardmail::session::Session::open(profile, None)
        .await
        .unwrap();
    assert_eq!(
        wardmail::outbox::recover(&session.store, &session.account.id)
            .await
            .unwrap(),
        0
    );
    let outcomes = session.flush_outbox().await.unwrap();
    assert_eq!(outcomes.len(), 1);
    assert!(outcomes[0].1.is_ok(), "{:?}", outcomes[0].1);
    assert!(session.flush_outbox().await.unwrap().is_empty());
    let (log, report) = blocking(&session.store, |s| {
        Ok((audit::list(s).unwrap(), audit::verify(s)?))
    })
    .await
    .unwrap();
    assert_eq!(log.len(), 2, "one entry per attempt: {log:?}");
    assert_eq!(log[1].entry.outcome, "accepted");
    assert_eq!(log[1].entry.recipients[0].outcome, "accepted");
    assert!(log[1].entry.details.is_empty(), "{:?}", log[1].entry);
    assert!(report.intact(), "{}", report.summary());

    for _ in 0..50 {
        if support::count_message_id(user, "INBOX", "retry1@example.org") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        support::count_message_id(user, "INBOX", "retry1@example.org"),
        1
    );
    assert_eq!(
        support::count_message_id(user, "Sent", "retry1@example.org"),
        1
    );
}
