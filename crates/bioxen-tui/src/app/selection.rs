//! Copy mode's selection, as tmux and vim make it: by character (`v`), by line (`V`)
//! or as a rectangle (`C-v`), its cursor moved with the arrows, `h j k l`, `w b e`,
//! `0 $`, `g G` and the search keys, and copied with `y` through the user's terminal
//! (OSC 52). A drag of the mouse in a pane selects by character and copies when let go.

use bioxen_term::Screen;

use super::*;

/// How a selection takes the text between its ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Chars,
    Lines,
    Block,
}

/// A place in a VM's scrollback: a row, numbered as [`Screen::line_numbers`] says,
/// and a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Point {
    pub line: u64,
    pub col: usize,
}

/// Text being selected for copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    pub shape: Shape,
    /// Where it began.
    pub anchor: Point,
    /// Where its cursor is: the end that moves.
    pub cursor: Point,
}

impl Selection {
    /// The columns of row `line` it takes, the end excluded (`usize::MAX`: to the
    /// row's end); `None` when it takes nothing of that row.
    pub fn columns(&self, line: u64) -> Option<(usize, usize)> {
        let (a, b) = (self.anchor.min(self.cursor), self.anchor.max(self.cursor));
        if line < a.line || line > b.line {
            return None;
        }
        Some(match self.shape {
            Shape::Lines => (0, usize::MAX),
            Shape::Block => {
                let (l, r) = (self.anchor.col, self.cursor.col);
                (l.min(r), l.max(r) + 1)
            }
            Shape::Chars => (
                if line == a.line { a.col } else { 0 },
                if line == b.line {
                    b.col + 1
                } else {
                    usize::MAX
                },
            ),
        })
    }

    /// The text it takes of `screen`: rows joined by newlines, except where a row
    /// soft-wrapped onto the next (a wrapped line is copied as one), and every row of a
    /// rectangle on a line of its own.
    pub fn text(&self, screen: &Screen) -> String {
        let (a, b) = (self.anchor.min(self.cursor), self.anchor.max(self.cursor));
        let rows = screen.rows_text(a.line, b.line);
        let mut out = String::new();
        for (i, (text, wrapped)) in rows.iter().enumerate() {
            let line = a.line + i as u64;
            let (from, to) = self.columns(line).unwrap_or((0, 0));
            let piece: String = text
                .chars()
                .skip(from)
                .take(to.saturating_sub(from))
                .collect();
            let joined = *wrapped && self.shape != Shape::Block;
            out.push_str(if joined { &piece } else { piece.trim_end() });
            if i + 1 < rows.len() && !joined {
                out.push('\n');
            }
        }
        out
    }
}

/// The key that makes a selection of each shape: `v`, `V`, `C-v`.
fn shape_of(key: &KeyEvent) -> Option<Shape> {
    match (key.code, key.modifiers.contains(KeyModifiers::CONTROL)) {
        (KeyCode::Char('v'), true) => Some(Shape::Block),
        (KeyCode::Char('v'), false) => Some(Shape::Chars),
        (KeyCode::Char('V'), _) => Some(Shape::Lines),
        _ => None,
    }
}

impl App {
    /// Starts a selection if `key` makes one: at the last match of a search, or at the
    /// view's last line with text.
    pub(super) fn start_selection(&mut self, key: &KeyEvent) -> bool {
        let Some(shape) = shape_of(key) else {
            return false;
        };
        let Some(screen) = self.current_vm().and_then(|vm| self.mirrors.get(&vm)) else {
            return true;
        };
        let top = screen.top_line(self.scroll.unwrap_or(0));
        let rows = u64::from(screen.size().rows);
        let bottom = (top..top + rows)
            .rev()
            .find(|line| !screen.text_of_lines(*line, *line).is_empty())
            .unwrap_or(top);
        let at = match self.search.as_ref().and_then(|s| s.found) {
            Some((line, col)) if (top..top + rows).contains(&line) => Point { line, col },
            _ => Point {
                line: bottom,
                col: 0,
            },
        };
        self.selection = Some(Selection {
            shape,
            anchor: at,
            cursor: at,
        });
        self.dirty = true;
        true
    }

    /// Keys while selecting: motions move the cursor (scrolling as it leaves the
    /// view), `v V C-v` change the shape (the same one again drops it), `y` or Enter
    /// copies, Esc drops it.
    pub(super) fn on_selection_key(&mut self, key: &KeyEvent) {
        let Some(mut sel) = self.selection else {
            return;
        };
        if let Some(shape) = shape_of(key) {
            self.selection = (shape != sel.shape).then_some(Selection { shape, ..sel });
            self.dirty = true;
            return;
        }
        match key.code {
            KeyCode::Char('y') | KeyCode::Enter => return self.copy_selection(),
            KeyCode::Esc | KeyCode::Char('q') => {
                self.selection = None;
                self.dirty = true;
                return;
            }
            KeyCode::Char(c @ ('n' | 'N')) => {
                let backward = self.search.as_ref().is_some_and(|s| s.backward) == (c == 'n');
                self.search_again(backward);
                match self.search.as_ref().and_then(|s| s.found) {
                    Some((line, col)) => sel.cursor = Point { line, col },
                    None => return,
                }
            }
            KeyCode::Char(c @ ('/' | '?')) => {
                self.search = Some(Search {
                    editing: true,
                    backward: c == '?',
                    ..Search::default()
                });
                return;
            }
            _ => match self.moved(sel.cursor, key) {
                Some(to) => sel.cursor = to,
                None => return,
            },
        }
        self.selection = Some(sel);
        self.keep_in_view(sel.cursor.line);
    }

