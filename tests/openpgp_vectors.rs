//! Runs `openpgp::inspect` over the OpenPGP messages of the shared test
//! vectors (Thunderbird's OpenPGP test mail and the protected-headers
//! draft's PGP/MIME samples) and checks the verdict each file must get.
//!
//! The corpus is read from `WARDMAIL_VECTORS`, or from `../shared/vectors`
//! beside the crate. Files that cannot meet their expected verdict are
//! listed in `EXCEPTIONS` with the reason, and the test fails if one of
//! them starts to meet it, so the list stays true.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use wardmail::openpgp::{Keyring, OpenpgpError, inspect};
use wardmail::protection::{
    Encryption, Layer, ProtectionReport, Refusal, SignatureScope, SignatureStatus, Warning,
};

fn corpus() -> PathBuf {
    std::env::var_os("WARDMAIL_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors"))
}

/// The verdict a file must get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// No encryption, no signature, nothing refused.
    Unprotected,
    /// Not encrypted, and every content signature has this status.
    Signed(SignatureStatus),
    /// Decrypted at message level, without any signature.
    Encrypted,
    /// Decrypted at message level, with any signature statuses.
    Decrypted,
    /// Decrypted, and every content signature has this status.
    EncryptedSigned(SignatureStatus),
    /// Decrypted under an outer signature, which covers only ciphertext.
    /// The content signatures inside, if any, have this status.
    SignedCiphertext(Option<SignatureStatus>),
    /// An inline block with text around it: not encrypted at message
    /// level, and the unprotected text is flagged.
    Partial,
    /// Not decrypted and no good signature, with this warning.
    NotProtectedWarned(Warning),
    /// Not shown as protected: no good signature and no decryption.
    NoValidBadge,
    /// A good signature whose signer is not the sender.
    SignerNotSender,
    /// A signature whose signer or date disagrees with the header: some
    /// mismatch warning and no good verdict.
    MismatchWarned,
}

/// Checks a report against an expectation. Returns the first failed
/// condition as text, so that exceptions can be checked to still fail.
fn check(report: &ProtectionReport, expect: Expect) -> Result<(), String> {
    let content: Vec<SignatureStatus> = report
        .content_signatures()
        .map(|signature| signature.status)
        .collect();
    let all = |status: SignatureStatus| !content.is_empty() && content.iter().all(|s| *s == status);
    let no_good = !report
        .signatures
        .iter()
        .any(|signature| signature.status == SignatureStatus::Good);
    let decrypted = report.encrypted == Encryption::Openpgp
        && report.decrypted
        && report.refused.is_none()
        && report.integrity_protected;
    let unencrypted = report.encrypted == Encryption::None && !report.decrypted;

    let ok = match expect {
        Expect::Unprotected => {
            unencrypted && report.signatures.is_empty() && report.refused.is_none()
        }
        Expect::Signed(status) => unencrypted && all(status),
        Expect::Encrypted => decrypted && report.signatures.is_empty(),
        Expect::Decrypted => decrypted,
        Expect::EncryptedSigned(status) => decrypted && all(status),
        Expect::SignedCiphertext(inner) => {
            let outer = report
                .signatures
                .first()
                .is_some_and(|signature| signature.scope == SignatureScope::Ciphertext);
            let inner_ok = match inner {
                Some(status) => all(status),
                None => content.is_empty(),
            };
            decrypted
                && outer
                && inner_ok
                && report
                    .warnings
                    .contains(&Warning::SignatureOutsideEncryption)
        }
        Expect::Partial => {
            report.encrypted == Encryption::None
                && !report.decrypted
                && report
                    .warnings
                    .contains(&Warning::UnprotectedTextAroundProtectedPart)
        }
        Expect::NotProtectedWarned(warning) => {
            unencrypted && no_good && report.warnings.contains(&warning)
        }
        Expect::NoValidBadge => !report.decrypted && no_good,
        Expect::SignerNotSender => {
            all(SignatureStatus::Good)
                && report.signatures.iter().all(|s| !s.signer_matches_from)
                && report.warnings.contains(&Warning::SignerNotSender)
                && !report.signed_by_sender()
        }
        Expect::MismatchWarned => {
            no_good
                && (report.warnings.contains(&Warning::SignerNotSender)
                    || report.warnings.contains(&Warning::SigningTimeMismatch))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected {expect:?}, got {}",
            report.to_json().unwrap()
        ))
    }
}

