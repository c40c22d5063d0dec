//! What vt100 leaves undone, done before it sees a session's output: the VT100
//! character sets (DEC line drawing), insert mode, tab stops, the screen alignment
//! pattern (DECALN), column mode's clear (DECCOLM), autowrap off (DECAWM), index and
//! next line (IND, NEL), and the cursor's return home after a scroll region is set.
//!
//! vt100 reports the escapes it skips through callbacks that can only read the screen,
//! so the gaps cannot be filled there. Instead this pre-parser follows the output with
//! the parser's own state machine (ground, escape, CSI, strings), passes every byte
//! through as it is, and where a sequence means more than vt100 does, adds the same
//! effect in sequences vt100 does handle, right after it. Characters in a special set
//! or in insert mode are replaced by what they show, or preceded by the insertion.
//!
//! In the common state (the ASCII set, no insert mode, the default tab stops) text is
//! skipped with `memchr` up to the next escape, so a flood costs next to nothing here.

use std::fmt::Write as _;

use unicode_width::UnicodeWidthChar;

const ESC: u8 = 0x1b;

/// A character set that can be designated into G0 or G1.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
enum Charset {
    #[default]
    Ascii,
    /// The United Kingdom set: `#` is the pound sign.
    Uk,
    /// DEC Special Graphics: line drawing and a few symbols in place of `_` to `~`.
    Graphics,
}

impl Charset {
    fn from_final(b: u8) -> Charset {
        match b {
            b'0' => Charset::Graphics,
            b'A' => Charset::Uk,
            _ => Charset::Ascii,
        }
    }

    /// The sequence designating this set into G0 (`(`) or G1 (`)`).
    fn designation(self, g: u8) -> String {
        let f = match self {
            Charset::Ascii => 'B',
            Charset::Uk => 'A',
            Charset::Graphics => '0',
        };
        format!("\x1b{}{f}", g as char)
    }

    /// What a printable ASCII byte shows in this set, when it is not itself.
    fn map(self, b: u8) -> Option<char> {
        match self {
            Charset::Ascii => None,
            Charset::Uk => (b == b'#').then_some('£'),
            Charset::Graphics => GRAPHICS
                .get(b.wrapping_sub(b'_') as usize)
                .copied()
                .filter(|_| b >= b'_'),
        }
    }
}

/// What byte `b` shows in DEC Special Graphics (`ESC ( 0`), when it is not itself.
pub fn dec_special_graphics(b: u8) -> Option<char> {
    Charset::Graphics.map(b)
}

/// DEC Special Graphics for `_` (0x5f) to `~` (0x7e), as the VT100 manual draws them.
const GRAPHICS: [char; 32] = [
    ' ', '◆', '▒', '␉', '␌', '␍', '␊', '°', '±', '␤', '␋', '┘', '┐', '┌', '└', '┼', '⎺', '⎻', '─',
    '⎼', '⎽', '├', '┤', '┴', '┬', '│', '≤', '≥', 'π', '≠', '£', '·',
];

/// Where the pre-parser is in an escape sequence; the same states as the parser's.
#[derive(Clone, Debug, Default)]
enum State {
    #[default]
    Ground,
    /// After ESC, with the first intermediate byte if any (`(` in `ESC ( 0`).
    Escape {
        intermediate: Option<u8>,
    },
    Csi(Csi),
    /// A CSI with bytes no sequence has: ignored up to its final byte.
    CsiIgnore,
    /// Inside an OSC (ended by BEL too) or a DCS, SOS, PM or APC string.
    Str {
        osc: bool,
    },
    /// Inside a UTF-8 character printed in insert mode.
    Utf8 {
        bytes: [u8; 4],
        have: u8,
        need: u8,
    },
}

#[derive(Clone, Debug, Default)]
struct Csi {
    private: Option<u8>,
    intermediate: Option<u8>,
    /// Parameters so far; the last is the one being read.
    params: [u16; 16],
    count: usize,
}

impl Csi {
    fn params(&self) -> &[u16] {
        &self.params[..=self.count]
    }

    fn first(&self) -> u16 {
        self.params[0]
    }
}

/// Tab stops, when a program has set or cleared any: vt100 knows only every eighth
/// column.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TabStops {
    /// Stops for the columns a program touched, from column 0.
    set: Vec<bool>,
    /// Whether columns beyond `set` keep the default stops (not after "clear all").
    default_beyond: bool,
}

impl TabStops {
    fn default_stop(col: usize) -> bool {
        col > 0 && col % 8 == 0
    }

    fn is_stop(&self, col: usize) -> bool {
        match self.set.get(col) {
            Some(&stop) => stop,
            None => self.default_beyond && Self::default_stop(col),
        }
    }

