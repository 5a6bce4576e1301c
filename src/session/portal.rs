//! The clinic's secure portal from the desktop: enrolment, sending a
//! recipient's copy through the portal with a notice by e-mail, bringing
//! replies into the Inbox and keeping the portal's events, and revoking,
//! extending or re-issuing the code of a message.
//!
//! The secrets kept per portal message (the link secret, the content key,
//! the reply key and proof) sit in the encrypted store, whose key is in the
//! OS keyring, and so does the device's signing key, directly in the
//! keyring.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Session, SessionError, unblock};
use crate::account::PortalSettings;
use crate::arrival::ArrivalSecurity;
use crate::assess::unix_now;
use crate::audit::{self, AuditEntry};
use crate::compose::{AttachmentFile, Draft, new_message_id};
use crate::message::Address;
use crate::portal::{
    self, ClientError, Device, DeviceKey, Envelope, Factor, FactorKind, Key32, MessageId,
    PortalClient, PortalError, SealOptions, Sealed,
};
use crate::secret::{KeyringEntry, Secret};
use crate::store::{Store, StoreError, sql};

/// Days a message stays on the portal when the settings give none.
pub const DEFAULT_EXPIRY_DAYS: u32 = 14;

/// Wrong codes before a portal message locks.
pub const MAX_ATTEMPTS: u32 = 5;

/// Errors of the portal's desktop side.
#[derive(Debug, thiserror::Error)]
pub enum PortalSendError {
    /// No portal is set up for this profile.
    #[error(
        "this device is not enrolled with a secure portal: ask IT for an enrolment token and \
         run `wardmail portal enrol URL`"
    )]
    NotEnrolled,
    /// The portal refused or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The scheme failed.
    #[error(transparent)]
    Scheme(#[from] PortalError),
    /// A code by e-mail was chosen, and the clinic policy does not allow it.
    #[error(
        "the clinic policy does not allow sending the code by e-mail; give the code by phone, \
         or use a passphrase agreed with the patient"
    )]
    EmailCodeRefused,
    /// A saved passphrase was requested, and none is saved for the address.
    #[error("no passphrase is saved for {0}: agree one with the patient by phone and type it")]
    NoPassphrase(String),
    /// The message id is not one this profile sent.
    #[error("no portal message {0} was sent from this profile: run `wardmail portal list`")]
    Unknown(String),
}

/// The second factor that opens a recipient's portal message.
#[derive(Clone, Debug, Default)]
pub enum PortalFactor {
    /// An 8-digit code that the staff member gives by phone or SMS.
    #[default]
    Phone,
    /// A passphrase agreed with the patient by phone once and reused: the
    /// one typed, or with `None` the one saved for this patient.
    Passphrase(Option<Secret>),
    /// An 8-digit code sent by a second e-mail, only where the clinic
    /// policy allows it; the page labels it low assurance.
    Email,
}

/// A recipient's copy sealed for the portal, not yet uploaded.
pub struct PreparedPortal {
    /// The recipient.
    pub recipient: String,
    /// The sealed message and its secrets.
    sealed: Sealed,
    /// The notice e-mail, without any content of the message.
    pub notice: Vec<u8>,
    /// The e-mail with the code, for [`PortalFactor::Email`].
    pub code_notice: Option<Vec<u8>>,
    /// A passphrase typed for this patient, saved once the upload worked.
    remember: Option<Secret>,
    /// The secrets the store keeps for replies and re-issuing.
    kept: StoredSecrets,
    /// When the portal deletes the message, Unix seconds.
    expires: i64,
}

/// The staff member's part of a copy sent through the portal: the code to
/// give the recipient by phone.
#[derive(Clone)]
pub struct PortalDelivery {
    /// The recipient.
    pub recipient: String,
    /// The portal message id.
    pub portal_id: String,
    /// The second factor that opens it.
    pub factor: FactorKind,
    /// The code to read out, grouped, for [`PortalFactor::Phone`].
    pub code: Option<Secret>,
    /// When the portal deletes the message, Unix seconds.
    pub expires: i64,
}

impl std::fmt::Debug for PortalDelivery {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PortalDelivery")
            .field("portal_id", &portal_short(&self.portal_id))
            .finish_non_exhaustive()
    }
}

/// The secrets and facts kept per portal message, as JSON in the store.
#[derive(Serialize, Deserialize)]
struct StoredSecrets {
    link_secret: String,
    content_key: String,
    reply_key: String,
    proof: String,
    factor: FactorKind,
    iterations: u32,
    subject: String,
    /// The Message-ID of the message sent, with angle brackets.
    message_id: String,
}

