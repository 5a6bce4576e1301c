//! The `wardmail` command line, run as a separate process against the
//! real servers: account add, sync, folders, list, show and send.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn wardmail(profile: &std::path::Path, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wardmail"))
        .arg("--profile")
        .arg(profile)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn success(output: Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn add_account(profile: &std::path::Path, user: &str, password: &str) -> Output {
    let host = support::host();
    let imap_port = support::env("IMAP_TLS_PORT");
    let smtp_port = support::env("SMTP_STARTTLS_PORT");
    let ca = support::env("CA");
    let address = format!("{user}@example.org");
    wardmail(
        profile,
        &[
            "account",
            "add",
            "--address",
            &address,
            "--name",
            "CLI Test",
            "--imap-host",
            &host,
            "--imap-port",
            &imap_port,
            "--imap-security",
            "tls",
            "--smtp-host",
            &host,
            "--smtp-port",
            &smtp_port,
            "--smtp-security",
            "starttls",
            "--ca-file",
            &ca,
        ],
        &format!("{password}\n"),
    )
}

#[test]
fn account_add_rejects_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let output = add_account(dir.path(), "cli-wrong", "wrong-password");
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("IMAP login as \"cli-wrong@example.org\" failed"),
        "{stdout}"
    );
    assert!(
        !dir.path().join("accounts.toml").exists()
            || !std::fs::read_to_string(dir.path().join("accounts.toml"))
                .unwrap()
                .contains("cli-wrong")
    );
}

