//! Builds a detached CMS SignedData (RFC 5652 section 5) in DER.
//!
//! The openssl crate signs CMS only with OpenSSL's default signed
//! attributes, whose SMIMECapabilities list stops at CBC ciphers and
//! cannot be changed through the crate. So the structure is written here
//! and OpenSSL only computes the digest and the signature value. The
//! signed attributes are contentType, signingTime, messageDigest and
//! SMIMECapabilities (RFC 8551 section 2.5).

use openssl::hash::{MessageDigest, hash};
use openssl::pkey::Id;
use openssl::sign::Signer;

use super::certificates::{AES256_CBC, AES256_GCM};
use super::{Identity, SmimeError, describe_errors};

const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
const MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
const SIGNING_TIME: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05];
const SMIME_CAPABILITIES: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0f];
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const NULL: u8 = 0x05;
const OBJECT_IDENTIFIER: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const CONTEXT_0: u8 = 0xa0;

/// Returns a DER ContentInfo holding a SignedData over `content` without
/// the content itself, signed with SHA-256 by `identity` at `signing_time`
/// (seconds since the Unix epoch), carrying the signer certificate and the
/// identity's chain.
pub(super) fn detached(
    content: &[u8],
    identity: &Identity,
    signing_time: i64,
) -> Result<Vec<u8>, SmimeError> {
    let crypto = |operation: &'static str| {
        move |errors: openssl::error::ErrorStack| SmimeError::Crypto {
            operation,
            reason: describe_errors(&errors),
        }
    };
    let signature_algorithm = match identity.key.id() {
        Id::RSA => algorithm(RSA_ENCRYPTION, true),
        Id::EC => algorithm(ECDSA_WITH_SHA256, false),
        other => {
            return Err(SmimeError::UnsupportedKey {
                algorithm: format!("{other:?}"),
            });
        }
    };

    let digest = hash(MessageDigest::sha256(), content).map_err(crypto("hashing the content"))?;
    let attributes = signed_attributes(&digest, signing_time)?;
    // The signature covers the attributes with the SET OF tag, not the
    // [0] IMPLICIT tag that they carry inside SignerInfo (section 5.4).
    let mut signer =
        Signer::new(MessageDigest::sha256(), &identity.key).map_err(crypto("signing"))?;
    let signature = signer
        .sign_oneshot_to_vec(&tlv(SET, &attributes))
        .map_err(crypto("signing"))?;

    let certificate = &identity.certificate;
    let issuer = certificate
        .issuer_name()
        .to_der()
        .map_err(crypto("encoding the issuer"))?;
    let serial = certificate
        .serial_number()
        .to_bn()
        .map_err(crypto("encoding the serial number"))?
        .to_vec();
    let signer_info = tlv(
        SEQUENCE,
        &[
            integer(&[1]),
            tlv(SEQUENCE, &[issuer, integer(&serial)].concat()),
            algorithm(SHA256, false),
            tlv(CONTEXT_0, &attributes),
            signature_algorithm,
            tlv(OCTET_STRING, &signature),
        ]
        .concat(),
    );

    let mut certificates = certificate
        .to_der()
        .map_err(crypto("encoding the certificate"))?;
    for ca in identity.chain_ders()? {
        certificates.extend(ca);
    }
    let signed_data = tlv(
        SEQUENCE,
        &[
            integer(&[1]),
            tlv(SET, &algorithm(SHA256, false)),
            tlv(SEQUENCE, &tlv(OBJECT_IDENTIFIER, DATA)),
            tlv(CONTEXT_0, &certificates),
            tlv(SET, &signer_info),
        ]
        .concat(),
    );
    Ok(tlv(
        SEQUENCE,
        &[
            tlv(OBJECT_IDENTIFIER, SIGNED_DATA),
            tlv(CONTEXT_0, &signed_data),
        ]
        .concat(),
    ))
}

