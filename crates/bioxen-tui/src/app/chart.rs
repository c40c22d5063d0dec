//! The chart in the list's details box: the selected VM's CPU, memory and progress
//! over a window the user picks with `[` and `]`. The server keeps the history; the
//! dashboard asks for the selected row's window when the selection, the window or the
//! list changes, never on a timer, so an idle dashboard stays idle.

use std::time::{Duration, Instant};

use bioxen_proto::{HistoryOf, Series, VmRef, Window};

use super::{App, Call, Level, Row};

/// What the chart shows, and what was last asked for it.
#[derive(Debug, Default)]
pub struct Chart {
    pub window: Window,
    /// The series shown, whose and over which window.
    pub shown: Option<(HistoryOf, Window, Series)>,
    /// The last request: whose, which window, when, and the list generation it saw.
    asked: Option<(HistoryOf, Window, Instant, u64)>,
    /// Counts lists and pool updates received: new figures may be in.
    generation: u64,
}

/// The figures of a row the chart follows.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Figures {
    cpu: Option<f32>,
    memory: Option<u64>,
    recent: Vec<u16>,
    progress: Option<u8>,
}

/// An answer lost on the way is asked for again after this long.
const ANSWER_PATIENCE: Duration = Duration::from_secs(5);

impl Chart {
    /// The series to draw for `of`, if it is what was last received for it.
    pub fn series_for(&self, of: &HistoryOf) -> Option<(Window, &Series)> {
        match &self.shown {
            Some((whose, window, series)) if whose == of => Some((*window, series)),
            _ => None,
        }
    }
}

impl App {
    /// Whose history the chart would show: the selected session or pool VM, while the
    /// list (and its details box) is on screen.
    pub fn chart_subject(&self) -> Option<HistoryOf> {
        self.areas().list?;
        match self.current_row()? {
            Row::Session(info) => Some(HistoryOf::Vm(VmRef::Id(info.vm))),
            Row::Pool(vm) => Some(HistoryOf::PoolVm(vm.reference.clone())),
            Row::Group(_) => None,
        }
    }

    /// What the selected row shows of its figures: when a list or the pool's state
    /// changes it, the chart has news to ask for.
    pub(super) fn shown_figures(&self) -> Option<Figures> {
        Some(match self.current_row()? {
            Row::Session(i) => Figures {
                cpu: i.cpu_percent,
                memory: i.rss_bytes,
                recent: i.recent_cpu.clone(),
                progress: i.progress.map(|p| p.percent),
            },
            Row::Pool(vm) => Figures {
                cpu: vm.cpu_percent,
                memory: vm.memory_used,
                recent: vm.recent_cpu.clone(),
                progress: None,
            },
            Row::Group(_) => return None,
        })
    }

    /// Counts news for the chart when the selected row's figures changed since
    /// `before`: other VMs' lists cost the chart nothing.
    pub(super) fn figures_arrived(&mut self, before: Option<Figures>) {
        if self.shown_figures() != before {
            self.chart.generation += 1;
        }
    }

    /// Asks for the chart's series when the selection or window changed, or when the
    /// list brought news and a step of the window has passed since the last ask.
    pub(super) fn ask_history(&mut self) {
        let Some(of) = self.chart_subject() else {
            return;
        };
        let window = self.chart.window;
        let due = match &self.chart.asked {
            Some((whose, w, at, generation)) if *whose == of && *w == window => {
                let answered = self
                    .chart
                    .shown
                    .as_ref()
                    .is_some_and(|(s, sw, _)| *s == of && *sw == window);
                let waited = self.now.saturating_duration_since(*at);
                match answered {
                    true => {
                        *generation != self.chart.generation
                            && waited >= Duration::from_secs(window.step_secs())
                    }
                    false => waited >= ANSWER_PATIENCE,
                }
            }
            _ => true,
        };
        if due {
            self.chart.asked = Some((of.clone(), window, self.now, self.chart.generation));
            self.call(Call::History { of, window });
        }
    }

    pub(super) fn on_history(
        &mut self,
        of: HistoryOf,
        window: Window,
        result: Result<Series, String>,
    ) {
        // An error is a VM that has just gone, or a pool VM the pool has given no
        // figures for yet: the list says the first, and the chart says the second.
        if let Ok(series) = result {
            self.chart.shown = Some((of, window, series));
            self.dirty = true;
        }
    }

    /// `[` and `]`: a shorter or longer window.
    pub(super) fn chart_window(&mut self, longer: bool) {
        let now = self.chart.window;
        let next = if longer { now.longer() } else { now.shorter() };
        if next == now {
            let end = if longer { "longest" } else { "shortest" };
            return self.set_message(
                format!("the chart shows {} already, its {end}", now.label()),
                Level::Info,
            );
        }
        self.chart.window = next;
        self.set_message(format!("chart: last {}", next.label()), Level::Info);
    }
}
