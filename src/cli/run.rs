//! `bioxen run`: run Lua in a fresh VM without the dashboard, for scripts and batch
//! jobs, the way `lua -e CODE` and `lua FILE ARGS` do.
//!
//! A local VM is the interpreter itself, run with the VM's environment (rocks paths,
//! `BIOXEN_VM`) and this terminal's stdin, stdout and stderr: output, errors,
//! tracebacks, `arg`, `io.read` and `os.exit` codes are exactly the interpreter's.
//! Remote kinds run the host's interpreter the same way, on an exec channel of a VM
//! made for the run: a REPL in a PTY would echo, merge stderr into stdout, never see
//! the end of stdin and lose the exit status. The VM ends with the run, however the
//! run ends (its end, a signal, a closed pipe).

use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::manager::{Manager, ManagerConfig};
use crate::vm::{Size, VmKind, VmOptions};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunArgs {
    pub kind: VmKind,
    /// `lua`'s own command line, verbatim: options (`-e`, `-l`, `-W`, ...), then the
    /// script (`-` for stdin) and its arguments.
    pub lua: Vec<String>,
    /// Longest time the run may take; none by default.
    pub timeout: Option<Duration>,
    /// For `ssh`: the `[[ssh_hosts]]` entry.
    pub host: Option<String>,
    /// For `xcpng`: the pool, by name; the first configured when unset.
    pub pool: Option<String>,
    /// For `xcpng`: keep the pool VM afterwards instead of destroying it.
    pub keep: bool,
    /// Accept and remember an unknown SSH host key (there is no one to ask).
    pub accept_new_host_key: bool,
    /// Packages installed with luarocks before the code runs.
    pub install: Vec<crate::rocks::PackageSpec>,
}

/// The options of `bioxen run` itself, which must come before Lua's.
const OWN_OPTIONS: [&str; 7] = [
    "--kind",
    "--host",
    "--pool",
    "--keep",
    "--timeout",
    "--install",
    "--accept-new-host-key",
];

/// Checks the Lua command line as `lua` would, before any VM is made; the error is
/// the whole message for stderr, with the usage.
pub fn check_lua_args(lua: &[String]) -> std::result::Result<LuaArgs, String> {
    let options = crate::repl::args::parse(lua).map_err(|why| {
        let misplaced = lua
            .iter()
            .map(|a| a.split('=').next().unwrap_or(a))
            .find(|a| OWN_OPTIONS.contains(a));
        match misplaced {
            Some(own) => format!(
                "bioxen run: {why}: {own} is an option of bioxen run, and goes before Lua's"
            ),
            None => format!(
                "bioxen run: {why}\n{}",
                crate::repl::args::usage("bioxen run [--kind K ...] [lua options] [script [args]]")
            ),
        }
    })?;
    Ok(LuaArgs {
        script: options.script,
    })
}

/// What a run needs to know of a valid Lua command line.
#[derive(Debug, Clone, Copy)]
pub struct LuaArgs {
    /// Index of the script (`-` for stdin) in the command line.
    pub script: Option<usize>,
}

