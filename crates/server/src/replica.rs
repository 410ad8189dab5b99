//! The replication driver: the state that goes with this server's `paddock_zab::Node` and
//! the actions it carries out by itself. It sends peer messages (`peer`), queues disk orders
//! for the log thread (`log::DiskOp`, appends of one round merged into one write), records
//! which server owns each session (the leader's view), keeps the transactions this server
//! holds decoded (its own proposals and its recovered log, so nothing it encoded is decoded
//! again) and the learners' writes the leader must prepare. What needs the tree, the sessions
//! or the clients goes back to the core as an [`Effect`], in the order the node gave it.
//!
//! It imports nothing of the core: the core owns a driver and feeds it events.

use crate::log::DiskOp;
use crate::peer::Peers;
use bytes::Bytes;
use paddock_tree::{Txn, TxnOp, ZxidDigest};
use paddock_zab::{Action, Event, Node, RoleKind, Zxid};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Instant;
use tracing::{error, info, warn};

/// Milliseconds per tick of the replication core's clock: election re-sends, heartbeats and
/// the init/sync limits count in these, finer than tickTime so that a failover takes tens of
/// milliseconds, not seconds.
pub const ZAB_TICK_MS: u64 = 20;

/// The key of a session's createSession in the follower's wait list (its cxid is 0, which a
/// client's own request may also use).
const CREATE_SESSION_XID: i32 = i32::MIN;

/// An action of the node that the core carries out: it needs the tree, the sessions or the
/// clients.
#[derive(Debug)]
pub enum Effect {
    /// A committed transaction to apply, decoded, with the leader's digest mark it carried
    /// (None for one prepared here).
    Apply(Txn, Option<ZxidDigest>),
    /// Replace the tree with the leader's snapshot; the disk order that logs it carries `seq`.
    InstallSnapshot { seq: u64, zxid: Zxid, data: Bytes },
    /// Send a learner the tree as it is now (at `zxid`).
    SendSnapshot { to: u64, conn: u64, zxid: Zxid },
    /// Send a learner the logged transactions in `(after, through]` from the on-disk log.
    SendLogRange {
        to: u64,
        conn: u64,
        after: Zxid,
        through: Zxid,
    },
    /// A planned leadership handover began: the old leader took this server's forwarded
    /// writes up to this request id.
    Handover { taken_through: Option<u64> },
    /// The write or sync waiting under this key will never be answered.
    Failed { key: i64 },
    /// The sync waiting under this key may be answered.
    SyncDone { key: i64 },
    /// A learner's clients touched these sessions.
    SessionsTouched(Vec<u64>),
    /// The replication core took a configuration made by this reconfiguration (its log
    /// record): perhaps one this server never applied (learned from a peer), whose members'
    /// addresses it needs.
    ConfigActivated(Bytes),
}

/// The driver's state.
pub struct Replica {
    pub node: Node,
    pub peers: Peers,
    /// Whether clients are being served (the node is an established leader or an up-to-date
    /// learner).
    pub serving: bool,
    pub role: RoleKind,
    /// Disk orders for the log thread, sent with the next flush.
    pub disk: Vec<DiskOp>,
    /// Forwarded writes waiting for their transaction: (session, xid) to origin keys.
    remote: HashMap<(i64, i32), VecDeque<i64>>,
    /// What was forwarded under each key still waiting: sent again after a leadership
    /// handover if the old leader never received it. Keys fall as they are handed out.
    forwarded_out: BTreeMap<i64, Bytes>,
    /// Keys for origins that have no zxid yet (forwarded writes, syncs): negative, so they
    /// never meet a zxid.
    next_key: i64,
    /// Sessions of this server's clients touched since the last tick (reported to the leader).
    pub touched: HashSet<i64>,
    /// On the leader: which server each session was last created or resumed at.
    pub owners: HashMap<i64, u64>,
    /// When this server last stopped serving (read-only mode starts a while after).
    pub not_serving_since: Instant,
    /// A server with no `server.N` lines: a one-voter ensemble with no peer ports, which the
    /// four-letter words call standalone.
    pub standalone: bool,
    /// Log bytes queued since the core last asked (snapshots are also due by log size).
    logged_bytes: u64,
    /// Transactions this server holds decoded (its recovered log, its own proposals), in
    /// zxid order: applied from here rather than decoded again from their payload.
    decoded: VecDeque<Txn>,
    /// The zxid of the last digest mark a proposal of this server carried.
    digest_marked: i64,
    /// Learners' writes handed over by the replication core, prepared once its current
    /// action loop is done.
    forwarded: VecDeque<(u64, u64, Bytes)>,
    /// Set while the actions of a step are carried out.
    stepping: bool,
    /// The buffer a step's actions are taken into (kept, so steps allocate none).
    actions: Vec<Action>,
    /// The last leadership transfer outcome the replication core reported, for whoever
    /// asked for the transfer.
    pub transfer: Option<paddock_zab::TransferOutcome>,
}

