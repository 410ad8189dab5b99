//! The session table of the server: timeouts, expiry in tick buckets, which connection holds
//! each session, and session ids and passwords as ZooKeeper makes them.

use crate::conn_shared::ConnId;
use std::collections::HashMap;
use std::time::Instant;

/// Where a session is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Replicated: created by a transaction, known to every server, expired by the leader.
    Global,
    /// `localSessionsEnabled`: known to this server alone, created, closed and expired here
    /// without a transaction; it cannot be resumed elsewhere and owns no ephemeral node.
    Local,
    /// A local session whose createSession has gone to the leader (it is creating an
    /// ephemeral node) and is not applied yet.
    Upgrading,
}

/// One session.
#[derive(Debug, Clone)]
pub struct Session {
    pub timeout: i32,
    pub conn: Option<ConnId>,
    pub scope: Scope,
    /// Its createSession transaction has been applied.
    pub live: bool,
    /// The random password it was created with here (None: derived, or made elsewhere; the
    /// tree holds every replicated session's).
    pub password: Option<[u8; 16]>,
    /// Milliseconds since the table's start, always on a tick boundary.
    expire_at: u64,
}

/// Milliseconds on a clock that never goes back: the server's, or a test's plain counter.
pub trait Clock: Send {
    fn now_ms(&self) -> u64;
}

/// The server's clock: milliseconds since the table was made.
pub struct Monotonic(Instant);

impl Clock for Monotonic {
    fn now_ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

/// All sessions of this server.
pub struct Sessions {
    map: HashMap<i64, Session>,
    next_id: i64,
    tick_ms: u64,
    clock: Box<dyn Clock>,
}

/// ZooKeeper's session password: 16 bytes of `java.util.Random` seeded with the session id
/// XOR a fixed secret. Being a function of the id, it survives restarts and matches what a
/// migrated Java ensemble handed out.
pub fn java_password(session: i64) -> [u8; 16] {
    const MULT: u64 = 0x5DEECE66D;
    const MASK: u64 = (1 << 48) - 1;
    let mut seed = ((session ^ 0xB341_5C00) as u64 ^ MULT) & MASK;
    let mut out = [0u8; 16];
    for chunk in out.chunks_mut(4) {
        seed = (seed.wrapping_mul(MULT).wrapping_add(0xB)) & MASK;
        let r = (seed >> 16) as u32;
        for (k, b) in chunk.iter_mut().enumerate() {
            *b = (r >> (8 * k)) as u8;
        }
    }
    out
}

/// The first session id of a server: its id in the top byte, milliseconds below, as ZooKeeper.
pub fn initial_session_id(server_id: u64) -> i64 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut id = (((ms << 24) >> 8) | (server_id << 56)) as i64;
    if id == i64::MIN {
        id += 1;
    }
    id
}

impl Sessions {
    /// An empty table for a server with this id.
    pub fn new(server_id: u64, tick_ms: u64) -> Sessions {
        Sessions::with_clock(server_id, tick_ms, Box::new(Monotonic(Instant::now())))
    }

    /// An empty table on another clock.
    pub fn with_clock(server_id: u64, tick_ms: u64, clock: Box<dyn Clock>) -> Sessions {
        Sessions {
            map: HashMap::new(),
            next_id: initial_session_id(server_id),
            tick_ms: tick_ms.max(1),
            clock,
        }
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    fn deadline(&self, timeout: i32) -> u64 {
        // Rounded up to the next tick, so expiry fires between the timeout and one tick later.
        (self.now() + timeout.max(0) as u64) / self.tick_ms * self.tick_ms + self.tick_ms
    }

    /// Starts a session held by `conn`; it is live once its transaction applies.
    pub fn create(&mut self, timeout: i32, conn: ConnId, password: Option<[u8; 16]>) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        let expire_at = self.deadline(timeout);
        self.map.insert(
            id,
            Session {
                timeout,
                conn: Some(conn),
                scope: Scope::Global,
                live: false,
                password,
                expire_at,
            },
        );
        id
    }