/// Runs the request; returns the exit code, as the interpreter's own would be.
pub async fn run(config: &Config, args: RunArgs) -> Result<i32> {
    let lua = match check_lua_args(&args.lua) {
        Ok(lua) => lua,
        Err(message) => {
            eprintln!("{message}");
            return Ok(1);
        }
    };
    let mut manager_config = ManagerConfig::from_config(config)?;
    manager_config.trust.accept_new = args.accept_new_host_key;
    if args.kind == VmKind::Local {
        return run_local(manager_config, &args).await;
    }
    // The host cannot see local files: the script goes with the run. Read first, so a
    // missing one costs no VM.
    let file = lua.script.map(|i| (i, args.lua[i].as_str()));
    let script = match file {
        Some((at, file)) if file != "-" => match std::fs::read(file) {
            Ok(text) => Some((at, remote_script_name(file), text)),
            Err(e) => {
                // lua's own words and exit code.
                let why = e.to_string();
                let why = why.split(" (os error").next().unwrap_or(&why);
                eprintln!("bioxen run: cannot open {file}: {why}");
                return Ok(1);
            }
        },
        _ => None,
    };
    let manager = Manager::new(manager_config);
    let id = format!("run-{}", std::process::id());
    let options = VmOptions {
        size: Size::new(50, 200),
        host: args.host.clone(),
        pool: args.pool.clone(),
        ..VmOptions::default()
    };
    // The first of SIGINT, SIGTERM or SIGHUP: the run ends its VM before exiting, as
    // `lua` would have died of it.
    let mut interrupted = std::pin::pin!(super::wait_for_stop_signal());
    let mut create = std::pin::pin!(manager.create_link_vm(&id, args.kind, options));
    let created = tokio::select! {
        created = &mut create => created.map(|_| None),
        signal = &mut interrupted => {
            // Stop connecting, let the pool steps finish or undo themselves, then clean
            // up below: a pool VM must never outlive the run.
            let _ = manager.kill(&id).await;
            let _ = create.await;
            Ok(Some(128 + signal))
        }
    };
    let code = match created {
        Err(e) => {
            // A half-made pool VM is destroyed by the lifecycle; a failed session is
            // removed.
            let _ = manager.terminate_vm_session(&id).await;
            manager.pool_jobs_done(Duration::from_secs(120)).await;
            return Err(e);
        }
        Ok(Some(code)) => Ok(code),
        Ok(None) => tokio::select! {
            code = run_remote(&manager, &id, &args, script) => code,
            signal = &mut interrupted => Ok(128 + signal),
        },
    };
    let cleaned = if args.keep && args.kind == VmKind::Xcpng {
        let info = manager.info(&id)?;
        manager.kill(&id).await.ok();
        eprintln!(
            "bioxen run: kept pool VM {} ({})",
            info.pool_vm.unwrap_or_default(),
            info.remote.unwrap_or_default()
        );
        true
    } else if let Err(e) = manager.terminate_vm_session(&id).await {
        eprintln!(
            "bioxen run: the run's VM could not be removed and is left behind: {}",
            crate::sanitize::lines(&e.to_string())
        );
        false
    } else {
        true
    };
    // A creation the run interrupted removes what it made in the background: the
    // process must not end under it.
    let settled = manager.pool_jobs_done(Duration::from_secs(120)).await;
    if !settled {
        eprintln!("bioxen run: the pool VM being made could not be removed in 2 minutes");
    }
    match code {
        // The code's own failure says more than the cleanup's.
        Ok(0) if !(cleaned && settled) => Ok(1),
        other => other,
    }
}

/// Runs the interpreter on the VM's link as `lua` runs here: the script copied into a
/// private directory of its own there first (the host cannot see local files), stdin
/// to EOF, stdout and stderr apart, and the interpreter's exit status as the run's.
async fn run_remote(
    manager: &Manager,
    id: &str,
    args: &RunArgs,
    script: Option<(usize, String, Vec<u8>)>,
) -> Result<i32> {
    if !install_first(manager, Some(id), &args.install).await? {
        return Ok(1);
    }
    let dir = match &script {
        Some((_, name, text)) => Some(upload(manager, id, name, text).await?),
        None => None,
    };
    let interpreter = shell_words::split(&manager.remote_command(id)?)
        .map_err(|e| Error::Manager(format!("the remote command cannot be split: {e}")))?;
    let mut argv: Vec<String> = interpreter.into_iter().filter(|a| a != "-i").collect();
    let mut lua = args.lua.clone();
    if let Some((at, name, _)) = &script {
        // A name that starts with '-' was a path here ("./-x.lua"); keep it one there.
        lua[*at] = if name.starts_with('-') {
            format!("./{name}")
        } else {
            name.clone()
        };
    }
    argv.extend(lua);
    let mut command = crate::vm::ssh::rocks_env();
    if let Some(dir) = &dir {
        command = format!("cd {} && {command}", shell_words::quote(dir));
    }
    command.push_str("exec ");
    command.push_str(&shell_words::join(&argv));
    let (mut out, mut err) = (tokio::io::stdout(), tokio::io::stderr());
    let running = manager.run_program(id, &command, tokio::io::stdin(), &mut out, &mut err);
    let end = match args.timeout {
        None => Ok(running.await),
        Some(t) => tokio::time::timeout(t, running).await.map_err(|_| t),
    };
    // The copy goes however the run ended, a run stopped by --timeout too.
    if let Some(dir) = &dir {
        let _ = manager.exec(id, &["rm", "-rf", "--", dir], b"").await;
    }
    let end = match end {
        Ok(end) => end?,
        Err(t) => {
            eprintln!("{}", timed_out(t));
            return Ok(TIMED_OUT);
        }
    };
    Ok(match end {
        _ if end.output_closed => 128 + libc::SIGPIPE,
        crate::vm::ssh::ProgramEnd {
            status: Some(code), ..
        } => code as i32,
        crate::vm::ssh::ProgramEnd {
            signal: Some(name), ..
        } => 128 + crate::vm::signal_number(&name),
        _ => 1,
    })
}

