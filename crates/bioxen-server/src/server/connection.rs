//! One client's connection: its calls, its subscription and the sessions it watches.
//!
//! Everything the server sends a client goes through one bounded queue, drained by one
//! writer task. A client that stops reading (suspended with C-z, on a slow link) fills
//! its own queue and stalls only the tasks that feed it: sessions broadcast their
//! output without waiting, so such a client's watchers fall behind, and when it reads
//! again each is resent a snapshot of the screen instead of the bytes it missed. Its
//! memory is bounded by the queue; no other client and no session notices.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UnixStream;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::AbortHandle;

use super::hub::Hub;
use crate::manager::{Event as ManagerEvent, Live, Manager};
use bioxen_backend::error::{Error, Result};
use bioxen_backend::lock;
use bioxen_proto::{
    self as protocol, Call, Event, Hello, InstallOutcome, PoolInfo, Request, Response, ServerMsg,
    VmId, VmRef, Welcome,
};

/// Messages that may wait for a client; with output batches of at most
/// [`OUTPUT_BATCH`], a stalled client holds a few MiB at most.
const QUEUE: usize = 64;
/// Output read from a session in one go is sent as one frame up to this size.
const OUTPUT_BATCH: usize = 64 * 1024;
/// Queued messages are written together up to this many bytes.
const WRITE_BATCH: usize = 256 * 1024;
/// A session's activity is reported to a client at most this often.
const ACTIVITY_EVERY: Duration = Duration::from_millis(500);

enum Out {
    Msg(ServerMsg),
    Output {
        vm: VmId,
        bytes: Vec<u8>,
    },
    /// Told once everything queued before it is written to the socket.
    Written(tokio::sync::oneshot::Sender<()>),
}

type Queue = mpsc::Sender<Out>;

/// Sessions this client watches, with the task sending each one and what it sends.
type Watches = Arc<Mutex<HashMap<VmId, (AbortHandle, Sending)>>>;

/// What a watch sends of its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sending {
    /// Every byte (`Watch`).
    Bytes,
    /// Its screen, at most every [`protocol::GLANCE_EVERY`] (`Glance`).
    Glances,
}

impl Sending {
    /// The task that sends session `vm` to `out` this way.
    fn task(
        self,
        manager: Manager,
        vm: VmId,
        out: Queue,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        match self {
            Sending::Bytes => Box::pin(forward(manager, vm, out)),
            Sending::Glances => Box::pin(glance(manager, vm, out)),
        }
    }
}

