//! The arrival security of a received message, and the floor that a reply
//! or forward of it starts from.
//!
//! Arrival security has four parts: the message-level encryption, the
//! verdict on the signature over its content, whether the hop into the
//! user's own provider used TLS, and whether it is a notice from the
//! clinic's secure portal.
//!
//! TLS is read only from Received fields (RFC 5321 section 4.4) that the
//! user's own provider added. Each server prepends its field, so the fields
//! are walked from the top (newest) down while each one's "by" host belongs
//! to the provider. The first field written by another host ends the walk,
//! because a sender can write any Received field it likes below the
//! provider's own. The last field trusted records the hop into the
//! provider, and it shows TLS when it names ESMTPS or ESMTPSA (RFC 3848) or
//! a "(using TLS...)" comment, as Postfix writes.

use serde::{Deserialize, Serialize};

use crate::protection::{Encryption, ProtectionReport, SignatureStatus};
use crate::route::{Method, Otherwise, Routing, Sensitivity};

/// The message-level encryption a message arrived with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArrivalEncryption {
    /// OpenPGP/MIME or inline OpenPGP.
    Openpgp,
    /// S/MIME EnvelopedData or AuthEnvelopedData.
    Smime,
}

impl ArrivalEncryption {
    /// Returns the name shown to the user.
    pub fn label(self) -> &'static str {
        match self {
            Self::Openpgp => "OpenPGP",
            Self::Smime => "S/MIME",
        }
    }

    /// Returns the delivery method of the same technology.
    pub fn method(self) -> Method {
        match self {
            Self::Openpgp => Method::Openpgp,
            Self::Smime => Method::Smime,
        }
    }
}

/// The security a message arrived with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrivalSecurity {
    /// The message-level encryption, or `None` for a message sent in the
    /// clear.
    pub encrypted: Option<ArrivalEncryption>,
    /// The verdict on the first signature over the content, or `None` when
    /// the content is unsigned.
    pub signed: Option<SignatureStatus>,
    /// Whether the hop into the user's own provider used TLS, or `None`
    /// when no Received field from the provider records that hop.
    pub tls_into_provider: Option<bool>,
    /// Whether the message is a notice from the clinic's secure portal.
    pub portal_notice: bool,
    /// Whether the message is a reply that came back through the clinic's
    /// secure portal, end-to-end encrypted. Only the portal sync sets it;
    /// no header of a message can.
    #[serde(default)]
    pub portal_reply: bool,
}

/// Works out the arrival security of `raw` from its protection report and
/// its Received fields. `own_hosts` lists the user's provider's host names
/// (see [`own_hosts`]); `portal_url` is the clinic portal's address, when
/// one is configured, whose notices are recognised by their link.
pub fn arrival(
    report: &ProtectionReport,
    raw: &[u8],
    own_hosts: &[String],
    portal_url: Option<&str>,
) -> ArrivalSecurity {
    let encrypted = match report.encrypted {
        Encryption::Openpgp => Some(ArrivalEncryption::Openpgp),
        Encryption::Smime => Some(ArrivalEncryption::Smime),
        Encryption::None => None,
    };
    let signed = report
        .content_signatures()
        .next()
        .map(|signature| signature.status);

    let portal_notice = encrypted.is_none()
        && portal_url
            .is_some_and(|url| portal_link(&crate::message::parse(raw).text, url).is_some());
    ArrivalSecurity {
        encrypted,
        signed,
        tls_into_provider: tls_into_provider(raw, own_hosts),
        portal_notice,
        portal_reply: false,
    }
}

/// Returns the first link in `text` to a message on the portal at
/// `portal_url` (`{portal_url}/m/{id}#{secret}`), as a notice carries it.
pub fn portal_link(text: &str, portal_url: &str) -> Option<String> {
    let prefix = format!("{}/m/", portal_url.trim_end_matches('/'));
    let start = text.find(&prefix)?;
    let link: String = text[start..]
        .chars()
        .take_while(|ch| !ch.is_whitespace() && !matches!(ch, '<' | '>' | '"'))
        .collect();
    (link.len() > prefix.len()).then_some(link)
}

