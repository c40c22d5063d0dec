//! Text a cell grid shows, counted in display columns: a CJK character takes two
//! columns, so counting characters would overrun a pane.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// `text` in lines of at most `width` columns, broken at spaces where it can be (a
/// word longer than a line is cut).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for mut word in text.split(' ').filter(|w| !w.is_empty()) {
        loop {
            let room = width.saturating_sub(line.width() + usize::from(!line.is_empty()));
            if word.width() <= room {
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
                break;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // Too long for any line: cut it, after one character at least (a wide
            // character in a one-column line would otherwise never be taken).
            let mut used = 0;
            let cut = word
                .char_indices()
                .find_map(|(i, c)| {
                    used += c.width().unwrap_or(0);
                    (used > width && i > 0).then_some(i)
                })
                .unwrap_or(word.len());
            lines.push(word[..cut].to_string());
            word = &word[cut..];
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// `text` in at most `max` display columns: whole if it fits, else cut with a `…` at
/// the end (a wide character that would straddle the edge is left out).
pub fn truncate(text: &str, max: usize) -> String {
    if text.width() <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > max - 1 {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// `text` in at most `width` columns: whole if it fits, else its start and its end
/// around a `…`, so that `protein-folding-run-A` and `-B` stay apart where cutting
/// the end would make both `protein-f`.
pub fn middle_ellipsis(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    // The end says more (run numbers, suffixes): it gets the larger half.
    let room = width - 1;
    let head_room = room / 2;
    let tail_room = room - head_room;
    let mut head = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > head_room {
            break;
        }
        used += w;
        head.push(c);
    }
    let mut tail = Vec::new();
    let mut used = 0;
    for c in text.chars().rev() {
        let w = c.width().unwrap_or(0);
        if used + w > tail_room {
            break;
        }
        used += w;
        tail.push(c);
    }
    head.push('…');
    head.extend(tail.into_iter().rev());
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces_and_cuts_long_words() {
        assert_eq!(wrap("check the port now", 10), ["check the", "port now"]);
        assert_eq!(wrap("abcdefgh ij", 3), ["abc", "def", "gh", "ij"]);
        assert_eq!(wrap("", 5), [""]);
        // A character wider than the line still gets a line of its own.
        assert_eq!(wrap("漢字", 1), ["漢", "字"]);
    }

    #[test]
    fn truncate_counts_columns_not_characters() {
        assert_eq!(truncate("short", 8), "short");
        assert_eq!(truncate("abcdefgh", 5), "abcd…");
        // Four wide characters take eight columns; five columns hold two and the mark.
        assert_eq!(truncate("漢字漢字", 5), "漢字…");
        assert!(truncate("漢字漢字", 4).width() <= 4);
        assert_eq!(truncate("abc", 0), "");
    }
}

#[cfg(test)]
mod ellipsis_tests {
    use super::*;

    #[test]
    fn long_names_keep_both_ends() {
        assert_eq!(middle_ellipsis("lua-1", 8), "lua-1");
        let a = middle_ellipsis("protein-folding-run-A", 12);
        let b = middle_ellipsis("protein-folding-run-B", 12);
        assert_eq!(a, "prote…-run-A");
        assert_ne!(a, b);
        // Wide characters are never split: the text may come out a cell short.
        let wide = middle_ellipsis("日本語の名前です", 7);
        assert!(
            wide.width() <= 7 && wide.starts_with('日') && wide.ends_with('す'),
            "{wide}"
        );
        assert_eq!(middle_ellipsis("abc", 0), "");
        assert_eq!(middle_ellipsis("abcdef", 1), "…");
    }
}
