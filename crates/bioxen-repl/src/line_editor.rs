//! The REPL's line editor.
//!
//! Written for one property the common editors lack: input typed ahead is never lost.
//! Keystrokes read past the end of a line stay in a buffer that outlives the call, so
//! several lines sent at once (a paste, or `send_input` twice in a row) are all
//! evaluated, one after the other, just as with a plain terminal.
//!
//! The terminal is in raw mode only while a line is being edited; a running chunk sees
//! a normal terminal, where Ctrl-C raises SIGINT and interrupts it.
//!
//! Keys: printable text, Enter, Backspace, Delete, Left/Right, Home/End, Ctrl-A/E/B/F,
//! Ctrl-K/U/W, Alt-B/F, Up/Down and Ctrl-P/N (history), Ctrl-R (reverse search), Ctrl-L,
//! Ctrl-C (drop the line), Ctrl-D (end of input on an empty line).

use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::RawFd;

use unicode_width::UnicodeWidthStr;

const STDIN: RawFd = 0;

/// What reading a line produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Line(String),
    /// Ctrl-C: the line was dropped.
    Interrupted,
    /// Ctrl-D on an empty line, or the input closed.
    Eof,
}

#[derive(Default)]
pub struct LineEditor {
    /// Bytes read from the terminal but not yet used: the type-ahead.
    pending: VecDeque<u8>,
    history: Vec<String>,
    closed: bool,
}

/// The line as last drawn: its length in characters, its display width, and whether
/// the cursor was at its end.
#[derive(Clone, Copy)]
struct Drawn {
    len: usize,
    width: usize,
    cursor_at_end: bool,
}

/// Editing state of the line being read.
struct Line {
    prompt: String,
    text: Vec<char>,
    cursor: usize,
    /// The rows above the cursor that the drawn line occupies.
    cursor_row: usize,
    /// What is on the screen, for the append-only fast path; `None` when it must be
    /// drawn whole.
    drawn: Option<Drawn>,
    /// How many leading characters are unchanged since the line was last drawn. With
    /// it the fast path knows that only text was added at the end without comparing
    /// (or copying) the whole line on each batch of keys: a pasted line of megabytes
    /// then costs time in proportion to its length, not to its length squared.
    unchanged: usize,
    history_pos: usize,
    /// The line being edited when history browsing started.
    saved: Option<Vec<char>>,
    search: Option<String>,
}

enum Key {
    Char(char),
    Enter,
    Backspace,
    Delete,
    Left,
    Right,
    Home,
    End,
    Up,
    Down,
    WordLeft,
    WordRight,
    KillEnd,
    KillStart,
    KillWord,
    ClearScreen,
    Interrupt,
    EndOfInput,
    Search,
    Cancel,
    Ignore,
}

impl LineEditor {
    pub fn new() -> Self {
        LineEditor::default()
    }

    pub fn add_history(&mut self, entry: &str) {
        if !entry.trim().is_empty() && self.history.last().is_none_or(|l| l != entry) {
            self.history.push(entry.to_string());
        }
    }

    /// Reads one line, showing `prompt`.
    pub fn read_line(&mut self, prompt: &str) -> Read {
        let mut out = std::io::stdout().lock();
        // SAFETY: isatty on a valid descriptor number has no preconditions.
        if unsafe { libc::isatty(STDIN) } == 0 {
            let _ = out.write_all(prompt.as_bytes());
            let _ = out.flush();
            return self.read_plain_line();
        }
        // Raw mode before the prompt: whatever is typed once the prompt shows must be
        // echoed by the editor, not by the kernel's cooked mode.
        let raw = RawMode::enable();
        let _ = out.write_all(prompt.as_bytes());
        let _ = out.flush();
        let mut line = Line {
            prompt: prompt.to_string(),
            text: Vec::new(),
            cursor: 0,
            cursor_row: 0,
            drawn: Some(Drawn {
                len: 0,
                width: 0,
                cursor_at_end: true,
            }),
            unchanged: 0,
            history_pos: self.history.len(),
            saved: None,
            search: None,
        };
        let result = loop {
            let Some(key) = self.next_key() else {
                break Read::Eof;
            };
            if let Some(done) = self.apply(&mut line, key, &mut out) {
                break done;
            }
            // Draw once per batch of keys, not once per key: type-ahead is fast.
            if self.pending.is_empty() {
                line.draw(&mut out);
            }
        };
        drop(raw);
        let _ = out.flush();
        result
    }

