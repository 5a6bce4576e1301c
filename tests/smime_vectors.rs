//! Runs `smime::inspect` over the S/MIME vectors that Thunderbird's
//! test_smime_decrypt.js checks, and over the S/MIME samples of the
//! protected headers draft, against their expected verdicts.

// Test helpers outside #[test] functions panic on setup failure by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use wardmail::protection::{Encryption, ProtectionReport, SignatureStatus};
use wardmail::smime::{Identity, TrustStore, inspect};

/// The public corpus: `WARDMAIL_VECTORS`, or `shared/vectors` beside the
/// repository, where CI places it.
fn vectors() -> PathBuf {
    std::env::var_os("WARDMAIL_VECTORS").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors"),
        PathBuf::from,
    )
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

fn thunderbird_identities(dir: &Path) -> Vec<Identity> {
    let mut identities = Vec::new();
    for name in [
        "Alice.p12",
        "Bob.p12",
        "Dave.p12",
        "Eve.p12",
        "Alice-ec.p12",
    ] {
        let bytes = read(&dir.join(name));
        identities.push(Identity::from_pkcs12(&bytes, "nss").unwrap());
    }
    identities
}

/// Computes the three values that the Thunderbird table checks. enc means
/// the message-level encryption was removed, sig means a signature covers
/// the content, and sig_good means the content is signed by the sender.
fn verdict(report: &ProtectionReport) -> (bool, bool, bool) {
    let enc = report.encrypted == Encryption::Smime && report.decrypted;
    let sig = report.content_signatures().next().is_some();
    (enc, sig, report.signed_by_sender())
}