/// One portal message as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalMessage {
    /// The portal message id.
    pub portal_id: String,
    /// The Message-ID of the message it carries.
    pub message_id: String,
    /// The recipient.
    pub recipient: String,
    /// The message's subject, kept in the encrypted store only.
    pub subject: String,
    /// When it was uploaded, Unix seconds.
    pub created: i64,
    /// When the portal deletes it, Unix seconds.
    pub expires: i64,
    /// `sent`, `opened`, `locked`, `replied`, `expired` or `revoked`, from
    /// the latest event.
    pub state: String,
    /// Its events, oldest first: kind and Unix time.
    pub events: Vec<(String, i64)>,
}

/// The outcome of one exchange with the portal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortalSync {
    /// New events.
    pub events: usize,
    /// Replies added to the Inbox.
    pub replies: usize,
    /// Replies dropped because they did not open; the reasons are logged.
    pub rejected: usize,
    /// Messages locked after too many wrong codes, among the new events.
    pub locked: usize,
}

/// Returns the first 8 characters of a portal id, as logs name it.
fn portal_short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

impl Session {
    /// Enrols this device with the portal at `url` using a one-time
    /// `token`: makes a device key, stores it in the OS keyring and returns
    /// the settings to save in the profile.
    pub async fn portal_enrol(
        &self,
        url: &str,
        token: &str,
        label: &str,
    ) -> Result<PortalSettings, SessionError> {
        let client = self.portal_client(url).await?;
        let (key, document) = DeviceKey::generate().map_err(PortalSendError::from)?;
        let device_id = client
            .enrol(token, &key.public_key(), label)
            .await
            .map_err(PortalSendError::from)?;
        let entry = KeyringEntry::portal_device(&self.config.profile_id);
        let stored = Secret::new(document.expose_text());
        unblock(move || Ok(entry.store(&stored)?)).await?;
        tracing::info!(
            device = portal_short(&device_id),
            "enrolled with the secure portal"
        );
        Ok(PortalSettings {
            url: Some(client.url().base.clone()),
            device_id: Some(device_id),
            ..self.config.portal.clone()
        })
    }

    /// Returns whether this profile can send through a portal.
    pub fn portal_enrolled(&self) -> bool {
        self.config.portal.is_enrolled()
    }

    async fn portal_client(&self, url: &str) -> Result<PortalClient, SessionError> {
        let (_, tls) = self.network_context().await?;
        Ok(PortalClient::new(url, tls).map_err(PortalSendError::from)?)
    }

    /// Returns the client and the device identity, or why not.
    async fn portal_device(&self) -> Result<(PortalClient, Device), SessionError> {
        let settings = &self.config.portal;
        let (Some(url), Some(device_id)) = (&settings.url, &settings.device_id) else {
            return Err(PortalSendError::NotEnrolled.into());
        };
        let client = self.portal_client(url).await?;
        let entry = KeyringEntry::portal_device(&self.config.profile_id);
        let document = unblock(move || Ok(entry.read()?)).await?;
        let bytes = portal::decode("device key", document.expose())
            .map_err(|error| SessionError::from(PortalSendError::from(error)))?;
        let key = DeviceKey::from_pkcs8(&bytes).map_err(PortalSendError::from)?;
        Ok((
            client,
            Device {
                id: device_id.clone(),
                key,
            },
        ))
    }

