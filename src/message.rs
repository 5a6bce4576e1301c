//! Read model of one received message: envelope, body text, attachments and
//! the problems met while reading it.
//!
//! mail-parser 0.11 does the parsing: header fields (RFC 5322 section 3.6),
//! MIME structure and transfer encodings (RFC 2045 and RFC 2046), encoded
//! words (RFC 2047) and parameter values (RFC 2231). This module chooses the
//! text to show, preferring text/plain over text/html in a
//! multipart/alternative (RFC 2046 section 5.1.4), turns HTML into plain text
//! without fetching anything, lists the attachments, and states in plain
//! sentences what could not be read.
//!
//! No function here returns an error, and none is known to panic: the
//! corpus tests feed them malformed and truncated messages. A message that
//! cannot be fully read yields the header fields and text that could be read,
//! and [`ParsedMessage::problems`] lists what is missing. Part numbers in those
//! sentences and in [`AttachmentInfo::index`] are mail-parser part ids: 0 is
//! the whole message, then each MIME part in the order it appears.

use std::{borrow::Cow, fmt};

use mail_parser::{
    Addr, DateTime, Encoding, HeaderName, HeaderValue, Message, MessageParser, MessagePart,
    MimeHeaders, PartType,
    decoders::{
        base64::base64_decode, charsets::map::charset_decoder, html::html_to_text,
        quoted_printable::quoted_printable_decode,
    },
};
use serde::{Deserialize, Serialize};

/// One mailbox from an address header field (RFC 5322 section 3.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Address {
    /// Display name, with RFC 2047 encoded words decoded.
    pub name: Option<String>,
    /// The address itself, `local-part@domain`.
    pub email: String,
}

impl Address {
    /// Creates an address. A blank name becomes `None`.
    pub fn new(name: Option<&str>, email: &str) -> Self {
        let name = name.map(str::trim).filter(|name| !name.is_empty());
        Self {
            name: name.map(str::to_string),
            email: email.trim().to_string(),
        }
    }

    /// Returns whether both name the same mailbox. The display names are
    /// ignored and the addresses are compared case-insensitively.
    pub fn is_same_mailbox(&self, other: &Address) -> bool {
        self.email.to_lowercase() == other.email.to_lowercase()
    }
}

/// Writes `Name <email>`, or `email` when there is no name. A name that
/// contains RFC 5322 specials such as "," is quoted, so the output can be
/// parsed back as one address.
impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) if name.contains(SPECIALS) => {
                let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
                write!(f, "\"{escaped}\" <{}>", self.email)
            }
            Some(name) => write!(f, "{name} <{}>", self.email),
            None => f.write_str(&self.email),
        }
    }
}

/// Characters that RFC 5322 section 3.2.3 does not allow in an unquoted
/// display name. The "." is left out: the obsolete phrase syntax of section
/// 4.1 allows it, and unquoted names such as "Dr. Ann Example" are common.
const SPECIALS: [char; 12] = ['(', ')', '<', '>', '[', ']', ':', ';', '@', '\\', ',', '"'];

/// Summary of a message for the message list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Decoded Subject, or empty when there is none.
    pub subject: String,
    /// Authors from the From header field.
    pub from: Vec<Address>,
    /// Primary recipients.
    pub to: Vec<Address>,
    /// Carbon-copy recipients.
    pub cc: Vec<Address>,
    /// Origination date in Unix seconds (UTC), or `None` when the Date header
    /// field is missing or unreadable.
    pub date: Option<i64>,
    /// Message-ID without the angle brackets.
    pub message_id: Option<String>,
    /// Whether the message has at least one attachment. From a header block
    /// alone this is a guess: true when the Content-Type is multipart/mixed.
    pub has_attachments: bool,
}

/// Everything the message view and the composer need from one message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedMessage {
    /// Header summary. For a whole message it equals what
    /// [`parse_envelope`] returns.
    pub envelope: Envelope,
    /// The Sender header field when it names a mailbox other than the first
    /// author, so the view can show "on behalf of".
    pub sender: Option<Address>,
    /// Addresses from the Reply-To header field.
    pub reply_to: Vec<Address>,
    /// Message ids from In-Reply-To, without angle brackets.
    pub in_reply_to: Vec<String>,
    /// Message ids from References, oldest first, without angle brackets.
    pub references: Vec<String>,
    /// Body as plain text with LF line ends and no trailing whitespace.
    pub text: String,
    /// Whether some of `text` was converted from text/html.
    pub text_from_html: bool,
    /// Attachments in the order they appear.
    pub attachments: Vec<AttachmentInfo>,
    /// Sentences for the user, each saying what could not be read or is
    /// doubtful, such as a repeated Subject.
    pub problems: Vec<String>,
}

/// One attachment of a message, without its content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentInfo {
    /// Part id to pass to [`attachment_content`].
    pub index: usize,
    /// Decoded file name without any directory part. Parts without a name
    /// get `attachment-N.ext`, with N counting attachments from 1.
    pub filename: String,
    /// Lower-case `type/subtype`.
    pub content_type: String,
    /// Size in bytes after transfer decoding.
    pub size: usize,
}

/// Parses the header fields of a message into an [`Envelope`].
///
/// Accepts the header block that IMAP returns for
/// `BODY.PEEK[HEADER.FIELDS (...)]`, with or without its final blank line,
/// or a whole message. Returns an empty envelope when no header field can be
/// read.
pub fn parse_envelope(header_block: &[u8]) -> Envelope {
    let raw = with_final_line_break(header_block);
    let Some(message) = MessageParser::default().parse(raw.as_ref()) else {
        return Envelope::default();
    };

    let has_attachments =
        !collect_attachments(&raw, &message).is_empty() || declares_attachments(&raw, &message);
    envelope_of(&message, has_attachments)
}

/// Parses a whole message (RFC 5322 with MIME) into the read model.
pub fn parse(raw: &[u8]) -> ParsedMessage {
    let raw = with_final_line_break(raw);
    let raw = raw.as_ref();
    let Some(message) = MessageParser::default().parse(raw) else {
        return unreadable(raw);
    };

    let attachments = collect_attachments(raw, &message);
    let (text, text_from_html) = body_text(&message);

    let mut problems = Vec::new();
    check_header_fields(&message, &mut problems);
    check_parts(raw, &message, &mut problems);

    let envelope = envelope_of(&message, !attachments.is_empty());
    let sender = address_field(&message, HeaderName::Sender)
        .into_iter()
        .next()
        .filter(|sender| {
            envelope
                .from
                .first()
                .is_none_or(|from| !from.is_same_mailbox(sender))
        });

    ParsedMessage {
        sender,
        reply_to: address_field(&message, HeaderName::ReplyTo),
        in_reply_to: message_ids(message.in_reply_to()),
        references: message_ids(message.references()),
        envelope,
        text,
        text_from_html,
        attachments,
        problems,
    }
}

/// Parses the decrypted or verified inner MIME entity of a protected
/// message. The header fields shown (From, To, Date, Subject) stay those
/// of the outer message, because an inner entity usually carries only
/// Content-Type; the body, attachments and part problems come from the
/// inner entity.
pub fn parse_inner(outer: &ParsedMessage, inner: &[u8]) -> ParsedMessage {
    let inner = with_final_line_break(inner);
    let inner = inner.as_ref();
    let Some(message) = MessageParser::default().parse(inner) else {
        let mut unreadable = outer.clone();
        unreadable.text = String::new();
        unreadable.attachments = Vec::new();
        unreadable
            .problems
            .push("the decrypted content cannot be read as MIME".to_string());
        return unreadable;
    };
    let attachments = collect_attachments(inner, &message);
    let (text, text_from_html) = body_text(&message);
    let mut problems = Vec::new();
    check_parts(inner, &message, &mut problems);
    let envelope = protected_envelope(&outer.envelope, &message, !attachments.is_empty());
    ParsedMessage {
        envelope,
        text,
        text_from_html,
        attachments,
        problems,
        ..outer.clone()
    }
}

