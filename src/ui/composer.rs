//! The composer: recipients, subject, text and attachments; Send puts the
//! message in the outbox and submits it, Save draft files it in Drafts.
//!
//! The Message-ID is chosen when the composer opens and kept for every
//! attempt, because the outbox treats a second Send of the same Message-ID
//! as the same message and never queues it twice.

use std::path::Path;
use std::sync::Arc;

use iced::Task;
use iced::widget::{Id, text_editor};

use wardmail::arrival::{self, Floor};
use wardmail::audit::{AuditDraft, PlannedRecipient};
use wardmail::compose::{self, AttachmentFile, Draft};
use wardmail::guard::{Choice, FloorChoice, OVERRIDE_REASON_MIN};
use wardmail::mailto::{Mailto, MailtoError};
use wardmail::message::Address;
use wardmail::openpgp::OpenpgpError;
use wardmail::outbox::OutboxError;
use wardmail::protected::Protection;
use wardmail::route::{
    self, Capabilities, Method as RouteMethod, RoutePlan, Routing, Sealing, Sensitivity,
};
use wardmail::secret::Secret;
use wardmail::session::{
    GroupOutcome, Method, PortalDelivery, PortalFactor, Session, SessionError,
};
use wardmail::smtp::SmtpError;

use super::mailbox::{ComposeStart, Loaded};
use super::{format, status};

mod view;

/// How long typing in a recipient field must pause before the recipients'
/// domains are looked up (DNS, MTA-STS, DANE, a probe of their servers).
const ASSESS_AFTER_PAUSE: std::time::Duration = std::time::Duration::from_millis(700);

/// Widget ids for moving the keyboard focus.
const TO: Id = Id::new("composer-to");
const BODY: Id = Id::new("composer-body");
const OVERRIDE_REASON: Id = Id::new("composer-override-reason");

/// A recipient or subject field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// To.
    To,
    /// Cc.
    Cc,
    /// Bcc.
    Bcc,
    /// Subject.
    Subject,
}

/// The cause of a failed send.
#[derive(Clone, Debug)]
pub enum SendFailure {
    /// The message could not be built; nothing was queued.
    Compose(String),
    /// Signing needs the user's key, which has a passphrase.
    Locked(String),
    /// Queueing or submitting failed.
    Session {
        /// The error.
        error: Arc<SessionError>,
        /// The message as queued, for a retry.
        raw: Arc<Vec<u8>>,
        /// Its envelope recipients.
        recipients: Vec<String>,
    },
}

/// Composer messages.
#[derive(Clone, Debug)]
pub enum Message {
    /// A recipient or subject field changed.
    Edit(Field, String),
    /// The text changed or the caret moved.
    Body(text_editor::Action),
    /// Open the file dialog to attach files.
    Attach,
    /// Attached files were read.
    Attached(Result<Vec<AttachmentFile>, String>),
    /// Remove an attachment.
    RemoveAttachment(usize),
    /// Send the message.
    Send,
    /// Sending ended.
    Sent(Result<(), SendFailure>),
    /// Sending one copy per method group ended, with each group's outcome.
    GroupsSent(Result<Vec<GroupOutcome>, SendFailure>),
    /// Save the message in Drafts.
    SaveDraft,
    /// Saving the draft ended.
    DraftSaved(Result<(), Arc<SessionError>>),
    /// Close the composer, after a confirmation when something was written.
    Close,
    /// Close without saving.
    Discard,
    /// Keep the composer open after all.
    KeepEditing,
    /// Show the outbox.
    OpenOutbox,
    /// Sign the message, or not.
    Sign(bool),
    /// Encrypt the message, or not.
    Encrypt(bool),
    /// Choose OpenPGP or S/MIME.
    Method(Method),
    /// The passphrase field of a locked key changed.
    Passphrase(String),
    /// Unlock the key named in the passphrase prompt.
    Unlock,
    /// Unlocking ended.
    Unlocked(Result<(), Arc<SessionError>>),
    /// The sensitivity changed.
    Sensitivity(Sensitivity),
    /// The recipients' keys and TLS findings arrived.
    Recipients(Result<Vec<Capabilities>, Arc<SessionError>>),
    /// Show or hide one recipient's route details.
    RouteDetails(String),
    /// Typing paused after this many edits: assess the recipients.
    AssessNow(u64),
    /// Take a recipient below the floor off the message.
    RemoveRecipient(String),
    /// Take the original's quoted or forwarded text out.
    WithoutQuote,
    /// Open the form to send a recipient's copy below the floor anyway.
    OverrideStart(String),
    /// The override reason changed.
    OverrideReason(String),
    /// Send the recipient's copy below the floor, for the reason typed.
    OverrideConfirm,
    /// Close the override form.
    OverrideCancel,
    /// Forget the choice made for a recipient below the floor.
    UndoChoice(String),
    /// Open the portal link of the notice replied to in the browser.
    OpenPortalLink,
    /// Choose how a portal recipient unlocks their copy.
    ChooseUnlock(String, PortalUnlock),
    /// The passphrase typed for a portal recipient changed.
    PortalPassphrase(String, String),
}

/// Notifications from the composer to the window.
#[derive(Clone, Debug)]
pub enum Event {
    /// The message was sent; the notice is for the status bar.
    Sent(String),
    /// The composer closed; the outbox may have changed.
    Closed,
    /// Show the outbox (the composer closes).
    OpenOutbox,
}

#[derive(Clone, Debug)]
enum State {
    Editing,
    Sending,
    /// The message is in the outbox but was not sent.
    Queued {
        raw: Arc<Vec<u8>>,
        recipients: Vec<String>,
        summary: String,
        detail: String,
        /// The server may have accepted it; only the outbox resends it.
        uncertain: bool,
        /// When the message went as one copy per method group: every
        /// group, so that Retry resends only the failed ones.
        groups: Vec<GroupOutcome>,
    },
    /// Sent, with copies through the portal: the codes to give the
    /// recipients stay on screen until the user closes the composer.
    Delivered {
        /// Each portal recipient with their code and the expiry date.
        codes: Vec<PortalDelivery>,
    },
}

/// The second factor that opens a portal recipient's copy, as chosen in
/// the composer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortalUnlock {
    /// A code that the user gives by phone.
    Phone,
    /// A passphrase agreed with the patient.
    Passphrase,
    /// A code by a second e-mail, where the clinic policy allows it.
    Email,
}

