//! Correspondents' S/MIME certificates on the Keys screen: the ones the
//! user imported from a file and the ones collected from signed mail, with
//! the ciphers each correspondent's program announced.

use std::path::PathBuf;
use std::sync::Arc;

use iced::widget::{Column, column, container, text};
use iced::{Element, Fill, Task};

use wardmail::session::{CertificateInfo, Session, SessionError};
use wardmail::smime::{AES256_CBC, AES256_GCM};
use wardmail::store::CertificateSource;

use crate::ui::{format, style};

/// Messages of the correspondents' certificates section.
#[derive(Clone, Debug)]
pub enum Message {
    /// The certificates arrived from the store.
    Loaded(Result<Vec<CertificateInfo>, Arc<SessionError>>),
    /// Ask for a certificate file.
    ChooseFile,
    /// The file dialog closed; `None` when it was cancelled.
    FileChosen(Option<PathBuf>),
    /// Importing ended, with a sentence for the user.
    Imported(Result<String, Arc<SessionError>>),
}

/// The section's state.
#[derive(Debug, Default)]
pub struct Section {
    certificates: Option<Vec<CertificateInfo>>,
    busy: bool,
    notice: Option<String>,
    problem: Option<String>,
}

impl Section {
    /// Loads the certificates.
    pub fn load(session: &Arc<Session>) -> Task<Message> {
        let session = session.clone();
        Task::perform(
            async move { session.smime_certificates().await.map_err(Arc::new) },
            Message::Loaded,
        )
    }

    /// Handles a message, starting work on `session`.
    pub fn update(&mut self, session: &Arc<Session>, message: Message) -> Task<Message> {
        match message {
            Message::Loaded(Ok(certificates)) => {
                self.certificates = Some(certificates);
                Task::none()
            }
            Message::Loaded(Err(error)) => {
                self.problem = Some(format!("The certificates could not be read: {error}"));
                Task::none()
            }
            Message::ChooseFile if !self.busy => Task::perform(
                async {
                    rfd::AsyncFileDialog::new()
                        .set_title("Import a correspondent's certificate")
                        .add_filter("Certificate", &["cer", "crt", "pem", "der", "p7b", "p7c"])
                        .pick_file()
                        .await
                        .map(|handle| handle.path().to_path_buf())
                },
                Message::FileChosen,
            ),
            Message::FileChosen(Some(path)) => {
                self.busy = true;
                self.notice = None;
                self.problem = None;
                let session = session.clone();
                Task::perform(
                    async move {
                        let bytes = tokio::fs::read(&path).await.map_err(|error| {
                            SessionError::Task(format!("cannot read {}: {error}", path.display()))
                        })?;
                        let stored = session.import_smime_certificates(bytes).await?;
                        let addresses: Vec<&str> =
                            stored.iter().map(|info| info.address.as_str()).collect();
                        Ok(format!(
                            "Imported the certificate for {} from {}.",
                            addresses.join(", "),
                            path.display()
                        ))
                    },
                    |result| Message::Imported(result.map_err(Arc::new)),
                )
            }
            Message::Imported(result) => {
                self.busy = false;
                match result {
                    Ok(notice) => self.notice = Some(notice),
                    Err(error) => self.problem = Some(error.to_string()),
                }
                Section::load(session)
            }
            Message::ChooseFile | Message::FileChosen(None) => Task::none(),
        }
    }

    /// Draws the section.
    pub fn view(&self) -> Element<'_, Message> {
        let mut section = Column::new().spacing(8).push(
            text("Correspondents' S/MIME certificates")
                .size(style::TEXT)
                .font(style::BOLD),
        );
        if let Some(notice) = &self.notice {
            section = section.push(text(notice).style(style::success_text));
        }
        if let Some(problem) = &self.problem {
            section = section.push(super::problem_box(problem));
        }
        match &self.certificates {
            None => section = section.push(text("Loading…").style(style::muted_text)),
            Some(certificates) if certificates.is_empty() => {
                section = section.push(
                    text(
                        "None yet. They are collected from signed mail you open, or imported \
                         from a file.",
                    )
                    .style(style::muted_text),
                );
            }
            Some(certificates) => {
                for certificate in certificates {
                    section = section.push(certificate_view(certificate));
                }
            }
        }
        section = section.push(style::tool(
            "Import a correspondent's certificate (.cer/.pem/.p7b)…",
            (!self.busy).then_some(Message::ChooseFile),
        ));
        section.into()
    }
}

fn certificate_view(certificate: &CertificateInfo) -> Element<'_, Message> {
    let source = match certificate.source {
        CertificateSource::Imported => "imported from a file",
        CertificateSource::Harvested => "collected from a signed message",
    };
    let ciphers = match &certificate.capabilities {
        None => "ciphers not announced: mail to them uses AES-256-CBC".to_owned(),
        Some(oids) if oids.iter().any(|oid| oid == AES256_GCM) => "reads AES-256-GCM".to_owned(),
        Some(oids) if oids.iter().any(|oid| oid == AES256_CBC) => "reads AES-256-CBC".to_owned(),
        Some(_) => "announced no AES-256 cipher".to_owned(),
    };
    container(
        column![
            text(&certificate.address).font(style::BOLD),
            text(format::fingerprint(
                &certificate.fingerprint.replace(':', "")
            ))
            .size(style::SMALL)
            .font(iced::Font::MONOSPACE),
            text(format!("{source} · {ciphers}")).size(style::SMALL),
        ]
        .spacing(2),
    )
    .padding(8)
    .width(Fill)
    .style(style::frame)
    .into()
}
