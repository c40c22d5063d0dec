//! `bioxen.toml`: schema, search path and validation.
//!
//! Every problem is reported with the file, line, column and dotted key so that a typo
//! in a config written months ago is a one-line fix, not a hunt. Unknown keys are errors
//! (not silently ignored) because a misspelt `scrollbak` that does nothing is worse than
//! a refusal to start.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::ConfigError;

pub(crate) mod words;

/// Where the configuration came from, kept for messages and for relative paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Defaults,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub ui: UiConfig,
    pub server: ServerConfig,
    pub local: LocalConfig,
    pub logs: LogsConfig,
    /// The pools: one `[xcpng]` table, or several `[[xcpng]]` tables each with a
    /// `name`.
    #[serde(deserialize_with = "one_or_many")]
    pub xcpng: Vec<XcpngConfig>,
    pub ssh_hosts: Vec<SshHost>,
    /// Key bindings that override the defaults, by mode: `[keys.list]`, `[keys.prefix]`.
    pub keys: KeysConfig,
    /// Where luarocks looks for rocks: URLs or local directories.
    pub rocks_servers: Vec<String>,
    /// An experiment declared in bioxen.toml, read by [`crate::experiment::from_config`]
    /// when `bioxen up` is given no file.
    #[serde(rename = "vm")]
    pub experiment_vms: Vec<toml::Value>,
    pub experiment: Option<toml::Value>,
    #[serde(skip)]
    pub source: Option<Source>,
    /// Things worth telling the user that do not stop bioxen (a readable password).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ui: UiConfig::default(),
            server: ServerConfig::default(),
            local: LocalConfig::default(),
            logs: LogsConfig::default(),
            xcpng: Vec::new(),
            ssh_hosts: Vec::new(),
            keys: KeysConfig::default(),
            rocks_servers: Vec::new(),
            experiment_vms: Vec::new(),
            experiment: None,
            source: Some(Source::Defaults),
            warnings: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// The prefix key in terminal focus, tmux notation (`C-b`, `C-a`, `M-space`).
    pub prefix: Spanned<String>,
    /// Lines of scrollback kept per session.
    pub scrollback: usize,
    /// Bytes of scrollback kept per session, whatever the lines hold.
    pub scrollback_bytes: usize,
    /// Capture the mouse (wheel scrolls, clicks select). Shift-drag still selects text
    /// natively in most terminals.
    pub mouse: bool,
    /// Kept so older files still load: output logs are on unless `[logs] enabled =
    /// false`.
    pub output_log: bool,
    /// Directory for bioxen's own logs (and, unless `[logs] dir` says otherwise, the
    /// VMs' output logs under `logs/`); default `$XDG_STATE_HOME/bioxen`
    /// (`~/.local/state/bioxen`).
    pub log_dir: Option<String>,
    /// Seconds without output, while not at its prompt, after which a VM raises a
    /// silence alert (tmux's `monitor-silence`); 0 is off. `C-b M` sets it per VM.
    pub silence: u64,
    /// Alerts also sent to the user's own terminal as desktop notifications (OSC 9):
    /// `true` for all, or a list of `bell`, `exit`, `silence`, `idle`, `note`.
    pub notify: NotifySetting,
    /// Show the running VMs' overall progress in the user's terminal tab (OSC 9;4).
    pub progress: bool,
}

/// `[ui] notify`: `true`, `false`, or the kinds of alert to forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifySetting {
    All(bool),
    Only(Vec<AlertKind>),
}

