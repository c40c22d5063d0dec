//! What the dashboard asks of the server and of the user's terminal beyond drawing,
//! and the one place that asks it.
//!
//! [`App`](super::app::App) never holds the connection: each change of its state
//! returns the effects it calls for, and the loop in `ui/mod.rs` hands them to a
//! [`Runner`]. Requests that need no answer go straight to the socket; calls that take
//! a while (creating, killing a VM) run as supervised tasks whose outcome comes back to
//! the app as a [`Done`]. So the app is plain state that tests drive without a server,
//! and what a key press does to the world is a value a test can read.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::task::JoinSet;

use std::path::PathBuf;

use bioxen_client::Client;
use bioxen_config::Config;
use bioxen_proto::package::PackageSpec;
use bioxen_proto::{
    CreateOptions, Experiment, HistoryOf, InstallOutcome, Progress, ProgressState, Request,
    SearchMatch, SearchQuery, Series, UpReport, VmId, VmKind, Window,
};

/// A consequence of a change in the dashboard's state.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Sent without waiting: watching, resizing, typing, answering a question. A
    /// failure comes back from the server as an update.
    Notify(Request),
    /// A call whose outcome the dashboard shows.
    Call(Call),
    /// A desktop notification through the user's terminal (OSC 9).
    Desktop(String),
    /// The running VMs' overall progress for the user's terminal tab (OSC 9;4);
    /// `None` clears it.
    OuterProgress(Option<Progress>),
    /// Text for the system clipboard, through the user's terminal (OSC 52).
    Clipboard(String),
}

/// A VM a call is about: its number, to act on, and its name, to report with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub vm: VmId,
    pub name: String,
}

/// The calls the dashboard makes and waits on, each in a task of its own.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Create {
        name: String,
        kind: VmKind,
        options: CreateOptions,
    },
    Kill(Target),
    /// Forgets an ended session.
    Remove(Target),
    /// Starts an ended VM again; a running one (`running`) is ended first.
    Restart {
        target: Target,
        running: bool,
    },
    ToggleLog(Target),
    /// Closes an `xcpng` session and leaves its pool VM running.
    Release(Target),
    /// Closes an `xcpng` session and destroys its pool VM.
    Destroy(Target),
    Install {
        target: Target,
        spec: PackageSpec,
    },
    /// Ends every VM in the server; the dashboard quits when it has.
    EndAll,
    Rename {
        target: Target,
        new: String,
    },
    /// Starts what an experiment file declares (`bioxen up`); `force` restarts the VMs
    /// whose spec changed.
    Up {
        path: PathBuf,
        force: bool,
    },
    /// Ends and forgets an experiment's VMs (`bioxen down`).
    Down(String),
    /// Runs an experiment again from the start: down, then up with the same specs.
    Rerun(Experiment),
    /// The file names that complete a path typed in the `u` prompt.
    Complete(String),
    /// Searches what every VM printed.
    Search(SearchQuery),
    /// What the server kept of a VM's figures, for the chart.
    History {
        of: HistoryOf,
        window: Window,
    },
}

/// How a call ended, as the dashboard reports it. Errors are the text shown.
#[derive(Debug, Clone, PartialEq)]
pub enum Done {
    /// The new VM's number and name.
    Created(Result<(VmId, String), String>),
    Info(String),
    Failed(String),
    /// Every VM was ended: the dashboard quits.
    EndedAll,
    InstallDone(Result<InstallOutcome, String>),
    /// A rename's answer: the dialog closes, or says why and keeps the name typed.
    Renamed {
        target: Target,
        new: String,
        result: Result<(), String>,
    },
    /// An `up` from the dashboard: the experiment's name and what it started, or why
    /// the file was refused.
    Up {
        path: PathBuf,
        forced: bool,
        result: Result<(String, UpReport), String>,
    },
    /// The paths that complete `typed` (directories end in `/`).
    Completed {
        typed: String,
        found: Vec<String>,
    },
    /// What a search of every VM found.
    Found(Result<Vec<SearchMatch>, String>),
    History {
        of: HistoryOf,
        window: Window,
        result: Result<Series, String>,
    },
    /// The task doing `what` panicked: a bug, reported rather than lost.
    Panicked {
        what: &'static str,
        text: String,
    },
}

