//! What VMs say about themselves as the dashboard shows it: progress (timed out when
//! stale, summed up for the user's terminal tab), alerts and their marks, silence.

use super::*;

pub use bioxen_proto::PROGRESS_STALE;

/// Alerts a VM raised that the user has not looked at yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marks {
    pub bell: bool,
    pub silence: bool,
    /// Back at its prompt after running something.
    pub idle: bool,
    /// Back at its prompt after something that raised an error.
    pub failed: bool,
    pub exit: bool,
}

impl Marks {
    /// Flags as tmux shows them beside window names (`!` bell, `~` silence), with `✓`
    /// for back at the prompt, `✖` for back after an error and `■` for ended.
    pub fn flags(&self) -> String {
        [
            (self.bell, '!'),
            (self.silence, '~'),
            (self.idle && !self.failed, '✓'),
            (self.failed, '✖'),
            (self.exit, '■'),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, c)| *c)
        .collect()
    }
}

impl App {
    /// A VM's progress as the dashboard shows it: its last report, unless stale.
    pub fn progress(&self, info: &VmInfo) -> Option<Progress> {
        let (_, at) = self.progress_seen.get(&info.vm)?;
        info.progress
            .filter(|_| self.now.saturating_duration_since(*at) < PROGRESS_STALE)
    }

    /// The running VMs' progress taken together, for the user's terminal tab: the mean
    /// of their percentages, in error if one is, paused if one is.
    pub fn overall_progress(&self) -> Option<Progress> {
        let all: Vec<Progress> = self
            .rows
            .iter()
            .filter(|r| r.state.is_alive())
            .filter_map(|r| self.progress(r))
            .collect();
        let has = |s: ProgressState| all.iter().any(|p| p.state == s);
        let counted: Vec<u32> = all
            .iter()
            .filter(|p| p.state != ProgressState::Indeterminate)
            .map(|p| u32::from(p.percent))
            .collect();
        let state = if all.is_empty() {
            return None;
        } else if has(ProgressState::Error) {
            ProgressState::Error
        } else if has(ProgressState::Paused) {
            ProgressState::Paused
        } else if counted.is_empty() {
            ProgressState::Indeterminate
        } else {
            ProgressState::Normal
        };
        let percent = match counted.len() {
            0 => 0,
            n => (counted.iter().sum::<u32>() / n as u32) as u8,
        };
        Some(Progress { state, percent })
    }

    /// Sends the overall progress to the user's terminal when it changed.
    pub(super) fn report_progress(&mut self) {
        if !self.config.ui.progress {
            return;
        }
        let now = self.overall_progress();
        if now != self.outer_progress {
            self.outer_progress = now;
            self.effects.push(Effect::OuterProgress(now));
        }
    }

    /// Whether the user can see `vm` now: the selected VM, or a tile of the grid page
    /// shown. As tmux never flags a window on screen, these get no marks.
    pub(super) fn in_view(&self, vm: VmId) -> bool {
        self.current_vm() == Some(vm) || self.watching.contains_key(&vm)
    }

    /// An alert from a VM: marked unless the user can see it, said in
    /// the status bar when it carries words, and forwarded to the user's terminal if
    /// `[ui] notify` asks for it.
    pub(super) fn on_alert(&mut self, vm: VmId, alert: Alert) {
        let id = self.name_of(vm);
        let (kind, text) = match &alert {
            Alert::Bell => (AlertKind::Bell, format!("{id}: bell")),
            Alert::Note(note) => (AlertKind::Note, format!("{id}: {note}")),
            Alert::Idle => (AlertKind::Idle, format!("{id}: back at its prompt")),
            Alert::Failed => (
                AlertKind::Idle,
                format!("{id}: back at its prompt, after an error"),
            ),
            Alert::Silence(secs) => (AlertKind::Silence, format!("{id}: no output for {secs} s")),
        };
        if !self.in_view(vm) {
            let marks = self.marks.entry(vm).or_default();
            match alert {
                Alert::Bell => marks.bell = true,
                Alert::Idle => {
                    marks.idle = true;
                    marks.failed = false;
                }
                Alert::Failed => marks.failed = true,
                Alert::Silence(_) => marks.silence = true,
                Alert::Note(_) => {}
            }
        }
        if matches!(kind, AlertKind::Note | AlertKind::Silence) {
            self.set_message(text.clone(), Level::Info);
        }
        self.forward(kind, text);
        self.dirty = true;
    }

    pub(super) fn forward(&mut self, kind: AlertKind, text: String) {
        if self.config.ui.notify.includes(kind) {
            self.effects.push(Effect::Desktop(text));
        }
    }

    /// Steps the shown VM's silence alert through off, 10 s, 30 s, 1 min and 5 min.
    pub(super) fn cycle_silence(&mut self) {
        const STEPS: [u64; 5] = [0, 10, 30, 60, 300];
        let Some(info) = self.current_info() else {
            return;
        };
        let (vm, id) = (info.vm, info.name.clone());
        let at = STEPS.iter().position(|s| *s == info.silence_secs);
        let secs = STEPS[at.map_or(1, |i| (i + 1) % STEPS.len())];
        self.notify(Request::SetSilence {
            vm: vm.into(),
            secs,
        });
        let text = match secs {
            0 => format!("{id}: no silence alert"),
            s => format!("{id}: alert after {s} s without output (while not at its prompt)"),
        };
        self.set_message(text, Level::Info);
    }
}
