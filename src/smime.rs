//! S/MIME reading: private keys from PKCS#12 files, a certificate trust
//! store, and [`inspect`], which removes the encryption and checks the
//! signatures of one message and returns its [`ProtectionReport`].
//!
//! It follows RFC 8551 section 3: application/pkcs7-mime with smime-type
//! enveloped-data, authEnveloped-data or signed-data, and multipart/signed
//! with a detached application/pkcs7-signature, whose first part is
//! verified as its exact bytes in the CRLF canonical form of section 3.1.1.
//! CMS follows RFC 5652, AuthEnvelopedData RFC 5083, and the match of the
//! signer certificate to the From address RFC 8550 section 3.
//!
//! Layers nest up to [`MAX_DEPTH`] deep. An encrypted or signed entity is
//! only treated as a message-level layer when it is the whole message or
//! the whole content of another layer. One inside multipart/mixed is left
//! alone, so that unprotected text around it cannot borrow its protection.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use mail_parser::{Message, MessageParser, MimeHeaders};
use openssl::cms::CmsContentInfo;
use openssl::error::ErrorStack;

use crate::multipart::{split_multipart, to_crlf};
use openssl::nid::Nid;
use openssl::provider::Provider;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509PurposeId, X509Ref};

use crate::protection::{
    Encryption, Layer, Part, ProtectionReport, Refusal, Signature, SignatureMethod, SignatureScope,
    SignatureStatus, Warning, signer_matches_from,
};

mod certificates;
mod der;
mod identity;
mod signed_data;
mod verify;
pub mod write;

pub use certificates::{
    AES256_CBC, AES256_GCM, Capabilities, CertificateProblem, ChainWarning, RecipientCertificate,
    SignerCertificate, check_identity_chain, fingerprint, is_end_entity, read_certificates,
    recipient_problem,
};
pub use identity::Identity;

use verify::{CheckedSignature, check_chain, check_signature, subject_text};

/// The deepest nesting of S/MIME layers that [`inspect`] follows. This is
/// a choice of this client: ESS triple wrapping (sign, encrypt, sign; RFC
/// 2634) needs three layers, and the rest leaves room for forwarding.
pub const MAX_DEPTH: usize = 6;

/// The largest gap between the signed signingTime and the Date header, or
/// the clock, that still counts as consistent, in seconds. This is a
/// choice of this client that allows for slow submission and clock skew.
pub const SIGNING_TIME_TOLERANCE: i64 = 3600;

/// The commands that re-export a PKCS#12 file with algorithms that every
/// OpenSSL 3 build supports. KEY.pem holds the unencrypted private key, so
/// the hint ends by deleting it.
pub const PKCS12_REEXPORT_HINT: &str = "openssl pkcs12 -legacy -in OLD.p12 -nodes -out KEY.pem \
     && openssl pkcs12 -export -in KEY.pem -out NEW.p12 -keypbe AES-256-CBC \
     -certpbe AES-256-CBC -macalg sha256 && rm KEY.pem";

