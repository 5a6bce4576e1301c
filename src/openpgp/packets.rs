//! OpenPGP packet processing with sequoia: decryption of an encrypted
//! message (RFC 9580 sections 5.1, 5.13 and 5.14), verification of
//! detached and inline signatures (section 5.2), and the verdict on each
//! signature.
//!
//! Encrypted data without integrity protection, the Symmetrically
//! Encrypted Data packet of section 5.7, is rejected before any key is
//! used, so no unauthenticated plaintext can leave this module.

use std::io::Read;
use std::time::UNIX_EPOCH;

use sequoia_openpgp as pgp;

use pgp::cert::Cert;
use pgp::cert::amalgamation::ValidAmalgamation;
use pgp::crypto::SessionKey;
use pgp::packet::{PKESK, SKESK, Tag};
use pgp::parse::stream::{
    DecryptionHelper, DecryptorBuilder, DetachedVerifierBuilder, GoodChecksum, MessageLayer,
    MessageStructure, VerificationError, VerificationHelper, VerifierBuilder,
};
use pgp::parse::{PacketParser, PacketParserResult, Parse};
use pgp::policy::StandardPolicy;
use pgp::types::{RevocationStatus, SymmetricAlgorithm};
use pgp::{KeyHandle, packet};

use super::Keyring;
use crate::protection::{Refusal, SignatureStatus};

/// The largest plaintext, in bytes, that one encrypted or signed message
/// may expand to. A compressed packet can expand a small message without
/// bound, so reading stops here. This is a choice of this client, well
/// above the message size limits that mail servers commonly set.
const MAX_PLAINTEXT: u64 = 256 * 1024 * 1024;

/// The verdict on one OpenPGP signature, before it is placed in a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CheckedSignature {
    /// The verdict.
    pub status: SignatureStatus,
    /// The e-mail addresses of the signer certificate's valid User IDs.
    /// Empty when the certificate is not in the keyring.
    pub addresses: Vec<String>,
    /// The signer's primary key fingerprint, when the certificate is known.
    pub fingerprint: Option<String>,
    /// The hash algorithm name in lower case, such as "sha256".
    pub digest_algorithm: Option<String>,
    /// The signature creation time in seconds since the Unix epoch.
    pub signing_time: Option<i64>,
}

impl CheckedSignature {
    /// Returns the verdict on a signature that could not be read.
    pub(super) fn unreadable() -> Self {
        Self {
            status: SignatureStatus::Bad,
            addresses: Vec::new(),
            fingerprint: None,
            digest_algorithm: None,
            signing_time: None,
        }
    }
}

/// The result of decrypting one OpenPGP message.
#[derive(Debug)]
pub(super) struct Opened {
    /// The literal data.
    pub plaintext: Vec<u8>,
    /// The signatures inside the encryption, outermost first.
    pub signatures: Vec<CheckedSignature>,
}

/// The callbacks that sequoia's streaming decryptor and verifier call.
struct Helper<'a> {
    keyring: &'a Keyring,
    policy: &'a StandardPolicy<'a>,
    signatures: Vec<CheckedSignature>,
    session_key_found: bool,
}

impl<'a> Helper<'a> {
    fn new(keyring: &'a Keyring, policy: &'a StandardPolicy<'a>) -> Self {
        Self {
            keyring,
            policy,
            signatures: Vec::new(),
            session_key_found: false,
        }
    }
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, ids: &[KeyHandle]) -> pgp::Result<Vec<Cert>> {
        Ok(self.keyring.certificates_for(ids))
    }

    fn check(&mut self, structure: MessageStructure) -> pgp::Result<()> {
        // Every result is recorded and none fails the read: the caller
        // turns bad signatures into a verdict instead of an error.
        for layer in structure.into_iter() {
            if let MessageLayer::SignatureGroup { results } = layer {
                for result in results {
                    let checked = judge(result, self.policy);
                    self.signatures.push(checked);
                }
            }
        }
        Ok(())
    }
}

impl DecryptionHelper for Helper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> pgp::Result<Option<Cert>> {
        // Every PKESK is tried with every secret key, not only the one it
        // names, so wildcard (hidden) recipients decrypt too.
        for pkesk in pkesks {
            for key in self.keyring.secret_keys() {
                let Ok(mut keypair) = key.clone().into_keypair() else {
                    continue;
                };
                let Some((algorithm, session_key)) = pkesk.decrypt(&mut keypair, sym_algo) else {
                    continue;
                };
                if decrypt(algorithm, &session_key) {
                    self.session_key_found = true;
                    return Ok(None);
                }
            }
        }
        Err(NoSessionKey.into())
    }
}

/// The error that [`Helper`] returns when no secret key yields a session
/// key, which [`classify`] reports as a missing key rather than as damaged
/// ciphertext.
#[derive(Debug, thiserror::Error)]
#[error("cannot decrypt: no secret key matches a recipient")]
struct NoSessionKey;

/// Decrypts an OpenPGP message, armored or binary, and verifies the
/// signatures inside it.
pub(super) fn open(data: &[u8], keyring: &Keyring) -> Result<Opened, Refusal> {
    open_limited(data, keyring, MAX_PLAINTEXT)
}

