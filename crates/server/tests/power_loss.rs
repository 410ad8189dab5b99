//! Power loss, simulated at every step. The storage code (the log stage carrying out the
//! replication core's disk orders, as every server does; the writer, segment roll, fuzzy
//! snapshot, purge, recovery) runs unchanged over `SimFs`, which forgets what was not
//! fsynced when the power fails, possibly keeping a torn part of it. A deterministic workload
//! runs until the power fails at step k, for every k; then recovery must succeed, keep every
//! write that was acknowledged, and give exactly the tree of a prefix of the history.
//! A planted reply-before-fsync bug must be caught.

use paddock_proto::{Acl, Create, CreateKind, DeleteRequest, Request, SetDataRequest};
use paddock_server::log::{DiskError, DiskOp, DiskPlaces, LogStage};
use paddock_server::storage::fs::Fs;
use paddock_server::storage::purge::purge;
use paddock_server::storage::recovery::recover;
use paddock_server::storage::sim_fs::SimFs;
use paddock_server::storage::snapshot::SnapshotWriter;
use paddock_server::storage::txn_log::{encode_records, LogWriter};
use paddock_server::storage::{log_dir, snap_dir, StorageError};
use paddock_tree::{AuthInfo, DataTree, Prep, PrepConfig, Stamp, Txn};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

const DATA: &str = "/data";
const S1: i64 = 0x0100_0000_0000_0001;
const S2: i64 = 0x0100_0000_0000_0002;
/// Small segments, so the workload rolls the log many times.
const SEGMENT_BYTES: u64 = 3000;
/// Transactions applied between snapshots.
const SNAPSHOT_EVERY: usize = 45;

fn create(path: &str, flags: i32, data: Vec<u8>) -> Request {
    Request::Create(Create {
        kind: CreateKind::Create2,
        path: path.into(),
        data: Some(data),
        acl: Acl::open_unsafe(),
        flags,
        ttl: -1,
    })
}

/// A fixed history of transactions (zxid i+1 at index i), each prepared against the tree left
/// by the ones before it, and the digest of the tree after each prefix.
struct History {
    txns: Vec<Txn>,
    /// digests[z] is the digest after the first z transactions.
    digests: Vec<u64>,
}

fn history(n: usize) -> History {
    let mut tree = DataTree::new();
    let mut prep = Prep::new(PrepConfig::default());
    let auth = AuthInfo::for_ip("127.0.0.1");
    let mut txns = Vec::new();
    let mut digests = vec![tree.digest()];
    for i in 0..n {
        let at = Stamp {
            zxid: i as i64 + 1,
            time: 1_000 + i as i64,
        };
        let t = match i % 40 {
            0 => prep.create_session(at, S1, 30_000, None),
            1 => prep.create_session(at, S2, 30_000, Some([2; 16])),
            39 => prep.close_session(&tree, at, S2, i as i32),
            _ => {
                let data = vec![b'a' + (i % 26) as u8; 20 + i % 60];
                let req = match i % 6 {
                    0 | 1 => create(&format!("/n{}", i % 13), 0, data),
                    2 => create(&format!("/e{}", i % 7), 1, data),
                    3 => Request::SetData(SetDataRequest {
                        path: format!("/n{}", (i * 5) % 13),
                        data: Some(data),
                        version: -1,
                    }),
                    4 => Request::Delete(DeleteRequest {
                        path: format!("/n{}", (i * 3) % 13),
                        version: -1,
                    }),
                    _ => create("/s-", 2, data),
                };
                let who = if i % 6 == 2 { S2 } else { S1 };
                prep.prep(&tree, at, who, i as i32, &auth, &req)
            }
        };
        tree.apply(&t);
        prep.applied(t.zxid);
        digests.push(tree.digest());
        txns.push(t);
    }
    History { txns, digests }
}

/// Why a run stopped.
#[derive(Debug)]
enum Stop {
    PowerFailed,
    Finished,
}

/// What a run saw acknowledged.
#[derive(Default)]
struct Acks {
    max: i64,
}

/// A deterministic pseudo-random sequence (xorshift), so every failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The log stage as the server's log thread drives it: appends become disk orders with
/// sequence numbers, carried out in order; what it reports durable is acknowledged. Orders a
/// full disk left undone stay queued for the next round, as in the log thread.
struct Orders {
    stage: LogStage,
    places: DiskPlaces,
    queue: VecDeque<DiskOp>,
    seq: u64,
    /// The last zxid of each append not yet reported durable, by sequence number.
    ends: VecDeque<(u64, i64)>,
}

