//! What the server measures about itself, for `mntr`, the AdminServer's `monitor` and the
//! Prometheus endpoint: one list of samples ([`Sample`]) that each of them renders in its own
//! format. Names follow ZooKeeper's, so its dashboards and alerts work unchanged.
//!
//! The figures taken on the hot path live in [`Metrics`], shared by the core task (request
//! latencies), the log thread (fsync time, group-commit size) and the snapshot thread; each
//! is behind its own uncontended lock.

pub mod events;
pub mod process;
pub mod prometheus;

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How a sample behaves over time (Prometheus's metric types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

/// A sample's value.
#[derive(Debug, Clone)]
pub enum Value {
    Int(i64),
    Float(f64),
    /// Text, for `mntr` and `monitor` only (the version, the server state).
    Text(String),
    Summary(SummaryView),
    /// One histogram per label value: the label's name, then (value, histogram) pairs.
    Histograms(&'static str, Vec<(String, HistogramView)>),
}

/// One named figure.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub value: Value,
}

impl Sample {
    pub fn gauge(name: &'static str, help: &'static str, value: Value) -> Sample {
        Sample {
            name,
            kind: Kind::Gauge,
            help,
            value,
        }
    }

    pub fn counter(name: &'static str, help: &'static str, value: Value) -> Sample {
        Sample {
            name,
            kind: Kind::Counter,
            help,
            value,
        }
    }
}

/// A figure as `mntr` and `monitor` list it: one name, one plain value.
#[derive(Debug, Clone, PartialEq)]
pub enum Flat<'a> {
    Text(&'a str),
    Int(i64),
    Float(f64),
}

/// The percentiles `mntr` and `monitor` spell out, by their names there.
const SPELLED: [(f64, &str); 4] = [(0.5, "p50"), (0.95, "p95"), (0.99, "p99"), (0.999, "p999")];

/// A sample as the (name, value) pairs `mntr` (with `zk_` before each name) and `monitor`
/// list: a summary spelled out as ZooKeeper does (avg, min, max, cnt, sum, and the
/// percentiles when it keeps them). Histograms are Paddock's own, for Prometheus only.
pub fn flatten<'a>(s: &'a Sample, mut out: impl FnMut(std::borrow::Cow<'static, str>, Flat<'a>)) {
    let name = s.name;
    match &s.value {
        Value::Text(v) => out(name.into(), Flat::Text(v)),
        Value::Int(v) => out(name.into(), Flat::Int(*v)),
        Value::Float(v) => out(name.into(), Flat::Float(*v)),
        Value::Summary(v) => {
            out(format!("avg_{name}").into(), Flat::Float(v.avg()));
            out(format!("min_{name}").into(), Flat::Int(v.min as i64));
            out(format!("max_{name}").into(), Flat::Int(v.max as i64));
            out(format!("cnt_{name}").into(), Flat::Int(v.count as i64));
            out(format!("sum_{name}").into(), Flat::Int(v.sum as i64));
            if let Some(q) = &v.quantiles {
                for (p, label) in SPELLED {
                    if let Some(i) = QUANTILES.iter().position(|x| *x == p) {
                        out(format!("{label}_{name}").into(), Flat::Int(q[i] as i64));
                    }
                }
            }
        }
        Value::Histograms(..) => {}
    }
}

/// The quantiles a summary reports: `mntr` prints p50, p95, p99 and p999 (as ZooKeeper),
/// Prometheus gets 0.5, 0.9 and 0.99 (as ZooKeeper's provider exports them).
pub const QUANTILES: [f64; 5] = [0.5, 0.9, 0.95, 0.99, 0.999];

/// A summary at one moment.
#[derive(Debug, Clone, Default)]
pub struct SummaryView {
    pub count: u64,
    pub sum: u64,
    pub min: u64,
    pub max: u64,
    /// Values at [`QUANTILES`], over the last one to two minutes; `None` for a summary that
    /// keeps no distribution (ZooKeeper's "basic" summaries).
    pub quantiles: Option<[u64; QUANTILES.len()]>,
}

impl SummaryView {
    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }
}

/// Quantiles look at the current window and the one before it: recent enough to show a
/// change within a minute or two, long enough not to swing on a handful of requests.
const WINDOW: Duration = Duration::from_secs(60);