/// By hand, not `untagged`: a wrong kind is named, with the kinds there are, where
/// serde would say only that no variant matched.
impl<'de> Deserialize<'de> for NotifySetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Setting;
        impl<'de> serde::de::Visitor<'de> for Setting {
            type Value = NotifySetting;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(
                    f,
                    "true, false, or a list of {}",
                    AlertKind::NAMES.join(", ")
                )
            }
            fn visit_bool<E>(self, all: bool) -> Result<NotifySetting, E> {
                Ok(NotifySetting::All(all))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<NotifySetting, A::Error> {
                let mut kinds = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    let kind = AlertKind::from_name(&name).ok_or_else(|| {
                        serde::de::Error::custom(format!(
                            "\"{name}\" is not a kind of alert; the kinds are {}",
                            AlertKind::NAMES.join(", ")
                        ))
                    })?;
                    kinds.push(kind);
                }
                Ok(NotifySetting::Only(kinds))
            }
        }
        d.deserialize_any(Setting)
    }
}

impl Default for NotifySetting {
    fn default() -> Self {
        NotifySetting::All(false)
    }
}

impl NotifySetting {
    pub fn includes(&self, kind: AlertKind) -> bool {
        match self {
            NotifySetting::All(all) => *all,
            NotifySetting::Only(kinds) => kinds.contains(&kind),
        }
    }
}

/// The kinds of alert a VM raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    /// The VM rang the bell.
    Bell,
    /// The VM ended.
    Exit,
    /// The VM printed nothing for `[ui] silence` seconds while busy.
    Silence,
    /// The interpreter came back to its prompt.
    Idle,
    /// The VM sent a notification (`bioxen.notify`, OSC 9 or OSC 777).
    Note,
}

impl AlertKind {
    /// The names `[ui] notify` takes, in the order the help gives them.
    pub const NAMES: [&str; 5] = ["bell", "exit", "silence", "idle", "note"];

    pub fn from_name(name: &str) -> Option<AlertKind> {
        Some(match name {
            "bell" => AlertKind::Bell,
            "exit" => AlertKind::Exit,
            "silence" => AlertKind::Silence,
            "idle" => AlertKind::Idle,
            "note" => AlertKind::Note,
            _ => return None,
        })
    }
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            prefix: Spanned::new(0..0, "C-b".to_string()),
            scrollback: 10_000,
            scrollback_bytes: bioxen_proto::DEFAULT_SCROLLBACK_BYTES,
            mouse: true,
            output_log: false,
            log_dir: None,
            silence: 0,
            notify: NotifySetting::default(),
            progress: true,
        }
    }
}

/// `[logs]`: every VM's output on disk, so that nothing it printed is lost with the
/// server, and `bioxen logs` can read it back.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Log every VM from its start (`L` still turns one VM's log off or on).
    pub enabled: bool,
    /// Where the logs go; default `logs/` in `[ui] log_dir`.
    pub dir: Option<String>,
    /// A VM's log is rotated when it reaches this size.
    pub max_mib: u64,
    /// Rotated files kept per VM, besides the one being written.
    pub keep: u32,
    /// The logs of VMs the server no longer has (removed, or made by an experiment
    /// since ended) are removed once nothing was written to them for this many days;
    /// 0 keeps them for ever. A log reads back with no server, so it outlives its VM,
    /// but not without bound.
    pub keep_days: u32,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            enabled: true,
            dir: None,
            max_mib: 64,
            keep: 3,
            keep_days: 30,
        }
    }
}

