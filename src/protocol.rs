//! What crosses the socket between `bioxen server` and its clients: the whole contract
//! in one file.
//!
//! Each message is a 4-byte big-endian length and that many bytes of JSON. A client
//! opens with [`Hello`] carrying [`VERSION`]; the server answers [`Welcome`] or refuses
//! a version it does not speak. Then each [`Request`] gets exactly one [`Response`], in
//! order. JSON keeps the wire readable (`socat` and a hex dump tell what happened) and
//! the framing bounds every message.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::manager::VmInfo;
use crate::vm::{Size, VmKind, VmOptions};

/// Bumped whenever a message changes shape.
pub const VERSION: u32 = 1;

/// The largest message either side accepts: a paste or an output burst fits many
/// times over; a corrupt length cannot make anyone allocate gigabytes.
pub const MAX_MESSAGE: usize = 64 << 20;

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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateOptions {
    pub command: Option<Vec<String>>,
    pub rows: Option<u16>,
    pub cols: Option<u16>,
    pub env: Vec<(String, String)>,
    pub host: Option<String>,
    pub template: Option<String>,
    pub memory_mib: Option<u64>,
    pub vcpus: Option<u32>,
}

impl CreateOptions {
    pub fn into_vm_options(self) -> VmOptions {
        let mut size = Size::default();
        if let (Some(rows), Some(cols)) = (self.rows, self.cols) {
            size = Size::new(rows, cols);
        }
        VmOptions {
            command: self.command,
            size,
            env: self.env,
            host: self.host,
            template: self.template,
            memory_mib: self.memory_mib,
            vcpus: self.vcpus,
            pool_vm: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
        state: crate::vm::VmState,
    },
    /// The request failed, with the error's kind kept, as [`crate::Error`] has it.
    Failed(WireError),
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

/// Writes one message.
pub async fn write_message<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    message: &T,
) -> std::io::Result<()> {
    let body = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    if body.len() > MAX_MESSAGE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a message of {} bytes is over the limit", body.len()),
        ));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame).await?;
    w.flush().await
}

/// Reads one message; `None` when the other side closed the connection cleanly.
pub async fn read_message<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    r: &mut R,
) -> std::io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_MESSAGE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a message of {len} bytes is over the limit"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

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
