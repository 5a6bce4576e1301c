//! Web Key Directory lookup and the DNS resolver against the real Knot,
//! Unbound and nginx that `scripts/test-servers` starts. gpg makes the
//! certificates, and `gpg-wks-client --print-wkd-hash` checks the hash.
//!
//! The test zone (see the comment at the top of scripts/test-servers) has
//! wkd.test with openpgpkey.wkd.test (advanced method), direct.test without
//! an openpgpkey host (direct method), and untrusted.test whose server has a
//! self-signed certificate. Each test uses local parts that contain the
//! process id, so reruns against the same servers do not collide.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use wardmail::dns::{DnsError, NetworkSettings, Resolver, Validation};
use wardmail::net::{NetError, TlsContext};
use wardmail::wkd::{Absence, Method, Outcome, WkdClient, WkdError, wkd_hash};

/// A temporary GnuPG home whose agent is stopped on drop.
struct Gnupg {
    home: tempfile::TempDir,
}

impl Gnupg {
    fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        Self { home }
    }

    fn run(&self, args: &[&str]) -> Vec<u8> {
        let mut child = Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args(["--batch", "--yes", "--no-tty"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"").unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "gpg {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// Creates an Ed25519 key without a passphrase for `address` and returns
    /// its fingerprint.
    fn create_key(&self, address: &str) -> String {
        let uid = format!("Test User <{address}>");
        self.run(&[
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            &uid,
            "ed25519",
            "sign",
            "never",
        ]);
        let listing =
            String::from_utf8(self.run(&["--with-colons", "--list-keys", address])).unwrap();
        listing
            .lines()
            .find_map(|line| line.strip_prefix("fpr:"))
            .map(|rest| rest.trim_matches(':').to_owned())
            .expect("gpg lists a fingerprint")
    }

    /// Returns the binary certificate of `address`, as WKD serves it.
    fn export(&self, address: &str) -> Vec<u8> {
        self.run(&["--export", address])
    }
}

impl Drop for Gnupg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

/// Returns the WKD hash that GnuPG computes for `address`.
fn gnupg_wkd_hash(address: &str) -> String {
    let libexec = Command::new("gpgconf")
        .args(["--list-dirs", "libexecdir"])
        .output()
        .unwrap();
    let libexec = String::from_utf8(libexec.stdout).unwrap();
    let tool = Path::new(libexec.trim()).join("gpg-wks-client");
    let output = Command::new(&tool)
        .args(["--print-wkd-hash", address])
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", tool.display()));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    text.split_whitespace().next().unwrap().to_owned()
}

fn network_settings() -> NetworkSettings {
    NetworkSettings {
        dns_nameserver: Some(support::env("DNS_RESOLVER")),
        dns_trust_anchor: Some(PathBuf::from(support::env("DNS_TRUST_ANCHOR"))),
        https_ca_file: Some(support::ca_file()),
    }
}

fn resolver() -> Resolver {
    Resolver::new(&network_settings()).unwrap()
}

fn client() -> WkdClient {
    let tls = TlsContext::load(Some(&support::ca_file())).unwrap();
    WkdClient::new(resolver(), tls)
}

/// Writes `bytes` where nginx serves `https://HOST/PATH`.
fn publish(host: &str, path: &str, bytes: &[u8]) {
    let file = Path::new(&support::env("WEB_ROOT")).join(host).join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, bytes).unwrap();
}

fn publish_advanced(domain: &str, local: &str, bytes: &[u8]) {
    let path = format!(".well-known/openpgpkey/{domain}/hu/{}", wkd_hash(local));
    publish(&format!("openpgpkey.{domain}"), &path, bytes);
}

fn publish_direct(domain: &str, local: &str, bytes: &[u8]) {
    let path = format!(".well-known/openpgpkey/hu/{}", wkd_hash(local));
    publish(domain, &path, bytes);
}

fn local(base: &str) -> String {
    support::user(base)
}

#[test]
fn wkd_hash_matches_gnupg() {
    let pid = std::process::id();
    let locals = [
        "Joe.Doe".to_owned(),
        format!("ann+lab-{pid}"),
        "JÜRGEN".to_owned(),
        "o'brien_x~y".to_owned(),
    ];
    for local in locals {
        let address = format!("{local}@example.org");
        assert_eq!(
            wkd_hash(&local),
            gnupg_wkd_hash(&address),
            "hash of {local:?}"
        );
    }
}

