//! The audit log: a hash chain of events in the encrypted store. Every
//! send attempt that reaches a final state appends one "send" entry (time,
//! account, Message-ID, each recipient with the delivery method, evidence
//! and outcome, the policy decision, any override, the outcome). Other
//! kinds of event use the same entry with their own `kind` and `details`.
//! No entry contains a subject or a body.
//!
//! # The chain
//!
//! Entry `n` is stored as its canonical JSON (`serde_json` output of
//! [`AuditEntry`], whose fields are written in declaration order and whose
//! only map is sorted). Its hash is `SHA-256(prev_hash || json)`, where
//! `prev_hash` is the lower-case hex hash of entry `n - 1` (64 zeros for
//! the first) and `||` joins the two as bytes. The entry's own `seq` is
//! inside the JSON, so moving an entry changes its hash. A separate head
//! row, written in the same transaction as each entry, records the count
//! and the newest hash, so deleting the newest entries is detected too.
//!
//! # What [`verify`] proves, and what it does not
//!
//! It detects an entry whose text was edited, an entry inserted into the
//! chain, entries deleted from the middle or the end, and an entry
//! replaced by one with a recomputed hash (the next entry then links to a
//! hash that no longer exists). It names the first damaged `seq`.
//!
//! It cannot detect a rewrite by someone who can open the store: the store
//! key is in the user's OS keyring, and whoever holds it can recompute
//! every hash from the damaged entry onward and update the head row. There
//! is no secret in the chain that such a person lacks. To notice that, an
//! administrator records the head hash that `wardmail audit verify` prints
//! somewhere the user cannot write, and later checks that the entry with
//! that `seq` still has that hash (`--anchor SEQ:HASH`). Deleting the whole
//! store file removes the log with it, which is visible but not prevented.

mod export;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::guard::FloorChoice;
use crate::store::{OutboxEntry, Store, StoreError, sql};

pub use export::{utc_timestamp, write_csv, write_json};

/// The `prev_hash` of the first entry: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The method recorded for a recipient when the sender passed no route
/// plan: plain submission to the account's SMTP server over TLS.
pub const DEFAULT_METHOD: &str = "tls";

/// The evidence recorded with [`DEFAULT_METHOD`].
pub const DEFAULT_EVIDENCE: &str = "submission over TLS";

/// The decision recorded when the sender passed no route plan.
pub const DEFAULT_DECISION: &str = "not assessed";

/// Errors from reading the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored entry is not valid JSON of an entry.
    #[error(
        "cannot read audit log entry {seq}: {reason}; run `wardmail audit verify` to see what \
         was changed"
    )]
    Unreadable {
        /// The entry's sequence number.
        seq: u64,
        /// The JSON error.
        reason: String,
    },
    /// A background task failed.
    #[error("cannot use the audit log: its worker stopped ({0})")]
    Worker(String),
}

/// One recipient of a sent message, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecipient {
    /// The recipient's address.
    pub address: String,
    /// The delivery method of this recipient's copy, for example "tls".
    pub method: String,
    /// A short summary of why that method was chosen.
    pub evidence: String,
    /// This recipient's outcome, for example "accepted" or "failed".
    pub outcome: String,
}

/// One event in the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1; [`append`] assigns it.
    pub seq: u64,
    /// When the event happened, Unix seconds.
    pub time: i64,
    /// The account id.
    pub account: String,
    /// The event kind, for example "send".
    pub kind: String,
    /// The Message-ID the event concerns, with angle brackets, if any.
    pub message_id: Option<String>,
    /// The recipients with their method, evidence and outcome.
    pub recipients: Vec<AuditRecipient>,
    /// The policy decision, for example "not assessed" or "allowed".
    pub decision: String,
    /// The user's reason when they overrode the policy.
    pub override_reason: Option<String>,
    /// The event's outcome, for example "accepted", "failed", "uncertain".
    pub outcome: String,
    /// Further fields of this kind of event, sorted by name. A send stores
    /// the SMTP error here as "error" when there was one.
    pub details: BTreeMap<String, String>,
}

