//! What a researcher sets and what bioxen keeps for them on disk: `bioxen.toml` with its
//! keymap, the private files and directories the server and the dashboard write, the
//! passwords they read. No async runtime, no terminal library: the dashboard, the
//! server and the backends all read it.

mod config;
pub mod error;
pub mod experiment;
pub mod keymap;
pub mod keys;
pub mod keyspec;
pub mod private_fs;
pub mod secret;
pub mod tls;

pub use config::*;
pub use error::ConfigError;

/// Locks a mutex, carrying on if a panicking thread poisoned it: the data behind
/// these locks stays consistent between statements.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