pub async fn serve(mut stream: UnixStream, hub: Arc<Hub>) -> Result<()> {
    let Some(hello) = handshake(&mut stream).await? else {
        return Ok(());
    };
    let _counted = hub.client_joined(hello.client == "dashboard");
    let (mut reader, mut writer) = stream.into_split();
    let (out, mut queue) = mpsc::channel::<Out>(QUEUE);
    let writing = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        // Whatever is queued goes out in one write: a flood costs a few large writes,
        // not one per chunk the session printed.
        let mut buf = Vec::new();
        let mut written = Vec::new();
        while let Some(first) = queue.recv().await {
            buf.clear();
            let mut next = Some(first);
            while let Some(item) = next.take() {
                let encoded = match item {
                    Out::Msg(m) => protocol::encode_message(&mut buf, &m),
                    Out::Output { vm, bytes } => protocol::encode_output(&mut buf, vm, &bytes),
                    Out::Written(tell) => {
                        written.push(tell);
                        Ok(())
                    }
                };
                if encoded.is_err() {
                    return;
                }
                if buf.len() < WRITE_BATCH {
                    next = queue.try_recv().ok();
                }
            }
            if writer.write_all(&buf).await.is_err() {
                return;
            }
            for tell in written.drain(..) {
                let _ = tell.send(());
            }
        }
    });
    let watches: Watches = Arc::default();
    let mut pump: Option<AbortHandle> = None;
    let mut slow = SlowCalls::default();
    // What this client attached to, given back when it goes however it goes (a
    // killed dashboard says nothing).
    let mut attached: std::collections::HashSet<VmId> = Default::default();
    let result = loop {
        let call = match read_call(&mut reader).await {
            Ok(Some(call)) => call,
            Ok(None) => break Ok(()),
            Err(e) => break Err(Error::Io(e)),
        };
        let Call { tag, mut request } = call;
        clamp_waits(&mut request);
        let reply = move |response| Out::Msg(ServerMsg::Reply { tag, response });
        let response = match request {
            // `attach -r`: it looks, and changes nothing.
            request if hello.read_only && request.serving().changes => Response::Failed(
                Error::Manager("this client attached read-only: it changes nothing".into()).into(),
            ),
            Request::Subscribe => {
                if pump.is_none() {
                    // The list goes out here, ahead of what was asked after it (the
                    // screen and history `bioxen attach NAME` watches): the dashboard
                    // draws nothing before it has the list.
                    let feeds = Feeds::subscribe(&hub);
                    let list = Event::Vms(hub.manager.list());
                    if out.send(Out::Msg(ServerMsg::Event(list))).await.is_err() {
                        break Ok(());
                    }
                    let task =
                        tokio::spawn(run_pump(hub.clone(), feeds, out.clone(), watches.clone()));
                    pump = Some(task.abort_handle());
                }
                Response::Done
            }
            Request::Watch { vm } => start_watch(&hub.manager, &watches, vm, Sending::Bytes, &out),
            Request::Glance { vm } => {
                start_watch(&hub.manager, &watches, vm, Sending::Glances, &out)
            }
            Request::Attach { vm } => match hub.manager.resolve(vm) {
                Ok(vm) if attached.contains(&vm) => Response::Done,
                Ok(vm) => match hub.manager.attach(vm) {
                    Ok(()) => {
                        attached.insert(vm);
                        Response::Done
                    }
                    Err(e) => Response::Failed(e.into()),
                },
                Err(e) => Response::Failed(e.into()),
            },
            Request::Detach { vm } => {
                if let Ok(vm) = hub.manager.resolve(vm)
                    && attached.remove(&vm)
                {
                    let _ = hub.manager.detach(vm);
                }
                Response::Done
            }
            Request::Unwatch { vm } => {
                let task = hub
                    .manager
                    .resolve(vm)
                    .ok()
                    .and_then(|vm| lock(&watches).remove(&vm));
                if let Some((task, _)) = task {
                    task.abort();
                }
                Response::Done
            }
            Request::Answer { question, answer } => {
                if !hub.answer(question, answer) {
                    tracing::info!(question, "answered after another client did");
                }
                Response::Done
            }
            Request::Shutdown => {
                // The reply reaches the client before the server starts to go: the
                // process may end before this task runs again.
                let (tell, written) = tokio::sync::oneshot::channel();
                let _ = out.send(reply(Response::Done)).await;
                let _ = out.send(Out::Written(tell)).await;
                let _ = tokio::time::timeout(Duration::from_secs(2), written).await;
                hub.stop("a client asked it to (bioxen kill-server)");
                continue;
            }
            request if request.serving().apart => {
                // Slow calls answer later; the client's other calls go on meanwhile.
                let (manager, out) = (hub.manager.clone(), out.clone());
                let wait = matches!(
                    request,
                    Request::ReadUntil { .. } | Request::WaitReady { .. } | Request::Execute { .. }
                );
                slow.spawn(wait, async move {
                    let response = handle(&manager, request, &out).await;
                    let _ = out.send(reply(response)).await;
                })
                .await;
                continue;
            }
            request => handle(&hub.manager, request, &out).await,
        };
        if out.send(reply(response)).await.is_err() {
            break Ok(());
        }
    };
    for (_, (task, _)) in lock(&watches).drain() {
        task.abort();
    }
    // Nobody is left to hear their answers.
    slow.abort_all();
    for vm in attached {
        let _ = hub.manager.detach(vm);
    }
    if let Some(p) = pump {
        p.abort();
    }
    writing.abort();
    result
}