#[tokio::test]
async fn wkd_advanced_hit() {
    let gnupg = Gnupg::new();
    let local = local("Advanced");
    let address = format!("{local}@wkd.test");
    let fingerprint = gnupg.create_key(&address);
    publish_advanced("wkd.test", &local, &gnupg.export(&address));

    let Outcome::Found(found) = client().lookup(&address).await.unwrap() else {
        panic!("expected a certificate for {address}");
    };
    assert_eq!(found.method, Method::Advanced);
    assert_eq!(found.host, "openpgpkey.wkd.test");
    assert_eq!(found.fingerprints, vec![fingerprint]);
    assert_eq!(found.dropped, 0);
    assert!(!found.certificates.is_empty());
}

#[tokio::test]
async fn wkd_direct_hit_without_advanced_host() {
    let gnupg = Gnupg::new();
    let local = local("direct");
    let address = format!("{local}@direct.test");
    let fingerprint = gnupg.create_key(&address);
    publish_direct("direct.test", &local, &gnupg.export(&address));

    let Outcome::Found(found) = client().lookup(&address).await.unwrap() else {
        panic!("expected a certificate for {address}");
    };
    assert_eq!(found.method, Method::Direct);
    assert_eq!(found.host, "direct.test");
    assert_eq!(found.fingerprints, vec![fingerprint]);
}

#[tokio::test]
async fn wkd_miss_is_not_published() {
    let gnupg = Gnupg::new();
    let local = local("missing");
    let address = format!("{local}@wkd.test");
    // A certificate at the direct location of a domain that has an
    // openpgpkey host must not be used: the advanced method's 404 is final.
    gnupg.create_key(&address);
    publish_direct("wkd.test", &local, &gnupg.export(&address));

    let outcome = client().lookup(&address).await.unwrap();
    let Outcome::NotPublished {
        absence,
        method,
        host,
    } = outcome
    else {
        panic!("expected no certificate, got {outcome:?}");
    };
    assert_eq!(absence, Absence::NotFound);
    assert_eq!(method, Method::Advanced);
    assert_eq!(host, "openpgpkey.wkd.test");
}

#[tokio::test]
async fn wkd_mismatched_user_id_dropped() {
    let gnupg = Gnupg::new();
    let wanted_local = local("wanted");
    let wanted = format!("{wanted_local}@wkd.test");
    let other = format!("{}@wkd.test", local("other"));
    gnupg.create_key(&other);
    publish_advanced("wkd.test", &wanted_local, &gnupg.export(&other));

    let outcome = client().lookup(&wanted).await.unwrap();
    let Outcome::NotPublished { absence, .. } = outcome else {
        panic!("a certificate for another address must be dropped, got {outcome:?}");
    };
    assert_eq!(absence, Absence::NoMatchingUserId { dropped: 1 });
}

#[tokio::test]
async fn wkd_keeps_matching_among_mismatched() {
    let gnupg = Gnupg::new();
    let wanted_local = local("Mixed");
    let wanted = format!("{wanted_local}@wkd.test");
    let other = format!("{}@wkd.test", local("intruder"));
    let wanted_fingerprint = gnupg.create_key(&wanted);
    gnupg.create_key(&other);
    let mut published = gnupg.export(&other);
    published.extend(gnupg.export(&wanted));
    publish_advanced("wkd.test", &wanted_local, &published);

    // The address is looked up in another case than the User ID has.
    let Outcome::Found(found) = client().lookup(&wanted.to_uppercase()).await.unwrap() else {
        panic!("expected the matching certificate for {wanted}");
    };
    assert_eq!(found.fingerprints, vec![wanted_fingerprint]);
    assert_eq!(found.dropped, 1);
}

#[tokio::test]
async fn wkd_untrusted_certificate_is_tls_error() {
    let gnupg = Gnupg::new();
    let local = local("untrusted");
    let address = format!("{local}@untrusted.test");
    gnupg.create_key(&address);
    publish_advanced("untrusted.test", &local, &gnupg.export(&address));

    let error = client().lookup(&address).await.unwrap_err();
    let message = error.to_string();
    match error {
        WkdError::Tls {
            host,
            source: NetError::Untrusted { subject, .. },
        } => {
            assert_eq!(host, "openpgpkey.untrusted.test");
            assert!(
                subject.contains("Wardmail untrusted test server"),
                "{subject}"
            );
        }
        other => panic!("expected an untrusted-certificate error, got {other:?}"),
    }
    assert!(message.contains("openpgpkey.untrusted.test"), "{message}");
}