    /// Seals `draft` for `recipient` and writes the notice e-mail; nothing
    /// leaves the machine yet. `message_id` is the message's Message-ID.
    ///
    /// The notice's text is the built-in one, or the file `[portal]
    /// notice_template` names, where `{sender}`, `{link}`, `{contact}` and
    /// `{expires}` (a date, YYYY-MM-DD) are replaced. A template without
    /// `{link}` is refused, because the notice would be useless. Reads the
    /// template file, so it runs on the blocking pool.
    ///
    /// `factor` is the second factor that opens it. A passphrase left empty
    /// is the one saved for this recipient, and a code by e-mail needs
    /// `[portal] allow_email_code = true` in the clinic policy.
    pub fn prepare_portal(
        &self,
        draft: &Draft,
        message_id: &str,
        recipient: &str,
        date_unix: i64,
        factor: &PortalFactor,
    ) -> Result<PreparedPortal, SessionError> {
        let settings = &self.config.portal;
        let (scheme_factor, remember) = match factor {
            PortalFactor::Phone => (Factor::Code, None),
            PortalFactor::Email if !super::email_code_allowed() => {
                return Err(PortalSendError::EmailCodeRefused.into());
            }
            PortalFactor::Email => (Factor::EmailCode, None),
            PortalFactor::Passphrase(Some(typed)) => {
                (Factor::Passphrase(typed.clone()), Some(typed.clone()))
            }
            PortalFactor::Passphrase(None) => {
                let saved = saved_passphrase(&self.store, &self.account.id, recipient)?
                    .ok_or_else(|| PortalSendError::NoPassphrase(recipient.to_owned()))?;
                (Factor::Passphrase(saved), None)
            }
        };
        let kind = scheme_factor.kind();

        let Some(url) = settings.url.clone() else {
            return Err(PortalSendError::NotEnrolled.into());
        };
        let days = if settings.expiry_days == 0 {
            DEFAULT_EXPIRY_DAYS
        } else {
            settings.expiry_days
        };
        let expires = date_unix + i64::from(days) * 86_400;

        let envelope = Envelope {
            from: draft.from.to_string(),
            to: recipient.to_owned(),
            subject: draft.subject.clone(),
            date: rfc3339(date_unix),
            text: draft.body.clone(),
            attachments: draft
                .attachments
                .iter()
                .map(|file| portal::Attachment {
                    name: file.filename.clone(),
                    media_type: file.content_type.clone(),
                    data: file.data.clone(),
                })
                .collect(),
            contact: settings.contact.clone(),
        };
        let options = SealOptions {
            iterations: portal::DEFAULT_ITERATIONS,
            expires_at: expires,
            max_attempts: MAX_ATTEMPTS,
        };
        let sealed =
            portal::seal(&envelope, scheme_factor, &options).map_err(PortalSendError::from)?;
        let link = sealed.link(&url);

        let template = match &settings.notice_template {
            Some(path) => Some(read_template(path)?),
            None => None,
        };
        let facts = NoticeFacts {
            name: &self.account.display_name,
            address: &self.account.address,
            recipient,
            link: &link,
            contact: &settings.contact,
            expires,
            factor: kind,
        };
        let notice = notice(&facts, template.as_deref())?;

        let code_notice = match (&sealed.code, kind) {
            (Some(code), FactorKind::EmailCode) => Some(
                code_notice(
                    &self.account.display_name,
                    &self.account.address,
                    recipient,
                    &code.expose_grouped(),
                )
                .to_mime(&new_message_id(&self.account.domain()), date_unix)
                .map_err(|error| SessionError::Task(error.to_string()))?,
            ),
            _ => None,
        };

        let kept = StoredSecrets {
            link_secret: sealed.link_secret.expose_text(),
            content_key: sealed.content_key.expose_text(),
            reply_key: sealed.reply_key.expose_text(),
            proof: sealed.proof.expose_text(),
            factor: kind,
            iterations: options.iterations,
            subject: draft.subject.clone(),
            message_id: message_id.to_owned(),
        };
        Ok(PreparedPortal {
            recipient: recipient.to_owned(),
            sealed,
            notice: notice
                .to_mime(&new_message_id(&self.account.domain()), date_unix)
                .map_err(|error| SessionError::Task(error.to_string()))?,
            code_notice,
            remember,
            kept,
            expires,
        })
    }

    /// Uploads a prepared copy and keeps its secrets. Returns what the
    /// staff member needs.
    pub async fn upload_portal(
        &self,
        prepared: &PreparedPortal,
    ) -> Result<PortalDelivery, SessionError> {
        let (client, device) = self.portal_device().await?;
        client
            .upload(&device, &prepared.sealed.upload)
            .await
            .map_err(PortalSendError::from)?;

        let portal_id = prepared.sealed.id.to_string();
        let kept = serde_json::to_string(&prepared.kept)
            .map_err(|error| SessionError::Task(error.to_string()))?;
        let store = self.store.clone();
        let account = self.account.id.clone();
        let (id, recipient, message_id, expires) = (
            portal_id.clone(),
            prepared.recipient.clone(),
            prepared.kept.message_id.clone(),
            prepared.expires,
        );
        let remember = prepared.remember.clone();
        unblock(move || {
            save_portal_message(
                &store,
                &account,
                &id,
                &message_id,
                &recipient,
                &kept,
                expires,
            )?;
            if let Some(passphrase) = remember {
                save_passphrase(&store, &account, &recipient, &passphrase)?;
            }
            Ok(())
        })
        .await?;

        tracing::info!(account = %self.account.id, portal = portal_short(&portal_id), "message uploaded to the secure portal");
        let factor = prepared.kept.factor;
        Ok(PortalDelivery {
            recipient: prepared.recipient.clone(),
            portal_id,
            factor,
            code: prepared
                .sealed
                .code
                .as_ref()
                .filter(|_| factor == FactorKind::Code)
                .map(|code| Secret::new(code.expose_grouped())),
            expires: prepared.expires,
        })
    }

