//! The VMs themselves: a local interpreter in a pseudo-terminal, Lua on a host over
//! SSH, and VMs on an XCP-ng pool through XAPI, behind one interface ([`vm`]), with
//! luarocks for each. It knows no screen and no client: the server drives it, and the
//! simulator and tests can drive it alone.

pub mod error;
pub mod rocks;
pub mod vm;
pub mod xapi;

pub use error::{Error, Result};

/// Locks a mutex, carrying on if a panicking thread poisoned it: the data behind
/// bioxen's locks stays consistent between statements, and one panicked task must not
/// take every later caller down with it.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
