//! The outbox: messages that were not sent yet, with their last error, and
//! "Retry" or, for a message the server may already have accepted, "Send
//! again" behind a confirmation.

use std::sync::Arc;

use iced::widget::{Column, button, column, container, row, scrollable, space, text};
use iced::{Element, Fill, Task};

use wardmail::session::{Session, SessionError};
use wardmail::store::OutboxState;
use wardmail::sync::{SyncError, blocking};

use super::{format, status, style};

/// One outbox entry as listed.
#[derive(Clone, Debug)]
pub struct Entry {
    id: i64,
    state: OutboxState,
    subject: String,
    recipients: Vec<String>,
    attempts: u32,
    last_error: Option<String>,
}

/// Outbox messages.
#[derive(Clone, Debug)]
pub enum Message {
    /// The entries arrived from the store.
    Loaded(Result<Vec<Entry>, Arc<SyncError>>),
    /// Retry one entry that certainly was not sent.
    Retry(i64),
    /// Ask before resending an entry that may have been sent.
    AskResend(i64),
    /// Do not resend after all.
    CancelResend,
    /// Resend an entry that may have been sent.
    Resend(i64),
    /// A retry or resend ended.
    Done(i64, Result<(), Arc<SessionError>>),
    /// Ask before discarding an entry.
    AskDiscard(i64),
    /// Discard an entry without sending it.
    Discard(i64),
    /// Discarding ended.
    Discarded(Result<(), Arc<SessionError>>),
    /// Retry every entry that certainly was not sent.
    RetryAll,
    /// Retrying every entry ended.
    AllDone(Result<usize, Arc<SessionError>>),
    /// Go back to the mailbox.
    Close,
}

/// Notifications from the outbox to the window.
#[derive(Clone, Debug)]
pub enum Event {
    /// Back to the mailbox.
    Closed,
}

/// The outbox screen.
#[derive(Debug)]
pub struct Outbox {
    session: Arc<Session>,
    entries: Option<Vec<Entry>>,
    busy: Option<i64>,
    busy_all: bool,
    confirm: Option<i64>,
    confirm_discard: Option<i64>,
    notice: Option<String>,
    problem: Option<status::Problem>,
}

impl Outbox {
    /// Opens the outbox and loads its entries.
    pub fn new(session: Arc<Session>) -> (Outbox, Task<Message>) {
        let outbox = Outbox {
            session,
            entries: None,
            busy: None,
            busy_all: false,
            confirm: None,
            confirm_discard: None,
            notice: None,
            problem: None,
        };
        let task = outbox.load();
        (outbox, task)
    }

    fn load(&self) -> Task<Message> {
        let store = self.session.store.clone();
        let account = self.session.account.id.clone();
        Task::perform(
            async move {
                blocking(&store, move |s| {
                    let entries = s.outbox(&account)?;
                    Ok(entries
                        .into_iter()
                        .map(|e| Entry {
                            id: e.id,
                            state: e.state,
                            subject: wardmail::message::parse_envelope(&e.raw).subject,
                            recipients: e.recipients,
                            attempts: e.attempts,
                            last_error: e.last_error,
                        })
                        .collect())
                })
                .await
                .map_err(Arc::new)
            },
            Message::Loaded,
        )
    }

