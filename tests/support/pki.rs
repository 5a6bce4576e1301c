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

/// A throwaway CA and S/MIME certificates issued by it, one per name.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// Makes the CA, named `subject`, in a new temporary directory.
    pub fn new(subject: &str) -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        make_root(pki.path(), subject);
        pki
    }

    /// Returns the directory holding the files.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Reads one of its files.
    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path().join(name)).unwrap()
    }

    /// Issues `name.key`, `name.pem` and `name.p12` (password "secret")
    /// for `address`.
    pub fn issue(&self, name: &str, address: &str) {
        std::fs::write(
            self.path().join(format!("{name}.cnf")),
            user_extensions(address),
        )
        .unwrap();
        let (key, pem, p12) = (
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("{name}.p12"),
        );
        issue(
            self.path(),
            name,
            "ca",
            &format!("{name}.cnf"),
            &format!("/CN={name}"),
        );
        openssl(
            self.path(),
            &[
                "pkcs12",
                "-export",
                "-inkey",
                &key,
                "-in",
                &pem,
                "-out",
                &p12,
                "-passout",
                "pass:secret",
            ],
        );
    }

    /// Decrypts `message` with `name`'s key; returns the plaintext, or
    /// `None` when openssl cannot.
    pub fn decrypt(&self, name: &str, message: &[u8]) -> Option<String> {
        std::fs::write(self.path().join("in.eml"), message).unwrap();
        let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
        let output = run_openssl(
            self.path(),
            &[
                "cms", "-decrypt", "-in", "in.eml", "-recip", &pem, "-inkey", &key, "-out",
                "out.eml",
            ],
        );
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&self.read("out.eml")).into_owned())
    }
}
