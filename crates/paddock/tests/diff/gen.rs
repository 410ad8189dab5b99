//! The generator: a seeded stream of operations over a small pool of paths under the
//! sequence's own root, so that creates, deletes, watches and ACLs keep running into each other.

use super::ops::{Op, RelZxid, SlotState};
use super::rng::Rng;
use super::side::{SlotView, SLOTS};
use paddock_proto::{
    Acl, AddWatchRequest, AuthPacket, CheckVersionRequest, Create, CreateKind, DeleteRequest,
    MultiOp, PathRequest, PathWatchRequest, ReadOp, ReconfigRequest, Record, Request, SaslToken,
    SetAclRequest, SetDataRequest, SetWatches2, WatchesRequest,
};
use std::collections::VecDeque;

/// Percentage of sequences that let their short-timeout session expire (each costs ~1 s).
const EXPIRE_PERCENT: usize = 15;
/// Timeout asked for by the session that may expire: 6 ticks, short enough to wait for and
/// long enough not to expire by accident when the machine is busy.
const SHORT_TIMEOUT: i32 = 1200;
/// Timeouts asked for by the others; both servers clamp them to 20 ticks.
const TIMEOUTS: [i32; 3] = [4000, 10_000, 60_000];

/// Names under the root that operations keep hitting.
const POOL: [&str; 10] = [
    "/a", "/b", "/c", "/a/x", "/a/y", "/b/x", "/a/x/z", "/e", "/a/e", "/c/e",
];

/// Digest identities: `user:base64(sha1("user:password"))` for u1:p1 and u2:p2.
const U1: &str = "u1:fpT/y03U+EjItKZOSLGvjnJlyng=";
const U2: &str = "u2:o9NxcCGDPOlcV7JVhmKHOf5ctVE=";

pub struct Gen {
    rng: Rng,
    seed: u64,
    root: String,
    steps: usize,
    done: usize,
    prologue: VecDeque<Op>,
    epilogue_ops: usize,
    /// Paths the reference server created (sequential names cannot be guessed).
    learned: Vec<String>,
    /// The slot whose session may be left to expire, while that is still to come.
    short: Option<usize>,
    /// Steps each slot has spent disconnected.
    idle: [usize; SLOTS],
    /// Kinds of operation not to generate (DIFF_AVOID), to look past a known difference.
    avoid: Vec<String>,
}

impl Gen {
    pub fn new(seed: u64, steps: usize, avoid: &[String]) -> Gen {
        let mut rng = Rng::new(seed);
        let root = format!("/s{seed}");
        let short = rng.chance(EXPIRE_PERCENT).then_some(2);
        let timeout2 = if short.is_some() {
            SHORT_TIMEOUT
        } else {
            *rng.pick(&TIMEOUTS)
        };
        let prologue = VecDeque::from([
            Op::Open {
                slot: 0,
                timeout: 4000,
            },
            Op::Req {
                slot: 0,
                req: Request::Create(Create {
                    kind: CreateKind::Create,
                    path: root.clone(),
                    data: Some(b"root".to_vec()),
                    acl: Acl::open_unsafe(),
                    flags: 0,
                    ttl: -1,
                }),
            },
            Op::Open {
                slot: 1,
                timeout: *rng.pick(&TIMEOUTS),
            },
            Op::Open {
                slot: 2,
                timeout: timeout2,
            },
        ]);
        Gen {
            rng,
            seed,
            root,
            steps,
            done: 0,
            prologue,
            epilogue_ops: 0,
            learned: vec![],
            short,
            idle: [0; SLOTS],
            avoid: avoid.to_vec(),
        }
    }

    /// Whether a kind of operation may be generated (see DIFF_AVOID in differential.rs).
    fn allows(&self, kind: &str) -> bool {
        !self.avoid.iter().any(|a| a == kind)
    }

    /// The next operation, given the reference side's slots; `None` once the sequence is over.
    pub fn next(&mut self, view: &[SlotView], zxids_seen: usize) -> Option<Op> {
        for (i, v) in view.iter().enumerate() {
            self.idle[i] = if v.state == SlotState::Disconnected {
                self.idle[i] + 1
            } else {
                0
            };
        }
        if let Some(op) = self.prologue.pop_front() {
            return Some(op);
        }
        if self.done < self.steps {
            self.done += 1;
            return Some(self.random_op(view, zxids_seen));
        }
        self.epilogue(view)
    }