impl AuditEntry {
    /// Starts an entry of `kind` for `account`, dated now, with no
    /// recipients and the default decision.
    pub fn new(account: &str, kind: &str) -> AuditEntry {
        AuditEntry {
            seq: 0,
            time: now(),
            account: account.to_owned(),
            kind: kind.to_owned(),
            message_id: None,
            recipients: Vec::new(),
            decision: DEFAULT_DECISION.to_owned(),
            override_reason: None,
            outcome: String::new(),
            details: BTreeMap::new(),
        }
    }

    /// Returns the canonical JSON that the hash covers.
    pub fn canonical_json(&self) -> String {
        // Serializing cannot fail: every field is a string, an integer, an
        // option, a vector of such structs or a map with string keys.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// An entry with its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// The entry.
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// The previous entry's hash (hex).
    pub prev_hash: String,
    /// This entry's hash (hex).
    pub hash: String,
}

/// One recipient's route as the sender planned it, before the outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRecipient {
    /// The recipient's address.
    pub address: String,
    /// The planned method, for example "tls", "openpgp", "smime", "portal".
    pub method: String,
    /// A short summary of the evidence for that method.
    pub evidence: String,
}

/// The sender's plan for a send: each recipient's method and evidence,
/// the policy decision and any override. The outbox keeps it with
/// the message, so a retry after a restart records the same plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDraft {
    /// The planned recipients.
    pub recipients: Vec<PlannedRecipient>,
    /// The policy decision.
    pub decision: String,
    /// The user's reason when they overrode the policy.
    pub override_reason: Option<String>,
    /// What the user chose for each recipient below the reply's floor (see
    /// [`crate::guard`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<FloorChoice>,
}

impl AuditDraft {
    /// Returns the plan used when the sender passed none: every recipient
    /// by [`DEFAULT_METHOD`], decision [`DEFAULT_DECISION`].
    pub fn submission_only(recipients: &[String]) -> AuditDraft {
        AuditDraft {
            recipients: recipients
                .iter()
                .map(|address| PlannedRecipient {
                    address: address.clone(),
                    method: DEFAULT_METHOD.to_owned(),
                    evidence: DEFAULT_EVIDENCE.to_owned(),
                })
                .collect(),
            decision: DEFAULT_DECISION.to_owned(),
            override_reason: None,
            choices: Vec::new(),
        }
    }
}

/// The final state of one send attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// The SMTP server accepted the message.
    Accepted,
    /// Submission failed before the message text was sent.
    Failed,
    /// Submission stopped at a point where the server may have accepted it.
    Uncertain,
}

impl SendOutcome {
    /// Returns the word stored in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            SendOutcome::Accepted => "accepted",
            SendOutcome::Failed => "failed",
            SendOutcome::Uncertain => "uncertain",
        }
    }
}

