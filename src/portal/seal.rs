//! Sealing a message for the portal and opening it again.
//!
//! ```text
//! wrapped_key = AES-256-GCM(wrap_key, K, aad = "wardmail-portal-v1 key" || id)
//! envelope    = AES-256-GCM(K, plaintext, aad = "wardmail-portal-v1 message" || id)
//! ```
//!
//! Each sealed part is `nonce || ciphertext || tag` with a 12-byte random
//! nonce. The envelope's plaintext is the JSON of [`EnvelopeJson`].

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest;
use serde::{Deserialize, Serialize};

use super::factor::{DerivedKeys, derive_keys};
use super::reply::ReplyKeyPair;
use super::{
    Factor, FactorCode, FactorKind, Key32, MessageId, PortalError, VERSION, decode, encode,
    normalise, random_array, to_array,
};
use crate::secret::Secret;

const KEY_AAD: &[u8] = b"wardmail-portal-v1 key";
const MESSAGE_AAD: &[u8] = b"wardmail-portal-v1 message";

/// The message as the patient reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The sender, as a display name and address.
    pub from: String,
    /// The recipient's address.
    pub to: String,
    /// The subject.
    pub subject: String,
    /// The date, RFC 3339 in UTC (`2026-12-04T10:00:00Z`).
    pub date: String,
    /// The body as plain text.
    pub text: String,
    /// The attachments.
    pub attachments: Vec<Attachment>,
    /// How to reach the clinic, shown also when the link has expired.
    pub contact: String,
}

/// One attachment of an envelope or a reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The file name.
    pub name: String,
    /// The media type, such as `application/pdf`.
    #[serde(rename = "type")]
    pub media_type: String,
    /// The content.
    #[serde(with = "base64url")]
    pub data: Vec<u8>,
}

/// The envelope's plaintext JSON.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeJson {
    v: u32,
    from: String,
    to: String,
    subject: String,
    date: String,
    text: String,
    attachments: Vec<Attachment>,
    reply: ReplyAddress,
    contact: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyAddress {
    public_key: String,
    proof: String,
}

/// Per-message settings of an upload.
#[derive(Clone, Debug)]
pub struct SealOptions {
    /// The PBKDF2 iteration count N.
    pub iterations: u32,
    /// When the portal deletes the message, Unix seconds.
    pub expires_at: i64,
    /// Wrong verifiers before the message locks.
    pub max_attempts: u32,
}

/// The body of `POST /api/v1/messages`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    /// The message id, base64url.
    pub id: String,
    /// The factor's kind.
    pub factor: FactorKind,
    /// The PBKDF2 iteration count N.
    pub iterations: u32,
    /// `nonce || AES-256-GCM(wrap_key, K) || tag`, base64url.
    pub wrapped_key: String,
    /// SHA-256 of the verifier, base64url.
    pub verifier_hash: String,
    /// `nonce || AES-256-GCM(K, envelope JSON) || tag`, base64url.
    pub envelope: String,
    /// When the portal deletes the message, Unix seconds.
    pub expires_at: i64,
    /// Wrong verifiers before the message locks.
    pub max_attempts: u32,
    /// How to reach the clinic, shown on the page before unlocking.
    pub contact: String,
}

/// The body of `PUT /api/v1/messages/{id}/factor`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorUpdate {
    /// The new factor's kind.
    pub factor: FactorKind,
    /// The PBKDF2 iteration count N.
    pub iterations: u32,
    /// K wrapped under the new factor, base64url.
    pub wrapped_key: String,
    /// SHA-256 of the new verifier, base64url.
    pub verifier_hash: String,
}

/// A sealed message and the secrets the desktop keeps.
#[derive(Debug)]
pub struct Sealed {
    /// The message id.
    pub id: MessageId,
    /// The upload body.
    pub upload: Upload,
    /// The link secret S, which goes only into the link's fragment.
    pub link_secret: Key32,
    /// The generated code for the staff member, unless the factor is a
    /// passphrase.
    pub code: Option<FactorCode>,
    /// The X25519 private key that opens replies.
    pub reply_key: Key32,
    /// The reply proof R.
    pub proof: Key32,
    /// The content key K, kept to re-issue the factor without uploading again.
    pub content_key: Key32,
}

impl Sealed {
    /// Returns the link for the notice e-mail: `{public_url}/m/{id}#{S}`.
    pub fn link(&self, public_url: &str) -> String {
        format!(
            "{}/m/{}#{}",
            public_url.trim_end_matches('/'),
            self.id,
            self.link_secret.expose_text()
        )
    }
}

/// A re-issued factor: the request body and the code to read out.
#[derive(Debug)]
pub struct Reissued {
    /// The body of `PUT /api/v1/messages/{id}/factor`.
    pub body: FactorUpdate,
    /// The generated code, unless the factor is a passphrase.
    pub code: Option<FactorCode>,
}

