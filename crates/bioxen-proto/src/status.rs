//! A VM's row in the list: what `bioxen ls` and the list pane show, and what its
//! interpreter said about itself.

use serde::{Deserialize, Serialize};

use crate::VmId;
use crate::vm::{VmKind, VmState};

/// Why a session asks for attention.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Alert {
    /// It rang the bell.
    Bell,
    /// It sent a notification (OSC 9 or OSC 777).
    Note(String),
    /// Its interpreter came back to the prompt after running something.
    Idle,
    /// Its interpreter came back to the prompt after something that raised an error.
    Failed,
    /// It printed nothing for this many seconds while not at its prompt.
    Silence(u64),
}

/// A row of `list()`: what the VM list pane and `bioxen ls` show.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct VmInfo {
    /// Who the session is: see [`VmId`].
    pub vm: VmId,
    /// What it is called: a label, which a rename changes.
    pub name: String,
    pub kind: VmKind,
    #[serde(flatten)]
    pub state: VmState,
    pub command: String,
    pub pid: Option<u32>,
    pub cpu_percent: Option<f32>,
    pub rss_bytes: Option<u64>,
    /// Seconds since the current process started.
    pub uptime_secs: u64,
    pub attached: bool,
    /// Seconds since the Unix epoch when the session was created.
    pub created_unix: u64,
    /// `user@host:port` of a remote VM.
    pub remote: Option<String>,
    /// The pool VM (`OpaqueRef:…`) an `xcpng` session runs on.
    pub pool_vm: Option<String>,
    /// The pool an `xcpng` session is on, by its name in `bioxen.toml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// At its prompt or running something, when the interpreter marks its prompts
    /// (OSC 133: the embedded REPL, and `lua -i` through `_PROMPT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy: Option<Busy>,
    /// How far along the VM says it is (OSC 9;4); gone when it exits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Counts progress reports: a report repeating the last one is still news to a
    /// dashboard that times progress out when the VM stops reporting.
    #[serde(default)]
    pub progress_seq: u64,
    /// Milliseconds from the last progress report to when this was made: a dashboard
    /// that opens later times the report out from when it was made, not from when it
    /// first heard of it.
    #[serde(default)]
    pub progress_age_ms: u64,
    /// The VM's latest status line (`bioxen.status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Seconds without output after which the VM raises a silence alert; 0 is off.
    #[serde(default)]
    pub silence_secs: u64,
    /// The experiment the VM was started by, with its spec and restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<crate::Membership>,
    /// CPU in whole percents per [`crate::SPARK_STEP_SECS`], oldest first, over the
    /// last [`crate::SPARK_STEPS`] steps the server measured: the list's sparkline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_cpu: Vec<u16>,
}

/// How far along a VM says it is (OSC 9;4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub state: ProgressState,
    /// 0 to 100; meaningless while indeterminate.
    pub percent: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProgressState {
    Normal,
    Error,
    Indeterminate,
    Paused,
}

/// Where the interpreter is, as its prompt markers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Busy {
    /// At its prompt, waiting for input.
    Idle,
    /// Running what it was given.
    Busy,
}

/// What a piece of Lua printed, and the error it raised, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecResult {
    /// Everything the code printed, with `\r\n` turned back into `\n`.
    pub output: String,
    /// The error message with its traceback, when the code raised an error (or did
    /// not compile).
    pub error: Option<String>,
}

impl ExecResult {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}
