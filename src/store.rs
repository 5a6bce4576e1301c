//! The local store: folders, envelopes, flags, cached bodies, the outbox
//! and the audit log's tables (written by [`crate::audit`]), in one SQLite
//! database encrypted at rest with SQLCipher.
//!
//! The 256-bit database key is generated once per profile and kept in the
//! OS keyring ([`crate::secret::KeyringEntry::store_key`]); it never touches
//! the disk. Every method blocks on SQLite: call them from a blocking
//! thread (`tokio::task::spawn_blocking`), never from the UI thread.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use crate::account::{Config, Profile};
use crate::arrival::ArrivalSecurity;
use crate::assess::{MtaStsMode, StoredPolicy};
use crate::imap::{RemoteEnvelope, RemoteFolder, Role, Selected};
use crate::secret::{KeyringEntry, Secret, SecretError};

/// Errors from the local store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store key could not be read from or written to the keyring.
    #[error("cannot unlock the local mail store: {0}")]
    Key(#[from] SecretError),
    /// The key does not open the database.
    #[error(
        "cannot open the local mail store {path}: the key in the OS keyring does not match; \
         if the keyring was reset, move the file away and sync again"
    )]
    WrongKey {
        /// The database file.
        path: PathBuf,
    },
    /// The Message-ID was already sent from this profile.
    #[error("message {message_id} was already sent; give the new message its own Message-ID")]
    AlreadySent {
        /// The Message-ID.
        message_id: String,
    },
    /// The Message-ID belongs to a different message in the outbox.
    #[error(
        "the outbox already holds a different message with Message-ID {message_id}; \
         give the new message its own Message-ID, or discard the old one"
    )]
    DuplicateMessageId {
        /// The Message-ID.
        message_id: String,
    },
    /// The store exists but its key is gone from the keyring.
    #[error(
        "the key of the local mail store {path} is missing from the OS keyring; \
         move that file away and sync again (mail on the server is not affected; unsent \
         messages in its outbox are lost)"
    )]
    KeyLost {
        /// The database file.
        path: PathBuf,
    },
    /// No strong random numbers for the store key.
    #[error(
        "cannot create a key for the local mail store: the system random generator failed ({0})"
    )]
    Random(String),
    /// A message's arrival record could not be encoded or decoded.
    #[error("{0}")]
    ArrivalRecord(String),
    /// SQLite failed.
    #[error("local mail store failed while {operation}: {source}")]
    Sqlite {
        /// The operation that failed.
        operation: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
}

pub(crate) fn sql(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { operation, source }
}

/// A folder as kept locally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folder {
    /// Local id.
    pub id: i64,
    /// Name as the server sent it (modified UTF-7).
    pub raw_name: String,
    /// Decoded name for display.
    pub name: String,
    /// Hierarchy delimiter.
    pub delimiter: Option<String>,
    /// Special-use role.
    pub role: Option<Role>,
    /// Whether it can be selected.
    pub selectable: bool,
    /// Messages stored locally.
    pub total: u32,
    /// Of which without `\Seen`.
    pub unread: u32,
}

/// Sync state of a folder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FolderState {
    /// UIDVALIDITY at the last sync.
    pub uid_validity: u32,
    /// UIDNEXT at the last sync.
    pub uid_next: u32,
    /// HIGHESTMODSEQ at the last sync.
    pub highest_modseq: Option<u64>,
}

/// One row of the message list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListRow {
    /// UID in its folder.
    pub uid: u32,
    /// Sender for display.
    pub from: String,
    /// Subject.
    pub subject: String,
    /// Date as unix seconds.
    pub date: Option<i64>,
    /// `\Seen` is set.
    pub seen: bool,
    /// `\Flagged` is set.
    pub flagged: bool,
    /// `\Answered` is set.
    pub answered: bool,
    /// The message has attachments (from its Content-Type).
    pub has_attachments: bool,
}

/// State of an outgoing message. See [`crate::outbox`] for the transitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboxState {
    /// Waiting for submission.
    Queued,
    /// Submission started; if the app stops now, the outcome is unknown.
    Sending,
    /// The SMTP server accepted it; the Sent copy is not stored yet.
    Submitted,
    /// Accepted and copied to Sent.
    Done,
    /// Submission failed before the server accepted it; safe to retry.
    Failed,
    /// Submission was interrupted at a point where the server may have
    /// accepted it; resending needs the user's decision.
    Uncertain,
}

impl OutboxState {
    fn as_str(self) -> &'static str {
        match self {
            OutboxState::Queued => "queued",
            OutboxState::Sending => "sending",
            OutboxState::Submitted => "submitted",
            OutboxState::Done => "done",
            OutboxState::Failed => "failed",
            OutboxState::Uncertain => "uncertain",
        }
    }

    fn parse(value: &str) -> OutboxState {
        match value {
            "queued" => OutboxState::Queued,
            "sending" => OutboxState::Sending,
            "submitted" => OutboxState::Submitted,
            "done" => OutboxState::Done,
            "failed" => OutboxState::Failed,
            _ => OutboxState::Uncertain,
        }
    }
}

/// A message in the outbox.
#[derive(Clone, Debug)]
pub struct OutboxEntry {
    /// Local id.
    pub id: i64,
    /// Account id.
    pub account: String,
    /// The Message-ID header value.
    pub message_id: String,
    /// The complete message.
    pub raw: Vec<u8>,
    /// SMTP envelope sender.
    pub envelope_from: String,
    /// SMTP envelope recipients.
    pub recipients: Vec<String>,
    /// Its state.
    pub state: OutboxState,
    /// Submission attempts so far.
    pub attempts: u32,
    /// The last error, in words.
    pub last_error: Option<String>,
    /// Whether MAIL FROM carries REQUIRETLS (RFC 8689).
    pub require_tls: bool,
    /// Whether a copy goes to the Sent folder once submitted. Of the
    /// entries of a message sent per method group, only the first does.
    pub sent_copy: bool,
}

/// An S/MIME identity as stored: (private key as PKCS#8 DER, certificate
/// DER).
pub type StoredIdentity = (Vec<u8>, Vec<u8>);

/// The origin of an OpenPGP certificate and the user's decisions on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenpgpState {
    /// Primary key fingerprint, upper-case hex.
    pub fingerprint: String,
    /// "imported", "generated", "wkd" or "autocrypt".
    pub source: String,
    /// Whether the user marked the fingerprint as verified.
    pub verified: bool,
    /// The fingerprint of the key this one would replace, while the user
    /// has not accepted the change.
    pub replaces: Option<String>,
    /// When it was first stored, Unix seconds.
    pub added: i64,
}

