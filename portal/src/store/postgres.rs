//! [`Store`] over PostgreSQL (tokio-postgres), for several portal instances
//! that share one database behind a load balancer.
//!
//! Every method is one transaction at READ COMMITTED. Where a method reads
//! a message and then changes it (attempt counting, expiry, the `opened`
//! throttle) it locks the row with `SELECT ... FOR UPDATE` first, so two
//! instances cannot both accept a wrong code that should have locked the
//! message, nor lose a count. A nonce is recorded with one upsert, so the
//! replay window covers all instances.
//!
//! Event and reply sequence numbers are paging cursors: the desktop asks
//! for everything after the last one it saw. A sequence hands out numbers
//! at insert time, not at commit, so two transactions could commit 11
//! before 10 and a desktop that already read 11 would never see 10. Each
//! insert therefore first takes a transaction-level advisory lock, which
//! makes the numbers commit in order.
//!
//! Deleted ciphertext: erasing sets the columns to NULL, which in
//! PostgreSQL writes a new row version. The old version, and the TOAST
//! chunks of a large envelope, stay in the table's files as dead tuples
//! until VACUUM marks their space reusable, and the bytes remain on disk
//! until that space is overwritten; the WAL keeps them until its segments
//! are recycled. The operator must keep autovacuum on (the default) and
//! treat the data directory, WAL archives and backups as holding
//! ciphertext for that time.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};
use tokio_postgres::config::Host;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Transaction};

mod tls;

use std::path::Path;

use super::{
    Attempt, Change, Event, Factor, Lock, NONCE_WINDOW_SECONDS, NewMessage, Refusal, Reply, Sealed,
    Status, Store, StoreError, Sweep,
};
use crate::wire;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS enrol_tokens (
    token_hash BYTEA PRIMARY KEY,
    label TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    public_key BYTEA NOT NULL,
    label TEXT NOT NULL,
    enrolled_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (
    device_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, nonce)
);
CREATE INDEX IF NOT EXISTS nonces_seen_at ON nonces (seen_at);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices (id),
    state TEXT NOT NULL CHECK (state IN ('live', 'expired', 'revoked')),
    factor TEXT NOT NULL,
    iterations BIGINT NOT NULL,
    wrapped_key BYTEA,
    verifier_hash BYTEA,
    envelope BYTEA,
    contact TEXT NOT NULL,
    max_attempts INTEGER NOT NULL,
    attempts_left INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_opened_at BIGINT
);
CREATE INDEX IF NOT EXISTS messages_live_expiry ON messages (expires_at) WHERE state = 'live';
CREATE TABLE IF NOT EXISTS events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_device ON events (device_id, seq);
CREATE TABLE IF NOT EXISTS replies (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    enc BYTEA,
    ciphertext BYTEA,
    at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS replies_device ON replies (device_id, seq);
CREATE INDEX IF NOT EXISTS replies_message ON replies (message_id);
";

/// Advisory lock keys ("wardmail" in ASCII, plus a number), so that other
/// users of the database are unlikely to pick the same ones.
const SCHEMA_LOCK: i64 = 0x7761_7264_6d61_0001;
const EVENTS_LOCK: i64 = 0x7761_7264_6d61_0002;
const REPLIES_LOCK: i64 = 0x7761_7264_6d61_0003;

/// Seconds during which a second `opened` event for one message is dropped.
const OPEN_EVENT_INTERVAL_SECONDS: i64 = 60;

/// Connections each instance keeps open at most.
const POOL_SIZE: usize = 8;

/// Time allowed to connect when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL store. Clones share one pool of connections.
#[derive(Clone)]
pub struct PgStore {
    pool: Arc<Pool>,
}

/// A fixed set of connection slots; a slot is connected on first use and
/// again after its connection broke.
struct Pool {
    config: Config,
    tls: Option<tls::RustlsConnect>,
    target: String,
    slots: Vec<Arc<Mutex<Option<Client>>>>,
    next: AtomicUsize,
}

/// A connection borrowed from the pool.
type Connection = OwnedMappedMutexGuard<Option<Client>, Client>;

/// One row of `messages`, as the recipient endpoints need it.
struct MessageRow {
    device_id: String,
    state: String,
    factor: String,
    iterations: u32,
    verifier_hash: Option<Vec<u8>>,
    contact: String,
    attempts_left: u32,
    expires_at: i64,
    last_opened_at: Option<i64>,
}

/// Describes where a connection string points, without user or password,
/// for logs and errors: for example `database portal on 10.0.0.5:5432`.
pub fn describe(config: &Config) -> String {
    let mut text = format!("database {}", config.get_dbname().unwrap_or("(default)"));
    let ports = config.get_ports();
    for (index, host) in config.get_hosts().iter().enumerate() {
        let port = ports.get(index).or(ports.first()).copied().unwrap_or(5432);
        let separator = if index == 0 { " on " } else { ", " };
        let _ = match host {
            Host::Tcp(name) => write!(text, "{separator}{name}:{port}"),
            Host::Unix(path) => write!(text, "{separator}{}", path.display()),
        };
    }
    text
}

/// Checks that every host of the connection string is on this machine
/// (loopback or a Unix socket), as a connection without TLS requires.
/// Returns the first host that is not.
pub fn first_remote_host(config: &Config) -> Option<String> {
    let is_local_name = |name: &str| {
        name.eq_ignore_ascii_case("localhost")
            || name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|address| address.is_loopback())
    };
    let remote_host = config.get_hosts().iter().find_map(|host| match host {
        Host::Tcp(name) if !is_local_name(name) => Some(name.clone()),
        _ => None,
    });
    let remote_address = config
        .get_hostaddrs()
        .iter()
        .find(|address| !address.is_loopback())
        .map(ToString::to_string);
    remote_host.or(remote_address)
}

