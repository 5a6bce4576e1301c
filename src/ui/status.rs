//! The status bar: sync progress, live-update state, the last problem in
//! plain words with its technical detail one click away, and short
//! notices ("Message sent").

use iced::widget::{column, container, row, text};
use iced::{Element, Fill};

use wardmail::imap::ImapError;
use wardmail::outbox::OutboxError;
use wardmail::session::SessionError;
use wardmail::smtp::SmtpError;
use wardmail::sync::{Progress, SyncError};

use super::format;
use super::style;

/// Something that failed, as the user reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// One or two plain sentences: what failed and what to do.
    pub summary: String,
    /// The error text from the core, shown on request.
    pub detail: String,
    /// Whether the failure means the server cannot be reached.
    pub offline: bool,
}

impl Problem {
    /// Describes `error`, which happened while doing `action` ("Sync",
    /// "Opening the message").
    pub fn new(action: &str, error: &SessionError) -> Problem {
        let offline = is_offline(error);
        let advice = advice(error);
        Problem {
            summary: format!("{action} failed: {advice}"),
            detail: error.to_string(),
            offline,
        }
    }

    /// Draws the problem as a box on a screen: the summary, with the
    /// technical detail in small print below it.
    pub fn boxed<'a, Message: 'a>(&'a self) -> Element<'a, Message> {
        container(column![text(&self.summary), text(&self.detail).size(style::SMALL)].spacing(4))
            .padding(8)
            .width(Fill)
            .style(style::alert)
            .into()
    }

    /// Describes a failure of the local store while doing `action`.
    pub fn store(action: &str, error: &SyncError) -> Problem {
        Problem {
            summary: format!("{action} failed: the local mail store could not be read."),
            detail: error.to_string(),
            offline: false,
        }
    }
}

/// Returns whether an error means the server is unreachable, as opposed
/// to rejecting a request.
pub fn is_offline(error: &SessionError) -> bool {
    match error {
        SessionError::Net(_) => true,
        SessionError::Imap(imap) | SessionError::Sync(SyncError::Imap(imap)) => imap.is_offline(),
        SessionError::Smtp(SmtpError::Net(_)) => true,
        SessionError::Outbox(OutboxError::Smtp(SmtpError::Net(_))) => true,
        _ => false,
    }
}

/// Returns what the user can do about `error`, in plain words.
fn advice(error: &SessionError) -> &'static str {
    const LOGIN: &str =
        "the server rejected the user name or password. Check them in Account settings.";
    match error {
        _ if is_offline(error) => {
            "the mail server cannot be reached. Mail already downloaded stays readable, and Wardmail tries again."
        }
        SessionError::Imap(ImapError::LoginFailed { .. })
        | SessionError::Sync(SyncError::Imap(ImapError::LoginFailed { .. })) => LOGIN,
        SessionError::Smtp(smtp) | SessionError::Outbox(OutboxError::Smtp(smtp)) => match smtp {
            SmtpError::LoginFailed { .. } => LOGIN,
            SmtpError::Address { .. } => "an address cannot be used. Check the recipients.",
            SmtpError::Refused { .. } => {
                "the mail server refused the message or one of its recipients; the details name which."
            }
            SmtpError::Uncertain { .. } => {
                "the connection failed after the message was handed over, so it may have been sent."
            }
            SmtpError::Net(_) => "the mail server cannot be reached.",
        },
        SessionError::Outbox(OutboxError::SentCopy(_)) => {
            "the message was sent, but its copy in the Sent folder was not saved."
        }
        SessionError::Outbox(OutboxError::NeedsConfirmation) => {
            "the message may already have been sent. Use \"Send again\" in the Outbox to send it anyway."
        }
        SessionError::Secret(_) => {
            "the system keyring could not be used. Make sure it is running and unlocked."
        }
        SessionError::Store(_)
        | SessionError::Sync(SyncError::Store(_) | SyncError::Worker(_))
        | SessionError::Outbox(OutboxError::Store(_)) => {
            "the local mail store could not be read or written."
        }
        SessionError::NoRole(_) => "the server has no folder for this.",
        _ => "the server or Wardmail reported an error.",
    }
}

