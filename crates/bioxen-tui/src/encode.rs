//! Keystrokes to the bytes a program in a terminal expects, as xterm sends them.
//!
//! The screen's modes decide some encodings: application cursor mode changes the
//! arrows (`ESC O A` instead of `ESC [ A`), bracketed paste wraps pastes.

use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};

/// The terminal modes a program set that change what keys send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Modes {
    pub application_cursor: bool,
    pub bracketed_paste: bool,
}

impl Modes {
    pub fn of(screen: &vt100::Screen) -> Self {
        Modes {
            application_cursor: screen.application_cursor(),
            bracketed_paste: screen.bracketed_paste(),
        }
    }
}

/// The bytes for a key, or `None` for keys a terminal does not send (releases,
/// media keys, lone modifiers).
pub fn key(event: &KeyEvent, modes: Modes) -> Option<Vec<u8>> {
    if event.kind == KeyEventKind::Release {
        return None;
    }
    let mods = event.modifiers;
    let alt = mods.contains(KeyModifiers::ALT);
    let ctrl = mods.contains(KeyModifiers::CONTROL);
    let mut out = Vec::new();
    let with_alt = |mut bytes: Vec<u8>| {
        if alt {
            bytes.insert(0, 0x1b);
        }
        bytes
    };
    match event.code {
        KeyCode::Char(c) if ctrl => {
            let byte = ctrl_byte(c)?;
            out = with_alt(vec![byte]);
        }
        KeyCode::Char(c) => {
            let mut buf = [0u8; 4];
            out = with_alt(c.encode_utf8(&mut buf).as_bytes().to_vec());
        }
        KeyCode::Enter => out = with_alt(vec![b'\r']),
        KeyCode::Tab if mods.contains(KeyModifiers::SHIFT) => out.extend_from_slice(b"\x1b[Z"),
        KeyCode::Tab => out = with_alt(vec![b'\t']),
        KeyCode::BackTab => out.extend_from_slice(b"\x1b[Z"),
        KeyCode::Backspace if ctrl => out = with_alt(vec![0x08]),
        KeyCode::Backspace => out = with_alt(vec![0x7f]),
        KeyCode::Esc => out = with_alt(vec![0x1b]),
        KeyCode::Up => out = cursor(b'A', mods, modes),
        KeyCode::Down => out = cursor(b'B', mods, modes),
        KeyCode::Right => out = cursor(b'C', mods, modes),
        KeyCode::Left => out = cursor(b'D', mods, modes),
        KeyCode::Home => out = cursor(b'H', mods, modes),
        KeyCode::End => out = cursor(b'F', mods, modes),
        KeyCode::Insert => out = tilde(2, mods),
        KeyCode::Delete => out = tilde(3, mods),
        KeyCode::PageUp => out = tilde(5, mods),
        KeyCode::PageDown => out = tilde(6, mods),
        KeyCode::F(n @ 1..=4) => {
            let fin = b'P' + (n - 1);
            match modifier_param(mods) {
                Some(m) => out.extend_from_slice(format!("\x1b[1;{m}{}", fin as char).as_bytes()),
                None => out.extend_from_slice(&[0x1b, b'O', fin]),
            }
        }
        KeyCode::F(n @ 5..=12) => {
            let code = [15, 17, 18, 19, 20, 21, 23, 24][(n - 5) as usize];
            out = tilde(code, mods);
        }
        _ => return None,
    }
    Some(out)
}

/// Ctrl+key as the control byte xterm sends.
fn ctrl_byte(c: char) -> Option<u8> {
    Some(match c.to_ascii_lowercase() {
        c @ 'a'..='z' => c as u8 - b'a' + 1,
        '@' | ' ' | '2' => 0,
        '[' | '3' => 0x1b,
        '\\' | '4' => 0x1c,
        ']' | '5' => 0x1d,
        '^' | '6' => 0x1e,
        '_' | '-' | '7' => 0x1f,
        '?' | '8' => 0x7f,
        _ => return None,
    })
}

