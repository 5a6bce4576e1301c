//! OpenSSL as a test CA: runs the `openssl` tool in a directory to make a
//! root CA and certificates it or an intermediate issues.

use std::path::Path;
use std::process::{Command, Output};

/// The extensions of a CA certificate, for `issue`.
pub const CA_EXTENSIONS: &str =
    "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n";

/// Returns the extensions of an e-mail certificate for `address`.
pub fn user_extensions(address: &str) -> String {
    format!(
        "subjectAltName=email:{address}\nextendedKeyUsage=emailProtection\n\
         keyUsage=digitalSignature,keyEncipherment\n"
    )
}

/// Runs `openssl` in `dir` and returns its output, whatever its status.
pub fn run_openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Runs `openssl` in `dir`, fails the test with its stderr on error, and
/// returns its stdout.
pub fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let output = run_openssl(dir, args);
    assert!(
        output.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Makes a self-signed root CA as `ca.key` and `ca.pem` in `dir`, valid
/// for 30 days.
pub fn make_root(dir: &Path, subject: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// Makes `name.key` and `name.pem` in `dir`, signed by `issuer` (its
/// `.pem` and `.key` in `dir`), with the extensions in the file
/// `extensions`.
pub fn issue(dir: &Path, name: &str, issuer: &str, extensions: &str, subject: &str) {
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    let (issuer_pem, issuer_key) = (format!("{issuer}.pem"), format!("{issuer}.key"));
    openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &issuer_pem,
            "-CAkey",
            &issuer_key,
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "30",
            "-extfile",
            extensions,
        ],
    );
}
