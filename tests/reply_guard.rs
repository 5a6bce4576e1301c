//! The reply guard against the real Postfix and Dovecot, with OpenSSL as
//! the correspondent. Every path that emits mail meets the same gate, and
//! a typed override lets a held copy go and lands in the audit log. A
//! draft of an encrypted reply is stored encrypted on the server, and a
//! forward as attachment carries the original readable by the new
//! recipient only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::sync::Arc;

use support::pki::{Pki, openssl};
use wardmail::arrival::ArrivalEncryption;
use wardmail::audit::{AuditDraft, PlannedRecipient};
use wardmail::compose::{self, Draft, new_message_id};
use wardmail::guard::{self, Choice, FloorChoice, Held};
use wardmail::message::Address;
use wardmail::outbox::OutboxError;
use wardmail::route::{self, Routing, Sealing, Sensitivity};
use wardmail::secret::Secret;
use wardmail::session::{Method, Session, SessionError};

const SECRET_TEXT: &str = "Creatinine 412 umol/l, please call.";

/// A session for a fresh user with an S/MIME identity, a correspondent
/// (the insurer) with a certificate and a colleague without one. The
/// message from the insurer was encrypted to the user by OpenSSL and
/// inspected by the session, so its arrival is recorded.
struct Thread {
    _profile: tempfile::TempDir,
    session: Arc<Session>,
    pki: Pki,
    me: String,
    insurer: String,
    colleague: String,
    original_id: String,
    original: Vec<u8>,
}

async fn thread(base: &str) -> Thread {
    let me = support::user(&format!("{base}-me"));
    let insurer = support::user(&format!("{base}-ins"));
    let colleague = support::user(&format!("{base}-cc"));
    let at = |user: &str| format!("{user}@example.org");
    let (profile, session) = support::session(support::account(&me)).await;
    let session = Arc::new(session);
    let pki = Pki::new("/CN=Wardmail Reply Guard Test CA");
    pki.issue("me", &at(&me));
    pki.issue("insurer", &at(&insurer));
    session
        .import_pkcs12(pki.read("me.p12"), Secret::new("secret"))
        .await
        .unwrap();
    session.import_ca(pki.read("ca.pem")).await.unwrap();
    session
        .import_smime_certificates(pki.read("insurer.pem"))
        .await
        .unwrap();

    let original_id = format!("original-{me}@example.org");
    let original = encrypted_original(pki.path(), &at(&insurer), &at(&me), &original_id);
    let report = session.inspect(original.clone()).await.unwrap();
    assert!(report.decrypted, "the session decrypts the original");
    let arrival = session
        .stored_arrival(original_id.clone())
        .await
        .unwrap()
        .expect("the arrival is recorded");
    assert_eq!(arrival.encrypted, Some(ArrivalEncryption::Smime));

    Thread {
        _profile: profile,
        session,
        pki,
        me: at(&me),
        insurer: at(&insurer),
        colleague: at(&colleague),
        original_id,
        original,
    }
}

/// Encrypts a short text message to `to`'s certificate with `openssl cms`
/// and puts the outer header of a received message around it.
fn encrypted_original(dir: &Path, from: &str, to: &str, message_id: &str) -> Vec<u8> {
    std::fs::write(
        dir.join("inner.eml"),
        format!("Content-Type: text/plain; charset=utf-8\r\n\r\n{SECRET_TEXT}\r\n"),
    )
    .unwrap();
    let sealed = openssl(
        dir,
        &[
            "cms",
            "-encrypt",
            "-aes256",
            "-in",
            "inner.eml",
            "-recip",
            "me.pem",
        ],
    );
    let mut raw = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: Claim 7\r\nMessage-ID: <{message_id}>\r\n\
         Date: Fri, 4 Dec 2026 10:00:00 +0000\r\n"
    )
    .into_bytes();
    raw.extend_from_slice(&sealed);
    raw
}

impl Thread {
    /// Writes a clear reply to the original, quoting it, for `to`.
    fn reply(&self, to: &str, message_id: &str) -> Vec<u8> {
        format!(
            "From: {}\r\nTo: {to}\r\nSubject: Re: Claim 7\r\nMessage-ID: <{message_id}>\r\n\
             In-Reply-To: <{}>\r\nReferences: <{}>\r\n\r\n> {SECRET_TEXT}\r\n",
            self.me, self.original_id, self.original_id
        )
        .into_bytes()
    }