/// Computes an entry's hash: lower-case hex SHA-256 of `prev_hash`
/// followed by the entry's canonical JSON.
pub fn chain_hash(prev_hash: &str, json: &str) -> String {
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(json.as_bytes());
    hasher
        .finish()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Appends an entry to the chain and returns it with its `seq` and hashes.
/// The `seq` passed in is ignored. Blocks on SQLite.
pub fn append(store: &Store, mut entry: AuditEntry) -> Result<AuditRecord, StoreError> {
    let mut db = store.db();
    // IMMEDIATE takes the write lock before the head is read, so two
    // processes cannot both append after the same head.
    let transaction = db
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql("appending to the audit log"))?;
    let head: Option<(i64, String)> = transaction
        .query_row(
            "SELECT count, hash FROM audit_head WHERE id = 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(sql("appending to the audit log"))?;
    let (count, prev_hash) = head.unwrap_or((0, GENESIS.to_owned()));

    entry.seq = count as u64 + 1;
    let json = entry.canonical_json();
    let hash = chain_hash(&prev_hash, &json);
    transaction
        .execute(
            "INSERT INTO audit_log (seq, entry, prev_hash, hash) VALUES (?1, ?2, ?3, ?4)",
            params![entry.seq as i64, json, prev_hash, hash],
        )
        .map_err(sql("appending to the audit log"))?;
    transaction
        .execute(
            "INSERT INTO audit_head (id, count, hash) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET count = excluded.count, hash = excluded.hash",
            params![entry.seq as i64, hash],
        )
        .map_err(sql("appending to the audit log"))?;
    transaction
        .commit()
        .map_err(sql("appending to the audit log"))?;
    Ok(AuditRecord {
        entry,
        prev_hash,
        hash,
    })
}

/// A stored row, before its JSON is read.
struct Row {
    seq: u64,
    json: String,
    prev_hash: String,
    hash: String,
}

fn rows(store: &Store) -> Result<Vec<Row>, StoreError> {
    let db = store.db();
    let mut statement = db
        .prepare_cached("SELECT seq, entry, prev_hash, hash FROM audit_log ORDER BY seq")
        .map_err(sql("reading the audit log"))?;
    statement
        .query_map([], |row| {
            Ok(Row {
                seq: row.get::<_, i64>(0)? as u64,
                json: row.get(1)?,
                prev_hash: row.get(2)?,
                hash: row.get(3)?,
            })
        })
        .map_err(sql("reading the audit log"))?
        .collect::<Result<_, _>>()
        .map_err(sql("reading the audit log"))
}

/// Reads every entry, oldest first. Blocks on SQLite.
pub fn list(store: &Store) -> Result<Vec<AuditRecord>, AuditError> {
    rows(store)?
        .into_iter()
        .map(|row| {
            let entry: AuditEntry =
                serde_json::from_str(&row.json).map_err(|error| AuditError::Unreadable {
                    seq: row.seq,
                    reason: error.to_string(),
                })?;
            Ok(AuditRecord {
                entry,
                prev_hash: row.prev_hash,
                hash: row.hash,
            })
        })
        .collect()
}

/// The kind of damage [`verify`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Damage {
    /// An entry's content, sequence number or hash was changed, or the
    /// entry was replaced.
    Edited,
    /// An entry that was never appended is in the chain.
    Inserted,
    /// One or more entries are missing.
    Deleted,
}

impl Damage {
    /// Returns the word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Damage::Edited => "edited",
            Damage::Inserted => "inserted",
            Damage::Deleted => "deleted",
        }
    }
}

/// The first break in the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Break {
    /// The first damaged sequence number.
    pub seq: u64,
    /// The kind of damage.
    pub damage: Damage,
    /// The finding, in words.
    pub detail: String,
}

/// The result of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Entries in the log.
    pub entries: u64,
    /// The hash of the newest entry as stored (the genesis value when empty).
    pub head: String,
    /// The first break, or None when the chain is intact.
    pub broken: Option<Break>,
}

impl VerifyReport {
    /// Returns whether the chain is intact.
    pub fn intact(&self) -> bool {
        self.broken.is_none()
    }

    /// Describes the result in a sentence.
    pub fn summary(&self) -> String {
        match &self.broken {
            None => format!(
                "The audit log is intact: {} entries, newest hash {}.",
                self.entries, self.head
            ),
            Some(found) => format!(
                "The audit log was changed: entry {} was {} ({}).",
                found.seq,
                found.damage.as_str(),
                found.detail
            ),
        }
    }
}

/// Returns the stored hash of entry `seq`, if the log has that entry, to
/// compare with a hash an administrator recorded elsewhere. Blocks on
/// SQLite.
pub fn hash_at(store: &Store, seq: u64) -> Result<Option<String>, StoreError> {
    store
        .db()
        .query_row(
            "SELECT hash FROM audit_log WHERE seq = ?1",
            [seq as i64],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql("reading the audit log"))
}