/// A correspondent's Autocrypt state (Autocrypt Level 1 section 2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutocryptPeer {
    /// The correspondent's address, lower-case.
    pub address: String,
    /// The effective date of the newest message seen from them.
    pub last_seen: i64,
    /// The effective date of the newest message with an Autocrypt header.
    pub autocrypt_timestamp: i64,
    /// The fingerprint of the key from that header.
    pub fingerprint: String,
    /// Whether they asked for encryption by default (prefer-encrypt=mutual).
    pub prefer_encrypt: bool,
}

fn autocrypt_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AutocryptPeer> {
    Ok(AutocryptPeer {
        address: row.get(0)?,
        last_seen: row.get(1)?,
        autocrypt_timestamp: row.get(2)?,
        fingerprint: row.get(3)?,
        prefer_encrypt: row.get(4)?,
    })
}

/// The origin of a correspondent's S/MIME certificate in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertificateSource {
    /// The user imported it from a file.
    Imported,
    /// It signed a message that was read.
    Harvested,
}

impl CertificateSource {
    /// Returns the name stored in the database and shown by the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Imported => "imported",
            Self::Harvested => "harvested",
        }
    }

    fn parse(value: &str) -> Self {
        if value == "imported" {
            Self::Imported
        } else {
            Self::Harvested
        }
    }
}

/// A correspondent's S/MIME certificate as stored, one row per address
/// that the certificate names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCertificate {
    /// The address, in lower case.
    pub address: String,
    /// SHA-256 fingerprint of the certificate.
    pub fingerprint: String,
    /// The certificate as DER.
    pub certificate: Vec<u8>,
    /// The SMIMECapabilities last seen, as space-separated dotted OIDs;
    /// None when none were seen.
    pub capabilities: Option<String>,
    /// Its origin. "imported" replaces "harvested", never the reverse.
    pub source: CertificateSource,
    /// When it was first stored, in seconds since the Unix epoch.
    pub first_seen: i64,
    /// When it was last imported or seen in a signature.
    pub last_seen: i64,
}

