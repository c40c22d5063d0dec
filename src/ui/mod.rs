//! The full-screen dashboard.

pub mod format;

use std::process::ExitCode;

use crate::config::Config;

pub fn run(_config: Config) -> ExitCode {
    eprintln!("the dashboard is not built yet");
    ExitCode::FAILURE
}
