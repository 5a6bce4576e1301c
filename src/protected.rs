//! Writing a protected message. The draft's content becomes the
//! cryptographic payload, with its header fields protected (RFC 9788). A
//! [`Sealer`] signs or encrypts it (PGP/MIME per RFC 3156, or S/MIME per
//! RFC 8551), and the outer header section is added around the result.
//!
//! Header protection follows RFC 9788 section 4: the payload's root part
//! carries copies of From, To, Cc, Subject, Date, Message-ID, In-Reply-To
//! and References, and an `hp` parameter on its Content-Type: "cipher" when
//! encrypted, "clear" when only signed. When encrypted, the outer Subject is
//! replaced with "[...]" and the payload records every outer field in an
//! HP-Outer field, so a reader can tell what the transport saw. No legacy
//! display element is written, because the readers this client targets
//! show the protected Subject.

use thiserror::Error;

use crate::compose::{ComposeError, Draft};

/// The Subject written on the outside of an encrypted message (RFC 9788
/// section 4.3.4, the recommended obscured value).
pub const OBSCURED_SUBJECT: &str = "[...]";

/// The header fields copied into the payload and, for encrypted messages,
/// recorded as HP-Outer.
const PROTECTED_FIELDS: [&str; 8] = [
    "from",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
];

/// The protection requested for a message: signing, encryption or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protection {
    /// Sign the payload.
    pub sign: bool,
    /// Encrypt the payload.
    pub encrypt: bool,
}

/// Signs or encrypts a MIME entity for one technology.
///
/// Both methods take and return a MIME entity in CRLF form: its
/// Content-* header fields, a blank line and its body.
pub trait Sealer {
    /// Wraps `entity` as `protection` requests: signed, encrypted, or both
    /// (signed inside the encryption).
    fn seal(&mut self, entity: &[u8], protection: Protection) -> Result<Vec<u8>, SealError>;
}

/// Errors while writing a protected message.
#[derive(Debug, Error)]
pub enum SealError {
    /// The draft itself cannot be written.
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// Neither signing nor encryption was requested.
    #[error("nothing to protect: choose Sign, Encrypt or both")]
    NothingToDo,
    /// The cryptographic layer failed.
    #[error("{0}")]
    Crypto(String),
}

/// Writes `draft` protected by `sealer`, for SMTP submission with CRLF
/// line ends. `outer_extra` contains complete header fields (with their CRLF)
/// to add to the outer header section, such as an Autocrypt field.
pub fn write(
    draft: &Draft,
    message_id: &str,
    date_unix: i64,
    protection: Protection,
    sealer: &mut dyn Sealer,
    outer_extra: &[String],
) -> Result<Vec<u8>, SealError> {
    if !protection.sign && !protection.encrypt {
        return Err(SealError::NothingToDo);
    }
    let plain = draft.to_mime(message_id, date_unix)?;
    let (header, body) = split_message(&plain);
    let fields = header_fields(header);

    let payload = payload(&fields, body, protection.encrypt);
    let sealed = sealer.seal(&payload, protection)?;

    let mut message = Vec::with_capacity(sealed.len() + header.len());
    for field in fields.iter().filter(|f| is_protected(f)) {
        if protection.encrypt && field.name.eq_ignore_ascii_case("subject") {
            message.extend_from_slice(format!("Subject: {OBSCURED_SUBJECT}\r\n").as_bytes());
        } else {
            message.extend_from_slice(field.raw);
        }
    }
    for extra in outer_extra {
        message.extend_from_slice(extra.as_bytes());
    }
    message.extend_from_slice(b"MIME-Version: 1.0\r\n");
    message.extend_from_slice(&sealed);
    Ok(message)
}

/// Builds the cryptographic payload: the draft's Content-* fields with the
/// `hp` parameter, copies of the protected fields, HP-Outer records when
/// encrypting, and the body.
fn payload(fields: &[Field<'_>], body: &[u8], encrypt: bool) -> Vec<u8> {
    let mut payload = Vec::with_capacity(body.len() + 1024);
    let mode = if encrypt { "cipher" } else { "clear" };
    for field in fields {
        if field.name.eq_ignore_ascii_case("content-type") {
            payload.extend_from_slice(&with_parameter(field.raw, &format!("hp=\"{mode}\"")));
        } else if field.name.to_ascii_lowercase().starts_with("content-") || is_protected(field) {
            payload.extend_from_slice(field.raw);
        }
    }
    if encrypt {
        for field in fields.iter().filter(|f| is_protected(f)) {
            let value = if field.name.eq_ignore_ascii_case("subject") {
                format!(" {OBSCURED_SUBJECT}\r\n")
            } else {
                String::from_utf8_lossy(field.value()).into_owned()
            };
            payload.extend_from_slice(format!("HP-Outer: {}:{value}", field.name).as_bytes());
        }
    }
    payload.extend_from_slice(b"\r\n");
    payload.extend_from_slice(body);
    payload
}

fn is_protected(field: &Field<'_>) -> bool {
    PROTECTED_FIELDS
        .iter()
        .any(|name| field.name.eq_ignore_ascii_case(name))
}

/// Appends `; parameter` to a header field, before its final CRLF.
fn with_parameter(raw: &[u8], parameter: &str) -> Vec<u8> {
    let trimmed = raw.strip_suffix(b"\r\n").unwrap_or(raw);
    let mut field = trimmed.to_vec();
    field.extend_from_slice(format!(";\r\n {parameter}\r\n").as_bytes());
    field
}

/// One header field as written: its name and its raw lines with CRLF.
struct Field<'a> {
    name: &'a str,
    raw: &'a [u8],
}

