//! The account form: the welcome screen on first start, and the account
//! settings later. One form with "Test connection" and "Save"; each error
//! appears next to the field or server it concerns, and nothing typed is
//! cleared by an error.

use std::path::PathBuf;
use std::sync::Arc;

use iced::Task;

use wardmail::account::{Account, AccountError, Profile, Security, Server, account_id};
use wardmail::secret::{KeyringEntry, Secret, SecretError};
use wardmail::session::{self, ConnectionCheck, SessionError};

mod view;

/// A form field that can carry an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// The name shown in From.
    DisplayName,
    /// The e-mail address.
    Address,
    /// The login name.
    Username,
    /// The password.
    Password,
    /// IMAP host name.
    ImapHost,
    /// IMAP port.
    ImapPort,
    /// SMTP host name.
    SmtpHost,
    /// SMTP port.
    SmtpPort,
    /// The clinic CA file.
    CaFile,
}

/// The server a security picker belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Incoming mail.
    Imap,
    /// Outgoing mail.
    Smtp,
}

/// The purpose of the form.
#[derive(Clone, Debug)]
pub enum Mode {
    /// First start: no account yet; a password is required.
    Welcome,
    /// Editing an existing account; an empty password keeps the stored one.
    Settings {
        /// The account's id before editing (its keyring entry).
        original_id: String,
        /// The profile's id (part of the keyring entry name).
        profile_id: String,
    },
}

/// The outcome of "Test connection".
#[derive(Clone, Debug)]
pub enum TestOutcome {
    /// A field is invalid; nothing was tried.
    Invalid(Arc<AccountError>),
    /// The stored password could not be read.
    Keyring(Arc<SecretError>),
    /// Both servers were tried.
    Checked(Arc<ConnectionCheck>),
}

/// Setup messages.
#[derive(Clone, Debug)]
pub enum Message {
    /// A text field changed.
    Edit(Field, String),
    /// A security picker changed.
    Security(Protocol, Security),
    /// Open the file dialog for the CA file.
    ChooseCaFile,
    /// The file dialog closed.
    CaFileChosen(Option<PathBuf>),
    /// Try both servers.
    Test,
    /// The test started as number `.0` ended.
    Tested(u64, TestOutcome),
    /// Save the account.
    Save,
    /// Saving ended.
    Saved(Result<(), Arc<SessionError>>),
    /// Leave the settings without saving.
    Cancel,
}

/// Notifications from the form to the window.
#[derive(Clone, Debug)]
pub enum Event {
    /// The account was saved; open it.
    Saved {
        /// The saved account's id.
        account_id: String,
    },
    /// The user left the settings.
    Cancelled,
}

#[derive(Clone, Debug)]
struct ServerForm {
    host: String,
    port: String,
    /// Whether the user typed a port, which then no longer follows the
    /// security picker.
    port_edited: bool,
    security: Security,
}

impl ServerForm {
    fn new(protocol: Protocol, security: Security) -> ServerForm {
        ServerForm {
            host: String::new(),
            port: default_port(protocol, security).to_string(),
            port_edited: false,
            security,
        }
    }

    fn from_server(server: &Server) -> ServerForm {
        ServerForm {
            host: server.host.clone(),
            port: server.port.to_string(),
            port_edited: true,
            security: server.security,
        }
    }
}

fn default_port(protocol: Protocol, security: Security) -> u16 {
    wardmail::net::default_port(protocol == Protocol::Imap, security)
}

/// Result of one server's test, as shown.
#[derive(Clone, Debug)]
enum Check {
    NotRun,
    Running,
    Done(Result<(), String>),
}

