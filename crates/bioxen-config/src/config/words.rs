//! serde's and toml's messages in the words of the file a researcher wrote:
//! "expected usize" says nothing to someone who wrote `scrollback = -5`.

/// `message` as said about a value in `bioxen.toml`.
pub fn plain(message: &str) -> String {
    let message = message.trim();
    for lead in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(lead)
            && let Some((found, expected)) = rest.split_once(", expected ")
        {
            return format!(
                "expected {}, found {}",
                wanted(expected),
                found_value(found)
            );
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field ")
        && let Some((field, expected)) = rest.split_once(", expected one of ")
    {
        return format!("unknown key {field}; the keys here are {expected}");
    }
    if let Some(rest) = message.strip_prefix("unknown field ")
        && let Some((field, expected)) = rest.split_once(", expected ")
    {
        return format!("unknown key {field}; the only key here is {expected}");
    }
    if let Some(rest) = message.strip_prefix("unknown field ")
        && let Some(field) = rest.strip_suffix(", there are no fields")
    {
        return format!("unknown key {field}; this table takes no keys");
    }
    message.to_string()
}

/// What serde expected, said as a value of the file.
fn wanted(expected: &str) -> String {
    let whole = |max: &str| format!("a whole number from 0 to {max}");
    match expected.trim() {
        "usize" | "u64" => "a whole number ≥ 0".into(),
        "u32" => whole("4294967295"),
        "u16" => whole("65535"),
        "u8" => whole("255"),
        "i64" | "i32" | "isize" => "a whole number".into(),
        "f64" | "f32" => "a number".into(),
        "a boolean" => "true or false".into(),
        "a string" => "a string in quotes".into(),
        "a sequence" => "a list, like [\"a\", \"b\"]".into(),
        "a map" => "a table of KEY = \"value\"".into(),
        other => other.to_string(),
    }
}

/// The value serde found (`integer \`-5\``, `string "yes"`), as written in the file.
fn found_value(found: &str) -> String {
    let found = found.trim();
    for (lead, what) in [
        ("integer ", "the number"),
        ("floating point ", "the number"),
        ("string ", "the string"),
        ("boolean ", ""),
    ] {
        if let Some(value) = found.strip_prefix(lead) {
            let value = value.trim_matches('`');
            return match what {
                "" => value.to_string(),
                what => format!("{what} {value}"),
            };
        }
    }
    match found {
        "sequence" => "a list".into(),
        "map" => "a table".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::plain;

    #[test]
    fn messages_speak_of_the_file() {
        assert_eq!(
            plain("invalid value: integer `-5`, expected usize"),
            "expected a whole number ≥ 0, found the number -5"
        );
        assert_eq!(
            plain("invalid type: string \"yes\", expected a boolean"),
            "expected true or false, found the string \"yes\""
        );
        assert_eq!(
            plain("invalid value: integer `70000`, expected u16"),
            "expected a whole number from 0 to 65535, found the number 70000"
        );
        assert_eq!(
            plain("invalid type: floating point `1.5`, expected u64"),
            "expected a whole number ≥ 0, found the number 1.5"
        );
        assert_eq!(
            plain("invalid type: sequence, expected a string"),
            "expected a string in quotes, found a list"
        );
        assert_eq!(
            plain("unknown field `pasword`, expected one of `url`, `password`"),
            "unknown key `pasword`; the keys here are `url`, `password`"
        );
        assert_eq!(plain("something else\n"), "something else");
    }
}
