//! Byte-level MIME helpers for OpenPGP: the canonical form that a PGP/MIME
//! signature covers (RFC 3156 section 5) and ASCII-armored blocks in a text
//! body (RFC 9580 sections 6.2 and 7). Splitting a multipart body is shared
//! with S/MIME in `crate::multipart`.

/// Removes spaces and tabs before each CRLF, the form over which RFC 2440
/// section 5.2.1 computed text signatures (type 0x01).
pub(super) fn strip_trailing_whitespace(canonical: &[u8]) -> Vec<u8> {
    let mut stripped = Vec::with_capacity(canonical.len());
    for line in canonical.split_inclusive(|byte| *byte == b'\n') {
        let (text, ending) = match line.strip_suffix(b"\r\n") {
            Some(text) => (text, &b"\r\n"[..]),
            None => (line, &b""[..]),
        };
        let end = text
            .iter()
            .rposition(|byte| *byte != b' ' && *byte != b'\t')
            .map_or(0, |index| index + 1);
        stripped.extend_from_slice(&text[..end]);
        stripped.extend_from_slice(ending);
    }
    stripped
}

/// The kind of an ASCII-armored block found in a text body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ArmorKind {
    /// "BEGIN PGP MESSAGE": an encrypted or signed message.
    Message,
    /// "BEGIN PGP SIGNED MESSAGE": a cleartext signature (RFC 9580
    /// section 7).
    CleartextSigned,
}

/// One armored block in a text body, as a byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ArmorBlock {
    /// The block type, from its BEGIN line.
    pub kind: ArmorKind,
    /// The offset of the first byte of the BEGIN line.
    pub start: usize,
    /// The offset just past the END line and its line break.
    pub end: usize,
}

const MESSAGE_BEGIN: &[u8] = b"-----BEGIN PGP MESSAGE-----";
const MESSAGE_END: &[u8] = b"-----END PGP MESSAGE-----";
const SIGNED_BEGIN: &[u8] = b"-----BEGIN PGP SIGNED MESSAGE-----";
const SIGNATURE_END: &[u8] = b"-----END PGP SIGNATURE-----";

/// Finds the first armored block whose BEGIN and END lines start at the
/// beginning of a line. Indented armor is not accepted, because a quoted
/// or indented block is not what the sender presented as signed.
pub(super) fn find_armor(text: &[u8]) -> Option<ArmorBlock> {
    let mut offset = 0;
    for line in text.split_inclusive(|byte| *byte == b'\n') {
        let trimmed = line.trim_ascii_end();
        let kind = if trimmed == MESSAGE_BEGIN {
            Some((ArmorKind::Message, MESSAGE_END))
        } else if trimmed == SIGNED_BEGIN {
            Some((ArmorKind::CleartextSigned, SIGNATURE_END))
        } else {
            None
        };
        if let Some((kind, end_line)) = kind {
            let end = find_line(text, offset + line.len(), end_line)?;
            return Some(ArmorBlock {
                kind,
                start: offset,
                end,
            });
        }
        offset += line.len();
    }
    None
}

/// Returns the offset just past the first line from `from` on that equals
/// `expected` after trailing whitespace is removed.
fn find_line(text: &[u8], from: usize, expected: &[u8]) -> Option<usize> {
    let mut offset = from;
    for line in text.get(from..)?.split_inclusive(|byte| *byte == b'\n') {
        offset += line.len();
        if line.trim_ascii_end() == expected {
            return Some(offset);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_whitespace_stripped_per_line() {
        assert_eq!(
            strip_trailing_whitespace(b"a \t\r\nb\r\n  \r\nc  "),
            b"a\r\nb\r\n\r\nc"
        );
    }

    #[test]
    fn armor_found_at_line_start() {
        let text = b"hello\n-----BEGIN PGP MESSAGE-----\n\nabc\n-----END PGP MESSAGE-----\nbye\n";
        let block = find_armor(text).unwrap();
        assert_eq!(block.kind, ArmorKind::Message);
        assert_eq!(block.start, 6);
        assert_eq!(&text[block.end..], b"bye\n");
    }

    #[test]
    fn armor_indented_ignored() {
        let text = b"  -----BEGIN PGP SIGNED MESSAGE-----\nx\n  -----END PGP SIGNATURE-----\n";
        assert_eq!(find_armor(text), None);
    }

    #[test]
    fn armor_without_end_ignored() {
        assert_eq!(find_armor(b"-----BEGIN PGP MESSAGE-----\nabc\n"), None);
    }
}
