//! Quoting text as Lua source, for code bioxen types into an interpreter.

/// A Lua string literal on one line of printable ASCII: everything else is escaped as
/// `\ddd`, so no newline makes a REPL wait for more input and no control byte reaches
/// a terminal as a keystroke.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_printable_line() {
        let lit = quote("a\"b\\c\nd\té");
        assert_eq!(lit, r#""a\"b\\c\010d\009\195\169""#);
        assert!(lit.bytes().all(|b| (0x20..0x7f).contains(&b)));
    }
}
