//! IMAP mailbox names in modified UTF-7 (RFC 3501 section 5.1.3).
//!
//! Owns the conversion between the wire form of a mailbox name and the
//! Unicode name shown to the user. Printable US-ASCII (0x20 to 0x7e)
//! represents itself, except "&", which is written "&-". Every other
//! character is written as UTF-16 code units in base64 between "&" and "-",
//! using "," instead of "/" and no "=" padding.
//!
//! The decoder accepts only the canonical form, so `encode(&decode(raw)?)`
//! returns `raw` byte for byte for every accepted `raw`. That lets the client
//! send back exactly the name the server listed.
//!
//! The codec is hand-written because it takes about a hundred lines, and the
//! crate found for it, `utf7-imap` 0.3.2 (last released in September 2022),
//! decodes to a `String` without reporting malformed input, so it cannot
//! give the round-trip guarantee.

use thiserror::Error;

/// Base64 alphabet of RFC 3501 section 5.1.3: RFC 2045 base64 with ","
/// in place of "/".
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Malformed modified UTF-7 in a mailbox name. Offsets are byte offsets into
/// the raw name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Utf7Error {
    /// A character outside printable US-ASCII appears unencoded.
    #[error(
        "cannot decode mailbox name: {found:?} at offset {offset} is not printable US-ASCII \
         and must be base64-encoded between '&' and '-'"
    )]
    NotPrintable {
        /// Offset of the character.
        offset: usize,
        /// The character found.
        found: char,
    },
    /// An "&" opens an encoded run that never ends with "-".
    #[error("cannot decode mailbox name: the '&' at offset {offset} has no closing '-'")]
    Unterminated {
        /// Offset of the "&".
        offset: usize,
    },
    /// An "&" appears inside an encoded run, as in "&AGE&-".
    #[error(
        "cannot decode mailbox name: '&' at offset {offset} is inside an encoded run; \
         close the run with '-' before writing '&-'"
    )]
    AmpersandInRun {
        /// Offset of the inner "&".
        offset: usize,
    },
    /// A character that is not in the modified base64 alphabet.
    #[error(
        "cannot decode mailbox name: {found:?} at offset {offset} is not a modified base64 \
         character (A-Z, a-z, 0-9, '+', ',')"
    )]
    InvalidBase64 {
        /// Offset of the character.
        offset: usize,
        /// The character found.
        found: char,
    },
    /// The run has more base64 characters than its UTF-16 code units need.
    #[error(
        "cannot decode mailbox name: the encoded run at offset {offset} does not end on a \
         UTF-16 code unit boundary"
    )]
    PartialCodeUnit {
        /// Offset of the "&" that opens the run.
        offset: usize,
    },
    /// The bits after the last UTF-16 code unit are not zero.
    #[error(
        "cannot decode mailbox name: the encoded run at offset {offset} ends with non-zero \
         padding bits"
    )]
    NonZeroPadding {
        /// Offset of the "&" that opens the run.
        offset: usize,
    },
    /// The run encodes a printable US-ASCII character, which must represent
    /// itself.
    #[error(
        "cannot decode mailbox name: the encoded run at offset {offset} contains {found:?}, \
         which must be written as itself"
    )]
    EncodedAscii {
        /// Offset of the "&" that opens the run.
        offset: usize,
        /// The printable character found in the run.
        found: char,
    },
    /// A UTF-16 surrogate without its partner.
    #[error(
        "cannot decode mailbox name: the encoded run at offset {offset} contains the unpaired \
         surrogate {unit:#06x}"
    )]
    UnpairedSurrogate {
        /// Offset of the "&" that opens the run.
        offset: usize,
        /// The lone surrogate code unit.
        unit: u16,
    },
    /// An encoded run directly follows another one, as in "&AOk-&AOk-".
    #[error(
        "cannot decode mailbox name: the encoded run at offset {offset} directly follows \
         another one; both must be one run"
    )]
    AdjacentRuns {
        /// Offset of the "&" that opens the second run.
        offset: usize,
    },
}

