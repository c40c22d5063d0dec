//! The server side: the manager that owns every session (its process, screen, history,
//! alerts and stats), the server that serves it on a Unix socket, and the registry
//! that lets `bioxen ls` find every server of this user. It drives the backends and
//! parses their output into screens; it answers clients only through `bioxen-proto`,
//! and knows no dashboard.

pub mod history;
pub mod manager;
pub mod persist;
pub mod registry;
pub mod server;
