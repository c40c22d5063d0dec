//! Grids: tabs of several VMs, marking VMs for them, and typing into all tiles at once.

use super::*;

/// A broadcasting grid's state, for typing and for the banner that says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broadcast {
    /// Typing goes to these VMs; `off_page` more would take it on pages not shown.
    To { targets: Vec<VmId>, off_page: usize },
    /// The focused tile is left out: typing goes to it alone until it is put back.
    Paused,
}

impl App {
    /// The grid shown, if any.
    pub fn shown_grid(&self) -> Option<&Grid> {
        self.grids.get(self.grid?)
    }

    /// The tiles of the grid shown, where they are drawn.
    pub fn tiles(&self) -> Vec<crate::grid::Tile> {
        self.shown_grid()
            .map(|g| g.tiles(self.areas().pane))
            .unwrap_or_default()
    }

    /// Grids keep only VMs that still exist, and a grid left empty closes.
    pub(super) fn prune_grids(&mut self) {
        let rows = &self.rows;
        let exists = |vm: &VmId| rows.iter().any(|r| r.vm == *vm);
        for g in &mut self.grids {
            let focused = g.focused();
            g.vms.retain(exists);
            g.excluded.retain(exists);
            g.focus = focused
                .and_then(|f| g.vms.iter().position(|v| *v == f))
                .unwrap_or(g.focus.min(g.vms.len().saturating_sub(1)));
        }
        let shown = self.grid.take();
        let mut kept = 0;
        for (i, g) in std::mem::take(&mut self.grids).into_iter().enumerate() {
            if g.vms.is_empty() {
                continue;
            }
            if shown == Some(i) {
                self.grid = Some(kept);
            }
            self.grids.push(g);
            kept += 1;
        }
        if shown.is_some() && self.grid.is_none() {
            self.focus = Focus::List;
        }
        if let Some(vm) = self.shown_grid().and_then(Grid::focused) {
            self.current = Some(RowId::Vm(vm));
        }
    }

    pub(super) fn toggle_mark(&mut self) {
        if let Some(vm) = self.current_info().map(|i| i.vm)
            && !self.marked.remove(&vm)
        {
            self.marked.insert(vm);
        }
        self.move_selection(1);
    }

    /// Marks every session the list shows; if all are marked already, unmarks them.
    pub(super) fn mark_all(&mut self) {
        let shown: Vec<VmId> = self
            .visible()
            .iter()
            .filter_map(|r| match r {
                Row::Session(info) => Some(info.vm),
                Row::Pool(_) | Row::Group(_) => None,
            })
            .collect();
        if shown.iter().all(|id| self.marked.contains(id)) {
            for id in &shown {
                self.marked.remove(id);
            }
        } else {
            self.marked.extend(shown);
        }
    }

    /// Opens a grid of the marked VMs, or of the running ones when none is marked;
    /// the same VMs again select the grid that shows them.
    pub(super) fn open_grid(&mut self) {
        let marked: Vec<VmId> = self
            .rows
            .iter()
            .filter(|r| self.marked.contains(&r.vm))
            .map(|r| r.vm)
            .collect();
        let vms = if marked.is_empty() {
            self.rows
                .iter()
                .filter(|r| r.state.is_alive())
                .map(|r| r.vm)
                .collect()
        } else {
            marked
        };
        if vms.is_empty() {
            let mark = self
                .keymap
                .key_for(Mode::List, Action::Mark)
                .unwrap_or_default();
            self.set_message(
                format!("no running VM for a grid: mark VMs with {mark} in the list"),
                Level::Info,
            );
            return;
        }
        self.marked.clear();
        self.open_grid_of(vms);
    }

    /// Shows a grid of `vms`: the grid that shows them already, or a new one.
    pub(super) fn open_grid_of(&mut self, vms: Vec<VmId>) {
        if vms.is_empty() {
            return;
        }
        let index = match self.grids.iter().position(|g| g.vms == vms) {
            Some(i) => i,
            None => {
                let mut grid = Grid::new(vms);
                if let Some(at) = self
                    .current_vm()
                    .and_then(|c| grid.vms.iter().position(|v| *v == c))
                {
                    grid.focus = at;
                }
                self.grids.push(grid);
                self.grids.len() - 1
            }
        };
        self.show_grid(index);
    }