    /// Applies one key; returns the outcome when the line is finished.
    fn apply(&mut self, line: &mut Line, key: Key, out: &mut impl Write) -> Option<Read> {
        if line.search.is_some() {
            return self.apply_search(line, key, out);
        }
        match key {
            Key::Char(c) => {
                line.changed_from(line.cursor);
                line.text.insert(line.cursor, c);
                line.cursor += 1;
            }
            Key::Enter => {
                line.draw(out);
                line.move_to_end(out);
                let _ = out.write_all(b"\r\n");
                return Some(Read::Line(line.text.iter().collect()));
            }
            Key::Backspace if line.cursor > 0 => {
                line.cursor -= 1;
                line.changed_from(line.cursor);
                line.text.remove(line.cursor);
            }
            Key::Delete if line.cursor < line.text.len() => {
                line.changed_from(line.cursor);
                line.text.remove(line.cursor);
            }
            Key::Left => line.cursor = line.cursor.saturating_sub(1),
            Key::Right => line.cursor = (line.cursor + 1).min(line.text.len()),
            Key::Home => line.cursor = 0,
            Key::End => line.cursor = line.text.len(),
            Key::WordLeft => line.cursor = word_start(&line.text, line.cursor),
            Key::WordRight => line.cursor = word_end(&line.text, line.cursor),
            Key::KillEnd => {
                line.changed_from(line.cursor);
                line.text.truncate(line.cursor);
            }
            Key::KillStart => {
                line.changed_from(0);
                line.text.drain(..line.cursor);
                line.cursor = 0;
            }
            Key::KillWord => {
                let start = word_start(&line.text, line.cursor);
                line.changed_from(start);
                line.text.drain(start..line.cursor);
                line.cursor = start;
            }
            Key::Up if line.history_pos > 0 => {
                if line.saved.is_none() {
                    line.saved = Some(line.text.clone());
                }
                line.history_pos -= 1;
                line.set_text(self.history[line.history_pos].chars().collect());
            }
            Key::Down if line.history_pos < self.history.len() => {
                line.history_pos += 1;
                let text = match self.history.get(line.history_pos) {
                    Some(h) => h.chars().collect(),
                    None => line.saved.take().unwrap_or_default(),
                };

                line.set_text(text);
            }
            Key::ClearScreen => {
                let _ = out.write_all(b"\x1b[H\x1b[2J");
                line.cursor_row = 0;
                line.drawn = None;
            }
            Key::Interrupt => {
                line.move_to_end(out);
                let _ = out.write_all(b"^C\r\n");
                return Some(Read::Interrupted);
            }
            Key::EndOfInput if line.text.is_empty() => {
                let _ = out.write_all(b"\r\n");
                return Some(Read::Eof);
            }
            Key::EndOfInput if line.cursor < line.text.len() => {
                line.changed_from(line.cursor);
                line.text.remove(line.cursor);
            }
            Key::Search => {
                line.search = Some(String::new());
                line.drawn = None;
            }
            _ => {}
        }
        None
    }

    /// Ctrl-R mode: typed text narrows the search; Ctrl-R again finds an older match;
    /// Enter runs the match; Ctrl-G or Esc gives the line back; other keys edit it.
    fn apply_search(&mut self, line: &mut Line, key: Key, out: &mut impl Write) -> Option<Read> {
        let mut query = line.search.take().unwrap_or_default();
        let mut from = line.history_pos;
        match key {
            Key::Char(c) => {
                query.push(c);
                from = self.history.len();
            }
            Key::Backspace => {
                query.pop();
                from = self.history.len();
            }
            Key::Search => {}
            Key::Cancel | Key::Interrupt => {
                let saved = line.saved.take().unwrap_or_default();
                line.set_text(saved);
                line.history_pos = self.history.len();
                line.drawn = None;
                return None;
            }
            other => {
                line.drawn = None;
                return self.apply(line, other, out);
            }
        }
        if line.saved.is_none() {
            line.saved = Some(line.text.clone());
        }
        let found = self.history[..from.min(self.history.len())]
            .iter()
            .rposition(|h| h.contains(&query));
        if let Some(i) = found {
            line.history_pos = i;
            line.set_text(self.history[i].chars().collect());
        }
        line.search = Some(query);
        line.drawn = None;
        None
    }