/// The account form.
#[derive(Debug)]
pub struct Setup {
    profile: Profile,
    mode: Mode,
    display_name: String,
    address: String,
    username: String,
    /// Whether the user typed a user name, which then no longer follows
    /// the address.
    username_edited: bool,
    password: String,
    imap: ServerForm,
    smtp: ServerForm,
    ca_file: String,
    errors: Vec<(Field, String)>,
    imap_check: Check,
    smtp_check: Check,
    /// Counts tests and edits, so that a result arriving after an edit
    /// is dropped instead of being shown next to values it did not test.
    test: u64,
    saving: bool,
    save_error: Option<String>,
}

impl Setup {
    /// Creates an empty form for the first account.
    pub fn welcome(profile: Profile) -> Setup {
        Setup {
            profile,
            mode: Mode::Welcome,
            display_name: String::new(),
            address: String::new(),
            username: String::new(),
            username_edited: false,
            password: String::new(),
            imap: ServerForm::new(Protocol::Imap, Security::Tls),
            smtp: ServerForm::new(Protocol::Smtp, Security::StartTls),
            ca_file: String::new(),
            errors: Vec::new(),
            imap_check: Check::NotRun,
            smtp_check: Check::NotRun,
            test: 0,
            saving: false,
            save_error: None,
        }
    }

    /// Creates the form filled from an existing account.
    pub fn settings(profile: Profile, profile_id: String, account: &Account) -> Setup {
        Setup {
            mode: Mode::Settings {
                original_id: account.id.clone(),
                profile_id,
            },
            display_name: account.display_name.clone(),
            address: account.address.clone(),
            username: account.username.clone(),
            username_edited: true,
            imap: ServerForm::from_server(&account.imap),
            smtp: ServerForm::from_server(&account.smtp),
            ca_file: account
                .ca_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            ..Setup::welcome(profile)
        }
    }