/// Rows of the expected-results table: file (relative to `nss-generated`),
/// enc, sig and sig_good. `None` means the table gives "-": the file is
/// only checked for decryption.
#[rustfmt::skip]
const TABLE: &[(&str, bool, Option<bool>, Option<bool>)] = &[
    ("alice.env.eml", true, Some(false), Some(false)),
    ("alice.dsig.SHA1.multipart.bad.eml", false, Some(true), Some(false)),
    ("alice.dsig.SHA1.multipart.env.eml", true, Some(true), Some(false)),
    ("alice.dsig.SHA1.multipart.eml", false, Some(true), Some(false)),
    ("alice.dsig.SHA1.multipart.mismatch-econtent.eml", false, Some(true), Some(false)),
    ("alice.dsig.SHA256.multipart.bad.eml", false, Some(true), Some(false)),
    ("alice.dsig.SHA256.multipart.eml", false, Some(true), Some(true)),
    ("alice.future.dsig.SHA256.multipart.eml", false, Some(true), Some(false)),
    ("alice.dsig.SHA256.multipart.env.eml", true, Some(true), Some(true)),
    ("alice.dsig.SHA256.multipart.mismatch-econtent.eml", false, Some(true), Some(false)),
    ("alice.dsig.SHA384.multipart.bad.eml", false, Some(true), Some(false)),
    ("alice.dsig.SHA384.multipart.eml", false, Some(true), Some(true)),
    ("alice.dsig.SHA384.multipart.env.eml", true, Some(true), Some(true)),
    ("alice.dsig.SHA384.multipart.mismatch-econtent.eml", false, Some(true), Some(false)),
    ("alice.dsig.SHA512.multipart.bad.eml", false, Some(true), Some(false)),
    ("alice.dsig.SHA512.multipart.eml", false, Some(true), Some(true)),
    ("alice.dsig.SHA512.multipart.env.eml", true, Some(true), Some(true)),
    ("alice.dsig.SHA512.multipart.mismatch-econtent.eml", false, Some(true), Some(false)),
    ("alice.sig.SHA1.opaque.eml", false, Some(true), Some(false)),
    ("alice.sig.SHA1.opaque.env.eml", true, Some(true), Some(false)),
    ("alice.sig.SHA256.opaque.eml", false, Some(true), Some(true)),
    ("alice.sig.SHA256.opaque.env.eml", true, Some(true), Some(true)),
    ("alice.sig.SHA384.opaque.eml", false, Some(true), Some(true)),
    ("alice.sig.SHA384.opaque.env.eml", true, Some(true), Some(true)),
    ("alice.sig.SHA512.opaque.eml", false, Some(true), Some(true)),
    ("alice.sig.SHA512.opaque.env.eml", true, Some(true), Some(true)),
    ("alice.env.sig.SHA1.opaque.eml", true, Some(false), Some(false)),
    ("alice.env.dsig.SHA1.multipart.eml", true, Some(false), Some(false)),
    ("alice.env.sig.SHA256.opaque.eml", true, Some(false), Some(false)),
    ("alice.env.dsig.SHA256.multipart.eml", true, Some(false), Some(false)),
    ("alice.env.sig.SHA384.opaque.eml", true, Some(false), Some(false)),
    ("alice.env.dsig.SHA384.multipart.eml", true, Some(false), Some(false)),
    ("alice.env.sig.SHA512.opaque.eml", true, Some(false), Some(false)),
    ("alice.env.dsig.SHA512.multipart.eml", true, Some(false), Some(false)),
    ("../smime-manual/alice.env.mixed.dsig.SHA256.multipart.eml", false, Some(true), Some(false)),
    ("../smime-manual/alice.dsig.SHA256.multipart.env.dsig.eml", true, Some(true), Some(true)),
    ("../smime-manual/outer-smime-bad-sig-inner-smime-enc-sig.eml", true, Some(true), Some(true)),
    ("../smime-manual/outer-smime-bad-sig-inner-smime-enc.eml", true, Some(false), Some(false)),
    ("alice.env.sig.SHA1.opaque.dave.sig.SHA1.opaque.eml", false, Some(true), Some(false)),
    ("alice.env.dsig.SHA1.multipart.dave.sig.SHA1.opaque.eml", false, Some(true), Some(false)),
    ("alice.env.sig.SHA256.opaque.dave.sig.SHA256.opaque.eml", false, Some(true), Some(true)),
    ("alice.env.dsig.SHA256.multipart.dave.sig.SHA256.opaque.eml", false, Some(true), Some(false)),
    ("alice.env.sig.SHA384.opaque.dave.sig.SHA384.opaque.eml", false, Some(true), Some(true)),
    ("alice.env.dsig.SHA384.multipart.dave.sig.SHA384.opaque.eml", false, Some(true), Some(false)),
    ("alice.env.sig.SHA512.opaque.dave.sig.SHA512.opaque.eml", false, Some(true), Some(true)),
    ("alice.env.dsig.SHA512.multipart.dave.sig.SHA512.opaque.eml", false, Some(true), Some(false)),
    ("alice.plain.sig.SHA1.opaque.dave.sig.SHA1.opaque.eml", false, Some(true), Some(false)),
    ("alice.plain.dsig.SHA1.multipart.dave.sig.SHA1.opaque.eml", false, Some(true), Some(false)),
    ("alice.plain.sig.SHA256.opaque.dave.sig.SHA256.opaque.eml", false, Some(true), Some(true)),
    ("alice.plain.dsig.SHA256.multipart.dave.sig.SHA256.opaque.eml", false, Some(true), Some(false)),
    ("alice.plain.sig.SHA384.opaque.dave.sig.SHA384.opaque.eml", false, Some(true), Some(true)),
    ("alice.plain.dsig.SHA384.multipart.dave.sig.SHA384.opaque.eml", false, Some(true), Some(false)),
    ("alice.plain.sig.SHA512.opaque.dave.sig.SHA512.opaque.eml", false, Some(true), Some(true)),
    ("alice.plain.dsig.SHA512.multipart.dave.sig.SHA512.opaque.eml", false, Some(true), Some(false)),
    ("alice.plain.sig.SHA1.opaque.dave.dsig.SHA1.multipart.eml", false, Some(true), Some(false)),
    ("alice.plain.dsig.SHA1.multipart.dave.dsig.SHA1.multipart.eml", false, Some(true), Some(false)),
    ("alice.plain.sig.SHA256.opaque.dave.dsig.SHA256.multipart.eml", false, Some(true), Some(false)),
    ("alice.plain.dsig.SHA256.multipart.dave.dsig.SHA256.multipart.eml", false, Some(true), Some(false)),
    ("alice.plain.sig.SHA384.opaque.dave.dsig.SHA384.multipart.eml", false, Some(true), Some(false)),
    ("alice.plain.dsig.SHA384.multipart.dave.dsig.SHA384.multipart.eml", false, Some(true), Some(false)),
    ("alice.plain.sig.SHA512.opaque.dave.dsig.SHA512.multipart.eml", false, Some(true), Some(false)),
    ("alice.plain.dsig.SHA512.multipart.dave.dsig.SHA512.multipart.eml", false, Some(true), Some(false)),
    ("../smime-interop/fran-oaep_ossl.env", true, None, None),
    ("../smime-interop/fran-oaep-label_ossl.env", true, None, None),
    ("../smime-interop/fran-oaep-sha256hash_ossl.env", true, None, None),
    ("../smime-interop/fran-oaep-sha256hash-sha256mgf_ossl.env", true, None, None),
    ("../smime-interop/fran-ec_ossl-aes128-sha256.env", true, None, None),
    ("../smime-interop/fran-ec_ossl-aes256-sha512.env", true, None, None),
    // Not in the upstream table: opaque-signed HTML, valid like the rows
    // above except for SHA-1.
    ("alice.html.sig.SHA1.opaque.eml", false, Some(true), Some(false)),
    ("alice.html.sig.SHA1.opaque.env.eml", true, Some(true), Some(false)),
    ("alice.html.sig.SHA256.opaque.eml", false, Some(true), Some(true)),
    ("alice.html.sig.SHA256.opaque.env.eml", true, Some(true), Some(true)),
    ("alice.html.sig.SHA384.opaque.eml", false, Some(true), Some(true)),
    ("alice.html.sig.SHA384.opaque.env.eml", true, Some(true), Some(true)),
    ("alice.html.sig.SHA512.opaque.eml", false, Some(true), Some(true)),
    ("alice.html.sig.SHA512.opaque.env.eml", true, Some(true), Some(true)),
];