    /// Fetches new events and replies from the portal. Each event is kept
    /// and written to the audit log. Each reply that opens is added to the
    /// Inbox, encrypted to the user when they have a key, and recorded as
    /// arrived through the portal.
    pub async fn portal_sync(self: &Arc<Self>) -> Result<PortalSync, SessionError> {
        let (client, device) = self.portal_device().await?;
        let store = self.store.clone();
        let account = self.account.id.clone();
        let (events_after, replies_after) = unblock(move || Ok(cursor(&store, &account)?)).await?;
        let mut outcome = PortalSync::default();

        let events = client
            .events(&device, events_after)
            .await
            .map_err(PortalSendError::from)?;
        for event in events {
            let locked = event.kind == "locked";
            let store = self.store.clone();
            let account = self.account.id.clone();
            let recorded = unblock(move || record_event(&store, &account, &event)).await?;
            outcome.events += usize::from(recorded);
            outcome.locked += usize::from(recorded && locked);
        }

        let replies = client
            .replies(&device, replies_after)
            .await
            .map_err(PortalSendError::from)?;
        for reply in replies {
            let seq = reply.seq;
            match self.add_reply(&reply).await {
                Ok(()) => outcome.replies += 1,
                // The reply may be fine, but the mailbox, the store or the
                // keyring failed: the cursor stays before it, so the next
                // sync tries it again rather than losing it.
                Err(
                    error @ (SessionError::Imap(_)
                    | SessionError::Net(_)
                    | SessionError::Store(_)
                    | SessionError::Secret(_)),
                ) => return Err(error),
                Err(error) => {
                    outcome.rejected += 1;
                    tracing::warn!(account = %self.account.id, portal = portal_short(&reply.id), %error, "a portal reply was dropped");
                }
            }
            let store = self.store.clone();
            let account = self.account.id.clone();
            unblock(move || Ok(set_cursor(&store, &account, "replies", seq)?)).await?;
        }
        Ok(outcome)
    }

    /// Opens one reply and adds it to the Inbox.
    async fn add_reply(self: &Arc<Self>, reply: &portal::SealedReply) -> Result<(), SessionError> {
        let store = self.store.clone();
        let account = self.account.id.clone();
        let id = reply.id.clone();
        let (recipient, kept) = unblock(move || {
            load_portal_message(&store, &account, &id)?
                .ok_or_else(|| SessionError::from(PortalSendError::Unknown(id)))
        })
        .await?;
        let portal_id = MessageId::parse(&reply.id).map_err(PortalSendError::from)?;
        let reply_key =
            Key32::parse("reply_key", &kept.reply_key).map_err(PortalSendError::from)?;
        let proof = Key32::parse("proof", &kept.proof).map_err(PortalSendError::from)?;
        let enc = portal::decode("enc", &reply.enc).map_err(PortalSendError::from)?;
        let ciphertext =
            portal::decode("ciphertext", &reply.ciphertext).map_err(PortalSendError::from)?;
        let opened = portal::open_reply(&portal_id, &reply_key, &proof, &enc, &ciphertext)
            .map_err(PortalSendError::from)?;

        let me = Address::new(
            (!self.account.display_name.is_empty()).then_some(self.account.display_name.as_str()),
            &self.account.address,
        );
        let original = kept.message_id.trim_matches(['<', '>']).to_owned();
        let draft = Draft {
            from: Address::new(None, &recipient),
            to: vec![me],
            subject: crate::compose::reply_subject(&kept.subject),
            body: opened.text,
            in_reply_to: Some(original.clone()),
            references: vec![original],
            attachments: opened
                .attachments
                .into_iter()
                .map(|file| AttachmentFile {
                    filename: file.name,
                    content_type: file.media_type,
                    data: file.data,
                })
                .collect(),
            ..Draft::default()
        };
        let message_id = format!(
            "<portal-reply-{}-{}@{}>",
            reply.seq,
            portal_short(&reply.id),
            self.account.domain()
        );
        let raw = self.private_copy(draft, &message_id, reply.at).await?;

        // The record is written before the message reaches the Inbox, so
        // reading it never finds a portal reply without its mark.
        let store = self.store.clone();
        let account = self.account.id.clone();
        let key = message_id.trim_matches(['<', '>']).to_owned();
        unblock(move || {
            let arrival = ArrivalSecurity {
                encrypted: None,
                signed: None,
                tls_into_provider: None,
                portal_notice: false,
                portal_reply: true,
            };
            Ok(store.save_arrival(&account, &key, &arrival)?)
        })
        .await?;
        // Every IMAP server has an INBOX (RFC 3501 section 5.1), so a
        // profile whose folder list was never fetched, as on a first
        // `wardmail portal sync`, still appends there.
        let inbox = match self.folder("INBOX").await {
            Ok(folder) => folder.raw_name,
            Err(SessionError::NoFolder(_)) => "INBOX".to_owned(),
            Err(error) => return Err(error),
        };
        let result = async {
            let mut connection = self.shared().await?;
            Ok(connection.append(&inbox, None, &raw).await?)
        }
        .await;
        self.with_reset(result).await?;
        tracing::info!(account = %self.account.id, portal = portal_short(&reply.id), "portal reply added to the Inbox");
        Ok(())
    }

