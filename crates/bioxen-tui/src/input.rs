//! The door between crossterm's key events and bioxen's own key type, which the keymap
//! binds: the only place that knows both.

use bioxen_config::keys;
use bioxen_config::keyspec::KeySpec;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// A terminal's key event as the keymap reads it.
pub fn key(e: &KeyEvent) -> keys::KeyEvent {
    let code = match e.code {
        KeyCode::Char(c) => keys::KeyCode::Char(c),
        KeyCode::F(n) => keys::KeyCode::F(n),
        KeyCode::Enter => keys::KeyCode::Enter,
        KeyCode::Esc => keys::KeyCode::Esc,
        KeyCode::Tab => keys::KeyCode::Tab,
        KeyCode::BackTab => keys::KeyCode::BackTab,
        KeyCode::Backspace => keys::KeyCode::Backspace,
        KeyCode::Up => keys::KeyCode::Up,
        KeyCode::Down => keys::KeyCode::Down,
        KeyCode::Left => keys::KeyCode::Left,
        KeyCode::Right => keys::KeyCode::Right,
        KeyCode::Home => keys::KeyCode::Home,
        KeyCode::End => keys::KeyCode::End,
        KeyCode::PageUp => keys::KeyCode::PageUp,
        KeyCode::PageDown => keys::KeyCode::PageDown,
        KeyCode::Insert => keys::KeyCode::Insert,
        KeyCode::Delete => keys::KeyCode::Delete,
        _ => keys::KeyCode::Other,
    };
    let mut mods = keys::KeyModifiers::NONE;
    for (theirs, ours) in [
        (KeyModifiers::SHIFT, keys::KeyModifiers::SHIFT),
        (KeyModifiers::CONTROL, keys::KeyModifiers::CONTROL),
        (KeyModifiers::ALT, keys::KeyModifiers::ALT),
    ] {
        if e.modifiers.contains(theirs) {
            mods |= ours;
        }
    }
    keys::KeyEvent::new(code, mods)
}

/// The event a bound key would arrive as: for sending the prefix key itself on.
pub fn event(k: KeySpec) -> KeyEvent {
    let code = match k.code {
        keys::KeyCode::Char(c) => KeyCode::Char(c),
        keys::KeyCode::F(n) => KeyCode::F(n),
        keys::KeyCode::Enter => KeyCode::Enter,
        keys::KeyCode::Esc => KeyCode::Esc,
        keys::KeyCode::Tab => KeyCode::Tab,
        keys::KeyCode::BackTab => KeyCode::BackTab,
        keys::KeyCode::Backspace => KeyCode::Backspace,
        keys::KeyCode::Up => KeyCode::Up,
        keys::KeyCode::Down => KeyCode::Down,
        keys::KeyCode::Left => KeyCode::Left,
        keys::KeyCode::Right => KeyCode::Right,
        keys::KeyCode::Home => KeyCode::Home,
        keys::KeyCode::End => KeyCode::End,
        keys::KeyCode::PageUp => KeyCode::PageUp,
        keys::KeyCode::PageDown => KeyCode::PageDown,
        keys::KeyCode::Insert => KeyCode::Insert,
        keys::KeyCode::Delete => KeyCode::Delete,
        keys::KeyCode::Other => KeyCode::Null,
    };
    let mut mods = KeyModifiers::NONE;
    for (ours, theirs) in [
        (keys::KeyModifiers::SHIFT, KeyModifiers::SHIFT),
        (keys::KeyModifiers::CONTROL, KeyModifiers::CONTROL),
        (keys::KeyModifiers::ALT, KeyModifiers::ALT),
    ] {
        if k.mods.contains(ours) {
            mods |= theirs;
        }
    }
    KeyEvent::new(code, mods)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key the keymap can bind survives the trip there and back.
    #[test]
    fn bound_keys_go_both_ways() {
        for text in [
            "C-b", "M-x", "S-Tab", "Enter", "PageUp", "F5", "?", "Space", "C-M-q",
        ] {
            let spec = KeySpec::parse(text).unwrap();
            assert!(spec.matches(&key(&event(spec))), "{text}");
        }
    }
}
