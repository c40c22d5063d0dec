//! The pool as a dashboard follows it: the state of the link, its VMs, and what can go
//! wrong talking to it.

use std::fmt;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum PoolStatus {
    Connecting,
    Connected,
    /// The last attempt failed; the next one is under way after a pause.
    Retrying {
        error: String,
        attempt: u32,
    },
}

/// A VM as the list pane shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PoolVm {
    /// The name of the pool (`[[xcpng]] name`) the VM is on.
    #[serde(default)]
    pub pool: String,
    pub reference: String,
    pub uuid: String,
    pub name: String,
    pub power_state: String,
    pub ip: Option<String>,
    pub host: Option<String>,
    pub memory_bytes: i64,
    pub vcpus: i64,
    /// `other_config["bioxen:id"]`: set on VMs bioxen created.
    pub bioxen_id: Option<String>,
    /// From the pool's RRDs: all vCPUs together, in percent of one.
    #[serde(default)]
    pub cpu_percent: Option<f32>,
    /// From the pool's RRDs: memory the guest uses, when its agent reports what is
    /// free, else what the VM was given.
    #[serde(default)]
    pub memory_used: Option<u64>,
    /// As [`crate::VmInfo::recent_cpu`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_cpu: Vec<u16>,
}

impl PoolVm {
    /// The same VM with every text the pool supplied made safe to show on a terminal.
    pub fn for_display(&self) -> PoolVm {
        let clean = |s: &str| bioxen_text::sanitize::line(s);
        PoolVm {
            pool: clean(&self.pool),
            reference: clean(&self.reference),
            uuid: clean(&self.uuid),
            name: clean(&self.name),
            power_state: clean(&self.power_state),
            ip: self.ip.as_deref().map(clean),
            host: self.host.as_deref().map(clean),
            memory_bytes: self.memory_bytes,
            vcpus: self.vcpus,
            bioxen_id: self.bioxen_id.as_deref().map(clean),
            cpu_percent: self.cpu_percent,
            memory_used: self.memory_used,
            recent_cpu: self.recent_cpu.clone(),
        }
    }
}

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
