//! A minimal DER reader for the CMS fields that the openssl crate does not
//! expose: the content type (RFC 5652 section 3), the recipient identifiers
//! (section 6.2), and the digest algorithm and signingTime of the first
//! SignerInfo (sections 5.3 and 11.3), and its SMIMECapabilities attribute
//! (RFC 8551 section 2.5.2). Input must be DER, so BER from a
//! message is re-encoded by OpenSSL first.

const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const ENVELOPED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];
const AUTH_ENVELOPED_DATA: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x17,
];
const SIGNING_TIME: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05];
const SMIME_CAPABILITIES: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0f];
const DIGESTS: &[(&[u8], &str)] = &[
    (&[0x2b, 0x0e, 0x03, 0x02, 0x1a], "sha1"),
    (&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05], "md5"),
    (
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01],
        "sha256",
    ),
    (
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02],
        "sha384",
    ),
    (
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03],
        "sha512",
    ),
    (
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04],
        "sha224",
    ),
];

/// The CMS content types that [`super::inspect`] distinguishes.
#[derive(Debug, PartialEq, Eq)]
pub enum ContentType {
    Signed,
    Enveloped,
    AuthEnveloped,
    Other,
}

/// The fields read from the first SignerInfo.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SignerInfo {
    pub digest_algorithm: Option<String>,
    pub signing_time: Option<i64>,
    /// The dotted OIDs of the SMIMECapabilities attribute, in the signer's
    /// order of preference, or None when the attribute is absent.
    pub capabilities: Option<Vec<String>>,
}

/// Reads one element and returns its tag, its content and what follows.
/// Indefinite lengths return None, so the walk only accepts DER. The first
/// bytes of BER input still give the content type.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |acc, &b| acc << 8 | usize::from(b));
        (length, &rest[count..])
    };
    if rest.len() < length {
        return None;
    }
    Some((tag, &rest[..length], &rest[length..]))
}

/// Returns the content type OID of a ContentInfo. It reads only the
/// first two headers, which also works on BER with indefinite lengths.
pub fn content_type(input: &[u8]) -> Option<ContentType> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    if tag != 0x30 {
        return None;
    }
    if first > 0x80 {
        rest = rest.get(usize::from(first & 0x7f)..)?;
    }
    let (tag, oid, _) = element(rest)?;
    if tag != 0x06 {
        return None;
    }
    Some(match oid {
        SIGNED_DATA => ContentType::Signed,
        ENVELOPED_DATA => ContentType::Enveloped,
        AUTH_ENVELOPED_DATA => ContentType::AuthEnveloped,
        _ => ContentType::Other,
    })
}

/// The identifier by which a RecipientInfo names the recipient
/// certificate (RFC 5652 section 6.2).
#[derive(Debug, PartialEq, Eq)]
pub enum RecipientId {
    /// The DER issuer Name and the serial number without leading zeros.
    IssuerSerial(Vec<u8>, Vec<u8>),
    /// The subjectKeyIdentifier.
    KeyId(Vec<u8>),
}

impl RecipientId {
    /// Returns whether this names `certificate`.
    pub fn names(&self, certificate: &openssl::x509::X509Ref) -> bool {
        match self {
            Self::IssuerSerial(issuer, serial) => {
                let Ok(cert_issuer) = certificate.issuer_name().to_der() else {
                    return false;
                };
                let cert_serial = certificate.serial_number().to_bn().map(|bn| bn.to_vec());
                *issuer == cert_issuer
                    && cert_serial.is_ok_and(|bytes| trim_zeros(&bytes) == serial.as_slice())
            }
            Self::KeyId(id) => certificate
                .subject_key_id()
                .is_some_and(|key_id| key_id.as_slice() == id.as_slice()),
        }
    }
}