impl Orders {
    fn new(fs: &Fs, w: LogWriter) -> Orders {
        Orders {
            stage: LogStage::new(w),
            places: DiskPlaces {
                fs: fs.clone(),
                data_dir: Path::new(DATA).to_owned(),
            },
            queue: VecDeque::new(),
            seq: 0,
            ends: VecDeque::new(),
        }
    }

    /// Queues an append of `txns` (zxids first..).
    fn append(&mut self, txns: &[Txn]) {
        let mut records = Vec::new();
        encode_records(txns, &mut records);
        self.seq += 1;
        self.queue.push_back(DiskOp::Append {
            seq: self.seq,
            records,
            first_zxid: txns[0].zxid,
        });
        self.ends.push_back((self.seq, txns[txns.len() - 1].zxid));
    }

    /// One round of the log thread; returns the zxid now durable (if any advanced) and the
    /// error that stopped the round.
    fn round(&mut self) -> (Option<i64>, Option<DiskError>) {
        let (through, err) = match self.stage.disk_ops(&self.places, &mut self.queue) {
            Ok(seq) => (seq, None),
            Err(DiskError::Full { durable, msg }) => {
                (durable, Some(DiskError::Full { durable, msg }))
            }
            Err(e) => (0, Some(e)),
        };
        let mut zxid = None;
        while self.ends.front().is_some_and(|(s, _)| *s <= through) {
            zxid = self.ends.pop_front().map(|(_, z)| z);
        }
        (zxid, err)
    }
}

fn dirs() -> (&'static Path, std::path::PathBuf, std::path::PathBuf) {
    let d = Path::new(DATA);
    (d, snap_dir(d), log_dir(d))
}

/// Runs the server's storage path over `fs` from whatever state it is in: recovery, then the
/// history from where recovery left off, in batches of 1-4 transactions grouped 1-3 to an
/// fsync, with a fuzzy snapshot (walked while later batches are made durable and applied) and
/// a purge every SNAPSHOT_EVERY transactions. Stops at the end of `upto` or when power fails.
fn run(
    fs: &Fs,
    sim: &SimFs,
    h: &History,
    round: u64,
    reply_before_fsync: bool,
    acks: &mut Acks,
) -> Result<Stop, StorageError> {
    let upto = h.txns.len();
    let (data, sdir, ldir) = dirs();
    let rec = match recover(fs, data, data) {
        Ok(r) => r,
        Err(_) if sim.is_off() => return Ok(Stop::PowerFailed),
        Err(e) => return Err(e),
    };
    let mut tree = rec.tree;
    let mut w = LogWriter::open(fs, &ldir, rec.log_tail, true, rec.dbid)?;
    w.set_segment_bytes(SEGMENT_BYTES);
    let mut orders = Orders::new(fs, w);
    orders.stage.reply_before_fsync = reply_before_fsync;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (round << 20) ^ tree.last_zxid() as u64);
    let mut next = tree.last_zxid() as usize; // index of the next txn to log
    let mut last_snapshot = tree.last_zxid() as usize;

    // Logs one group of batches and applies what became durable. Returns false when the
    // power failed.
    let mut step = |tree: &mut DataTree, next: &mut usize, acks: &mut Acks| -> bool {
        for _ in 0..1 + rng.below(3) {
            let n = 1 + rng.below(4) as usize;
            let end = (*next + n).min(upto);
            if end == *next {
                break;
            }
            orders.append(&h.txns[*next..end]);
            *next = end;
        }
        let (durable, err) = orders.round();
        if let Some(up_to) = durable {
            acks.max = acks.max.max(up_to);
            while tree.last_zxid() < up_to {
                tree.apply(&h.txns[tree.last_zxid() as usize]);
            }
        }
        if let Some(e) = err {
            assert!(sim.is_off(), "a disk order failed with power on: {e}");
        }
        !sim.is_off()
    };

    while next < upto {
        if !step(&mut tree, &mut next, acks) {
            return Ok(Stop::PowerFailed);
        }
        if tree.last_zxid() as usize >= last_snapshot + SNAPSHOT_EVERY {
            last_snapshot = tree.last_zxid() as usize;
            // A fuzzy snapshot: begun at what is applied now, walked while more is logged
            // and applied.
            let sessions = paddock_server::storage::snapshot::SessionTable::of(&tree);
            let mut sw =
                match SnapshotWriter::create(fs, &sdir, tree.last_zxid(), rec.dbid, &sessions) {
                    Ok(sw) => sw,
                    Err(_) if sim.is_off() => return Ok(Stop::PowerFailed),
                    Err(e) => panic!("snapshot create: {e}"),
                };
            let mut cur: Option<String> = None;
            let mut written = 0;
            while let Some(p) = tree.snapshot_successor(cur.as_deref()) {
                if let Some(n) = tree.snap_node(&p) {
                    if sw.node(&n).is_err() {
                        assert!(sim.is_off(), "a snapshot write failed with power on");
                        return Ok(Stop::PowerFailed);
                    }
                }
                cur = Some(p);
                written += 1;
                if written % 4 == 0 && next < upto && !step(&mut tree, &mut next, acks) {
                    return Ok(Stop::PowerFailed);
                }
            }
            if let Err(e) = sw.finish() {
                assert!(sim.is_off(), "snapshot finish failed with power on: {e}");
                return Ok(Stop::PowerFailed);
            }
            if let Err(e) = purge(fs, data, data, 3) {
                assert!(sim.is_off(), "purge failed with power on: {e}");
                return Ok(Stop::PowerFailed);
            }
        }
    }
    Ok(Stop::Finished)
}

