//! `bioxen demo`: the whole XCP-ng flow on a machine with no pool and no SSH server.
//!
//! A simulated pool runs inside this process, its guests answering SSH themselves (see
//! `sim::guest`), and the dashboard opens on a configuration made for it: local and
//! pool VMs side by side in the create dialog, and creating a pool VM shows every step,
//! clone, provision, start, IP, SSH, REPL. Everything it needs (a key, a known_hosts
//! the guests' keys are written to, the configuration, the server's socket) lives in a
//! private directory that goes when the demo ends; nothing of the user's is read or
//! written.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::sim::guest::GuestConfig;
use crate::sim::{SimOptions, SimServer};

/// Runs the demo until the dashboard is left.
pub fn run() -> ExitCode {
    let dir = std::env::temp_dir().join(format!("bioxen-demo-{}", std::process::id()));
    let code = match demo(&dir) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bioxen demo: {e}");
            ExitCode::FAILURE
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    code
}

fn demo(dir: &Path) -> Result<ExitCode, String> {
    crate::private_fs::create_private_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let key = write_key(dir)?;
    let port = free_port()?;
    let mut guests = GuestConfig::with_keys_from(port, &[dir.join("key.pub")])
        .map_err(|e| e.to_string())?
        .with_fallback_lua(&dir.join("bin"), &exe)
        .map_err(|e| e.to_string())?;
    guests.known_hosts = Some(dir.join("known_hosts"));
    std::fs::write(dir.join("known_hosts"), "").map_err(|e| e.to_string())?;

    // The pool runs on its own runtime, beside the dashboard's, until the demo ends.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let pool = std::thread::spawn(move || {
        let Ok(runtime) = crate::runtime() else {
            let _ = ready_tx.send(Err("cannot start the runtime".to_string()));
            return;
        };
        runtime.block_on(async move {
            let options = SimOptions {
                // Slow enough that each step of the flow can be seen.
                boot_delay: Duration::from_millis(1500),
                guests: Some(Arc::new(guests)),
                ..SimOptions::default()
            };
            match SimServer::start("127.0.0.1:0".parse().expect("an address"), options, false).await
            {
                Ok(server) => {
                    let _ = ready_tx.send(Ok(server.url.clone()));
                    let _ = stop_rx.await;
                    drop(server);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("the simulated pool cannot listen: {e}")));
                }
            }
        });
    });
    let url = ready_rx
        .recv()
        .map_err(|_| "the simulated pool did not start".to_string())??;

    let config_path = dir.join("bioxen.toml");
    let text = format!(
        "# Made by `bioxen demo` for its simulated pool; removed when the demo ends.\n\
         [ui]\nlog_dir = \"{}\"\n[server]\nstate_dir = \"{}\"\n\
         [xcpng]\nurl = \"{url}\"\nusername = \"root\"\npassword = \"password\"\n\
         [xcpng.ssh]\nport = {port}\nidentity = \"{}\"\nknown_hosts = \"{}\"\n\
         command = \"lua5.4 -i\"\nwait_secs = 30\n",
        dir.join("logs").display(),
        dir.join("state").display(),
        key.display(),
        dir.join("known_hosts").display()
    );
    crate::private_fs::write_atomic(&config_path, text.as_bytes()).map_err(|e| e.to_string())?;
    let config = Config::load(Some(&config_path)).map_err(|e| e.to_string())?;
    let socket = dir.join("server.sock");
    let code = crate::ui::run(
        config,
        crate::ui::Launch {
            socket: socket.clone(),
            start: Some(crate::client::StartOptions {
                exe,
                config: Some(config_path),
                log: dir.join("server.log"),
            }),
            attach: None,
            vms_end_on_quit: true,
            read_only: false,
        },
    );
    // The VMs live in the pool this process serves: they end with it.
    end_server(&socket);
    let _ = stop_tx.send(());
    let _ = pool.join();
    Ok(code)
}

/// Ends the demo's server and its VMs, if one is still running.
fn end_server(socket: &Path) {
    if !socket.exists() {
        return;
    }
    let Ok(runtime) = crate::runtime() else {
        return;
    };
    runtime.block_on(async {
        if let Ok(client) = crate::client::Client::connect(socket, "demo").await {
            let _ = client.shutdown_server().await;
        }
        // Wait for it to go, so the directory can be removed after it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while socket.exists() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

/// A fresh Ed25519 key pair for the demo's SSH, as `key` and `key.pub`.
fn write_key(dir: &Path) -> Result<PathBuf, String> {
    use russh::keys::ssh_key::LineEnding;
    let key = crate::sim::guest::random_key("bioxen-demo").map_err(|e| e.to_string())?;
    let private = key.to_openssh(LineEnding::LF).map_err(|e| e.to_string())?;
    let public = key.public_key().to_openssh().map_err(|e| e.to_string())?;
    let path = dir.join("key");
    crate::private_fs::write_atomic(&path, private.as_bytes()).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("key.pub"), format!("{public}\n")).map_err(|e| e.to_string())?;
    Ok(path)
}

/// A port free on loopback for the guests to share.
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}
