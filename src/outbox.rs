//! The outbox: every outgoing message is stored before submission, so a
//! failure or a crash loses nothing, and a retry never sends twice.
//!
//! States (see [`OutboxState`]): `Queued` → `Sending` → `Submitted` →
//! `Done`. A failure before the message text reached the server goes to
//! `Failed` and may be retried freely. A failure after that point, or a
//! crash while `Sending`, goes to `Uncertain`: the server may have accepted
//! the message, so it is resent only when the user says so. `Submitted`
//! means only the copy to the Sent folder is missing; a retry then appends
//! it without submitting again.
//!
//! Every submission attempt that ends `Submitted`, `Failed` or `Uncertain`
//! appends a "send" entry to the audit log ([`crate::audit`]), and so does
//! each entry that [`recover`] finds interrupted.

use std::sync::Arc;

use crate::account::Account;
use crate::audit::{self, AuditError, SendOutcome};
use crate::guard;
use crate::imap::{self, ImapError, Role};
use crate::net::TlsContext;
use crate::secret::Secret;
use crate::smtp::{self, SmtpError};
use crate::store::{OutboxEntry, OutboxState, Store};
use crate::sync::{SyncError, blocking};

/// Errors from sending an outbox entry.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// Submission failed.
    #[error(transparent)]
    Smtp(#[from] SmtpError),
    /// Copying to Sent failed (the message itself was sent).
    #[error("the message was sent, but saving the copy in Sent failed: {0}")]
    SentCopy(ImapError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] SyncError),
    /// Another window or command is sending this entry right now, or it
    /// changed state since it was read.
    #[error("this message is being sent elsewhere or changed meanwhile; look at the outbox again")]
    Busy,
    /// The reply guard holds the entry: a recipient is below its thread's
    /// floor and no choice for them was recorded.
    #[error(transparent)]
    Held(#[from] crate::guard::Held),
    /// The entry's outcome is unknown and the user has not confirmed a
    /// resend.
    #[error("this message may already have been sent; choose \"Send again\" to send it anyway")]
    NeedsConfirmation,
    /// The attempt ended, but its audit log entry could not be written.
    #[error(
        "the message was {outcome}, but recording that in the audit log failed: {source}; \
         check the disk and run `wardmail audit verify`"
    )]
    Audit {
        /// The message's fate, in words ("sent", "not sent").
        outcome: &'static str,
        /// The reason the entry was not written.
        source: AuditError,
    },
}

/// Adds a message to the outbox. Returns the entry id.
pub async fn enqueue(
    store: &Arc<Store>,
    account: &Account,
    message_id: String,
    raw: Vec<u8>,
    recipients: Vec<String>,
) -> Result<i64, SyncError> {
    let account_id = account.id.clone();
    let from = account.address.clone();
    let raw = crlf(&raw);
    blocking(store, move |s| {
        s.outbox_add(&account_id, &message_id, &raw, &from, &recipients)
    })
    .await
}

/// One method group's copy of a message, for [`enqueue_group`].
#[derive(Clone, Debug)]
pub struct GroupCopy {
    /// The message's Message-ID, the same in every group's copy.
    pub message_id: String,
    /// The group's position, from 0; the outbox key of groups after the
    /// first is the Message-ID followed by `#` and the position plus one.
    pub position: usize,
    /// The copy as submitted.
    pub raw: Vec<u8>,
    /// The group's envelope recipients.
    pub recipients: Vec<String>,
    /// Whether this copy goes to the Sent folder.
    pub sent_copy: bool,
    /// Whether MAIL FROM carries REQUIRETLS.
    pub require_tls: bool,
}

/// Adds one method group's copy to the outbox as an entry of its own, so
/// it is sent, retried and discarded on its own. Returns the entry id.
pub async fn enqueue_group(
    store: &Arc<Store>,
    account: &Account,
    copy: GroupCopy,
) -> Result<i64, SyncError> {
    let account_id = account.id.clone();
    let from = account.address.clone();
    let raw = crlf(&copy.raw);
    blocking(store, move |s| {
        let key = if copy.position == 0 {
            copy.message_id.clone()
        } else {
            format!("{}#{}", copy.message_id, copy.position + 1)
        };
        let id = s.outbox_add(&account_id, &key, &raw, &from, &copy.recipients)?;
        s.outbox_set_group(
            id,
            &copy.message_id,
            copy.position,
            copy.sent_copy,
            copy.require_tls,
        )?;
        Ok(id)
    })
    .await
}

