//! S/MIME through an account: the .p12 and CA import into the encrypted
//! store and `Session::inspect`, with the Thunderbird S/MIME vectors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;

use wardmail::protection::{Encryption, SignatureStatus};
use wardmail::secret::Secret;
use wardmail::session::SessionError;
use wardmail::smime::SmimeError;

fn vector(name: &str) -> Vec<u8> {
    let base = std::env::var_os("WARDMAIL_VECTORS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors"),
        PathBuf::from,
    );
    let path = base.join("thunderbird-smime/nss-generated").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread")]
async fn imported_identity_decrypts_and_verifies() {
    let (dir, session) = support::session(support::account("smime-import")).await;
    let message = vector("alice.dsig.SHA256.multipart.env.eml");

    // Before the import: nothing to decrypt with.
    let before = session.inspect(message.clone()).await.unwrap();
    assert_eq!(before.encrypted, Encryption::Smime);
    assert!(!before.decrypted);

    let wrong = session
        .import_pkcs12(vector("Bob.p12"), Secret::new("not-nss"))
        .await;
    assert!(
        matches!(wrong, Err(SessionError::Smime(SmimeError::WrongPassword))),
        "{wrong:?}"
    );
    let info = session
        .import_pkcs12(vector("Bob.p12"), Secret::new("nss"))
        .await
        .unwrap();
    assert!(
        info.addresses
            .iter()
            .any(|a| a.eq_ignore_ascii_case("bob@example.com")),
        "{info:?}"
    );
    assert_eq!(session.smime_identities().await.unwrap(), vec![info]);

    // Decrypts, but the signer's CA is not trusted yet.
    let untrusted = session.inspect(message.clone()).await.unwrap();
    assert!(untrusted.decrypted);
    assert_ne!(untrusted.signatures[0].status, SignatureStatus::Good);

    assert_eq!(session.import_ca(vector("TestCA.pem")).await.unwrap(), 1);
    let report = session.inspect(message).await.unwrap();
    assert!(report.decrypted);
    assert_eq!(report.signatures.len(), 1);
    assert_eq!(report.signatures[0].status, SignatureStatus::Good);
    assert!(report.signatures[0].signer_matches_from);

    // The private key is only in the encrypted store.
    let p12_key = wardmail::smime::Identity::from_pkcs12(&vector("Bob.p12"), "nss").unwrap();
    let (key, _) = p12_key.to_der().unwrap();
    let store_file = std::fs::read(dir.path().join("store.db")).unwrap();
    assert!(!store_file.windows(32).any(|w| w == &key[key.len() - 32..]));
}
