//! The byte encoding of `Message` on the quorum and election ports (our own format; Java
//! servers are not spoken to there).
//!
//! A frame is `[u32 length][u8 kind][fields]`, big-endian, built by `encode_frame` and cut by
//! `take_frame`. Fields are fixed-width integers, and byte strings as `[u32 length][bytes]`.
//! Decoding never panics: bad input from a peer is an error, and the connection that sent it is
//! closed by the server.

use crate::message::{ConnId, HeldRequest, LearnerMsg, Message, PeerState, SyncMode, Vote};
use crate::zxid::{Txn, Zxid};
use bytes::Bytes;
use thiserror::Error;

/// The largest frame a peer may send (a snapshot travels in one message).
pub const MAX_FRAME_BYTES: usize = 1 << 30;

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The frame ends before the message does (or a count promises more than it holds).
    #[error("frame cut short")]
    Short,
    /// The first byte names no message.
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    /// A notification's peer state is not one of the four.
    #[error("unknown peer state {0}")]
    UnknownState(u8),
    /// A length prefix beyond `MAX_FRAME_BYTES`.
    #[error("frame of {0} bytes is over the limit")]
    TooLarge(usize),
    /// Bytes follow a complete message.
    #[error("{0} bytes left over after the message")]
    Trailing(usize),
}

// Message kinds (one byte).
const NOTIFICATION: u8 = 1;
const INFO: u8 = 10;
const LEADER_INFO: u8 = 11;
const ACK_EPOCH: u8 = 12;
const SYNC_DIFF: u8 = 13;
const SYNC_TRUNC: u8 = 14;
const SNAP: u8 = 15;
const PROPOSAL: u8 = 16;
const NEW_LEADER: u8 = 17;
const ACK_NEW_LEADER: u8 = 18;
const UP_TO_DATE: u8 = 19;
const ACK: u8 = 20;
const COMMIT: u8 = 21;
const INFORM: u8 = 22;
const REQUEST: u8 = 23;
const REFUSED: u8 = 24;
const PING: u8 = 25;
const PING_ACK: u8 = 26;
const SYNC_REQUEST: u8 = 27;
const SYNC_REPLY: u8 = 28;
const SESSION_RESUMED: u8 = 29;
const TAKE_OVER: u8 = 30;
const HANDOVER: u8 = 31;
const REQUEST_LEADERSHIP: u8 = 32;
const NEW_EPOCH: u8 = 33;
const ACK_NEW_EPOCH: u8 = 34;

struct Out<'a>(&'a mut Vec<u8>);

impl Out<'_> {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    /// An optional u64: a presence byte, then the value if present.
    fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.u64(v);
            }
            None => self.u8(0),
        }
    }
    /// An optional configuration, last in its message and added after the first release:
    /// written only when there is one (a presence byte, its zxid and payload), so that until
    /// a reconfiguration a server of an earlier release reads every notification and
    /// NEWLEADER (a rolling upgrade goes on).
    fn config(&mut self, c: &Option<(Zxid, Bytes)>) {
        if let Some((zxid, payload)) = c {
            self.u8(1);
            self.u64(zxid.0);
            self.bytes(payload);
        }
    }
    fn txn(&mut self, t: &Txn) {
        self.u64(t.zxid.0);
        self.bytes(&t.payload);
    }
}

struct In<'a> {
    buf: &'a [u8],
}

impl<'a> In<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.buf.len() < n {
            return Err(CodecError::Short);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn opt_u64(&mut self) -> Result<Option<u64>, CodecError> {
        match self.u8()? {
            0 => Ok(None),
            _ => Ok(Some(self.u64()?)),
        }
    }
    fn config(&mut self) -> Result<Option<(Zxid, Bytes)>, CodecError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        Ok(match self.u8()? {
            0 => None,
            _ => Some((self.zxid()?, self.bytes()?)),
        })
    }
    fn zxid(&mut self) -> Result<Zxid, CodecError> {
        Ok(Zxid(self.u64()?))
    }
    fn bytes(&mut self) -> Result<Bytes, CodecError> {
        let n = self.u32()? as usize;
        Ok(Bytes::copy_from_slice(self.take(n)?))
    }
    fn txn(&mut self) -> Result<Txn, CodecError> {
        Ok(Txn {
            zxid: self.zxid()?,
            payload: self.bytes()?,
        })
    }
}

fn state_code(s: PeerState) -> u8 {
    match s {
        PeerState::Looking => 0,
        PeerState::Following => 1,
        PeerState::Leading => 2,
        PeerState::Observing => 3,
    }
}

fn state_of(c: u8) -> Result<PeerState, CodecError> {
    Ok(match c {
        0 => PeerState::Looking,
        1 => PeerState::Following,
        2 => PeerState::Leading,
        3 => PeerState::Observing,
        other => return Err(CodecError::UnknownState(other)),
    })
}

