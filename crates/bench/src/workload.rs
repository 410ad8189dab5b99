//! The workloads: their setup, how their sessions run, and their measured result.

use crate::conn::Conn;
use crate::gen::{self, Gen, Patched, Rng};
use crate::procstat::{self, Proc, Sample};
use crate::runner::{self, err_name, Live, Progress, Tally, Window};
use anyhow::{bail, Context, Result};
use paddock_proto::{op, CreateMode, ErrorCode, MultiOp, Request, SetDataRequest};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Every workload, in the order `all` runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    /// Sequential persistent creates with 100-byte values.
    Create100,
    /// Sequential persistent creates with 1 KiB values.
    Create1k,
    /// setData on a pool of keys.
    SetData,
    /// getData on a pool of keys.
    GetData,
    /// sync then getData, sent together: what a ZooKeeper client does for a read that must
    /// see every write acknowledged before it.
    SyncGetData,
    /// getData as a linearizable read (opcode 1001) where the server announces it, else as
    /// sync-getdata, as Paddock's client does.
    LinGetData,
    /// getChildren of a node with 1,000 children.
    GetChildren,
    /// getData/setData at a chosen read ratio.
    Mixed,
    /// Time from a setData on one session to the exists-watch event on another.
    Watch,
    /// Sessions opening, creating an ephemeral, and closing.
    Ephemeral,
    /// Sessions opening and closing, nothing else.
    Sessions,
    /// multi of 10 setData ops.
    Multi,
    /// Numbered creates, 1,000 per parent, as fast as possible (for memory figures).
    Populate,
    /// One session, one request in flight: getData.
    LatencyRead,
    /// One session, one request in flight: setData.
    LatencyWrite,
}

