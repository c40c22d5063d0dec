//! The end-to-end and integration tests, as one test binary: linking a binary costs
//! seconds on two cores, and each of these used to link the whole of bioxen on its
//! own. Tests that measure their own process (its memory, its signals, its log sink)
//! stay binaries of their own beside this one: `tests/faults.rs`, `tests/osc_memory.rs`
//! and `tests/log_fault.rs`.

#[path = "../common/mod.rs"]
mod common;

mod assets;
mod cli;
mod dashboard_e2e;
mod dashboard_effects;
mod dashboard_remote_e2e;
mod demo_e2e;
mod experiment;
mod experiment_list;
mod history;
mod layers;
mod local_vm;
mod persist;
mod properties;
mod repl_compat;
mod repl_output;
mod rocks;
mod script;
mod server;
mod sim_guests;
mod ssh_vm;
mod ui_snapshots;
mod vttest;
mod xapi_client;
mod xapi_python;
mod xapi_wire;
