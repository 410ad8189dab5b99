//! Reads: everything that is not a transaction, answered from this server's tree at once
//! (ZooKeeper's reads are served by every server from its own replica), including watch
//! registration and the re-registration of a reconnected client's watches.

use super::frames::{frame, notification};
use super::order::Done;
use super::Core;
use crate::conn_shared::ConnId;
use bytes::Bytes;
use paddock_proto::{
    event, xid, AddWatchRequest, ClientInfo, ErrorCode, ErrorResponse, GetAclResponse,
    GetAllChildrenNumberResponse, GetChildren2Response, GetChildrenPageResponse,
    GetChildrenResponse, GetDataResponse, GetEphemeralsResponse, OpResult, PathRequest, ReadOp,
    Record, Request, SetWatches2, StatResponse, WhoAmIResponse,
};
use paddock_tree::{AuthInfo, WatchKind};
use std::time::Instant;
use tracing::info;

/// The most names one getChildrenPage reply carries.
const PAGE_MAX: usize = 10_000;
/// The most bytes of names one carries: half of jute.maxbuffer's default.
const PAGE_BYTES: usize = 512 * 1024;

impl Core {
    /// Runs a read-like request (everything that is not a transaction) and replies.
    pub(super) fn read(
        &mut self,
        sid: i64,
        conn: ConnId,
        xid: i32,
        req: Result<Request, ErrorCode>,
        auth: &AuthInfo,
        arrived: Instant,
    ) -> Done {
        let req = match req {
            Ok(r) if self.prep.is_closing(sid) && !matches!(r, Request::Ping) => {
                Err(ErrorCode::SessionExpired)
            }
            other => other,
        };
        let zxid = self.tree.last_zxid();
        let opcode = req.as_ref().map_or(0, |r| r.opcode());
        let (reply, close_after) = match req {
            Err(code) => {
                let z = if xid == xid::AUTH {
                    0
                } else if code == ErrorCode::Unimplemented {
                    -1
                } else {
                    zxid
                };
                let close = matches!(
                    code,
                    ErrorCode::Unimplemented
                        | ErrorCode::AuthFailed
                        | ErrorCode::SessionClosedRequireSaslAuth
                );
                (frame(xid, z, code.code(), |_| {}), close)
            }
            Ok(req) => self.exec_read(sid, conn, xid, req, auth),
        };
        Done {
            conn,
            frame: reply,
            arrived,
            is_reply: true,
            op: opcode,
            close_after,
        }
    }

