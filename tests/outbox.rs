//! The outbox across a stopped SMTP server. This is its own test binary
//! because it stops and starts the shared Postfix, and cargo runs test
//! binaries one after another.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

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