    /// Without a terminal: a plain line, no editing.
    fn read_plain_line(&mut self) -> Read {
        let mut bytes = Vec::new();
        loop {
            while let Some(b) = self.pending.pop_front() {
                if b == b'\n' {
                    return Read::Line(String::from_utf8_lossy(&bytes).into_owned());
                }
                bytes.push(b);
            }
            if !self.fill(None) {
                return if bytes.is_empty() {
                    Read::Eof
                } else {
                    Read::Line(String::from_utf8_lossy(&bytes).into_owned())
                };
            }
        }
    }

    /// Reads more input into the buffer; waits at most `timeout_ms` when given.
    fn fill(&mut self, timeout_ms: Option<i32>) -> bool {
        if self.closed {
            return false;
        }
        if let Some(ms) = timeout_ms {
            let mut pfd = libc::pollfd {
                fd: STDIN,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pfd, 1, ms) } <= 0 {
                return false;
            }
        }
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reading into a local buffer of the given size.
            let n = unsafe { libc::read(STDIN, buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                self.pending.extend(&buf[..n as usize]);
                return true;
            }
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            self.closed = true;
            return false;
        }
    }

    fn next_byte(&mut self, wait: bool) -> Option<u8> {
        if self.pending.is_empty() && !self.fill(if wait { None } else { Some(50) }) {
            return None;
        }
        self.pending.pop_front()
    }

    /// Decodes the next key from the input.
    fn next_key(&mut self) -> Option<Key> {
        let b = self.next_byte(true)?;
        Some(match b {
            b'\r' | b'\n' => Key::Enter,
            0x7f | 0x08 => Key::Backspace,
            0x01 => Key::Home,
            0x02 => Key::Left,
            0x03 => Key::Interrupt,
            0x04 => Key::EndOfInput,
            0x05 => Key::End,
            0x06 => Key::Right,
            0x07 => Key::Cancel,
            0x09 => Key::Char(' '),
            0x0b => Key::KillEnd,
            0x0c => Key::ClearScreen,
            0x0e => Key::Down,
            0x10 => Key::Up,
            0x12 => Key::Search,
            0x15 => Key::KillStart,
            0x17 => Key::KillWord,
            0x1b => self.escape(),
            b if b < 0x20 => Key::Ignore,
            b => self.utf8(b),
        })
    }

    fn utf8(&mut self, first: u8) -> Key {
        let len = match first {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        };
        let mut bytes = vec![first];
        while bytes.len() < len {
            match self.next_byte(false) {
                Some(b) => bytes.push(b),
                None => break,
            }
        }
        match std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| s.chars().next())
        {
            Some(c) => Key::Char(c),
            None => Key::Ignore,
        }
    }

    /// An escape sequence (arrows, Home, Delete, ...) or Alt+key.
    fn escape(&mut self) -> Key {
        let Some(b) = self.next_byte(false) else {
            return Key::Cancel;
        };
        match b {
            b'[' | b'O' => {
                let mut params = Vec::new();
                let fin = loop {
                    match self.next_byte(false) {
                        Some(c @ 0x40..=0x7e) => break c,
                        Some(c) => params.push(c),
                        None => return Key::Ignore,
                    }
                };
                match (fin, params.as_slice()) {
                    (b'A', _) => Key::Up,
                    (b'B', _) => Key::Down,
                    (b'C', p) if p.ends_with(b";5") || p.ends_with(b";3") => Key::WordRight,
                    (b'D', p) if p.ends_with(b";5") || p.ends_with(b";3") => Key::WordLeft,
                    (b'C', _) => Key::Right,
                    (b'D', _) => Key::Left,
                    (b'H', _) => Key::Home,
                    (b'F', _) => Key::End,
                    (b'~', b"1" | b"7") => Key::Home,
                    (b'~', b"4" | b"8") => Key::End,
                    (b'~', b"3") => Key::Delete,
                    _ => Key::Ignore,
                }
            }
            b'b' | b'B' => Key::WordLeft,
            b'f' | b'F' => Key::WordRight,
            0x7f | 0x08 => Key::KillWord,
            _ => Key::Ignore,
        }
    }
}

impl Line {
    fn set_text(&mut self, text: Vec<char>) {
        self.changed_from(0);
        self.cursor = text.len();
        self.text = text;
    }

    /// Notes an edit at character `at`: what follows it may differ from the screen.
    fn changed_from(&mut self, at: usize) {
        self.unchanged = self.unchanged.min(at);
    }

    fn shown_prompt(&self) -> String {
        match &self.search {
            Some(q) => format!("(reverse-i-search)`{q}': "),
            None => self.prompt.clone(),
        }
    }