/// Marks entries left in `Sending` by a crash as `Uncertain` and records
/// each in the audit log; call once at start-up before anything is sent.
pub async fn recover(store: &Arc<Store>, account: &str) -> Result<usize, SyncError> {
    const STOPPED: &str = "Wardmail stopped while sending this message";
    let account = account.to_owned();
    blocking(store, move |s| {
        let stuck: Vec<OutboxEntry> = s
            .outbox(&account)?
            .into_iter()
            .filter(|e| e.state == OutboxState::Sending)
            .collect();
        for entry in &stuck {
            s.outbox_set_state(entry.id, OutboxState::Uncertain, Some(STOPPED))?;
            let record = audit::send_entry(s, entry, SendOutcome::Uncertain, Some(STOPPED))?;
            audit::append(s, record)?;
        }
        Ok(stuck.len())
    })
    .await
}

/// Sends one entry and files the copy in Sent. `confirmed` allows
/// resending an `Uncertain` entry. The reply guard checks the entry first
/// (see [`crate::guard`]); `allow_override` is the clinic policy's word on
/// typed overrides.
pub async fn send(
    store: &Arc<Store>,
    account: &Account,
    password: &Secret,
    tls: &TlsContext,
    entry: &OutboxEntry,
    confirmed: bool,
    allow_override: bool,
) -> Result<(), OutboxError> {
    let id = entry.id;
    match entry.state {
        OutboxState::Done => return Ok(()),
        OutboxState::Uncertain | OutboxState::Sending if !confirmed => {
            return Err(OutboxError::NeedsConfirmation);
        }
        OutboxState::Submitted => return finish(store, account, password, tls, entry).await,
        _ => {}
    }
    hold_below_floor(store, entry, allow_override).await?;

    let from: &'static [OutboxState] = if confirmed {
        &[
            OutboxState::Queued,
            OutboxState::Failed,
            OutboxState::Uncertain,
            OutboxState::Sending,
        ]
    } else {
        &[OutboxState::Queued, OutboxState::Failed]
    };
    if !blocking(store, move |s| {
        s.outbox_transition(id, from, OutboxState::Sending)
    })
    .await?
    {
        return Err(OutboxError::Busy);
    }
    let outcome = smtp::submit(
        account,
        password,
        tls,
        &entry.envelope_from,
        &entry.recipients,
        &entry.raw,
        entry.require_tls,
    )
    .await;
    if let Err(error) = outcome {
        let state = if error.certainly_not_sent() {
            OutboxState::Failed
        } else {
            OutboxState::Uncertain
        };
        let text = error.to_string();
        tracing::warn!(account = %account.id, outbox = id, ?state, "submission failed");
        let stored = text.clone();
        blocking(store, move |s| s.outbox_set_state(id, state, Some(&stored))).await?;
        let (outcome, words) = if state == OutboxState::Failed {
            (SendOutcome::Failed, "not sent")
        } else {
            (SendOutcome::Uncertain, "possibly sent")
        };
        record(store, entry, outcome, Some(text), words).await?;
        return Err(error.into());
    }
    blocking(store, move |s| {
        s.outbox_set_state(id, OutboxState::Submitted, None)
    })
    .await?;
    tracing::info!(account = %account.id, outbox = id, recipients = entry.recipients.len(), "message submitted");
    record(store, entry, SendOutcome::Accepted, None, "sent").await?;
    finish(store, account, password, tls, entry).await
}