impl Replica {
    pub fn new(node: Node, peers: Peers, standalone: bool) -> Replica {
        Replica {
            standalone,
            logged_bytes: 0,
            decoded: VecDeque::new(),
            forwarded: VecDeque::new(),
            stepping: false,
            actions: Vec::new(),
            node,
            peers,
            serving: false,
            role: RoleKind::Looking,
            disk: Vec::new(),
            remote: HashMap::new(),
            forwarded_out: BTreeMap::new(),
            next_key: 0,
            digest_marked: 0,
            touched: HashSet::new(),
            owners: HashMap::new(),
            not_serving_since: Instant::now(),
            transfer: None,
        }
    }

    pub fn is_leader(&self) -> bool {
        self.role == RoleKind::Leading
    }

    /// Keeps a decoded transaction for when it is applied (zxids only grow here: anything
    /// at or above it is stale, a history that was replaced).
    pub fn remember(&mut self, txn: Txn) {
        while self.decoded.back().is_some_and(|t| t.zxid >= txn.zxid) {
            self.decoded.pop_back();
        }
        self.decoded.push_back(txn);
    }

    /// The decoded transaction with this zxid, if kept; drops the ones before it (never to be
    /// applied now). A zxid names one transaction (one leader per epoch), so a kept one is
    /// the one the replication core commits.
    fn recall(&mut self, zxid: i64) -> Option<Txn> {
        while self.decoded.front().is_some_and(|t| t.zxid < zxid) {
            self.decoded.pop_front();
        }
        if self.decoded.front().is_some_and(|t| t.zxid == zxid) {
            return self.decoded.pop_front();
        }
        None
    }

    /// Forgets every kept transaction (a snapshot from the leader replaced the history).
    fn forget_decoded(&mut self) {
        self.decoded.clear();
    }

    /// Proposes a transaction prepared here, keeping it decoded for when it commits; its
    /// zxid is the request id (the core waits for it by zxid). `mark` is the leader's digest
    /// at an earlier zxid, for the learners to check theirs against.
    /// Only a mark newer than the last one carried goes out (one per 128 zxids at most).
    pub fn propose(&mut self, txn: Txn, mark: Option<ZxidDigest>) {
        let mark = mark.filter(|m| m.zxid > self.digest_marked);
        if let Some(m) = mark {
            self.digest_marked = m.zxid;
        }
        let mut rec = Vec::with_capacity(320);
        crate::storage::txn_log::encode_record(&txn, mark, &mut rec);
        let payload = Bytes::from(rec);
        let request_id = txn.zxid as u64;
        self.remember(txn);
        self.node.step(Event::ClientWrite {
            request_id,
            payload,
        });
    }

    /// A new key for something that waits without a zxid (a forwarded write, a sync).
    pub fn new_key(&mut self) -> i64 {
        self.next_key -= 1;
        self.next_key
    }

    /// A forwarded write of `session` waits under `key` for its transaction; `payload` is
    /// what went to the leader.
    pub fn wait_for_remote(
        &mut self,
        session: i64,
        xid: i32,
        create_session: bool,
        key: i64,
        payload: Bytes,
    ) {
        let xid = if create_session {
            CREATE_SESSION_XID
        } else {
            xid
        };
        self.remote
            .entry((session, xid))
            .or_default()
            .push_back(key);
        self.forwarded_out.insert(key, payload);
    }