/// `[server]`: the background process that owns the VMs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Exit once no VM and no dashboard or command is left (tmux's `exit-empty`).
    pub exit_empty: bool,
    /// Where servers keep their journals, from which a server started after a crash
    /// or a reboot makes their VMs again; default `$XDG_STATE_HOME/bioxen/state`.
    pub state_dir: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            exit_empty: true,
            state_dir: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalConfig {
    /// Command line of the Lua interpreter, split like a shell would but never run
    /// through one. Empty means bioxen's embedded Lua 5.4 REPL.
    pub command: String,
    /// Working directory of new local VMs (default: where bioxen was started).
    pub cwd: Option<String>,
    /// Extra environment variables for local VMs.
    pub env: BTreeMap<String, String>,
    /// Where luarocks installs packages for local VMs (default
    /// `$XDG_DATA_HOME/bioxen/rocks`).
    pub rocks_tree: Option<String>,
    /// What a server started after a crash or a reboot does with the local VMs that
    /// were running: `ask` (wait for `r` or `bioxen up`), `rerun` or `never`. Their
    /// Lua state is gone either way.
    pub restore: bioxen_proto::Restore,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XcpngConfig {
    /// What the pool is called in the list and in `--pool`: required with several
    /// pools; a single one is `pool` unless named.
    #[serde(default = "default_pool_name")]
    pub name: String,
    pub url: String,
    #[serde(default = "default_root")]
    pub username: String,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub password_command: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default = "default_true")]
    pub tls_verify: bool,
    #[serde(default)]
    pub tls_fingerprint: String,
    #[serde(default = "default_template")]
    pub template: String,
    #[serde(default = "default_memory")]
    pub memory_mib: u64,
    #[serde(default = "default_vcpus")]
    pub vcpus: u32,
    /// How long `password_command` may take, in seconds.
    #[serde(default = "default_password_timeout")]
    pub password_timeout_secs: u64,
    /// The largest reply accepted from the pool, in MiB.
    #[serde(default = "default_reply_limit")]
    pub reply_limit_mib: u64,
    #[serde(default)]
    pub ssh: XcpngSsh,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct XcpngSsh {
    pub user: String,
    pub port: u16,
    pub identity: Option<String>,
    pub known_hosts: Option<String>,
    pub command: String,
    /// How long to keep trying the guest's sshd once its IP shows, in seconds: a
    /// guest's sshd starts a little after its network.
    pub wait_secs: u64,
    /// Run the interpreter under tmux, dtach or abduco when the guest has one.
    pub hold: bool,
}

impl Default for XcpngSsh {
    fn default() -> Self {
        XcpngSsh {
            user: default_root(),
            port: 22,
            identity: None,
            known_hosts: None,
            command: default_remote_lua(),
            wait_secs: 60,
            hold: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshHost {
    pub name: String,
    pub host: String,
    #[serde(default = "default_ssh_port")]
    pub port: u16,
    pub user: Option<String>,
    pub identity: Option<String>,
    pub known_hosts: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub password_command: Option<String>,
    #[serde(default = "default_remote_lua")]
    pub command: String,
    /// Run the interpreter under tmux, dtach or abduco when the host has one.
    #[serde(default = "default_true")]
    pub hold: bool,
}

/// Key overrides: action name → key (or list of keys), per mode.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    pub list: BTreeMap<String, Spanned<KeyList>>,
    pub prefix: BTreeMap<String, Spanned<KeyList>>,
}

/// One key or several, e.g. `"k"` or `["k", "Up"]`.
#[derive(Debug, Clone)]
pub enum KeyList {
    One(String),
    Many(Vec<String>),
}

/// By hand, not `untagged`, so that a wrong value says what a key looks like.
impl<'de> Deserialize<'de> for KeyList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = KeyList;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key in tmux notation, like \"c\" or \"C-a\", or a list of them")
            }
            fn visit_str<E>(self, key: &str) -> Result<KeyList, E> {
                Ok(KeyList::One(key.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<KeyList, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = seq.next_element::<String>()? {
                    keys.push(key);
                }
                Ok(KeyList::Many(keys))
            }
        }
        d.deserialize_any(Keys)
    }
}

impl KeyList {
    pub fn keys(&self) -> Vec<&str> {
        match self {
            KeyList::One(k) => vec![k.as_str()],
            KeyList::Many(ks) => ks.iter().map(String::as_str).collect(),
        }
    }
}

/// A password read from the config file. Its `Debug` never shows the value, so it
/// cannot leak through a log line or an error message.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

fn default_pool_name() -> String {
    DEFAULT_POOL.into()
}

/// The name of a pool configured without one.
pub const DEFAULT_POOL: &str = "pool";

