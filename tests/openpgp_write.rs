//! Writing OpenPGP mail and managing keys, checked with GnuPG as the peer:
//! a key Wardmail generates is usable by gpg, mail Wardmail encrypts and
//! signs is decrypted and verified by gpg after travelling through the
//! real Postfix and Dovecot, the sender can read its own copy, a
//! passphrase-protected key must be unlocked, a changed key is held back,
//! and a revoked key stops signing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

mod support;

use support::gnupg::Gnupg;
use wardmail::compose::{Draft, new_message_id};
use wardmail::message::Address;
use wardmail::openpgp::{OpenpgpError, Suite};
use wardmail::protected::Protection;
use wardmail::protection::{Encryption, Refusal, SignatureStatus};
use wardmail::secret::Secret;
use wardmail::session::{Method, Session, SessionError};

const SIGN_AND_ENCRYPT: Protection = Protection {
    sign: true,
    encrypt: true,
};

async fn open(base: &str) -> (tempfile::TempDir, Arc<Session>, String) {
    let user = support::user(base);
    let (dir, session) = support::session(support::account(&user)).await;
    (dir, Arc::new(session), user)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn draft(session: &Session, to: &str, subject: &str) -> Draft {
    Draft {
        from: Address::new(None, &session.account.address),
        to: vec![Address::new(None, to)],
        subject: subject.into(),
        body: "Potassium 5.9 mmol/l, please repeat.\n".into(),
        ..Draft::default()
    }
}

/// gpg for a correspondent whose public key the session imports.
async fn correspondent(session: &Session, address: &str) -> Gnupg {
    let gpg = Gnupg::new();
    gpg.create_key(address, "peer-passphrase");
    let public = gpg.run(&["--armor", "--export", address], b"");
    session.import_openpgp(public).await.unwrap();
    gpg
}

#[tokio::test]
async fn encrypted_mail_gnupg_and_sender() {
    let (_dir, session, _) = open("pgpw-send").await;
    let own = session
        .generate_openpgp(Suite::Cv25519, Some(Duration::from_secs(86_400 * 30)))
        .await
        .unwrap();
    assert!(own.can_sign);
    assert!(own.can_encrypt);
    assert!(own.expires.is_some());

    let peer_user = support::user("pgpw-peer");
    let peer = format!("{peer_user}@example.org");
    let gpg = correspondent(&session, &peer).await;
    let exported = session
        .export_openpgp(own.fingerprint.clone())
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&exported).contains("PRIVATE KEY"));
    gpg.run(&["--import"], &exported);

    let message_id = new_message_id("example.org");
    let raw = session
        .build_protected(
            draft(&session, &peer, "Befund Zimmer 3"),
            message_id.clone(),
            now(),
            Method::Openpgp,
            SIGN_AND_ENCRYPT,
        )
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("Subject: [...]"), "{text}");
    assert!(!text.contains("Zimmer"), "the subject leaked: {text}");
    assert!(text.contains("multipart/encrypted"), "{text}");

    session
        .send(message_id.clone(), raw.clone(), vec![peer.clone()])
        .await
        .unwrap();
    let delivered = support::raw_messages(&peer_user, "INBOX");
    assert_eq!(delivered.len(), 1);

    let armored = armored_block(&delivered[0]);
    let loopback = [
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "peer-passphrase",
    ];
    let (ok, plaintext, status) = gpg.try_run(
        &[&loopback[..], &["--decrypt"]].concat(),
        armored.as_bytes(),
    );
    assert!(ok, "gpg could not decrypt: {status}");
    assert!(status.contains("[GNUPG:] GOODSIG"), "{status}");
    assert!(status.contains(&own.fingerprint), "{status}");
    let plaintext = String::from_utf8_lossy(&plaintext);
    assert!(
        plaintext.contains("Subject: Befund Zimmer 3"),
        "{plaintext}"
    );
    assert!(plaintext.contains("hp=\"cipher\""), "{plaintext}");
    assert!(plaintext.contains("Potassium 5.9"), "{plaintext}");

    // The sender's own copy decrypts with the sender's key.
    let report = session.inspect(raw).await.unwrap();
    assert_eq!(report.encrypted, Encryption::Openpgp);
    assert!(report.decrypted, "{report:?}");
    assert_eq!(report.signatures.len(), 1);
    assert_eq!(report.signatures[0].status, SignatureStatus::Good);
    assert!(report.signatures[0].signer_matches_from);
}

