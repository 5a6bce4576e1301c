//! The route plan: for each recipient of a message, the delivery method
//! the clinic policy allows for the message's sensitivity, or "blocked"
//! with the reason.
//!
//! The policy lists, per sensitivity, the acceptable methods in order of
//! preference and what happens to a recipient who can receive none of them
//! (the portal, or a block). Evaluation is pure: it takes what is known
//! about each recipient ([`Capabilities`]) and never does I/O, so typing in
//! the composer re-plans at once and the result is the same in the window
//! and on the command line.

use serde::{Deserialize, Serialize};

/// The sensitivity of a message, chosen in the composer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Sensitivity {
    /// Ordinary correspondence without health information.
    Routine,
    /// Protected health information.
    #[default]
    Phi,
    /// Records needing extra care: psychiatric, HIV, genetic, legal.
    Restricted,
}

impl Sensitivity {
    /// Every sensitivity, least sensitive first.
    pub const ALL: [Sensitivity; 3] = [Self::Routine, Self::Phi, Self::Restricted];

    /// Returns the word shown to the user.
    pub fn label(self) -> &'static str {
        match self {
            Self::Routine => "Routine",
            Self::Phi => "PHI",
            Self::Restricted => "Restricted",
        }
    }
}

impl std::fmt::Display for Sensitivity {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.label())
    }
}

impl std::str::FromStr for Sensitivity {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "routine" => Ok(Self::Routine),
            "phi" => Ok(Self::Phi),
            "restricted" => Ok(Self::Restricted),
            _ => Err(format!(
                "unknown sensitivity {text:?}: use routine, phi or restricted"
            )),
        }
    }
}

/// A way one recipient's copy can travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Encrypted to the recipient's OpenPGP certificate.
    Openpgp,
    /// Encrypted to the recipient's S/MIME certificate.
    Smime,
    /// The recipient is in one of the clinic's own domains, so the copy
    /// stays on the clinic's servers.
    Internal,
    /// SMTP with TLS that is enforced (MTA-STS enforce or DANE), or only
    /// offered when the rule accepts that.
    Tls,
    /// SMTP without evidence that the recipient's servers use TLS.
    TlsUnverified,
    /// The clinic's secure portal.
    Portal,
}

impl Method {
    /// Every method, in the order the built-in rules prefer them.
    pub const ALL: [Method; 6] = [
        Method::Openpgp,
        Method::Smime,
        Method::Internal,
        Method::Tls,
        Method::TlsUnverified,
        Method::Portal,
    ];

    /// Returns the name used in policy files, plans and the audit log,
    /// such as "tls-unverified".
    pub fn name(self) -> &'static str {
        match self {
            Self::Openpgp => "openpgp",
            Self::Smime => "smime",
            Self::Internal => "internal",
            Self::Tls => "tls",
            Self::TlsUnverified => "tls-unverified",
            Self::Portal => "portal",
        }
    }

    /// Returns the method with the name [`Method::name`] gives, if any.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|method| method.name() == name)
    }

    /// Returns the word shown on the recipient chip.
    pub fn label(self) -> &'static str {
        match self {
            Self::Openpgp => "OpenPGP",
            Self::Smime => "S/MIME",
            Self::Internal => "Internal",
            Self::Tls => "TLS",
            Self::TlsUnverified => "TLS not verified",
            Self::Portal => "Portal",
        }
    }
}

/// The fallback for a recipient who can receive none of the acceptable
/// methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Otherwise {
    /// Send that copy through the portal when it is configured, else block.
    Portal,
    /// Block the message until the recipient is removed or can receive an
    /// acceptable method.
    Block,
}

/// The rule for one sensitivity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Acceptable methods, preferred first.
    pub methods: Vec<Method>,
    /// Whether "TLS offered" (STARTTLS seen, nothing enforcing it) counts
    /// as [`Method::Tls`].
    #[serde(default)]
    pub accept_tls_offered: bool,
    /// The fallback below the acceptable methods.
    pub otherwise: Otherwise,
}

