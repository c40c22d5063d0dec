//! The messages: a client's hello and calls, the server's replies and events.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    Alert, Experiment, HistoryOf, PoolStatus, PoolVm, Series, Size, Snapshot, SshAnswer,
    SshQuestion, UpReport, VmId, VmInfo, VmKind, VmOptions, VmRef, VmState, Window, WireError,
};

/// Bumped whenever a message changes shape.
pub const VERSION: u32 = 13;

/// How often a glanced-at session's screen is sent at most: 30 frames a second.
pub const GLANCE_EVERY: std::time::Duration = std::time::Duration::from_millis(33);

/// How long a VM's progress shows after its last report: terminals time progress
/// out likewise, so a VM that stopped reporting does not look stuck at 42 %.
pub const PROGRESS_STALE: std::time::Duration = std::time::Duration::from_secs(15);

/// The largest frame either side accepts: a paste, a snapshot with its scrollback or
/// an output burst fits many times over; a corrupt length cannot make anyone allocate
/// gigabytes.
pub const MAX_MESSAGE: usize = 64 << 20;
/// The most a hello (or a welcome) may take: read before the peer is trusted.
pub const HELLO_LIMIT: usize = 4096;

/// The first byte of an output frame; JSON never starts with it.
pub(crate) const OUTPUT_FRAME: u8 = 0x01;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    /// What the client is (`dashboard`, `ls`, `test`...), for the server's log.
    pub client: String,
    /// A client that only looks (`bioxen attach -r`): the server refuses it every
    /// request that would change a VM or the server ([`Serving::changes`]).
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Welcome {
    Ok { version: u32, server_pid: u32 },
    Refused { reason: String },
}

/// What a client may choose when creating a VM; the rest comes from the server's
/// configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateOptions {
    pub command: Option<Vec<String>>,
    pub rows: Option<u16>,
    pub cols: Option<u16>,
    pub env: Vec<(String, String)>,
    pub host: Option<String>,
    pub template: Option<String>,
    pub memory_mib: Option<u64>,
    pub vcpus: Option<u32>,
    /// An existing pool VM to open a session on: its reference and IP.
    pub pool_vm: Option<(String, String)>,
    /// For `xcpng`: the pool to make the VM on, by name; the first configured if none.
    #[serde(default)]
    pub pool: Option<String>,
}

impl CreateOptions {
    /// The options as the manager takes them; refused when the size is out of bounds.
    pub fn into_vm_options(self) -> Result<VmOptions, crate::vm::TooLarge> {
        let mut size = Size::default();
        if let (Some(rows), Some(cols)) = (self.rows, self.cols) {
            size = Size::checked(rows, cols)?;
        }
        Ok(VmOptions {
            command: self.command,
            size,
            env: self.env,
            host: self.host,
            template: self.template,
            memory_mib: self.memory_mib,
            vcpus: self.vcpus,
            pool_vm: self.pool_vm,
            pool: self.pool,
            cwd: None,
        })
    }
}

