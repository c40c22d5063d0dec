//! One error type for the library.
//!
//! The kinds follow the original API's exceptions so that callers (the dashboard, the
//! scripting CLI, tests) can react to *what* went wrong rather than parse messages:
//! an unknown id is [`Error::NotFound`], I/O on a dead or closed session is
//! [`Error::Session`], a request the manager cannot honour (unknown kind, bad options)
//! is [`Error::Manager`], and a broken `bioxen.toml` is [`Error::Config`]. What the
//! SSH and XAPI layers report stays typed ([`Error::Ssh`], [`Error::Xapi`],
//! [`Error::PoolStep`]), so a caller can tell a refused host key from a pool error.

pub use bioxen_config::ConfigError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No session with this id exists.
    #[error("no VM session named '{0}'")]
    NotFound(String),

    /// The session exists but cannot do what was asked (it exited, its I/O closed, ...).
    #[error("session '{id}': {message}")]
    Session { id: String, message: String },

    /// The manager refused the request: unknown kind, bad options, duplicate id.
    #[error("{0}")]
    Manager(String),

    /// The server's socket is not to be trusted: its directory is not this user's
    /// alone, or another user serves it. Never retried, and never started over.
    #[error("{0}")]
    Untrusted(String),

    /// `bioxen.toml` could not be read or is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// Waiting for a session took longer than the caller allowed.
    #[error("session '{id}': timed out after {seconds:.1}s {what}")]
    Timeout {
        id: String,
        what: String,
        seconds: f64,
    },

    /// The SSH link to a VM failed: connecting, its host key, logging in, a channel.
    #[error("session '{id}': {source}")]
    Ssh {
        id: String,
        #[source]
        source: crate::vm::ssh::SshError,
    },

    /// The pool failed a call or could not be reached.
    #[error("pool: {0}")]
    Xapi(#[from] crate::xapi::XapiError),

    /// Making a pool VM failed at a step (the earlier steps were undone).
    #[error("session '{id}': {source}")]
    PoolStep {
        id: String,
        #[source]
        source: Box<crate::xapi::StepError>,
    },

    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    pub fn session(id: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Session {
            id: id.into(),
            message: message.into(),
        }
    }
}

impl From<Error> for bioxen_proto::WireError {
    fn from(e: Error) -> Self {
        use bioxen_proto::WireError as W;
        match e {
            Error::NotFound(id) => W::NotFound { id },
            Error::Session { id, message } => W::Session { id, message },
            Error::Timeout { id, what, seconds } => W::Timeout { id, what, seconds },
            Error::Ssh { id, source } => W::Ssh { id, error: source },
            Error::Xapi(error) => W::Xapi { error },
            Error::PoolStep { id, source } => W::PoolStep {
                id,
                step: source.step.to_string(),
                error: source.error,
                cleanup: source.cleanup_error,
            },
            Error::Config(e) => W::Config {
                message: e.to_string(),
            },
            Error::Io(e) => W::Io {
                message: e.to_string(),
            },
            Error::Manager(message) | Error::Untrusted(message) => W::Refused { message },
        }
    }
}

impl From<bioxen_proto::WireError> for Error {
    fn from(e: bioxen_proto::WireError) -> Self {
        use bioxen_proto::WireError as W;
        match e {
            W::NotFound { id } => Error::NotFound(id),
            W::Session { id, message } => Error::Session { id, message },
            W::Timeout { id, what, seconds } => Error::Timeout { id, what, seconds },
            W::Ssh { id, error } => Error::Ssh { id, source: error },
            W::Xapi { error } => Error::Xapi(error),
            other => Error::Manager(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bioxen_proto::{SshError, WireError, XapiError};

    /// What the SSH and XAPI layers report reaches a client with its kind intact.
    #[test]
    fn ssh_and_pool_errors_stay_typed_across_the_socket() {
        let across = |e: Error| -> WireError {
            let json = serde_json::to_string(&WireError::from(e)).unwrap();
            serde_json::from_str(&json).unwrap()
        };
        let ssh = across(Error::Ssh {
            id: "lab".into(),
            source: SshError::Auth("no key was accepted".into()),
        });
        assert!(
            matches!(&ssh, WireError::Ssh { id, error: SshError::Auth(m) } if id == "lab" && m == "no key was accepted"),
            "{ssh:?}"
        );
        let pool = across(Error::Xapi(XapiError::Api {
            code: "VM_BAD_POWER_STATE".into(),
            params: vec!["OpaqueRef:1".into()],
        }));
        assert_eq!(pool.xapi_code(), Some("VM_BAD_POWER_STATE"), "{pool:?}");
        let refused = across(Error::Manager("the name 'a b' is not allowed".into()));
        assert!(matches!(refused, WireError::Refused { .. }), "{refused:?}");
    }
}