    fn set(&mut self, col: usize, stop: bool) {
        while self.set.len() <= col {
            let c = self.set.len();
            self.set.push(self.default_beyond && Self::default_stop(c));
        }
        self.set[col] = stop;
    }

    /// The column a tab at `col` moves to: the next stop, or the last column.
    fn next(&self, col: usize, cols: usize) -> usize {
        (col + 1..cols)
            .find(|&c| self.is_stop(c))
            .unwrap_or(cols.saturating_sub(1))
    }
}

/// The column the cursor is on, as a terminal sees it: vt100 reports one past the
/// last column while a wrap is pending, where a stop set would lie outside the
/// screen and be lost to a mirror, which can only set stops it can move to.
fn cursor_column(vt: &vt100::Screen) -> usize {
    let cols = usize::from(vt.size().1.get());
    usize::from(vt.cursor_position().1).min(cols.saturating_sub(1))
}

/// The terminal state vt100 does not keep, and the pre-parser's place in the output.
#[derive(Clone, Debug, Default)]
pub struct Escapes {
    state: State,
    /// G0 and G1.
    sets: [Charset; 2],
    /// Shift out (SO): G1 is in use, until shift in (SI).
    shifted: bool,
    /// The sets and shift saved with the cursor (DECSC), as a VT100 saves them.
    saved: Option<([Charset; 2], bool)>,
    /// Insert mode (IRM): printed characters push the rest of the line right.
    insert: bool,
    /// Autowrap off (DECAWM reset): text at the right margin overwrites the last
    /// column instead of going on to the next line.
    no_wrap: bool,
    tabs: Option<TabStops>,
    /// A program set a scroll region (DECSTBM) since the last reset.
    scroll_region_seen: bool,
    /// The scroll region and origin mode of the normal screen (0) and the alternate
    /// one (1): vt100 keeps them, but leaves them out of what it redraws a screen
    /// with, so a mirror would scroll the whole screen where the program set a region.
    grids: [GridModes; 2],
    /// The alternate screen is in use.
    alternate: bool,
    /// Where in the chunk being fed the escape sequence now read began (0 when it
    /// began in an earlier chunk, all of which the parser has had).
    seq_start: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct GridModes {
    /// Top and bottom rows, from 1, when not the whole screen.
    region: Option<(u16, u16)>,
    /// Origin mode (DECOM): rows count from the region's top.
    origin: bool,
    /// What DECSC saved: vt100 keeps it but does not redraw it.
    saved: Option<SavedCursor>,
}

/// A cursor saved with DECSC: where it was (from 0, absolute), its rendition, and
/// origin mode.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct SavedCursor {
    row: u16,
    col: u16,
    attrs: String,
    origin: bool,
}

impl Escapes {
    /// Whether ground text needs nothing from this pre-parser: then output that is
    /// plain text may bypass the parser's per-byte work too (the flood fast path).
    pub fn passes_text(&self) -> bool {
        matches!(self.state, State::Ground)
            && self.active() == Charset::Ascii
            && !self.insert
            && !self.no_wrap
            && self.tabs.is_none()
    }

    /// Whether a program has set a scroll region: rows then no longer simply scroll
    /// off the top, which the flood fast path relies on.
    pub fn scroll_region_seen(&self) -> bool {
        self.scroll_region_seen
    }

    fn active(&self) -> Charset {
        self.sets[usize::from(self.shifted)]
    }

    /// Feeds `bytes` to `parser`, filling in what it leaves undone.
    pub fn feed<CB: vt100::Callbacks>(&mut self, bytes: &[u8], parser: &mut vt100::Parser<CB>) {
        let mut out = Out {
            bytes,
            from: 0,
            parser,
        };
        self.seq_start = 0;
        let mut i = 0;
        while i < bytes.len() {
            if self.passes_text() {
                // Skip text up to whatever can change that.
                match memchr::memchr3(ESC, 0x0e, 0x0f, &bytes[i..]) {
                    Some(at) => i += at,
                    None => break,
                }
                // Most escapes are colours: a CSI that is whole in this chunk and
                // needs nothing here is passed over in one go.
                if bytes[i] == ESC && bytes.get(i + 1) == Some(&b'[') {
                    if let Some(len) = csi_needing_nothing(&bytes[i + 2..]) {
                        i += 2 + len;
                        continue;
                    }
                }
            }
            let b = bytes[i];
            i += 1;
            self.step(b, i, &mut out);
        }
        out.flush(bytes.len());
    }