    /// Handles a form message.
    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        let task = match message {
            Message::Edit(field, value) => {
                self.edit(field, value);
                Task::none()
            }
            Message::Security(protocol, security) => {
                self.set_security(protocol, security);
                Task::none()
            }
            Message::ChooseCaFile => choose_ca_file(),
            Message::CaFileChosen(path) => {
                if let Some(path) = path {
                    self.edit(Field::CaFile, path.display().to_string());
                }
                Task::none()
            }
            Message::Test => self.test(),
            Message::Tested(test, outcome) => {
                if test == self.test {
                    self.tested(outcome);
                }
                Task::none()
            }
            Message::Save => self.save(),
            Message::Saved(result) => return (Task::none(), self.saved(result)),
            Message::Cancel => return (Task::none(), Some(Event::Cancelled)),
        };
        (task, None)
    }

    fn edit(&mut self, field: Field, value: String) {
        self.errors.retain(|(f, _)| *f != field);
        self.forget_checks(field);
        match field {
            Field::DisplayName => self.display_name = value,
            Field::Address => {
                if !self.username_edited {
                    self.username = value.trim().to_owned();
                }
                self.address = value;
            }
            Field::Username => {
                self.username_edited = !value.is_empty();
                self.username = value;
            }
            Field::Password => self.password = value,
            Field::ImapHost => self.imap.host = value,
            Field::SmtpHost => self.smtp.host = value,
            Field::ImapPort => {
                self.imap.port_edited = !value.is_empty();
                self.imap.port = value;
            }
            Field::SmtpPort => {
                self.smtp.port_edited = !value.is_empty();
                self.smtp.port = value;
            }
            Field::CaFile => self.ca_file = value,
        }
    }

    /// Clears test results that an edit makes stale, so that a result on
    /// screen always belongs to the values on screen.
    fn forget_checks(&mut self, field: Field) {
        self.test += 1;
        match field {
            Field::DisplayName => {}
            Field::ImapHost | Field::ImapPort => self.imap_check = Check::NotRun,
            Field::SmtpHost | Field::SmtpPort => self.smtp_check = Check::NotRun,
            Field::Address | Field::Username | Field::Password | Field::CaFile => {
                self.imap_check = Check::NotRun;
                self.smtp_check = Check::NotRun;
            }
        }
    }

    fn set_security(&mut self, protocol: Protocol, security: Security) {
        self.forget_checks(match protocol {
            Protocol::Imap => Field::ImapHost,
            Protocol::Smtp => Field::SmtpHost,
        });
        let (server, port_field) = match protocol {
            Protocol::Imap => (&mut self.imap, Field::ImapPort),
            Protocol::Smtp => (&mut self.smtp, Field::SmtpPort),
        };
        server.security = security;
        if !server.port_edited {
            server.port = default_port(protocol, security).to_string();
            self.errors.retain(|(f, _)| *f != port_field);
        }
    }

    fn error(&self, field: Field) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, e)| e.as_str())
    }

    /// Builds the account from the form, or records which fields are wrong.
    fn account(&mut self) -> Option<Account> {
        self.errors.clear();
        let imap_port = parse_port(&self.imap.port);
        let smtp_port = parse_port(&self.smtp.port);
        if let Err(error) = &imap_port {
            self.errors.push((Field::ImapPort, error.clone()));
        }
        if let Err(error) = &smtp_port {
            self.errors.push((Field::SmtpPort, error.clone()));
        }
        let (Ok(imap_port), Ok(smtp_port)) = (imap_port, smtp_port) else {
            return None;
        };

        let address = self.address.trim().to_owned();
        let username = if self.username.trim().is_empty() {
            address.clone()
        } else {
            self.username.trim().to_owned()
        };
        let ca_file = self.ca_file.trim();
        Some(Account {
            id: account_id(&address),
            display_name: self.display_name.trim().to_owned(),
            address,
            username,
            imap: Server {
                host: self.imap.host.trim().to_owned(),
                port: imap_port,
                security: self.imap.security,
            },
            smtp: Server {
                host: self.smtp.host.trim().to_owned(),
                port: smtp_port,
                security: self.smtp.security,
            },
            ca_file: (!ca_file.is_empty()).then(|| PathBuf::from(ca_file)),
        })
    }

    /// Returns the typed password or, for an existing account with none
    /// typed, the keyring entry to read. For a new account without a
    /// password, records the error and returns `None`.
    fn password_source(&mut self) -> Option<PasswordSource> {
        if !self.password.is_empty() {
            return Some(PasswordSource::Typed(Secret::new(self.password.clone())));
        }
        match &self.mode {
            Mode::Settings {
                original_id,
                profile_id,
            } => Some(PasswordSource::Stored(KeyringEntry::password(
                profile_id,
                original_id,
            ))),
            Mode::Welcome => {
                self.errors.push((
                    Field::Password,
                    "enter the password for this account".to_owned(),
                ));
                None
            }
        }
    }

    fn test(&mut self) -> Task<Message> {
        let account = self.account();
        let password = self.password_source();
        let (Some(account), Some(password)) = (account, password) else {
            return Task::none();
        };
        self.imap_check = Check::Running;
        self.smtp_check = Check::Running;
        self.test += 1;
        let number = self.test;
        Task::perform(test(account, password), move |outcome| {
            Message::Tested(number, outcome)
        })
    }

    fn tested(&mut self, outcome: TestOutcome) {
        match outcome {
            TestOutcome::Invalid(error) => {
                self.imap_check = Check::NotRun;
                self.smtp_check = Check::NotRun;
                self.errors.push(field_of(&error));
            }
            TestOutcome::Keyring(error) => {
                self.imap_check = Check::NotRun;
                self.smtp_check = Check::NotRun;
                self.errors.push((
                    Field::Password,
                    format!("{error}; or type the password here"),
                ));
            }
            TestOutcome::Checked(check) => {
                self.imap_check =
                    Check::Done(check.imap.as_ref().map(drop).map_err(ToString::to_string));
                self.smtp_check =
                    Check::Done(check.smtp.as_ref().map(drop).map_err(ToString::to_string));
            }
        }
    }

    fn save(&mut self) -> Task<Message> {
        let account = self.account();
        let password = self.password_source();
        let (Some(account), Some(password)) = (account, password) else {
            return Task::none();
        };
        self.saving = true;
        self.save_error = None;
        let profile = self.profile.clone();
        let previous_id = match &self.mode {
            Mode::Settings { original_id, .. } => Some(original_id.clone()),
            Mode::Welcome => None,
        };
        Task::perform(
            async move {
                let password = password.resolve().await?;
                session::replace_account(profile, previous_id, account, password).await
            },
            |result| Message::Saved(result.map(drop).map_err(Arc::new)),
        )
    }

    fn saved(&mut self, result: Result<(), Arc<SessionError>>) -> Option<Event> {
        self.saving = false;
        match result {
            Ok(_) => {
                let address = self.address.trim();
                tracing::info!(account = %account_id(address), "account saved");
                Some(Event::Saved {
                    account_id: account_id(address),
                })
            }
            Err(error) => {
                match error.as_ref() {
                    SessionError::Account(invalid @ AccountError::Invalid { .. }) => {
                        self.errors.push(field_of(invalid))
                    }
                    SessionError::Secret(secret) => {
                        self.errors.push((Field::Password, secret.to_string()))
                    }
                    other => self.save_error = Some(format!("The account was not saved: {other}")),
                }
                None
            }
        }
    }
}

