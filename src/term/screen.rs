//! One session's virtual terminal: the VT parser, its scrollback, the window title and
//! the replies a program expects from a terminal.
//!
//! The parser keeps no scrollback of its own: vt100 slows down threefold with a large
//! one. Rows that scroll off the top are kept here instead, each as one compact string
//! of text and SGR codes, in a bounded ring. A scrolled-back view is rebuilt from those
//! strings only while someone looks at it, so output floods cost only the parse.
//!
//! Everything outside this file sees [`Screen`] only, so the parser behind it can be
//! swapped if measurements demand it.

use std::collections::VecDeque;
use std::num::NonZeroU16;

use crate::vm::Size;

/// A virtual terminal fed with a session's output.
pub struct Screen {
    parser: vt100::Parser<Callbacks>,
    /// Lines scrolled back in the view (0 = live).
    offset: usize,
}

/// What the parser reports back while processing output.
#[derive(Default)]
struct Callbacks {
    /// Answers to queries (cursor position, device attributes) waiting to be written
    /// back to the program.
    replies: Vec<u8>,
    /// The window title set through OSC 0 or OSC 2.
    title: Option<String>,
    /// Set when the program rang the bell.
    bell: bool,
    /// Rows that scrolled off the top of the main screen, oldest first.
    history: VecDeque<Box<str>>,
    /// How many rows `history` keeps.
    capacity: usize,
}

impl vt100::Callbacks for Callbacks {
    fn audible_bell(&mut self, _: &mut vt100::Screen) {
        self.bell = true;
    }

    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        let title: String = String::from_utf8_lossy(title)
            .chars()
            .filter(|c| !c.is_control())
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
        if alternate_screen || self.capacity == 0 {
            return;
        }
        let mut line = String::new();
        // A fresh state per row: every stored row carries all of its own attributes.
        let mut state = vt100::capture::BasicFormattedCaptureState::default();
        let _ = row.write_formatted_basic(&mut line, &mut state);
        if self.history.len() == self.capacity {
            self.history.pop_front();
        }
        self.history.push_back(line.into_boxed_str());
    }
}

impl Screen {
    pub fn new(size: Size, scrollback: usize) -> Self {
        let (rows, cols) = non_zero(size);
        let callbacks = Callbacks {
            capacity: scrollback,
            ..Callbacks::default()
        };
        Screen {
            parser: vt100::Parser::new_with_callbacks(rows, cols, 0, callbacks),
            offset: 0,
        }
    }

    /// Processes output bytes. Returns the replies the program asked for (empty almost
    /// always), to be written back to it.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.parser.process(bytes);
        std::mem::take(&mut self.parser.callbacks_mut().replies)
    }

    /// Resizes the terminal; sizes of zero are treated as one.
    pub fn resize(&mut self, size: Size) {
        let (rows, cols) = non_zero(size);
        let (cur_rows, cur_cols) = self.parser.screen().size();
        if (cur_rows, cur_cols) != (rows, cols) {
            self.parser.set_size(rows, cols);
        }
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

    /// Returns and clears whether the bell rang since the last call.
    pub fn take_bell(&mut self) -> bool {
        std::mem::take(&mut self.parser.callbacks_mut().bell)
    }

    /// Lines above the visible screen that can be scrolled back to.
    pub fn scrollback_len(&self) -> usize {
        self.parser.callbacks().history.len()
    }

    /// How far the view is scrolled back (0 = live).
    pub fn scroll_offset(&self) -> usize {
        self.offset
    }

    /// Scrolls the view to `offset` lines above the live screen (clamped).
    pub fn set_scroll_offset(&mut self, offset: usize) {
        self.offset = offset.min(self.scrollback_len());
    }

    /// The screen as the view shows it: the live screen, or, scrolled back, a screen
    /// rebuilt from the history rows and the top of the live screen.
    pub fn view(&self) -> View<'_> {
        if self.offset == 0 {
            return View::Live(self.parser.screen());
        }
        let live = self.parser.screen();
        let (rows, cols) = live.size();
        let history = &self.parser.callbacks().history;
        let rows_n = rows.get() as usize;
        // The window over history ++ live rows that ends `offset` rows above the bottom.
        let start = history.len() - self.offset;
        let from_history = self.offset.min(rows_n);
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

fn non_zero(size: Size) -> (NonZeroU16, NonZeroU16) {
    (
        NonZeroU16::new(size.rows).unwrap_or(NonZeroU16::MIN),
        NonZeroU16::new(size.cols).unwrap_or(NonZeroU16::MIN),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
        s.set_scroll_offset(1000);
        assert_eq!(s.scroll_offset(), 46, "clamped to the history");
        let view = s.view();
        let vt = view.screen();
        assert!(
            vt.contents().starts_with("line 0\nline 1\n"),
            "{}",
            vt.contents()
        );
        assert_eq!(vt.cell(0, 0).unwrap().fgcolor(), vt100::Color::Idx(1));
        assert_eq!(vt.cell(0, 5).unwrap().fgcolor(), vt100::Color::Default);
        // Partly scrolled: history on top, the live screen's first rows below.
        s.set_scroll_offset(2);
        let text = s.view().screen().contents();
        assert_eq!(text, "line 44\nline 45\nline 46\nline 47\nline 48");
        s.set_scroll_offset(0);
        assert!(matches!(s.view(), View::Live(_)));
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
        s.set_scroll_offset(10);
        assert!(
            s.view().screen().contents().starts_with("88\n"),
            "{}",
            s.view().screen().contents()
        );
    }
}
