//! What a session's interpreter says about itself (prompt marks, progress, status,
//! notifications, the bell) turned into alerts and events, and the silence timer.

use super::*;

impl Session {
    /// Follows what the program said: a prompt (busy or idle) is published at once,
    /// progress and status at most every [`SIGNALS_EVERY`]; bells and notifications
    /// become alerts.
    pub(super) fn take_signals(&self, said: Said, events: &broadcast::Sender<Event>) {
        let mut alerts: Vec<Alert> = Vec::new();
        if said.bell {
            alerts.push(Alert::Bell);
        }
        alerts.extend(said.notes.into_iter().map(Alert::Note));
        let publish = {
            let mut sig = lock(&self.signals);
            let mut now = false;
            let mut later = false;
            match said.failed {
                Some(failed) => sig.failed = failed,
                None if said.busy == Some(Busy::Busy) => sig.failed = false,
                None => {}
            }
            if let Some(busy) = said.busy
                && sig.busy != Some(busy)
            {
                if busy == Busy::Idle && sig.busy == Some(Busy::Busy) {
                    alerts.push(match std::mem::take(&mut sig.failed) {
                        true => Alert::Failed,
                        false => Alert::Idle,
                    });
                }
                sig.busy = Some(busy);
                now = true;
            }
            if let Some(progress) = said.progress {
                sig.progress = progress;
                sig.progress_seq += 1;
                sig.progress_at = Some(Instant::now());
                later = true;
            }
            if let Some(status) = said.status {
                let status = (!status.is_empty()).then_some(status);
                later |= sig.status != status;
                sig.status = status;
            }
            if later && !now {
                match sig.published {
                    Some(t) if t.elapsed() < SIGNALS_EVERY => sig.pending = true,
                    _ => now = true,
                }
            }
            if now {
                sig.published = Some(Instant::now());
                sig.pending = false;
            }
            now
        };
        for alert in alerts {
            let _ = events.send(Event::Alert(self.vm, alert));
        }
        if publish {
            let _ = events.send(Event::Stats);
        }
    }

    /// Publishes a throttled change of progress or status, if one waits.
    pub(super) fn flush_signals(&self) -> bool {
        let mut sig = lock(&self.signals);
        let due = sig.pending && sig.published.is_none_or(|t| t.elapsed() >= SIGNALS_EVERY);
        if due {
            sig.pending = false;
            sig.published = Some(Instant::now());
        }
        due
    }

    /// A line from bioxen itself in the session's pane (dimmed), for progress and for
    /// what happened to the connection.
    /// A line from bioxen in the session's pane, on a line of its own: one line
    /// down only when the cursor is not already at a line's start, so notices in a
    /// row are single-spaced.
    pub(super) fn notice(&self, text: &str, events: &broadcast::Sender<Event>) {
        let fresh_line = lock(&self.screen).vt().cursor_position().1 == 0;
        let line = format!(
            "{}\x1b[0;2m[bioxen] {text}\x1b[0m\r\n",
            if fresh_line { "" } else { "\r\n" }
        );
        self.on_output(line.as_bytes(), events);
    }

    /// A line from bioxen that the next one replaces (a count going up), until a
    /// notice follows it. Cut to the pane's width: a wrapped line could not be
    /// replaced.
    pub(super) fn progress(&self, text: &str, events: &broadcast::Sender<Event>) {
        let cols = lock(&self.screen).size().cols as usize;
        let text =
            bioxen_text::columns::truncate(&format!("[bioxen] {text}"), cols.saturating_sub(1));
        let line = format!("\r\x1b[0;2m{text}\x1b[0m\x1b[K");
        self.on_output(line.as_bytes(), events);
    }
}

/// Raises a silence alert when the session, running and not at its prompt, prints
/// nothing for its silence time; once, until it prints again (tmux's
/// `monitor-silence`). Sleeps while the alert is off.
pub(super) async fn watch_silence(
    session: std::sync::Weak<Session>,
    events: broadcast::Sender<Event>,
) {
    let Some((mut output, mut setting)) = session
        .upgrade()
        .map(|s| (s.seq.subscribe(), s.silence.subscribe()))
    else {
        return;
    };
    loop {
        let secs = *setting.borrow_and_update();
        if secs == 0 {
            if setting.changed().await.is_err() {
                return;
            }
            continue;
        }
        output.borrow_and_update();
        tokio::select! {
            changed = output.changed() => if changed.is_err() { return },
            changed = setting.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(Duration::from_secs(secs)) => {
                let Some(s) = session.upgrade() else { return };
                let idle = lock(&s.signals).busy == Some(Busy::Idle);
                if s.state().is_alive() && !idle {
                    let _ = events.send(Event::Alert(s.vm, Alert::Silence(secs)));
                }
                drop(s);
                // Once per silence: wait for output (or a new setting) first.
                tokio::select! {
                    changed = output.changed() => if changed.is_err() { return },
                    changed = setting.changed() => if changed.is_err() { return },
                }
            }
        }
    }
}
