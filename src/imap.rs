//! IMAP4rev1 client operations over async-imap (RFC 3501), with the
//! extensions Wardmail uses when the server offers them: SPECIAL-USE
//! (RFC 6154), CONDSTORE and QRESYNC (RFC 7162), IDLE (RFC 2177), MOVE
//! (RFC 6851) and UIDPLUS (RFC 4315).
//!
//! Connections are TLS only. With STARTTLS, the greeting is read and the
//! STARTTLS command sent over the plain socket, and nothing else: a server
//! that refuses STARTTLS is an error, never a reason to log in in clear.

use std::collections::HashSet;
use std::time::Duration;

use async_imap::imap_proto::{NameAttribute, Response};
use async_imap::types::{Flag, UnsolicitedResponse};
use futures::TryStreamExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::account::{Account, Security};
use crate::message;
use crate::net::{self, NetError, TlsContext};
use crate::secret::Secret;

/// The header fields fetched for the message list.
pub const ENVELOPE_FIELDS: &str = "DATE FROM TO CC SUBJECT MESSAGE-ID IN-REPLY-TO CONTENT-TYPE";

type Session = async_imap::Session<TlsStream<TcpStream>>;

/// Errors from an IMAP operation.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// The connection could not be made.
    #[error("IMAP: {0}")]
    Net(#[from] NetError),
    /// The server rejected the user name or password.
    #[error("IMAP login as {username:?} failed: check the user name and password ({reason})")]
    LoginFailed {
        /// The login name (not secret).
        username: String,
        /// The server's text.
        reason: String,
    },
    /// A command failed.
    #[error("IMAP {operation} failed: {reason}")]
    Command {
        /// The command that failed.
        operation: String,
        /// The server's or the library's text.
        reason: String,
    },
    /// The connection broke after login.
    #[error(
        "IMAP connection lost during {operation}: {reason}; Wardmail reconnects on the next action"
    )]
    Disconnected {
        /// The command that was running.
        operation: String,
        /// The I/O error.
        reason: String,
    },
    /// The server sent no reply in time.
    #[error(
        "IMAP {operation} timed out after {seconds} s: the server or the network is not responding"
    )]
    TimedOut {
        /// The command that was running.
        operation: String,
        /// The timeout.
        seconds: u64,
    },
}

impl ImapError {
    /// Returns whether the error means the server cannot be reached now,
    /// as opposed to rejecting a request.
    pub fn is_offline(&self) -> bool {
        matches!(
            self,
            ImapError::Net(_) | ImapError::Disconnected { .. } | ImapError::TimedOut { .. }
        )
    }
}

/// Time allowed for one command, or between two items of a streamed
/// response such as a large FETCH.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

fn command_error(
    operation: impl Into<String>,
) -> impl FnOnce(async_imap::error::Error) -> ImapError {
    let operation = operation.into();
    move |e| match e {
        async_imap::error::Error::Io(_) | async_imap::error::Error::ConnectionLost => {
            ImapError::Disconnected {
                operation,
                reason: e.to_string(),
            }
        }
        other => ImapError::Command {
            operation,
            reason: other.to_string(),
        },
    }
}

/// Runs one command with [`COMMAND_TIMEOUT`].
async fn timed<T>(
    command: impl std::future::Future<Output = Result<T, async_imap::error::Error>>,
    operation: &str,
) -> Result<T, ImapError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, command).await {
        Ok(result) => result.map_err(command_error(operation)),
        Err(_) => Err(ImapError::TimedOut {
            operation: operation.to_owned(),
            seconds: COMMAND_TIMEOUT.as_secs(),
        }),
    }
}

/// Reads the next item of a streamed response, allowing
/// [`COMMAND_TIMEOUT`] of silence.
async fn next_item<S, T>(stream: &mut S, operation: &str) -> Result<Option<T>, ImapError>
where
    S: futures::Stream<Item = Result<T, async_imap::error::Error>> + Unpin,
{
    timed(stream.try_next(), operation).await
}

/// A special-use role (RFC 6154), or the inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// INBOX.
    Inbox,
    /// `\Drafts`.
    Drafts,
    /// `\Sent`.
    Sent,
    /// `\Archive`.
    Archive,
    /// `\Junk`.
    Junk,
    /// `\Trash`.
    Trash,
}