/// The factor as the recipient typed it, with the iteration count from
/// `/meta`.
#[derive(Clone, Debug)]
pub struct EnteredFactor {
    /// The factor's kind.
    pub kind: FactorKind,
    /// The text as typed, before normalisation.
    pub text: Secret,
    /// The PBKDF2 iteration count N.
    pub iterations: u32,
}

/// An opened envelope with its reply address.
#[derive(Debug)]
pub struct OpenedEnvelope {
    /// The message.
    pub envelope: Envelope,
    /// The X25519 public key that replies are sealed to.
    pub reply_public_key: [u8; 32],
    /// The reply proof R.
    pub proof: Key32,
}

/// Seals an envelope: draws the id, K, S, R and the reply key pair, derives
/// the keys from the factor, and builds the upload body.
pub fn seal(
    envelope: &Envelope,
    factor: Factor,
    options: &SealOptions,
) -> Result<Sealed, PortalError> {
    let id = MessageId::generate()?;
    let content_key = Key32::generate()?;
    let link_secret = Key32::generate()?;
    let proof = Key32::generate()?;
    let reply = ReplyKeyPair::generate()?;

    let plaintext = EnvelopeJson {
        v: VERSION,
        from: envelope.from.clone(),
        to: envelope.to.clone(),
        subject: envelope.subject.clone(),
        date: envelope.date.clone(),
        text: envelope.text.clone(),
        attachments: envelope.attachments.clone(),
        reply: ReplyAddress {
            public_key: encode(&reply.public_key),
            proof: proof.expose_text(),
        },
        contact: envelope.contact.clone(),
    };
    // Serialising plain strings and byte vectors cannot fail.
    let plaintext = serde_json::to_vec(&plaintext).unwrap_or_default();
    let sealed_envelope = seal_part(&content_key, &message_aad(&id), &plaintext)?;

    let wrapped = wrap(&id, &link_secret, &content_key, factor, options.iterations)?;
    let upload = Upload {
        id: id.to_string(),
        factor: wrapped.body.factor,
        iterations: options.iterations,
        wrapped_key: wrapped.body.wrapped_key,
        verifier_hash: wrapped.body.verifier_hash,
        envelope: encode(&sealed_envelope),
        expires_at: options.expires_at,
        max_attempts: options.max_attempts,
        contact: envelope.contact.clone(),
    };
    Ok(Sealed {
        id,
        upload,
        link_secret,
        code: wrapped.code,
        reply_key: reply.private_key,
        proof,
        content_key,
    })
}

/// Wraps K under a new factor for `PUT /api/v1/messages/{id}/factor`.
pub fn reissue(
    id: &MessageId,
    link_secret: &Key32,
    content_key: &Key32,
    factor: Factor,
    iterations: u32,
) -> Result<Reissued, PortalError> {
    wrap(id, link_secret, content_key, factor, iterations)
}

fn wrap(
    id: &MessageId,
    link_secret: &Key32,
    content_key: &Key32,
    factor: Factor,
    iterations: u32,
) -> Result<Reissued, PortalError> {
    let kind = factor.kind();
    let (normalised, code) = match factor {
        Factor::Code | Factor::EmailCode => {
            let code = FactorCode::generate()?;
            (Secret::new(code.expose_digits()), Some(code))
        }
        Factor::Passphrase(passphrase) => (normalise(kind, passphrase.expose())?, None),
    };
    let DerivedKeys { wrap_key, verifier } = derive_keys(id, link_secret, &normalised, iterations)?;
    let wrapped_key = seal_part(&wrap_key, &key_aad(id), content_key.expose())?;
    let verifier_hash = digest::digest(&digest::SHA256, verifier.expose());
    Ok(Reissued {
        body: FactorUpdate {
            factor: kind,
            iterations,
            wrapped_key: encode(&wrapped_key),
            verifier_hash: encode(verifier_hash.as_ref()),
        },
        code,
    })
}

/// Opens an envelope as the recipient's browser does: derives the wrap key
/// from S and the factor, unwraps K and decrypts the envelope.
pub fn open_envelope(
    id: &MessageId,
    link_secret: &Key32,
    factor: &EnteredFactor,
    wrapped_key: &[u8],
    envelope: &[u8],
) -> Result<OpenedEnvelope, PortalError> {
    let normalised = normalise(factor.kind, factor.text.expose())?;
    let keys = derive_keys(id, link_secret, &normalised, factor.iterations)?;
    let content_key = open_part(&keys.wrap_key, &key_aad(id), wrapped_key)
        .ok_or_else(|| PortalError::WrongFactor { id: id.short() })?;
    let content_key = Key32(to_array("content key", &content_key)?);
    let plaintext = open_part(&content_key, &message_aad(id), envelope)
        .ok_or_else(|| PortalError::Envelope { id: id.short() })?;

    let json: EnvelopeJson =
        serde_json::from_slice(&plaintext).map_err(|error| json_error("envelope", id, &error))?;
    if json.v != VERSION {
        return Err(PortalError::Version {
            what: "envelope",
            id: id.short(),
            found: json.v,
        });
    }
    let reply_public_key = to_array(
        "reply public key",
        &decode("reply public key", &json.reply.public_key)?,
    )?;
    let proof = Key32::parse("reply proof", &json.reply.proof)?;
    Ok(OpenedEnvelope {
        envelope: Envelope {
            from: json.from,
            to: json.to,
            subject: json.subject,
            date: json.date,
            text: json.text,
            attachments: json.attachments,
            contact: json.contact,
        },
        reply_public_key,
        proof,
    })
}