impl PgStore {
    /// Connects to the database and creates the tables that are missing.
    /// With `ca` every connection uses TLS and the server's certificate must
    /// chain to the CA certificates in that PEM file. Without it there is
    /// no TLS, and the caller checks that every host is on this machine
    /// (see [`first_remote_host`]).
    pub async fn connect(config: &Config, ca: Option<&Path>) -> Result<Self, StoreError> {
        let tls = ca
            .map(|path| {
                tls::RustlsConnect::from_ca_file(path).map_err(|reason| StoreError::DatabaseCa {
                    path: path.to_owned(),
                    reason,
                })
            })
            .transpose()?;
        let mut config = config.clone();
        if tls.is_some() {
            // The default, prefer, would fall back to a plain connection
            // when the server offers no TLS.
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("wardmail-portal");
        }
        let pool = Pool {
            target: describe(&config),
            config,
            tls,
            slots: (0..POOL_SIZE).map(|_| Arc::new(Mutex::new(None))).collect(),
            next: AtomicUsize::new(0),
        };
        let store = Self {
            pool: Arc::new(pool),
        };

        // Instances starting together would race on CREATE TABLE IF NOT
        // EXISTS (it can fail with a duplicate key in the catalog), so the
        // schema is created under a lock.
        let mut connection = store.connection().await?;
        let transaction = connection.transaction().await?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await?;
        transaction.batch_execute(SCHEMA).await?;
        transaction.commit().await?;
        tracing::info!(postgres = %store.pool.target, "using PostgreSQL");
        Ok(store)
    }

    /// Borrows a connection: a free one if any, otherwise the next in
    /// turn once it is free. Connects the slot if it has no live connection.
    // NOTE: a connection that broke (a database restart) is noticed only
    // once its task ends, so a query sent just before fails with a 500 to
    // the client. The slot reconnects on its next use; a retry would have
    // to know whether the lost transaction committed.
    async fn connection(&self) -> Result<Connection, StoreError> {
        let slots = &self.pool.slots;
        let start = self.pool.next.fetch_add(1, Ordering::Relaxed) % slots.len();
        let free = (0..slots.len())
            .map(|offset| &slots[(start + offset) % slots.len()])
            .find_map(|slot| Arc::clone(slot).try_lock_owned().ok());
        let mut guard: OwnedMutexGuard<Option<Client>> = match free {
            Some(guard) => guard,
            None => Arc::clone(&slots[start]).lock_owned().await,
        };

        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(self.connect_slot().await?);
        }
        OwnedMutexGuard::try_map(guard, Option::as_mut)
            .map_err(|_| StoreError::Corrupt("a pool slot lost its connection".into()))
    }
}