/// The composer screen.
#[derive(Debug)]
pub struct Composer {
    session: Arc<Session>,
    title: &'static str,
    from: Address,
    to: String,
    cc: String,
    bcc: String,
    subject: String,
    body: text_editor::Content,
    attachments: Vec<AttachmentFile>,
    in_reply_to: Option<String>,
    references: Vec<String>,
    message_id: String,
    errors: Vec<(Field, String)>,
    problem: Option<String>,
    state: State,
    draft_note: Option<String>,
    saving_draft: bool,
    confirm_close: bool,
    edited: bool,
    /// What Wardmail left out of the mailto: link that opened the composer.
    link_notice: Option<String>,
    sign: bool,
    encrypt: bool,
    method: Method,
    /// A key to unlock before signing: its fingerprint and the passphrase
    /// typed so far.
    unlock: Option<(String, String)>,
    /// The clinic's routing rules and own domains.
    routing: Routing,
    internal_domains: Vec<String>,
    sensitivity: Sensitivity,
    /// The recipients' keys and TLS findings, by address.
    known: Vec<Capabilities>,
    /// The route plan for the current recipients and sensitivity.
    plan: Option<RoutePlan>,
    /// The recipient whose route details are open.
    route_detail: Option<String>,
    /// Whether the user changed Sign, Encrypt or the technology, which then
    /// stop following the plan.
    security_chosen: bool,
    /// Recipient edits so far, to start the assessment only after a pause.
    edits: u64,
    /// Why the route plan does not allow Send, if it does not.
    route_problem: Option<String>,
    /// The route plan as sent, for the audit log of every attempt.
    audit: Option<AuditDraft>,
    /// The floor that the message replied to or forwarded sets, when it
    /// requires more than plain delivery.
    floor: Option<Floor>,
    /// Whether the clinic policy lets the user send below the floor.
    allow_override: bool,
    /// The recipients below the floor and why, as last worked out by
    /// `update`.
    below: Vec<(String, String)>,
    /// The user's choices for recipients below the floor.
    choices: Vec<FloorChoice>,
    /// The reason typed for each override, by address.
    override_reasons: Vec<(String, String)>,
    /// The recipient whose override form is open, and the reason so far.
    overriding: Option<(String, String)>,
    /// Whether the user took the original's text out.
    quote_removed: bool,
    /// The portal link of the notice this replies to: the reply belongs in
    /// the portal, and the e-mail reply quotes nothing.
    portal_notice_link: Option<String>,
    /// The second factor of each portal recipient's copy; a code by phone
    /// when not listed.
    unlocks: Vec<(String, PortalUnlock)>,
    /// The passphrase typed per portal recipient.
    passphrases: Vec<(String, String)>,
    /// Whether the clinic policy allows a code by e-mail.
    allow_email_code: bool,
}

impl Composer {
    /// Opens a composer prefilled as `start` requests.
    pub fn new(session: Arc<Session>, start: ComposeStart) -> Composer {
        let account = &session.account;
        let name = (!account.display_name.is_empty()).then_some(account.display_name.as_str());
        let me = Address::new(name, &account.address);
        let mut portal_notice_link = None;
        let (title, mut draft) = match &start {
            ComposeStart::New => (
                "New message",
                Draft {
                    from: me.clone(),
                    ..Draft::default()
                },
            ),
            ComposeStart::Reply { original, all } => (
                if *all { "Reply all" } else { "Reply" },
                compose::reply(&original.parsed, &me, *all),
            ),
            ComposeStart::Forward {
                original:
                    Loaded {
                        raw,
                        parsed,
                        content,
                        decrypted,
                        ..
                    },
                as_attachment,
            } => {
                let draft = if *as_attachment && *decrypted {
                    // The new recipients cannot open a copy encrypted to
                    // this user, so the decrypted original is attached and
                    // the forward itself is encrypted to them.
                    let original = compose::decrypted_original(raw, content);
                    compose::forward_as_attachment(&original, parsed, &me)
                } else if *as_attachment {
                    compose::forward_as_attachment(raw, parsed, &me)
                } else {
                    compose::forward_inline(parsed, &me)
                };
                ("Forward", draft)
            }
        };
        if let ComposeStart::Reply { original, .. } = &start
            && original.arrival.portal_notice
        {
            // A notice carries only the link. The message and the reply to it
            // belong in the portal, so nothing of the notice is quoted.
            draft.body = String::new();
            portal_notice_link = session
                .config
                .portal
                .url
                .as_deref()
                .and_then(|url| arrival::portal_link(&original.parsed.text, url));
        }
        let message_id = compose::new_message_id(&account.domain());
        // A reply or forward starts from the floor its original sets: see
        // `with_policy` for how the floor shapes the routes.
        let floor = match &start {
            ComposeStart::New => None,
            ComposeStart::Reply { original, .. } | ComposeStart::Forward { original, .. } => {
                Some(arrival::floor(&original.arrival, None, original.decrypted))
            }
        }
        .filter(|floor| floor.encrypt || floor.tls);
        let method = match floor.as_ref().and_then(|floor| floor.prefer) {
            Some(arrival::ArrivalEncryption::Smime) => Method::Smime,
            _ => Method::Openpgp,
        };
        Composer {
            title,
            from: draft.from,
            to: join(&draft.to),
            cc: join(&draft.cc),
            bcc: join(&draft.bcc),
            subject: draft.subject,
            body: text_editor::Content::with_text(&writing_space(&draft.body)),
            attachments: draft.attachments,
            in_reply_to: draft.in_reply_to,
            references: draft.references,
            message_id,
            errors: Vec::new(),
            problem: None,
            state: State::Editing,
            draft_note: None,
            saving_draft: false,
            confirm_close: false,
            edited: false,
            link_notice: None,
            sign: false,
            encrypt: false,
            method,
            unlock: None,
            routing: Routing::default(),
            internal_domains: Vec::new(),
            sensitivity: Sensitivity::default(),
            known: Vec::new(),
            plan: None,
            route_detail: None,
            security_chosen: false,
            edits: 0,
            route_problem: None,
            audit: None,
            floor,
            allow_override: false,
            below: Vec::new(),
            choices: Vec::new(),
            override_reasons: Vec::new(),
            overriding: None,
            quote_removed: false,
            portal_notice_link,
            unlocks: Vec::new(),
            passphrases: Vec::new(),
            allow_email_code: false,
            session,
        }
    }

