//! Round trips and failure cases of the scheme, desktop side only. The
//! browser side is checked against these functions by
//! tests/portal_scheme.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;

use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeS, Serializable};
use ring::rand::{SecureRandom, SystemRandom};

use super::*;
use crate::secret::Secret;

/// Few iterations keep the tests fast; the scheme is the same for any N.
const TEST_ITERATIONS: u32 = 1_000;

fn envelope() -> Envelope {
    Envelope {
        from: "Nurse Example <nurse@clinic.example.org>".into(),
        to: "patient@example.org".into(),
        subject: "Your results".into(),
        date: "2026-12-04T10:00:00Z".into(),
        text: "Your results are normal.\nCall us with questions.".into(),
        attachments: vec![Attachment {
            name: "results.pdf".into(),
            media_type: "application/pdf".into(),
            data: vec![0, 1, 2, 254, 255],
        }],
        contact: "Riverside Clinic, 0123 456 789".into(),
    }
}

fn options() -> SealOptions {
    SealOptions {
        iterations: TEST_ITERATIONS,
        expires_at: 1_797_588_000,
        max_attempts: 5,
    }
}

fn entered(kind: FactorKind, text: &str) -> EnteredFactor {
    EnteredFactor {
        kind,
        text: Secret::new(text),
        iterations: TEST_ITERATIONS,
    }
}

fn parts(sealed: &Sealed) -> (Vec<u8>, Vec<u8>) {
    let wrapped = decode("wrapped_key", &sealed.upload.wrapped_key).unwrap();
    let envelope = decode("envelope", &sealed.upload.envelope).unwrap();
    (wrapped, envelope)
}

fn code_of(sealed: &Sealed) -> String {
    sealed.code.as_ref().unwrap().expose_digits().to_owned()
}

/// ring's system random source for the hpke crate's sender in tests.
struct TestRng;

impl hpke::rand_core::TryRng for TestRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0u8; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0u8; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        SystemRandom::new().fill(dst).expect("system random source");
        Ok(())
    }
}

impl hpke::rand_core::TryCryptoRng for TestRng {}

/// Seals a reply as the browser does, with the hpke crate as the sender.
fn seal_reply(id: &MessageId, public_key: &[u8; 32], plaintext: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let public_key = <X25519HkdfSha256 as hpke::Kem>::PublicKey::from_bytes(public_key).unwrap();
    let info = [b"wardmail-portal-v1 reply".as_slice(), id.as_bytes()].concat();
    let (enc, mut context) =
        hpke::setup_sender_with_rng::<AesGcm256, HkdfSha256, X25519HkdfSha256>(
            &OpModeS::Base,
            &public_key,
            &info,
            &mut TestRng,
        )
        .unwrap();
    let ciphertext = context.seal(plaintext, b"").unwrap();
    (enc.to_bytes().to_vec(), ciphertext)
}

fn reply_json(proof: &str) -> Vec<u8> {
    serde_json::json!({
        "v": 1,
        "proof": proof,
        "date": "2026-12-05T08:30:00Z",
        "text": "Thank you, see you Monday.",
        "attachments": [{"name": "form.txt", "type": "text/plain", "data": encode(b"signed")}],
    })
    .to_string()
    .into_bytes()
}

#[test]
fn seal_open_code_round_trip() {
    let sealed = seal(&envelope(), Factor::Code, &options()).unwrap();
    let (wrapped, sealed_envelope) = parts(&sealed);
    let grouped = sealed.code.as_ref().unwrap().expose_grouped();

    let opened = open_envelope(
        &sealed.id,
        &sealed.link_secret,
        &entered(FactorKind::Code, &grouped),
        &wrapped,
        &sealed_envelope,
    )
    .unwrap();

    assert_eq!(opened.envelope, envelope());
    assert_eq!(opened.proof, sealed.proof);
    assert_eq!(sealed.upload.id, sealed.id.to_string());
    assert_eq!(sealed.upload.factor, FactorKind::Code);
    assert_eq!(sealed.upload.iterations, TEST_ITERATIONS);
    assert_eq!(sealed.upload.contact, envelope().contact);
    assert_eq!(sealed.upload.max_attempts, 5);
}

#[test]
fn seal_open_passphrase_round_trip() {
    let factor = Factor::Passphrase(Secret::new("Blue Heron River"));
    let sealed = seal(&envelope(), factor, &options()).unwrap();
    assert!(sealed.code.is_none());
    assert_eq!(sealed.upload.factor, FactorKind::Passphrase);
    let (wrapped, sealed_envelope) = parts(&sealed);

    let typed = entered(FactorKind::Passphrase, "  Blue\u{00a0}Heron   River\n");
    let opened = open_envelope(
        &sealed.id,
        &sealed.link_secret,
        &typed,
        &wrapped,
        &sealed_envelope,
    );
    assert_eq!(opened.unwrap().envelope, envelope());

    let wrong_case = entered(FactorKind::Passphrase, "blue heron river");
    let opened = open_envelope(
        &sealed.id,
        &sealed.link_secret,
        &wrong_case,
        &wrapped,
        &sealed_envelope,
    );
    assert!(matches!(opened, Err(PortalError::WrongFactor { .. })));
}