/// Lists the host names of the user's own provider: the IMAP and SMTP hosts
/// given, and the parent domain of each one with three or more labels.
/// The parent is a suffix entry (".provider.example" from
/// "imap.provider.example"), so the provider's other servers, such as an MX
/// or an LMTP host, count too. A loopback host adds "localhost", the name
/// local test servers write.
pub fn own_hosts(hosts: &[&str]) -> Vec<String> {
    let mut own = Vec::new();
    let mut add = |host: String| {
        if !host.is_empty() && !own.contains(&host) {
            own.push(host);
        }
    };
    for host in hosts {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        if host == "localhost" || host.starts_with("127.") || host == "::1" {
            add("localhost".to_owned());
        }
        if host.split('.').count() >= 3
            && host.parse::<std::net::IpAddr>().is_err()
            && let Some((_, parent)) = host.split_once('.')
        {
            add(format!(".{parent}"));
        }
        add(host);
    }
    own
}

/// Returns whether `host` is one of `own_hosts`: equal to an entry, or
/// inside an entry that starts with a dot.
fn is_own(host: &str, own_hosts: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    own_hosts.iter().any(|own| {
        let own = own.to_ascii_lowercase();
        match own.strip_prefix('.') {
            Some(parent) => host.ends_with(&own) || host == parent,
            None => host == own,
        }
    })
}

fn tls_into_provider(raw: &[u8], own_hosts: &[String]) -> Option<bool> {
    let mut last_trusted = None;
    for field in received_fields(raw) {
        match by_host(&field) {
            Some(host) if is_own(&host, own_hosts) => last_trusted = Some(field),
            _ => break,
        }
    }
    last_trusted.map(|field| shows_tls(&field))
}

/// Returns the Received fields of the header section, top first, unfolded.
fn received_fields(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let mut fields: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(field) = current.as_mut() {
                field.push(' ');
                field.push_str(line.trim());
            }
            continue;
        }
        fields.extend(current.take());
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("received")
        {
            current = Some(value.trim().to_owned());
        }
    }
    fields.extend(current);
    fields
}

/// Returns the host after "by" in a Received field, ignoring comments.
fn by_host(field: &str) -> Option<String> {
    let clause = field.split(';').next().unwrap_or_default();
    let plain = without_comments(clause);
    let mut words = plain.split_whitespace();
    while let Some(word) = words.next() {
        if word.eq_ignore_ascii_case("by") {
            return words.next().map(str::to_owned);
        }
    }
    None
}

/// Removes parenthesised comments (RFC 5322 section 3.2.2), nested or not.
fn without_comments(text: &str) -> String {
    let mut depth = 0usize;
    let mut plain = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '(' => depth += 1,
            ')' if depth > 0 => {
                depth -= 1;
                plain.push(' ');
            }
            _ if depth == 0 => plain.push(character),
            _ => {}
        }
    }
    plain
}

fn shows_tls(field: &str) -> bool {
    let lower = field.to_ascii_lowercase();
    let plain = without_comments(&lower);
    let with_tls_protocol = plain
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .any(|pair| pair[0] == "with" && matches!(pair[1], "esmtps" | "esmtpsa" | "lmtps"));
    with_tls_protocol || lower.contains("(using tls")
}

/// The security a reply or forward starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Floor {
    /// The lowest sensitivity the new message may have.
    pub sensitivity: Sensitivity,
    /// Whether each recipient who can receive encryption gets it, and a
    /// recipient who cannot falls below the floor.
    pub encrypt: bool,
    /// The technology the original was encrypted with, preferred for the
    /// new message.
    pub prefer: Option<ArrivalEncryption>,
    /// Whether a recipient whose copy travels without verified TLS falls
    /// below the floor, because the original arrived over TLS.
    pub tls: bool,
    /// A description of the original, such as "S/MIME encrypted", for the
    /// warning lines.
    pub reason: String,
}

