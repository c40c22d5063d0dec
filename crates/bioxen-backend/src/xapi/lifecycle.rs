//! Creating, stopping and destroying a pool VM for a Lua session.
//!
//! Creation follows `xe vm-install` (clone, provision) and then configures, tags,
//! starts and waits for the guest agent's IPv4 address. When a step fails, everything
//! the earlier steps created is undone, so a failure never leaves an orphan VM (or its
//! disks) on the pool; the error names the step and XAPI's code.

use std::fmt;
use std::time::Duration;

use serde_json::{Value as Json, json};

use super::client::{XapiClient, strings};
use bioxen_proto::XapiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    FindTemplate,
    Cloning,
    Provisioning,
    Configuring,
    Tagging,
    Starting,
    WaitingForIp,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::FindTemplate => "finding the template",
            Step::Cloning => "cloning",
            Step::Provisioning => "provisioning",
            Step::Configuring => "setting memory and vCPUs",
            Step::Tagging => "tagging",
            Step::Starting => "starting",
            Step::WaitingForIp => "waiting for an IP address",
        })
    }
}

/// What to create.
#[derive(Debug, Clone)]
pub struct CreateSpec {
    pub template: String,
    pub name: String,
    pub memory_mib: u64,
    pub vcpus: u32,
    /// The bioxen session id, written to `other_config["bioxen:id"]`.
    pub bioxen_id: String,
    pub ip_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreatedVm {
    pub reference: String,
    pub uuid: String,
    pub ip: String,
}

/// A failed step, with what cleaning up did.
#[derive(Debug)]
pub struct StepError {
    pub step: Step,
    pub error: XapiError,
    /// Set when undoing the earlier steps failed too (the VM may be left behind).
    pub cleanup_error: Option<XapiError>,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.step, self.error)?;
        if let Some(e) = &self.cleanup_error {
            write!(f, " (and removing the half-made VM failed too: {e})")?;
        }
        Ok(())
    }
}

impl std::error::Error for StepError {}

/// Tags bioxen writes into the VM's `other_config`.
pub const TAG_ID: &str = "bioxen:id";
pub const TAG_CREATED_BY: &str = "bioxen:created-by";

pub async fn create(
    client: &XapiClient,
    spec: &CreateSpec,
    progress: &(dyn Fn(Step) + Send + Sync),
) -> Result<CreatedVm, StepError> {
    create_cancellable(client, spec, progress, &|| false).await
}

/// Like [`create`], giving up between steps once `cancelled()` holds: what was made so
/// far is removed, as after a failed step, and the error is [`XapiError::Cancelled`].
/// A step under way is let finish, so a clone in flight is never left behind unseen.
pub async fn create_cancellable(
    client: &XapiClient,
    spec: &CreateSpec,
    progress: &(dyn Fn(Step) + Send + Sync),
    cancelled: &(dyn Fn() -> bool + Send + Sync),
) -> Result<CreatedVm, StepError> {
    if cancelled() {
        return Err(StepError {
            step: Step::FindTemplate,
            error: XapiError::Cancelled,
            cleanup_error: None,
        });
    }
    progress(Step::FindTemplate);
    let template = find_template(client, &spec.template)
        .await
        .map_err(|error| StepError {
            step: Step::FindTemplate,
            error,
            cleanup_error: None,
        })?;
    progress(Step::Cloning);
    let vm = client
        .call("VM.clone", vec![json!(template), json!(spec.name)])
        .await
        .and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| super::client::unexpected("VM.clone", &v))
        })
        .map_err(|error| StepError {
            step: Step::Cloning,
            error,
            cleanup_error: None,
        })?;
    let step = |s: Step| {
        if cancelled() {
            return Err((s, XapiError::Cancelled));
        }
        progress(s);
        Ok(())
    };
    // A cancel that comes during the last step finds a finished VM: it is removed
    // like a half-made one, for nobody is left to take it.
    let made = match configure_and_start(client, &vm, spec, &step, cancelled).await {
        Ok(_) if cancelled() => Err((Step::WaitingForIp, XapiError::Cancelled)),
        other => other,
    };
    match made {
        Ok(created) => Ok(created),
        Err((step, error)) => {
            tracing::warn!(
                "creating {} failed at {step}: {}; removing it",
                spec.name,
                bioxen_text::sanitize::for_log(&error.to_string())
            );
            let cleanup_error = destroy(client, &vm).await.err();
            Err(StepError {
                step,
                error,
                cleanup_error,
            })
        }
    }
}