/// Count, sum, min and max since start (or the last reset), and optionally the distribution
/// of recent values.
#[derive(Debug)]
pub struct Summary {
    count: u64,
    sum: u64,
    min: u64,
    max: u64,
    windows: Option<Windows>,
}

#[derive(Debug)]
struct Windows {
    current: Histogram<u64>,
    previous: Histogram<u64>,
    since: Instant,
}

impl Summary {
    /// Count, sum, min and max only.
    pub fn basic() -> Summary {
        Summary {
            count: 0,
            sum: 0,
            min: 0,
            max: 0,
            windows: None,
        }
    }

    /// With quantiles as well.
    pub fn detailed() -> Summary {
        let h = || Histogram::new(2).expect("two significant figures are valid");
        Summary {
            windows: Some(Windows {
                current: h(),
                previous: h(),
                since: Instant::now(),
            }),
            ..Summary::basic()
        }
    }

    pub fn record(&mut self, v: u64) {
        self.min = if self.count == 0 { v } else { self.min.min(v) };
        self.max = self.max.max(v);
        self.count += 1;
        self.sum = self.sum.saturating_add(v);
        if let Some(w) = &mut self.windows {
            // Auto-resizing histograms take any value; saturate rather than fail on a
            // value beyond what u64 arithmetic inside the histogram allows.
            let _ = w.current.record(v.min(u64::MAX >> 2));
        }
    }

    /// Moves to the next window when the current one is a window old. Called by the owner
    /// now and then (recording reads no clock: it is on every request's path).
    pub fn rotate(&mut self) {
        if let Some(w) = &mut self.windows {
            w.rotate();
        }
    }

    pub fn view(&mut self) -> SummaryView {
        let quantiles = self.windows.as_mut().map(|w| {
            w.rotate();
            let mut both = w.previous.clone();
            let _ = both.add(&w.current);
            let mut q = [0; QUANTILES.len()];
            if !both.is_empty() {
                for (i, p) in QUANTILES.iter().enumerate() {
                    q[i] = both.value_at_quantile(*p);
                }
            }
            q
        });
        SummaryView {
            count: self.count,
            sum: self.sum,
            min: self.min,
            max: self.max,
            quantiles,
        }
    }

    pub fn reset(&mut self) {
        let detailed = self.windows.is_some();
        *self = if detailed {
            Summary::detailed()
        } else {
            Summary::basic()
        };
    }
}

impl Windows {
    fn rotate(&mut self) {
        let age = self.since.elapsed();
        if age < WINDOW {
            return;
        }
        if age >= 2 * WINDOW {
            self.previous.reset();
        } else {
            std::mem::swap(&mut self.previous, &mut self.current);
        }
        self.current.reset();
        self.since = Instant::now();
    }
}

/// Upper bounds (seconds) of the request-latency histograms' buckets: a server answers in
/// tens of microseconds to hundreds of milliseconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The same bounds in microseconds, for recording without floating point.
const LATENCY_BUCKETS_US: [u64; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000,
];

/// A histogram at one moment: cumulative counts per bucket of [`LATENCY_BUCKETS`] (then
/// +Inf = count), and the sum in seconds.
#[derive(Debug, Clone, Default)]
pub struct HistogramView {
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum_seconds: f64,
}

#[derive(Debug, Clone, Default)]
struct Buckets {
    counts: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum_us: u64,
}

