//! One server's side of a sequence: its session slots, how each operation runs against it, and
//! the normalised transcript of everything it answered.

use super::norm::{hex, Norm, NotifZxid, Shape};
use super::ops::{Op, RelZxid, SlotState};
use super::watches::ClientWatches;
use crate::common::Client;
use paddock_proto::{
    decode_multi_response, op, xid, ConnectRequest, Create2Response, CreateKind, CreateResponse,
    OpResult, Reader, Record, ReplyHeader, Request, SetWatches2, WatcherEvent,
};
use std::io::Write;
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

/// Sessions per sequence.
pub const SLOTS: usize = 3;

/// How long a server may take to close a connection it is expected to close.
const CLOSE_WAIT: Duration = Duration::from_secs(3);
/// How long to wait for any reply (as `Client::raw` sets it).
const READ_TIMEOUT: Duration = Duration::from_secs(10);

struct Slot {
    conn: Option<Client>,
    state: SlotState,
    session: i64,
    passwd: Vec<u8>,
    /// The timeout asked for, reused when reattaching.
    timeout: i32,
    /// Highest zxid of a regular reply: what a real client sends as lastZxidSeen/relativeZxid.
    last_zxid: i64,
    watches: ClientWatches,
    /// Events received during the current step, rendered.
    events: Vec<String>,
    /// Not pinged: the session is being left to expire.
    frozen: bool,
    /// The session was expired (not closed) by the server.
    expired: bool,
}

impl Slot {
    fn empty() -> Slot {
        Slot {
            conn: None,
            state: SlotState::Empty,
            session: 0,
            expired: false,
            passwd: vec![],
            timeout: 0,
            last_zxid: 0,
            watches: ClientWatches::default(),
            events: vec![],
            frozen: false,
        }
    }
}

/// What the generator may know about a slot (taken from the reference side).
pub struct SlotView {
    pub state: SlotState,
    pub watched: Vec<String>,
    pub persistent: Vec<String>,
}

/// One frame from the server.
enum Incoming {
    Reply(ReplyHeader, Vec<u8>),
    Event(i64, WatcherEvent),
    Garbage(Vec<u8>),
    Closed,
}

fn receive(c: &mut Client) -> Incoming {
    let Some(f) = c.read_frame() else {
        return Incoming::Closed;
    };
    let mut r = Reader::new(&f);
    let Ok(h) = ReplyHeader::decode(&mut r) else {
        return Incoming::Garbage(f.to_vec());
    };
    if h.xid == xid::NOTIFICATION {
        if let Ok(e) = WatcherEvent::decode(&mut r) {
            return Incoming::Event(h.zxid, e);
        }
    }
    Incoming::Reply(h, r.rest().to_vec())
}

/// Writes a request frame; unlike `Client::send` it reports a dead socket instead of panicking.
fn write_request(c: &mut Client, xid: i32, opcode: i32, body: &[u8]) -> std::io::Result<()> {
    let mut v = Vec::with_capacity(12 + body.len());
    v.extend_from_slice(&(8 + body.len() as i32).to_be_bytes());
    v.extend_from_slice(&xid.to_be_bytes());
    v.extend_from_slice(&opcode.to_be_bytes());
    v.extend_from_slice(body);
    c.sock.write_all(&v)
}

/// How a successful reply to `req` is shaped.
fn shape_of(req: &Request) -> Shape {
    match req {
        Request::Create(c) if c.kind == CreateKind::Create => Shape::Path,
        Request::Create(_) => Shape::PathStat,
        Request::Exists(_) | Request::SetData(_) | Request::SetAcl(_) => Shape::Stat,
        Request::GetData(_) | Request::Reconfig(_) => Shape::Data,
        Request::GetAcl(_) => Shape::Acl,
        Request::GetChildren(_) => Shape::Children,
        Request::GetChildren2(_) => Shape::Children2,
        Request::Sync(_) => Shape::Sync,
        Request::Multi(_) | Request::MultiRead(_) => Shape::Multi,
        Request::AddWatch(_) => Shape::ErrorBody,
        Request::GetEphemerals(_) => Shape::Ephemerals,
        Request::GetAllChildrenNumber(_) => Shape::Count,
        Request::WhoAmI => Shape::WhoAmI,
        Request::Sasl(_) | Request::GetChildrenPage(_) | Request::Linearizable(_) => Shape::Raw,
        Request::Delete(_)
        | Request::Ping
        | Request::CheckWatches(_)
        | Request::RemoveWatches(_)
        | Request::SetWatches(_)
        | Request::SetWatches2(_)
        | Request::Auth(_)
        | Request::CloseSession => Shape::Empty,
    }
}

