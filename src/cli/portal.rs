//! `wardmail portal`: enrol this device with the clinic's secure portal,
//! fetch its events and replies, and list, revoke, extend or re-issue the
//! code of the messages sent through it.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use wardmail::account::Profile;
use wardmail::session::{Session, SessionError};

use super::{AccountChoice, open, read_password};

/// Portal subcommands.
#[derive(Debug, Subcommand)]
pub enum PortalCommand {
    /// Enrol this device with the portal at URL. Reads the one-time token
    /// that IT issued (`wardmail-portal enrol-token`) from standard input.
    Enrol {
        /// The portal's address, such as https://portal.clinic.example.
        url: String,
        /// A name for this device, shown to the portal's administrator.
        #[arg(long, default_value = "Wardmail desktop")]
        label: String,
        /// How patients reach the clinic, shown in notices and on the
        /// portal's pages.
        #[arg(long)]
        contact: Option<String>,
        #[command(flatten)]
        account: AccountChoice,
    },
    /// Fetch new events and replies; replies go to the Inbox.
    Sync {
        #[command(flatten)]
        account: AccountChoice,
    },
    /// List the messages sent through the portal, with their events.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        account: AccountChoice,
    },
    /// Revoke a message: the portal deletes it and the link stops working.
    Revoke {
        /// The portal message id, as `list` shows it.
        id: String,
        #[command(flatten)]
        account: AccountChoice,
    },
    /// Keep a message on the portal longer.
    Extend {
        /// The portal message id.
        id: String,
        /// Days from now.
        #[arg(long, default_value_t = 14)]
        days: u32,
        #[command(flatten)]
        account: AccountChoice,
    },
    /// Issue a new code for a message (it also unlocks a locked one).
    Reissue {
        /// The portal message id.
        id: String,
        #[command(flatten)]
        account: AccountChoice,
    },
}

/// Runs a portal subcommand.
pub async fn run(profile: Profile, command: PortalCommand) -> Result<ExitCode, SessionError> {
    match command {
        PortalCommand::Enrol {
            url,
            label,
            contact,
            account,
        } => {
            let token = read_password().await?;
            let session = open(profile.clone(), account).await?;
            let mut settings = session.portal_enrol(&url, token.expose(), &label).await?;
            if let Some(contact) = contact {
                settings.contact = contact;
            }
            let mut config = profile.load()?;
            config.portal = settings;
            profile.save(&config)?;
            println!(
                "enrolled with {} as device {}",
                config.portal.url.as_deref().unwrap_or_default(),
                config.portal.device_id.as_deref().unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        PortalCommand::Sync { account } => {
            let session = Arc::new(open(profile, account).await?);
            let outcome = session.portal_sync().await?;
            println!(
                "{} new events, {} replies added to the Inbox, {} replies dropped",
                outcome.events, outcome.replies, outcome.rejected
            );
            Ok(if outcome.rejected == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        PortalCommand::List { json, account } => {
            let session = open(profile, account).await?;
            list(&session, json).await
        }
        PortalCommand::Revoke { id, account } => {
            open(profile, account).await?.portal_revoke(&id).await?;
            println!("revoked {id}: the portal deleted it and the link shows the clinic's contact");
            Ok(ExitCode::SUCCESS)
        }
        PortalCommand::Extend { id, days, account } => {
            let expires = open(profile, account)
                .await?
                .portal_extend(&id, days)
                .await?;
            println!(
                "{id} stays on the portal until {}",
                wardmail::session::rfc3339(expires)
            );
            Ok(ExitCode::SUCCESS)
        }
        PortalCommand::Reissue { id, account } => {
            let code = open(profile, account).await?.portal_reissue(&id).await?;
            println!("new code for {id}: {}", code.expose());
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn list(session: &Session, json: bool) -> Result<ExitCode, SessionError> {
    let messages = session.portal_messages().await?;
    if json {
        let rows: Vec<serde_json::Value> = messages
            .iter()
            .map(|message| {
                serde_json::json!({
                    "id": message.portal_id,
                    "message_id": message.message_id,
                    "recipient": message.recipient,
                    "created": message.created,
                    "expires": message.expires,
                    "state": message.state,
                    "events": message
                        .events
                        .iter()
                        .map(|(kind, at)| serde_json::json!({ "type": kind, "at": at }))
                        .collect::<Vec<_>>(),
                })
            })
            .collect();
        match serde_json::to_string_pretty(&rows) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("wardmail: cannot write JSON: {error}");
                return Ok(ExitCode::FAILURE);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    for message in &messages {
        let events: Vec<&str> = message
            .events
            .iter()
            .map(|(kind, _)| kind.as_str())
            .collect();
        println!(
            "{}\t{}\t{}\tuntil {}\t{}",
            message.portal_id,
            message.recipient,
            message.state,
            wardmail::session::rfc3339(message.expires),
            events.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