/// Runs the reply guard on `entry`. A held entry is marked failed with the
/// reason, unless its outcome is uncertain, and the attempt is recorded in
/// the audit log.
async fn hold_below_floor(
    store: &Arc<Store>,
    entry: &OutboxEntry,
    allow_override: bool,
) -> Result<(), OutboxError> {
    let checked = entry.clone();
    let verdict = blocking(store, move |s| {
        guard::check_entry(s, &checked, allow_override)
    })
    .await?;
    let Err(held) = verdict else {
        return Ok(());
    };
    let id = entry.id;
    let text = held.to_string();
    tracing::warn!(account = %entry.account, outbox = id, recipients = held.recipients.len(), "held by the reply guard");
    // An uncertain entry keeps its state: the server may still have it.
    if matches!(entry.state, OutboxState::Queued | OutboxState::Failed) {
        let stored = text.clone();
        blocking(store, move |s| {
            s.outbox_set_state(id, OutboxState::Failed, Some(&stored))
        })
        .await?;
    }
    record(store, entry, SendOutcome::Failed, Some(text), "not sent").await?;
    Err(held.into())
}

/// Completes a submitted entry: files its copy in Sent when it is the one
/// kept there, else marks it done.
async fn finish(
    store: &Arc<Store>,
    account: &Account,
    password: &Secret,
    tls: &TlsContext,
    entry: &OutboxEntry,
) -> Result<(), OutboxError> {
    if entry.sent_copy {
        return copy_to_sent(store, account, password, tls, entry).await;
    }
    let id = entry.id;
    blocking(store, move |s| {
        s.outbox_set_state(id, OutboxState::Done, None)
    })
    .await?;
    Ok(())
}

/// Appends the audit entry of an attempt. If that fails, the error names
/// the message's fate with `words`.
async fn record(
    store: &Arc<Store>,
    entry: &OutboxEntry,
    outcome: SendOutcome,
    error: Option<String>,
    words: &'static str,
) -> Result<(), OutboxError> {
    match audit::record_send(store, entry, outcome, error).await {
        Ok(_) => Ok(()),
        Err(source) => {
            tracing::error!(account = %entry.account, outbox = entry.id, error = %source, "cannot write the audit log");
            Err(OutboxError::Audit {
                outcome: words,
                source,
            })
        }
    }
}

/// Sends every entry that is queued, failed or awaiting its Sent copy.
/// Uncertain entries are left for the user. Returns each entry's outcome.
pub async fn flush(
    store: &Arc<Store>,
    account: &Account,
    password: &Secret,
    tls: &TlsContext,
    allow_override: bool,
) -> Result<Vec<(i64, Result<(), OutboxError>)>, SyncError> {
    let account_id = account.id.clone();
    let entries = blocking(store, move |s| s.outbox(&account_id)).await?;
    let mut outcomes = Vec::new();
    for entry in entries {
        if matches!(entry.state, OutboxState::Uncertain | OutboxState::Sending) {
            continue;
        }
        let outcome = send(store, account, password, tls, &entry, false, allow_override).await;
        outcomes.push((entry.id, outcome));
    }
    Ok(outcomes)
}

async fn copy_to_sent(
    store: &Arc<Store>,
    account: &Account,
    password: &Secret,
    tls: &TlsContext,
    entry: &OutboxEntry,
) -> Result<(), OutboxError> {
    let id = entry.id;
    let result = async {
        let mut connection = imap::connect(account, password, tls).await?;
        let folders = connection.folders().await?;
        let sent = folders.iter().find(|f| f.role == Some(Role::Sent)).map(|f| f.raw_name.clone());
        if let Some(sent) = sent {
            connection.append(&sent, Some("(\\Seen)"), &entry.raw).await?;
        } else {
            tracing::warn!(account = %account.id, "no Sent folder on the server; no sent copy was stored");
        }
        connection.logout().await;
        Ok::<(), ImapError>(())
    }
    .await;
    match result {
        Ok(()) => {
            blocking(store, move |s| {
                s.outbox_set_state(id, OutboxState::Done, None)
            })
            .await?;
            Ok(())
        }
        Err(error) => {
            let text = format!("sent, but not yet copied to Sent: {error}");
            blocking(store, move |s| {
                s.outbox_set_state(id, OutboxState::Submitted, Some(&text))
            })
            .await?;
            Err(OutboxError::SentCopy(error))
        }
    }
}

/// Converts bare LF and bare CR line ends to CRLF (RFC 5322 section 2.1),
/// so SMTP dot-stuffing, which works on CRLF lines, sees every line.
pub fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    let mut index = 0;
    while index < raw.len() {
        match raw[index] {
            b'\r' if raw.get(index + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                index += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            byte => out.push(byte),
        }
        index += 1;
    }
    out
}

