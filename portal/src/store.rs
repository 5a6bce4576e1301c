//! Storage of devices, enrolment tokens, messages, events and replies.
//!
//! [`Store`] is what the endpoints use. [`SqliteStore`] implements it over
//! one SQLite file (rusqlite), the embedded default; [`PgStore`] over
//! PostgreSQL (tokio-postgres), for several instances sharing a database.
//! [`AnyStore`] is either, as the configuration chooses. Each method is one
//! transaction, so the attempt counter cannot be raced: SQLite has a single
//! writer, PostgreSQL locks the message's row.
//!
//! Every value is ciphertext or a hash except labels, the clinic contact and
//! timestamps: the server never receives the link secret or the plaintext.

mod postgres;
mod sqlite;

use std::future::Future;

pub use postgres::{PgStore, describe as describe_postgres, first_remote_host};
pub use sqlite::SqliteStore;

/// Seconds a signature nonce is remembered.
pub const NONCE_WINDOW_SECONDS: i64 = 600;

/// A failure of the storage backend itself, never of the caller's input.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SQLite database failed.
    #[error("cannot use the SQLite database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database file cannot be opened or prepared.
    #[error("cannot open the SQLite database {path}: {source}")]
    Open {
        /// The database file.
        path: std::path::PathBuf,
        /// The error.
        source: rusqlite::Error,
    },
    /// PostgreSQL refused a query or the connection broke.
    #[error("cannot use the PostgreSQL database: {}", postgres_reason(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection to PostgreSQL could be made. `target` names the
    /// database and host, never the user or password.
    #[error(
        "cannot connect to the PostgreSQL {target}: {}; check that the server runs, \
         the user, password and database in `database`, and for TLS errors `database_ca`",
        postgres_reason(.source)
    )]
    Connect {
        /// Database and host, for example `database portal on 127.0.0.1:5432`.
        target: String,
        /// The error.
        source: tokio_postgres::Error,
    },
    /// The CA file for TLS to PostgreSQL cannot be used.
    #[error("cannot use the CA file {path} of `database_ca`: {reason}")]
    DatabaseCa {
        /// The file.
        path: std::path::PathBuf,
        /// Description of the problem and its fix.
        reason: String,
    },
    /// The worker thread running the query stopped.
    #[error("cannot finish the database task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The database contains a value that this version cannot read.
    #[error("cannot read the database: {0}")]
    Corrupt(String),
}

/// Describes a tokio-postgres error with its causes. For an error from the
/// server only the severity and message are kept: its detail can quote the
/// row's values, such as a message id.
fn postgres_reason(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    reason
}

/// The kind of second factor the recipient proves, as the scheme document defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Factor {
    /// Eight digits read by phone or sent by SMS.
    Code,
    /// A passphrase agreed once by phone.
    Passphrase,
    /// A code sent by a separate e-mail (low assurance).
    EmailCode,
}

impl Factor {
    /// Returns the name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::Passphrase => "passphrase",
            Self::EmailCode => "email-code",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "code" => Some(Self::Code),
            "passphrase" => Some(Self::Passphrase),
            "email-code" => Some(Self::EmailCode),
            _ => None,
        }
    }
}

/// The desktop's settings that unlock a message: the factor's kind, its
/// PBKDF2 iterations, the content key wrapped under the derived key, and
/// SHA-256 of the verifier.
#[derive(Clone)]
pub struct Lock {
    /// Kind of second factor.
    pub factor: Factor,
    /// PBKDF2 iterations the browser runs.
    pub iterations: u32,
    /// The content key K, sealed under `wrap_key`.
    pub wrapped_key: Vec<u8>,
    /// SHA-256 of the verifier.
    pub verifier_hash: [u8; 32],
}

/// A message as uploaded by a device.
pub struct NewMessage {
    /// The message id (base64url of 16 bytes).
    pub id: String,
    /// The uploading device.
    pub device_id: String,
    /// The settings that unlock the message.
    pub lock: Lock,
    /// The sealed message.
    pub envelope: Vec<u8>,
    /// Unix time after which the message is gone.
    pub expires_at: i64,
    /// Wrong verifiers allowed before the message locks.
    pub max_attempts: u32,
    /// The clinic's contact for the recipient.
    pub contact: String,
}

/// The public state of a message, as the recipient's page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Readable, with the data the page needs to derive keys.
    Open {
        /// Kind of second factor.
        factor: Factor,
        /// PBKDF2 iterations.
        iterations: u32,
        /// The clinic's contact for the recipient.
        contact: String,
        /// Wrong verifiers left before the message locks.
        attempts_left: u32,
    },
    /// Too many wrong verifiers; the sender must re-issue the factor.
    Locked {
        /// The clinic's contact for the recipient.
        contact: String,
    },
    /// Expired or revoked: the ciphertext is deleted.
    Gone {
        /// The clinic's contact for the recipient.
        contact: String,
    },
}