impl Call {
    /// What the call is doing, for the report if its task panics.
    pub fn what(&self) -> &'static str {
        match self {
            Call::Create { .. } => "create",
            Call::Kill(_) | Call::Release(_) | Call::Destroy(_) => "kill",
            Call::Remove(_) => "remove",
            Call::Restart { .. } => "restart",
            Call::ToggleLog(_) => "log",
            Call::Install { .. } => "install",
            Call::EndAll => "end all",
            Call::Rename { .. } => "rename",
            Call::Up { .. } | Call::Rerun(_) => "up",
            Call::Down(_) => "down",
            Call::Complete(_) => "complete",
            Call::Search(_) => "search",
            Call::History { .. } => "history",
        }
    }

    async fn run(self, server: Client, config: Arc<Config>) -> Done {
        match self {
            Call::Up { path, force } => {
                let result = up(&server, &config, &path, force).await;
                Done::Up {
                    path,
                    forced: force,
                    result,
                }
            }
            Call::Down(name) => match server.down(&name).await {
                Ok(ended) => Done::Info(format!("{name}: ended {} VMs", ended.len())),
                Err(e) => Done::Failed(format!("cannot end {name}: {e}")),
            },
            Call::Rerun(experiment) => {
                let name = experiment.name.clone();
                let again = async {
                    server.down(&name).await?;
                    server.up(experiment, true).await
                };
                match again.await {
                    Ok(report) => Done::Info(format!(
                        "{name}: running again, {} VMs",
                        report.started.len() + report.changed.len()
                    )),
                    Err(e) => Done::Failed(format!("cannot restart {name}: {e}")),
                }
            }
            Call::Complete(typed) => {
                let found = tokio::task::spawn_blocking({
                    let typed = typed.clone();
                    move || crate::path_complete::complete(&typed)
                })
                .await
                .unwrap_or_default();
                Done::Completed { typed, found }
            }
            Call::Search(query) => {
                Done::Found(server.search(query).await.map_err(|e| e.to_string()))
            }
            Call::History { of, window } => {
                let result = server.history(of.clone(), window).await;
                Done::History {
                    of,
                    window,
                    result: result.map_err(|e| e.to_string()),
                }
            }
            Call::Create {
                name,
                kind,
                options,
            } => Done::Created(
                server
                    .create_vm(Some(&name), kind, options)
                    .await
                    .map_err(|e| format!("cannot create {name}: {e}")),
            ),
            Call::Kill(Target { vm, name: id }) => match server.kill(vm).await {
                Ok(state) => Done::Info(format!("{id}: {}", state.label())),
                Err(e) => Done::Failed(format!("cannot kill {id}: {e}")),
            },
            Call::Remove(Target { vm, name: id }) => match server.remove(vm).await {
                Ok(()) => Done::Info(format!("removed {id}")),
                Err(e) => Done::Failed(e.to_string()),
            },
            Call::Restart {
                target: Target { vm, name: id },
                running,
            } => {
                if running && let Err(e) = server.kill(vm).await {
                    return Done::Failed(format!("cannot restart {id}: {e}"));
                }
                match server.restart(vm).await {
                    Ok(()) => Done::Info(format!("{id} restarted")),
                    Err(e) => Done::Failed(format!("cannot restart {id}: {e}")),
                }
            }
            Call::ToggleLog(Target { vm, name: id }) => match server.toggle_output_log(vm).await {
                Ok(Some(path)) => Done::Info(format!("{id}: logging output to {}", path.display())),
                Ok(None) => Done::Info(format!("{id}: output log off")),
                Err(e) => Done::Failed(format!("{id}: cannot log output: {e}")),
            },
            Call::Release(Target { vm, name: id }) => match server.release(vm).await {
                Ok(bioxen_proto::VmState::Running) => Done::Info(format!(
                    "{id}: session closed; its interpreter goes on under dtach on the VM \
                     (Enter attaches to it again)"
                )),
                Ok(state) => Done::Info(format!(
                    "{id}: session closed ({}); the VM keeps running, detached (Enter starts \
                     a new interpreter on it)",
                    state.label()
                )),
                Err(e) => Done::Failed(format!("{id}: {e}")),
            },
            Call::Destroy(Target { vm, name: id }) => match server.kill_and_destroy(vm).await {
                Ok(_) => Done::Info(format!("{id}: pool VM destroyed")),
                Err(e) => Done::Failed(format!("{id}: {e}")),
            },
            Call::Rename { target, new } => {
                let result = (server.rename(target.vm, &new).await).map_err(|e| e.to_string());
                Done::Renamed {
                    target,
                    new,
                    result,
                }
            }
            Call::Install { target, spec } => Done::InstallDone(
                server
                    .install_package(target.vm, &spec)
                    .await
                    .map_err(|e| format!("cannot install {}: {e}", spec.label())),
            ),
            Call::EndAll => {
                // Test hook: the test of a panicking quit sets this.
                if std::env::var("BIOXEN_TEST_PANIC").as_deref() == Ok("quit") {
                    panic!("BIOXEN_TEST_PANIC=quit: a deliberate panic while quitting");
                }
                match server.end_all().await {
                    Ok(()) => Done::EndedAll,
                    Err(e) => Done::Failed(format!("cannot end the VMs: {e}")),
                }
            }
        }
    }
}

