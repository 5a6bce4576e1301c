//! The folder pane: special-use folders first (the store sorts them), each
//! with a symbol and its unread count; subfolders indented.

use iced::widget::{Column, button, row, scrollable, space, text};
use iced::{Element, Fill};

use wardmail::imap::Role;
use wardmail::store::Folder;

use crate::ui::style;

/// A symbol per role, from characters that DejaVu Sans and the common
/// system fonts have.
fn symbol(role: Option<Role>) -> &'static str {
    match role {
        Some(Role::Inbox) => "✉",
        Some(Role::Drafts) => "✎",
        Some(Role::Sent) => "➤",
        Some(Role::Archive) => "▤",
        Some(Role::Junk) => "⚠",
        Some(Role::Trash) => "✗",
        None => "•",
    }
}

/// The name shown for a folder: the last level of its path, and "Inbox"
/// for the server's INBOX.
pub fn label(folder: &Folder) -> &str {
    if folder.role == Some(Role::Inbox) {
        return "Inbox";
    }
    match &folder.delimiter {
        Some(delimiter) if !delimiter.is_empty() => folder
            .name
            .rsplit(delimiter.as_str())
            .next()
            .unwrap_or(&folder.name),
        _ => &folder.name,
    }
}

fn depth(folder: &Folder) -> usize {
    match &folder.delimiter {
        Some(delimiter) if !delimiter.is_empty() => folder.name.matches(delimiter.as_str()).count(),
        _ => 0,
    }
}

/// The pane; `on_select` turns a folder id into the caller's message.
pub fn view<'a, Message: Clone + 'a>(
    folders: &'a [Folder],
    current: Option<i64>,
    on_select: impl Fn(i64) -> Message + 'a,
) -> Element<'a, Message> {
    let mut list = Column::new().spacing(2).padding([8, 4]);
    list = list.push(
        text("Folders")
            .size(style::SMALL)
            .font(style::BOLD)
            .style(style::muted_text),
    );
    for folder in folders {
        let unread = folder.unread;
        let weight = if unread > 0 {
            style::BOLD
        } else {
            iced::Font::DEFAULT
        };
        let mut line = row![
            space().width(depth(folder) as f32 * 14.0),
            text(symbol(folder.role)).width(20),
            text(label(folder))
                .font(weight)
                .wrapping(text::Wrapping::None)
                .width(Fill),
        ]
        .spacing(4)
        .align_y(iced::Center);
        if unread > 0 {
            line = line.push(
                text(unread.to_string())
                    .size(style::SMALL)
                    .font(style::BOLD),
            );
        }

        let selected = current == Some(folder.id);
        let entry = button(line)
            .width(Fill)
            .padding([6, 8])
            .clip(true)
            .style(style::list_row(selected))
            .on_press_maybe(folder.selectable.then(|| on_select(folder.id)));
        list = list.push(entry);
    }
    scrollable(list).height(Fill).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str, role: Option<Role>) -> Folder {
        Folder {
            id: 1,
            raw_name: name.into(),
            name: name.into(),
            delimiter: Some("/".into()),
            role,
            selectable: true,
            total: 0,
            unread: 0,
        }
    }

    #[test]
    fn label_of_nested_folder() {
        assert_eq!(label(&folder("Clinic/Lab results", None)), "Lab results");
        assert_eq!(depth(&folder("Clinic/Lab results", None)), 1);
        assert_eq!(label(&folder("INBOX", Some(Role::Inbox))), "Inbox");
    }
}
