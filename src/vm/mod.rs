//! The kinds of VM bioxen runs and what every kind has in common.
//!
//! A backend hands the manager three things: a byte stream to read (the session's
//! output), a [`Sink`] to write keystrokes and resizes to, and a [`Control`] to stop it.
//! The manager and everything above it never know which kind they talk to.

pub mod holder;
pub mod known_hosts;
pub mod local;
pub mod proc_stats;
pub mod ssh;

use std::fmt;
use std::future::Future;
use std::str::FromStr;

use crate::error::{Error, Result};

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
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "local" | "basic" => Ok(VmKind::Local),
            "ssh" => Ok(VmKind::Ssh),
            "xcpng" => Ok(VmKind::Xcpng),
            other => Err(Error::Manager(format!(
                "unknown VM kind '{other}' (expected local, ssh or xcpng)"
            ))),
        }
    }
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
    pub fn checked(rows: u16, cols: u16) -> Result<Size, String> {
        if rows > Size::MAX || cols > Size::MAX {
            return Err(format!(
                "a terminal of {rows}x{cols} is too large: at most {max}x{max}",
                max = Size::MAX
            ));
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
}

/// What a session runs, per kind: each variant holds only what its kind uses, so an
/// ssh host on a local VM or a template on an ssh VM cannot be written down. The
/// manager builds it from [`VmOptions`] (the seeds' flat options) with [`VmSpec::new`],
/// which refuses an option the kind would ignore instead of ignoring it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmSpec {
    Local {
        /// Overrides the configured interpreter.
        command: Option<Vec<String>>,
        /// Added to the configured environment.
        env: Vec<(String, String)>,
    },
    Ssh {
        /// The `[[ssh_hosts]]` entry.
        host: String,
    },
    Xcpng {
        /// Defaults from `[xcpng]` where unset.
        template: Option<String>,
        memory_mib: Option<u64>,
        vcpus: Option<u32>,
        /// An existing pool VM (its ref and IPv4) instead of a new one.
        pool_vm: Option<(String, String)>,
    },
}

impl VmSpec {
    pub fn new(kind: VmKind, o: &VmOptions) -> Result<VmSpec, String> {
        let local = [
            o.command.is_some().then_some("command"),
            (!o.env.is_empty()).then_some("env"),
        ];
        let ssh = [o.host.is_some().then_some("host")];
        let xcpng = [
            o.template.is_some().then_some("template"),
            o.memory_mib.is_some().then_some("memory_mib"),
            o.vcpus.is_some().then_some("vcpus"),
            o.pool_vm.is_some().then_some("pool_vm"),
        ];
        let refuse = |options: &[Option<&str>], owner: VmKind| match options.iter().flatten().next()
        {
            Some(option) => Err(format!(
                "the option '{option}' is for {owner} VMs; a {kind} VM does not use it"
            )),
            None => Ok(()),
        };
        match kind {
            VmKind::Local => {
                refuse(&ssh, VmKind::Ssh)?;
                refuse(&xcpng, VmKind::Xcpng)?;
                Ok(VmSpec::Local {
                    command: o.command.clone().filter(|c| !c.is_empty()),
                    env: o.env.clone(),
                })
            }
            VmKind::Ssh => {
                refuse(&local, VmKind::Local)?;
                refuse(&xcpng, VmKind::Xcpng)?;
                let host = o.host.clone().ok_or(
                    "an ssh VM needs a host: the name of an [[ssh_hosts]] entry".to_string(),
                )?;
                Ok(VmSpec::Ssh { host })
            }
            VmKind::Xcpng => {
                refuse(&local, VmKind::Local)?;
                refuse(&ssh, VmKind::Ssh)?;
                Ok(VmSpec::Xcpng {
                    template: o.template.clone(),
                    memory_mib: o.memory_mib,
                    vcpus: o.vcpus,
                    pool_vm: o.pool_vm.clone(),
                })
            }
        }
    }

    pub fn kind(&self) -> VmKind {
        match self {
            VmSpec::Local { .. } => VmKind::Local,
            VmSpec::Ssh { .. } => VmKind::Ssh,
            VmSpec::Xcpng { .. } => VmKind::Xcpng,
        }
    }
}

/// The writing half of a session: keystrokes and window size.
pub trait Sink: Send + 'static {
    fn write_all(&mut self, data: &[u8]) -> impl Future<Output = std::io::Result<()>> + Send;
    fn resize(&mut self, size: Size) -> impl Future<Output = std::io::Result<()>> + Send;
}

/// Stopping a session and knowing its process.
pub trait Control: Send + Sync + 'static {
    /// The local process id, where there is one.
    fn pid(&self) -> Option<u32>;
    /// Ask the session to end (SIGTERM to its process group, closing the channel, ...).
    fn terminate(&self);
    /// End it now (SIGKILL to the process group).
    fn kill(&self);
    /// Close bioxen's link and leave the interpreter running where it is held, to be
    /// attached to again; false (and nothing done) when nothing holds it.
    fn detach(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_option_another_kind_uses_is_refused_by_name() {
        let with = |f: fn(&mut VmOptions)| {
            let mut o = VmOptions::default();
            f(&mut o);
            o
        };
        let host = with(|o| o.host = Some("lab".into()));
        let template = with(|o| o.template = Some("Debian".into()));
        let command = with(|o| o.command = Some(vec!["lua5.4".into()]));
        let env = with(|o| o.env = vec![("A".into(), "1".into())]);

        let err = VmSpec::new(VmKind::Local, &host).unwrap_err();
        assert!(err.contains("'host' is for ssh VMs"), "{err}");
        let err = VmSpec::new(VmKind::Ssh, &template).unwrap_err();
        assert!(err.contains("'template' is for xcpng VMs"), "{err}");
        let err = VmSpec::new(VmKind::Xcpng, &command).unwrap_err();
        assert!(err.contains("'command' is for local VMs"), "{err}");
        let err = VmSpec::new(VmKind::Ssh, &env).unwrap_err();
        assert!(err.contains("'env' is for local VMs"), "{err}");
        let err = VmSpec::new(VmKind::Ssh, &VmOptions::default()).unwrap_err();
        assert!(err.contains("needs a host"), "{err}");

        assert_eq!(
            VmSpec::new(VmKind::Ssh, &host),
            Ok(VmSpec::Ssh { host: "lab".into() })
        );
        assert_eq!(
            VmSpec::new(VmKind::Local, &command),
            Ok(VmSpec::Local {
                command: Some(vec!["lua5.4".into()]),
                env: Vec::new()
            })
        );
        assert_eq!(
            VmSpec::new(VmKind::Xcpng, &template).map(|s| s.kind()),
            Ok(VmKind::Xcpng)
        );
    }
}
