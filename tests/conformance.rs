//! Conformance run over the public test-vector corpus.
//!
//! Every file of the corpus gets one row: the behaviour that the corpus
//! index (`SOURCES.md` in the corpus folder) expects of a correct
//! OpenPGP/S-MIME mail client, what Wardmail did, and whether they agree.
//! The rows are printed and written to `target/conformance.md`, which is
//! the source of `docs/conformance.md`.
//!
//! The corpus is read from `WARDMAIL_VECTORS`, or else from
//! `../shared/vectors` beside the crate, where CI puts it. A missing corpus
//! fails the test: it is never skipped.
//!
//! The test fails on a mismatch that `KNOWN_MISMATCHES` does not list, and
//! on a listed file that now behaves as expected, so the list stays true.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wardmail::message::parse;
use wardmail::openpgp::{self, Keyring};
use wardmail::protection::{
    Encryption, ProtectionReport, SignatureScope, SignatureStatus, Warning,
};
use wardmail::smime::{self, Identity, TrustStore};

/// Maximum time one file may take before parse-robust counts as failed.
/// No corpus file is larger than 500 KB, so this detects a hang, not
/// slowness.
const TIME_LIMIT: Duration = Duration::from_secs(10);

/// The folders that the corpus index describes. Files in any other folder
/// are listed as "no expectation".
const INDEXED_FOLDERS: &[&str] = &[
    "rfc9216-lamps-samples",
    "protected-headers-draft",
    "autocrypt-spec",
    "thunderbird-smime",
    "thunderbird-openpgp",
    "thunderbird-mime",
    "mail-parser-corpus",
    "deltachat-core",
    "openpgp-interop-suite",
];

/// Files whose behaviour differs from the corpus expectation, with the
/// reason. Paths are relative to the corpus folder.
#[rustfmt::skip]
const KNOWN_MISMATCHES: &[(&str, &str)] = &[
    // Corpus limits: the expected verdict needs data that the corpus lacks.
    ("deltachat-core/message/thunderbird_encrypted_signed.eml", NO_SIGNER_KEY),
    ("deltachat-core/message/thunderbird_encrypted_signed_with_pubkey.eml", NO_SIGNER_KEY_ATTACHED),
    ("deltachat-core/message/thunderbird_signed_unencrypted.eml", NO_SIGNER_KEY),
    ("deltachat-core/message/schleuder.eml", PLACEHOLDER_SIGNATURE),
    ("deltachat-core/message/mailinglist_with_mimepart_footer_signed.eml", PLACEHOLDER_SIGNATURE),
    ("rfc9216-lamps-samples/cms-examples-draft-ireland/signedByAliceRSA.p7m", NO_RFC9216_CA),
    ("rfc9216-lamps-samples/cms-examples-draft-ireland/signedByAliceRSAPSS.p7m", NO_RFC9216_CA),
    ("rfc9216-lamps-samples/cms-examples-draft-ireland/signedByCarlosDetached.p7m",
     "the detached signature needs the signed content, which is in the I-D text and \
      not in the corpus, so the signature is checked without its content and is bad. \
      Its signer also uses Ed25519, which OpenSSL 3.0 cannot verify"),
    // Wardmail differs from the expectation.
    ("deltachat-core/message/rfc1847_encapsulation.eml",
     "the signature was made at 2021-12-05 01:31:09 UTC and the Date header says \
      00:00:00, so the reader warns about the signing time and reports the \
      signature as Untrusted instead of Good"),
    ("mail-parser-corpus/malformed/015.eml",
     "a multipart/signed message whose signature part contains the word \"invalid\": \
      the OpenPGP reader shows a bad signature, which the index's rule for broken \
      signatures asks for, while the parse-robust rule asks for no indicator"),
    ("thunderbird-smime/smime-manual/outer-pgp-sig-inner-smime-enc.eml", PGP_OUTER_SMIME_INNER),
    ("thunderbird-smime/smime-manual/outer-pgp-sig-inner-smime-enc-sig.eml", PGP_OUTER_SMIME_INNER),
    ("thunderbird-smime/nss-generated/alice.env.sig.SHA1.opaque.dave.sig.SHA1.opaque.eml", SMIME_WRAPPED),
    ("thunderbird-smime/nss-generated/alice.env.dsig.SHA1.multipart.dave.sig.SHA1.opaque.eml", SMIME_WRAPPED),
    ("thunderbird-smime/nss-generated/alice.env.sig.SHA256.opaque.dave.sig.SHA256.opaque.eml", SMIME_WRAPPED),
    ("thunderbird-smime/nss-generated/alice.env.dsig.SHA256.multipart.dave.sig.SHA256.opaque.eml", SMIME_WRAPPED),
    ("thunderbird-smime/nss-generated/alice.env.sig.SHA384.opaque.dave.sig.SHA384.opaque.eml", SMIME_WRAPPED),
    ("thunderbird-smime/nss-generated/alice.env.dsig.SHA384.multipart.dave.sig.SHA384.opaque.eml", SMIME_WRAPPED),
    ("thunderbird-smime/nss-generated/alice.env.sig.SHA512.opaque.dave.sig.SHA512.opaque.eml", SMIME_WRAPPED),
    ("thunderbird-smime/nss-generated/alice.env.dsig.SHA512.multipart.dave.sig.SHA512.opaque.eml", SMIME_WRAPPED),
    ("thunderbird-smime/nss-generated/alice.plain.sig.SHA256.opaque.dave.sig.SHA256.opaque.eml", SMIME_INNER),
    ("thunderbird-smime/nss-generated/alice.plain.sig.SHA384.opaque.dave.sig.SHA384.opaque.eml", SMIME_INNER),
    ("thunderbird-smime/nss-generated/alice.plain.sig.SHA512.opaque.dave.sig.SHA512.opaque.eml", SMIME_INNER),
    // The same exceptions as in openpgp_vectors.rs.
    ("thunderbird-openpgp/eml/dual-signed-uncommon-content-type.eml",
     "the OpenPGP signature does not verify over the first part (GnuPG 2.2 also \
      reports BAD signature for it), and the S/MIME signature is not judged by the \
      OpenPGP reader"),
    ("thunderbird-openpgp/eml/multiple-signatures.eml",
     "the signed messages are message/rfc822 entries of a multipart/digest, so their \
      signatures belong to those attachments, and the report has no per-attachment \
      verdict"),
    ("thunderbird-openpgp/eml/outer-smime-bad-sig-inner-pgp-enc-sig.eml", SMIME_OUTER_PGP_INNER),
    ("thunderbird-openpgp/eml/outer-smime-bad-sig-inner-pgp-enc.eml", SMIME_OUTER_PGP_INNER),
    ("thunderbird-openpgp/eml/signed-inline-indented.eml",
     "the expectation assumes indented armor, but in this copy the armor lines start \
      at column 0 and only the signed text is indented, so the cleartext signature \
      verifies as good"),
    ("thunderbird-openpgp/eml/signed-with-mailman-footer.eml",
     "the signed part was edited after signing: its protected Message-ID ends in 1ag, \
      and with 1af restored the same signature verifies as good, so the bad verdict \
      is correct"),
    ("thunderbird-openpgp/eml/unob-signed-by-0x3099ff1238852b9f-to-0xf231550c4f47e38e.eml",
     "unobtrusive signatures (a Sig: header field on the MIME part) are not \
      implemented, so the message reads as unsigned, never as valid"),
];

const NO_SIGNER_KEY: &str = "the signer key 14AB3F65FC274BBDB5FA768C25F0072459E47AE2 \
    is not among the copied Delta Chat keys, so the signature is correctly reported \
    as made by an unknown key";

