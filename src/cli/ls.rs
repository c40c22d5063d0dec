//! `bioxen ls`: the VMs of every running bioxen, plus the configured SSH hosts.

use serde_json::{Value, json};

use crate::config::Config;
use crate::registry;
use crate::xapi::{XapiClient, event_cache};

/// Every pool's bioxen-tagged VMs as `ls` rows, each naming its pool; a pool that
/// cannot be reached is a warning on stderr, not a failure of `ls`.
pub async fn pool_rows(config: &Config) -> Vec<Value> {
    let mut rows = Vec::new();
    for xcpng in &config.xcpng {
        rows.extend(one_pool_rows(xcpng).await);
    }
    rows
}

async fn one_pool_rows(xcpng: &crate::config::XcpngConfig) -> Vec<Value> {
    let result = async {
        let client = XapiClient::from_config(xcpng)?;
        let vms = event_cache::snapshot(&client).await;
        client.logout().await;
        vms
    }
    .await;
    match result {
        Ok(vms) => vms
            .into_iter()
            .filter(|vm| vm.bioxen_id.is_some())
            .map(|vm| {
                json!({
                    "name": vm.bioxen_id,
                    "kind": "xcpng",
                    "pool": xcpng.name,
                    "state": vm.power_state.to_lowercase(),
                    "label": vm.name,
                    "ip": vm.ip,
                    "host": vm.host,
                    "uuid": vm.uuid,
                    "memory_bytes": vm.memory_bytes,
                    "vcpus": vm.vcpus,
                })
            })
            .collect(),
        Err(e) => {
            eprintln!(
                "bioxen ls: pool {} ({}): {}",
                crate::sanitize::line(&xcpng.name),
                crate::sanitize::line(&xcpng.url),
                crate::sanitize::line(&e.to_string())
            );
            Vec::new()
        }
    }
}

/// Collects everything `ls` shows, as JSON rows.
pub async fn rows(config: &Config) -> Vec<Value> {
    rows_in(config, &registry::dir(), false).await
}

/// How long `ls` waits for a server's own list before it uses the one the server last
/// wrote down.
const ASK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// A server's VMs as it sees them now (progress, alerts, who is attached), asked over
/// its socket; `None` when it does not answer.
/// With `history`, each VM carries what the server kept of its last ten minutes and
/// day (`"history": {"10m": …, "24h": …}`).
async fn ask(socket: &std::path::Path, history: bool) -> Option<Vec<Value>> {
    let client = tokio::time::timeout(ASK_PATIENCE, crate::client::Client::connect(socket, "ls"))
        .await
        .ok()?
        .ok()?;
    let vms = tokio::time::timeout(ASK_PATIENCE, client.list())
        .await
        .ok()?
        .ok()?;
    let mut rows = Vec::with_capacity(vms.len());
    for vm in &vms {
        let Ok(mut row) = serde_json::to_value(vm) else {
            continue;
        };
        if history && let Some(obj) = row.as_object_mut() {
            obj.insert("history".into(), histories(&client, vm.vm).await);
        }
        rows.push(row);
    }
    Some(rows)
}

/// A VM's rings as `ls --json --history` prints them, keyed by window.
async fn histories(client: &crate::client::Client, vm: bioxen_proto::VmId) -> Value {
    use bioxen_proto::{HistoryOf, VmRef, Window};
    let mut out = serde_json::Map::new();
    for window in [Window::TenMinutes, Window::Day] {
        let series = client.history(HistoryOf::Vm(VmRef::Id(vm)), window).await;
        if let (Ok(series), Ok(key)) = (series, serde_json::to_value(window)) {
            let key = key.as_str().unwrap_or_default().to_string();
            out.insert(key, serde_json::to_value(series).unwrap_or_default());
        }
    }
    Value::Object(out)
}

/// Like [`rows`], for the servers whose registry is in `dir` (a socket directory).
pub async fn rows_in(config: &Config, dir: &std::path::Path, history: bool) -> Vec<Value> {
    let mut rows = Vec::new();
    // Rows from lists written down, not from a server that answered.
    let mut stale = Vec::new();
    for entry in registry::read_all_in(dir) {
        // A server that answers gives its sampler's figures, at most a second old.
        let asked = match &entry.socket {
            Some(socket) => ask(socket, history).await,
            None => None,
        };
        let answered = asked.is_some();
        for mut vm in asked.unwrap_or(entry.vms) {
            if let Some(obj) = vm.as_object_mut() {
                obj.insert("owner_pid".into(), json!(entry.pid));
            }
            if !answered {
                stale.push(rows.len());
            }
            rows.push(vm);
        }
    }
    refresh_local_figures(&mut rows, &stale);
    for host in &config.ssh_hosts {
        rows.push(json!({
            "name": host.name,
            "kind": "ssh",
            "state": "configured",
            "host": host.host,
            "port": host.port,
            "command": host.command,
        }));
    }
    rows
}

