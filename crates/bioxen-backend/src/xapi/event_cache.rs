//! A live copy of the pool's VMs, their guests' addresses and their hosts, kept current
//! by `event.from`, so the dashboard never polls VMs one by one.
//!
//! Only the fields the list shows are kept of each record ([`KEPT`]): a VM record has
//! some 80 fields, and a pool of 5,000 VMs held whole took 77 MiB of the server.
//!
//! The token is taken before the initial load (`event.inject` on the pool), so no
//! change between load and subscription is lost. `SESSION_INVALID`, `EVENTS_LOST` or a
//! bad token start over with a fresh load; network errors back off (1 s doubling to
//! 30 s). The status says what is going on, for the status bar.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::watch;

use super::client::XapiClient;
use super::lifecycle::{TAG_ID, first_ipv4};
use crate::lock;
pub use bioxen_proto::{PoolStatus, PoolVm, XapiError};

/// Classes kept in the cache (lower-case, as events name them) and their API names.
const WATCHED: &[(&str, &str)] = &[
    ("vm", "VM"),
    ("vm_guest_metrics", "VM_guest_metrics"),
    ("host", "host"),
];

/// The fields kept of each class's records: what [`pool_vms`] reads. Of
/// `other_config`, only bioxen's own tag.
const KEPT: &[(&str, &[&str])] = &[
    (
        "vm",
        &[
            "uuid",
            "name_label",
            "power_state",
            "is_a_template",
            "is_a_snapshot",
            "is_control_domain",
            "guest_metrics",
            "resident_on",
            "memory_static_max",
            "VCPUs_at_startup",
            "other_config",
        ],
    ),
    ("vm_guest_metrics", &["networks"]),
    ("host", &["name_label"]),
];

/// A record with only the fields [`KEPT`] for its class.
fn slim(class: &str, record: Json) -> Json {
    let kept = KEPT
        .iter()
        .find(|(c, _)| *c == class)
        .map_or(&[][..], |(_, fields)| *fields);
    let Json::Object(mut fields) = record else {
        return record;
    };
    fields.retain(|k, _| kept.contains(&k.as_str()));
    if let Some(Json::Object(other)) = fields.get_mut("other_config") {
        other.retain(|k, _| k == TAG_ID);
    }
    Json::Object(fields)
}

/// Gives the heap freed by a large load back to the system. A load parses every record
/// whole before [`slim`] keeps a few fields; without this the server keeps the peak.
fn release_freed_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim(3) only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How long one `event.from` waits for changes.
const POLL_SECONDS: f64 = 30.0;

#[derive(Default)]
struct State {
    tables: HashMap<String, HashMap<String, Json>>,
    status: Option<PoolStatus>,
    requests: u64,
}

pub struct EventCache {
    state: Arc<Mutex<State>>,
    changed: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EventCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EventCache {
    /// Starts following the pool in the background.
    pub fn start(client: Arc<XapiClient>) -> EventCache {
        let state = Arc::new(Mutex::new(State::default()));
        let (changed, _) = watch::channel(0);
        let task = tokio::spawn(follow(client, state.clone(), changed.clone()));
        EventCache {
            state,
            changed,
            task,
        }
    }

    /// Changes whenever the cache or the status changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn status(&self) -> PoolStatus {
        lock(&self.state)
            .status
            .clone()
            .unwrap_or(PoolStatus::Connecting)
    }

    /// Requests made to the pool so far (loads and event polls), for measurements.
    pub fn requests(&self) -> u64 {
        lock(&self.state).requests
    }

    /// Guest VMs (no templates, snapshots or control domains), by name.
    pub fn vms(&self) -> Vec<PoolVm> {
        pool_vms(&lock(&self.state).tables)
    }

    /// Waits until `pred` holds for the cache; false on timeout.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&EventCache) -> bool) -> bool {
        let mut rx = self.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            rx.borrow_and_update();
            if pred(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return pred(self);
            }
        }
    }
}

/// The pool's guest VMs, loaded once (for `bioxen ls`, which does not stay to follow).
pub async fn snapshot(client: &XapiClient) -> Result<Vec<PoolVm>, XapiError> {
    let mut tables = HashMap::new();
    for (lc, class) in WATCHED {
        let records = client.get_all_records(class).await?;
        tables.insert(lc.to_string(), slim_table(lc, records));
    }
    Ok(pool_vms(&tables))
}

/// A class's records by reference, each [`slim`].
fn slim_table(class: &str, records: serde_json::Map<String, Json>) -> HashMap<String, Json> {
    records
        .into_iter()
        .map(|(reference, record)| (reference, slim(class, record)))
        .collect()
}

