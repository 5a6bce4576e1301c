//! The desktop window (iced 0.14). The window shows one screen at a time:
//! the welcome form on first start, then the mailbox, with the composer,
//! the outbox, the Keys screen, the audit log and the account settings
//! shown in its place
//! when opened.
//! Every screen lives in `src/ui/` and has the same shape: a state struct,
//! a `Message` enum, an `Event` enum for this module, `update` returning
//! `(Task<Message>, Option<Event>)`, and `view`.

mod audit;
mod composer;
pub(crate) mod format;
mod keys;
mod live;
mod mailbox;
mod outbox;
mod portal;
mod setup;
mod shortcuts;
mod status;
mod style;

use std::path::PathBuf;
use std::sync::Arc;

use iced::widget::{button, center, column, container, row, space, text};
use iced::{Element, Fill, Subscription, Task, Theme};

use wardmail::account::{AccountError, Config, Profile};
use wardmail::mailto::{Mailto, MailtoError};
use wardmail::policy::{Location, Policy, PolicyError};
use wardmail::session::{Session, SessionError};

use audit::Audit;
use composer::Composer;
use keys::Keys;
use mailbox::Mailbox;
use outbox::Outbox;
use setup::Setup;
use shortcuts::Shortcut;
use status::Problem;

/// Opens the window and runs until it is closed. `profile` is the
/// `--profile` directory, if one was given; `mailto` is a `mailto:` link
/// to open in the composer once the account is open.
pub fn run(profile: Option<PathBuf>, mailto: Option<String>) -> iced::Result {
    let mailto = mailto.map(|link| Mailto::parse(&link));
    iced::application(
        move || App::boot(profile.clone(), mailto.clone()),
        App::update,
        App::view,
    )
    .title(App::title)
    .theme(App::theme)
    .subscription(App::subscription)
    .window(window_settings())
    .run()
}

/// The application icon as raw 128x128 RGBA pixels, written by
/// `scripts/make-icons` from the same drawing as the installers' icons.
const ICON_RGBA: &[u8] = include_bytes!("../assets/icons/wardmail-128.rgba");
const ICON_SIZE: u32 = 128;

fn window_settings() -> iced::window::Settings {
    let icon = match iced::window::icon::from_rgba(ICON_RGBA.to_vec(), ICON_SIZE, ICON_SIZE) {
        Ok(icon) => Some(icon),
        Err(error) => {
            tracing::warn!(%error, "the window icon is invalid; the window has none");
            None
        }
    };
    #[allow(unused_mut)] // only Linux changes the platform settings
    let mut settings = iced::window::Settings {
        size: iced::Size::new(1280.0, 800.0),
        icon,
        ..iced::window::Settings::default()
    };
    // The X11 WM_CLASS and Wayland app id, which desktops match against
    // the StartupWMClass of wardmail.desktop to show the right icon.
    #[cfg(target_os = "linux")]
    {
        settings.platform_specific.application_id = "wardmail".to_owned();
    }
    settings
}

