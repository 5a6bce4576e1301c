//! The Keys screen: the account's S/MIME identities (a certificate with its
//! private key, imported from a .p12/.pfx file), the CA certificates
//! trusted for S/MIME signatures, and OpenPGP keys (`openpgp`).
//!
//! The screen's state lives in `Page`, which turns each message into the
//! `Work` to start, so tests drive it without an open account. `Keys` adds
//! the session and runs that work in `Task::perform`: reading the file,
//! the PKCS#12 decryption and the store writes never run on the UI thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use iced::widget::{Column, Id, column, container, row, scrollable, space, text, text_input};
use iced::{Element, Fill, Font, Task};

use wardmail::secret::Secret;
use wardmail::session::{IdentityInfo, Session, SessionError};
use wardmail::smime::SmimeError;

use super::{status, style};

mod certificates;
mod openpgp;

const PASSWORD: Id = Id::new("keys-pkcs12-password");

/// Keys screen messages.
#[derive(Clone, Debug)]
pub enum Message {
    /// The account's identities arrived from the store.
    Loaded(Result<Vec<IdentityInfo>, Arc<SessionError>>),
    /// Ask for a .p12/.pfx file.
    ChooseIdentityFile,
    /// The file dialog closed; `None` when it was cancelled.
    IdentityFileChosen(Option<PathBuf>),
    /// The password field changed.
    PasswordEdited(String),
    /// Import the chosen .p12/.pfx file with the typed password.
    ImportIdentity,
    /// Forget the chosen .p12/.pfx file and its password.
    CancelIdentity,
    /// Importing the .p12/.pfx file ended.
    IdentityImported(Result<(IdentityInfo, Option<String>), Failure>),
    /// Ask for a CA certificate file.
    ChooseCaFile,
    /// The file dialog closed; `None` when it was cancelled.
    CaFileChosen(Option<PathBuf>),
    /// Importing the CA certificates ended, with how many were added.
    CaImported(Result<usize, Failure>),
    /// Go back to the mailbox.
    Close,
    /// A message of the OpenPGP section.
    Openpgp(openpgp::Message),
    /// A message of the correspondents' certificates section.
    Certificates(certificates::Message),
}

/// Notifications from the Keys screen to the window.
#[derive(Clone, Debug)]
pub enum Event {
    /// Back to the mailbox.
    Closed,
}

/// The cause of a failed import.
#[derive(Clone, Debug)]
pub enum Failure {
    /// The file could not be read from disk.
    Read {
        path: PathBuf,
        error: Arc<std::io::Error>,
    },
    /// The file was read but the core rejected it.
    Rejected(Arc<SessionError>),
}

/// Work that a message starts, which `Keys` runs with the session.
#[derive(Debug, PartialEq, Eq)]
enum Work {
    None,
    Close,
    LoadIdentities,
    FocusPassword,
    PickIdentityFile,
    ImportIdentity { path: PathBuf, password: Secret },
    PickCaFile,
    ImportCa(PathBuf),
}

/// A chosen .p12/.pfx file that waits for its password.
#[derive(Debug)]
struct PendingIdentity {
    path: PathBuf,
    password: String,
    /// The error of the last import of this file, shown below the password.
    error: Option<String>,
}

/// Everything the screen shows.
#[derive(Debug, Default)]
struct Page {
    /// The account's own address, which an identity's certificate should
    /// name.
    account_address: String,
    /// `None` until the store returns them.
    identities: Option<Vec<IdentityInfo>>,
    load_problem: Option<status::Problem>,
    pending: Option<PendingIdentity>,
    /// The error of the last CA import, shown below its button.
    ca_error: Option<String>,
    /// A file is being read or imported.
    busy: bool,
    /// The summary of the last successful import.
    notice: Option<String>,
    /// The reason recipients may not be able to verify signatures made
    /// with the identity just imported.
    chain_warning: Option<String>,
}

/// The Keys screen.
#[derive(Debug)]
pub struct Keys {
    session: Arc<Session>,
    page: Page,
    openpgp: openpgp::Section,
    certificates: certificates::Section,
}