impl PgStore {
    /// Opens a new connection, with TLS if configured, and drives it in a
    /// task of its own.
    async fn connect_slot(&self) -> Result<Client, StoreError> {
        let connect_error = |source| StoreError::Connect {
            target: self.pool.target.clone(),
            source,
        };
        let config = &self.pool.config;
        let (client, connection) = match &self.pool.tls {
            Some(tls) => {
                let (client, connection) =
                    config.connect(tls.clone()).await.map_err(connect_error)?;
                (client, tokio::spawn(connection))
            }
            None => {
                let (client, connection) = config.connect(NoTls).await.map_err(connect_error)?;
                (client, tokio::spawn(connection))
            }
        };
        tokio::spawn(async move {
            if let Ok(Err(error)) = connection.await {
                tracing::warn!(%error, "PostgreSQL connection ended; reconnecting on next use");
            }
        });
        Ok(client)
    }
}

fn to_u32(value: i64, column: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} is {value}")))
}

async fn message_row(
    transaction: &Transaction<'_>,
    id: &str,
) -> Result<Option<MessageRow>, StoreError> {
    let row = transaction
        .query_opt(
            "SELECT device_id, state, factor, iterations, verifier_hash, contact,
                    attempts_left, expires_at, last_opened_at
             FROM messages WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(MessageRow {
        device_id: row.try_get(0)?,
        state: row.try_get(1)?,
        factor: row.try_get(2)?,
        iterations: to_u32(row.try_get(3)?, "iterations")?,
        verifier_hash: row.try_get(4)?,
        contact: row.try_get(5)?,
        attempts_left: to_u32(row.try_get::<_, i32>(6)?.into(), "attempts_left")?,
        expires_at: row.try_get(7)?,
        last_opened_at: row.try_get(8)?,
    }))
}

async fn add_event(
    transaction: &Transaction<'_>,
    id: &str,
    device_id: &str,
    kind: &str,
    now: i64,
) -> Result<(), StoreError> {
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&EVENTS_LOCK])
        .await?;
    transaction
        .execute(
            "INSERT INTO events (message_id, device_id, kind, at) VALUES ($1, $2, $3, $4)",
            &[&id, &device_id, &kind, &now],
        )
        .await?;
    Ok(())
}

/// Deletes a message's ciphertext and key material and sets its state.
async fn erase(
    transaction: &Transaction<'_>,
    id: &str,
    state: &str,
    also_replies: bool,
) -> Result<(), StoreError> {
    transaction
        .execute(
            "UPDATE messages SET state = $2, wrapped_key = NULL, verifier_hash = NULL,
                    envelope = NULL
             WHERE id = $1",
            &[&id, &state],
        )
        .await?;
    if also_replies {
        transaction
            .execute(
                "UPDATE replies SET enc = NULL, ciphertext = NULL WHERE message_id = $1",
                &[&id],
            )
            .await?;
    }
    Ok(())
}

/// Expires the message if its time has passed and it is still live.
async fn expire_if_due(
    transaction: &Transaction<'_>,
    id: &str,
    row: &mut MessageRow,
    now: i64,
) -> Result<(), StoreError> {
    if row.state != "live" || row.expires_at > now {
        return Ok(());
    }
    erase(transaction, id, "expired", true).await?;
    add_event(transaction, id, &row.device_id, "expired", now).await?;
    row.state = "expired".into();
    Ok(())
}

/// Checks a verifier hash against a live message, counting a wrong one.
/// The row stays locked until the transaction ends.
async fn check_verifier(
    transaction: &Transaction<'_>,
    id: &str,
    verifier_hash: &[u8; 32],
    now: i64,
) -> Result<Attempt<MessageRow>, StoreError> {
    let Some(mut row) = message_row(transaction, id).await? else {
        return Ok(Err(Refusal::NotFound));
    };
    expire_if_due(transaction, id, &mut row, now).await?;
    if row.state != "live" {
        let contact = row.contact;
        return Ok(Err(Refusal::Gone { contact }));
    }
    if row.attempts_left == 0 {
        let contact = row.contact;
        return Ok(Err(Refusal::Locked { contact }));
    }

    let stored: Option<[u8; 32]> = row
        .verifier_hash
        .as_deref()
        .and_then(|bytes| bytes.try_into().ok());
    let Some(stored) = stored else {
        return Err(StoreError::Corrupt(format!(
            "live message {} has no verifier hash",
            wire::short_id(id)
        )));
    };

    if wire::hashes_equal(&stored, verifier_hash) {
        transaction
            .execute(
                "UPDATE messages SET attempts_left = max_attempts WHERE id = $1",
                &[&id],
            )
            .await?;
        return Ok(Ok(row));
    }

    let attempts_left = row.attempts_left - 1;
    let stored_left = i32::try_from(attempts_left)
        .map_err(|_| StoreError::Corrupt(format!("attempts_left is {attempts_left}")))?;
    transaction
        .execute(
            "UPDATE messages SET attempts_left = $2 WHERE id = $1",
            &[&id, &stored_left],
        )
        .await?;
    add_event(transaction, id, &row.device_id, "wrong-code", now).await?;
    if attempts_left == 0 {
        add_event(transaction, id, &row.device_id, "locked", now).await?;
    }
    Ok(Err(Refusal::Wrong { attempts_left }))
}

