//! The subcommands besides the dashboard: `run`, `ls` and `demo`.

pub mod demo;
pub mod ls;
pub mod run;

/// Waits for SIGINT, SIGTERM or SIGHUP: what ends a foreground command that cleans up
/// after itself (the simulator ends its guests' programs).
pub async fn wait_for_stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}