impl Buckets {
    fn record(&mut self, us: u64) {
        if let Some(i) = LATENCY_BUCKETS_US.iter().position(|b| us <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }

    fn view(&self) -> HistogramView {
        let mut acc = 0;
        HistogramView {
            cumulative: self
                .counts
                .iter()
                .map(|c| {
                    acc += c;
                    acc
                })
                .collect(),
            count: self.count,
            sum_seconds: self.sum_us as f64 / 1e6,
        }
    }
}

/// The session-count buckets the latency histograms are also kept by: the same operation
/// costs differently with ten sessions and with ten thousand.
const SESSION_BUCKETS: [(usize, &str); 5] = [
    (10, "10"),
    (100, "100"),
    (1_000, "1000"),
    (10_000, "10000"),
    (usize::MAX, "+Inf"),
];

/// Opcodes run from -11 (closeSession) to 106 (whoAmI): an index per opcode.
const OPCODE_BASE: i32 = 16;
const OPCODE_SLOTS: usize = 128;

/// What is measured of every request answered, owned by the core task (no lock: it is on
/// every request's path): ZooKeeper's read and update latency summaries, and latency
/// histograms by operation and by the number of sessions at the time.
#[derive(Debug)]
pub struct RequestMetrics {
    /// Reads, in milliseconds (ZooKeeper's `readlatency`).
    pub readlatency: Summary,
    /// Writes, in milliseconds (`updatelatency`).
    pub updatelatency: Summary,
    by_op: Vec<Option<Buckets>>,
    by_sessions: [Buckets; SESSION_BUCKETS.len()],
}

impl Default for RequestMetrics {
    fn default() -> Self {
        RequestMetrics {
            readlatency: Summary::detailed(),
            updatelatency: Summary::detailed(),
            by_op: vec![None; OPCODE_SLOTS],
            by_sessions: Default::default(),
        }
    }
}

impl RequestMetrics {
    /// One answered request, `us` microseconds after it arrived.
    pub fn record(&mut self, opcode: i32, write: bool, sessions: usize, us: u64) {
        let ms = us / 1000;
        if write {
            self.updatelatency.record(ms);
        } else {
            self.readlatency.record(ms);
        }
        let slot = (opcode + OPCODE_BASE).clamp(0, OPCODE_SLOTS as i32 - 1) as usize;
        self.by_op[slot]
            .get_or_insert_with(Buckets::default)
            .record(us);
        let i = SESSION_BUCKETS
            .iter()
            .position(|(max, _)| sessions <= *max)
            .unwrap_or(SESSION_BUCKETS.len() - 1);
        self.by_sessions[i].record(us);
    }

    /// The quantile windows move on (the core calls this every tick).
    pub fn rotate(&mut self) {
        self.readlatency.rotate();
        self.updatelatency.rotate();
    }

    /// `srst`: the latency figures start again.
    pub fn reset(&mut self) {
        self.readlatency.reset();
        self.updatelatency.reset();
    }