    /// Paths the reference server created, to aim later operations at.
    pub fn learn(&mut self, paths: Vec<String>) {
        for p in paths {
            if p.starts_with(&self.root) && !self.learned.contains(&p) && self.learned.len() < 40 {
                self.learned.push(p);
            }
        }
    }

    /// Ends a sequence by closing every session, so none expires during a later one.
    fn epilogue(&mut self, view: &[SlotView]) -> Option<Op> {
        if self.epilogue_ops >= 3 * SLOTS {
            return None;
        }
        self.epilogue_ops += 1;
        if let Some(i) = view.iter().position(|v| v.state == SlotState::Live) {
            return Some(Op::Close { slot: i });
        }
        let i = view
            .iter()
            .position(|v| v.state == SlotState::Disconnected)?;
        Some(Op::Reattach {
            slot: i,
            good_password: true,
            restore: false,
            v2: false,
        })
    }

    fn random_op(&mut self, view: &[SlotView], zxids_seen: usize) -> Op {
        // A disconnected session must come back well before its timeout.
        for (i, v) in view.iter().enumerate() {
            let limit = if self.short == Some(i) { 1 } else { 3 };
            if v.state == SlotState::Disconnected && self.idle[i] >= limit {
                return Op::Reattach {
                    slot: i,
                    // The short session has no time for a second try.
                    good_password: self.short == Some(i) || self.rng.chance(85),
                    restore: self.rng.chance(75),
                    v2: self.rng.chance(30),
                };
            }
        }
        let live: Vec<usize> = (0..SLOTS)
            .filter(|i| view[*i].state == SlotState::Live)
            .collect();
        if let Some(i) = self.short {
            let calm = view.iter().all(|v| v.state != SlotState::Disconnected);
            if calm && live.contains(&i) && self.rng.chance(5) {
                self.short = None;
                return Op::Expire { slot: i };
            }
        }
        if live.is_empty() {
            return self.session_op(view);
        }
        let slot = *self.rng.pick(&live);
        match self.rng.weighted(&[40, 38, 10, 4, 6, 2]) {
            0 => Op::Req {
                slot,
                req: self.read(&view[slot]),
            },
            1 => Op::Req {
                slot,
                req: self.write(),
            },
            2 => self.watch_op(slot, &view[slot], zxids_seen),
            3 => Op::Req {
                slot,
                req: Request::Auth(self.auth()),
            },
            4 => self.session_op(view),
            _ if self.allows("raw") => self.odd(slot),
            _ => Op::Req {
                slot,
                req: Request::WhoAmI,
            },
        }
    }

    fn session_op(&mut self, view: &[SlotView]) -> Op {
        let disconnected = view.iter().any(|v| v.state == SlotState::Disconnected);
        let mut choices: Vec<(usize, Op)> = Vec::new();
        for (slot, v) in view.iter().enumerate() {
            match v.state {
                SlotState::Empty | SlotState::Dead => {
                    let timeout = if self.short == Some(slot) {
                        SHORT_TIMEOUT
                    } else {
                        *self.rng.pick(&TIMEOUTS)
                    };
                    choices.push((3, Op::Open { slot, timeout }));
                    if v.state == SlotState::Dead {
                        choices.push((1, self.reattach(slot)));
                    }
                }
                SlotState::Disconnected => choices.push((3, self.reattach(slot))),
                SlotState::Live => {
                    choices.push((2, Op::Close { slot }));
                    if self.short != Some(slot) {
                        choices.push((2, Op::Drop { slot }));
                        let restore = self.rng.chance(70);
                        choices.push((1, Op::Steal { slot, restore }));
                    } else if !disconnected {
                        // Expiry waits ~1 s; other disconnected sessions must not expire meanwhile.
                        choices.push((4, Op::Expire { slot }));
                    }
                }
            }
        }
        let weights: Vec<usize> = choices.iter().map(|c| c.0).collect();
        let i = self.rng.weighted(&weights);
        let op = choices.swap_remove(i).1;
        if let Op::Expire { .. } | Op::Close { .. } = op {
            // The short slot is spent either way; reopened sessions get normal timeouts.
            if self.short == op_slot(&op) {
                self.short = None;
            }
        }
        op
    }

