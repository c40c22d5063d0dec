//! Experiment files: the VMs of an experiment declared in TOML, read into the
//! [`Experiment`] the server runs. Everything that can be wrong with a file is found
//! here, before anything starts, and named at its file, line and key.
//!
//! ```toml
//! [experiment]
//! name = "sweep-a"
//! [[vm]]
//! name = "train"
//! script = "train.lua"
//! args = ["--lr", "{lr}"]
//! matrix = { lr = [0.1, 0.01], seed = [1, 2] }
//! depends_on = { loader = "idle" }
//! ```
//!
//! A matrix makes one VM per combination of its values, named after the cell
//! (`train-lr0.1-seed1`, keys in alphabetical order), each with the cell's values in
//! its environment (`LR=0.1`, `SEED=1`) and in `{lr}` placeholders of its `args`
//! and `env` values. A dependency on a matrix VM's name waits for every cell.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

use bioxen_proto::{Dependency, Experiment, PlannedVm, Ready, Restart, Restore, VmKind};
use serde::Deserialize;
use toml::Spanned;

use crate::{Config, ConfigError};

/// A standalone experiment file: nothing but these two tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    experiment: Option<RawHeader>,
    #[serde(default)]
    vm: Vec<Spanned<RawVm>>,
}

/// The same tables inside `bioxen.toml`, whose other keys the config reads.
#[derive(Deserialize)]
struct RawInConfig {
    experiment: Option<RawHeader>,
    #[serde(default)]
    vm: Vec<Spanned<RawVm>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    name: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVm {
    name: Spanned<String>,
    kind: Option<Spanned<String>>,
    host: Option<Spanned<String>>,
    script: Option<Spanned<String>>,
    #[serde(default)]
    args: Vec<String>,
    cwd: Option<Spanned<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    matrix: Option<Spanned<BTreeMap<String, Spanned<Vec<toml::Value>>>>>,
    #[serde(default)]
    depends_on: BTreeMap<String, Spanned<RawReady>>,
    restart: Option<Spanned<String>>,
    #[serde(default)]
    max_restarts: u32,
    backoff_secs: Option<Spanned<f64>>,
    restore: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawReady {
    Word(String),
    Log { log: String },
}

/// Where a problem is, for the error: the file's text and path.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn error(&self, span: Range<usize>, key: String, message: String) -> ConfigError {
        let (line, column) = crate::config::line_col(self.text, span.start);
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line,
            column,
            key: Some(key),
            message,
        }
    }
}

/// Reads a standalone experiment file; the experiment is named after the file's stem
/// unless `[experiment] name` says otherwise.
pub fn load(path: &Path, config: &Config) -> Result<Experiment, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path, config, true)
}

/// Reads the `[[vm]]` tables of `bioxen.toml` (the config at `path`).
pub fn from_config(path: &Path, config: &Config) -> Result<Experiment, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path, config, false)
}

