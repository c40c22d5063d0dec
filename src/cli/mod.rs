//! The subcommands besides the dashboard: `run`, `ls` and `demo`.

pub mod demo;
pub mod ls;
pub mod run;

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
