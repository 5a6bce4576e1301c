//! The protection model of one received message: which cryptographic layers
//! (S/MIME per RFC 8551 section 3, OpenPGP per RFC 3156) wrap it, whether
//! they decrypted and verified, and which MIME parts they cover.
//!
//! This module is plain data without any cryptography. The S/MIME and
//! OpenPGP readers fill a [`ProtectionReport`], and the message view renders
//! it. Every status and code serializes as a stable kebab-case string, so
//! the view and stored verdicts can match on them.
//!
//! The sender check follows RFC 8550 section 3: a signature speaks for the
//! From address only if the signer certificate names that address, either
//! as a subjectAltName rfc822Name or as an emailAddress in the subject.

use serde::{Deserialize, Serialize};

mod segments;
mod verdict;

pub use segments::{Segment, segments};
pub use verdict::{Tone, Verdict};

/// Errors of the protection model.
#[derive(Debug, thiserror::Error)]
pub enum ProtectionError {
    /// The report could not be turned into JSON.
    #[error("cannot serialize protection report: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// The encryption technology of the outermost message-level layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encryption {
    /// OpenPGP/MIME encryption (RFC 3156 section 4).
    Openpgp,
    /// S/MIME EnvelopedData (RFC 8551) or AuthEnvelopedData (RFC 5083).
    Smime,
    /// The message is not encrypted.
    None,
}

/// The technology that produced a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureMethod {
    /// CMS SignedData, opaque or in multipart/signed (RFC 8551).
    Smime,
    /// OpenPGP signature (RFC 3156 section 5).
    Openpgp,
}

/// The verdict on one signature. Only [`SignatureStatus::Good`] means the
/// content is unchanged and comes from a trusted, valid certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureStatus {
    /// Digest and signature match, and the signer certificate chains to a
    /// trusted root and is valid for e-mail protection.
    Good,
    /// The content digest or the signature value does not match, or the
    /// signed content differs from the content shown.
    Bad,
    /// The message carries no certificate for the signer.
    UnknownKey,
    /// A certificate in the chain was outside its validity period.
    Expired,
    /// A certificate in the chain is revoked.
    Revoked,
    /// An issuer certificate is missing, so the chain cannot be built.
    ChainIncomplete,
    /// The chain ends in a root that is not trusted, the certificate is not
    /// valid for e-mail protection, or signed metadata conflicts with the
    /// message.
    Untrusted,
    /// The signature uses an algorithm this client does not accept, such as
    /// a SHA-1 digest.
    UnsupportedAlgorithm,
}

/// The part of the message that a signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureScope {
    /// The signature covers the readable content.
    Content,
    /// The signature covers an encrypted layer only. It proves who sent
    /// the ciphertext, not who wrote the plaintext inside, so it does not
    /// vouch for the content shown.
    Ciphertext,
}

/// One signature found in the message, outermost first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    /// The technology that produced the signature.
    pub method: SignatureMethod,
    /// The signer's e-mail address, or the certificate subject when the
    /// certificate names no address, or "unknown" without a certificate.
    pub signer: String,
    /// The verdict on the signature.
    pub status: SignatureStatus,
    /// Whether the signer certificate names the From address.
    pub signer_matches_from: bool,
    /// What the signature covers.
    pub scope: SignatureScope,
    /// The digest algorithm name, such as "sha256", when it is known.
    pub digest_algorithm: Option<String>,
    /// The signed signingTime attribute in seconds since the Unix epoch.
    pub signing_time: Option<i64>,
}

/// One protection layer that covers a MIME part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    /// Inside an S/MIME encrypted layer.
    SmimeEncrypted,
    /// Inside an S/MIME signature.
    SmimeSigned,
    /// Inside an OpenPGP encrypted layer.
    OpenpgpEncrypted,
    /// Inside an OpenPGP signature.
    OpenpgpSigned,
}

