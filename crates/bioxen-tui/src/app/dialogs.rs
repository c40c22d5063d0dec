//! Dialogs: creating a VM, installing a package, SSH questions, and the confirmations
//! before killing, restarting or quitting; the keys in them and the calls they make.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallForm {
    pub target: Target,
    pub name: String,
    pub version: String,
    /// 0: name, 1: version.
    pub field: usize,
    /// Why the last Enter was refused (an invalid name).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallProgress {
    pub vm: VmId,
    pub package: String,
    /// luarocks' output so far.
    pub output: String,
    /// `(success, summary)` once it finished.
    pub done: Option<(bool, String)>,
}

/// A kind of VM the create dialog offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindChoice {
    Local,
    /// An `[[ssh_hosts]]` entry, by name.
    Ssh(String),
    /// A new VM on a pool, by the pool's name.
    Xcpng(String),
}

impl KindChoice {
    pub fn label(&self) -> String {
        match self {
            KindChoice::Local => "local".into(),
            KindChoice::Ssh(name) => format!("ssh: {name}"),
            KindChoice::Xcpng(pool) => format!("xcpng on {pool} (new pool VM)"),
        }
    }
}

/// The fields of the create dialog, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Kind,
    Name,
    Template,
    Memory,
    Vcpus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateForm {
    pub kinds: Vec<KindChoice>,
    pub kind: usize,
    pub name: String,
    /// The generated name used when `name` is left empty.
    pub placeholder: String,
    pub field: Field,
    pub template: String,
    pub memory: String,
    pub vcpus: String,
}

impl CreateForm {
    pub fn choice(&self) -> &KindChoice {
        self.kinds.get(self.kind).unwrap_or(&KindChoice::Local)
    }

    /// The fields shown for the chosen kind.
    pub fn fields(&self) -> Vec<Field> {
        match self.choice() {
            KindChoice::Xcpng(_) => vec![
                Field::Kind,
                Field::Name,
                Field::Template,
                Field::Memory,
                Field::Vcpus,
            ],
            _ => vec![Field::Kind, Field::Name],
        }
    }

    fn text_mut(&mut self) -> Option<&mut String> {
        match self.field {
            Field::Kind => None,
            Field::Name => Some(&mut self.name),
            Field::Template => Some(&mut self.template),
            Field::Memory => Some(&mut self.memory),
            Field::Vcpus => Some(&mut self.vcpus),
        }
    }

    /// Whether `c` may be typed into `field`.
    fn field_accepts(field: Field, c: char) -> bool {
        match field {
            Field::Kind => false,
            Field::Name => text_field::name_char(c),
            Field::Template => !c.is_control(),
            Field::Memory | Field::Vcpus => c.is_ascii_digit(),
        }
    }
}

/// An SSH question waiting for the user (asked by the server, answered by whichever
/// dashboard answers first).
pub struct Prompt {
    pub id: u64,
    pub question: SshQuestion,
    /// What has been typed (a passphrase; never drawn in clear).
    pub input: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    Kill {
        target: Target,
        pid: Option<u32>,
    },
    /// Kill or remove an `xcpng` session: destroy its pool VM, or only close the session.
    KillPool {
        target: Target,
        alive: bool,
    },
    Remove {
        target: Target,
    },
    /// Restart a VM that is still running: end it first.
    Restart {
        target: Target,
    },
    /// Run an experiment again from the start, in dependency order.
    RestartExperiment {
        name: String,
        vms: usize,
        running: usize,
    },
    /// End every VM of an experiment and forget them (`bioxen down`).
    EndExperiment {
        name: String,
        vms: usize,
        running: usize,
    },
    /// An experiment file started again changed these VMs' specs: restart them with
    /// the new spec, or leave them running as they are.
    UpChanged {
        path: std::path::PathBuf,
        name: String,
        changed: Vec<String>,
    },
    /// Leaving the dashboard with VMs running: leave them in the server (the default)
    /// or end them. Counts local VMs and remote sessions.
    Quit {
        running: usize,
        remote: usize,
        /// How many of them another dashboard is attached to: ending them ends its
        /// sessions too.
        elsewhere: usize,
    },
}

