//! Server processes: waiting until they listen, signals, stopping, memory.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Polls until something accepts TCP connections on `addr`, every `poll`, for up to `within`;
/// whether it did.
pub fn wait_listening(addr: SocketAddr, within: Duration, poll: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if TcpStream::connect(addr).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(poll);
    }
}

/// Polls until nothing accepts connections on `addr` any more (a killed JVM, which is not our
/// child, lets go of its port a moment after the signal), for up to `within`.
pub fn wait_closed(addr: SocketAddr, within: Duration) {
    let until = Instant::now() + within;
    while Instant::now() < until && TcpStream::connect(addr).is_ok() {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends a signal (`"-KILL"`, `"-STOP"`, `"-TERM"` ...) to a process that may not be our child
/// (ZooKeeper started by its script), through kill(1); errors are ignored (it may be gone).
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Waits up to `within` for process `pid` to disappear from /proc.
pub fn wait_gone(pid: u32, within: Duration) {
    let proc_dir = format!("/proc/{pid}");
    let deadline = Instant::now() + within;
    while Path::new(&proc_dir).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops a child the polite way: SIGTERM, up to `grace` to exit, then SIGKILL; reaps it.
pub fn terminate(child: &mut Child, grace: Duration) {
    signal(child.id(), "-TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(child);
}

/// SIGKILLs a child and reaps it.
pub fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Resident set size of process `pid` in bytes (VmRSS), if it runs.
pub fn rss(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// A child process SIGKILLed and reaped when dropped (a server expected to refuse its
/// configuration must not outlive a failed test).
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        kill(&mut self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_of_self_and_listening() {
        assert!(rss(std::process::id()).unwrap() > 0);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        assert!(wait_listening(addr, Duration::ZERO, Duration::ZERO));
        drop(l);
        assert!(!wait_listening(
            addr,
            Duration::from_millis(50),
            Duration::from_millis(10)
        ));
    }
}
