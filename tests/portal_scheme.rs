//! The portal's scheme across both implementations, without a server: the
//! desktop seals in Rust, portal/assets/scheme.js opens the envelope and
//! seals a reply under Node (portal/tests/crosscheck.mjs), and the desktop
//! opens that reply. Also times sealing and opening a 1 MB envelope.
//!
//! The Node tests print a reason and pass when no `node` is on PATH;
//! scripts/install-test-deps installs it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use serde_json::{Value, json};
use wardmail::portal::{
    self, Attachment, DEFAULT_ITERATIONS, EnteredFactor, Envelope, Factor, FactorKind, SealOptions,
    Sealed, normalise, open_envelope, open_reply, seal,
};
use wardmail::secret::Secret;

/// Enough iterations to exercise PBKDF2, few enough for a debug build.
const TEST_ITERATIONS: u32 = 10_000;

fn envelope() -> Envelope {
    Envelope {
        from: "Nurse Example <nurse@clinic.example.org>".into(),
        to: "patient@example.org".into(),
        subject: "Ihre Befunde – résultats".into(),
        date: "2026-12-04T10:00:00Z".into(),
        text: "Line one\nLine two with ü, 漢字 and an emoji 🙂\n".into(),
        attachments: vec![
            Attachment {
                name: "Befund_ü.pdf".into(),
                media_type: "application/pdf".into(),
                data: (0..=255u8).collect(),
            },
            Attachment {
                name: "empty.txt".into(),
                media_type: "text/plain".into(),
                data: Vec::new(),
            },
        ],
        contact: "Riverside Clinic, 0123 456 789".into(),
    }
}

fn options(iterations: u32) -> SealOptions {
    SealOptions {
        iterations,
        expires_at: 1_797_588_000,
        max_attempts: 5,
    }
}

/// Inputs whose normalisation both sides must agree on.
fn normalise_cases() -> Vec<Value> {
    let inputs = [
        (FactorKind::Code, "1234 5678"),
        (FactorKind::Code, "0012-3456"),
        (FactorKind::EmailCode, "１２３4 x 5"),
        (FactorKind::Passphrase, "  Blue  Heron\tRiver \n"),
        (
            FactorKind::Passphrase,
            "a\u{00a0}b\u{2003}c\u{0085}d\u{3000}e",
        ),
        (FactorKind::Passphrase, "zero\u{200b}width\u{feff}kept"),
        (FactorKind::Passphrase, "Café CASE"),
    ];
    inputs
        .iter()
        .map(|(kind, input)| {
            let expected = normalise(*kind, input).unwrap();
            json!({"factor": kind.as_str(), "input": input, "expected": expected.expose()})
        })
        .collect()
}

fn reply_input() -> Value {
    json!({
        "text": "Danke! I'll come on Monday 🙂",
        "date": "2026-12-05T08:30:00Z",
        "attachments": [
            {"name": "scan.png", "type": "image/png", "data": portal::encode(&[0, 255, 1, 254, 128])}
        ],
    })
}

fn reply_public_key(sealed: &Sealed, entered: &EnteredFactor) -> [u8; 32] {
    let wrapped = portal::decode("wrapped_key", &sealed.upload.wrapped_key).unwrap();
    let sealed_envelope = portal::decode("envelope", &sealed.upload.envelope).unwrap();
    open_envelope(
        &sealed.id,
        &sealed.link_secret,
        entered,
        &wrapped,
        &sealed_envelope,
    )
    .unwrap()
    .reply_public_key
}

fn write_input(dir: &Path, sealed: &Sealed, factor: FactorKind, typed: &str, wrong: &str) {
    let entered = EnteredFactor {
        kind: factor,
        text: Secret::new(typed),
        iterations: sealed.upload.iterations,
    };
    let expected = envelope();
    let attachments: Vec<Value> = expected
        .attachments
        .iter()
        .map(|a| json!({"name": a.name, "type": a.media_type, "data": portal::encode(&a.data)}))
        .collect();
    let input = json!({
        "id": sealed.upload.id,
        "link_secret": sealed.link_secret.expose_text(),
        "factor": factor.as_str(),
        "code": typed,
        "wrong_code": wrong,
        "iterations": sealed.upload.iterations,
        "wrapped_key": sealed.upload.wrapped_key,
        "envelope": sealed.upload.envelope,
        "verifier_hash": sealed.upload.verifier_hash,
        "reply_public_key": portal::encode(&reply_public_key(sealed, &entered)),
        "proof": sealed.proof.expose_text(),
        "expected": {
            "from": expected.from,
            "to": expected.to,
            "subject": expected.subject,
            "date": expected.date,
            "text": expected.text,
            "contact": expected.contact,
            "attachments": attachments,
        },
        "reply": reply_input(),
        "normalise_cases": normalise_cases(),
    });
    std::fs::write(dir.join("input.json"), input.to_string()).unwrap();
}

/// Runs crosscheck.mjs on `dir`, or returns `None` when Node is missing.
fn run_node(dir: &Path) -> Option<Output> {
    let script: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "portal",
        "tests",
        "crosscheck.mjs",
    ]
    .iter()
    .collect();
    match Command::new("node").arg(&script).arg(dir).output() {
        Ok(output) => Some(output),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipped: `node` is not on PATH (install Debian's nodejs package)");
            None
        }
        Err(error) => panic!("cannot run node: {error}"),
    }
}

