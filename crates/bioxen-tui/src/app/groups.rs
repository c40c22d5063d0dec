//! Experiments in the list: each experiment's VMs under a header that folds, keys on
//! the header acting on the whole experiment, and `u` to start one from its file.

use std::path::PathBuf;

use bioxen_proto::{Busy, Experiment, UpReport};

use super::*;

/// Experiments of more VMs than this start folded: a 50-VM sweep would otherwise push
/// every other VM off the list.
pub const FOLD_ABOVE: usize = 20;

/// The experiment a session was started by, if any.
pub fn experiment_of(info: &VmInfo) -> Option<&str> {
    info.experiment.as_ref().map(|m| m.name.as_str())
}

/// What the list gathers VMs under; `G` goes through them in this order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GroupBy {
    /// Each experiment's VMs under its header; other VMs stand alone.
    #[default]
    Experiment,
    /// local, ssh, xcpng.
    Kind,
    /// The machine a VM runs on: this one, an SSH host, a pool's host.
    Host,
    /// The pool a VM is on; VMs on no pool stand alone.
    Pool,
    /// No headers.
    Nothing,
}

impl GroupBy {
    const ORDER: [GroupBy; 5] = [
        GroupBy::Experiment,
        GroupBy::Kind,
        GroupBy::Host,
        GroupBy::Pool,
        GroupBy::Nothing,
    ];

    pub fn next(self) -> GroupBy {
        let at = GroupBy::ORDER.iter().position(|g| *g == self).unwrap_or(0);
        GroupBy::ORDER[(at + 1) % GroupBy::ORDER.len()]
    }

    pub fn label(self) -> &'static str {
        match self {
            GroupBy::Experiment => "experiment",
            GroupBy::Kind => "kind",
            GroupBy::Host => "host",
            GroupBy::Pool => "pool",
            GroupBy::Nothing => "nothing",
        }
    }
}

/// The machine a session runs on, as a group's name: `user@host:port` loses its user
/// and port, a pool VM is on its pool's host.
fn host_of<'a>(app: &'a App, info: &'a VmInfo) -> &'a str {
    if let Some(vm) = app.pool_vm_of(info) {
        return vm.host.as_deref().unwrap_or("pool");
    }
    match info.remote.as_deref() {
        Some(remote) => {
            let host = remote.rsplit_once('@').map_or(remote, |(_, h)| h);
            host.rsplit_once(':').map_or(host, |(h, _)| h)
        }
        None => "this machine",
    }
}

impl App {
    /// The header a list row goes under in the current grouping.
    pub fn group_of<'a>(&'a self, row: &Row<'a>) -> Option<&'a str> {
        match (self.group_by, row) {
            (_, Row::Group(_)) | (GroupBy::Nothing, _) => None,
            (GroupBy::Experiment, Row::Session(info)) => experiment_of(info),
            (GroupBy::Experiment, Row::Pool(_)) => None,
            (GroupBy::Kind, Row::Session(info)) => Some(info.kind.as_str()),
            (GroupBy::Kind, Row::Pool(_)) => Some(VmKind::Xcpng.as_str()),
            (GroupBy::Host, Row::Session(info)) => Some(host_of(self, info)),
            (GroupBy::Host, Row::Pool(vm)) => Some(vm.host.as_deref().unwrap_or("pool")),
            // Named by the server, so a VM still being made is under its pool too.
            (GroupBy::Pool, Row::Session(info)) => info
                .pool
                .as_deref()
                .or_else(|| self.pool_vm_of(info).map(pool_name)),
            (GroupBy::Pool, Row::Pool(vm)) => Some(pool_name(vm)),
        }
    }

    /// `G`: the next grouping.
    pub(super) fn next_grouping(&mut self) {
        self.group_by = self.group_by.next();
        if matches!(self.current, Some(RowId::Group(_))) {
            self.current = None;
        }
        self.note_groups();
        self.refresh();
        self.set_message(format!("grouped by {}", self.group_by.label()), Level::Info);
        self.dirty = true;
    }
}

/// The pool a pool VM is on, as its group's name.
fn pool_name(vm: &PoolVm) -> &str {
    vm.pool.as_str()
}

/// An experiment's header as the list draws it: how its VMs are doing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSummary {
    pub vms: usize,
    /// Alive and not known to be at the prompt.
    pub running: usize,
    /// Alive and back at the prompt: the script has run.
    pub idle: usize,
    pub waiting: usize,
    /// Lost with the server before, waiting for `r` or `up` (or left ended).
    pub lost: usize,
    /// Exited with an error, killed, failed, or blocked by a dependency.
    pub failed: usize,
    /// Restarts of all its VMs together.
    pub restarts: u32,
    /// The mean of the progress its VMs report, over those that report.
    pub progress: Option<u8>,
}

/// The `u` prompt: the path of an experiment file, completed on Tab.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadForm {
    pub path: String,
    /// Why the last file was refused (its file:line:key), shown under the path.
    pub error: Option<String>,
    /// What Tab found when it could not decide alone.
    pub choices: Vec<String>,
    /// Sent to the server; the answer closes the prompt or says why not.
    pub pending: bool,
}