/// The screen under any overlay.
#[derive(Debug)]
enum Screen {
    /// Loading the configuration or opening the account.
    Starting(&'static str),
    /// The settings or the account could not be opened.
    Broken(Problem),
    /// First start: the account form.
    Welcome(Box<Setup>),
    /// The mailbox.
    Mailbox(Box<Mailbox>),
}

/// A screen shown in place of the mailbox, which keeps running below it.
#[derive(Debug)]
enum Overlay {
    Composer(Box<Composer>),
    Outbox(Box<Outbox>),
    Keys(Box<Keys>),
    Audit(Box<Audit>),
    Portal(Box<portal::Portal>),
    Settings(Box<Setup>),
}

#[derive(Clone, Debug)]
enum Message {
    ThemeChanged(iced::theme::Mode),
    ConfigLoaded(Result<Config, Arc<AccountError>>),
    SessionOpened(Result<Arc<Session>, Arc<SessionError>>),
    Welcome(setup::Message),
    Settings(setup::Message),
    Mailbox(mailbox::Message),
    Composer(composer::Message),
    Outbox(outbox::Message),
    Keys(keys::Message),
    Audit(audit::Message),
    Portal(portal::Message),
    /// Time to fetch the secure portal's events and replies.
    PortalTick,
    /// Fetching them ended.
    PortalChecked(Result<wardmail::session::PortalSync, Arc<SessionError>>),
    Shortcut(Shortcut),
    /// Read the settings and open the account again.
    Retry,
    /// Open the account form from the error screen.
    EditAccount,
    /// The clinic policy file was read.
    PolicyLoaded(Result<Option<Policy>, Arc<PolicyError>>),
    /// Read the clinic policy file again.
    ReloadPolicy,
}

/// The clinic policy as read at start-up.
#[derive(Debug)]
enum PolicyState {
    Reading,
    /// No policy file exists.
    Absent,
    Loaded(Policy),
    Broken(Arc<PolicyError>),
}

impl PolicyState {
    /// Returns the routing rules and internal domains in force.
    ///
    /// NOTE: while the policy file is broken or still being read, the
    /// built-in rules apply. They require encryption, internal delivery or
    /// enforced TLS for PHI, so a broken file does not open up sending.
    fn routing(&self) -> (wardmail::route::Routing, Vec<String>) {
        match self {
            PolicyState::Loaded(policy) => {
                (policy.routing.clone(), policy.internal_domains.clone())
            }
            _ => (wardmail::route::Routing::default(), Vec::new()),
        }
    }

    /// Returns whether the clinic policy allows a portal code by e-mail.
    fn allow_email_code(&self) -> bool {
        match self {
            PolicyState::Loaded(policy) => policy.allow_email_code,
            _ => false,
        }
    }

    /// Returns whether staff may send a reply below its thread's floor
    /// after typing a reason. A broken or unread policy forbids it, as the
    /// outbox's gate does.
    fn allow_reply_override(&self) -> bool {
        match self {
            PolicyState::Loaded(policy) => policy.allow_reply_override,
            PolicyState::Absent => true,
            PolicyState::Reading | PolicyState::Broken(_) => false,
        }
    }
}

/// How often the window fetches the secure portal's events and replies.
const PORTAL_CHECK: std::time::Duration = std::time::Duration::from_secs(120);

struct App {
    profile: Result<Profile, Arc<AccountError>>,
    /// The configuration as last read.
    config: Option<Config>,
    /// The account to open after a save; `None` opens the first.
    account: Option<String>,
    screen: Screen,
    overlay: Option<Overlay>,
    /// The `mailto:` link from the command line, until the account is open
    /// and the composer shows it.
    mailto: Option<Result<Mailto, MailtoError>>,
    policy: PolicyState,
    mode: iced::theme::Mode,
    light: Theme,
    dark: Theme,
}

impl App {
    fn boot(
        profile: Option<PathBuf>,
        mailto: Option<Result<Mailto, MailtoError>>,
    ) -> (App, Task<Message>) {
        let app = App {
            profile: Profile::locate(profile.as_deref()).map_err(Arc::new),
            config: None,
            account: None,
            screen: Screen::Starting("Starting…"),
            overlay: None,
            mailto,
            policy: PolicyState::Reading,
            mode: iced::theme::Mode::None,
            light: style::light(),
            dark: style::dark(),
        };
        let task = Task::batch([
            app.read_config(),
            read_policy(),
            iced::system::theme().map(Message::ThemeChanged),
        ]);
        (app, task)
    }

    fn title(&self) -> String {
        match &self.screen {
            Screen::Mailbox(mailbox) => format!("Wardmail — {}", mailbox.session().account.address),
            _ => "Wardmail".to_owned(),
        }
    }

    fn theme(&self) -> Theme {
        match self.mode {
            iced::theme::Mode::Dark => self.dark.clone(),
            _ => self.light.clone(),
        }
    }

