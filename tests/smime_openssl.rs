//! Interop with the `openssl` command-line tool: a throwaway CA and user
//! certificate are made in a temporary directory, messages are signed and
//! encrypted with `openssl cms`, and `smime::inspect` must read them.

// Test helpers outside #[test] functions panic on setup failure by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

mod support;

use support::pki::{CA_EXTENSIONS, issue, make_root, openssl, user_extensions};
use wardmail::protection::{Encryption, Refusal, SignatureScope, SignatureStatus, Warning};
use wardmail::smime::{Identity, SmimeError, TrustStore, inspect};

const USER: &str = "carol@example.org";
const BODY: &str = "Content-Type: text/plain; charset=us-ascii\r\n\r\n\
    Lab results for ward 3 are ready. This line is long enough to span several cipher blocks.\r\n";
const BODY_TEXT: &str = "Lab results for ward 3 are ready.";

/// A temporary CA, an intermediate CA and two user certificates.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let pki = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let dir = pki.path();
        std::fs::write(dir.join("ca.cnf"), CA_EXTENSIONS).unwrap();
        std::fs::write(dir.join("user.cnf"), user_extensions(USER)).unwrap();
        make_root(dir, "/CN=Wardmail Test CA");
        pki.issue("user", "ca", "user.cnf", "/CN=Carol");
        pki.issue(
            "intermediate",
            "ca",
            "ca.cnf",
            "/CN=Wardmail Test Intermediate",
        );
        pki.issue(
            "leaf",
            "intermediate",
            "user.cnf",
            "/CN=Carol via intermediate",
        );
        openssl(
            dir,
            &[
                "pkcs12",
                "-export",
                "-inkey",
                "user.key",
                "-in",
                "user.pem",
                "-out",
                "user.p12",
                "-passout",
                "pass:secret",
            ],
        );
        pki
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    /// Makes `name.key` and `name.pem`, signed by `issuer`.
    fn issue(&self, name: &str, issuer: &str, extensions: &str, subject: &str) {
        issue(self.path(), name, issuer, extensions, subject);
    }

    fn identity(&self) -> Identity {
        Identity::from_pkcs12(&std::fs::read(self.file("user.p12")).unwrap(), "secret").unwrap()
    }

    fn trust(&self) -> TrustStore {
        let mut trust = TrustStore::empty();
        trust
            .add_certificates(&std::fs::read(self.file("ca.pem")).unwrap())
            .unwrap();
        trust
    }

    /// Runs `openssl cms` with `args` on `input` and returns its output.
    fn cms(&self, input: &[u8], args: &[&str]) -> Vec<u8> {
        std::fs::write(self.file("in.bin"), input).unwrap();
        // Recipient certificates are positional and must come last.
        let mut all = vec!["cms", "-in", "in.bin", "-out", "out.bin"];
        all.extend_from_slice(args);
        openssl(self.path(), &all);
        std::fs::read(self.file("out.bin")).unwrap()
    }

    fn sign(&self, input: &[u8], opaque: bool) -> Vec<u8> {
        let mut args = vec![
            "-sign", "-signer", "user.pem", "-inkey", "user.key", "-md", "sha256",
        ];
        if opaque {
            args.push("-nodetach");
        }
        self.cms(input, &args)
    }

    fn encrypt(&self, input: &[u8], cipher: &str) -> Vec<u8> {
        self.cms(input, &["-encrypt", cipher, "user.pem"])
    }
}

/// Prepends the envelope headers that `openssl cms` does not write.
fn message(entity: &[u8]) -> Vec<u8> {
    let mut message =
        format!("From: Carol <{USER}>\r\nTo: dan@example.org\r\nSubject: test\r\n").into_bytes();
    message.extend_from_slice(entity);
    message
}

fn inner_text(report: &wardmail::protection::ProtectionReport) -> String {
    String::from_utf8_lossy(report.inner_mime.as_deref().unwrap_or_default()).into_owned()
}

#[test]
fn openssl_sign_then_encrypt() {
    let pki = Pki::new();
    let identities = [pki.identity()];
    for (cipher, authenticated) in [("-aes-256-cbc", false), ("-aes-256-gcm", true)] {
        for opaque in [false, true] {
            let signed = pki.sign(BODY.as_bytes(), opaque);
            let raw = message(&pki.encrypt(&signed, cipher));
            let report = inspect(&raw, &identities, &pki.trust());
            let case = format!("{cipher} opaque={opaque}");

            assert_eq!(report.refused, None, "{case}");
            assert_eq!(report.encrypted, Encryption::Smime, "{case}");
            assert!(report.decrypted, "{case}");
            assert_eq!(report.integrity_protected, authenticated, "{case}");
            assert_eq!(report.signatures.len(), 1, "{case}");
            assert_eq!(report.signatures[0].status, SignatureStatus::Good, "{case}");
            assert_eq!(
                report.signatures[0].scope,
                SignatureScope::Content,
                "{case}"
            );
            assert!(report.signatures[0].signer_matches_from, "{case}");
            assert!(report.signed_by_sender(), "{case}");
            assert!(inner_text(&report).contains(BODY_TEXT), "{case}");
        }
    }
}

