//! The desktop's side of the secure portal's scheme (docs/portal-scheme.md):
//! sealing a message for upload, re-issuing its second factor, opening the
//! envelope as the recipient's browser does, opening replies, and signing
//! device requests.
//!
//! - `factor`: the second factor, its normalisation and the key derivation
//!   (PBKDF2-HMAC-SHA256, RFC 8018 section 5.2, then HKDF-SHA256, RFC 5869).
//! - `seal`: the per-message values, the wrapped key and the envelope
//!   (AES-256-GCM), and the upload and re-issue bodies.
//! - `reply`: opening replies sealed with HPKE (RFC 9180) base mode,
//!   DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and AES-256-GCM.
//! - `device`: the device's Ed25519 key and HTTP Message Signatures
//!   (RFC 9421) with `Content-Digest` (RFC 9530).
//!
//! The link secret, the content key, the reply proof, the reply private key
//! and the factor are secrets: their types print a placeholder in `Debug`,
//! and no error message contains them. Errors name a message by the first 8
//! characters of its id, as the portal's logs do.

mod client;
mod device;
mod factor;
mod reply;
mod seal;
#[cfg(test)]
mod tests;

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::{SecureRandom, SystemRandom};

pub use client::{ClientError, Device, Event, PortalClient, PortalUrl, SealedReply};
pub use device::{DeviceKey, SignedHeaders, content_digest, signature_base};
pub use factor::{DEFAULT_ITERATIONS, Factor, FactorCode, FactorKind, normalise};
pub use reply::{Reply, open_reply};
pub use seal::{
    Attachment, EnteredFactor, Envelope, FactorUpdate, OpenedEnvelope, Reissued, SealOptions,
    Sealed, Upload, open_envelope, reissue, seal,
};

/// The scheme's version, written as `v` in envelopes and replies.
pub const VERSION: u32 = 1;

/// Errors of the portal scheme. None carries a secret or message content.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// The operating system's random source failed.
    #[error("cannot draw random bytes: the operating system's random source failed; retry")]
    Random,
    /// The plaintext exceeds AES-GCM's limit.
    #[error("cannot seal {bytes} bytes: AES-GCM takes at most 64 GiB; send fewer attachments")]
    TooLarge {
        /// The plaintext's length.
        bytes: usize,
    },
    /// The factor has nothing left after normalisation.
    #[error(
        "cannot use the {kind} factor: it is empty after normalisation; enter the {kind} again"
    )]
    EmptyFactor {
        /// The factor's kind.
        kind: FactorKind,
    },
    /// The PBKDF2 iteration count is zero.
    #[error("invalid PBKDF2 iteration count 0: use at least 1 (the default is 600000)")]
    ZeroIterations,
    /// A binary value is not base64url without padding.
    #[error("cannot decode {field}: it is not base64url without padding (RFC 4648 section 5)")]
    Base64 {
        /// The field that held the value.
        field: &'static str,
    },
    /// A binary value has the wrong length.
    #[error("invalid {field}: expected {expected} bytes, found {actual}")]
    Length {
        /// The field that held the value.
        field: &'static str,
        /// The length the scheme fixes.
        expected: usize,
        /// The length found.
        actual: usize,
    },
    /// The wrapped key does not open with the derived wrap key.
    #[error(
        "cannot unwrap the content key of message {id}: the code or passphrase is wrong, \
         the link secret belongs to another message, or the wrapped key was changed; \
         check the code and the link"
    )]
    WrongFactor {
        /// The first 8 characters of the message id.
        id: String,
    },
    /// The envelope does not open with the content key.
    #[error(
        "cannot decrypt the envelope of message {id}: it was changed or belongs to another \
         message; upload the message again"
    )]
    Envelope {
        /// The first 8 characters of the message id.
        id: String,
    },
    /// A decrypted plaintext is not the JSON the scheme fixes.
    #[error(
        "invalid {what} of message {id}: its JSON does not match the scheme at line {line}, \
         column {column} ({category}); the sender's software is not compatible"
    )]
    Json {
        /// "envelope" or "reply".
        what: &'static str,
        /// The first 8 characters of the message id.
        id: String,
        /// serde_json's error category, without the offending text.
        category: &'static str,
        /// The line of the error.
        line: usize,
        /// The column of the error.
        column: usize,
    },
    /// A plaintext has a version this build does not read.
    #[error("unsupported {what} version {found} in message {id}: this build reads version 1")]
    Version {
        /// "envelope" or "reply".
        what: &'static str,
        /// The first 8 characters of the message id.
        id: String,
        /// The version found.
        found: u32,
    },
    /// The reply's encapsulated key is not a valid X25519 public key.
    #[error(
        "cannot open the reply to message {id}: its encapsulated key is not a valid X25519 \
         public key; discard the reply"
    )]
    ReplyKey {
        /// The first 8 characters of the message id.
        id: String,
    },
    /// The reply's ciphertext does not open with the reply private key.
    #[error(
        "cannot open the reply to message {id}: decryption failed, so the ciphertext was \
         changed or sealed to another message's reply key; discard the reply"
    )]
    ReplyCiphertext {
        /// The first 8 characters of the message id.
        id: String,
    },
    /// The reply's proof is not the message's R.
    #[error(
        "rejected the reply to message {id}: its proof does not match the message's, so it \
         was not written by someone who opened the envelope; discard the reply"
    )]
    WrongProof {
        /// The first 8 characters of the message id.
        id: String,
    },
    /// The keyring entry does not hold an Ed25519 PKCS#8 key.
    #[error(
        "cannot load the portal device key: it is not an Ed25519 PKCS#8 v2 key ({reason}); \
         enrol this device with the portal again"
    )]
    DeviceKey {
        /// ring's description of the rejection.
        reason: String,
    },
    /// A signature parameter contains characters a structured-field string cannot hold.
    #[error(
        "invalid signature parameter {field}: use printable ASCII without '\"' or '\\' \
         (RFC 8941 section 3.3.3)"
    )]
    SignatureParameter {
        /// "keyid" or "nonce".
        field: &'static str,
    },
}

