//! Wardmail's core: everything that is not drawing. The desktop window
//! (`src/ui/`) and the command line (`src/cli.rs`) are thin layers over
//! these modules, and the integration tests drive them directly.
//!
//! Blocking work (SQLite, the OS keyring) is marked as such on each
//! function; network work is async on tokio.

pub mod account;
pub mod arrival;
pub mod assess;
pub mod audit;
pub mod autocrypt;
pub mod calendar;
pub mod compose;
pub mod dns;
pub mod guard;
pub mod imap;
pub mod mailto;
pub mod message;
mod multipart;
pub mod net;
pub mod openpgp;
pub mod outbox;
pub mod policy;
pub mod portal;
pub mod protected;
pub mod protection;
pub mod route;
pub mod secret;
pub mod session;
pub mod smime;
pub mod smtp;
pub mod store;
pub mod sync;
pub mod utf7;
pub mod wkd;
