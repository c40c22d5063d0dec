//! What can go wrong talking to a pool.

use std::fmt;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum XapiError {
    /// The pool answered with an error code and its parameters (XAPI.md §4).
    Api { code: String, params: Vec<String> },
    /// The pool could not be reached, or answered with something that is not XAPI.
    Transport(String),
    /// The pool's certificate was refused.
    Tls(String),
    /// No answer in time.
    Timeout(String),
    /// bioxen's own configuration for the pool is incomplete.
    Config(String),
    /// The work was given up because the user asked (a VM killed while being made).
    Cancelled,
}

impl XapiError {
    pub fn code(&self) -> Option<&str> {
        match self {
            XapiError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn is(&self, code: &str) -> bool {
        self.code() == Some(code)
    }

    /// Errors worth another try after a pause: the network, not the request.
    pub fn is_transient(&self) -> bool {
        matches!(self, XapiError::Transport(_) | XapiError::Timeout(_))
            || self.is("HOST_STILL_BOOTING")
    }
}

impl fmt::Display for XapiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XapiError::Api { code, params } if code == "SESSION_AUTHENTICATION_FAILED" => write!(
                f,
                "the pool refused the login for user '{}' (SESSION_AUTHENTICATION_FAILED): check [xcpng] username and the password source",
                params.first().map(String::as_str).unwrap_or("?")
            ),
            XapiError::Api { code, params } if params.is_empty() => write!(f, "XAPI error {code}"),
            XapiError::Api { code, params } => {
                write!(f, "XAPI error {code} [{}]", params.join(", "))
            }
            XapiError::Transport(m) => write!(f, "pool unreachable: {m}"),
            XapiError::Tls(m) => write!(f, "TLS: {m}"),
            XapiError::Timeout(m) => write!(f, "timed out: {m}"),
            XapiError::Config(m) => write!(f, "{m}"),
            XapiError::Cancelled => write!(f, "cancelled"),
        }
    }
}

impl std::error::Error for XapiError {}
