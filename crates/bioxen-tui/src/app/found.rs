//! Searching every VM at once (`C-b /`, `F` in the list): the query, the server's
//! answer as a list, and jumps to a match in its VM's scrollback that `n` and `N` carry
//! on from, VM to VM.
//!
//! The server searches its own screens (the dashboard mirrors only the VMs it shows),
//! and says where each match is as lines above the top of the live screen: a mirror
//! numbers its lines from its own start, and counts the same way from its end.

use bioxen_proto::{SearchMatch, SearchQuery};

use super::*;

/// The most matches one search lists.
const LIMIT: usize = 2000;

/// A search of every VM: the query, then what it found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoundAll {
    /// Plain text, or a regular expression between slashes (`/na?n/`).
    pub query: String,
    /// The query is being typed; else the matches are being browsed.
    pub editing: bool,
    /// Asked of the server, not answered yet.
    pub pending: bool,
    pub results: Vec<SearchMatch>,
    /// Index into `results`.
    pub selected: usize,
    pub error: Option<String>,
}

/// A jump to a match, kept until the VM's screen is mirrored here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Jump {
    found: SearchMatch,
}

/// The query as the server takes it: `/…/` is a regular expression.
pub fn query_of(text: &str) -> SearchQuery {
    let regex = text
        .strip_prefix('/')
        .and_then(|t| t.strip_suffix('/'))
        .filter(|t| !t.is_empty());
    SearchQuery {
        text: regex.unwrap_or(text).to_string(),
        regex: regex.is_some(),
        limit: LIMIT,
    }
}

impl App {
    /// Opens the query, with the last one to edit.
    pub(super) fn open_search_all(&mut self) {
        let query = self
            .found_all
            .as_ref()
            .map(|f| f.query.clone())
            .unwrap_or_default();
        self.overlay = Some(Overlay::SearchAll(FoundAll {
            query,
            editing: true,
            ..FoundAll::default()
        }));
    }

    pub(super) fn on_search_all_key(&mut self, mut found: FoundAll, key: KeyEvent) {
        if found.editing {
            match key.code {
                KeyCode::Esc => return,
                KeyCode::Enter if !found.query.is_empty() => {
                    found.editing = false;
                    found.pending = true;
                    found.error = None;
                    self.call(Call::Search(query_of(&found.query)));
                }
                _ => {
                    text_field::edit(&mut found.query, &key, |_| true, 200);
                }
            }
            self.overlay = Some(Overlay::SearchAll(found));
            return;
        }
        let last = found.results.len().saturating_sub(1);
        let page = usize::from(self.pane_size.rows.max(2)) - 1;
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => return,
            KeyCode::Char('/') => found.editing = true,
            KeyCode::Up | KeyCode::Char('k') => found.selected = found.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => found.selected = (found.selected + 1).min(last),
            KeyCode::PageUp => found.selected = found.selected.saturating_sub(page),
            KeyCode::PageDown => found.selected = (found.selected + page).min(last),
            KeyCode::Home | KeyCode::Char('g') => found.selected = 0,
            KeyCode::End | KeyCode::Char('G') => found.selected = last,
            KeyCode::Enter => {
                if let Some(m) = found.results.get(found.selected).cloned() {
                    self.found_all = Some(found);
                    return self.jump_to(m);
                }
            }
            _ => {}
        }
        self.overlay = Some(Overlay::SearchAll(found));
    }

    /// The server's answer to the search being shown.
    pub(super) fn on_found(&mut self, result: Result<Vec<SearchMatch>, String>) {
        let Some(Overlay::SearchAll(found)) = self.overlay.as_mut() else {
            return;
        };
        found.pending = false;
        match result {
            Ok(matches) => {
                found.results = matches;
                found.selected = 0;
            }
            Err(e) => {
                found.error = Some(e);
                found.editing = true;
            }
        }
        self.dirty = true;
    }

    /// Shows the match's VM scrolled back to it, the match marked: at once when its
    /// screen is here, else once it arrives.
    fn jump_to(&mut self, found: SearchMatch) {
        self.select(RowId::Vm(found.vm));
        if found.logged_ms.is_some() {
            return self.set_message(
                format!(
                    "that match is older than {}'s scrollback: `bioxen logs {}` has it",
                    found.name, found.name
                ),
                Level::Info,
            );
        }
        self.focus = Focus::Terminal;
        self.jump = Some(Jump { found });
        self.apply_jump();
    }

    /// Carries out a jump whose VM's screen has arrived.
    pub(super) fn apply_jump(&mut self) {
        let Some(jump) = self.jump.clone() else {
            return;
        };
        if self.current_vm() != Some(jump.found.vm) {
            self.jump = None;
            return;
        }
        let Some(screen) = self.mirrors.get(&jump.found.vm) else {
            return;
        };
        let (first, live) = screen.line_numbers();
        let line = (live as i64 - jump.found.back).max(first as i64) as u64;
        let shown: String = jump
            .found
            .text
            .chars()
            .skip(jump.found.start)
            .take(jump.found.len)
            .collect();
        self.search = Some(Search {
            query: shown,
            found: Some((line, jump.found.start)),
            across: true,
            ..Search::default()
        });
        self.scroll = Some(live.saturating_sub(line) as usize);
        self.scroll_base = screen.rows_scrolled();
        self.jump = None;
        self.dirty = true;
    }

    /// `n` and `N` after a jump from a search of every VM: the next match, in
    /// whichever VM it is. False when there is no such search to go on with.
    pub(super) fn next_found(&mut self, forward: bool) -> bool {
        let Some(found) = self.found_all.as_mut().filter(|f| !f.results.is_empty()) else {
            return false;
        };
        let n = found.results.len();
        found.selected = match forward {
            true => (found.selected + 1) % n,
            false => (found.selected + n - 1) % n,
        };
        let m = found.results[found.selected].clone();
        let (at, of) = (found.selected + 1, n);
        self.jump_to(m);
        self.set_message(format!("match {at} of {of}"), Level::Info);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slashes_make_a_regular_expression() {
        assert!(query_of("/na?n/").regex);
        assert_eq!(query_of("/na?n/").text, "na?n");
        assert!(!query_of("NaN").regex);
        assert!(!query_of("/").regex, "a lone slash is text");
        assert_eq!(query_of("a/b").text, "a/b");
    }
}