    /// Opens a new message filled in from a `mailto:` link. Addresses are
    /// taken as written and checked on Send, like typed ones. A link that
    /// cannot be parsed opens an empty message that says why.
    pub fn from_mailto(session: Arc<Session>, link: &Result<Mailto, MailtoError>) -> Composer {
        let mut composer = Composer::new(session, ComposeStart::New);
        let mailto = match link {
            Ok(mailto) => mailto,
            Err(error) => {
                composer.link_notice = Some(format!(
                    "The mailto: link could not be read ({error}). Fill in the message yourself."
                ));
                return composer;
            }
        };
        composer.to = mailto.to.join(", ");
        composer.cc = mailto.cc.join(", ");
        composer.bcc = mailto.bcc.join(", ");
        composer.subject = mailto.subject.clone();
        composer.body = text_editor::Content::with_text(&mailto.body);
        composer.in_reply_to = mailto.in_reply_to.clone();
        composer.references = mailto.in_reply_to.iter().cloned().collect();
        composer.link_notice = mailto.attachment_notice();
        if !mailto.dropped_attachments.is_empty() {
            tracing::warn!(
                fields = mailto.dropped_attachments.len(),
                "dropped attachment fields from a mailto: link"
            );
        }
        composer
    }

    /// Applies the clinic's routing rules; the sensitivity starts at the
    /// policy's default, or at the floor of a reply or forward when that is
    /// higher. Under a floor that requires encryption, each rule lists its
    /// encryption methods first, the original's technology first, so every
    /// recipient who can receive encryption gets it. `allow_override` is
    /// the policy's word on sending below the floor.
    ///
    /// Without a list of internal domains in the policy, the account's own
    /// domain counts as internal: mail to colleagues there stays on the
    /// clinic's server.
    pub fn with_policy(
        mut self,
        mut routing: Routing,
        internal_domains: Vec<String>,
        allow_override: bool,
        allow_email_code: bool,
    ) -> Composer {
        self.allow_email_code = allow_email_code;
        self.sensitivity = routing.default_sensitivity;
        if let Some(floor) = &self.floor {
            self.sensitivity = arrival::stronger(self.sensitivity, floor.sensitivity);
            if floor.encrypt {
                arrival::encryption_first(&mut routing, floor.prefer);
            }
        }
        self.allow_override = allow_override;
        self.routing = routing;
        self.internal_domains =
            route::internal_domains(internal_domains, &self.session.account.domain());
        self
    }

    /// Focuses the first field to write in and starts finding out how each
    /// prefilled recipient can be reached.
    pub fn start(&self) -> Task<Message> {
        Task::batch([self.focus(), self.look_up_recipients()])
    }

    /// Returns the envelope recipients typed so far that parse, lower-case.
    fn typed_recipients(&self) -> Vec<String> {
        let mut addresses = Vec::new();
        for field in [&self.to, &self.cc, &self.bcc] {
            for address in compose::parse_address_list(field).unwrap_or_default() {
                let email = address.email.to_lowercase();
                if !addresses.contains(&email) {
                    addresses.push(email);
                }
            }
        }
        addresses
    }

    /// Looks up the keys each recipient has in the store, and schedules the
    /// network assessment for when typing pauses.
    fn look_up_recipients(&self) -> Task<Message> {
        let addresses = self.typed_recipients();
        if addresses.is_empty() {
            return Task::none();
        }
        let missing: Vec<String> = addresses
            .iter()
            .filter(|address| !self.known.iter().any(|known| known.address == **address))
            .cloned()
            .collect();
        // The keys in the store are read at once. The full assessment (DNS,
        // MTA-STS, DANE, a probe of the mail servers) waits until typing
        // pauses, so that half-typed domains are not looked up.
        let quick = if missing.is_empty() {
            Task::none()
        } else {
            let session = self.session.clone();
            Task::perform(
                async move {
                    session
                        .recipient_capabilities(missing)
                        .await
                        .map_err(Arc::new)
                },
                Message::Recipients,
            )
        };
        let edits = self.edits;
        let pause = Task::perform(
            async move {
                tokio::time::sleep(ASSESS_AFTER_PAUSE).await;
                edits
            },
            Message::AssessNow,
        );
        Task::batch([quick, pause])
    }

    /// Starts the full assessment of recipients whose TLS is not assessed
    /// yet, when no edit came since `edits`.
    fn assess_now(&self, edits: u64) -> Task<Message> {
        if edits != self.edits {
            return Task::none();
        }
        let unassessed: Vec<String> = self
            .typed_recipients()
            .into_iter()
            .filter(|address| {
                self.known
                    .iter()
                    .find(|known| known.address == *address)
                    .is_none_or(|known| !known.assessed)
            })
            .collect();
        if unassessed.is_empty() {
            return Task::none();
        }
        let session = self.session.clone();
        Task::perform(
            async move {
                session
                    .assess(unassessed)
                    .await
                    .map(|found| found.iter().map(Capabilities::from).collect())
                    .map_err(Arc::new)
            },
            Message::Recipients,
        )
    }

    /// Makes the route plan again for the current recipients and
    /// sensitivity, and, unless the user chose them, sets Sign, Encrypt and
    /// the technology to what the plan needs.
    fn replan(&mut self) {
        let addresses = self.typed_recipients();
        if addresses.is_empty() {
            self.plan = None;
            return;
        }
        let recipients: Vec<Capabilities> = addresses
            .iter()
            .map(|address| {
                self.known
                    .iter()
                    .find(|known| known.address == *address)
                    .cloned()
                    .unwrap_or_else(|| Capabilities::unknown(address))
            })
            .collect();
        let plan = route::plan(
            &self.routing,
            &self.internal_domains,
            self.sensitivity,
            &recipients,
        );
        if !self.security_chosen {
            match plan.sealing() {
                Some(Sealing::Openpgp) => {
                    (self.sign, self.encrypt, self.method) = (true, true, Method::Openpgp);
                }
                Some(Sealing::Smime) => {
                    (self.sign, self.encrypt, self.method) = (true, true, Method::Smime);
                }
                Some(Sealing::Clear) => self.encrypt = false,
                // Several methods at once, or the portal: each copy is
                // encrypted by its own route and signed, so the switches do
                // not apply.
                Some(Sealing::Portal) | None => self.sign = true,
            }
        }
        self.plan = Some(plan);
    }

