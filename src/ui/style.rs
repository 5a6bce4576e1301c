//! Colours, text sizes and small widget helpers shared by every screen.
//!
//! The palettes start from iced's light and dark ones. Their accent colours
//! are changed so that text in them, and text on them, reaches the WCAG AA
//! contrast ratio of 4.5:1 in both themes. For example, iced 0.14's danger
//! red (#C3423F) on its dark background reaches only 2.7:1. The test
//! `palettes_meet_aa_contrast` checks the ratios.

use iced::border::{self, Border};
use iced::font::Weight;
use iced::widget::{button, container, text, text_editor, text_input};
use iced::{Background, Color, Element, Font, Theme, color};

/// Body text size in logical pixels.
pub const TEXT: f32 = 16.0;

/// The smallest text used anywhere (secondary lines, the status bar).
pub const SMALL: f32 = 14.0;

/// Headings on the setup and composer screens.
pub const HEADING: f32 = 22.0;

/// Builds the light theme.
pub fn light() -> Theme {
    Theme::custom(
        "Wardmail light",
        iced::theme::Palette {
            background: Color::WHITE,
            text: color!(0x1b1b1f),
            primary: color!(0x3949ab),
            success: color!(0x1b6e3a),
            warning: color!(0x8a5300),
            danger: color!(0xb3261e),
        },
    )
}

/// Builds the dark theme.
pub fn dark() -> Theme {
    Theme::custom(
        "Wardmail dark",
        iced::theme::Palette {
            background: color!(0x1f2023),
            text: color!(0xe6e6e8),
            primary: color!(0x4752c4),
            success: color!(0x7fd39b),
            warning: color!(0xf2c46d),
            danger: color!(0xff8a80),
        },
    )
}

/// The bold variant of the default font (unread rows, labels).
pub const BOLD: Font = Font {
    weight: Weight::Bold,
    ..Font::DEFAULT
};

/// Text in the error colour, readable on the theme's background.
pub fn error_text(theme: &Theme) -> text::Style {
    text::Style {
        color: Some(theme.palette().danger),
    }
}

/// Text in the success colour.
pub fn success_text(theme: &Theme) -> text::Style {
    text::Style {
        color: Some(theme.palette().success),
    }
}

/// Secondary text: dimmer than body text but above 4.5:1 on the
/// background of either theme.
pub fn muted_text(theme: &Theme) -> text::Style {
    let color = if theme.extended_palette().is_dark {
        color!(0xb0b3b8)
    } else {
        color!(0x5f6368)
    };
    text::Style { color: Some(color) }
}

/// Styles a pane with the window background and a thin border.
pub fn pane(theme: &Theme) -> container::Style {
    let palette = theme.extended_palette();
    container::Style {
        background: Some(palette.background.base.color.into()),
        text_color: Some(palette.background.base.text),
        border: Border {
            width: 1.0,
            radius: 0.0.into(),
            color: palette.background.strong.color,
        },
        ..container::Style::default()
    }
}

/// Styles a bar (toolbar, status bar) one shade off the background.
pub fn bar(theme: &Theme) -> container::Style {
    let palette = theme.extended_palette();
    container::Style {
        background: Some(palette.background.weak.color.into()),
        text_color: Some(palette.background.weak.text),
        ..container::Style::default()
    }
}

/// Styles a framed block, such as the message headers or a form section.
pub fn frame(theme: &Theme) -> container::Style {
    let palette = theme.extended_palette();
    container::Style {
        background: Some(palette.background.weakest.color.into()),
        text_color: Some(palette.background.weakest.text),
        border: Border {
            width: 1.0,
            radius: 4.0.into(),
            color: palette.background.strong.color,
        },
        ..container::Style::default()
    }
}

/// Styles a note that the user should read but that is not an error, such
/// as unreadable parts, with an amber edge and the normal text colour.
pub fn note(theme: &Theme) -> container::Style {
    let palette = theme.extended_palette();
    let edge = theme.palette().warning;
    container::Style {
        background: Some(
            iced::theme::palette::mix(edge, palette.background.base.color, 0.88).into(),
        ),
        text_color: Some(palette.background.base.text),
        border: Border {
            width: 1.0,
            radius: 4.0.into(),
            color: edge,
        },
        ..container::Style::default()
    }
}

/// Styles an error block with a red edge and the normal text colour.
pub fn alert(theme: &Theme) -> container::Style {
    let palette = theme.extended_palette();
    let edge = theme.palette().danger;
    container::Style {
        background: Some(
            iced::theme::palette::mix(edge, palette.background.base.color, 0.9).into(),
        ),
        text_color: Some(palette.background.base.text),
        border: Border {
            width: 1.0,
            radius: 4.0.into(),
            color: edge,
        },
        ..container::Style::default()
    }
}

