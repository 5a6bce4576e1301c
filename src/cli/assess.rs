//! `wardmail assess`: each recipient's keys and TLS findings, as text or
//! JSON.

use std::process::ExitCode;
use std::time::Duration;

use wardmail::assess::{AssessOptions, DaneResult, DomainTls, ProbeResult};
use wardmail::session::{RecipientAssessment, Session, SessionError, WkdFinding};

use super::print_json;

/// Options of `wardmail assess` besides the addresses.
#[derive(Debug, clap::Args)]
pub struct AssessArguments {
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
    /// Skip the STARTTLS probe of each MX host on port 25.
    #[arg(long)]
    pub no_probe: bool,
    /// Time limit of each port 25 probe, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub probe_timeout: f64,
    /// Skip the Web Key Directory lookup for recipients without an OpenPGP key.
    #[arg(long)]
    pub no_wkd: bool,
}

/// Assesses `addresses` and prints the findings. The exit status is
/// success whenever the assessment ran, whatever the levels.
pub async fn assess(
    session: Session,
    addresses: Vec<String>,
    arguments: AssessArguments,
) -> Result<ExitCode, SessionError> {
    let options = AssessOptions {
        probe: !arguments.no_probe,
        probe_timeout: Duration::from_secs_f64(arguments.probe_timeout.clamp(0.1, 120.0)),
        wkd: !arguments.no_wkd,
        ..AssessOptions::default()
    };
    let results = session.assess_with(addresses, options).await?;
    if arguments.json {
        print_json(&results);
    } else {
        for (index, result) in results.iter().enumerate() {
            if index > 0 {
                println!();
            }
            print_recipient(result);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_recipient(result: &RecipientAssessment) {
    let tls = &result.tls;
    let hop = if tls.next_hop_enforced {
        "next hop enforced"
    } else {
        "next hop predicted"
    };
    println!("{}: {} ({hop})", result.address, tls.level.label());
    println!("  why: {}", tls.reason);

    let openpgp = &result.openpgp;
    let fingerprint = openpgp.fingerprint.as_deref().unwrap_or("-");
    let source = openpgp.source.as_deref().unwrap_or("-");
    println!(
        "  OpenPGP: {} (key {fingerprint}, source {source})",
        openpgp.reason
    );
    match &openpgp.wkd {
        WkdFinding::NotChecked => {}
        WkdFinding::Found { fingerprints, host } => {
            println!("    WKD at {host}: {}", fingerprints.join(", "))
        }
        WkdFinding::NotPublished { host } => println!("    WKD at {host}: not published"),
        WkdFinding::Failed { reason } => println!("    WKD: {reason}"),
    }
    if let Some(autocrypt) = &openpgp.autocrypt {
        let prefer = if autocrypt.prefer_encrypt {
            "mutual"
        } else {
            "nopreference"
        };
        println!(
            "    Autocrypt: key {}, prefer-encrypt={prefer}",
            autocrypt.fingerprint
        );
    }
    let smime = &result.smime;
    match (&smime.fingerprint, &smime.not_after) {
        (Some(fingerprint), Some(not_after)) => println!(
            "  S/MIME: {} ({fingerprint}, valid until {not_after})",
            smime.reason
        ),
        _ => println!("  S/MIME: {}", smime.reason),
    }
    println!("  portal: {}", result.portal.reason);
    print_domain(tls);
}

fn print_domain(tls: &DomainTls) {
    let hosts: Vec<&str> = tls.mx.iter().map(|mx| mx.host.as_str()).collect();
    let signed = match tls.mx_dnssec {
        Some(true) => ", DNSSEC-signed",
        Some(false) => ", not DNSSEC-signed",
        None => "",
    };
    match &tls.mx_error {
        Some(error) => println!("  MX of {}: {error}", tls.domain),
        None => println!("  MX of {}: {}{signed}", tls.domain, hosts.join(", ")),
    }
    println!("  MTA-STS: {}", tls.mta_sts.reason);
    for dane in &tls.dane {
        let label = match dane.result {
            DaneResult::Valid => "valid",
            DaneResult::Published => "published, not checked",
            DaneResult::Mismatch => "MISMATCH",
            DaneResult::Unsigned => "unsigned, not trusted",
            DaneResult::Unusable => "unusable",
            DaneResult::None => "none",
            DaneResult::Failed => "lookup failed",
        };
        println!("  DANE {}: {label}: {}", dane.host, dane.reason);
    }
    for probe in &tls.probes {
        let label = match probe.result {
            ProbeResult::Offered { .. } => "STARTTLS offered",
            ProbeResult::NotOffered => "STARTTLS NOT offered",
            ProbeResult::CouldNotProbe => "could not probe",
        };
        println!(
            "  probe {}: {label} ({} ms): {}",
            probe.host, probe.elapsed_ms, probe.reason
        );
    }
    let requiretls = match tls.requiretls_at_submission {
        Some(true) => "offered",
        Some(false) => "not offered",
        None => "unknown (submission server not reached)",
    };
    println!("  REQUIRETLS at submission: {requiretls}");
}