/// Walks the chain and reports the first break. Blocks on SQLite.
pub fn verify(store: &Store) -> Result<VerifyReport, StoreError> {
    let rows = rows(store)?;
    let head: Option<(i64, String)> = store
        .db()
        .query_row(
            "SELECT count, hash FROM audit_head WHERE id = 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(sql("reading the audit log"))?;
    let head_hash = head
        .as_ref()
        .map_or_else(|| GENESIS.to_owned(), |(_, hash)| hash.clone());
    let report = |broken: Option<Break>| VerifyReport {
        entries: rows.len() as u64,
        head: head_hash.clone(),
        broken,
    };
    let broken = |seq: u64, damage: Damage, detail: String| {
        Some(Break {
            seq,
            damage,
            detail,
        })
    };

    let mut expected = 1u64;
    let mut previous = GENESIS.to_owned();
    let mut seen: HashMap<&str, u64> = HashMap::new();
    for row in &rows {
        if let Some((count, _)) = &head
            && row.seq > *count as u64
        {
            let detail = format!("the log records {count} entries, but this one follows them");
            return Ok(report(broken(row.seq, Damage::Inserted, detail)));
        }
        if chain_hash(&row.prev_hash, &row.json) != row.hash {
            let detail = "its content does not match its hash".to_owned();
            return Ok(report(broken(row.seq, Damage::Edited, detail)));
        }
        let entry: AuditEntry = match serde_json::from_str(&row.json) {
            Ok(entry) => entry,
            Err(error) => {
                let detail = format!("its content is not an audit entry: {error}");
                return Ok(report(broken(row.seq, Damage::Edited, detail)));
            }
        };
        if row.seq > expected {
            let detail = missing(expected, row.seq - 1);
            return Ok(report(broken(expected, Damage::Deleted, detail)));
        }
        if row.prev_hash != previous {
            if let Some(&earlier) = seen.get(row.prev_hash.as_str()) {
                let detail = format!(
                    "entry {} links to entry {earlier}, so the entries between were added later",
                    row.seq
                );
                return Ok(report(broken(earlier + 1, Damage::Inserted, detail)));
            }
            if entry.seq > row.seq {
                let detail = format!(
                    "the entry stored as {} was written as {}, so the entries before it were \
                     removed and the rest renumbered",
                    row.seq, entry.seq
                );
                return Ok(report(broken(row.seq, Damage::Deleted, detail)));
            }
            let detail = format!(
                "entry {} links to a different hash, so this entry was replaced",
                row.seq
            );
            return Ok(report(broken(expected - 1, Damage::Edited, detail)));
        }
        if entry.seq != row.seq {
            let detail = format!("it was written as entry {}", entry.seq);
            return Ok(report(broken(row.seq, Damage::Edited, detail)));
        }
        seen.insert(&row.hash, row.seq);
        previous.clone_from(&row.hash);
        expected += 1;
    }

    let count = expected - 1;
    match &head {
        None if count > 0 => {
            let detail = "the record of the newest entry is missing".to_owned();
            Ok(report(broken(count, Damage::Edited, detail)))
        }
        Some((recorded, _)) if (*recorded as u64) > count => {
            let detail = format!("{}, the newest ones", missing(count + 1, *recorded as u64));
            Ok(report(broken(count + 1, Damage::Deleted, detail)))
        }
        Some((_, hash)) if *hash != previous => {
            let detail = "it does not match the recorded newest hash".to_owned();
            Ok(report(broken(count, Damage::Edited, detail)))
        }
        _ => Ok(report(None)),
    }
}

fn missing(first: u64, last: u64) -> String {
    if first == last {
        format!("entry {first} is missing")
    } else {
        format!("entries {first} to {last} are missing")
    }
}

/// Stores the sender's plan with an outbox entry. Blocks on SQLite.
pub fn save_plan(store: &Store, outbox: i64, draft: &AuditDraft) -> Result<(), StoreError> {
    // Serializing cannot fail: the draft contains only strings, options
    // and a vector of structs of strings.
    let plan = serde_json::to_string(draft).unwrap_or_default();
    store
        .db()
        .execute(
            "INSERT INTO outbox_audit_plan (outbox, plan) VALUES (?1, ?2)
             ON CONFLICT (outbox) DO UPDATE SET plan = excluded.plan",
            params![outbox, plan],
        )
        .map(drop)
        .map_err(sql("saving the route plan"))
}

/// Reads the plan stored with an outbox entry, or the submission-only plan
/// when none was stored or it cannot be read.
pub fn stored_plan(store: &Store, entry: &OutboxEntry) -> Result<AuditDraft, StoreError> {
    let stored: Option<String> = store
        .db()
        .query_row(
            "SELECT plan FROM outbox_audit_plan WHERE outbox = ?1",
            [entry.id],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql("reading the route plan"))?;
    let parsed = stored.and_then(|text| match serde_json::from_str(&text) {
        Ok(draft) => Some(draft),
        Err(_) => {
            tracing::warn!(
                outbox = entry.id,
                "stored route plan is unreadable; recording TLS"
            );
            None
        }
    });
    Ok(parsed.unwrap_or_else(|| AuditDraft::submission_only(&entry.recipients)))
}

/// Builds the "send" entry for one attempt on an outbox entry, from its
/// stored plan. A recipient the plan does not name is recorded with the
/// default method.
pub fn send_entry(
    store: &Store,
    entry: &OutboxEntry,
    outcome: SendOutcome,
    error: Option<&str>,
) -> Result<AuditEntry, StoreError> {
    let draft = stored_plan(store, entry)?;
    let mut record = AuditEntry::new(&entry.account, "send");
    record.message_id = Some(entry.message_id.clone());
    record.recipients = entry
        .recipients
        .iter()
        .map(|address| {
            let planned = draft
                .recipients
                .iter()
                .find(|p| p.address.eq_ignore_ascii_case(address));
            AuditRecipient {
                address: address.clone(),
                method: planned.map_or(DEFAULT_METHOD, |p| &p.method).to_owned(),
                evidence: planned.map_or(DEFAULT_EVIDENCE, |p| &p.evidence).to_owned(),
                outcome: outcome.as_str().to_owned(),
            }
        })
        .collect();
    record.decision = draft.decision;
    record.override_reason = draft.override_reason;
    if !draft.choices.is_empty() {
        let choices: Vec<String> = draft
            .choices
            .iter()
            .map(|choice| {
                format!(
                    "{}: {} ({})",
                    choice.address,
                    choice.choice.label(),
                    choice.below
                )
            })
            .collect();
        record
            .details
            .insert("reply-guard".to_owned(), choices.join("; "));
    }
    record.outcome = outcome.as_str().to_owned();
    if let Some(error) = error {
        record.details.insert("error".to_owned(), error.to_owned());
    }
    Ok(record)
}

/// Appends the "send" entry for one attempt on an outbox entry, on the
/// blocking pool.
pub async fn record_send(
    store: &Arc<Store>,
    entry: &OutboxEntry,
    outcome: SendOutcome,
    error: Option<String>,
) -> Result<AuditRecord, AuditError> {
    let store = store.clone();
    let entry = entry.clone();
    tokio::task::spawn_blocking(move || {
        let record = send_entry(&store, &entry, outcome, error.as_deref())?;
        let appended = append(&store, record)?;
        tracing::info!(
            account = %entry.account,
            outbox = entry.id,
            seq = appended.entry.seq,
            outcome = outcome.as_str(),
            "send recorded in the audit log"
        );
        Ok(appended)
    })
    .await
    .map_err(|error| AuditError::Worker(error.to_string()))?
}

/// Runs an SQL statement on the audit tables, so tests can tamper with the
/// log as an attacker with the store key could. Not for production use.
#[doc(hidden)]
pub fn tamper_for_tests(store: &Store, statement: &str) -> Result<(), StoreError> {
    store
        .db()
        .execute_batch(statement)
        .map_err(sql("changing the audit log in a test"))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
