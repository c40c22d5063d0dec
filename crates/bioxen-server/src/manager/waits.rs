//! Waiting on a VM from a script (`bioxen wait`): for its prompt, its end, or a line
//! that matches, each checked again whenever its output or state changes, never on a
//! timer.

use bioxen_proto::WaitFor;

use super::experiment::shows_match;
use super::*;

impl Manager {
    /// Waits until the VM is at its prompt (`Idle`), has ended (`Exited`), or a line of
    /// its screen, or of what it prints from now on, matches (`Match`); returns its
    /// state then. A VM that ends before its prompt or a match is an error that says
    /// how it ended.
    pub async fn wait_until(
        &self,
        vm: impl Into<VmRef>,
        until: &WaitFor,
        timeout: Duration,
    ) -> Result<VmState> {
        let session = self.get(vm)?;
        let regex = match until {
            WaitFor::Match(re) => Some(
                regex::Regex::new(re)
                    .map_err(|e| Error::Manager(format!("not a regular expression: {e}")))?,
            ),
            _ => None,
        };
        // From the top of the screen now: what scrolls off it while waiting is searched too.
        let from = AtomicU64::new(lock(&session.screen).line_numbers().1);
        let matched = AtomicBool::new(false);
        let reached = |s: &Session| match until {
            WaitFor::Exited => !s.state().is_alive(),
            WaitFor::Idle => !s.state().is_alive() || at_prompt(s),
            WaitFor::Match(_) => {
                let mut at = from.load(Ordering::Relaxed);
                let found = regex.as_ref().is_some_and(|r| shows_match(s, r, &mut at));
                from.store(at, Ordering::Relaxed);
                matched.fetch_or(found, Ordering::Relaxed);
                found || !s.state().is_alive()
            }
        };
        if !session.wait_for(timeout, reached).await {
            return Err(Error::Timeout {
                id: session.name(),
                what: format!("waiting for {}", describe(until)),
                seconds: timeout.as_secs_f64(),
            });
        }
        let state = session.state();
        let done = match until {
            WaitFor::Exited => true,
            WaitFor::Idle => state.is_alive(),
            WaitFor::Match(_) => matched.load(Ordering::Relaxed),
        };
        match done {
            true => Ok(state),
            false => Err(Error::session(
                session.name(),
                format!("ended ({}) before {}", state.label(), describe(until)),
            )),
        }
    }
}

/// At its prompt: the interpreter marked it (OSC 133), or, for one that marks
/// nothing, a Lua prompt before the cursor.
fn at_prompt(s: &Session) -> bool {
    match lock(&s.signals).busy {
        Some(busy) => busy == Busy::Idle,
        None => lock(&s.screen).text_before_cursor().ends_with("> "),
    }
}

fn describe(until: &WaitFor) -> String {
    match until {
        WaitFor::Idle => "its prompt".into(),
        WaitFor::Exited => "its end".into(),
        WaitFor::Match(re) => format!("a line matching /{re}/"),
    }
}
