//! The open message: protection strip, header block, the parser's
//! problems, the text (selectable, read-only) and the attachments.

use std::path::PathBuf;
use std::sync::Arc;

use iced::widget::{
    Column, button, column, container, row, scrollable, text, text_editor, text_input,
};
use iced::{Element, Fill, Task};

use wardmail::message::{Address, AttachmentInfo, ParsedMessage};
use wardmail::protection::{ProtectionReport, Tone, Verdict, Warning};
use wardmail::session::{Session, SessionError};
use wardmail::store::Folder;
use wardmail::sync::blocking;

use crate::ui::{format, style};

/// A message's raw bytes, their parse and their protection.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The message as the server sent it.
    pub raw: Arc<Vec<u8>>,
    /// What is shown: the parse of `raw`, or of its decrypted content.
    pub parsed: Arc<ParsedMessage>,
    /// The bytes `parsed` and its attachments come from: `raw`, or the
    /// decrypted inner MIME entity.
    pub content: Arc<Vec<u8>>,
    /// The protection strip's words.
    pub verdict: Arc<Verdict>,
    /// The user's passphrase-protected keys that would decrypt it.
    pub locked_keys: Vec<String>,
    /// How the message arrived, which sets the floor of a reply or forward.
    pub arrival: wardmail::arrival::ArrivalSecurity,
    /// Whether `content` is decrypted text.
    pub decrypted: bool,
    /// The message's parts shown apart, when unprotected text sits next to
    /// a protected part; empty otherwise.
    pub segments: Vec<SegmentView>,
}

/// One part of a message shown apart from the others.
#[derive(Clone, Debug)]
pub struct SegmentView {
    /// The part's own protection, or `None` for an unprotected part.
    pub verdict: Option<Verdict>,
    /// Its text.
    pub text: String,
}

/// The outcome of saving an attachment.
#[derive(Clone, Debug)]
pub enum SaveOutcome {
    /// Written to this file.
    Saved(PathBuf),
    /// The user closed the dialog.
    Cancelled,
    /// Writing failed.
    Failed(String),
}

/// Reader messages.
#[derive(Clone, Debug)]
pub enum Message {
    /// The body arrived (`None`: the server no longer has the message).
    Loaded(Result<Option<Loaded>, Arc<SessionError>>),
    /// Selection, scrolling or a caret move in the text.
    Text(text_editor::Action),
    /// Save an attachment (by position in the attachment list).
    SaveAttachment(usize),
    /// Saving an attachment ended.
    AttachmentSaved(usize, SaveOutcome),
    /// The passphrase field changed.
    Passphrase(String),
    /// Unlock the key the message is encrypted to.
    Unlock,
    /// Unlocking ended.
    Unlocked(Result<(), Arc<SessionError>>),
}

/// Notifications from the reader to the mailbox.
#[derive(Clone, Debug)]
pub enum Event {
    /// A short notice for the status bar.
    Notice(String),
}

#[derive(Debug)]
enum State {
    Loading,
    Missing,
    Failed(Arc<SessionError>),
    Ready(Box<Ready>),
}

#[derive(Debug)]
struct Ready {
    message: Loaded,
    body: text_editor::Content,
    /// Per attachment: the last save outcome, shown beside it.
    saves: Vec<Option<SaveOutcome>>,
    /// The passphrase typed for a locked key, and the last unlock error.
    passphrase: String,
    unlock_error: Option<String>,
}

/// The message pane.
#[derive(Debug)]
pub struct Reader {
    /// The message's folder.
    pub folder: Folder,
    /// The message's UID.
    pub uid: u32,
    state: State,
    session: Arc<Session>,
}

impl Reader {
    /// Starts loading a message. With `own_connection`, the body is fetched
    /// over a new connection instead of the session's shared one, which a
    /// running full sync keeps locked until it ends.
    pub fn open(
        session: &Arc<Session>,
        folder: Folder,
        uid: u32,
        own_connection: bool,
    ) -> (Reader, Task<Message>) {
        let task = Task::perform(
            fetch(session.clone(), folder.clone(), uid, own_connection),
            Message::Loaded,
        );
        (
            Reader {
                folder,
                uid,
                state: State::Loading,
                session: session.clone(),
            },
            task,
        )
    }