    /// Describes how each recipient's copy goes, for the audit log: the
    /// technology when encrypting the whole message one way, else the
    /// planned route, with the evidence, and the policy decision.
    fn audit_draft(&self, recipients: &[String]) -> AuditDraft {
        let Some(plan) = &self.plan else {
            return AuditDraft::submission_only(recipients);
        };
        let per_group = self.sends_per_group();
        let planned = plan
            .routes
            .iter()
            .map(|route| {
                let method = match (self.encrypt && !per_group, self.method) {
                    (true, Method::Openpgp) => RouteMethod::Openpgp.name(),
                    (true, Method::Smime) => RouteMethod::Smime.name(),
                    (false, _) => route.method.map_or("blocked", RouteMethod::name),
                }
                .to_owned();
                PlannedRecipient {
                    address: route.address.clone(),
                    method,
                    evidence: route.reason.clone(),
                }
            })
            .collect();
        let choices = self.floor_choices();
        let mut decision = format!(
            "{} message allowed by the clinic policy ({})",
            plan.sensitivity.label(),
            plan.summary()
        );
        if let Some(floor) = self.floor.as_ref().filter(|_| !choices.is_empty()) {
            decision.push_str(&format!(
                "; below the reply's floor by the user's choice ({})",
                floor.reason
            ));
        }
        let reasons: Vec<String> = self
            .override_reasons
            .iter()
            .filter(|(address, _)| {
                choices
                    .iter()
                    .any(|choice| choice.address == *address && choice.choice == Choice::Override)
            })
            .map(|(address, reason)| format!("{address}: {reason}"))
            .collect();
        AuditDraft {
            recipients: planned,
            decision,
            override_reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
            choices,
        }
    }

    /// Returns the choices for the audit log and the outbox's gate: each
    /// recipient below the floor with what the user chose, and each one the
    /// user removed.
    fn floor_choices(&self) -> Vec<FloorChoice> {
        let mut choices: Vec<FloorChoice> = self
            .below
            .iter()
            .filter_map(|(address, below)| {
                let choice = self.choice_for(address)?;
                Some(FloorChoice {
                    address: address.clone(),
                    below: below.clone(),
                    choice,
                })
            })
            .collect();
        choices.extend(
            self.choices
                .iter()
                .filter(|choice| choice.choice == Choice::Removed)
                .cloned(),
        );
        choices
    }

    /// Returns the reason typed for sending `address`'s copy anyway.
    pub(super) fn override_reason(&self, address: &str) -> Option<&str> {
        self.override_reasons
            .iter()
            .find(|(entry, _)| entry == address)
            .map(|(_, reason)| reason.as_str())
    }

    /// Returns the choice that covers a recipient below the floor, if any.
    pub(super) fn choice_for(&self, address: &str) -> Option<Choice> {
        if self.quote_removed {
            return Some(Choice::WithoutQuote);
        }
        self.choices
            .iter()
            .find(|choice| choice.address == address && choice.choice == Choice::Override)
            .map(|choice| choice.choice)
    }

    /// Returns the recipients below the floor that no choice covers yet.
    pub(super) fn unresolved(&self) -> impl Iterator<Item = &(String, String)> {
        self.below
            .iter()
            .filter(|(address, _)| self.choice_for(address).is_none())
    }

    /// Works out which recipients' copies would travel below the floor, by
    /// the way Send would write them: per method group, or one copy
    /// encrypted or clear as the switches are set.
    fn find_below_floor(&self) -> Vec<(String, String)> {
        let (Some(floor), Some(plan)) = (&self.floor, &self.plan) else {
            return Vec::new();
        };
        let per_group = self.sends_per_group();
        plan.routes
            .iter()
            .filter_map(|route| {
                let method = match (per_group, self.encrypt, self.method) {
                    (true, _, _) => route.method,
                    (false, true, Method::Openpgp) => Some(RouteMethod::Openpgp),
                    (false, true, Method::Smime) => Some(RouteMethod::Smime),
                    // One clear copy: a recipient the plan would encrypt
                    // for gets it by TLS.
                    (false, false, _) => match route.method {
                        Some(RouteMethod::Openpgp | RouteMethod::Smime) => Some(RouteMethod::Tls),
                        other => other,
                    },
                };
                arrival::below_floor(floor, method).map(|why| (route.address.clone(), why))
            })
            .collect()
    }

    /// Returns how `address`, a portal recipient, unlocks their copy.
    pub(super) fn unlock_for(&self, address: &str) -> PortalUnlock {
        self.unlocks
            .iter()
            .find(|(entry, _)| entry == address)
            .map_or(PortalUnlock::Phone, |(_, unlock)| *unlock)
    }

    /// Returns the passphrase typed for `address`, or "".
    pub(super) fn passphrase_for(&self, address: &str) -> &str {
        self.passphrases
            .iter()
            .find(|(entry, _)| entry == address)
            .map_or("", |(_, passphrase)| passphrase.as_str())
    }

    /// Returns each portal recipient's factor for Send.
    fn portal_factors(&self) -> Vec<(String, PortalFactor)> {
        self.unlocks
            .iter()
            .map(|(address, unlock)| {
                let factor = match unlock {
                    PortalUnlock::Phone => PortalFactor::Phone,
                    PortalUnlock::Email => PortalFactor::Email,
                    PortalUnlock::Passphrase => {
                        let typed = self.passphrase_for(address).trim();
                        PortalFactor::Passphrase(
                            (!typed.is_empty()).then(|| Secret::new(typed.to_owned())),
                        )
                    }
                };
                (address.clone(), factor)
            })
            .collect()
    }

    /// Takes `address` off To, Cc and Bcc, and records the removal.
    fn remove_recipient(&mut self, address: &str) {
        if !self.is_editable() {
            return;
        }
        for field in [&mut self.to, &mut self.cc, &mut self.bcc] {
            let Ok(list) = compose::parse_address_list(field) else {
                continue;
            };
            let kept: Vec<Address> = list
                .into_iter()
                .filter(|entry| !entry.email.eq_ignore_ascii_case(address))
                .collect();
            *field = join(&kept);
        }
        let below = self
            .below
            .iter()
            .find(|(entry, _)| entry == address)
            .map(|(_, why)| why.clone())
            .unwrap_or_default();
        self.choices.retain(|choice| choice.address != address);
        self.choices.push(FloorChoice {
            address: address.to_owned(),
            below,
            choice: Choice::Removed,
        });
        self.edited = true;
        self.edits += 1;
        self.replan();
    }

    /// Takes the original's text out: quoted lines, an inline forward's
    /// copy and an attached original.
    fn remove_quote(&mut self) {
        if !self.is_editable() {
            return;
        }
        let text = compose::without_quote(&self.body.text());
        self.body = text_editor::Content::with_text(&text);
        self.attachments
            .retain(|file| !file.content_type.eq_ignore_ascii_case("message/rfc822"));
        self.quote_removed = true;
        self.overriding = None;
        self.edited = true;
    }

