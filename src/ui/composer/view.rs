//! Drawing of the composer.

use iced::widget::text_editor::{Binding, KeyPress};
use iced::widget::{
    Column, Id, button, checkbox, column, container, pick_list, radio, row, scrollable, space,
    text, text_editor, text_input,
};
use iced::{Element, Fill, keyboard};
use wardmail::route::{Method as Route, Sensitivity};
use wardmail::session::Method;

use super::{BODY, Composer, Field, Message, OVERRIDE_REASON, PortalUnlock, State, TO};
use crate::ui::{format, style};
use wardmail::portal::FactorKind;

impl Composer {
    /// Draws the composer screen.
    pub fn view(&self) -> Element<'_, Message> {
        let mut page = Column::new().spacing(10).padding(16).height(Fill);
        // Optional parts always take their slot, empty when unused. The
        // inputs below then keep their position in the widget tree, and with
        // it their focus (see `field`).
        page = page.push(self.header());
        page = page.push(self.notes().unwrap_or_else(|| space().into()));
        page = page.push(self.link_note().unwrap_or_else(|| space().into()));
        page = page.push(
            row![label("From"), text(self.from.to_string())]
                .spacing(8)
                .align_y(iced::Center),
        );
        for (field, name, value) in [
            (Field::To, "To", &self.to),
            (Field::Cc, "Cc", &self.cc),
            (Field::Bcc, "Bcc", &self.bcc),
            (Field::Subject, "Subject", &self.subject),
        ] {
            page = page.push(self.field(field, name, value));
        }
        page = page.push(self.protection_row());
        page = page.push(self.routes_view().unwrap_or_else(|| space().into()));
        page = page.push(self.floor_banner().unwrap_or_else(|| space().into()));
        page = page.push(self.portal_unlocks().unwrap_or_else(|| space().into()));
        page = page.push(self.unlock_prompt().unwrap_or_else(|| space().into()));
        page = page.push(self.attachment_list());

