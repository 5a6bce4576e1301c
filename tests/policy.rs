//! `wardmail policy` as a separate process: the `WARDMAIL_POLICY` override,
//! a minimal policy file, a broken one, and a file that does not exist.
//! Needs no servers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn wardmail_policy(policy: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wardmail"))
        .arg("policy")
        .env("WARDMAIL_POLICY", policy)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn policy_env_minimal_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, "version = 1\n").unwrap();

    let output = wardmail_policy(&path);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        stdout.contains(&format!("clinic policy: {}", path.display())),
        "{stdout}"
    );
    assert!(stdout.contains("(WARDMAIL_POLICY)"), "{stdout}");
    assert!(stdout.contains("internal domains: none"), "{stdout}");
}

#[test]
fn policy_env_broken_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, "version = 1\nintrnal_domains = []\n").unwrap();

    let output = wardmail_policy(&path);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(stderr.contains("intrnal_domains"), "{stderr}");
}

#[test]
fn policy_env_missing_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");

    let output = wardmail_policy(&path);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("WARDMAIL_POLICY"), "{stderr}");
}
