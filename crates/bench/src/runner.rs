//! The pipelined session loop and a measured phase over many sessions on one thread.

use crate::conn::Conn;
use crate::gen::Gen;
use crate::hist::Histogram;
use paddock_proto::ErrorCode;
use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::io::IsTerminal;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long after the end of a phase unanswered requests count as a stall.
pub const STALL_GRACE: Duration = Duration::from_secs(15);

/// The time window of a phase.
#[derive(Debug, Clone)]
pub struct Window {
    /// Replies to requests sent before this are not measured.
    pub warm_end: Instant,
    /// No request is sent after this.
    pub end: Instant,
    /// In op-count mode: measured requests left to send, shared by all sessions.
    pub budget: Option<Rc<Cell<u64>>>,
}

/// Live counters for the progress line, shared by the sessions of a phase.
#[derive(Debug, Default)]
pub struct Live {
    /// Measured operations completed.
    pub ops: Cell<u64>,
    /// Measured operations that failed.
    pub errors: Cell<u64>,
    /// Sessions that ended early (disconnects, stalls).
    pub broken: Cell<u64>,
}

/// What one session (or one churner, or one watch pair) measured.
#[derive(Debug, Default)]
pub struct Tally {
    /// Latencies of measured operations (ns).
    pub hist: Histogram,
    /// Measured operations, failed ones included.
    pub ops: u64,
    /// Failed operations by error name.
    pub errors: BTreeMap<String, u64>,
    /// When the last measured operation completed.
    pub last_done: Option<Instant>,
}

impl Tally {
    /// Counts one failure of kind `what`.
    pub fn error(&mut self, what: impl Into<String>) {
        *self.errors.entry(what.into()).or_default() += 1;
    }