#[test]
fn seal_email_code_kind() {
    let sealed = seal(&envelope(), Factor::EmailCode, &options()).unwrap();
    assert_eq!(sealed.upload.factor, FactorKind::EmailCode);
    let upload = serde_json::to_value(&sealed.upload).unwrap();
    assert_eq!(upload["factor"], "email-code");
}

#[test]
fn upload_has_the_documented_fields() {
    let sealed = seal(&envelope(), Factor::Code, &options()).unwrap();
    let upload = serde_json::to_value(&sealed.upload).unwrap();
    let mut keys: Vec<_> = upload.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "contact",
            "envelope",
            "expires_at",
            "factor",
            "id",
            "iterations",
            "max_attempts",
            "verifier_hash",
            "wrapped_key"
        ]
    );
    assert_eq!(decode("id", &sealed.upload.id).unwrap().len(), 16);
    assert_eq!(
        decode("verifier_hash", &sealed.upload.verifier_hash)
            .unwrap()
            .len(),
        32
    );
    // nonce (12) + K (32) + tag (16)
    assert_eq!(parts(&sealed).0.len(), 60);
}

#[test]
fn link_puts_secret_in_fragment() {
    let sealed = seal(&envelope(), Factor::Code, &options()).unwrap();
    let link = sealed.link("https://portal.example.org/");
    let expected = format!(
        "https://portal.example.org/m/{}#{}",
        sealed.id,
        sealed.link_secret.expose_text()
    );
    assert_eq!(link, expected);
}

#[test]
fn open_wrong_code_fails() {
    let sealed = seal(&envelope(), Factor::Code, &options()).unwrap();
    let (wrapped, sealed_envelope) = parts(&sealed);
    let code = code_of(&sealed);
    // Change the last digit, so the wrong code differs in one place only.
    let last = code.as_bytes()[7] - b'0';
    let wrong = format!("{}{}", &code[..7], (last + 1) % 10);

    let opened = open_envelope(
        &sealed.id,
        &sealed.link_secret,
        &entered(FactorKind::Code, &wrong),
        &wrapped,
        &sealed_envelope,
    );
    let error = opened.unwrap_err();
    assert!(matches!(error, PortalError::WrongFactor { .. }));
    assert!(!error.to_string().contains(&wrong));
    assert!(error.to_string().contains(&sealed.id.short()));
}

#[test]
fn open_wrong_link_secret_fails() {
    let sealed = seal(&envelope(), Factor::Code, &options()).unwrap();
    let (wrapped, sealed_envelope) = parts(&sealed);
    let other_secret = Key32::generate().unwrap();

    let opened = open_envelope(
        &sealed.id,
        &other_secret,
        &entered(FactorKind::Code, &code_of(&sealed)),
        &wrapped,
        &sealed_envelope,
    );
    assert!(matches!(opened, Err(PortalError::WrongFactor { .. })));
}

#[test]
fn open_wrong_iterations_fails() {
    let sealed = seal(&envelope(), Factor::Code, &options()).unwrap();
    let (wrapped, sealed_envelope) = parts(&sealed);
    let mut factor = entered(FactorKind::Code, &code_of(&sealed));
    factor.iterations = TEST_ITERATIONS + 1;

    let opened = open_envelope(
        &sealed.id,
        &sealed.link_secret,
        &factor,
        &wrapped,
        &sealed_envelope,
    );
    assert!(matches!(opened, Err(PortalError::WrongFactor { .. })));
}

#[test]
fn open_tampered_envelope_fails() {
    let sealed = seal(&envelope(), Factor::Code, &options()).unwrap();
    let (wrapped, sealed_envelope) = parts(&sealed);
    let factor = entered(FactorKind::Code, &code_of(&sealed));

    // The nonce, a ciphertext byte and the tag, each flipped in turn.
    for index in [0, 20, sealed_envelope.len() - 1] {
        let mut tampered = sealed_envelope.clone();
        tampered[index] ^= 0x01;
        let opened = open_envelope(
            &sealed.id,
            &sealed.link_secret,
            &factor,
            &wrapped,
            &tampered,
        );
        assert!(
            matches!(opened, Err(PortalError::Envelope { .. })),
            "byte {index} flipped"
        );
    }
    let truncated = &sealed_envelope[..20];
    let opened = open_envelope(
        &sealed.id,
        &sealed.link_secret,
        &factor,
        &wrapped,
        truncated,
    );
    assert!(matches!(opened, Err(PortalError::Envelope { .. })));
}