/// Thunderbird's OpenPGP test mail, read with Alice's and Bob's secret
/// keys and Carol's certificates.
const THUNDERBIRD: &[(&str, Expect)] = &[
    (
        "eml-rnp/plaintext-with-key-and-windows-1252-encoded-eml-attachment.eml",
        Expect::Unprotected,
    ),
    (
        "eml-rnp/plaintext-with-windows-1252-encoded-eml-attachment.eml",
        Expect::Unprotected,
    ),
    // Not repaired: the Exchange-mangled structure is not unambiguous, so
    // it is shown unencrypted with the encrypted attachment flagged.
    (
        "eml/alice-broken-exchange.eml",
        Expect::NotProtectedWarned(Warning::UnprotectedTextAroundProtectedPart),
    ),
    (
        "eml/alice-signed.eml",
        Expect::Signed(SignatureStatus::Good),
    ),
    ("eml/alice-utf.eml", Expect::Signed(SignatureStatus::Good)),
    ("eml/bob-enc-html-nbsp.eml", Expect::Decrypted),
    ("eml/bob-enc-inline-nbsp-qp.eml", Expect::Decrypted),
    (
        "eml/bob-to-alice-signed-damaged-signature.eml",
        Expect::Signed(SignatureStatus::Bad),
    ),
    (
        "eml/dual-signed-uncommon-content-type.eml",
        Expect::Signed(SignatureStatus::Good),
    ),
    // Decrypts although the key is revoked now. The signer (jessie@pgp.icu)
    // has no key in the corpus, so its signature is unknown-key.
    ("eml/enc-to-carol@pgp.icu-revoked.eml", Expect::Decrypted),
    (
        "eml/encrypted-and-signed-alice-to-bob-nonascii.eml",
        Expect::EncryptedSigned(SignatureStatus::Good),
    ),
    (
        "eml/encrypted-to-alice-as-hidden-recipient.eml",
        Expect::Encrypted,
    ),
    ("eml/eve-duplicate.eml", Expect::NoValidBadge),
    ("eml/forwarded-eml-signed-by-alice.eml", Expect::Unprotected),
    ("eml/fwd-signed.eml", Expect::Unprotected),
    ("eml/fwd-unsigned-encrypted.eml", Expect::Unprotected),
    // The signer key 0x0E27928F241B4D20 (alice@example.com) is not among
    // the copied keys, so the rule for an unknown key applies.
    (
        "eml/inline-signed-latin1.eml",
        Expect::Signed(SignatureStatus::UnknownKey),
    ),
    (
        "eml/inline-signed-utf8.eml",
        Expect::Signed(SignatureStatus::UnknownKey),
    ),
    // The S/MIME signature inside is judged by the S/MIME reader.
    (
        "eml/inner-smime-sig-in-pgp-encrypted.eml",
        Expect::Encrypted,
    ),
    (
        "eml/multiple-signatures.eml",
        Expect::Signed(SignatureStatus::Good),
    ),
    ("eml/openpgp__stripped_sig.eml", Expect::Unprotected),
    (
        "eml/outer-pgp-sig-inner-pgp-enc-sig.eml",
        Expect::SignedCiphertext(Some(SignatureStatus::Good)),
    ),
    (
        "eml/outer-pgp-sig-inner-pgp-enc-with-mixed.eml",
        Expect::NotProtectedWarned(Warning::UnprotectedTextAroundProtectedPart),
    ),
    (
        "eml/outer-pgp-sig-inner-pgp-enc.eml",
        Expect::SignedCiphertext(None),
    ),
    (
        "eml/outer-smime-bad-sig-inner-pgp-enc-sig-with-mixed.eml",
        Expect::NotProtectedWarned(Warning::UnprotectedTextAroundProtectedPart),
    ),
    (
        "eml/outer-smime-bad-sig-inner-pgp-enc-sig.eml",
        Expect::SignedCiphertext(Some(SignatureStatus::Good)),
    ),
    (
        "eml/outer-smime-bad-sig-inner-pgp-enc.eml",
        Expect::SignedCiphertext(None),
    ),
    ("eml/partial-encrypt-for-alice-html.eml", Expect::Partial),
    (
        "eml/partial-encrypt-for-alice-plaintext.eml",
        Expect::Partial,
    ),
    ("eml/partial-encrypt-for-carol-html.eml", Expect::Partial),
    (
        "eml/partial-encrypt-for-carol-plaintext.eml",
        Expect::Partial,
    ),
    (
        "eml/signed-by-0x3099ff1238852b9f-encrypted-to-0xf231550c4f47e38e-with-key.eml",
        Expect::EncryptedSigned(SignatureStatus::Good),
    ),
    (
        "eml/signed-by-0x3099ff1238852b9f-encrypted-to-0xf231550c4f47e38e.eml",
        Expect::EncryptedSigned(SignatureStatus::Good),
    ),
    (
        "eml/signed-by-0x3099ff1238852b9f-to-0xf231550c4f47e38e-unencrypted-with-key.eml",
        Expect::Signed(SignatureStatus::Good),
    ),
    (
        "eml/signed-by-0x3099ff1238852b9f-to-0xf231550c4f47e38e-unencrypted.eml",
        Expect::Signed(SignatureStatus::Good),
    ),
    (
        "eml/signed-by-0xfbfcc82a015e7330-encrypted-to-0xf231550c4f47e38e-multi-from.eml",
        Expect::SignerNotSender,
    ),
    (
        "eml/signed-by-0xfbfcc82a015e7330-encrypted-to-0xf231550c4f47e38e-with-key.eml",
        Expect::EncryptedSigned(SignatureStatus::Good),
    ),
    (
        "eml/signed-by-0xfbfcc82a015e7330-encrypted-to-0xf231550c4f47e38e.eml",
        Expect::EncryptedSigned(SignatureStatus::Good),
    ),
    (
        "eml/signed-by-0xfbfcc82a015e7330-to-0xf231550c4f47e38e-unencrypted-in-mixed.eml",
        Expect::Signed(SignatureStatus::Good),
    ),
    (
        "eml/signed-by-0xfbfcc82a015e7330-to-0xf231550c4f47e38e-unencrypted-with-key.eml",
        Expect::Signed(SignatureStatus::Good),
    ),
    (
        "eml/signed-by-0xfbfcc82a015e7330-to-0xf231550c4f47e38e-unencrypted.eml",
        Expect::Signed(SignatureStatus::Good),
    ),
    (
        "eml/signed-encrypted-autocrypt-gossip.eml",
        Expect::EncryptedSigned(SignatureStatus::Good),
    ),
    ("eml/signed-inline-indented.eml", Expect::Unprotected),
    ("eml/signed-mismatch-email-date.eml", Expect::MismatchWarned),
    (
        "eml/signed-with-mailman-footer.eml",
        Expect::Signed(SignatureStatus::Good),
    ),
    ("eml/sigspoof-git-commit.eml", Expect::NoValidBadge),
    (
        "eml/unob-signed-by-0x3099ff1238852b9f-to-0xf231550c4f47e38e.eml",
        Expect::Signed(SignatureStatus::Good),
    ),
    (
        "eml/unrelated-and-fake-keys-attached.eml",
        Expect::NoValidBadge,
    ),
    (
        "eml/unsigned-encrypted-to-0xf231550c4f47e38e-from-0x3099ff1238852b9f-with-key.eml",
        Expect::Encrypted,
    ),
    (
        "eml/unsigned-encrypted-to-0xf231550c4f47e38e-from-0x3099ff1238852b9f.eml",
        Expect::Encrypted,
    ),
    (
        "eml/unsigned-encrypted-to-0xf231550c4f47e38e-from-0xfbfcc82a015e7330-with-key.eml",
        Expect::Encrypted,
    ),
    (
        "eml/unsigned-encrypted-to-0xf231550c4f47e38e-from-0xfbfcc82a015e7330.eml",
        Expect::Encrypted,
    ),
    (
        "eml/unsigned-unencrypted-0x3099ff1238852b9f-autocrypt.eml",
        Expect::Unprotected,
    ),
    (
        "eml/unsigned-unencrypted-from-bob-to-alice.eml",
        Expect::Unprotected,
    ),
    (
        "eml/unsigned-unencrypted-key-0x1f10171bfb881b1c-attached.eml",
        Expect::Unprotected,
    ),
];

