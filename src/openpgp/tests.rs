//! Unit tests of the keyring and of `inspect` with keys and messages made
//! by sequoia in the test.

use std::io::Write;

use sequoia_openpgp as pgp;

use pgp::cert::{Cert, CertBuilder};
use pgp::crypto::SessionKey;
use pgp::packet::pkesk::PKESK3;
use pgp::policy::StandardPolicy;
use pgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message};
use pgp::serialize::{Serialize, SerializeInto};
use pgp::types::SymmetricAlgorithm;

use super::*;

const ADDRESS: &str = "nurse@example.org";

fn new_cert(password: Option<&str>) -> Cert {
    let (cert, _) = CertBuilder::general_purpose(Some(format!("Nurse <{ADDRESS}>")))
        .set_password(password.map(Into::into))
        .generate()
        .unwrap();
    cert
}

fn keyring_with(cert: &Cert) -> Keyring {
    let mut keyring = Keyring::new();
    keyring
        .import(&cert.as_tsk().armored().to_vec().unwrap())
        .unwrap();
    keyring
}

/// Encrypts `plaintext` to the cert's encryption subkey with SEIPD v1.
fn encrypt_to(cert: &Cert, plaintext: &[u8]) -> Vec<u8> {
    let policy = StandardPolicy::new();
    let recipients = cert
        .keys()
        .with_policy(&policy, None)
        .supported()
        .alive()
        .revoked(false)
        .for_transport_encryption();
    let mut sink = Vec::new();
    let message = Message::new(&mut sink);
    let message = Armorer::new(message).build().unwrap();
    let message = Encryptor::for_recipients(message, recipients)
        .build()
        .unwrap();
    let mut message = LiteralWriter::new(message).build().unwrap();
    message.write_all(plaintext).unwrap();
    message.finalize().unwrap();
    sink
}

