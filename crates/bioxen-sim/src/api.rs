//! The XAPI methods the simulator answers, with xapi's power-state rules and error
//! codes (XAPI.md §2–§4).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::db::{CLASSES, Db, NULL_REF, Record, parse_token};
use super::filter;
use super::records::{self, VmSpec};
use bioxen_backend::lock;
use bioxen_backend::xapi::wire::XVal;

/// An API result: a value, or xapi's error description `[CODE, params…]`.
pub type Reply = Result<XVal, Vec<String>>;

fn fail(code: &str, params: &[&str]) -> Vec<String> {
    std::iter::once(code)
        .chain(params.iter().copied())
        .map(String::from)
        .collect()
}

/// How the simulated pool behaves.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub username: String,
    pub password: String,
    /// Time from `VM.start` until the guest agent reports an IP.
    pub boot_delay: Duration,
    /// The IPv4 address every started VM reports.
    pub guest_ip: String,
    /// When set, this server is a pool member: logins fail with `HOST_IS_SLAVE` naming
    /// this master address.
    pub member_of: Option<String>,
    /// For a member: the master's certificate fingerprint (upper-case hex pairs joined
    /// by `:`), sent with `HOST_IS_SLAVE` to a login that asks for it with
    /// `x-xenapi-request-host-certificate-thumbprint` (XAPI.md §4).
    pub master_thumbprint: Option<String>,
    /// The host's management address, as `HOST_IS_SLAVE` would name it.
    pub host_address: String,
    /// How long a failed login waits before answering (xapi waits 5 s).
    pub auth_failure_delay: Duration,
    /// When set, started VMs answer SSH at addresses of their own (see `guest`).
    pub guests: Option<Arc<super::guest::GuestConfig>>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            username: "root".into(),
            password: "password".into(),
            boot_delay: Duration::from_millis(300),
            guest_ip: "127.0.0.1".into(),
            member_of: None,
            master_thumbprint: None,
            host_address: "127.0.0.1".into(),
            auth_failure_delay: Duration::ZERO,
            guests: None,
        }
    }
}

/// Faults injected on request, for tests of recovery.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Added before every answer.
    pub latency: Duration,
    /// The next N requests get their connection closed without an answer.
    pub drop_next: u32,
    /// The next N requests get HTTP 500.
    pub http500_next: u32,
    /// The next N requests get a 200 whose body is not XML or JSON.
    pub garbage_next: u32,
    /// The next call of a method fails with this error description.
    pub fail_method: Vec<(String, Vec<String>)>,
    /// Added before every `event.from` answer: a pool slow to report changes.
    pub event_delay: Duration,
}

impl Faults {
    /// What is armed, in words, for `bioxen sim` to say at start.
    pub fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .fail_method
            .iter()
            .map(|(m, d)| format!("the next {m} fails with {}", d.join(" ")))
            .collect();
        for (n, what) in [
            (self.drop_next, "have their connection closed unanswered"),
            (self.http500_next, "get HTTP 500"),
            (self.garbage_next, "get a body that is neither XML nor JSON"),
        ] {
            if n > 0 {
                out.push(format!("the next {n} request(s) {what}"));
            }
        }
        if !self.latency.is_zero() {
            out.push(format!("every answer {} ms late", self.latency.as_millis()));
        }
        if !self.event_delay.is_zero() {
            out.push(format!(
                "event.from answers {} ms late",
                self.event_delay.as_millis()
            ));
        }
        out
    }
}

pub struct Sim {
    db: Mutex<Db>,
    changed: watch::Sender<u64>,
    sessions: Mutex<HashMap<String, String>>,
    pub options: SimOptions,
    pub faults: Mutex<Faults>,
    host: String,
    default_sr: String,
    next_domid: AtomicI64,
    /// The SSH servers of running guests, by VM reference; dropped when a VM halts.
    guests: Mutex<HashMap<String, super::guest::Guest>>,
    /// The last byte of the next guest's loopback address.
    next_guest: std::sync::atomic::AtomicU8,
}

const GIB: i64 = 1 << 30;

impl Sim {
    /// A pool with one host, its control domain, local storage, and two templates:
    /// `lua-bio-template` (with a disk) and a default Debian template that provisions
    /// its disk from `other_config["disks"]`.
    pub fn new(options: SimOptions) -> Arc<Sim> {
        let mut db = Db::default();
        let sr = db.insert("SR", records::sr("Local storage"));
        let dom0_metrics = db.insert("VM_metrics", records::vm_metrics(4 * GIB, 4));
        let dom0 = db.insert(
            "VM",
            records::vm(VmSpec {
                name: "Control domain on host: sim-host",
                template: false,
                default_template: false,
                control_domain: true,
                memory: 4 * GIB,
                vcpus: 4,
                metrics: dom0_metrics,
                other_config: BTreeMap::new(),
            }),
        );
        let host_metrics = db.insert("host_metrics", records::host_metrics(64 * GIB));
        let host = db.insert(
            "host",
            records::host("sim-host", &options.host_address, &dom0, &host_metrics),
        );
        db.modify("VM", &dom0, |r| {
            r.insert("resident_on".into(), XVal::str(host.clone()));
        });
        db.insert("pool", records::pool(&host, &sr));

        let sim = Sim {
            db: Mutex::new(db),
            changed: watch::channel(0).0,
            sessions: Mutex::new(HashMap::new()),
            options,
            faults: Mutex::new(Faults::default()),
            host,
            default_sr: sr,
            next_domid: AtomicI64::new(1),
            guests: Mutex::new(HashMap::new()),
            next_guest: std::sync::atomic::AtomicU8::new(2),
        };
        {
            let mut db = lock(&sim.db);
            let lua = sim.add_template(&mut db, "lua-bio-template", false, BTreeMap::new());
            sim.attach_disk(&mut db, &lua, "lua-bio-template disk", 8 * GIB, "0", true);
            let disks = "<provision><disk device=\"0\" size=\"10737418240\" sr=\"\" bootable=\"true\" type=\"system\"/></provision>";
            sim.add_template(
                &mut db,
                "Debian Bookworm 12",
                true,
                BTreeMap::from([("disks".to_string(), XVal::str(disks))]),
            );
        }
        Arc::new(sim)
    }