    /// Files a copy of a message that went only through the portal in Sent,
    /// encrypted to the user when they have a key: its only mail was the
    /// notice, which is not the message. The folder comes from the
    /// server's list, so a profile that never synced finds it too.
    pub(super) async fn file_portal_copy(
        self: &Arc<Self>,
        draft: Draft,
        message_id: &str,
        date_unix: i64,
    ) -> Result<(), SessionError> {
        let raw = self.private_copy(draft, message_id, date_unix).await?;
        let result = async {
            let mut connection = self.shared().await?;
            let folders = connection.folders().await?;
            let sent = folders
                .iter()
                .find(|folder| folder.role == Some(crate::imap::Role::Sent))
                .map(|folder| folder.raw_name.clone())
                .ok_or(SessionError::NoRole("sent"))?;
            Ok(connection.append(&sent, Some("(\\Seen)"), &raw).await?)
        }
        .await;
        self.with_reset(result).await
    }

    /// Writes a message for the user's own mailbox: encrypted to the user
    /// with S/MIME or OpenPGP when they have a key, else in clear.
    async fn private_copy(
        self: &Arc<Self>,
        draft: Draft,
        message_id: &str,
        date_unix: i64,
    ) -> Result<Vec<u8>, SessionError> {
        for method in [super::Method::Smime, super::Method::Openpgp] {
            if let Ok(raw) = self
                .build_private_draft(draft.clone(), message_id.to_owned(), date_unix, method)
                .await
            {
                return Ok(raw);
            }
        }
        let written = draft.to_mime(message_id, date_unix);
        written.map_err(|error| SessionError::Task(error.to_string()))
    }

    /// Lists the portal messages sent from this account, newest first,
    /// with their events.
    pub async fn portal_messages(&self) -> Result<Vec<PortalMessage>, SessionError> {
        let store = self.store.clone();
        let account = self.account.id.clone();
        unblock(move || Ok(list_portal_messages(&store, &account)?)).await
    }

    /// Revokes a portal message: the portal deletes its ciphertext, and the
    /// link shows the clinic's contact from then on.
    pub async fn portal_revoke(&self, portal_id: &str) -> Result<(), SessionError> {
        self.known_portal_message(portal_id).await?;
        let (client, device) = self.portal_device().await?;
        client
            .revoke(&device, portal_id)
            .await
            .map_err(PortalSendError::from)?;
        self.note_portal_action(portal_id, "revoked", None).await
    }

    /// Keeps a portal message `days` more days from now.
    pub async fn portal_extend(&self, portal_id: &str, days: u32) -> Result<i64, SessionError> {
        self.known_portal_message(portal_id).await?;
        let (client, device) = self.portal_device().await?;
        let expires = unix_now() + i64::from(days) * 86_400;
        client
            .extend(&device, portal_id, expires)
            .await
            .map_err(PortalSendError::from)?;
        self.note_portal_action(portal_id, "extended", Some(expires))
            .await?;
        Ok(expires)
    }

    /// Issues a new code for a portal message without uploading it again,
    /// and unlocks it. Returns the code to give the recipient.
    pub async fn portal_reissue(&self, portal_id: &str) -> Result<Secret, SessionError> {
        let (_, kept) = self.known_portal_message(portal_id).await?;
        let (client, device) = self.portal_device().await?;
        let id = MessageId::parse(portal_id).map_err(PortalSendError::from)?;
        let link_secret =
            Key32::parse("link_secret", &kept.link_secret).map_err(PortalSendError::from)?;
        let content_key =
            Key32::parse("content_key", &kept.content_key).map_err(PortalSendError::from)?;
        let reissued = portal::reissue(
            &id,
            &link_secret,
            &content_key,
            Factor::Code,
            kept.iterations,
        )
        .map_err(PortalSendError::from)?;
        client
            .reissue(&device, portal_id, &reissued.body)
            .await
            .map_err(PortalSendError::from)?;
        self.note_portal_action(portal_id, "new code", None).await?;
        let code = reissued
            .code
            .map(|code| code.expose_grouped())
            .unwrap_or_default();
        Ok(Secret::new(code))
    }