        let editable = self.is_editable();
        let body = text_editor(&self.body)
            .placeholder("Write your message here.")
            .on_action(Message::Body)
            .key_binding(move |press| send_binding(press, editable))
            .id(BODY)
            .height(Fill)
            .padding(10)
            .style(style::editor);
        page.push(body).into()
    }

    /// Sign and Encrypt switches with the technology to use. Each switch
    /// is labelled in words, so nothing depends on colour.
    fn protection_row(&self) -> Element<'_, Message> {
        let editable = self.is_editable();
        let method = Some(self.method);
        let choose = |label: &'static str, value: Method| {
            radio(label, value, method, Message::Method)
                .size(16)
                .spacing(6)
        };
        let summary = match (self.sign, self.encrypt) {
            _ if self.sends_per_group() && self.route_problem().is_none() => {
                "Separate copies: each recipient's goes by the method under Routes, signed; \
                 encrypted copies also to you."
            }
            (false, false) => "Not signed, not encrypted: sent with TLS only.",
            (true, false) => "Signed: recipients can check it is from you and unchanged.",
            (false, true) => "Encrypted to every recipient and to you.",
            (true, true) => "Signed and encrypted to every recipient and to you.",
        };
        let sensitivity = pick_list(
            &Sensitivity::ALL[..],
            Some(self.sensitivity),
            Message::Sensitivity,
        )
        .text_size(style::SMALL);
        row![
            label("Security"),
            sensitivity,
            checkbox(self.sign)
                .label("Sign")
                .on_toggle_maybe(editable.then_some(Message::Sign)),
            checkbox(self.encrypt)
                .label("Encrypt")
                .on_toggle_maybe(editable.then_some(Message::Encrypt)),
            choose("OpenPGP", Method::Openpgp),
            choose("S/MIME", Method::Smime),
            text(summary).size(style::SMALL),
        ]
        .spacing(14)
        .align_y(iced::Center)
        .into()
    }

    /// Draws the route of every recipient as a chip with an icon and a word,
    /// the summary line, and the details of the chip the user opened.
    fn routes_view(&self) -> Option<Element<'_, Message>> {
        let plan = self.plan.as_ref()?;
        let mut chips = row![].spacing(6);
        for route in &plan.routes {
            let (icon, word) = match route.method {
                Some(Route::Openpgp) => ("◆", "OpenPGP"),
                Some(Route::Smime) => ("◆", "S/MIME"),
                Some(Route::Internal) => ("⌂", "Internal"),
                Some(Route::Tls) => ("✓", "TLS"),
                Some(Route::TlsUnverified) => ("?", "TLS not verified"),
                Some(Route::Portal) => ("→", "Portal"),
                None => ("✗", "Blocked"),
            };
            let style = if route.method.is_none() {
                button::danger
            } else {
                button::secondary
            };
            chips = chips.push(
                button(text(format!("{icon} {} — {word}", route.address)).size(style::SMALL))
                    .padding([3, 8])
                    .style(style)
                    .on_press(Message::RouteDetails(route.address.clone())),
            );
        }
        let mut block = column![
            row![label("Routes"), text(plan.summary()).size(style::SMALL),]
                .spacing(8)
                .align_y(iced::Center),
            scrollable(chips).direction(scrollable::Direction::Horizontal(
                scrollable::Scrollbar::default()
            )),
        ]
        .spacing(6);
        if let Some(detail) = self
            .route_detail
            .as_ref()
            .and_then(|address| plan.routes.iter().find(|route| route.address == *address))
        {
            let mut lines =
                column![text(format!("{}: {}", detail.address, detail.reason)).size(style::SMALL)]
                    .spacing(2);
            if let Some(known) = self
                .known
                .iter()
                .find(|known| known.address == detail.address)
            {
                for line in &known.details {
                    lines = lines.push(text(line).size(style::SMALL));
                }
            }
            block = block.push(container(lines).padding(8).width(Fill).style(style::frame));
        }
        if let Some(problem) = self.route_problem() {
            block = block.push(
                container(text(problem).size(style::SMALL))
                    .padding(8)
                    .width(Fill)
                    .style(style::alert),
            );
        }
        Some(block.into())
    }

    /// Draws the reply guard's banner: each recipient whose copy would travel
    /// below the floor of the message answered or forwarded, why, and the
    /// choices. Send stays off until every one of them has a choice.
    fn floor_banner(&self) -> Option<Element<'_, Message>> {
        let floor = self.floor.as_ref()?;
        if self.below.is_empty() {
            return None;
        }
        let editable = self.is_editable();
        let noun = if self.title == "Forward" {
            "This forward"
        } else {
            "This reply"
        };
        let mut block = column![
            text(format!(
                "{noun} would reach {} with less protection than the message it answers",
                plural(self.below.len(), "recipient")
            ))
            .font(style::BOLD),
            text(format!("{}.", sentence(&floor.reason))).size(style::SMALL),
        ]
        .spacing(6);
        for (address, why) in &self.below {
            let blocked = self.plan.as_ref().is_some_and(|plan| {
                plan.routes
                    .iter()
                    .any(|route| route.address == *address && route.method.is_none())
            });
            let mut line = row![
                text(format!("{address}: {why}"))
                    .size(style::SMALL)
                    .width(Fill)
            ]
            .spacing(8)
            .align_y(iced::Center);
            match self.choice_for(address) {
                Some(choice) => {
                    let chosen = match self.override_reason(address) {
                        Some(reason) if !self.quote_removed => {
                            format!("Chosen: {} ({reason})", choice.label())
                        }
                        _ => format!("Chosen: {}", choice.label()),
                    };
                    line = line.push(text(chosen).size(style::SMALL));
                    if !self.quote_removed {
                        line = line.push(style::tool(
                            "Undo",
                            editable.then(|| Message::UndoChoice(address.clone())),
                        ));
                    }
                }
                None => {
                    line = line.push(style::tool(
                        "Remove recipient",
                        editable.then(|| Message::RemoveRecipient(address.clone())),
                    ));
                    if self.allow_override && !blocked {
                        line = line.push(style::tool(
                            "Send anyway…",
                            editable.then(|| Message::OverrideStart(address.clone())),
                        ));
                    }
                }
            }
            block = block.push(line);
            if let Some((_, reason)) = self.overriding.as_ref().filter(|(open, _)| open == address)
            {
                let long_enough =
                    reason.trim().chars().count() >= wardmail::guard::OVERRIDE_REASON_MIN;
                block = block.push(
                    row![
                        text_input(
                            "Why may this copy travel with less protection? (kept in the audit log)",
                            reason
                        )
                        .on_input(Message::OverrideReason)
                        .on_submit(Message::OverrideConfirm)
                        .id(OVERRIDE_REASON)
                        .padding(6)
                        .width(Fill),
                        button(text("Send this copy anyway").size(style::SMALL))
                            .style(button::danger)
                            .on_press_maybe(long_enough.then_some(Message::OverrideConfirm)),
                        style::tool("Cancel", Some(Message::OverrideCancel)),
                    ]
                    .spacing(8)
                    .align_y(iced::Center),
                );
                if !long_enough {
                    block = block.push(
                        text(format!(
                            "Type the reason, at least {} characters.",
                            wardmail::guard::OVERRIDE_REASON_MIN
                        ))
                        .size(style::SMALL)
                        .style(style::muted_text),
                    );
                }
            }
        }
        if !self.quote_removed {
            block = block.push(
                row![
                    style::tool(
                        "Send without the quoted text",
                        editable.then_some(Message::WithoutQuote)
                    ),
                    text(
                        "Takes the original's text out, so these copies carry only what you wrote."
                    )
                    .size(style::SMALL),
                ]
                .spacing(8)
                .align_y(iced::Center),
            );
        }
        if !self.allow_override {
            block = block.push(
                text("Your clinic's policy does not allow sending below this protection anyway.")
                    .size(style::SMALL),
            );
        }
        Some(
            container(block)
                .padding(10)
                .width(Fill)
                .style(style::alert)
                .into(),
        )
    }

    /// Draws, for each recipient routed to the portal, how they will unlock
    /// their copy: a code by phone, a passphrase agreed with them, or (where
    /// the clinic policy allows it) a code by a second e-mail.
    fn portal_unlocks(&self) -> Option<Element<'_, Message>> {
        let plan = self.plan.as_ref()?;
        let portal: Vec<&str> = plan
            .routes
            .iter()
            .filter(|route| route.method == Some(Route::Portal))
            .map(|route| route.address.as_str())
            .collect();
        if portal.is_empty() {
            return None;
        }
        let editable = self.is_editable();
        let mut block = column![].spacing(6);
        for address in portal {
            let chosen = Some(self.unlock_for(address));
            let choice = |label: &'static str, value: PortalUnlock| {
                let address = address.to_owned();
                radio(label, value, chosen, move |value| {
                    Message::ChooseUnlock(address.clone(), value)
                })
                .size(16)
                .spacing(6)
            };
            let mut line = row![
                text(format!("{address} opens it with")).size(style::SMALL),
                choice("a code I give by phone", PortalUnlock::Phone),
                choice("a passphrase we agreed", PortalUnlock::Passphrase),
            ]
            .spacing(12)
            .align_y(iced::Center);
            if self.allow_email_code {
                line = line.push(choice(
                    "a code by e-mail (low assurance)",
                    PortalUnlock::Email,
                ));
            }
            block = block.push(line);
            if chosen == Some(PortalUnlock::Passphrase) {
                let owned = address.to_owned();
                block = block.push(
                    text_input(
                        "The passphrase agreed by phone; leave empty to use the one saved for them",
                        self.passphrase_for(address),
                    )
                    .secure(true)
                    .on_input_maybe(
                        editable.then_some(move |value| {
                            Message::PortalPassphrase(owned.clone(), value)
                        }),
                    )
                    .padding(6),
                );
            }
        }
        Some(row![label("Portal"), block].spacing(8).into())
    }

    /// Draws the passphrase prompt when signing needs a locked key.
    fn unlock_prompt(&self) -> Option<Element<'_, Message>> {
        let (fingerprint, passphrase) = self.unlock.as_ref()?;
        Some(
            row![
                label("Key"),
                text_input("Passphrase of your OpenPGP key", passphrase)
                    .secure(true)
                    .on_input(Message::Passphrase)
                    .on_submit(Message::Unlock)
                    .width(320),
                button(text("Unlock")).on_press(Message::Unlock),
                text(format!("key {}", format::fingerprint(fingerprint))).size(style::SMALL),
            ]
            .spacing(8)
            .align_y(iced::Center)
            .into(),
        )
    }

    fn header(&self) -> Element<'_, Message> {
        let editing = self.is_editable();
        let can_send = match &self.state {
            State::Editing => self.route_problem().is_none() && self.unresolved().next().is_none(),
            State::Queued { uncertain, .. } => !uncertain,
            State::Sending | State::Delivered { .. } => false,
        };
        let send_label = if matches!(self.state, State::Queued { .. }) {
            "Retry (Ctrl+Enter)"
        } else {
            "Send (Ctrl+Enter)"
        };
        let busy = matches!(self.state, State::Sending) || self.saving_draft;
        let mut bar = row![
            text(self.title).size(style::HEADING).font(style::BOLD),
            space::horizontal(),
            button(text(send_label))
                .padding([6, 14])
                .style(button::primary)
                .on_press_maybe(can_send.then_some(Message::Send)),
            style::tool(
                "Save draft",
                (editing && !busy).then_some(Message::SaveDraft)
            ),
            style::tool("Attach file…", editing.then_some(Message::Attach)),
        ]
        .spacing(8)
        .align_y(iced::Center);
        if matches!(
            self.state,
            State::Queued {
                uncertain: true,
                ..
            }
        ) {
            bar = bar.push(style::tool("Open Outbox", Some(Message::OpenOutbox)));
        }
        bar = bar.push(style::tool(
            "Close",
            (!matches!(self.state, State::Sending)).then_some(Message::Close),
        ));
        bar.into()
    }

    fn notes(&self) -> Option<Element<'_, Message>> {
        if self.confirm_close {
            let ask = row![
                text("Close without saving? What you wrote is lost.").width(Fill),
                button(text("Discard").size(style::SMALL))
                    .style(button::danger)
                    .on_press(Message::Discard),
                style::tool("Save draft", Some(Message::SaveDraft)),
                style::tool("Keep editing", Some(Message::KeepEditing)),
            ]
            .spacing(8)
            .align_y(iced::Center);
            return Some(
                container(ask)
                    .padding(8)
                    .width(Fill)
                    .style(style::note)
                    .into(),
            );
        }
        if let State::Delivered { codes } = &self.state {
            let mut block = column![
                text("Sent through the secure portal. The notice e-mail holds only the link; each recipient below opens it as shown.")
                    .font(style::BOLD)
            ]
            .spacing(6);
            for code in codes {
                let expires = format::day(code.expires);
                let line = match (&code.code, code.factor) {
                    (Some(digits), _) => format!(
                        "{}: code {} (the message can be read until {expires})",
                        code.recipient,
                        digits.expose()
                    ),
                    (None, FactorKind::EmailCode) => format!(
                        "{}: the code went by a second e-mail, low assurance (until {expires})",
                        code.recipient
                    ),
                    (None, _) => format!(
                        "{}: the passphrase agreed with them (until {expires})",
                        code.recipient
                    ),
                };
                block = block.push(text(line).size(style::HEADING));
            }
            block = block.push(
                text("Wardmail does not show the code again. If it is lost, New code on the Secure portal screen issues another.")
                    .size(style::SMALL)
                    .style(style::muted_text),
            );
            return Some(
                container(block)
                    .padding(10)
                    .width(Fill)
                    .style(style::note)
                    .into(),
            );
        }
        if let State::Queued {
            summary, detail, ..
        } = &self.state
        {
            let block = column![
                text(summary),
                text(detail).size(style::SMALL).style(style::muted_text)
            ]
            .spacing(4);
            return Some(
                container(block)
                    .padding(8)
                    .width(Fill)
                    .style(style::alert)
                    .into(),
            );
        }
        if matches!(self.state, State::Sending) {
            return Some(text("Sending…").style(style::muted_text).into());
        }
        if let Some(problem) = &self.problem {
            return Some(
                container(text(problem))
                    .padding(8)
                    .width(Fill)
                    .style(style::alert)
                    .into(),
            );
        }
        if self.saving_draft {
            return Some(text("Saving the draft…").style(style::muted_text).into());
        }
        self.draft_note
            .as_ref()
            .map(|note| text(note).style(style::success_text).into())
    }

    /// Draws the notice about the mailto: link. Unlike the notes above, it
    /// stays while the composer is open, so the user sees it while checking
    /// the message.
    fn link_note(&self) -> Option<Element<'_, Message>> {
        if self.portal_notice_link.is_some() {
            let note = row![
                text(
                    "This answers a notice from the clinic's secure portal. The message is in the \
                     portal, and a reply to it belongs there too; this e-mail quotes nothing of it."
                )
                .width(Fill),
                style::tool("Open the portal link", Some(Message::OpenPortalLink)),
            ]
            .spacing(8)
            .align_y(iced::Center);
            return Some(
                container(note)
                    .padding(8)
                    .width(Fill)
                    .style(style::note)
                    .into(),
            );
        }
        let notice = self.link_notice.as_ref()?;
        Some(
            container(text(notice))
                .padding(8)
                .width(Fill)
                .style(style::note)
                .into(),
        )
    }

    fn field<'a>(&'a self, field: Field, name: &'a str, value: &'a str) -> Element<'a, Message> {
        let error = self.error(field);
        let placeholder = match field {
            Field::Subject => "",
            _ => "name@example.org, another@example.org",
        };
        let input = text_input(placeholder, value)
            .on_input_maybe(
                self.is_editable()
                    .then_some(move |value| Message::Edit(field, value)),
            )
            .id(match field {
                Field::To => TO,
                Field::Cc => Id::new("composer-cc"),
                Field::Bcc => Id::new("composer-bcc"),
                Field::Subject => Id::new("composer-subject"),
            })
            .padding(6)
            .style(if error.is_some() {
                style::invalid_input
            } else {
                style::input
            });
        // The widget tree keeps the same shape with and without an error,
        // because iced matches widget state (focus, caret) by position. A
        // changing shape would drop the focus while the user types.
        let line = row![label(name), input].spacing(8).align_y(iced::Center);
        let note = row![space().width(LABEL_WIDTH + 8.0), style::field_error(error)];
        column![line, note].into()
    }

    fn attachment_list(&self) -> Element<'_, Message> {
        if self.attachments.is_empty() {
            return space().into();
        }
        let editable = self.is_editable();
        let mut chips = row![].spacing(8);
        for (position, file) in self.attachments.iter().enumerate() {
            let chip = row![
                text(format!(
                    "{} ({})",
                    format::clip(&file.filename, 60),
                    format::size(file.data.len())
                ))
                .size(style::SMALL),
                style::tool(
                    "Remove",
                    editable.then_some(Message::RemoveAttachment(position))
                ),
            ]
            .spacing(6)
            .align_y(iced::Center);
            chips = chips.push(container(chip).padding([2, 8]).style(style::frame));
        }
        row![label("Attached"), chips.wrap().vertical_spacing(6)]
            .spacing(8)
            .into()
    }
}

/// Returns "1 recipient" or "3 recipients".
fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// Returns `text` with its first letter in upper case.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// The label column, wide enough for "Attached" in bold.
const LABEL_WIDTH: f32 = 84.0;

fn label(name: &str) -> Element<'_, Message> {
    text(name).font(style::BOLD).width(LABEL_WIDTH).into()
}

/// Maps Ctrl+Enter in the text to Send. Every other key keeps its default
/// binding, but edits are ignored while the message is queued.
fn send_binding(press: KeyPress, editable: bool) -> Option<Binding<Message>> {
    let enter = matches!(press.key, keyboard::Key::Named(keyboard::key::Named::Enter));
    if enter
        && press.modifiers.command()
        && matches!(press.status, text_editor::Status::Focused { .. })
    {
        return Some(Binding::Custom(Message::Send));
    }
    let binding = Binding::from_key_press(press)?;
    let edits = matches!(
        binding,
        Binding::Insert(_)
            | Binding::Enter
            | Binding::Backspace
            | Binding::Delete
            | Binding::Paste
            | Binding::Cut
    );
    (editable || !edits).then_some(binding)
}