    fn subscription(&self) -> Subscription<Message> {
        let mut subscriptions = vec![
            shortcuts::listen().map(Message::Shortcut),
            iced::system::theme_changes().map(Message::ThemeChanged),
        ];
        if let Screen::Mailbox(mailbox) = &self.screen {
            subscriptions.push(mailbox.subscription().map(Message::Mailbox));
            if mailbox.session().portal_enrolled() {
                subscriptions.push(iced::time::every(PORTAL_CHECK).map(|_| Message::PortalTick));
            }
        }
        Subscription::batch(subscriptions)
    }

    fn update(&mut self, message: Message) -> Task<Message> {
        match message {
            Message::ThemeChanged(mode) => {
                self.mode = mode;
                Task::none()
            }
            Message::ConfigLoaded(result) => self.config_loaded(result),
            Message::SessionOpened(result) => self.session_opened(result),
            Message::Welcome(message) => self.welcome_message(message),
            Message::Settings(message) => self.settings_message(message),
            Message::Mailbox(message) => self.mailbox_message(message),
            Message::Composer(message) => self.composer_message(message),
            Message::Outbox(message) => self.outbox_message(message),
            Message::Portal(message) => self.portal_message(message),
            Message::PortalTick => self.check_portal(),
            Message::PortalChecked(result) => {
                match result {
                    Ok(sync) if sync.locked > 0 => {
                        if let Screen::Mailbox(mailbox) = &mut self.screen {
                            mailbox.notice(
                                "A message on the secure portal locked after wrong codes: open \
                                 Secure portal to issue a new code."
                                    .to_owned(),
                            );
                        }
                    }
                    Ok(sync) if sync.replies > 0 => {
                        if let Screen::Mailbox(mailbox) = &mut self.screen {
                            mailbox.notice(if sync.replies == 1 {
                                "A reply arrived through the secure portal.".to_owned()
                            } else {
                                format!(
                                    "{} replies arrived through the secure portal.",
                                    sync.replies
                                )
                            });
                        }
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "checking the secure portal failed"),
                }
                Task::none()
            }
            Message::Keys(message) => self.keys_message(message),
            Message::Audit(message) => self.audit_message(message),
            Message::Shortcut(shortcut) => self.shortcut(shortcut),
            Message::Retry => self.reopen(),
            Message::EditAccount => {
                self.edit_account_from_error();
                Task::none()
            }
            Message::PolicyLoaded(result) => {
                self.policy_loaded(result);
                Task::none()
            }
            Message::ReloadPolicy => {
                self.policy = PolicyState::Reading;
                read_policy()
            }
        }
    }

    fn policy_loaded(&mut self, result: Result<Option<Policy>, Arc<PolicyError>>) {
        self.policy = match result {
            Ok(Some(policy)) => {
                tracing::info!(
                    path = %policy.path.display(),
                    internal_domains = policy.internal_domains.len(),
                    "clinic policy loaded"
                );
                PolicyState::Loaded(policy)
            }
            Ok(None) => PolicyState::Absent,
            Err(error) => {
                tracing::error!(%error, "the clinic policy could not be loaded");
                PolicyState::Broken(error)
            }
        };
    }

    /// Drops the open account (if any) and starts over from the settings.
    fn reopen(&mut self) -> Task<Message> {
        self.overlay = None;
        self.screen = Screen::Starting("Reading your settings…");
        self.read_config()
    }

    fn read_config(&self) -> Task<Message> {
        let profile = match &self.profile {
            Ok(profile) => profile.clone(),
            Err(error) => return Task::done(Message::ConfigLoaded(Err(error.clone()))),
        };
        Task::perform(
            async move {
                match tokio::task::spawn_blocking(move || profile.load()).await {
                    Ok(result) => result.map_err(Arc::new),
                    Err(error) => Err(Arc::new(AccountError::Io {
                        operation: "read",
                        path: PathBuf::from("accounts.toml"),
                        source: std::io::Error::other(error.to_string()),
                    })),
                }
            },
            Message::ConfigLoaded,
        )
    }

