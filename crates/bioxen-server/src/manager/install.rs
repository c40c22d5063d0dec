//! `install_package`: luarocks into the VM's tree, locally or on its host over SSH.

use std::process::Stdio;

use tokio::io::AsyncReadExt;

use super::{Manager, Session, VmRef};
use bioxen_backend::error::{Error, Result};
use bioxen_backend::lock;
use bioxen_backend::rocks::{self, InstallReport, PackageSpec};
use bioxen_backend::vm::VmKind;
use bioxen_proto::INSTALL_LIMIT;

const APT_HINT: &str = "install it with: apt-get install luarocks";

impl Manager {
    /// Installs `spec` for the VM `vm`; its running interpreter can `require` it at once.
    /// `on_output` receives luarocks' output as it comes. A luarocks failure is a
    /// report with `success == false` (its exit code and output), not an error. An
    /// install still running at [`INSTALL_LIMIT`] is stopped and is an error: every
    /// client waits that long, so none gives up on an install that is alive.
    pub async fn install_package(
        &self,
        vm: impl Into<VmRef>,
        spec: &PackageSpec,
        on_output: &(dyn Fn(&[u8]) + Send + Sync),
    ) -> Result<InstallReport> {
        let session = self.get(vm)?;
        tokio::time::timeout(
            INSTALL_LIMIT,
            self.install_unbounded(&session, spec, on_output),
        )
        .await
        .unwrap_or_else(|_| {
            Err(Error::Timeout {
                id: session.name(),
                what: format!("installing {}; luarocks was stopped", spec.label()),
                seconds: INSTALL_LIMIT.as_secs_f64(),
            })
        })
    }

    async fn install_unbounded(
        &self,
        session: &Session,
        spec: &PackageSpec,
        on_output: &(dyn Fn(&[u8]) + Send + Sync),
    ) -> Result<InstallReport> {
        let id = &session.name();
        if session.kind() == VmKind::Local {
            return self.install_local_package(spec, on_output).await;
        }
        let conn = lock(&session.remote)
            .as_ref()
            .and_then(|r| r.conn.clone())
            .ok_or_else(|| Error::session(id, "is not connected"))?;
        let report = self
            .try_servers(|server| {
                let conn = conn.clone();
                async move {
                    let args = rocks::install_args(rocks::REMOTE_TREE, spec, server);
                    let mut argv = vec!["luarocks"];
                    argv.extend(args.iter().map(String::as_str));
                    let out = conn
                        .exec_streaming("", &argv, &[], &mut |b| on_output(b))
                        .await
                        .map_err(|e| Error::session(id, e.to_string()))?;
                    if out.status == Some(127) {
                        return Err(Error::session(
                            id,
                            format!(
                                "luarocks is not installed on {}: {APT_HINT}",
                                conn.target().host
                            ),
                        ));
                    }
                    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
                    output.push_str(&String::from_utf8_lossy(&out.stderr));
                    Ok(InstallReport {
                        spec: spec.clone(),
                        success: out.status == Some(0),
                        exit_code: out.status.map(|s| s as i32),
                        output,
                    })
                }
            })
            .await?;
        tracing::info!(vm = %id, package = %spec.label(), success = report.success, "install");
        Ok(report)
    }

    /// Installs `spec` into the tree every local VM shares, with no VM needed.
    pub async fn install_local_package(
        &self,
        spec: &PackageSpec,
        on_output: &(dyn Fn(&[u8]) + Send + Sync),
    ) -> Result<InstallReport> {
        let tree = self.inner.config.rocks_tree.to_string_lossy().into_owned();
        let report = self
            .try_servers(|server| {
                let args = rocks::install_args(&tree, spec, server);
                async move { install_local(&args, spec, on_output).await }
            })
            .await?;
        tracing::info!(package = %spec.label(), success = report.success, "install (local tree)");
        Ok(report)
    }

    /// Runs `install` against each configured rocks server in order (or once with
    /// luarocks' own configuration), moving on only while the package is not found.
    async fn try_servers<'a, F, Fut>(&'a self, mut install: F) -> Result<InstallReport>
    where
        F: FnMut(Option<&'a str>) -> Fut,
        Fut: std::future::Future<Output = Result<InstallReport>>,
    {
        let servers: Vec<Option<&str>> = if self.inner.config.rocks_servers.is_empty() {
            vec![None]
        } else {
            self.inner
                .config
                .rocks_servers
                .iter()
                .map(|s| Some(s.as_str()))
                .collect()
        };
        let mut report = None;
        for server in servers {
            let r = install(server).await?;
            let next = !r.success && rocks::not_found(&r.output);
            report = Some(r);
            if !next {
                break;
            }
        }
        Ok(report.expect("at least one server is tried"))
    }
}

async fn install_local(
    args: &[String],
    spec: &PackageSpec,
    on_output: &(dyn Fn(&[u8]) + Send + Sync),
) -> Result<InstallReport> {
    let mut child = tokio::process::Command::new("luarocks")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::Manager(format!("luarocks is not installed: {APT_HINT}"))
            }
            _ => Error::Manager(format!("cannot run luarocks: {e}")),
        })?;
    let (mut out, mut err) = (
        child.stdout.take().expect("piped"),
        child.stderr.take().expect("piped"),
    );
    let mut all = Vec::new();
    let (mut a, mut b) = ([0u8; 4096], [0u8; 4096]);
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        tokio::select! {
            n = out.read(&mut a), if out_open => match n {
                Ok(0) | Err(_) => out_open = false,
                Ok(n) => { on_output(&a[..n]); all.extend_from_slice(&a[..n]); }
            },
            n = err.read(&mut b), if err_open => match n {
                Ok(0) | Err(_) => err_open = false,
                Ok(n) => { on_output(&b[..n]); all.extend_from_slice(&b[..n]); }
            },
        }
    }
    let status = child.wait().await?;
    Ok(InstallReport {
        spec: spec.clone(),
        success: status.success(),
        exit_code: status.code(),
        output: String::from_utf8_lossy(&all).into_owned(),
    })
}
