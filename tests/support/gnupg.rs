//! A temporary GnuPG home for interop tests: gpg as the peer that
//! creates keys, encrypts, signs, decrypts and verifies.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

/// A temporary GnuPG home whose agent is stopped on drop.
pub struct Gnupg {
    home: tempfile::TempDir,
}

impl Gnupg {
    pub fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let private = std::fs::Permissions::from_mode(0o700);
        std::fs::set_permissions(home.path(), private).unwrap();
        Self { home }
    }

    /// Runs gpg with `args`, feeding `input` on stdin, and returns stdout.
    pub fn run(&self, args: &[&str], input: &[u8]) -> Vec<u8> {
        let mut child = Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args(["--batch", "--yes", "--no-tty", "--trust-model", "always"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "gpg {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// Creates a key for `user` (RSA with GnuPG 2.2 defaults) protected by
    /// `passphrase`, and returns its armored secret key.
    pub fn create_key(&self, user: &str, passphrase: &str) -> Vec<u8> {
        let loopback = ["--pinentry-mode", "loopback", "--passphrase", passphrase];
        let uid = format!("Test User <{user}>");
        self.run(
            &[
                &loopback[..],
                &["--quick-gen-key", &uid, "default", "default", "never"],
            ]
            .concat(),
            b"",
        );
        self.run(
            &[&loopback[..], &["--armor", "--export-secret-keys", user]].concat(),
            b"",
        )
    }
}

impl Drop for Gnupg {
    fn drop(&mut self) {
        // Stops only the agent that belongs to this temporary home.
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

impl Gnupg {
    /// Runs gpg like [`Gnupg::run`], but returns the exit status, stdout
    /// and the `--status-fd` lines instead of failing on an error.
    pub fn try_run(&self, args: &[&str], input: &[u8]) -> (bool, Vec<u8>, String) {
        let mut child = Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args(["--batch", "--yes", "--no-tty", "--trust-model", "always"])
            .args(["--status-fd", "2"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let output = child.wait_with_output().unwrap();
        (
            output.status.success(),
            output.stdout,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Returns the path of the GnuPG home.
    pub fn home(&self) -> &std::path::Path {
        self.home.path()
    }
}