/// Guest VMs from the cached tables, joined with their guest metrics and host.
fn pool_vms(tables: &HashMap<String, HashMap<String, Json>>) -> Vec<PoolVm> {
    let empty = HashMap::new();
    let table = |c: &str| tables.get(c).unwrap_or(&empty);
    let (vms, guest, hosts) = (table("vm"), table("vm_guest_metrics"), table("host"));
    let mut out: Vec<PoolVm> = vms
        .iter()
        .filter(|(_, r)| {
            let f = |k: &str| r.get(k).and_then(Json::as_bool).unwrap_or(false);
            !f("is_a_template") && !f("is_a_snapshot") && !f("is_control_domain")
        })
        .map(|(reference, r)| {
            let s = |k: &str| r.get(k).and_then(Json::as_str).unwrap_or("").to_string();
            let ip = guest
                .get(&s("guest_metrics"))
                .and_then(|g| g.get("networks"))
                .and_then(first_ipv4);
            let host = hosts
                .get(&s("resident_on"))
                .and_then(|h| h.get("name_label"))
                .and_then(Json::as_str)
                .map(str::to_string);
            PoolVm {
                // The cache follows one pool and knows it by address only: whoever
                // named the pool names its VMs.
                pool: String::new(),
                reference: reference.clone(),
                uuid: s("uuid"),
                name: s("name_label"),
                power_state: s("power_state"),
                ip,
                host,
                memory_bytes: r
                    .get("memory_static_max")
                    .and_then(Json::as_i64)
                    .unwrap_or(0),
                vcpus: r
                    .get("VCPUs_at_startup")
                    .and_then(Json::as_i64)
                    .unwrap_or(0),
                bioxen_id: r
                    .get("other_config")
                    .and_then(|o| o.get(TAG_ID))
                    .and_then(Json::as_str)
                    .map(str::to_string),
                // Filled in from the pool's RRDs by whoever reads them.
                cpu_percent: None,
                memory_used: None,
                recent_cpu: Vec::new(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then(a.reference.cmp(&b.reference)));
    out
}

async fn follow(client: Arc<XapiClient>, state: Arc<Mutex<State>>, changed: watch::Sender<u64>) {
    let notify = |state: &Arc<Mutex<State>>| {
        let _ = state;
        changed.send_modify(|n| *n += 1);
    };
    let mut attempt = 0u32;
    loop {
        let err = sync(&client, &state, &changed, &mut attempt).await;
        attempt += 1;
        tracing::warn!(
            "pool events: {}; retrying (attempt {attempt})",
            bioxen_text::sanitize::for_log(&err.to_string())
        );
        if err.is("SESSION_INVALID") || matches!(err, XapiError::Transport(_)) {
            client.reset_session().await;
        }
        lock(&state).status = Some(PoolStatus::Retrying {
            error: err.to_string(),
            attempt,
        });
        notify(&state);
        if err.is("SESSION_AUTHENTICATION_FAILED") {
            // Wrong credentials do not fix themselves: try rarely, never in a loop.
            tokio::time::sleep(Duration::from_secs(300)).await;
            continue;
        }
        let backoff = Duration::from_secs(1u64 << attempt.min(5).saturating_sub(1))
            .min(Duration::from_secs(30));
        let restart_now = err.is("EVENTS_LOST")
            || err.is("EVENT_FROM_TOKEN_PARSE_FAILURE")
            || err.is("SESSION_INVALID");
        if !restart_now {
            tokio::time::sleep(backoff).await;
        }
    }
}

/// Loads everything and follows events until something fails.
async fn sync(
    client: &XapiClient,
    state: &Arc<Mutex<State>>,
    changed: &watch::Sender<u64>,
    attempt: &mut u32,
) -> XapiError {
    let count = |state: &Arc<Mutex<State>>| lock(state).requests += 1;
    // Take the token first, so nothing that changes during the load is missed.
    count(state);
    let token = match client.get_all_records("pool").await {
        Ok(pools) => match pools.keys().next() {
            Some(pool) => {
                count(state);
                match client.event_inject("pool", pool).await {
                    Ok(t) => t,
                    Err(e) if e.is("MESSAGE_METHOD_UNKNOWN") => String::new(),
                    Err(e) => return e,
                }
            }
            None => String::new(),
        },
        Err(e) => return e,
    };
    let mut tables = HashMap::new();
    for (lc, class) in WATCHED {
        count(state);
        match client.get_all_records(class).await {
            Ok(records) => {
                tables.insert(lc.to_string(), slim_table(lc, records));
            }
            Err(e) => return e,
        }
    }
    {
        let mut s = lock(state);
        s.tables = tables;
        s.status = Some(PoolStatus::Connected);
    }
    release_freed_heap();
    *attempt = 0;
    changed.send_modify(|n| *n += 1);

    let classes: Vec<&str> = WATCHED.iter().map(|(lc, _)| *lc).collect();
    let mut token = token;
    loop {
        count(state);
        let batch = match client.event_from(&classes, &token, POLL_SECONDS).await {
            Ok(b) => b,
            Err(e) => return e,
        };
        let events = batch
            .get("events")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        if !events.is_empty() {
            let mut s = lock(state);
            for ev in events {
                let class = ev
                    .get("class")
                    .and_then(Json::as_str)
                    .unwrap_or("")
                    .to_lowercase();
                let Some(table) = s.tables.get_mut(&class) else {
                    continue;
                };
                let reference = ev
                    .get("ref")
                    .and_then(Json::as_str)
                    .unwrap_or("")
                    .to_string();
                match ev.get("operation").and_then(Json::as_str) {
                    Some("del") => {
                        table.remove(&reference);
                    }
                    _ => {
                        if let Some(snapshot) = ev.get("snapshot") {
                            table.insert(reference, slim(&class, snapshot.clone()));
                        }
                    }
                }
            }
            drop(s);
            changed.send_modify(|n| *n += 1);
        }
        match batch.get("token").and_then(Json::as_str) {
            Some(t) => token = t.to_string(),
            None => return XapiError::Transport("event.from returned no token".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Whole records, as a pool sends them (with fields the list never reads).
    fn whole() -> HashMap<String, serde_json::Map<String, Json>> {
        let object = |v: Json| v.as_object().unwrap().clone();
        HashMap::from([
            (
                "vm".to_string(),
                object(json!({
                    "OpaqueRef:vm1": {
                        "uuid": "u1", "name_label": "lab-1", "power_state": "Running",
                        "is_a_template": false, "is_a_snapshot": false,
                        "is_control_domain": false, "guest_metrics": "OpaqueRef:g1",
                        "resident_on": "OpaqueRef:h1", "memory_static_max": 2147483648i64,
                        "VCPUs_at_startup": 2,
                        "other_config": {"bioxen:id": "7", "install-methods": "cdrom"},
                        "name_description": "a long description", "blocked_operations": {},
                        "VBDs": ["OpaqueRef:b1", "OpaqueRef:b2"], "platform": {"acpi": "1"}
                    },
                    "OpaqueRef:t1": {
                        "uuid": "t", "name_label": "Debian", "power_state": "Halted",
                        "is_a_template": true, "HVM_boot_policy": "BIOS order"
                    }
                })),
            ),
            (
                "vm_guest_metrics".to_string(),
                object(json!({"OpaqueRef:g1": {
                    "networks": {"0/ip": "10.0.0.5"}, "os_version": {"name": "Debian"}
                }})),
            ),
            (
                "host".to_string(),
                object(json!({"OpaqueRef:h1": {
                    "name_label": "xcp-1", "software_version": {"xen": "4.17"}
                }})),
            ),
        ])
    }

    #[test]
    fn slim_records_give_the_list_whole_ones_give() {
        let full: HashMap<String, HashMap<String, Json>> = whole()
            .into_iter()
            .map(|(class, records)| (class, records.into_iter().collect()))
            .collect();
        let slimmed: HashMap<String, HashMap<String, Json>> = whole()
            .into_iter()
            .map(|(class, records)| (class.clone(), slim_table(&class, records)))
            .collect();
        let vms = pool_vms(&slimmed);
        assert_eq!(vms, pool_vms(&full));
        assert_eq!(vms.len(), 1, "{vms:?}");
        let vm = &vms[0];
        assert_eq!(
            (
                vm.ip.as_deref(),
                vm.host.as_deref(),
                vm.bioxen_id.as_deref()
            ),
            (Some("10.0.0.5"), Some("xcp-1"), Some("7"))
        );
        let record = &slimmed["vm"]["OpaqueRef:vm1"];
        assert!(record.get("VBDs").is_none() && record.get("platform").is_none());
        assert_eq!(record["other_config"], json!({"bioxen:id": "7"}));
        assert_eq!(
            slimmed["host"]["OpaqueRef:h1"],
            json!({"name_label": "xcp-1"})
        );
    }
}
