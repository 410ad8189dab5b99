//! The process's own figures, under the names Prometheus client libraries give them
//! (`process_*`): what stands in for the JVM figures ZooKeeper's dashboards show.

use super::{Sample, Value};

/// Reads /proc/self; on a system without it, nothing.
pub fn samples(out: &mut Vec<Sample>) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // The command name is in parentheses and may hold spaces: count fields after its end.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields from the state (3rd in proc(5)): utime is 14th, stime 15th, starttime 22nd,
    // vsize 23rd, rss 24th; here index = field - 3.
    let num = |field: usize| f.get(field - 3).and_then(|v| v.parse::<u64>().ok());
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    if let (Some(u), Some(s)) = (num(14), num(15)) {
        out.push(Sample::counter(
            "process_cpu_seconds_total",
            "User and system CPU time (seconds)",
            Value::Float((u + s) as f64 / ticks),
        ));
    }
    if let Some(v) = num(23) {
        out.push(Sample::gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size (bytes)",
            Value::Int(v as i64),
        ));
    }
    if let Some(r) = num(24) {
        out.push(Sample::gauge(
            "process_resident_memory_bytes",
            "Resident memory size (bytes)",
            Value::Int((r * page) as i64),
        ));
    }
    if let Some(start) = num(22) {
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<u64>().ok())
        });
        if let Some(boot) = boot {
            out.push(Sample::gauge(
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch (seconds)",
                Value::Float(boot as f64 + start as f64 / ticks),
            ));
        }
    }
    out.push(Sample::gauge(
        "process_open_fds",
        "Open file descriptors",
        Value::Int(crate::fourlw::open_fds() as i64),
    ));
    out.push(Sample::gauge(
        "process_max_fds",
        "Maximum number of open file descriptors",
        Value::Int(crate::fourlw::max_fds() as i64),
    ));
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(n) = status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            out.push(Sample::gauge(
                "process_threads",
                "Threads of the process",
                Value::Int(n),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_own_process() {
        let mut out = Vec::new();
        super::samples(&mut out);
        let rss = out
            .iter()
            .find(|s| s.name == "process_resident_memory_bytes")
            .expect("rss on Linux");
        assert!(matches!(rss.value, super::Value::Int(v) if v > 0));
        assert!(out.iter().any(|s| s.name == "process_cpu_seconds_total"));
    }
}
