//! What the server's connections share: the manager, how many clients are connected,
//! the open SSH questions, the pool's state, and the signal to stop.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};

use super::ServerOptions;
use crate::manager::{Event as ManagerEvent, Manager};
use bioxen_backend::lock;
use bioxen_backend::vm::ssh::{SshAnswer, SshPrompt, SshQuestion};
use bioxen_backend::xapi::{PoolStatus, PoolVm};
use bioxen_proto::{Event, PoolInfo};

pub struct Hub {
    pub manager: Manager,
    options: ServerOptions,
    clients: AtomicUsize,
    /// Events for every subscribed client that do not come from the manager.
    events: broadcast::Sender<Event>,
    /// Questions nobody has answered yet, by id; a client that subscribes late is
    /// asked too.
    questions: Mutex<BTreeMap<u64, OpenQuestion>>,
    next_question: AtomicU64,
    /// Each configured pool's state and VMs, by name.
    pools: watch::Sender<BTreeMap<String, PoolInfo>>,
    /// Why the server stops, once it should.
    stop: watch::Sender<Option<String>>,
    /// A client left: time to check whether the server is empty.
    left: Notify,
    /// Whether the server has held a VM or a dashboard: one started explicitly
    /// (`bioxen server`) waits for its first use before `exit_empty` applies.
    used: std::sync::atomic::AtomicBool,
}

struct OpenQuestion {
    question: SshQuestion,
    answer: oneshot::Sender<SshAnswer>,
}

/// Counts a client for as long as it lives.
pub struct ClientGuard(Arc<Hub>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::AcqRel);
        self.0.left.notify_one();
    }
}

impl Hub {
    pub fn new(manager: Manager, options: ServerOptions) -> Arc<Hub> {
        Arc::new(Hub {
            manager,
            options,
            clients: AtomicUsize::new(0),
            events: broadcast::channel(64).0,
            questions: Mutex::new(BTreeMap::new()),
            next_question: AtomicU64::new(1),
            pools: watch::channel(BTreeMap::new()).0,
            stop: watch::channel(None).0,
            left: Notify::new(),
            used: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Counts a client until the guard drops; a dashboard counts as using the server.
    pub fn client_joined(self: &Arc<Hub>, dashboard: bool) -> ClientGuard {
        if dashboard {
            self.used.store(true, Ordering::Release);
        }
        self.clients.fetch_add(1, Ordering::AcqRel);
        ClientGuard(self.clone())
    }

    /// Asks the server to stop, saying why (the first reason wins).
    pub fn stop(&self, reason: impl Into<String>) {
        let reason = reason.into();
        self.stop.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(reason);
                true
            } else {
                false
            }
        });
    }

    /// Resolves once the server should stop, with the reason.
    pub async fn stopped(&self) -> String {
        let mut rx = self.stop.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(r) => r.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }

    /// Sends an event to every subscribed client.
    pub fn announce(&self, event: Event) {
        let _ = self.events.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    pub fn pools(&self) -> watch::Receiver<BTreeMap<String, PoolInfo>> {
        self.pools.subscribe()
    }

    pub fn open_questions(&self) -> Vec<(u64, SshQuestion)> {
        lock(&self.questions)
            .iter()
            .map(|(id, q)| (*id, q.question.clone()))
            .collect()
    }

    /// Answers an open question; false when it was answered already or given up.
    pub fn answer(&self, id: u64, answer: SshAnswer) -> bool {
        match lock(&self.questions).remove(&id) {
            Some(q) => q.answer.send(answer).is_ok(),
            None => false,
        }
    }
}

/// Puts each SSH question to the clients and passes the first answer back; a question
/// whose asker gave up (the connection attempt ended) is withdrawn from every client.
pub async fn relay_questions(hub: Arc<Hub>, mut prompts: mpsc::UnboundedReceiver<SshPrompt>) {
    while let Some(SshPrompt {
        question,
        mut reply,
    }) = prompts.recv().await
    {
        let id = hub.next_question.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        lock(&hub.questions).insert(
            id,
            OpenQuestion {
                question: question.clone(),
                answer,
            },
        );
        hub.announce(Event::Question { id, question });
        let hub = hub.clone();
        tokio::spawn(async move {
            tokio::select! {
                a = answered => if let Ok(a) = a { let _ = reply.send(a); },
                () = reply.closed() => {}
            }
            lock(&hub.questions).remove(&id);
            hub.announce(Event::QuestionClosed { id });
        });
    }
}

/// Connects to each configured pool and keeps [`Hub::pools`] current with their
/// states and VMs.
pub async fn follow_pools(hub: Arc<Hub>) {
    for xcpng in hub.manager.config().xcpng.clone() {
        tokio::spawn(follow_pool(hub.clone(), xcpng));
    }
}

/// Follows one pool. The connection is made in the background: a `password_command`
/// may take a while, and a pool that cannot be used is a message for clients, never a
/// reason for the server to stop.
async fn follow_pool(hub: Arc<Hub>, xcpng: bioxen_config::XcpngConfig) {
    let warning =
        bioxen_backend::xapi::tls::TlsMode::from_config(xcpng.tls_verify, &xcpng.tls_fingerprint)
            .ok()
            .and_then(|t| t.warning());
    let name = xcpng.name.clone();
    let info = |status, vms, failed| PoolInfo {
        name: name.clone(),
        status,
        vms,
        warning: warning.clone(),
        failed,
    };
    let publish = |info: PoolInfo| {
        hub.pools.send_modify(|pools| {
            pools.insert(info.name.clone(), info);
        })
    };
    publish(info(PoolStatus::Connecting, Vec::new(), None));
    let manager = hub.manager.clone();
    let pool = tokio::task::spawn_blocking(move || manager.pool(Some(&xcpng.name)))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let pool = match pool {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("pool {name}: {e}");
            let status = PoolStatus::Retrying {
                error: e.clone(),
                attempt: 0,
            };
            publish(info(status, Vec::new(), Some(format!("pool {name}: {e}"))));
            return;
        }
    };
    let mut changes = pool.cache.subscribe();
    let mut figures = pool.metrics.subscribe();
    loop {
        let mut vms: Vec<PoolVm> = pool.cache.vms().iter().map(PoolVm::for_display).collect();
        hub.manager.with_pool_figures(&pool, &mut vms);
        publish(info(pool.cache.status(), vms, None));
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            changed = figures.changed() => if changed.is_err() { return },
        }
    }
}

/// With `exit_empty`, stops the server once the last client has left and no VM is
/// left, as tmux's server does when its last session ends; a server nobody has used
/// yet (no VM, no dashboard) waits for its first use.
pub async fn exit_when_empty(hub: Arc<Hub>) {
    if !hub.options.exit_empty {
        return;
    }
    let mut events = hub.manager.subscribe();
    loop {
        tokio::select! {
            () = hub.left.notified() => {}
            event = events.recv() => match event {
                Ok(ManagerEvent::Created(_)) => {
                    hub.used.store(true, Ordering::Release);
                    continue;
                }
                Ok(ManagerEvent::Removed(_)) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
        if hub.used.load(Ordering::Acquire)
            && hub.clients.load(Ordering::Acquire) == 0
            && hub.manager.ids().is_empty()
        {
            hub.stop("no VM and no client is left (server.exit_empty)");
            return;
        }
    }
}
