//! Sorting the VM list, as k9s does: a key per column (`N S C M A P`), the same key
//! again the other way, an arrow in the column's header. The selection is a VM, not a
//! row, so it stays on its VM when the order changes; tabs keep their order.

use bioxen_proto::{Busy, VmInfo};

use super::*;

/// What the list is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Name,
    State,
    Cpu,
    Mem,
    Uptime,
    Progress,
}

impl SortBy {
    pub fn label(self) -> &'static str {
        match self {
            SortBy::Name => "name",
            SortBy::State => "state",
            SortBy::Cpu => "CPU",
            SortBy::Mem => "memory",
            SortBy::Uptime => "uptime",
            SortBy::Progress => "progress",
        }
    }

    /// Figures sort largest first, names and states in their order.
    fn descending_first(self) -> bool {
        !matches!(self, SortBy::Name | SortBy::State)
    }
}

/// The list's order: by what, and which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub by: SortBy,
    pub descending: bool,
}

impl Sort {
    /// The arrow the header shows beside the sorted column.
    pub fn arrow(self) -> &'static str {
        if self.descending { "▼" } else { "▲" }
    }
}

impl App {
    /// Sorts by `by`, or the other way when it is sorted by it already.
    pub(super) fn sort_by(&mut self, by: SortBy) {
        let descending = match self.sort {
            Some(s) if s.by == by => !s.descending,
            _ => by.descending_first(),
        };
        let sort = Sort { by, descending };
        self.sort = Some(sort);
        self.set_message(
            format!("sorted by {} {}", by.label(), sort.arrow()),
            Level::Info,
        );
    }

    /// The sessions in the list's order: creation order until sorted, and in it when
    /// two are level.
    pub(super) fn in_order(&self) -> Vec<&VmInfo> {
        let mut rows: Vec<&VmInfo> = self.rows.iter().collect();
        let Some(sort) = self.sort else {
            return rows;
        };
        rows.sort_by(|a, b| {
            let order = match sort.by {
                SortBy::Name => a.name.cmp(&b.name),
                SortBy::State => state_rank(a).cmp(&state_rank(b)),
                SortBy::Cpu => figure(a.cpu_percent).total_cmp(&figure(b.cpu_percent)),
                SortBy::Mem => a.rss_bytes.cmp(&b.rss_bytes),
                SortBy::Uptime => a.uptime_secs.cmp(&b.uptime_secs),
                SortBy::Progress => {
                    let p = |i: &VmInfo| self.progress(i).map(|p| i32::from(p.percent));
                    p(a).cmp(&p(b))
                }
            };
            if sort.descending {
                order.reverse()
            } else {
                order
            }
        });
        rows
    }
}

fn figure(v: Option<f32>) -> f32 {
    v.unwrap_or(-1.0)
}

/// Busy first, then at the prompt, starting, waiting, lost, and ended last.
fn state_rank(info: &VmInfo) -> u8 {
    match &info.state {
        s if s.is_alive() && info.busy == Some(Busy::Idle) => 1,
        VmState::Running => 0,
        VmState::Starting | VmState::Reconnecting(_) => 2,
        VmState::Waiting(_) => 3,
        VmState::Lost(_) => 4,
        VmState::Exited(0) => 5,
        _ => 6,
    }
}