/// Progress of the full sync.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SyncState {
    /// No sync has run yet.
    #[default]
    Never,
    /// A sync is running.
    Running {
        /// The folder in progress: name, position from 1, folder count.
        folder: Option<(String, usize, usize)>,
        /// Envelopes stored so far in that folder.
        envelopes: usize,
    },
    /// The last sync finished at this unix time.
    Done(i64),
    /// The last sync failed.
    Failed,
}

/// The live-update connection as the status bar shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LiveState {
    /// No folder is being watched.
    #[default]
    Off,
    /// Watching a folder for new mail.
    Watching(String),
    /// Disconnected; the next attempt is due in this many seconds.
    Retrying(u64),
}

/// Status bar state.
#[derive(Debug, Default)]
pub struct StatusBar {
    sync: SyncState,
    live: LiveState,
    problem: Option<Problem>,
    notice: Option<String>,
    show_detail: bool,
}

/// Status bar messages.
#[derive(Clone, Debug)]
pub enum Message {
    /// Show or hide the last problem's detail.
    ToggleDetail,
    /// Clear the last problem.
    Dismiss,
}

impl StatusBar {
    /// Handles a status bar message.
    pub fn update(&mut self, message: Message) {
        match message {
            Message::ToggleDetail => self.show_detail = !self.show_detail,
            Message::Dismiss => {
                self.problem = None;
                self.show_detail = false;
            }
        }
    }

    /// Returns whether a full sync is running.
    pub fn is_syncing(&self) -> bool {
        matches!(self.sync, SyncState::Running { .. })
    }

    /// Marks the start of a full sync.
    pub fn sync_started(&mut self) {
        self.sync = SyncState::Running {
            folder: None,
            envelopes: 0,
        };
    }

    /// Records a progress report of the running sync.
    pub fn sync_progress(&mut self, progress: &Progress) {
        let SyncState::Running { folder, envelopes } = &mut self.sync else {
            return;
        };
        match progress {
            Progress::Folders { .. } => {}
            Progress::Folder { name, position, of } => {
                *folder = Some((name.clone(), *position, *of));
                *envelopes = 0;
            }
            Progress::Envelopes { done } => *envelopes = *done,
        }
    }

    /// Records the end of a full sync.
    pub fn sync_finished(&mut self, ok: bool) {
        self.sync = if ok {
            SyncState::Done(format::now())
        } else {
            SyncState::Failed
        };
        if ok && self.problem.as_ref().is_some_and(|p| p.offline) {
            self.problem = None;
        }
    }

    /// Sets the live-update state.
    pub fn set_live(&mut self, live: LiveState) {
        if matches!(live, LiveState::Watching(_))
            && self.problem.as_ref().is_some_and(|p| p.offline)
        {
            self.problem = None;
        }
        self.live = live;
    }

    /// Shows a problem, replacing the previous one.
    pub fn report(&mut self, problem: Problem) {
        tracing::warn!(offline = problem.offline, "{}", problem.summary);
        self.problem = Some(problem);
        self.show_detail = false;
    }

    /// Shows a short notice.
    pub fn notice(&mut self, notice: impl Into<String>) {
        self.notice = Some(notice.into());
    }

    /// Removes the notice, once the user has moved on.
    pub fn clear_notice(&mut self) {
        self.notice = None;
    }

    fn sync_text(&self) -> String {
        match &self.sync {
            SyncState::Never => String::new(),
            SyncState::Running { folder: None, .. } => {
                "Syncing: reading the folder list…".to_owned()
            }
            SyncState::Running {
                folder: Some((name, position, of)),
                envelopes,
            } => {
                let mut line = format!("Syncing folder {position} of {of} ({name})");
                if *envelopes > 0 {
                    line.push_str(&format!(": {} messages stored", format::count(*envelopes)));
                }
                line
            }
            SyncState::Done(at) => format!("Synced at {}", format::time_of_day(*at)),
            SyncState::Failed => "Last sync failed".to_owned(),
        }
    }