const NO_SIGNER_KEY_ATTACHED: &str = "the signer key \
    14AB3F65FC274BBDB5FA768C25F0072459E47AE2 is only attached to the message, and \
    attached keys are never imported on their own, so the signature is correctly \
    reported as made by an unknown key";

const PLACEHOLDER_SIGNATURE: &str = "upstream replaced the signature block with a \
    placeholder (\"REDACTED\" or a made-up armored block), so no client can verify \
    it and the bad verdict is correct";

const NO_RFC9216_CA: &str = "the RFC 9216 RSA CA certificate is not in the corpus. \
    The S/MIME reader builds chains up to a trusted root and does not take the \
    leaf lamps-alice.crt as its own root, so it reports the issuer as missing \
    (ChainIncomplete), as the corpus index asks when that CA is absent";

const PGP_OUTER_SMIME_INNER: &str = "the S/MIME reader does not open an S/MIME layer \
    inside an OpenPGP multipart/signed: it shows the message as not encrypted and \
    warns that protected parts sit among unprotected text. No trust moves from the \
    outer signature to the content, but the inner layer stays unread";

const SMIME_OUTER_PGP_INNER: &str = "the outer S/MIME signature is judged by the \
    S/MIME reader, so the OpenPGP report alone marks no outer signature as \
    covering ciphertext";

const SMIME_WRAPPED: &str = "the table expects the encrypted layer, wrapped in two \
    signatures, to stay closed. The reader decrypts it and marks both signatures as \
    covering only ciphertext, so no signature vouches for the content";

const SMIME_INNER: &str = "the table expects only the outer opaque signature by Dave \
    to count. The reader also checks the inner opaque signature, whose signer Alice \
    is not the From sender Dave, so the content is not signed by the sender, as the \
    table itself says for the rows where the inner signature is multipart/signed";