    /// Brings the screen up to date: appends when only text was typed at the end,
    /// redraws the whole line otherwise.
    fn draw(&mut self, out: &mut impl Write) {
        let cols = terminal_width();
        let width;
        if let Some(drawn) = self.drawn
            && drawn.cursor_at_end
            && self.cursor == self.text.len()
            && self.unchanged >= drawn.len
            && self.text.len() >= drawn.len
        {
            let added: String = self.text[drawn.len..].iter().collect();
            let _ = out.write_all(added.as_bytes());
            width = drawn.width + added.width();
            let end = self.prompt.width() + width;
            self.cursor_row = wrap_row(end, cols);
            if end > 0 && end % cols == 0 {
                // Leave the cursor on the next row, not in the pending-wrap column.
                let _ = out.write_all(b" \r");
            }
        } else {
            let prompt = self.shown_prompt();
            if self.cursor_row > 0 {
                let _ = write!(out, "\x1b[{}A", self.cursor_row);
            }
            let text: String = self.text.iter().collect();
            let _ = write!(out, "\r{prompt}{text}\x1b[J");
            width = text.width();
            let end = prompt.width() + width;
            if end > 0 && end % cols == 0 {
                let _ = out.write_all(b" \r");
            }
            let end_row = wrap_row(end, cols);
            let at = prompt.width() + self.text_width(self.cursor);
            let row = wrap_row(at, cols);
            if end_row > row {
                let _ = write!(out, "\x1b[{}A", end_row - row);
            }
            let _ = out.write_all(b"\r");
            if at % cols > 0 {
                let _ = write!(out, "\x1b[{}C", at % cols);
            }
            self.cursor_row = row;
        }
        // In search mode the prompt differs, and the next draw is whole anyway.
        self.drawn = Some(Drawn {
            len: self.text.len(),
            width,
            cursor_at_end: self.cursor == self.text.len(),
        });
        self.unchanged = self.text.len();
        let _ = out.flush();
    }

    /// Moves the cursor below the last row of the line (before printing more).
    fn move_to_end(&mut self, out: &mut impl Write) {
        let cols = terminal_width();
        let end = wrap_row(
            self.shown_prompt().width() + self.text_width(self.text.len()),
            cols,
        );
        if end > self.cursor_row {
            let _ = write!(out, "\x1b[{}B", end - self.cursor_row);
        }
        self.cursor_row = end;
    }

    fn text_width(&self, upto: usize) -> usize {
        self.text[..upto].iter().collect::<String>().width()
    }
}

/// The row (from the prompt's row) that column offset `width` falls on.
fn wrap_row(width: usize, cols: usize) -> usize {
    width / cols.max(1)
}

fn word_start(text: &[char], mut i: usize) -> usize {
    while i > 0 && !text[i - 1].is_alphanumeric() {
        i -= 1;
    }
    while i > 0 && text[i - 1].is_alphanumeric() {
        i -= 1;
    }
    i
}

fn word_end(text: &[char], mut i: usize) -> usize {
    while i < text.len() && !text[i].is_alphanumeric() {
        i += 1;
    }
    while i < text.len() && text[i].is_alphanumeric() {
        i += 1;
    }
    i
}

fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ fills a winsize struct we own.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0 {
            ws.ws_col as usize
        } else {
            80
        }
    }
}

/// Raw mode for the duration of one line; the previous mode comes back on drop.
struct RawMode(Option<libc::termios>);

impl RawMode {
    fn enable() -> Self {
        // SAFETY: termios calls on stdin with structs we own.
        unsafe {
            let mut old: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(STDIN, &mut old) != 0 {
                return RawMode(None);
            }
            let mut raw = old;
            raw.c_iflag &= !(libc::ICRNL | libc::IXON | libc::INLCR | libc::IGNCR);
            raw.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG | libc::IEXTEN);
            raw.c_cc[libc::VMIN] = 1;
            raw.c_cc[libc::VTIME] = 0;
            // TCSADRAIN, never TCSAFLUSH: input typed ahead must survive the switch.
            libc::tcsetattr(STDIN, libc::TCSADRAIN, &raw);
            RawMode(Some(old))
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            // SAFETY: restores the attributes read in `enable`.
            unsafe { libc::tcsetattr(STDIN, libc::TCSADRAIN, old) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        let t: Vec<char> = "local x = foo.bar".chars().collect();
        assert_eq!(word_start(&t, t.len()), 14);
        assert_eq!(word_start(&t, 14), 10);
        assert_eq!(word_end(&t, 0), 5);
        assert_eq!(word_end(&t, 5), 7);
    }
}
