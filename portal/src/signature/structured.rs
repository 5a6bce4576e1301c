//! A strict parser for the subset of Structured Field Values (RFC 9651)
//! that `Signature-Input`, `Signature` and `Content-Digest` use:
//! dictionaries whose members are items or inner lists, with parameters,
//! and integers, strings, tokens, byte sequences and booleans as bare items.
//! Decimals, dates and display strings are rejected.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// A bare item (RFC 9651 section 3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BareItem {
    /// An integer of at most 15 digits.
    Integer(i64),
    /// A string of printable ASCII.
    String(String),
    /// A token.
    Token(String),
    /// A byte sequence.
    Bytes(Vec<u8>),
    /// A boolean.
    Boolean(bool),
}

/// Parameters: keys and values in the order received.
pub type Parameters = Vec<(String, BareItem)>;

/// A dictionary member's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    /// A single item with parameters.
    Item(BareItem, Parameters),
    /// An inner list of items with parameters, and the list's parameters.
    InnerList(Vec<(BareItem, Parameters)>, Parameters),
}

/// Parses a dictionary (RFC 9651 section 4.2.2), keeping members in order.
pub fn parse_dictionary(text: &str) -> Result<Vec<(String, Member)>, String> {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        position: 0,
    };
    parser.skip(b' ');
    let mut members = Vec::new();
    loop {
        let key = parser.key()?;
        let member = if parser.eat(b'=') {
            if parser.peek() == Some(b'(') {
                parser.inner_list()?
            } else {
                let item = parser.bare_item()?;
                Member::Item(item, parser.parameters()?)
            }
        } else {
            Member::Item(BareItem::Boolean(true), parser.parameters()?)
        };
        members.push((key, member));

        parser.skip_ows();
        if parser.peek().is_none() {
            return Ok(members);
        }
        if !parser.eat(b',') {
            return Err(format!("expected a comma at byte {}", parser.position));
        }
        parser.skip_ows();
        if parser.peek().is_none() {
            return Err("trailing comma".into());
        }
    }
}

/// Serializes an inner list with its parameters (RFC 9651 section 4.1.1.1).
pub fn serialize_inner_list(items: &[(BareItem, Parameters)], params: &Parameters) -> String {
    let mut out = String::from("(");
    for (index, (item, item_params)) in items.iter().enumerate() {
        if index > 0 {
            out.push(' ');
        }
        serialize_bare_item(item, &mut out);
        serialize_parameters(item_params, &mut out);
    }
    out.push(')');
    serialize_parameters(params, &mut out);
    out
}

fn serialize_parameters(params: &Parameters, out: &mut String) {
    for (key, value) in params {
        out.push(';');
        out.push_str(key);
        if *value != BareItem::Boolean(true) {
            out.push('=');
            serialize_bare_item(value, out);
        }
    }
}