    fn reattach(&mut self, slot: usize) -> Op {
        Op::Reattach {
            slot,
            good_password: self.rng.chance(80),
            restore: self.rng.chance(75),
            v2: self.rng.chance(30),
        }
    }

    fn read(&mut self, view: &SlotView) -> Request {
        let pw = |r: &mut Gen| {
            let path = r.path();
            let watch = r.rng.chance(50)
                && (r.allows("mixed-watch-modes") || !view.persistent.contains(&path));
            PathWatchRequest { path, watch }
        };
        match self.rng.weighted(&[8, 8, 5, 4, 4, 2, 2, 3, 1, 2]) {
            0 => Request::Exists(pw(self)),
            1 => Request::GetData(pw(self)),
            2 => Request::GetChildren(pw(self)),
            3 => Request::GetChildren2(pw(self)),
            4 if self.allows("getacl") => Request::GetAcl(PathRequest { path: self.path() }),
            4 => Request::Sync(PathRequest { path: self.path() }),
            5 => Request::GetAllChildrenNumber(PathRequest { path: self.path() }),
            6 => {
                let r = &self.root;
                let prefixes = [
                    r.clone(),
                    format!("{r}/a"),
                    format!("{r}/e"),
                    format!("{r}/"),
                    "/".into(),
                    "".into(),
                    "/s".into(),
                    "/nope".into(),
                ];
                let path = self.rng.pick(&prefixes).clone();
                Request::GetEphemerals(PathRequest { path })
            }
            7 => {
                let n = 1 + self.rng.below(4);
                let ops = (0..n)
                    .map(|_| {
                        if self.rng.chance(50) {
                            ReadOp::GetData(self.path())
                        } else {
                            ReadOp::GetChildren(self.path())
                        }
                    })
                    .collect();
                Request::MultiRead(ops)
            }
            8 => Request::Sync(PathRequest { path: self.path() }),
            _ => Request::WhoAmI,
        }
    }

    fn write(&mut self) -> Request {
        match self.rng.weighted(&[18, 6, 7, 5, 8]) {
            0 => Request::Create(self.create(false)),
            1 => Request::Delete(DeleteRequest {
                path: self.path(),
                version: self.version(),
            }),
            2 => Request::SetData(SetDataRequest {
                path: self.path(),
                data: self.data(),
                version: self.version(),
            }),
            3 => Request::SetAcl(SetAclRequest {
                path: self.local_path(),
                acl: self.acl(),
                version: self.version(),
            }),
            _ => Request::Multi(self.multi()),
        }
    }

    fn multi(&mut self) -> Vec<MultiOp> {
        let n = if self.rng.chance(4) {
            0
        } else {
            1 + self.rng.below(5)
        };
        (0..n)
            .map(|_| match self.rng.weighted(&[4, 2, 2, 3]) {
                0 => MultiOp::Create(self.create(true)),
                1 => MultiOp::Delete(DeleteRequest {
                    path: self.path(),
                    version: self.version(),
                }),
                2 => MultiOp::SetData(SetDataRequest {
                    path: self.path(),
                    data: self.data(),
                    version: self.version(),
                }),
                _ => MultiOp::Check(CheckVersionRequest {
                    path: self.path(),
                    version: self.version(),
                }),
            })
            .collect()
    }

