//! The OpenPGP section of the Keys screen: the user's own keys and
//! correspondents' keys, with expiry, where each came from, whether its
//! fingerprint was verified, and an alert for a key that changed.
//!
//! Every store and crypto call runs in `Task::perform` on the session, and
//! the section keeps only what it shows.

use std::path::PathBuf;
use std::sync::Arc;

use iced::widget::{Column, column, container, row, text, text_input};
use iced::{Element, Fill, Task};

use wardmail::openpgp::Suite;
use wardmail::secret::Secret;
use wardmail::session::{OpenpgpKey, Session, SessionError};

use crate::ui::{format, style};

/// Looks `address` up in its domain's Web Key Directory and stores what
/// it finds, returning the sentence for the user.
async fn look_up(session: &Arc<Session>, address: String) -> Result<String, SessionError> {
    let found = match session.wkd_lookup(&address).await? {
        wardmail::wkd::Outcome::Found(found) => found,
        wardmail::wkd::Outcome::NotPublished { host, .. } => {
            return Ok(format!(
                "{host} publishes no OpenPGP key for {address}. Ask them for their key file."
            ));
        }
    };
    let host = found.host.clone();
    let stored = session
        .import_wkd(found.certificates, address.clone())
        .await?;
    let changed = stored
        .iter()
        .filter(|(_, replaces)| replaces.is_some())
        .count();
    Ok(if changed > 0 {
        format!(
            "Found a key for {address} at {host}. It differs from the key you have, so it is \
             held back below until you accept it."
        )
    } else {
        format!(
            "Found and imported {} key(s) for {address} at {host}. Compare the fingerprint \
             with them before marking it verified.",
            stored.len()
        )
    })
}

/// The validity period of a generated key: three years, after which the
/// user renews it, so a lost key does not stay usable for ever.
const GENERATED_VALIDITY: std::time::Duration = std::time::Duration::from_secs(3 * 365 * 86_400);

/// OpenPGP section messages.
#[derive(Clone, Debug)]
pub enum Message {
    /// The keys arrived from the store.
    Loaded(Result<Vec<OpenpgpKey>, Arc<SessionError>>),
    /// Generate a key for the account's address with this algorithm.
    Generate(Suite),
    /// The address field of the directory lookup changed.
    LookupAddress(String),
    /// Look the address up in its domain's Web Key Directory.
    Lookup,
    /// Ask for a key file to import.
    ChooseFile,
    /// The file dialog closed; `None` when it was cancelled.
    FileChosen(Option<PathBuf>),
    /// Mark a key's fingerprint as verified.
    Verify(String),
    /// Accept a changed key without verifying it.
    Accept(String),
    /// Ask where to save a public key.
    Export(String),
    /// Ask to confirm revoking an own key.
    AskRevoke(String),
    /// Revoke the key named in the confirmation.
    Revoke,
    /// Keep the key after all.
    CancelRevoke,
    /// Show the passphrase field for a locked own key.
    AskUnlock(String),
    /// The passphrase field changed.
    Passphrase(String),
    /// Unlock with the typed passphrase.
    Unlock,
    /// An action ended, with a sentence for the user.
    Done(Result<String, Arc<SessionError>>),
}

/// The OpenPGP section's state.
#[derive(Debug, Default)]
pub struct Section {
    keys: Option<Vec<OpenpgpKey>>,
    busy: bool,
    notice: Option<String>,
    problem: Option<String>,
    confirm_revoke: Option<String>,
    unlock: Option<(String, String)>,
    /// The address typed for a Web Key Directory lookup.
    lookup: String,
}

impl Section {
    /// Loads the keys.
    pub fn load(session: &Arc<Session>) -> Task<Message> {
        let session = session.clone();
        Task::perform(
            async move { session.openpgp_keys().await.map_err(Arc::new) },
            Message::Loaded,
        )
    }