/// How a handshake password compares with the one the client holds.
fn password(p: &[u8], known: &[u8]) -> &'static str {
    match p {
        p if p.len() != 16 => "not-16-bytes",
        p if p.iter().all(|b| *b == 0) => "zeros",
        p if p == known => "same",
        _ => "fresh",
    }
}

pub struct Side {
    addr: SocketAddr,
    norm: Norm,
    slots: Vec<Slot>,
    /// Paths created this step (for the generator to reuse sequential names).
    created: Vec<String>,
}

impl Side {
    pub fn new(addr: SocketAddr, notif: NotifZxid) -> Side {
        Side {
            addr,
            norm: Norm::new(notif),
            slots: (0..SLOTS).map(|_| Slot::empty()).collect(),
            created: vec![],
        }
    }

    pub fn view(&self) -> Vec<SlotView> {
        self.slots
            .iter()
            .map(|s| SlotView {
                state: s.state,
                watched: s.watches.paths(),
                persistent: s.watches.persistent_paths(),
            })
            .collect()
    }

    pub fn zxids_seen(&self) -> usize {
        self.norm.zxids_seen()
    }

    pub fn take_created(&mut self) -> Vec<String> {
        std::mem::take(&mut self.created)
    }

    /// Runs one operation (anything but `Expire`) and returns its transcript.
    pub fn run(&mut self, op: &Op) -> Vec<String> {
        let mut out = Vec::new();
        let restoring = match op {
            Op::SetWatches { .. } => true,
            Op::Reattach { restore, .. } | Op::Steal { restore, .. } => *restore,
            Op::Raw { opcode, .. } => *opcode == op::SET_WATCHES || *opcode == op::SET_WATCHES2,
            _ => false,
        };
        self.norm.begin_step(restoring);
        match op {
            Op::Open { slot, timeout } => self.open(*slot, *timeout, &mut out),
            Op::Close { slot } => self.close(*slot, &mut out),
            Op::Drop { slot } => self.drop_conn(*slot, &mut out),
            Op::Reattach {
                slot,
                good_password,
                restore,
                v2,
            } => self.reattach(*slot, *good_password, *restore, *v2, &mut out),
            Op::Steal { slot, restore } => self.steal(*slot, *restore, &mut out),
            Op::Req { slot, req } => self.request(*slot, req, &mut out),
            Op::SetWatches {
                slot,
                rel,
                watches,
                v2,
            } => self.set_watches(*slot, *rel, watches, *v2, &mut out),
            Op::Raw { slot, opcode, body } => self.raw(*slot, *opcode, body, &mut out),
            Op::Expire { .. } => unreachable!("the runner drives expiry on both sides at once"),
        }
        self.finish(op.unordered_events(), &mut out);
        out
    }