    /// Handles an outbox message.
    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        let task = match message {
            Message::Loaded(Ok(entries)) => {
                self.entries = Some(entries);
                Task::none()
            }
            Message::Loaded(Err(error)) => {
                self.problem = Some(status::Problem::store("Reading the outbox", &error));
                Task::none()
            }
            Message::Retry(id) => self.resend(id, false),
            Message::AskResend(id) => {
                self.confirm = Some(id);
                Task::none()
            }
            Message::CancelResend => {
                self.confirm = None;
                self.confirm_discard = None;
                Task::none()
            }
            Message::Resend(id) => self.resend(id, true),
            Message::Done(id, result) => self.done(id, result),
            Message::AskDiscard(id) => {
                self.confirm_discard = Some(id);
                Task::none()
            }
            Message::Discard(id) => self.discard(id),
            Message::Discarded(result) => self.discarded(result),
            Message::RetryAll => self.retry_all(),
            Message::AllDone(result) => self.all_done(result),
            Message::Close => return (Task::none(), Some(Event::Closed)),
        };
        (task, None)
    }

    fn resend(&mut self, id: i64, confirmed: bool) -> Task<Message> {
        if self.busy.is_some() || self.busy_all {
            return Task::none();
        }
        self.busy = Some(id);
        self.confirm = None;
        self.notice = None;
        self.problem = None;
        let session = self.session.clone();
        Task::perform(
            async move { session.resend(id, confirmed).await.map_err(Arc::new) },
            move |result| Message::Done(id, result),
        )
    }

    fn done(&mut self, id: i64, result: Result<(), Arc<SessionError>>) -> Task<Message> {
        self.busy = None;
        match result {
            Ok(()) => self.notice = Some("Message sent.".to_owned()),
            Err(error) => {
                tracing::warn!(outbox = id, "resending failed");
                self.problem = Some(status::Problem::new("Sending", &error));
            }
        }
        self.load()
    }

    fn discard(&mut self, id: i64) -> Task<Message> {
        self.confirm_discard = None;
        let session = self.session.clone();
        Task::perform(
            async move { session.discard_outbox(id).await.map_err(Arc::new) },
            Message::Discarded,
        )
    }

    fn discarded(&mut self, result: Result<(), Arc<SessionError>>) -> Task<Message> {
        match result {
            Ok(()) => self.notice = Some("Message discarded; it was not sent.".to_owned()),
            Err(error) => self.problem = Some(status::Problem::new("Discarding", &error)),
        }
        self.load()
    }

    fn retry_all(&mut self) -> Task<Message> {
        if self.busy.is_some() || self.busy_all {
            return Task::none();
        }
        self.busy_all = true;
        self.notice = None;
        self.problem = None;
        let session = self.session.clone();
        Task::perform(
            async move {
                let outcomes = session.flush_outbox().await?;
                Ok(outcomes
                    .iter()
                    .filter(|(_, outcome)| outcome.is_ok())
                    .count())
            },
            |result: Result<usize, SessionError>| Message::AllDone(result.map_err(Arc::new)),
        )
    }

    fn all_done(&mut self, result: Result<usize, Arc<SessionError>>) -> Task<Message> {
        self.busy_all = false;
        match result {
            Ok(sent) => {
                self.notice = Some(format!("{} sent.", plural(sent, "message", "messages")))
            }
            Err(error) => self.problem = Some(status::Problem::new("Sending the outbox", &error)),
        }
        self.load()
    }

    /// Draws the outbox screen.
    pub fn view(&self) -> Element<'_, Message> {
        let idle = self.busy.is_none() && !self.busy_all;
        let header = row![
            text("Outbox").size(style::HEADING).font(style::BOLD),
            space::horizontal(),
            style::action("Retry all", idle.then_some(Message::RetryAll)),
            style::tool("Back to mailbox", Some(Message::Close)),
        ]
        .spacing(8)
        .align_y(iced::Center);

        let mut page = Column::new().spacing(12).padding(16).push(header);
        page = page.push(text(
            "Messages wait here until the server accepts them. A message marked \"may have been sent\" \
             is only sent again when you confirm it, so nobody gets it twice by accident.",
        ));
        if self.busy_all {
            page = page.push(text("Sending…").style(style::muted_text));
        }
        if let Some(notice) = &self.notice {
            page = page.push(text(notice).style(style::success_text));
        }
        if let Some(problem) = &self.problem {
            page = page.push(problem.boxed());
        }

        match &self.entries {
            None => page = page.push(text("Loading…").style(style::muted_text)),
            Some(entries) if entries.is_empty() => {
                page = page.push(
                    text("The outbox is empty: every message was sent.").style(style::muted_text),
                );
            }
            Some(entries) => {
                let mut list = Column::new().spacing(8);
                for entry in entries {
                    list = list.push(self.entry_view(entry, idle));
                }
                page = page.push(scrollable(list).height(Fill));
            }
        }
        page.into()
    }

    fn entry_view<'a>(&'a self, entry: &'a Entry, idle: bool) -> Element<'a, Message> {
        let subject = if entry.subject.is_empty() {
            "(no subject)"
        } else {
            entry.subject.as_str()
        };
        let mut block = column![
            row![
                text(format::clip(subject, 120))
                    .font(style::BOLD)
                    .width(Fill),
                text(state_label(entry.state)).size(style::SMALL),
            ]
            .spacing(8),
            text(format!("To {}", entry.recipients.join(", "))).size(style::SMALL),
            text(format!("Attempts: {}", entry.attempts))
                .size(style::SMALL)
                .style(style::muted_text),
        ]
        .spacing(4);
        if let Some(error) = &entry.last_error {
            block = block.push(
                text(format!("Last error: {error}"))
                    .size(style::SMALL)
                    .style(style::error_text),
            );
        }

        let busy_here = self.busy == Some(entry.id);
        let actions = match entry.state {
            OutboxState::Uncertain | OutboxState::Sending if self.confirm == Some(entry.id) => {
                row![
                    text("It may already have been delivered. Send it again anyway?")
                        .size(style::SMALL),
                    button(text("Yes, send again").size(style::SMALL))
                        .style(button::danger)
                        .on_press(Message::Resend(entry.id)),
                    style::tool("No", Some(Message::CancelResend)),
                ]
            }
            OutboxState::Uncertain | OutboxState::Sending => {
                row![style::tool(
                    "Send again…",
                    idle.then_some(Message::AskResend(entry.id))
                )]
            }
            _ => row![style::action(
                "Retry",
                idle.then_some(Message::Retry(entry.id))
            )],
        };
        let discard: Element<'a, Message> = if self.confirm_discard == Some(entry.id) {
            row![
                text("Discard this message? It will not be sent.").size(style::SMALL),
                button(text("Yes, discard").size(style::SMALL))
                    .style(button::danger)
                    .on_press(Message::Discard(entry.id)),
                style::tool("No", Some(Message::CancelResend)),
            ]
            .spacing(8)
            .align_y(iced::Center)
            .into()
        } else {
            style::tool("Discard…", idle.then_some(Message::AskDiscard(entry.id))).into()
        };
        block = block.push(row![actions.spacing(8).align_y(iced::Center), discard].spacing(8));
        if busy_here {
            block = block.push(text("Sending…").size(style::SMALL).style(style::muted_text));
        }
        container(block)
            .padding(10)
            .width(Fill)
            .style(style::frame)
            .into()
    }
}

fn state_label(state: OutboxState) -> &'static str {
    match state {
        OutboxState::Queued => "Waiting to be sent",
        OutboxState::Sending => "Sending stopped: may have been sent",
        OutboxState::Submitted => "Sent; copy for Sent folder pending",
        OutboxState::Done => "Sent",
        OutboxState::Failed => "Not sent",
        OutboxState::Uncertain => "May have been sent",
    }
}

fn plural(count: usize, singular: &str, plural: &str) -> String {
    format!("{count} {}", if count == 1 { singular } else { plural })
}
