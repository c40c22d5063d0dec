//! The keymap: one table of actions, their keys and their descriptions.
//!
//! Dispatch, the help overlay and the status-bar hints all read this table, so a key
//! rebound in `bioxen.toml` is rebound everywhere and the help never lies.

use std::path::Path;

use crate::keys::{KeyCode, KeyEvent, KeyModifiers};

use crate::config::{Config, KeyList};
use crate::error::ConfigError;
use crate::keyspec::KeySpec;

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The VM list has the focus: single keys act.
    List,
    /// A terminal has the focus and the prefix was pressed.
    Prefix,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Up,
    Down,
    Attach,
    Create,
    Kill,
    Restart,
    Filter,
    Help,
    Quit,
    Detach,
    NextTab,
    PrevTab,
    Scrollback,
    Zoom,
    ToggleLog,
    Install,
    SendPrefix,
    Mark,
    MarkAll,
    Grid,
    FocusLeft,
    FocusRight,
    FocusUp,
    FocusDown,
    Layout,
    Broadcast,
    Exclude,
    CloseGrid,
    Silence,
    Choose,
    Rename,
    GoToTab,
    Fold,
    Unfold,
    LoadExperiment,
    SearchAll,
    SortName,
    SortState,
    SortCpu,
    SortMem,
    SortUptime,
    SortProgress,
    ChartShorter,
    ChartLonger,
    GroupBy,
}