impl Role {
    /// The name used in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Inbox => "inbox",
            Role::Drafts => "drafts",
            Role::Sent => "sent",
            Role::Archive => "archive",
            Role::Junk => "junk",
            Role::Trash => "trash",
        }
    }

    /// Parses [`Role::as_str`] output.
    pub fn parse(value: &str) -> Option<Role> {
        [
            Role::Inbox,
            Role::Drafts,
            Role::Sent,
            Role::Archive,
            Role::Junk,
            Role::Trash,
        ]
        .into_iter()
        .find(|role| role.as_str() == value)
    }
}

/// A mailbox as listed by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteFolder {
    /// The name exactly as the server sent it (modified UTF-7).
    pub raw_name: String,
    /// The decoded name; the raw name when it is not valid modified UTF-7.
    pub name: String,
    /// Hierarchy delimiter.
    pub delimiter: Option<String>,
    /// Special-use role.
    pub role: Option<Role>,
    /// Whether the mailbox can be selected.
    pub selectable: bool,
}

/// State of a selected mailbox.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Selected {
    /// UIDVALIDITY; a change invalidates every cached UID.
    pub uid_validity: u32,
    /// The UID the next message will get.
    pub uid_next: u32,
    /// Number of messages.
    pub exists: u32,
    /// HIGHESTMODSEQ when CONDSTORE is on.
    pub highest_modseq: Option<u64>,
}

/// The list-view data of one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteEnvelope {
    /// UID.
    pub uid: u32,
    /// Flags, as IMAP atoms (`\Seen`, `$Label1`).
    pub flags: Vec<String>,
    /// RFC822.SIZE.
    pub size: u32,
    /// MODSEQ when CONDSTORE is on.
    pub modseq: Option<u64>,
    /// INTERNALDATE as unix seconds.
    pub internal_date: Option<i64>,
    /// Parsed header fields.
    pub envelope: message::Envelope,
}

/// Flag changes reported since a MODSEQ.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    /// UID and its complete new flag list.
    pub flags: Vec<(u32, Vec<String>, Option<u64>)>,
    /// UID ranges reported as expunged (QRESYNC VANISHED), each with its
    /// ends in order. Ranges, not UIDs: `1:4294967295` is a valid report.
    pub vanished: Vec<(u32, u32)>,
}

/// A logged-in IMAP connection.
pub struct Connection {
    session: Session,
    capabilities: HashSet<String>,
    qresync: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("capabilities", &self.capabilities)
            .finish()
    }
}

/// Connects, secures the connection and logs in.
pub async fn connect(
    account: &Account,
    password: &Secret,
    tls: &TlsContext,
) -> Result<Connection, ImapError> {
    let server = &account.imap;
    let tcp = net::connect_tcp(&server.host, server.port).await?;
    let tcp = match server.security {
        Security::Tls => tcp,
        Security::StartTls => start_tls(tcp, &server.host, server.port).await?,
    };
    let stream = tls.handshake(tcp, &server.host, server.port).await?;
    let mut client = async_imap::Client::new(stream);
    if server.security == Security::Tls {
        read_greeting(&mut client, server.port, false).await?;
    }

    let session = match client.login(&account.username, password.expose()).await {
        Ok(session) => session,
        Err((async_imap::error::Error::No(reason), _))
        | Err((async_imap::error::Error::Bad(reason), _)) => {
            return Err(ImapError::LoginFailed {
                username: account.username.clone(),
                reason,
            });
        }
        Err((e, _)) => return Err(command_error("login")(e)),
    };
    let mut connection = Connection {
        session,
        capabilities: HashSet::new(),
        qresync: false,
    };
    connection.refresh_capabilities().await?;
    if connection.has("QRESYNC") {
        let enable = connection
            .session
            .run_command_and_check_ok("ENABLE QRESYNC");
        timed(enable, "ENABLE QRESYNC").await?;
        connection.qresync = true;
    }
    tracing::debug!(account = %account.id, qresync = connection.qresync, "IMAP logged in");
    Ok(connection)
}

/// Reads the server greeting. On a plain connection (before STARTTLS)
/// silence means the port expects implicit TLS; inside TLS it is a timeout.
async fn read_greeting<T>(
    client: &mut async_imap::Client<T>,
    port: u16,
    plain: bool,
) -> Result<(), ImapError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    match tokio::time::timeout(net::GREETING_TIMEOUT, client.read_response()).await {
        Ok(Ok(Some(_))) => Ok(()),
        Ok(Ok(None)) => Err(ImapError::Command {
            operation: "greeting".into(),
            reason: "the server closed the connection before greeting".into(),
        }),
        Ok(Err(e)) => Err(ImapError::Command {
            operation: "greeting".into(),
            reason: e.to_string(),
        }),
        Err(_) if plain => Err(NetError::ExpectsImplicitTls { port }.into()),
        Err(_) => Err(ImapError::TimedOut {
            operation: "greeting".into(),
            seconds: net::GREETING_TIMEOUT.as_secs(),
        }),
    }
}