impl App {
    pub(super) fn on_overlay_key(&mut self, key: KeyEvent) {
        let Some(overlay) = self.overlay.take() else {
            return;
        };
        match overlay {
            Overlay::Help { scroll } => {
                let step: i32 = match key.code {
                    KeyCode::Down | KeyCode::Char('j') => 1,
                    KeyCode::Up | KeyCode::Char('k') => -1,
                    KeyCode::PageDown | KeyCode::Char(' ') => 10,
                    KeyCode::PageUp => -10,
                    KeyCode::Home | KeyCode::Char('g') => -i32::from(u16::MAX),
                    KeyCode::End | KeyCode::Char('G') => i32::from(u16::MAX),
                    // Esc, q and any other key close it.
                    _ => return,
                };
                let max = i32::from(self.help_max_scroll());
                let scroll = (i32::from(scroll) + step).clamp(0, max) as u16;
                self.overlay = Some(Overlay::Help { scroll });
            }
            Overlay::Create(mut form) => {
                let fields = form.fields();
                let pos = fields.iter().position(|f| *f == form.field).unwrap_or(0);
                match key.code {
                    KeyCode::Esc => return,
                    KeyCode::Enter => return self.create(form),
                    KeyCode::Up | KeyCode::BackTab => {
                        form.field = fields[(pos + fields.len() - 1) % fields.len()]
                    }
                    KeyCode::Down | KeyCode::Tab => form.field = fields[(pos + 1) % fields.len()],
                    KeyCode::Left | KeyCode::Right
                        if form.field == Field::Kind && !form.kinds.is_empty() =>
                    {
                        let n = form.kinds.len();
                        form.kind = if key.code == KeyCode::Left {
                            (form.kind + n - 1) % n
                        } else {
                            (form.kind + 1) % n
                        };
                        // Each pool has its own template and sizes.
                        if let KindChoice::Xcpng(pool) = form.choice()
                            && let Some((template, memory, vcpus)) = self.xcpng_defaults.get(pool)
                        {
                            form.template = template.clone();
                            form.memory = memory.to_string();
                            form.vcpus = vcpus.to_string();
                        }
                    }
                    _ => {
                        let field = form.field;
                        let accepts = |c: char| CreateForm::field_accepts(field, c);
                        if let Some(text) = form.text_mut() {
                            text_field::edit(text, &key, accepts, 64);
                        }
                    }
                }
                self.overlay = Some(Overlay::Create(form));
            }
            Overlay::Install(mut form) => {
                match key.code {
                    KeyCode::Esc => return,
                    KeyCode::Enter => return self.install(form),
                    KeyCode::Tab | KeyCode::Down | KeyCode::Up | KeyCode::BackTab => {
                        form.field = 1 - form.field
                    }
                    _ => {
                        let text = if form.field == 0 {
                            &mut form.name
                        } else {
                            &mut form.version
                        };
                        text_field::edit(text, &key, |_| true, 100);
                    }
                }
                self.overlay = Some(Overlay::Install(form));
            }
            Overlay::Chooser(chooser) => self.on_chooser_key(chooser, key),
            Overlay::SearchAll(found) => self.on_search_all_key(found, key),
            Overlay::Load(form) => self.on_load_key(form, key),
            Overlay::GoToTab { mut number } => match key.code {
                KeyCode::Esc => {}
                KeyCode::Enter => {
                    if let Ok(index) = number.parse::<usize>() {
                        self.select_tab(index);
                    }
                }
                _ => {
                    text_field::edit(&mut number, &key, |c| c.is_ascii_digit(), 6);
                    self.overlay = Some(Overlay::GoToTab { number });
                }
            },
            Overlay::Rename(mut form) => match key.code {
                KeyCode::Esc => {}
                KeyCode::Enter if form.name == form.target.name => {}
                KeyCode::Enter if form.name.is_empty() => {
                    form.error = Some("a name cannot be empty".into());
                    self.overlay = Some(Overlay::Rename(form));
                }
                KeyCode::Enter if !form.pending => {
                    form.pending = true;
                    form.error = None;
                    self.call(Call::Rename {
                        target: form.target.clone(),
                        new: form.name.clone(),
                    });
                    self.overlay = Some(Overlay::Rename(form));
                }
                _ => {
                    if !form.pending
                        && text_field::edit(&mut form.name, &key, text_field::name_char, 64)
                    {
                        form.error = None;
                    }
                    self.overlay = Some(Overlay::Rename(form));
                }
            },
            Overlay::Progress(p) => {
                // Esc hides a running install (it goes on, a message says how it ended);
                // any key closes a finished one.
                if p.done.is_none() && key.code != KeyCode::Esc {
                    self.overlay = Some(Overlay::Progress(p));
                }
            }
            Overlay::Confirm(Confirm::KillPool { target, alive }) => match key.code {
                KeyCode::Char('d') | KeyCode::Char('D') => self.stop_pool_session(target, true),
                KeyCode::Char('c') | KeyCode::Char('C') => self.stop_pool_session(target, false),
                KeyCode::Esc | KeyCode::Char('n') => {}
                _ => self.overlay = Some(Overlay::Confirm(Confirm::KillPool { target, alive })),
            },
            Overlay::Confirm(quit @ Confirm::Quit { .. }) => match key.code {
                KeyCode::Enter | KeyCode::Char('l') | KeyCode::Char('L') => self.quit = true,
                KeyCode::Char('e') | KeyCode::Char('E') => self.end_all_and_quit(),
                KeyCode::Esc | KeyCode::Char('n') => {}
                _ => self.overlay = Some(Overlay::Confirm(quit)),
            },
            Overlay::Confirm(confirm) => {
                let yes = matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y'));
                let no = matches!(
                    key.code,
                    KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc
                );
                if yes {
                    self.confirmed(confirm);
                } else if !no {
                    self.overlay = Some(Overlay::Confirm(confirm));
                }
            }
        }
    }