fn serialize_bare_item(item: &BareItem, out: &mut String) {
    match item {
        BareItem::Integer(value) => out.push_str(&value.to_string()),
        BareItem::String(value) => {
            out.push('"');
            for character in value.chars() {
                if character == '"' || character == '\\' {
                    out.push('\\');
                }
                out.push(character);
            }
            out.push('"');
        }
        BareItem::Token(value) => out.push_str(value),
        BareItem::Bytes(value) => {
            out.push(':');
            out.push_str(&STANDARD.encode(value));
            out.push(':');
        }
        BareItem::Boolean(value) => out.push_str(if *value { "?1" } else { "?0" }),
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let matched = self.peek() == Some(byte);
        if matched {
            self.position += 1;
        }
        matched
    }

    fn skip(&mut self, byte: u8) {
        while self.eat(byte) {}
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.position += 1;
        }
    }

    fn take_while(&mut self, accept: impl Fn(u8) -> bool) -> &str {
        let start = self.position;
        while self.peek().is_some_and(&accept) {
            self.position += 1;
        }
        // Every accepted byte is ASCII, so the slice is valid UTF-8.
        std::str::from_utf8(&self.bytes[start..self.position]).unwrap_or_default()
    }

    fn key(&mut self) -> Result<String, String> {
        if !self
            .peek()
            .is_some_and(|byte| byte.is_ascii_lowercase() || byte == b'*')
        {
            return Err(format!("expected a key at byte {}", self.position));
        }
        Ok(self
            .take_while(|byte| {
                byte.is_ascii_lowercase()
                    || byte.is_ascii_digit()
                    || matches!(byte, b'_' | b'-' | b'.' | b'*')
            })
            .to_owned())
    }

    fn parameters(&mut self) -> Result<Parameters, String> {
        let mut params = Parameters::new();
        while self.eat(b';') {
            self.skip(b' ');
            let key = self.key()?;
            let value = if self.eat(b'=') {
                self.bare_item()?
            } else {
                BareItem::Boolean(true)
            };
            // A repeated key replaces the earlier value in place.
            match params.iter_mut().find(|(existing, _)| *existing == key) {
                Some(slot) => slot.1 = value,
                None => params.push((key, value)),
            }
        }
        Ok(params)
    }

    fn inner_list(&mut self) -> Result<Member, String> {
        self.position += 1;
        let mut items = Vec::new();
        loop {
            self.skip(b' ');
            if self.eat(b')') {
                let params = self.parameters()?;
                return Ok(Member::InnerList(items, params));
            }
            let item = self.bare_item()?;
            items.push((item, self.parameters()?));
            if !matches!(self.peek(), Some(b' ' | b')')) {
                return Err(format!(
                    "expected a space or ')' in an inner list at byte {}",
                    self.position
                ));
            }
        }
    }

    fn bare_item(&mut self) -> Result<BareItem, String> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => self.integer(),
            Some(b'"') => self.string(),
            Some(b':') => self.byte_sequence(),
            Some(b'?') => self.boolean(),
            Some(byte) if byte.is_ascii_alphabetic() || byte == b'*' => Ok(BareItem::Token(
                self.take_while(|byte| {
                    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&byte)
                })
                .to_owned(),
            )),
            _ => Err(format!("expected an item at byte {}", self.position)),
        }
    }

    fn integer(&mut self) -> Result<BareItem, String> {
        let negative = self.eat(b'-');
        let digits = self.take_while(|byte| byte.is_ascii_digit()).to_owned();
        if digits.is_empty() || digits.len() > 15 {
            return Err("an integer must have 1 to 15 digits".into());
        }
        if self.peek() == Some(b'.') {
            return Err("decimals are not accepted".into());
        }
        let value: i64 = digits
            .parse()
            .map_err(|_| format!("invalid integer {digits}"))?;
        Ok(BareItem::Integer(if negative { -value } else { value }))
    }

    fn string(&mut self) -> Result<BareItem, String> {
        self.position += 1;
        let mut value = String::new();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.position += 1;
                    return Ok(BareItem::String(value));
                }
                Some(b'\\') => {
                    self.position += 1;
                    match self.peek() {
                        Some(byte @ (b'"' | b'\\')) => value.push(char::from(byte)),
                        _ => return Err("invalid escape in a string".into()),
                    }
                    self.position += 1;
                }
                Some(byte @ 0x20..=0x7e) => {
                    value.push(char::from(byte));
                    self.position += 1;
                }
                Some(_) => return Err("a string may hold only printable ASCII".into()),
                None => return Err("unterminated string".into()),
            }
        }
    }

    fn byte_sequence(&mut self) -> Result<BareItem, String> {
        self.position += 1;
        let encoded = self
            .take_while(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'='))
            .to_owned();
        if !self.eat(b':') {
            return Err("unterminated byte sequence".into());
        }
        STANDARD
            .decode(encoded)
            .map(BareItem::Bytes)
            .map_err(|_| "a byte sequence is not valid padded base64".into())
    }

    fn boolean(&mut self) -> Result<BareItem, String> {
        self.position += 1;
        let value = match self.peek() {
            Some(b'1') => true,
            Some(b'0') => false,
            _ => return Err("invalid boolean".into()),
        };
        self.position += 1;
        Ok(BareItem::Boolean(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_round_trip() {
        let text =
            r#"sig1=("@method" "@target-uri");created=1;keyid="a\"b";alg="ed25519", sig2=:AAE=:"#;
        let members = parse_dictionary(text).unwrap();
        assert_eq!(members.len(), 2);
        let Member::InnerList(items, params) = &members[0].1 else {
            panic!("sig1 is not an inner list: {:?}", members[0]);
        };
        assert_eq!(
            serialize_inner_list(items, params),
            r#"("@method" "@target-uri");created=1;keyid="a\"b";alg="ed25519""#
        );
        assert_eq!(
            members[1].1,
            Member::Item(BareItem::Bytes(vec![0, 1]), Vec::new())
        );
    }

    #[test]
    fn dictionary_rejections() {
        for text in [
            "sig1=(\"a\"\"b\")",
            "sig1=1.5",
            "Sig1=1",
            "sig1=1,",
            "sig1=\"unterminated",
            "sig1=:not base64!:",
            "sig1=1 sig2=2",
            "sig1=1234567890123456",
        ] {
            assert!(parse_dictionary(text).is_err(), "{text}");
        }
    }
}