/// Reads the client's hello and answers it; returns the hello, if the client may go
/// on. A client of another user is refused before a byte of it is read: its
/// words cost the server nothing. A client of another protocol version is told both
/// versions. The hello itself is held to [`protocol::HELLO_LIMIT`].
async fn handshake(stream: &mut UnixStream) -> Result<Option<Hello>> {
    // SAFETY: getuid has no preconditions and cannot fail.
    let me = unsafe { libc::getuid() };
    let peer = stream.peer_cred()?;
    if peer.uid() != me {
        tracing::warn!("refused a client of uid {}", peer.uid());
        let reason = format!(
            "this bioxen server belongs to uid {me} and serves no one else (you are uid {})",
            peer.uid()
        );
        protocol::write_message(stream, &Welcome::Refused { reason }).await?;
        return Ok(None);
    }
    let hello = tokio::time::timeout(
        Duration::from_secs(10),
        protocol::read_message_within::<_, Hello>(stream, protocol::HELLO_LIMIT),
    )
    .await;
    let Ok(hello) = hello else {
        return Ok(None);
    };
    let (welcome, client) = match hello? {
        None => return Ok(None),
        Some(h) if h.version != protocol::VERSION => (
            Welcome::Refused {
                reason: format!(
                    "the server speaks protocol {} and the client {}: restart the server (bioxen kill-server) after upgrading",
                    protocol::VERSION,
                    h.version
                ),
            },
            None,
        ),
        Some(h) => {
            tracing::debug!(client = %bioxen_text::sanitize::line(&h.client), "connected");
            let welcome = Welcome::Ok {
                version: protocol::VERSION,
                server_pid: std::process::id(),
            };
            (welcome, Some(h))
        }
    };
    protocol::write_message(stream, &welcome).await?;
    Ok(client)
}

/// What every connection's frames being read may hold at once, in KiB. A frame is
/// read only once its size fits (frames of up to [`FREE_FRAME`] always do), so sixteen
/// clients each sending 64 MiB wait their turn instead of taking a gigabyte.
static FRAME_BUDGET_KIB: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(256 * 1024);
/// Frames this small (keys, resizes, most calls) are read without asking the budget.
const FREE_FRAME: usize = 64 * 1024;
/// Slow calls one connection may have running; past this the connection reads no
/// further calls until one ends.
const CALLS_IN_FLIGHT: usize = 256;
/// The longest a client may ask the server to wait for output, a prompt or a chunk.
const LONGEST_WAIT_MS: u64 = 24 * 3600 * 1000;

/// Reads the next call, holding its bytes against [`FRAME_BUDGET_KIB`] while they are
/// read and decoded.
async fn read_call(
    reader: &mut (impl tokio::io::AsyncRead + Unpin),
) -> std::io::Result<Option<Call>> {
    let Some(len) = protocol::read_frame_len(reader, protocol::MAX_MESSAGE).await? else {
        return Ok(None);
    };
    let _held = if len > FREE_FRAME {
        let kib = u32::try_from(len.div_ceil(1024)).unwrap_or(u32::MAX);
        Some(
            FRAME_BUDGET_KIB
                .acquire_many(kib)
                .await
                .map_err(std::io::Error::other)?,
        )
    } else {
        None
    };
    let body = protocol::read_frame_body(reader, len).await?;
    protocol::decode_message(&body).map(Some)
}

/// Caps the waits a call asks for at [`LONGEST_WAIT_MS`].
fn clamp_waits(request: &mut Request) {
    if let Request::ReadUntil { timeout_ms, .. }
    | Request::WaitReady { timeout_ms, .. }
    | Request::Wait { timeout_ms, .. }
    | Request::Execute { timeout_ms, .. } = request
    {
        *timeout_ms = (*timeout_ms).min(LONGEST_WAIT_MS);
    }
}

/// The slow calls of one connection, at most [`CALLS_IN_FLIGHT`] at once. Waits (for
/// output, a prompt, a chunk's end) end with the connection, since nobody is left to
/// hear them; work that changes something (a create, a kill, a destroy) runs to its
/// end, or a pool VM half made would be left behind.
#[derive(Default)]
struct SlowCalls {
    running: Arc<Mutex<HashMap<u64, AbortHandle>>>,
    next: u64,
    slots: Option<Arc<tokio::sync::Semaphore>>,
}

