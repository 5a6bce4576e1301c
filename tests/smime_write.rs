//! S/MIME writing against the `openssl` command-line tool, and
//! correspondents' certificates through a session. A throwaway root CA,
//! intermediate CA and user certificates are made per run. Entities signed
//! and encrypted by `smime::write` are verified and decrypted by `openssl
//! cms`, and certificates are imported from files and harvested from mail.

// Test helpers outside #[test] functions panic on setup failure by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::pki::{CA_EXTENSIONS, issue, make_root, openssl, run_openssl, user_extensions};

use std::path::{Path, PathBuf};
use std::process::Command;

use wardmail::protection::{Encryption, SignatureStatus};
use wardmail::secret::Secret;
use wardmail::session::SessionError;
use wardmail::smime::write::{ContentEncryption, content_encryption, encrypt, sign};
use wardmail::smime::{
    AES256_CBC, AES256_GCM, Capabilities, CertificateProblem, Identity, RecipientCertificate,
    SmimeError, TrustStore, inspect,
};
use wardmail::store::CertificateSource;

const CAROL: &str = "carol@example.org";
const DAN: &str = "dan@example.org";
const ENTITY: &str = "Content-Type: text/plain; charset=us-ascii\r\n\
    Content-Transfer-Encoding: 7bit\r\n\r\n\
    Lab results for ward 3 are ready.\r\n\
    From the start of a line, a dot and trailing space: \r\n.\r\n";

/// A root CA, an intermediate CA, Carol's certificate under the
/// intermediate and Dan's under the root.
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
        for (name, address) in [("carol", CAROL), ("dan", DAN)] {
            std::fs::write(dir.join(format!("{name}.cnf")), user_extensions(address)).unwrap();
        }
        make_root(dir, "/CN=Wardmail Write Test CA");
        pki.issue(
            "intermediate",
            "ca",
            "ca.cnf",
            "/CN=Wardmail Write Intermediate",
        );
        pki.issue("carol", "intermediate", "carol.cnf", "/CN=Carol");
        pki.issue("dan", "ca", "dan.cnf", "/CN=Dan");
        pki.pkcs12("carol-chain.p12", "carol", Some("intermediate.pem"));
        pki.pkcs12("carol-alone.p12", "carol", None);
        pki.pkcs12("dan.p12", "dan", None);
        pki
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.file(name)).unwrap()
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.file(name), bytes).unwrap();
    }

    /// Makes `name.key` and `name.pem`, signed by `issuer`.
    fn issue(&self, name: &str, issuer: &str, extensions: &str, subject: &str) {
        issue(self.path(), name, issuer, extensions, subject);
    }

    fn pkcs12(&self, out: &str, name: &str, chain: Option<&str>) {
        let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
        let mut args = vec![
            "pkcs12",
            "-export",
            "-inkey",
            &key,
            "-in",
            &pem,
            "-out",
            out,
            "-passout",
            "pass:secret",
        ];
        if let Some(chain) = chain {
            args.extend(["-certfile", chain]);
        }
        openssl(self.path(), &args);
    }

    fn identity(&self, p12: &str) -> Identity {
        Identity::from_pkcs12(&self.read(p12), "secret").unwrap()
    }

    fn certificate(&self, name: &str) -> openssl::x509::X509 {
        openssl::x509::X509::from_pem(&self.read(&format!("{name}.pem"))).unwrap()
    }

    fn trust(&self) -> TrustStore {
        let mut trust = TrustStore::empty();
        trust.add_certificates(&self.read("ca.pem")).unwrap();
        trust
    }
}

/// Prepends the message header fields that the writer leaves to the
/// caller.
fn message(from: &str, entity: &[u8]) -> Vec<u8> {
    let mut message = format!(
        "From: <{from}>\r\nTo: <{DAN}>\r\nSubject: results\r\n\
         Date: {}\r\nMIME-Version: 1.0\r\n",
        rfc2822_now()
    )
    .into_bytes();
    message.extend_from_slice(entity);
    message
}

