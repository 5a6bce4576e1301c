//! The Secure portal screen: every message sent through the clinic's
//! portal with what happened to it (opened, wrong code, locked, replied,
//! expired, revoked), and Revoke, Keep 14 more days and New code.
//! **Check now** fetches events and replies; replies go to the Inbox.
//!
//! Before this device is enrolled, the screen is the enrolment form: the
//! portal's address, the one-time token from IT and the clinic's contact.

use std::sync::Arc;

use iced::widget::{Column, button, column, container, row, scrollable, space, text, text_input};
use iced::{Element, Fill, Task};
use wardmail::account::{PortalSettings, Profile};

use wardmail::session::{PortalMessage, PortalSync, Session, SessionError};

use super::{format, status, style};

/// Days that Keep adds, from now.
const EXTEND_DAYS: u32 = 14;

/// Portal screen messages.
#[derive(Clone, Debug)]
pub enum Message {
    /// The list arrived from the store.
    Loaded(Result<Vec<PortalMessage>, Arc<SessionError>>),
    /// Fetch events and replies from the portal.
    Check,
    /// Fetching ended.
    Checked(Result<PortalSync, Arc<SessionError>>),
    /// Ask before revoking a message.
    AskRevoke(String),
    /// Do not revoke after all.
    Cancel,
    /// Revoke a message.
    Revoke(String),
    /// Keep a message longer.
    Extend(String),
    /// Issue a new code.
    Reissue(String),
    /// An action ended, with the notice to show.
    Done(Result<String, Arc<SessionError>>),
    /// An enrolment field changed.
    Edit(FormField, String),
    /// Enrol this device with the portal.
    Enrol,
    /// Enrolment ended.
    Enrolled(Result<PortalSettings, Arc<SessionError>>),
    /// Go back to the mailbox.
    Close,
}

/// A field of the enrolment form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormField {
    /// The portal's address.
    Url,
    /// The one-time token.
    Token,
    /// The clinic's contact for patients.
    Contact,
}

/// Notifications from the portal screen to the window.
#[derive(Clone, Debug)]
pub enum Event {
    /// Back to the mailbox.
    Closed,
    /// The device is enrolled and the settings saved; open the account
    /// again so that they apply.
    Enrolled,
}

/// The enrolment form's fields.
#[derive(Debug, Default)]
struct Form {
    url: String,
    token: String,
    contact: String,
}

/// The Secure portal screen.
#[derive(Debug)]
pub struct Portal {
    session: Arc<Session>,
    profile: Option<Profile>,
    form: Form,
    messages: Option<Vec<PortalMessage>>,
    busy: bool,
    confirm_revoke: Option<String>,
    notice: Option<String>,
    problem: Option<status::Problem>,
}

impl Portal {
    /// Opens the screen, lists the messages and checks the portal; before
    /// enrolment it shows the enrolment form. `profile` is where the
    /// settings are saved.
    pub fn new(session: Arc<Session>, profile: Option<Profile>) -> (Portal, Task<Message>) {
        let form = Form {
            url: session.config.portal.url.clone().unwrap_or_default(),
            token: String::new(),
            contact: session.config.portal.contact.clone(),
        };
        let enrolled = session.portal_enrolled();
        let mut portal = Portal {
            session,
            profile,
            form,
            messages: None,
            busy: false,
            confirm_revoke: None,
            notice: None,
            problem: None,
        };
        if !enrolled {
            return (portal, Task::none());
        }
        let task = Task::batch([portal.load(), portal.check()]);
        (portal, task)
    }

    fn load(&self) -> Task<Message> {
        let session = self.session.clone();
        Task::perform(
            async move { session.portal_messages().await.map_err(Arc::new) },
            Message::Loaded,
        )
    }

    fn check(&mut self) -> Task<Message> {
        if self.busy {
            return Task::none();
        }
        self.busy = true;
        let session = self.session.clone();
        Task::perform(
            async move { session.portal_sync().await.map_err(Arc::new) },
            Message::Checked,
        )
    }

