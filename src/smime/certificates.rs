//! Correspondents' certificates and the SMIMECapabilities that their signed
//! mail advertises (RFC 8551 section 2.5.2). Also reads .cer/.pem/.der/.p7b
//! files, and checks whether a certificate may be used to encrypt to its
//! owner or to sign with the user's own identity (RFC 8550 section 4).

use openssl::pkcs7::Pkcs7;
use openssl::stack::Stack;
use openssl::x509::{X509, X509KeyUsage, X509PurposeId, X509Ref};

use super::verify::{chain_error, verify_code};
use super::{Identity, SmimeError, TrustStore, certificate_addresses, describe_errors};

/// The OID of AES-256-GCM (RFC 5084), which selects AuthEnvelopedData.
pub const AES256_GCM: &str = "2.16.840.1.101.3.4.1.46";
/// The OID of AES-256-CBC (RFC 3565).
pub const AES256_CBC: &str = "2.16.840.1.101.3.4.1.42";

/// The content encryption algorithms that a correspondent advertised in the
/// SMIMECapabilities attribute of signed mail, as dotted OIDs in the
/// correspondent's order of preference.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    oids: Vec<String>,
}

impl Capabilities {
    /// Creates capabilities from dotted OIDs.
    pub fn new(oids: Vec<String>) -> Self {
        Self { oids }
    }

    /// Parses the space-separated form that [`Capabilities::to_text`]
    /// writes.
    pub fn from_text(text: &str) -> Self {
        Self::new(text.split_whitespace().map(str::to_string).collect())
    }

    /// Returns the dotted OIDs separated by spaces, for the store.
    pub fn to_text(&self) -> String {
        self.oids.join(" ")
    }

    /// Returns the dotted OIDs.
    pub fn oids(&self) -> &[String] {
        &self.oids
    }

    /// Returns whether AES-256-GCM is listed.
    pub fn supports_aes256_gcm(&self) -> bool {
        self.oids.iter().any(|oid| oid == AES256_GCM)
    }
}

/// The certificate of a good or chain-incomplete signature, kept so that
/// mail can later be encrypted to the signer.
#[derive(Clone, Debug)]
pub struct SignerCertificate {
    /// The signer certificate.
    pub certificate: X509,
    /// The other certificates that the signature carried.
    pub chain: Vec<X509>,
    /// The SMIMECapabilities of the signature, None when it had none.
    pub capabilities: Option<Capabilities>,
}

/// A correspondent's certificate chosen for encryption, with what is known
/// about the algorithms their client reads.
#[derive(Clone, Debug)]
pub struct RecipientCertificate {
    /// The recipient certificate.
    pub certificate: X509,
    /// The capabilities last seen in the correspondent's signed mail, None
    /// when none were seen (an imported certificate, or mail without the
    /// attribute).
    pub capabilities: Option<Capabilities>,
}

/// The reason a certificate cannot be used for S/MIME.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertificateProblem {
    /// No certificate is held for the address.
    Missing,
    /// The certificate, or one in its chain, is expired or not yet valid.
    Expired,
    /// The chain does not reach a trusted root: an issuer is missing.
    ChainIncomplete,
    /// The certificate lacks the emailProtection extended key usage or the
    /// key usage that the operation needs.
    WrongPurpose,
    /// The chain ends in a root that is not trusted, or fails another check.
    Untrusted,
}

impl CertificateProblem {
    /// Returns a stable identifier for programs and logs.
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "no-certificate",
            Self::Expired => "certificate-expired",
            Self::ChainIncomplete => "chain-incomplete",
            Self::WrongPurpose => "wrong-purpose",
            Self::Untrusted => "untrusted-root",
        }
    }
}

impl std::fmt::Display for CertificateProblem {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Self::Missing => {
                "no certificate is held; import it with `wardmail keys import-cert FILE` \
                 or ask the correspondent for a signed message"
            }
            Self::Expired => "the certificate or one in its chain is expired or not yet valid",
            Self::ChainIncomplete => {
                "the certificate's issuer is unknown; trust the issuing CA with \
                 `wardmail keys trust-ca FILE`"
            }
            Self::WrongPurpose => "the certificate is not issued for e-mail protection",
            Self::Untrusted => {
                "the certificate chain ends in a CA that is not trusted; trust it with \
                 `wardmail keys trust-ca FILE` if the clinic vouches for it"
            }
        })
    }
}

/// A warning about the user's own identity: recipients may not be able to
/// verify its signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainWarning {
    /// The problem that the chain check found.
    pub problem: CertificateProblem,
}

impl ChainWarning {
    /// Returns a stable identifier for programs, such as
    /// "identity-chain-incomplete".
    pub fn code(self) -> String {
        format!("identity-{}", self.problem.code())
    }
}

impl std::fmt::Display for ChainWarning {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.problem {
            CertificateProblem::ChainIncomplete => formatter.write_str(
                "the PKCS#12 file lacks the intermediate CA certificates, so recipients may \
                 not be able to verify your signatures; re-export it with the whole chain \
                 (`openssl pkcs12 -export -chain`) or import the intermediate with \
                 `wardmail keys trust-ca FILE`",
            ),
            problem => write!(
                formatter,
                "recipients may not be able to verify your signatures: {problem}"
            ),
        }
    }
}