    pub(super) fn open_create(&mut self) {
        let first_pool = self.kinds.iter().find_map(|k| match k {
            KindChoice::Xcpng(pool) => self.xcpng_defaults.get(pool),
            _ => None,
        });
        let (template, memory, vcpus) = first_pool.cloned().unwrap_or_default();
        self.overlay = Some(Overlay::Create(CreateForm {
            kinds: self.kinds.clone(),
            kind: 0,
            name: String::new(),
            placeholder: self.free_name(),
            field: Field::Kind,
            template,
            memory: memory.to_string(),
            vcpus: vcpus.to_string(),
        }));
    }

    /// The first `lua-N` no session is called: the name a VM created without one
    /// gets in the create dialog.
    pub(super) fn free_name(&self) -> String {
        (1..)
            .map(|n| format!("lua-{n}"))
            .find(|name| !self.rows.iter().any(|r| &r.name == name))
            .unwrap_or_default()
    }

    pub(super) fn create(&mut self, form: CreateForm) {
        let name = if form.name.is_empty() {
            form.placeholder.clone()
        } else {
            form.name.clone()
        };
        let mut options = CreateOptions {
            rows: Some(self.pane_size.rows),
            cols: Some(self.pane_size.cols),
            ..CreateOptions::default()
        };
        let kind = match form.choice() {
            KindChoice::Local => VmKind::Local,
            KindChoice::Ssh(host) => {
                options.host = Some(host.clone());
                VmKind::Ssh
            }
            KindChoice::Xcpng(pool) => {
                options.pool = Some(pool.clone());
                options.template = Some(form.template.clone()).filter(|t| !t.is_empty());
                options.memory_mib = form.memory.parse().ok().filter(|m| *m > 0);
                options.vcpus = form.vcpus.parse().ok().filter(|v| *v > 0);
                VmKind::Xcpng
            }
        };
        self.spawn_create(name, kind, options);
    }