/// Errors of S/MIME key and certificate handling.
#[derive(Debug, thiserror::Error)]
pub enum SmimeError {
    /// The PKCS#12 MAC did not verify with the given password.
    #[error("cannot open PKCS#12 file: wrong password")]
    WrongPassword,
    /// The PKCS#12 file uses an algorithm that this OpenSSL cannot run.
    #[error(
        "cannot open PKCS#12 file: unsupported algorithm {algorithm}; \
         re-export it with `{PKCS12_REEXPORT_HINT}`"
    )]
    UnsupportedPkcs12Algorithm {
        /// The algorithm named by OpenSSL, or its error reason.
        algorithm: String,
    },
    /// The PKCS#12 file is not readable for another reason.
    #[error("cannot open PKCS#12 file: {reason}")]
    InvalidPkcs12 {
        /// The OpenSSL error reasons.
        reason: String,
    },
    /// The PKCS#12 file lacks the private key or its certificate.
    #[error("cannot open PKCS#12 file: it contains no private key with a certificate")]
    IncompleteIdentity,
    /// A certificate is neither valid PEM nor valid DER.
    #[error("cannot load certificate: {reason}")]
    InvalidCertificate {
        /// The OpenSSL error reasons.
        reason: String,
    },
    /// A certificate file holds only CA certificates.
    #[error(
        "cannot import certificates: the file contains no certificate that names an e-mail \
         address; trust CA certificates with `wardmail keys trust-ca FILE` instead"
    )]
    NoEndEntityCertificate,
    /// No certificate held for a correspondent can be used for encryption.
    #[error("cannot encrypt to {address}: {problem}")]
    NoUsableCertificate {
        /// The correspondent's address.
        address: String,
        /// The problem of the most recently seen certificate.
        problem: CertificateProblem,
    },
    /// No S/MIME identity of the account names its address or is valid now.
    #[error("cannot sign as {address}: {}", own_problem(*problem))]
    NoSigningIdentity {
        /// The account address.
        address: String,
        /// The problem of the most recent identity for the address.
        problem: CertificateProblem,
    },
    /// The entity to sign contains a byte outside 7-bit ASCII.
    #[error(
        "cannot sign: the MIME entity has an 8-bit byte at offset {offset}; encode its body \
         as quoted-printable or base64"
    )]
    EightBitContent {
        /// The offset of the first 8-bit byte.
        offset: usize,
    },
    /// The private key type cannot sign S/MIME here.
    #[error("cannot sign: {algorithm} keys are not supported; use an RSA or ECDSA certificate")]
    UnsupportedKey {
        /// The key type named by OpenSSL.
        algorithm: String,
    },
    /// OpenSSL failed while writing a signature or encryption.
    #[error("cannot write S/MIME: {operation} failed: {reason}")]
    Crypto {
        /// The step that failed.
        operation: &'static str,
        /// The OpenSSL error reasons.
        reason: String,
    },
}

/// Loads the legacy provider once for the whole process and keeps it
/// loaded. The default provider is loaded explicitly as well, because
/// loading any provider stops OpenSSL from loading the default one
/// implicitly.
fn load_providers() {
    static PROVIDERS: OnceLock<(Option<Provider>, Option<Provider>)> = OnceLock::new();
    PROVIDERS.get_or_init(|| {
        let default = Provider::try_load(None, "default", true).ok();
        // NOTE: without the legacy module installed, RC2-40 PKCS#12 files
        // fail with UnsupportedPkcs12Algorithm, whose text explains how to
        // re-export them.
        let legacy = Provider::try_load(None, "legacy", true).ok();
        (default, legacy)
    });
}

/// Returns the DER bytes of a DER or PEM-armored PKCS#12 file.
fn pkcs12_der(bytes: &[u8]) -> Result<Vec<u8>, SmimeError> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(bytes.to_vec());
    };
    let Some(start) = text.find("-----BEGIN PKCS12-----") else {
        return Ok(bytes.to_vec());
    };
    let body = &text[start + "-----BEGIN PKCS12-----".len()..];
    let end = body
        .find("-----END PKCS12-----")
        .ok_or_else(|| SmimeError::InvalidPkcs12 {
            reason: "the PEM armor has no END line".to_string(),
        })?;
    let base64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();

    openssl::base64::decode_block(&base64).map_err(|errors| SmimeError::InvalidPkcs12 {
        reason: format!("invalid base64 in PEM armor: {}", describe_errors(&errors)),
    })
}

/// Maps a PKCS#12 parse failure to an error by the OpenSSL reason strings.
///
/// OpenSSL 3 reports "mac verify failure" for a wrong password, but also
/// whenever it could not compute the MAC at all. So that reason only means
/// a wrong password when the stack shows no other cause, such as an
/// unsupported algorithm, "mac absent" or "mac generation error".
fn classify_pkcs12(errors: &ErrorStack) -> SmimeError {
    let has = |needle: &str| {
        errors
            .errors()
            .iter()
            .any(|error| error.reason().is_some_and(|reason| reason.contains(needle)))
    };

    let unsupported = errors.errors().iter().find(|error| {
        error.reason().is_some_and(|reason| {
            reason.contains("unsupported")
                || reason.contains("unknown digest")
                || reason.contains("unknown cipher")
        })
    });
    if let Some(error) = unsupported {
        let algorithm = error
            .data()
            .and_then(algorithm_from_error_data)
            .unwrap_or_else(|| error.reason().unwrap_or("unknown").to_string());
        return SmimeError::UnsupportedPkcs12Algorithm { algorithm };
    }
    if has("mac absent") {
        return SmimeError::InvalidPkcs12 {
            reason: "the file has no integrity MAC; re-export it with a MAC".to_string(),
        };
    }
    if has("mac verify failure") && !has("mac generation error") {
        return SmimeError::WrongPassword;
    }
    SmimeError::InvalidPkcs12 {
        reason: describe_errors(errors),
    }
}