fn rfc2822_now() -> String {
    let output = Command::new("date").arg("-R").output().unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

fn recipient(pki: &Pki, name: &str, oids: Option<&[&str]>) -> RecipientCertificate {
    RecipientCertificate {
        certificate: pki.certificate(name),
        capabilities: oids
            .map(|oids| Capabilities::new(oids.iter().map(|o| o.to_string()).collect())),
    }
}

#[test]
fn signed_entity_verifies_with_openssl() {
    let pki = Pki::new();
    let identity = pki.identity("carol-chain.p12");
    assert_eq!(identity.chain().len(), 1);

    let signed = sign(ENTITY.as_bytes(), &identity).unwrap();
    pki.write("signed.eml", &message(CAROL, &signed));
    // Only the root is given: the intermediate must come from the signature.
    // No -binary: OpenSSL's multipart reader then joins the lines of the
    // signed part with LF, while the canonical form that is signed has CRLF.
    openssl(
        pki.path(),
        &[
            "cms",
            "-verify",
            "-in",
            "signed.eml",
            "-CAfile",
            "ca.pem",
            "-purpose",
            "smimesign",
            "-out",
            "content.bin",
        ],
    );
    assert_eq!(pki.read("content.bin"), ENTITY.as_bytes());

    openssl(
        pki.path(),
        &[
            "smime",
            "-pk7out",
            "-in",
            "signed.eml",
            "-out",
            "signature.pem",
        ],
    );
    let printed = String::from_utf8(openssl(
        pki.path(),
        &[
            "cms",
            "-cmsout",
            "-print",
            "-inform",
            "PEM",
            "-in",
            "signature.pem",
        ],
    ))
    .unwrap();
    assert!(printed.contains("pkcs7-signedData"), "{printed}");
    assert!(printed.contains("sha256"), "{printed}");
    assert!(printed.contains("S/MIME Capabilities"), "{printed}");
    assert!(printed.contains("aes-256-gcm"), "{printed}");
    assert!(printed.contains("aes-256-cbc"), "{printed}");
    assert!(
        printed.contains("subject: CN=Wardmail Write Intermediate"),
        "{printed}"
    );

    let text = String::from_utf8(signed.clone()).unwrap();
    assert!(
        text.starts_with("Content-Type: multipart/signed;"),
        "{text}"
    );
    assert!(
        text.contains("protocol=\"application/pkcs7-signature\""),
        "{text}"
    );
    assert!(text.contains("micalg=sha-256"), "{text}");
}

#[test]
fn tampered_signed_entity_fails_openssl() {
    let pki = Pki::new();
    let signed = sign(ENTITY.as_bytes(), &pki.identity("carol-chain.p12")).unwrap();
    let tampered = String::from_utf8(signed)
        .unwrap()
        .replacen("ward 3", "ward 4", 1);
    pki.write("tampered.eml", &message(CAROL, tampered.as_bytes()));

    let output = run_openssl(
        pki.path(),
        &[
            "cms",
            "-verify",
            "-in",
            "tampered.eml",
            "-CAfile",
            "ca.pem",
            "-out",
            "x.bin",
        ],
    );
    assert!(!output.status.success());
}

#[test]
fn signing_rejects_eight_bit_entity() {
    let pki = Pki::new();
    let entity = "Content-Type: text/plain; charset=utf-8\r\n\r\nBefund f\u{fc}r Station 3\r\n";
    let result = sign(entity.as_bytes(), &pki.identity("carol-chain.p12"));
    assert!(
        matches!(result, Err(SmimeError::EightBitContent { offset: 51 })),
        "{result:?}"
    );
}

/// Encrypts to Dan and Carol, decrypts with each key through openssl, and
/// returns what `openssl cms -cmsout -print` shows.
fn encrypt_and_decrypt(pki: &Pki, dan: RecipientCertificate) -> String {
    let sender = pki.certificate("carol");
    let encrypted = encrypt(ENTITY.as_bytes(), &[dan], &sender).unwrap();
    pki.write("encrypted.eml", &message(CAROL, &encrypted));

    for name in ["dan", "carol"] {
        let (certificate, key) = (format!("{name}.pem"), format!("{name}.key"));
        openssl(
            pki.path(),
            &[
                "cms",
                "-decrypt",
                "-in",
                "encrypted.eml",
                "-recip",
                &certificate,
                "-inkey",
                &key,
                "-binary",
                "-out",
                "plain.bin",
            ],
        );
        assert_eq!(
            pki.read("plain.bin"),
            ENTITY.as_bytes(),
            "decrypted by {name}"
        );
    }

    // A third key, not a recipient, cannot decrypt.
    let output = run_openssl(
        pki.path(),
        &[
            "cms",
            "-decrypt",
            "-in",
            "encrypted.eml",
            "-inkey",
            "intermediate.key",
            "-out",
            "x.bin",
        ],
    );
    assert!(!output.status.success());

    let header = String::from_utf8_lossy(&encrypted[..200]).into_owned();
    let printed = String::from_utf8(openssl(
        pki.path(),
        &["cms", "-cmsout", "-print", "-in", "encrypted.eml"],
    ))
    .unwrap();
    format!("{header}\n{printed}")
}

#[test]
fn encrypted_entity_gcm_for_capable_recipient() {
    let pki = Pki::new();
    let dan = recipient(&pki, "dan", Some(&[AES256_GCM, AES256_CBC]));
    assert_eq!(
        content_encryption(std::slice::from_ref(&dan)),
        ContentEncryption::Aes256Gcm
    );

    let printed = encrypt_and_decrypt(&pki, dan);
    assert!(
        printed.contains("smime-type=authEnveloped-data"),
        "{printed}"
    );
    assert!(
        printed.contains("id-smime-ct-authEnvelopedData"),
        "{printed}"
    );
    assert!(printed.contains("aes-256-gcm"), "{printed}");
}

#[test]
fn encrypted_entity_cbc_without_capabilities() {
    let pki = Pki::new();
    for oids in [None, Some(&[AES256_CBC][..])] {
        let dan = recipient(&pki, "dan", oids);
        assert_eq!(
            content_encryption(std::slice::from_ref(&dan)),
            ContentEncryption::Aes256Cbc,
            "{oids:?}"
        );
        let printed = encrypt_and_decrypt(&pki, dan);
        assert!(printed.contains("smime-type=enveloped-data"), "{printed}");
        assert!(printed.contains("pkcs7-envelopedData"), "{printed}");
        assert!(printed.contains("aes-256-cbc"), "{printed}");
        assert!(!printed.contains("authEnveloped"), "{printed}");
    }
}

#[test]
fn sign_then_encrypt_round_trip() {
    let pki = Pki::new();
    let carol = pki.identity("carol-chain.p12");
    let dan_key = pki.identity("dan.p12");
    for (oids, authenticated) in [(Some(&[AES256_GCM][..]), true), (None, false)] {
        let signed = sign(ENTITY.as_bytes(), &carol).unwrap();
        let dan = recipient(&pki, "dan", oids);
        let encrypted = encrypt(&signed, &[dan], carol.certificate()).unwrap();
        let raw = message(CAROL, &encrypted);

        for (reader, identity) in [("dan", &dan_key), ("carol", &carol)] {
            let report = inspect(&raw, std::slice::from_ref(identity), &pki.trust());
            let case = format!("{reader} gcm={authenticated}");
            assert_eq!(report.refused, None, "{case}");
            assert_eq!(report.encrypted, Encryption::Smime, "{case}");
            assert!(report.decrypted, "{case}");
            assert_eq!(report.integrity_protected, authenticated, "{case}");
            assert_eq!(report.signatures.len(), 1, "{case}");
            assert_eq!(report.signatures[0].status, SignatureStatus::Good, "{case}");
            assert_eq!(
                report.signatures[0].digest_algorithm.as_deref(),
                Some("sha256")
            );
            assert!(report.signed_by_sender(), "{case}");
            let inner = String::from_utf8_lossy(report.inner_mime.as_deref().unwrap_or_default())
                .into_owned();
            assert!(inner.contains("Lab results for ward 3"), "{case}: {inner}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_import_formats() {
    let pki = Pki::new();
    let dir = pki.path();
    openssl(
        dir,
        &[
            "x509", "-in", "dan.pem", "-outform", "DER", "-out", "dan.der",
        ],
    );
    openssl(
        dir,
        &[
            "crl2pkcs7",
            "-nocrl",
            "-certfile",
            "carol.pem",
            "-certfile",
            "intermediate.pem",
            "-outform",
            "DER",
            "-out",
            "carol.p7b",
        ],
    );
    openssl(
        dir,
        &[
            "crl2pkcs7",
            "-nocrl",
            "-certfile",
            "dan.pem",
            "-out",
            "dan-p7b.pem",
        ],
    );

    for (file, address) in [
        ("dan.pem", DAN),
        ("dan.der", DAN),
        ("dan-p7b.pem", DAN),
        ("carol.p7b", CAROL),
    ] {
        let (_profile, session) = support::session(support::account("smime-import-cert")).await;
        let imported = session
            .import_smime_certificates(pki.read(file))
            .await
            .unwrap();
        assert_eq!(imported.len(), 1, "{file}: {imported:?}");
        assert_eq!(imported[0].address, address, "{file}");
        assert_eq!(imported[0].source, CertificateSource::Imported, "{file}");
        assert_eq!(
            session.smime_certificates().await.unwrap(),
            imported,
            "{file}"
        );

        // The root is not trusted, so the issuer is unknown. The user chose
        // this file, so its certificate is used all the same.
        let found = session.smime_recipient_certificate(address).await.unwrap();
        let name = if address == DAN { "dan" } else { "carol" };
        assert_eq!(found.certificate, pki.certificate(name), "{file}");
        assert_eq!(found.capabilities, None, "{file}");
        assert_eq!(
            content_encryption(std::slice::from_ref(&found)),
            ContentEncryption::Aes256Cbc
        );
    }

    // A self-signed certificate is rejected even when imported.
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "eve.key",
            "-out",
            "eve.pem",
            "-days",
            "30",
            "-subj",
            "/CN=Eve",
            "-addext",
            "subjectAltName=email:eve@example.org",
            "-addext",
            "keyUsage=digitalSignature,keyEncipherment",
        ],
    );
    let (_profile, session) = support::session(support::account("smime-import-eve")).await;
    session
        .import_smime_certificates(pki.read("eve.pem"))
        .await
        .unwrap();
    let eve = session.smime_recipient_certificate("eve@example.org").await;
    assert!(
        matches!(
            eve,
            Err(SessionError::Smime(SmimeError::NoUsableCertificate {
                problem: CertificateProblem::Untrusted,
                ..
            }))
        ),
        "{eve:?}"
    );

    let (_profile, session) = support::session(support::account("smime-import-ca")).await;
    let only_ca = session.import_smime_certificates(pki.read("ca.pem")).await;
    assert!(
        matches!(
            only_ca,
            Err(SessionError::Smime(SmimeError::NoEndEntityCertificate))
        ),
        "{only_ca:?}"
    );
    let garbage = session
        .import_smime_certificates(b"not a certificate".to_vec())
        .await;
    assert!(
        matches!(
            garbage,
            Err(SessionError::Smime(SmimeError::InvalidCertificate { .. }))
        ),
        "{garbage:?}"
    );
    let missing = session.smime_recipient_certificate(DAN).await;
    assert!(
        matches!(
            missing,
            Err(SessionError::Smime(SmimeError::NoUsableCertificate {
                problem: CertificateProblem::Missing,
                ..
            }))
        ),
        "{missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn harvested_certificate_becomes_recipient() {
    let pki = Pki::new();
    let (_profile, session) = support::session(support::account("smime-harvest")).await;
    let signed = sign(ENTITY.as_bytes(), &pki.identity("dan.p12")).unwrap();
    let raw = message(DAN, &signed);

    // Without the CA the signature is chain-incomplete: the certificate is
    // kept, but not used for encryption.
    let report = session.inspect(raw.clone()).await.unwrap();
    assert_eq!(
        report.signatures[0].status,
        SignatureStatus::ChainIncomplete
    );
    let listed = session.smime_certificates().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].address, DAN);
    assert_eq!(listed[0].source, CertificateSource::Harvested);
    assert_eq!(
        listed[0].capabilities.as_deref(),
        Some(&[AES256_GCM.to_string(), AES256_CBC.to_string()][..])
    );
    let rejected = session.smime_recipient_certificate(DAN).await;
    assert!(
        matches!(
            rejected,
            Err(SessionError::Smime(SmimeError::NoUsableCertificate {
                problem: CertificateProblem::ChainIncomplete,
                ..
            }))
        ),
        "{rejected:?}"
    );

    session.import_ca(pki.read("ca.pem")).await.unwrap();
    let report = session.inspect(raw).await.unwrap();
    assert_eq!(report.signatures[0].status, SignatureStatus::Good);
    let found = session
        .smime_recipient_certificate("Dan@Example.org")
        .await
        .unwrap();
    assert_eq!(found.certificate, pki.certificate("dan"));
    assert_eq!(
        content_encryption(std::slice::from_ref(&found)),
        ContentEncryption::Aes256Gcm
    );

    // A signature made by openssl advertises only CBC ciphers, and the
    // latest capabilities seen replace the earlier ones.
    pki.write("entity.txt", ENTITY.as_bytes());
    openssl(
        pki.path(),
        &[
            "cms",
            "-sign",
            "-signer",
            "dan.pem",
            "-inkey",
            "dan.key",
            "-in",
            "entity.txt",
            "-out",
            "openssl-signed.eml",
        ],
    );
    let report = session
        .inspect(message(DAN, &pki.read("openssl-signed.eml")))
        .await
        .unwrap();
    assert_eq!(report.signatures[0].status, SignatureStatus::Good);
    let found = session.smime_recipient_certificate(DAN).await.unwrap();
    assert_eq!(
        content_encryption(std::slice::from_ref(&found)),
        ContentEncryption::Aes256Cbc
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pkcs12_without_intermediate_warns() {
    let pki = Pki::new();
    let account = support::account("smime-chain-warning");
    let (_profile, session) = support::session(account).await;
    session.import_ca(pki.read("ca.pem")).await.unwrap();

    let alone = session
        .import_pkcs12_checked(pki.read("carol-alone.p12"), Secret::new("secret"))
        .await
        .unwrap();
    let warning = alone.warning.expect("a chain warning");
    assert_eq!(warning.problem, CertificateProblem::ChainIncomplete);
    assert_eq!(warning.code(), "identity-chain-incomplete");
    assert!(
        warning.to_string().contains("may not be able to verify"),
        "{warning}"
    );

    let chained = session
        .import_pkcs12_checked(pki.read("carol-chain.p12"), Secret::new("secret"))
        .await
        .unwrap();
    assert_eq!(chained.warning, None);
    // Both files hold the same certificate: the chain is now stored with it.
    assert_eq!(chained.identity, alone.identity);
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_identity_matches_account_address() {
    let pki = Pki::new();
    let mut account = support::account("smime-sign-identity");
    account.address = CAROL.to_string();
    let (_profile, session) = support::session(account).await;

    let none = session.smime_sign_identity().await;
    assert!(
        matches!(
            none,
            Err(SessionError::Smime(SmimeError::NoSigningIdentity {
                problem: CertificateProblem::Missing,
                ..
            }))
        ),
        "{none:?}"
    );

    session
        .import_pkcs12(pki.read("dan.p12"), Secret::new("secret"))
        .await
        .unwrap();
    session
        .import_pkcs12(pki.read("carol-chain.p12"), Secret::new("secret"))
        .await
        .unwrap();
    // The root is not trusted: returned with a warning.
    let (identity, warning) = session.smime_sign_identity().await.unwrap();
    assert_eq!(identity.addresses(), vec![CAROL.to_string()]);
    assert_eq!(
        warning.map(|w| w.problem),
        Some(CertificateProblem::ChainIncomplete)
    );

    session.import_ca(pki.read("ca.pem")).await.unwrap();
    let (identity, warning) = session.smime_sign_identity().await.unwrap();
    assert_eq!(warning, None);
    assert_eq!(identity.chain().len(), 1);

    // The stored identity signs with its chain: openssl needs only the root.
    let signed = sign(ENTITY.as_bytes(), &identity).unwrap();
    pki.write("stored-signed.eml", &message(CAROL, &signed));
    openssl(
        pki.path(),
        &[
            "cms",
            "-verify",
            "-in",
            "stored-signed.eml",
            "-CAfile",
            "ca.pem",
            "-out",
            "x.bin",
        ],
    );
}

/// The whole path a user takes: Carol writes to Dan with Sign and
/// Encrypt, the message goes through Postfix into Dan's mailbox, and
/// openssl with Dan's key decrypts it and verifies Carol's signature with
/// only the root. Carol's own copy stays readable to her.
#[tokio::test(flavor = "multi_thread")]
async fn session_sends_signed_encrypted_mail_openssl_reads() {
    use wardmail::compose::{Draft, new_message_id};
    use wardmail::message::Address;
    use wardmail::protected::Protection;
    use wardmail::session::Method;

    let pki = Pki::new();
    let mut account = support::account("smime-send");
    account.address = CAROL.to_string();
    account.username = CAROL.to_string();
    let (_profile, session) = support::session(account).await;
    let session = std::sync::Arc::new(session);
    session
        .import_pkcs12(pki.read("carol-chain.p12"), Secret::new("secret"))
        .await
        .unwrap();
    session.import_ca(pki.read("ca.pem")).await.unwrap();
    session
        .import_smime_certificates(pki.read("dan.pem"))
        .await
        .unwrap();

    let message_id = new_message_id("example.org");
    let draft = Draft {
        from: Address::new(None, CAROL),
        to: vec![Address::new(None, DAN)],
        subject: "Befund für Zimmer 3".into(),
        body: "Kalium 5,9 mmol/l – bitte wiederholen.\n".into(),
        ..Draft::default()
    };
    let protection = Protection {
        sign: true,
        encrypt: true,
    };
    let raw = session
        .build_protected(
            draft,
            message_id.clone(),
            unix_now(),
            Method::Smime,
            protection,
        )
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(text.contains("Subject: [...]"), "{text}");
    assert!(!text.contains("Zimmer"), "the subject leaked: {text}");
    assert!(text.contains("application/pkcs7-mime"), "{text}");

    session
        .send(message_id.clone(), raw.clone(), vec![DAN.to_string()])
        .await
        .unwrap();
    let bare_id = message_id.trim_matches(['<', '>']);
    let delivered = support::raw_messages("dan", "INBOX")
        .into_iter()
        .find(|m| String::from_utf8_lossy(m).contains(bare_id))
        .expect("the message reached Dan's INBOX");
    pki.write("delivered.eml", &delivered);
    openssl(
        pki.path(),
        &[
            "cms",
            "-decrypt",
            "-in",
            "delivered.eml",
            "-recip",
            "dan.pem",
            "-inkey",
            "dan.key",
            "-out",
            "inner.eml",
        ],
    );
    openssl(
        pki.path(),
        &[
            "cms",
            "-verify",
            "-in",
            "inner.eml",
            "-CAfile",
            "ca.pem",
            "-out",
            "content.eml",
        ],
    );
    let content = String::from_utf8_lossy(&pki.read("content.eml")).into_owned();
    assert!(content.contains("hp=\"cipher\""), "{content}");
    assert!(content.contains("Subject: =?"), "{content}");

    let report = session.inspect(raw).await.unwrap();
    assert_eq!(report.encrypted, Encryption::Smime);
    assert!(report.decrypted, "{report:?}");
    assert_eq!(report.signatures.len(), 1, "{report:?}");
    assert_eq!(report.signatures[0].status, SignatureStatus::Good);
    assert!(report.signatures[0].signer_matches_from);
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
