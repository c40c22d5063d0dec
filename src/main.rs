//! The `bioxen` command: the dashboard by default, and the subcommands of [`Command`].

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
    /// The server's socket name: separate servers, as with tmux -L.
    #[arg(
        short = 'L',
        global = true,
        value_name = "NAME",
        conflicts_with = "socket"
    )]
    name: Option<String>,
    /// The server's socket path (default: $XDG_RUNTIME_DIR/bioxen/server.sock).
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
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
        /// Longest time the run may take, in seconds (no limit by default).
        #[arg(long)]
        timeout: Option<f64>,
        /// `lua`'s own command line, after bioxen's options: `-e CODE`, `-l MOD`, `-W`,
        /// `-E`, `-i`, `-v`, then a script (`-` or none: stdin) and its arguments.
        #[arg(
            value_name = "LUA ARGS",
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        lua: Vec<String>,
        /// For --kind ssh: the [[ssh_hosts]] entry to run on.
        #[arg(long)]
        host: Option<String>,
        /// For --kind xcpng: keep the pool VM instead of destroying it afterwards.
        #[arg(long)]
        keep: bool,
        /// Accept an unknown SSH host key and remember it in known_hosts.
        #[arg(long)]
        accept_new_host_key: bool,
        /// Install a package with luarocks first: NAME or NAME@VERSION (may be repeated).
        #[arg(long, value_name = "NAME[@VERSION]")]
        install: Vec<String>,
    },
    /// Try the XCP-ng flow with nothing set up: a simulated pool whose guests answer
    /// SSH, and the dashboard configured for it (nothing of yours is read or written).
    Demo,
    /// Run an XAPI simulator (a fake XCP-ng pool) for tests and demos.
    Sim {
        /// Address to listen on; loopback unless told otherwise.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// User name the pool accepts.
        #[arg(long, default_value = "root")]
        user: String,
        /// Environment variable holding the password the pool accepts (default: "password").
        #[arg(long, value_name = "VAR")]
        password_env: Option<String>,
        /// Milliseconds from VM start until the guest reports its IP.
        #[arg(long, default_value_t = 300)]
        boot_delay_ms: u64,
        /// The IPv4 address started VMs report, for guests served by an SSH server of
        /// your own there. Without it, each VM answers SSH itself at its own loopback
        /// address (127.0.0.2, 127.0.0.3, ...).
        #[arg(long, value_name = "IPV4")]
        guest_ip: Option<String>,
        /// The port the simulated guests answer SSH on.
        #[arg(long, default_value_t = 2222, value_name = "PORT")]
        ssh_port: u16,
        /// Public keys the guests accept (repeatable; default: ~/.ssh/*.pub).
        #[arg(long, value_name = "FILE")]
        authorized_keys: Vec<PathBuf>,
        /// Serve HTTPS with a generated self-signed certificate (its fingerprint is printed).
        #[arg(long)]
        tls: bool,
        /// Act as a pool member: logins answer HOST_IS_SLAVE naming this master address.
        #[arg(long, value_name = "ADDRESS")]
        member_of: Option<String>,
        /// As a member: the master's certificate fingerprint, sent with HOST_IS_SLAVE to
        /// a login that asks for it (so a client that pinned the member can pin the
        /// master).
        #[arg(long, value_name = "SHA256", requires = "member_of")]
        master_thumbprint: Option<String>,
        /// Milliseconds of latency added to every request.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Add this many plain halted VMs (for scale tests).
        #[arg(long, default_value_t = 0)]
        vms: usize,
        /// Make the next call of METHOD fail with an XAPI error, e.g. `VM.clone=SR_FULL`
        /// or `VM.start=VM_BAD_POWER_STATE,OpaqueRef:x,halted,running` (repeatable).
        #[arg(long = "fail", value_name = "METHOD=CODE[,PARAM...]", value_parser = parse_fail)]
        fail: Vec<(String, Vec<String>)>,
        /// Close the connection of the next N requests without answering.
        #[arg(long, default_value_t = 0, value_name = "N")]
        drop_next: u32,
        /// Answer the next N requests with HTTP 500.
        #[arg(long, default_value_t = 0, value_name = "N")]
        http500_next: u32,
        /// Answer the next N requests with a body that is neither XML nor JSON.
        #[arg(long, default_value_t = 0, value_name = "N")]
        garbage_next: u32,
        /// Milliseconds every `event.from` waits before answering.
        #[arg(long, default_value_t = 0)]
        event_delay_ms: u64,
    },
    /// List the VMs of running dashboards and the configured hosts.
    Ls {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the dashboard's keys (as the help shows them), or the key of one action.
    Keys {
        /// An action's name, as in [keys.list] / [keys.prefix] (e.g. create, detach).
        action: Option<String>,
        /// Where the action is bound: list, or prefix (after the prefix key).
        #[arg(long, default_value = "list")]
        mode: String,
        /// Print the prefix key itself.
        #[arg(long, conflicts_with = "action")]
        prefix: bool,
    },
    /// Start the server that owns the VMs (started on demand by the commands that need it).
    Server {
        /// Serve in this process, for systemd --user units; logs go to stderr.
        #[arg(long)]
        foreground: bool,
    },
    /// Open the dashboard on the running server, attached to VM if given (as `tmux attach`).
    Attach { vm: Option<String> },
    /// End every VM of the server, and the server.
    KillServer,
    /// End a VM of the server and forget it.
    Kill { vm: String },
    /// Give a VM of the server a new name (as tmux's rename-window).
    Rename { vm: String, new: String },
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell.
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff).
    Man,
}