/// The rules for every sensitivity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Routing {
    /// Routine messages.
    pub routine: Rule,
    /// PHI.
    pub phi: Rule,
    /// Restricted.
    pub restricted: Rule,
    /// The sensitivity a new message starts with.
    pub default_sensitivity: Sensitivity,
}

impl Default for Routing {
    /// The rules without a clinic policy: routine mail goes by any method,
    /// PHI needs encryption, internal delivery or enforced TLS, and
    /// restricted mail needs end-to-end encryption. Below that, the portal,
    /// and a block while no portal is configured.
    fn default() -> Self {
        use Method::*;
        Self {
            routine: Rule {
                methods: vec![Openpgp, Smime, Internal, Tls, TlsUnverified],
                accept_tls_offered: true,
                otherwise: Otherwise::Block,
            },
            phi: Rule {
                methods: vec![Smime, Openpgp, Internal, Tls],
                accept_tls_offered: false,
                otherwise: Otherwise::Portal,
            },
            restricted: Rule {
                methods: vec![Smime, Openpgp],
                accept_tls_offered: false,
                otherwise: Otherwise::Portal,
            },
            default_sensitivity: Sensitivity::Phi,
        }
    }
}

impl Routing {
    /// Returns the rule for a sensitivity.
    pub fn rule(&self, sensitivity: Sensitivity) -> &Rule {
        match sensitivity {
            Sensitivity::Routine => &self.routine,
            Sensitivity::Phi => &self.phi,
            Sensitivity::Restricted => &self.restricted,
        }
    }
}

/// The class of TLS that the recipient's domain is known to use beyond the
/// clinic's own submission server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsClass {
    /// MTA-STS in enforce mode or valid DANE.
    Enforced,
    /// Every MX offers STARTTLS, nothing enforces it.
    Offered,
    /// Some MX lacks STARTTLS.
    NotOffered,
    /// Not known (no MX found, probe blocked, lookup failed).
    Unknown,
}

/// The known facts about one recipient, with a short evidence sentence per
/// available method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// The recipient's address.
    pub address: String,
    /// Evidence of a usable OpenPGP certificate, such as its fingerprint
    /// and source.
    pub openpgp: Option<String>,
    /// Evidence of a usable S/MIME certificate.
    pub smime: Option<String>,
    /// The TLS class of the recipient's domain.
    pub tls: TlsClass,
    /// Evidence behind the TLS class (MX hosts, MTA-STS mode, DANE).
    pub tls_evidence: String,
    /// Whether the clinic's portal can take this recipient's copy.
    pub portal: bool,
    /// The evidence line by line, for the recipient's details panel: keys,
    /// MX hosts, MTA-STS mode and id, DANE, probe times.
    pub details: Vec<String>,
    /// Whether the TLS findings come from a network assessment, rather than
    /// from a lookup of the keys in the store only.
    pub assessed: bool,
}

impl Capabilities {
    /// Returns capabilities with nothing known, for a recipient not yet
    /// assessed.
    pub fn unknown(address: &str) -> Self {
        Self {
            address: address.to_owned(),
            openpgp: None,
            smime: None,
            tls: TlsClass::Unknown,
            tls_evidence: "not assessed yet".to_owned(),
            portal: false,
            details: Vec::new(),
            assessed: false,
        }
    }
}

/// One recipient's route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// The recipient's address.
    pub address: String,
    /// The method chosen, or `None` when the recipient is blocked.
    pub method: Option<Method>,
    /// Why: the evidence for the method, or what is missing.
    pub reason: String,
}

/// The route plan of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoutePlan {
    /// The sensitivity the plan was made for.
    pub sensitivity: Sensitivity,
    /// One route per recipient, in the order given.
    pub routes: Vec<Route>,
}

