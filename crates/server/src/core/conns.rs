//! The client connections the core knows: each one's outbound queue, session, identities,
//! and the counters that `cons` and `stat` report. The core closes a connection by asking
//! its writer to flush and close; the connection's tasks report back when it is gone.

use crate::conn_shared::{ConnId, Outbound, OUTBOUND_LIMIT};
use bytes::Bytes;
use paddock_tree::AuthInfo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// One connection.
pub(crate) struct Conn {
    pub addr: SocketAddr,
    pub out: Outbound,
    /// Over TLS (the AdminServer lists these apart, as ZooKeeper's secure connections).
    pub secure: bool,
    pub session: Option<i64>,
    pub auth: Arc<AuthInfo>,
    /// How the handshake is answered (the readOnly byte, the protocol version).
    pub hello: super::frames::Hello,
    /// A read-only session of a server cut off from its ensemble (readonlymode.enabled).
    pub read_only: bool,
    pub established: Instant,
    pub received: u64,
    pub sent: u64,
    pub last_op: &'static str,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_latency_ms: u64,
    pub min_latency_ms: u64,
    pub max_latency_ms: u64,
    pub total_latency_ms: u64,
    pub closing: bool,
    /// The connection's SASL exchange, once it begins one.
    pub sasl: Option<crate::sasl::Exchange>,
    /// Requests that came while a SASL step ran off the core: taken in order once it is back,
    /// so replies keep the order of requests.
    pub deferred: Vec<(
        i32,
        i32,
        Result<paddock_proto::Request, paddock_proto::ErrorCode>,
    )>,
}

impl Conn {
    /// Adds an identity the connection proved, and `super_id` with it when the identity is the
    /// configured super user's. Identities are shared with requests already in flight, so the
    /// set is replaced, never changed in place.
    pub fn gain(&mut self, id: paddock_proto::Id, super_id: Option<paddock_proto::Id>) {
        let mut auth = (*self.auth).clone();
        if let Some(s) = super_id {
            auth.add(s);
        }
        auth.add(id);
        self.auth = Arc::new(auth);
        // Direct reads would check ACLs with the old identities: the next read goes to the
        // core, which hands out a pass with the new ones.
        self.out.shared.direct.lock().pass = None;
    }

    /// Counts a reply sent `lat` ms after its request arrived, as of the tree at `zxid`.
    pub fn count_reply(&mut self, lat: u64, zxid: i64) {
        self.sent += 1;
        self.last_zxid = zxid;
        self.last_latency_ms = lat;
        self.min_latency_ms = self.min_latency_ms.min(lat);
        self.max_latency_ms = self.max_latency_ms.max(lat);
        self.total_latency_ms += lat;
    }

    fn new(addr: SocketAddr, out: Outbound) -> Conn {
        Conn {
            auth: Arc::new(AuthInfo::for_ip(&addr.ip().to_string())),
            addr,
            out,
            secure: false,
            session: None,
            hello: Default::default(),
            read_only: false,
            established: Instant::now(),
            received: 0,
            sent: 0,
            last_op: "NA",
            last_cxid: -1,
            last_zxid: -1,
            last_latency_ms: 0,
            min_latency_ms: u64::MAX,
            max_latency_ms: 0,
            total_latency_ms: 0,
            closing: false,
            sasl: None,
            deferred: Vec::new(),
        }
    }

    /// Minimum and average latency in ms, 0 before the first reply (`cons`, `connections`).
    pub fn min_avg_latency(&self) -> (u64, u64) {
        let min = if self.min_latency_ms == u64::MAX {
            0
        } else {
            self.min_latency_ms
        };
        (
            min,
            self.total_latency_ms.checked_div(self.sent).unwrap_or(0),
        )
    }

    /// Forgets the latency and packet counters (`crst`).
    pub fn reset_stats(&mut self) {
        self.received = 0;
        self.sent = 0;
        self.last_latency_ms = 0;
        self.min_latency_ms = u64::MAX;
        self.max_latency_ms = 0;
        self.total_latency_ms = 0;
    }
}

/// Every connection of this server.
#[derive(Default)]
pub(crate) struct Conns {
    map: HashMap<ConnId, Conn>,
}

impl Conns {
    /// A new connection from `addr`: identified by its address until it authenticates.
    pub fn open(&mut self, conn: ConnId, addr: SocketAddr, out: Outbound) {
        self.map.insert(conn, Conn::new(addr, out));
    }

    /// Forgets a connection that is gone.
    pub fn remove(&mut self, conn: ConnId) -> Option<Conn> {
        self.map.remove(&conn)
    }

    pub fn get(&self, conn: ConnId) -> Option<&Conn> {
        self.map.get(&conn)
    }