    async fn known_portal_message(
        &self,
        portal_id: &str,
    ) -> Result<(String, StoredSecrets), SessionError> {
        let store = self.store.clone();
        let account = self.account.id.clone();
        let id = portal_id.to_owned();
        unblock(move || {
            load_portal_message(&store, &account, &id)?
                .ok_or_else(|| SessionError::from(PortalSendError::Unknown(id)))
        })
        .await
    }

    /// Records a revocation, an extension or a new code in the audit log.
    async fn note_portal_action(
        &self,
        portal_id: &str,
        action: &'static str,
        expires: Option<i64>,
    ) -> Result<(), SessionError> {
        let store = self.store.clone();
        let account = self.account.id.clone();
        let id = portal_id.to_owned();
        unblock(move || {
            let message_id =
                load_portal_message(&store, &account, &id)?.map(|(_, kept)| kept.message_id);
            let mut entry = AuditEntry::new(&account, "portal");
            entry.message_id = message_id;
            entry.outcome = action.to_owned();
            entry
                .details
                .insert("portal".to_owned(), portal_short(&id).to_owned());
            if let Some(expires) = expires {
                entry.details.insert("expires".to_owned(), rfc3339(expires));
                store
                    .db()
                    .execute(
                        "UPDATE portal_message SET expires = ?2 WHERE portal_id = ?1",
                        rusqlite::params![id, expires],
                    )
                    .map_err(sql("updating a portal message"))?;
            }
            if action == "revoked" {
                set_state(&store, &id, "revoked")?;
            }
            audit::append(&store, entry)?;
            Ok(())
        })
        .await
    }
}

/// Reads the clinic's notice template and checks that it has `{link}`.
fn read_template(path: &std::path::Path) -> Result<String, SessionError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        SessionError::Task(format!(
            "cannot read the portal notice template {}: {error}; fix [portal] notice_template \
             in accounts.toml",
            path.display()
        ))
    })?;
    if !text.contains("{link}") {
        return Err(SessionError::Task(format!(
            "the portal notice template {} has no {{link}}; add it where the link belongs",
            path.display()
        )));
    }
    Ok(text)
}

/// Writes the notice e-mail: who sent a secure message, the link and how
/// to get the code, and nothing of the message itself. `template` is the
/// clinic's own text with placeholders, if any.
/// The facts a notice e-mail states.
struct NoticeFacts<'a> {
    /// The sender's display name, or empty.
    name: &'a str,
    /// The sender's address.
    address: &'a str,
    /// The recipient's address.
    recipient: &'a str,
    /// The portal link with the link secret.
    link: &'a str,
    /// The clinic's contact for patients, or empty.
    contact: &'a str,
    /// When the portal deletes the message, Unix seconds.
    expires: i64,
    /// The second factor that opens it.
    factor: FactorKind,
}

fn notice(facts: &NoticeFacts<'_>, template: Option<&str>) -> Result<Draft, SessionError> {
    let NoticeFacts {
        name,
        address,
        recipient,
        link,
        contact,
        expires,
        factor,
    } = *facts;
    let sender = if name.is_empty() { address } else { name };
    let contact_line = if contact.is_empty() {
        format!("If you did not expect it, contact {sender} at {address}.")
    } else {
        format!("If you did not expect it, contact {contact}.")
    };
    let date = crate::calendar::civil(expires);
    let day = format!("{:04}-{:02}-{:02}", date.year, date.month, date.day);
    let body = match template {
        // The link goes in last, so that no other value can bring in a
        // placeholder that a later replacement would fill.
        Some(template) => template
            .replace("{sender}", sender)
            .replace("{contact}", contact)
            .replace("{expires}", &day)
            .replace("{link}", link),
        None => {
            let unlock = match factor {
                FactorKind::Code => format!("the code that {sender} gives you by phone"),
                FactorKind::Passphrase => format!("the passphrase you agreed with {sender}"),
                FactorKind::EmailCode => "the code that comes in a separate e-mail".to_owned(),
            };
            format!(
                "{sender} has sent you a secure message.\n\n\
                 Open it in your browser:\n{link}\n\n\
                 You will need {unlock}. The message can be read until {day}.\n\n\
                 {contact_line}\n"
            )
        }
    };
    Ok(Draft {
        from: Address::new((!name.is_empty()).then_some(name), address),
        to: vec![Address::new(None, recipient)],
        subject: format!("Secure message from {sender}"),
        body,
        ..Draft::default()
    })
}