#[test]
fn openssl_encrypt_then_sign() {
    let pki = Pki::new();
    let encrypted = pki.encrypt(BODY.as_bytes(), "-aes-256-cbc");
    let raw = message(&pki.sign(&encrypted, false));
    let report = inspect(&raw, &[pki.identity()], &pki.trust());

    assert!(report.decrypted);
    assert_eq!(report.signatures.len(), 1);
    assert_eq!(report.signatures[0].status, SignatureStatus::Good);
    assert_eq!(report.signatures[0].scope, SignatureScope::Ciphertext);
    assert!(!report.signed_by_sender());
    assert!(
        report
            .warnings
            .contains(&Warning::SignatureOutsideEncryption)
    );
    assert!(inner_text(&report).contains(BODY_TEXT));
}

#[test]
fn openssl_tampered_content_is_bad() {
    let pki = Pki::new();
    let signed = String::from_utf8(pki.sign(BODY.as_bytes(), false)).unwrap();
    let tampered = signed.replacen("ward 3", "ward 4", 1);
    assert_ne!(signed, tampered);
    let report = inspect(&message(tampered.as_bytes()), &[], &pki.trust());

    assert_eq!(report.signatures.len(), 1);
    assert_eq!(report.signatures[0].status, SignatureStatus::Bad);
    assert!(!report.signed_by_sender());
}

#[test]
fn openssl_missing_intermediate() {
    let pki = Pki::new();
    std::fs::write(pki.file("in.bin"), BODY).unwrap();
    openssl(
        pki.path(),
        &[
            "cms", "-sign", "-signer", "leaf.pem", "-inkey", "leaf.key", "-in", "in.bin", "-out",
            "out.bin",
        ],
    );
    let raw = message(&std::fs::read(pki.file("out.bin")).unwrap());
    let report = inspect(&raw, &[], &pki.trust());
    assert_eq!(
        report.signatures[0].status,
        SignatureStatus::ChainIncomplete
    );

    // With the intermediate included the same signer is good.
    openssl(
        pki.path(),
        &[
            "cms",
            "-sign",
            "-signer",
            "leaf.pem",
            "-inkey",
            "leaf.key",
            "-certfile",
            "intermediate.pem",
            "-in",
            "in.bin",
            "-out",
            "out.bin",
        ],
    );
    let raw = message(&std::fs::read(pki.file("out.bin")).unwrap());
    let report = inspect(&raw, &[], &pki.trust());
    assert_eq!(report.signatures[0].status, SignatureStatus::Good);
}

/// Encrypts to DER, flips one byte near the end of the ciphertext, and
/// wraps the result as application/pkcs7-mime.
fn flipped_envelope(pki: &Pki, cipher: &str) -> Vec<u8> {
    let mut der = pki.cms(
        BODY.as_bytes(),
        &["-encrypt", cipher, "-outform", "DER", "user.pem"],
    );
    let position = der.len() - 40;
    der[position] ^= 0x01;
    let base64 = openssl::base64::encode_block(&der);
    let entity = format!(
        "MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{base64}\r\n"
    );
    message(entity.as_bytes())
}

#[test]
fn flipped_ciphertext_not_plaintext() {
    let pki = Pki::new();
    let identities = [pki.identity()];

    let report = inspect(
        &flipped_envelope(&pki, "-aes-256-cbc"),
        &identities,
        &pki.trust(),
    );
    assert!(
        !inner_text(&report).contains(BODY),
        "CBC output equals the plaintext"
    );
    assert!(!report.integrity_protected);

    let report = inspect(
        &flipped_envelope(&pki, "-aes-256-gcm"),
        &identities,
        &pki.trust(),
    );
    assert!(!report.decrypted);
    assert_eq!(report.refused, Some(Refusal::DecryptionFailed));
    assert_eq!(report.inner_mime, None);
}

#[test]
fn encrypted_for_someone_else_is_no_key() {
    let pki = Pki::new();
    let other = Pki::new();
    let raw = message(&pki.encrypt(BODY.as_bytes(), "-aes-256-cbc"));
    let report = inspect(&raw, &[other.identity()], &pki.trust());
    assert!(!report.decrypted);
    assert_eq!(report.refused, Some(Refusal::NoKey));
}

