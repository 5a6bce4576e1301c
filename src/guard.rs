//! The reply guard's gate: one check that every outgoing copy passes right
//! before the outbox hands it to the SMTP server.
//!
//! [`crate::outbox::send`] is the only caller of [`crate::smtp::submit`]
//! and runs [`check_entry`] first. So every path that emits mail meets the
//! same gate: the composer's Send for a new message, a reply, a reply all, a
//! forward and a `mailto:` link, each method group of a split message, a
//! retry or resend from the outbox, and `wardmail send`.
//! A test in tests/reply_guard.rs fails when another module calls
//! `smtp::submit`.
//!
//! The floor comes from the store: the arrival security recorded (see
//! [`crate::arrival`]) for each Message-ID that the copy's In-Reply-To and
//! References fields name, the strongest of them. A forward names its
//! original in References for this reason. The copy's own protection comes
//! from its bytes, not from what the sender claims: a copy whose top-level
//! type is encrypted OpenPGP or S/MIME meets any floor, because Wardmail
//! encrypts such a copy to every recipient of its transaction. A clear
//! copy's route per recipient comes from the plan stored with the outbox
//! entry.
//!
//! A recipient below the floor passes only with a choice recorded in that
//! plan: sent anyway with a typed reason (unless the clinic policy forbids
//! it), or sent without the quoted text.

use mail_parser::MimeHeaders;
use serde::{Deserialize, Serialize};

use crate::arrival::{self, Floor};
use crate::audit::{AuditDraft, DEFAULT_DECISION};
use crate::route::Method;
use crate::store::{Store, StoreError};

/// The minimum length of an override reason, in characters: a word or two is
/// not a reason the audit log can show.
pub const OVERRIDE_REASON_MIN: usize = 10;

/// The user's decision for a recipient below the floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Choice {
    /// Send this recipient's copy anyway; a reason was typed.
    Override,
    /// Send without the original's quoted or forwarded text.
    WithoutQuote,
    /// The recipient was taken off the message.
    Removed,
}

impl Choice {
    /// Returns the choice in words, for the audit log.
    pub fn label(self) -> &'static str {
        match self {
            Self::Override => "sent anyway",
            Self::WithoutQuote => "sent without the quoted text",
            Self::Removed => "removed from the message",
        }
    }
}

/// The user's choice for one recipient below the floor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FloorChoice {
    /// The recipient's address.
    pub address: String,
    /// The reason the recipient was below the floor, as shown.
    pub below: String,
    /// The user's decision.
    pub choice: Choice,
}

/// A recipient that the gate holds back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldRecipient {
    /// The recipient's address.
    pub address: String,
    /// The reason the copy is below the floor.
    pub why: String,
}

/// The gate's refusal: the floor and every recipient below it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", held_text(self))]
pub struct Held {
    /// The floor's description.
    pub floor: String,
    /// The recipients below it.
    pub recipients: Vec<HeldRecipient>,
    /// Whether an override was recorded but the clinic policy forbids it.
    pub override_forbidden: bool,
}

fn held_text(held: &Held) -> String {
    let recipients: Vec<String> = held
        .recipients
        .iter()
        .map(|recipient| format!("{}: {}", recipient.address, recipient.why))
        .collect();
    let fix = if held.override_forbidden {
        "the clinic policy does not allow sending it anyway; remove these recipients or send \
         without the quoted text"
    } else {
        "choose in the composer for each of them (remove, send without the quoted text, or send \
         anyway with a reason), or give `wardmail send --override-reason TEXT`"
    };
    format!(
        "held by the reply guard: {}; {}; {fix}",
        held.floor,
        recipients.join("; ")
    )
}

/// Returns the floor that the messages named in `raw`'s In-Reply-To and
/// References fields set, or `None` when none of them has a recorded
/// arrival. When several do, the strongest floor wins: encryption over
/// TLS over neither, and the nearest message among equals.
pub fn thread_floor(store: &Store, account: &str, raw: &[u8]) -> Result<Option<Floor>, StoreError> {
    let mut best: Option<Floor> = None;
    for message_id in referenced(raw) {
        let Some(security) = store.arrival(account, &message_id)? else {
            continue;
        };
        // The gate cannot tell whether the text quotes the original, so an
        // encrypted original is taken as quoted.
        let floor = arrival::floor(&security, None, security.encrypted.is_some());
        if best.as_ref().is_none_or(|best| rank(&floor) > rank(best)) {
            best = Some(floor);
        }
    }
    Ok(best)
}

fn rank(floor: &Floor) -> u8 {
    match (floor.encrypt, floor.tls) {
        (true, _) => 2,
        (false, true) => 1,
        (false, false) => 0,
    }
}