/// Decrypts like [`open`], but rejects a plaintext longer than `limit`
/// bytes as malformed.
pub(super) fn open_limited(data: &[u8], keyring: &Keyring, limit: u64) -> Result<Opened, Refusal> {
    require_integrity(data)?;

    let policy = StandardPolicy::new();
    let helper = Helper::new(keyring, &policy);
    let builder = DecryptorBuilder::from_bytes(data).map_err(|_| Refusal::Malformed)?;
    let mut decryptor = match builder.with_policy(&policy, None, helper) {
        Ok(decryptor) => decryptor,
        Err(error) => return Err(classify(&error, false)),
    };

    let mut plaintext = Vec::new();
    let mut limited = (&mut decryptor).take(limit + 1);
    if let Err(error) = limited.read_to_end(&mut plaintext) {
        let error = anyhow::Error::from(error);
        return Err(classify(&error, decryptor.helper_ref().session_key_found));
    }
    if plaintext.len() as u64 > limit {
        return Err(Refusal::Malformed);
    }
    let helper = decryptor.into_helper();
    Ok(Opened {
        plaintext,
        signatures: helper.signatures,
    })
}

/// Maps a decryption failure to the reason shown to the reader.
fn classify(error: &anyhow::Error, session_key_found: bool) -> Refusal {
    let unsupported = error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<pgp::Error>(),
            Some(
                pgp::Error::UnsupportedSymmetricAlgorithm(_)
                    | pgp::Error::UnsupportedAEADAlgorithm(_)
                    | pgp::Error::UnsupportedPublicKeyAlgorithm(_)
                    | pgp::Error::PolicyViolation(..)
            )
        )
    });
    if unsupported {
        return Refusal::UnsupportedAlgorithm;
    }
    let no_key = error
        .chain()
        .any(|cause| cause.downcast_ref::<NoSessionKey>().is_some());
    if no_key && !session_key_found {
        return Refusal::NoKey;
    }
    Refusal::DecryptionFailed
}

/// Rejects a message whose encrypted container has no integrity
/// protection: a Symmetrically Encrypted Data packet (tag 9) instead of a
/// SEIPD (tag 18, with MDC or AEAD) or an AEAD Encrypted Data packet.
fn require_integrity(data: &[u8]) -> Result<(), Refusal> {
    let tags = top_level_tags(data).ok_or(Refusal::Malformed)?;
    let authenticated = tags.iter().any(|tag| matches!(tag, Tag::SEIP | Tag::AED));
    if tags.contains(&Tag::SED) && !authenticated {
        return Err(Refusal::NoIntegrityProtection);
    }
    if !authenticated {
        return Err(Refusal::Malformed);
    }
    Ok(())
}

/// Returns whether the message has an encrypted container or a session
/// key packet at its top level.
pub(super) fn is_encrypted(data: &[u8]) -> bool {
    top_level_tags(data).is_some_and(|tags| {
        tags.iter().any(|tag| {
            matches!(
                tag,
                Tag::PKESK | Tag::SKESK | Tag::SED | Tag::SEIP | Tag::AED
            )
        })
    })
}

/// Returns the primary fingerprints of the user's certificates whose
/// passphrase-protected secret keys are named as recipients of the
/// message and are not unlocked: entering the passphrase would let it
/// decrypt.
pub(super) fn locked_recipients(data: &[u8], keyring: &Keyring) -> Vec<String> {
    let mut handles = Vec::new();
    let Ok(mut result) = PacketParser::from_bytes(data) else {
        return Vec::new();
    };
    while let PacketParserResult::Some(parser) = result {
        if let pgp::Packet::PKESK(pkesk) = &parser.packet
            && let Some(recipient) = pkesk.recipient()
        {
            handles.push(recipient);
        }
        result = match parser.next() {
            Ok((_, next)) => next,
            Err(_) => break,
        };
    }
    keyring.locked_for(&handles)
}

/// Returns the tags of the top-level packets, or `None` when the data is
/// not a readable packet sequence.
fn top_level_tags(data: &[u8]) -> Option<Vec<Tag>> {
    let mut tags = Vec::new();
    let mut result = PacketParser::from_bytes(data).ok()?;
    while let PacketParserResult::Some(parser) = result {
        tags.push(parser.packet.tag());
        // next() moves to the following packet at the same or a higher
        // level without descending into the (still encrypted) container.
        result = parser.next().ok()?.1;
    }
    Some(tags)
}

/// Verifies a detached signature over `content`. Returns one verdict per
/// signature packet, or a single bad verdict when none could be read.
pub(super) fn verify_detached(
    signature: &[u8],
    content: &[u8],
    keyring: &Keyring,
) -> Vec<CheckedSignature> {
    let policy = StandardPolicy::new();
    let helper = Helper::new(keyring, &policy);
    let verifier = DetachedVerifierBuilder::from_bytes(signature)
        .and_then(|builder| builder.with_policy(&policy, None, helper));
    let Ok(mut verifier) = verifier else {
        return vec![CheckedSignature::unreadable()];
    };

    let verified = verifier.verify_bytes(content);
    let signatures = verifier.into_helper().signatures;
    if verified.is_err() || signatures.is_empty() {
        return vec![CheckedSignature::unreadable()];
    }
    signatures
}