    /// Returns the loaded message, for replying and forwarding.
    pub fn loaded(&self) -> Option<&Loaded> {
        match &self.state {
            State::Ready(ready) => Some(&ready.message),
            _ => None,
        }
    }

    /// Handles a reader message.
    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        match message {
            Message::Loaded(result) => {
                self.loaded_body(result);
                (Task::none(), None)
            }
            Message::Text(action) => {
                self.text_action(action);
                (Task::none(), None)
            }
            Message::SaveAttachment(position) => (self.save_attachment(position), None),
            Message::AttachmentSaved(position, outcome) => {
                (Task::none(), self.attachment_saved(position, outcome))
            }
            Message::Passphrase(value) => {
                if let State::Ready(ready) = &mut self.state {
                    ready.passphrase = value;
                }
                (Task::none(), None)
            }
            Message::Unlock => (self.unlock(), None),
            Message::Unlocked(Ok(())) => {
                // Read the message again, now with the unlocked key.
                let task = Task::perform(
                    fetch(self.session.clone(), self.folder.clone(), self.uid, false),
                    Message::Loaded,
                );
                (task, None)
            }
            Message::Unlocked(Err(error)) => {
                if let State::Ready(ready) = &mut self.state {
                    ready.unlock_error = Some(error.to_string());
                }
                (Task::none(), None)
            }
        }
    }

    fn unlock(&mut self) -> Task<Message> {
        let State::Ready(ready) = &mut self.state else {
            return Task::none();
        };
        let Some(fingerprint) = ready.message.locked_keys.first().cloned() else {
            return Task::none();
        };
        let passphrase = wardmail::secret::Secret::new(std::mem::take(&mut ready.passphrase));
        ready.unlock_error = None;
        let session = self.session.clone();
        Task::perform(
            async move {
                session
                    .unlock_openpgp(fingerprint, passphrase)
                    .await
                    .map(drop)
                    .map_err(Arc::new)
            },
            Message::Unlocked,
        )
    }

    fn loaded_body(&mut self, result: Result<Option<Loaded>, Arc<SessionError>>) {
        self.state = match result {
            Ok(Some(message)) => {
                let body = text_editor::Content::with_text(&message.parsed.text);
                let saves = vec![None; message.parsed.attachments.len()];
                State::Ready(Box::new(Ready {
                    message,
                    body,
                    saves,
                    passphrase: String::new(),
                    unlock_error: None,
                }))
            }
            Ok(None) => State::Missing,
            Err(error) => State::Failed(error),
        };
    }

    /// Applies caret moves and selections but no edits: the text is
    /// read-only, and an editor is used only so that it can be selected
    /// and copied.
    fn text_action(&mut self, action: text_editor::Action) {
        if let State::Ready(ready) = &mut self.state
            && !action.is_edit()
        {
            ready.body.perform(action);
        }
    }

    fn save_attachment(&mut self, position: usize) -> Task<Message> {
        let State::Ready(ready) = &self.state else {
            return Task::none();
        };
        let Some(info) = ready.message.parsed.attachments.get(position) else {
            return Task::none();
        };
        let raw = ready.message.content.clone();
        let (index, filename) = (info.index, info.filename.clone());
        Task::perform(save(raw, index, filename), move |outcome| {
            Message::AttachmentSaved(position, outcome)
        })
    }

    fn attachment_saved(&mut self, position: usize, outcome: SaveOutcome) -> Option<Event> {
        let State::Ready(ready) = &mut self.state else {
            return None;
        };
        let event = match &outcome {
            SaveOutcome::Saved(path) => Some(Event::Notice(format!("Saved {}", path.display()))),
            SaveOutcome::Failed(_) => {
                // The error names the file, so it stays out of the log.
                tracing::warn!(uid = self.uid, "saving an attachment failed");
                None
            }
            SaveOutcome::Cancelled => None,
        };
        if let Some(slot) = ready.saves.get_mut(position) {
            *slot = Some(outcome);
        }
        event
    }

    /// Draws the pane below the message toolbar.
    pub fn view(&self) -> Element<'_, Message> {
        match &self.state {
            State::Loading => centered_note("Loading the message…"),
            State::Missing => centered_note(
                "This message is no longer on the server. It was probably moved or deleted elsewhere.",
            ),
            State::Failed(error) => column![
                text("The message could not be opened.").style(style::error_text),
                text(crate::ui::status::Problem::new("Opening the message", error).summary)
                    .size(style::SMALL),
                text(error.to_string())
                    .size(style::SMALL)
                    .style(style::muted_text),
            ]
            .spacing(8)
            .padding(16)
            .into(),
            State::Ready(ready) => ready.view(),
        }
    }
}