/// How long `ls` watches running VMs to measure their CPU use.
const CPU_WINDOW: std::time::Duration = std::time::Duration::from_millis(250);

/// A server publishes its VM list when something changes, not every second, so the
/// uptime, CPU and memory in the list it wrote down are those of its last change. When
/// that list is all `ls` has (the server did not answer), it measures them again
/// itself: uptime from the process's start, CPU over a short window.
/// Only the rows at `which` are measured.
fn refresh_local_figures(rows: &mut [Value], which: &[usize]) {
    use crate::vm::proc_stats::{CpuMeter, Groups, vm_uptime_secs};
    let pid_of = |r: &Value| {
        let running = r.get("state").and_then(Value::as_str) == Some("running");
        let local = r.get("kind").and_then(Value::as_str) == Some("local");
        let pid = r.get("pid").and_then(Value::as_u64)?;
        (running && local).then_some(pid as u32)
    };
    let mut meters: Vec<(usize, u32, CpuMeter)> = which
        .iter()
        .filter_map(|&i| Some((i, pid_of(&rows[i])?, CpuMeter::default())))
        .filter(|(_, pid, _)| vm_uptime_secs(*pid).is_some())
        .collect();
    if meters.is_empty() {
        return;
    }
    // A VM is its process group: what its interpreter started counts with it.
    let groups = Groups::read();
    for (_, pid, meter) in &mut meters {
        meter.sample_group(*pid, &groups);
    }
    std::thread::sleep(CPU_WINDOW);
    let groups = Groups::read();
    for (i, pid, meter) in &mut meters {
        let sampled = meter.sample_group(*pid, &groups);
        let (Some(stats), Some(uptime)) = (sampled, vm_uptime_secs(*pid)) else {
            continue;
        };
        if let Some(obj) = rows[*i].as_object_mut() {
            obj.insert("uptime_secs".into(), json!(uptime));
            obj.insert("cpu_percent".into(), json!(stats.cpu_percent));
            obj.insert("rss_bytes".into(), json!(stats.rss_bytes));
        }
    }
}

/// The VMs of this socket's server when it is gone (killed, or the machine rebooted):
/// what the next server will make again, read from its journal. Those that were
/// running are `lost`, with when and why.
/// Also the pid of that server.
pub fn lost_rows(config: &Config, socket: &std::path::Path) -> (Option<u32>, Vec<Value>) {
    let places = crate::persist::Places::of(config, socket);
    let Some(journal) = crate::persist::journal::read_orphaned(&places.journal) else {
        return (None, Vec::new());
    };
    let rows = journal
        .vms
        .iter()
        .map(|record| {
            let state = journal.state_now(record, &places.logs);
            let mut row = json!({
                "vm": record.vm,
                "name": record.name,
                "kind": record.spec.kind(),
                "restore": record.restore,
                "experiment": record.experiment,
            });
            if let (Some(obj), Ok(Value::Object(state))) =
                (row.as_object_mut(), serde_json::to_value(&state))
            {
                obj.extend(state);
            }
            row
        })
        .collect();
    (Some(journal.pid), rows)
}

/// A fixed-width table for people.
pub fn table(rows: &[Value]) -> String {
    let mut out = format!(
        "{:<16} {:<6} {:<16} {:>8} {:>6} {:>9}  {}\n",
        "NAME", "KIND", "STATE", "PID", "CPU%", "MEM", "COMMAND / IP"
    );
    for r in rows {
        // Registry and pool text is shown, never obeyed.
        let s = |k: &str| crate::sanitize::line(r.get(k).and_then(Value::as_str).unwrap_or(""));
        // A running VM is said as the dashboard says it: idle at its prompt, or busy.
        let state = match (r.get("detail"), r.get("busy").and_then(Value::as_str)) {
            (Some(Value::Number(n)), _) => format!("{}({n})", s("state")),
            (Some(Value::String(d)), _) => format!("{}({})", s("state"), crate::sanitize::line(d)),
            (_, Some(busy)) if s("state") == "running" => crate::sanitize::line(busy),
            _ => s("state"),
        };
        // The last column: the command of local VMs, the address of pool VMs.
        let detail = match (r.get("experiment"), r.get("ip").and_then(Value::as_str)) {
            (Some(member), _) if !member.is_null() => experiment_detail(member),
            (_, Some(ip)) => format!("ip {}", crate::sanitize::line(ip)),
            _ => s("command"),
        };
        let pid = r
            .get("pid")
            .and_then(Value::as_u64)
            .map(|p| p.to_string())
            .unwrap_or("-".into());
        let cpu = r
            .get("cpu_percent")
            .and_then(Value::as_f64)
            .map(|c| format!("{c:.1}"))
            .unwrap_or("-".into());
        let mem = r
            .get("rss_bytes")
            .and_then(Value::as_u64)
            .map(bioxen_text::figures::bytes)
            .unwrap_or("-".into());
        out.push_str(&format!(
            "{:<16} {:<6} {:<16} {:>8} {:>6} {:>9}  {}\n",
            s("name"),
            s("kind"),
            state,
            pid,
            cpu,
            mem,
            detail
        ));
    }
    if rows.is_empty() {
        out.push_str(
            "(no VMs: start the dashboard with `bioxen`, or add [[ssh_hosts]] to bioxen.toml)\n",
        );
    }
    out
}