    /// A search typed while selecting: the cursor goes to what it found.
    pub(super) fn select_to_match(&mut self) {
        if let (Some(sel), Some((line, col))) = (
            self.selection.as_mut(),
            self.search.as_ref().and_then(|s| s.found),
        ) {
            sel.cursor = Point { line, col };
            let line = sel.cursor.line;
            self.keep_in_view(line);
        }
    }

    /// Where `key` moves the cursor from `at`; `None` for a key that moves nothing.
    fn moved(&self, at: Point, key: &KeyEvent) -> Option<Point> {
        let screen = self.current_vm().and_then(|vm| self.mirrors.get(&vm))?;
        let (first, live) = screen.line_numbers();
        let last = live + u64::from(screen.size().rows) - 1;
        let cols = usize::from(screen.size().cols);
        let page = i64::from(self.pane_size.rows.saturating_sub(1).max(1));
        let row = |n: i64| (at.line as i64 + n).clamp(first as i64, last as i64) as u64;
        let text = |line: u64| -> Vec<char> {
            let rows = screen.rows_text(line, line);
            rows.first()
                .map(|(t, _)| t.chars().collect())
                .unwrap_or_default()
        };
        let to = |line, col| Some(Point { line, col });
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => to(row(-1), at.col),
            KeyCode::Down | KeyCode::Char('j') => to(row(1), at.col),
            KeyCode::PageUp => to(row(-page), at.col),
            KeyCode::PageDown => to(row(page), at.col),
            KeyCode::Left | KeyCode::Char('h') => to(at.line, at.col.saturating_sub(1)),
            KeyCode::Right | KeyCode::Char('l') => to(at.line, (at.col + 1).min(cols - 1)),
            KeyCode::Home | KeyCode::Char('0') => to(at.line, 0),
            KeyCode::End | KeyCode::Char('$') => to(at.line, text(at.line).len().saturating_sub(1)),
            KeyCode::Char('g') => to(first, 0),
            KeyCode::Char('G') => to(last, 0),
            KeyCode::Char(c @ ('w' | 'b' | 'e')) => {
                let word = |line: u64| text(line);
                Some(word_motion(c, at, first, last, word))
            }
            _ => None,
        }
    }

    /// Scrolls so that `line` is in view.
    fn keep_in_view(&mut self, line: u64) {
        let Some(screen) = self.current_vm().and_then(|vm| self.mirrors.get(&vm)) else {
            return;
        };
        let (_, live) = screen.line_numbers();
        let offset = self.scroll.unwrap_or(0) as u64;
        let top = screen.top_line(offset as usize);
        let rows = u64::from(self.pane_size.rows);
        let offset = if line < top {
            live - line
        } else if line >= top + rows {
            (live + rows).saturating_sub(line + 1)
        } else {
            offset
        };
        self.scroll = Some(offset as usize);
        self.scroll_base = screen.rows_scrolled();
        self.dirty = true;
    }

    /// Copies the selection through the user's terminal, and drops it.
    pub(super) fn copy_selection(&mut self) {
        let Some(sel) = self.selection.take() else {
            return;
        };
        let Some(screen) = self.current_vm().and_then(|vm| self.mirrors.get(&vm)) else {
            return;
        };
        let text = sel.text(screen);
        let chars = text.chars().count();
        let lines = text.lines().count().max(1);
        self.effects.push(Effect::Clipboard(text));
        let what = match (sel.shape, lines) {
            (Shape::Lines, 1) => "1 line".to_string(),
            (Shape::Lines, n) => format!("{n} lines"),
            (_, 1) => format!("{chars} characters"),
            (_, n) => format!("{chars} characters on {n} lines"),
        };
        self.set_message(
            format!("copied {what} to the clipboard (through your terminal)"),
            Level::Info,
        );
    }

    /// The mouse in a pane that takes no mouse itself: a press marks where a drag
    /// starts, a drag selects by character (entering scrollback), and letting go copies.
    pub(super) fn on_pane_drag(&mut self, kind: MouseEventKind, row: u16, col: u16) -> bool {
        let Some(screen) = self.current_vm().and_then(|vm| self.mirrors.get(&vm)) else {
            return false;
        };
        let at = Point {
            line: screen.top_line(self.scroll.unwrap_or(0)) + u64::from(row),
            col: usize::from(col),
        };
        match kind {
            MouseEventKind::Down(crossterm::event::MouseButton::Left) => {
                self.drag_from = Some(at);
                false
            }
            MouseEventKind::Drag(crossterm::event::MouseButton::Left) => {
                let Some(anchor) = self.drag_from else {
                    return false;
                };
                if self.scroll.is_none() {
                    self.scroll = Some(0);
                    self.scroll_base = screen.rows_scrolled();
                }
                self.selection = Some(Selection {
                    shape: Shape::Chars,
                    anchor,
                    cursor: at,
                });
                self.dirty = true;
                true
            }
            MouseEventKind::Up(crossterm::event::MouseButton::Left) => {
                let dragged = self.drag_from.take().is_some() && self.selection.is_some();
                if dragged {
                    self.copy_selection();
                }
                dragged
            }
            _ => false,
        }
    }
}

