//! Outgoing messages: the draft, address lists typed by the user, reply and
//! forward drafts, and the MIME message handed to SMTP submission.
//!
//! Follows RFC 5322: section 3.4 for addresses, section 3.6.3 for Bcc (its
//! addresses go only to the SMTP envelope, never into the header) and
//! section 3.6.4 for In-Reply-To and References. mail-builder 2.0 writes the
//! MIME structure (RFC 2045 and RFC 2046), RFC 2047 encoded words for
//! non-ASCII header text and RFC 2231 parameters for non-ASCII file names.
//! A forwarded message is attached as message/rfc822, which RFC 2046
//! section 5.2.1 allows only in 7bit, 8bit or binary encoding, never in
//! base64.

use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    process,
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use mail_builder::{
    MessageBuilder,
    headers::{address::Address as BuilderAddress, date::Date, message_id::MessageId},
    mime::{BodyPart, MimePart},
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::message::{Address, ParsedMessage, quoted_text};

/// A message being written, as the composer edits it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    /// The sending account's address.
    pub from: Address,
    /// Primary recipients.
    pub to: Vec<Address>,
    /// Carbon-copy recipients, visible to all.
    pub cc: Vec<Address>,
    /// Blind-copy recipients: in the SMTP envelope, never in the header.
    pub bcc: Vec<Address>,
    /// Subject line.
    pub subject: String,
    /// Plain-text body. Line ends may be LF or CRLF.
    pub body: String,
    /// Message-ID of the message replied to, without angle brackets.
    pub in_reply_to: Option<String>,
    /// Message ids of the thread, oldest first, without angle brackets.
    pub references: Vec<String>,
    /// Files to attach.
    pub attachments: Vec<AttachmentFile>,
}

/// A file attached to a draft.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentFile {
    /// File name shown to the recipient.
    pub filename: String,
    /// MIME type, such as `application/pdf`.
    pub content_type: String,
    /// File content.
    pub data: Vec<u8>,
}

/// A draft or an address list that cannot be sent as it is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ComposeError {
    /// An entry of a typed address list is not an address.
    #[error(
        "cannot read address {entry:?}: {reason}; write it as name@example.org or \
         Name <name@example.org>"
    )]
    InvalidAddress {
        /// The entry as typed.
        entry: String,
        /// Reason the entry is rejected.
        reason: &'static str,
    },
    /// The draft has no recipient at all.
    #[error("cannot send message: it has no recipient; add an address to To, Cc or Bcc")]
    NoRecipients,
    /// The From address is not a valid address.
    #[error(
        "cannot send message: the From address {email:?} is invalid; correct the account's \
         address in its settings"
    )]
    InvalidFrom {
        /// The From address.
        email: String,
    },
    /// A To, Cc or Bcc address is not a valid address.
    #[error("cannot send message: recipient {email:?} is invalid; correct or remove it")]
    InvalidRecipient {
        /// The recipient address.
        email: String,
    },
    /// A message id is not of the form `left@right`.
    #[error(
        "cannot send message: message id {id:?} is invalid; it must look like \
         <unique@example.org>"
    )]
    InvalidMessageId {
        /// The message id.
        id: String,
    },
    /// An attachment has no file name.
    #[error("cannot attach file: an attachment has an empty file name; give it a name")]
    EmptyFilename,
    /// An attachment's content type is not `type/subtype`.
    #[error(
        "cannot attach {filename:?}: content type {content_type:?} is not of the form \
         type/subtype; use application/octet-stream when unsure"
    )]
    InvalidContentType {
        /// The attachment's file name.
        filename: String,
        /// The content type given.
        content_type: String,
    },
    /// mail-builder failed to write the message.
    #[error("cannot build message: {reason}")]
    Build {
        /// The writer's error message.
        reason: String,
    },
}

/// Parses addresses as typed in a To, Cc or Bcc field.
///
/// Entries are separated by "," or ";" outside quotes and angle brackets,
/// and each is `name@example.org`, `Name <name@example.org>` or
/// `"Name, With Comma" <name@example.org>`. Empty entries are skipped.
pub fn parse_address_list(input: &str) -> Result<Vec<Address>, ComposeError> {
    split_address_list(input)?
        .into_iter()
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(parse_address_entry)
        .collect()
}

/// Builds a reply to `original`, sent from `me`.
///
/// The reply goes to the Reply-To addresses, or else to the From addresses.
/// When the original came from `me` (replying from the Sent folder) and has
/// no Reply-To, it goes to the original To recipients. Reply all adds the
/// original To to To and the original Cc to Cc, without `me` and without
/// repeating an address. Threading follows RFC 5322 section 3.6.4.
pub fn reply(original: &ParsedMessage, me: &Address, all: bool) -> Draft {
    let envelope = &original.envelope;
    let from_me = envelope
        .from
        .iter()
        .any(|author| author.is_same_mailbox(me));
    let primary = if !original.reply_to.is_empty() {
        &original.reply_to
    } else if from_me && !envelope.to.is_empty() {
        &envelope.to
    } else {
        &envelope.from
    };

    let mut to = Vec::new();
    let mut cc = Vec::new();
    for address in primary {
        add_unique(&mut to, &[], address);
    }
    if all {
        for address in envelope.to.iter().filter(|a| !a.is_same_mailbox(me)) {
            add_unique(&mut to, &[], address);
        }
        for address in envelope.cc.iter().filter(|a| !a.is_same_mailbox(me)) {
            add_unique(&mut cc, &to, address);
        }
    }

    let (in_reply_to, references) = thread_ids(original);
    Draft {
        from: me.clone(),
        to,
        cc,
        subject: prefixed_subject("Re: ", &envelope.subject, &["re", "aw"]),
        body: format!("{}\n{}\n", attribution(original), quoted_text(original)),
        in_reply_to,
        references,
        ..Draft::default()
    }
}

/// Returns the subject of a reply to a message with `subject`: "Re: "
/// in front, once.
pub fn reply_subject(subject: &str) -> String {
    prefixed_subject("Re: ", subject, &["re", "aw"])
}

