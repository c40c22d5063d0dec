//! Driving a VM from the shell, as tmux's send-keys and capture-pane do: `bioxen send`
//! types, `bioxen wait` waits for the prompt, the end or a match, and `bioxen capture`
//! prints what the screen shows. With these three a script runs an interactive session
//! end to end.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::protocol::WaitFor;

/// `bioxen send VM TEXT [--enter]`.
pub fn send(socket: &Path, vm: String, text: String, enter: bool) -> ExitCode {
    super::control::with_client(socket, |c| async move {
        let mut bytes = text.into_bytes();
        if enter {
            bytes.push(b'\r');
        }
        c.send_input(&vm, bytes).await
    })
}

/// `bioxen capture VM [-S -N] [-e]`.
pub fn capture(socket: &Path, vm: String, start: Option<i64>, escapes: bool) -> ExitCode {
    super::control::with_client(socket, |c| async move {
        let text = c.capture(&vm, start, escapes).await?;
        super::die_quietly_on_closed_pipe();
        // Screen text is shown, never obeyed: without -e it holds no escapes, and
        // with -e only the colours the VM chose.
        print!("{text}");
        Ok(())
    })
}

/// `bioxen wait VM idle|exited|REGEX [--timeout S]`.
pub fn wait(socket: &Path, vm: String, until: &str, timeout: Option<f64>) -> ExitCode {
    let until = match until {
        "idle" => WaitFor::Idle,
        "exited" => WaitFor::Exited,
        regex => WaitFor::Match(regex.to_string()),
    };
    let timeout = match timeout {
        Some(s) if s.is_finite() && s >= 0.0 => Duration::from_secs_f64(s),
        Some(s) => {
            eprintln!("bioxen wait: --timeout {s} is not a number of seconds");
            return ExitCode::from(2);
        }
        None => Duration::from_secs(24 * 3600),
    };
    super::control::with_client(socket, |c| async move {
        c.wait_until(&vm, until, timeout).await?;
        Ok(())
    })
}