    /// Creates a session in the background; the pane shows its progress meanwhile.
    pub(super) fn spawn_create(&mut self, name: String, kind: VmKind, options: CreateOptions) {
        self.set_message(format!("creating {name}..."), Level::Info);
        // Show the new session (and its progress) as soon as it is listed.
        self.creating = Some(name.clone());
        self.focus = Focus::Terminal;
        self.call(Call::Create {
            name,
            kind,
            options,
        });
    }

    /// Opens a Lua session on a pool VM bioxen created earlier.
    pub(super) fn attach_pool_vm(&mut self, vm: PoolVm) {
        let name = vm.bioxen_id.clone().unwrap_or_else(|| vm.name.clone());
        let Some(ip) = vm.ip.clone() else {
            self.set_message(
                format!(
                    "{name} is {} with no IP address yet; start it on the pool first",
                    vm.power_state.to_lowercase()
                ),
                Level::Error,
            );
            return;
        };
        let options = CreateOptions {
            rows: Some(self.pane_size.rows),
            cols: Some(self.pane_size.cols),
            pool_vm: Some((vm.reference.clone(), ip)),
            ..CreateOptions::default()
        };
        self.spawn_create(name, VmKind::Xcpng, options);
    }

    /// Ends an `xcpng` session, destroying its pool VM or leaving it running.
    pub(super) fn stop_pool_session(&mut self, target: Target, destroy: bool) {
        self.call(match destroy {
            true => Call::Destroy(target),
            false => Call::Release(target),
        });
        self.focus = Focus::List;
    }

    pub(super) fn open_install(&mut self) {
        match self.current_info() {
            Some(info) if info.state.is_alive() => {
                self.overlay = Some(Overlay::Install(InstallForm {
                    target: self.target(info.vm),
                    name: String::new(),
                    version: String::new(),
                    field: 0,
                    error: None,
                }));
            }
            Some(info) => {
                let text = format!(
                    "{} is {}: packages go into running VMs",
                    info.name,
                    info.state.label()
                );
                self.set_message(text, Level::Error);
            }
            None => self.set_message("select a VM to install into", Level::Error),
        }
    }

    /// Checks the name and starts luarocks; its output streams into a progress view.
    pub(super) fn install(&mut self, mut form: InstallForm) {
        let spec =
            match bioxen_proto::package::PackageSpec::new(form.name.trim(), Some(&form.version)) {
                Ok(spec) => spec,
                Err(e) => {
                    form.error = Some(e.to_string());
                    self.overlay = Some(Overlay::Install(form));
                    return;
                }
            };
        self.overlay = Some(Overlay::Progress(InstallProgress {
            vm: form.target.vm,
            package: spec.label(),
            output: String::new(),
            done: None,
        }));
        self.call(Call::Install {
            target: form.target,
            spec,
        });
    }

    pub(super) fn on_prompt_key(&mut self, key: KeyEvent) {
        let Some(prompt) = self.prompts.front_mut() else {
            return;
        };
        let answer = match (&prompt.question, key.code) {
            (SshQuestion::UnknownHostKey { .. }, KeyCode::Char('y')) => Some(SshAnswer::AcceptOnce),
            (SshQuestion::UnknownHostKey { .. }, KeyCode::Char('a')) => {
                Some(SshAnswer::AcceptAndRemember)
            }
            (SshQuestion::UnknownHostKey { .. }, KeyCode::Char('n') | KeyCode::Esc) => {
                Some(SshAnswer::Refuse)
            }
            (SshQuestion::Passphrase { .. }, KeyCode::Enter) => {
                Some(SshAnswer::Passphrase(std::mem::take(&mut prompt.input)))
            }
            (SshQuestion::Passphrase { .. }, KeyCode::Esc) => Some(SshAnswer::Refuse),
            (SshQuestion::Passphrase { .. }, _)
                if text_field::edit(&mut prompt.input, &key, |_| true, 1024) =>
            {
                None
            }
            (SshQuestion::Passphrase { .. }, KeyCode::Char(c))
                if !key.modifiers.contains(KeyModifiers::CONTROL) =>
            {
                prompt.input.push(c);
                None
            }
            _ => None,
        };
        if let Some(answer) = answer
            && let Some(prompt) = self.prompts.pop_front()
        {
            self.notify(Request::Answer {
                question: prompt.id,
                answer,
            });
        }
    }