/// Parses `text` as read from `path`: paths in it are relative to `path`'s directory.
pub fn parse(
    text: &str,
    path: &Path,
    config: &Config,
    standalone: bool,
) -> Result<Experiment, ConfigError> {
    let src = Source { path, text };
    let syntax = |e: toml::de::Error| {
        let span = e.span().unwrap_or(0..0);
        let key = crate::config::key_at(text, span.start).unwrap_or_default();
        src.error(span, key, crate::config::words::plain(e.message()))
    };
    let (header, vms) = if standalone {
        let raw: RawFile = toml::from_str(text).map_err(syntax)?;
        (raw.experiment, raw.vm)
    } else {
        let raw: RawInConfig = toml::from_str(text).map_err(syntax)?;
        (raw.experiment, raw.vm)
    };
    if vms.is_empty() {
        return Err(src.error(
            0..0,
            "vm".into(),
            "declares no VM: add a [[vm]] table with a name".into(),
        ));
    }
    let name = match header.and_then(|h| h.name) {
        Some(name) => {
            bioxen_proto::check_name(name.get_ref())
                .map_err(|e| src.error(name.span(), "experiment.name".into(), e.to_string()))?;
            name.into_inner()
        }
        None => stem(path),
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
    let mut planned = Vec::new();
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    let mut declared_at: HashMap<String, Range<usize>> = HashMap::new();
    for raw in &vms {
        let cells = expand(&src, raw.get_ref(), &base, config)?;
        let group = raw.get_ref().name.get_ref().clone();
        for vm in cells {
            if let Some(first) = declared_at.get(&vm.name) {
                let (line, _) = crate::config::line_col(text, first.start);
                return Err(src.error(
                    raw.get_ref().name.span(),
                    "vm.name".into(),
                    format!(
                        "a VM named '{}' is already declared on line {line}",
                        vm.name
                    ),
                ));
            }
            declared_at.insert(vm.name.clone(), raw.get_ref().name.span());
            groups.entry(group.clone()).or_default().push(planned.len());
            planned.push((vm, raw));
        }
    }
    let mut out = Vec::with_capacity(planned.len());
    for (vm, raw) in &planned {
        let mut vm = vm.clone();
        vm.depends_on = dependencies(&src, raw.get_ref(), &groups, &planned)?;
        out.push(vm);
    }
    check_cycles(&src, &out, &planned)?;
    Ok(Experiment { name, vms: out })
}

/// One raw `[[vm]]` as the VMs it makes: one, or one per matrix cell. Dependencies
/// are filled in once every VM is known.
fn expand(
    src: &Source,
    raw: &RawVm,
    base: &Path,
    config: &Config,
) -> Result<Vec<PlannedVm>, ConfigError> {
    let name = raw.name.get_ref();
    bioxen_proto::check_name(name)
        .map_err(|e| src.error(raw.name.span(), "vm.name".into(), e.to_string()))?;
    let kind = match &raw.kind {
        None => VmKind::Local,
        Some(k) => k
            .get_ref()
            .parse()
            .map_err(|e: bioxen_proto::UnknownKind| {
                src.error(k.span(), "vm.kind".into(), e.to_string())
            })?,
    };
    let host = check_host(src, raw, kind, config)?;
    let script = match &raw.script {
        Some(s) => {
            let p = resolve(base, s.get_ref());
            if !p.is_file() {
                return Err(src.error(
                    s.span(),
                    "vm.script".into(),
                    format!("no script at {}", p.display()),
                ));
            }
            Some(p.to_string_lossy().into_owned())
        }
        None => None,
    };
    if script.is_none() && !raw.args.is_empty() {
        return Err(src.error(
            raw.name.span(),
            "vm.args".into(),
            "args are the script's: give a script too".into(),
        ));
    }
    let cwd = match &raw.cwd {
        Some(c) => {
            let p = resolve(base, c.get_ref());
            if !p.is_dir() {
                return Err(src.error(
                    c.span(),
                    "vm.cwd".into(),
                    format!("no directory at {}", p.display()),
                ));
            }
            p
        }
        None => base.to_path_buf(),
    };
    let restart = match &raw.restart {
        None => Restart::No,
        Some(r) => match r.get_ref().as_str() {
            "no" => Restart::No,
            "on-failure" => Restart::OnFailure,
            "always" => Restart::Always,
            other => {
                return Err(src.error(
                    r.span(),
                    "vm.restart".into(),
                    format!("unknown restart policy '{other}' (expected no, on-failure or always)"),
                ));
            }
        },
    };
    let backoff_secs = match &raw.backoff_secs {
        None => 1.0,
        Some(b) if b.get_ref().is_finite() && (0.0..=3600.0).contains(b.get_ref()) => *b.get_ref(),
        Some(b) => {
            return Err(src.error(
                b.span(),
                "vm.backoff_secs".into(),
                format!("{} is not between 0 and 3600 seconds", b.get_ref()),
            ));
        }
    };
    let restore = match &raw.restore {
        None => None,
        Some(r) => Some(Restore::from_name(r.get_ref()).ok_or_else(|| {
            src.error(
                r.span(),
                "vm.restore".into(),
                format!(
                    "unknown restore policy '{}' (expected {})",
                    r.get_ref(),
                    Restore::NAMES.join(", ")
                ),
            )
        })?),
    };
    let template = PlannedVm {
        name: name.clone(),
        kind,
        host,
        script,
        args: raw.args.clone(),
        cwd: Some(cwd.to_string_lossy().into_owned()),
        env: raw
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        depends_on: Vec::new(),
        restart,
        max_restarts: raw.max_restarts,
        backoff_secs,
        restore,
    };
    let Some(matrix) = &raw.matrix else {
        return Ok(vec![template]);
    };
    let cells = matrix_cells(src, matrix)?;
    Ok(cells
        .into_iter()
        .map(|cell| with_cell(&template, &cell))
        .collect())
}

/// The `[[ssh_hosts]]` entry an ssh VM runs on, checked against the configuration.
fn check_host(
    src: &Source,
    raw: &RawVm,
    kind: VmKind,
    config: &Config,
) -> Result<Option<String>, ConfigError> {
    match (&raw.host, kind) {
        (None, VmKind::Ssh) => Err(src.error(
            raw.name.span(),
            "vm.host".into(),
            "an ssh VM needs host = the name of an [[ssh_hosts]] entry".into(),
        )),
        (Some(h), VmKind::Ssh) => {
            if config.ssh_hosts.iter().any(|s| &s.name == h.get_ref()) {
                Ok(Some(h.get_ref().clone()))
            } else {
                let known: Vec<&str> = config.ssh_hosts.iter().map(|s| s.name.as_str()).collect();
                Err(src.error(
                    h.span(),
                    "vm.host".into(),
                    format!(
                        "no [[ssh_hosts]] entry is named '{}' (configured: {})",
                        h.get_ref(),
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ))
            }
        }
        (Some(h), _) => Err(src.error(
            h.span(),
            "vm.host".into(),
            "host is for ssh VMs (kind = \"ssh\")".into(),
        )),
        (None, VmKind::Xcpng) if config.xcpng.is_empty() => Err(src.error(
            raw.name.span(),
            "vm.kind".into(),
            "an xcpng VM needs an [xcpng] pool in bioxen.toml".into(),
        )),
        (None, _) => Ok(None),
    }
}

/// Every combination of the matrix's values, keys in alphabetical order.
fn matrix_cells(
    src: &Source,
    matrix: &Spanned<BTreeMap<String, Spanned<Vec<toml::Value>>>>,
) -> Result<Vec<Vec<(String, String)>>, ConfigError> {
    let mut cells: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for (key, values) in matrix.get_ref() {
        if values.get_ref().is_empty() {
            return Err(src.error(
                values.span(),
                format!("vm.matrix.{key}"),
                "has no values: a matrix key makes one VM per value".into(),
            ));
        }
        let mut words = Vec::new();
        for v in values.get_ref() {
            words.push(match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                    v.to_string()
                }
                _ => {
                    return Err(src.error(
                        values.span(),
                        format!("vm.matrix.{key}"),
                        "values must be strings, numbers or booleans".into(),
                    ));
                }
            });
        }
        cells = cells
            .into_iter()
            .flat_map(|cell| {
                words.iter().map(move |w| {
                    let mut cell = cell.clone();
                    cell.push((key.clone(), w.clone()));
                    cell
                })
            })
            .collect();
    }
    Ok(cells)
}

