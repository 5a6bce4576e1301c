//! CMS SignedData checks for S/MIME (RFC 5652 section 5.6). OpenSSL checks
//! the digest and the signature value, and then the signer certificate
//! chain against the trust store with the S/MIME signing purpose. That
//! purpose requires the emailProtection extended key usage when the
//! certificate lists extended key usages.

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::error::ErrorStack;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags, Pkcs7Ref};
use openssl::stack::Stack;
use openssl::x509::{X509, X509PurposeId, X509Ref, X509StoreContext};

use super::{TrustStore, der};
use crate::protection::SignatureStatus;

/// The facts about one signature before the From and time policy.
pub(super) struct CheckedSignature {
    /// Set when the digest or signature failed, or the algorithm is
    /// unusable.
    pub(super) crypto_failure: Option<SignatureStatus>,
    pub(super) embedded_mismatch: bool,
    pub(super) signer: Option<X509>,
    pub(super) certificates: Stack<X509>,
    pub(super) digest_algorithm: Option<String>,
    pub(super) signing_time: Option<i64>,
    pub(super) capabilities: Option<Vec<String>>,
    pub(super) content: Option<Vec<u8>>,
}

/// Checks the digest and signature value of a SignedData without looking
/// at certificate trust. Returns None when the data is not SignedData.
pub(super) fn check_signature(der: &[u8], detached: Option<&[u8]>) -> Option<CheckedSignature> {
    let mut cms = CmsContentInfo::from_der(der).ok()?;
    let reencoded = cms.to_der().ok()?;
    let info = der::signer_info(&reencoded);
    // OpenSSL 3.0 decodes the public key of every certificate it parses,
    // about 0.15 ms per certificate with OpenSSL 3.0.22 on a 2-core AMD
    // EPYC VM, so the SignedData is parsed once as CMS and once as PKCS#7.
    let pkcs7 = Pkcs7::from_der(der).ok()?;
    let certificates = embedded_certificates(&pkcs7).ok()?;
    let signer = signer_certificate(&pkcs7);
    let mut checked = CheckedSignature {
        crypto_failure: None,
        embedded_mismatch: false,
        signer,
        certificates,
        digest_algorithm: info.digest_algorithm,
        signing_time: info.signing_time,
        capabilities: info.capabilities,
        content: None,
    };
    if checked.signer.is_none() {
        // Without a certificate nothing can be verified, but the reader may
        // still show the opaque content marked as unknown-key.
        if detached.is_none() {
            checked.content = embedded_content(&mut cms);
        }
        return Some(checked);
    }

    let flags = CMSOptions::NO_SIGNER_CERT_VERIFY | CMSOptions::BINARY;
    let mut content = Vec::new();
    let result = cms.verify(
        Some(&checked.certificates),
        None,
        detached,
        Some(&mut content),
        flags,
    );
    if let Err(errors) = result {
        // The content of a failed opaque signature is still shown, marked
        // bad, as the first part of a failed multipart/signed is.
        checked.crypto_failure = Some(signature_failure_status(&errors));
        if detached.is_none() {
            checked.content = embedded_content(&mut cms);
        }
        return Some(checked);
    }

    if let Some(detached) = detached {
        // A detached signature that also embeds content is ambiguous, because
        // the reader sees the MIME part and another client may show the
        // embedded copy. It only passes when both are the same bytes.
        if embedded_content(&mut cms).is_some_and(|embedded| embedded != detached) {
            checked.crypto_failure = Some(SignatureStatus::Bad);
            checked.embedded_mismatch = true;
            return Some(checked);
        }
    } else {
        checked.content = Some(content);
    }
    Some(checked)
}

/// Returns the eContent of a SignedData, if it carries one.
fn embedded_content(cms: &mut CmsContentInfo) -> Option<Vec<u8>> {
    let flags = CMSOptions::NO_SIGNER_CERT_VERIFY | CMSOptions::NOVERIFY | CMSOptions::BINARY;
    let mut content = Vec::new();
    // NOSIGS skips the signature so that only the content is extracted.
    let flags = flags | CMSOptions::NOSIGS;
    cms.verify(None, None, None, Some(&mut content), flags)
        .ok()?;
    Some(content)
}