fn trim_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// Reads the recipient identifiers of a DER EnvelopedData or
/// AuthEnvelopedData: key transport (ktri) and key agreement (kari)
/// recipients. Other kinds are skipped.
pub fn recipients(input: &[u8]) -> Vec<RecipientId> {
    let mut found = Vec::new();
    let Some(infos) = recipient_infos(input) else {
        return found;
    };
    let mut rest = infos;
    while let Some((tag, info, next)) = element(rest) {
        match tag {
            0x30 => found.extend(ktri_recipient(info)),
            0xa1 => found.extend(kari_recipients(info)),
            _ => {}
        }
        rest = next;
    }
    found
}

fn recipient_infos(input: &[u8]) -> Option<&[u8]> {
    let (_, content_info, _) = element(input)?;
    let (_, _oid, rest) = element(content_info)?;
    let (_, explicit, _) = element(rest)?;
    let (_, enveloped, _) = element(explicit)?;
    // version, optional [0] originatorInfo, then the recipientInfos SET.
    let (_, _version, mut rest) = element(enveloped)?;
    let (mut tag, mut infos, next) = element(rest)?;
    if tag == 0xa0 {
        rest = next;
        (tag, infos, _) = element(rest)?;
    }
    (tag == 0x31).then_some(infos)
}

/// Reads the rid of a KeyTransRecipientInfo.
fn ktri_recipient(info: &[u8]) -> Option<RecipientId> {
    let (_, _version, rest) = element(info)?;
    let (tag, rid, _) = element(rest)?;
    recipient_id(tag, rid)
}

/// Reads the rids of a KeyAgreeRecipientInfo: version, [0] originator,
/// optional [1] ukm, keyEncryptionAlgorithm, recipientEncryptedKeys.
fn kari_recipients(info: &[u8]) -> Vec<RecipientId> {
    let mut found = Vec::new();
    let mut rest = info;
    let mut last = None;
    while let Some((tag, content, next)) = element(rest) {
        last = Some((tag, content));
        rest = next;
    }
    let Some((0x30, mut keys)) = last else {
        return found;
    };
    while let Some((_, key, next)) = element(keys) {
        if let Some((tag, rid, _)) = element(key) {
            found.extend(recipient_id(tag, rid));
        }
        keys = next;
    }
    found
}

fn recipient_id(tag: u8, rid: &[u8]) -> Option<RecipientId> {
    match tag {
        0x30 => {
            let (name_tag, _, after_name) = element(rid)?;
            let name_der = &rid[..rid.len() - after_name.len()];
            let (serial_tag, serial, _) = element(after_name)?;
            (name_tag == 0x30 && serial_tag == 0x02)
                .then(|| RecipientId::IssuerSerial(name_der.to_vec(), trim_zeros(serial).to_vec()))
        }
        // [0] subjectKeyIdentifier (ktri) or rKeyId SEQUENCE (kari).
        0x80 => Some(RecipientId::KeyId(rid.to_vec())),
        0xa0 => element(rid).map(|(_, id, _)| RecipientId::KeyId(id.to_vec())),
        _ => None,
    }
}

/// Reads the first SignerInfo of a DER SignedData ContentInfo.
pub fn signer_info(input: &[u8]) -> SignerInfo {
    first_signer(input).map(read_signer).unwrap_or_default()
}

fn first_signer(input: &[u8]) -> Option<&[u8]> {
    let (_, content_info, _) = element(input)?;
    let (_, _oid, rest) = element(content_info)?;
    let (_, explicit, _) = element(rest)?;
    let (_, signed_data, _) = element(explicit)?;

    // SignedData: version, digestAlgorithms, encapContentInfo, optional
    // [0] certificates and [1] crls, then signerInfos as the last SET.
    let mut rest = signed_data;
    let mut last = None;
    while let Some((tag, content, next)) = element(rest) {
        last = Some((tag, content));
        rest = next;
    }
    let (tag, signer_infos) = last?;
    if tag != 0x31 {
        return None;
    }
    let (_, signer, _) = element(signer_infos)?;
    Some(signer)
}

