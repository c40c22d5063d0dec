//! The rows that scrolled off a screen, kept as text in one buffer.
//!
//! A row as its own allocation costs its text plus a pointer, a length and the
//! allocator's rounding: about 50 bytes for a short line of output, ten times the
//! text. Sessions keep 10,000 rows each, in the server and again in every dashboard
//! that mirrors them, so rows live end to end in one string with an offset apiece.

use std::collections::VecDeque;

#[derive(Default)]
pub struct Scrollback {
    /// Rows end to end; the first `dead` bytes belong to rows already dropped.
    text: String,
    dead: usize,
    /// Where each kept row starts in `text`, oldest first.
    starts: VecDeque<usize>,
    /// Whether each kept row soft-wraps onto the next (the line went on past the
    /// right margin): what lets a resize re-lay lines at the new width.
    wrapped: VecDeque<bool>,
}

impl Scrollback {
    /// Appends a row (which holds no newline) that ends its line.
    #[cfg(test)]
    pub fn push(&mut self, row: &str) {
        self.push_wrapped(row, false);
    }

    /// Appends a row; `wrapped` when its line goes on in the next row.
    pub fn push_wrapped(&mut self, row: &str, wrapped: bool) {
        self.starts.push_back(self.text.len());
        self.wrapped.push_back(wrapped);
        self.text.push_str(row);
    }

    /// Sets whether the newest row wraps onto the next, once that is known.
    pub fn set_last_wrapped(&mut self, wrapped: bool) {
        if let Some(last) = self.wrapped.back_mut() {
            *last = wrapped;
        }
    }

    /// Whether row `i` (oldest first) wraps onto the next.
    pub fn is_wrapped(&self, i: usize) -> bool {
        self.wrapped.get(i).copied().unwrap_or(false)
    }

    /// Drops the oldest row; returns its length in bytes.
    pub fn pop_front(&mut self) -> Option<usize> {
        let start = self.starts.pop_front()?;
        self.wrapped.pop_front();
        let end = self.starts.front().copied().unwrap_or(self.text.len());
        self.dead = end;
        if self.is_empty() {
            self.text.clear();
            self.dead = 0;
        } else if self.dead > 4096 && self.dead * 2 > self.text.len() {
            // Dropped rows are half the buffer: move the kept ones down, once per
            // doubling, so dropping stays cheap on average.
            self.text.drain(..self.dead);
            for s in &mut self.starts {
                *s -= self.dead;
            }
            self.dead = 0;
        }
        Some(end - start)
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The rows, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator + '_ {
        (0..self.len()).map(|i| self.row(i))
    }

    fn row(&self, i: usize) -> &str {
        let end = self.starts.get(i + 1).copied().unwrap_or(self.text.len());
        &self.text[self.starts[i]..end]
    }

    /// The rows joined by newlines, oldest first.
    pub fn joined(&self) -> String {
        let mut out = String::with_capacity(self.text.len() - self.dead + self.len());
        for (i, row) in self.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(row);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever is pushed and dropped, the rows kept are those a list of strings
        /// would keep.
        #[test]
        fn keeps_what_a_list_keeps(ops in proptest::collection::vec(
            prop_oneof![
                "[a-z字\u{1b}\\[0-9m]{0,300}".prop_map(Some),
                Just(None),
            ],
            0..400,
        )) {
            let mut s = Scrollback::default();
            let mut model: VecDeque<String> = VecDeque::new();
            for op in ops {
                match op {
                    Some(row) => {
                        s.push(&row);
                        model.push_back(row);
                    }
                    None => {
                        let got = s.pop_front();
                        let want = model.pop_front().map(|r| r.len());
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(s.len(), model.len());
            }
            let rows: Vec<&str> = s.iter().collect();
            let want: Vec<&str> = model.iter().map(String::as_str).collect();
            prop_assert_eq!(&rows, &want);
            let last: Vec<&str> = s.iter().rev().take(3).collect();
            let want_last: Vec<&str> = model.iter().rev().take(3).map(String::as_str).collect();
            prop_assert_eq!(last, want_last);
            prop_assert_eq!(s.joined(), want.join("\n"));
        }
    }

    #[test]
    fn dropped_rows_give_their_space_back() {
        let mut s = Scrollback::default();
        for i in 0..100_000 {
            s.push(&format!("row {i:06}"));
            if s.len() > 1000 {
                s.pop_front();
            }
        }
        assert_eq!(s.iter().next(), Some("row 099000"));
        // 1000 rows of 10 bytes, and at most as much again of dropped ones.
        assert!(s.text.len() <= 2 * 1000 * 10 + 4096, "{}", s.text.len());
    }
}