/// The encrypted local store.
pub struct Store {
    connection: Mutex<Connection>,
    folder_locks: Mutex<std::collections::HashMap<i64, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS folder (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    raw_name TEXT NOT NULL,
    name TEXT NOT NULL,
    delimiter TEXT,
    role TEXT,
    selectable INTEGER NOT NULL,
    uid_validity INTEGER NOT NULL DEFAULT 0,
    uid_next INTEGER NOT NULL DEFAULT 0,
    highest_modseq INTEGER,
    UNIQUE (account, raw_name)
);
CREATE TABLE IF NOT EXISTS message (
    folder INTEGER NOT NULL REFERENCES folder(id) ON DELETE CASCADE,
    uid INTEGER NOT NULL,
    flags TEXT NOT NULL,
    seen INTEGER NOT NULL,
    flagged INTEGER NOT NULL,
    answered INTEGER NOT NULL,
    size INTEGER NOT NULL,
    modseq INTEGER,
    date INTEGER,
    sender TEXT NOT NULL,
    subject TEXT NOT NULL,
    recipients TEXT NOT NULL,
    message_id TEXT,
    has_attachments INTEGER NOT NULL,
    PRIMARY KEY (folder, uid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS message_by_date ON message (folder, date DESC, uid DESC);
CREATE TABLE IF NOT EXISTS body (
    folder INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    raw BLOB NOT NULL,
    PRIMARY KEY (folder, uid)
);
CREATE TABLE IF NOT EXISTS smime_identity (
    fingerprint TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    addresses TEXT NOT NULL,
    private_key BLOB NOT NULL,
    certificate BLOB NOT NULL,
    added INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS openpgp_key (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    fingerprints TEXT NOT NULL,
    data BLOB NOT NULL,
    added INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS openpgp_state (
    account TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    source TEXT NOT NULL,
    verified INTEGER NOT NULL DEFAULT 0,
    replaces TEXT,
    added INTEGER NOT NULL,
    PRIMARY KEY (account, fingerprint)
);
CREATE TABLE IF NOT EXISTS autocrypt_peer (
    account TEXT NOT NULL,
    address TEXT NOT NULL,
    last_seen INTEGER NOT NULL,
    autocrypt_timestamp INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    prefer_encrypt INTEGER NOT NULL,
    PRIMARY KEY (account, address)
);
CREATE TABLE IF NOT EXISTS trust_anchor (
    certificate BLOB PRIMARY KEY,
    added INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS smime_chain (
    fingerprint TEXT NOT NULL,
    position INTEGER NOT NULL,
    certificate BLOB NOT NULL,
    PRIMARY KEY (fingerprint, position)
);
CREATE TABLE IF NOT EXISTS smime_certificate (
    address TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    certificate BLOB NOT NULL,
    capabilities TEXT,
    source TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    PRIMARY KEY (address, fingerprint)
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    raw BLOB NOT NULL,
    envelope_from TEXT NOT NULL,
    recipients TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS mta_sts_policy (
    domain TEXT PRIMARY KEY,
    policy_id TEXT NOT NULL,
    mode TEXT NOT NULL,
    mx TEXT NOT NULL,
    max_age INTEGER NOT NULL,
    fetched_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY,
    entry TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    count INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_group (
    outbox INTEGER PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    sent_copy INTEGER NOT NULL,
    require_tls INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_audit_plan (
    outbox INTEGER PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
    plan TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS message_arrival (
    account TEXT NOT NULL,
    message_id TEXT NOT NULL,
    arrival TEXT NOT NULL,
    PRIMARY KEY (account, message_id)
);
CREATE TABLE IF NOT EXISTS portal_message (
    portal_id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    message_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    secrets TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS portal_event (
    account TEXT NOT NULL,
    seq INTEGER NOT NULL,
    portal_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (account, seq)
);
CREATE TABLE IF NOT EXISTS portal_passphrase (
    account TEXT NOT NULL,
    address TEXT NOT NULL,
    passphrase TEXT NOT NULL,
    PRIMARY KEY (account, address)
);
CREATE TABLE IF NOT EXISTS portal_cursor (
    account TEXT PRIMARY KEY,
    events INTEGER NOT NULL DEFAULT 0,
    replies INTEGER NOT NULL DEFAULT 0
);
";

impl Store {
    /// Opens the profile's store, creating the key in the keyring on first
    /// use. Blocks on the keyring and the disk.
    pub fn open_profile(profile: &Profile, config: &Config) -> Result<Store, StoreError> {
        let entry = KeyringEntry::store_key(&config.profile_id);
        let path = profile.store_path();
        let key = match entry.read() {
            Ok(key) => key,
            Err(SecretError::Missing { .. }) if !path.exists() => {
                let mut bytes = [0u8; 32];
                openssl::rand::rand_bytes(&mut bytes)
                    .map_err(|e| StoreError::Random(e.to_string()))?;
                let key = Secret::new(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
                entry.store(&key)?;
                key
            }
            Err(SecretError::Missing { .. }) => return Err(StoreError::KeyLost { path }),
            Err(e) => return Err(e.into()),
        };
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        Store::open(&path, &key)
    }

    /// Opens (or creates) a store file with a 64-hex-digit key.
    pub fn open(path: &Path, key: &Secret) -> Result<Store, StoreError> {
        let connection = Connection::open(path).map_err(sql("opening the database"))?;
        let hex = key.expose();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::WrongKey {
                path: path.to_path_buf(),
            });
        }
        connection
            .execute_batch(&format!("PRAGMA key = \"x'{hex}'\";"))
            .map_err(sql("setting the key"))?;
        if connection
            .query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
            .is_err()
        {
            return Err(StoreError::WrongKey {
                path: path.to_path_buf(),
            });
        }
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            )
            .map_err(sql("configuring the database"))?;
        // A second Wardmail process (a mailto: window, the command line)
        // may hold the write lock briefly; wait for it instead of failing.
        connection
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql("configuring the database"))?;
        connection
            .execute_batch(SCHEMA)
            .map_err(sql("creating tables"))?;
        Ok(Store {
            connection: Mutex::new(connection),
            folder_locks: Mutex::default(),
        })
    }

    /// Returns the lock that serialises syncs of one folder. Two syncs of
    /// the same folder on different connections (the full sync and the IDLE
    /// watcher) could otherwise delete each other's new messages.
    pub fn folder_lock(&self, folder: i64) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .folder_locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(folder).or_default().clone()
    }

    /// Locks the connection, for core modules that own their tables
    /// (`crate::audit`).
    pub(crate) fn db(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite itself consistent
        // (every write is in a transaction), so a poisoned lock is usable.
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces the folder list of an account: new folders are added,
    /// vanished ones deleted with their messages, known ones updated.
    pub fn save_folders(&self, account: &str, folders: &[RemoteFolder]) -> Result<(), StoreError> {
        let mut db = self.db();
        let tx = db.transaction().map_err(sql("saving folders"))?;
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO folder (account, raw_name, name, delimiter, role, selectable)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (account, raw_name) DO UPDATE SET
                       name = excluded.name, delimiter = excluded.delimiter,
                       role = excluded.role, selectable = excluded.selectable",
                )
                .map_err(sql("saving folders"))?;
            for folder in folders {
                upsert
                    .execute(params![
                        account,
                        folder.raw_name,
                        folder.name,
                        folder.delimiter,
                        folder.role.map(Role::as_str),
                        folder.selectable,
                    ])
                    .map_err(sql("saving folders"))?;
            }
        }
        let known: HashSet<&str> = folders.iter().map(|f| f.raw_name.as_str()).collect();
        let stored: Vec<(i64, String)> = {
            let mut statement = tx
                .prepare("SELECT id, raw_name FROM folder WHERE account = ?1")
                .map_err(sql("saving folders"))?;
            statement
                .query_map([account], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(sql("saving folders"))?
                .collect::<Result<_, _>>()
                .map_err(sql("saving folders"))?
        };
        for (id, raw_name) in stored {
            if !known.contains(raw_name.as_str()) {
                tx.execute("DELETE FROM body WHERE folder = ?1", [id])
                    .map_err(sql("saving folders"))?;
                tx.execute("DELETE FROM folder WHERE id = ?1", [id])
                    .map_err(sql("saving folders"))?;
            }
        }
        tx.commit().map_err(sql("saving folders"))
    }

    /// Lists the folders of an account with their message counts, special-use
    /// folders first (inbox, drafts, sent, archive, junk, trash), then the
    /// rest by name.
    pub fn folders(&self, account: &str) -> Result<Vec<Folder>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare_cached(
                "SELECT f.id, f.raw_name, f.name, f.delimiter, f.role, f.selectable,
                        (SELECT count(*) FROM message m WHERE m.folder = f.id),
                        (SELECT count(*) FROM message m WHERE m.folder = f.id AND m.seen = 0)
                 FROM folder f WHERE f.account = ?1",
            )
            .map_err(sql("listing folders"))?;
        let mut folders: Vec<Folder> = statement
            .query_map([account], |row| {
                Ok(Folder {
                    id: row.get(0)?,
                    raw_name: row.get(1)?,
                    name: row.get(2)?,
                    delimiter: row.get(3)?,
                    role: row
                        .get::<_, Option<String>>(4)?
                        .as_deref()
                        .and_then(Role::parse),
                    selectable: row.get(5)?,
                    total: row.get(6)?,
                    unread: row.get(7)?,
                })
            })
            .map_err(sql("listing folders"))?
            .collect::<Result<_, _>>()
            .map_err(sql("listing folders"))?;
        folders.sort_by(|a, b| {
            let rank = |f: &Folder| f.role.map(|r| r as u8).unwrap_or(u8::MAX);
            rank(a).cmp(&rank(b)).then_with(|| a.name.cmp(&b.name))
        });
        Ok(folders)
    }

    /// Reads the sync state of a folder.
    pub fn folder_state(&self, folder: i64) -> Result<FolderState, StoreError> {
        self.db()
            .query_row(
                "SELECT uid_validity, uid_next, highest_modseq FROM folder WHERE id = ?1",
                [folder],
                |row| {
                    Ok(FolderState {
                        uid_validity: row.get(0)?,
                        uid_next: row.get(1)?,
                        highest_modseq: row.get::<_, Option<i64>>(2)?.map(|m| m as u64),
                    })
                },
            )
            .map_err(sql("reading folder state"))
    }

    /// Records the state reached by a sync.
    pub fn set_folder_state(&self, folder: i64, selected: &Selected) -> Result<(), StoreError> {
        self.db()
            .execute(
                "UPDATE folder SET uid_validity = ?2, uid_next = ?3, highest_modseq = ?4 WHERE id = ?1",
                params![
                    folder,
                    selected.uid_validity,
                    selected.uid_next,
                    selected.highest_modseq.map(|m| m as i64)
                ],
            )
            .map(drop)
            .map_err(sql("saving folder state"))
    }

    /// Forgets every message of a folder (after a UIDVALIDITY change).
    pub fn clear_folder(&self, folder: i64) -> Result<(), StoreError> {
        let mut db = self.db();
        let tx = db.transaction().map_err(sql("clearing a folder"))?;
        tx.execute("DELETE FROM message WHERE folder = ?1", [folder])
            .map_err(sql("clearing a folder"))?;
        tx.execute("DELETE FROM body WHERE folder = ?1", [folder])
            .map_err(sql("clearing a folder"))?;
        tx.execute(
            "UPDATE folder SET uid_validity = 0, uid_next = 0, highest_modseq = NULL WHERE id = ?1",
            [folder],
        )
        .map_err(sql("clearing a folder"))?;
        tx.commit().map_err(sql("clearing a folder"))
    }

    /// Inserts or replaces envelopes in one transaction.
    pub fn save_envelopes(
        &self,
        folder: i64,
        envelopes: &[RemoteEnvelope],
    ) -> Result<(), StoreError> {
        let mut db = self.db();
        let tx = db.transaction().map_err(sql("saving envelopes"))?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO message (folder, uid, flags, seen, flagged, answered, size,
                       modseq, date, sender, subject, recipients, message_id, has_attachments)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                )
                .map_err(sql("saving envelopes"))?;
            for item in envelopes {
                let envelope = &item.envelope;
                let flags = item.flags.join(" ");
                let sender = envelope
                    .from
                    .first()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                let recipients: Vec<String> = envelope
                    .to
                    .iter()
                    .chain(&envelope.cc)
                    .map(|a| a.email.clone())
                    .collect();
                insert
                    .execute(params![
                        folder,
                        item.uid,
                        flags,
                        has_flag(&item.flags, "\\Seen"),
                        has_flag(&item.flags, "\\Flagged"),
                        has_flag(&item.flags, "\\Answered"),
                        item.size,
                        item.modseq.map(|m| m as i64),
                        envelope.date.or(item.internal_date),
                        sender,
                        envelope.subject,
                        recipients.join(", "),
                        envelope.message_id,
                        envelope.has_attachments,
                    ])
                    .map_err(sql("saving envelopes"))?;
            }
        }
        tx.commit().map_err(sql("saving envelopes"))
    }

    /// Applies flag changes reported by the server.
    pub fn save_flags(
        &self,
        folder: i64,
        changes: &[(u32, Vec<String>, Option<u64>)],
    ) -> Result<(), StoreError> {
        let mut db = self.db();
        let tx = db.transaction().map_err(sql("saving flags"))?;
        {
            let mut update = tx
                .prepare_cached(
                    "UPDATE message SET flags = ?3, seen = ?4, flagged = ?5, answered = ?6,
                       modseq = coalesce(?7, modseq)
                     WHERE folder = ?1 AND uid = ?2",
                )
                .map_err(sql("saving flags"))?;
            for (uid, flags, modseq) in changes {
                update
                    .execute(params![
                        folder,
                        uid,
                        flags.join(" "),
                        has_flag(flags, "\\Seen"),
                        has_flag(flags, "\\Flagged"),
                        has_flag(flags, "\\Answered"),
                        modseq.map(|m| m as i64),
                    ])
                    .map_err(sql("saving flags"))?;
            }
        }
        tx.commit().map_err(sql("saving flags"))
    }

    /// Sets or clears one flag locally, ahead of the server confirming it.
    pub fn set_flag(&self, folder: i64, uid: u32, flag: &str, on: bool) -> Result<(), StoreError> {
        let current: Option<String> = self
            .db()
            .query_row(
                "SELECT flags FROM message WHERE folder = ?1 AND uid = ?2",
                params![folder, uid],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("reading flags"))?;
        let Some(current) = current else {
            return Ok(());
        };
        let mut flags: Vec<String> = current
            .split_whitespace()
            .filter(|f| !f.eq_ignore_ascii_case(flag))
            .map(str::to_owned)
            .collect();
        if on {
            flags.push(flag.to_owned());
        }
        self.save_flags(folder, &[(uid, flags, None)])
    }

    /// Deletes messages by UID.
    pub fn delete_messages(&self, folder: i64, uids: &[u32]) -> Result<(), StoreError> {
        let mut db = self.db();
        let tx = db.transaction().map_err(sql("deleting messages"))?;
        for uid in uids {
            tx.execute(
                "DELETE FROM message WHERE folder = ?1 AND uid = ?2",
                params![folder, uid],
            )
            .map_err(sql("deleting messages"))?;
            tx.execute(
                "DELETE FROM body WHERE folder = ?1 AND uid = ?2",
                params![folder, uid],
            )
            .map_err(sql("deleting messages"))?;
        }
        tx.commit().map_err(sql("deleting messages"))
    }

    /// Lists every UID stored for a folder.
    pub fn uids(&self, folder: i64) -> Result<HashSet<u32>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare_cached("SELECT uid FROM message WHERE folder = ?1")
            .map_err(sql("listing UIDs"))?;
        statement
            .query_map([folder], |row| row.get(0))
            .map_err(sql("listing UIDs"))?
            .collect::<Result<_, _>>()
            .map_err(sql("listing UIDs"))
    }

    /// Number of messages stored for a folder.
    pub fn count(&self, folder: i64) -> Result<u32, StoreError> {
        self.db()
            .query_row(
                "SELECT count(*) FROM message WHERE folder = ?1",
                [folder],
                |row| row.get(0),
            )
            .map_err(sql("counting messages"))
    }

    /// Reads a window of the message list, newest first.
    pub fn list(&self, folder: i64, offset: u32, limit: u32) -> Result<Vec<ListRow>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare_cached(
                "SELECT uid, sender, subject, date, seen, flagged, answered, has_attachments
                 FROM message WHERE folder = ?1 ORDER BY date DESC, uid DESC LIMIT ?2 OFFSET ?3",
            )
            .map_err(sql("listing messages"))?;
        statement
            .query_map(params![folder, limit, offset], |row| {
                Ok(ListRow {
                    uid: row.get(0)?,
                    from: row.get(1)?,
                    subject: row.get(2)?,
                    date: row.get(3)?,
                    seen: row.get(4)?,
                    flagged: row.get(5)?,
                    answered: row.get(6)?,
                    has_attachments: row.get(7)?,
                })
            })
            .map_err(sql("listing messages"))?
            .collect::<Result<_, _>>()
            .map_err(sql("listing messages"))
    }

    /// Reads the cached raw message, if it was fetched before.
    pub fn body(&self, folder: i64, uid: u32) -> Result<Option<Vec<u8>>, StoreError> {
        self.db()
            .query_row(
                "SELECT raw FROM body WHERE folder = ?1 AND uid = ?2",
                params![folder, uid],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("reading a message"))
    }

    /// Caches a raw message.
    pub fn save_body(&self, folder: i64, uid: u32, raw: &[u8]) -> Result<(), StoreError> {
        self.db()
            .execute(
                "INSERT OR REPLACE INTO body (folder, uid, raw) VALUES (?1, ?2, ?3)",
                params![folder, uid, raw],
            )
            .map(drop)
            .map_err(sql("saving a message"))
    }

    /// Adds a message to the outbox in state `Queued`. Adding the same
    /// message again (same account, bytes and recipients) before it is done
    /// returns the existing entry's id. Any other reuse of its Message-ID is
    /// an error, so a changed message is never dropped in favour of an old
    /// one.
    pub fn outbox_add(
        &self,
        account: &str,
        message_id: &str,
        raw: &[u8],
        envelope_from: &str,
        recipients: &[String],
    ) -> Result<i64, StoreError> {
        let recipients = recipients.join("\n");
        let mut db = self.db();
        let tx = db.transaction().map_err(sql("queueing a message"))?;
        let existing: Option<(i64, String, Vec<u8>, String, String)> = tx
            .query_row(
                "SELECT id, account, raw, recipients, state FROM outbox WHERE message_id = ?1",
                [message_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
            .map_err(sql("queueing a message"))?;
        let id = match existing {
            Some((_, _, _, _, state)) if OutboxState::parse(&state) == OutboxState::Done => {
                return Err(StoreError::AlreadySent {
                    message_id: message_id.to_owned(),
                });
            }
            Some((id, known_account, known_raw, known_recipients, _))
                if known_account == account
                    && known_raw == raw
                    && known_recipients == recipients =>
            {
                id
            }
            Some(_) => {
                return Err(StoreError::DuplicateMessageId {
                    message_id: message_id.to_owned(),
                });
            }
            None => {
                tx.execute(
                    "INSERT INTO outbox (account, message_id, raw, envelope_from, recipients, state, created, updated)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?6)",
                    params![account, message_id, raw, envelope_from, recipients, now()],
                )
                .map_err(sql("queueing a message"))?;
                tx.last_insert_rowid()
            }
        };
        tx.commit().map_err(sql("queueing a message"))?;
        Ok(id)
    }

    /// Records that outbox entry `id` is the copy for one method group of
    /// the message `message_id` (its outbox key then differs, because that
    /// column must be unique): its position among the groups, whether it
    /// goes to Sent, and whether it is submitted with REQUIRETLS.
    pub fn outbox_set_group(
        &self,
        id: i64,
        message_id: &str,
        position: usize,
        sent_copy: bool,
        require_tls: bool,
    ) -> Result<(), StoreError> {
        self.db()
            .execute(
                "INSERT INTO outbox_group (outbox, message_id, position, sent_copy, require_tls)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (outbox) DO UPDATE SET message_id = excluded.message_id,
                     position = excluded.position, sent_copy = excluded.sent_copy,
                     require_tls = excluded.require_tls",
                params![id, message_id, position as i64, sent_copy, require_tls],
            )
            .map(drop)
            .map_err(sql("saving a method group"))
    }

    /// Moves an outbox entry to `to` only if it is in one of the `from`
    /// states, counting an attempt when it enters `Sending`. Returns whether
    /// it moved; two processes retrying the same entry cannot both claim it.
    pub fn outbox_transition(
        &self,
        id: i64,
        from: &[OutboxState],
        to: OutboxState,
    ) -> Result<bool, StoreError> {
        let attempt = i64::from(to == OutboxState::Sending);
        // The state names are fixed identifiers from `as_str`, not input.
        let allowed: Vec<String> = from
            .iter()
            .map(|state| format!("'{}'", state.as_str()))
            .collect();
        let statement = format!(
            "UPDATE outbox SET state = ?2, last_error = NULL, attempts = attempts + ?3, updated = ?4
             WHERE id = ?1 AND state IN ({})",
            allowed.join(", ")
        );
        let changed = self
            .db()
            .execute(&statement, params![id, to.as_str(), attempt, now()])
            .map_err(sql("updating the outbox"))?;
        Ok(changed == 1)
    }

    /// Moves an outbox entry to a new state, counting an attempt when it
    /// enters `Sending`.
    pub fn outbox_set_state(
        &self,
        id: i64,
        state: OutboxState,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let attempt = i64::from(state == OutboxState::Sending);
        self.db()
            .execute(
                "UPDATE outbox SET state = ?2, last_error = ?3, attempts = attempts + ?4, updated = ?5 WHERE id = ?1",
                params![id, state.as_str(), error, attempt, now()],
            )
            .map(drop)
            .map_err(sql("updating the outbox"))
    }

    /// Saves an S/MIME identity (private key as PKCS#8 DER and certificate
    /// DER). The store is encrypted, so the key is never on disk in clear.
    pub fn save_smime_identity(
        &self,
        account: &str,
        fingerprint: &str,
        addresses: &[String],
        private_key: &[u8],
        certificate: &[u8],
    ) -> Result<(), StoreError> {
        self.db()
            .execute(
                "INSERT OR REPLACE INTO smime_identity
                   (fingerprint, account, addresses, private_key, certificate, added)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    fingerprint,
                    account,
                    addresses.join(" "),
                    private_key,
                    certificate,
                    now()
                ],
            )
            .map(drop)
            .map_err(sql("saving an S/MIME identity"))
    }

    /// Reads the S/MIME identities of an account.
    pub fn smime_identities(&self, account: &str) -> Result<Vec<StoredIdentity>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare_cached(
                "SELECT private_key, certificate FROM smime_identity WHERE account = ?1 ORDER BY added",
            )
            .map_err(sql("reading S/MIME identities"))?;
        statement
            .query_map([account], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(sql("reading S/MIME identities"))?
            .collect::<Result<_, _>>()
            .map_err(sql("reading S/MIME identities"))
    }

    /// Saves imported OpenPGP data (certificates and secret keys, armored
    /// or binary, exactly as imported) with the fingerprints it contains.
    pub fn save_openpgp(
        &self,
        account: &str,
        fingerprints: &[String],
        data: &[u8],
    ) -> Result<(), StoreError> {
        self.db()
            .execute(
                "INSERT INTO openpgp_key (account, fingerprints, data, added) VALUES (?1, ?2, ?3, ?4)",
                params![account, fingerprints.join(" "), data, now()],
            )
            .map(drop)
            .map_err(sql("saving an OpenPGP key"))
    }

    /// Reads the OpenPGP data imported for an account, oldest first.
    pub fn openpgp_data(&self, account: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare_cached("SELECT data FROM openpgp_key WHERE account = ?1 ORDER BY id")
            .map_err(sql("reading OpenPGP keys"))?;
        statement
            .query_map([account], |row| row.get(0))
            .map_err(sql("reading OpenPGP keys"))?
            .collect::<Result<_, _>>()
            .map_err(sql("reading OpenPGP keys"))
    }

    /// Records where an OpenPGP certificate came from, unless it is known
    /// already. `replaces` names the fingerprint of another certificate
    /// for the same address that was in use: until the user accepts the
    /// change, the new one is not used.
    pub fn add_openpgp_state(
        &self,
        account: &str,
        fingerprint: &str,
        source: &str,
        replaces: Option<&str>,
    ) -> Result<(), StoreError> {
        self.db()
            .execute(
                "INSERT OR IGNORE INTO openpgp_state (account, fingerprint, source, replaces, added)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![account, fingerprint, source, replaces, now()],
            )
            .map(drop)
            .map_err(sql("saving an OpenPGP key's state"))
    }

    /// Marks a certificate as verified by the user (fingerprint compared
    /// over a trusted channel), which also accepts a key change.
    pub fn verify_openpgp(&self, account: &str, fingerprint: &str) -> Result<bool, StoreError> {
        self.db()
            .execute(
                "UPDATE openpgp_state SET verified = 1, replaces = NULL
                 WHERE account = ?1 AND fingerprint = ?2",
                params![account, fingerprint],
            )
            .map(|changed| changed > 0)
            .map_err(sql("marking an OpenPGP key verified"))
    }

    /// Accepts a changed key without marking it verified.
    pub fn accept_openpgp(&self, account: &str, fingerprint: &str) -> Result<bool, StoreError> {
        self.db()
            .execute(
                "UPDATE openpgp_state SET replaces = NULL WHERE account = ?1 AND fingerprint = ?2",
                params![account, fingerprint],
            )
            .map(|changed| changed > 0)
            .map_err(sql("accepting an OpenPGP key"))
    }

    /// Reads the state of every OpenPGP certificate of an account.
    pub fn openpgp_states(&self, account: &str) -> Result<Vec<OpenpgpState>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare_cached(
                "SELECT fingerprint, source, verified, replaces, added FROM openpgp_state
                 WHERE account = ?1",
            )
            .map_err(sql("reading OpenPGP key states"))?;
        statement
            .query_map([account], |row| {
                Ok(OpenpgpState {
                    fingerprint: row.get(0)?,
                    source: row.get(1)?,
                    verified: row.get(2)?,
                    replaces: row.get(3)?,
                    added: row.get(4)?,
                })
            })
            .map_err(sql("reading OpenPGP key states"))?
            .collect::<Result<_, _>>()
            .map_err(sql("reading OpenPGP key states"))
    }

    /// Reads a correspondent's Autocrypt state (Autocrypt Level 1 section
    /// 2.3), if any.
    pub fn autocrypt_peer(
        &self,
        account: &str,
        address: &str,
    ) -> Result<Option<AutocryptPeer>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare_cached(
                "SELECT address, last_seen, autocrypt_timestamp, fingerprint, prefer_encrypt
                 FROM autocrypt_peer WHERE account = ?1 AND address = ?2",
            )
            .map_err(sql("reading Autocrypt state"))?;
        let mut rows = statement
            .query_map(params![account, address], autocrypt_row)
            .map_err(sql("reading Autocrypt state"))?;
        rows.next()
            .transpose()
            .map_err(sql("reading Autocrypt state"))
    }

    /// Reads every correspondent's Autocrypt state.
    pub fn autocrypt_peers(&self, account: &str) -> Result<Vec<AutocryptPeer>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare_cached(
                "SELECT address, last_seen, autocrypt_timestamp, fingerprint, prefer_encrypt
                 FROM autocrypt_peer WHERE account = ?1 ORDER BY address",
            )
            .map_err(sql("reading Autocrypt state"))?;
        statement
            .query_map([account], autocrypt_row)
            .map_err(sql("reading Autocrypt state"))?
            .collect::<Result<_, _>>()
            .map_err(sql("reading Autocrypt state"))
    }