impl RoutePlan {
    /// Returns whether any recipient is blocked, which disables Send.
    pub fn blocked(&self) -> bool {
        self.routes.iter().any(|route| route.method.is_none())
    }

    /// Returns the summary line, for example "3 recipients: 1 S/MIME, 1
    /// OpenPGP, 1 TLS".
    pub fn summary(&self) -> String {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for route in &self.routes {
            let label = route
                .method
                .map_or("blocked".to_owned(), |method| method.label().to_owned());
            match counts.iter_mut().find(|(name, _)| *name == label) {
                Some((_, count)) => *count += 1,
                None => counts.push((label, 1)),
            }
        }
        let parts: Vec<String> = counts
            .iter()
            .map(|(label, count)| format!("{count} {label}"))
            .collect();
        let noun = if self.routes.len() == 1 {
            "recipient"
        } else {
            "recipients"
        };
        format!("{} {noun}: {}", self.routes.len(), parts.join(", "))
    }
}

/// Returns the domains that count as internal: the policy's list, or the
/// account's own domain when the policy names none, because mail to
/// colleagues there stays on the clinic's server.
pub fn internal_domains(policy_domains: Vec<String>, account_domain: &str) -> Vec<String> {
    if policy_domains.is_empty() {
        vec![account_domain.to_ascii_lowercase()]
    } else {
        policy_domains
    }
}

/// Plans every recipient's route for a message of `sensitivity`.
pub fn plan(
    routing: &Routing,
    internal_domains: &[String],
    sensitivity: Sensitivity,
    recipients: &[Capabilities],
) -> RoutePlan {
    let rule = routing.rule(sensitivity);
    let routes = recipients
        .iter()
        .map(|recipient| route(rule, internal_domains, sensitivity, recipient))
        .collect();
    RoutePlan {
        sensitivity,
        routes,
    }
}

fn route(
    rule: &Rule,
    internal_domains: &[String],
    sensitivity: Sensitivity,
    recipient: &Capabilities,
) -> Route {
    let domain = recipient
        .address
        .rsplit_once('@')
        .map(|(_, domain)| domain.to_ascii_lowercase())
        .unwrap_or_default();
    let is_internal = internal_domains.contains(&domain);
    for method in &rule.methods {
        let evidence = match method {
            Method::Openpgp => recipient.openpgp.clone(),
            Method::Smime => recipient.smime.clone(),
            Method::Internal => {
                is_internal.then(|| format!("{domain} is one of the clinic's own domains"))
            }
            Method::Tls => match recipient.tls {
                TlsClass::Enforced => Some(format!("TLS enforced: {}", recipient.tls_evidence)),
                TlsClass::Offered if rule.accept_tls_offered => {
                    Some(format!("TLS offered: {}", recipient.tls_evidence))
                }
                _ => None,
            },
            Method::TlsUnverified => Some(format!(
                "TLS beyond the clinic's server is not verified: {}",
                recipient.tls_evidence
            )),
            Method::Portal => recipient
                .portal
                .then(|| "the clinic's secure portal".to_owned()),
        };
        if let Some(reason) = evidence {
            return Route {
                address: recipient.address.clone(),
                method: Some(*method),
                reason,
            };
        }
    }
    if rule.otherwise == Otherwise::Portal && recipient.portal {
        return Route {
            address: recipient.address.clone(),
            method: Some(Method::Portal),
            reason: format!(
                "no method the policy accepts for {sensitivity} mail, so the copy goes through \
                 the clinic's secure portal"
            ),
        };
    }
    Route {
        address: recipient.address.clone(),
        method: None,
        reason: blocked_reason(rule, sensitivity, recipient),
    }
}