impl Ready {
    fn view(&self) -> Element<'_, Message> {
        let parsed = &self.message.parsed;
        let mut page = Column::new().spacing(10).padding(12).height(Fill);

        page = page.push(protection(&self.message.verdict));
        if let Some(fingerprint) = self.message.locked_keys.first() {
            page = page.push(self.unlock_form(fingerprint));
        }
        page = page.push(headers(parsed));
        if !parsed.problems.is_empty() {
            page = page.push(problems(&parsed.problems));
        }
        if parsed.text_from_html {
            page = page.push(
                text("Shown as plain text converted from HTML; images and links are not loaded.")
                    .size(style::SMALL)
                    .style(style::muted_text),
            );
        }
        if self.message.segments.is_empty() {
            page = page.push(
                text_editor(&self.body)
                    .on_action(Message::Text)
                    .height(Fill)
                    .padding(8)
                    .wrapping(text::Wrapping::WordOrGlyph)
                    .style(style::editor),
            );
        } else {
            page = page.push(scrollable(segments(&self.message.segments)).height(Fill));
        }
        if !parsed.attachments.is_empty() {
            page = page.push(self.attachments(&parsed.attachments));
        }
        page.into()
    }

    fn attachments<'a>(&'a self, attachments: &'a [AttachmentInfo]) -> Element<'a, Message> {
        let mut list = Column::new().spacing(4);
        list = list.push(
            text(format!("Attachments ({})", attachments.len()))
                .font(style::BOLD)
                .size(style::SMALL),
        );
        for (position, info) in attachments.iter().enumerate() {
            let mut line = row![
                text(format::clip(&info.filename, 80))
                    .size(style::SMALL)
                    .width(Fill),
                text(format!(
                    "{}, {}",
                    info.content_type,
                    format::size(info.size)
                ))
                .size(style::SMALL)
                .style(style::muted_text),
                style::tool("Save…", Some(Message::SaveAttachment(position))),
            ]
            .spacing(10)
            .align_y(iced::Center);
            match self.saves.get(position) {
                Some(Some(SaveOutcome::Saved(_))) => {
                    line = line.push(text("Saved").size(style::SMALL).style(style::success_text));
                }
                Some(Some(SaveOutcome::Failed(error))) => {
                    line = line.push(text(error).size(style::SMALL).style(style::error_text));
                }
                _ => {}
            }
            list = list.push(line);
        }
        container(scrollable(list).height(iced::Shrink))
            .max_height(160)
            .padding(8)
            .width(Fill)
            .style(style::frame)
            .into()
    }
}

fn centered_note(note: &str) -> Element<'_, Message> {
    iced::widget::center(text(note).style(style::muted_text))
        .padding(16)
        .into()
}

fn join(addresses: &[Address]) -> String {
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn header_line<'a>(label: &'a str, value: String) -> Element<'a, Message> {
    row![
        text(label).size(style::SMALL).font(style::BOLD).width(70),
        text(value).size(style::SMALL).width(Fill),
    ]
    .spacing(8)
    .into()
}

