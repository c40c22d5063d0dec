//! What crosses the socket between `bioxen server` and its clients: the whole contract
//! in one file.
//!
//! Each frame is a 4-byte big-endian length and that many bytes. A frame whose first
//! byte is `0x01` carries a session's output as raw bytes (`[0x01][id length][id]
//! [bytes]`): output is nearly all the traffic, and raw it costs a copy, where any text
//! encoding would escape every control byte. Every other frame is one JSON message:
//! control traffic is small, and JSON keeps it readable (`socat` and a hex dump tell
//! what happened), needs no schema beside these types, and is what `bioxen ls --json`
//! already speaks. ARCHITECTURE.md weighs the alternatives.
//!
//! A client opens with [`Hello`] carrying [`VERSION`]; the server answers [`Welcome`]
//! or refuses a version it does not speak, naming both. Then the client sends [`Call`]s,
//! each tagged; the server answers each with a [`ServerMsg::Reply`] carrying the tag
//! (slow calls such as creating a pool VM do not hold up the others), and pushes
//! [`Event`]s to clients that subscribed or watch a session.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::term::Snapshot;
use crate::vm::VmOptions;

/// The things both sides speak of. Each is defined beside the code that produces it;
/// clients, the dashboard among them, take them from here, the one contract between
/// the server and its clients.
pub use crate::manager::{Alert, Busy, Progress, ProgressState, VmInfo};
pub use crate::vm::ssh::{SshAnswer, SshQuestion};
pub use crate::vm::{Size, VmKind, VmState, signal_name};
pub use crate::xapi::{PoolStatus, PoolVm};

/// Bumped whenever a message changes shape.
pub const VERSION: u32 = 8;

/// How often a glanced-at session's screen is sent at most: 30 frames a second.
pub const GLANCE_EVERY: std::time::Duration = std::time::Duration::from_millis(33);

/// The largest frame either side accepts: a paste, a snapshot with its scrollback or
/// an output burst fits many times over; a corrupt length cannot make anyone allocate
/// gigabytes.
pub const MAX_MESSAGE: usize = 64 << 20;
/// The most a hello (or a welcome) may take: read before the peer is trusted.
pub const HELLO_LIMIT: usize = 4096;

/// The first byte of an output frame; JSON never starts with it.
const OUTPUT_FRAME: u8 = 0x01;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    /// What the client is (`dashboard`, `ls`, `test`...), for the server's log.
    pub client: String,
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
}

