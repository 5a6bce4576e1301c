//! `wardmail plan --reply-to FILE`: the route plan of a reply, checked
//! against the floor that the original's arrival security sets.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use serde::Serialize;
use wardmail::arrival::{self, ArrivalEncryption, ArrivalSecurity, Floor};
use wardmail::message::{self, Address};
use wardmail::route::{Method, RoutePlan, Routing, Sensitivity};
use wardmail::session::{Session, SessionError};

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
        encryption_first(&mut routing, sensitivity, floor.prefer);
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

/// Moves the encryption methods that the rule for `sensitivity` lists to
/// its front, the original's technology first, so each recipient who can
/// receive encryption gets it. Methods the policy does not list stay out.
fn encryption_first(
    routing: &mut Routing,
    sensitivity: Sensitivity,
    prefer: Option<ArrivalEncryption>,
) {
    let rule = match sensitivity {
        Sensitivity::Routine => &mut routing.routine,
        Sensitivity::Phi => &mut routing.phi,
        Sensitivity::Restricted => &mut routing.restricted,
    };
    let preferred = prefer.map_or(Method::Smime, ArrivalEncryption::method);
    let other = if preferred == Method::Smime {
        Method::Openpgp
    } else {
        Method::Smime
    };
    let order = [preferred, other];
    let mut methods: Vec<Method> = order
        .into_iter()
        .filter(|method| rule.methods.contains(method))
        .collect();
    methods.extend(rule.methods.iter().filter(|method| !order.contains(method)));
    rule.methods = methods;
}
