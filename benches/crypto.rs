//! Times the decryption and signature check of signed-then-encrypted
//! messages: Wardmail's `openpgp::inspect` and `smime::inspect` in this
//! process, and per message the `gpg` and `openssl cms` command-line tools
//! on the same files. The corpus comes from `bench/make-crypto-corpus`.
//!
//! ```sh
//! cargo bench --bench crypto -- DIR [in-process|cli|all]
//! ```
//!
//! A message that does not decrypt, or whose signature is not good, stops
//! the run with an error: a benchmark over failures would time the wrong
//! work. Message 1 of each corpus is read once untimed before each side,
//! which loads the OpenSSL providers in this process and starts the
//! gpg-agent for the command-line side.
//!
//! This is a `[[bench]]` with `harness = false` rather than an example:
//! plain `cargo test` builds every example but skips bench targets, and the
//! benchmark must stay out of the test suite. `cargo test --all-targets`
//! (scripts/test) does start this binary, but without the "--bench"
//! argument of `cargo bench`, so it returns at once.

// A benchmark reports on standard output.
#![allow(clippy::print_stdout)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wardmail::openpgp::{self, Keyring};
use wardmail::protection::{Encryption, ProtectionReport, SignatureStatus};
use wardmail::smime::{self, Identity, TrustStore};

/// The keys of the benchmark recipient, loaded once for the whole run with
/// the calls Wardmail uses when a user imports them.
struct Keys {
    keyring: Keyring,
    identities: Vec<Identity>,
    trust: TrustStore,
}

/// The per-message wall-clock times of one side of the benchmark.
struct Timings {
    label: &'static str,
    samples: Vec<Duration>,
}

fn main() {
    if let Err(error) = run() {
        eprintln!("crypto bench: error: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    // `cargo bench` appends "--bench" to the arguments of every bench
    // target. `cargo test --all-targets`, which scripts/test runs, starts
    // this binary without it, and the benchmark must not run there.
    let mut arguments: Vec<String> = std::env::args().skip(1).collect();
    let Some(flag) = arguments.iter().position(|argument| argument == "--bench") else {
        eprintln!("crypto bench: not run outside `cargo bench`; see bench/crypto-benchmark");
        return Ok(());
    };
    arguments.remove(flag);
    let (dir, mode) = match arguments.as_slice() {
        [dir] => (PathBuf::from(dir), "all"),
        [dir, mode] => (PathBuf::from(dir), mode.as_str()),
        _ => return Err("usage: cargo bench --bench crypto -- DIR [in-process|cli|all]".into()),
    };
    if !matches!(mode, "in-process" | "cli" | "all") {
        return Err(format!("unknown mode '{mode}'; use in-process, cli or all"));
    }

    let openpgp_files = message_files(&dir.join("openpgp/messages"))?;
    let smime_files = message_files(&dir.join("smime/messages"))?;
    let mut results = Vec::new();
    if mode != "cli" {
        results.extend(time_in_process(&dir, &openpgp_files, &smime_files)?);
    }
    if mode != "in-process" {
        results.push(time_gpg(&dir, &openpgp_files)?);
        results.push(time_openssl(&dir, &smime_files)?);
    }

    print_table(&results);
    Ok(())
}

/// Returns the `.eml` files in `dir`, sorted by name.
fn message_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|error| {
        format!(
            "cannot read {}: {error}; make the corpus with bench/make-crypto-corpus",
            dir.display()
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|extension| extension == "eml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no .eml files in {}", dir.display()));
    }
    Ok(files)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
}

/// Loads the recipient's keys as Wardmail does: the OpenPGP secret key and
/// the sender's certificate into a [`Keyring`], the .p12 into an
/// [`Identity`], and the test CA on top of the system roots, as
/// `Session::inspect` builds its [`TrustStore`].
fn load_keys(dir: &Path) -> Result<Keys, String> {
    let mut keyring = Keyring::new();
    for name in ["openpgp/recipient-secret.asc", "openpgp/sender-public.asc"] {
        keyring
            .import(&read(&dir.join(name))?)
            .map_err(|error| format!("{name}: {error}"))?;
    }

    let p12 = read(&dir.join("smime/recipient.p12"))?;
    let password = String::from_utf8_lossy(&read(&dir.join("smime/p12-password"))?)
        .trim()
        .to_string();
    let identity = Identity::from_pkcs12(&p12, &password)
        .map_err(|error| format!("recipient.p12: {error}"))?;

    let mut trust = TrustStore::with_system_roots();
    trust
        .add_certificates(&read(&dir.join("smime/ca.pem"))?)
        .map_err(|error| format!("ca.pem: {error}"))?;
    Ok(Keys {
        keyring,
        identities: vec![identity],
        trust,
    })
}

