//! What a VM did over the last day, in two fixed rings: one sample a second for ten
//! minutes, one per ten seconds for 24 hours. Samples are packed into 8 bytes, so a
//! VM's full rings take 72 KiB, and they grow only as time passes: a VM that ran a
//! minute holds a minute.
//!
//! The sampler records when it looks; between two looks (it backs off while nothing
//! changes) every second gets the later sample, which for CPU is the average over the
//! gap, and for memory what it was when the gap ended.

use std::collections::VecDeque;

use bioxen_proto::{SPARK_STEP_SECS, SPARK_STEPS, Series, Window};

/// Seconds kept at one-second resolution.
const FINE: usize = 600;
/// Seconds one coarse sample stands for.
const COARSE_STEP: u64 = 10;
/// Coarse samples kept: a day.
const COARSE: usize = 8640;
/// A gap longer than this is not filled second by second: nothing was measured.
const LONGEST_GAP: u64 = 86_400;

/// One measurement as the server takes it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    pub cpu_percent: Option<f32>,
    pub rss_bytes: Option<u64>,
    pub progress: Option<u8>,
    /// The interpreter was running something (not at its prompt); `None` when it does
    /// not say.
    pub busy: Option<bool>,
}

/// A sample in 8 bytes; the largest value of each field means "not measured".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed {
    /// Tenths of a percent of one core, up to 6553%.
    cpu: u16,
    /// KiB, up to 4 TiB.
    rss_kib: u32,
    progress: u8,
    /// Percent of the step spent running something.
    busy: u8,
}

const NONE16: u16 = u16::MAX;
const NONE32: u32 = u32::MAX;
const NONE8: u8 = u8::MAX;

impl Packed {
    const UNKNOWN: Packed = Packed {
        cpu: NONE16,
        rss_kib: NONE32,
        progress: NONE8,
        busy: NONE8,
    };

    fn pack(s: Sample) -> Packed {
        Packed {
            cpu: s.cpu_percent.map_or(NONE16, |c| {
                (c.max(0.0) * 10.0).round().min(f32::from(NONE16 - 1)) as u16
            }),
            rss_kib: s
                .rss_bytes
                .map_or(NONE32, |b| (b / 1024).min(u64::from(NONE32 - 1)) as u32),
            progress: s.progress.map_or(NONE8, |p| p.min(100)),
            busy: s.busy.map_or(NONE8, |b| if b { 100 } else { 0 }),
        }
    }

    fn cpu_percent(self) -> Option<f32> {
        (self.cpu != NONE16).then(|| f32::from(self.cpu) / 10.0)
    }

    fn rss_bytes(self) -> Option<u64> {
        (self.rss_kib != NONE32).then(|| u64::from(self.rss_kib) * 1024)
    }

    fn some(v: u8) -> Option<u8> {
        (v != NONE8).then_some(v)
    }
}

/// Ten seconds of fine samples on their way to one coarse one.
#[derive(Debug, Default)]
struct Step {
    cpu_sum: f32,
    cpu_n: u16,
    rss_max: Option<u32>,
    progress: Option<u8>,
    busy_sum: u32,
    busy_n: u16,
}

impl Step {
    fn add(&mut self, p: Packed) {
        if p.cpu != NONE16 {
            self.cpu_sum += f32::from(p.cpu);
            self.cpu_n += 1;
        }
        if p.rss_kib != NONE32 {
            self.rss_max = Some(self.rss_max.unwrap_or(0).max(p.rss_kib));
        }
        if p.progress != NONE8 {
            self.progress = Some(p.progress);
        }
        if p.busy != NONE8 {
            self.busy_sum += u32::from(p.busy);
            self.busy_n += 1;
        }
    }

    /// CPU and work are averaged over the step, memory is its peak (a spike that lasted
    /// a second still shows a day later), progress is where it ended.
    fn packed(&self) -> Packed {
        Packed {
            cpu: match self.cpu_n {
                0 => NONE16,
                n => (self.cpu_sum / f32::from(n)).round() as u16,
            },
            rss_kib: self.rss_max.unwrap_or(NONE32),
            progress: self.progress.unwrap_or(NONE8),
            busy: match self.busy_n {
                0 => NONE8,
                n => (self.busy_sum / u32::from(n)) as u8,
            },
        }
    }
}

/// Appends to a ring of at most `bound`, growing it by doubling but never past the
/// bound: a full ring holds exactly `bound` samples, not the next power of two.
fn push_bounded(ring: &mut VecDeque<Packed>, bound: usize, p: Packed) {
    if ring.len() == bound {
        ring.pop_front();
    } else if ring.len() == ring.capacity() {
        let grow = ring.capacity().max(64).min(bound - ring.len());
        ring.reserve_exact(grow);
    }
    ring.push_back(p);
}

