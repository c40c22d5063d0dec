//! A server's refusal as a client receives it: the kind survives the socket, so a
//! client matches on what went wrong (an unknown VM, a pool error code) instead of
//! parsing a message.

use serde::{Deserialize, Serialize};

use crate::{SshError, XapiError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum WireError {
    /// No VM has this name.
    #[error("no VM session named '{id}'")]
    NotFound { id: String },
    /// The VM exists but cannot do what was asked: it exited, its I/O closed.
    #[error("session '{id}': {message}")]
    Session { id: String, message: String },
    /// The VM did not answer within the time the request allowed.
    #[error("session '{id}': timed out after {seconds:.1}s {what}")]
    Timeout {
        id: String,
        what: String,
        seconds: f64,
    },
    /// The server would not do it: a bad option, a name in use, an unknown kind.
    #[error("{message}")]
    Refused { message: String },
    /// The SSH link to the VM failed: connecting, its host key, logging in, a channel.
    #[error("session '{id}': {error}")]
    Ssh { id: String, error: SshError },
    /// The pool failed a call or could not be reached.
    #[error("pool: {error}")]
    Xapi { error: XapiError },
    /// Making a pool VM failed at this step; the earlier steps were undone.
    #[error("session '{id}': {step} failed: {error}{}", cleanup.as_ref().map(|c| format!(" (and removing the half-made VM failed too: {c})")).unwrap_or_default())]
    PoolStep {
        id: String,
        step: String,
        error: XapiError,
        cleanup: Option<XapiError>,
    },
    /// The server's configuration is broken (it names the file, line and key).
    #[error("{message}")]
    Config { message: String },
    /// The server's own I/O failed.
    #[error("{message}")]
    Io { message: String },
}

impl WireError {
    pub fn refused(message: impl Into<String>) -> Self {
        WireError::Refused {
            message: message.into(),
        }
    }

    /// The pool's error code, when the pool said one (`VM_BAD_POWER_STATE`).
    pub fn xapi_code(&self) -> Option<&str> {
        match self {
            WireError::Xapi { error } | WireError::PoolStep { error, .. } => error.code(),
            _ => None,
        }
    }
}