/// Tells a signature OpenSSL cannot check from a wrong one. "invalid
/// digest" is what OpenSSL 3.0 reports for an Ed25519 signature over
/// signed attributes (RFC 8419), which it cannot verify, not a mismatch.
fn signature_failure_status(errors: &ErrorStack) -> SignatureStatus {
    let unsupported = errors.errors().iter().any(|error| {
        error.reason().is_some_and(|reason| {
            reason.contains("unsupported")
                || reason.contains("unknown digest")
                || reason.contains("invalid digest")
        })
    });
    if unsupported {
        SignatureStatus::UnsupportedAlgorithm
    } else {
        SignatureStatus::Bad
    }
}

fn embedded_certificates(pkcs7: &Pkcs7Ref) -> Result<Stack<X509>, ErrorStack> {
    let mut stack = Stack::new()?;
    if let Some(certificates) = pkcs7.signed().and_then(|signed| signed.certificates()) {
        for certificate in certificates {
            stack.push(certificate.to_owned())?;
        }
    }
    Ok(stack)
}

/// Finds the signer certificate among the certificates in the message.
fn signer_certificate(pkcs7: &Pkcs7Ref) -> Option<X509> {
    let none = Stack::new().ok()?;
    let signers = pkcs7.signers(&none, Pkcs7Flags::empty()).ok()?;
    signers
        .iter()
        .next()
        .map(|certificate| certificate.to_owned())
}

pub(super) fn subject_text(certificate: &X509Ref) -> String {
    certificate
        .subject_name()
        .entries()
        .filter_map(|entry| entry.data().to_string().ok())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Certificate verification error codes from OpenSSL's `x509_vfy.h`.
pub(super) mod verify_code {
    pub const OK: i32 = 0;
    pub const UNABLE_TO_GET_ISSUER_CERT: i32 = 2;
    pub const CERT_NOT_YET_VALID: i32 = 9;
    pub const CERT_HAS_EXPIRED: i32 = 10;
    pub const UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
    pub const UNABLE_TO_VERIFY_LEAF_SIGNATURE: i32 = 21;
    pub const CERT_REVOKED: i32 = 23;
    pub const INVALID_PURPOSE: i32 = 26;
}

/// Checks a certificate chain against the trust store at `time` for
/// `purpose` (S/MIME signing or encryption). `certificates` are untrusted
/// intermediates that may complete the chain.
pub(super) fn check_chain(
    signer: &X509Ref,
    certificates: &Stack<X509>,
    trust: &TrustStore,
    time: i64,
    purpose: X509PurposeId,
) -> SignatureStatus {
    match chain_error(signer, certificates, trust, time, purpose) {
        Some(verify_code::OK) => SignatureStatus::Good,
        Some(
            verify_code::UNABLE_TO_GET_ISSUER_CERT
            | verify_code::UNABLE_TO_GET_ISSUER_CERT_LOCALLY
            | verify_code::UNABLE_TO_VERIFY_LEAF_SIGNATURE,
        ) => SignatureStatus::ChainIncomplete,
        Some(verify_code::CERT_NOT_YET_VALID | verify_code::CERT_HAS_EXPIRED) => {
            SignatureStatus::Expired
        }
        Some(verify_code::CERT_REVOKED) => SignatureStatus::Revoked,
        _ => SignatureStatus::Untrusted,
    }
}

/// Runs OpenSSL's chain verification and returns its error code
/// ([`verify_code`]), or None when the check itself could not run.
pub(super) fn chain_error(
    leaf: &X509Ref,
    certificates: &Stack<X509>,
    trust: &TrustStore,
    time: i64,
    purpose: X509PurposeId,
) -> Option<i32> {
    let store = trust.build(time, purpose).ok()?;
    let mut context = X509StoreContext::new().ok()?;
    context
        .init(&store, leaf, certificates, |context| {
            context.verify_cert()?;
            Ok(context.error().as_raw())
        })
        .ok()
}