/// The protected-headers draft's PGP/MIME samples, read with Alice's
/// certificate and Bob's secret key.
const PROTECTED_HEADERS: &[(&str, Expect)] = &[
    ("pgpmime-signed.eml", Expect::Signed(SignatureStatus::Good)),
    (
        "pgpmime-sign+enc.eml",
        Expect::EncryptedSigned(SignatureStatus::Good),
    ),
    (
        "pgpmime-sign+enc+legacy-disp.eml",
        Expect::EncryptedSigned(SignatureStatus::Good),
    ),
    ("pgpmime-enc+legacy-disp.eml", Expect::Encrypted),
    (
        "pgpmime-layered.eml",
        Expect::EncryptedSigned(SignatureStatus::Good),
    ),
    (
        "pgpmime-layered+legacy-disp.eml",
        Expect::EncryptedSigned(SignatureStatus::Good),
    ),
];

/// Files whose verdict differs from the expected one, with the reason.
const EXCEPTIONS: &[(&str, &str)] = &[
    (
        "eml/dual-signed-uncommon-content-type.eml",
        "the OpenPGP signature does not verify over the first part; GnuPG 2.2 \
         also reports BAD signature for it; the S/MIME signature is not judged here",
    ),
    (
        "eml/multiple-signatures.eml",
        "the signed messages are message/rfc822 entries of a multipart/digest; \
         their signatures belong to those attachments, and the report has no \
         per-attachment verdict",
    ),
    (
        "eml/outer-smime-bad-sig-inner-pgp-enc-sig.eml",
        "the outer S/MIME signature is judged by the S/MIME reader, so this \
         report alone marks no outer signature as covering ciphertext",
    ),
    (
        "eml/outer-smime-bad-sig-inner-pgp-enc.eml",
        "the outer S/MIME signature is judged by the S/MIME reader, so this \
         report alone marks no outer signature as covering ciphertext",
    ),
    (
        "eml/signed-inline-indented.eml",
        "the expectation assumes indented armor, but in this copy the armor \
         lines start at column 0 and only the signed text is indented, so the \
         cleartext signature verifies as good",
    ),
    (
        "eml/signed-with-mailman-footer.eml",
        "the signed part was edited after signing: its protected Message-ID \
         ends in 1ag, and with 1af restored the same signature verifies as \
         good, so the bad verdict is correct",
    ),
    (
        "eml/unob-signed-by-0x3099ff1238852b9f-to-0xf231550c4f47e38e.eml",
        "unobtrusive signatures (a Sig: header field on the MIME part) are not \
         implemented; the message reads as unsigned, never as valid",
    ),
];