/// Returns the Message-IDs that `raw` replies to or forwards, nearest first:
/// In-Reply-To, then References from the last to the first.
pub fn referenced(raw: &[u8]) -> Vec<String> {
    let Some(message) = mail_parser::MessageParser::default().parse_headers(raw) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = message
        .in_reply_to()
        .as_text_list()
        .map(|list| list.iter().map(|id| id.to_string()).collect())
        .unwrap_or_default();
    if let Some(references) = message.references().as_text_list() {
        for id in references.iter().rev() {
            if !ids.iter().any(|known| known == id.as_ref()) {
                ids.push(id.to_string());
            }
        }
    }
    ids
}

/// Returns whether `raw` is encrypted as a whole: PGP/MIME (RFC 3156
/// multipart/encrypted) or S/MIME enveloped or authenticated-enveloped
/// data (RFC 8551).
pub fn is_encrypted(raw: &[u8]) -> bool {
    let Some(message) = mail_parser::MessageParser::default().parse_headers(raw) else {
        return false;
    };
    let Some(content_type) = message.content_type() else {
        return false;
    };
    let main = content_type.ctype().to_ascii_lowercase();
    let sub = content_type
        .subtype()
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match (main.as_str(), sub.as_str()) {
        ("multipart", "encrypted") => content_type
            .attribute("protocol")
            .is_some_and(|protocol| protocol.eq_ignore_ascii_case("application/pgp-encrypted")),
        ("application", "pkcs7-mime" | "x-pkcs7-mime") => {
            content_type.attribute("smime-type").is_some_and(|kind| {
                kind.eq_ignore_ascii_case("enveloped-data")
                    || kind.eq_ignore_ascii_case("authenveloped-data")
            })
        }
        _ => false,
    }
}

/// Checks one copy against `floor`: `encrypted` is whether the copy is
/// encrypted, `recipients` are its envelope recipients, and `plan` is the
/// plan stored with it. `allow_override` is the clinic policy's word on
/// typed overrides.
pub fn check(
    floor: &Floor,
    encrypted: bool,
    recipients: &[String],
    plan: &AuditDraft,
    allow_override: bool,
) -> Result<(), Held> {
    if encrypted {
        return Ok(());
    }
    let mut held = Vec::new();
    let mut override_forbidden = false;
    for address in recipients {
        let Some(why) = arrival::below_floor(floor, Some(planned_method(plan, address))) else {
            continue;
        };
        let choice = plan
            .choices
            .iter()
            .find(|choice| choice.address.eq_ignore_ascii_case(address))
            .map(|choice| choice.choice);
        match choice {
            Some(Choice::WithoutQuote) => continue,
            Some(Choice::Override) if allow_override && reason_given(plan) => continue,
            Some(Choice::Override) => override_forbidden |= !allow_override,
            Some(Choice::Removed) | None => {}
        }
        held.push(HeldRecipient {
            address: address.clone(),
            why,
        });
    }
    if held.is_empty() {
        Ok(())
    } else {
        Err(Held {
            floor: floor.reason.clone(),
            recipients: held,
            override_forbidden,
        })
    }
}

/// Returns whether the plan carries an override reason long enough to
/// count.
fn reason_given(plan: &AuditDraft) -> bool {
    plan.override_reason
        .as_deref()
        .is_some_and(|reason| reason.trim().chars().count() >= OVERRIDE_REASON_MIN)
}

/// Returns the route planned for `address`. A plan that was never assessed
/// (see [`AuditDraft::submission_only`]) has no route, so the copy counts
/// as going by TLS that is not verified.
fn planned_method(plan: &AuditDraft, address: &str) -> Method {
    if plan.decision == DEFAULT_DECISION {
        return Method::TlsUnverified;
    }
    plan.recipients
        .iter()
        .find(|planned| planned.address.eq_ignore_ascii_case(address))
        .and_then(|planned| Method::from_name(&planned.method))
        .unwrap_or(Method::TlsUnverified)
}