/// Reads the plain-text greeting and negotiates STARTTLS; returns the TCP
/// stream ready for the TLS handshake.
async fn start_tls(tcp: TcpStream, host: &str, port: u16) -> Result<TcpStream, ImapError> {
    let mut client = async_imap::Client::new(tcp);
    read_greeting(&mut client, port, true).await?;
    match client.run_command_and_check_ok("STARTTLS", None).await {
        Ok(()) => Ok(client.into_inner()),
        Err(async_imap::error::Error::No(_)) | Err(async_imap::error::Error::Bad(_)) => {
            Err(NetError::StartTlsMissing {
                host: host.to_owned(),
                port,
            }
            .into())
        }
        Err(e) => Err(command_error("STARTTLS")(e)),
    }
}

impl Connection {
    /// Returns whether the server advertised a capability (upper case).
    pub fn has(&self, capability: &str) -> bool {
        self.capabilities.contains(capability)
    }

    /// Returns whether CONDSTORE is usable.
    pub fn condstore(&self) -> bool {
        self.has("CONDSTORE") || self.qresync
    }

    /// Returns whether QRESYNC was enabled.
    pub fn qresync(&self) -> bool {
        self.qresync
    }

    async fn refresh_capabilities(&mut self) -> Result<(), ImapError> {
        let capabilities = timed(self.session.capabilities(), "CAPABILITY").await?;
        self.capabilities = capabilities
            .iter()
            .filter_map(|c| match c {
                async_imap::types::Capability::Atom(atom) => Some(atom.to_ascii_uppercase()),
                async_imap::types::Capability::Imap4rev1 => Some("IMAP4REV1".to_owned()),
                _ => None,
            })
            .collect();
        Ok(())
    }

    /// Lists every mailbox with its special-use role.
    pub async fn folders(&mut self) -> Result<Vec<RemoteFolder>, ImapError> {
        let stream = timed(self.session.list(Some(""), Some("*")), "LIST").await?;
        let names: Vec<_> = timed(stream.try_collect(), "LIST").await?;
        let mut folders: Vec<RemoteFolder> = names
            .iter()
            .map(|name| {
                let raw_name = name.name().to_owned();
                let attributes = name.attributes();
                RemoteFolder {
                    name: crate::utf7::decode(&raw_name).unwrap_or_else(|_| raw_name.clone()),
                    delimiter: name.delimiter().map(str::to_owned),
                    role: role_of(&raw_name, attributes),
                    selectable: !attributes
                        .iter()
                        .any(|a| matches!(a, NameAttribute::NoSelect)),
                    raw_name,
                }
            })
            .collect();
        assign_roles_by_name(&mut folders);
        Ok(folders)
    }

    /// Selects a mailbox (with CONDSTORE when available).
    pub async fn select(&mut self, raw_name: &str) -> Result<Selected, ImapError> {
        let mailbox = if self.condstore() {
            timed(self.session.select_condstore(raw_name), "SELECT").await?
        } else {
            timed(self.session.select(raw_name), "SELECT").await?
        };
        self.drain_unsolicited();
        Ok(Selected {
            uid_validity: mailbox.uid_validity.unwrap_or(0),
            uid_next: mailbox.uid_next.unwrap_or(0),
            exists: mailbox.exists,
            highest_modseq: mailbox.highest_modseq,
        })
    }

    /// Fetches list-view data for the UIDs in `set` ("1:*", "500:*"),
    /// calling `each` per message as it arrives so that memory stays flat
    /// for large folders.
    pub async fn fetch_envelopes(
        &mut self,
        set: &str,
        mut each: impl FnMut(RemoteEnvelope),
    ) -> Result<usize, ImapError> {
        let modseq = if self.condstore() { " MODSEQ" } else { "" };
        let query = format!(
            "(UID FLAGS INTERNALDATE RFC822.SIZE{modseq} BODY.PEEK[HEADER.FIELDS ({ENVELOPE_FIELDS})])"
        );
        let mut stream = timed(self.session.uid_fetch(set, &query), "UID FETCH").await?;
        let mut count = 0;
        while let Some(fetch) = next_item(&mut stream, "UID FETCH").await? {
            let Some(uid) = fetch.uid else { continue };
            each(RemoteEnvelope {
                uid,
                flags: fetch.flags().map(|f| flag_atom(&f)).collect(),
                size: fetch.size.unwrap_or(0),
                modseq: fetch.modseq,
                internal_date: fetch.internal_date().map(|d| d.timestamp()),
                envelope: message::parse_envelope(fetch.header().unwrap_or_default()),
            });
            count += 1;
        }
        Ok(count)
    }