impl Keys {
    /// Opens the screen and loads the account's identities.
    pub fn new(session: Arc<Session>) -> (Keys, Task<Message>) {
        let page = Page {
            account_address: session.account.address.clone(),
            ..Page::default()
        };
        let openpgp_load = openpgp::Section::load(&session).map(Message::Openpgp);
        let certificates_load = certificates::Section::load(&session).map(Message::Certificates);
        let keys = Keys {
            session,
            page,
            openpgp: openpgp::Section::default(),
            certificates: certificates::Section::default(),
        };
        let task = Task::batch([keys.load_identities(), openpgp_load, certificates_load]);
        (keys, task)
    }

    /// Handles a Keys screen message.
    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        if let Message::Openpgp(message) = message {
            let task = self.openpgp.update(&self.session, message);
            return (task.map(Message::Openpgp), None);
        }
        if let Message::Certificates(message) = message {
            let task = self.certificates.update(&self.session, message);
            return (task.map(Message::Certificates), None);
        }
        let task = match self.page.update(message) {
            Work::None => Task::none(),
            Work::Close => return (Task::none(), Some(Event::Closed)),
            Work::LoadIdentities => self.load_identities(),
            Work::FocusPassword => iced::widget::operation::focus(PASSWORD),
            Work::PickIdentityFile => pick_identity_file(),
            Work::ImportIdentity { path, password } => self.import_identity(path, password),
            Work::PickCaFile => pick_ca_file(),
            Work::ImportCa(path) => self.import_ca(path),
        };
        (task, None)
    }

    fn load_identities(&self) -> Task<Message> {
        let session = self.session.clone();
        Task::perform(
            async move { session.smime_identities().await.map_err(Arc::new) },
            Message::Loaded,
        )
    }

    fn import_identity(&self, path: PathBuf, password: Secret) -> Task<Message> {
        let session = self.session.clone();
        Task::perform(
            async move {
                let bytes = read_file(&path).await?;
                let imported = session
                    .import_pkcs12_checked(bytes, password)
                    .await
                    .map_err(|error| Failure::Rejected(Arc::new(error)))?;
                let warning = imported
                    .warning
                    .map(|warning| format!("Imported, but {warning}."));
                Ok((imported.identity, warning))
            },
            Message::IdentityImported,
        )
    }

    fn import_ca(&self, path: PathBuf) -> Task<Message> {
        let session = self.session.clone();
        Task::perform(
            async move {
                let bytes = read_file(&path).await?;
                session
                    .import_ca(bytes)
                    .await
                    .map_err(|error| Failure::Rejected(Arc::new(error)))
            },
            Message::CaImported,
        )
    }

    /// Draws the Keys screen.
    pub fn view(&self) -> Element<'_, Message> {
        self.page.view(
            self.certificates.view().map(Message::Certificates),
            self.openpgp.view().map(Message::Openpgp),
        )
    }
}

impl Page {
    fn update(&mut self, message: Message) -> Work {
        match message {
            Message::Loaded(result) => self.loaded(result),
            Message::ChooseIdentityFile if !self.busy => Work::PickIdentityFile,
            Message::IdentityFileChosen(path) => self.identity_file_chosen(path),
            Message::PasswordEdited(password) => self.password_edited(password),
            Message::ImportIdentity => self.start_identity_import(),
            Message::CancelIdentity if !self.busy => {
                self.pending = None;
                Work::None
            }
            Message::IdentityImported(result) => self.identity_imported(result),
            Message::ChooseCaFile if !self.busy => Work::PickCaFile,
            Message::CaFileChosen(path) => self.ca_file_chosen(path),
            Message::CaImported(result) => self.ca_imported(result),
            Message::Close => Work::Close,
            Message::Openpgp(_) | Message::Certificates(_) => Work::None,
            Message::ChooseIdentityFile | Message::CancelIdentity | Message::ChooseCaFile => {
                Work::None
            }
        }
    }

    fn loaded(&mut self, result: Result<Vec<IdentityInfo>, Arc<SessionError>>) -> Work {
        match result {
            Ok(identities) => {
                self.identities = Some(identities);
                self.load_problem = None;
            }
            Err(error) => {
                tracing::error!(%error, "reading the S/MIME identities failed");
                self.load_problem = Some(status::Problem::new("Reading your certificates", &error));
            }
        }
        Work::None
    }

    fn identity_file_chosen(&mut self, path: Option<PathBuf>) -> Work {
        let Some(path) = path else {
            return Work::None;
        };
        self.notice = None;
        self.pending = Some(PendingIdentity {
            path,
            password: String::new(),
            error: None,
        });
        Work::FocusPassword
    }