impl App {
    /// The listed sessions under the header `name`, in the server's order.
    pub fn group_members<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a VmInfo> {
        self.rows
            .iter()
            .filter(move |r| self.group_of(&Row::Session(r)) == Some(name))
    }

    /// How many of the group's sessions the list filter lets through.
    pub fn group_shown(&self, name: &str) -> usize {
        let f = self.filter.to_lowercase();
        self.group_members(name)
            .filter(|info| Row::Session(info).matches(&f, self))
            .count()
    }

    pub fn group_summary(&self, name: &str) -> GroupSummary {
        let mut s = GroupSummary::default();
        let mut progress = Vec::new();
        for info in self.group_members(name) {
            s.vms += 1;
            s.restarts += info.experiment.as_ref().map_or(0, |m| m.restarts);
            match &info.state {
                state if state.is_alive() && info.busy == Some(Busy::Idle) => s.idle += 1,
                state if state.is_alive() => s.running += 1,
                VmState::Waiting(_) => s.waiting += 1,
                VmState::Lost(_) => s.lost += 1,
                VmState::Exited(0) => {}
                _ => s.failed += 1,
            }
            if let Some(p) = self.progress(info) {
                progress.push(u32::from(p.percent));
            }
        }
        if !progress.is_empty() {
            s.progress = Some((progress.iter().sum::<u32>() / progress.len() as u32) as u8);
        }
        s
    }

    pub fn is_folded(&self, name: &str) -> bool {
        self.folded.get(name).copied().unwrap_or(false)
    }

    /// Folds an experiment seen for the first time when it is large; forgets the
    /// experiments no longer listed, so one started again starts as a new one does.
    pub(super) fn note_groups(&mut self) {
        let mut sizes: HashMap<String, usize> = HashMap::new();
        for info in &self.rows {
            if let Some(name) = self.group_of(&Row::Session(info)) {
                *sizes.entry(name.to_string()).or_default() += 1;
            }
        }
        self.folded.retain(|name, _| sizes.contains_key(name));
        for (name, n) in sizes {
            self.folded.entry(name).or_insert(n > FOLD_ABOVE);
        }
    }

    /// The experiment under the cursor: its header, or the group of the VM selected.
    fn group_here(&self) -> Option<String> {
        match &self.current {
            Some(RowId::Group(name)) => Some(name.clone()),
            _ => self
                .current_info()
                .and_then(|info| self.group_of(&Row::Session(info)))
                .map(str::to_string),
        }
    }

    /// Folds or unfolds the experiment under the cursor; folding a group whose VM is
    /// selected selects its header, so the cursor never sits on a hidden row.
    pub(super) fn fold_here(&mut self, fold: bool) {
        let Some(name) = self.group_here() else {
            return;
        };
        self.folded.insert(name.clone(), fold);
        if fold && !matches!(self.current, Some(RowId::Group(_))) {
            self.select(RowId::Group(name));
        }
        self.dirty = true;
    }

    /// Shows a VM the cursor is moved to from elsewhere (a tab, a name): its group
    /// unfolds.
    pub(super) fn unfold_for(&mut self, vm: VmId) {
        if let Some(name) = self
            .info(vm)
            .and_then(|info| self.group_of(&Row::Session(info)))
            .map(str::to_string)
            && let Some(folded) = self.folded.get_mut(&name)
        {
            *folded = false;
        }
    }

    /// A list key on an experiment's header: true when it acted on the experiment.
    pub(super) fn on_group_key(&mut self, action: Option<Action>) -> bool {
        let Some(RowId::Group(name)) = self.current.clone() else {
            return false;
        };
        let vms: Vec<VmId> = self.group_members(&name).map(|i| i.vm).collect();
        // Ending and running again are an experiment's; other headers only gather.
        let experiment = self.group_by == GroupBy::Experiment;
        match action {
            Some(Action::Restart | Action::Kill) if !experiment => self.set_message(
                format!(
                    "{name} gathers VMs by {}: select one of them, or group by experiment (G)",
                    self.group_by.label()
                ),
                Level::Info,
            ),
            Some(Action::Attach) => {
                let folded = self.is_folded(&name);
                self.folded.insert(name, !folded);
            }
            Some(Action::Restart) => {
                let running = self.count_alive(&vms);
                self.overlay = Some(Overlay::Confirm(Confirm::RestartExperiment {
                    name,
                    vms: vms.len(),
                    running,
                }));
            }
            Some(Action::Kill) => {
                let running = self.count_alive(&vms);
                self.overlay = Some(Overlay::Confirm(Confirm::EndExperiment {
                    name,
                    vms: vms.len(),
                    running,
                }));
            }
            Some(Action::Grid) => self.open_grid_of(vms),
            Some(Action::Mark) => {
                if vms.iter().all(|vm| self.marked.contains(vm)) {
                    self.marked.retain(|vm| !vms.contains(vm));
                } else {
                    self.marked.extend(vms);
                }
                self.move_selection(1);
            }
            Some(Action::Rename) => self.set_message(
                format!("{name} is named by its file: [experiment] name there renames it"),
                Level::Info,
            ),
            Some(Action::ToggleLog | Action::Install) => self.set_message(
                format!("{name} is an experiment: select one of its VMs for that"),
                Level::Info,
            ),
            _ => return false,
        }
        true
    }

