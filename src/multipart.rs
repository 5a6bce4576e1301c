//! Byte-exact multipart splitting and CRLF canonical form, shared by the
//! S/MIME and OpenPGP readers and the composer. Signatures cover the exact bytes of a MIME
//! part (RFC 1847 section 2.1), which a parsed and re-decoded part no longer
//! has, so these work on the raw body.

/// Splits a multipart body at `boundary` into its parts, each without the
/// line break that RFC 2046 section 5.1.1 assigns to the delimiter.
pub(crate) fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut part_start: Option<usize> = None;
    let mut line_start = 0;

    while line_start < body.len() {
        let line_end = body[line_start..]
            .iter()
            .position(|byte| *byte == b'\n')
            .map_or(body.len(), |offset| line_start + offset + 1);
        let trimmed = body[line_start..line_end].trim_ascii_end();

        let rest = trimmed.strip_prefix(delimiter.as_bytes());
        if let Some(rest) = rest.filter(|rest| rest.is_empty() || *rest == b"--") {
            if let Some(start) = part_start {
                parts.push(strip_line_break(&body[start..line_start]));
            }
            if rest == b"--" {
                return parts;
            }
            part_start = Some(line_end);
        }
        line_start = line_end;
    }
    // NOTE: a body without a close delimiter keeps the parts found so far
    // and drops the unterminated last one, so a truncated signature part
    // reads as missing rather than as content.
    parts
}

fn strip_line_break(part: &[u8]) -> &[u8] {
    let part = part.strip_suffix(b"\n").unwrap_or(part);
    part.strip_suffix(b"\r").unwrap_or(part)
}

/// Converts bare LF line ends to CRLF: the canonical form that S/MIME and
/// PGP/MIME signatures cover (RFC 3156 section 5), and the line ends of a
/// message on the wire.
pub(crate) fn to_crlf(content: &[u8]) -> Vec<u8> {
    let mut canonical = Vec::with_capacity(content.len() + content.len() / 32);
    let mut previous = 0u8;
    for &byte in content {
        if byte == b'\n' && previous != b'\r' {
            canonical.push(b'\r');
        }
        canonical.push(byte);
        previous = byte;
    }
    canonical
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_exact_bytes() {
        let body =
            b"preamble\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n\r\n--b\r\nsig\n--b--\r\n";
        let parts = split_multipart(body, "b");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], b"Content-Type: text/plain\r\n\r\nhi\r\n");
        assert_eq!(parts[1], b"sig");
    }

    #[test]
    fn split_ignores_boundary_prefix() {
        let parts = split_multipart(b"--b\nx\n--bc\ny\n--b--\n", "b");
        assert_eq!(parts, vec![&b"x\n--bc\ny"[..]]);
    }

    #[test]
    fn crlf_canonical_form() {
        assert_eq!(to_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
        assert_eq!(to_crlf(b""), b"");
    }
}