    fn config_loaded(&mut self, result: Result<Config, Arc<AccountError>>) -> Task<Message> {
        let config = match result {
            Ok(config) => config,
            Err(error) => {
                self.screen = Screen::Broken(Problem {
                    summary: "Wardmail could not read its settings.".to_owned(),
                    detail: error.to_string(),
                    offline: false,
                });
                return Task::none();
            }
        };
        let Ok(profile) = self.profile.clone() else {
            return Task::none();
        };
        let empty = config.accounts.is_empty();
        self.config = Some(config);
        if empty {
            self.screen = Screen::Welcome(Box::new(Setup::welcome(profile)));
            return Task::none();
        }

        self.screen = Screen::Starting("Opening your account…");
        let account = self.account.clone();
        Task::perform(
            async move {
                Session::open(profile, account)
                    .await
                    .map(Arc::new)
                    .map_err(Arc::new)
            },
            Message::SessionOpened,
        )
    }

    fn session_opened(&mut self, result: Result<Arc<Session>, Arc<SessionError>>) -> Task<Message> {
        match result {
            Ok(session) => {
                tracing::info!(account = %session.account.id, "account opened");
                let (mailbox, task) = Mailbox::new(session.clone());
                self.screen = Screen::Mailbox(Box::new(mailbox));
                self.overlay = None;
                let task = task.map(Message::Mailbox);
                let Some(link) = self.mailto.take() else {
                    return task;
                };
                let (routing, domains) = self.policy.routing();
                let composer = Composer::from_mailto(session, &link).with_policy(
                    routing,
                    domains,
                    self.policy.allow_reply_override(),
                    self.policy.allow_email_code(),
                );
                let focus = composer.start().map(Message::Composer);
                self.overlay = Some(Overlay::Composer(Box::new(composer)));
                Task::batch([task, focus])
            }
            Err(error) => {
                tracing::error!(%error, "opening the account failed");
                self.screen = Screen::Broken(Problem::new("Opening your account", &error));
                Task::none()
            }
        }
    }

    fn edit_account_from_error(&mut self) {
        let (Ok(profile), Some(config)) = (self.profile.clone(), &self.config) else {
            return;
        };
        let Ok(account) = config.account(self.account.as_deref()) else {
            return;
        };
        let settings = Setup::settings(profile, config.profile_id.clone(), account);
        self.screen = Screen::Welcome(Box::new(settings));
    }

    fn welcome_message(&mut self, message: setup::Message) -> Task<Message> {
        let Screen::Welcome(setup) = &mut self.screen else {
            return Task::none();
        };
        let (task, event) = setup.update(message);
        match event {
            Some(setup::Event::Saved { account_id }) => {
                self.account = Some(account_id);
                self.reopen()
            }
            Some(setup::Event::Cancelled) => self.reopen(),
            None => task.map(Message::Welcome),
        }
    }

    fn settings_message(&mut self, message: setup::Message) -> Task<Message> {
        let Some(Overlay::Settings(setup)) = &mut self.overlay else {
            return Task::none();
        };
        let (task, event) = setup.update(message);
        match event {
            Some(setup::Event::Saved { account_id }) => {
                self.account = Some(account_id);
                self.reopen()
            }
            Some(setup::Event::Cancelled) => {
                self.overlay = None;
                Task::none()
            }
            None => task.map(Message::Settings),
        }
    }