async fn configure_and_start(
    client: &XapiClient,
    vm: &str,
    spec: &CreateSpec,
    step: &(dyn Fn(Step) -> Result<(), (Step, XapiError)> + Send + Sync),
    cancelled: &(dyn Fn() -> bool + Send + Sync),
) -> Result<CreatedVm, (Step, XapiError)> {
    let at = |step: Step| move |e: XapiError| (step, e);
    step(Step::Provisioning)?;
    client
        .call("VM.provision", vec![json!(vm)])
        .await
        .map_err(at(Step::Provisioning))?;

    step(Step::Configuring)?;
    let bytes = (spec.memory_mib * 1024 * 1024) as i64;
    // static_min ≤ dynamic_min ≤ dynamic_max ≤ static_max, pinned: valid with or
    // without dynamic memory control.
    client
        .call(
            "VM.set_memory_limits",
            vec![
                json!(vm),
                json!(bytes),
                json!(bytes),
                json!(bytes),
                json!(bytes),
            ],
        )
        .await
        .map_err(at(Step::Configuring))?;
    let record = client
        .get_record("VM", vm)
        .await
        .map_err(at(Step::Configuring))?;
    let current_max = record.get("VCPUs_max").and_then(Json::as_i64).unwrap_or(1);
    let vcpus = i64::from(spec.vcpus.max(1));
    // 0 < VCPUs_at_startup ≤ VCPUs_max holds after each call: raise the maximum first
    // when growing, lower the startup count first when shrinking.
    let order: [&str; 2] = if vcpus > current_max {
        ["VM.set_VCPUs_max", "VM.set_VCPUs_at_startup"]
    } else {
        ["VM.set_VCPUs_at_startup", "VM.set_VCPUs_max"]
    };
    for method in order {
        client
            .call(method, vec![json!(vm), json!(vcpus)])
            .await
            .map_err(at(Step::Configuring))?;
    }

    step(Step::Tagging)?;
    let created_by = format!("bioxen {}", env!("CARGO_PKG_VERSION"));
    for (key, value) in [
        (TAG_ID, spec.bioxen_id.as_str()),
        (TAG_CREATED_BY, created_by.as_str()),
    ] {
        // remove first: add_to_other_config fails on an existing key.
        client
            .call("VM.remove_from_other_config", vec![json!(vm), json!(key)])
            .await
            .map_err(at(Step::Tagging))?;
        client
            .call(
                "VM.add_to_other_config",
                vec![json!(vm), json!(key), json!(value)],
            )
            .await
            .map_err(at(Step::Tagging))?;
    }

    step(Step::Starting)?;
    client
        .call("VM.start", vec![json!(vm), json!(false), json!(false)])
        .await
        .map_err(at(Step::Starting))?;

    step(Step::WaitingForIp)?;
    let ip = wait_for_ip_unless(client, vm, spec.ip_timeout, cancelled)
        .await
        .map_err(at(Step::WaitingForIp))?;
    let uuid = record
        .get("uuid")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_string();
    Ok(CreatedVm {
        reference: vm.to_string(),
        uuid,
        ip,
    })
}

async fn find_template(client: &XapiClient, name: &str) -> Result<String, XapiError> {
    let mut found = Vec::new();
    for r in client.vm_by_name(name).await? {
        let rec = client.get_record("VM", &r).await?;
        if rec.get("is_a_template").and_then(Json::as_bool) == Some(true) {
            found.push(r);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(XapiError::Config(format!(
            "the pool has no template named '{name}'"
        ))),
        n => Err(XapiError::Config(format!(
            "the pool has {n} templates named '{name}'; rename one or name it uniquely in [xcpng] template"
        ))),
    }
}

/// Waits, through `event.from`, until the guest agent reports an IPv4 address.
pub async fn wait_for_ip(
    client: &XapiClient,
    vm: &str,
    timeout: Duration,
) -> Result<String, XapiError> {
    wait_for_ip_unless(client, vm, timeout, &|| false).await
}

/// [`wait_for_ip`], giving up with [`XapiError::Cancelled`] once `cancelled()` holds
/// (checked at least every few seconds).
async fn wait_for_ip_unless(
    client: &XapiClient,
    vm: &str,
    timeout: Duration,
    cancelled: &(dyn Fn() -> bool + Send + Sync),
) -> Result<String, XapiError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let vm_class = format!("vm/{vm}");
    let classes = [vm_class.as_str(), "vm_guest_metrics"];
    let mut token = String::new();
    loop {
        if cancelled() {
            return Err(XapiError::Cancelled);
        }
        let record = client.get_record("VM", vm).await?;
        let power = record
            .get("power_state")
            .and_then(Json::as_str)
            .unwrap_or("");
        if power != "Running" {
            return Err(XapiError::Api {
                code: "VM_BAD_POWER_STATE".into(),
                params: vec![vm.into(), "running".into(), power.to_lowercase()],
            });
        }
        let gm = record
            .get("guest_metrics")
            .and_then(Json::as_str)
            .unwrap_or("OpaqueRef:NULL");
        if gm != "OpaqueRef:NULL" {
            let networks = client
                .read("VM_guest_metrics.get_networks", vec![json!(gm)])
                .await?;
            if let Some(ip) = first_ipv4(&networks) {
                return Ok(ip);
            }
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(XapiError::Timeout(format!(
                "the guest agent reported no IPv4 address within {}s (are the guest tools installed?)",
                timeout.as_secs()
            )));
        }
        let batch = client
            .event_from(&classes, &token, left.as_secs_f64().min(5.0))
            .await?;
        token = batch
            .get("token")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
    }
}