/// A message file made ready for submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// Its Message-ID (added when the file had none).
    pub message_id: String,
    /// The bytes to submit, without any Bcc header.
    pub raw: Vec<u8>,
    /// Every To, Cc and Bcc address, deduplicated.
    pub recipients: Vec<String>,
}

/// Why a message file cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The file is not an RFC 5322 message.
    #[error("cannot read the message: it has no header section")]
    NotAMessage,
    /// No To, Cc or Bcc address.
    #[error("cannot send a message without recipients: add a To, Cc or Bcc header")]
    NoRecipients,
}

/// Prepares a complete message file for sending: collects the envelope
/// recipients from To, Cc and Bcc, removes the Bcc header (RFC 5322
/// section 3.6.3: Bcc recipients must not be disclosed), and adds a
/// Message-ID when missing, because the outbox tells messages apart by it.
pub fn prepare_raw(raw: &[u8], domain: &str) -> Result<Prepared, PrepareError> {
    let parsed = mail_parser::MessageParser::default()
        .parse_headers(raw)
        .ok_or(PrepareError::NotAMessage)?;
    if parsed.headers().is_empty() {
        return Err(PrepareError::NotAMessage);
    }
    let mut recipients: Vec<String> = Vec::new();
    for list in [parsed.to(), parsed.cc(), parsed.bcc()]
        .into_iter()
        .flatten()
    {
        for address in list.iter().filter_map(|a| a.address()) {
            if !recipients
                .iter()
                .any(|known| known.eq_ignore_ascii_case(address))
            {
                recipients.push(address.to_owned());
            }
        }
    }
    if recipients.is_empty() {
        return Err(PrepareError::NoRecipients);
    }

    let mut bytes = Vec::with_capacity(raw.len() + 80);
    let message_id = match parsed.message_id() {
        Some(id) => format!("<{id}>"),
        None => {
            let id = format!("<{}@{}>", crate::account::random_id(), domain);
            bytes.extend_from_slice(format!("Message-ID: {id}\r\n").as_bytes());
            id
        }
    };
    let mut position = 0;
    for header in parsed.headers() {
        if matches!(header.name, mail_parser::HeaderName::Bcc) {
            let (start, end) = (header.offset_field as usize, header.offset_end as usize);
            bytes.extend_from_slice(&raw[position..start]);
            position = end;
        }
    }
    bytes.extend_from_slice(&raw[position..]);
    Ok(Prepared {
        message_id,
        raw: bytes,
        recipients,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_strips_bcc_and_collects_recipients() {
        let raw = b"From: a@example.org\r\nTo: b@example.org\r\nBcc: Secret <c@example.org>,\r\n d@example.org\r\nSubject: x\r\nMessage-ID: <m1@example.org>\r\n\r\nbody\r\n";
        let prepared = prepare_raw(raw, "example.org").unwrap();
        assert_eq!(
            prepared.recipients,
            vec!["b@example.org", "c@example.org", "d@example.org"]
        );
        let text = String::from_utf8(prepared.raw).unwrap();
        assert!(!text.to_lowercase().contains("bcc"), "{text}");
        assert!(!text.contains("d@example.org"), "{text}");
        assert!(text.contains("Subject: x\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nbody\r\n"), "{text}");
        assert_eq!(prepared.message_id, "<m1@example.org>");
    }

    #[test]
    fn crlf_fixes_bare_line_ends() {
        assert_eq!(crlf(b"a\nb\r\nc\rd\n.\n"), b"a\r\nb\r\nc\r\nd\r\n.\r\n");
    }

    #[test]
    fn prepare_adds_message_id() {
        let prepared = prepare_raw(b"To: b@example.org\r\n\r\nhi\r\n", "example.org").unwrap();
        assert!(prepared.message_id.ends_with("@example.org>"));
        assert!(
            prepared
                .raw
                .starts_with(format!("Message-ID: {}\r\n", prepared.message_id).as_bytes())
        );
    }

    #[test]
    fn prepare_rejects_no_recipients() {
        let error = prepare_raw(b"Subject: x\r\n\r\nhi\r\n", "example.org").unwrap_err();
        assert!(matches!(error, PrepareError::NoRecipients));
    }
}
