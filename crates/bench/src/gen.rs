//! Request generators: bodies are encoded once with paddock-proto and copied into the write
//! buffer per request, so the hot loop does no allocation and no jute encoding.

use crate::conn::Conn;
use bytes::BufMut;
use paddock_proto::{
    Acl, CreateRequest, GetDataResponse, PathWatchRequest, Record, SetDataRequest,
};
use std::cell::Cell;
use std::rc::Rc;

/// Encodes a create request body.
pub fn create_body(path: &str, data: &[u8], flags: i32) -> Vec<u8> {
    CreateRequest {
        path: path.to_owned(),
        data: Some(data.to_vec()),
        acl: Acl::open_unsafe(),
        flags,
    }
    .to_bytes()
}

/// Encodes a getData / exists / getChildren request body.
pub fn path_watch_body(path: &str, watch: bool) -> Vec<u8> {
    PathWatchRequest {
        path: path.to_owned(),
        watch,
    }
    .to_bytes()
}

/// Encodes a sync request body.
pub fn sync_body(path: &str) -> Vec<u8> {
    paddock_proto::PathRequest {
        path: path.to_owned(),
    }
    .to_bytes()
}

/// Encodes a setData request body (any version).
pub fn set_data_body(path: &str, data: &[u8]) -> Vec<u8> {
    SetDataRequest {
        path: path.to_owned(),
        data: Some(data.to_vec()),
        version: -1,
    }
    .to_bytes()
}

/// Checks a getData reply body decodes (used once in setup, not per request).
pub fn decode_get_data(body: &[u8]) -> Option<usize> {
    let r = GetDataResponse::decode(&mut paddock_proto::Reader::new(body)).ok()?;
    Some(r.data.map(|d| d.len()).unwrap_or(0))
}

/// Writes `v` as zero-padded decimal into `out` (its whole width; higher digits are dropped).
#[inline]
pub fn write_digits(out: &mut [u8], mut v: u64) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Small, fast, deterministic PRNG (xorshift64*), seeded per session.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is remapped).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in 0..n (n > 0), slightly biased for huge n, which does not matter here.
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
}

/// A body template whose decimal slots are overwritten per request (populate's paths).
#[derive(Debug, Clone)]
pub struct Patched {
    /// The opcode sent.
    pub op: i32,
    /// The encoded body with zeroed digits.
    pub template: Vec<u8>,
    /// (offset, width) of each decimal slot in `template`.
    pub slots: Vec<(usize, usize)>,
}

impl Patched {
    /// Builds a template from `path_with_marks`, where each run of `#` is a decimal slot.
    pub fn create(op: i32, path_with_marks: &str, data: &[u8], flags: i32) -> Patched {
        let path = path_with_marks.replace('#', "0");
        let template = create_body(&path, data, flags);
        // The path follows its 4-byte length at the start of the body.
        let mut slots = Vec::new();
        let b = path_with_marks.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'#' {
                let start = i;
                while i < b.len() && b[i] == b'#' {
                    i += 1;
                }
                slots.push((4 + start, i - start));
            } else {
                i += 1;
            }
        }
        Patched {
            op,
            template,
            slots,
        }
    }

    /// Appends the request with the slots set to `values`.
    #[inline]
    pub fn push(&self, conn: &mut Conn, values: &[u64]) -> i32 {
        conn.push_with(self.op, |buf| {
            let start = buf.len();
            buf.put_slice(&self.template);
            for (&(off, w), &v) in self.slots.iter().zip(values) {
                write_digits(&mut buf[start + off..start + off + w], v);
            }
        })
    }
}

