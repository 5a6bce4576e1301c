//! Keyboard shortcuts. Only key presses that no widget used arrive here, so
//! typing Delete in a text field never deletes a message.

use iced::Subscription;
use iced::keyboard::{self, Key, key::Named};

/// A keyboard shortcut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shortcut {
    /// Ctrl+N.
    NewMessage,
    /// Ctrl+R.
    Reply,
    /// Ctrl+Shift+R.
    ReplyAll,
    /// Ctrl+L.
    Forward,
    /// Ctrl+Enter.
    Send,
    /// Delete.
    Delete,
    /// Down arrow: the next message.
    Next,
    /// Up arrow: the previous message.
    Previous,
    /// Page Down.
    PageDown,
    /// Page Up.
    PageUp,
    /// Home: the newest message.
    First,
    /// End: the oldest message.
    Last,
    /// F5.
    Sync,
    /// Escape.
    Escape,
    /// Tab.
    FocusNext,
    /// Shift+Tab.
    FocusPrevious,
}

/// Key presses mapped to shortcuts.
pub fn listen() -> Subscription<Shortcut> {
    keyboard::listen().filter_map(shortcut)
}

fn shortcut(event: keyboard::Event) -> Option<Shortcut> {
    let keyboard::Event::KeyPressed {
        key,
        physical_key,
        modifiers,
        ..
    } = event
    else {
        return None;
    };

    if modifiers.command() && !modifiers.alt() {
        if let Key::Named(Named::Enter) = key {
            return Some(Shortcut::Send);
        }
        return match key.to_latin(physical_key).map(|c| c.to_ascii_lowercase()) {
            Some('n') => Some(Shortcut::NewMessage),
            Some('r') if modifiers.shift() => Some(Shortcut::ReplyAll),
            Some('r') => Some(Shortcut::Reply),
            Some('l') => Some(Shortcut::Forward),
            _ => None,
        };
    }
    if modifiers.alt() || modifiers.command() {
        return None;
    }
    match key {
        Key::Named(Named::Tab) if modifiers.shift() => Some(Shortcut::FocusPrevious),
        Key::Named(Named::Tab) => Some(Shortcut::FocusNext),
        Key::Named(Named::Delete) => Some(Shortcut::Delete),
        Key::Named(Named::ArrowDown) => Some(Shortcut::Next),
        Key::Named(Named::ArrowUp) => Some(Shortcut::Previous),
        Key::Named(Named::PageDown) => Some(Shortcut::PageDown),
        Key::Named(Named::PageUp) => Some(Shortcut::PageUp),
        Key::Named(Named::Home) => Some(Shortcut::First),
        Key::Named(Named::End) => Some(Shortcut::Last),
        Key::Named(Named::F5) => Some(Shortcut::Sync),
        Key::Named(Named::Escape) => Some(Shortcut::Escape),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced::keyboard::{Location, Modifiers, key::Code, key::Physical};

    fn press(key: Key, code: Code, modifiers: Modifiers) -> keyboard::Event {
        keyboard::Event::KeyPressed {
            modified_key: key.clone(),
            key,
            physical_key: Physical::Code(code),
            location: Location::Standard,
            modifiers,
            text: None,
            repeat: false,
        }
    }

    #[test]
    fn ctrl_letters() {
        let r = || Key::Character("r".into());
        assert_eq!(
            shortcut(press(r(), Code::KeyR, Modifiers::CTRL)),
            Some(Shortcut::Reply)
        );
        assert_eq!(
            shortcut(press(
                Key::Character("R".into()),
                Code::KeyR,
                Modifiers::CTRL | Modifiers::SHIFT
            )),
            Some(Shortcut::ReplyAll)
        );
        assert_eq!(shortcut(press(r(), Code::KeyR, Modifiers::empty())), None);
        assert_eq!(
            shortcut(press(
                Key::Named(Named::Enter),
                Code::Enter,
                Modifiers::CTRL
            )),
            Some(Shortcut::Send)
        );
    }

    #[test]
    fn plain_keys() {
        assert_eq!(
            shortcut(press(
                Key::Named(Named::Delete),
                Code::Delete,
                Modifiers::empty()
            )),
            Some(Shortcut::Delete)
        );
        assert_eq!(
            shortcut(press(Key::Named(Named::Tab), Code::Tab, Modifiers::SHIFT)),
            Some(Shortcut::FocusPrevious)
        );
        assert_eq!(
            shortcut(press(
                Key::Named(Named::Enter),
                Code::Enter,
                Modifiers::empty()
            )),
            None
        );
    }
}
