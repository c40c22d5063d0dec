//! What a program tells its terminal about itself, beyond what it draws: whether it is
//! at its prompt, how far along it is, a status line, notifications and the bell.
//!
//! These are the conventions terminals already read, so a program written for them
//! needs nothing from bioxen, and the `bioxen` Lua module writes nothing else:
//! - OSC 133 (semantic prompts, as iTerm2, WezTerm, kitty and VS Code read them): `A`
//!   when the prompt is drawn, `C` when input starts running, `D;STATUS` when it ended
//!   (0 for success). The
//!   embedded REPL writes them, and bioxen sets `_PROMPT` so `lua -i` does too.
//! - OSC 9;4;STATE;PERCENT (progress, as Windows Terminal, ConEmu, Ghostty, iTerm2,
//!   Konsole and WezTerm read it): state 0 clears, 1 normal, 2 error, 3 indeterminate,
//!   4 paused.
//! - OSC 9;TEXT and OSC 777;notify;TITLE;BODY: a desktop notification.
//! - OSC 1337;SetUserVar=bioxen_status=BASE64 (iTerm2's and WezTerm's user variables):
//!   a line of status text.

pub use bioxen_proto::{Busy, Progress, ProgressState};

/// What the program said since the last [`Signals::take`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Said {
    /// The latest prompt marker, if any arrived.
    pub busy: Option<Busy>,
    /// Whether the last command that ended (`133;D;STATUS`) failed, if one said so.
    pub failed: Option<bool>,
    /// The latest progress report: `Some(None)` when it was cleared.
    pub progress: Option<Option<Progress>>,
    /// The latest status text.
    pub status: Option<String>,
    /// Notifications, oldest first (at most [`MAX_NOTES`] per take).
    pub notes: Vec<String>,
    pub bell: bool,
}

impl Said {
    pub fn is_empty(&self) -> bool {
        *self == Said::default()
    }
}

/// Notifications kept between two takes: a loop that notifies on every step must not
/// grow memory.
pub const MAX_NOTES: usize = 8;
/// Status and notification text is cut to this many characters.
pub const MAX_TEXT: usize = 200;

/// Collects what the parser hands over.
#[derive(Debug, Default)]
pub struct Signals {
    said: Said,
}

impl Signals {
    pub fn take(&mut self) -> Said {
        std::mem::take(&mut self.said)
    }

    pub fn bell(&mut self) {
        self.said.bell = true;
    }

    /// One OSC sequence, split at its semicolons.
    pub fn osc(&mut self, params: &[&[u8]]) {
        match params {
            [b"133", mark, ..] => match mark.first() {
                Some(b'A') => self.said.busy = Some(Busy::Idle),
                Some(b'C') => self.said.busy = Some(Busy::Busy),
                Some(b'D') => {
                    if let Some(status) = params.get(2).and_then(|s| std::str::from_utf8(s).ok()) {
                        self.said.failed = Some(status.trim() != "0");
                    }
                }
                _ => {}
            },
            [b"9", b"4", rest @ ..] => {
                let number = |i: usize| -> Option<u8> {
                    std::str::from_utf8(rest.get(i)?).ok()?.parse().ok()
                };
                let percent = number(1).unwrap_or(0).min(100);
                let state = match number(0) {
                    Some(1) => ProgressState::Normal,
                    Some(2) => ProgressState::Error,
                    Some(3) => ProgressState::Indeterminate,
                    Some(4) => ProgressState::Paused,
                    _ => return self.said.progress = Some(None),
                };
                self.said.progress = Some(Some(Progress { state, percent }));
            }
            [b"9", text @ ..] if !text.is_empty() => self.note(&join(text)),
            [b"777", b"notify", title, body @ ..] => {
                let title = clean(title);
                let body = join(body);
                self.note(&match (title.is_empty(), body.is_empty()) {
                    (false, false) => format!("{title}: {body}"),
                    (true, _) => body,
                    (false, true) => title,
                });
            }
            [b"1337", var, ..] => {
                if let Some(value) = var.strip_prefix(b"SetUserVar=bioxen_status=") {
                    let text = std::str::from_utf8(value)
                        .ok()
                        .and_then(bioxen_text::base64::decode)
                        .map(|v| clean(&v))
                        .unwrap_or_default();
                    self.said.status = Some(text);
                }
            }
            _ => {}
        }
    }

