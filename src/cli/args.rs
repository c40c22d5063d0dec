//! The command line, as clap reads it: one type per command, which `main` hands to the
//! module of `cli/` that runs it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bioxen",
    version,
    about = "A terminal dashboard for interactive Lua VMs"
)]
pub struct Cli {
    /// Configuration file (default: ./bioxen.toml, then ~/.config/bioxen/bioxen.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The server's socket name: separate servers, as with tmux -L.
    #[arg(
        short = 'L',
        global = true,
        value_name = "NAME",
        conflicts_with = "socket"
    )]
    pub name: Option<String>,
    /// The server's socket path (default: $XDG_RUNTIME_DIR/bioxen/server.sock).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// The embedded Lua 5.4 interpreter (takes the same options as `lua`).
    Lua {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run Lua in a fresh VM and print its output; exits 1 when the code raised an error.
    Run(RunCli),
    /// Try the XCP-ng flow with nothing set up: a simulated pool whose guests answer
    /// SSH, and the dashboard configured for it (nothing of yours is read or written).
    Demo,
    /// Run an XAPI simulator (a fake XCP-ng pool) for tests and demos.
    Sim(SimCli),
    /// List the VMs of running dashboards and the configured hosts.
    Ls {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// With --json: each VM's CPU, memory, progress and work over the last ten
        /// minutes (1 s steps) and day (10 s steps), as the server kept them.
        #[arg(long, requires = "json")]
        history: bool,
    },
    /// Print what a VM printed, from its output log: the text its screen showed, one
    /// line per line (works for VMs that have ended, and for those of a server that
    /// is gone).
    Logs(LogsCli),
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
    Attach {
        vm: Option<String>,
        /// Show everything and change nothing: no keys reach a VM, no size changes
        /// (as `tmux attach -r`). The status bar says READ-ONLY.
        #[arg(short, long)]
        read_only: bool,
    },
    /// Type TEXT into a VM, as if typed (as `tmux send-keys -l`).
    Send {
        vm: String,
        text: String,
        /// Press Enter after the text.
        #[arg(long)]
        enter: bool,
    },
    /// Print a VM's screen, and with -S -N its history too (as `tmux capture-pane -p`).
    Capture {
        vm: String,
        /// Start this many lines back in the history (-100), or at this screen row.
        #[arg(
            short = 'S',
            long = "start",
            allow_negative_numbers = true,
            value_name = "LINE"
        )]
        start: Option<i64>,
        /// Keep colours and attributes, as escape sequences.
        #[arg(short = 'e', long = "escapes")]
        escapes: bool,
    },
    /// Wait until a VM is at its prompt (idle), has ended (exited), or shows a line
    /// matching REGEX; exits 1 when it ends first or the time runs out.
    Wait {
        vm: String,
        /// idle, exited, or a regular expression.
        until: String,
        /// Give up after this many seconds (default: a day).
        #[arg(long, value_name = "SECS")]
        timeout: Option<f64>,
    },
    /// End every VM of the server, and the server.
    KillServer,
    /// End a VM of the server and forget it.
    Kill { vm: String },
    /// Give a VM of the server a new name (as tmux's rename-window).
    Rename { vm: String, new: String },
    /// Start an experiment: the VMs an experiment file declares (default: the [[vm]]
    /// tables of bioxen.toml) that are not running yet, each once its dependencies are
    /// ready; then open the dashboard.
    Up {
        /// The experiment file.
        file: Option<PathBuf>,
        /// Return once the VMs are started, without opening the dashboard.
        #[arg(short, long)]
        detach: bool,
        /// Restart VMs whose spec changed since they were started.
        #[arg(long)]
        force: bool,
    },
    /// End and forget an experiment's VMs.
    Down {
        /// The experiment file (default: the [[vm]] tables of bioxen.toml).
        file: Option<PathBuf>,
    },
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell.
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff).
    Man,
}

