//! The mailbox screen: folders on the left, the message list in the
//! middle, the open message on the right, the status bar below. It owns
//! the full sync and the live-update watcher of the open folder.

mod folders;
mod list;
mod reader;

use std::sync::Arc;

use iced::widget::{column, container, pick_list, row, rule, space, text};
use iced::{Element, Fill, FillPortion, Subscription, Task};

use wardmail::imap::Role;
use wardmail::session::{Session, SessionError};
use wardmail::store::{Folder, ListRow};
use wardmail::sync::{SyncError, blocking};

use super::live::{self, SyncEvent};
use super::status::{self, LiveState, Problem, StatusBar};
use super::style;

pub use reader::Loaded;

/// IMAP system flags the mailbox sets (RFC 3501 section 2.3.2).
const SEEN: &str = "\\Seen";
const FLAGGED: &str = "\\Flagged";

/// The starting point of a new composer.
#[derive(Clone, Debug)]
pub enum ComposeStart {
    /// An empty message.
    New,
    /// A reply to the author, or to everyone when `all`.
    Reply {
        /// The message replied to.
        original: Loaded,
        /// Reply to all recipients.
        all: bool,
    },
    /// A forward, quoted inline or attached whole.
    Forward {
        /// The message forwarded.
        original: Loaded,
        /// Attach the original instead of quoting it.
        as_attachment: bool,
    },
}

/// A folder in the "Move to…" picker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderChoice {
    id: i64,
    label: String,
}

impl std::fmt::Display for FolderChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

/// A server-side change the user asked for, named for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Setting or clearing `\Seen`.
    ReadState,
    /// Setting or clearing `\Flagged`.
    Flag,
    /// Moving to Trash.
    Delete,
    /// Moving to another folder.
    Move,
}

impl Change {
    fn action(self) -> &'static str {
        match self {
            Change::ReadState => "Marking the message read or unread",
            Change::Flag => "Flagging the message",
            Change::Delete => "Deleting the message",
            Change::Move => "Moving the message",
        }
    }
}

/// Mailbox messages.
#[derive(Clone, Debug)]
pub enum Message {
    /// The folder list arrived from the store.
    FoldersLoaded(Result<Vec<Folder>, Arc<SessionError>>),
    /// The number of unsent outbox entries arrived.
    OutboxCounted(Result<usize, Arc<SyncError>>),
    /// Show a folder.
    SelectFolder(i64),
    /// The message list.
    List(list::Message),
    /// The open message.
    Reader(reader::Message),
    /// Start a full sync.
    SyncNow,
    /// Progress or end of the full sync.
    Sync(SyncEvent),
    /// The live-update watcher.
    Live(live::Event),
    /// Toggle read/unread on the selected message.
    ToggleRead,
    /// Toggle the flag on the selected message.
    ToggleFlag,
    /// Move the selected message to Trash.
    Delete,
    /// Move the selected message to a folder.
    MoveTo(FolderChoice),
    /// A change finished on the server.
    Changed(Change, Result<(), Arc<SessionError>>),
    /// Select the message this many rows below (or, when negative, above)
    /// the selected one.
    Step(i64),
    /// Select the message one screenful below (1) or above (-1).
    Page(i64),
    /// Reply to the author.
    Reply,
    /// Reply to everyone.
    ReplyAll,
    /// Forward with the text quoted.
    Forward,
    /// Forward with the message attached.
    ForwardAsAttachment,
    /// Write a new message.
    ComposeNew,
    /// Show the outbox.
    OpenOutbox,
    /// Show the S/MIME certificates and trusted CAs.
    OpenKeys,
    /// Show the audit log.
    OpenAudit,
    /// Show the messages sent through the secure portal.
    OpenPortal,
    /// Show the account settings.
    OpenSettings,
    /// The status bar.
    Status(status::Message),
}

/// Requests from the mailbox to the window.
#[derive(Clone, Debug)]
pub enum Event {
    /// Open a composer.
    Compose(ComposeStart),
    /// Show the outbox.
    OpenOutbox,
    /// Show the S/MIME certificates and trusted CAs.
    OpenKeys,
    /// Show the audit log.
    OpenAudit,
    /// Show the messages sent through the secure portal.
    OpenPortal,
    /// Show the account settings.
    OpenSettings,
}

/// The mailbox screen.
#[derive(Debug)]
pub struct Mailbox {
    session: Arc<Session>,
    folders: Vec<Folder>,
    list: list::MessageList,
    reader: Option<reader::Reader>,
    status: StatusBar,
    outbox_count: usize,
}

