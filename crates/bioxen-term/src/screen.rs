//! One session's virtual terminal: the VT parser, its scrollback, the window title and
//! the replies a program expects from a terminal.
//!
//! The parser keeps no scrollback of its own: vt100 slows down threefold with a large
//! one. Rows that scroll off the top are kept here instead, as text and SGR codes end
//! to end in one bounded buffer ([`super::scrollback`]). A scrolled-back view is
//! rebuilt from those rows only while someone looks at it, so output floods cost only
//! the parse.
//!
//! Everything outside this file sees [`Screen`] only, so the parser behind it can be
//! swapped if measurements demand it.

use std::num::NonZeroU16;

use super::scrollback::Scrollback;
pub use bioxen_proto::DEFAULT_SCROLLBACK_BYTES;
use bioxen_proto::{Size, Snapshot};

/// A virtual terminal fed with a session's output.
pub struct Screen {
    parser: vt100::Parser<Callbacks>,
    /// Whether floods of plain lines may bypass the parser (see `try_fast_scroll`).
    fast_path: bool,
    /// Bounds OSC strings before the parser collects them.
    osc: super::osc_guard::OscGuard,
    /// What vt100 leaves undone: character sets, insert mode, tab stops.
    escapes: super::escapes::Escapes,
    /// Chunks that took the fast path, for tests that must know it ran.
    #[cfg(test)]
    fast_chunks: usize,
}

/// What the parser reports back while processing output.
#[derive(Default)]
struct Callbacks {
    /// Answers to queries (cursor position, device attributes) waiting to be written
    /// back to the program.
    replies: Vec<u8>,
    /// The window title set through OSC 0 or OSC 2.
    title: Option<String>,
    /// What the program said about itself: prompts, progress, status, bell.
    signals: super::signals::Signals,
    /// Rows that scrolled off the top of the main screen, oldest first.
    history: Scrollback,
    /// How many rows `history` keeps.
    capacity: usize,
    /// How many bytes of rows `history` keeps: lines bound ASCII, bytes bound wide,
    /// coloured text (a CJK row with colours is kilobytes).
    byte_limit: usize,
    /// Bytes of the rows in `history`.
    bytes: usize,
    /// Rows ever added to `history`, dropped ones included: a viewer scrolled back
    /// keeps its place by how many arrived since.
    scrolled: u64,
    /// Rows the main screen ever scrolled up, kept in `history` or not: a reflow
    /// follows a line's place by it.
    scrolls: u64,
    /// Follows the rows `on_scroll` formats. The parser tells whether a row wrapped
    /// only as the newline it writes before the next row, so each row's wrap flag is
    /// learnt when the next one scrolls off (or, for the newest, from the screen).
    probe: vt100::capture::BasicFormattedCaptureState,
    /// Whether the newest history row came from `on_scroll`, its wrap flag still to
    /// be learnt from `probe`.
    probe_pending: bool,
    /// Whether `probe` may hold a pen other than the default, left by a coloured row.
    /// While it does not, a row formatted with it reads as one formatted afresh, after
    /// the newline it may start with: one pass per row instead of two.
    probe_pen_set: bool,
}

/// Counts the newlines a formatted capture starts with, and keeps nothing.
#[derive(Default)]
struct LeadingNewlines {
    count: usize,
    done: bool,
}

impl std::fmt::Write for LeadingNewlines {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        for c in s.chars() {
            if self.done {
                break;
            }
            match c {
                '\n' => self.count += 1,
                _ => self.done = true,
            }
        }
        Ok(())
    }
}

impl vt100::Callbacks for Callbacks {
    fn audible_bell(&mut self, _: &mut vt100::Screen) {
        self.signals.bell();
    }

    fn unhandled_osc(&mut self, _: &mut vt100::Screen, params: &[&[u8]]) {
        self.signals.osc(params);
    }

    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        let title: String = bioxen_text::sanitize::line(&String::from_utf8_lossy(title))
            .chars()
            .take(200)
            .collect();
        self.title = (!title.is_empty()).then_some(title);
    }

    fn unhandled_csi(
        &mut self,
        screen: &mut vt100::Screen,
        i1: Option<u8>,
        _i2: Option<u8>,
        params: &[&[u16]],
        c: char,
    ) {
        let first = params.first().and_then(|p| p.first()).copied().unwrap_or(0);
        match (i1, c, first) {
            // DSR 6: cursor position report, 1-based.
            (None, 'n', 6) => {
                let (row, col) = screen.cursor_position();
                self.replies
                    .extend_from_slice(format!("\x1b[{};{}R", row + 1, col + 1).as_bytes());
            }
            // DSR 5: "terminal OK".
            (None, 'n', 5) => self.replies.extend_from_slice(b"\x1b[0n"),
            // DA1: a VT100 with advanced video, as tmux answers.
            (None, 'c', 0) => self.replies.extend_from_slice(b"\x1b[?1;2c"),
            // DA2: terminal type and version.
            (Some(b'>'), 'c', 0) => self.replies.extend_from_slice(b"\x1b[>0;10;1c"),
            _ => {}
        }
    }

    fn on_scroll(&mut self, row: vt100::capture::RowContents<'_>, alternate_screen: bool) {
        // Full-screen programs' screens are not history, as in tmux.
        if alternate_screen {
            return;
        }
        self.scrolls += 1;
        if self.capacity == 0 {
            return;
        }
        // The newline the probe writes first says whether the previous row ended its
        // line. Every stored row carries all of its own attributes, as if formatted
        // with a fresh state: with the probe's pen at the default, its own output is
        // that after the newline; otherwise the row is formatted again afresh.
        let mut line = String::new();
        let ended = if self.probe_pen_set {
            let mut lead = LeadingNewlines::default();
            let _ = row.write_formatted_basic(&mut lead, &mut self.probe);
            let mut fresh = vt100::capture::BasicFormattedCaptureState::default();
            let _ = row.write_formatted_basic(&mut line, &mut fresh);
            lead.count > 0
        } else {
            let _ = row.write_formatted_basic(&mut line, &mut self.probe);
            let ended = line.starts_with('\n');
            if ended {
                line.remove(0);
            }
            ended
        };
        if self.probe_pending {
            self.history.set_last_wrapped(!ended);
        }
        // A row that wrote no cell leaves the pen as it was.
        if !line.is_empty() {
            self.probe_pen_set = line.contains('\x1b');
        }
        self.remember(&line, false);
        self.probe_pending = true;
    }
}

impl Callbacks {
    /// Appends a history row, dropping the oldest beyond the capacity; `wrapped` when
    /// its line goes on in the next row.
    fn remember(&mut self, row: &str, wrapped: bool) {
        if self.capacity == 0 {
            return;
        }
        self.probe_pending = false;
        self.scrolled += 1;
        self.bytes += row.len();
        self.history.push_wrapped(row, wrapped);
        while self.history.len() > self.capacity
            || (self.bytes > self.byte_limit && self.history.len() > 1)
        {
            if let Some(old) = self.history.pop_front() {
                self.bytes -= old;
            }
        }
    }
}

impl Screen {
    pub fn new(size: Size, scrollback: usize) -> Self {
        let (rows, cols) = non_zero(size);
        let callbacks = Callbacks {
            capacity: scrollback,
            byte_limit: DEFAULT_SCROLLBACK_BYTES,
            ..Callbacks::default()
        };
        Screen {
            parser: vt100::Parser::new_with_callbacks(rows, cols, 0, callbacks),
            fast_path: true,
            osc: Default::default(),
            escapes: Default::default(),
            #[cfg(test)]
            fast_chunks: 0,
        }
    }

    /// Bounds the scrollback to `bytes` (besides its line count).
    pub fn with_byte_limit(mut self, bytes: usize) -> Self {
        self.parser.callbacks_mut().byte_limit = bytes;
        self
    }

    /// A screen that always uses the parser, to check the fast path against.
    pub fn without_fast_path(size: Size, scrollback: usize) -> Self {
        Screen {
            fast_path: false,
            ..Screen::new(size, scrollback)
        }
    }

    /// The history rows as stored, oldest first (for tests and exports).
    pub fn history(&self) -> impl Iterator<Item = &str> {
        self.parser.callbacks().history.iter()
    }