    /// Records the override whose form is open, when its reason is long
    /// enough and the policy allows it.
    fn confirm_override(&mut self) {
        let Some((address, reason)) = self.overriding.clone() else {
            return;
        };
        let reason = reason.trim().to_owned();
        if !self.allow_override || reason.chars().count() < OVERRIDE_REASON_MIN {
            return;
        }
        let below = self
            .below
            .iter()
            .find(|(entry, _)| *entry == address)
            .map(|(_, why)| why.clone())
            .unwrap_or_default();
        self.choices.retain(|choice| choice.address != address);
        self.choices.push(FloorChoice {
            address: address.clone(),
            below,
            choice: Choice::Override,
        });
        self.override_reasons.retain(|(entry, _)| *entry != address);
        self.override_reasons.push((address, reason));
        self.overriding = None;
    }

    /// Returns whether Send writes one copy per method group: the plan
    /// mixes methods and the user left the security choices to it.
    pub(super) fn sends_per_group(&self) -> bool {
        !self.security_chosen
            && self
                .plan
                .as_ref()
                .is_some_and(|plan| !plan.routes.is_empty() && plan.sealing().is_none())
    }

    /// Returns why Send is not allowed by the route plan, if it is not, as
    /// last worked out by `update`.
    pub fn route_problem(&self) -> Option<&str> {
        self.route_problem.as_deref()
    }

    /// Works out why Send is not allowed by the route plan, if it is not.
    /// Runs after each message rather than on every frame the view draws.
    fn find_route_problem(&self) -> Option<String> {
        let plan = self.plan.as_ref()?;
        if let Some(blocked) = plan.routes.iter().find(|route| route.method.is_none()) {
            return Some(format!("Blocked: {}: {}", blocked.address, blocked.reason));
        }
        let recipients: Vec<Capabilities> = plan
            .routes
            .iter()
            .map(|route| {
                self.known
                    .iter()
                    .find(|known| known.address == route.address)
                    .cloned()
                    .unwrap_or_else(|| Capabilities::unknown(&route.address))
            })
            .collect();
        let sealing = match (self.encrypt, self.method) {
            (false, _) => Sealing::Clear,
            (true, Method::Openpgp) => Sealing::Openpgp,
            (true, Method::Smime) => Sealing::Smime,
        };
        if self.sends_per_group() {
            // Each method group gets its own copy; only a route that no
            // copy can take (the portal) stops the message.
            return plan
                .groups(&[], false)
                .err()
                .map(|problem| format!("Blocked: {problem}"));
        }
        route::check_sealing(
            &self.routing,
            &self.internal_domains,
            self.sensitivity,
            &recipients,
            sealing,
        )
        .err()
        .map(|problem| format!("Blocked: {problem}"))
    }

    /// Puts the keyboard focus where writing starts: To for a new message
    /// or a forward, the text for a reply.
    pub fn focus(&self) -> Task<Message> {
        let target = if self.to.trim().is_empty() { TO } else { BODY };
        iced::widget::operation::focus(target)
    }