    fn add_template(
        &self,
        db: &mut Db,
        name: &str,
        default: bool,
        other_config: BTreeMap<String, XVal>,
    ) -> String {
        let metrics = db.insert("VM_metrics", records::vm_metrics(GIB, 1));
        db.insert(
            "VM",
            records::vm(VmSpec {
                name,
                template: true,
                default_template: default,
                control_domain: false,
                memory: GIB,
                vcpus: 1,
                metrics,
                other_config,
            }),
        )
    }

    fn attach_disk(
        &self,
        db: &mut Db,
        vm: &str,
        name: &str,
        size: i64,
        device: &str,
        bootable: bool,
    ) {
        let vdi = db.insert("VDI", records::vdi(name, size, &self.default_sr));
        let vbd = db.insert("VBD", records::vbd(vm, &vdi, "Disk", device, bootable));
        push_ref(db, "VDI", &vdi, "VBDs", &vbd);
        push_ref(db, "VM", vm, "VBDs", &vbd);
        push_ref(db, "SR", &self.default_sr.clone(), "VDIs", &vdi);
    }

    fn notify(&self, db: &Db) {
        self.changed.send_replace(db.generation());
    }

    /// Runs `f` on the database and wakes `event.from` waiters afterwards.
    fn write<T>(&self, f: impl FnOnce(&mut Db) -> T) -> T {
        let mut db = lock(&self.db);
        let out = f(&mut db);
        self.notify(&db);
        out
    }

    /// Forgets every session, as a toolstack restart would.
    pub fn session_valid(&self, session: &str) -> bool {
        lock(&self.sessions).contains_key(session)
    }

    /// The guests `rrd_updates` reports on: running VMs other than control domains.
    pub fn running_guests(&self) -> Vec<super::rrd::Guest> {
        let db = lock(&self.db);
        db.all("VM")
            .filter(|(_, r)| {
                r.get("power_state").and_then(XVal::as_str) == Some("Running")
                    && r.get("is_control_domain").and_then(XVal::as_bool) != Some(true)
            })
            .map(|(_, r)| super::rrd::Guest {
                uuid: r
                    .get("uuid")
                    .and_then(XVal::as_str)
                    .unwrap_or("")
                    .to_string(),
                vcpus: r
                    .get("VCPUs_at_startup")
                    .and_then(XVal::as_int)
                    .unwrap_or(1),
                memory: r
                    .get("memory_static_max")
                    .and_then(XVal::as_int)
                    .unwrap_or(0),
            })
            .collect()
    }

    pub fn expire_sessions(&self) {
        lock(&self.sessions).clear();
    }

    /// Number of VMs that are not templates and not control domains.
    pub fn guest_vm_count(&self) -> usize {
        lock(&self.db)
            .all("VM")
            .filter(|(_, r)| !flag(r, "is_a_template") && !flag(r, "is_control_domain"))
            .count()
    }

    /// The memory a VM was given (`memory_static_max`), in bytes.
    pub fn memory_given(&self, reference: &str) -> u64 {
        let db = lock(&self.db);
        db.field("VM", reference, "memory_static_max")
            .and_then(XVal::as_int)
            .unwrap_or(0) as u64
    }

    pub fn vdi_count(&self) -> usize {
        lock(&self.db).all("VDI").count()
    }

    /// Changes a VM's power state behind the client's back (as another admin would),
    /// for event tests. Returns false if there is no such VM.
    pub fn set_power_state(&self, name: &str, state: &str) -> bool {
        self.write(|db| {
            let Some(vm) = db.find("VM", "name_label", name).into_iter().next() else {
                return false;
            };
            let changed = db.modify("VM", &vm, |r| {
                r.insert("power_state".into(), XVal::str(state));
            });
            if state != "Running" {
                self.stop_guest(&vm);
            }
            changed
        })
    }