    /// Processes output bytes. Returns the replies the program asked for (empty almost
    /// always), to be written back to it.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        // A chunk that starts inside an open sequence is not plain text.
        let mid_sequence = self.osc.is_open();
        let bounded = self.osc.filter(bytes);
        let bytes = bounded.as_deref().unwrap_or(bytes);
        if !self.fast_path {
            self.escapes.feed(bytes, &mut self.parser);
        } else if mid_sequence || !self.try_fast_scroll(bytes) {
            self.process(bytes);
        }
        std::mem::take(&mut self.parser.callbacks_mut().replies)
    }

    /// Replays a snapshot's escapes. They pass the OSC bound like output does: a
    /// snapshot taken while a program was in the middle of an endless OSC ends inside
    /// it, and the bound must know, or everything after it would reach the parser
    /// uncut and grow the mirror a byte per byte.
    fn replay(&mut self, bytes: &[u8]) {
        let bounded = self.osc.filter(bytes);
        let bytes = bounded.as_deref().unwrap_or(bytes);
        self.escapes.feed(bytes, &mut self.parser);
    }

    /// The parser, with what it leaves undone filled in.
    fn process(&mut self, bytes: &[u8]) {
        self.escapes.feed(bytes, &mut self.parser);
    }

    /// Output floods (`seq`, a loop of `print`) are lines of plain text that scroll by
    /// far faster than anyone reads them. When a chunk is only printable ASCII and line
    /// breaks, the cursor is on the bottom row and nothing unusual is set, every line
    /// that would scroll off goes straight into the history as text, and only the lines
    /// that stay visible go through the parser: the same screen and history, at a
    /// fraction of the cost. Returns false (having done nothing) when the chunk or the
    /// state does not qualify.
    fn try_fast_scroll(&mut self, bytes: &[u8]) -> bool {
        // Only worth it (and only checked) for chunks with many lines.
        let (rows, cols) = {
            let (r, c) = self.parser.screen().size();
            (r.get() as usize, c.get() as usize)
        };
        if bytes.len() < 8 * rows
            || !self.escapes.passes_text()
            || self.escapes.scroll_region_seen()
            || self.parser.callbacks().capacity == 0
        {
            return false;
        }
        if !bytes.iter().all(|&b| PLAIN[b as usize]) {
            return false;
        }
        // Finish the line the cursor is on the normal way.
        let Some(first_nl) = bytes.iter().position(|&b| b == b'\n') else {
            return false;
        };
        // The rest, as complete lines ("text\r\n") and a trailing partial line.
        let rest = &bytes[first_nl + 1..];
        let mut lines: Vec<&[u8]> = rest.split(|&b| b == b'\n').collect();
        let partial = lines.pop().unwrap_or_default();
        // Every complete line must be exactly "text\r" (a CR before LF, none inside),
        // and the partial line must have no CR: anything else goes the normal way.
        let plain = lines
            .iter()
            .all(|l| l.last() == Some(&b'\r') && !l[..l.len() - 1].contains(&b'\r'))
            && !partial.contains(&b'\r');
        if !plain {
            return false;
        }
        // With tabs, each complete line as the cells it fills (tabs as the blanks they
        // skip); worked out only for chunks that have tabs at all.
        let expanded = if memchr::memchr(b'\t', rest).is_some() {
            let Some(texts) = lines
                .iter()
                .map(|l| expand_tabs(&l[..l.len() - 1], cols))
                .collect::<Option<Vec<_>>>()
            else {
                return false;
            };
            Some(texts)
        } else {
            None
        };
        let text = |i: usize| -> &[u8] {
            match &expanded {
                Some(texts) => &texts[i],
                None => &lines[i][..lines[i].len() - 1],
            }
        };
        let row_count = |l: &[u8]| l.len().div_ceil(cols).max(1);
        self.process(&bytes[..=first_nl]);
        let vt = self.parser.screen();
        let default_attrs = vt.fgcolor() == vt100::Color::Default
            && vt.bgcolor() == vt100::Color::Default
            && !vt.bold()
            && !vt.dim()
            && !vt.italic()
            && !vt.underline()
            && !vt.inverse();
        let (cursor_row, cursor_col) = vt.cursor_position();
        let bottom_blank = vt
            .rows(0, cols as u16)
            .nth(rows - 1)
            .is_some_and(|r| r.is_empty());
        let ready = !vt.alternate_screen()
            && default_attrs
            && bottom_blank
            && cursor_row as usize == rows - 1
            && cursor_col == 0;
        // Lines that stay on screen: the last ones whose rows fit above the bottom row.
        let mut kept_rows = 0;
        let mut first_kept = lines.len();
        while first_kept > 0 {
            let r = row_count(text(first_kept - 1));
            if kept_rows + r > rows - 1 {
                break;
            }
            kept_rows += r;
            first_kept -= 1;
        }
        // Only equivalent when the kept lines fill exactly the rows above the bottom one
        // (a wrapped line straddling the top would still be partly visible).
        if !ready || first_kept == 0 || kept_rows != rows - 1 {
            self.process(rest);
            return true;
        }
        // The rows on screen now (all but the blank bottom one) scroll off first, through
        // the parser, as the rows of any other output do...
        if rows > 1 {
            let last_wrapped = self.parser.screen().row_wrapped(rows as u16 - 2);
            self.parser.process(&b"\n".repeat(rows - 1));
            self.parser
                .callbacks_mut()
                .history
                .set_last_wrapped(last_wrapped);
        }
        let callbacks = self.parser.callbacks_mut();
        // ...then the lines that would scroll by unseen, split into rows as wrapping does
        // (the choice of texts made once, not per line: floods have millions).
        let remember_line = |callbacks: &mut Callbacks, text: &[u8]| {
            if text.is_empty() {
                callbacks.remember("", false);
            }
            let pieces = text.len().div_ceil(cols);
            for (i, piece) in text.chunks(cols).enumerate() {
                let row = std::str::from_utf8(piece).unwrap_or_default();
                callbacks.remember(row, i + 1 < pieces);
            }
        };
        match &expanded {
            Some(texts) => texts[..first_kept]
                .iter()
                .for_each(|t| remember_line(callbacks, t)),
            None => lines[..first_kept]
                .iter()
                .for_each(|l| remember_line(callbacks, &l[..l.len() - 1])),
        }
        #[cfg(test)]
        {
            self.fast_chunks += 1;
        }
        // The screen is rebuilt from the lines that stay visible.
        self.parser.process(b"\x1b[H\x1b[2J");
        for line in &lines[first_kept..] {
            self.parser.process(line);
            self.parser.process(b"\n");
        }
        self.parser.process(partial);
        true
    }

    /// Resizes the terminal; sizes of zero are treated as one, and sizes past
    /// [`Size::MAX`] as the maximum. On the main screen, lines that soft-wrapped are
    /// laid out again at the new width, in the history as on the screen, as tmux does:
    /// a window made narrow and then wide again shows the text it showed. A full-screen
    /// program's screen is only cut or padded: the program redraws it.
    ///
    /// Not yet laid out again: the normal screen behind a full-screen program. vt100
    /// resizes it alone, pulling in blank rows for a scrollback only it counts, so a
    /// mirror made before such a resize may differ from the session's screen by blank
    /// rows until the next reflow.
    pub fn resize(&mut self, size: Size) {
        let (rows, cols) = non_zero(size);
        let (cur_rows, cur_cols) = self.parser.screen().size();
        if (cur_rows, cur_cols) == (rows, cols) {
            return;
        }
        if self.parser.screen().alternate_screen() {
            self.parser.set_size(rows, cols);
        } else {
            self.reflow(rows, cols);
        }
        self.escapes.resized(cur_cols != cols);
    }

    /// Whether each history row soft-wraps onto the next, oldest first; the newest
    /// row's flag is read off the screen when the parser has not told it yet.
    pub fn history_wrapped(&self) -> Vec<bool> {
        let cb = self.parser.callbacks();
        let mut flags: Vec<bool> = (0..cb.history.len())
            .map(|i| cb.history.is_wrapped(i))
            .collect();
        if cb.probe_pending
            && let Some(last) = flags.last_mut()
        {
            *last = self.newest_row_wraps();
        }
        flags
    }

    /// Whether the newest history row's line goes on in the screen's first row: the
    /// probe, which wrote that row last, writes a newline first when it did not.
    fn newest_row_wraps(&self) -> bool {
        let vt = self.parser.screen();
        if vt.alternate_screen() {
            return false;
        }
        let count = |state: &mut vt100::capture::BasicFormattedCaptureState| {
            let mut lead = LeadingNewlines::default();
            let range = vt100::capture::BasicFormattedCaptureRange::Full(state);
            let _ = vt.write_contents_formatted_basic(&mut lead, range);
            lead.count
        };
        let fresh = count(&mut Default::default());
        count(&mut self.parser.callbacks().probe.clone()) == fresh
    }

    /// Lays the history and the screen out again at `rows` x `cols`: every logical
    /// line (rows joined where they soft-wrapped) is written again into the emptied
    /// parser at the new size, which wraps and scrolls them as output does; the cursor
    /// goes back to the same place in its line, and the pen to its colours.
    fn reflow(&mut self, rows: NonZeroU16, cols: NonZeroU16) {
        let vt = self.parser.screen();
        let (old_rows, old_cols) = vt.size();
        let (old_rows, width) = (old_rows.get(), usize::from(old_cols.get()));
        // History rows, then the screen's, each with its wrap flag.
        let mut all: Vec<(String, bool)> = self
            .parser
            .callbacks()
            .history
            .iter()
            .map(str::to_string)
            .zip(self.history_wrapped())
            .collect();
        let history_len = all.len();
        for r in 0..old_rows {
            let wrapped = r + 1 < old_rows && vt.row_wrapped(r);
            all.push((row_text(vt, r, wrapped), wrapped));
        }
        // The cursor's row, the row its line starts on, and its place in that line.
        let (crow, ccol) = vt.cursor_position();
        let cursor = history_len + usize::from(crow);
        let line_start = (0..=cursor)
            .rev()
            .find(|&k| k == 0 || !all[k - 1].1)
            .unwrap_or(0);
        let offset = (cursor - line_start) * width + usize::from(ccol);
        // Blank rows below both the cursor and the last text are not kept.
        let last_shown = all
            .iter()
            .rposition(|(text, _)| !text.is_empty())
            .unwrap_or(0);
        all.truncate(last_shown.max(cursor) + 1);
        let pen = vt.attributes_formatted();

        // Empty it all, then write every line again at the new size.
        {
            let cb = self.parser.callbacks_mut();
            cb.history = Default::default();
            cb.bytes = 0;
            cb.probe = Default::default();
            cb.probe_pending = false;
            cb.probe_pen_set = false;
        }
        self.parser.process(b"\x1b[m\x1b[H\x1b[2J");
        self.parser.set_size(rows, cols);
        // Growing, vt100 pulls blank rows in above for the scrollback it thinks it has,
        // and moves the cursor down past them.
        self.parser.process(b"\x1b[H\x1b[2J");
        // Where the cursor's line begins: the cursor's row then, and the scrolls so far,
        // to follow it up as later lines scroll the screen.
        let mut start = (0, 0);
        let count = all.len();
        for (i, (row, wrapped)) in all.iter().enumerate() {
            if i == line_start {
                let p = &self.parser;
                start = (p.screen().cursor_position().0, p.callbacks().scrolls);
            }
            self.parser.process(b"\x1b[m");
            self.parser.process(row.as_bytes());
            if *wrapped {
                // Blank cells at the margin are part of the line's text: keep them.
                let shown: usize = vt100::capture::basic_formatted_to_plain(row)
                    .map(unicode_width::UnicodeWidthStr::width)
                    .sum();
                if shown < width {
                    self.parser.process(b"\x1b[m");
                    self.parser.process(" ".repeat(width - shown).as_bytes());
                }
            } else if i + 1 < count {
                self.parser.process(b"\r\n");
            }
        }
        let (start_row, scrolls_then) = start;
        let scrolled_since = self.parser.callbacks().scrolls - scrolls_then;
        let cols = usize::from(cols.get());
        let row = i64::from(start_row) - scrolled_since as i64 + (offset / cols) as i64;
        // A cursor just past a full row waits there to wrap, as it did after writing
        // it: put it back in that state by writing the row's last cell again, or the
        // next resize would take its row for a line of its own.
        let full_row = (offset > 0 && offset % cols == 0)
            .then(|| u16::try_from(row - 1).ok())
            .flatten()
            .filter(|&r| r < rows.get());
        let waiting = full_row.and_then(|r| {
            let cell = self.parser.screen().cell(r, cols as u16 - 1)?;
            (cell.has_contents() && !cell.is_wide_continuation())
                .then(|| (r, format!("{}{}", sgr_of(cell), cell.contents())))
        });
        let place = match waiting {
            Some((r, last)) => format!("\x1b[{};{}H{last}", r + 1, cols),
            None => {
                let row = row.clamp(0, i64::from(rows.get()) - 1);
                format!("\x1b[{};{}H", row + 1, offset % cols + 1)
            }
        };
        self.parser.process(place.as_bytes());
        self.parser.process(pen.as_bytes());
        let saved = self.escapes.saved_cursor_formatted(self.parser.screen());
        self.parser.process(saved.as_bytes());
    }

    pub fn size(&self) -> Size {
        let (rows, cols) = self.parser.screen().size();
        Size::new(rows.get(), cols.get())
    }

    /// The live screen, for rendering and for reading modes.
    pub fn vt(&self) -> &vt100::Screen {
        self.parser.screen()
    }

    /// The title the program set, if any.
    pub fn title(&self) -> Option<&str> {
        self.parser.callbacks().title.as_deref()
    }

    /// Returns and clears what the program said about itself since the last call.
    pub fn take_said(&mut self) -> super::signals::Said {
        self.parser.callbacks_mut().signals.take()
    }

    /// The line numbers [`Screen::find`] uses: the oldest history row kept, and where
    /// the live screen starts. Rows are numbered from the first that ever scrolled into
    /// the history, so a number stays with its row as new rows arrive and old ones go.
    pub fn line_numbers(&self) -> (u64, u64) {
        let scrolled = self.rows_scrolled();
        (scrolled - self.scrollback_len() as u64, scrolled)
    }

    /// The number of the line at the top of the view scrolled back `offset` lines.
    pub fn top_line(&self, offset: usize) -> u64 {
        self.rows_scrolled() - offset.min(self.scrollback_len()) as u64
    }

    /// Every line from the `skip`th on (history, then the live screen) as the text it
    /// shows; only the lines taken are converted.
    fn plain_lines(&self, skip: usize) -> impl Iterator<Item = String> + '_ {
        let live = self.parser.screen();
        let cols = live.size().1.get();
        let kept = self.scrollback_len();
        self.history().skip(skip).map(plain_row).chain(
            live.rows(0, cols)
                .skip(skip.saturating_sub(kept))
                .map(|r| r.trim_end().to_string()),
        )
    }

    /// The next line after `from` (or from the end, searching up, or the start) holding
    /// `query`, going up (`backward`) or down, wrapping around: its number and the
    /// column of the match. Case is ignored unless the query has capitals.
    pub fn find(&self, query: &str, from: Option<u64>, backward: bool) -> Option<(u64, usize)> {
        if query.is_empty() {
            return None;
        }
        let (first, _) = self.line_numbers();
        let lines: Vec<String> = self.plain_lines(0).collect();
        let n = lines.len();
        let fold = !query.chars().any(char::is_uppercase);
        let query = if fold {
            query.to_lowercase()
        } else {
            query.to_string()
        };
        let start = match from {
            Some(at) => (at.saturating_sub(first) as usize).min(n.saturating_sub(1)),
            None if backward => n,
            None => n - 1,
        };
        (1..=n).find_map(|step| {
            let i = if backward {
                (start + n - step % n) % n
            } else {
                (start + step) % n
            };
            let line = if fold {
                lines[i].to_lowercase()
            } else {
                lines[i].clone()
            };
            line.find(&query)
                .map(|byte| (first + i as u64, line[..byte].chars().count()))
        })
    }

    /// The text of lines `from` to `to` (numbered as [`Screen::line_numbers`] says,
    /// both included, in either order), one per line, without colours or trailing
    /// blanks: what a copy of them holds.
    pub fn text_of_lines(&self, from: u64, to: u64) -> String {
        let (first, _) = self.line_numbers();
        let (from, to) = (from.min(to).max(first), from.max(to));
        if to < from {
            return String::new();
        }
        self.plain_lines((from - first) as usize)
            .take((to - from + 1) as usize)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The text it holds as lines, history first: rows joined where they soft-wrapped
    /// (a wrapped row's blanks at the margin are text of its line), blanks at the ends
    /// of lines dropped, and no blank lines below the last text. Each line comes with
    /// the number (as [`Screen::line_numbers`] counts) of the row it starts on.
    pub fn logical_lines(&self) -> Vec<(u64, String)> {
        let all = self.logical_text();
        all.lines
            .iter()
            .enumerate()
            .map(|(i, &(start, number))| {
                let end = all.lines.get(i + 1).map_or(all.text.len(), |l| l.0) - 1;
                (number, all.text[start..end].to_string())
            })
            .collect()
    }

    /// [`Screen::logical_lines`] as one text, each line ending in a newline, with where
    /// each line starts: what a search runs over in one pass, without a string per
    /// line.
    pub fn logical_text(&self) -> LogicalText {
        let vt = self.parser.screen();
        let (rows_n, cols) = vt.size();
        let cols = usize::from(cols.get());
        let mut all = LogicalText {
            text: String::with_capacity(self.parser.callbacks().bytes + 4096),
            lines: Vec::new(),
        };
        let (mut number, _) = self.line_numbers();
        let mut open = false;
        let mut push = |all: &mut LogicalText, row: &str, wrapped: bool| {
            if !open {
                all.lines.push((all.text.len(), number));
            }
            let piece: std::borrow::Cow<str> = match row.contains('\x1b') {
                true => plain_row(row).into(),
                false => row.into(),
            };
            all.text.push_str(&piece);
            if wrapped {
                let w = unicode_width::UnicodeWidthStr::width(&*piece);
                all.text.push_str(&" ".repeat(cols.saturating_sub(w)));
            } else {
                end_line(all);
            }
            open = wrapped;
            number += 1;
        };
        for (row, wrapped) in self.history().zip(self.history_wrapped()) {
            push(&mut all, row, wrapped);
        }
        for (r, row) in vt.rows(0, cols as u16).enumerate() {
            let r = r as u16;
            push(&mut all, &row, r + 1 < rows_n.get() && vt.row_wrapped(r));
        }
        if open {
            end_line(&mut all);
        }
        while let Some(&(start, _)) = all.lines.last() {
            if &all.text[start..] != "\n" {
                break;
            }
            all.lines.pop();
            all.text.truncate(start);
        }
        all
    }

    /// Rows `from` to `to` (numbered as [`Screen::line_numbers`] says, both included)
    /// as the text each shows, with whether it soft-wraps onto the next: what a copy
    /// by character or by rectangle takes its text from. A wrapped row keeps its blanks
    /// at the margin, which are text of its line.
    pub fn rows_text(&self, from: u64, to: u64) -> Vec<(String, bool)> {
        let (first, live) = self.line_numbers();
        let vt = self.parser.screen();
        let (rows, cols) = vt.size();
        let last = live + u64::from(rows.get()) - 1;
        let (from, to) = (from.max(first), to.min(last));
        if to < from {
            return Vec::new();
        }
        let history_wrapped = self.history_wrapped();
        let history: Vec<&str> = self.history().collect();
        let screen: Vec<String> = vt.rows(0, cols.get()).collect();
        (from..=to)
            .map(|line| {
                let (mut text, wrapped) = match line.checked_sub(live) {
                    None => {
                        let i = (line - first) as usize;
                        (plain_row(history[i]), history_wrapped[i])
                    }
                    Some(r) => {
                        let r = r as u16;
                        let wrapped = r + 1 < rows.get() && vt.row_wrapped(r);
                        (screen[usize::from(r)].trim_end().to_string(), wrapped)
                    }
                };
                if wrapped {
                    let w = unicode_width::UnicodeWidthStr::width(text.as_str());
                    text.push_str(&" ".repeat(usize::from(cols.get()).saturating_sub(w)));
                }
                (text, wrapped)
            })
            .collect()
    }

    /// Rows as `tmux capture-pane -p` prints them: the screen's, and with `start` = -N
    /// the N history rows above it too (a positive `start` skips rows of the screen),
    /// one per line, blanks at the ends of rows and blank rows below the last text
    /// dropped; with `escapes`, colours are kept as SGR codes.
    pub fn capture(&self, start: Option<i64>, escapes: bool) -> String {
        let vt = self.parser.screen();
        let cols = vt.size().1.get();
        let history = &self.parser.callbacks().history;
        let start = start.unwrap_or(0);
        let back = usize::try_from(-start.min(0))
            .unwrap_or(usize::MAX)
            .min(history.len());
        let skip = usize::try_from(start.max(0)).unwrap_or(usize::MAX);
        let convert = |row: &str| match escapes {
            true => coloured_row(row),
            false => plain_row(row),
        };
        let mut rows: Vec<String> = history
            .iter()
            .skip(history.len() - back)
            .map(convert)
            .collect();
        rows.extend(vt.rows_formatted(0, cols).skip(skip).map(|r| convert(&r)));
        while rows.last().is_some_and(|r| plain_row(r).is_empty()) {
            rows.pop();
        }
        if rows.is_empty() {
            return String::new();
        }
        let mut text = rows.join("\n");
        text.push('\n');
        text
    }

    /// How many rows have ever scrolled into the history (see `Callbacks::scrolled`).
    pub fn rows_scrolled(&self) -> u64 {
        self.parser.callbacks().scrolled
    }

    /// Lines above the visible screen that can be scrolled back to.
    pub fn scrollback_len(&self) -> usize {
        self.parser.callbacks().history.len()
    }

    /// The screen as a viewer scrolled back `offset` lines sees it (clamped to the
    /// history): the live screen at 0, else a screen rebuilt from the history rows and
    /// the top of the live screen. The offset is the viewer's, so several viewers of one
    /// session scroll independently and drawing changes nothing.
    pub fn view(&self, offset: usize) -> View<'_> {
        let offset = offset.min(self.scrollback_len());
        if offset == 0 {
            return View::Live(self.parser.screen());
        }
        let live = self.parser.screen();
        let (rows, cols) = live.size();
        let history = &self.parser.callbacks().history;
        let rows_n = rows.get() as usize;
        // The window over history ++ live rows that ends `offset` rows above the bottom.
        let start = history.len() - offset;
        let from_history = offset.min(rows_n);
        let mut bytes = Vec::new();
        let mut line = 0;
        for row in history.iter().skip(start).take(from_history) {
            if line > 0 {
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"\x1b[m");
            bytes.extend_from_slice(row.as_bytes());
            line += 1;
        }
        for row in live
            .rows_formatted(0, cols.get())
            .take(rows_n - from_history)
        {
            if line > 0 {
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"\x1b[m");
            bytes.extend_from_slice(row.as_bytes());
            line += 1;
        }
        let mut parser = vt100::Parser::new(rows, cols, 0);
        parser.process(&bytes);
        View::Scrolled(Box::new(parser))
    }

    /// Everything a new viewer needs to show this screen as it is: taken by the
    /// server, replayed by [`Screen::from_snapshot`] in a dashboard's mirror.
    pub fn snapshot(&self) -> Snapshot {
        let vt = self.parser.screen();
        Snapshot {
            history: self.parser.callbacks().history.joined(),
            history_rows: self.parser.callbacks().history.len() as u32,
            history_wrapped: self
                .history_wrapped()
                .iter()
                .enumerate()
                .filter_map(|(i, &w)| w.then_some(i as u32))
                .collect(),
            primary: vt
                .alternate_screen()
                .then(|| primary_state(vt, &self.escapes)),
            ..self.snapshot_without_history()
        }
    }

    /// The visible screen alone, without the history or the screen behind a
    /// full-screen program: what a glance at it needs.
    pub fn snapshot_without_history(&self) -> Snapshot {
        let callbacks = self.parser.callbacks();
        let vt = self.parser.screen();
        let size = self.size();
        // Tab stops are set by moving the cursor, so before the screen is drawn (and
        // after entering the alternate screen, whose cursor is redrawn); the character
        // sets and insert mode would change the drawing, so after.
        let (before, after) = self.escapes.state_formatted(vt);
        let mut state = String::new();
        if vt.alternate_screen() {
            state.push_str("\x1b[?1049h");
        }
        state.push_str(&before);
        state.push_str(&vt.state_formatted());
        state.push_str(&after);
        Snapshot {
            rows: size.rows,
            cols: size.cols,
            history: String::new(),
            history_rows: 0,
            history_wrapped: Vec::new(),
            primary: None,
            state,
            title: callbacks.title.clone(),
            scrolled: callbacks.scrolled,
            history_follows: false,
        }
    }

    /// A screen showing what `snapshot` showed, keeping up to `scrollback` rows and
    /// `scrollback_bytes` bytes of history, as the session's own screen does.
    pub fn from_snapshot(
        snapshot: &Snapshot,
        scrollback: usize,
        scrollback_bytes: usize,
    ) -> Screen {
        let mut screen = Screen::new(Size::new(snapshot.rows, snapshot.cols), scrollback)
            .with_byte_limit(scrollback_bytes);
        let callbacks = screen.parser.callbacks_mut();
        if snapshot.history_rows > 0 {
            let mut wrapped = snapshot.history_wrapped.iter().copied().peekable();
            let rows = snapshot
                .history
                .split('\n')
                .take(snapshot.history_rows as usize);
            for (i, row) in rows.enumerate() {
                let w = wrapped.next_if_eq(&(i as u32)).is_some();
                callbacks.remember(row, w);
            }
        }
        callbacks.title = snapshot.title.clone();
        callbacks.scrolled = callbacks.scrolled.max(snapshot.scrolled);
        if let Some(primary) = &snapshot.primary {
            screen.replay(primary.as_bytes());
        }
        screen.replay(snapshot.state.as_bytes());
        // Replies to queries are the server's to send; a mirror only shows.
        screen.parser.callbacks_mut().replies.clear();
        screen
    }

    /// The visible text, rows joined by newlines, trailing blanks trimmed.
    pub fn text(&self) -> String {
        self.parser.screen().contents()
    }

    /// The text of the cursor's row up to the cursor: what a prompt looks like.
    pub fn text_before_cursor(&self) -> String {
        let vt = self.parser.screen();
        let (row, col) = vt.cursor_position();
        vt.rows(0, col).nth(row as usize).unwrap_or_default()
    }
}