/// Extracts "RC2-40-CBC" from OpenSSL 3 error data such as
/// "Global default library context, Algorithm (RC2-40-CBC : 0), ...".
fn algorithm_from_error_data(data: &str) -> Option<String> {
    let start = data.find("Algorithm (")? + "Algorithm (".len();
    let rest = &data[start..];
    let end = rest.find([':', ')'])?;
    Some(rest[..end].trim().to_string())
}

/// Joins the reason strings of an OpenSSL error stack.
fn describe_errors(errors: &ErrorStack) -> String {
    let reasons: Vec<&str> = errors
        .errors()
        .iter()
        .filter_map(|error| error.reason())
        .collect();
    if reasons.is_empty() {
        "unknown OpenSSL error".to_string()
    } else {
        reasons.join(", ")
    }
}

/// Trusted root certificates for signature verification.
///
/// NOTE: no CRLs or OCSP responses are loaded, so revocation is not
/// checked and a revoked signer still verifies as good. Adding CRLs to the
/// store with the CRL check flags would lift this.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    use_system_roots: bool,
    certificates: Vec<X509>,
}

impl TrustStore {
    /// Creates a store that trusts the roots in OpenSSL's default
    /// certificate file (the SSL_CERT_FILE variable, else the build's
    /// file), read once per process.
    pub fn with_system_roots() -> Self {
        Self {
            use_system_roots: true,
            certificates: Vec::new(),
        }
    }

    /// Creates a store that trusts only certificates added to it.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Returns the user-added certificates as DER, for saving.
    pub fn certificate_ders(&self) -> Vec<Vec<u8>> {
        self.certificates
            .iter()
            .filter_map(|certificate| certificate.to_der().ok())
            .collect()
    }

    /// Adds every certificate in `bytes`, which contains one or more PEM
    /// certificates or one DER certificate. Returns how many were added.
    pub fn add_certificates(&mut self, bytes: &[u8]) -> Result<usize, SmimeError> {
        let certificates = if bytes.windows(11).any(|window| window == b"-----BEGIN ") {
            X509::stack_from_pem(bytes)
        } else {
            X509::from_der(bytes).map(|certificate| vec![certificate])
        }
        .map_err(|errors| SmimeError::InvalidCertificate {
            reason: describe_errors(&errors),
        })?;

        if certificates.is_empty() {
            return Err(SmimeError::InvalidCertificate {
                reason: "no certificate found in PEM input".to_string(),
            });
        }
        let count = certificates.len();
        self.certificates.extend(certificates);
        Ok(count)
    }

    /// Builds an OpenSSL store that checks `purpose` and validity at `time`
    /// (seconds since the Unix epoch).
    fn build(&self, time: i64, purpose: X509PurposeId) -> Result<X509Store, ErrorStack> {
        let mut builder = X509StoreBuilder::new()?;
        if self.use_system_roots {
            for certificate in system_roots() {
                builder.add_cert(certificate.clone())?;
            }
        }
        for certificate in &self.certificates {
            builder.add_cert(certificate.clone())?;
        }

        let mut param = X509VerifyParam::new()?;
        param.set_purpose(purpose)?;
        param.set_time(time);
        builder.set_param(&param)?;
        Ok(builder.build())
    }
}

/// Returns the certificates at OpenSSL's default paths, read once per
/// process. Reading them for every signature took about 17 ms on a 2-core
/// AMD EPYC VM with Debian 12's 144 roots, far more than the rest of
/// reading a message.
///
/// NOTE: only the certificates in the default file (SSL_CERT_FILE) are
/// kept. A root that exists only as a hashed file in the default directory
/// (SSL_CERT_DIR) is not trusted, and a signature that chains to it shows
/// as untrusted. On Debian 12 the file and the directory list the same
/// 144 roots.
fn system_roots() -> &'static [X509] {
    static ROOTS: OnceLock<Vec<X509>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let load = || -> Result<Vec<X509>, ErrorStack> {
            let mut builder = X509StoreBuilder::new()?;
            builder.set_default_paths()?;
            Ok(builder.build().all_certificates().into_iter().collect())
        };
        load().unwrap_or_else(|errors| {
            tracing::warn!(
                error = %describe_errors(&errors),
                "cannot load the system root certificates; only added CAs are trusted"
            );
            Vec::new()
        })
    })
}

