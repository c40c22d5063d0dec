//! The `bioxen` command: the dashboard by default, plus `lua`, `run` and `ls`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use bioxen::config::Config;
use bioxen::error::Error;
use bioxen::vm::VmKind;

#[derive(Parser)]
#[command(
    name = "bioxen",
    version,
    about = "A terminal dashboard for interactive Lua VMs"
)]
struct Cli {
    /// Configuration file (default: ./bioxen.toml, then ~/.config/bioxen/bioxen.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The embedded Lua 5.4 interpreter (takes the same options as `lua`).
    Lua {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run Lua in a fresh VM and print its output; exits 1 when the code raised an error.
    Run {
        /// VM kind: local (default), ssh or xcpng.
        #[arg(long, default_value = "local")]
        kind: String,
        /// Lua code to run (may be given several times).
        #[arg(short = 'e', value_name = "CODE")]
        exec: Vec<String>,
        /// Longest time one chunk may run, in seconds.
        #[arg(long, default_value_t = 600.0)]
        timeout: f64,
        /// A Lua script to run after the -e chunks.
        file: Option<String>,
    },
    /// List the VMs of running dashboards and the configured hosts.
    Ls {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    // `bioxen lua ...` takes the reference interpreter's options verbatim (`-v`, `-i`,
    // `-`, ...), so it bypasses the argument parser, and starts fast.
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("lua") {
        let code = bioxen::repl::main(argv[2..].to_vec());
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bioxen: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        None => bioxen::ui::run(config),
        Some(Command::Lua { .. }) => unreachable!("handled before argument parsing"),
        Some(Command::Run {
            kind,
            exec,
            timeout,
            file,
        }) => {
            if exec.is_empty() && file.is_none() {
                eprintln!("bioxen run: give Lua code with -e CODE or a script FILE");
                return ExitCode::from(2);
            }
            let kind = match kind.parse::<VmKind>() {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("bioxen run: {e}");
                    return ExitCode::from(2);
                }
            };
            let args = bioxen::cli::run::RunArgs {
                kind,
                exec,
                file,
                timeout: Duration::from_secs_f64(timeout.max(0.1)),
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("bioxen: cannot start: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(bioxen::cli::run::run(&config, args)) {
                Ok(code) => ExitCode::from(code as u8),
                Err(e) => {
                    eprintln!("bioxen run: {e}");
                    ExitCode::from(match e {
                        Error::Config(_) => 2,
                        _ => 1,
                    })
                }
            }
        }
        Some(Command::Ls { json }) => {
            let rows = bioxen::cli::ls::rows(&config);
            if json {
                println!("{}", serde_json::Value::Array(rows));
            } else {
                print!("{}", bioxen::cli::ls::table(&rows));
            }
            ExitCode::SUCCESS
        }
    }
}