/// The sealing of one copy of a message: encrypted with one technology for
/// all of its recipients, or not encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealing {
    /// Encrypted to every recipient with OpenPGP.
    Openpgp,
    /// Encrypted to every recipient with S/MIME.
    Smime,
    /// Not encrypted: each copy goes by SMTP.
    Clear,
    /// Uploaded to the clinic's secure portal, end-to-end encrypted; the
    /// recipient gets a notice without the content by SMTP.
    Portal,
}

impl RoutePlan {
    /// Returns the single sealing that carries every planned route, or
    /// `None` when the plan mixes encryption technologies or encrypted and
    /// clear copies, which needs one message per method group.
    pub fn sealing(&self) -> Option<Sealing> {
        let mut sealing = None;
        for route in &self.routes {
            let this = match route.method? {
                Method::Openpgp => Sealing::Openpgp,
                Method::Smime => Sealing::Smime,
                Method::Internal | Method::Tls | Method::TlsUnverified => Sealing::Clear,
                Method::Portal => return None,
            };
            match sealing {
                None => sealing = Some(this),
                Some(previous) if previous != this => return None,
                Some(_) => {}
            }
        }
        sealing
    }
}

/// One SMTP transaction of a message sent per method group: the recipients
/// whose copies are sealed the same way and travel with the same MAIL
/// parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodGroup {
    /// The sealing of this group's copy.
    pub sealing: Sealing,
    /// The envelope recipients, in the order of the plan.
    pub recipients: Vec<String>,
    /// Whether this is a Bcc recipient's own transaction.
    pub bcc: bool,
    /// Whether MAIL FROM carries REQUIRETLS (RFC 8689 section 4.1), so that
    /// every later hop must use verified TLS or return the message.
    pub require_tls: bool,
}

impl RoutePlan {
    /// Splits the plan into SMTP transactions: one per sealing for the To
    /// and Cc recipients, and one of its own for every address in `bcc`.
    /// So no copy names a Bcc recipient or is encrypted to one, except that
    /// recipient's own copy. Recipients planned for [`Method::Tls`] go in a
    /// transaction of their own with REQUIRETLS when `requiretls_offered`
    /// (the submission server advertises it), because other clear
    /// recipients could not receive a copy that demands it.
    ///
    /// Each recipient routed to the portal is a transaction of its own,
    /// because each portal message is sealed for one recipient.
    ///
    /// Fails, naming the recipient, when one is blocked.
    pub fn groups(
        &self,
        bcc: &[String],
        requiretls_offered: bool,
    ) -> Result<Vec<MethodGroup>, String> {
        let mut visible: Vec<MethodGroup> = Vec::new();
        let mut hidden = Vec::new();
        for route in &self.routes {
            let (sealing, require_tls) = match route.method {
                None => return Err(format!("{} is blocked: {}", route.address, route.reason)),
                Some(Method::Portal) => {
                    hidden.push(MethodGroup {
                        sealing: Sealing::Portal,
                        recipients: vec![route.address.clone()],
                        bcc: false,
                        require_tls: false,
                    });
                    continue;
                }
                Some(Method::Openpgp) => (Sealing::Openpgp, false),
                Some(Method::Smime) => (Sealing::Smime, false),
                Some(Method::Tls) => (Sealing::Clear, requiretls_offered),
                Some(Method::Internal | Method::TlsUnverified) => (Sealing::Clear, false),
            };
            let is_bcc = bcc
                .iter()
                .any(|address| address.eq_ignore_ascii_case(&route.address));
            if is_bcc {
                hidden.push(MethodGroup {
                    sealing,
                    recipients: vec![route.address.clone()],
                    bcc: true,
                    require_tls,
                });
                continue;
            }
            let same = visible
                .iter_mut()
                .find(|group| group.sealing == sealing && group.require_tls == require_tls);
            match same {
                Some(group) => group.recipients.push(route.address.clone()),
                None => visible.push(MethodGroup {
                    sealing,
                    recipients: vec![route.address.clone()],
                    bcc: false,
                    require_tls,
                }),
            }
        }
        visible.extend(hidden);
        Ok(visible)
    }
}

