//! Tabs: VMs then grids, moving between them, the chooser that lists them, renaming.

use super::*;

/// The tab chooser: typing filters, the arrows move, Enter shows the choice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chooser {
    pub filter: String,
    /// Index into [`App::chooser_items`].
    pub selected: usize,
}

impl App {
    /// Tabs are the VMs, then the grids.
    pub(super) fn select_tab(&mut self, index: usize) {
        let tabs = self.rows.len() + self.grids.len();
        match self.rows.get(index).map(|r| r.vm) {
            Some(vm) => self.select(RowId::Vm(vm)),
            None if index < tabs => self.show_grid(index - self.rows.len()),
            None => {
                let have = match tabs {
                    0 => "there are no tabs yet".to_string(),
                    1 => "the only tab is 0".to_string(),
                    n => format!("tabs are 0 to {}", n - 1),
                };
                let chooser = self
                    .keymap
                    .key_for(Mode::Prefix, Action::Choose)
                    .map(|k| format!("; {k} lists them"))
                    .unwrap_or_default();
                self.set_message(format!("no tab {index}: {have}{chooser}"), Level::Info);
            }
        }
    }

    /// The tab shown.
    pub fn current_tab(&self) -> Option<TabId> {
        match self.grid {
            Some(g) => Some(TabId::Grid(g)),
            None => self.current_vm().map(TabId::Vm),
        }
    }

    pub fn select_tab_id(&mut self, tab: TabId) {
        match tab {
            TabId::Vm(vm) => self.select(RowId::Vm(vm)),
            TabId::Grid(i) => self.show_grid(i),
        }
    }

    pub(super) fn cycle_tab(&mut self, delta: isize) {
        let n = (self.rows.len() + self.grids.len()) as isize;
        if n == 0 {
            return;
        }
        let pos = match self.grid {
            Some(g) => self.rows.len() + g,
            None => self
                .current_vm()
                .and_then(|c| self.rows.iter().position(|r| r.vm == c))
                .unwrap_or(0),
        } as isize;
        self.select_tab(((pos + delta).rem_euclid(n)) as usize);
    }

    /// The tabs the chooser lists for `filter` (case-insensitive, on the label), with
    /// their labels.
    pub fn chooser_items(&self, filter: &str) -> Vec<(TabId, String)> {
        let filter = filter.to_lowercase();
        let vms = self.rows.iter().map(|r| {
            let mut label = format!(
                "{:<16} {:<6} {:<12}",
                r.name,
                r.kind.as_str(),
                crate::format::state(r)
            );
            if let Some(p) = self.progress(r) {
                label.push_str(&format!(" {}", crate::format::progress(p, 5)));
            }
            if let Some(status) = &r.status {
                label.push_str(&format!("  {status}"));
            }
            (TabId::Vm(r.vm), label)
        });
        let grids = self.grids.iter().enumerate().map(|(i, g)| {
            (
                TabId::Grid(i),
                format!("grid({:<2})         {}", g.vms.len(), self.names(&g.vms)),
            )
        });
        vms.chain(grids)
            .filter(|(_, label)| filter.is_empty() || label.to_lowercase().contains(&filter))
            .collect()
    }

    pub(super) fn on_chooser_key(&mut self, mut chooser: Chooser, key: KeyEvent) {
        let items = self.chooser_items(&chooser.filter);
        match key.code {
            KeyCode::Esc => return,
            KeyCode::Enter => {
                match items.get(chooser.selected).cloned() {
                    Some((TabId::Vm(vm), _)) if self.focus == Focus::Terminal => {
                        self.select(RowId::Vm(vm))
                    }
                    Some((TabId::Vm(vm), _)) => self.open(RowId::Vm(vm)),
                    Some((TabId::Grid(i), _)) => self.show_grid(i),
                    None => {}
                }
                return;
            }
            KeyCode::Up => chooser.selected = chooser.selected.saturating_sub(1),
            KeyCode::Down => {
                chooser.selected = (chooser.selected + 1).min(items.len().saturating_sub(1))
            }
            _ => {
                if text_field::edit(&mut chooser.filter, &key, |_| true, 100) {
                    chooser.selected = 0;
                }
            }
        }
        self.overlay = Some(Overlay::Chooser(chooser));
    }

    pub(super) fn open_rename(&mut self) {
        if let Some(info) = self.current_info() {
            self.overlay = Some(Overlay::Rename(RenameForm {
                target: self.target(info.vm),
                name: info.name.clone(),
                error: None,
                pending: false,
            }));
        }
    }

    /// The names of `vms`, for a grid's label.
    pub fn names(&self, vms: &[VmId]) -> String {
        let names: Vec<String> = vms.iter().map(|vm| self.name_of(*vm)).collect();
        names.join(" ")
    }
}