/// Merges header fields protected inside the encrypted or signed entity
/// (RFC 9788 and its draft predecessor) over the outer ones: where the
/// inner entity carries Subject, From, To, Cc or Date, that value is the
/// one the sender protected, and the outer one (often "..." or "[...]")
/// is only for transport.
fn protected_envelope(outer: &Envelope, inner: &Message<'_>, has_attachments: bool) -> Envelope {
    let protected = envelope_of(inner, has_attachments);
    let pick = |inner: Vec<Address>, outer: &Vec<Address>| {
        if inner.is_empty() {
            outer.clone()
        } else {
            inner
        }
    };
    Envelope {
        subject: if inner.subject().is_some() {
            protected.subject
        } else {
            outer.subject.clone()
        },
        from: pick(protected.from, &outer.from),
        to: pick(protected.to, &outer.to),
        cc: pick(protected.cc, &outer.cc),
        date: protected.date.or(outer.date),
        message_id: outer.message_id.clone(),
        has_attachments,
    }
}

/// Returns the transfer-decoded bytes of one attachment, or `None` when the
/// message has no attachment with that part id.
///
/// A message/rfc822 attachment yields the enclosed message as it was sent.
/// A text attachment yields its bytes in its own charset, not converted.
pub fn attachment_content(raw: &[u8], index: usize) -> Option<Vec<u8>> {
    let raw = with_final_line_break(raw);
    let raw = raw.as_ref();
    let message = MessageParser::default().parse(raw)?;
    let part = message.parts.get(index)?;
    if !is_attachment(&message, index, part) {
        return None;
    }
    Some(part_content(raw, part).into_owned())
}

/// Returns the body quoted for a reply: every line prefixed with "> ", or
/// with ">" alone when the line is empty or already quoted.
pub fn quoted_text(message: &ParsedMessage) -> String {
    let mut quoted = String::with_capacity(message.text.len() + message.text.len() / 8);
    for line in message.text.trim_end().lines() {
        if line.is_empty() || line.starts_with('>') {
            quoted.push('>');
        } else {
            quoted.push_str("> ");
        }
        quoted.push_str(line);
        quoted.push('\n');
    }
    quoted
}

/// Appends a line break to input that ends inside its header section.
/// mail-parser drops a last header field that has no line break after it,
/// which would lose a field of a header block trimmed by the caller.
fn with_final_line_break(raw: &[u8]) -> Cow<'_, [u8]> {
    let has_body = contains(raw, b"\n\n") || contains(raw, b"\n\r\n");
    if has_body || raw.is_empty() || raw.ends_with(b"\n") {
        return Cow::Borrowed(raw);
    }
    let mut padded = raw.to_vec();
    padded.extend_from_slice(b"\r\n");
    Cow::Owned(padded)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Read model for input in which mail-parser found no header field at all.
fn unreadable(raw: &[u8]) -> ParsedMessage {
    let text = normalize_newlines(&String::from_utf8_lossy(raw));
    let problem = if text.trim().is_empty() {
        "the message is empty"
    } else {
        "no header fields could be read; the whole message is shown as text"
    };

    ParsedMessage {
        text: text.trim_end().to_string(),
        problems: vec![problem.to_string()],
        ..ParsedMessage::default()
    }
}

fn envelope_of(message: &Message<'_>, has_attachments: bool) -> Envelope {
    Envelope {
        subject: message.subject().map(single_line).unwrap_or_default(),
        from: address_field(message, HeaderName::From),
        to: address_field(message, HeaderName::To),
        cc: address_field(message, HeaderName::Cc),
        date: message
            .date()
            .filter(|date| date.is_valid())
            .map(DateTime::to_timestamp),
        message_id: message
            .message_id()
            .map(strip_angle_brackets)
            .filter(|id| !id.is_empty())
            .map(str::to_string),
        has_attachments,
    }
}

/// Returns whether a header-only input declares multipart/mixed, the usual
/// container of attachments. A whole message is judged by its parts instead.
fn declares_attachments(raw: &[u8], message: &Message<'_>) -> bool {
    let Some(root) = message.parts.first() else {
        return false;
    };
    let body = raw.get(root.offset_body as usize..).unwrap_or_default();

    message.parts.len() == 1
        && body.iter().all(u8::is_ascii_whitespace)
        && root.is_content_type("multipart", "mixed")
}

/// Collects the mailboxes of every header field called `name`, with groups
/// flattened. Entries without an address, such as an empty group, are left
/// out.
fn address_field<'x>(message: &Message<'x>, name: HeaderName<'x>) -> Vec<Address> {
    message
        .header_values(name)
        .filter_map(HeaderValue::as_address)
        .flat_map(|field| field.iter())
        .filter_map(convert_address)
        .collect()
}

fn convert_address(addr: &Addr<'_>) -> Option<Address> {
    let email: String = addr
        .address()?
        .chars()
        .filter(|ch| !ch.is_whitespace() && !ch.is_control())
        .collect();
    if email.is_empty() {
        return None;
    }
    let name = addr.name().map(single_line);
    Some(Address::new(name.as_deref(), &email))
}

fn message_ids(value: &HeaderValue<'_>) -> Vec<String> {
    let ids: Vec<&str> = match value {
        HeaderValue::Text(id) => vec![id.as_ref()],
        HeaderValue::TextList(list) => list.iter().map(AsRef::as_ref).collect(),
        _ => Vec::new(),
    };
    ids.into_iter()
        .map(strip_angle_brackets)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect()
}

fn strip_angle_brackets(id: &str) -> &str {
    let id = id.trim();
    let id = id.strip_prefix('<').unwrap_or(id);
    id.strip_suffix('>').unwrap_or(id).trim()
}

/// Replaces control characters, including line breaks that encoded words
/// can smuggle into a header field, with spaces.
fn single_line(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|ch| if ch.is_control() { ' ' } else { ch })
        .collect();
    line.trim().to_string()
}

fn normalize_newlines(text: &str) -> String {
    text.replace("\r\n", "\n")
}

// Attachments

/// Lists the attachments: message/rfc822 parts, parts with
/// "Content-Disposition: attachment", every non-text part (inline images
/// too), and text parts that are not shown as the body, such as
/// text/calendar.
fn collect_attachments(raw: &[u8], message: &Message<'_>) -> Vec<AttachmentInfo> {
    let mut attachments = Vec::new();

    for (index, part) in message.parts.iter().enumerate() {
        if !is_attachment(message, index, part) {
            continue;
        }
        let content_type = content_type_of(part);
        let filename = part
            .attachment_name()
            .and_then(clean_filename)
            .unwrap_or_else(|| {
                let number = attachments.len() + 1;
                format!("attachment-{number}.{}", extension_for(&content_type))
            });
        attachments.push(AttachmentInfo {
            index,
            filename,
            content_type,
            size: part_content(raw, part).len(),
        });
    }

    attachments
}

fn is_attachment(message: &Message<'_>, index: usize, part: &MessagePart<'_>) -> bool {
    match part.body {
        PartType::Multipart(_) => return false,
        PartType::Message(_) => return true,
        _ => {}
    }
    // A message/rfc822 part that failed to parse is kept as raw data.
    if is_message_type(part)
        || part
            .content_disposition()
            .is_some_and(|d| d.is_attachment())
    {
        return true;
    }
    if is_recovered_body(index, part) {
        return false;
    }

    // Every non-text part is listed, inline images included, because the
    // plain-text view cannot show them and nothing may go missing.
    match part.body {
        PartType::Text(_) | PartType::Html(_) => !is_listed_body(message, index),
        _ => true,
    }
}

fn is_listed_body(message: &Message<'_>, index: usize) -> bool {
    let id = u32::try_from(index).unwrap_or(u32::MAX);
    message.text_body.contains(&id) || message.html_body.contains(&id)
}

/// Returns whether a part that mail-parser leaves off its body lists is
/// still shown as body text. That holds for a single-part message of an odd
/// text type, such as a bare "Content-Type: text", and for a multipart one
/// whose parts could not be separated. It also holds for a text/plain or
/// text/html part that mail-parser could not decode or that runs to the end
/// of a truncated message. Parts with a file name or with
/// "Content-Disposition: attachment" are never body text.
fn is_recovered_body(index: usize, part: &MessagePart<'_>) -> bool {
    if part.attachment_name().is_some()
        || part
            .content_disposition()
            .is_some_and(|d| d.is_attachment())
    {
        return false;
    }
    let is_text = matches!(part.body, PartType::Text(_) | PartType::Html(_));
    let declared_multipart = part
        .content_type()
        .is_some_and(|ct| ct.ctype().eq_ignore_ascii_case("multipart"));
    let plain_or_html = part.content_type().is_none()
        || part.is_content_type("text", "plain")
        || part.is_content_type("text", "html");

    (index == 0 && (is_text || declared_multipart))
        || (is_text && part.is_encoding_problem && plain_or_html)
}

