//! `bioxen server`, and how every command starts one on demand.

use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;

/// `bioxen server`: serves in this process with `--foreground`; otherwise makes sure
/// one runs (starting it detached) and says where.
pub fn command(
    config: &Config,
    config_path: Option<&std::path::Path>,
    socket: &std::path::Path,
    foreground: bool,
) -> ExitCode {
    let Some(runtime) = super::runtime_or_say() else {
        return ExitCode::FAILURE;
    };
    if foreground {
        // Its stderr is its log (start.log, or a terminal): a full disk or a closed
        // terminal stops the log, never the server.
        let sink =
            crate::log_sink::LogSink::new(std::io::stderr(), "the server's log (its stderr)");
        let _ = crate::log_sink::install(sink, tracing::Level::INFO);
        let manager_config = match crate::manager::ManagerConfig::from_config(config) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("bioxen server: {e}");
                return ExitCode::from(2);
            }
        };
        let options = crate::server::ServerOptions {
            exit_empty: config.server.exit_empty,
            persist: Some(crate::server::Persist {
                places: crate::persist::Places::of(config, socket),
                log_every_vm: config.logs.enabled,
                keep_days: config.logs.keep_days,
            }),
        };
        let result = runtime.block_on(crate::server::serve(manager_config, options, socket));
        // A password command still running (a pool login in progress) ends with the
        // server, and so does any task still blocked on one.
        crate::secret::kill_running();
        runtime.shutdown_timeout(Duration::from_millis(500));
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bioxen server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let start = match start_options(config, config_path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bioxen server: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(crate::client::Client::connect_or_start(
        socket, "server", &start,
    )) {
        Ok(c) => {
            println!(
                "bioxen server: pid {} on {}",
                c.server_pid,
                socket.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bioxen server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// How commands start a server on demand: this binary, this config, logging to
/// `<log_dir>/server.log`.
pub fn start_options(
    config: &Config,
    config_path: Option<&std::path::Path>,
) -> std::io::Result<crate::client::StartOptions> {
    Ok(crate::client::StartOptions {
        exe: std::env::current_exe()?,
        config: config_path
            .map(|p| p.to_path_buf())
            .or_else(|| config.path().map(|p| p.to_path_buf())),
        log: config.log_dir().join("server.log"),
    })
}