/// One displayable MIME part and the layers that cover it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Part {
    /// The media type, such as "text/plain".
    pub content_type: String,
    /// The layers that cover this part, outermost first.
    pub protection: Vec<Layer>,
}

/// The reason why protected content was not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    /// The policy requires integrity protection, but the layer has none.
    NoIntegrityProtection,
    /// No configured private key matches a recipient of the message.
    NoKey,
    /// A private key of the user's matches, but it is protected by a
    /// passphrase and not unlocked; `locked_keys` names it.
    KeyLocked,
    /// The layer uses an algorithm this client does not support.
    UnsupportedAlgorithm,
    /// A key matched, but the content did not decrypt, for example because
    /// the ciphertext was damaged.
    DecryptionFailed,
    /// The protected data is not valid CMS or MIME.
    Malformed,
}

/// A condition the reader should see next to the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Warning {
    /// A signer certificate does not name the From address.
    SignerNotSender,
    /// Unprotected parts sit next to a protected part, so the message as a
    /// whole is not protected.
    UnprotectedTextAroundProtectedPart,
    /// A signature uses a SHA-1 digest, which is no longer collision
    /// resistant.
    Sha1Signature,
    /// The encryption does not authenticate its ciphertext, so changes to
    /// it are not detected.
    NoIntegrityProtection,
    /// The signed signingTime is far from the Date header or in the future.
    SigningTimeMismatch,
    /// A detached signature carries embedded content that differs from the
    /// MIME part shown.
    EmbeddedContentMismatch,
    /// The layers nest deeper than the reader follows.
    NestingTooDeep,
    /// A signature covers only ciphertext, so it does not vouch for the
    /// content inside.
    SignatureOutsideEncryption,
}

/// The protection verdict of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProtectionReport {
    /// The message-level encryption technology.
    pub encrypted: Encryption,
    /// Whether the decrypted content was authenticated by the encryption
    /// layer itself (AEAD, such as S/MIME AuthEnvelopedData).
    pub integrity_protected: bool,
    /// Whether the message-level encryption was removed.
    pub decrypted: bool,
    /// Why the protected content was not shown, if it was not.
    pub refused: Option<Refusal>,
    /// Every signature found, outermost first.
    pub signatures: Vec<Signature>,
    /// The displayable parts of the innermost content.
    pub parts: Vec<Part>,
    /// Conditions to show next to the verdict, each listed once.
    pub warnings: Vec<Warning>,
    /// The primary fingerprints of the user's passphrase-protected keys
    /// that would decrypt the message once unlocked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locked_keys: Vec<String>,
    /// The decrypted and verified inner MIME entity, for display only.
    #[serde(skip)]
    pub inner_mime: Option<Vec<u8>>,
}

impl ProtectionReport {
    /// Creates the report of a message without any protection layer.
    pub fn unprotected() -> Self {
        Self {
            encrypted: Encryption::None,
            integrity_protected: false,
            decrypted: false,
            refused: None,
            signatures: Vec::new(),
            parts: Vec::new(),
            warnings: Vec::new(),
            locked_keys: Vec::new(),
            inner_mime: None,
        }
    }

    /// Adds a warning unless it is already listed.
    pub fn add_warning(&mut self, warning: Warning) {
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }

    /// Returns the signatures that cover the readable content.
    pub fn content_signatures(&self) -> impl Iterator<Item = &Signature> {
        self.signatures
            .iter()
            .filter(|signature| signature.scope == SignatureScope::Content)
    }

    /// Returns whether the content is signed by the sender: at least one
    /// signature covers the content, and every such signature is good and
    /// names the From address.
    pub fn signed_by_sender(&self) -> bool {
        let mut any = false;
        for signature in self.content_signatures() {
            if signature.status != SignatureStatus::Good || !signature.signer_matches_from {
                return false;
            }
            any = true;
        }
        any
    }

