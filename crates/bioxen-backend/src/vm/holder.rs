//! A session holder on the remote host: it keeps the interpreter running when the SSH
//! link drops (or bioxen's server goes), so a reconnect attaches to the same Lua
//! state, and a running loop goes on meanwhile.
//!
//! dtach is used where the host has it. It passes the interpreter's bytes through
//! untouched, which bioxen relies on: `execute_string` finds its chunk's output between
//! invisible OSC markers in the raw stream, and the busy, idle and progress marks are
//! OSC sequences too. tmux does not do that: it keeps a screen of its own and redraws it
//! into the link, dropping OSC sequences and turning output into cursor moves, so it is
//! not used as a holder (a tmux installed on the host is no help here). abduco passes
//! bytes through as dtach does, but has no Debian package to test against.
//!
//! Where dtach is missing and python3 is there, bioxen's own holder (`holder.py`,
//! standard library only) does the same: it is sent over an exec channel into a
//! directory only the user may enter, and runs from there.
//!
//! dtach's detach and suspend keys are turned off, and the python holder has none, so
//! every key reaches the interpreter. With neither, a reconnect starts a new
//! interpreter and says the state was lost.

use std::borrow::Cow;

use memchr::memmem;

use super::ssh::Connection;

/// What dtach writes when it attaches: home and clear the screen.
const DTACH_CLEAR: &[u8] = b"\x1b[H\x1b[J";
/// What dtach writes when the held program has ended.
const DTACH_EOF: &[u8] = b"[EOF - dtach terminating]";
/// The start of the interpreter's exit status, as the held shell writes it.
const EXIT_MARK: &[u8] = b"\x1b]777;bioxen-exit;";

/// bioxen's holder, for hosts without dtach.
const PYTHON_HOLDER: &str = include_str!("holder.py");

/// Puts the python holder (stdin) in a directory of the user's own, made private and
/// checked to be a real directory the user owns, and prints the directory.
const INSTALL_PYTHON_HOLDER: &str = r#"umask 077
d="${TMPDIR:-/tmp}/bioxen-holder-$(id -u)"
mkdir -p -- "$d" 2>/dev/null
[ -d "$d" ] && [ ! -L "$d" ] && [ -O "$d" ] && chmod 700 "$d" || exit 1
cat > "$d/holder.py.$$" && mv -f -- "$d/holder.py.$$" "$d/holder.py" && printf %s "$d""#;

/// What holds interpreters on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    Dtach,
    /// bioxen's holder, in this private directory on the host (with its sockets).
    Python {
        dir: String,
    },
}

impl Holder {
    /// What the host has: dtach, else python3 (the holder is sent there now), else
    /// nothing that holds.
    pub async fn on(conn: &Connection) -> Option<Holder> {
        let which = "command -v dtach >/dev/null && echo dtach || { command -v python3 >/dev/null && echo python3; }";
        let out = conn.exec(&["sh", "-c", which], b"").await.ok()?;
        match String::from_utf8_lossy(&out.stdout).trim() {
            "dtach" => Some(Holder::Dtach),
            "python3" => {
                let argv = ["sh", "-c", INSTALL_PYTHON_HOLDER];
                let out = conn.exec(&argv, PYTHON_HOLDER.as_bytes()).await.ok()?;
                let dir = String::from_utf8(out.stdout).ok()?;
                let plain =
                    dir.starts_with('/') && !dir.contains(['\n', '\'', '"', '\\', '$', '`']);
                (out.status == Some(0) && plain).then_some(Holder::Python { dir })
            }
            _ => None,
        }
    }

    /// Its name, as the user is told.
    pub fn label(&self) -> &'static str {
        match self {
            Holder::Dtach => "dtach",
            Holder::Python { .. } => "bioxen's python3 holder",
        }
    }

    /// The directory its sockets are in, as shell text.
    fn socket_dir(&self) -> String {
        match self {
            Holder::Dtach => "${TMPDIR:-/tmp}".into(),
            Holder::Python { dir } => shell_words::quote(dir).into_owned(),
        }
    }

    /// A shell command that succeeds when a holder answers at socket `"$s"`.
    fn ping(&self) -> String {
        match self {
            Holder::Dtach => r#"dtach -p "$s" </dev/null >/dev/null 2>&1"#.into(),
            Holder::Python { dir } => {
                format!(r#"python3 {}/holder.py ping "$s""#, shell_words::quote(dir))
            }
        }
    }
}

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

