//! Normalisation: what may legitimately differ between two servers (zxid values, times, session
//! ids, child order) is rewritten into a server-independent form, so replies compare as strings.

use paddock_proto::{
    decode_multi_response, Acl, Create2Response, CreateResponse, ErrorResponse, GetAclResponse,
    GetAllChildrenNumberResponse, GetChildren2Response, GetChildrenResponse, GetDataResponse,
    GetEphemeralsResponse, OpResult, PathRequest, Reader, Record, ReplyHeader, Stat, StatResponse,
    WatcherEvent, WhoAmIResponse,
};
use std::collections::{BTreeMap, HashMap};

/// What a server puts in the zxid of a watch notification's header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NotifZxid {
    /// ZooKeeper 3.8: -1, always.
    #[default]
    Minus1,
    /// Paddock, as ZooKeeper 3.9 (ZOOKEEPER-4655): the zxid of the transaction that fired the
    /// event, and -1 for the events a setWatches raises for changes made while away.
    FiringTxn,
}

/// One server's mappings for the current sequence.
#[derive(Default)]
pub struct Norm {
    /// How this server stamps notifications.
    notif: NotifZxid,
    /// Highest zxid seen so far, and its value when the current step began: a transaction
    /// that fires a watch during a step is newer than everything seen before it.
    max_zxid: i64,
    step_floor: i64,
    /// The current step restores watches (setWatches, directly or on reattaching).
    restoring: bool,
    /// zxid -> order of first appearance.
    zxids: HashMap<i64, usize>,
    by_order: Vec<i64>,
    /// zxid -> the time its transaction carried (ctime of czxid, mtime of mzxid).
    times: BTreeMap<i64, i64>,
    /// Session ids in the order the sequence opened them.
    sessions: Vec<i64>,
}

impl Norm {
    pub fn new(notif: NotifZxid) -> Norm {
        Norm {
            notif,
            ..Norm::default()
        }
    }

    /// `Z<n>` for the n-th distinct zxid seen; 0 and -1 are kept as they are.
    pub fn zxid(&mut self, z: i64) -> String {
        if z <= 0 {
            return z.to_string();
        }
        self.max_zxid = self.max_zxid.max(z);
        let next = self.by_order.len();
        let n = *self.zxids.entry(z).or_insert(next);
        if n == next {
            self.by_order.push(z);
        }
        format!("Z{n}")
    }

    /// The raw zxid that appeared n-th (to send a side-specific relative zxid).
    pub fn nth_zxid(&self, n: usize) -> Option<i64> {
        self.by_order.get(n).copied()
    }

    pub fn zxids_seen(&self) -> usize {
        self.by_order.len()
    }

    pub fn add_session(&mut self, id: i64) {
        if id != 0 && !self.sessions.contains(&id) {
            self.sessions.push(id);
        }
    }

    /// `S<n>` for the n-th session opened in this sequence.
    pub fn session(&self, id: i64) -> String {
        if id == 0 {
            return "0".into();
        }
        match self.sessions.iter().position(|s| *s == id) {
            Some(n) => format!("S{n}"),
            None => format!("S?{id:#x}"),
        }
    }

    /// A time, named after the transaction that set it: servers' clocks differ, but every
    /// time must be the one of its zxid's transaction and grow with zxids.
    fn time(&mut self, zxid: i64, t: i64) -> String {
        if zxid <= 0 {
            return format!("t{t}@{zxid}");
        }
        let name = self.zxid(zxid);
        if let Some(&known) = self.times.get(&zxid) {
            return if known == t {
                format!("t@{name}")
            } else {
                format!("t@{name}!differs-by-{}ms", t - known)
            };
        }
        let before = self.times.range(..zxid).next_back().map(|(_, v)| *v);
        let after = self.times.range(zxid + 1..).next().map(|(_, v)| *v);
        self.times.insert(zxid, t);
        if before.is_some_and(|b| b > t) || after.is_some_and(|a| a < t) {
            format!("t@{name}!out-of-order")
        } else {
            format!("t@{name}")
        }
    }