/// Returns the e-mail addresses that a certificate names: subjectAltName
/// rfc822Name entries and emailAddress attributes of the subject.
pub fn certificate_addresses(certificate: &X509Ref) -> Vec<String> {
    let mut addresses = Vec::new();
    if let Some(names) = certificate.subject_alt_names() {
        for name in &names {
            if let Some(email) = name.email() {
                addresses.push(email.to_string());
            }
        }
    }
    for entry in certificate
        .subject_name()
        .entries_by_nid(Nid::PKCS9_EMAILADDRESS)
    {
        if let Ok(email) = entry.data().to_string() {
            addresses.push(email);
        }
    }
    addresses
}

/// Reads one message and returns its protection verdict.
///
/// Each identity is tried for decryption. Signatures are checked against
/// `trust`. The report lists every signature outermost first and holds the
/// innermost MIME entity in `inner_mime` when a layer was removed.
pub fn inspect(raw: &[u8], identities: &[Identity], trust: &TrustStore) -> ProtectionReport {
    inspect_with_signers(raw, identities, trust).0
}

/// Reads one message like [`inspect`] and also returns the certificates
/// of its good and chain-incomplete signatures, outermost first, so that
/// the caller can keep them for encrypting to the signers.
pub fn inspect_with_signers(
    raw: &[u8],
    identities: &[Identity],
    trust: &TrustStore,
) -> (ProtectionReport, Vec<SignerCertificate>) {
    load_providers();
    let mut reader = Reader {
        identities,
        trust,
        from: None,
        date: None,
        now: unix_now(),
        report: ProtectionReport::unprotected(),
        signers: Vec::new(),
    };

    match MessageParser::default().parse(raw) {
        Some(message) => {
            reader.from = message
                .from()
                .and_then(|address| address.first())
                .and_then(|address| address.address())
                .map(str::to_string);
            reader.date = message.date().map(|date| date.to_timestamp());
            reader.read_message(&message, &mut Vec::new(), 0);
        }
        None => reader.report.refused = Some(Refusal::Malformed),
    }
    (reader.report, reader.signers)
}

/// Returns the current time in seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The state of one [`inspect`] call.
struct Reader<'a> {
    identities: &'a [Identity],
    trust: &'a TrustStore,
    from: Option<String>,
    date: Option<i64>,
    now: i64,
    report: ProtectionReport,
    signers: Vec<SignerCertificate>,
}

/// The kind of the root entity of a MIME message.
enum EntityKind {
    Cms,
    DetachedSigned { boundary: String },
    Other,
}

fn entity_kind(message: &Message<'_>) -> EntityKind {
    let Some(content_type) = message.root_part().content_type() else {
        return EntityKind::Other;
    };
    let main = content_type.ctype().to_ascii_lowercase();
    let sub = content_type.subtype().unwrap_or("").to_ascii_lowercase();

    if main == "application" && (sub == "pkcs7-mime" || sub == "x-pkcs7-mime") {
        return EntityKind::Cms;
    }
    if main == "multipart" && sub == "signed" {
        let protocol = content_type
            .attribute("protocol")
            .unwrap_or("")
            .to_ascii_lowercase();
        let boundary = content_type.attribute("boundary");
        let is_smime = protocol == "application/pkcs7-signature"
            || protocol == "application/x-pkcs7-signature";
        if let (true, Some(boundary)) = (is_smime, boundary) {
            return EntityKind::DetachedSigned {
                boundary: boundary.to_string(),
            };
        }
    }
    EntityKind::Other
}

