//! Splitting a message whose parts are not equally protected, so that the
//! reader shows each part apart: unprotected text next to a signed or
//! encrypted part must never look as if the signature covered it.
//!
//! Only the direct parts of a multipart root are separated. Each protected
//! part becomes a message of its own, with the outer From, To, Cc, Date,
//! Subject and Message-ID, so that the readers check it as they would a
//! whole message (the signer against From, the signing time against
//! Date).

use mail_parser::{MessageParser, MimeHeaders};

use crate::multipart::split_multipart;

/// The header fields copied from the outer message onto each part.
const COPIED_FIELDS: [&str; 6] = ["from", "to", "cc", "date", "subject", "message-id"];

/// One direct part of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// True when the part is signed or encrypted (S/MIME or OpenPGP).
    pub protected: bool,
    /// The part as a message of its own: outer header fields, then the
    /// part's own header and body.
    pub message: Vec<u8>,
}

/// Returns the direct parts of a multipart message, or nothing when the
/// root is not multipart or none of its parts is protected.
pub fn segments(raw: &[u8]) -> Vec<Segment> {
    let Some(message) = MessageParser::default().parse(raw) else {
        return Vec::new();
    };
    let root = message.root_part();
    let Some(content_type) = root.content_type() else {
        return Vec::new();
    };
    let multipart = content_type.ctype().eq_ignore_ascii_case("multipart");
    let Some(boundary) = content_type.attribute("boundary").filter(|_| multipart) else {
        return Vec::new();
    };
    let header_end = root.raw_body_offset() as usize;
    let Some(body) = raw.get(header_end..root.raw_end_offset() as usize) else {
        return Vec::new();
    };
    let outer = copied_fields(raw.get(..header_end).unwrap_or_default());
    let segments: Vec<Segment> = split_multipart(body, boundary)
        .into_iter()
        .map(|part| {
            let mut message = outer.clone();
            message.extend_from_slice(b"MIME-Version: 1.0\r\n");
            message.extend_from_slice(part);
            Segment {
                protected: is_protected(part),
                message,
            }
        })
        .collect();
    if segments.iter().any(|segment| segment.protected) {
        segments
    } else {
        Vec::new()
    }
}

/// Returns whether a MIME entity is signed or encrypted.
fn is_protected(entity: &[u8]) -> bool {
    let Some(parsed) = MessageParser::default().parse(entity) else {
        return false;
    };
    let part = parsed.root_part();
    let Some(content_type) = part.content_type() else {
        return false;
    };
    let main = content_type.ctype().to_ascii_lowercase();
    let sub = content_type.subtype().unwrap_or("").to_ascii_lowercase();
    match (main.as_str(), sub.as_str()) {
        ("multipart", "signed" | "encrypted") => true,
        ("application", "pkcs7-mime" | "x-pkcs7-mime") => true,
        ("text", _) => {
            let body = part.contents();
            contains(body, b"-----BEGIN PGP MESSAGE-----")
                || contains(body, b"-----BEGIN PGP SIGNED MESSAGE-----")
        }
        _ => false,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Returns the raw lines of the outer header fields copied onto each part.
fn copied_fields(header: &[u8]) -> Vec<u8> {
    let mut copied = Vec::new();
    let mut keep = false;
    for line in header.split_inclusive(|&byte| byte == b'\n') {
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            let name = line
                .iter()
                .position(|&byte| byte == b':')
                .map(|colon| String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase());
            keep = name.is_some_and(|name| COPIED_FIELDS.contains(&name.trim()));
        }
        if keep {
            copied.extend_from_slice(line);
        }
    }
    if !copied.ends_with(b"\n") && !copied.is_empty() {
        copied.extend_from_slice(b"\r\n");
    }
    copied
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: Claim\r\n\
        X-Other: dropped\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"mx\"\r\n\r\n--mx\r\n\
        Content-Type: text/plain\r\n\r\nPay account 99 today.\r\n--mx\r\n\
        Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; \
        boundary=\"s\"\r\n\r\n--s\r\nContent-Type: text/plain\r\n\r\nsigned\r\n--s\r\n\
        Content-Type: application/pkcs7-signature\r\n\r\nAAAA\r\n--s--\r\n--mx--\r\n";

    #[test]
    fn mixed_message_splits_into_plain_and_protected_parts() {
        let parts = segments(MIXED);
        assert_eq!(parts.len(), 2);
        assert!(!parts[0].protected);
        assert!(parts[1].protected);
        let first = String::from_utf8_lossy(&parts[0].message);
        assert!(
            first.starts_with("From: a@example.org\r\nTo: b@example.org\r\nSubject: Claim\r\n")
        );
        assert!(!first.contains("X-Other"));
        assert!(first.ends_with("Pay account 99 today."), "{first}");
        let second = String::from_utf8_lossy(&parts[1].message);
        assert!(
            second.contains("Content-Type: multipart/signed"),
            "{second}"
        );
    }

    #[test]
    fn uniform_messages_are_not_split() {
        assert!(segments(b"From: a@example.org\r\n\r\nplain\r\n").is_empty());
        let plain_mixed = b"Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\n\
            Content-Type: text/plain\r\n\r\none\r\n--m\r\nContent-Type: text/plain\r\n\r\n\
            two\r\n--m--\r\n";
        assert!(segments(plain_mixed).is_empty());
    }
}