    fn mailbox_message(&mut self, message: mailbox::Message) -> Task<Message> {
        let Screen::Mailbox(mailbox) = &mut self.screen else {
            return Task::none();
        };
        let (task, event) = mailbox.update(message);
        let task = task.map(Message::Mailbox);
        let Some(event) = event else { return task };
        if self.overlay.is_some() {
            return task;
        }
        let session = mailbox.session().clone();
        match event {
            mailbox::Event::Compose(start) => {
                let (routing, domains) = self.policy.routing();
                let composer = Composer::new(session, start).with_policy(
                    routing,
                    domains,
                    self.policy.allow_reply_override(),
                    self.policy.allow_email_code(),
                );
                let focus = composer.start().map(Message::Composer);
                self.overlay = Some(Overlay::Composer(Box::new(composer)));
                Task::batch([task, focus])
            }
            mailbox::Event::OpenOutbox => Task::batch([task, self.open_outbox(session)]),
            mailbox::Event::OpenKeys => {
                let (keys, load) = Keys::new(session);
                self.overlay = Some(Overlay::Keys(Box::new(keys)));
                Task::batch([task, load.map(Message::Keys)])
            }
            mailbox::Event::OpenPortal => {
                let (portal, load) = portal::Portal::new(session, self.profile.clone().ok());
                self.overlay = Some(Overlay::Portal(Box::new(portal)));
                Task::batch([task, load.map(Message::Portal)])
            }
            mailbox::Event::OpenAudit => {
                let (audit, load) = Audit::new(session);
                self.overlay = Some(Overlay::Audit(Box::new(audit)));
                Task::batch([task, load.map(Message::Audit)])
            }
            mailbox::Event::OpenSettings => {
                let (Ok(profile), Some(config)) = (self.profile.clone(), &self.config) else {
                    return task;
                };
                let setup = Setup::settings(profile, config.profile_id.clone(), &session.account);
                self.overlay = Some(Overlay::Settings(Box::new(setup)));
                task
            }
        }
    }

    fn open_outbox(&mut self, session: Arc<Session>) -> Task<Message> {
        let (outbox, task) = Outbox::new(session);
        self.overlay = Some(Overlay::Outbox(Box::new(outbox)));
        task.map(Message::Outbox)
    }

    /// Closes the overlay and counts the outbox again, which sending,
    /// retrying or closing a failed composer may have changed.
    fn close_overlay(&mut self, notice: Option<String>) -> Task<Message> {
        self.overlay = None;
        let Screen::Mailbox(mailbox) = &mut self.screen else {
            return Task::none();
        };
        if let Some(notice) = notice {
            mailbox.notice(notice);
        }
        mailbox.count_outbox().map(Message::Mailbox)
    }

    fn composer_message(&mut self, message: composer::Message) -> Task<Message> {
        let Some(Overlay::Composer(composer)) = &mut self.overlay else {
            return Task::none();
        };
        let (task, event) = composer.update(message);
        match event {
            Some(composer::Event::Sent(notice)) => self.close_overlay(Some(notice)),
            Some(composer::Event::Closed) => self.close_overlay(None),
            Some(composer::Event::OpenOutbox) => {
                let Screen::Mailbox(mailbox) = &self.screen else {
                    return Task::none();
                };
                let session = mailbox.session().clone();
                self.open_outbox(session)
            }
            None => task.map(Message::Composer),
        }
    }

    fn outbox_message(&mut self, message: outbox::Message) -> Task<Message> {
        let Some(Overlay::Outbox(outbox)) = &mut self.overlay else {
            return Task::none();
        };
        let (task, event) = outbox.update(message);
        match event {
            Some(outbox::Event::Closed) => self.close_overlay(None),
            None => task.map(Message::Outbox),
        }
    }

    /// Fetches the portal's events and replies in the background; the
    /// Secure portal screen does the same on its own when it is open.
    fn check_portal(&mut self) -> Task<Message> {
        let Screen::Mailbox(mailbox) = &self.screen else {
            return Task::none();
        };
        if matches!(self.overlay, Some(Overlay::Portal(_))) {
            return Task::none();
        }
        let session = mailbox.session().clone();
        Task::perform(
            async move { session.portal_sync().await.map_err(Arc::new) },
            Message::PortalChecked,
        )
    }

