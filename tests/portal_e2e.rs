//! The secure portal end to end: the real `wardmail-portal` binary over
//! TLS on loopback, a desktop session on the test Dovecot and Postfix, and
//! the patient's side in headless Chromium, driven by
//! portal/tests/browser/e2e.mjs through Playwright.
//!
//! The desktop seals a PHI message for a patient without keys, and the
//! notice reaches the patient's Inbox without any of the message's content.
//! The browser opens the message with the code after two wrong ones and
//! sends a reply, which comes back into the sender's Inbox. Further
//! messages cover the lock after five wrong codes, a re-issued code, a
//! tampered envelope and a revoked link. Neither the portal's database nor
//! its log nor any request of the browser carries the content, the code or
//! the link secret. A second test puts nginx in front of the portal, which
//! then serves under a path prefix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mail_parser::{MessageParser, MimeHeaders as _};
use serde_json::{Value, json};
use wardmail::account::{PortalSettings, Profile};
use wardmail::audit::{AuditDraft, PlannedRecipient};
use wardmail::compose::{AttachmentFile, Draft, new_message_id};
use wardmail::message::Address;
use wardmail::route::{self, Routing, Sealing, Sensitivity};
use wardmail::secret::Secret;
use wardmail::session::{GroupOutcome, PortalFactor, Session};

const CONTACT: &str = "Riverside Clinic, 0123 456 789";
const SUBJECT: &str = "Your biopsy result";
const BODY: &str = "The biopsy shows a benign fibroadenoma; no treatment is needed.";
const REPLY_TEXT: &str = "Thank you, may I still come in on Tuesday to talk it over?";
const SECOND_SUBJECT: &str = "Your thyroid panel";
const SECOND_BODY: &str = "TSH is 3.1 mU/l, within the reference range.";
const THIRD_SUBJECT: &str = "Your vaccination record";
const THIRD_BODY: &str = "Hepatitis B booster given on 2 December, next one not needed.";

/// The `wardmail-portal` binary on a free loopback port, stopped when
/// dropped.
struct PortalServer {
    child: Child,
    directory: tempfile::TempDir,
    url: String,
    port: u16,
    config: PathBuf,
    log: PathBuf,
}

impl PortalServer {
    /// Starts the portal with TLS on its own port.
    fn start() -> PortalServer {
        let port = free_port();
        let test_dir = PathBuf::from(support::env("DIR"));
        let tls = format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            test_dir.join("server.pem").display(),
            test_dir.join("server.key").display(),
        );
        PortalServer::start_with(port, &format!("https://127.0.0.1:{port}"), &tls)
    }

    /// Starts the portal on plain HTTP for a reverse proxy that serves it
    /// at `public_url`.
    fn start_behind(public_url: &str) -> PortalServer {
        PortalServer::start_with(free_port(), public_url, "")
    }

    fn start_with(port: u16, url: &str, tls: &str) -> PortalServer {
        let binary = portal_binary();
        let directory = tempfile::tempdir().unwrap();
        let config = directory.path().join("portal.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\n\
                 public_url = \"{url}\"\n\
                 database = \"portal.sqlite3\"\n\
                 contact = \"{CONTACT}\"\n\
                 log_format = \"json\"\n\
                 {tls}"
            ),
        )
        .unwrap();
        let log = directory.path().join("portal.log");
        let child = Command::new(&binary)
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info,wardmail_portal=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let mut server = PortalServer {
            child,
            directory,
            url: url.to_owned(),
            port,
            config,
            log,
        };
        server.wait_until_listening(port);
        server
    }

    fn wait_until_listening(&mut self, port: u16) {
        let log = self.log.clone();
        wait_for_port(&mut self.child, "wardmail-portal", port, &log);
    }

    /// Runs `enrol-token` against the same database and returns the token.
    fn enrol_token(&self) -> String {
        let output = Command::new(portal_binary())
            .args(["enrol-token", "--label", "E2E front desk", "--config"])
            .arg(&self.config)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "enrol-token failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        stdout.lines().next().unwrap().trim().to_owned()
    }

    fn database(&self) -> PathBuf {
        self.directory.path().join("portal.sqlite3")
    }

    /// Returns the bytes of the database and of its journal files.
    fn database_bytes(&self) -> Vec<(PathBuf, Vec<u8>)> {
        std::fs::read_dir(self.directory.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with("portal.sqlite3"))
            })
            .map(|path| {
                let bytes = std::fs::read(&path).unwrap();
                (path, bytes)
            })
            .collect()
    }
}

