//! bioxen: a terminal dashboard for running several interactive Lua VMs side by side.
//!
//! The work is done by the crates under `crates/`, one layer each, and data flows one
//! way through them: the backends ([`vm`], [`xapi`]) produce bytes; the [`manager`],
//! inside the [`server`], owns the sessions and parses their output into [`term`]
//! screens; the server sends those screens and their output over the [`protocol`] to
//! [`client`]s; and the [`ui`], one such client, mirrors the screens it shows, draws
//! them and turns keys into calls. [`config`] feeds them all; [`repl`] is the embedded
//! Lua interpreter that local VMs run by default. `tests/e2e/layers.rs` holds the crates
//! to that order.
//!
//! This crate is the `bioxen` binary's subcommands ([`cli`]) and a facade that names
//! each layer where scripts and tests have always found it (`bioxen::client::Client`).

pub use bioxen_client::{self as client, runtime};
pub use bioxen_config::{self as config, keymap, keyspec, private_fs, secret};
pub use bioxen_log as log_sink;
pub use bioxen_proto as protocol;
pub use bioxen_repl as repl;
pub use bioxen_server::{history, manager, persist, registry, server};
pub use bioxen_sim as sim;
pub use bioxen_term as term;
pub use bioxen_text::{base64, lua_literal, sanitize};
pub use bioxen_tui as ui;

pub mod cli;

pub use bioxen_backend::{Error, Result, error, lock, rocks, vm, xapi};

pub use manager::{Event, ExecResult, Manager, ManagerConfig, VmId, VmInfo, VmRef};
pub use vm::{Size, VmKind, VmOptions, VmState};
