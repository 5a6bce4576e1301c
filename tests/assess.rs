//! The per-recipient assessment against the real Knot, Unbound, nginx,
//! Postfix MX listeners and the REQUIRETLS submission server that
//! `scripts/test-servers` starts. The recipient domains and what each one
//! publishes are listed at the top of that script.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wardmail::assess::{
    AssessOptions, DaneResult, MtaStsMode, PolicySource, ProbeResult, StoredPolicy, TlsLevel,
    unix_now,
};
use wardmail::dns::NetworkSettings;
use wardmail::session::{RecipientAssessment, Session, WkdFinding};
use wardmail::wkd::wkd_hash;

use support::gnupg::Gnupg;

fn network_settings() -> NetworkSettings {
    NetworkSettings {
        dns_nameserver: Some(support::env("DNS_RESOLVER")),
        dns_trust_anchor: Some(PathBuf::from(support::env("DNS_TRUST_ANCHOR"))),
        https_ca_file: Some(support::ca_file()),
    }
}

fn options() -> AssessOptions {
    AssessOptions {
        probe_timeout: Duration::from_secs(1),
        ..AssessOptions::default()
    }
}

/// Opens a session whose submission server is the one on `smtp_port`.
async fn session(base: &str, smtp_port: &str) -> (tempfile::TempDir, Session) {
    let mut account = support::account(&support::user(base));
    account.smtp.port = support::port(smtp_port);
    let (profile, mut session) = support::session(account).await;
    session.config.network = network_settings();
    (profile, session)
}

async fn assess_one(session: &Session, address: &str) -> RecipientAssessment {
    let mut results = session
        .assess_with(vec![address.to_owned()], options())
        .await
        .unwrap();
    assert_eq!(results.len(), 1);
    results.remove(0)
}

#[tokio::test]
async fn mta_sts_enforce_with_requiretls() {
    let (_profile, session) = session("assess-enforce", "SMTP_REQUIRETLS_PORT").await;
    let result = assess_one(&session, "someone@enforce.test").await;
    let tls = &result.tls;
    assert_eq!(tls.level, TlsLevel::Enforced, "{tls:#?}");
    assert_eq!(tls.mta_sts.mode, Some(MtaStsMode::Enforce));
    assert_eq!(tls.mta_sts.id.as_deref(), Some("enforce1"));
    assert_eq!(tls.mta_sts.source, Some(PolicySource::Fetched));
    assert_eq!(tls.mta_sts.mx_matched, vec!["mx-tls.test"]);
    assert_eq!(tls.requiretls_at_submission, Some(true));
    assert!(tls.next_hop_enforced);

    let stored = session
        .store
        .mta_sts_policy("enforce.test")
        .unwrap()
        .unwrap();
    assert_eq!(stored.id, "enforce1");
    assert_eq!(stored.max_age, 86400);
}

#[tokio::test]
async fn mta_sts_testing_none_mismatch() {
    let (_profile, session) = session("assess-modes", "SMTP_STARTTLS_PORT").await;
    let addresses = ["a@testing.test", "b@none.test", "c@mismatch.test"];
    let results = session
        .assess_with(addresses.map(str::to_owned).to_vec(), options())
        .await
        .unwrap();
    let [testing, none, mismatch] = results.as_slice() else {
        panic!("expected three results: {results:#?}");
    };
    assert_eq!(testing.tls.mta_sts.mode, Some(MtaStsMode::Testing));
    assert_eq!(testing.tls.level, TlsLevel::Offered);
    assert_eq!(none.tls.mta_sts.mode, Some(MtaStsMode::None));
    assert_eq!(none.tls.level, TlsLevel::Offered);
    assert_eq!(mismatch.tls.mta_sts.mode, Some(MtaStsMode::Enforce));
    assert_eq!(mismatch.tls.mta_sts.mx_unmatched, vec!["mx-tls.test"]);
    assert_eq!(mismatch.tls.level, TlsLevel::Offered);
    // Postfix does not offer REQUIRETLS, so nothing is enforced by Wardmail.
    assert_eq!(testing.tls.requiretls_at_submission, Some(false));
    assert!(!testing.tls.next_hop_enforced);
}

