//! TEMPORARY stand-in for `wardmail::compose`, which is being written
//! elsewhere. It has the same public signatures so that the composer
//! screen compiles and can be tried; delete this file and import
//! `wardmail::compose` in `src/ui/composer.rs` once the real module lands.
//!
//! NOTE: this stand-in checks addresses only for an "@" and quotes replies
//! without attribution lines; the real module does both properly.

use wardmail::message::{Address, ParsedMessage};

/// Why a draft cannot be turned into a message.
#[derive(Debug)]
pub struct ComposeError(String);

impl std::fmt::Display for ComposeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message being written.
#[derive(Clone, Debug, Default)]
pub struct Draft {
    pub from: Address,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    pub subject: String,
    pub body: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub attachments: Vec<AttachmentFile>,
}

/// A file attached to a draft.
#[derive(Clone, Debug)]
pub struct AttachmentFile {
    pub filename: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// Parses a comma-separated list of `Name <email>` or `email` entries.
pub fn parse_address_list(input: &str) -> Result<Vec<Address>, ComposeError> {
    let mut addresses = Vec::new();
    for entry in input.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let address = match (entry.rfind('<'), entry.rfind('>')) {
            (Some(open), Some(close)) if open < close => Address::new(
                Some(entry[..open].trim().trim_matches('"')),
                &entry[open + 1..close],
            ),
            _ => Address::new(None, entry),
        };
        if !address.email.contains('@') || address.email.contains(char::is_whitespace) {
            return Err(ComposeError(format!(
                "invalid address {entry:?}: write it as name@example.org"
            )));
        }
        addresses.push(address);
    }
    Ok(addresses)
}

fn prefixed(prefix: &str, subject: &str) -> String {
    if subject.to_lowercase().starts_with(&prefix.to_lowercase()) {
        subject.to_owned()
    } else {
        format!("{prefix} {subject}")
    }
}

/// A reply to the author, or to everyone when `all`.
pub fn reply(original: &ParsedMessage, me: &Address, all: bool) -> Draft {
    let envelope = &original.envelope;
    let author = if original.reply_to.is_empty() {
        &envelope.from
    } else {
        &original.reply_to
    };
    let mut to = author.clone();
    let mut cc = Vec::new();
    if all {
        to.extend(
            envelope
                .to
                .iter()
                .filter(|a| !a.is_same_mailbox(me))
                .cloned(),
        );
        cc = envelope
            .cc
            .iter()
            .filter(|a| !a.is_same_mailbox(me))
            .cloned()
            .collect();
    }
    let mut references = original.references.clone();
    references.extend(envelope.message_id.clone());
    Draft {
        from: me.clone(),
        to,
        cc,
        subject: prefixed("Re:", &envelope.subject),
        body: format!("\n\n{}", wardmail::message::quoted_text(original)),
        in_reply_to: envelope.message_id.clone(),
        references,
        ..Draft::default()
    }
}

/// A forward with the original text quoted in the body.
pub fn forward_inline(original: &ParsedMessage, me: &Address) -> Draft {
    Draft {
        from: me.clone(),
        subject: prefixed("Fwd:", &original.envelope.subject),
        body: format!("\n\n-------- Forwarded message --------\n{}", original.text),
        ..Draft::default()
    }
}

/// A forward with the original attached as message/rfc822.
pub fn forward_as_attachment(original_raw: &[u8], original: &ParsedMessage, me: &Address) -> Draft {
    Draft {
        from: me.clone(),
        subject: prefixed("Fwd:", &original.envelope.subject),
        attachments: vec![AttachmentFile {
            filename: "forwarded-message.eml".into(),
            content_type: "message/rfc822".into(),
            data: original_raw.to_vec(),
        }],
        ..Draft::default()
    }
}

fn builder_addresses(list: &[Address]) -> mail_builder::headers::address::Address<'static> {
    let items: Vec<mail_builder::headers::address::Address<'static>> = list
        .iter()
        .map(|a| match &a.name {
            Some(name) => (name.clone(), a.email.clone()).into(),
            None => a.email.clone().into(),
        })
        .collect();
    items.into()
}

impl Draft {
    /// Builds the RFC 5322 message.
    pub fn to_mime(&self, message_id: &str, date_unix: i64) -> Result<Vec<u8>, ComposeError> {
        self.validate()?;
        let mut builder = mail_builder::MessageBuilder::new()
            .from(builder_addresses(std::slice::from_ref(&self.from)))
            .subject(self.subject.clone())
            .message_id(message_id.trim_matches(['<', '>']).to_owned())
            .date(date_unix)
            .text_body(self.body.clone());
        if !self.to.is_empty() {
            builder = builder.to(builder_addresses(&self.to));
        }
        if !self.cc.is_empty() {
            builder = builder.cc(builder_addresses(&self.cc));
        }
        if let Some(parent) = &self.in_reply_to {
            builder = builder.in_reply_to(parent.clone());
        }
        for file in &self.attachments {
            builder = builder.attachment(
                file.content_type.clone(),
                file.filename.clone(),
                file.data.clone(),
            );
        }
        builder
            .write_to_vec()
            .map_err(|e| ComposeError(format!("cannot build the message: {e}")))
    }

    /// Every address the message goes to, Bcc included.
    pub fn envelope_recipients(&self) -> Vec<String> {
        self.to
            .iter()
            .chain(&self.cc)
            .chain(&self.bcc)
            .map(|a| a.email.clone())
            .collect()
    }

    /// Checks that the draft can be sent.
    pub fn validate(&self) -> Result<(), ComposeError> {
        if self.to.is_empty() && self.cc.is_empty() && self.bcc.is_empty() {
            return Err(ComposeError(
                "no recipients: add at least one address in To".into(),
            ));
        }
        Ok(())
    }
}

/// A new unique Message-ID for `domain`.
pub fn new_message_id(domain: &str) -> String {
    format!("{}@{}", wardmail::account::random_id(), domain)
}