#[test]
fn list_json_agrees_with_server_counts() {
    let user = &support::user("cli-list");
    for n in 1..=5 {
        support::save(
            user,
            "INBOX",
            &support::message(
                "lab@example.org",
                "x@example.org",
                &format!("result {n}"),
                &format!("cli{n}@example.org"),
            ),
        );
    }
    support::save(
        user,
        "Archive",
        &support::message(
            "lab@example.org",
            "x@example.org",
            "old",
            "cli-old@example.org",
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let stdout = success(add_account(dir.path(), user, &support::env("PASSWORD")));
    assert!(
        stdout.contains("IMAP: ok") && stdout.contains("SMTP: ok"),
        "{stdout}"
    );
    success(wardmail(dir.path(), &["sync"], ""));

    let folders: serde_json::Value =
        serde_json::from_str(&success(wardmail(dir.path(), &["folders", "--json"], ""))).unwrap();
    let folders = folders.as_array().unwrap();
    assert!(folders.len() >= 6, "{folders:?}");
    for folder in folders {
        let name = folder["raw_name"].as_str().unwrap();
        let listed: serde_json::Value = serde_json::from_str(&success(wardmail(
            dir.path(),
            &["list", name, "--json"],
            "",
        )))
        .unwrap();
        let server = support::uids(user, name).len();
        assert_eq!(listed.as_array().unwrap().len(), server, "folder {name}");
        assert_eq!(
            folder["messages"].as_u64().unwrap() as usize,
            server,
            "folder {name}"
        );
    }

    let listed: serde_json::Value = serde_json::from_str(&success(wardmail(
        dir.path(),
        &["list", "inbox", "--json", "--limit", "1"],
        "",
    )))
    .unwrap();
    let uid = listed[0]["uid"].as_u64().unwrap().to_string();
    let shown = success(wardmail(dir.path(), &["show", "INBOX", &uid], ""));
    assert!(shown.contains("Lab results are ready."), "{shown}");
    assert!(shown.contains("From: lab@example.org"), "{shown}");
}

#[test]
fn send_file_reaches_recipient() {
    let user = &support::user("cli-send");
    let peer = &support::user("cli-peer");
    let hidden = &support::user("cli-hidden");
    let dir = tempfile::tempdir().unwrap();
    success(add_account(dir.path(), user, &support::env("PASSWORD")));
    success(wardmail(dir.path(), &["sync"], ""));
    let file = dir.path().join("out.eml");
    std::fs::write(
        &file,
        format!(
            "From: {user}@example.org\r\nTo: {peer}@example.org\r\nBcc: {hidden}@example.org\r\n\
             Subject: From the command line\r\n\r\nHello.\r\n"
        ),
    )
    .unwrap();
    let stdout = success(wardmail(dir.path(), &["send", file.to_str().unwrap()], ""));
    assert!(stdout.contains("sent"), "{stdout}");
    for _ in 0..50 {
        if support::uids(hidden, "INBOX").len() == 1 && support::uids(peer, "INBOX").len() == 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(support::uids(peer, "INBOX").len(), 1);
    assert_eq!(support::uids(hidden, "INBOX").len(), 1);
    for (mailbox_user, mailbox) in [(peer, "INBOX"), (hidden, "INBOX"), (user, "Sent")] {
        let headers = support::headers(mailbox_user, mailbox);
        assert!(
            !headers.contains(hidden.as_str()),
            "{mailbox_user} {mailbox} shows the Bcc recipient:\n{headers}"
        );
    }
    assert_eq!(support::uids(user, "Sent").len(), 1);
}

fn smime_vector(name: &str) -> String {
    let base = std::env::var_os("WARDMAIL_VECTORS").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors"),
        std::path::PathBuf::from,
    );
    let path = base.join("thunderbird-smime/nss-generated").join(name);
    assert!(path.is_file(), "missing vector {}", path.display());
    path.to_str().unwrap().to_owned()
}

#[test]
fn inspect_json_after_key_import() {
    let user = &support::user("cli-inspect");
    let dir = tempfile::tempdir().unwrap();
    success(add_account(dir.path(), user, &support::env("PASSWORD")));
    let message = smime_vector("alice.dsig.SHA256.multipart.env.eml");

    let before: serde_json::Value = serde_json::from_str(&success(wardmail(
        dir.path(),
        &["inspect", &message, "--json"],
        "",
    )))
    .unwrap();
    assert_eq!(before["encrypted"], "smime");
    assert_eq!(before["decrypted"], false);
    assert_eq!(before["refused"], "no-key");

    let wrong = wardmail(
        dir.path(),
        &["keys", "import-p12", &smime_vector("Bob.p12")],
        "x\n",
    );
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(stderr.to_lowercase().contains("wrong password"), "{stderr}");
    success(wardmail(
        dir.path(),
        &["keys", "import-p12", &smime_vector("Bob.p12")],
        "nss\n",
    ));
    success(wardmail(
        dir.path(),
        &["keys", "trust-ca", &smime_vector("TestCA.pem")],
        "",
    ));
    let listed = success(wardmail(dir.path(), &["keys", "list"], ""));
    assert!(
        listed.to_lowercase().contains("bob@example.com"),
        "{listed}"
    );

    let report: serde_json::Value = serde_json::from_str(&success(wardmail(
        dir.path(),
        &["inspect", &message, "--json"],
        "",
    )))
    .unwrap();
    assert_eq!(report["encrypted"], "smime");
    assert_eq!(report["decrypted"], true);
    assert_eq!(report["refused"], serde_json::Value::Null);
    assert_eq!(report["signatures"][0]["method"], "smime");
    assert_eq!(report["signatures"][0]["status"], "good");
    assert_eq!(report["signatures"][0]["signer_matches_from"], true);
    assert!(
        report["parts"]
            .as_array()
            .is_some_and(|parts| !parts.is_empty()),
        "{report}"
    );
    assert!(report["warnings"].is_array(), "{report}");

    let words = success(wardmail(dir.path(), &["inspect", &message], ""));
    assert!(
        words.starts_with("Encrypted with S/MIME and signed by"),
        "{words}"
    );
    assert!(words.contains("(valid)"), "{words}");
}

#[test]
fn inspect_openpgp_after_key_import() {
    let user = &support::user("cli-pgp");
    let dir = tempfile::tempdir().unwrap();
    success(add_account(dir.path(), user, &support::env("PASSWORD")));
    let base = std::env::var_os("WARDMAIL_VECTORS").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors"),
        std::path::PathBuf::from,
    );
    let file = |name: &str| {
        let path = base.join("protected-headers-draft").join(name);
        assert!(path.is_file(), "missing vector {}", path.display());
        path.to_str().unwrap().to_owned()
    };
    let message = file("pgpmime-sign+enc.eml");

    let before: serde_json::Value = serde_json::from_str(&success(wardmail(
        dir.path(),
        &["inspect", &message, "--json"],
        "",
    )))
    .unwrap();
    assert_eq!(before["encrypted"], "openpgp");
    assert_eq!(before["decrypted"], false);

    let imported = success(wardmail(
        dir.path(),
        &["keys", "import-pgp", &file("bob@openpgp.example.sec.asc")],
        "",
    ));
    assert!(imported.contains("imported OpenPGP key"), "{imported}");
    success(wardmail(
        dir.path(),
        &["keys", "import-pgp", &file("alice@openpgp.example.pub.asc")],
        "",
    ));
    let listed = success(wardmail(dir.path(), &["keys", "list"], ""));
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("OpenPGP")).count(),
        2,
        "{listed}"
    );

    let report: serde_json::Value = serde_json::from_str(&success(wardmail(
        dir.path(),
        &["inspect", &message, "--json"],
        "",
    )))
    .unwrap();
    assert_eq!(report["encrypted"], "openpgp");
    assert_eq!(report["decrypted"], true);
    assert_eq!(report["integrity_protected"], true);
    assert_eq!(report["signatures"][0]["method"], "openpgp");
    assert_eq!(report["signatures"][0]["status"], "good");
}

