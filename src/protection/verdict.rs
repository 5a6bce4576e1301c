//! The protection strip's words: a report turned into one headline and a
//! few detail lines, in the terms clinic staff read ("Encrypted with S/MIME
//! and signed by lab@example.org (valid)"). Computed here, not in the UI,
//! so the command line and the tests see the same sentences.

use super::{
    Encryption, ProtectionReport, Refusal, Signature, SignatureScope, SignatureStatus, Warning,
};

/// How reassuring the verdict is; the UI picks colours and icons from it,
/// and always shows the words too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// Encrypted and/or signed by the sender, nothing wrong.
    Protected,
    /// Not protected at all: an ordinary e-mail.
    Plain,
    /// Something the reader must notice: a bad signature, a signer who is
    /// not the sender, a message that could not be decrypted.
    Warning,
}

/// The words of the protection strip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// One sentence.
    pub headline: String,
    /// Further sentences, one per line.
    pub details: Vec<String>,
    /// How to present it.
    pub tone: Tone,
}

impl ProtectionReport {
    /// Describes the report for the reader's protection strip.
    pub fn verdict(&self) -> Verdict {
        let mut details = Vec::new();
        let mut tone = Tone::Protected;

        let encryption = match (self.encrypted, self.decrypted, self.refused) {
            (Encryption::None, _, _) => None,
            (method, true, _) => Some(format!("Encrypted with {}", method_name(method))),
            (method, false, refusal) => {
                tone = Tone::Warning;
                details.push(refusal_sentence(refusal));
                Some(format!(
                    "Encrypted with {}, not decrypted",
                    method_name(method)
                ))
            }
        };

        let signatures: Vec<&Signature> = self.content_signatures().collect();
        let signing = signatures.first().map(|signature| {
            if signature.status != SignatureStatus::Good {
                tone = Tone::Warning;
            }
            let status = status_word(signature.status);
            if signature.signer_matches_from {
                format!("signed by {} ({status})", signature.signer)
            } else {
                tone = Tone::Warning;
                format!(
                    "signed by {}, who is not the sender ({status})",
                    signature.signer
                )
            }
        });
        for extra in signatures.iter().skip(1) {
            details.push(format!(
                "Also signed by {} ({}).",
                extra.signer,
                status_word(extra.status)
            ));
        }
        if let Some(outer) = self
            .signatures
            .iter()
            .find(|s| s.scope == SignatureScope::Ciphertext)
        {
            details.push(format!(
                "A signature by {} covers only the encrypted form ({}); it says nothing about the text.",
                outer.signer,
                status_word(outer.status)
            ));
        }
        for warning in &self.warnings {
            if let Some(sentence) = warning_sentence(*warning) {
                if *warning == Warning::UnprotectedTextAroundProtectedPart {
                    tone = Tone::Warning;
                }
                details.push(sentence.to_owned());
            }
        }

        let headline = match (encryption, signing) {
            (Some(encryption), Some(signing)) => format!("{encryption} and {signing}"),
            // Signatures inside an unopened layer cannot be seen.
            (Some(encryption), None) if !self.decrypted => encryption,
            (Some(encryption), None) => format!("{encryption}; not signed"),
            (None, Some(signing)) => format!("Not encrypted; {signing}"),
            (None, None) => {
                if tone == Tone::Protected {
                    tone = Tone::Plain;
                }
                "Not encrypted and not signed".to_owned()
            }
        };
        Verdict {
            headline,
            details,
            tone,
        }
    }
}

fn method_name(method: Encryption) -> &'static str {
    match method {
        Encryption::Openpgp => "OpenPGP",
        Encryption::Smime => "S/MIME",
        Encryption::None => "nothing",
    }
}

fn status_word(status: SignatureStatus) -> &'static str {
    match status {
        SignatureStatus::Good => "valid",
        SignatureStatus::Bad => "INVALID: the message was changed or the signature is forged",
        SignatureStatus::UnknownKey => {
            "cannot be checked: the signer's certificate or key is missing"
        }
        SignatureStatus::Expired => "certificate expired",
        SignatureStatus::Revoked => "certificate revoked",
        SignatureStatus::ChainIncomplete => "chain incomplete: an issuing certificate is missing",
        SignatureStatus::Untrusted => "not trusted: the issuer is not a trusted CA",
        SignatureStatus::UnsupportedAlgorithm => "uses an algorithm that is no longer accepted",
    }
}