    /// Starts the SSH server of `vm`'s guest at the next loopback address and returns
    /// that address (the simulator's `guest_ip` if it cannot listen).
    async fn start_guest(&self, vm: &str, config: Arc<super::guest::GuestConfig>) -> String {
        let n = self
            .next_guest
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(if n >= 254 { 2 } else { n + 1 })
            })
            .unwrap_or(2);
        let ip = std::net::Ipv4Addr::new(127, 0, 0, n);
        match super::guest::Guest::start(ip.into(), config).await {
            Ok(guest) => {
                let fingerprint = guest.host_key.fingerprint(russh::keys::HashAlg::Sha256);
                tracing::info!("guest {vm}: SSH at {} ({fingerprint})", guest.addr);
                lock(&self.guests).insert(vm.to_string(), guest);
                ip.to_string()
            }
            Err(e) => {
                tracing::warn!("guest {vm}: cannot listen for SSH at {ip}: {e}");
                self.options.guest_ip.clone()
            }
        }
    }

    /// Stops every guest, ending what they run: when the simulator exits.
    pub fn stop_guests(&self) {
        lock(&self.guests).clear();
    }

    /// Stops `vm`'s guest SSH server, closing its connections.
    fn stop_guest(&self, vm: &str) {
        lock(&self.guests).remove(vm);
    }

    /// The SSH address and host key of a running VM's guest, by name.
    pub fn guest_ssh(&self, name: &str) -> Option<(std::net::SocketAddr, russh::keys::PublicKey)> {
        let vm = lock(&self.db)
            .find("VM", "name_label", name)
            .into_iter()
            .next()?;
        lock(&self.guests)
            .get(&vm)
            .map(|g| (g.addr, g.host_key.clone()))
    }

    /// Creates `n` plain halted VMs named `bulk-<i>`, for scale tests.
    pub fn add_bulk_vms(&self, n: usize) {
        self.write(|db| {
            for i in 0..n {
                let metrics = db.insert("VM_metrics", records::vm_metrics(GIB, 1));
                db.insert(
                    "VM",
                    records::vm(VmSpec {
                        name: &format!("bulk-{i}"),
                        template: false,
                        default_template: false,
                        control_domain: false,
                        memory: GIB,
                        vcpus: 1,
                        metrics,
                        other_config: BTreeMap::new(),
                    }),
                );
            }
        });
    }

    /// Every method name this server answers, as `system.listMethods` lists them.
    pub fn methods(&self) -> Vec<String> {
        let db = lock(&self.db);
        let mut out = vec![
            "system.listMethods".to_string(),
            "session.login_with_password".into(),
            "session.logout".into(),
            "event.from".into(),
            "event.inject".into(),
            "event.get_current_id".into(),
        ];
        for class in CLASSES {
            for m in [
                "get_all",
                "get_all_records",
                "get_all_records_where",
                "get_record",
                "get_by_uuid",
            ] {
                out.push(format!("{class}.{m}"));
            }
            if let Some((_, rec)) = db.all(class).next() {
                for field in rec.keys() {
                    out.push(format!("{class}.get_{field}"));
                }
                if rec.contains_key("name_label") {
                    out.push(format!("{class}.get_by_name_label"));
                }
                if rec.contains_key("other_config") {
                    out.push(format!("{class}.add_to_other_config"));
                    out.push(format!("{class}.remove_from_other_config"));
                }
            }
        }
        for m in [
            "VM.clone",
            "VM.provision",
            "VM.start",
            "VM.clean_shutdown",
            "VM.hard_shutdown",
            "VM.shutdown",
            "VM.destroy",
            "VM.set_memory_limits",
            "VM.set_VCPUs_max",
            "VM.set_VCPUs_at_startup",
            "VM.set_is_a_template",
            "VM.set_name_label",
            "VM.set_name_description",
            "VDI.destroy",
        ] {
            out.push(m.to_string());
        }
        out.sort();
        out.dedup();
        out
    }

    /// Answers one call.
    pub async fn call(self: &Arc<Self>, method: &str, params: Vec<XVal>) -> Reply {
        let injected = {
            let mut faults = lock(&self.faults);
            let pos = faults.fail_method.iter().position(|(m, _)| m == method);
            pos.map(|i| faults.fail_method.remove(i).1)
        };
        if let Some(err) = injected {
            return Err(err);
        }
        match method {
            "system.listMethods" => {
                return Ok(XVal::Array(
                    self.methods().into_iter().map(XVal::Str).collect(),
                ));
            }
            "session.login_with_password" => return self.login(&params).await,
            _ => {}
        }
        let session = params
            .first()
            .and_then(XVal::as_str)
            .unwrap_or("")
            .to_string();
        if !lock(&self.sessions).contains_key(&session) {
            if !method.contains('.') {
                return Err(fail("MESSAGE_METHOD_UNKNOWN", &[method]));
            }
            return Err(fail("SESSION_INVALID", &[&session]));
        }
        let args = &params[1..];
        let (class, name) = method.split_once('.').unwrap_or((method, ""));
        match (class, name) {
            ("session", "logout") => {
                lock(&self.sessions).remove(&session);
                Ok(XVal::str(""))
            }
            ("event", "from") => self.event_from(method, args).await,
            ("event", "inject") => {
                let [class, reference] = arity::<2>(method, args)?;
                self.inject(class, reference)
            }
            ("event", "get_current_id") => Ok(XVal::Int(lock(&self.db).generation() as i64)),
            ("VM", "clone") => self.vm_clone(method, args),
            ("VM", "provision") => self.vm_provision(method, args),
            ("VM", "start") => self.vm_start(method, args),
            ("VM", "clean_shutdown" | "shutdown") => self.vm_shutdown(method, args, false),
            ("VM", "hard_shutdown") => self.vm_shutdown(method, args, true),
            ("VM", "destroy") => self.vm_destroy(method, args),
            ("VM", "set_memory_limits") => self.vm_memory(method, args),
            ("VM", "set_VCPUs_max") => self.vm_vcpus(method, args, true),
            ("VM", "set_VCPUs_at_startup") => self.vm_vcpus(method, args, false),
            ("VM", "set_is_a_template" | "set_name_label" | "set_name_description") => {
                self.vm_set(method, name, args)
            }
            ("VDI", "destroy") => self.vdi_destroy(method, args),
            _ => match CLASSES.iter().copied().find(|c| *c == class) {
                Some(class) => self.generic(method, class, name, args),
                None => Err(fail("MESSAGE_METHOD_UNKNOWN", &[method])),
            },
        }
    }

    async fn login(&self, params: &[XVal]) -> Reply {
        if !(2..=4).contains(&params.len()) {
            return Err(fail(
                "MESSAGE_PARAMETER_COUNT_MISMATCH",
                &[
                    "session.login_with_password",
                    "4",
                    &params.len().to_string(),
                ],
            ));
        }
        if let Some(master) = &self.options.member_of {
            return Err(fail("HOST_IS_SLAVE", &[master]));
        }
        let user = params[0].as_str().unwrap_or("");
        let password = params[1].as_str().unwrap_or("");
        if user != self.options.username || password != self.options.password {
            tokio::time::sleep(self.options.auth_failure_delay).await;
            return Err(fail(
                "SESSION_AUTHENTICATION_FAILED",
                &[user, "Authentication failure"],
            ));
        }
        let session = super::db::new_ref();
        lock(&self.sessions).insert(session.clone(), user.to_string());
        Ok(XVal::Str(session))
    }

    // ----- events ----------------------------------------------------------------------

    async fn event_from(&self, method: &str, args: &[XVal]) -> Reply {
        let delay = lock(&self.faults).event_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let [classes, token, timeout] = arity::<3>(method, args)?;
        let classes: Vec<String> = classes
            .as_array()
            .ok_or_else(|| internal("classes must be a set of strings"))?
            .iter()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect();
        let token_text = token.as_str().unwrap_or("");
        let since = parse_token(token_text)
            .ok_or_else(|| fail("EVENT_FROM_TOKEN_PARSE_FAILURE", &[token_text]))?;
        let timeout = timeout
            .as_float()
            .ok_or_else(|| internal("timeout must be a float"))?;
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs_f64(timeout.clamp(0.0, 3600.0));
        let subscribed = |class: &str, reference: &str| {
            classes.iter().any(|sub| {
                let (c, r) = sub
                    .split_once('/')
                    .map(|(c, r)| (c, Some(r)))
                    .unwrap_or((sub, None));
                (c == "*" || c.eq_ignore_ascii_case(class)) && r.is_none_or(|r| r == reference)
            })
        };
        let mut rx = self.changed.subscribe();
        loop {
            rx.borrow_and_update();
            {
                let db = lock(&self.db);
                let changes = db.changes_since(since, &subscribed);
                if !changes.is_empty() || tokio::time::Instant::now() >= deadline {
                    let events = changes
                        .into_iter()
                        .map(|c| {
                            let mut e = BTreeMap::from([
                                ("id".to_string(), XVal::Str(c.generation.to_string())),
                                ("timestamp".to_string(), XVal::str("0.0")),
                                ("class".to_string(), XVal::Str(c.class.to_lowercase())),
                                ("operation".to_string(), XVal::str(c.operation)),
                                ("ref".to_string(), XVal::Str(c.reference)),
                            ]);
                            if let Some(s) = c.snapshot {
                                e.insert("snapshot".to_string(), XVal::Struct(s));
                            }
                            XVal::Struct(e)
                        })
                        .collect();
                    return Ok(XVal::Struct(BTreeMap::from([
                        ("events".to_string(), XVal::Array(events)),
                        ("valid_ref_counts".to_string(), XVal::Struct(db.counts())),
                        ("token".to_string(), XVal::Str(db.token())),
                    ])));
                }
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                continue; // the deadline passed: answer with an empty batch
            }
        }
    }

    fn inject(&self, class: &XVal, reference: &XVal) -> Reply {
        let class_name = class.as_str().unwrap_or("");
        let reference = reference.as_str().unwrap_or("");
        self.write(|db| {
            let Some(c) = Db::class(class_name).filter(|c| db.get(c, reference).is_some()) else {
                return Err(fail("HANDLE_INVALID", &[class_name, reference]));
            };
            let token = db.token();
            db.modify(c, reference, |_| {});
            Ok(XVal::Str(token))
        })
    }

    // ----- generic class methods -------------------------------------------------------

    fn generic(&self, method: &str, class: &'static str, name: &str, args: &[XVal]) -> Reply {
        let db = lock(&self.db);
        match name {
            "get_all_records" => {
                arity::<0>(method, args)?;
                Ok(XVal::Struct(
                    db.all(class)
                        .map(|(r, rec)| (r.clone(), XVal::Struct(rec.clone())))
                        .collect(),
                ))
            }
            "get_all" => {
                arity::<0>(method, args)?;
                Ok(XVal::Array(
                    db.all(class).map(|(r, _)| XVal::Str(r.clone())).collect(),
                ))
            }
            "get_all_records_where" => {
                let [expr] = arity::<1>(method, args)?;
                let expr = expr.as_str().unwrap_or("");
                let pred = filter::parse(expr)
                    .map_err(|e| fail("INVALID_VALUE", &[expr, &e.to_string()]))?;
                Ok(XVal::Struct(
                    db.all(class)
                        .filter(|(_, rec)| pred.eval(rec))
                        .map(|(r, rec)| (r.clone(), XVal::Struct(rec.clone())))
                        .collect(),
                ))
            }
            "get_record" => {
                let [r] = arity::<1>(method, args)?;
                let r = r.as_str().unwrap_or("");
                db.get(class, r)
                    .map(|rec| XVal::Struct(rec.clone()))
                    .ok_or_else(|| fail("HANDLE_INVALID", &[class, r]))
            }
            "get_by_uuid" => {
                let [uuid] = arity::<1>(method, args)?;
                let uuid = uuid.as_str().unwrap_or("");
                db.find(class, "uuid", uuid)
                    .into_iter()
                    .next()
                    .map(XVal::Str)
                    .ok_or_else(|| fail("UUID_INVALID", &[class, uuid]))
            }
            "get_by_name_label" => {
                let [label] = arity::<1>(method, args)?;
                let label = label.as_str().unwrap_or("");
                Ok(XVal::Array(
                    db.find(class, "name_label", label)
                        .into_iter()
                        .map(XVal::Str)
                        .collect(),
                ))
            }
            _ => {
                drop(db);
                if let Some(field) = name.strip_prefix("get_") {
                    let [r] = arity::<1>(method, args)?;
                    let r = r.as_str().unwrap_or("");
                    let db = lock(&self.db);
                    let rec = db
                        .get(class, r)
                        .ok_or_else(|| fail("HANDLE_INVALID", &[class, r]))?;
                    rec.get(field)
                        .cloned()
                        .ok_or_else(|| fail("MESSAGE_METHOD_UNKNOWN", &[method]))
                } else if let Some(field) = name.strip_prefix("add_to_") {
                    let [r, k, v] = arity::<3>(method, args)?;
                    let (r, k) = (r.as_str().unwrap_or(""), k.as_str().unwrap_or(""));
                    self.write(|db| {
                        let map = db
                            .field(class, r, field)
                            .ok_or_else(|| fail("HANDLE_INVALID", &[class, r]))?
                            .as_struct()
                            .ok_or_else(|| fail("MESSAGE_METHOD_UNKNOWN", &[method]))?;
                        if map.contains_key(k) {
                            return Err(fail("MAP_DUPLICATE_KEY", &[class, field, r, k]));
                        }
                        db.modify(class, r, |rec| {
                            if let Some(XVal::Struct(m)) = rec.get_mut(field) {
                                m.insert(k.to_string(), XVal::str(v.as_str().unwrap_or("")));
                            }
                        });
                        Ok(XVal::str(""))
                    })
                } else if let Some(field) = name.strip_prefix("remove_from_") {
                    let [r, k] = arity::<2>(method, args)?;
                    let (r, k) = (r.as_str().unwrap_or(""), k.as_str().unwrap_or(""));
                    self.write(|db| {
                        if db.get(class, r).is_none() {
                            return Err(fail("HANDLE_INVALID", &[class, r]));
                        }
                        db.modify(class, r, |rec| {
                            if let Some(XVal::Struct(m)) = rec.get_mut(field) {
                                m.remove(k);
                            }
                        });
                        Ok(XVal::str(""))
                    })
                } else {
                    Err(fail("MESSAGE_METHOD_UNKNOWN", &[method]))
                }
            }
        }
    }

    // ----- VM lifecycle ----------------------------------------------------------------

    fn vm_clone(&self, method: &str, args: &[XVal]) -> Reply {
        let [vm, name] = arity::<2>(method, args)?;
        let vm = vm.as_str().unwrap_or("").to_string();
        let name = name.as_str().unwrap_or("").to_string();
        self.write(|db| {
            let src = vm_record(db, &vm)?;
            if flag(&src, "is_control_domain") {
                return Err(fail(
                    "OPERATION_NOT_ALLOWED",
                    &["This operation is not allowed on dom0"],
                ));
            }
            require_power(&src, &vm, &["Halted"], "halted")?;
            let memory = src
                .get("memory_static_max")
                .and_then(XVal::as_int)
                .unwrap_or(GIB);
            let vcpus = src.get("VCPUs_max").and_then(XVal::as_int).unwrap_or(1);
            let metrics = db.insert("VM_metrics", records::vm_metrics(memory, vcpus));
            let mut rec = src.clone();
            rec.insert("uuid".into(), XVal::Str(super::db::new_uuid()));
            rec.insert("name_label".into(), XVal::Str(name));
            let template = flag(&src, "is_a_template") || flag(&src, "is_a_snapshot");
            rec.insert("is_a_template".into(), XVal::Bool(template));
            rec.insert("is_default_template".into(), XVal::Bool(false));
            rec.insert("is_a_snapshot".into(), XVal::Bool(false));
            rec.insert("metrics".into(), XVal::Str(metrics));
            rec.insert("guest_metrics".into(), XVal::str(NULL_REF));
            rec.insert("VBDs".into(), XVal::Array(Vec::new()));
            let new = db.insert("VM", rec);
            for vbd in refs_of(&src, "VBDs") {
                let Some(v) = db.get("VBD", &vbd).cloned() else {
                    continue;
                };
                let kind = text(&v, "type");
                let mut vdi = text(&v, "VDI");
                if kind == "Disk" && vdi != NULL_REF {
                    if let Some(src_vdi) = db.get("VDI", &vdi).cloned() {
                        let mut copy = src_vdi.clone();
                        copy.insert("uuid".into(), XVal::Str(super::db::new_uuid()));
                        copy.insert("VBDs".into(), XVal::Array(Vec::new()));
                        vdi = db.insert("VDI", copy);
                        let sr = text(&src_vdi, "SR");
                        push_ref(db, "SR", &sr, "VDIs", &vdi);
                    }
                }
                let device = text(&v, "userdevice");
                let new_vbd = db.insert(
                    "VBD",
                    records::vbd(&new, &vdi, &kind, &device, flag(&v, "bootable")),
                );
                if vdi != NULL_REF {
                    push_ref(db, "VDI", &vdi, "VBDs", &new_vbd);
                }
                push_ref(db, "VM", &new, "VBDs", &new_vbd);
            }
            Ok(XVal::Str(new))
        })
    }

    fn vm_provision(&self, method: &str, args: &[XVal]) -> Reply {
        let [vm] = arity::<1>(method, args)?;
        let vm = vm.as_str().unwrap_or("").to_string();
        let default_sr = self.default_sr.clone();
        self.write(|db| {
            let rec = vm_record(db, &vm)?;
            require_power(&rec, &vm, &["Halted"], "halted")?;
            let spec = rec
                .get("other_config")
                .and_then(XVal::as_struct)
                .and_then(|m| m.get("disks"))
                .and_then(XVal::as_str)
                .map(str::to_string);
            db.modify("VM", &vm, |r| {
                r.insert("is_a_template".into(), XVal::Bool(false));
            });
            if let Some(spec) = spec {
                let disks = parse_disks(&spec)
                    .map_err(|e| internal(&format!("bad provision spec: {e}")))?;
                for (device, size, sr_uuid, bootable) in disks {
                    let sr = db
                        .find("SR", "uuid", &sr_uuid)
                        .into_iter()
                        .next()
                        .unwrap_or(default_sr.clone());
                    let vdi = db.insert(
                        "VDI",
                        records::vdi(
                            &format!("{} disk {device}", text(&rec, "name_label")),
                            size,
                            &sr,
                        ),
                    );
                    let vbd = db.insert("VBD", records::vbd(&vm, &vdi, "Disk", &device, bootable));
                    push_ref(db, "VDI", &vdi, "VBDs", &vbd);
                    push_ref(db, "VM", &vm, "VBDs", &vbd);
                    push_ref(db, "SR", &sr, "VDIs", &vdi);
                }
                db.modify("VM", &vm, |r| {
                    if let Some(XVal::Struct(m)) = r.get_mut("other_config") {
                        m.remove("disks");
                    }
                });
            }
            Ok(XVal::str(""))
        })
    }

    fn vm_start(self: &Arc<Self>, method: &str, args: &[XVal]) -> Reply {
        let [vm, paused, force] = arity::<3>(method, args)?;
        if paused.as_bool().is_none() || force.as_bool().is_none() {
            return Err(internal("start_paused and force must be booleans"));
        }
        let vm = vm.as_str().unwrap_or("").to_string();
        let host = self.host.clone();
        let domid = self.next_domid.fetch_add(1, Ordering::Relaxed);
        self.write(|db| {
            let rec = vm_record(db, &vm)?;
            if flag(&rec, "is_a_template") {
                return Err(fail("VM_IS_TEMPLATE", &[&vm, "start"]));
            }
            require_power(&rec, &vm, &["Halted"], "halted")?;
            db.modify("VM", &vm, |r| {
                r.insert("power_state".into(), XVal::str("Running"));
                r.insert("resident_on".into(), XVal::Str(host.clone()));
                r.insert("domid".into(), XVal::Int(domid));
            });
            let metrics = text(&rec, "metrics");
            db.modify("VM_metrics", &metrics, |r| {
                r.insert("start_time".into(), XVal::DateTime(records::now()));
            });
            push_ref(db, "host", &host, "resident_VMs", &vm);
            Ok(())
        })?;
        // The guest agent reports its network a little after boot.
        let sim = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(sim.options.boot_delay).await;
            let ip = match &sim.options.guests {
                Some(config) => sim.start_guest(&vm, config.clone()).await,
                None => sim.options.guest_ip.clone(),
            };
            let booted = sim.write(|db| {
                let still_booted = db.field("VM", &vm, "domid").and_then(XVal::as_int)
                    == Some(domid)
                    && db.str_field("VM", &vm, "power_state") == "Running";
                if still_booted {
                    let gm = db.insert("VM_guest_metrics", records::guest_metrics(&ip));
                    db.modify("VM", &vm, |r| {
                        r.insert("guest_metrics".into(), XVal::Str(gm));
                    });
                }
                still_booted
            });
            // Halted while its SSH server started: no guest to answer.
            if !booted {
                sim.stop_guest(&vm);
            }
        });
        Ok(XVal::str(""))
    }

    fn vm_shutdown(&self, method: &str, args: &[XVal], hard: bool) -> Reply {
        let [vm] = arity::<1>(method, args)?;
        let vm = vm.as_str().unwrap_or("").to_string();
        let host = self.host.clone();
        self.write(|db| {
            let rec = vm_record(db, &vm)?;
            if flag(&rec, "is_a_template") {
                return Err(fail(
                    "VM_IS_TEMPLATE",
                    &[
                        &vm,
                        if hard {
                            "hard_shutdown"
                        } else {
                            "clean_shutdown"
                        },
                    ],
                ));
            }
            let power = text(&rec, "power_state");
            let allowed: &[&str] = if hard {
                &["Running", "Paused", "Suspended"]
            } else {
                &["Running"]
            };
            if !allowed.contains(&power.as_str()) {
                let expected = if hard {
                    "running, paused, suspended"
                } else {
                    "running"
                };
                return Err(fail(
                    "VM_BAD_POWER_STATE",
                    &[&vm, expected, &power.to_lowercase()],
                ));
            }
            let gm = text(&rec, "guest_metrics");
            if gm != NULL_REF {
                db.delete("VM_guest_metrics", &gm);
            }
            db.modify("VM", &vm, |r| {
                r.insert("power_state".into(), XVal::str("Halted"));
                r.insert("resident_on".into(), XVal::str(NULL_REF));
                r.insert("domid".into(), XVal::Int(-1));
                r.insert("guest_metrics".into(), XVal::str(NULL_REF));
            });
            remove_ref(db, "host", &host, "resident_VMs", &vm);
            Ok(XVal::str(""))
        })
        .inspect(|_| self.stop_guest(&vm))
    }

    fn vm_destroy(&self, method: &str, args: &[XVal]) -> Reply {
        let [vm] = arity::<1>(method, args)?;
        let vm = vm.as_str().unwrap_or("").to_string();
        self.write(|db| {
            let rec = vm_record(db, &vm)?;
            if flag(&rec, "is_default_template") {
                return Err(fail("VM_CANNOT_DELETE_DEFAULT_TEMPLATE", &[&vm]));
            }
            if flag(&rec, "is_control_domain") {
                return Err(fail(
                    "OPERATION_NOT_ALLOWED",
                    &["This operation is not allowed on dom0"],
                ));
            }
            let power = text(&rec, "power_state");
            if power != "Halted" && power != "Suspended" {
                return Err(fail(
                    "VM_BAD_POWER_STATE",
                    &[&vm, "halted, suspended", &power.to_lowercase()],
                ));
            }
            // VBDs, metrics and guest metrics go with the VM; VDIs stay.
            for vbd in refs_of(&rec, "VBDs") {
                let vdi = db.str_field("VBD", &vbd, "VDI");
                if vdi != NULL_REF {
                    remove_ref(db, "VDI", &vdi, "VBDs", &vbd);
                }
                db.delete("VBD", &vbd);
            }
            for field in ["metrics", "guest_metrics"] {
                let r = text(&rec, field);
                if r != NULL_REF {
                    db.delete(
                        if field == "metrics" {
                            "VM_metrics"
                        } else {
                            "VM_guest_metrics"
                        },
                        &r,
                    );
                }
            }
            db.delete("VM", &vm);
            Ok(XVal::str(""))
        })
    }

    fn vm_memory(&self, method: &str, args: &[XVal]) -> Reply {
        let [vm, smin, smax, dmin, dmax] = arity::<5>(method, args)?;
        let vm = vm.as_str().unwrap_or("").to_string();
        let ints: Option<Vec<i64>> = [smin, smax, dmin, dmax]
            .iter()
            .map(|v| v.as_int())
            .collect();
        let [smin, smax, dmin, dmax] =
            ints.ok_or_else(|| internal("memory limits must be integers"))?[..]
        else {
            unreachable!()
        };
        self.write(|db| {
            self.halted(db, &vm)?;
            if !(smin <= dmin && dmin <= dmax && dmax <= smax) {
                return Err(fail("MEMORY_CONSTRAINT_VIOLATION_ORDER", &[]));
            }
            // This pool has no dynamic memory control: limits must be pinned.
            if !(dmin == dmax && dmax == smax) {
                return Err(fail(
                    "MEMORY_CONSTRAINT_VIOLATION_MAXPIN",
                    &["Memory limits must satisfy: dynamic_min = dynamic_max = static_max"],
                ));
            }
            db.modify("VM", &vm, |r| {
                r.insert("memory_static_min".into(), XVal::Int(smin));
                r.insert("memory_static_max".into(), XVal::Int(smax));
                r.insert("memory_dynamic_min".into(), XVal::Int(dmin));
                r.insert("memory_dynamic_max".into(), XVal::Int(dmax));
            });
            Ok(XVal::str(""))
        })
    }

    fn vm_vcpus(&self, method: &str, args: &[XVal], max: bool) -> Reply {
        let [vm, value] = arity::<2>(method, args)?;
        let vm = vm.as_str().unwrap_or("").to_string();
        let n = value
            .as_int()
            .ok_or_else(|| internal("VCPU count must be an integer"))?;
        self.write(|db| {
            self.halted(db, &vm)?;
            let field = |f: &str| db.field("VM", &vm, f).and_then(XVal::as_int).unwrap_or(1);
            let (at_startup, vcpus_max) = if max {
                (field("VCPUs_at_startup"), n)
            } else {
                (n, field("VCPUs_max"))
            };
            if !(0 < at_startup && at_startup <= vcpus_max) {
                return Err(fail(
                    "INVALID_VALUE",
                    &[
                        "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max",
                        &n.to_string(),
                    ],
                ));
            }
            db.modify("VM", &vm, |r| {
                r.insert(
                    if max { "VCPUs_max" } else { "VCPUs_at_startup" }.into(),
                    XVal::Int(n),
                );
            });
            Ok(XVal::str(""))
        })
    }

    fn vm_set(&self, method: &str, name: &str, args: &[XVal]) -> Reply {
        let [vm, value] = arity::<2>(method, args)?;
        let vm = vm.as_str().unwrap_or("").to_string();
        let field = name.trim_start_matches("set_").to_string();
        let value = if field == "is_a_template" {
            XVal::Bool(
                value
                    .as_bool()
                    .ok_or_else(|| internal("value must be a boolean"))?,
            )
        } else {
            XVal::str(value.as_str().unwrap_or(""))
        };
        self.write(|db| {
            if db.modify("VM", &vm, |r| {
                r.insert(field, value);
            }) {
                Ok(XVal::str(""))
            } else {
                Err(fail("HANDLE_INVALID", &["VM", &vm]))
            }
        })
    }

    fn vdi_destroy(&self, method: &str, args: &[XVal]) -> Reply {
        let [vdi] = arity::<1>(method, args)?;
        let vdi = vdi.as_str().unwrap_or("").to_string();
        self.write(|db| {
            let rec = db
                .get("VDI", &vdi)
                .cloned()
                .ok_or_else(|| fail("HANDLE_INVALID", &["VDI", &vdi]))?;
            if !refs_of(&rec, "VBDs").is_empty() {
                return Err(fail("VDI_IN_USE", &[&vdi, "destroy"]));
            }
            let sr = text(&rec, "SR");
            remove_ref(db, "SR", &sr, "VDIs", &vdi);
            db.delete("VDI", &vdi);
            Ok(XVal::str(""))
        })
    }

    fn halted(&self, db: &Db, vm: &str) -> Result<(), Vec<String>> {
        require_power(&vm_record(db, vm)?, vm, &["Halted"], "halted")
    }
}

