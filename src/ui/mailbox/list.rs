//! The message list, virtualized so that a folder of 100,000 messages
//! scrolls as smoothly as one of ten.
//!
//! Every row has the same height, so the scrollable's content is a column
//! of a top spacer, the rows in and near the viewport, and a bottom spacer,
//! with a total height of `count × ROW_HEIGHT`. Rows come from the store in
//! windows of [`WINDOW`] rows, loaded in a task when the viewport leaves
//! the cached window. Rows not loaded yet are drawn as placeholders.

use std::sync::Arc;

use iced::widget::operation::AbsoluteOffset;
use iced::widget::scrollable::Viewport;
use iced::widget::{Column, Id, button, center, column, container, row, scrollable, space, text};
use iced::{Element, Fill, Task};

use wardmail::store::{Folder, ListRow, Store};
use wardmail::sync::{SyncError, blocking};

use crate::ui::{format, style};

/// Height of one row in logical pixels.
pub const ROW_HEIGHT: f32 = 54.0;

/// Rows loaded per store query.
const WINDOW: u32 = 300;

/// Rows drawn above and below the viewport, so that a small scroll shows
/// rows at once instead of placeholders.
const MARGIN: u32 = 4;

/// Viewport height assumed until the scrollable reports its size.
const INITIAL_HEIGHT: f32 = 1_200.0;

/// Maximum length of a drawn sender or subject, in characters.
const MAX_CHARS: usize = 160;

/// The scrollable's id, for keeping the selection in view.
const LIST: Id = Id::new("message-list");

/// Message list state.
#[derive(Debug)]
pub struct MessageList {
    folder: Option<Folder>,
    /// Bumped when another folder is shown, so that late results for the
    /// previous folder are dropped.
    generation: u64,
    count: u32,
    window_offset: u32,
    rows: Vec<ListRow>,
    pending: Option<u32>,
    scroll_y: f32,
    height: f32,
    selected: Option<Selection>,
    /// A row to select as soon as its window is loaded, after a keyboard
    /// jump to a row that was not loaded yet.
    pending_selection: Option<u32>,
}

/// The selected row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Position in the folder, newest first.
    pub index: u32,
    /// The message's UID.
    pub uid: u32,
}

/// Message list messages.
#[derive(Clone, Debug)]
pub enum Message {
    /// The user scrolled or the list was resized.
    Scrolled(Viewport),
    /// A window of rows arrived from the store.
    Loaded {
        /// The generation the request was made for.
        generation: u64,
        /// The first row's position.
        offset: u32,
        /// The folder's message count and the rows.
        result: Result<(u32, Vec<ListRow>), Arc<SyncError>>,
    },
    /// A row was clicked.
    Clicked(u32),
}

/// Notifications from the list to the mailbox.
#[derive(Clone, Debug)]
pub enum Event {
    /// Open this message.
    Open(ListRow),
    /// Loading rows failed.
    Failed(Arc<SyncError>),
}

impl Default for MessageList {
    fn default() -> Self {
        MessageList {
            folder: None,
            generation: 0,
            count: 0,
            window_offset: 0,
            rows: Vec::new(),
            pending: None,
            scroll_y: 0.0,
            height: INITIAL_HEIGHT,
            selected: None,
            pending_selection: None,
        }
    }
}

impl MessageList {
    /// Handles a list message.
    pub fn update(
        &mut self,
        message: Message,
        store: &Arc<Store>,
    ) -> (Task<Message>, Option<Event>) {
        match message {
            Message::Scrolled(viewport) => (self.scrolled(viewport, store), None),
            Message::Loaded {
                generation,
                offset,
                result,
            } => self.loaded(generation, offset, result),
            Message::Clicked(index) => (Task::none(), self.select(index)),
        }
    }

    /// Shows another folder from its first row.
    pub fn show(&mut self, folder: Folder, store: &Arc<Store>) -> Task<Message> {
        let scroll_back = scroll_to(0.0);
        *self = MessageList {
            generation: self.generation + 1,
            height: self.height,
            ..MessageList::default()
        };
        self.folder = Some(folder);
        Task::batch([scroll_back, self.load(0, store)])
    }

    /// Loads the current window again (after a sync or a change).
    pub fn reload(&mut self, store: &Arc<Store>) -> Task<Message> {
        let offset = self.window_for(self.first_visible());
        self.pending = None;
        self.load(offset, store)
    }