    pub(super) fn ask_kill(&mut self) {
        let Some(info) = self.current_info() else {
            return;
        };
        let target = self.target(info.vm);
        let confirm = if info.pool_vm.is_some() {
            Confirm::KillPool {
                target,
                alive: info.state.is_alive(),
            }
        } else if info.state.is_alive() {
            Confirm::Kill {
                target,
                pid: info.pid,
            }
        } else {
            Confirm::Remove { target }
        };
        self.overlay = Some(Overlay::Confirm(confirm));
    }

    pub(super) fn restart_current(&mut self) {
        let Some(info) = self.current_info() else {
            return;
        };
        let target = self.target(info.vm);
        match (info.state.is_alive(), info.kind) {
            (false, _) => self.call(Call::Restart {
                target,
                running: false,
            }),
            // A pool VM's session ends through the pool dialog, which asks about the VM.
            (true, VmKind::Xcpng) => self.set_message(
                format!(
                    "{} is running on the pool; kill it first to restart",
                    target.name
                ),
                Level::Info,
            ),
            (true, _) => self.overlay = Some(Overlay::Confirm(Confirm::Restart { target })),
        }
    }

    pub(super) fn ask_quit(&mut self) {
        let alive = |kind: Option<VmKind>| {
            self.rows
                .iter()
                .filter(|r| {
                    r.state.is_alive()
                        && kind.is_none_or(|k| (r.kind == VmKind::Local) == (k == VmKind::Local))
                })
                .count()
        };
        let (running, remote) = (alive(Some(VmKind::Local)), alive(Some(VmKind::Ssh)));
        if running + remote == 0 {
            self.quit = true;
        } else if self.vms_end_on_quit {
            self.end_all_and_quit();
        } else {
            // The server counts this dashboard too while it types into a VM.
            let mine = (self.focus == Focus::Terminal)
                .then(|| self.current_vm())
                .flatten();
            let elsewhere = self
                .rows
                .iter()
                .filter(|r| r.state.is_alive() && r.attached && Some(r.vm) != mine)
                .count();
            self.overlay = Some(Overlay::Confirm(Confirm::Quit {
                running,
                remote,
                elsewhere,
            }));
        }
    }

    /// Ends every VM in the server, then quits.
    pub(super) fn end_all_and_quit(&mut self) {
        if self.quitting {
            return;
        }
        self.quitting = true;
        self.set_message("ending VMs...", Level::Info);
        self.call(Call::EndAll);
    }

    pub(super) fn confirmed(&mut self, confirm: Confirm) {
        match confirm {
            Confirm::Kill { target, .. } => {
                self.call(Call::Kill(target));
                self.focus = Focus::List;
            }
            // Answered with d or c in the dialog itself.
            Confirm::KillPool { .. } => {}
            Confirm::Remove { target } => self.call(Call::Remove(target)),
            Confirm::Restart { target } => self.call(Call::Restart {
                target,
                running: true,
            }),
            // Answered with Enter, l or e in the dialog itself.
            Confirm::Quit { .. } => {}
            Confirm::RestartExperiment { name, .. } => {
                let experiment = self.experiment_again(&name);
                self.call(Call::Rerun(experiment));
            }
            Confirm::EndExperiment { name, .. } => self.call(Call::Down(name)),
            Confirm::UpChanged { path, .. } => self.call(Call::Up { path, force: true }),
        }
    }
}
