//! The `bioxen` command run as a user would, in a directory of the test's own that
//! holds its runtime (`run/`), state (`state/`) and `bioxen.toml`: the server it
//! starts, its socket, journal and logs are the test's alone.

use std::path::{Path, PathBuf};

/// `bioxen` with its own runtime, state and config directories under `dir`.
pub fn bioxen_in(dir: &Path, args: &[&str]) -> std::process::Output {
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::process::Command::new(super::bioxen_exe())
        .args(["--config", dir.join("bioxen.toml").to_str().unwrap()])
        .args(args)
        .env("XDG_RUNTIME_DIR", &run)
        .env("XDG_STATE_HOME", dir.join("state"))
        .current_dir(dir)
        .output()
        .unwrap()
}

/// The socket of the server `bioxen_in(dir, ..)` starts.
pub fn socket_in(dir: &Path) -> PathBuf {
    dir.join("run/bioxen/server.sock")
}

/// What a command printed, stdout then stderr.
pub fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Ends the test's server however the test ends.
pub struct KillServer(pub PathBuf);

impl Drop for KillServer {
    fn drop(&mut self) {
        let _ = bioxen_in(&self.0, &["kill-server"]);
    }
}

/// A VM made through `client`, at its prompt.
pub async fn ready_vm(
    client: &bioxen::client::Client,
    name: &str,
    kind: bioxen::VmKind,
    options: bioxen::protocol::CreateOptions,
) -> bioxen::VmId {
    let vm = client
        .create_interactive_vm(Some(name), kind, options)
        .await
        .unwrap();
    client.wait_ready(vm, super::WAIT).await.unwrap();
    vm
}