    fn portal_message(&mut self, message: portal::Message) -> Task<Message> {
        let Some(Overlay::Portal(portal)) = &mut self.overlay else {
            return Task::none();
        };
        let (task, event) = portal.update(message);
        match event {
            Some(portal::Event::Closed) => self.close_overlay(None),
            Some(portal::Event::Enrolled) => self.reopen(),
            None => task.map(Message::Portal),
        }
    }

    fn keys_message(&mut self, message: keys::Message) -> Task<Message> {
        let Some(Overlay::Keys(keys)) = &mut self.overlay else {
            return Task::none();
        };
        let (task, event) = keys.update(message);
        match event {
            Some(keys::Event::Closed) => {
                let closed = self.close_overlay(None);
                let Screen::Mailbox(mailbox) = &mut self.screen else {
                    return closed;
                };
                let again = mailbox.reinspect().map(Message::Mailbox);
                Task::batch([closed, again])
            }
            None => task.map(Message::Keys),
        }
    }

    fn audit_message(&mut self, message: audit::Message) -> Task<Message> {
        let Some(Overlay::Audit(audit)) = &mut self.overlay else {
            return Task::none();
        };
        let (task, event) = audit.update(message);
        match event {
            Some(audit::Event::Closed) => self.close_overlay(None),
            None => task.map(Message::Audit),
        }
    }

    fn shortcut(&mut self, shortcut: Shortcut) -> Task<Message> {
        match shortcut {
            Shortcut::FocusNext => return iced::widget::operation::focus_next(),
            Shortcut::FocusPrevious => return iced::widget::operation::focus_previous(),
            _ => {}
        }
        let message = match (&self.overlay, &self.screen) {
            (Some(Overlay::Composer(_)), _) => match shortcut {
                Shortcut::Send => Message::Composer(composer::Message::Send),
                _ => return Task::none(),
            },
            (Some(Overlay::Outbox(_)), _) => match shortcut {
                Shortcut::Escape => Message::Outbox(outbox::Message::Close),
                _ => return Task::none(),
            },
            (Some(Overlay::Keys(_)), _) => match shortcut {
                Shortcut::Escape => Message::Keys(keys::Message::Close),
                _ => return Task::none(),
            },
            (Some(Overlay::Portal(_)), _) => match shortcut {
                Shortcut::Escape => Message::Portal(portal::Message::Close),
                _ => return Task::none(),
            },
            (Some(Overlay::Audit(_)), _) => match shortcut {
                Shortcut::Escape => Message::Audit(audit::Message::Close),
                _ => return Task::none(),
            },
            (Some(Overlay::Settings(_)), _) => match shortcut {
                Shortcut::Escape => Message::Settings(setup::Message::Cancel),
                _ => return Task::none(),
            },
            (None, Screen::Mailbox(_)) => {
                let message = match shortcut {
                    Shortcut::NewMessage => mailbox::Message::ComposeNew,
                    Shortcut::Reply => mailbox::Message::Reply,
                    Shortcut::ReplyAll => mailbox::Message::ReplyAll,
                    Shortcut::Forward => mailbox::Message::Forward,
                    Shortcut::Delete => mailbox::Message::Delete,
                    Shortcut::Next => mailbox::Message::Step(1),
                    Shortcut::Previous => mailbox::Message::Step(-1),
                    Shortcut::PageDown => mailbox::Message::Page(1),
                    Shortcut::PageUp => mailbox::Message::Page(-1),
                    Shortcut::First => mailbox::Message::Step(i64::MIN),
                    Shortcut::Last => mailbox::Message::Step(i64::MAX),
                    Shortcut::Sync => mailbox::Message::SyncNow,
                    _ => return Task::none(),
                };
                Message::Mailbox(message)
            }
            _ => return Task::none(),
        };
        self.update(message)
    }

    fn view(&self) -> Element<'_, Message> {
        // The banners always take their slots, empty when unused, so the
        // screen below keeps its position in the widget tree and with it
        // the keyboard focus.
        column![
            self.policy_banner().unwrap_or_else(|| space().into()),
            self.mailto_banner().unwrap_or_else(|| space().into()),
            container(self.screen_view()).height(Fill),
        ]
        .into()
    }