/// The simulated guests' SSH: the keys to accept (the user's own by default), and
/// stand-ins for `lua5.4` in a directory of this process's, removed at exit.
fn sim_guests(
    port: u16,
    keys: Vec<PathBuf>,
) -> Result<std::sync::Arc<bioxen::sim::guest::GuestConfig>, String> {
    let keys = if keys.is_empty() {
        let ssh_dir = std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".ssh"))
            .unwrap_or_default();
        std::fs::read_dir(&ssh_dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "pub"))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        keys
    };
    let config = bioxen::sim::guest::GuestConfig::with_keys_from(port, &keys)
        .map_err(|e| format!("reading the keys to accept: {e}"))?;
    if config.authorized.is_empty() {
        eprintln!(
            "bioxen sim: warning: the guests accept no key (none in ~/.ssh/*.pub); \
             give one with --authorized-keys FILE"
        );
    }
    let dir = std::env::temp_dir().join(format!("bioxen-sim-{}", std::process::id()));
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    config
        .with_fallback_lua(&dir, &exe)
        .map(std::sync::Arc::new)
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// `METHOD=CODE[,PARAM...]` for `bioxen sim --fail`.
fn parse_fail(text: &str) -> Result<(String, Vec<String>), String> {
    let (method, error) = text
        .split_once('=')
        .ok_or("expected METHOD=CODE[,PARAM...], e.g. VM.clone=SR_FULL")?;
    let description: Vec<String> = error.split(',').map(str::to_string).collect();
    if method.is_empty() || description[0].is_empty() {
        return Err("expected METHOD=CODE[,PARAM...], e.g. VM.clone=SR_FULL".into());
    }
    Ok((method.to_string(), description))
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
    if matches!(
        cli.command,
        Some(Command::Completions { .. } | Command::Man | Command::Keys { .. })
    ) {
        die_quietly_on_closed_pipe();
    }
    // These describe bioxen itself and need no configuration.
    match &cli.command {
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory;
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "bioxen", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Some(Command::Demo) => return bioxen::cli::demo::run(),
        Some(Command::Man) => {
            use clap::CommandFactory;
            let man = clap_mangen::Man::new(Cli::command());
            return match man.render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("bioxen man: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
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
    match cli.command {
        None => {
            let start = match start_options(&config, cli.config.as_deref()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("bioxen: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let launch = bioxen::ui::Launch {
                socket,
                start: Some(start),
                attach: None,
                vms_end_on_quit: false,
            };
            bioxen::ui::run(config, launch)
        }
        Some(Command::Attach { vm }) => bioxen::ui::run(
            config,
            bioxen::ui::Launch {
                socket,
                start: None,
                attach: vm,
                vms_end_on_quit: false,
            },
        ),
        Some(Command::Lua { .. }) => unreachable!("handled before argument parsing"),
        Some(Command::Run {
            kind,
            timeout,
            lua,
            host,
            keep,
            accept_new_host_key,
            install,
        }) => {
            let install: Result<Vec<_>, String> = install
                .iter()
                .map(|p| bioxen::rocks::PackageSpec::parse(p))
                .collect();
            let install = match install {
                Ok(specs) => specs,
                Err(e) => {
                    eprintln!("bioxen run: {e}");
                    return ExitCode::from(2);
                }
            };
            let kind = match kind.parse::<VmKind>() {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("bioxen run: {e}");
                    return ExitCode::from(2);
                }
            };
            let args = bioxen::cli::run::RunArgs {
                kind,
                lua,
                timeout: timeout.map(|t| Duration::from_secs_f64(t.max(0.1))),
                host,
                keep,
                accept_new_host_key,
                install,
            };
            let Some(runtime) = runtime() else {
                return ExitCode::FAILURE;
            };
            match runtime.block_on(bioxen::cli::run::run(&config, args)) {
                Ok(code) => ExitCode::from(code as u8),
                Err(e) => {
                    eprintln!("bioxen run: {}", bioxen::sanitize::lines(&e.to_string()));
                    ExitCode::from(match e {
                        Error::Config(_) => 2,
                        _ => 1,
                    })
                }
            }
        }
        Some(Command::Sim {
            listen,
            user,
            password_env,
            boot_delay_ms,
            guest_ip,
            ssh_port,
            authorized_keys,
            tls,
            member_of,
            master_thumbprint,
            latency_ms,
            vms,
            fail,
            drop_next,
            http500_next,
            garbage_next,
            event_delay_ms,
        }) => {
            let faults = bioxen::sim::Faults {
                latency: Duration::from_millis(latency_ms),
                drop_next,
                http500_next,
                garbage_next,
                fail_method: fail,
                event_delay: Duration::from_millis(event_delay_ms),
            };
            // The default password is the simulator's, known to all; one from a
            // variable is the user's and is never shown.
            let password_line = match &password_env {
                Some(var) => format!("password_env = \"{var}\""),
                None => "password = \"password\"".to_string(),
            };
            let password = match password_env {
                Some(var) => match std::env::var(&var) {
                    Ok(p) => p,
                    Err(_) => {
                        eprintln!("bioxen sim: ${var} is not set");
                        return ExitCode::from(2);
                    }
                },
                None => "password".to_string(),
            };
            let guests = match &guest_ip {
                Some(_) => None,
                None => match sim_guests(ssh_port, authorized_keys) {
                    Ok(g) => Some(g),
                    Err(e) => {
                        eprintln!("bioxen sim: {e}");
                        return ExitCode::from(2);
                    }
                },
            };
            let options = bioxen::sim::SimOptions {
                username: user,
                password,
                boot_delay: Duration::from_millis(boot_delay_ms),
                guest_ip: guest_ip.unwrap_or_else(|| "127.0.0.1".into()),
                guests: guests.clone(),
                member_of,
                master_thumbprint: master_thumbprint
                    .map(|t| t.trim_start_matches("sha256:").to_string()),
                host_address: listen.ip().to_string(),
                ..Default::default()
            };
            let Ok(runtime) = bioxen::runtime() else {
                eprintln!("bioxen sim: cannot start the runtime");
                return ExitCode::FAILURE;
            };
            runtime.block_on(async move {
                match bioxen::sim::SimServer::start(listen, options, tls).await {
                    Ok(server) => {
                        let armed = faults.describe();
                        if let Ok(mut f) = server.sim.faults.lock() {
                            *f = faults;
                        }
                        server.sim.add_bulk_vms(vms);
                        println!("bioxen sim: listening on {}", server.url);
                        if let Some(fp) = &server.fingerprint {
                            println!("bioxen sim: certificate {fp}");
                        }
                        for fault in armed {
                            println!("bioxen sim: fault armed: {fault}");
                        }
                        if let Some(g) = &guests {
                            println!(
                                "bioxen sim: guests answer SSH on port {} at 127.0.0.2 and up, for {} key(s)",
                                g.port,
                                g.authorized.len()
                            );
                        }
                        let user = &server.sim.options.username;
                        println!("bioxen sim: for bioxen.toml:");
                        println!("[xcpng]\nurl = \"{}\"\nusername = \"{user}\"\n{password_line}", server.url);
                        if let Some(fp) = &server.fingerprint {
                            println!("tls_fingerprint = \"{fp}\"");
                        }
                        if let Some(g) = &guests {
                            println!("[xcpng.ssh]\nport = {}", g.port);
                        }
                        if !listen.ip().is_loopback() {
                            eprintln!("bioxen sim: warning: listening on {}, reachable from other machines", listen.ip());
                        }
                        use std::io::Write;
                        let _ = std::io::stdout().flush();
                        let _ = bioxen::cli::wait_for_stop_signal().await;
                        // A guest's programs end with it, as a halted VM's do.
                        server.sim.stop_guests();
                        if let Some(dir) = guests.as_ref().and_then(|g| g.fallback_path.as_ref()) {
                            let _ = std::fs::remove_dir_all(dir);
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("bioxen sim: cannot listen on {listen}: {e}");
                        ExitCode::FAILURE
                    }
                }
            })
        }
        Some(Command::Completions { .. } | Command::Man | Command::Demo) => {
            unreachable!("handled above")
        }
        Some(Command::Server { foreground }) => {
            server(&config, cli.config.as_deref(), &socket, foreground)
        }
        Some(Command::KillServer) => with_client(&socket, |c| async move {
            c.shutdown_server().await?;
            Ok(())
        }),
        Some(Command::Kill { vm }) => with_client(&socket, |c| async move {
            let state = c.terminate_vm_session(&vm).await?;
            println!("{vm}: {}", state.label());
            Ok(())
        }),
        Some(Command::Rename { vm, new }) => with_client(&socket, |c| async move {
            c.rename(&vm, &new).await?;
            println!("{vm} is now {new}");
            Ok(())
        }),
        Some(Command::Keys {
            action,
            mode,
            prefix,
        }) => keys(&config, action.as_deref(), &mode, prefix),
        Some(Command::Ls { json }) => {
            let registry = socket
                .parent()
                .map(|p| p.to_path_buf())
                .unwrap_or_else(bioxen::registry::dir);
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                eprintln!("bioxen ls: cannot start the runtime");
                return ExitCode::FAILURE;
            };
            let rows = runtime.block_on(async {
                let mut rows = bioxen::cli::ls::rows_in(&config, &registry).await;
                rows.extend(bioxen::cli::ls::pool_rows(&config).await);
                rows
            });
            // The servers have all answered: only the printing is left.
            die_quietly_on_closed_pipe();
            if json {
                println!("{}", serde_json::Value::Array(rows));
            } else {
                print!("{}", bioxen::cli::ls::table(&rows));
            }
            ExitCode::SUCCESS
        }
    }
}

/// For commands that only print: a reader that stops reading (`| head`) ends the
/// process by SIGPIPE, silently, as it ends cat or ls. Rust ignores SIGPIPE, which
/// turns the closed pipe into a panic in `println!`. Commands that also talk to a
/// server or a VM keep it ignored, so a peer's closed socket stays an error.
fn die_quietly_on_closed_pipe() {
    // SAFETY: sets the disposition of one signal; nothing here relies on its being ignored.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// `bioxen keys`: the live keymap, the one the dashboard dispatches with and its help
/// shows; scripts ask it for an action's key rather than hard-coding one.
fn keys(config: &Config, action: Option<&str>, mode: &str, prefix: bool) -> ExitCode {
    use bioxen::keymap::{Keymap, Mode};
    let keymap = match Keymap::from_config(config) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("bioxen: {e}");
            return ExitCode::from(2);
        }
    };
    if prefix {
        println!("{}", keymap.prefix);
        return ExitCode::SUCCESS;
    }
    let Some(action) = action else {
        for (section, lines) in keymap.help() {
            println!("{section}");
            for (key, what) in lines {
                println!("  {key:<24} {what}");
            }
        }
        return ExitCode::SUCCESS;
    };
    let mode_name = mode;
    let mode = match mode {
        "list" => Mode::List,
        "prefix" => Mode::Prefix,
        other => {
            eprintln!("bioxen keys: unknown mode '{other}' (list or prefix)");
            return ExitCode::from(2);
        }
    };
    match keymap.key_of(mode, action) {
        Some(key) => {
            println!("{key}");
            ExitCode::SUCCESS
        }
        None => {
            let (other, other_name) = match mode {
                Mode::List => (Mode::Prefix, "prefix"),
                _ => (Mode::List, "list"),
            };
            if keymap.key_of(other, action).is_some() {
                eprintln!(
                    "bioxen keys: '{action}' is a {other_name} action: bioxen keys {action} --mode {other_name}"
                );
            } else {
                eprintln!(
                    "bioxen keys: no action '{action}' in {mode_name} mode; its actions are: {}",
                    keymap.names(mode).join(", ")
                );
            }
            ExitCode::FAILURE
        }
    }
}

/// `bioxen server`: serves in this process with `--foreground`; otherwise makes sure
/// one runs (starting it detached) and says where.
fn server(
    config: &Config,
    config_path: Option<&std::path::Path>,
    socket: &std::path::Path,
    foreground: bool,
) -> ExitCode {
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    if foreground {
        // Its stderr is its log (start.log, or a terminal): a full disk or a closed
        // terminal stops the log, never the server.
        let sink =
            bioxen::log_sink::LogSink::new(std::io::stderr(), "the server's log (its stderr)");
        let _ = bioxen::log_sink::install(sink, tracing::Level::INFO);
        let manager_config = match bioxen::ManagerConfig::from_config(config) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("bioxen server: {e}");
                return ExitCode::from(2);
            }
        };
        let options = bioxen::server::ServerOptions {
            exit_empty: config.server.exit_empty,
        };
        let result = runtime.block_on(bioxen::server::serve(manager_config, options, socket));
        // A password command still running (a pool login in progress) ends with the
        // server, and so does any task still blocked on one.
        bioxen::secret::kill_running();
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
    match runtime.block_on(bioxen::client::Client::connect_or_start(
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
fn start_options(
    config: &Config,
    config_path: Option<&std::path::Path>,
) -> std::io::Result<bioxen::client::StartOptions> {
    Ok(bioxen::client::StartOptions {
        exe: std::env::current_exe()?,
        config: config_path
            .map(|p| p.to_path_buf())
            .or_else(|| config.path().map(|p| p.to_path_buf())),
        log: config.log_dir().join("server.log"),
    })
}

/// Runs `f` with a connection to the running server; none running is an error.
fn with_client<F, Fut>(socket: &std::path::Path, f: F) -> ExitCode
where
    F: FnOnce(bioxen::client::Client) -> Fut,
    Fut: std::future::Future<Output = bioxen::client::Result<()>>,
{
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let result = runtime.block_on(async {
        let client = bioxen::client::Client::connect(socket, "cli").await?;
        f(client).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bioxen: {}", bioxen::sanitize::lines(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// The async runtime, or `None` having said why not.
fn runtime() -> Option<tokio::runtime::Runtime> {
    bioxen::runtime()
        .map_err(|e| eprintln!("bioxen: cannot start: {e}"))
        .ok()
}
