//! `GET /rrd_updates`: the pool's five-second CPU and memory figures, in the JSON
//! xcp-rrdd writes for `json=true` (bare keys, rows newest first; XAPI.md, "Metrics").
//! Every running guest gets `cpuN` per vCPU, `memory` and `memory_internal_free`; the
//! CPU figures move with time, each VM on a curve of its own, so a chart drawn from
//! them is seen to change.

use std::fmt::Write as _;

use super::api::Sim;

/// xcp-rrdd's finest step, and how far back its five-second archive reaches.
const STEP: u64 = 5;
const ARCHIVE: u64 = 600;

/// A running guest as its RRD describes it.
pub struct Guest {
    pub uuid: String,
    pub vcpus: i64,
    pub memory: i64,
}

/// The query's `key=value` pairs, undecoded: the values used here are numbers, words
/// and session references, which need none.
fn param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// The reply to `GET /rrd_updates?<query>` at Unix time `now`: the status and body.
pub fn updates(sim: &Sim, query: &str, now: u64) -> (u16, String) {
    let session = param(query, "session_id").unwrap_or("").replace("%3A", ":");
    if !sim.session_valid(&session) {
        return (401, "Unauthorised".into());
    }
    if param(query, "json") != Some("true") {
        return (
            400,
            "bioxen's simulator writes rrd_updates as JSON only: add json=true".into(),
        );
    }
    let Some(start) = param(query, "start").and_then(|s| s.parse::<u64>().ok()) else {
        return (400, "start= is required".into());
    };
    let end = now / STEP * STEP;
    let first = start.max(end.saturating_sub(ARCHIVE)) / STEP * STEP + STEP;
    (200, render(&sim.running_guests(), first.min(end), end))
}

fn render(guests: &[Guest], first: u64, end: u64) -> String {
    let mut legend = Vec::new();
    for g in guests {
        for n in 0..g.vcpus {
            legend.push(format!("\"AVERAGE:vm:{}:cpu{n}\"", g.uuid));
        }
        legend.push(format!("\"AVERAGE:vm:{}:memory\"", g.uuid));
        legend.push(format!("\"AVERAGE:vm:{}:memory_internal_free\"", g.uuid));
    }
    let mut times: Vec<u64> = (first..=end).step_by(STEP as usize).collect();
    times.reverse();
    let mut out = format!(
        "{{meta: {{start: {first}, step: {STEP}, end: {end}, rows: {}, columns: {}, legend: [{}]}}, data: [",
        times.len(),
        legend.len(),
        legend.join(", ")
    );
    for (i, t) in times.iter().enumerate() {
        let values: Vec<String> = guests
            .iter()
            .flat_map(|g| figures(g, *t))
            .map(|v| format!("{v:.4}"))
            .collect();
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(out, "{sep}{{t: {t}, values: [{}]}}", values.join(", "));
    }
    out.push_str("]}");
    out
}

/// A guest's figures at time `t`: each vCPU's share on a slow wave of its own, the
/// memory it was given, and a quarter of it free.
fn figures(g: &Guest, t: u64) -> Vec<f64> {
    let seed = g
        .uuid
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let mut out: Vec<f64> = (0..g.vcpus)
        .map(|n| {
            let phase = (seed % 628) as f64 / 100.0 + n as f64;
            0.5 + 0.4 * ((t as f64) / 30.0 + phase).sin()
        })
        .collect();
    out.push(g.memory as f64);
    out.push((g.memory / 4 / 1024) as f64);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_newest_first_with_one_column_per_vcpu() {
        let guests = [Guest {
            uuid: "u1".into(),
            vcpus: 2,
            memory: 1 << 30,
        }];
        let text = render(&guests, 100, 110);
        assert!(text.starts_with("{meta: {start: 100, step: 5, end: 110, rows: 3, columns: 4"));
        assert!(text.contains("\"AVERAGE:vm:u1:cpu1\""));
        let t110 = text.find("{t: 110").unwrap();
        let t100 = text.find("{t: 100").unwrap();
        assert!(t110 < t100, "{text}");
        assert_ne!(figures(&guests[0], 100)[0], figures(&guests[0], 130)[0]);
    }
}