impl SlowCalls {
    /// Runs `call` beside the connection, once fewer than [`CALLS_IN_FLIGHT`] run.
    async fn spawn(
        &mut self,
        ends_with_connection: bool,
        call: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let slots = self
            .slots
            .get_or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(CALLS_IN_FLIGHT)))
            .clone();
        let Ok(slot) = slots.acquire_owned().await else {
            return;
        };
        self.next += 1;
        let (key, running) = (self.next, self.running.clone());
        // Held until the task has registered itself, so it cannot remove itself first.
        let mut map = lock(&self.running);
        let task = tokio::spawn(async move {
            call.await;
            lock(&running).remove(&key);
            drop(slot);
        });
        if ends_with_connection {
            map.insert(key, task.abort_handle());
        }
    }

    fn abort_all(&self) {
        for (_, task) in lock(&self.running).drain() {
            task.abort();
        }
    }
}

/// Starts sending this client a session (`task`: its bytes, or glances), in place of
/// whatever was sent of it before.
fn start_watch(
    manager: &Manager,
    watches: &Watches,
    vm: VmRef,
    sending: Sending,
    out: &Queue,
) -> Response {
    let vm = match manager.resolve(vm) {
        Ok(vm) => vm,
        Err(e) => return Response::Failed(e.into()),
    };
    let task = tokio::spawn(sending.task(manager.clone(), vm, out.clone()));
    if let Some((old, _)) = lock(watches).insert(vm, (task.abort_handle(), sending)) {
        old.abort();
    }
    Response::Done
}

/// Sends the client a session's screen; false once the client is gone.
async fn send_screen(out: &Queue, vm: VmId, snapshot: protocol::Snapshot) -> bool {
    let screen = Event::Screen { vm, snapshot };
    out.send(Out::Msg(ServerMsg::Event(screen))).await.is_ok()
}

/// A glanced-at session: its screen each time it changed, at most every
/// [`protocol::GLANCE_EVERY`]. A flood costs the client one small screen a frame,
/// not every byte. A change after a quiet spell goes out at once: the pause is
/// what is left of the interval since the last screen, not a whole interval after
/// the change, so a key typed into a glanced tile echoes without waiting.
async fn glance(manager: Manager, vm: VmId, out: Queue) {
    loop {
        let Ok((snapshot, mut changed)) = manager.glance(vm, false) else {
            return;
        };
        let sent = Instant::now();
        if !send_screen(&out, vm, snapshot).await {
            return;
        }
        if changed.changed().await.is_err() {
            return;
        }
        tokio::time::sleep_until((sent + protocol::GLANCE_EVERY).into()).await;
    }
}

/// A watched session that prints more than this within one
/// [`protocol::GLANCE_EVERY`] is flooding: no one reads 2 MB a second as it passes,
/// so its client is sent the whole screen once a frame instead of every byte to
/// parse a second time.
const FLOOD_BYTES: usize = 64 * 1024;
/// History a flood's frame may carry per [`protocol::GLANCE_EVERY`] between frames:
/// a long scrollback of long lines is sent less often rather than costing more.
const FLOOD_HISTORY_BYTES: usize = 256 * 1024;

/// History past this many bytes is sent after the screen when a watch starts: the
/// client need not take in the rows before it shows the screen.
const HISTORY_AFTER_SCREEN: usize = 16 * 1024;

/// Counts what a watch forwarded in the current interval, to tell a flood.
struct FloodGauge {
    since: Instant,
    bytes: usize,
}

impl FloodGauge {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            bytes: 0,
        }
    }

    /// Adds `n` bytes forwarded now; true once the interval holds a flood.
    fn flooding(&mut self, n: usize) -> bool {
        if self.since.elapsed() > protocol::GLANCE_EVERY {
            *self = Self::new();
        }
        self.bytes += n;
        self.bytes >= FLOOD_BYTES
    }
}