impl Field<'_> {
    /// Returns the raw value after the colon, folding kept, CRLF included.
    fn value(&self) -> &[u8] {
        &self.raw[self.name.len() + 1..]
    }
}

/// Splits a message into its header section (with the final field's CRLF)
/// and its body.
fn split_message(message: &[u8]) -> (&[u8], &[u8]) {
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => (&message[..at + 2], &message[at + 4..]),
        None => (message, &[]),
    }
}

/// Splits a header section into fields. Continuation lines stay with the
/// field they continue.
fn header_fields(header: &[u8]) -> Vec<Field<'_>> {
    let mut starts = Vec::new();
    let mut at = 0;
    while at < header.len() {
        if !matches!(header[at], b' ' | b'\t') {
            starts.push(at);
        }
        at = header[at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(header.len(), |end| at + end + 2);
    }
    starts
        .iter()
        .enumerate()
        .filter_map(|(index, &start)| {
            let end = starts.get(index + 1).copied().unwrap_or(header.len());
            let raw = &header[start..end];
            let colon = raw.iter().position(|&b| b == b':')?;
            let name = std::str::from_utf8(&raw[..colon]).ok()?;
            Some(Field { name, raw })
        })
        .collect()
}

/// Seals with OpenPGP: multipart/signed with a detached signature when
/// only signing (RFC 3156 section 5), multipart/encrypted otherwise, with
/// the signature inside the encryption when signing too (section 6.2).
pub struct OpenpgpSealer {
    /// Certificates to encrypt to, the sender's own included.
    pub recipients: Vec<sequoia_openpgp::Cert>,
    /// The key to sign with, when signing.
    pub signer: Option<sequoia_openpgp::crypto::KeyPair>,
}

impl Sealer for OpenpgpSealer {
    fn seal(&mut self, entity: &[u8], protection: Protection) -> Result<Vec<u8>, SealError> {
        let boundary = boundary();
        let signer = if protection.sign {
            Some(self.signer.take().ok_or_else(|| {
                SealError::Crypto("no signing key was chosen for this message".into())
            })?)
        } else {
            None
        };
        if !protection.encrypt {
            let signer = signer.ok_or(SealError::NothingToDo)?;
            let signature = crate::openpgp::sign_detached(entity, signer)
                .map_err(|e| SealError::Crypto(e.to_string()))?;
            let mut sealed = format!(
                "Content-Type: multipart/signed; micalg=pgp-sha256;\r\n \
                 protocol=\"application/pgp-signature\"; boundary=\"{boundary}\"\r\n\r\n\
                 This is an OpenPGP/MIME signed message (RFC 3156).\r\n--{boundary}\r\n"
            )
            .into_bytes();
            sealed.extend_from_slice(entity);
            sealed.extend_from_slice(
                format!(
                    "\r\n--{boundary}\r\nContent-Type: application/pgp-signature; \
                     name=\"signature.asc\"\r\nContent-Description: OpenPGP digital signature\r\n\
                     Content-Disposition: attachment; filename=\"signature.asc\"\r\n\r\n"
                )
                .as_bytes(),
            );
            sealed.extend_from_slice(&signature);
            sealed.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            return Ok(sealed);
        }
        let armored = crate::openpgp::encrypt(entity, &self.recipients, signer)
            .map_err(|e| SealError::Crypto(e.to_string()))?;
        let mut sealed = format!(
            "Content-Type: multipart/encrypted;\r\n protocol=\"application/pgp-encrypted\"; \
             boundary=\"{boundary}\"\r\n\r\n\
             This is an OpenPGP/MIME encrypted message (RFC 3156).\r\n--{boundary}\r\n\
             Content-Type: application/pgp-encrypted\r\n\
             Content-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n\r\n\
             --{boundary}\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\
             Content-Description: OpenPGP encrypted message\r\n\
             Content-Disposition: inline; filename=\"encrypted.asc\"\r\n\r\n"
        )
        .into_bytes();
        sealed.extend_from_slice(&crate::outbox::crlf(&armored));
        sealed.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        Ok(sealed)
    }
}

