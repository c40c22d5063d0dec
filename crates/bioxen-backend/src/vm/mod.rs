//! The kinds of VM bioxen runs and what every kind has in common.
//!
//! A backend hands the manager three things: a byte stream to read (the session's
//! output), a [`Sink`] to write keystrokes and resizes to, and a [`Control`] to stop it.
//! The manager and everything above it never know which kind they talk to.

pub mod holder;
pub mod known_hosts;
pub mod local;
pub mod proc_stats;
pub mod ssh;

use std::future::Future;

pub use bioxen_proto::{Size, VmKind, VmOptions, VmState, signal_name, signal_number};

use crate::error::Result;

/// What a session runs, per kind: each variant holds only what its kind uses, so an
/// ssh host on a local VM or a template on an ssh VM cannot be written down. The
/// manager builds it from [`VmOptions`] (the seeds' flat options) with [`VmSpec::new`],
/// which refuses an option the kind would ignore instead of ignoring it. The server's
/// journal keeps it, so a server started after a crash makes the VM again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum VmSpec {
    Local {
        /// Overrides the configured interpreter.
        command: Option<Vec<String>>,
        /// Added to the configured environment.
        env: Vec<(String, String)>,
        /// Overrides the configured working directory.
        cwd: Option<std::path::PathBuf>,
    },
    Ssh {
        /// The `[[ssh_hosts]]` entry.
        host: String,
    },
    Xcpng {
        /// Defaults from `[xcpng]` where unset.
        template: Option<String>,
        memory_mib: Option<u64>,
        vcpus: Option<u32>,
        /// An existing pool VM (its ref and IPv4) instead of a new one.
        pool_vm: Option<(String, String)>,
        /// The pool by name; the first configured when unset (and in journals
        /// written before pools had names).
        #[serde(default)]
        pool: Option<String>,
    },
}

/// Options that do not make a VM of the kind asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadOptions {
    #[error("the option '{option}' is for {owner} VMs; a {kind} VM does not use it")]
    NotForKind {
        option: &'static str,
        owner: VmKind,
        kind: VmKind,
    },
    #[error("an ssh VM needs a host: the name of an [[ssh_hosts]] entry")]
    NoHost,
}

impl VmSpec {
    pub fn new(kind: VmKind, o: &VmOptions) -> Result<VmSpec, BadOptions> {
        let local = [
            o.command.is_some().then_some("command"),
            (!o.env.is_empty()).then_some("env"),
            o.cwd.is_some().then_some("cwd"),
        ];
        let ssh = [o.host.is_some().then_some("host")];
        let xcpng = [
            o.template.is_some().then_some("template"),
            o.memory_mib.is_some().then_some("memory_mib"),
            o.vcpus.is_some().then_some("vcpus"),
            o.pool_vm.is_some().then_some("pool_vm"),
            o.pool.is_some().then_some("pool"),
        ];
        let refuse =
            |options: &[Option<&'static str>], owner: VmKind| match options.iter().flatten().next()
            {
                Some(&option) => Err(BadOptions::NotForKind {
                    option,
                    owner,
                    kind,
                }),
                None => Ok(()),
            };
        match kind {
            VmKind::Local => {
                refuse(&ssh, VmKind::Ssh)?;
                refuse(&xcpng, VmKind::Xcpng)?;
                Ok(VmSpec::Local {
                    command: o.command.clone().filter(|c| !c.is_empty()),
                    env: o.env.clone(),
                    cwd: o.cwd.clone(),
                })
            }
            VmKind::Ssh => {
                refuse(&local, VmKind::Local)?;
                refuse(&xcpng, VmKind::Xcpng)?;
                let host = o.host.clone().ok_or(BadOptions::NoHost)?;
                Ok(VmSpec::Ssh { host })
            }
            VmKind::Xcpng => {
                refuse(&local, VmKind::Local)?;
                refuse(&ssh, VmKind::Ssh)?;
                Ok(VmSpec::Xcpng {
                    template: o.template.clone(),
                    memory_mib: o.memory_mib,
                    vcpus: o.vcpus,
                    pool_vm: o.pool_vm.clone(),
                    pool: o.pool.clone(),
                })
            }
        }
    }

    pub fn kind(&self) -> VmKind {
        match self {
            VmSpec::Local { .. } => VmKind::Local,
            VmSpec::Ssh { .. } => VmKind::Ssh,
            VmSpec::Xcpng { .. } => VmKind::Xcpng,
        }
    }
}

/// The writing half of a session: keystrokes and window size.
pub trait Sink: Send + 'static {
    fn write_all(&mut self, data: &[u8]) -> impl Future<Output = std::io::Result<()>> + Send;
    fn resize(&mut self, size: Size) -> impl Future<Output = std::io::Result<()>> + Send;
}

/// Stopping a session and knowing its process.
pub trait Control: Send + Sync + 'static {
    /// The local process id, where there is one.
    fn pid(&self) -> Option<u32>;
    /// Ask the session to end (SIGTERM to its process group, closing the channel, ...).
    fn terminate(&self);
    /// End it now (SIGKILL to the process group).
    fn kill(&self);
    /// Close bioxen's link and leave the interpreter running where it is held, to be
    /// attached to again; false (and nothing done) when nothing holds it.
    fn detach(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_option_another_kind_uses_is_refused_by_name() {
        let with = |f: fn(&mut VmOptions)| {
            let mut o = VmOptions::default();
            f(&mut o);
            o
        };
        let host = with(|o| o.host = Some("lab".into()));
        let template = with(|o| o.template = Some("Debian".into()));
        let command = with(|o| o.command = Some(vec!["lua5.4".into()]));
        let env = with(|o| o.env = vec![("A".into(), "1".into())]);

        let err = VmSpec::new(VmKind::Local, &host).unwrap_err();
        assert!(err.to_string().contains("'host' is for ssh VMs"), "{err}");
        let err = VmSpec::new(VmKind::Ssh, &template).unwrap_err();
        assert!(
            err.to_string().contains("'template' is for xcpng VMs"),
            "{err}"
        );
        let err = VmSpec::new(VmKind::Xcpng, &command).unwrap_err();
        assert!(
            err.to_string().contains("'command' is for local VMs"),
            "{err}"
        );
        let err = VmSpec::new(VmKind::Ssh, &env).unwrap_err();
        assert!(err.to_string().contains("'env' is for local VMs"), "{err}");
        let err = VmSpec::new(VmKind::Ssh, &VmOptions::default()).unwrap_err();
        assert!(err.to_string().contains("needs a host"), "{err}");

        assert_eq!(
            VmSpec::new(VmKind::Ssh, &host),
            Ok(VmSpec::Ssh { host: "lab".into() })
        );
        assert_eq!(
            VmSpec::new(VmKind::Local, &command),
            Ok(VmSpec::Local {
                command: Some(vec!["lua5.4".into()]),
                env: Vec::new(),
                cwd: None,
            })
        );
        assert_eq!(
            VmSpec::new(VmKind::Xcpng, &template).map(|s| s.kind()),
            Ok(VmKind::Xcpng)
        );
    }
}