    pub fn stat(&mut self, s: &Stat) -> String {
        let (cz, mz, pz) = (self.zxid(s.czxid), self.zxid(s.mzxid), self.zxid(s.pzxid));
        let (ct, mt) = (self.time(s.czxid, s.ctime), self.time(s.mzxid, s.mtime));
        format!(
            "{{cz={cz} mz={mz} pz={pz} ct={ct} mt={mt} v={} cv={} av={} owner={} len={} kids={}}}",
            s.version,
            s.cversion,
            s.aversion,
            self.session(s.ephemeral_owner),
            s.data_length,
            s.num_children
        )
    }

    /// Starts a step; `restoring` says whether it sends setWatches.
    pub fn begin_step(&mut self, restoring: bool) {
        self.step_floor = self.max_zxid;
        self.restoring = restoring;
    }

    /// A notification. Its zxid is checked against what this server is meant to send and
    /// written `z=ok` when it is right, so that 3.8's -1 and Paddock's firing zxid compare
    /// equal and any other value shows as a difference. A firing zxid is not named: its
    /// transaction may never appear in a reply on the other side (a session expiry's).
    pub fn event(&mut self, zxid: i64, e: &WatcherEvent) -> String {
        let z = match self.notif {
            NotifZxid::Minus1 if zxid == -1 => "ok".to_string(),
            NotifZxid::FiringTxn if zxid > self.step_floor => "ok".to_string(),
            NotifZxid::FiringTxn if zxid == -1 && self.restoring => "ok".to_string(),
            NotifZxid::FiringTxn if zxid == -1 => "-1 (not the firing zxid)".to_string(),
            _ => format!("{} (not expected)", self.zxid(zxid)),
        };
        format!(
            "{} {} state={} z={z}",
            event_name(e.event_type),
            e.path,
            e.state,
        )
    }

    /// A reply: header, then the body decoded as `shape`.
    pub fn reply(&mut self, shape: Shape, h: &ReplyHeader, body: &[u8]) -> String {
        let head = format!("err={} zxid={}", err_name(h.err), self.zxid(h.zxid));
        if h.err != 0 || shape == Shape::Empty {
            return if body.is_empty() {
                head
            } else {
                format!("{head} +unexpected body {}", hex(body))
            };
        }
        let mut r = Reader::new(body);
        let text = match self.body(shape, &mut r) {
            Ok(t) => t,
            Err(e) => return format!("{head} undecodable body ({e}): {}", hex(body)),
        };
        match r.remaining() {
            0 => format!("{head} {text}"),
            n => format!("{head} {text} +{n} trailing bytes"),
        }
    }

    fn body(&mut self, shape: Shape, r: &mut Reader<'_>) -> Result<String, String> {
        let e = |e: paddock_proto::DecodeError| e.to_string();
        Ok(match shape {
            Shape::Empty => String::new(),
            Shape::Path => CreateResponse::decode(r).map_err(e)?.path,
            Shape::PathStat => {
                let c = Create2Response::decode(r).map_err(e)?;
                format!("{} {}", c.path, self.stat(&c.stat))
            }
            Shape::Stat => {
                let s = StatResponse::decode(r).map_err(e)?;
                self.stat(&s.stat)
            }
            Shape::Data => {
                let d = GetDataResponse::decode(r).map_err(e)?;
                format!("{} {}", data(&d.data), self.stat(&d.stat))
            }
            Shape::Acl => {
                let a = GetAclResponse::decode(r).map_err(e)?;
                format!("{} {}", acl(&a.acl), self.stat(&a.stat))
            }
            Shape::Children => children(GetChildrenResponse::decode(r).map_err(e)?.children),
            Shape::Children2 => {
                let c = GetChildren2Response::decode(r).map_err(e)?;
                format!("{} {}", children(c.children), self.stat(&c.stat))
            }
            Shape::Sync => PathRequest::decode(r).map_err(e)?.path,
            Shape::Ephemerals => children(GetEphemeralsResponse::decode(r).map_err(e)?.ephemerals),
            Shape::Count => GetAllChildrenNumberResponse::decode(r)
                .map_err(e)?
                .total_number
                .to_string(),
            Shape::WhoAmI => {
                let w = WhoAmIResponse::decode(r).map_err(e)?;
                // A set: ZooKeeper keeps a connection's identities in a hash set.
                let mut ids: Vec<String> = w
                    .client_info
                    .iter()
                    .map(|c| format!("{}:{}", c.auth_scheme, c.user))
                    .collect();
                ids.sort();
                format!("[{}]", ids.join(", "))
            }
            Shape::ErrorBody => format!("body-err={}", ErrorResponse::decode(r).map_err(e)?.err),
            Shape::Multi => {
                let results = decode_multi_response(r).map_err(e)?;
                let parts: Vec<String> = results.iter().map(|o| self.op_result(o)).collect();
                format!("[{}]", parts.join("; "))
            }
            Shape::Raw => {
                let rest = r.rest();
                let text = hex(rest);
                // Consume it, so it is not reported as trailing.
                while r.remaining() > 0 {
                    r.read_u8().map_err(e)?;
                }
                format!("raw {text}")
            }
        })
    }