fn pgp_mime_encrypted(armored: &[u8]) -> Vec<u8> {
    let mut message = format!(
        "From: {ADDRESS}\r\nSubject: test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/encrypted;\r\n \
         protocol=\"application/pgp-encrypted\"; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--b\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    message.extend_from_slice(armored);
    message.extend_from_slice(b"\r\n--b--\r\n");
    message
}

const INNER: &[u8] = b"Content-Type: text/plain\r\n\r\nBed 3 needs a drip change.\r\n";

#[test]
fn keyring_import_rejects_garbage() {
    let result = Keyring::new().import(b"not a key");
    assert!(
        matches!(result, Err(OpenpgpError::InvalidKey { .. })),
        "{result:?}"
    );
}

#[test]
fn keyring_import_binary_and_merge() {
    let cert = new_cert(None);
    let mut keyring = Keyring::new();
    let binary = cert.to_vec().unwrap();
    assert_eq!(keyring.import(&binary).unwrap(), vec![cert.fingerprint()]);
    assert_eq!(keyring.import(&binary).unwrap(), vec![cert.fingerprint()]);
    assert_eq!(keyring.certificates().len(), 1);
}

#[test]
fn keyring_unlock_wrong_passphrase() {
    let cert = new_cert(Some("night shift"));
    let mut keyring = keyring_with(&cert);
    let fingerprint = cert.fingerprint();

    let result = keyring.unlock(&fingerprint, "day shift");
    assert!(
        matches!(result, Err(OpenpgpError::WrongPassphrase { .. })),
        "{result:?}"
    );
    let text = result.unwrap_err().to_string();
    assert!(text.starts_with("cannot unlock key"), "{text}");
    assert!(text.ends_with("wrong passphrase"), "{text}");

    assert!(keyring.unlock(&fingerprint, "night shift").unwrap() >= 1);
}

#[test]
fn keyring_unlock_errors_distinct() {
    let unprotected = new_cert(None);
    let mut keyring = keyring_with(&unprotected);
    let result = keyring.unlock(&unprotected.fingerprint(), "anything");
    assert!(
        matches!(result, Err(OpenpgpError::NoLockedSecretKey { .. })),
        "{result:?}"
    );

    let other = new_cert(None);
    let result = keyring.unlock(&other.fingerprint(), "anything");
    assert!(
        matches!(result, Err(OpenpgpError::KeyNotFound { .. })),
        "{result:?}"
    );
}

#[test]
fn keyring_debug_hides_keys() {
    let keyring = keyring_with(&new_cert(None));
    let text = format!("{keyring:?}");
    assert_eq!(text, "Keyring { certificates: 1, usable_secret_keys: 3 }");
}

#[test]
fn inspect_locked_key_until_unlocked() {
    let cert = new_cert(Some("night shift"));
    let mut keyring = keyring_with(&cert);
    let message = pgp_mime_encrypted(&encrypt_to(&cert, INNER));

    let report = inspect(&message, &keyring);
    assert_eq!(report.refused, Some(Refusal::KeyLocked));
    assert_eq!(report.locked_keys, vec![cert.fingerprint().to_hex()]);
    assert!(!report.decrypted);

    keyring.unlock(&cert.fingerprint(), "night shift").unwrap();
    let report = inspect(&message, &keyring);
    assert!(report.decrypted);
    assert!(report.integrity_protected);
    assert_eq!(report.inner_mime.as_deref(), Some(INNER));
    assert_eq!(report.parts[0].protection, vec![Layer::OpenpgpEncrypted]);
}

/// Builds a message of a PKESK and a Symmetrically Encrypted Data packet
/// (tag 9), which has no integrity protection.
fn sed_message(cert: &Cert) -> Vec<u8> {
    let policy = StandardPolicy::new();
    let key = cert
        .keys()
        .with_policy(&policy, None)
        .for_transport_encryption()
        .next()
        .unwrap();
    let session_key = SessionKey::new(32).unwrap();
    let pkesk = PKESK3::for_recipient(SymmetricAlgorithm::AES256, &session_key, key.key()).unwrap();

    let mut binary = Vec::new();
    pgp::Packet::from(pkesk).serialize(&mut binary).unwrap();
    // New-format header of tag 9 with a one-octet length, then an opaque
    // body: the reader must reject the packet type before decrypting.
    let body = [0x5au8; 40];
    binary.extend_from_slice(&[0xc9, body.len() as u8]);
    binary.extend_from_slice(&body);

    let mut armored = Vec::new();
    let mut writer = pgp::armor::Writer::new(&mut armored, pgp::armor::Kind::Message).unwrap();
    writer.write_all(&binary).unwrap();
    writer.finalize().unwrap();
    armored
}

#[test]
fn inspect_rejects_sed_packet() {
    let cert = new_cert(None);
    let keyring = keyring_with(&cert);
    let report = inspect(&pgp_mime_encrypted(&sed_message(&cert)), &keyring);
    assert_eq!(report.encrypted, Encryption::Openpgp);
    assert_eq!(report.refused, Some(Refusal::NoIntegrityProtection));
    assert!(!report.decrypted);
    assert!(report.inner_mime.is_none());
}

#[test]
fn inspect_tampered_ciphertext_fails() {
    let cert = new_cert(None);
    let keyring = keyring_with(&cert);
    let armored = String::from_utf8(encrypt_to(&cert, INNER)).unwrap();
    let mut lines: Vec<String> = armored.lines().map(str::to_string).collect();
    // The last full base64 line lies inside the SEIPD packet.
    let index = lines.iter().rposition(|line| line.len() == 64).unwrap();
    let flipped = if lines[index].as_bytes()[20] == b'A' {
        "B"
    } else {
        "A"
    };
    lines[index].replace_range(20..21, flipped);
    let tampered = lines.join("\n");

    let report = inspect(&pgp_mime_encrypted(tampered.as_bytes()), &keyring);
    assert!(!report.decrypted);
    assert!(report.refused.is_some());
    assert!(report.inner_mime.is_none());
}

#[test]
fn inspect_encrypted_in_mixed_not_decrypted() {
    let cert = new_cert(None);
    let keyring = keyring_with(&cert);
    let armored = encrypt_to(&cert, INNER);
    let mut message = format!(
        "From: {ADDRESS}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"m\"\r\n\r\n\
         --m\r\nContent-Type: text/plain\r\n\r\nClick here:\r\n--m\r\n\
         Content-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--m\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    message.extend_from_slice(&armored);
    message.extend_from_slice(b"\r\n--m--\r\n");

    let report = inspect(&message, &keyring);
    assert_eq!(report.encrypted, Encryption::None);
    assert!(!report.decrypted);
    assert!(report.inner_mime.is_none());
    assert!(
        report
            .warnings
            .contains(&Warning::UnprotectedTextAroundProtectedPart)
    );
}

#[test]
fn inspect_stripped_signature_unsigned() {
    let message =
        b"From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/signed;\r\n \
        protocol=\"application/pgp-signature\"; boundary=\"s\"\r\n\r\n--s\r\n\
        Content-Type: text/plain\r\n\r\nhello\r\n--s--\r\n";
    let report = inspect(message, &Keyring::new());
    assert!(report.signatures.is_empty());
    assert_eq!(report.refused, None);
    assert_eq!(report.parts.len(), 1);
}

#[test]
fn inspect_garbage_signature_bad() {
    let message =
        b"From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/signed;\r\n \
        protocol=\"application/pgp-signature\"; boundary=\"s\"\r\n\r\n--s\r\n\
        Content-Type: text/plain\r\n\r\nhello\r\n--s\r\n\
        Content-Type: application/pgp-signature\r\n\r\nnot a signature\r\n--s--\r\n";
    let report = inspect(message, &Keyring::new());
    assert_eq!(report.signatures.len(), 1);
    assert_eq!(report.signatures[0].status, SignatureStatus::Bad);
}

#[test]
fn inspect_nesting_limited() {
    let cert = new_cert(None);
    let keyring = keyring_with(&cert);
    let mut entity = INNER.to_vec();
    for _ in 0..=MAX_DEPTH {
        let armored = encrypt_to(&cert, &entity);
        let mut wrapped = b"Content-Type: multipart/encrypted;\r\n \
            protocol=\"application/pgp-encrypted\"; boundary=\"b\"\r\n\r\n--b\r\n\
            Content-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--b\r\n\
            Content-Type: application/octet-stream\r\n\r\n"
            .to_vec();
        wrapped.extend_from_slice(&armored);
        wrapped.extend_from_slice(b"\r\n--b--\r\n");
        entity = wrapped;
    }
    let report = inspect(&entity, &keyring);
    assert!(report.warnings.contains(&Warning::NestingTooDeep));
}

/// Makes an armored detached signature over `content` with the cert's
/// signing subkey, dated `time`.
fn sign_detached(cert: &Cert, content: &[u8], time: std::time::SystemTime) -> Vec<u8> {
    sign_detached_with(cert, content, time, pgp::types::HashAlgorithm::SHA256)
}

fn sign_detached_with(
    cert: &Cert,
    content: &[u8],
    time: std::time::SystemTime,
    hash: pgp::types::HashAlgorithm,
) -> Vec<u8> {
    use pgp::serialize::stream::Signer;

    let policy = StandardPolicy::new();
    let key = cert
        .keys()
        .secret()
        .with_policy(&policy, cert.primary_key().key().creation_time())
        .for_signing()
        .next()
        .unwrap();
    let keypair = key.key().clone().into_keypair().unwrap();

    let mut sink = Vec::new();
    let message = Message::new(&mut sink);
    let message = Armorer::new(message)
        .kind(pgp::armor::Kind::Signature)
        .build()
        .unwrap();
    let mut signer = Signer::new(message, keypair)
        .unwrap()
        .detached()
        .hash_algo(hash)
        .unwrap()
        .creation_time(time)
        .build()
        .unwrap();
    signer.write_all(content).unwrap();
    signer.finalize().unwrap();
    sink
}

fn pgp_mime_signed(content: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut message = format!(
        "From: {ADDRESS}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/signed;\r\n \
         protocol=\"application/pgp-signature\"; boundary=\"s\"\r\n\r\n--s\r\n"
    )
    .into_bytes();
    message.extend_from_slice(content);
    message.extend_from_slice(b"\r\n--s\r\nContent-Type: application/pgp-signature\r\n\r\n");
    message.extend_from_slice(signature);
    message.extend_from_slice(b"\r\n--s--\r\n");
    message
}

#[test]
fn inspect_signature_good_then_revoked() {
    let (cert, revocation) = CertBuilder::general_purpose(Some(format!("<{ADDRESS}>")))
        .set_creation_time(std::time::SystemTime::now() - std::time::Duration::from_secs(60))
        .generate()
        .unwrap();
    let signature = sign_detached(&cert, INNER, std::time::SystemTime::now());
    let message = pgp_mime_signed(INNER, &signature);

    let report = inspect(&message, &keyring_with(&cert));
    assert_eq!(report.signatures[0].status, SignatureStatus::Good);
    assert!(report.signatures[0].signer_matches_from);
    assert_eq!(report.signatures[0].signer, ADDRESS);

    let (revoked, _) = cert.insert_packets(revocation).unwrap();
    let report = inspect(&message, &keyring_with(&revoked));
    assert_eq!(report.signatures[0].status, SignatureStatus::Revoked);
    assert!(!report.signed_by_sender());
}

#[test]
fn inspect_signature_after_expiry() {
    let day = std::time::Duration::from_secs(86_400);
    let created = std::time::SystemTime::now() - 3 * day;
    let (cert, _) = CertBuilder::general_purpose(Some(format!("<{ADDRESS}>")))
        .set_creation_time(created)
        .set_validity_period(day)
        .generate()
        .unwrap();
    let signature = sign_detached(&cert, INNER, created + 2 * day);

    let report = inspect(&pgp_mime_signed(INNER, &signature), &keyring_with(&cert));
    assert_eq!(report.signatures[0].status, SignatureStatus::Expired);
}

#[test]
fn inspect_sha1_signature_unsupported() {
    let cert = new_cert(None);
    let now = std::time::SystemTime::now();
    let signature = sign_detached_with(&cert, INNER, now, pgp::types::HashAlgorithm::SHA1);

    let report = inspect(&pgp_mime_signed(INNER, &signature), &keyring_with(&cert));
    assert_eq!(
        report.signatures[0].status,
        SignatureStatus::UnsupportedAlgorithm
    );
    assert_eq!(
        report.signatures[0].digest_algorithm.as_deref(),
        Some("sha1")
    );
    assert!(report.warnings.contains(&Warning::Sha1Signature));
}

#[test]
fn open_stops_at_plaintext_limit() {
    let cert = new_cert(None);
    let keyring = keyring_with(&cert);
    let armored = encrypt_to(&cert, &[b'x'; 4096]);

    let opened = packets::open_limited(&armored, &keyring, 4096).unwrap();
    assert_eq!(opened.plaintext.len(), 4096);
    let result = packets::open_limited(&armored, &keyring, 1024);
    assert_eq!(result.err(), Some(Refusal::Malformed));
}