impl Workload {
    /// All workloads in run order.
    pub const ALL: [Workload; 15] = [
        Workload::Create100,
        Workload::Create1k,
        Workload::SetData,
        Workload::GetData,
        Workload::SyncGetData,
        Workload::LinGetData,
        Workload::GetChildren,
        Workload::Mixed,
        Workload::Watch,
        Workload::Ephemeral,
        Workload::Sessions,
        Workload::Multi,
        Workload::Populate,
        Workload::LatencyRead,
        Workload::LatencyWrite,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Create100 => "create-100",
            Workload::Create1k => "create-1k",
            Workload::SetData => "setdata",
            Workload::GetData => "getdata",
            Workload::SyncGetData => "sync-getdata",
            Workload::LinGetData => "lin-getdata",
            Workload::GetChildren => "getchildren",
            Workload::Mixed => "mixed",
            Workload::Watch => "watch",
            Workload::Ephemeral => "ephemeral",
            Workload::Sessions => "sessions",
            Workload::Multi => "multi",
            Workload::Populate => "populate",
            Workload::LatencyRead => "latency-read",
            Workload::LatencyWrite => "latency-write",
        }
    }

    /// One line saying what the workload does.
    pub fn describe(self) -> &'static str {
        match self {
            Workload::Create100 => "create PERSISTENT_SEQUENTIAL znodes with 100-byte values",
            Workload::Create1k => "create PERSISTENT_SEQUENTIAL znodes with 1 KiB values",
            Workload::SetData => "setData (any version) on --keys znodes",
            Workload::GetData => "getData on --keys znodes of --value-size bytes",
            Workload::SyncGetData => {
                "sync, then getData as getdata, sent together (one op = the pair)"
            }
            Workload::LinGetData => {
                "getData wrapped as a linearizable read (opcode 1001) where the server \
                 announces it, else sync-getdata"
            }
            Workload::GetChildren => "getChildren of one node with --children children",
            Workload::Mixed => "getData or setData on random keys, --read-ratio reads",
            Workload::Watch => {
                "exists watch on one session, setData from another: time to the event"
            }
            Workload::Ephemeral => {
                "connect, create an ephemeral, close the session (one op = one cycle)"
            }
            Workload::Sessions => "connect, close the session (one op = one cycle)",
            Workload::Multi => "multi of 10 setData ops",
            Workload::Populate => "create up to --znodes znodes, --per-parent per parent",
            Workload::LatencyRead => "unloaded: one session, one getData in flight",
            Workload::LatencyWrite => "unloaded: one session, one setData in flight",
        }
    }

    /// Whether the workload writes (for the read/write throughput targets).
    pub fn is_write(self) -> bool {
        !matches!(
            self,
            Workload::GetData
                | Workload::SyncGetData
                | Workload::LinGetData
                | Workload::GetChildren
                | Workload::LatencyRead
        )
    }

    /// Parses a workload name (a few aliases accepted).
    pub fn parse(s: &str) -> Option<Workload> {
        let s = s.trim().to_ascii_lowercase();
        Workload::ALL
            .iter()
            .copied()
            .find(|w| w.name() == s)
            .or(match s.as_str() {
                "create" => Some(Workload::Create100),
                "create-1024" | "create-1kib" => Some(Workload::Create1k),
                "set" | "set-data" => Some(Workload::SetData),
                "get" | "get-data" => Some(Workload::GetData),
                "children" | "get-children" => Some(Workload::GetChildren),
                "churn" | "ephemeral-churn" => Some(Workload::Ephemeral),
                "latency" => Some(Workload::LatencyRead),
                _ => None,
            })
    }

    /// Parses a comma list, with `all` for every workload (and `latency` for both latency runs).
    pub fn parse_list(s: &str) -> Result<Vec<Workload>> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "all" {
                out.extend(Workload::ALL);
            } else if part == "latency" {
                out.extend([Workload::LatencyRead, Workload::LatencyWrite]);
            } else {
                match Workload::parse(part) {
                    Some(w) => out.push(w),
                    None => bail!(
                        "unknown workload '{part}'; known: all, {}",
                        Workload::ALL
                            .iter()
                            .map(|w| w.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|w| seen.insert(*w));
        if out.is_empty() {
            bail!("no workload given");
        }
        Ok(out)
    }
}

/// Knobs of a run.
#[derive(Debug, Clone)]
pub struct Params {
    /// Sessions driving load.
    pub sessions: usize,
    /// Requests in flight per session.
    pub inflight: usize,
    /// Measured time.
    pub duration: Duration,
    /// Measured operations instead of a duration.
    pub ops: Option<u64>,
    /// Unmeasured warm-up.
    pub warmup: Duration,
    /// Value size for setData, getData, mixed, multi and populate.
    pub value_size: usize,
    /// Keys for getData, setData, mixed and multi.
    pub keys: usize,
    /// Children of the getchildren node.
    pub children: usize,
    /// Read fraction of mixed.
    pub read_ratio: f64,
    /// Most znodes populate creates.
    pub znodes: u64,
    /// Children per parent in populate.
    pub per_parent: u64,
    /// Watch pairs.
    pub watch_pairs: usize,
    /// Ephemeral churners.
    pub churners: usize,
}

/// Where and what to measure.
#[derive(Debug, Clone)]
pub struct Target {
    /// Server addresses; session i goes to server i mod n.
    pub servers: Vec<SocketAddr>,
    /// Server PIDs for CPU and RSS.
    pub pids: Vec<u32>,
    /// Name of the system under test.
    pub label: String,
    /// Unique per invocation, so runs against one server do not collide.
    pub run_id: String,
    /// No progress line.
    pub quiet: bool,
}

/// CPU and RSS of one server over a measured window.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Process id.
    pub pid: u32,
    /// CPU as a percentage of one core over the window.
    pub cpu_pct: f64,
    /// RSS at the end of the window.
    pub rss_bytes: u64,
}