/// Returns the armored OpenPGP message inside a delivered message.
fn armored_block(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let start = text.find("-----BEGIN PGP MESSAGE-----").expect("armor");
    let end = text.find("-----END PGP MESSAGE-----").expect("armor end");
    text[start..end + "-----END PGP MESSAGE-----".len()].to_string()
}

#[tokio::test]
async fn signed_mail_verifies_in_gnupg() {
    let (_dir, session, _) = open("pgpw-sign").await;
    let own = session
        .generate_openpgp(Suite::Rsa4096, None)
        .await
        .unwrap();
    assert!(own.algorithm.contains("4096"), "{}", own.algorithm);
    assert_eq!(own.expires, None);
    let gpg = Gnupg::new();
    gpg.run(
        &["--import"],
        &session
            .export_openpgp(own.fingerprint.clone())
            .await
            .unwrap(),
    );

    let raw = session
        .build_protected(
            draft(&session, "lab@example.org", "Signed only, ümlaut"),
            new_message_id("example.org"),
            now(),
            Method::Openpgp,
            Protection {
                sign: true,
                encrypt: false,
            },
        )
        .await
        .unwrap();

    let (content, signature) = split_signed(&raw);
    let dir = tempfile::tempdir().unwrap();
    let content_path = dir.path().join("content");
    let signature_path = dir.path().join("signature.asc");
    std::fs::write(&content_path, &content).unwrap();
    std::fs::write(&signature_path, &signature).unwrap();
    let (ok, _, status) = gpg.try_run(
        &[
            "--verify",
            signature_path.to_str().unwrap(),
            content_path.to_str().unwrap(),
        ],
        b"",
    );
    assert!(ok, "{status}");
    assert!(status.contains("[GNUPG:] GOODSIG"), "{status}");
    assert!(String::from_utf8_lossy(&content).contains("hp=\"clear\""));

    let report = session.inspect(raw).await.unwrap();
    assert_eq!(report.signatures[0].status, SignatureStatus::Good);
}

/// Splits a multipart/signed message into its signed part (exact bytes)
/// and its armored signature.
fn split_signed(raw: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let text = String::from_utf8(raw.to_vec()).unwrap();
    let marker = "boundary=\"";
    let start = text.find(marker).unwrap() + marker.len();
    let boundary = &text[start..start + text[start..].find('"').unwrap()];
    let delimiter = format!("\r\n--{boundary}");
    let first = text.find(&format!("--{boundary}\r\n")).unwrap() + boundary.len() + 4;
    let end = first + text[first..].find(&delimiter).unwrap();
    let content = text.as_bytes()[first..end].to_vec();
    let sig_start = text.find("-----BEGIN PGP SIGNATURE-----").unwrap();
    let sig_end = text.find("-----END PGP SIGNATURE-----").unwrap() + 27;
    (content, text.as_bytes()[sig_start..sig_end].to_vec())
}