impl CreateOptions {
    /// The options as the manager takes them; refused when the size is out of bounds.
    pub fn into_vm_options(self) -> Result<VmOptions, String> {
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
        id: Option<String>,
        kind: VmKind,
        options: CreateOptions,
    },
    SendInput {
        id: String,
        #[serde(with = "bytes_as_text")]
        data: Vec<u8>,
    },
    /// Output since the last read (the original API's `read_output`).
    ReadOutput {
        id: String,
    },
    /// Waits until `needle` appears in the output, then returns everything so far.
    ReadUntil {
        id: String,
        needle: String,
        timeout_ms: u64,
    },
    WaitReady {
        id: String,
        timeout_ms: u64,
    },
    Execute {
        id: String,
        code: String,
        timeout_ms: u64,
    },
    Resize {
        id: String,
        rows: u16,
        cols: u16,
    },
    /// Ends the VM's process (or connection); the session stays, with its screen.
    Kill {
        id: String,
    },
    /// Ends the VM and forgets it (a pool VM is destroyed).
    Terminate {
        id: String,
    },
    Restart {
        id: String,
    },
    List,
    /// The session's screen as text, for clients that show it.
    ScreenText {
        id: String,
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
        id: String,
    },
    /// Send this client the session's visible screen, without history, whenever it
    /// changed, at most every [`GLANCE_EVERY`], until `Unwatch`: for a tile the user
    /// looks at but does not type into, which needs the screen, not every byte.
    Glance {
        id: String,
    },
    Unwatch {
        id: String,
    },
    /// Someone types into the session: its output is read before idle sessions'.
    Attach {
        id: String,
    },
    Detach {
        id: String,
    },
    /// The answer to [`Event::Question`]; the first client to answer decides.
    Answer {
        question: u64,
        answer: SshAnswer,
    },
    /// Starts or stops writing the session's raw output to its log file.
    ToggleLog {
        id: String,
    },
    /// Gives a session a new name.
    Rename {
        id: String,
        new: String,
    },
    /// Seconds without output after which the session raises a silence alert; 0 is off.
    SetSilence {
        id: String,
        secs: u64,
    },
    /// Forgets a session whose interpreter has ended.
    Remove {
        id: String,
    },
    /// Closes an `xcpng` session and leaves its pool VM running.
    Release {
        id: String,
    },
    /// Ends an `xcpng` session and destroys its pool VM, keeping the session's screen.
    Destroy {
        id: String,
    },
    /// Installs a package with luarocks; its output arrives as [`Event::InstallOutput`].
    Install {
        id: String,
        name: String,
        version: Option<String>,
    },
    /// Ends and forgets every VM; the server stays (or exits, if configured to when
    /// empty).
    EndAll,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    Done,
    Created {
        id: String,
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
    /// The request failed, with the error's kind kept, as [`crate::Error`] has it.
    Failed(WireError),
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
        id: String,
        snapshot: Snapshot,
    },
    /// A watched session's terminal changed size.
    Resized {
        id: String,
        rows: u16,
        cols: u16,
    },
    /// A session this client does not watch printed something.
    Activity {
        id: String,
    },
    /// A session has a new name; the list that follows uses it.
    Renamed {
        old: String,
        new: String,
    },
    /// A session asks for attention: a bell, a notification, back at its prompt,
    /// silent too long.
    Alert {
        id: String,
        alert: Alert,
    },
    /// A session changed state.
    State {
        id: String,
        state: VmState,
    },
    /// Something the user should see (a session's error, a pool that cannot be used).
    Notice {
        id: Option<String>,
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
        vm: String,
        #[serde(with = "bytes_as_text")]
        bytes: Vec<u8>,
    },
    /// The server is ending, and why.
    Closing {
        reason: String,
    },
}

/// The configured pool as the server follows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolInfo {
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
    Output { id: String, bytes: Vec<u8> },
}

/// [`crate::Error`] across the socket: callers still tell an unknown id from a dead
/// session or a timeout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WireError {
    NotFound {
        id: String,
    },
    Session {
        id: String,
        message: String,
    },
    Timeout {
        id: String,
        what: String,
        seconds: f64,
    },
    Ssh {
        id: String,
        error: crate::vm::ssh::SshError,
    },
    Xapi {
        error: crate::xapi::XapiError,
    },
    Other {
        message: String,
    },
}

impl From<crate::Error> for WireError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::NotFound(id) => WireError::NotFound { id },
            crate::Error::Session { id, message } => WireError::Session { id, message },
            crate::Error::Timeout { id, what, seconds } => WireError::Timeout { id, what, seconds },
            crate::Error::Ssh { id, source } => WireError::Ssh { id, error: source },
            crate::Error::Xapi(error) => WireError::Xapi { error },
            // A step's error keeps its words; the step itself is the server's to act on.
            crate::Error::PoolStep { id, source } => WireError::Session {
                id,
                message: source.to_string(),
            },
            other => WireError::Other {
                message: other.to_string(),
            },
        }
    }
}

impl From<WireError> for crate::Error {
    fn from(e: WireError) -> Self {
        match e {
            WireError::NotFound { id } => crate::Error::NotFound(id),
            WireError::Session { id, message } => crate::Error::Session { id, message },
            WireError::Timeout { id, what, seconds } => crate::Error::Timeout { id, what, seconds },
            WireError::Ssh { id, error } => crate::Error::Ssh { id, source: error },
            WireError::Xapi { error } => crate::Error::Xapi(error),
            WireError::Other { message } => crate::Error::Manager(message),
        }
    }
}