    /// Takes byte `b`, which ends at `end` in the chunk.
    fn step<CB: vt100::Callbacks>(&mut self, b: u8, end: usize, out: &mut Out<'_, CB>) {
        // Anywhere: ESC starts a sequence, CAN and SUB cancel one.
        match b {
            ESC => {
                self.abort_utf8(out, end - 1);
                self.state = State::Escape { intermediate: None };
                self.seq_start = end - 1;
                return;
            }
            0x18 | 0x1a => {
                self.abort_utf8(out, end - 1);
                self.state = State::Ground;
                return;
            }
            _ => {}
        }
        match &mut self.state {
            State::Ground => self.ground(b, end, out),
            State::Utf8 { bytes, have, need } => {
                if b & 0xc0 != 0x80 {
                    self.abort_utf8(out, end - 1);
                    self.step(b, end, out);
                    return;
                }
                bytes[*have as usize] = b;
                *have += 1;
                if have == need {
                    let text = bytes[..*need as usize].to_vec();
                    self.state = State::Ground;
                    let width = std::str::from_utf8(&text)
                        .ok()
                        .and_then(|s| s.chars().next())
                        .map_or(1, |c| c.width().unwrap_or(0));
                    if width > 0 {
                        out.emit(format!("\x1b[{width}@").as_bytes());
                    }
                    out.emit(&text);
                }
                out.skip(end);
            }
            State::Escape { intermediate } => match b {
                0x20..=0x2f => {
                    intermediate.get_or_insert(b);
                }
                b'[' if intermediate.is_none() => self.state = State::Csi(Csi::default()),
                b']' if intermediate.is_none() => self.state = State::Str { osc: true },
                b'P' | b'X' | b'^' | b'_' if intermediate.is_none() => {
                    self.state = State::Str { osc: false }
                }
                0x30..=0x7e => {
                    let intermediate = *intermediate;
                    self.state = State::Ground;
                    self.escape(intermediate, b, end, out);
                }
                0x00..=0x1f => self.control(b),
                _ => {}
            },
            State::Csi(csi) => match b {
                b'0'..=b'9' => {
                    let p = &mut csi.params[csi.count];
                    *p = p.saturating_mul(10).saturating_add(u16::from(b - b'0'));
                }
                b';' | b':' if csi.count + 1 < csi.params.len() => csi.count += 1,
                0x3c..=0x3f => {
                    if csi.private.is_none() && csi.count == 0 && csi.params[0] == 0 {
                        csi.private = Some(b);
                    } else {
                        self.state = State::CsiIgnore;
                    }
                }
                0x20..=0x2f => {
                    csi.intermediate.get_or_insert(b);
                }
                0x40..=0x7e => {
                    let csi = std::mem::take(csi);
                    self.state = State::Ground;
                    self.csi(&csi, b, end, out);
                }
                0x00..=0x1f => self.control(b),
                _ => {}
            },
            State::CsiIgnore => match b {
                0x40..=0x7e => self.state = State::Ground,
                0x00..=0x1f => self.control(b),
                _ => {}
            },
            State::Str { osc } => {
                if b == 0x07 && *osc {
                    self.state = State::Ground;
                }
            }
        }
    }

    /// A printable byte or control in the ground state.
    fn ground<CB: vt100::Callbacks>(&mut self, b: u8, end: usize, out: &mut Out<'_, CB>) {
        let at = end - 1;
        match b {
            0x09 => {
                if let Some(tabs) = &self.tabs {
                    out.flush(at);
                    let cols = out.parser.screen().size().1;
                    let col = out.parser.screen().cursor_position().1 as usize;
                    let target = tabs.next(col, cols.get() as usize);
                    if target > col {
                        out.emit(format!("\x1b[{}C", target - col).as_bytes());
                    }
                    out.skip(end);
                }
            }
            0x00..=0x1f => self.control(b),
            0x20..=0x7e => {
                let mapped = self.active().map(b);
                if self.no_wrap {
                    self.stay_in_line(at, out);
                }
                if self.insert {
                    out.flush(at);
                    out.emit(b"\x1b[@");
                }
                if let Some(c) = mapped {
                    out.flush(at);
                    out.emit(c.encode_utf8(&mut [0; 4]).as_bytes());
                    out.skip(end);
                }
            }
            0xc0..=0xf7 if self.no_wrap && !self.insert => self.stay_in_line(at, out),
            0xc0..=0xf7 if self.insert => {
                if self.no_wrap {
                    self.stay_in_line(at, out);
                }
                out.flush(at);
                let need = match b {
                    0xc0..=0xdf => 2,
                    0xe0..=0xef => 3,
                    _ => 4,
                };
                let mut bytes = [0; 4];
                bytes[0] = b;
                self.state = State::Utf8 {
                    bytes,
                    have: 1,
                    need,
                };
                out.skip(end);
            }
            _ => {}
        }
    }