    fn note(&mut self, text: &str) {
        if self.said.notes.len() < MAX_NOTES && !text.is_empty() {
            self.said.notes.push(text.to_string());
        }
    }
}

/// Parameters after the first, joined back with the semicolons the split took out.
fn join(parts: &[&[u8]]) -> String {
    clean(&parts.join(&b';'))
}

/// Text safe to show anywhere: no control characters, one line, bounded.
fn clean(bytes: &[u8]) -> String {
    bioxen_text::sanitize::line(&String::from_utf8_lossy(bytes))
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(params: &[&[u8]]) -> Said {
        let mut s = Signals::default();
        s.osc(params);
        s.take()
    }

    #[test]
    fn prompt_markers_say_busy_and_idle() {
        assert_eq!(said(&[b"133", b"A"]).busy, Some(Busy::Idle));
        assert_eq!(said(&[b"133", b"C"]).busy, Some(Busy::Busy));
        assert_eq!(said(&[b"133", b"D", b"0"]).busy, None);
        assert_eq!(said(&[b"133", b"D", b"0"]).failed, Some(false));
        assert_eq!(said(&[b"133", b"D", b"1"]).failed, Some(true));
        assert_eq!(said(&[b"133", b"D"]).failed, None);
    }

    #[test]
    fn progress_follows_the_osc_9_4_convention() {
        let p = |state, percent| Some(Some(Progress { state, percent }));
        assert_eq!(
            said(&[b"9", b"4", b"1", b"42"]).progress,
            p(ProgressState::Normal, 42)
        );
        assert_eq!(
            said(&[b"9", b"4", b"2", b"100"]).progress,
            p(ProgressState::Error, 100)
        );
        assert_eq!(
            said(&[b"9", b"4", b"1", b"250"]).progress,
            p(ProgressState::Normal, 100)
        );
        assert_eq!(
            said(&[b"9", b"4", b"3"]).progress,
            p(ProgressState::Indeterminate, 0)
        );
        assert_eq!(said(&[b"9", b"4", b"0"]).progress, Some(None));
        assert_eq!(said(&[b"9", b"4"]).progress, Some(None));
    }

    #[test]
    fn notifications_are_cleaned_and_bounded() {
        assert_eq!(said(&[b"9", b"done; all 3"]).notes, vec!["done; all 3"]);
        assert_eq!(said(&[b"9", b"a", b"b"]).notes, vec!["a;b"]);
        assert_eq!(
            said(&[b"777", b"notify", b"job", b"epoch \x1b[31m3\x07"]).notes,
            vec!["job: epoch [31m3"]
        );
        let mut s = Signals::default();
        for _ in 0..100 {
            s.osc(&[b"9", &[b'x'; 1000]]);
        }
        let notes = s.take().notes;
        assert_eq!(notes.len(), MAX_NOTES);
        assert!(notes.iter().all(|n| n.chars().count() == MAX_TEXT));
    }

    #[test]
    fn status_comes_as_a_base64_user_variable() {
        // "epoch 3: loss 0.25" in base64.
        let s = said(&[
            b"1337",
            b"SetUserVar=bioxen_status=ZXBvY2ggMzogbG9zcyAwLjI1",
        ]);
        assert_eq!(s.status.as_deref(), Some("epoch 3: loss 0.25"));
        let s = said(&[b"1337", b"SetUserVar=bioxen_status=G1syShtbMko="]);
        assert_eq!(
            s.status.as_deref(),
            Some("[2J[2J"),
            "no escape reaches the screen"
        );
        assert_eq!(said(&[b"1337", b"SetUserVar=other=eA=="]).status, None);
    }
}
