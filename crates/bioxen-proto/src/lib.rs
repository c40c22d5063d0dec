//! What crosses the socket between `bioxen server` and its clients: the whole contract,
//! and nothing else. The server and every client (the dashboard, `bioxen ls`, scripts)
//! depend on this crate and never on each other; it has no async runtime unless the
//! `io` feature asks for the framing over tokio's streams, and no terminal library.
//!
//! Each frame is a 4-byte big-endian length and that many bytes. A frame whose first
//! byte is `0x01` carries a session's output as raw bytes (`[0x01][the session's
//! [`VmId`], 8 bytes big-endian][bytes]`): output is nearly all the traffic, and raw it costs a copy, where any text
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

mod error;
mod experiment;
mod frame;
mod history;
mod id;
mod message;
pub mod package;
mod pool;
mod snapshot;
mod ssh;
mod status;
mod vm;

pub use error::WireError;
pub use experiment::{
    Dependency, Experiment, Membership, PlannedVm, Ready, Restart, Restore, UpReport,
};
pub use frame::{decode_message, encode_message, encode_output};
#[cfg(feature = "io")]
pub use frame::{
    read_frame_body, read_frame_len, read_incoming, read_message, read_message_within,
    write_message,
};
pub use history::{HistoryOf, SPARK_STEP_SECS, SPARK_STEPS, Series, Window, spark_level};
pub use id::{BadName, VmId, VmRef, check_name};
pub use message::*;
pub use pool::{PoolStatus, PoolVm, XapiError};
pub use snapshot::{DEFAULT_SCROLLBACK_BYTES, Snapshot};
pub use ssh::{SshAnswer, SshError, SshQuestion};
pub use status::{Alert, Busy, ExecResult, Progress, ProgressState, VmInfo};
pub use vm::{Size, TooLarge, UnknownKind, VmKind, VmOptions, VmState, signal_name, signal_number};