    /// A create of any kind and mode, valid or not. In a multi a bad mode fails the whole
    /// request, so it is rarer there.
    fn create(&mut self, in_multi: bool) -> Create {
        let mut kind = [
            CreateKind::Create,
            CreateKind::Create2,
            CreateKind::Container,
            CreateKind::Ttl,
        ][self.rng.weighted(&[35, 30, 15, 20])];
        let bad = if in_multi { 1 } else { 3 };
        let mut flags = match kind {
            CreateKind::Container => [4, 0, 1, 2][self.rng.weighted(&[85, 5, 5, 5])],
            CreateKind::Ttl => [5, 6, 0, 1, 4][self.rng.weighted(&[45, 40, 5, 5, 5])],
            _ => [0, 1, 2, 3, 4, 5, 6, 7, -1]
                [self.rng.weighted(&[30, 20, 15, 15, 5, 3, 3, bad, bad])],
        };
        if !self.allows("create-kinds") {
            // Only creates whose opcode agrees with their mode; in a multi only valid modes
            // and only opcode 1 for plain modes (ZooKeeper 3.8 ignores a sub-op's opcode).
            if in_multi {
                flags = flags.clamp(0, 6);
            }
            kind = match flags {
                4 => CreateKind::Container,
                5 | 6 => CreateKind::Ttl,
                _ if in_multi => CreateKind::Create,
                _ if matches!(kind, CreateKind::Create2) => kind,
                _ => CreateKind::Create,
            };
        }
        let ttl = if kind == CreateKind::Ttl {
            *self.rng.pick(&[
                3_600_000,
                3_600_000,
                3_600_000,
                1,
                0,
                -1,
                1_099_511_627_775,
                1_099_511_627_776,
            ])
        } else {
            -1
        };
        // ZooKeeper 3.8 accepts createTTL with a plain mode and a negative TTL, then dies
        // applying it ("Severe unrecoverable error"): never send that.
        let ttl = if kind == CreateKind::Ttl && !in_multi && !matches!(flags, 5 | 6) {
            ttl.max(0)
        } else {
            ttl
        };
        let base = self.path();
        // Sequential names: as a child (`/a/` + suffix) or a sibling (`/a-` + suffix). Only
        // below the root: a sibling of the root would take its number from `/`, which every
        // sequence shares, so one sequence's difference would spill into later ones.
        let below_root = base.starts_with(&format!("{}/", self.root));
        let path = match (matches!(flags, 2 | 3 | 6), self.rng.below(2)) {
            (true, 1) if below_root => format!("{base}-"),
            (true, _) => format!("{base}/"),
            (false, _) => base,
        };
        Create {
            kind,
            path,
            data: self.data(),
            acl: self.acl(),
            flags,
            ttl,
        }
    }

    fn watch_op(&mut self, slot: usize, view: &SlotView, zxids_seen: usize) -> Op {
        let path = |g: &mut Gen| {
            if !view.watched.is_empty() && g.rng.chance(60) {
                g.rng.pick(&view.watched).clone()
            } else {
                g.path()
            }
        };
        let mut kind = self.rng.weighted(&[3, 2, 2, 2]);
        if matches!(kind, 1 | 2) && !self.allows("watch-removal") {
            kind = 0;
        }
        let req = match kind {
            0 => {
                let path = self.path();
                let mode = self.add_watch_mode();
                if !self.allows("mixed-watch-modes") && view.watched.contains(&path) {
                    return Op::Req {
                        slot,
                        req: Request::WhoAmI,
                    };
                }
                Request::AddWatch(AddWatchRequest { path, mode })
            }
            1 => Request::CheckWatches(WatchesRequest {
                path: path(self),
                watcher_type: self.watcher_type(),
            }),
            2 => Request::RemoveWatches(WatchesRequest {
                path: path(self),
                watcher_type: self.watcher_type(),
            }),
            _ => return self.set_watches(slot, zxids_seen),
        };
        Op::Req { slot, req }
    }

    fn add_watch_mode(&mut self) -> i32 {
        let mode = [0, 1, 2, -1][self.rng.weighted(&[45, 45, 5, 5])];
        if self.allows("bad-modes") {
            mode
        } else {
            mode & 1
        }
    }

    fn watcher_type(&mut self) -> i32 {
        let t = [1, 2, 3, 4, 5, 0, 6][self.rng.weighted(&[3, 3, 3, 2, 2, 1, 1])];
        if self.allows("bad-modes") {
            t
        } else {
            t.clamp(1, 5)
        }
    }