/// An experiment VM's last column: its experiment and restarts, then its spec as the
/// file made it (`sweep-a ↻2 train.lua --lr 0.1 LR=0.1 SEED=1`).
fn experiment_detail(member: &Value) -> String {
    let text = |v: &Value| crate::sanitize::line(v.as_str().unwrap_or(""));
    let spec = &member["spec"];
    let mut words = vec![text(&member["name"])];
    if let Some(n) = member["restarts"].as_u64().filter(|n| *n > 0) {
        words.push(format!("↻{n}"));
    }
    if let Some(script) = spec["script"].as_str() {
        let file = std::path::Path::new(script).file_name().unwrap_or_default();
        words.push(crate::sanitize::line(&file.to_string_lossy()));
    }
    for arg in spec["args"].as_array().into_iter().flatten() {
        words.push(text(arg));
    }
    for pair in spec["env"].as_array().into_iter().flatten() {
        words.push(format!("{}={}", text(&pair[0]), text(&pair[1])));
    }
    words.join(" ")
}

/// `bioxen ls`: every server's VMs from the registry, then the pool's.
pub fn command(
    config: &Config,
    socket: &std::path::Path,
    json: bool,
    history: bool,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let registry = socket
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_else(crate::registry::dir);
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        eprintln!("bioxen ls: cannot start the runtime");
        return ExitCode::FAILURE;
    };
    let rows = runtime.block_on(async {
        let (gone, lost) = lost_rows(config, socket);
        let mut rows = rows_in(config, &registry, history).await;
        // What a server killed a moment ago last published is its journal's now.
        rows.retain(|r| gone.is_none_or(|pid| r["owner_pid"].as_u64() != Some(pid.into())));
        rows.extend(lost);
        rows.extend(pool_rows(config).await);
        rows
    });
    // The servers have all answered: only the printing is left.
    super::die_quietly_on_closed_pipe();
    if json {
        println!("{}", serde_json::Value::Array(rows));
    } else {
        print!("{}", table(&rows));
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A server that does not answer leaves `ls` the list it wrote down: its running
    /// local VMs are measured again, the others left as written, in the order listed.
    #[tokio::test]
    async fn a_silent_servers_running_vms_are_measured_again_in_their_place() {
        let dir = std::env::temp_dir().join(format!("bioxen-ls-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        // A session leader, as a VM's interpreter is.
        let mut child = {
            use std::os::unix::process::CommandExt;
            let mut sleep = std::process::Command::new("sleep");
            sleep.arg("60");
            // SAFETY: setsid(2) is async-signal-safe, as pre_exec requires.
            unsafe {
                sleep.pre_exec(|| match libc::setsid() {
                    -1 => Err(std::io::Error::last_os_error()),
                    _ => Ok(()),
                })
            };
            sleep.spawn().unwrap()
        };
        let me = std::process::id();
        let entry = json!({
            "pid": me,
            "socket": dir.join("nobody-answers.sock"),
            "vms": [
                {"name": "first", "kind": "local", "state": "running", "pid": child.id()},
                {"name": "second", "kind": "local", "state": "exited", "pid": null},
            ],
        });
        let file = dir.join(format!("{me}.json"));
        std::fs::write(&file, entry.to_string()).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();

        let rows = rows_in(&Config::default(), &dir, false).await;
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
        let names: Vec<_> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["first", "second"], "{rows:?}");
        assert!(
            rows[0]["rss_bytes"].as_u64().is_some_and(|b| b > 0),
            "{rows:?}"
        );
        assert!(rows[1].get("rss_bytes").is_none(), "{rows:?}");
        assert_eq!(rows[0]["owner_pid"], me);
    }
}