fn headers(parsed: &ParsedMessage) -> Element<'_, Message> {
    let envelope = &parsed.envelope;
    let subject = if envelope.subject.is_empty() {
        "(no subject)"
    } else {
        envelope.subject.as_str()
    };
    let mut block = column![text(subject).size(style::TEXT + 2.0).font(style::BOLD)].spacing(4);

    let mut from = join(&envelope.from);
    if let Some(sender) = &parsed.sender {
        from.push_str(&format!(" (sent by {sender})"));
    }
    block = block.push(header_line("From", from));
    block = block.push(header_line("To", join(&envelope.to)));
    if !envelope.cc.is_empty() {
        block = block.push(header_line("Cc", join(&envelope.cc)));
    }
    if !parsed.reply_to.is_empty() && parsed.reply_to != envelope.from {
        block = block.push(header_line("Reply to", join(&parsed.reply_to)));
    }
    block = block.push(header_line("Date", format::full_date(envelope.date)));
    container(block)
        .padding(10)
        .width(Fill)
        .style(style::frame)
        .into()
}

fn problems(problems: &[String]) -> Element<'_, Message> {
    let mut note = column![
        text("Parts of this message could not be read:")
            .size(style::SMALL)
            .font(style::BOLD)
    ]
    .spacing(2);
    for problem in problems {
        note = note.push(text(format!("• {problem}")).size(style::SMALL));
    }
    container(note)
        .padding(8)
        .width(Fill)
        .style(style::note)
        .into()
}

impl Ready {
    /// Draws the passphrase field for a message encrypted to a locked key.
    fn unlock_form<'a>(&'a self, fingerprint: &str) -> Element<'a, Message> {
        let mut form = column![
            row![
                text_input("Passphrase of your OpenPGP key", &self.passphrase)
                    .secure(true)
                    .on_input(Message::Passphrase)
                    .on_submit(Message::Unlock)
                    .width(320),
                button(text("Unlock")).on_press(Message::Unlock),
                text(format!("key {}", format::fingerprint(fingerprint))).size(style::SMALL),
            ]
            .spacing(8)
            .align_y(iced::Center)
        ]
        .spacing(4);
        if let Some(error) = &self.unlock_error {
            form = form.push(text(error).size(style::SMALL).style(style::error_text));
        }
        form.into()
    }
}

/// Draws each part of a mixed-protection message in its own frame: the
/// protected part under its own verdict, and unprotected text marked as
/// such, in words and not only by colour.
fn segments(segments: &[SegmentView]) -> Element<'_, Message> {
    let mut list = Column::new().spacing(10);
    for segment in segments {
        let (label, frame): (String, fn(&iced::Theme) -> container::Style) = match &segment.verdict
        {
            Some(verdict) => {
                let marker = if verdict.tone == Tone::Protected {
                    "✓ "
                } else {
                    "⚠ "
                };
                (
                    format!("{marker}This part: {}", verdict.headline),
                    style::frame,
                )
            }
            None => (
                "⚠ Not protected: this part is outside the signed or encrypted part, and \
                 anyone could have written or changed it."
                    .to_owned(),
                style::alert,
            ),
        };
        list = list.push(
            container(
                column![
                    text(label).size(style::SMALL).font(style::BOLD),
                    text(&segment.text).wrapping(text::Wrapping::WordOrGlyph),
                ]
                .spacing(6),
            )
            .padding(10)
            .width(Fill)
            .style(frame),
        );
    }
    list.into()
}