/// xterm's modifier parameter: 1 + shift + 2*alt + 4*ctrl, or `None` without any.
fn modifier_param(mods: KeyModifiers) -> Option<u8> {
    let m = 1
        + u8::from(mods.contains(KeyModifiers::SHIFT))
        + 2 * u8::from(mods.contains(KeyModifiers::ALT))
        + 4 * u8::from(mods.contains(KeyModifiers::CONTROL));
    (m > 1).then_some(m)
}

fn cursor(fin: u8, mods: KeyModifiers, modes: Modes) -> Vec<u8> {
    match modifier_param(mods) {
        Some(m) => format!("\x1b[1;{m}{}", fin as char).into_bytes(),
        None if modes.application_cursor => vec![0x1b, b'O', fin],
        None => vec![0x1b, b'[', fin],
    }
}

fn tilde(code: u8, mods: KeyModifiers) -> Vec<u8> {
    match modifier_param(mods) {
        Some(m) => format!("\x1b[{code};{m}~").into_bytes(),
        None => format!("\x1b[{code}~").into_bytes(),
    }
}

/// A paste as a terminal sends it: line feeds become carriage returns (Enter), and
/// the text is bracketed only when the program asked for bracketed paste.
pub fn paste(text: &str, modes: Modes) -> Vec<u8> {
    let body = text.replace("\r\n", "\r").replace('\n', "\r");
    if modes.bracketed_paste {
        // A paste must not be able to end the bracket early.
        let body = body.replace("\x1b[201~", "");
        format!("\x1b[200~{body}\x1b[201~").into_bytes()
    } else {
        body.into_bytes()
    }
}

/// A mouse event for a program that enabled mouse reporting, at `(col, row)` within
/// its screen (0-based). `sgr` picks the SGR encoding (mode 1006) over the legacy one.
pub fn mouse(event: &MouseEvent, col: u16, row: u16, sgr: bool) -> Option<Vec<u8>> {
    let (button, release) = match event.kind {
        MouseEventKind::Down(b) => (button_code(b), false),
        MouseEventKind::Up(b) => (button_code(b), true),
        MouseEventKind::Drag(b) => (button_code(b) + 32, false),
        MouseEventKind::ScrollUp => (64, false),
        MouseEventKind::ScrollDown => (65, false),
        _ => return None,
    };
    let mut b = button;
    if event.modifiers.contains(KeyModifiers::SHIFT) {
        b += 4;
    }
    if event.modifiers.contains(KeyModifiers::ALT) {
        b += 8;
    }
    if event.modifiers.contains(KeyModifiers::CONTROL) {
        b += 16;
    }
    if sgr {
        let fin = if release { 'm' } else { 'M' };
        Some(format!("\x1b[<{b};{};{}{fin}", col + 1, row + 1).into_bytes())
    } else {
        let b = if release { 3 } else { b };
        let enc = |v: u16| (v.min(222) + 33) as u8;
        Some(vec![0x1b, b'[', b'M', 32 + b as u8, enc(col), enc(row)])
    }
}

