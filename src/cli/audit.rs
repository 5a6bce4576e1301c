//! `wardmail audit`: list, export and verify the audit log of a profile.
//! These commands read only the local store, so they need the store key in
//! the keyring but no account password and no network.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{ArgGroup, Subcommand};
use wardmail::account::Profile;
use wardmail::audit::{self, AuditError, AuditRecord, VerifyReport};
use wardmail::session::SessionError;
use wardmail::store::Store;

/// Audit log subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List every entry, oldest first: time, kind, Message-ID, outcome and
    /// each recipient with its delivery method.
    List {
        /// Print the entries as JSON, with their hashes.
        #[arg(long)]
        json: bool,
    },
    /// Write the whole log as CSV or JSON, with each entry's hashes.
    #[command(group(ArgGroup::new("format").required(true).args(["csv", "json"])))]
    Export {
        /// CSV (RFC 4180, one row per entry).
        #[arg(long)]
        csv: bool,
        /// JSON (an array of entries).
        #[arg(long)]
        json: bool,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Check the hash chain. Exits with 0 when the log is intact and 1 when
    /// an entry was edited, inserted or deleted (the first such entry is
    /// named), or when the log cannot be read.
    Verify {
        /// Also check that entry SEQ still has HASH, as recorded earlier
        /// from this command's output. Repeatable.
        #[arg(long, value_name = "SEQ:HASH", value_parser = parse_anchor)]
        anchor: Vec<(u64, String)>,
    },
}

fn parse_anchor(value: &str) -> Result<(u64, String), String> {
    let invalid = || format!("invalid anchor {value:?}: expected SEQ:HASH, e.g. 12:3fa9…");
    let (seq, hash) = value.split_once(':').ok_or_else(invalid)?;
    let seq = seq.parse().map_err(|_| invalid())?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "invalid anchor hash {hash:?}: expected 64 hex digits as printed by `wardmail audit verify`"
        ));
    }
    Ok((seq, hash.to_ascii_lowercase()))
}

/// Runs an audit subcommand.
pub async fn run(profile: Profile, command: AuditCommand) -> Result<ExitCode, SessionError> {
    let store = open_store(profile).await?;
    match command {
        AuditCommand::List { json } => list(store, json).await,
        AuditCommand::Export { csv, output, .. } => export(store, csv, output).await,
        AuditCommand::Verify { anchor } => verify(store, anchor).await,
    }
}

async fn open_store(profile: Profile) -> Result<Arc<Store>, SessionError> {
    unblock(move || {
        let config = profile.load()?;
        Ok(Arc::new(Store::open_profile(&profile, &config)?))
    })
    .await
}

async fn unblock<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, SessionError> + Send + 'static,
) -> Result<T, SessionError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| SessionError::Task(e.to_string()))?
}

async fn records(store: Arc<Store>) -> Result<Vec<AuditRecord>, SessionError> {
    unblock(move || audit::list(&store).map_err(audit_error)).await
}

fn audit_error(error: AuditError) -> SessionError {
    match error {
        AuditError::Store(error) => SessionError::Store(error),
        other => SessionError::Task(other.to_string()),
    }
}

async fn list(store: Arc<Store>, json: bool) -> Result<ExitCode, SessionError> {
    let records = records(store).await?;
    if json {
        super::print_json(&records);
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        println!("the audit log is empty");
    }
    for record in &records {
        let entry = &record.entry;
        let recipients = entry
            .recipients
            .iter()
            .map(|r| format!("{} ({})", r.address, r.method))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            entry.seq,
            audit::utc_timestamp(entry.time),
            entry.account,
            entry.kind,
            entry.message_id.as_deref().unwrap_or("-"),
            entry.outcome,
            recipients
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn export(
    store: Arc<Store>,
    csv: bool,
    output: Option<PathBuf>,
) -> Result<ExitCode, SessionError> {
    let records = records(store).await?;
    let mut bytes = Vec::new();
    let written = if csv {
        audit::write_csv(&records, &mut bytes)
    } else {
        audit::write_json(&records, &mut bytes)
    };
    written.map_err(|e| SessionError::Task(format!("cannot format the audit log: {e}")))?;
    match output {
        Some(path) => tokio::fs::write(&path, &bytes)
            .await
            .map_err(|e| SessionError::Task(format!("cannot write {}: {e}", path.display())))?,
        None => std::io::stdout()
            .write_all(&bytes)
            .map_err(|e| SessionError::Task(format!("cannot write to standard output: {e}")))?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn verify(store: Arc<Store>, anchors: Vec<(u64, String)>) -> Result<ExitCode, SessionError> {
    let seqs: Vec<u64> = anchors.iter().map(|(seq, _)| *seq).collect();
    let (report, stored): (VerifyReport, Vec<Option<String>>) = unblock(move || {
        let report = audit::verify(&store)?;
        let stored = seqs
            .iter()
            .map(|seq| audit::hash_at(&store, *seq))
            .collect::<Result<_, _>>()?;
        Ok((report, stored))
    })
    .await?;
    if !report.intact() {
        println!("{}", report.summary());
        return Ok(ExitCode::FAILURE);
    }
    for ((seq, expected), found) in anchors.into_iter().zip(stored) {
        match found {
            Some(hash) if hash == expected => {}
            Some(_) => {
                println!(
                    "The audit log was rewritten: entry {seq} no longer has the recorded hash."
                );
                return Ok(ExitCode::FAILURE);
            }
            None => {
                println!("The audit log was rewritten: entry {seq}, recorded earlier, is gone.");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    println!("{}", report.summary());
    Ok(ExitCode::SUCCESS)
}