    /// Returns the folder on show.
    pub fn folder(&self) -> Option<&Folder> {
        self.folder.as_ref()
    }

    /// Returns the selected row, if it is loaded.
    pub fn selected_row(&self) -> Option<&ListRow> {
        let selection = self.selected?;
        self.row(selection.index)
            .filter(|row| row.uid == selection.uid)
    }

    /// Forgets the selection (after the message was moved away).
    pub fn clear_selection(&mut self) {
        self.selected = None;
    }

    /// Updates a cached row in place, ahead of the store.
    pub fn patch(&mut self, uid: u32, change: impl Fn(&mut ListRow)) {
        if let Some(row) = self.rows.iter_mut().find(|row| row.uid == uid) {
            change(row);
        }
    }

    /// Selects the row `delta` positions away from the selection, and
    /// scrolls so that it is visible. Returns the row to open.
    pub fn step(&mut self, delta: i64) -> (Task<Message>, Option<Event>) {
        if self.count == 0 {
            return (Task::none(), None);
        }
        let current = self.selected.map_or(-1, |s| i64::from(s.index));
        let last = i64::from(self.count) - 1;
        let index = current.saturating_add(delta).clamp(0, last) as u32;
        let event = self.select(index);
        self.pending_selection = if event.is_none() { Some(index) } else { None };

        let top = index as f32 * ROW_HEIGHT;
        let task = if top < self.scroll_y {
            scroll_to(top)
        } else if top + ROW_HEIGHT > self.scroll_y + self.height {
            scroll_to(top + ROW_HEIGHT - self.height)
        } else {
            Task::none()
        };
        (task, event)
    }

    /// Rows in one screenful, for Page Up and Page Down.
    pub fn page_rows(&self) -> i64 {
        ((self.height / ROW_HEIGHT).floor() as i64 - 1).max(1)
    }

    fn select(&mut self, index: u32) -> Option<Event> {
        let row = self.row(index)?.clone();
        self.selected = Some(Selection {
            index,
            uid: row.uid,
        });
        Some(Event::Open(row))
    }

    fn row(&self, index: u32) -> Option<&ListRow> {
        let position = index.checked_sub(self.window_offset)?;
        self.rows.get(position as usize)
    }

    fn first_visible(&self) -> u32 {
        (self.scroll_y / ROW_HEIGHT).floor().max(0.0) as u32
    }

    /// Returns the range of rows drawn: those in the viewport plus a margin.
    fn drawn_range(&self) -> (u32, u32) {
        let first = self.first_visible();
        let visible = (self.height / ROW_HEIGHT).ceil() as u32 + 1;
        let start = first.saturating_sub(MARGIN).min(self.count);
        let end = first.saturating_add(visible + MARGIN).min(self.count);
        (start, end)
    }

    /// Returns the offset of a window that contains `first`, with room to
    /// scroll up.
    fn window_for(&self, first: u32) -> u32 {
        first.saturating_sub(WINDOW / 3)
    }

    fn covers(&self, offset: u32, start: u32, end: u32) -> bool {
        start >= offset && end <= offset.saturating_add(WINDOW)
    }

    fn scrolled(&mut self, viewport: Viewport, store: &Arc<Store>) -> Task<Message> {
        self.scroll_y = viewport.absolute_offset().y;
        self.height = viewport.bounds().height;

        let (start, end) = self.drawn_range();
        let cached_end = self.window_offset + self.rows.len() as u32;
        if start >= self.window_offset && end <= cached_end {
            return Task::none();
        }
        if self
            .pending
            .is_some_and(|offset| self.covers(offset, start, end))
        {
            return Task::none();
        }
        self.load(self.window_for(start), store)
    }

    fn load(&mut self, offset: u32, store: &Arc<Store>) -> Task<Message> {
        let Some(folder) = &self.folder else {
            return Task::none();
        };
        let (id, generation) = (folder.id, self.generation);
        self.pending = Some(offset);
        let store = store.clone();
        Task::perform(
            async move {
                blocking(&store, move |s| {
                    Ok((s.count(id)?, s.list(id, offset, WINDOW)?))
                })
                .await
                .map_err(Arc::new)
            },
            move |result| Message::Loaded {
                generation,
                offset,
                result,
            },
        )
    }