    /// Fetches flags. With `Some(modseq)` it fetches only those changed
    /// since then (CONDSTORE CHANGEDSINCE, whose MODSEQ must be positive)
    /// and, with QRESYNC, the UID ranges expunged since then. With `None` it
    /// fetches every message's flags, for servers without CONDSTORE.
    pub async fn fetch_flags(&mut self, since: Option<u64>) -> Result<Changes, ImapError> {
        let query = match since {
            Some(modseq) => {
                let vanished = if self.qresync { " VANISHED" } else { "" };
                format!("(UID FLAGS) (CHANGEDSINCE {}{vanished})", modseq.max(1))
            }
            None => "(UID FLAGS)".to_owned(),
        };
        let mut changes = Changes::default();
        {
            let mut stream =
                timed(self.session.uid_fetch("1:*", &query), "UID FETCH FLAGS").await?;
            while let Some(fetch) = next_item(&mut stream, "UID FETCH FLAGS").await? {
                if let Some(uid) = fetch.uid {
                    let flags = fetch.flags().map(|f| flag_atom(&f)).collect();
                    changes.flags.push((uid, flags, fetch.modseq));
                }
            }
        }
        changes.vanished = self.drain_unsolicited();
        Ok(changes)
    }

    /// Lists every UID in the selected mailbox.
    pub async fn all_uids(&mut self) -> Result<HashSet<u32>, ImapError> {
        timed(self.session.uid_search("ALL"), "UID SEARCH").await
    }

    /// Fetches the complete raw message without setting `\Seen`.
    pub async fn fetch_raw(&mut self, uid: u32) -> Result<Option<Vec<u8>>, ImapError> {
        let fetch = self.session.uid_fetch(uid.to_string(), "(UID BODY.PEEK[])");
        let mut stream = timed(fetch, "UID FETCH BODY").await?;
        let mut raw = None;
        while let Some(fetch) = next_item(&mut stream, "UID FETCH BODY").await? {
            if fetch.uid == Some(uid) {
                raw = fetch.body().map(<[u8]>::to_vec);
            }
        }
        Ok(raw)
    }

    /// Adds or removes one flag on one message.
    pub async fn set_flag(&mut self, uid: u32, flag: &str, on: bool) -> Result<(), ImapError> {
        let sign = if on { '+' } else { '-' };
        let query = format!("{sign}FLAGS.SILENT ({flag})");
        let stream = timed(self.session.uid_store(uid.to_string(), &query), "UID STORE").await?;
        let _: Vec<_> = timed(stream.try_collect(), "UID STORE").await?;
        Ok(())
    }

    /// Moves one message to another mailbox: MOVE (RFC 6851) when the
    /// server has it, otherwise COPY, `\\Deleted` and an expunge. Without
    /// UIDPLUS the expunge is a plain EXPUNGE, which also removes any other
    /// message already marked `\\Deleted` in the folder, as other clients
    /// without UIDPLUS do.
    pub async fn move_to(&mut self, uid: u32, target_raw: &str) -> Result<(), ImapError> {
        if self.has("MOVE") {
            return timed(self.session.uid_mv(uid.to_string(), target_raw), "UID MOVE").await;
        }
        timed(
            self.session.uid_copy(uid.to_string(), target_raw),
            "UID COPY",
        )
        .await?;
        self.set_flag(uid, "\\Deleted", true).await?;
        if self.has("UIDPLUS") {
            let stream = timed(self.session.uid_expunge(uid.to_string()), "UID EXPUNGE").await?;
            let _: Vec<_> = timed(stream.try_collect(), "UID EXPUNGE").await?;
        } else {
            let stream = timed(self.session.expunge(), "EXPUNGE").await?;
            let _: Vec<_> = timed(stream.try_collect(), "EXPUNGE").await?;
        }
        Ok(())
    }

    /// Appends a message to a mailbox with the given flags ("(\\Seen)").
    pub async fn append(
        &mut self,
        target_raw: &str,
        flags: Option<&str>,
        raw: &[u8],
    ) -> Result<(), ImapError> {
        timed(self.session.append(target_raw, flags, None, raw), "APPEND").await
    }

