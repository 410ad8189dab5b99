//! CPU time and resident memory of processes, read from Linux's /proc.

use std::time::Instant;

/// Clock ticks per second of /proc/PID/stat times; 100 on every Linux we run on.
const CLK_TCK: f64 = 100.0;

/// One reading of a process's CPU time and resident set.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// User plus system CPU seconds since the process started.
    pub cpu_secs: f64,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
    /// When the reading was taken.
    pub at: Instant,
}

/// Which process to read: ourselves or another PID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proc {
    /// The benchmark client itself.
    SelfProc,
    /// A server (or any other process) by PID.
    Pid(u32),
}

impl Proc {
    fn dir(self) -> String {
        match self {
            Proc::SelfProc => "/proc/self".to_owned(),
            Proc::Pid(p) => format!("/proc/{p}"),
        }
    }

    /// Reads CPU time and RSS now; `None` if the process is gone or /proc is unavailable.
    pub fn sample(self) -> Option<Sample> {
        let at = Instant::now();
        let cpu_secs = cpu_secs(&std::fs::read_to_string(format!("{}/stat", self.dir())).ok()?)?;
        let rss_bytes = rss_bytes(self)?;
        Some(Sample {
            cpu_secs,
            rss_bytes,
            at,
        })
    }
}

/// Resident set size in bytes (VmRSS of /proc/PID/status).
pub fn rss_bytes(p: Proc) -> Option<u64> {
    let status = std::fs::read_to_string(format!("{}/status", p.dir())).ok()?;
    parse_vmrss(&status)
}

/// Extracts VmRSS (reported in kB) from the text of /proc/PID/status.
pub fn parse_vmrss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// utime + stime in seconds from the text of /proc/PID/stat. The command name in field 2 may
/// hold spaces and parentheses, so fields are counted after its last ')'.
pub fn cpu_secs(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / CLK_TCK)
}

/// CPU use between two samples as a percentage of one core.
pub fn cpu_percent(a: &Sample, b: &Sample) -> f64 {
    let wall = b.at.duration_since(a.at).as_secs_f64();
    if wall <= 0.0 {
        0.0
    } else {
        100.0 * (b.cpu_secs - a.cpu_secs) / wall
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_comm() {
        let s = "1234 (java (x) y) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0 40 0 1 2 3";
        assert_eq!(cpu_secs(s), Some(4.0));
    }

    #[test]
    fn parses_vmrss() {
        let s = "Name:\tpaddock\nVmPeak:\t  1000 kB\nVmRSS:\t    2048 kB\nThreads: 3\n";
        assert_eq!(parse_vmrss(s), Some(2048 * 1024));
    }

    #[test]
    fn reads_self() {
        let s = Proc::SelfProc.sample().expect("/proc/self");
        assert!(s.rss_bytes > 0);
    }
}