/// Returns the content octets of the signed attributes, sorted as DER
/// requires for a SET OF (X.690 section 11.6).
fn signed_attributes(digest: &[u8], signing_time: i64) -> Result<Vec<u8>, SmimeError> {
    let capabilities: Vec<u8> = [AES256_GCM, AES256_CBC]
        .iter()
        .map(|oid| oid_content(oid).map(|content| tlv(SEQUENCE, &tlv(OBJECT_IDENTIFIER, &content))))
        .collect::<Result<Vec<_>, _>>()?
        .concat();
    let mut attributes = [
        attribute(CONTENT_TYPE, &tlv(OBJECT_IDENTIFIER, DATA)),
        attribute(SIGNING_TIME, &time(signing_time)),
        attribute(MESSAGE_DIGEST, &tlv(OCTET_STRING, digest)),
        attribute(SMIME_CAPABILITIES, &tlv(SEQUENCE, &capabilities)),
    ];
    attributes.sort();
    Ok(attributes.concat())
}

fn attribute(oid: &[u8], value: &[u8]) -> Vec<u8> {
    tlv(
        SEQUENCE,
        &[tlv(OBJECT_IDENTIFIER, oid), tlv(SET, value)].concat(),
    )
}

/// Returns an AlgorithmIdentifier, with NULL parameters when `null` is
/// set (rsaEncryption needs them; SHA-256 and ECDSA omit them).
fn algorithm(oid: &[u8], null: bool) -> Vec<u8> {
    let mut content = tlv(OBJECT_IDENTIFIER, oid);
    if null {
        content.extend(tlv(NULL, &[]));
    }
    tlv(SEQUENCE, &content)
}

/// Encodes a non-negative INTEGER from big-endian magnitude bytes.
fn integer(magnitude: &[u8]) -> Vec<u8> {
    let start = magnitude
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(magnitude.len());
    let mut content = magnitude[start..].to_vec();
    if content.first().is_none_or(|byte| byte & 0x80 != 0) {
        content.insert(0, 0);
    }
    tlv(INTEGER, &content)
}

/// Encodes a dotted OID into its content octets.
fn oid_content(dotted: &str) -> Result<Vec<u8>, SmimeError> {
    openssl::asn1::Asn1Object::from_str(dotted)
        .map(|object| object.as_slice().to_vec())
        .map_err(|errors| SmimeError::Crypto {
            operation: "encoding an OID",
            reason: describe_errors(&errors),
        })
}

/// Encodes a time as UTCTime until 2049 and GeneralizedTime from 2050 on
/// (RFC 5652 section 11.3).
fn time(seconds: i64) -> Vec<u8> {
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400);
    let clock = format!(
        "{month:02}{day:02}{:02}{:02}{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    );
    if (1950..2050).contains(&year) {
        tlv(UTC_TIME, format!("{:02}{clock}", year % 100).as_bytes())
    } else {
        tlv(GENERALIZED_TIME, format!("{year:04}{clock}").as_bytes())
    }
}

/// Turns days since 1970-01-01 into a proleptic Gregorian date, with
/// Howard Hinnant's civil_from_days algorithm.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Encodes one DER element with a definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let length = content.len();
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes = length.to_be_bytes();
        let start = bytes
            .iter()
            .position(|byte| *byte != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - start) as u8);
        out.extend_from_slice(&bytes[start..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_encoding() {
        assert_eq!(time(0), tlv(UTC_TIME, b"700101000000Z"));
        assert_eq!(time(1_769_438_410), tlv(UTC_TIME, b"260126144010Z"));
        assert_eq!(
            time(2_524_608_000),
            tlv(GENERALIZED_TIME, b"20500101000000Z")
        );
        assert_eq!(
            super::super::der::parse_time(0x17, "260126144010Z"),
            Some(1_769_438_410)
        );
    }

    #[test]
    fn length_encoding() {
        assert_eq!(tlv(OCTET_STRING, &[7; 3])[..2], [0x04, 3]);
        assert_eq!(tlv(OCTET_STRING, &[7; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(tlv(OCTET_STRING, &[7; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn integer_encoding() {
        assert_eq!(integer(&[0x00, 0x7f]), vec![0x02, 1, 0x7f]);
        assert_eq!(integer(&[0x80]), vec![0x02, 2, 0x00, 0x80]);
        assert_eq!(integer(&[]), vec![0x02, 1, 0x00]);
    }

    #[test]
    fn capability_oids_encode() {
        assert_eq!(
            oid_content(AES256_GCM).unwrap(),
            vec![0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2e]
        );
        let dotted = super::super::der::dotted_oid(&oid_content(AES256_CBC).unwrap());
        assert_eq!(dotted.as_deref(), Some(AES256_CBC));
    }
}