/// Appends `m` to `out` as one frame (length prefix included).
pub fn encode_frame(m: &Message, out: &mut Vec<u8>) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    encode(m, out);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Appends the body of `m` (no length prefix).
pub fn encode(m: &Message, out: &mut Vec<u8>) {
    let mut o = Out(out);
    match m {
        Message::Notification {
            round,
            state,
            vote,
            config,
        } => {
            o.u8(NOTIFICATION);
            o.u64(*round);
            o.u8(state_code(*state));
            o.u32(vote.epoch);
            o.u64(vote.zxid.0);
            o.u64(vote.leader);
            o.config(config);
        }
        Message::Learner { conn, msg } => encode_learner(&mut o, *conn, msg),
    }
}

fn encode_learner(o: &mut Out<'_>, conn: ConnId, msg: &LearnerMsg) {
    use LearnerMsg::*;
    let kind = match msg {
        Info { .. } => INFO,
        LeaderInfo { .. } => LEADER_INFO,
        AckEpoch { .. } => ACK_EPOCH,
        Sync {
            mode: SyncMode::Diff,
            ..
        } => SYNC_DIFF,
        Sync {
            mode: SyncMode::Trunc { .. },
            ..
        } => SYNC_TRUNC,
        Snap { .. } => SNAP,
        Proposal { .. } => PROPOSAL,
        NewLeader { .. } => NEW_LEADER,
        AckNewLeader { .. } => ACK_NEW_LEADER,
        UpToDate { .. } => UP_TO_DATE,
        Ack { .. } => ACK,
        Commit { .. } => COMMIT,
        Inform { .. } => INFORM,
        Request { .. } => REQUEST,
        Refused { .. } => REFUSED,
        Ping { .. } => PING,
        PingAck { .. } => PING_ACK,
        SyncRequest { .. } => SYNC_REQUEST,
        SyncReply { .. } => SYNC_REPLY,
        SessionResumed { .. } => SESSION_RESUMED,
        TakeOver { .. } => TAKE_OVER,
        Handover { .. } => HANDOVER,
        RequestLeadership => REQUEST_LEADERSHIP,
        NewEpoch { .. } => NEW_EPOCH,
        AckNewEpoch { .. } => ACK_NEW_EPOCH,
    };
    o.u8(kind);
    o.u64(conn);
    match msg {
        Info {
            accepted_epoch,
            observer,
        } => {
            o.u32(*accepted_epoch);
            o.u8(u8::from(*observer));
        }
        LeaderInfo { epoch }
        | AckNewLeader { epoch }
        | NewEpoch { epoch }
        | AckNewEpoch { epoch } => o.u32(*epoch),
        AckEpoch {
            epoch,
            current_epoch,
            last_zxid,
            applied,
            runs,
            promised,
        } => {
            o.u32(*epoch);
            o.u32(*current_epoch);
            o.u64(last_zxid.0);
            o.u64(applied.0);
            o.u32(runs.len() as u32);
            for (a, b) in runs {
                o.u64(a.0);
                o.u64(b.0);
            }
            // Added after the first release: written only when it says something new, so a
            // server of that release still reads every ACKEPOCH of the usual kind (a rolling
            // upgrade goes on).
            if !promised {
                o.u8(0);
            }
        }
        Sync { mode, commit } => {
            if let SyncMode::Trunc { to } = mode {
                o.u64(to.0);
            }
            o.u64(commit.0);
        }
        Snap { zxid, data } => {
            o.u64(zxid.0);
            o.bytes(data);
        }
        Proposal { txn } | Inform { txn } => o.txn(txn),
        NewLeader {
            epoch,
            commit,
            config,
        } => {
            o.u32(*epoch);
            o.u64(commit.0);
            o.config(config);
        }
        UpToDate { commit } => o.u64(commit.0),
        Ack { zxid } | Commit { zxid } => o.u64(zxid.0),
        Request {
            request_id,
            payload,
        } => {
            o.u64(*request_id);
            o.bytes(payload);
        }
        SessionResumed { session_id } => o.u64(*session_id),
        Refused { request_id } | SyncRequest { request_id } | SyncReply { request_id } => {
            o.u64(*request_id)
        }
        Ping { round } => o.u64(*round),
        RequestLeadership => {}
        // Their fields came after the first release: left out when empty, as above.
        TakeOver { through, held } => {
            if through.is_some() || !held.is_empty() {
                o.opt_u64(*through);
                o.u32(held.len() as u32);
                for h in held {
                    o.u64(h.from);
                    o.u64(h.request_id);
                    o.bytes(&h.payload);
                }
            }
        }
        Handover { to, through } => {
            o.u64(*to);
            if through.is_some() {
                o.opt_u64(*through);
            }
        }
        PingAck { round, touches } => {
            o.u64(*round);
            o.u32(touches.len() as u32);
            for t in touches {
                o.u64(*t);
            }
        }
    }
}