/// Times `inspect` on every message, with the files already in memory and
/// the keys loaded once.
fn time_in_process(
    dir: &Path,
    openpgp_files: &[PathBuf],
    smime_files: &[PathBuf],
) -> Result<Vec<Timings>, String> {
    let started = Instant::now();
    let keys = load_keys(dir)?;
    println!(
        "loading the keys once took {:.3} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );

    let openpgp = time_inspect(
        "Wardmail openpgp::inspect",
        openpgp_files,
        Encryption::Openpgp,
        |raw| openpgp::inspect(raw, &keys.keyring),
    )?;
    let smime = time_inspect(
        "Wardmail smime::inspect",
        smime_files,
        Encryption::Smime,
        |raw| smime::inspect(raw, &keys.identities, &keys.trust),
    )?;
    let mut results = vec![openpgp, smime];
    results.extend(time_with_keys_per_message(
        dir,
        &keys,
        openpgp_files,
        smime_files,
    )?);
    Ok(results)
}

/// Times `inspect` with the keys loaded again for every message, as
/// `Session::inspect` does from the encrypted store: the OpenPGP keys
/// imported, the S/MIME identity rebuilt from DER, and the trust store
/// built from the system roots and the CA. Reading the store is not timed.
fn time_with_keys_per_message(
    dir: &Path,
    keys: &Keys,
    openpgp_files: &[PathBuf],
    smime_files: &[PathBuf],
) -> Result<Vec<Timings>, String> {
    let openpgp_data = [
        read(&dir.join("openpgp/recipient-secret.asc"))?,
        read(&dir.join("openpgp/sender-public.asc"))?,
    ];
    let openpgp = time_inspect(
        "Wardmail openpgp, keys per message",
        openpgp_files,
        Encryption::Openpgp,
        |raw| {
            let mut keyring = Keyring::new();
            for data in &openpgp_data {
                // A failed import leaves the keyring without the key, so the
                // report check fails the run.
                let _ = keyring.import(data);
            }
            openpgp::inspect(raw, &keyring)
        },
    )?;

    let identity = keys.identities.first().ok_or("no S/MIME identity loaded")?;
    let (key_der, certificate_der) = identity
        .to_der()
        .map_err(|error| format!("recipient identity: {error}"))?;
    let ca = read(&dir.join("smime/ca.pem"))?;
    let smime = time_inspect(
        "Wardmail smime, keys per message",
        smime_files,
        Encryption::Smime,
        |raw| {
            let identities: Vec<Identity> = Identity::from_der(&key_der, &certificate_der)
                .into_iter()
                .collect();
            let mut trust = TrustStore::with_system_roots();
            // As above, a CA that fails to load fails the report check.
            let _ = trust.add_certificates(&ca);
            smime::inspect(raw, &identities, &trust)
        },
    )?;
    Ok(vec![openpgp, smime])
}

fn time_inspect(
    label: &'static str,
    files: &[PathBuf],
    encryption: Encryption,
    inspect: impl Fn(&[u8]) -> ProtectionReport,
) -> Result<Timings, String> {
    let messages = files
        .iter()
        .map(|path| read(path))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(first) = messages.first() {
        check_report(&files[0], &inspect(first), encryption)?;
    }

    let mut samples = Vec::with_capacity(messages.len());
    for (path, raw) in files.iter().zip(&messages) {
        let started = Instant::now();
        let report = inspect(raw);
        samples.push(started.elapsed());
        check_report(path, &report, encryption)?;
    }
    Ok(Timings { label, samples })
}

/// Returns an error unless the report marks the message as decrypted with
/// integrity protection and has exactly one good signature by the sender.
fn check_report(
    path: &Path,
    report: &ProtectionReport,
    encryption: Encryption,
) -> Result<(), String> {
    let signature = report.signatures.first();
    let good = report.encrypted == encryption
        && report.decrypted
        && report.integrity_protected
        && report.refused.is_none()
        && report.signatures.len() == 1
        && signature.is_some_and(|signature| {
            signature.status == SignatureStatus::Good && signature.signer_matches_from
        });
    if good {
        return Ok(());
    }
    Err(format!(
        "{}: not decrypted with one good sender signature: encrypted {:?}, decrypted {}, \
         integrity protected {}, refused {:?}, signatures {:?}, warnings {:?}",
        path.display(),
        report.encrypted,
        report.decrypted,
        report.integrity_protected,
        report.refused,
        report
            .signatures
            .iter()
            .map(|signature| (signature.status, signature.signer_matches_from))
            .collect::<Vec<_>>(),
        report.warnings,
    ))
}

/// Times one `gpg --decrypt` process per message in the recipient's
/// GNUPGHOME, which checks the signature inside. The status lines on
/// standard error must contain DECRYPTION_OKAY and GOODSIG.
fn time_gpg(dir: &Path, files: &[PathBuf]) -> Result<Timings, String> {
    let home = dir.join("openpgp/gnupg-recipient");
    let decrypt = |path: &Path| -> Result<(), String> {
        let output = Command::new("gpg")
            .env("GNUPGHOME", &home)
            .args(["--batch", "--no-tty", "--status-fd", "2", "--decrypt"])
            .arg(path)
            .stdin(Stdio::null())
            .output()
            .map_err(|error| format!("cannot run gpg: {error}"))?;
        let status = String::from_utf8_lossy(&output.stderr);
        let has = |keyword: &str| {
            status.lines().any(|line| {
                let mut words = line.split_whitespace();
                words.next() == Some("[GNUPG:]") && words.next() == Some(keyword)
            })
        };
        if output.status.success() && has("DECRYPTION_OKAY") && has("GOODSIG") {
            return Ok(());
        }
        Err(format!(
            "{}: gpg did not report DECRYPTION_OKAY and GOODSIG ({}):\n{status}",
            path.display(),
            output.status
        ))
    };
    time_commands("gpg --decrypt", files, decrypt)
}

/// Times one `openssl cms -decrypt | openssl cms -verify` chain per message,
/// as a gateway script would run it. Both must exit with 0, and the second
/// must print "Verification successful".
fn time_openssl(dir: &Path, files: &[PathBuf]) -> Result<Timings, String> {
    let pki = dir.join("smime");
    let decrypt_and_verify = |path: &Path| -> Result<(), String> {
        let mut decrypt = Command::new("openssl")
            .args(["cms", "-decrypt", "-inkey"])
            .arg(pki.join("recipient.key"))
            .arg("-recip")
            .arg(pki.join("recipient.pem"))
            .arg("-in")
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| format!("cannot run openssl: {error}"))?;
        let decrypted = decrypt
            .stdout
            .take()
            .ok_or("openssl cms -decrypt has no standard output")?;
        let verify = Command::new("openssl")
            .args(["cms", "-verify", "-purpose", "smimesign", "-CAfile"])
            .arg(pki.join("ca.pem"))
            .stdin(decrypted)
            .output()
            .map_err(|error| format!("cannot run openssl: {error}"))?;

        let mut decrypt_errors = String::new();
        if let Some(mut stderr) = decrypt.stderr.take() {
            let _ = stderr.read_to_string(&mut decrypt_errors);
        }
        let decrypt_status = decrypt
            .wait()
            .map_err(|error| format!("cannot wait for openssl: {error}"))?;
        let verify_errors = String::from_utf8_lossy(&verify.stderr);
        if decrypt_status.success()
            && verify.status.success()
            && verify_errors.contains("Verification successful")
        {
            return Ok(());
        }
        Err(format!(
            "{}: openssl cms failed: decrypt {decrypt_status}: {decrypt_errors}; \
             verify {}: {verify_errors}",
            path.display(),
            verify.status
        ))
    };
    time_commands("openssl cms -decrypt | -verify", files, decrypt_and_verify)
}

