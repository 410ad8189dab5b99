//! The depot of outstanding requests: what was written to the socket and awaits its reply.
//! ZooKeeper answers a session's requests in order, so this is a FIFO checked by xid; a plain
//! struct, testable without a socket.

use crate::error::Error;
use crate::watch::PendingWatch;
use paddock_proto::ErrorCode;
use std::collections::VecDeque;
use tokio::sync::oneshot;

/// A reply as it came off the wire: the header's zxid and error, and the body bytes.
#[derive(Debug)]
pub(crate) struct RawReply {
    pub err: i32,
    pub body: Vec<u8>,
}

/// One request on the wire.
#[derive(Debug)]
pub(crate) struct Outstanding {
    pub xid: i32,
    pub opcode: i32,
    /// Server path the request is about (for watch registration).
    pub path: String,
    pub watch: Option<PendingWatch>,
    pub reply: oneshot::Sender<Result<RawReply, Error>>,
}

/// Outstanding requests in send order, and the xid counter.
#[derive(Debug, Default)]
pub(crate) struct Depot {
    queue: VecDeque<Outstanding>,
    last_xid: i32,
}

impl Depot {
    /// The next xid: positive and increasing, wrapping back to 1 (negative xids are reserved for
    /// pings, auth, watches and notifications).
    pub(crate) fn next_xid(&mut self) -> i32 {
        self.last_xid = if self.last_xid >= i32::MAX - 1 {
            1
        } else {
            self.last_xid + 1
        };
        self.last_xid
    }

    pub(crate) fn push(&mut self, o: Outstanding) {
        self.queue.push_back(o);
    }

    /// Takes the request a reply with `xid` answers. A reply out of order is a protocol error:
    /// the caller drops the connection.
    pub(crate) fn pop(&mut self, xid: i32) -> Result<Outstanding, (i32, Option<i32>)> {
        match self.queue.front() {
            Some(o) if o.xid == xid => Ok(self.queue.pop_front().expect("front exists")),
            Some(o) => Err((xid, Some(o.xid))),
            None => Err((xid, None)),
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Fails every outstanding request with `code` (CONNECTIONLOSS on disconnect: nothing is
    /// silently resent, since a write may or may not have been applied).
    pub(crate) fn fail_all(&mut self, code: ErrorCode) {
        for o in self.queue.drain(..) {
            let _ = o.reply.send(Err(Error::Code(code)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(d: &mut Depot) -> (i32, oneshot::Receiver<Result<RawReply, Error>>) {
        let (tx, rx) = oneshot::channel();
        let xid = d.next_xid();
        d.push(Outstanding {
            xid,
            opcode: 4,
            path: "/".into(),
            watch: None,
            reply: tx,
        });
        (xid, rx)
    }

    #[test]
    fn fifo_by_xid_and_fail_all() {
        let mut d = Depot::default();
        let (x1, _r1) = out(&mut d);
        let (x2, mut r2) = out(&mut d);
        assert_eq!(x2, x1 + 1);
        assert!(d.pop(x2).is_err());
        assert_eq!(d.pop(x1).unwrap().xid, x1);
        d.fail_all(ErrorCode::ConnectionLoss);
        assert_eq!(d.len(), 0);
        assert_eq!(
            r2.try_recv().unwrap().unwrap_err(),
            Error::Code(ErrorCode::ConnectionLoss)
        );
    }

    #[test]
    fn xid_wraps_to_one() {
        let mut d = Depot {
            last_xid: i32::MAX - 1,
            ..Default::default()
        };
        assert_eq!(d.next_xid(), 1);
    }
}