/// An interpreter held on the remote host, under a name of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub name: String,
    /// How the holder asks the interpreter to redraw when bioxen attaches: SIGWINCH
    /// for an interpreter bioxen started (its screen is known), Ctrl-L for one taken
    /// up again, whose prompt must be drawn anew to be seen.
    pub redraw: &'static str,
    pub holder: Holder,
}

impl Held {
    /// A holder for VM `vm` when the host behind `conn` has one; `None` when it has
    /// not (or cannot say). The interpreter held as `before` (a server before this one
    /// recorded it) is attached to if it still runs; with `resume`, so is one held
    /// there already for a VM of that name (a session closed with its VM kept).
    pub async fn find(
        conn: &Connection,
        vm: &str,
        resume: bool,
        before: Option<&str>,
    ) -> Option<Found> {
        let holder = Holder::on(conn).await?;
        if let Some(name) = before.filter(|n| is_held_name(n))
            && let Some(held) = Held::running(conn, &holder, name).await
        {
            return Some(Found::Resumed(held));
        }
        let prefix = format!("bioxen-{}-????????", safe_word(vm));
        if resume && let Some(held) = Held::running(conn, &holder, &prefix).await {
            return Some(Found::Resumed(held));
        }
        Some(Found::New(Held::named(vm, holder)))
    }

    /// The newest interpreter held on the host under a name matching `pattern` (a
    /// shell glob of safe words), if one still answers: the holder's ping connects and
    /// leaves, and fails on a socket whose holder has gone.
    async fn running(conn: &Connection, holder: &Holder, pattern: &str) -> Option<Held> {
        let script = format!(
            r#"cd {} 2>/dev/null || exit 1
for s in $(ls -t -- $1.sock 2>/dev/null); do
  [ -S "$s" ] && {} && {{ printf %s "${{s%.sock}}"; exit 0; }}
done
exit 1"#,
            holder.socket_dir(),
            holder.ping()
        );
        let out = conn
            .exec(&["sh", "-c", &script, "sh", pattern], b"")
            .await
            .ok()?;
        let name = String::from_utf8(out.stdout).ok()?;
        let valid = out.status == Some(0) && is_held_name(&name);
        valid.then_some(Held {
            name,
            redraw: "ctrl_l",
            holder: holder.clone(),
        })
    }

    /// A session named after the VM and made unique, so a VM of the same name from
    /// another bioxen on the host gets its own.
    pub fn named(vm: &str, holder: Holder) -> Held {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id());
        Held {
            name: format!("bioxen-{}-{:08x}", safe_word(vm), nonce & 0xffff_ffff),
            redraw: "winch",
            holder,
        }
    }

    /// The command line that starts `command` (run by the remote shell, as without a
    /// holder) under the holder, or attaches to it when it runs already. The holder's
    /// own exit status is 0 whatever the interpreter's, so the interpreter's is written
    /// out as an OSC string the reader takes back out ([`Held::take_exit`]).
    pub fn command(&self, command: &str) -> String {
        // The shell outlives the Ctrl-C meant for the interpreter (a trap, not an
        // ignored signal, which the interpreter would inherit).
        let inner = format!(
            "trap : INT QUIT\n{command}\ncode=$?; printf '\\033]777;bioxen-exit;%s\\007' \"$code\"; exit \"$code\""
        );
        let socket = format!("{}/{}.sock", self.holder.socket_dir(), self.name);
        match &self.holder {
            Holder::Dtach => format!(
                "dtach -A \"{socket}\" -E -z -r {} sh -c {}",
                self.redraw,
                shell_words::quote(&inner)
            ),
            Holder::Python { dir } => format!(
                "python3 {}/holder.py attach {socket} {} {}",
                shell_words::quote(dir),
                self.redraw,
                shell_words::quote(&inner)
            ),
        }
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
    /// holder, whose terminal then closes under the interpreter. The pattern's `[.]`
    /// matches the holder's `.sock` but not the text of this command, so the shells
    /// running it are not among what it ends.
    pub fn end_command(&self) -> String {
        format!(
            "pkill -f -- {}",
            shell_words::quote(&format!("{}[.]sock", self.name))
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
        let held = Held::named("my vm; rm -rf /", Holder::Dtach);
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
            holder: Holder::Dtach,
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

        let held = Held {
            holder: Holder::Python {
                dir: "/tmp/bioxen-holder-0".into(),
            },
            ..held
        };
        let cmd = held.command("lua5.4 -i");
        assert!(
            cmd.starts_with(
                "python3 /tmp/bioxen-holder-0/holder.py attach /tmp/bioxen-holder-0/bioxen-a-1.sock winch 'trap"
            ),
            "{cmd}"
        );
    }
}