/// Decodes a mailbox name as sent by an IMAP server.
///
/// Rejects every input that [`encode`] would not produce, so a name that
/// decodes also re-encodes to the same bytes.
pub fn decode(raw: &str) -> Result<String, Utf7Error> {
    let mut name = String::with_capacity(raw.len());
    let mut previous_run_end = None;
    // Byte offset into `raw`. It only ever steps over ASCII, so it always
    // sits on a character boundary.
    let mut offset = 0;

    while let Some(ch) = raw[offset..].chars().next() {
        if !is_printable(ch) {
            return Err(Utf7Error::NotPrintable { offset, found: ch });
        }
        if ch != '&' {
            name.push(ch);
            offset += 1;
            continue;
        }

        let run_start = offset + 1;
        let Some(length) = raw[run_start..].find('-') else {
            return Err(Utf7Error::Unterminated { offset });
        };
        let run_end = run_start + length;
        if length == 0 {
            name.push('&');
        } else {
            if previous_run_end == Some(offset) {
                return Err(Utf7Error::AdjacentRuns { offset });
            }
            decode_run(&raw[run_start..run_end], offset, &mut name)?;
            previous_run_end = Some(run_end + 1);
        }
        offset = run_end + 1;
    }

    Ok(name)
}

/// Encodes a Unicode mailbox name into the form an IMAP server expects.
pub fn encode(name: &str) -> String {
    let mut raw = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();

    for ch in name.chars() {
        if is_printable(ch) {
            flush_run(&mut pending, &mut raw);
            if ch == '&' {
                raw.push_str("&-");
            } else {
                raw.push(ch);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(ch.encode_utf16(&mut units));
        }
    }
    flush_run(&mut pending, &mut raw);

    raw
}

fn is_printable(ch: char) -> bool {
    (' '..='~').contains(&ch)
}

/// Decodes the base64 text between "&" and "-" and appends its characters.
/// `offset` is the position of the "&", used in errors.
fn decode_run(run: &str, offset: usize, name: &mut String) -> Result<(), Utf7Error> {
    let mut units = Vec::with_capacity(run.len() * 6 / 16);
    let mut bits: u32 = 0;
    let mut bit_count = 0;

    for (index, ch) in run.char_indices() {
        let char_offset = offset + 1 + index;
        let value = match ch {
            '&' => {
                return Err(Utf7Error::AmpersandInRun {
                    offset: char_offset,
                });
            }
            _ => base64_value(ch).ok_or(Utf7Error::InvalidBase64 {
                offset: char_offset,
                found: ch,
            })?,
        };
        bits = (bits << 6) | u32::from(value);
        bit_count += 6;
        if bit_count >= 16 {
            bit_count -= 16;
            // Truncation keeps exactly the 16 bits of the finished unit.
            units.push((bits >> bit_count) as u16);
            bits &= (1 << bit_count) - 1;
        }
    }

    // The encoder emits the fewest characters that hold the units, so at
    // most 4 bits are left over, and they are zero.
    if bit_count >= 6 {
        return Err(Utf7Error::PartialCodeUnit { offset });
    }
    if bits != 0 {
        return Err(Utf7Error::NonZeroPadding { offset });
    }

    for decoded in char::decode_utf16(units) {
        let ch = decoded.map_err(|error| Utf7Error::UnpairedSurrogate {
            offset,
            unit: error.unpaired_surrogate(),
        })?;
        if is_printable(ch) {
            return Err(Utf7Error::EncodedAscii { offset, found: ch });
        }
        name.push(ch);
    }

    Ok(())
}

fn base64_value(ch: char) -> Option<u8> {
    let byte = u8::try_from(ch).ok()?;
    let position = ALPHABET.iter().position(|&symbol| symbol == byte)?;
    u8::try_from(position).ok()
}

/// Writes `pending` as one encoded run and clears it.
fn flush_run(pending: &mut Vec<u16>, raw: &mut String) {
    if pending.is_empty() {
        return;
    }

    raw.push('&');
    let mut bits: u32 = 0;
    let mut bit_count = 0;
    for &unit in pending.iter() {
        bits = (bits << 16) | u32::from(unit);
        bit_count += 16;
        while bit_count >= 6 {
            bit_count -= 6;
            raw.push(symbol((bits >> bit_count) & 0x3f));
        }
        bits &= (1 << bit_count) - 1;
    }
    if bit_count > 0 {
        raw.push(symbol((bits << (6 - bit_count)) & 0x3f));
    }
    raw.push('-');

    pending.clear();
}

/// Returns the alphabet character for the low 6 bits of `value`.
fn symbol(value: u32) -> char {
    char::from(ALPHABET[(value & 0x3f) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_rfc_example() {
        let name = decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-");

        assert_eq!(name, Ok("~peter/mail/台北/日本語".to_string()));
    }

    #[test]
    fn encode_rfc_example() {
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
    }

    #[test]
    fn ampersand_escape() {
        assert_eq!(decode("&-"), Ok("&".to_string()));
        assert_eq!(decode("Tom &- Jerry"), Ok("Tom & Jerry".to_string()));
        assert_eq!(encode("&"), "&-");
        assert_eq!(encode("Tom & Jerry"), "Tom &- Jerry");
    }

    #[test]
    fn plain_ascii_unchanged() {
        let ascii: String = (' '..='~').filter(|&ch| ch != '&').collect();

        assert_eq!(encode(&ascii), ascii);
        assert_eq!(decode(&ascii), Ok(ascii.clone()));
    }

    #[test]
    fn emoji_uses_surrogate_pair() {
        // U+1F4E7 is D83D DCE7 in UTF-16.
        let raw = encode("Inbox 📧");

        assert_eq!(raw, "Inbox &2D3c5w-");
        assert_eq!(decode(&raw), Ok("Inbox 📧".to_string()));
    }

    #[test]
    fn latin_name() {
        assert_eq!(decode("Entw&APw-rfe"), Ok("Entwürfe".to_string()));
        assert_eq!(encode("Entwürfe"), "Entw&APw-rfe");
    }

    #[test]
    fn control_character_is_encoded() {
        // DEL and TAB are not printable, so they travel base64-encoded.
        assert_eq!(encode("a\tb"), "a&AAk-b");
        assert_eq!(decode("a&AAk-b"), Ok("a\tb".to_string()));
        assert_eq!(decode(&encode("\u{7f}")), Ok("\u{7f}".to_string()));
    }

    #[test]
    fn empty_name() {
        assert_eq!(decode(""), Ok(String::new()));
        assert_eq!(encode(""), "");
    }

    #[test]
    fn rejects_unencoded_non_ascii() {
        assert_eq!(
            decode("Entwürfe"),
            Err(Utf7Error::NotPrintable {
                offset: 4,
                found: 'ü'
            })
        );
    }

    #[test]
    fn rejects_raw_control_character() {
        assert_eq!(
            decode("a\tb"),
            Err(Utf7Error::NotPrintable {
                offset: 1,
                found: '\t'
            })
        );
    }

    #[test]
    fn rejects_unterminated_run() {
        assert_eq!(
            decode("a&ZeVnLIqe"),
            Err(Utf7Error::Unterminated { offset: 1 })
        );
        assert_eq!(decode("&"), Err(Utf7Error::Unterminated { offset: 0 }));
    }

    #[test]
    fn rejects_ampersand_in_run() {
        assert_eq!(
            decode("&ZeVn&-"),
            Err(Utf7Error::AmpersandInRun { offset: 5 })
        );
    }

    #[test]
    fn rejects_standard_slash() {
        // RFC 2152 UTF-7 uses "/", the IMAP variant uses ",".
        assert_eq!(
            decode("&U/BTFw-"),
            Err(Utf7Error::InvalidBase64 {
                offset: 2,
                found: '/'
            })
        );
    }

    #[test]
    fn rejects_padding_character() {
        assert_eq!(
            decode("&AOk=-"),
            Err(Utf7Error::InvalidBase64 {
                offset: 4,
                found: '='
            })
        );
    }

    #[test]
    fn rejects_partial_code_unit() {
        // "AOkA" carries 24 bits: one unit plus 8 spare bits.
        assert_eq!(
            decode("&AOkA-"),
            Err(Utf7Error::PartialCodeUnit { offset: 0 })
        );
        assert_eq!(decode("&A-"), Err(Utf7Error::PartialCodeUnit { offset: 0 }));
    }

    #[test]
    fn rejects_nonzero_padding() {
        // "AOl" is 0x00E9 followed by the spare bits 01.
        assert_eq!(
            decode("&AOl-"),
            Err(Utf7Error::NonZeroPadding { offset: 0 })
        );
    }

    #[test]
    fn rejects_encoded_ascii() {
        // "AGE" is U+0061, "a".
        assert_eq!(
            decode("x&AGE-"),
            Err(Utf7Error::EncodedAscii {
                offset: 1,
                found: 'a'
            })
        );
        // "ACY" is U+0026, "&", which must be written "&-".
        assert_eq!(
            decode("&ACY-"),
            Err(Utf7Error::EncodedAscii {
                offset: 0,
                found: '&'
            })
        );
    }

    #[test]
    fn rejects_lone_high_surrogate() {
        assert_eq!(
            decode("&2D0-"),
            Err(Utf7Error::UnpairedSurrogate {
                offset: 0,
                unit: 0xd83d
            })
        );
    }

    #[test]
    fn rejects_lone_low_surrogate() {
        assert_eq!(
            decode("&3Oc-"),
            Err(Utf7Error::UnpairedSurrogate {
                offset: 0,
                unit: 0xdce7
            })
        );
    }

    #[test]
    fn rejects_surrogate_split_across_runs() {
        assert_eq!(
            decode("&2D0-x&3Oc-"),
            Err(Utf7Error::UnpairedSurrogate {
                offset: 0,
                unit: 0xd83d
            })
        );
    }

    #[test]
    fn rejects_adjacent_runs() {
        assert_eq!(
            decode("&AOk-&AOk-"),
            Err(Utf7Error::AdjacentRuns { offset: 5 })
        );
    }

    #[test]
    fn run_then_ampersand_allowed() {
        // "&-" after a run is an escaped "&", not a second run.
        assert_eq!(decode("&AOk-&-"), Ok("é&".to_string()));
        assert_eq!(encode("é&"), "&AOk-&-");
    }

    #[test]
    fn error_message_names_offset() {
        let message = Utf7Error::Unterminated { offset: 3 }.to_string();

        assert_eq!(
            message,
            "cannot decode mailbox name: the '&' at offset 3 has no closing '-'"
        );
    }

    #[test]
    fn round_trip_names() {
        let names = [
            "INBOX",
            "Entwürfe",
            "Gesendete Objekte",
            "台北/日本語",
            "a&b&&c",
            "&",
            "📧📨 mail",
            "é",
            "éé",
            "ééé",
            "\u{ffff}",
            "\u{10ffff}",
            "-&-",
        ];
        for name in names {
            let raw = encode(name);
            assert_eq!(decode(&raw), Ok(name.to_string()), "raw {raw:?}");
        }
    }

    #[test]
    fn accepted_raw_reencodes_exactly() {
        // Every sequence of up to 6 symbols from a set that reaches each
        // decoder branch: if it decodes, encoding gives the same bytes.
        let symbols = ["&", "-", "A", "O", "k", ",", "2D3c5w", "x"];
        let mut accepted = 0;
        let mut stack = vec![(String::new(), 0)];
        while let Some((raw, count)) = stack.pop() {
            if let Ok(name) = decode(&raw) {
                accepted += 1;
                assert_eq!(encode(&name), raw, "name {name:?}");
            }
            if count < 6 {
                for symbol in symbols {
                    stack.push((format!("{raw}{symbol}"), count + 1));
                }
            }
        }
        assert!(accepted > 1000, "only {accepted} inputs decoded");
    }
}
