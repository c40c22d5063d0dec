//! bioxen: a terminal dashboard for running several interactive Lua VMs side by side.
//!
//! Data is meant to flow one way through the modules: [`vm`] backends produce bytes;
//! the [`manager`], inside the [`server`], owns the sessions and parses their output
//! into [`term`] screens; the server sends those screens and their output over the
//! [`protocol`] to [`client`]s; and the [`ui`], one such client, mirrors the screens it
//! shows, draws them and turns keys into calls. [`config`] feeds them all; [`repl`] is
//! the embedded Lua interpreter that local VMs run by default.
//!
//! The modules do not all keep to that yet: [`protocol`] re-exports types defined in
//! [`manager`], [`vm`], [`xapi`] and [`term`] rather than owning them, and the manager
//! and `cli::ls` borrow the dashboard's text helpers.

pub use bioxen_client as client;
pub use bioxen_config::{self as config, keymap, keyspec, private_fs, secret};
pub use bioxen_log as log_sink;
pub use bioxen_proto as protocol;
pub use bioxen_repl as repl;
pub use bioxen_server::{manager, registry, server};
pub use bioxen_sim as sim;
pub use bioxen_term as term;
pub use bioxen_text::{base64, lua_literal, sanitize};

pub mod cli;
pub mod ui;

pub use bioxen_backend::{Error, Result, error, lock, rocks, vm, xapi};

/// The async runtime every bioxen command runs on: two worker threads, as many cores as
/// the machines it is measured on have; more would only add wake-ups.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}
pub use manager::{Event, ExecResult, Manager, ManagerConfig, VmInfo};
pub use vm::{Size, VmKind, VmOptions, VmState};