impl Reader<'_> {
    /// Reads one MIME entity that is the whole message or the whole content
    /// of a layer. Returns whether an encrypted layer lies inside it.
    fn read_message(
        &mut self,
        message: &Message<'_>,
        layers: &mut Vec<Layer>,
        depth: usize,
    ) -> bool {
        let kind = entity_kind(message);
        if !matches!(kind, EntityKind::Other) && depth >= MAX_DEPTH {
            self.report.add_warning(Warning::NestingTooDeep);
            self.list_parts(message, layers);
            return false;
        }

        match kind {
            EntityKind::Cms => {
                let der = message.root_part().contents().to_vec();
                self.read_cms(&der, layers, depth)
            }
            EntityKind::DetachedSigned { boundary } => {
                self.read_detached(message, &boundary, layers, depth)
            }
            EntityKind::Other => {
                self.list_parts(message, layers);
                false
            }
        }
    }

    /// Parses an inner entity and reads it. The entity becomes the
    /// displayable inner MIME when no further layer is found in it.
    fn read_inner(&mut self, entity: &[u8], layers: &mut Vec<Layer>, depth: usize) -> bool {
        self.report.inner_mime = Some(entity.to_vec());
        match MessageParser::default().parse(entity) {
            Some(message) => self.read_message(&message, layers, depth + 1),
            None => {
                self.report.refused = Some(Refusal::Malformed);
                false
            }
        }
    }

    /// Reads application/pkcs7-mime by its CMS content type, which decides
    /// over the advisory smime-type parameter.
    fn read_cms(&mut self, der: &[u8], layers: &mut Vec<Layer>, depth: usize) -> bool {
        match der::content_type(der) {
            Some(der::ContentType::Enveloped) => self.read_enveloped(der, false, layers, depth),
            Some(der::ContentType::AuthEnveloped) => self.read_enveloped(der, true, layers, depth),
            Some(der::ContentType::Signed) => {
                let (signature, content) = self.verify(der, None);
                self.read_signed(signature, content, layers, depth)
            }
            _ => {
                self.report.refused = Some(Refusal::Malformed);
                false
            }
        }
    }

    fn read_enveloped(
        &mut self,
        der: &[u8],
        authenticated: bool,
        layers: &mut Vec<Layer>,
        depth: usize,
    ) -> bool {
        if self.report.encrypted == Encryption::None {
            self.report.encrypted = Encryption::Smime;
        }
        let plaintext = match decrypt(der, self.identities) {
            Ok(plaintext) => plaintext,
            Err(refusal) => {
                self.report.refused = Some(refusal);
                return true;
            }
        };

        self.report.decrypted = true;
        self.report.integrity_protected = authenticated;
        if !authenticated {
            self.report.add_warning(Warning::NoIntegrityProtection);
        }
        layers.push(Layer::SmimeEncrypted);
        self.read_inner(&plaintext, layers, depth);
        layers.pop();
        true
    }

    /// Records a signature, reads the content it covers, and then sets its
    /// scope from what was found inside.
    fn read_signed(
        &mut self,
        signature: Signature,
        content: Option<Vec<u8>>,
        layers: &mut Vec<Layer>,
        depth: usize,
    ) -> bool {
        let index = self.report.signatures.len();
        self.report.signatures.push(signature);
        let Some(content) = content else {
            return false;
        };

        layers.push(Layer::SmimeSigned);
        let encrypted_inside = self.read_inner(&content, layers, depth);
        layers.pop();

        if encrypted_inside {
            self.report.signatures[index].scope = SignatureScope::Ciphertext;
            self.report.add_warning(Warning::SignatureOutsideEncryption);
        }
        encrypted_inside
    }

    /// Reads multipart/signed: the first part is the signed content and the
    /// second holds the detached CMS signature.
    fn read_detached(
        &mut self,
        message: &Message<'_>,
        boundary: &str,
        layers: &mut Vec<Layer>,
        depth: usize,
    ) -> bool {
        let root = message.root_part();
        let raw = message.raw_message();
        let body_range = root.raw_body_offset() as usize..root.raw_end_offset() as usize;
        let parts = raw
            .get(body_range)
            .map(|body| split_multipart(body, boundary));
        let Some([content, signature_part, ..]) = parts.as_deref() else {
            self.report.refused = Some(Refusal::Malformed);
            return false;
        };

        let signature_der = MessageParser::default()
            .parse(*signature_part)
            .map(|part| part.root_part().contents().to_vec())
            .unwrap_or_default();
        let canonical = to_crlf(content);
        let (signature, _) = self.verify(&signature_der, Some(&canonical));
        self.read_signed(signature, Some(content.to_vec()), layers, depth)
    }

    /// Lists the displayable parts of an entity without protection layers of
    /// its own, and flags protected parts mixed with unprotected ones.
    fn list_parts(&mut self, message: &Message<'_>, layers: &[Layer]) {
        let mut protected_inside = false;
        let mut leaves = 0;
        for part in &message.parts {
            if part.is_multipart() {
                continue;
            }
            leaves += 1;
            let content_type = part
                .content_type()
                .map(|value| {
                    let sub = value.subtype().unwrap_or("");
                    format!("{}/{}", value.ctype(), sub).to_ascii_lowercase()
                })
                .unwrap_or_else(|| "text/plain".to_string());
            protected_inside |=
                content_type.contains("pkcs7-mime") || content_type.contains("pkcs7-signature");
            self.report.parts.push(Part {
                content_type,
                protection: layers.to_vec(),
            });
        }
        if protected_inside && leaves > 1 {
            self.report
                .add_warning(Warning::UnprotectedTextAroundProtectedPart);
        }
    }

    /// Verifies one CMS SignedData. `detached` is the canonical content of
    /// a multipart/signed. Returns the verdict and, for opaque signatures
    /// whose digest matched, the signed content.
    fn verify(&mut self, der: &[u8], detached: Option<&[u8]>) -> (Signature, Option<Vec<u8>>) {
        let mut signature = Signature {
            method: SignatureMethod::Smime,
            signer: "unknown".to_string(),
            status: SignatureStatus::Bad,
            signer_matches_from: false,
            scope: SignatureScope::Content,
            digest_algorithm: None,
            signing_time: None,
        };
        let Some(checked) = check_signature(der, detached) else {
            return (signature, None);
        };

        signature.digest_algorithm = checked.digest_algorithm.clone();
        signature.signing_time = checked.signing_time;
        if let Some(signer) = &checked.signer {
            let addresses = certificate_addresses(signer);
            signature.signer = addresses
                .first()
                .cloned()
                .unwrap_or_else(|| subject_text(signer));
            signature.signer_matches_from = self
                .from
                .as_deref()
                .is_some_and(|from| signer_matches_from(&addresses, from));
        }
        if checked.signer.is_some() && !signature.signer_matches_from {
            self.report.add_warning(Warning::SignerNotSender);
        }

        signature.status = self.judge(&checked);
        if matches!(
            signature.status,
            SignatureStatus::Good | SignatureStatus::ChainIncomplete
        ) && let Some(signer) = &checked.signer
        {
            self.signers.push(SignerCertificate {
                certificate: signer.clone(),
                chain: checked
                    .certificates
                    .iter()
                    .filter(|certificate| certificate.to_der().ok() != signer.to_der().ok())
                    .map(X509Ref::to_owned)
                    .collect(),
                capabilities: checked.capabilities.clone().map(Capabilities::new),
            });
        }
        (signature, checked.content)
    }

    /// Turns the checked facts of one signature into its status. A failed
    /// digest or signature is always "bad", whatever else holds.
    fn judge(&mut self, checked: &CheckedSignature) -> SignatureStatus {
        if let Some(status) = checked.crypto_failure {
            if checked.embedded_mismatch {
                self.report.add_warning(Warning::EmbeddedContentMismatch);
            }
            return status;
        }
        let Some(signer) = &checked.signer else {
            return SignatureStatus::UnknownKey;
        };

        let sha1 = checked.digest_algorithm.as_deref() == Some("sha1");
        if sha1 {
            self.report.add_warning(Warning::Sha1Signature);
        }
        let time_ok = self.signing_time_consistent(checked.signing_time);
        if !time_ok {
            self.report.add_warning(Warning::SigningTimeMismatch);
        }

        // Validity is checked at the signing time when that time is not in
        // the future, so mail signed before a certificate expired stays good.
        let at = checked
            .signing_time
            .filter(|time| *time <= self.now)
            .unwrap_or(self.now);
        let chain = check_chain(
            signer,
            &checked.certificates,
            self.trust,
            at,
            X509PurposeId::SMIME_SIGN,
        );
        if chain != SignatureStatus::Good {
            return chain;
        }
        if sha1 || checked.digest_algorithm.as_deref() == Some("md5") {
            // The digest matched, but a SHA-1 or MD5 digest can be forged by
            // a collision, so the signature is never reported as good.
            return SignatureStatus::UnsupportedAlgorithm;
        }
        if !time_ok {
            return SignatureStatus::Untrusted;
        }
        SignatureStatus::Good
    }

    /// Returns false when the signed signingTime lies in the future or far
    /// from the Date header, either of which means the header or the
    /// signature was not made with the message as shown.
    fn signing_time_consistent(&self, signing_time: Option<i64>) -> bool {
        let Some(signing_time) = signing_time else {
            return true;
        };
        if signing_time > self.now + SIGNING_TIME_TOLERANCE {
            return false;
        }
        self.date
            .is_none_or(|date| (date - signing_time).abs() <= SIGNING_TIME_TOLERANCE)
    }
}