    /// Handles a composer message.
    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        let task = match message {
            Message::Edit(field, value) => {
                self.edit(field, value);
                if field == Field::Subject {
                    Task::none()
                } else {
                    self.edits += 1;
                    self.replan();
                    self.look_up_recipients()
                }
            }
            Message::Body(action) => {
                self.body_action(action);
                Task::none()
            }
            Message::Attach => attach_files(),
            Message::Attached(result) => {
                self.attached(result);
                Task::none()
            }
            Message::RemoveAttachment(position) => {
                if self.is_editable() && position < self.attachments.len() {
                    self.attachments.remove(position);
                    self.edited = true;
                }
                Task::none()
            }
            Message::Sign(on) => {
                self.sign = on;
                self.security_chosen = true;
                Task::none()
            }
            Message::Encrypt(on) => {
                self.encrypt = on;
                self.security_chosen = true;
                Task::none()
            }
            Message::Method(method) => {
                self.method = method;
                self.security_chosen = true;
                Task::none()
            }
            Message::Sensitivity(sensitivity) => {
                self.sensitivity = match &self.floor {
                    Some(floor)
                        if arrival::stronger(sensitivity, floor.sensitivity) != sensitivity =>
                    {
                        self.draft_note = Some(format!(
                            "This stays {}: {}.",
                            floor.sensitivity.label(),
                            floor.reason
                        ));
                        floor.sensitivity
                    }
                    _ => sensitivity,
                };
                self.replan();
                Task::none()
            }
            Message::RemoveRecipient(address) => {
                self.remove_recipient(&address);
                self.look_up_recipients()
            }
            Message::WithoutQuote => {
                self.remove_quote();
                Task::none()
            }
            Message::OverrideStart(address) => {
                if !self.allow_override {
                    return (Task::none(), None);
                }
                self.overriding = Some((address, String::new()));
                iced::widget::operation::focus(OVERRIDE_REASON)
            }
            Message::OverrideReason(reason) => {
                if let Some((_, typed)) = &mut self.overriding {
                    *typed = reason;
                }
                Task::none()
            }
            Message::OverrideConfirm => {
                self.confirm_override();
                Task::none()
            }
            Message::OverrideCancel => {
                self.overriding = None;
                Task::none()
            }
            Message::ChooseUnlock(address, unlock) => {
                if self.is_editable() && (unlock != PortalUnlock::Email || self.allow_email_code) {
                    self.unlocks.retain(|(entry, _)| *entry != address);
                    self.unlocks.push((address, unlock));
                }
                Task::none()
            }
            Message::PortalPassphrase(address, passphrase) => {
                if self.is_editable() {
                    self.passphrases.retain(|(entry, _)| *entry != address);
                    self.passphrases.push((address, passphrase));
                }
                Task::none()
            }
            Message::OpenPortalLink => {
                if let Some(link) = &self.portal_notice_link
                    && let Err(error) = open_in_browser(link)
                {
                    self.problem = Some(format!("The link could not be opened: {error}"));
                }
                Task::none()
            }
            Message::UndoChoice(address) => {
                if self.is_editable() {
                    self.choices.retain(|choice| {
                        choice.address != address || choice.choice == Choice::Removed
                    });
                    self.override_reasons.retain(|(entry, _)| *entry != address);
                }
                Task::none()
            }
            Message::Recipients(Ok(found)) => {
                for mut capabilities in found {
                    if let Some(previous) = self
                        .known
                        .iter()
                        .find(|known| known.address == capabilities.address)
                        && previous.assessed
                        && !capabilities.assessed
                    {
                        // A key lookup that lands after the full assessment
                        // keeps the TLS findings already shown.
                        capabilities.tls = previous.tls;
                        capabilities.tls_evidence = previous.tls_evidence.clone();
                        capabilities.portal = previous.portal;
                        capabilities.details = previous.details.clone();
                        capabilities.assessed = true;
                    }
                    self.known
                        .retain(|known| known.address != capabilities.address);
                    self.known.push(capabilities);
                }
                self.replan();
                Task::none()
            }
            Message::Recipients(Err(error)) => {
                tracing::warn!(%error, "looking up the recipients' keys failed");
                self.problem = Some(format!("The recipients' keys could not be read: {error}"));
                Task::none()
            }
            Message::AssessNow(edits) => self.assess_now(edits),
            Message::RouteDetails(address) => {
                self.route_detail = if self.route_detail.as_ref() == Some(&address) {
                    None
                } else {
                    Some(address)
                };
                Task::none()
            }
            Message::Passphrase(value) => {
                if let Some((_, passphrase)) = &mut self.unlock {
                    *passphrase = value;
                }
                Task::none()
            }
            Message::Unlock => self.unlock_key(),
            Message::Unlocked(result) => {
                match result {
                    Ok(()) => {
                        self.unlock = None;
                        self.problem = None;
                        self.draft_note = Some("Key unlocked. Press Send again.".to_owned());
                    }
                    Err(error) => self.problem = Some(format!("Not unlocked: {error}")),
                }
                Task::none()
            }
            Message::Send => self.send(),
            Message::Sent(result) => return (Task::none(), self.sent(result)),
            Message::GroupsSent(result) => return (Task::none(), self.groups_sent(result)),
            Message::SaveDraft => self.save_draft(),
            Message::DraftSaved(result) => {
                self.draft_saved(result);
                Task::none()
            }
            Message::Close => return (Task::none(), self.close()),
            Message::Discard => return (Task::none(), Some(Event::Closed)),
            Message::KeepEditing => {
                self.confirm_close = false;
                Task::none()
            }
            Message::OpenOutbox => return (Task::none(), Some(Event::OpenOutbox)),
        };
        self.route_problem = self.find_route_problem();
        self.below = self.find_below_floor();
        (task, None)
    }

    fn is_editable(&self) -> bool {
        matches!(self.state, State::Editing)
    }

    fn edit(&mut self, field: Field, value: String) {
        if !self.is_editable() {
            return;
        }
        self.errors.retain(|(f, _)| *f != field);
        self.edited = true;
        match field {
            Field::To => self.to = value,
            Field::Cc => self.cc = value,
            Field::Bcc => self.bcc = value,
            Field::Subject => self.subject = value,
        }
    }

    fn body_action(&mut self, action: text_editor::Action) {
        if action.is_edit() {
            if !self.is_editable() {
                return;
            }
            self.edited = true;
        }
        self.body.perform(action);
    }

    fn attached(&mut self, result: Result<Vec<AttachmentFile>, String>) {
        match result {
            Ok(files) if self.is_editable() => {
                self.edited |= !files.is_empty();
                self.attachments.extend(files);
            }
            Ok(_) => {}
            Err(error) => self.problem = Some(error),
        }
    }

    fn error(&self, field: Field) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, e)| e.as_str())
    }

    /// Builds the draft, or records the fields that do not parse.
    fn draft(&mut self) -> Option<Draft> {
        self.errors.clear();
        self.problem = None;
        let mut parse = |field: Field, value: &str| match compose::parse_address_list(value) {
            Ok(list) => list,
            Err(error) => {
                self.errors.push((field, error.to_string()));
                Vec::new()
            }
        };
        let to = parse(Field::To, &self.to.clone());
        let cc = parse(Field::Cc, &self.cc.clone());
        let bcc = parse(Field::Bcc, &self.bcc.clone());
        if !self.errors.is_empty() {
            return None;
        }
        Some(Draft {
            from: self.from.clone(),
            to,
            cc,
            bcc,
            subject: self.subject.clone(),
            body: self.body.text(),
            in_reply_to: self.in_reply_to.clone(),
            references: self.references.clone(),
            attachments: self.attachments.clone(),
        })
    }

    fn send(&mut self) -> Task<Message> {
        let session = self.session.clone();
        let message_id = self.message_id.clone();
        match &self.state {
            State::Sending
            | State::Delivered { .. }
            | State::Queued {
                uncertain: true, ..
            } => Task::none(),
            State::Queued { groups, .. } if !groups.is_empty() => {
                let groups = groups.clone();
                self.state = State::Sending;
                Task::perform(resend_groups(session, groups), Message::GroupsSent)
            }
            State::Queued {
                raw, recipients, ..
            } => {
                // A retry. The outbox already contains this Message-ID, so it
                // submits the queued copy again.
                let (raw, recipients) = (raw.clone(), recipients.clone());
                self.state = State::Sending;
                let audit = self
                    .audit
                    .clone()
                    .unwrap_or_else(|| AuditDraft::submission_only(&recipients));
                Task::perform(
                    submit(session, message_id, raw, recipients, audit),
                    Message::Sent,
                )
            }
            State::Editing => {
                let Some(draft) = self.draft() else {
                    return Task::none();
                };
                if let Err(error) = draft.validate() {
                    self.problem = Some(error.to_string());
                    return Task::none();
                }
                if let Some(problem) = self.route_problem() {
                    self.problem = Some(format!("Not sent. {problem}"));
                    return Task::none();
                }
                let unresolved = self.unresolved().count();
                if unresolved > 0 {
                    self.problem = Some(format!(
                        "Not sent. {unresolved} recipient(s) would get this with less protection \
                         than the message it answers. Choose for each of them in the box above."
                    ));
                    return Task::none();
                }
                self.state = State::Sending;
                let audit = self.audit_draft(&draft.envelope_recipients());
                self.audit = Some(audit.clone());
                if self.sends_per_group()
                    && let Some(plan) = self.plan.clone()
                {
                    let sign = self.sign.then_some(self.method);
                    let factors = self.portal_factors();
                    return Task::perform(
                        async move {
                            session
                                .send_planned_with(
                                    draft,
                                    message_id,
                                    format::now(),
                                    &plan,
                                    sign,
                                    audit,
                                    &factors,
                                )
                                .await
                                .map_err(|error| match error {
                                    SessionError::Openpgp(OpenpgpError::KeyLocked {
                                        fingerprint,
                                    }) => SendFailure::Locked(fingerprint),
                                    other => SendFailure::Compose(other.to_string()),
                                })
                        },
                        Message::GroupsSent,
                    );
                }
                let protection = Protection {
                    sign: self.sign,
                    encrypt: self.encrypt,
                };
                let method = self.method;
                Task::perform(
                    async move {
                        let recipients = draft.envelope_recipients();
                        let raw = if protection.sign || protection.encrypt {
                            let date = format::now();
                            session
                                .build_protected(
                                    draft,
                                    message_id.clone(),
                                    date,
                                    method,
                                    protection,
                                )
                                .await
                                .map_err(|error| match error {
                                    SessionError::Openpgp(OpenpgpError::KeyLocked {
                                        fingerprint,
                                    }) => SendFailure::Locked(fingerprint),
                                    other => SendFailure::Compose(other.to_string()),
                                })?
                        } else {
                            build(draft, message_id.clone(), Purpose::Send)
                                .await
                                .map_err(SendFailure::Compose)?
                        };
                        submit(session, message_id, Arc::new(raw), recipients, audit).await
                    },
                    Message::Sent,
                )
            }
        }
    }

    fn sent(&mut self, result: Result<(), SendFailure>) -> Option<Event> {
        let (error, raw, recipients) = match result {
            Ok(()) => {
                tracing::info!(account = %self.session.account.id, "message sent");
                return Some(Event::Sent("Message sent.".to_owned()));
            }
            Err(SendFailure::Compose(error)) => {
                self.state = State::Editing;
                self.problem = Some(format!("Not sent: {error}"));
                return None;
            }
            Err(SendFailure::Locked(fingerprint)) => {
                self.state = State::Editing;
                self.problem = Some(
                    "Not sent yet: your OpenPGP key is protected by a passphrase. Enter it below \
                     and press Unlock, then Send again."
                        .to_owned(),
                );
                self.unlock = Some((fingerprint, String::new()));
                return None;
            }
            Err(SendFailure::Session {
                error,
                raw,
                recipients,
            }) => (error, raw, recipients),
        };

        match error.as_ref() {
            SessionError::Outbox(OutboxError::SentCopy(_)) => Some(Event::Sent(
                "Message sent. Saving its copy in Sent failed; Wardmail tries again from the Outbox.".to_owned(),
            )),
            SessionError::Outbox(outbox) => {
                let uncertain = matches!(
                    outbox,
                    OutboxError::NeedsConfirmation | OutboxError::Smtp(SmtpError::Uncertain { .. })
                );
                let summary = if uncertain {
                    "Not confirmed: the connection failed after the message was handed to the server, so it may \
                     already have been sent. It is kept in the Outbox, where you can decide whether to send it again."
                        .to_owned()
                } else {
                    format!(
                        "Not sent. The message is kept in the Outbox exactly as shown here. {} \
                         Retry sends it now; you can also close this window and send it later from the Outbox.",
                        status::Problem::new("Sending", &error).summary
                    )
                };
                self.state = State::Queued { raw, recipients, summary, detail: error.to_string(), uncertain, groups: Vec::new() };
                None
            }
            other => {
                // Queueing itself failed, so nothing is in the outbox and
                // the message can still be edited.
                self.state = State::Editing;
                self.problem = Some(format!("Not sent, and not stored in the Outbox: {other}"));
                None
            }
        }
    }

    /// Shows the outcome of a send per method group: done when every group
    /// went, else which recipients' copies failed, kept for Retry.
    fn groups_sent(&mut self, result: Result<Vec<GroupOutcome>, SendFailure>) -> Option<Event> {
        let groups = match result {
            Ok(groups) => groups,
            Err(failure) => return self.sent(Err(failure)),
        };
        let failed: Vec<&GroupOutcome> = groups.iter().filter(|g| !group_submitted(g)).collect();
        if failed.is_empty() {
            tracing::info!(account = %self.session.account.id, groups = groups.len(), "message sent per method group");
            let codes: Vec<PortalDelivery> = groups
                .iter()
                .filter_map(|group| group.portal.clone())
                .collect();
            if !codes.is_empty() {
                self.state = State::Delivered { codes };
                return None;
            }
            return Some(Event::Sent(format!(
                "Message sent as {} copies, one per delivery method.",
                groups.len()
            )));
        }
        let uncertain = failed.iter().any(|group| {
            matches!(
                group.result.as_ref().map_err(AsRef::as_ref),
                Err(SessionError::Outbox(
                    OutboxError::NeedsConfirmation | OutboxError::Smtp(SmtpError::Uncertain { .. })
                ))
            )
        });
        let names: Vec<String> = failed
            .iter()
            .flat_map(|group| group.recipients.clone())
            .collect();
        let detail: Vec<String> = failed
            .iter()
            .filter_map(|group| {
                let error = group.result.as_ref().err()?;
                Some(format!("{}: {error}", group.recipients.join(", ")))
            })
            .collect();
        let submitted = groups.len() - failed.len();
        let summary = if uncertain {
            format!(
                "Not confirmed for {}: the connection failed after the copy was handed to the \
                 server, so it may already have been sent. The other {submitted} copies were sent. \
                 The unconfirmed copy is kept in the Outbox, where you can decide whether to \
                 send it again.",
                names.join(", ")
            )
        } else {
            format!(
                "Not sent to {}. The other {submitted} copies were sent. The failed copies are kept \
                 in the Outbox; Retry sends only them.",
                names.join(", ")
            )
        };
        self.state = State::Queued {
            raw: Arc::new(Vec::new()),
            recipients: names,
            summary,
            detail: detail.join("\n"),
            uncertain,
            groups,
        };
        None
    }

    fn unlock_key(&mut self) -> Task<Message> {
        let Some((fingerprint, passphrase)) = self.unlock.clone() else {
            return Task::none();
        };
        let session = self.session.clone();
        Task::perform(
            async move {
                session
                    .unlock_openpgp(fingerprint, Secret::new(passphrase))
                    .await
                    .map(drop)
                    .map_err(Arc::new)
            },
            Message::Unlocked,
        )
    }

    fn save_draft(&mut self) -> Task<Message> {
        if self.saving_draft || !self.is_editable() {
            return Task::none();
        }
        let Some(draft) = self.draft() else {
            return Task::none();
        };
        self.saving_draft = true;
        self.draft_note = None;
        let session = self.session.clone();
        let message_id = compose::new_message_id(&session.account.domain());
        // A draft of a reply to protected mail, or of an encrypted message,
        // is stored encrypted to the user alone, on the server and so in
        // the local copy of Drafts.
        let private = (self.encrypt || self.floor.as_ref().is_some_and(|floor| floor.encrypt))
            .then_some(self.method);
        Task::perform(
            async move {
                let raw = match private {
                    Some(method) => {
                        session
                            .build_private_draft(draft, message_id, format::now(), method)
                            .await?
                    }
                    None => build(draft, message_id, Purpose::Draft)
                        .await
                        .map_err(SessionError::Task)?,
                };
                session.save_draft(&raw).await
            },
            |result| Message::DraftSaved(result.map_err(Arc::new)),
        )
    }

    fn draft_saved(&mut self, result: Result<(), Arc<SessionError>>) {
        self.saving_draft = false;
        match result {
            Ok(()) => {
                self.edited = false;
                self.draft_note = Some(format!(
                    "Saved in Drafts at {}.",
                    format::time_of_day(format::now())
                ));
            }
            Err(error) => {
                self.problem = Some(format!(
                    "{} {error}",
                    status::Problem::new("Saving the draft", &error).summary
                ));
            }
        }
    }

    fn close(&mut self) -> Option<Event> {
        if matches!(self.state, State::Sending) {
            return None;
        }
        if let State::Delivered { codes } = &self.state {
            return Some(Event::Sent(format!(
                "Message sent; {} through the secure portal.",
                codes.len()
            )));
        }
        if self.edited && self.is_editable() {
            self.confirm_close = true;
            return None;
        }
        Some(Event::Closed)
    }
}