/// Recovers after a power cycle and checks: recovery succeeds (no refusal: a crash is not
/// corruption), nothing acknowledged is lost, and the tree is exactly the history's at the
/// recovered zxid (nothing half-applied, nothing invented).
fn check_recovery(fs: &Fs, h: &History, acks: &Acks, what: &str) -> Result<i64, String> {
    let (data, _, _) = dirs();
    let rec = recover(fs, data, data).map_err(|e| format!("{what}: recovery refused: {e}"))?;
    let z = rec.tree.last_zxid();
    if z < acks.max {
        return Err(format!(
            "{what}: acknowledged up to 0x{:x} but recovered only up to 0x{z:x}",
            acks.max
        ));
    }
    if z as usize >= h.digests.len() {
        return Err(format!("{what}: recovered 0x{z:x}, beyond the history"));
    }
    if rec.tree.digest() != h.digests[z as usize] {
        return Err(format!(
            "{what}: the recovered tree at 0x{z:x} is not the history's tree at that zxid"
        ));
    }
    Ok(z)
}

fn new_disk() -> (SimFs, Fs) {
    let sim = SimFs::new();
    let fs: Fs = Arc::new(sim.clone());
    (sim, fs)
}

/// Power fails at step k of the workload; after the power cycle recovery is checked, then the
/// workload goes on from the recovered state to the end, power is cut again (keeping nothing
/// unsynced) and recovery is checked once more.
fn crash_at(h: &History, round: u64, k: u64, keep_mode: u64, bug: bool) -> Result<(), String> {
    let (sim, fs) = new_disk();
    sim.fs_create_dirs();
    sim.fail_after_steps(k);
    let mut acks = Acks::default();
    let stop = run(&fs, &sim, h, round, bug, &mut acks).map_err(|e| e.to_string())?;
    let mut rng = Rng((round << 32) + k * 7919 + keep_mode + 1);
    sim.power_cycle(|n| match keep_mode {
        0 => 0,
        1 => n,
        _ => rng.below(n + 1),
    });
    let what =
        format!("round {round}: power failure at step {k} (keep mode {keep_mode}, {stop:?})");
    check_recovery(&fs, h, &acks, &what)?;
    // Life goes on after the crash: the recovered log takes appends again.
    let stop2 = run(&fs, &sim, h, round, bug, &mut acks).map_err(|e| e.to_string())?;
    assert!(
        matches!(stop2, Stop::Finished),
        "{what}: second run {stop2:?}"
    );
    sim.power_cycle(|_| 0);
    let z = check_recovery(&fs, h, &acks, &format!("{what}, then a full run"))?;
    if z as usize != h.txns.len() {
        return Err(format!("{what}: the full second run ended at 0x{z:x}"));
    }
    Ok(())
}

trait Dirs {
    fn fs_create_dirs(&self);
}

impl Dirs for SimFs {
    fn fs_create_dirs(&self) {
        use paddock_server::storage::fs::FileSystem;
        let (d, s, l) = dirs();
        for x in [d, s.as_path(), l.as_path()] {
            self.create_dir_all(x).unwrap();
        }
    }
}

/// Steps a whole run takes without failures.
fn total_steps(h: &History, round: u64) -> u64 {
    let (sim, fs) = new_disk();
    sim.fs_create_dirs();
    let mut acks = Acks::default();
    let stop = run(&fs, &sim, h, round, false, &mut acks).unwrap();
    assert!(matches!(stop, Stop::Finished));
    sim.power_cycle(|_| 0);
    assert_eq!(
        check_recovery(&fs, h, &acks, "clean run").unwrap(),
        h.txns.len() as i64
    );
    sim.steps()
}