    fn exec_read(
        &mut self,
        sid: i64,
        conn: ConnId,
        xid: i32,
        req: Request,
        auth: &AuthInfo,
    ) -> (Bytes, bool) {
        let skip = self.cfg.skip_acl;
        let zxid = self.tree.last_zxid();
        let err = |e: ErrorCode| (frame(xid, zxid, e.code(), |_| {}), false);
        // getChildren2 is getChildren with the parent's Stat.
        let with_stat = matches!(req, Request::GetChildren2(_));
        let ok = |f: Bytes| (f, false);
        match req {
            Request::Ping => ok(frame(xid::PING, zxid, 0, |_| {})),
            Request::Auth(_) => ok(frame(xid::AUTH, 0, 0, |_| {})),
            Request::Exists(r) => {
                let res = self.tree.exists(&r.path, auth, skip);
                if r.watch && matches!(res, Ok(_) | Err(ErrorCode::NoNode)) {
                    self.watches.add(conn, WatchKind::Data, &r.path);
                }
                match res {
                    Ok(stat) => ok(frame(xid, zxid, 0, |b| StatResponse { stat }.encode(b))),
                    Err(e) => err(e),
                }
            }
            Request::GetData(r) => match self.tree.get_data(&r.path, auth, skip) {
                Ok((data, stat)) => {
                    if r.watch {
                        self.watches.add(conn, WatchKind::Data, &r.path);
                    }
                    ok(frame(xid, zxid, 0, |b| {
                        GetDataResponse { data, stat }.encode(b)
                    }))
                }
                Err(e) => err(e),
            },
            Request::GetChildren(r) | Request::GetChildren2(r) => {
                match self.tree.get_children(&r.path, auth, skip) {
                    Ok((children, stat)) => {
                        if r.watch {
                            self.watches.add(conn, WatchKind::Child, &r.path);
                        }
                        ok(frame(xid, zxid, 0, |b| {
                            if with_stat {
                                GetChildren2Response { children, stat }.encode(b)
                            } else {
                                GetChildrenResponse { children }.encode(b)
                            }
                        }))
                    }
                    Err(e) => err(e),
                }
            }
            Request::GetChildrenPage(r) => {
                // At most the client's page size and half a default jute.maxbuffer of names,
                // so every page fits any client's frame limit.
                let max = usize::try_from(r.max)
                    .ok()
                    .filter(|&m| m > 0)
                    .map_or(PAGE_MAX, |m| m.min(PAGE_MAX));
                match self
                    .tree
                    .get_children_page(&r.path, &r.after, max, PAGE_BYTES, auth, skip)
                {
                    Ok((children, stat, more)) => {
                        if r.watch {
                            self.watches.add(conn, WatchKind::Child, &r.path);
                        }
                        ok(frame(xid, zxid, 0, |b| {
                            GetChildrenPageResponse {
                                children,
                                stat,
                                more,
                            }
                            .encode(b)
                        }))
                    }
                    Err(e) => err(e),
                }
            }
            Request::GetAcl(r) => match self.tree.get_acl(&r.path, auth, skip) {
                Ok((acl, stat)) => ok(frame(xid, zxid, 0, |b| {
                    GetAclResponse { acl, stat }.encode(b)
                })),
                Err(e) => err(e),
            },
            Request::GetAllChildrenNumber(r) => {
                match self.tree.all_children_number(&r.path, auth, skip) {
                    Ok(n) => ok(frame(xid, zxid, 0, |b| {
                        GetAllChildrenNumberResponse { total_number: n }.encode(b)
                    })),
                    Err(e) => err(e),
                }
            }
            Request::GetEphemerals(r) => {
                let ephemerals = self.tree.ephemerals_with_prefix(sid, &r.path);
                ok(frame(xid, zxid, 0, |b| {
                    GetEphemeralsResponse { ephemerals }.encode(b)
                }))
            }
            Request::Sync(r) => ok(frame(xid, zxid, 0, |b| {
                PathRequest { path: r.path }.encode(b)
            })),
            Request::WhoAmI => {
                let client_info = auth
                    .in_java_order()
                    .into_iter()
                    .map(|i| ClientInfo {
                        auth_scheme: i.scheme.clone(),
                        user: if i.scheme == "digest" {
                            i.id.split(':').next().unwrap_or("").to_owned()
                        } else {
                            i.id.clone()
                        },
                    })
                    .collect();
                ok(frame(xid, zxid, 0, |b| {
                    WhoAmIResponse { client_info }.encode(b)
                }))
            }
            Request::AddWatch(AddWatchRequest { path, mode }) => {
                let kind = match mode {
                    paddock_proto::add_watch_mode::PERSISTENT => WatchKind::Persistent,
                    paddock_proto::add_watch_mode::PERSISTENT_RECURSIVE => WatchKind::Recursive,
                    // ZooKeeper 3.8 fails to decode an unknown mode.
                    _ => return err(ErrorCode::MarshallingError),
                };
                self.watches.add(conn, kind, &path);
                // The Java client reads a body here.
                ok(frame(xid, zxid, 0, |b| ErrorResponse { err: 0 }.encode(b)))
            }
            Request::CheckWatches(r) | Request::RemoveWatches(r)
                if !paddock_tree::watch::known_watcher_type(r.watcher_type) =>
            {
                err(ErrorCode::MarshallingError)
            }
            Request::CheckWatches(r) => {
                if self.watches.contains(conn, r.watcher_type, &r.path) {
                    ok(frame(xid, zxid, 0, |_| {}))
                } else {
                    err(ErrorCode::NoWatcher)
                }
            }
            Request::RemoveWatches(r) => {
                if self.watches.remove(conn, r.watcher_type, &r.path) {
                    ok(frame(xid, zxid, 0, |_| {}))
                } else {
                    err(ErrorCode::NoWatcher)
                }
            }
            Request::SetWatches(w) | Request::SetWatches2(w) => {
                self.set_watches(conn, &w);
                ok(frame(xid, zxid, 0, |_| {}))
            }
            Request::MultiRead(ops) => {
                let results: Vec<OpResult> = ops
                    .into_iter()
                    .map(|o| match o {
                        ReadOp::GetChildren(p) => match self.tree.get_children(&p, auth, skip) {
                            Ok((c, _)) => OpResult::GetChildren(c),
                            Err(e) => OpResult::Error(e.code()),
                        },
                        ReadOp::GetData(p) => match self.tree.get_data(&p, auth, skip) {
                            Ok((d, s)) => OpResult::GetData(d, s),
                            Err(e) => OpResult::Error(e.code()),
                        },
                    })
                    .collect();
                ok(frame(xid, zxid, 0, |b| {
                    paddock_proto::encode_multi_response(&results, b)
                }))
            }
            // The next token of an exchange the core already stepped (`Core::sasl_step`).
            Request::Sasl(t) => ok(frame(xid, zxid, 0, |b| t.encode(b))),
            // A local session's close (`localSessionsEnabled`): no transaction, as ZooKeeper
            // closes one. It ends here and now, in its turn after the session's writes.
            Request::CloseSession if self.sessions.is_local(sid) => {
                self.end_session(sid);
                if let Some(c) = self.conns.get_mut(conn) {
                    c.session = None;
                }
                info!(session = format_args!("0x{sid:x}"), "local session closed");
                (frame(xid, zxid, 0, |_| {}), true)
            }
            // Other writes never come here.
            _ => err(ErrorCode::Unimplemented),
        }
    }