/// Resolves the corpus folder and panics with the path when it is missing.
fn corpus_root() -> PathBuf {
    if let Some(path) = std::env::var_os("WARDMAIL_VECTORS") {
        let path = PathBuf::from(path);
        assert!(
            path.is_dir(),
            "WARDMAIL_VECTORS is set to {}, which is not a folder; \
             point it at the test-vector corpus or unset it",
            path.display()
        );
        return path;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors");
    assert!(
        path.is_dir(),
        "the test-vector corpus is missing at {}; CI places it in shared/vectors \
         beside the repository, or set WARDMAIL_VECTORS to its folder",
        path.display()
    );
    path
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// Returns every file under `dir` as a path relative to `root`, sorted.
fn walk(root: &Path, dir: &Path, files: &mut Vec<String>) {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()))
            .path();
        if path.is_dir() {
            walk(root, &path, files);
        } else {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            files.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// The verdict that an OpenPGP message must get, as in openpgp_vectors.rs.
#[derive(Debug, Clone, Copy)]
enum Pgp {
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
    /// Decrypted under an outer signature that covers only ciphertext.
    SignedCiphertext(Option<SignatureStatus>),
    /// An inline block with text around it, flagged and not decrypted at
    /// message level.
    Partial,
    /// Not decrypted, no good signature, and this warning.
    NotProtectedWarned(Warning),
    /// No good signature and no decryption.
    NoValidBadge,
    /// A good signature whose signer is not the sender, with a warning.
    SignerNotSender,
    /// A signer or date mismatch warning and no good signature.
    MismatchWarned,
    /// Not shown as signed by the sender, whatever the repair did.
    NoTrustUpgrade,
    /// Not encrypted, with any signatures.
    Unencrypted,
    /// Refused (for example a legacy cipher), never decrypted.
    Refused,
    /// Decrypts, or fails cleanly with a refusal.
    DecryptsOrFailsCleanly,
}

/// The expected behaviour of one corpus file.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Thunderbird's S/MIME table: enc, and (sig, sig_good) unless the row
    /// only checks that the text "This is a test message to Fran." decrypts.
    Smime {
        enc: bool,
        sig: Option<(bool, bool)>,
    },
    /// An OpenPGP verdict.
    Pgp(Pgp),
    /// An armored OpenPGP message without MIME, checked inside PGP/MIME.
    BarePgp(Pgp),
    /// A DER CMS object, checked inside an application/pkcs7-mime entity.
    Cms(Cms),
    /// Parses without panic in bounded time and shows no security
    /// indicator.
    ParseRobust,
    /// An OpenPGP key file. `true`: it must import. `false`: it may be
    /// rejected, but must not panic.
    KeyImport(bool),
    /// Covered by the index, but not runnable through the mail API.
    NotChecked(&'static str),
    /// A key, certificate, reference output or licence used as input.
    Input(&'static str),
    /// The corpus index has no expectation for this file.
    NoExpectation,
}

/// Expected behaviour of the RFC 9216 CMS samples.
#[derive(Debug, Clone, Copy)]
enum Cms {
    /// A valid signature.
    Valid,
    /// A valid signature, or one reported as an unsupported algorithm
    /// (Ed25519, RFC 8419), never bad or unsigned.
    ValidOrUnsupported,
    /// No valid signature (signer certificate missing).
    NotValid,
    /// Decrypts with a recipient key.
    Decrypts,
    /// Decrypts, or is refused as unsupported.
    DecryptsOrUnsupported,
    /// Refused cleanly (an unsupported recipient type).
    RefusedCleanly,
}

impl Expect {
    fn label(&self) -> String {
        match self {
            Self::Smime {
                enc,
                sig: Some((sig, good)),
            } => {
                format!("S/MIME enc={enc} sig={sig} sig_good={good}")
            }
            Self::Smime { enc, sig: None } => format!("S/MIME enc={enc}, Fran text decrypts"),
            Self::Pgp(pgp) => format!("OpenPGP {pgp:?}"),
            Self::BarePgp(pgp) => format!("OpenPGP {pgp:?} (wrapped in PGP/MIME)"),
            Self::Cms(cms) => format!("CMS {cms:?} (wrapped in S/MIME)"),
            Self::ParseRobust => "parse-robust, no security indicator".into(),
            Self::KeyImport(true) => "key imports".into(),
            Self::KeyImport(false) => "key imports or is rejected, no panic".into(),
            Self::NotChecked(_) => "not checked".into(),
            Self::Input(what) => format!("input: {what}"),
            Self::NoExpectation => "no expectation".into(),
        }
    }
}

/// One row of Thunderbird's S/MIME table: file, enc, and (sig, sig_good).
type SmimeRow = (&'static str, bool, Option<(bool, bool)>);

/// Thunderbird's S/MIME table, copied from smime_vectors.rs: file relative
/// to `thunderbird-smime`, enc, and (sig, sig_good) or `None` for the
/// decrypt-only rows.
#[rustfmt::skip]
const SMIME_TABLE: &[SmimeRow] = &[
    ("nss-generated/alice.env.eml", true, Some((false, false))),
    ("nss-generated/alice.dsig.SHA1.multipart.bad.eml", false, Some((true, false))),
    ("nss-generated/alice.dsig.SHA1.multipart.env.eml", true, Some((true, false))),
    ("nss-generated/alice.dsig.SHA1.multipart.eml", false, Some((true, false))),
    ("nss-generated/alice.dsig.SHA1.multipart.mismatch-econtent.eml", false, Some((true, false))),
    ("nss-generated/alice.dsig.SHA256.multipart.bad.eml", false, Some((true, false))),
    ("nss-generated/alice.dsig.SHA256.multipart.eml", false, Some((true, true))),
    ("nss-generated/alice.future.dsig.SHA256.multipart.eml", false, Some((true, false))),
    ("nss-generated/alice.dsig.SHA256.multipart.env.eml", true, Some((true, true))),
    ("nss-generated/alice.dsig.SHA256.multipart.mismatch-econtent.eml", false, Some((true, false))),
    ("nss-generated/alice.dsig.SHA384.multipart.bad.eml", false, Some((true, false))),
    ("nss-generated/alice.dsig.SHA384.multipart.eml", false, Some((true, true))),
    ("nss-generated/alice.dsig.SHA384.multipart.env.eml", true, Some((true, true))),
    ("nss-generated/alice.dsig.SHA384.multipart.mismatch-econtent.eml", false, Some((true, false))),
    ("nss-generated/alice.dsig.SHA512.multipart.bad.eml", false, Some((true, false))),
    ("nss-generated/alice.dsig.SHA512.multipart.eml", false, Some((true, true))),
    ("nss-generated/alice.dsig.SHA512.multipart.env.eml", true, Some((true, true))),
    ("nss-generated/alice.dsig.SHA512.multipart.mismatch-econtent.eml", false, Some((true, false))),
    ("nss-generated/alice.sig.SHA1.opaque.eml", false, Some((true, false))),
    ("nss-generated/alice.sig.SHA1.opaque.env.eml", true, Some((true, false))),
    ("nss-generated/alice.sig.SHA256.opaque.eml", false, Some((true, true))),
    ("nss-generated/alice.sig.SHA256.opaque.env.eml", true, Some((true, true))),
    ("nss-generated/alice.sig.SHA384.opaque.eml", false, Some((true, true))),
    ("nss-generated/alice.sig.SHA384.opaque.env.eml", true, Some((true, true))),
    ("nss-generated/alice.sig.SHA512.opaque.eml", false, Some((true, true))),
    ("nss-generated/alice.sig.SHA512.opaque.env.eml", true, Some((true, true))),
    ("nss-generated/alice.env.sig.SHA1.opaque.eml", true, Some((false, false))),
    ("nss-generated/alice.env.dsig.SHA1.multipart.eml", true, Some((false, false))),
    ("nss-generated/alice.env.sig.SHA256.opaque.eml", true, Some((false, false))),
    ("nss-generated/alice.env.dsig.SHA256.multipart.eml", true, Some((false, false))),
    ("nss-generated/alice.env.sig.SHA384.opaque.eml", true, Some((false, false))),
    ("nss-generated/alice.env.dsig.SHA384.multipart.eml", true, Some((false, false))),
    ("nss-generated/alice.env.sig.SHA512.opaque.eml", true, Some((false, false))),
    ("nss-generated/alice.env.dsig.SHA512.multipart.eml", true, Some((false, false))),
    ("smime-manual/alice.env.mixed.dsig.SHA256.multipart.eml", false, Some((true, false))),
    ("smime-manual/alice.dsig.SHA256.multipart.env.dsig.eml", true, Some((true, true))),
    ("smime-manual/outer-smime-bad-sig-inner-smime-enc-sig.eml", true, Some((true, true))),
    ("smime-manual/outer-smime-bad-sig-inner-smime-enc.eml", true, Some((false, false))),
    // Not in the upstream table: an outer OpenPGP signature over an inner
    // S/MIME layer. The outer signature must lend no trust to the content.
    ("smime-manual/outer-pgp-sig-inner-smime-enc-sig.eml", true, Some((true, true))),
    ("smime-manual/outer-pgp-sig-inner-smime-enc.eml", true, Some((false, false))),
    ("nss-generated/alice.env.sig.SHA1.opaque.dave.sig.SHA1.opaque.eml", false, Some((true, false))),
    ("nss-generated/alice.env.dsig.SHA1.multipart.dave.sig.SHA1.opaque.eml", false, Some((true, false))),
    ("nss-generated/alice.env.sig.SHA256.opaque.dave.sig.SHA256.opaque.eml", false, Some((true, true))),
    ("nss-generated/alice.env.dsig.SHA256.multipart.dave.sig.SHA256.opaque.eml", false, Some((true, false))),
    ("nss-generated/alice.env.sig.SHA384.opaque.dave.sig.SHA384.opaque.eml", false, Some((true, true))),
    ("nss-generated/alice.env.dsig.SHA384.multipart.dave.sig.SHA384.opaque.eml", false, Some((true, false))),
    ("nss-generated/alice.env.sig.SHA512.opaque.dave.sig.SHA512.opaque.eml", false, Some((true, true))),
    ("nss-generated/alice.env.dsig.SHA512.multipart.dave.sig.SHA512.opaque.eml", false, Some((true, false))),
    ("nss-generated/alice.plain.sig.SHA1.opaque.dave.sig.SHA1.opaque.eml", false, Some((true, false))),
    ("nss-generated/alice.plain.dsig.SHA1.multipart.dave.sig.SHA1.opaque.eml", false, Some((true, false))),
    ("nss-generated/alice.plain.sig.SHA256.opaque.dave.sig.SHA256.opaque.eml", false, Some((true, true))),
    ("nss-generated/alice.plain.dsig.SHA256.multipart.dave.sig.SHA256.opaque.eml", false, Some((true, false))),
    ("nss-generated/alice.plain.sig.SHA384.opaque.dave.sig.SHA384.opaque.eml", false, Some((true, true))),
    ("nss-generated/alice.plain.dsig.SHA384.multipart.dave.sig.SHA384.opaque.eml", false, Some((true, false))),
    ("nss-generated/alice.plain.sig.SHA512.opaque.dave.sig.SHA512.opaque.eml", false, Some((true, true))),
    ("nss-generated/alice.plain.dsig.SHA512.multipart.dave.sig.SHA512.opaque.eml", false, Some((true, false))),
    ("nss-generated/alice.plain.sig.SHA1.opaque.dave.dsig.SHA1.multipart.eml", false, Some((true, false))),
    ("nss-generated/alice.plain.dsig.SHA1.multipart.dave.dsig.SHA1.multipart.eml", false, Some((true, false))),
    ("nss-generated/alice.plain.sig.SHA256.opaque.dave.dsig.SHA256.multipart.eml", false, Some((true, false))),
    ("nss-generated/alice.plain.dsig.SHA256.multipart.dave.dsig.SHA256.multipart.eml", false, Some((true, false))),
    ("nss-generated/alice.plain.sig.SHA384.opaque.dave.dsig.SHA384.multipart.eml", false, Some((true, false))),
    ("nss-generated/alice.plain.dsig.SHA384.multipart.dave.dsig.SHA384.multipart.eml", false, Some((true, false))),
    ("nss-generated/alice.plain.sig.SHA512.opaque.dave.dsig.SHA512.multipart.eml", false, Some((true, false))),
    ("nss-generated/alice.plain.dsig.SHA512.multipart.dave.dsig.SHA512.multipart.eml", false, Some((true, false))),
    ("smime-interop/fran-oaep_ossl.env", true, None),
    ("smime-interop/fran-oaep-label_ossl.env", true, None),
    ("smime-interop/fran-oaep-sha256hash_ossl.env", true, None),
    ("smime-interop/fran-oaep-sha256hash-sha256mgf_ossl.env", true, None),
    ("smime-interop/fran-ec_ossl-aes128-sha256.env", true, None),
    ("smime-interop/fran-ec_ossl-aes256-sha512.env", true, None),
    // Opaque-signed HTML: valid like the rows above, except for SHA-1.
    ("nss-generated/alice.html.sig.SHA1.opaque.eml", false, Some((true, false))),
    ("nss-generated/alice.html.sig.SHA1.opaque.env.eml", true, Some((true, false))),
    ("nss-generated/alice.html.sig.SHA256.opaque.eml", false, Some((true, true))),
    ("nss-generated/alice.html.sig.SHA256.opaque.env.eml", true, Some((true, true))),
    ("nss-generated/alice.html.sig.SHA384.opaque.eml", false, Some((true, true))),
    ("nss-generated/alice.html.sig.SHA384.opaque.env.eml", true, Some((true, true))),
    ("nss-generated/alice.html.sig.SHA512.opaque.eml", false, Some((true, true))),
    ("nss-generated/alice.html.sig.SHA512.opaque.env.eml", true, Some((true, true))),
];

/// Thunderbird's OpenPGP test mail, copied from openpgp_vectors.rs, with
/// files relative to `thunderbird-openpgp`.
#[rustfmt::skip]
const PGP_TABLE: &[(&str, Pgp)] = &[
    ("eml-rnp/plaintext-with-key-and-windows-1252-encoded-eml-attachment.eml", Pgp::Unprotected),
    ("eml-rnp/plaintext-with-windows-1252-encoded-eml-attachment.eml", Pgp::Unprotected),
    ("eml/alice-broken-exchange.eml", Pgp::NotProtectedWarned(Warning::UnprotectedTextAroundProtectedPart)),
    ("eml/alice-signed.eml", Pgp::Signed(SignatureStatus::Good)),
    ("eml/alice-utf.eml", Pgp::Signed(SignatureStatus::Good)),
    ("eml/bob-enc-html-nbsp.eml", Pgp::Decrypted),
    ("eml/bob-enc-inline-nbsp-qp.eml", Pgp::Decrypted),
    ("eml/bob-to-alice-signed-damaged-signature.eml", Pgp::Signed(SignatureStatus::Bad)),
    ("eml/dual-signed-uncommon-content-type.eml", Pgp::Signed(SignatureStatus::Good)),
    ("eml/enc-to-carol@pgp.icu-revoked.eml", Pgp::Decrypted),
    ("eml/encrypted-and-signed-alice-to-bob-nonascii.eml", Pgp::EncryptedSigned(SignatureStatus::Good)),
    ("eml/encrypted-to-alice-as-hidden-recipient.eml", Pgp::Encrypted),
    ("eml/eve-duplicate.eml", Pgp::NoValidBadge),
    ("eml/forwarded-eml-signed-by-alice.eml", Pgp::Unprotected),
    ("eml/fwd-signed.eml", Pgp::Unprotected),
    ("eml/fwd-unsigned-encrypted.eml", Pgp::Unprotected),
    // The signer key 0x0E27928F241B4D20 is not in the corpus.
    ("eml/inline-signed-latin1.eml", Pgp::Signed(SignatureStatus::UnknownKey)),
    ("eml/inline-signed-utf8.eml", Pgp::Signed(SignatureStatus::UnknownKey)),
    ("eml/inner-smime-sig-in-pgp-encrypted.eml", Pgp::Encrypted),
    ("eml/multiple-signatures.eml", Pgp::Signed(SignatureStatus::Good)),
    ("eml/openpgp__stripped_sig.eml", Pgp::Unprotected),
    ("eml/outer-pgp-sig-inner-pgp-enc-sig.eml", Pgp::SignedCiphertext(Some(SignatureStatus::Good))),
    ("eml/outer-pgp-sig-inner-pgp-enc-with-mixed.eml", Pgp::NotProtectedWarned(Warning::UnprotectedTextAroundProtectedPart)),
    ("eml/outer-pgp-sig-inner-pgp-enc.eml", Pgp::SignedCiphertext(None)),
    ("eml/outer-smime-bad-sig-inner-pgp-enc-sig-with-mixed.eml", Pgp::NotProtectedWarned(Warning::UnprotectedTextAroundProtectedPart)),
    ("eml/outer-smime-bad-sig-inner-pgp-enc-sig.eml", Pgp::SignedCiphertext(Some(SignatureStatus::Good))),
    ("eml/outer-smime-bad-sig-inner-pgp-enc.eml", Pgp::SignedCiphertext(None)),
    ("eml/partial-encrypt-for-alice-html.eml", Pgp::Partial),
    ("eml/partial-encrypt-for-alice-plaintext.eml", Pgp::Partial),
    ("eml/partial-encrypt-for-carol-html.eml", Pgp::Partial),
    ("eml/partial-encrypt-for-carol-plaintext.eml", Pgp::Partial),
    ("eml/signed-by-0x3099ff1238852b9f-encrypted-to-0xf231550c4f47e38e-with-key.eml", Pgp::EncryptedSigned(SignatureStatus::Good)),
    ("eml/signed-by-0x3099ff1238852b9f-encrypted-to-0xf231550c4f47e38e.eml", Pgp::EncryptedSigned(SignatureStatus::Good)),
    ("eml/signed-by-0x3099ff1238852b9f-to-0xf231550c4f47e38e-unencrypted-with-key.eml", Pgp::Signed(SignatureStatus::Good)),
    ("eml/signed-by-0x3099ff1238852b9f-to-0xf231550c4f47e38e-unencrypted.eml", Pgp::Signed(SignatureStatus::Good)),
    ("eml/signed-by-0xfbfcc82a015e7330-encrypted-to-0xf231550c4f47e38e-multi-from.eml", Pgp::SignerNotSender),
    ("eml/signed-by-0xfbfcc82a015e7330-encrypted-to-0xf231550c4f47e38e-with-key.eml", Pgp::EncryptedSigned(SignatureStatus::Good)),
    ("eml/signed-by-0xfbfcc82a015e7330-encrypted-to-0xf231550c4f47e38e.eml", Pgp::EncryptedSigned(SignatureStatus::Good)),
    ("eml/signed-by-0xfbfcc82a015e7330-to-0xf231550c4f47e38e-unencrypted-in-mixed.eml", Pgp::Signed(SignatureStatus::Good)),
    ("eml/signed-by-0xfbfcc82a015e7330-to-0xf231550c4f47e38e-unencrypted-with-key.eml", Pgp::Signed(SignatureStatus::Good)),
    ("eml/signed-by-0xfbfcc82a015e7330-to-0xf231550c4f47e38e-unencrypted.eml", Pgp::Signed(SignatureStatus::Good)),
    ("eml/signed-encrypted-autocrypt-gossip.eml", Pgp::EncryptedSigned(SignatureStatus::Good)),
    // Indented armor is no signature, so the message reads as unsigned.
    ("eml/signed-inline-indented.eml", Pgp::Unprotected),
    ("eml/signed-mismatch-email-date.eml", Pgp::MismatchWarned),
    ("eml/signed-with-mailman-footer.eml", Pgp::Signed(SignatureStatus::Good)),
    ("eml/sigspoof-git-commit.eml", Pgp::NoValidBadge),
    ("eml/unob-signed-by-0x3099ff1238852b9f-to-0xf231550c4f47e38e.eml", Pgp::Signed(SignatureStatus::Good)),
    ("eml/unrelated-and-fake-keys-attached.eml", Pgp::NoValidBadge),
    ("eml/unsigned-encrypted-to-0xf231550c4f47e38e-from-0x3099ff1238852b9f-with-key.eml", Pgp::Encrypted),
    ("eml/unsigned-encrypted-to-0xf231550c4f47e38e-from-0x3099ff1238852b9f.eml", Pgp::Encrypted),
    ("eml/unsigned-encrypted-to-0xf231550c4f47e38e-from-0xfbfcc82a015e7330-with-key.eml", Pgp::Encrypted),
    ("eml/unsigned-encrypted-to-0xf231550c4f47e38e-from-0xfbfcc82a015e7330.eml", Pgp::Encrypted),
    ("eml/unsigned-unencrypted-0x3099ff1238852b9f-autocrypt.eml", Pgp::Unprotected),
    ("eml/unsigned-unencrypted-from-bob-to-alice.eml", Pgp::Unprotected),
    ("eml/unsigned-unencrypted-key-0x1f10171bfb881b1c-attached.eml", Pgp::Unprotected),
];

/// Thunderbird key files that must import: real-world shapes listed by
/// the index as "import without error" or "parse-robust import".
const MUST_IMPORT: &[&str] = &[
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

/// Returns the expected behaviour of `file`, a path relative to the corpus.
fn expectation(file: &str) -> Expect {
    if file == "SOURCES.md" {
        return Expect::Input("the corpus index itself");
    }
    let (folder, rest) = file.split_once('/').unwrap_or(("", file));
    if !INDEXED_FOLDERS.contains(&folder) {
        return Expect::NoExpectation;
    }
    let name = rest.rsplit('/').next().unwrap_or(rest);
    match folder {
        "thunderbird-smime" => thunderbird_smime(rest, name),
        "thunderbird-openpgp" => thunderbird_openpgp(rest, name),
        "protected-headers-draft" => protected_headers(name),
        "autocrypt-spec" => autocrypt(name),
        "thunderbird-mime" | "mail-parser-corpus" => Expect::ParseRobust,
        "deltachat-core" => deltachat(rest, name),
        "openpgp-interop-suite" => interop_suite(rest, name),
        "rfc9216-lamps-samples" => rfc9216(name),
        _ => Expect::NoExpectation,
    }
}

fn thunderbird_smime(rest: &str, name: &str) -> Expect {
    if let Some((_, enc, sig)) = SMIME_TABLE.iter().find(|(file, ..)| *file == rest) {
        return Expect::Smime {
            enc: *enc,
            sig: *sig,
        };
    }
    if name.ends_with(".p12") || name.ends_with(".pem") {
        return Expect::Input("identity or CA certificate (password nss)");
    }
    if name.ends_with(".txt") {
        return Expect::Input("upstream notes");
    }
    Expect::NoExpectation
}

fn thunderbird_openpgp(rest: &str, name: &str) -> Expect {
    if let Some((_, pgp)) = PGP_TABLE.iter().find(|(file, _)| *file == rest) {
        return Expect::Pgp(*pgp);
    }
    if rest.starts_with("keys/") {
        return Expect::KeyImport(MUST_IMPORT.contains(&name));
    }
    Expect::NoExpectation
}

fn protected_headers(name: &str) -> Expect {
    let smime = |enc, signed| Expect::Smime {
        enc,
        sig: Some((signed, signed)),
    };
    match name {
        "pgpmime-signed.eml" => Expect::Pgp(Pgp::Signed(SignatureStatus::Good)),
        "pgpmime-sign+enc.eml"
        | "pgpmime-sign+enc+legacy-disp.eml"
        | "pgpmime-layered.eml"
        | "pgpmime-layered+legacy-disp.eml" => {
            Expect::Pgp(Pgp::EncryptedSigned(SignatureStatus::Good))
        }
        "pgpmime-enc+legacy-disp.eml" => Expect::Pgp(Pgp::Encrypted),
        "smime-onepart-signed.eml" | "smime-multipart-signed.eml" => smime(false, true),
        "smime-sign+enc.eml" | "smime-sign+enc+legacy-disp.eml" => smime(true, true),
        "smime-enc+legacy-disp.eml" => smime(true, false),
        // The draft lists the indicators for this nested structure. Here
        // it is checked that the message decrypts with Bob's key.
        "unfortunately-complex.eml" => Expect::Pgp(Pgp::Decrypted),
        _ if name.contains(".inner") => {
            Expect::Input("reference decryption, compared by smime_vectors and openpgp_vectors")
        }
        _ => Expect::Input("key or CA certificate"),
    }
}

fn autocrypt(name: &str) -> Expect {
    match name {
        "example-simple-autocrypt.eml" => Expect::Pgp(Pgp::Unprotected),
        "example-gossip.eml" | "example-draft.eml" => Expect::Pgp(Pgp::Decrypted),
        "example-gossip-cleartext.eml" | "example-draft-cleartext.eml" => Expect::ParseRobust,
        // A symmetrically encrypted setup message must not be opened or
        // imported without the setup code.
        "example-setup-message.eml" => Expect::Pgp(Pgp::NoValidBadge),
        _ if name.ends_with(".asc") => Expect::Input("Autocrypt test key"),
        _ => Expect::Input("setup message payload"),
    }
}

fn deltachat(rest: &str, name: &str) -> Expect {
    if rest.starts_with("key/") {
        return Expect::Input("Delta Chat test key");
    }
    let good = SignatureStatus::Good;
    match name {
        "AutocryptSetupMessage.eml"
        | "k-9-autocrypt-setup-message.eml"
        | "plaintext-autocrypt-setup.txt" => Expect::Pgp(Pgp::NoValidBadge),
        "thunderbird_encrypted_signed.eml" | "thunderbird_encrypted_signed_with_pubkey.eml" => {
            Expect::Pgp(Pgp::EncryptedSigned(good))
        }
        "thunderbird_encrypted_unsigned.eml"
        | "thunderbird_encrypted_unsigned_with_unencrypted_subject.eml" => {
            Expect::Pgp(Pgp::Encrypted)
        }
        // The names state only what these two are not: the first is also
        // signed, and the second is signed but not encrypted.
        "thunderbird_with_autocrypt.eml" => Expect::Pgp(Pgp::Decrypted),
        "thunderbird_with_autocrypt_unencrypted.eml" => Expect::Pgp(Pgp::Unencrypted),
        "thunderbird_signed_unencrypted.eml" => Expect::Pgp(Pgp::Signed(good)),
        // An encrypted message in the header-robustness group.
        "encrypted_with_received_headers.eml" | "messed_up_message_id.eml" => {
            Expect::Pgp(Pgp::Decrypted)
        }
        "rfc1847_encapsulation.eml" => Expect::Pgp(Pgp::EncryptedSigned(good)),
        "protonmail-mixed-up.eml" | "protonmail-repaired.eml" | "google-workspace-mixed-up.eml" => {
            Expect::Pgp(Pgp::NoTrustUpgrade)
        }
        "mailinglist_with_mimepart_footer_signed.eml" | "schleuder.eml" => {
            Expect::Pgp(Pgp::Signed(good))
        }
        _ => Expect::ParseRobust,
    }
}

fn interop_suite(rest: &str, name: &str) -> Expect {
    if rest.starts_with("certificates/") {
        return Expect::Input("interop-suite certificate");
    }
    match name {
        "7C2FAA4DF93C37B2.IDEA.pgp" => Expect::BarePgp(Pgp::Refused),
        "alice-kdf-primary.pgp" | "alice-kdf-subkey.pgp" => {
            Expect::BarePgp(Pgp::DecryptsOrFailsCleanly)
        }
        _ if name.ends_with(".pdf") => Expect::Input("SHAttered PDF, the signed data"),
        _ if name.ends_with(".asc") => Expect::NotChecked(
            "a detached signature over raw PDF bytes; a PGP/MIME signature covers a \
             MIME entity, so the mail API cannot verify it",
        ),
        _ if name.starts_with("revoked-key-sig-") => Expect::NotChecked(
            "a detached signature whose signed data the interop suite generates at run \
             time; that data is not in the corpus",
        ),
        _ if name.starts_with("revoked-key-cert-") => Expect::KeyImport(false),
        _ if name.starts_with("LICENSE") => Expect::Input("licence text"),
        _ => Expect::NoExpectation,
    }
}

fn rfc9216(name: &str) -> Expect {
    match name {
        "signedByAliceRSA.p7m" | "signedByAliceRSAPSS.p7m" | "signedByCarlosDetached.p7m" => {
            Expect::Cms(Cms::Valid)
        }
        "signedByCarlosEd25519.p7m" => Expect::Cms(Cms::ValidOrUnsupported),
        "signedByAliceAndCarlosNoCerts.p7m" => Expect::Cms(Cms::NotValid),
        "encryptedForBobRSAOaep.p7m" | "encryptedForBobAndDana.p7m" => Expect::Cms(Cms::Decrypts),
        "authEnvelopedForBobChaCha20Poly1305.p7m" | "authEnvelopedForDanaX25519HKDF.p7m" => {
            Expect::Cms(Cms::DecryptsOrUnsupported)
        }
        "encryptedKekri.p7m" => Expect::Cms(Cms::RefusedCleanly),
        _ => Expect::Input("RFC 9216 certificate or private key"),
    }
}

/// Keys and trust that one corpus folder is read with.
struct Keys {
    identities: Vec<Identity>,
    trust: TrustStore,
    keyring: Keyring,
}

impl Keys {
    fn empty() -> Self {
        Self {
            identities: Vec::new(),
            trust: TrustStore::empty(),
            keyring: Keyring::new(),
        }
    }

    fn pkcs12(&mut self, path: &Path, password: &str) {
        let identity = Identity::from_pkcs12(&read(path), password)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
        self.identities.push(identity);
    }

    fn trust(&mut self, path: &Path) {
        self.trust
            .add_certificates(&read(path))
            .unwrap_or_else(|error| panic!("cannot trust {}: {error}", path.display()));
    }

    fn pgp(&mut self, path: &Path) {
        self.keyring
            .import(&read(path))
            .unwrap_or_else(|error| panic!("cannot import {}: {error}", path.display()));
    }

    /// Adds an identity from a PEM PKCS#8 key and a PEM certificate.
    fn pkcs8(&mut self, key: &Path, certificate: &Path) {
        let key = openssl::pkey::PKey::private_key_from_pem(&read(key)).unwrap();
        let certificate = openssl::x509::X509::from_pem(&read(certificate)).unwrap();
        let identity = Identity::from_der(
            &key.private_key_to_pkcs8().unwrap(),
            &certificate.to_der().unwrap(),
        )
        .unwrap();
        self.identities.push(identity);
    }
}

/// Loads the keys that the index names for `folder`.
fn keys_for(root: &Path, folder: &str) -> Keys {
    let mut keys = Keys::empty();
    let dir = root.join(folder);
    match folder {
        "thunderbird-smime" => {
            let nss = dir.join("nss-generated");
            for name in [
                "Alice.p12",
                "Bob.p12",
                "Dave.p12",
                "Eve.p12",
                "Alice-ec.p12",
            ] {
                keys.pkcs12(&nss.join(name), "nss");
            }
            for name in ["Fran.p12", "Fran-ec.p12"] {
                keys.pkcs12(&dir.join("smime-interop").join(name), "nss");
            }
            keys.trust(&nss.join("TestCA.pem"));
        }
        "thunderbird-openpgp" => {
            for name in [
                "alice@openpgp.example-0xf231550c4f47e38e-secret.asc",
                "bob@openpgp.example-0xfbfcc82a015e7330-secret.asc",
                "carol@example.com-0x3099ff1238852b9f-pub.asc",
                "carol@pgp.icu-0xEF2FD01608AFD744-revoked-secret.asc",
            ] {
                keys.pgp(&dir.join("keys").join(name));
            }
        }
        "protected-headers-draft" => {
            keys.pkcs12(&dir.join("bob.p12"), "bob");
            keys.trust(&dir.join("sample-ca.pem"));
            keys.pgp(&dir.join("alice@openpgp.example.pub.asc"));
            keys.pgp(&dir.join("bob@openpgp.example.sec.asc"));
        }
        "autocrypt-spec" => {
            for person in ["alice", "bob", "carol"] {
                keys.pgp(&dir.join(format!("{person}@autocrypt.example.sec.asc")));
            }
        }
        "deltachat-core" => {
            for person in ["alice", "bob", "charlie", "dom", "elena", "fiona"] {
                keys.pgp(&dir.join(format!("key/{person}-secret.asc")));
            }
        }
        "openpgp-interop-suite" => {
            // john-secret.pgp is left out: sequoia rejects its primary key
            // version, and the messages here are for alice.
            for person in ["alice", "bob", "carol", "ricarda"] {
                keys.pgp(&dir.join(format!("certificates/{person}-secret.pgp")));
            }
        }
        "rfc9216-lamps-samples" => {
            keys.pkcs8(
                &dir.join("lamps-bob.decrypt.p8.pem"),
                &dir.join("lamps-bob.encrypt.crt"),
            );
            keys.pkcs8(
                &dir.join("lamps-dana.decrypt.p8.pem"),
                &dir.join("lamps-dana.encrypt.crt"),
            );
            // The corpus index expects the Alice samples to verify with
            // lamps-alice.crt, because the RFC 9216 CA certificates are not
            // in the corpus.
            keys.trust(&dir.join("lamps-alice.crt"));
            keys.trust(&dir.join("lamps-carlos.crt"));
        }
        _ => {}
    }
    keys
}

/// What Wardmail did with one file, and whether it meets the expectation.
struct Outcome {
    got: String,
    ok: bool,
}

/// Describes a report in one short line.
fn summarize(report: &ProtectionReport) -> String {
    let mut text = match report.encrypted {
        Encryption::None => "not encrypted".to_string(),
        Encryption::Smime => "S/MIME encrypted".to_string(),
        Encryption::Openpgp => "OpenPGP encrypted".to_string(),
    };
    if report.decrypted {
        text.push_str(", decrypted");
    }
    if let Some(refusal) = &report.refused {
        let _ = write!(text, ", refused {refusal:?}");
    }
    for signature in &report.signatures {
        let _ = write!(text, ", sig {:?}", signature.status);
        if signature.scope == SignatureScope::Ciphertext {
            text.push_str(" over ciphertext");
        }
    }
    if report.signed_by_sender() {
        text.push_str(", signed by sender");
    }
    if !report.warnings.is_empty() {
        let _ = write!(text, ", warnings {:?}", report.warnings);
    }
    text
}

/// Computes the (enc, sig, sig_good) triple that Thunderbird's table checks.
fn smime_triple(report: &ProtectionReport) -> (bool, bool, bool) {
    let enc = report.encrypted == Encryption::Smime && report.decrypted;
    let sig = report.content_signatures().next().is_some();
    (enc, sig, report.signed_by_sender())
}

fn check_smime(raw: &[u8], keys: &Keys, enc: bool, sig: Option<(bool, bool)>) -> Outcome {
    let report = smime::inspect(raw, &keys.identities, &keys.trust);
    let (got_enc, got_sig, got_good) = smime_triple(&report);
    let mut ok = got_enc == enc;
    match sig {
        Some((sig, good)) => ok &= got_sig == sig && got_good == good,
        None => {
            let inner = report.inner_mime.clone().unwrap_or_default();
            ok &= String::from_utf8_lossy(&inner).contains("This is a test message to Fran.");
        }
    }
    // No SHA-1 signature may ever count as good.
    let sha1_good = report.signatures.iter().any(|signature| {
        signature.status == SignatureStatus::Good
            && signature
                .digest_algorithm
                .as_deref()
                .is_some_and(|digest| digest.to_ascii_lowercase().contains("sha1"))
    });
    ok &= !sha1_good;
    Outcome {
        got: format!(
            "enc={got_enc} sig={got_sig} sig_good={got_good} ({})",
            summarize(&report)
        ),
        ok,
    }
}

/// Checks a report against an OpenPGP verdict, as openpgp_vectors.rs does.
fn meets(report: &ProtectionReport, expect: Pgp) -> bool {
    let content: Vec<SignatureStatus> = report.content_signatures().map(|s| s.status).collect();
    let all = |status| !content.is_empty() && content.iter().all(|s| *s == status);
    let no_good = !report
        .signatures
        .iter()
        .any(|s| s.status == SignatureStatus::Good);
    let decrypted = report.encrypted == Encryption::Openpgp
        && report.decrypted
        && report.refused.is_none()
        && report.integrity_protected;
    let unencrypted = report.encrypted == Encryption::None && !report.decrypted;
    let warned = |warning| report.warnings.contains(&warning);

    match expect {
        Pgp::Unprotected => unencrypted && report.signatures.is_empty() && report.refused.is_none(),
        Pgp::Signed(status) => unencrypted && all(status),
        Pgp::Encrypted => decrypted && report.signatures.is_empty(),
        Pgp::Decrypted => decrypted,
        Pgp::EncryptedSigned(status) => decrypted && all(status),
        Pgp::SignedCiphertext(inner) => {
            let outer = report
                .signatures
                .first()
                .is_some_and(|s| s.scope == SignatureScope::Ciphertext);
            let inner_ok = match inner {
                Some(status) => all(status),
                None => content.is_empty(),
            };
            decrypted && outer && inner_ok && warned(Warning::SignatureOutsideEncryption)
        }
        Pgp::Partial => {
            report.encrypted == Encryption::None
                && !report.decrypted
                && warned(Warning::UnprotectedTextAroundProtectedPart)
        }
        Pgp::NotProtectedWarned(warning) => unencrypted && no_good && warned(warning),
        Pgp::NoValidBadge => !report.decrypted && no_good,
        Pgp::SignerNotSender => {
            all(SignatureStatus::Good)
                && report.signatures.iter().all(|s| !s.signer_matches_from)
                && warned(Warning::SignerNotSender)
                && !report.signed_by_sender()
        }
        Pgp::MismatchWarned => {
            no_good && (warned(Warning::SignerNotSender) || warned(Warning::SigningTimeMismatch))
        }
        Pgp::NoTrustUpgrade => !report.signed_by_sender(),
        Pgp::Unencrypted => unencrypted,
        Pgp::Refused => report.refused.is_some() && !report.decrypted,
        Pgp::DecryptsOrFailsCleanly => decrypted || (report.refused.is_some() && !report.decrypted),
    }
}

fn check_pgp(raw: &[u8], keys: &Keys, expect: Pgp) -> Outcome {
    let report = openpgp::inspect(raw, &keys.keyring);
    // A refused layer must never count as decrypted.
    let consistent = report.refused.is_none() || !report.decrypted;
    Outcome {
        got: summarize(&report),
        ok: consistent && meets(&report, expect),
    }
}

/// Wraps an armored OpenPGP message in a PGP/MIME entity (RFC 3156 §4).
fn pgp_mime(armored: &[u8]) -> Vec<u8> {
    let mut mail = b"From: sender@example.org\r\n\
        Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; \
        boundary=\"conformance\"\r\n\r\n\
        --conformance\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n\
        --conformance\r\nContent-Type: application/octet-stream\r\n\r\n"
        .to_vec();
    mail.extend_from_slice(armored);
    mail.extend_from_slice(b"\r\n--conformance--\r\n");
    mail
}

/// Wraps a DER CMS object in an application/pkcs7-mime entity (RFC 8551
/// §3.2), with the smime-type that matches its file name.
fn pkcs7_mime(der: &[u8], name: &str) -> Vec<u8> {
    let smime_type = if name.starts_with("signed") {
        "signed-data"
    } else if name.starts_with("authEnveloped") {
        "authEnveloped-data"
    } else {
        "enveloped-data"
    };
    let sender = if name.contains("Carlos") && !name.contains("Alice") {
        "carlos@smime.example"
    } else {
        "alice@smime.example"
    };
    let mut mail = format!(
        "From: {sender}\r\nMIME-Version: 1.0\r\n\
         Content-Type: application/pkcs7-mime; smime-type={smime_type}; name=smime.p7m\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    let encoded = openssl::base64::encode_block(der);
    for line in encoded.as_bytes().chunks(76) {
        mail.extend_from_slice(line);
        mail.extend_from_slice(b"\r\n");
    }
    mail
}

fn check_cms(raw: &[u8], name: &str, keys: &Keys, expect: Cms) -> Outcome {
    let report = smime::inspect(&pkcs7_mime(raw, name), &keys.identities, &keys.trust);
    let good = report
        .signatures
        .iter()
        .any(|s| s.status == SignatureStatus::Good);
    let refused_cleanly = report.refused.is_some() && !report.decrypted;
    let ok = match expect {
        Cms::Valid => good,
        Cms::ValidOrUnsupported => {
            good || report
                .signatures
                .iter()
                .any(|s| s.status == SignatureStatus::UnsupportedAlgorithm)
        }
        Cms::NotValid => !good && !report.signatures.is_empty(),
        Cms::Decrypts => report.decrypted,
        Cms::DecryptsOrUnsupported => report.decrypted || refused_cleanly,
        Cms::RefusedCleanly => refused_cleanly,
    };
    Outcome {
        got: summarize(&report),
        ok,
    }
}

/// Parses the message and runs both readers without keys: none may panic,
/// and neither may show a security indicator.
fn check_parse_robust(raw: &[u8]) -> Outcome {
    let parsed = parse(raw);
    let keys = Keys::empty();
    let smime_report = smime::inspect(raw, &keys.identities, &keys.trust);
    let pgp_report = openpgp::inspect(raw, &keys.keyring);
    let indicator = |report: &ProtectionReport| {
        report.encrypted != Encryption::None
            || report.decrypted
            || !report.signatures.is_empty()
            || report.refused.is_some()
    };
    let mut got = format!("parsed, {} problems", parsed.problems.len());
    let shown = indicator(&smime_report) || indicator(&pgp_report);
    if shown {
        let _ = write!(
            got,
            ", S/MIME: {}, OpenPGP: {}",
            summarize(&smime_report),
            summarize(&pgp_report)
        );
    } else {
        got.push_str(", no security indicator");
    }
    Outcome { got, ok: !shown }
}

fn check_key_import(raw: &[u8], must: bool) -> Outcome {
    match Keyring::new().import(raw) {
        Ok(fingerprints) => Outcome {
            got: format!("imported {} key(s)", fingerprints.len()),
            ok: true,
        },
        Err(error) => Outcome {
            got: format!("rejected: {error}"),
            ok: !must,
        },
    }
}

/// Runs the check for one file. `None` means the file is not run.
fn run_check(root: &Path, file: &str, expect: Expect, keys: &Keys) -> Option<Outcome> {
    let raw = read(&root.join(file));
    let name = file.rsplit('/').next().unwrap_or(file);
    let outcome = match expect {
        Expect::Smime { enc, sig } => check_smime(&raw, keys, enc, sig),
        Expect::Pgp(pgp) => {
            // Every message must also parse without panic.
            let _ = parse(&raw);
            check_pgp(&raw, keys, pgp)
        }
        Expect::BarePgp(pgp) => check_pgp(&pgp_mime(&raw), keys, pgp),
        Expect::Cms(cms) => check_cms(&raw, name, keys, cms),
        Expect::ParseRobust => check_parse_robust(&raw),
        Expect::KeyImport(must) => check_key_import(&raw, must),
        Expect::NotChecked(_) | Expect::Input(_) | Expect::NoExpectation => return None,
    };
    Some(outcome)
}

/// The verdict column of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    KnownMismatch,
    Mismatch,
    FixedKnownMismatch,
    NotChecked,
    Input,
    NoExpectation,
}

struct Row {
    file: String,
    expected: String,
    got: String,
    verdict: Verdict,
    note: String,
}

fn evaluate(root: &Path, file: &str, keys: &Keys) -> Row {
    let expect = expectation(file);
    let known = KNOWN_MISMATCHES.iter().find(|(name, _)| *name == file);
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| run_check(root, file, expect, keys)));
    let elapsed = started.elapsed();

    let (got, ok) = match result {
        Ok(None) => {
            let (verdict, got, note) = match expect {
                Expect::NotChecked(reason) => (Verdict::NotChecked, "not run", reason),
                Expect::Input(_) => (Verdict::Input, "used as input", ""),
                _ => (
                    Verdict::NoExpectation,
                    "not run",
                    "the index does not cover it",
                ),
            };
            return Row {
                file: file.to_string(),
                expected: expect.label(),
                got: got.to_string(),
                verdict,
                note: note.to_string(),
            };
        }
        Ok(Some(outcome)) => (outcome.got, outcome.ok),
        Err(_) => ("panicked".to_string(), false),
    };
    let (got, ok) = if elapsed > TIME_LIMIT {
        (format!("{got}, took {elapsed:?}"), false)
    } else {
        (got, ok)
    };

    let (verdict, note) = match (ok, known) {
        (true, None) => (Verdict::Ok, String::new()),
        (false, Some((_, reason))) => (Verdict::KnownMismatch, (*reason).to_string()),
        (false, None) => (Verdict::Mismatch, "not in KNOWN_MISMATCHES".to_string()),
        (true, Some(_)) => (
            Verdict::FixedKnownMismatch,
            "meets the expectation now; remove it from KNOWN_MISMATCHES".to_string(),
        ),
    };
    Row {
        file: file.to_string(),
        expected: expect.label(),
        got,
        verdict,
        note,
    }
}

fn verdict_text(row: &Row) -> String {
    match row.verdict {
        Verdict::Ok => "OK".into(),
        Verdict::KnownMismatch => format!("KNOWN MISMATCH ({})", row.note),
        Verdict::Mismatch => format!("MISMATCH ({})", row.note),
        Verdict::FixedKnownMismatch => format!("MISMATCH ({})", row.note),
        Verdict::NotChecked => format!("NOT CHECKED ({})", row.note),
        Verdict::Input => "INPUT".into(),
        Verdict::NoExpectation => "NO EXPECTATION".into(),
    }
}

/// What each expectation checks, for the generated document.
const CHECKS: &str = "## What is checked

- S/MIME rows use Thunderbird's expected (enc, sig, sig_good) values, read \
with the Thunderbird identities (password `nss`) and TestCA.pem trusted, or with \
bob.p12 (password `bob`) and sample-ca.pem for the protected-headers samples. \
No SHA-1 signature may count as good.
- OpenPGP rows use the verdicts of tests/openpgp_vectors.rs, read with the \
secret keys that each folder provides. `Decrypted` means decrypted with \
integrity protection, whatever the signatures say.
- CMS rows wrap the DER object in an application/pkcs7-mime entity, with Bob's \
and Dana's RFC 9216 keys and the Alice and Carlos certificates trusted.
- Bare OpenPGP messages of the interop suite are wrapped in PGP/MIME.
- Parse-robust rows parse the message and run both readers without keys: no \
panic, at most 10 seconds, and no security indicator.
- Key rows import the key: the real-world shapes must import, and the others \
may be rejected but must not panic. Revocation and subkey selection are \
checked in tests/openpgp_vectors.rs, not here.
- Refusal rows accept any refusal reason. The IDEA message is refused because \
no loaded key matches its recipient, so its cipher is never reached, and the \
AuthEnvelopedData samples are refused as DecryptionFailed, not as an unsupported \
algorithm.
- Not checked here: Autocrypt peer state, the reply Subject, the hiding of \
legacy-display parts and attachment file names. The rows check only what the \
protection report and the parser expose.
";

/// Renders the whole report as Markdown, the content of
/// docs/conformance.md.
fn render(rows: &[Row]) -> String {
    let count = |verdict| rows.iter().filter(|row| row.verdict == verdict).count();
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .unwrap_or_default();

    let mut doc = String::new();
    let _ = writeln!(doc, "# Conformance over the public test vectors\n");
    let _ = writeln!(
        doc,
        "Generated on {date} by `cargo test --test conformance -- --nocapture`, which \
         writes this file to `target/conformance.md`. Copy it here to update it.\n"
    );
    let _ = writeln!(
        doc,
        "Each row is one file of the corpus: the behaviour its index (`SOURCES.md` in the \
         corpus folder) expects, what Wardmail did, and the verdict. The test fails on \
         a mismatch that is not listed below with its reason, and on a listed file that \
         meets its expectation again.\n"
    );
    let _ = writeln!(doc, "{CHECKS}");
    let _ = writeln!(doc, "## Counts\n");
    let _ = writeln!(doc, "| verdict | files |\n|---|---|");
    for (label, verdict) in [
        ("OK", Verdict::Ok),
        ("known mismatch", Verdict::KnownMismatch),
        ("unlisted mismatch", Verdict::Mismatch),
        ("listed but now OK", Verdict::FixedKnownMismatch),
        ("not checked (reason in the row)", Verdict::NotChecked),
        (
            "input data (keys, certificates, references)",
            Verdict::Input,
        ),
        ("no expectation", Verdict::NoExpectation),
    ] {
        let _ = writeln!(doc, "| {label} | {} |", count(verdict));
    }
    let _ = writeln!(doc, "| total | {} |\n", rows.len());

    let _ = writeln!(doc, "## Known mismatches\n");
    if KNOWN_MISMATCHES.is_empty() {
        let _ = writeln!(doc, "None.\n");
    }
    for (file, reason) in KNOWN_MISMATCHES {
        let _ = writeln!(doc, "- `{file}`: {reason}");
    }
    let _ = writeln!(doc, "\n## Table\n");
    let _ = writeln!(
        doc,
        "| file | expected | got | verdict |\n|---|---|---|---|"
    );
    for row in rows {
        let cell = |text: &str| text.replace('|', "/");
        let _ = writeln!(
            doc,
            "| `{}` | {} | {} | {} |",
            row.file,
            cell(&row.expected),
            cell(&row.got),
            cell(&verdict_text(row))
        );
    }
    doc
}

#[test]
fn conformance_table() {
    let root = corpus_root();
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    assert!(!files.is_empty(), "{} contains no files", root.display());

    let mut rows = Vec::new();
    let mut current_folder = String::new();
    let mut keys = Keys::empty();
    for file in &files {
        let folder = file.split_once('/').map_or("", |(folder, _)| folder);
        if folder != current_folder {
            current_folder = folder.to_string();
            keys = keys_for(&root, folder);
        }
        let row = evaluate(&root, file, &keys);
        println!(
            "{} | {} | {} | {}",
            row.file,
            row.expected,
            row.got,
            verdict_text(&row)
        );
        rows.push(row);
    }

    // Every table entry must name a corpus file, so no row can go missing
    // unnoticed when the corpus changes.
    let listed = KNOWN_MISMATCHES.iter().map(|(file, _)| (*file).to_string());
    let smime = SMIME_TABLE
        .iter()
        .map(|(file, ..)| format!("thunderbird-smime/{file}"));
    let pgp = PGP_TABLE
        .iter()
        .map(|(file, _)| format!("thunderbird-openpgp/{file}"));
    let keys = MUST_IMPORT
        .iter()
        .map(|file| format!("thunderbird-openpgp/keys/{file}"));
    for file in listed.chain(smime).chain(pgp).chain(keys) {
        assert!(
            files.contains(&file),
            "{file} is named in a table of this test but is not in the corpus"
        );
    }

    let report = render(&rows);
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("conformance.md"), &report).unwrap();

    let failures: Vec<String> = rows
        .iter()
        .filter(|row| matches!(row.verdict, Verdict::Mismatch | Verdict::FixedKnownMismatch))
        .map(|row| format!("{}: expected {}, got {}", row.file, row.expected, row.got))
        .collect();
    assert!(
        failures.is_empty(),
        "{} files differ from KNOWN_MISMATCHES:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
