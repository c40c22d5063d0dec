//! A live copy of the pool's VMs, their metrics and hosts, kept current by
//! `event.from`, so the dashboard never polls VMs one by one.
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
    ("vm_metrics", "VM_metrics"),
    ("vm_guest_metrics", "VM_guest_metrics"),
    ("host", "host"),
];

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
        tables.insert(
            lc.to_string(),
            records.into_iter().collect::<HashMap<_, _>>(),
        );
    }
    Ok(pool_vms(&tables))
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
                tables.insert(
                    lc.to_string(),
                    records.into_iter().collect::<HashMap<_, _>>(),
                );
            }
            Err(e) => return e,
        }
    }
    {
        let mut s = lock(state);
        s.tables = tables;
        s.status = Some(PoolStatus::Connected);
    }
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
                            table.insert(reference, snapshot.clone());
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
