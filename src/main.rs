//! The `bioxen` command: the dashboard by default, and the subcommands of
//! [`Command`], each run by its module in `cli/`. This file only dispatches.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use bioxen::cli::args::{Cli, Command};
use bioxen::cli::{self, die_quietly_on_closed_pipe};
use bioxen::config::Config;

fn main() -> ExitCode {
    // `bioxen lua ...` takes the reference interpreter's options verbatim (`-v`, `-i`,
    // `-`, ...), so it bypasses the argument parser, and starts fast.
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("lua") {
        let code = bioxen::repl::main(argv[2..].to_vec());
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    // Asked by scripts and package checks, often: answered before clap builds the
    // whole command tree, which is most of the time a bare start takes. The same
    // words clap's own `--version` prints.
    if argv.len() == 2 && matches!(argv[1].as_str(), "--version" | "-V") {
        println!("bioxen {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let cli = Cli::parse();
    if let Some(code) = describe_bioxen(&cli.command) {
        return code;
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bioxen: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.command.is_some() {
        for w in &config.warnings {
            eprintln!("bioxen: warning: {w}");
        }
    }
    // The server commands talk to, and the directory whose registry `ls` reads.
    let socket = bioxen::server::socket_path(cli.name.as_deref(), cli.socket.as_deref());
    let config_path = cli.config.as_deref();
    match cli.command {
        None => cli::dashboard::open(config, config_path, socket),
        Some(Command::Attach { vm, read_only }) => {
            cli::dashboard::attach(config, socket, vm, read_only)
        }
        Some(Command::Send { vm, text, enter }) => cli::script::send(&socket, vm, text, enter),
        Some(Command::Capture { vm, start, escapes }) => {
            cli::script::capture(&socket, vm, start, escapes)
        }
        Some(Command::Wait { vm, until, timeout }) => {
            cli::script::wait(&socket, vm, &until, timeout)
        }
        Some(Command::Run(args)) => cli::run::command(&config, args),
        Some(Command::Sim(args)) => cli::sim::command(args),
        Some(Command::Server { foreground }) => {
            cli::server::command(&config, config_path, &socket, foreground)
        }
        Some(Command::KillServer) => cli::control::kill_server(&socket),
        Some(Command::Kill { vm }) => cli::control::kill(&socket, vm),
        Some(Command::Rename { vm, new }) => cli::control::rename(&socket, vm, new),
        Some(Command::Up {
            file,
            detach,
            force,
        }) => cli::experiment::up(config, config_path, socket, file, detach, force),
        Some(Command::Down { file }) => cli::experiment::down(config, &socket, file),
        Some(Command::Keys {
            action,
            mode,
            prefix,
        }) => {
            die_quietly_on_closed_pipe();
            cli::keys::command(&config, action.as_deref(), &mode, prefix)
        }
        Some(Command::Ls { json, history }) => cli::ls::command(&config, &socket, json, history),
        Some(Command::Logs(request)) => cli::logs::command(&config, &socket, &request),
        Some(Command::Lua { .. } | Command::Completions { .. } | Command::Man | Command::Demo) => {
            unreachable!("run by describe_bioxen, before the configuration is read")
        }
    }
}

/// The commands that describe bioxen itself or bring their own configuration: they
/// run before `bioxen.toml` is read.
fn describe_bioxen(command: &Option<Command>) -> Option<ExitCode> {
    match command {
        Some(Command::Completions { shell }) => {
            die_quietly_on_closed_pipe();
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "bioxen", &mut std::io::stdout());
            Some(ExitCode::SUCCESS)
        }
        Some(Command::Man) => {
            die_quietly_on_closed_pipe();
            let man = clap_mangen::Man::new(Cli::command());
            Some(match man.render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("bioxen man: {e}");
                    ExitCode::FAILURE
                }
            })
        }
        Some(Command::Demo) => Some(cli::demo::run()),
        // Reached only when an option came first (`bioxen --config F lua`).
        Some(Command::Lua { args }) => Some(ExitCode::from(
            bioxen::repl::main(args.clone()).clamp(0, 255) as u8,
        )),
        _ => None,
    }
}
