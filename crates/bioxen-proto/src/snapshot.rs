//! A screen in transit, from the server to a mirror of it.

/// A screen in transit: see [`Screen::snapshot`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub rows: u16,
    pub cols: u16,
    /// Rows scrolled off the top, oldest first, as text with SGR codes, one per line
    /// (a row never holds a newline). One string rather than a list: a list of 10,000
    /// strings costs ten times its text to build and to take apart.
    pub history: String,
    /// How many rows `history` holds: one blank row and none are both "", so the
    /// count, not the text, says which.
    #[serde(default)]
    pub history_rows: u32,
    /// Which history rows soft-wrap onto the next (their line went on past the right
    /// margin), by index: a mirror re-lays lines on a resize as the server does.
    #[serde(default)]
    pub history_wrapped: Vec<u32>,
    /// While a full-screen program runs: the normal screen behind it, replayed
    /// first, so the mirror shows what the program leaves behind when it ends.
    pub primary: Option<String>,
    /// Escape sequences that redraw the live screen and set its modes.
    pub state: String,
    pub title: Option<String>,
    /// Rows that ever scrolled into the history, dropped ones included: a mirror
    /// replaced by a newer snapshot keeps a scrolled-back view on the same lines by
    /// the difference, as it does for output it parses itself.
    #[serde(default)]
    pub scrolled: u64,
    /// The history was left out, and comes in the session's next screen: a client
    /// shows the screen first, before it has taken in thousands of rows.
    #[serde(default)]
    pub history_follows: bool,
}

impl Snapshot {
    /// This screen without its history, which is to follow in `self`.
    pub fn ahead_of_history(&self) -> Snapshot {
        Snapshot {
            rows: self.rows,
            cols: self.cols,
            history: String::new(),
            history_rows: 0,
            history_wrapped: Vec::new(),
            primary: self.primary.clone(),
            state: self.state.clone(),
            title: self.title.clone(),
            scrolled: self.scrolled,
            history_follows: true,
        }
    }
}
/// Scrollback bytes per session unless configured: with the screen itself, well within
/// the 4 MiB a session may cost.
pub const DEFAULT_SCROLLBACK_BYTES: usize = 2 << 20;
