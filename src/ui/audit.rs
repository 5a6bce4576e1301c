//! The audit log: every recorded send, newest first, with a filter and a
//! "Verify log" button that checks the hash chain and shows the result in
//! words.

use std::sync::Arc;

use iced::widget::{Column, column, container, row, scrollable, space, text, text_input};
use iced::{Element, Fill, Task};

use wardmail::audit::{self, AuditError, AuditRecord, VerifyReport};
use wardmail::session::Session;

use super::{format, style};

/// The id of the filter field, for focus and UI tests.
pub const FILTER_ID: &str = "audit-filter";

/// Audit screen messages.
#[derive(Clone, Debug)]
pub enum Message {
    /// The entries arrived from the store.
    Loaded(Result<Vec<AuditRecord>, Arc<AuditError>>),
    /// The filter text changed.
    FilterChanged(String),
    /// Check the hash chain.
    Verify,
    /// The check ended.
    Verified(Result<VerifyReport, Arc<AuditError>>),
    /// Go back to the mailbox.
    Close,
}

/// Notifications from the audit screen to the window.
#[derive(Clone, Debug)]
pub enum Event {
    /// Back to the mailbox.
    Closed,
}

/// The state of the "Verify log" check.
#[derive(Clone, Debug)]
enum Check {
    Running,
    Done(VerifyReport),
    Failed(String),
}

/// The audit screen.
#[derive(Debug)]
pub struct Audit {
    session: Arc<Session>,
    records: Option<Vec<AuditRecord>>,
    filter: String,
    check: Option<Check>,
    problem: Option<String>,
}

impl Audit {
    /// Opens the screen and loads the log.
    pub fn new(session: Arc<Session>) -> (Audit, Task<Message>) {
        let screen = Audit {
            session,
            records: None,
            filter: String::new(),
            check: None,
            problem: None,
        };
        let store = screen.session.store.clone();
        let task = Task::perform(
            async move {
                tokio::task::spawn_blocking(move || audit::list(&store))
                    .await
                    .map_err(|e| AuditError::Worker(e.to_string()))?
                    .map(|mut records| {
                        records.reverse();
                        records
                    })
            },
            |result| Message::Loaded(result.map_err(Arc::new)),
        );
        (screen, task)
    }

    /// Handles an audit screen message.
    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        let task = match message {
            Message::Loaded(Ok(records)) => {
                self.records = Some(records);
                Task::none()
            }
            Message::Loaded(Err(error)) => {
                tracing::error!(%error, "cannot read the audit log");
                self.problem = Some(error.to_string());
                Task::none()
            }
            Message::FilterChanged(filter) => {
                self.filter = filter;
                Task::none()
            }
            Message::Verify => self.verify(),
            Message::Verified(result) => {
                self.check = Some(match result {
                    Ok(report) => Check::Done(report),
                    Err(error) => Check::Failed(error.to_string()),
                });
                Task::none()
            }
            Message::Close => return (Task::none(), Some(Event::Closed)),
        };
        (task, None)
    }

    fn verify(&mut self) -> Task<Message> {
        if matches!(self.check, Some(Check::Running)) {
            return Task::none();
        }
        self.check = Some(Check::Running);
        let store = self.session.store.clone();
        Task::perform(
            async move {
                tokio::task::spawn_blocking(move || audit::verify(&store))
                    .await
                    .map_err(|e| AuditError::Worker(e.to_string()))?
                    .map_err(AuditError::from)
            },
            |result| Message::Verified(result.map_err(Arc::new)),
        )
    }

    /// Returns the entries that match the filter, newest first.
    fn shown(&self) -> Vec<&AuditRecord> {
        self.records
            .iter()
            .flatten()
            .filter(|record| matches_filter(record, &self.filter))
            .collect()
    }

    /// Draws the audit screen.
    pub fn view(&self) -> Element<'_, Message> {
        let verifying = matches!(self.check, Some(Check::Running));
        let header = row![
            text("Audit log").size(style::HEADING).font(style::BOLD),
            space::horizontal(),
            style::action("Verify log", (!verifying).then_some(Message::Verify)),
            style::tool("Back to mailbox", Some(Message::Close)),
        ]
        .spacing(8)
        .align_y(iced::Center);

        let mut page = Column::new().spacing(12).padding(16).push(header);
        page = page.push(text(
            "Every send attempt is recorded here with its recipients, how each copy travelled, \
             and the outcome. Subjects and message text are never recorded.",
        ));
        if let Some(check) = &self.check {
            page = page.push(check_view(check));
        }
        if let Some(problem) = &self.problem {
            page = page.push(
                container(
                    column![
                        text("The audit log could not be read."),
                        text(problem).size(style::SMALL)
                    ]
                    .spacing(4),
                )
                .padding(8)
                .width(Fill)
                .style(style::alert),
            );
        }
        page = page.push(
            text_input(
                "Filter by address, Message-ID, method or outcome",
                &self.filter,
            )
            .id(FILTER_ID)
            .on_input(Message::FilterChanged)
            .padding(6),
        );

        match &self.records {
            None if self.problem.is_none() => {
                page = page.push(text("Loading…").style(style::muted_text))
            }
            None => {}
            Some(records) if records.is_empty() => {
                page = page.push(text("No message was sent yet.").style(style::muted_text));
            }
            Some(records) => {
                let shown = self.shown();
                page = page.push(
                    text(format!("{} of {} entries", shown.len(), records.len()))
                        .size(style::SMALL)
                        .style(style::muted_text),
                );
                let mut list = Column::new().spacing(6);
                for record in shown {
                    list = list.push(entry_view(record));
                }
                page = page.push(scrollable(list).height(Fill));
            }
        }
        page.into()
    }
}

