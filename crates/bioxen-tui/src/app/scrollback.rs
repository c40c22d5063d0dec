//! Scroll mode: moving through a VM's history, searching it, and selecting lines to copy.

use super::*;

/// A search in the scrollback of the VM shown (`/` down, `?` up, `n` and `N` again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    pub query: String,
    /// The query is being typed.
    pub editing: bool,
    pub backward: bool,
    /// The line (see [`Screen::line_numbers`]) and column of the last match.
    pub found: Option<(u64, usize)>,
    /// The last search found nothing.
    pub missed: bool,
    /// It came from a search of every VM: `n` and `N` go on to that search's next
    /// match, in whichever VM.
    pub across: bool,
}

impl App {
    /// Keys in scrollback mode. Only q and Esc leave it; other keys do nothing, and
    /// never reach the VM.
    pub(super) fn on_scroll_key(&mut self, key: &KeyEvent) -> bool {
        if let Some(search) = self.search.as_mut().filter(|s| s.editing) {
            match key.code {
                KeyCode::Esc => self.search = None,
                KeyCode::Enter => {
                    search.editing = false;
                    let backward = search.backward;
                    self.search_again(backward);
                    self.select_to_match();
                }
                _ => {
                    text_field::edit(&mut search.query, key, |_| true, 200);
                }
            }
            return true;
        }
        if self.selection.is_some() {
            self.on_selection_key(key);
            return true;
        }
        if self.start_selection(key) {
            return true;
        }
        match key.code {
            KeyCode::Char(c @ ('/' | '?')) => {
                self.search = Some(Search {
                    editing: true,
                    backward: c == '?',
                    ..Search::default()
                });
                return true;
            }
            KeyCode::Char(c @ ('n' | 'N')) => {
                let across = self.search.as_ref().is_some_and(|s| s.across);
                if across && self.next_found(c == 'n') {
                    return true;
                }
                if let Some(backward) = self.search.as_ref().map(|s| s.backward) {
                    self.search_again(backward == (c == 'n'));
                }
                return true;
            }
            _ => {}
        }
        let page = self.pane_size.rows.saturating_sub(1).max(1) as isize;
        let delta = match key.code {
            KeyCode::PageUp => page,
            KeyCode::PageDown => -page,
            KeyCode::Up | KeyCode::Char('k') => 1,
            KeyCode::Down | KeyCode::Char('j') => -1,
            KeyCode::Home | KeyCode::Char('g') => isize::MAX / 2,
            KeyCode::End | KeyCode::Char('G') => isize::MIN / 2,
            KeyCode::Char('q') | KeyCode::Esc => {
                self.scroll = None;
                self.search = None;
                self.selection = None;
                return true;
            }
            _ => return true,
        };
        self.scroll_by(delta);
        true
    }

    /// Finds the query again, from the last match or from the top of the view, and
    /// scrolls so the line found is at the top (or on the live screen).
    pub(super) fn search_again(&mut self, backward: bool) {
        let (Some(id), Some(search)) = (self.current_vm(), self.search.clone()) else {
            return;
        };
        let Some(screen) = self.mirrors.get(&id) else {
            return;
        };
        let (first, live) = screen.line_numbers();
        let top = screen.top_line(self.scroll.unwrap_or(0));
        let from = search.found.map(|(line, _)| line).unwrap_or(top);
        let found = screen.find(&search.query, Some(from.max(first)), backward);
        let scroll = found.map(|(line, _)| live.saturating_sub(line) as usize);
        let base = screen.rows_scrolled();
        if let Some(s) = self.search.as_mut() {
            s.missed = found.is_none();
            if found.is_some() {
                s.found = found;
            }
        }
        if let Some(scroll) = scroll {
            self.scroll = Some(scroll);
            self.scroll_base = base;
        }
        self.dirty = true;
    }

    pub(super) fn enter_scroll(&mut self, by: isize) {
        self.scroll = Some(0);
        self.scroll_by(by);
    }

    pub(super) fn scroll_by(&mut self, delta: isize) {
        let Some(id) = self.current_vm() else {
            return;
        };
        let max = self.mirrors.get(&id).map_or(0, |s| s.scrollback_len());
        self.scroll_base = self.mirrors.get(&id).map_or(0, |s| s.rows_scrolled());
        let now = self.scroll.unwrap_or(0) as isize;
        let next = (now.saturating_add(delta)).clamp(0, max as isize) as usize;
        self.scroll = Some(next);
        self.dirty = true;
    }
}