#[derive(Debug, Default)]
pub struct History {
    fine: VecDeque<Packed>,
    coarse: VecDeque<Packed>,
    /// The second (Unix time) the newest fine sample stands for.
    last: Option<u64>,
    step: Step,
}

impl History {
    /// The most a VM's rings can hold, in bytes: within the 100 KiB a VM may spend.
    pub const MAX_BYTES: usize = (FINE + COARSE) * std::mem::size_of::<Packed>();

    /// Records `sample` for the second `now` and every second since the last record.
    /// A clock that went back is ignored until it catches up.
    pub fn record(&mut self, now: u64, sample: Sample) {
        let packed = Packed::pack(sample);
        let from = match self.last {
            Some(last) if now <= last => return,
            Some(last) if now - last > LONGEST_GAP => {
                self.fill(last + 1, now - LONGEST_GAP, Packed::UNKNOWN);
                now - LONGEST_GAP + 1
            }
            Some(last) => last + 1,
            None => now,
        };
        self.fill(from, now, packed);
    }

    fn fill(&mut self, from: u64, to: u64, p: Packed) {
        for second in from..=to {
            push_bounded(&mut self.fine, FINE, p);
            self.step.add(p);
            if second % COARSE_STEP == COARSE_STEP - 1 {
                push_bounded(&mut self.coarse, COARSE, self.step.packed());
                self.step = Step::default();
            }
            self.last = Some(second);
        }
    }

    /// The bytes the rings hold now.
    pub fn bytes(&self) -> usize {
        (self.fine.capacity() + self.coarse.capacity()) * std::mem::size_of::<Packed>()
    }

    /// The window's samples, ending with the newest record; steps before the first
    /// record are left out, so a young VM's chart is short rather than mostly empty.
    pub fn series(&self, window: Window) -> Series {
        let step = window.step_secs();
        let (ring, end) = match step {
            1 => (&self.fine, self.last.unwrap_or(0)),
            // The coarse ring ends at the last whole step.
            _ => (
                &self.coarse,
                self.last.map_or(0, |l| (l + 1) / COARSE_STEP * COARSE_STEP),
            ),
        };
        let n = (window.secs() / step) as usize;
        let samples: Vec<Packed> = ring.iter().rev().take(n).rev().copied().collect();
        Series {
            step_secs: step,
            end_unix: end,
            cpu_percent: samples.iter().map(|p| p.cpu_percent()).collect(),
            rss_bytes: samples.iter().map(|p| p.rss_bytes()).collect(),
            progress: samples.iter().map(|p| Packed::some(p.progress)).collect(),
            busy_percent: samples.iter().map(|p| Packed::some(p.busy)).collect(),
        }
    }

    /// CPU per [`SPARK_STEP_SECS`] of the clock over the last [`SPARK_STEPS`], the
    /// step under way last, in whole percents; seconds nobody measured count as idle.
    pub fn recent_cpu(&self) -> Vec<u16> {
        let Some(last) = self.last else {
            return Vec::new();
        };
        let newest = last / SPARK_STEP_SECS;
        let oldest = newest.saturating_sub(SPARK_STEPS as u64 - 1);
        let mut sums = [(0.0f32, 0u16); SPARK_STEPS];
        let first = last + 1 - self.fine.len() as u64;
        for (i, p) in self.fine.iter().enumerate() {
            let step = (first + i as u64) / SPARK_STEP_SECS;
            if step < oldest {
                continue;
            }
            let at = (step - oldest) as usize;
            if let Some(c) = p.cpu_percent() {
                sums[at].0 += c;
                sums[at].1 += 1;
            }
        }
        // Steps before the first record are left out: a young VM's line is short.
        let from = (first / SPARK_STEP_SECS).max(oldest) - oldest;
        sums[from as usize..=(newest - oldest) as usize]
            .iter()
            .map(|&(sum, n)| match n {
                0 => 0,
                n => (sum / f32::from(n)).round() as u16,
            })
            .collect()
    }

    /// The sparkline's heights: what a client would draw differently.
    pub fn recent_levels(&self) -> Vec<u8> {
        self.recent_cpu()
            .into_iter()
            .map(bioxen_proto::spark_level)
            .collect()
    }