/// Our verdict (enc, sig, sig_good) and reason for a file in EXCEPTIONS.
type Exception = ((bool, bool, bool), &'static str);

const WRAPPED: Exception = (
    (true, false, false),
    "The encrypted layer is wrapped in two signatures, and the table expects it to \
     stay closed. We decrypt it and mark both signatures as covering only \
     ciphertext, so no signature vouches for the content.",
);

const INNER: Exception = (
    (false, true, false),
    "The table expects only the outer opaque signature by Dave to count. We also \
     check the inner opaque signature, whose signer Alice is not the From sender \
     Dave, so the content is not signed by the sender. The table gives the same \
     verdict for the rows where the inner signature is multipart/signed.",
);

/// Files whose verdict differs from the table on purpose, with our verdict
/// and the reason. Each listed file must give our verdict and still differ
/// from the table, so the list cannot go stale.
#[rustfmt::skip]
const EXCEPTIONS: &[(&str, Exception)] = &[
    ("alice.env.sig.SHA1.opaque.dave.sig.SHA1.opaque.eml", WRAPPED),
    ("alice.env.dsig.SHA1.multipart.dave.sig.SHA1.opaque.eml", WRAPPED),
    ("alice.env.sig.SHA256.opaque.dave.sig.SHA256.opaque.eml", WRAPPED),
    ("alice.env.dsig.SHA256.multipart.dave.sig.SHA256.opaque.eml", WRAPPED),
    ("alice.env.sig.SHA384.opaque.dave.sig.SHA384.opaque.eml", WRAPPED),
    ("alice.env.dsig.SHA384.multipart.dave.sig.SHA384.opaque.eml", WRAPPED),
    ("alice.env.sig.SHA512.opaque.dave.sig.SHA512.opaque.eml", WRAPPED),
    ("alice.env.dsig.SHA512.multipart.dave.sig.SHA512.opaque.eml", WRAPPED),
    ("alice.plain.sig.SHA256.opaque.dave.sig.SHA256.opaque.eml", INNER),
    ("alice.plain.sig.SHA384.opaque.dave.sig.SHA384.opaque.eml", INNER),
    ("alice.plain.sig.SHA512.opaque.dave.sig.SHA512.opaque.eml", INNER),
];

/// Formats a table mismatch with everything needed to find the cause.
fn describe_failure(
    file: &str,
    (enc, sig, sig_good): (bool, Option<bool>, Option<bool>),
    report: &ProtectionReport,
) -> String {
    let (got_enc, got_sig, got_good) = verdict(report);
    let signatures: Vec<String> = report
        .signatures
        .iter()
        .map(|s| {
            format!(
                "{:?}/{:?}/{}/{}",
                s.status, s.scope, s.signer, s.signer_matches_from
            )
        })
        .collect();
    format!(
        "{file}: expected enc={enc} sig={sig:?} good={sig_good:?}, \
         got enc={got_enc} sig={got_sig} good={got_good}, refused={:?}, \
         signatures={signatures:?}, warnings={:?}",
        report.refused, report.warnings
    )
}

#[test]
fn thunderbird_table() {
    let base = vectors().join("thunderbird-smime/nss-generated");
    let mut identities = thunderbird_identities(&base);
    let interop = base.join("../smime-interop");
    for name in ["Fran.p12", "Fran-ec.p12"] {
        identities.push(Identity::from_pkcs12(&read(&interop.join(name)), "nss").unwrap());
    }
    let mut trust = TrustStore::empty();
    trust
        .add_certificates(&read(&base.join("TestCA.pem")))
        .unwrap();

    let mut failures = Vec::new();
    let mut passed = 0;
    let mut excepted = 0;
    for &(file, enc, sig, sig_good) in TABLE {
        let report = inspect(&read(&base.join(file)), &identities, &trust);
        let (got_enc, got_sig, got_good) = verdict(&report);
        let mut ok = got_enc == enc;
        if let (Some(sig), Some(sig_good)) = (sig, sig_good) {
            ok &= got_sig == sig && got_good == sig_good;
        } else {
            let inner = report.inner_mime.clone().unwrap_or_default();
            ok &= String::from_utf8_lossy(&inner).contains("This is a test message to Fran.");
        }
        if file.contains(".SHA1.") && got_sig {
            let no_sha1_good = report
                .signatures
                .iter()
                .all(|s| s.status != SignatureStatus::Good);
            ok &= no_sha1_good;
        }

        let exception = EXCEPTIONS.iter().find(|(name, _)| *name == file);
        let got = (got_enc, got_sig, got_good);
        match exception {
            Some(_) if ok => {
                failures.push(format!("{file}: listed as exception but matches the table"));
            }
            Some((_, (ours, reason))) if got != *ours => {
                failures.push(format!(
                    "{file}: expected our verdict {ours:?}, got {got:?} ({reason})"
                ));
            }
            Some(_) => excepted += 1,
            None if ok => passed += 1,
            None => failures.push(describe_failure(file, (enc, sig, sig_good), &report)),
        }
    }

    eprintln!(
        "thunderbird table: {passed} of {} rows match, {} listed exceptions",
        TABLE.len(),
        EXCEPTIONS.len()
    );
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(excepted, EXCEPTIONS.len());
    assert_eq!(passed + excepted, TABLE.len());
}

fn normalize_line_ends(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .copied()
        .filter(|byte| *byte != b'\r')
        .collect()
}

#[test]
fn protected_headers_smime() {
    let dir = vectors().join("protected-headers-draft");
    let bob = Identity::from_pkcs12(&read(&dir.join("bob.p12")), "bob").unwrap();
    let bob_der = Identity::from_pkcs12(&read(&dir.join("bob.p12.der")), "bob").unwrap();
    assert_eq!(bob.addresses(), bob_der.addresses());
    let mut trust = TrustStore::empty();
    trust
        .add_certificates(&read(&dir.join("sample-ca.pem")))
        .unwrap();

    // (file, encrypted, signed, reference for the innermost entity)
    let cases = [
        (
            "smime-onepart-signed.eml",
            false,
            true,
            "smime-onepart-signed.inner",
        ),
        ("smime-multipart-signed.eml", false, true, ""),
        (
            "smime-sign+enc.eml",
            true,
            true,
            "smime-sign+enc.inner.inner",
        ),
        (
            "smime-sign+enc+legacy-disp.eml",
            true,
            true,
            "smime-sign+enc+legacy-disp.inner.inner",
        ),
        (
            "smime-enc+legacy-disp.eml",
            true,
            false,
            "smime-enc+legacy-disp.inner",
        ),
    ];
    for (file, encrypted, signed, reference) in cases {
        let report = inspect(&read(&dir.join(file)), std::slice::from_ref(&bob), &trust);
        assert_eq!(report.refused, None, "{file}");
        assert_eq!(report.decrypted, encrypted, "{file}");
        assert_eq!(report.encrypted == Encryption::Smime, encrypted, "{file}");
        assert_eq!(
            report.signed_by_sender(),
            signed,
            "{file}: {:?}",
            report.signatures
        );
        if signed {
            assert_eq!(report.signatures.len(), 1, "{file}");
            assert_eq!(report.signatures[0].status, SignatureStatus::Good, "{file}");
        } else {
            assert!(report.signatures.is_empty(), "{file}");
        }
        if !reference.is_empty() {
            let inner = report.inner_mime.clone().unwrap_or_default();
            let expected = read(&dir.join(reference));
            assert_eq!(
                String::from_utf8_lossy(&normalize_line_ends(&inner)),
                String::from_utf8_lossy(&normalize_line_ends(&expected)),
                "{file}"
            );
        }
    }
}

#[test]
fn protected_headers_untrusted_without_ca() {
    let dir = vectors().join("protected-headers-draft");
    let report = inspect(
        &read(&dir.join("smime-onepart-signed.eml")),
        &[],
        &TrustStore::empty(),
    );
    assert_eq!(report.signatures.len(), 1);
    assert_eq!(
        report.signatures[0].status,
        SignatureStatus::ChainIncomplete
    );
    assert!(!report.signed_by_sender());
}