    /// Handles a message, starting work on `session`.
    pub fn update(&mut self, session: &Arc<Session>, message: Message) -> Task<Message> {
        let session = session.clone();
        let run = |section: &mut Section,
                   work: std::pin::Pin<
            Box<dyn Future<Output = Result<String, SessionError>> + Send>,
        >| {
            section.busy = true;
            section.notice = None;
            section.problem = None;
            Task::perform(async move { work.await.map_err(Arc::new) }, Message::Done)
        };
        match message {
            Message::Loaded(Ok(keys)) => {
                self.keys = Some(keys);
                Task::none()
            }
            Message::Loaded(Err(error)) => {
                self.problem = Some(format!("Your OpenPGP keys could not be read: {error}"));
                Task::none()
            }
            Message::Generate(suite) if !self.busy => run(
                self,
                Box::pin(async move {
                    let info = session
                        .generate_openpgp(suite, Some(GENERATED_VALIDITY))
                        .await?;
                    Ok(format!(
                        "Generated your key {} (expires {}). Share it with Export.",
                        format::fingerprint(&info.fingerprint),
                        info.expires.map_or_else(|| "never".into(), format::day)
                    ))
                }),
            ),
            Message::ChooseFile if !self.busy => Task::perform(
                async {
                    rfd::AsyncFileDialog::new()
                        .set_title("Import an OpenPGP key")
                        .add_filter("OpenPGP key", &["asc", "gpg", "pgp", "key"])
                        .pick_file()
                        .await
                        .map(|handle| handle.path().to_path_buf())
                },
                Message::FileChosen,
            ),
            Message::FileChosen(Some(path)) => run(
                self,
                Box::pin(async move {
                    let bytes = tokio::fs::read(&path).await.map_err(|error| {
                        SessionError::Task(format!("cannot read {}: {error}", path.display()))
                    })?;
                    let imported = session.import_openpgp(bytes).await?;
                    Ok(format!(
                        "Imported {} key(s) from {}. Compare a correspondent's fingerprint with \
                         them before marking it verified.",
                        imported.len(),
                        path.display()
                    ))
                }),
            ),
            Message::Verify(fingerprint) => run(
                self,
                Box::pin(async move {
                    session.verify_openpgp(fingerprint.clone()).await?;
                    Ok(format!(
                        "Key {} marked as verified.",
                        format::fingerprint(&fingerprint)
                    ))
                }),
            ),
            Message::Accept(fingerprint) => run(
                self,
                Box::pin(async move {
                    session.accept_openpgp(fingerprint.clone()).await?;
                    Ok(format!(
                        "New key {} accepted: mail to this address is now encrypted to it.",
                        format::fingerprint(&fingerprint)
                    ))
                }),
            ),
            Message::Export(fingerprint) => run(
                self,
                Box::pin(async move {
                    let armored = session.export_openpgp(fingerprint.clone()).await?;
                    let name = format!(
                        "{}.asc",
                        &fingerprint[fingerprint.len().saturating_sub(16)..]
                    );
                    let Some(handle) = rfd::AsyncFileDialog::new()
                        .set_title("Save public key")
                        .set_file_name(name)
                        .save_file()
                        .await
                    else {
                        return Ok("Export cancelled.".to_owned());
                    };
                    let path = handle.path().to_path_buf();
                    tokio::fs::write(&path, armored).await.map_err(|error| {
                        SessionError::Task(format!("cannot write {}: {error}", path.display()))
                    })?;
                    Ok(format!("Public key saved to {}.", path.display()))
                }),
            ),
            Message::AskRevoke(fingerprint) => {
                self.confirm_revoke = Some(fingerprint);
                Task::none()
            }
            Message::CancelRevoke => {
                self.confirm_revoke = None;
                Task::none()
            }
            Message::Revoke => {
                let Some(fingerprint) = self.confirm_revoke.take() else {
                    return Task::none();
                };
                run(
                    self,
                    Box::pin(async move {
                        session.revoke_openpgp(fingerprint.clone()).await?;
                        Ok(format!(
                            "Key {} revoked. Export it again and send it to your correspondents \
                             so that they stop using it.",
                            format::fingerprint(&fingerprint)
                        ))
                    }),
                )
            }
            Message::AskUnlock(fingerprint) => {
                self.unlock = Some((fingerprint, String::new()));
                Task::none()
            }
            Message::Passphrase(value) => {
                if let Some((_, passphrase)) = &mut self.unlock {
                    *passphrase = value;
                }
                Task::none()
            }
            Message::Unlock => {
                let Some((fingerprint, passphrase)) = self.unlock.take() else {
                    return Task::none();
                };
                let minutes = session.config.crypto.unlock_minutes;
                run(
                    self,
                    Box::pin(async move {
                        session
                            .unlock_openpgp(fingerprint, Secret::new(passphrase))
                            .await?;
                        Ok(format!("Key unlocked for {minutes} minutes."))
                    }),
                )
            }
            Message::Done(result) => {
                self.busy = false;
                match result {
                    Ok(notice) => self.notice = Some(notice),
                    Err(error) => self.problem = Some(error.to_string()),
                }
                Section::load(&session)
            }
            Message::LookupAddress(address) => {
                self.lookup = address;
                Task::none()
            }
            Message::Lookup if !self.busy && self.lookup.contains('@') => {
                let address = self.lookup.trim().to_owned();
                run(
                    self,
                    Box::pin(async move { look_up(&session, address).await }),
                )
            }
            Message::Generate(_)
            | Message::Lookup
            | Message::ChooseFile
            | Message::FileChosen(None) => Task::none(),
        }
    }