/// `(mode, action, config name, default keys, description)`.
const DEFAULTS: &[(Mode, Action, &str, &[&str], &str)] = &[
    (
        Mode::List,
        Action::Up,
        "up",
        &["Up", "k"],
        "select the VM above",
    ),
    (
        Mode::List,
        Action::Down,
        "down",
        &["Down", "j"],
        "select the VM below",
    ),
    (
        Mode::List,
        Action::Attach,
        "attach",
        &["Enter"],
        "attach: type into the VM",
    ),
    (Mode::List, Action::Create, "create", &["c"], "create a VM"),
    (
        Mode::List,
        Action::Kill,
        "kill",
        &["x"],
        "kill the VM (remove it once dead)",
    ),
    (
        Mode::List,
        Action::Restart,
        "restart",
        &["r"],
        "restart the VM (a running one after asking)",
    ),
    (
        Mode::List,
        Action::Filter,
        "filter",
        &["/"],
        "filter the list",
    ),
    (
        Mode::List,
        Action::ToggleLog,
        "log",
        &["L"],
        "log the VM's output to a file",
    ),
    (
        Mode::List,
        Action::Install,
        "install",
        &["i"],
        "install a Lua package (luarocks)",
    ),
    (
        Mode::List,
        Action::Zoom,
        "zoom",
        &["z"],
        "hide or show the list",
    ),
    (
        Mode::List,
        Action::Mark,
        "mark",
        &["Space"],
        "mark the VM for a grid, and go to the next",
    ),
    (
        Mode::List,
        Action::MarkAll,
        "mark_all",
        &["*"],
        "mark every VM shown (again: unmark them)",
    ),
    (
        Mode::List,
        Action::Grid,
        "grid",
        &["g"],
        "grid of the marked VMs (none marked: the running ones)",
    ),
    (
        Mode::List,
        Action::Rename,
        "rename",
        &["R"],
        "rename the VM",
    ),
    (
        Mode::List,
        Action::Fold,
        "fold",
        &["Left", "h"],
        "fold the experiment (on a header; on a VM: its group)",
    ),
    (
        Mode::List,
        Action::Unfold,
        "unfold",
        &["Right", "l"],
        "unfold the experiment under the cursor",
    ),
    (
        Mode::List,
        Action::LoadExperiment,
        "up",
        &["u"],
        "start an experiment file, as bioxen up (Tab completes)",
    ),
    (
        Mode::List,
        Action::SearchAll,
        "search_all",
        &["F"],
        "search what every VM printed (/regex/ for a regex)",
    ),
    (
        Mode::List,
        Action::SortName,
        "sort_name",
        &["N"],
        "sort by name (again: the other way)",
    ),
    (
        Mode::List,
        Action::SortState,
        "sort_state",
        &["S"],
        "sort by state: busy, idle, waiting, lost, ended",
    ),
    (
        Mode::List,
        Action::SortCpu,
        "sort_cpu",
        &["C"],
        "sort by CPU",
    ),
    (
        Mode::List,
        Action::SortMem,
        "sort_mem",
        &["M"],
        "sort by memory",
    ),
    (
        Mode::List,
        Action::SortUptime,
        "sort_uptime",
        &["A"],
        "sort by uptime (age)",
    ),
    (
        Mode::List,
        Action::SortProgress,
        "sort_progress",
        &["P"],
        "sort by progress",
    ),
    (
        Mode::List,
        Action::GroupBy,
        "group_by",
        &["G"],
        "group the list by experiment, kind, host, pool, or not",
    ),
    (
        Mode::List,
        Action::ChartShorter,
        "chart_shorter",
        &["["],
        "chart a shorter time: 24 h, 1 h, 10 min",
    ),
    (
        Mode::List,
        Action::ChartLonger,
        "chart_longer",
        &["]"],
        "chart a longer time: 10 min, 1 h, 24 h",
    ),
    (Mode::List, Action::Help, "help", &["?"], "show this help"),
    (Mode::List, Action::Quit, "quit", &["q"], "quit bioxen"),
    (
        Mode::Prefix,
        Action::Detach,
        "detach",
        &["d"],
        "detach: back to the list",
    ),
    (
        Mode::Prefix,
        Action::Create,
        "create",
        &["c"],
        "create a VM",
    ),
    (Mode::Prefix, Action::Kill, "kill", &["x"], "kill this VM"),
    (
        Mode::Prefix,
        Action::NextTab,
        "next_tab",
        &["n"],
        "next tab",
    ),
    (
        Mode::Prefix,
        Action::PrevTab,
        "prev_tab",
        &["p"],
        "previous tab",
    ),
    (
        Mode::Prefix,
        Action::Scrollback,
        "scrollback",
        &["["],
        "scrollback (PgUp/PgDn, q leaves)",
    ),
    (
        Mode::Prefix,
        Action::Zoom,
        "zoom",
        &["z"],
        "hide or show the list; in a grid, fill it with this tile",
    ),
    (
        Mode::Prefix,
        Action::Grid,
        "grid",
        &["g"],
        "grid of the marked VMs (none marked: the running ones)",
    ),
    (
        Mode::Prefix,
        Action::FocusLeft,
        "focus_left",
        &["Left"],
        "grid: the tile to the left",
    ),
    (
        Mode::Prefix,
        Action::FocusRight,
        "focus_right",
        &["Right"],
        "grid: the tile to the right (past the last: next page)",
    ),
    (
        Mode::Prefix,
        Action::FocusUp,
        "focus_up",
        &["Up"],
        "grid: the tile above",
    ),
    (
        Mode::Prefix,
        Action::FocusDown,
        "focus_down",
        &["Down"],
        "grid: the tile below (past the last: next page)",
    ),
    (
        Mode::Prefix,
        Action::Layout,
        "layout",
        &["Space"],
        "grid: next layout (tiled, columns, rows, main+stack)",
    ),
    (
        Mode::Prefix,
        Action::Broadcast,
        "broadcast",
        &["b"],
        "grid: type into every tile at once, or stop",
    ),
    (
        Mode::Prefix,
        Action::Exclude,
        "exclude",
        &["e"],
        "grid: leave this tile out of broadcasts, or put it back",
    ),
    (
        Mode::Prefix,
        Action::CloseGrid,
        "close_grid",
        &["&"],
        "grid: close the grid (its VMs keep running)",
    ),
    (
        Mode::Prefix,
        Action::Silence,
        "silence",
        &["M"],
        "silence alert for this VM: off, 10 s, 30 s, 1 min, 5 min",
    ),
    (
        Mode::Prefix,
        Action::Rename,
        "rename",
        &[","],
        "rename this VM",
    ),
    (
        Mode::Prefix,
        Action::Choose,
        "choose",
        &["w"],
        "choose a VM or grid from a list (type to filter)",
    ),
    (
        Mode::Prefix,
        Action::GoToTab,
        "go_to_tab",
        &["'"],
        "go to a tab by its number (10 and up too)",
    ),
    (
        Mode::Prefix,
        Action::ToggleLog,
        "log",
        &["L"],
        "log this VM's output to a file",
    ),
    (
        Mode::Prefix,
        Action::Install,
        "install",
        &["i"],
        "install a Lua package (luarocks)",
    ),
    (
        Mode::Prefix,
        Action::SearchAll,
        "search_all",
        &["/"],
        "search what every VM printed (/regex/ for a regex)",
    ),
    (Mode::Prefix, Action::Help, "help", &["?"], "show this help"),
];

