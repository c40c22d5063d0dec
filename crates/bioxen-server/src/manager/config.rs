//! What the manager applies to new sessions, taken from `bioxen.toml`.

use super::*;

/// Defaults the manager applies to new sessions, taken from `bioxen.toml`.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// Hosts `ssh` VMs connect to.
    pub ssh_hosts: Vec<bioxen_config::SshHost>,
    /// The pools `xcpng` VMs are created on; the first is the default.
    pub xcpng: Vec<bioxen_config::XcpngConfig>,
    /// Who decides about unknown SSH host keys and key passphrases.
    pub trust: bioxen_backend::vm::ssh::Trust,
    /// How long a new pool VM may take to report its IP.
    pub xcpng_ip_timeout: Duration,
    /// The luarocks tree local VMs share.
    pub rocks_tree: PathBuf,
    /// Where luarocks looks for rocks (URLs or directories), tried in order.
    pub rocks_servers: Vec<String>,
    /// The local interpreter's command line; empty runs `self_exe lua`.
    pub local_command: Vec<String>,
    /// The bioxen binary, whose `lua` subcommand is the default interpreter.
    pub self_exe: PathBuf,
    pub local_env: Vec<(String, String)>,
    pub local_cwd: Option<PathBuf>,
    pub scrollback: usize,
    pub scrollback_bytes: usize,
    /// Where sessions' output logs go, and whether every session has one from its
    /// start (the server's default; a manager inside another command logs only what
    /// `L` turns on).
    pub logs: crate::persist::log_writer::LogPolicy,
    /// What a server started after a crash does with local VMs (`[local] restore`).
    pub local_restore: bioxen_proto::Restore,
    /// Seconds of silence (while not at the prompt) before a silence alert; 0 is off.
    pub silence_secs: u64,
}

impl ManagerConfig {
    pub fn from_config(config: &Config) -> Result<Self> {
        let local_command = if config.local.command.trim().is_empty() {
            Vec::new()
        } else {
            shell_words::split(&config.local.command)
                .map_err(|e| Error::Manager(format!("local.command: {e}")))?
        };
        Ok(ManagerConfig {
            ssh_hosts: config.ssh_hosts.clone(),
            xcpng: config.xcpng.clone(),
            trust: bioxen_backend::vm::ssh::Trust::default(),
            xcpng_ip_timeout: Duration::from_secs(180),
            rocks_tree: bioxen_backend::rocks::local_tree(config.local.rocks_tree.as_deref()),
            rocks_servers: config.rocks_servers.clone(),
            local_command,
            self_exe: std::env::current_exe()?,
            local_env: config
                .local
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            local_cwd: config.local.cwd.as_deref().map(bioxen_config::expand_home),
            scrollback: config.ui.scrollback,
            scrollback_bytes: config.ui.scrollback_bytes,
            logs: crate::persist::log_writer::LogPolicy {
                dir: config
                    .output_log_dir()
                    .join(format!("pid-{}", std::process::id())),
                enabled: false,
                max_bytes: config.logs.max_mib << 20,
                keep: config.logs.keep,
            },
            local_restore: config.local.restore,
            silence_secs: config.ui.silence,
        })
    }

    /// The argv a new local VM runs, honouring an override from the caller.
    pub fn local_argv(&self, command: Option<&[String]>) -> Vec<String> {
        if let Some(cmd) = command.filter(|c| !c.is_empty()) {
            return cmd.to_vec();
        }
        if !self.local_command.is_empty() {
            return self.local_command.clone();
        }
        vec![self.self_exe.to_string_lossy().into_owned(), "lua".into()]
    }

    /// What a local VM's interpreter gets on top of bioxen's environment: the
    /// configured variables, the caller's, and the luarocks paths (so `require` finds
    /// installed packages at once, even while it runs).
    pub fn local_vm_env(&self, extra: &[(String, String)], id: &str) -> Vec<(String, String)> {
        let mut env = self.local_env.clone();
        env.extend(extra.iter().cloned());
        let rocks = bioxen_backend::rocks::local_env(&self.rocks_tree, &env);
        env.retain(|(k, _)| !rocks.iter().any(|(r, _)| r == k));
        env.extend(rocks);
        env.push(("BIOXEN_VM".into(), id.to_string()));
        env
    }

    /// Whether `argv` runs bioxen's own REPL, which marks its prompts itself and has
    /// the `bioxen` module built in.
    pub fn is_embedded(&self, argv: &[String]) -> bool {
        argv.len() >= 2 && Path::new(&argv[0]) == self.self_exe && argv[1] == "lua"
    }

    /// Variables of bioxen's own environment that a VM does not get: the ones that hold
    /// pool and host passwords, and bioxen's own settings. Everything else a VM
    /// inherits, as a shell in a tmux pane does: PATH, HOME, LANG, LUA_PATH and the like
    /// are what a researcher's Lua expects to find.
    /// The pool named `name` (the first when `None`), or why there is none.
    pub fn pool(&self, name: Option<&str>) -> Result<&bioxen_config::XcpngConfig> {
        let found = match name {
            Some(name) => self.xcpng.iter().find(|p| p.name == name),
            None => self.xcpng.first(),
        };
        found.ok_or_else(|| {
            let names: Vec<&str> = self.xcpng.iter().map(|p| p.name.as_str()).collect();
            Error::Manager(match name {
                Some(name) if !names.is_empty() => format!(
                    "no pool is named '{name}' in bioxen.toml; the pools are: {}",
                    names.join(", ")
                ),
                _ => "xcpng VMs need an [xcpng] section in bioxen.toml".into(),
            })
        })
    }

    pub fn secret_env(&self) -> Vec<String> {
        self.xcpng
            .iter()
            .filter_map(|x| x.password_env.clone())
            .chain(self.ssh_hosts.iter().filter_map(|h| h.password_env.clone()))
            .chain(["BIOXEN_LOG", "BIOXEN_TEST_PANIC"].map(String::from))
            .collect()
    }
}