fn is_message_type(part: &MessagePart<'_>) -> bool {
    part.is_content_type("message", "rfc822") || part.is_content_type("message", "global")
}

fn content_type_of(part: &MessagePart<'_>) -> String {
    let declared = part.content_type().map(|ct| (ct.ctype(), ct.subtype()));
    let content_type = match declared {
        Some((main, Some(sub))) => format!("{main}/{sub}"),
        Some((main, None)) if main.eq_ignore_ascii_case("text") => "text/plain".to_string(),
        Some((_, None)) => "application/octet-stream".to_string(),
        None => match part.body {
            PartType::Message(_) => "message/rfc822".to_string(),
            PartType::Text(_) | PartType::Html(_) => "text/plain".to_string(),
            _ => "application/octet-stream".to_string(),
        },
    };
    content_type.to_ascii_lowercase()
}

/// Keeps the last path component of a file name and drops control
/// characters and leading dots, so saving it cannot leave the chosen folder
/// or create a hidden file.
fn clean_filename(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let base: String = base.chars().filter(|ch| !ch.is_control()).collect();
    let base = base.trim().trim_start_matches('.').trim_start();
    (!base.is_empty()).then(|| base.to_string())
}

fn extension_for(content_type: &str) -> &'static str {
    match content_type {
        "text/plain" => "txt",
        "text/html" => "html",
        "text/calendar" => "ics",
        "text/csv" => "csv",
        "text/vcard" | "text/x-vcard" => "vcf",
        "text/xml" | "application/xml" => "xml",
        "message/rfc822" | "message/global" => "eml",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/tiff" => "tif",
        "application/pdf" => "pdf",
        "application/zip" => "zip",
        "application/json" => "json",
        "application/dicom" => "dcm",
        "application/msword" => "doc",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "application/pgp-signature" | "application/pgp-keys" | "application/pgp-encrypted" => "asc",
        "application/pkcs7-signature" | "application/x-pkcs7-signature" => "p7s",
        "application/pkcs7-mime" | "application/x-pkcs7-mime" => "p7m",
        _ if content_type.starts_with("text/") => "txt",
        _ => "bin",
    }
}

/// Returns the transfer-decoded content of a leaf part.
fn part_content<'a>(raw: &'a [u8], part: &'a MessagePart<'_>) -> Cow<'a, [u8]> {
    match &part.body {
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => Cow::Borrowed(bytes.as_ref()),
        // An unencoded enclosed message is a slice of `raw`. A base64 or
        // quoted-printable one was decoded by mail-parser into its own buffer.
        PartType::Message(nested) => match part.encoding {
            Encoding::None => Cow::Borrowed(part_range(raw, part)),
            _ => Cow::Borrowed(nested.raw_message.as_ref()),
        },
        // mail-parser already converted text to UTF-8, so decode the
        // original bytes again to keep the attachment as it was sent.
        PartType::Text(text) | PartType::Html(text) => match transfer_decoded(raw, part) {
            Some(bytes) => Cow::Owned(bytes),
            None => Cow::Borrowed(text.as_bytes()),
        },
        PartType::Multipart(_) => Cow::Borrowed(&[]),
    }
}

fn transfer_decoded(raw: &[u8], part: &MessagePart<'_>) -> Option<Vec<u8>> {
    let encoded = part_range(raw, part);
    match part.encoding {
        Encoding::None => Some(encoded.to_vec()),
        Encoding::Base64 => base64_decode(encoded),
        Encoding::QuotedPrintable => quoted_printable_decode(encoded),
    }
}

fn part_range<'a>(raw: &'a [u8], part: &MessagePart<'_>) -> &'a [u8] {
    raw.get(part.offset_body as usize..part.offset_end as usize)
        .unwrap_or_default()
}

// Body text

/// Returns the text to show and whether any of it came from HTML. Uses the
/// plain-text parts, then the HTML parts when those hold no text.
fn body_text(message: &Message<'_>) -> (String, bool) {
    let recovered: Vec<u32> = message
        .parts
        .iter()
        .enumerate()
        .filter(|(index, part)| is_recovered_body(*index, part))
        .filter_map(|(index, _)| u32::try_from(index).ok())
        .collect();

    let plain = join_parts(message, &merged(&message.text_body, &recovered));
    if !plain.0.is_empty() {
        return plain;
    }
    join_parts(message, &merged(&message.html_body, &recovered))
}

/// Returns whether a part is a legacy display element (RFC 9788 section
/// 4.5.3): a copy of the protected header fields for readers that do not
/// know header protection. It is hidden when the payload declares header
/// protection (an `hp` parameter on its root), because the protected
/// fields are then shown in the header block instead.
fn is_legacy_display(message: &Message<'_>, part: &MessagePart<'_>) -> bool {
    let declares_hp = message
        .root_part()
        .content_type()
        .is_some_and(|content_type| content_type.attribute("hp").is_some());
    declares_hp
        && part
            .content_type()
            .and_then(|content_type| content_type.attribute("hp-legacy-display"))
            .is_some_and(|value| value.trim() == "1")
}

/// Returns the ids of both lists in message order, without repeats.
fn merged(listed: &[u32], recovered: &[u32]) -> Vec<u32> {
    let mut ids = [listed, recovered].concat();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Joins the text of the given parts with blank lines, skipping
/// attachments, and returns whether any joined text came from HTML.
fn join_parts(message: &Message<'_>, ids: &[u32]) -> (String, bool) {
    let mut pieces = Vec::new();
    let mut from_html = false;

    for &id in ids {
        let id = id as usize;
        let Some(part) = message.parts.get(id) else {
            continue;
        };
        if is_attachment(message, id, part) || is_legacy_display(message, part) {
            continue;
        }
        let piece = match &part.body {
            PartType::Text(text) => normalize_newlines(text),
            PartType::Html(html) => {
                let piece = html_to_plain_text(html);
                from_html |= !piece.trim().is_empty();
                piece
            }
            // A multipart whose parts could not be separated.
            PartType::Binary(bytes) if is_recovered_body(id, part) => {
                normalize_newlines(&String::from_utf8_lossy(bytes))
            }
            _ => continue,
        };
        let piece = piece.trim_end();
        if !piece.is_empty() {
            pieces.push(piece.to_string());
        }
    }

    (pieces.join("\n\n"), from_html)
}

/// Converts HTML to plain text. Script, style and other non-content
/// elements are dropped with their content, links keep only their visible
/// text, and no resource is fetched.
fn html_to_plain_text(html: &str) -> String {
    let text = html_to_text(&simplify_html(html));

    let mut plain = String::with_capacity(text.len());
    let mut blank_lines = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            blank_lines += 1;
            continue;
        }
        if !plain.is_empty() {
            plain.push_str(if blank_lines > 0 { "\n\n" } else { "\n" });
        }
        plain.push_str(line);
        blank_lines = 0;
    }
    plain
}

/// Elements whose content is never text for the reader. mail-parser's
/// converter only recognises them when the tag has no attributes. The head
/// element is not among them because an HTML parser moves stray text in it
/// to the body.
const HIDDEN_ELEMENTS: [&str; 5] = ["script", "style", "template", "title", "svg"];

/// Elements that start a new line. "br" and "p" are handled on their own.
const BLOCK_ELEMENTS: [&str; 26] = [
    "address",
    "article",
    "aside",
    "blockquote",
    "center",
    "dd",
    "div",
    "dl",
    "dt",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "main",
    "nav",
    "ol",
    "pre",
    "section",
    "table",
    "tr",
];

/// Rewrites HTML into text plus `<br>` tags, the only markup that
/// mail-parser's `html_to_text` then needs to read. Hidden elements,
/// comments and all other tags are removed, and block elements become line
/// breaks. A "<" that starts no tag becomes "&lt;", so it survives as text.
fn simplify_html(html: &str) -> String {
    let mut output = SimpleHtml::default();
    let mut rest = html;

    while let Some(start) = rest.find('<') {
        output.push_text(&rest[..start]);
        let markup = &rest[start..];
        let consumed = match read_tag(markup) {
            Markup::Text => {
                output.push_text("&lt;");
                1
            }
            Markup::Skip(length) => length,
            Markup::Tag {
                name,
                closing,
                length,
            } => {
                output.push_tag(&name, closing);
                if closing {
                    length
                } else {
                    length + hidden_content_length(&name, &markup[length..])
                }
            }
        };
        rest = &markup[consumed..];
    }
    output.push_text(rest);

    output.html
}