/// The measured outcome of one workload against one target.
#[derive(Debug, Clone, Default)]
pub struct WorkloadResult {
    /// Workload name.
    pub workload: String,
    /// System under test.
    pub label: String,
    /// Sessions used.
    pub sessions: usize,
    /// In flight per session.
    pub inflight: usize,
    /// Measured operations (failed ones included).
    pub ops: u64,
    /// Measured seconds.
    pub secs: f64,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Latency percentiles and max, nanoseconds.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest latency.
    pub max_ns: u64,
    /// Mean latency.
    pub mean_ns: f64,
    /// Failed operations, disconnects and stalls.
    pub errors: u64,
    /// Failures by kind.
    pub error_detail: BTreeMap<String, u64>,
    /// The bench client's own CPU (% of one core).
    pub client_cpu_pct: f64,
    /// The bench client's RSS at the end.
    pub client_rss_bytes: u64,
    /// Each server's CPU and RSS.
    pub servers: Vec<Usage>,
}

impl WorkloadResult {
    fn from_tally(
        workload: &str,
        target: &Target,
        sessions: usize,
        inflight: usize,
        t: &Tally,
        secs: f64,
        usage: (f64, u64, Vec<Usage>),
    ) -> WorkloadResult {
        let h = &t.hist;
        WorkloadResult {
            workload: workload.to_owned(),
            label: target.label.clone(),
            sessions,
            inflight,
            ops: t.ops,
            secs,
            ops_per_sec: if secs > 0.0 { t.ops as f64 / secs } else { 0.0 },
            p50_ns: h.quantile(0.5),
            p90_ns: h.quantile(0.9),
            p99_ns: h.quantile(0.99),
            p999_ns: h.quantile(0.999),
            max_ns: h.max(),
            mean_ns: h.mean(),
            errors: t.error_count(),
            error_detail: t.errors.clone(),
            client_cpu_pct: usage.0,
            client_rss_bytes: usage.1,
            servers: usage.2,
        }
    }
}

/// CPU/RSS samples of the client and the servers at the start of a window.
struct UsageStart {
    client: Option<Sample>,
    servers: Vec<(u32, Option<Sample>)>,
}

impl UsageStart {
    fn take(pids: &[u32]) -> UsageStart {
        UsageStart {
            client: Proc::SelfProc.sample(),
            servers: pids.iter().map(|&p| (p, Proc::Pid(p).sample())).collect(),
        }
    }
    fn finish(self) -> (f64, u64, Vec<Usage>) {
        let end = Proc::SelfProc.sample();
        let (ccpu, crss) = match (self.client, end) {
            (Some(a), Some(b)) => (procstat::cpu_percent(&a, &b), b.rss_bytes),
            _ => (0.0, 0),
        };
        let servers = self
            .servers
            .into_iter()
            .map(|(pid, a)| match (a, Proc::Pid(pid).sample()) {
                (Some(a), Some(b)) => Usage {
                    pid,
                    cpu_pct: procstat::cpu_percent(&a, &b),
                    rss_bytes: b.rss_bytes,
                },
                _ => Usage {
                    pid,
                    cpu_pct: 0.0,
                    rss_bytes: 0,
                },
            })
            .collect();
        (ccpu, crss, servers)
    }
}

/// Creates `<dir>/p000000` .. for `parents` parents, the populate workloads' first level.
pub async fn create_parents(conn: &mut Conn, dir: &str, parents: u64) -> Result<()> {
    let tpl = Patched::create(
        op::CREATE,
        &format!("{dir}/p######"),
        b"",
        CreateMode::Persistent as i32,
    );
    let bodies: Vec<Vec<u8>> = (0..parents)
        .map(|i| {
            let mut b = tpl.template.clone();
            let (off, width) = tpl.slots[0];
            gen::write_digits(&mut b[off..off + width], i);
            b
        })
        .collect();
    call_all(conn, op::CREATE, &bodies, &[]).await
}