    /// Starts a local session held by `conn`, live at once: no transaction makes it.
    pub fn create_local(&mut self, timeout: i32, conn: ConnId, password: Option<[u8; 16]>) -> i64 {
        let id = self.create(timeout, conn, password);
        if let Some(s) = self.map.get_mut(&id) {
            s.scope = Scope::Local;
            s.live = true;
        }
        id
    }

    /// The session's scope, if this server knows it.
    pub fn scope(&self, id: i64) -> Option<Scope> {
        self.map.get(&id).map(|s| s.scope)
    }

    /// Whether the session is known here alone (local, or local with its upgrade in flight).
    pub fn is_local(&self, id: i64) -> bool {
        self.scope(id).is_some_and(|s| s != Scope::Global)
    }

    /// Changes a session's scope (an upgrade sent, applied, or lost with the leader).
    pub fn set_scope(&mut self, id: i64, scope: Scope) {
        if let Some(s) = self.map.get_mut(&id) {
            s.scope = scope;
        }
    }

    /// Number of sessions known here alone.
    pub fn local_count(&self) -> usize {
        self.map
            .values()
            .filter(|s| s.scope != Scope::Global)
            .count()
    }

    /// Restores a session known from the data (a restart): not held by any connection.
    pub fn restore(&mut self, id: i64, timeout: i32) {
        // New ids must never collide with restored ones, even if the clock went back.
        if id >= self.next_id && (id >> 56) == (self.next_id >> 56) {
            self.next_id = id + 1;
        }
        let expire_at = self.deadline(timeout);
        self.map.insert(
            id,
            Session {
                timeout,
                conn: None,
                scope: Scope::Global,
                live: true,
                password: None,
                expire_at,
            },
        );
    }

    /// The session's createSession transaction was applied.
    pub fn mark_live(&mut self, id: i64) {
        if let Some(s) = self.map.get_mut(&id) {
            s.live = true;
        }
    }

    /// A session.
    pub fn get(&self, id: i64) -> Option<&Session> {
        self.map.get(&id)
    }

    /// Hands the session to a connection with a newly negotiated timeout.
    pub fn attach(&mut self, id: i64, conn: ConnId, timeout: i32) {
        let d = self.deadline(timeout);
        if let Some(s) = self.map.get_mut(&id) {
            s.conn = Some(conn);
            s.timeout = timeout;
            s.expire_at = d;
        }
    }

    /// The connection went away; the session lives on until it expires.
    pub fn detach(&mut self, id: i64, conn: ConnId) {
        if let Some(s) = self.map.get_mut(&id) {
            if s.conn == Some(conn) {
                s.conn = None;
            }
        }
    }

    /// Any packet from the client renews the session.
    pub fn touch(&mut self, id: i64) {
        let Some(t) = self.map.get(&id).map(|s| s.timeout) else {
            return;
        };
        let d = self.deadline(t);
        if let Some(s) = self.map.get_mut(&id) {
            s.expire_at = d;
        }
    }

    /// Forgets a session.
    pub fn remove(&mut self, id: i64) {
        self.map.remove(&id);
    }

