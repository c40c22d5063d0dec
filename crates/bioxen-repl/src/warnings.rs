//! `warn()` as the reference interpreter handles it (lauxlib's `warnfoff`, `warnfon`,
//! `warnfcont`): off until `@on` (or `-W`), `@on`/`@off` control messages, a message
//! in pieces written as one line, each prefixed `Lua warning: ` on stderr. The state
//! mlua creates has no warning function, so without this every warning is lost.

use std::cell::Cell;
use std::io::Write;

use mlua::Lua;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Off,
    On,
    /// In the middle of a message given in pieces: no control messages, no prefix.
    Continued,
}

/// What to write for one call of the warning function, and the state after it.
fn step(state: State, message: &str, to_continue: bool) -> (State, String) {
    let control = match state {
        State::Continued => None,
        _ if to_continue => None,
        _ => message.strip_prefix('@'),
    };
    if let Some(control) = control {
        let next = match control {
            "on" => State::On,
            "off" => State::Off,
            _ => state,
        };
        return (next, String::new());
    }
    match state {
        State::Off => (State::Off, String::new()),
        State::On | State::Continued => {
            let mut text = String::new();
            if state == State::On {
                text.push_str("Lua warning: ");
            }
            text.push_str(message);
            if to_continue {
                (State::Continued, text)
            } else {
                text.push('\n');
                (State::On, text)
            }
        }
    }
}

/// Gives `lua` the reference interpreter's warning function, off at first.
pub fn install(lua: &Lua) {
    let state = Cell::new(State::Off);
    lua.set_warning_function(move |_, message, to_continue| {
        let (next, text) = step(state.get(), message, to_continue);
        state.set(next);
        if !text.is_empty() {
            // stderr flushes stdout first (see output.rs), as lua's stderr comes after
            // the prints before it.
            super::flush_c_stdio();
            let _ = std::io::stderr().write_all(text.as_bytes());
        }
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(calls: &[(&str, bool)]) -> String {
        let mut state = State::Off;
        let mut out = String::new();
        for (message, to_continue) in calls {
            let (next, text) = step(state, message, *to_continue);
            state = next;
            out.push_str(&text);
        }
        out
    }

    #[test]
    fn warnings_follow_lauxlib() {
        assert_eq!(run(&[("hi", false)]), "", "off by default");
        assert_eq!(run(&[("@on", false), ("hi", false)]), "Lua warning: hi\n");
        assert_eq!(
            run(&[("@on", false), ("a", true), ("@off", true), ("b", false)]),
            "Lua warning: a@offb\n",
            "no control messages inside a message"
        );
        assert_eq!(
            run(&[("@on", false), ("x", false), ("@off", false), ("y", false)]),
            "Lua warning: x\n"
        );
        assert_eq!(
            run(&[("@on", false), ("@what", false), ("z", false)]),
            "Lua warning: z\n"
        );
    }
}
