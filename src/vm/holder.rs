//! A session holder on the remote host, dtach: it keeps the interpreter running when
//! the SSH link drops, so a reconnect attaches to the same Lua state, and a running
//! loop goes on meanwhile.
//!
//! dtach passes the interpreter's bytes through untouched, which bioxen relies on:
//! `execute_string` finds its chunk's output between invisible OSC markers in the raw
//! stream, and the busy, idle and progress marks are OSC sequences too. tmux does not
//! do that: it keeps a screen of its own and redraws it into the link, dropping OSC
//! sequences and turning output into cursor moves, so it is not used as a holder (a
//! tmux installed on the host is no help here). abduco passes bytes through as dtach
//! does, but has no Debian package to test against, so it is not used either.
//!
//! dtach's detach and suspend keys are turned off, so every key reaches the
//! interpreter.
//!
//! Without dtach, a reconnect starts a new interpreter and says the state was lost.

use super::ssh::Connection;

/// An interpreter held by dtach on the remote host, under a name of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub name: String,
}

impl Held {
    /// A holder for VM `vm` when the host behind `conn` has dtach; `None` when it has
    /// not (or cannot say).
    pub async fn find(conn: &Connection, vm: &str) -> Option<Held> {
        let out = conn
            .exec(&["sh", "-c", "command -v dtach"], b"")
            .await
            .ok()?;
        (out.status == Some(0)).then(|| Held::named(vm))
    }

    /// A session named after the VM and made unique, so a VM of the same name from
    /// another bioxen on the host gets its own.
    pub fn named(vm: &str) -> Held {
        let vm: String = vm
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(40)
            .collect();
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id());
        Held {
            name: format!("bioxen-{vm}-{:x}", nonce & 0xffff_ffff),
        }
    }

    /// The command line that starts `command` (run by the remote shell, as without a
    /// holder) under dtach, or attaches to it when it runs already.
    pub fn command(&self, command: &str) -> String {
        format!(
            "dtach -A \"${{TMPDIR:-/tmp}}/{}.sock\" -E -z -r winch sh -c {}",
            self.name,
            shell_words::quote(command)
        )
    }

    /// The command that ends the held interpreter, when the user ends the VM: its
    /// dtach, whose terminal then closes under the interpreter.
    pub fn end_command(&self) -> String {
        format!(
            "pkill -f -- {}",
            shell_words::quote(&format!("{}.sock", self.name))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_words() {
        let held = Held::named("my vm; rm -rf /");
        assert!(
            held.name.starts_with("bioxen-my-vm--rm--rf---"),
            "{}",
            held.name
        );
        assert!(
            held.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{}",
            held.name
        );
    }

    #[test]
    fn the_command_is_quoted_once_for_the_holder() {
        let held = Held {
            name: "bioxen-a-1".into(),
        };
        let cmd = held.command("X='a b' lua5.4 -i");
        assert!(
            cmd.starts_with("dtach -A \"${TMPDIR:-/tmp}/bioxen-a-1.sock\""),
            "{cmd}"
        );
        assert!(cmd.ends_with("sh -c 'X='\\''a b'\\'' lua5.4 -i'"), "{cmd}");
    }
}