    pub(super) fn show_grid(&mut self, index: usize) {
        let Some(vm) = self.grids.get(index).and_then(Grid::focused) else {
            return;
        };
        if self.focus == Focus::Terminal
            && let Some(old) = self.current_vm()
            && old != vm
            && self.info(old).is_some()
        {
            self.notify(Request::Detach { vm: old.into() });
        }
        self.grid = Some(index);
        self.current = Some(RowId::Vm(vm));
        self.scroll = None;
        self.focus = Focus::Terminal;
        self.filter_editing = false;
        self.unseen.remove(&vm);
        self.marks.remove(&vm);
        self.notify(Request::Attach { vm: vm.into() });
        self.sync_view(false);
        self.dirty = true;
    }

    /// Moves the keys to another tile of the grid shown.
    pub fn focus_tile(&mut self, index: usize) {
        let Some(g) = self.grid.and_then(|g| self.grids.get_mut(g)) else {
            return;
        };
        if index >= g.vms.len() || index == g.focus {
            return;
        }
        let old = g.vms[g.focus];
        g.focus = index;
        let vm = g.vms[index];
        self.notify(Request::Detach { vm: old.into() });
        self.notify(Request::Attach { vm: vm.into() });
        self.current = Some(RowId::Vm(vm));
        self.scroll = None;
        self.unseen.remove(&vm);
        self.marks.remove(&vm);
        self.sync_view(false);
        self.dirty = true;
    }

    pub(super) fn step_tile(&mut self, dx: i32, dy: i32) {
        if let Some(g) = self.shown_grid() {
            let to = g.step(self.areas().pane, dx, dy);
            self.focus_tile(to);
        }
    }

    /// Changes the grid shown, given its focused VM; outside a grid, says how to open one.
    pub(super) fn with_grid(&mut self, change: impl FnOnce(&mut Grid, VmId)) {
        let Some(g) = self.grid.and_then(|g| self.grids.get_mut(g)) else {
            let key = self
                .keymap
                .key_for(Mode::List, Action::Grid)
                .unwrap_or_default();
            return self.set_message(
                format!("not in a grid: {key} in the list opens one"),
                Level::Info,
            );
        };
        let Some(vm) = g.focused() else {
            return;
        };
        change(g, vm);
        self.sync_view(false);
        self.dirty = true;
    }

    /// Closes the grid shown; its VMs keep running, and the focused one stays shown.
    pub(super) fn close_grid(&mut self) {
        let Some(index) = self.grid.take() else {
            return self.with_grid(|_, _| {});
        };
        self.grids.remove(index);
        self.sync_view(false);
        self.dirty = true;
    }

    /// Where typing goes while the grid shown broadcasts: every running tile but the
    /// excluded ones. Typing in an excluded tile goes to it alone.
    pub fn broadcast_targets(&self) -> Option<Vec<VmId>> {
        match self.broadcast()? {
            Broadcast::To { targets, .. } => Some(targets),
            Broadcast::Paused => None,
        }
    }

    /// What a broadcasting grid does with typing now. Only tiles on screen are typed
    /// into: a page the user cannot see must not take commands blind.
    pub fn broadcast(&self) -> Option<Broadcast> {
        let g = self.shown_grid().filter(|g| g.broadcast)?;
        if g.focused().is_some_and(|vm| g.excluded.contains(&vm)) {
            return Some(Broadcast::Paused);
        }
        let shown: Vec<VmId> = self.tiles().iter().map(|t| g.vms[t.index]).collect();
        let takes = |vm: VmId| {
            !g.excluded.contains(&vm) && self.info(vm).is_some_and(|r| r.state.is_alive())
        };
        let targets: Vec<VmId> = shown.iter().copied().filter(|vm| takes(*vm)).collect();
        let off_page = g
            .vms
            .iter()
            .filter(|vm| !shown.contains(vm) && takes(**vm))
            .count();
        Some(Broadcast::To { targets, off_page })
    }
}