#[derive(Args)]
pub struct RunCli {
    /// VM kind: local (default), ssh or xcpng.
    #[arg(long, default_value = "local")]
    pub kind: String,
    /// Longest time the run may take, in seconds (no limit by default).
    #[arg(long)]
    pub timeout: Option<f64>,
    /// `lua`'s own command line, after bioxen's options: `-e CODE`, `-l MOD`, `-W`,
    /// `-E`, `-i`, `-v`, then a script (`-` or none: stdin) and its arguments.
    #[arg(
        value_name = "LUA ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub lua: Vec<String>,
    /// For --kind ssh: the [[ssh_hosts]] entry to run on.
    #[arg(long)]
    pub host: Option<String>,
    /// For --kind xcpng: the pool to run on, by its [[xcpng]] name (the first one
    /// configured by default).
    #[arg(long)]
    pub pool: Option<String>,
    /// For --kind xcpng: keep the pool VM instead of destroying it afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Accept an unknown SSH host key and remember it in known_hosts.
    #[arg(long)]
    pub accept_new_host_key: bool,
    /// Install a package with luarocks first: NAME or NAME@VERSION (may be repeated).
    #[arg(long, value_name = "NAME[@VERSION]")]
    pub install: Vec<String>,
}

#[derive(Args)]
pub struct LogsCli {
    /// The VM's name (the newest VM to bear it) or number.
    pub vm: String,
    /// Go on printing what it prints.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(short = 'n', long = "lines", value_name = "N")]
    pub lines: Option<usize>,
    /// Only what arrived in this last while: 90s, 10m, 2h, 1d.
    #[arg(long, value_name = "AGE")]
    pub since: Option<String>,
    /// Begin each line with the time it arrived.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// The bytes as the VM wrote them, escapes and all.
    #[arg(long, conflicts_with = "timestamps")]
    pub raw: bool,
}

#[derive(Args)]
pub struct SimCli {
    /// Address to listen on; loopback unless told otherwise.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// User name the pool accepts.
    #[arg(long, default_value = "root")]
    pub user: String,
    /// Environment variable holding the password the pool accepts (default: "password").
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// Milliseconds from VM start until the guest reports its IP.
    #[arg(long, default_value_t = 300)]
    pub boot_delay_ms: u64,
    /// The IPv4 address started VMs report, for guests served by an SSH server of
    /// your own there. Without it, each VM answers SSH itself at its own loopback
    /// address (127.0.0.2, 127.0.0.3, ...).
    #[arg(long, value_name = "IPV4")]
    pub guest_ip: Option<String>,
    /// The port the simulated guests answer SSH on.
    #[arg(long, default_value_t = 2222, value_name = "PORT")]
    pub ssh_port: u16,
    /// Public keys the guests accept (repeatable; default: ~/.ssh/*.pub).
    #[arg(long, value_name = "FILE")]
    pub authorized_keys: Vec<PathBuf>,
    /// Serve HTTPS with a generated self-signed certificate (its fingerprint is printed).
    #[arg(long)]
    pub tls: bool,
    /// Act as a pool member: logins answer HOST_IS_SLAVE naming this master address.
    #[arg(long, value_name = "ADDRESS")]
    pub member_of: Option<String>,
    /// As a member: the master's certificate fingerprint, sent with HOST_IS_SLAVE to
    /// a login that asks for it (so a client that pinned the member can pin the
    /// master).
    #[arg(long, value_name = "SHA256", requires = "member_of")]
    pub master_thumbprint: Option<String>,
    /// Milliseconds of latency added to every request.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Add this many plain halted VMs (for scale tests).
    #[arg(long, default_value_t = 0)]
    pub vms: usize,
    /// Make the next call of METHOD fail with an XAPI error, e.g. `VM.clone=SR_FULL`
    /// or `VM.start=VM_BAD_POWER_STATE,OpaqueRef:x,halted,running` (repeatable).
    #[arg(long = "fail", value_name = "METHOD=CODE[,PARAM...]", value_parser = parse_fail)]
    pub fail: Vec<(String, Vec<String>)>,
    /// Close the connection of the next N requests without answering.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub drop_next: u32,
    /// Answer the next N requests with HTTP 500.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub http500_next: u32,
    /// Answer the next N requests with a body that is neither XML nor JSON.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub garbage_next: u32,
    /// Milliseconds every `event.from` waits before answering.
    #[arg(long, default_value_t = 0)]
    pub event_delay_ms: u64,
}

/// `METHOD=CODE[,PARAM...]` for `bioxen sim --fail`.
pub fn parse_fail(text: &str) -> Result<(String, Vec<String>), String> {
    let (method, error) = text
        .split_once('=')
        .ok_or("expected METHOD=CODE[,PARAM...], e.g. VM.clone=SR_FULL")?;
    let description: Vec<String> = error.split(',').map(str::to_string).collect();
    if method.is_empty() || description[0].is_empty() {
        return Err("expected METHOD=CODE[,PARAM...], e.g. VM.clone=SR_FULL".into());
    }
    Ok((method.to_string(), description))
}