fn parse_port(value: &str) -> Result<u16, String> {
    match value.trim().parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!(
            "invalid port {:?}: enter a number from 1 to 65535",
            value.trim()
        )),
    }
}

/// Maps a validation error to the field it concerns.
fn field_of(error: &AccountError) -> (Field, String) {
    let field = match error {
        AccountError::Invalid {
            field: "address", ..
        } => Field::Address,
        AccountError::Invalid {
            field: "user name", ..
        } => Field::Username,
        AccountError::Invalid {
            field: "IMAP host",
            value,
            ..
        } if value == "port 0" => Field::ImapPort,
        AccountError::Invalid {
            field: "SMTP host",
            value,
            ..
        } if value == "port 0" => Field::SmtpPort,
        AccountError::Invalid {
            field: "IMAP host", ..
        } => Field::ImapHost,
        AccountError::Invalid {
            field: "SMTP host", ..
        } => Field::SmtpHost,
        AccountError::Invalid {
            field: "CA file", ..
        } => Field::CaFile,
        _ => Field::Address,
    };
    (field, error.to_string())
}

/// The source of the password for a test or a save.
#[derive(Debug)]
enum PasswordSource {
    Typed(Secret),
    Stored(KeyringEntry),
}

impl PasswordSource {
    /// Reads the stored password on the blocking pool when needed.
    async fn resolve(self) -> Result<Secret, SessionError> {
        match self {
            PasswordSource::Typed(secret) => Ok(secret),
            PasswordSource::Stored(entry) => tokio::task::spawn_blocking(move || entry.read())
                .await
                .map_err(|e| SessionError::Task(e.to_string()))?
                .map_err(SessionError::from),
        }
    }
}

async fn test(account: Account, password: PasswordSource) -> TestOutcome {
    let checked = account.clone();
    let validation = tokio::task::spawn_blocking(move || checked.validate()).await;
    if let Ok(Err(error)) = validation {
        return TestOutcome::Invalid(Arc::new(error));
    }
    let password = match password.resolve().await {
        Ok(password) => password,
        Err(SessionError::Secret(error)) => return TestOutcome::Keyring(Arc::new(error)),
        Err(other) => {
            let text = other.to_string();
            let check = ConnectionCheck {
                imap: Err(other),
                smtp: Err(SessionError::Task(text)),
            };
            return TestOutcome::Checked(Arc::new(check));
        }
    };
    TestOutcome::Checked(Arc::new(
        session::test_connection(&account, &password).await,
    ))
}