    fn count_alive(&self, vms: &[VmId]) -> usize {
        let alive = |vm: &&VmId| self.info(**vm).is_some_and(|i| i.state.is_alive());
        vms.iter().filter(alive).count()
    }

    /// The experiment `name` as its VMs' specs say, to run again from the start.
    pub(super) fn experiment_again(&self, name: &str) -> Experiment {
        let vms = self
            .group_members(name)
            .filter_map(|i| i.experiment.as_ref().map(|m| m.spec.clone()))
            .collect();
        Experiment {
            name: name.to_string(),
            vms,
        }
    }

    /// Opens the `u` prompt with the file last started from here, to start again.
    pub(super) fn open_load(&mut self) {
        self.overlay = Some(Overlay::Load(LoadForm {
            path: self.last_load.clone(),
            ..LoadForm::default()
        }));
    }

    pub(super) fn on_load_key(&mut self, mut form: LoadForm, key: KeyEvent) {
        match key.code {
            KeyCode::Esc => return,
            KeyCode::Tab => self.call(Call::Complete(form.path.clone())),
            KeyCode::Enter if form.path.trim().is_empty() => {
                form.error = Some("type the path of an experiment file".into());
            }
            KeyCode::Enter if !form.pending => {
                form.pending = true;
                form.error = None;
                self.last_load = form.path.trim().to_string();
                self.call(Call::Up {
                    path: PathBuf::from(form.path.trim()),
                    force: false,
                });
            }
            _ if !form.pending
                && text_field::edit(&mut form.path, &key, |c| !c.is_control(), 1024) =>
            {
                form.error = None;
                form.choices.clear();
            }
            _ => {}
        }
        self.overlay = Some(Overlay::Load(form));
    }

    /// Tab's answer: the one name that fits is taken, several fill in what they share
    /// and are listed. An answer for a path since edited is dropped.
    pub(super) fn on_completed(&mut self, typed: String, found: Vec<String>) {
        let Some(Overlay::Load(form)) = &mut self.overlay else {
            return;
        };
        if form.path != typed {
            return;
        }
        let shared = common_prefix(&found);
        if shared.len() > typed.len() {
            form.path = shared.to_string();
        }
        form.choices = if found.len() > 1 { found } else { Vec::new() };
        if form.choices.is_empty() && form.path == typed {
            form.error = Some(format!("nothing here starts with {typed}"));
        }
        self.dirty = true;
    }

    /// How an `up` from the dashboard ended: the prompt closes, or says why the file
    /// was refused; VMs whose spec changed are restarted only after asking.
    pub(super) fn on_up_done(
        &mut self,
        path: PathBuf,
        forced: bool,
        result: Result<(String, UpReport), String>,
    ) {
        let form = match &mut self.overlay {
            Some(Overlay::Load(form)) if form.pending => Some(form),
            _ => None,
        };
        let (name, report) = match (result, form) {
            (Ok(done), Some(_)) => {
                self.overlay = None;
                done
            }
            (Ok(done), None) => done,
            (Err(e), Some(form)) => {
                form.pending = false;
                form.error = Some(e);
                self.dirty = true;
                return;
            }
            (Err(e), None) => return self.set_message(e, Level::Error),
        };
        self.set_message(up_summary(&name, &report), Level::Info);
        if !report.changed.is_empty() && !forced {
            self.overlay = Some(Overlay::Confirm(Confirm::UpChanged {
                path,
                name: name.clone(),
                changed: report.changed,
            }));
        }
        // Its VMs are listed by now unless the list is still on its way.
        if self
            .visible()
            .iter()
            .any(|r| r.id() == RowId::Group(name.clone()))
        {
            self.select(RowId::Group(name));
        }
    }
}

/// `sweep-a: started 4 · 2 already running · 1 changed`.
pub fn up_summary(name: &str, report: &UpReport) -> String {
    let mut parts = Vec::new();
    for (n, what) in [
        (report.started.len(), "started"),
        (report.unchanged.len(), "already running"),
        (report.changed.len(), "changed"),
    ] {
        if n > 0 {
            parts.push(format!("{what} {n}"));
        }
    }
    match parts.is_empty() {
        true => format!("{name}: declares no VM"),
        false => format!("{name}: {}", parts.join(" · ")),
    }
}

/// What every name in `names` starts with.
fn common_prefix(names: &[String]) -> &str {
    let Some(first) = names.first() else {
        return "";
    };
    let mut end = first.len();
    for name in &names[1..] {
        end = first
            .char_indices()
            .zip(name.chars())
            .find(|((_, a), b)| a != b)
            .map_or(end.min(name.len()), |((i, _), _)| i.min(end));
    }
    &first[..end]
}
