//! `bioxen up` and `bioxen down`: an experiment file's VMs started on the server, in
//! dependency order, and ended together.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{Config, experiment};

/// `bioxen up [FILE]`: starts what the file declares and is not running yet, then
/// opens the dashboard unless `detach`.
pub fn up(
    config: Config,
    config_path: Option<&Path>,
    socket: PathBuf,
    file: Option<PathBuf>,
    detach: bool,
    force: bool,
) -> ExitCode {
    let plan = match read(&config, file.as_deref()) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("bioxen: {e}");
            return ExitCode::from(2);
        }
    };
    let start = match super::server::start_options(&config, config_path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bioxen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(runtime) = super::runtime_or_say() else {
        return ExitCode::FAILURE;
    };
    let name = plan.name.clone();
    let report = runtime.block_on(async {
        let client = crate::client::Client::connect_or_start(&socket, "up", &start).await?;
        let report = client.up(plan.clone(), force).await?;
        // As docker compose does not, but as a changed script deserves: asked, on a
        // terminal, before VMs with state are ended.
        if !force && !report.changed.is_empty() && ask_restart(&name, &report.changed) {
            let again = client.up(plan, true).await?;
            return Ok((again, true));
        }
        Ok::<_, crate::client::ClientError>((report, force))
    });
    drop(runtime);
    let (report, forced) = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bioxen: {}", crate::sanitize::lines(&e.to_string()));
            return ExitCode::FAILURE;
        }
    };
    let say = |what: &str, names: &[String]| {
        if !names.is_empty() {
            println!("{name}: {what}: {}", names.join(", "));
        }
    };
    say("started", &report.started);
    say("already running", &report.unchanged);
    if forced {
        say("restarted with a changed spec", &report.changed);
    } else {
        say(
            "changed but left running (--force restarts them)",
            &report.changed,
        );
    }
    if detach {
        return ExitCode::SUCCESS;
    }
    super::dashboard::attach(config, socket, None, false)
}

/// Whether to restart the VMs whose spec changed: yes only when a terminal answers y.
fn ask_restart(name: &str, changed: &[String]) -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return false;
    }
    print!(
        "{name}: the file changed {}; restart with the new spec (their state is lost)? [y/N] ",
        changed.join(", ")
    );
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}

/// `bioxen down [FILE]`: ends and forgets the experiment's VMs.
pub fn down(config: Config, socket: &Path, file: Option<PathBuf>) -> ExitCode {
    let name = match file.as_deref() {
        Some(path) => experiment::name_of(path),
        None => read(&config, None).map(|plan| plan.name),
    };
    let name = match name {
        Ok(n) => n,
        Err(e) => {
            eprintln!("bioxen: {e}");
            return ExitCode::from(2);
        }
    };
    super::control::with_client(socket, |c| async move {
        let ended = c.down(&name).await?;
        if ended.is_empty() {
            println!("{name}: no VM was running");
        } else {
            println!("{name}: ended {}", ended.join(", "));
        }
        Ok(())
    })
}

/// The experiment in `file`, or the `[[vm]]` tables of the configuration file.
fn read(
    config: &Config,
    file: Option<&Path>,
) -> Result<bioxen_proto::Experiment, crate::config::ConfigError> {
    match file {
        Some(path) => experiment::load(path, config),
        None => match config.path() {
            Some(path) if !config.experiment_vms.is_empty() => {
                experiment::from_config(path, config)
            }
            _ => Err(crate::config::ConfigError::Invalid {
                path: config.path().map(Path::to_path_buf).unwrap_or_default(),
                line: 1,
                column: 1,
                key: Some("vm".into()),
                message: "no experiment file was given, and bioxen.toml declares no [[vm]]".into(),
            }),
        },
    }
}
