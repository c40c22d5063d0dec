//! The process sampler: CPU and memory of every local session, often while output
//! flows and backed off while nothing happens.

use super::*;

/// How often the sampler looks while VMs work, and at most how long it waits while
/// nothing changes.
pub(super) const SAMPLE_EVERY: Duration = Duration::from_secs(1);

pub(super) const SAMPLE_IDLE_MAX: Duration = Duration::from_secs(30);

pub(super) async fn sample_stats(inner: std::sync::Weak<Inner>) {
    let mut meters: HashMap<VmId, (u32, CpuMeter)> = HashMap::new();
    let Some(activity) = inner.upgrade().map(|i| i.activity.clone()) else {
        return;
    };
    let mut every = SAMPLE_EVERY;
    loop {
        let next = tokio::time::Instant::now() + every;
        let backed_off = every > SAMPLE_EVERY;
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            // Only while backed off: during a flood this would wake once per chunk.
            () = activity.notified(), if backed_off => {
                tokio::time::sleep_until(next.min(tokio::time::Instant::now() + SAMPLE_EVERY)).await;
            }
        }
        let Some(inner) = inner.upgrade() else { return };
        let sessions: Vec<_> = lock(&inner.sessions).clone();
        let any_local = sessions.iter().any(|s| {
            s.state().is_alive()
                && lock(&s.process)
                    .as_ref()
                    .and_then(|p| p.control.pid())
                    .is_some()
        });
        let groups = match any_local {
            true => tokio::task::spawn_blocking(Groups::read)
                .await
                .unwrap_or_default(),
            false => Groups::default(),
        };
        let mut changed = false;
        // A sparkline that moved is news for the list, but no reason to look again
        // sooner: a loop that ended decays from the line at the backed-off looks.
        let mut moved = false;
        let mut busy = false;
        let mut seen = Vec::with_capacity(sessions.len());
        let now = crate::persist::unix_secs(SystemTime::now());
        for s in sessions.iter().filter(|s| s.state().is_alive()) {
            let pid = lock(&s.process).as_ref().and_then(|p| p.control.pid());
            let sample = pid.and_then(|pid| {
                seen.push(s.vm);
                let entry = meters.entry(s.vm).or_default();
                if entry.0 != pid {
                    *entry = (pid, CpuMeter::default());
                    // A first sample has no CPU figure yet: look again soon.
                    busy = true;
                }
                entry.1.sample_group(pid, &groups)
            });
            busy |= sample.is_some_and(|s| s.cpu_percent > 0.0);
            let mut stats = lock(&s.stats);
            if display_differs(*stats, sample) {
                changed = true;
            }
            *stats = sample;
            drop(stats);
            moved |= s.record_history(now, sample);
        }
        meters.retain(|id, _| seen.contains(id));
        for s in &sessions {
            changed |= s.flush_signals();
        }
        if changed || moved {
            let _ = inner.events.send(Event::Stats);
        }
        every = if changed || busy {
            SAMPLE_EVERY
        } else {
            (every * 2).min(SAMPLE_IDLE_MAX)
        };
    }
}

/// Whether two samples would look different in the list (0.1% CPU, 0.1 MiB).
pub(super) fn display_differs(a: Option<ProcStats>, b: Option<ProcStats>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            (a.cpu_percent * 10.0).round() != (b.cpu_percent * 10.0).round()
                || a.rss_bytes / (100 * 1024) != b.rss_bytes / (100 * 1024)
                || a.state != b.state
        }
        (None, None) => false,
        _ => true,
    }
}

impl Session {
    /// Adds what the sampler saw to the session's history; true when the list's
    /// sparkline changed its shape with it (see
    /// [`crate::history::History::recent_shape`]), so clients
    /// hear of it even when the figures did not: a loop that ended leaves the line.
    fn record_history(&self, now: u64, stats: Option<ProcStats>) -> bool {
        let (busy, progress) = {
            let sig = lock(&self.signals);
            let progress = sig.fresh_progress().map(|p| p.percent);
            (sig.busy.map(|b| b == Busy::Busy), progress)
        };
        let sample = crate::history::Sample {
            cpu_percent: stats.map(|s| s.cpu_percent),
            rss_bytes: stats.map(|s| s.rss_bytes),
            progress,
            busy,
        };
        let mut history = lock(&self.history);
        let before = history.recent_shape();
        history.record(now, sample);
        history.recent_shape() != before
    }
}

impl Manager {
    /// What the server kept of a session's or a pool VM's last `window`.
    pub fn history(&self, of: &HistoryOf, window: Window) -> Result<Series> {
        match of {
            HistoryOf::Vm(vm) => {
                let session = self.get(vm.clone())?;
                // An xcpng session's figures are its pool VM's.
                let pool_vm = lock(&session.remote)
                    .as_ref()
                    .and_then(|r| r.pool_vm.clone());
                if let Some(reference) = pool_vm
                    && let Some(series) = self.pool_history(&reference, window)
                {
                    return Ok(series);
                }
                Ok(lock(&session.history).series(window))
            }
            HistoryOf::PoolVm(reference) => self
                .pool_history(reference, window)
                .ok_or_else(|| Error::Manager(format!("no figures from the pool for {reference}"))),
        }
    }
}