    /// Draws the section.
    pub fn view(&self) -> Element<'_, Message> {
        let mut section = Column::new()
            .spacing(10)
            .push(text("OpenPGP").size(style::TEXT).font(style::BOLD));
        if let Some(notice) = &self.notice {
            section = section.push(super::notice_box(notice));
        }
        if let Some(problem) = &self.problem {
            section = section.push(super::problem_box(problem));
        }
        match &self.keys {
            None => section = section.push(text("Loading…").style(style::muted_text)),
            Some(keys) if keys.is_empty() => {
                section = section.push(
                    text(
                        "No OpenPGP key yet. Generate your own key, or import yours and your \
                         correspondents' keys (.asc files).",
                    )
                    .style(style::muted_text),
                );
            }
            Some(keys) => {
                for key in keys {
                    section = section.push(self.key_view(key));
                }
            }
        }
        let idle = !self.busy;
        section = section.push(
            row![
                style::action(
                    "Generate my key",
                    idle.then_some(Message::Generate(Suite::Cv25519))
                ),
                style::tool(
                    "Generate an RSA-4096 key",
                    idle.then_some(Message::Generate(Suite::Rsa4096))
                ),
                style::tool("Import key (.asc)…", idle.then_some(Message::ChooseFile)),
            ]
            .spacing(8),
        );
        let can_look_up = idle && self.lookup.contains('@');
        section = section.push(
            row![
                text_input("colleague@lab.example", &self.lookup)
                    .on_input(Message::LookupAddress)
                    .on_submit_maybe(can_look_up.then_some(Message::Lookup))
                    .width(320),
                style::tool(
                    "Look up their key (Web Key Directory)",
                    can_look_up.then_some(Message::Lookup)
                ),
            ]
            .spacing(8)
            .align_y(iced::Center),
        );
        section.into()
    }

    fn key_view<'a>(&'a self, key: &'a OpenpgpKey) -> Element<'a, Message> {
        let info = &key.info;
        let idle = !self.busy;
        let owner = if info.secret {
            "Your key"
        } else {
            "Correspondent"
        };
        let state = if info.revoked {
            "REVOKED".to_owned()
        } else if info.expired {
            "EXPIRED".to_owned()
        } else {
            match info.expires {
                Some(at) => format!("expires {}", format::day(at)),
                None => "does not expire".to_owned(),
            }
        };
        let verified = if info.secret {
            "your own key"
        } else if key.verified {
            "✓ fingerprint verified"
        } else {
            "fingerprint not verified"
        };
        let source = match key.source.as_str() {
            "generated" => "generated here",
            "autocrypt" => "learned from an Autocrypt header",
            "wkd" => "found by a Web Key Directory lookup",
            _ => "imported from a file",
        };
        let mut lines = column![
            text(format!("{owner}: {}", info.addresses.join(", "))).font(style::BOLD),
            text(format::fingerprint(&info.fingerprint)).font(iced::Font::MONOSPACE),
            text(format!(
                "{} · {state} · {source} · {verified}{}",
                info.algorithm,
                if info.locked && !key.unlocked {
                    " · passphrase protected"
                } else {
                    ""
                }
            ))
            .size(style::SMALL),
        ]
        .spacing(4);

        if let Some(old) = &key.replaces {
            lines = lines.push(
                container(text(format!(
                    "⚠ Key changed: this key was {source} and would replace {} for {}. It is \
                     not used until you accept it. Ask the sender, by phone or in person, \
                     whether they changed their key, and compare the fingerprint.",
                    format::fingerprint(old),
                    info.addresses.join(", ")
                )))
                .padding(8)
                .width(Fill)
                .style(style::alert),
            );
        }

        let fingerprint = &info.fingerprint;
        let mut actions = row![].spacing(8);
        if !key.verified && !info.secret {
            actions = actions.push(style::tool(
                "Mark verified",
                idle.then(|| Message::Verify(fingerprint.clone())),
            ));
        }
        if key.replaces.is_some() {
            actions = actions.push(style::tool(
                "Accept new key",
                idle.then(|| Message::Accept(fingerprint.clone())),
            ));
        }
        actions = actions.push(style::tool(
            "Export public key…",
            idle.then(|| Message::Export(fingerprint.clone())),
        ));
        if info.secret && info.locked && !key.unlocked {
            actions = actions.push(style::tool(
                "Unlock…",
                idle.then(|| Message::AskUnlock(fingerprint.clone())),
            ));
        }
        if info.secret && !info.revoked {
            actions = actions.push(style::tool(
                "Revoke…",
                idle.then(|| Message::AskRevoke(fingerprint.clone())),
            ));
        }
        lines = lines.push(actions);

        if self.confirm_revoke.as_ref() == Some(fingerprint) {
            lines = lines.push(
                row![
                    text("Revoke this key for good? It can no longer sign or receive mail."),
                    style::action("Revoke", idle.then_some(Message::Revoke)),
                    style::tool("Keep it", Some(Message::CancelRevoke)),
                ]
                .spacing(8)
                .align_y(iced::Center),
            );
        }
        if let Some((unlocking, passphrase)) = &self.unlock
            && unlocking == fingerprint
        {
            lines = lines.push(
                row![
                    text_input("Passphrase", passphrase)
                        .secure(true)
                        .on_input(Message::Passphrase)
                        .on_submit(Message::Unlock)
                        .width(300),
                    style::action("Unlock", idle.then_some(Message::Unlock)),
                ]
                .spacing(8),
            );
        }
        container(lines)
            .padding(10)
            .width(Fill)
            .style(style::frame)
            .into()
    }
}