#[tokio::test]
async fn wkd_unknown_domain_is_dns_error() {
    let address = format!("{}@no-such-domain.test", local("nobody"));
    let error = client().lookup(&address).await.unwrap_err();
    match error {
        WkdError::Dns {
            host,
            source: DnsError::NotFound { .. },
        } => assert_eq!(host, "no-such-domain.test"),
        other => panic!("expected host not found, got {other:?}"),
    }
}

#[tokio::test]
async fn session_wkd_lookup_imports() {
    let gnupg = Gnupg::new();
    let local = local("session");
    let address = format!("{local}@wkd.test");
    let fingerprint = gnupg.create_key(&address);
    publish_advanced("wkd.test", &local, &gnupg.export(&address));

    let user = support::user("wkd-session");
    let (_profile, mut session) = support::session(support::account(&user)).await;
    session.config.network = network_settings();
    let Outcome::Found(found) = session.wkd_lookup(&address).await.unwrap() else {
        panic!("expected a certificate for {address}");
    };
    let imported = session.import_openpgp(found.certificates).await.unwrap();
    assert_eq!(imported, vec![fingerprint.clone()]);
    let stored = session.openpgp_fingerprints().await.unwrap();
    assert!(stored.contains(&fingerprint), "{stored:?}");
}

#[tokio::test]
async fn resolver_validates_signed_zone() {
    let signed = resolver().validated_addresses("wkd.test").await.unwrap();
    assert_eq!(signed.validation, Validation::Secure);
    assert_eq!(
        signed.addresses,
        vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );

    let unsigned = resolver()
        .validated_addresses("host.insecure.test")
        .await
        .unwrap();
    assert_eq!(unsigned.validation, Validation::Insecure);
}

#[tokio::test]
async fn resolver_without_test_anchor_rejects_test_zone() {
    // With the public root keys, the private test root cannot validate, and
    // the result must not pass as secure or insecure.
    let settings = NetworkSettings {
        dns_trust_anchor: None,
        ..network_settings()
    };
    let resolver = Resolver::new(&settings).unwrap();
    let result = resolver.validated_addresses("wkd.test").await;
    assert!(result.is_err(), "{result:?}");
    // Address lookups for connecting do not validate, so they still work.
    assert!(resolver.addresses("wkd.test").await.is_ok());
}

#[tokio::test]
async fn resolver_missing_name_not_found() {
    let error = resolver().addresses("absent.wkd.test").await.unwrap_err();
    assert!(matches!(error, DnsError::NotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn cli_keys_wkd_exit_codes() {
    let gnupg = Gnupg::new();
    let local = local("cli");
    let address = format!("{local}@wkd.test");
    let fingerprint = gnupg.create_key(&address);
    publish_advanced("wkd.test", &local, &gnupg.export(&address));

    let user = support::user("wkd-cli");
    let (profile, session) = support::session(support::account(&user)).await;
    drop(session);
    let settings = network_settings();
    let wardmail = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wardmail"))
            .arg("--profile")
            .arg(profile.path())
            .args(args)
            .env(
                "WARDMAIL_DNS_NAMESERVER",
                settings.dns_nameserver.as_ref().unwrap(),
            )
            .env(
                "WARDMAIL_DNS_TRUST_ANCHOR",
                settings.dns_trust_anchor.as_ref().unwrap(),
            )
            .env(
                "WARDMAIL_HTTPS_CA_FILE",
                settings.https_ca_file.as_ref().unwrap(),
            )
            .output()
            .unwrap()
    };

    let imported = wardmail(&["keys", "wkd", &address, "--import"]);
    let stdout = String::from_utf8_lossy(&imported.stdout);
    assert!(
        imported.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert!(
        stdout.contains(&format!("imported OpenPGP key {fingerprint}")),
        "{stdout}"
    );
    let listed = wardmail(&["keys", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&fingerprint));

    let absent = wardmail(&[
        "keys",
        "wkd",
        &format!("{}@wkd.test", support::user("absent")),
    ]);
    assert_eq!(absent.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&absent.stdout);
    assert!(stdout.contains("no OpenPGP certificate"), "{stdout}");

    let untrusted = wardmail(&["keys", "wkd", &format!("{local}@untrusted.test")]);
    assert_eq!(untrusted.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert!(
        stderr.contains("certificate of openpgpkey.untrusted.test not trusted"),
        "{stderr}"
    );
}