    /// Ends a step: pings every connection so that all events the step caused are in, then
    /// appends them per slot.
    pub fn finish(&mut self, unordered: bool, out: &mut Vec<String>) {
        self.barrier(out);
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.events.is_empty() {
                continue;
            }
            if unordered {
                s.events.sort();
            }
            out.push(format!("s{i} events: {}", s.events.join(" | ")));
            s.events.clear();
        }
    }

    /// A ping on every live connection; a server answers it after every event it queued
    /// before, so when all pings are answered the step's events have all arrived.
    fn barrier(&mut self, out: &mut Vec<String>) {
        let mut pinged = Vec::new();
        for i in 0..SLOTS {
            let s = &mut self.slots[i];
            let Some(c) = s.conn.as_mut().filter(|_| !s.frozen) else {
                continue;
            };
            match write_request(c, xid::PING, op::PING, &[]) {
                Ok(()) => pinged.push(i),
                Err(_) => self.lost(i, out),
            }
        }
        for i in pinged {
            while let Some(c) = self.slots[i].conn.as_mut() {
                match receive(c) {
                    Incoming::Event(z, e) => self.event(i, z, &e),
                    Incoming::Reply(h, _) if h.xid == xid::PING => break,
                    Incoming::Reply(h, b) => out.push(format!(
                        "s{i} unexpected reply while pinging: xid={} {}",
                        h.xid,
                        self.norm.reply(Shape::Raw, &h, &b)
                    )),
                    Incoming::Garbage(b) => out.push(format!("s{i} malformed frame {}", hex(&b))),
                    Incoming::Closed => {
                        self.lost(i, out);
                        break;
                    }
                }
            }
        }
    }

    fn event(&mut self, i: usize, zxid: i64, e: &WatcherEvent) {
        let text = self.norm.event(zxid, e);
        let s = &mut self.slots[i];
        s.events.push(text);
        s.watches.on_event(e);
    }

    /// The server closed a connection: the session lives on without it.
    fn lost(&mut self, i: usize, out: &mut Vec<String>) {
        out.push(format!("s{i} connection closed by the server"));
        let s = &mut self.slots[i];
        s.conn = None;
        if s.state == SlotState::Live {
            s.state = SlotState::Disconnected;
        }
    }

    /// Sends one request and waits for its reply; events arriving first belong to the slot.
    fn call(
        &mut self,
        i: usize,
        fixed_xid: Option<i32>,
        opcode: i32,
        body: &[u8],
        out: &mut Vec<String>,
    ) -> Option<(ReplyHeader, Vec<u8>)> {
        let Some(c) = self.slots[i].conn.as_mut() else {
            out.push(format!("s{i} has no connection"));
            return None;
        };
        c.xid += 1;
        let xid = fixed_xid.unwrap_or(c.xid);
        if write_request(c, xid, opcode, body).is_err() {
            self.lost(i, out);
            return None;
        }
        loop {
            let c = self.slots[i].conn.as_mut()?;
            match receive(c) {
                Incoming::Event(z, e) => self.event(i, z, &e),
                Incoming::Reply(h, b) if h.xid == xid => {
                    // Java clients track the zxid of regular replies only.
                    if xid >= 0 && h.zxid > 0 {
                        let s = &mut self.slots[i];
                        s.last_zxid = s.last_zxid.max(h.zxid);
                    }
                    return Some((h, b));
                }
                Incoming::Reply(h, b) => out.push(format!(
                    "s{i} reply for xid {} while waiting for {xid}: {}",
                    h.xid,
                    self.norm.reply(Shape::Raw, &h, &b)
                )),
                Incoming::Garbage(b) => out.push(format!("s{i} malformed frame {}", hex(&b))),
                Incoming::Closed => {
                    self.lost(i, out);
                    return None;
                }
            }
        }
    }

    fn request(&mut self, i: usize, req: &Request, out: &mut Vec<String>) {
        let fixed_xid = match req {
            Request::Ping => Some(xid::PING),
            Request::Auth(_) => Some(xid::AUTH),
            _ => None,
        };
        let mut body = Vec::new();
        req.encode_body(&mut body);
        let Some((h, b)) = self.call(i, fixed_xid, req.opcode(), &body, out) else {
            return;
        };
        out.push(format!(
            "s{i} reply: {}",
            self.norm.reply(shape_of(req), &h, &b)
        ));
        self.await_close(i, h.err, out);
        self.slots[i].watches.on_reply(req, h.err);
        if h.err == 0 {
            self.learn_created(req, &b);
        }
    }

    /// Remembers created paths, so later steps can use the sequential names servers chose.
    fn learn_created(&mut self, req: &Request, body: &[u8]) {
        let r = &mut Reader::new(body);
        match req {
            Request::Create(c) if c.kind == CreateKind::Create => self
                .created
                .extend(CreateResponse::decode(r).ok().map(|c| c.path)),
            Request::Create(_) => self
                .created
                .extend(Create2Response::decode(r).ok().map(|c| c.path)),
            Request::Multi(_) => {
                for res in decode_multi_response(r).unwrap_or_default() {
                    if let OpResult::Create(p) | OpResult::Create2(p, _) = res {
                        self.created.push(p);
                    }
                }
            }
            _ => {}
        }
    }

    fn raw(&mut self, i: usize, opcode: i32, body: &[u8], out: &mut Vec<String>) {
        if let Some((h, b)) = self.call(i, None, opcode, body, out) {
            out.push(format!(
                "s{i} reply: {}",
                self.norm.reply(Shape::Raw, &h, &b)
            ));
            self.await_close(i, h.err, out);
        }
    }

    /// After UNIMPLEMENTED or AUTHFAILED ZooKeeper closes the connection, but a request sent
    /// right after may still be answered first; so wait for the close instead of pinging.
    fn await_close(&mut self, i: usize, err: i32, out: &mut Vec<String>) {
        const UNIMPLEMENTED: i32 = -6;
        const AUTHFAILED: i32 = -115;
        if err != UNIMPLEMENTED && err != AUTHFAILED {
            return;
        }
        let Some(c) = self.slots[i].conn.as_mut() else {
            return;
        };
        if c.closed_within(CLOSE_WAIT) {
            self.lost(i, out);
        } else {
            out.push(format!("s{i} connection still open after {CLOSE_WAIT:?}"));
            c.sock.set_read_timeout(Some(READ_TIMEOUT)).ok();
        }
    }

    fn set_watches(
        &mut self,
        i: usize,
        rel: RelZxid,
        w: &SetWatches2,
        v2: bool,
        out: &mut Vec<String>,
    ) {
        let relative_zxid = match rel {
            RelZxid::LastSeen => self.slots[i].last_zxid,
            RelZxid::Zero => 0,
            RelZxid::Nth(n) => self.norm.nth_zxid(n).unwrap_or(0),
        };
        let w = SetWatches2 {
            relative_zxid,
            ..w.clone()
        };
        self.slots[i].watches.on_set_watches(&w);
        let req = if v2 {
            Request::SetWatches2(w)
        } else {
            Request::SetWatches(w)
        };
        self.request(i, &req, out);
    }

    /// After a reconnect a client re-registers its watches, as the Java and C clients do. The
    /// C client's setWatches carries xid -8; servers must tell it by opcode and echo it.
    fn restore_watches(&mut self, i: usize, v2: bool, out: &mut Vec<String>) {
        let s = &self.slots[i];
        let w = s.watches.to_request(s.last_zxid);
        let none = [
            &w.data_watches,
            &w.exist_watches,
            &w.child_watches,
            &w.persistent_watches,
            &w.persistent_recursive_watches,
        ]
        .iter()
        .all(|v| v.is_empty());
        if none {
            return;
        }
        let (req, fixed_xid) = if v2 || s.watches.has_persistent() {
            (Request::SetWatches2(w), None)
        } else {
            (Request::SetWatches(w), Some(xid::SET_WATCHES))
        };
        let mut body = Vec::new();
        req.encode_body(&mut body);
        if let Some((h, b)) = self.call(i, fixed_xid, req.opcode(), &body, out) {
            out.push(format!(
                "s{i} restored watches: {}",
                self.norm.reply(Shape::Empty, &h, &b)
            ));
        }
    }

    fn handshake(&self, c: &Client, known_password: &[u8]) -> String {
        format!(
            "timeout={} session={} password={}",
            c.timeout,
            self.norm.session(c.session),
            password(&c.passwd, known_password)
        )
    }

    fn connect(&self, session: i64, passwd: Vec<u8>, timeout: i32, last: i64) -> Option<Client> {
        Client::attach_with(
            self.addr,
            ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: last,
                timeout,
                session_id: session,
                passwd,
                read_only: Some(false),
            },
        )
    }

    fn open(&mut self, i: usize, timeout: i32, out: &mut Vec<String>) {
        let Some(c) = self.connect(0, vec![0; 16], timeout, 0) else {
            out.push(format!("s{i} open: closed without a reply"));
            return;
        };
        self.norm.add_session(c.session);
        out.push(format!("s{i} open: {}", self.handshake(&c, &[])));
        self.slots[i] = Slot {
            session: c.session,
            passwd: c.passwd.clone(),
            timeout,
            state: SlotState::Live,
            conn: Some(c),
            ..Slot::empty()
        };
    }

    fn close(&mut self, i: usize, out: &mut Vec<String>) {
        if let Some((h, b)) = self.call(i, None, op::CLOSE_SESSION, &[], out) {
            out.push(format!(
                "s{i} close: {}",
                self.norm.reply(Shape::Empty, &h, &b)
            ));
            if let Some(c) = self.slots[i].conn.as_mut() {
                let closed = c.closed_within(CLOSE_WAIT);
                out.push(format!("s{i} connection closed after close: {closed}"));
            }
        }
        self.end(i);
    }

    /// The session is gone: keep its id and password to try reattaching to it later.
    fn end(&mut self, i: usize) {
        let s = &mut self.slots[i];
        s.conn = None;
        s.state = SlotState::Dead;
        s.frozen = false;
        s.watches = ClientWatches::default();
    }

    fn drop_conn(&mut self, i: usize, out: &mut Vec<String>) {
        let s = &mut self.slots[i];
        if let Some(c) = s.conn.take() {
            let _ = c.sock.shutdown(Shutdown::Both);
        }
        if s.state == SlotState::Live {
            s.state = SlotState::Disconnected;
        }
        out.push(format!("s{i} dropped its connection"));
    }

    fn reattach(&mut self, i: usize, good: bool, restore: bool, v2: bool, out: &mut Vec<String>) {
        let s = &self.slots[i];
        let mut passwd = s.passwd.clone();
        if !good {
            passwd[0] ^= 0x5a;
        }
        let known = s.passwd.clone();
        let was_expired = s.expired;
        let Some(mut c) = self.connect(s.session, passwd, s.timeout, s.last_zxid) else {
            if good && was_expired {
                // ZooKeeper races here: the closeSession of an expired session closes every
                // connection of that session id, a reattach that has just been given the id
                // included, before its answer goes out. The session is gone either way.
                out.push(format!("s{i} reattach: the expired session is gone"));
            } else {
                out.push(format!("s{i} reattach: closed without a reply"));
            }
            if good {
                self.end(i);
            }
            return;
        };
        let answer = self.handshake(&c, &known);
        if good && was_expired && c.timeout <= 0 && c.closed_within(CLOSE_WAIT) {
            out.push(format!("s{i} reattach: the expired session is gone"));
            self.end(i);
            return;
        }
        out.push(format!("s{i} reattach: {answer}"));
        if c.timeout <= 0 {
            let closed = c.closed_within(CLOSE_WAIT);
            out.push(format!("s{i} refused connection closed: {closed}"));
            // A wrong password leaves the session alive; a refused good one means it is gone.
            if good {
                self.end(i);
            }
            return;
        }
        let s = &mut self.slots[i];
        s.conn = Some(c);
        s.state = SlotState::Live;
        s.expired = false;
        if restore {
            self.restore_watches(i, v2, out);
        } else {
            self.slots[i].watches = ClientWatches::default();
        }
    }

    fn steal(&mut self, i: usize, restore: bool, out: &mut Vec<String>) {
        let s = &self.slots[i];
        let known = s.passwd.clone();
        let Some(c) = self.connect(s.session, s.passwd.clone(), s.timeout, s.last_zxid) else {
            out.push(format!("s{i} second connection: closed without a reply"));
            return;
        };
        out.push(format!(
            "s{i} second connection: {}",
            self.handshake(&c, &known)
        ));
        if c.timeout <= 0 {
            return;
        }
        if let Some(mut old) = self.slots[i].conn.replace(c) {
            let closed = old.closed_within(CLOSE_WAIT);
            out.push(format!("s{i} first connection closed: {closed}"));
        }
        if restore {
            self.restore_watches(i, false, out);
        } else {
            self.slots[i].watches = ClientWatches::default();
        }
    }

    /// The last zxid the server applied, as `srvr` says (0 when it does not answer).
    pub fn applied_zxid(&self) -> u64 {
        match paddock_testkit::fourlw::srvr(self.addr) {
            paddock_testkit::fourlw::Srvr::Serving(_, z) => z,
            _ => 0,
        }
    }

    /// Expiry, first half: the slot stops pinging.
    pub fn freeze(&mut self, i: usize) {
        self.norm.begin_step(false);
        self.slots[i].frozen = true;
    }

    /// Expiry, meanwhile: keeps the other sessions alive (collecting their events).
    pub fn keep_alive(&mut self, out: &mut Vec<String>) {
        self.barrier(out);
    }

    /// Whether the server has closed the frozen slot's connection (its session expired).
    pub fn frozen_closed(&mut self, i: usize, wait: Duration) -> bool {
        self.slots[i]
            .conn
            .as_mut()
            .is_none_or(|c| c.closed_within(wait))
    }

    /// Expiry, second half.
    pub fn expired(&mut self, i: usize, closed: bool, out: &mut Vec<String>) {
        out.push(format!(
            "s{i} expired: connection closed by the server: {closed}"
        ));
        self.end(i);
        self.slots[i].expired = true;
    }

    /// Best effort: closes every session this side still has, so none expires during a later
    /// sequence (after a mismatch or a panic).
    pub fn shutdown(&mut self) {
        for i in 0..SLOTS {
            let s = &self.slots[i];
            if s.state == SlotState::Disconnected && s.conn.is_none() {
                if let Some(c) = self.connect(s.session, s.passwd.clone(), s.timeout, 0) {
                    self.slots[i].conn = Some(c);
                }
            }
            if let Some(c) = self.slots[i].conn.as_mut() {
                c.sock.set_read_timeout(Some(CLOSE_WAIT)).ok();
                if write_request(c, 1 << 30, op::CLOSE_SESSION, &[]).is_ok() {
                    c.closed_within(CLOSE_WAIT);
                }
            }
            self.end(i);
        }
    }
}