#[test]
fn open_tampered_wrapped_key_fails() {
    let sealed = seal(&envelope(), Factor::Code, &options()).unwrap();
    let (wrapped, sealed_envelope) = parts(&sealed);
    let factor = entered(FactorKind::Code, &code_of(&sealed));

    for index in [0, 30, wrapped.len() - 1] {
        let mut tampered = wrapped.clone();
        tampered[index] ^= 0x80;
        let opened = open_envelope(
            &sealed.id,
            &sealed.link_secret,
            &factor,
            &tampered,
            &sealed_envelope,
        );
        assert!(
            matches!(opened, Err(PortalError::WrongFactor { .. })),
            "byte {index} flipped"
        );
    }
}

#[test]
fn open_other_message_envelope_fails() {
    // Message B's wrapped key with message A's envelope: K differs, so the
    // envelope does not decrypt even though the factor is right for B.
    let a = seal(&envelope(), Factor::Code, &options()).unwrap();
    let b = seal(&envelope(), Factor::Code, &options()).unwrap();
    let (wrapped_b, _) = parts(&b);
    let (_, envelope_a) = parts(&a);

    let opened = open_envelope(
        &b.id,
        &b.link_secret,
        &entered(FactorKind::Code, &code_of(&b)),
        &wrapped_b,
        &envelope_a,
    );
    assert!(matches!(opened, Err(PortalError::Envelope { .. })));
}

#[test]
fn reissue_replaces_factor() {
    let sealed = seal(&envelope(), Factor::Code, &options()).unwrap();
    let (old_wrapped, sealed_envelope) = parts(&sealed);
    let old_code = code_of(&sealed);

    let reissued = reissue(
        &sealed.id,
        &sealed.link_secret,
        &sealed.content_key,
        Factor::Code,
        TEST_ITERATIONS,
    )
    .unwrap();
    let new_code = reissued.code.as_ref().unwrap().expose_digits().to_owned();
    let new_wrapped = decode("wrapped_key", &reissued.body.wrapped_key).unwrap();
    assert_ne!(reissued.body.verifier_hash, sealed.upload.verifier_hash);
    assert_ne!(new_wrapped, old_wrapped);

    let opened = open_envelope(
        &sealed.id,
        &sealed.link_secret,
        &entered(FactorKind::Code, &new_code),
        &new_wrapped,
        &sealed_envelope,
    );
    assert_eq!(opened.unwrap().envelope, envelope());

    if old_code != new_code {
        let opened = open_envelope(
            &sealed.id,
            &sealed.link_secret,
            &entered(FactorKind::Code, &old_code),
            &new_wrapped,
            &sealed_envelope,
        );
        assert!(matches!(opened, Err(PortalError::WrongFactor { .. })));
    }

    let body = serde_json::to_value(&reissued.body).unwrap();
    let mut keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["factor", "iterations", "verifier_hash", "wrapped_key"]
    );
}

#[test]
fn verifier_hash_matches_derived_verifier() {
    let sealed = seal(&envelope(), Factor::Code, &options()).unwrap();
    let normalised = normalise(FactorKind::Code, &code_of(&sealed)).unwrap();
    let keys = factor::derive_keys(
        &sealed.id,
        &sealed.link_secret,
        &normalised,
        TEST_ITERATIONS,
    )
    .unwrap();
    let hash = ring::digest::digest(&ring::digest::SHA256, keys.verifier.expose());
    assert_eq!(sealed.upload.verifier_hash, encode(hash.as_ref()));
}

#[test]
fn debug_hides_secrets() {
    let sealed = seal(&envelope(), Factor::Code, &options()).unwrap();
    let printed = format!("{sealed:?}");
    assert!(!printed.contains(&code_of(&sealed)));
    assert!(!printed.contains(&sealed.link_secret.expose_text()));
    assert!(!printed.contains(&sealed.proof.expose_text()));
    assert!(!printed.contains(&sealed.reply_key.expose_text()));
    assert!(!printed.contains(&sealed.content_key.expose_text()));
}

#[test]
fn reply_round_trip() {
    let sealed = seal(&envelope(), Factor::Code, &options()).unwrap();
    let (wrapped, sealed_envelope) = parts(&sealed);
    let opened = open_envelope(
        &sealed.id,
        &sealed.link_secret,
        &entered(FactorKind::Code, &code_of(&sealed)),
        &wrapped,
        &sealed_envelope,
    )
    .unwrap();

    let plaintext = reply_json(&opened.proof.expose_text());
    let (enc, ciphertext) = seal_reply(&sealed.id, &opened.reply_public_key, &plaintext);
    let reply = open_reply(
        &sealed.id,
        &sealed.reply_key,
        &sealed.proof,
        &enc,
        &ciphertext,
    )
    .unwrap();

    assert_eq!(reply.text, "Thank you, see you Monday.");
    assert_eq!(reply.date, "2026-12-05T08:30:00Z");
    assert_eq!(reply.attachments.len(), 1);
    assert_eq!(reply.attachments[0].name, "form.txt");
    assert_eq!(reply.attachments[0].media_type, "text/plain");
    assert_eq!(reply.attachments[0].data, b"signed");
}