/// Checks that sealing a whole message one way gives every recipient a
/// method the policy accepts. Returns the first problem, naming the
/// recipient and the fix.
pub fn check_sealing(
    routing: &Routing,
    internal_domains: &[String],
    sensitivity: Sensitivity,
    recipients: &[Capabilities],
    sealing: Sealing,
) -> Result<(), String> {
    let rule = routing.rule(sensitivity);
    for recipient in recipients {
        let domain = recipient
            .address
            .rsplit_once('@')
            .map(|(_, domain)| domain.to_ascii_lowercase())
            .unwrap_or_default();
        let actual = match sealing {
            Sealing::Openpgp if recipient.openpgp.is_none() => {
                return Err(format!(
                    "{} has no usable OpenPGP key: choose S/MIME, or import their key",
                    recipient.address
                ));
            }
            Sealing::Smime if recipient.smime.is_none() => {
                return Err(format!(
                    "{} has no usable S/MIME certificate: choose OpenPGP, or import their \
                     certificate",
                    recipient.address
                ));
            }
            Sealing::Portal if !recipient.portal => {
                return Err(format!(
                    "{} cannot be reached through the secure portal: this device is not \
                     enrolled with one",
                    recipient.address
                ));
            }
            Sealing::Openpgp => Method::Openpgp,
            Sealing::Smime => Method::Smime,
            Sealing::Portal => Method::Portal,
            Sealing::Clear if internal_domains.contains(&domain) => Method::Internal,
            Sealing::Clear => match recipient.tls {
                TlsClass::Enforced => Method::Tls,
                TlsClass::Offered if rule.accept_tls_offered => Method::Tls,
                _ => Method::TlsUnverified,
            },
        };
        if !rule.methods.contains(&actual) {
            return Err(format!(
                "{sensitivity} mail to {} needs {}, and this copy would go as {}: turn on \
                 Encrypt, or lower the sensitivity if the message allows it",
                recipient.address,
                method_list(&rule.methods),
                actual.label()
            ));
        }
    }
    Ok(())
}

/// Says what the policy needs and what the recipient lacks.
fn blocked_reason(rule: &Rule, sensitivity: Sensitivity, recipient: &Capabilities) -> String {
    let tls = match recipient.tls {
        TlsClass::Enforced => "TLS enforced",
        TlsClass::Offered => "TLS offered but not enforced",
        TlsClass::NotOffered => "TLS not offered by every mail server",
        TlsClass::Unknown => "TLS unknown",
    };
    let portal = if rule.otherwise == Otherwise::Portal {
        "; the secure portal is not configured"
    } else {
        ""
    };
    format!(
        "{sensitivity} mail needs {}; this recipient has no usable key or certificate and \
         their domain has {tls} ({}){portal}. Remove the recipient, lower the sensitivity if \
         the message allows it, or import their key",
        method_list(&rule.methods),
        recipient.tls_evidence
    )
}