/// What a session sends next.
pub enum Gen {
    /// Cycles through pre-encoded bodies of one opcode, from a per-session offset.
    Cycle {
        /// Opcode of every request.
        op: i32,
        /// The bodies.
        bodies: Rc<Vec<Vec<u8>>>,
        /// Next index.
        next: usize,
    },
    /// Reads with probability `read_ratio`, otherwise writes; each picks a random key.
    Mixed {
        /// Read opcode and bodies.
        read: (i32, Rc<Vec<Vec<u8>>>),
        /// Write opcode and bodies.
        write: (i32, Rc<Vec<Vec<u8>>>),
        /// Fraction of reads scaled to 2^32.
        read_threshold: u64,
        /// Per-session randomness.
        rng: Rng,
    },
    /// Each op is two requests sent together: `lead` (a sync), then the next of `bodies`;
    /// the op is answered by the second (`Gen::leads`).
    Paired {
        /// The leading request's opcode and body.
        lead: (i32, Rc<Vec<u8>>),
        /// Opcode of the second request.
        op: i32,
        /// Its bodies, cycled through.
        bodies: Rc<Vec<Vec<u8>>>,
        /// Next index.
        next: usize,
        /// The same bodies wrapped for `op::LINEARIZABLE` (the read's opcode, then its body):
        /// sent alone, without the lead, to a server that announced linearizable reads.
        wrapped: Option<Rc<Vec<Vec<u8>>>>,
    },
    /// Numbered creates from a counter shared by all sessions, up to `limit`.
    Counted {
        /// The create template.
        tpl: Rc<Patched>,
        /// Next number to create (shared).
        counter: Rc<Cell<u64>>,
        /// Numbers below this are created.
        limit: u64,
        /// Split the number into (number / per_parent, number % per_parent) for two slots.
        per_parent: Option<u64>,
    },
}

impl Gen {
    /// Whether each op sends a leading request ahead of the one that answers it: its reply
    /// is not the op's.
    pub fn leads(&self) -> bool {
        matches!(self, Gen::Paired { .. })
    }

    /// Appends the next request (two for `Paired`; the xid returned is the last one's);
    /// `None` when the generator has nothing more to send.
    #[inline]
    pub fn push_next(&mut self, conn: &mut Conn) -> Option<i32> {
        match self {
            Gen::Cycle { op, bodies, next } => {
                let b = &bodies[*next % bodies.len()];
                *next = next.wrapping_add(1);
                Some(conn.push(*op, b))
            }
            Gen::Paired {
                lead,
                op,
                bodies,
                next,
                wrapped,
            } => {
                let i = *next % bodies.len();
                *next = next.wrapping_add(1);
                if let Some(w) = wrapped
                    .as_ref()
                    .filter(|_| conn.server_protocol >= paddock_proto::protocol::LINEARIZABLE_READS)
                {
                    return Some(conn.push(paddock_proto::op::LINEARIZABLE, &w[i]));
                }
                conn.push(lead.0, &lead.1);
                Some(conn.push(*op, &bodies[i]))
            }
            Gen::Mixed {
                read,
                write,
                read_threshold,
                rng,
            } => {
                let r = rng.next_u64();
                let (op, bodies) = if (r & 0xFFFF_FFFF) < *read_threshold {
                    &*read
                } else {
                    &*write
                };
                let i = (((r >> 32) * bodies.len() as u64) >> 32) as usize;
                Some(conn.push(*op, &bodies[i]))
            }
            Gen::Counted {
                tpl,
                counter,
                limit,
                per_parent,
            } => {
                let n = counter.get();
                if n >= *limit {
                    return None;
                }
                counter.set(n + 1);
                Some(match per_parent {
                    Some(p) => tpl.push(conn, &[n / *p, n % *p]),
                    None => tpl.push(conn, &[n]),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits() {
        let mut b = *b"xxxxxx";
        write_digits(&mut b, 42);
        assert_eq!(&b, b"000042");
        write_digits(&mut b[..3], 1234);
        assert_eq!(&b, b"234042");
    }

    #[test]
    fn patched_template_matches_proto_encoding() {
        let t = Patched::create(1, "/a/p######/c######", b"vv", 0);
        assert_eq!(t.slots, vec![(4 + 4, 6), (4 + 12, 6)]);
        let mut body = t.template.clone();
        write_digits(&mut body[t.slots[0].0..t.slots[0].0 + 6], 7);
        write_digits(&mut body[t.slots[1].0..t.slots[1].0 + 6], 123);
        assert_eq!(body, create_body("/a/p000007/c000123", b"vv", 0));
    }

    #[test]
    fn rng_below_in_range() {
        let mut r = Rng::new(7);
        for _ in 0..10_000 {
            assert!(r.below(10) < 10);
        }
    }
}
