//! The headless command line: account setup, sync, listing, reading and
//! sending over the same core as the window, for administrators and
//! scripts.

// The command line's output is its purpose.
#![allow(clippy::print_stdout)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

mod assess;
mod audit;
mod portal;
mod reply;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand};
use serde::Serialize;
use wardmail::account::{Account, Profile, Security, Server, account_id};
use wardmail::policy::{Location, POLICY_ENV};
use wardmail::secret::Secret;
use wardmail::session::{self, Session, SessionError};
use wardmail::store::{ListRow, OutboxState};
use wardmail::sync::Progress;
use wardmail::wkd::{Absence, Outcome};

/// Wardmail: a mail client that shows how each recipient's copy travels.
#[derive(Debug, Parser)]
#[command(
    version,
    about,
    override_usage = "wardmail [OPTIONS] [MAILTO_URI]\n       wardmail [OPTIONS] <COMMAND>"
)]
pub struct Arguments {
    /// Profile directory holding the configuration and the local store
    /// (default: the platform's configuration and data directories).
    #[arg(long, global = true, env = "WARDMAIL_PROFILE")]
    pub profile: Option<PathBuf>,
    /// A mailto: link (RFC 6068) to open in the composer, as the desktop
    /// passes it when Wardmail is the mail handler. Attachment fields in it
    /// are dropped.
    // NOTE: macOS delivers a clicked link as an Apple Event, not as this
    // argument, and winit 0.30 under iced 0.14 offers no way to receive it.
    // On macOS a clicked link therefore opens Wardmail without the composer.
    // NOTE: each link starts another process with its own window, even when
    // Wardmail is open; both then use the same profile and store. Passing
    // the link to the running window needs a single-instance channel.
    #[arg(value_name = "MAILTO_URI", value_parser = mailto_argument)]
    pub mailto: Option<String>,
    /// What to do; without a subcommand the window opens.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Sync every folder of the account into the local store.
    Sync(AccountChoice),
    /// List the folders with their message counts.
    Folders {
        #[command(flatten)]
        account: AccountChoice,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List the messages of a folder, newest first, from the local store.
    List {
        /// Folder name (as shown by `folders`) or role (inbox, sent, ...).
        folder: String,
        #[command(flatten)]
        account: AccountChoice,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Maximum number of messages (0 = all).
        #[arg(long, default_value_t = 0)]
        limit: u32,
    },
    /// Print one message: headers, text and attachments.
    Show {
        /// Folder name or role.
        folder: String,
        /// The message's UID.
        uid: u32,
        #[command(flatten)]
        account: AccountChoice,
        /// Print the raw message instead.
        #[arg(long)]
        raw: bool,
    },
    /// Send a message file (RFC 5322) through the outbox.
    Send {
        /// The .eml file.
        file: PathBuf,
        #[command(flatten)]
        account: AccountChoice,
        /// Send the copies of recipients below the floor of the message
        /// this one answers or forwards anyway, for this reason, which goes
        /// into the audit log. The clinic policy can forbid it.
        #[arg(long, value_name = "TEXT")]
        override_reason: Option<String>,
    },
    /// Show the outbox, or retry its entries.
    Outbox {
        #[command(flatten)]
        account: AccountChoice,
        /// Retry every queued or failed entry.
        #[arg(long)]
        retry: bool,
        /// Send this entry again even though it may already have been sent.
        #[arg(long, value_name = "ID")]
        resend: Option<i64>,
    },
    /// Show where the clinic policy is read from, and check it.
    Policy,
    /// Show how a message file is protected: encryption, signatures,
    /// signer against From, per-part protection, warnings. Uses the
    /// account's keys and trusted CAs (see `keys`).
    Inspect {
        /// The .eml file.
        file: PathBuf,
        #[command(flatten)]
        account: AccountChoice,
        /// Print the protection model as JSON (schema in docs/inspect-json.md).
        #[arg(long)]
        json: bool,
        /// When the message is encrypted to your passphrase-protected
        /// OpenPGP key, read the passphrase from standard input and unlock it.
        #[arg(long)]
        unlock: bool,
    },
    /// Show how each recipient's copy of a message would travel under the
    /// clinic policy: the method per recipient, or blocked with the reason.
    Plan {
        /// To recipients (repeat or separate with commas).
        #[arg(long, value_delimiter = ',')]
        to: Vec<String>,
        /// Cc recipients.
        #[arg(long, value_delimiter = ',')]
        cc: Vec<String>,
        /// Bcc recipients.
        #[arg(long, value_delimiter = ',')]
        bcc: Vec<String>,
        /// routine, phi or restricted (default: the policy's default).
        #[arg(long)]
        sensitivity: Option<String>,
        /// Plan a reply to this message file (.eml): its recipients, the
        /// floor set by how it arrived, and a warning for each recipient
        /// whose copy would travel below that floor.
        #[arg(long, value_name = "FILE")]
        reply_to: Option<PathBuf>,
        /// With --reply-to, reply to all: add the original To and Cc.
        #[arg(long, requires = "reply_to")]
        all: bool,
        #[command(flatten)]
        account: AccountChoice,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage OpenPGP keys, S/MIME certificates and private keys, and
    /// trusted CAs.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Show how a message to each address would travel: keys held, WKD,
    /// and TLS for the recipient's domain (MX, MTA-STS, DANE, STARTTLS
    /// probe, REQUIRETLS at submission). See docs/assessment.md.
    Assess {
        /// Recipient addresses.
        #[arg(required = true, value_name = "ADDRESS")]
        addresses: Vec<String>,
        #[command(flatten)]
        account: AccountChoice,
        #[command(flatten)]
        options: assess::AssessArguments,
    },
    /// List, export or verify the audit log of sent messages.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Enrol with the clinic's secure portal and manage what went through it.
    #[command(subcommand)]
    Portal(portal::PortalCommand),
}

/// Keys subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the account's OpenPGP keys and S/MIME identities, with
    /// expiry, where each key came from and whether it is verified, and
    /// the correspondents' S/MIME certificates.
    List {
        #[command(flatten)]
        account: AccountChoice,
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Import a key file, recognised by its content: OpenPGP (.asc or
    /// binary) or PKCS#12 (.p12/.pfx, password on standard input).
    Import {
        /// The key file.
        file: PathBuf,
        #[command(flatten)]
        account: AccountChoice,
    },
    /// Write a public OpenPGP key, armored, to standard output or a file.
    Export {
        /// The key's fingerprint.
        fingerprint: String,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        account: AccountChoice,
    },
    /// Generate an OpenPGP key for the account's address.
    Generate {
        /// cv25519 (default) or rsa4096.
        #[arg(long, default_value = "cv25519")]
        algorithm: String,
        /// Days until the key expires; 0 for never.
        #[arg(long, default_value_t = 1095)]
        expires_days: u64,
        #[command(flatten)]
        account: AccountChoice,
    },
    /// Mark a key's fingerprint as verified, after comparing it with its
    /// owner over the phone or in person. This also accepts a changed key.
    Verify {
        /// The key's fingerprint.
        fingerprint: String,
        #[command(flatten)]
        account: AccountChoice,
    },
    /// Revoke one of your own OpenPGP keys.
    Revoke {
        /// The key's fingerprint.
        fingerprint: String,
        #[command(flatten)]
        account: AccountChoice,
    },
    /// Import a .p12/.pfx file (certificate and private key). The password
    /// is read from standard input and not kept.
    ImportP12 {
        /// The .p12 or .pfx file (DER or PEM-armored).
        file: PathBuf,
        #[command(flatten)]
        account: AccountChoice,
    },
    /// Import correspondents' S/MIME certificates (.cer, .der, .pem or
    /// .p7b) for encrypting to them. CA certificates in the file are kept
    /// as their chain but not trusted (see `trust-ca`).
    ImportCert {
        /// The certificate file.
        file: PathBuf,
        #[command(flatten)]
        account: AccountChoice,
    },
    /// Import OpenPGP certificates or secret keys (.asc or binary).
    ImportPgp {
        /// The key file.
        file: PathBuf,
        #[command(flatten)]
        account: AccountChoice,
    },
    /// Look up a correspondent's OpenPGP certificate in the Web Key
    /// Directory (WKD) of their mail domain. Exits with 0 when one is found,
    /// 2 when the domain publishes none for the address, 1 on errors.
    Wkd {
        /// The correspondent's e-mail address.
        address: String,
        /// Import the certificates found into the account's keys.
        #[arg(long)]
        import: bool,
        #[command(flatten)]
        account: AccountChoice,
    },
    /// Trust the CA certificates in a .pem, .cer or .der file for S/MIME.
    TrustCa {
        /// The certificate file.
        file: PathBuf,
        #[command(flatten)]
        account: AccountChoice,
    },
}

/// Which account to use.
#[derive(Debug, Args)]
pub struct AccountChoice {
    /// Account id or address (default: the first account).
    #[arg(long)]
    account: Option<String>,
}

/// Account subcommands.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Add or replace an account. The password is read from standard input.
    Add(AddAccount),
    /// Test the IMAP and SMTP settings of a saved account.
    Test(AccountChoice),
    /// List the accounts of the profile.
    List,
}

/// Settings for `account add`.
#[derive(Debug, Args)]
pub struct AddAccount {
    /// E-mail address.
    #[arg(long)]
    address: String,
    /// Name shown in From.
    #[arg(long, default_value = "")]
    name: String,
    /// Login name (default: the address).
    #[arg(long)]
    username: Option<String>,
    /// IMAP host.
    #[arg(long)]
    imap_host: String,
    /// IMAP port (default: 993 for tls, 143 for starttls).
    #[arg(long)]
    imap_port: Option<u16>,
    /// IMAP security: tls or starttls.
    #[arg(long, default_value = "tls")]
    imap_security: Security,
    /// SMTP submission host.
    #[arg(long)]
    smtp_host: String,
    /// SMTP port (default: 465 for tls, 587 for starttls).
    #[arg(long)]
    smtp_port: Option<u16>,
    /// SMTP security: tls or starttls.
    #[arg(long, default_value = "starttls")]
    smtp_security: Security,
    /// PEM file with the clinic's CA certificates, trusted besides the
    /// system roots.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Save without testing the connection first.
    #[arg(long)]
    no_test: bool,
}

/// Parses the command line, or prints the error and exits.
pub fn parse() -> Arguments {
    parse_from(std::env::args_os()).unwrap_or_else(|error| error.exit())
}

fn parse_from<I, T>(arguments: I) -> Result<Arguments, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let arguments = Arguments::try_parse_from(arguments)?;
    // clap's `args_conflicts_with_subcommands` would also forbid the global
    // --profile before a subcommand, so this conflict is checked here.
    if arguments.mailto.is_some() && arguments.command.is_some() {
        return Err(Arguments::command().error(
            ErrorKind::ArgumentConflict,
            "a mailto: link opens the window, so it cannot be combined with a subcommand",
        ));
    }
    Ok(arguments)
}

/// Accepts a `mailto:` link (any case). Everything else is rejected here,
/// so that a mistyped subcommand gets an error instead of a window. The
/// link's content is parsed when the window opens.
fn mailto_argument(value: &str) -> Result<String, String> {
    if value
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("mailto:"))
    {
        Ok(value.to_owned())
    } else {
        Err("expected a subcommand or a mailto: link; see `wardmail --help`".to_owned())
    }
}