    /// With autowrap off, a character printed past the last column (where vt100
    /// would wrap) goes back onto it.
    fn stay_in_line<CB: vt100::Callbacks>(&self, at: usize, out: &mut Out<'_, CB>) {
        out.flush(at);
        let vt = out.parser.screen();
        let cols = vt.size().1.get();
        if vt.cursor_position().1 >= cols {
            out.emit(format!("\x1b[{cols}G").as_bytes());
        }
    }

    /// A character cut short: its bytes go on as they came, for the parser to judge.
    fn abort_utf8<CB: vt100::Callbacks>(&mut self, out: &mut Out<'_, CB>, at: usize) {
        if let State::Utf8 { bytes, have, .. } = self.state {
            self.state = State::Ground;
            out.flush(at);
            out.emit(&bytes[..have as usize]);
        }
    }

    /// C0 controls the parser executes wherever they come.
    fn control(&mut self, b: u8) {
        match b {
            0x0e => self.shifted = true,
            0x0f => self.shifted = false,
            _ => {}
        }
    }

    fn escape<CB: vt100::Callbacks>(
        &mut self,
        intermediate: Option<u8>,
        b: u8,
        end: usize,
        out: &mut Out<'_, CB>,
    ) {
        match (intermediate, b) {
            (Some(g @ (b'(' | b')')), _) => {
                self.sets[usize::from(g == b')')] = Charset::from_final(b);
            }
            // DECALN: the screen filled with E, margins reset, the cursor home.
            (Some(b'#'), b'8') => {
                out.flush(end);
                let vt = out.parser.screen();
                let attrs = vt.attributes_formatted();
                let (rows, cols) = vt.size();
                let mut s = String::from("\x1b[r\x1b[m");
                let line = "E".repeat(cols.get() as usize);
                for row in 1..=rows.get() {
                    let _ = write!(s, "\x1b[{row};1H{line}");
                }
                s.push_str("\x1b[H");
                s.push_str(&attrs);
                out.emit(s.as_bytes());
            }
            (None, b'7') => {
                self.saved = Some((self.sets, self.shifted));
                out.flush(end);
                self.save_cursor(out.parser.screen());
            }
            (None, b'8') => {
                if let Some((sets, shifted)) = self.saved {
                    self.sets = sets;
                    self.shifted = shifted;
                }
                self.restore_origin();
            }
            (None, b'c') => *self = Escapes::default(),
            // IND and NEL, which vt100 skips: a line feed, and a new line.
            (None, b'D') => {
                out.flush(end);
                out.emit(b"\n");
            }
            (None, b'E') => {
                out.flush(end);
                out.emit(b"\r\n");
            }
            // HTS: a tab stop at the cursor's column.
            (None, b'H') => {
                out.flush(end);
                let col = cursor_column(out.parser.screen());
                self.tab_stops().set(col, true);
            }
            _ => {}
        }
    }

    fn csi<CB: vt100::Callbacks>(&mut self, csi: &Csi, b: u8, end: usize, out: &mut Out<'_, CB>) {
        match (csi.private, csi.intermediate, b) {
            // IRM, among any other ANSI modes.
            (None, None, b'h' | b'l') if csi.params().contains(&4) => self.insert = b == b'h',
            (Some(b'?'), None, b'h' | b'l') => {
                for &mode in csi.params() {
                    match mode {
                        // DECCOLM: the VT100 clears the screen, resets the margins and
                        // homes the cursor when the column mode changes. The pane keeps
                        // its width.
                        3 => {
                            out.flush(end);
                            out.emit(b"\x1b[r\x1b[H\x1b[2J");
                            self.grid().region = None;
                        }
                        6 => self.grid().origin = b == b'h',
                        47 => self.alternate = b == b'h',
                        1049 => {
                            if b == b'h' && !self.alternate {
                                // The cursor is saved (as it is before this sequence),
                                // then the alternate screen is cleared and used.
                                out.flush(self.seq_start);
                                self.save_cursor(out.parser.screen());
                                self.grids[1] = GridModes::default();
                            }
                            self.alternate = b == b'h';
                            if b == b'l' {
                                // The cursor saved on the way in comes back.
                                self.restore_origin();
                            }
                        }
                        7 => self.no_wrap = b == b'l',
                        _ => {}
                    }
                }
            }
            // DECSTBM: the cursor goes home, which in origin mode is the region's top
            // (vt100 always goes to the region's top).
            (None, None, b'r') => {
                self.scroll_region_seen = true;
                // As vt100 takes it: defaults, clamped; a region that is no region
                // (or the whole screen) means none.
                let rows = out.parser.screen().size().0.get();
                let p = csi.params();
                let top = p[0].max(1);
                let bottom = match p.get(1).copied().unwrap_or(0) {
                    0 => rows,
                    b => b.min(rows),
                };
                self.grid().region =
                    (top < bottom && (top, bottom) != (1, rows)).then_some((top, bottom));
                out.flush(end);
                out.emit(b"\x1b[H");
            }
            // TBC: clear the stop at the cursor (0) or all of them (3).
            (None, None, b'g') => match csi.first() {
                0 => {
                    out.flush(end);
                    let col = cursor_column(out.parser.screen());
                    self.tab_stops().set(col, false);
                }
                3 => {
                    self.tabs = Some(TabStops {
                        set: Vec::new(),
                        default_beyond: false,
                    })
                }
                _ => {}
            },
            // DECSTR, soft reset: the sets, insert mode and the rendition, which vt100
            // does not reset itself.
            (None, Some(b'!'), b'p') => {
                out.flush(end);
                self.sets = [Charset::Ascii; 2];
                self.shifted = false;
                self.insert = false;
                self.saved = None;
                out.emit(b"\x1b[m\x1b[?25h\x1b[?1l\x1b>");
            }
            _ => {}
        }
    }

