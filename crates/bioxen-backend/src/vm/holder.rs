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

use std::borrow::Cow;

use memchr::memmem;

use super::ssh::Connection;

/// What dtach writes when it attaches: home and clear the screen.
const DTACH_CLEAR: &[u8] = b"\x1b[H\x1b[J";
/// What dtach writes when the held program has ended.
const DTACH_EOF: &[u8] = b"[EOF - dtach terminating]";
/// The start of the interpreter's exit status, as the held shell writes it.
const EXIT_MARK: &[u8] = b"\x1b]777;bioxen-exit;";

/// What [`Held::find`] found on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A new interpreter will start under this name.
    New(Held),
    /// An interpreter already held under this name goes on.
    Resumed(Held),
}

impl Found {
    pub fn held(&self) -> &Held {
        match self {
            Found::New(h) | Found::Resumed(h) => h,
        }
    }
}

/// `vm` as a word for a file name: letters, digits and dashes, at most 40.
fn safe_word(vm: &str) -> String {
    vm.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect()
}

/// Whether `name` is one bioxen gives held sessions: it goes into a shell glob and a
/// path, so only letters, digits and dashes after `bioxen-`.
fn is_held_name(name: &str) -> bool {
    name.starts_with("bioxen-")
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// An interpreter held by dtach on the remote host, under a name of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub name: String,
    /// How dtach asks the interpreter to redraw when bioxen attaches: SIGWINCH for an
    /// interpreter bioxen started (its screen is known), Ctrl-L for one taken up
    /// again, whose prompt must be drawn anew to be seen.
    pub redraw: &'static str,
}

impl Held {
    /// A holder for VM `vm` when the host behind `conn` has dtach; `None` when it has
    /// not (or cannot say). The interpreter held as `before` (a server before this one
    /// recorded it) is attached to if it still runs; with `resume`, so is one held
    /// there already for a VM of that name (a session closed with its VM kept).
    pub async fn find(
        conn: &Connection,
        vm: &str,
        resume: bool,
        before: Option<&str>,
    ) -> Option<Found> {
        let out = conn
            .exec(&["sh", "-c", "command -v dtach"], b"")
            .await
            .ok()?;
        if out.status != Some(0) {
            return None;
        }
        if let Some(name) = before.filter(|n| is_held_name(n))
            && let Some(held) = Held::running(conn, name).await
        {
            return Some(Found::Resumed(held));
        }
        let prefix = format!("bioxen-{}-????????", safe_word(vm));
        if resume && let Some(held) = Held::running(conn, &prefix).await {
            return Some(Found::Resumed(held));
        }
        Some(Found::New(Held::named(vm)))
    }

    /// The newest interpreter dtach holds on the host under a name matching
    /// `pattern` (a shell glob of safe words), if one still answers: `dtach -p` with
    /// nothing to push connects and leaves, and fails on a socket whose dtach has gone.
    async fn running(conn: &Connection, pattern: &str) -> Option<Held> {
        let script = r#"cd "${TMPDIR:-/tmp}" 2>/dev/null || exit 1
for s in $(ls -t -- $1.sock 2>/dev/null); do
  [ -S "$s" ] && dtach -p "$s" </dev/null >/dev/null 2>&1 && { printf %s "${s%.sock}"; exit 0; }
done
exit 1"#;
        let out = conn
            .exec(&["sh", "-c", script, "sh", pattern], b"")
            .await
            .ok()?;
        let name = String::from_utf8(out.stdout).ok()?;
        let valid = out.status == Some(0) && is_held_name(&name);
        valid.then_some(Held {
            name,
            redraw: "ctrl_l",
        })
    }

    /// A session named after the VM and made unique, so a VM of the same name from
    /// another bioxen on the host gets its own.
    pub fn named(vm: &str) -> Held {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id());
        Held {
            name: format!("bioxen-{}-{:08x}", safe_word(vm), nonce & 0xffff_ffff),
            redraw: "winch",
        }
    }

    /// The command line that starts `command` (run by the remote shell, as without a
    /// holder) under dtach, or attaches to it when it runs already. dtach's own exit
    /// status is 0 whatever the interpreter's, so the interpreter's is written out as
    /// an OSC string the reader takes back out ([`Held::take_exit`]).
    pub fn command(&self, command: &str) -> String {
        // The shell outlives the Ctrl-C meant for the interpreter (a trap, not an
        // ignored signal, which the interpreter would inherit).
        let inner = format!(
            "trap : INT QUIT\n{command}\ncode=$?; printf '\\033]777;bioxen-exit;%s\\007' \"$code\"; exit \"$code\""
        );
        format!(
            "dtach -A \"${{TMPDIR:-/tmp}}/{}.sock\" -E -z -r {} sh -c {}",
            self.name,
            self.redraw,
            shell_words::quote(&inner)
        )
    }

    /// Takes what dtach adds out of a chunk of the held session's output: its
    /// clear-screen on attach (`first`), its end message, and the interpreter's exit
    /// status, which is returned.
    ///
    /// Every chunk of a held session passes here, so it is searched, not copied,
    /// unless dtach added something.
    pub fn take_exit(chunk: &[u8], first: bool) -> (Cow<'_, [u8]>, Option<i32>) {
        let mut out = Cow::Borrowed(match chunk.strip_prefix(DTACH_CLEAR) {
            Some(rest) if first => rest,
            _ => chunk,
        });
        let mut code = None;
        if let Some(at) = memmem::find(&out, EXIT_MARK) {
            let from = at + EXIT_MARK.len();
            if let Some(len) = memchr::memchr(0x07, &out[from..]) {
                code = std::str::from_utf8(&out[from..from + len])
                    .ok()
                    .and_then(|c| c.parse().ok());
                out.to_mut().drain(at..from + len + 1);
            }
        }
        if let Some(at) = memmem::find(&out, DTACH_EOF) {
            out.to_mut().drain(at..at + DTACH_EOF.len());
        }
        (out, code)
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
    fn dtach_additions_are_taken_out_and_the_exit_status_kept() {
        let (out, code) = Held::take_exit(b"\x1b[H\x1b[JLua 5.4\r\n> ", true);
        assert_eq!((&*out, code), (&b"Lua 5.4\r\n> "[..], None));
        // Only dtach's first clear goes; a program's own stays.
        let (out, _) = Held::take_exit(b"\x1b[H\x1b[Jx", false);
        assert_eq!(&*out, b"\x1b[H\x1b[Jx");
        let (out, code) = Held::take_exit(
            b"bye\r\n\x1b]777;bioxen-exit;3\x07\r\n[EOF - dtach terminating]\r\n",
            false,
        );
        assert_eq!((&*out, code), (&b"bye\r\n\r\n\r\n"[..], Some(3)));
    }

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
            redraw: "winch",
        };
        let cmd = held.command("X='a b' lua5.4 -i");
        assert!(
            cmd.starts_with("dtach -A \"${TMPDIR:-/tmp}/bioxen-a-1.sock\""),
            "{cmd}"
        );
        assert!(
            cmd.contains("sh -c 'trap : INT QUIT\nX='\\''a b'\\'' lua5.4 -i\ncode=$?;"),
            "{cmd}"
        );
        assert!(cmd.ends_with("exit \"$code\"'"), "{cmd}");
    }
}