#[test]
fn pkcs12_wrong_password() {
    let pki = Pki::new();
    let bytes = std::fs::read(pki.file("user.p12")).unwrap();
    let error = Identity::from_pkcs12(&bytes, "not-the-password").unwrap_err();
    assert!(matches!(error, SmimeError::WrongPassword), "{error}");
    assert!(Identity::from_pkcs12(&bytes, "secret").is_ok());
}

#[test]
fn pkcs12_legacy_rc2_opens() {
    let pki = Pki::new();
    openssl(
        pki.path(),
        &[
            "pkcs12",
            "-export",
            "-legacy",
            "-inkey",
            "user.key",
            "-in",
            "user.pem",
            "-out",
            "legacy.p12",
            "-passout",
            "pass:secret",
        ],
    );
    let bytes = std::fs::read(pki.file("legacy.p12")).unwrap();
    let identity = Identity::from_pkcs12(&bytes, "secret").unwrap();
    assert_eq!(identity.addresses(), vec![USER.to_string()]);

    let error = Identity::from_pkcs12(&bytes, "wrong").unwrap_err();
    assert!(matches!(error, SmimeError::WrongPassword), "{error}");
}

#[test]
fn pkcs12_unsupported_digest_not_wrong_password() {
    let pki = Pki::new();
    // The MacData digest OID lies outside the data that the MAC covers, so
    // replacing sha256 by the unassigned 2.16.840.1.101.3.4.2.99 makes the
    // right password meet an unknown algorithm. OpenSSL then also reports
    // "mac verify failure", which must not turn into "wrong password".
    let sha256 = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    let mut bytes = std::fs::read(pki.file("user.p12")).unwrap();
    let start = bytes
        .windows(sha256.len())
        .rposition(|window| window == sha256)
        .unwrap();
    bytes[start + sha256.len() - 1] = 0x63;

    let error = Identity::from_pkcs12(&bytes, "secret").unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, SmimeError::UnsupportedPkcs12Algorithm { .. }),
        "{text}"
    );
    assert!(text.contains("2.16.840.1.101.3.4.2.99"), "{text}");
    assert!(text.contains("-keypbe AES-256-CBC"), "{text}");
    assert!(!text.contains("wrong password"), "{text}");
}

#[test]
fn pkcs12_without_mac_not_wrong_password() {
    let pki = Pki::new();
    openssl(
        pki.path(),
        &[
            "pkcs12",
            "-export",
            "-nomac",
            "-inkey",
            "user.key",
            "-in",
            "user.pem",
            "-out",
            "nomac.p12",
            "-passout",
            "pass:secret",
        ],
    );
    let bytes = std::fs::read(pki.file("nomac.p12")).unwrap();
    let error = Identity::from_pkcs12(&bytes, "secret").unwrap_err();
    assert!(matches!(error, SmimeError::InvalidPkcs12 { .. }), "{error}");
}

#[test]
fn encrypted_part_inside_mixed_not_opened() {
    let pki = Pki::new();
    let encrypted = pki.encrypt(BODY.as_bytes(), "-aes-256-cbc");
    let mut raw = message(
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
          --outer\r\nContent-Type: text/plain\r\n\r\nAttacker text\r\n--outer\r\n",
    );
    raw.extend_from_slice(&encrypted);
    raw.extend_from_slice(b"\r\n--outer--\r\n");

    let report = inspect(&raw, &[pki.identity()], &pki.trust());
    assert_eq!(report.encrypted, Encryption::None);
    assert!(!report.decrypted);
    assert_eq!(report.inner_mime, None);
    assert!(
        report
            .warnings
            .contains(&Warning::UnprotectedTextAroundProtectedPart)
    );
}

#[test]
fn untrusted_root_in_chain() {
    let pki = Pki::new();
    std::fs::write(pki.file("in.bin"), BODY).unwrap();
    openssl(
        pki.path(),
        &[
            "cms",
            "-sign",
            "-signer",
            "user.pem",
            "-inkey",
            "user.key",
            "-certfile",
            "ca.pem",
            "-in",
            "in.bin",
            "-out",
            "out.bin",
        ],
    );
    let raw = message(&std::fs::read(pki.file("out.bin")).unwrap());

    // The root travels in the message but is not in the trust store.
    let report = inspect(&raw, &[], &TrustStore::empty());
    assert_eq!(report.signatures[0].status, SignatureStatus::Untrusted);
    assert!(!report.signed_by_sender());
}