fn check_view(check: &Check) -> Element<'_, Message> {
    match check {
        Check::Running => text("Checking the log…").style(style::muted_text).into(),
        Check::Done(report) if report.intact() => text(format!(
            "The log is intact: all {} entries are unchanged since they were written.",
            report.entries
        ))
        .style(style::success_text)
        .into(),
        Check::Done(report) => container(
            column![
                text("The log was changed after it was written.").font(style::BOLD),
                text(report.summary()).size(style::SMALL),
            ]
            .spacing(4),
        )
        .padding(8)
        .width(Fill)
        .style(style::alert)
        .into(),
        Check::Failed(error) => container(
            column![
                text("The log could not be checked."),
                text(error).size(style::SMALL)
            ]
            .spacing(4),
        )
        .padding(8)
        .width(Fill)
        .style(style::alert)
        .into(),
    }
}

fn entry_view(record: &AuditRecord) -> Element<'_, Message> {
    let entry = &record.entry;
    let outcome = text(outcome_label(&entry.outcome)).size(style::SMALL);
    let outcome = if entry.outcome == "accepted" {
        outcome.style(style::success_text)
    } else {
        outcome.style(style::error_text)
    };
    let mut block = column![
        row![
            text(format::full_date(Some(entry.time)))
                .size(style::SMALL)
                .width(200),
            text(&entry.kind).size(style::SMALL).width(60),
            text(entry.message_id.as_deref().unwrap_or("(no Message-ID)"))
                .size(style::SMALL)
                .width(Fill),
            outcome,
        ]
        .spacing(8),
    ]
    .spacing(2);
    for recipient in &entry.recipients {
        block = block.push(
            text(format!(
                "{}: {} ({})",
                recipient.address, recipient.method, recipient.evidence
            ))
            .size(style::SMALL),
        );
    }
    if let Some(error) = entry.details.get("error") {
        block = block.push(
            text(format!("Error: {error}"))
                .size(style::SMALL)
                .style(style::error_text),
        );
    }
    let mut decision = format!("Decision: {}", entry.decision);
    if let Some(reason) = &entry.override_reason {
        decision.push_str(&format!("; overridden because: {reason}"));
    }
    block = block.push(text(decision).size(style::SMALL).style(style::muted_text));
    container(block)
        .padding(8)
        .width(Fill)
        .style(style::frame)
        .into()
}

fn outcome_label(outcome: &str) -> &str {
    match outcome {
        "accepted" => "Accepted by the server",
        "failed" => "Not sent",
        "uncertain" => "May have been sent",
        other => other,
    }
}

/// Returns whether every word of `filter` occurs in the entry's kind,
/// Message-ID, outcome, or a recipient's address, method or outcome,
/// ignoring case. An empty filter matches everything.
fn matches_filter(record: &AuditRecord, filter: &str) -> bool {
    let entry = &record.entry;
    let mut fields: Vec<&str> = vec![
        entry.message_id.as_deref().unwrap_or(""),
        &entry.outcome,
        &entry.kind,
    ];
    for recipient in &entry.recipients {
        fields.extend([
            recipient.address.as_str(),
            &recipient.method,
            &recipient.outcome,
        ]);
    }
    let haystack = fields.join("\n").to_lowercase();
    filter
        .split_whitespace()
        .all(|word| haystack.contains(&word.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wardmail::audit::{AuditEntry, AuditRecipient};

    fn record(address: &str, method: &str, outcome: &str) -> AuditRecord {
        let mut entry = AuditEntry::new("work", "send");
        entry.message_id = Some("<m1@example.org>".into());
        entry.outcome = outcome.into();
        entry.recipients = vec![AuditRecipient {
            address: address.into(),
            method: method.into(),
            evidence: "submission over TLS".into(),
            outcome: outcome.into(),
        }];
        AuditRecord {
            entry,
            prev_hash: audit::GENESIS.into(),
            hash: audit::GENESIS.into(),
        }
    }

    #[test]
    fn filter_matches_fields() {
        let sent = record("lab@example.org", "tls", "accepted");
        assert!(matches_filter(&sent, ""));
        assert!(matches_filter(&sent, "LAB@example"));
        assert!(matches_filter(&sent, "m1@example.org"));
        assert!(matches_filter(&sent, "tls accepted"));
        assert!(!matches_filter(&sent, "failed"));
        assert!(!matches_filter(&sent, "tls portal"));
    }
}
