//! The Wardmail secure portal server: it stores end-to-end encrypted
//! messages that a clinic's desktop uploads, serves the page on which the
//! recipient decrypts them in the browser, and keeps the recipient's sealed
//! replies for the desktop. The wire formats are fixed in
//! docs/portal-scheme.md; the server never holds a plaintext, the link
//! secret or anything that lets it test guesses of the second factor.
//!
//! Storage is behind [`store::Store`]: [`store::SqliteStore`] for one
//! instance, [`store::PgStore`] for several sharing a PostgreSQL database.

pub mod app;
pub mod config;
pub mod device;
pub mod page;
pub mod recipient;
pub mod server;
pub mod signature;
pub mod store;
pub mod wire;
