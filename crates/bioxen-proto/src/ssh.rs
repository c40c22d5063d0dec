//! What an SSH connection asks the user, what the user answers, and how it fails.

use std::path::PathBuf;

/// A question for the user while connecting.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SshQuestion {
    UnknownHostKey {
        host: String,
        port: u16,
        algorithm: String,
        /// `SHA256:…`, as OpenSSH prints it.
        fingerprint: String,
        known_hosts: PathBuf,
    },
    Passphrase {
        key: PathBuf,
    },
}

#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SshAnswer {
    AcceptOnce,
    AcceptAndRemember,
    Refuse,
    Passphrase(String),
}

/// A passphrase never reaches a log through `{:?}`.
impl std::fmt::Debug for SshAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SshAnswer::AcceptOnce => f.write_str("AcceptOnce"),
            SshAnswer::AcceptAndRemember => f.write_str("AcceptAndRemember"),
            SshAnswer::Refuse => f.write_str("Refuse"),
            SshAnswer::Passphrase(_) => f.write_str("Passphrase(<hidden>)"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SshError {
    /// The host key was refused: unknown (non-interactive), changed, or by the user.
    HostKey(String),
    Auth(String),
    Connect(String),
    Channel(String),
}

impl std::fmt::Display for SshError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SshError::HostKey(m)
            | SshError::Auth(m)
            | SshError::Connect(m)
            | SshError::Channel(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for SshError {}