/// The first IPv4 address in a guest's `networks` map (`0/ip`, `0/ipv4/0`, …), lowest
/// device first; values may hold several addresses.
pub fn first_ipv4(networks: &Json) -> Option<String> {
    let map = networks.as_object()?;
    let mut candidates: Vec<(u32, u8, &str)> = map
        .iter()
        .filter_map(|(k, v)| {
            let (dev, rest) = k.split_once('/')?;
            let dev: u32 = dev.parse().ok()?;
            let rank = match rest {
                "ip" => 0,
                r if r.starts_with("ipv4/") => 1,
                _ => return None,
            };
            Some((dev, rank, v.as_str()?))
        })
        .collect();
    candidates.sort();
    candidates.into_iter().find_map(|(_, _, value)| {
        value
            .split_whitespace()
            .find(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
            .map(str::to_string)
    })
}

/// Shuts a VM down: cleanly within `timeout`, then hard.
pub async fn stop(client: &XapiClient, vm: &str, timeout: Duration) -> Result<(), XapiError> {
    let record = client.get_record("VM", vm).await?;
    if record.get("power_state").and_then(Json::as_str) == Some("Halted") {
        return Ok(());
    }
    let clean =
        tokio::time::timeout(timeout, client.call("VM.clean_shutdown", vec![json!(vm)])).await;
    match clean {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.is("VM_BAD_POWER_STATE") && halted(client, vm).await => Ok(()),
        outcome => {
            tracing::info!("clean shutdown of {vm} did not finish ({outcome:?}); forcing it");
            client
                .call("VM.hard_shutdown", vec![json!(vm)])
                .await
                .map(|_| ())
        }
    }
}

async fn halted(client: &XapiClient, vm: &str) -> bool {
    client
        .get_record("VM", vm)
        .await
        .ok()
        .and_then(|r| {
            r.get("power_state")
                .and_then(Json::as_str)
                .map(|s| s == "Halted")
        })
        .unwrap_or(false)
}

/// Destroys a VM and the disks only it used, as Xen Orchestra does: collect its Disk
/// VDIs first (not CDs, not disks other VMs use), destroy the VM, then each VDI.
/// Returns how many disks were destroyed.
pub async fn destroy(client: &XapiClient, vm: &str) -> Result<usize, XapiError> {
    let record = client.get_record("VM", vm).await?;
    let power = record
        .get("power_state")
        .and_then(Json::as_str)
        .unwrap_or("Halted");
    if power != "Halted" && power != "Suspended" {
        client.call("VM.hard_shutdown", vec![json!(vm)]).await?;
    }
    let mut disks = Vec::new();
    for vbd in strings(record.get("VBDs").unwrap_or(&Json::Null)) {
        let vbd_rec = client.get_record("VBD", &vbd).await?;
        let vdi = vbd_rec
            .get("VDI")
            .and_then(Json::as_str)
            .unwrap_or("OpaqueRef:NULL")
            .to_string();
        if vbd_rec.get("type").and_then(Json::as_str) != Some("Disk")
            || vdi == "OpaqueRef:NULL"
            || vdi.is_empty()
        {
            continue;
        }
        let vdi_rec = client.get_record("VDI", &vdi).await?;
        let mut shared = false;
        for other in strings(vdi_rec.get("VBDs").unwrap_or(&Json::Null)) {
            if other == vbd {
                continue;
            }
            let other_vm = client.get_record("VBD", &other).await?;
            let owner = other_vm.get("VM").and_then(Json::as_str).unwrap_or("");
            let owner_rec = client.get_record("VM", owner).await?;
            if owner_rec.get("is_control_domain").and_then(Json::as_bool) != Some(true) {
                shared = true;
            }
        }
        if !shared {
            disks.push(vdi);
        }
    }
    client.call("VM.destroy", vec![json!(vm)]).await?;
    for vdi in &disks {
        client.call("VDI.destroy", vec![json!(vdi)]).await?;
    }
    Ok(disks.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_first_ipv4() {
        let n = json!({"1/ip": "10.0.0.2", "0/ipv6/0": "fe80::1", "0/ipv4/0": "10.0.0.1", "0/ip": "10.0.0.1"});
        assert_eq!(first_ipv4(&n).as_deref(), Some("10.0.0.1"));
        let old = json!({"0/ip": "fe80::1 192.168.1.5"});
        assert_eq!(first_ipv4(&old).as_deref(), Some("192.168.1.5"));
        assert_eq!(first_ipv4(&json!({"0/ip": ""})), None);
        assert_eq!(first_ipv4(&json!({})), None);
    }
}