/// The result of presenting a verifier: the payload when it matched.
pub type Attempt<T> = Result<T, Refusal>;

/// The reason a verifier was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The verifier did not match; the message locks when this reaches 0.
    Wrong {
        /// Wrong verifiers left.
        attempts_left: u32,
    },
    /// The message was locked already.
    Locked {
        /// The clinic's contact for the recipient.
        contact: String,
    },
    /// The message expired or was revoked.
    Gone {
        /// The clinic's contact for the recipient.
        contact: String,
    },
    /// No message has this id.
    NotFound,
}

/// The sealed parts the recipient receives after a correct verifier.
#[derive(Debug, PartialEq, Eq)]
pub struct Sealed {
    /// The content key sealed under `wrap_key`.
    pub wrapped_key: Vec<u8>,
    /// The sealed message.
    pub envelope: Vec<u8>,
}

/// The result of a device's request on one of its messages.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Done.
    Done,
    /// The message expired or was revoked, so nothing can change.
    Gone,
    /// The device has no message with this id (another device's message
    /// counts as none).
    NotFound,
}

/// Something that happened to a message, for its device.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Event {
    /// Position in the server's event sequence.
    pub seq: i64,
    /// The message id.
    pub id: String,
    /// What happened: `opened`, `wrong-code`, `locked`, `unlocked`,
    /// `replied`, `expired` or `revoked`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Unix time.
    pub at: i64,
}

/// A sealed reply, for the device that sent the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Position in the server's reply sequence.
    pub seq: i64,
    /// The message id.
    pub id: String,
    /// The HPKE encapsulated key.
    pub enc: Vec<u8>,
    /// The HPKE ciphertext.
    pub ciphertext: Vec<u8>,
    /// Unix time.
    pub at: i64,
}

/// Counts of one sweeper run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sweep {
    /// Messages whose ciphertext was deleted.
    pub expired: usize,
    /// Expired enrolment tokens and old nonces deleted.
    pub pruned: usize,
}