#[tokio::test]
async fn mta_sts_changed_id_refetches() {
    let (_profile, session) = session("assess-newid", "SMTP_STARTTLS_PORT").await;
    let outdated = StoredPolicy {
        domain: "enforce.test".to_owned(),
        id: "old".to_owned(),
        mode: MtaStsMode::Testing,
        mx: vec!["mx-tls.test".to_owned()],
        max_age: 86400,
        fetched_at: unix_now(),
    };
    session.store.save_mta_sts_policy(&outdated).unwrap();

    let result = assess_one(&session, "someone@enforce.test").await;
    assert_eq!(result.tls.mta_sts.source, Some(PolicySource::Fetched));
    assert_eq!(result.tls.mta_sts.mode, Some(MtaStsMode::Enforce));
    let stored = session
        .store
        .mta_sts_policy("enforce.test")
        .unwrap()
        .unwrap();
    assert_eq!(stored.id, "enforce1");
    assert_eq!(stored.mode, MtaStsMode::Enforce);
}

#[tokio::test]
async fn mta_sts_cache_same_id_and_expiry() {
    // cached.test publishes a TXT record but no policy file, so only the
    // cache can supply its policy.
    let (_profile, session) = session("assess-cache", "SMTP_STARTTLS_PORT").await;
    let mut cached = StoredPolicy {
        domain: "cached.test".to_owned(),
        id: "cached1".to_owned(),
        mode: MtaStsMode::Enforce,
        mx: vec!["mx-tls.test".to_owned()],
        max_age: 86400,
        fetched_at: unix_now(),
    };
    session.store.save_mta_sts_policy(&cached).unwrap();
    let result = assess_one(&session, "someone@cached.test").await;
    assert_eq!(result.tls.mta_sts.source, Some(PolicySource::Cache));
    assert_eq!(result.tls.level, TlsLevel::Enforced);

    cached.fetched_at = unix_now() - 86400;
    session.store.save_mta_sts_policy(&cached).unwrap();
    session.forget_assessments();
    let result = assess_one(&session, "someone@cached.test").await;
    assert_eq!(result.tls.mta_sts.mode, None, "{:#?}", result.tls.mta_sts);
    assert!(
        result.tls.mta_sts.reason.contains("404"),
        "{}",
        result.tls.mta_sts.reason
    );
    assert_eq!(result.tls.level, TlsLevel::Offered);
}

#[tokio::test]
async fn dane_valid_mismatch_unsigned() {
    let (_profile, session) = session("assess-dane", "SMTP_STARTTLS_PORT").await;
    let addresses = ["a@dane.test", "b@badtlsa.test", "c@insecure.test"];
    let results = session
        .assess_with(addresses.map(str::to_owned).to_vec(), options())
        .await
        .unwrap();
    let [valid, mismatch, unsigned] = results.as_slice() else {
        panic!("expected three results: {results:#?}");
    };
    assert_eq!(valid.tls.dane[0].result, DaneResult::Valid);
    assert_eq!(valid.tls.level, TlsLevel::Enforced);
    assert_eq!(mismatch.tls.dane[0].result, DaneResult::Mismatch);
    assert_eq!(mismatch.tls.level, TlsLevel::Offered);
    assert_eq!(unsigned.tls.mx_dnssec, Some(false));
    assert_eq!(unsigned.tls.dane[0].result, DaneResult::Unsigned);
    assert_eq!(unsigned.tls.level, TlsLevel::Offered);
}

#[tokio::test]
async fn dane_without_probe_published() {
    let (_profile, session) = session("assess-noprobe", "SMTP_STARTTLS_PORT").await;
    let options = AssessOptions {
        probe: false,
        ..options()
    };
    let results = session
        .assess_with(vec!["a@dane.test".to_owned()], options)
        .await
        .unwrap();
    assert!(results[0].tls.probes.is_empty());
    assert_eq!(results[0].tls.dane[0].result, DaneResult::Published);
    assert_eq!(results[0].tls.level, TlsLevel::Enforced);
}

#[tokio::test]
async fn starttls_missing_untrusted_blocked() {
    let (_profile, session) = session("assess-probe", "SMTP_STARTTLS_PORT").await;
    let addresses = [
        "a@notls.test",
        "b@mixed.test",
        "c@untrustedmx.test",
        "d@blocked.test",
    ];
    let results = session
        .assess_with(addresses.map(str::to_owned).to_vec(), options())
        .await
        .unwrap();
    let [notls, mixed, untrusted, blocked] = results.as_slice() else {
        panic!("expected four results: {results:#?}");
    };
    assert_eq!(notls.tls.probes[0].result, ProbeResult::NotOffered);
    assert_eq!(notls.tls.level, TlsLevel::NotOffered);
    assert_eq!(mixed.tls.level, TlsLevel::NotOffered);
    assert!(
        mixed.tls.reason.contains("mx-notls.test"),
        "{}",
        mixed.tls.reason
    );
    assert!(matches!(
        untrusted.tls.probes[0].result,
        ProbeResult::Offered {
            certificate_trusted: false,
            ..
        }
    ));
    assert_eq!(untrusted.tls.level, TlsLevel::Offered);
    assert_eq!(blocked.tls.probes[0].result, ProbeResult::CouldNotProbe);
    assert_eq!(blocked.tls.level, TlsLevel::Unknown);
    assert!(blocked.tls.probes[0].elapsed_ms < 3000);
}