    pub fn samples(&mut self, out: &mut Vec<Sample>) {
        out.push(Sample::gauge(
            "readlatency",
            "Read request latency (ms)",
            Value::Summary(self.readlatency.view()),
        ));
        out.push(Sample::gauge(
            "updatelatency",
            "Update request latency (ms)",
            Value::Summary(self.updatelatency.view()),
        ));
        let mut by_op: Vec<(String, HistogramView)> = self
            .by_op
            .iter()
            .enumerate()
            .filter_map(|(slot, b)| {
                let op = paddock_proto::op::api_name(slot as i32 - OPCODE_BASE);
                b.as_ref().map(|b| (op.to_owned(), b.view()))
            })
            .collect();
        by_op.sort_by(|a, b| a.0.cmp(&b.0));
        out.push(Sample::gauge(
            "paddock_request_duration_seconds",
            "Request latency by operation, from arrival to reply (seconds)",
            Value::Histograms("op", by_op),
        ));
        out.push(Sample::gauge(
            "paddock_request_duration_by_sessions_seconds",
            "Request latency by the number of sessions at the time, bucketed (seconds)",
            Value::Histograms(
                "sessions",
                SESSION_BUCKETS
                    .iter()
                    .zip(&self.by_sessions)
                    .filter(|(_, b)| b.count > 0)
                    .map(|((_, label), b)| ((*label).to_owned(), b.view()))
                    .collect(),
            ),
        ));
    }
}

/// The figures taken off the core task too (the log thread's), each behind its own lock:
/// taken at most once per fsync or snapshot, never per request.
#[derive(Debug)]
pub struct Metrics {
    /// One fsync of the transaction log, in milliseconds (`fsynctime`).
    pub fsynctime: Mutex<Summary>,
    /// Transactions made durable by one fsync (`sync_processor_batch_size`).
    pub sync_batch: Mutex<Summary>,
    /// Writing one snapshot, in milliseconds (`snapshottime`).
    pub snapshottime: Mutex<Summary>,
    /// From looking to leading or following, in milliseconds (`election_time`).
    pub election_time: Mutex<Summary>,
    /// The log thread, per round: disk orders taken at once (`sync_processor_queue_size`);
    /// per batch of orders, ms from the core handing it over to the thread taking it
    /// (`sync_processor_queue_time_ms`) and to its being durable
    /// (`sync_processor_queue_and_flush_time_ms`); per round, writing and fsyncing
    /// (`sync_processor_queue_flush_time_ms`).
    pub sync_queue_size: Mutex<Summary>,
    pub sync_queue_time: Mutex<Summary>,
    pub sync_queue_and_flush_time: Mutex<Summary>,
    pub sync_flush_time: Mutex<Summary>,
    /// Start-up, ms: loading the snapshot (`startup_snap_load_time`), replaying the log
    /// (`startup_txns_load_time`, with `startup_txns_loaded` transactions), both
    /// (`dbinittime`).
    pub startup_snap_load_time: Mutex<Summary>,
    pub startup_txns_load_time: Mutex<Summary>,
    pub startup_txns_loaded: Mutex<Summary>,
    pub dbinittime: Mutex<Summary>,
    /// Counted where they happen, off the core.
    pub off_core: OffCore,
}

/// Events of the accept loops, the connection tasks and the AdminServer.
#[derive(Debug, Default)]
pub struct OffCore {
    /// Connections refused at accept by maxClientCnxns or maxCnxns (`connection_rejected`).
    pub connection_rejected: AtomicU64,
    /// Connections closed without a handshake in time (`sessionless_connections_expired`).
    pub sessionless_connections_expired: AtomicU64,
    /// Failed TLS handshakes on the client port (`unsuccessful_handshake`).
    pub unsuccessful_handshake: AtomicU64,
    /// TLS handshakes under way on the client port (`outstanding_tls_handshake`).
    pub outstanding_tls_handshake: AtomicI64,
    /// Requests refused for being larger than jute.maxbuffer or for not fitting in
    /// largeRequestMaxBytes (`large_requests_rejected`).
    pub large_requests_rejected: AtomicU64,
    /// Plain HTTP connections to an AdminServer with portUnification (`insecure_admin_count`).
    pub insecure_admin_count: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            fsynctime: Mutex::new(Summary::basic()),
            sync_batch: Mutex::new(Summary::basic()),
            snapshottime: Mutex::new(Summary::basic()),
            election_time: Mutex::new(Summary::basic()),
            sync_queue_size: Mutex::new(Summary::basic()),
            sync_queue_time: Mutex::new(Summary::detailed()),
            sync_queue_and_flush_time: Mutex::new(Summary::detailed()),
            sync_flush_time: Mutex::new(Summary::detailed()),
            startup_snap_load_time: Mutex::new(Summary::basic()),
            startup_txns_load_time: Mutex::new(Summary::basic()),
            startup_txns_loaded: Mutex::new(Summary::basic()),
            dbinittime: Mutex::new(Summary::basic()),
            off_core: OffCore::default(),
        }
    }
}

impl Metrics {
    /// The summaries, as samples.
    pub fn samples(&self, out: &mut Vec<Sample>) {
        let summary = |name, help, s: &Mutex<Summary>| {
            Sample::gauge(name, help, Value::Summary(s.lock().view()))
        };
        out.push(summary(
            "fsynctime",
            "Time to fsync the transaction log (ms)",
            &self.fsynctime,
        ));
        out.push(summary(
            "sync_processor_batch_size",
            "Transactions made durable by one fsync",
            &self.sync_batch,
        ));
        out.push(summary(
            "snapshottime",
            "Time to write a snapshot (ms)",
            &self.snapshottime,
        ));
        out.push(summary(
            "election_time",
            "Time from looking to leading or following (ms)",
            &self.election_time,
        ));
        for (name, help, s) in [
            (
                "sync_processor_queue_size",
                "Disk orders the log thread took in one round",
                &self.sync_queue_size,
            ),
            (
                "sync_processor_queue_time_ms",
                "Time disk orders waited for the log thread (ms)",
                &self.sync_queue_time,
            ),
            (
                "sync_processor_queue_and_flush_time_ms",
                "Time from disk orders handed over to their being durable (ms)",
                &self.sync_queue_and_flush_time,
            ),
            (
                "sync_processor_queue_flush_time_ms",
                "Time to write and fsync one round of disk orders (ms)",
                &self.sync_flush_time,
            ),
            (
                "startup_snap_load_time",
                "Loading the snapshot at start (ms)",
                &self.startup_snap_load_time,
            ),
            (
                "startup_txns_load_time",
                "Replaying the log at start (ms)",
                &self.startup_txns_load_time,
            ),
            (
                "startup_txns_loaded",
                "Transactions replayed at start",
                &self.startup_txns_loaded,
            ),
            (
                "dbinittime",
                "Loading the snapshot and replaying the log at start (ms)",
                &self.dbinittime,
            ),
        ] {
            out.push(summary(name, help, s));
        }
        let o = &self.off_core;
        for (name, help, a) in [
            (
                "connection_rejected",
                "Connections refused by maxClientCnxns or maxCnxns",
                &o.connection_rejected,
            ),
            (
                "sessionless_connections_expired",
                "Connections closed without a handshake in time",
                &o.sessionless_connections_expired,
            ),
            (
                "unsuccessful_handshake",
                "Failed TLS handshakes on the client port",
                &o.unsuccessful_handshake,
            ),
            (
                "large_requests_rejected",
                "Requests refused for exceeding jute.maxbuffer or largeRequestMaxBytes",
                &o.large_requests_rejected,
            ),
            (
                "insecure_admin_count",
                "Plain HTTP connections to the AdminServer under portUnification",
                &o.insecure_admin_count,
            ),
        ] {
            let v = Value::Int(a.load(Ordering::Relaxed) as i64);
            out.push(Sample::counter(name, help, v));
        }
    }