/// Builds a draft that forwards `original` in its body: a header block of
/// the original, then its text. The original's attachments are not carried;
/// the caller adds those it wants.
pub fn forward_inline(original: &ParsedMessage, me: &Address) -> Draft {
    let envelope = &original.envelope;
    let mut body = format!("{FORWARD_MARKER}\n");
    body.push_str(&format!("Subject: {}\n", envelope.subject));
    if let Some(date) = envelope.date {
        body.push_str(&format!("Date: {}\n", format_date(date)));
    }
    body.push_str(&format!("From: {}\n", join_addresses(&envelope.from)));
    body.push_str(&format!("To: {}\n", join_addresses(&envelope.to)));
    if !envelope.cc.is_empty() {
        body.push_str(&format!("Cc: {}\n", join_addresses(&envelope.cc)));
    }
    body.push('\n');
    body.push_str(&original.text);
    body.push('\n');

    Draft {
        from: me.clone(),
        subject: prefixed_subject("Fwd: ", &envelope.subject, &["fwd", "fw"]),
        body,
        references: forwarded_id(original),
        ..Draft::default()
    }
}

/// Returns the original's Message-ID as the References of a forward, so
/// that the reply guard (see [`crate::guard`]) finds the floor the
/// original sets.
fn forwarded_id(original: &ParsedMessage) -> Vec<String> {
    original
        .envelope
        .message_id
        .iter()
        .filter(|id| is_valid_message_id(id))
        .cloned()
        .collect()
}

/// The line that starts an inline forward's copy of the original.
const FORWARD_MARKER: &str = "-------- Forwarded Message --------";

/// Returns `body` without the original's text: quoted lines (starting with
/// `>`), the attribution line right above them ("... wrote:"), and an
/// inline forward's copy from its marker line on.
pub fn without_quote(body: &str) -> String {
    let body = body
        .split_once(FORWARD_MARKER)
        .map_or(body, |(before, _)| before);
    let mut kept: Vec<&str> = Vec::new();
    for line in body.lines() {
        if line.starts_with('>') {
            if kept
                .last()
                .is_some_and(|last| last.trim_end().ends_with("wrote:"))
            {
                kept.pop();
            }
            continue;
        }
        kept.push(line);
    }
    let mut text = kept.join("\n").trim_end().to_owned();
    text.push('\n');
    text
}

/// Rebuilds a decrypted message for forwarding as an attachment: the
/// outer header fields that `inner` does not carry itself (From, Date, To
/// and the like), then `inner`, the decrypted MIME entity with its own
/// header. The outer content fields are left out, because they describe
/// the ciphertext.
pub fn decrypted_original(outer: &[u8], inner: &[u8]) -> Vec<u8> {
    let inner_names: Vec<String> = field_names(header_of(inner));
    let mut out = Vec::with_capacity(outer.len() / 2 + inner.len());
    for field in fields(header_of(outer)) {
        let name = field_name(field);
        let content = name.starts_with("content-") || name == "mime-version";
        if !content && !inner_names.contains(&name) {
            out.extend_from_slice(field);
        }
    }
    out.extend_from_slice(inner);
    out
}

/// Returns the header block of `raw`, up to and without the empty line.
fn header_of(raw: &[u8]) -> &[u8] {
    let end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|at| at + 2)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|at| at + 1))
        .unwrap_or(raw.len());
    &raw[..end]
}

/// Splits a header block into its fields, each with its folded lines and
/// line ends.
fn fields(header: &[u8]) -> Vec<&[u8]> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut position = 0;
    while position < header.len() {
        let end = header[position..]
            .iter()
            .position(|&byte| byte == b'\n')
            .map_or(header.len(), |at| position + at + 1);
        let continues = matches!(header.get(end), Some(b' ' | b'\t'));
        if !continues {
            fields.push(&header[start..end]);
            start = end;
        }
        position = end;
    }
    fields
}

fn field_name(field: &[u8]) -> String {
    let name = field
        .iter()
        .position(|&byte| byte == b':')
        .map_or(field, |colon| &field[..colon]);
    String::from_utf8_lossy(name).trim().to_ascii_lowercase()
}

fn field_names(header: &[u8]) -> Vec<String> {
    fields(header).into_iter().map(field_name).collect()
}

/// Builds a draft that forwards the whole original message, as received, in
/// a message/rfc822 attachment.
pub fn forward_as_attachment(original_raw: &[u8], original: &ParsedMessage, me: &Address) -> Draft {
    let subject = &original.envelope.subject;
    let stem: String = subject
        .chars()
        .map(|ch| {
            if ch.is_control() || "/\\:*?\"<>|".contains(ch) {
                '_'
            } else {
                ch
            }
        })
        .collect();
    let stem = stem.trim().trim_start_matches('.');
    let filename = if stem.is_empty() {
        "forwarded-message.eml".to_string()
    } else {
        format!("{stem}.eml")
    };

    Draft {
        from: me.clone(),
        subject: prefixed_subject("Fwd: ", subject, &["fwd", "fw"]),
        attachments: vec![AttachmentFile {
            filename,
            content_type: "message/rfc822".to_string(),
            data: original_raw.to_vec(),
        }],
        references: forwarded_id(original),
        ..Draft::default()
    }
}

/// Returns a new Message-ID, `<unique@domain>`, from the time, the process
/// id, a counter and random bits from the standard library's hasher keys.
/// Characters that a message id cannot hold are dropped from `domain`, and
/// an empty domain becomes "localhost".
pub fn new_message_id(domain: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);

    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    // RandomState's keys are seeded per thread from the operating system's
    // random source, and each new instance gets different keys.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(count);
    let random = hasher.finish();

    let domain: String = domain
        .chars()
        .filter(|&ch| ch.is_alphanumeric() || ch == '.' || ch == '-')
        .collect();
    let domain = domain.trim_matches('.');
    let domain = if domain.is_empty() {
        "localhost"
    } else {
        domain
    };

    format!(
        "<{nanos:x}.{:x}.{count:x}.{random:016x}@{domain}>",
        process::id()
    )
}

impl Draft {
    /// Writes the message for SMTP submission, with CRLF line ends.
    ///
    /// `message_id` may carry its angle brackets, as [`new_message_id`]
    /// returns it. `date_unix` is the Date in Unix seconds, written as UTC.
    /// Bcc recipients are not written; pass [`Draft::envelope_recipients`]
    /// to the SMTP client instead.
    pub fn to_mime(&self, message_id: &str, date_unix: i64) -> Result<Vec<u8>, ComposeError> {
        self.validate()?;
        self.write(message_id, date_unix, false)
    }

    /// Writes the draft for the Drafts folder. Unlike [`Draft::to_mime`]
    /// it accepts a draft without recipients, and it keeps the Bcc header,
    /// so that reopening the draft loses nothing.
    pub fn to_draft_mime(&self, message_id: &str, date_unix: i64) -> Result<Vec<u8>, ComposeError> {
        if !is_valid_email(&self.from.email) {
            return Err(ComposeError::InvalidFrom {
                email: self.from.email.clone(),
            });
        }
        self.attachments.iter().try_for_each(validate_attachment)?;
        self.write(message_id, date_unix, true)
    }