impl Request {
    /// How long the server may take to answer, beyond which a client gives up.
    pub fn patience(&self) -> Duration {
        let ms = match self {
            Request::ReadUntil { timeout_ms, .. }
            | Request::WaitReady { timeout_ms, .. }
            | Request::Execute { timeout_ms, .. } => *timeout_ms,
            // Creating a pool VM clones, boots and waits for an address.
            Request::Create { .. } | Request::Restart { .. } => 15 * 60_000,
            _ => 120_000,
        };
        Duration::from_millis(ms) + Duration::from_secs(10)
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

fn frame_len(len: usize) -> std::io::Result<[u8; 4]> {
    if len > MAX_MESSAGE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a message of {len} bytes is over the limit"),
        ));
    }
    Ok((len as u32).to_be_bytes())
}

/// Appends one message, framed, to `out`: for writers that send several frames with
/// one system call.
pub fn encode_message<T: Serialize>(out: &mut Vec<u8>, message: &T) -> std::io::Result<()> {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    serde_json::to_writer(&mut *out, message).map_err(std::io::Error::other)?;
    let len = frame_len(out.len() - at - 4)?;
    out[at..at + 4].copy_from_slice(&len);
    Ok(())
}

/// Appends a session's output, framed, to `out`.
pub fn encode_output(out: &mut Vec<u8>, id: &str, bytes: &[u8]) -> std::io::Result<()> {
    let id = &id.as_bytes()[..id.len().min(255)];
    out.extend_from_slice(&frame_len(2 + id.len() + bytes.len())?);
    out.push(OUTPUT_FRAME);
    out.push(id.len() as u8);
    out.extend_from_slice(id);
    out.extend_from_slice(bytes);
    Ok(())
}

/// Writes one message as JSON.
pub async fn write_message<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    message: &T,
) -> std::io::Result<()> {
    let mut frame = Vec::new();
    encode_message(&mut frame, message)?;
    w.write_all(&frame).await?;
    w.flush().await
}

/// Reads a frame's 4-byte length; `None` when the other side closed the connection
/// cleanly. A length past `limit` is refused before anything is allocated.
pub async fn read_frame_len<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: usize,
) -> std::io::Result<Option<usize>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > limit.min(MAX_MESSAGE) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "a message of {len} bytes is over the limit of {}",
                limit.min(MAX_MESSAGE)
            ),
        ));
    }
    Ok(Some(len))
}

/// Reads a frame's body of `len` bytes. Memory grows with the bytes that arrive, not
/// with the length announced: a peer that announces 64 MiB and sends nothing more
/// holds a few KiB.
pub async fn read_frame_body<R: AsyncRead + Unpin>(
    r: &mut R,
    len: usize,
) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::with_capacity(len.min(64 * 1024));
    let read = (&mut *r).take(len as u64).read_to_end(&mut body).await?;
    if read < len {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(body)
}

/// Reads one frame's bytes, of at most `limit`; `None` when the other side closed the
/// connection cleanly.
async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let Some(len) = read_frame_len(r, limit).await? else {
        return Ok(None);
    };
    read_frame_body(r, len).await.map(Some)
}

/// One JSON message from a frame's body.
pub fn decode_message<T: for<'de> Deserialize<'de>>(body: &[u8]) -> std::io::Result<T> {
    serde_json::from_slice(body).map_err(invalid)
}

fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

/// Reads one JSON message; `None` when the other side closed the connection cleanly.
pub async fn read_message<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    r: &mut R,
) -> std::io::Result<Option<T>> {
    read_message_within(r, MAX_MESSAGE).await
}