    fn password_edited(&mut self, password: String) -> Work {
        if let Some(pending) = &mut self.pending {
            pending.password = password;
        }
        Work::None
    }

    fn start_identity_import(&mut self) -> Work {
        if self.busy {
            return Work::None;
        }
        let Some(pending) = &mut self.pending else {
            return Work::None;
        };
        // An empty password is valid: some .p12 files are exported without
        // one, so the core decides.
        pending.error = None;
        self.busy = true;
        self.notice = None;
        self.chain_warning = None;
        Work::ImportIdentity {
            path: pending.path.clone(),
            password: Secret::new(pending.password.clone()),
        }
    }

    fn identity_imported(
        &mut self,
        result: Result<(IdentityInfo, Option<String>), Failure>,
    ) -> Work {
        self.busy = false;
        match result {
            Ok((identity, warning)) => {
                self.pending = None;
                self.notice = Some(imported_identity_notice(&identity));
                self.chain_warning = warning;
                Work::LoadIdentities
            }
            Err(failure) => {
                let cause = failure_cause(&failure);
                tracing::warn!(error = %cause, "importing an S/MIME identity failed");
                if let Some(pending) = &mut self.pending {
                    pending.error = Some(identity_failure_text(&failure));
                }
                Work::FocusPassword
            }
        }
    }

    fn ca_file_chosen(&mut self, path: Option<PathBuf>) -> Work {
        let Some(path) = path else {
            return Work::None;
        };
        if self.busy {
            return Work::None;
        }
        self.busy = true;
        self.ca_error = None;
        self.notice = None;
        Work::ImportCa(path)
    }

    fn ca_imported(&mut self, result: Result<usize, Failure>) -> Work {
        self.busy = false;
        match result {
            Ok(count) => self.notice = Some(imported_ca_notice(count)),
            Err(failure) => {
                let cause = failure_cause(&failure);
                tracing::warn!(error = %cause, "importing a CA certificate failed");
                self.ca_error = Some(ca_failure_text(&failure));
            }
        }
        Work::None
    }

    fn view<'a>(
        &'a self,
        certificates: Element<'a, Message>,
        openpgp: Element<'a, Message>,
    ) -> Element<'a, Message> {
        let header = row![
            text("Keys").size(style::HEADING).font(style::BOLD),
            space::horizontal(),
            style::tool("Back to mailbox", Some(Message::Close)),
        ]
        .spacing(8)
        .align_y(iced::Center);

        let intro = text(
            "Your certificate or OpenPGP key lets Wardmail open encrypted mail sent to you and \
             sign what you send; trusted CA certificates and your correspondents' keys let it \
             check who signed a message. Keys are stored encrypted on this computer, and the \
             system keyring protects them. A file's password is not kept.",
        );

        let mut page = Column::new().spacing(16).push(intro);
        if let Some(notice) = &self.notice {
            page = page.push(notice_box(notice));
        }
        if let Some(warning) = &self.chain_warning {
            page = page.push(problem_box(format!("⚠ {warning}")));
        }
        page = page.push(self.smime_section());
        page = page.push(certificates);
        page = page.push(openpgp);

        column![header, scrollable(page.padding([0, 4])).height(Fill)]
            .spacing(12)
            .padding(16)
            .into()
    }

    fn smime_section(&self) -> Element<'_, Message> {
        let mut section = Column::new()
            .spacing(10)
            .push(text("S/MIME").size(style::TEXT).font(style::BOLD));

        if let Some(problem) = &self.load_problem {
            section = section.push(problem.boxed());
        }
        match &self.identities {
            None if self.load_problem.is_none() => {
                section = section.push(text("Loading…").style(style::muted_text));
            }
            None => {}
            Some(identities) if identities.is_empty() => {
                section = section.push(
                    text(
                        "No certificate yet. Your IT department gives you a .p12 or .pfx file \
                         and its password: import it below.",
                    )
                    .style(style::muted_text),
                );
            }
            Some(identities) => {
                for identity in identities {
                    section = section.push(identity_view(identity, &self.account_address));
                }
            }
        }

        let idle = !self.busy;
        section = section.push(
            row![
                style::action(
                    "Import certificate and key (.p12/.pfx)…",
                    idle.then_some(Message::ChooseIdentityFile)
                ),
                style::tool(
                    "Trust a CA certificate (.pem/.cer/.der)…",
                    idle.then_some(Message::ChooseCaFile)
                ),
            ]
            .spacing(8),
        );
        if let Some(error) = &self.ca_error {
            section = section.push(style::field_error(Some(error)));
        }
        if let Some(pending) = &self.pending {
            section = section.push(self.password_form(pending));
        }
        section.into()
    }

    fn password_form<'a>(&'a self, pending: &'a PendingIdentity) -> Element<'a, Message> {
        let idle = !self.busy;
        let input = text_input("Password", &pending.password)
            .id(PASSWORD)
            .secure(true)
            .on_input_maybe(idle.then_some(Message::PasswordEdited))
            .on_submit_maybe(idle.then_some(Message::ImportIdentity))
            .padding(8)
            .width(360)
            .style(if pending.error.is_some() {
                style::invalid_input
            } else {
                style::input
            });
        let mut form = column![
            text(format!("File: {}", pending.path.display())).size(style::SMALL),
            text("Password for this file")
                .size(style::SMALL)
                .font(style::BOLD),
            row![
                input,
                style::action("Import", idle.then_some(Message::ImportIdentity)),
                style::tool("Cancel", idle.then_some(Message::CancelIdentity)),
            ]
            .spacing(8)
            .align_y(iced::Center),
            style::field_error(pending.error.as_deref()),
        ]
        .spacing(6);
        if self.busy {
            form = form.push(
                text("Importing…")
                    .size(style::SMALL)
                    .style(style::muted_text),
            );
        }
        container(form)
            .padding(10)
            .width(Fill)
            .style(style::frame)
            .into()
    }
}