    fn plan_for(&self, addresses: &[(&str, &str)]) -> AuditDraft {
        AuditDraft {
            recipients: addresses
                .iter()
                .map(|(address, method)| PlannedRecipient {
                    address: (*address).to_owned(),
                    method: (*method).to_owned(),
                    evidence: "planned by the test".to_owned(),
                })
                .collect(),
            decision: "PHI message allowed by the test".to_owned(),
            override_reason: None,
            choices: Vec::new(),
        }
    }

    fn user(address: &str) -> &str {
        address.split('@').next().unwrap()
    }

    fn delivered(&self, address: &str, message_id: &str) -> usize {
        support::count_message_id(Self::user(address), "INBOX", message_id)
    }

    fn audit(&self) -> Vec<wardmail::audit::AuditEntry> {
        wardmail::audit::list(&self.session.store)
            .unwrap()
            .into_iter()
            .map(|record| record.entry)
            .collect()
    }
}

fn held(result: Result<(), SessionError>) -> Held {
    match result {
        Err(SessionError::Outbox(OutboxError::Held(held))) => held,
        other => panic!("expected the reply guard to hold the copy, got {other:?}"),
    }
}

/// Waits for Postfix and Dovecot to deliver one copy.
fn wait_for(thread: &Thread, address: &str, message_id: &str) -> usize {
    for _ in 0..50 {
        let count = thread.delivered(address, message_id);
        if count > 0 {
            return count;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    0
}

#[tokio::test(flavor = "multi_thread")]
async fn every_send_path_meets_the_gate() {
    let thread = thread("guard-paths").await;
    let session = &thread.session;
    let colleague = thread.colleague.as_str();

    // Session::send, the path of `wardmail send` without a plan.
    let first = new_message_id("example.org");
    let bare = first.trim_matches(['<', '>']).to_owned();
    let result = session
        .send(
            first.clone(),
            thread.reply(colleague, &bare),
            vec![colleague.to_owned()],
        )
        .await
        .map(drop);
    let stopped = held(result);
    assert_eq!(stopped.recipients.len(), 1);
    assert_eq!(stopped.recipients[0].address, colleague);
    assert!(stopped.floor.contains("S/MIME encrypted"), "{stopped}");
    assert_eq!(thread.delivered(colleague, &first), 0);

    // Session::send_with_audit, the composer's one-copy path.
    let second = new_message_id("example.org");
    let result = session
        .send_with_audit(
            second.clone(),
            thread.reply(colleague, second.trim_matches(['<', '>'])),
            vec![colleague.to_owned()],
            thread.plan_for(&[(colleague, "internal")]),
        )
        .await
        .map(drop);
    held(result);

    // Session::send_planned, the composer's path for several methods: the
    // insurer's S/MIME copy goes, the colleague's clear copy is held.
    let third = new_message_id("example.org");
    let known = session
        .recipient_capabilities(vec![thread.insurer.clone(), colleague.to_owned()])
        .await
        .unwrap();
    let plan = route::plan(
        &Routing::default(),
        &["example.org".to_owned()],
        Sensitivity::Phi,
        &known,
    );
    let draft = Draft {
        from: Address::new(None, &thread.me),
        to: vec![Address::new(None, &thread.insurer)],
        cc: vec![Address::new(None, colleague)],
        subject: "Re: Claim 7".to_owned(),
        body: format!("> {SECRET_TEXT}\n"),
        in_reply_to: Some(thread.original_id.clone()),
        references: vec![thread.original_id.clone()],
        ..Draft::default()
    };
    let outcomes = session
        .send_planned(
            draft,
            third.clone(),
            now(),
            &plan,
            Some(Method::Smime),
            thread.plan_for(&[(&thread.insurer, "smime"), (colleague, "internal")]),
        )
        .await
        .unwrap();
    let sealings: Vec<Sealing> = outcomes.iter().map(|outcome| outcome.sealing).collect();
    assert_eq!(sealings, [Sealing::Smime, Sealing::Clear]);
    assert!(outcomes[0].result.is_ok(), "{:?}", outcomes[0].result);
    let clear = &outcomes[1];
    assert!(
        matches!(
            clear.result.as_ref().map_err(AsRef::as_ref),
            Err(SessionError::Outbox(OutboxError::Held(_)))
        ),
        "{:?}",
        clear.result
    );
    assert_eq!(wait_for(&thread, &thread.insurer, &third), 1);
    assert_eq!(thread.delivered(colleague, &third), 0);

    // Session::resend and Session::flush_outbox, the Outbox screen's and
    // `wardmail outbox --retry`'s paths.
    held(session.resend(clear.outbox, false).await);
    let flushed = session.flush_outbox().await.unwrap();
    assert_eq!(flushed.len(), 3, "{flushed:?}");
    for (id, outcome) in &flushed {
        assert!(
            matches!(outcome, Err(OutboxError::Held(_))),
            "entry {id}: {outcome:?}"
        );
    }

    // A typed override, as the composer records it, lets the held group
    // go; sending without the quoted text lets the first message go.
    let mut allowed = thread.plan_for(&[(colleague, "internal")]);
    allowed.choices.push(FloorChoice {
        address: colleague.to_owned(),
        below: stopped.recipients[0].why.clone(),
        choice: Choice::Override,
    });
    allowed.override_reason = Some("Colleague is on the ward without a certificate".into());
    wardmail::audit::save_plan(&session.store, clear.outbox, &allowed).unwrap();
    session.resend(clear.outbox, false).await.unwrap();
    assert_eq!(wait_for(&thread, colleague, &third), 1);

    let entries = thread.audit();
    let last = entries.last().unwrap();
    assert_eq!(last.outcome, "accepted");
    assert_eq!(last.message_id.as_deref(), Some(third.as_str()));
    assert_eq!(
        last.override_reason.as_deref(),
        Some("Colleague is on the ward without a certificate")
    );
    let choice = &last.details["reply-guard"];
    assert!(
        choice.contains(colleague) && choice.contains("sent anyway"),
        "{choice}"
    );
    let refusals = entries
        .iter()
        .filter(|entry| {
            entry.outcome == "failed"
                && entry
                    .details
                    .get("error")
                    .is_some_and(|error| error.contains("held by the reply guard"))
        })
        .count();
    assert_eq!(
        refusals, 7,
        "two sends, one group, a resend and three flushed"
    );

    let mut without_quote = thread.plan_for(&[]);
    without_quote.choices.push(FloorChoice {
        address: colleague.to_owned(),
        below: String::new(),
        choice: Choice::WithoutQuote,
    });
    let first_id = session
        .store
        .outbox(&session.account.id)
        .unwrap()
        .into_iter()
        .find(|entry| entry.message_id == first)
        .map(|entry| entry.id)
        .unwrap();
    wardmail::audit::save_plan(&session.store, first_id, &without_quote).unwrap();
    session.resend(first_id, false).await.unwrap();
    assert_eq!(wait_for(&thread, colleague, &first), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_reply_draft_stored_encrypted() {
    let thread = thread("guard-draft").await;
    let message_id = new_message_id("example.org");
    let draft = Draft {
        from: Address::new(None, &thread.me),
        to: vec![Address::new(None, &thread.colleague)],
        subject: "Re: Claim 7".to_owned(),
        body: format!("Draft answer.\n\n> {SECRET_TEXT}\n"),
        in_reply_to: Some(thread.original_id.clone()),
        ..Draft::default()
    };
    let raw = thread
        .session
        .build_private_draft(draft, message_id.clone(), now(), Method::Smime)
        .await
        .unwrap();
    // The folder list, with the Drafts role, comes from a sync.
    thread.session.sync(&|_| {}).await.unwrap();
    thread.session.save_draft(&raw).await.unwrap();

    let user = Thread::user(&thread.me);
    let bare = message_id.trim_matches(['<', '>']);
    let stored: Vec<Vec<u8>> = support::raw_messages(user, "Drafts")
        .into_iter()
        .filter(|raw| String::from_utf8_lossy(raw).contains(bare))
        .collect();
    assert_eq!(stored.len(), 1, "one draft on the server");
    let stored = &stored[0];
    assert!(
        guard::is_encrypted(stored),
        "the draft on the server is encrypted"
    );
    let text = String::from_utf8_lossy(stored);
    assert!(!text.contains("Creatinine"), "{text}");
    assert!(!text.contains("Draft answer"), "{text}");
    let opened = thread
        .pki
        .decrypt("me", stored)
        .expect("the user decrypts it");
    assert!(opened.contains("Draft answer."), "{opened}");
    assert!(
        thread.pki.decrypt("insurer", stored).is_none(),
        "encrypted to the user alone"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn forward_as_attachment_reencrypts_original() {
    let thread = thread("guard-fwd").await;
    let report = thread
        .session
        .inspect(thread.original.clone())
        .await
        .unwrap();
    let inner = report.inner_mime.clone().expect("decrypted");
    let parsed =
        wardmail::message::parse_inner(&wardmail::message::parse(&thread.original), &inner);
    let me = Address::new(None, &thread.me);
    let attached = compose::decrypted_original(&thread.original, &inner);
    let mut draft = compose::forward_as_attachment(&attached, &parsed, &me);
    draft.to = vec![Address::new(None, &thread.insurer)];
    assert_eq!(draft.references, std::slice::from_ref(&thread.original_id));

    let message_id = new_message_id("example.org");
    let raw = thread
        .session
        .build_protected(
            draft,
            message_id,
            now(),
            Method::Smime,
            wardmail::protected::Protection {
                sign: true,
                encrypt: true,
            },
        )
        .await
        .unwrap();
    assert!(guard::is_encrypted(&raw));
    let opened = thread
        .pki
        .decrypt("insurer", &raw)
        .expect("the new recipient decrypts the forward");
    assert!(opened.contains("message/rfc822"), "{opened}");
    assert!(opened.contains("Claim 7"), "{opened}");
    // The attachment contains the original in clear, within the forward's
    // encryption, so the new recipient can read it.
    assert!(
        opened.contains("Creatinine 412") || opened.contains("Q3JlYXRpbmluZSA0MTI"),
        "{opened}"
    );
}

#[test]
fn only_the_outbox_submits() {
    // The gate runs inside `outbox::send`, right before `smtp::submit`.
    // Any other caller of `smtp::submit`, or any other use of lettre's
    // transport, would be a send path that skips it.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut submitters = Vec::new();
    let mut transports = Vec::new();
    visit(&root, &mut |path, text| {
        let name = path.strip_prefix(&root).unwrap().display().to_string();
        if text.contains("smtp::submit(") || text.contains("smtp::{submit") {
            submitters.push(name.clone());
        }
        if text.contains("AsyncSmtpConnection") || text.contains("SmtpTransport") {
            transports.push(name);
        }
    });
    assert_eq!(submitters, ["outbox.rs"]);
    assert_eq!(transports, ["smtp.rs"]);

    let outbox = std::fs::read_to_string(root.join("outbox.rs")).unwrap();
    let send = &outbox[outbox.find("pub async fn send(").unwrap()..];
    let gate = send.find("hold_below_floor(").unwrap();
    let submit = send.find("smtp::submit(").unwrap();
    assert!(gate < submit, "the gate runs before submission");

    // Every way the window and the command line send reaches the outbox
    // through these session methods, each of which ends in outbox::send.
    let session = std::fs::read_to_string(root.join("session.rs")).unwrap();
    for method in ["send_with_audit", "resend", "flush_outbox"] {
        let body = &session[session.find(&format!("pub async fn {method}(")).unwrap()..];
        let end = body.find("\n    }\n").unwrap();
        assert!(
            body[..end].contains("outbox::send(") || body[..end].contains("outbox::flush("),
            "{method} reaches the outbox"
        );
    }
}

fn visit(dir: &Path, each: &mut dyn FnMut(&Path, &str)) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            visit(&path, each);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            each(&path, &std::fs::read_to_string(&path).unwrap());
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_reply_without_own_key_refused() {
    // The original was read elsewhere. This profile has the insurer's
    // certificate but no identity of its own.
    let thread = thread("guard-nokey").await;
    let user = support::user("guard-nokey-2");
    let (_profile, session) = support::session(support::account(&user)).await;
    let session = Arc::new(session);
    session
        .import_smime_certificates(thread.pki.read("insurer.pem"))
        .await
        .unwrap();
    let report = session.inspect(thread.original.clone()).await.unwrap();
    assert!(!report.decrypted);
    let arrival = session
        .stored_arrival(thread.original_id.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(arrival.encrypted, Some(ArrivalEncryption::Smime));

    let known = session
        .recipient_capabilities(vec![thread.insurer.clone()])
        .await
        .unwrap();
    let plan = route::plan(
        &Routing::default(),
        &["example.org".to_owned()],
        Sensitivity::Phi,
        &known,
    );
    let me = format!("{user}@example.org");
    let draft = Draft {
        from: Address::new(None, &me),
        to: vec![Address::new(None, &thread.insurer)],
        subject: "Re: Claim 7".to_owned(),
        body: "Received, thank you.\n".to_owned(),
        in_reply_to: Some(thread.original_id.clone()),
        ..Draft::default()
    };
    let message_id = new_message_id("example.org");
    let error = session
        .send_planned(
            draft,
            message_id.clone(),
            now(),
            &plan,
            Some(Method::Smime),
            thread.plan_for(&[(&thread.insurer, "smime")]),
        )
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("no S/MIME identity"), "{text}");
    assert!(
        session
            .store
            .outbox(&session.account.id)
            .unwrap()
            .is_empty(),
        "nothing was queued"
    );
    assert_eq!(thread.delivered(&thread.insurer, &message_id), 0);
}
