//! The pool's own CPU and memory figures, from `GET /rrd_updates` (XAPI.md,
//! "Metrics"): the only live CPU figure XAPI has, since `VM_metrics.VCPUs_utilisation`
//! is a placeholder.
//!
//! xcp-rrdd writes its JSON with bare keys (`{meta: {start: 1, …}}`) and may write
//! `NaN` for a value it has not got; Xen Orchestra reads it with a JSON5 parser for that
//! reason. [`strict_json`] quotes the keys and turns `NaN`/`Infinity` into `null`, so
//! serde_json reads both that and strict JSON.

use std::collections::HashMap;

use serde::Deserialize;

use bioxen_proto::XapiError;

/// One VM's figures at one time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VmFigures {
    /// All vCPUs together, in percent of one (`cpuN` are fractions of a vCPU).
    pub cpu_percent: Option<f32>,
    /// `memory`: what the VM was given, in bytes.
    pub memory: Option<u64>,
    /// `memory_internal_free`: what its guest agent says is free, in KiB.
    pub memory_free_kib: Option<u64>,
}

impl VmFigures {
    /// Memory in use as the guest sees it, else what it was given.
    pub fn memory_used(&self) -> Option<u64> {
        match (self.memory, self.memory_free_kib) {
            (Some(m), Some(free)) => Some(m.saturating_sub(free * 1024)),
            (m, _) => m,
        }
    }
}

/// The rows of one reply, oldest first: a time and each VM's figures then, by UUID.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RrdUpdate {
    pub step: u64,
    pub end: u64,
    pub rows: Vec<(u64, HashMap<String, VmFigures>)>,
}

#[derive(Deserialize)]
struct Reply {
    meta: Meta,
    data: Vec<Row>,
}

#[derive(Deserialize)]
struct Meta {
    step: u64,
    end: u64,
    legend: Vec<String>,
}

#[derive(Deserialize)]
struct Row {
    t: u64,
    values: Vec<Option<f64>>,
}

/// What a legend entry says: only `AVERAGE:vm:<uuid>:<source>` matters here.
enum Column {
    Cpu(String),
    Memory(String),
    MemoryFree(String),
    Other,
}

fn column(entry: &str) -> Column {
    let mut parts = entry.splitn(4, ':');
    let (Some("AVERAGE"), Some("vm"), Some(uuid), Some(source)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Column::Other;
    };
    let uuid = uuid.to_string();
    match source {
        "memory" => Column::Memory(uuid),
        "memory_internal_free" => Column::MemoryFree(uuid),
        s if s
            .strip_prefix("cpu")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) =>
        {
            Column::Cpu(uuid)
        }
        _ => Column::Other,
    }
}

/// Reads a `rrd_updates?json=true` reply. Rows come newest first from xcp-rrdd; they
/// are returned oldest first, whatever order they came in.
pub fn parse(text: &str) -> Result<RrdUpdate, XapiError> {
    let bad = |e: String| XapiError::Transport(format!("rrd_updates: {e}"));
    let reply: Reply = serde_json::from_str(&strict_json(text)).map_err(|e| bad(e.to_string()))?;
    let columns: Vec<Column> = reply.meta.legend.iter().map(|e| column(e)).collect();
    let mut rows = Vec::with_capacity(reply.data.len());
    for row in reply.data {
        let mut vms: HashMap<String, VmFigures> = HashMap::new();
        for (col, value) in columns.iter().zip(&row.values) {
            let Some(v) = value.filter(|v| v.is_finite()) else {
                continue;
            };
            match col {
                Column::Cpu(uuid) => {
                    let f = vms.entry(uuid.clone()).or_default();
                    f.cpu_percent = Some(f.cpu_percent.unwrap_or(0.0) + (v * 100.0) as f32);
                }
                Column::Memory(uuid) => {
                    vms.entry(uuid.clone()).or_default().memory = Some(v as u64)
                }
                Column::MemoryFree(uuid) => {
                    vms.entry(uuid.clone()).or_default().memory_free_kib = Some(v as u64)
                }
                Column::Other => {}
            }
        }
        rows.push((row.t, vms));
    }
    rows.sort_by_key(|(t, _)| *t);
    Ok(RrdUpdate {
        step: reply.meta.step,
        end: reply.meta.end,
        rows,
    })
}