/// The bytes a chunk may hold to be a flood of plain lines: printable ASCII, tabs and
/// line breaks. A table, since every byte of a flood is looked up here.
static PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        t[b] = true;
        b += 1;
    }
    t[b'\t' as usize] = true;
    t[b'\r' as usize] = true;
    t[b'\n' as usize] = true;
    t
};

/// A line of text with its tabs turned into the blanks they skip (stops every eight
/// columns, the parser's own), or `None` when a line with tabs reaches the last column:
/// there a tab stops short instead of wrapping, which plain text cannot say.
///
/// Tabs after the last character are dropped: a tab moves the cursor without writing,
/// so the parser's row ends at that character, and blanks kept past it would make the
/// row wider than the one the parser holds (and wrap it at a narrower width).
fn expand_tabs(text: &[u8], cols: usize) -> Option<std::borrow::Cow<'_, [u8]>> {
    if !text.contains(&b'\t') {
        return Some(text.into());
    }
    let mut out = Vec::with_capacity(text.len() + 8);
    let mut written = 0;
    for &b in text {
        if b == b'\t' {
            out.resize((out.len() / 8 + 1) * 8, b' ');
        } else {
            out.push(b);
            written = out.len();
        }
    }
    if out.len() >= cols {
        return None;
    }
    out.truncate(written);
    Some(out.into())
}