impl Mailbox {
    /// Opens the mailbox of a session: loads the folders, recovers the
    /// outbox after a crash and starts a full sync.
    pub fn new(session: Arc<Session>) -> (Mailbox, Task<Message>) {
        let mut mailbox = Mailbox {
            session,
            folders: Vec::new(),
            list: list::MessageList::default(),
            reader: None,
            status: StatusBar::default(),
            outbox_count: 0,
        };
        let recover = {
            let store = mailbox.session.store.clone();
            let account = mailbox.session.account.id.clone();
            Task::perform(
                async move {
                    wardmail::outbox::recover(&store, &account).await?;
                    blocking(&store, move |s| Ok(s.outbox(&account)?.len())).await
                },
                |result| Message::OutboxCounted(result.map_err(Arc::new)),
            )
        };
        let tasks = [mailbox.load_folders(), recover, mailbox.start_sync()];
        (mailbox, Task::batch(tasks))
    }

    /// Returns the open session.
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// Shows a notice in the status bar.
    pub fn notice(&mut self, notice: impl Into<String>) {
        self.status.notice(notice);
    }

    /// Counts the outbox again (after sending or retrying).
    pub fn count_outbox(&self) -> Task<Message> {
        let store = self.session.store.clone();
        let account = self.session.account.id.clone();
        Task::perform(
            async move { blocking(&store, move |s| Ok(s.outbox(&account)?.len())).await },
            |result| Message::OutboxCounted(result.map_err(Arc::new)),
        )
    }