    /// The key under which an applied transaction's origin waits: by zxid where it was
    /// prepared here, by session and xid where it was forwarded. A leader has forwarded
    /// writes waiting only just after a handover made it one (it forwarded them as a
    /// follower).
    pub fn origin_key(&mut self, txn: &Txn) -> i64 {
        if self.remote.is_empty() {
            return txn.zxid;
        }
        let xid = if matches!(txn.op, TxnOp::CreateSession { .. }) {
            CREATE_SESSION_XID
        } else {
            txn.cxid
        };
        let Some(q) = self.remote.get_mut(&(txn.session_id, xid)) else {
            return txn.zxid;
        };
        let Some(key) = q.pop_front() else {
            return txn.zxid;
        };
        if q.is_empty() {
            self.remote.remove(&(txn.session_id, xid));
        }
        self.forwarded_out.remove(&key);
        key
    }

    /// A forwarded write under `key` will not be answered: nothing is sent again for it.
    pub fn forwarded_failed(&mut self, key: i64) {
        self.forwarded_out.remove(&key);
    }

    /// Keys of the forwarded writes still waiting that were sent after `through` (all if
    /// None): the old leader never received them.
    pub fn forwarded_after(&self, through: Option<u64>) -> Vec<i64> {
        match through {
            Some(t) => self
                .forwarded_out
                .range(..t as i64)
                .map(|(k, _)| *k)
                .collect(),
            None => self.forwarded_out.keys().copied().collect(),
        }
    }

    /// What was forwarded under `key`, if it still waits.
    pub fn forwarded_payload(&self, key: i64) -> Option<Bytes> {
        self.forwarded_out.get(&key).cloned()
    }

    /// Forgets what waited for forwarded writes (this server stopped serving).
    pub fn forget_waits(&mut self) {
        self.remote.clear();
        self.forwarded_out.clear();
        self.touched.clear();
    }

    /// Log bytes queued since the last call.
    pub fn take_logged_bytes(&mut self) -> u64 {
        std::mem::take(&mut self.logged_bytes)
    }

    /// The next learner's write the leader must prepare, once the action loop is done.
    pub fn next_forwarded(&mut self) -> Option<(u64, u64, Bytes)> {
        self.forwarded.pop_front()
    }

    /// Starts carrying out a step's actions: hands back the ones ready, in order, in the
    /// driver's reusable buffer, which goes back with [`Replica::end_actions`].
    pub fn begin_actions(&mut self) -> Vec<Action> {
        debug_assert!(
            !self.stepping,
            "a replication step inside another's action loop"
        );
        let mut actions = std::mem::take(&mut self.actions);
        self.node.take_actions_into(&mut actions);
        self.stepping = true;
        actions
    }

    /// Ends an action loop, taking back the emptied buffer.
    pub fn end_actions(&mut self, buffer: Vec<Action>) {
        debug_assert!(buffer.is_empty());
        self.actions = buffer;
        self.stepping = false;
    }

    /// Whether an action loop is running (a step now would nest inside it).
    pub fn stepping(&self) -> bool {
        self.stepping
    }