/// Reads the experiment file and starts it; an error is the text the prompt shows.
async fn up(
    server: &Client,
    config: &Config,
    path: &std::path::Path,
    force: bool,
) -> Result<(String, UpReport), String> {
    let plan = bioxen_config::experiment::load(path, config).map_err(|e| e.to_string())?;
    let name = plan.name.clone();
    let report = server.up(plan, force).await;
    report
        .map(|r| (name.clone(), r))
        .map_err(|e| format!("cannot start {name}: {e}"))
}

/// OSC 9 with text that can neither end the sequence early nor be read as OSC 9;4.
pub fn desktop_notification(text: &str) -> String {
    let text: String = bioxen_text::sanitize::line(text)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    format!("\x1b]9;bioxen: {text}\x07")
}

/// OSC 9;4: state 1 normal, 2 error, 3 indeterminate, 4 paused; 0 clears.
pub fn progress_report(progress: Option<Progress>) -> String {
    match progress {
        None => "\x1b]9;4;0;0\x07".to_string(),
        Some(p) => {
            let state = match p.state {
                ProgressState::Normal => 1,
                ProgressState::Error => 2,
                ProgressState::Indeterminate => 3,
                ProgressState::Paused => 4,
            };
            format!("\x1b]9;4;{state};{}\x07", p.percent)
        }
    }
}

/// Writes to the user's terminal between frames; a terminal that is gone is the main
/// loop's to notice.
fn to_terminal(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Carries out effects against the server, supervising the calls.
pub struct Runner {
    server: Client,
    /// What experiment files refer to: the interpreter, the SSH hosts.
    config: Arc<Config>,
    tasks: JoinSet<Done>,
    /// What each running task is doing, for the report if it panics.
    names: HashMap<tokio::task::Id, &'static str>,
    /// Set while the user's terminal shows this dashboard's progress, for the code
    /// that restores the terminal to clear it.
    progress_shown: Arc<AtomicBool>,
}

impl Runner {
    pub fn new(server: Client, config: Arc<Config>, progress_shown: Arc<AtomicBool>) -> Runner {
        Runner {
            server,
            config,
            tasks: JoinSet::new(),
            names: HashMap::new(),
            progress_shown,
        }
    }

    pub fn run(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Notify(request) => self.server.notify(request),
                Effect::Call(call) => {
                    let what = call.what();
                    let handle = self
                        .tasks
                        .spawn(call.run(self.server.clone(), self.config.clone()));
                    self.names.insert(handle.id(), what);
                }
                Effect::Desktop(text) => to_terminal(&desktop_notification(&text)),
                Effect::Clipboard(text) => to_terminal(&format!(
                    "\x1b]52;c;{}\x07",
                    bioxen_text::base64::encode(text.as_bytes())
                )),
                Effect::OuterProgress(p) => {
                    self.progress_shown.store(p.is_some(), Ordering::Relaxed);
                    to_terminal(&progress_report(p));
                }
            }
        }
    }

    pub fn is_idle(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The next call to end, with its outcome; a cancelled task yields nothing.
    pub async fn next(&mut self) -> Option<Done> {
        loop {
            let done = self.tasks.join_next_with_id().await?;
            let id = match &done {
                Ok((id, _)) => *id,
                Err(e) => e.id(),
            };
            let what = self.names.remove(&id).unwrap_or("background");
            match done {
                Ok((_, done)) => return Some(done),
                Err(e) if e.is_panic() => {
                    let payload = e.into_panic();
                    let text = payload
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "(no message)".into());
                    tracing::error!(task = what, "background task panicked: {text}");
                    return Some(Done::Panicked { what, text });
                }
                Err(_) => continue,
            }
        }
    }
}