/// Runs a subcommand and returns the process exit code.
pub fn run(profile: Option<PathBuf>, command: Command) -> ExitCode {
    if let Command::Policy = command {
        return check_policy();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("wardmail: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(profile, command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("wardmail: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(profile: Option<PathBuf>, command: Command) -> Result<ExitCode, SessionError> {
    let profile = Profile::locate(profile.as_deref())?;
    match command {
        Command::Account(AccountCommand::Add(add)) => add_account(profile, add).await,
        Command::Account(AccountCommand::Test(choice)) => test_account(profile, choice).await,
        Command::Account(AccountCommand::List) => list_accounts(profile),
        Command::Audit(command) => audit::run(profile, command).await,
        Command::Portal(command) => portal::run(profile, command).await,
        Command::Sync(choice) => sync(open(profile, choice).await?).await,
        Command::Folders { account, json } => folders(open(profile, account).await?, json).await,
        Command::List {
            folder,
            account,
            json,
            limit,
        } => list(open(profile, account).await?, &folder, json, limit).await,
        Command::Show {
            folder,
            uid,
            account,
            raw,
        } => show(open(profile, account).await?, &folder, uid, raw).await,
        Command::Send {
            file,
            account,
            override_reason,
        } => send(open(profile, account).await?, file, override_reason).await,
        Command::Outbox {
            account,
            retry,
            resend,
        } => outbox(open(profile, account).await?, retry, resend).await,
        Command::Policy => Ok(check_policy()),
        Command::Assess {
            addresses,
            account,
            options,
        } => assess::assess(open(profile, account).await?, addresses, options).await,
        Command::Inspect {
            file,
            account,
            json,
            unlock,
        } => inspect(open(profile, account).await?, file, json, unlock).await,
        Command::Plan {
            to,
            cc,
            bcc,
            sensitivity,
            reply_to,
            all,
            account,
            json,
        } => {
            let recipients = [to, cc, bcc].concat();
            let session = open(profile, account).await?;
            match reply_to {
                Some(file) => {
                    let options = reply::Options {
                        all,
                        sensitivity,
                        json,
                    };
                    reply::plan_reply(session, file, recipients, options).await
                }
                None => plan(session, recipients, sensitivity, json).await,
            }
        }
        Command::Keys(KeysCommand::List { account, json }) => {
            list_keys(open(profile, account).await?, json).await
        }
        Command::Keys(KeysCommand::Import { file, account }) => {
            let session = open(profile, account).await?;
            if looks_like_pkcs12(&read_file(&file).await?) {
                import_p12(session, file).await
            } else {
                import_pgp(session, file).await
            }
        }
        Command::Keys(KeysCommand::Export {
            fingerprint,
            output,
            account,
        }) => export_key(open(profile, account).await?, fingerprint, output).await,
        Command::Keys(KeysCommand::Generate {
            algorithm,
            expires_days,
            account,
        }) => generate_key(open(profile, account).await?, &algorithm, expires_days).await,
        Command::Keys(KeysCommand::Verify {
            fingerprint,
            account,
        }) => {
            open(profile, account)
                .await?
                .verify_openpgp(fingerprint.clone())
                .await?;
            println!("marked key {fingerprint} as verified");
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys(KeysCommand::Revoke {
            fingerprint,
            account,
        }) => {
            let info = open(profile, account)
                .await?
                .revoke_openpgp(fingerprint)
                .await?;
            println!("revoked key {}", info.fingerprint);
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys(KeysCommand::ImportP12 { file, account }) => {
            import_p12(open(profile, account).await?, file).await
        }
        Command::Keys(KeysCommand::ImportCert { file, account }) => {
            import_cert(open(profile, account).await?, file).await
        }
        Command::Keys(KeysCommand::ImportPgp { file, account }) => {
            import_pgp(open(profile, account).await?, file).await
        }
        Command::Keys(KeysCommand::Wkd {
            address,
            import,
            account,
        }) => wkd_lookup(open(profile, account).await?, &address, import).await,
        Command::Keys(KeysCommand::TrustCa { file, account }) => {
            trust_ca(open(profile, account).await?, file).await
        }
    }
}

async fn read_file(file: &std::path::Path) -> Result<Vec<u8>, SessionError> {
    tokio::fs::read(file)
        .await
        .map_err(|e| SessionError::Task(format!("cannot read {}: {e}", file.display())))
}

async fn inspect(
    session: Session,
    file: PathBuf,
    json: bool,
    unlock: bool,
) -> Result<ExitCode, SessionError> {
    let session = std::sync::Arc::new(session);
    let raw = read_file(&file).await?;
    let mut report = session.inspect(raw.clone()).await?;
    if let Some(fingerprint) = report.locked_keys.first().cloned() {
        if unlock {
            let passphrase = read_password().await?;
            session.unlock_openpgp(fingerprint, passphrase).await?;
            report = session.inspect(raw).await?;
        } else {
            eprintln!(
                "wardmail: the message is encrypted to your key {fingerprint}, which has a \
                 passphrase; run again with --unlock and give the passphrase on standard input"
            );
        }
    }
    if json {
        match report.to_json() {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("wardmail: cannot write JSON: {error}");
                return Ok(ExitCode::FAILURE);
            }
        }
    } else {
        let verdict = report.verdict();
        println!("{}", verdict.headline);
        for detail in &verdict.details {
            println!("  {detail}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn list_keys(session: Session, json: bool) -> Result<ExitCode, SessionError> {
    let session = std::sync::Arc::new(session);
    let identities = session.smime_identities().await?;
    let keys = session.openpgp_keys().await?;
    let certificates = session.smime_certificates().await?;
    if json {
        let smime: Vec<_> = identities
            .iter()
            .map(|identity| {
                serde_json::json!({
                    "fingerprint": identity.fingerprint,
                    "addresses": identity.addresses,
                })
            })
            .collect();
        let correspondents: Vec<_> = certificates
            .iter()
            .map(|certificate| {
                serde_json::json!({
                    "address": certificate.address,
                    "fingerprint": certificate.fingerprint,
                    "source": certificate.source.as_str(),
                    "capabilities": certificate.capabilities,
                })
            })
            .collect();
        let value = serde_json::json!({
            "openpgp": keys,
            "smime_identities": smime,
            "smime_certificates": correspondents,
        });
        println!("{value:#}");
        return Ok(ExitCode::SUCCESS);
    }
    if identities.is_empty() && keys.is_empty() && certificates.is_empty() {
        println!(
            "no keys; generate one with `wardmail keys generate`, or import one with \
             `wardmail keys import FILE` or a certificate with `keys import-cert FILE`"
        );
    }
    for key in keys {
        let info = &key.info;
        let mut notes = vec![
            if info.secret {
                "own key"
            } else {
                "correspondent"
            }
            .to_string(),
        ];
        if info.locked {
            notes.push("passphrase protected".into());
        }
        if info.revoked {
            notes.push("REVOKED".into());
        } else if info.expired {
            notes.push("EXPIRED".into());
        }
        notes.push(match info.expires {
            Some(at) => format!("expires {}", crate::ui::format::day(at)),
            None => "does not expire".into(),
        });
        notes.push(format!("from {}", key.source));
        notes.push(
            if key.verified {
                "verified"
            } else {
                "not verified"
            }
            .into(),
        );
        if let Some(old) = &key.replaces {
            notes.push(format!(
                "KEY CHANGED: replaces {old}, not used until accepted"
            ));
        }
        println!(
            "OpenPGP\t{}\t{}\t{}\t{}",
            info.addresses.join(", "),
            info.fingerprint,
            info.algorithm,
            notes.join("; ")
        );
    }
    for identity in identities {
        println!(
            "S/MIME\t{}\t{}",
            identity.addresses.join(", "),
            identity.fingerprint
        );
    }
    for certificate in certificates {
        println!(
            "S/MIME certificate\t{}\t{}\t{}\t{}",
            certificate.address,
            certificate.fingerprint,
            certificate.source.as_str(),
            capability_names(certificate.capabilities.as_deref())
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Returns whether a file is PKCS#12 rather than OpenPGP: PEM-armored
/// PKCS#12, or DER starting with a SEQUENCE (OpenPGP binary packets never
/// start with 0x30, which would be an old-format tag 12 packet).
fn looks_like_pkcs12(bytes: &[u8]) -> bool {
    bytes.starts_with(b"-----BEGIN PKCS12-----") || bytes.first() == Some(&0x30)
}

async fn export_key(
    session: Session,
    fingerprint: String,
    output: Option<PathBuf>,
) -> Result<ExitCode, SessionError> {
    let armored = session.export_openpgp(fingerprint).await?;
    match output {
        Some(path) => {
            tokio::fs::write(&path, &armored)
                .await
                .map_err(|e| SessionError::Task(format!("cannot write {}: {e}", path.display())))?;
            println!("wrote {}", path.display());
        }
        None => {
            let _ = std::io::stdout().lock().write_all(&armored);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn generate_key(
    session: Session,
    algorithm: &str,
    expires_days: u64,
) -> Result<ExitCode, SessionError> {
    let suite: wardmail::openpgp::Suite = algorithm.parse()?;
    let validity =
        (expires_days > 0).then(|| std::time::Duration::from_secs(expires_days * 86_400));
    let info = session.generate_openpgp(suite, validity).await?;
    println!(
        "generated OpenPGP key {} for {} ({})",
        info.fingerprint,
        info.addresses.join(", "),
        info.algorithm
    );
    Ok(ExitCode::SUCCESS)
}

/// Names the ciphers that a correspondent advertised, for `keys list`.
fn capability_names(oids: Option<&[String]>) -> String {
    let Some(oids) = oids else {
        return "capabilities unknown".to_string();
    };
    let names: Vec<&str> = oids
        .iter()
        .map(|oid| match oid.as_str() {
            wardmail::smime::AES256_GCM => "AES-256-GCM",
            wardmail::smime::AES256_CBC => "AES-256-CBC",
            other => other,
        })
        .collect();
    names.join(" ")
}

async fn import_p12(session: Session, file: PathBuf) -> Result<ExitCode, SessionError> {
    let bytes = read_file(&file).await?;
    let password = read_password().await?;
    let imported = session.import_pkcs12_checked(bytes, password).await?;
    println!(
        "imported S/MIME identity {} ({})",
        imported.identity.addresses.join(", "),
        imported.identity.fingerprint
    );
    if let Some(warning) = imported.warning {
        eprintln!("wardmail: warning [{}]: {warning}", warning.code());
    }
    Ok(ExitCode::SUCCESS)
}

async fn import_cert(session: Session, file: PathBuf) -> Result<ExitCode, SessionError> {
    let bytes = read_file(&file).await?;
    for certificate in session.import_smime_certificates(bytes).await? {
        println!(
            "imported S/MIME certificate for {} ({})",
            certificate.address, certificate.fingerprint
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn import_pgp(session: Session, file: PathBuf) -> Result<ExitCode, SessionError> {
    let bytes = read_file(&file).await?;
    for fingerprint in session.import_openpgp(bytes).await? {
        println!("imported OpenPGP key {fingerprint}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit code of `keys wkd` when the directory has no certificate for the
/// address, so that scripts can tell it from an error (1).
const EXIT_NOT_PUBLISHED: u8 = 2;

async fn wkd_lookup(
    session: Session,
    address: &str,
    import: bool,
) -> Result<ExitCode, SessionError> {
    let found = match session.wkd_lookup(address).await? {
        Outcome::Found(found) => found,
        Outcome::NotPublished {
            absence,
            method,
            host,
        } => {
            let reason = match absence {
                Absence::NotFound => "the server has none (HTTP 404)".to_owned(),
                Absence::NoMatchingUserId { dropped } => format!(
                    "it publishes {dropped} certificate(s), but none has a User ID for this address"
                ),
            };
            println!("no OpenPGP certificate for {address} at {host} ({method} method): {reason}");
            return Ok(ExitCode::from(EXIT_NOT_PUBLISHED));
        }
    };

    println!(
        "found {} OpenPGP certificate(s) for {address} at {} ({} method)",
        found.fingerprints.len(),
        found.host,
        found.method
    );
    if found.dropped > 0 {
        println!(
            "ignored {} certificate(s) without a User ID for this address",
            found.dropped
        );
    }
    if !import {
        for fingerprint in &found.fingerprints {
            println!("{fingerprint}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    for (fingerprint, replaces) in session
        .import_wkd(found.certificates, address.to_owned())
        .await?
    {
        match replaces {
            None => println!("imported OpenPGP key {fingerprint}"),
            Some(old) => println!(
                "stored OpenPGP key {fingerprint}, but it would replace key {old} for this \
                 address: it is not used until you accept it (`wardmail keys verify \
                 {fingerprint}` after checking the fingerprint with its owner)"
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn trust_ca(session: Session, file: PathBuf) -> Result<ExitCode, SessionError> {
    let bytes = read_file(&file).await?;
    let count = session.import_ca(bytes).await?;
    println!("trusted {count} CA certificate(s) from {}", file.display());
    Ok(ExitCode::SUCCESS)
}

/// Reads a password from standard input on the blocking pool, without its
/// final line break.
async fn read_password() -> Result<Secret, SessionError> {
    tokio::task::spawn_blocking(|| {
        let mut password = String::new();
        std::io::stdin()
            .read_to_string(&mut password)
            .map_err(|e| {
                SessionError::Task(format!("cannot read the password from standard input: {e}"))
            })?;
        Ok(Secret::new(password.trim_end_matches(['\r', '\n'])))
    })
    .await
    .map_err(|e| SessionError::Task(e.to_string()))?
}

/// Prints where the clinic policy is read from and what it contains.
/// Fails when the file exists but cannot be loaded.
async fn plan(
    session: Session,
    recipients: Vec<String>,
    sensitivity: Option<String>,
    json: bool,
) -> Result<ExitCode, SessionError> {
    let (routing, internal_domains) = routing_policy(&session);
    let sensitivity = match sensitivity {
        Some(text) => text
            .parse::<wardmail::route::Sensitivity>()
            .map_err(SessionError::Task)?,
        None => routing.default_sensitivity,
    };
    let addresses = unique_addresses(&recipients)?;
    if addresses.is_empty() {
        eprintln!("wardmail: no recipients: give --to, --cc or --bcc");
        return Ok(ExitCode::FAILURE);
    }
    let session = std::sync::Arc::new(session);
    let known = capabilities(&session, addresses).await?;
    let plan = wardmail::route::plan(&routing, &internal_domains, sensitivity, &known);
    if json {
        match serde_json::to_string_pretty(&plan) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("wardmail: cannot write JSON: {error}");
                return Ok(ExitCode::FAILURE);
            }
        }
    } else {
        println!("{} message, {}", sensitivity.label(), plan.summary());
        for route in &plan.routes {
            let method = route.method.map_or("BLOCKED", |method| method.label());
            println!("{}\t{method}\t{}", route.address, route.reason);
        }
    }
    Ok(if plan.blocked() {
        ExitCode::from(EXIT_PLAN_BLOCKED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Reads the clinic's routing rules and internal domains, falling back to
/// the built-in rules, and to the account's own domain as the only internal
/// one.
fn routing_policy(session: &Session) -> (wardmail::route::Routing, Vec<String>) {
    let (routing, internal_domains) = match Location::from_env().load() {
        Ok(Some(policy)) => (policy.routing, policy.internal_domains),
        Ok(None) => (wardmail::route::Routing::default(), Vec::new()),
        Err(error) => {
            eprintln!("wardmail: {error}; planning with the built-in rules");
            (wardmail::route::Routing::default(), Vec::new())
        }
    };
    let internal_domains =
        wardmail::route::internal_domains(internal_domains, &session.account.domain());
    (routing, internal_domains)
}

/// Parses address list arguments into lower-case addresses, each once.
fn unique_addresses(entries: &[String]) -> Result<Vec<String>, SessionError> {
    let mut addresses = Vec::new();
    for entry in entries {
        for address in wardmail::compose::parse_address_list(entry)
            .map_err(|error| SessionError::Task(error.to_string()))?
        {
            let email = address.email.to_lowercase();
            if !addresses.contains(&email) {
                addresses.push(email);
            }
        }
    }
    Ok(addresses)
}

/// Assesses each address: keys held, WKD and the TLS of its domain.
async fn capabilities(
    session: &std::sync::Arc<Session>,
    addresses: Vec<String>,
) -> Result<Vec<wardmail::route::Capabilities>, SessionError> {
    Ok(session
        .assess(addresses)
        .await?
        .iter()
        .map(wardmail::route::Capabilities::from)
        .collect())
}

/// Exit code of `plan` when a recipient is blocked.
const EXIT_PLAN_BLOCKED: u8 = 3;

/// Prints the routing rule of every sensitivity.
fn print_routing(routing: &wardmail::route::Routing) {
    println!(
        "default sensitivity: {}",
        routing.default_sensitivity.label()
    );
    for sensitivity in wardmail::route::Sensitivity::ALL {
        let rule = routing.rule(sensitivity);
        let methods: Vec<&str> = rule.methods.iter().map(|method| method.label()).collect();
        let otherwise = match rule.otherwise {
            wardmail::route::Otherwise::Portal => "the portal",
            wardmail::route::Otherwise::Block => "blocked",
        };
        let offered = if rule.accept_tls_offered {
            "; TLS offered counts as TLS"
        } else {
            ""
        };
        println!(
            "{}: {}, otherwise {otherwise}{offered}",
            sensitivity.label(),
            methods.join(", ")
        );
    }
}

fn check_policy() -> ExitCode {
    let location = Location::from_env();
    let source = if location.from_env {
        POLICY_ENV
    } else {
        "system-wide"
    };
    match location.load() {
        Ok(Some(policy)) => {
            println!("clinic policy: {} ({source})", policy.path.display());
            println!("format version: {}", policy.version);
            let domains = if policy.internal_domains.is_empty() {
                "none".to_owned()
            } else {
                policy.internal_domains.join(", ")
            };
            println!("internal domains: {domains}");
            print_routing(&policy.routing);
            ExitCode::SUCCESS
        }
        Ok(None) => {
            println!(
                "no clinic policy: {} does not exist ({source}); the built-in rules apply",
                location.path.display()
            );
            print_routing(&wardmail::route::Routing::default());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("wardmail: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn open(profile: Profile, choice: AccountChoice) -> Result<Session, SessionError> {
    Session::open(profile, choice.account).await
}

async fn add_account(profile: Profile, add: AddAccount) -> Result<ExitCode, SessionError> {
    let password = read_password().await?;
    let imap_port = add
        .imap_port
        .unwrap_or(wardmail::net::default_port(true, add.imap_security));
    let smtp_port = add
        .smtp_port
        .unwrap_or(wardmail::net::default_port(false, add.smtp_security));
    let account = Account {
        id: account_id(&add.address),
        display_name: add.name,
        username: add.username.unwrap_or_else(|| add.address.clone()),
        address: add.address,
        imap: Server {
            host: add.imap_host,
            port: imap_port,
            security: add.imap_security,
        },
        smtp: Server {
            host: add.smtp_host,
            port: smtp_port,
            security: add.smtp_security,
        },
        ca_file: add.ca_file,
    };
    account.validate()?;
    if !add.no_test && !report_check(&account, &password).await {
        eprintln!("wardmail: the account was not saved; fix the settings or pass --no-test");
        return Ok(ExitCode::FAILURE);
    }
    let id = account.id.clone();
    session::save_account(profile, account, password).await?;
    println!("saved account {id}");
    Ok(ExitCode::SUCCESS)
}

/// Prints the IMAP and SMTP outcomes; returns whether both succeeded.
async fn report_check(account: &Account, password: &Secret) -> bool {
    let check = session::test_connection(account, password).await;
    for (name, outcome) in [("IMAP", &check.imap), ("SMTP", &check.smtp)] {
        match outcome {
            Ok(()) => println!("{name}: ok"),
            Err(error) => println!("{name}: {error}"),
        }
    }
    check.imap.is_ok() && check.smtp.is_ok()
}

async fn test_account(profile: Profile, choice: AccountChoice) -> Result<ExitCode, SessionError> {
    let session = open(profile, choice).await?;
    let password_entry =
        wardmail::secret::KeyringEntry::password(&session.config.profile_id, &session.account.id);
    let password = tokio::task::spawn_blocking(move || password_entry.read())
        .await
        .map_err(|e| SessionError::Task(e.to_string()))??;
    let ok = report_check(&session.account, &password).await;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn list_accounts(profile: Profile) -> Result<ExitCode, SessionError> {
    let config = profile.load()?;
    for account in &config.accounts {
        println!(
            "{}\t{}\t{}:{} {}",
            account.id,
            account.address,
            account.imap.host,
            account.imap.port,
            account.imap.security
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn sync(session: Session) -> Result<ExitCode, SessionError> {
    let progress = |p: Progress| {
        if let Progress::Folder { name, position, of } = p {
            eprintln!("syncing {position}/{of}: {name}");
        }
    };
    let reports = session.sync(&progress).await?;
    for report in &reports {
        println!(
            "{}\t{} messages\t+{} new\t{} flag changes\t-{} removed",
            report.name, report.total, report.added, report.flags_changed, report.removed
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct FolderJson<'a> {
    name: &'a str,
    raw_name: &'a str,
    role: Option<&'static str>,
    messages: u32,
    unread: u32,
}

async fn folders(session: Session, json: bool) -> Result<ExitCode, SessionError> {
    let folders = session.folders().await?;
    if json {
        let rows: Vec<FolderJson<'_>> = folders
            .iter()
            .map(|f| FolderJson {
                name: &f.name,
                raw_name: &f.raw_name,
                role: f.role.map(|r| r.as_str()),
                messages: f.total,
                unread: f.unread,
            })
            .collect();
        print_json(&rows);
    } else {
        for folder in &folders {
            let role = folder.role.map(|r| r.as_str()).unwrap_or("");
            println!(
                "{}\t{}\t{} messages\t{} unread",
                folder.name, role, folder.total, folder.unread
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct MessageJson<'a> {
    uid: u32,
    date: Option<i64>,
    from: &'a str,
    subject: &'a str,
    seen: bool,
    flagged: bool,
    answered: bool,
    has_attachments: bool,
}

impl<'a> From<&'a ListRow> for MessageJson<'a> {
    fn from(row: &'a ListRow) -> Self {
        MessageJson {
            uid: row.uid,
            date: row.date,
            from: &row.from,
            subject: &row.subject,
            seen: row.seen,
            flagged: row.flagged,
            answered: row.answered,
            has_attachments: row.has_attachments,
        }
    }
}

async fn list(
    session: Session,
    folder: &str,
    json: bool,
    limit: u32,
) -> Result<ExitCode, SessionError> {
    let folder = session.folder(folder).await?;
    let id = folder.id;
    let limit = if limit == 0 { u32::MAX } else { limit };
    let rows = wardmail::sync::blocking(&session.store, move |s| s.list(id, 0, limit)).await?;
    if json {
        let rows: Vec<MessageJson<'_>> = rows.iter().map(MessageJson::from).collect();
        print_json(&rows);
    } else {
        for row in &rows {
            let marker = if row.seen { ' ' } else { '*' };
            println!("{}{}\t{}\t{}", marker, row.uid, row.from, row.subject);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(
    session: Session,
    folder: &str,
    uid: u32,
    raw: bool,
) -> Result<ExitCode, SessionError> {
    let folder = session.folder(folder).await?;
    let Some(bytes) = session.body(&folder, uid).await? else {
        eprintln!(
            "wardmail: no message with UID {uid} in {}; run `wardmail sync` and `wardmail list`",
            folder.name
        );
        return Ok(ExitCode::FAILURE);
    };
    let mut out = std::io::stdout().lock();
    if raw {
        let _ = out.write_all(&bytes);
        return Ok(ExitCode::SUCCESS);
    }
    let message = wardmail::message::parse(&bytes);
    let envelope = &message.envelope;
    let join = |list: &[wardmail::message::Address]| {
        list.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(out, "From: {}", join(&envelope.from));
    let _ = writeln!(out, "To: {}", join(&envelope.to));
    if !envelope.cc.is_empty() {
        let _ = writeln!(out, "Cc: {}", join(&envelope.cc));
    }
    let _ = writeln!(out, "Subject: {}", envelope.subject);
    for problem in &message.problems {
        let _ = writeln!(out, "Note: {problem}");
    }
    let _ = writeln!(out, "\n{}", message.text);
    for attachment in &message.attachments {
        let _ = writeln!(
            out,
            "[attachment {}: {} ({}, {} bytes)]",
            attachment.index, attachment.filename, attachment.content_type, attachment.size
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn send(
    session: Session,
    file: PathBuf,
    override_reason: Option<String>,
) -> Result<ExitCode, SessionError> {
    let raw = tokio::fs::read(&file)
        .await
        .map_err(|e| SessionError::Task(format!("cannot read {}: {e}", file.display())))?;
    let outgoing = wardmail::outbox::prepare_raw(&raw, &session.account.domain())
        .map_err(|e| SessionError::Task(format!("cannot send {}: {e}", file.display())))?;
    let session = std::sync::Arc::new(session);
    let audit = reply::guarded_plan(
        &session,
        &outgoing.raw,
        &outgoing.recipients,
        override_reason,
    )
    .await?;
    let id = match session
        .send_with_audit(
            outgoing.message_id,
            outgoing.raw,
            outgoing.recipients,
            audit,
        )
        .await
    {
        Ok(id) => id,
        Err(error) => {
            eprintln!("wardmail: {error}");
            eprintln!(
                "wardmail: the message stays in the outbox; retry with `wardmail outbox --retry`"
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    println!("sent (outbox entry {id})");
    Ok(ExitCode::SUCCESS)
}

async fn outbox(
    session: Session,
    retry: bool,
    resend: Option<i64>,
) -> Result<ExitCode, SessionError> {
    let mut ok = true;
    if let Some(id) = resend {
        session.resend(id, true).await?;
        println!("entry {id} sent");
    }
    if retry {
        for (id, outcome) in session.flush_outbox().await? {
            match outcome {
                Ok(()) => println!("entry {id}: sent"),
                Err(error) => {
                    ok = false;
                    println!("entry {id}: {error}");
                }
            }
        }
    }
    let account = session.account.id.clone();
    let entries = wardmail::sync::blocking(&session.store, move |s| s.outbox(&account)).await?;
    for entry in &entries {
        let state = match entry.state {
            OutboxState::Queued => "queued",
            OutboxState::Sending => "sending",
            OutboxState::Submitted => "sent, copy to Sent pending",
            OutboxState::Done => "done",
            OutboxState::Failed => "failed",
            OutboxState::Uncertain => "may have been sent",
        };
        let error = entry.last_error.as_deref().unwrap_or("");
        println!(
            "{}\t{}\t{} attempts\t{}",
            entry.id, state, entry.attempts, error
        );
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(error) => eprintln!("wardmail: cannot write JSON: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn cli_mailto_positional() {
        let arguments = parse_from(["wardmail", "MAILTO:lab@example.org?subject=Hi"]).unwrap();
        assert_eq!(
            arguments.mailto.as_deref(),
            Some("MAILTO:lab@example.org?subject=Hi")
        );
        assert!(arguments.command.is_none());
    }

    #[test]
    fn cli_rejects_other_positional() {
        let error = parse_from(["wardmail", "sycn"]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("expected a subcommand or a mailto: link"),
            "{error}"
        );
    }

    #[test]
    fn cli_profile_before_subcommand() {
        let arguments = parse_from(["wardmail", "--profile", "/tmp/p", "account", "list"]).unwrap();
        assert_eq!(arguments.profile.as_deref(), Some(Path::new("/tmp/p")));
        assert!(matches!(
            arguments.command,
            Some(Command::Account(AccountCommand::List))
        ));
        assert!(arguments.mailto.is_none());
    }

    #[test]
    fn cli_mailto_with_subcommand_rejected() {
        let error = parse_from(["wardmail", "mailto:lab@example.org", "sync"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ArgumentConflict);
    }

    #[test]
    fn cli_policy_subcommand() {
        let arguments = parse_from(["wardmail", "policy"]).unwrap();
        assert!(matches!(arguments.command, Some(Command::Policy)));
    }
}