    /// Waits in IDLE until the server reports a change or `timeout`
    /// passes; returns whether something changed.
    pub async fn idle(self, timeout: Duration) -> Result<(Connection, bool), ImapError> {
        let Connection {
            session,
            capabilities,
            qresync,
        } = self;
        let mut handle = session.idle();
        timed(handle.init(), "IDLE").await?;
        let (wait, _stop) = handle.wait_with_timeout(timeout);
        let outcome = wait.await.map_err(command_error("IDLE"))?;
        let changed = matches!(
            outcome,
            async_imap::extensions::idle::IdleResponse::NewData(_)
        );
        let session = timed(handle.done(), "IDLE DONE").await?;
        Ok((
            Connection {
                session,
                capabilities,
                qresync,
            },
            changed,
        ))
    }

    /// Ends the session politely.
    pub async fn logout(mut self) {
        let _ = self.session.logout().await;
    }

    /// Empties the unsolicited-response channel, returning the UIDs of any
    /// VANISHED responses in it.
    fn drain_unsolicited(&mut self) -> Vec<(u32, u32)> {
        let mut vanished = Vec::new();
        while let Ok(response) = self.session.unsolicited_responses.try_recv() {
            if let UnsolicitedResponse::Other(data) = response
                && let Response::Vanished { uids, .. } = data.parsed()
            {
                // imap-proto keeps "9:3" as written, and RFC 3501 allows
                // either order, so the ends are sorted here.
                for range in uids {
                    let (a, b) = (*range.start(), *range.end());
                    vanished.push((a.min(b), a.max(b)));
                }
            }
        }
        vanished
    }
}

fn flag_atom(flag: &Flag<'_>) -> String {
    match flag {
        Flag::Seen => "\\Seen".to_owned(),
        Flag::Answered => "\\Answered".to_owned(),
        Flag::Flagged => "\\Flagged".to_owned(),
        Flag::Deleted => "\\Deleted".to_owned(),
        Flag::Draft => "\\Draft".to_owned(),
        Flag::Recent => "\\Recent".to_owned(),
        Flag::MayCreate => "\\*".to_owned(),
        Flag::Custom(name) => name.to_string(),
    }
}

fn role_of(raw_name: &str, attributes: &[NameAttribute<'_>]) -> Option<Role> {
    if raw_name.eq_ignore_ascii_case("INBOX") {
        return Some(Role::Inbox);
    }
    attributes.iter().find_map(|attribute| match attribute {
        NameAttribute::Drafts => Some(Role::Drafts),
        NameAttribute::Sent => Some(Role::Sent),
        NameAttribute::Archive => Some(Role::Archive),
        NameAttribute::Junk => Some(Role::Junk),
        NameAttribute::Trash => Some(Role::Trash),
        _ => None,
    })
}

/// Servers without SPECIAL-USE still name their folders conventionally;
/// a role is guessed from the name only when no folder has it already.
fn assign_roles_by_name(folders: &mut [RemoteFolder]) {
    const NAMES: [(Role, &[&str]); 5] = [
        (Role::Drafts, &["drafts", "draft"]),
        (
            Role::Sent,
            &["sent", "sent items", "sent messages", "sent mail"],
        ),
        (Role::Archive, &["archive", "archives"]),
        (Role::Junk, &["junk", "spam", "junk e-mail"]),
        (
            Role::Trash,
            &["trash", "deleted items", "deleted messages", "bin"],
        ),
    ];
    for (role, names) in NAMES {
        if folders.iter().any(|f| f.role == Some(role)) {
            continue;
        }
        if let Some(folder) = folders
            .iter_mut()
            .find(|f| f.role.is_none() && names.contains(&f.name.to_lowercase().as_str()))
        {
            folder.role = Some(role);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str, role: Option<Role>) -> RemoteFolder {
        RemoteFolder {
            raw_name: name.into(),
            name: name.into(),
            delimiter: Some("/".into()),
            role,
            selectable: true,
        }
    }

    #[test]
    fn role_guess_respects_special_use() {
        let mut folders = vec![folder("Sent", None), folder("Outgoing", Some(Role::Sent))];
        assign_roles_by_name(&mut folders);
        assert_eq!(folders[0].role, None);
        assert_eq!(folders[1].role, Some(Role::Sent));
    }

    #[test]
    fn role_guess_by_name() {
        let mut folders = vec![folder("Deleted Items", None), folder("Spam", None)];
        assign_roles_by_name(&mut folders);
        assert_eq!(folders[0].role, Some(Role::Trash));
        assert_eq!(folders[1].role, Some(Role::Junk));
    }

    #[test]
    fn role_round_trips() {
        for role in [
            Role::Inbox,
            Role::Drafts,
            Role::Sent,
            Role::Archive,
            Role::Junk,
            Role::Trash,
        ] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
    }
}