/// Sends every body with `op`, pipelined up to 1,000 at a time, and checks the replies.
pub async fn call_all(conn: &mut Conn, opcode: i32, bodies: &[Vec<u8>], ok: &[i32]) -> Result<()> {
    for chunk in bodies.chunks(1000) {
        let mut xids = std::collections::VecDeque::new();
        for b in chunk {
            xids.push_back(conn.push(opcode, b));
        }
        conn.flush().await?;
        while let Some(x) = xids.pop_front() {
            let r = loop {
                let r = tokio::time::timeout(Duration::from_secs(30), conn.recv())
                    .await
                    .context("setup request not answered within 30 s")??;
                if r.head.xid >= 0 {
                    break r;
                }
            };
            if r.head.xid != x {
                bail!(
                    "setup reply out of order: expected xid {x}, got {}",
                    r.head.xid
                );
            }
            if r.head.err != 0 && !ok.contains(&r.head.err) {
                bail!(
                    "setup {} failed: {}",
                    op::name(opcode),
                    err_name(r.head.err)
                );
            }
        }
    }
    Ok(())
}

/// Creates `path` (persistent, empty); an existing node is fine.
pub async fn ensure_node(conn: &mut Conn, path: &str) -> Result<()> {
    let body = gen::create_body(path, b"", CreateMode::Persistent as i32);
    call_all(conn, op::CREATE, &[body], &[ErrorCode::NodeExists.code()]).await
}

/// The root under which every bench znode lives.
pub const ROOT: &str = "/paddock-bench";

/// A run id unique enough across invocations against one server.
pub fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "{:08x}",
        (nanos ^ ((std::process::id() as u64) << 32)) as u32 ^ (nanos >> 32) as u32
    )
}

/// Connects `n` sessions spread over the servers, starting at server `offset`.
async fn connect_many(servers: &[SocketAddr], n: usize, offset: usize) -> Result<Vec<Conn>> {
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let addr = servers[(i + offset) % servers.len()];
        handles.push(tokio::task::spawn_local(Conn::connect(addr)));
    }
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(h.await.context("connect task failed")??);
    }
    Ok(out)
}

fn multi_check(body: &[u8]) -> Option<String> {
    let res = paddock_proto::decode_multi_response(&mut paddock_proto::Reader::new(body));
    match res {
        Err(e) => Some(format!("bad multi reply: {e}")),
        Ok(v) => v.iter().find_map(|r| match r {
            paddock_proto::OpResult::Error(e) if *e != 0 => {
                Some(format!("multi: {}", err_name(*e)))
            }
            _ => None,
        }),
    }
}

