//! The Autocrypt header (Autocrypt Level 1, section 2.1): reading a
//! correspondent's key from incoming mail and writing the user's own.
//!
//! Written here rather than taken from a crate, because no maintained Rust
//! crate covers it. The format is one header field of three attributes.

use mail_parser::decoders::base64::base64_decode;
use mail_parser::{HeaderName, MessageParser};

/// A valid Autocrypt header of an incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The address the key is for, lower-case. It equals the From address.
    pub address: String,
    /// The sender's request to encrypt by default (`prefer-encrypt=mutual`).
    pub prefer_encrypt: bool,
    /// The binary OpenPGP certificate.
    pub keydata: Vec<u8>,
}

/// The result of reading the Autocrypt headers of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// No usable header: none, several, or one that does not apply.
    None,
    /// One valid header for the From address.
    Header(Header),
}

/// Reads the Autocrypt header of a raw message, with the message's
/// effective date (section 2.3: the Date header, but not in the future).
///
/// Returns `Found::None` when the message has no From address or more
/// than one, no Autocrypt header or more than one, an `addr` other than
/// From, or an unknown critical attribute. The specification treats all
/// these as no header.
pub fn read(raw: &[u8], now: i64) -> (Found, Option<String>, i64) {
    let Some(message) = MessageParser::default().parse_headers(raw) else {
        return (Found::None, None, now);
    };
    let date = message
        .date()
        .map_or(now, |date| date.to_timestamp().min(now));
    let from: Vec<String> = message
        .from()
        .map(|from| {
            from.iter()
                .filter_map(|address| address.address())
                .map(str::to_lowercase)
                .collect()
        })
        .unwrap_or_default();
    let [from] = from.as_slice() else {
        return (Found::None, None, date);
    };
    let values: Vec<&str> = message
        .header_values(HeaderName::Other("Autocrypt".into()))
        .filter_map(|value| value.as_text())
        .collect();
    let found = match values.as_slice() {
        [value] => parse(value)
            .filter(|header| header.address == *from)
            .map_or(Found::None, Found::Header),
        _ => Found::None,
    };
    (found, Some(from.clone()), date)
}

/// Parses the value of one Autocrypt header field.
///
/// Returns `None` when `addr` or `keydata` is missing, the key data is not
/// base64, or a critical attribute (one whose name does not begin with an
/// underscore) is unknown. Whitespace inside the key data, left by
/// folding, is ignored.
pub fn parse(value: &str) -> Option<Header> {
    let mut address = None;
    let mut prefer_encrypt = false;
    let mut keydata = None;
    // A trailing semicolon leaves an empty attribute, which carries nothing.
    let attributes = value
        .split(';')
        .filter(|attribute| !attribute.trim().is_empty());
    for attribute in attributes {
        let (name, content) = attribute.trim().split_once('=')?;
        let name = name.trim();
        match name {
            "addr" => address = Some(content.trim().to_lowercase()),
            "prefer-encrypt" => prefer_encrypt = content.trim() == "mutual",
            "keydata" => {
                let compact: String = content.chars().filter(|c| !c.is_whitespace()).collect();
                keydata = Some(base64_decode(compact.as_bytes())?);
            }
            // Non-critical attributes begin with an underscore.
            _ if name.starts_with('_') => {}
            _ => return None,
        }
    }
    Some(Header {
        address: address.filter(|address| address.contains('@'))?,
        prefer_encrypt,
        keydata: keydata.filter(|data| !data.is_empty())?,
    })
}

/// Writes the user's Autocrypt header field, folded at 78 columns and
/// ending with CRLF. `keydata` is the binary certificate to publish.
pub fn header_field(address: &str, prefer_encrypt: bool, keydata: &[u8]) -> String {
    let encoded = openssl::base64::encode_block(keydata);
    let mut field = format!("Autocrypt: addr={address};");
    if prefer_encrypt {
        field.push_str(" prefer-encrypt=mutual;");
    }
    field.push_str(" keydata=\r\n");
    for chunk in encoded.as_bytes().chunks(76) {
        field.push(' ');
        field.push_str(&String::from_utf8_lossy(chunk));
        field.push_str("\r\n");
    }
    field
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let field = header_field("ana@clinic.example", true, &[1, 2, 3, 250]);
        let message = format!("From: ana@clinic.example\r\n{field}\r\nbody\r\n");
        let (found, from, _) = read(message.as_bytes(), 1_000);
        assert_eq!(from.as_deref(), Some("ana@clinic.example"));
        assert_eq!(
            found,
            Found::Header(Header {
                address: "ana@clinic.example".into(),
                prefer_encrypt: true,
                keydata: vec![1, 2, 3, 250],
            })
        );
    }

    #[test]
    fn header_for_another_address_is_ignored() {
        let field = header_field("eve@evil.example", false, &[1]);
        let message = format!("From: ana@clinic.example\r\n{field}\r\nbody\r\n");
        assert_eq!(read(message.as_bytes(), 0).0, Found::None);
    }

    #[test]
    fn two_headers_count_as_none() {
        let field = header_field("ana@clinic.example", false, &[1]);
        let message = format!("From: ana@clinic.example\r\n{field}{field}\r\nbody\r\n");
        assert_eq!(read(message.as_bytes(), 0).0, Found::None);
    }

    #[test]
    fn unknown_critical_attribute_rejects_header() {
        assert!(parse("addr=a@b.example; keydata=AQ==; color=red").is_none());
        assert!(parse("addr=a@b.example; keydata=AQ==; _color=red").is_some());
        assert!(parse("addr=a@b.example").is_none());
    }

    #[test]
    fn trailing_semicolon_is_accepted() {
        let header = parse("addr=a@b.example; keydata=AQ==;").unwrap();
        assert_eq!(header.keydata, vec![1]);
    }

    #[test]
    fn folded_keydata_is_decoded() {
        let header = parse("addr=a@b.example; keydata=\r\n AQID\r\n\t+g==").unwrap();
        assert_eq!(header.keydata, vec![1, 2, 3, 250]);
    }

    #[test]
    fn invalid_keydata_rejects_header() {
        assert!(parse("addr=a@b.example; keydata=AQ*!").is_none());
    }

    #[test]
    fn future_date_is_clamped_to_now() {
        let message = b"From: a@b.example\r\nDate: Thu, 1 Jan 2099 00:00:00 +0000\r\n\r\nx";
        assert_eq!(read(message, 500).2, 500);
    }
}