fn choose_ca_file() -> Task<Message> {
    Task::perform(
        async {
            rfd::AsyncFileDialog::new()
                .set_title("Choose the clinic's CA certificate")
                .add_filter("PEM certificate", &["pem", "crt", "cer"])
                .pick_file()
                .await
                .map(|handle| handle.path().to_path_buf())
        },
        Message::CaFileChosen,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> Setup {
        let profile =
            Profile::locate(Some(std::path::Path::new("/nonexistent-wardmail-test"))).unwrap();
        Setup::welcome(profile)
    }

    #[test]
    fn port_follows_security_until_edited() {
        let mut setup = form();
        let _ = setup.update(Message::Security(Protocol::Imap, Security::StartTls));
        assert_eq!(setup.imap.port, "143");
        let _ = setup.update(Message::Edit(Field::ImapPort, "10143".into()));
        let _ = setup.update(Message::Security(Protocol::Imap, Security::Tls));
        assert_eq!(setup.imap.port, "10143");
        let _ = setup.update(Message::Security(Protocol::Smtp, Security::Tls));
        assert_eq!(setup.smtp.port, "465");
    }

    #[test]
    fn username_follows_address_until_edited() {
        let mut setup = form();
        let _ = setup.update(Message::Edit(Field::Address, "ann@example.org".into()));
        assert_eq!(setup.username, "ann@example.org");
        let _ = setup.update(Message::Edit(Field::Username, "ann".into()));
        let _ = setup.update(Message::Edit(
            Field::Address,
            "ann.smith@example.org".into(),
        ));
        assert_eq!(setup.username, "ann");
    }

    #[test]
    fn bad_port_and_missing_password_keep_input() {
        let mut setup = form();
        let _ = setup.update(Message::Edit(Field::Address, "ann@example.org".into()));
        let _ = setup.update(Message::Edit(Field::ImapPort, "99999".into()));
        let _ = setup.update(Message::Test);
        assert!(
            setup
                .error(Field::ImapPort)
                .is_some_and(|e| e.contains("99999"))
        );
        let _ = setup.update(Message::Edit(Field::ImapPort, "993".into()));
        let _ = setup.update(Message::Test);
        assert!(setup.error(Field::Password).is_some());
        assert_eq!(setup.address, "ann@example.org");
        assert!(matches!(setup.imap_check, Check::NotRun));
    }

    #[test]
    fn edit_drops_stale_test_result() {
        let mut setup = form();
        let number = setup.test;
        let _ = setup.update(Message::Edit(Field::SmtpPort, "2525".into()));
        let check = ConnectionCheck {
            imap: Ok(()),
            smtp: Ok(()),
        };
        let _ = setup.update(Message::Tested(
            number,
            TestOutcome::Checked(Arc::new(check)),
        ));
        assert!(matches!(setup.smtp_check, Check::NotRun));
    }

    #[test]
    fn validation_error_lands_on_its_field() {
        let error = AccountError::Invalid {
            field: "SMTP host",
            value: "".into(),
            fix: "enter a host name",
        };
        assert_eq!(field_of(&error).0, Field::SmtpHost);
        let error = AccountError::Invalid {
            field: "IMAP host",
            value: "port 0".into(),
            fix: "enter a port",
        };
        assert_eq!(field_of(&error).0, Field::ImapPort);
    }

    #[test]
    fn check_results_are_kept_per_server() {
        let mut setup = form();
        let check = ConnectionCheck {
            imap: Ok(()),
            smtp: Err(SessionError::NoFolder("x".into())),
        };
        let number = setup.test;
        let _ = setup.update(Message::Tested(
            number,
            TestOutcome::Checked(Arc::new(check)),
        ));
        assert!(matches!(setup.imap_check, Check::Done(Ok(()))));
        assert!(matches!(setup.smtp_check, Check::Done(Err(ref e)) if e.contains("x")));
    }
}