#[test]
fn keys_import_cert_and_harvest() {
    let user = &support::user("cli-certs");
    let dir = tempfile::tempdir().unwrap();
    success(add_account(dir.path(), user, &support::env("PASSWORD")));

    let only_ca = wardmail(
        dir.path(),
        &["keys", "import-cert", &smime_vector("TestCA.pem")],
        "",
    );
    assert!(!only_ca.status.success());
    let stderr = String::from_utf8_lossy(&only_ca.stderr);
    assert!(stderr.contains("trust-ca"), "{stderr}");

    success(wardmail(
        dir.path(),
        &["keys", "trust-ca", &smime_vector("TestCA.pem")],
        "",
    ));
    let message = smime_vector("alice.dsig.SHA256.multipart.eml");
    let words = success(wardmail(dir.path(), &["inspect", &message], ""));
    assert!(words.contains("(valid)"), "{words}");

    let listed = success(wardmail(dir.path(), &["keys", "list"], ""));
    let row = listed
        .lines()
        .find(|line| line.starts_with("S/MIME certificate\talice@example.com\t"))
        .unwrap_or_else(|| panic!("no harvested certificate in {listed}"));
    assert!(row.contains("\tharvested\t"), "{row}");
}

#[test]
fn plan_blocks_phi_without_keys() {
    let user = &support::user("cli-plan");
    let dir = tempfile::tempdir().unwrap();
    success(add_account(dir.path(), user, &support::env("PASSWORD")));
    // A version 1 policy names no routing rules, so the built-in ones
    // apply, and no internal domains, so the account's own domain
    // (example.org) counts as internal.
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "version = 1\n").unwrap();
    let plan = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wardmail"))
            .arg("--profile")
            .arg(dir.path())
            .arg("plan")
            .args(args)
            .env("WARDMAIL_POLICY", &policy)
            .output()
            .unwrap()
    };
    let outside = "patient@far.example";

    let phi = plan(&["--to", outside, "--sensitivity", "phi"]);
    let routine = plan(&["--to", outside, "--sensitivity", "routine", "--json"]);
    let colleague = plan(&["--to", "colleague@example.org"]);

    assert_eq!(phi.status.code(), Some(3));
    let text = String::from_utf8_lossy(&phi.stdout);
    assert!(text.contains("BLOCKED"), "{text}");
    assert!(text.contains("PHI mail needs"), "{text}");
    let routine: serde_json::Value = serde_json::from_slice(&routine.stdout).unwrap();
    assert_eq!(routine["routes"][0]["method"], "tls-unverified");
    let text = success(colleague);
    assert!(text.contains("Internal"), "{text}");
}

/// Makes a profile for `user` that holds Bob's S/MIME identity from the
/// corpus and resolves names through the test DNS, and writes the corpus's
/// S/MIME-encrypted message from alice to Bob, with `cc` added and the
/// Message-ID `<reply-guard@example.com>`. Returns the profile directory
/// and the message file.
fn smime_original(user: &str, cc: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    success(add_account(dir.path(), user, &support::env("PASSWORD")));
    // The test DNS publishes MTA-STS enforce for enforce.test, so its
    // recipient's copy can go by TLS.
    let profile = wardmail::account::Profile::locate(Some(dir.path())).unwrap();
    let mut config = profile.load().unwrap();
    config.network.dns_nameserver = Some(support::env("DNS_RESOLVER"));
    config.network.dns_trust_anchor = Some(support::env("DNS_TRUST_ANCHOR").into());
    config.network.https_ca_file = Some(support::ca_file());
    profile.save(&config).unwrap();
    success(wardmail(
        dir.path(),
        &["keys", "import-p12", &smime_vector("Bob.p12")],
        "nss\n",
    ));
    success(wardmail(
        dir.path(),
        &["keys", "trust-ca", &smime_vector("TestCA.pem")],
        "",
    ));
    // The outer header is not covered by the S/MIME layer, so a Cc added
    // there leaves the encrypted body intact.
    let original =
        std::fs::read_to_string(smime_vector("alice.dsig.SHA256.multipart.env.eml")).unwrap();
    let newline = if original.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let with_cc = original.replacen(
        "To: Bob@example.com",
        &format!(
            "To: Bob@example.com{newline}\
             Cc: {cc}{newline}\
             Message-ID: <reply-guard@example.com>"
        ),
        1,
    );
    assert_ne!(with_cc, original, "the vector's To line changed");
    let message = dir.path().join("original.eml");
    std::fs::write(&message, with_cc).unwrap();
    (dir, message)
}

