//! `wardmail-portal`: runs the portal server, or creates a one-time
//! enrolment token for a desktop.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use wardmail_portal::app::App;
use wardmail_portal::config::{Config, Database, LogFormat};
use wardmail_portal::server::{self, Bound};
use wardmail_portal::store::{AnyStore, PgStore, SqliteStore};

/// The Wardmail secure portal server.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// The TOML configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Print a one-time token that enrols one desktop within 24 hours.
    EnrolToken {
        /// A name for the desktop, stored as its label (for example the
        /// workstation or the person).
        #[arg(long, value_name = "NAME")]
        label: String,
        /// The TOML configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config_path = match &cli.command {
        Command::Serve { config } | Command::EnrolToken { config, .. } => config,
    };
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("wardmail-portal: {error}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("wardmail-portal: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve { .. } => runtime.block_on(serve(config)),
        Command::EnrolToken { label, .. } => runtime.block_on(enrol_token(config, &label)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("wardmail-portal: {message}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = server::log_filter(
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Opens the SQLite file or connects to PostgreSQL, as `database` says.
async fn open_store(config: &Config) -> Result<AnyStore, String> {
    match &config.database {
        Database::Sqlite(path) => {
            let path = path.clone();
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path))
                .await
                .map_err(|error| error.to_string())?
                .map_err(|error| error.to_string())?;
            Ok(store.into())
        }
        Database::Postgres { url, ca } => PgStore::connect(url, ca.as_deref())
            .await
            .map(AnyStore::from)
            .map_err(|error| error.to_string()),
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let store = open_store(&config).await?;
    let bound = Bound::bind(&config)
        .await
        .map_err(|error| error.to_string())?;
    let app = Arc::new(App { store, config });
    // NOTE: SIGTERM and Ctrl-C end the process at once, without draining
    // requests in flight, because tokio's "signal" feature is left out (see
    // portal/Cargo.toml). Each request's database work is one transaction,
    // so nothing is left half-written, and a failed upload can be sent again.
    bound
        .serve(app, std::future::pending())
        .await
        .map_err(|error| error.to_string())
}

async fn enrol_token(config: Config, label: &str) -> Result<(), String> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(format!(
            "invalid --label {label:?}: give 1 to 100 characters without control characters"
        ));
    }
    let store = open_store(&config).await?;
    let (token, expires_at) = server::create_enrol_token(&store, label)
        .await
        .map_err(|error| error.to_string())?;
    tracing::info!("enrolment token created");
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{token}")
        .and_then(|()| {
            writeln!(
                stdout,
                "# single use; expires at Unix time {expires_at} (24 hours); enter it in the desktop's portal settings"
            )
        })
        .map_err(|error| format!("cannot write the token to standard output: {error}"))
}