#[test]
fn reply_wrong_proof_rejected() {
    let sealed = seal(&envelope(), Factor::Code, &options()).unwrap();
    let public_key = reply_public_key(&sealed);
    let forged = Key32::generate().unwrap();
    let (enc, ciphertext) = seal_reply(&sealed.id, &public_key, &reply_json(&forged.expose_text()));

    let opened = open_reply(
        &sealed.id,
        &sealed.reply_key,
        &sealed.proof,
        &enc,
        &ciphertext,
    );
    assert!(matches!(opened, Err(PortalError::WrongProof { .. })));

    let (enc, ciphertext) = seal_reply(&sealed.id, &public_key, &reply_json("not-base64!"));
    let opened = open_reply(
        &sealed.id,
        &sealed.reply_key,
        &sealed.proof,
        &enc,
        &ciphertext,
    );
    assert!(matches!(opened, Err(PortalError::WrongProof { .. })));
}

#[test]
fn reply_tampered_ciphertext_rejected() {
    let sealed = seal(&envelope(), Factor::Code, &options()).unwrap();
    let public_key = reply_public_key(&sealed);
    let (enc, ciphertext) = seal_reply(
        &sealed.id,
        &public_key,
        &reply_json(&sealed.proof.expose_text()),
    );

    for index in [0, ciphertext.len() / 2, ciphertext.len() - 1] {
        let mut tampered = ciphertext.clone();
        tampered[index] ^= 0x01;
        let opened = open_reply(
            &sealed.id,
            &sealed.reply_key,
            &sealed.proof,
            &enc,
            &tampered,
        );
        assert!(
            matches!(opened, Err(PortalError::ReplyCiphertext { .. })),
            "byte {index} flipped"
        );
    }

    let mut other_enc = enc.clone();
    other_enc[5] ^= 0x01;
    let opened = open_reply(
        &sealed.id,
        &sealed.reply_key,
        &sealed.proof,
        &other_enc,
        &ciphertext,
    );
    assert!(opened.is_err());

    let short_enc = &enc[..31];
    let opened = open_reply(
        &sealed.id,
        &sealed.reply_key,
        &sealed.proof,
        short_enc,
        &ciphertext,
    );
    assert!(matches!(opened, Err(PortalError::ReplyKey { .. })));
}

#[test]
fn reply_bound_to_message_id() {
    let sealed = seal(&envelope(), Factor::Code, &options()).unwrap();
    let public_key = reply_public_key(&sealed);
    let other_id = MessageId::generate().unwrap();
    let (enc, ciphertext) = seal_reply(
        &other_id,
        &public_key,
        &reply_json(&sealed.proof.expose_text()),
    );

    let opened = open_reply(
        &sealed.id,
        &sealed.reply_key,
        &sealed.proof,
        &enc,
        &ciphertext,
    );
    assert!(matches!(opened, Err(PortalError::ReplyCiphertext { .. })));
}

#[test]
fn reply_other_version_rejected() {
    let sealed = seal(&envelope(), Factor::Code, &options()).unwrap();
    let public_key = reply_public_key(&sealed);
    let mut json: serde_json::Value =
        serde_json::from_slice(&reply_json(&sealed.proof.expose_text())).unwrap();
    json["v"] = 2.into();
    let (enc, ciphertext) = seal_reply(&sealed.id, &public_key, json.to_string().as_bytes());

    let opened = open_reply(
        &sealed.id,
        &sealed.reply_key,
        &sealed.proof,
        &enc,
        &ciphertext,
    );
    assert!(matches!(opened, Err(PortalError::Version { found: 2, .. })));
}

fn reply_public_key(sealed: &Sealed) -> [u8; 32] {
    let private_key =
        <X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(sealed.reply_key.expose()).unwrap();
    <X25519HkdfSha256 as hpke::Kem>::sk_to_pk(&private_key)
        .to_bytes()
        .into()
}

#[test]
fn json_error_hides_content() {
    let id = MessageId::from_bytes([7; 16]);
    let error = serde_json::from_str::<serde_json::Value>("{\"text\": secret-word}").unwrap_err();
    let error = seal::json_error("reply", &id, &error);
    assert!(!error.to_string().contains("secret-word"));
}
