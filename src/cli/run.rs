//! `bioxen run`: run Lua in a fresh VM without the dashboard, for scripts and batch
//! jobs. Output goes to stdout, the Lua error (if any) to stderr, and the exit code says
//! whether the code raised an error.

use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::lua_literal;
use crate::manager::{Manager, ManagerConfig};
use crate::vm::{Size, VmKind, VmOptions};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunArgs {
    pub kind: VmKind,
    /// `-e` chunks, run in order.
    pub exec: Vec<String>,
    /// A script file, run after the chunks.
    pub file: Option<String>,
    /// Longest time any one chunk may take.
    pub timeout: Duration,
    /// For `ssh`: the `[[ssh_hosts]]` entry.
    pub host: Option<String>,
    /// For `xcpng`: keep the pool VM afterwards instead of destroying it.
    pub keep: bool,
    /// Accept and remember an unknown SSH host key (there is no one to ask).
    pub accept_new_host_key: bool,
    /// Packages installed with luarocks before the code runs.
    pub install: Vec<crate::rocks::PackageSpec>,
}

/// Runs the request; returns the process exit code (0 when no Lua error was raised).
pub async fn run(config: &Config, args: RunArgs) -> Result<i32> {
    let mut manager_config = ManagerConfig::from_config(config)?;
    manager_config.trust.accept_new = args.accept_new_host_key;
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

async fn run_chunks(manager: &Manager, id: &str, args: &RunArgs) -> Result<i32> {
    for spec in &args.install {
        // luarocks' own output goes to stderr as it comes, like a progress log.
        let report = manager
            .install_package(id, spec, &|bytes| {
                use std::io::Write;
                let _ = std::io::stderr().write_all(bytes);
            })
            .await?;
        if !report.success {
            eprintln!(
                "bioxen run: installing {} failed (luarocks exit {})",
                spec.label(),
                report
                    .exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "?".into())
            );
            return Ok(1);
        }
    }
    // Remote chunks run in their own exec channels; only a local REPL needs its prompt.
    if args.kind == VmKind::Local {
        manager.wait_ready(id, Duration::from_secs(20)).await?;
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
        if args.kind == VmKind::Local {
            let path = std::fs::canonicalize(file)?;
            let code = format!("dofile({})", lua_literal::quote(&path.to_string_lossy()));
            chunks.push((code, "=(file)"));
        } else {
            // The remote host cannot see local files: send the script itself.
            chunks.push((std::fs::read_to_string(file)?, "=(file)"));
        }
    }
    for (code, name) in chunks {
        let result = manager.execute_chunk(id, &code, name, args.timeout).await?;
        print!("{}", result.output);
        use std::io::Write;
        let _ = std::io::stdout().flush();
        if let Some(err) = result.error {
            eprintln!("{}", err.trim_end());
            return Ok(1);
        }
    }
    Ok(0)
}