fn load_keys(keyring: &mut Keyring, folder: &Path, files: &[&str]) {
    for file in files {
        let bytes = std::fs::read(folder.join(file)).unwrap();
        keyring.import(&bytes).unwrap();
    }
}

/// Runs every case and returns (passed, exceptions confirmed, failures).
fn run(folder: &Path, cases: &[(&str, Expect)], keyring: &Keyring) -> (usize, usize, Vec<String>) {
    let mut passed = 0;
    let mut excepted = 0;
    let mut failures = Vec::new();
    for (file, expect) in cases {
        let raw = std::fs::read(folder.join(file)).unwrap();
        let report = inspect(&raw, keyring);
        let result = check(&report, *expect);
        let exception = EXCEPTIONS.iter().find(|(name, _)| name == file);
        match (result, exception) {
            (Ok(()), None) => passed += 1,
            (Err(error), None) => failures.push(format!("{file}: {error}")),
            (Err(_), Some((_, reason))) => {
                eprintln!("EXCEPTION {file}: {reason}");
                excepted += 1;
            }
            (Ok(()), Some(_)) => failures.push(format!("{file}: passes, remove its exception")),
        }
        // A refused layer must never count as decrypted.
        if report.refused.is_some() {
            assert!(!report.decrypted, "{file}: refused but decrypted");
        }
    }
    (passed, excepted, failures)
}

/// Returns the .eml files under `folder/sub`, as paths relative to
/// `folder`.
fn eml_files(folder: &Path, sub: &str, prefix: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(folder.join(sub))
        .unwrap()
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".eml") && name.starts_with(prefix))
        .map(|name| {
            if sub.is_empty() {
                name
            } else {
                format!("{sub}/{name}")
            }
        })
        .collect();
    files.sort();
    files
}