/// Loads and locks the device's own message for a change, expiring it if
/// due.
async fn owned_live_message(
    transaction: &Transaction<'_>,
    device_id: &str,
    id: &str,
    now: i64,
) -> Result<Result<MessageRow, Change>, StoreError> {
    let row = message_row(transaction, id)
        .await?
        .filter(|row| row.device_id == device_id);
    let Some(mut row) = row else {
        return Ok(Err(Change::NotFound));
    };
    expire_if_due(transaction, id, &mut row, now).await?;
    if row.state != "live" {
        return Ok(Err(Change::Gone));
    }
    Ok(Ok(row))
}

fn lock_params(lock: &Lock) -> (&'static str, i64, &[u8], &[u8]) {
    (
        lock.factor.as_str(),
        i64::from(lock.iterations),
        &lock.wrapped_key,
        &lock.verifier_hash,
    )
}

impl Store for PgStore {
    async fn add_enrol_token(
        &self,
        token_hash: [u8; 32],
        label: String,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let connection = self.connection().await?;
        connection
            .execute(
                "INSERT INTO enrol_tokens (token_hash, label, expires_at) VALUES ($1, $2, $3)",
                &[&token_hash.as_slice(), &label, &expires_at],
            )
            .await?;
        Ok(())
    }

    async fn enrol_device(
        &self,
        token_hash: [u8; 32],
        device_id: String,
        public_key: [u8; 32],
        label: String,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut connection = self.connection().await?;
        let transaction = connection.transaction().await?;
        // A concurrent enrolment with the same token waits on the row and
        // then finds it deleted.
        let admin_label = transaction
            .query_opt(
                "DELETE FROM enrol_tokens WHERE token_hash = $1 AND expires_at > $2
                 RETURNING label",
                &[&token_hash.as_slice(), &now],
            )
            .await?;
        let Some(admin_label) = admin_label else {
            return Ok(false);
        };
        let admin_label: String = admin_label.try_get(0)?;
        let label = if label.is_empty() {
            admin_label
        } else {
            format!("{admin_label} ({label})")
        };
        transaction
            .execute(
                "INSERT INTO devices (id, public_key, label, enrolled_at) VALUES ($1, $2, $3, $4)",
                &[&device_id, &public_key.as_slice(), &label, &now],
            )
            .await?;
        transaction.commit().await?;
        Ok(true)
    }

    async fn device_key(&self, device_id: String) -> Result<Option<[u8; 32]>, StoreError> {
        let connection = self.connection().await?;
        let row = connection
            .query_opt(
                "SELECT public_key FROM devices WHERE id = $1",
                &[&device_id],
            )
            .await?;
        row.map(|row| {
            let bytes: Vec<u8> = row.try_get(0)?;
            bytes.try_into().map_err(|_| {
                StoreError::Corrupt(format!(
                    "device {} has a public key that is not 32 bytes",
                    wire::short_id(&device_id)
                ))
            })
        })
        .transpose()
    }

