//! `bioxen run`: run Lua in a fresh VM without the dashboard, for scripts and batch
//! jobs, the way `lua -e CODE` and `lua FILE ARGS` do.
//!
//! A local VM is the interpreter itself, run with the VM's environment (rocks paths,
//! `BIOXEN_VM`) and this terminal's stdin, stdout and stderr: output, errors,
//! tracebacks, `arg`, `io.read` and `os.exit` codes are exactly the interpreter's.
//! Remote kinds run each chunk in the interactive interpreter of a VM made for the run,
//! as `execute_string` does.

use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::manager::{Manager, ManagerConfig};
use crate::vm::{Size, VmKind, VmOptions};

/// How long one remote chunk may run when `--timeout` is not given.
const REMOTE_CHUNK_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// What to run.
#[derive(Debug, Clone)]
pub struct RunArgs {
    pub kind: VmKind,
    /// `-e` chunks, run in order.
    pub exec: Vec<String>,
    /// A script file (or `-` for stdin), run after the chunks.
    pub file: Option<String>,
    /// The script's arguments: `arg[1]`, `arg[2]`, ...
    pub script_args: Vec<String>,
    /// Longest time the run may take (local) or one chunk (remote); none by default.
    pub timeout: Option<Duration>,
    /// For `ssh`: the `[[ssh_hosts]]` entry.
    pub host: Option<String>,
    /// For `xcpng`: keep the pool VM afterwards instead of destroying it.
    pub keep: bool,
    /// Accept and remember an unknown SSH host key (there is no one to ask).
    pub accept_new_host_key: bool,
    /// Packages installed with luarocks before the code runs.
    pub install: Vec<crate::rocks::PackageSpec>,
}

/// Runs the request; returns the exit code, as the interpreter's own would be.
pub async fn run(config: &Config, args: RunArgs) -> Result<i32> {
    let mut manager_config = ManagerConfig::from_config(config)?;
    manager_config.trust.accept_new = args.accept_new_host_key;
    if args.kind == VmKind::Local {
        return run_local(manager_config, &args).await;
    }
    if !args.script_args.is_empty() {
        return Err(Error::Manager(
            "script arguments are passed to local runs only".into(),
        ));
    }
    let manager = Manager::new(manager_config);
    let id = format!("run-{}", std::process::id());
    let options = VmOptions {
        size: Size::new(50, 200),
        host: args.host.clone(),
        ..VmOptions::default()
    };
    if let Err(e) = manager
        .create_interactive_vm(Some(&id), args.kind, options)
        .await
    {
        // A half-made pool VM is destroyed by the lifecycle; a failed session is removed.
        let _ = manager.terminate_vm_session(&id).await;
        return Err(e);
    }
    let result = run_chunks(&manager, &id, &args).await;
    if args.keep && args.kind == VmKind::Xcpng {
        let info = manager.info(&id)?;
        manager.kill(&id).await.ok();
        eprintln!(
            "bioxen run: kept pool VM {} ({})",
            info.pool_vm.unwrap_or_default(),
            info.remote.unwrap_or_default()
        );
    } else if let Err(e) = manager.terminate_vm_session(&id).await {
        eprintln!("bioxen run: cleaning up: {e}");
    }
    result
}

/// The interpreter as its own process, as if the researcher had typed `lua ...`.
async fn run_local(config: ManagerConfig, args: &RunArgs) -> Result<i32> {
    let manager = Manager::new(config.clone());
    if !install_first(&manager, None, &args.install).await? {
        return Ok(1);
    }
    // `-i` in a configured command line makes a REPL of it; a run is never interactive.
    let mut argv: Vec<String> = config
        .local_argv(None)
        .into_iter()
        .filter(|a| a != "-i")
        .collect();
    for chunk in &args.exec {
        argv.push("-e".into());
        argv.push(chunk.clone());
    }
    if let Some(file) = &args.file {
        // A script named like an option must not be taken for one.
        if file.starts_with('-') && file != "-" {
            argv.push("--".into());
        }
        argv.push(file.clone());
        argv.extend(args.script_args.iter().cloned());
    }
    let id = format!("run-{}", std::process::id());
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .envs(config.local_vm_env(&[], &id))
        .kill_on_drop(true);
    for name in config.secret_env() {
        cmd.env_remove(name);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Manager(format!("cannot start '{}': {e}", argv[0])))?;
    let status = match args.timeout {
        None => child.wait().await?,
        Some(t) => match tokio::time::timeout(t, child.wait()).await {
            Ok(status) => status?,
            Err(_) => {
                let _ = child.kill().await;
                return Err(Error::Timeout {
                    id,
                    what: "the run to finish".into(),
                    seconds: t.as_secs_f64(),
                });
            }
        },
    };
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => code,
        // As a shell reports a program killed by a signal.
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    })
}

/// Installs the packages asked for, into the VM `vm` or (local runs) the shared tree,
/// with luarocks' output on stderr as it comes; false (said on stderr) if one failed.
async fn install_first(
    manager: &Manager,
    vm: Option<&str>,
    specs: &[crate::rocks::PackageSpec],
) -> Result<bool> {
    let progress = |bytes: &[u8]| {
        use std::io::Write;
        let _ = std::io::stderr().write_all(bytes);
    };
    for spec in specs {
        let report = match vm {
            Some(id) => manager.install_package(id, spec, &progress).await?,
            None => manager.install_local_package(spec, &progress).await?,
        };
        if !report.success {
            eprintln!(
                "bioxen run: installing {} failed (luarocks exit {})",
                spec.label(),
                report
                    .exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "?".into())
            );
            return Ok(false);
        }
    }
    Ok(true)
}

async fn run_chunks(manager: &Manager, id: &str, args: &RunArgs) -> Result<i32> {
    if !install_first(manager, Some(id), &args.install).await? {
        return Ok(1);
    }
    let mut chunks: Vec<(String, &str)> = args
        .exec
        .iter()
        .map(|c| (c.clone(), "=(command line)"))
        .collect();
    if let Some(file) = &args.file {
        if !std::path::Path::new(file).is_file() {
            return Err(Error::Manager(format!("cannot open {file}")));
        }
        // The remote host cannot see local files: send the script itself.
        chunks.push((std::fs::read_to_string(file)?, "=(file)"));
    }
    for (code, name) in chunks {
        let timeout = args.timeout.unwrap_or(REMOTE_CHUNK_TIMEOUT);
        let result = manager.execute_chunk(id, &code, name, timeout).await?;
        print!("{}", result.output);
        use std::io::Write;
        let _ = std::io::stdout().flush();
        if let Some(err) = result.error {
            eprintln!("{}", crate::sanitize::lines(err.trim_end()));
            return Ok(1);
        }
    }
    Ok(0)
}
