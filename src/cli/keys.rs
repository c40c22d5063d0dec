//! `bioxen keys`.

use std::process::ExitCode;

use crate::config::Config;

/// `bioxen keys`: the live keymap, the one the dashboard dispatches with and its help
/// shows; scripts ask it for an action's key rather than hard-coding one.
pub fn command(config: &Config, action: Option<&str>, mode: &str, prefix: bool) -> ExitCode {
    use crate::keymap::{Keymap, Mode};
    let keymap = match Keymap::from_config(config) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("bioxen: {e}");
            return ExitCode::from(2);
        }
    };
    if prefix {
        println!("{}", keymap.prefix);
        return ExitCode::SUCCESS;
    }
    let Some(action) = action else {
        for (section, lines) in keymap.help() {
            println!("{section}");
            for (key, what) in lines {
                println!("  {key:<24} {what}");
            }
        }
        return ExitCode::SUCCESS;
    };
    let mode_name = mode;
    let mode = match mode {
        "list" => Mode::List,
        "prefix" => Mode::Prefix,
        other => {
            eprintln!("bioxen keys: unknown mode '{other}' (list or prefix)");
            return ExitCode::from(2);
        }
    };
    match keymap.key_of(mode, action) {
        Some(key) => {
            println!("{key}");
            ExitCode::SUCCESS
        }
        None => {
            let (other, other_name) = match mode {
                Mode::List => (Mode::Prefix, "prefix"),
                _ => (Mode::List, "list"),
            };
            if keymap.key_of(other, action).is_some() {
                eprintln!(
                    "bioxen keys: '{action}' is a {other_name} action: bioxen keys {action} --mode {other_name}"
                );
            } else {
                eprintln!(
                    "bioxen keys: no action '{action}' in {mode_name} mode; its actions are: {}",
                    keymap.names(mode).join(", ")
                );
            }
            ExitCode::FAILURE
        }
    }
}
