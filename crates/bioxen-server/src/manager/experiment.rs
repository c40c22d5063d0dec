//! Experiments: the server starts an experiment's VMs, each once its dependencies are
//! ready, and starts them again after they exit as their restart policy says.
//!
//! Each VM of an experiment has one supervisor task for as long as it may still start:
//! it waits for the VM's dependencies (the VM shows `waiting`), then runs it, and
//! after each exit decides whether to run it again. A VM the user ends is never
//! started again: ending raises the session's stop, which every wait here watches.

use bioxen_proto::{Dependency, Experiment, Membership, PlannedVm, Ready, Restart, UpReport};

use super::*;

impl Manager {
    /// Starts what `experiment` declares and is not in the list yet, as `docker compose
    /// up` does: a VM with the same spec is left alone, running or not (so a second `up`
    /// starts nothing, and a failed VM keeps its last screen); one whose spec changed is
    /// replaced only with `force`. Returns at once: VMs wait for their dependencies
    /// in the background.
    pub async fn up(&self, experiment: Experiment, force: bool) -> Result<UpReport> {
        let mut report = UpReport::default();
        let mut fresh = Vec::new();
        for planned in &experiment.vms {
            if let Some(old) = self.find(planned.name.as_str()) {
                let same = lock(&old.membership)
                    .as_ref()
                    .is_some_and(|m| m.name == experiment.name && m.spec == *planned);
                if same && matches!(old.state(), VmState::Lost(_)) {
                    // Lost with the server before this one: this `up` is its answer.
                    self.rerun_member(&old);
                    report.started.push(planned.name.clone());
                    continue;
                }
                if same {
                    report.unchanged.push(planned.name.clone());
                    continue;
                }
                report.changed.push(planned.name.clone());
                if !force {
                    continue;
                }
                self.terminate_vm_session(old.vm).await?;
            }
            fresh.push(planned);
        }
        // Every VM is in the list before any supervisor looks for its dependencies.
        let mut sessions = Vec::new();
        for planned in fresh {
            let options = self.options_for(planned);
            let session = self.register(Some(&planned.name), planned.kind, &options)?;
            *lock(&session.membership) = Some(Membership {
                name: experiment.name.clone(),
                spec: planned.clone(),
                restarts: 0,
            });
            session.supervised.send_replace(true);
            // Not alive until its supervisor starts it: a `down` meanwhile just ends it.
            let first = match planned.depends_on.first() {
                Some(dep) => format!("{}: {}", dep.vm, dep.until),
                None => "to start".to_string(),
            };
            session.set_state(&self.inner.events, VmState::Waiting(first));
            if !report.changed.contains(&planned.name) {
                report.started.push(planned.name.clone());
            }
            sessions.push(session);
        }
        for session in sessions {
            tokio::spawn(self.clone().supervise(session));
        }
        Ok(report)
    }

    /// Starts an experiment VM again under a new supervisor, waiting for its
    /// dependencies as at its first start: a VM lost with the server before this one.
    pub(super) fn rerun_member(&self, session: &Arc<Session>) {
        session.stop.reset();
        session.supervised.send_replace(true);
        session.set_state(&self.inner.events, VmState::Waiting("to start".into()));
        tokio::spawn(self.clone().supervise(session.clone()));
    }

    /// Ends and forgets every VM of the experiment named `name`; returns their names.
    pub async fn down(&self, name: &str) -> Result<Vec<String>> {
        let members: Vec<Arc<Session>> = lock(&self.inner.sessions)
            .iter()
            .filter(|s| lock(&s.membership).as_ref().is_some_and(|m| m.name == name))
            .cloned()
            .collect();
        // Raised first for all, so no supervisor starts a VM while another is ended.
        for session in &members {
            session.stop.raise();
        }
        let mut ended = Vec::new();
        for session in members {
            ended.push(session.name());
            self.terminate_vm_session(session.vm).await?;
        }
        Ok(ended)
    }

    /// How a planned VM is made: a local VM runs the configured interpreter as
    /// `lua -i script args`, so its prompt stays once the script has run.
    fn options_for(&self, planned: &PlannedVm) -> VmOptions {
        let mut options = VmOptions {
            env: planned.env.clone(),
            host: planned.host.clone(),
            ..VmOptions::default()
        };
        if planned.kind == VmKind::Local {
            let mut argv = self.inner.config.local_argv(None);
            if let Some(script) = &planned.script {
                argv.extend(["-i".to_string(), script.clone()]);
                argv.extend(planned.args.iter().cloned());
            }
            options.command = Some(argv);
            options.cwd = planned.cwd.as_ref().map(PathBuf::from);
        } else {
            options.env.clear();
        }
        options
    }

    /// Waits for the VM's dependencies, then runs it until its policy lets it rest.
    async fn supervise(self, session: Arc<Session>) {
        let spec = match lock(&session.membership).as_ref() {
            Some(m) => m.spec.clone(),
            None => return,
        };
        if self.wait_dependencies(&session, &spec.depends_on).await {
            self.run_with_restarts(&session, &spec).await;
        }
        session.supervised.send_replace(false);
    }