fn time_commands(
    label: &'static str,
    files: &[PathBuf],
    run: impl Fn(&Path) -> Result<(), String>,
) -> Result<Timings, String> {
    if let Some(first) = files.first() {
        run(first)?;
    }
    let mut samples = Vec::with_capacity(files.len());
    for path in files {
        let started = Instant::now();
        run(path)?;
        samples.push(started.elapsed());
    }
    Ok(Timings { label, samples })
}

/// Summary statistics of one side, in milliseconds.
struct Summary {
    total_seconds: f64,
    mean: f64,
    median: f64,
    p95: f64,
}

impl Timings {
    fn summary(&self) -> Summary {
        let mut milliseconds: Vec<f64> = self
            .samples
            .iter()
            .map(|sample| sample.as_secs_f64() * 1000.0)
            .collect();
        milliseconds.sort_by(f64::total_cmp);
        let total: f64 = milliseconds.iter().sum();
        let count = milliseconds.len().max(1);
        Summary {
            total_seconds: total / 1000.0,
            mean: total / count as f64,
            median: percentile(&milliseconds, 50.0),
            p95: percentile(&milliseconds, 95.0),
        }
    }
}

/// Returns the nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], percent: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (percent / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn print_table(results: &[Timings]) {
    println!(
        "| {:<36} | {:>8} | {:>9} | {:>9} | {:>11} | {:>8} |",
        "what", "messages", "total s", "mean ms", "median ms", "p95 ms"
    );
    for timings in results {
        let summary = timings.summary();
        println!(
            "| {:<36} | {:>8} | {:>9.3} | {:>9.3} | {:>11.3} | {:>8.3} |",
            timings.label,
            timings.samples.len(),
            summary.total_seconds,
            summary.mean,
            summary.median,
            summary.p95
        );
    }

    let median_of = |label: &str| {
        results
            .iter()
            .find(|timings| timings.label == label)
            .map(|timings| timings.summary().median)
    };
    let pairs = [
        ("OpenPGP", "gpg --decrypt", "Wardmail openpgp::inspect"),
        (
            "S/MIME",
            "openssl cms -decrypt | -verify",
            "Wardmail smime::inspect",
        ),
    ];
    for (name, cli, in_process) in pairs {
        if let (Some(cli), Some(in_process)) = (median_of(cli), median_of(in_process)) {
            println!(
                "{name}: command line / in-process, per-message median: {:.1}",
                cli / in_process
            );
        }
    }
}