    /// Rotates the quantile windows of the shared summaries (every tick).
    pub fn rotate(&self) {
        for s in [
            &self.sync_queue_time,
            &self.sync_queue_and_flush_time,
            &self.sync_flush_time,
        ] {
            s.lock().rotate();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_and_quantiles() {
        let mut s = Summary::detailed();
        for v in 1..=100 {
            s.record(v);
        }
        let v = s.view();
        assert_eq!((v.count, v.sum, v.min, v.max), (100, 5050, 1, 100));
        let q = v.quantiles.unwrap();
        assert_eq!(q[0], 50);
        assert_eq!(q[3], 99);
        s.reset();
        assert_eq!(s.view().count, 0);
    }

    #[test]
    fn flatten_spells_a_summary_out_as_zookeeper() {
        let mut s = Summary::detailed();
        s.record(2);
        s.record(4);
        let sample = Sample::gauge("readlatency", "", Value::Summary(s.view()));
        let mut names = Vec::new();
        flatten(&sample, |n, v| names.push((n.into_owned(), v)));
        let get = |k: &str| names.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("avg_readlatency"), Some(Flat::Float(3.0)));
        assert_eq!(get("cnt_readlatency"), Some(Flat::Int(2)));
        assert_eq!(get("sum_readlatency"), Some(Flat::Int(6)));
        assert!(get("p999_readlatency").is_some());
        assert_eq!(names.len(), 9);
        let text = Sample::gauge("server_state", "", Value::Text("leader".into()));
        let mut one = Vec::new();
        flatten(&text, |n, v| one.push((n.into_owned(), v)));
        assert_eq!(one, vec![("server_state".to_owned(), Flat::Text("leader"))]);
    }

    #[test]
    fn basic_summary_has_no_quantiles() {
        let mut s = Summary::basic();
        s.record(3);
        assert!(s.view().quantiles.is_none());
        assert_eq!(s.view().avg(), 3.0);
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        use paddock_proto::op;
        let mut m = RequestMetrics::default();
        m.record(op::GET_DATA, false, 5, 50);
        m.record(op::GET_DATA, false, 5, 2_000);
        m.record(op::CREATE, true, 50, 10_000_000);
        assert_eq!(m.readlatency.view().count, 2);
        assert_eq!(m.updatelatency.view().count, 1);
        let mut out = Vec::new();
        m.samples(&mut out);
        let Value::Histograms(label, hs) = &out
            .iter()
            .find(|s| s.name == "paddock_request_duration_seconds")
            .unwrap()
            .value
        else {
            panic!("not a histogram")
        };
        assert_eq!(*label, "op");
        let (op, get) = &hs[1];
        assert_eq!(op, "getData");
        assert_eq!(get.cumulative[0], 1);
        assert_eq!(*get.cumulative.last().unwrap(), 2);
        let (_, create) = &hs[0];
        // Slower than the last bucket: only in +Inf (the count).
        assert_eq!(*create.cumulative.last().unwrap(), 0);
        assert_eq!(create.count, 1);
    }
}
