//! Sending one copy per method group through the real Postfix and Dovecot.
//! A PHI message to an OpenPGP recipient, an S/MIME recipient, an internal
//! colleague and a Bcc recipient arrives as four copies, and gpg or openssl
//! reads each one in its mailbox. A group that Postfix rejects stays in the
//! outbox alone, and retrying it resends nothing else.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::gnupg::Gnupg;
use support::pki::Pki;
use wardmail::audit::{AuditDraft, PlannedRecipient};
use wardmail::compose::{Draft, new_message_id};
use wardmail::message::Address;
use wardmail::openpgp::Suite;
use wardmail::route::{self, Method as RouteMethod, RoutePlan, Routing, Sealing, Sensitivity};
use wardmail::secret::Secret;
use wardmail::session::{Method, Session};
use wardmail::smtp::SmtpError;

const PASSPHRASE: &str = "peer-passphrase";
const BODY: &str = "Potassium 5.9 mmol/l, please repeat.\n";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Creates a gpg home with a key for `address` and imports its public key
/// into the session.
async fn correspondent(session: &Session, address: &str) -> Gnupg {
    let gpg = Gnupg::new();
    gpg.create_key(address, PASSPHRASE);
    let public = gpg.run(&["--armor", "--export", address], b"");
    session.import_openpgp(public).await.unwrap();
    gpg
}

/// Decrypts the PGP/MIME message in `raw` with `gpg`; `None` when it
/// cannot.
fn gpg_decrypt(gpg: &Gnupg, raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let start = text.find("-----BEGIN PGP MESSAGE-----")?;
    let end = text.find("-----END PGP MESSAGE-----")? + "-----END PGP MESSAGE-----".len();
    // The sender's signing key is not in this keyring, so gpg exits with an
    // error after decrypting. The DECRYPTION_OKAY status line shows success.
    let (_, plaintext, status) = gpg.try_run(
        &[
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            PASSPHRASE,
            "--decrypt",
        ],
        text[start..end].as_bytes(),
    );
    status
        .contains("[GNUPG:] DECRYPTION_OKAY")
        .then(|| String::from_utf8_lossy(&plaintext).into_owned())
}

/// Returns the outer header section of a delivered message.
fn header_section(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    text.split("\n\n").next().unwrap_or_default().to_owned()
}