    fn op_result(&mut self, o: &OpResult) -> String {
        match o {
            OpResult::Create(p) => format!("create {p}"),
            OpResult::Create2(p, s) => format!("create2 {p} {}", self.stat(s)),
            OpResult::Delete => "delete".into(),
            OpResult::SetData(s) => format!("setData {}", self.stat(s)),
            OpResult::Check => "check".into(),
            OpResult::GetChildren(c) => format!("children {}", children(c.clone())),
            OpResult::GetData(d, s) => format!("data {} {}", data(d), self.stat(s)),
            OpResult::Error(code) => format!("error {}", err_name(*code)),
        }
    }
}

/// How to decode a successful reply's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Empty,
    Path,
    PathStat,
    Stat,
    Data,
    Acl,
    Children,
    Children2,
    Sync,
    Ephemerals,
    Count,
    WhoAmI,
    ErrorBody,
    Multi,
    Raw,
}

/// Children are a set: servers may list them in any order.
fn children(mut c: Vec<String>) -> String {
    c.sort();
    format!("[{}]", c.join(","))
}

fn data(d: &Option<Vec<u8>>) -> String {
    match d {
        None => "null".into(),
        Some(b) if b.len() <= 24 => format!("{:?}", String::from_utf8_lossy(b)),
        Some(b) => {
            // FNV-1a: long values compare by length and hash.
            let h = b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| {
                (h ^ *x as u64).wrapping_mul(0x100_0000_01b3)
            });
            format!("<{} bytes {h:016x}>", b.len())
        }
    }
}

pub fn acl(list: &[Acl]) -> String {
    let parts: Vec<String> = list
        .iter()
        .map(|a| format!("{}:{}:{}", a.perms, a.id.scheme, a.id.id))
        .collect();
    format!("[{}]", parts.join(","))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn err_name(code: i32) -> String {
    let name = match code {
        0 => return "0".into(),
        -1 => "SYSTEMERROR",
        -2 => "RUNTIMEINCONSISTENCY",
        -4 => "CONNECTIONLOSS",
        -5 => "MARSHALLINGERROR",
        -6 => "UNIMPLEMENTED",
        -7 => "OPERATIONTIMEOUT",
        -8 => "BADARGUMENTS",
        -12 => "UNKNOWNSESSION",
        -13 => "NEWCONFIGNOQUORUM",
        -14 => "RECONFIGINPROGRESS",
        -101 => "NONODE",
        -102 => "NOAUTH",
        -103 => "BADVERSION",
        -108 => "NOCHILDRENFOREPHEMERALS",
        -110 => "NODEEXISTS",
        -111 => "NOTEMPTY",
        -112 => "SESSIONEXPIRED",
        -114 => "INVALIDACL",
        -115 => "AUTHFAILED",
        -118 => "SESSIONMOVED",
        -119 => "NOTREADONLY",
        -121 => "NOWATCHER",
        -123 => "RECONFIGDISABLED",
        -125 => "QUOTAEXCEEDED",
        _ => return code.to_string(),
    };
    format!("{name}({code})")
}

fn event_name(t: i32) -> String {
    match t {
        -1 => "None".into(),
        1 => "NodeCreated".into(),
        2 => "NodeDeleted".into(),
        3 => "NodeDataChanged".into(),
        4 => "NodeChildrenChanged".into(),
        t => format!("Event{t}"),
    }
}