/// Verifies a signed message that is not encrypted, such as a cleartext
/// signed block (RFC 9580 section 7). Returns the signed text and the
/// verdicts, or `None` when the data is not a readable signed message.
pub(super) fn verify_inline(
    data: &[u8],
    keyring: &Keyring,
) -> Option<(Vec<u8>, Vec<CheckedSignature>)> {
    let policy = StandardPolicy::new();
    let helper = Helper::new(keyring, &policy);
    let mut verifier = VerifierBuilder::from_bytes(data)
        .and_then(|builder| builder.with_policy(&policy, None, helper))
        .ok()?;

    let mut text = Vec::new();
    (&mut verifier)
        .take(MAX_PLAINTEXT + 1)
        .read_to_end(&mut text)
        .ok()?;
    if text.len() as u64 > MAX_PLAINTEXT {
        return None;
    }
    let signatures = verifier.into_helper().signatures;
    Some((text, signatures))
}

/// Turns one sequoia verification result into a verdict.
fn judge(
    result: Result<GoodChecksum<'_>, VerificationError<'_>>,
    policy: &StandardPolicy<'_>,
) -> CheckedSignature {
    let mut checked = CheckedSignature::unreadable();
    let (signature, cert) = match &result {
        Ok(good) => (Some(good.sig), Some(good.ka.cert())),
        Err(VerificationError::MissingKey { sig }) => (Some(*sig), None),
        Err(VerificationError::UnboundKey { sig, cert, .. }) => (Some(*sig), Some(*cert)),
        Err(VerificationError::BadKey { sig, ka, .. })
        | Err(VerificationError::BadSignature { sig, ka, .. }) => (Some(*sig), Some(ka.cert())),
        Err(VerificationError::MalformedSignature { sig, .. }) => (Some(*sig), None),
        Err(_) => (None, None),
    };

    if let Some(signature) = signature {
        describe_signature(&mut checked, signature);
    }
    if let Some(cert) = cert {
        checked.addresses = cert_addresses(cert, policy);
        checked.fingerprint = Some(cert.fingerprint().to_hex());
    }

    checked.status = match result {
        Ok(_) => SignatureStatus::Good,
        Err(VerificationError::MissingKey { .. }) => SignatureStatus::UnknownKey,
        Err(VerificationError::UnboundKey { cert, .. }) => key_status(cert, policy),
        Err(VerificationError::BadKey { ka, .. }) => key_status(ka.cert(), policy),
        // The standard policy rejects weak algorithms, such as SHA-1 in a
        // data signature, before the signature value is checked.
        Err(VerificationError::BadSignature { error, .. }) if is_policy_violation(&error) => {
            SignatureStatus::UnsupportedAlgorithm
        }
        Err(_) => SignatureStatus::Bad,
    };
    checked
}

fn is_policy_violation(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<pgp::Error>(),
            Some(pgp::Error::PolicyViolation(..))
        )
    })
}

fn describe_signature(checked: &mut CheckedSignature, signature: &packet::Signature) {
    checked.digest_algorithm = Some(signature.hash_algo().to_string().to_ascii_lowercase());
    checked.signing_time = signature
        .signature_creation_time()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .and_then(|elapsed| i64::try_from(elapsed.as_secs()).ok());
}

/// Explains why a known key could not vouch for a signature whose bytes
/// may still match: revoked, expired, or otherwise unusable (bad).
fn key_status(cert: &Cert, policy: &StandardPolicy<'_>) -> SignatureStatus {
    if let RevocationStatus::Revoked(_) = cert.revocation_status(policy, None) {
        return SignatureStatus::Revoked;
    }
    let revoked_key = cert
        .keys()
        .with_policy(policy, None)
        .any(|key| matches!(key.revocation_status(), RevocationStatus::Revoked(_)));
    if revoked_key {
        return SignatureStatus::Revoked;
    }
    match cert.with_policy(policy, None) {
        Ok(valid) if valid.alive().is_err() => SignatureStatus::Expired,
        Ok(valid) if valid.keys().for_signing().alive().next().is_none() => {
            SignatureStatus::Expired
        }
        _ => SignatureStatus::Bad,
    }
}

/// Returns the e-mail addresses of the User IDs that are valid under the
/// policy now, or of all User IDs when the certificate is not valid.
fn cert_addresses(cert: &Cert, policy: &StandardPolicy<'_>) -> Vec<String> {
    let from_user_id =
        |user_id: &packet::UserID| user_id.email().ok().flatten().map(str::to_string);
    match cert.with_policy(policy, None) {
        Ok(valid) => valid
            .userids()
            .filter_map(|user_id| from_user_id(user_id.userid()))
            .collect(),
        Err(_) => cert
            .userids()
            .filter_map(|user_id| from_user_id(user_id.userid()))
            .collect(),
    }
}