/// Sends a flooding session's screen, history included, at most once a frame until
/// an interval passes with no output; false if the session or the client is gone.
/// The client's mirror is replaced by each, so it stays whole (scrollback, search
/// and copy work on it as on parsed bytes), and keys typed meanwhile echo within a
/// frame. The watch then goes back to sending bytes.
async fn glance_through_flood(manager: &Manager, vm: VmId, out: &Queue) -> bool {
    loop {
        let Ok((snapshot, changed)) = manager.glance(vm, true) else {
            return false;
        };
        let frames = 1 + snapshot.history.len() / FLOOD_HISTORY_BYTES;
        if !send_screen(out, vm, snapshot).await {
            return false;
        }
        tokio::time::sleep(protocol::GLANCE_EVERY * frames as u32).await;
        match changed.has_changed() {
            Ok(true) => continue,
            Ok(false) => return true,
            Err(_) => return false,
        }
    }
}

/// Sends a watched session's screen, then its output and size changes as they happen.
/// Falling behind (the client reads slower than the session prints) loses nothing the
/// client can see: it is sent the screen afresh.
async fn forward(manager: Manager, vm: VmId, out: Queue) {
    let event = |e| Out::Msg(ServerMsg::Event(e));
    let mut flooded = false;
    let mut starting = true;
    loop {
        if flooded && !glance_through_flood(&manager, vm, &out).await {
            return;
        }
        let Ok((snapshot, mut live)) = manager.watch(vm) else {
            return;
        };
        // The screen goes ahead of a long history, when the watch starts: the
        // client shows the screen the user switched to (or attached to) before it
        // has read and laid out thousands of rows they have not scrolled to.
        let ahead = starting && snapshot.history.len() > HISTORY_AFTER_SCREEN;
        if ahead && !send_screen(&out, vm, snapshot.ahead_of_history()).await {
            return;
        }
        starting = false;
        if !send_screen(&out, vm, snapshot).await {
            return;
        }
        let mut gauge = FloodGauge::new();
        flooded = loop {
            let first = match live.recv().await {
                Ok(l) => l,
                Err(broadcast::error::RecvError::Lagged(_)) => break false,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            // Let the session's reader go on first: output that arrives meanwhile
            // joins this frame, so a flood is sent in large frames.
            tokio::task::yield_now().await;
            // Output that piled up meanwhile goes as one frame.
            let mut batch = Vec::new();
            let mut next = Some(first);
            let mut lagged = false;
            while let Some(item) = next.take() {
                match item {
                    Live::Output(bytes) => batch.extend_from_slice(&bytes),
                    Live::Resized(size) => {
                        if !batch.is_empty() {
                            let bytes = std::mem::take(&mut batch);
                            if out.send(Out::Output { vm, bytes }).await.is_err() {
                                return;
                            }
                        }
                        let resized = Event::Resized {
                            vm,
                            rows: size.rows,
                            cols: size.cols,
                        };
                        if out.send(event(resized)).await.is_err() {
                            return;
                        }
                    }
                }
                if batch.len() < OUTPUT_BATCH {
                    match live.try_recv() {
                        Ok(l) => next = Some(l),
                        Err(broadcast::error::TryRecvError::Lagged(_)) => lagged = true,
                        Err(_) => {}
                    }
                }
            }
            if lagged {
                break false;
            }
            let n = batch.len();
            if n > 0 && out.send(Out::Output { vm, bytes: batch }).await.is_err() {
                return;
            }
            if gauge.flooding(n) {
                break true;
            }
        };
    }
}

/// What a subscription listens to, taken before its first list is: a change made
/// between the two waits in these, and is not lost.
struct Feeds {
    events: broadcast::Receiver<ManagerEvent>,
    announced: broadcast::Receiver<Event>,
    pools: watch::Receiver<BTreeMap<String, PoolInfo>>,
}

impl Feeds {
    fn subscribe(hub: &Hub) -> Feeds {
        let manager = &hub.manager;
        let feeds = Feeds {
            events: manager.subscribe(),
            announced: hub.subscribe(),
            pools: hub.pools(),
        };
        // Output events are sent once until re-armed: re-arm every session's now.
        for vm in manager.ids() {
            manager.take_dirty(vm);
        }
        feeds
    }
}

/// A subscribed client's events after its first list: the VM list as it changes,
/// states, notices, activity in sessions it does not watch, the pool, and SSH
/// questions.
async fn run_pump(hub: Arc<Hub>, feeds: Feeds, out: Queue, watches: Watches) {
    let manager = &hub.manager;
    let Feeds {
        mut events,
        mut announced,
        mut pools,
    } = feeds;
    pools.mark_changed();
    // What each pool last told this client: a change of one pool sends that one.
    let mut told: BTreeMap<String, PoolInfo> = BTreeMap::new();
    let mut pool_news: std::collections::VecDeque<Event> = Default::default();
    let send = |e: Event| out.send(Out::Msg(ServerMsg::Event(e)));
    for (id, question) in hub.open_questions() {
        if send(Event::Question { id, question }).await.is_err() {
            return;
        }
    }
    let mut last_activity: HashMap<VmId, Instant> = HashMap::new();
    loop {
        if let Some(event) = pool_news.pop_front() {
            if send(event).await.is_err() {
                return;
            }
            continue;
        }
        let event = tokio::select! {
            event = events.recv() => match event {
                Ok(ManagerEvent::Output(vm)) => {
                    manager.take_dirty(vm);
                    let recent = last_activity
                        .get(&vm)
                        .is_some_and(|t| t.elapsed() < ACTIVITY_EVERY);
                    if recent || lock(&watches).contains_key(&vm) {
                        continue;
                    }
                    last_activity.insert(vm, Instant::now());
                    Event::Activity { vm }
                }
                Ok(ManagerEvent::State(vm, state)) => {
                    if send(Event::Vms(manager.list())).await.is_err() {
                        return;
                    }
                    Event::State { vm, state }
                }
                Ok(ManagerEvent::Error(vm, text)) => Event::Notice { vm, text },
                Ok(ManagerEvent::Alert(vm, alert)) => Event::Alert { vm, alert },
                // Watches key on the number, which a rename leaves alone: they go on
                // as they were.
                Ok(ManagerEvent::Renamed(vm, name)) => {
                    if send(Event::Renamed { vm, name }).await.is_err() {
                        return;
                    }
                    Event::Vms(manager.list())
                }
                Ok(ManagerEvent::Removed(vm)) => {
                    last_activity.remove(&vm);
                    Event::Vms(manager.list())
                }
                Ok(ManagerEvent::Created(_) | ManagerEvent::Stats)
                | Err(broadcast::error::RecvError::Lagged(_)) => Event::Vms(manager.list()),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            event = announced.recv() => match event {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            Ok(()) = pools.changed() => {
                for (name, info) in pools.borrow_and_update().iter() {
                    if told.get(name) != Some(info) {
                        told.insert(name.clone(), info.clone());
                        pool_news.push_back(Event::Pool(info.clone()));
                    }
                }
                continue;
            }
        };
        if send(event).await.is_err() {
            return;
        }
    }
}

/// Carries out one call on the manager.
async fn handle(m: &Manager, request: Request, out: &Queue) -> Response {
    let ms = Duration::from_millis;
    let result: Result<Response> = async {
        Ok(match request {
            Request::Create {
                name,
                kind,
                options,
            } => {
                let options = options
                    .into_vm_options()
                    .map_err(|e| Error::Manager(e.to_string()))?;
                let vm = m
                    .create_interactive_vm(name.as_deref(), kind, options)
                    .await?;
                Response::Created {
                    vm,
                    name: m.info(vm)?.name,
                }
            }
            Request::SendInput { vm, data } => {
                m.send_input(&vm, data)?;
                Response::Done
            }
            Request::ReadOutput { vm } => Response::Output {
                text: m.read_output(&vm)?,
            },
            Request::ReadUntil {
                vm,
                needle,
                timeout_ms,
            } => Response::Output {
                text: m.read_until(&vm, &needle, ms(timeout_ms)).await?,
            },
            Request::WaitReady { vm, timeout_ms } => {
                m.wait_ready(&vm, ms(timeout_ms)).await?;
                Response::Done
            }
            Request::Execute {
                vm,
                code,
                timeout_ms,
            } => {
                let r = m.execute_string(&vm, &code, ms(timeout_ms)).await?;
                Response::Executed {
                    output: r.output,
                    error: r.error,
                }
            }
            Request::Resize { vm, rows, cols } => {
                let size = bioxen_backend::vm::Size::checked(rows, cols)
                    .map_err(|e| Error::Manager(e.to_string()))?;
                m.resize(&vm, size)?;
                Response::Done
            }
            Request::Kill { vm } => Response::State {
                state: m.kill(&vm).await?,
            },
            Request::Terminate { vm } => Response::State {
                state: m.terminate_vm_session(&vm).await?,
            },
            Request::Restart { vm } => {
                m.restart(&vm).await?;
                Response::Done
            }
            Request::List => Response::Vms { vms: m.list() },
            Request::ScreenText { vm } => Response::Output {
                text: m.with_screen(&vm, |s| s.text())?,
            },
            Request::Capture { vm, start, escapes } => Response::Output {
                text: m.with_screen(&vm, |s| s.capture(start, escapes))?,
            },
            Request::Wait {
                vm,
                until,
                timeout_ms,
            } => Response::State {
                state: m.wait_until(&vm, &until, ms(timeout_ms)).await?,
            },
            Request::Search { query } => {
                let manager = m.clone();
                let matches = tokio::task::spawn_blocking(move || manager.search(&query))
                    .await
                    .map_err(|e| Error::Manager(format!("the search failed: {e}")))??;
                Response::Found { matches }
            }
            Request::History { of, window } => Response::History {
                series: m.history(&of, window)?,
            },
            Request::ToggleLog { vm } => Response::LogPath {
                path: m.toggle_output_log(&vm)?,
            },
            Request::Rename { vm, name } => {
                m.rename(&vm, &name)?;
                Response::Done
            }
            Request::SetSilence { vm, secs } => {
                m.set_silence(&vm, secs)?;
                Response::Done
            }
            Request::Remove { vm } => {
                m.remove(&vm)?;
                Response::Done
            }
            Request::Release { vm } => Response::State {
                state: m.release(&vm).await?,
            },
            Request::Destroy { vm } => Response::State {
                state: m.kill_and_destroy(&vm).await?,
            },
            Request::Install { vm, name, version } => {
                let vm = m.resolve(vm)?;
                let spec = bioxen_backend::rocks::PackageSpec::new(&name, version.as_deref())
                    .map_err(|e| Error::Manager(e.to_string()))?;
                // Output goes out in order and all of it before the end: a queue
                // drained by one task, awaited before the reply is sent. (Dropping
                // output when the client was slow let the end overtake its last lines.)
                let (lines, mut queued) = mpsc::unbounded_channel::<Vec<u8>>();
                let forwarding = {
                    let out = out.clone();
                    tokio::spawn(async move {
                        while let Some(bytes) = queued.recv().await {
                            let event = Event::InstallOutput { vm, bytes };
                            if out.send(Out::Msg(ServerMsg::Event(event))).await.is_err() {
                                return;
                            }
                        }
                    })
                };
                let report = m
                    .install_package(vm, &spec, &move |bytes| {
                        let _ = lines.send(bytes.to_vec());
                    })
                    .await;
                let _ = forwarding.await;
                let report = report?;
                Response::Installed(InstallOutcome {
                    package: report.spec.label(),
                    success: report.success,
                    exit_code: report.exit_code,
                    output: report.output,
                })
            }
            Request::EndAll => {
                m.end_all().await;
                Response::Done
            }
            Request::Up { experiment, force } => Response::Up(m.up(experiment, force).await?),
            Request::Down { experiment } => Response::Ended {
                vms: m.down(&experiment).await?,
            },
            // Handled by the connection itself.
            Request::Subscribe
            | Request::Watch { .. }
            | Request::Glance { .. }
            | Request::Unwatch { .. }
            | Request::Answer { .. }
            | Request::Attach { .. }
            | Request::Detach { .. }
            | Request::Shutdown => Response::Done,
        })
    }
    .await;
    result.unwrap_or_else(|e| Response::Failed(e.into()))
}
