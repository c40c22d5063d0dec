//! What a call through the socket can end in. A server's refusal keeps its kind
//! ([`WireError`]); everything else is about the connection itself, which a caller
//! handles apart (start a server, reconnect, give up).

use bioxen_proto::WireError;

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered, and refused or failed the request: match on the kind
    /// (boxed: a pool step's error carries two of the pool's).
    #[error(transparent)]
    Server(Box<WireError>),
    /// The socket is not to be trusted: its directory is not this user's alone, or
    /// another user serves it. Never retried, and never started over.
    #[error("{0}")]
    Untrusted(String),
    /// No server could be reached, started, or would take this client.
    #[error("{0}")]
    Connect(String),
    /// The connection closed or broke while the call was out.
    #[error("{0}")]
    Lost(String),
    /// The server did not answer within the request's patience.
    #[error("{0}")]
    NoAnswer(String),
    /// The server answered something this client does not understand.
    #[error("{0}")]
    Protocol(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl ClientError {
    /// The server's refusal, when that is what this is.
    pub fn wire(&self) -> Option<&WireError> {
        match self {
            ClientError::Server(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

impl From<WireError> for ClientError {
    fn from(e: WireError) -> Self {
        ClientError::Server(Box::new(e))
    }
}