/// The VM of one matrix cell: named after it, its values in the environment and in
/// `{key}` placeholders.
fn with_cell(template: &PlannedVm, cell: &[(String, String)]) -> PlannedVm {
    let fill = |s: &str| {
        cell.iter()
            .fold(s.to_string(), |s, (k, v)| s.replace(&format!("{{{k}}}"), v))
    };
    let mut vm = template.clone();
    vm.name = std::iter::once(template.name.clone())
        .chain(cell.iter().map(|(k, v)| format!("{k}{v}")))
        .collect::<Vec<_>>()
        .join("-");
    vm.args = template.args.iter().map(|a| fill(a)).collect();
    vm.env = template
        .env
        .iter()
        .map(|(k, v)| (k.clone(), fill(v)))
        .chain(cell.iter().map(|(k, v)| (k.to_uppercase(), v.clone())))
        .collect();
    vm
}

/// A VM's `depends_on`, each name resolved to the VMs it declares (a matrix's cells).
fn dependencies(
    src: &Source,
    raw: &RawVm,
    groups: &HashMap<String, Vec<usize>>,
    planned: &[(PlannedVm, &Spanned<RawVm>)],
) -> Result<Vec<Dependency>, ConfigError> {
    let mut out = Vec::new();
    for (on, ready) in &raw.depends_on {
        let key = format!("vm.depends_on.{on}");
        let until = match ready.get_ref() {
            RawReady::Word(w) => match w.as_str() {
                "started" => Ready::Started,
                "idle" => Ready::Idle,
                "exited-ok" => Ready::ExitedOk,
                other => {
                    return Err(src.error(
                        ready.span(),
                        key,
                        format!(
                            "unknown condition '{other}' (expected started, idle, exited-ok or {{ log = \"REGEX\" }})"
                        ),
                    ));
                }
            },
            RawReady::Log { log } => {
                regex::Regex::new(log)
                    .map_err(|e| src.error(ready.span(), key.clone(), format!("bad regex: {e}")))?;
                Ready::Log(log.clone())
            }
        };
        let Some(members) = groups.get(on) else {
            let mut known: Vec<&str> = groups.keys().map(String::as_str).collect();
            known.sort_unstable();
            return Err(src.error(
                ready.span(),
                key,
                format!(
                    "depends on '{on}', which this experiment does not declare (it has {})",
                    known.join(", ")
                ),
            ));
        };
        for &i in members {
            out.push(Dependency {
                vm: planned[i].0.name.clone(),
                until: until.clone(),
            });
        }
    }
    Ok(out)
}

