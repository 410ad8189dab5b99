//! Reads answered from this server's replica, by whoever holds the request: the core, for a
//! read that waits its turn behind its session's writes, or the connection's own task, for a
//! read with nothing of its connection ahead of it (a direct read). One implementation serves
//! both, so the two cannot answer differently.
//!
//! A connection's task answers a read itself only when all of this holds, each for a reason:
//! - the core has handed the connection a pass (`conn_shared::Direct`): a session, the
//!   identities to check ACLs with, and the core's word that nothing about the session asks
//!   for its turn (no SASL step in flight, not read-only, not closing, no enforced scheme
//!   missing). The core issues a pass when it answers one of the connection's reads at once
//!   and takes it back whenever one of those changes;
//! - the server is serving with nothing held back and reads are not linearizable (`open`);
//! - nothing the connection sent is still unanswered (`in_flight` is 0), so the read comes
//!   after its session's earlier writes are applied and its reply after theirs;
//! - the tree is free at that instant (`SharedTree::try_read`). The core holds it through
//!   each round of its work; a read that finds it held goes to the core like any other, so a
//!   direct read never waits and never delays the core.
//!
//! Under the tree's read lock the pass is checked, the read runs, its watch is registered
//! and its reply queued: the core applies transactions and fires watches under the write
//! lock, so a watch set by a read fires for every change after the state the read saw, and
//! its notification is queued after the read's reply. The core counts direct reads into its
//! figures afterwards (`Direct::take`), as if it had answered them.

use crate::conn_shared::{ConnId, ConnShared, DirectRead, Outbound};
use crate::tree_lock::SharedTree;
use bytes::{BufMut, Bytes, BytesMut};
use paddock_proto::{
    ClientInfo, ErrorCode, GetAclResponse, GetAllChildrenNumberResponse, GetChildrenPageResponse,
    GetEphemeralsResponse, OpResult, ReadOp, Record, ReplyHeader, Request, StatResponse,
};
use paddock_tree::{AuthInfo, DataTree, WatchKind, WatchRegistry};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The most names one getChildrenPage reply carries.
const PAGE_MAX: usize = 10_000;
/// The most bytes of names one carries: half of jute.maxbuffer's default.
const PAGE_BYTES: usize = 512 * 1024;
/// Reply bytes a run of direct reads stops after: the core waits for a run at most this long.
const BATCH_BYTES: usize = 256 * 1024;

/// Builds a reply frame; the body is written only when `err` is 0.
pub(crate) fn frame(xid: i32, zxid: i64, err: i32, body: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut b = BytesMut::with_capacity(128);
    frame_into(&mut b, xid, zxid, err, body);
    b.freeze()
}