#[test]
fn thunderbird_vectors() {
    let folder = corpus().join("thunderbird-openpgp");
    let mut keyring = Keyring::new();
    load_keys(
        &mut keyring,
        &folder.join("keys"),
        &[
            "alice@openpgp.example-0xf231550c4f47e38e-secret.asc",
            "bob@openpgp.example-0xfbfcc82a015e7330-secret.asc",
            "carol@example.com-0x3099ff1238852b9f-pub.asc",
            "carol@pgp.icu-0xEF2FD01608AFD744-revoked-secret.asc",
        ],
    );

    let mut listed: Vec<String> = THUNDERBIRD
        .iter()
        .map(|(file, _)| file.to_string())
        .collect();
    listed.sort();
    let mut present = eml_files(&folder, "eml", "");
    present.extend(eml_files(&folder, "eml-rnp", ""));
    present.sort();
    assert_eq!(listed, present, "every corpus file needs an expectation");

    let (passed, excepted, failures) = run(&folder, THUNDERBIRD, &keyring);
    eprintln!("thunderbird-openpgp: {passed} passed, {excepted} exceptions");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(passed + excepted, THUNDERBIRD.len());
}

#[test]
fn protected_headers_vectors() {
    let folder = corpus().join("protected-headers-draft");
    let mut keyring = Keyring::new();
    load_keys(
        &mut keyring,
        &folder,
        &[
            "alice@openpgp.example.pub.asc",
            "bob@openpgp.example.sec.asc",
        ],
    );

    let mut listed: Vec<String> = PROTECTED_HEADERS
        .iter()
        .map(|(f, _)| f.to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, eml_files(&folder, "", "pgpmime-"));

    let (passed, excepted, failures) = run(&folder, PROTECTED_HEADERS, &keyring);
    eprintln!("protected-headers-draft: {passed} passed, {excepted} exceptions");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(passed, PROTECTED_HEADERS.len());
}

/// Returns the bytes with every CRLF turned into LF.
fn lf(bytes: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(bytes)
        .replace("\r\n", "\n")
        .into_bytes()
}

#[test]
fn protected_headers_inner_mime() {
    let folder = corpus().join("protected-headers-draft");
    let mut keyring = Keyring::new();
    load_keys(
        &mut keyring,
        &folder,
        &[
            "alice@openpgp.example.pub.asc",
            "bob@openpgp.example.sec.asc",
        ],
    );

    // In these samples the decrypted entity is the innermost one, so the
    // report's inner MIME must equal the reference decryption.
    for name in [
        "pgpmime-sign+enc",
        "pgpmime-sign+enc+legacy-disp",
        "pgpmime-enc+legacy-disp",
    ] {
        let raw = std::fs::read(folder.join(format!("{name}.eml"))).unwrap();
        let expected = std::fs::read(folder.join(format!("{name}.inner"))).unwrap();
        let report = inspect(&raw, &keyring);
        let inner = report.inner_mime.expect(name);
        assert_eq!(
            lf(&inner).trim_ascii_end(),
            lf(&expected).trim_ascii_end(),
            "{name}"
        );
    }

    // Layered: both layers cover the text part.
    let raw = std::fs::read(folder.join("pgpmime-layered.eml")).unwrap();
    let report = inspect(&raw, &keyring);
    assert_eq!(
        report.parts[0].protection,
        vec![Layer::OpenpgpEncrypted, Layer::OpenpgpSigned]
    );
    assert!(report.signed_by_sender());
}

#[test]
fn vectors_without_secret_key() {
    let folder = corpus().join("thunderbird-openpgp");
    let keyring = Keyring::new();
    let file = "eml/unsigned-encrypted-to-0xf231550c4f47e38e-from-0xfbfcc82a015e7330.eml";
    let report = inspect(&std::fs::read(folder.join(file)).unwrap(), &keyring);
    assert_eq!(report.encrypted, Encryption::Openpgp);
    assert_eq!(report.refused, Some(Refusal::NoKey));
    assert!(!report.decrypted);
    assert!(report.inner_mime.is_none());

    let file = "eml/signed-by-0xfbfcc82a015e7330-to-0xf231550c4f47e38e-unencrypted.eml";
    let report = inspect(&std::fs::read(folder.join(file)).unwrap(), &keyring);
    assert_eq!(report.signatures[0].status, SignatureStatus::UnknownKey);
    assert_eq!(report.signatures[0].signer, "unknown");
    assert!(!report.signed_by_sender());
}

