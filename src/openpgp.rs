//! OpenPGP for reading and sending. A [`Keyring`] contains certificates and
//! secret keys. [`inspect`] removes the encryption of one message, checks
//! its signatures and returns its [`ProtectionReport`]. For sending, the
//! module generates and manages keys ([`generate`], [`revoke`],
//! [`describe`]) and writes the encrypted or signed data of PGP/MIME
//! ([`encrypt`], [`sign_detached`]).
//!
//! It follows RFC 3156: multipart/encrypted with protocol
//! application/pgp-encrypted (section 4), multipart/signed with protocol
//! application/pgp-signature (section 5), whose first part is verified as
//! its exact bytes in CRLF canonical form, and signatures inside the
//! encrypted packet (section 6.2). Inline PGP in a text part, an armored
//! message or a cleartext signature (RFC 9580 section 7), is read as well.
//! Packet processing follows RFC 9580, and encrypted data without
//! integrity protection (no SEIPD or AEAD) is rejected, never shown.
//!
//! Layers nest up to [`MAX_DEPTH`] deep. An encrypted or signed entity is
//! only treated as a message-level layer when it is the whole message or
//! the whole content of another layer. One inside multipart/mixed is left
//! alone, so that unprotected text around it cannot borrow its protection.

use mail_parser::{HeaderName, Message, MessageParser, MessagePart, MimeHeaders};

use crate::protection::{
    Encryption, Layer, ProtectionReport, Refusal, Signature, SignatureMethod, SignatureScope,
    SignatureStatus, Warning, signer_matches_from,
};

mod inline;
mod keyring;
mod keys;
mod mime;
mod packets;
mod parts;
mod write;

pub use keyring::Keyring;
pub use keys::{
    KeyInfo, Suite, addresses, describe, export_public, generate, minimal_public, revoke,
    to_tsk_bytes,
};
pub use sequoia_openpgp::Fingerprint;
pub use write::{encrypt, sign_detached};

use crate::multipart::{split_multipart, to_crlf};
use mime::{ArmorKind, find_armor, strip_trailing_whitespace};
use packets::CheckedSignature;

/// The deepest nesting of OpenPGP layers that [`inspect`] follows. This is
/// a choice of this client: sign-then-encrypt as separate MIME layers
/// needs two, and the rest leaves room for forwarding and re-signing.
pub const MAX_DEPTH: usize = 6;

/// The largest gap between the signature creation time and the Date
/// header, or the clock, that still counts as consistent, in seconds. This
/// is a choice of this client that allows for slow submission and clock
/// skew, the same as for S/MIME.
pub const SIGNING_TIME_TOLERANCE: i64 = 3600;

/// Errors of OpenPGP key handling.
#[derive(Debug, thiserror::Error)]
pub enum OpenpgpError {
    /// The input is not a readable certificate or secret key.
    #[error("cannot import key: {reason}")]
    InvalidKey {
        /// The parser's description of the problem.
        reason: String,
    },
    /// No certificate in the keyring has a key with this fingerprint.
    #[error("cannot unlock key {fingerprint}: no such key in the keyring")]
    KeyNotFound {
        /// The fingerprint requested, in hex.
        fingerprint: String,
    },
    /// The certificate has no passphrase-protected secret key to unlock.
    #[error("cannot unlock key {fingerprint}: it has no passphrase-protected secret key")]
    NoLockedSecretKey {
        /// The fingerprint requested, in hex.
        fingerprint: String,
    },
    /// No protected secret key of the certificate accepted the passphrase.
    #[error("cannot unlock key {fingerprint}: wrong passphrase")]
    WrongPassphrase {
        /// The fingerprint requested, in hex.
        fingerprint: String,
    },
    /// The key to use has a passphrase and is not unlocked.
    #[error("key {fingerprint} is protected by a passphrase: unlock it first")]
    KeyLocked {
        /// The primary key fingerprint, in hex.
        fingerprint: String,
    },
    /// The certificate contains no secret key for the operation.
    #[error("key {fingerprint} has no secret key here: import the secret key (.asc) first")]
    NoSecretKey {
        /// The primary key fingerprint, in hex.
        fingerprint: String,
    },
    /// None of the user's own keys names the address.
    #[error(
        "no OpenPGP key of yours names {address}: generate one or import your secret key on \
         the Keys screen"
    )]
    NoOwnKey {
        /// The address to sign or decrypt as.
        address: String,
    },
    /// A certificate has no subkey that may encrypt now.
    #[error(
        "key {fingerprint} cannot encrypt: it has no valid encryption subkey (expired, \
         revoked or signing only); ask its owner for a current key"
    )]
    NoEncryptionKey {
        /// The primary key fingerprint, in hex.
        fingerprint: String,
    },
    /// An unknown algorithm name for key generation.
    #[error("unknown key algorithm {name:?}: use cv25519 (the default) or rsa4096")]
    UnknownSuite {
        /// The name given.
        name: String,
    },
    /// Writing OpenPGP data failed.
    #[error("cannot write OpenPGP data: {reason}")]
    Write {
        /// The library's description of the problem.
        reason: String,
    },
}

