//! The `wardmail` executable: the desktop window when run without a
//! subcommand, the headless command line otherwise.

mod cli;
mod ui;

fn main() -> std::process::ExitCode {
    let arguments = cli::parse();
    init_logging();
    match arguments.command {
        None => match ui::run(arguments.profile, arguments.mailto) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(%error, "the window could not be opened");
                eprintln!("wardmail: cannot open the window: {error}");
                std::process::ExitCode::FAILURE
            }
        },
        Some(command) => cli::run(arguments.profile, command),
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings and errors).
///
/// Libraries that trace their wire traffic are always silenced, whatever
/// `RUST_LOG` says: async-imap logs every command at trace level, LOGIN
/// and its password included, and zbus logs D-Bus messages, which carry
/// secrets on their way to the keyring.
fn init_logging() {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    for directive in ["async_imap=off", "imap_proto=off", "zbus=off", "lettre=off"] {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