fn button_code(b: MouseButton) -> u16 {
    match b {
        MouseButton::Left => 0,
        MouseButton::Middle => 1,
        MouseButton::Right => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn encodes_like_xterm() {
        use KeyCode::*;
        let none = KeyModifiers::NONE;
        let ctrl = KeyModifiers::CONTROL;
        let alt = KeyModifiers::ALT;
        let shift = KeyModifiers::SHIFT;
        // (key, modifiers, normal mode, application cursor mode)
        let table: &[(KeyCode, KeyModifiers, &[u8], &[u8])] = &[
            (Char('a'), none, b"a", b"a"),
            (Char('A'), shift, b"A", b"A"),
            (Char('é'), none, "é".as_bytes(), "é".as_bytes()),
            (Char('c'), ctrl, b"\x03", b"\x03"),
            (Char('d'), ctrl, b"\x04", b"\x04"),
            (Char('z'), ctrl, b"\x1a", b"\x1a"),
            (Char(' '), ctrl, b"\x00", b"\x00"),
            (Char('['), ctrl, b"\x1b", b"\x1b"),
            (Char('x'), alt, b"\x1bx", b"\x1bx"),
            (Char('é'), alt, "\x1bé".as_bytes(), "\x1bé".as_bytes()),
            (Char('c'), ctrl | alt, b"\x1b\x03", b"\x1b\x03"),
            (Enter, none, b"\r", b"\r"),
            (Enter, alt, b"\x1b\r", b"\x1b\r"),
            (Tab, none, b"\t", b"\t"),
            (BackTab, shift, b"\x1b[Z", b"\x1b[Z"),
            (Backspace, none, b"\x7f", b"\x7f"),
            (Backspace, alt, b"\x1b\x7f", b"\x1b\x7f"),
            (Esc, none, b"\x1b", b"\x1b"),
            (Up, none, b"\x1b[A", b"\x1bOA"),
            (Down, none, b"\x1b[B", b"\x1bOB"),
            (Right, none, b"\x1b[C", b"\x1bOC"),
            (Left, none, b"\x1b[D", b"\x1bOD"),
            (Home, none, b"\x1b[H", b"\x1bOH"),
            (End, none, b"\x1b[F", b"\x1bOF"),
            (Up, ctrl, b"\x1b[1;5A", b"\x1b[1;5A"),
            (Left, shift, b"\x1b[1;2D", b"\x1b[1;2D"),
            (Right, alt, b"\x1b[1;3C", b"\x1b[1;3C"),
            (Delete, none, b"\x1b[3~", b"\x1b[3~"),
            (Delete, ctrl, b"\x1b[3;5~", b"\x1b[3;5~"),
            (PageUp, none, b"\x1b[5~", b"\x1b[5~"),
            (PageDown, none, b"\x1b[6~", b"\x1b[6~"),
            (Insert, none, b"\x1b[2~", b"\x1b[2~"),
            (F(1), none, b"\x1bOP", b"\x1bOP"),
            (F(4), none, b"\x1bOS", b"\x1bOS"),
            (F(1), shift, b"\x1b[1;2P", b"\x1b[1;2P"),
            (F(5), none, b"\x1b[15~", b"\x1b[15~"),
            (F(12), none, b"\x1b[24~", b"\x1b[24~"),
            (F(5), ctrl, b"\x1b[15;5~", b"\x1b[15;5~"),
        ];
        for (code, mods, normal, app) in table {
            let ev = k(*code, *mods);
            let plain = key(&ev, Modes::default()).unwrap();
            assert_eq!(plain, *normal, "{code:?} {mods:?}");
            let appc = key(
                &ev,
                Modes {
                    application_cursor: true,
                    ..Modes::default()
                },
            )
            .unwrap();
            assert_eq!(appc, *app, "{code:?} {mods:?} in application cursor mode");
        }
    }

    #[test]
    fn releases_and_unknown_keys_send_nothing() {
        let mut ev = k(KeyCode::Char('a'), KeyModifiers::NONE);
        ev.kind = KeyEventKind::Release;
        assert_eq!(key(&ev, Modes::default()), None);
        assert_eq!(
            key(&k(KeyCode::CapsLock, KeyModifiers::NONE), Modes::default()),
            None
        );
    }

    #[test]
    fn paste_brackets_only_when_asked() {
        let text = "a = 1\nb = 2\n";
        assert_eq!(paste(text, Modes::default()), b"a = 1\rb = 2\r");
        let bracketed = Modes {
            bracketed_paste: true,
            ..Modes::default()
        };
        assert_eq!(paste(text, bracketed), b"\x1b[200~a = 1\rb = 2\r\x1b[201~");
        assert_eq!(paste("x\x1b[201~y", bracketed), b"\x1b[200~xy\x1b[201~");
    }

    #[test]
    fn mouse_reports() {
        let ev = MouseEvent {
            kind: MouseEventKind::ScrollUp,
            column: 0,
            row: 0,
            modifiers: KeyModifiers::NONE,
        };
        assert_eq!(mouse(&ev, 4, 2, true).unwrap(), b"\x1b[<64;5;3M");
        assert_eq!(
            mouse(&ev, 4, 2, false).unwrap(),
            vec![0x1b, b'[', b'M', 96, 37, 35]
        );
    }
}