fn refusal_sentence(refusal: Option<Refusal>) -> String {
    let sentence = match refusal {
        Some(Refusal::NoKey) | None => {
            "None of your keys can open it: import the key or certificate it was encrypted to."
        }
        Some(Refusal::KeyLocked) => {
            "It is encrypted to your key, which is protected by a passphrase: enter the passphrase to unlock it."
        }
        Some(Refusal::NoIntegrityProtection) => {
            "It is not shown because its encryption has no integrity protection, so it could have been altered."
        }
        Some(Refusal::UnsupportedAlgorithm) => {
            "It uses an encryption algorithm Wardmail does not support."
        }
        Some(Refusal::DecryptionFailed) => {
            "A key matched, but the content would not decrypt: it may be damaged."
        }
        Some(Refusal::Malformed) => "Its encrypted data is damaged or not in a known format.",
    };
    sentence.to_owned()
}

fn warning_sentence(warning: Warning) -> Option<&'static str> {
    match warning {
        // Already in the headline.
        Warning::SignerNotSender | Warning::SignatureOutsideEncryption => None,
        Warning::UnprotectedTextAroundProtectedPart => Some(
            "Parts of this message are outside the protected part and could have been added by anyone.",
        ),
        Warning::Sha1Signature => Some("The signature uses SHA-1, which is no longer safe."),
        Warning::NoIntegrityProtection => {
            Some("The encryption does not detect changes to the message.")
        }
        Warning::SigningTimeMismatch => {
            Some("The signing time does not match the date of the message.")
        }
        Warning::EmbeddedContentMismatch => {
            Some("The signature carries a different text than the one shown.")
        }
        Warning::NestingTooDeep => {
            Some("The message nests more protection layers than Wardmail opens.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protection::SignatureMethod;

    fn signature(status: SignatureStatus, matches: bool) -> Signature {
        Signature {
            method: SignatureMethod::Smime,
            signer: "lab@example.org".into(),
            status,
            signer_matches_from: matches,
            scope: SignatureScope::Content,
            digest_algorithm: None,
            signing_time: None,
        }
    }

    #[test]
    fn verdict_plain_message() {
        let verdict = ProtectionReport::unprotected().verdict();
        assert_eq!(verdict.headline, "Not encrypted and not signed");
        assert_eq!(verdict.tone, Tone::Plain);
    }

    #[test]
    fn verdict_encrypted_and_signed() {
        let mut report = ProtectionReport::unprotected();
        report.encrypted = Encryption::Smime;
        report.decrypted = true;
        report
            .signatures
            .push(signature(SignatureStatus::Good, true));
        let verdict = report.verdict();
        assert_eq!(
            verdict.headline,
            "Encrypted with S/MIME and signed by lab@example.org (valid)"
        );
        assert_eq!(verdict.tone, Tone::Protected);
    }

    #[test]
    fn verdict_signer_not_sender() {
        let mut report = ProtectionReport::unprotected();
        report
            .signatures
            .push(signature(SignatureStatus::Good, false));
        let verdict = report.verdict();
        assert!(
            verdict.headline.contains("who is not the sender"),
            "{verdict:?}"
        );
        assert_eq!(verdict.tone, Tone::Warning);
    }

    #[test]
    fn verdict_bad_signature_never_valid() {
        let mut report = ProtectionReport::unprotected();
        report.encrypted = Encryption::Smime;
        report.decrypted = true;
        report
            .signatures
            .push(signature(SignatureStatus::Bad, true));
        let verdict = report.verdict();
        assert!(verdict.headline.contains("INVALID"), "{verdict:?}");
        assert!(!verdict.headline.contains("(valid)"), "{verdict:?}");
        assert_eq!(verdict.tone, Tone::Warning);
    }

    #[test]
    fn verdict_not_decrypted() {
        let mut report = ProtectionReport::unprotected();
        report.encrypted = Encryption::Smime;
        report.refused = Some(Refusal::NoKey);
        let verdict = report.verdict();
        assert_eq!(verdict.headline, "Encrypted with S/MIME, not decrypted");
        assert!(verdict.details[0].contains("import the key"), "{verdict:?}");
        assert_eq!(verdict.tone, Tone::Warning);
    }
}
