//! `wardmail plan --reply-to FILE`: the route plan of a reply, checked
//! against the floor that the original's arrival security sets.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;
use wardmail::arrival::{self, ArrivalSecurity, Floor};
use wardmail::message::{self, Address};
use wardmail::route::{RoutePlan, Sensitivity};
use wardmail::session::{Session, SessionError};

use wardmail::audit::{AuditDraft, PlannedRecipient};
use wardmail::guard::{self, Choice, FloorChoice, OVERRIDE_REASON_MIN};

use super::{EXIT_PLAN_BLOCKED, capabilities, read_file, routing_policy, unique_addresses};

/// The options of a reply plan.
pub struct Options {
    /// Reply to all: add the original To and Cc.
    pub all: bool,
    /// The requested sensitivity, raised to the floor when lower.
    pub sensitivity: Option<String>,
    /// Print JSON in place of text.
    pub json: bool,
}

/// One recipient whose copy would travel below the floor.
#[derive(Serialize)]
struct BelowFloor {
    address: String,
    warning: String,
}

#[derive(Serialize)]
struct ReplyPlan<'a> {
    arrival: &'a ArrivalSecurity,
    floor: &'a Floor,
    plan: &'a RoutePlan,
    warnings: &'a [BelowFloor],
}

/// Plans a message file for `wardmail send`. When it answers or forwards
/// stored mail, each recipient's route is worked out as `plan --reply-to`
/// does, and `override_reason` marks each recipient below the floor as
/// sent anyway; the outbox's gate then decides (see
/// [`wardmail::guard`]). Otherwise the plan is submission only.
pub async fn guarded_plan(
    session: &Arc<Session>,
    raw: &[u8],
    recipients: &[String],
    override_reason: Option<String>,
) -> Result<AuditDraft, SessionError> {
    let account = session.account.id.clone();
    let message = raw.to_vec();
    let floor = wardmail::sync::blocking(&session.store, move |store| {
        guard::thread_floor(store, &account, &message)
    })
    .await?;
    let Some(floor) = floor else {
        if override_reason.is_some() {
            eprintln!(
                "wardmail: the message answers no stored message below whose protection it \
                 would go, so --override-reason is not needed"
            );
        }
        return Ok(AuditDraft::submission_only(recipients));
    };
    if let Some(reason) = &override_reason
        && reason.trim().chars().count() < OVERRIDE_REASON_MIN
    {
        return Err(SessionError::Task(format!(
            "the override reason {reason:?} is too short; write why these copies may travel \
             with less protection, in at least {OVERRIDE_REASON_MIN} characters"
        )));
    }
    let (mut routing, internal_domains) = routing_policy(session);
    let sensitivity = arrival::stronger(routing.default_sensitivity, floor.sensitivity);
    if floor.encrypt {
        arrival::encryption_first(&mut routing, floor.prefer);
    }
    let known = capabilities(session, recipients.to_vec()).await?;
    let plan = wardmail::route::plan(&routing, &internal_domains, sensitivity, &known);
    let encrypted = guard::is_encrypted(raw);
    let mut draft = AuditDraft {
        recipients: plan
            .routes
            .iter()
            .map(|route| PlannedRecipient {
                address: route.address.clone(),
                method: route
                    .method
                    .map_or("blocked", |method| method.name())
                    .to_owned(),
                evidence: route.reason.clone(),
            })
            .collect(),
        decision: format!(
            "{} message planned by `wardmail send` ({}); reply floor: {}",
            plan.sensitivity.label(),
            plan.summary(),
            floor.reason
        ),
        override_reason: None,
        choices: Vec::new(),
    };
    if let Some(reason) = override_reason.filter(|_| !encrypted) {
        for route in &plan.routes {
            if let Some(below) = arrival::below_floor(&floor, route.method) {
                draft.choices.push(FloorChoice {
                    address: route.address.clone(),
                    below,
                    choice: Choice::Override,
                });
            }
        }
        draft.override_reason = Some(reason.trim().to_owned());
    }
    Ok(draft)
}