    /// Carries out one action if it is the driver's own; otherwise hands it back as an
    /// effect for the core.
    pub fn carry_out(&mut self, a: Action) -> Option<Effect> {
        match a {
            Action::Send { to, msg } => self.peers.send(to, msg),
            Action::AppendLog { seq, txns } => {
                let first_zxid = txns.first().map_or(0, |t| t.zxid.0 as i64);
                let bytes: usize = txns.iter().map(|t| t.payload.len()).sum();
                self.logged_bytes += bytes as u64;
                // Consecutive appends share one write.
                if let Some(DiskOp::Append {
                    seq: last_seq,
                    records,
                    ..
                }) = self.disk.last_mut()
                {
                    for t in &txns {
                        records.extend_from_slice(&t.payload);
                    }
                    *last_seq = seq;
                } else {
                    let mut records = Vec::with_capacity(bytes);
                    for t in &txns {
                        records.extend_from_slice(&t.payload);
                    }
                    self.disk.push(DiskOp::Append {
                        seq,
                        records,
                        first_zxid,
                    });
                }
            }
            Action::TruncateLog { seq, after } => {
                info!(after = %after, "truncating the log to the leader's history");
                self.disk.push(DiskOp::Truncate {
                    seq,
                    after: after.0 as i64,
                });
            }
            Action::PersistEpochs {
                seq,
                accepted,
                current,
            } => self.disk.push(DiskOp::Epochs {
                seq,
                accepted,
                current,
            }),
            Action::InstallSnapshot { seq, zxid, data } => {
                self.forget_decoded();
                return Some(Effect::InstallSnapshot { seq, zxid, data });
            }
            Action::SendSnapshot { to, conn, zxid } => {
                return Some(Effect::SendSnapshot { to, conn, zxid })
            }
            Action::SendLogRange {
                to,
                conn,
                after,
                through,
            } => {
                return Some(Effect::SendLogRange {
                    to,
                    conn,
                    after,
                    through,
                })
            }
            Action::Apply { txn } => {
                let zxid = txn.zxid.0 as i64;
                let decoded = match self.recall(zxid) {
                    Some(t) => Some((t, None)),
                    None => decode_payload(&txn.payload),
                };
                return match decoded {
                    Some((t, mark)) if t.zxid == zxid => Some(Effect::Apply(t, mark)),
                    _ => {
                        // Every replica would stop here: better than diverging.
                        error!(zxid = %txn.zxid, "a committed transaction does not decode; stopping");
                        std::process::exit(70);
                    }
                };
            }
            Action::RoleChanged { role, leader } => {
                info!(?role, leader, "ensemble role changed");
                self.role = role;
            }
            Action::ConfigActivated {
                zxid,
                voters,
                observers,
                payload,
            } => {
                info!(
                    zxid = %zxid,
                    ?voters,
                    ?observers,
                    "the replication core took a new configuration"
                );
                return Some(Effect::ConfigActivated(payload));
            }
            Action::RolledOver { epoch } => info!(
                epoch,
                "zxid counter used up: the ensemble moved to the next epoch without an election"
            ),
            Action::Transfer { outcome } => {
                use paddock_zab::TransferOutcome::*;
                self.transfer = Some(outcome.clone());
                match outcome {
                    Started { to } => info!(
                        to,
                        "leadership transfer: holding new proposals until the target has them all"
                    ),
                    HandedOver { to } => info!(to, "leadership transfer: handed over"),
                    Requested { leader } => info!(
                        leader,
                        "leadership transfer: asked the leader to hand over to this server"
                    ),
                    Failed { reason } => warn!(%reason, "leadership transfer not done"),
                }
            }
            Action::Handover {
                leader,
                taken_through,
            } => {
                info!(leader, "leadership handover: following the new leader");
                return Some(Effect::Handover { taken_through });
            }
            Action::WriteRejected { request_id, reason } => {
                warn!(?reason, "write not taken by the ensemble");
                return Some(Effect::Failed {
                    key: request_id as i64,
                });
            }
            Action::SyncDone { request_id } => {
                return Some(Effect::SyncDone {
                    key: request_id as i64,
                })
            }
            Action::SyncFailed { request_id } => {
                return Some(Effect::Failed {
                    key: request_id as i64,
                })
            }
            Action::SessionOwner { session_id, server } => {
                self.owners.insert(session_id as i64, server);
            }
            Action::SessionsTouched { sessions, .. } => {
                return Some(Effect::SessionsTouched(sessions))
            }
            Action::Forwarded {
                from,
                request_id,
                payload,
            } => self.forwarded.push_back((from, request_id, payload)),
        }
        None
    }

    /// On the leader: whether a write for `session` from server `from` (None: this server)
    /// comes from a server the session has moved away from. A session with no known owner
    /// (a new leader has not seen it resumed yet) takes its first writer as owner.
    pub fn session_moved(&mut self, session: i64, from: Option<u64>) -> bool {
        let from = from.unwrap_or_else(|| self.node.id());
        *self.owners.entry(session).or_insert(from) != from
    }
}

/// Encodes a transaction as the replication core carries it: exactly its log record.
pub fn txn_payload(txn: &Txn) -> Bytes {
    // Room for a small write's record (a create with 100 bytes of data is about 200).
    let mut rec = Vec::with_capacity(320);
    crate::storage::txn_log::encode_records(std::slice::from_ref(txn), &mut rec);
    Bytes::from(rec)
}