    /// Handles a mailbox message.
    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        let task = match message {
            Message::FoldersLoaded(result) => self.folders_loaded(result),
            Message::OutboxCounted(result) => self.outbox_counted(result),
            Message::SelectFolder(id) => self.select_folder(id),
            Message::List(message) => self.list_message(message),
            Message::Reader(message) => self.reader_message(message),
            Message::SyncNow => self.start_sync(),
            Message::Sync(event) => self.sync_event(event),
            Message::Live(event) => self.live_event(event),
            Message::ToggleRead => self.toggle(Change::ReadState),
            Message::ToggleFlag => self.toggle(Change::Flag),
            Message::Delete => self.remove(None),
            Message::MoveTo(choice) => self.remove(Some(choice.id)),
            Message::Changed(change, result) => self.changed(change, result),
            Message::Step(delta) => self.step(delta),
            Message::Page(direction) => self.step(direction * self.list.page_rows()),
            Message::Reply => {
                return (
                    Task::none(),
                    self.compose_from_open(|original| ComposeStart::Reply {
                        original,
                        all: false,
                    }),
                );
            }
            Message::ReplyAll => {
                return (
                    Task::none(),
                    self.compose_from_open(|original| ComposeStart::Reply {
                        original,
                        all: true,
                    }),
                );
            }
            Message::Forward => {
                return (
                    Task::none(),
                    self.compose_from_open(|original| ComposeStart::Forward {
                        original,
                        as_attachment: false,
                    }),
                );
            }
            Message::ForwardAsAttachment => {
                return (
                    Task::none(),
                    self.compose_from_open(|original| ComposeStart::Forward {
                        original,
                        as_attachment: true,
                    }),
                );
            }
            Message::ComposeNew => return (Task::none(), Some(Event::Compose(ComposeStart::New))),
            Message::OpenOutbox => return (Task::none(), Some(Event::OpenOutbox)),
            Message::OpenKeys => return (Task::none(), Some(Event::OpenKeys)),
            Message::OpenAudit => return (Task::none(), Some(Event::OpenAudit)),
            Message::OpenPortal => return (Task::none(), Some(Event::OpenPortal)),
            Message::OpenSettings => return (Task::none(), Some(Event::OpenSettings)),
            Message::Status(message) => {
                self.status.update(message);
                Task::none()
            }
        };
        (task, None)
    }

    fn load_folders(&self) -> Task<Message> {
        let session = self.session.clone();
        Task::perform(
            async move { session.folders().await.map_err(Arc::new) },
            Message::FoldersLoaded,
        )
    }

    fn folders_loaded(&mut self, result: Result<Vec<Folder>, Arc<SessionError>>) -> Task<Message> {
        match result {
            Ok(folders) => self.folders = folders,
            Err(error) => {
                self.status
                    .report(Problem::new("Loading the folder list", &error));
                return Task::none();
            }
        }
        if self.list.folder().is_some() {
            return Task::none();
        }
        let first = self
            .folders
            .iter()
            .find(|f| f.role == Some(Role::Inbox))
            .or_else(|| self.folders.iter().find(|f| f.selectable));
        match first.map(|f| f.id) {
            Some(id) => self.select_folder(id),
            None => Task::none(),
        }
    }

    fn outbox_counted(&mut self, result: Result<usize, Arc<SyncError>>) -> Task<Message> {
        match result {
            Ok(count) => self.outbox_count = count,
            Err(error) => self
                .status
                .report(Problem::store("Reading the outbox", &error)),
        }
        Task::none()
    }

    fn select_folder(&mut self, id: i64) -> Task<Message> {
        if self.list.folder().is_some_and(|f| f.id == id) {
            return Task::none();
        }
        let Some(folder) = self.folders.iter().find(|f| f.id == id).cloned() else {
            return Task::none();
        };
        self.reader = None;
        self.status.clear_notice();
        self.list
            .show(folder, &self.session.store)
            .map(Message::List)
    }

    fn list_message(&mut self, message: list::Message) -> Task<Message> {
        let (task, event) = self.list.update(message, &self.session.store);
        Task::batch([task.map(Message::List), self.list_event(event)])
    }

    fn list_event(&mut self, event: Option<list::Event>) -> Task<Message> {
        match event {
            Some(list::Event::Open(row)) => self.open(row),
            Some(list::Event::Failed(error)) => {
                self.status
                    .report(Problem::store("Loading the message list", &error));
                Task::none()
            }
            None => Task::none(),
        }
    }

    /// Opens a message and marks it read.
    fn open(&mut self, row: ListRow) -> Task<Message> {
        let Some(folder) = self.list.folder().cloned() else {
            return Task::none();
        };
        if self
            .reader
            .as_ref()
            .is_some_and(|r| r.uid == row.uid && r.folder.id == folder.id)
        {
            return Task::none();
        }
        let own_connection = self.status.is_syncing();
        let (reader, load) =
            reader::Reader::open(&self.session, folder.clone(), row.uid, own_connection);
        self.reader = Some(reader);
        let mut tasks = vec![load.map(Message::Reader)];
        if !row.seen {
            self.list.patch(row.uid, |r| r.seen = true);
            tasks.push(self.set_flag(folder, row.uid, SEEN, true, Change::ReadState));
        }
        Task::batch(tasks)
    }

    /// Reads the open message again, so that keys imported or accepted
    /// meanwhile decrypt it and check its signatures anew.
    pub fn reinspect(&mut self) -> Task<Message> {
        let Some(reader) = &self.reader else {
            return Task::none();
        };
        let (folder, uid) = (reader.folder.clone(), reader.uid);
        let own_connection = self.status.is_syncing();
        let (reader, load) = reader::Reader::open(&self.session, folder, uid, own_connection);
        self.reader = Some(reader);
        load.map(Message::Reader)
    }

    fn step(&mut self, delta: i64) -> Task<Message> {
        let (task, event) = self.list.step(delta);
        Task::batch([task.map(Message::List), self.list_event(event)])
    }

    fn reader_message(&mut self, message: reader::Message) -> Task<Message> {
        let Some(reader) = &mut self.reader else {
            return Task::none();
        };
        let (task, event) = reader.update(message);
        if let Some(reader::Event::Notice(notice)) = event {
            self.status.notice(notice);
        }
        task.map(Message::Reader)
    }

    fn start_sync(&mut self) -> Task<Message> {
        if self.status.is_syncing() {
            return Task::none();
        }
        self.status.sync_started();
        Task::run(live::full_sync(self.session.clone()), Message::Sync)
    }

    fn sync_event(&mut self, event: SyncEvent) -> Task<Message> {
        match event {
            SyncEvent::Progress(progress) => {
                self.status.sync_progress(&progress);
                // Show messages as they arrive on the first sync, and the
                // folder list as soon as the server has sent it.
                match progress {
                    wardmail::sync::Progress::Folder { .. } => self.load_folders(),
                    wardmail::sync::Progress::Envelopes { .. } => {
                        self.list.reload(&self.session.store).map(Message::List)
                    }
                    wardmail::sync::Progress::Folders { .. } => Task::none(),
                }
            }
            SyncEvent::Finished(result) => {
                self.status.sync_finished(result.is_ok());
                if let Err(error) = &result {
                    self.status.report(Problem::new("Sync", error));
                }
                let reload = self.list.reload(&self.session.store).map(Message::List);
                Task::batch([self.load_folders(), reload])
            }
        }
    }

    fn live_event(&mut self, event: live::Event) -> Task<Message> {
        match event {
            live::Event::Watching { folder } => {
                let name = self
                    .folders
                    .iter()
                    .find(|f| f.id == folder)
                    .map_or("this folder", folders::label);
                self.status.set_live(LiveState::Watching(name.to_owned()));
                Task::none()
            }
            live::Event::Changed { folder, report } => {
                tracing::debug!(
                    folder,
                    added = report.added,
                    removed = report.removed,
                    "live update"
                );
                let mut tasks = vec![self.load_folders()];
                if self.list.folder().is_some_and(|f| f.id == folder) {
                    tasks.push(self.list.reload(&self.session.store).map(Message::List));
                }
                Task::batch(tasks)
            }
            live::Event::Lost { error, retry_in } => {
                self.status
                    .set_live(LiveState::Retrying(retry_in.as_secs()));
                self.status.report(Problem::new("Live updates", &error));
                Task::none()
            }
        }
    }

    fn set_flag(
        &self,
        folder: Folder,
        uid: u32,
        flag: &'static str,
        on: bool,
        change: Change,
    ) -> Task<Message> {
        let session = self.session.clone();
        Task::perform(
            async move {
                session
                    .set_flag(&folder, uid, flag, on)
                    .await
                    .map_err(Arc::new)
            },
            move |result| Message::Changed(change, result),
        )
    }

    fn toggle(&mut self, change: Change) -> Task<Message> {
        let (Some(folder), Some(row)) = (
            self.list.folder().cloned(),
            self.list.selected_row().cloned(),
        ) else {
            return Task::none();
        };
        let (flag, on) = match change {
            Change::ReadState => (SEEN, !row.seen),
            _ => (FLAGGED, !row.flagged),
        };
        self.list.patch(row.uid, |r| match change {
            Change::ReadState => r.seen = on,
            _ => r.flagged = on,
        });
        self.set_flag(folder, row.uid, flag, on, change)
    }

    /// Moves the selected message to Trash (`target` is `None`) or to a
    /// folder.
    fn remove(&mut self, target: Option<i64>) -> Task<Message> {
        let (Some(folder), Some(row)) = (
            self.list.folder().cloned(),
            self.list.selected_row().cloned(),
        ) else {
            return Task::none();
        };
        let target = match target {
            Some(id) => match self.folders.iter().find(|f| f.id == id) {
                Some(target) => Some(target.clone()),
                None => return Task::none(),
            },
            None => None,
        };
        // The store learns about the message in its new folder only from a
        // sync of that folder, which updates its unread count at once.
        let arrival = target.clone().or_else(|| {
            self.folders
                .iter()
                .find(|f| f.role == Some(Role::Trash))
                .cloned()
        });
        self.reader = None;
        self.list.clear_selection();
        let session = self.session.clone();
        let change = if target.is_some() {
            Change::Move
        } else {
            Change::Delete
        };
        Task::perform(
            async move {
                match target {
                    Some(target) => session.move_message(&folder, row.uid, &target).await,
                    None => session.delete_message(&folder, row.uid).await,
                }
                .map_err(Arc::new)?;
                if let Some(arrival) = arrival
                    && session.sync_folder(&arrival).await.is_err()
                {
                    // The error can name the login, so only the folder id is logged.
                    tracing::warn!(folder = arrival.id, "syncing the target folder failed");
                }
                Ok(())
            },
            move |result| Message::Changed(change, result),
        )
    }

    fn changed(&mut self, change: Change, result: Result<(), Arc<SessionError>>) -> Task<Message> {
        if let Err(error) = &result {
            self.status.report(Problem::new(change.action(), error));
        }
        let reload = self.list.reload(&self.session.store).map(Message::List);
        Task::batch([self.load_folders(), reload])
    }

    fn compose_from_open(&self, start: impl FnOnce(Loaded) -> ComposeStart) -> Option<Event> {
        let loaded = self.reader.as_ref()?.loaded()?.clone();
        Some(Event::Compose(start(loaded)))
    }

    /// Watches the open folder for new mail.
    pub fn subscription(&self) -> Subscription<Message> {
        match self.list.folder() {
            Some(folder) => live::watch(self.session.clone(), folder.clone()).map(Message::Live),
            None => Subscription::none(),
        }
    }

    /// Draws the three panes under the toolbar.
    pub fn view(&self) -> Element<'_, Message> {
        let current = self.list.folder().map(|f| f.id);
        let folder_pane = container(folders::view(&self.folders, current, Message::SelectFolder))
            .width(230)
            .height(Fill)
            .style(style::pane);
        let list_pane = container(self.list.view().map(Message::List))
            .width(FillPortion(2))
            .height(Fill)
            .style(style::pane);
        let reader_pane = container(self.reader_pane())
            .width(FillPortion(3))
            .height(Fill)
            .style(style::pane);

        column![
            self.toolbar(),
            row![folder_pane, list_pane, reader_pane].height(Fill)
        ]
        .into()
    }

    /// Draws the status bar, which the window shows under every screen once
    /// an account is open.
    pub fn view_status(&self) -> Element<'_, Message> {
        self.status.view().map(Message::Status)
    }

    fn toolbar(&self) -> Element<'_, Message> {
        let account = &self.session.account;
        let outbox = if self.outbox_count > 0 {
            format!("Outbox ({})", self.outbox_count)
        } else {
            "Outbox".to_owned()
        };
        let sync = (!self.status.is_syncing()).then_some(Message::SyncNow);
        let identity = if account.display_name.trim().is_empty() {
            account.address.clone()
        } else {
            format!("{} <{}>", account.display_name, account.address)
        };
        let bar = row![
            text(identity).font(style::BOLD),
            space().width(16),
            style::action("New message (Ctrl+N)", Some(Message::ComposeNew)),
            style::tool("Sync", sync),
            space::horizontal(),
            iced::widget::button(text(outbox).size(style::SMALL))
                .padding([5, 10])
                .style(if self.outbox_count > 0 {
                    iced::widget::button::warning
                } else {
                    iced::widget::button::secondary
                })
                .on_press(Message::OpenOutbox),
            style::tool("Keys", Some(Message::OpenKeys)),
        ]
        .spacing(8)
        .align_y(iced::Center);
        let bar = bar
            .push(style::tool("Secure portal", Some(Message::OpenPortal)))
            .push(style::tool("Audit log", Some(Message::OpenAudit)))
            .push(style::tool("Account settings", Some(Message::OpenSettings)));
        container(bar)
            .padding([6, 10])
            .width(Fill)
            .style(style::bar)
            .into()
    }

    fn reader_pane(&self) -> Element<'_, Message> {
        let Some(reader) = &self.reader else {
            return iced::widget::center(
                text("Select a message to read it.").style(style::muted_text),
            )
            .into();
        };
        column![
            self.message_actions(),
            rule::horizontal(1),
            reader.view().map(Message::Reader)
        ]
        .into()
    }

    fn message_actions(&self) -> Element<'_, Message> {
        let ready = self.reader.as_ref().and_then(|r| r.loaded()).is_some();
        let when_ready = |message: Message| ready.then_some(message);
        let row_state = self.list.selected_row();
        let read_label = if row_state.is_some_and(|r| r.seen) {
            "Mark unread"
        } else {
            "Mark read"
        };
        let flag_label = if row_state.is_some_and(|r| r.flagged) {
            "Unflag"
        } else {
            "Flag"
        };
        let on_row = |message: Message| row_state.is_some().then_some(message);

        // Without a selected row there is nothing to move, so the picker
        // stays empty.
        let current = self.list.folder().map(|f| f.id);
        let choices: Vec<FolderChoice> = self
            .folders
            .iter()
            .filter(|f| row_state.is_some() && f.selectable && Some(f.id) != current)
            .map(|f| FolderChoice {
                id: f.id,
                label: folders::label(f).to_owned(),
            })
            .collect();
        let move_to = pick_list(choices, None::<FolderChoice>, Message::MoveTo)
            .placeholder("Move to…")
            .text_size(style::SMALL)
            .padding([5, 10]);

        let actions = row![
            style::tool("Reply (Ctrl+R)", when_ready(Message::Reply)),
            style::tool("Reply all (Ctrl+Shift+R)", when_ready(Message::ReplyAll)),
            style::tool("Forward (Ctrl+L)", when_ready(Message::Forward)),
            style::tool(
                "Forward as attachment",
                when_ready(Message::ForwardAsAttachment)
            ),
            style::tool(read_label, on_row(Message::ToggleRead)),
            style::tool(flag_label, on_row(Message::ToggleFlag)),
            iced::widget::button(text("Delete (Del)").size(style::SMALL))
                .padding([5, 10])
                .style(iced::widget::button::danger)
                .on_press_maybe(on_row(Message::Delete)),
            move_to,
        ]
        .spacing(6)
        .wrap()
        .vertical_spacing(6);
        container(actions).padding(8).width(Fill).into()
    }
}