    /// setWatches with arbitrary lists, as if from a client that reconnected after missing
    /// some changes.
    fn set_watches(&mut self, slot: usize, zxids_seen: usize) -> Op {
        let list = |g: &mut Gen, max: usize| (0..g.rng.below(max + 1)).map(|_| g.path()).collect();
        let mut watches = SetWatches2 {
            relative_zxid: 0,
            data_watches: list(self, 2),
            exist_watches: list(self, 2),
            child_watches: list(self, 2),
            persistent_watches: list(self, 1),
            persistent_recursive_watches: list(self, 1),
        };
        if !self.allows("mixed-watch-modes") {
            watches.persistent_watches.clear();
            watches.persistent_recursive_watches.clear();
        }
        let persistent = !watches.persistent_watches.is_empty()
            || !watches.persistent_recursive_watches.is_empty();
        let rel = match self.rng.weighted(&[50, 25, 25]) {
            0 => RelZxid::LastSeen,
            1 => RelZxid::Zero,
            _ => RelZxid::Nth(self.rng.below(zxids_seen.max(1))),
        };
        Op::SetWatches {
            slot,
            rel,
            watches,
            v2: persistent || self.rng.chance(30),
        }
    }

    /// An auth packet: mostly good digests (and ip, which every connection has anyway),
    /// sometimes a wrong password, odd credentials or a scheme without a provider.
    fn auth(&mut self) -> AuthPacket {
        const GOOD: [(&str, &[u8]); 3] = [("digest", b"u1:p1"), ("digest", b"u2:p2"), ("ip", b"")];
        const ODD: [(&str, &[u8]); 8] = [
            ("digest", b"u1:wrong"),
            ("digest", b"nocolon"),
            ("digest", b""),
            ("ip", b"10.1.2.3"),
            ("foo", b"bar"),
            ("super", b"x"),
            ("world", b"anyone"),
            ("sasl", b"u1"),
        ];
        let (scheme, auth) = if self.rng.chance(75) || !self.allows("odd-auth") {
            GOOD[self.rng.weighted(&[45, 40, 15])]
        } else {
            *self.rng.pick(&ODD)
        };
        AuthPacket {
            auth_type: 0,
            scheme: scheme.into(),
            auth: Some(auth.to_vec()),
        }
    }

    /// Requests clients rarely send: internal or unknown opcodes, check outside a multi,
    /// reconfig on a standalone server, SASL without SASL, truncated bodies.
    fn odd(&mut self, slot: usize) -> Op {
        let path = self.path();
        // A top-level check that succeeds gets no reply from ZooKeeper 3.8 and leaves a
        // transaction its log cannot replay: use a version no node has.
        let version = 1_000_000;
        let encoded = |r: &dyn Fn(&mut Vec<u8>)| {
            let mut v = Vec::new();
            r(&mut v);
            v
        };
        let (opcode, body) = match self.rng.below(9) {
            0 => (
                13,
                encoded(&|v| {
                    CheckVersionRequest {
                        path: path.clone(),
                        version,
                    }
                    .encode(v)
                }),
            ),
            // deleteContainer's body is the bare UTF-8 path, without a length.
            1 => (20, path.clone().into_bytes()),
            2 => (
                102,
                encoded(&|v| {
                    SaslToken {
                        token: Some(b"x".to_vec()),
                    }
                    .encode(v)
                }),
            ),
            3 => (10, vec![]),
            4 => (999, vec![]),
            5 => (4, vec![0, 0, 0]),
            6 => (5, vec![0, 0]),
            7 => (
                1,
                encoded(&|v| PathRequest { path: path.clone() }.encode(v)),
            ),
            _ => {
                return Op::Req {
                    slot,
                    req: Request::Reconfig(ReconfigRequest {
                        joining_servers: String::new(),
                        leaving_servers: String::new(),
                        new_members: String::new(),
                        cur_config_id: -1,
                    }),
                }
            }
        };
        Op::Raw { slot, opcode, body }
    }

    /// A path: mostly the pool under the root, sometimes a learned sequential name, a missing
    /// parent, the root itself, or something invalid or global.
    fn path(&mut self) -> String {
        let r = self.root.clone();
        match self.rng.weighted(&[65, 12, 5, 10, 8]) {
            0 => format!("{r}{}", self.rng.pick(&POOL)),
            1 if !self.learned.is_empty() => self.rng.pick(&self.learned).clone(),
            1 | 2 => format!("{r}/nope/x"),
            3 if self.allows("odd-paths") => self.odd_path(),
            3 => format!("{r}{}", self.rng.pick(&POOL)),
            _ => r,
        }
    }