    /// The sparkline's shape worth waking clients for: heights of two and up (15% of a
    /// core and more), from the first such step on. The lowest heights (an interpreter
    /// starting, a prompt redrawn) travel with the next list sent for another reason,
    /// so twenty idle VMs do not keep the dashboard awake while their start-up blips
    /// leave the line.
    pub fn recent_shape(&self) -> Vec<u8> {
        let shape: Vec<u8> = self
            .recent_levels()
            .into_iter()
            .map(|l| if l >= 2 { l } else { 0 })
            .collect();
        let first = shape.iter().position(|l| *l > 0).unwrap_or(shape.len());
        shape[first..].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(c: f32) -> Sample {
        Sample {
            cpu_percent: Some(c),
            rss_bytes: Some(1 << 20),
            ..Sample::default()
        }
    }

    #[test]
    fn a_day_of_samples_fits_the_bound() {
        const { assert!(History::MAX_BYTES <= 100 * 1024) };
        let mut h = History::default();
        for s in 0..2 * 86_400 {
            h.record(1_000_000 + s, cpu(50.0));
        }
        assert_eq!(h.series(Window::TenMinutes).len(), 600);
        assert_eq!(h.series(Window::Day).len(), 8640);
        assert!(h.bytes() <= History::MAX_BYTES + 64, "{}", h.bytes());
    }

    #[test]
    fn a_gap_between_looks_gets_the_later_sample() {
        let mut h = History::default();
        h.record(100, cpu(80.0));
        h.record(130, cpu(0.0));
        let s = h.series(Window::TenMinutes);
        assert_eq!(s.len(), 31);
        assert_eq!(s.end_unix, 130);
        assert_eq!(s.cpu_percent[0], Some(80.0));
        assert!(s.cpu_percent[1..].iter().all(|c| *c == Some(0.0)));
    }

    #[test]
    fn coarse_steps_average_cpu_and_keep_the_memory_peak() {
        let mut h = History::default();
        for s in 0..10 {
            let mut sample = cpu(if s < 5 { 100.0 } else { 0.0 });
            if s == 3 {
                sample.rss_bytes = Some(200 << 20);
            }
            sample.busy = Some(s < 5);
            h.record(1000 + s, sample);
        }
        let s = h.series(Window::Hour);
        assert_eq!(s.step_secs, 10);
        assert_eq!(s.cpu_percent, vec![Some(50.0)]);
        assert_eq!(s.rss_bytes, vec![Some(200 << 20)]);
        assert_eq!(s.busy_percent, vec![Some(50)]);
        assert_eq!(s.end_unix, 1010);
    }

    #[test]
    fn the_sparkline_rises_and_falls_with_the_work() {
        let mut h = History::default();
        for s in 0..200 {
            let busy = (100..140).contains(&s);
            h.record(5000 + s, cpu(if busy { 99.0 } else { 0.0 }));
        }
        // Twelve steps of the clock's ten seconds, the last one 5190 to 5199.
        let spark = h.recent_cpu();
        assert_eq!(spark.len(), 12);
        assert_eq!(spark[0], 0, "5080: {spark:?}");
        assert_eq!(spark[2..6], [99, 99, 99, 99], "5100 to 5139: {spark:?}");
        assert_eq!(*spark.last().unwrap(), 0);
        // A finished step does not change: only the step under way does.
        let levels = h.recent_levels();
        h.record(5201, cpu(0.0));
        assert_eq!(
            h.recent_levels()[..11],
            levels[1..],
            "it moved on by one step"
        );
    }

    #[test]
    fn a_blip_leaving_the_line_is_not_news_and_a_loop_ending_is() {
        let mut h = History::default();
        h.record(2000, cpu(9.0));
        for s in 2001..2010 {
            h.record(s, cpu(0.0));
        }
        let before = h.recent_shape();
        h.record(2200, cpu(0.0));
        assert_eq!(
            before,
            h.recent_shape(),
            "a start-up blip of 1% leaves quietly"
        );
        for s in 2201..2215 {
            h.record(s, cpu(99.0));
        }
        let busy = h.recent_shape();
        assert!(!busy.is_empty());
        h.record(2235, cpu(0.0));
        assert_ne!(busy, h.recent_shape(), "the loop's end is news");
    }

    #[test]
    fn a_young_vm_has_a_short_line() {
        let mut h = History::default();
        h.record(1003, cpu(50.0));
        h.record(1012, cpu(50.0));
        assert_eq!(h.recent_cpu(), vec![50, 50]);
    }

    #[test]
    fn a_clock_that_went_back_records_nothing() {
        let mut h = History::default();
        h.record(100, cpu(1.0));
        h.record(90, cpu(2.0));
        assert_eq!(h.series(Window::TenMinutes).cpu_percent, vec![Some(1.0)]);
    }
}