    /// Handles a portal screen message.
    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        let task = match message {
            Message::Loaded(Ok(messages)) => {
                self.messages = Some(messages);
                Task::none()
            }
            Message::Loaded(Err(error)) => {
                self.problem = Some(status::Problem::new("Reading the portal messages", &error));
                Task::none()
            }
            Message::Check => {
                self.notice = None;
                self.problem = None;
                self.check()
            }
            Message::Checked(result) => {
                self.busy = false;
                match result {
                    Ok(sync) => {
                        self.notice = Some(format!(
                            "Checked the portal: {}, {} added to the Inbox.",
                            count(sync.events, "new event", "new events"),
                            count(sync.replies, "reply", "replies")
                        ));
                        if sync.rejected > 0 {
                            self.problem = Some(status::Problem {
                                summary: format!(
                                    "{} replies could not be opened and were left out.",
                                    sync.rejected
                                ),
                                detail: "They were not sealed for this device or were changed \
                                         on the way; the log names the portal message."
                                    .to_owned(),
                                offline: false,
                            });
                        }
                    }
                    Err(error) => {
                        self.problem = Some(status::Problem::new("Checking the portal", &error));
                    }
                }
                self.load()
            }
            Message::AskRevoke(id) => {
                self.confirm_revoke = Some(id);
                Task::none()
            }
            Message::Cancel => {
                self.confirm_revoke = None;
                Task::none()
            }
            Message::Revoke(id) => self.act(id, Action::Revoke),
            Message::Extend(id) => self.act(id, Action::Extend),
            Message::Reissue(id) => self.act(id, Action::Reissue),
            Message::Done(result) => {
                self.busy = false;
                match result {
                    Ok(notice) => self.notice = Some(notice),
                    Err(error) => self.problem = Some(status::Problem::new("The portal", &error)),
                }
                self.load()
            }
            Message::Edit(field, value) => {
                match field {
                    FormField::Url => self.form.url = value,
                    FormField::Token => self.form.token = value,
                    FormField::Contact => self.form.contact = value,
                }
                Task::none()
            }
            Message::Enrol => self.enrol(),
            Message::Enrolled(Ok(_)) => {
                self.busy = false;
                return (Task::none(), Some(Event::Enrolled));
            }
            Message::Enrolled(Err(error)) => {
                self.busy = false;
                self.problem = Some(status::Problem::new("Enrolling with the portal", &error));
                Task::none()
            }
            Message::Close => return (Task::none(), Some(Event::Closed)),
        };
        (task, None)
    }

    /// Enrols with the token typed, then saves the settings in the
    /// profile's accounts.toml.
    fn enrol(&mut self) -> Task<Message> {
        if self.busy || self.form.url.trim().is_empty() || self.form.token.trim().is_empty() {
            return Task::none();
        }
        let Some(profile) = self.profile.clone() else {
            return Task::none();
        };
        self.busy = true;
        self.problem = None;
        let session = self.session.clone();
        let url = self.form.url.trim().to_owned();
        let token = self.form.token.trim().to_owned();
        let contact = self.form.contact.trim().to_owned();
        Task::perform(
            async move {
                let mut settings = session
                    .portal_enrol(&url, &token, "Wardmail desktop")
                    .await?;
                settings.contact = contact;
                let saved = settings.clone();
                tokio::task::spawn_blocking(move || {
                    let mut config = profile.load()?;
                    config.portal = saved;
                    profile.save(&config)
                })
                .await
                .map_err(|error| SessionError::Task(error.to_string()))??;
                Ok(settings)
            },
            |result: Result<PortalSettings, SessionError>| {
                Message::Enrolled(result.map_err(Arc::new))
            },
        )
    }

    fn enrol_view(&self) -> Element<'_, Message> {
        let field =
            |label: &'static str, placeholder: &'static str, value: &str, which: FormField| {
                let input = text_input(placeholder, value)
                    .on_input(move |value| Message::Edit(which, value))
                    .on_submit(Message::Enrol)
                    .padding(6)
                    .secure(which == FormField::Token);
                row![text(label).font(style::BOLD).width(140), input]
                    .spacing(8)
                    .align_y(iced::Center)
            };
        let ready = !self.busy
            && !self.form.url.trim().is_empty()
            && !self.form.token.trim().is_empty()
            && self.profile.is_some();
        let mut page = column![
            row![
                text("Secure portal").size(style::HEADING).font(style::BOLD),
                space::horizontal(),
                style::tool("Back to mailbox", Some(Message::Close)),
            ]
            .align_y(iced::Center),
            text(
                "With the clinic's secure portal, a patient without an encryption key gets a notice \
                 by e-mail and reads the message in the browser with a code you give by phone. \
                 Ask IT for the portal's address and a one-time enrolment token for this computer."
            ),
            field("Portal address", "https://portal.clinic.example", &self.form.url, FormField::Url),
            field("Enrolment token", "from IT, used once", &self.form.token, FormField::Token),
            field(
                "Clinic contact",
                "Riverside Clinic, 0123 456 789",
                &self.form.contact,
                FormField::Contact
            ),
            row![style::action("Enrol this computer", ready.then_some(Message::Enrol))],
        ]
        .spacing(12)
        .padding(16)
        .max_width(820);
        if self.busy {
            page = page.push(text("Enrolling…").style(style::muted_text));
        }
        if let Some(problem) = &self.problem {
            page = page.push(problem.boxed());
        }
        page.into()
    }

    fn act(&mut self, id: String, action: Action) -> Task<Message> {
        if self.busy {
            return Task::none();
        }
        self.busy = true;
        self.confirm_revoke = None;
        self.notice = None;
        self.problem = None;
        let session = self.session.clone();
        Task::perform(
            async move {
                match action {
                    Action::Revoke => session.portal_revoke(&id).await.map(|()| {
                        "Revoked: the portal deleted the message, and its link now shows only \
                         the clinic's contact."
                            .to_owned()
                    }),
                    Action::Extend => session
                        .portal_extend(&id, EXTEND_DAYS)
                        .await
                        .map(|expires| format!("Kept until {}.", format::day(expires))),
                    Action::Reissue => session.portal_reissue(&id).await.map(|code| {
                        format!(
                            "New code: {}. Give it to the recipient by phone; it is not shown again.",
                            code.expose()
                        )
                    }),
                }
                .map_err(Arc::new)
            },
            Message::Done,
        )
    }

    /// Draws the screen.
    pub fn view(&self) -> Element<'_, Message> {
        if !self.session.portal_enrolled() {
            return self.enrol_view();
        }
        let header = row![
            text("Secure portal").size(style::HEADING).font(style::BOLD),
            space::horizontal(),
            style::action("Check now", (!self.busy).then_some(Message::Check)),
            style::tool("Back to mailbox", Some(Message::Close)),
        ]
        .spacing(8)
        .align_y(iced::Center);
        let mut page = Column::new().spacing(12).padding(16).push(header);
        page = page.push(text(
            "Messages sent through the clinic's secure portal. The portal keeps them encrypted; \
             only the recipient, with the link and the code, can read them. Replies arrive in \
             your Inbox.",
        ));
        if self.busy {
            page = page.push(text("Talking to the portal…").style(style::muted_text));
        }
        if let Some(notice) = &self.notice {
            page = page.push(text(notice).style(style::success_text));
        }
        if let Some(problem) = &self.problem {
            page = page.push(problem.boxed());
        }
        match &self.messages {
            None => page = page.push(text("Loading…").style(style::muted_text)),
            Some(messages) if messages.is_empty() => {
                page = page.push(
                    text("No message was sent through the portal yet.").style(style::muted_text),
                );
            }
            Some(messages) => {
                let mut list = Column::new().spacing(8);
                for message in messages {
                    list = list.push(self.message_view(message));
                }
                page = page.push(scrollable(list).height(Fill));
            }
        }
        page.into()
    }

    fn message_view<'a>(&'a self, message: &'a PortalMessage) -> Element<'a, Message> {
        let idle = !self.busy;
        let events: Vec<String> = message
            .events
            .iter()
            .map(|(kind, at)| format!("{} {}", event_label(kind), format::time_of_day(*at)))
            .collect();
        let mut block = column![
            row![
                text(&message.recipient).font(style::BOLD).width(Fill),
                text(state_label(&message.state)).size(style::SMALL),
            ]
            .spacing(8),
            text(format!(
                "{} · sent {}, readable until {}",
                format::clip(&message.subject, 80),
                format::day(message.created),
                format::day(message.expires)
            ))
            .size(style::SMALL),
            text(if events.is_empty() {
                "Not opened yet.".to_owned()
            } else {
                events.join(" · ")
            })
            .size(style::SMALL)
            .style(style::muted_text),
        ]
        .spacing(4);
        let gone = matches!(message.state.as_str(), "revoked" | "expired");
        let actions: Element<'a, Message> =
            if self.confirm_revoke.as_deref() == Some(message.portal_id.as_str()) {
                row![
                    text("Revoke? The recipient can no longer read it.").size(style::SMALL),
                    button(text("Yes, revoke").size(style::SMALL))
                        .style(button::danger)
                        .on_press(Message::Revoke(message.portal_id.clone())),
                    style::tool("No", Some(Message::Cancel)),
                ]
                .spacing(8)
                .align_y(iced::Center)
                .into()
            } else {
                let id = &message.portal_id;
                row![
                    style::tool(
                        "New code",
                        (idle && !gone).then(|| Message::Reissue(id.clone()))
                    ),
                    style::tool(
                        "Keep 14 more days",
                        (idle && !gone).then(|| Message::Extend(id.clone()))
                    ),
                    style::tool(
                        "Revoke…",
                        (idle && !gone).then(|| Message::AskRevoke(id.clone()))
                    ),
                ]
                .spacing(8)
                .into()
            };
        block = block.push(actions);
        container(block)
            .padding(10)
            .width(Fill)
            .style(style::frame)
            .into()
    }
}

#[derive(Clone, Copy)]
enum Action {
    Revoke,
    Extend,
    Reissue,
}

fn count(value: usize, one: &str, many: &str) -> String {
    format!("{value} {}", if value == 1 { one } else { many })
}

fn state_label(state: &str) -> &'static str {
    match state {
        "sent" => "Waiting to be opened",
        "opened" => "Opened",
        "unlocked" => "Read",
        "locked" => "Locked after wrong codes: issue a new code",
        "replied" => "Replied",
        "expired" => "Expired",
        "revoked" => "Revoked",
        _ => "Unknown",
    }
}

fn event_label(kind: &str) -> &'static str {
    match kind {
        "opened" => "opened",
        "wrong-code" => "wrong code",
        "locked" => "locked",
        "unlocked" => "read",
        "replied" => "replied",
        "expired" => "expired",
        "revoked" => "revoked",
        _ => "event",
    }
}