/// Encodes bytes as base64url without padding, the scheme's text form.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; `field` names the value in the error.
pub fn decode(field: &'static str, text: &str) -> Result<Vec<u8>, PortalError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| PortalError::Base64 { field })
}

/// Decodes a base64url value that must have exactly `N` bytes.
pub fn decode_array<const N: usize>(
    field: &'static str,
    text: &str,
) -> Result<[u8; N], PortalError> {
    let bytes = decode(field, text)?;
    to_array(field, &bytes)
}

fn to_array<const N: usize>(field: &'static str, bytes: &[u8]) -> Result<[u8; N], PortalError> {
    bytes.try_into().map_err(|_| PortalError::Length {
        field,
        expected: N,
        actual: bytes.len(),
    })
}

/// Standard base64 with padding, which structured fields (RFC 8941 section
/// 3.3.5) use for byte sequences.
fn encode_standard(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn random_array<const N: usize>() -> Result<[u8; N], PortalError> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PortalError::Random)?;
    Ok(bytes)
}

/// A message id: 16 random bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageId([u8; 16]);

impl MessageId {
    /// Draws a new id from the system's random source.
    pub fn generate() -> Result<MessageId, PortalError> {
        random_array().map(MessageId)
    }

    /// Wraps the 16 bytes of an id.
    pub fn from_bytes(bytes: [u8; 16]) -> MessageId {
        MessageId(bytes)
    }

    /// Parses the base64url text form, as in the link's path.
    pub fn parse(text: &str) -> Result<MessageId, PortalError> {
        decode_array("message id", text).map(MessageId)
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The first 8 characters of the text form, which logs and errors use.
    pub fn short(&self) -> String {
        let mut text = self.to_string();
        text.truncate(8);
        text
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode(&self.0))
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({self})")
    }
}

/// 32 secret bytes whose `Debug` output never shows them: the link secret
/// S, the content key K, the reply proof R and the reply private key.
#[derive(Clone, PartialEq, Eq)]
pub struct Key32([u8; 32]);

impl Key32 {
    /// Draws 32 bytes from the system's random source.
    pub fn generate() -> Result<Key32, PortalError> {
        random_array().map(Key32)
    }

    /// Wraps 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Key32 {
        Key32(bytes)
    }

    /// Parses the base64url text form; `field` names the value in the error.
    pub fn parse(field: &'static str, text: &str) -> Result<Key32, PortalError> {
        decode_array(field, text).map(Key32)
    }

    /// Returns the bytes, for handing to a cipher or the keyring.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Returns the base64url text form, for the link fragment or the keyring.
    pub fn expose_text(&self) -> String {
        encode(&self.0)
    }
}

impl fmt::Debug for Key32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key32(<redacted>)")
    }
}

/// Compares two byte strings without an early exit on the first difference.
fn equal_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}