    /// Saves how the message with `message_id` arrived, as JSON, replacing
    /// an earlier record of the same message.
    pub fn save_arrival(
        &self,
        account: &str,
        message_id: &str,
        arrival: &ArrivalSecurity,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(arrival).map_err(|error| {
            StoreError::ArrivalRecord(format!("cannot encode the arrival record: {error}"))
        })?;
        self.db()
            .execute(
                "INSERT OR REPLACE INTO message_arrival (account, message_id, arrival)
                 VALUES (?1, ?2, ?3)",
                params![account, message_id, json],
            )
            .map(drop)
            .map_err(sql("saving arrival security"))
    }

    /// Reads how the message with `message_id` arrived, if it was inspected.
    pub fn arrival(
        &self,
        account: &str,
        message_id: &str,
    ) -> Result<Option<ArrivalSecurity>, StoreError> {
        let json: Option<String> = self
            .db()
            .query_row(
                "SELECT arrival FROM message_arrival WHERE account = ?1 AND message_id = ?2",
                params![account, message_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(sql("reading arrival security"))?;
        json.map(|json| {
            serde_json::from_str(&json).map_err(|error| {
                StoreError::ArrivalRecord(format!(
                    "cannot read the arrival record of message {message_id:?}: {error}; \
                     inspect the message again to rewrite it"
                ))
            })
        })
        .transpose()
    }

    /// Saves a correspondent's Autocrypt state.
    pub fn save_autocrypt_peer(
        &self,
        account: &str,
        peer: &AutocryptPeer,
    ) -> Result<(), StoreError> {
        self.db()
            .execute(
                "INSERT OR REPLACE INTO autocrypt_peer
                   (account, address, last_seen, autocrypt_timestamp, fingerprint, prefer_encrypt)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    account,
                    peer.address,
                    peer.last_seen,
                    peer.autocrypt_timestamp,
                    peer.fingerprint,
                    peer.prefer_encrypt
                ],
            )
            .map(drop)
            .map_err(sql("saving Autocrypt state"))
    }

    /// Reads the cached MTA-STS policy of `domain` (lower-case), expired or
    /// not.
    pub fn mta_sts_policy(&self, domain: &str) -> Result<Option<StoredPolicy>, StoreError> {
        let row = self
            .db()
            .query_row(
                "SELECT policy_id, mode, mx, max_age, fetched_at FROM mta_sts_policy
                 WHERE domain = ?1",
                [domain],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, i64>(4)?,
                    ))
                },
            )
            .optional()
            .map_err(sql("reading an MTA-STS policy"))?;
        // A row with an unknown mode cannot come from this version; it is
        // treated as absent, so the policy is fetched again.
        Ok(row.and_then(|(id, mode, mx, max_age, fetched_at)| {
            let mode = match mode.as_str() {
                "enforce" => MtaStsMode::Enforce,
                "testing" => MtaStsMode::Testing,
                "none" => MtaStsMode::None,
                _ => return None,
            };
            Some(StoredPolicy {
                domain: domain.to_owned(),
                id,
                mode,
                mx: mx.lines().map(str::to_owned).collect(),
                max_age: max_age.max(0) as u64,
                fetched_at,
            })
        }))
    }

    /// Stores an MTA-STS policy, replacing the domain's previous one.
    pub fn save_mta_sts_policy(&self, policy: &StoredPolicy) -> Result<(), StoreError> {
        self.db()
            .execute(
                "INSERT OR REPLACE INTO mta_sts_policy
                   (domain, policy_id, mode, mx, max_age, fetched_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    policy.domain,
                    policy.id,
                    policy.mode.as_str(),
                    policy.mx.join("\n"),
                    policy.max_age as i64,
                    policy.fetched_at
                ],
            )
            .map(drop)
            .map_err(sql("saving an MTA-STS policy"))
    }

    /// Adds a CA certificate (DER) that the user chose to trust.
    pub fn save_trust_anchor(&self, certificate: &[u8]) -> Result<(), StoreError> {
        self.db()
            .execute(
                "INSERT OR IGNORE INTO trust_anchor (certificate, added) VALUES (?1, ?2)",
                params![certificate, now()],
            )
            .map(drop)
            .map_err(sql("saving a CA certificate"))
    }

    /// Reads the CA certificates (DER) the user chose to trust.
    pub fn trust_anchors(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare_cached("SELECT certificate FROM trust_anchor ORDER BY added")
            .map_err(sql("reading CA certificates"))?;
        statement
            .query_map([], |row| row.get(0))
            .map_err(sql("reading CA certificates"))?
            .collect::<Result<_, _>>()
            .map_err(sql("reading CA certificates"))
    }

    /// Replaces the chain certificates (DER, in order) kept for the
    /// certificate with `fingerprint`, an identity's or a correspondent's.
    pub fn save_smime_chain(
        &self,
        fingerprint: &str,
        certificates: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        let mut db = self.db();
        let transaction = db
            .transaction()
            .map_err(sql("saving S/MIME chain certificates"))?;
        transaction
            .execute(
                "DELETE FROM smime_chain WHERE fingerprint = ?1",
                [fingerprint],
            )
            .map_err(sql("saving S/MIME chain certificates"))?;
        for (position, certificate) in certificates.iter().enumerate() {
            transaction
                .execute(
                    "INSERT INTO smime_chain (fingerprint, position, certificate) VALUES (?1, ?2, ?3)",
                    params![fingerprint, position as i64, certificate],
                )
                .map_err(sql("saving S/MIME chain certificates"))?;
        }
        transaction
            .commit()
            .map_err(sql("saving S/MIME chain certificates"))
    }

    /// Reads the chain certificates (DER) kept for a certificate.
    /// Returns a value that changes whenever the account's S/MIME
    /// identities, their chains or the trusted CAs change, so that parsed
    /// copies of them can be reused until then.
    pub fn smime_generation(&self, account: &str) -> Result<[i64; 5], StoreError> {
        self.db()
            .query_row(
                "SELECT
                   (SELECT count(*) FROM smime_identity WHERE account = ?1),
                   (SELECT coalesce(max(added), 0) FROM smime_identity WHERE account = ?1),
                   (SELECT count(*) FROM smime_chain),
                   (SELECT count(*) FROM trust_anchor),
                   (SELECT coalesce(max(added), 0) FROM trust_anchor)",
                [account],
                |row| {
                    Ok([
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                    ])
                },
            )
            .map_err(sql("reading the S/MIME key generation"))
    }

    /// Reads the chain certificates stored with an identity, in order.
    pub fn smime_chain(&self, fingerprint: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare_cached(
                "SELECT certificate FROM smime_chain WHERE fingerprint = ?1 ORDER BY position",
            )
            .map_err(sql("reading S/MIME chain certificates"))?;
        statement
            .query_map([fingerprint], |row| row.get(0))
            .map_err(sql("reading S/MIME chain certificates"))?
            .collect::<Result<_, _>>()
            .map_err(sql("reading S/MIME chain certificates"))
    }

    /// Stores a correspondent's certificate for one address, or updates
    /// the row when it is already known: the last-seen time, the
    /// capabilities when `capabilities` is Some, and the source when it
    /// is now imported.
    ///
    /// NOTE: last-seen is the time the message was read, not its date, so
    /// opening an old message replaces newer capabilities with its own.
    /// Storing the signingTime with the row would lift this.
    pub fn save_smime_certificate(
        &self,
        address: &str,
        fingerprint: &str,
        certificate: &[u8],
        capabilities: Option<&str>,
        source: CertificateSource,
    ) -> Result<(), StoreError> {
        let now = now();
        self.db()
            .execute(
                "INSERT INTO smime_certificate
                   (address, fingerprint, certificate, capabilities, source, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                 ON CONFLICT (address, fingerprint) DO UPDATE SET
                   last_seen = excluded.last_seen,
                   capabilities = coalesce(excluded.capabilities, capabilities),
                   source = CASE WHEN excluded.source = 'imported' THEN 'imported' ELSE source END",
                params![
                    address.to_lowercase(),
                    fingerprint,
                    certificate,
                    capabilities,
                    source.as_str(),
                    now
                ],
            )
            .map(drop)
            .map_err(sql("saving an S/MIME certificate"))
    }

    /// Reads correspondents' certificates, for one address (any case) or
    /// all when `address` is None, most recently seen first.
    pub fn smime_certificates(
        &self,
        address: Option<&str>,
    ) -> Result<Vec<StoredCertificate>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare_cached(
                "SELECT address, fingerprint, certificate, capabilities, source, first_seen, last_seen
                 FROM smime_certificate WHERE ?1 IS NULL OR address = ?1
                 ORDER BY last_seen DESC, first_seen DESC, address",
            )
            .map_err(sql("reading S/MIME certificates"))?;
        statement
            .query_map([address.map(str::to_lowercase)], |row| {
                Ok(StoredCertificate {
                    address: row.get(0)?,
                    fingerprint: row.get(1)?,
                    certificate: row.get(2)?,
                    capabilities: row.get(3)?,
                    source: CertificateSource::parse(&row.get::<_, String>(4)?),
                    first_seen: row.get(5)?,
                    last_seen: row.get(6)?,
                })
            })
            .map_err(sql("reading S/MIME certificates"))?
            .collect::<Result<_, _>>()
            .map_err(sql("reading S/MIME certificates"))
    }

    /// Removes an outbox entry for good (the user discarded it).
    pub fn outbox_remove(&self, id: i64) -> Result<(), StoreError> {
        self.db()
            .execute("DELETE FROM outbox WHERE id = ?1", [id])
            .map(drop)
            .map_err(sql("removing a message from the outbox"))
    }

    /// Outbox entries of an account that are not done, oldest first.
    pub fn outbox(&self, account: &str) -> Result<Vec<OutboxEntry>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare_cached(
                "SELECT o.id, o.account, COALESCE(g.message_id, o.message_id), o.raw,
                        o.envelope_from, o.recipients, o.state, o.attempts, o.last_error,
                        COALESCE(g.require_tls, 0), COALESCE(g.sent_copy, 1)
                 FROM outbox o LEFT JOIN outbox_group g ON g.outbox = o.id
                 WHERE o.account = ?1 AND o.state != 'done' ORDER BY o.id",
            )
            .map_err(sql("reading the outbox"))?;
        statement
            .query_map([account], |row| {
                Ok(OutboxEntry {
                    id: row.get(0)?,
                    account: row.get(1)?,
                    message_id: row.get(2)?,
                    raw: row.get(3)?,
                    envelope_from: row.get(4)?,
                    recipients: row
                        .get::<_, String>(5)?
                        .lines()
                        .map(str::to_owned)
                        .collect(),
                    state: OutboxState::parse(&row.get::<_, String>(6)?),
                    attempts: row.get(7)?,
                    last_error: row.get(8)?,
                    require_tls: row.get(9)?,
                    sent_copy: row.get(10)?,
                })
            })
            .map_err(sql("reading the outbox"))?
            .collect::<Result<_, _>>()
            .map_err(sql("reading the outbox"))
    }
}