    /// Re-registers a reconnected client's watches, firing at once what it missed (judged by
    /// the zxid it has seen).
    fn set_watches(&mut self, conn: ConnId, w: &SetWatches2) {
        let rel = w.relative_zxid;
        let mut events: Vec<(i32, String)> = Vec::new();
        for p in &w.data_watches {
            match self.tree.lookup(p) {
                None => events.push((event::NODE_DELETED, p.clone())),
                Some(id) if self.tree.node_stat(id).mzxid > rel => {
                    events.push((event::NODE_DATA_CHANGED, p.clone()))
                }
                Some(_) => self.watches.add(conn, WatchKind::Data, p),
            }
        }
        for p in &w.exist_watches {
            match self.tree.lookup(p) {
                Some(_) => events.push((event::NODE_CREATED, p.clone())),
                None => self.watches.add(conn, WatchKind::Data, p),
            }
        }
        for p in &w.child_watches {
            match self.tree.lookup(p) {
                None => events.push((event::NODE_DELETED, p.clone())),
                Some(id) if self.tree.node_stat(id).pzxid > rel => {
                    events.push((event::NODE_CHILDREN_CHANGED, p.clone()))
                }
                Some(_) => self.watches.add(conn, WatchKind::Child, p),
            }
        }
        for p in &w.persistent_watches {
            self.watches.add(conn, WatchKind::Persistent, p);
        }
        for p in &w.persistent_recursive_watches {
            self.watches.add(conn, WatchKind::Recursive, p);
        }
        if let Some(c) = self.conns.get(conn) {
            for (t, p) in events {
                // No transaction fires these: -1, as ZooKeeper 3.9 sends too.
                c.out.send(notification(-1, t, &p));
            }
        }
    }
}
