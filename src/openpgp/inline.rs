//! Inline PGP: an ASCII-armored message (RFC 9580 section 6.2) or a
//! cleartext signed block (section 7) inside a text part. Only the block
//! itself is protected, so text around it is listed as a separate,
//! unprotected part with a warning, and the message as a whole counts as
//! encrypted only when the block is all the message contains.

use crate::protection::{Encryption, Layer, Part, Refusal, Warning};

use super::packets::{self, CheckedSignature};
use super::{ArmorKind, InlineResult, Reader, find_armor};

/// Returns whether `bytes` contains anything other than whitespace.
fn has_text(bytes: &[u8]) -> bool {
    bytes.iter().any(|byte| !byte.is_ascii_whitespace())
}

impl Reader<'_> {
    /// Reads the first armored block in the decoded body of a text part.
    /// `whole` is true when the part is the only leaf of the entity.
    pub(super) fn read_inline(
        &mut self,
        text: &[u8],
        content_type: &str,
        layers: &[Layer],
        whole: bool,
    ) -> InlineResult {
        let Some(block) = find_armor(text) else {
            return InlineResult::None;
        };
        let armored = &text[block.start..block.end];
        let surrounded = has_text(&text[..block.start]) || has_text(&text[block.end..]);
        if surrounded {
            self.report
                .add_warning(Warning::UnprotectedTextAroundProtectedPart);
            self.report.parts.push(Part {
                content_type: content_type.to_string(),
                protection: layers.to_vec(),
            });
        }

        let message_level = whole && !surrounded;
        match block.kind {
            ArmorKind::CleartextSigned => {
                self.read_inline_signed(armored, content_type, layers);
                InlineResult::Signed
            }
            ArmorKind::Message => {
                self.read_inline_message(armored, content_type, layers, message_level)
            }
        }
    }

    /// Verifies a cleartext signed block or an armored signed message.
    fn read_inline_signed(&mut self, armored: &[u8], content_type: &str, layers: &[Layer]) {
        let signatures = match packets::verify_inline(armored, self.keyring) {
            Some((_, signatures)) if !signatures.is_empty() => signatures,
            // A signed block that cannot be read is a failed signature, not
            // an unsigned text, because it claims to be signed.
            _ => vec![CheckedSignature::unreadable()],
        };
        for checked in signatures {
            self.record_signature(checked);
        }

        let mut protection = layers.to_vec();
        protection.push(Layer::OpenpgpSigned);
        self.report.parts.push(Part {
            content_type: content_type.to_string(),
            protection,
        });
    }

    /// Decrypts an armored message. An armored message that is signed but
    /// not encrypted is verified instead.
    fn read_inline_message(
        &mut self,
        armored: &[u8],
        content_type: &str,
        layers: &[Layer],
        message_level: bool,
    ) -> InlineResult {
        let opened = match packets::open(armored, self.keyring) {
            Ok(opened) => opened,
            Err(Refusal::Malformed) if !packets::is_encrypted(armored) => {
                self.read_inline_signed(armored, content_type, layers);
                return InlineResult::Signed;
            }
            Err(refusal) => {
                if message_level && self.report.encrypted == Encryption::None {
                    self.report.encrypted = Encryption::Openpgp;
                }
                self.refuse(refusal, armored);
                return InlineResult::Encrypted;
            }
        };

        if message_level {
            if self.report.encrypted == Encryption::None {
                self.report.encrypted = Encryption::Openpgp;
            }
            self.report.decrypted = true;
            self.report.integrity_protected = true;
            self.report.inner_mime = Some(opened.plaintext);
        }
        // NOTE: the plaintext of a block with text around it is not kept in
        // the report, so the view cannot show it yet. A per-part plaintext
        // field in the protection model would lift this.

        let mut protection = layers.to_vec();
        protection.push(Layer::OpenpgpEncrypted);
        if !opened.signatures.is_empty() {
            protection.push(Layer::OpenpgpSigned);
        }
        for checked in opened.signatures {
            self.record_signature(checked);
        }
        self.report.parts.push(Part {
            content_type: content_type.to_string(),
            protection,
        });
        InlineResult::Encrypted
    }
}