/// Writes the e-mail that carries the code for [`PortalFactor::Email`]:
/// the code and whose message it opens, nothing else.
fn code_notice(name: &str, address: &str, recipient: &str, code: &str) -> Draft {
    let sender = if name.is_empty() { address } else { name };
    Draft {
        from: Address::new((!name.is_empty()).then_some(name), address),
        to: vec![Address::new(None, recipient)],
        subject: format!("Your code for the secure message from {sender}"),
        body: format!(
            "Your code is {code}.\n\nIt opens the secure message that {sender} sent you; the \
             link is in a separate e-mail.\n"
        ),
        ..Draft::default()
    }
}

/// Returns the passphrase saved for `address`, if any.
fn saved_passphrase(
    store: &Store,
    account: &str,
    address: &str,
) -> Result<Option<Secret>, StoreError> {
    use rusqlite::OptionalExtension as _;
    let text: Option<String> = store
        .db()
        .query_row(
            "SELECT passphrase FROM portal_passphrase WHERE account = ?1 AND address = ?2",
            rusqlite::params![account, address.to_lowercase()],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql("reading a portal passphrase"))?;
    Ok(text.map(Secret::new))
}

/// Saves the passphrase agreed with `address`, replacing an older one.
fn save_passphrase(
    store: &Store,
    account: &str,
    address: &str,
    passphrase: &Secret,
) -> Result<(), StoreError> {
    store
        .db()
        .execute(
            "INSERT INTO portal_passphrase (account, address, passphrase) VALUES (?1, ?2, ?3)
             ON CONFLICT (account, address) DO UPDATE SET passphrase = excluded.passphrase",
            rusqlite::params![account, address.to_lowercase(), passphrase.expose()],
        )
        .map(drop)
        .map_err(sql("saving a portal passphrase"))
}

/// Formats Unix seconds as RFC 3339 in UTC, `2026-12-04T10:00:00Z`.
pub fn rfc3339(unix: i64) -> String {
    let time = crate::calendar::civil(unix);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        time.year, time.month, time.day, time.hour, time.minute, time.second
    )
}

fn save_portal_message(
    store: &Store,
    account: &str,
    portal_id: &str,
    message_id: &str,
    recipient: &str,
    kept: &str,
    expires: i64,
) -> Result<(), StoreError> {
    store
        .db()
        .execute(
            "INSERT INTO portal_message
                 (portal_id, account, message_id, recipient, secrets, created, expires, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'sent')",
            rusqlite::params![
                portal_id,
                account,
                message_id,
                recipient,
                kept,
                unix_now(),
                expires
            ],
        )
        .map(drop)
        .map_err(sql("saving a portal message"))
}