/// `[xcpng]` as one pool, `[[xcpng]]` as several. The table or array is handed on as
/// it is read, so a wrong key inside still names its own line.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<XcpngConfig>, D::Error> {
    use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
    struct Pools;
    impl<'de> serde::de::Visitor<'de> for Pools {
        type Value = Vec<XcpngConfig>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an [xcpng] table, or [[xcpng]] tables")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            XcpngConfig::deserialize(MapAccessDeserializer::new(map)).map(|pool| vec![pool])
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            Vec::deserialize(SeqAccessDeserializer::new(seq))
        }
    }
    d.deserialize_any(Pools)
}

impl Config {
    /// The pool named `name`, or the first one configured when none is named.
    pub fn pool(&self, name: Option<&str>) -> Option<&XcpngConfig> {
        match name {
            Some(name) => self.xcpng.iter().find(|p| p.name == name),
            None => self.xcpng.first(),
        }
    }
}

fn default_root() -> String {
    "root".into()
}
fn default_true() -> bool {
    true
}
fn default_template() -> String {
    "lua-bio-template".into()
}
fn default_memory() -> u64 {
    1024
}
fn default_password_timeout() -> u64 {
    crate::secret::DEFAULT_TIMEOUT_SECS
}

/// The largest reply read from a pool unless configured otherwise: far above any real
/// XAPI answer (a pool's whole VM table is a few MiB), far below what hurts.
pub const DEFAULT_REPLY_LIMIT: usize = 64 << 20;

fn default_reply_limit() -> u64 {
    (DEFAULT_REPLY_LIMIT >> 20) as u64
}

fn default_vcpus() -> u32 {
    1
}
fn default_ssh_port() -> u16 {
    22
}
fn default_remote_lua() -> String {
    "lua5.4 -i".into()
}