/// Runs one workload against `target` and returns its measured result.
pub async fn run_workload(w: Workload, p: &Params, target: &Target) -> Result<WorkloadResult> {
    let servers = &target.servers;
    let mut setup = Conn::connect(servers[0]).await.context("setup session")?;
    ensure_node(&mut setup, ROOT).await?;
    let run_dir = format!("{ROOT}/{}", target.run_id);
    ensure_node(&mut setup, &run_dir).await?;
    let dir = format!("{run_dir}/{}", w.name());
    ensure_node(&mut setup, &dir).await?;

    let value = vec![b'v'; p.value_size];
    let key_path = |i: usize| format!("{dir}/k{i:06}");
    let make_keys = |n: usize| -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| gen::create_body(&key_path(i), &value, CreateMode::Persistent as i32))
            .collect()
    };
    let keys = p.keys.max(10);

    // Set by populate: its shared counter and limit, to tell "ran out of znodes" from "ran out of time".
    let mut populate_counter: Option<(Rc<Cell<u64>>, u64)> = None;
    // Pipelined workloads: (sessions, inflight, per-session generator factory, ok codes, check).
    type Factory = Box<dyn Fn(usize) -> Gen>;
    let pipelined: Option<(usize, usize, Factory, Option<runner::BodyCheck>)> = match w {
        Workload::Create100 | Workload::Create1k => {
            let size = if w == Workload::Create100 { 100 } else { 1024 };
            let body = Rc::new(vec![gen::create_body(
                &format!("{dir}/n-"),
                &vec![b'c'; size],
                CreateMode::PersistentSequential as i32,
            )]);
            let f: Factory = Box::new(move |_| Gen::Cycle {
                op: op::CREATE,
                bodies: body.clone(),
                next: 0,
            });
            Some((p.sessions, p.inflight, f, None))
        }
        Workload::SetData
        | Workload::GetData
        | Workload::SyncGetData
        | Workload::LinGetData
        | Workload::LatencyRead
        | Workload::LatencyWrite => {
            call_all(&mut setup, op::CREATE, &make_keys(keys), &[]).await?;
            let read = matches!(
                w,
                Workload::GetData
                    | Workload::SyncGetData
                    | Workload::LinGetData
                    | Workload::LatencyRead
            );
            let bodies: Vec<Vec<u8>> = (0..keys)
                .map(|i| {
                    if read {
                        gen::path_watch_body(&key_path(i), false)
                    } else {
                        gen::set_data_body(&key_path(i), &value)
                    }
                })
                .collect();
            let bodies = Rc::new(bodies);
            let opc = if read { op::GET_DATA } else { op::SET_DATA };
            let (s, k) = if matches!(w, Workload::LatencyRead | Workload::LatencyWrite) {
                (1, 1)
            } else {
                (p.sessions, p.inflight)
            };
            let sync = Rc::new(gen::sync_body(&dir));
            let paired = matches!(w, Workload::SyncGetData | Workload::LinGetData);
            let wrapped = (w == Workload::LinGetData).then(|| {
                Rc::new(
                    bodies
                        .iter()
                        .map(|b| paddock_proto::linearizable_body(op::GET_DATA, b))
                        .collect::<Vec<_>>(),
                )
            });
            let f: Factory = Box::new(move |i| {
                let next = i * bodies.len() / s.max(1);
                if paired {
                    Gen::Paired {
                        lead: (op::SYNC, sync.clone()),
                        op: opc,
                        bodies: bodies.clone(),
                        next,
                        wrapped: wrapped.clone(),
                    }
                } else {
                    Gen::Cycle {
                        op: opc,
                        bodies: bodies.clone(),
                        next,
                    }
                }
            });
            Some((s, k, f, None))
        }
        Workload::GetChildren => {
            let bodies: Vec<Vec<u8>> = (0..p.children)
                .map(|i| {
                    gen::create_body(
                        &format!("{dir}/c{i:06}"),
                        b"",
                        CreateMode::Persistent as i32,
                    )
                })
                .collect();
            call_all(&mut setup, op::CREATE, &bodies, &[]).await?;
            let body = Rc::new(vec![gen::path_watch_body(&dir, false)]);
            let f: Factory = Box::new(move |_| Gen::Cycle {
                op: op::GET_CHILDREN,
                bodies: body.clone(),
                next: 0,
            });
            Some((p.sessions, p.inflight, f, None))
        }
        Workload::Mixed => {
            call_all(&mut setup, op::CREATE, &make_keys(keys), &[]).await?;
            let reads = Rc::new(
                (0..keys)
                    .map(|i| gen::path_watch_body(&key_path(i), false))
                    .collect::<Vec<_>>(),
            );
            let writes = Rc::new(
                (0..keys)
                    .map(|i| gen::set_data_body(&key_path(i), &value))
                    .collect::<Vec<_>>(),
            );
            let threshold = (p.read_ratio.clamp(0.0, 1.0) * 4_294_967_296.0) as u64;
            let f: Factory = Box::new(move |i| Gen::Mixed {
                read: (op::GET_DATA, reads.clone()),
                write: (op::SET_DATA, writes.clone()),
                read_threshold: threshold,
                rng: Rng::new(0x5EED + i as u64),
            });
            Some((p.sessions, p.inflight, f, None))
        }
        Workload::Multi => {
            call_all(&mut setup, op::CREATE, &make_keys(keys), &[]).await?;
            let groups = keys / 10;
            let bodies: Vec<Vec<u8>> = (0..groups)
                .map(|g| {
                    let ops = (0..10)
                        .map(|j| {
                            MultiOp::SetData(SetDataRequest {
                                path: key_path(g * 10 + j),
                                data: Some(value.clone()),
                                version: -1,
                            })
                        })
                        .collect();
                    let mut b = Vec::new();
                    Request::Multi(ops).encode_body(&mut b);
                    b
                })
                .collect();
            let bodies = Rc::new(bodies);
            let s = p.sessions;
            let f: Factory = Box::new(move |i| Gen::Cycle {
                op: op::MULTI,
                bodies: bodies.clone(),
                next: i * bodies.len() / s.max(1),
            });
            Some((
                p.sessions,
                p.inflight,
                f,
                Some(multi_check as runner::BodyCheck),
            ))
        }
        Workload::Populate => {
            let parents = p.znodes.div_ceil(p.per_parent.max(1));
            create_parents(&mut setup, &dir, parents).await?;
            let child = Rc::new(Patched::create(
                op::CREATE,
                &format!("{dir}/p######/c######"),
                &value,
                CreateMode::Persistent as i32,
            ));
            let counter = Rc::new(Cell::new(0u64));
            let (limit, pp) = (p.znodes, p.per_parent.max(1));
            populate_counter = Some((counter.clone(), limit));
            let f: Factory = Box::new(move |_| Gen::Counted {
                tpl: child.clone(),
                counter: counter.clone(),
                limit,
                per_parent: Some(pp),
            });
            Some((p.sessions, p.inflight, f, None))
        }
        Workload::Watch | Workload::Ephemeral | Workload::Sessions => None,
    };

    let start = Instant::now();
    let warm_end = start + p.warmup;
    let (end, budget) = match p.ops {
        Some(n) => (
            warm_end + Duration::from_secs(3600),
            Some(Rc::new(Cell::new(n))),
        ),
        None => (warm_end + p.duration, None),
    };
    let win = Rc::new(Window {
        warm_end,
        end,
        budget,
    });
    let live = Rc::new(Live::default());

    let (sessions, inflight, total, usage) = match pipelined {
        Some((sessions, inflight, factory, check)) => {
            let conns = connect_many(servers, sessions, 0).await?;
            // Reset the window: connecting is not part of the warm-up. Populate has none: it
            // creates a fixed number of znodes, all of which count.
            let warmup = if w == Workload::Populate {
                Duration::ZERO
            } else {
                p.warmup
            };
            let start = Instant::now();
            let win = Rc::new(Window {
                warm_end: start + warmup,
                end: start + (win.end - win.warm_end) + warmup,
                budget: win.budget.clone(),
            });
            let _progress =
                Progress::start(w.name().to_owned(), live.clone(), win.clone(), target.quiet);
            let mut handles = Vec::new();
            for (i, c) in conns.into_iter().enumerate() {
                let g = factory(i);
                handles.push(tokio::task::spawn_local(runner::run_session(
                    c,
                    g,
                    inflight,
                    win.clone(),
                    live.clone(),
                    &[],
                    check,
                )));
            }
            let usage = sleep_then_sample(&win, &target.pids).await;
            let mut total = Tally::default();
            let mut open = Vec::new();
            for h in handles {
                let (t, c) = h.await.context("session task failed")?;
                total.merge(&t);
                open.extend(c);
            }
            let usage = usage.finish();
            for c in open {
                let _ = tokio::time::timeout(Duration::from_secs(5), c.close()).await;
            }
            let mut secs = measured_secs(&win, &total);
            if let (Some((c, limit)), Some(last)) = (&populate_counter, total.last_done) {
                if c.get() >= *limit {
                    // Finished before the window closed: divide by the time it took.
                    secs = secs.min(last.saturating_duration_since(win.warm_end).as_secs_f64());
                }
            }
            let _ = setup.close().await;
            return Ok(WorkloadResult::from_tally(
                w.name(),
                target,
                sessions,
                inflight,
                &total,
                secs,
                usage,
            ));
        }
        None if w == Workload::Watch => {
            let pairs = p.watch_pairs.max(1);
            let mut bodies = Vec::new();
            for i in 0..pairs {
                bodies.push(gen::create_body(
                    &format!("{dir}/w{i}"),
                    &value,
                    CreateMode::Persistent as i32,
                ));
            }
            call_all(&mut setup, op::CREATE, &bodies, &[]).await?;
            let mut handles = Vec::new();
            for i in 0..pairs {
                let a = Conn::connect(servers[(2 * i) % servers.len()]).await?;
                let b = Conn::connect(servers[(2 * i + 1) % servers.len()]).await?;
                let path = format!("{dir}/w{i}");
                handles.push(tokio::task::spawn_local(watch_pair(
                    a,
                    b,
                    path,
                    value.clone(),
                    win.clone(),
                    live.clone(),
                )));
            }
            let _progress =
                Progress::start(w.name().to_owned(), live.clone(), win.clone(), target.quiet);
            let usage = sleep_then_sample(&win, &target.pids).await;
            let mut total = Tally::default();
            for h in handles {
                total.merge(&h.await.context("watch task failed")?);
            }
            (pairs * 2, 1, total, usage.finish())
        }
        None => {
            let churners = p.churners.max(1);
            // The sessions workload opens and closes sessions and does nothing in between.
            let body = (w == Workload::Ephemeral).then(|| {
                Rc::new(gen::create_body(
                    &format!("{dir}/e-"),
                    b"",
                    CreateMode::EphemeralSequential as i32,
                ))
            });
            let mut handles = Vec::new();
            for i in 0..churners {
                let addrs = servers.clone();
                handles.push(tokio::task::spawn_local(churn(
                    addrs,
                    i,
                    body.clone(),
                    win.clone(),
                    live.clone(),
                )));
            }
            let _progress =
                Progress::start(w.name().to_owned(), live.clone(), win.clone(), target.quiet);
            let usage = sleep_then_sample(&win, &target.pids).await;
            let mut total = Tally::default();
            for h in handles {
                total.merge(&h.await.context("churn task failed")?);
            }
            (churners, 1, total, usage.finish())
        }
    };
    let secs = measured_secs(&win, &total);
    let _ = setup.close().await;
    Ok(WorkloadResult::from_tally(
        w.name(),
        target,
        sessions,
        inflight,
        &total,
        secs,
        usage,
    ))
}