/// Checks a queued entry before submission: looks up its thread's floor
/// and its stored plan, and returns [`Held`] when a recipient is below the
/// floor without an accepted choice.
pub fn check_entry(
    store: &Store,
    entry: &crate::store::OutboxEntry,
    allow_override: bool,
) -> Result<Result<(), Held>, StoreError> {
    let Some(floor) = thread_floor(store, &entry.account, &entry.raw)? else {
        return Ok(Ok(()));
    };
    let plan = crate::audit::stored_plan(store, entry)?;
    Ok(check(
        &floor,
        is_encrypted(&entry.raw),
        &entry.recipients,
        &plan,
        allow_override,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrival::{ArrivalEncryption, ArrivalSecurity};
    use crate::audit::PlannedRecipient;

    fn floor_of(encrypted: Option<ArrivalEncryption>, tls: Option<bool>) -> Floor {
        let security = ArrivalSecurity {
            encrypted,
            signed: None,
            tls_into_provider: tls,
            portal_notice: false,
            portal_reply: false,
        };
        arrival::floor(&security, None, encrypted.is_some())
    }

    fn plan(routes: &[(&str, &str)]) -> AuditDraft {
        AuditDraft {
            recipients: routes
                .iter()
                .map(|(address, method)| PlannedRecipient {
                    address: (*address).to_owned(),
                    method: (*method).to_owned(),
                    evidence: String::new(),
                })
                .collect(),
            decision: "PHI message allowed".to_owned(),
            override_reason: None,
            choices: Vec::new(),
        }
    }

    fn choose(plan: &mut AuditDraft, address: &str, choice: Choice) {
        plan.choices.push(FloorChoice {
            address: address.to_owned(),
            below: String::new(),
            choice,
        });
    }

    const TWO: [&str; 2] = ["lab@example.org", "cc@far.example"];

    fn two() -> Vec<String> {
        TWO.iter().map(|address| (*address).to_owned()).collect()
    }

    #[test]
    fn clear_copy_under_encrypted_floor_is_held() {
        let floor = floor_of(Some(ArrivalEncryption::Smime), None);
        let plan = plan(&[(TWO[0], "tls"), (TWO[1], "tls")]);
        let held = check(&floor, false, &two(), &plan, true).unwrap_err();
        assert_eq!(held.recipients.len(), 2);
        assert!(held.to_string().contains("S/MIME encrypted"), "{held}");
        assert!(held.to_string().contains("cc@far.example"), "{held}");
        assert!(check(&floor, true, &two(), &plan, true).is_ok());
    }

    #[test]
    fn override_needs_reason_and_policy() {
        let floor = floor_of(Some(ArrivalEncryption::Openpgp), None);
        let mut plan = plan(&[(TWO[0], "tls"), (TWO[1], "tls")]);
        choose(&mut plan, TWO[0], Choice::Override);
        choose(&mut plan, TWO[1], Choice::WithoutQuote);
        // A recorded override without its reason does not count.
        assert!(check(&floor, false, &two(), &plan, true).is_err());
        plan.override_reason = Some("patient asked by phone".to_owned());
        assert!(check(&floor, false, &two(), &plan, true).is_ok());
        let held = check(&floor, false, &two(), &plan, false).unwrap_err();
        assert!(held.override_forbidden);
        assert_eq!(held.recipients.len(), 1);
        assert!(held.to_string().contains("policy does not allow"), "{held}");
    }

    #[test]
    fn tls_floor_holds_only_unverified() {
        let floor = floor_of(None, Some(true));
        let plan = plan(&[(TWO[0], "tls"), (TWO[1], "tls-unverified")]);
        let held = check(&floor, false, &two(), &plan, true).unwrap_err();
        assert_eq!(held.recipients.len(), 1);
        assert_eq!(held.recipients[0].address, TWO[1]);
    }

    #[test]
    fn unassessed_plan_counts_as_unverified() {
        let floor = floor_of(None, Some(true));
        let plan = AuditDraft::submission_only(&two());
        assert_eq!(
            check(&floor, false, &two(), &plan, true)
                .unwrap_err()
                .recipients
                .len(),
            2
        );
    }

    #[test]
    fn each_arrival_against_each_route() {
        use ArrivalEncryption::{Openpgp, Smime};
        const ROUTES: [&str; 6] = [
            "openpgp",
            "smime",
            "portal",
            "internal",
            "tls",
            "tls-unverified",
        ];
        // For each arrival, the routes whose clear copy is held.
        let cases: [(Option<ArrivalEncryption>, Option<bool>, &[&str]); 5] = [
            (
                Some(Openpgp),
                Some(true),
                &["internal", "tls", "tls-unverified"],
            ),
            (Some(Smime), None, &["internal", "tls", "tls-unverified"]),
            (None, Some(true), &["tls-unverified"]),
            (None, Some(false), &[]),
            (None, None, &[]),
        ];
        for (encrypted, tls, expected) in cases {
            let floor = floor_of(encrypted, tls);
            let held: Vec<&str> = ROUTES
                .into_iter()
                .filter(|route| {
                    let address = format!("{route}@example.org");
                    let plan = plan(&[(&address, route)]);
                    check(&floor, false, &[address], &plan, true).is_err()
                })
                .collect();
            assert_eq!(held, expected, "arrival {encrypted:?}, TLS {tls:?}");
        }
    }

    #[test]
    fn references_nearest_first() {
        let raw = b"From: a@example.org\r\nIn-Reply-To: <c@x>\r\nReferences: <a@x> <b@x> <c@x>\r\n\r\nhi\r\n";
        assert_eq!(referenced(raw), vec!["c@x", "b@x", "a@x"]);
        assert!(referenced(b"From: a@example.org\r\n\r\nhi\r\n").is_empty());
    }

    #[test]
    fn encrypted_copies_recognised() {
        let pgp = b"Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=b\r\n\r\n";
        let smime = b"Content-Type: application/pkcs7-mime; smime-type=authEnveloped-data; name=smime.p7m\r\n\r\n";
        let signed = b"Content-Type: application/pkcs7-mime; smime-type=signed-data\r\n\r\n";
        let plain = b"Content-Type: text/plain\r\n\r\nhi\r\n";
        assert!(is_encrypted(pgp));
        assert!(is_encrypted(smime));
        assert!(!is_encrypted(signed));
        assert!(!is_encrypted(plain));
    }
}
