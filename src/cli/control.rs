//! The commands that ask the running server one thing: `kill-server`, `kill`, `rename`
//! (and `down`, through [`with_client`]).

use std::path::Path;
use std::process::ExitCode;

/// `bioxen kill-server`: ends every VM of the server, and the server.
pub fn kill_server(socket: &Path) -> ExitCode {
    with_client(socket, |c| async move {
        c.shutdown_server().await?;
        Ok(())
    })
}

/// `bioxen kill VM`: ends a VM and forgets it.
pub fn kill(socket: &Path, vm: String) -> ExitCode {
    with_client(socket, |c| async move {
        let state = c.terminate_vm_session(&vm).await?;
        println!("{vm}: {}", state.label());
        Ok(())
    })
}

/// `bioxen rename VM NEW`.
pub fn rename(socket: &Path, vm: String, new: String) -> ExitCode {
    with_client(socket, |c| async move {
        c.rename(&vm, &new).await?;
        println!("{vm} is now {new}");
        Ok(())
    })
}

/// Runs `f` with a connection to the running server; none running is an error.
pub(super) fn with_client<F, Fut>(socket: &std::path::Path, f: F) -> ExitCode
where
    F: FnOnce(crate::client::Client) -> Fut,
    Fut: std::future::Future<Output = crate::client::Result<()>>,
{
    let Some(runtime) = super::runtime_or_say() else {
        return ExitCode::FAILURE;
    };
    let result = runtime.block_on(async {
        let client = crate::client::Client::connect(socket, "cli").await?;
        f(client).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bioxen: {}", crate::sanitize::lines(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}