impl Config {
    /// Finds and loads the configuration: `explicit` (from `--config`, must exist), else
    /// `./bioxen.toml`, else `$XDG_CONFIG_HOME/bioxen/bioxen.toml`; none means defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        if let Some(path) = explicit {
            return Config::from_file(path);
        }
        for candidate in search_path() {
            if candidate.is_file() {
                return Config::from_file(&candidate);
            }
        }
        Ok(Config::default())
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = read_config_text(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::parse(&text, path)?;
        if config.xcpng.iter().any(|x| x.password.is_some()) {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            if mode & 0o077 != 0 {
                config.warnings.push(format!(
                    "{} holds a password and others can read it (mode {:o}): chmod 600 it, or use password_env",
                    path.display(),
                    mode & 0o777
                ));
            }
        }
        Ok(config)
    }

    /// Parses `text` as if read from `path` (the path only appears in messages).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let span = e.span();
            invalid(path, text, span, words::plain(e.message()))
        })?;
        config.source = Some(Source::File(path.to_path_buf()));
        config.validate(text, path)?;
        crate::keymap::Keymap::build(&config, text, path)?;
        Ok(config)
    }

    /// Checks that go beyond types: ranges and values that must parse.
    fn validate(&self, text: &str, path: &Path) -> Result<(), ConfigError> {
        if self.ui.scrollback > 1_000_000 {
            return Err(invalid_key(
                path,
                text,
                "ui.scrollback",
                format!(
                    "{} lines is more than the 1000000 allowed",
                    self.ui.scrollback
                ),
            ));
        }
        if !self.local.command.trim().is_empty()
            && let Err(e) = shell_words::split(&self.local.command)
        {
            return Err(invalid_key(
                path,
                text,
                "local.command",
                format!("cannot split command line: {e}"),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, host) in self.ssh_hosts.iter().enumerate() {
            let err = |key: &str, message: String| {
                invalid_key_in(path, text, &format!("ssh_hosts.{key}"), i, message)
            };
            if !names.insert(host.name.as_str()) {
                return Err(err(
                    "name",
                    format!("two [[ssh_hosts]] are named '{}'", host.name),
                ));
            }
            if host.host.trim().is_empty() {
                return Err(err("host", "the host name is empty".into()));
            }
            if host.port == 0 {
                return Err(err("port", "port 0 is not a port to connect to".into()));
            }
        }
        let mut pools = std::collections::BTreeSet::new();
        for (i, x) in self.xcpng.iter().enumerate() {
            let invalid_key = |path: &Path, text: &str, key: &str, message: String| {
                invalid_key_in(path, text, key, i, message)
            };
            if self.xcpng.len() > 1 && !pools.insert(x.name.as_str()) {
                return Err(invalid_key(
                    path,
                    text,
                    "xcpng.name",
                    format!(
                        "two [[xcpng]] pools are named '{}': give each its own name",
                        x.name
                    ),
                ));
            }
            if x.name.trim().is_empty() || x.name.chars().any(char::is_control) {
                return Err(invalid_key(
                    path,
                    text,
                    "xcpng.name",
                    "a pool's name is what the list and --pool call it: it cannot be empty".into(),
                ));
            }
            let url = url::Url::parse(&x.url);
            match &url {
                Err(e) => {
                    return Err(invalid_key(
                        path,
                        text,
                        "xcpng.url",
                        format!("not a URL: {e}"),
                    ));
                }
                Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                    return Err(invalid_key(
                        path,
                        text,
                        "xcpng.url",
                        format!("the pool is reached over http or https, not {}", u.scheme()),
                    ));
                }
                Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                    return Err(invalid_key(
                        path,
                        text,
                        "xcpng.url",
                        "the host name is empty".into(),
                    ));
                }
                Ok(_) => {}
            }
            if let Err(e) = crate::tls::TlsMode::from_config(x.tls_verify, &x.tls_fingerprint) {
                return Err(invalid_key(
                    path,
                    text,
                    "xcpng.tls_fingerprint",
                    e.to_string(),
                ));
            }
            if !x.tls_fingerprint.is_empty() && url.is_ok_and(|u| u.scheme() == "http") {
                return Err(invalid_key(
                    path,
                    text,
                    "xcpng.tls_fingerprint",
                    "a certificate pin needs an https:// url: over http there is no certificate \
                     and the password would travel in clear"
                        .into(),
                ));
            }
            if x.ssh.port == 0 {
                return Err(invalid_key(
                    path,
                    text,
                    "xcpng.ssh.port",
                    "port 0 is not a port to connect to".into(),
                ));
            }
        }
        if !(1..=65_536).contains(&self.logs.max_mib) {
            return Err(invalid_key(
                path,
                text,
                "logs.max_mib",
                format!("{} MiB is not between 1 and 65536", self.logs.max_mib),
            ));
        }
        if self.logs.keep > 100 {
            return Err(invalid_key(
                path,
                text,
                "logs.keep",
                format!(
                    "{} rotated files is more than the 100 allowed",
                    self.logs.keep
                ),
            ));
        }
        Ok(())
    }

    /// The path this configuration was read from, if any.
    pub fn path(&self) -> Option<&Path> {
        match &self.source {
            Some(Source::File(p)) => Some(p),
            _ => None,
        }
    }

    /// The directory for bioxen's own log files.
    pub fn log_dir(&self) -> PathBuf {
        match &self.ui.log_dir {
            Some(dir) => expand_home(dir),
            None => state_home().join("bioxen"),
        }
    }

    /// The directory of the VMs' output logs: each server writes in a folder of its
    /// own inside it, named as its socket is (`server`, or `-L NAME`).
    pub fn output_log_dir(&self) -> PathBuf {
        match &self.logs.dir {
            Some(dir) => expand_home(dir),
            None => self.log_dir().join("logs"),
        }
    }

    /// Where servers keep what they must remember across a crash or a reboot (their
    /// journals): `[server] state_dir`, else `$XDG_STATE_HOME/bioxen/state`.
    pub fn state_dir(&self) -> PathBuf {
        match &self.server.state_dir {
            Some(dir) => expand_home(dir),
            None => state_home().join("bioxen").join("state"),
        }
    }
}

/// A config file is small text: anything larger is a mistake.
pub const CONFIG_SIZE_LIMIT: u64 = 1 << 20;