    /// The normal screen's scroll region, origin mode and saved cursor, with `vt`
    /// showing that screen: replayed with it while a full-screen program has the
    /// alternate one.
    pub fn normal_screen_formatted(&self, vt: &vt100::Screen) -> String {
        self.grid_formatted(0, vt)
    }

    /// Sets screen `grid`'s scroll region and origin mode and its DECSC-saved cursor,
    /// then puts `vt`'s cursor back where it was (all of them moved it).
    fn grid_formatted(&self, grid: usize, vt: &vt100::Screen) -> String {
        let mut out = String::new();
        let grid = &self.grids[grid];
        if grid.region.is_none() && !grid.origin && grid.saved.is_none() {
            return out;
        }
        let (rows, cols) = (vt.size().0.get(), vt.size().1.get());
        let (top, bottom) = grid.region.unwrap_or((1, rows));
        if grid.region.is_some() {
            let _ = write!(out, "\x1b[{top};{bottom}r");
        }
        // A cursor at (row, col), absolute, with origin mode as given.
        let place = |out: &mut String, origin: bool, row: u16, col: u16| {
            out.push_str(if origin { "\x1b[?6h" } else { "\x1b[?6l" });
            let row = if origin {
                row.saturating_sub(top - 1)
            } else {
                row
            };
            let _ = write!(out, "\x1b[{};{}H", row + 1, col.min(cols - 1) + 1);
        };
        if let Some(saved) = &grid.saved {
            place(&mut out, saved.origin, saved.row, saved.col);
            out.push_str(&saved.attrs);
            // DECSC saves the character sets too.
            if let Some((sets, shifted)) = self.saved {
                out.push_str(&sets_formatted(sets, shifted, true));
            }
            out.push_str("\x1b7");
            // Plain ASCII again: placing the cursor below may redraw a cell.
            out.push_str(&sets_formatted([Charset::Ascii; 2], false, true));
        }
        if grid.origin {
            let (row, col) = vt.cursor_position();
            // Setting origin mode homes the cursor, so it is placed after; a cursor
            // waiting past the last column is put back in that state by writing the
            // last cell again, which no placing can express.
            let waiting = (col >= cols)
                .then(|| vt.cell(row, cols - 1))
                .flatten()
                .filter(|c| c.has_contents() && !c.is_wide_continuation());
            match waiting {
                Some(cell) => {
                    place(&mut out, true, row, cols - 1);
                    out.push_str(&super::screen::sgr_of(cell));
                    out.push_str(cell.contents());
                }
                None => place(&mut out, true, row, col),
            }
        } else {
            // vt100's own placing keeps a cursor waiting past the last column there.
            out.push_str("\x1b[?6l");
            out.push_str(&vt.cursor_state_formatted());
        }
        out.push_str(&vt.attributes_formatted());
        out
    }