    pub fn get_mut(&mut self, conn: ConnId) -> Option<&mut Conn> {
        self.map.get_mut(&conn)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Connection ids, ascending.
    pub fn ids(&self) -> Vec<ConnId> {
        let mut ids: Vec<ConnId> = self.map.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    pub fn iter(&self) -> impl Iterator<Item = &Conn> {
        self.map.values()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Conn> {
        self.map.values_mut()
    }

    /// Asks a connection's writer to flush what is queued and close.
    pub fn close(&mut self, conn: ConnId) {
        if let Some(c) = self.map.get_mut(&conn) {
            c.closing = true;
            c.out.close();
        }
    }

    /// Whether a connection has more replies queued than it may: its reads wait.
    pub fn congested(&self, conn: ConnId) -> bool {
        self.map
            .get(&conn)
            .is_some_and(|c| c.out.shared.queued.load(Ordering::Acquire) > OUTBOUND_LIMIT)
    }

    /// Asks a congested connection's writer to say when it has caught up (`Drained`).
    pub fn want_drain(&self, conn: ConnId) {
        if let Some(c) = self.map.get(&conn) {
            c.out.shared.wants_drain.store(true, Ordering::Release);
        }
    }

    /// Sends the reply to a request, counting it with its latency (`lat`, ms); false if the
    /// connection is gone.
    pub fn reply(&mut self, conn: ConnId, frame: Bytes, lat: u64, zxid: i64) -> bool {
        let Some(c) = self.map.get_mut(&conn) else {
            return false;
        };
        c.count_reply(lat, zxid);
        c.out.reply(frame);
        true
    }

    /// Sends a frame that answers no request (a notification, the handshake).
    pub fn send(&self, conn: ConnId, frame: Bytes) {
        if let Some(c) = self.map.get(&conn) {
            c.out.send(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn_shared::{ConnShared, OutMsg};
    use tokio::sync::mpsc;

    fn conn(conns: &mut Conns, id: ConnId) -> mpsc::UnboundedReceiver<OutMsg> {
        let (tx, rx) = mpsc::unbounded_channel();
        let out = Outbound {
            tx,
            shared: Arc::new(ConnShared::default()),
            large: None,
        };
        conns.open(id, "10.0.0.7:4000".parse().unwrap(), out);
        rx
    }

    #[test]
    fn a_new_connection_is_known_by_its_address() {
        let mut cs = Conns::default();
        let _rx = conn(&mut cs, 1);
        let c = cs.get(1).unwrap();
        assert_eq!(c.session, None);
        let ids: Vec<String> = c
            .auth
            .in_java_order()
            .iter()
            .map(|i| format!("{}:{}", i.scheme, i.id))
            .collect();
        assert_eq!(ids, vec!["ip:10.0.0.7"]);
    }

    #[test]
    fn a_reply_is_counted_and_frees_an_in_flight_slot() {
        let mut cs = Conns::default();
        let mut rx = conn(&mut cs, 1);
        cs.get(1)
            .unwrap()
            .out
            .shared
            .in_flight
            .store(1, Ordering::Release);
        let took = 3;
        assert!(cs.reply(1, Bytes::from_static(b"abc"), took, 0x42));
        let c = cs.get(1).unwrap();
        assert_eq!((c.sent, c.last_zxid, c.last_latency_ms), (1, 0x42, 3));
        assert_eq!(c.out.shared.in_flight.load(Ordering::Acquire), 0);
        assert_eq!(c.out.shared.queued.load(Ordering::Acquire), 3);
        assert!(matches!(rx.try_recv(), Ok(OutMsg::Frame(f)) if &f[..] == b"abc"));
        assert!(!cs.reply(9, Bytes::new(), took, 0));
    }

    #[test]
    fn congestion_is_judged_by_the_bytes_queued() {
        let mut cs = Conns::default();
        let _rx = conn(&mut cs, 1);
        assert!(!cs.congested(1));
        let shared = cs.get(1).unwrap().out.shared.clone();
        shared.queued.store(OUTBOUND_LIMIT + 1, Ordering::Release);
        assert!(cs.congested(1));
        cs.want_drain(1);
        assert!(shared.wants_drain.load(Ordering::Acquire));
        assert!(!cs.congested(2), "an unknown connection holds nothing back");
    }

    #[test]
    fn close_asks_the_writer_to_flush_and_close() {
        let mut cs = Conns::default();
        let mut rx = conn(&mut cs, 1);
        cs.send(1, Bytes::from_static(b"n"));
        cs.close(1);
        assert!(cs.get(1).unwrap().closing);
        assert!(matches!(rx.try_recv(), Ok(OutMsg::Frame(_))));
        assert!(matches!(rx.try_recv(), Ok(OutMsg::Close)));
        assert!(cs.remove(1).is_some());
        assert_eq!(cs.len(), 0);
    }
}