/// Reads one message and returns its protection verdict.
///
/// Every secret key in `keyring` that is usable now is tried against every
/// recipient of an encrypted layer. Signatures are checked against the
/// certificates in `keyring`. The report lists every signature outermost
/// first and contains the innermost MIME entity in `inner_mime` when a layer
/// was removed.
pub fn inspect(raw: &[u8], keyring: &Keyring) -> ProtectionReport {
    let mut reader = Reader {
        keyring,
        from: Vec::new(),
        date: None,
        now: unix_now(),
        report: ProtectionReport::unprotected(),
    };

    match MessageParser::default().parse(raw) {
        Some(message) => {
            reader.from = from_addresses(&message);
            reader.date = message.date().map(|date| date.to_timestamp());
            reader.read_message(&message, &mut Vec::new(), 0);
        }
        None => reader.report.refused = Some(Refusal::Malformed),
    }
    reader.report
}

/// Returns the addresses of every From header field. RFC 5322 allows one
/// field, but a second one must not let a signer speak for only one of
/// them, so all are collected.
fn from_addresses(message: &Message<'_>) -> Vec<String> {
    message
        .header_values(HeaderName::From)
        .filter_map(|value| value.as_address())
        .flat_map(|addresses| addresses.iter())
        .filter_map(|address| address.address())
        .map(str::to_string)
        .collect()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The state of one [`inspect`] call.
struct Reader<'a> {
    keyring: &'a Keyring,
    /// Every address in the From header.
    from: Vec<String>,
    date: Option<i64>,
    now: i64,
    report: ProtectionReport,
}

/// The kind of the root entity of a MIME message.
enum EntityKind {
    Encrypted {
        boundary: String,
    },
    Signed {
        boundary: String,
    },
    /// multipart/signed of another technology, such as S/MIME.
    ForeignSigned {
        boundary: String,
    },
    Other,
}

fn entity_kind(message: &Message<'_>) -> EntityKind {
    part_kind(message.root_part())
}

fn part_kind(part: &MessagePart<'_>) -> EntityKind {
    let Some(content_type) = part.content_type() else {
        return EntityKind::Other;
    };
    let main = content_type.ctype().to_ascii_lowercase();
    let sub = content_type.subtype().unwrap_or("").to_ascii_lowercase();
    let protocol = content_type
        .attribute("protocol")
        .unwrap_or("")
        .to_ascii_lowercase();
    let Some(boundary) = content_type.attribute("boundary") else {
        return EntityKind::Other;
    };
    let boundary = boundary.to_string();

    match (main.as_str(), sub.as_str(), protocol.as_str()) {
        ("multipart", "encrypted", "application/pgp-encrypted") => {
            EntityKind::Encrypted { boundary }
        }
        ("multipart", "signed", "application/pgp-signature") => EntityKind::Signed { boundary },
        ("multipart", "signed", _) => EntityKind::ForeignSigned { boundary },
        _ => EntityKind::Other,
    }
}