/// The exit code of a run that took longer than `--timeout`, as timeout(1)'s.
const TIMED_OUT: i32 = 124;

fn timed_out(t: Duration) -> String {
    format!(
        "bioxen run: stopped after {:.1} s: the run took longer than --timeout allows",
        t.as_secs_f64()
    )
}

/// The name a script runs under remotely: the name it was given, where that is a plain
/// relative path (so `arg[0]` and tracebacks read as they do here), else its file name.
fn remote_script_name(file: &str) -> String {
    let path = std::path::Path::new(file);
    let plain = path.is_relative()
        && path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if plain {
        return file.to_string();
    }
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "script.lua".into())
}

/// Copies the script into a fresh private directory on the host; returns its path.
async fn upload(manager: &Manager, id: &str, name: &str, text: &[u8]) -> Result<String> {
    let place = crate::vm::ssh::PRIVATE_COPY;
    let out = manager
        .exec(id, &["sh", "-c", place, "sh", name], text)
        .await?;
    if out.status != Some(0) {
        return Err(Error::session(
            id,
            format!(
                "cannot copy the script to the host: {}",
                crate::sanitize::line(&String::from_utf8_lossy(&out.stderr))
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
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
    argv.extend(args.lua.iter().cloned());
    let id = format!("run-{}", std::process::id());
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .envs(config.local_vm_env(&[], &id))
        .kill_on_drop(true);
    for name in config.secret_env() {
        cmd.env_remove(name);
    }
    let mut signals = ForegroundSignals::new()?;
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Manager(format!("cannot start '{}': {e}", argv[0])))?;
    let status = match args.timeout {
        None => signals.wait(&mut child).await?,
        Some(t) => match tokio::time::timeout(t, signals.wait(&mut child)).await {
            Ok(status) => status?,
            Err(_) => {
                let _ = child.kill().await;
                eprintln!("{}", timed_out(t));
                return Ok(TIMED_OUT);
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

/// The signals a local run takes while its interpreter runs, as a shell takes them
/// while it waits for a foreground job. Ctrl-C and Ctrl-\\ come from the terminal to the
/// whole process group, the interpreter included: they are its to handle (`lua` stops
/// the chunk with "interrupted!"), and the run waits for its exit status. SIGTERM and
/// SIGHUP sent to the run alone are passed on to the interpreter.
struct ForegroundSignals {
    interrupt: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl ForegroundSignals {
    fn new() -> Result<ForegroundSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(ForegroundSignals {
            interrupt: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    async fn wait(
        &mut self,
        child: &mut tokio::process::Child,
    ) -> std::io::Result<std::process::ExitStatus> {
        loop {
            let pass_on = tokio::select! {
                status = child.wait() => return status,
                _ = self.interrupt.recv() => None,
                _ = self.quit.recv() => None,
                _ = self.terminate.recv() => Some(libc::SIGTERM),
                _ = self.hangup.recv() => Some(libc::SIGHUP),
            };
            if let (Some(signal), Some(pid)) = (pass_on, child.id()) {
                // SAFETY: kill(2) of our own child, which has not been reaped yet.
                unsafe { libc::kill(pid as i32, signal) };
            }
        }
    }
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

/// `bioxen run`: checks the command line before any VM is made, then runs it; the exit
/// code is lua's (2 for a broken config or a bad option).
pub fn command(config: &Config, cli: crate::cli::args::RunCli) -> ExitCode {
    let crate::cli::args::RunCli {
        kind,
        timeout,
        lua,
        host,
        pool,
        keep,
        accept_new_host_key,
        install,
    } = cli;
    let install: Result<Vec<_>, _> = install
        .iter()
        .map(|p| crate::rocks::PackageSpec::parse(p))
        .collect();
    let install = match install {
        Ok(specs) => specs,
        Err(e) => {
            eprintln!("bioxen run: {e}");
            return ExitCode::from(2);
        }
    };
    let kind = match kind.parse::<crate::vm::VmKind>() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("bioxen run: {e}");
            return ExitCode::from(2);
        }
    };
    let args = RunArgs {
        kind,
        lua,
        timeout: timeout.map(|t| Duration::from_secs_f64(t.max(0.1))),
        host,
        pool,
        keep,
        accept_new_host_key,
        install,
    };
    let Some(runtime) = super::runtime_or_say() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(run(config, args)) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("bioxen run: {}", crate::sanitize::lines(&e.to_string()));
            ExitCode::from(match e {
                crate::Error::Config(_) => 2,
                _ => 1,
            })
        }
    }
}