impl Drop for PortalServer {
    fn drop(&mut self) {
        // Child::kill signals this child's own pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns the portal binary, built next to this test's executable.
fn portal_binary() -> PathBuf {
    let test_executable = std::env::current_exe().unwrap();
    // target/debug/deps/portal_e2e-HASH -> target/debug/wardmail-portal
    let binary = test_executable
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("wardmail-portal");
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo build -p wardmail-portal` before this test \
         (scripts/test does)",
        binary.display()
    );
    binary
}

/// Waits until `child` accepts connections on `port`, or fails with its log.
fn wait_for_port(child: &mut Child, name: &str, port: u16, log: &Path) {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let log_text = || String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "{name} exited with {status} before listening; its log:\n{}",
                log_text()
            );
        }
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{name} did not listen on {address} within 20 s; its log:\n{}",
        log_text()
    );
}

/// nginx in front of a portal, serving it over TLS under the path
/// `/portal/` and stripping that prefix, as portal/README.md shows.
struct Proxy {
    child: Child,
    _directory: tempfile::TempDir,
    port: u16,
}

impl Proxy {
    fn start(port: u16, backend: u16) -> Proxy {
        let directory = tempfile::tempdir().unwrap();
        let dir = directory.path().display().to_string();
        let test_dir = PathBuf::from(support::env("DIR"));
        let config = directory.path().join("nginx.conf");
        // master_process off keeps nginx in this one process, so killing
        // the child's pid stops it.
        std::fs::write(
            &config,
            format!(
                "daemon off;\n\
                 master_process off;\n\
                 pid {dir}/nginx.pid;\n\
                 error_log {dir}/error.log info;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n\
                     access_log off;\n\
                     client_body_temp_path {dir}/body;\n\
                     proxy_temp_path {dir}/proxy;\n\
                     server {{\n\
                         listen 127.0.0.1:{port} ssl;\n\
                         ssl_certificate {cert};\n\
                         ssl_certificate_key {key};\n\
                         location /portal/ {{\n\
                             proxy_pass http://127.0.0.1:{backend}/;\n\
                             client_max_body_size 34m;\n\
                         }}\n\
                     }}\n\
                 }}\n",
                cert = test_dir.join("server.pem").display(),
                key = test_dir.join("server.key").display(),
            ),
        )
        .unwrap();
        let log = directory.path().join("error.log");
        let mut child = Command::new("nginx")
            .arg("-e")
            .arg(&log)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start nginx ({error}): run scripts/install-test-deps")
            });
        wait_for_port(&mut child, "nginx", port, &log);
        Proxy {
            child,
            _directory: directory,
            port,
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Child::kill signals this child's own pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("portal/tests/browser")
}

/// Runs one job of the browser driver and returns its result.
fn browser(job: &Value) -> Value {
    let dir = browser_dir();
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "{} has no node_modules/playwright-core: run scripts/install-test-deps, which runs \
         `npm ci` there",
        dir.display()
    );
    assert!(
        Path::new("/usr/bin/chromium").is_file(),
        "/usr/bin/chromium is missing: run scripts/install-test-deps, which installs Debian's \
         chromium package"
    );
    let mut child = Command::new("node")
        .arg(dir.join("e2e.mjs"))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run node ({error}): run scripts/install-test-deps, which installs \
                 Debian's nodejs package"
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(job.to_string().as_bytes())
        .unwrap();
    let stdout = read_in_background(child.stdout.take().unwrap());
    let stderr = read_in_background(child.stderr.take().unwrap());
    // The driver ends itself after 3 minutes; this is the backstop.
    let deadline = Instant::now() + Duration::from_secs(200);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            // Child::kill signals this child's own pid.
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = String::from_utf8_lossy(&stdout.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&stderr.join().unwrap()).into_owned();
    assert!(
        status.success(),
        "the browser driver failed ({status}):\n{stdout}\n{stderr}"
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|error| panic!("the browser driver printed no JSON ({error}):\n{stdout}"))
}

fn read_in_background(
    mut pipe: impl std::io::Read + Send + 'static,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

fn read_job(link: &str, wrong: &[&str], code: Option<&str>) -> Value {
    json!({
        "mode": "read",
        "link": link,
        "server_cert": PathBuf::from(support::env("DIR")).join("server.pem"),
        "wrong_codes": wrong,
        "code": code,
    })
}

/// Returns a code that differs from `code` in its last digit.
fn wrong_code(code: &str, offset: u32) -> String {
    let digits: String = code.chars().filter(char::is_ascii_digit).collect();
    let last = digits.chars().last().unwrap().to_digit(10).unwrap();
    format!("{}{}", &digits[..7], (last + offset) % 10)
}

fn attempts(result: &Value) -> Vec<&Value> {
    result["attempts"].as_array().unwrap().iter().collect()
}

/// The sender, enrolled with the portal, and a patient without keys.
struct Clinic {
    _profile: tempfile::TempDir,
    session: Arc<Session>,
    me: String,
    patient: String,
}

async fn clinic(server: &PortalServer, base: &str) -> Clinic {
    let me = support::user(&format!("{base}-nurse"));
    let patient = support::user(&format!("{base}-patient"));
    let (profile, session) = support::session(support::account(&me)).await;

    let token = server.enrol_token();
    let settings = session
        .portal_enrol(&server.url, &token, "E2E front desk")
        .await
        .unwrap();
    assert_eq!(settings.url.as_deref(), Some(server.url.as_str()));
    assert!(settings.device_id.is_some());
    drop(session);

    let location = Profile::locate(Some(profile.path())).unwrap();
    let mut config = location.load().unwrap();
    config.portal = PortalSettings {
        contact: CONTACT.to_owned(),
        ..settings
    };
    location.save(&config).unwrap();
    let session = Session::open(location, None).await.unwrap();
    assert!(session.portal_enrolled());

    Clinic {
        _profile: profile,
        session: Arc::new(session),
        me: format!("{me}@example.org"),
        patient: format!("{patient}@example.org"),
    }
}

impl Clinic {
    /// Sends a PHI message to the patient, who has no keys, so it goes
    /// through the portal. Returns its Message-ID and the portal group's
    /// outcome.
    async fn send(
        &self,
        subject: &str,
        body: &str,
        attachment: Option<AttachmentFile>,
    ) -> (String, GroupOutcome) {
        self.send_unlocked_by(subject, body, attachment, PortalFactor::Phone)
            .await
    }

    /// Sends as [`Clinic::send`] does, unlocked by `factor`.
    async fn send_unlocked_by(
        &self,
        subject: &str,
        body: &str,
        attachment: Option<AttachmentFile>,
        factor: PortalFactor,
    ) -> (String, GroupOutcome) {
        let known = self
            .session
            .recipient_capabilities(vec![self.patient.clone()])
            .await
            .unwrap();
        let plan = route::plan(
            &Routing::default(),
            &["clinic.example".to_owned()],
            Sensitivity::Phi,
            &known,
        );
        assert_eq!(plan.routes.len(), 1);
        assert_eq!(
            plan.routes[0].method,
            Some(route::Method::Portal),
            "{:?}",
            plan.routes[0]
        );

        let message_id = new_message_id("example.org");
        let draft = Draft {
            from: Address::new(None, &self.me),
            to: vec![Address::new(None, &self.patient)],
            subject: subject.to_owned(),
            body: body.to_owned(),
            attachments: attachment.into_iter().collect(),
            ..Draft::default()
        };
        let audit = AuditDraft {
            recipients: vec![PlannedRecipient {
                address: self.patient.clone(),
                method: "portal".to_owned(),
                evidence: "planned by the test".to_owned(),
            }],
            decision: "PHI message through the portal".to_owned(),
            override_reason: None,
            choices: Vec::new(),
        };
        let factors = [(self.patient.clone(), factor)];
        let mut outcomes = self
            .session
            .send_planned_with(
                draft,
                message_id.clone(),
                now(),
                &plan,
                None,
                audit,
                &factors,
            )
            .await
            .unwrap();
        assert_eq!(outcomes.len(), 1);
        let outcome = outcomes.remove(0);
        assert_eq!(outcome.sealing, Sealing::Portal);
        assert!(outcome.result.is_ok(), "{:?}", outcome.result);
        assert!(
            outcome.portal.is_some(),
            "the portal group carries the code"
        );
        (message_id, outcome)
    }

    fn patient_user(&self) -> &str {
        self.patient.split('@').next().unwrap()
    }

    fn my_user(&self) -> &str {
        self.me.split('@').next().unwrap()
    }

    /// Waits for the notice of `portal_id` in the patient's Inbox and
    /// returns its raw text and the link it carries.
    fn notice(&self, server: &PortalServer, portal_id: &str) -> (String, String) {
        let prefix = format!("{}/m/{portal_id}#", server.url);
        for _ in 0..100 {
            for raw in support::raw_messages(self.patient_user(), "INBOX") {
                let message = MessageParser::default().parse(&raw).unwrap();
                let text = message.body_text(0).unwrap_or_default().into_owned();
                if let Some(start) = text.find(&prefix) {
                    let link = text[start..].split_whitespace().next().unwrap().to_owned();
                    return (String::from_utf8_lossy(&raw).into_owned(), link);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no notice for portal message {portal_id} reached the patient's Inbox");
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn fragment(link: &str) -> &str {
    link.split_once('#').unwrap().1
}

/// Asserts that no request the browser sent carries `secret` in its URL
/// or body.
fn assert_requests_clean(result: &Value, secret: &str) {
    let requests = result["requests"].as_array().unwrap();
    assert!(!requests.is_empty(), "the driver recorded no request");
    for request in requests {
        let url = request["url"].as_str().unwrap();
        let body = request["body"].as_str().unwrap();
        assert!(
            !url.contains(secret),
            "a request URL carries the link secret: {url}"
        );
        assert!(
            !body.contains(secret),
            "the body of a request to {url} carries the link secret"
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn event_kinds(messages: &[wardmail::session::PortalMessage], portal_id: &str) -> Vec<String> {
    messages
        .iter()
        .find(|message| message.portal_id == portal_id)
        .unwrap_or_else(|| panic!("portal_messages lists no {portal_id}"))
        .events
        .iter()
        .map(|(kind, _)| kind.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn portal_round_trip_in_chromium() {
    // The session's logs show, on failure, why a step went wrong (a
    // dropped reply is only logged).
    let _ = tracing_subscriber::fmt()
        .with_env_filter("wardmail=debug")
        .with_test_writer()
        .try_init();
    let started = Instant::now();
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    let mut lap = Instant::now();
    let mut mark = |label: &'static str, timings: &mut Vec<(&str, Duration)>| {
        timings.push((label, lap.elapsed()));
        lap = Instant::now();
    };

    let server = PortalServer::start();
    let clinic = clinic(&server, "e2e").await;
    mark("start portal, enrol", &mut timings);

    // A PHI message with a 2 KB attachment goes through the portal.
    let attachment_name = format!("biopsy-{}.pdf", std::process::id());
    let attachment_data: Vec<u8> = (0..2048u32).map(|i| (i * 7 % 251) as u8).collect();
    let (message_id, outcome) = clinic
        .send(
            SUBJECT,
            BODY,
            Some(AttachmentFile {
                filename: attachment_name.clone(),
                content_type: "application/pdf".to_owned(),
                data: attachment_data,
            }),
        )
        .await;
    let delivery = outcome.portal.unwrap();
    let code = delivery.code.as_ref().unwrap().expose().to_owned();
    mark("seal, upload, send notice", &mut timings);

    // Sent contains the message itself, not the notice: its only recipient
    // went through the portal.
    let bare_id = message_id.trim_matches(['<', '>']);
    let filed: Vec<String> = support::raw_messages(clinic.my_user(), "Sent")
        .iter()
        .map(|raw| String::from_utf8_lossy(raw).into_owned())
        .filter(|raw| raw.contains(bare_id))
        .collect();
    assert_eq!(filed.len(), 1, "one copy of the message in Sent");
    assert!(filed[0].contains(BODY), "the Sent copy is the message");
    assert!(!filed[0].contains("/m/"), "the Sent copy is not the notice");

    // The notice contains the link and nothing of the message.
    let (notice, link) = clinic.notice(&server, &delivery.portal_id);
    assert!(!notice.contains(SUBJECT), "the notice names the subject");
    assert!(!notice.contains(BODY), "the notice carries the text");
    assert!(
        !notice.contains(&attachment_name),
        "the notice names the attachment"
    );
    let secret = fragment(&link).to_owned();
    assert_eq!(
        URL_SAFE_NO_PAD.decode(&secret).unwrap().len(),
        32,
        "the fragment is the 32-byte link secret"
    );
    mark("notice delivered", &mut timings);

    // With JavaScript off the page explains what it needs, shows no code field
    // and sends nothing to the portal beyond the page and its style.
    let nojs = browser(&json!({
        "mode": "nojs",
        "link": link,
        "server_cert": PathBuf::from(support::env("DIR")).join("server.pem"),
        "screenshot": std::env::var("WARDMAIL_E2E_SCREENSHOTS")
            .ok()
            .map(|dir| PathBuf::from(dir).join("portal-no-javascript.png")),
    }));
    let visible = nojs["visible"].as_str().unwrap_or_default();
    let html = nojs["html"].as_str().unwrap_or_default();
    assert!(html.contains("That needs JavaScript"), "{nojs}");
    assert!(
        !visible.contains("textbox"),
        "no code field without JavaScript: {nojs}"
    );
    assert!(!visible.contains(BODY), "{nojs}");
    assert!(
        nojs["requests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|request| !request["url"].as_str().unwrap().contains("/meta")),
        "{nojs}"
    );

    // Two wrong codes, then the right one; then a reply with a file.
    let reply_dir = tempfile::tempdir().unwrap();
    let reply_name = format!("question-{}.txt", std::process::id());
    let reply_file = reply_dir.path().join(&reply_name);
    std::fs::write(&reply_file, b"Blood pressure log: 128/82, 131/85.\n").unwrap();
    let mut job = read_job(
        &link,
        &[&wrong_code(&code, 1), &wrong_code(&code, 2)],
        Some(&code),
    );
    job["reply_text"] = json!(REPLY_TEXT);
    job["reply_file"] = json!(reply_file);
    let page = browser(&job);
    mark("browser: two wrong codes, open, reply", &mut timings);

    let tries = attempts(&page);
    assert_eq!(tries.len(), 3, "{page}");
    assert_eq!(tries[0]["http_status"], 403);
    assert_eq!(tries[0]["attempts_left"], 4);
    assert_eq!(tries[0]["status"], "Wrong code. 4 tries left.");
    assert_eq!(tries[1]["attempts_left"], 3);
    assert_eq!(tries[1]["status"], "Wrong code. 3 tries left.");
    assert_eq!(tries[2]["http_status"], 200, "{page}");
    assert_eq!(page["opened"], true, "{page}");
    assert_eq!(page["subject"], SUBJECT);
    assert_eq!(page["text"], BODY);
    assert!(
        page["from"].as_str().unwrap().contains(&clinic.me),
        "{}",
        page["from"]
    );
    assert_eq!(page["attachments"], json!([attachment_name]));
    assert_eq!(page["reply"]["http_status"], 201, "{page}");
    assert_eq!(page["reply"]["confirmed"], true, "{page}");
    assert_requests_clean(&page, &secret);

    // The reply comes home through the portal sync.
    let synced = clinic.session.portal_sync().await.unwrap();
    assert_eq!(synced.replies, 1, "{synced:?}");
    assert_eq!(synced.rejected, 0, "{synced:?}");
    mark("portal sync", &mut timings);

    let inbox = support::raw_messages(clinic.my_user(), "INBOX");
    let original = message_id.trim_matches(['<', '>']);
    let reply_raw = inbox
        .iter()
        .find(|raw| {
            let message = MessageParser::default().parse(raw.as_slice()).unwrap();
            message.in_reply_to().as_text() == Some(original)
        })
        .unwrap_or_else(|| panic!("no message in the sender's Inbox replies to {original}"));
    let reply = MessageParser::default()
        .parse(reply_raw.as_slice())
        .unwrap();
    assert!(
        reply.body_text(0).unwrap().contains(REPLY_TEXT),
        "the reply's text is missing"
    );
    let reply_attachment = reply.attachment(0).expect("the reply carries the file");
    assert_eq!(
        reply_attachment.attachment_name(),
        Some(reply_name.as_str())
    );
    assert_eq!(
        reply_attachment.contents(),
        b"Blood pressure log: 128/82, 131/85.\n"
    );
    let reply_id = reply.message_id().unwrap().to_owned();
    let arrival = clinic
        .session
        .stored_arrival(reply_id)
        .await
        .unwrap()
        .expect("the reply's arrival is recorded");
    assert!(
        arrival.portal_reply,
        "the reply is marked as from the portal"
    );

    let kinds = event_kinds(
        &clinic.session.portal_messages().await.unwrap(),
        &delivery.portal_id,
    );
    for kind in ["opened", "wrong-code", "unlocked", "replied"] {
        assert!(
            kinds.iter().any(|seen| seen == kind),
            "no {kind} event in {kinds:?}"
        );
    }

    // Neither the database nor the log contains the content or the secrets.
    let secret_bytes = URL_SAFE_NO_PAD.decode(&secret).unwrap();
    let digits: String = code.chars().filter(char::is_ascii_digit).collect();
    let mut stored = server.database_bytes();
    stored.push((server.log.clone(), std::fs::read(&server.log).unwrap()));
    for (path, bytes) in &stored {
        for (what, needle) in [
            ("the message text", BODY.as_bytes()),
            ("the subject", SUBJECT.as_bytes()),
            ("the reply text", REPLY_TEXT.as_bytes()),
            ("the link secret", secret.as_bytes()),
            ("the link secret's bytes", secret_bytes.as_slice()),
            ("the code", code.as_bytes()),
            ("the code's digits", digits.as_bytes()),
        ] {
            assert!(
                !contains(bytes, needle),
                "{} contains {what}",
                path.display()
            );
        }
    }
    mark("checks", &mut timings);

    // A second message locks after five wrong codes; a new code opens it.
    let (_, outcome) = clinic.send(SECOND_SUBJECT, SECOND_BODY, None).await;
    let second = outcome.portal.unwrap();
    let second_code = second.code.as_ref().unwrap().expose().to_owned();
    let (_, second_link) = clinic.notice(&server, &second.portal_id);
    let wrong: Vec<String> = (1..=5)
        .map(|offset| wrong_code(&second_code, offset))
        .collect();
    let wrong: Vec<&str> = wrong.iter().map(String::as_str).collect();
    let page = browser(&read_job(&second_link, &wrong, Some(&second_code)));
    mark("browser: five wrong codes", &mut timings);

    let tries = attempts(&page);
    let left: Vec<&Value> = tries[..4]
        .iter()
        .map(|attempt| &attempt["attempts_left"])
        .collect();
    assert_eq!(left, [4, 3, 2, 1], "{page}");
    let locked = tries[5];
    assert_eq!(locked["http_status"], 423, "{page}");
    assert!(
        locked["status"].as_str().unwrap().contains("locked"),
        "{}",
        locked["status"]
    );
    assert_eq!(page["opened"], false);
    assert_eq!(page["text"], "");
    assert_requests_clean(&page, fragment(&second_link));

    clinic.session.portal_sync().await.unwrap();
    let kinds = event_kinds(
        &clinic.session.portal_messages().await.unwrap(),
        &second.portal_id,
    );
    assert!(kinds.iter().any(|kind| kind == "locked"), "{kinds:?}");

    let new_code = clinic
        .session
        .portal_reissue(&second.portal_id)
        .await
        .unwrap();
    let new_code = new_code.expose().to_owned();
    assert_ne!(new_code, second_code);
    let page = browser(&read_job(&second_link, &[], Some(&new_code)));
    assert_eq!(page["opened"], true, "{page}");
    assert_eq!(page["subject"], SECOND_SUBJECT);
    assert_eq!(page["text"], SECOND_BODY);
    mark("re-issue, open with the new code", &mut timings);

    // A changed envelope fails to decrypt in the browser.
    let (_, outcome) = clinic.send(THIRD_SUBJECT, THIRD_BODY, None).await;
    let third = outcome.portal.unwrap();
    let third_code = third.code.as_ref().unwrap().expose().to_owned();
    let (_, third_link) = clinic.notice(&server, &third.portal_id);
    flip_envelope_byte(&server.database(), &third.portal_id);
    let page = browser(&read_job(&third_link, &[], Some(&third_code)));
    assert_eq!(attempts(&page)[0]["http_status"], 200, "{page}");
    assert_eq!(page["opened"], false, "{page}");
    assert_eq!(page["text"], "");
    assert!(
        page["status"]
            .as_str()
            .unwrap()
            .contains("changed on the way"),
        "{}",
        page["status"]
    );
    mark("tampered envelope", &mut timings);

    // A revoked message shows the gone page with the clinic's contact.
    clinic
        .session
        .portal_revoke(&delivery.portal_id)
        .await
        .unwrap();
    let gone = browser(&json!({
        "mode": "gone",
        "link": link,
        "server_cert": PathBuf::from(support::env("DIR")).join("server.pem"),
    }));
    assert_eq!(gone["page_status"], 410, "{gone}");
    assert!(
        gone["contact"].as_str().unwrap().contains(CONTACT),
        "{gone}"
    );
    assert_eq!(gone["opened"], false);
    assert_requests_clean(&gone, &secret);
    mark("revoke, gone page", &mut timings);

    for (label, elapsed) in &timings {
        eprintln!("portal_e2e: {label}: {} ms", elapsed.as_millis());
    }
    eprintln!("portal_e2e: total {} ms", started.elapsed().as_millis());
}

#[tokio::test(flavor = "multi_thread")]
async fn portal_behind_prefix_proxy() {
    let proxy_port = free_port();
    let public_url = format!("https://127.0.0.1:{proxy_port}/portal");
    let server = PortalServer::start_behind(&public_url);
    let proxy = Proxy::start(proxy_port, server.port);
    let clinic = clinic(&server, "e2e-proxy").await;

    let (message_id, outcome) = clinic.send(SUBJECT, BODY, None).await;
    let delivery = outcome.portal.unwrap();
    let code = delivery.code.as_ref().unwrap().expose().to_owned();
    let (_, link) = clinic.notice(&server, &delivery.portal_id);
    assert!(link.starts_with(&format!("{public_url}/m/")), "{link}");

    let mut job = read_job(&link, &[&wrong_code(&code, 3)], Some(&code));
    job["reply_text"] = json!(REPLY_TEXT);
    let page = browser(&job);
    let tries = attempts(&page);
    assert_eq!(tries[0]["attempts_left"], 4, "{page}");
    assert_eq!(page["opened"], true, "{page}");
    assert_eq!(page["text"], BODY);
    assert_eq!(page["reply"]["confirmed"], true, "{page}");
    for request in page["requests"].as_array().unwrap() {
        let url = request["url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!("https://127.0.0.1:{}/portal/", proxy.port)),
            "the page sent a request outside the portal's prefix: {url}"
        );
    }

    let synced = clinic.session.portal_sync().await.unwrap();
    assert_eq!(synced.replies, 1, "{synced:?}");
    let original = message_id.trim_matches(['<', '>']);
    let replied = support::raw_messages(clinic.my_user(), "INBOX")
        .iter()
        .any(|raw| {
            let message = MessageParser::default().parse(raw.as_slice()).unwrap();
            message.in_reply_to().as_text() == Some(original)
        });
    assert!(
        replied,
        "no message in the sender's Inbox replies to {original}"
    );
}

/// Flips one byte in the middle of a message's envelope in the portal's
/// SQLite file, as an attacker with the database could.
fn flip_envelope_byte(database: &Path, portal_id: &str) {
    let db = rusqlite::Connection::open(database).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let mut envelope: Vec<u8> = db
        .query_row(
            "SELECT envelope FROM messages WHERE id = ?1",
            [portal_id],
            |row| row.get(0),
        )
        .unwrap();
    let middle = envelope.len() / 2;
    envelope[middle] ^= 0x01;
    let changed = db
        .execute(
            "UPDATE messages SET envelope = ?2 WHERE id = ?1",
            rusqlite::params![portal_id, envelope],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

/// Times Send to notice delivered for a message with a 1 MiB attachment:
/// seal (PBKDF2 with 600,000 iterations), upload over TLS, the notice
/// through Postfix, and delivery into the patient's Inbox by Dovecot's
/// LMTP. Not part of the suite; BENCHMARKS.md has the command and figures.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark; run with --ignored"]
#[allow(clippy::print_stdout)]
async fn bench_send_to_notice() {
    const RUNS: usize = 5;
    let server = PortalServer::start();
    let clinic = clinic(&server, "bench").await;
    let mut attachment = vec![0u8; 1024 * 1024];
    for (index, byte) in attachment.iter_mut().enumerate() {
        *byte = (index % 251) as u8;
    }
    let mut sends = Vec::new();
    let mut totals = Vec::new();
    for run in 0..RUNS {
        let started = Instant::now();
        let (_, outcome) = clinic
            .send(
                SUBJECT,
                BODY,
                Some(AttachmentFile {
                    filename: format!("scan-{run}.pdf"),
                    content_type: "application/pdf".to_owned(),
                    data: attachment.clone(),
                }),
            )
            .await;
        let sent = started.elapsed();
        let portal_id = outcome.portal.unwrap().portal_id;
        let prefix = format!("{}/m/{portal_id}#", server.url);
        loop {
            let delivered = support::raw_messages(clinic.patient_user(), "INBOX")
                .iter()
                .any(|raw| {
                    let message = MessageParser::default().parse(raw).unwrap();
                    message.body_text(0).unwrap_or_default().contains(&prefix)
                });
            if delivered {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "no notice");
            std::thread::sleep(Duration::from_millis(10));
        }
        sends.push(sent);
        totals.push(started.elapsed());
    }
    sends.sort();
    totals.sort();
    let median = |values: &[Duration]| values[values.len() / 2].as_secs_f64() * 1000.0;
    println!(
        "send (seal, upload, submit): median {:.0} ms of {RUNS}: {sends:?}",
        median(&sends)
    );
    println!(
        "send to notice delivered: median {:.0} ms of {RUNS}: {totals:?}",
        median(&totals)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn portal_passphrase_reused_in_chromium() {
    const PASSPHRASE: &str = "blue harbour forty two";
    let server = PortalServer::start();
    let clinic = clinic(&server, "phrase").await;

    // The first message sets the passphrase agreed by phone.
    let (_, first) = clinic
        .send_unlocked_by(
            SECOND_SUBJECT,
            SECOND_BODY,
            None,
            PortalFactor::Passphrase(Some(Secret::new(PASSPHRASE))),
        )
        .await;
    let first = first.portal.unwrap();
    assert!(first.code.is_none(), "no code is shown for a passphrase");
    let (notice, link) = clinic.notice(&server, &first.portal_id);
    assert!(notice.contains("passphrase you agreed"), "{notice}");
    assert!(
        !notice.contains(PASSPHRASE),
        "the notice carries the passphrase"
    );
    let page = browser(&read_job(&link, &["wrong passphrase"], Some(PASSPHRASE)));
    assert_eq!(page["opened"], true, "{page}");
    assert_eq!(page["text"], SECOND_BODY);

    // The second message reuses the saved passphrase.
    let (_, second) = clinic
        .send_unlocked_by(
            THIRD_SUBJECT,
            THIRD_BODY,
            None,
            PortalFactor::Passphrase(None),
        )
        .await;
    let second = second.portal.unwrap();
    let (_, link) = clinic.notice(&server, &second.portal_id);
    let page = browser(&read_job(&link, &[], Some(PASSPHRASE)));
    assert_eq!(page["opened"], true, "{page}");
    assert_eq!(page["text"], THIRD_BODY);

    // Without a policy that allows it, a code by e-mail is refused before
    // anything is uploaded or queued.
    let known = clinic
        .session
        .recipient_capabilities(vec![clinic.patient.clone()])
        .await
        .unwrap();
    let plan = route::plan(
        &Routing::default(),
        &["clinic.example".to_owned()],
        Sensitivity::Phi,
        &known,
    );
    let draft = Draft {
        from: Address::new(None, &clinic.me),
        to: vec![Address::new(None, &clinic.patient)],
        subject: SUBJECT.to_owned(),
        body: BODY.to_owned(),
        ..Draft::default()
    };
    let queued_before = clinic
        .session
        .store
        .outbox(&clinic.session.account.id)
        .unwrap()
        .len();
    let error = clinic
        .session
        .send_planned_with(
            draft,
            new_message_id("example.org"),
            now(),
            &plan,
            None,
            AuditDraft::submission_only(std::slice::from_ref(&clinic.patient)),
            &[(clinic.patient.clone(), PortalFactor::Email)],
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("does not allow sending the code by e-mail"),
        "{error}"
    );
    assert_eq!(
        clinic
            .session
            .store
            .outbox(&clinic.session.account.id)
            .unwrap()
            .len(),
        queued_before
    );
    assert_eq!(clinic.session.portal_messages().await.unwrap().len(), 2);
}