/// A request and the tag its reply will carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    pub tag: u64,
    pub request: Request,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    Create {
        /// The new session's name; `None` picks a free one (`lua-3`).
        name: Option<String>,
        kind: VmKind,
        options: CreateOptions,
    },
    SendInput {
        vm: VmRef,
        #[serde(with = "bytes_as_text")]
        data: Vec<u8>,
    },
    /// Output since the last read (the original API's `read_output`).
    ReadOutput {
        vm: VmRef,
    },
    /// Waits until `needle` appears in the output, then returns everything so far.
    ReadUntil {
        vm: VmRef,
        needle: String,
        timeout_ms: u64,
    },
    WaitReady {
        vm: VmRef,
        timeout_ms: u64,
    },
    Execute {
        vm: VmRef,
        code: String,
        timeout_ms: u64,
    },
    Resize {
        vm: VmRef,
        rows: u16,
        cols: u16,
    },
    /// Ends the VM's process (or connection); the session stays, with its screen.
    Kill {
        vm: VmRef,
    },
    /// Ends the VM and forgets it (a pool VM is destroyed).
    Terminate {
        vm: VmRef,
    },
    Restart {
        vm: VmRef,
    },
    List,
    /// The session's screen as text, for clients that show it.
    ScreenText {
        vm: VmRef,
    },
    /// The session's screen and history as text, as `tmux capture-pane -p` prints
    /// it: from `start` (0 is the screen's first row, -N that many lines back into the
    /// history, `None` the screen alone), with colours kept when `escapes`.
    Capture {
        vm: VmRef,
        start: Option<i64>,
        escapes: bool,
    },
    /// Answers once the VM is at its prompt, has exited, or shows a match.
    Wait {
        vm: VmRef,
        until: WaitFor,
        timeout_ms: u64,
    },
    /// Searches the screen and history of every VM.
    Search {
        query: SearchQuery,
    },
    /// What the server kept of a VM's CPU, memory, progress and work over `window`.
    History {
        of: HistoryOf,
        window: Window,
    },
    /// Ends every VM, then the server.
    Shutdown,
    /// From now on, send this client [`Event::Vms`] whenever the VM list changes, and
    /// the pool's state, SSH questions and activity in sessions. Answered at once with
    /// the current state.
    Subscribe,
    /// Send this client the session's screen ([`Event::Screen`]) and from then on its
    /// output and size changes, until `Unwatch`.
    Watch {
        vm: VmRef,
    },
    /// Send this client the session's visible screen, without history, whenever it
    /// changed, at most every [`GLANCE_EVERY`], until `Unwatch`: for a tile the user
    /// looks at but does not type into, which needs the screen, not every byte.
    Glance {
        vm: VmRef,
    },
    Unwatch {
        vm: VmRef,
    },
    /// Someone types into the session: its output is read before idle sessions'.
    Attach {
        vm: VmRef,
    },
    Detach {
        vm: VmRef,
    },
    /// The answer to [`Event::Question`]; the first client to answer decides.
    Answer {
        question: u64,
        answer: SshAnswer,
    },
    /// Starts or stops writing the session's raw output to its log file.
    ToggleLog {
        vm: VmRef,
    },
    /// Gives a session a new name.
    Rename {
        vm: VmRef,
        name: String,
    },
    /// Seconds without output after which the session raises a silence alert; 0 is off.
    SetSilence {
        vm: VmRef,
        secs: u64,
    },
    /// Forgets a session whose interpreter has ended.
    Remove {
        vm: VmRef,
    },
    /// Closes an `xcpng` session and leaves its pool VM running.
    Release {
        vm: VmRef,
    },
    /// Ends an `xcpng` session and destroys its pool VM, keeping the session's screen.
    Destroy {
        vm: VmRef,
    },
    /// Installs a package with luarocks; its output arrives as [`Event::InstallOutput`].
    Install {
        vm: VmRef,
        name: String,
        version: Option<String>,
    },
    /// Ends and forgets every VM; the server stays (or exits, if configured to when
    /// empty).
    EndAll,
    /// Starts the experiment's VMs that are not running yet, each once its
    /// dependencies are ready; with `force`, VMs whose spec changed start again.
    Up {
        experiment: Experiment,
        force: bool,
    },
    /// Ends and forgets every VM of the experiment.
    Down {
        experiment: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    Done,
    Created {
        vm: VmId,
        name: String,
    },
    Output {
        text: String,
    },
    Executed {
        output: String,
        error: Option<String>,
    },
    Vms {
        vms: Vec<VmInfo>,
    },
    State {
        state: VmState,
    },
    LogPath {
        path: Option<std::path::PathBuf>,
    },
    Installed(InstallOutcome),
    Up(UpReport),
    /// The VMs a `Down` ended.
    Ended {
        vms: Vec<String>,
    },
    /// What a `Search` found, in VM order, then line order.
    History {
        series: Series,
    },
    Found {
        matches: Vec<SearchMatch>,
    },
    /// The request failed, with the error's kind kept, as [`crate::Error`] has it.
    Failed(WireError),
}

/// What a [`Request::Wait`] waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitFor {
    /// At its prompt, with nothing running.
    Idle,
    /// Its interpreter has ended.
    Exited,
    /// A line of its screen, or of what it prints from now on, matches this regular
    /// expression.
    Match(String),
}

/// A search of every VM's screen and history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchQuery {
    /// Plain text, or a regular expression with `regex`; case is ignored unless the
    /// query has capitals.
    pub text: String,
    pub regex: bool,
    /// At most this many matches come back.
    pub limit: usize,
}

/// One line that matched, with where it is and the line before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchMatch {
    pub vm: VmId,
    pub name: String,
    /// How many lines above the top of the live screen the line starts (0 is the
    /// screen's first row, a negative number a row further down it): a position a
    /// mirror of the screen finds the same way, whatever it numbers its lines.
    pub back: i64,
    /// The line, soft-wrapped rows joined.
    pub text: String,
    /// Where in `text` the match is, in characters.
    pub start: usize,
    pub len: usize,
    /// The line before it, if any.
    pub context: Option<String>,
    /// Set for a match older than the VM's scrollback, found in its output log: when
    /// the line arrived (Unix milliseconds). `back` then means nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logged_ms: Option<u64>,
}

/// How a luarocks installation ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstallOutcome {
    /// `name` or `name version`.
    pub package: String,
    pub success: bool,
    pub exit_code: Option<i32>,
    pub output: String,
}

/// What the server sends: replies to calls, and events nobody asked for one by one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ServerMsg {
    Reply { tag: u64, response: Response },
    Event(Event),
}