/// Works out the floor of a reply or forward: the stronger of the
/// original's arrival security and its sensitivity. Quoting decrypted text
/// makes the new message at least PHI, and an encrypted original makes it
/// encrypted for every recipient who can receive that.
pub fn floor(
    arrival: &ArrivalSecurity,
    original_sensitivity: Option<Sensitivity>,
    quotes_decrypted: bool,
) -> Floor {
    let mut sensitivity = original_sensitivity.unwrap_or(Sensitivity::Routine);
    let mut reasons = Vec::new();
    if let Some(marked) = original_sensitivity {
        reasons.push(format!("marked {marked}"));
    }

    if let Some(encryption) = arrival.encrypted {
        sensitivity = stronger(sensitivity, Sensitivity::Phi);
        reasons.push(format!("{} encrypted", encryption.label()));
    }
    if arrival.portal_reply {
        sensitivity = stronger(sensitivity, Sensitivity::Phi);
        reasons.push("sent back through the clinic's secure portal".to_owned());
    }
    if arrival.portal_notice {
        sensitivity = stronger(sensitivity, Sensitivity::Phi);
        reasons.push("a notice of a message in the clinic's secure portal".to_owned());
    }
    if quotes_decrypted {
        sensitivity = stronger(sensitivity, Sensitivity::Phi);
    }
    let tls = arrival.tls_into_provider == Some(true);
    if tls && arrival.encrypted.is_none() {
        reasons.push("delivered to your provider over TLS".to_owned());
    }
    if reasons.is_empty() {
        reasons.push("sent without encryption".to_owned());
    }
    let mut reason = format!("the message you are replying to was {}", reasons.join(", "));
    if quotes_decrypted {
        reason.push_str(", and this reply quotes its decrypted text");
    }

    Floor {
        sensitivity,
        encrypt: arrival.encrypted.is_some()
            || arrival.portal_reply
            || arrival.portal_notice
            || quotes_decrypted,
        prefer: arrival.encrypted,
        tls,
        reason,
    }
}

/// Returns the more sensitive of two sensitivities.
pub fn stronger(left: Sensitivity, right: Sensitivity) -> Sensitivity {
    let rank = |sensitivity| {
        Sensitivity::ALL
            .iter()
            .position(|candidate| *candidate == sensitivity)
            .unwrap_or(0)
    };
    if rank(right) > rank(left) {
        right
    } else {
        left
    }
}

/// Returns why a route is below the floor, or `None` when it meets it.
pub fn below_floor(floor: &Floor, method: Option<Method>) -> Option<String> {
    let Some(method) = method else {
        return Some("blocked, so this reply cannot go to this recipient".to_owned());
    };
    // The portal is end-to-end encrypted, so it meets an encrypted floor.
    let encrypted = matches!(method, Method::Openpgp | Method::Smime | Method::Portal);
    if floor.encrypt && !encrypted {
        let how = match method {
            Method::Internal => "unencrypted on the clinic's servers".to_owned(),
            other => format!("by {} only", other.label()),
        };
        return Some(format!(
            "this recipient has no certificate, so this reply would go {how}"
        ));
    }
    if floor.tls && method == Method::TlsUnverified {
        return Some(
            "TLS to this recipient is not verified, so this reply would travel with less \
             protection than the original"
                .to_owned(),
        );
    }
    None
}