/// Decrypts an EnvelopedData or AuthEnvelopedData with the identities that
/// its RecipientInfos name.
///
/// OpenSSL 3.0 leaves the error stack empty both when no recipient matches
/// and when the content fails to decrypt, so the recipient match is done
/// here, which tells "no key" from "damaged".
fn decrypt(der: &[u8], identities: &[Identity]) -> Result<Vec<u8>, Refusal> {
    let Ok(cms) = CmsContentInfo::from_der(der) else {
        return Err(Refusal::Malformed);
    };
    let recipients = cms
        .to_der()
        .map(|der| der::recipients(&der))
        .unwrap_or_default();

    let mut refusal = Refusal::NoKey;
    for identity in identities {
        // NOTE: when the RecipientInfos cannot be read, every identity is
        // tried and a failure is reported as "no key".
        let named = recipients
            .iter()
            .any(|recipient| recipient.names(&identity.certificate));
        if !recipients.is_empty() && !named {
            continue;
        }
        match cms.decrypt(&identity.key, &identity.certificate) {
            Ok(plaintext) => return Ok(plaintext),
            Err(errors) if has_reason(&errors, "unsupported") => {
                refusal = Refusal::UnsupportedAlgorithm;
            }
            Err(_) if named => refusal = Refusal::DecryptionFailed,
            Err(_) => {}
        }
    }
    Err(refusal)
}

