//! The operations a sequence is made of, as the generator decides them and both sides run them.

use paddock_proto::{Request, SetWatches2};

/// Where a session slot stands, as both sides must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// Never opened.
    Empty,
    /// Connected with a live session.
    Live,
    /// The session should be alive but has no connection (dropped, or closed by the server).
    Disconnected,
    /// Closed or expired; the id is kept to try reattaching to it.
    Dead,
}

/// Which relative zxid a setWatches carries; translated per side, since raw zxids differ.
#[derive(Debug, Clone, Copy)]
pub enum RelZxid {
    /// The last zxid the slot's client has seen (what real clients send).
    LastSeen,
    Zero,
    /// The zxid that was the n-th to appear in this sequence.
    Nth(usize),
}

/// One step of a sequence.
#[derive(Debug, Clone)]
pub enum Op {
    /// A new session in `slot`, asking for `timeout` ms.
    Open { slot: usize, timeout: i32 },
    /// closeSession.
    Close { slot: usize },
    /// The client drops its TCP connection; the session lives on.
    Drop { slot: usize },
    /// A new connection for the slot's session, with its password or a wrong one, optionally
    /// restoring the client's watches with setWatches (setWatches2 if `v2` or persistent ones).
    Reattach {
        slot: usize,
        good_password: bool,
        restore: bool,
        v2: bool,
    },
    /// Reattach while the old connection is still open: the server must close the old one.
    Steal { slot: usize, restore: bool },
    /// The slot stops pinging until its session expires.
    Expire { slot: usize },
    /// A request from the protocol's request type.
    Req { slot: usize, req: Request },
    /// setWatches/setWatches2 with a side-dependent relative zxid.
    SetWatches {
        slot: usize,
        rel: RelZxid,
        watches: SetWatches2,
        v2: bool,
    },
    /// Bytes the request type cannot express: unknown or internal opcodes, truncated bodies.
    Raw {
        slot: usize,
        opcode: i32,
        body: Vec<u8>,
    },
}

impl Op {
    /// Steps whose events arrive in an order ZooKeeper does not define (it deletes a closing
    /// session's ephemerals in hash-set order), so their events are compared as multisets.
    pub fn unordered_events(&self) -> bool {
        matches!(self, Op::Close { .. } | Op::Expire { .. })
    }
}

impl Op {
    /// The op for reports: its Debug form with byte vectors shown as short text.
    pub fn describe(&self) -> String {
        compact_bytes(&format!("{self:?}"))
    }
}

/// Rewrites every `[n, n, ...]` of byte values as `b"..."` (or `<N bytes>` when long).
fn compact_bytes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find(']').unwrap_or(after.len());
        let inner = &after[..close];
        let bytes: Option<Vec<u8>> = inner.split(", ").map(|x| x.parse().ok()).collect();
        match bytes {
            Some(b) if !inner.is_empty() && close < after.len() => {
                if b.len() > 32 {
                    out.push_str(&format!("<{} bytes>", b.len()));
                } else {
                    out.push_str(&format!("b{:?}", String::from_utf8_lossy(&b)));
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

impl Op {
    /// A short name of the operation's kind, for the run's statistics.
    pub fn kind(&self) -> String {
        match self {
            Op::Open { .. } => "open".into(),
            Op::Close { .. } => "closeSession".into(),
            Op::Drop { .. } => "drop connection".into(),
            Op::Reattach { .. } => "reattach".into(),
            Op::Steal { .. } => "reattach while connected".into(),
            Op::Expire { .. } => "expire".into(),
            Op::SetWatches { v2: false, .. } => "setWatches".into(),
            Op::SetWatches { v2: true, .. } => "setWatches2".into(),
            Op::Raw { opcode, .. } => format!("raw opcode {opcode}"),
            Op::Req { req, .. } => match req {
                Request::Create(c) => format!("{:?}", c.kind).to_lowercase(),
                other => {
                    let name = format!("{other:?}");
                    let end = name.find(['(', ' ', '{']).unwrap_or(name.len());
                    name[..end].to_string()
                }
            },
        }
    }
}
