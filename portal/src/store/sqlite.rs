//! [`Store`] over one SQLite connection (rusqlite), used from tokio
//! through `spawn_blocking`.
//!
//! `secure_delete` is on, so deleted ciphertext is overwritten with zeros
//! in the database file instead of lingering in free pages. After each
//! deletion of ciphertext the WAL is checkpointed and truncated, so the old
//! pages do not linger there either.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{
    Attempt, Change, Event, Factor, Lock, NONCE_WINDOW_SECONDS, NewMessage, Refusal, Reply, Sealed,
    Status, Store, StoreError, Sweep,
};
use crate::wire;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS enrol_tokens (
    token_hash BLOB PRIMARY KEY,
    label TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    public_key BLOB NOT NULL,
    label TEXT NOT NULL,
    enrolled_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (
    device_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, nonce)
);
CREATE INDEX IF NOT EXISTS nonces_seen_at ON nonces (seen_at);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices (id),
    state TEXT NOT NULL CHECK (state IN ('live', 'expired', 'revoked')),
    factor TEXT NOT NULL,
    iterations INTEGER NOT NULL,
    wrapped_key BLOB,
    verifier_hash BLOB,
    envelope BLOB,
    contact TEXT NOT NULL,
    max_attempts INTEGER NOT NULL,
    attempts_left INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    last_opened_at INTEGER
);
CREATE INDEX IF NOT EXISTS messages_live_expiry ON messages (expires_at) WHERE state = 'live';
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_device ON events (device_id, seq);
CREATE TABLE IF NOT EXISTS replies (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    enc BLOB,
    ciphertext BLOB,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS replies_device ON replies (device_id, seq);
CREATE INDEX IF NOT EXISTS replies_message ON replies (message_id);
";

/// Seconds during which a second `opened` event for one message is dropped.
const OPEN_EVENT_INTERVAL_SECONDS: i64 = 60;

/// The SQLite store. Clones share one connection.
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
}

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

impl SqliteStore {
    /// Opens (or creates) the database file and its tables. Blocking.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let connection = Connection::open(path).map_err(open_error)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = FULL;
                 PRAGMA secure_delete = ON;
                 PRAGMA foreign_keys = ON;",
            )
            .map_err(open_error)?;
        connection.execute_batch(SCHEMA).map_err(open_error)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs `work` in one transaction on a blocking thread.
    async fn transact<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves no half-done
            // transaction (it rolls back on drop), so a poisoned lock is
            // safe to reuse.
            let mut guard = connection
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let transaction = guard.transaction()?;
            let value = work(&transaction)?;
            transaction.commit()?;
            Ok(value)
        })
        .await?
    }

    /// Like [`Self::transact`], then checkpoints the WAL so that deleted
    /// ciphertext does not survive in it.
    async fn transact_erasing<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<(T, bool), StoreError> + Send + 'static,
    {
        let (value, erased) = self.transact(work).await?;
        if erased {
            let connection = Arc::clone(&self.connection);
            tokio::task::spawn_blocking(move || {
                let guard = connection
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                guard.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            })
            .await??;
        }
        Ok(value)
    }
}

fn message_row(transaction: &Transaction<'_>, id: &str) -> Result<Option<MessageRow>, StoreError> {
    let row = transaction
        .query_row(
            "SELECT device_id, state, factor, iterations, verifier_hash, contact,
                    attempts_left, expires_at, last_opened_at
             FROM messages WHERE id = ?1",
            [id],
            |row| {
                Ok(MessageRow {
                    device_id: row.get(0)?,
                    state: row.get(1)?,
                    factor: row.get(2)?,
                    iterations: row.get(3)?,
                    verifier_hash: row.get(4)?,
                    contact: row.get(5)?,
                    attempts_left: row.get(6)?,
                    expires_at: row.get(7)?,
                    last_opened_at: row.get(8)?,
                })
            },
        )
        .optional()?;
    Ok(row)
}

fn add_event(
    transaction: &Transaction<'_>,
    id: &str,
    device_id: &str,
    kind: &str,
    now: i64,
) -> Result<(), StoreError> {
    transaction.execute(
        "INSERT INTO events (message_id, device_id, kind, at) VALUES (?1, ?2, ?3, ?4)",
        params![id, device_id, kind, now],
    )?;
    Ok(())
}

/// Deletes a message's ciphertext and key material and sets its state.
fn erase(
    transaction: &Transaction<'_>,
    id: &str,
    state: &str,
    also_replies: bool,
) -> Result<(), StoreError> {
    transaction.execute(
        "UPDATE messages SET state = ?2, wrapped_key = NULL, verifier_hash = NULL,
                envelope = NULL
         WHERE id = ?1",
        params![id, state],
    )?;
    if also_replies {
        transaction.execute(
            "UPDATE replies SET enc = NULL, ciphertext = NULL WHERE message_id = ?1",
            [id],
        )?;
    }
    Ok(())
}