fn read_signer(signer: &[u8]) -> SignerInfo {
    let mut info = SignerInfo::default();
    let mut rest = signer;
    let mut index = 0;
    while let Some((tag, content, next)) = element(rest) {
        // Fields: version, sid, digestAlgorithm, [0] signedAttrs, ...
        if index == 2 && tag == 0x30 {
            info.digest_algorithm = element(content).and_then(|(_, oid, _)| digest_name(oid));
        }
        if index == 3 && tag == 0xa0 {
            info.signing_time = signing_time(content);
            info.capabilities = smime_capabilities(content);
        }
        index += 1;
        rest = next;
    }
    info
}

fn digest_name(oid: &[u8]) -> Option<String> {
    let known = DIGESTS.iter().find(|(known, _)| *known == oid);
    Some(known.map_or_else(|| "unknown".to_string(), |(_, name)| name.to_string()))
}

fn signing_time(attributes: &[u8]) -> Option<i64> {
    let mut rest = attributes;
    while let Some((_, attribute, next)) = element(rest) {
        let (_, oid, values) = element(attribute)?;
        if oid == SIGNING_TIME {
            let (_, set, _) = element(values)?;
            let (tag, time, _) = element(set)?;
            return parse_time(tag, std::str::from_utf8(time).ok()?);
        }
        rest = next;
    }
    None
}

/// Reads the SMIMECapabilities attribute: a SEQUENCE OF SMIMECapability,
/// each a SEQUENCE of an OID and optional parameters.
fn smime_capabilities(attributes: &[u8]) -> Option<Vec<String>> {
    let mut rest = attributes;
    while let Some((_, attribute, next)) = element(rest) {
        let (_, oid, values) = element(attribute)?;
        if oid == SMIME_CAPABILITIES {
            let (_, set, _) = element(values)?;
            let (_, mut capabilities, _) = element(set)?;
            let mut found = Vec::new();
            while let Some((_, capability, next)) = element(capabilities) {
                if let Some((0x06, oid, _)) = element(capability) {
                    found.extend(dotted_oid(oid));
                }
                capabilities = next;
            }
            return Some(found);
        }
        rest = next;
    }
    None
}

/// Turns the content octets of an OBJECT IDENTIFIER into dotted text
/// (X.690 section 8.19).
pub fn dotted_oid(content: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &byte in content {
        value = value.checked_mul(128)? | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            arcs.push(value);
            value = 0;
        }
    }
    let (&first, rest) = arcs.split_first()?;
    if value != 0 || content.last().is_some_and(|byte| byte & 0x80 != 0) {
        return None;
    }
    let (top, second) = match first {
        0..40 => (0, first),
        40..80 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut text = format!("{top}.{second}");
    for arc in rest {
        text.push_str(&format!(".{arc}"));
    }
    Some(text)
}

/// Parses UTCTime (tag 0x17, YYMMDDHHMMSSZ) or GeneralizedTime (tag
/// 0x18, YYYYMMDDHHMMSSZ) into seconds since the Unix epoch.
pub fn parse_time(tag: u8, text: &str) -> Option<i64> {
    let digits = text.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if digits.len() == 12 => {
            let short: i64 = digits.get(..2)?.parse().ok()?;
            // RFC 5280 section 4.1.2.5.1: 50 to 99 mean 19xx.
            (
                if short >= 50 {
                    1900 + short
                } else {
                    2000 + short
                },
                &digits[2..],
            )
        }
        0x18 if digits.len() == 14 => (digits.get(..4)?.parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let field = |range: std::ops::Range<usize>| -> Option<i64> { rest.get(range)?.parse().ok() };
    let (month, day) = (field(0..2)?, field(2..4)?);
    let (hour, minute, second) = (field(4..6)?, field(6..8)?, field(8..10)?);
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Counts days from 1970-01-01 to a proleptic Gregorian date, with
/// Howard Hinnant's days_from_civil algorithm.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}