/// Lists methods in words: "S/MIME, OpenPGP or TLS".
fn method_list(methods: &[Method]) -> String {
    let labels: Vec<&str> = methods.iter().map(|method| method.label()).collect();
    match labels.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_match_serde() {
        for method in Method::ALL {
            let json = serde_json::to_value(method).unwrap();
            assert_eq!(json.as_str(), Some(method.name()));
            assert_eq!(Method::from_name(method.name()), Some(method));
        }
        assert_eq!(Method::from_name("carrier-pigeon"), None);
    }

    fn capabilities(address: &str) -> Capabilities {
        Capabilities {
            tls_evidence: "mx.example.org".into(),
            ..Capabilities::unknown(address)
        }
    }

    #[test]
    fn phi_prefers_smime_then_openpgp() {
        let mut both = capabilities("a@lab.example");
        both.smime = Some("certificate 01:02".into());
        both.openpgp = Some("key ABCD".into());
        let mut pgp_only = capabilities("b@lab.example");
        pgp_only.openpgp = Some("key EF01".into());

        let plan = plan(
            &Routing::default(),
            &[],
            Sensitivity::Phi,
            &[both, pgp_only],
        );

        assert_eq!(plan.routes[0].method, Some(Method::Smime));
        assert_eq!(plan.routes[1].method, Some(Method::Openpgp));
        assert!(!plan.blocked());
        assert_eq!(plan.summary(), "2 recipients: 1 S/MIME, 1 OpenPGP");
    }

    #[test]
    fn phi_with_tls_offered_only_is_blocked() {
        let mut offered = capabilities("c@insurer.example");
        offered.tls = TlsClass::Offered;

        let plan = plan(&Routing::default(), &[], Sensitivity::Phi, &[offered]);

        assert!(plan.blocked());
        let reason = &plan.routes[0].reason;
        assert!(reason.contains("PHI mail needs"), "{reason}");
        assert!(reason.contains("TLS offered"), "{reason}");
        assert!(reason.contains("portal is not configured"), "{reason}");
    }

    #[test]
    fn enforced_tls_carries_phi_and_routine_takes_anything() {
        let mut enforced = capabilities("d@bank.example");
        enforced.tls = TlsClass::Enforced;
        let unknown = capabilities("e@far.example");

        let phi = plan(
            &Routing::default(),
            &[],
            Sensitivity::Phi,
            &[enforced.clone()],
        );
        let routine = plan(&Routing::default(), &[], Sensitivity::Routine, &[unknown]);

        assert_eq!(phi.routes[0].method, Some(Method::Tls));
        assert_eq!(routine.routes[0].method, Some(Method::TlsUnverified));
    }

    #[test]
    fn internal_domain_routes_internally() {
        let colleague = capabilities("f@Clinic.Example");
        let internal = vec!["clinic.example".to_owned()];

        let phi = plan(
            &Routing::default(),
            &internal,
            Sensitivity::Phi,
            std::slice::from_ref(&colleague),
        );
        let restricted = plan(
            &Routing::default(),
            &internal,
            Sensitivity::Restricted,
            &[colleague],
        );

        assert_eq!(phi.routes[0].method, Some(Method::Internal));
        assert!(restricted.blocked());
    }

    #[test]
    fn portal_takes_what_the_methods_cannot() {
        let mut patient = capabilities("g@mail.example");
        patient.portal = true;

        let plan = plan(
            &Routing::default(),
            &[],
            Sensitivity::Restricted,
            &[patient],
        );

        assert_eq!(plan.routes[0].method, Some(Method::Portal));
    }

    #[test]
    fn sealing_of_uniform_and_mixed_plans() {
        let mut smime = capabilities("a@lab.example");
        smime.smime = Some("certificate".into());
        let mut enforced = capabilities("b@bank.example");
        enforced.tls = TlsClass::Enforced;

        let uniform = plan(&Routing::default(), &[], Sensitivity::Phi, &[smime.clone()]);
        let mixed = plan(
            &Routing::default(),
            &[],
            Sensitivity::Phi,
            &[smime, enforced],
        );

        assert_eq!(uniform.sealing(), Some(Sealing::Smime));
        assert_eq!(mixed.sealing(), None);
    }

    #[test]
    fn groups_split_by_sealing_and_isolate_bcc() {
        let mut pgp = capabilities("a@lab.example");
        pgp.openpgp = Some("key".into());
        let mut smime = capabilities("b@lab.example");
        smime.smime = Some("certificate".into());
        let colleague = capabilities("c@clinic.example");
        let mut enforced = capabilities("d@bank.example");
        enforced.tls = TlsClass::Enforced;
        let mut hidden = capabilities("E@lab.example");
        hidden.openpgp = Some("key".into());
        let internal = vec!["clinic.example".to_owned()];
        let plan = plan(
            &Routing::default(),
            &internal,
            Sensitivity::Phi,
            &[pgp, smime, colleague, enforced, hidden],
        );

        let groups = plan.groups(&["e@lab.example".to_owned()], true).unwrap();

        let shape: Vec<(Sealing, Vec<&str>, bool, bool)> = groups
            .iter()
            .map(|group| {
                let recipients = group.recipients.iter().map(String::as_str).collect();
                (group.sealing, recipients, group.bcc, group.require_tls)
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (Sealing::Openpgp, vec!["a@lab.example"], false, false),
                (Sealing::Smime, vec!["b@lab.example"], false, false),
                (Sealing::Clear, vec!["c@clinic.example"], false, false),
                (Sealing::Clear, vec!["d@bank.example"], false, true),
                (Sealing::Openpgp, vec!["E@lab.example"], true, false),
            ]
        );
    }

    #[test]
    fn groups_without_requiretls_share_clear_copy() {
        let colleague = capabilities("c@clinic.example");
        let mut enforced = capabilities("d@bank.example");
        enforced.tls = TlsClass::Enforced;
        let internal = vec!["clinic.example".to_owned()];
        let plan = plan(
            &Routing::default(),
            &internal,
            Sensitivity::Phi,
            &[colleague, enforced],
        );

        let groups = plan.groups(&[], false).unwrap();

        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].recipients, ["c@clinic.example", "d@bank.example"]);
        assert!(!groups[0].require_tls);
    }

    #[test]
    fn groups_blocked_rejected_portal_alone() {
        let unknown = capabilities("f@far.example");
        let mut patient = capabilities("g@mail.example");
        patient.portal = true;
        let mut other = capabilities("h@mail.example");
        other.portal = true;
        let blocked = plan(&Routing::default(), &[], Sensitivity::Phi, &[unknown]);
        let portal = plan(
            &Routing::default(),
            &[],
            Sensitivity::Restricted,
            &[patient, other],
        );

        let blocked = blocked.groups(&[], false).unwrap_err();
        let groups = portal.groups(&[], false).unwrap();

        assert!(blocked.contains("f@far.example is blocked"), "{blocked}");
        assert_eq!(groups.len(), 2, "one transaction per portal recipient");
        assert!(groups.iter().all(|group| group.sealing == Sealing::Portal));
        assert_eq!(groups[0].recipients, ["g@mail.example"]);
        assert_eq!(groups[1].recipients, ["h@mail.example"]);
        assert_eq!(portal.sealing(), None);
    }

    #[test]
    fn clear_sealing_rejected_for_phi_without_tls() {
        let unknown = capabilities("c@far.example");
        let routing = Routing::default();

        let phi = check_sealing(
            &routing,
            &[],
            Sensitivity::Phi,
            std::slice::from_ref(&unknown),
            Sealing::Clear,
        );
        let routine = check_sealing(
            &routing,
            &[],
            Sensitivity::Routine,
            &[unknown],
            Sealing::Clear,
        );

        let error = phi.unwrap_err();
        assert!(error.contains("c@far.example"), "{error}");
        assert!(error.contains("turn on Encrypt"), "{error}");
        assert_eq!(routine, Ok(()));
    }

    #[test]
    fn encrypted_sealing_needs_every_key() {
        let without = capabilities("d@lab.example");

        let result = check_sealing(
            &Routing::default(),
            &[],
            Sensitivity::Phi,
            &[without],
            Sealing::Openpgp,
        );

        let error = result.unwrap_err();
        assert!(error.contains("no usable OpenPGP key"), "{error}");
    }

    #[test]
    fn sensitivity_parses_and_rejects() {
        assert_eq!("PHI".parse::<Sensitivity>(), Ok(Sensitivity::Phi));
        let error = "secret".parse::<Sensitivity>().unwrap_err();
        assert!(error.contains("routine, phi or restricted"), "{error}");
    }
}
