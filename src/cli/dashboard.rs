//! `bioxen` with no command, and `bioxen attach`: the dashboard on the user's server.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::Config;

/// The dashboard, starting a server first if none runs.
pub fn open(config: Config, config_path: Option<&Path>, socket: PathBuf) -> ExitCode {
    let start = match super::server::start_options(&config, config_path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bioxen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let launch = crate::ui::Launch {
        socket,
        start: Some(start),
        attach: None,
        vms_end_on_quit: false,
        read_only: false,
    };
    crate::ui::run(config, launch)
}

/// The dashboard on the running server, attached to `vm` if given (as `tmux attach`);
/// with `read_only`, it shows everything and changes nothing (`tmux attach -r`).
pub fn attach(config: Config, socket: PathBuf, vm: Option<String>, read_only: bool) -> ExitCode {
    let launch = crate::ui::Launch {
        socket,
        start: None,
        attach: vm,
        vms_end_on_quit: false,
        read_only,
    };
    crate::ui::run(config, launch)
}