/// Pushed to clients that subscribed ([`Request::Subscribe`]) or watch a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Event {
    /// Every session, after any was created, removed or changed state, and when their
    /// CPU or memory figures move.
    Vms(Vec<VmInfo>),
    /// A watched session's screen: first after `Watch`, and again whenever this client
    /// fell too far behind to be sent the bytes it missed.
    Screen {
        vm: VmId,
        snapshot: Snapshot,
    },
    /// A watched session's terminal changed size.
    Resized {
        vm: VmId,
        rows: u16,
        cols: u16,
    },
    /// A session this client does not watch printed something.
    Activity {
        vm: VmId,
    },
    /// A session has a new name; the list that follows uses it.
    Renamed {
        vm: VmId,
        name: String,
    },
    /// A session asks for attention: a bell, a notification, back at its prompt,
    /// silent too long.
    Alert {
        vm: VmId,
        alert: Alert,
    },
    /// A session changed state.
    State {
        vm: VmId,
        state: VmState,
    },
    /// Something the user should see (a session's error, a pool that cannot be used).
    Notice {
        vm: Option<VmId>,
        text: String,
    },
    Pool(PoolInfo),
    /// A question for the user (an unknown host key, a key passphrase).
    Question {
        id: u64,
        question: SshQuestion,
    },
    /// Answered (by some client) or given up.
    QuestionClosed {
        id: u64,
    },
    /// luarocks' output for the client's `Install`.
    InstallOutput {
        vm: VmId,
        #[serde(with = "bytes_as_text")]
        bytes: Vec<u8>,
    },
    /// The server is ending, and why.
    Closing {
        reason: String,
    },
}

/// A configured pool as the server follows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolInfo {
    /// Its name in `bioxen.toml` (`[[xcpng]] name`).
    pub name: String,
    pub status: PoolStatus,
    pub vms: Vec<PoolVm>,
    /// A standing warning to keep on screen (unverified TLS).
    pub warning: Option<String>,
    /// Set when the pool cannot be used at all (its configuration, its password).
    pub failed: Option<String>,
}

/// What a client reads: a message, or output of a watched session.
#[derive(Debug)]
pub enum Incoming {
    Msg(ServerMsg),
    Output { vm: VmId, bytes: Vec<u8> },
}

/// The longest a package install may run before the server stops it: a luarocks build
/// of a C rock takes minutes, never this long. A client waits this long and a little
/// more, so it never gives up on an install that is still alive.
pub const INSTALL_LIMIT: Duration = Duration::from_secs(30 * 60);

/// How a call is served: how long a client waits for its answer, and whether the server
/// runs it beside the connection's other calls (it may take long) or in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Serving {
    pub patience: Duration,
    pub apart: bool,
    /// It changes a VM or the server (types, resizes, ends, answers...): a read-only
    /// client may not send it.
    pub changes: bool,
}

impl Request {
    /// The one table of operations: the server's dispatch and every client's timeout
    /// read it. It names every request, so a new one cannot be added without a row.
    pub fn serving(&self) -> Serving {
        use Request::*;
        // Past the server's own bound, for the answer to travel.
        let margin = Duration::from_secs(10);
        let within = |d: Duration, apart, changes| Serving {
            patience: d + margin,
            apart,
            changes,
        };
        let quick = |changes| within(Duration::from_secs(120), false, changes);
        match self {
            WaitReady { timeout_ms, .. } | Wait { timeout_ms, .. } => {
                within(Duration::from_millis(*timeout_ms), true, false)
            }
            // Both take what they read from the output others would read.
            ReadUntil { timeout_ms, .. } | Execute { timeout_ms, .. } => {
                within(Duration::from_millis(*timeout_ms), true, true)
            }
            // Creating a pool VM clones, boots and waits for an address.
            Create { .. } | Restart { .. } => within(Duration::from_secs(15 * 60), true, true),
            Install { .. } => within(INSTALL_LIMIT, true, true),
            // Ending a VM waits for its process, or for the pool to halt it.
            // Up ends the VMs a forced change replaces; down ends an experiment.
            Kill { .. }
            | Terminate { .. }
            | Release { .. }
            | Destroy { .. }
            | EndAll
            | Up { .. }
            | Down { .. } => within(Duration::from_secs(120), true, true),
            // Every VM's history, off the connection's turn.
            Search { .. } => within(Duration::from_secs(120), true, false),
            List
            | History { .. }
            | ScreenText { .. }
            | Capture { .. }
            | Subscribe
            | Watch { .. }
            | Glance { .. }
            | Unwatch { .. } => quick(false),
            // Attaching says someone types, which a read-only client never does.
            SendInput { .. }
            | ReadOutput { .. }
            | Resize { .. }
            | Shutdown
            | Attach { .. }
            | Detach { .. }
            | Answer { .. }
            | ToggleLog { .. }
            | Rename { .. }
            | SetSilence { .. }
            | Remove { .. } => quick(true),
        }
    }

    /// How long the server may take to answer, beyond which a client gives up.
    pub fn patience(&self) -> Duration {
        self.serving().patience
    }
}

/// Input bytes as a JSON string where they are UTF-8 (keys, pasted text), as an array of
/// numbers where they are not.
mod bytes_as_text {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Wire {
        Text(String),
        Raw(Vec<u8>),
    }

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(data) {
            Ok(t) => Wire::Text(t.to_string()).serialize(s),
            Err(_) => Wire::Raw(data.to_vec()).serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(match Wire::deserialize(d)? {
            Wire::Text(t) => t.into_bytes(),
            Wire::Raw(b) => b,
        })
    }
}