/// Output of [`simplify_html`]. Line breaks wait until the next text, so
/// that nested or adjacent block elements give one break, not several.
#[derive(Default)]
struct SimpleHtml {
    html: String,
    pending: LineBreak,
    has_text: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum LineBreak {
    #[default]
    None,
    Line,
    Paragraph,
}

impl SimpleHtml {
    fn push_text(&mut self, text: &str) {
        if !text.trim().is_empty() {
            self.flush_break();
            self.has_text = true;
        }
        self.html.push_str(text);
    }

    fn push_tag(&mut self, name: &str, closing: bool) {
        match name {
            // Two <br> in a row leave a blank line.
            "br" if self.pending == LineBreak::None => self.pending = LineBreak::Line,
            "br" | "p" => self.pending = LineBreak::Paragraph,
            "li" if !closing => {
                self.pending = self.pending.max(LineBreak::Line);
                self.push_text("- ");
            }
            "td" | "th" => self.html.push(' '),
            _ if BLOCK_ELEMENTS.contains(&name) => {
                self.pending = self.pending.max(LineBreak::Line);
            }
            _ => {}
        }
    }

    /// Writes the pending break, unless no text came before it.
    fn flush_break(&mut self) {
        if self.has_text {
            match self.pending {
                LineBreak::None => {}
                LineBreak::Line => self.html.push_str("<br>"),
                LineBreak::Paragraph => self.html.push_str("<br><br>"),
            }
        }
        self.pending = LineBreak::None;
    }
}

/// Kind of markup that a "<" starts. Lengths are in bytes from the "<".
enum Markup {
    /// Not markup: the "<" is text.
    Text,
    /// A comment, declaration or processing instruction to drop.
    Skip(usize),
    /// An element tag with its lower-case name.
    Tag {
        name: String,
        closing: bool,
        length: usize,
    },
}

fn read_tag(markup: &str) -> Markup {
    if let Some(comment) = markup.strip_prefix("<!--") {
        let end = comment
            .find("-->")
            .map_or(markup.len(), |at| "<!--".len() + at + "-->".len());
        return Markup::Skip(end);
    }
    let bytes = markup.as_bytes();
    if matches!(bytes.get(1), Some(b'!' | b'?')) {
        return Markup::Skip(markup.find('>').map_or(markup.len(), |at| at + 1));
    }

    let closing = bytes.get(1) == Some(&b'/');
    let name_start = if closing { 2 } else { 1 };
    if !bytes.get(name_start).is_some_and(u8::is_ascii_alphabetic) {
        return Markup::Text;
    }
    let name_length = bytes[name_start..]
        .iter()
        .take_while(|byte| byte.is_ascii_alphanumeric())
        .count();
    let name = markup[name_start..name_start + name_length].to_ascii_lowercase();

    Markup::Tag {
        name,
        closing,
        length: tag_length(bytes, name_start + name_length),
    }
}

/// Returns the length up to and including the ">" that ends the tag,
/// skipping quoted attribute values. An unterminated tag runs to the end.
fn tag_length(bytes: &[u8], from: usize) -> usize {
    let mut quote = None;
    let mut previous = 0u8;

    for (at, &byte) in bytes.iter().enumerate().skip(from) {
        match quote {
            Some(open) if byte == open => quote = None,
            Some(_) => {}
            None if byte == b'>' => return at + 1,
            None if (byte == b'"' || byte == b'\'') && previous == b'=' => quote = Some(byte),
            None => {}
        }
        if !byte.is_ascii_whitespace() {
            previous = byte;
        }
    }
    bytes.len()
}

/// Returns how many bytes of `after_tag` belong to a hidden element that
/// the opening tag `name` starts, including its closing tag.
fn hidden_content_length(name: &str, after_tag: &str) -> usize {
    if !HIDDEN_ELEMENTS.contains(&name) {
        return 0;
    }
    let closing_tag = format!("</{name}");
    match find_ignore_ascii_case(after_tag, &closing_tag) {
        Some(at) => {
            let tail = &after_tag.as_bytes()[at..];
            at + tag_length(tail, closing_tag.len())
        }
        // An unclosed hidden element hides everything after it, as in a
        // browser.
        None => after_tag.len(),
    }
}

fn find_ignore_ascii_case(haystack: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

// Problems

/// Header fields that RFC 5322 section 3.6 allows at most once, with how a
/// repeat is read. This module reads every occurrence of an address field.
/// For the other fields mail-parser returns the last occurrence.
const SINGLE_FIELDS: [(HeaderName<'static>, &str); 10] = [
    (HeaderName::From, "all their addresses are shown"),
    (HeaderName::Sender, "the first is shown"),
    (HeaderName::ReplyTo, "all their addresses are used"),
    (HeaderName::To, "all their addresses are shown"),
    (HeaderName::Cc, "all their addresses are shown"),
    (HeaderName::Subject, "the last one is shown"),
    (HeaderName::Date, "the last one is used"),
    (HeaderName::MessageId, "the last one is used"),
    (HeaderName::InReplyTo, "the last one is used"),
    (HeaderName::References, "the last one is used"),
];

/// MIME header fields that RFC 2045 allows once per part, each with whether
/// mail-parser reads it into a `ContentType` value. mail-parser uses the last
/// occurrence, and it leaves a structured field that it cannot parse empty.
const SINGLE_MIME_FIELDS: [(HeaderName<'static>, bool); 3] = [
    (HeaderName::ContentType, true),
    (HeaderName::ContentTransferEncoding, false),
    (HeaderName::ContentDisposition, true),
];

fn check_header_fields(message: &Message<'_>, problems: &mut Vec<String>) {
    for (name, reading) in &SINGLE_FIELDS {
        let count = message
            .headers()
            .iter()
            .filter(|header| &header.name == name)
            .count();
        if count > 1 {
            let name = name.as_str();
            add_problem(
                problems,
                format!("the message has {count} {name} headers; {reading}"),
            );
        }
    }

    if address_field(message, HeaderName::From).is_empty() {
        add_problem(
            problems,
            "the From header is missing or unreadable".to_string(),
        );
    }
    match message.header(HeaderName::Date) {
        None => add_problem(problems, "no Date header".to_string()),
        Some(HeaderValue::DateTime(date)) if date.is_valid() => {}
        Some(_) => add_problem(
            problems,
            "the Date header cannot be read as a date".to_string(),
        ),
    }
}

fn check_parts(raw: &[u8], message: &Message<'_>, problems: &mut Vec<String>) {
    let parents = parent_ids(message);

    for (index, part) in message.parts.iter().enumerate() {
        check_mime_fields(index, part, problems);
        check_multipart(raw, index, part, problems);
        // The charset matters only for text that is shown; attachments are
        // saved as they are.
        if !is_attachment(message, index, part) {
            check_charset(index, part, problems);
        }
        if !part.is_encoding_problem {
            continue;
        }
        if index == 0 && message.parts.len() == 1 && part.offset_body as usize >= raw.len() {
            // mail-parser marks a header section that ends without a blank
            // line this way.
            add_problem(problems, "the message has no body".to_string());
        } else {
            let parent = parents.get(index).copied().flatten();
            check_encoding(raw, message, parent, index, part, problems);
        }
    }
}

fn check_mime_fields(index: usize, part: &MessagePart<'_>, problems: &mut Vec<String>) {
    let label = part_label(index);
    for (name, structured) in &SINGLE_MIME_FIELDS {
        let fields: Vec<&HeaderValue<'_>> = part
            .headers
            .iter()
            .filter(|header| &header.name == name)
            .map(|header| &header.value)
            .collect();
        let name = name.as_str();
        if fields.len() > 1 {
            let count = fields.len();
            let problem = format!("{label} has {count} {name} headers; the last one is used");
            add_problem(problems, problem);
        }
        if *structured
            && fields
                .last()
                .is_some_and(|value| value.as_content_type().is_none())
        {
            add_problem(problems, format!("{label} has an unreadable {name} header"));
        }
    }
}

/// Maps each part id to the id of the multipart that contains it.
fn parent_ids(message: &Message<'_>) -> Vec<Option<usize>> {
    let mut parents = vec![None; message.parts.len()];
    for (index, part) in message.parts.iter().enumerate() {
        let PartType::Multipart(children) = &part.body else {
            continue;
        };
        for &child in children {
            if let Some(parent) = parents.get_mut(child as usize)
                && child as usize != index
            {
                *parent = Some(index);
            }
        }
    }
    parents
}

fn check_multipart(raw: &[u8], index: usize, part: &MessagePart<'_>, problems: &mut Vec<String>) {
    let Some(content_type) = part.content_type() else {
        return;
    };
    if !content_type.ctype().eq_ignore_ascii_case("multipart") {
        return;
    }
    let label = part_label(index);

    let Some(boundary) = content_type.attribute("boundary") else {
        let problem =
            format!("{label} is multipart but names no boundary, so its parts cannot be separated");
        return add_problem(problems, problem);
    };
    if !matches!(part.body, PartType::Multipart(_)) {
        let problem = format!(
            "{label} is multipart but its boundary never appears, so its parts cannot be separated"
        );
        return add_problem(problems, problem);
    }

    let closing_delimiter = format!("--{boundary}--");
    let body = raw.get(part.offset_body as usize..).unwrap_or_default();
    if !contains(body, closing_delimiter.as_bytes()) {
        add_problem(problems, TRUNCATED.to_string());
    }
}

const TRUNCATED: &str = "the MIME structure is truncated";

fn check_charset(index: usize, part: &MessagePart<'_>, problems: &mut Vec<String>) {
    let (PartType::Text(text) | PartType::Html(text)) = &part.body else {
        return;
    };
    let label = part_label(index);
    let replaced = text.contains(char::REPLACEMENT_CHARACTER);
    let charset = part.content_type().and_then(|ct| ct.attribute("charset"));

    let problem = match charset {
        Some(charset) if !is_utf8_label(charset) && !can_decode(charset) => {
            let charset = single_line(charset).chars().take(40).collect::<String>();
            let outcome = if replaced {
                "shown as UTF-8 with replacement characters"
            } else {
                "shown as UTF-8"
            };
            format!("{label} declares charset {charset}, which cannot be decoded; {outcome}")
        }
        // NOTE: a U+FFFD that the sender wrote on purpose is reported too.
        _ if replaced => {
            format!("{label} contains invalid characters; they are shown as replacement characters")
        }
        _ => return,
    };
    add_problem(problems, problem);
}

fn is_utf8_label(charset: &str) -> bool {
    let charset = charset.trim().to_ascii_lowercase();
    // The labels that mail-parser leaves to its built-in UTF-8 decode.
    [
        "utf-8",
        "utf8",
        "unicode-1-1-utf-8",
        "unicode11utf8",
        "unicode20utf8",
        "x-unicode20utf8",
    ]
    .contains(&charset.as_str())
}

/// Returns whether mail-parser converts `charset` to Unicode. Built without
/// its `full_encoding` feature, mail-parser 0.11.9 decodes Shift_JIS, Big5,
/// EUC, GBK, ISO-2022-JP and a few more as lossy UTF-8. So a decoder whose
/// output for invalid UTF-8 equals the lossy decode counts as missing.
fn can_decode(charset: &str) -> bool {
    const PROBE: &[u8] = &[0x80, 0xa4, 0xa2, 0xff, b'A'];
    charset_decoder(charset.trim().as_bytes())
        .is_some_and(|decode| decode(PROBE) != String::from_utf8_lossy(PROBE))
}

fn check_encoding(
    raw: &[u8],
    message: &Message<'_>,
    parent: Option<usize>,
    index: usize,
    part: &MessagePart<'_>,
    problems: &mut Vec<String>,
) {
    let label = part_label(index);
    if is_message_type(part) {
        let problem = format!("{label} is an attached message that cannot be read; kept as data");
        return add_problem(problems, problem);
    }

    // mail-parser flags both a bad encoding and a part that runs to the end
    // without its boundary. Only the second has no boundary after the part.
    let boundary = parent
        .and_then(|id| message.parts.get(id))
        .and_then(|parent| parent.content_type())
        .and_then(|ct| ct.attribute("boundary"));
    let after_part = raw.get(part.offset_body as usize..).unwrap_or_default();
    let terminated =
        boundary.is_none_or(|boundary| contains(after_part, format!("--{boundary}").as_bytes()));

    let encoding = part
        .content_transfer_encoding()
        .map(|encoding| encoding.trim().to_ascii_lowercase())
        .filter(|encoding| encoding == "base64" || encoding == "quoted-printable");
    let outcome = if is_recovered_body(index, part) || is_listed_body(message, index) {
        "shown undecoded"
    } else {
        "kept undecoded as an attachment"
    };
    let problem = match encoding {
        Some(encoding) if terminated => {
            format!("{label} has invalid {encoding} content; {outcome}")
        }
        _ => TRUNCATED.to_string(),
    };
    add_problem(problems, problem);
}

fn part_label(index: usize) -> String {
    if index == 0 {
        "the message".to_string()
    } else {
        format!("part {index}")
    }
}

fn add_problem(problems: &mut Vec<String>, problem: String) {
    if !problems.contains(&problem) {
        problems.push(problem);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Joins header and body lines with CRLF, as messages travel.
    fn crlf(lines: &[&str]) -> Vec<u8> {
        let mut raw = lines.join("\r\n");
        raw.push_str("\r\n");
        raw.into_bytes()
    }

    const HEADERS: [&str; 4] = [
        "From: Ann Example <ann@example.org>",
        "To: bob@example.org",
        "Subject: Results",
        "Date: Tue, 01 Apr 2025 09:30:00 +0200",
    ];

    fn message(extra_headers: &[&str], body: &[&str]) -> Vec<u8> {
        let mut lines: Vec<&str> = HEADERS.to_vec();
        lines.extend_from_slice(extra_headers);
        lines.push("");
        lines.extend_from_slice(body);
        crlf(&lines)
    }

    #[test]
    fn address_display_forms() {
        let named = Address::new(Some("Ann Example"), "ann@example.org");
        let bare = Address::new(None, "bob@example.org");

        assert_eq!(named.to_string(), "Ann Example <ann@example.org>");
        assert_eq!(bare.to_string(), "bob@example.org");
    }

    #[test]
    fn address_display_quotes_specials() {
        let address = Address::new(Some("Doe, J \"Jo\""), "j@example.org");

        assert_eq!(address.to_string(), "\"Doe, J \\\"Jo\\\"\" <j@example.org>");
    }

    #[test]
    fn address_blank_name_dropped() {
        assert_eq!(Address::new(Some("  "), " a@example.org ").name, None);
        assert_eq!(
            Address::new(Some("  "), " a@example.org ").email,
            "a@example.org"
        );
    }

    #[test]
    fn same_mailbox_ignores_case_and_name() {
        let first = Address::new(Some("Ann"), "Ann@Example.org");
        let second = Address::new(None, "ann@example.ORG");

        assert!(first.is_same_mailbox(&second));
        assert!(!first.is_same_mailbox(&Address::new(None, "bob@example.org")));
    }

    #[test]
    fn plain_message_has_no_problems() {
        let parsed = parse(&message(&[], &["Hello Bob,", "", "all normal.", "", ""]));

        assert_eq!(parsed.text, "Hello Bob,\n\nall normal.");
        assert!(!parsed.text_from_html);
        assert_eq!(parsed.problems, Vec::<String>::new());
        assert_eq!(parsed.envelope.subject, "Results");
        assert_eq!(parsed.envelope.date, Some(1_743_492_600));
    }

    #[test]
    fn alternative_prefers_plain() {
        let raw = message(
            &[
                "MIME-Version: 1.0",
                "Content-Type: multipart/alternative; boundary=\"b1\"",
            ],
            &[
                "--b1",
                "Content-Type: text/plain; charset=utf-8",
                "",
                "Plain version",
                "--b1",
                "Content-Type: text/html; charset=utf-8",
                "",
                "<p>HTML version</p>",
                "--b1--",
            ],
        );

        let parsed = parse(&raw);

        assert_eq!(parsed.text, "Plain version");
        assert!(!parsed.text_from_html);
        assert!(parsed.attachments.is_empty());
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    }

    #[test]
    fn alternative_empty_plain_uses_html() {
        let raw = message(
            &["Content-Type: multipart/alternative; boundary=b1"],
            &[
                "--b1",
                "Content-Type: text/plain",
                "",
                "",
                "--b1",
                "Content-Type: text/html",
                "",
                "<p>Only here</p>",
                "--b1--",
            ],
        );

        let parsed = parse(&raw);

        assert_eq!(parsed.text, "Only here");
        assert!(parsed.text_from_html);
    }

    #[test]
    fn html_only_converted() {
        let raw = message(
            &["Content-Type: text/html; charset=utf-8"],
            &[
                "<html><head><title>Page title</title>",
                "<style type=\"text/css\">p { color: red }</style></head>",
                "<body><script type=\"text/javascript\">alert('x')</script>",
                "<!-- hidden comment --><p class=\"x\">Dear Bob,</p>",
                "<div>see <a href=\"https://example.org/track\">the report</a>",
                "&amp; call.<br class=\"y\">Thanks</div>",
                "<ul><li>one</li><li>two</li></ul></body></html>",
            ],
        );

        let parsed = parse(&raw);

        assert_eq!(
            parsed.text,
            "Dear Bob,\n\nsee the report & call.\nThanks\n- one\n- two"
        );
        assert!(parsed.text_from_html);
    }

    #[test]
    fn html_hidden_content_removed() {
        let text = html_to_plain_text(
            "<SCRIPT src=x>steal()</SCRIPT>a<style media=all>b{}</style>c<svg><text>d</text></svg>",
        );

        assert_eq!(text, "ac");
    }

    #[test]
    fn html_unclosed_script_hides_rest() {
        assert_eq!(html_to_plain_text("shown<script>hidden"), "shown");
    }

    #[test]
    fn html_stray_angle_kept() {
        assert_eq!(html_to_plain_text("a < b and c > d"), "a < b and c > d");
        assert_eq!(html_to_plain_text("1 <2"), "1 <2");
    }

    #[test]
    fn html_quoted_angle_in_attribute() {
        assert_eq!(html_to_plain_text("<img alt=\"a > b\">after"), "after");
    }

    #[test]
    fn html_head_text_kept() {
        let text = html_to_plain_text("<html><head><title>T</title>Stray text</head></html>");

        assert_eq!(text, "Stray text");
    }

    #[test]
    fn html_table_cells_separated() {
        assert_eq!(
            html_to_plain_text("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>"),
            "a b\nc"
        );
    }

    fn attachments_message() -> Vec<u8> {
        message(
            &[
                "MIME-Version: 1.0",
                "Content-Type: multipart/mixed; boundary=\"outer\"",
            ],
            &[
                "--outer",
                "Content-Type: text/plain; charset=utf-8",
                "",
                "See attached.",
                "--outer",
                "Content-Type: application/pdf",
                "Content-Disposition: attachment; filename*=UTF-8''Befund%20M%C3%BCller.pdf",
                "Content-Transfer-Encoding: base64",
                "",
                "JVBERi0xLjQgdGVzdAD/",
                "--outer",
                "Content-Type: image/png",
                "Content-Disposition: inline; filename=\"photo.png\"",
                "Content-Transfer-Encoding: base64",
                "",
                "iVBORw0KGgo=",
                "--outer",
                "Content-Type: message/rfc822",
                "",
                "From: carol@example.org",
                "Subject: Inner",
                "",
                "Inner body",
                "--outer",
                "Content-Type: text/plain",
                "Content-Disposition: attachment",
                "",
                "notes",
                "--outer",
                "Content-Type: application/octet-stream",
                "Content-Transfer-Encoding: base64",
                "",
                "AAEC",
                "--outer--",
            ],
        )
    }

    #[test]
    fn attachments_listed() {
        let parsed = parse(&attachments_message());

        let listed: Vec<(&str, &str, usize)> = parsed
            .attachments
            .iter()
            .map(|a| (a.filename.as_str(), a.content_type.as_str(), a.size))
            .collect();
        assert_eq!(
            listed,
            [
                ("Befund Müller.pdf", "application/pdf", 15),
                ("photo.png", "image/png", 8),
                ("attachment-3.eml", "message/rfc822", 53),
                ("attachment-4.txt", "text/plain", 5),
                ("attachment-5.bin", "application/octet-stream", 3),
            ]
        );
        assert_eq!(parsed.text, "See attached.");
        assert!(parsed.envelope.has_attachments);
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    }

    #[test]
    fn attachment_content_decoded() {
        let raw = attachments_message();
        let parsed = parse(&raw);

        let pdf = attachment_content(&raw, parsed.attachments[0].index);
        let png = attachment_content(&raw, parsed.attachments[1].index);
        let binary = attachment_content(&raw, parsed.attachments[4].index);

        assert_eq!(pdf.as_deref(), Some(&b"%PDF-1.4 test\x00\xff"[..]));
        assert_eq!(png.as_deref(), Some(&b"\x89PNG\r\n\x1a\n"[..]));
        assert_eq!(binary.as_deref(), Some(&[0u8, 1, 2][..]));
    }

    #[test]
    fn attachment_content_enclosed_message() {
        let raw = attachments_message();
        let parsed = parse(&raw);

        let enclosed = attachment_content(&raw, parsed.attachments[2].index);

        let expected = b"From: carol@example.org\r\nSubject: Inner\r\n\r\nInner body";
        assert_eq!(enclosed.as_deref(), Some(&expected[..]));
    }

    #[test]
    fn attachment_content_text_unconverted() {
        let raw = message(
            &["Content-Type: multipart/mixed; boundary=b"],
            &[
                "--b",
                "Content-Type: text/plain",
                "",
                "body",
                "--b",
                "Content-Type: text/csv; charset=iso-8859-1; name=\"list.csv\"",
                "Content-Transfer-Encoding: quoted-printable",
                "",
                "M=FCller;1=0D=0A",
                "--b--",
            ],
        );
        let parsed = parse(&raw);

        let csv = attachment_content(&raw, parsed.attachments[0].index);

        assert_eq!(parsed.attachments[0].filename, "list.csv");
        assert_eq!(csv.as_deref(), Some(&b"M\xfcller;1\r\n"[..]));
    }

    #[test]
    fn attachment_content_rejects_non_attachment() {
        let raw = attachments_message();

        assert_eq!(attachment_content(&raw, 0), None);
        assert_eq!(attachment_content(&raw, 1), None);
        assert_eq!(attachment_content(&raw, 99), None);
        assert_eq!(attachment_content(b"", 0), None);
    }

    #[test]
    fn filename_directories_stripped() {
        assert_eq!(
            clean_filename("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            clean_filename("C:\\Users\\x\\report.pdf").as_deref(),
            Some("report.pdf")
        );
        assert_eq!(clean_filename(".profile").as_deref(), Some("profile"));
        assert_eq!(clean_filename("a\r\nb.txt").as_deref(), Some("ab.txt"));
        assert_eq!(clean_filename("dir/"), None);
        assert_eq!(clean_filename(" .. "), None);
    }

    #[test]
    fn filename_encoded_word_decoded() {
        let raw = message(
            &["Content-Type: multipart/mixed; boundary=b"],
            &[
                "--b",
                "Content-Type: application/pdf; name=\"=?UTF-8?Q?R=C3=B6ntgen.pdf?=\"",
                "",
                "x",
                "--b--",
            ],
        );

        let parsed = parse(&raw);

        assert_eq!(parsed.attachments[0].filename, "Röntgen.pdf");
    }

    #[test]
    fn subject_encoded_words_decoded() {
        let raw = crlf(&[
            "From: ann@example.org",
            "Subject: =?UTF-8?Q?Befund_f=C3=BCr?= =?ISO-8859-1?B?SGVycm4gTfxsbGVy?=",
            "",
            "x",
        ]);

        let parsed = parse(&raw);

        assert_eq!(parsed.envelope.subject, "Befund fürHerrn Müller");
    }

    #[test]
    fn names_encoded_words_decoded() {
        let raw = crlf(&["From: =?UTF-8?B?SsO2cmc=?= <joerg@example.org>", "", "x"]);

        let parsed = parse(&raw);

        assert_eq!(
            parsed.envelope.from,
            [Address::new(Some("Jörg"), "joerg@example.org")]
        );
    }

    #[test]
    fn subject_line_breaks_removed() {
        let raw = crlf(&[
            "From: a@example.org",
            "Subject: =?UTF-8?Q?one=0D=0Atwo?=",
            "",
            "x",
        ]);

        let parsed = parse(&raw);

        assert_eq!(parsed.envelope.subject, "one  two");
    }

    #[test]
    fn missing_headers_reported() {
        let raw = crlf(&["To: bob@example.org", "", "body"]);

        let parsed = parse(&raw);

        assert_eq!(
            parsed.problems,
            ["the From header is missing or unreadable", "no Date header"]
        );
        assert_eq!(parsed.envelope.subject, "");
        assert_eq!(parsed.envelope.from, []);
        assert_eq!(parsed.envelope.date, None);
        assert_eq!(parsed.text, "body");
    }

    #[test]
    fn unreadable_date_reported() {
        let raw = crlf(&["From: a@example.org", "Date: next Tuesday", "", "body"]);

        let parsed = parse(&raw);

        assert_eq!(
            parsed.problems,
            ["the Date header cannot be read as a date"]
        );
        assert_eq!(parsed.envelope.date, None);
    }

    #[test]
    fn missing_body_reported() {
        let raw = b"From: a@example.org\r\nDate: Tue, 01 Apr 2025 09:30:00 +0200\r\nSubject: cut";

        let parsed = parse(raw);

        assert_eq!(parsed.problems, ["the message has no body"]);
        assert_eq!(parsed.envelope.subject, "cut");
        assert_eq!(parsed.text, "");
    }

    #[test]
    fn unknown_charset_reported() {
        let raw = message(
            &["Content-Type: multipart/mixed; boundary=b"],
            &[
                "--b",
                "Content-Type: text/plain; charset=x-unknown",
                "Content-Transfer-Encoding: quoted-printable",
                "",
                "M=FCller",
                "--b--",
            ],
        );

        let parsed = parse(&raw);

        assert_eq!(
            parsed.problems,
            [
                "part 1 declares charset x-unknown, which cannot be decoded; \
                 shown as UTF-8 with replacement characters"
            ]
        );
        assert_eq!(parsed.text, "M\u{fffd}ller");
    }

    #[test]
    fn undecodable_charset_reported() {
        let raw = message(
            &["Content-Type: text/plain; charset=ISO-2022-JP"],
            &["\x1b$B$3$s$K$A$O\x1b(B"],
        );

        let parsed = parse(&raw);

        assert_eq!(
            parsed.problems,
            ["the message declares charset ISO-2022-JP, which cannot be decoded; shown as UTF-8"]
        );
    }

    #[test]
    fn latin1_charset_decoded() {
        let mut raw = message(&["Content-Type: text/plain; charset=iso-8859-1"], &[]);
        raw.extend_from_slice(b"M\xfcller\r\n");

        let parsed = parse(&raw);

        assert_eq!(parsed.text, "Müller");
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    }

    #[test]
    fn invalid_utf8_reported() {
        let mut raw = message(&["Content-Type: text/plain; charset=utf-8"], &[]);
        raw.extend_from_slice(b"M\xfcller\r\n");

        let parsed = parse(&raw);

        assert_eq!(
            parsed.problems,
            ["the message contains invalid characters; they are shown as replacement characters"]
        );
    }

    #[test]
    fn invalid_base64_reported() {
        let raw = message(
            &["Content-Type: multipart/mixed; boundary=b"],
            &[
                "--b",
                "Content-Type: text/plain",
                "Content-Transfer-Encoding: base64",
                "",
                "not*base64!",
                "--b--",
            ],
        );

        let parsed = parse(&raw);

        assert_eq!(
            parsed.problems,
            ["part 1 has invalid base64 content; shown undecoded"]
        );
        assert_eq!(parsed.text, "not*base64!");
    }

    #[test]
    fn truncated_multipart_reported() {
        let raw = message(
            &["Content-Type: multipart/mixed; boundary=b"],
            &[
                "--b",
                "Content-Type: text/plain",
                "",
                "first part, then the connection dropped",
            ],
        );

        let parsed = parse(&raw);

        assert_eq!(parsed.problems, ["the MIME structure is truncated"]);
        assert!(parsed.text.contains("first part"), "{:?}", parsed.text);
    }

    #[test]
    fn missing_closing_boundary_reported() {
        let raw = message(
            &["Content-Type: multipart/mixed; boundary=b"],
            &[
                "--b",
                "Content-Type: text/plain",
                "",
                "one",
                "--b",
                "",
                "two",
            ],
        );

        let parsed = parse(&raw);

        assert_eq!(parsed.problems, ["the MIME structure is truncated"]);
    }

    #[test]
    fn multipart_without_boundary_reported() {
        let raw = message(&["Content-Type: multipart/mixed"], &["just text"]);

        let parsed = parse(&raw);

        assert_eq!(
            parsed.problems,
            ["the message is multipart but names no boundary, so its parts cannot be separated"]
        );
        assert_eq!(parsed.text, "just text");
    }

    #[test]
    fn multipart_boundary_absent_reported() {
        let raw = message(
            &["Content-Type: multipart/mixed; boundary=zz"],
            &["just text"],
        );

        let parsed = parse(&raw);

        assert_eq!(
            parsed.problems,
            ["the message is multipart but its boundary never appears, \
                 so its parts cannot be separated"]
        );
        assert_eq!(parsed.text, "just text");
    }

    #[test]
    fn named_part_bad_base64_kept() {
        let raw = message(
            &["Content-Type: multipart/mixed; boundary=b"],
            &[
                "--b",
                "Content-Type: text/plain",
                "",
                "body",
                "--b",
                "Content-Type: text/plain; name=\"a.txt\"",
                "Content-Transfer-Encoding: base64",
                "",
                "!!",
                "--b--",
            ],
        );

        let parsed = parse(&raw);

        assert_eq!(
            parsed.problems,
            ["part 2 has invalid base64 content; kept undecoded as an attachment"]
        );
        assert_eq!(parsed.attachments[0].filename, "a.txt");
        assert_eq!(attachment_content(&raw, 2).as_deref(), Some(&b"!!"[..]));
        assert_eq!(parsed.text, "body");
    }

    #[test]
    fn attachment_charset_not_reported() {
        let raw = message(
            &["Content-Type: multipart/mixed; boundary=b"],
            &[
                "--b",
                "Content-Type: text/plain",
                "",
                "body",
                "--b",
                "Content-Type: text/plain; charset=x-unknown; name=\"a.txt\"",
                "Content-Transfer-Encoding: quoted-printable",
                "",
                "M=FCller",
                "--b--",
            ],
        );

        let parsed = parse(&raw);

        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        assert_eq!(
            attachment_content(&raw, 2).as_deref(),
            Some(&b"M\xfcller"[..])
        );
    }

    #[test]
    fn repeated_header_fields_reported() {
        let raw = crlf(&[
            "From: a@example.org",
            "From: b@example.org",
            "Subject: first",
            "Subject: second",
            "Date: Tue, 01 Apr 2025 09:30:00 +0200",
            "",
            "x",
        ]);

        let parsed = parse(&raw);

        assert_eq!(
            parsed.problems,
            [
                "the message has 2 From headers; all their addresses are shown",
                "the message has 2 Subject headers; the last one is shown",
            ]
        );
        assert_eq!(
            parsed.envelope.from,
            [
                Address::new(None, "a@example.org"),
                Address::new(None, "b@example.org")
            ]
        );
        assert_eq!(parsed.envelope.subject, "second");
    }

    #[test]
    fn repeated_content_type_reported() {
        let raw = message(
            &["Content-Type: text/html", "Content-Type: text/plain"],
            &["<b>x</b>"],
        );

        let parsed = parse(&raw);

        assert_eq!(
            parsed.problems,
            ["the message has 2 Content-Type headers; the last one is used"]
        );
        assert_eq!(parsed.text, "<b>x</b>");
    }

    #[test]
    fn unnamed_inline_image_listed() {
        let raw = message(
            &["Content-Type: multipart/mixed; boundary=b"],
            &[
                "--b",
                "Content-Type: text/plain",
                "",
                "look",
                "--b",
                "Content-Type: image/png",
                "Content-Disposition: inline",
                "Content-Transfer-Encoding: base64",
                "",
                "iVBORw0KGgo=",
                "--b--",
            ],
        );

        let parsed = parse(&raw);

        let names: Vec<&str> = parsed
            .attachments
            .iter()
            .map(|a| a.filename.as_str())
            .collect();
        assert_eq!(names, ["attachment-1.png"]);
        assert_eq!(parsed.text, "look");
        assert_eq!(
            attachment_content(&raw, 2).as_deref(),
            Some(&b"\x89PNG\r\n\x1a\n"[..])
        );
    }

    #[test]
    fn related_image_listed() {
        let raw = message(
            &["Content-Type: multipart/alternative; boundary=alt"],
            &[
                "--alt",
                "Content-Type: text/plain",
                "",
                "plain",
                "--alt",
                "Content-Type: multipart/related; boundary=rel",
                "",
                "--rel",
                "Content-Type: text/html",
                "",
                "<img src=\"cid:logo\">html",
                "--rel",
                "Content-Type: image/png",
                "Content-ID: <logo>",
                "Content-Transfer-Encoding: base64",
                "",
                "iVBORw0KGgo=",
                "--rel--",
                "--alt--",
            ],
        );

        let parsed = parse(&raw);

        let names: Vec<&str> = parsed
            .attachments
            .iter()
            .map(|a| a.filename.as_str())
            .collect();
        assert_eq!(names, ["attachment-1.png"]);
        assert_eq!(parsed.text, "plain");
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    }

    #[test]
    fn calendar_part_listed() {
        let raw = message(
            &["Content-Type: multipart/mixed; boundary=b"],
            &[
                "--b",
                "Content-Type: text/plain",
                "",
                "invite",
                "--b",
                "Content-Type: text/calendar; method=REQUEST",
                "",
                "BEGIN:VCALENDAR",
                "END:VCALENDAR",
                "--b--",
            ],
        );

        let parsed = parse(&raw);

        assert_eq!(parsed.attachments.len(), 1);
        assert_eq!(parsed.attachments[0].filename, "attachment-1.ics");
        assert_eq!(parsed.attachments[0].content_type, "text/calendar");
        assert_eq!(parsed.text, "invite");
    }

    #[test]
    fn html_breaks_collapse() {
        assert_eq!(
            html_to_plain_text("<div><div>a</div></div><div>b</div>"),
            "a\nb"
        );
        assert_eq!(html_to_plain_text("a<br><br>b"), "a\n\nb");
        assert_eq!(html_to_plain_text("<p>a</p>\n<p>b</p>"), "a\n\nb");
        assert_eq!(html_to_plain_text("<br><div>a</div>"), "a");
    }

    #[test]
    fn empty_input_reported() {
        let parsed = parse(b"");

        assert_eq!(parsed.problems, ["the message is empty"]);
        assert_eq!(parsed.envelope, Envelope::default());
    }

    #[test]
    fn envelope_from_header_block() {
        let block = crlf(&[
            "From: \"Example, Ann\" <ann@example.org>",
            "To: bob@example.org, Carol <carol@example.org>",
            "Cc: dan@example.org",
            "Subject: Lab results",
            "Date: Tue, 01 Apr 2025 09:30:00 +0200",
            "Message-ID: <abc.123@example.org>",
            "",
        ]);

        let envelope = parse_envelope(&block);

        assert_eq!(
            envelope.from,
            [Address::new(Some("Example, Ann"), "ann@example.org")]
        );
        assert_eq!(
            envelope.to,
            [
                Address::new(None, "bob@example.org"),
                Address::new(Some("Carol"), "carol@example.org")
            ]
        );
        assert_eq!(envelope.cc, [Address::new(None, "dan@example.org")]);
        assert_eq!(envelope.subject, "Lab results");
        assert_eq!(envelope.date, Some(1_743_492_600));
        assert_eq!(envelope.message_id.as_deref(), Some("abc.123@example.org"));
        assert!(!envelope.has_attachments);
    }

    #[test]
    fn envelope_without_final_blank_line() {
        let envelope = parse_envelope(b"Subject: Hi\r\nFrom: a@example.org");

        assert_eq!(envelope.subject, "Hi");
        assert_eq!(envelope.from, [Address::new(None, "a@example.org")]);
    }

    #[test]
    fn envelope_guesses_attachments_from_type() {
        let mixed = parse_envelope(b"Content-Type: multipart/mixed; boundary=x\r\n\r\n");
        let alternative =
            parse_envelope(b"Content-Type: multipart/alternative; boundary=x\r\n\r\n");

        assert!(mixed.has_attachments);
        assert!(!alternative.has_attachments);
    }

    #[test]
    fn legacy_display_element_is_hidden_under_header_protection() {
        let outer = parse(b"From: a@example.org\r\nSubject: [...]\r\n\r\nx\r\n");
        let inner = b"Content-Type: multipart/mixed; boundary=\"b\"; hp=\"cipher\"\r\n\
            Subject: Lab results\r\n\r\n--b\r\n\
            Content-Type: text/plain; charset=utf-8; hp-legacy-display=\"1\"\r\n\r\n\
            Subject: Lab results\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
            Potassium is high.\r\n--b--\r\n";
        let shown = parse_inner(&outer, inner);
        assert_eq!(shown.envelope.subject, "Lab results");
        assert_eq!(shown.text.trim(), "Potassium is high.");

        // Without the hp parameter the part is ordinary text and stays.
        let undeclared = String::from_utf8_lossy(inner).replace("; hp=\"cipher\"", "");
        let shown = parse_inner(&outer, undeclared.as_bytes());
        assert!(
            shown.text.contains("Subject: Lab results"),
            "{}",
            shown.text
        );
    }

    #[test]
    fn inner_protected_subject_wins() {
        let outer = parse(b"From: a@example.org\r\nTo: b@example.org\r\nSubject: ...\r\n\r\nx\r\n");
        let inner = b"Content-Type: text/plain; protected-headers=v1\r\nSubject: Lab results\r\n\r\nbody\r\n";
        let shown = parse_inner(&outer, inner);
        assert_eq!(shown.envelope.subject, "Lab results");
        assert_eq!(shown.envelope.from, outer.envelope.from);
        assert_eq!(shown.text.trim(), "body");

        let plain_inner = b"Content-Type: text/plain\r\n\r\nbody\r\n";
        assert_eq!(parse_inner(&outer, plain_inner).envelope.subject, "...");
    }

    #[test]
    fn envelope_of_whole_message() {
        assert!(parse_envelope(&attachments_message()).has_attachments);
        assert!(!parse_envelope(&message(&[], &["text"])).has_attachments);
    }

    #[test]
    fn envelope_of_nothing() {
        assert_eq!(parse_envelope(b""), Envelope::default());
    }

    #[test]
    fn threading_ids_without_brackets() {
        let raw = message(
            &[
                "Message-ID: <c@example.org>",
                "In-Reply-To: <b@example.org>",
                "References: <a@example.org>",
                " <b@example.org>",
            ],
            &["x"],
        );

        let parsed = parse(&raw);

        assert_eq!(parsed.envelope.message_id.as_deref(), Some("c@example.org"));
        assert_eq!(parsed.in_reply_to, ["b@example.org"]);
        assert_eq!(parsed.references, ["a@example.org", "b@example.org"]);
    }

    #[test]
    fn sender_only_when_different() {
        let other = parse(&message(&["Sender: desk@example.org"], &["x"]));
        let same = parse(&message(&["Sender: ANN@example.org"], &["x"]));

        assert_eq!(other.sender, Some(Address::new(None, "desk@example.org")));
        assert_eq!(same.sender, None);
    }

    #[test]
    fn reply_to_read() {
        let parsed = parse(&message(&["Reply-To: Desk <desk@example.org>"], &["x"]));

        assert_eq!(
            parsed.reply_to,
            [Address::new(Some("Desk"), "desk@example.org")]
        );
    }

    #[test]
    fn groups_flattened() {
        let raw = crlf(&[
            "From: a@example.org",
            "To: Team: b@example.org, c@example.org;, d@example.org",
            "Cc: undisclosed-recipients:;",
            "",
            "x",
        ]);

        let parsed = parse(&raw);

        let to: Vec<&str> = parsed
            .envelope
            .to
            .iter()
            .map(|a| a.email.as_str())
            .collect();
        assert_eq!(to, ["b@example.org", "c@example.org", "d@example.org"]);
        assert_eq!(parsed.envelope.cc, []);
    }

    #[test]
    fn quoted_text_prefixes_lines() {
        let parsed = ParsedMessage {
            text: "Hello\n\n> earlier\nBye\n\n".to_string(),
            ..ParsedMessage::default()
        };

        assert_eq!(quoted_text(&parsed), "> Hello\n>\n>> earlier\n> Bye\n");
    }

    #[test]
    fn quoted_text_of_empty_body() {
        assert_eq!(quoted_text(&ParsedMessage::default()), "");
    }

    #[test]
    fn line_ends_do_not_change_text() {
        let crlf_raw = attachments_message();
        let lf_raw: Vec<u8> = crlf_raw.iter().copied().filter(|&b| b != b'\r').collect();

        let from_crlf = parse(&crlf_raw);
        let from_lf = parse(&lf_raw);

        assert_eq!(from_crlf.text, from_lf.text);
        assert_eq!(from_crlf.envelope, from_lf.envelope);
        assert_eq!(from_crlf.problems, from_lf.problems);
    }
}
