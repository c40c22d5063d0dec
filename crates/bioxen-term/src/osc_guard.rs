//! Bounds the OSC strings a program sends before they reach the parser.
//!
//! An OSC (`ESC ]` … `BEL` or `ESC \`) carries a window title, a hyperlink, a clipboard
//! payload. The parser collects the whole string until its terminator, so a program
//! that opens one and never closes it (`\e]2;` then 600 MB) grew memory by a byte per
//! byte, for good. Here, everything past [`OSC_LIMIT`] bytes of one OSC is dropped: the
//! parser still sees the OSC open and close, with a bounded payload.

/// The most of one OSC's payload passed on; far beyond any title.
pub const OSC_LIMIT: usize = 4096;

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Outside,
    /// After an ESC outside an OSC.
    Esc,
    /// Inside an OSC, with this many payload bytes passed on so far.
    Inside(usize),
    /// After an ESC inside an OSC: `\` ends it, anything else aborts it.
    InsideEsc(usize),
}

#[derive(Debug, Default)]
pub struct OscGuard {
    state: State,
}

impl OscGuard {
    /// Whether the last byte seen leaves an escape sequence or OSC open: the parser is
    /// then mid-sequence, and the next chunk must not be taken for plain text.
    pub fn is_open(&self) -> bool {
        self.state != State::Outside
    }

    /// The bytes to pass on: `None` when they are `bytes` as they are (almost always),
    /// or a copy without the OSC payload beyond the limit.
    pub fn filter(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        if self.state == State::Outside && !bytes.contains(&ESC) {
            return None;
        }
        let mut out: Option<Vec<u8>> = None;
        for (i, &b) in bytes.iter().enumerate() {
            let keep = self.step(b);
            match (&mut out, keep) {
                (Some(o), true) => o.push(b),
                (None, false) => out = Some(bytes[..i].to_vec()),
                _ => {}
            }
        }
        out
    }

    /// Advances over one byte; returns whether it is passed on.
    fn step(&mut self, b: u8) -> bool {
        let (next, keep) = match self.state {
            State::Outside | State::Esc if b == ESC => (State::Esc, true),
            State::Esc if b == b']' => (State::Inside(0), true),
            State::Outside | State::Esc => (State::Outside, true),
            // CAN and SUB abort a string, as BEL ends it.
            State::Inside(_) if matches!(b, BEL | 0x18 | 0x1a) => (State::Outside, true),
            State::Inside(n) if b == ESC => (State::InsideEsc(n), true),
            State::Inside(n) if n >= OSC_LIMIT => (State::Inside(n), false),
            State::Inside(n) => (State::Inside(n + 1), true),
            State::InsideEsc(_) if b == b'\\' => (State::Outside, true),
            // The ESC ended the OSC and starts a new sequence.
            State::InsideEsc(_) if b == b']' => (State::Inside(0), true),
            State::InsideEsc(_) if b == ESC => (State::Esc, true),
            State::InsideEsc(_) => (State::Outside, true),
        };
        self.state = next;
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_oscs_and_plain_text_pass_untouched() {
        let mut g = OscGuard::default();
        assert_eq!(g.filter(b"plain text\r\n"), None);
        assert_eq!(g.filter(b"\x1b]2;title\x07\x1b[31mred"), None);
        assert!(!g.is_open());
        assert_eq!(g.filter(b"\x1b]0;split"), None);
        assert!(g.is_open());
        assert_eq!(g.filter(b" title\x1b\\after"), None);
        assert!(!g.is_open());
    }

    #[test]
    fn long_payloads_are_cut_across_chunks_and_the_end_still_passes() {
        let mut g = OscGuard::default();
        let mut passed = Vec::new();
        let mut feed = |bytes: &[u8]| {
            let out = g.filter(bytes);
            passed.extend_from_slice(out.as_deref().unwrap_or(bytes));
        };
        feed(b"\x1b]2;");
        for _ in 0..100 {
            feed(&[b'a'; 1000]);
        }
        feed(b"\x07ok");
        let expected: Vec<u8> = [&b"\x1b]2;"[..], &[b'a'; OSC_LIMIT - 2], b"\x07ok"].concat();
        assert_eq!(passed, expected);
    }
}