fn identity_view<'a>(identity: &'a IdentityInfo, account_address: &str) -> Element<'a, Message> {
    let addresses = if identity.addresses.is_empty() {
        "(the certificate names no e-mail address)".to_owned()
    } else {
        identity.addresses.join(", ")
    };
    let mut block = column![
        text(addresses).font(style::BOLD),
        text("SHA-256 fingerprint")
            .size(style::SMALL)
            .style(style::muted_text),
        text(grouped_fingerprint(&identity.fingerprint))
            .size(style::SMALL)
            .font(Font::MONOSPACE),
    ]
    .spacing(4);
    if !names_address(identity, account_address) {
        block = block.push(
            text(format!(
                "This certificate is not issued for your account address {account_address}. \
                 Mail encrypted to it can still be opened here."
            ))
            .size(style::SMALL)
            .style(style::muted_text),
        );
    }
    container(block)
        .padding(10)
        .width(Fill)
        .style(style::frame)
        .into()
}

/// Returns whether the certificate names `address`, ignoring ASCII case.
fn names_address(identity: &IdentityInfo, address: &str) -> bool {
    identity
        .addresses
        .iter()
        .any(|named| named.eq_ignore_ascii_case(address))
}

/// Formats a fingerprint ("AB:CD:…") as groups of four hex digits, eight
/// groups a line, so it can be compared by eye or read out on the phone.
fn grouped_fingerprint(fingerprint: &str) -> String {
    let digits: Vec<char> = fingerprint
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let groups: Vec<String> = digits
        .chunks(4)
        .map(|group| group.iter().collect())
        .collect();
    groups
        .chunks(8)
        .map(|line| line.join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn imported_identity_notice(identity: &IdentityInfo) -> String {
    let owner = if identity.addresses.is_empty() {
        "a certificate that names no e-mail address".to_owned()
    } else {
        identity.addresses.join(", ")
    };
    format!(
        "Imported the certificate and key for {owner}. Messages encrypted to it that you open \
         from now on are decrypted with this key, and their signatures are verified."
    )
}

fn imported_ca_notice(count: usize) -> String {
    match count {
        0 => "The file contained no CA certificate, so nothing was added.".to_owned(),
        1 => "Trusted 1 CA certificate. Signatures in messages you open from now on are \
              verified against it."
            .to_owned(),
        _ => format!(
            "Trusted {count} CA certificates. Signatures in messages you open from now on are \
             verified against them."
        ),
    }
}

fn identity_failure_text(failure: &Failure) -> String {
    match failure {
        Failure::Rejected(error)
            if matches!(
                error.as_ref(),
                SessionError::Smime(SmimeError::WrongPassword)
            ) =>
        {
            "Wrong password for this file. Type it again; it is the password you were given \
             with the certificate."
                .to_owned()
        }
        _ => format!(
            "This file could not be imported: {}. Check that it is the .p12 or .pfx file \
             from your IT department.",
            failure_detail(failure)
        ),
    }
}

fn ca_failure_text(failure: &Failure) -> String {
    format!(
        "The CA certificate could not be imported: {}. Check that the file is a PEM or DER \
         certificate from your IT department.",
        failure_detail(failure)
    )
}

/// Returns the error without the file path, which may contain the user's
/// name and so stays out of the log.
fn failure_cause(failure: &Failure) -> String {
    match failure {
        Failure::Read { error, .. } => error.to_string(),
        Failure::Rejected(error) => error.to_string(),
    }
}

fn failure_detail(failure: &Failure) -> String {
    match failure {
        Failure::Read { path, error } => format!("cannot read {}: {error}", path.display()),
        Failure::Rejected(error) => error.to_string(),
    }
}

async fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    tokio::fs::read(path).await.map_err(|error| Failure::Read {
        path: path.to_path_buf(),
        error: Arc::new(error),
    })
}

fn pick_identity_file() -> Task<Message> {
    Task::perform(
        async {
            rfd::AsyncFileDialog::new()
                .set_title("Choose your certificate and key")
                .add_filter("Certificate and key", &["p12", "pfx"])
                .pick_file()
                .await
                .map(|handle| handle.path().to_path_buf())
        },
        Message::IdentityFileChosen,
    )
}

fn pick_ca_file() -> Task<Message> {
    Task::perform(
        async {
            rfd::AsyncFileDialog::new()
                .set_title("Choose a CA certificate to trust")
                .add_filter("CA certificate", &["pem", "cer", "crt", "der"])
                .pick_file()
                .await
                .map(|handle| handle.path().to_path_buf())
        },
        Message::CaFileChosen,
    )
}

/// Draws a framed notice of a finished action, in the success colour.
fn notice_box<'a, M: 'a>(notice: &'a str) -> Element<'a, M> {
    container(text(notice).style(style::success_text))
        .padding(8)
        .width(Fill)
        .style(style::frame)
        .into()
}

/// Draws a framed problem or warning.
fn problem_box<'a, M: 'a>(problem: impl text::IntoFragment<'a>) -> Element<'a, M> {
    container(text(problem))
        .padding(8)
        .width(Fill)
        .style(style::alert)
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> IdentityInfo {
        IdentityInfo {
            fingerprint: "AB:CD:EF:01:23:45:67:89".to_owned(),
            addresses: vec!["bob@example.org".to_owned()],
        }
    }

    fn page_with_file() -> Page {
        let mut page = Page::default();
        let work = page.update(Message::IdentityFileChosen(Some(PathBuf::from(
            "/tmp/bob.p12",
        ))));
        assert_eq!(work, Work::FocusPassword);
        page
    }

    fn wrong_password() -> Failure {
        Failure::Rejected(Arc::new(SessionError::Smime(SmimeError::WrongPassword)))
    }

    #[test]
    fn choose_file_asks_for_password() {
        let page = page_with_file();
        let pending = page.pending.as_ref().expect("a pending file");
        assert_eq!(pending.path, PathBuf::from("/tmp/bob.p12"));
        assert!(pending.password.is_empty());
        assert!(pending.error.is_none());
    }

    #[test]
    fn cancelled_dialog_changes_nothing() {
        let mut page = Page::default();
        assert_eq!(page.update(Message::IdentityFileChosen(None)), Work::None);
        assert!(page.pending.is_none());
        assert_eq!(page.update(Message::CaFileChosen(None)), Work::None);
        assert!(!page.busy);
    }

    #[test]
    fn import_sends_typed_password() {
        let mut page = page_with_file();
        page.update(Message::PasswordEdited("nss".to_owned()));
        let work = page.update(Message::ImportIdentity);
        assert_eq!(
            work,
            Work::ImportIdentity {
                path: PathBuf::from("/tmp/bob.p12"),
                password: Secret::new("nss"),
            }
        );
        assert!(page.busy);
        assert_eq!(page.update(Message::ImportIdentity), Work::None);
    }

    #[test]
    fn wrong_password_keeps_input() {
        let mut page = page_with_file();
        page.update(Message::PasswordEdited("guess".to_owned()));
        page.update(Message::ImportIdentity);
        page.update(Message::IdentityImported(Err(wrong_password())));

        assert!(!page.busy);
        let pending = page.pending.as_ref().expect("the file stays chosen");
        assert_eq!(pending.password, "guess");
        let error = pending.error.as_deref().expect("an error below the field");
        assert!(error.starts_with("Wrong password"), "{error}");
        assert!(page.notice.is_none());
    }

    #[test]
    fn read_failure_names_file() {
        let mut page = page_with_file();
        page.update(Message::ImportIdentity);
        let failure = Failure::Read {
            path: PathBuf::from("/tmp/bob.p12"),
            error: Arc::new(std::io::Error::from(std::io::ErrorKind::NotFound)),
        };
        page.update(Message::IdentityImported(Err(failure)));
        let pending = page.pending.as_ref().expect("the file stays chosen");
        let error = pending.error.as_deref().expect("an error below the field");
        assert!(error.contains("/tmp/bob.p12"), "{error}");
    }

    #[test]
    fn import_success_clears_form() {
        let mut page = page_with_file();
        page.update(Message::PasswordEdited("nss".to_owned()));
        page.update(Message::ImportIdentity);
        let work = page.update(Message::IdentityImported(Ok((identity(), None))));

        assert_eq!(work, Work::LoadIdentities);
        assert!(page.pending.is_none());
        let notice = page.notice.as_deref().expect("a notice");
        assert!(notice.contains("bob@example.org"), "{notice}");
        assert!(notice.contains("decrypted"), "{notice}");
    }

    #[test]
    fn chain_warning_shown_after_import() {
        let mut page = page_with_file();
        page.update(Message::ImportIdentity);
        let warning = "Imported, but the chain is incomplete.".to_owned();
        page.update(Message::IdentityImported(Ok((
            identity(),
            Some(warning.clone()),
        ))));
        assert_eq!(page.chain_warning, Some(warning));

        page.update(Message::IdentityFileChosen(Some(PathBuf::from(
            "/tmp/b.p12",
        ))));
        page.update(Message::ImportIdentity);
        assert_eq!(page.chain_warning, None);
    }

    #[test]
    fn ca_import_counts() {
        let mut page = Page::default();
        let work = page.update(Message::CaFileChosen(Some(PathBuf::from("/tmp/ca.pem"))));
        assert_eq!(work, Work::ImportCa(PathBuf::from("/tmp/ca.pem")));
        assert!(page.busy);

        page.update(Message::CaImported(Ok(2)));
        assert!(!page.busy);
        let notice = page.notice.as_deref().expect("a notice");
        assert!(notice.starts_with("Trusted 2 CA certificates"), "{notice}");
    }

    #[test]
    fn ca_failure_shown_by_button() {
        let mut page = Page::default();
        page.update(Message::CaFileChosen(Some(PathBuf::from("/tmp/ca.pem"))));
        let failure = Failure::Read {
            path: PathBuf::from("/tmp/ca.pem"),
            error: Arc::new(std::io::Error::from(std::io::ErrorKind::PermissionDenied)),
        };
        page.update(Message::CaImported(Err(failure)));
        let error = page.ca_error.as_deref().expect("an error by the button");
        assert!(error.contains("/tmp/ca.pem"), "{error}");
        assert!(page.notice.is_none());
    }

    #[test]
    fn busy_blocks_new_dialogs() {
        let mut page = page_with_file();
        page.update(Message::ImportIdentity);
        assert_eq!(page.update(Message::ChooseIdentityFile), Work::None);
        assert_eq!(page.update(Message::ChooseCaFile), Work::None);
        assert_eq!(page.update(Message::CancelIdentity), Work::None);
        assert!(page.pending.is_some());
    }

    #[test]
    fn address_match_ignores_case() {
        let identity = identity();
        assert!(names_address(&identity, "Bob@Example.org"));
        assert!(!names_address(&identity, "ann@example.org"));
    }

    #[test]
    fn fingerprint_grouped_in_lines() {
        let fingerprint = (0..32)
            .map(|i| format!("{i:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        let grouped = grouped_fingerprint(&fingerprint);
        let lines: Vec<&str> = grouped.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], "0001 0203 0405 0607 0809 0A0B 0C0D 0E0F");
        assert_eq!(lines[1], "1011 1213 1415 1617 1819 1A1B 1C1D 1E1F");
    }
}