/// The normal screen behind the alternate one, as escape sequences that redraw it and
/// put its cursor back: what a full-screen program (an editor, `less`) returns to when
/// it ends. vt100 draws only the screen in use, so a copy of the screen leaves the
/// alternate one, as the program will.
fn primary_state(vt: &vt100::Screen, escapes: &super::escapes::Escapes) -> String {
    let (rows, cols) = vt.size();
    let mut copy = vt100::Parser::new(rows, cols, 0);
    *copy.screen_mut() = vt.clone();
    copy.process(b"\x1b[?1049l");
    copy.screen().state_formatted() + &escapes.normal_screen_formatted(copy.screen())
}

/// A stored history row as the text it shows: SGR codes dropped, cursor-forward (how
/// formatted rows skip blank cells) turned back into spaces.
fn plain_row(row: &str) -> String {
    unformat_row(row, false)
}

/// A formatted row (a history row, or one of `rows_formatted`) as text with its
/// colours: the SGR codes kept, cursor-forward turned back into spaces, the pen reset
/// at the end when it was changed.
fn coloured_row(row: &str) -> String {
    let mut out = unformat_row(row, true);
    if out.contains('\x1b') {
        out.push_str("\x1b[0m");
    }
    out
}

fn unformat_row(row: &str, keep_sgr: bool) -> String {
    let mut out = String::new();
    let mut chars = row.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            let mut params = String::new();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    if c == 'C' {
                        let n: usize = params.trim_start_matches('[').parse().unwrap_or(1);
                        out.push_str(&" ".repeat(n));
                    } else if c == 'm' && keep_sgr {
                        out.push('\x1b');
                        out.push_str(&params);
                        out.push('m');
                    }
                    break;
                }
                params.push(c);
            }
        } else {
            out.push(c);
        }
    }
    out.truncate(out.trim_end().len());
    out
}