    fn write(
        &self,
        message_id: &str,
        date_unix: i64,
        keep_bcc: bool,
    ) -> Result<Vec<u8>, ComposeError> {
        let message_id = strip_angle_brackets(message_id);
        if !is_valid_message_id(message_id) {
            return Err(ComposeError::InvalidMessageId {
                id: message_id.to_string(),
            });
        }

        let mut builder = MessageBuilder::new()
            .message_id(message_id)
            .date(Date::new(date_unix))
            .from(builder_address(&self.from));
        if !self.to.is_empty() {
            builder = builder.to(builder_list(&self.to));
        }
        if !self.cc.is_empty() {
            builder = builder.cc(builder_list(&self.cc));
        }
        if keep_bcc && !self.bcc.is_empty() {
            builder = builder.bcc(builder_list(&self.bcc));
        }
        if !self.subject.trim().is_empty() {
            builder = builder.subject(single_line(&self.subject));
        }
        if let Some(parent) = &self.in_reply_to {
            builder = builder.in_reply_to(strip_angle_brackets(parent));
        }
        if !self.references.is_empty() {
            let ids = self.references.iter().map(|id| strip_angle_brackets(id));
            builder = builder.references(MessageId::new_list(ids));
        }

        builder = builder.text_body(self.body.as_str());
        for attachment in &self.attachments {
            builder
                .attachments
                .get_or_insert_with(Vec::new)
                .push(attachment_part(attachment));
        }

        builder.write_to_vec().map_err(|error| ComposeError::Build {
            reason: error.to_string(),
        })
    }

    /// Returns the addresses for the SMTP envelope (RCPT TO): To, Cc and
    /// Bcc, each mailbox once, compared case-insensitively.
    pub fn envelope_recipients(&self) -> Vec<String> {
        let mut recipients: Vec<Address> = Vec::new();
        for address in self.to.iter().chain(&self.cc).chain(&self.bcc) {
            add_unique(&mut recipients, &[], address);
        }
        recipients
            .into_iter()
            .map(|address| address.email)
            .collect()
    }

    /// Checks that the draft can be sent: a valid From, at least one
    /// recipient, valid recipient addresses and message ids, and named,
    /// typed attachments.
    pub fn validate(&self) -> Result<(), ComposeError> {
        if !is_valid_email(&self.from.email) {
            return Err(ComposeError::InvalidFrom {
                email: self.from.email.clone(),
            });
        }

        let recipients: Vec<&Address> = self.to.iter().chain(&self.cc).chain(&self.bcc).collect();
        if recipients.is_empty() {
            return Err(ComposeError::NoRecipients);
        }
        if let Some(invalid) = recipients.iter().find(|a| !is_valid_email(&a.email)) {
            return Err(ComposeError::InvalidRecipient {
                email: invalid.email.clone(),
            });
        }

        let ids = self.in_reply_to.iter().chain(&self.references);
        if let Some(invalid) = ids
            .map(|id| strip_angle_brackets(id))
            .find(|id| !is_valid_message_id(id))
        {
            return Err(ComposeError::InvalidMessageId {
                id: invalid.to_string(),
            });
        }

        self.attachments.iter().try_for_each(validate_attachment)
    }
}

fn validate_attachment(attachment: &AttachmentFile) -> Result<(), ComposeError> {
    if attachment.filename.trim().is_empty() {
        return Err(ComposeError::EmptyFilename);
    }
    if !is_valid_content_type(&attachment.content_type) {
        return Err(ComposeError::InvalidContentType {
            filename: attachment.filename.clone(),
            content_type: attachment.content_type.clone(),
        });
    }
    Ok(())
}

/// Builds the MIME part of one attachment. mail-builder chooses base64 or
/// quoted-printable for it, except for message/rfc822, which must stay
/// readable as a message and is written as it is.
fn attachment_part(attachment: &AttachmentFile) -> MimePart<'_> {
    let content_type = attachment.content_type.trim().to_ascii_lowercase();
    let filename = single_line(&attachment.filename);

    if content_type == "message/rfc822" {
        let data = crate::multipart::to_crlf(&attachment.data);
        // NOTE: a NUL byte or a line over 998 bytes needs "binary", which
        // only servers with BINARYMIME (RFC 3030) accept. Such a message
        // still goes out labelled 7bit or 8bit.
        let encoding = if data.is_ascii() { "7bit" } else { "8bit" };
        return MimePart::new(content_type, BodyPart::Binary(data.into()))
            .attachment(filename)
            .transfer_encoding(encoding);
    }

    MimePart::new(
        content_type,
        BodyPart::Binary(attachment.data.as_slice().into()),
    )
    .attachment(filename)
}

fn builder_address(address: &Address) -> BuilderAddress<'static> {
    let name = address
        .name
        .as_deref()
        .map(single_line)
        .filter(|name| !name.is_empty());
    BuilderAddress::new_address(name, address.email.clone())
}

fn builder_list(addresses: &[Address]) -> BuilderAddress<'static> {
    BuilderAddress::new_list(addresses.iter().map(builder_address).collect())
}