    /// A path for setACL: never a global node, whose ACL would leak into later sequences.
    fn local_path(&mut self) -> String {
        loop {
            let p = self.path();
            if p.starts_with(&self.root) || !p.starts_with('/') || p.contains('\0') {
                return p;
            }
        }
    }

    fn odd_path(&mut self) -> String {
        let r = &self.root;
        let paths = [
            "/".to_string(),
            "/zookeeper".into(),
            "/zookeeper/quota".into(),
            "/zookeeper/config".into(),
            format!("/zookeeper/s{}", self.seed),
            "".into(),
            "a".into(),
            format!("{r}/"),
            format!("{r}//a"),
            format!("{r}/a/"),
            format!("{r}/./a"),
            format!("{r}/../a"),
            format!("{r}/a/.."),
            format!("{r}/a\0b"),
            format!("{r}/\u{1}"),
            format!("{r}/\u{f000}"),
            format!("{r}/a b"),
            format!("{r}/ü"),
        ];
        self.rng.pick(&paths).clone()
    }

    fn data(&mut self) -> Option<Vec<u8>> {
        match self.rng.weighted(&[8, 8, 80, 4]) {
            0 => None,
            1 => Some(vec![]),
            2 => {
                let n = 1 + self.rng.below(8);
                Some(self.rng.text(n))
            }
            _ => Some(self.rng.text(2000)),
        }
    }

    fn version(&mut self) -> i32 {
        *self.rng.pick(&[-1, -1, -1, 0, 0, 1, 2, 5, -2])
    }

    fn acl(&mut self) -> Vec<Acl> {
        let mut acl = self.any_acl();
        if !self.allows("unreadable") {
            acl.push(Acl::new(1, "world", "anyone"));
        }
        acl
    }

    fn any_acl(&mut self) -> Vec<Acl> {
        match self.rng.weighted(&[50, 10, 5, 3, 32]) {
            0 => Acl::open_unsafe(),
            1 => Acl::read_unsafe(),
            2 => vec![Acl::new(31, "auth", "")],
            3 => vec![],
            _ => {
                let n = 1 + self.rng.below(3);
                (0..n).map(|_| self.acl_entry()).collect()
            }
        }
    }

    fn acl_entry(&mut self) -> Acl {
        let perms = if self.rng.chance(60) {
            31
        } else {
            self.rng.below(32) as i32
        };
        let ids: [(&str, &str); 23] = [
            ("world", "anyone"),
            ("digest", U1),
            ("digest", U2),
            ("auth", ""),
            ("ip", "127.0.0.1"),
            ("ip", "127.0.0.0/8"),
            ("world", "nobody"),
            ("auth", "x"),
            ("digest", "u1:bogus"),
            ("digest", "nocolon"),
            ("digest", "a:b:c"),
            ("digest", ":b"),
            ("digest", "a:"),
            ("ip", "10.0.0.1"),
            ("ip", "10.0.0.0/33"),
            ("ip", "300.1.1.1"),
            ("ip", "::1"),
            ("ip", "127.0.0.1/0"),
            ("ip", "abc"),
            ("super", "x"),
            ("sasl", "x"),
            ("foo", "bar"),
            ("x509", "CN=a"),
        ];
        let weights = [
            25, 12, 12, 10, 5, 5, 2, 2, 3, 2, 2, 2, 2, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1,
        ];
        let mut i = self.rng.weighted(&weights);
        if i > 5 && !self.allows("odd-acls") {
            i %= 6;
        }
        let (scheme, id) = ids[i];
        Acl::new(perms, scheme, id)
    }
}

fn op_slot(op: &Op) -> Option<usize> {
    match op {
        Op::Open { slot, .. }
        | Op::Close { slot }
        | Op::Drop { slot }
        | Op::Reattach { slot, .. }
        | Op::Steal { slot, .. }
        | Op::Expire { slot }
        | Op::Req { slot, .. }
        | Op::SetWatches { slot, .. }
        | Op::Raw { slot, .. } => Some(*slot),
    }
}