/// The neutral strip above a message that will later carry its
/// protection status.
pub fn protection_strip(theme: &Theme) -> container::Style {
    let palette = theme.extended_palette();
    container::Style {
        background: Some(palette.background.strong.color.into()),
        text_color: Some(palette.background.strong.text),
        border: border::rounded(4),
        ..container::Style::default()
    }
}

/// The protection strip of a message that is encrypted or signed and
/// checks out.
pub fn protected_strip(theme: &Theme) -> container::Style {
    let palette = theme.extended_palette();
    container::Style {
        background: Some(palette.success.weak.color.into()),
        text_color: Some(palette.success.weak.text),
        border: border::rounded(4),
        ..container::Style::default()
    }
}

/// A row of the message list or the folder list; `selected` rows use the
/// primary colour so the selection is visible without hovering.
pub fn list_row(selected: bool) -> impl Fn(&Theme, button::Status) -> button::Style {
    move |theme, status| {
        let palette = theme.extended_palette();
        let pair = if selected {
            palette.primary.weak
        } else {
            match status {
                button::Status::Hovered | button::Status::Pressed => palette.background.weak,
                _ => palette.background.base,
            }
        };
        button::Style {
            background: Some(Background::Color(pair.color)),
            text_color: pair.text,
            border: Border::default(),
            ..button::Style::default()
        }
    }
}

fn muted_color(theme: &Theme) -> Color {
    muted_text(theme).color.unwrap_or(theme.palette().text)
}

/// Text inputs with a thicker primary border when focused, so keyboard
/// focus is visible at a glance, and placeholders readable at 4.5:1.
pub fn input(theme: &Theme, status: text_input::Status) -> text_input::Style {
    let mut style = text_input::default(theme, status);
    style.placeholder = muted_color(theme);
    if let text_input::Status::Focused { .. } = status {
        style.border.width = 2.0;
        style.border.color = theme.palette().primary;
    }
    style
}

/// Text editors styled like [`input`].
pub fn editor(theme: &Theme, status: text_editor::Status) -> text_editor::Style {
    let mut style = text_editor::default(theme, status);
    style.placeholder = muted_color(theme);
    if let text_editor::Status::Focused { .. } = status {
        style.border.width = 2.0;
        style.border.color = theme.palette().primary;
    }
    style
}

/// Styles a text input that contains an invalid value.
pub fn invalid_input(theme: &Theme, status: text_input::Status) -> text_input::Style {
    let mut style = input(theme, status);
    style.border.color = theme.palette().danger;
    style.border.width = 2.0;
    style
}

/// Creates a small toolbar button.
pub fn tool<'a, Message: Clone + 'a>(
    label: &'a str,
    on_press: Option<Message>,
) -> button::Button<'a, Message> {
    button(text(label).size(SMALL))
        .padding([5, 10])
        .style(button::secondary)
        .on_press_maybe(on_press)
}

/// Creates a small main-action button.
pub fn action<'a, Message: Clone + 'a>(
    label: &'a str,
    on_press: Option<Message>,
) -> button::Button<'a, Message> {
    button(text(label).size(SMALL))
        .padding([5, 12])
        .style(button::primary)
        .on_press_maybe(on_press)
}

/// Creates an error line below a field, or empty space when there is no
/// error.
pub fn field_error<'a, Message: 'a>(error: Option<&'a str>) -> Element<'a, Message> {
    match error {
        Some(error) => text(error).size(SMALL).style(error_text).into(),
        None => iced::widget::space().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WCAG 2 contrast ratio of two colours.
    fn contrast(a: Color, b: Color) -> f32 {
        a.relative_contrast(b)
    }

    #[test]
    fn palettes_meet_aa_contrast() {
        for theme in [light(), dark()] {
            let palette = theme.extended_palette();
            let background = palette.background.base.color;
            let name = theme.to_string();
            assert!(
                contrast(theme.palette().text, background) >= 4.5,
                "{name}: body text"
            );
            assert!(
                contrast(theme.palette().danger, background) >= 4.5,
                "{name}: error text"
            );
            assert!(
                contrast(theme.palette().success, background) >= 4.5,
                "{name}: success text"
            );
            let primary = palette.primary.base;
            assert!(
                contrast(primary.text, primary.color) >= 4.5,
                "{name}: primary button"
            );
            let muted = muted_text(&theme).color.unwrap_or(Color::BLACK);
            assert!(contrast(muted, background) >= 4.5, "{name}: muted text");
        }
    }
}
