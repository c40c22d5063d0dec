//! The pool VMs' CPU and memory, read from the pool's RRDs every five seconds (their
//! finest step) while some VM of the pool runs, and kept in the same rings as a local
//! VM's. A pool with nothing running is not asked.

use bioxen_backend::xapi::XapiClient;
use bioxen_backend::xapi::rrd::VmFigures;

use super::*;
use crate::history::{History, Sample};

/// xcp-rrdd's finest step.
const RRD_STEP: Duration = Duration::from_secs(5);
/// How far back the first request reaches: the last minute is already in the pool's
/// five-second archive.
const FIRST_LOOK_BACK: u64 = 60;

#[derive(Default)]
pub struct PoolMetrics {
    /// By VM UUID, as the RRD legend names VMs.
    vms: Mutex<HashMap<String, (History, VmFigures)>>,
    /// Bumped after each reply that brought figures.
    changed: watch::Sender<u64>,
}

impl PoolMetrics {
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The latest figures of a VM, with its sparkline.
    pub fn latest(&self, uuid: &str) -> Option<(VmFigures, Vec<u16>)> {
        lock(&self.vms).get(uuid).map(|(h, f)| (*f, h.recent_cpu()))
    }

    pub fn series(&self, uuid: &str, window: Window) -> Option<Series> {
        lock(&self.vms).get(uuid).map(|(h, _)| h.series(window))
    }

    /// Keeps the reply's figures; true when it brought any.
    fn record(&self, update: bioxen_backend::xapi::rrd::RrdUpdate) -> bool {
        if update.rows.is_empty() {
            return false;
        }
        let mut vms = lock(&self.vms);
        for (t, figures) in update.rows {
            for (uuid, f) in figures {
                let entry = vms.entry(uuid).or_default();
                entry.0.record(
                    t,
                    Sample {
                        cpu_percent: f.cpu_percent,
                        rss_bytes: f.memory_used(),
                        ..Sample::default()
                    },
                );
                entry.1 = f;
            }
        }
        drop(vms);
        self.changed.send_modify(|n| *n += 1);
        true
    }

    /// Asks the pool for its figures while any of its VMs runs; gives up when the
    /// pool is dropped. A failed request is tried again at the next step: the figures
    /// are a picture, and the event cache reports the pool's state.
    pub(super) async fn follow(
        pool: std::sync::Weak<super::Pool>,
        client: Arc<XapiClient>,
        events: broadcast::Sender<Event>,
    ) {
        let mut start = None;
        loop {
            let Some(p) = pool.upgrade() else { return };
            let mut changes = p.cache.subscribe();
            let running = p.cache.vms().iter().any(|vm| vm.power_state == "Running");
            drop(p);
            if !running {
                if changes.changed().await.is_err() {
                    return;
                }
                continue;
            }
            let from = start.unwrap_or_else(|| {
                crate::persist::unix_secs(SystemTime::now()).saturating_sub(FIRST_LOOK_BACK)
            });
            match client.rrd_updates(from).await {
                Ok(update) => {
                    start = Some(update.end);
                    let Some(p) = pool.upgrade() else { return };
                    if p.metrics.record(update) {
                        // Sessions on pool VMs show the pool's figures.
                        let _ = events.send(Event::Stats);
                    }
                }
                Err(e) => tracing::debug!("rrd_updates: {e}"),
            }
            tokio::time::sleep(RRD_STEP).await;
        }
    }
}

impl Manager {
    /// The pool a pool VM is on, with the VM: references are unique across pools.
    fn find_pool_vm(&self, reference: &str) -> Option<(Arc<super::Pool>, PoolVm)> {
        self.connected_pools().into_iter().find_map(|pool| {
            let vm = pool
                .cache
                .vms()
                .into_iter()
                .find(|vm| vm.reference == reference)?;
            Some((pool, vm))
        })
    }

    /// A pool VM's figures over `window`, when its pool has given any.
    pub(super) fn pool_history(&self, reference: &str, window: Window) -> Option<Series> {
        let (pool, vm) = self.find_pool_vm(reference)?;
        pool.metrics.series(&vm.uuid, window)
    }

    /// Each `xcpng` session's pool by name, and the pool's figures of its VM. Runs on
    /// every list: each pool's cache is read once, not once per session.
    pub(super) fn with_pool_figures_on_sessions(&self, infos: &mut [VmInfo]) {
        let first = self.inner.config.xcpng.first().map(|p| p.name.clone());
        let on_pools = infos.iter().any(|i| i.pool_vm.is_some());
        let mut by_ref: HashMap<String, (Arc<super::Pool>, String)> = HashMap::new();
        let pools = if on_pools {
            self.connected_pools()
        } else {
            Vec::new()
        };
        for pool in pools {
            for vm in pool.cache.vms() {
                by_ref.insert(vm.reference, (pool.clone(), vm.uuid));
            }
        }
        for info in infos.iter_mut().filter(|i| i.kind == VmKind::Xcpng) {
            info.pool = info.pool.take().or_else(|| first.clone());
            let Some((pool, uuid)) = info.pool_vm.as_ref().and_then(|r| by_ref.get(r)) else {
                continue;
            };
            if let Some((f, recent)) = pool.metrics.latest(uuid) {
                info.cpu_percent = f.cpu_percent;
                info.rss_bytes = f.memory_used();
                info.recent_cpu = recent;
            }
        }
    }

    /// The pool's name and figures on the rows it lists.
    pub fn with_pool_figures(&self, pool: &super::Pool, vms: &mut [PoolVm]) {
        for vm in vms {
            vm.pool = pool.name.clone();
            if let Some((f, recent)) = pool.metrics.latest(&vm.uuid) {
                vm.cpu_percent = f.cpu_percent;
                vm.memory_used = f.memory_used();
                vm.recent_cpu = recent;
            }
        }
    }
}