/// Expires the message if its time has passed and it is still live.
/// Returns whether it did, so the caller checkpoints the WAL.
fn expire_if_due(
    transaction: &Transaction<'_>,
    id: &str,
    row: &mut MessageRow,
    now: i64,
) -> Result<bool, StoreError> {
    if row.state != "live" || row.expires_at > now {
        return Ok(false);
    }
    erase(transaction, id, "expired", true)?;
    add_event(transaction, id, &row.device_id, "expired", now)?;
    row.state = "expired".into();
    Ok(true)
}

/// Checks a verifier hash against a live message, counting a wrong one.
/// Returns the outcome without payload, and whether ciphertext was erased.
fn check_verifier(
    transaction: &Transaction<'_>,
    id: &str,
    verifier_hash: &[u8; 32],
    now: i64,
) -> Result<(Attempt<MessageRow>, bool), StoreError> {
    let Some(mut row) = message_row(transaction, id)? else {
        return Ok((Err(Refusal::NotFound), false));
    };
    let erased = expire_if_due(transaction, id, &mut row, now)?;
    if row.state != "live" {
        let contact = row.contact;
        return Ok((Err(Refusal::Gone { contact }), erased));
    }
    if row.attempts_left == 0 {
        let contact = row.contact;
        return Ok((Err(Refusal::Locked { contact }), erased));
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
        transaction.execute(
            "UPDATE messages SET attempts_left = max_attempts WHERE id = ?1",
            [id],
        )?;
        return Ok((Ok(row), erased));
    }

    let attempts_left = row.attempts_left - 1;
    transaction.execute(
        "UPDATE messages SET attempts_left = ?2 WHERE id = ?1",
        params![id, attempts_left],
    )?;
    add_event(transaction, id, &row.device_id, "wrong-code", now)?;
    if attempts_left == 0 {
        add_event(transaction, id, &row.device_id, "locked", now)?;
    }
    Ok((Err(Refusal::Wrong { attempts_left }), erased))
}

/// Loads the device's own message for a change, expiring it if due.
fn owned_live_message(
    transaction: &Transaction<'_>,
    device_id: &str,
    id: &str,
    now: i64,
) -> Result<(Result<MessageRow, Change>, bool), StoreError> {
    let row = message_row(transaction, id)?.filter(|row| row.device_id == device_id);
    let Some(mut row) = row else {
        return Ok((Err(Change::NotFound), false));
    };
    let erased = expire_if_due(transaction, id, &mut row, now)?;
    if row.state != "live" {
        return Ok((Err(Change::Gone), erased));
    }
    Ok((Ok(row), erased))
}

