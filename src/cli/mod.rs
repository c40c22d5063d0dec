//! The `bioxen` command's subcommands, one module each; `main` parses the command line
//! ([`args`]) and hands each command to its module.

pub mod args;
pub mod control;
pub mod dashboard;
pub mod demo;
pub mod experiment;
pub mod keys;
pub mod logs;
pub mod ls;
pub mod run;
pub mod script;
pub mod server;
pub mod sim;

/// Waits for SIGINT, SIGTERM or SIGHUP and returns its number: what ends a foreground
/// command that cleans up after itself (a run ends its VM, the simulator its guests'
/// programs).
pub async fn wait_for_stop_signal() -> i32 {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return libc::SIGINT;
    };
    tokio::select! {
        _ = int.recv() => libc::SIGINT,
        _ = term.recv() => libc::SIGTERM,
        _ = hup.recv() => libc::SIGHUP,
    }
}

/// For commands that only print: a reader that stops reading (`| head`) ends the
/// process by SIGPIPE, silently, as it ends cat or ls. Rust ignores SIGPIPE, which
/// turns the closed pipe into a panic in `println!`. Commands that also talk to a
/// server or a VM keep it ignored, so a peer's closed socket stays an error.
pub fn die_quietly_on_closed_pipe() {
    // SAFETY: sets the disposition of one signal; nothing here relies on its being ignored.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The async runtime, or `None` having said why not.
pub(crate) fn runtime_or_say() -> Option<tokio::runtime::Runtime> {
    crate::runtime()
        .map_err(|e| eprintln!("bioxen: cannot start: {e}"))
        .ok()
}