    /// Waits for each dependency in turn; false, with the VM blocked and the reason
    /// shown, when one never will be ready or the VM was ended meanwhile.
    async fn wait_dependencies(&self, session: &Arc<Session>, deps: &[Dependency]) -> bool {
        let events = &self.inner.events;
        for dep in deps {
            let what = format!("{}: {}", dep.vm, dep.until);
            session.set_state(events, VmState::Waiting(what.clone()));
            let Some(on) = self.find(dep.vm.as_str()) else {
                session.set_state(events, VmState::Blocked(format!("{} is gone", dep.vm)));
                return false;
            };
            let outcome = tokio::select! {
                outcome = wait_ready(&on, &dep.until) => outcome,
                _ = session.stop.raised() => Err("ended while it waited".to_string()),
            };
            if let Err(why) = outcome {
                let why = if session.stop.is_raised() {
                    why
                } else {
                    format!("{}: {why}", dep.vm)
                };
                session.set_state(events, VmState::Blocked(why));
                return false;
            }
        }
        !session.stop.is_raised()
    }

    /// Runs the VM, and again after each exit its policy restarts, waiting the backoff
    /// first; past `max_restarts` the VM is failed and alerts.
    async fn run_with_restarts(&self, session: &Arc<Session>, spec: &PlannedVm) {
        let events = &self.inner.events;
        loop {
            {
                let _gate = session.start_gate.lock().await;
                if session.stop.is_raised() || self.start_session(session, false).await.is_err() {
                    return;
                }
            }
            let mut state = session.state.subscribe();
            let _ = state.wait_for(|s| !s.is_alive()).await;
            let end = session.state();
            if session.stop.is_raised() {
                return;
            }
            let again = match spec.restart {
                Restart::No => false,
                Restart::OnFailure => end != VmState::Exited(0),
                Restart::Always => true,
            };
            if !again {
                return;
            }
            let restarts = lock(&session.membership).as_ref().map_or(0, |m| m.restarts);
            if restarts >= spec.max_restarts {
                let why = format!("{} after {restarts} restarts", end.label());
                session.set_state(events, VmState::Failed(why));
                let _ = events.send(Event::Alert(session.vm, Alert::Failed));
                return;
            }
            let backoff = Duration::from_secs_f64(spec.backoff_secs);
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = session.stop.raised() => return,
            }
            if let Some(m) = lock(&session.membership).as_mut() {
                m.restarts += 1;
            }
            let marker = format!(
                "\r\n\x1b[0;2m-- {} · restart {} of {} --\x1b[0m\r\n",
                end.label(),
                restarts + 1,
                spec.max_restarts
            );
            session.on_output(marker.as_bytes(), events);
        }
    }
}

/// Waits until `on` reaches `until`; the reason, when it never will: it ended
/// without reaching it and nothing will start it again.
async fn wait_ready(on: &Arc<Session>, until: &Ready) -> std::result::Result<(), String> {
    let regex = match until {
        Ready::Log(re) => Some(regex::Regex::new(re).map_err(|e| e.to_string())?),
        _ => None,
    };
    let mut state = on.state.subscribe();
    let mut seq = on.seq.subscribe();
    let mut supervised = on.supervised.subscribe();
    // For a log condition: the first line not yet searched for good.
    let mut from = 0u64;
    loop {
        if reached(on, until, regex.as_ref(), &mut from) {
            return Ok(());
        }
        let now = on.state();
        let settled = !*supervised.borrow_and_update() && !now.is_alive();
        if settled && !matches!(now, VmState::Starting) {
            return Err(format!("{} before {until}", now.label()));
        }
        tokio::select! {
            _ = state.changed() => {}
            _ = seq.changed() => {}
            _ = supervised.changed() => {}
        }
    }
}

/// Whether `on` is at `until` now.
fn reached(on: &Session, until: &Ready, regex: Option<&regex::Regex>, from: &mut u64) -> bool {
    let state = on.state();
    match until {
        Ready::Started => lock(&on.process).is_some(),
        Ready::Idle => state.is_alive() && lock(&on.signals).busy == Some(Busy::Idle),
        Ready::ExitedOk => state == VmState::Exited(0),
        Ready::Log(_) => regex.is_some_and(|regex| shows_match(on, regex, from)),
    }
}

/// Whether a line of `on` from line `from` on (history, then the screen) matches;
/// `from` moves past the history searched, which is final, so each line is searched
/// about once however long the wait. The live screen is searched again each time.
pub(super) fn shows_match(on: &Session, regex: &regex::Regex, from: &mut u64) -> bool {
    let screen = lock(&on.screen);
    let (first, live) = screen.line_numbers();
    let last = live + u64::from(screen.size().rows);
    let start = (*from).max(first);
    let text = screen.text_of_lines(start, last);
    *from = live;
    text.lines().any(|line| regex.is_match(line))
}
