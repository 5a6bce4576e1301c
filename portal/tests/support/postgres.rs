//! A throwaway PostgreSQL cluster for the tests: initdb into a temporary
//! directory, one `postgres` process on 127.0.0.1 and a free port, password
//! (SCRAM) authentication, and one fresh database per test. TLS is on, with
//! a certificate from a test CA made by the openssl command, and the
//! database [`TLS_ONLY`] accepts only TLS connections.
//!
//! PostgreSQL refuses to run as root, so under root the server runs as the
//! `postgres` system user (or `nobody`), set through `Command::uid`. The
//! test process cannot run code at exit, so a small watchdog shell reads a
//! pipe whose write end only this process has open. When the process ends,
//! for whatever reason, the read reaches end of file and the watchdog stops
//! the server by its pid and removes the directory.

use std::io::BufRead as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The superuser the cluster is created with.
const USER: &str = "wardmail";

/// The database that pg_hba.conf closes to connections without TLS.
pub const TLS_ONLY: &str = "tls_only";

/// A running cluster; never dropped (see the module documentation).
pub struct Cluster {
    port: u16,
    directory: PathBuf,
    password: String,
    /// Kept so the child is not reaped early; the watchdog stops it.
    _server: Child,
    _watchdog: Child,
}

impl Cluster {
    /// The cluster of this test process, started on first use.
    pub fn get() -> &'static Cluster {
        static CLUSTER: OnceLock<Cluster> = OnceLock::new();
        CLUSTER.get_or_init(start)
    }

    /// The password of the superuser, so a test can check that the logs
    /// never contain it.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The PEM file of the CA that issued the server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.directory.join("ca.pem")
    }

    /// The PEM file of a CA that issued nothing the server uses.
    pub fn other_ca_file(&self) -> PathBuf {
        self.directory.join("other-ca.pem")
    }

    /// Creates an empty database and returns its URL.
    pub async fn new_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        self.create_database(&format!("test_{}", NEXT.fetch_add(1, Ordering::Relaxed)))
            .await
    }

    /// Creates an empty database called `name` and returns its URL.
    pub async fn create_database(&self, name: &str) -> String {
        let admin = connect(&self.url("postgres")).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        self.url(name)
    }

    fn url(&self, database: &str) -> String {
        format!(
            "postgres://{USER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }
}

/// Connects with tokio-postgres, driving the connection in a task.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to the test cluster: {error}"));
    tokio::spawn(connection);
    client
}

/// The directory holding `initdb` and `postgres`.
fn bin_dir() -> PathBuf {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    // Debian's pg_config (libpq-dev) can name a directory without the
    // server; the server packages install under /usr/lib/postgresql/N/bin.
    let packaged = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("bin"));
    let mut candidates: Vec<PathBuf> = from_pg_config.into_iter().chain(packaged).collect();
    candidates.sort_by_key(|dir| std::cmp::Reverse(dir.join("postgres").exists()));
    candidates
        .into_iter()
        .find(|dir| dir.join("initdb").exists() && dir.join("postgres").exists())
        .unwrap_or_else(|| {
            panic!(
                "no PostgreSQL server binaries (initdb, postgres) in `pg_config --bindir` or /usr/lib/postgresql/*/bin; run scripts/install-test-deps"
            )
        })
}

/// The uid and gid to run the server as: none when not root, otherwise the
/// `postgres` user, or `nobody`.
fn server_user() -> Option<(u32, u32)> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap();
    if uid != "0" {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let ids = |name: &str| {
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&name))
                .then(|| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
                .flatten()
        })
    };
    Some(
        ids("postgres")
            .or_else(|| ids("nobody"))
            .expect("no postgres or nobody user to run PostgreSQL as"),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chown_all(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_all(&entry.unwrap().path(), uid, gid);
        }
    }
}

fn as_server_user(command: &mut Command, user: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    command
}

fn start() -> Cluster {
    let bin = bin_dir();
    let user = server_user();
    let directory = tempfile::Builder::new()
        .prefix("wardmail-pg-")
        .tempdir()
        .unwrap()
        .keep();
    let data = directory.join("data");
    let password = random_password();
    let password_file = directory.join("password");
    std::fs::write(&password_file, &password).unwrap();
    if let Some((uid, gid)) = user {
        chown_all(&directory, uid, gid);
    }

    let started = Instant::now();
    let initdb = as_server_user(&mut Command::new(bin.join("initdb")), user)
        .args([
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .arg(format!("--username={USER}"))
        .arg(format!("--pwfile={}", password_file.display()))
        .arg("-D")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        initdb.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&initdb.stderr)
    );

    make_certificates(&directory, &data);
    for file in ["server.key", "server.crt"] {
        let path = data.join(file);
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        if let Some((uid, gid)) = user {
            chown_all(&path, uid, gid);
        }
    }
    let hba = data.join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("hostnossl {TLS_ONLY} all all reject\n{rules}"),
    )
    .unwrap();

    let port = free_port();
    let log = std::fs::File::create(directory.join("server.log")).unwrap();
    if let Some((uid, gid)) = user {
        chown_all(&directory.join("server.log"), uid, gid);
    }
    let server = as_server_user(&mut Command::new(bin.join("postgres")), user)
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1"])
        .args(["-c", "unix_socket_directories="])
        .args(["-c", "fsync=off", "-c", "max_connections=200"])
        .args(["-c", "ssl=on"])
        .args([
            "-c",
            "ssl_cert_file=server.crt",
            "-c",
            "ssl_key_file=server.key",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();

    // The watchdog waits for end of file on its stdin, which comes when
    // this process exits, then stops the server by pid (SIGINT is the
    // fast shutdown) and removes the directory once it is gone.
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(
            "read _ignored; kill -INT \"$1\"; \
             while kill -0 \"$1\" 2>/dev/null; do sleep 0.1; done; rm -rf \"$2\"",
        )
        .arg("watchdog")
        .arg(server.id().to_string())
        .arg(&directory)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();

    wait_until_ready(&directory, port);
    eprintln!(
        "PostgreSQL test cluster ready on 127.0.0.1:{port} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Cluster {
        port,
        directory,
        password,
        _server: server,
        _watchdog: watchdog,
    }
}

/// Makes a test CA, a server certificate from it for 127.0.0.1 and
/// localhost in the data directory, and a second, unrelated CA.
fn make_certificates(directory: &Path, data: &Path) {
    let openssl = |arguments: &[&str]| {
        let output = Command::new("openssl")
            .args(arguments)
            .current_dir(directory)
            .output()
            .unwrap_or_else(|error| {
                panic!("cannot run openssl ({error}); run scripts/install-test-deps")
            });
        assert!(
            output.status.success(),
            "openssl {arguments:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let new_ca = |name: &str| {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN=Wardmail test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
    };
    new_ca("ca");
    new_ca("other-ca");

    std::fs::write(
        directory.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let server_key = data.join("server.key");
    let server_key = server_key.to_str().unwrap();
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        server_key,
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        data.join("server.crt").to_str().unwrap(),
    ]);
}

fn wait_until_ready(directory: &Path, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let log = directory.join("server.log");
    loop {
        let ready = std::fs::File::open(&log)
            .map(|file| {
                std::io::BufReader::new(file)
                    .lines()
                    .map_while(Result::ok)
                    .any(|line| line.contains("ready to accept connections"))
            })
            .unwrap_or(false);
        if ready && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "PostgreSQL did not start within 60 s: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A random password of URL-safe characters.
fn random_password() -> String {
    use base64::Engine as _;
    let mut bytes = [0; 18];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