/// A screen's text as lines in one string: see [`Screen::logical_text`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogicalText {
    /// Every line, each ending in a newline.
    pub text: String,
    /// Where each line starts in `text`, and the number of the row it starts on.
    pub lines: Vec<(usize, u64)>,
}

/// Ends the last line of `all`: blanks at its end dropped, a newline after it.
fn end_line(all: &mut LogicalText) {
    let start = all.lines.last().map_or(0, |l| l.0);
    let keep = all.text[start..].trim_end().len();
    all.text.truncate(start + keep);
    all.text.push('\n');
}

/// What the terminal pane draws: the live screen, or a rebuilt scrolled-back one.
pub enum View<'a> {
    Live(&'a vt100::Screen),
    Scrolled(Box<vt100::Parser>),
}

impl View<'_> {
    pub fn screen(&self) -> &vt100::Screen {
        match self {
            View::Live(s) => s,
            View::Scrolled(p) => p.screen(),
        }
    }
}

/// Row `r` of `vt` as a history row is stored: text and SGR codes, from the default
/// pen. Blank cells at its end are left out unless `wrapped` (then they are text of
/// a line that goes on).
fn row_text(vt: &vt100::Screen, r: u16, wrapped: bool) -> String {
    let (_, cols) = vt.size();
    let cells: Vec<&vt100::Cell> = (0..cols.get()).filter_map(|c| vt.cell(r, c)).collect();
    let plain = |c: &vt100::Cell| {
        !c.has_contents()
            && c.fgcolor() == vt100::Color::Default
            && c.bgcolor() == vt100::Color::Default
            && !c.inverse()
            && !c.underline()
    };
    let end = match wrapped {
        true => cells.len(),
        false => cells.iter().rposition(|c| !plain(c)).map_or(0, |i| i + 1),
    };
    let mut out = String::new();
    let mut pen = String::new();
    for cell in &cells[..end] {
        if cell.is_wide_continuation() {
            continue;
        }
        let sgr = sgr_of(cell);
        if sgr != pen {
            out.push_str(&sgr);
            pen = sgr;
        }
        match cell.has_contents() {
            true => out.push_str(cell.contents()),
            false => out.push(' '),
        }
    }
    out
}

/// The SGR sequence that sets a cell's attributes from nothing.
pub(super) fn sgr_of(cell: &vt100::Cell) -> String {
    let mut sgr = String::from("\x1b[0");
    for (on, code) in [
        (cell.bold(), "1"),
        (cell.dim(), "2"),
        (cell.italic(), "3"),
        (cell.underline(), "4"),
        (cell.inverse(), "7"),
    ] {
        if on {
            sgr.push(';');
            sgr.push_str(code);
        }
    }
    let color = |sgr: &mut String, color: vt100::Color, base: u8, bright: u8, ext: u8| match color {
        vt100::Color::Default => {}
        vt100::Color::Idx(i) if i < 8 => sgr.push_str(&format!(";{}", base + i)),
        vt100::Color::Idx(i) if i < 16 => sgr.push_str(&format!(";{}", bright + i - 8)),
        vt100::Color::Idx(i) => sgr.push_str(&format!(";{ext};5;{i}")),
        vt100::Color::Rgb(r, g, b) => sgr.push_str(&format!(";{ext};2;{r};{g};{b}")),
    };
    color(&mut sgr, cell.fgcolor(), 30, 90, 38);
    color(&mut sgr, cell.bgcolor(), 40, 100, 48);
    sgr.push('m');
    sgr
}

/// The size the parser gets: at least 1x1, and never past [`Size::MAX`], whatever a
/// caller (or a snapshot from a server) built the `Size` with.
fn non_zero(size: Size) -> (NonZeroU16, NonZeroU16) {
    let side = |n: u16| NonZeroU16::new(n.min(Size::MAX)).unwrap_or(NonZeroU16::MIN);
    (side(size.rows), side(size.cols))
}

#[cfg(test)]
mod tests {

    /// A title carries no invisible or reordering characters into the frame and tabs.
    #[test]
    fn titles_are_sanitised() {
        let mut s = Screen::new(Size::new(24, 80), 100);
        s.feed("\x1b]2;job\u{202E}gnp.exe\u{200B}\u{0301} run\x07".as_bytes());
        assert_eq!(s.title(), Some("jobgnp.exe run"));
    }

    /// Wide, coloured rows are bounded by bytes, not only by their count.
    #[test]
    fn scrollback_is_bounded_in_bytes() {
        let limit = 256 * 1024;
        let mut s = Screen::new(Size::new(24, 80), 10_000).with_byte_limit(limit);
        let row = "\x1b[38;5;196m漢\x1b[38;5;46m字\x1b[0m".repeat(20) + "\r\n";
        for _ in 0..5_000 {
            s.feed(row.as_bytes());
        }
        let kept: usize = s.history().map(str::len).sum();
        assert!(kept <= limit, "{kept} bytes kept");
        assert!(s.scrollback_len() > 100, "only {} rows", s.scrollback_len());
        // The newest rows are the ones kept.
        assert!(s.history().last().unwrap().contains('字'));
    }

    use super::*;
    use proptest::prelude::*;