#[tokio::test]
async fn locked_key_needs_unlock() {
    let (_dir, session, user) = open("pgpw-lock").await;
    let address = format!("{user}@example.org");
    let gpg = Gnupg::new();
    let secret = gpg.create_key(&address, "correct horse");
    session.import_openpgp(secret).await.unwrap();

    // Mail to the user, encrypted by gpg to the user's key.
    let armored = gpg.run(
        &["--armor", "--encrypt", "--recipient", &address],
        b"Content-Type: text/plain\r\n\r\nlocked content\r\n",
    );
    let mut message = format!(
        "From: {address}\r\nTo: {address}\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; \
         boundary=\"b\"\r\n\r\n--b\r\nContent-Type: application/pgp-encrypted\r\n\r\n\
         Version: 1\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    message.extend_from_slice(&armored);
    message.extend_from_slice(b"\r\n--b--\r\n");

    let report = session.inspect(message.clone()).await.unwrap();
    assert_eq!(report.refused, Some(Refusal::KeyLocked));
    let fingerprint = report
        .locked_keys
        .first()
        .cloned()
        .expect("locked key named");

    let signing = session
        .build_protected(
            draft(&session, &address, "x"),
            new_message_id("example.org"),
            0,
            Method::Openpgp,
            Protection {
                sign: true,
                encrypt: false,
            },
        )
        .await;
    assert!(
        matches!(
            signing,
            Err(SessionError::Openpgp(OpenpgpError::KeyLocked { .. }))
        ),
        "{signing:?}"
    );

    let wrong = session
        .unlock_openpgp(fingerprint.clone(), Secret::new("wrong"))
        .await;
    assert!(
        matches!(
            wrong,
            Err(SessionError::Openpgp(OpenpgpError::WrongPassphrase { .. }))
        ),
        "{wrong:?}"
    );
    session
        .unlock_openpgp(fingerprint.clone(), Secret::new("correct horse"))
        .await
        .unwrap();

    let report = session.inspect(message.clone()).await.unwrap();
    assert!(report.decrypted, "{report:?}");
    assert!(report.locked_keys.is_empty());
    let keys = session.openpgp_keys().await.unwrap();
    let key = keys
        .iter()
        .find(|k| k.info.fingerprint == fingerprint)
        .expect("the unlocked key is listed");
    assert!(key.unlocked);

    session.lock_openpgp();
    let report = session.inspect(message).await.unwrap();
    assert_eq!(report.refused, Some(Refusal::KeyLocked));
}

#[tokio::test]
async fn autocrypt_key_change_held_back() {
    let (_dir, session, _) = open("pgpw-change").await;
    session
        .generate_openpgp(Suite::Cv25519, None)
        .await
        .unwrap();
    let peer = format!("{}@example.org", support::user("pgpw-lab"));
    let _old = correspondent(&session, &peer).await;

    // The lab's mail now announces another key through Autocrypt.
    let new = Gnupg::new();
    new.create_key(&peer, "other");
    let keydata = new.run(&["--export", &peer], b"");
    let header = wardmail::autocrypt::header_field(&peer, true, &keydata);
    let incoming = format!(
        "From: {peer}\r\nTo: me@example.org\r\nSubject: hi\r\n\
         Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n{header}\r\nhello\r\n"
    );
    session.inspect(incoming.into_bytes()).await.unwrap();

    let keys = session.openpgp_keys().await.unwrap();
    let changed: Vec<_> = keys.iter().filter(|k| k.replaces.is_some()).collect();
    assert_eq!(changed.len(), 1, "{keys:#?}");
    assert_eq!(changed[0].source, "autocrypt");
    let peers = session.autocrypt_peers().await.unwrap();
    assert_eq!(peers.len(), 1);
    assert!(peers[0].prefer_encrypt);

    // Encryption still uses the old key, not the announced one.
    let raw = session
        .build_protected(
            draft(&session, &peer, "x"),
            new_message_id("example.org"),
            0,
            Method::Openpgp,
            SIGN_AND_ENCRYPT,
        )
        .await
        .unwrap();
    let loopback = ["--pinentry-mode", "loopback", "--passphrase", "other"];
    let (_, _, status) = new.try_run(
        &[&loopback[..], &["--decrypt"]].concat(),
        armored_block(&raw).as_bytes(),
    );
    assert!(
        !status.contains("DECRYPTION_OKAY"),
        "the unaccepted key could decrypt: {status}"
    );

    let fingerprint = changed[0].info.fingerprint.clone();
    session.accept_openpgp(fingerprint).await.unwrap();
    let raw = session
        .build_protected(
            draft(&session, &peer, "x"),
            new_message_id("example.org"),
            0,
            Method::Openpgp,
            SIGN_AND_ENCRYPT,
        )
        .await
        .unwrap();
    let (_, _, status) = new.try_run(
        &[&loopback[..], &["--decrypt"]].concat(),
        armored_block(&raw).as_bytes(),
    );
    assert!(
        status.contains("[GNUPG:] DECRYPTION_OKAY"),
        "the accepted key could not decrypt: {status}"
    );
}

#[tokio::test]
async fn missing_key_and_bcc_rejected() {
    let (_dir, session, _) = open("pgpw-refuse").await;
    session
        .generate_openpgp(Suite::Cv25519, None)
        .await
        .unwrap();

    let result = session
        .build_protected(
            draft(&session, "nokey@example.org", "x"),
            new_message_id("example.org"),
            0,
            Method::Openpgp,
            SIGN_AND_ENCRYPT,
        )
        .await;
    let text = result.unwrap_err().to_string();
    assert!(text.contains("nokey@example.org"), "{text}");
    assert!(text.contains("import"), "{text}");

    let mut with_bcc = draft(&session, &session.account.address, "x");
    with_bcc.bcc = vec![Address::new(None, "hidden@example.org")];
    let text = session
        .build_protected(
            with_bcc,
            new_message_id("example.org"),
            0,
            Method::Openpgp,
            SIGN_AND_ENCRYPT,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(text.contains("Bcc"), "{text}");
}

#[tokio::test]
async fn revoked_key_stops_signing() {
    let (_dir, session, _) = open("pgpw-revoke").await;
    let own = session
        .generate_openpgp(Suite::Cv25519, None)
        .await
        .unwrap();
    let revoked = session
        .revoke_openpgp(own.fingerprint.clone())
        .await
        .unwrap();
    assert!(revoked.revoked);
    assert!(!revoked.can_sign);
    assert!(!revoked.can_encrypt);

    let signing = session
        .build_protected(
            draft(&session, "lab@example.org", "x"),
            new_message_id("example.org"),
            0,
            Method::Openpgp,
            Protection {
                sign: true,
                encrypt: false,
            },
        )
        .await;
    assert!(signing.is_err(), "a revoked key signed");

    let gpg = Gnupg::new();
    gpg.run(
        &["--import"],
        &session
            .export_openpgp(own.fingerprint.clone())
            .await
            .unwrap(),
    );
    let (_, listing, _) = gpg.try_run(&["--with-colons", "--list-keys"], b"");
    let listing = String::from_utf8_lossy(&listing);
    assert!(
        listing.lines().any(|l| l.starts_with("pub:r:")),
        "{listing}"
    );
}

#[tokio::test]
async fn mixed_message_read_apart() {
    let (_dir, session, _) = open("pgpw-mixed").await;
    let lab = format!("{}@example.org", support::user("pgpw-mixlab"));
    let gpg = correspondent(&session, &lab).await;

    let content = b"Content-Type: text/plain\r\n\r\nClaim 2291 is approved.\r\n";
    let loopback = [
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "peer-passphrase",
    ];
    let signature = gpg.run(
        &[&loopback[..], &["--armor", "--detach-sign", "-u", &lab]].concat(),
        content,
    );
    let mut raw = format!(
        "From: {lab}\r\nTo: me@example.org\r\nSubject: claim\r\nDate: {}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"mx\"\r\n\r\n--mx\r\n\
         Content-Type: text/plain\r\n\r\nPay account 99-123 today.\r\n--mx\r\n\
         Content-Type: multipart/signed; micalg=pgp-sha256; \
         protocol=\"application/pgp-signature\"; boundary=\"sig\"\r\n\r\n--sig\r\n",
        support_date()
    )
    .into_bytes();
    raw.extend_from_slice(content);
    raw.extend_from_slice(b"\r\n--sig\r\nContent-Type: application/pgp-signature\r\n\r\n");
    raw.extend_from_slice(&signature);
    raw.extend_from_slice(b"\r\n--sig--\r\n--mx--\r\n");

    let whole = session.inspect(raw.clone()).await.unwrap();
    assert!(whole.parts[0].protection.is_empty(), "{whole:?}");
    assert!(
        whole
            .warnings
            .contains(&wardmail::protection::Warning::UnprotectedTextAroundProtectedPart)
    );

    let parts = session.inspect_segments(raw).await.unwrap();
    assert_eq!(parts.len(), 2);
    assert!(parts[0].report.is_none());
    assert!(parts[0].parsed.text.contains("Pay account"));
    let signed = parts[1]
        .report
        .as_ref()
        .expect("the signed part is checked");
    assert_eq!(signed.signatures[0].status, SignatureStatus::Good);
    assert!(signed.signatures[0].signer_matches_from);
    assert!(parts[1].parsed.text.contains("Claim 2291"));
    assert!(!parts[1].parsed.text.contains("Pay account"));
}

/// Returns the current time as an RFC 5322 date, from the system `date`.
fn support_date() -> String {
    let output = std::process::Command::new("date")
        .arg("-R")
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}