/// Where `w` (the next word's start), `b` (this or the previous word's start) or `e`
/// (this or the next word's end) goes from `at`, across rows; `row(line)` is a row's
/// text.
fn word_motion(
    motion: char,
    at: Point,
    first: u64,
    last: u64,
    row: impl Fn(u64) -> Vec<char>,
) -> Point {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    // Every place from `at` on (or back), row by row, with the character there.
    let forward = motion != 'b';
    let mut line = at.line;
    let mut chars = row(line);
    let mut col = at.col as isize;
    let mut prev: Option<char> = chars.get(at.col).copied();
    loop {
        col += if forward { 1 } else { -1 };
        if col < 0 || col as usize >= chars.len().max(1) {
            if (forward && line >= last) || (!forward && line <= first) {
                return Point {
                    line,
                    col: if forward {
                        chars.len().saturating_sub(1)
                    } else {
                        0
                    },
                };
            }
            line = if forward { line + 1 } else { line - 1 };
            chars = row(line);
            col = if forward { 0 } else { chars.len() as isize - 1 };
            prev = None;
            if col < 0 {
                continue;
            }
        }
        let c = chars.get(col as usize).copied().unwrap_or(' ');
        let next = if forward {
            chars.get(col as usize + 1).copied()
        } else {
            col.checked_sub(1)
                .and_then(|p| chars.get(p as usize))
                .copied()
        };
        let here = is_word(c);
        let found = match motion {
            'w' => here && !prev.is_some_and(is_word),
            'e' => here && !next.is_some_and(is_word),
            _ => here && !next.is_some_and(is_word),
        };
        if found {
            return Point {
                line,
                col: col as usize,
            };
        }
        prev = Some(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(text: &str) -> Screen {
        let mut s = Screen::new(bioxen_proto::Size::new(5, 20), 100);
        s.feed(text.as_bytes());
        s
    }

    fn sel(shape: Shape, a: (u64, usize), b: (u64, usize)) -> Selection {
        let p = |(line, col)| Point { line, col };
        Selection {
            shape,
            anchor: p(a),
            cursor: p(b),
        }
    }

    #[test]
    fn each_shape_takes_its_text() {
        let s = screen("alpha beta gamma\r\ndelta epsilon\r\nzeta eta theta");
        let (_, live) = s.line_numbers();
        let chars = sel(Shape::Chars, (live, 6), (live + 1, 4));
        assert_eq!(chars.text(&s), "beta gamma\ndelta");
        let lines = sel(Shape::Lines, (live + 1, 3), (live, 9));
        assert_eq!(lines.text(&s), "alpha beta gamma\ndelta epsilon");
        let block = sel(Shape::Block, (live, 6), (live + 2, 9));
        assert_eq!(block.text(&s), "beta\nepsi\nta t");
    }

    #[test]
    fn a_wrapped_line_is_copied_as_one_line() {
        // 20 columns: the line wraps after "0123456789abcdefghij".
        let s = screen("0123456789abcdefghijKLMNO\r\nnext");
        let (_, live) = s.line_numbers();
        let chars = sel(Shape::Chars, (live, 15), (live + 1, 2));
        assert_eq!(chars.text(&s), "fghijKLM");
        let lines = sel(Shape::Lines, (live, 0), (live + 2, 0));
        assert_eq!(lines.text(&s), "0123456789abcdefghijKLMNO\nnext");
    }

    #[test]
    fn word_motions_go_from_word_to_word_across_rows() {
        let rows = ["foo bar_1 (baz)", "  qux"];
        let row = |line: u64| rows[line as usize].chars().collect::<Vec<_>>();
        let at = |line, col| Point { line, col };
        assert_eq!(word_motion('w', at(0, 0), 0, 1, row), at(0, 4));
        assert_eq!(word_motion('w', at(0, 4), 0, 1, row), at(0, 11));
        assert_eq!(word_motion('w', at(0, 11), 0, 1, row), at(1, 2));
        assert_eq!(word_motion('e', at(0, 4), 0, 1, row), at(0, 8));
        assert_eq!(word_motion('b', at(0, 8), 0, 1, row), at(0, 4));
        assert_eq!(word_motion('b', at(1, 2), 0, 1, row), at(0, 11));
    }
}