#[test]
fn plan_reply_all_below_floor() {
    let user = &support::user("cli-reply");
    let (dir, message) = smime_original(user, "nocert@enforce.test, stranger@far.example");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "version = 1\n").unwrap();
    let plan = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wardmail"))
            .arg("--profile")
            .arg(dir.path())
            .args(["plan", "--reply-to", message.to_str().unwrap(), "--all"])
            .args(args)
            .env("WARDMAIL_POLICY", &policy)
            .output()
            .unwrap()
    };

    let text = plan(&[]);
    let json = plan(&["--json", "--sensitivity", "routine"]);

    let stdout = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.starts_with("Reply floor: PHI, encrypted"),
        "{stdout}"
    );
    let warning = stdout
        .lines()
        .find(|line| line.starts_with("warning: nocert@enforce.test:"))
        .unwrap_or_else(|| panic!("no warning for the Cc: {stdout}"));
    assert!(warning.contains("was S/MIME encrypted"), "{warning}");
    assert!(warning.contains("has no certificate"), "{warning}");
    assert!(warning.contains("would go by TLS only"), "{warning}");
    let blocked = stdout
        .lines()
        .find(|line| line.starts_with("warning: stranger@far.example:"))
        .unwrap_or_else(|| panic!("no warning for the blocked Cc: {stdout}"));
    assert!(blocked.contains("blocked"), "{blocked}");
    assert!(
        !stdout.contains("warning: alice@example.com"),
        "the sender's certificate was harvested: {stdout}"
    );

    assert_eq!(json.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["arrival"]["encrypted"], "smime");
    assert_eq!(json["arrival"]["signed"], "good");
    assert_eq!(json["arrival"]["portal_notice"], false);
    assert_eq!(json["floor"]["sensitivity"], "phi");
    assert_eq!(json["floor"]["encrypt"], true);
    assert_eq!(json["plan"]["sensitivity"], "phi", "raised from routine");
    let routes = json["plan"]["routes"].as_array().unwrap();
    let alice = routes
        .iter()
        .find(|route| route["address"] == "alice@example.com")
        .unwrap();
    assert_eq!(alice["method"], "smime");
    let warned: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|warning| warning["address"].as_str().unwrap())
        .collect();
    assert!(warned.contains(&"nocert@enforce.test"), "{warned:?}");
    assert!(warned.contains(&"stranger@far.example"), "{warned:?}");
}

#[test]
fn audit_export_and_verify_after_send() {
    let user = &support::user("cli-audit");
    let dir = tempfile::tempdir().unwrap();
    success(add_account(dir.path(), user, &support::env("PASSWORD")));
    success(wardmail(dir.path(), &["sync"], ""));
    for n in 1..=2 {
        let file = dir.path().join(format!("audit{n}.eml"));
        std::fs::write(
            &file,
            format!(
                "From: {user}@example.org\r\nTo: {user}@example.org\r\n\
                 Message-ID: <audit{n}-{user}@example.org>\r\nSubject: Audit {n}\r\n\r\nHi.\r\n"
            ),
        )
        .unwrap();
        success(wardmail(dir.path(), &["send", file.to_str().unwrap()], ""));
    }

    let listed = success(wardmail(dir.path(), &["audit", "list", "--json"], ""));
    let entries: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{listed}");
    assert_eq!(entries[0]["outcome"], "accepted");
    assert_eq!(
        entries[1]["message_id"],
        format!("<audit2-{user}@example.org>")
    );
    assert_eq!(entries[1]["recipients"][0]["method"], "tls");
    assert!(!listed.contains("Audit 1"), "the subject leaked: {listed}");

    let csv = dir.path().join("audit.csv");
    success(wardmail(
        dir.path(),
        &["audit", "export", "--csv", "-o", csv.to_str().unwrap()],
        "",
    ));
    let csv = std::fs::read_to_string(csv).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.starts_with("seq,time,time_utc,account,kind,"), "{csv}");
    assert!(!csv.contains("Audit 2"), "the subject leaked: {csv}");
    let json = success(wardmail(dir.path(), &["audit", "export", "--json"], ""));
    assert_eq!(json, listed);

    let intact = success(wardmail(dir.path(), &["audit", "verify"], ""));
    assert!(intact.contains("intact: 2 entries"), "{intact}");
    let head = intact
        .trim_end()
        .trim_end_matches('.')
        .rsplit(' ')
        .next()
        .unwrap();
    let anchor = format!("2:{head}");
    success(wardmail(
        dir.path(),
        &["audit", "verify", "--anchor", &anchor],
        "",
    ));

    let profile = wardmail::account::Profile::locate(Some(dir.path())).unwrap();
    let store = wardmail::store::Store::open_profile(&profile, &profile.load().unwrap()).unwrap();
    wardmail::audit::tamper_for_tests(&store, "DELETE FROM audit_log WHERE seq = 2").unwrap();
    drop(store);
    let output = wardmail(dir.path(), &["audit", "verify"], "");
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("entry 2 was deleted"), "{stdout}");
}