    fn loaded(
        &mut self,
        generation: u64,
        offset: u32,
        result: Result<(u32, Vec<ListRow>), Arc<SyncError>>,
    ) -> (Task<Message>, Option<Event>) {
        if generation != self.generation {
            return (Task::none(), None);
        }
        if self.pending == Some(offset) {
            self.pending = None;
        }
        match result {
            Ok((count, rows)) => {
                self.count = count;
                self.window_offset = offset;
                self.rows = rows;
                if let Some(selection) = self.selected
                    && self
                        .row(selection.index)
                        .is_some_and(|row| row.uid != selection.uid)
                {
                    // Rows above moved the selection; find it in the window.
                    self.selected = self
                        .rows
                        .iter()
                        .position(|row| row.uid == selection.uid)
                        .map(|position| Selection {
                            index: offset + position as u32,
                            uid: selection.uid,
                        });
                }
                let pending_selection = self
                    .pending_selection
                    .filter(|index| self.row(*index).is_some());
                let event = pending_selection.and_then(|index| {
                    self.pending_selection = None;
                    self.select(index)
                });
                (Task::none(), event)
            }
            Err(error) => (Task::none(), Some(Event::Failed(error))),
        }
    }

    /// Draws the list pane.
    pub fn view(&self) -> Element<'_, Message> {
        if self.folder.is_none() {
            return center(text("Choose a folder on the left.").style(style::muted_text)).into();
        }
        if self.count == 0 {
            let note = if self.pending.is_some() {
                "Loading…"
            } else {
                "No messages in this folder."
            };
            return center(text(note).style(style::muted_text)).into();
        }

        let now = format::now();
        let (start, end) = self.drawn_range();
        let mut rows = Column::with_capacity((end - start) as usize + 2);
        rows = rows.push(space().height(start as f32 * ROW_HEIGHT));
        for index in start..end {
            rows = rows.push(self.row_view(index, now));
        }
        rows = rows.push(space().height((self.count - end) as f32 * ROW_HEIGHT));

        scrollable(rows.width(Fill))
            .id(LIST)
            .on_scroll(Message::Scrolled)
            .spacing(2)
            .height(Fill)
            .into()
    }

    fn row_view(&self, index: u32, now: i64) -> Element<'_, Message> {
        let Some(item) = self.row(index) else {
            return container(text("…").style(style::muted_text))
                .padding([4, 12])
                .height(ROW_HEIGHT)
                .width(Fill)
                .into();
        };
        let selected = self
            .selected
            .is_some_and(|s| s.index == index && s.uid == item.uid);

        let sender = if item.from.is_empty() {
            "(no sender)"
        } else {
            item.from.as_str()
        };
        let subject = if item.subject.is_empty() {
            "(no subject)"
        } else {
            item.subject.as_str()
        };
        let weight = if item.seen {
            iced::Font::DEFAULT
        } else {
            style::BOLD
        };

        let mut markers = row![].spacing(6);
        if item.flagged {
            markers = markers.push(
                text("⚑ Flagged")
                    .size(style::SMALL)
                    .style(style::error_text),
            );
        }
        if item.has_attachments {
            markers = markers.push(
                text("Attachment")
                    .size(style::SMALL)
                    .style(style::muted_text),
            );
        }

        let first_line = row![
            cell(text(format::clip(display_name(sender), MAX_CHARS)).font(weight)),
            text(format::list_date(item.date, now))
                .size(style::SMALL)
                .font(weight),
        ]
        .spacing(8);
        let second_line = row![
            cell(
                text(format::clip(subject, MAX_CHARS))
                    .size(style::SMALL)
                    .font(weight)
            ),
            markers,
        ]
        .spacing(8);

        button(column![first_line, second_line].spacing(2))
            .on_press(Message::Clicked(index))
            .padding([6, 12])
            .height(ROW_HEIGHT)
            .width(Fill)
            .clip(true)
            .style(style::list_row(selected))
            .into()
    }
}

/// Wraps a text so that it takes the remaining width of its row and is cut
/// off at its edge instead of running into the next column.
fn cell<'a>(content: text::Text<'a>) -> Element<'a, Message> {
    container(content.wrapping(text::Wrapping::None))
        .width(Fill)
        .clip(true)
        .into()
}