fn has_flag(flags: &[String], flag: &str) -> bool {
    flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Address, Envelope};

    const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn envelope(uid: u32, date: i64, flags: &[&str]) -> RemoteEnvelope {
        RemoteEnvelope {
            uid,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            size: 100,
            modseq: None,
            internal_date: None,
            envelope: Envelope {
                subject: format!("message {uid}"),
                from: vec![Address {
                    name: None,
                    email: "lab@example.org".into(),
                }],
                date: Some(date),
                ..Envelope::default()
            },
        }
    }

    fn folder(name: &str) -> RemoteFolder {
        RemoteFolder {
            raw_name: name.into(),
            name: name.into(),
            delimiter: None,
            role: None,
            selectable: true,
        }
    }

    #[test]
    fn store_file_is_encrypted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = Store::open(&path, &Secret::new(KEY)).unwrap();
        store.save_folders("a", &[folder("INBOX")]).unwrap();
        drop(store);
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.starts_with(b"SQLite format 3"));
        assert!(!bytes.windows(5).any(|w| w == b"INBOX"));
    }

    #[test]
    fn wrong_key_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        drop(Store::open(&path, &Secret::new(KEY)).unwrap());
        let other = KEY.replace('0', "1");
        let error = Store::open(&path, &Secret::new(other)).unwrap_err();
        assert!(matches!(error, StoreError::WrongKey { .. }), "{error}");
    }

    #[test]
    fn list_is_newest_first_with_flags() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db"), &Secret::new(KEY)).unwrap();
        store.save_folders("a", &[folder("INBOX")]).unwrap();
        let id = store.folders("a").unwrap()[0].id;
        store
            .save_envelopes(
                id,
                &[
                    envelope(1, 100, &["\\Seen"]),
                    envelope(2, 300, &[]),
                    envelope(3, 200, &["\\Flagged"]),
                ],
            )
            .unwrap();
        let rows = store.list(id, 0, 10).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.uid).collect::<Vec<_>>(),
            vec![2, 3, 1]
        );
        assert!(rows[2].seen);
        assert!(rows[1].flagged);
        let folders = store.folders("a").unwrap();
        assert_eq!((folders[0].total, folders[0].unread), (3, 2));
    }

    #[test]
    fn vanished_folder_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db"), &Secret::new(KEY)).unwrap();
        store
            .save_folders("a", &[folder("INBOX"), folder("Old")])
            .unwrap();
        store.save_folders("a", &[folder("INBOX")]).unwrap();
        let names: Vec<_> = store
            .folders("a")
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, vec!["INBOX"]);
    }

    #[test]
    fn outbox_rejects_reused_message_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db"), &Secret::new(KEY)).unwrap();
        let rcpt = vec!["b@example.org".to_owned()];
        let id = store
            .outbox_add("a", "<2@example.org>", b"one", "a@example.org", &rcpt)
            .unwrap();
        let changed = store.outbox_add("a", "<2@example.org>", b"two", "a@example.org", &rcpt);
        assert!(
            matches!(changed, Err(StoreError::DuplicateMessageId { .. })),
            "{changed:?}"
        );
        store.outbox_set_state(id, OutboxState::Done, None).unwrap();
        let again = store.outbox_add("a", "<2@example.org>", b"one", "a@example.org", &rcpt);
        assert!(
            matches!(again, Err(StoreError::AlreadySent { .. })),
            "{again:?}"
        );
    }

    #[test]
    fn outbox_transition_claims_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db"), &Secret::new(KEY)).unwrap();
        let rcpt = vec!["b@example.org".to_owned()];
        let id = store
            .outbox_add("a", "<3@example.org>", b"x", "a@example.org", &rcpt)
            .unwrap();
        let from = [OutboxState::Queued, OutboxState::Failed];
        assert!(
            store
                .outbox_transition(id, &from, OutboxState::Sending)
                .unwrap()
        );
        assert!(
            !store
                .outbox_transition(id, &from, OutboxState::Sending)
                .unwrap()
        );
        assert_eq!(store.outbox("a").unwrap()[0].attempts, 1);
    }

    #[test]
    fn outbox_add_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db"), &Secret::new(KEY)).unwrap();
        let rcpt = vec!["b@example.org".to_owned()];
        let first = store
            .outbox_add("a", "<1@example.org>", b"raw", "a@example.org", &rcpt)
            .unwrap();
        let second = store
            .outbox_add("a", "<1@example.org>", b"raw", "a@example.org", &rcpt)
            .unwrap();
        assert_eq!(first, second);
        store
            .outbox_set_state(first, OutboxState::Sending, None)
            .unwrap();
        let entry = &store.outbox("a").unwrap()[0];
        assert_eq!(entry.state, OutboxState::Sending);
        assert_eq!(entry.attempts, 1);
        assert_eq!(entry.recipients, rcpt);
    }

    #[test]
    fn arrival_round_trip() {
        use crate::arrival::{ArrivalEncryption, ArrivalSecurity};
        use crate::protection::SignatureStatus;

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db"), &Secret::new(KEY)).unwrap();
        let mut security = ArrivalSecurity {
            encrypted: Some(ArrivalEncryption::Smime),
            signed: Some(SignatureStatus::ChainIncomplete),
            tls_into_provider: None,
            portal_notice: false,
            portal_reply: false,
        };
        assert_eq!(store.arrival("a", "1@example.org").unwrap(), None);

        store.save_arrival("a", "1@example.org", &security).unwrap();
        assert_eq!(
            store.arrival("a", "1@example.org").unwrap(),
            Some(security.clone())
        );
        assert_eq!(store.arrival("b", "1@example.org").unwrap(), None);

        security.tls_into_provider = Some(true);
        store.save_arrival("a", "1@example.org", &security).unwrap();
        assert_eq!(store.arrival("a", "1@example.org").unwrap(), Some(security));
    }
}