/// Splits an address list at "," and ";" that are not inside a quoted
/// string or angle brackets.
fn split_address_list(input: &str) -> Result<Vec<&str>, ComposeError> {
    let mut entries = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut escaped = false;

    for (at, ch) in input.char_indices() {
        match ch {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '<' if !in_quotes => in_angle = true,
            '>' if !in_quotes => in_angle = false,
            ',' | ';' if !in_quotes && !in_angle => {
                entries.push(&input[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    let last = &input[start..];
    if in_quotes {
        return Err(invalid_address(last, "a quote is not closed"));
    }
    entries.push(last);
    Ok(entries)
}

fn parse_address_entry(entry: &str) -> Result<Address, ComposeError> {
    let Some(open) = entry.rfind('<') else {
        if entry.contains(char::is_whitespace) {
            return Err(invalid_address(
                entry,
                "a name needs the address in angle brackets",
            ));
        }
        return checked_address(entry, None, entry);
    };

    let Some(length) = entry[open..].find('>') else {
        return Err(invalid_address(entry, "the '<' has no closing '>'"));
    };
    if !entry[open + length + 1..].trim().is_empty() {
        return Err(invalid_address(entry, "text follows the '>'"));
    }
    let email = entry[open + 1..open + length].trim();
    let name = unquote(entry[..open].trim());
    checked_address(email, Some(&name), entry)
}

fn checked_address(email: &str, name: Option<&str>, entry: &str) -> Result<Address, ComposeError> {
    if !email.contains('@') {
        return Err(invalid_address(entry, "the address has no '@'"));
    }
    if !is_valid_email(email) {
        return Err(invalid_address(
            entry,
            "the address has characters or dots where none may be",
        ));
    }
    Ok(Address::new(name, email))
}

fn invalid_address(entry: &str, reason: &'static str) -> ComposeError {
    ComposeError::InvalidAddress {
        entry: entry.trim().to_string(),
        reason,
    }
}

/// Removes the quotes around a display name and its backslash escapes.
fn unquote(name: &str) -> String {
    let Some(inner) = name
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return name.to_string();
    };
    let mut unquoted = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(ch) = chars.next() {
        if ch == '\\' {
            unquoted.extend(chars.next());
        } else {
            unquoted.push(ch);
        }
    }
    unquoted
}

/// Checks an address as `local-part@domain` in the dot-atom form of RFC 5322
/// section 3.4.1, with non-ASCII letters allowed as RFC 6531 does, or with a
/// domain literal such as `[192.0.2.1]`. Quoted local parts, such as
/// `"john doe"@example.org`, are rejected to keep the check simple.
fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let atom_char = |ch: char| ch.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(ch);
    let is_dot_atom = |text: &str, allowed: &dyn Fn(char) -> bool| {
        !text.is_empty()
            && text
                .split('.')
                .all(|atom| !atom.is_empty() && atom.chars().all(allowed))
    };

    let domain_is_literal = domain.starts_with('[')
        && domain.ends_with(']')
        && domain.len() > 2
        && domain[1..domain.len() - 1]
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ".:-".contains(ch));
    let domain_is_name = is_dot_atom(domain, &|ch: char| ch.is_alphanumeric() || ch == '-')
        && domain
            .split('.')
            .all(|label| !label.starts_with('-') && !label.ends_with('-'));

    is_dot_atom(local, &atom_char) && (domain_is_name || domain_is_literal)
}

/// Checks a message id without its angle brackets: `left@right` with no
/// whitespace, control characters or angle brackets.
fn is_valid_message_id(id: &str) -> bool {
    let Some((left, right)) = id.split_once('@') else {
        return false;
    };
    let allowed = |ch: char| !ch.is_whitespace() && !ch.is_control() && !"<>\"\\".contains(ch);
    !left.is_empty() && !right.is_empty() && id.chars().all(allowed)
}

/// Checks `type/subtype`, each a token of RFC 2045 section 5.1.
fn is_valid_content_type(content_type: &str) -> bool {
    let token = |text: &str| {
        !text.is_empty()
            && text
                .chars()
                .all(|ch| ch.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(ch))
    };
    content_type
        .trim()
        .split_once('/')
        .is_some_and(|(main, sub)| token(main) && token(sub))
}

fn strip_angle_brackets(id: &str) -> &str {
    let id = id.trim();
    let id = id.strip_prefix('<').unwrap_or(id);
    id.strip_suffix('>').unwrap_or(id).trim()
}

/// Replaces control characters, including line breaks, with spaces, so no
/// text can start a new header line.
fn single_line(text: &str) -> String {
    text.chars()
        .map(|ch| if ch.is_control() { ' ' } else { ch })
        .collect::<String>()
        .trim()
        .to_string()
}

/// Appends `address` to `list` unless `list` or `also` has the same mailbox.
fn add_unique(list: &mut Vec<Address>, also: &[Address], address: &Address) {
    let known = list.iter().chain(also).any(|a| a.is_same_mailbox(address));
    if !known {
        list.push(address.clone());
    }
}

/// Returns In-Reply-To and References for a reply to `parent`, as RFC 5322
/// section 3.6.4 describes. Ids that are not valid are left out, so a
/// malformed parent cannot block the reply.
fn thread_ids(parent: &ParsedMessage) -> (Option<String>, Vec<String>) {
    let parent_id = parent
        .envelope
        .message_id
        .as_deref()
        .filter(|id| is_valid_message_id(id))
        .map(str::to_string);

    let mut references: Vec<String> = if !parent.references.is_empty() {
        parent.references.clone()
    } else if parent.in_reply_to.len() == 1 {
        parent.in_reply_to.clone()
    } else {
        Vec::new()
    };
    references.extend(parent_id.clone());
    references.retain(|id| is_valid_message_id(id));

    (parent_id, references)
}

/// Returns `subject` with `prefix` in front, after removing any leading
/// reply or forward markers named in `markers`, such as "Re:" or "RE :", so
/// the prefix appears once.
fn prefixed_subject(prefix: &str, subject: &str, markers: &[&str]) -> String {
    let mut rest = subject.trim();
    loop {
        let stripped = markers.iter().find_map(|marker| {
            let head = rest.get(..marker.len())?;
            let after = rest.get(marker.len()..)?.trim_start().strip_prefix(':')?;
            head.eq_ignore_ascii_case(marker)
                .then_some(after.trim_start())
        });
        match stripped {
            Some(after) => rest = after,
            None => break,
        }
    }
    format!("{prefix}{rest}")
}

/// Returns the line that introduces the quoted text of a reply.
fn attribution(original: &ParsedMessage) -> String {
    let author = original
        .envelope
        .from
        .first()
        .map_or_else(|| "an unknown sender".to_string(), Address::to_string);
    match original.envelope.date {
        Some(date) => format!("On {}, {author} wrote:", format_date(date)),
        None => format!("{author} wrote:"),
    }
}

/// Formats Unix seconds as `2025-04-01 07:30 UTC`.
// NOTE: shown in UTC because the crate has no time zone database; the UI
// may want local time.
fn format_date(unix_seconds: i64) -> String {
    let date = mail_parser::DateTime::from_timestamp(unix_seconds);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        date.year, date.month, date.day, date.hour, date.minute
    )
}

fn join_addresses(addresses: &[Address]) -> String {
    addresses
        .iter()
        .map(Address::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Envelope, attachment_content, parse};

    fn ann() -> Address {
        Address::new(Some("Ann Example"), "ann@example.org")
    }

    fn me() -> Address {
        Address::new(Some("Me"), "me@clinic.example.org")
    }

    fn original() -> ParsedMessage {
        ParsedMessage {
            envelope: Envelope {
                subject: "Lab results".to_string(),
                from: vec![ann()],
                to: vec![
                    Address::new(None, "ME@clinic.example.org"),
                    Address::new(Some("Bob"), "bob@example.org"),
                ],
                cc: vec![
                    Address::new(None, "carol@example.org"),
                    Address::new(None, "BOB@example.org"),
                    Address::new(None, "me@clinic.example.org"),
                ],
                date: Some(1_743_492_600),
                message_id: Some("c@example.org".to_string()),
                has_attachments: false,
            },
            references: vec!["a@example.org".to_string(), "b@example.org".to_string()],
            in_reply_to: vec!["b@example.org".to_string()],
            text: "Hello,\n\nresults attached.".to_string(),
            ..ParsedMessage::default()
        }
    }

    fn emails(addresses: &[Address]) -> Vec<&str> {
        addresses.iter().map(|a| a.email.as_str()).collect()
    }

    fn sendable() -> Draft {
        Draft {
            from: me(),
            to: vec![ann()],
            subject: "Hello".to_string(),
            body: "Text".to_string(),
            ..Draft::default()
        }
    }

    #[test]
    fn address_list_mixed_forms() {
        let list = parse_address_list(
            "Ann <ann@example.org>, bob@example.org; \"Doe, J\" <j@example.org>",
        );

        assert_eq!(
            list,
            Ok(vec![
                Address::new(Some("Ann"), "ann@example.org"),
                Address::new(None, "bob@example.org"),
                Address::new(Some("Doe, J"), "j@example.org"),
            ])
        );
    }

    #[test]
    fn address_list_skips_empty_entries() {
        assert_eq!(parse_address_list(""), Ok(vec![]));
        assert_eq!(parse_address_list(" , ;"), Ok(vec![]));
        assert_eq!(
            parse_address_list("bob@example.org,"),
            Ok(vec![Address::new(None, "bob@example.org")])
        );
    }

    #[test]
    fn address_list_escaped_quote() {
        let list = parse_address_list(r#""Ann \"A\" B" <ann@example.org>"#);

        assert_eq!(
            list,
            Ok(vec![Address::new(Some("Ann \"A\" B"), "ann@example.org")])
        );
    }

    #[test]
    fn address_list_reads_display_output() {
        let addresses = vec![
            Address::new(Some("Doe, J \"Jo\""), "j@example.org"),
            Address::new(Some("Ann Example"), "ann@example.org"),
            Address::new(None, "bob@example.org"),
        ];
        let typed = join_addresses(&addresses);

        assert_eq!(parse_address_list(&typed), Ok(addresses));
    }

    #[test]
    fn address_list_non_ascii() {
        let list = parse_address_list("Jörg Müller <jörg@müller.example>");

        assert_eq!(
            list,
            Ok(vec![Address::new(
                Some("Jörg Müller"),
                "jörg@müller.example"
            )])
        );
    }

    #[test]
    fn address_list_rejects_bad_entries() {
        let cases = [
            (
                "Ann ann@example.org",
                "a name needs the address in angle brackets",
            ),
            ("bob", "the address has no '@'"),
            ("Ann <ann@example.org", "the '<' has no closing '>'"),
            ("\"Doe, J <j@example.org>", "a quote is not closed"),
            ("<a@example.org> x", "text follows the '>'"),
            (
                "a..b@example.org",
                "the address has characters or dots where none may be",
            ),
            (
                "a@-example.org",
                "the address has characters or dots where none may be",
            ),
            ("Ann <>", "the address has no '@'"),
        ];
        for (input, reason) in cases {
            let result = parse_address_list(&format!("ok@example.org, {input}"));
            let expected = ComposeError::InvalidAddress {
                entry: input.to_string(),
                reason,
            };
            assert_eq!(result, Err(expected), "{input}");
        }
    }

    #[test]
    fn address_error_names_entry_and_fix() {
        let message = parse_address_list("bob").map_err(|e| e.to_string());

        assert_eq!(
            message,
            Err(
                "cannot read address \"bob\": the address has no '@'; write it as \
                 name@example.org or Name <name@example.org>"
                    .to_string()
            )
        );
    }

    #[test]
    fn email_syntax() {
        let valid = [
            "a@example.org",
            "first.last+tag@sub.example.org",
            "o'brien@example.org",
            "jörg@müller.example",
            "root@localhost",
            "a@[192.0.2.1]",
        ];
        let invalid = [
            "",
            "a",
            "@example.org",
            "a@",
            ".a@example.org",
            "a.@example.org",
            "a b@example.org",
            "a@example..org",
            "a@example.org.",
            "a@exa_mple.org",
            "a@example-.org",
            "a@[]",
            "a<b@example.org",
            "a\r\n@example.org",
        ];
        for email in valid {
            assert!(is_valid_email(email), "{email} should be valid");
        }
        for email in invalid {
            assert!(!is_valid_email(email), "{email:?} should be invalid");
        }
    }

    #[test]
    fn reply_subject_prefix_once() {
        let cases = [
            ("Lab results", "Re: Lab results"),
            ("Re: Lab results", "Re: Lab results"),
            ("RE: re: Lab results", "Re: Lab results"),
            ("Re : Lab results", "Re: Lab results"),
            ("AW: Lab results", "Re: Lab results"),
            ("Reports", "Re: Reports"),
            ("Re: Fwd: Lab results", "Re: Fwd: Lab results"),
            ("", "Re: "),
        ];
        for (subject, expected) in cases {
            assert_eq!(prefixed_subject("Re: ", subject, &["re", "aw"]), expected);
        }
    }

    #[test]
    fn forward_subject_prefix_once() {
        assert_eq!(prefixed_subject("Fwd: ", "FW: x", &["fwd", "fw"]), "Fwd: x");
        assert_eq!(
            prefixed_subject("Fwd: ", "Fwd: x", &["fwd", "fw"]),
            "Fwd: x"
        );
        assert_eq!(
            prefixed_subject("Fwd: ", "Re: x", &["fwd", "fw"]),
            "Fwd: Re: x"
        );
    }

    #[test]
    fn reply_goes_to_author() {
        let draft = reply(&original(), &me(), false);

        assert_eq!(draft.to, [ann()]);
        assert_eq!(draft.cc, []);
        assert_eq!(draft.from, me());
        assert_eq!(draft.subject, "Re: Lab results");
    }

    #[test]
    fn reply_prefers_reply_to() {
        let mut parent = original();
        parent.reply_to = vec![Address::new(Some("Desk"), "desk@example.org")];

        let draft = reply(&parent, &me(), false);

        assert_eq!(emails(&draft.to), ["desk@example.org"]);
    }

    #[test]
    fn reply_all_drops_self() {
        let draft = reply(&original(), &me(), true);

        assert_eq!(emails(&draft.to), ["ann@example.org", "bob@example.org"]);
        assert_eq!(emails(&draft.cc), ["carol@example.org"]);
    }

    #[test]
    fn reply_all_no_duplicates() {
        let mut parent = original();
        parent
            .envelope
            .to
            .push(Address::new(None, "Ann@Example.org"));
        parent
            .envelope
            .cc
            .push(Address::new(None, "carol@EXAMPLE.org"));

        let draft = reply(&parent, &me(), true);

        assert_eq!(emails(&draft.to), ["ann@example.org", "bob@example.org"]);
        assert_eq!(emails(&draft.cc), ["carol@example.org"]);
    }

    #[test]
    fn reply_to_own_message() {
        let mut parent = original();
        parent.envelope.from = vec![Address::new(None, "Me@Clinic.example.org")];
        parent.envelope.to = vec![Address::new(None, "dan@example.org")];

        let draft = reply(&parent, &me(), false);

        assert_eq!(emails(&draft.to), ["dan@example.org"]);
    }

    #[test]
    fn reply_threading_from_references() {
        let draft = reply(&original(), &me(), false);

        assert_eq!(draft.in_reply_to.as_deref(), Some("c@example.org"));
        assert_eq!(
            draft.references,
            ["a@example.org", "b@example.org", "c@example.org"]
        );
    }

    #[test]
    fn reply_threading_from_in_reply_to() {
        let mut parent = original();
        parent.references.clear();

        let draft = reply(&parent, &me(), false);

        assert_eq!(draft.references, ["b@example.org", "c@example.org"]);
    }

    #[test]
    fn reply_threading_ambiguous_in_reply_to() {
        let mut parent = original();
        parent.references.clear();
        parent.in_reply_to = vec!["x@example.org".to_string(), "y@example.org".to_string()];

        let draft = reply(&parent, &me(), false);

        assert_eq!(draft.references, ["c@example.org"]);
    }

    #[test]
    fn reply_threading_without_ids() {
        let mut parent = original();
        parent.references.clear();
        parent.in_reply_to.clear();
        parent.envelope.message_id = None;

        let draft = reply(&parent, &me(), false);

        assert_eq!(draft.in_reply_to, None);
        assert_eq!(draft.references, Vec::<String>::new());
    }

    #[test]
    fn reply_skips_malformed_parent_id() {
        let mut parent = original();
        parent.envelope.message_id = Some("no at sign".to_string());

        let draft = reply(&parent, &me(), false);

        assert_eq!(draft.in_reply_to, None);
        assert_eq!(draft.references, ["a@example.org", "b@example.org"]);
        assert_eq!(draft.validate(), Ok(()));
    }

    #[test]
    fn reply_body_quotes_original() {
        let draft = reply(&original(), &me(), false);

        assert_eq!(
            draft.body,
            "On 2025-04-01 07:30 UTC, Ann Example <ann@example.org> wrote:\n\
             > Hello,\n>\n> results attached.\n\n"
        );
    }

    #[test]
    fn reply_body_without_date_or_author() {
        let mut parent = original();
        parent.envelope.date = None;
        parent.envelope.from.clear();

        let draft = reply(&parent, &me(), false);

        assert!(
            draft.body.starts_with("an unknown sender wrote:\n> Hello,"),
            "{}",
            draft.body
        );
    }

    #[test]
    fn quote_stripped() {
        let draft = reply(&original(), &me(), false);
        let body = format!("Thanks, see you Monday.\n\n{}", draft.body);
        assert_eq!(without_quote(&body), "Thanks, see you Monday.\n");
        let forward = forward_inline(&original(), &me());
        let body = format!("FYI\n\n{}", forward.body);
        assert_eq!(without_quote(&body), "FYI\n");
        assert_eq!(without_quote("no quote\n"), "no quote\n");
    }

    #[test]
    fn forward_names_original() {
        let forward = forward_inline(&original(), &me());
        assert_eq!(forward.in_reply_to, None);
        assert_eq!(
            forward.references,
            original()
                .envelope
                .message_id
                .into_iter()
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn decrypted_original_keeps_outer_fields() {
        let outer = b"Received: from a by b\r\nFrom: Lab <lab@example.org>\r\nSubject: [...]\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime;\r\n smime-type=enveloped-data\r\n\r\nMIIB...\r\n";
        let inner =
            b"Content-Type: text/plain; charset=utf-8\r\nSubject: Results\r\n\r\nAll clear.\r\n";
        let rebuilt = String::from_utf8(decrypted_original(outer, inner)).unwrap();
        assert_eq!(
            rebuilt,
            "Received: from a by b\r\nFrom: Lab <lab@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\nSubject: Results\r\n\r\nAll clear.\r\n"
        );
    }

    #[test]
    fn forward_inline_body() {
        let draft = forward_inline(&original(), &me());

        assert_eq!(draft.subject, "Fwd: Lab results");
        assert_eq!(draft.to, []);
        assert_eq!(draft.attachments, []);
        assert_eq!(draft.in_reply_to, None);
        assert_eq!(
            draft.body,
            "-------- Forwarded Message --------\n\
             Subject: Lab results\n\
             Date: 2025-04-01 07:30 UTC\n\
             From: Ann Example <ann@example.org>\n\
             To: ME@clinic.example.org, Bob <bob@example.org>\n\
             Cc: carol@example.org, BOB@example.org, me@clinic.example.org\n\
             \n\
             Hello,\n\nresults attached.\n"
        );
    }

    #[test]
    fn forward_as_attachment_draft() {
        let raw = b"From: ann@example.org\r\nSubject: Lab results\r\n\r\nHello\r\n";

        let draft = forward_as_attachment(raw, &original(), &me());

        assert_eq!(draft.subject, "Fwd: Lab results");
        assert_eq!(draft.body, "");
        assert_eq!(
            draft.attachments,
            [AttachmentFile {
                filename: "Lab results.eml".to_string(),
                content_type: "message/rfc822".to_string(),
                data: raw.to_vec(),
            }]
        );
    }

    #[test]
    fn forward_attachment_filename_safe() {
        let mut parent = original();
        parent.envelope.subject = "../a/b: c?".to_string();
        let named = forward_as_attachment(b"x", &parent, &me());
        parent.envelope.subject = String::new();
        let unnamed = forward_as_attachment(b"x", &parent, &me());

        assert_eq!(named.attachments[0].filename, "_a_b_ c_.eml");
        assert_eq!(unnamed.attachments[0].filename, "forwarded-message.eml");
    }

    #[test]
    fn envelope_recipients_deduplicated() {
        let draft = Draft {
            to: vec![ann(), Address::new(None, "bob@example.org")],
            cc: vec![Address::new(None, "ANN@example.org")],
            bcc: vec![
                Address::new(None, "Bob@Example.org"),
                Address::new(None, "eve@example.org"),
            ],
            ..sendable()
        };

        assert_eq!(
            draft.envelope_recipients(),
            ["ann@example.org", "bob@example.org", "eve@example.org"]
        );
    }

    #[test]
    fn validate_accepts_sendable() {
        assert_eq!(sendable().validate(), Ok(()));

        let bcc_only = Draft {
            to: vec![],
            bcc: vec![ann()],
            ..sendable()
        };
        assert_eq!(bcc_only.validate(), Ok(()));
    }

    #[test]
    fn draft_mime_allows_no_recipients() {
        let mut draft = Draft {
            from: Address::new(None, "ann@example.org"),
            body: "unfinished".into(),
            ..Draft::default()
        };
        assert_eq!(
            draft.to_mime("<d1@example.org>", 0),
            Err(ComposeError::NoRecipients)
        );
        assert!(draft.to_draft_mime("<d1@example.org>", 0).is_ok());

        draft.bcc = vec![Address::new(None, "audit@example.org")];
        let sent = String::from_utf8(draft.to_mime("<d1@example.org>", 0).unwrap()).unwrap();
        assert!(!sent.contains("audit@example.org"), "{sent}");
        let saved = String::from_utf8(draft.to_draft_mime("<d1@example.org>", 0).unwrap()).unwrap();
        assert!(saved.contains("Bcc: <audit@example.org>\r\n"), "{saved}");
    }

    #[test]
    fn validate_rejects_no_recipients() {
        let draft = Draft {
            to: vec![],
            ..sendable()
        };

        assert_eq!(draft.validate(), Err(ComposeError::NoRecipients));
    }

    #[test]
    fn validate_rejects_bad_from() {
        let draft = Draft {
            from: Address::default(),
            ..sendable()
        };

        assert_eq!(
            draft.validate(),
            Err(ComposeError::InvalidFrom {
                email: String::new()
            })
        );
    }

    #[test]
    fn validate_rejects_bad_recipient() {
        let draft = Draft {
            cc: vec![Address::new(None, "not an address")],
            ..sendable()
        };

        assert_eq!(
            draft.validate(),
            Err(ComposeError::InvalidRecipient {
                email: "not an address".to_string()
            })
        );
    }

    #[test]
    fn validate_rejects_bad_reference() {
        let draft = Draft {
            references: vec!["<a@example.org>".to_string(), "broken".to_string()],
            ..sendable()
        };

        assert_eq!(
            draft.validate(),
            Err(ComposeError::InvalidMessageId {
                id: "broken".to_string()
            })
        );
    }

    #[test]
    fn validate_rejects_bad_attachments() {
        let unnamed = AttachmentFile {
            filename: " ".to_string(),
            content_type: "text/plain".to_string(),
            data: vec![],
        };
        let untyped = AttachmentFile {
            filename: "a.pdf".to_string(),
            content_type: "pdf".to_string(),
            data: vec![],
        };

        let with = |file: AttachmentFile| Draft {
            attachments: vec![file],
            ..sendable()
        };
        assert_eq!(with(unnamed).validate(), Err(ComposeError::EmptyFilename));
        assert_eq!(
            with(untyped).validate(),
            Err(ComposeError::InvalidContentType {
                filename: "a.pdf".to_string(),
                content_type: "pdf".to_string()
            })
        );
    }

    #[test]
    fn content_type_syntax() {
        assert!(is_valid_content_type("application/pdf"));
        assert!(is_valid_content_type("application/vnd.ms-excel"));
        assert!(!is_valid_content_type("application/"));
        assert!(!is_valid_content_type("text/plain; charset=utf-8"));
        assert!(!is_valid_content_type("text/plain\r\nBcc: x"));
    }

    #[test]
    fn to_mime_rejects_bad_message_id() {
        let result = sendable().to_mime("<no-at-sign>", 0);

        assert_eq!(
            result,
            Err(ComposeError::InvalidMessageId {
                id: "no-at-sign".to_string()
            })
        );
    }

    #[test]
    fn to_mime_rejects_invalid_draft() {
        let draft = Draft {
            to: vec![],
            ..sendable()
        };

        assert_eq!(
            draft.to_mime("<a@example.org>", 0),
            Err(ComposeError::NoRecipients)
        );
    }

    fn full_draft() -> Draft {
        let pdf: Vec<u8> = (0..=255).collect();
        Draft {
            from: Address::new(Some("Dr. Jörg Müller"), "joerg@clinic.example.org"),
            to: vec![ann(), Address::new(None, "bob@example.org")],
            cc: vec![Address::new(Some("Doe, J"), "j@example.org")],
            bcc: vec![Address::new(None, "secret@example.org")],
            subject: "Befund für Frau Müller – dringend".to_string(),
            body: format!(
                "Guten Tag,\n\nder Befund liegt bei.  \n{}\n\nGrüße\n",
                "lang ".repeat(250)
            ),
            attachments: vec![
                AttachmentFile {
                    filename: "Befund Müller.pdf".to_string(),
                    content_type: "application/pdf".to_string(),
                    data: pdf,
                },
                AttachmentFile {
                    filename: "notes.txt".to_string(),
                    content_type: "text/plain".to_string(),
                    data: b"line one\nM\xfcller\n".to_vec(),
                },
            ],
            ..Draft::default()
        }
    }

    #[test]
    fn to_mime_parses_back() {
        let draft = full_draft();

        let raw = draft.to_mime("<id.1@clinic.example.org>", 1_743_492_600);
        let raw = raw.unwrap_or_default();
        let parsed = parse(&raw);

        assert_eq!(parsed.problems, Vec::<String>::new());
        assert_eq!(parsed.envelope.subject, draft.subject);
        assert_eq!(parsed.envelope.from, std::slice::from_ref(&draft.from));
        assert_eq!(parsed.envelope.to, draft.to);
        assert_eq!(parsed.envelope.cc, draft.cc);
        assert_eq!(parsed.envelope.date, Some(1_743_492_600));
        assert_eq!(
            parsed.envelope.message_id.as_deref(),
            Some("id.1@clinic.example.org")
        );
        assert_eq!(parsed.text, draft.body.trim_end());
        assert!(!parsed.text_from_html);
    }

    #[test]
    fn to_mime_attachments_parse_back() {
        let draft = full_draft();

        let raw = draft
            .to_mime("<id.1@clinic.example.org>", 0)
            .unwrap_or_default();
        let parsed = parse(&raw);

        assert_eq!(parsed.attachments.len(), draft.attachments.len());
        for (sent, received) in draft.attachments.iter().zip(&parsed.attachments) {
            assert_eq!(received.filename, sent.filename);
            assert_eq!(received.content_type, sent.content_type);
            assert_eq!(received.size, sent.data.len(), "{}", sent.filename);
            let content = attachment_content(&raw, received.index);
            assert_eq!(content.as_ref(), Some(&sent.data), "{}", sent.filename);
        }
    }

    #[test]
    fn to_mime_headers() {
        let raw = full_draft()
            .to_mime("id.1@clinic.example.org", 0)
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&raw);
        let header = text.split("\r\n\r\n").next().unwrap_or_default();

        assert!(header.contains("MIME-Version: 1.0\r\n"), "{header}");
        assert!(
            header.contains("Message-ID: <id.1@clinic.example.org>\r\n"),
            "{header}"
        );
        assert!(
            header.contains("Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n"),
            "{header}"
        );
        assert!(header.contains("Subject: =?utf-8?"), "{header}");
        assert!(header.contains("multipart/mixed"), "{header}");
        assert!(text.contains("filename*="), "RFC 2231 file name missing");
        assert!(
            raw.is_ascii(),
            "8-bit data in a message without 8-bit parts"
        );
    }

    #[test]
    fn to_mime_omits_bcc() {
        let raw = full_draft()
            .to_mime("<id.1@clinic.example.org>", 0)
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();

        assert!(!text.contains("bcc"), "{text}");
        assert!(!text.contains("secret@example.org"), "{text}");
    }

    #[test]
    fn to_mime_plain_subject_unencoded() {
        let raw = sendable().to_mime("<a@example.org>", 0).unwrap_or_default();
        let text = String::from_utf8_lossy(&raw);

        assert!(text.contains("\r\nSubject: Hello\r\n"), "{text}");
        assert!(
            text.contains("Content-Type: text/plain; charset=\"utf-8\""),
            "{text}"
        );
    }

    #[test]
    fn to_mime_blocks_header_injection() {
        let draft = Draft {
            subject: "Hi\r\nBcc: evil@example.org".to_string(),
            from: Address::new(Some("Me\r\nX-Evil: 1"), "me@clinic.example.org"),
            ..sendable()
        };

        let raw = draft.to_mime("<a@example.org>", 0).unwrap_or_default();
        let text = String::from_utf8_lossy(&raw);
        let parsed = parse(&raw);

        assert!(!text.contains("\nBcc:"), "{text}");
        assert!(!text.contains("\nX-Evil:"), "{text}");
        assert_eq!(parsed.envelope.subject, "Hi  Bcc: evil@example.org");
    }

    #[test]
    fn to_mime_reply_threading() {
        let draft = reply(&original(), &me(), true);

        let raw = draft
            .to_mime(&new_message_id("clinic.example.org"), 0)
            .unwrap_or_default();
        let parsed = parse(&raw);

        assert_eq!(parsed.in_reply_to, ["c@example.org"]);
        assert_eq!(
            parsed.references,
            ["a@example.org", "b@example.org", "c@example.org"]
        );
        assert_eq!(parsed.envelope.subject, "Re: Lab results");
        assert_eq!(parsed.text, draft.body.trim_end());
        assert_eq!(parsed.envelope.to, draft.to);
        assert_eq!(parsed.envelope.cc, draft.cc);
    }

    #[test]
    fn to_mime_forwarded_message_intact() {
        let original_raw = b"From: Ann <ann@example.org>\r\nSubject: Lab results\r\n\
            Date: Tue, 01 Apr 2025 09:30:00 +0200\r\n\r\nHello,\r\nresults \xc3\xbc.\r\n";
        let original = parse(original_raw);
        let draft = Draft {
            to: vec![Address::new(None, "bob@example.org")],
            ..forward_as_attachment(original_raw, &original, &me())
        };

        let raw = draft.to_mime("<f@example.org>", 0).unwrap_or_default();
        let parsed = parse(&raw);

        assert_eq!(parsed.attachments.len(), 1);
        assert_eq!(parsed.attachments[0].content_type, "message/rfc822");
        assert_eq!(parsed.attachments[0].filename, "Lab results.eml");
        let content = attachment_content(&raw, parsed.attachments[0].index);
        assert_eq!(content.as_deref(), Some(&original_raw[..]));
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("Content-Transfer-Encoding: 8bit"), "{text}");
    }

    #[test]
    fn forwarded_lf_message_gets_crlf() {
        let draft = Draft {
            attachments: vec![AttachmentFile {
                filename: "m.eml".to_string(),
                content_type: "message/rfc822".to_string(),
                data: b"Subject: x\n\nbody\n".to_vec(),
            }],
            ..sendable()
        };

        let raw = draft.to_mime("<f@example.org>", 0).unwrap_or_default();
        let parsed = parse(&raw);
        let content = attachment_content(&raw, parsed.attachments[0].index);

        assert_eq!(content.as_deref(), Some(&b"Subject: x\r\n\r\nbody\r\n"[..]));
        assert!(String::from_utf8_lossy(&raw).contains("Content-Transfer-Encoding: 7bit"));
    }

    #[test]
    fn new_message_id_unique() {
        let ids: Vec<String> = (0..1000).map(|_| new_message_id("example.org")).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();

        assert_eq!(sorted.len(), ids.len());
        for id in &ids {
            assert!(id.starts_with('<'), "{id}");
            assert!(id.ends_with("@example.org>"), "{id}");
            assert!(is_valid_message_id(strip_angle_brackets(id)), "{id}");
        }
    }

    #[test]
    fn new_message_id_cleans_domain() {
        assert!(new_message_id("exa mple<>.org").ends_with("@example.org>"));
        assert!(new_message_id("").ends_with("@localhost>"));
        assert!(new_message_id("..").ends_with("@localhost>"));
    }
}
