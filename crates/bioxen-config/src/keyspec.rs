//! Keys written the way tmux writes them: `C-b`, `M-x`, `S-Tab`, `Enter`, `PageUp`, `?`.
//!
//! One notation serves the config file, the keymap and the help overlay, so what a
//! researcher writes in `bioxen.toml` is exactly what the help shows back.

use std::fmt;

use crate::keys::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeySpec {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

const NAMED: &[(&str, KeyCode)] = &[
    ("Enter", KeyCode::Enter),
    ("Escape", KeyCode::Esc),
    ("Esc", KeyCode::Esc),
    ("Tab", KeyCode::Tab),
    ("BTab", KeyCode::BackTab),
    ("Space", KeyCode::Char(' ')),
    ("BSpace", KeyCode::Backspace),
    ("Backspace", KeyCode::Backspace),
    ("Up", KeyCode::Up),
    ("Down", KeyCode::Down),
    ("Left", KeyCode::Left),
    ("Right", KeyCode::Right),
    ("Home", KeyCode::Home),
    ("End", KeyCode::End),
    ("PageUp", KeyCode::PageUp),
    ("PgUp", KeyCode::PageUp),
    ("PPage", KeyCode::PageUp),
    ("PageDown", KeyCode::PageDown),
    ("PgDn", KeyCode::PageDown),
    ("NPage", KeyCode::PageDown),
    ("Insert", KeyCode::Insert),
    ("IC", KeyCode::Insert),
    ("Delete", KeyCode::Delete),
    ("DC", KeyCode::Delete),
];

/// Text that names no key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadKey {
    #[error("key '{0}' has a modifier but no key")]
    NoKey(String),
    #[error("unknown key '{0}' (write keys like tmux: C-b, M-x, Enter, Up, F5, q)")]
    Unknown(String),
}

impl KeySpec {
    pub const fn new(code: KeyCode, mods: KeyModifiers) -> Self {
        KeySpec { code, mods }
    }

    pub const fn plain(c: char) -> Self {
        KeySpec::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    pub const fn ctrl(c: char) -> Self {
        KeySpec::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    /// Parses tmux notation; the error says what is wrong with the text.
    pub fn parse(text: &str) -> Result<KeySpec, BadKey> {
        let mut rest = text;
        let mut mods = KeyModifiers::NONE;
        loop {
            let (m, tail) = match rest.split_at_checked(2) {
                Some(("C-", tail)) if !tail.is_empty() => (KeyModifiers::CONTROL, tail),
                Some(("M-", tail)) if !tail.is_empty() => (KeyModifiers::ALT, tail),
                Some(("S-", tail)) if !tail.is_empty() => (KeyModifiers::SHIFT, tail),
                Some(("C-" | "M-" | "S-", _)) => {
                    return Err(BadKey::NoKey(text.to_string()));
                }
                _ => break,
            };
            mods |= m;
            rest = tail;
        }
        let code = if let Some((_, code)) = NAMED.iter().find(|(n, _)| n.eq_ignore_ascii_case(rest))
        {
            *code
        } else if let Some(n) = rest
            .strip_prefix(['F', 'f'])
            .and_then(|n| n.parse::<u8>().ok())
            .filter(|n| (1..=24).contains(n))
        {
            KeyCode::F(n)
        } else {
            let mut chars = rest.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if !c.is_control() => KeyCode::Char(c),
                _ => {
                    return Err(BadKey::Unknown(text.to_string()));
                }
            }
        };
        Ok(normalize(KeySpec { code, mods }))
    }

    /// Whether a key event from the terminal is this key.
    pub fn matches(&self, event: &KeyEvent) -> bool {
        normalize(KeySpec::new(event.code, event.modifiers)) == *self
    }
}

/// Shift is part of a character (`?` is shift-/), so it is dropped for characters; an
/// upper-case letter with Ctrl means the same as the lower-case one to a terminal.
fn normalize(mut k: KeySpec) -> KeySpec {
    k.mods &= KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT;
    if let KeyCode::Char(c) = k.code {
        k.mods.remove(KeyModifiers::SHIFT);
        if k.mods.contains(KeyModifiers::CONTROL) {
            k.code = KeyCode::Char(c.to_ascii_lowercase());
        }
    }
    if k.code == KeyCode::BackTab {
        k.mods.remove(KeyModifiers::SHIFT);
    }
    k
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("C-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("M-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("S-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "F{n}"),
            code => {
                let name = NAMED
                    .iter()
                    .find(|(_, c)| *c == code)
                    .map(|(n, _)| *n)
                    .unwrap_or("?");
                f.write_str(name)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tmux_notation() {
        assert_eq!(KeySpec::parse("C-b").unwrap(), KeySpec::ctrl('b'));
        assert_eq!(KeySpec::parse("C-B").unwrap(), KeySpec::ctrl('b'));
        assert_eq!(KeySpec::parse("?").unwrap(), KeySpec::plain('?'));
        assert_eq!(
            KeySpec::parse("M-Enter").unwrap(),
            KeySpec::new(KeyCode::Enter, KeyModifiers::ALT)
        );
        assert_eq!(KeySpec::parse("pgup").unwrap().code, KeyCode::PageUp);
        assert_eq!(KeySpec::parse("F12").unwrap().code, KeyCode::F(12));
        assert_eq!(KeySpec::parse("-").unwrap(), KeySpec::plain('-'));
        for bad in ["", "C-", "Ctrl", "F99", "xy"] {
            assert!(KeySpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn round_trips_through_display() {
        for k in ["C-b", "M-x", "Enter", "Space", "F5", "q", "PageUp", "S-Up"] {
            assert_eq!(KeySpec::parse(k).unwrap().to_string(), k);
        }
    }

    #[test]
    fn matches_events_with_shift_on_characters() {
        let q = KeySpec::parse("?").unwrap();
        assert!(q.matches(&KeyEvent::new(KeyCode::Char('?'), KeyModifiers::SHIFT)));
        let cb = KeySpec::ctrl('b');
        assert!(cb.matches(&KeyEvent::new(KeyCode::Char('b'), KeyModifiers::CONTROL)));
        assert!(!cb.matches(&KeyEvent::new(KeyCode::Char('b'), KeyModifiers::NONE)));
    }
}