fn decode_payload(payload: &[u8]) -> Option<(Txn, Option<ZxidDigest>)> {
    payload
        .get(8..)
        .and_then(|b| paddock_tree::codec::decode_txn_marked(b).ok())
}

/// Reads the logged transactions in `(after, through]` from the on-disk log, in order, handing
/// each to `send` (which returns false to stop: the connection is gone). Returns how many were
/// sent.
pub fn read_log_range(
    fs: &crate::storage::fs::Fs,
    dir: &std::path::Path,
    after: Zxid,
    through: Zxid,
    mut send: impl FnMut(paddock_zab::Txn) -> bool,
) -> Result<u64, crate::storage::StorageError> {
    let segs = crate::storage::list_by_zxid(fs, dir, "log.")?;
    let mut sent = 0u64;
    for (i, (first, path)) in segs.iter().enumerate() {
        if let Some((next_first, _)) = segs.get(i + 1) {
            if *next_first <= after.0 as i64 {
                continue;
            }
        }
        if *first > through.0 as i64 {
            break;
        }
        // The records as logged (a digest mark dropped), not decoded and encoded again.
        let r = crate::storage::txn_log::read_segment_records(fs, path, i + 1 == segs.len())?;
        for rec in r.records {
            if rec.zxid > after.0 as i64 && rec.zxid <= through.0 as i64 {
                let txn = paddock_zab::Txn {
                    zxid: Zxid(rec.zxid as u64),
                    payload: rec.record,
                };
                if !send(txn) {
                    return Ok(sent);
                }
                sent += 1;
            }
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use paddock_zab::Config;

    /// A one-voter driver with no peers, brought to leading by its own clock and disk.
    fn leader() -> (Replica, Vec<Effect>) {
        let node = Node::new(Config::new(1, vec![1], vec![]), 1);
        let mut r = Replica::new(node, Peers::none(), true);
        let mut effects = Vec::new();
        for _ in 0..50 {
            r.node.step(Event::Tick);
            run(&mut r, &mut effects);
            persist(&mut r, &mut effects);
            if r.node.next_zxid().is_some() {
                return (r, effects);
            }
        }
        panic!("a one-voter ensemble leads by itself");
    }

    /// Carries out the node's ready actions, keeping the effects.
    fn run(r: &mut Replica, effects: &mut Vec<Effect>) {
        let mut actions = r.begin_actions();
        for a in actions.drain(..) {
            effects.extend(r.carry_out(a));
        }
        r.end_actions(actions);
    }

    /// Plays the log thread: every queued disk order done.
    fn persist(r: &mut Replica, effects: &mut Vec<Effect>) {
        if let Some(through) = r.disk.last().map(DiskOp::seq) {
            r.disk.clear();
            r.node.step(Event::Persisted { through });
            run(r, effects);
        }
    }

    fn txn(zxid: i64, cxid: i32) -> Txn {
        Txn {
            session_id: 5,
            cxid,
            zxid,
            time: 1,
            op: TxnOp::Error {
                err: paddock_proto::ErrorCode::NoNode,
            },
        }
    }

    #[test]
    fn a_proposal_is_logged_then_applied_once_durable() {
        let (mut r, _) = leader();
        assert!(r.is_leader());
        let zxid = r.node.next_zxid().unwrap().0 as i64;
        r.propose(txn(zxid, 1), None);
        let mut effects = Vec::new();
        run(&mut r, &mut effects);
        assert!(effects.is_empty(), "nothing applies before it is on disk");
        match r.disk.as_slice() {
            [DiskOp::Append {
                records,
                first_zxid,
                ..
            }] => {
                assert_eq!(*first_zxid, zxid);
                assert_eq!(records[..], txn_payload(&txn(zxid, 1))[..]);
            }
            other => panic!("{other:?}"),
        }
        assert!(r.take_logged_bytes() > 0);
        persist(&mut r, &mut effects);
        match effects.as_slice() {
            [Effect::Apply(t, None)] => assert_eq!(*t, txn(zxid, 1)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            r.node.next_zxid().unwrap().0 as i64,
            zxid + 1,
            "one counter"
        );
    }

    #[test]
    fn appends_of_one_round_share_one_write() {
        let (mut r, _) = leader();
        let z = r.node.next_zxid().unwrap().0 as i64;
        let mut effects = Vec::new();
        r.propose(txn(z, 1), None);
        run(&mut r, &mut effects);
        r.propose(txn(z + 1, 2), None);
        run(&mut r, &mut effects);
        assert_eq!(r.disk.len(), 1, "{:?}", r.disk);
        persist(&mut r, &mut effects);
        let applied: Vec<i64> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Apply(t, _) => Some(t.zxid),
                _ => None,
            })
            .collect();
        assert_eq!(applied, vec![z, z + 1]);
    }

    #[test]
    fn a_transaction_not_kept_is_decoded_from_its_payload() {
        let (mut r, _) = leader();
        let t = txn(0x1_0000_0009, 3);
        let e = r.carry_out(Action::Apply {
            txn: paddock_zab::Txn {
                zxid: Zxid(t.zxid as u64),
                payload: txn_payload(&t),
            },
        });
        assert!(matches!(e, Some(Effect::Apply(d, None)) if d == t));
    }

    #[test]
    fn forwarded_writes_are_found_by_session_and_xid() {
        let node = Node::new(Config::new(2, vec![1, 2, 3], vec![]), 1);
        let mut r = Replica::new(node, Peers::none(), false);
        let (k1, k2, k3) = (r.new_key(), r.new_key(), r.new_key());
        assert!(k1 < 0 && k2 < k1 && k3 < k2, "keys never meet a zxid");
        r.wait_for_remote(5, 0, true, k1, Bytes::from_static(b"c"));
        r.wait_for_remote(5, 0, false, k2, Bytes::from_static(b"w2"));
        r.wait_for_remote(5, 0, false, k3, Bytes::from_static(b"w3"));
        assert_eq!(r.forwarded_after(Some(k1 as u64)), vec![k3, k2]);
        assert_eq!(r.forwarded_after(None).len(), 3);
        let mut create = txn(100, 0);
        create.op = TxnOp::CreateSession {
            timeout: 4000,
            password: None,
        };
        assert_eq!(
            r.origin_key(&txn(101, 0)),
            k2,
            "a client's xid 0 is not the handshake"
        );
        assert_eq!(r.origin_key(&create), k1);
        assert_eq!(
            r.forwarded_after(None),
            vec![k3],
            "what was applied is never sent again"
        );
        assert_eq!(r.forwarded_payload(k3).as_deref(), Some(&b"w3"[..]));
        assert_eq!(r.origin_key(&txn(102, 0)), k3);
        assert_eq!(
            r.origin_key(&txn(103, 0)),
            103,
            "nobody here waits: keyed by zxid"
        );
        assert!(r.forwarded_after(None).is_empty());
    }

    /// A follower that became leader through a handover still finds the writes it forwarded
    /// as a follower; its own are keyed by zxid.
    #[test]
    fn a_new_leader_finds_what_it_forwarded_as_a_follower() {
        let (mut r, _) = leader();
        let k = r.new_key();
        r.wait_for_remote(7, 3, false, k, Bytes::from_static(b"w"));
        assert_eq!(r.origin_key(&txn(200, 3)), 200, "another session's write");
        let mut t = txn(201, 3);
        t.session_id = 7;
        assert_eq!(r.origin_key(&t), k);
        let mut t = txn(202, 4);
        t.session_id = 7;
        assert_eq!(r.origin_key(&t), 202);
    }

    #[test]
    fn a_session_belongs_to_its_first_writer_until_it_moves() {
        let (mut r, _) = leader();
        assert!(!r.session_moved(9, Some(2)));
        assert!(r.session_moved(9, None), "server 2 owns it now");
        r.carry_out(Action::SessionOwner {
            session_id: 9,
            server: 1,
        });
        assert!(!r.session_moved(9, None));
    }

    #[test]
    fn a_learners_write_waits_for_the_end_of_the_action_loop() {
        let (mut r, _) = leader();
        let e = r.carry_out(Action::Forwarded {
            from: 2,
            request_id: 7,
            payload: Bytes::from_static(b"w"),
        });
        assert!(e.is_none());
        assert_eq!(r.next_forwarded(), Some((2, 7, Bytes::from_static(b"w"))));
        assert_eq!(r.next_forwarded(), None);
    }
}