/// Appends a reply frame to `b`.
fn frame_into(b: &mut BytesMut, xid: i32, zxid: i64, err: i32, body: impl FnOnce(&mut BytesMut)) {
    let start = b.len();
    b.put_i32(0);
    ReplyHeader { xid, zxid, err }.encode(b);
    if err == 0 {
        body(b);
    }
    let len = (b.len() - start - 4) as i32;
    b[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// A request as read off the wire.
pub(crate) struct Parsed {
    pub xid: i32,
    pub op: i32,
    pub req: Result<Request, ErrorCode>,
    /// The frame's length.
    pub bytes: u32,
}

/// The watches of every connection: the core fires and removes them, and registers those of
/// the reads it answers; a connection's task registers those of its direct reads. Taken only
/// under the tree's lock (the core's write lock or a reader's read lock), so the core never
/// waits for it.
pub type SharedWatches = Arc<Mutex<WatchRegistry>>;

/// Answers a read of the tree (`Request::reads_tree`) as of `tree`, registering its watch,
/// with a reply frame appended to `out`; false (and nothing appended) for any other request.
#[allow(clippy::too_many_arguments)]
pub(crate) fn read_tree(
    tree: &DataTree,
    watches: &Mutex<WatchRegistry>,
    skip_acl: bool,
    conn: ConnId,
    sid: i64,
    xid: i32,
    req: &Request,
    auth: &AuthInfo,
    out: &mut BytesMut,
) -> bool {
    let zxid = tree.last_zxid();
    let watch = |kind: WatchKind, path: &str| watches.lock().add(conn, kind, path);
    match req {
        Request::Exists(r) => {
            let res = tree.exists(&r.path, auth, skip_acl);
            // An exists watch is set on a missing node too: it fires when the node appears.
            if r.watch && matches!(res, Ok(_) | Err(ErrorCode::NoNode)) {
                watch(WatchKind::Data, &r.path);
            }
            match res {
                Ok(stat) => frame_into(out, xid, zxid, 0, |b| StatResponse { stat }.encode(b)),
                Err(e) => frame_into(out, xid, zxid, e.code(), |_| {}),
            }
        }
        // Written straight into the reply: no copy of the data, no string per child.
        Request::GetData(r) => match tree.get_data_body(&r.path, auth, skip_acl) {
            Ok(body) => {
                if r.watch {
                    watch(WatchKind::Data, &r.path);
                }
                frame_into(out, xid, zxid, 0, body)
            }
            Err(e) => frame_into(out, xid, zxid, e.code(), |_| {}),
        },
        Request::GetChildren(r) | Request::GetChildren2(r) => {
            // getChildren2 is getChildren with the parent's Stat.
            let with_stat = matches!(req, Request::GetChildren2(_));
            match tree.get_children_body(&r.path, auth, skip_acl, with_stat) {
                Ok(body) => {
                    if r.watch {
                        watch(WatchKind::Child, &r.path);
                    }
                    frame_into(out, xid, zxid, 0, body)
                }
                Err(e) => frame_into(out, xid, zxid, e.code(), |_| {}),
            }
        }
        Request::GetChildrenPage(r) => {
            // At most the client's page size and half a default jute.maxbuffer of names, so
            // every page fits any client's frame limit.
            let max = usize::try_from(r.max)
                .ok()
                .filter(|&m| m > 0)
                .map_or(PAGE_MAX, |m| m.min(PAGE_MAX));
            match tree.get_children_page(&r.path, &r.after, max, PAGE_BYTES, auth, skip_acl) {
                Ok((children, stat, more)) => {
                    if r.watch {
                        watch(WatchKind::Child, &r.path);
                    }
                    frame_into(out, xid, zxid, 0, |b| {
                        GetChildrenPageResponse {
                            children,
                            stat,
                            more,
                        }
                        .encode(b)
                    })
                }
                Err(e) => frame_into(out, xid, zxid, e.code(), |_| {}),
            }
        }
        Request::GetAcl(r) => match tree.get_acl(&r.path, auth, skip_acl) {
            Ok((acl, stat)) => frame_into(out, xid, zxid, 0, |b| {
                GetAclResponse { acl, stat }.encode(b)
            }),
            Err(e) => frame_into(out, xid, zxid, e.code(), |_| {}),
        },
        Request::GetAllChildrenNumber(r) => match tree.all_children_number(&r.path, auth, skip_acl)
        {
            Ok(n) => frame_into(out, xid, zxid, 0, |b| {
                GetAllChildrenNumberResponse { total_number: n }.encode(b)
            }),
            Err(e) => frame_into(out, xid, zxid, e.code(), |_| {}),
        },
        Request::GetEphemerals(r) => {
            let ephemerals = tree.ephemerals_with_prefix(sid, &r.path);
            frame_into(out, xid, zxid, 0, |b| {
                GetEphemeralsResponse { ephemerals }.encode(b)
            })
        }
        Request::MultiRead(ops) => {
            let results: Vec<OpResult> = ops
                .iter()
                .map(|o| match o {
                    ReadOp::GetChildren(p) => match tree.get_children(p, auth, skip_acl) {
                        Ok((c, _)) => OpResult::GetChildren(c),
                        Err(e) => OpResult::Error(e.code()),
                    },
                    ReadOp::GetData(p) => match tree.get_data(p, auth, skip_acl) {
                        Ok((d, s)) => OpResult::GetData(d, s),
                        Err(e) => OpResult::Error(e.code()),
                    },
                })
                .collect();
            frame_into(out, xid, zxid, 0, |b| {
                paddock_proto::encode_multi_response(&results, b)
            })
        }
        _ => return false,
    }
    true
}

/// whoAmI's answer: the connection's identities, as the Java server lists them.
pub(crate) fn who_am_i(auth: &AuthInfo) -> Vec<ClientInfo> {
    auth.in_java_order()
        .into_iter()
        .map(|i| ClientInfo {
            auth_scheme: i.scheme.clone(),
            user: if i.scheme == "digest" {
                i.id.split(':').next().unwrap_or("").to_owned()
            } else {
                i.id.clone()
            },
        })
        .collect()
}

/// What the connections' tasks need to answer reads themselves, shared with the core.
#[derive(Clone)]
pub struct ReadPath {
    tree: SharedTree,
    watches: SharedWatches,
    /// Set by the core: it serves, holds nothing back, and reads are not linearizable.
    open: Arc<AtomicBool>,
    skip_acl: bool,
}

impl std::fmt::Debug for ReadPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadPath")
            .field("open", &self.open.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl ReadPath {
    pub fn new(tree: SharedTree, watches: SharedWatches, skip_acl: bool) -> ReadPath {
        ReadPath {
            tree,
            watches,
            open: Arc::new(AtomicBool::new(false)),
            skip_acl,
        }
    }

    /// The core's word on whether direct reads may run at all (given under the tree's lock).
    pub(crate) fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::Release);
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// Whether the core is in a round now (it holds the tree): reads of a connection that
    /// are at the core wait for the end of it.
    pub(crate) fn core_busy(&self) -> bool {
        self.tree.held()
    }

    /// Whether `req` is a read that a connection may answer itself now, its pass allowing.
    pub(crate) fn may_answer(&self, req: &Request) -> bool {
        req.reads_tree() && self.open.load(Ordering::Acquire)
    }

    /// Answers requests on the connection's own task if it may (see the module's doc), all
    /// of them reads (`may_answer`), as many as fit in one reply buffer: how many it answered
    /// and whether the connection should hand its direct reads' figures to the core now, or
    /// None when the core must answer them.
    pub(crate) fn try_answer(
        &self,
        conn: ConnId,
        shared: &ConnShared,
        out: &Outbound,
        reqs: &[Parsed],
    ) -> Option<(usize, bool)> {
        if shared.in_flight.load(Ordering::Acquire) != 0 || !self.open.load(Ordering::Acquire) {
            return None;
        }
        let began = Instant::now();
        self.tree.try_read(|tree| {
            // Looked at again under the lock: the core sets it before it lets go of the tree.
            if !self.open.load(Ordering::Acquire) {
                return None;
            }
            let mut direct = shared.direct.lock();
            let pass = direct.pass.clone()?;
            let mut replies = BytesMut::with_capacity(4096);
            let mut answered: Vec<(usize, u32)> = Vec::with_capacity(reqs.len());
            for (i, p) in reqs.iter().enumerate() {
                let Ok(req) = &p.req else { break };
                let before = replies.len();
                if !read_tree(
                    tree,
                    &self.watches,
                    self.skip_acl,
                    conn,
                    pass.sid,
                    p.xid,
                    req,
                    &pass.auth,
                    &mut replies,
                ) {
                    break;
                }
                answered.push((i, (replies.len() - before) as u32));
                if replies.len() >= BATCH_BYTES {
                    break;
                }
            }
            if answered.is_empty() {
                return None;
            }
            // Queued before the tree is let go: a notification of a later change comes after.
            out.answer(replies.freeze(), answered.len() as u64);
            let took = began.elapsed();
            let micros = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
            let zxid = tree.last_zxid();
            let mut hand_over = false;
            for &(i, reply_bytes) in &answered {
                let p = &reqs[i];
                hand_over |= direct.done(DirectRead {
                    op: p.op,
                    xid: p.xid,
                    micros,
                    request_bytes: p.bytes,
                    reply_bytes,
                    zxid,
                });
            }
            Some((answered.len(), hand_over))
        })?
    }
}