/// Returns the body parts of the root multipart entity as raw bytes.
fn raw_parts<'a>(message: &'a Message<'a>, boundary: &str) -> Vec<&'a [u8]> {
    let root = message.root_part();
    let range = root.raw_body_offset() as usize..root.raw_end_offset() as usize;
    message
        .raw_message()
        .get(range)
        .map(|body| split_multipart(body, boundary))
        .unwrap_or_default()
}

/// Returns the decoded body of a raw MIME part (headers plus body).
fn decoded_body(part: &[u8]) -> Vec<u8> {
    MessageParser::default()
        .parse(part)
        .map(|parsed| parsed.root_part().contents().to_vec())
        .unwrap_or_default()
}

impl Reader<'_> {
    /// Records why an encrypted layer was not opened. A missing key
    /// becomes "locked" when the user holds the key but must unlock it.
    fn refuse(&mut self, refusal: Refusal, data: &[u8]) {
        self.report.refused = Some(refusal);
        if refusal == Refusal::NoKey {
            let locked = packets::locked_recipients(data, self.keyring);
            if !locked.is_empty() {
                self.report.refused = Some(Refusal::KeyLocked);
                self.report.locked_keys = locked;
            }
        }
    }

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
            EntityKind::Encrypted { boundary } => {
                self.read_encrypted(message, &boundary, layers, depth);
                true
            }
            EntityKind::Signed { boundary } => self.read_signed(message, &boundary, layers, depth),
            EntityKind::ForeignSigned { boundary } => {
                self.read_foreign_signed(message, &boundary, layers, depth)
            }
            EntityKind::Other => self.list_parts(message, layers),
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

    /// Reads multipart/encrypted: the first part is the
    /// application/pgp-encrypted control part and the second contains the
    /// armored OpenPGP message (RFC 3156 section 4).
    fn read_encrypted(
        &mut self,
        message: &Message<'_>,
        boundary: &str,
        layers: &mut Vec<Layer>,
        depth: usize,
    ) {
        if self.report.encrypted == Encryption::None {
            self.report.encrypted = Encryption::Openpgp;
        }
        let parts = raw_parts(message, boundary);
        let Some(encrypted_part) = parts.get(1) else {
            self.report.refused = Some(Refusal::Malformed);
            return;
        };

        let ciphertext = decoded_body(encrypted_part);
        let opened = match packets::open(&ciphertext, self.keyring) {
            Ok(opened) => opened,
            Err(refusal) => {
                self.refuse(refusal, &ciphertext);
                return;
            }
        };

        self.report.decrypted = true;
        self.report.integrity_protected = true;
        let signed_inside = !opened.signatures.is_empty();
        for checked in opened.signatures {
            self.record_signature(checked);
        }

        let outer_layers = layers.len();
        layers.push(Layer::OpenpgpEncrypted);
        if signed_inside {
            layers.push(Layer::OpenpgpSigned);
        }
        self.read_inner(&opened.plaintext, layers, depth);
        layers.truncate(outer_layers);
    }

    /// Reads multipart/signed: the first part is the signed content and the
    /// second contains the detached OpenPGP signature (RFC 3156 section 5).
    /// Sets the scope of its signatures from what was found inside.
    fn read_signed(
        &mut self,
        message: &Message<'_>,
        boundary: &str,
        layers: &mut Vec<Layer>,
        depth: usize,
    ) -> bool {
        let parts = raw_parts(message, boundary);
        let [content, signature_part, ..] = parts.as_slice() else {
            // A multipart/signed whose signature part was stripped in
            // transit carries no signature, so its content is unsigned.
            return self.list_parts(message, layers);
        };

        let signature = decoded_body(signature_part);
        let checked = self.verify_detached(&signature, content);
        let own = self.report.signatures.len()..self.report.signatures.len() + checked.len();
        for checked in checked {
            self.record_signature(checked);
        }

        layers.push(Layer::OpenpgpSigned);
        let encrypted_inside = self.read_inner(content, layers, depth);
        layers.pop();

        if encrypted_inside {
            for signature in &mut self.report.signatures[own] {
                signature.scope = SignatureScope::Ciphertext;
            }
            self.report.add_warning(Warning::SignatureOutsideEncryption);
        }
        encrypted_inside
    }

    /// Reads the content of a multipart/signed of another technology as the
    /// whole content of a layer, without judging its signature.
    ///
    /// NOTE: the S/MIME signature itself is judged by `smime::inspect`, not
    /// here, so a caller must merge both reports to show it.
    fn read_foreign_signed(
        &mut self,
        message: &Message<'_>,
        boundary: &str,
        layers: &mut Vec<Layer>,
        depth: usize,
    ) -> bool {
        match raw_parts(message, boundary).first() {
            Some(content) => self.read_inner(content, layers, depth),
            None => self.list_parts(message, layers),
        }
    }

    /// Verifies a detached signature over the CRLF canonical form of
    /// `content`. When that fails and lines end in spaces or tabs, the
    /// signature is checked again over the lines without them. RFC 2440
    /// section 5.2.1 computed text signatures (type 0x01) without trailing
    /// blanks, and RFC 3156 section 5 warns that gateways change them.
    fn verify_detached(&self, signature: &[u8], content: &[u8]) -> Vec<CheckedSignature> {
        let canonical = to_crlf(content);
        let checked = packets::verify_detached(signature, &canonical, self.keyring);
        let all_bad = checked
            .iter()
            .all(|checked| checked.status == SignatureStatus::Bad);
        if !all_bad {
            return checked;
        }

        let stripped = strip_trailing_whitespace(&canonical);
        if stripped == canonical {
            return checked;
        }
        let retried = packets::verify_detached(signature, &stripped, self.keyring);
        if retried
            .iter()
            .any(|checked| checked.status != SignatureStatus::Bad)
        {
            retried
        } else {
            checked
        }
    }

    /// Adds one signature to the report with the sender and time checks.
    fn record_signature(&mut self, checked: CheckedSignature) {
        let matches = !self.from.is_empty()
            && self
                .from
                .iter()
                .all(|from| signer_matches_from(&checked.addresses, from));
        let known = checked.fingerprint.is_some();
        if known && !matches {
            self.report.add_warning(Warning::SignerNotSender);
        }

        let mut status = checked.status;
        if status == SignatureStatus::Good && !self.signing_time_consistent(checked.signing_time) {
            self.report.add_warning(Warning::SigningTimeMismatch);
            status = SignatureStatus::Untrusted;
        }
        if checked.digest_algorithm.as_deref() == Some("sha1") {
            self.report.add_warning(Warning::Sha1Signature);
        }

        let signer = checked
            .addresses
            .first()
            .cloned()
            .or(checked.fingerprint)
            .unwrap_or_else(|| "unknown".to_string());
        self.report.signatures.push(Signature {
            method: SignatureMethod::Openpgp,
            signer,
            status,
            signer_matches_from: matches,
            scope: SignatureScope::Content,
            digest_algorithm: checked.digest_algorithm,
            signing_time: checked.signing_time,
        });
    }

    /// Returns false when the signature creation time lies in the future or
    /// far from the Date header, either of which means the header or the
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

/// What [`Reader::read_inline`] found in a text part.
enum InlineResult {
    /// No armored block: the part is listed as it is.
    None,
    /// A signed block, whose parts were listed.
    Signed,
    /// An encrypted block, whose parts were listed.
    Encrypted,
}

#[cfg(test)]
mod tests;