    /// Keeps only the sessions for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(i64, &Session) -> bool) {
        self.map.retain(|&id, s| keep(id, s));
    }

    /// Live sessions whose deadline has passed.
    pub fn expired(&self) -> Vec<i64> {
        let now = self.now();
        let mut v: Vec<i64> = self
            .map
            .iter()
            .filter(|(_, s)| s.live && s.expire_at <= now)
            .map(|(&id, _)| id)
            .collect();
        v.sort();
        v
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// All sessions with the milliseconds until they expire (for `dump`).
    pub fn all(&self) -> Vec<(i64, &Session, i64)> {
        let now = self.now() as i64;
        let mut v: Vec<_> = self
            .map
            .iter()
            .map(|(&id, s)| (id, s, s.expire_at as i64 - now))
            .collect();
        v.sort_by_key(|x| x.0);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn password_is_java_random() {
        // java.util.Random(0).nextInt() is -1155484576 (0xBB20B460): with seed s such that
        // s ^ 0xB3415C00 == 0, the first four bytes are that int, least significant first.
        let p = java_password(0xB341_5C00);
        assert_eq!(&p[..4], &(-1155484576i32).to_le_bytes());
    }

    #[test]
    fn ids_carry_server_id() {
        assert_eq!(initial_session_id(1) >> 56, 1);
    }

    /// A clock that moves only when told.
    #[derive(Clone, Default)]
    struct Manual(Arc<AtomicU64>);

    impl Clock for Manual {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    impl Manual {
        fn set(&self, ms: u64) {
            self.0.store(ms, Ordering::Relaxed);
        }
    }

    fn table() -> (Sessions, Manual) {
        let clock = Manual::default();
        (
            Sessions::with_clock(1, 1000, Box::new(clock.clone())),
            clock,
        )
    }

    #[test]
    fn a_session_expires_between_its_timeout_and_one_tick_later() {
        let (mut t, clock) = table();
        clock.set(500);
        let sid = t.create(3000, 7, None);
        assert!(
            t.expired().is_empty(),
            "not live until its transaction applies"
        );
        t.mark_live(sid);
        // Deadline: (500 + 3000) rounded up to the next tick, 4000.
        clock.set(3999);
        assert!(t.expired().is_empty());
        clock.set(4000);
        assert_eq!(t.expired(), vec![sid]);
    }

    #[test]
    fn any_packet_renews_and_a_reattach_takes_the_new_timeout() {
        let (mut t, clock) = table();
        let sid = t.create(2000, 7, None);
        t.mark_live(sid);
        clock.set(1900);
        t.touch(sid);
        clock.set(3500);
        assert!(t.expired().is_empty(), "renewed at 1900: due at 4000");
        t.detach(sid, 7);
        assert_eq!(t.get(sid).unwrap().conn, None);
        t.attach(sid, 8, 10_000);
        clock.set(12_000);
        assert!(t.expired().is_empty());
        clock.set(14_000);
        assert_eq!(t.expired(), vec![sid]);
        assert_eq!(t.get(sid).unwrap().conn, Some(8));
    }

    #[test]
    fn restored_sessions_get_a_full_timeout_and_new_ids_never_collide() {
        let (mut t, clock) = table();
        clock.set(10_000);
        let old = t.create(1000, 1, None) + 5;
        t.restore(old, 4000);
        assert!(t.create(1000, 2, None) > old);
        clock.set(13_999);
        assert!(!t.expired().contains(&old));
        clock.set(15_000);
        assert!(t.expired().contains(&old));
        assert_eq!(t.all().iter().find(|s| s.0 == old).map(|s| s.2), Some(0));
    }

    #[test]
    fn a_detach_by_another_connection_changes_nothing() {
        let (mut t, _) = table();
        let sid = t.create(1000, 7, None);
        t.detach(sid, 8);
        assert_eq!(t.get(sid).unwrap().conn, Some(7));
        t.remove(sid);
        assert!(t.is_empty());
    }

    #[test]
    fn a_local_session_is_live_at_once_and_counted_until_it_is_global() {
        let (mut t, clock) = table();
        let global = t.create(1000, 1, None);
        let local = t.create_local(2000, 2, Some([3; 16]));
        assert!(t.get(local).unwrap().live, "no transaction makes it");
        assert!(t.is_local(local) && !t.is_local(global));
        assert_eq!(t.local_count(), 1);
        t.set_scope(local, Scope::Upgrading);
        assert!(
            t.is_local(local),
            "known here alone until its upgrade applies"
        );
        clock.set(3000);
        assert_eq!(t.expired(), vec![local], "the global one is not live yet");
        t.set_scope(local, Scope::Global);
        assert_eq!(t.local_count(), 0);
        assert_eq!(t.get(local).unwrap().password, Some([3; 16]));
    }
}