/// Writes `expired.pem` and `expired.key`: a user certificate issued by the
/// test CA whose validity ended a day ago.
fn issue_expired(pki: &Pki) {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::extension::{ExtendedKeyUsage, SubjectAlternativeName};
    use openssl::x509::{X509, X509NameBuilder};

    let ca = X509::from_pem(&std::fs::read(pki.file("ca.pem")).unwrap()).unwrap();
    let ca_key = PKey::private_key_from_pem(&std::fs::read(pki.file("ca.key")).unwrap()).unwrap();
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;

    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "Carol expired").unwrap();
    let name = name.build();
    let mut builder = X509::builder().unwrap();
    builder.set_version(2).unwrap();
    let serial = BigNum::from_u32(4242).unwrap().to_asn1_integer().unwrap();
    builder.set_serial_number(&serial).unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(ca.subject_name()).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder
        .set_not_before(&Asn1Time::from_unix(now - 10 * 86_400).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::from_unix(now - 86_400).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .email(USER)
        .build(&builder.x509v3_context(Some(&ca), None))
        .unwrap();
    builder.append_extension(san).unwrap();
    builder
        .append_extension(ExtendedKeyUsage::new().email_protection().build().unwrap())
        .unwrap();
    builder.sign(&ca_key, MessageDigest::sha256()).unwrap();

    std::fs::write(pki.file("expired.pem"), builder.build().to_pem().unwrap()).unwrap();
    std::fs::write(
        pki.file("expired.key"),
        key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
}

#[test]
fn expired_signer_is_expired() {
    let pki = Pki::new();
    issue_expired(&pki);
    std::fs::write(pki.file("in.bin"), BODY).unwrap();
    openssl(
        pki.path(),
        &[
            "cms",
            "-sign",
            "-signer",
            "expired.pem",
            "-inkey",
            "expired.key",
            "-in",
            "in.bin",
            "-out",
            "out.bin",
        ],
    );
    let raw = message(&std::fs::read(pki.file("out.bin")).unwrap());

    let report = inspect(&raw, &[], &pki.trust());
    assert_eq!(report.signatures[0].status, SignatureStatus::Expired);
    assert!(report.signatures[0].signer_matches_from);
    assert!(!report.signed_by_sender());
}

#[test]
fn opaque_tampered_content_is_bad() {
    let pki = Pki::new();
    let mut der = pki.cms(
        BODY.as_bytes(),
        &[
            "-sign",
            "-nodetach",
            "-signer",
            "user.pem",
            "-inkey",
            "user.key",
            "-outform",
            "DER",
        ],
    );
    let start = der
        .windows(6)
        .position(|window| window == b"ward 3")
        .unwrap();
    der[start + 5] = b'4';
    let base64 = openssl::base64::encode_block(&der);
    let entity = format!(
        "MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{base64}\r\n"
    );
    let report = inspect(&message(entity.as_bytes()), &[], &pki.trust());

    assert_eq!(report.signatures.len(), 1);
    assert_eq!(report.signatures[0].status, SignatureStatus::Bad);
    assert!(!report.signed_by_sender());
    assert!(inner_text(&report).contains("ward 4"));
}

/// A detached signature that also embeds content passes only when both
/// are the same bytes. Here the embedded copy contains "ward 4" while the
/// signed attributes still carry the digest of the "ward 3" text, which
/// the first part of the multipart/signed contains.
#[test]
fn detached_signature_embedding_other_text_is_bad() {
    let pki = Pki::new();
    let mut der = pki.cms(
        BODY.as_bytes(),
        &[
            "-sign",
            "-nodetach",
            "-signer",
            "user.pem",
            "-inkey",
            "user.key",
            "-md",
            "sha256",
            "-outform",
            "DER",
        ],
    );
    let start = der
        .windows(6)
        .position(|window| window == b"ward 3")
        .unwrap();
    der[start + 5] = b'4';
    let base64 = openssl::base64::encode_block(&der);
    let entity = format!(
        "MIME-Version: 1.0\r\nContent-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; \
         micalg=sha-256; boundary=\"sig\"\r\n\r\n--sig\r\n{BODY}\r\n--sig\r\n\
         Content-Type: application/pkcs7-signature; name=smime.p7s\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{base64}\r\n--sig--\r\n"
    );
    let report = inspect(&message(entity.as_bytes()), &[], &pki.trust());

    assert_eq!(report.signatures.len(), 1);
    assert_eq!(report.signatures[0].status, SignatureStatus::Bad);
    assert!(report.warnings.contains(&Warning::EmbeddedContentMismatch));
    assert!(!report.signed_by_sender());
}
