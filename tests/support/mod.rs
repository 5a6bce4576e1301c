//! Shared helpers for the integration tests: the loopback servers that
//! `scripts/test-servers` started (described by `WARDMAIL_TEST_*`
//! variables), accounts and profiles for them, and direct mailbox access
//! through `doveadm` that does not depend on Wardmail's own IMAP code.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use wardmail::account::{Account, Profile, Security, Server, account_id};

pub mod gnupg;
pub mod pki;
use wardmail::secret::Secret;
use wardmail::session::{self, Session};

/// Reads a variable written by `scripts/test-servers`.
pub fn env(name: &str) -> String {
    let key = format!("WARDMAIL_TEST_{name}");
    std::env::var(&key).unwrap_or_else(|_| {
        panic!("{key} is not set: run the tests with scripts/test, which starts the servers")
    })
}

/// Returns the test servers' host.
pub fn host() -> String {
    env("HOST")
}

/// Returns a port by its variable suffix ("IMAP_TLS_PORT").
pub fn port(name: &str) -> u16 {
    env(name).parse().unwrap()
}

/// Returns the password every test user has.
pub fn password() -> Secret {
    Secret::new(env("PASSWORD"))
}

/// Returns the path of the test CA certificate.
pub fn ca_file() -> PathBuf {
    PathBuf::from(env("CA"))
}

/// Returns a user name unique to this test process, so that reruns against the
/// same servers start with empty mailboxes.
pub fn user(base: &str) -> String {
    format!("{base}-{}", std::process::id())
}

/// Returns an account for `user` (a unique name per test, so tests do not share a
/// mailbox) with STARTTLS for both servers.
pub fn account(user: &str) -> Account {
    let address = format!("{user}@example.org");
    Account {
        id: account_id(&address),
        display_name: format!("Test {user}"),
        address: address.clone(),
        username: address,
        imap: Server {
            host: host(),
            port: port("IMAP_STARTTLS_PORT"),
            security: Security::StartTls,
        },
        smtp: Server {
            host: host(),
            port: port("SMTP_STARTTLS_PORT"),
            security: Security::StartTls,
        },
        ca_file: Some(ca_file()),
    }
}

/// Saves `account` in a fresh profile directory (password in the real
/// Secret Service) and opens it as a session.
pub async fn session(account: Account) -> (tempfile::TempDir, Session) {
    let dir = tempfile::tempdir().unwrap();
    let profile = Profile::locate(Some(dir.path())).unwrap();
    session::save_account(profile.clone(), account, password())
        .await
        .unwrap();
    let session = Session::open(profile, None).await.unwrap();
    (dir, session)
}

fn doveadm(args: &[&str], input: Option<&[u8]>) -> String {
    let mut child = Command::new("doveadm")
        .arg("-c")
        .arg(env("DOVECOT_CONF"))
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("doveadm runs");
    if let Some(input) = input {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "doveadm {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Creates a mailbox (name in UTF-8; Dovecot encodes it).
pub fn create_mailbox(user: &str, mailbox: &str) {
    doveadm(
        &[
            "mailbox",
            "create",
            "-u",
            &format!("{user}@example.org"),
            mailbox,
        ],
        None,
    );
}

/// Stores a message directly in a mailbox, bypassing SMTP and IMAP.
pub fn save(user: &str, mailbox: &str, raw: &[u8]) {
    doveadm(
        &["save", "-u", &format!("{user}@example.org"), "-m", mailbox],
        Some(raw),
    );
}

/// Lists the UIDs in a mailbox, per Dovecot.
pub fn uids(user: &str, mailbox: &str) -> Vec<u32> {
    doveadm(
        &[
            "-f",
            "flow",
            "fetch",
            "-u",
            &format!("{user}@example.org"),
            "uid",
            "mailbox",
            mailbox,
            "ALL",
        ],
        None,
    )
    .lines()
    .filter_map(|line| line.trim().strip_prefix("uid=")?.parse().ok())
    .collect()
}

/// Returns the header sections of every message in a mailbox, per Dovecot.
pub fn headers(user: &str, mailbox: &str) -> String {
    doveadm(
        &[
            "fetch",
            "-u",
            &format!("{user}@example.org"),
            "hdr",
            "mailbox",
            mailbox,
            "ALL",
        ],
        None,
    )
}

/// Counts the messages in a mailbox that carry a Message-ID, per Dovecot.
pub fn count_message_id(user: &str, mailbox: &str, message_id: &str) -> usize {
    let id = message_id.trim_matches(['<', '>']);
    doveadm(
        &[
            "search",
            "-u",
            &format!("{user}@example.org"),
            "mailbox",
            mailbox,
            "header",
            "Message-ID",
            id,
        ],
        None,
    )
    .lines()
    .count()
}

/// Expunges one message by UID.
pub fn expunge(user: &str, mailbox: &str, uid: u32) {
    doveadm(
        &[
            "expunge",
            "-u",
            &format!("{user}@example.org"),
            "mailbox",
            mailbox,
            "uid",
            &uid.to_string(),
        ],
        None,
    );
}

/// Adds a flag to one message by UID.
pub fn add_flag(user: &str, mailbox: &str, uid: u32, flag: &str) {
    doveadm(
        &[
            "flags",
            "add",
            "-u",
            &format!("{user}@example.org"),
            flag,
            "mailbox",
            mailbox,
            "uid",
            &uid.to_string(),
        ],
        None,
    );
}

/// Stops or starts the test Postfix.
pub fn postfix(action: &str) {
    let status = Command::new("postfix")
        .arg("-c")
        .arg(env("POSTFIX_CONF"))
        .arg(action)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "postfix {action} failed");
}

/// Builds a small synthetic message.
pub fn message(from: &str, to: &str, subject: &str, id: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n\
         Message-ID: <{id}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Lab results are ready.\r\n"
    )
    .into_bytes()
}

/// Returns the raw messages of a mailbox, per Dovecot, oldest first, with
/// LF line ends as doveadm prints them.
pub fn raw_messages(user: &str, mailbox: &str) -> Vec<Vec<u8>> {
    uids(user, mailbox)
        .into_iter()
        .map(|uid| {
            let text = doveadm(
                &[
                    "fetch",
                    "-u",
                    &format!("{user}@example.org"),
                    "text",
                    "mailbox",
                    mailbox,
                    "uid",
                    &uid.to_string(),
                ],
                None,
            );
            text.strip_prefix("text:\n")
                .unwrap_or(&text)
                .as_bytes()
                .to_vec()
        })
        .collect()
}