    async fn remember_nonce(
        &self,
        device_id: String,
        nonce: String,
        now: i64,
    ) -> Result<bool, StoreError> {
        // One statement: of two instances seeing the same nonce at once,
        // one inserts and the other hits the conflict and changes nothing.
        let connection = self.connection().await?;
        let changed = connection
            .execute(
                "INSERT INTO nonces (device_id, nonce, seen_at) VALUES ($1, $2, $3)
                 ON CONFLICT (device_id, nonce) DO UPDATE SET seen_at = EXCLUDED.seen_at
                 WHERE nonces.seen_at <= $3 - $4",
                &[&device_id, &nonce, &now, &NONCE_WINDOW_SECONDS],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn insert_message(&self, message: NewMessage, now: i64) -> Result<bool, StoreError> {
        let max_attempts = i32::try_from(message.max_attempts).map_err(|_| {
            StoreError::Corrupt(format!("max_attempts is {}", message.max_attempts))
        })?;
        let (factor, iterations, wrapped_key, verifier_hash) = lock_params(&message.lock);
        let connection = self.connection().await?;
        let inserted = connection
            .execute(
                "INSERT INTO messages (id, device_id, state, factor, iterations, wrapped_key,
                        verifier_hash, envelope, contact, max_attempts, attempts_left,
                        created_at, expires_at)
                 VALUES ($1, $2, 'live', $3, $4, $5, $6, $7, $8, $9, $9, $10, $11)
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &message.id,
                    &message.device_id,
                    &factor,
                    &iterations,
                    &wrapped_key,
                    &verifier_hash,
                    &message.envelope,
                    &message.contact,
                    &max_attempts,
                    &now,
                    &message.expires_at,
                ],
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn status(
        &self,
        id: String,
        record_open: bool,
        now: i64,
    ) -> Result<Option<Status>, StoreError> {
        let mut connection = self.connection().await?;
        let transaction = connection.transaction().await?;
        let Some(mut row) = message_row(&transaction, &id).await? else {
            return Ok(None);
        };
        expire_if_due(&transaction, &id, &mut row, now).await?;
        let contact = row.contact.clone();
        let status = if row.state != "live" {
            Status::Gone { contact }
        } else if row.attempts_left == 0 {
            Status::Locked { contact }
        } else {
            let recently_opened = row
                .last_opened_at
                .is_some_and(|at| now - at < OPEN_EVENT_INTERVAL_SECONDS);
            if record_open && !recently_opened {
                transaction
                    .execute(
                        "UPDATE messages SET last_opened_at = $2 WHERE id = $1",
                        &[&id, &now],
                    )
                    .await?;
                add_event(&transaction, &id, &row.device_id, "opened", now).await?;
            }
            let factor = Factor::from_name(&row.factor)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown factor {:?}", row.factor)))?;
            Status::Open {
                factor,
                iterations: row.iterations,
                contact,
                attempts_left: row.attempts_left,
            }
        };
        transaction.commit().await?;
        Ok(Some(status))
    }

    async fn unlock(
        &self,
        id: String,
        verifier_hash: [u8; 32],
        now: i64,
    ) -> Result<Attempt<Sealed>, StoreError> {
        let mut connection = self.connection().await?;
        let transaction = connection.transaction().await?;
        let attempt = match check_verifier(&transaction, &id, &verifier_hash, now).await? {
            Ok(row) => {
                let sealed = transaction
                    .query_one(
                        "SELECT wrapped_key, envelope FROM messages WHERE id = $1 FOR UPDATE",
                        &[&id],
                    )
                    .await?;
                let sealed = Sealed {
                    wrapped_key: sealed.try_get(0)?,
                    envelope: sealed.try_get(1)?,
                };
                add_event(&transaction, &id, &row.device_id, "unlocked", now).await?;
                Ok(sealed)
            }
            Err(refusal) => Err(refusal),
        };
        transaction.commit().await?;
        Ok(attempt)
    }

    async fn add_reply(
        &self,
        id: String,
        verifier_hash: [u8; 32],
        enc: Vec<u8>,
        ciphertext: Vec<u8>,
        now: i64,
    ) -> Result<Attempt<i64>, StoreError> {
        let mut connection = self.connection().await?;
        let transaction = connection.transaction().await?;
        let attempt = match check_verifier(&transaction, &id, &verifier_hash, now).await? {
            Ok(row) => {
                // The replies lock before the events lock, always, so the
                // two cannot deadlock.
                transaction
                    .execute("SELECT pg_advisory_xact_lock($1)", &[&REPLIES_LOCK])
                    .await?;
                let inserted = transaction
                    .query_one(
                        "INSERT INTO replies (message_id, device_id, enc, ciphertext, at)
                         VALUES ($1, $2, $3, $4, $5) RETURNING seq",
                        &[&id, &row.device_id, &enc, &ciphertext, &now],
                    )
                    .await?;
                add_event(&transaction, &id, &row.device_id, "replied", now).await?;
                Ok(inserted.try_get(0)?)
            }
            Err(refusal) => Err(refusal),
        };
        transaction.commit().await?;
        Ok(attempt)
    }

    async fn reissue(
        &self,
        device_id: String,
        id: String,
        lock: Lock,
        now: i64,
    ) -> Result<Change, StoreError> {
        let mut connection = self.connection().await?;
        let transaction = connection.transaction().await?;
        let change = match owned_live_message(&transaction, &device_id, &id, now).await? {
            Err(change) => change,
            Ok(_) => {
                let (factor, iterations, wrapped_key, verifier_hash) = lock_params(&lock);
                transaction
                    .execute(
                        "UPDATE messages SET factor = $2, iterations = $3, wrapped_key = $4,
                                verifier_hash = $5, attempts_left = max_attempts
                         WHERE id = $1",
                        &[&id, &factor, &iterations, &wrapped_key, &verifier_hash],
                    )
                    .await?;
                Change::Done
            }
        };
        transaction.commit().await?;
        Ok(change)
    }

    async fn revoke(&self, device_id: String, id: String, now: i64) -> Result<Change, StoreError> {
        let mut connection = self.connection().await?;
        let transaction = connection.transaction().await?;
        let change = match owned_live_message(&transaction, &device_id, &id, now).await? {
            Err(Change::Gone) => Change::Done,
            Err(change) => change,
            Ok(_) => {
                erase(&transaction, &id, "revoked", false).await?;
                add_event(&transaction, &id, &device_id, "revoked", now).await?;
                Change::Done
            }
        };
        transaction.commit().await?;
        Ok(change)
    }

    async fn extend(
        &self,
        device_id: String,
        id: String,
        expires_at: i64,
        now: i64,
    ) -> Result<Change, StoreError> {
        let mut connection = self.connection().await?;
        let transaction = connection.transaction().await?;
        let change = match owned_live_message(&transaction, &device_id, &id, now).await? {
            Err(change) => change,
            Ok(_) => {
                transaction
                    .execute(
                        "UPDATE messages SET expires_at = $2 WHERE id = $1",
                        &[&id, &expires_at],
                    )
                    .await?;
                Change::Done
            }
        };
        transaction.commit().await?;
        Ok(change)
    }

    async fn events(
        &self,
        device_id: String,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        let connection = self.connection().await?;
        let rows = connection
            .query(
                "SELECT seq, message_id, kind, at FROM events
                 WHERE device_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&device_id, &after, &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Event {
                    seq: row.try_get(0)?,
                    id: row.try_get(1)?,
                    kind: row.try_get(2)?,
                    at: row.try_get(3)?,
                })
            })
            .collect()
    }