/// `text` for a URL's query: everything but unreserved characters percent-encoded.
pub fn query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The same document as strict JSON: bare keys quoted, `NaN` and infinities `null`.
pub fn strict_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => {
                out.push(c);
                let mut escaped = false;
                for (_, c) in chars.by_ref() {
                    out.push(c);
                    match c {
                        '\\' if !escaped => escaped = true,
                        '"' if !escaped => break,
                        _ => escaped = false,
                    }
                }
            }
            // A number, exponent and all.
            c if c.is_ascii_digit() => {
                out.push(c);
                while let Some(&(_, n)) = chars.peek() {
                    if !(n.is_ascii_alphanumeric() || matches!(n, '.' | '+' | '-')) {
                        break;
                    }
                    out.push(n);
                    chars.next();
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut end = at + c.len_utf8();
                while let Some(&(i, n)) = chars.peek() {
                    if !(n.is_ascii_alphanumeric() || n == '_') {
                        break;
                    }
                    end = i + n.len_utf8();
                    chars.next();
                }
                let word = &text[at..end];
                match word {
                    "true" | "false" | "null" => out.push_str(word),
                    "NaN" | "Infinity" => {
                        // `-Infinity`: the sign is already out.
                        if out.ends_with('-') {
                            out.pop();
                        }
                        out.push_str("null");
                    }
                    _ => {
                        out.push('"');
                        out.push_str(word);
                        out.push('"');
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example reply in XAPI's `doc/content/xen-api/topics/metrics.md`, as the
    /// JSON xcp-rrdd writes for `json=true`: the same legend and row, bare keys.
    const DOCUMENTED: &str = r#"{meta: {start: 1213578000, step: 3600, end: 1213617600, rows: 1, columns: 12,
 legend: ["AVERAGE:vm:ecd8d7a0-1be3-4d91-bd0e-4888c0e30ab3:cpu1",
  "AVERAGE:vm:ecd8d7a0-1be3-4d91-bd0e-4888c0e30ab3:cpu0",
  "AVERAGE:vm:ecd8d7a0-1be3-4d91-bd0e-4888c0e30ab3:memory",
  "MIN:vm:ecd8d7a0-1be3-4d91-bd0e-4888c0e30ab3:cpu1",
  "MIN:vm:ecd8d7a0-1be3-4d91-bd0e-4888c0e30ab3:cpu0",
  "MIN:vm:ecd8d7a0-1be3-4d91-bd0e-4888c0e30ab3:memory",
  "MAX:vm:ecd8d7a0-1be3-4d91-bd0e-4888c0e30ab3:cpu1",
  "MAX:vm:ecd8d7a0-1be3-4d91-bd0e-4888c0e30ab3:cpu0",
  "MAX:vm:ecd8d7a0-1be3-4d91-bd0e-4888c0e30ab3:memory",
  "LAST:vm:ecd8d7a0-1be3-4d91-bd0e-4888c0e30ab3:cpu1",
  "LAST:vm:ecd8d7a0-1be3-4d91-bd0e-4888c0e30ab3:cpu0",
  "LAST:vm:ecd8d7a0-1be3-4d91-bd0e-4888c0e30ab3:memory"]},
 data: [{t: 1213617600, values: [0.0, 0.0282, 209715200.0000, 0.0, 0.0201, 209715200.0000,
  0.0, 0.0445, 209715200.0000, 0.0, 0.0243, 209715200.0000]}]}"#;

    #[test]
    fn the_documented_reply_gives_cpu_and_memory() {
        let update = parse(DOCUMENTED).unwrap();
        assert_eq!((update.step, update.end), (3600, 1213617600));
        let (t, vms) = &update.rows[0];
        assert_eq!(*t, 1213617600);
        let f = vms["ecd8d7a0-1be3-4d91-bd0e-4888c0e30ab3"];
        // Only the AVERAGE columns: cpu0 + cpu1 = 0.0282 of a vCPU.
        assert!((f.cpu_percent.unwrap() - 2.82).abs() < 1e-3, "{f:?}");
        assert_eq!(f.memory, Some(209_715_200));
        assert_eq!(f.memory_used(), Some(209_715_200));
    }

    #[test]
    fn rows_come_back_oldest_first_and_nan_is_no_figure() {
        let text = r#"{meta: {start: 0, step: 5, end: 10, legend: ["AVERAGE:vm:u:cpu0",
            "AVERAGE:vm:u:memory", "AVERAGE:vm:u:memory_internal_free", "AVERAGE:host:h:cpu0"]},
            data: [{t: 10, values: [NaN, 2048.0, 1.0, 0.5]}, {t: 5, values: [0.5, 4096.0, 2.0, -Infinity]}]}"#;
        let update = parse(text).unwrap();
        let times: Vec<u64> = update.rows.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, vec![5, 10]);
        assert_eq!(update.rows[0].1["u"].cpu_percent, Some(50.0));
        assert_eq!(update.rows[1].1["u"].cpu_percent, None);
        assert_eq!(update.rows[0].1["u"].memory_used(), Some(2048));
        assert!(
            !update.rows[0].1.contains_key("h"),
            "host columns are not VMs"
        );
    }

    #[test]
    fn strict_json_leaves_strings_and_literals_alone() {
        assert_eq!(
            strict_json(r#"{a: "x: NaN \" b: c", b: [true, null, 1e5]}"#),
            r#"{"a": "x: NaN \" b: c", "b": [true, null, 1e5]}"#
        );
    }
}
