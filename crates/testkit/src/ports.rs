//! Free ports and loopback addresses for servers started by the kit.

use std::net::{Ipv4Addr, TcpListener};
use std::ops::Range;

/// A port the kernel has just handed out on 127.0.0.1 (free now; a server bound to it a moment
/// later rarely loses a race on a test machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the kernel hands out a free port")
}

/// A free port in `range`, not in `skip`, scanning from a per-process offset so that two runs
/// confined to the same range rarely collide. `None` when the whole range is taken.
pub fn free_port_in(range: Range<u16>, skip: &[u16]) -> Option<u16> {
    let span = range.end.checked_sub(range.start).filter(|s| *s > 0)?;
    let start = (std::process::id() % u32::from(span)) as u16;
    (0..span)
        .map(|i| range.start + ((u32::from(start) + u32::from(i) * 7) % u32::from(span)) as u16)
        .find(|p| !skip.contains(p) && TcpListener::bind(("127.0.0.1", *p)).is_ok())
}

/// Ports an ensemble picks for itself: each is held by a listener until the caller has chosen
/// them all (so no two members get the same one), then released for the servers.
#[derive(Default)]
pub struct Picker {
    held: Vec<TcpListener>,
}

impl Picker {
    /// A port free on `ip`, below Linux's range for outgoing connections' local ports (so no
    /// outgoing connection can hold a server's port while that server is down for a restart)
    /// and above kazoo's harness ports (20000..20030).
    pub fn pick(&mut self, ip: Ipv4Addr) -> u16 {
        let (lo, hi) = (21_000u16, ephemeral_low().min(32_768));
        if hi > lo + 1000 {
            for _ in 0..500 {
                let port = lo + (rand_u64() % u64::from(hi - lo)) as u16;
                if let Ok(l) = TcpListener::bind((ip, port)) {
                    self.held.push(l);
                    return port;
                }
            }
        }
        let l = TcpListener::bind((ip, 0)).expect("a free port");
        let port = l.local_addr().expect("a bound port").port();
        self.held.push(l);
        port
    }
}

/// Whether 127.0.0.2 ..= 127.0.0.`n` can be bound here (Linux routes all of 127/8 to the
/// loopback; other systems may not), so that ensemble member N can listen on 127.0.0.N.
pub fn loopback_aliases(n: usize) -> bool {
    (2..=n.clamp(2, 254) as u8).all(|i| TcpListener::bind((Ipv4Addr::new(127, 0, 0, i), 0)).is_ok())
}

/// Whether `host:port` can be bound now.
pub fn is_free(host: Ipv4Addr, port: u16) -> bool {
    TcpListener::bind((host, port)).is_ok()
}

/// Linux's lowest local port for outgoing connections (32768 where it cannot be read).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
        .unwrap_or(32768)
}

/// A pseudo-random number for port picking (no dependency for this).
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_and_in_range() {
        let p = free_port_in(24000..25000, &[]).unwrap();
        assert!((24000..25000).contains(&p));
        let q = free_port_in(p..p + 1, &[p]);
        assert_eq!(q, None);
        assert_ne!(free_port(), 0);
        let mut picker = Picker::default();
        let a = picker.pick(Ipv4Addr::LOCALHOST);
        let b = picker.pick(Ipv4Addr::LOCALHOST);
        assert_ne!(a, b);
    }
}