/// Seals with S/MIME (RFC 8551). It signs first, including the full
/// chain, then encrypts to every recipient and the sender (section 3.7,
/// signing inside encryption), with AES-256-GCM when every recipient
/// supports it.
pub struct SmimeSealer {
    /// The sender's identity, which signs and receives a copy.
    pub identity: crate::smime::Identity,
    /// Certificates to encrypt to, the sender's own not included.
    pub recipients: Vec<crate::smime::RecipientCertificate>,
}

impl Sealer for SmimeSealer {
    fn seal(&mut self, entity: &[u8], protection: Protection) -> Result<Vec<u8>, SealError> {
        let crypto = |error: crate::smime::SmimeError| SealError::Crypto(error.to_string());
        let mut sealed = entity.to_vec();
        if protection.sign {
            sealed = crate::smime::write::sign(&sealed, &self.identity).map_err(crypto)?;
        }
        if protection.encrypt {
            sealed = crate::smime::write::encrypt(
                &sealed,
                &self.recipients,
                self.identity.certificate(),
            )
            .map_err(crypto)?;
        }
        Ok(sealed)
    }
}

/// Returns a fresh MIME boundary. Random, so it cannot occur in the
/// armored or base64 content it separates.
pub fn boundary() -> String {
    let mut bytes = [0u8; 12];
    // NOTE: should the random source fail, a fixed boundary with "=_" is
    // still safe, because neither base64 nor armor can contain "=_".
    let _ = openssl::rand::rand_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("=_wardmail_{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Address;

    struct Recorder(Vec<u8>);

    impl Sealer for Recorder {
        fn seal(&mut self, entity: &[u8], _: Protection) -> Result<Vec<u8>, SealError> {
            self.0 = entity.to_vec();
            Ok(b"Content-Type: application/x-test\r\n\r\nsealed\r\n".to_vec())
        }
    }

    fn draft() -> Draft {
        Draft {
            from: Address::new(Some("Dr. Ana"), "ana@clinic.example"),
            to: vec![Address::new(None, "lab@lab.example")],
            bcc: vec![Address::new(None, "hidden@clinic.example")],
            subject: "Befund für Zimmer 3".into(),
            body: "Kalium 5.9\n".into(),
            ..Draft::default()
        }
    }

    #[test]
    fn encrypted_message_hides_subject_and_protects_headers() {
        let mut recorder = Recorder(Vec::new());
        let protection = Protection {
            sign: true,
            encrypt: true,
        };
        let raw = write(
            &draft(),
            "<1@clinic.example>",
            0,
            protection,
            &mut recorder,
            &[],
        )
        .unwrap();
        let outer = String::from_utf8(raw).unwrap();
        let payload = String::from_utf8(recorder.0).unwrap();

        assert!(outer.contains("Subject: [...]\r\n"), "{outer}");
        assert!(!outer.contains("Zimmer"), "{outer}");
        assert!(!outer.contains("hidden@"), "{outer}");
        assert!(outer.ends_with("sealed\r\n"));
        assert!(payload.contains("hp=\"cipher\""), "{payload}");
        assert!(
            payload.contains("HP-Outer: Subject: [...]\r\n"),
            "{payload}"
        );
        assert!(payload.contains("HP-Outer: To:"), "{payload}");
        assert!(!payload.contains("hidden@"), "{payload}");
        assert!(!payload.contains("MIME-Version"), "{payload}");

        let parsed = crate::message::parse(outer.as_bytes());
        let shown = crate::message::parse_inner(&parsed, payload.as_bytes());
        assert_eq!(shown.envelope.subject, "Befund für Zimmer 3");
        assert_eq!(shown.text.trim(), "Kalium 5.9");
    }

    #[test]
    fn signed_message_keeps_subject_and_marks_clear() {
        let mut recorder = Recorder(Vec::new());
        let protection = Protection {
            sign: true,
            encrypt: false,
        };
        let raw = write(
            &draft(),
            "<2@clinic.example>",
            0,
            protection,
            &mut recorder,
            &[],
        )
        .unwrap();
        let outer = String::from_utf8(raw).unwrap();
        let payload = String::from_utf8(recorder.0).unwrap();

        assert!(outer.contains("Subject: =?"), "{outer}");
        assert!(payload.contains("hp=\"clear\""), "{payload}");
        assert!(!payload.contains("HP-Outer"), "{payload}");
    }

    #[test]
    fn nothing_to_do_is_an_error() {
        let protection = Protection {
            sign: false,
            encrypt: false,
        };
        let result = write(
            &draft(),
            "<3@clinic.example>",
            0,
            protection,
            &mut Recorder(Vec::new()),
            &[],
        );
        assert!(matches!(result, Err(SealError::NothingToDo)));
    }

    #[test]
    fn folded_fields_stay_whole() {
        let header = b"Subject: a\r\n b\r\nTo: x@y\r\n";
        let fields = header_fields(header);
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0].raw, b"Subject: a\r\n b\r\n");
        assert_eq!(fields[1].name, "To");
    }
}