/// Moves the encryption methods that each rule lists to its front, the
/// original's technology first and then the portal when the rule uses it,
/// so each recipient who can receive encryption gets it. Methods the
/// policy does not list stay out.
pub fn encryption_first(routing: &mut Routing, prefer: Option<ArrivalEncryption>) {
    let preferred = prefer.map_or(Method::Smime, ArrivalEncryption::method);
    let other = if preferred == Method::Smime {
        Method::Openpgp
    } else {
        Method::Smime
    };
    let order = [preferred, other, Method::Portal];
    for rule in [
        &mut routing.routine,
        &mut routing.phi,
        &mut routing.restricted,
    ] {
        // The portal is end-to-end encrypted too, so it comes before TLS
        // when the rule uses it at all.
        let portal = rule.methods.contains(&Method::Portal) || rule.otherwise == Otherwise::Portal;
        let mut methods: Vec<Method> = order
            .into_iter()
            .filter(|method| rule.methods.contains(method) || (*method == Method::Portal && portal))
            .collect();
        methods.extend(rule.methods.iter().filter(|method| !order.contains(method)));
        rule.methods = methods;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protection::{Signature, SignatureMethod, SignatureScope};

    const PROVIDER: &str = "imap.provider.example";

    fn own() -> Vec<String> {
        own_hosts(&[PROVIDER, "smtp.provider.example"])
    }

    fn message(received: &[&str]) -> Vec<u8> {
        let mut raw = String::new();
        for field in received {
            raw.push_str(&format!("Received: {field}\r\n"));
        }
        raw.push_str("From: a@example.org\r\nSubject: x\r\n\r\nReceived: by imap.provider.example with ESMTPS\r\n");
        raw.into_bytes()
    }

    fn plain(raw: &[u8]) -> ArrivalSecurity {
        arrival(&ProtectionReport::unprotected(), raw, &own(), None)
    }

    #[test]
    fn arrival_tls_from_provider_hop() {
        let raw = message(&[
            "from mx.provider.example by imap.provider.example with LMTP id 1; Fri, 4 Dec 2026",
            "from mail.far.example (mail.far.example [192.0.2.7])\r\n\tby mx.provider.example \
             (Postfix) with ESMTPS id 2; Fri, 4 Dec 2026",
            "from laptop by mail.far.example with ESMTPSA; Fri, 4 Dec 2026",
        ]);
        assert_eq!(plain(&raw).tls_into_provider, Some(true));
    }

    #[test]
    fn arrival_plain_smtp_hop() {
        let raw = message(&[
            "from mx.provider.example by imap.provider.example with LMTP; Fri, 4 Dec 2026",
            "from mail.far.example by mx.provider.example with ESMTP; Fri, 4 Dec 2026",
        ]);
        assert_eq!(plain(&raw).tls_into_provider, Some(false));
    }

    #[test]
    fn arrival_postfix_using_comment() {
        let raw = message(&[
            "from localhost (unknown [127.0.0.1]) (using TLSv1.3 with cipher \
             TLS_AES_256_GCM_SHA384 (256/256 bits)) (No client certificate requested) by \
             localhost (Postfix) with ESMTP id 3; Fri, 4 Dec 2026",
        ]);
        let security = arrival(
            &ProtectionReport::unprotected(),
            &raw,
            &own_hosts(&["127.0.0.1"]),
            None,
        );
        assert_eq!(security.tls_into_provider, Some(true));
    }

    #[test]
    fn arrival_forged_received_ignored() {
        // The sender wrote a TLS line naming the provider below its own
        // server's field, so the walk stops before reaching it.
        let raw = message(&[
            "from mail.far.example by mx.provider.example with ESMTP; Fri, 4 Dec 2026",
            "from laptop by mail.far.example with SMTP; Fri, 4 Dec 2026",
            "from forged by mx.provider.example with ESMTPS; Fri, 4 Dec 2026",
        ]);
        assert_eq!(plain(&raw).tls_into_provider, Some(false));
    }

    #[test]
    fn arrival_top_field_foreign() {
        let raw = message(&["from a by mail.far.example with ESMTPS; Fri, 4 Dec 2026"]);
        assert_eq!(plain(&raw).tls_into_provider, None);
        assert_eq!(plain(&message(&[])).tls_into_provider, None);
    }

    #[test]
    fn arrival_comment_by_not_host() {
        let raw = message(&[
            "from x (relayed by imap.provider.example) by mail.far.example with \
             ESMTPS; Fri, 4 Dec 2026",
        ]);
        assert_eq!(plain(&raw).tls_into_provider, None);
    }

    #[test]
    fn own_hosts_learns_provider_domain() {
        let hosts = own();
        assert!(hosts.contains(&".provider.example".to_owned()), "{hosts:?}");
        assert!(is_own("MX2.Provider.Example.", &hosts));
        assert!(!is_own("provider.example.attacker.example", &hosts));
        assert!(!is_own("evilprovider.example", &hosts));
        assert_eq!(own_hosts(&["localhost"]), vec!["localhost".to_owned()]);
        assert!(
            !own_hosts(&["mail.example"])
                .iter()
                .any(|h| h.starts_with('.'))
        );
    }

    #[test]
    fn arrival_encryption_and_signature() {
        let mut report = ProtectionReport::unprotected();
        report.encrypted = Encryption::Smime;
        report.signatures.push(Signature {
            method: SignatureMethod::Smime,
            signer: "alice@example.org".to_owned(),
            status: SignatureStatus::Good,
            signer_matches_from: true,
            scope: SignatureScope::Content,
            digest_algorithm: None,
            signing_time: None,
        });
        let security = arrival(&report, &message(&[]), &own(), None);
        assert_eq!(security.encrypted, Some(ArrivalEncryption::Smime));
        assert_eq!(security.signed, Some(SignatureStatus::Good));
        assert!(!security.portal_notice);

        report.encrypted = Encryption::Openpgp;
        report.signatures[0].scope = SignatureScope::Ciphertext;
        let security = arrival(&report, &message(&[]), &own(), None);
        assert_eq!(security.encrypted, Some(ArrivalEncryption::Openpgp));
        assert_eq!(security.signed, None);
    }

    fn security(encrypted: Option<ArrivalEncryption>, tls: Option<bool>) -> ArrivalSecurity {
        ArrivalSecurity {
            encrypted,
            signed: None,
            tls_into_provider: tls,
            portal_notice: false,
            portal_reply: false,
        }
    }

    #[test]
    fn floor_encrypted_original() {
        let floor = floor(&security(Some(ArrivalEncryption::Smime), None), None, true);
        assert_eq!(floor.sensitivity, Sensitivity::Phi);
        assert!(floor.encrypt);
        assert_eq!(floor.prefer, Some(ArrivalEncryption::Smime));
        assert!(
            floor.reason.contains("S/MIME encrypted"),
            "{}",
            floor.reason
        );
        assert!(below_floor(&floor, Some(Method::Tls)).is_some());
        assert!(below_floor(&floor, Some(Method::Internal)).is_some());
        assert!(below_floor(&floor, None).is_some());
        assert_eq!(below_floor(&floor, Some(Method::Openpgp)), None);
    }

    #[test]
    fn floor_keeps_restricted() {
        let floor = floor(
            &security(Some(ArrivalEncryption::Openpgp), None),
            Some(Sensitivity::Restricted),
            false,
        );
        assert_eq!(floor.sensitivity, Sensitivity::Restricted);
        assert!(
            floor.reason.contains("marked Restricted"),
            "{}",
            floor.reason
        );
    }

    #[test]
    fn floor_quoting_decrypted_text() {
        let floor = floor(&security(None, None), Some(Sensitivity::Routine), true);
        assert_eq!(floor.sensitivity, Sensitivity::Phi);
        assert!(floor.encrypt);
        assert_eq!(floor.prefer, None);
        assert!(
            floor.reason.ends_with("quotes its decrypted text"),
            "{}",
            floor.reason
        );
    }

    #[test]
    fn floor_tls_original() {
        let floor = floor(&security(None, Some(true)), None, false);
        assert_eq!(floor.sensitivity, Sensitivity::Routine);
        assert!(!floor.encrypt);
        assert!(floor.tls);
        assert!(below_floor(&floor, Some(Method::TlsUnverified)).is_some());
        assert_eq!(below_floor(&floor, Some(Method::Tls)), None);
    }

    #[test]
    fn floor_portal_reply() {
        let mut reply = security(None, Some(false));
        reply.portal_reply = true;
        let floor = floor(&reply, None, false);
        assert_eq!(floor.sensitivity, Sensitivity::Phi);
        assert!(floor.encrypt);
        assert!(floor.reason.contains("secure portal"), "{}", floor.reason);
        assert_eq!(below_floor(&floor, Some(Method::Portal)), None);
        assert!(below_floor(&floor, Some(Method::Tls)).is_some());
    }

    #[test]
    fn encryption_first_puts_portal_before_tls() {
        let mut routing = Routing::default();
        encryption_first(&mut routing, Some(ArrivalEncryption::Openpgp));
        let methods = &routing.phi.methods;
        assert_eq!(
            &methods[..3],
            &[Method::Openpgp, Method::Smime, Method::Portal]
        );
        assert!(methods.contains(&Method::Tls));
    }

    #[test]
    fn portal_notice_recognised_by_link() {
        let notice = b"From: nurse@clinic.example\r\nTo: p@mail.example\r\nSubject: Secure message\r\n\r\nOpen it:\r\nhttps://portal.clinic.example/m/AAAAAAAAAAAAAAAAAAAAAA#secret-part\r\n";
        let security = arrival(
            &ProtectionReport::unprotected(),
            notice,
            &own(),
            Some("https://portal.clinic.example/"),
        );
        assert!(security.portal_notice);
        let other = arrival(
            &ProtectionReport::unprotected(),
            notice,
            &own(),
            Some("https://portal.other.example"),
        );
        assert!(!other.portal_notice);
        assert!(!arrival(&ProtectionReport::unprotected(), notice, &own(), None).portal_notice);
        assert_eq!(
            portal_link(
                "see <https://p.example/m/abc#s3cret> now",
                "https://p.example"
            )
            .as_deref(),
            Some("https://p.example/m/abc#s3cret")
        );
        assert_eq!(
            portal_link("https://p.example/m/ only", "https://p.example"),
            None
        );
        let floor = floor(&security, None, false);
        assert!(floor.encrypt);
        assert!(floor.reason.contains("notice"), "{}", floor.reason);
    }

    #[test]
    fn floor_plain_original() {
        let floor = floor(&security(None, Some(false)), None, false);
        assert_eq!(floor.sensitivity, Sensitivity::Routine);
        assert!(!floor.tls);
        assert!(
            floor.reason.contains("without encryption"),
            "{}",
            floor.reason
        );
        assert_eq!(below_floor(&floor, Some(Method::TlsUnverified)), None);
    }
}
