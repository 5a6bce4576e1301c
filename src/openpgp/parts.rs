//! The listing of displayable parts in an entity that is not itself a
//! PGP/MIME layer. Inline PGP in its text parts is read, and a PGP/MIME
//! signed part next to other parts (a mailing list footer, RFC 3156
//! section 5 inside multipart/mixed per RFC 2046 section 5.1.3) is verified
//! for its own parts only. An encrypted part inside multipart/mixed is
//! never decrypted, so unprotected parts around it cannot borrow its
//! protection or leak its plaintext (the EFAIL direct exfiltration attack).

use std::collections::HashSet;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::html::html_to_text;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders};

use crate::protection::{Layer, Part, Warning};

use super::{
    EntityKind, InlineResult, Reader, decoded_body, find_armor, part_kind, split_multipart,
};

/// Returns the lower-case media type of a part, "text/plain" by default
/// (RFC 2045 section 5.2).
fn media_type(part: &MessagePart<'_>) -> String {
    part.content_type()
        .map(|value| {
            let sub = value.subtype().unwrap_or("");
            format!("{}/{}", value.ctype(), sub).to_ascii_lowercase()
        })
        .unwrap_or_else(|| "text/plain".to_string())
}

/// Returns the body of a part with its transfer encoding removed but its
/// charset kept, because an inline signature covers the text as the
/// sender encoded it, not a conversion to UTF-8.
fn transfer_decoded(message: &Message<'_>, part: &MessagePart<'_>) -> Vec<u8> {
    let range = part.raw_body_offset() as usize..part.raw_end_offset() as usize;
    let raw = message.raw_message().get(range).unwrap_or_default();
    let encoding = part
        .content_transfer_encoding()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let decoded = match encoding.as_str() {
        "base64" => base64_decode(raw),
        "quoted-printable" => quoted_printable_decode(raw),
        _ => None,
    };
    decoded.unwrap_or_else(|| raw.to_vec())
}

/// Returns the indices of every part below the part at `index`.
fn descendants(message: &Message<'_>, index: usize) -> Vec<usize> {
    let mut found = Vec::new();
    let mut pending = vec![index];
    while let Some(current) = pending.pop() {
        let children = message
            .parts
            .get(current)
            .and_then(|part| part.sub_parts())
            .unwrap_or_default();
        for child in children {
            let child = *child as usize;
            // mail-parser numbers children after their parent, so a lower
            // index would be a cycle in a malformed tree.
            if child > current {
                found.push(child);
                pending.push(child);
            }
        }
    }
    found
}

impl Reader<'_> {
    /// Lists the displayable parts of an entity without PGP/MIME layers of
    /// its own, and flags protected parts mixed with unprotected ones.
    /// Returns whether an inline encrypted block was found.
    pub(super) fn list_parts(&mut self, message: &Message<'_>, layers: &[Layer]) -> bool {
        let leaf_count = message
            .parts
            .iter()
            .filter(|part| !part.is_multipart())
            .count();
        let whole = leaf_count == 1;
        let mut skipped = HashSet::new();
        let mut entries = 0;
        let mut protected_inside = false;
        let mut encrypted_inside = false;

        for (index, part) in message.parts.iter().enumerate() {
            if skipped.contains(&index) {
                continue;
            }
            if let (true, EntityKind::Signed { boundary }) = (index > 0, part_kind(part)) {
                skipped.extend(descendants(message, index));
                self.read_nested_signed(message, part, &boundary, layers);
                entries += 1;
                protected_inside = true;
                continue;
            }
            if part.is_multipart() {
                continue;
            }

            entries += 1;
            let content_type = media_type(part);
            protected_inside |= content_type == "application/pgp-encrypted"
                || content_type == "application/pgp-signature";
            match self.read_text_part(message, part, &content_type, layers, whole) {
                InlineResult::None => self.report.parts.push(Part {
                    content_type,
                    protection: layers.to_vec(),
                }),
                InlineResult::Signed => protected_inside = true,
                InlineResult::Encrypted => {
                    protected_inside = true;
                    encrypted_inside = true;
                }
            }
        }

        if protected_inside && entries > 1 {
            self.report
                .add_warning(Warning::UnprotectedTextAroundProtectedPart);
        }
        encrypted_inside
    }

    /// Reads inline PGP in a text part that is not an attachment.
    fn read_text_part(
        &mut self,
        message: &Message<'_>,
        part: &MessagePart<'_>,
        content_type: &str,
        layers: &[Layer],
        whole: bool,
    ) -> InlineResult {
        let is_attachment = part
            .content_disposition()
            .is_some_and(|disposition| disposition.is_attachment());
        if !content_type.starts_with("text/") || is_attachment {
            return InlineResult::None;
        }
        let body = transfer_decoded(message, part);
        if content_type == "text/html" && find_armor(&body).is_none() {
            // Some clients put each armor line in its own element, such as
            // <div>...</div><br>, so the block appears only in the text
            // that the HTML renders to. No-break spaces stand for blank
            // lines there.
            let text = part.text_contents().map(html_to_text).unwrap_or_default();
            let text = text.replace('\u{a0}', " ");
            return self.read_inline(text.as_bytes(), content_type, layers, whole);
        }
        self.read_inline(&body, content_type, layers, whole)
    }

    /// Verifies a PGP/MIME signed part that sits next to other parts and
    /// lists the parts it covers as signed. Its content is only listed:
    /// an encrypted entity inside it is not decrypted, because it is not
    /// the whole message.
    fn read_nested_signed(
        &mut self,
        message: &Message<'_>,
        part: &MessagePart<'_>,
        boundary: &str,
        layers: &[Layer],
    ) {
        let range = part.raw_body_offset() as usize..part.raw_end_offset() as usize;
        let body = message.raw_message().get(range).unwrap_or_default();
        let parts = split_multipart(body, boundary);
        let [content, signature_part, ..] = parts.as_slice() else {
            return;
        };

        let signature = decoded_body(signature_part);
        for checked in self.verify_detached(&signature, content) {
            self.record_signature(checked);
        }
        let mut signed_layers = layers.to_vec();
        signed_layers.push(Layer::OpenpgpSigned);
        if let Some(inner) = MessageParser::default().parse(*content) {
            self.list_parts(&inner, &signed_layers);
        }
    }
}