/// Reads a config file: a regular file of at most [`CONFIG_SIZE_LIMIT`] bytes. A FIFO
/// or a device (`/dev/zero`, `/dev/urandom`) would hang or fill memory, so it is
/// refused before anything is read from it.
fn read_config_text(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if meta.len() > CONFIG_SIZE_LIMIT {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} bytes is more than a config file can be ({CONFIG_SIZE_LIMIT})",
                meta.len()
            ),
        ));
    }
    let mut text = String::new();
    file.take(CONFIG_SIZE_LIMIT + 1).read_to_string(&mut text)?;
    Ok(text)
}

/// The config files looked for when `--config` is not given, in order.
pub fn search_path() -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::from("bioxen.toml")];
    paths.push(config_home().join("bioxen").join("bioxen.toml"));
    paths
}

fn config_home() -> PathBuf {
    xdg_dir("XDG_CONFIG_HOME", ".config")
}

fn state_home() -> PathBuf {
    xdg_dir("XDG_STATE_HOME", ".local/state")
}

fn xdg_dir(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => home_dir().join(fallback),
    }
}

pub fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// Expands a leading `~/` to the home directory.
pub fn expand_home(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => home_dir().join(rest),
        None if path == "~" => home_dir(),
        None => PathBuf::from(path),
    }
}

fn invalid(path: &Path, text: &str, span: Option<Range<usize>>, message: String) -> ConfigError {
    let offset = span.as_ref().map(|s| s.start).unwrap_or(0);
    let (line, column) = line_col(text, offset);
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        key: span.and_then(|_| key_at(text, offset)),
        message,
    }
}

/// An error about `dotted_key`, located at its first mention in the file.
fn invalid_key(path: &Path, text: &str, dotted_key: &str, message: String) -> ConfigError {
    invalid_key_in(path, text, dotted_key, 0, message)
}

