//! Passwords from where the config says they are: an environment variable, a command
//! (run without a shell, first line of its output), or the config file itself.
//! The value never appears in logs, messages or `Debug` output.

/// Where a password comes from, as configured.
pub struct PasswordSource<'a> {
    /// What the messages call the section, e.g. `[xcpng]`.
    pub section: &'a str,
    pub env: Option<&'a str>,
    pub command: Option<&'a str>,
    pub literal: Option<&'a str>,
    /// How long the command may take before it is killed and reported.
    pub timeout: std::time::Duration,
}

/// How long a `password_command` may take unless configured otherwise.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

impl PasswordSource<'_> {
    /// The password, `None` when no source is configured.
    pub fn resolve(&self) -> Result<Option<String>, String> {
        let section = self.section;
        if let Some(var) = self.env {
            return std::env::var(var)
                .map(Some)
                .map_err(|_| format!("{section} password_env names ${var}, which is not set"));
        }
        if let Some(cmd) = self.command {
            let argv =
                shell_words::split(cmd).map_err(|e| format!("{section} password_command: {e}"))?;
            let Some((program, args)) = argv.split_first() else {
                return Err(format!("{section} password_command is empty"));
            };
            let stdout = run_with_timeout(program, args, self.timeout).map_err(|e| {
                format!(
                    "{section} password_command '{}' {e}",
                    bioxen_text::sanitize::line(program)
                )
            })?;
            return Ok(Some(
                String::from_utf8_lossy(&stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            ));
        }
        Ok(self.literal.map(str::to_string))
    }
}

/// Password commands still running, and whether new ones may start.
struct Running {
    groups: Vec<libc::pid_t>,
    /// Set by [`kill_running`]: a login still on its way would otherwise start a
    /// command after the others were killed, in a group of its own that outlives us.
    closed: bool,
}

static RUNNING: std::sync::Mutex<Running> = std::sync::Mutex::new(Running {
    groups: Vec::new(),
    closed: false,
});

/// Ends the password commands still running, and refuses new ones, for a process about
/// to exit that will not wait for them.
pub fn kill_running() {
    let mut running = crate::lock(&RUNNING);
    running.closed = true;
    for group in running.groups.drain(..) {
        // SAFETY: kill(2) of a process group a password command leads; it is unreaped
        // (its waiter has not returned), so the id is still that group's.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
}

/// Runs a password command and returns its standard output, or why not. A command
/// that does not finish in `timeout` (waiting on a prompt nobody sees, a hung agent) is
/// killed with everything it started.
fn run_with_timeout(
    program: &str,
    args: &[String],
    timeout: std::time::Duration,
) -> Result<Vec<u8>, String> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    // Started and registered under one lock, so `kill_running` sees every command.
    let mut running = crate::lock(&RUNNING);
    if running.closed {
        return Err("was not run: this process is ending".into());
    }
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run: {e}"))?;
    let group = child.id() as libc::pid_t;
    running.groups.push(group);
    drop(running);
    let mut stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = (&mut stdout).take(64 * 1024).read_to_end(&mut out);
        let _ = tx.send(out);
    });
    let out = rx.recv_timeout(timeout);
    crate::lock(&RUNNING).groups.retain(|g| *g != group);
    let out = match out {
        Ok(out) => out,
        Err(_) => {
            // SAFETY: kill(2) of the process group this function just started.
            unsafe { libc::kill(-group, libc::SIGKILL) };
            let _ = child.wait();
            return Err(format!(
                "did not finish within {} s (password_timeout_secs)",
                timeout.as_secs()
            ));
        }
    };
    let status = child.wait().map_err(|e| format!("cannot run: {e}"))?;
    if !status.success() {
        return Err(format!("failed ({status})"));
    }
    Ok(out)
}