    /// Sequences that set the saved cursor (DECSC) of the normal screen to what the
    /// program saved, clamped to `vt`'s size, or home where nothing was saved; then
    /// put `vt`'s cursor and pen back. vt100 moves a saved cursor when it resizes, by
    /// the rows it pulls in from a scrollback only it counts, which a screen made from
    /// a snapshot counts differently: after a reflow the saved cursor is set again
    /// from what was saved, so every screen of a session agrees on it.
    pub fn saved_cursor_formatted(&self, vt: &vt100::Screen) -> String {
        let mut out = String::new();
        let grid = &self.grids[0];
        let cols = vt.size().1.get();
        match &grid.saved {
            Some(saved) => {
                out.push_str(if saved.origin { "\x1b[?6h" } else { "\x1b[?6l" });
                let _ = write!(
                    out,
                    "\x1b[{};{}H",
                    saved.row + 1,
                    saved.col.min(cols - 1) + 1
                );
                out.push_str(&saved.attrs);
            }
            None => out.push_str("\x1b[?6l\x1b[H\x1b[m"),
        }
        out.push_str("\x1b7");
        out.push_str(if grid.origin { "\x1b[?6h" } else { "\x1b[?6l" });
        out.push_str(&vt.cursor_state_formatted());
        out.push_str(&vt.attributes_formatted());
        out
    }

    /// Notes what DECSC saves of the screen in use, as `vt` shows it now.
    fn save_cursor(&mut self, vt: &vt100::Screen) {
        let (row, col) = vt.cursor_position();
        let attrs = vt.attributes_formatted();
        let grid = self.grid();
        grid.saved = Some(SavedCursor {
            row,
            col,
            attrs,
            origin: grid.origin,
        });
    }

    /// DECRC: origin mode comes back with the cursor (vt100 restores the rest).
    fn restore_origin(&mut self) {
        let grid = self.grid();
        grid.origin = grid.saved.as_ref().is_some_and(|s| s.origin);
    }

    /// The modes of the screen in use.
    fn grid(&mut self) -> &mut GridModes {
        &mut self.grids[usize::from(self.alternate)]
    }

    /// The terminal changed size: vt100 resets both screens' scroll regions. A new
    /// width also brings back the default tab stops, as tmux does: stops set for one
    /// width say nothing about another, and a mirror made at a narrower width could
    /// not learn the stops that lay beyond it.
    pub fn resized(&mut self, width_changed: bool) {
        for grid in &mut self.grids {
            grid.region = None;
        }
        if width_changed {
            self.tabs = None;
        }
    }

    fn tab_stops(&mut self) -> &mut TabStops {
        self.tabs.get_or_insert(TabStops {
            set: Vec::new(),
            default_beyond: true,
        })
    }

    /// Sequences that give a fresh pre-parser this one's state, in two parts: what
    /// goes before a screen's contents are redrawn (tab stops, set by moving the
    /// cursor), and what goes after (sets and insert mode, which would change the
    /// contents drawn, then the start of a sequence the output is in the middle of, so
    /// that its end, still to come, is not taken for text).
    ///
    /// The scroll region and origin mode of the screen in use go first in the second
    /// part: setting them moves the cursor, which is then put back (`vt` is the screen
    /// the state is taken with).
    pub fn state_formatted(&self, vt: &vt100::Screen) -> (String, String) {
        let cols = vt.size().1.get();
        let mut before = String::new();
        if let Some(tabs) = &self.tabs {
            before.push_str("\x1b[3g");
            for col in (0..cols as usize).filter(|&c| tabs.is_stop(c)) {
                let _ = write!(before, "\x1b[1;{}H\x1bH", col + 1);
            }
        }
        let mut after = self.grid_formatted(usize::from(self.alternate), vt);
        // After a saved cursor's sets (see `grid_formatted`), all of them.
        let all = self.saved.is_some();
        after.push_str(&sets_formatted(self.sets, self.shifted, all));
        if self.insert {
            after.push_str("\x1b[4h");
        }
        if self.no_wrap {
            after.push_str("\x1b[?7l");
        }
        match &self.state {
            State::Ground | State::Utf8 { .. } => {}
            State::Escape { intermediate } => {
                after.push('\x1b');
                after.extend(intermediate.map(char::from));
            }
            State::Csi(csi) => {
                after.push_str("\x1b[");
                after.extend(csi.private.map(char::from));
                // None read yet stays none: a private marker may still come.
                if csi.count > 0 || csi.params[0] > 0 {
                    let params: Vec<String> = csi.params().iter().map(u16::to_string).collect();
                    after.push_str(&params.join(";"));
                }
                after.extend(csi.intermediate.map(char::from));
            }
            // A private marker after a parameter: ignored to its end, as here.
            State::CsiIgnore => after.push_str("\x1b[0?"),
            State::Str { osc: true } => after.push_str("\x1b]"),
            State::Str { osc: false } => after.push_str("\x1bP"),
        }
        (before, after)
    }
}