/// Returns the SHA-256 fingerprint of a certificate, as upper-case hex
/// pairs separated by colons.
pub fn fingerprint(certificate: &X509Ref) -> String {
    certificate
        .digest(openssl::hash::MessageDigest::sha256())
        .map(|digest| {
            digest
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":")
        })
        .unwrap_or_default()
}

/// Reads certificates from PEM (one or more CERTIFICATE or PKCS7 blocks),
/// a DER certificate (.cer/.der), or a DER PKCS#7 certs-only file (.p7b).
pub fn read_certificates(bytes: &[u8]) -> Result<Vec<X509>, SmimeError> {
    let invalid = |errors: openssl::error::ErrorStack| SmimeError::InvalidCertificate {
        reason: describe_errors(&errors),
    };
    let certificates = if contains(bytes, b"-----BEGIN PKCS7-----") {
        pkcs7_certificates(&Pkcs7::from_pem(bytes).map_err(invalid)?)
    } else if contains(bytes, b"-----BEGIN ") {
        X509::stack_from_pem(bytes).map_err(invalid)?
    } else {
        match X509::from_der(bytes) {
            Ok(certificate) => vec![certificate],
            Err(certificate_errors) => match Pkcs7::from_der(bytes) {
                Ok(pkcs7) => pkcs7_certificates(&pkcs7),
                Err(_) => return Err(invalid(certificate_errors)),
            },
        }
    };
    if certificates.is_empty() {
        return Err(SmimeError::InvalidCertificate {
            reason: "the file contains no certificate".to_string(),
        });
    }
    Ok(certificates)
}

fn contains(bytes: &[u8], needle: &[u8]) -> bool {
    bytes.windows(needle.len()).any(|window| window == needle)
}

fn pkcs7_certificates(pkcs7: &Pkcs7) -> Vec<X509> {
    pkcs7
        .signed()
        .and_then(|signed| signed.certificates())
        .map(|stack| stack.iter().map(X509Ref::to_owned).collect())
        .unwrap_or_default()
}

/// Returns whether a certificate belongs to a person rather than a CA: it
/// names an e-mail address and its key usage, when present, does not allow
/// signing certificates.
pub fn is_end_entity(certificate: &X509Ref) -> bool {
    let ca = certificate
        .key_usage()
        .is_some_and(|usage| usage.contains(X509KeyUsage::KEY_CERT_SIGN));
    !ca && !certificate_addresses(certificate).is_empty()
}

/// Checks a correspondent's certificate for encryption at `now`. OpenSSL's
/// S/MIME encryption purpose requires emailProtection or no extended key
/// usage, and key encipherment when key usage is present. The validity
/// dates of the whole chain are checked, and the chain must reach a trusted
/// root through `chain`.
///
/// A chain whose issuer is missing is accepted only when `imported` is
/// set, because the user chose that certificate file. A harvested one is
/// not, because anyone can send a signed message whose certificate names
/// someone else's address under an unknown issuer.
pub fn recipient_problem(
    certificate: &X509Ref,
    chain: &[X509],
    trust: &TrustStore,
    now: i64,
    imported: bool,
) -> Option<CertificateProblem> {
    let problem = chain_problem(certificate, chain, trust, now, X509PurposeId::SMIME_ENCRYPT);
    match problem {
        Some(CertificateProblem::ChainIncomplete) if imported => None,
        problem => problem,
    }
}

/// Checks the user's own identity for signing at `now`, with the chain
/// certificates it holds. Returns a warning when a recipient that trusts
/// the same roots could not verify its signatures.
pub fn check_identity_chain(
    identity: &Identity,
    trust: &TrustStore,
    now: i64,
) -> Option<ChainWarning> {
    chain_problem(
        identity.certificate(),
        identity.chain(),
        trust,
        now,
        X509PurposeId::SMIME_SIGN,
    )
    .map(|problem| ChainWarning { problem })
}

fn chain_problem(
    certificate: &X509Ref,
    chain: &[X509],
    trust: &TrustStore,
    now: i64,
    purpose: X509PurposeId,
) -> Option<CertificateProblem> {
    let mut stack = Stack::new().ok()?;
    for certificate in chain {
        stack.push(certificate.clone()).ok()?;
    }
    match chain_error(certificate, &stack, trust, now, purpose) {
        Some(verify_code::OK) => None,
        Some(
            verify_code::UNABLE_TO_GET_ISSUER_CERT
            | verify_code::UNABLE_TO_GET_ISSUER_CERT_LOCALLY
            | verify_code::UNABLE_TO_VERIFY_LEAF_SIGNATURE,
        ) => Some(CertificateProblem::ChainIncomplete),
        Some(verify_code::CERT_NOT_YET_VALID | verify_code::CERT_HAS_EXPIRED) => {
            Some(CertificateProblem::Expired)
        }
        Some(verify_code::INVALID_PURPOSE) => Some(CertificateProblem::WrongPurpose),
        _ => Some(CertificateProblem::Untrusted),
    }
}