/// Decodes a frame body (what `take_frame` returns).
pub fn decode(body: &[u8]) -> Result<Message, CodecError> {
    let mut i = In { buf: body };
    let kind = i.u8()?;
    let m = if kind == NOTIFICATION {
        Message::Notification {
            round: i.u64()?,
            state: state_of(i.u8()?)?,
            vote: Vote {
                epoch: i.u32()?,
                zxid: i.zxid()?,
                leader: i.u64()?,
            },
            config: i.config()?,
        }
    } else if (INFO..=ACK_NEW_EPOCH).contains(&kind) {
        let conn = i.u64()?;
        Message::Learner {
            conn,
            msg: decode_learner(kind, &mut i)?,
        }
    } else {
        return Err(CodecError::UnknownKind(kind));
    };
    if !i.buf.is_empty() {
        return Err(CodecError::Trailing(i.buf.len()));
    }
    Ok(m)
}

fn decode_learner(kind: u8, i: &mut In<'_>) -> Result<LearnerMsg, CodecError> {
    use LearnerMsg::*;
    Ok(match kind {
        INFO => Info {
            accepted_epoch: i.u32()?,
            observer: i.u8()? != 0,
        },
        LEADER_INFO => LeaderInfo { epoch: i.u32()? },
        ACK_EPOCH => {
            let epoch = i.u32()?;
            let current_epoch = i.u32()?;
            let last_zxid = i.zxid()?;
            let applied = i.zxid()?;
            let n = i.u32()? as usize;
            // Each run takes 16 bytes: a count beyond what is left is a lie, not an allocation.
            if n > i.buf.len() / 16 {
                return Err(CodecError::Short);
            }
            let mut runs = Vec::with_capacity(n);
            for _ in 0..n {
                runs.push((i.zxid()?, i.zxid()?));
            }
            AckEpoch {
                epoch,
                current_epoch,
                last_zxid,
                applied,
                runs,
                promised: i.buf.is_empty() || i.u8()? != 0,
            }
        }
        SYNC_DIFF => Sync {
            mode: SyncMode::Diff,
            commit: i.zxid()?,
        },
        SYNC_TRUNC => {
            let to = i.zxid()?;
            Sync {
                mode: SyncMode::Trunc { to },
                commit: i.zxid()?,
            }
        }
        SNAP => Snap {
            zxid: i.zxid()?,
            data: i.bytes()?,
        },
        PROPOSAL => Proposal { txn: i.txn()? },
        NEW_LEADER => NewLeader {
            epoch: i.u32()?,
            commit: i.zxid()?,
            config: i.config()?,
        },
        ACK_NEW_LEADER => AckNewLeader { epoch: i.u32()? },
        UP_TO_DATE => UpToDate { commit: i.zxid()? },
        ACK => Ack { zxid: i.zxid()? },
        COMMIT => Commit { zxid: i.zxid()? },
        INFORM => Inform { txn: i.txn()? },
        REQUEST => Request {
            request_id: i.u64()?,
            payload: i.bytes()?,
        },
        REFUSED => Refused {
            request_id: i.u64()?,
        },
        PING => Ping { round: i.u64()? },
        PING_ACK => {
            let round = i.u64()?;
            let n = i.u32()? as usize;
            if n > i.buf.len() / 8 {
                return Err(CodecError::Short);
            }
            let mut touches = Vec::with_capacity(n);
            for _ in 0..n {
                touches.push(i.u64()?);
            }
            PingAck { round, touches }
        }
        SYNC_REQUEST => SyncRequest {
            request_id: i.u64()?,
        },
        SYNC_REPLY => SyncReply {
            request_id: i.u64()?,
        },
        SESSION_RESUMED => SessionResumed {
            session_id: i.u64()?,
        },
        TAKE_OVER if i.buf.is_empty() => TakeOver {
            through: None,
            held: Vec::new(),
        },
        TAKE_OVER => {
            let through = i.opt_u64()?;
            let n = i.u32()? as usize;
            // Each takes at least 20 bytes: a count beyond what is left is a lie.
            if n > i.buf.len() / 20 {
                return Err(CodecError::Short);
            }
            let mut held = Vec::with_capacity(n);
            for _ in 0..n {
                held.push(HeldRequest {
                    from: i.u64()?,
                    request_id: i.u64()?,
                    payload: i.bytes()?,
                });
            }
            TakeOver { through, held }
        }
        HANDOVER => {
            let to = i.u64()?;
            let through = if i.buf.is_empty() { None } else { i.opt_u64()? };
            Handover { to, through }
        }
        REQUEST_LEADERSHIP => RequestLeadership,
        NEW_EPOCH => NewEpoch { epoch: i.u32()? },
        ACK_NEW_EPOCH => AckNewEpoch { epoch: i.u32()? },
        other => return Err(CodecError::UnknownKind(other)),
    })
}

/// Cuts the next whole frame off the front of `buf`: `Ok(None)` when more bytes are needed,
/// the body and the bytes consumed otherwise.
pub fn take_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>, CodecError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(CodecError::TooLarge(len));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    Ok(Some((&buf[4..4 + len], 4 + len)))
}