    /// Tells the user, on every screen, that the clinic's policy file is
    /// broken, with the error for IT.
    fn policy_banner(&self) -> Option<Element<'_, Message>> {
        let PolicyState::Broken(error) = &self.policy else {
            return None;
        };
        let words = column![
            text("The clinic policy could not be read. Wardmail runs without it until it is fixed: tell your IT department.")
                .font(style::BOLD),
            text(error.to_string()).size(style::SMALL),
        ]
        .spacing(4)
        .width(Fill);
        let banner = row![
            words,
            style::tool("Read again", Some(Message::ReloadPolicy))
        ]
        .spacing(12)
        .align_y(iced::Center);
        let banner = container(banner)
            .padding(10)
            .width(Fill)
            .style(style::alert);
        Some(container(banner).padding([6, 8]).into())
    }

    /// Explains, above the account form, where the message from a
    /// `mailto:` link went.
    fn mailto_banner(&self) -> Option<Element<'_, Message>> {
        if self.mailto.is_none() || !matches!(self.screen, Screen::Welcome(_)) {
            return None;
        }
        let note = text(
            "Set up your account first. The message from the mailto: link opens when the account is saved.",
        );
        let banner = container(note).padding(10).width(Fill).style(style::note);
        Some(container(banner).padding([6, 8]).into())
    }

    fn screen_view(&self) -> Element<'_, Message> {
        match &self.screen {
            Screen::Starting(note) => center(text(*note).style(style::muted_text)).into(),
            Screen::Broken(problem) => self.broken_view(problem),
            Screen::Welcome(setup) => setup.view().map(Message::Welcome),
            Screen::Mailbox(mailbox) => {
                let body = match &self.overlay {
                    Some(Overlay::Composer(composer)) => composer.view().map(Message::Composer),
                    Some(Overlay::Outbox(outbox)) => outbox.view().map(Message::Outbox),
                    Some(Overlay::Keys(keys)) => keys.view().map(Message::Keys),
                    Some(Overlay::Audit(audit)) => audit.view().map(Message::Audit),
                    Some(Overlay::Portal(portal)) => portal.view().map(Message::Portal),
                    Some(Overlay::Settings(setup)) => setup.view().map(Message::Settings),
                    None => mailbox.view().map(Message::Mailbox),
                };
                column![
                    container(body).height(Fill),
                    mailbox.view_status().map(Message::Mailbox)
                ]
                .into()
            }
        }
    }

    fn broken_view<'a>(&'a self, problem: &'a Problem) -> Element<'a, Message> {
        let can_edit = self.config.as_ref().is_some_and(|c| !c.accounts.is_empty());
        let page = column![
            text("Wardmail could not open your account")
                .size(style::HEADING)
                .font(style::BOLD),
            text(&problem.summary),
            container(text(&problem.detail).size(style::SMALL))
                .padding(8)
                .width(Fill)
                .style(style::alert),
            row![
                button(text("Try again"))
                    .padding([8, 16])
                    .on_press(Message::Retry),
                button(text("Account settings"))
                    .padding([8, 16])
                    .style(button::secondary)
                    .on_press_maybe(can_edit.then_some(Message::EditAccount)),
            ]
            .spacing(12),
        ]
        .spacing(16)
        .padding(24)
        .max_width(800);
        center(page).into()
    }
}

/// Reads the clinic policy on the blocking pool.
fn read_policy() -> Task<Message> {
    Task::perform(
        async {
            let location = Location::from_env();
            let path = location.path.clone();
            match tokio::task::spawn_blocking(move || location.load()).await {
                Ok(result) => result.map_err(Arc::new),
                Err(error) => Err(Arc::new(PolicyError::Io {
                    path,
                    source: std::io::Error::other(error.to_string()),
                    fix: "start Wardmail again",
                })),
            }
        },
        Message::PolicyLoaded,
    )
}
