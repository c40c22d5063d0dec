//! How sizes and durations read in the list pane and `bioxen ls`.

/// `812K`, `23.4M`, `1.2G`.
pub fn bytes(n: u64) -> String {
    const K: f64 = 1024.0;
    let n = n as f64;
    if n < K * K {
        format!("{:.0}K", n / K)
    } else if n < K * K * K {
        format!("{:.1}M", n / (K * K))
    } else {
        format!("{:.1}G", n / (K * K * K))
    }
}

/// Uptime, exact to the second for the first minute and coarser after, so an idle
/// list does not redraw every second forever.
pub fn uptime(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86400 => format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60),
        _ => format!("{}d{:02}h", secs / 86400, (secs % 86400) / 3600),
    }
}

/// The uptime at which [`uptime`]'s label for `secs` next changes: the dashboard
/// sleeps until then.
pub fn uptime_changes_at(secs: u64) -> u64 {
    let step = match secs {
        0..60 => 1,
        60..86400 => 60,
        _ => 3600,
    };
    (secs / step + 1) * step
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(512 * 1024), "512K");
        assert_eq!(bytes(3 * 1024 * 1024 + 512 * 1024), "3.5M");
        assert_eq!(uptime(59), "59s");
        assert_eq!(uptime(61), "1m");
        assert_eq!(uptime(3661), "1h01m");
        assert_eq!(uptime(90000), "1d01h");
    }

    /// The label stays the same up to the change and differs at it.
    #[test]
    fn uptime_changes_where_its_label_does() {
        for secs in (0..200_000).step_by(7) {
            let at = uptime_changes_at(secs);
            assert!(at > secs);
            assert_eq!(uptime(at - 1), uptime(secs), "{secs}");
            assert_ne!(uptime(at), uptime(secs), "{secs}");
        }
    }
}
