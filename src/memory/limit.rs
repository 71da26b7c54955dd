//! A bound on the memory a run holds (`--max-memory`), checked while it runs.
//!
//! The run still holds its window's events in memory (`docs/scale.md`): about 26 bytes an event
//! at its peak without a state (7.71 GB at 300.15M events), so a month of a large gateway does
//! not fit a small machine. Past what the machine has, the kernel kills the process: no message,
//! exit status 137 for the scheduler to read, and whatever else on the machine the kernel picks
//! first. Bounded here, the run stops itself before, with an error that says what it held, what
//! bound it met and what to do; the scratch it made goes with it ([`crate::scratch`]).
//!
//! What is counted is the process's anonymous resident memory (`RssAnon`: its heap, the
//! frame, polars' buffers), not the pages of files it maps (the binary itself, ~85 MB), which the
//! kernel can drop at any time. It is read every [`EVERY`] on a thread of its own, so a spike
//! shorter than that may pass unseen: a bound, not a guarantee.

use std::time::Duration;

/// How often the resident memory is read: reading `/proc/self/status` takes microseconds.
pub const EVERY: Duration = Duration::from_millis(50);

/// The share of the machine's memory (or of the control group's bound, when lower) that the
/// default bound allows: the rest is the system's and the page cache's.
pub const SHARE: f64 = 0.9;

/// The bound `--max-memory auto` means: [`SHARE`] of the memory the run may have, the machine's
/// or its control group's (`memory.max`, cgroup v2) when lower. `None` where neither is known
/// (not Linux).
pub fn automatic() -> Option<u64> {
    let total = meminfo_kb("MemTotal:")?.saturating_mul(1024);
    let group = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let usable = group.map_or(total, |g| g.min(total));
    Some((usable as f64 * SHARE) as u64)
}

/// The process's anonymous resident memory in bytes, or `None` where the kernel does not say.
pub fn held() -> Option<u64> {
    Some(super::kb(&super::status("RssAnon:"))?.saturating_mul(1024))
}

/// Calls `exceeded` with what the run holds, once, the first time it holds more than `bound`
/// bytes. The caller decides what stopping means (the binary prints and exits); the thread
/// reads until then.
pub fn watch(bound: u64, exceeded: impl FnOnce(u64) + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name("memory-bound".into())
        .spawn(move || {
            loop {
                match held() {
                    Some(now) if now > bound => return exceeded(now),
                    Some(_) => std::thread::sleep(EVERY),
                    // Nothing to read (not Linux): nothing to watch.
                    None => return,
                }
            }
        });
    // A thread that cannot start leaves the run unbounded, as it was before the bound.
    drop(spawned);
}

/// Sizes as people write them: `800M`, `12G`, `1.5T`, `12GiB`, `512` (bytes). Units are powers
/// of 1024; `B`, `iB` after one are allowed.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (number, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((at, _)) => t.split_at(at),
        None => (t, ""),
    };
    let scale: u64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    let number: f64 = number.trim().parse().ok()?;
    let bytes = number * scale as f64;
    (number.is_finite() && number > 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// Bytes as a person reads them, in GiB or MiB.
pub fn shown(bytes: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    match bytes as f64 {
        b if b >= GIB => format!("{:.1} GiB", b / GIB),
        b => format!("{:.0} MiB", b / (1u64 << 20) as f64),
    }
}

fn meminfo_kb(field: &str) -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    super::kb(info.lines().find_map(|l| l.strip_prefix(field))?.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_written() {
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("800M"), Some(800 << 20));
        assert_eq!(parse_size("12G"), Some(12 << 30));
        assert_eq!(parse_size("12GiB"), Some(12 << 30));
        assert_eq!(parse_size("12gb"), None, "lower-case b is not a unit");
        assert_eq!(parse_size("1.5T"), Some(3 << 39));
        assert_eq!(parse_size("2k"), Some(2048));
        for bad in ["", "G", "-1G", "0", "12X", "1e30T", "NaN", "12 G B"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_automatic_bound_is_a_share_of_the_machine() {
        let total = meminfo_kb("MemTotal:").expect("Linux") * 1024;
        let bound = automatic().expect("Linux");
        assert!(bound <= (total as f64 * SHARE) as u64 + 1 && bound > 0);
        assert!(held().is_some_and(|h| h > 0 && h < total));
    }

    #[test]
    fn a_bound_below_what_is_held_is_met_at_once_and_reported_once() {
        let (tx, rx) = std::sync::mpsc::channel();
        watch(1, move |now| tx.send(now).expect("sends"));
        let now = rx.recv_timeout(Duration::from_secs(10)).expect("met");
        assert!(now > 1);
        assert!(rx.recv_timeout(EVERY * 4).is_err(), "reported twice");
        let (tx, rx) = std::sync::mpsc::channel::<u64>();
        watch(u64::MAX, move |now| tx.send(now).expect("sends"));
        assert!(rx.recv_timeout(EVERY * 4).is_err(), "met a bound above all");
    }
}