/// Fetches and parses a message.
async fn fetch(
    session: Arc<Session>,
    folder: Folder,
    uid: u32,
    own_connection: bool,
) -> Result<Option<Loaded>, Arc<SessionError>> {
    let raw = if own_connection {
        fetch_separately(&session, &folder, uid).await
    } else {
        session.body(&folder, uid).await
    }
    .map_err(Arc::new)?;
    let Some(raw) = raw else { return Ok(None) };

    // Decryption and signature checks; if they cannot even start (no
    // store, no keyring), the message is still shown, with the reason.
    let (report, inspect_problem) = match session.inspect(raw.clone()).await {
        Ok(report) => (report, None),
        Err(error) => (
            ProtectionReport::unprotected(),
            Some(format!(
                "the protection of this message could not be checked: {error}"
            )),
        ),
    };
    // Unprotected text next to a protected part is shown apart, so the
    // protected part's verdict cannot appear to cover it.
    let segments = if report
        .warnings
        .contains(&Warning::UnprotectedTextAroundProtectedPart)
    {
        match session.inspect_segments(raw.clone()).await {
            Ok(segments) => segments
                .into_iter()
                .map(|segment| SegmentView {
                    verdict: segment.report.map(|report| report.verdict()),
                    text: segment.parsed.text,
                })
                .collect(),
            Err(error) => {
                tracing::warn!(%error, "the parts of a message could not be read apart");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let arrival = session.arrival(&report, &raw);
    let decrypted = report.decrypted;
    let (portal_reply, portal_notice) = (arrival.portal_reply, arrival.portal_notice);
    let shown = tokio::task::spawn_blocking(move || {
        let outer = wardmail::message::parse(&raw);
        let (mut parsed, content) = match &report.inner_mime {
            Some(inner) => (wardmail::message::parse_inner(&outer, inner), inner.clone()),
            None => (outer, raw.clone()),
        };
        parsed.problems.extend(inspect_problem);
        let mut verdict = report.verdict();
        if portal_reply {
            verdict.details.insert(
                0,
                "Arrived through the clinic's secure portal: the recipient wrote it in the \
                 browser, encrypted for you."
                    .to_owned(),
            );
        } else if portal_notice {
            verdict.details.insert(
                0,
                "A notice from the clinic's secure portal: the message itself is in the portal."
                    .to_owned(),
            );
        }
        (raw, parsed, content, verdict, report.locked_keys)
    })
    .await;
    match shown {
        Ok((raw, parsed, content, verdict, locked_keys)) => Ok(Some(Loaded {
            raw: Arc::new(raw),
            parsed: Arc::new(parsed),
            content: Arc::new(content),
            verdict: Arc::new(verdict),
            locked_keys,
            arrival,
            decrypted,
            segments,
        })),
        Err(error) => Err(Arc::new(SessionError::Task(error.to_string()))),
    }
}

/// The protection strip: the verdict in words, its detail lines, and a
/// colour that only supports the words.
fn protection(verdict: &Verdict) -> Element<'_, Message> {
    let marker = match verdict.tone {
        Tone::Protected => "✓ ",
        Tone::Warning => "⚠ ",
        Tone::Plain => "",
    };
    let mut block = column![
        text(format!("{marker}{}", verdict.headline))
            .size(style::SMALL)
            .font(style::BOLD)
    ]
    .spacing(2);
    for detail in &verdict.details {
        block = block.push(text(detail).size(style::SMALL));
    }
    let frame = match verdict.tone {
        Tone::Protected => style::protected_strip,
        Tone::Warning => style::alert,
        Tone::Plain => style::protection_strip,
    };
    container(block)
        .padding([4, 10])
        .width(Fill)
        .style(frame)
        .into()
}

/// Reads the body from the cache, or over a connection of its own.
async fn fetch_separately(
    session: &Session,
    folder: &Folder,
    uid: u32,
) -> Result<Option<Vec<u8>>, SessionError> {
    let id = folder.id;
    if let Some(raw) = blocking(&session.store, move |s| s.body(id, uid)).await? {
        return Ok(Some(raw));
    }
    let mut connection = session.connect().await?;
    let raw = wardmail::sync::message_body(&mut connection, &session.store, folder, uid).await?;
    connection.logout().await;
    Ok(raw)
}

/// Asks where to save an attachment, then writes it.
async fn save(raw: Arc<Vec<u8>>, index: usize, filename: String) -> SaveOutcome {
    let dialog = rfd::AsyncFileDialog::new()
        .set_title("Save attachment")
        .set_file_name(&filename);
    let Some(handle) = dialog.save_file().await else {
        return SaveOutcome::Cancelled;
    };
    let path = handle.path().to_path_buf();

    let content =
        tokio::task::spawn_blocking(move || wardmail::message::attachment_content(&raw, index))
            .await;
    let Ok(Some(content)) = content else {
        return SaveOutcome::Failed("cannot read this attachment from the message".to_owned());
    };
    match tokio::fs::write(&path, content).await {
        Ok(()) => SaveOutcome::Saved(path),
        Err(error) => SaveOutcome::Failed(format!("cannot write {}: {error}", path.display())),
    }
}
