//! Sessions written down for the journal, and made again from it by a server that
//! starts after its predecessor was lost.
//!
//! A VM is its spec plus a life. The journal keeps the spec (and for remote VMs where
//! the life ran); a new server makes the session again with its number and name,
//! shows the end of its log as its scrollback above a `server restarted` line, and
//! then does what its restore policy says: wait (`ask`), start a new life (`rerun`),
//! or leave it (`never`). A local interpreter's Lua state dies with its process and
//! the pane says so; a remote one held on its host is attached to again.

use bioxen_proto::Restore;

use super::*;
use crate::persist::journal::{Journal, VmRecord, clock};

impl Manager {
    /// Every session as the journal keeps it, in creation order.
    pub fn records(&self) -> Vec<VmRecord> {
        lock(&self.inner.sessions)
            .iter()
            .map(|s| self.record(s))
            .collect()
    }

    /// The number the next session would get.
    pub fn next_vm(&self) -> u64 {
        self.inner.next_vm.load(Ordering::Relaxed)
    }

    /// Numbers new sessions past `n`, one already used (by a log on disk).
    pub fn number_past(&self, n: u64) {
        self.inner.next_vm.fetch_max(n + 1, Ordering::Relaxed);
    }

    fn record(&self, session: &Session) -> VmRecord {
        let size = lock(&session.screen).size();
        let remote = lock(&session.remote);
        let spec_pool_vm = match &session.spec {
            VmSpec::Xcpng { pool_vm, .. } => pool_vm.as_ref().map(|(r, _)| r.clone()),
            _ => None,
        };
        VmRecord {
            vm: session.vm,
            name: session.name(),
            spec: session.spec.clone(),
            created_unix: unix_secs(session.created),
            rows: size.rows,
            cols: size.cols,
            state: session.state(),
            restore: self.restore_policy(session),
            experiment: lock(&session.membership).clone(),
            pool_vm: remote
                .as_ref()
                .and_then(|r| r.pool_vm.clone())
                .or(spec_pool_vm),
            target: remote.as_ref().map(|r| r.target.label()),
            held: remote
                .as_ref()
                .and_then(|r| r.held.as_ref().map(|h| h.name.clone()))
                .or_else(|| lock(&session.held_before).clone()),
        }
    }

    /// The session's restore policy: its experiment's, else its kind's default.
    fn restore_policy(&self, session: &Session) -> Restore {
        let planned = lock(&session.membership)
            .as_ref()
            .and_then(|m| m.spec.restore);
        planned.unwrap_or(match session.kind() {
            VmKind::Local => self.inner.config.local_restore,
            // Attaching to a held interpreter loses nothing; without a holder it is
            // what a dropped link does anyway.
            VmKind::Ssh | VmKind::Xcpng => Restore::Rerun,
        })
    }

    /// Makes the sessions `journal` lists again: each with its number, name and spec,
    /// its last screen and scrollback read from its log, and a line that says the
    /// server restarted. Those that were running are `lost`. Returns the ones their
    /// policy starts again now: give them to [`Manager::rerun_restored`].
    pub fn restore(&self, journal: &Journal) -> Vec<VmId> {
        self.inner
            .next_vm
            .fetch_max(journal.next_vm, Ordering::Relaxed);
        let marker = format!(
            "\r\n\x1b[0;2m── server restarted {} ──\x1b[0m\r\n",
            clock(unix_secs(SystemTime::now()))
        );
        let mut rerun = Vec::new();
        for record in &journal.vms {
            let session = match self.restore_one(record) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(vm = %record.vm, "not restored: {e}");
                    continue;
                }
            };
            let events = &self.inner.events;
            session.set_state(
                events,
                journal.state_now(record, &self.inner.config.logs.dir),
            );
            session.on_output(marker.as_bytes(), events);
            if record.was_running() {
                session.notice(&what_comes_back(record), events);
                if record.restore == Restore::Rerun {
                    rerun.push(record.vm);
                }
            }
        }
        rerun
    }

    fn restore_one(&self, record: &VmRecord) -> Result<Arc<Session>> {
        let mut spec = record.spec.clone();
        // A pool VM is found again by its reference; its address is asked of the pool.
        if let (VmSpec::Xcpng { pool_vm, .. }, Some(reference)) = (&mut spec, &record.pool_vm) {
            *pool_vm = Some((reference.clone(), String::new()));
        }
        let size = Size::new(record.rows, record.cols);
        let session = self.add_session(Some(record.vm), &record.name, spec, size)?;
        *lock(&session.membership) = record.experiment.clone();
        *lock(&session.held_before) = record.held.clone();
        let files = LogFiles::new(&self.inner.config.logs.dir, record.vm);
        match files.tail(self.inner.config.scrollback_bytes as u64) {
            Ok(tail) => {
                let mut screen = lock(&session.screen);
                screen.feed(&tail);
                // What the old life said about itself is over.
                screen.take_said();
            }
            Err(e) => tracing::warn!(vm = %record.vm, "its log cannot be read: {e}"),
        }
        Ok(session)
    }

    /// Starts again what [`Manager::restore`] returned, each as `r` would: an
    /// experiment's VM under its supervisor, after its dependencies.
    pub fn rerun_restored(&self, vms: Vec<VmId>) {
        for vm in vms {
            let manager = self.clone();
            tokio::spawn(async move {
                if let Err(e) = manager.restart(vm).await {
                    tracing::warn!(%vm, "not started again: {e}");
                }
            });
        }
    }
}

/// What the pane of a lost VM says will happen to it.
fn what_comes_back(record: &VmRecord) -> String {
    let local = record.spec.kind() == VmKind::Local;
    match (local, record.restore) {
        (true, Restore::Rerun) => {
            "its Lua state could not be kept; it starts again from its spec".into()
        }
        (true, Restore::Ask) => "its Lua state could not be kept; r starts it again from its \
             spec (bioxen up, for an experiment's VM)"
            .into(),
        (true, Restore::Never) => {
            "its Lua state could not be kept; it stays ended (restore = \"never\")".into()
        }
        (false, Restore::Rerun) => {
            "attaching again to its interpreter, if the host still holds it".into()
        }
        (false, Restore::Ask) => {
            "r attaches again to its interpreter, if the host still holds it".into()
        }
        (false, Restore::Never) => "left as it was (restore = \"never\")".into(),
    }
}