/// Describes a JSON error by category and position only, because
/// serde_json's own message may quote decrypted text.
pub(super) fn json_error(
    what: &'static str,
    id: &MessageId,
    error: &serde_json::Error,
) -> PortalError {
    let category = match error.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "missing, unknown or mistyped field",
        serde_json::error::Category::Eof => "truncated",
    };
    PortalError::Json {
        what,
        id: id.short(),
        category,
        line: error.line(),
        column: error.column(),
    }
}

fn key_aad(id: &MessageId) -> Vec<u8> {
    [KEY_AAD, id.as_bytes()].concat()
}

fn message_aad(id: &MessageId) -> Vec<u8> {
    [MESSAGE_AAD, id.as_bytes()].concat()
}

/// Encrypts with AES-256-GCM under a fresh random nonce and returns
/// `nonce || ciphertext || tag`.
fn seal_part(key: &Key32, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, PortalError> {
    let nonce: [u8; NONCE_LEN] = random_array()?;
    let key = aes_key(key);
    let mut sealed = Vec::with_capacity(NONCE_LEN + plaintext.len() + AES_256_GCM.tag_len());
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(plaintext);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut sealed[NONCE_LEN..],
        )
        // ring refuses only plaintexts beyond GCM's limit of about 64 GiB.
        .map_err(|_| PortalError::TooLarge {
            bytes: plaintext.len(),
        })?;
    sealed.extend_from_slice(tag.as_ref());
    Ok(sealed)
}

/// Decrypts `nonce || ciphertext || tag`; `None` when it does not
/// authenticate.
fn open_part(key: &Key32, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buffer = ciphertext.to_vec();
    let plaintext = aes_key(key)
        .open_in_place(nonce, Aad::from(aad), &mut buffer)
        .ok()?;
    Some(plaintext.to_vec())
}

fn aes_key(key: &Key32) -> LessSafeKey {
    // A 32-byte key always fits AES-256-GCM, so `new` cannot fail; the
    // fallback exists only to avoid a panic path.
    let unbound = UnboundKey::new(&AES_256_GCM, key.expose())
        .unwrap_or_else(|_| unreachable!("AES-256-GCM takes a 32-byte key"));
    LessSafeKey::new(unbound)
}

/// Serde glue for byte fields written as base64url without padding.
mod base64url {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::decode("attachment data", &text)
            .map_err(|_| D::Error::custom("attachment data is not base64url without padding"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn envelope_aad_binds_id() {
        let key = Key32::generate().unwrap();
        let a = MessageId::generate().unwrap();
        let b = MessageId::generate().unwrap();
        let sealed = seal_part(&key, &message_aad(&a), b"{}").unwrap();

        assert_eq!(open_part(&key, &message_aad(&a), &sealed).unwrap(), b"{}");
        assert!(open_part(&key, &message_aad(&b), &sealed).is_none());
        assert!(open_part(&key, &key_aad(&a), &sealed).is_none());
    }

    #[test]
    fn wrapped_key_aad_binds_id() {
        let wrap_key = Key32::generate().unwrap();
        let content_key = Key32::generate().unwrap();
        let a = MessageId::generate().unwrap();
        let b = MessageId::generate().unwrap();
        let wrapped = seal_part(&wrap_key, &key_aad(&a), content_key.expose()).unwrap();

        let unwrapped = open_part(&wrap_key, &key_aad(&a), &wrapped).unwrap();
        assert_eq!(unwrapped, content_key.expose());
        assert!(open_part(&wrap_key, &key_aad(&b), &wrapped).is_none());
        assert!(open_part(&wrap_key, &message_aad(&a), &wrapped).is_none());
    }

    #[test]
    fn sealed_part_layout() {
        let key = Key32::generate().unwrap();
        let first = seal_part(&key, b"aad", b"abc").unwrap();
        let second = seal_part(&key, b"aad", b"abc").unwrap();
        assert_eq!(first.len(), NONCE_LEN + 3 + 16);
        assert_ne!(first[..NONCE_LEN], second[..NONCE_LEN], "nonces repeat");
    }
}
