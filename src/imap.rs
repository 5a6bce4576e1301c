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
        /// What was being done.
        operation: String,
        /// The server's or the library's text.
        reason: String,
    },
}

fn command_error(
    operation: impl Into<String>,
) -> impl FnOnce(async_imap::error::Error) -> ImapError {
    let operation = operation.into();
    move |e| ImapError::Command {
        operation,
        reason: e.to_string(),
    }
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
    /// UIDs reported as expunged (QRESYNC VANISHED).
    pub vanished: Vec<u32>,
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
        read_greeting(&mut client, server.port).await?;
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
        connection
            .session
            .run_command_and_check_ok("ENABLE QRESYNC")
            .await
            .map_err(command_error("ENABLE QRESYNC"))?;
        connection.qresync = true;
    }
    tracing::debug!(account = %account.id, qresync = connection.qresync, "IMAP logged in");
    Ok(connection)
}

async fn read_greeting<T>(client: &mut async_imap::Client<T>, port: u16) -> Result<(), ImapError>
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
        Err(_) => Err(NetError::ExpectsImplicitTls { port }.into()),
    }
}

/// Reads the plain-text greeting and negotiates STARTTLS; returns the TCP
/// stream ready for the TLS handshake.
async fn start_tls(tcp: TcpStream, host: &str, port: u16) -> Result<TcpStream, ImapError> {
    let mut client = async_imap::Client::new(tcp);
    read_greeting(&mut client, port).await?;
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
    /// Whether the server advertised a capability (upper case).
    pub fn has(&self, capability: &str) -> bool {
        self.capabilities.contains(capability)
    }

    /// Whether CONDSTORE is usable.
    pub fn condstore(&self) -> bool {
        self.has("CONDSTORE") || self.qresync
    }

    /// Whether QRESYNC was enabled.
    pub fn qresync(&self) -> bool {
        self.qresync
    }

    async fn refresh_capabilities(&mut self) -> Result<(), ImapError> {
        let capabilities = self
            .session
            .capabilities()
            .await
            .map_err(command_error("CAPABILITY"))?;
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
        let names: Vec<_> = self
            .session
            .list(Some(""), Some("*"))
            .await
            .map_err(command_error("LIST"))?
            .try_collect()
            .await
            .map_err(command_error("LIST"))?;
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
        let operation = "SELECT";
        let mailbox = if self.condstore() {
            self.session.select_condstore(raw_name).await
        } else {
            self.session.select(raw_name).await
        }
        .map_err(command_error(operation))?;
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
        let mut stream = self
            .session
            .uid_fetch(set, &query)
            .await
            .map_err(command_error("UID FETCH"))?;
        let mut count = 0;
        while let Some(fetch) = stream
            .try_next()
            .await
            .map_err(command_error("UID FETCH"))?
        {
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

    /// Fetches flag changes since `modseq` (CONDSTORE), and with QRESYNC
    /// the UIDs expunged since then.
    pub async fn changes_since(&mut self, modseq: u64) -> Result<Changes, ImapError> {
        let vanished = if self.qresync { " VANISHED" } else { "" };
        let query = format!("(UID FLAGS) (CHANGEDSINCE {modseq}{vanished})");
        let mut changes = Changes::default();
        {
            let mut stream = self
                .session
                .uid_fetch("1:*", &query)
                .await
                .map_err(command_error("UID FETCH CHANGEDSINCE"))?;
            while let Some(fetch) = stream
                .try_next()
                .await
                .map_err(command_error("UID FETCH CHANGEDSINCE"))?
            {
                if let Some(uid) = fetch.uid {
                    changes.flags.push((
                        uid,
                        fetch.flags().map(|f| flag_atom(&f)).collect(),
                        fetch.modseq,
                    ));
                }
            }
        }
        changes.vanished = self.drain_unsolicited();
        Ok(changes)
    }

    /// Every UID in the selected mailbox.
    pub async fn all_uids(&mut self) -> Result<HashSet<u32>, ImapError> {
        self.session
            .uid_search("ALL")
            .await
            .map_err(command_error("UID SEARCH"))
    }

    /// Fetches the complete raw message without setting `\Seen`.
    pub async fn fetch_raw(&mut self, uid: u32) -> Result<Option<Vec<u8>>, ImapError> {
        let mut stream = self
            .session
            .uid_fetch(uid.to_string(), "(UID BODY.PEEK[])")
            .await
            .map_err(command_error("UID FETCH BODY"))?;
        let mut raw = None;
        while let Some(fetch) = stream
            .try_next()
            .await
            .map_err(command_error("UID FETCH BODY"))?
        {
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
        let stream = self
            .session
            .uid_store(uid.to_string(), &query)
            .await
            .map_err(command_error("UID STORE"))?;
        let _: Vec<_> = stream
            .try_collect()
            .await
            .map_err(command_error("UID STORE"))?;
        Ok(())
    }

    /// Moves one message to another mailbox (MOVE, or COPY plus expunge).
    pub async fn move_to(&mut self, uid: u32, target_raw: &str) -> Result<(), ImapError> {
        if self.has("MOVE") {
            return self
                .session
                .uid_mv(uid.to_string(), target_raw)
                .await
                .map_err(command_error("UID MOVE"));
        }
        self.session
            .uid_copy(uid.to_string(), target_raw)
            .await
            .map_err(command_error("UID COPY"))?;
        self.set_flag(uid, "\\Deleted", true).await?;
        if self.has("UIDPLUS") {
            let stream = self
                .session
                .uid_expunge(uid.to_string())
                .await
                .map_err(command_error("UID EXPUNGE"))?;
            let _: Vec<_> = stream
                .try_collect()
                .await
                .map_err(command_error("UID EXPUNGE"))?;
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
        self.session
            .append(target_raw, flags, None, raw)
            .await
            .map_err(command_error("APPEND"))
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
        handle.init().await.map_err(command_error("IDLE"))?;
        let (wait, _stop) = handle.wait_with_timeout(timeout);
        let outcome = wait.await.map_err(command_error("IDLE"))?;
        let changed = matches!(
            outcome,
            async_imap::extensions::idle::IdleResponse::NewData(_)
        );
        let session = handle.done().await.map_err(command_error("IDLE DONE"))?;
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
    fn drain_unsolicited(&mut self) -> Vec<u32> {
        let mut vanished = Vec::new();
        while let Ok(response) = self.session.unsolicited_responses.try_recv() {
            if let UnsolicitedResponse::Other(data) = response
                && let Response::Vanished { uids, .. } = data.parsed()
            {
                for range in uids {
                    vanished.extend(range.clone());
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