    async fn replies(
        &self,
        device_id: String,
        after: i64,
        limit: u32,
        max_bytes: usize,
    ) -> Result<Vec<Reply>, StoreError> {
        let connection = self.connection().await?;
        let params: [&(dyn ToSql + Sync); 3] = [&device_id, &after, &i64::from(limit)];
        let rows = connection
            .query(
                "SELECT seq, message_id, enc, ciphertext, at FROM replies
                 WHERE device_id = $1 AND seq > $2 AND ciphertext IS NOT NULL
                 ORDER BY seq LIMIT $3",
                &params,
            )
            .await?;
        let mut replies = Vec::new();
        let mut total = 0;
        for row in &rows {
            let reply = Reply {
                seq: row.try_get(0)?,
                id: row.try_get(1)?,
                enc: row.try_get(2)?,
                ciphertext: row.try_get(3)?,
                at: row.try_get(4)?,
            };
            total += reply.ciphertext.len();
            if total > max_bytes && !replies.is_empty() {
                break;
            }
            replies.push(reply);
        }
        Ok(replies)
    }

    async fn sweep(&self, now: i64) -> Result<Sweep, StoreError> {
        let mut connection = self.connection().await?;
        let transaction = connection.transaction().await?;
        // SKIP LOCKED: a row locked elsewhere is being handled by a request
        // that expires it itself, or by another instance's sweep.
        let due = transaction
            .query(
                "SELECT id, device_id FROM messages WHERE state = 'live' AND expires_at <= $1
                 FOR UPDATE SKIP LOCKED",
                &[&now],
            )
            .await?;
        for row in &due {
            let id: String = row.try_get(0)?;
            let device_id: String = row.try_get(1)?;
            erase(&transaction, &id, "expired", true).await?;
            add_event(&transaction, &id, &device_id, "expired", now).await?;
        }

        let tokens = transaction
            .execute("DELETE FROM enrol_tokens WHERE expires_at <= $1", &[&now])
            .await?;
        let nonces = transaction
            .execute(
                "DELETE FROM nonces WHERE seen_at <= $1",
                &[&(now - NONCE_WINDOW_SECONDS)],
            )
            .await?;
        transaction.commit().await?;
        Ok(Sweep {
            expired: due.len(),
            pruned: usize::try_from(tokens + nonces).unwrap_or(usize::MAX),
        })
    }
}
