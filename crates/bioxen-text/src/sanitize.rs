//! Text from outside (pool records, XAPI errors, registry entries, window titles, Lua
//! error messages) made safe to put on a terminal.
//!
//! A terminal obeys what it is sent: an escape sequence in a VM's `other_config` can
//! retitle or clear the researcher's terminal, and bidi overrides or zero-width
//! characters can make one name look like another. Everything that reaches a screen,
//! and every log line, goes through one of these functions; machine output such as
//! `ls --json` stays exact.

/// Whether `c` may be shown: no C0/C1 controls, no bidi controls, no invisible format
/// characters, no combining marks (which would attach to bioxen's own frame).
pub fn is_shown(c: char) -> bool {
    !(c.is_control()
        || matches!(c,
            '\u{00AD}'                // soft hyphen
            | '\u{034F}'              // combining grapheme joiner
            | '\u{061C}'              // Arabic letter mark
            | '\u{115F}' | '\u{1160}' // Hangul fillers
            | '\u{17B4}' | '\u{17B5}'
            | '\u{180B}'..='\u{180F}' // Mongolian variation selectors
            | '\u{200B}'..='\u{200F}' // zero-width and directional marks
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, bidi isolates
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}' // variation selectors
            | '\u{FEFF}'              // zero-width no-break space
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
            | '\u{E0000}'..='\u{E007F}' // tags
            | '\u{E0100}'..='\u{E01EF}')
        || is_combining(c))
}

/// Whether `c`, printed by a VM, is drawn in its cell. bioxen lays out every cell
/// itself, so bidi controls and invisible format characters can do nothing right
/// there: passed on, they would only make the user's terminal reorder or hide
/// bioxen's own frame, or carry text no one sees (tag characters). They are not
/// drawn. Joiners, variation selectors and combining marks stay: emoji sequences and
/// many scripts need them, and inside a cell they attach to the VM's own character.
/// What a VM printed is kept as it is in its screen, history, logs and copies.
pub fn is_drawn_in_cell(c: char) -> bool {
    !matches!(c,
        '\u{061C}'                  // Arabic letter mark
        | '\u{200B}'                // zero-width space
        | '\u{200E}' | '\u{200F}'   // left-to-right and right-to-left marks
        | '\u{202A}'..='\u{202E}'   // bidi embeddings and overrides
        | '\u{2060}'..='\u{2064}'   // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}'   // bidi isolates
        | '\u{FEFF}'                // zero-width no-break space
        | '\u{FFF9}'..='\u{FFFB}'   // interlinear annotations
        | '\u{E0000}'..='\u{E007F}') // tags
}

/// Combining marks of the common blocks: shown alone they stack on whatever bioxen
/// drew before them.
fn is_combining(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{0483}'..='\u{0489}'
        | '\u{0591}'..='\u{05BD}'
        | '\u{0610}'..='\u{061A}'
        | '\u{064B}'..='\u{065F}'
        | '\u{0E31}' | '\u{0E34}'..='\u{0E3A}' | '\u{0E47}'..='\u{0E4E}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE20}'..='\u{FE2F}')
}

/// One line of outside text: what cannot be shown is dropped, and line breaks and
/// tabs become spaces.
pub fn line(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '\n' | '\r' | '\t' => Some(' '),
            c if is_shown(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// Several lines of outside text (an error with a traceback): line breaks and tabs
/// stay, everything else that cannot be shown is dropped.
pub fn lines(text: &str) -> String {
    text.chars()
        .filter(|&c| matches!(c, '\n' | '\t') || is_shown(c))
        .collect()
}

/// The longest line of outside text a log line carries.
pub const LOG_LIMIT: usize = 2048;

/// Outside text for the log file: one line, at most [`LOG_LIMIT`] characters, with
/// the length of what was cut.
pub fn for_log(text: &str) -> String {
    let clean = line(text);
    let n = clean.chars().count();
    if n <= LOG_LIMIT {
        return clean;
    }
    let kept: String = clean.chars().take(LOG_LIMIT).collect();
    format!("{kept}… ({} more characters)", n - LOG_LIMIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_invisible_characters_never_pass() {
        let hostile = "a\x1b]0;owned\x07b\x1b[2Jc\u{9b}2Jd\u{202E}e\u{200B}f\u{0301}g\u{FEFF}h\u{2066}i\u{85}j\rk";
        assert_eq!(line(hostile), "a]0;ownedb[2Jc2Jdefghij k");
        assert_eq!(lines("x\n\ty\x1b[31m"), "x\n\ty[31m");
        assert_eq!(line("日本語 ok"), "日本語 ok");
    }

    #[test]
    fn log_lines_are_bounded() {
        let long = "x".repeat(10_000);
        let logged = for_log(&long);
        assert!(logged.len() < LOG_LIMIT + 64, "{}", logged.len());
        assert!(logged.ends_with("(7952 more characters)"), "{logged}");
    }
}