fn join(addresses: &[Address]) -> String {
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Puts two empty lines above a quoted or forwarded text, so that the caret,
/// which starts on the first line, is where the user writes.
fn writing_space(body: &str) -> String {
    if body.is_empty() || body.starts_with('\n') {
        body.to_owned()
    } else {
        format!("\n\n{body}")
    }
}

/// What a built message is for: sending drops Bcc and needs a recipient,
/// a draft keeps everything.
#[derive(Clone, Copy)]
enum Purpose {
    Send,
    Draft,
}

/// Builds the MIME message on the blocking pool (attachments can be large).
async fn build(draft: Draft, message_id: String, purpose: Purpose) -> Result<Vec<u8>, String> {
    let date = format::now();
    tokio::task::spawn_blocking(move || match purpose {
        Purpose::Send => draft.to_mime(&message_id, date),
        Purpose::Draft => draft.to_draft_mime(&message_id, date),
    })
    .await
    .map_err(|e| format!("cannot build the message: {e}"))?
    .map_err(|e| e.to_string())
}

async fn submit(
    session: Arc<Session>,
    message_id: String,
    raw: Arc<Vec<u8>>,
    recipients: Vec<String>,
    audit: AuditDraft,
) -> Result<(), SendFailure> {
    match session
        .send_with_audit(message_id, raw.as_ref().clone(), recipients.clone(), audit)
        .await
    {
        Ok(_) => Ok(()),
        Err(error) => Err(SendFailure::Session {
            error: Arc::new(error),
            raw,
            recipients,
        }),
    }
}

/// Returns whether the server accepted a group's copy. A failed copy to Sent
/// counts as sent, because the outbox files it later.
fn group_submitted(group: &GroupOutcome) -> bool {
    match &group.result {
        Ok(()) => true,
        Err(error) => matches!(
            error.as_ref(),
            SessionError::Outbox(OutboxError::SentCopy(_))
        ),
    }
}

/// Resends the groups that the server did not accept, and returns every group with its
/// new outcome.
async fn resend_groups(
    session: Arc<Session>,
    mut groups: Vec<GroupOutcome>,
) -> Result<Vec<GroupOutcome>, SendFailure> {
    for group in groups.iter_mut().filter(|group| !group_submitted(group)) {
        group.result = session.resend(group.outbox, false).await.map_err(Arc::new);
    }
    Ok(groups)
}

/// Opens `link` in the default browser, without waiting for it.
fn open_in_browser(link: &str) -> std::io::Result<()> {
    let mut command = if cfg!(target_os = "windows") {
        let mut command = std::process::Command::new("explorer");
        command.arg(link);
        command
    } else if cfg!(target_os = "macos") {
        let mut command = std::process::Command::new("open");
        command.arg(link);
        command
    } else {
        let mut command = std::process::Command::new("xdg-open");
        command.arg(link);
        command
    };
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
}

/// Asks for files and reads them.
fn attach_files() -> Task<Message> {
    Task::perform(
        async {
            let Some(handles) = rfd::AsyncFileDialog::new()
                .set_title("Attach files")
                .pick_files()
                .await
            else {
                return Ok(Vec::new());
            };
            let mut files = Vec::with_capacity(handles.len());
            for handle in handles {
                let path = handle.path().to_path_buf();
                let data = tokio::fs::read(&path)
                    .await
                    .map_err(|e| format!("Cannot attach {}: {e}", path.display()))?;
                let filename = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                files.push(AttachmentFile {
                    content_type: content_type(&path).to_owned(),
                    filename,
                    data,
                });
            }
            Ok(files)
        },
        Message::Attached,
    )
}

/// Guesses a MIME type from the file extension, for the common kinds of
/// clinic attachments. Anything else is sent as application/octet-stream.
fn content_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "tif" | "tiff" => "image/tiff",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "odt" => "application/vnd.oasis.opendocument.text",
        "zip" => "application/zip",
        "eml" => "message/rfc822",
        "dcm" => "application/dicom",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_text_gets_writing_space() {
        assert_eq!(
            writing_space("On Monday, Lee wrote:\n> hi"),
            "\n\nOn Monday, Lee wrote:\n> hi"
        );
        assert_eq!(writing_space(""), "");
        assert_eq!(writing_space("\n\n> hi"), "\n\n> hi");
    }

    #[test]
    fn content_type_by_extension() {
        assert_eq!(
            content_type(Path::new("/tmp/Lab Report.PDF")),
            "application/pdf"
        );
        assert_eq!(content_type(Path::new("scan.tiff")), "image/tiff");
        assert_eq!(
            content_type(Path::new("noextension")),
            "application/octet-stream"
        );
    }
}