/// Reads one JSON message of at most `limit` bytes: a hello, before the peer is known,
/// is held to [`HELLO_LIMIT`].
pub async fn read_message_within<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    r: &mut R,
    limit: usize,
) -> std::io::Result<Option<T>> {
    let Some(body) = read_frame(r, limit).await? else {
        return Ok(None);
    };
    decode_message(&body).map(Some)
}

/// Reads what the server sent: a message or an output frame.
pub async fn read_incoming<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Incoming>> {
    let Some(mut body) = read_frame(r, MAX_MESSAGE).await? else {
        return Ok(None);
    };
    if body.first() != Some(&OUTPUT_FRAME) {
        return serde_json::from_slice(&body)
            .map(|m| Some(Incoming::Msg(m)))
            .map_err(invalid);
    }
    let id_len = *body
        .get(1)
        .ok_or_else(|| invalid("an output frame without an id"))? as usize;
    let id = body
        .get(2..2 + id_len)
        .ok_or_else(|| invalid("an output frame cut short"))?;
    let id = String::from_utf8(id.to_vec()).map_err(invalid)?;
    body.drain(..2 + id_len);
    Ok(Some(Incoming::Output { id, bytes: body }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::ssh::SshError;

    /// What the SSH and XAPI layers report reaches a client with its kind intact.
    #[test]
    fn ssh_and_pool_errors_stay_typed_across_the_socket() {
        let across = |e: crate::Error| -> crate::Error {
            let json = serde_json::to_string(&WireError::from(e)).unwrap();
            serde_json::from_str::<WireError>(&json).unwrap().into()
        };
        let ssh = across(crate::Error::Ssh {
            id: "lab".into(),
            source: SshError::Auth("no key was accepted".into()),
        });
        assert!(
            matches!(&ssh, crate::Error::Ssh { id, source: SshError::Auth(m) } if id == "lab" && m == "no key was accepted"),
            "{ssh:?}"
        );
        let pool = across(crate::Error::Xapi(crate::xapi::XapiError::Api {
            code: "VM_BAD_POWER_STATE".into(),
            params: vec!["OpaqueRef:1".into()],
        }));
        assert!(
            matches!(&pool, crate::Error::Xapi(e) if e.is("VM_BAD_POWER_STATE")),
            "{pool:?}"
        );
    }

    #[tokio::test]
    async fn output_frames_carry_raw_bytes_beside_messages() {
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        let bytes: Vec<u8> = (0..=255).collect();
        // As the server writes them: several frames in one write.
        let mut frames = Vec::new();
        encode_output(&mut frames, "lua-1", &bytes).unwrap();
        let activity = ServerMsg::Event(Event::Activity { id: "lua-2".into() });
        encode_message(&mut frames, &activity).unwrap();
        a.write_all(&frames).await.unwrap();
        match read_incoming(&mut b).await.unwrap().unwrap() {
            Incoming::Output { id, bytes: got } => {
                assert_eq!(id, "lua-1");
                assert_eq!(got, bytes);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read_incoming(&mut b).await.unwrap().unwrap(),
            Incoming::Msg(ServerMsg::Event(Event::Activity { id })) if id == "lua-2"
        ));
    }

    #[tokio::test]
    async fn messages_round_trip_and_oversized_lengths_are_refused() {
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        let sent = Request::SendInput {
            id: "lua-1".into(),
            data: vec![b'x', 0xff, b'\n'],
        };
        write_message(&mut a, &sent).await.unwrap();
        write_message(
            &mut a,
            &Request::SendInput {
                id: "lua-1".into(),
                data: b"print(1)\n".to_vec(),
            },
        )
        .await
        .unwrap();
        for expected in [vec![b'x', 0xff, b'\n'], b"print(1)\n".to_vec()] {
            match read_message::<_, Request>(&mut b).await.unwrap().unwrap() {
                Request::SendInput { data, .. } => assert_eq!(data, expected),
                other => panic!("{other:?}"),
            }
        }
        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        assert!(read_message::<_, Request>(&mut b).await.is_err());
    }
}
