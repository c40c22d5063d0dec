//! An experiment as the server runs it: the VMs an experiment file declares, with
//! every matrix expanded, every path made absolute and every name checked, so the
//! server decides nothing about the file and only starts, waits and restarts.

use serde::{Deserialize, Serialize};

use crate::VmKind;

/// The VMs of one experiment, in the order the file gives them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    pub name: String,
    pub vms: Vec<PlannedVm>,
}

/// One VM of an experiment, as its spec: a second `up` with an equal spec leaves the
/// VM alone, a different one restarts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedVm {
    pub name: String,
    pub kind: VmKind,
    /// For `ssh`: the `[[ssh_hosts]]` entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The script the interpreter runs before its prompt (`lua -i script args`), an
    /// absolute path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// An absolute path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The file's `env`, then the matrix cell's variables (`LR=0.1`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<Dependency>,
    #[serde(default)]
    pub restart: Restart,
    #[serde(default)]
    pub max_restarts: u32,
    #[serde(default)]
    pub backoff_secs: f64,
    /// What a server that starts after a crash or a reboot does with it; `None` is
    /// the kind's default (`[local] restore` for local VMs, `rerun` for remote ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<Restore>,
}

/// A VM that must reach a point before this one starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    pub vm: String,
    pub until: Ready,
}

/// The point a dependency must reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ready {
    /// Its process is running.
    Started,
    /// Back at its prompt: the script has run.
    Idle,
    /// Exited with status 0.
    ExitedOk,
    /// Printed a line matching this regular expression.
    Log(String),
}

impl std::fmt::Display for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ready::Started => f.write_str("started"),
            Ready::Idle => f.write_str("idle"),
            Ready::ExitedOk => f.write_str("exited-ok"),
            Ready::Log(re) => write!(f, "log /{re}/"),
        }
    }
}

/// When the server starts a VM again after it exits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    #[default]
    No,
    /// After an exit with a status other than 0, or a signal.
    OnFailure,
    /// After any exit.
    Always,
}

/// What a server that starts after its predecessor was lost (killed, or the machine
/// rebooted) does with a VM that was running then.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restore {
    /// Shown as lost with its last screen; `r` or `bioxen up` starts it again.
    #[default]
    Ask,
    /// Started again from its spec (a held remote interpreter is attached to again).
    Rerun,
    /// Shown as lost with its last screen, and left so.
    Never,
}

impl Restore {
    pub const NAMES: [&str; 3] = ["ask", "rerun", "never"];

    pub fn from_name(name: &str) -> Option<Restore> {
        match name {
            "ask" => Some(Restore::Ask),
            "rerun" => Some(Restore::Rerun),
            "never" => Some(Restore::Never),
            _ => None,
        }
    }
}

/// What `up` did to each VM of the experiment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpReport {
    /// Made now (they may still wait for their dependencies).
    pub started: Vec<String>,
    /// Running with the same spec already: left alone.
    pub unchanged: Vec<String>,
    /// Running with another spec: restarted with the new one when forced, else left.
    pub changed: Vec<String>,
}

/// An experiment VM's place in its experiment, as `ls` and the list show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    /// The experiment's name.
    pub name: String,
    pub spec: PlannedVm,
    /// How many times the server started it again after it exited.
    pub restarts: u32,
}