    /// Serializes the report, without the inner MIME bytes, to JSON.
    pub fn to_json(&self) -> Result<String, ProtectionError> {
        Ok(serde_json::to_string(self)?)
    }
}

/// Returns whether one of the certificate addresses equals the From
/// address. The comparison ignores ASCII case in the whole address because
/// mail systems treat local parts that way in practice, although RFC 5321
/// lets a server tell them apart.
pub fn signer_matches_from(certificate_addresses: &[String], from: &str) -> bool {
    let from = from.trim();
    !from.is_empty()
        && certificate_addresses
            .iter()
            .any(|address| address.trim().eq_ignore_ascii_case(from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signature(status: SignatureStatus, matches: bool, scope: SignatureScope) -> Signature {
        Signature {
            method: SignatureMethod::Smime,
            signer: "alice@example.org".to_string(),
            status,
            signer_matches_from: matches,
            scope,
            digest_algorithm: Some("sha256".to_string()),
            signing_time: None,
        }
    }

    #[test]
    fn report_serializes_kebab_case() {
        let mut report = ProtectionReport::unprotected();
        report.encrypted = Encryption::Smime;
        report.refused = Some(Refusal::NoIntegrityProtection);
        report.signatures.push(signature(
            SignatureStatus::ChainIncomplete,
            true,
            SignatureScope::Content,
        ));
        report.add_warning(Warning::UnprotectedTextAroundProtectedPart);
        report.inner_mime = Some(b"secret".to_vec());

        let json = report.to_json().unwrap();
        assert!(json.contains(r#""encrypted":"smime""#), "{json}");
        assert!(
            json.contains(r#""refused":"no-integrity-protection""#),
            "{json}"
        );
        assert!(json.contains(r#""status":"chain-incomplete""#), "{json}");
        assert!(
            json.contains(r#""unprotected-text-around-protected-part""#),
            "{json}"
        );
        assert!(!json.contains("secret"), "{json}");
        assert!(!json.contains("inner_mime"), "{json}");
    }

    #[test]
    fn status_values_are_stable() {
        let cases = [
            (SignatureStatus::Good, "good"),
            (SignatureStatus::Bad, "bad"),
            (SignatureStatus::UnknownKey, "unknown-key"),
            (SignatureStatus::Expired, "expired"),
            (SignatureStatus::Revoked, "revoked"),
            (SignatureStatus::ChainIncomplete, "chain-incomplete"),
            (SignatureStatus::Untrusted, "untrusted"),
            (
                SignatureStatus::UnsupportedAlgorithm,
                "unsupported-algorithm",
            ),
        ];
        for (status, expected) in cases {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{expected}\""));
        }
    }

    #[test]
    fn warning_listed_once() {
        let mut report = ProtectionReport::unprotected();
        report.add_warning(Warning::Sha1Signature);
        report.add_warning(Warning::Sha1Signature);
        assert_eq!(report.warnings, vec![Warning::Sha1Signature]);
    }

    #[test]
    fn signed_by_sender_needs_every_content_signature() {
        let mut report = ProtectionReport::unprotected();
        assert!(!report.signed_by_sender());

        report.signatures.push(signature(
            SignatureStatus::Bad,
            true,
            SignatureScope::Ciphertext,
        ));
        report.signatures.push(signature(
            SignatureStatus::Good,
            true,
            SignatureScope::Content,
        ));
        assert!(report.signed_by_sender());

        report.signatures.push(signature(
            SignatureStatus::Good,
            false,
            SignatureScope::Content,
        ));
        assert!(!report.signed_by_sender());
    }

    #[test]
    fn signer_match_ignores_case() {
        let addresses = vec!["Alice@Example.org".to_string()];
        assert!(signer_matches_from(&addresses, "alice@example.ORG"));
        assert!(!signer_matches_from(&addresses, "bob@example.org"));
        assert!(!signer_matches_from(&addresses, ""));
        assert!(!signer_matches_from(&[], "alice@example.org"));
    }
}