#[derive(Debug, Clone)]
pub struct Binding {
    pub mode: Mode,
    pub action: Action,
    pub name: &'static str,
    pub keys: Vec<KeySpec>,
    pub description: &'static str,
}

#[derive(Debug, Clone)]
pub struct Keymap {
    pub prefix: KeySpec,
    pub bindings: Vec<Binding>,
}

impl Default for Keymap {
    fn default() -> Self {
        let bindings = DEFAULTS
            .iter()
            .map(|(mode, action, name, keys, description)| Binding {
                mode: *mode,
                action: *action,
                name,
                keys: keys
                    .iter()
                    .map(|k| KeySpec::parse(k).expect("default keys parse"))
                    .collect(),
                description,
            })
            .collect();
        Keymap {
            prefix: KeySpec::ctrl('b'),
            bindings,
        }
    }
}

impl Keymap {
    /// The defaults with the config's prefix and `[keys.*]` overrides applied.
    pub fn from_config(config: &Config) -> Result<Keymap, ConfigError> {
        let path = config.path().unwrap_or(Path::new("bioxen.toml"));
        let text = config
            .path()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        Keymap::build(config, &text, path)
    }

    /// Like [`Keymap::from_config`], with the config's source text for locations.
    pub fn build(config: &Config, text: &str, path: &Path) -> Result<Keymap, ConfigError> {
        let mut map = Keymap::default();
        let located = |span: std::ops::Range<usize>, key: String, message: String| {
            let before = &text[..span.start.min(text.len())];
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line: before.matches('\n').count() + 1,
                column: before[before.rfind('\n').map(|i| i + 1).unwrap_or(0)..]
                    .chars()
                    .count()
                    + 1,
                key: Some(key),
                message,
            }
        };
        map.prefix = KeySpec::parse(config.ui.prefix.get_ref())
            .map_err(|e| located(config.ui.prefix.span(), "ui.prefix".into(), e.to_string()))?;
        for (mode, table, section) in [
            (Mode::List, &config.keys.list, "keys.list"),
            (Mode::Prefix, &config.keys.prefix, "keys.prefix"),
        ] {
            for (name, keys) in table {
                let key_name = format!("{section}.{name}");
                let Some(binding) = map
                    .bindings
                    .iter_mut()
                    .find(|b| b.mode == mode && b.name == name)
                else {
                    let known: Vec<_> = DEFAULTS
                        .iter()
                        .filter(|d| d.0 == mode)
                        .map(|d| d.2)
                        .collect();
                    return Err(located(
                        keys.span(),
                        key_name,
                        format!("unknown action '{name}' (known: {})", known.join(", ")),
                    ));
                };
                let parsed: Result<Vec<KeySpec>, _> = KeyList::keys(keys.get_ref())
                    .into_iter()
                    .map(KeySpec::parse)
                    .collect();
                binding.keys = parsed.map_err(|e| located(keys.span(), key_name, e.to_string()))?;
            }
        }
        // A key bound twice in one mode would do one thing and be listed as two in the
        // help: refuse it where the config rebinds it.
        for (mode, table, section) in [
            (Mode::List, &config.keys.list, "keys.list"),
            (Mode::Prefix, &config.keys.prefix, "keys.prefix"),
        ] {
            for (name, keys) in table {
                if let Some(message) = map.conflict(mode, name) {
                    return Err(located(keys.span(), format!("{section}.{name}"), message));
                }
            }
        }
        Ok(map)
    }

    /// What else in `mode` uses one of the keys of the binding named `name`, if anything.
    fn conflict(&self, mode: Mode, name: &str) -> Option<String> {
        let binding = self
            .bindings
            .iter()
            .find(|b| b.mode == mode && b.name == name)?;
        for key in &binding.keys {
            let event = KeyEvent::new(key.code, key.mods);
            let reserved = match mode {
                Mode::List => (event.code == KeyCode::Esc).then_some("clears the filter"),
                Mode::Prefix if self.prefix.matches(&event) => {
                    Some("sends the prefix itself to the VM")
                }
                Mode::Prefix if event.code == KeyCode::Esc => Some("cancels the prefix"),
                Mode::Prefix if Keymap::digit(&event).is_some() => Some("selects a tab"),
                Mode::Prefix => None,
            };
            if let Some(what) = reserved {
                return Some(format!("key '{key}' is taken: it {what}"));
            }
            let mut clashes = self
                .bindings
                .iter()
                .filter(|b| b.mode == mode && b.name != name && b.keys.iter().any(|k| k == key));
            if let Some(other) = clashes.next() {
                return Some(format!(
                    "key '{key}' is also bound to '{}'; bind '{}' to another key first",
                    other.name, other.name
                ));
            }
            if binding.keys.iter().filter(|k| *k == key).count() > 1 {
                return Some(format!("key '{key}' is listed twice"));
            }
        }
        None
    }

    /// The action bound to `event` in `mode`.
    pub fn action(&self, mode: Mode, event: &KeyEvent) -> Option<Action> {
        if mode == Mode::Prefix && self.prefix.matches(event) {
            return Some(Action::SendPrefix);
        }
        self.bindings
            .iter()
            .find(|b| b.mode == mode && b.keys.iter().any(|k| k.matches(event)))
            .map(|b| b.action)
    }

    /// The first key of the action named `name` in `mode`, in tmux notation, without the
    /// prefix (`c`, `d`); `None` when no such action exists there.
    pub fn key_of(&self, mode: Mode, name: &str) -> Option<String> {
        let b = self
            .bindings
            .iter()
            .find(|b| b.mode == mode && b.name == name)?;
        Some(b.keys.first()?.to_string())
    }

    /// The names of the actions bound in `mode`, in the keymap's order (for messages
    /// that list the valid ones).
    pub fn names(&self, mode: Mode) -> Vec<&'static str> {
        self.bindings
            .iter()
            .filter(|b| b.mode == mode)
            .map(|b| b.name)
            .collect()
    }

    /// The first key of an action, for hints (`c`, `C-b d`).
    pub fn key_for(&self, mode: Mode, action: Action) -> Option<String> {
        let b = self
            .bindings
            .iter()
            .find(|b| b.mode == mode && b.action == action)?;
        let key = b.keys.first()?.to_string();
        Some(match mode {
            Mode::List => key,
            Mode::Prefix => format!("{} {key}", self.prefix),
        })
    }

    /// The help overlay's lines: `(keys, description)` per section.
    pub fn help(&self) -> Vec<(&'static str, Vec<(String, String)>)> {
        let keys = |b: &Binding| {
            b.keys
                .iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let list = self
            .bindings
            .iter()
            .filter(|b| b.mode == Mode::List)
            .map(|b| (keys(b), b.description.to_string()))
            .collect();
        let mut prefix: Vec<(String, String)> = self
            .bindings
            .iter()
            .filter(|b| b.mode == Mode::Prefix)
            .map(|b| {
                (
                    format!("{} {}", self.prefix, keys(b)),
                    b.description.to_string(),
                )
            })
            .collect();
        prefix.push((format!("{} 0..9", self.prefix), "select tab 0..9".into()));
        prefix.push((
            format!("{} {}", self.prefix, self.prefix),
            format!("send {} itself to the VM", self.prefix),
        ));
        prefix.push((
            format!("{} Esc", self.prefix),
            "cancel the prefix (or wait 1 s)".into(),
        ));
        let other = vec![
            (
                "any other key".into(),
                "goes to the VM, Ctrl-C/D/Z included".into(),
            ),
            (
                "PgUp / PgDn / arrows".into(),
                "in scrollback: move; q or Esc leaves".into(),
            ),
            (
                "/ ? n N".into(),
                "in scrollback: search down, up, again, back".into(),
            ),
            (
                "v, then y".into(),
                "in scrollback: select lines, copy them (OSC 52)".into(),
            ),
            (
                "mouse wheel".into(),
                "scrolls back (or goes to programs that ask)".into(),
            ),
            ("click".into(), "selects a VM in the list or a tab".into()),
            (
                "Shift + drag".into(),
                "selects text natively while the mouse is captured".into(),
            ),
        ];
        vec![
            ("VM list", list),
            ("Terminal (after the prefix)", prefix),
            ("Terminal", other),
        ]
    }

    /// Whether `event` is a plain digit, for the prefix's tab selection.
    pub fn digit(event: &KeyEvent) -> Option<usize> {
        match event.code {
            KeyCode::Char(c @ '0'..='9')
                if !event
                    .modifiers
                    .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
            {
                Some(c as usize - '0' as usize)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        let dir = std::env::temp_dir().join(format!("bioxen-keymap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.toml", text.len()));
        std::fs::write(&path, text).unwrap();
        Config::from_file(&path).unwrap()
    }

    #[test]
    fn overrides_apply_to_dispatch_and_help() {
        let map = Keymap::from_config(&cfg(
            "[ui]\nprefix = \"C-a\"\n[keys.list]\ncreate = [\"n\", \"Insert\"]\n[keys.prefix]\nnext_tab = \"Tab\"\n",
        ))
        .unwrap();
        assert_eq!(map.prefix, KeySpec::ctrl('a'));
        let n = KeyEvent::new(KeyCode::Char('n'), KeyModifiers::NONE);
        assert_eq!(map.action(Mode::List, &n), Some(Action::Create));
        let c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE);
        assert_eq!(map.action(Mode::List, &c), None);
        let tab = KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE);
        assert_eq!(map.action(Mode::Prefix, &tab), Some(Action::NextTab));
        let help = map.help();
        assert!(
            help[0]
                .1
                .contains(&("n / Insert".into(), "create a VM".into()))
        );
        assert!(help[1].1.iter().any(|(k, _)| k == "C-a Tab"));
        assert_eq!(map.key_for(Mode::Prefix, Action::Detach).unwrap(), "C-a d");
    }

    #[test]
    fn unknown_action_is_a_located_config_error() {
        let text = "[keys.list]\ncreate = \"c\"\nfly = \"f\"\n";
        let err = Config::parse(text, Path::new("/x/bioxen.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/x/bioxen.toml:3:7: key `keys.list.fly`: unknown action 'fly'"),
            "{err}"
        );
        let text = "[keys.prefix]\ndetach = [\"d\", \"C-\"]\n";
        let err = Config::parse(text, Path::new("/x/bioxen.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":2:10: key `keys.prefix.detach`: key 'C-' has a modifier"),
            "{err}"
        );
    }

    #[test]
    fn a_key_bound_twice_in_one_mode_is_a_located_config_error() {
        for (text, at, needle) in [
            (
                "[keys.list]\ncreate = [\"c\", \"x\"]\n",
                ":2:10: key `keys.list.create`",
                "key 'x' is also bound to 'kill'",
            ),
            // Bound over quit, it would silently disable quitting.
            (
                "[keys.list]\n\ncreate = \"q\"\n",
                ":3:10: key `keys.list.create`",
                "key 'q' is also bound to 'quit'",
            ),
            (
                "[keys.prefix]\nnext_tab = \"C-b\"\n",
                ":2:12: key `keys.prefix.next_tab`",
                "sends the prefix itself",
            ),
            (
                "[keys.prefix]\nhelp = \"3\"\n",
                ":2:8: key `keys.prefix.help`",
                "selects a tab",
            ),
            (
                "[keys.list]\nup = [\"k\", \"k\"]\n",
                ":2:6: key `keys.list.up`",
                "listed twice",
            ),
        ] {
            let err = Config::parse(text, Path::new("/x/bioxen.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(at) && err.contains(needle), "{text}: {err}");
        }
        // Swapping two keys is fine: both are rebound.
        let map = Keymap::from_config(&cfg("[keys.list]\ncreate = \"x\"\nkill = \"c\"\n")).unwrap();
        let x = KeyEvent::new(KeyCode::Char('x'), KeyModifiers::NONE);
        assert_eq!(map.action(Mode::List, &x), Some(Action::Create));
    }

    #[test]
    fn prefix_twice_sends_the_prefix() {
        let map = Keymap::default();
        let cb = KeyEvent::new(KeyCode::Char('b'), KeyModifiers::CONTROL);
        assert_eq!(map.action(Mode::Prefix, &cb), Some(Action::SendPrefix));
    }
}
