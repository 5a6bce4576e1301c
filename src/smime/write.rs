//! S/MIME writing (RFC 8551 section 3): [`sign`] wraps a MIME entity in
//! multipart/signed with a detached SHA-256 signature (section 3.5.3), and
//! [`encrypt`] wraps one in application/pkcs7-mime (section 3.3). A message
//! that is both is signed first and then encrypted, so that the signature
//! and the signer's identity are hidden inside the encryption.
//!
//! Both functions take and return one MIME entity in CRLF form: its
//! Content-* header fields, a blank line and the body. The caller adds the
//! message header fields (From, To, Subject, Date, Message-ID).
//!
//! The content encryption algorithm is chosen by [`content_encryption`]:
//! AES-256-GCM in AuthEnvelopedData (RFC 5083, RFC 5084) when every
//! recipient certificate comes with SMIMECapabilities that list
//! AES-256-GCM, and AES-256-CBC in EnvelopedData otherwise. Capabilities
//! are those seen in the correspondent's latest signed mail that listed
//! them. A recipient with no capabilities on record (a certificate
//! imported from a file, or mail without the attribute) counts as unable
//! to read GCM, because RFC 8551 section 2.7 requires every client to read
//! AES-128-CBC but not GCM. The sender's own certificate does not take
//! part in the choice: Wardmail reads both.

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::{X509, X509Ref};

use super::certificates::RecipientCertificate;
use super::{Identity, SmimeError, describe_errors, signed_data, unix_now};

/// The content encryption that [`encrypt`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentEncryption {
    /// AES-256-GCM in AuthEnvelopedData: smime-type=authEnveloped-data.
    Aes256Gcm,
    /// AES-256-CBC in EnvelopedData: smime-type=enveloped-data. It has no
    /// integrity protection of its own.
    Aes256Cbc,
}

/// Chooses the content encryption for a set of recipients (see the module
/// documentation for the rule).
pub fn content_encryption(recipients: &[RecipientCertificate]) -> ContentEncryption {
    let all_read_gcm = recipients.iter().all(|recipient| {
        recipient
            .capabilities
            .as_ref()
            .is_some_and(|capabilities| capabilities.supports_aes256_gcm())
    });
    if all_read_gcm {
        ContentEncryption::Aes256Gcm
    } else {
        ContentEncryption::Aes256Cbc
    }
}

/// Signs a MIME entity and returns a multipart/signed entity whose first
/// part is `entity` byte for byte and whose second part is the detached
/// CMS signature (application/pkcs7-signature, micalg=sha-256). The
/// signature carries the signer certificate, the identity's chain and an
/// SMIMECapabilities attribute listing AES-256-GCM and AES-256-CBC.
///
/// Line ends are converted to CRLF first. The entity must be 7-bit
/// (quoted-printable or base64 for anything else), because a relay that
/// converts 8-bit content would break the signature (RFC 8551 section
/// 3.1.3), so 8-bit input is rejected.
pub fn sign(entity: &[u8], identity: &Identity) -> Result<Vec<u8>, SmimeError> {
    let entity = crate::multipart::to_crlf(entity);
    if let Some(offset) = entity.iter().position(|byte| !byte.is_ascii()) {
        return Err(SmimeError::EightBitContent { offset });
    }

    let signature = signed_data::detached(&entity, identity, unix_now())?;
    let boundary = boundary(&entity)?;
    let mut out = format!(
        "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n \
         micalg=sha-256; boundary=\"{boundary}\"\r\n\r\n\
         This is a cryptographically signed message in MIME format.\r\n\r\n\
         --{boundary}\r\n"
    )
    .into_bytes();
    out.extend_from_slice(&entity);
    out.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\n\
             Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(&base64_lines(&signature));
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok(out)
}

/// Encrypts a MIME entity to every recipient and to `sender`, so that the
/// copy in Sent stays readable, and returns an application/pkcs7-mime
/// entity. The algorithm is [`content_encryption`] of `recipients`.
///
/// Line ends are converted to CRLF first. The entity is then encrypted as
/// binary, without further conversion.
pub fn encrypt(
    entity: &[u8],
    recipients: &[RecipientCertificate],
    sender: &X509Ref,
) -> Result<Vec<u8>, SmimeError> {
    super::load_providers();
    let entity = crate::multipart::to_crlf(entity);
    let encryption = content_encryption(recipients);
    let crypto = |errors: openssl::error::ErrorStack| SmimeError::Crypto {
        operation: "encrypting",
        reason: describe_errors(&errors),
    };

    let mut certificates: Stack<X509> = Stack::new().map_err(crypto)?;
    for recipient in recipients {
        certificates
            .push(recipient.certificate.clone())
            .map_err(crypto)?;
    }
    certificates.push(sender.to_owned()).map_err(crypto)?;

    let (cipher, smime_type) = match encryption {
        ContentEncryption::Aes256Gcm => (Cipher::aes_256_gcm(), "authEnveloped-data"),
        ContentEncryption::Aes256Cbc => (Cipher::aes_256_cbc(), "enveloped-data"),
    };
    // OpenSSL 3 writes AuthEnvelopedData when the cipher is an AEAD.
    let cms = CmsContentInfo::encrypt(&certificates, &entity, cipher, CMSOptions::BINARY)
        .map_err(crypto)?;
    let der = cms.to_der().map_err(crypto)?;

    let mut out = format!(
        "Content-Type: application/pkcs7-mime; smime-type={smime_type};\r\n \
         name=\"smime.p7m\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"smime.p7m\"\r\n\r\n"
    )
    .into_bytes();
    out.extend_from_slice(&base64_lines(&der));
    Ok(out)
}

/// Returns a random multipart boundary that does not occur in `entity`.
fn boundary(entity: &[u8]) -> Result<String, SmimeError> {
    loop {
        let mut random = [0u8; 18];
        openssl::rand::rand_bytes(&mut random).map_err(|errors| SmimeError::Crypto {
            operation: "making a MIME boundary",
            reason: describe_errors(&errors),
        })?;
        let boundary =
            format!("smime-{}", openssl::base64::encode_block(&random)).replace(['+', '/'], "_");
        let found = entity
            .windows(boundary.len())
            .any(|window| window == boundary.as_bytes());
        if !found {
            return Ok(boundary);
        }
    }
}

/// Encodes bytes as base64 in lines of 76 characters, each ending in CRLF
/// (RFC 2045 section 6.8).
fn base64_lines(bytes: &[u8]) -> Vec<u8> {
    let text = openssl::base64::encode_block(bytes);
    let mut out = Vec::with_capacity(text.len() + text.len() / 38 + 2);
    for line in text.as_bytes().chunks(76) {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_line_length() {
        let encoded = base64_lines(&[0xab; 200]);
        let text = String::from_utf8(encoded).unwrap();
        assert!(text.lines().all(|line| line.len() <= 76), "{text}");
        assert!(text.ends_with("\r\n"));
        let joined: String = text.split("\r\n").collect();
        assert_eq!(
            openssl::base64::decode_block(&joined).unwrap(),
            vec![0xab; 200]
        );
    }

    #[test]
    fn boundary_absent_from_entity() {
        let entity = b"Content-Type: text/plain\r\n\r\nsmime-\r\n";
        let boundary = boundary(entity).unwrap();
        assert!(boundary.starts_with("smime-"));
        assert!(!boundary.contains(['+', '/']), "{boundary}");
    }
}
