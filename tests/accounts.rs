//! Account setup and "Test connection" against the real Dovecot and
//! Postfix: the good case and each failure the user must be able to fix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use wardmail::account::{Profile, Security};
use wardmail::imap::ImapError;
use wardmail::net::NetError;
use wardmail::secret::{KeyringEntry, Secret};
use wardmail::session::{SessionError, test_connection};
use wardmail::smtp::SmtpError;

fn imap_net(error: &SessionError) -> &NetError {
    match error {
        SessionError::Imap(ImapError::Net(net)) => net,
        other => panic!("expected an IMAP connection error, got: {other}"),
    }
}

fn smtp_net(error: &SessionError) -> &NetError {
    match error {
        SessionError::Smtp(SmtpError::Net(net)) => net,
        other => panic!("expected an SMTP connection error, got: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn check_starttls_succeeds() {
    let check = test_connection(&support::account("acc-good"), &support::password()).await;
    check.imap.unwrap();
    check.smtp.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn check_implicit_tls_succeeds() {
    let mut account = support::account("acc-tls");
    account.imap.port = support::port("IMAP_TLS_PORT");
    account.imap.security = Security::Tls;
    account.smtp.port = support::port("SMTP_TLS_PORT");
    account.smtp.security = Security::Tls;
    let check = test_connection(&account, &support::password()).await;
    check.imap.unwrap();
    check.smtp.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn check_wrong_password() {
    let check = test_connection(
        &support::account("acc-wrong"),
        &Secret::new("not-the-password"),
    )
    .await;
    let imap = check.imap.unwrap_err();
    assert!(
        matches!(imap, SessionError::Imap(ImapError::LoginFailed { .. })),
        "{imap}"
    );
    assert!(imap.to_string().contains("acc-wrong@example.org"), "{imap}");
    let smtp = check.smtp.unwrap_err();
    assert!(
        matches!(smtp, SessionError::Smtp(SmtpError::LoginFailed { .. })),
        "{smtp}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_implicit_tls_on_starttls_port() {
    let mut account = support::account("acc-mode1");
    account.imap.security = Security::Tls;
    account.smtp.security = Security::Tls;
    let check = test_connection(&account, &support::password()).await;
    let imap = check.imap.unwrap_err();
    assert!(
        matches!(imap_net(&imap), NetError::ExpectsStartTls { .. }),
        "{imap}"
    );
    let smtp = check.smtp.unwrap_err();
    assert!(
        matches!(smtp_net(&smtp), NetError::ExpectsStartTls { .. }),
        "{smtp}"
    );
    let port = support::port("SMTP_STARTTLS_PORT");
    assert!(
        smtp.to_string()
            .contains(&format!("port {port} expects STARTTLS, not implicit TLS")),
        "{smtp}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_starttls_on_implicit_port() {
    let mut account = support::account("acc-mode2");
    account.imap.port = support::port("IMAP_TLS_PORT");
    account.smtp.port = support::port("SMTP_TLS_PORT");
    let check = test_connection(&account, &support::password()).await;
    let imap = check.imap.unwrap_err();
    assert!(
        matches!(imap_net(&imap), NetError::ExpectsImplicitTls { .. }),
        "{imap}"
    );
    let smtp = check.smtp.unwrap_err();
    let port = support::port("SMTP_TLS_PORT");
    assert!(
        smtp.to_string()
            .contains(&format!("port {port} expects implicit TLS, not STARTTLS")),
        "{smtp}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_untrusted_certificate() {
    let mut account = support::account("acc-untrusted");
    account.ca_file = None;
    let check = test_connection(&account, &support::password()).await;
    let imap = check.imap.unwrap_err();
    let NetError::Untrusted {
        subject, issuer, ..
    } = imap_net(&imap)
    else {
        panic!("expected an untrusted certificate, got: {imap}");
    };
    assert!(subject.contains("CN="), "subject: {subject}");
    assert!(issuer.contains("CN="), "issuer: {issuer}");
    assert_ne!(subject, issuer);
    let smtp = check.smtp.unwrap_err();
    assert!(
        matches!(smtp_net(&smtp), NetError::Untrusted { .. }),
        "{smtp}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_smtp_without_starttls() {
    let mut account = support::account("acc-nostarttls");
    account.smtp.port = support::port("SMTP_NOTLS_PORT");
    let check = test_connection(&account, &support::password()).await;
    let smtp = check.smtp.unwrap_err();
    assert!(
        matches!(smtp_net(&smtp), NetError::StartTlsMissing { .. }),
        "{smtp}"
    );
    assert!(
        smtp.to_string()
            .contains("never sends a password in plain text"),
        "{smtp}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_refused_and_unknown_host() {
    let mut account = support::account("acc-refused");
    account.imap.port = 1;
    account.smtp.host = "no-such-host.invalid".into();
    let check = test_connection(&account, &support::password()).await;
    let imap = check.imap.unwrap_err();
    assert!(
        matches!(imap_net(&imap), NetError::Refused { port: 1, .. }),
        "{imap}"
    );
    let smtp = check.smtp.unwrap_err();
    assert!(
        matches!(smtp_net(&smtp), NetError::HostNotFound { .. }),
        "{smtp}"
    );
    assert!(smtp.to_string().contains("no-such-host.invalid"), "{smtp}");
}

#[tokio::test(flavor = "multi_thread")]
async fn saved_password_is_in_keyring_not_file() {
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::locate(Some(dir.path())).unwrap();
    let account = support::account("acc-keyring");
    // Not the servers' password: that one also appears in the test
    // directory's name, which the CA file path in the configuration shows.
    let secret = Secret::new("only-in-the-keyring-7f3a");
    let config = wardmail::session::save_account(profile.clone(), account.clone(), secret.clone())
        .await
        .unwrap();
    let entry = KeyringEntry::password(&config.profile_id, &account.id);
    let stored = tokio::task::spawn_blocking(move || entry.read())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, secret);
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let path = file.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes
                    .windows(secret.expose().len())
                    .any(|w| w == secret.expose().as_bytes()),
                "{} contains the password",
                path.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn changed_address_replaces_account() {
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::locate(Some(dir.path())).unwrap();
    let old = support::account("acc-old");
    wardmail::session::save_account(profile.clone(), old.clone(), support::password())
        .await
        .unwrap();
    let new = support::account("acc-new");
    let config = wardmail::session::replace_account(
        profile.clone(),
        Some(old.id.clone()),
        new.clone(),
        support::password(),
    )
    .await
    .unwrap();
    assert_eq!(config.accounts, vec![new]);
    let old_entry = KeyringEntry::password(&config.profile_id, &old.id);
    let lookup = tokio::task::spawn_blocking(move || old_entry.read())
        .await
        .unwrap();
    assert!(
        matches!(lookup, Err(wardmail::secret::SecretError::Missing { .. })),
        "{lookup:?}"
    );
}