    /// Random output: plain lines mostly, sometimes colours, stray CRs, long lines.
    fn output() -> impl Strategy<Value = Vec<u8>> {
        let line = prop_oneof![
            8 => "[ -~]{0,30}".prop_map(|s| format!("{s}\r\n")),
            1 => "[ -~]{60,200}".prop_map(|s| format!("{s}\r\n")),
            1 => "[a-z]{1,10}".prop_map(|s| format!("\x1b[31m{s}\x1b[m\r\n")),
            1 => "[a-z]{1,10}".prop_map(|s| format!("{s}\r{s}\r\n")),
            2 => "[a-z\t]{0,30}".prop_map(|s| format!("> {s}\r\n")),
            1 => "[a-z]{0,10}".prop_map(|s| format!("{s}\n")),
            // What vt100 leaves to bioxen: character sets left designated or shifted,
            // insert mode, autowrap off, tab stops, the alignment pattern, column mode.
            1 => "[_-~]{0,10}".prop_map(|s| format!("\x1b(0{s}\r\n")),
            1 => "[a-z]{0,10}".prop_map(|s| format!("\x1b(B{s}\x1b)0\x0e{s}\r\n")),
            1 => "[a-z]{0,10}".prop_map(|s| format!("\x0f{s}\x1b[4h{s}\r\n")),
            1 => "[a-z]{0,100}".prop_map(|s| format!("\x1b[4l\x1b[?7l{s}\r\n")),
            1 => "[a-z]{0,10}".prop_map(|s| format!("\x1b[?7h\x1b[3g{s}\x1bH\t{s}\r\n")),
            1 => Just("\x1b#8\x1b[?3l\x1bc".to_string()),
            // Scroll regions, origin mode and the alternate screen, with the cursor
            // moved inside them.
            1 => "[a-z]{0,10}".prop_map(|s| format!("\x1b[2;4r\x1b[?6h\x1b[2;1H{s}\r\n{s}")),
            1 => "[a-z]{0,10}".prop_map(|s| format!("\x1b[?6l\x1b[r{s}\x1b[3;2H")),
            1 => "[a-z]{0,10}".prop_map(|s| format!("\x1b[?1049h\x1b[1;3r\x1b[3;1H{s}\n{s}\n")),
            1 => Just("\x1b[?1049l\x1b7\x1b[?6h\x1b8".to_string()),
        ];
        proptest::collection::vec(line, 0..300).prop_map(|ls| ls.concat().into_bytes())
    }

    /// Modes in which plain text is not drawn as it is: a line-drawing set in G0 or
    /// shifted in through G1, insert mode, autowrap off, tab stops, a scroll region;
    /// and none.
    const MODES: &[&str] = &[
        "",
        "\x1b(0",
        "\x1b)0\x0e",
        "\x1b(A",
        "\x1b[4h",
        "\x1b[?7l",
        "\x1b[3g\x1bH",
        "\x1b(0\x1b(B",
        "\x1b[1;2r",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// The flood fast path leaves exactly the screen and history the parser would.
        #[test]
        fn fast_path_matches_the_parser(
            data in output(),
            rows in 2u16..30,
            cols in 4u16..90,
            cuts in proptest::collection::vec(1usize..4000, 0..6),
            cap in 0usize..500,
            mode in proptest::sample::select(MODES),
            flood in proptest::collection::vec("[ -~\t]{0,40}", 0..200),
        ) {
            let size = Size::new(rows, cols);
            let mut fast = Screen::new(size, cap);
            let mut slow = Screen::without_fast_path(size, cap);
            let mut pos: usize = 0;
            for cut in cuts.iter().chain(std::iter::once(&usize::MAX)) {
                let end = pos.saturating_add(*cut).min(data.len());
                fast.feed(&data[pos..end]);
                slow.feed(&data[pos..end]);
                pos = end;
            }
            // A flood in one chunk, after a mode that changes how text is drawn.
            let flood = flood.iter().map(|l| format!("{l}\r\n")).collect::<String>();
            for chunk in [mode.as_bytes(), flood.as_bytes()] {
                fast.feed(chunk);
                slow.feed(chunk);
            }
            prop_assert_eq!(fast.text(), slow.text());
            prop_assert_eq!(fast.vt().cursor_position(), slow.vt().cursor_position());
            let f: Vec<String> = fast.history().map(plain_row).collect();
            let s: Vec<String> = slow.history().map(plain_row).collect();
            prop_assert_eq!(f, s);
            prop_assert_eq!(fast.history_wrapped(), slow.history_wrapped());
        }
    }

    /// The text a screen holds as lines: history and screen rows, joined where they
    /// soft-wrapped, without blanks at the ends of lines or blank lines below the
    /// last text.
    fn logical_text(s: &Screen) -> String {
        let lines: Vec<String> = s.logical_lines().into_iter().map(|(_, l)| l).collect();
        lines.join("\n")
    }

    /// Each history row carries all of its own attributes, whatever the rows before it
    /// left set, and says whether its line went on in the next row.
    #[test]
    fn history_rows_carry_their_own_colours_and_wraps() {
        let mut s = Screen::without_fast_path(Size::new(2, 10), 100);
        s.feed(b"plain\r\n\x1b[31mred\r\nstill red\x1b[0m\r\n\r\nplain again\r\n");
        s.feed(b"\x1b[1mbold\x1b[0m\r\nlast\r\n\r\n");
        let rows: Vec<&str> = s.history().collect();
        assert_eq!(
            rows,
            [
                "plain",
                "\x1b[31mred",
                "\x1b[31mstill red",
                "",
                "plain agai",
                "n",
                "\x1b[1mbold",
                "last",
            ]
        );
        assert_eq!(
            s.history_wrapped(),
            [false, false, false, false, true, false, false, false]
        );
    }

    /// A stop set while a wrap is pending lies on the last column, as on a terminal,
    /// so a mirror made then tabs to the same place once both grow wider.
    #[test]
    fn a_stop_set_at_the_margin_survives_a_mirror_and_a_resize() {
        let mut s = Screen::new(Size::new(11, 3), 10_000);
        s.feed(b"\x1b[3gaaaaaa\x1bH\taaaaaa\r\n");
        let mut m = Screen::from_snapshot(&s.snapshot(), 10_000, DEFAULT_SCROLLBACK_BYTES);
        for screen in [&mut s, &mut m] {
            screen.resize(Size::new(2, 5));
            screen.feed(b"> \ta\r\n");
        }
        assert_eq!(logical_text(&m), logical_text(&s));
        // The stop is at column 2, so a tab from there goes to the last column.
        assert!(
            logical_text(&s).ends_with(">   a"),
            "{:?}",
            logical_text(&s)
        );
    }

