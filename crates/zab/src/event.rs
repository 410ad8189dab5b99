//! Inputs to a node.

use crate::message::Message;
use crate::zxid::{DiskSeq, ServerId, Zxid};
use bytes::Bytes;
use std::fmt;

/// Something that happened: the only way a node learns anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// One tick of the node's clock. All timeouts are counted in ticks.
    Tick,
    /// A message from a peer.
    Peer {
        /// Sender.
        from: ServerId,
        /// Message.
        msg: Message,
    },
    /// Every disk order with a sequence number up to `through` is durable.
    Persisted {
        /// Highest durable disk order.
        through: DiskSeq,
    },
    /// A client's write arrived at this node.
    ClientWrite {
        /// Driver's id, echoed in a refusal.
        request_id: u64,
        /// Opaque payload.
        payload: Bytes,
    },
    /// A client's sync() arrived at this node.
    ClientSync {
        /// Driver's id, echoed in the answer.
        request_id: u64,
    },
    /// The driver removed on-disk log entries up to `through` (a snapshot covers them): they can
    /// no longer be sent in a DIFF.
    LogPurged {
        /// Last zxid removed.
        through: Zxid,
    },
    /// A client of this node touched its session (reported to the leader with the next ping).
    SessionTouched {
        /// Session id.
        session_id: u64,
    },
    /// A client resumed this session at this node (it moved here from another server, or
    /// reconnected): the leader learns which server owns the session now, ahead of any write
    /// this node forwards for it, so writes from the server it left can be refused.
    SessionResumed {
        /// Session id.
        session_id: u64,
    },
    /// An operator asks this node, if it leads, to hand leadership over: to `to`, or with
    /// `None` to the most up-to-date voter. New proposals are held until the target has
    /// acknowledged everything proposed, then it takes over without an election. On a
    /// follower, the request goes to its leader with this node as the target.
    TransferLeadership {
        /// The voter to hand over to (`None`: the best one; on a follower: itself).
        to: Option<ServerId>,
    },
    /// The driver's connection with this peer broke (a TCP reset, say): any learner connection
    /// with it is gone, since messages on it may have been lost. Drivers whose transport
    /// cannot tell may never send this; the tick limits then do the same, later.
    PeerLost {
        /// The peer.
        peer: ServerId,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Tick => write!(f, "Tick"),
            Event::Peer { from, msg } => write!(f, "from n{from}: {msg}"),
            Event::Persisted { through } => write!(f, "Persisted(through=#{through})"),
            Event::ClientWrite {
                request_id,
                payload,
            } => {
                write!(f, "ClientWrite(#{request_id}, {}B)", payload.len())
            }
            Event::ClientSync { request_id } => write!(f, "ClientSync(#{request_id})"),
            Event::LogPurged { through } => write!(f, "LogPurged(through={through})"),
            Event::SessionTouched { session_id } => write!(f, "SessionTouched(0x{session_id:x})"),
            Event::PeerLost { peer } => write!(f, "PeerLost(n{peer})"),
            Event::TransferLeadership { to } => match to {
                Some(t) => write!(f, "TransferLeadership(n{t})"),
                None => write!(f, "TransferLeadership(best)"),
            },
            Event::SessionResumed { session_id } => {
                write!(f, "SessionResumed(0x{session_id:x})")
            }
        }
    }
}