/// Seconds the throughput is divided by: the window, or up to the last completion when
/// counting operations.
fn measured_secs(win: &Window, t: &Tally) -> f64 {
    if win.budget.is_some() {
        t.last_done
            .map(|d| d.saturating_duration_since(win.warm_end).as_secs_f64())
            .unwrap_or(0.0)
    } else {
        win.end
            .saturating_duration_since(win.warm_end)
            .as_secs_f64()
    }
}

/// Sleeps to the end of warm-up and takes the starting usage samples.
async fn sleep_then_sample(win: &Window, pids: &[u32]) -> UsageStart {
    tokio::time::sleep_until(win.warm_end.into()).await;
    UsageStart::take(pids)
}

fn budget_take(win: &Window, now: Instant) -> bool {
    if now < win.warm_end {
        return true;
    }
    match &win.budget {
        None => true,
        Some(b) if b.get() > 0 => {
            b.set(b.get() - 1);
            true
        }
        Some(_) => false,
    }
}

/// One watch pair: session `a` sets an exists watch, session `b` changes the node, and the
/// time from sending the setData to `a` receiving the event is one sample.
async fn watch_pair(
    mut a: Conn,
    mut b: Conn,
    path: String,
    value: Vec<u8>,
    win: Rc<Window>,
    live: Rc<Live>,
) -> Tally {
    let mut t = Tally::default();
    let exists = gen::path_watch_body(&path, true);
    let set = gen::set_data_body(&path, &value);
    let limit = Duration::from_secs(10);
    loop {
        let now = Instant::now();
        if now >= win.end || !budget_take(&win, now) {
            break;
        }
        let step = async {
            let r = a.call(op::EXISTS, &exists).await?;
            if r.head.err != 0 {
                bail!("exists: {}", err_name(r.head.err));
            }
            let t0 = Instant::now();
            let xid = b.push(op::SET_DATA, &set);
            b.flush().await?;
            let ev = loop {
                let r = a.recv().await?;
                if r.head.xid == -1 {
                    break Instant::now();
                }
            };
            let r = b.recv().await?;
            if r.head.xid != xid {
                bail!("setData reply out of order");
            }
            if r.head.err != 0 {
                bail!("setData: {}", err_name(r.head.err));
            }
            Ok((t0, ev))
        };
        match tokio::time::timeout(limit, step).await {
            Ok(Ok((t0, ev))) => {
                if t0 >= win.warm_end && ev <= win.end {
                    t.hist.record(ev.duration_since(t0).as_nanos() as u64);
                    t.ops += 1;
                    t.last_done = Some(ev);
                    live.ops.set(live.ops.get() + 1);
                }
            }
            Ok(Err(e)) => {
                t.error(format!("watch: {e:#}"));
                live.errors.set(live.errors.get() + 1);
                live.broken.set(live.broken.get() + 1);
                return t;
            }
            Err(_) => {
                t.error("watch: event or reply not received within 10 s");
                live.errors.set(live.errors.get() + 1);
                live.broken.set(live.broken.get() + 1);
                return t;
            }
        }
    }
    let _ = a.close().await;
    let _ = b.close().await;
    t
}

