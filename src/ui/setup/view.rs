//! Drawing of the account form.

use iced::widget::{
    Column, button, column, container, pick_list, row, scrollable, space, text, text_input,
};
use iced::{Element, Fill};

use wardmail::account::Security;

use super::{Check, Field, Message, Mode, Protocol, Setup};
use crate::ui::style;

impl Setup {
    /// The form.
    pub fn view(&self) -> Element<'_, Message> {
        let (title, intro) = match self.mode {
            Mode::Welcome => (
                "Welcome to Wardmail",
                "Set up your mail account. Your clinic's IT staff or your mail provider can give you these settings.",
            ),
            Mode::Settings { .. } => (
                "Account settings",
                "Leave the password empty to keep the one stored in the system keyring.",
            ),
        };

        let left = column![
            section(
                "You",
                column![
                    self.input(
                        Field::DisplayName,
                        "Your name",
                        "Dr. Ann Smith",
                        &self.display_name
                    ),
                    self.input(
                        Field::Address,
                        "Email address",
                        "name@clinic.example",
                        &self.address
                    ),
                ]
            ),
            section(
                "Sign-in",
                column![
                    self.input(
                        Field::Username,
                        "User name",
                        "usually your email address",
                        &self.username
                    ),
                    self.input(
                        Field::Password,
                        "Password",
                        self.password_placeholder(),
                        &self.password
                    ),
                ]
            ),
            section("Clinic certificate (optional)", self.ca_file_field()),
        ]
        .spacing(16)
        .width(Fill);

        let right = column![
            section("Incoming mail (IMAP)", self.server_fields(Protocol::Imap)),
            section("Outgoing mail (SMTP)", self.server_fields(Protocol::Smtp)),
        ]
        .spacing(16)
        .width(Fill);

        let page = column![
            text(title).size(style::HEADING).font(style::BOLD),
            text(intro),
            row![left, right].spacing(24),
            self.buttons(),
        ]
        .spacing(16)
        .padding(24)
        .max_width(1100);