    /// A stop that a narrower window cannot show, and one set among the defaults:
    /// after the window grows, a mirror made while it was narrow tabs as its session
    /// does, since a new width brings back the default stops in both.
    #[test]
    fn stops_beyond_a_narrowed_window_do_not_split_a_mirror_from_its_session() {
        for setup in [
            &b"\x1b[?7h\x1b[3gaaaaaa\x1bH\taaaaaa\r\n"[..],
            &b"aaa\x1bH\r\n"[..],
        ] {
            let mut s = Screen::new(Size::new(6, 34), 10_000);
            s.feed(setup);
            s.resize(Size::new(2, 2));
            let mut m = Screen::from_snapshot(&s.snapshot(), 10_000, DEFAULT_SCROLLBACK_BYTES);
            for screen in [&mut s, &mut m] {
                screen.resize(Size::new(2, 20));
                screen.feed(b"> \ta\ta\r\n");
            }
            assert_eq!(logical_text(&m), logical_text(&s));
            assert!(
                logical_text(&s).ends_with(">       a       a"),
                "{:?}",
                logical_text(&s)
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// A window made smaller and then as large as before shows the text it showed,
        /// with the cursor where it was: lines are laid out again, not cut.
        #[test]
        fn shrinking_then_growing_back_keeps_the_text(
            lines in proptest::collection::vec("[!-~][ -~]{0,150}|", 0..60),
            prompt in "[!-~]{0,3}",
            rows in 2u16..40,
            cols in 4u16..120,
            // vt100 keeps no wrap state on a one-row screen.
            small_rows in 2u16..40,
            small_cols in 1u16..120,
        ) {
            let mut s = Screen::new(Size::new(rows, cols), 10_000);
            let mut out = lines.iter().map(|l| format!("{l}\r\n")).collect::<String>();
            out.push_str(&prompt);
            s.feed(out.as_bytes());
            let before = logical_text(&s);
            let cursor = s.vt().cursor_position();
            s.resize(Size::new(small_rows.min(rows), small_cols.min(cols)));
            prop_assert_eq!(logical_text(&s), before.clone(), "at the small size");
            s.resize(Size::new(rows, cols));
            prop_assert_eq!(logical_text(&s), before);
            prop_assert_eq!(s.vt().cursor_position(), cursor);
        }

    }

    /// What a session's screen goes through after a mirror is made of it: output and
    /// resizes, in the order the server sends them to the mirror.
    #[derive(Debug, Clone)]
    enum Step {
        Output(String),
        Resize(u16, u16),
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        let step = prop_oneof![
            3 => proptest::collection::vec("[!-~][ -~]{0,120}|", 0..20)
                .prop_map(|ls| Step::Output(ls.iter().map(|l| format!("{l}\r\n")).collect())),
            1 => "[!-~]{0,90}".prop_map(Step::Output),
            // Every kind of output but a full-screen program's: resized under one, the
            // normal screen behind it is resized by vt100 alone (see the note on
            // `resize`).
            2 => (0usize..14)
                .prop_filter("not full-screen", |c| *c != 12)
                .prop_flat_map(class_output)
                .prop_map(Step::Output),
            2 => (2u16..30, 2u16..100).prop_map(|(r, c)| Step::Resize(r, c)),
        ];
        proptest::collection::vec(step, 0..12)
    }

    /// Output of one kind besides plain lines: colours, stray CRs, tabs, character
    /// sets, insert mode, autowrap off, tab stops, resets, scroll regions with origin
    /// mode, saved cursors (12 is a full-screen program entered).
    fn class_output(class: usize) -> BoxedStrategy<String> {
        let plain = "[ -~]{0,100}".prop_map(|s| format!("{s}\r\n")).boxed();
        let special: BoxedStrategy<String> = match class {
            0 => "[a-z]{0,10}"
                .prop_map(|s| format!("\x1b[31m{s}\x1b[m\r\n"))
                .boxed(),
            1 => "[a-z]{0,10}".prop_map(|s| format!("{s}\r{s}\r\n")).boxed(),
            2 => "[a-z\t]{0,30}".prop_map(|s| format!("> {s}\r\n")).boxed(),
            3 => "[a-z]{0,10}".prop_map(|s| format!("{s}\n")).boxed(),
            4 => "[_-~]{0,10}".prop_map(|s| format!("\x1b(0{s}\r\n")).boxed(),
            5 => "[a-z]{0,10}"
                .prop_map(|s| format!("\x1b(B{s}\x1b)0\x0e{s}\r\n"))
                .boxed(),
            6 => "[a-z]{0,10}"
                .prop_map(|s| format!("\x0f{s}\x1b[4h{s}\r\n"))
                .boxed(),
            7 => "[a-z]{0,100}"
                .prop_map(|s| format!("\x1b[4l\x1b[?7l{s}\r\n"))
                .boxed(),
            // A stop set among the default ones, or alone after clearing them all.
            8 => (any::<bool>(), "[a-z]{0,10}")
                .prop_map(|(clear, s)| {
                    let clear = if clear { "\x1b[3g" } else { "" };
                    format!("\x1b[?7h{clear}{s}\x1bH\t{s}\r\n")
                })
                .boxed(),
            9 => Just("\x1b#8\x1b[?3l\x1bc".to_string()).boxed(),
            10 => "[a-z]{0,10}"
                .prop_map(|s| format!("\x1b[2;4r\x1b[?6h\x1b[2;1H{s}\r\n{s}"))
                .boxed(),
            11 => "[a-z]{0,10}"
                .prop_map(|s| format!("\x1b[?6l\x1b[r{s}\x1b[3;2H"))
                .boxed(),
            12 => "[a-z]{0,10}"
                .prop_map(|s| format!("\x1b[?1049h\x1b[1;3r\x1b[3;1H{s}\n{s}\n"))
                .boxed(),
            _ => Just("\x1b[?1049l\x1b7\x1b[?6h\x1b8".to_string()).boxed(),
        };
        proptest::collection::vec(prop_oneof![3 => plain, 1 => special], 0..30)
            .prop_map(|v| v.concat())
            .boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// A mirror made at any point and resized with its session, as a dashboard's
        /// is, holds what the session's screen holds: the same lines, wrapped the same,
        /// the cursor in the same place.
        #[test]
        fn a_mirror_resized_with_its_session_stays_equal(
            before in steps(),
            after in steps(),
            rows in 2u16..30,
            cols in 2u16..100,
        ) {
            let mut s = Screen::new(Size::new(rows, cols), 10_000);
            let apply = |screen: &mut Screen, step: &Step| match step {
                Step::Output(text) => {
                    screen.feed(text.as_bytes());
                }
                Step::Resize(r, c) => screen.resize(Size::new(*r, *c)),
            };
            for step in &before {
                apply(&mut s, step);
            }
            let mut m = Screen::from_snapshot(&s.snapshot(), 10_000, DEFAULT_SCROLLBACK_BYTES);
            for step in &after {
                apply(&mut s, step);
                apply(&mut m, step);
                prop_assert_eq!(logical_text(&m), logical_text(&s), "after {:?}", step);
                prop_assert_eq!(m.vt().cursor_position(), s.vt().cursor_position());
                prop_assert_eq!(m.history_wrapped(), s.history_wrapped());
            }
        }

        /// A client that detaches and attaches again at any points (each attach a new
        /// mirror from the server's snapshot), while output and resizes go on, shows
        /// what the server's screen shows after every step: lines, wraps, cursor,
        /// history.
        #[test]
        fn a_client_reattached_at_any_points_shows_the_servers_screen(
            steps in steps(),
            reattach in proptest::collection::vec(any::<bool>(), 12),
            rows in 2u16..30,
            cols in 2u16..100,
        ) {
            let mut server = Screen::new(Size::new(rows, cols), 10_000);
            let mirror = |s: &Screen| Screen::from_snapshot(&s.snapshot(), 10_000, DEFAULT_SCROLLBACK_BYTES);
            let mut client = mirror(&server);
            for (step, again) in steps.iter().zip(reattach.iter().chain(std::iter::repeat(&false))) {
                if *again {
                    client = mirror(&server);
                }
                for screen in [&mut server, &mut client] {
                    match step {
                        Step::Output(text) => {
                            screen.feed(text.as_bytes());
                        }
                        Step::Resize(r, c) => screen.resize(Size::new(*r, *c)),
                    }
                }
                prop_assert_eq!(logical_text(&client), logical_text(&server), "after {:?}", step);
                prop_assert_eq!(client.vt().cursor_position(), server.vt().cursor_position());
                prop_assert_eq!(client.history_wrapped(), server.history_wrapped());
                let history = |s: &Screen| s.history().map(plain_row).collect::<Vec<_>>();
                prop_assert_eq!(history(&client), history(&server));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(100))]

        /// REPL-like floods, whose results are tab-separated, take the fast path and
        /// leave what the parser leaves: rows as wide as the parser's, so that a
        /// narrower window wraps them alike.
        #[test]
        fn tabbed_floods_take_the_fast_path(
            rows in 2u16..30,
            cols in 20u16..90,
            flood in proptest::collection::vec("[a-z ]{0,5}\t[a-z]{0,5}\t?|> [ -~]{0,15}", 50..300),
        ) {
            let size = Size::new(rows, cols);
            let mut fast = Screen::new(size, 1000);
            let mut slow = Screen::without_fast_path(size, 1000);
            let flood = flood.iter().map(|l| format!("{l}\r\n")).collect::<String>();
            for chunk in ["\r\n".repeat(rows as usize).as_bytes(), flood.as_bytes()] {
                fast.feed(chunk);
                slow.feed(chunk);
            }
            prop_assert_eq!(fast.fast_chunks, 1);
            prop_assert_eq!(fast.text(), slow.text());
            prop_assert_eq!(fast.vt().cursor_position(), slow.vt().cursor_position());
            let f: Vec<String> = fast.history().map(plain_row).collect();
            let s: Vec<String> = slow.history().map(plain_row).collect();
            prop_assert_eq!(f, s);
            for screen in [&mut fast, &mut slow] {
                screen.resize(Size::new(rows, cols / 2));
            }
            prop_assert_eq!(logical_text(&fast), logical_text(&slow));
            prop_assert_eq!(fast.vt().cursor_position(), slow.vt().cursor_position());
            prop_assert_eq!(fast.history_wrapped(), slow.history_wrapped());
        }

        /// A mirror made from a snapshot at any point goes on showing what the
        /// session's screen shows, whatever modes the output left set.
        #[test]
        fn a_mirror_made_anywhere_keeps_up(
            data in output(),
            cut in 0usize..8000,
        ) {
            let size = Size::new(6, 30);
            let mut s = Screen::new(size, 50);
            let cut = cut.min(data.len());
            s.feed(&data[..cut]);
            let mut m = Screen::from_snapshot(&s.snapshot(), 50, DEFAULT_SCROLLBACK_BYTES);
            s.feed(&data[cut..]);
            m.feed(&data[cut..]);
            prop_assert_eq!(m.text(), s.text());
            prop_assert_eq!(m.vt().cursor_position(), s.vt().cursor_position());
        }
    }

    /// A dashboard can attach between two reads that split an escape sequence: the
    /// sequence's end must not show up in its mirror as text.
    #[test]
    fn a_mirror_made_mid_sequence_finishes_it() {
        for (head, tail) in [
            ("red\x1b[3", "2mgreen"),
            ("red\x1b", "[?25l\x1b[32mgreen"),
            ("red\x1b]2;ti", "tle\x07\x1b[32mgreen"),
            ("red\x1b(", "0q\x1b(B\x1b[32mgreen"),
        ] {
            let mut s = Screen::new(Size::new(3, 20), 10);
            s.feed(head.as_bytes());
            let mut m = Screen::from_snapshot(&s.snapshot(), 10, DEFAULT_SCROLLBACK_BYTES);
            for screen in [&mut s, &mut m] {
                screen.feed(tail.as_bytes());
                assert!(screen.text().ends_with("green"), "{:?}", screen.text());
                assert_eq!(
                    screen.vt().cell(0, 4).unwrap().fgcolor(),
                    vt100::Color::Idx(2)
                );
            }
            assert_eq!(m.text(), s.text());
        }
    }

    /// A dashboard attaching while a program scrolls a region (a pager's body under a
    /// fixed header) sees the header stay, as the session's own screen does; the
    /// cursor saved with DECSC comes back in it too.
    #[test]
    fn a_mirror_keeps_the_scroll_region_origin_mode_and_saved_cursor() {
        let mut s = Screen::new(Size::new(5, 20), 10);
        s.feed(b"header\x1b[2;5r\x1b[?6h\x1b[2;3Hsaved\x1b7\x1b[4;1Hbody 1\r\nbody 2");
        let mut m = Screen::from_snapshot(&s.snapshot(), 10, DEFAULT_SCROLLBACK_BYTES);
        for screen in [&mut s, &mut m] {
            screen.feed(b"\r\nbody 3\r\nbody 4\x1b8X");
        }
        assert_eq!(s.text(), "header\nbody 1\nbody 2 X\nbody 3\nbody 4");
        assert_eq!(m.text(), s.text());
        assert_eq!(m.vt().cursor_position(), s.vt().cursor_position());
    }

    /// DEC line drawing shows as box drawing on the screen, in the history, and in a
    /// mirror made while the line-drawing set was in use.
    #[test]
    fn line_drawing_is_drawn_everywhere() {
        let mut s = Screen::new(Size::new(3, 20), 100);
        s.feed(b"\x1b(0lqqk\r\nx");
        let mut m = Screen::from_snapshot(&s.snapshot(), 100, DEFAULT_SCROLLBACK_BYTES);
        for screen in [&mut s, &mut m] {
            screen.feed(b"  x\r\nmqqj\x1b(B\r\nq\r\n\r\n");
            assert_eq!(screen.text(), "q");
            let history: Vec<String> = screen.history().map(plain_row).collect();
            assert_eq!(history, ["┌──┐", "│  │", "└──┘"]);
            assert_eq!(screen.view(3).screen().contents(), "┌──┐\n│  │\n└──┘");
        }
    }

    /// A mirror made from a snapshot shows the same screen, history, cursor, modes and
    /// title, and follows further output as the original does.
    #[test]
    fn a_snapshot_replays_into_the_same_screen() {
        let mut s = Screen::new(Size::new(6, 30), 100);
        s.feed(b"\x1b]2;job\x07");
        for i in 0..20 {
            s.feed(format!("\x1b[1;3{}mrow {i}\x1b[m\r\n", i % 8).as_bytes());
        }
        s.feed(b"\x1b[?2004h\x1b[?1h> x = ");
        let mut m = Screen::from_snapshot(&s.snapshot(), 100, DEFAULT_SCROLLBACK_BYTES);
        assert_eq!(m.text(), s.text());
        assert_eq!(m.title(), Some("job"));
        assert_eq!(m.vt().cursor_position(), s.vt().cursor_position());
        assert!(m.vt().bracketed_paste() && m.vt().application_cursor());
        assert_eq!(
            m.history().collect::<Vec<_>>(),
            s.history().collect::<Vec<_>>()
        );
        assert_eq!(
            m.vt().cell(0, 0).unwrap().fgcolor(),
            s.vt().cell(0, 0).unwrap().fgcolor()
        );
        for screen in [&mut s, &mut m] {
            screen.feed(b"42\r\nmore\r\n");
        }
        assert_eq!(m.text(), s.text());
        assert_eq!(m.view(3).screen().contents(), s.view(3).screen().contents());
    }

    /// Attached while a full-screen program runs, a mirror shows the normal screen
    /// and its cursor again when the program ends, as the session's own screen does.
    #[test]
    fn a_snapshot_keeps_the_screen_behind_a_full_screen_program() {
        let mut s = Screen::new(Size::new(6, 30), 100);
        s.feed(b"\x1b[32mkept line\x1b[m\r\n> x = 4");
        s.feed(b"\x1b[?1049h\x1b[H\x1b[2Jeditor\x1b[3;5H");
        let mut m = Screen::from_snapshot(&s.snapshot(), 100, DEFAULT_SCROLLBACK_BYTES);
        assert_eq!(m.text(), "editor");
        assert_eq!(m.vt().cursor_position(), (2, 4));
        assert!(m.vt().alternate_screen());
        for screen in [&mut s, &mut m] {
            screen.feed(b"\x1b[?1049l2");
        }
        assert_eq!(s.text(), "kept line\n> x = 42");
        assert_eq!(m.text(), s.text());
        assert_eq!(m.vt().cursor_position(), s.vt().cursor_position());
        assert_eq!(m.vt().contents_formatted(), s.vt().contents_formatted());
        let snap = s.snapshot();
        assert_eq!(snap.primary, None, "no full-screen program, nothing behind");
    }

    #[test]
    fn answers_cursor_position_and_device_attributes() {
        let mut s = Screen::new(Size::new(10, 20), 0);
        assert_eq!(s.feed(b"abc\x1b[6n"), b"\x1b[1;4R");
        assert_eq!(s.feed(b"\x1b[c"), b"\x1b[?1;2c");
        assert!(s.feed(b"plain text").is_empty());
    }

    #[test]
    fn keeps_the_title() {
        let mut s = Screen::new(Size::new(10, 20), 0);
        s.feed(b"\x1b]2;my job\x07");
        assert_eq!(s.title(), Some("my job"));
    }

    #[test]
    fn zero_size_is_one_cell() {
        let mut s = Screen::new(Size { rows: 0, cols: 0 }, 10);
        s.feed(b"hello\r\nworld");
        s.resize(Size { rows: 0, cols: 5 });
        assert_eq!(s.size(), Size::new(1, 5));
    }

    #[test]
    fn scrollback_keeps_lines_with_their_colours() {
        let mut s = Screen::new(Size::new(5, 20), 100);
        for i in 0..50 {
            s.feed(format!("\x1b[31mline\x1b[m {i}\r\n").as_bytes());
        }
        assert_eq!(s.scrollback_len(), 46);
        let view = s.view(1000);
        let vt = view.screen();
        assert!(
            vt.contents().starts_with("line 0\nline 1\n"),
            "{}",
            vt.contents()
        );
        assert_eq!(vt.cell(0, 0).unwrap().fgcolor(), vt100::Color::Idx(1));
        assert_eq!(vt.cell(0, 5).unwrap().fgcolor(), vt100::Color::Default);
        // Partly scrolled: history on top, the live screen's first rows below.
        let text = s.view(2).screen().contents();
        assert_eq!(text, "line 44\nline 45\nline 46\nline 47\nline 48");
        assert!(matches!(s.view(0), View::Live(_)));
    }

    #[test]
    fn history_is_bounded_and_skips_the_alternate_screen() {
        let mut s = Screen::new(Size::new(3, 10), 10);
        for i in 0..100 {
            s.feed(format!("{i}\r\n").as_bytes());
        }
        assert_eq!(s.scrollback_len(), 10);
        s.feed(b"\x1b[?1049h");
        for i in 0..100 {
            s.feed(format!("alt {i}\r\n").as_bytes());
        }
        assert_eq!(s.scrollback_len(), 10);
        s.feed(b"\x1b[?1049l");
        assert!(
            s.view(10).screen().contents().starts_with("88\n"),
            "{}",
            s.view(10).screen().contents()
        );
    }
}