/// Like [`invalid_key`], for the key in the `nth` table of that name (the nth
/// `[[ssh_hosts]]`); where the key is not written out, the table's header is named.
fn invalid_key_in(
    path: &Path,
    text: &str,
    dotted_key: &str,
    nth: usize,
    message: String,
) -> ConfigError {
    let (table, leaf) = dotted_key.rsplit_once('.').unwrap_or(("", dotted_key));
    let mut header = String::new();
    let mut seen = 0usize;
    let mut header_at = None;
    let mut found = None;
    let mut pos = 0usize;
    for line in text.lines() {
        let start = pos;
        pos += line.len() + 1;
        let t = line.trim_start();
        let indent = line.len() - t.len();
        if t.starts_with('[') {
            header = t
                .trim_end()
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            if header == table {
                seen += 1;
                if seen == nth + 1 {
                    header_at = Some(start + indent);
                }
            }
            continue;
        }
        if header == table
            && seen == nth + 1
            && t.starts_with(leaf)
            && t[leaf.len()..].trim_start().starts_with('=')
        {
            found = Some(start + indent);
            break;
        }
    }
    let offset = found.or(header_at).unwrap_or(0);
    let (line, column) = line_col(text, offset);
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        key: Some(dotted_key.to_string()),
        message,
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The dotted key (`ui.scrollback`) whose key or value sits at `offset`: the nearest
/// table header above plus the key on that line.
pub(crate) fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_end = text[offset..]
        .find('\n')
        .map(|i| offset + i)
        .unwrap_or(text.len());
    let line = &text[line_start..line_end];
    let trimmed = line.trim();
    if trimmed.starts_with('[') {
        return Some(
            trimmed
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_string(),
        );
    }
    let key = match line.find('=') {
        Some(eq) if line_start + eq >= offset || !line[..eq].trim().is_empty() => {
            line[..eq].trim().trim_matches('"').to_string()
        }
        _ => return None,
    };
    let table = text[..line_start].lines().rev().find_map(|l| {
        let t = l.trim();
        (t.starts_with('[') && !t.starts_with("[\""))
            .then(|| t.trim_matches(|c| c == '[' || c == ']').trim().to_string())
    });
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text, Path::new("/etc/x/bioxen.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_without_file() {
        let c = Config::parse("", Path::new("bioxen.toml")).unwrap();
        assert_eq!(c.ui.prefix.get_ref(), "C-b");
        assert_eq!(c.ui.scrollback, 10_000);
        assert!(c.local.command.is_empty());
        assert!(c.xcpng.is_empty());
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = err("[ui]\nprefix = \"C-a\"\nscrollbak = 5\n");
        assert!(
            e.starts_with("/etc/x/bioxen.toml:3:1: key `ui.scrollbak`"),
            "{e}"
        );
        assert!(e.contains("unknown key `scrollbak`"), "{e}");
    }

    #[test]
    fn wrong_type_names_file_line_and_key() {
        let e = err("[local]\ncommand = \"lua5.4\"\n\n[ui]\nscrollback = \"lots\"\n");
        assert!(e.starts_with("/etc/x/bioxen.toml:5:"), "{e}");
        assert!(e.contains("key `ui.scrollback`"), "{e}");
        assert!(
            e.contains("expected a whole number ≥ 0, found the string \"lots\""),
            "{e}"
        );
    }

    #[test]
    fn bad_prefix_key_is_located() {
        let e = err("[ui]\nprefix = \"C-\"\n");
        assert!(
            e.starts_with("/etc/x/bioxen.toml:2:10: key `ui.prefix`"),
            "{e}"
        );
    }

    #[test]
    fn one_pool_or_several_each_named() {
        let one = Config::parse(
            "[xcpng]\nurl = \"https://a\"\npassword_env = \"P\"\n",
            Path::new("/etc/x/bioxen.toml"),
        )
        .unwrap();
        assert_eq!(one.xcpng.len(), 1);
        assert_eq!(one.xcpng[0].name, DEFAULT_POOL);
        let two = Config::parse(
            "[[xcpng]]\nname = \"lab\"\nurl = \"https://a\"\n\
             [[xcpng]]\nname = \"cloud\"\nurl = \"https://b\"\n[xcpng.ssh]\nport = 2222\n",
            Path::new("/etc/x/bioxen.toml"),
        )
        .unwrap();
        let names: Vec<&str> = two.xcpng.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["lab", "cloud"]);
        assert_eq!(two.pool(Some("cloud")).unwrap().ssh.port, 2222);
        assert_eq!(
            two.pool(None).unwrap().name,
            "lab",
            "the first is the default"
        );
    }

    #[test]
    fn two_pools_of_one_name_and_a_bad_key_in_a_pool_are_located() {
        let e = err("[[xcpng]]\nurl = \"https://a\"\n[[xcpng]]\nurl = \"https://b\"\n");
        assert!(e.starts_with("/etc/x/bioxen.toml:3:"), "{e}");
        assert!(e.contains("two [[xcpng]] pools are named 'pool'"), "{e}");
        let e = err("[[xcpng]]\nname = \"lab\"\nurl = \"https://a\"\ntemplat = \"x\"\n");
        assert!(e.starts_with("/etc/x/bioxen.toml:4:"), "{e}");
        assert!(e.contains("templat"), "{e}");
    }

    #[test]
    fn ssh_host_needs_name_and_host() {
        let e = err("[[ssh_hosts]]\nname = \"lab1\"\n");
        assert!(e.contains("missing field `host`"), "{e}");
    }

    #[test]
    fn a_readable_password_file_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("bioxen-cfg-perm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bioxen.toml");
        std::fs::write(
            &path,
            "[xcpng]\nurl = \"https://pool\"\npassword = \"hunter2\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let c = Config::from_file(&path).unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("chmod 600") && !c.warnings[0].contains("hunter2"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Config::from_file(&path).unwrap().warnings.is_empty());
    }

    #[test]
    fn password_is_never_debug_printed() {
        let c = Config::parse(
            "[xcpng]\nurl = \"https://pool\"\npassword = \"hunter2\"\n",
            Path::new("b.toml"),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