/// Takes exactly `N` arguments (after the session), as xapi's generated server does.
fn arity<'a, const N: usize>(method: &str, args: &'a [XVal]) -> Result<[&'a XVal; N], Vec<String>> {
    if args.len() != N {
        return Err(fail(
            "MESSAGE_PARAMETER_COUNT_MISMATCH",
            &[method, &(N + 1).to_string(), &(args.len() + 1).to_string()],
        ));
    }
    Ok(std::array::from_fn(|i| &args[i]))
}

/// A copy of a VM's record, or xapi's `HANDLE_INVALID`.
fn vm_record(db: &Db, vm: &str) -> Result<Record, Vec<String>> {
    db.get("VM", vm)
        .cloned()
        .ok_or_else(|| fail("HANDLE_INVALID", &["VM", vm]))
}

/// xapi's `VM_BAD_POWER_STATE [vm, expected, actual]` unless the VM is in one of
/// `allowed`; states are reported in lower case.
fn require_power(
    rec: &Record,
    vm: &str,
    allowed: &[&str],
    expected: &str,
) -> Result<(), Vec<String>> {
    let power = text(rec, "power_state");
    if allowed.contains(&power.as_str()) {
        Ok(())
    } else {
        Err(fail(
            "VM_BAD_POWER_STATE",
            &[vm, expected, &power.to_lowercase()],
        ))
    }
}