fn has_reason(errors: &ErrorStack, needle: &str) -> bool {
    errors
        .errors()
        .iter()
        .any(|error| error.reason().is_some_and(|reason| reason.contains(needle)))
}

/// Describes a problem with the user's own S/MIME identity: a missing one
/// is imported as a .p12 file, not as a correspondent's certificate.
fn own_problem(problem: CertificateProblem) -> String {
    match problem {
        CertificateProblem::Missing => "you hold no S/MIME identity for this address; import \
             your certificate with its key (.p12 or .pfx) with `wardmail keys import-p12 FILE` \
             or on the Keys screen"
            .to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_time_parsing() {
        assert_eq!(der::parse_time(0x17, "700101000000Z"), Some(0));
        assert_eq!(der::parse_time(0x17, "260126144010Z"), Some(1_769_438_410));
        assert_eq!(
            der::parse_time(0x18, "20260126144010Z"),
            Some(1_769_438_410)
        );
        assert_eq!(der::parse_time(0x17, "2601261440Z"), None);
    }

    #[test]
    fn pkcs12_error_data_names_algorithm() {
        let data =
            "Global default library context, Algorithm (RC2-40-CBC : 0), Properties (<null>)";
        assert_eq!(
            algorithm_from_error_data(data).as_deref(),
            Some("RC2-40-CBC")
        );
        assert_eq!(algorithm_from_error_data("no algorithm here"), None);
    }

    #[test]
    fn pkcs12_error_texts() {
        let wrong = SmimeError::WrongPassword.to_string();
        assert_eq!(wrong, "cannot open PKCS#12 file: wrong password");

        let unsupported = SmimeError::UnsupportedPkcs12Algorithm {
            algorithm: "RC2-40-CBC".to_string(),
        };
        let text = unsupported.to_string();
        assert!(text.contains("RC2-40-CBC"), "{text}");
        assert!(text.contains("-keypbe AES-256-CBC"), "{text}");
        assert!(!text.contains("wrong password"), "{text}");
    }

    #[test]
    fn pem_armored_pkcs12_decodes() {
        let der = pkcs12_der(b"-----BEGIN PKCS12-----\nAAEC\n-----END PKCS12-----\n").unwrap();
        assert_eq!(der, vec![0, 1, 2]);
        assert_eq!(pkcs12_der(&[0x30, 0x01]).unwrap(), vec![0x30, 0x01]);
    }

    #[test]
    fn trust_store_system_roots_build() {
        let trust = TrustStore::with_system_roots();
        assert!(trust.build(0, X509PurposeId::SMIME_SIGN).is_ok());
    }

    #[test]
    fn system_roots_read_once() {
        let first = system_roots();
        assert!(std::ptr::eq(first, system_roots()));
    }

    #[test]
    fn trust_store_rejects_garbage() {
        let mut trust = TrustStore::empty();
        assert!(trust.add_certificates(b"not a certificate").is_err());
    }
}