/// Refuses a dependency cycle, naming it: `a → b → a`.
fn check_cycles(
    src: &Source,
    vms: &[PlannedVm],
    planned: &[(PlannedVm, &Spanned<RawVm>)],
) -> Result<(), ConfigError> {
    let index: HashMap<&str, usize> = vms
        .iter()
        .enumerate()
        .map(|(i, v)| (v.name.as_str(), i))
        .collect();
    // 0: not seen, 1: on the current path, 2: done.
    let mut mark = vec![0u8; vms.len()];
    let mut path = Vec::new();
    fn visit(
        i: usize,
        vms: &[PlannedVm],
        index: &HashMap<&str, usize>,
        mark: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        mark[i] = 1;
        path.push(i);
        for dep in &vms[i].depends_on {
            let j = index[dep.vm.as_str()];
            if mark[j] == 1 {
                let from = path.iter().position(|&p| p == j).unwrap_or(0);
                let mut cycle = path[from..].to_vec();
                cycle.push(j);
                return Some(cycle);
            }
            if mark[j] == 0
                && let Some(cycle) = visit(j, vms, index, mark, path)
            {
                return Some(cycle);
            }
        }
        path.pop();
        mark[i] = 2;
        None
    }
    for i in 0..vms.len() {
        if mark[i] == 0
            && let Some(cycle) = visit(i, vms, &index, &mut mark, &mut path)
        {
            let names: Vec<&str> = cycle.iter().map(|&c| vms[c].name.as_str()).collect();
            let raw = planned[cycle[0]].1.get_ref();
            let span = raw
                .depends_on
                .values()
                .next()
                .map(|d| d.span())
                .unwrap_or_else(|| raw.name.span());
            return Err(src.error(
                span,
                "vm.depends_on".into(),
                format!("dependency cycle: {}", names.join(" → ")),
            ));
        }
    }
    Ok(())
}

/// `path` as written in the file: `~/` is the home directory, relative paths start at
/// the file's directory.
fn resolve(base: &Path, path: &str) -> PathBuf {
    let p = crate::config::expand_home(path);
    if p.is_absolute() { p } else { base.join(p) }
}

/// The name of the experiment a file declares, read without checking the rest: what
/// `bioxen down` needs, even after the file's scripts were moved.
pub fn name_of(path: &Path) -> Result<String, ConfigError> {
    #[derive(Deserialize)]
    struct Header {
        experiment: Option<HeaderName>,
    }
    #[derive(Deserialize)]
    struct HeaderName {
        name: Option<String>,
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let header: Header = toml::from_str(&text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        Source { path, text: &text }.error(
            span.clone(),
            crate::config::key_at(&text, span.start).unwrap_or_default(),
            crate::config::words::plain(e.message()),
        )
    })?;
    Ok(header
        .experiment
        .and_then(|h| h.name)
        .unwrap_or_else(|| stem(path)))
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "experiment".into())
}

#[cfg(test)]
mod tests;