/// Designations of G0 and G1 and the shift: only what differs from the default
/// unless `all`.
fn sets_formatted(sets: [Charset; 2], shifted: bool, all: bool) -> String {
    let mut out = String::new();
    for (g, set) in [b'(', b')'].into_iter().zip(sets) {
        if all || set != Charset::Ascii {
            out.push_str(&set.designation(g));
        }
    }
    if shifted {
        out.push('\x0e');
    } else if all {
        out.push('\x0f');
    }
    out
}

/// The length of a CSI's parameters and final byte, when they are all in `rest` and
/// its final byte is none that [`Escapes::csi`] acts on.
fn csi_needing_nothing(rest: &[u8]) -> Option<usize> {
    for (k, &b) in rest.iter().enumerate() {
        match b {
            0x20..=0x3f => {}
            b'h' | b'l' | b'g' | b'r' | b'p' => return None,
            0x40..=0x7e => return Some(k + 1),
            // Controls inside, or something broken: byte by byte.
            _ => return None,
        }
    }
    None
}

/// The chunk being fed, and how much of it the parser has had.
struct Out<'a, CB: vt100::Callbacks> {
    bytes: &'a [u8],
    from: usize,
    parser: &'a mut vt100::Parser<CB>,
}

impl<CB: vt100::Callbacks> Out<'_, CB> {
    /// Passes the chunk's bytes up to `to` on, as they are.
    fn flush(&mut self, to: usize) {
        if to > self.from {
            self.parser.process(&self.bytes[self.from..to]);
            self.from = to;
        }
    }

    /// Leaves the chunk's bytes up to `to` out (they were replaced).
    fn skip(&mut self, to: usize) {
        self.from = self.from.max(to);
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.parser.process(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> vt100::Parser {
        let n = |n| std::num::NonZeroU16::new(n).unwrap();
        vt100::Parser::new(n(5), n(20), 0)
    }

    /// A 5x20 terminal fed `chunks` one after another.
    fn term(chunks: &[&[u8]]) -> vt100::Parser {
        let mut parser = small();
        let mut escapes = Escapes::default();
        for chunk in chunks {
            escapes.feed(chunk, &mut parser);
        }
        parser
    }

    fn text(chunks: &[&[u8]]) -> String {
        term(chunks).screen().contents()
    }

    #[test]
    fn dec_line_drawing_draws_lines() {
        assert_eq!(text(&[b"\x1b(0lqqqk\x1b(B lqk"]), "┌───┐ lqk");
        assert_eq!(text(&[b"\x1b(0x`afgjmntuvwy|~\x1b(B"]), "│◆▒°±┘└┼├┤┴┬≤≠·");
        // Through G1, shifted out and back in, as ncurses does.
        assert_eq!(text(&[b"\x1b)0a\x0emqj\x0fb"]), "a└─┘b");
        // Letters outside the set's range stay themselves.
        assert_eq!(text(&[b"\x1b(0ABC\x1b(B"]), "ABC");
        // The UK set has a pound sign in place of the hash.
        assert_eq!(text(&[b"\x1b(A#1\x1b(B#2"]), "£1#2");
    }

    #[test]
    fn sequences_cut_between_chunks_still_count() {
        assert_eq!(text(&[&b"\x1b"[..], b"(", b"0q", b"q\x1b(", b"Bq"]), "──q");
        assert_eq!(text(&[&b"ab\x1b["[..], b"4h\x1b[1", b";1HX"]), "Xab");
    }

    #[test]
    fn strings_hide_what_looks_like_escapes() {
        // Shifts inside an OSC or a DCS shift nothing.
        assert_eq!(text(&[b"\x1b)0\x1b]2;x\x0e\x07q"]), "q");
        assert_eq!(text(&[b"\x1bP\x0eq\x1b\\q"]), "q");
    }

    #[test]
    fn insert_mode_pushes_the_line_right() {
        assert_eq!(text(&[b"abc\x1b[1;2H\x1b[4hXY\x1b[4lZ"]), "aXYZc");
        // A wide character makes room for both its columns.
        assert_eq!(
            text(&[&b"abc\x1b[1;2H\x1b[4h"[..], "漢".as_bytes()]),
            "a漢bc"
        );
        // At the right margin the last character drops off.
        let mut line = vec![b'A'; 20];
        line.extend_from_slice(b"\x1b[1;2HB\x1b[D\x1b[4h");
        line.extend_from_slice(&[b'*'; 18]);
        assert_eq!(text(&[&line]), format!("A{}B", "*".repeat(18)));
    }

    #[test]
    fn tab_stops_can_be_set_and_cleared() {
        // Clear all, set at columns 3 and 10, then tab twice.
        let t = term(&[b"\x1b[3g\x1b[1;4H\x1bH\x1b[1;11H\x1bH\r\tA\tB\tC"]);
        assert_eq!(t.screen().contents(), "   A      B        C");
        // Clearing the stop at the cursor leaves the others.
        let t = term(&[b"\x1b[1;9H\x1b[g\r\tA"]);
        assert_eq!(t.screen().contents(), "                A");
        // Without any change, vt100's own stops every eight columns.
        assert_eq!(text(&[b"\tA"]), "        A");
    }

    #[test]
    fn alignment_pattern_fills_the_screen_and_keeps_the_rendition() {
        let t = term(&[b"\x1b[2;4r\x1b[31mx\x1b#8y"]);
        let rows: Vec<String> = t.screen().rows(0, 20).collect();
        assert_eq!(rows[0], format!("y{}", "E".repeat(19)));
        assert!(rows[1..].iter().all(|r| r == &"E".repeat(20)), "{rows:?}");
        assert_eq!(
            t.screen().cell(0, 0).unwrap().fgcolor(),
            vt100::Color::Idx(1)
        );
        assert_eq!(
            t.screen().cell(0, 1).unwrap().fgcolor(),
            vt100::Color::Default
        );
        // The margins are reset: a line feed at the bottom scrolls the whole screen.
        let mut t = t;
        Escapes::default().feed(b"\x1b[5;1H\nz", &mut t);
        assert_eq!(t.screen().rows(0, 20).nth(4).unwrap(), "z");
    }

    #[test]
    fn column_mode_clears_and_homes() {
        let t = term(&[b"old\r\nlines\x1b[2;4r\x1b[?3hX"]);
        assert_eq!(t.screen().contents(), "X");
        let t = term(&[b"old\x1b[?3;7lX"]);
        assert_eq!(t.screen().contents(), "X");
    }

    #[test]
    fn autowrap_off_keeps_text_on_its_line() {
        let long = "x".repeat(30) + "Z";
        let t = term(&[&b"\x1b[?7l"[..], long.as_bytes(), b"\x1b[?7h"]);
        assert_eq!(t.screen().contents(), format!("{}Z", "x".repeat(19)));
        assert_eq!(t.screen().cursor_position().0, 0);
        let rows = |t: &vt100::Parser| t.screen().rows(0, 20).collect::<Vec<_>>()[..2].to_vec();
        // Back on, text wraps again.
        let t = term(&[&b"\x1b[?7l\x1b[?7h"[..], long.as_bytes()]);
        assert_eq!(rows(&t), ["x".repeat(20), "x".repeat(10) + "Z"]);
    }

    #[test]
    fn index_and_next_line_move_down() {
        assert_eq!(text(&[b"ab\x1bDc\x1bEd"]), "ab\n  c\nd");
    }

    #[test]
    fn a_scroll_region_sends_the_cursor_home() {
        // Absolute home without origin mode...
        let t = term(&[b"\x1b[3;4H\x1b[2;4rX"]);
        assert_eq!(t.screen().contents(), "X");
        // ...the region's top with it.
        let t = term(&[b"\x1b[?6h\x1b[2;4rX"]);
        assert_eq!(t.screen().contents(), "\nX");
    }

    #[test]
    fn saved_cursor_keeps_the_character_sets() {
        assert_eq!(text(&[b"\x1b(0\x1b7\x1b(Bq\x1b8\x1b[Cq"]), "q─");
        // A reset forgets them.
        assert_eq!(text(&[b"\x1b(0\x1bcq"]), "q");
        assert_eq!(text(&[b"\x1b(0\x1b[4h\x1b[!pq"]), "q");
    }

    /// A fresh pre-parser given another's state draws the same from then on.
    #[test]
    fn state_formatted_recreates_the_state() {
        let mut parser = small();
        let mut escapes = Escapes::default();
        escapes.feed(
            b"\x1b[3g\x1b[1;6H\x1bH\x1b)0\x0e\x1b[4h\x1b[?7l\x1b[2;1H",
            &mut parser,
        );
        let (before, after) = escapes.state_formatted(parser.screen());
        let mut copy = small();
        let mut fresh = Escapes::default();
        let state = format!("{before}{}{after}", parser.screen().state_formatted());
        fresh.feed(state.as_bytes(), &mut copy);
        let more = b"ab\tq\x1b[3;18Hxxxxxq\x1b[2;2Hz";
        escapes.feed(more, &mut parser);
        fresh.feed(more, &mut copy);
        assert_eq!(copy.screen().contents(), parser.screen().contents());
        // Line drawing through G1, the tab stop at column 5, insert mode pushing the
        // line along, and no wrap at the margin.
        assert_eq!(
            parser.screen().contents(),
            "\n▒≥␉   ─\n                 ││─"
        );
    }
}