/// Storage for the portal. Every method is one atomic transaction; `now`
/// is Unix time, passed in so that one request sees one clock reading.
pub trait Store: Send + Sync + 'static {
    /// Stores an enrolment token's hash, with the administrator's label.
    fn add_enrol_token(
        &self,
        token_hash: [u8; 32],
        label: String,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes the token and adds the device, if the token exists and has
    /// not expired. Returns `false` when the token is unknown, used or
    /// expired.
    fn enrol_device(
        &self,
        token_hash: [u8; 32],
        device_id: String,
        public_key: [u8; 32],
        label: String,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The device's Ed25519 public key.
    fn device_key(
        &self,
        device_id: String,
    ) -> impl Future<Output = Result<Option<[u8; 32]>, StoreError>> + Send;

    /// Records a signature nonce. Returns `false` when the device used it
    /// within the last [`NONCE_WINDOW_SECONDS`].
    fn remember_nonce(
        &self,
        device_id: String,
        nonce: String,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores a new message. Returns `false` when the id is taken.
    fn insert_message(
        &self,
        message: NewMessage,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The message's state; `None` when no message has the id. With
    /// `record_open` an open message gets an `opened` event, at most one
    /// a minute, so reloading the page cannot flood the device's events.
    fn status(
        &self,
        id: String,
        record_open: bool,
        now: i64,
    ) -> impl Future<Output = Result<Option<Status>, StoreError>> + Send;

    /// Checks a verifier's hash; on a match returns the sealed parts and
    /// records `unlocked`, otherwise counts the attempt.
    fn unlock(
        &self,
        id: String,
        verifier_hash: [u8; 32],
        now: i64,
    ) -> impl Future<Output = Result<Attempt<Sealed>, StoreError>> + Send;

    /// Checks a verifier's hash like [`Store::unlock`]; on a match stores
    /// the reply, records `replied` and returns the reply's sequence number.
    fn add_reply(
        &self,
        id: String,
        verifier_hash: [u8; 32],
        enc: Vec<u8>,
        ciphertext: Vec<u8>,
        now: i64,
    ) -> impl Future<Output = Result<Attempt<i64>, StoreError>> + Send;

    /// Replaces the factor of the device's message, unlocks it and resets
    /// its attempts.
    fn reissue(
        &self,
        device_id: String,
        id: String,
        lock: Lock,
        now: i64,
    ) -> impl Future<Output = Result<Change, StoreError>> + Send;

    /// Deletes the envelope, wrapped key and verifier hash of the device's
    /// message and records `revoked`. Revoking a gone message is `Done`.
    fn revoke(
        &self,
        device_id: String,
        id: String,
        now: i64,
    ) -> impl Future<Output = Result<Change, StoreError>> + Send;

    /// Sets a new expiry on the device's message.
    fn extend(
        &self,
        device_id: String,
        id: String,
        expires_at: i64,
        now: i64,
    ) -> impl Future<Output = Result<Change, StoreError>> + Send;

    /// Events of the device's messages after `after`, oldest first, at most
    /// `limit`.
    fn events(
        &self,
        device_id: String,
        after: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Event>, StoreError>> + Send;

    /// Replies to the device's messages after `after`, oldest first: at
    /// most `limit`, and no more once `max_bytes` of ciphertext are
    /// collected (always at least one).
    fn replies(
        &self,
        device_id: String,
        after: i64,
        limit: u32,
        max_bytes: usize,
    ) -> impl Future<Output = Result<Vec<Reply>, StoreError>> + Send;

    /// Deletes the ciphertext of messages past their expiry (recording
    /// `expired`), expired enrolment tokens and nonces older than the
    /// window.
    fn sweep(&self, now: i64) -> impl Future<Output = Result<Sweep, StoreError>> + Send;
}

/// The store the configuration chose: a SQLite file or a PostgreSQL
/// database.
#[derive(Clone)]
pub enum AnyStore {
    /// One SQLite file, for a single instance.
    Sqlite(SqliteStore),
    /// A PostgreSQL database, which several instances can share.
    Postgres(PgStore),
}

impl From<SqliteStore> for AnyStore {
    fn from(store: SqliteStore) -> Self {
        Self::Sqlite(store)
    }
}

impl From<PgStore> for AnyStore {
    fn from(store: PgStore) -> Self {
        Self::Postgres(store)
    }
}

/// Calls the same method on whichever store `$self` holds.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($argument:expr),* )) => {
        match $self {
            Self::Sqlite(store) => store.$method($($argument),*).await,
            Self::Postgres(store) => store.$method($($argument),*).await,
        }
    };
}

impl Store for AnyStore {
    async fn add_enrol_token(
        &self,
        token_hash: [u8; 32],
        label: String,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        dispatch!(self.add_enrol_token(token_hash, label, expires_at))
    }

    async fn enrol_device(
        &self,
        token_hash: [u8; 32],
        device_id: String,
        public_key: [u8; 32],
        label: String,
        now: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self.enrol_device(token_hash, device_id, public_key, label, now))
    }

    async fn device_key(&self, device_id: String) -> Result<Option<[u8; 32]>, StoreError> {
        dispatch!(self.device_key(device_id))
    }

    async fn remember_nonce(
        &self,
        device_id: String,
        nonce: String,
        now: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self.remember_nonce(device_id, nonce, now))
    }

    async fn insert_message(&self, message: NewMessage, now: i64) -> Result<bool, StoreError> {
        dispatch!(self.insert_message(message, now))
    }

    async fn status(
        &self,
        id: String,
        record_open: bool,
        now: i64,
    ) -> Result<Option<Status>, StoreError> {
        dispatch!(self.status(id, record_open, now))
    }

    async fn unlock(
        &self,
        id: String,
        verifier_hash: [u8; 32],
        now: i64,
    ) -> Result<Attempt<Sealed>, StoreError> {
        dispatch!(self.unlock(id, verifier_hash, now))
    }

    async fn add_reply(
        &self,
        id: String,
        verifier_hash: [u8; 32],
        enc: Vec<u8>,
        ciphertext: Vec<u8>,
        now: i64,
    ) -> Result<Attempt<i64>, StoreError> {
        dispatch!(self.add_reply(id, verifier_hash, enc, ciphertext, now))
    }

    async fn reissue(
        &self,
        device_id: String,
        id: String,
        lock: Lock,
        now: i64,
    ) -> Result<Change, StoreError> {
        dispatch!(self.reissue(device_id, id, lock, now))
    }

    async fn revoke(&self, device_id: String, id: String, now: i64) -> Result<Change, StoreError> {
        dispatch!(self.revoke(device_id, id, now))
    }

    async fn extend(
        &self,
        device_id: String,
        id: String,
        expires_at: i64,
        now: i64,
    ) -> Result<Change, StoreError> {
        dispatch!(self.extend(device_id, id, expires_at, now))
    }

    async fn events(
        &self,
        device_id: String,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        dispatch!(self.events(device_id, after, limit))
    }

    async fn replies(
        &self,
        device_id: String,
        after: i64,
        limit: u32,
        max_bytes: usize,
    ) -> Result<Vec<Reply>, StoreError> {
        dispatch!(self.replies(device_id, after, limit, max_bytes))
    }

    async fn sweep(&self, now: i64) -> Result<Sweep, StoreError> {
        dispatch!(self.sweep(now))
    }
}