fn load_portal_message(
    store: &Store,
    account: &str,
    portal_id: &str,
) -> Result<Option<(String, StoredSecrets)>, SessionError> {
    use rusqlite::OptionalExtension as _;
    let row: Option<(String, String)> = store
        .db()
        .query_row(
            "SELECT recipient, secrets FROM portal_message WHERE account = ?1 AND portal_id = ?2",
            rusqlite::params![account, portal_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(sql("reading a portal message"))?;
    row.map(|(recipient, secrets)| {
        let kept = serde_json::from_str(&secrets).map_err(|error| {
            SessionError::Task(format!(
                "the stored secrets of portal message {} cannot be read: {error}",
                portal_short(portal_id)
            ))
        })?;
        Ok((recipient, kept))
    })
    .transpose()
}

fn set_state(store: &Store, portal_id: &str, state: &str) -> Result<(), StoreError> {
    store
        .db()
        .execute(
            "UPDATE portal_message SET state = ?2 WHERE portal_id = ?1",
            rusqlite::params![portal_id, state],
        )
        .map(drop)
        .map_err(sql("updating a portal message"))
}

fn cursor(store: &Store, account: &str) -> Result<(i64, i64), StoreError> {
    use rusqlite::OptionalExtension as _;
    Ok(store
        .db()
        .query_row(
            "SELECT events, replies FROM portal_cursor WHERE account = ?1",
            [account],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(sql("reading the portal cursor"))?
        .unwrap_or((0, 0)))
}

fn set_cursor(store: &Store, account: &str, which: &str, seq: i64) -> Result<(), StoreError> {
    // `which` is one of two fixed column names, never input.
    let statement = format!(
        "INSERT INTO portal_cursor (account, {which}) VALUES (?1, ?2)
         ON CONFLICT (account) DO UPDATE SET {which} = MAX({which}, excluded.{which})"
    );
    store
        .db()
        .execute(&statement, rusqlite::params![account, seq])
        .map(drop)
        .map_err(sql("saving the portal cursor"))
}

/// Keeps one event, updates its message's state and writes it to the audit
/// log. Returns false for an event of a message this account did not send.
fn record_event(store: &Store, account: &str, event: &portal::Event) -> Result<bool, SessionError> {
    let known = load_portal_message(store, account, &event.id)?;
    set_cursor(store, account, "events", event.seq)?;
    let Some((recipient, kept)) = known else {
        return Ok(false);
    };
    store
        .db()
        .execute(
            "INSERT OR IGNORE INTO portal_event (account, seq, portal_id, kind, at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![account, event.seq, event.id, event.kind, event.at],
        )
        .map_err(sql("saving a portal event"))?;
    if event.kind != "wrong-code" {
        set_state(store, &event.id, &event.kind)?;
    }
    let mut entry = AuditEntry::new(account, "portal");
    entry.time = event.at;
    entry.message_id = Some(kept.message_id);
    entry.outcome = event.kind.clone();
    entry.recipients = vec![audit::AuditRecipient {
        address: recipient,
        method: "portal".to_owned(),
        evidence: format!("portal message {}", portal_short(&event.id)),
        outcome: event.kind.clone(),
    }];
    audit::append(store, entry)?;
    Ok(true)
}

fn list_portal_messages(store: &Store, account: &str) -> Result<Vec<PortalMessage>, StoreError> {
    let db = store.db();
    let mut statement = db
        .prepare(
            "SELECT portal_id, message_id, recipient, created, expires, state, secrets
             FROM portal_message WHERE account = ?1 ORDER BY created DESC, portal_id",
        )
        .map_err(sql("listing portal messages"))?;
    let mut messages: Vec<PortalMessage> = statement
        .query_map([account], |row| {
            Ok(PortalMessage {
                portal_id: row.get(0)?,
                message_id: row.get(1)?,
                recipient: row.get(2)?,
                created: row.get(3)?,
                expires: row.get(4)?,
                state: row.get(5)?,
                subject: serde_json::from_str::<StoredSecrets>(&row.get::<_, String>(6)?)
                    .map(|kept| kept.subject)
                    .unwrap_or_default(),
                events: Vec::new(),
            })
        })
        .and_then(Iterator::collect)
        .map_err(sql("listing portal messages"))?;
    let mut events = db
        .prepare(
            "SELECT kind, at FROM portal_event WHERE account = ?1 AND portal_id = ?2 ORDER BY seq",
        )
        .map_err(sql("listing portal events"))?;
    for message in &mut messages {
        message.events = events
            .query_map(rusqlite::params![account, message.portal_id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .and_then(Iterator::collect)
            .map_err(sql("listing portal events"))?;
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_from_unix() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_403_600), "2026-12-04T17:00:00Z");
    }

    fn facts() -> NoticeFacts<'static> {
        NoticeFacts {
            name: "Nora Nurse",
            address: "nurse@clinic.example",
            recipient: "patient@mail.example",
            link: "https://portal.clinic.example/m/abc#secret",
            contact: "0123 456 789",
            expires: 1_796_403_600,
            factor: FactorKind::Code,
        }
    }

    #[test]
    fn notice_carries_no_content() {
        let facts = NoticeFacts {
            contact: "Riverside Clinic, 0123 456 789",
            ..facts()
        };
        let draft = notice(&facts, None).unwrap();
        assert_eq!(draft.subject, "Secure message from Nora Nurse");
        assert!(
            draft
                .body
                .contains("https://portal.clinic.example/m/abc#secret")
        );
        assert!(draft.body.contains("2026-12-04"));
        assert!(draft.body.contains("Riverside Clinic, 0123 456 789"));
        assert!(draft.in_reply_to.is_none());
        assert!(draft.references.is_empty());
    }

    #[test]
    fn notice_from_clinic_template() {
        let template = "Riverside Clinic: {sender} left you a message at {link} until {expires}. \
                        Questions: {contact}.";
        let draft = notice(&facts(), Some(template)).unwrap();
        assert_eq!(
            draft.body,
            "Riverside Clinic: Nora Nurse left you a message at \
             https://portal.clinic.example/m/abc#secret until 2026-12-04. Questions: 0123 456 789."
        );
    }

    #[test]
    fn template_without_link_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notice.txt");
        std::fs::write(&path, "Hello {sender}").unwrap();
        let error = read_template(&path).unwrap_err().to_string();
        assert!(error.contains("{link}"), "{error}");
        assert!(error.contains("notice.txt"), "{error}");
    }
}
