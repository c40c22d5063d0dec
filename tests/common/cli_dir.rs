//! The `bioxen` command run as a user would, in a directory of the test's own that
//! holds its runtime (`run/`), state (`state/`) and `bioxen.toml`: the server it
//! starts, its socket, journal and logs are the test's alone.

use std::path::{Path, PathBuf};

/// A fresh directory of the test's own, `bioxen-<what>-<pid>` in the temp dir, with a
/// `bioxen.toml` that keeps the server's logs inside it and adds `config`.
pub fn workdir(what: &str, config: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bioxen-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let logs = format!("[ui]\nlog_dir = \"{}\"\n", dir.join("logs").display());
    std::fs::write(dir.join("bioxen.toml"), format!("{logs}{config}")).unwrap();
    dir
}

/// Starts the server of `dir` as a user would (`bioxen server`), and connects to it.
pub async fn server_in(dir: &Path) -> bioxen::client::Client {
    let out = bioxen_in(dir, &["server"]);
    assert!(out.status.success(), "{}", said(&out));
    bioxen::client::Client::connect(&socket_in(dir), "test")
        .await
        .unwrap()
}

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
