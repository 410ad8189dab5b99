//! The core's side of direct reads (`crate::read_path`): it hands a connection its pass when
//! it answers one of the connection's reads at once, takes it back when the session's reads
//! must wait their turn again, says whether direct reads may run at all, and counts them into
//! its figures as if it had answered them.

use super::Core;
use crate::conn_shared::ConnId;
use crate::session::Scope;
use paddock_proto::op;
use paddock_tree::AuthInfo;
use std::sync::Arc;

impl Core {
    /// Whether connections may answer reads themselves: they are configured to
    /// (`directReads`), the server serves, holds nothing back for a handover, is not stopping,
    /// and reads are not each to wait for a sync.
    pub(super) fn direct_reads_open(&self) -> bool {
        self.cfg.direct_reads
            && self.serving()
            && !self.holding()
            && self.stopping.is_none()
            && !self.cfg.linearizable_reads
    }

    /// `conn`'s read of `sid` runs at once, with nothing of the session before it: its next
    /// reads may run on its own task, until something takes the pass back.
    pub(super) fn grant_direct(&mut self, sid: i64, conn: ConnId, auth: &Arc<AuthInfo>) {
        if self.prep.is_closing(sid) {
            return;
        }
        if let Some(c) = self.conns.get(conn) {
            // A SASL exchange under way is no reason to wait: identities it proves take the
            // pass back (`Conn::gain`); only a step running off the core holds requests.
            let stepping = matches!(c.sasl, Some(crate::sasl::Exchange::InFlight));
            if c.session == Some(sid) && !c.read_only && !stepping && !c.closing {
                c.out.shared.direct.lock().grant(sid, auth);
            }
        }
    }

    /// Takes `conn`'s pass back (its identities changed, it closes, its session ends): its
    /// next read goes through the core.
    pub(crate) fn revoke_direct(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get(conn) {
            c.out.shared.direct.lock().pass = None;
        }
    }

    /// Counts `conn`'s direct reads into the figures the core keeps of every request, and
    /// keeps their session alive as any request does.
    pub(super) fn count_direct_reads(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let reads = c.out.shared.direct.lock().take();
        let Some(last) = reads.last() else {
            return;
        };
        c.received += reads.len() as u64;
        c.last_cxid = last.xid;
        c.last_op = op::name(last.op);
        for r in &reads {
            c.count_reply(u64::from(r.micros) / 1000, r.zxid);
        }
        let session = c.session;
        for r in &reads {
            self.stats.received += 1;
            self.events.bytes_received += 4 + u64::from(r.request_bytes);
            self.events.replied(r.reply_bytes as usize);
            self.count_answered(r.op, false, u64::from(r.micros));
        }
        self.events.direct_reads += reads.len() as u64;
        if let Some(sid) = session {
            self.sessions.touch(sid);
            // As for any request: a learner tells the leader its clients' sessions are alive.
            if self.sessions.scope(sid) != Some(Scope::Local) && !self.replica.is_leader() {
                self.replica.touched.insert(sid);
            }
        }
    }

    /// Counts every connection's direct reads: before a figure is reported, and every tick,
    /// before sessions are judged expired.
    pub(super) fn count_all_direct_reads(&mut self) {
        for conn in self.conns.ids() {
            self.count_direct_reads(conn);
        }
    }
}