#[tokio::test]
async fn wkd_hit_miss_and_held_key() {
    let gnupg = Gnupg::new();
    let local = support::user("assess-wkd");
    let address = format!("{local}@wkd.test");
    gnupg.create_key(&address, "");
    let public = gnupg.run(&["--export", &address], b"");
    let dir = PathBuf::from(support::env("WEB_ROOT"))
        .join("openpgpkey.wkd.test/.well-known/openpgpkey/wkd.test/hu");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(wkd_hash(&local)), &public).unwrap();

    let (_profile, session) = session("assess-wkd", "SMTP_STARTTLS_PORT").await;
    let missing = format!("{local}-absent@wkd.test");
    let results = session
        .assess_with(vec![address.clone(), missing], options())
        .await
        .unwrap();
    let WkdFinding::Found { fingerprints, .. } = &results[0].openpgp.wkd else {
        panic!("expected a WKD hit: {:#?}", results[0].openpgp);
    };
    assert!(!results[0].openpgp.usable);
    assert!(matches!(
        results[1].openpgp.wkd,
        WkdFinding::NotPublished { .. }
    ));

    let imported = session.import_openpgp(public).await.unwrap();
    assert_eq!(&imported, fingerprints);
    session.forget_assessments();
    let held = assess_one(&session, &address).await;
    assert!(held.openpgp.usable);
    assert_eq!(held.openpgp.fingerprint.as_ref(), imported.first());
    assert_eq!(held.openpgp.source.as_deref(), Some("imported"));
    assert_eq!(held.openpgp.wkd, WkdFinding::NotChecked);
    assert!(!held.smime.usable);
    assert!(!held.portal.available);
}

#[tokio::test]
async fn cached_results_without_network() {
    let (_profile, session) = session("assess-cached", "SMTP_STARTTLS_PORT").await;
    let session = Arc::new(session);
    let wanted = vec![
        "a@notls.test".to_owned(),
        "b@never-assessed.test".to_owned(),
    ];
    assert!(session.assess_cached(&wanted).is_empty());

    session
        .assess_with(vec!["A@NoTLS.test".to_owned()], options())
        .await
        .unwrap();
    let cached = session.assess_cached(&wanted);
    assert_eq!(cached.len(), 1);
    assert_eq!(cached[0].address, "a@notls.test");
    assert_eq!(cached[0].tls.level, TlsLevel::NotOffered);
}

#[tokio::test]
async fn invalid_address_rejected() {
    let (_profile, session) = session("assess-invalid", "SMTP_STARTTLS_PORT").await;
    let error = session
        .assess_with(vec!["no-at-sign".to_owned()], options())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("name@clinic.example"), "{error}");
}

/// The benchmark in BENCHMARKS.md, not part of the suite: run it with
/// `cargo test --test assess bench_fifty_domains -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "benchmark"]
#[allow(clippy::print_stdout)]
async fn bench_fifty_domains() {
    let addresses: Vec<String> = (1..=50)
        .map(|n| format!("someone@bench{n:02}.test"))
        .collect();
    let (_single_profile, single) = session("assess-bench-one", "SMTP_STARTTLS_PORT").await;
    let started = std::time::Instant::now();
    let one = single
        .assess_with(addresses[..1].to_vec(), options())
        .await
        .unwrap();
    let single_time = started.elapsed();
    assert_eq!(one[0].tls.level, TlsLevel::Offered);

    let (_profile, session) = session("assess-bench", "SMTP_STARTTLS_PORT").await;
    let started = std::time::Instant::now();
    let cold = session
        .assess_with(addresses.clone(), options())
        .await
        .unwrap();
    let cold_time = started.elapsed();
    assert!(cold.iter().all(|r| r.tls.level == TlsLevel::Offered));

    let started = std::time::Instant::now();
    session.assess_with(addresses, options()).await.unwrap();
    let warm_time = started.elapsed();

    let ratio = |time: Duration| time.as_secs_f64() / single_time.as_secs_f64();
    println!(
        "one recipient cold: {:.3} s; 50 domains cold: {:.3} s ({:.1}x); warm: {:.4} s ({:.3}x)",
        single_time.as_secs_f64(),
        cold_time.as_secs_f64(),
        ratio(cold_time),
        warm_time.as_secs_f64(),
        ratio(warm_time)
    );
}
