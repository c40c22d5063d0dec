//! `lua`'s command line, parsed as `lua.c` parses it. Both `bioxen lua` and `bioxen run`
//! read it, so a run refuses a bad option before it makes a VM, and finds the script
//! it must copy to a remote host.

/// Options as `lua.c` collects them.
#[derive(Debug, Default)]
pub struct Options {
    /// `-e` and `-l` in command-line order.
    pub actions: Vec<Action>,
    pub interactive: bool,
    pub version: bool,
    pub ignore_env: bool,
    pub warnings: bool,
    /// Index into argv of the script (`-` for stdin), if any.
    pub script: Option<usize>,
}

#[derive(Debug)]
pub enum Action {
    Exec(String),
    Require(String),
}

/// Parses `args` (without the program name); the error is worded as `lua.c` words it.
pub fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if !a.starts_with('-') {
            o.script = Some(i);
            return Ok(o);
        }
        match a {
            "-" => {
                o.script = Some(i);
                return Ok(o);
            }
            "--" => {
                o.script = (i + 1 < args.len()).then_some(i + 1);
                return Ok(o);
            }
            "-i" => {
                o.interactive = true;
                o.version = true;
            }
            "-v" => o.version = true,
            "-E" => o.ignore_env = true,
            "-W" => o.warnings = true,
            _ if a.starts_with("-e") || a.starts_with("-l") => {
                let value = if a.len() > 2 {
                    a[2..].to_string()
                } else {
                    i += 1;
                    args.get(i)
                        .cloned()
                        .ok_or_else(|| format!("'{a}' needs argument"))?
                };
                o.actions.push(if a.starts_with("-e") {
                    Action::Exec(value)
                } else {
                    Action::Require(value)
                });
            }
            _ => return Err(format!("unrecognized option '{a}'")),
        }
        i += 1;
    }
    Ok(o)
}

/// `lua.c`'s usage text, for `usage` as its first line's command.
pub fn usage(usage: &str) -> String {
    format!(
        "usage: {usage}\n\
         Available options are:\n  \
         -e stat   execute string 'stat'\n  \
         -i        enter interactive mode after executing 'script'\n  \
         -l mod    require library 'mod' into global 'mod'\n  \
         -l g=mod  require library 'mod' into global 'g'\n  \
         -v        show version information\n  \
         -E        ignore environment variables\n  \
         -W        turn warnings on\n  \
         --        stop handling options\n  \
         -         stop handling options and execute stdin"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_like_lua_c() {
        let o = parse(&strings(&["-e", "x=1", "-i", "s.lua", "a", "-v"])).unwrap();
        assert!(o.interactive && o.version);
        assert_eq!(o.script, Some(3));
        assert!(matches!(&o.actions[0], Action::Exec(c) if c == "x=1"));
        let o = parse(&strings(&["-lstring", "-W", "-E", "--", "-s.lua"])).unwrap();
        assert!(o.warnings && o.ignore_env && !o.version);
        assert!(matches!(&o.actions[0], Action::Require(m) if m == "string"));
        assert_eq!(o.script, Some(4));
        assert_eq!(
            parse(&strings(&["-x"])).unwrap_err(),
            "unrecognized option '-x'"
        );
        assert_eq!(parse(&strings(&["-e"])).unwrap_err(), "'-e' needs argument");
    }
}