/// One churner: connect, create an ephemeral, close; one cycle is one sample.
async fn churn(
    servers: Vec<SocketAddr>,
    idx: usize,
    create: Option<Rc<Vec<u8>>>,
    win: Rc<Window>,
    live: Rc<Live>,
) -> Tally {
    let mut t = Tally::default();
    let mut k = idx;
    loop {
        let now = Instant::now();
        if now >= win.end || !budget_take(&win, now) {
            break;
        }
        let addr = servers[k % servers.len()];
        k += 1;
        let cycle = async {
            let mut c = Conn::connect(addr).await?;
            if let Some(create) = &create {
                let r = c.call(op::CREATE, create).await?;
                if r.head.err != 0 {
                    bail!("create ephemeral: {}", err_name(r.head.err));
                }
            }
            c.close().await?;
            Ok(())
        };
        let res = tokio::time::timeout(Duration::from_secs(15), cycle).await;
        let done = Instant::now();
        let measured = now >= win.warm_end && done <= win.end;
        match res {
            Ok(Ok(())) => {
                if measured {
                    t.hist.record(done.duration_since(now).as_nanos() as u64);
                    t.ops += 1;
                    t.last_done = Some(done);
                    live.ops.set(live.ops.get() + 1);
                }
            }
            Ok(Err(e)) => {
                t.ops += measured as u64;
                t.error(format!("churn: {e:#}"));
                live.errors.set(live.errors.get() + 1);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(_) => {
                t.ops += measured as u64;
                t.error("churn: cycle not finished within 15 s");
                live.errors.set(live.errors.get() + 1);
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(Workload::parse(w.name()), Some(w));
        }
        assert_eq!(
            Workload::parse_list("all").unwrap().len(),
            Workload::ALL.len()
        );
        assert_eq!(
            Workload::parse_list("getdata, latency,getdata").unwrap(),
            vec![
                Workload::GetData,
                Workload::LatencyRead,
                Workload::LatencyWrite
            ]
        );
        assert!(Workload::parse_list("nope").is_err());
        assert!(Workload::parse_list("").is_err());
    }
}