fn check_reply(dir: &Path, sealed: &Sealed) {
    let output: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("output.json")).unwrap()).unwrap();
    assert_eq!(output["wrong_code_rejected"], true);
    eprintln!(
        "scheme.js deriveKeys with N = 600000 took {} ms under Node {}",
        output["derive_ms_600000"], output["node"]
    );

    let enc = portal::decode("enc", output["enc"].as_str().unwrap()).unwrap();
    let ciphertext = portal::decode("ciphertext", output["ciphertext"].as_str().unwrap()).unwrap();
    let reply = open_reply(
        &sealed.id,
        &sealed.reply_key,
        &sealed.proof,
        &enc,
        &ciphertext,
    )
    .unwrap();

    assert_eq!(reply.text, "Danke! I'll come on Monday 🙂");
    assert_eq!(reply.date, "2026-12-05T08:30:00Z");
    assert_eq!(reply.attachments.len(), 1);
    assert_eq!(reply.attachments[0].name, "scan.png");
    assert_eq!(reply.attachments[0].media_type, "image/png");
    assert_eq!(reply.attachments[0].data, [0, 255, 1, 254, 128]);

    let mut tampered = ciphertext.clone();
    tampered[10] ^= 0x01;
    let opened = open_reply(
        &sealed.id,
        &sealed.reply_key,
        &sealed.proof,
        &enc,
        &tampered,
    );
    assert!(opened.is_err(), "a changed reply opened");
}

fn assert_node_succeeded(output: &Output) {
    assert!(
        output.status.success(),
        "crosscheck.mjs failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn crosscheck_code_factor() {
    let sealed = seal(&envelope(), Factor::Code, &options(TEST_ITERATIONS)).unwrap();
    let code = sealed.code.as_ref().unwrap();
    let typed = code.expose_grouped();
    let digits = code.expose_digits();
    let wrong_last = (digits.as_bytes()[7] - b'0' + 1) % 10;
    let wrong = format!("{}{wrong_last}", &digits[..7]);
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), &sealed, FactorKind::Code, &typed, &wrong);

    let Some(output) = run_node(dir.path()) else {
        return;
    };
    assert_node_succeeded(&output);
    check_reply(dir.path(), &sealed);
}

#[test]
fn crosscheck_passphrase_factor() {
    let factor = Factor::Passphrase(Secret::new("Blue Heron River"));
    let sealed = seal(&envelope(), factor, &options(TEST_ITERATIONS)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let typed = "  Blue\u{00a0}Heron\n River ";
    write_input(
        dir.path(),
        &sealed,
        FactorKind::Passphrase,
        typed,
        "blue heron river",
    );

    let Some(output) = run_node(dir.path()) else {
        return;
    };
    assert_node_succeeded(&output);
    check_reply(dir.path(), &sealed);
}

#[test]
fn crosscheck_tampered_envelope_fails() {
    let sealed = seal(&envelope(), Factor::Code, &options(TEST_ITERATIONS)).unwrap();
    let typed = sealed.code.as_ref().unwrap().expose_digits().to_owned();
    let mut bytes = portal::decode("envelope", &sealed.upload.envelope).unwrap();
    bytes[40] ^= 0x01;
    let dir = tempfile::tempdir().unwrap();
    write_input(dir.path(), &sealed, FactorKind::Code, &typed, "00000000");
    // write_input opens the intact envelope for its reply key, so the
    // changed one goes in afterwards.
    let mut input: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("input.json")).unwrap())
            .unwrap();
    input["envelope"] = portal::encode(&bytes).into();
    std::fs::write(dir.path().join("input.json"), input.to_string()).unwrap();

    let Some(output) = run_node(dir.path()) else {
        return;
    };
    assert!(
        !output.status.success(),
        "scheme.js opened a changed envelope"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("changed after it was sealed"),
        "unexpected failure: {stderr}"
    );
}

#[test]
fn one_megabyte_envelope_timing() {
    let mut large = envelope();
    large.attachments = vec![Attachment {
        name: "scan.pdf".into(),
        media_type: "application/pdf".into(),
        data: (0..1_000_000u32).map(|i| (i % 251) as u8).collect(),
    }];

    let started = Instant::now();
    let sealed = seal(&large, Factor::Code, &options(DEFAULT_ITERATIONS)).unwrap();
    let seal_time = started.elapsed();

    let wrapped = portal::decode("wrapped_key", &sealed.upload.wrapped_key).unwrap();
    let sealed_envelope = portal::decode("envelope", &sealed.upload.envelope).unwrap();
    let entered = EnteredFactor {
        kind: FactorKind::Code,
        text: Secret::new(sealed.code.as_ref().unwrap().expose_digits()),
        iterations: DEFAULT_ITERATIONS,
    };
    let started = Instant::now();
    let opened = open_envelope(
        &sealed.id,
        &sealed.link_secret,
        &entered,
        &wrapped,
        &sealed_envelope,
    )
    .unwrap();
    let open_time = started.elapsed();

    assert_eq!(opened.envelope, large);
    eprintln!(
        "1 MB envelope, N = {DEFAULT_ITERATIONS}, this build's profile: seal {seal_time:?}, \
         open {open_time:?}, upload body {} bytes",
        serde_json::to_string(&sealed.upload).unwrap().len()
    );
}
