//! What a VM is as both sides speak of it: its kind, its state, its terminal size and
//! the options it is made with.

use std::fmt;
use std::str::FromStr;

/// Where a VM's Lua runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VmKind {
    /// A Lua interpreter in a pseudo-terminal on this machine.
    Local,
    /// Lua on an existing host over SSH.
    Ssh,
    /// A VM created on an XCP-ng pool, with Lua over SSH.
    Xcpng,
}

impl VmKind {
    pub const ALL: [VmKind; 3] = [VmKind::Local, VmKind::Ssh, VmKind::Xcpng];

    pub fn as_str(self) -> &'static str {
        match self {
            VmKind::Local => "local",
            VmKind::Ssh => "ssh",
            VmKind::Xcpng => "xcpng",
        }
    }
}

impl fmt::Display for VmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VmKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, UnknownKind> {
        match s {
            "local" | "basic" => Ok(VmKind::Local),
            "ssh" => Ok(VmKind::Ssh),
            "xcpng" => Ok(VmKind::Xcpng),
            other => Err(UnknownKind(other.to_string())),
        }
    }
}

/// A VM kind bioxen does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown VM kind '{0}' (expected local, ssh or xcpng)")]
pub struct UnknownKind(pub String);

/// A terminal size past [`Size::MAX`] on a side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a terminal of {rows}x{cols} is too large: at most {max}x{max}", max = Size::MAX)]
pub struct TooLarge {
    pub rows: u16,
    pub cols: u16,
}

/// The life of a session as the list pane shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "lowercase")]
pub enum VmState {
    Starting,
    Running,
    /// The interpreter exited on its own with this code.
    Exited(i32),
    /// The interpreter was ended by this signal.
    Killed(i32),
    /// The link to a remote VM was lost; this many reconnection attempts so far.
    Reconnecting(u32),
    /// The session could not start or broke; the reason is shown.
    Failed(String),
    /// An experiment VM not started yet: what it waits for (`loader: idle`).
    Waiting(String),
    /// An experiment VM that will not start: a dependency failed, or it was ended
    /// while it waited; the reason is shown.
    Blocked(String),
    /// Running when the server that held it was lost (killed, or the machine
    /// rebooted): when and why. Its last screen is kept; see `Restore`.
    Lost(String),
}

impl VmState {
    pub fn is_alive(&self) -> bool {
        matches!(
            self,
            VmState::Starting | VmState::Running | VmState::Reconnecting(_)
        )
    }

    /// A short label: `running`, `exited(3)`, `killed(SIGKILL)`.
    pub fn label(&self) -> String {
        match self {
            VmState::Starting => "starting".into(),
            VmState::Running => "running".into(),
            VmState::Reconnecting(n) => format!("reconnecting ({n})"),
            VmState::Exited(code) => format!("exited({code})"),
            VmState::Killed(sig) => format!("killed({})", signal_name(*sig)),
            VmState::Failed(why) => format!("failed({why})"),
            VmState::Waiting(what) => format!("waiting({what})"),
            VmState::Blocked(why) => format!("blocked({why})"),
            VmState::Lost(why) => format!("lost({why})"),
        }
    }
}

/// `SIGKILL` for 9, `SIG42` for signals without a common name.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        _ => return format!("SIG{sig}"),
    };
    name.to_string()
}

/// The number of a signal from its name (`TERM`, `SIGKILL`), as SSH reports them.
pub fn signal_number(name: &str) -> i32 {
    match name.trim_start_matches("SIG") {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "ABRT" => libc::SIGABRT,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "SEGV" => libc::SIGSEGV,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "USR1" => libc::SIGUSR1,
        _ => libc::SIGTERM,
    }
}

/// A terminal size in character cells, between 1x1 and [`Size::MAX`] on each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub rows: u16,
    pub cols: u16,
}

impl Size {
    /// The most rows or columns a terminal may have. A screen costs memory in
    /// proportion to rows × columns (3000x3000 is about 290 MB), so a size from a client
    /// or a window report past this is refused or cut, never allocated.
    pub const MAX: u16 = 1000;

    /// A size made to fit: zero becomes 1 and anything past [`Size::MAX`] becomes the
    /// maximum. For sizes bioxen computes itself (a pane, a tile, a window report).
    pub fn new(rows: u16, cols: u16) -> Self {
        Size {
            rows: rows.clamp(1, Size::MAX),
            cols: cols.clamp(1, Size::MAX),
        }
    }

    /// A size a client asked for: refused when either side is past [`Size::MAX`],
    /// so an oversized request gets an error instead of a quietly different size.
    pub fn checked(rows: u16, cols: u16) -> Result<Size, TooLarge> {
        if rows > Size::MAX || cols > Size::MAX {
            return Err(TooLarge { rows, cols });
        }
        Ok(Size::new(rows, cols))
    }
}

impl Default for Size {
    fn default() -> Self {
        Size::new(24, 80)
    }
}

/// What the caller may choose when creating a VM; the rest comes from the config.
#[derive(Debug, Clone, Default)]
pub struct VmOptions {
    /// Command line overriding the configured interpreter (already split into words).
    pub command: Option<Vec<String>>,
    /// Initial terminal size.
    pub size: Size,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// For `local`: the working directory (default from `[local] cwd`).
    pub cwd: Option<std::path::PathBuf>,
    /// For `ssh`: the `[[ssh_hosts]]` entry to connect to.
    pub host: Option<String>,
    /// For `xcpng`: the template to clone (default from `[xcpng]`).
    pub template: Option<String>,
    /// For `xcpng`: memory in MiB (default from `[xcpng]`).
    pub memory_mib: Option<u64>,
    /// For `xcpng`: vCPUs (default from `[xcpng]`).
    pub vcpus: Option<u32>,
    /// For `xcpng`: attach to this existing pool VM (its ref and IPv4) instead of
    /// creating one.
    pub pool_vm: Option<(String, String)>,
    /// For `xcpng`: the pool, by its name in `bioxen.toml`; the first one if unset.
    pub pool: Option<String>,
}