fn internal(msg: &str) -> Vec<String> {
    fail("INTERNAL_ERROR", &[msg])
}

fn flag(rec: &Record, field: &str) -> bool {
    rec.get(field).and_then(XVal::as_bool).unwrap_or(false)
}

fn text(rec: &Record, field: &str) -> String {
    rec.get(field)
        .and_then(XVal::as_str)
        .unwrap_or("")
        .to_string()
}

fn refs_of(rec: &Record, field: &str) -> Vec<String> {
    rec.get(field)
        .and_then(XVal::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn push_ref(db: &mut Db, class: &'static str, owner: &str, field: &str, r: &str) {
    db.modify(class, owner, |rec| {
        if let Some(XVal::Array(a)) = rec.get_mut(field) {
            a.push(XVal::str(r));
        }
    });
}

fn remove_ref(db: &mut Db, class: &'static str, owner: &str, field: &str, r: &str) {
    db.modify(class, owner, |rec| {
        if let Some(XVal::Array(a)) = rec.get_mut(field) {
            a.retain(|v| v.as_str() != Some(r));
        }
    });
}

/// `(device, size, sr uuid, bootable)` of each `<disk>` in a provision spec.
fn parse_disks(spec: &str) -> Result<Vec<(String, i64, String, bool)>, String> {
    let doc = roxmltree::Document::parse(spec).map_err(|e| e.to_string())?;
    doc.descendants()
        .filter(|n| n.has_tag_name("disk"))
        .map(|d| {
            let size = d
                .attribute("size")
                .unwrap_or("0")
                .parse()
                .map_err(|_| "bad disk size".to_string())?;
            Ok((
                d.attribute("device").unwrap_or("0").to_string(),
                size,
                d.attribute("sr").unwrap_or("").to_string(),
                d.attribute("bootable") == Some("true"),
            ))
        })
        .collect()
}