/// Returns the unfolded value of the first outer field `name`.
fn field(raw: &[u8], name: &str) -> Option<String> {
    let header = header_section(raw).replace("\n ", " ").replace("\n\t", " ");
    header.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

/// Returns the one message in `user`'s INBOX with `message_id`.
fn delivered(user: &str, message_id: &str) -> Vec<u8> {
    let bare = message_id.trim_matches(['<', '>']);
    let found: Vec<Vec<u8>> = support::raw_messages(user, "INBOX")
        .into_iter()
        .filter(|raw| String::from_utf8_lossy(raw).contains(bare))
        .collect();
    assert_eq!(found.len(), 1, "{user} should hold exactly one copy");
    found.into_iter().next().unwrap()
}

/// Plans the routes as the composer does, from what the session holds.
async fn plan_for(
    session: &Arc<Session>,
    sensitivity: Sensitivity,
    addresses: &[String],
) -> RoutePlan {
    let known = session
        .recipient_capabilities(addresses.to_vec())
        .await
        .unwrap();
    route::plan(
        &Routing::default(),
        &["example.org".to_owned()],
        sensitivity,
        &known,
    )
}

fn audit_for(plan: &RoutePlan) -> AuditDraft {
    AuditDraft {
        recipients: plan
            .routes
            .iter()
            .map(|route| PlannedRecipient {
                address: route.address.clone(),
                method: format!("{:?}", route.method),
                evidence: route.reason.clone(),
            })
            .collect(),
        decision: "allowed by the test".to_owned(),
        override_reason: None,
        choices: Vec::new(),
    }
}

fn draft(from: &str, to: &[&str], cc: &[&str], bcc: &[&str]) -> Draft {
    let list = |addresses: &[&str]| addresses.iter().map(|a| Address::new(None, a)).collect();
    Draft {
        from: Address::new(None, from),
        to: list(to),
        cc: list(cc),
        bcc: list(bcc),
        subject: "Befund Zimmer 3".into(),
        body: BODY.into(),
        ..Draft::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mixed_methods_each_copy_checked() {
    let names = [
        "split-me",
        "split-pgp",
        "split-smime",
        "split-int",
        "split-bcc",
    ];
    let [me, pgp, smime, colleague, hidden] = names.map(support::user);
    let address = |user: &str| format!("{user}@example.org");
    let (pgp_at, smime_at, colleague_at, hidden_at) = (
        address(&pgp),
        address(&smime),
        address(&colleague),
        address(&hidden),
    );

    let (_profile, session) = support::session(support::account(&me)).await;
    let session = Arc::new(session);
    session
        .generate_openpgp(Suite::Cv25519, Some(Duration::from_secs(86_400)))
        .await
        .unwrap();
    let pki = Pki::new("/CN=Wardmail Split Test CA");
    for (name, user) in [("me", &me), ("smime", &smime), ("outsider", &colleague)] {
        pki.issue(name, &address(user));
    }
    session
        .import_pkcs12(pki.read("me.p12"), Secret::new("secret"))
        .await
        .unwrap();
    session.import_ca(pki.read("ca.pem")).await.unwrap();
    session
        .import_smime_certificates(pki.read("smime.pem"))
        .await
        .unwrap();
    let pgp_gpg = correspondent(&session, &pgp_at).await;
    let hidden_gpg = correspondent(&session, &hidden_at).await;

    let recipients = [
        pgp_at.clone(),
        smime_at.clone(),
        colleague_at.clone(),
        hidden_at.clone(),
    ];
    let plan = plan_for(&session, Sensitivity::Phi, &recipients).await;
    let methods: Vec<Option<RouteMethod>> = plan.routes.iter().map(|r| r.method).collect();
    assert_eq!(
        methods,
        [
            Some(RouteMethod::Openpgp),
            Some(RouteMethod::Smime),
            Some(RouteMethod::Internal),
            Some(RouteMethod::Openpgp),
        ]
    );
    assert_eq!(plan.sealing(), None);

    let message_id = new_message_id("example.org");
    let message = draft(
        &session.account.address,
        &[&pgp_at, &smime_at],
        &[&colleague_at],
        &[&hidden_at],
    );
    let outcomes = session
        .send_planned(
            message,
            message_id.clone(),
            now(),
            &plan,
            Some(Method::Openpgp),
            audit_for(&plan),
        )
        .await
        .unwrap();
    let shape: Vec<(Sealing, bool, usize)> = outcomes
        .iter()
        .map(|o| (o.sealing, o.bcc, o.recipients.len()))
        .collect();
    assert_eq!(
        shape,
        [
            (Sealing::Openpgp, false, 1),
            (Sealing::Smime, false, 1),
            (Sealing::Clear, false, 1),
            (Sealing::Openpgp, true, 1),
        ]
    );
    for outcome in &outcomes {
        assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    }

    let pgp_copy = delivered(&pgp, &message_id);
    let smime_copy = delivered(&smime, &message_id);
    let colleague_copy = delivered(&colleague, &message_id);
    let hidden_copy = delivered(&hidden, &message_id);

    // The OpenPGP copy: its recipient reads it, the Bcc recipient cannot.
    let pgp_plain = gpg_decrypt(&pgp_gpg, &pgp_copy).expect("the OpenPGP recipient decrypts");
    assert!(pgp_plain.contains("Potassium 5.9"), "{pgp_plain}");
    assert!(!pgp_plain.contains(&hidden_at), "{pgp_plain}");
    assert!(gpg_decrypt(&hidden_gpg, &pgp_copy).is_none());

    // The S/MIME copy: its recipient reads it, a certificate of the same CA
    // for someone else does not.
    assert!(header_section(&smime_copy).contains("application/pkcs7-mime"));
    let smime_plain = pki
        .decrypt("smime", &smime_copy)
        .expect("the S/MIME recipient decrypts");
    assert!(smime_plain.contains("hp=\"cipher\""), "{smime_plain}");
    assert!(!smime_plain.contains(&hidden_at), "{smime_plain}");
    assert!(pki.decrypt("outsider", &smime_copy).is_none());
    assert!(gpg_decrypt(&pgp_gpg, &smime_copy).is_none());

    // The internal copy is in clear, signed with OpenPGP.
    let colleague_text = String::from_utf8_lossy(&colleague_copy).into_owned();
    assert!(
        colleague_text.contains("multipart/signed"),
        "{colleague_text}"
    );
    assert!(colleague_text.contains("Potassium 5.9"), "{colleague_text}");

    // The Bcc copy: its recipient reads it, the To recipient cannot.
    let hidden_plain = gpg_decrypt(&hidden_gpg, &hidden_copy).expect("the Bcc recipient decrypts");
    assert!(hidden_plain.contains("Potassium 5.9"), "{hidden_plain}");
    assert!(gpg_decrypt(&pgp_gpg, &hidden_copy).is_none());

    // Every copy shows the same To and Cc, and none shows a Bcc field or
    // the Bcc recipient outside the Bcc recipient's own envelope.
    let copies = [&pgp_copy, &smime_copy, &colleague_copy, &hidden_copy];
    for copy in copies {
        let to = field(copy, "To").unwrap();
        let cc = field(copy, "Cc").unwrap();
        assert!(to.contains(&pgp_at), "{to}");
        assert!(to.contains(&smime_at), "{to}");
        assert_eq!(to, field(&pgp_copy, "To").unwrap());
        assert_eq!(cc, field(&pgp_copy, "Cc").unwrap());
        assert_eq!(field(copy, "Message-ID"), field(&pgp_copy, "Message-ID"));
        assert_eq!(field(copy, "Bcc"), None);
    }
    for copy in [&pgp_copy, &smime_copy, &colleague_copy] {
        let text = String::from_utf8_lossy(copy);
        assert!(!text.contains(&hidden_at), "a copy names the Bcc: {text}");
    }
    assert!(!colleague_text.contains(&hidden_at));

    assert_eq!(
        support::count_message_id(&me, "Sent", message_id.trim_matches(['<', '>'])),
        1
    );
    assert!(
        session
            .store
            .outbox(&session.account.id)
            .unwrap()
            .is_empty()
    );

    let sends: Vec<Vec<String>> = wardmail::audit::list(&session.store)
        .unwrap()
        .into_iter()
        .filter(|record| record.entry.message_id.as_deref() == Some(message_id.as_str()))
        .map(|record| {
            assert_eq!(record.entry.outcome, "accepted");
            record
                .entry
                .recipients
                .iter()
                .map(|r| r.address.clone())
                .collect()
        })
        .collect();
    assert_eq!(
        sends,
        [
            vec![pgp_at.clone()],
            vec![smime_at.clone()],
            vec![colleague_at.clone()],
            vec![hidden_at.clone()],
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_group_alone_stays_queued() {
    let [me, pgp] = ["split-fail-me", "split-fail-pgp"].map(support::user);
    let pgp_at = format!("{pgp}@example.org");
    let elsewhere = "lab@elsewhere.test".to_owned();
    let (_profile, session) = support::session(support::account(&me)).await;
    let session = Arc::new(session);
    session
        .generate_openpgp(Suite::Cv25519, Some(Duration::from_secs(86_400)))
        .await
        .unwrap();
    let gpg = correspondent(&session, &pgp_at).await;

    let plan = plan_for(
        &session,
        Sensitivity::Routine,
        &[pgp_at.clone(), elsewhere.clone()],
    )
    .await;
    let message_id = new_message_id("example.org");
    let message = draft(&session.account.address, &[&pgp_at, &elsewhere], &[], &[]);
    let outcomes = session
        .send_planned(
            message,
            message_id.clone(),
            now(),
            &plan,
            None,
            audit_for(&plan),
        )
        .await
        .unwrap();

    assert_eq!(outcomes.len(), 2);
    assert!(outcomes[0].result.is_ok(), "{:?}", outcomes[0].result);
    let failure = outcomes[1].result.as_ref().unwrap_err();
    assert!(failure.to_string().contains("elsewhere.test"), "{failure}");
    assert_eq!(outcomes[1].recipients, std::slice::from_ref(&elsewhere));
    let copy = delivered(&pgp, &message_id);
    assert!(gpg_decrypt(&gpg, &copy).is_some());

    let queued = session.store.outbox(&session.account.id).unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].recipients, std::slice::from_ref(&elsewhere));
    assert_eq!(queued[0].message_id, message_id);
    assert!(!queued[0].sent_copy);

    let retry = session.resend(queued[0].id, false).await;
    assert!(retry.is_err());
    session.flush_outbox().await.unwrap();
    delivered(&pgp, &message_id);
    assert_eq!(session.store.outbox(&session.account.id).unwrap().len(), 1);
    assert_eq!(
        support::count_message_id(&me, "Sent", message_id.trim_matches(['<', '>'])),
        1
    );

    let failed_attempts = wardmail::audit::list(&session.store)
        .unwrap()
        .into_iter()
        .filter(|record| record.entry.message_id.as_deref() == Some(message_id.as_str()))
        .filter(|record| record.entry.outcome == "failed")
        .inspect(|record| assert_eq!(record.entry.recipients.len(), 1))
        .count();
    assert_eq!(failed_attempts, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn requiretls_parameter_refused_not_dropped() {
    // Postfix 3.7 does not implement REQUIRETLS, so it rejects the MAIL
    // parameter: the message must fail rather than go without it.
    let user = support::user("split-requiretls");
    let account = support::account(&user);
    let (_profile, session) = support::session(account.clone()).await;
    let raw = support::message(&account.address, &account.address, "t", "rtls@example.org");

    let result = wardmail::smtp::submit(
        &account,
        &support::password(),
        session.tls(),
        &account.address,
        std::slice::from_ref(&account.address),
        &raw,
        true,
    )
    .await;

    let error = result.unwrap_err();
    assert!(matches!(error, SmtpError::Refused { .. }), "{error}");
    assert!(error.certainly_not_sent());
    assert!(support::uids(&user, "INBOX").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn requiretls_group_carries_parameter() {
    // The aiosmtpd submission server offers REQUIRETLS and records whether
    // MAIL FROM carried it; a copy routed by enforced TLS must carry it.
    let user = support::user("split-rtls-ok");
    let mut account = support::account(&user);
    account.smtp.port = support::port("SMTP_REQUIRETLS_PORT");
    let (_profile, session) = support::session(account.clone()).await;
    let session = Arc::new(session);
    let recipient = "ward@enforce.test".to_owned();
    let mut enforced = route::Capabilities::unknown(&recipient);
    enforced.tls = route::TlsClass::Enforced;
    enforced.tls_evidence = "MTA-STS enforce".into();
    let plan = route::plan(
        &Routing::default(),
        &["example.org".to_owned()],
        Sensitivity::Phi,
        &[enforced],
    );
    assert_eq!(plan.routes[0].method, Some(RouteMethod::Tls));
    let message_id = new_message_id("example.org");

    let outcomes = session
        .send_planned(
            draft(&account.address, &[&recipient], &[], &[]),
            message_id.clone(),
            now(),
            &plan,
            None,
            audit_for(&plan),
        )
        .await
        .unwrap();

    assert_eq!(outcomes.len(), 1);
    assert!(outcomes[0].result.is_ok(), "{:?}", outcomes[0].result);
    let spool = std::path::PathBuf::from(support::env("DIR")).join("requiretls-spool");
    let bare = message_id.trim_matches(['<', '>']);
    let stored: Vec<String> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .filter(|text| text.contains(bare))
        .collect();
    assert_eq!(stored.len(), 1, "one copy at the REQUIRETLS server");
    assert!(
        stored[0].starts_with("X-Test-Requiretls: yes\r\n"),
        "{}",
        stored[0]
    );
    assert!(
        stored[0].contains("X-Test-Rcpt: ward@enforce.test"),
        "{}",
        stored[0]
    );
}
