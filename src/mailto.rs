//! `mailto:` URIs (RFC 6068), as passed by the desktop when Wardmail is the
//! mail handler.
//!
//! Recognised: the addresses in the path, and the `to`, `cc`, `bcc`,
//! `subject`, `body` and `in-reply-to` header fields. Fields that would make
//! the client read local files (`attach`, `attachment` and similar names
//! some clients honoured) are dropped and reported, so that a link on a web
//! page cannot attach a file from the user's disk. Every other field is
//! ignored, as RFC 6068 section 3 allows, and also reported.
//!
//! Written by hand: it is percent-decoding plus a split on `?`, `&` and
//! `=`, and the `url` crate would still leave the RFC 6068 field rules to
//! this module.

/// A composer prefilled from a `mailto:` URI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mailto {
    /// To addresses (path plus `to` fields).
    pub to: Vec<String>,
    /// Cc addresses.
    pub cc: Vec<String>,
    /// Bcc addresses.
    pub bcc: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Body text.
    pub body: String,
    /// Message-ID from `in-reply-to`.
    pub in_reply_to: Option<String>,
    /// Fields dropped because they could attach local files.
    pub dropped_attachments: Vec<String>,
    /// Other fields that were ignored.
    pub ignored: Vec<String>,
}

/// Errors from parsing a `mailto:` URI.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum MailtoError {
    /// The text does not start with `mailto:`.
    #[error("{0:?} is not a mailto: link")]
    NotMailto(String),
    /// A percent sign not followed by two hex digits.
    #[error(
        "invalid percent-encoding in {part:?} of the mailto: link: a % must be followed by two hex digits"
    )]
    BadEscape {
        /// The part of the link that contains it.
        part: String,
    },
    /// The decoded bytes are not UTF-8.
    #[error("the mailto: link does not decode to UTF-8 text")]
    NotUtf8,
}

/// Field names that other clients used to attach local files.
const ATTACHMENT_FIELDS: [&str; 5] = ["attach", "attachment", "attachments", "file", "files"];

impl Mailto {
    /// Parses a `mailto:` URI.
    pub fn parse(uri: &str) -> Result<Mailto, MailtoError> {
        let rest = uri
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("mailto:"))
            .map(|_| &uri[7..])
            .ok_or_else(|| MailtoError::NotMailto(uri.to_owned()))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut mailto = Mailto {
            to: addresses(&decode(path)?),
            ..Mailto::default()
        };

        for field in query.split('&').filter(|f| !f.is_empty()) {
            let (name, value) = field.split_once('=').unwrap_or((field, ""));
            let name = decode(name)?.to_ascii_lowercase();
            let value = decode(value)?;
            match name.as_str() {
                "to" => mailto.to.extend(addresses(&value)),
                "cc" => mailto.cc.extend(addresses(&value)),
                "bcc" => mailto.bcc.extend(addresses(&value)),
                "subject" => mailto.subject = single_line(&value),
                // RFC 6068 section 2: line breaks in body are CRLF-encoded.
                "body" => mailto.body = value.replace("\r\n", "\n"),
                "in-reply-to" => {
                    mailto.in_reply_to = Some(value.trim().trim_matches(['<', '>']).to_owned())
                }
                name if ATTACHMENT_FIELDS.contains(&name) => {
                    mailto.dropped_attachments.push(name.to_owned())
                }
                _ => mailto.ignored.push(name),
            }
        }
        Ok(mailto)
    }

    /// A sentence for the user about dropped attachment fields, if any.
    pub fn attachment_notice(&self) -> Option<String> {
        if self.dropped_attachments.is_empty() {
            return None;
        }
        Some(format!(
            "The link asked to attach files from this computer ({}); Wardmail ignored that. \
             Attach files yourself if they are needed.",
            self.dropped_attachments.join(", ")
        ))
    }
}

/// Replaces line breaks and other control characters with spaces: a
/// subject is one header line, and a link must not be able to add lines.
fn single_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn addresses(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Percent-decodes (RFC 3986 section 2.1) into UTF-8 text. `+` stays a
/// plus sign: RFC 6068 requires spaces to be written as `%20`.
fn decode(text: &str) -> Result<String, MailtoError> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes
                .get(index + 1..index + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            let value = hex
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| MailtoError::BadEscape {
                    part: text.to_owned(),
                })?;
            decoded.push(value);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| MailtoError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailto_full_example() {
        let mailto = Mailto::parse(
            "mailto:lab@example.org,%22Dr%20Lee%22%20%3Clee@example.org%3E?cc=nurse@example.org\
             &bcc=audit@example.org&subject=Results%20%C3%BCbersicht&body=Line%201%0D%0ALine%202\
             &in-reply-to=%3Cabc@example.org%3E",
        )
        .unwrap();
        assert_eq!(
            mailto.to,
            vec!["lab@example.org", "\"Dr Lee\" <lee@example.org>"]
        );
        assert_eq!(mailto.cc, vec!["nurse@example.org"]);
        assert_eq!(mailto.bcc, vec!["audit@example.org"]);
        assert_eq!(mailto.subject, "Results übersicht");
        assert_eq!(mailto.body, "Line 1\nLine 2");
        assert_eq!(mailto.in_reply_to.as_deref(), Some("abc@example.org"));
        assert!(mailto.attachment_notice().is_none());
    }

    #[test]
    fn mailto_drops_attach() {
        let mailto =
            Mailto::parse("MAILTO:a@example.org?attach=/etc/passwd&Attachment=~/.ssh/id_rsa&x-y=1")
                .unwrap();
        assert_eq!(mailto.to, vec!["a@example.org"]);
        assert_eq!(mailto.dropped_attachments, vec!["attach", "attachment"]);
        assert_eq!(mailto.ignored, vec!["x-y"]);
        let notice = mailto.attachment_notice().unwrap();
        assert!(notice.contains("attach, attachment"), "{notice}");
        assert!(!notice.contains("passwd"), "{notice}");
    }

    #[test]
    fn mailto_subject_line_breaks() {
        let mailto =
            Mailto::parse("mailto:a@example.org?subject=Hi%0D%0ABcc:%20x@example.org%09!").unwrap();
        assert_eq!(mailto.subject, "Hi  Bcc: x@example.org !");
    }

    #[test]
    fn mailto_plus_is_literal() {
        let mailto = Mailto::parse("mailto:a+tag@example.org?subject=1+1").unwrap();
        assert_eq!(mailto.to, vec!["a+tag@example.org"]);
        assert_eq!(mailto.subject, "1+1");
    }

    #[test]
    fn mailto_rejects_bad_input() {
        assert!(matches!(
            Mailto::parse("http://x"),
            Err(MailtoError::NotMailto(_))
        ));
        assert_eq!(
            Mailto::parse("mailto:a@example.org?subject=%zz"),
            Err(MailtoError::BadEscape { part: "%zz".into() })
        );
        assert_eq!(
            Mailto::parse("mailto:%ff@example.org"),
            Err(MailtoError::NotUtf8)
        );
        assert!(Mailto::parse("mailto:").unwrap().to.is_empty());
    }
}
