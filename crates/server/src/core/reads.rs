//! Reads: everything that is not a transaction, answered from this server's tree at once
//! (ZooKeeper's reads are served by every server from its own replica), including watch
//! registration and the re-registration of a reconnected client's watches.

use super::frames::{frame, notification};
use super::order::Done;
use super::Core;
use crate::conn_shared::ConnId;
use bytes::Bytes;
use paddock_proto::{
    event, xid, AddWatchRequest, ErrorCode, ErrorResponse, PathRequest, Record, Request,
    SetWatches2, WhoAmIResponse,
};
use paddock_tree::{AuthInfo, WatchKind};
use std::time::Instant;
use tracing::info;

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
        let ok = |f: Bytes| (f, false);
        let mut reply = bytes::BytesMut::with_capacity(128);
        if crate::read_path::read_tree(
            &self.tree,
            &self.watches,
            skip,
            conn,
            sid,
            xid,
            &req,
            auth,
            &mut reply,
        ) {
            return ok(reply.freeze());
        }
        match req {
            Request::Ping => ok(frame(xid::PING, zxid, 0, |_| {})),
            Request::Auth(_) => ok(frame(xid::AUTH, 0, 0, |_| {})),
            Request::Sync(r) => ok(frame(xid, zxid, 0, |b| {
                PathRequest { path: r.path }.encode(b)
            })),
            Request::WhoAmI => {
                let client_info = crate::read_path::who_am_i(auth);
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
                self.watches.lock().add(conn, kind, &path);
                // The Java client reads a body here.
                ok(frame(xid, zxid, 0, |b| ErrorResponse { err: 0 }.encode(b)))
            }
            Request::CheckWatches(r) | Request::RemoveWatches(r)
                if !paddock_tree::watch::known_watcher_type(r.watcher_type) =>
            {
                err(ErrorCode::MarshallingError)
            }
            Request::CheckWatches(r) => {
                if self.watches.lock().contains(conn, r.watcher_type, &r.path) {
                    ok(frame(xid, zxid, 0, |_| {}))
                } else {
                    err(ErrorCode::NoWatcher)
                }
            }
            Request::RemoveWatches(r) => {
                if self.watches.lock().remove(conn, r.watcher_type, &r.path) {
                    ok(frame(xid, zxid, 0, |_| {}))
                } else {
                    err(ErrorCode::NoWatcher)
                }
            }
            Request::SetWatches(w) | Request::SetWatches2(w) => {
                self.set_watches(conn, &w);
                ok(frame(xid, zxid, 0, |_| {}))
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
                Some(_) => self.watches.lock().add(conn, WatchKind::Data, p),
            }
        }
        for p in &w.exist_watches {
            match self.tree.lookup(p) {
                Some(_) => events.push((event::NODE_CREATED, p.clone())),
                None => self.watches.lock().add(conn, WatchKind::Data, p),
            }
        }
        for p in &w.child_watches {
            match self.tree.lookup(p) {
                None => events.push((event::NODE_DELETED, p.clone())),
                Some(id) if self.tree.node_stat(id).pzxid > rel => {
                    events.push((event::NODE_CHILDREN_CHANGED, p.clone()))
                }
                Some(_) => self.watches.lock().add(conn, WatchKind::Child, p),
            }
        }
        for p in &w.persistent_watches {
            self.watches.lock().add(conn, WatchKind::Persistent, p);
        }
        for p in &w.persistent_recursive_watches {
            self.watches.lock().add(conn, WatchKind::Recursive, p);
        }
        if let Some(c) = self.conns.get(conn) {
            for (t, p) in events {
                // No transaction fires these: -1, as ZooKeeper 3.9 sends too.
                c.out.send(notification(-1, t, &p));
            }
        }
    }
}