    /// Total failures.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds another tally into this one.
    pub fn merge(&mut self, o: &Tally) {
        self.hist.merge(&o.hist);
        self.ops += o.ops;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        self.last_done = match (self.last_done, o.last_done) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Name of a ZooKeeper error code for reports.
pub fn err_name(code: i32) -> String {
    match ErrorCode::from_code(code) {
        Some(e) => format!("{e:?}"),
        None => format!("error {code}"),
    }
}

/// Inspects a successful reply's body; returns an error name if it reports a failure
/// (a multi whose header says ok but whose results hold an error).
pub type BodyCheck = fn(&[u8]) -> Option<String>;

/// Drives one session: keeps `inflight` requests outstanding until the window ends (or the
/// generator or budget runs out), then drains. Replies come back in request order.
pub async fn run_session(
    mut conn: Conn,
    mut gen: Gen,
    inflight: usize,
    w: Rc<Window>,
    live: Rc<Live>,
    ok_codes: &'static [i32],
    check_body: Option<BodyCheck>,
) -> (Tally, Option<Conn>) {
    let mut t = Tally::default();
    let mut pending: VecDeque<(i32, Instant)> = VecDeque::with_capacity(inflight);
    let mut stopping = false;
    let deadline = tokio::time::sleep_until(w.end.into());
    tokio::pin!(deadline);
    let mut grace_started = false;
    let leads = gen.leads();
    loop {
        let now = Instant::now();
        if !stopping && now >= w.end {
            stopping = true;
        }
        if !stopping {
            while pending.len() < inflight {
                if now >= w.warm_end {
                    if let Some(b) = &w.budget {
                        let left = b.get();
                        if left == 0 {
                            stopping = true;
                            break;
                        }
                        b.set(left - 1);
                    }
                }
                match gen.push_next(&mut conn) {
                    Some(xid) => pending.push_back((xid, now)),
                    None => {
                        stopping = true;
                        break;
                    }
                }
            }
        }
        if pending.is_empty() && !conn.has_pending_writes() {
            break;
        }
        let io = tokio::select! {
            r = conn.io() => Some(r),
            _ = &mut deadline => None,
        };
        match io {
            None => {
                if grace_started {
                    t.error(format!(
                        "stall: {} requests unanswered {}s after the run ended",
                        pending.len(),
                        STALL_GRACE.as_secs()
                    ));
                    live.broken.set(live.broken.get() + 1);
                    return (t, None);
                }
                stopping = true;
                grace_started = true;
                deadline
                    .as_mut()
                    .reset((Instant::now() + STALL_GRACE).into());
                continue;
            }
            Some(Err(e)) => {
                t.error(format!("disconnect: {e}"));
                live.broken.set(live.broken.get() + 1);
                return (t, None);
            }
            Some(Ok(())) => {}
        }
        let done = Instant::now();
        let mut bad: Option<String> = None;
        let (mut n_ops, mut n_err) = (0u64, 0u64);
        let r = conn.drain_replies(|h, body| {
            if h.xid < 0 {
                return; // watch events (-1) and pings (-2)
            }
            if leads && pending.front().is_some_and(|&(xid, _)| h.xid < xid) {
                return; // the leading request of the op in front (its sync)
            }
            let Some((xid, sent)) = pending.pop_front() else {
                bad.get_or_insert_with(|| format!("reply with xid {} but nothing pending", h.xid));
                return;
            };
            if xid != h.xid {
                bad.get_or_insert_with(|| {
                    format!("reply out of order: expected xid {xid}, got {}", h.xid)
                });
            }
            if sent >= w.warm_end && done <= w.end {
                t.hist.record(done.duration_since(sent).as_nanos() as u64);
                n_ops += 1;
                if h.err != 0 && !ok_codes.contains(&h.err) {
                    n_err += 1;
                    *t.errors.entry(err_name(h.err)).or_default() += 1;
                } else if let Some(e) = check_body.and_then(|c| c(body)) {
                    n_err += 1;
                    *t.errors.entry(e).or_default() += 1;
                }
            }
        });
        if n_ops > 0 {
            t.ops += n_ops;
            t.last_done = Some(done);
            live.ops.set(live.ops.get() + n_ops);
            live.errors.set(live.errors.get() + n_err);
        }
        if let Err(e) = r {
            t.error(format!("protocol: {e}"));
            live.broken.set(live.broken.get() + 1);
            return (t, None);
        }
        if let Some(b) = bad {
            t.error(format!("protocol: {b}"));
            live.broken.set(live.broken.get() + 1);
            return (t, None);
        }
    }
    (t, Some(conn))
}

/// Prints a progress line on stderr every second until dropped.
pub struct Progress {
    handle: Option<tokio::task::JoinHandle<()>>,
    tty: bool,
}

impl Progress {
    /// Starts the progress printer for a phase named `name`: on a terminal only, and not
    /// with `quiet` (redirected output stays the report alone).
    pub fn start(name: String, live: Rc<Live>, w: Rc<Window>, quiet: bool) -> Progress {
        let tty = std::io::stderr().is_terminal();
        if quiet || !tty {
            return Progress { handle: None, tty };
        }
        let handle = tokio::task::spawn_local(async move {
            let mut last_ops = 0u64;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let mut n = 0u64;
            loop {
                tick.tick().await;
                n += 1;
                let now = Instant::now();
                let ops = live.ops.get();
                let phase = if now < w.warm_end {
                    "warm-up"
                } else {
                    "measuring"
                };
                let line = format!(
                    "[{name}] {phase} {n}s  {} ops/s  total {}  errors {}{}",
                    ops - last_ops,
                    ops,
                    live.errors.get(),
                    if live.broken.get() > 0 {
                        format!("  broken sessions {}", live.broken.get())
                    } else {
                        String::new()
                    }
                );
                last_ops = ops;
                eprint!("\r\x1b[2K{line}");
            }
        });
        Progress {
            handle: Some(handle),
            tty,
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
            if self.tty {
                eprint!("\r\x1b[2K");
            }
        }
    }
}