    fn live_text(&self) -> String {
        match &self.live {
            LiveState::Off => String::new(),
            LiveState::Watching(folder) => format!("New mail in {folder} appears automatically"),
            LiveState::Retrying(seconds) => format!("Offline, reconnecting in {seconds} s"),
        }
    }

    /// Draws the bar along the bottom of the window. The last problem gets
    /// a line of its own so that it can wrap.
    pub fn view(&self) -> Element<'_, Message> {
        let mut line = row![].spacing(16).align_y(iced::Center);
        line = line.push(text(self.sync_text()).size(style::SMALL));
        line = line.push(
            text(self.live_text())
                .size(style::SMALL)
                .style(style::muted_text),
        );
        if let Some(notice) = &self.notice {
            line = line.push(text(notice).size(style::SMALL).style(style::success_text));
        }

        let mut bar = column![line].spacing(4);
        if let Some(problem) = &self.problem {
            let label = if self.show_detail {
                "Hide details"
            } else {
                "Details"
            };
            bar = bar.push(
                row![
                    text(&problem.summary)
                        .size(style::SMALL)
                        .style(style::error_text)
                        .width(Fill),
                    style::tool(label, Some(Message::ToggleDetail)),
                    style::tool("Dismiss", Some(Message::Dismiss)),
                ]
                .spacing(8)
                .align_y(iced::Center),
            );
            if self.show_detail {
                bar = bar.push(
                    container(text(&problem.detail).size(style::SMALL))
                        .padding(6)
                        .width(Fill)
                        .style(style::alert),
                );
            }
        }
        container(bar)
            .padding([4, 10])
            .width(Fill)
            .style(style::bar)
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wardmail::net::NetError;

    #[test]
    fn unreachable_server_is_offline() {
        let error = SessionError::Imap(ImapError::Net(NetError::Refused {
            host: "h".into(),
            port: 1,
        }));
        let problem = Problem::new("Sync", &error);
        assert!(problem.offline);
        assert!(
            problem
                .summary
                .starts_with("Sync failed: the mail server cannot be reached")
        );
        assert!(problem.detail.contains("port 1"));
    }

    #[test]
    fn rejected_login_names_settings() {
        let error = SessionError::Imap(ImapError::LoginFailed {
            username: "u".into(),
            reason: "no".into(),
        });
        let problem = Problem::new("Sync", &error);
        assert!(!problem.offline);
        assert!(problem.summary.contains("Account settings"));
    }

    #[test]
    fn refused_recipient_says_so() {
        let refused = SmtpError::Refused {
            stage: "recipient x@partner.example".into(),
            reason: "550".into(),
        };
        let problem = Problem::new("Sending", &SessionError::Outbox(OutboxError::Smtp(refused)));
        assert!(!problem.offline);
        assert!(
            problem
                .summary
                .contains("refused the message or one of its recipients")
        );
        assert!(problem.detail.contains("x@partner.example"));
    }

    #[test]
    fn sync_progress_text() {
        let mut bar = StatusBar::default();
        bar.sync_started();
        bar.sync_progress(&Progress::Folder {
            name: "Sent".into(),
            position: 2,
            of: 5,
        });
        bar.sync_progress(&Progress::Envelopes { done: 4_000 });
        assert_eq!(
            bar.sync_text(),
            "Syncing folder 2 of 5 (Sent): 4,000 messages stored"
        );
        bar.sync_finished(true);
        assert!(bar.sync_text().starts_with("Synced at "));
    }

    #[test]
    fn reconnect_clears_offline_problem() {
        let mut bar = StatusBar::default();
        let error = SessionError::Net(NetError::Refused {
            host: "h".into(),
            port: 1,
        });
        bar.report(Problem::new("Sync", &error));
        bar.set_live(LiveState::Watching("Inbox".into()));
        assert!(bar.problem.is_none());
    }
}
