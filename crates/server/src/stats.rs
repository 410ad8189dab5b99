//! Server-wide counters reported by the four-letter words.

/// Packets and latency since start (or the last `srst`).
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub received: u64,
    pub sent: u64,
    pub auth_failed: u64,
    pub latency_count: u64,
    pub latency_total: u64,
    pub latency_min: Option<u64>,
    pub latency_max: u64,
}

impl Stats {
    /// Records one request's latency in milliseconds.
    pub fn record_latency(&mut self, ms: u64) {
        self.latency_count += 1;
        self.latency_total += ms;
        self.latency_min = Some(self.latency_min.map_or(ms, |m| m.min(ms)));
        self.latency_max = self.latency_max.max(ms);
    }

    /// Average latency in milliseconds.
    pub fn avg_latency(&self) -> f64 {
        if self.latency_count == 0 {
            0.0
        } else {
            self.latency_total as f64 / self.latency_count as f64
        }
    }

    /// Clears everything (`srst`).
    pub fn reset(&mut self) {
        *self = Stats::default();
    }
}