        scrollable(container(page).center_x(Fill))
            .height(Fill)
            .into()
    }

    fn password_placeholder(&self) -> &'static str {
        match self.mode {
            Mode::Welcome => "password",
            Mode::Settings { .. } => "unchanged",
        }
    }

    fn input<'a>(
        &'a self,
        field: Field,
        label: &'a str,
        placeholder: &'a str,
        value: &'a str,
    ) -> Element<'a, Message> {
        let error = self.error(field);
        let input = text_input(placeholder, value)
            .on_input(move |value| Message::Edit(field, value))
            .on_submit(Message::Test)
            .secure(field == Field::Password)
            .padding(8)
            .style(if error.is_some() {
                style::invalid_input
            } else {
                style::input
            });
        column![
            text(label).size(style::SMALL).font(style::BOLD),
            input,
            style::field_error(error)
        ]
        .spacing(4)
        .into()
    }

    fn ca_file_field(&self) -> Element<'_, Message> {
        let error = self.error(Field::CaFile);
        let path = text_input("none", &self.ca_file)
            .on_input(|value| Message::Edit(Field::CaFile, value))
            .padding(8)
            .style(if error.is_some() {
                style::invalid_input
            } else {
                style::input
            });
        let clear = (!self.ca_file.is_empty()).then(|| Message::Edit(Field::CaFile, String::new()));
        column![
            text("If your clinic runs its own certificate authority, choose its certificate (a PEM file).")
                .size(style::SMALL),
            row![path, style::tool("Choose file…", Some(Message::ChooseCaFile)), style::tool("Clear", clear)]
                .spacing(6)
                .align_y(iced::Center),
            style::field_error(error),
        ]
        .spacing(4)
        .into()
    }

    fn server_fields(&self, protocol: Protocol) -> Element<'_, Message> {
        let (server, host_field, port_field, check, placeholder) = match protocol {
            Protocol::Imap => (
                &self.imap,
                Field::ImapHost,
                Field::ImapPort,
                &self.imap_check,
                "imap.clinic.example",
            ),
            Protocol::Smtp => (
                &self.smtp,
                Field::SmtpHost,
                Field::SmtpPort,
                &self.smtp_check,
                "smtp.clinic.example",
            ),
        };
        let port_error = self.error(port_field);
        let port = text_input("port", &server.port)
            .on_input(move |value| Message::Edit(port_field, value))
            .on_submit(Message::Test)
            .padding(8)
            .width(100)
            .style(if port_error.is_some() {
                style::invalid_input
            } else {
                style::input
            });
        let security = pick_list(&Security::ALL[..], Some(server.security), move |security| {
            Message::Security(protocol, security)
        })
        .padding(8)
        .width(150);

        column![
            self.input(host_field, "Server", placeholder, &server.host),
            row![
                column![text("Port").size(style::SMALL).font(style::BOLD), port].spacing(4),
                column![
                    text("Security").size(style::SMALL).font(style::BOLD),
                    security
                ]
                .spacing(4),
            ]
            .spacing(12),
            style::field_error(port_error),
            check_line(protocol, check),
        ]
        .spacing(6)
        .into()
    }

    fn buttons(&self) -> Element<'_, Message> {
        let testing =
            matches!(self.imap_check, Check::Running) || matches!(self.smtp_check, Check::Running);
        let idle = !testing && !self.saving;
        let save_label = match self.mode {
            Mode::Welcome => "Save and open mailbox",
            Mode::Settings { .. } => "Save",
        };
        let mut buttons = row![
            button(text("Test connection"))
                .padding([8, 16])
                .style(button::secondary)
                .on_press_maybe(idle.then_some(Message::Test)),
            button(text(save_label))
                .padding([8, 16])
                .style(button::primary)
                .on_press_maybe(idle.then_some(Message::Save)),
        ]
        .spacing(12)
        .align_y(iced::Center);
        if let Mode::Settings { .. } = self.mode {
            buttons = buttons.push(
                button(text("Cancel"))
                    .padding([8, 16])
                    .style(button::secondary)
                    .on_press(Message::Cancel),
            );
        }
        if testing {
            buttons = buttons.push(text("Testing the connection…").style(style::muted_text));
        }
        if self.saving {
            buttons = buttons.push(text("Saving…").style(style::muted_text));
        }

        let mut block = Column::new().spacing(6).push(buttons);
        if !self.errors.is_empty() {
            block = block.push(
                text("Some fields need attention; see the messages next to them.")
                    .style(style::error_text),
            );
        }
        if let Some(error) = &self.save_error {
            block = block.push(text(error).style(style::error_text));
        }
        block.into()
    }
}

fn section<'a>(title: &'a str, body: impl Into<Element<'a, Message>>) -> Element<'a, Message> {
    container(column![text(title).font(style::BOLD), body.into()].spacing(8))
        .padding(12)
        .width(Fill)
        .style(style::frame)
        .into()
}

fn check_line(protocol: Protocol, check: &Check) -> Element<'_, Message> {
    let name = match protocol {
        Protocol::Imap => "IMAP",
        Protocol::Smtp => "SMTP",
    };
    match check {
        Check::NotRun => space().into(),
        Check::Running => text(format!("Testing {name}…"))
            .size(style::SMALL)
            .style(style::muted_text)
            .into(),
        Check::Done(Ok(())) => text(format!("✓ {name} works: connected securely and signed in."))
            .size(style::SMALL)
            .style(style::success_text)
            .into(),
        Check::Done(Err(error)) => column![
            text(format!("✗ {name} failed"))
                .size(style::SMALL)
                .font(style::BOLD)
                .style(style::error_text),
            text(error.as_str())
                .size(style::SMALL)
                .style(style::error_text),
        ]
        .spacing(2)
        .into(),
    }
}