/// Rounds of the whole sweep (each batches and tears differently); PADDOCK_POWER_ROUNDS=N
/// for a long run.
fn rounds() -> u64 {
    std::env::var("PADDOCK_POWER_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

#[test]
fn nothing_acknowledged_is_lost_at_any_step() {
    let h = history(200);
    let mut points = 0u64;
    let mut failures = Vec::new();
    for round in 0..rounds() {
        let steps = total_steps(&h, round);
        assert!(steps > 150, "the workload takes only {steps} steps");
        for k in 0..=steps {
            for keep in 0..3 {
                points += 1;
                if let Err(e) = crash_at(&h, round, k, keep, false) {
                    failures.push(e);
                }
            }
        }
    }
    println!("{points} power failures, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {points} crash points failed; first: {}",
        failures.len(),
        failures[0]
    );
}

/// The sweep covers what it claims: log rolls, snapshots and purges all happen in it.
#[test]
fn the_workload_rolls_snapshots_and_purges() {
    use paddock_server::storage::fs::FileSystem;
    let h = history(200);
    let (sim, fs) = new_disk();
    sim.fs_create_dirs();
    let mut acks = Acks::default();
    run(&fs, &sim, &h, 0, false, &mut acks).unwrap();
    let (_, sdir, ldir) = dirs();
    let segs = sim.list(&ldir).unwrap();
    let snaps = sim.list(&sdir).unwrap();
    let first_seg = segs.iter().min().cloned().unwrap_or_default();
    assert!(segs.len() >= 2, "segments: {segs:?}");
    assert_eq!(snaps.len(), 3, "purge keeps three snapshots: {snaps:?}");
    assert_ne!(
        first_seg, "log.0000000000000001",
        "purge removed old segments"
    );
}

#[test]
fn a_planted_reply_before_fsync_is_caught() {
    let h = history(120);
    let steps = total_steps(&h, 0);
    let caught = (0..=steps)
        .filter_map(|k| crash_at(&h, 0, k, 0, true).err())
        .filter(|e| e.contains("acknowledged up to"))
        .count();
    assert!(
        caught > 0,
        "replying before the fsync lost no acknowledged write in {steps} crash points"
    );
}

/// The write path as the server drives it, over the simulated disk: appends go to the log
/// stage as disk orders; what it reports durable is applied.
struct Pipeline<'a> {
    h: &'a History,
    orders: Orders,
    tree: DataTree,
    /// Next transaction to queue (index into the history).
    next: usize,
    acks: Acks,
}

impl<'a> Pipeline<'a> {
    fn start(fs: &Fs, h: &'a History) -> Pipeline<'a> {
        let (data, _, ldir) = dirs();
        let rec = recover(fs, data, data).expect("recovery");
        let mut w = LogWriter::open(fs, &ldir, rec.log_tail, true, rec.dbid).expect("log");
        w.set_segment_bytes(SEGMENT_BYTES);
        let next = rec.tree.last_zxid() as usize;
        Pipeline {
            h,
            orders: Orders::new(fs, w),
            tree: rec.tree,
            next,
            acks: Acks::default(),
        }
    }

    /// Queues the next `n` transactions as one append and runs a round of the log stage;
    /// returns whether everything queued is durable.
    fn send(&mut self, n: usize) -> Result<(), DiskError> {
        let to = (self.next + n).min(self.h.txns.len());
        if to > self.next {
            self.orders.append(&self.h.txns[self.next..to]);
            self.next = to;
        }
        self.retry()
    }

    /// Runs a round of the log stage for what is queued.
    fn retry(&mut self) -> Result<(), DiskError> {
        let (durable, err) = self.orders.round();
        if let Some(up_to) = durable {
            self.acks.max = self.acks.max.max(up_to);
            while self.tree.last_zxid() < up_to {
                self.tree
                    .apply(&self.h.txns[self.tree.last_zxid() as usize]);
            }
        }
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A full disk stalls the log: the append that does not fit is cut back and stays queued,
/// nothing after it is acknowledged, every retry waits; once space returns the queued appends
/// are written in order and acknowledged, and recovery finds every acknowledged write and
/// nothing half-written.
#[test]
fn a_full_disk_stalls_writes_until_space_returns() {
    let h = history(200);
    let (sim, fs) = new_disk();
    sim.fs_create_dirs();
    let mut p = Pipeline::start(&fs, &h);
    for _ in 0..10 {
        p.send(3).expect("room on the disk");
    }
    // Room for a little more, not for the next few appends.
    sim.set_space_limit(Some(sim.used_bytes() + 150));
    let mut full = 0;
    for _ in 0..20 {
        match p.send(3) {
            Ok(()) => {}
            Err(DiskError::Full { .. }) => full += 1,
            Err(e) => panic!("a full disk is not a failure: {e}"),
        }
    }
    assert!(full > 0, "no write met the full disk");
    let acked_while_full = p.acks.max;
    assert!(
        (acked_while_full as usize) < p.next,
        "appends that did not fit were acknowledged"
    );
    // Retries while still full change nothing.
    for _ in 0..3 {
        assert!(matches!(p.retry(), Err(DiskError::Full { .. })));
        assert_eq!(p.acks.max, acked_while_full);
    }
    sim.set_space_limit(None);
    p.retry()
        .expect("the stalled appends go through once space returns");
    assert_eq!(
        p.acks.max as usize, p.next,
        "every stalled append is acknowledged, in order"
    );
    for _ in 0..10 {
        p.send(3).expect("writes go on");
    }
    let end = p.tree.last_zxid();
    assert_eq!(end, p.acks.max);
    drop(p);
    sim.power_cycle(|_| 0);
    let acks = Acks { max: end };
    let z = check_recovery(&fs, &h, &acks, "after a full disk").unwrap();
    assert_eq!(z, end, "everything acknowledged is there, nothing more");
}

/// A failed fsync is never retried and trusted: the log refuses every later write until the
/// server restarts, and the restart recovers what was acknowledged before it.
#[test]
fn a_failed_fsync_poisons_the_log_until_restart() {
    let h = history(100);
    let (sim, fs) = new_disk();
    sim.fs_create_dirs();
    let mut p = Pipeline::start(&fs, &h);
    for _ in 0..5 {
        p.send(2).expect("append");
    }
    let acked = p.acks.max;
    sim.fail_next_sync();
    assert!(
        matches!(p.send(2), Err(DiskError::Failed(_))),
        "a failed fsync stops the log (the server exits)"
    );
    for _ in 0..3 {
        assert!(p.send(2).is_err(), "a poisoned log must refuse writes");
    }
    assert_eq!(p.acks.max, acked);
    drop(p);
    // The restart: recovery, then writes go on.
    let acks = Acks { max: acked };
    check_recovery(&fs, &h, &acks, "after a failed fsync").unwrap();
    let mut p = Pipeline::start(&fs, &h);
    p.send(2).expect("a restarted server writes again");
}

/// Truncating the log to a zxid (a new leader's TRUNC) leaves exactly that prefix, appends go
/// on after it, and a power failure at any step of the truncation leaves a prefix that is at
/// least the truncation point.
#[test]
fn truncating_to_a_zxid_is_a_clean_prefix_at_every_step() {
    use paddock_server::storage::txn_log::truncate_to_zxid;
    let h = history(120);
    let (_, _, ldir) = dirs();
    let mut k = 0;
    loop {
        let (sim, fs) = new_disk();
        sim.fs_create_dirs();
        let mut p = Pipeline::start(&fs, &h);
        while p.tree.last_zxid() < 100 {
            p.send(3).expect("append");
        }
        drop(p);
        sim.fail_after_steps(k);
        let done = truncate_to_zxid(&fs, &ldir, 57).is_ok();
        sim.power_cycle(|n| n / 2);
        let (data, _, _) = dirs();
        let z = recover(&fs, data, data)
            .unwrap_or_else(|e| panic!("step {k}: recovery refused: {e}"))
            .tree
            .last_zxid();
        if done {
            assert_eq!(z, 57, "a finished truncation ends the log at 0x39");
            let acks = Acks { max: 57 };
            check_recovery(&fs, &h, &acks, "after truncation").unwrap();
            let mut p = Pipeline::start(&fs, &h);
            p.send(5).expect("append after truncation");
            drop(p);
            sim.power_cycle(|_| 0);
            let acks = Acks { max: 62 };
            assert_eq!(
                check_recovery(&fs, &h, &acks, "appended after truncation"),
                Ok(62)
            );
            break;
        }
        assert!(
            z >= 57,
            "step {k}: truncation to 0x39 lost 0x{z:x} and below"
        );
        check_recovery(
            &fs,
            &h,
            &Acks { max: 57 },
            &format!("truncation cut at step {k}"),
        )
        .unwrap();
        k += 1;
    }
    assert!(k > 0, "truncation took no steps");
}
