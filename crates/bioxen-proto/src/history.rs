//! A VM's recent past as the server keeps it: what a chart draws, what the list's
//! sparkline sums up, and what `bioxen ls --json --history` gives to scripts.

use serde::{Deserialize, Serialize};

use crate::VmRef;

/// The list's sparkline: CPU over the last two minutes, one figure per ten seconds of
/// the clock (:00 to :09, :10 to :19...), twelve columns wide. The newest is the ten
/// seconds under way, so a loop shows within a second of starting, and a finished
/// step never changes, so an idle line stays still.
pub const SPARK_STEP_SECS: u64 = 10;
pub const SPARK_STEPS: usize = 12;

/// The height (0 to 7) a sparkline draws a CPU figure at: 0 idle, 7 a core or more.
/// The server tells clients of a sparkline only when a height changes.
pub fn spark_level(cpu_percent: u16) -> u8 {
    match cpu_percent {
        0 => 0,
        c => (usize::from(c.min(100)) * 7).div_ceil(100).max(1) as u8,
    }
}

/// How far back a chart looks, and at which resolution the server keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Window {
    /// The last ten minutes, one sample a second.
    #[default]
    #[serde(rename = "10m")]
    TenMinutes,
    /// The last hour, one sample per ten seconds.
    #[serde(rename = "1h")]
    Hour,
    /// The last day, one sample per ten seconds.
    #[serde(rename = "24h")]
    Day,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::TenMinutes, Window::Hour, Window::Day];

    pub fn secs(self) -> u64 {
        match self {
            Window::TenMinutes => 600,
            Window::Hour => 3600,
            Window::Day => 86_400,
        }
    }

    pub fn step_secs(self) -> u64 {
        match self {
            Window::TenMinutes => 1,
            Window::Hour | Window::Day => 10,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Window::TenMinutes => "10 min",
            Window::Hour => "1 h",
            Window::Day => "24 h",
        }
    }

    /// The next longer window, or this one when it is the longest.
    pub fn longer(self) -> Window {
        let at = Window::ALL.iter().position(|w| *w == self).unwrap_or(0);
        Window::ALL[(at + 1).min(Window::ALL.len() - 1)]
    }

    pub fn shorter(self) -> Window {
        let at = Window::ALL.iter().position(|w| *w == self).unwrap_or(0);
        Window::ALL[at.saturating_sub(1)]
    }
}

/// Whose history: a session, or a pool VM that has none (by its `OpaqueRef`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HistoryOf {
    Vm(VmRef),
    PoolVm(String),
}

/// Evenly spaced samples, oldest first, the last standing for the step that ends at
/// `end_unix`. Columns rather than rows: a chart draws one series at a time. `None`
/// is a step nobody measured (the VM was not running, the pool did not answer).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub step_secs: u64,
    pub end_unix: u64,
    /// Percent of one core: 250 is two and a half cores busy.
    pub cpu_percent: Vec<Option<f32>>,
    /// Resident memory of the VM's processes (a pool VM's memory in use).
    pub rss_bytes: Vec<Option<u64>>,
    /// The last progress report in the step (OSC 9;4), 0 to 100.
    pub progress: Vec<Option<u8>>,
    /// How much of the step the interpreter was running something rather than
    /// waiting at its prompt, in percent.
    pub busy_percent: Vec<Option<u8>>,
}

impl Series {
    pub fn len(&self) -> usize {
        self.cpu_percent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cpu_percent.iter().all(Option::is_none)
    }
}
