//! The keys every one-line text field of the dashboard takes (names, filters,
//! searches, package names, passphrases), as readline's: typing, Backspace, C-u to
//! clear the field, C-w to take back the word before the cursor.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Applies `key` to `text` if it is an editing key; returns whether it was one.
/// `accepts` says which characters the field takes, `max` its length in bytes.
pub fn edit(text: &mut String, key: &KeyEvent, accepts: impl Fn(char) -> bool, max: usize) -> bool {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Backspace => {
            text.pop();
        }
        KeyCode::Char('u') if ctrl => text.clear(),
        KeyCode::Char('w') if ctrl => {
            let kept = text.trim_end().len();
            let word = text[..kept]
                .rfind(|c: char| c.is_whitespace() || matches!(c, '-' | '_' | '.' | '/'))
                .map(|i| i + 1)
                .unwrap_or(0);
            text.truncate(word);
        }
        KeyCode::Char(c) if !ctrl => {
            if accepts(c) && text.len() + c.len_utf8() <= max {
                text.push(c);
            }
        }
        _ => return false,
    }
    true
}

/// Names of VMs: what `bioxen` accepts as an id.
pub fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn fields_edit_as_readline() {
        let mut text = String::from("protein-run");
        let none = KeyModifiers::NONE;
        assert!(edit(
            &mut text,
            &key(KeyCode::Char('w'), KeyModifiers::CONTROL),
            name_char,
            64
        ));
        assert_eq!(text, "protein-");
        assert!(edit(
            &mut text,
            &key(KeyCode::Char('x'), none),
            name_char,
            64
        ));
        assert!(
            edit(&mut text, &key(KeyCode::Char(' '), none), name_char, 64),
            "taken, refused"
        );
        assert_eq!(text, "protein-x");
        assert!(edit(
            &mut text,
            &key(KeyCode::Char('u'), KeyModifiers::CONTROL),
            name_char,
            64
        ));
        assert_eq!(text, "");
        assert!(!edit(&mut text, &key(KeyCode::Enter, none), name_char, 64));
        let mut full = "a".repeat(64);
        edit(&mut full, &key(KeyCode::Char('b'), none), name_char, 64);
        assert_eq!(full.len(), 64);
    }
}