#[test]
fn thunderbird_keys_import() {
    let keys = corpus().join("thunderbird-openpgp/keys");
    // Real-world shapes that must import without error: certifications,
    // gnu-dummy secret subkeys, an untweaked cv25519 secret, a UTF-8 armor
    // comment, trailing whitespace and a binary key.
    let must_import = [
        "D4ED849BCD779DFC-after-new-identity.asc",
        "D4ED849BCD779DFC-before-new-identity.asc",
        "DC1A523730F62AE8-pub-does_not_expire-ends_with_whitespace.pgp",
        "apple-pub.asc",
        "benny-hashwell-0xc55ccd9c5ab482b2-pub.asc",
        "eddie@openpgp.example-0x15e9357d2c2395c0-pub.asc",
        "eddie@openpgp.example-0x15e9357d2c2395c0-secret.asc",
        "heisenberg-signed-by-pinkman.asc",
        "key-binary.gpg",
        "key-with-utf8-comment.asc",
        "kylie-0x1AABD9FAD1E411DD-secret-subkeys.asc",
        "ofelia-public.asc",
        "ofelia-secret-subkeys.asc",
        "ofelia-secret.asc",
        "untweaked-secret.asc",
    ];
    for file in must_import {
        let bytes = std::fs::read(keys.join(file)).unwrap();
        let result = Keyring::new().import(&bytes);
        assert!(result.is_ok(), "{file}: {result:?}");
    }

    // Every other key file may be rejected, but must not panic.
    for entry in std::fs::read_dir(&keys).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let _ = Keyring::new().import(&bytes);
    }
}

#[test]
fn thunderbird_passphrase_keys_unlock() {
    let folder = corpus().join("thunderbird-openpgp");
    let cases = [
        (
            "alice@openpgp.example-0xf231550c4f47e38e-secret-with-pp.asc",
            "alice-passphrase",
            "eml/unsigned-encrypted-to-0xf231550c4f47e38e-from-0xfbfcc82a015e7330.eml",
        ),
        (
            "bob@openpgp.example-0xfbfcc82a015e7330-secret-with-pp.asc",
            "bob-passphrase",
            "eml/encrypted-and-signed-alice-to-bob-nonascii.eml",
        ),
    ];
    for (key, passphrase, message) in cases {
        let mut keyring = Keyring::new();
        let bytes = std::fs::read(folder.join("keys").join(key)).unwrap();
        let fingerprint = keyring.import(&bytes).unwrap().remove(0);
        let raw = std::fs::read(folder.join(message)).unwrap();

        let report = inspect(&raw, &keyring);
        assert_eq!(report.refused, Some(Refusal::KeyLocked), "{key}");
        assert_eq!(report.locked_keys, vec![fingerprint.to_hex()], "{key}");

        let wrong = keyring.unlock(&fingerprint, "not-the-passphrase");
        assert!(
            matches!(wrong, Err(OpenpgpError::WrongPassphrase { .. })),
            "{key}: {wrong:?}"
        );
        assert!(
            keyring.unlock(&fingerprint, passphrase).unwrap() >= 1,
            "{key}"
        );

        let report = inspect(&raw, &keyring);
        assert!(report.decrypted, "{key}");
    }
}

#[test]
fn thunderbird_revocation_applies() {
    let folder = corpus().join("thunderbird-openpgp");
    let mut keyring = Keyring::new();
    load_keys(
        &mut keyring,
        &folder.join("keys"),
        &[
            "alice@openpgp.example-0xf231550c4f47e38e-pub.asc",
            "alice@openpgp.example-0xf231550c4f47e38e-rev.asc",
        ],
    );
    let raw = std::fs::read(folder.join("eml/alice-signed.eml")).unwrap();
    let report = inspect(&raw, &keyring);
    assert_eq!(report.signatures.len(), 1);
    assert_eq!(report.signatures[0].status, SignatureStatus::Revoked);
    assert!(!report.signed_by_sender());
}

#[test]
fn protected_subject_replaces_outer() {
    let folder = corpus().join("protected-headers-draft");
    let mut keyring = Keyring::new();
    load_keys(&mut keyring, &folder, &["bob@openpgp.example.sec.asc"]);
    let raw = std::fs::read(folder.join("pgpmime-sign+enc.eml")).unwrap();
    let outer = wardmail::message::parse(&raw);
    assert_eq!(outer.envelope.subject, "...");

    let report = inspect(&raw, &keyring);
    let inner = report.inner_mime.expect("decrypted");
    let shown = wardmail::message::parse_inner(&outer, &inner);
    assert_eq!(shown.envelope.subject, "BarCorp contract signed, let's go!");
    assert_eq!(shown.envelope.message_id, outer.envelope.message_id);
}
