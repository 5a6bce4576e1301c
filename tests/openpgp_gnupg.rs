//! Interoperability of `openpgp::inspect` with GnuPG: gpg creates keys,
//! encrypts and signs, and the MIME around its output is built here as
//! RFC 3156 describes. Each test uses its own temporary GNUPGHOME and stops
//! the gpg-agent started there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

mod support;

use support::gnupg::Gnupg;

use wardmail::openpgp::{Fingerprint, Keyring, OpenpgpError, inspect};
use wardmail::protection::{Encryption, Layer, Refusal, SignatureScope, SignatureStatus, Warning};

const USER: &str = "tester@example.org";

fn headers(from: &str, content_type: &str) -> String {
    format!(
        "From: {from}\r\nTo: {from}\r\nSubject: test\r\nDate: {}\r\nMIME-Version: 1.0\r\n\
         Content-Type: {content_type}\r\n\r\n",
        rfc2822_now()
    )
}

/// Returns the current time as an RFC 5322 date, from the system `date`.
fn rfc2822_now() -> String {
    let output = Command::new("date").arg("-R").output().unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// Wraps an armored OpenPGP message in multipart/encrypted (RFC 3156
/// section 4).
fn pgp_mime_encrypted(from: &str, armored: &[u8]) -> Vec<u8> {
    let mut message = headers(
        from,
        "multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"enc\"",
    )
    .into_bytes();
    message.extend_from_slice(
        b"--enc\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--enc\r\n\
          Content-Type: application/octet-stream\r\n\r\n",
    );
    message.extend_from_slice(armored);
    message.extend_from_slice(b"\r\n--enc--\r\n");
    message
}

/// Builds a multipart/signed entity (RFC 3156 section 5) from a content
/// entity and its armored detached signature, without outer headers.
fn pgp_mime_signed_body(content: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut body = b"Content-Type: multipart/signed; micalg=pgp-sha256;\r\n \
        protocol=\"application/pgp-signature\"; boundary=\"sig\"\r\n\r\n--sig\r\n"
        .to_vec();
    body.extend_from_slice(content);
    body.extend_from_slice(b"\r\n--sig\r\nContent-Type: application/pgp-signature\r\n\r\n");
    body.extend_from_slice(signature);
    body.extend_from_slice(b"\r\n--sig--\r\n");
    body
}

fn with_outer_headers(from: &str, entity: &[u8]) -> Vec<u8> {
    let mut message = format!(
        "From: {from}\r\nTo: {from}\r\nSubject: test\r\nDate: {}\r\nMIME-Version: 1.0\r\n",
        rfc2822_now()
    )
    .into_bytes();
    message.extend_from_slice(entity);
    message
}

const CONTENT: &[u8] =
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nBlood results attached.\r\n";

fn keyring_with(secret_key: &[u8]) -> Keyring {
    let mut keyring = Keyring::new();
    keyring.import(secret_key).unwrap();
    keyring
}

#[test]
fn gnupg_encrypt_sign_decrypts_good() {
    let gnupg = Gnupg::new();
    let keyring = keyring_with(&gnupg.create_key(USER, ""));

    let armored = gnupg.run(
        &["--armor", "--sign", "--encrypt", "-r", USER, "-u", USER],
        CONTENT,
    );
    let report = inspect(&pgp_mime_encrypted(USER, &armored), &keyring);

    assert_eq!(report.encrypted, Encryption::Openpgp);
    assert!(report.decrypted);
    assert!(report.integrity_protected);
    assert_eq!(report.refused, None);
    assert_eq!(report.signatures.len(), 1);
    assert_eq!(report.signatures[0].status, SignatureStatus::Good);
    assert_eq!(report.signatures[0].scope, SignatureScope::Content);
    assert!(report.signatures[0].signer_matches_from);
    assert!(report.signed_by_sender());
    assert_eq!(
        report.parts[0].protection,
        vec![Layer::OpenpgpEncrypted, Layer::OpenpgpSigned]
    );
    assert_eq!(report.inner_mime.as_deref(), Some(CONTENT));
}

#[test]
fn gnupg_no_mdc_refused() {
    let gnupg = Gnupg::new();
    let keyring = keyring_with(&gnupg.create_key(USER, ""));

    // GnuPG 2.2 still writes a Symmetrically Encrypted Data packet without
    // MDC in RFC 2440 mode (it warns that this is dangerous).
    let armored = gnupg.run(&["--armor", "--rfc2440", "--encrypt", "-r", USER], CONTENT);
    let listing = gnupg.run(&["--list-only", "--list-packets"], &armored);
    assert!(!String::from_utf8_lossy(&listing).contains("mdc_method"));

    let report = inspect(&pgp_mime_encrypted(USER, &armored), &keyring);
    assert_eq!(report.encrypted, Encryption::Openpgp);
    assert_eq!(report.refused, Some(Refusal::NoIntegrityProtection));
    assert!(!report.decrypted);
    assert!(report.inner_mime.is_none());
    assert!(report.parts.is_empty());
}

#[test]
fn gnupg_detached_signature_good_and_tampered() {
    let gnupg = Gnupg::new();
    let keyring = keyring_with(&gnupg.create_key(USER, ""));
    let signature = gnupg.run(&["--armor", "--detach-sign", "-u", USER], CONTENT);

    let message = with_outer_headers(USER, &pgp_mime_signed_body(CONTENT, &signature));
    let report = inspect(&message, &keyring);
    assert_eq!(report.encrypted, Encryption::None);
    assert_eq!(report.signatures.len(), 1);
    assert_eq!(report.signatures[0].status, SignatureStatus::Good);
    assert_eq!(report.signatures[0].signer, USER);
    assert!(report.signed_by_sender());

    // The same content with LF line ends verifies too, because the
    // signature covers the CRLF canonical form.
    let lf_message = String::from_utf8(message.clone())
        .unwrap()
        .replace("\r\n", "\n");
    let report = inspect(lf_message.as_bytes(), &keyring);
    assert_eq!(report.signatures[0].status, SignatureStatus::Good);

    let tampered_content = String::from_utf8(message.clone())
        .unwrap()
        .replace("Blood results", "Blood resulta");
    let report = inspect(tampered_content.as_bytes(), &keyring);
    assert_eq!(report.signatures[0].status, SignatureStatus::Bad);
    assert!(!report.signed_by_sender());

    let tampered_signature = tamper_armor(&signature);
    let message = with_outer_headers(USER, &pgp_mime_signed_body(CONTENT, &tampered_signature));
    let report = inspect(&message, &keyring);
    assert_eq!(report.signatures.len(), 1);
    assert_eq!(report.signatures[0].status, SignatureStatus::Bad);
}

/// Changes one base64 character in the middle of the signature packet, so
/// the signature value no longer matches.
fn tamper_armor(armored: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(armored.to_vec()).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let index = lines.iter().position(|line| line.len() == 64).unwrap() + 2;
    let line = &mut lines[index];
    let replaced = if line.as_bytes()[10] == b'A' {
        "B"
    } else {
        "A"
    };
    line.replace_range(10..11, replaced);
    (lines.join("\n") + "\n").into_bytes()
}

#[test]
fn gnupg_bad_signature_inside_encryption_not_good() {
    let gnupg = Gnupg::new();
    let keyring = keyring_with(&gnupg.create_key(USER, ""));

    // Sign, then alter the signed content, then encrypt: the decryption
    // succeeds but the signature must stay bad.
    let signature = gnupg.run(&["--armor", "--detach-sign", "-u", USER], CONTENT);
    let altered = String::from_utf8(CONTENT.to_vec())
        .unwrap()
        .replace("Blood", "Urine");
    let signed = pgp_mime_signed_body(altered.as_bytes(), &signature);
    let armored = gnupg.run(&["--armor", "--encrypt", "-r", USER], &signed);

    let report = inspect(&pgp_mime_encrypted(USER, &armored), &keyring);
    assert!(report.decrypted);
    assert_eq!(report.signatures.len(), 1);
    assert_eq!(report.signatures[0].status, SignatureStatus::Bad);
    assert!(!report.signed_by_sender());
}

#[test]
fn gnupg_signer_not_sender_and_unknown_key() {
    let gnupg = Gnupg::new();
    let keyring = keyring_with(&gnupg.create_key(USER, ""));
    let signature = gnupg.run(&["--armor", "--detach-sign", "-u", USER], CONTENT);

    let from_other = with_outer_headers(
        "someone.else@example.org",
        &pgp_mime_signed_body(CONTENT, &signature),
    );
    let report = inspect(&from_other, &keyring);
    assert_eq!(report.signatures[0].status, SignatureStatus::Good);
    assert!(!report.signatures[0].signer_matches_from);
    assert!(report.warnings.contains(&Warning::SignerNotSender));
    assert!(!report.signed_by_sender());

    let report = inspect(&from_other, &Keyring::new());
    assert_eq!(report.signatures[0].status, SignatureStatus::UnknownKey);
}

#[test]
fn gnupg_passphrase_key_unlock() {
    let gnupg = Gnupg::new();
    let secret = gnupg.create_key(USER, "correct horse");
    let mut keyring = Keyring::new();
    let imported = keyring.import(&secret).unwrap();
    assert_eq!(imported.len(), 1);
    let fingerprint: &Fingerprint = &imported[0];

    let armored = gnupg.run(&["--armor", "--encrypt", "-r", USER], CONTENT);
    let message = pgp_mime_encrypted(USER, &armored);
    let report = inspect(&message, &keyring);
    assert_eq!(report.refused, Some(Refusal::KeyLocked));
    assert_eq!(report.locked_keys, vec![fingerprint.to_hex()]);

    let wrong = keyring.unlock(fingerprint, "wrong horse");
    assert!(
        matches!(wrong, Err(OpenpgpError::WrongPassphrase { .. })),
        "{wrong:?}"
    );
    assert!(keyring.unlock(fingerprint, "correct horse").unwrap() >= 1);

    let report = inspect(&message, &keyring);
    assert!(report.decrypted);
    assert_eq!(report.inner_mime.as_deref(), Some(CONTENT));
}

#[test]
fn gnupg_inline_cleartext_signed() {
    let gnupg = Gnupg::new();
    let keyring = keyring_with(&gnupg.create_key(USER, ""));
    let signed = gnupg.run(&["--clearsign", "-u", USER], b"Ward 4 at ten.\n");

    let mut message = headers(USER, "text/plain; charset=utf-8").into_bytes();
    message.extend_from_slice(&signed);
    let report = inspect(&message, &keyring);
    assert_eq!(report.signatures.len(), 1);
    assert_eq!(report.signatures[0].status, SignatureStatus::Good);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    let mut prepended = headers(USER, "text/plain; charset=utf-8").into_bytes();
    prepended.extend_from_slice(b"Please wire the money today.\n\n");
    prepended.extend_from_slice(&signed);
    let report = inspect(&prepended, &keyring);
    assert_eq!(report.signatures[0].status, SignatureStatus::Good);
    assert!(
        report
            .warnings
            .contains(&Warning::UnprotectedTextAroundProtectedPart)
    );
    assert_eq!(report.parts.len(), 2);
    assert!(report.parts[0].protection.is_empty());
}

#[test]
fn gnupg_inline_latin1_quoted_printable() {
    let gnupg = Gnupg::new();
    let keyring = keyring_with(&gnupg.create_key(USER, ""));
    // "Fee: £20" in ISO-8859-1, so the signature covers Latin-1 bytes.
    let signed = gnupg.run(&["--clearsign", "-u", USER], b"Fee: \xa320\n");
    let text = String::from_utf8_lossy(&signed)
        .replace('=', "=3D")
        .replace('\u{fffd}', "=A3");

    let mut message = headers(USER, "text/plain; charset=iso-8859-1").into_bytes();
    let marker = b"Content-Type: text/plain; charset=iso-8859-1\r\n";
    let position = message
        .windows(marker.len())
        .position(|w| w == marker)
        .unwrap();
    message.splice(
        position..position,
        b"Content-Transfer-Encoding: quoted-printable\r\n"
            .iter()
            .copied(),
    );
    message.extend_from_slice(text.as_bytes());
    let report = inspect(&message, &keyring);
    assert_eq!(report.signatures.len(), 1);
    assert_eq!(report.signatures[0].status, SignatureStatus::Good);
}

#[test]
fn gnupg_inline_encrypted_whole_body() {
    let gnupg = Gnupg::new();
    let keyring = keyring_with(&gnupg.create_key(USER, ""));
    let armored = gnupg.run(&["--armor", "--encrypt", "-r", USER], b"Room 12 is free.\n");

    let mut message = headers(USER, "text/plain; charset=us-ascii").into_bytes();
    message.extend_from_slice(&armored);
    let report = inspect(&message, &keyring);
    assert_eq!(report.encrypted, Encryption::Openpgp);
    assert!(report.decrypted);
    assert_eq!(
        report.inner_mime.as_deref(),
        Some(&b"Room 12 is free.\n"[..])
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}