/// Returns the display name of a "Name <address>" sender, or the address
/// alone.
fn display_name(sender: &str) -> &str {
    match sender.rsplit_once(" <") {
        Some((name, _)) if !name.trim().is_empty() => name.trim().trim_matches('"'),
        _ => sender,
    }
}

fn scroll_to(y: f32) -> Task<Message> {
    iced::widget::operation::scroll_to(
        LIST,
        AbsoluteOffset {
            x: None,
            y: Some(y),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(range: std::ops::Range<u32>) -> Vec<ListRow> {
        range
            .map(|uid| ListRow {
                uid,
                from: format!("sender {uid}"),
                subject: format!("subject {uid}"),
                date: Some(i64::from(uid)),
                seen: uid % 2 == 0,
                flagged: false,
                answered: false,
                has_attachments: false,
            })
            .collect()
    }

    fn list_with(count: u32, offset: u32) -> MessageList {
        let mut list = MessageList {
            folder: Some(Folder {
                id: 1,
                raw_name: "INBOX".into(),
                name: "INBOX".into(),
                delimiter: None,
                role: None,
                selectable: true,
                total: count,
                unread: 0,
            }),
            height: 540.0,
            ..MessageList::default()
        };
        let (generation, loaded) = (list.generation, rows(offset..(offset + WINDOW).min(count)));
        let _ = list.loaded(generation, offset, Ok((count, loaded)));
        list
    }

    #[test]
    fn drawn_rows_are_bounded() {
        let mut list = list_with(100_000, 0);
        list.scroll_y = 50_000.0 * ROW_HEIGHT;
        let (start, end) = list.drawn_range();
        assert_eq!(start, 50_000 - MARGIN);
        assert_eq!(end, 50_000 + 11 + MARGIN);
    }

    #[test]
    fn drawn_rows_stop_at_count() {
        let mut list = list_with(5, 0);
        list.scroll_y = 0.0;
        assert_eq!(list.drawn_range(), (0, 5));
    }

    #[test]
    fn window_starts_above_viewport() {
        let list = list_with(100_000, 0);
        assert_eq!(list.window_for(1_000), 1_000 - WINDOW / 3);
        assert_eq!(list.window_for(10), 0);
    }

    #[test]
    fn stale_generation_is_dropped() {
        let mut list = list_with(10, 0);
        let before = list.rows.len();
        let _ = list.loaded(list.generation + 1, 0, Ok((1, rows(0..1))));
        assert_eq!(list.rows.len(), before);
        assert_eq!(list.count, 10);
    }

    #[test]
    fn sender_shows_name() {
        assert_eq!(display_name("Dr. Lee <lee@example.org>"), "Dr. Lee");
        assert_eq!(
            display_name("\"Lab, Central\" <lab@example.org>"),
            "Lab, Central"
        );
        assert_eq!(display_name("lab@example.org"), "lab@example.org");
    }

    #[test]
    fn step_selects_and_clamps() {
        let mut list = list_with(3, 0);
        let (_, event) = list.step(1);
        assert!(matches!(event, Some(Event::Open(ref row)) if row.uid == 0));
        let (_, event) = list.step(5);
        assert!(matches!(event, Some(Event::Open(ref row)) if row.uid == 2));
        let (_, event) = list.step(-1);
        assert!(matches!(event, Some(Event::Open(ref row)) if row.uid == 1));
    }

    #[test]
    fn jump_opens_row_once_loaded() {
        let mut list = list_with(100_000, 0);
        let (_, event) = list.step(i64::MAX);
        assert!(event.is_none());
        assert_eq!(list.pending_selection, Some(99_999));
        let generation = list.generation;
        let (_, event) = list.loaded(generation, 99_800, Ok((100_000, rows(99_800..100_000))));
        assert!(matches!(event, Some(Event::Open(ref row)) if row.uid == 99_999));
        assert_eq!(list.pending_selection, None);
    }

    #[test]
    fn selection_follows_shifted_rows() {
        let mut list = list_with(10, 0);
        list.selected = Some(Selection { index: 2, uid: 2 });
        // A new message arrived on top: every row moved down by one.
        let mut shifted = rows(100..101);
        shifted.extend(rows(0..10));
        let generation = list.generation;
        let _ = list.loaded(generation, 0, Ok((11, shifted)));
        assert_eq!(list.selected, Some(Selection { index: 3, uid: 2 }));
    }
}