/// Plans a reply to the message in `file` and prints the floor, each route
/// and a warning per recipient below the floor. Exits with 3 when a
/// recipient is blocked or below the floor.
pub async fn plan_reply(
    session: Session,
    file: PathBuf,
    extra_recipients: Vec<String>,
    options: Options,
) -> Result<ExitCode, SessionError> {
    let session = Arc::new(session);
    let raw = read_file(&file).await?;
    let report = session.inspect(raw.clone()).await?;
    if let Some(fingerprint) = report.locked_keys.first() {
        eprintln!(
            "wardmail: the message is encrypted to your key {fingerprint}, which has a \
             passphrase; the plan treats it as encrypted, and `wardmail inspect --unlock` \
             unlocks the key"
        );
    }
    let security = session.arrival(&report, &raw);

    // NOTE: the original's own sensitivity is not carried in received mail
    // yet, so the floor comes from its arrival security alone.
    let floor = arrival::floor(&security, None, report.decrypted);

    let original = message::parse(&raw);
    let me = Address::new(
        Some(&session.account.display_name),
        &session.account.address,
    );
    let draft = wardmail::compose::reply(&original, &me, options.all);
    let mut entries: Vec<String> = draft
        .to
        .iter()
        .chain(&draft.cc)
        .map(|address| address.email.clone())
        .collect();
    entries.extend(extra_recipients);
    let addresses = unique_addresses(&entries)?;
    if addresses.is_empty() {
        eprintln!(
            "wardmail: the message in {} names no one to reply to; give --to",
            file.display()
        );
        return Ok(ExitCode::FAILURE);
    }

    let (mut routing, internal_domains) = routing_policy(&session);
    let requested = match options.sensitivity {
        Some(text) => text.parse::<Sensitivity>().map_err(SessionError::Task)?,
        None => routing.default_sensitivity,
    };
    let sensitivity = arrival::stronger(requested, floor.sensitivity);
    if floor.encrypt {
        arrival::encryption_first(&mut routing, floor.prefer);
    }
    let known = capabilities(&session, addresses).await?;
    let plan = wardmail::route::plan(&routing, &internal_domains, sensitivity, &known);

    let warnings: Vec<BelowFloor> = plan
        .routes
        .iter()
        .filter_map(|route| {
            arrival::below_floor(&floor, route.method).map(|why| BelowFloor {
                address: route.address.clone(),
                warning: format!("{}; {why}", floor.reason),
            })
        })
        .collect();

    if options.json {
        let output = ReplyPlan {
            arrival: &security,
            floor: &floor,
            plan: &plan,
            warnings: &warnings,
        };
        match serde_json::to_string_pretty(&output) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("wardmail: cannot write JSON: {error}");
                return Ok(ExitCode::FAILURE);
            }
        }
    } else {
        print_text(&floor, &plan, &warnings);
        if security.portal_notice {
            println!(
                "note: the message is a notice from the clinic's secure portal; the message and \
                 its answer belong in the portal, and an e-mail reply quotes nothing of it"
            );
        }
    }
    Ok(if plan.blocked() || !warnings.is_empty() {
        ExitCode::from(EXIT_PLAN_BLOCKED)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_text(floor: &Floor, plan: &RoutePlan, warnings: &[BelowFloor]) {
    let encryption = if floor.encrypt {
        ", encrypted for each recipient who can receive it"
    } else {
        ""
    };
    println!(
        "Reply floor: {}{encryption} ({})",
        floor.sensitivity.label(),
        floor.reason
    );
    println!("{} message, {}", plan.sensitivity.label(), plan.summary());
    for route in &plan.routes {
        let method = route.method.map_or("BLOCKED", |method| method.label());
        println!("{}\t{method}\t{}", route.address, route.reason);
    }
    for below in warnings {
        println!("warning: {}: {}", below.address, below.warning);
    }
}