#[test]
fn send_reply_below_floor_held_until_override() {
    let user = &support::user("cli-held");
    let colleague = support::user("cli-held-cc");
    let (dir, original) = smime_original(user, &format!("{colleague}@example.org"));
    let policy = dir.path().join("policy.toml");
    let run = |args: &[&str], policy_text: &str| {
        std::fs::write(&policy, policy_text).unwrap();
        Command::new(env!("CARGO_BIN_EXE_wardmail"))
            .arg("--profile")
            .arg(dir.path())
            .args(args)
            .env("WARDMAIL_POLICY", &policy)
            .output()
            .unwrap()
    };
    const OPEN: &str = "version = 1\n";
    const STRICT: &str = "version = 2\n[reply]\nallow_override = false\n";

    // Planning the reply inspects the original, which records how it
    // arrived; the colleague has no certificate.
    let planned = run(
        &["plan", "--reply-to", original.to_str().unwrap(), "--all"],
        OPEN,
    );
    assert_eq!(planned.status.code(), Some(3));

    let message_id = format!("held-{user}@example.org");
    let reply = dir.path().join("reply.eml");
    std::fs::write(
        &reply,
        format!(
            "From: {user}@example.org\r\nTo: {colleague}@example.org\r\n\
             Message-ID: <{message_id}>\r\nIn-Reply-To: <reply-guard@example.com>\r\n\
             Subject: Re: results\r\n\r\n> the decrypted text\r\n"
        ),
    )
    .unwrap();
    let send = |extra: &[&str], policy_text: &str| {
        let mut args = vec!["send", reply.to_str().unwrap()];
        args.extend_from_slice(extra);
        run(&args, policy_text)
    };

    let held = send(&[], OPEN);
    let stderr = String::from_utf8_lossy(&held.stderr);
    assert!(!held.status.success());
    assert!(stderr.contains("held by the reply guard"), "{stderr}");
    assert!(stderr.contains("was S/MIME encrypted"), "{stderr}");
    assert!(
        stderr.contains(&format!("{colleague}@example.org")),
        "{stderr}"
    );

    let short = send(&["--override-reason", "ok"], OPEN);
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("too short"));

    let forbidden = send(&["--override-reason", "Patient asked by phone"], STRICT);
    let stderr = String::from_utf8_lossy(&forbidden.stderr);
    assert!(!forbidden.status.success());
    assert!(stderr.contains("policy does not allow"), "{stderr}");
    assert_eq!(
        support::count_message_id(&colleague, "INBOX", &message_id),
        0,
        "a held reply reached the colleague"
    );

    let sent = send(&["--override-reason", "Patient asked by phone"], OPEN);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let mut delivered = 0;
    for _ in 0..50 {
        delivered = support::count_message_id(&colleague, "INBOX", &message_id);
        if delivered > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(delivered, 1);

    let listed = success(run(&["audit", "list", "--json"], OPEN));
    let entries: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let entries = entries.as_array().unwrap();
    let outcomes: Vec<&str> = entries
        .iter()
        .map(|entry| entry["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["failed", "failed", "accepted"], "{listed}");
    let last = &entries[2];
    assert_eq!(last["override_reason"], "Patient asked by phone");
    let choice = last["details"]["reply-guard"].as_str().unwrap();
    assert!(choice.contains("sent anyway"), "{choice}");
    let decision = last["decision"].as_str().unwrap();
    assert!(decision.contains("S/MIME encrypted"), "{decision}");
    assert!(
        entries[0]["details"]["error"]
            .as_str()
            .unwrap()
            .contains("held by the reply guard"),
        "{listed}"
    );
}