impl Store for SqliteStore {
    async fn add_enrol_token(
        &self,
        token_hash: [u8; 32],
        label: String,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.transact(move |transaction| {
            transaction.execute(
                "INSERT INTO enrol_tokens (token_hash, label, expires_at) VALUES (?1, ?2, ?3)",
                params![token_hash.as_slice(), label, expires_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn enrol_device(
        &self,
        token_hash: [u8; 32],
        device_id: String,
        public_key: [u8; 32],
        label: String,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.transact(move |transaction| {
            let admin_label: Option<String> = transaction
                .query_row(
                    "DELETE FROM enrol_tokens WHERE token_hash = ?1 AND expires_at > ?2
                     RETURNING label",
                    params![token_hash.as_slice(), now],
                    |row| row.get(0),
                )
                .optional()?;
            let Some(admin_label) = admin_label else {
                return Ok(false);
            };
            let label = if label.is_empty() {
                admin_label
            } else {
                format!("{admin_label} ({label})")
            };
            transaction.execute(
                "INSERT INTO devices (id, public_key, label, enrolled_at) VALUES (?1, ?2, ?3, ?4)",
                params![device_id, public_key.as_slice(), label, now],
            )?;
            Ok(true)
        })
        .await
    }

    async fn device_key(&self, device_id: String) -> Result<Option<[u8; 32]>, StoreError> {
        self.transact(move |transaction| {
            let key: Option<Vec<u8>> = transaction
                .query_row(
                    "SELECT public_key FROM devices WHERE id = ?1",
                    [&device_id],
                    |row| row.get(0),
                )
                .optional()?;
            key.map(|bytes| {
                bytes.try_into().map_err(|_| {
                    StoreError::Corrupt(format!(
                        "device {} has a public key that is not 32 bytes",
                        wire::short_id(&device_id)
                    ))
                })
            })
            .transpose()
        })
        .await
    }

    async fn remember_nonce(
        &self,
        device_id: String,
        nonce: String,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.transact(move |transaction| {
            let seen_at: Option<i64> = transaction
                .query_row(
                    "SELECT seen_at FROM nonces WHERE device_id = ?1 AND nonce = ?2",
                    params![device_id, nonce],
                    |row| row.get(0),
                )
                .optional()?;
            if seen_at.is_some_and(|seen_at| seen_at > now - NONCE_WINDOW_SECONDS) {
                return Ok(false);
            }
            transaction.execute(
                "INSERT OR REPLACE INTO nonces (device_id, nonce, seen_at) VALUES (?1, ?2, ?3)",
                params![device_id, nonce, now],
            )?;
            Ok(true)
        })
        .await
    }

    async fn insert_message(&self, message: NewMessage, now: i64) -> Result<bool, StoreError> {
        self.transact(move |transaction| {
            let inserted = transaction.execute(
                "INSERT INTO messages (id, device_id, state, factor, iterations, wrapped_key,
                        verifier_hash, envelope, contact, max_attempts, attempts_left,
                        created_at, expires_at)
                 VALUES (?1, ?2, 'live', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11)
                 ON CONFLICT (id) DO NOTHING",
                params![
                    message.id,
                    message.device_id,
                    message.lock.factor.as_str(),
                    message.lock.iterations,
                    message.lock.wrapped_key,
                    message.lock.verifier_hash.as_slice(),
                    message.envelope,
                    message.contact,
                    message.max_attempts,
                    now,
                    message.expires_at,
                ],
            )?;
            Ok(inserted == 1)
        })
        .await
    }

    async fn status(
        &self,
        id: String,
        record_open: bool,
        now: i64,
    ) -> Result<Option<Status>, StoreError> {
        self.transact_erasing(move |transaction| {
            let Some(mut row) = message_row(transaction, &id)? else {
                return Ok((None, false));
            };
            let erased = expire_if_due(transaction, &id, &mut row, now)?;
            let contact = row.contact.clone();
            if row.state != "live" {
                return Ok((Some(Status::Gone { contact }), erased));
            }
            if row.attempts_left == 0 {
                return Ok((Some(Status::Locked { contact }), erased));
            }

            let recently_opened = row
                .last_opened_at
                .is_some_and(|at| now - at < OPEN_EVENT_INTERVAL_SECONDS);
            if record_open && !recently_opened {
                transaction.execute(
                    "UPDATE messages SET last_opened_at = ?2 WHERE id = ?1",
                    params![id, now],
                )?;
                add_event(transaction, &id, &row.device_id, "opened", now)?;
            }
            let factor = Factor::from_name(&row.factor)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown factor {:?}", row.factor)))?;
            let status = Status::Open {
                factor,
                iterations: row.iterations,
                contact,
                attempts_left: row.attempts_left,
            };
            Ok((Some(status), erased))
        })
        .await
    }

    async fn unlock(
        &self,
        id: String,
        verifier_hash: [u8; 32],
        now: i64,
    ) -> Result<Attempt<Sealed>, StoreError> {
        self.transact_erasing(move |transaction| {
            let (attempt, erased) = check_verifier(transaction, &id, &verifier_hash, now)?;
            let row = match attempt {
                Ok(row) => row,
                Err(refusal) => return Ok((Err(refusal), erased)),
            };
            let sealed = transaction.query_row(
                "SELECT wrapped_key, envelope FROM messages WHERE id = ?1",
                [&id],
                |sql_row| {
                    Ok(Sealed {
                        wrapped_key: sql_row.get(0)?,
                        envelope: sql_row.get(1)?,
                    })
                },
            )?;
            add_event(transaction, &id, &row.device_id, "unlocked", now)?;
            Ok((Ok(sealed), erased))
        })
        .await
    }

    async fn add_reply(
        &self,
        id: String,
        verifier_hash: [u8; 32],
        enc: Vec<u8>,
        ciphertext: Vec<u8>,
        now: i64,
    ) -> Result<Attempt<i64>, StoreError> {
        self.transact_erasing(move |transaction| {
            let (attempt, erased) = check_verifier(transaction, &id, &verifier_hash, now)?;
            let row = match attempt {
                Ok(row) => row,
                Err(refusal) => return Ok((Err(refusal), erased)),
            };
            transaction.execute(
                "INSERT INTO replies (message_id, device_id, enc, ciphertext, at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, row.device_id, enc, ciphertext, now],
            )?;
            let seq = transaction.last_insert_rowid();
            add_event(transaction, &id, &row.device_id, "replied", now)?;
            Ok((Ok(seq), erased))
        })
        .await
    }

    async fn reissue(
        &self,
        device_id: String,
        id: String,
        lock: Lock,
        now: i64,
    ) -> Result<Change, StoreError> {
        self.transact_erasing(move |transaction| {
            let (row, erased) = owned_live_message(transaction, &device_id, &id, now)?;
            if let Err(change) = row {
                return Ok((change, erased));
            }
            transaction.execute(
                "UPDATE messages SET factor = ?2, iterations = ?3, wrapped_key = ?4,
                        verifier_hash = ?5, attempts_left = max_attempts
                 WHERE id = ?1",
                params![
                    id,
                    lock.factor.as_str(),
                    lock.iterations,
                    lock.wrapped_key,
                    lock.verifier_hash.as_slice(),
                ],
            )?;
            Ok((Change::Done, erased))
        })
        .await
    }

    async fn revoke(&self, device_id: String, id: String, now: i64) -> Result<Change, StoreError> {
        self.transact_erasing(move |transaction| {
            let (row, erased) = owned_live_message(transaction, &device_id, &id, now)?;
            match row {
                Err(Change::Gone) => Ok((Change::Done, erased)),
                Err(change) => Ok((change, erased)),
                Ok(_) => {
                    erase(transaction, &id, "revoked", false)?;
                    add_event(transaction, &id, &device_id, "revoked", now)?;
                    Ok((Change::Done, true))
                }
            }
        })
        .await
    }

    async fn extend(
        &self,
        device_id: String,
        id: String,
        expires_at: i64,
        now: i64,
    ) -> Result<Change, StoreError> {
        self.transact_erasing(move |transaction| {
            let (row, erased) = owned_live_message(transaction, &device_id, &id, now)?;
            if let Err(change) = row {
                return Ok((change, erased));
            }
            transaction.execute(
                "UPDATE messages SET expires_at = ?2 WHERE id = ?1",
                params![id, expires_at],
            )?;
            Ok((Change::Done, erased))
        })
        .await
    }

    async fn events(
        &self,
        device_id: String,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        self.transact(move |transaction| {
            let mut statement = transaction.prepare(
                "SELECT seq, message_id, kind, at FROM events
                 WHERE device_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )?;
            let rows = statement.query_map(params![device_id, after, limit], |row| {
                Ok(Event {
                    seq: row.get(0)?,
                    id: row.get(1)?,
                    kind: row.get(2)?,
                    at: row.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn replies(
        &self,
        device_id: String,
        after: i64,
        limit: u32,
        max_bytes: usize,
    ) -> Result<Vec<Reply>, StoreError> {
        self.transact(move |transaction| {
            let mut statement = transaction.prepare(
                "SELECT seq, message_id, enc, ciphertext, at FROM replies
                 WHERE device_id = ?1 AND seq > ?2 AND ciphertext IS NOT NULL
                 ORDER BY seq LIMIT ?3",
            )?;
            let mut rows = statement.query(params![device_id, after, limit])?;
            let mut replies = Vec::new();
            let mut total = 0;
            while let Some(row) = rows.next()? {
                let reply = Reply {
                    seq: row.get(0)?,
                    id: row.get(1)?,
                    enc: row.get(2)?,
                    ciphertext: row.get(3)?,
                    at: row.get(4)?,
                };
                total += reply.ciphertext.len();
                if total > max_bytes && !replies.is_empty() {
                    break;
                }
                replies.push(reply);
            }
            Ok(replies)
        })
        .await
    }

    async fn sweep(&self, now: i64) -> Result<Sweep, StoreError> {
        self.transact_erasing(move |transaction| {
            let due: Vec<(String, String)> = {
                let mut statement = transaction.prepare(
                    "SELECT id, device_id FROM messages WHERE state = 'live' AND expires_at <= ?1",
                )?;
                let rows = statement.query_map([now], |row| Ok((row.get(0)?, row.get(1)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            for (id, device_id) in &due {
                erase(transaction, id, "expired", true)?;
                add_event(transaction, id, device_id, "expired", now)?;
            }

            let tokens =
                transaction.execute("DELETE FROM enrol_tokens WHERE expires_at <= ?1", [now])?;
            let nonces = transaction.execute(
                "DELETE FROM nonces WHERE seen_at <= ?1",
                [now - NONCE_WINDOW_SECONDS],
            )?;
            let sweep = Sweep {
                expired: due.len(),
                pruned: tokens + nonces,
            };
            Ok((sweep, !due.is_empty()))
        })
        .await
    }
}
